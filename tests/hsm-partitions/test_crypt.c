/* tests/hsm-partitions/test_crypt.c — hsm-partitions/crypt.c: C_Encrypt*, C_Decrypt*,
 * C_Sign*, C_Verify*, the recover and dual functions and C_DigestKey through the worker:
 * results against OpenSSL, the operation-state rules (CKR_OPERATION_ACTIVE,
 * CKR_OPERATION_NOT_INITIALIZED, what ends an operation), key usage and
 * CKA_ALLOWED_MECHANISMS, each with its exact CK_RV. */
#include "tests/hsm-partitions/part_test.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>

static const CK_BYTE key1[32] = "0123456789abcdef0123456789abcdef";
static const CK_BYTE iv[16] = "iviviviviviviviv";
static const char msg[] = "The quick brown fox jumps over the lazy dog, twice over: 64 bytes";

/* OpenSSL's result of a whole AES operation, for comparison. */
static int
ossl_cipher(const char *name, int enc, const CK_BYTE *ivp, const void *in, int inlen, CK_BYTE *out,
            int pad)
{
	EVP_CIPHER *c = EVP_CIPHER_fetch(NULL, name, NULL);
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int l1 = 0, l2 = 0;

	CU_ASSERT_FATAL(c != NULL && ctx != NULL);
	CU_ASSERT(EVP_CipherInit_ex(ctx, c, NULL, key1, ivp, enc) == 1);
	EVP_CIPHER_CTX_set_padding(ctx, pad);
	CU_ASSERT(EVP_CipherUpdate(ctx, out, &l1, in, inlen) == 1);
	CU_ASSERT(EVP_CipherFinal_ex(ctx, out + l1, &l2) == 1);
	EVP_CIPHER_CTX_free(ctx);
	EVP_CIPHER_free(c);
	return l1 + l2;
}

static void
test_encrypt_single_and_multi(void)
{
	CK_MECHANISM cbcpad = {CKM_AES_CBC_PAD, (void *)iv, 16};
	CK_BYTE ct[128], ct2[128], pt[128], ref[128];
	CK_ULONG l = sizeof(ct), l2, total;
	CK_SESSION_HANDLE h;
	CK_OBJECT_HANDLE k;
	int rl;

	t_user_session(&h);
	k = t_aes_key(h, key1, CK_TRUE, CK_FALSE);
	rl = ossl_cipher("AES-256-CBC", 1, iv, msg, 60, ref, 1);
	/* single part, with a size query and a short buffer first: the operation goes on */
	CU_ASSERT_EQUAL(ck_init_op(PROTO_CALL_C_EncryptInit, h, &cbcpad, k), CKR_OK);
	CU_ASSERT_EQUAL(ck_io(PROTO_CALL_C_Encrypt, h, msg, 60, NULL, &l), CKR_OK);
	CU_ASSERT_EQUAL(l, 64);
	l = 10;
	CU_ASSERT_EQUAL(ck_io(PROTO_CALL_C_Encrypt, h, msg, 60, ct, &l), CKR_BUFFER_TOO_SMALL);
	CU_ASSERT_EQUAL(l, 64);
	l = sizeof(ct);
	CU_ASSERT_EQUAL(ck_io(PROTO_CALL_C_Encrypt, h, msg, 60, ct, &l), CKR_OK);
	CU_ASSERT(l == (CK_ULONG)rl && memcmp(ct, ref, l) == 0);
	/* ... and then it has ended */
	CU_ASSERT_EQUAL(ck_io(PROTO_CALL_C_Encrypt, h, msg, 60, ct, &l),
	                CKR_OPERATION_NOT_INITIALIZED);
	/* multi part */
	CU_ASSERT_EQUAL(ck_init_op(PROTO_CALL_C_EncryptInit, h, &cbcpad, k), CKR_OK);
	CU_ASSERT_EQUAL(ck_init_op(PROTO_CALL_C_EncryptInit, h, &cbcpad, k), CKR_OPERATION_ACTIVE);
	l = sizeof(ct2);
	CU_ASSERT_EQUAL(ck_io(PROTO_CALL_C_EncryptUpdate, h, msg, 20, ct2, &l), CKR_OK);
	total = l;
	l = sizeof(ct2) - total;
	CU_ASSERT_EQUAL(ck_io(PROTO_CALL_C_EncryptUpdate, h, msg + 20, 40, ct2 + total, &l),
	                CKR_OK);
	total += l;
	/* "C_Encrypt cannot be used to terminate a multi-part operation" */
	l2 = sizeof(ct);
	l = sizeof(ct2) - total;
	CU_ASSERT_EQUAL(ck_fin(PROTO_CALL_C_EncryptFinal, h, NULL, &l), CKR_OK);
	CU_ASSERT_EQUAL(ck_fin(PROTO_CALL_C_EncryptFinal, h, ct2 + total, &l), CKR_OK);
	total += l;
	CU_ASSERT(total == (CK_ULONG)rl && memcmp(ct2, ref, total) == 0);
	CU_ASSERT_EQUAL(ck_fin(PROTO_CALL_C_EncryptFinal, h, ct2, &l2),
	                CKR_OPERATION_NOT_INITIALIZED);
	/* decrypt back */
	CU_ASSERT_EQUAL(ck_init_op(PROTO_CALL_C_DecryptInit, h, &cbcpad, k), CKR_OK);
	l = sizeof(pt);
	CU_ASSERT_EQUAL(ck_io(PROTO_CALL_C_Decrypt, h, ref, rl, pt, &l), CKR_OK);
	CU_ASSERT(l == 60 && memcmp(pt, msg, 60) == 0);
	/* an error ends the operation: a ciphertext that is not whole blocks */
	CU_ASSERT_EQUAL(ck_init_op(PROTO_CALL_C_DecryptInit, h, &cbcpad, k), CKR_OK);
	l = sizeof(pt);
	CU_ASSERT_EQUAL(ck_io(PROTO_CALL_C_Decrypt, h, ref, 17, pt, &l),
	                CKR_ENCRYPTED_DATA_LEN_RANGE);
	CU_ASSERT_EQUAL(ck_io(PROTO_CALL_C_Decrypt, h, ref, rl, pt, &l),
	                CKR_OPERATION_NOT_INITIALIZED);
	CU_ASSERT_EQUAL(ck_fin(PROTO_CALL_C_DecryptFinal, h, pt, &l),
	                CKR_OPERATION_NOT_INITIALIZED);
	/* encryption and decryption are separate slots */
	CU_ASSERT_EQUAL(ck_init_op(PROTO_CALL_C_EncryptInit, h, &cbcpad, k), CKR_OK);
	CU_ASSERT_EQUAL(ck_init_op(PROTO_CALL_C_DecryptInit, h, &cbcpad, k), CKR_OK);
	t_teardown();
}

