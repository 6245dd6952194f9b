/*
 * tests/audit/test_rotate.c — audit/rotate.c: key rotation by the writer (aud_log_rotate),
 * the rotation statement's parser, keyrings, and the key windows as the verifier, the
 * writer's recovery, the proofs and the sinks see them. A log rotated from key A to key B
 * is rebuilt with one fault at a time (every hash recomputed and every other signature
 * made with the right key), and each fault must be named at its seq with its kind.
 */
#include "audit/aud_int.h"
#include "tests/lib/test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define ORIGIN     "hsmgate.test/audit/rot"
#define NLINES_MAX 256

static char *tmp;
/* a: the key the log starts with, b: the key it rotates to, c and d: strangers. */
static char akey[600], apub[600], bkey[600], bpub[600], ckey[600], cpub[600], dkey[600];
static char logd[600], segp[700], extp[700];
static EVP_PKEY *ka, *kb, *kc, *kd;
static char *orig[NLINES_MAX];
static size_t norig;
static uint64_t rot_seq; /* the K record */

/* The whole file in *data (malloc'd, not NUL-terminated). */
static int
read_all(const char *path, char **data, size_t *len)
{
	FILE *f = fopen(path, "r");
	long n;

	*data = NULL;
	*len = 0;
	if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) != 0 || (*data = malloc((size_t)n + 1)) == NULL ||
	    fread(*data, 1, (size_t)n, f) != (size_t)n) {
		if (f != NULL) {
			fclose(f);
		}
		free(*data);
		*data = NULL;
		return -1;
	}
	fclose(f);
	*len = (size_t)n;
	return 0;
}

static int
append_n(struct aud_log *log, unsigned n)
{
	uint64_t seq = 0;
	unsigned i;
	int r = 0;

	for (i = 0; i < n && r == 0; i++) {
		struct aud_event *ev = NULL;

		if ((r = aud_event_new(&ev, "keys", "sign")) == 0 &&
		    (r = aud_event_set_correlation(ev, 3, i)) == 0) {
			r = aud_log_append(log, ev, NULL, NULL, &seq);
		}
		aud_event_free(ev);
	}
	return r != 0 ? r : aud_log_wait(log, seq);
}

static void
opts(struct aud_log_options *o, const char *dir, const char *key)
{
	aud_log_options_init(o);
	o->dir = dir;
	o->origin = ORIGIN;
	o->key_path = key;
	o->checkpoint_every = 10;
}

static int
load_lines(void)
{
	FILE *f = fopen(segp, "r");
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;

	if (f == NULL) {
		return -1;
	}
	norig = 0;
	while ((n = getline(&line, &cap, f)) > 0 && norig < NLINES_MAX) {
		orig[norig++] = strndup(line, (size_t)n);
	}
	free(line);
	fclose(f);
	return 0;
}

static int
mk_key(const char *name, char *key, char *pub, EVP_PKEY **pk)
{
	char prefix[500];

	snprintf(prefix, sizeof(prefix), "%s/%s", tmp, name);
	snprintf(key, 600, "%s.key", prefix);
	if (pub != NULL) {
		snprintf(pub, 600, "%s.pub", prefix);
	}
	return aud_key_generate(prefix) == 0 && aud_key_load_private(key, pk) == 0 ? 0 : -1;
}

/* The log: 30 events under a, the rotation to b, 20 events, a restart with b, 5 events. */
static int
suite_init(void)
{
	struct aud_log_options o;
	struct aud_log *log = NULL;
	char name[64];

	if ((tmp = test_tmpdir_new("audit-rotate")) == NULL || mk_key("a", akey, apub, &ka) != 0 ||
	    mk_key("b", bkey, bpub, &kb) != 0 || mk_key("c", ckey, cpub, &kc) != 0 ||
	    mk_key("d", dkey, NULL, &kd) != 0) {
		return -1;
	}
	snprintf(logd, sizeof(logd), "%s/log", tmp);
	snprintf(extp, sizeof(extp), "%s/external-checkpoint", tmp);
	aud_segment_name(0, name);
	snprintf(segp, sizeof(segp), "%s/%s", logd, name);
	opts(&o, logd, akey);
	if (aud_log_open(&log, &o) != 0 || append_n(log, 30) != 0 ||
	    aud_log_rotate(log, bkey, &rot_seq) != 0 || append_n(log, 20) != 0 ||
	    aud_log_close(log) != 0) {
		return -1;
	}
	opts(&o, logd, bkey);
	if (aud_log_open(&log, &o) != 0 || append_n(log, 5) != 0 || aud_log_close(log) != 0) {
		return -1;
	}
	return load_lines();
}

static int
suite_cleanup(void)
{
	size_t i;

	for (i = 0; i < norig; i++) {
		free(orig[i]);
	}
	EVP_PKEY_free(ka);
	EVP_PKEY_free(kb);
	EVP_PKEY_free(kc);
	EVP_PKEY_free(kd);
	test_tmpdir_remove(tmp);
	return 0;
}

static void
write_lines(char *const *lines, size_t n)
{
	FILE *f = fopen(segp, "w");
	size_t i;

	CU_ASSERT_FATAL(f != NULL);
	for (i = 0; i < n; i++) {
		fputs(lines[i], f);
	}
	fclose(f);
}

