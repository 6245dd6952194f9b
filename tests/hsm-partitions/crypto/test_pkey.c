/*
 * tests/hsm-partitions/crypto/test_pkey.c — RSA, ECDSA and EdDSA (pkey.c): every mechanism
 * checked against OpenSSL's own EVP on keys OpenSSL generated, in both directions, and
 * every refusal's CK_RV.
 */
#include "tests/lib/test.h"
#include "tests/hsm-partitions/crypto/crypto_test.h"

#include <string.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

static EVP_PKEY *rsa, *ec[3], *ed;
static struct part_key *rsa_priv, *rsa_pub, *ec_priv[3], *ec_pub[3], *ed_priv, *ed_pub;
static const char *const groups[3] = {"P-256", "P-384", "P-521"};
static const size_t flen[3] = {32, 48, 66};

/* Built by the first test that runs: CU_ASSERT cannot be used in a suite's init. */
static void
fixtures(void)
{
	size_t i;

	if (rsa != NULL) {
		return;
	}
	rsa = th_ossl_pair("RSA", NULL, 2048, &rsa_priv, &rsa_pub);
	for (i = 0; i < 3; i++) {
		ec[i] = th_ossl_pair("EC", groups[i], 0, &ec_priv[i], &ec_pub[i]);
	}
	ed = th_ossl_pair("ED25519", NULL, 0, &ed_priv, &ed_pub);
}

static int
suite_cleanup(void)
{
	size_t i;

	EVP_PKEY_free(rsa);
	part_key_free(rsa_priv);
	part_key_free(rsa_pub);
	for (i = 0; i < 3; i++) {
		EVP_PKEY_free(ec[i]);
		part_key_free(ec_priv[i]);
		part_key_free(ec_pub[i]);
	}
	EVP_PKEY_free(ed);
	part_key_free(ed_priv);
	part_key_free(ed_pub);
	return 0;
}

static const struct {
	CK_MECHANISM_TYPE pkcs, pss, ecdsa, hash;
	CK_ULONG mgf;
	const char *name;
	size_t len;
} hashes[] = {
        {CKM_SHA1_RSA_PKCS, CKM_SHA1_RSA_PKCS_PSS, CKM_ECDSA_SHA1, CKM_SHA_1, CKG_MGF1_SHA1, "SHA1",
         20},
        {CKM_SHA224_RSA_PKCS, CKM_SHA224_RSA_PKCS_PSS, CKM_ECDSA_SHA224, CKM_SHA224,
         CKG_MGF1_SHA224, "SHA224", 28},
        {CKM_SHA256_RSA_PKCS, CKM_SHA256_RSA_PKCS_PSS, CKM_ECDSA_SHA256, CKM_SHA256,
         CKG_MGF1_SHA256, "SHA256", 32},
        {CKM_SHA384_RSA_PKCS, CKM_SHA384_RSA_PKCS_PSS, CKM_ECDSA_SHA384, CKM_SHA384,
         CKG_MGF1_SHA384, "SHA384", 48},
        {CKM_SHA512_RSA_PKCS, CKM_SHA512_RSA_PKCS_PSS, CKM_ECDSA_SHA512, CKM_SHA512,
         CKG_MGF1_SHA512, "SHA512", 64},
};

static const unsigned char msg[] = "The quick brown fox jumps over the lazy dog, twice or more.";

static CK_RV
sign(CK_MECHANISM *m, const struct part_key *k, const unsigned char *in, size_t inlen,
     unsigned char *out, CK_ULONG *n)
{
	return th_oneshot(PART_OP_SIGN, m, k, in, inlen, out, n);
}

/* OpenSSL's own verification of a signature over `msg` with digest `md`. */
static int
evp_verify(EVP_PKEY *pk, const char *md, int pad, int salt, const unsigned char *sig, size_t siglen,
           const unsigned char *data, size_t dlen)
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pc = NULL;
	int ok;

	CU_ASSERT_FATAL(EVP_DigestVerifyInit_ex(c, &pc, md, NULL, NULL, pk, NULL) > 0);
	if (pad != 0) {
		CU_ASSERT_FATAL(EVP_PKEY_CTX_set_rsa_padding(pc, pad) > 0);
	}
	if (pad == RSA_PKCS1_PSS_PADDING) {
		CU_ASSERT_FATAL(EVP_PKEY_CTX_set_rsa_pss_saltlen(pc, salt) > 0);
	}
	ok = EVP_DigestVerify(c, sig, siglen, data, dlen) == 1;
	EVP_MD_CTX_free(c);
	return ok;
}

static size_t
evp_sign(EVP_PKEY *pk, const char *md, int pad, int salt, unsigned char *sig, size_t cap)
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pc = NULL;
	size_t len = cap;

	CU_ASSERT_FATAL(EVP_DigestSignInit_ex(c, &pc, md, NULL, NULL, pk, NULL) > 0);
	if (pad != 0) {
		CU_ASSERT_FATAL(EVP_PKEY_CTX_set_rsa_padding(pc, pad) > 0);
	}
	if (pad == RSA_PKCS1_PSS_PADDING) {
		CU_ASSERT_FATAL(EVP_PKEY_CTX_set_rsa_pss_saltlen(pc, salt) > 0);
	}
	CU_ASSERT_FATAL(EVP_DigestSign(c, sig, &len, msg, sizeof(msg)) > 0);
	EVP_MD_CTX_free(c);
	return len;
}

/* ---- RSA ------------------------------------------------------------------------------- */

