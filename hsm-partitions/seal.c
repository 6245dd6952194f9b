/*
 * hsm-partitions/seal.c — every token object record is sealed at rest: AES-256-GCM under a
 * key derived from the partition master key, bound to the partition, the object and the
 * record's generation; plus a sealed index of the current generation of every object.
 *
 * Record (the LMDB value under the object's ref):
 *
 *   u8 PART_SEAL_VERSION (1) | u8 scheme (PART_SEAL_AES256GCM = 1) | u64 generation (BE) |
 *   12-byte nonce | ciphertext (as long as the record) | 16-byte GCM tag
 *
 * Associated data: the first 10 bytes above (version, scheme, generation), then
 * u32 len | partition name, u32 len | ref (all lengths big-endian). The whole attribute
 * record is encrypted: nothing of an object is in clear in the store, not even its public
 * attributes (C_FindObjects runs over the objects in memory, so it needs no clear index).
 *
 * What a change to the store does:
 *   - a modified byte anywhere (header, nonce, ciphertext, tag): the tag fails;
 *   - a record moved under another object's ref, or into another partition's store: the ref
 *     or partition in the AD differs, the tag fails (a swap);
 *   - a record sealed under another master key (or the key file replaced): the tag fails;
 *   - a truncated record: too short, or the tag fails;
 *   - an older record of the same object put back (rollback/replay of one record): its
 *     generation is authentic but lower than the one the sealed index holds for the ref;
 *   - a record of a destroyed object put back (resurrection): its ref is not in the index;
 *   - a record deleted: the index names it and part_seal_load_end() finds it missing.
 * Each is reported on stderr with the object's ref and refused; the worker does not start
 * with a store that fails (object.c fails closed), so the gateway answers the partition's
 * calls with CKR_DEVICE_ERROR until an operator looks. A record is never used unverified.
 *
 * Why a sealed index, and not the generation alone: a generation inside each record's AD
 * proves which version a record is, not that it is the latest. The expected generation must
 * live somewhere the attacker cannot roll back independently of the record: the index is
 * one record (META "seal-index": u32 count | count × (ref[32] | u64 generation), sorted by
 * ref), sealed the same way with ref "seal-index" and its own generation, and written in the
 * same LMDB transaction as every object change, so the two are always consistent.
 * What this does NOT detect: a rollback of the whole store (every record and the index
 * together, e.g. restoring an old copy of data.mdb). That needs a monotonic counter the
 * attacker cannot reset (an HSM counter with KYOK, or the audit log's signed checkpoints);
 * the index generation is the value such a counter would be compared with.
 * Cost: each object write rewrites the index (40 bytes per object), fine for the thousands
 * of objects a partition holds; a keyed multiset hash would make it O(1) if it ever matters.
 *
 * Nonces are random (RAND_bytes): one key per partition and far fewer than 2^32 seals
 * over its life (NIST SP 800-38D §8.3). The sealing key is HKDF-SHA256(master key,
 * "hsmgate seal v1"), so the master key itself seals nothing and KYOK may derive other keys.
 *
 * The token record (token.c: label, PIN hashes and salts, retry counters; META "token") is
 * sealed the same way, with ref "token" in the AD and a generation of its own that grows
 * with each write, so a stolen store gives no PIN-guessing material and a record cannot be
 * moved between partitions or swapped with an object. It is not in the sealed index: it is
 * rewritten on every failed login, and putting it there would rewrite the index each time.
 * So an older sealed token record put back alone (rolling back the retry counters or an
 * old PIN) is not detected, any more than a rollback of the whole store is; the generation
 * is what a monotonic counter would be compared with. The token record opens after the
 * index, so a wrong master key is reported by the index when there is one, and by the
 * token record when there is none (a token with no objects yet).
 *
 * Migration: records of the identity scheme (PART_SEAL_NONE, scheme byte 0) written by the
 * foundation build are refused with a message that says so, not re-sealed: that build held
 * only data objects of test deployments, and silently accepting unauthenticated records is
 * exactly what this file exists to prevent. Re-create the token (hsmctl token init --force).
 */