static void
test_aes_modes_against_openssl(void)
{
	CK_AES_CTR_PARAMS ctrp;
	CK_BYTE gcm_iv[12] = "123456789012", aad[5] = "head";
	CK_GCM_PARAMS gp = {gcm_iv, 12, 96, aad, 4, 128};
	CK_GCM_PARAMS badtag = {gcm_iv, 12, 96, aad, 4, 100};
	CK_MECHANISM ctr = {CKM_AES_CTR, &ctrp, sizeof(ctrp)};
	CK_MECHANISM gcm = {CKM_AES_GCM, &gp, sizeof(gp)};
	CK_MECHANISM gcmbad = {CKM_AES_GCM, &badtag, sizeof(badtag)};
	CK_MECHANISM ecb = {CKM_AES_ECB, NULL, 0};
	CK_MECHANISM cbc_noiv = {CKM_AES_CBC, NULL, 0};
	CK_BYTE ct[128], ref[128], pt[128], tag[16];
	CK_ULONG l = sizeof(ct);
	EVP_CIPHER_CTX *c;
	CK_SESSION_HANDLE h;
	CK_OBJECT_HANDLE k;
	int rl, x = 0;

	t_user_session(&h);
	k = t_aes_key(h, key1, CK_TRUE, CK_FALSE);
	ctrp.ulCounterBits = 128;
	memcpy(ctrp.cb, iv, 16);
	CU_ASSERT_EQUAL(ck_init_op(PROTO_CALL_C_EncryptInit, h, &ctr, k), CKR_OK);
	CU_ASSERT_EQUAL(ck_io(PROTO_CALL_C_Encrypt, h, msg, 50, ct, &l), CKR_OK);
	rl = ossl_cipher("AES-256-CTR", 1, iv, msg, 50, ref, 0);
	CU_ASSERT(l == (CK_ULONG)rl && memcmp(ct, ref, l) == 0);
	l = sizeof(ct);
	CU_ASSERT_EQUAL(ck_init_op(PROTO_CALL_C_EncryptInit, h, &ecb, k), CKR_OK);
	CU_ASSERT_EQUAL(ck_io(PROTO_CALL_C_Encrypt, h, msg, 64, ct, &l), CKR_OK);
	rl = ossl_cipher("AES-256-ECB", 1, NULL, msg, 64, ref, 0);
	CU_ASSERT(l == (CK_ULONG)rl && memcmp(ct, ref, l) == 0);
	/* ECB/CBC without padding: whole blocks only */
	CU_ASSERT_EQUAL(ck_init_op(PROTO_CALL_C_EncryptInit, h, &ecb, k), CKR_OK);
	CU_ASSERT_EQUAL(ck_io(PROTO_CALL_C_Encrypt, h, msg, 63, ct, &l), CKR_DATA_LEN_RANGE);
	/* GCM against OpenSSL, ciphertext || tag */
	l = sizeof(ct);
	CU_ASSERT_EQUAL(ck_init_op(PROTO_CALL_C_EncryptInit, h, &gcm, k), CKR_OK);
	CU_ASSERT_EQUAL(ck_io(PROTO_CALL_C_Encrypt, h, msg, 40, ct, &l), CKR_OK);
	CU_ASSERT_EQUAL(l, 56);
	c = EVP_CIPHER_CTX_new();
	CU_ASSERT(EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, key1, gcm_iv) == 1);
	CU_ASSERT(EVP_EncryptUpdate(c, NULL, &x, aad, 4) == 1);
	CU_ASSERT(EVP_EncryptUpdate(c, ref, &x, (const CK_BYTE *)msg, 40) == 1);
	CU_ASSERT(EVP_EncryptFinal_ex(c, ref + x, &x) == 1);
	CU_ASSERT(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, tag) == 1);
	EVP_CIPHER_CTX_free(c);
	CU_ASSERT(memcmp(ct, ref, 40) == 0 && memcmp(ct + 40, tag, 16) == 0);
	CU_ASSERT_EQUAL(ck_init_op(PROTO_CALL_C_DecryptInit, h, &gcm, k), CKR_OK);
	l = sizeof(pt);
	CU_ASSERT_EQUAL(ck_io(PROTO_CALL_C_Decrypt, h, ct, 56, pt, &l), CKR_OK);
	CU_ASSERT(l == 40 && memcmp(pt, msg, 40) == 0);
	ct[3] ^= 1;
	CU_ASSERT_EQUAL(ck_init_op(PROTO_CALL_C_DecryptInit, h, &gcm, k), CKR_OK);
	l = sizeof(pt);
	CU_ASSERT_EQUAL(ck_io(PROTO_CALL_C_Decrypt, h, ct, 56, pt, &l), CKR_ENCRYPTED_DATA_INVALID);
	/* "CKR_MECHANISM_PARAM_INVALID for a bad IV or tag length" */
	CU_ASSERT_EQUAL(ck_init_op(PROTO_CALL_C_EncryptInit, h, &gcmbad, k),
	                CKR_MECHANISM_PARAM_INVALID);
	CU_ASSERT_EQUAL(ck_init_op(PROTO_CALL_C_EncryptInit, h, &cbc_noiv, k),
	                CKR_MECHANISM_PARAM_INVALID);
	/* a failed init leaves no operation behind */
	CU_ASSERT_EQUAL(ck_init_op(PROTO_CALL_C_EncryptInit, h, &ecb, k), CKR_OK);
	t_teardown();
}