static void
test_rsa_pkcs_md_vs_evp(void)
{
	unsigned char sig[256], theirs[256];
	size_t i;

	fixtures();
	for (i = 0; i < 5; i++) {
		CK_MECHANISM m = th_mech(hashes[i].pkcs, NULL, 0);
		CK_ULONG n = sizeof(sig);
		size_t tl;

		CU_ASSERT_EQUAL(sign(&m, rsa_priv, msg, sizeof(msg), sig, &n), CKR_OK);
		CU_ASSERT_EQUAL(n, 256);
		CU_ASSERT_TRUE(evp_verify(rsa, hashes[i].name, RSA_PKCS1_PADDING, 0, sig, n, msg,
		                          sizeof(msg)));
		/* PKCS #1 v1.5 is deterministic: the same bytes as OpenSSL's */
		tl = evp_sign(rsa, hashes[i].name, RSA_PKCS1_PADDING, 0, theirs, sizeof(theirs));
		CU_ASSERT_EQUAL(tl, n);
		CU_ASSERT_EQUAL(memcmp(sig, theirs, n), 0);
		CU_ASSERT_EQUAL(th_verify(&m, rsa_pub, msg, sizeof(msg), theirs, tl), CKR_OK);
	}
}

static void
test_rsa_pkcs_md_multipart(void)
{
	CK_MECHANISM m = th_mech(CKM_SHA256_RSA_PKCS, NULL, 0);
	unsigned char one[256], many[256];
	struct part_op *op = NULL;
	CK_ULONG n = sizeof(one), mn = 0;

	fixtures();
	CU_ASSERT_EQUAL_FATAL(sign(&m, rsa_priv, msg, sizeof(msg), one, &n), CKR_OK);
	CU_ASSERT_EQUAL_FATAL(part_mech_op_init(PART_OP_SIGN, &m, rsa_priv, &op), CKR_OK);
	CU_ASSERT_EQUAL(part_op_update(op, msg, 10, NULL, NULL), CKR_OK);
	CU_ASSERT_EQUAL(part_op_update(op, msg + 10, sizeof(msg) - 10, NULL, NULL), CKR_OK);
	CU_ASSERT_EQUAL(part_op_final(op, NULL, &mn), CKR_OK);
	CU_ASSERT_EQUAL(mn, 256);
	mn = 100;
	CU_ASSERT_EQUAL(part_op_final(op, many, &mn), CKR_BUFFER_TOO_SMALL);
	CU_ASSERT_EQUAL(mn, 256);
	CU_ASSERT_EQUAL(part_op_final(op, many, &mn), CKR_OK);
	CU_ASSERT_EQUAL(memcmp(one, many, 256), 0);
	part_op_free(op);
	CU_ASSERT_EQUAL_FATAL(part_mech_op_init(PART_OP_VERIFY, &m, rsa_pub, &op), CKR_OK);
	CU_ASSERT_EQUAL(part_op_update(op, msg, sizeof(msg), NULL, NULL), CKR_OK);
	CU_ASSERT_EQUAL(part_op_verify_final(op, many, 256), CKR_OK);
	part_op_free(op);
}

static void
test_rsa_pkcs_raw_digestinfo(void)
{
	/* RFC 8017 §9.2 note 1: the DER prefix of a SHA-256 DigestInfo */
	unsigned char di[19 + 32], sig[256], want[256];
	CK_MECHANISM raw = th_mech(CKM_RSA_PKCS, NULL, 0),
	             md = th_mech(CKM_SHA256_RSA_PKCS, NULL, 0);
	CK_ULONG n = sizeof(sig), wn = sizeof(want);
	unsigned int hl;

	fixtures();

	th_hex("3031300d060960864801650304020105000420", di, 19);
	CU_ASSERT_FATAL(EVP_Digest(msg, sizeof(msg), di + 19, &hl, EVP_sha256(), NULL));
	CU_ASSERT_EQUAL(sign(&raw, rsa_priv, di, sizeof(di), sig, &n), CKR_OK);
	CU_ASSERT_EQUAL(sign(&md, rsa_priv, msg, sizeof(msg), want, &wn), CKR_OK);
	CU_ASSERT_EQUAL(n, wn);
	CU_ASSERT_EQUAL(memcmp(sig, want, n), 0);
	CU_ASSERT_EQUAL(th_verify(&raw, rsa_pub, di, sizeof(di), sig, n), CKR_OK);
	di[30] ^= 1;
	CU_ASSERT_EQUAL(th_verify(&raw, rsa_pub, di, sizeof(di), sig, n), CKR_SIGNATURE_INVALID);
}

static void
test_rsa_x509_raw(void)
{
	CK_MECHANISM m = th_mech(CKM_RSA_X_509, NULL, 0);
	unsigned char in[20], sig[256], rec[256], ct[256], pt[256];
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, rsa, NULL);
	CK_ULONG n = sizeof(sig);
	size_t rl = sizeof(rec);

	fixtures();
	memset(in, 0x42, sizeof(in));
	CU_ASSERT_EQUAL(sign(&m, rsa_priv, in, sizeof(in), sig, &n), CKR_OK);
	CU_ASSERT_EQUAL(n, 256);
	/* OpenSSL recovers the zero-extended block */
	CU_ASSERT_FATAL(EVP_PKEY_verify_recover_init(c) > 0);
	CU_ASSERT_FATAL(EVP_PKEY_CTX_set_rsa_padding(c, RSA_NO_PADDING) > 0);
	CU_ASSERT_FATAL(EVP_PKEY_verify_recover(c, rec, &rl, sig, n) > 0);
	CU_ASSERT_EQUAL(rl, 256);
	CU_ASSERT_EQUAL(memcmp(rec + 236, in, 20), 0);
	CU_ASSERT_EQUAL(rec[0] | rec[100] | rec[235], 0);
	EVP_PKEY_CTX_free(c);
	CU_ASSERT_EQUAL(th_verify(&m, rsa_pub, in, sizeof(in), sig, n), CKR_OK);
	in[0] ^= 1;
	CU_ASSERT_EQUAL(th_verify(&m, rsa_pub, in, sizeof(in), sig, n), CKR_SIGNATURE_INVALID);
	/* raw encryption round trip */
	n = sizeof(ct);
	CU_ASSERT_EQUAL(th_oneshot(PART_OP_ENCRYPT, &m, rsa_pub, in, sizeof(in), ct, &n), CKR_OK);
	CU_ASSERT_EQUAL(n, 256);
	n = sizeof(pt);
	CU_ASSERT_EQUAL(th_oneshot(PART_OP_DECRYPT, &m, rsa_priv, ct, 256, pt, &n), CKR_OK);
	CU_ASSERT_EQUAL(n, 256);
	CU_ASSERT_EQUAL(memcmp(pt + 236, in, 20), 0);
}

