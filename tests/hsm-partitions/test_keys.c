/* tests/hsm-partitions/test_keys.c — hsm-partitions/keys.c: C_GenerateKey,
 * C_GenerateKeyPair, C_WrapKey, C_UnwrapKey, C_DeriveKey through the worker, each refusal
 * with its exact CK_RV, and the attributes the token sets on the keys it makes. */
#include "tests/hsm-partitions/part_test.h"

#include <openssl/evp.h>

static const CK_BYTE key1[32] = "0123456789abcdef0123456789abcdef";
static const CK_BYTE key2[32] = "fedcba9876543210fedcba9876543210";

static CK_MECHANISM aes_gen = {CKM_AES_KEY_GEN, NULL, 0};

static void
test_generate_key(void)
{
	CK_ULONG len = 32;
	CK_ATTRIBUTE t[] = {ATTR(CKA_VALUE_LEN, len), ATTR(CKA_TOKEN, t_yes),
	                    ATTR(CKA_SENSITIVE, t_yes), ATTR(CKA_LABEL, "gen")};
	CK_ATTRIBUTE nolen[] = {ATTR(CKA_TOKEN, t_no)};
	CK_ATTRIBUTE withval[] = {ATTR(CKA_VALUE_LEN, len), {CKA_VALUE, (void *)key1, 32}};
	CK_ATTRIBUTE wrongclass[] = {ATTR(CKA_VALUE_LEN, len), ATTR(CKA_CLASS, t_pubc)};
	CK_ATTRIBUTE wrongtype[] = {ATTR(CKA_VALUE_LEN, len), ATTR(CKA_KEY_TYPE, t_eck)};
	CK_ATTRIBUTE local[] = {ATTR(CKA_VALUE_LEN, len), ATTR(CKA_LOCAL, t_yes)};
	CK_ATTRIBUTE pub[] = {ATTR(CKA_VALUE_LEN, len), ATTR(CKA_PRIVATE, t_no)};
	CK_MECHANISM sha = {CKM_SHA256, NULL, 0};
	CK_BYTE v[32];
	CK_ATTRIBUTE va = {CKA_VALUE, v, sizeof(v)};
	CK_SESSION_HANDLE h, ro;
	CK_OBJECT_HANDLE k;

	t_user_session(&h);
	CU_ASSERT_EQUAL_FATAL(ck_genkey(CONN_A, h, &aes_gen, t, 4, &k), CKR_OK);
	/* v2.40 §4.7, §4.10: set by the token for a key it generated */
	CU_ASSERT_EQUAL(ck_bool(CONN_A, h, k, CKA_LOCAL), 1);
	CU_ASSERT_EQUAL(ck_ulong(CONN_A, h, k, CKA_KEY_GEN_MECHANISM), CKM_AES_KEY_GEN);
	CU_ASSERT_EQUAL(ck_bool(CONN_A, h, k, CKA_ALWAYS_SENSITIVE), 1);
	CU_ASSERT_EQUAL(ck_bool(CONN_A, h, k, CKA_NEVER_EXTRACTABLE), 1);
	CU_ASSERT_EQUAL(ck_bool(CONN_A, h, k, CKA_PRIVATE), 1); /* secret keys default private */
	CU_ASSERT_EQUAL(ck_ulong(CONN_A, h, k, CKA_VALUE_LEN), 32);
	CU_ASSERT_EQUAL(ck_get(CONN_A, h, k, &va, 1), CKR_ATTRIBUTE_SENSITIVE);
	CU_ASSERT_EQUAL(va.ulValueLen, CK_UNAVAILABLE_INFORMATION);
	/* template rules */
	CU_ASSERT_EQUAL(ck_genkey(CONN_A, h, &aes_gen, nolen, 1, &k), CKR_TEMPLATE_INCOMPLETE);
	CU_ASSERT_EQUAL(ck_genkey(CONN_A, h, &aes_gen, withval, 2, &k), CKR_TEMPLATE_INCONSISTENT);
	CU_ASSERT_EQUAL(ck_genkey(CONN_A, h, &aes_gen, wrongclass, 2, &k),
	                CKR_TEMPLATE_INCONSISTENT);
	CU_ASSERT_EQUAL(ck_genkey(CONN_A, h, &aes_gen, wrongtype, 2, &k),
	                CKR_TEMPLATE_INCONSISTENT);
	CU_ASSERT_EQUAL(ck_genkey(CONN_A, h, &aes_gen, local, 2, &k), CKR_ATTRIBUTE_READ_ONLY);
	len = 20;
	CU_ASSERT_EQUAL(ck_genkey(CONN_A, h, &aes_gen, pub, 2, &k), CKR_ATTRIBUTE_VALUE_INVALID);
	len = 32;
	CU_ASSERT_EQUAL(ck_genkey(CONN_A, h, &sha, pub, 2, &k), CKR_MECHANISM_INVALID);
	/* session and login rules */
	CU_ASSERT_FATAL(ck_open(CONN_A, RO, &ro) == CKR_OK);
	CU_ASSERT_EQUAL(ck_genkey(CONN_A, ro, &aes_gen, t, 2, &k), CKR_SESSION_READ_ONLY);
	CU_ASSERT_EQUAL(ck_genkey(CONN_A, ro, &aes_gen, pub, 2, &k), CKR_OK);
	CU_ASSERT_EQUAL(ck_logout(CONN_A, h), CKR_OK);
	/* secret keys are private unless the template says otherwise */
	CU_ASSERT_EQUAL(ck_genkey(CONN_A, h, &aes_gen, nolen, 0, &k), CKR_USER_NOT_LOGGED_IN);
	CU_ASSERT_EQUAL(ck_genkey(CONN_A, h, &aes_gen, t, 1, &k), CKR_USER_NOT_LOGGED_IN);
	CU_ASSERT_EQUAL(ck_genkey(CONN_A, h, &aes_gen, pub, 2, &k), CKR_OK);
	t_teardown();
}