static void
restore(void)
{
	write_lines(orig, norig);
}

/* Index (== seq) of the first record of type t at or after `from`. */
static size_t
find_type(char t, size_t from)
{
	size_t i;

	for (i = from; i < norig; i++) {
		struct aud_record_view rec;

		if (aud_record_parse(orig[i], strlen(orig[i]) - 1, &rec) == 0 && rec.type == t) {
			return i;
		}
	}
	CU_FAIL_FATAL("no such record");
	return 0;
}

/* The last checkpoint before `seq`. */
static size_t
last_c_before(size_t seq)
{
	size_t i = seq;

	while (i-- > 0) {
		if (find_type('C', i) == i) {
			return i;
		}
	}
	CU_FAIL_FATAL("no checkpoint before");
	return 0;
}

/* One fault at a time; everything else re-made correctly. */
struct spec {
	EVP_PKEY *ck_before, *ck_after; /* sign the checkpoints before / after the rotation */
	EVP_PKEY *rot_old, *rot_new;    /* sign the rotation statement */
	uint64_t odd_seq;               /* this checkpoint (if not 0) is signed by odd_key */
	EVP_PKEY *odd_key;
	int rot_seq_delta; /* the statement names another seq */
	int flip_pop;      /* damage the new key's signature (proof of possession) */
	int drop_rot;      /* the K record becomes an ordinary event */
};

static const struct spec good = {NULL, NULL, NULL, NULL, 0, NULL, 0, 0, 0};

static void
spec_init(struct spec *s)
{
	*s = good;
	s->ck_before = ka;
	s->ck_after = kb;
	s->rot_old = ka;
	s->rot_new = kb;
}

/* Damages the last signature line of a note (the new key's): one bit of the signature. */
static void
flip_last_sig(char **note, size_t *len)
{
	char *last = *note + *len - 1, *b64 = NULL;
	uint8_t sig[4 + 64];
	size_t n, blen, head;

	while (last > *note && last[-1] != ' ') {
		last--;
	}
	CU_ASSERT_FATAL(aud_b64_decode(last, (size_t)(*note + *len - 1 - last), sig, sizeof(sig),
	                               &n) == 0 &&
	                n == sizeof(sig));
	sig[20] ^= 1;
	CU_ASSERT_FATAL(aud_b64_encode(sig, sizeof(sig), &b64, &blen) == 0);
	head = (size_t)(last - *note);
	memcpy(*note + head, b64, blen);
	free(b64);
}

static void
forge(const struct spec *sp)
{
	char *lines[NLINES_MAX];
	uint8_t chain[AUD_HASH_LEN] = {0}, prev_note[AUD_HASH_LEN] = {0};
	struct aud_range range;
	size_t i;

	aud_range_init(&range);
	for (i = 0; i < norig; i++) {
		struct aud_record_view rec;
		struct aud_buf b = {0};
		uint8_t leaf[AUD_HASH_LEN], nchain[AUD_HASH_LEN], root[AUD_HASH_LEN];
		char *payload, *note = NULL, *b64 = NULL, type;
		size_t plen, nlen, blen;

		CU_ASSERT_FATAL(aud_record_parse(orig[i], strlen(orig[i]) - 1, &rec) == 0);
		payload = strndup(rec.payload, rec.payload_len);
		plen = rec.payload_len;
		type = rec.type;
		if (rec.type == 'C') {
			EVP_PKEY *k = rec.seq < rot_seq ? sp->ck_before : sp->ck_after;

			if (sp->odd_seq != 0 && rec.seq == sp->odd_seq) {
				k = sp->odd_key;
			}
			aud_range_root(&range, root);
			CU_ASSERT_FATAL(aud_checkpoint_sign(k, ORIGIN, rec.seq, root, chain,
			                                    rec.time_ns, prev_note, &note,
			                                    &nlen) == 0);
			aud_sha256(note, nlen, NULL, 0, prev_note);
		} else if (rec.type == 'K' && sp->drop_rot) {
			free(payload);
			payload = strdup("{\"action\":\"hsmgate.keys.sign\"}");
			plen = strlen(payload);
			type = 'E';
		} else if (rec.type == 'K') {
			CU_ASSERT_FATAL(
			        aud_rotation_sign(sp->rot_old, sp->rot_new, ORIGIN,
			                          rec.seq + (uint64_t)(int64_t)sp->rot_seq_delta,
			                          rec.time_ns, chain, &note, &nlen) == 0);
			if (sp->flip_pop) {
				flip_last_sig(&note, &nlen);
			}
		}
		if (note != NULL) {
			CU_ASSERT_FATAL(aud_b64_encode((uint8_t *)note, nlen, &b64, &blen) == 0);
			free(payload);
			payload = b64;
			plen = blen;
			free(note);
		}
		CU_ASSERT_FATAL(aud_record_format(&b, rec.seq, rec.time_ns, type, payload, plen,
		                                  chain, leaf, nchain) == 0);
		memcpy(chain, nchain, AUD_HASH_LEN);
		aud_range_push(&range, leaf);
		lines[i] = b.data;
		free(payload);
	}
	write_lines(lines, norig);
	for (i = 0; i < norig; i++) {
		free(lines[i]);
	}
}