static void
test_mac_against_openssl(void)
{
	CK_MECHANISM cmac = {CKM_AES_CMAC, NULL, 0}, hmac = {CKM_SHA256_HMAC, NULL, 0};
	CK_ATTRIBUTE gt[] = {ATTR(CKA_CLASS, t_secret),
	                     ATTR(CKA_KEY_TYPE, t_generic),
	                     {CKA_VALUE, (void *)key1, 20}};
	CK_BYTE mac[64], ref[64];
	CK_ULONG l = sizeof(mac);
	size_t rl = 0;
	OSSL_PARAM p[2];
	EVP_MAC_CTX *mc;
	EVP_MAC *m;
	CK_SESSION_HANDLE h;
	CK_OBJECT_HANDLE k, g;

	t_user_session(&h);
	k = t_aes_key(h, key1, CK_TRUE, CK_FALSE);
	CU_ASSERT_FATAL(ck_create(CONN_A, h, gt, 3, &g) == CKR_OK);
	/* AES-CMAC, multi-part */
	CU_ASSERT_EQUAL(ck_init_op(PROTO_CALL_C_SignInit, h, &cmac, k), CKR_OK);
	CU_ASSERT_EQUAL(ck_in(PROTO_CALL_C_SignUpdate, h, msg, 10), CKR_OK);
	CU_ASSERT_EQUAL(ck_in(PROTO_CALL_C_SignUpdate, h, msg + 10, 30), CKR_OK);
	/* "C_Sign cannot be used to terminate a multi-part operation" */
	CU_ASSERT_EQUAL(ck_fin(PROTO_CALL_C_SignFinal, h, mac, &l), CKR_OK);
	m = EVP_MAC_fetch(NULL, "CMAC", NULL);
	mc = EVP_MAC_CTX_new(m);
	p[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_CIPHER, "AES-256-CBC", 0);
	p[1] = OSSL_PARAM_construct_end();
	CU_ASSERT(EVP_MAC_init(mc, key1, 32, p) == 1);
	CU_ASSERT(EVP_MAC_update(mc, (const CK_BYTE *)msg, 40) == 1);
	CU_ASSERT(EVP_MAC_final(mc, ref, &rl, sizeof(ref)) == 1);
	EVP_MAC_CTX_free(mc);
	EVP_MAC_free(m);
	CU_ASSERT(l == rl && memcmp(mac, ref, rl) == 0);
	CU_ASSERT_EQUAL(ck_init_op(PROTO_CALL_C_VerifyInit, h, &cmac, k), CKR_OK);
	CU_ASSERT_EQUAL(ck_verify(h, msg, 40, mac, l), CKR_OK);
	/* HMAC-SHA256 with a 20-byte generic secret */
	l = sizeof(mac);
	CU_ASSERT_EQUAL(ck_init_op(PROTO_CALL_C_SignInit, h, &hmac, g), CKR_OK);
	CU_ASSERT_EQUAL(ck_io(PROTO_CALL_C_Sign, h, msg, 40, mac, &l), CKR_OK);
	rl = 0;
	CU_ASSERT(EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key1, 20, (const CK_BYTE *)msg, 40,
	                    ref, sizeof(ref), &rl) != NULL);
	CU_ASSERT(l == 32 && rl == 32 && memcmp(mac, ref, 32) == 0);
	/* a bad MAC: CKR_SIGNATURE_INVALID, and the operation has ended */
	mac[0] ^= 1;
	CU_ASSERT_EQUAL(ck_init_op(PROTO_CALL_C_VerifyInit, h, &hmac, g), CKR_OK);
	CU_ASSERT_EQUAL(ck_in(PROTO_CALL_C_VerifyUpdate, h, msg, 40), CKR_OK);
	CU_ASSERT_EQUAL(ck_in(PROTO_CALL_C_VerifyFinal, h, mac, 32), CKR_SIGNATURE_INVALID);
	CU_ASSERT_EQUAL(ck_in(PROTO_CALL_C_VerifyFinal, h, mac, 32), CKR_OPERATION_NOT_INITIALIZED);
	CU_ASSERT_EQUAL(ck_init_op(PROTO_CALL_C_VerifyInit, h, &hmac, g), CKR_OK);
	CU_ASSERT_EQUAL(ck_verify(h, msg, 40, mac, 31), CKR_SIGNATURE_LEN_RANGE);
	/* an HMAC key is no AES key */
	CU_ASSERT_EQUAL(ck_init_op(PROTO_CALL_C_SignInit, h, &cmac, g), CKR_KEY_TYPE_INCONSISTENT);
	t_teardown();
}

