/*
 * tests/hsm-partitions/crypto/test_key.c — keys (key.c, attrs.c): import from attributes,
 * generation into attributes, PKCS #8; each refusal's CK_RV.
 */
#include "tests/lib/test.h"
#include "tests/hsm-partitions/crypto/crypto_test.h"

#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

static const unsigned char oid_p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48,
                                         0xce, 0x3d, 0x03, 0x01, 0x07};
static const unsigned char oid_p521[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23};
static const unsigned char oid_ed[] = {0x06, 0x03, 0x2b, 0x65, 0x70};
static const unsigned char str_ed[] = "\x13\x0c"
                                      "edwards25519";
static const unsigned char oid_k1[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a}; /* secp256k1 */

static CK_ULONG
ulong_of(const struct part_attrs *l, CK_ATTRIBUTE_TYPE t)
{
	const CK_ATTRIBUTE *a = part_attrs_find(l, t);
	CK_ULONG v = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	CU_ASSERT_EQUAL_FATAL(a->ulValueLen, sizeof(CK_ULONG));
	memcpy(&v, a->pValue, sizeof(v));
	return v;
}

/* ---- secret keys ----------------------------------------------------------------------- */

static void
test_aes_from_attrs(void)
{
	unsigned char v[32] = {1};
	CK_ULONG len = 32, bad = 16;
	CK_ATTRIBUTE a[] = {{CKA_VALUE, v, 32}, {CKA_VALUE_LEN, &len, sizeof(len)}};
	struct part_key *k = NULL;

	CU_ASSERT_EQUAL(part_key_from_attrs(CKO_SECRET_KEY, CKK_AES, a, 2, &k), CKR_OK);
	CU_ASSERT_EQUAL(part_key_size(k), 32);
	CU_ASSERT_EQUAL(part_key_type(k), CKK_AES);
	CU_ASSERT_EQUAL(part_key_class(k), CKO_SECRET_KEY);
	part_key_free(k);
	a[1].pValue = &bad;
	CU_ASSERT_EQUAL(part_key_from_attrs(CKO_SECRET_KEY, CKK_AES, a, 2, &k),
	                CKR_ATTRIBUTE_VALUE_INVALID);
	a[0].ulValueLen = 17;
	CU_ASSERT_EQUAL(part_key_from_attrs(CKO_SECRET_KEY, CKK_AES, a, 1, &k),
	                CKR_ATTRIBUTE_VALUE_INVALID);
	CU_ASSERT_EQUAL(part_key_from_attrs(CKO_SECRET_KEY, CKK_AES, a + 1, 1, &k),
	                CKR_TEMPLATE_INCOMPLETE);
	CU_ASSERT_EQUAL(part_key_from_attrs(CKO_PUBLIC_KEY, CKK_AES, a, 1, &k),
	                CKR_KEY_TYPE_INCONSISTENT);
	CU_ASSERT_EQUAL(part_key_from_attrs(CKO_SECRET_KEY, CKK_DES3, a, 1, &k),
	                CKR_KEY_TYPE_INCONSISTENT);
	CU_ASSERT_PTR_NULL(k);
}

static void
test_generate_secret(void)
{
	CK_ULONG len = 24;
	CK_ATTRIBUTE t[] = {{CKA_VALUE_LEN, &len, sizeof(len)}};
	CK_MECHANISM m = th_mech(CKM_AES_KEY_GEN, NULL, 0);
	struct part_attrs *l = NULL, *l2 = NULL;
	const CK_ATTRIBUTE *v, *v2;
	struct part_key *k;

	CU_ASSERT_EQUAL_FATAL(part_key_generate(&m, t, 1, &l), CKR_OK);
	CU_ASSERT_EQUAL_FATAL(part_key_generate(&m, t, 1, &l2), CKR_OK);
	v = part_attrs_find(l, CKA_VALUE);
	v2 = part_attrs_find(l2, CKA_VALUE);
	CU_ASSERT_EQUAL(v->ulValueLen, 24);
	CU_ASSERT_NOT_EQUAL(memcmp(v->pValue, v2->pValue, 24), 0);
	CU_ASSERT_EQUAL(ulong_of(l, CKA_VALUE_LEN), 24);
	k = th_key_from_list(CKO_SECRET_KEY, CKK_AES, l);
	CU_ASSERT_EQUAL(part_key_size(k), 24);
	part_key_free(k);
	part_attrs_free(l);
	part_attrs_free(l2);
	m.mechanism = CKM_GENERIC_SECRET_KEY_GEN;
	len = 100;
	CU_ASSERT_EQUAL_FATAL(part_key_generate(&m, t, 1, &l), CKR_OK);
	CU_ASSERT_EQUAL(part_attrs_find(l, CKA_VALUE)->ulValueLen, 100);
	part_attrs_free(l);
}

