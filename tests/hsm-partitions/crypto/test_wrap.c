/*
 * tests/hsm-partitions/crypto/test_wrap.c — wrap, unwrap and derive (wrap.c): RFC 3394 and
 * RFC 5649 vectors, RSA wrapping checked with OpenSSL, PKCS #8 private keys through a
 * wrap round trip, ECDH against EVP_PKEY_derive and the X9.63 KDF against EVP_KDF.
 */
#include "tests/lib/test.h"
#include "tests/hsm-partitions/crypto/crypto_test.h"

#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

static struct part_key *
aes(const char *hex)
{
	unsigned char k[32];

	return th_secret(CKK_AES, k, th_hex(hex, k, sizeof(k)));
}

static void
check_wrap_vector(CK_MECHANISM_TYPE mt, const char *kek, const char *key, const char *want_hex)
{
	struct part_key *k = aes(kek);
	CK_MECHANISM m = th_mech(mt, NULL, 0);
	unsigned char in[64], want[80], out[80], *back = NULL;
	size_t il = th_hex(key, in, sizeof(in)), wl = th_hex(want_hex, want, sizeof(want)), bl = 0;
	CK_ULONG n = 0;

	CU_ASSERT_EQUAL(part_mech_wrap(&m, k, in, il, NULL, &n), CKR_OK);
	CU_ASSERT_EQUAL(n, wl);
	n = 3;
	CU_ASSERT_EQUAL(part_mech_wrap(&m, k, in, il, out, &n), CKR_BUFFER_TOO_SMALL);
	CU_ASSERT_EQUAL(n, wl);
	CU_ASSERT_EQUAL(part_mech_wrap(&m, k, in, il, out, &n), CKR_OK);
	CU_ASSERT_EQUAL(n, wl);
	CU_ASSERT_EQUAL(memcmp(out, want, wl), 0);
	CU_ASSERT_EQUAL(part_mech_unwrap(&m, k, want, wl, &back, &bl), CKR_OK);
	CU_ASSERT_EQUAL(bl, il);
	CU_ASSERT_EQUAL(memcmp(back, in, il), 0);
	OPENSSL_secure_clear_free(back, bl);
	part_key_free(k);
}

static void
test_aes_kw_rfc3394_4_1(void)
{
	check_wrap_vector(CKM_AES_KEY_WRAP, "000102030405060708090a0b0c0d0e0f",
	                  "00112233445566778899aabbccddeeff",
	                  "1fa68b0a8112b447aef34bd8fb5a7b829d3e862371d2cfe5");
}

static void
test_aes_kw_rfc3394_4_6(void)
{
	check_wrap_vector(CKM_AES_KEY_WRAP,
	                  "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
	                  "00112233445566778899aabbccddeeff000102030405060708090a0b0c0d0e0f",
	                  "28c9f404c4b810f4cbccb35cfb87f8263f5786e2d80ed326cbc7f0e71a99f43b"
	                  "fb988b9b7a02dd21");
}

static void
test_aes_kwp_rfc5649_6(void)
{
	const char *kek = "5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8";

	check_wrap_vector(CKM_AES_KEY_WRAP_PAD, kek, "c37b7e6492584340bed12207808941155068f738",
	                  "138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a");
	check_wrap_vector(CKM_AES_KEY_WRAP_PAD, kek, "466f7250617369",
	                  "afbeb0f07dfbf5419200f2ccb50bb24f");
}