static void
test_generate_generic(void)
{
	CK_MECHANISM gen = {CKM_GENERIC_SECRET_KEY_GEN, NULL, 0};
	CK_KEY_TYPE hmac = CKK_SHA256_HMAC;
	CK_ULONG len = 64;
	CK_ATTRIBUTE t[] = {ATTR(CKA_VALUE_LEN, len)};
	CK_ATTRIBUTE th[] = {ATTR(CKA_VALUE_LEN, len), ATTR(CKA_KEY_TYPE, hmac)};
	CK_ATTRIBUTE ta[] = {ATTR(CKA_VALUE_LEN, len), ATTR(CKA_KEY_TYPE, t_aes)};
	CK_SESSION_HANDLE h;
	CK_OBJECT_HANDLE k;

	t_user_session(&h);
	CU_ASSERT_EQUAL_FATAL(ck_genkey(CONN_A, h, &gen, t, 1, &k), CKR_OK);
	CU_ASSERT_EQUAL(ck_ulong(CONN_A, h, k, CKA_KEY_TYPE), CKK_GENERIC_SECRET);
	CU_ASSERT_EQUAL(ck_ulong(CONN_A, h, k, CKA_KEY_GEN_MECHANISM), CKM_GENERIC_SECRET_KEY_GEN);
	CU_ASSERT_EQUAL_FATAL(ck_genkey(CONN_A, h, &gen, th, 2, &k), CKR_OK);
	CU_ASSERT_EQUAL(ck_ulong(CONN_A, h, k, CKA_KEY_TYPE), CKK_SHA256_HMAC);
	CU_ASSERT_EQUAL(ck_genkey(CONN_A, h, &gen, ta, 2, &k), CKR_TEMPLATE_INCONSISTENT);
	t_teardown();
}

