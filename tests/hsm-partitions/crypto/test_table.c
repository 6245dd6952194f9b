/* tests/hsm-partitions/crypto/test_table.c — the mechanism table (table.c). */
#include "tests/lib/test.h"
#include "tests/hsm-partitions/crypto/crypto_test.h"

#include <string.h>

static void
test_list_size_query(void)
{
	size_t n = 0;

	CU_ASSERT_EQUAL(part_mech_list(NULL, &n), CKR_OK);
	CU_ASSERT_EQUAL(n, 46);
}

static void
test_list_too_small(void)
{
	CK_MECHANISM_TYPE t[4];
	size_t n = 4, all = 0;

	CU_ASSERT_EQUAL(part_mech_list(NULL, &all), CKR_OK);
	CU_ASSERT_EQUAL(part_mech_list(t, &n), CKR_BUFFER_TOO_SMALL);
	CU_ASSERT_EQUAL(n, all);
}

static void
test_list_every_entry_has_info_and_no_dups(void)
{
	CK_MECHANISM_TYPE t[128];
	CK_MECHANISM_INFO info;
	size_t n = 128, i, j;

	CU_ASSERT_EQUAL_FATAL(part_mech_list(t, &n), CKR_OK);
	for (i = 0; i < n; i++) {
		CU_ASSERT_EQUAL(part_mech_info(t[i], &info), CKR_OK);
		CU_ASSERT(info.flags != 0);
		CU_ASSERT(info.ulMinKeySize <= info.ulMaxKeySize);
		for (j = i + 1; j < n; j++) {
			CU_ASSERT_NOT_EQUAL(t[i], t[j]);
		}
	}
}

static void
test_list_has_required_mechanisms(void)
{
	static const CK_MECHANISM_TYPE want[] = {
	        CKM_RSA_PKCS_KEY_PAIR_GEN,
	        CKM_RSA_PKCS,
	        CKM_RSA_X_509,
	        CKM_SHA1_RSA_PKCS,
	        CKM_SHA224_RSA_PKCS,
	        CKM_SHA256_RSA_PKCS,
	        CKM_SHA384_RSA_PKCS,
	        CKM_SHA512_RSA_PKCS,
	        CKM_RSA_PKCS_PSS,
	        CKM_SHA256_RSA_PKCS_PSS,
	        CKM_SHA384_RSA_PKCS_PSS,
	        CKM_SHA512_RSA_PKCS_PSS,
	        CKM_RSA_PKCS_OAEP,
	        CKM_EC_KEY_PAIR_GEN,
	        CKM_ECDSA,
	        CKM_ECDSA_SHA1,
	        CKM_ECDSA_SHA224,
	        CKM_ECDSA_SHA256,
	        CKM_ECDSA_SHA384,
	        CKM_ECDSA_SHA512,
	        CKM_ECDH1_DERIVE,
	        CKM_ECDH1_COFACTOR_DERIVE,
	        CKM_EC_EDWARDS_KEY_PAIR_GEN,
	        CKM_EDDSA,
	        CKM_AES_KEY_GEN,
	        CKM_AES_ECB,
	        CKM_AES_CBC,
	        CKM_AES_CBC_PAD,
	        CKM_AES_CTR,
	        CKM_AES_GCM,
	        CKM_AES_CMAC,
	        CKM_AES_KEY_WRAP,
	        CKM_AES_KEY_WRAP_PAD,
	        CKM_GENERIC_SECRET_KEY_GEN,
	        CKM_SHA_1_HMAC,
	        CKM_SHA224_HMAC,
	        CKM_SHA256_HMAC,
	        CKM_SHA384_HMAC,
	        CKM_SHA512_HMAC,
	        CKM_SHA_1,
	        CKM_SHA224,
	        CKM_SHA256,
	        CKM_SHA384,
	        CKM_SHA512,
	};
	CK_MECHANISM_INFO info;
	size_t i;

	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		CU_ASSERT_EQUAL(part_mech_info(want[i], &info), CKR_OK);
	}
}