static void
test_refuse_aes_unwrap_integrity(void)
{
	struct part_key *k = aes("000102030405060708090a0b0c0d0e0f");
	CK_MECHANISM kw = th_mech(CKM_AES_KEY_WRAP, NULL, 0);
	CK_MECHANISM kwp = th_mech(CKM_AES_KEY_WRAP_PAD, NULL, 0);
	unsigned char w[24], *out = NULL;
	size_t ol = 0;

	th_hex("1fa68b0a8112b447aef34bd8fb5a7b829d3e862371d2cfe5", w, 24);
	w[3] ^= 1;
	CU_ASSERT_EQUAL(part_mech_unwrap(&kw, k, w, 24, &out, &ol), CKR_WRAPPED_KEY_INVALID);
	w[3] ^= 1;
	/* the KW ciphertext is not a KWP one: the integrity check catches it */
	CU_ASSERT_EQUAL(part_mech_unwrap(&kwp, k, w, 24, &out, &ol), CKR_WRAPPED_KEY_INVALID);
	CU_ASSERT_EQUAL(part_mech_unwrap(&kw, k, w, 20, &out, &ol), CKR_WRAPPED_KEY_LEN_RANGE);
	CU_ASSERT_EQUAL(part_mech_unwrap(&kw, k, w, 16, &out, &ol), CKR_WRAPPED_KEY_LEN_RANGE);
	CU_ASSERT_PTR_NULL(out);
	part_key_free(k);
}

static void
test_refuse_aes_wrap_key_length(void)
{
	struct part_key *k = aes("000102030405060708090a0b0c0d0e0f");
	CK_MECHANISM kw = th_mech(CKM_AES_KEY_WRAP, NULL, 0);
	unsigned char in[20] = {0}, out[40];
	CK_ULONG n = sizeof(out);

	CU_ASSERT_EQUAL(part_mech_wrap(&kw, k, in, 20, out, &n), CKR_KEY_SIZE_RANGE);
	n = sizeof(out);
	CU_ASSERT_EQUAL(part_mech_wrap(&kw, k, in, 8, out, &n), CKR_KEY_SIZE_RANGE);
	part_key_free(k);
}

static void
test_aes_kw_custom_iv(void)
{
	struct part_key *k = aes("000102030405060708090a0b0c0d0e0f");
	unsigned char iv[8] = {1, 2, 3, 4, 5, 6, 7, 8}, in[16] = {9}, out[24], *back = NULL;
	CK_MECHANISM m = th_mech(CKM_AES_KEY_WRAP, iv, 8), d = th_mech(CKM_AES_KEY_WRAP, NULL, 0);
	CK_ULONG n = sizeof(out);
	size_t bl = 0;

	CU_ASSERT_EQUAL(part_mech_wrap(&m, k, in, 16, out, &n), CKR_OK);
	CU_ASSERT_EQUAL(part_mech_unwrap(&m, k, out, n, &back, &bl), CKR_OK);
	OPENSSL_secure_clear_free(back, bl);
	back = NULL;
	CU_ASSERT_EQUAL(part_mech_unwrap(&d, k, out, n, &back, &bl), CKR_WRAPPED_KEY_INVALID);
	m.ulParameterLen = 4;
	n = sizeof(out);
	CU_ASSERT_EQUAL(part_mech_wrap(&m, k, in, 16, out, &n), CKR_MECHANISM_PARAM_INVALID);
	part_key_free(k);
}