static void
test_rsa_pss_vs_evp(void)
{
	unsigned char sig[256], theirs[256];
	size_t i;

	fixtures();
	for (i = 0; i < 5; i++) {
		CK_RSA_PKCS_PSS_PARAMS p = {hashes[i].hash, hashes[i].mgf, hashes[i].len};
		CK_MECHANISM m = th_mech(hashes[i].pss, &p, sizeof(p));
		CK_ULONG n = sizeof(sig);
		size_t tl;

		CU_ASSERT_EQUAL(sign(&m, rsa_priv, msg, sizeof(msg), sig, &n), CKR_OK);
		CU_ASSERT_EQUAL(n, 256);
		CU_ASSERT_TRUE(evp_verify(rsa, hashes[i].name, RSA_PKCS1_PSS_PADDING,
		                          (int)hashes[i].len, sig, n, msg, sizeof(msg)));
		tl = evp_sign(rsa, hashes[i].name, RSA_PKCS1_PSS_PADDING, (int)hashes[i].len,
		              theirs, sizeof(theirs));
		CU_ASSERT_EQUAL(th_verify(&m, rsa_pub, msg, sizeof(msg), theirs, tl), CKR_OK);
		theirs[10] ^= 1;
		CU_ASSERT_EQUAL(th_verify(&m, rsa_pub, msg, sizeof(msg), theirs, tl),
		                CKR_SIGNATURE_INVALID);
	}
}

static void
test_rsa_pss_raw_hash(void)
{
	CK_RSA_PKCS_PSS_PARAMS p = {CKM_SHA384, CKG_MGF1_SHA384, 0};
	CK_MECHANISM m = th_mech(CKM_RSA_PKCS_PSS, &p, sizeof(p));
	unsigned char h[48], sig[256];
	unsigned int hl;
	CK_ULONG n = sizeof(sig);

	fixtures();
	CU_ASSERT_FATAL(EVP_Digest(msg, sizeof(msg), h, &hl, EVP_sha384(), NULL));
	CU_ASSERT_EQUAL(sign(&m, rsa_priv, h, 48, sig, &n), CKR_OK);
	CU_ASSERT_TRUE(
	        evp_verify(rsa, "SHA384", RSA_PKCS1_PSS_PADDING, 0, sig, n, msg, sizeof(msg)));
	CU_ASSERT_EQUAL(th_verify(&m, rsa_pub, h, 48, sig, n), CKR_OK);
	n = sizeof(sig);
	CU_ASSERT_EQUAL(sign(&m, rsa_priv, h, 32, sig, &n), CKR_DATA_LEN_RANGE);
}

static void
test_rsa_oaep_vs_evp(void)
{
	static const struct {
		CK_MECHANISM_TYPE h;
		CK_ULONG mgf;
		const char *md, *mgfmd;
		const char *label;
	} v[] = {
	        {CKM_SHA_1, CKG_MGF1_SHA1, "SHA1", "SHA1", NULL},
	        {CKM_SHA256, CKG_MGF1_SHA256, "SHA256", "SHA256", NULL},
	        {CKM_SHA256, CKG_MGF1_SHA256, "SHA256", "SHA256", "a label"},
	        {CKM_SHA512, CKG_MGF1_SHA1, "SHA512", "SHA1", "mixed hashes"},
	};
	unsigned char in[40] = "attack at dawn", ct[256], pt[256];
	size_t i;

	fixtures();

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		CK_RSA_PKCS_OAEP_PARAMS p = {v[i].h, v[i].mgf, CKZ_DATA_SPECIFIED,
		                             (void *)v[i].label,
		                             v[i].label ? strlen(v[i].label) : 0};
		CK_MECHANISM m = th_mech(CKM_RSA_PKCS_OAEP, &p, sizeof(p));
		EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, rsa, NULL);
		CK_ULONG n = sizeof(ct);
		size_t pl = sizeof(pt);

		CU_ASSERT_EQUAL(th_oneshot(PART_OP_ENCRYPT, &m, rsa_pub, in, sizeof(in), ct, &n),
		                CKR_OK);
		CU_ASSERT_EQUAL(n, 256);
		CU_ASSERT_FATAL(EVP_PKEY_decrypt_init(c) > 0);
		CU_ASSERT_FATAL(EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_OAEP_PADDING) > 0);
		CU_ASSERT_FATAL(EVP_PKEY_CTX_set_rsa_oaep_md_name(c, v[i].md, NULL) > 0);
		CU_ASSERT_FATAL(EVP_PKEY_CTX_set_rsa_mgf1_md_name(c, v[i].mgfmd, NULL) > 0);
		if (v[i].label != NULL) {
			CU_ASSERT_FATAL(
			        EVP_PKEY_CTX_set0_rsa_oaep_label(c, OPENSSL_strdup(v[i].label),
			                                         (int)strlen(v[i].label)) > 0);
		}
		CU_ASSERT_EQUAL(EVP_PKEY_decrypt(c, pt, &pl, ct, n), 1);
		CU_ASSERT_EQUAL(pl, sizeof(in));
		CU_ASSERT_EQUAL(memcmp(pt, in, sizeof(in)), 0);
		/* and OpenSSL's ciphertext decrypts in the engine */
		CU_ASSERT_FATAL(EVP_PKEY_encrypt_init(c) > 0);
		CU_ASSERT_FATAL(EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_OAEP_PADDING) > 0);
		CU_ASSERT_FATAL(EVP_PKEY_CTX_set_rsa_oaep_md_name(c, v[i].md, NULL) > 0);
		CU_ASSERT_FATAL(EVP_PKEY_CTX_set_rsa_mgf1_md_name(c, v[i].mgfmd, NULL) > 0);
		if (v[i].label != NULL) {
			CU_ASSERT_FATAL(
			        EVP_PKEY_CTX_set0_rsa_oaep_label(c, OPENSSL_strdup(v[i].label),
			                                         (int)strlen(v[i].label)) > 0);
		}
		pl = sizeof(ct);
		CU_ASSERT_FATAL(EVP_PKEY_encrypt(c, ct, &pl, in, 14) > 0);
		n = sizeof(pt);
		CU_ASSERT_EQUAL(th_oneshot(PART_OP_DECRYPT, &m, rsa_priv, ct, pl, pt, &n), CKR_OK);
		CU_ASSERT_EQUAL(n, 14);
		CU_ASSERT_EQUAL(memcmp(pt, in, 14), 0);
		EVP_PKEY_CTX_free(c);
	}
}