static void
test_refuse_generate_secret(void)
{
	CK_ULONG len = 20;
	CK_ATTRIBUTE t[] = {{CKA_VALUE_LEN, &len, sizeof(len)}};
	CK_MECHANISM m = th_mech(CKM_AES_KEY_GEN, NULL, 0);
	struct part_attrs *l = NULL;

	CU_ASSERT_EQUAL(part_key_generate(&m, t, 1, &l), CKR_ATTRIBUTE_VALUE_INVALID);
	CU_ASSERT_EQUAL(part_key_generate(&m, NULL, 0, &l), CKR_TEMPLATE_INCOMPLETE);
	t[0].ulValueLen = 4;
	CU_ASSERT_EQUAL(part_key_generate(&m, t, 1, &l), CKR_ATTRIBUTE_VALUE_INVALID);
	t[0].ulValueLen = sizeof(len);
	len = 0;
	m.mechanism = CKM_GENERIC_SECRET_KEY_GEN;
	CU_ASSERT_EQUAL(part_key_generate(&m, t, 1, &l), CKR_ATTRIBUTE_VALUE_INVALID);
	len = 16;
	m.pParameter = &len, m.ulParameterLen = sizeof(len);
	CU_ASSERT_EQUAL(part_key_generate(&m, t, 1, &l), CKR_MECHANISM_PARAM_INVALID);
	m = th_mech(CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0);
	CU_ASSERT_EQUAL(part_key_generate(&m, t, 1, &l), CKR_MECHANISM_INVALID);
	CU_ASSERT_PTR_NULL(l);
}

/* ---- RSA ------------------------------------------------------------------------------- */

static void
test_generate_rsa(void)
{
	CK_ULONG bits = 2048;
	unsigned char e3[] = {0x03};
	CK_ATTRIBUTE t[] = {{CKA_MODULUS_BITS, &bits, sizeof(bits)}, {CKA_PUBLIC_EXPONENT, e3, 1}};
	CK_MECHANISM m = th_mech(CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0);
	struct part_attrs *pub = NULL, *priv = NULL;
	static const CK_ATTRIBUTE_TYPE want[] = {
	        CKA_MODULUS, CKA_PUBLIC_EXPONENT, CKA_PRIVATE_EXPONENT, CKA_PRIME_1,
	        CKA_PRIME_2, CKA_EXPONENT_1,      CKA_EXPONENT_2,       CKA_COEFFICIENT};
	struct part_key *kpriv, *kpub;
	unsigned char *der = NULL, sig[256];
	size_t dl = 0, i;
	const unsigned char *p;
	EVP_PKEY *ossl;
	EVP_MD_CTX *c;
	CK_MECHANISM sm = th_mech(CKM_SHA256_RSA_PKCS, NULL, 0);
	CK_ULONG n = sizeof(sig);

	CU_ASSERT_EQUAL_FATAL(part_key_generate_pair(&m, t, 2, NULL, 0, &pub, &priv), CKR_OK);
	CU_ASSERT_EQUAL(ulong_of(pub, CKA_MODULUS_BITS), 2048);
	CU_ASSERT_EQUAL(part_attrs_find(pub, CKA_MODULUS)->ulValueLen, 256);
	CU_ASSERT_EQUAL(part_attrs_find(pub, CKA_PUBLIC_EXPONENT)->ulValueLen, 1);
	CU_ASSERT_EQUAL(*(unsigned char *)part_attrs_find(pub, CKA_PUBLIC_EXPONENT)->pValue, 3);
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		CU_ASSERT_PTR_NOT_NULL(part_attrs_find(priv, want[i]));
	}
	kpriv = th_key_from_list(CKO_PRIVATE_KEY, CKK_RSA, priv);
	kpub = th_key_from_list(CKO_PUBLIC_KEY, CKK_RSA, pub);
	CU_ASSERT_EQUAL(part_key_size(kpriv), 2048);
	/* OpenSSL reads the engine's PKCS #8 and verifies the engine's signature */
	CU_ASSERT_EQUAL_FATAL(part_key_to_pkcs8(kpriv, &der, &dl), CKR_OK);
	p = der;
	ossl = d2i_PrivateKey(EVP_PKEY_RSA, NULL, &p, (long)dl);
	if (ossl == NULL) {
		p = der;
		ossl = d2i_AutoPrivateKey(NULL, &p, (long)dl);
	}
	CU_ASSERT_PTR_NOT_NULL_FATAL(ossl);
	CU_ASSERT_EQUAL(EVP_PKEY_get_bits(ossl), 2048);
	CU_ASSERT_EQUAL(th_oneshot(PART_OP_SIGN, &sm, kpriv, der, dl, sig, &n), CKR_OK);
	c = EVP_MD_CTX_new();
	CU_ASSERT_FATAL(EVP_DigestVerifyInit_ex(c, NULL, "SHA256", NULL, NULL, ossl, NULL) > 0);
	CU_ASSERT_EQUAL(EVP_DigestVerify(c, sig, n, der, dl), 1);
	EVP_MD_CTX_free(c);
	CU_ASSERT_EQUAL(th_verify(&sm, kpub, der, dl, sig, n), CKR_OK);
	EVP_PKEY_free(ossl);
	OPENSSL_secure_clear_free(der, dl);
	part_key_free(kpriv);
	part_key_free(kpub);
	part_attrs_free(pub);
	part_attrs_free(priv);
}