static void
test_rsa_wrap_vs_evp(void)
{
	struct part_key *priv = NULL, *pub = NULL;
	EVP_PKEY *pk = th_ossl_pair("RSA", NULL, 2048, &priv, &pub);
	CK_RSA_PKCS_OAEP_PARAMS p = {CKM_SHA256, CKG_MGF1_SHA256, CKZ_DATA_SPECIFIED, NULL, 0};
	CK_MECHANISM mechs[2] = {th_mech(CKM_RSA_PKCS_OAEP, &p, sizeof(p)),
	                         th_mech(CKM_RSA_PKCS, NULL, 0)};
	unsigned char key[32], out[256], pt[256], *back = NULL;
	size_t i, bl = 0, pl;

	CU_ASSERT_FATAL(RAND_bytes(key, 32) == 1);
	for (i = 0; i < 2; i++) {
		EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, pk, NULL);
		CK_ULONG n = 0;

		CU_ASSERT_EQUAL(part_mech_wrap(&mechs[i], pub, key, 32, NULL, &n), CKR_OK);
		CU_ASSERT_EQUAL(n, 256);
		CU_ASSERT_EQUAL(part_mech_wrap(&mechs[i], pub, key, 32, out, &n), CKR_OK);
		CU_ASSERT_FATAL(EVP_PKEY_decrypt_init(c) > 0);
		if (i == 0) {
			CU_ASSERT_FATAL(EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_OAEP_PADDING) >
			                0);
			CU_ASSERT_FATAL(EVP_PKEY_CTX_set_rsa_oaep_md_name(c, "SHA256", NULL) > 0);
			CU_ASSERT_FATAL(EVP_PKEY_CTX_set_rsa_mgf1_md_name(c, "SHA256", NULL) > 0);
		} else {
			CU_ASSERT_FATAL(EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PADDING) > 0);
		}
		pl = sizeof(pt);
		CU_ASSERT_EQUAL(EVP_PKEY_decrypt(c, pt, &pl, out, n), 1);
		CU_ASSERT_EQUAL(pl, 32);
		CU_ASSERT_EQUAL(memcmp(pt, key, 32), 0);
		EVP_PKEY_CTX_free(c);
		CU_ASSERT_EQUAL(part_mech_unwrap(&mechs[i], priv, out, n, &back, &bl), CKR_OK);
		CU_ASSERT_EQUAL(bl, 32);
		CU_ASSERT_EQUAL(memcmp(back, key, 32), 0);
		OPENSSL_secure_clear_free(back, bl);
		back = NULL;
		out[100] ^= 1;
		CU_ASSERT_EQUAL(part_mech_unwrap(&mechs[i], priv, out, n, &back, &bl),
		                CKR_WRAPPED_KEY_INVALID);
		CU_ASSERT_EQUAL(part_mech_unwrap(&mechs[i], priv, out, 255, &back, &bl),
		                CKR_WRAPPED_KEY_LEN_RANGE);
	}
	/* wrapping with the private key, unwrapping with the public one */
	{
		CK_ULONG n = sizeof(out);

		CU_ASSERT_EQUAL(part_mech_wrap(&mechs[0], priv, key, 32, out, &n),
		                CKR_WRAPPING_KEY_TYPE_INCONSISTENT);
		CU_ASSERT_EQUAL(part_mech_unwrap(&mechs[0], pub, out, 256, &back, &bl),
		                CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT);
		/* OAEP SHA-256 on 2048 bits takes at most 190 bytes */
		n = sizeof(out);
		CU_ASSERT_EQUAL(part_mech_wrap(&mechs[0], pub, pt, 191, out, &n),
		                CKR_KEY_SIZE_RANGE);
	}
	part_key_free(priv);
	part_key_free(pub);
	EVP_PKEY_free(pk);
}