static void
test_generate_pair(void)
{
	CK_MECHANISM ec = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
	CK_MECHANISM rsa = {CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0};
	CK_ULONG bits = 1024;
	CK_ATTRIBUTE pt[] = {{CKA_EC_PARAMS, (void *)t_p256, sizeof(t_p256)},
	                     ATTR(CKA_TOKEN, t_yes)};
	CK_ATTRIBUTE vt[] = {ATTR(CKA_TOKEN, t_yes), ATTR(CKA_SENSITIVE, t_no),
	                     ATTR(CKA_EXTRACTABLE, t_yes)};
	CK_ATTRIBUTE vparams[] = {{CKA_EC_PARAMS, (void *)t_p256, sizeof(t_p256)}};
	CK_ATTRIBUTE rt[] = {ATTR(CKA_MODULUS_BITS, bits)};
	CK_ATTRIBUTE wrongclass[] = {ATTR(CKA_CLASS, t_secret)};
	CK_ATTRIBUTE unknown[] = {ATTR(CKA_VALUE_LEN, bits)};
	CK_ATTRIBUTE always_auth[] = {ATTR(CKA_ALWAYS_AUTHENTICATE, t_yes)};
	CK_OBJECT_HANDLE pub, priv;
	CK_SESSION_HANDLE h, ro;

	t_user_session(&h);
	CU_ASSERT_EQUAL_FATAL(ck_genpair(CONN_A, h, &ec, pt, 2, vt, 3, &pub, &priv), CKR_OK);
	CU_ASSERT_EQUAL(ck_bool(CONN_A, h, pub, CKA_LOCAL), 1);
	CU_ASSERT_EQUAL(ck_bool(CONN_A, h, priv, CKA_LOCAL), 1);
	CU_ASSERT_EQUAL(ck_ulong(CONN_A, h, priv, CKA_KEY_GEN_MECHANISM), CKM_EC_KEY_PAIR_GEN);
	/* born non-sensitive and extractable: the token says so */
	CU_ASSERT_EQUAL(ck_bool(CONN_A, h, priv, CKA_ALWAYS_SENSITIVE), 0);
	CU_ASSERT_EQUAL(ck_bool(CONN_A, h, priv, CKA_NEVER_EXTRACTABLE), 0);
	CU_ASSERT_EQUAL(ck_bool(CONN_A, h, pub, CKA_PRIVATE), 0);
	CU_ASSERT_EQUAL(ck_bool(CONN_A, h, priv, CKA_PRIVATE), 1);
	CU_ASSERT_EQUAL(ck_ulong(CONN_A, h, priv, CKA_KEY_TYPE), CKK_EC);
	CU_ASSERT_EQUAL(ck_bool(CONN_A, h, priv, CKA_ALWAYS_AUTHENTICATE), 0);
	{
		struct proto_cur c;
		CK_ULONG size = 0;

		CU_ASSERT_EQUAL(CALL(CONN_A, C_GetObjectSize, &c, (PUTU(h), PUTU(priv))), CKR_OK);
		CU_ASSERT(proto_get_ulong(&c, &size) == 0 && size > 32);
	}
	/* v2.40 §2.3.4 note 4: CKA_EC_PARAMS of the private key comes from the public one */
	CU_ASSERT_EQUAL(ck_genpair(CONN_A, h, &ec, pt, 1, vparams, 1, &pub, &priv),
	                CKR_TEMPLATE_INCONSISTENT);
	CU_ASSERT_EQUAL(ck_genpair(CONN_A, h, &ec, vt, 0, vt, 0, &pub, &priv),
	                CKR_TEMPLATE_INCOMPLETE);
	CU_ASSERT_EQUAL(ck_genpair(CONN_A, h, &ec, pt, 1, wrongclass, 1, &pub, &priv),
	                CKR_TEMPLATE_INCONSISTENT);
	CU_ASSERT_EQUAL(ck_genpair(CONN_A, h, &ec, pt, 1, unknown, 1, &pub, &priv),
	                CKR_ATTRIBUTE_TYPE_INVALID);
	/* no CKU_CONTEXT_SPECIFIC yet: a key that would demand it is refused (docs/PKCS11.md) */
	CU_ASSERT_EQUAL(ck_genpair(CONN_A, h, &ec, pt, 1, always_auth, 1, &pub, &priv),
	                CKR_ATTRIBUTE_VALUE_INVALID);
	CU_ASSERT_EQUAL(ck_genpair(CONN_A, h, &rsa, rt, 1, vt, 0, &pub, &priv),
	                CKR_ATTRIBUTE_VALUE_INVALID);
	CU_ASSERT_EQUAL(ck_genpair(CONN_A, h, &aes_gen, pt, 1, vt, 0, &pub, &priv),
	                CKR_MECHANISM_INVALID);
	CU_ASSERT_FATAL(ck_open(CONN_A, RO, &ro) == CKR_OK);
	CU_ASSERT_EQUAL(ck_genpair(CONN_A, ro, &ec, pt, 2, vt, 0, &pub, &priv),
	                CKR_SESSION_READ_ONLY);
	CU_ASSERT_EQUAL(ck_logout(CONN_A, h), CKR_OK);
	CU_ASSERT_EQUAL(ck_genpair(CONN_A, h, &ec, pt, 1, vt, 0, &pub, &priv),
	                CKR_USER_NOT_LOGGED_IN);
	t_teardown();
}

/* Token keys survive a restart and still work. */
static void
test_generate_persists(void)
{
	CK_ULONG len = 16;
	CK_ATTRIBUTE t[] = {ATTR(CKA_VALUE_LEN, len), ATTR(CKA_TOKEN, t_yes)};
	CK_MECHANISM ecb = {CKM_AES_ECB, NULL, 0};
	CK_BYTE in[16] = {0}, out1[16], out2[16];
	CK_ULONG l1 = 16, l2 = 16;
	CK_SESSION_HANDLE h;
	CK_OBJECT_HANDLE k;

	t_user_session(&h);
	CU_ASSERT_EQUAL_FATAL(ck_genkey(CONN_A, h, &aes_gen, t, 2, &k), CKR_OK);
	CU_ASSERT_EQUAL(ck_init_op(PROTO_CALL_C_EncryptInit, h, &ecb, k), CKR_OK);
	CU_ASSERT_EQUAL(ck_io(PROTO_CALL_C_Encrypt, h, in, 16, out1, &l1), CKR_OK);
	t_reopen();
	CU_ASSERT_FATAL(ck_open(CONN_A, RW, &h) == CKR_OK);
	CU_ASSERT_FATAL(ck_login(CONN_A, h, CKU_USER, USER_PIN) == CKR_OK);
	CU_ASSERT_EQUAL(ck_init_op(PROTO_CALL_C_EncryptInit, h, &ecb, k), CKR_OK);
	CU_ASSERT_EQUAL(ck_io(PROTO_CALL_C_Encrypt, h, in, 16, out2, &l2), CKR_OK);
	CU_ASSERT(l1 == 16 && l2 == 16 && memcmp(out1, out2, 16) == 0);
	CU_ASSERT_EQUAL(ck_bool(CONN_A, h, k, CKA_LOCAL), 1);
	t_teardown();
}