#include "hsm-partitions/part_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#define SEAL_HDR    10 /* version, scheme, generation */
#define SEAL_NONCE  12
#define SEAL_TAG    16
#define SEAL_MIN    (SEAL_HDR + SEAL_NONCE + SEAL_TAG)
#define INDEX_KEY   "seal-index"
#define INDEX_ENTRY (PART_REF_LEN + 8)
#define SEAL_LABEL  "hsmgate seal v1"
#define TOKEN_REF   "token" /* the AD ref of the token record (not 32 hex: no object's) */

struct seal_entry {
	char ref[PART_REF_LEN];
	uint64_t gen;
	int seen; /* part_unseal() met its record during the load */
};

struct part_seal {
	struct part_store *store;   /* borrowed: the token closes it after this */
	struct part_masterkey *key; /* the derived sealing key, in locked memory */
	char partition[64];
	struct seal_entry *idx; /* sorted by ref */
	size_t n, cap;
	uint64_t idx_gen;
	uint64_t token_gen; /* the token record's generation, last read or written */
};

static void
be64(uint8_t *p, uint64_t v)
{
	int i;

	for (i = 7; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

static uint64_t
get_be64(const uint8_t *p)
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < 8; i++) {
		v = v << 8 | p[i];
	}
	return v;
}

static int
ad_build(struct proto_buf *ad, const uint8_t *hdr, const char *partition, const char *ref)
{
	int r;

	if ((r = proto_put_raw(ad, hdr, SEAL_HDR)) != 0 ||
	    (r = proto_put_u32(ad, (uint32_t)strlen(partition))) != 0 ||
	    (r = proto_put_raw(ad, partition, strlen(partition))) != 0 ||
	    (r = proto_put_u32(ad, (uint32_t)strlen(ref))) != 0 ||
	    (r = proto_put_raw(ad, ref, strlen(ref))) != 0) {
		return PART_ERR_NOMEM;
	}
	return 0;
}

int
part_seal_record(const struct part_masterkey *key, const char *partition, const char *ref,
                 uint64_t gen, const uint8_t *in, size_t len, struct proto_buf *out)
{
	uint8_t hdr[SEAL_HDR], nonce[SEAL_NONCE], tag[SEAL_TAG];
	EVP_CIPHER_CTX *ctx = NULL;
	uint8_t *ct = NULL;
	struct proto_buf ad;
	int outl, r;

	proto_buf_init(&ad);
	if (len > INT32_MAX) {
		r = PART_ERR_INVALID;
		goto out;
	}
	hdr[0] = PART_SEAL_VERSION;
	hdr[1] = PART_SEAL_AES256GCM;
	be64(hdr + 2, gen);
	if (RAND_bytes(nonce, sizeof(nonce)) != 1) {
		r = PART_ERR_CRYPTO;
		goto out;
	}
	if ((r = ad_build(&ad, hdr, partition, ref)) != 0) {
		goto out;
	}
	if ((ct = malloc(len != 0 ? len : 1)) == NULL) {
		r = PART_ERR_NOMEM;
		goto out;
	}
	if ((ctx = EVP_CIPHER_CTX_new()) == NULL ||
	    EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, part_masterkey_bytes(key), nonce) !=
	            1 ||
	    EVP_EncryptUpdate(ctx, NULL, &outl, ad.data, (int)ad.len) != 1 ||
	    (len != 0 && EVP_EncryptUpdate(ctx, ct, &outl, in, (int)len) != 1) ||
	    EVP_EncryptFinal_ex(ctx, tag, &outl) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, SEAL_TAG, tag) != 1) {
		r = PART_ERR_CRYPTO;
		goto out;
	}
	if (proto_put_raw(out, hdr, sizeof(hdr)) != 0 ||
	    proto_put_raw(out, nonce, sizeof(nonce)) != 0 || proto_put_raw(out, ct, len) != 0 ||
	    proto_put_raw(out, tag, sizeof(tag)) != 0) {
		r = PART_ERR_NOMEM;
		goto out;
	}
	r = 0;
out:
	EVP_CIPHER_CTX_free(ctx);
	free(ct); /* ciphertext: nothing to wipe */
	proto_buf_free(&ad);
	return r;
}