static void
test_sign_verify_ec(void)
{
	CK_MECHANISM ecdsa = {CKM_ECDSA_SHA256, NULL, 0}, raw = {CKM_ECDSA, NULL, 0};
	CK_BYTE sig[80], md[32];
	CK_ULONG l = sizeof(sig);
	CK_OBJECT_HANDLE pub, priv;
	CK_SESSION_HANDLE h;

	t_user_session(&h);
	t_ec_pair(h, &pub, &priv);
	CU_ASSERT_EQUAL(ck_init_op(PROTO_CALL_C_SignInit, h, &ecdsa, priv), CKR_OK);
	CU_ASSERT_EQUAL(ck_init_op(PROTO_CALL_C_SignInit, h, &ecdsa, priv), CKR_OPERATION_ACTIVE);
	CU_ASSERT_EQUAL(ck_in(PROTO_CALL_C_SignUpdate, h, msg, 30), CKR_OK);
	CU_ASSERT_EQUAL(ck_in(PROTO_CALL_C_SignUpdate, h, msg + 30, 30), CKR_OK);
	CU_ASSERT_EQUAL(ck_fin(PROTO_CALL_C_SignFinal, h, sig, &l), CKR_OK);
	CU_ASSERT_EQUAL(l, 64);
	/* the raw mechanism on OpenSSL's hash verifies the hash-then-sign signature */
	EVP_Digest(msg, 60, md, NULL, EVP_sha256(), NULL);
	CU_ASSERT_EQUAL(ck_init_op(PROTO_CALL_C_VerifyInit, h, &raw, pub), CKR_OK);
	CU_ASSERT_EQUAL(ck_verify(h, md, 32, sig, l), CKR_OK);
	CU_ASSERT_EQUAL(ck_init_op(PROTO_CALL_C_VerifyInit, h, &ecdsa, pub), CKR_OK);
	CU_ASSERT_EQUAL(ck_in(PROTO_CALL_C_VerifyUpdate, h, msg, 60), CKR_OK);
	CU_ASSERT_EQUAL(ck_in(PROTO_CALL_C_VerifyFinal, h, sig, l), CKR_OK);
	sig[10] ^= 1;
	CU_ASSERT_EQUAL(ck_init_op(PROTO_CALL_C_VerifyInit, h, &ecdsa, pub), CKR_OK);
	CU_ASSERT_EQUAL(ck_verify(h, msg, 60, sig, l), CKR_SIGNATURE_INVALID);
	/* C_Verify ends the operation whatever it returns */
	CU_ASSERT_EQUAL(ck_verify(h, msg, 60, sig, l), CKR_OPERATION_NOT_INITIALIZED);
	/* the wrong half: a public key does not sign, a private key does not verify */
	CU_ASSERT_EQUAL(ck_init_op(PROTO_CALL_C_SignInit, h, &ecdsa, pub),
	                CKR_KEY_TYPE_INCONSISTENT);
	CU_ASSERT_EQUAL(ck_init_op(PROTO_CALL_C_VerifyInit, h, &ecdsa, priv),
	                CKR_KEY_TYPE_INCONSISTENT);
	t_teardown();
}