static CK_RV
ck_wrap(CK_SESSION_HANDLE h, const CK_MECHANISM *m, CK_OBJECT_HANDLE wk, CK_OBJECT_HANDLE k,
        CK_BYTE *out, CK_ULONG *outlen)
{
	struct proto_cur c;
	CK_RV rv = CALL(CONN_A, C_WrapKey, &c,
	                (PUTU(h), (void)!proto_put_mechanism(&b, m), PUTU(wk), PUTU(k),
	                 (void)!proto_put_outbuf_req(&b, out, *outlen)));

	if (rv == CKR_OK || rv == CKR_BUFFER_TOO_SMALL) {
		CU_ASSERT(proto_get_outbuf_reply(&c, rv == CKR_OK ? out : NULL, outlen) == 0);
	}
	return rv;
}

static CK_RV
ck_unwrap(CK_SESSION_HANDLE h, const CK_MECHANISM *m, CK_OBJECT_HANDLE uk, const CK_BYTE *w,
          CK_ULONG wlen, CK_ATTRIBUTE *t, CK_ULONG n, CK_OBJECT_HANDLE *out)
{
	struct proto_cur c;

	return ck_handle_reply(CALL(CONN_A, C_UnwrapKey, &c,
	                            (PUTU(h), (void)!proto_put_mechanism(&b, m), PUTU(uk),
	                             PUTY(w, wlen), PUTT(t, n))),
	                       &c, out);
}