static void
test_rsa_pkcs_encrypt_vs_evp(void)
{
	CK_MECHANISM m = th_mech(CKM_RSA_PKCS, NULL, 0);
	unsigned char in[245], ct[256], pt[256];
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, rsa, NULL);
	CK_ULONG n = sizeof(ct);
	size_t pl = sizeof(pt);

	fixtures();
	CU_ASSERT_FATAL(RAND_bytes(in, sizeof(in)) == 1);
	/* k - 11 = 245 is the largest input */
	CU_ASSERT_EQUAL(th_oneshot(PART_OP_ENCRYPT, &m, rsa_pub, in, 245, ct, &n), CKR_OK);
	CU_ASSERT_FATAL(EVP_PKEY_decrypt_init(c) > 0);
	CU_ASSERT_FATAL(EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PADDING) > 0);
	CU_ASSERT_EQUAL(EVP_PKEY_decrypt(c, pt, &pl, ct, n), 1);
	CU_ASSERT_EQUAL(pl, 245);
	CU_ASSERT_EQUAL(memcmp(pt, in, 245), 0);
	n = sizeof(pt);
	CU_ASSERT_EQUAL(th_oneshot(PART_OP_DECRYPT, &m, rsa_priv, ct, 256, pt, &n), CKR_OK);
	CU_ASSERT_EQUAL(n, 245);
	EVP_PKEY_CTX_free(c);
}

static void
test_rsa_sign_verify_recover(void)
{
	CK_MECHANISM pk = th_mech(CKM_RSA_PKCS, NULL, 0), x = th_mech(CKM_RSA_X_509, NULL, 0);
	unsigned char in[32] = "recover me", sig[256], out[256];
	struct part_op *op = NULL;
	CK_ULONG n = sizeof(sig), on = 0;

	fixtures();
	CU_ASSERT_EQUAL(th_oneshot(PART_OP_SIGN_RECOVER, &pk, rsa_priv, in, 32, sig, &n), CKR_OK);
	CU_ASSERT_EQUAL_FATAL(part_mech_op_init(PART_OP_VERIFY_RECOVER, &pk, rsa_pub, &op), CKR_OK);
	CU_ASSERT_EQUAL(part_op_oneshot(op, sig, n, NULL, &on), CKR_OK);
	CU_ASSERT_EQUAL(on, 32); /* exact: computed and kept */
	CU_ASSERT_EQUAL(part_op_oneshot(op, sig, n, out, &on), CKR_OK);
	CU_ASSERT_EQUAL(memcmp(out, in, 32), 0);
	part_op_free(op);
	sig[5] ^= 1;
	on = sizeof(out);
	CU_ASSERT_EQUAL(th_oneshot(PART_OP_VERIFY_RECOVER, &pk, rsa_pub, sig, n, out, &on),
	                CKR_SIGNATURE_INVALID);
	on = sizeof(out);
	CU_ASSERT_EQUAL(th_oneshot(PART_OP_VERIFY_RECOVER, &pk, rsa_pub, sig, 255, out, &on),
	                CKR_SIGNATURE_LEN_RANGE);
	n = sizeof(sig);
	CU_ASSERT_EQUAL(th_oneshot(PART_OP_SIGN_RECOVER, &x, rsa_priv, in, 32, sig, &n), CKR_OK);
	on = sizeof(out);
	CU_ASSERT_EQUAL(th_oneshot(PART_OP_VERIFY_RECOVER, &x, rsa_pub, sig, n, out, &on), CKR_OK);
	CU_ASSERT_EQUAL(on, 256);
	CU_ASSERT_EQUAL(memcmp(out + 224, in, 32), 0);
}

static void
test_rsa_size_query_signature_verifies(void)
{
	CK_RSA_PKCS_PSS_PARAMS p = {CKM_SHA256, CKG_MGF1_SHA256, 32};
	CK_MECHANISM m = th_mech(CKM_SHA256_RSA_PKCS_PSS, &p, sizeof(p));
	unsigned char sig[256];
	struct part_op *op = NULL;
	CK_ULONG n = 0;

	fixtures();
	CU_ASSERT_EQUAL_FATAL(part_mech_op_init(PART_OP_SIGN, &m, rsa_priv, &op), CKR_OK);
	CU_ASSERT_EQUAL(part_op_oneshot(op, msg, sizeof(msg), NULL, &n), CKR_OK);
	CU_ASSERT_EQUAL(n, 256);
	n = 255;
	CU_ASSERT_EQUAL(part_op_oneshot(op, msg, sizeof(msg), sig, &n), CKR_BUFFER_TOO_SMALL);
	CU_ASSERT_EQUAL(n, 256);
	CU_ASSERT_EQUAL(part_op_oneshot(op, msg, sizeof(msg), sig, &n), CKR_OK);
	part_op_free(op);
	CU_ASSERT_TRUE(
	        evp_verify(rsa, "SHA256", RSA_PKCS1_PSS_PADDING, 32, sig, n, msg, sizeof(msg)));
}

static CK_RV
init_rv(enum part_op_kind kind, CK_MECHANISM_TYPE t, void *p, CK_ULONG plen,
        const struct part_key *k)
{
	CK_MECHANISM m = th_mech(t, p, plen);
	struct part_op *op = NULL;
	CK_RV rv = part_mech_op_init(kind, &m, k, &op);

	part_op_free(op);
	return rv;
}

