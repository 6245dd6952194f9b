/*
 * tests/audit/test_checkpoint.c — audit/checkpoint.c: key generation, the signed note
 * (C2SP signed-note shape, key id), verification with the right and a wrong key, extra
 * cosignature lines, and a note refused truncated at every byte or with any flipped byte.
 */
#include "audit/aud_int.h"
#include "tests/lib/test.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static char *tmp;
static char keyp[600], pubp[600], key2p[600], pub2p[600];
static EVP_PKEY *key, *pub, *pub2;

static int
suite_init(void)
{
	char prefix[600];

	if ((tmp = test_tmpdir_new("audit-ckpt")) == NULL) {
		return -1;
	}
	snprintf(prefix, sizeof(prefix), "%s/a", tmp);
	snprintf(keyp, sizeof(keyp), "%s/a.key", tmp);
	snprintf(pubp, sizeof(pubp), "%s/a.pub", tmp);
	if (aud_key_generate(prefix) != 0) {
		return -1;
	}
	snprintf(prefix, sizeof(prefix), "%s/b", tmp);
	snprintf(key2p, sizeof(key2p), "%s/b.key", tmp);
	snprintf(pub2p, sizeof(pub2p), "%s/b.pub", tmp);
	if (aud_key_generate(prefix) != 0) {
		return -1;
	}
	return aud_key_load_private(keyp, &key) == 0 && aud_key_load_public(pubp, &pub) == 0 &&
	                       aud_key_load_public(pub2p, &pub2) == 0
	               ? 0
	               : -1;
}

static int
suite_cleanup(void)
{
	EVP_PKEY_free(key);
	EVP_PKEY_free(pub);
	EVP_PKEY_free(pub2);
	test_tmpdir_remove(tmp);
	return 0;
}

static char *
sample(size_t *len)
{
	uint8_t root[AUD_HASH_LEN], chain[AUD_HASH_LEN], prev[AUD_HASH_LEN];
	char *note = NULL;

	memset(root, 0x11, sizeof(root));
	memset(chain, 0x22, sizeof(chain));
	memset(prev, 0x33, sizeof(prev));
	CU_ASSERT_FATAL(aud_checkpoint_sign(key, "hsmgate.test/audit/gw1", 1000, root, chain,
	                                    1795720070329000000ull, prev, &note, len) == 0);
	return note;
}

static void
test_keygen_files(void)
{
	struct stat st;
	char prefix[600];

	CU_ASSERT(stat(keyp, &st) == 0 && (st.st_mode & 0777) == 0600);
	CU_ASSERT(stat(pubp, &st) == 0);
	/* Never overwrites an existing key. */
	snprintf(prefix, sizeof(prefix), "%s/a", tmp);
	CU_ASSERT(aud_key_generate(prefix) == AUD_ERR_IO);
	CU_ASSERT(aud_key_load_private(pubp, &(EVP_PKEY *){NULL}) == AUD_ERR_KEY);
}

static void
test_key_file_private(void)
{
	unsigned mode;
	char missing[700];

	CU_ASSERT(aud_key_file_private(keyp, &mode) == 0 && mode == 0600);
	/* The public half is readable by all: not a place for a private key. */
	CU_ASSERT(chmod(pubp, 0644) == 0);
	CU_ASSERT(aud_key_file_private(pubp, &mode) == AUD_ERR_KEY && mode == 0644);
	CU_ASSERT(chmod(keyp, 0640) == 0);
	CU_ASSERT(aud_key_file_private(keyp, &mode) == AUD_ERR_KEY && mode == 0640);
	CU_ASSERT(chmod(keyp, 0600) == 0);
	CU_ASSERT(aud_key_file_private(tmp, &mode) == AUD_ERR_KEY); /* a directory */
	snprintf(missing, sizeof(missing), "%s/none.key", tmp);
	CU_ASSERT(aud_key_file_private(missing, &mode) == AUD_ERR_IO);
}

