/* tests/hsm-partitions/test_digest.c — hsm-partitions/digest.c: the mechanism table,
 * C_Digest* against OpenSSL's one-shot EVP_Digest, the size-query and operation-state
 * rules, C_GenerateRandom and C_SeedRandom. */
#include "tests/hsm-partitions/part_test.h"

#include <openssl/evp.h>

static const struct {
	CK_MECHANISM_TYPE mech;
	const char *md;
	CK_ULONG len;
} digests[] = {
        {CKM_SHA_1, "SHA1", 20},    {CKM_SHA224, "SHA224", 28}, {CKM_SHA256, "SHA256", 32},
        {CKM_SHA384, "SHA384", 48}, {CKM_SHA512, "SHA512", 64},
};

static CK_RV
digest_init(CK_SESSION_HANDLE h, CK_MECHANISM_TYPE type)
{
	CK_MECHANISM m = {type, NULL, 0};

	return CALL(CONN_A, C_DigestInit, NULL, (PUTU(h), (void)!proto_put_mechanism(&b, &m)));
}

/* C_Digest / C_DigestFinal: has = buffer given, cap its capacity; out gets data or length. */
static CK_RV
digest(CK_SESSION_HANDLE h, const void *data, size_t len, int has, CK_ULONG cap, CK_BYTE *out,
       CK_ULONG *outlen)
{
	struct proto_cur c;
	CK_RV rv = CALL(CONN_A, C_Digest, &c, (PUTU(h), PUTY(data, len), PUTO(has, cap)));

	*outlen = cap;
	if (rv == CKR_OK || rv == CKR_BUFFER_TOO_SMALL) {
		CU_ASSERT(proto_get_outbuf_reply(&c, has ? out : NULL, outlen) == 0);
	}
	return rv;
}

static CK_RV
digest_final(CK_SESSION_HANDLE h, int has, CK_ULONG cap, CK_BYTE *out, CK_ULONG *outlen)
{
	struct proto_cur c;
	CK_RV rv = CALL(CONN_A, C_DigestFinal, &c, (PUTU(h), PUTO(has, cap)));

	*outlen = cap;
	if (rv == CKR_OK || rv == CKR_BUFFER_TOO_SMALL) {
		CU_ASSERT(proto_get_outbuf_reply(&c, has ? out : NULL, outlen) == 0);
	}
	return rv;
}

static CK_SESSION_HANDLE
session(void)
{
	CK_SESSION_HANDLE h;

	t_setup();
	t_ready();
	CU_ASSERT_FATAL(ck_open(CONN_A, RO, &h) == CKR_OK);
	return h;
}

static void
test_mechanism_list(void)
{
	CK_ULONG list[128], n, total;
	CK_MECHANISM_INFO mi;
	struct proto_cur c;
	size_t i;

	t_setup();
	CU_ASSERT_EQUAL(CALL(CONN_A, C_GetMechanismList, &c, (PUTU(SLOT), PUTL(0, 0))), CKR_OK);
	n = 0;
	CU_ASSERT(proto_get_ulongs_reply(&c, NULL, &n) == 0);
	/* The digests come first in the engine's table, then the key mechanisms. */
	CU_ASSERT(n > 5 && n < 128);
	total = n;
	CU_ASSERT_EQUAL(CALL(CONN_A, C_GetMechanismList, &c, (PUTU(SLOT), PUTL(1, 2))),
	                CKR_BUFFER_TOO_SMALL);
	CU_ASSERT_EQUAL(CALL(CONN_A, C_GetMechanismList, &c, (PUTU(SLOT), PUTL(1, 128))), CKR_OK);
	n = 128;
	CU_ASSERT(proto_get_ulongs_reply(&c, list, &n) == 0);
	CU_ASSERT_EQUAL_FATAL(n, total);
	for (i = 0; i < 5; i++) {
		CU_ASSERT_EQUAL(list[i], digests[i].mech);
		CU_ASSERT_EQUAL(CALL(CONN_A, C_GetMechanismInfo, &c, (PUTU(SLOT), PUTU(list[i]))),
		                CKR_OK);
		CU_ASSERT(proto_get_mech_info(&c, &mi) == 0);
		CU_ASSERT_EQUAL(mi.flags, CKF_DIGEST);
	}
	CU_ASSERT_EQUAL(CALL(CONN_A, C_GetMechanismInfo, NULL, (PUTU(SLOT), PUTU(CKM_DES_CBC))),
	                CKR_MECHANISM_INVALID);
	CU_ASSERT_EQUAL(CALL(CONN_A, C_GetMechanismList, NULL, (PUTU(9), PUTL(0, 0))),
	                CKR_SLOT_ID_INVALID);
	t_teardown();
}