static int
run_verify(const char *const *pubs, size_t npubs, const char *ext, uint64_t from,
           struct aud_verify_result *res)
{
	struct aud_verify_options vo;
	struct aud_keyring *kr = NULL;
	int r;

	CU_ASSERT_FATAL(aud_keyring_load(&kr, pubs, npubs) == 0);
	aud_verify_options_init(&vo);
	vo.dir = logd;
	vo.keyring = kr;
	vo.checkpoint_path = ext;
	vo.from = from;
	r = aud_log_verify(&vo, res);
	aud_keyring_free(kr);
	return r;
}

static const char *const only_a[] = {apub};
static const char *const only_b[] = {bpub};
static const char *const only_c[] = {cpub};
static const char *const a_and_b[] = {apub, bpub};

static void
expect(const char *const *pubs, size_t npubs, uint64_t from, enum aud_damage kind, uint64_t seq)
{
	struct aud_verify_result res;
	int r = run_verify(pubs, npubs, NULL, from, &res);

	CU_ASSERT(r == AUD_ERR_VERIFY);
	CU_ASSERT(res.damage == kind);
	CU_ASSERT(res.seq == seq);
	if (r != AUD_ERR_VERIFY || res.damage != kind || res.seq != seq) {
		fprintf(stderr, "want %s@%llu, got %d %s@%llu: %s\n", aud_damage_name(kind),
		        (unsigned long long)seq, r, aud_damage_name(res.damage),
		        (unsigned long long)res.seq, res.detail);
	}
}

static void
expect_ok(const char *const *pubs, size_t npubs, uint64_t from)
{
	struct aud_verify_result res;
	int r = run_verify(pubs, npubs, NULL, from, &res);

	CU_ASSERT(r == 0);
	if (r != 0) {
		fprintf(stderr, "want OK from %llu, got %d %s@%llu: %s\n", (unsigned long long)from,
		        r, aud_damage_name(res.damage), (unsigned long long)res.seq, res.detail);
	}
}

/* ---- the writer ------------------------------------------------------------------------ */

static void
test_rotation_records(void)
{
	struct aud_record_view k, e, c;
	struct aud_rotation_view rv;
	char *note = NULL, vk[AUD_MAX_VKEY + 1];
	size_t len;

	restore();
	CU_ASSERT_FATAL(rot_seq > 0 && rot_seq + 2 < norig);
	CU_ASSERT_FATAL(aud_record_parse(orig[rot_seq], strlen(orig[rot_seq]) - 1, &k) == 0);
	CU_ASSERT(k.type == 'K' && k.seq == rot_seq);
	/* The old key sealed what it signed just before. */
	CU_ASSERT(find_type('C', rot_seq - 1) == rot_seq - 1);
	CU_ASSERT_FATAL(aud_checkpoint_decode_payload(k.payload, k.payload_len, &note, &len) == 0);
	CU_ASSERT_FATAL(aud_rotation_parse_note(note, len, &rv) == 0);
	CU_ASSERT_STRING_EQUAL(rv.origin, ORIGIN);
	CU_ASSERT(rv.seq == rot_seq && rv.time_ns == k.time_ns);
	CU_ASSERT(aud_key_vkey(apub, ORIGIN, vk) == 0);
	CU_ASSERT_STRING_EQUAL(rv.old_vkey, vk);
	CU_ASSERT(aud_key_vkey(bkey, ORIGIN, vk) == 0); /* the public half of a private key */
	CU_ASSERT_STRING_EQUAL(rv.new_vkey, vk);
	free(note);
	/* Then the audit event, then the new key's checkpoint. */
	CU_ASSERT_FATAL(aud_record_parse(orig[rot_seq + 1], strlen(orig[rot_seq + 1]) - 1, &e) ==
	                0);
	CU_ASSERT(e.type == 'E');
	CU_ASSERT(strstr(e.payload, "\"action\":\"hsmgate.audit-key.rotate\"") != NULL);
	CU_ASSERT(strstr(e.payload, "\"severity\":\"warning\"") != NULL);
	CU_ASSERT(strstr(e.payload, vk) != NULL); /* responseData.keyId: the new vkey */
	CU_ASSERT(strstr(e.payload, "PRIVATE") == NULL);
	CU_ASSERT_FATAL(aud_record_parse(orig[rot_seq + 2], strlen(orig[rot_seq + 2]) - 1, &c) ==
	                0);
	CU_ASSERT(c.type == 'C');
	CU_ASSERT(aud_record_is_event('E') && aud_record_is_event('S') && aud_record_is_event('R'));
	CU_ASSERT(!aud_record_is_event('C') && !aud_record_is_event('K'));
}