int
part_unseal_record(const struct part_masterkey *key, const char *partition, const char *ref,
                   const uint8_t *in, size_t len, struct proto_buf *out, uint64_t *gen)
{
	EVP_CIPHER_CTX *ctx = NULL;
	uint8_t *pt = NULL;
	struct proto_buf ad;
	size_t clen = 0;
	int outl, r;

	*gen = 0;
	proto_buf_init(&ad);
	if (len < SEAL_MIN || in[0] != PART_SEAL_VERSION || in[1] != PART_SEAL_AES256GCM ||
	    len - SEAL_MIN > INT32_MAX) {
		r = PART_ERR_CORRUPT;
		goto out;
	}
	clen = len - SEAL_MIN;
	if ((r = ad_build(&ad, in, partition, ref)) != 0) {
		goto out;
	}
	/* Decrypted into a buffer of our own in the secure heap, wiped on every path: nothing
	 * reaches `out` before the tag has verified. */
	if ((pt = OPENSSL_secure_malloc(clen != 0 ? clen : 1)) == NULL) {
		r = PART_ERR_NOMEM;
		goto out;
	}
	if ((ctx = EVP_CIPHER_CTX_new()) == NULL ||
	    EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, part_masterkey_bytes(key),
	                       in + SEAL_HDR) != 1 ||
	    EVP_DecryptUpdate(ctx, NULL, &outl, ad.data, (int)ad.len) != 1 ||
	    (clen != 0 &&
	     EVP_DecryptUpdate(ctx, pt, &outl, in + SEAL_HDR + SEAL_NONCE, (int)clen) != 1) ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, SEAL_TAG,
	                        (void *)(in + len - SEAL_TAG)) != 1) {
		r = PART_ERR_CRYPTO;
		goto out;
	}
	if (EVP_DecryptFinal_ex(ctx, pt + clen, &outl) != 1) {
		r = PART_ERR_CORRUPT; /* the tag: see the top of the file for what it covers */
		goto out;
	}
	if (proto_put_raw(out, pt, clen) != 0) {
		r = PART_ERR_NOMEM;
		goto out;
	}
	*gen = get_be64(in + 2);
	r = 0;
out:
	EVP_CIPHER_CTX_free(ctx);
	if (pt != NULL) {
		OPENSSL_secure_clear_free(pt, clen != 0 ? clen : 1);
	}
	proto_buf_free(&ad);
	return r;
}

/* ---- the index -------------------------------------------------------------------------- */

/* The position of `ref` in the sorted index, or where it would go; *found says which. */
static size_t
idx_find(const struct part_seal *s, const char *ref, int *found)
{
	size_t lo = 0, hi = s->n, mid;
	int c;

	*found = 0;
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		c = memcmp(s->idx[mid].ref, ref, PART_REF_LEN);
		if (c == 0) {
			*found = 1;
			return mid;
		}
		if (c < 0) {
			lo = mid + 1;
		} else {
			hi = mid;
		}
	}
	return lo;
}

static int
idx_insert(struct part_seal *s, size_t pos, const char *ref, uint64_t gen)
{
	struct seal_entry *n;
	size_t cap;

	if (s->n == s->cap) {
		cap = s->cap != 0 ? s->cap * 2 : 16;
		if ((n = realloc(s->idx, cap * sizeof(*n))) == NULL) {
			return PART_ERR_NOMEM;
		}
		s->idx = n;
		s->cap = cap;
	}
	memmove(&s->idx[pos + 1], &s->idx[pos], (s->n - pos) * sizeof(*s->idx));
	memcpy(s->idx[pos].ref, ref, PART_REF_LEN);
	s->idx[pos].gen = gen;
	s->idx[pos].seen = 0;
	s->n++;
	return 0;
}

static void
idx_remove(struct part_seal *s, size_t pos)
{
	memmove(&s->idx[pos], &s->idx[pos + 1], (s->n - pos - 1) * sizeof(*s->idx));
	s->n--;
}