static void
test_pkcs8_wrap_round_trip(void)
{
	struct part_key *priv = NULL, *pub = NULL, *back = NULL, *kek;
	EVP_PKEY *pk = th_ossl_pair("EC", "P-384", 0, &priv, &pub);
	CK_MECHANISM m = th_mech(CKM_AES_KEY_WRAP_PAD, NULL, 0);
	CK_MECHANISM sm = th_mech(CKM_ECDSA_SHA384, NULL, 0);
	unsigned char kv[32] = {7}, *der = NULL, out[300], *un = NULL, sig[96];
	size_t dl = 0, ul = 0;
	CK_ULONG n = sizeof(out);
	struct part_attrs *l = NULL;
	CK_KEY_TYPE type = 0;

	kek = th_secret(CKK_AES, kv, 32);
	CU_ASSERT_EQUAL_FATAL(part_key_to_pkcs8(priv, &der, &dl), CKR_OK);
	CU_ASSERT_EQUAL_FATAL(part_mech_wrap(&m, kek, der, dl, out, &n), CKR_OK);
	CU_ASSERT_EQUAL_FATAL(part_mech_unwrap(&m, kek, out, n, &un, &ul), CKR_OK);
	CU_ASSERT_EQUAL(ul, dl);
	CU_ASSERT_EQUAL_FATAL(part_key_from_pkcs8(un, ul, &type, &l), CKR_OK);
	CU_ASSERT_EQUAL(type, CKK_EC);
	back = th_key_from_list(CKO_PRIVATE_KEY, CKK_EC, l);
	n = sizeof(sig);
	CU_ASSERT_EQUAL(th_oneshot(PART_OP_SIGN, &sm, back, kv, 32, sig, &n), CKR_OK);
	CU_ASSERT_EQUAL(th_verify(&sm, pub, kv, 32, sig, n), CKR_OK);
	part_attrs_free(l);
	OPENSSL_secure_clear_free(der, dl);
	OPENSSL_secure_clear_free(un, ul);
	part_key_free(back);
	part_key_free(kek);
	part_key_free(priv);
	part_key_free(pub);
	EVP_PKEY_free(pk);
}

static void
test_refuse_wrap_mechanism_and_key(void)
{
	unsigned char kv[32] = {7}, out[64];
	struct part_key *g = th_secret(CKK_GENERIC_SECRET, kv, 32), *a = th_secret(CKK_AES, kv, 32);
	CK_MECHANISM kw = th_mech(CKM_AES_KEY_WRAP, NULL, 0), gcm = th_mech(CKM_AES_GCM, NULL, 0);
	CK_ULONG n = sizeof(out);
	unsigned char *o = NULL;
	size_t ol = 0;

	CU_ASSERT_EQUAL(part_mech_wrap(&kw, g, kv, 16, out, &n),
	                CKR_WRAPPING_KEY_TYPE_INCONSISTENT);
	CU_ASSERT_EQUAL(part_mech_unwrap(&kw, g, kv, 24, &o, &ol),
	                CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT);
	CU_ASSERT_EQUAL(part_mech_wrap(&gcm, a, kv, 16, out, &n), CKR_MECHANISM_INVALID);
	part_key_free(g);
	part_key_free(a);
}

/* ---- ECDH ------------------------------------------------------------------------------ */

static size_t
peer_point(EVP_PKEY *peer, unsigned char *pt, size_t cap)
{
	size_t l = 0;

	CU_ASSERT_FATAL(
	        EVP_PKEY_get_octet_string_param(peer, OSSL_PKEY_PARAM_PUB_KEY, pt, cap, &l));
	return l;
}

static size_t
evp_z(EVP_PKEY *mine, EVP_PKEY *peer, unsigned char *z)
{
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, mine, NULL);
	size_t zl = 132;

	CU_ASSERT_FATAL(EVP_PKEY_derive_init(c) > 0 && EVP_PKEY_derive_set_peer(c, peer) > 0 &&
	                EVP_PKEY_derive(c, z, &zl) > 0);
	EVP_PKEY_CTX_free(c);
	return zl;
}

