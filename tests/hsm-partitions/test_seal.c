/* tests/hsm-partitions/test_seal.c — hsm-partitions/seal.c: the sealed record (round trip,
 * every flipped byte, every truncation, swapped refs, another partition, another master
 * key, the old identity scheme), the sealed index over a real store (replayed, resurrected
 * and deleted records, a replaced master key, a deleted index), and a worker whose store
 * never holds a private CKA_VALUE in clear. */
#include "hsm-partitions/part_int.h"
#include "tests/hsm-partitions/part_test.h"

#include <sys/stat.h>
#include <unistd.h>

static const char REF_A[] = "0123456789abcdef0123456789abcdef";
static const char REF_B[] = "fedcba9876543210fedcba9876543210";
static const uint8_t REC[] = "u32 version | template: the object's attributes";

static struct part_masterkey *
key_of(uint8_t fill)
{
	struct part_masterkey *k = NULL;
	uint8_t raw[PART_MASTERKEY_LEN];

	memset(raw, fill, sizeof(raw));
	CU_ASSERT_FATAL(part_masterkey_from_bytes(raw, sizeof(raw), &k) == 0);
	return k;
}

static void
test_record_roundtrip(void)
{
	struct part_masterkey *k = key_of(1);
	struct proto_buf a, b, c;
	uint64_t gen = 0;

	proto_buf_init(&a);
	proto_buf_init(&b);
	proto_buf_init(&c);
	CU_ASSERT_FATAL(part_seal_record(k, "demo", REF_A, 7, REC, sizeof(REC), &a) == 0);
	CU_ASSERT(a.len == sizeof(REC) + 10 + 12 + 16);
	CU_ASSERT(a.data[0] == PART_SEAL_VERSION && a.data[1] == PART_SEAL_AES256GCM);
	/* Encrypted: the record's bytes do not appear in the sealed form. */
	CU_ASSERT(memmem(a.data, a.len, "attributes", 10) == NULL);
	CU_ASSERT(part_unseal_record(k, "demo", REF_A, a.data, a.len, &b, &gen) == 0);
	CU_ASSERT(gen == 7 && b.len == sizeof(REC) && memcmp(b.data, REC, sizeof(REC)) == 0);
	/* Random nonces: the same record seals differently each time. */
	CU_ASSERT(part_seal_record(k, "demo", REF_A, 7, REC, sizeof(REC), &c) == 0);
	CU_ASSERT(c.len == a.len && memcmp(c.data, a.data, a.len) != 0);
	/* An empty record is a record. */
	proto_buf_reset(&a);
	proto_buf_reset(&b);
	CU_ASSERT(part_seal_record(k, "demo", REF_A, 1, NULL, 0, &a) == 0);
	CU_ASSERT(part_unseal_record(k, "demo", REF_A, a.data, a.len, &b, &gen) == 0);
	CU_ASSERT(b.len == 0 && gen == 1);
	proto_buf_free(&a);
	proto_buf_free(&b);
	proto_buf_free(&c);
	part_masterkey_free(k);
}

static void
test_record_flipped_bytes(void)
{
	struct part_masterkey *k = key_of(1);
	struct proto_buf a, b;
	uint64_t gen;
	size_t i;
	int bit;

	proto_buf_init(&a);
	proto_buf_init(&b);
	CU_ASSERT_FATAL(part_seal_record(k, "demo", REF_A, 3, REC, sizeof(REC), &a) == 0);
	for (i = 0; i < a.len; i++) {
		for (bit = 0; bit < 8; bit += 3) {
			a.data[i] ^= (uint8_t)(1u << bit);
			CU_ASSERT_EQUAL(
			        part_unseal_record(k, "demo", REF_A, a.data, a.len, &b, &gen),
			        PART_ERR_CORRUPT);
			CU_ASSERT(b.len == 0);
			a.data[i] ^= (uint8_t)(1u << bit);
		}
	}
	CU_ASSERT(part_unseal_record(k, "demo", REF_A, a.data, a.len, &b, &gen) == 0);
	proto_buf_free(&a);
	proto_buf_free(&b);
	part_masterkey_free(k);
}

static void
test_record_truncated(void)
{
	struct part_masterkey *k = key_of(1);
	struct proto_buf a, b;
	uint64_t gen;
	size_t n;

	proto_buf_init(&a);
	proto_buf_init(&b);
	CU_ASSERT_FATAL(part_seal_record(k, "demo", REF_A, 3, REC, sizeof(REC), &a) == 0);
	for (n = 0; n < a.len; n++) {
		CU_ASSERT_EQUAL(part_unseal_record(k, "demo", REF_A, a.data, n, &b, &gen),
		                PART_ERR_CORRUPT);
		CU_ASSERT(b.len == 0);
	}
	proto_buf_free(&a);
	proto_buf_free(&b);
	part_masterkey_free(k);
}