/* Seals the index as it is in memory, with generation idx_gen + 1, into `out`. */
static int
idx_seal(const struct part_seal *s, struct proto_buf *out)
{
	struct proto_buf plain;
	size_t i;
	int r = 0;

	proto_buf_init(&plain);
	if (proto_put_u32(&plain, (uint32_t)s->n) != 0) {
		r = PART_ERR_NOMEM;
	}
	for (i = 0; r == 0 && i < s->n; i++) {
		if (proto_put_raw(&plain, s->idx[i].ref, PART_REF_LEN) != 0 ||
		    proto_put_u64(&plain, s->idx[i].gen) != 0) {
			r = PART_ERR_NOMEM;
		}
	}
	if (r == 0) {
		r = part_seal_record(s->key, s->partition, INDEX_KEY, s->idx_gen + 1, plain.data,
		                     plain.len, out);
	}
	proto_buf_free(&plain);
	return r;
}

static int
idx_decode(struct part_seal *s, const uint8_t *p, size_t len)
{
	struct proto_cur c;
	uint32_t n, i;
	uint64_t gen;
	const uint8_t *ref;
	int found;
	size_t pos;

	proto_cur_init(&c, p, len);
	if (proto_get_u32(&c, &n) != 0 || n > len / INDEX_ENTRY) {
		return PART_ERR_CORRUPT;
	}
	for (i = 0; i < n; i++) {
		if (c.len < PART_REF_LEN) {
			return PART_ERR_CORRUPT;
		}
		ref = c.p;
		c.p += PART_REF_LEN;
		c.len -= PART_REF_LEN;
		if (proto_get_u64(&c, &gen) != 0 || gen == 0) {
			return PART_ERR_CORRUPT;
		}
		pos = idx_find(s, (const char *)ref, &found);
		if (found || pos != s->n || idx_insert(s, pos, (const char *)ref, gen) != 0) {
			return found || pos != s->n ? PART_ERR_CORRUPT : PART_ERR_NOMEM;
		}
	}
	return proto_cur_end(&c) == 0 ? 0 : PART_ERR_CORRUPT;
}

/* Whether PART_DB_OBJECTS holds any record; the scheme of the first in *scheme. */
static int
first_record(void *arg, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
	int *scheme = arg;

	(void)key;
	(void)klen;
	*scheme = vlen >= 2 ? val[1] : 255;
	return 1; /* stop the walk */
}

static int
idx_load(struct part_seal *s)
{
	struct part_txn *txn = NULL;
	struct proto_buf plain;
	const uint8_t *v;
	size_t vlen;
	int scheme = -1, r;

	proto_buf_init(&plain);
	if ((r = part_store_txn_begin(s->store, 0, &txn)) != 0) {
		goto out;
	}
	r = part_store_get(txn, PART_DB_META, INDEX_KEY, strlen(INDEX_KEY), &v, &vlen);
	if (r == PART_ERR_NOT_FOUND) {
		if ((r = part_store_foreach(txn, PART_DB_OBJECTS, first_record, &scheme)) < 0) {
			goto out;
		}
		if (scheme < 0) {
			r = 0; /* a new store: no objects, an empty index */
		} else if (scheme == PART_SEAL_NONE) {
			fprintf(stderr,
			        "hsmgate-worker: seal: partition %s: the store holds object "
			        "records "
			        "written unsealed by an earlier build; they are refused, not "
			        "migrated (re-create the token: hsmctl token init --force)\n",
			        s->partition);
			r = PART_ERR_CORRUPT;
		} else {
			fprintf(stderr,
			        "hsmgate-worker: seal: partition %s: the store holds sealed object "
			        "records but no sealed index (deleted?): refused\n",
			        s->partition);
			r = PART_ERR_CORRUPT;
		}
		goto out;
	}
	if (r != 0) {
		goto out;
	}
	if ((r = part_unseal_record(s->key, s->partition, INDEX_KEY, v, vlen, &plain,
	                            &s->idx_gen)) != 0) {
		fprintf(stderr,
		        "hsmgate-worker: seal: partition %s: the sealed index does not open: wrong "
		        "master key (was master.key replaced or lost?) or a modified store\n",
		        s->partition);
		goto out;
	}
	if ((r = idx_decode(s, plain.data, plain.len)) != 0) {
		fprintf(stderr,
		        "hsmgate-worker: seal: partition %s: the sealed index is malformed\n",
		        s->partition);
		goto out;
	}
	r = 0;
out:
	part_store_txn_abort(txn);
	proto_buf_free(&plain);
	return r;
}

/* ---- the seal of a partition ------------------------------------------------------------ */

