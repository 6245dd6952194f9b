/*
 * tests/audit/test_verify.c — audit/verify.c against a log tampered with in each way the
 * issue lists: a flipped byte, a deleted line, two swapped lines, an inserted line (a copy
 * of an earlier record, a forged record with the right seq, junk), truncation behind an
 * externally kept checkpoint, re-signing with another key, and a rewrite that recomputes
 * every hash but cannot sign. Each must name the right sequence number and kind; the
 * untouched log must verify, also from --from and up to --to.
 */
#include "audit/aud_int.h"
#include "tests/lib/test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *tmp;
static char keyp[600], pubp[600], key2p[600], pub2p[600], logd[600], segp[700], extp[700];

#define NLINES_MAX 256
static char *orig[NLINES_MAX];
static size_t norig;

static struct aud_event *
mk_event(unsigned i)
{
	struct aud_event *ev = NULL;

	if (aud_event_new(&ev, "keys", i % 2 ? "sign" : "verify") != 0 ||
	    aud_event_set_initiator(ev, "tenant/acme/service/batch", NULL, AUD_INITIATOR_SERVICE,
	                            AUD_CRED_CERTIFICATE, "2001:db8::1") != 0 ||
	    aud_event_set_target(ev, "crn:hsmgate:acme:partition:p1:key:k9", NULL,
	                         AUD_TARGET_KEY) != 0 ||
	    aud_event_set_correlation(ev, 1, i) != 0 ||
	    aud_event_set_ckrv(ev, i % 5 ? 0 : 0x1b) != 0) {
		aud_event_free(ev);
		return NULL;
	}
	return ev;
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
suite_init(void)
{
	struct aud_log_options o;
	struct aud_log *log = NULL;
	char prefix[600], name[64];
	uint64_t seq = 0;
	unsigned i;
	int r = 0;

	if ((tmp = test_tmpdir_new("audit-verify")) == NULL) {
		return -1;
	}
	snprintf(prefix, sizeof(prefix), "%s/k", tmp);
	snprintf(keyp, sizeof(keyp), "%s/k.key", tmp);
	snprintf(pubp, sizeof(pubp), "%s/k.pub", tmp);
	if (aud_key_generate(prefix) != 0) {
		return -1;
	}
	snprintf(prefix, sizeof(prefix), "%s/other", tmp);
	snprintf(key2p, sizeof(key2p), "%s/other.key", tmp);
	snprintf(pub2p, sizeof(pub2p), "%s/other.pub", tmp);
	if (aud_key_generate(prefix) != 0) {
		return -1;
	}
	snprintf(logd, sizeof(logd), "%s/log", tmp);
	snprintf(extp, sizeof(extp), "%s/external-checkpoint", tmp);
	aud_segment_name(0, name);
	snprintf(segp, sizeof(segp), "%s/%s", logd, name);
	aud_log_options_init(&o);
	o.dir = logd;
	o.origin = "hsmgate.test/audit/gw1";
	o.key_path = keyp;
	o.checkpoint_every = 10;
	if (aud_log_open(&log, &o) != 0) {
		return -1;
	}
	for (i = 0; i < 50 && r == 0; i++) {
		struct aud_event *ev = mk_event(i);

		r = ev != NULL ? aud_log_append(log, ev, NULL, NULL, &seq) : -1;
		aud_event_free(ev);
	}
	if (r != 0 || aud_log_wait(log, seq) != 0 || aud_log_close(log) != 0) {
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
	test_tmpdir_remove(tmp);
	return 0;
}

/* Writes the segment from a list of lines. */
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

static int
run_verify(const char *pub, const char *ext, uint64_t from, uint64_t to,
           struct aud_verify_result *res)
{
	struct aud_verify_options vo;

	aud_verify_options_init(&vo);
	vo.dir = logd;
	vo.pubkey_path = pub;
	vo.checkpoint_path = ext;
	vo.from = from;
	vo.to = to;
	return aud_log_verify(&vo, res);
}

static void
expect_damage(enum aud_damage kind, uint64_t seq)
{
	struct aud_verify_result res;
	int r = run_verify(pubp, NULL, 0, UINT64_MAX, &res);

	CU_ASSERT(r == AUD_ERR_VERIFY);
	CU_ASSERT(res.damage == kind);
	CU_ASSERT(res.seq == seq);
	if (res.damage != kind || res.seq != seq) {
		fprintf(stderr, "want %s@%llu, got %s@%llu: %s\n", aud_damage_name(kind),
		        (unsigned long long)seq, aud_damage_name(res.damage),
		        (unsigned long long)res.seq, res.detail);
	}
}

/* Index of the first line of type t at or after `from`. */
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

static void
test_untouched_verifies(void)
{
	struct aud_verify_result res;

	restore();
	CU_ASSERT(run_verify(pubp, NULL, 0, UINT64_MAX, &res) == 0);
	CU_ASSERT(res.records == norig);
	CU_ASSERT(res.checkpoints == 7); /* start, every 10 (5), shutdown */
	CU_ASSERT(res.unsealed == 0);
	CU_ASSERT(run_verify(pubp, NULL, 20, UINT64_MAX, &res) == 0);
	CU_ASSERT(run_verify(pubp, NULL, 5, 25, &res) == 0);
	CU_ASSERT(res.records < norig);
}

static void
test_flipped_byte(void)
{
	char *lines[NLINES_MAX];
	size_t k = find_type('E', 20);

	memcpy(lines, orig, sizeof(lines));
	lines[k] = strdup(orig[k]);
	strstr(lines[k], "tenant/acme")[3] ^= 0x20; /* "ten" -> "teN" */
	write_lines(lines, norig);
	expect_damage(AUD_DAMAGE_MODIFIED, k);
	free(lines[k]);
	restore();
}

static void
test_flipped_hash_byte(void)
{
	char *lines[NLINES_MAX];
	size_t k = 17, len = strlen(orig[k]);

	memcpy(lines, orig, sizeof(lines));
	lines[k] = strdup(orig[k]);
	lines[k][len - 3] = lines[k][len - 3] == '0' ? '1' : '0'; /* in the chain hash */
	write_lines(lines, norig);
	expect_damage(AUD_DAMAGE_MODIFIED, k);
	free(lines[k]);
	restore();
}

static void
test_deleted_line(void)
{
	char *lines[NLINES_MAX];
	size_t k = 23;

	memcpy(lines, orig, k * sizeof(char *));
	memcpy(lines + k, orig + k + 1, (norig - k - 1) * sizeof(char *));
	write_lines(lines, norig - 1);
	expect_damage(AUD_DAMAGE_DELETED, k);
	restore();
}

static void
test_swapped_lines(void)
{
	char *lines[NLINES_MAX];
	size_t k = 30;

	memcpy(lines, orig, sizeof(lines));
	lines[k] = orig[k + 1];
	lines[k + 1] = orig[k];
	write_lines(lines, norig);
	expect_damage(AUD_DAMAGE_REORDERED, k);
	restore();
}

static void
insert_at(size_t k, char *extra)
{
	char *lines[NLINES_MAX + 1];

	memcpy(lines, orig, k * sizeof(char *));
	lines[k] = extra;
	memcpy(lines + k + 1, orig + k, (norig - k) * sizeof(char *));
	write_lines(lines, norig + 1);
}

static void
test_inserted_copy(void)
{
	insert_at(40, orig[12]);
	expect_damage(AUD_DAMAGE_INSERTED, 40);
	restore();
}

static void
test_inserted_junk(void)
{
	insert_at(33, "hello, auditor\n");
	expect_damage(AUD_DAMAGE_INSERTED, 33);
	restore();
}

/* A well-formed record with the right seq and hashes chained from the real predecessor:
 * only its successor (whose chain no longer links) gives it away. */
static void
test_inserted_forged(void)
{
	struct aud_record_view prev, cur;
	struct aud_buf b = {0};
	uint8_t leaf[AUD_HASH_LEN], chain[AUD_HASH_LEN];
	const char *payload = "{\"action\":\"hsmgate.keys.export\"}";
	size_t k = 27;

	CU_ASSERT_FATAL(aud_record_parse(orig[k - 1], strlen(orig[k - 1]) - 1, &prev) == 0);
	CU_ASSERT_FATAL(aud_record_parse(orig[k], strlen(orig[k]) - 1, &cur) == 0);
	CU_ASSERT_FATAL(aud_record_format(&b, k, cur.time_ns, 'E', payload, strlen(payload),
	                                  prev.chain, leaf, chain) == 0);
	insert_at(k, b.data);
	/* Verify sees a valid record k, then a second record k: an insertion at k+1's place.
	 * The first bad seq is k + 1 (record k's slot holds a forgery that hashes right). */
	expect_damage(AUD_DAMAGE_INSERTED, k + 1);
	aud_buf_free(&b);
	restore();
}

static void
test_truncated_behind_external_checkpoint(void)
{
	struct aud_verify_result res;
	char *note = NULL;
	size_t len, cut = 44;

	restore();
	CU_ASSERT_FATAL(aud_log_last_checkpoint(logd, &note, &len) == 0);
	CU_ASSERT_FATAL(test_file_write(extp, note, len) == 0);
	CU_ASSERT(run_verify(pubp, extp, 0, UINT64_MAX, &res) == 0);
	/* Cut the tail: without the external checkpoint the shorter log looks fine. */
	write_lines(orig, cut);
	CU_ASSERT(run_verify(pubp, NULL, 0, UINT64_MAX, &res) == 0);
	CU_ASSERT(run_verify(pubp, extp, 0, UINT64_MAX, &res) == AUD_ERR_VERIFY);
	CU_ASSERT(res.damage == AUD_DAMAGE_TRUNCATED);
	CU_ASSERT(res.seq == cut);
	/* An external checkpoint signed by another key is itself a bad signature. */
	CU_ASSERT(run_verify(pub2p, extp, 0, UINT64_MAX, &res) == AUD_ERR_VERIFY);
	CU_ASSERT(res.damage == AUD_DAMAGE_SIGNATURE);
	free(note);
	restore();
}

/*
 * Rebuilds the whole log from its payloads: record `mod` gets a changed payload; with
 * `key` every checkpoint is re-signed (a forger with another key), without it the old
 * checkpoint payloads are kept (a forger with no key at all).
 */
static void
forge(EVP_PKEY *key, size_t mod)
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
		char *payload, *note = NULL, *b64 = NULL;
		size_t plen, nlen, blen;

		CU_ASSERT_FATAL(aud_record_parse(orig[i], strlen(orig[i]) - 1, &rec) == 0);
		payload = strndup(rec.payload, rec.payload_len);
		plen = rec.payload_len;
		if (i == mod) {
			char *p = strstr(payload, "hsmgate.keys.");

			CU_ASSERT_FATAL(p != NULL);
			p[13] = 'x'; /* the forger's change to the action */
		}
		if (rec.type == 'C' && key != NULL) {
			aud_range_root(&range, root);
			CU_ASSERT_FATAL(aud_checkpoint_sign(key, "hsmgate.test/audit/gw1", rec.seq,
			                                    root, chain, rec.time_ns, prev_note,
			                                    &note, &nlen) == 0);
			aud_sha256(note, nlen, NULL, 0, prev_note);
			CU_ASSERT_FATAL(aud_b64_encode((uint8_t *)note, nlen, &b64, &blen) == 0);
			free(payload);
			payload = b64;
			plen = blen;
			free(note);
		}
		CU_ASSERT_FATAL(aud_record_format(&b, rec.seq, rec.time_ns, rec.type, payload, plen,
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

static void
test_resigned_with_other_key(void)
{
	struct aud_verify_result res;
	EVP_PKEY *other = NULL;
	size_t first_c = find_type('C', 0);

	CU_ASSERT_FATAL(aud_key_load_private(key2p, &other) == 0);
	forge(other, find_type('E', 20));
	/* Self-consistent under the forger's key ... */
	CU_ASSERT(run_verify(pub2p, NULL, 0, UINT64_MAX, &res) == 0);
	/* ... but not under ours: the first checkpoint's signature fails. */
	expect_damage(AUD_DAMAGE_SIGNATURE, first_c);
	EVP_PKEY_free(other);
	restore();
}

static void
test_rewritten_without_key(void)
{
	size_t k = find_type('E', 25), prev_c = k, next_c = find_type('C', k);

	while (prev_c > 0 && find_type('C', prev_c) != prev_c) {
		prev_c--;
	}
	forge(NULL, k);
	/* Every leaf and chain hash is right; the next signed checkpoint is not. */
	expect_damage(AUD_DAMAGE_MODIFIED, prev_c + 1);
	(void)next_c;
	restore();
}

static void
test_bad_key_file(void)
{
	struct aud_verify_result res;

	CU_ASSERT(run_verify(keyp, NULL, 0, UINT64_MAX, &res) == AUD_ERR_KEY); /* a private key */
	CU_ASSERT(run_verify("/nonexistent", NULL, 0, UINT64_MAX, &res) == AUD_ERR_KEY);
}

static const struct test_case cases[] = {
        {"an untouched log verifies (whole, --from, --from/--to)", test_untouched_verifies},
        {"a flipped byte in an event: modified at its seq", test_flipped_byte},
        {"a flipped byte in a stored hash: modified at its seq", test_flipped_hash_byte},
        {"a deleted line: deleted at its seq", test_deleted_line},
        {"two swapped lines: reordered at the first", test_swapped_lines},
        {"a copy of an earlier record inserted: inserted", test_inserted_copy},
        {"a junk line inserted: inserted", test_inserted_junk},
        {"a forged record inserted: inserted", test_inserted_forged},
        {"truncation behind an external checkpoint: truncated",
         test_truncated_behind_external_checkpoint},
        {"re-signed with another key: bad signature", test_resigned_with_other_key},
        {"all hashes recomputed without the key: modified", test_rewritten_without_key},
        {"a missing or private key file is refused", test_bad_key_file},
        {NULL, NULL},
};

void
test_register(void)
{
	test_suite_add("audit/verify", suite_init, suite_cleanup, cases);
}
