/* tests/hsm-partitions/crypto/crypto_test.c — see crypto_test.h. */
#include "tests/hsm-partitions/crypto/crypto_test.h"

#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

size_t
th_hex(const char *hex, unsigned char *out, size_t cap)
{
	size_t n = strlen(hex) / 2, i;

	if (strlen(hex) % 2 != 0 || n > cap) {
		fprintf(stderr, "th_hex: bad input\n");
		abort();
	}
	for (i = 0; i < n; i++) {
		unsigned v;

		if (sscanf(hex + 2 * i, "%2x", &v) != 1) {
			abort();
		}
		out[i] = (unsigned char)v;
	}
	return n;
}

struct part_key *
th_secret(CK_KEY_TYPE type, const unsigned char *v, size_t len)
{
	CK_ATTRIBUTE a[] = {{CKA_VALUE, (void *)v, len}};
	struct part_key *k = NULL;

	CU_ASSERT_EQUAL_FATAL(part_key_from_attrs(CKO_SECRET_KEY, type, a, 1, &k), CKR_OK);
	return k;
}

struct part_key *
th_key_from_list(CK_OBJECT_CLASS cls, CK_KEY_TYPE type, const struct part_attrs *l)
{
	CK_ATTRIBUTE a[16];
	size_t i, n = part_attrs_count(l);
	struct part_key *k = NULL;

	CU_ASSERT_FATAL(n <= 16);
	for (i = 0; i < n; i++) {
		a[i] = *part_attrs_at(l, i);
	}
	CU_ASSERT_EQUAL_FATAL(part_key_from_attrs(cls, type, a, n, &k), CKR_OK);
	return k;
}

struct part_key *
th_pub_of(EVP_PKEY *pk)
{
	struct part_key *k = NULL;
	CK_ATTRIBUTE a[2];
	unsigned char b1[1024], b2[1024];
	size_t l1 = 0, l2 = 0;

	if (EVP_PKEY_is_a(pk, "RSA")) {
		BIGNUM *n = NULL, *e = NULL;

		CU_ASSERT_FATAL(EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_N, &n));
		CU_ASSERT_FATAL(EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_E, &e));
		l1 = (size_t)BN_bn2bin(n, b1);
		l2 = (size_t)BN_bn2bin(e, b2);
		BN_free(n);
		BN_free(e);
		a[0] = (CK_ATTRIBUTE){CKA_MODULUS, b1, l1};
		a[1] = (CK_ATTRIBUTE){CKA_PUBLIC_EXPONENT, b2, l2};
		CU_ASSERT_EQUAL_FATAL(part_key_from_attrs(CKO_PUBLIC_KEY, CKK_RSA, a, 2, &k),
		                      CKR_OK);
		return k;
	}
	if (EVP_PKEY_is_a(pk, "ED25519")) {
		static const unsigned char oid[] = {0x06, 0x03, 0x2b, 0x65, 0x70};

		b2[0] = 0x04;
		b2[1] = 32;
		l1 = 32;
		CU_ASSERT_FATAL(EVP_PKEY_get_raw_public_key(pk, b2 + 2, &l1));
		a[0] = (CK_ATTRIBUTE){CKA_EC_PARAMS, (void *)oid, sizeof(oid)};
		a[1] = (CK_ATTRIBUTE){CKA_EC_POINT, b2, 34};
		CU_ASSERT_EQUAL_FATAL(part_key_from_attrs(CKO_PUBLIC_KEY, CKK_EC_EDWARDS, a, 2, &k),
		                      CKR_OK);
		return k;
	}
	/* EC: the curve OID as OpenSSL itself encodes it, independent of the engine's table */
	{
		unsigned char pt[200], *p = b1;
		char name[64];
		int n;

		CU_ASSERT_FATAL(EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, name,
		                                               sizeof(name), NULL));
		n = i2d_ASN1_OBJECT(OBJ_nid2obj(OBJ_sn2nid(name)), &p);
		CU_ASSERT_FATAL(n > 0);
		CU_ASSERT_FATAL(EVP_PKEY_get_octet_string_param(pk, OSSL_PKEY_PARAM_PUB_KEY, pt,
		                                                sizeof(pt), &l2));
		b2[0] = 0x04;
		if (l2 < 0x80) {
			b2[1] = (unsigned char)l2;
			memcpy(b2 + 2, pt, l2);
			l2 += 2;
		} else {
			b2[1] = 0x81;
			b2[2] = (unsigned char)l2;
			memcpy(b2 + 3, pt, l2);
			l2 += 3;
		}
		a[0] = (CK_ATTRIBUTE){CKA_EC_PARAMS, b1, (CK_ULONG)n};
		a[1] = (CK_ATTRIBUTE){CKA_EC_POINT, b2, l2};
		CU_ASSERT_EQUAL_FATAL(part_key_from_attrs(CKO_PUBLIC_KEY, CKK_EC, a, 2, &k),
		                      CKR_OK);
		return k;
	}
}

EVP_PKEY *
th_ossl_pair(const char *alg, const char *group, unsigned bits, struct part_key **priv,
             struct part_key **pub)
{
	EVP_PKEY *pk;
	PKCS8_PRIV_KEY_INFO *p8;
	unsigned char *der = NULL;
	int n;
	struct part_attrs *l = NULL;
	CK_KEY_TYPE type = 0;

	if (strcmp(alg, "RSA") == 0) {
		pk = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits);
	} else if (strcmp(alg, "EC") == 0) {
		pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", group);
	} else {
		pk = EVP_PKEY_Q_keygen(NULL, NULL, alg);
	}
	CU_ASSERT_PTR_NOT_NULL_FATAL(pk);
	p8 = EVP_PKEY2PKCS8(pk);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p8);
	n = i2d_PKCS8_PRIV_KEY_INFO(p8, &der);
	PKCS8_PRIV_KEY_INFO_free(p8);
	CU_ASSERT_FATAL(n > 0);
	CU_ASSERT_EQUAL_FATAL(part_key_from_pkcs8(der, (size_t)n, &type, &l), CKR_OK);
	OPENSSL_clear_free(der, (size_t)n);
	*priv = th_key_from_list(CKO_PRIVATE_KEY, type, l);
	part_attrs_free(l);
	*pub = th_pub_of(pk);
	return pk;
}

CK_MECHANISM
th_mech(CK_MECHANISM_TYPE t, void *param, CK_ULONG len)
{
	CK_MECHANISM m = {t, param, len};

	return m;
}

CK_RV
th_oneshot(enum part_op_kind kind, const CK_MECHANISM *m, const struct part_key *k,
           const unsigned char *in, size_t inlen, unsigned char *out, CK_ULONG *outlen)
{
	struct part_op *op = NULL;
	CK_RV rv;

	if ((rv = part_mech_op_init(kind, m, k, &op)) != CKR_OK) {
		return rv;
	}
	rv = part_op_oneshot(op, in, inlen, out, outlen);
	part_op_free(op);
	return rv;
}

CK_RV
th_verify(const CK_MECHANISM *m, const struct part_key *k, const unsigned char *in, size_t inlen,
          const unsigned char *sig, size_t siglen)
{
	struct part_op *op = NULL;
	CK_RV rv;

	if ((rv = part_mech_op_init(PART_OP_VERIFY, m, k, &op)) != CKR_OK) {
		return rv;
	}
	rv = part_op_verify(op, in, inlen, sig, siglen);
	part_op_free(op);
	return rv;
}