static void
test_wrap_unwrap_aes(void)
{
	CK_MECHANISM kw = {CKM_AES_KEY_WRAP, NULL, 0}, kwp = {CKM_AES_KEY_WRAP_PAD, NULL, 0};
	CK_MECHANISM ecb = {CKM_AES_ECB, NULL, 0};
	CK_ATTRIBUTE ut[] = {ATTR(CKA_CLASS, t_secret), ATTR(CKA_KEY_TYPE, t_aes),
	                     ATTR(CKA_SENSITIVE, t_no), ATTR(CKA_EXTRACTABLE, t_yes)};
	CK_ATTRIBUTE noclass[] = {ATTR(CKA_KEY_TYPE, t_aes)};
	CK_ATTRIBUTE notype[] = {ATTR(CKA_CLASS, t_secret)};
	CK_ATTRIBUTE withval[] = {ATTR(CKA_CLASS, t_secret),
	                          ATTR(CKA_KEY_TYPE, t_aes),
	                          {CKA_VALUE, (void *)key1, 32}};
	CK_ATTRIBUTE nowrap[] = {ATTR(CKA_WRAP, t_no), ATTR(CKA_UNWRAP, t_no)};
	CK_BYTE w[64], v[32], ref[40];
	CK_ATTRIBUTE va = {CKA_VALUE, v, sizeof(v)};
	CK_ULONG wl = sizeof(w);
	CK_OBJECT_HANDLE kek, k, u, locked, data;
	CK_ATTRIBUTE dt[] = {{CKA_CLASS, &(CK_OBJECT_CLASS){CKO_DATA}, sizeof(CK_OBJECT_CLASS)}};
	EVP_CIPHER_CTX *ctx;
	CK_SESSION_HANDLE h;
	int outl = 0;

	t_user_session(&h);
	kek = t_aes_key(h, key2, CK_TRUE, CK_FALSE);
	k = t_aes_key(h, key1, CK_TRUE, CK_TRUE);
	locked = t_aes_key(h, key1, CK_FALSE, CK_FALSE);
	CU_ASSERT_FATAL(ck_create(CONN_A, h, dt, 1, &data) == CKR_OK);
	/* size query, too small, then the real thing */
	CU_ASSERT_EQUAL(ck_wrap(h, &kw, kek, k, NULL, &wl), CKR_OK);
	CU_ASSERT_EQUAL(wl, 40);
	wl = 8;
	CU_ASSERT_EQUAL(ck_wrap(h, &kw, kek, k, w, &wl), CKR_BUFFER_TOO_SMALL);
	CU_ASSERT_EQUAL(wl, 40);
	wl = sizeof(w);
	CU_ASSERT_EQUAL_FATAL(ck_wrap(h, &kw, kek, k, w, &wl), CKR_OK);
	/* RFC 3394 with OpenSSL's own implementation */
	ctx = EVP_CIPHER_CTX_new();
	CU_ASSERT(EVP_EncryptInit_ex(ctx, EVP_aes_256_wrap(), NULL, key2, NULL) == 1);
	CU_ASSERT(EVP_EncryptUpdate(ctx, ref, &outl, key1, 32) == 1);
	EVP_CIPHER_CTX_free(ctx);
	CU_ASSERT(outl == 40 && wl == 40 && memcmp(w, ref, 40) == 0);
	/* the wrapped key is unextractable / sensitive: the wrap rules */
	CU_ASSERT_EQUAL(ck_wrap(h, &kw, kek, locked, w, &wl), CKR_KEY_UNEXTRACTABLE);
	CU_ASSERT_EQUAL(ck_wrap(h, &kw, 0x7777, k, w, &wl), CKR_WRAPPING_KEY_HANDLE_INVALID);
	CU_ASSERT_EQUAL(ck_wrap(h, &kw, kek, 0x7777, w, &wl), CKR_KEY_HANDLE_INVALID);
	CU_ASSERT_EQUAL(ck_wrap(h, &kw, kek, data, w, &wl), CKR_KEY_HANDLE_INVALID);
	CU_ASSERT_EQUAL(ck_wrap(h, &ecb, kek, k, w, &wl), CKR_MECHANISM_INVALID);
	wl = sizeof(w);
	CU_ASSERT_EQUAL_FATAL(ck_wrap(h, &kw, kek, k, w, &wl), CKR_OK);
	/* unwrap */
	CU_ASSERT_EQUAL_FATAL(ck_unwrap(h, &kw, kek, w, wl, ut, 4, &u), CKR_OK);
	CU_ASSERT_EQUAL(ck_get(CONN_A, h, u, &va, 1), CKR_OK);
	CU_ASSERT(va.ulValueLen == 32 && memcmp(v, key1, 32) == 0);
	CU_ASSERT_EQUAL(ck_bool(CONN_A, h, u, CKA_LOCAL), 0);
	CU_ASSERT_EQUAL(ck_bool(CONN_A, h, u, CKA_ALWAYS_SENSITIVE), 0);
	CU_ASSERT_EQUAL(ck_bool(CONN_A, h, u, CKA_NEVER_EXTRACTABLE), 0);
	CU_ASSERT_EQUAL(ck_ulong(CONN_A, h, u, CKA_KEY_GEN_MECHANISM), CK_UNAVAILABLE_INFORMATION);
	CU_ASSERT_EQUAL(ck_unwrap(h, &kw, kek, w, wl, noclass, 1, &u), CKR_TEMPLATE_INCOMPLETE);
	CU_ASSERT_EQUAL(ck_unwrap(h, &kw, kek, w, wl, notype, 1, &u), CKR_TEMPLATE_INCOMPLETE);
	CU_ASSERT_EQUAL(ck_unwrap(h, &kw, kek, w, wl, withval, 3, &u), CKR_TEMPLATE_INCONSISTENT);
	CU_ASSERT_EQUAL(ck_unwrap(h, &kw, 0x7777, w, wl, ut, 4, &u),
	                CKR_UNWRAPPING_KEY_HANDLE_INVALID);
	w[5] ^= 1;
	CU_ASSERT_EQUAL(ck_unwrap(h, &kw, kek, w, wl, ut, 4, &u), CKR_WRAPPED_KEY_INVALID);
	w[5] ^= 1;
	/* AES-KWP round trip */
	wl = sizeof(w);
	CU_ASSERT_EQUAL_FATAL(ck_wrap(h, &kwp, kek, k, w, &wl), CKR_OK);
	CU_ASSERT_EQUAL_FATAL(ck_unwrap(h, &kwp, kek, w, wl, ut, 4, &u), CKR_OK);
	/* CKA_WRAP / CKA_UNWRAP false: "CKR_KEY_FUNCTION_NOT_PERMITTED" */
	CU_ASSERT_EQUAL(ck_set(CONN_A, h, kek, nowrap, 2), CKR_OK);
	CU_ASSERT_EQUAL(ck_wrap(h, &kw, kek, k, w, &wl), CKR_KEY_FUNCTION_NOT_PERMITTED);
	CU_ASSERT_EQUAL(ck_unwrap(h, &kwp, kek, w, wl, ut, 4, &u), CKR_KEY_FUNCTION_NOT_PERMITTED);
	t_teardown();
}

/* §4.9 CKA_WRAP_WITH_TRUSTED: "If CK_TRUE, the key can only be wrapped with a wrapping key
 * that has CKA_TRUSTED set to CK_TRUE"; CKA_TRUSTED is the SO's to set. */