static void
test_refuse_pss_params(void)
{
	CK_RSA_PKCS_PSS_PARAMS p = {CKM_SHA384, CKG_MGF1_SHA256, 32};

	fixtures();
	/* hashAlg must be the mechanism's hash */
	CU_ASSERT_EQUAL(init_rv(PART_OP_SIGN, CKM_SHA256_RSA_PKCS_PSS, &p, sizeof(p), rsa_priv),
	                CKR_MECHANISM_PARAM_INVALID);
	p.hashAlg = CKM_SHA256, p.mgf = 77;
	CU_ASSERT_EQUAL(init_rv(PART_OP_SIGN, CKM_SHA256_RSA_PKCS_PSS, &p, sizeof(p), rsa_priv),
	                CKR_MECHANISM_PARAM_INVALID);
	p.mgf = CKG_MGF1_SHA256, p.sLen = 256 - 32 - 1; /* emLen < hLen + sLen + 2 */
	CU_ASSERT_EQUAL(init_rv(PART_OP_SIGN, CKM_SHA256_RSA_PKCS_PSS, &p, sizeof(p), rsa_priv),
	                CKR_MECHANISM_PARAM_INVALID);
	p.sLen = 256 - 32 - 2;
	CU_ASSERT_EQUAL(init_rv(PART_OP_SIGN, CKM_SHA256_RSA_PKCS_PSS, &p, sizeof(p), rsa_priv),
	                CKR_OK);
	CU_ASSERT_EQUAL(init_rv(PART_OP_SIGN, CKM_SHA256_RSA_PKCS_PSS, NULL, 0, rsa_priv),
	                CKR_MECHANISM_PARAM_INVALID);
	p.hashAlg = CKM_MD5;
	CU_ASSERT_EQUAL(init_rv(PART_OP_SIGN, CKM_RSA_PKCS_PSS, &p, sizeof(p), rsa_priv),
	                CKR_MECHANISM_PARAM_INVALID);
}

static void
test_refuse_oaep_params(void)
{
	CK_RSA_PKCS_OAEP_PARAMS p = {CKM_MD5, CKG_MGF1_SHA1, CKZ_DATA_SPECIFIED, NULL, 0};

	fixtures();
	CU_ASSERT_EQUAL(init_rv(PART_OP_ENCRYPT, CKM_RSA_PKCS_OAEP, &p, sizeof(p), rsa_pub),
	                CKR_MECHANISM_PARAM_INVALID);
	p.hashAlg = CKM_SHA256, p.source = 2;
	CU_ASSERT_EQUAL(init_rv(PART_OP_ENCRYPT, CKM_RSA_PKCS_OAEP, &p, sizeof(p), rsa_pub),
	                CKR_MECHANISM_PARAM_INVALID);
	p.source = CKZ_DATA_SPECIFIED, p.ulSourceDataLen = 4;
	CU_ASSERT_EQUAL(init_rv(PART_OP_ENCRYPT, CKM_RSA_PKCS_OAEP, &p, sizeof(p), rsa_pub),
	                CKR_MECHANISM_PARAM_INVALID);
	CU_ASSERT_EQUAL(init_rv(PART_OP_ENCRYPT, CKM_RSA_PKCS_OAEP, NULL, 0, rsa_pub),
	                CKR_MECHANISM_PARAM_INVALID);
	p.ulSourceDataLen = 0, p.source = 0; /* no label, source 0: tolerated */
	CU_ASSERT_EQUAL(init_rv(PART_OP_ENCRYPT, CKM_RSA_PKCS_OAEP, &p, sizeof(p), rsa_pub),
	                CKR_OK);
}

static void
test_refuse_rsa_lengths(void)
{
	CK_MECHANISM pk = th_mech(CKM_RSA_PKCS, NULL, 0), x = th_mech(CKM_RSA_X_509, NULL, 0);
	CK_RSA_PKCS_OAEP_PARAMS p = {CKM_SHA256, CKG_MGF1_SHA256, CKZ_DATA_SPECIFIED, NULL, 0};
	CK_MECHANISM oaep = th_mech(CKM_RSA_PKCS_OAEP, &p, sizeof(p));
	unsigned char in[257], out[256];
	CK_ULONG n = sizeof(out);

	fixtures();
	memset(in, 0xff, sizeof(in));
	CU_ASSERT_EQUAL(th_oneshot(PART_OP_ENCRYPT, &pk, rsa_pub, in, 246, out, &n),
	                CKR_DATA_LEN_RANGE);
	n = sizeof(out);
	CU_ASSERT_EQUAL(sign(&pk, rsa_priv, in, 246, out, &n), CKR_DATA_LEN_RANGE);
	n = sizeof(out);
	CU_ASSERT_EQUAL(th_oneshot(PART_OP_ENCRYPT, &oaep, rsa_pub, in, 256 - 64 - 1, out, &n),
	                CKR_DATA_LEN_RANGE);
	n = sizeof(out);
	CU_ASSERT_EQUAL(th_oneshot(PART_OP_ENCRYPT, &x, rsa_pub, in, 257, out, &n),
	                CKR_DATA_LEN_RANGE);
	n = sizeof(out);
	/* 0xff..ff is not below the modulus */
	CU_ASSERT_EQUAL(th_oneshot(PART_OP_ENCRYPT, &x, rsa_pub, in, 256, out, &n),
	                CKR_DATA_INVALID);
	n = sizeof(out);
	CU_ASSERT_EQUAL(th_oneshot(PART_OP_DECRYPT, &pk, rsa_priv, in, 255, out, &n),
	                CKR_ENCRYPTED_DATA_LEN_RANGE);
}