static void
test_refuse_generate_rsa(void)
{
	CK_ULONG bits = 1024;
	unsigned char even[] = {0x01, 0x00, 0x00}, one[] = {0x01};
	CK_ATTRIBUTE t[] = {{CKA_MODULUS_BITS, &bits, sizeof(bits)},
	                    {CKA_PUBLIC_EXPONENT, even, 3}};
	CK_MECHANISM m = th_mech(CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0);
	struct part_attrs *pub = NULL, *priv = NULL;

	CU_ASSERT_EQUAL(part_key_generate_pair(&m, t, 1, NULL, 0, &pub, &priv),
	                CKR_ATTRIBUTE_VALUE_INVALID);
	bits = 8192;
	CU_ASSERT_EQUAL(part_key_generate_pair(&m, t, 1, NULL, 0, &pub, &priv),
	                CKR_ATTRIBUTE_VALUE_INVALID);
	bits = 2048;
	CU_ASSERT_EQUAL(part_key_generate_pair(&m, t, 2, NULL, 0, &pub, &priv),
	                CKR_ATTRIBUTE_VALUE_INVALID);
	t[1].pValue = one, t[1].ulValueLen = 1;
	CU_ASSERT_EQUAL(part_key_generate_pair(&m, t, 2, NULL, 0, &pub, &priv),
	                CKR_ATTRIBUTE_VALUE_INVALID);
	CU_ASSERT_EQUAL(part_key_generate_pair(&m, t + 1, 1, NULL, 0, &pub, &priv),
	                CKR_TEMPLATE_INCOMPLETE);
	CU_ASSERT_PTR_NULL(pub);
	CU_ASSERT_PTR_NULL(priv);
}