static void
test_record_swapped_and_foreign(void)
{
	struct part_masterkey *k = key_of(1), *k2 = key_of(2);
	struct proto_buf a, b;
	uint64_t gen;

	proto_buf_init(&a);
	proto_buf_init(&b);
	CU_ASSERT_FATAL(part_seal_record(k, "demo", REF_A, 3, REC, sizeof(REC), &a) == 0);
	/* The record of object A under object B's key. */
	CU_ASSERT_EQUAL(part_unseal_record(k, "demo", REF_B, a.data, a.len, &b, &gen),
	                PART_ERR_CORRUPT);
	/* Copied into another partition's store. */
	CU_ASSERT_EQUAL(part_unseal_record(k, "other", REF_A, a.data, a.len, &b, &gen),
	                PART_ERR_CORRUPT);
	/* Read with another master key. */
	CU_ASSERT_EQUAL(part_unseal_record(k2, "demo", REF_A, a.data, a.len, &b, &gen),
	                PART_ERR_CORRUPT);
	CU_ASSERT(b.len == 0);
	proto_buf_free(&a);
	proto_buf_free(&b);
	part_masterkey_free(k);
	part_masterkey_free(k2);
}

/* ---- the sealed index over a store ------------------------------------------------------ */

static char *sdir;
static struct part_store *S;
static struct part_seal *SL;

static void
s_open(void)
{
	struct part_worker_opts o = {0};

	o.partition = "demo";
	o.store_dir = sdir;
	o.slot = 1;
	CU_ASSERT_FATAL(part_store_open(sdir, &S) == 0);
	CU_ASSERT_FATAL(part_seal_open(&o, S, &SL) == 0);
}

/* Closes, then opens the seal and runs the load over every record, as a worker start does:
 * 0 when every record verifies and none is missing. */
static int
load_one_cb(void *arg, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
	char ref[PART_REF_LEN + 1];
	struct proto_buf out;
	int r;

	(void)arg;
	CU_ASSERT_FATAL(klen == PART_REF_LEN);
	memcpy(ref, key, PART_REF_LEN);
	ref[PART_REF_LEN] = '\0';
	proto_buf_init(&out);
	r = part_unseal(SL, ref, val, vlen, &out);
	proto_buf_free(&out);
	return r;
}

static int
s_reload(void)
{
	struct part_worker_opts o = {0};
	struct part_txn *t = NULL;
	int r;

	part_seal_close(SL);
	SL = NULL;
	o.partition = "demo";
	o.store_dir = sdir;
	o.slot = 1;
	if ((r = part_seal_open(&o, S, &SL)) != 0) {
		return r;
	}
	CU_ASSERT_FATAL(part_store_txn_begin(S, 0, &t) == 0);
	r = part_store_foreach(t, PART_DB_OBJECTS, load_one_cb, NULL);
	part_store_txn_abort(t);
	return r != 0 ? r : part_seal_load_end(SL);
}

/* The raw stored bytes of `ref` into `out`. */
static void
s_raw_get(const char *ref, struct proto_buf *out)
{
	struct part_txn *t = NULL;
	const uint8_t *v;
	size_t vlen;

	proto_buf_reset(out);
	CU_ASSERT_FATAL(part_store_txn_begin(S, 0, &t) == 0);
	CU_ASSERT_FATAL(part_store_get(t, PART_DB_OBJECTS, ref, PART_REF_LEN, &v, &vlen) == 0);
	CU_ASSERT_FATAL(proto_put_raw(out, v, vlen) == 0);
	part_store_txn_abort(t);
}

static void
s_raw_put(const char *ref, const struct proto_buf *val)
{
	struct part_txn *t = NULL;

	CU_ASSERT_FATAL(part_store_txn_begin(S, 1, &t) == 0);
	CU_ASSERT_FATAL(
	        part_store_put(t, PART_DB_OBJECTS, ref, PART_REF_LEN, val->data, val->len) == 0);
	CU_ASSERT_FATAL(part_store_txn_commit(t) == 0);
}

static void
s_setup(void)
{
	sdir = test_tmpdir_new("seal");
	CU_ASSERT_FATAL(sdir != NULL);
	s_open();
	CU_ASSERT_FATAL(part_seal_store(SL, REF_A, REC, sizeof(REC)) == 0);
	CU_ASSERT_FATAL(part_seal_store(SL, REF_B, (const uint8_t *)"b", 1) == 0);
}