static void
test_wrap_with_trusted(void)
{
	CK_MECHANISM kw = {CKM_AES_KEY_WRAP, NULL, 0};
	CK_ATTRIBUTE wwt[] = {ATTR(CKA_WRAP_WITH_TRUSTED, t_yes)};
	CK_ATTRIBUTE wwt_off[] = {ATTR(CKA_WRAP_WITH_TRUSTED, t_no)};
	CK_ATTRIBUTE trusted[] = {ATTR(CKA_TRUSTED, t_yes)};
	CK_ATTRIBUTE kek_t[] = {ATTR(CKA_CLASS, t_secret),
	                        ATTR(CKA_KEY_TYPE, t_aes),
	                        {CKA_VALUE, (void *)key2, 32},
	                        ATTR(CKA_PRIVATE, t_no),
	                        ATTR(CKA_TOKEN, t_yes)};
	CK_ATTRIBUTE kek_trusted[] = {ATTR(CKA_CLASS, t_secret),
	                              ATTR(CKA_KEY_TYPE, t_aes),
	                              {CKA_VALUE, (void *)key2, 32},
	                              ATTR(CKA_TRUSTED, t_yes)};
	CK_SESSION_HANDLE h, so;
	CK_OBJECT_HANDLE kek, k;
	CK_OBJECT_HANDLE other;
	CK_BYTE w[64];
	CK_ULONG wl = sizeof(w);

	t_user_session(&h);
	k = t_aes_key(h, key1, CK_TRUE, CK_TRUE);
	CU_ASSERT_FATAL(ck_create(CONN_A, h, kek_t, 5, &kek) == CKR_OK);
	CU_ASSERT_EQUAL(ck_set(CONN_A, h, k, wwt, 1), CKR_OK);
	CU_ASSERT_EQUAL(ck_set(CONN_A, h, k, wwt_off, 1), CKR_ATTRIBUTE_READ_ONLY);
	CU_ASSERT_EQUAL(ck_wrap(h, &kw, kek, k, w, &wl), CKR_KEY_NOT_WRAPPABLE);
	/* the user may not make a key trusted, in a template or later */
	CU_ASSERT_EQUAL(ck_set(CONN_A, h, kek, trusted, 1), CKR_ATTRIBUTE_READ_ONLY);
	CU_ASSERT_EQUAL(ck_create(CONN_A, h, kek_trusted, 4, &other), CKR_ATTRIBUTE_READ_ONLY);
	/* the SO (another application: its own connection) may */
	CU_ASSERT_FATAL(ck_open(CONN_B, RW, &so) == CKR_OK);
	CU_ASSERT_EQUAL(ck_login(CONN_B, so, CKU_SO, SO_PIN), CKR_OK);
	CU_ASSERT_EQUAL(
	        CALL(CONN_B, C_SetAttributeValue, NULL, (PUTU(so), PUTU(kek), PUTT(trusted, 1))),
	        CKR_OK);
	CU_ASSERT_EQUAL(ck_bool(CONN_A, h, kek, CKA_TRUSTED), 1);
	wl = sizeof(w);
	CU_ASSERT_EQUAL(ck_wrap(h, &kw, kek, k, w, &wl), CKR_OK);
	t_teardown();
}

/* A private key leaves as PKCS #8 under AES-KWP and comes back as a working private key. */
static void
test_wrap_private_key(void)
{
	CK_MECHANISM kwp = {CKM_AES_KEY_WRAP_PAD, NULL, 0};
	CK_MECHANISM ecdsa = {CKM_ECDSA_SHA256, NULL, 0};
	CK_ATTRIBUTE ut[] = {ATTR(CKA_CLASS, t_privc), ATTR(CKA_SIGN, t_yes)};
	CK_ATTRIBUTE rsa_ut[] = {ATTR(CKA_CLASS, t_privc), ATTR(CKA_KEY_TYPE, t_rsak)};
	CK_ATTRIBUTE pubt[] = {ATTR(CKA_CLASS, t_pubc)};
	CK_ATTRIBUTE ext[] = {ATTR(CKA_EXTRACTABLE, t_yes)};
	CK_OBJECT_HANDLE pub, priv, kek, u;
	CK_BYTE w[512], sig[128];
	CK_ULONG wl = sizeof(w), sl = sizeof(sig);
	CK_SESSION_HANDLE h;

	t_user_session(&h);
	t_ec_pair(h, &pub, &priv);
	kek = t_aes_key(h, key2, CK_TRUE, CK_FALSE);
	CU_ASSERT_EQUAL(ck_wrap(h, &kwp, kek, priv, w, &wl), CKR_KEY_UNEXTRACTABLE);
	/* CKA_EXTRACTABLE may not go from CK_FALSE to CK_TRUE */
	CU_ASSERT_EQUAL(ck_set(CONN_A, h, priv, ext, 1), CKR_ATTRIBUTE_READ_ONLY);
	CU_ASSERT_EQUAL(ck_wrap(h, &kwp, kek, pub, w, &wl), CKR_KEY_NOT_WRAPPABLE);
	t_teardown();

	t_user_session(&h);
	{
		CK_MECHANISM m = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
		CK_ATTRIBUTE pt[] = {{CKA_EC_PARAMS, (void *)t_p256, sizeof(t_p256)}};

		CU_ASSERT_FATAL(ck_genpair(CONN_A, h, &m, pt, 1, ext, 1, &pub, &priv) == CKR_OK);
	}
	kek = t_aes_key(h, key2, CK_TRUE, CK_FALSE);
	CU_ASSERT_EQUAL_FATAL(ck_wrap(h, &kwp, kek, priv, w, &wl), CKR_OK);
	CU_ASSERT_EQUAL(ck_unwrap(h, &kwp, kek, w, wl, pubt, 1, &u), CKR_TEMPLATE_INCONSISTENT);
	CU_ASSERT_EQUAL(ck_unwrap(h, &kwp, kek, w, wl, rsa_ut, 2, &u), CKR_TEMPLATE_INCONSISTENT);
	CU_ASSERT_EQUAL_FATAL(ck_unwrap(h, &kwp, kek, w, wl, ut, 2, &u), CKR_OK);
	CU_ASSERT_EQUAL(ck_ulong(CONN_A, h, u, CKA_KEY_TYPE), CKK_EC);
	CU_ASSERT_EQUAL(ck_init_op(PROTO_CALL_C_SignInit, h, &ecdsa, u), CKR_OK);
	CU_ASSERT_EQUAL(ck_io(PROTO_CALL_C_Sign, h, "msg", 3, sig, &sl), CKR_OK);
	CU_ASSERT_EQUAL(ck_init_op(PROTO_CALL_C_VerifyInit, h, &ecdsa, pub), CKR_OK);
	CU_ASSERT_EQUAL(ck_verify(h, "msg", 3, sig, sl), CKR_OK);
	t_teardown();
}