static void
test_rsa_import_components(void)
{
	struct part_key *priv = NULL, *pub = NULL, *k = NULL;
	EVP_PKEY *pk = th_ossl_pair("RSA", NULL, 2048, &priv, &pub);
	unsigned char *der = NULL;
	size_t dl = 0, i;
	struct part_attrs *l = NULL;
	CK_KEY_TYPE type;
	CK_ATTRIBUTE a[8];

	/* round trip: the engine's PKCS #8 is OpenSSL's key */
	CU_ASSERT_EQUAL_FATAL(part_key_to_pkcs8(priv, &der, &dl), CKR_OK);
	{
		const unsigned char *p = der;
		EVP_PKEY *back = d2i_AutoPrivateKey(NULL, &p, (long)dl);

		CU_ASSERT_PTR_NOT_NULL_FATAL(back);
		CU_ASSERT_EQUAL(EVP_PKEY_eq(back, pk), 1);
		EVP_PKEY_free(back);
	}
	/* n, e, d only: usable without the CRT values */
	CU_ASSERT_EQUAL_FATAL(part_key_from_pkcs8(der, dl, &type, &l), CKR_OK);
	CU_ASSERT_EQUAL(type, CKK_RSA);
	for (i = 0; i < 3; i++) {
		a[i] = *part_attrs_at(l, i);
	}
	CU_ASSERT_EQUAL(part_key_from_attrs(CKO_PRIVATE_KEY, CKK_RSA, a, 3, &k), CKR_OK);
	part_key_free(k);
	/* a partial CRT set is refused */
	for (i = 0; i < 4; i++) {
		a[i] = *part_attrs_at(l, i);
	}
	CU_ASSERT_EQUAL(part_key_from_attrs(CKO_PRIVATE_KEY, CKK_RSA, a, 4, &k),
	                CKR_ATTRIBUTE_VALUE_INVALID);
	/* inconsistent components are refused */
	for (i = 0; i < 8; i++) {
		a[i] = *part_attrs_at(l, i);
	}
	((unsigned char *)a[3].pValue)[5] ^= 1;
	CU_ASSERT_EQUAL(part_key_from_attrs(CKO_PRIVATE_KEY, CKK_RSA, a, 8, &k),
	                CKR_ATTRIBUTE_VALUE_INVALID);
	((unsigned char *)a[3].pValue)[5] ^= 1;
	/* The full set goes through its PKCS #1 DER (key.c): big integers with a leading zero
	 * byte are the same integers, and the key is OpenSSL's. */
	{
		unsigned char z[1 + 512], *d2 = NULL;
		const unsigned char *p;
		EVP_PKEY *back;
		size_t l2 = 0;

		z[0] = 0x00;
		memcpy(z + 1, a[3].pValue, a[3].ulValueLen);
		a[3].pValue = z;
		a[3].ulValueLen++;
		CU_ASSERT_EQUAL_FATAL(part_key_from_attrs(CKO_PRIVATE_KEY, CKK_RSA, a, 8, &k),
		                      CKR_OK);
		CU_ASSERT_EQUAL_FATAL(part_key_to_pkcs8(k, &d2, &l2), CKR_OK);
		p = d2;
		back = d2i_AutoPrivateKey(NULL, &p, (long)l2);
		CU_ASSERT_PTR_NOT_NULL_FATAL(back);
		CU_ASSERT_EQUAL(EVP_PKEY_eq(back, pk), 1);
		EVP_PKEY_free(back);
		OPENSSL_secure_clear_free(d2, l2);
		part_key_free(k);
		k = NULL;
		/* a CRT value of zero (DER 02 01 00) is refused */
		z[0] = 0x00;
		a[7].pValue = z;
		a[7].ulValueLen = 1;
		CU_ASSERT_EQUAL(part_key_from_attrs(CKO_PRIVATE_KEY, CKK_RSA, a, 8, &k),
		                CKR_ATTRIBUTE_VALUE_INVALID);
	}
	/* missing d */
	CU_ASSERT_EQUAL(part_key_from_attrs(CKO_PRIVATE_KEY, CKK_RSA, a, 2, &k),
	                CKR_TEMPLATE_INCOMPLETE);
	{
		unsigned char *d2 = NULL;
		size_t l2 = 0;

		CU_ASSERT_EQUAL(part_key_to_pkcs8(pub, &d2, &l2), CKR_KEY_TYPE_INCONSISTENT);
	}
	part_attrs_free(l);
	OPENSSL_secure_clear_free(der, dl);
	part_key_free(priv);
	part_key_free(pub);
	EVP_PKEY_free(pk);
}

/* ---- EC and Ed25519 -------------------------------------------------------------------- */