static void
s_teardown(void)
{
	part_seal_close(SL);
	SL = NULL;
	part_store_close(S);
	S = NULL;
	test_tmpdir_remove(sdir);
	sdir = NULL;
}

static void
test_index_roundtrip(void)
{
	struct stat st;
	char path[600];

	s_setup();
	CU_ASSERT(s_reload() == 0);
	/* Rewritten, destroyed, and the store still loads. */
	CU_ASSERT(part_seal_store(SL, REF_A, (const uint8_t *)"v2", 2) == 0);
	CU_ASSERT(part_seal_unstore(SL, REF_B) == 0);
	CU_ASSERT(part_seal_unstore(SL, REF_B) == 0); /* already gone: fine */
	CU_ASSERT(s_reload() == 0);
	/* The master key file: 32 bytes, 0600. */
	snprintf(path, sizeof(path), "%s/master.key", sdir);
	CU_ASSERT(stat(path, &st) == 0 && st.st_size == PART_MASTERKEY_LEN &&
	          (st.st_mode & 0777) == 0600);
	s_teardown();
}

static void
test_index_swap(void)
{
	struct proto_buf a;

	s_setup();
	proto_buf_init(&a);
	s_raw_get(REF_A, &a);
	s_raw_put(REF_B, &a); /* A's record under B's key */
	CU_ASSERT_EQUAL(s_reload(), PART_ERR_CORRUPT);
	proto_buf_free(&a);
	s_teardown();
}

static void
test_index_rollback(void)
{
	struct proto_buf old;

	s_setup();
	proto_buf_init(&old);
	s_raw_get(REF_A, &old); /* generation 1 */
	CU_ASSERT_FATAL(part_seal_store(SL, REF_A, (const uint8_t *)"v2", 2) == 0);
	CU_ASSERT(s_reload() == 0);
	s_raw_put(REF_A, &old); /* authentic, but generation 1 of 2 */
	CU_ASSERT_EQUAL(s_reload(), PART_ERR_CORRUPT);
	proto_buf_free(&old);
	s_teardown();
}

static void
test_index_resurrection(void)
{
	struct proto_buf old;

	s_setup();
	proto_buf_init(&old);
	s_raw_get(REF_B, &old);
	CU_ASSERT_FATAL(part_seal_unstore(SL, REF_B) == 0);
	CU_ASSERT(s_reload() == 0);
	s_raw_put(REF_B, &old); /* a destroyed object's record put back */
	CU_ASSERT_EQUAL(s_reload(), PART_ERR_CORRUPT);
	proto_buf_free(&old);
	s_teardown();
}

static void
test_index_deleted_record(void)
{
	struct part_txn *t = NULL;

	s_setup();
	CU_ASSERT_FATAL(part_store_txn_begin(S, 1, &t) == 0);
	CU_ASSERT_FATAL(part_store_del(t, PART_DB_OBJECTS, REF_B, PART_REF_LEN) == 0);
	CU_ASSERT_FATAL(part_store_txn_commit(t) == 0);
	CU_ASSERT_EQUAL(s_reload(), PART_ERR_CORRUPT);
	s_teardown();
}

static void
test_index_deleted_or_modified(void)
{
	struct part_txn *t = NULL;
	const uint8_t *v;
	struct proto_buf idx;
	size_t vlen;

	s_setup();
	proto_buf_init(&idx);
	CU_ASSERT_FATAL(part_store_txn_begin(S, 0, &t) == 0);
	CU_ASSERT_FATAL(part_store_get(t, PART_DB_META, "seal-index", 10, &v, &vlen) == 0);
	CU_ASSERT_FATAL(proto_put_raw(&idx, v, vlen) == 0);
	part_store_txn_abort(t);
	/* A flipped byte in the index. */
	idx.data[idx.len / 2] ^= 1;
	CU_ASSERT_FATAL(part_store_txn_begin(S, 1, &t) == 0);
	CU_ASSERT_FATAL(part_store_put(t, PART_DB_META, "seal-index", 10, idx.data, idx.len) == 0);
	CU_ASSERT_FATAL(part_store_txn_commit(t) == 0);
	CU_ASSERT_EQUAL(s_reload(), PART_ERR_CORRUPT);
	/* No index at all, while records exist. */
	CU_ASSERT_FATAL(part_store_txn_begin(S, 1, &t) == 0);
	CU_ASSERT_FATAL(part_store_del(t, PART_DB_META, "seal-index", 10) == 0);
	CU_ASSERT_FATAL(part_store_txn_commit(t) == 0);
	CU_ASSERT_EQUAL(s_reload(), PART_ERR_CORRUPT);
	proto_buf_free(&idx);
	s_teardown();
}