/* RSA-OAEP (with a label) and RSA-PKCS wrapping of a secret key. */
static void
test_wrap_rsa(void)
{
	CK_MECHANISM gen = {CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0};
	CK_RSA_PKCS_OAEP_PARAMS op = {CKM_SHA256, CKG_MGF1_SHA256, CKZ_DATA_SPECIFIED, "lbl", 3};
	CK_MECHANISM oaep = {CKM_RSA_PKCS_OAEP, &op, sizeof(op)};
	CK_MECHANISM pkcs = {CKM_RSA_PKCS, NULL, 0};
	CK_MECHANISM oaep_noparam = {CKM_RSA_PKCS_OAEP, NULL, 0};
	CK_ULONG bits = 2048;
	CK_ATTRIBUTE pt[] = {ATTR(CKA_MODULUS_BITS, bits)};
	CK_ATTRIBUTE ut[] = {ATTR(CKA_CLASS, t_secret), ATTR(CKA_KEY_TYPE, t_aes),
	                     ATTR(CKA_SENSITIVE, t_no), ATTR(CKA_EXTRACTABLE, t_yes)};
	CK_OBJECT_HANDLE pub, priv, k, u;
	CK_BYTE w[512], v[32];
	CK_ATTRIBUTE va = {CKA_VALUE, v, sizeof(v)};
	CK_ULONG wl = sizeof(w);
	CK_SESSION_HANDLE h;
	CK_MECHANISM m;

	t_user_session(&h);
	CU_ASSERT_FATAL(ck_genpair(CONN_A, h, &gen, pt, 1, pt, 0, &pub, &priv) == CKR_OK);
	CU_ASSERT_EQUAL(ck_ulong(CONN_A, h, pub, CKA_MODULUS_BITS), 2048);
	k = t_aes_key(h, key1, CK_TRUE, CK_TRUE);
	for (int i = 0; i < 2; i++) {
		m = i == 0 ? oaep : pkcs;
		wl = sizeof(w);
		CU_ASSERT_EQUAL_FATAL(ck_wrap(h, &m, pub, k, w, &wl), CKR_OK);
		CU_ASSERT_EQUAL(wl, 256);
		CU_ASSERT_EQUAL_FATAL(ck_unwrap(h, &m, priv, w, wl, ut, 4, &u), CKR_OK);
		va.ulValueLen = sizeof(v);
		CU_ASSERT_EQUAL(ck_get(CONN_A, h, u, &va, 1), CKR_OK);
		CU_ASSERT(va.ulValueLen == 32 && memcmp(v, key1, 32) == 0);
	}
	/* wrapping with the private half, unwrapping with the public one */
	CU_ASSERT_EQUAL(ck_wrap(h, &pkcs, priv, k, w, &wl), CKR_KEY_FUNCTION_NOT_PERMITTED);
	CU_ASSERT_EQUAL(ck_unwrap(h, &oaep_noparam, priv, w, 256, ut, 4, &u),
	                CKR_MECHANISM_PARAM_INVALID);
	t_teardown();
}

static CK_RV
ck_derive(CK_SESSION_HANDLE h, const CK_MECHANISM *m, CK_OBJECT_HANDLE base, CK_ATTRIBUTE *t,
          CK_ULONG n, CK_OBJECT_HANDLE *out)
{
	struct proto_cur c;

	return ck_handle_reply(
	        CALL(CONN_A, C_DeriveKey, &c,
	             (PUTU(h), (void)!proto_put_mechanism(&b, m), PUTU(base), PUTT(t, n))),
	        &c, out);
}