static void
test_reopen_needs_key_in_force(void)
{
	struct aud_log_options o;
	struct aud_log *log = NULL;
	struct stat before, after;

	restore();
	CU_ASSERT_FATAL(stat(segp, &before) == 0);
	/* The retired key and a key never announced are refused, and nothing is written. */
	opts(&o, logd, akey);
	CU_ASSERT(aud_log_open(&log, &o) == AUD_ERR_KEY_NOT_CURRENT);
	CU_ASSERT(log == NULL);
	opts(&o, logd, ckey);
	CU_ASSERT(aud_log_open(&log, &o) == AUD_ERR_KEY_NOT_CURRENT);
	CU_ASSERT_FATAL(stat(segp, &after) == 0);
	CU_ASSERT(before.st_size == after.st_size);
	CU_ASSERT_STRING_EQUAL(aud_strerror(AUD_ERR_KEY_NOT_CURRENT),
	                       "the signing key is not the key in force in the audit log (a new "
	                       "key must be announced with hsmgate-audit rotate-key)");
	/* The key in force opens it. */
	opts(&o, logd, bkey);
	CU_ASSERT_FATAL(aud_log_open(&log, &o) == 0);
	CU_ASSERT(aud_log_close(log) == 0);
	restore();
}

static void
test_unrotated_log_refuses_other_key(void)
{
	struct aud_log_options o;
	struct aud_log *log = NULL;
	char dir[700];

	snprintf(dir, sizeof(dir), "%s/plain", tmp);
	opts(&o, dir, akey);
	CU_ASSERT_FATAL(aud_log_open(&log, &o) == 0);
	CU_ASSERT(append_n(log, 3) == 0);
	CU_ASSERT(aud_log_close(log) == 0);
	opts(&o, dir, ckey);
	CU_ASSERT(aud_log_open(&log, &o) == AUD_ERR_KEY_NOT_CURRENT);
	opts(&o, dir, akey);
	CU_ASSERT_FATAL(aud_log_open(&log, &o) == 0);
	CU_ASSERT(aud_log_close(log) == 0);
}

static void
test_rotate_refusals(void)
{
	struct aud_log_options o;
	struct aud_log *log = NULL;
	char dir[700];
	uint64_t seq = 1;

	snprintf(dir, sizeof(dir), "%s/refusals", tmp);
	opts(&o, dir, akey);
	CU_ASSERT_FATAL(aud_log_open(&log, &o) == 0);
	CU_ASSERT(aud_log_rotate(log, akey, &seq) == AUD_ERR_INVALID); /* the key in force */
	CU_ASSERT(seq == 0);
	CU_ASSERT(aud_log_rotate(log, bpub, &seq) == AUD_ERR_KEY); /* cannot sign */
	CU_ASSERT(aud_log_rotate(log, "/nonexistent.key", &seq) == AUD_ERR_KEY);
	CU_ASSERT(aud_log_rotate(log, bkey, &seq) == 0);
	CU_ASSERT(aud_log_rotate(log, akey, &seq) == AUD_ERR_INVALID); /* retired */
	CU_ASSERT(aud_log_rotate(log, ckey, &seq) == 0);               /* a -> b -> c */
	CU_ASSERT(aud_log_close(log) == 0);
	/* A retired key stays retired after a reopen too. */
	opts(&o, dir, ckey);
	CU_ASSERT_FATAL(aud_log_open(&log, &o) == 0);
	CU_ASSERT(aud_log_rotate(log, bkey, &seq) == AUD_ERR_INVALID);
	CU_ASSERT(aud_log_rotate(log, akey, &seq) == AUD_ERR_INVALID);
	CU_ASSERT(aud_log_close(log) == 0);
	/* Two rotations verify from the first key alone. */
	{
		struct aud_verify_options vo;
		struct aud_verify_result res;
		char vk[AUD_MAX_VKEY + 1];

		aud_verify_options_init(&vo);
		vo.dir = dir;
		vo.pubkey_path = apub;
		CU_ASSERT(aud_log_verify(&vo, &res) == 0);
		CU_ASSERT(res.rotations == 2);
		CU_ASSERT(aud_key_vkey(cpub, ORIGIN, vk) == 0);
		CU_ASSERT_STRING_EQUAL(res.key_in_force, vk);
	}
}

/* ---- verifying across a rotation ----------------------------------------------------- */

static void
test_verify_across_rotation(void)
{
	struct aud_verify_result res;
	char vk[AUD_MAX_VKEY + 1];

	restore();
	CU_ASSERT(run_verify(only_a, 1, NULL, 0, &res) == 0);
	CU_ASSERT(res.records == norig && res.rotations == 1);
	CU_ASSERT(aud_key_vkey(bpub, ORIGIN, vk) == 0);
	CU_ASSERT_STRING_EQUAL(res.key_in_force, vk);
	expect_ok(a_and_b, 2, 0);
	/* From after the rotation: the new key alone, or the old one (the rotation before
	 * --from is checked with it and hands over to b). */
	expect_ok(only_b, 1, rot_seq + 1);
	expect_ok(only_a, 1, rot_seq + 1);
	/* From the rotation itself it is checked in full: that needs the old key. */
	expect(only_b, 1, rot_seq, AUD_DAMAGE_SIGNATURE, rot_seq);
	expect_ok(only_a, 1, rot_seq);
	/* From before the rotation the new key alone is not enough: the checkpoints there are
	 * a's. */
	expect(only_b, 1, 0, AUD_DAMAGE_SIGNATURE, find_type('C', 0));
	expect(only_b, 1, 5, AUD_DAMAGE_SIGNATURE, find_type('C', 5));
	/* A stranger's key verifies nothing. */
	expect(only_c, 1, rot_seq + 1, AUD_DAMAGE_SIGNATURE, find_type('C', rot_seq + 1));
	/* A rebuilt log with the right keys verifies: the forging below changes one thing. */
	{
		struct spec s;

		spec_init(&s);
		forge(&s);
		expect_ok(only_a, 1, 0);
		restore();
	}
}