static void
test_recover_rsa(void)
{
	CK_MECHANISM pkcs = {CKM_RSA_PKCS, NULL, 0}, x509 = {CKM_RSA_X_509, NULL, 0};
	CK_MECHANISM sha = {CKM_SHA256_RSA_PKCS, NULL, 0};
	CK_ATTRIBUTE norecover[] = {ATTR(CKA_SIGN_RECOVER, t_no)};
	CK_BYTE sig[256], out[256], block[256];
	CK_ULONG l = sizeof(sig), ol = sizeof(out);
	CK_OBJECT_HANDLE pub, priv;
	CK_SESSION_HANDLE h;

	t_rsa_session(tthreads, &h, &pub, &priv);
	CU_ASSERT_EQUAL(ck_init_op(PROTO_CALL_C_SignRecoverInit, h, &pkcs, priv), CKR_OK);
	/* the sign slot is taken; C_Sign is not C_SignRecover */
	CU_ASSERT_EQUAL(ck_init_op(PROTO_CALL_C_SignInit, h, &pkcs, priv), CKR_OPERATION_ACTIVE);
	CU_ASSERT_EQUAL(ck_io(PROTO_CALL_C_Sign, h, "abc", 3, sig, &l),
	                CKR_OPERATION_NOT_INITIALIZED);
	CU_ASSERT_EQUAL(ck_io(PROTO_CALL_C_SignRecover, h, "abc", 3, sig, &l), CKR_OK);
	CU_ASSERT_EQUAL(l, 256);
	CU_ASSERT_EQUAL(ck_init_op(PROTO_CALL_C_VerifyRecoverInit, h, &pkcs, pub), CKR_OK);
	CU_ASSERT_EQUAL(ck_io(PROTO_CALL_C_VerifyRecover, h, sig, l, out, &ol), CKR_OK);
	CU_ASSERT(ol == 3 && memcmp(out, "abc", 3) == 0);
	/* RSA_X_509: the raw block comes back whole */
	memset(block, 0, sizeof(block));
	block[255] = 7;
	l = sizeof(sig);
	CU_ASSERT_EQUAL(ck_init_op(PROTO_CALL_C_SignRecoverInit, h, &x509, priv), CKR_OK);
	CU_ASSERT_EQUAL(ck_io(PROTO_CALL_C_SignRecover, h, block, 256, sig, &l), CKR_OK);
	ol = sizeof(out);
	CU_ASSERT_EQUAL(ck_init_op(PROTO_CALL_C_VerifyRecoverInit, h, &x509, pub), CKR_OK);
	CU_ASSERT_EQUAL(ck_io(PROTO_CALL_C_VerifyRecover, h, sig, l, out, &ol), CKR_OK);
	CU_ASSERT(ol == 256 && memcmp(out, block, 256) == 0);
	/* a mechanism that does not recover */
	CU_ASSERT_EQUAL(ck_init_op(PROTO_CALL_C_SignRecoverInit, h, &sha, priv),
	                CKR_MECHANISM_INVALID);
	CU_ASSERT_EQUAL(ck_set(CONN_A, h, priv, norecover, 1), CKR_OK);
	CU_ASSERT_EQUAL(ck_init_op(PROTO_CALL_C_SignRecoverInit, h, &pkcs, priv),
	                CKR_KEY_FUNCTION_NOT_PERMITTED);
	t_teardown();
}

/* RSA private-key calls, which crypto threads take (pool.c): the size convention keeps the
 * operation going, a result computed for a size query is the one returned, a failure or a
 * result ends it, and the signature and plaintext are right. */
static void
test_rsa_private_calls(void)
{
	CK_MECHANISM sha = {CKM_SHA256_RSA_PKCS, NULL, 0}, pkcs = {CKM_RSA_PKCS, NULL, 0};
	static CK_BYTE big[65536];
	CK_BYTE sig[256], sig2[256], ct[256], out[256];
	CK_ULONG l, l2, cl, ol;
	CK_OBJECT_HANDLE pub, priv;
	CK_SESSION_HANDLE h;
	unsigned later;

	t_rsa_session(tthreads, &h, &pub, &priv); /* its key pair too is made on a thread */
	later = tlater;
	CU_ASSERT_EQUAL(ck_init_op(PROTO_CALL_C_SignInit, h, &sha, priv), CKR_OK);
	l = 0;
	CU_ASSERT_EQUAL(ck_io(PROTO_CALL_C_Sign, h, msg, 64, NULL, &l), CKR_OK);
	CU_ASSERT_EQUAL(l, 256);
	l = 100;
	CU_ASSERT_EQUAL(ck_io(PROTO_CALL_C_Sign, h, msg, 64, sig, &l), CKR_BUFFER_TOO_SMALL);
	CU_ASSERT_EQUAL(l, 256);
	l = sizeof(sig);
	CU_ASSERT_EQUAL(ck_io(PROTO_CALL_C_Sign, h, msg, 64, sig, &l), CKR_OK);
	CU_ASSERT_EQUAL(l, 256);
	CU_ASSERT_EQUAL(ck_io(PROTO_CALL_C_Sign, h, msg, 64, sig, &l),
	                CKR_OPERATION_NOT_INITIALIZED);
	/* PKCS #1 v1.5 is deterministic: a second signature is the same bytes, whatever the
	 * buffer's size */
	l2 = sizeof(sig2);
	CU_ASSERT_EQUAL(ck_init_op(PROTO_CALL_C_SignInit, h, &sha, priv), CKR_OK);
	CU_ASSERT_EQUAL(ck_io(PROTO_CALL_C_Sign, h, msg, 64, sig2, &l2), CKR_OK);
	CU_ASSERT(l2 == 256 && memcmp(sig, sig2, 256) == 0);
	l2 = sizeof(big);
	CU_ASSERT_EQUAL(ck_init_op(PROTO_CALL_C_SignInit, h, &sha, priv), CKR_OK);
	CU_ASSERT_EQUAL(ck_io(PROTO_CALL_C_Sign, h, msg, 64, big, &l2), CKR_OK);
	CU_ASSERT(l2 == 256 && memcmp(sig, big, 256) == 0);
	CU_ASSERT_EQUAL(ck_init_op(PROTO_CALL_C_VerifyInit, h, &sha, pub), CKR_OK);
	CU_ASSERT_EQUAL(ck_verify(h, msg, 64, sig, l), CKR_OK);
	/* decryption: a ciphertext that does not decrypt ends the operation */
	cl = sizeof(ct);
	CU_ASSERT_EQUAL(ck_init_op(PROTO_CALL_C_EncryptInit, h, &pkcs, pub), CKR_OK);
	CU_ASSERT_EQUAL(ck_io(PROTO_CALL_C_Encrypt, h, "secret", 6, ct, &cl), CKR_OK);
	CU_ASSERT_EQUAL(cl, 256);
	ol = sizeof(out);
	CU_ASSERT_EQUAL(ck_init_op(PROTO_CALL_C_DecryptInit, h, &pkcs, priv), CKR_OK);
	CU_ASSERT_EQUAL(ck_io(PROTO_CALL_C_Decrypt, h, ct, 255, out, &ol),
	                CKR_ENCRYPTED_DATA_LEN_RANGE);
	CU_ASSERT_EQUAL(ck_io(PROTO_CALL_C_Decrypt, h, ct, cl, out, &ol),
	                CKR_OPERATION_NOT_INITIALIZED);
	ol = sizeof(out);
	CU_ASSERT_EQUAL(ck_init_op(PROTO_CALL_C_DecryptInit, h, &pkcs, priv), CKR_OK);
	CU_ASSERT_EQUAL(ck_io(PROTO_CALL_C_Decrypt, h, ct, cl, out, &ol), CKR_OK);
	CU_ASSERT(ol == 6 && memcmp(out, "secret", 6) == 0);
	/* with crypto threads, every C_Sign and C_Decrypt above with an operation to run was
	 * handed over */
	CU_ASSERT_EQUAL(tlater - later, tthreads > 1 ? 7u : 0u);
	t_teardown();
}