static void
test_index_wrong_master_key(void)
{
	uint8_t other[PART_MASTERKEY_LEN];
	char path[600];

	s_setup();
	snprintf(path, sizeof(path), "%s/master.key", sdir);
	memset(other, 0x5a, sizeof(other));
	CU_ASSERT_FATAL(unlink(path) == 0);
	CU_ASSERT_FATAL(test_file_write(path, other, sizeof(other)) == 0);
	CU_ASSERT_EQUAL(s_reload(), PART_ERR_CORRUPT);
	/* Lost: a new key is made, and the index does not open under it. */
	CU_ASSERT_FATAL(unlink(path) == 0);
	CU_ASSERT_EQUAL(s_reload(), PART_ERR_CORRUPT);
	s_teardown();
}

static void
test_old_identity_scheme_refused(void)
{
	struct proto_buf old, out;

	sdir = test_tmpdir_new("seal");
	CU_ASSERT_FATAL(sdir != NULL);
	proto_buf_init(&old);
	proto_buf_init(&out);
	/* A foundation-build store: identity records, no index. */
	CU_ASSERT_FATAL(part_store_open(sdir, &S) == 0);
	CU_ASSERT_FATAL(proto_put_u8(&old, PART_SEAL_VERSION) == 0 &&
	                proto_put_u8(&old, PART_SEAL_NONE) == 0 &&
	                proto_put_raw(&old, REC, sizeof(REC)) == 0);
	s_raw_put(REF_A, &old);
	CU_ASSERT_EQUAL(s_reload(), PART_ERR_CORRUPT);
	part_store_close(S);
	S = NULL;
	/* With an index (a store sealed later), an identity record is still refused. */
	test_tmpdir_remove(sdir);
	s_setup();
	CU_ASSERT_EQUAL(part_unseal(SL, REF_A, old.data, old.len, &out), PART_ERR_CORRUPT);
	CU_ASSERT(out.len == 0);
	proto_buf_free(&old);
	proto_buf_free(&out);
	s_teardown();
}

/* ---- the token record ------------------------------------------------------------------- */

static void
test_token_record(void)
{
	static const uint8_t meta[] = "u32 version | label | PIN salts and hashes | counters";
	struct part_worker_opts o = {0};
	struct part_store *s2 = NULL;
	struct part_seal *sl2 = NULL;
	struct proto_buf a, b, c, obj;
	char *dir2;

	s_setup();
	proto_buf_init(&a);
	proto_buf_init(&b);
	proto_buf_init(&c);
	proto_buf_init(&obj);
	CU_ASSERT_FATAL(part_seal_token(SL, meta, sizeof(meta), &a) == 0);
	CU_ASSERT(a.data[0] == PART_SEAL_VERSION && a.data[1] == PART_SEAL_AES256GCM);
	CU_ASSERT(memmem(a.data, a.len, "PIN salts", 9) == NULL);
	CU_ASSERT(part_unseal_token(SL, a.data, a.len, &b) == 0);
	CU_ASSERT(b.len == sizeof(meta) && memcmp(b.data, meta, sizeof(meta)) == 0);
	/* Each seal takes the next generation (bytes 2..9 of the header, big-endian). */
	CU_ASSERT_FATAL(part_seal_token(SL, meta, sizeof(meta), &c) == 0);
	CU_ASSERT(memcmp(a.data + 2, c.data + 2, 8) < 0);
	/* The token record is not an object's, nor an object's record the token's. */
	proto_buf_reset(&b);
	CU_ASSERT_EQUAL(part_unseal(SL, REF_A, a.data, a.len, &b), PART_ERR_CORRUPT);
	s_raw_get(REF_A, &obj);
	CU_ASSERT_EQUAL(part_unseal_token(SL, obj.data, obj.len, &b), PART_ERR_CORRUPT);
	CU_ASSERT(b.len == 0);
	/* Copied into another partition's store: refused there. */
	dir2 = test_tmpdir_new("seal2");
	CU_ASSERT_FATAL(dir2 != NULL);
	o.partition = "other";
	o.store_dir = dir2;
	o.slot = 1;
	CU_ASSERT_FATAL(part_store_open(dir2, &s2) == 0);
	CU_ASSERT_FATAL(part_seal_open(&o, s2, &sl2) == 0);
	CU_ASSERT_EQUAL(part_unseal_token(sl2, a.data, a.len, &b), PART_ERR_CORRUPT);
	CU_ASSERT(b.len == 0);
	/* Truncated: refused. */
	CU_ASSERT_EQUAL(part_unseal_token(SL, a.data, a.len - 1, &b), PART_ERR_CORRUPT);
	CU_ASSERT_EQUAL(part_unseal_token(SL, a.data, 0, &b), PART_ERR_CORRUPT);
	CU_ASSERT(b.len == 0);
	part_seal_close(sl2);
	part_store_close(s2);
	test_tmpdir_remove(dir2);
	proto_buf_free(&a);
	proto_buf_free(&b);
	proto_buf_free(&c);
	proto_buf_free(&obj);
	s_teardown();
}