static void
test_generate_ec_all_curves(void)
{
	static const struct {
		const unsigned char *oid;
		size_t len, pointlen, hdr;
		CK_ULONG bits;
	} c[] = {{oid_p256, sizeof(oid_p256), 65, 2, 256},
	         {(const unsigned char *)"\x06\x05\x2b\x81\x04\x00\x22", 7, 97, 2, 384},
	         {oid_p521, sizeof(oid_p521), 133, 3, 521}};
	CK_MECHANISM m = th_mech(CKM_EC_KEY_PAIR_GEN, NULL, 0);
	size_t i;

	for (i = 0; i < 3; i++) {
		CK_ATTRIBUTE t[] = {{CKA_EC_PARAMS, (void *)c[i].oid, c[i].len}};
		struct part_attrs *pub = NULL, *priv = NULL;
		const CK_ATTRIBUTE *pt, *par;
		struct part_key *kpriv, *kpub;
		CK_MECHANISM sm = th_mech(CKM_ECDSA_SHA256, NULL, 0);
		unsigned char sig[132];
		CK_ULONG n = sizeof(sig);

		CU_ASSERT_EQUAL_FATAL(part_key_generate_pair(&m, t, 1, NULL, 0, &pub, &priv),
		                      CKR_OK);
		pt = part_attrs_find(pub, CKA_EC_POINT);
		par = part_attrs_find(pub, CKA_EC_PARAMS);
		CU_ASSERT_EQUAL(par->ulValueLen, c[i].len);
		CU_ASSERT_EQUAL(memcmp(par->pValue, c[i].oid, c[i].len), 0);
		/* v2.40: DER OCTET STRING around 04 || X || Y */
		CU_ASSERT_EQUAL(pt->ulValueLen, c[i].hdr + c[i].pointlen);
		CU_ASSERT_EQUAL(((unsigned char *)pt->pValue)[0], 0x04);
		CU_ASSERT_EQUAL(((unsigned char *)pt->pValue)[c[i].hdr - 1], c[i].pointlen);
		CU_ASSERT_EQUAL(((unsigned char *)pt->pValue)[c[i].hdr], 0x04);
		CU_ASSERT_PTR_NOT_NULL(part_attrs_find(priv, CKA_VALUE));
		CU_ASSERT_PTR_NOT_NULL(part_attrs_find(priv, CKA_EC_PARAMS));
		kpriv = th_key_from_list(CKO_PRIVATE_KEY, CKK_EC, priv);
		kpub = th_key_from_list(CKO_PUBLIC_KEY, CKK_EC, pub);
		CU_ASSERT_EQUAL(part_key_size(kpub), c[i].bits);
		CU_ASSERT_EQUAL(th_oneshot(PART_OP_SIGN, &sm, kpriv, c[i].oid, 3, sig, &n), CKR_OK);
		CU_ASSERT_EQUAL(th_verify(&sm, kpub, c[i].oid, 3, sig, n), CKR_OK);
		part_key_free(kpriv);
		part_key_free(kpub);
		part_attrs_free(pub);
		part_attrs_free(priv);
	}
}

static void
test_ec_point_forms_and_pkcs8(void)
{
	struct part_key *priv = NULL, *pub = NULL, *raw = NULL;
	EVP_PKEY *pk = th_ossl_pair("EC", "P-256", 0, &priv, &pub);
	unsigned char pt[65], *der = NULL;
	size_t pl = 0, dl = 0;
	CK_ATTRIBUTE a[] = {{CKA_EC_PARAMS, (void *)oid_p256, sizeof(oid_p256)},
	                    {CKA_EC_POINT, pt, 65}};

	/* the bare point is tolerated */
	CU_ASSERT_FATAL(EVP_PKEY_get_octet_string_param(pk, OSSL_PKEY_PARAM_PUB_KEY, pt, 65, &pl));
	CU_ASSERT_EQUAL(part_key_from_attrs(CKO_PUBLIC_KEY, CKK_EC, a, 2, &raw), CKR_OK);
	part_key_free(raw);
	/* a point off the curve is not */
	pt[40] ^= 1;
	CU_ASSERT_EQUAL(part_key_from_attrs(CKO_PUBLIC_KEY, CKK_EC, a, 2, &raw),
	                CKR_ATTRIBUTE_VALUE_INVALID);
	pt[0] = 0x02; /* compressed form is not offered */
	CU_ASSERT_EQUAL(part_key_from_attrs(CKO_PUBLIC_KEY, CKK_EC, a, 2, &raw),
	                CKR_ATTRIBUTE_VALUE_INVALID);
	/* PKCS #8 of an engine EC key (built from CKA_VALUE) is OpenSSL's key */
	CU_ASSERT_EQUAL_FATAL(part_key_to_pkcs8(priv, &der, &dl), CKR_OK);
	{
		const unsigned char *p = der;
		EVP_PKEY *back = d2i_AutoPrivateKey(NULL, &p, (long)dl);

		CU_ASSERT_PTR_NOT_NULL_FATAL(back);
		CU_ASSERT_EQUAL(EVP_PKEY_eq(back, pk), 1);
		EVP_PKEY_free(back);
	}
	OPENSSL_secure_clear_free(der, dl);
	part_key_free(priv);
	part_key_free(pub);
	EVP_PKEY_free(pk);
}