static void
test_ecdh_null_vs_evp_all_curves(void)
{
	static const char *const groups[] = {"P-256", "P-384", "P-521"};
	size_t i;

	for (i = 0; i < 3; i++) {
		struct part_key *priv = NULL, *pub = NULL, *ppriv = NULL, *ppub = NULL;
		EVP_PKEY *me = th_ossl_pair("EC", groups[i], 0, &priv, &pub);
		EVP_PKEY *peer = th_ossl_pair("EC", groups[i], 0, &ppriv, &ppub);
		unsigned char pt[140], der[143], z[132], *out = NULL;
		size_t pl = peer_point(peer, pt, sizeof(pt)), zl = evp_z(me, peer, z), ol = 0, hdr;
		CK_ECDH1_DERIVE_PARAMS p = {CKD_NULL, 0, NULL, pl, pt};
		CK_MECHANISM m = th_mech(CKM_ECDH1_DERIVE, &p, sizeof(p));

		CU_ASSERT_EQUAL(part_mech_derive(&m, priv, 0, &out, &ol), CKR_OK);
		CU_ASSERT_EQUAL(ol, zl);
		CU_ASSERT_EQUAL(memcmp(out, z, zl), 0);
		OPENSSL_secure_clear_free(out, ol);
		/* DER OCTET STRING public data, cofactor variant, truncated to 16 bytes */
		hdr = pl < 0x80 ? 2 : 3;
		der[0] = 0x04;
		der[1] = hdr == 2 ? (unsigned char)pl : 0x81;
		der[2] = (unsigned char)pl;
		memcpy(der + hdr, pt, pl);
		p.pPublicData = der, p.ulPublicDataLen = pl + hdr;
		m.mechanism = CKM_ECDH1_COFACTOR_DERIVE;
		CU_ASSERT_EQUAL(part_mech_derive(&m, priv, 16, &out, &ol), CKR_OK);
		CU_ASSERT_EQUAL(ol, 16);
		CU_ASSERT_EQUAL(memcmp(out, z + zl - 16, 16), 0);
		OPENSSL_secure_clear_free(out, ol);
		CU_ASSERT_EQUAL(part_mech_derive(&m, priv, zl + 1, &out, &ol), CKR_KEY_SIZE_RANGE);
		part_key_free(priv);
		part_key_free(pub);
		part_key_free(ppriv);
		part_key_free(ppub);
		EVP_PKEY_free(me);
		EVP_PKEY_free(peer);
	}
}

static void
test_ecdh_x963_kdf_vs_evp(void)
{
	struct part_key *priv = NULL, *pub = NULL, *ppriv = NULL, *ppub = NULL;
	EVP_PKEY *me = th_ossl_pair("EC", "P-256", 0, &priv, &pub);
	EVP_PKEY *peer = th_ossl_pair("EC", "P-256", 0, &ppriv, &ppub);
	unsigned char pt[65], z[32], want[40], info[] = "shared info", *out = NULL;
	size_t pl = peer_point(peer, pt, sizeof(pt)), zl = evp_z(me, peer, z), ol = 0;
	CK_ECDH1_DERIVE_PARAMS p = {CKD_SHA256_KDF, sizeof(info) - 1, info, pl, pt};
	CK_MECHANISM m = th_mech(CKM_ECDH1_DERIVE, &p, sizeof(p));
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, "X963KDF", NULL);
	EVP_KDF_CTX *kc = EVP_KDF_CTX_new(kdf);
	OSSL_PARAM params[] = {
	        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, "SHA256", 0),
	        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, z, zl),
	        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, sizeof(info) - 1),
	        OSSL_PARAM_construct_end(),
	};

	CU_ASSERT_FATAL(EVP_KDF_derive(kc, want, 40, params) > 0);
	CU_ASSERT_EQUAL(part_mech_derive(&m, priv, 40, &out, &ol), CKR_OK);
	CU_ASSERT_EQUAL(ol, 40);
	CU_ASSERT_EQUAL(memcmp(out, want, 40), 0);
	OPENSSL_secure_clear_free(out, ol);
	/* a KDF needs a length */
	CU_ASSERT_EQUAL(part_mech_derive(&m, priv, 0, &out, &ol), CKR_MECHANISM_PARAM_INVALID);
	EVP_KDF_CTX_free(kc);
	EVP_KDF_free(kdf);
	part_key_free(priv);
	part_key_free(pub);
	part_key_free(ppriv);
	part_key_free(ppub);
	EVP_PKEY_free(me);
	EVP_PKEY_free(peer);
}