static void
test_refuse_rsa_decrypt_garbage(void)
{
	CK_MECHANISM pk = th_mech(CKM_RSA_PKCS, NULL, 0);
	CK_RSA_PKCS_OAEP_PARAMS p = {CKM_SHA256, CKG_MGF1_SHA256, CKZ_DATA_SPECIFIED, NULL, 0};
	CK_MECHANISM oaep = th_mech(CKM_RSA_PKCS_OAEP, &p, sizeof(p));
	unsigned char in[256], out[256];
	CK_ULONG n = sizeof(out);

	fixtures();
	memset(in, 0x01, sizeof(in));
	CU_ASSERT_EQUAL(th_oneshot(PART_OP_DECRYPT, &pk, rsa_priv, in, 256, out, &n),
	                CKR_ENCRYPTED_DATA_INVALID);
	n = sizeof(out);
	CU_ASSERT_EQUAL(th_oneshot(PART_OP_DECRYPT, &oaep, rsa_priv, in, 256, out, &n),
	                CKR_ENCRYPTED_DATA_INVALID);
}

static void
test_refuse_rsa_signature(void)
{
	CK_MECHANISM m = th_mech(CKM_SHA256_RSA_PKCS, NULL, 0);
	unsigned char sig[257];
	CK_ULONG n = sizeof(sig);

	fixtures();
	CU_ASSERT_EQUAL_FATAL(sign(&m, rsa_priv, msg, sizeof(msg), sig, &n), CKR_OK);
	CU_ASSERT_EQUAL(th_verify(&m, rsa_pub, msg, sizeof(msg), sig, 255),
	                CKR_SIGNATURE_LEN_RANGE);
	CU_ASSERT_EQUAL(th_verify(&m, rsa_pub, msg, sizeof(msg), sig, 257),
	                CKR_SIGNATURE_LEN_RANGE);
	CU_ASSERT_EQUAL(th_verify(&m, rsa_pub, msg, sizeof(msg) - 1, sig, 256),
	                CKR_SIGNATURE_INVALID);
	sig[255] ^= 1;
	CU_ASSERT_EQUAL(th_verify(&m, rsa_pub, msg, sizeof(msg), sig, 256), CKR_SIGNATURE_INVALID);
}

static void
test_refuse_rsa_key_class_and_type(void)
{
	fixtures();
	CU_ASSERT_EQUAL(init_rv(PART_OP_SIGN, CKM_SHA256_RSA_PKCS, NULL, 0, rsa_pub),
	                CKR_KEY_TYPE_INCONSISTENT);
	CU_ASSERT_EQUAL(init_rv(PART_OP_VERIFY, CKM_SHA256_RSA_PKCS, NULL, 0, rsa_priv),
	                CKR_KEY_TYPE_INCONSISTENT);
	CU_ASSERT_EQUAL(init_rv(PART_OP_DECRYPT, CKM_RSA_PKCS, NULL, 0, rsa_pub),
	                CKR_KEY_TYPE_INCONSISTENT);
	CU_ASSERT_EQUAL(init_rv(PART_OP_SIGN, CKM_SHA256_RSA_PKCS, NULL, 0, ec_priv[0]),
	                CKR_KEY_TYPE_INCONSISTENT);
	CU_ASSERT_EQUAL(init_rv(PART_OP_SIGN, CKM_ECDSA, NULL, 0, rsa_priv),
	                CKR_KEY_TYPE_INCONSISTENT);
	CU_ASSERT_EQUAL(init_rv(PART_OP_SIGN, CKM_EDDSA, NULL, 0, ec_priv[0]),
	                CKR_KEY_TYPE_INCONSISTENT);
	CU_ASSERT_EQUAL(init_rv(PART_OP_SIGN, CKM_RSA_PKCS_OAEP, NULL, 0, rsa_priv),
	                CKR_MECHANISM_INVALID);
}

static void
test_refuse_rsa_key_size(void)
{
	struct part_key *priv = NULL, *pub = NULL;
	EVP_PKEY *small = th_ossl_pair("RSA", NULL, 1024, &priv, &pub);

	fixtures();
	CU_ASSERT_EQUAL(init_rv(PART_OP_SIGN, CKM_SHA256_RSA_PKCS, NULL, 0, priv),
	                CKR_KEY_SIZE_RANGE);
	CU_ASSERT_EQUAL(init_rv(PART_OP_ENCRYPT, CKM_RSA_PKCS, NULL, 0, pub), CKR_KEY_SIZE_RANGE);
	part_key_free(priv);
	part_key_free(pub);
	EVP_PKEY_free(small);
}

static void
test_refuse_rsa_multipart_raw(void)
{
	CK_MECHANISM m = th_mech(CKM_RSA_PKCS, NULL, 0);
	struct part_op *op = NULL;

	fixtures();
	CU_ASSERT_EQUAL_FATAL(part_mech_op_init(PART_OP_SIGN, &m, rsa_priv, &op), CKR_OK);
	CU_ASSERT_EQUAL(part_op_update(op, msg, 10, NULL, NULL), CKR_FUNCTION_NOT_SUPPORTED);
	part_op_free(op);
}

/* ---- ECDSA ----------------------------------------------------------------------------- */

static size_t
raw_to_der(const unsigned char *raw, size_t n, unsigned char *der)
{
	ECDSA_SIG *s = ECDSA_SIG_new();
	unsigned char *p = der;
	int len;

	CU_ASSERT_FATAL(
	        ECDSA_SIG_set0(s, BN_bin2bn(raw, (int)n, NULL), BN_bin2bn(raw + n, (int)n, NULL)));
	len = i2d_ECDSA_SIG(s, &p);
	ECDSA_SIG_free(s);
	return (size_t)len;
}

static void
der_to_raw(const unsigned char *der, size_t len, size_t n, unsigned char *raw)
{
	const unsigned char *p = der;
	ECDSA_SIG *s = d2i_ECDSA_SIG(NULL, &p, (long)len);
	const BIGNUM *r, *sv;

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	ECDSA_SIG_get0(s, &r, &sv);
	BN_bn2binpad(r, raw, (int)n);
	BN_bn2binpad(sv, raw + n, (int)n);
	ECDSA_SIG_free(s);
}