static void
test_checkpoint_after_rotation_by_old_key(void)
{
	struct spec s;
	size_t c = find_type('C', rot_seq);

	spec_init(&s);
	s.ck_after = ka; /* the retired key keeps signing */
	forge(&s);
	expect(only_a, 1, 0, AUD_DAMAGE_KEY_WINDOW, c);
	expect(a_and_b, 2, 0, AUD_DAMAGE_KEY_WINDOW, c);
	/* Verified from after the rotation with b: a's signature is just not b's. */
	expect(only_b, 1, rot_seq + 1, AUD_DAMAGE_SIGNATURE, c);
	restore();
}

static void
test_checkpoint_before_rotation_by_new_key(void)
{
	struct spec s;
	size_t c = last_c_before(rot_seq - 1);

	spec_init(&s);
	s.odd_seq = c;
	s.odd_key = kb; /* b signs before it is in force */
	forge(&s);
	expect(a_and_b, 2, 0, AUD_DAMAGE_KEY_WINDOW, c);
	expect(only_a, 1, 0, AUD_DAMAGE_SIGNATURE, c);
	restore();
}

static void
test_rotation_signed_by_wrong_key(void)
{
	struct spec s;

	spec_init(&s);
	s.rot_old = kc; /* not the key in force */
	forge(&s);
	expect(only_a, 1, 0, AUD_DAMAGE_SIGNATURE, rot_seq);
	/* Before --from it is followed, not judged: b is trusted as a given key ... */
	expect_ok(only_b, 1, rot_seq + 1);
	/* ... but a alone cannot vouch for b through it. */
	expect(only_a, 1, rot_seq + 1, AUD_DAMAGE_SIGNATURE, find_type('C', rot_seq + 1));
	restore();
}

static void
test_rotation_without_proof_of_possession(void)
{
	struct spec s;

	spec_init(&s);
	s.flip_pop = 1;
	forge(&s);
	expect(only_a, 1, 0, AUD_DAMAGE_SIGNATURE, rot_seq);
	restore();
}

static void
test_rotation_replayed_elsewhere(void)
{
	struct spec s;

	spec_init(&s);
	s.rot_seq_delta = 7; /* a statement made for another place */
	forge(&s);
	expect(only_a, 1, 0, AUD_DAMAGE_CHECKPOINT, rot_seq);
	restore();
}

static void
test_resigned_with_other_keys(void)
{
	struct spec s;

	/* A forger without a or b re-signs everything, rotation included, with c and d. */
	spec_init(&s);
	s.ck_before = kc;
	s.rot_old = kc;
	s.rot_new = kd;
	s.ck_after = kd;
	forge(&s);
	expect(only_a, 1, 0, AUD_DAMAGE_SIGNATURE, find_type('C', 0));
	expect(a_and_b, 2, 0, AUD_DAMAGE_SIGNATURE, find_type('C', 0));
	expect(only_b, 1, rot_seq + 1, AUD_DAMAGE_SIGNATURE, find_type('C', rot_seq + 1));
	restore();
}

static void
test_writer_refuses_forged_windows(void)
{
	struct aud_log_options o;
	struct aud_log *log = NULL;
	struct spec s;

	opts(&o, logd, bkey);
	spec_init(&s);
	s.ck_after = ka;
	forge(&s);
	CU_ASSERT(aud_log_open(&log, &o) == AUD_ERR_TAMPER);
	spec_init(&s);
	s.rot_old = kc;
	forge(&s);
	CU_ASSERT(aud_log_open(&log, &o) == AUD_ERR_TAMPER);
	spec_init(&s);
	s.flip_pop = 1;
	forge(&s);
	CU_ASSERT(aud_log_open(&log, &o) == AUD_ERR_TAMPER);
	/* A forger's own log handed over to b cannot be made without b: with it, though, the
	 * rebuilt log is whole again. */
	spec_init(&s);
	forge(&s);
	CU_ASSERT_FATAL(aud_log_open(&log, &o) == 0);
	CU_ASSERT(aud_log_close(log) == 0);
	restore();
}