static void
test_usage_and_allowed(void)
{
	CK_MECHANISM ecb = {CKM_AES_ECB, NULL, 0}, cbc = {CKM_AES_CBC, (void *)iv, 16};
	CK_MECHANISM sha = {CKM_SHA256, NULL, 0};
	CK_MECHANISM_TYPE allowed[] = {CKM_AES_CBC};
	CK_ATTRIBUTE noenc[] = {ATTR(CKA_ENCRYPT, t_no)};
	CK_ATTRIBUTE allow[] = {{CKA_ALLOWED_MECHANISMS, allowed, sizeof(allowed)}};
	CK_ATTRIBUTE data[] = {{CKA_CLASS, &(CK_OBJECT_CLASS){CKO_DATA}, sizeof(CK_OBJECT_CLASS)}};
	CK_ATTRIBUTE privkey[] = {ATTR(CKA_CLASS, t_secret),
	                          ATTR(CKA_KEY_TYPE, t_aes),
	                          {CKA_VALUE, (void *)key1, 32},
	                          ATTR(CKA_PRIVATE, t_yes)};
	CK_OBJECT_HANDLE k, d, pk;
	CK_SESSION_HANDLE h;

	t_user_session(&h);
	k = t_aes_key(h, key1, CK_TRUE, CK_FALSE);
	CU_ASSERT_FATAL(ck_create(CONN_A, h, data, 1, &d) == CKR_OK);
	CU_ASSERT_FATAL(ck_create(CONN_A, h, privkey, 4, &pk) == CKR_OK);
	CU_ASSERT_EQUAL(ck_init_op(PROTO_CALL_C_EncryptInit, h, &ecb, d), CKR_KEY_HANDLE_INVALID);
	CU_ASSERT_EQUAL(ck_init_op(PROTO_CALL_C_EncryptInit, h, &ecb, 0x7777),
	                CKR_KEY_HANDLE_INVALID);
	CU_ASSERT_EQUAL(ck_init_op(PROTO_CALL_C_EncryptInit, h, &sha, k), CKR_MECHANISM_INVALID);
	CU_ASSERT_EQUAL(ck_set(CONN_A, h, k, allow, 1), CKR_OK);
	CU_ASSERT_EQUAL(ck_init_op(PROTO_CALL_C_EncryptInit, h, &ecb, k), CKR_MECHANISM_INVALID);
	CU_ASSERT_EQUAL(ck_init_op(PROTO_CALL_C_EncryptInit, h, &cbc, k), CKR_OK);
	CU_ASSERT_EQUAL(ck_init_op(PROTO_CALL_C_DecryptInit, h, &cbc, k), CKR_OK);
	CU_ASSERT_EQUAL(ck_set(CONN_A, h, k, noenc, 1), CKR_OK);
	CU_ASSERT_EQUAL(ck_close(CONN_A, h), CKR_OK); /* ends the operations too */
	CU_ASSERT_FATAL(ck_open(CONN_A, RW, &h) == CKR_OK);
	/* the session key died with its session */
	CU_ASSERT_EQUAL(ck_init_op(PROTO_CALL_C_EncryptInit, h, &cbc, k), CKR_KEY_HANDLE_INVALID);
	t_teardown();

	/* the same key, still there: CKA_ENCRYPT false */
	t_user_session(&h);
	k = t_aes_key(h, key1, CK_TRUE, CK_FALSE);
	CU_ASSERT_EQUAL(ck_set(CONN_A, h, k, noenc, 1), CKR_OK);
	CU_ASSERT_EQUAL(ck_init_op(PROTO_CALL_C_EncryptInit, h, &cbc, k),
	                CKR_KEY_FUNCTION_NOT_PERMITTED);
	CU_ASSERT_FATAL(ck_create(CONN_A, h, privkey, 4, &pk) == CKR_OK);
	CU_ASSERT_EQUAL(ck_init_op(PROTO_CALL_C_DecryptInit, h, &cbc, pk), CKR_OK);
	/* a private key is invisible once logged out */
	CU_ASSERT_EQUAL(ck_logout(CONN_A, h), CKR_OK);
	CU_ASSERT_EQUAL(ck_init_op(PROTO_CALL_C_EncryptInit, h, &cbc, pk), CKR_KEY_HANDLE_INVALID);
	t_teardown();
}