static void
test_derive_ecdh(void)
{
	CK_OBJECT_HANDLE apub, apriv, bpub, bpriv, ka, kb;
	CK_BYTE apt[80], bpt[80], va[64], vb[64];
	CK_ATTRIBUTE ap = {CKA_EC_POINT, apt, sizeof(apt)}, bp = {CKA_EC_POINT, bpt, sizeof(bpt)};
	CK_ATTRIBUTE aval = {CKA_VALUE, va, sizeof(va)}, bval = {CKA_VALUE, vb, sizeof(vb)};
	CK_ULONG len = 32;
	CK_ATTRIBUTE t[] = {ATTR(CKA_CLASS, t_secret), ATTR(CKA_KEY_TYPE, t_generic),
	                    ATTR(CKA_SENSITIVE, t_no), ATTR(CKA_EXTRACTABLE, t_yes)};
	CK_ATTRIBUTE aes_nolen[] = {ATTR(CKA_KEY_TYPE, t_aes)};
	CK_ATTRIBUTE aes[] = {ATTR(CKA_KEY_TYPE, t_aes), ATTR(CKA_VALUE_LEN, len)};
	CK_ATTRIBUTE pubclass[] = {ATTR(CKA_CLASS, t_pubc)};
	CK_ATTRIBUTE noderive[] = {ATTR(CKA_DERIVE, t_no)};
	CK_ECDH1_DERIVE_PARAMS pa = {CKD_NULL, 0, NULL, 0, NULL}, pb = pa;
	CK_MECHANISM ma = {CKM_ECDH1_DERIVE, &pa, sizeof(pa)},
	             mb = {CKM_ECDH1_DERIVE, &pb, sizeof(pb)};
	CK_SESSION_HANDLE h;

	t_user_session(&h);
	t_ec_pair(h, &apub, &apriv);
	t_ec_pair(h, &bpub, &bpriv);
	CU_ASSERT_FATAL(ck_get(CONN_A, h, apub, &ap, 1) == CKR_OK);
	CU_ASSERT_FATAL(ck_get(CONN_A, h, bpub, &bp, 1) == CKR_OK);
	pa.pPublicData = bpt;
	pa.ulPublicDataLen = bp.ulValueLen;
	pb.pPublicData = apt;
	pb.ulPublicDataLen = ap.ulValueLen;
	CU_ASSERT_EQUAL_FATAL(ck_derive(h, &ma, apriv, t, 4, &ka), CKR_OK);
	CU_ASSERT_EQUAL_FATAL(ck_derive(h, &mb, bpriv, t, 4, &kb), CKR_OK);
	CU_ASSERT_EQUAL(ck_get(CONN_A, h, ka, &aval, 1), CKR_OK);
	CU_ASSERT_EQUAL(ck_get(CONN_A, h, kb, &bval, 1), CKR_OK);
	CU_ASSERT(aval.ulValueLen == 32 && bval.ulValueLen == 32 && memcmp(va, vb, 32) == 0);
	/* §5.16: a derived key was never "always sensitive" when its base key ... */
	CU_ASSERT_EQUAL(ck_bool(CONN_A, h, ka, CKA_ALWAYS_SENSITIVE), 0);
	CU_ASSERT_EQUAL(ck_bool(CONN_A, h, ka, CKA_LOCAL), 0);
	CU_ASSERT_EQUAL(ck_derive(h, &ma, apriv, aes_nolen, 1, &ka), CKR_TEMPLATE_INCOMPLETE);
	CU_ASSERT_EQUAL(ck_derive(h, &ma, apriv, aes, 2, &ka), CKR_OK);
	CU_ASSERT_EQUAL(ck_ulong(CONN_A, h, ka, CKA_VALUE_LEN), 32);
	CU_ASSERT_EQUAL(ck_derive(h, &ma, apriv, pubclass, 1, &ka), CKR_TEMPLATE_INCONSISTENT);
	CU_ASSERT_EQUAL(ck_derive(h, &ma, apub, t, 4, &ka), CKR_KEY_TYPE_INCONSISTENT);
	CU_ASSERT_EQUAL(ck_derive(h, &ma, 0x7777, t, 4, &ka), CKR_KEY_HANDLE_INVALID);
	CU_ASSERT_EQUAL(ck_set(CONN_A, h, apriv, noderive, 1), CKR_OK);
	CU_ASSERT_EQUAL(ck_derive(h, &ma, apriv, t, 4, &ka), CKR_KEY_FUNCTION_NOT_PERMITTED);
	t_teardown();
}

void
test_register(void)
{
	static const struct test_case cases[] = {
	        {"C_GenerateKey: token attributes, template and session rules", test_generate_key},
	        {"C_GenerateKey: generic secrets and HMAC key types", test_generate_generic},
	        {"C_GenerateKeyPair: token attributes and template rules", test_generate_pair},
	        {"generated token keys persist across a restart", test_generate_persists},
	        {"C_WrapKey/C_UnwrapKey: AES-KW(P), OpenSSL's RFC 3394, refusals",
	         test_wrap_unwrap_aes},
	        {"CKA_WRAP_WITH_TRUSTED and CKA_TRUSTED (SO only)", test_wrap_with_trusted},
	        {"wrapping a private key as PKCS #8 and unwrapping it", test_wrap_private_key},
	        {"RSA-OAEP (label) and RSA-PKCS wrapping", test_wrap_rsa},
	        {"C_DeriveKey: ECDH1 both ways, template and usage rules", test_derive_ecdh},
	        {NULL, NULL},
	};

	test_suite_add("hsm-partitions/keys", NULL, NULL, cases);
}