static void
test_external_checkpoint_across_rotation(void)
{
	struct aud_verify_result res;
	struct spec s;
	char *note = NULL;
	size_t len;

	restore();
	CU_ASSERT_FATAL(aud_log_last_checkpoint(logd, &note, &len) == 0);
	CU_ASSERT_FATAL(test_file_write(extp, note, len) == 0);
	free(note);
	/* Kept by an auditor who only knew a: b's signature on it is learnt from the log. */
	CU_ASSERT(run_verify(only_a, 1, extp, 0, &res) == 0);
	/* Cut back behind the rotation: truncation, once the note is known genuine. */
	write_lines(orig, rot_seq - 3);
	CU_ASSERT(run_verify(a_and_b, 2, extp, 0, &res) == AUD_ERR_VERIFY);
	CU_ASSERT(res.damage == AUD_DAMAGE_TRUNCATED && res.seq == rot_seq - 3);
	CU_ASSERT(run_verify(only_a, 1, extp, 0, &res) == AUD_ERR_VERIFY);
	CU_ASSERT(res.damage == AUD_DAMAGE_SIGNATURE);
	/* ... and says why a cut may be what it is, and what tells. */
	CU_ASSERT(strstr(res.detail, "beyond the log's") != NULL &&
	          strstr(res.detail, "give that key too") != NULL);
	/* The holder of the retired key rewrites the log without the rotation: a alone cannot
	 * tell, the checkpoint kept elsewhere can. */
	spec_init(&s);
	s.drop_rot = 1;
	s.ck_after = ka;
	forge(&s);
	expect_ok(only_a, 1, 0);
	CU_ASSERT(run_verify(a_and_b, 2, extp, 0, &res) == AUD_ERR_VERIFY);
	CU_ASSERT(res.damage == AUD_DAMAGE_KEY_WINDOW && res.seq == norig - 1);
	CU_ASSERT(run_verify(only_a, 1, extp, 0, &res) == AUD_ERR_VERIFY);
	restore();
}

/* ---- proofs --------------------------------------------------------------------------- */

static int
proof_with(const char *const *pubs, size_t n, const char *text, size_t len)
{
	struct aud_keyring *kr = NULL;
	uint64_t seq;
	int r;

	CU_ASSERT_FATAL(aud_keyring_load(&kr, pubs, n) == 0);
	r = aud_proof_verify_keyring(text, len, kr, &seq, NULL, NULL);
	aud_keyring_free(kr);
	return r;
}

static int
consistency_with(const char *const *pubs, size_t n, const char *old, size_t olen)
{
	struct aud_keyring *kr = NULL;
	char *text = NULL;
	int r;

	CU_ASSERT_FATAL(aud_keyring_load(&kr, pubs, n) == 0);
	r = aud_log_consistency_keyring(logd, kr, old, olen, NULL, 0, &text);
	aud_keyring_free(kr);
	free(text);
	return r;
}

static void
test_proofs_across_rotation(void)
{
	struct aud_record_view rec;
	char *before = NULL, *after = NULL, *note = NULL;
	size_t blen, alen, nlen, c_before = last_c_before(rot_seq), c_after;

	restore();
	c_after = find_type('C', rot_seq);
	/* Inclusion: a record sealed by a, and one sealed by b. */
	CU_ASSERT_FATAL(aud_proof_build(logd, 5, 0, &before, &blen) == 0);
	CU_ASSERT_FATAL(aud_proof_build(logd, rot_seq + 1, 0, &after, &alen) == 0);
	CU_ASSERT(proof_with(only_a, 1, before, blen) == 0);
	CU_ASSERT(proof_with(only_b, 1, before, blen) == AUD_ERR_SIGNATURE);
	CU_ASSERT(proof_with(only_b, 1, after, alen) == 0);
	CU_ASSERT(proof_with(only_a, 1, after, alen) == AUD_ERR_SIGNATURE);
	CU_ASSERT(proof_with(a_and_b, 2, after, alen) == 0);
	/* The path-based call takes a keyring file too. */
	{
		char ring[700], *pa = NULL, *pb = NULL;
		size_t la, lb;
		uint64_t seq;

		snprintf(ring, sizeof(ring), "%s/ring.pub", tmp);
		CU_ASSERT_FATAL(read_all(apub, &pa, &la) == 0 && read_all(bpub, &pb, &lb) == 0);
		pa = realloc(pa, la + lb);
		memcpy(pa + la, pb, lb);
		CU_ASSERT_FATAL(test_file_write(ring, pa, la + lb) == 0);
		CU_ASSERT(aud_proof_verify(after, alen, ring, &seq, NULL, NULL) == 0);
		CU_ASSERT(aud_proof_verify(before, blen, ring, &seq, NULL, NULL) == 0);
		free(pa);
		free(pb);
	}
	/* Consistency from a's checkpoint before the rotation to b's last. */
	CU_ASSERT_FATAL(aud_record_parse(orig[c_before], strlen(orig[c_before]) - 1, &rec) == 0);
	CU_ASSERT_FATAL(aud_checkpoint_decode_payload(rec.payload, rec.payload_len, &note, &nlen) ==
	                0);
	CU_ASSERT(consistency_with(only_a, 1, note, nlen) == 0); /* b learnt from the log */
	CU_ASSERT(consistency_with(a_and_b, 2, note, nlen) == 0);
	CU_ASSERT(consistency_with(only_b, 1, note, nlen) == AUD_ERR_SIGNATURE);
	free(note);
	/* And from b's first checkpoint: b alone suffices. */
	CU_ASSERT_FATAL(aud_record_parse(orig[c_after], strlen(orig[c_after]) - 1, &rec) == 0);
	CU_ASSERT_FATAL(aud_checkpoint_decode_payload(rec.payload, rec.payload_len, &note, &nlen) ==
	                0);
	CU_ASSERT(consistency_with(only_b, 1, note, nlen) == 0);
	CU_ASSERT(consistency_with(only_c, 1, note, nlen) == AUD_ERR_SIGNATURE);
	free(note);
	free(before);
	free(after);
}