static void
test_ecdsa_md_vs_evp_all_curves(void)
{
	unsigned char sig[132], der[160], theirs[132];
	size_t c, i;

	fixtures();
	for (c = 0; c < 3; c++) {
		for (i = 0; i < 5; i++) {
			CK_MECHANISM m = th_mech(hashes[i].ecdsa, NULL, 0);
			CK_ULONG n = sizeof(sig);
			size_t dl;

			CU_ASSERT_EQUAL(sign(&m, ec_priv[c], msg, sizeof(msg), sig, &n), CKR_OK);
			CU_ASSERT_EQUAL(n, 2 * flen[c]);
			dl = raw_to_der(sig, flen[c], der);
			CU_ASSERT_TRUE(
			        evp_verify(ec[c], hashes[i].name, 0, 0, der, dl, msg, sizeof(msg)));
			dl = evp_sign(ec[c], hashes[i].name, 0, 0, der, sizeof(der));
			der_to_raw(der, dl, flen[c], theirs);
			CU_ASSERT_EQUAL(
			        th_verify(&m, ec_pub[c], msg, sizeof(msg), theirs, 2 * flen[c]),
			        CKR_OK);
		}
	}
}

static void
test_ecdsa_raw_hash_and_truncation(void)
{
	CK_MECHANISM raw = th_mech(CKM_ECDSA, NULL, 0), md = th_mech(CKM_ECDSA_SHA256, NULL, 0);
	unsigned char h[64], sig[64], der[80];
	unsigned int hl;
	CK_ULONG n = sizeof(sig);
	size_t dl;

	fixtures();
	CU_ASSERT_FATAL(EVP_Digest(msg, sizeof(msg), h, &hl, EVP_sha256(), NULL));
	CU_ASSERT_EQUAL(sign(&raw, ec_priv[0], h, 32, sig, &n), CKR_OK);
	CU_ASSERT_EQUAL(n, 64);
	/* a signature of the hash is a signature of the message under ECDSA_SHA256 */
	CU_ASSERT_EQUAL(th_verify(&md, ec_pub[0], msg, sizeof(msg), sig, 64), CKR_OK);
	dl = raw_to_der(sig, 32, der);
	CU_ASSERT_TRUE(evp_verify(ec[0], "SHA256", 0, 0, der, dl, msg, sizeof(msg)));
	/* X9.62: a 64-byte input on P-256 is truncated to its leftmost 256 bits */
	CU_ASSERT_FATAL(EVP_Digest(msg, sizeof(msg), h, &hl, EVP_sha512(), NULL));
	n = sizeof(sig);
	CU_ASSERT_EQUAL(sign(&raw, ec_priv[0], h, 64, sig, &n), CKR_OK);
	CU_ASSERT_EQUAL(th_verify(&raw, ec_pub[0], h, 32, sig, 64), CKR_OK);
}

static void
test_ecdsa_multipart(void)
{
	CK_MECHANISM m = th_mech(CKM_ECDSA_SHA384, NULL, 0);
	unsigned char sig[96];
	struct part_op *op = NULL;
	CK_ULONG n = sizeof(sig);

	fixtures();
	CU_ASSERT_EQUAL_FATAL(part_mech_op_init(PART_OP_SIGN, &m, ec_priv[1], &op), CKR_OK);
	CU_ASSERT_EQUAL(part_op_update(op, msg, 3, NULL, NULL), CKR_OK);
	CU_ASSERT_EQUAL(part_op_update(op, msg + 3, sizeof(msg) - 3, NULL, NULL), CKR_OK);
	CU_ASSERT_EQUAL(part_op_final(op, sig, &n), CKR_OK);
	CU_ASSERT_EQUAL(n, 96);
	part_op_free(op);
	CU_ASSERT_EQUAL(th_verify(&m, ec_pub[1], msg, sizeof(msg), sig, 96), CKR_OK);
}

static void
test_refuse_ecdsa_signature(void)
{
	CK_MECHANISM m = th_mech(CKM_ECDSA_SHA256, NULL, 0);
	unsigned char sig[64];
	CK_ULONG n = sizeof(sig);

	fixtures();
	CU_ASSERT_EQUAL_FATAL(sign(&m, ec_priv[0], msg, sizeof(msg), sig, &n), CKR_OK);
	CU_ASSERT_EQUAL(th_verify(&m, ec_pub[0], msg, sizeof(msg), sig, 63),
	                CKR_SIGNATURE_LEN_RANGE);
	CU_ASSERT_EQUAL(th_verify(&m, ec_pub[1], msg, sizeof(msg), sig, 64),
	                CKR_SIGNATURE_LEN_RANGE);
	sig[40] ^= 4;
	CU_ASSERT_EQUAL(th_verify(&m, ec_pub[0], msg, sizeof(msg), sig, 64), CKR_SIGNATURE_INVALID);
	memset(sig, 0, 64); /* r = s = 0 */
	CU_ASSERT_EQUAL(th_verify(&m, ec_pub[0], msg, sizeof(msg), sig, 64), CKR_SIGNATURE_INVALID);
}

static void
test_refuse_ecdsa_parameter(void)
{
	CK_ULONG x = 1;

	fixtures();
	CU_ASSERT_EQUAL(init_rv(PART_OP_SIGN, CKM_ECDSA, &x, sizeof(x), ec_priv[0]),
	                CKR_MECHANISM_PARAM_INVALID);
}

/* ---- EdDSA ----------------------------------------------------------------------------- */