static void
test_sign_verify(void)
{
	struct aud_checkpoint_view cp;
	size_t len;
	char *note = sample(&len);
	const char *sigline;

	CU_ASSERT(strncmp(note,
	                  "hsmgate.test/audit/"
	                  "gw1\n1000\nERERERERERERERERERERERERERERERERERERERERERE=\nchain ",
	                  79) == 0);
	sigline = strstr(note, "\n\n\xe2\x80\x94 hsmgate.test/audit/gw1 ");
	CU_ASSERT(sigline != NULL);
	CU_ASSERT(note[len - 1] == '\n');
	CU_ASSERT(aud_checkpoint_check(note, len, pub, &cp) == 0);
	CU_ASSERT_STRING_EQUAL(cp.origin, "hsmgate.test/audit/gw1");
	CU_ASSERT(cp.size == 1000);
	CU_ASSERT(cp.time_ns == 1795720070329000000ull);
	CU_ASSERT(cp.root[0] == 0x11 && cp.chain[31] == 0x22 && cp.prev[5] == 0x33);
	CU_ASSERT(aud_checkpoint_verify_note(note, len, pubp, &cp) == 0);
	CU_ASSERT(aud_checkpoint_check(note, len, pub2, &cp) == AUD_ERR_SIGNATURE);
	CU_ASSERT(aud_checkpoint_verify_note(note, len, pub2p, &cp) == AUD_ERR_SIGNATURE);
	CU_ASSERT(aud_checkpoint_parse_note(note, len, &cp) == 0);
	free(note);
}

static void
test_cosignature_ignored(void)
{
	struct aud_checkpoint_view cp;
	size_t len;
	char *note = sample(&len), *two;
	const char extra[] = "\xe2\x80\x94 witness.example/w1 "
	                     "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	                     "AAAAAAAAAAAAAAAAAAAAAA=\n";

	two = malloc(len + sizeof(extra));
	memcpy(two, note, len);
	memcpy(two + len, extra, sizeof(extra));
	CU_ASSERT(aud_checkpoint_check(two, len + sizeof(extra) - 1, pub, &cp) == 0);
	/* Only a witness signature: no signature by our key. */
	CU_ASSERT(aud_checkpoint_check(two, len + sizeof(extra) - 1, pub2, &cp) ==
	          AUD_ERR_SIGNATURE);
	free(two);
	free(note);
}

static void
test_truncated_and_flipped(void)
{
	struct aud_checkpoint_view cp;
	size_t len, i;
	char *note = sample(&len);

	for (i = 0; i < len; i++) {
		CU_ASSERT(aud_checkpoint_check(note, i, pub, &cp) != 0);
	}
	for (i = 0; i < len; i++) {
		note[i] ^= 0x01;
		CU_ASSERT(aud_checkpoint_check(note, len, pub, &cp) != 0);
		note[i] ^= 0x01;
	}
	CU_ASSERT(aud_checkpoint_check(note, len, pub, &cp) == 0);
	free(note);
}

static void
test_payload_round_trip(void)
{
	struct aud_checkpoint_view cp;
	size_t len, blen, nlen;
	char *note = sample(&len), *b64 = NULL, *back = NULL;

	CU_ASSERT_FATAL(aud_b64_encode((uint8_t *)note, len, &b64, &blen) == 0);
	CU_ASSERT_FATAL(aud_checkpoint_decode_payload(b64, blen, &back, &nlen) == 0);
	CU_ASSERT(nlen == len && memcmp(back, note, len) == 0);
	CU_ASSERT(aud_checkpoint_check(back, nlen, pub, &cp) == 0);
	free(back);
	CU_ASSERT(aud_checkpoint_decode_payload("***", 3, &back, &nlen) == AUD_ERR_MALFORMED);
	CU_ASSERT(back == NULL);
	free(b64);
	free(back);
	free(note);
}

static const struct test_case cases[] = {
        {"keygen writes 0600 private and public PEM, never overwrites", test_keygen_files},
        {"a private key file must be regular and the owner's alone", test_key_file_private},
        {"a note signs and verifies; another key is a bad signature", test_sign_verify},
        {"cosignature lines by other keys are ignored", test_cosignature_ignored},
        {"a note truncated at every byte or with any byte flipped fails",
         test_truncated_and_flipped},
        {"a checkpoint record payload decodes to its note", test_payload_round_trip},
        {NULL, NULL},
};

void
test_register(void)
{
	test_suite_add("audit/checkpoint", suite_init, suite_cleanup, cases);
}