static void
test_refuse_ec_params(void)
{
	unsigned char v[32] = {1};
	CK_ATTRIBUTE a[] = {{CKA_EC_PARAMS, (void *)oid_k1, sizeof(oid_k1)}, {CKA_VALUE, v, 32}};
	CK_MECHANISM m = th_mech(CKM_EC_KEY_PAIR_GEN, NULL, 0);
	struct part_attrs *pub = NULL, *priv = NULL;
	struct part_key *k = NULL;
	unsigned char junk[] = {0x30, 0x03, 0x02, 0x01, 0x01};

	CU_ASSERT_EQUAL(part_key_from_attrs(CKO_PRIVATE_KEY, CKK_EC, a, 2, &k),
	                CKR_CURVE_NOT_SUPPORTED);
	CU_ASSERT_EQUAL(part_key_generate_pair(&m, a, 1, NULL, 0, &pub, &priv),
	                CKR_CURVE_NOT_SUPPORTED);
	a[0].pValue = junk, a[0].ulValueLen = sizeof(junk);
	CU_ASSERT_EQUAL(part_key_from_attrs(CKO_PRIVATE_KEY, CKK_EC, a, 2, &k),
	                CKR_ATTRIBUTE_VALUE_INVALID);
	a[0].ulValueLen = 3; /* length byte disagrees */
	CU_ASSERT_EQUAL(part_key_from_attrs(CKO_PRIVATE_KEY, CKK_EC, a, 2, &k),
	                CKR_ATTRIBUTE_VALUE_INVALID);
	CU_ASSERT_EQUAL(part_key_generate_pair(&m, NULL, 0, NULL, 0, &pub, &priv),
	                CKR_TEMPLATE_INCOMPLETE);
	/* the Edwards curve with the Weierstrass mechanism */
	a[0].pValue = (void *)oid_ed, a[0].ulValueLen = sizeof(oid_ed);
	CU_ASSERT_EQUAL(part_key_generate_pair(&m, a, 1, NULL, 0, &pub, &priv),
	                CKR_CURVE_NOT_SUPPORTED);
	/* a scalar of zero, and one not below the order */
	a[0].pValue = (void *)oid_p256, a[0].ulValueLen = sizeof(oid_p256);
	memset(v, 0, 32);
	CU_ASSERT_EQUAL(part_key_from_attrs(CKO_PRIVATE_KEY, CKK_EC, a, 2, &k),
	                CKR_ATTRIBUTE_VALUE_INVALID);
	memset(v, 0xff, 32);
	CU_ASSERT_EQUAL(part_key_from_attrs(CKO_PRIVATE_KEY, CKK_EC, a, 2, &k),
	                CKR_ATTRIBUTE_VALUE_INVALID);
	CU_ASSERT_PTR_NULL(k);
}