static void
test_dual_and_digest_key(void)
{
	CK_MECHANISM ecb = {CKM_AES_ECB, NULL, 0}, sha = {CKM_SHA256, NULL, 0};
	CK_MECHANISM hmac = {CKM_SHA256_HMAC, NULL, 0};
	CK_ATTRIBUTE gt[] = {ATTR(CKA_CLASS, t_secret),
	                     ATTR(CKA_KEY_TYPE, t_generic),
	                     {CKA_VALUE, (void *)key1, 32}};
	CK_BYTE ct[64], pt[64], md[32], ref[32], mac[32], mac2[32];
	CK_ULONG l = sizeof(ct), ml = sizeof(md);
	CK_OBJECT_HANDLE k, g, pub, priv;
	CK_SESSION_HANDLE h;

	t_user_session(&h);
	k = t_aes_key(h, key1, CK_TRUE, CK_FALSE);
	CU_ASSERT_FATAL(ck_create(CONN_A, h, gt, 3, &g) == CKR_OK);
	/* C_DigestEncryptUpdate = C_DigestUpdate + C_EncryptUpdate */
	CU_ASSERT_EQUAL(ck_io(PROTO_CALL_C_DigestEncryptUpdate, h, msg, 32, ct, &l),
	                CKR_OPERATION_NOT_INITIALIZED);
	CU_ASSERT_EQUAL(
	        CALL(CONN_A, C_DigestInit, NULL, (PUTU(h), (void)!proto_put_mechanism(&b, &sha))),
	        CKR_OK);
	CU_ASSERT_EQUAL(ck_io(PROTO_CALL_C_DigestEncryptUpdate, h, msg, 32, ct, &l),
	                CKR_OPERATION_NOT_INITIALIZED);
	CU_ASSERT_EQUAL(ck_init_op(PROTO_CALL_C_EncryptInit, h, &ecb, k), CKR_OK);
	l = 0;
	CU_ASSERT_EQUAL(ck_io(PROTO_CALL_C_DigestEncryptUpdate, h, msg, 32, NULL, &l), CKR_OK);
	CU_ASSERT_EQUAL(l, 32);
	l = sizeof(ct);
	CU_ASSERT_EQUAL(ck_io(PROTO_CALL_C_DigestEncryptUpdate, h, msg, 32, ct, &l), CKR_OK);
	CU_ASSERT_EQUAL(ck_fin(PROTO_CALL_C_DigestFinal, h, md, &ml), CKR_OK);
	EVP_Digest(msg, 32, ref, NULL, EVP_sha256(), NULL);
	CU_ASSERT(ml == 32 && memcmp(md, ref, 32) == 0); /* digested exactly once */
	l = 0;
	CU_ASSERT_EQUAL(ck_fin(PROTO_CALL_C_EncryptFinal, h, NULL, &l), CKR_OK);
	CU_ASSERT_EQUAL(ck_fin(PROTO_CALL_C_EncryptFinal, h, pt, &l), CKR_OK);
	/* C_DecryptDigestUpdate digests the plaintext */
	CU_ASSERT_EQUAL(
	        CALL(CONN_A, C_DigestInit, NULL, (PUTU(h), (void)!proto_put_mechanism(&b, &sha))),
	        CKR_OK);
	CU_ASSERT_EQUAL(ck_init_op(PROTO_CALL_C_DecryptInit, h, &ecb, k), CKR_OK);
	l = sizeof(pt);
	CU_ASSERT_EQUAL(ck_io(PROTO_CALL_C_DecryptDigestUpdate, h, ct, 32, pt, &l), CKR_OK);
	CU_ASSERT(l == 32 && memcmp(pt, msg, 32) == 0);
	ml = sizeof(md);
	CU_ASSERT_EQUAL(ck_fin(PROTO_CALL_C_DigestFinal, h, md, &ml), CKR_OK);
	CU_ASSERT(memcmp(md, ref, 32) == 0);
	l = sizeof(pt);
	CU_ASSERT_EQUAL(ck_fin(PROTO_CALL_C_DecryptFinal, h, pt, &l), CKR_OK);
	/* C_SignEncryptUpdate and C_DecryptVerifyUpdate */
	CU_ASSERT_EQUAL(ck_init_op(PROTO_CALL_C_SignInit, h, &hmac, g), CKR_OK);
	CU_ASSERT_EQUAL(ck_init_op(PROTO_CALL_C_EncryptInit, h, &ecb, k), CKR_OK);
	l = sizeof(ct);
	CU_ASSERT_EQUAL(ck_io(PROTO_CALL_C_SignEncryptUpdate, h, msg, 32, ct, &l), CKR_OK);
	ml = sizeof(mac);
	CU_ASSERT_EQUAL(ck_fin(PROTO_CALL_C_SignFinal, h, mac, &ml), CKR_OK);
	l = sizeof(pt);
	CU_ASSERT_EQUAL(ck_fin(PROTO_CALL_C_EncryptFinal, h, pt, &l), CKR_OK);
	CU_ASSERT_EQUAL(ck_init_op(PROTO_CALL_C_VerifyInit, h, &hmac, g), CKR_OK);
	CU_ASSERT_EQUAL(ck_init_op(PROTO_CALL_C_DecryptInit, h, &ecb, k), CKR_OK);
	l = sizeof(pt);
	CU_ASSERT_EQUAL(ck_io(PROTO_CALL_C_DecryptVerifyUpdate, h, ct, 32, pt, &l), CKR_OK);
	CU_ASSERT_EQUAL(ck_in(PROTO_CALL_C_VerifyFinal, h, mac, ml), CKR_OK);
	l = sizeof(pt);
	CU_ASSERT_EQUAL(ck_fin(PROTO_CALL_C_DecryptFinal, h, pt, &l), CKR_OK);
	memcpy(mac2, mac, sizeof(mac2));
	/* C_DigestKey: the key's value goes into the digest */
	CU_ASSERT_EQUAL(CALL(CONN_A, C_DigestKey, NULL, (PUTU(h), PUTU(k))),
	                CKR_OPERATION_NOT_INITIALIZED);
	CU_ASSERT_EQUAL(
	        CALL(CONN_A, C_DigestInit, NULL, (PUTU(h), (void)!proto_put_mechanism(&b, &sha))),
	        CKR_OK);
	CU_ASSERT_EQUAL(ck_in(PROTO_CALL_C_DigestUpdate, h, "x", 1), CKR_OK);
	CU_ASSERT_EQUAL(CALL(CONN_A, C_DigestKey, NULL, (PUTU(h), PUTU(k))), CKR_OK);
	ml = sizeof(md);
	CU_ASSERT_EQUAL(ck_fin(PROTO_CALL_C_DigestFinal, h, md, &ml), CKR_OK);
	{
		CK_BYTE in[33];

		in[0] = 'x';
		memcpy(in + 1, key1, 32);
		EVP_Digest(in, 33, ref, NULL, EVP_sha256(), NULL);
	}
	CU_ASSERT(memcmp(md, ref, 32) == 0);
	t_ec_pair(h, &pub, &priv);
	CU_ASSERT_EQUAL(
	        CALL(CONN_A, C_DigestInit, NULL, (PUTU(h), (void)!proto_put_mechanism(&b, &sha))),
	        CKR_OK);
	CU_ASSERT_EQUAL(CALL(CONN_A, C_DigestKey, NULL, (PUTU(h), PUTU(pub))),
	                CKR_KEY_INDIGESTIBLE);
	/* ... which ended the digest */
	CU_ASSERT_EQUAL(CALL(CONN_A, C_DigestKey, NULL, (PUTU(h), PUTU(k))),
	                CKR_OPERATION_NOT_INITIALIZED);
	CU_ASSERT_EQUAL(
	        CALL(CONN_A, C_DigestInit, NULL, (PUTU(h), (void)!proto_put_mechanism(&b, &sha))),
	        CKR_OK);
	CU_ASSERT_EQUAL(CALL(CONN_A, C_DigestKey, NULL, (PUTU(h), PUTU(0x7777))),
	                CKR_KEY_HANDLE_INVALID);
	t_teardown();
}