/* ---- sinks ---------------------------------------------------------------------------- */

static void
test_sink_skips_rotation(void)
{
	struct aud_sink_options so;
	struct aud_sink *sink = NULL;
	char out[700], cur[700], url[720], *data = NULL;
	size_t len, i, lines = 0, events = 0;

	restore();
	snprintf(out, sizeof(out), "%s/events.jsonl", tmp);
	snprintf(cur, sizeof(cur), "%s/events.cursor", tmp);
	snprintf(url, sizeof(url), "file:%s", out);
	aud_sink_options_init(&so);
	so.log_dir = logd;
	so.url = url;
	so.cursor_path = cur;
	CU_ASSERT_FATAL(aud_sink_open(&sink, &so) == 0);
	CU_ASSERT(aud_sink_run_once(sink) == 0);
	aud_sink_close(sink);
	for (i = 0; i < norig; i++) {
		struct aud_record_view rec;

		CU_ASSERT_FATAL(aud_record_parse(orig[i], strlen(orig[i]) - 1, &rec) == 0);
		events += aud_record_is_event(rec.type);
	}
	CU_ASSERT_FATAL(read_all(out, &data, &len) == 0);
	for (i = 0; i < len; i++) {
		lines += data[i] == '\n';
	}
	CU_ASSERT(lines == events);
	CU_ASSERT(memmem(data, len, "hsmgate.audit-key.rotate", 24) != NULL);
	free(data);
}

/* ---- the statement parser and keyrings ------------------------------------------------ */

static void
sample(char **note, size_t *len)
{
	uint8_t chain[AUD_HASH_LEN];

	memset(chain, 0x5a, sizeof(chain));
	CU_ASSERT_FATAL(aud_rotation_sign(ka, kb, ORIGIN, 1234, 1795720070329000000ull, chain, note,
	                                  len) == 0);
}

static void
test_statement_parse(void)
{
	struct aud_rotation_view rv, rv2;
	char *note = NULL, *cut;
	size_t len, i;
	int bit;

	sample(&note, &len);
	CU_ASSERT_FATAL(aud_rotation_parse_note(note, len, &rv) == 0);
	CU_ASSERT(rv.seq == 1234 && rv.time_ns == 1795720070329000000ull);
	CU_ASSERT(rv.chain[0] == 0x5a && rv.chain[31] == 0x5a);
	CU_ASSERT(strncmp(note, ORIGIN "\nhsmgate-audit key rotation v1\nseq 1234\n", 45) == 0);
	/* It is no checkpoint, and a checkpoint is no rotation. */
	{
		struct aud_checkpoint_view cp;
		uint8_t z[AUD_HASH_LEN] = {0};
		char *c = NULL;
		size_t clen;

		CU_ASSERT(aud_checkpoint_parse_note(note, len, &cp) == AUD_ERR_MALFORMED);
		CU_ASSERT_FATAL(aud_checkpoint_sign(ka, ORIGIN, 3, z, z, 5, z, &c, &clen) == 0);
		CU_ASSERT(aud_rotation_parse_note(c, clen, &rv2) == AUD_ERR_MALFORMED);
		free(c);
	}
	/* Truncated at every byte, and with a trailing byte. */
	for (i = 0; i < len; i++) {
		CU_ASSERT(aud_rotation_parse_note(note, i, &rv2) == AUD_ERR_MALFORMED);
	}
	cut = malloc(len + 1);
	memcpy(cut, note, len);
	cut[len] = '\n';
	CU_ASSERT(aud_rotation_parse_note(cut, len + 1, &rv2) == AUD_ERR_MALFORMED);
	CU_ASSERT(aud_rotation_parse_note(NULL, 0, &rv2) == AUD_ERR_MALFORMED);
	/* Every single-bit flip either fails to parse or parses into something else (the
	 * signatures then fail: the verifier's tests above). */
	for (i = 0; i < len; i++) {
		for (bit = 0; bit < 8; bit++) {
			memcpy(cut, note, len);
			cut[i] ^= (char)(1 << bit);
			if (aud_rotation_parse_note(cut, len, &rv2) == 0) {
				CU_ASSERT(memcmp(&rv, &rv2, sizeof(rv)) != 0);
			}
		}
	}
	free(cut);
	free(note);
}