static void
test_generate_ed25519_both_param_forms(void)
{
	CK_MECHANISM m = th_mech(CKM_EC_EDWARDS_KEY_PAIR_GEN, NULL, 0);
	const unsigned char *forms[] = {oid_ed, str_ed};
	size_t flen[] = {sizeof(oid_ed), sizeof(str_ed) - 1}, i;

	for (i = 0; i < 2; i++) {
		CK_ATTRIBUTE t[] = {{CKA_EC_PARAMS, (void *)forms[i], flen[i]}};
		struct part_attrs *pub = NULL, *priv = NULL;
		const CK_ATTRIBUTE *par, *pt;
		struct part_key *kpriv, *kpub;
		CK_MECHANISM sm = th_mech(CKM_EDDSA, NULL, 0);
		unsigned char sig[64];
		CK_ULONG n = sizeof(sig);

		CU_ASSERT_EQUAL_FATAL(part_key_generate_pair(&m, t, 1, NULL, 0, &pub, &priv),
		                      CKR_OK);
		par = part_attrs_find(pub, CKA_EC_PARAMS);
		pt = part_attrs_find(pub, CKA_EC_POINT);
		/* produced in the OID form whatever the template said */
		CU_ASSERT_EQUAL(par->ulValueLen, sizeof(oid_ed));
		CU_ASSERT_EQUAL(memcmp(par->pValue, oid_ed, sizeof(oid_ed)), 0);
		CU_ASSERT_EQUAL(pt->ulValueLen, 34);
		CU_ASSERT_EQUAL(memcmp(pt->pValue, "\x04\x20", 2), 0);
		CU_ASSERT_EQUAL(part_attrs_find(priv, CKA_VALUE)->ulValueLen, 32);
		kpriv = th_key_from_list(CKO_PRIVATE_KEY, CKK_EC_EDWARDS, priv);
		kpub = th_key_from_list(CKO_PUBLIC_KEY, CKK_EC_EDWARDS, pub);
		CU_ASSERT_EQUAL(th_oneshot(PART_OP_SIGN, &sm, kpriv, oid_ed, 5, sig, &n), CKR_OK);
		CU_ASSERT_EQUAL(th_verify(&sm, kpub, oid_ed, 5, sig, n), CKR_OK);
		part_key_free(kpriv);
		part_key_free(kpub);
		part_attrs_free(pub);
		part_attrs_free(priv);
	}
}

static void
test_refuse_ed_on_ec_type(void)
{
	unsigned char v[32] = {1};
	CK_ATTRIBUTE a[] = {{CKA_EC_PARAMS, (void *)oid_ed, sizeof(oid_ed)}, {CKA_VALUE, v, 32}};
	struct part_key *k = NULL;

	CU_ASSERT_EQUAL(part_key_from_attrs(CKO_PRIVATE_KEY, CKK_EC, a, 2, &k),
	                CKR_ATTRIBUTE_VALUE_INVALID);
	a[1].ulValueLen = 31;
	CU_ASSERT_EQUAL(part_key_from_attrs(CKO_PRIVATE_KEY, CKK_EC_EDWARDS, a, 2, &k),
	                CKR_ATTRIBUTE_VALUE_INVALID);
}

static void
test_pkcs8_import_all_types_and_refusals(void)
{
	static const char *const algs[] = {"EC", "ED25519"};
	unsigned char junk[40] = {0x30, 0x26};
	struct part_attrs *l = NULL;
	CK_KEY_TYPE type;
	size_t i;

	for (i = 0; i < 2; i++) {
		struct part_key *priv = NULL, *pub = NULL;
		EVP_PKEY *pk = th_ossl_pair(algs[i], "P-384", 0, &priv, &pub);

		CU_ASSERT_EQUAL(part_key_type(priv), i == 0 ? CKK_EC : CKK_EC_EDWARDS);
		part_key_free(priv);
		part_key_free(pub);
		EVP_PKEY_free(pk);
	}
	CU_ASSERT_EQUAL(part_key_from_pkcs8(junk, sizeof(junk), &type, &l),
	                CKR_WRAPPED_KEY_INVALID);
	CU_ASSERT_PTR_NULL(l);
}

void
test_register(void)
{
	static const struct test_case cases[] = {
	        {"aes_from_attrs", test_aes_from_attrs},
	        {"generate_secret", test_generate_secret},
	        {"refuse_generate_secret", test_refuse_generate_secret},
	        {"generate_rsa", test_generate_rsa},
	        {"refuse_generate_rsa", test_refuse_generate_rsa},
	        {"rsa_import_components", test_rsa_import_components},
	        {"generate_ec_all_curves", test_generate_ec_all_curves},
	        {"ec_point_forms_and_pkcs8", test_ec_point_forms_and_pkcs8},
	        {"refuse_ec_params", test_refuse_ec_params},
	        {"generate_ed25519_both_param_forms", test_generate_ed25519_both_param_forms},
	        {"refuse_ed_on_ec_type", test_refuse_ed_on_ec_type},
	        {"pkcs8_import_all_types_and_refusals", test_pkcs8_import_all_types_and_refusals},
	        {NULL, NULL},
	};

	test_suite_add("hsm-partitions/crypto/key", NULL, NULL, cases);
}