/* ---- through the worker ----------------------------------------------------------------- */

/* Whether `needle` occurs in any regular file directly under `dir`. */
static int
dir_contains(const char *dir, const void *needle, size_t nlen)
{
	static const char *const files[] = {"data.mdb", "lock.mdb", "master.key"};
	char path[600];
	FILE *f;
	uint8_t *buf;
	long sz;
	size_t i;
	int hit = 0;

	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		if ((f = fopen(path, "rb")) == NULL) {
			continue;
		}
		fseek(f, 0, SEEK_END);
		sz = ftell(f);
		rewind(f);
		buf = malloc(sz > 0 ? (size_t)sz : 1);
		CU_ASSERT_FATAL(buf != NULL);
		if (sz > 0 && fread(buf, 1, (size_t)sz, f) == (size_t)sz &&
		    memmem(buf, (size_t)sz, needle, nlen) != NULL) {
			hit = 1;
		}
		free(buf);
		fclose(f);
	}
	return hit;
}

static void
test_worker_store_has_no_clear_value(void)
{
	static const char secret[] = "SEALED-AT-REST-0x5f3759df-value";
	static const char label[] = "visible-label-0xc0ffee";
	CK_OBJECT_CLASS cls = CKO_DATA;
	CK_BBOOL yes = CK_TRUE;
	CK_ATTRIBUTE t[] = {
	        {CKA_CLASS, &cls, sizeof(cls)},
	        {CKA_TOKEN, &yes, 1},
	        {CKA_PRIVATE, &yes, 1},
	        {CKA_LABEL, (void *)label, sizeof(label) - 1},
	        {CKA_VALUE, (void *)secret, sizeof(secret) - 1},
	};
	CK_SESSION_HANDLE h;
	struct proto_cur c;

	t_setup();
	t_ready();
	CU_ASSERT_FATAL(ck_open(CONN_A, RW, &h) == CKR_OK);
	CU_ASSERT_FATAL(ck_login(CONN_A, h, CKU_USER, USER_PIN) == CKR_OK);
	CU_ASSERT_FATAL(CALL(CONN_A, C_CreateObject, &c, (PUTU(h), PUTT(t, 5))) == CKR_OK);
	t_reopen(); /* the environment is flushed and closed; the object loads back */
	CU_ASSERT(!dir_contains(tstore, secret, sizeof(secret) - 1));
	/* Nothing of the object is in clear, not even its label. */
	CU_ASSERT(!dir_contains(tstore, label, sizeof(label) - 1));
	t_teardown();
}

static const struct test_case cases[] = {
        {"record round trip", test_record_roundtrip},
        {"record: every flipped byte refused", test_record_flipped_bytes},
        {"record: every truncation refused", test_record_truncated},
        {"record: swapped ref, other partition, other key refused",
         test_record_swapped_and_foreign},
        {"index: store, rewrite, destroy, reload", test_index_roundtrip},
        {"index: record of A under B refused", test_index_swap},
        {"index: rolled-back record refused", test_index_rollback},
        {"index: resurrected record refused", test_index_resurrection},
        {"index: deleted record refused", test_index_deleted_record},
        {"index: modified or deleted index refused", test_index_deleted_or_modified},
        {"index: replaced or lost master key refused", test_index_wrong_master_key},
        {"old identity scheme refused, not migrated", test_old_identity_scheme_refused},
        {"token record: sealed, bound to its ref and partition", test_token_record},
        {"worker: no clear CKA_VALUE or label in the store", test_worker_store_has_no_clear_value},
        {NULL, NULL},
};

void
test_register(void)
{
	test_suite_add("hsm-partitions/seal", NULL, NULL, cases);
}