static void
test_digest_single_and_multi(void)
{
	static const char msg[] = "The quick brown fox jumps over the lazy dog";
	unsigned char ref[EVP_MAX_MD_SIZE];
	CK_BYTE out[64];
	CK_ULONG len;
	unsigned int rlen;
	CK_SESSION_HANDLE h = session();
	size_t i;

	for (i = 0; i < sizeof(digests) / sizeof(digests[0]); i++) {
		CU_ASSERT_FATAL(EVP_Digest(msg, strlen(msg), ref, &rlen,
		                           EVP_get_digestbyname(digests[i].md), NULL) == 1);
		CU_ASSERT_EQUAL(rlen, digests[i].len);
		/* single part */
		CU_ASSERT_EQUAL(digest_init(h, digests[i].mech), CKR_OK);
		CU_ASSERT_EQUAL(digest(h, msg, strlen(msg), 1, sizeof(out), out, &len), CKR_OK);
		CU_ASSERT(len == rlen && memcmp(out, ref, rlen) == 0);
		/* multi part, in three pieces (one empty) */
		CU_ASSERT_EQUAL(digest_init(h, digests[i].mech), CKR_OK);
		CU_ASSERT_EQUAL(CALL(CONN_A, C_DigestUpdate, NULL, (PUTU(h), PUTY(msg, 10))),
		                CKR_OK);
		CU_ASSERT_EQUAL(CALL(CONN_A, C_DigestUpdate, NULL, (PUTU(h), PUTY(NULL, 0))),
		                CKR_OK);
		CU_ASSERT_EQUAL(CALL(CONN_A, C_DigestUpdate, NULL,
		                     (PUTU(h), PUTY(msg + 10, strlen(msg) - 10))),
		                CKR_OK);
		CU_ASSERT_EQUAL(digest_final(h, 1, sizeof(out), out, &len), CKR_OK);
		CU_ASSERT(len == rlen && memcmp(out, ref, rlen) == 0);
		/* the operation is over */
		CU_ASSERT_EQUAL(digest_final(h, 1, sizeof(out), out, &len),
		                CKR_OPERATION_NOT_INITIALIZED);
	}
	t_teardown();
}

static void
test_digest_size_query_and_too_small(void)
{
	unsigned char ref[EVP_MAX_MD_SIZE];
	unsigned int rlen;
	CK_BYTE out[64];
	CK_ULONG len;
	CK_SESSION_HANDLE h = session();

	CU_ASSERT_FATAL(EVP_Digest("abc", 3, ref, &rlen, EVP_sha256(), NULL) == 1);
	CU_ASSERT_EQUAL(digest_init(h, CKM_SHA256), CKR_OK);
	/* NULL buffer: the length, and the operation goes on */
	CU_ASSERT_EQUAL(digest(h, "abc", 3, 0, 0, NULL, &len), CKR_OK);
	CU_ASSERT_EQUAL(len, 32);
	/* a zero-capacity buffer is not a NULL buffer: too small */
	CU_ASSERT_EQUAL(digest(h, "abc", 3, 1, 0, out, &len), CKR_BUFFER_TOO_SMALL);
	CU_ASSERT_EQUAL(len, 32);
	CU_ASSERT_EQUAL(digest(h, "abc", 3, 1, 31, out, &len), CKR_BUFFER_TOO_SMALL);
	CU_ASSERT_EQUAL(len, 32);
	CU_ASSERT_EQUAL(digest(h, "abc", 3, 1, 32, out, &len), CKR_OK);
	CU_ASSERT(len == 32 && memcmp(out, ref, 32) == 0);
	/* the same for C_DigestFinal */
	CU_ASSERT_EQUAL(digest_init(h, CKM_SHA256), CKR_OK);
	CU_ASSERT_EQUAL(CALL(CONN_A, C_DigestUpdate, NULL, (PUTU(h), PUTY("abc", 3))), CKR_OK);
	CU_ASSERT_EQUAL(digest_final(h, 0, 0, NULL, &len), CKR_OK);
	CU_ASSERT_EQUAL(len, 32);
	CU_ASSERT_EQUAL(digest_final(h, 1, 8, out, &len), CKR_BUFFER_TOO_SMALL);
	CU_ASSERT_EQUAL(digest_final(h, 1, 64, out, &len), CKR_OK);
	CU_ASSERT(len == 32 && memcmp(out, ref, 32) == 0);
	t_teardown();
}

static void
test_digest_operation_active(void)
{
	CK_BYTE out[64];
	CK_ULONG len;
	CK_SESSION_HANDLE h = session();

	CU_ASSERT_EQUAL(digest_init(h, CKM_SHA_1), CKR_OK);
	CU_ASSERT_EQUAL(digest_init(h, CKM_SHA_1), CKR_OPERATION_ACTIVE);
	/* C_Digest cannot finish a multi-part operation; the error ends it. */
	CU_ASSERT_EQUAL(CALL(CONN_A, C_DigestUpdate, NULL, (PUTU(h), PUTY("x", 1))), CKR_OK);
	CU_ASSERT_EQUAL(digest(h, "x", 1, 1, 64, out, &len), CKR_OPERATION_ACTIVE);
	CU_ASSERT_EQUAL(digest_final(h, 1, 64, out, &len), CKR_OPERATION_NOT_INITIALIZED);
	t_teardown();
}