void
test_register(void)
{
	static const struct test_case cases[] = {
	        {"encrypt/decrypt: single and multi-part, size queries, op ends",
	         test_encrypt_single_and_multi},
	        {"AES ECB/CTR/GCM equal OpenSSL; bad parameters", test_aes_modes_against_openssl},
	        {"AES-CMAC and HMAC equal OpenSSL; verify failures end the op",
	         test_mac_against_openssl},
	        {"ECDSA sign/verify multi-part; wrong key halves", test_sign_verify_ec},
	        {"C_SignRecover / C_VerifyRecover with RSA-PKCS and RSA-X-509", test_recover_rsa},
	        {"RSA C_Sign and C_Decrypt: size convention, results, what ends them",
	         test_rsa_private_calls},
	        {"usage flags, CKA_ALLOWED_MECHANISMS, key handles", test_usage_and_allowed},
	        {"dual-function updates and C_DigestKey", test_dual_and_digest_key},
	        {NULL, NULL},
	};

	test_suite_add("hsm-partitions/crypt", NULL, NULL, cases);
	/* The same with crypto threads: RSA private-key calls are handed over (pool.c) and
	 * must answer exactly as in line. */
	test_suite_add("hsm-partitions/crypt (crypto threads)", t_threads_on, t_threads_off, cases);
}