int
part_seal_open(const struct part_worker_opts *o, struct part_store *store, struct part_seal **out)
{
	struct part_masterkey *mk = NULL;
	struct part_seal *s = NULL;
	int r;

	*out = NULL;
	if (o == NULL || o->partition == NULL || strlen(o->partition) >= sizeof(s->partition)) {
		return PART_ERR_INVALID;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		return PART_ERR_NOMEM;
	}
	s->store = store;
	snprintf(s->partition, sizeof(s->partition), "%s", o->partition);
	if ((r = part_masterkey_obtain(o, &mk)) != 0 ||
	    (r = part_masterkey_derive(mk, SEAL_LABEL, &s->key)) != 0 || (r = idx_load(s)) != 0) {
		goto out;
	}
	*out = s;
	s = NULL; /* transferred */
	r = 0;
out:
	part_masterkey_free(mk);
	part_seal_close(s);
	return r;
}

void
part_seal_close(struct part_seal *s)
{
	if (s == NULL) {
		return;
	}
	part_masterkey_free(s->key);
	free(s->idx);
	free(s);
}

int
part_unseal(struct part_seal *s, const char *ref, const uint8_t *in, size_t len,
            struct proto_buf *out)
{
	const char *why;
	uint64_t gen = 0;
	size_t pos = 0;
	int found = 0, r;

	if (strlen(ref) != PART_REF_LEN) {
		r = PART_ERR_CORRUPT;
		why = "not an object ref";
	} else if (len >= 2 && in[0] == PART_SEAL_VERSION && in[1] == PART_SEAL_NONE) {
		r = PART_ERR_CORRUPT;
		why = "written unsealed by an earlier build: refused, not migrated (re-create the "
		      "token: hsmctl token init --force)";
	} else if ((r = part_unseal_record(s->key, s->partition, ref, in, len, out, &gen)) != 0) {
		why = r == PART_ERR_CORRUPT ? "fails its seal: modified, truncated, moved from "
		                              "another object, or sealed under another master key"
		                            : part_strerror(r);
	} else if (pos = idx_find(s, ref, &found), !found) {
		r = PART_ERR_CORRUPT;
		why = "authentic but not in the sealed index: a replayed record of a destroyed "
		      "object";
	} else if (gen != s->idx[pos].gen) {
		r = PART_ERR_CORRUPT;
		why = "authentic but not the current generation: a rolled-back (replayed) record";
		fprintf(stderr,
		        "hsmgate-worker: seal: partition %s: object %s: generation %llu, sealed "
		        "index %llu\n",
		        s->partition, ref, (unsigned long long)gen,
		        (unsigned long long)s->idx[pos].gen);
	} else {
		s->idx[pos].seen = 1;
		return 0;
	}
	fprintf(stderr, "hsmgate-worker: seal: partition %s: object %s: %s\n", s->partition, ref,
	        why);
	/* Nothing unverified leaves: part_unseal_record appends only after the tag verified,
	 * and a record that verified but is not the current one is taken back out. */
	proto_buf_reset(out);
	return r;
}

int
part_seal_load_end(struct part_seal *s)
{
	size_t i;
	int r = 0;

	for (i = 0; i < s->n; i++) {
		if (!s->idx[i].seen) {
			fprintf(stderr,
			        "hsmgate-worker: seal: partition %s: object %.*s is in the sealed "
			        "index but its record is missing from the store (deleted)\n",
			        s->partition, PART_REF_LEN, s->idx[i].ref);
			r = PART_ERR_CORRUPT;
		}
	}
	return r;
}