static void
test_statement_refuses(void)
{
	struct aud_rotation_view rv;
	uint8_t chain[AUD_HASH_LEN] = {0};
	char *note = NULL, *p;
	size_t len;

	/* Same key on both sides, a bad origin. */
	CU_ASSERT(aud_rotation_sign(ka, ka, ORIGIN, 1, 1, chain, &note, &len) == AUD_ERR_INVALID);
	CU_ASSERT(aud_rotation_sign(ka, kb, "bad origin", 1, 1, chain, &note, &len) ==
	          AUD_ERR_INVALID);
	/* A vkey whose key id does not match its key. */
	sample(&note, &len);
	p = strstr(note, "\nnew ") + 5 + strlen(ORIGIN) + 1;
	*p = *p == '0' ? '1' : '0';
	CU_ASSERT(aud_rotation_parse_note(note, len, &rv) == AUD_ERR_MALFORMED);
	free(note);
	/* Signature lines swapped (the old key's must come first). */
	sample(&note, &len);
	{
		char *s1 = strstr(note, "\n\n") + 2, *s2 = strchr(s1, '\n') + 1, *tmpl;
		size_t l1 = (size_t)(s2 - s1), l2 = len - (size_t)(s2 - note);

		tmpl = malloc(l1);
		memcpy(tmpl, s1, l1);
		memmove(s1, s2, l2);
		memcpy(s1 + l2, tmpl, l1);
		free(tmpl);
	}
	CU_ASSERT(aud_rotation_parse_note(note, len, &rv) == AUD_ERR_MALFORMED);
	free(note);
	/* Another log's origin in a vkey. */
	sample(&note, &len);
	p = strstr(note, "\nold ") + 5;
	p[0] = 'X';
	CU_ASSERT(aud_rotation_parse_note(note, len, &rv) == AUD_ERR_MALFORMED);
	free(note);
}

static void
test_keyring_load(void)
{
	struct aud_keyring *kr = NULL;
	const char *priv[] = {akey}, *missing[] = {"/nonexistent.pub"}, *junk[] = {segp},
	           *two[] = {apub, bpub, apub};
	char ring[700], bad[700], *pa = NULL;
	size_t la;

	CU_ASSERT(aud_keyring_load(&kr, two, 3) == 0);
	CU_ASSERT(aud_keyring_count(kr) == 2); /* a given twice is one key */
	aud_keyring_free(kr);
	CU_ASSERT(aud_keyring_load(&kr, priv, 1) == AUD_ERR_KEY);
	CU_ASSERT(kr == NULL);
	CU_ASSERT(aud_keyring_load(&kr, missing, 1) == AUD_ERR_KEY);
	CU_ASSERT(aud_keyring_load(&kr, junk, 1) == AUD_ERR_KEY);
	CU_ASSERT(aud_keyring_load(&kr, two, 0) == AUD_ERR_INVALID);
	/* A damaged block after a good one. */
	CU_ASSERT_FATAL(read_all(apub, &pa, &la) == 0);
	snprintf(bad, sizeof(bad), "%s/bad.pub", tmp);
	pa = realloc(pa, 2 * la);
	memcpy(pa + la, pa, la);
	pa[la + 40] ^= 0x11;
	CU_ASSERT_FATAL(test_file_write(bad, pa, 2 * la) == 0);
	{
		const char *p[] = {bad};

		CU_ASSERT(aud_keyring_load(&kr, p, 1) == AUD_ERR_KEY);
	}
	/* A keyring file: two keys in one. */
	snprintf(ring, sizeof(ring), "%s/ab.pub", tmp);
	free(pa);
	{
		char *pb = NULL;
		size_t lb;
		const char *p[] = {ring};

		CU_ASSERT_FATAL(read_all(apub, &pa, &la) == 0 && read_all(bpub, &pb, &lb) == 0);
		pa = realloc(pa, la + lb);
		memcpy(pa + la, pb, lb);
		CU_ASSERT_FATAL(test_file_write(ring, pa, la + lb) == 0);
		CU_ASSERT(aud_keyring_load(&kr, p, 1) == 0);
		CU_ASSERT(aud_keyring_count(kr) == 2);
		aud_keyring_free(kr);
		free(pb);
	}
	free(pa);
}

static const struct test_case cases[] = {
        {"rotation: old key's checkpoint, K record, event, new key's checkpoint",
         test_rotation_records},
        {"reopen: the retired or an unannounced key is refused, the new key opens",
         test_reopen_needs_key_in_force},
        {"an unrotated log refuses another key", test_unrotated_log_refuses_other_key},
        {"rotate refuses the key in force, a retired key, a public key", test_rotate_refusals},
        {"verify across a rotation, from the start and from --from", test_verify_across_rotation},
        {"a checkpoint after the rotation signed by the old key: key window",
         test_checkpoint_after_rotation_by_old_key},
        {"a checkpoint before the rotation signed by the new key: key window",
         test_checkpoint_before_rotation_by_new_key},
        {"a rotation signed by a wrong key: bad signature", test_rotation_signed_by_wrong_key},
        {"a rotation without proof of possession: bad signature",
         test_rotation_without_proof_of_possession},
        {"a rotation statement replayed elsewhere: inconsistent", test_rotation_replayed_elsewhere},
        {"a log re-signed with other keys: bad signature", test_resigned_with_other_keys},
        {"the writer refuses forged key windows (tamper)", test_writer_refuses_forged_windows},
        {"an external checkpoint across a rotation", test_external_checkpoint_across_rotation},
        {"inclusion and consistency proofs across a rotation", test_proofs_across_rotation},
        {"sinks deliver the rotation event, not the K record", test_sink_skips_rotation},
        {"statement: parse, truncation, trailing bytes, bit flips", test_statement_parse},
        {"statement: refusals", test_statement_refuses},
        {"keyrings: files, duplicates, refusals", test_keyring_load},
        {NULL, NULL},
};

void
test_register(void)
{
	test_suite_add("audit/rotate", suite_init, suite_cleanup, cases);
}