static void
test_digest_not_initialized(void)
{
	CK_BYTE out[64];
	CK_ULONG len;
	CK_SESSION_HANDLE h = session();

	CU_ASSERT_EQUAL(digest(h, "x", 1, 1, 64, out, &len), CKR_OPERATION_NOT_INITIALIZED);
	CU_ASSERT_EQUAL(CALL(CONN_A, C_DigestUpdate, NULL, (PUTU(h), PUTY("x", 1))),
	                CKR_OPERATION_NOT_INITIALIZED);
	CU_ASSERT_EQUAL(digest_final(h, 1, 64, out, &len), CKR_OPERATION_NOT_INITIALIZED);
	t_teardown();
}

static void
test_digest_mechanism_invalid(void)
{
	CK_MECHANISM m = {CKM_SHA256, "x", 1};
	CK_SESSION_HANDLE h = session();

	CU_ASSERT_EQUAL(digest_init(h, CKM_MD5), CKR_MECHANISM_INVALID);
	CU_ASSERT_EQUAL(digest_init(h, CKM_AES_ECB), CKR_MECHANISM_INVALID);
	CU_ASSERT_EQUAL(
	        CALL(CONN_A, C_DigestInit, NULL, (PUTU(h), (void)!proto_put_mechanism(&b, &m))),
	        CKR_MECHANISM_PARAM_INVALID);
	/* neither left an operation behind */
	CU_ASSERT_EQUAL(digest_init(h, CKM_SHA256), CKR_OK);
	t_teardown();
}

static void
test_digest_dies_with_session(void)
{
	CK_SESSION_HANDLE h = session();

	CU_ASSERT_EQUAL(digest_init(h, CKM_SHA512), CKR_OK);
	CU_ASSERT_EQUAL(ck_close(CONN_A, h), CKR_OK);
	t_teardown(); /* leak checkers see the context freed */
}

static void
test_generate_random(void)
{
	struct proto_cur c;
	CK_BYTE a[64], z[64];
	CK_ULONG len;
	CK_SESSION_HANDLE h = session();

	memset(z, 0, sizeof(z));
	CU_ASSERT_EQUAL(CALL(CONN_A, C_GenerateRandom, &c, (PUTU(h), PUTO(1, 64))), CKR_OK);
	len = sizeof(a);
	CU_ASSERT(proto_get_outbuf_reply(&c, a, &len) == 0);
	CU_ASSERT_EQUAL(len, 64);
	CU_ASSERT(memcmp(a, z, 64) != 0);
	CU_ASSERT_EQUAL(CALL(CONN_A, C_GenerateRandom, &c, (PUTU(h), PUTO(1, 0))), CKR_OK);
	CU_ASSERT_EQUAL(CALL(CONN_A, C_GenerateRandom, NULL, (PUTU(h), PUTO(0, 0))),
	                CKR_ARGUMENTS_BAD);
	CU_ASSERT_EQUAL(CALL(CONN_A, C_GenerateRandom, NULL, (PUTU(h), PUTO(1, 64u << 20))),
	                CKR_ARGUMENTS_BAD);
	CU_ASSERT_EQUAL(CALL(CONN_B, C_GenerateRandom, NULL, (PUTU(h), PUTO(1, 64))),
	                CKR_SESSION_HANDLE_INVALID);
	t_teardown();
}

static void
test_seed_random(void)
{
	CK_SESSION_HANDLE h = session();

	CU_ASSERT_EQUAL(CALL(CONN_A, C_SeedRandom, NULL, (PUTU(h), PUTY("seed", 4))),
	                CKR_RANDOM_SEED_NOT_SUPPORTED);
	CU_ASSERT_EQUAL(CALL(CONN_A, C_SeedRandom, NULL, (PUTU(h + 1), PUTY("seed", 4))),
	                CKR_SESSION_HANDLE_INVALID);
	t_teardown();
}

static const struct test_case cases[] = {
        {"mechanism list and info", test_mechanism_list},
        {"digest single and multi-part vs OpenSSL", test_digest_single_and_multi},
        {"digest size query, buffer too small", test_digest_size_query_and_too_small},
        {"digest CKR_OPERATION_ACTIVE", test_digest_operation_active},
        {"digest CKR_OPERATION_NOT_INITIALIZED", test_digest_not_initialized},
        {"digest mechanism invalid", test_digest_mechanism_invalid},
        {"digest ends with its session", test_digest_dies_with_session},
        {"C_GenerateRandom", test_generate_random},
        {"C_SeedRandom", test_seed_random},
        {NULL, NULL},
};

void
test_register(void)
{
	test_suite_add("hsm-partitions/digest", NULL, NULL, cases);
}