int
part_seal_store(struct part_seal *s, const char *ref, const uint8_t *rec, size_t len)
{
	struct proto_buf sealed, index;
	struct part_txn *txn = NULL;
	uint64_t old = 0;
	size_t pos;
	int found, r;

	proto_buf_init(&sealed);
	proto_buf_init(&index);
	if (strlen(ref) != PART_REF_LEN) {
		return PART_ERR_INVALID;
	}
	pos = idx_find(s, ref, &found);
	if (found) {
		old = s->idx[pos].gen;
		s->idx[pos].gen = old + 1;
	} else if ((r = idx_insert(s, pos, ref, 1)) != 0) {
		return r;
	}
	s->idx[pos].seen = 1;
	if ((r = part_seal_record(s->key, s->partition, ref, s->idx[pos].gen, rec, len, &sealed)) !=
	            0 ||
	    (r = idx_seal(s, &index)) != 0 || (r = part_store_txn_begin(s->store, 1, &txn)) != 0 ||
	    (r = part_store_put(txn, PART_DB_OBJECTS, ref, PART_REF_LEN, sealed.data,
	                        sealed.len)) != 0 ||
	    (r = part_store_put(txn, PART_DB_META, INDEX_KEY, strlen(INDEX_KEY), index.data,
	                        index.len)) != 0) {
		goto out;
	}
	r = part_store_txn_commit(txn);
	txn = NULL; /* freed by commit */
out:
	part_store_txn_abort(txn);
	if (r == 0) {
		s->idx_gen++;
	} else if (found) {
		s->idx[pos].gen = old; /* the store did not change: neither does the index */
	} else {
		idx_remove(s, pos);
	}
	proto_buf_free(&sealed);
	proto_buf_free(&index);
	return r;
}

int
part_seal_unstore(struct part_seal *s, const char *ref)
{
	struct seal_entry saved;
	struct part_txn *txn = NULL;
	struct proto_buf index;
	size_t pos;
	int found, r;

	proto_buf_init(&index);
	pos = idx_find(s, ref, &found);
	if (found) {
		saved = s->idx[pos];
		idx_remove(s, pos);
	}
	if ((found && (r = idx_seal(s, &index)) != 0) ||
	    (r = part_store_txn_begin(s->store, 1, &txn)) != 0) {
		goto out;
	}
	if ((r = part_store_del(txn, PART_DB_OBJECTS, ref, strlen(ref))) != 0 &&
	    r != PART_ERR_NOT_FOUND) {
		goto out;
	}
	if (found && (r = part_store_put(txn, PART_DB_META, INDEX_KEY, strlen(INDEX_KEY),
	                                 index.data, index.len)) != 0) {
		goto out;
	}
	r = part_store_txn_commit(txn);
	txn = NULL; /* freed by commit */
out:
	part_store_txn_abort(txn);
	if (r == 0 && found) {
		s->idx_gen++;
	} else if (r != 0 && found && idx_insert(s, pos, saved.ref, saved.gen) == 0) {
		s->idx[pos].seen = saved.seen; /* the record is still there */
	}
	proto_buf_free(&index);
	return r;
}

int
part_seal_clear(struct part_seal *s, struct part_txn *txn)
{
	struct proto_buf index;
	int r;

	/* The caller clears PART_DB_OBJECTS in `txn`. The in-memory index empties now, before
	 * the caller commits: if that commit fails the token is in an unknown state anyway
	 * (its objects were already forgotten), and the next start reads the stored index. */
	s->n = 0;
	proto_buf_init(&index);
	if ((r = idx_seal(s, &index)) == 0 &&
	    (r = part_store_put(txn, PART_DB_META, INDEX_KEY, strlen(INDEX_KEY), index.data,
	                        index.len)) == 0) {
		s->idx_gen++;
	}
	proto_buf_free(&index);
	return r;
}

/* ---- the token record ------------------------------------------------------------------- */

int
part_seal_token(struct part_seal *s, const uint8_t *rec, size_t len, struct proto_buf *out)
{
	int r;

	if ((r = part_seal_record(s->key, s->partition, TOKEN_REF, s->token_gen + 1, rec, len,
	                          out)) == 0) {
		/* Counted whether or not the caller's transaction commits: a gap is harmless. */
		s->token_gen++;
	}
	return r;
}

int
part_unseal_token(struct part_seal *s, const uint8_t *in, size_t len, struct proto_buf *out)
{
	uint64_t gen = 0;
	int r;

	if ((r = part_unseal_record(s->key, s->partition, TOKEN_REF, in, len, out, &gen)) != 0) {
		fprintf(stderr,
		        "hsmgate-worker: seal: partition %s: the sealed token record does not "
		        "open: wrong master key (was master.key replaced or lost?) or a modified "
		        "store\n",
		        s->partition);
		proto_buf_reset(out);
		return r == PART_ERR_NOMEM ? r : PART_ERR_CORRUPT;
	}
	s->token_gen = gen;
	return 0;
}