static void
test_refuse_ecdh(void)
{
	struct part_key *priv = NULL, *pub = NULL, *p3 = NULL, *p3pub = NULL;
	EVP_PKEY *me = th_ossl_pair("EC", "P-256", 0, &priv, &pub);
	EVP_PKEY *other = th_ossl_pair("EC", "P-384", 0, &p3, &p3pub);
	unsigned char pt[65], pt3[97], *out = NULL;
	size_t pl = peer_point(me, pt, sizeof(pt)), pl3 = peer_point(other, pt3, sizeof(pt3)), ol;
	CK_ECDH1_DERIVE_PARAMS p = {CKD_NULL, 3, (CK_BYTE_PTR) "abc", pl, pt};
	CK_MECHANISM m = th_mech(CKM_ECDH1_DERIVE, &p, sizeof(p));

	/* CKD_NULL takes no shared data */
	CU_ASSERT_EQUAL(part_mech_derive(&m, priv, 0, &out, &ol), CKR_MECHANISM_PARAM_INVALID);
	p.ulSharedDataLen = 0, p.pSharedData = NULL;
	p.kdf = 99;
	CU_ASSERT_EQUAL(part_mech_derive(&m, priv, 16, &out, &ol), CKR_MECHANISM_PARAM_INVALID);
	p.kdf = CKD_NULL;
	pt[30] ^= 1; /* off the curve */
	CU_ASSERT_EQUAL(part_mech_derive(&m, priv, 0, &out, &ol), CKR_MECHANISM_PARAM_INVALID);
	pt[30] ^= 1;
	p.pPublicData = pt3, p.ulPublicDataLen = pl3; /* another curve's point */
	CU_ASSERT_EQUAL(part_mech_derive(&m, priv, 0, &out, &ol), CKR_MECHANISM_PARAM_INVALID);
	p.pPublicData = pt, p.ulPublicDataLen = pl;
	CU_ASSERT_EQUAL(part_mech_derive(&m, pub, 0, &out, &ol), CKR_KEY_TYPE_INCONSISTENT);
	m.ulParameterLen = sizeof(p) - 1;
	CU_ASSERT_EQUAL(part_mech_derive(&m, priv, 0, &out, &ol), CKR_MECHANISM_PARAM_INVALID);
	m.ulParameterLen = sizeof(p);
	m.mechanism = CKM_SHA256;
	CU_ASSERT_EQUAL(part_mech_derive(&m, priv, 0, &out, &ol), CKR_MECHANISM_INVALID);
	CU_ASSERT_PTR_NULL(out);
	part_key_free(priv);
	part_key_free(pub);
	part_key_free(p3);
	part_key_free(p3pub);
	EVP_PKEY_free(me);
	EVP_PKEY_free(other);
}

void
test_register(void)
{
	static const struct test_case cases[] = {
	        {"aes_kw_rfc3394_4_1", test_aes_kw_rfc3394_4_1},
	        {"aes_kw_rfc3394_4_6", test_aes_kw_rfc3394_4_6},
	        {"aes_kwp_rfc5649_6", test_aes_kwp_rfc5649_6},
	        {"refuse_aes_unwrap_integrity", test_refuse_aes_unwrap_integrity},
	        {"refuse_aes_wrap_key_length", test_refuse_aes_wrap_key_length},
	        {"aes_kw_custom_iv", test_aes_kw_custom_iv},
	        {"rsa_wrap_vs_evp", test_rsa_wrap_vs_evp},
	        {"pkcs8_wrap_round_trip", test_pkcs8_wrap_round_trip},
	        {"refuse_wrap_mechanism_and_key", test_refuse_wrap_mechanism_and_key},
	        {"ecdh_null_vs_evp_all_curves", test_ecdh_null_vs_evp_all_curves},
	        {"ecdh_x963_kdf_vs_evp", test_ecdh_x963_kdf_vs_evp},
	        {"refuse_ecdh", test_refuse_ecdh},
	        {NULL, NULL},
	};

	test_suite_add("hsm-partitions/crypto/wrap", NULL, NULL, cases);
}