static void
test_info_rsa(void)
{
	CK_MECHANISM_INFO info;

	CU_ASSERT_EQUAL_FATAL(part_mech_info(CKM_RSA_PKCS, &info), CKR_OK);
	CU_ASSERT_EQUAL(info.ulMinKeySize, 2048);
	CU_ASSERT_EQUAL(info.ulMaxKeySize, 4096);
	CU_ASSERT_EQUAL(info.flags, CKF_ENCRYPT | CKF_DECRYPT | CKF_SIGN | CKF_VERIFY |
	                                    CKF_SIGN_RECOVER | CKF_VERIFY_RECOVER | CKF_WRAP |
	                                    CKF_UNWRAP);
	CU_ASSERT_EQUAL_FATAL(part_mech_info(CKM_SHA256_RSA_PKCS_PSS, &info), CKR_OK);
	CU_ASSERT_EQUAL(info.flags, CKF_SIGN | CKF_VERIFY);
	CU_ASSERT_EQUAL_FATAL(part_mech_info(CKM_RSA_PKCS_KEY_PAIR_GEN, &info), CKR_OK);
	CU_ASSERT_EQUAL(info.flags, CKF_GENERATE_KEY_PAIR);
}

static void
test_info_ec(void)
{
	CK_MECHANISM_INFO info;

	CU_ASSERT_EQUAL_FATAL(part_mech_info(CKM_ECDSA, &info), CKR_OK);
	CU_ASSERT_EQUAL(info.ulMinKeySize, 256);
	CU_ASSERT_EQUAL(info.ulMaxKeySize, 521);
	CU_ASSERT_EQUAL(info.flags,
	                CKF_SIGN | CKF_VERIFY | CKF_EC_F_P | CKF_EC_NAMEDCURVE | CKF_EC_UNCOMPRESS);
	CU_ASSERT_EQUAL_FATAL(part_mech_info(CKM_ECDH1_DERIVE, &info), CKR_OK);
	CU_ASSERT(info.flags & CKF_DERIVE);
}

static void
test_info_aes_bytes(void)
{
	CK_MECHANISM_INFO info;

	CU_ASSERT_EQUAL_FATAL(part_mech_info(CKM_AES_GCM, &info), CKR_OK);
	CU_ASSERT_EQUAL(info.ulMinKeySize, 16);
	CU_ASSERT_EQUAL(info.ulMaxKeySize, 32);
	CU_ASSERT_EQUAL(info.flags, CKF_ENCRYPT | CKF_DECRYPT);
	CU_ASSERT_EQUAL_FATAL(part_mech_info(CKM_AES_KEY_WRAP_PAD, &info), CKR_OK);
	CU_ASSERT(info.flags & CKF_WRAP);
	CU_ASSERT(info.flags & CKF_UNWRAP);
	CU_ASSERT_EQUAL_FATAL(part_mech_info(CKM_SHA256, &info), CKR_OK);
	CU_ASSERT_EQUAL(info.flags, CKF_DIGEST);
}

static void
test_info_unknown(void)
{
	CK_MECHANISM_INFO info;

	CU_ASSERT_EQUAL(part_mech_info(CKM_DES3_CBC, &info), CKR_MECHANISM_INVALID);
	CU_ASSERT_EQUAL(part_mech_info(0x80001234UL, &info), CKR_MECHANISM_INVALID);
}

static void
test_multipart(void)
{
	CU_ASSERT_TRUE(part_mech_multipart(CKM_AES_GCM));
	CU_ASSERT_TRUE(part_mech_multipart(CKM_SHA256_RSA_PKCS));
	CU_ASSERT_TRUE(part_mech_multipart(CKM_SHA256_HMAC));
	CU_ASSERT_FALSE(part_mech_multipart(CKM_RSA_PKCS));
	CU_ASSERT_FALSE(part_mech_multipart(CKM_ECDSA));
	CU_ASSERT_FALSE(part_mech_multipart(CKM_EDDSA));
	CU_ASSERT_FALSE(part_mech_multipart(CKM_DES3_CBC));
}

void
test_register(void)
{
	static const struct test_case cases[] = {
	        {"list_size_query", test_list_size_query},
	        {"list_too_small", test_list_too_small},
	        {"list_every_entry_has_info_and_no_dups",
	         test_list_every_entry_has_info_and_no_dups},
	        {"list_has_required_mechanisms", test_list_has_required_mechanisms},
	        {"info_rsa", test_info_rsa},
	        {"info_ec", test_info_ec},
	        {"info_aes_bytes", test_info_aes_bytes},
	        {"info_unknown", test_info_unknown},
	        {"multipart", test_multipart},
	        {NULL, NULL},
	};

	test_suite_add("hsm-partitions/crypto/table", NULL, NULL, cases);
}