static void
test_eddsa_rfc8032_test1(void)
{
	static const unsigned char oid[] = {0x06, 0x03, 0x2b, 0x65, 0x70};
	unsigned char sk[32], pt[34] = {0x04, 0x20}, want[64], sig[64];
	CK_ATTRIBUTE a[] = {{CKA_EC_PARAMS, (void *)oid, sizeof(oid)}, {CKA_VALUE, sk, 32}};
	CK_ATTRIBUTE b[] = {{CKA_EC_PARAMS, (void *)oid, sizeof(oid)}, {CKA_EC_POINT, pt, 34}};
	CK_MECHANISM m = th_mech(CKM_EDDSA, NULL, 0);
	struct part_key *priv = NULL, *pub = NULL;
	CK_ULONG n = sizeof(sig);

	fixtures();
	th_hex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60", sk, 32);
	th_hex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", pt + 2, 32);
	th_hex("e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
	       "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
	       want, 64);
	CU_ASSERT_EQUAL_FATAL(part_key_from_attrs(CKO_PRIVATE_KEY, CKK_EC_EDWARDS, a, 2, &priv),
	                      CKR_OK);
	CU_ASSERT_EQUAL_FATAL(part_key_from_attrs(CKO_PUBLIC_KEY, CKK_EC_EDWARDS, b, 2, &pub),
	                      CKR_OK);
	CU_ASSERT_EQUAL(sign(&m, priv, (const unsigned char *)"", 0, sig, &n), CKR_OK);
	CU_ASSERT_EQUAL(n, 64);
	CU_ASSERT_EQUAL(memcmp(sig, want, 64), 0);
	CU_ASSERT_EQUAL(th_verify(&m, pub, (const unsigned char *)"", 0, sig, 64), CKR_OK);
	part_key_free(priv);
	part_key_free(pub);
}

static void
test_eddsa_vs_evp(void)
{
	CK_MECHANISM m = th_mech(CKM_EDDSA, NULL, 0);
	unsigned char sig[64], theirs[64];
	CK_ULONG n = sizeof(sig);
	size_t tl;

	fixtures();
	CU_ASSERT_EQUAL(sign(&m, ed_priv, msg, sizeof(msg), sig, &n), CKR_OK);
	CU_ASSERT_TRUE(evp_verify(ed, NULL, 0, 0, sig, n, msg, sizeof(msg)));
	tl = evp_sign(ed, NULL, 0, 0, theirs, sizeof(theirs));
	CU_ASSERT_EQUAL(tl, 64);
	CU_ASSERT_EQUAL(memcmp(sig, theirs, 64), 0); /* deterministic */
	CU_ASSERT_EQUAL(th_verify(&m, ed_pub, msg, sizeof(msg), theirs, 64), CKR_OK);
	CU_ASSERT_EQUAL(th_verify(&m, ed_pub, msg, sizeof(msg), theirs, 63),
	                CKR_SIGNATURE_LEN_RANGE);
	theirs[0] ^= 1;
	CU_ASSERT_EQUAL(th_verify(&m, ed_pub, msg, sizeof(msg), theirs, 64), CKR_SIGNATURE_INVALID);
}

static void
test_refuse_eddsa_params(void)
{
	struct {
		CK_BBOOL phFlag;
		CK_ULONG ulContextDataLen;
		CK_BYTE_PTR pContextData;
	} p = {CK_TRUE, 0, NULL};

	fixtures();
	CU_ASSERT_EQUAL(init_rv(PART_OP_SIGN, CKM_EDDSA, &p, sizeof(p), ed_priv),
	                CKR_MECHANISM_PARAM_INVALID);
	p.phFlag = CK_FALSE, p.ulContextDataLen = 3, p.pContextData = (CK_BYTE_PTR) "abc";
	CU_ASSERT_EQUAL(init_rv(PART_OP_SIGN, CKM_EDDSA, &p, sizeof(p), ed_priv),
	                CKR_MECHANISM_PARAM_INVALID);
	p.ulContextDataLen = 0, p.pContextData = NULL;
	CU_ASSERT_EQUAL(init_rv(PART_OP_SIGN, CKM_EDDSA, &p, sizeof(p), ed_priv), CKR_OK);
}

void
test_register(void)
{
	static const struct test_case cases[] = {
	        {"rsa_pkcs_md_vs_evp", test_rsa_pkcs_md_vs_evp},
	        {"rsa_pkcs_md_multipart", test_rsa_pkcs_md_multipart},
	        {"rsa_pkcs_raw_digestinfo", test_rsa_pkcs_raw_digestinfo},
	        {"rsa_x509_raw", test_rsa_x509_raw},
	        {"rsa_pss_vs_evp", test_rsa_pss_vs_evp},
	        {"rsa_pss_raw_hash", test_rsa_pss_raw_hash},
	        {"rsa_oaep_vs_evp", test_rsa_oaep_vs_evp},
	        {"rsa_pkcs_encrypt_vs_evp", test_rsa_pkcs_encrypt_vs_evp},
	        {"rsa_sign_verify_recover", test_rsa_sign_verify_recover},
	        {"rsa_size_query_signature_verifies", test_rsa_size_query_signature_verifies},
	        {"refuse_pss_params", test_refuse_pss_params},
	        {"refuse_oaep_params", test_refuse_oaep_params},
	        {"refuse_rsa_lengths", test_refuse_rsa_lengths},
	        {"refuse_rsa_decrypt_garbage", test_refuse_rsa_decrypt_garbage},
	        {"refuse_rsa_signature", test_refuse_rsa_signature},
	        {"refuse_rsa_key_class_and_type", test_refuse_rsa_key_class_and_type},
	        {"refuse_rsa_key_size", test_refuse_rsa_key_size},
	        {"refuse_rsa_multipart_raw", test_refuse_rsa_multipart_raw},
	        {"ecdsa_md_vs_evp_all_curves", test_ecdsa_md_vs_evp_all_curves},
	        {"ecdsa_raw_hash_and_truncation", test_ecdsa_raw_hash_and_truncation},
	        {"ecdsa_multipart", test_ecdsa_multipart},
	        {"refuse_ecdsa_signature", test_refuse_ecdsa_signature},
	        {"refuse_ecdsa_parameter", test_refuse_ecdsa_parameter},
	        {"eddsa_rfc8032_test1", test_eddsa_rfc8032_test1},
	        {"eddsa_vs_evp", test_eddsa_vs_evp},
	        {"refuse_eddsa_params", test_refuse_eddsa_params},
	        {NULL, NULL},
	};

	test_suite_add("hsm-partitions/crypto/pkey", NULL, suite_cleanup, cases);
}
