/*
 * tests/hsm-partitions/crypto/test_op.c — operations and the symmetric mechanisms (op.c):
 * AES ECB/CBC/CBC_PAD/CTR/GCM/KW as ciphers, HMAC, CMAC, digests, against published
 * vectors and against OpenSSL's own EVP; the size convention; every refusal's CK_RV.
 */
#include "tests/lib/test.h"
#include "tests/hsm-partitions/crypto/crypto_test.h"

#include <string.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

static const char *K128 = "2b7e151628aed2a6abf7158809cf4f3c";
/* SP 800-38A F.1-F.5 plaintext, four blocks */
static const char *P4 = "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"
                        "30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710";

static struct part_key *
aes(const char *hex)
{
	unsigned char k[32];

	return th_secret(CKK_AES, k, th_hex(hex, k, sizeof(k)));
}

/* Encrypts with plain EVP, for comparison. */
static int
evp_crypt(const char *cipher, const unsigned char *key, const unsigned char *iv, int enc, int pad,
          const unsigned char *in, int inlen, unsigned char *out)
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int n = 0, f = 0;

	CU_ASSERT_FATAL(EVP_CipherInit_ex2(c, EVP_get_cipherbyname(cipher), key, iv, enc, NULL));
	EVP_CIPHER_CTX_set_padding(c, pad);
	CU_ASSERT_FATAL(EVP_CipherUpdate(c, out, &n, in, inlen));
	CU_ASSERT_FATAL(EVP_CipherFinal_ex(c, out + n, &f));
	EVP_CIPHER_CTX_free(c);
	return n + f;
}

/* ---- AES known answers ----------------------------------------------------------------- */

static void
test_aes_ecb_fips197(void)
{
	struct part_key *k = aes("000102030405060708090a0b0c0d0e0f");
	CK_MECHANISM m = th_mech(CKM_AES_ECB, NULL, 0);
	unsigned char in[16], out[16], want[16], back[16];
	CK_ULONG n = sizeof(out);

	th_hex("00112233445566778899aabbccddeeff", in, 16);
	th_hex("69c4e0d86a7b0430d8cdb78070b4c55a", want, 16);
	CU_ASSERT_EQUAL(th_oneshot(PART_OP_ENCRYPT, &m, k, in, 16, out, &n), CKR_OK);
	CU_ASSERT_EQUAL(n, 16);
	CU_ASSERT_EQUAL(memcmp(out, want, 16), 0);
	n = sizeof(back);
	CU_ASSERT_EQUAL(th_oneshot(PART_OP_DECRYPT, &m, k, out, 16, back, &n), CKR_OK);
	CU_ASSERT_EQUAL(memcmp(back, in, 16), 0);
	part_key_free(k);
}

static void
test_aes_cbc_sp800_38a(void)
{
	struct part_key *k = aes(K128);
	unsigned char iv[16], in[64], out[64], want[64];
	CK_MECHANISM m;
	CK_ULONG n = sizeof(out);

	th_hex("000102030405060708090a0b0c0d0e0f", iv, 16);
	m = th_mech(CKM_AES_CBC, iv, 16);
	th_hex(P4, in, 64);
	th_hex("7649abac8119b246cee98e9b12e9197d5086cb9b507219ee95db113a917678b2"
	       "73bed6b8e3c1743b7116e69e222295163ff1caa1681fac09120eca307586e1a7",
	       want, 64);
	CU_ASSERT_EQUAL(th_oneshot(PART_OP_ENCRYPT, &m, k, in, 64, out, &n), CKR_OK);
	CU_ASSERT_EQUAL(n, 64);
	CU_ASSERT_EQUAL(memcmp(out, want, 64), 0);
	part_key_free(k);
}

static void
test_aes_ctr_sp800_38a(void)
{
	struct part_key *k = aes(K128);
	CK_AES_CTR_PARAMS p = {128, {0}};
	unsigned char in[64], out[64], want[64];
	CK_MECHANISM m = th_mech(CKM_AES_CTR, &p, sizeof(p));
	CK_ULONG n = sizeof(out);

	th_hex("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff", p.cb, 16);
	th_hex(P4, in, 64);
	th_hex("874d6191b620e3261bef6864990db6ce9806f66b7970fdff8617187bb9fffdff"
	       "5ae4df3edbd5d35e5b4f09020db03eab1e031dda2fbe03d1792170a0f3009cee",
	       want, 64);
	CU_ASSERT_EQUAL(th_oneshot(PART_OP_ENCRYPT, &m, k, in, 64, out, &n), CKR_OK);
	CU_ASSERT_EQUAL(n, 64);
	CU_ASSERT_EQUAL(memcmp(out, want, 64), 0);
	part_key_free(k);
}

static const char *GCM_K = "feffe9928665731c6d6a8f9467308308";
static const char *GCM_P = "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
                           "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255";
static const char *GCM_C = "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e"
                           "21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091473f5985";

/* McGrew & Viega, "The Galois/Counter Mode of Operation", test case 3 */
static void
test_aes_gcm_case3(void)
{
	struct part_key *k = aes(GCM_K);
	unsigned char iv[12], in[64], out[80], want[80], back[64];
	CK_GCM_PARAMS p = {iv, 12, 96, NULL, 0, 128};
	CK_MECHANISM m = th_mech(CKM_AES_GCM, &p, sizeof(p));
	CK_ULONG n = sizeof(out);

	th_hex("cafebabefacedbaddecaf888", iv, 12);
	th_hex(GCM_P, in, 64);
	th_hex(GCM_C, want, 64);
	th_hex("4d5c2af327cd64a62cf35abd2ba6fab4", want + 64, 16);
	CU_ASSERT_EQUAL(th_oneshot(PART_OP_ENCRYPT, &m, k, in, 64, out, &n), CKR_OK);
	CU_ASSERT_EQUAL(n, 80);
	CU_ASSERT_EQUAL(memcmp(out, want, 80), 0);
	n = sizeof(back);
	CU_ASSERT_EQUAL(th_oneshot(PART_OP_DECRYPT, &m, k, out, 80, back, &n), CKR_OK);
	CU_ASSERT_EQUAL(n, 64);
	CU_ASSERT_EQUAL(memcmp(back, in, 64), 0);
	part_key_free(k);
}

/* test case 4: 60-byte plaintext and 20 bytes of AAD */
static void
test_aes_gcm_case4_aad(void)
{
	struct part_key *k = aes(GCM_K);
	unsigned char iv[12], aad[20], in[64], out[80], want[80], back[64];
	CK_GCM_PARAMS p = {iv, 12, 96, aad, 20, 128};
	CK_MECHANISM m = th_mech(CKM_AES_GCM, &p, sizeof(p));
	CK_ULONG n = sizeof(out);

	th_hex("cafebabefacedbaddecaf888", iv, 12);
	th_hex("feedfacedeadbeeffeedfacedeadbeefabaddad2", aad, 20);
	th_hex(GCM_P, in, 64);
	th_hex(GCM_C, want, 64);
	th_hex("5bc94fbc3221a5db94fae95ae7121a47", want + 60, 16);
	CU_ASSERT_EQUAL(th_oneshot(PART_OP_ENCRYPT, &m, k, in, 60, out, &n), CKR_OK);
	CU_ASSERT_EQUAL(n, 76);
	CU_ASSERT_EQUAL(memcmp(out, want, 76), 0);
	n = sizeof(back);
	CU_ASSERT_EQUAL(th_oneshot(PART_OP_DECRYPT, &m, k, out, 76, back, &n), CKR_OK);
	CU_ASSERT_EQUAL(n, 60);
	CU_ASSERT_EQUAL(memcmp(back, in, 60), 0);
	part_key_free(k);
}

static void
test_aes_gcm_short_tag_and_v240_params(void)
{
	struct {
		CK_BYTE_PTR pIv;
		CK_ULONG ulIvLen;
		CK_BYTE_PTR pAAD;
		CK_ULONG ulAADLen;
		CK_ULONG ulTagBits;
	} old;
	struct part_key *k = aes(GCM_K);
	unsigned char iv[12], in[64], out[80], want[80];
	CK_MECHANISM m = th_mech(CKM_AES_GCM, &old, sizeof(old));
	CK_ULONG n = sizeof(out);

	th_hex("cafebabefacedbaddecaf888", iv, 12);
	old.pIv = iv, old.ulIvLen = 12, old.pAAD = NULL, old.ulAADLen = 0, old.ulTagBits = 96;
	th_hex(GCM_P, in, 64);
	th_hex(GCM_C, want, 64);
	th_hex("4d5c2af327cd64a62cf35abd", want + 64, 12); /* the leftmost 96 bits */
	CU_ASSERT_EQUAL(th_oneshot(PART_OP_ENCRYPT, &m, k, in, 64, out, &n), CKR_OK);
	CU_ASSERT_EQUAL(n, 76);
	CU_ASSERT_EQUAL(memcmp(out, want, 76), 0);
	part_key_free(k);
}

/* ---- against EVP, every key size and mode ---------------------------------------------- */

static void
check_vs_evp(CK_MECHANISM_TYPE mt, const char *fmt, int pad, size_t len)
{
	static const size_t klens[] = {16, 24, 32};
	unsigned char key[32], iv[16], in[200], out[232], want[232], back[232];
	char name[32];
	size_t i;

	for (i = 0; i < 3; i++) {
		struct part_key *k;
		CK_MECHANISM m = th_mech(mt, iv, 16);
		CK_ULONG n = sizeof(out);
		int wl;

		CU_ASSERT_FATAL(RAND_bytes(key, sizeof(key)) == 1 && RAND_bytes(iv, 16) == 1 &&
		                RAND_bytes(in, sizeof(in)) == 1);
		k = th_secret(CKK_AES, key, klens[i]);
		snprintf(name, sizeof(name), fmt, (int)(klens[i] * 8));
		if (mt == CKM_AES_ECB) {
			m = th_mech(mt, NULL, 0);
		}
		wl = evp_crypt(name, key, iv, 1, pad, in, (int)len, want);
		CU_ASSERT_EQUAL(th_oneshot(PART_OP_ENCRYPT, &m, k, in, len, out, &n), CKR_OK);
		CU_ASSERT_EQUAL(n, (CK_ULONG)wl);
		CU_ASSERT_EQUAL(memcmp(out, want, (size_t)wl), 0);
		n = sizeof(back);
		CU_ASSERT_EQUAL(th_oneshot(PART_OP_DECRYPT, &m, k, out, (size_t)wl, back, &n),
		                CKR_OK);
		CU_ASSERT_EQUAL(n, len);
		CU_ASSERT_EQUAL(memcmp(back, in, len), 0);
		part_key_free(k);
	}
}

static void
test_aes_modes_vs_evp(void)
{
	check_vs_evp(CKM_AES_ECB, "AES-%d-ECB", 0, 96);
	check_vs_evp(CKM_AES_CBC, "AES-%d-CBC", 0, 160);
	check_vs_evp(CKM_AES_CBC_PAD, "AES-%d-CBC", 1, 0);
	check_vs_evp(CKM_AES_CBC_PAD, "AES-%d-CBC", 1, 15);
	check_vs_evp(CKM_AES_CBC_PAD, "AES-%d-CBC", 1, 16);
	check_vs_evp(CKM_AES_CBC_PAD, "AES-%d-CBC", 1, 199);
}

static void
test_aes_ctr_vs_evp_odd_length(void)
{
	unsigned char key[32], in[77], out[77], want[77];
	CK_AES_CTR_PARAMS p = {64, {0}};
	CK_MECHANISM m = th_mech(CKM_AES_CTR, &p, sizeof(p));
	struct part_key *k;
	CK_ULONG n = sizeof(out);

	CU_ASSERT_FATAL(RAND_bytes(key, 32) == 1 && RAND_bytes(p.cb, 16) == 1 &&
	                RAND_bytes(in, sizeof(in)) == 1);
	k = th_secret(CKK_AES, key, 32);
	evp_crypt("AES-256-CTR", key, p.cb, 1, 0, in, (int)sizeof(in), want);
	CU_ASSERT_EQUAL(th_oneshot(PART_OP_ENCRYPT, &m, k, in, sizeof(in), out, &n), CKR_OK);
	CU_ASSERT_EQUAL(n, sizeof(in));
	CU_ASSERT_EQUAL(memcmp(out, want, sizeof(in)), 0);
	part_key_free(k);
}

/* ---- multi-part equals single-part ----------------------------------------------------- */

/* Feeds `in` in chunks of 1, 7, 16, 33 ... bytes and concatenates update and final output. */
static size_t
multi(enum part_op_kind kind, const CK_MECHANISM *m, const struct part_key *k,
      const unsigned char *in, size_t len, unsigned char *out)
{
	static const size_t steps[] = {1, 7, 16, 33, 5, 64};
	struct part_op *op = NULL;
	size_t off = 0, total = 0, i = 0;
	CK_ULONG n;

	CU_ASSERT_EQUAL_FATAL(part_mech_op_init(kind, m, k, &op), CKR_OK);
	while (off < len) {
		size_t c = steps[i++ % 6];

		c = c > len - off ? len - off : c;
		if (kind == PART_OP_DIGEST) {
			CU_ASSERT_EQUAL(part_op_update(op, in + off, c, NULL, NULL), CKR_OK);
		} else {
			/* a size query first, which must not feed the data */
			n = 0;
			CU_ASSERT_EQUAL(part_op_update(op, in + off, c, NULL, &n), CKR_OK);
			CU_ASSERT_EQUAL(part_op_update(op, in + off, c, out + total, &n), CKR_OK);
			total += n;
		}
		off += c;
	}
	n = 0;
	CU_ASSERT_EQUAL(part_op_final(op, NULL, &n), CKR_OK);
	CU_ASSERT_EQUAL(part_op_final(op, out + total, &n), CKR_OK);
	total += n;
	part_op_free(op);
	return total;
}

static void
check_multi(CK_MECHANISM_TYPE mt, void *param, CK_ULONG plen, size_t len)
{
	unsigned char key[32], in[300], one[340], many[340], back[340];
	CK_MECHANISM m = th_mech(mt, param, plen);
	struct part_key *k;
	CK_ULONG n = sizeof(one);
	size_t got;

	CU_ASSERT_FATAL(RAND_bytes(key, 32) == 1 && RAND_bytes(in, sizeof(in)) == 1);
	k = th_secret(CKK_AES, key, 32);
	CU_ASSERT_EQUAL_FATAL(th_oneshot(PART_OP_ENCRYPT, &m, k, in, len, one, &n), CKR_OK);
	got = multi(PART_OP_ENCRYPT, &m, k, in, len, many);
	CU_ASSERT_EQUAL(got, n);
	CU_ASSERT_EQUAL(memcmp(one, many, n), 0);
	got = multi(PART_OP_DECRYPT, &m, k, one, n, back);
	CU_ASSERT_EQUAL(got, len);
	CU_ASSERT_EQUAL(memcmp(back, in, len), 0);
	part_key_free(k);
}

static void
test_multipart_equals_single_part(void)
{
	unsigned char iv[16] = {1, 2, 3};
	CK_AES_CTR_PARAMS ctr = {32, {0}};
	CK_GCM_PARAMS gcm = {iv, 12, 96, iv, 16, 128};

	check_multi(CKM_AES_ECB, NULL, 0, 256);
	check_multi(CKM_AES_CBC, iv, 16, 256);
	check_multi(CKM_AES_CBC_PAD, iv, 16, 0);
	check_multi(CKM_AES_CBC_PAD, iv, 16, 255);
	check_multi(CKM_AES_CBC_PAD, iv, 16, 256);
	check_multi(CKM_AES_CTR, &ctr, sizeof(ctr), 299);
	check_multi(CKM_AES_GCM, &gcm, sizeof(gcm), 0);
	check_multi(CKM_AES_GCM, &gcm, sizeof(gcm), 299);
}

/* ---- the size convention --------------------------------------------------------------- */

static void
test_size_query_then_too_small_then_ok(void)
{
	struct part_key *k = aes(GCM_K);
	unsigned char iv[12] = {0}, in[40] = {7}, out[80], again[80];
	CK_GCM_PARAMS p = {iv, 12, 0, NULL, 0, 128};
	CK_MECHANISM m = th_mech(CKM_AES_GCM, &p, sizeof(p));
	struct part_op *op = NULL;
	CK_ULONG n = 0;

	CU_ASSERT_EQUAL_FATAL(part_mech_op_init(PART_OP_ENCRYPT, &m, k, &op), CKR_OK);
	CU_ASSERT_EQUAL(part_op_oneshot(op, in, 40, NULL, &n), CKR_OK);
	CU_ASSERT_EQUAL(n, 56);
	n = 10;
	CU_ASSERT_EQUAL(part_op_oneshot(op, in, 40, out, &n), CKR_BUFFER_TOO_SMALL);
	CU_ASSERT_EQUAL(n, 56);
	n = sizeof(out);
	CU_ASSERT_EQUAL(part_op_oneshot(op, in, 40, out, &n), CKR_OK);
	CU_ASSERT_EQUAL(n, 56);
	/* the operation has ended */
	CU_ASSERT_EQUAL(part_op_oneshot(op, in, 40, out, &n), CKR_OPERATION_NOT_INITIALIZED);
	part_op_free(op);
	/* and what came out is what a fresh operation gives */
	n = sizeof(again);
	CU_ASSERT_EQUAL(th_oneshot(PART_OP_ENCRYPT, &m, k, in, 40, again, &n), CKR_OK);
	CU_ASSERT_EQUAL(memcmp(out, again, 56), 0);
	part_key_free(k);
}

static void
test_size_query_other_input_recomputed(void)
{
	struct part_key *k = aes(K128);
	unsigned char in[32] = {1}, other[32] = {2}, out[32], want[32];
	CK_MECHANISM m = th_mech(CKM_AES_ECB, NULL, 0);
	struct part_op *op = NULL;
	CK_ULONG n = 0;

	evp_crypt("AES-128-ECB",
	          (const unsigned char *)"\x2b\x7e\x15\x16\x28\xae\xd2\xa6\xab\xf7"
	                                 "\x15\x88\x09\xcf\x4f\x3c",
	          NULL, 1, 0, other, 32, want);
	CU_ASSERT_EQUAL_FATAL(part_mech_op_init(PART_OP_ENCRYPT, &m, k, &op), CKR_OK);
	CU_ASSERT_EQUAL(part_op_oneshot(op, in, 32, NULL, &n), CKR_OK);
	n = sizeof(out);
	CU_ASSERT_EQUAL(part_op_oneshot(op, other, 32, out, &n), CKR_OK);
	CU_ASSERT_EQUAL(memcmp(out, want, 32), 0);
	part_op_free(op);
	part_key_free(k);
}

static void
test_update_too_small_keeps_state(void)
{
	struct part_key *k = aes(K128);
	unsigned char iv[16] = {0}, in[48], out[64], one[64];
	CK_MECHANISM m = th_mech(CKM_AES_CBC_PAD, iv, 16);
	struct part_op *op = NULL;
	CK_ULONG n, total = 0, on = sizeof(one);

	memset(in, 0x5a, sizeof(in));
	CU_ASSERT_EQUAL_FATAL(th_oneshot(PART_OP_ENCRYPT, &m, k, in, 40, one, &on), CKR_OK);
	CU_ASSERT_EQUAL_FATAL(part_mech_op_init(PART_OP_ENCRYPT, &m, k, &op), CKR_OK);
	n = 0;
	CU_ASSERT_EQUAL(part_op_update(op, in, 10, NULL, &n), CKR_OK);
	CU_ASSERT_EQUAL(n, 0); /* 10 bytes: no whole block yet */
	CU_ASSERT_EQUAL(part_op_update(op, in, 10, out, &n), CKR_OK);
	n = 5;
	CU_ASSERT_EQUAL(part_op_update(op, in + 10, 30, out, &n), CKR_BUFFER_TOO_SMALL);
	CU_ASSERT_EQUAL(n, 32);
	n = sizeof(out);
	CU_ASSERT_EQUAL(part_op_update(op, in + 10, 30, out, &n), CKR_OK);
	CU_ASSERT_EQUAL(n, 32);
	total = n;
	n = 3;
	CU_ASSERT_EQUAL(part_op_final(op, out + total, &n), CKR_BUFFER_TOO_SMALL);
	CU_ASSERT_EQUAL(n, 16);
	CU_ASSERT_EQUAL(part_op_final(op, out + total, &n), CKR_OK);
	total += n;
	CU_ASSERT_EQUAL(total, on);
	CU_ASSERT_EQUAL(memcmp(out, one, on), 0);
	part_op_free(op);
	part_key_free(k);
}

static void
test_cbc_pad_decrypt_final_exact_length(void)
{
	struct part_key *k = aes(K128);
	unsigned char iv[16] = {9}, in[20] = {3}, ct[32], out[32];
	CK_MECHANISM m = th_mech(CKM_AES_CBC_PAD, iv, 16);
	struct part_op *op = NULL;
	CK_ULONG n = sizeof(ct), u;

	CU_ASSERT_EQUAL_FATAL(th_oneshot(PART_OP_ENCRYPT, &m, k, in, 20, ct, &n), CKR_OK);
	CU_ASSERT_EQUAL_FATAL(part_mech_op_init(PART_OP_DECRYPT, &m, k, &op), CKR_OK);
	u = sizeof(out);
	CU_ASSERT_EQUAL(part_op_update(op, ct, 32, out, &u), CKR_OK);
	CU_ASSERT_EQUAL(u, 16); /* the last block is held back */
	n = 0;
	CU_ASSERT_EQUAL(part_op_final(op, NULL, &n), CKR_OK);
	CU_ASSERT_EQUAL(n, 4);
	CU_ASSERT_EQUAL(part_op_final(op, out + 16, &n), CKR_OK);
	CU_ASSERT_EQUAL(n, 4);
	CU_ASSERT_EQUAL(memcmp(out, in, 20), 0);
	part_op_free(op);
	part_key_free(k);
}

/* ---- refusals -------------------------------------------------------------------------- */

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
test_refuse_cbc_iv_length(void)
{
	struct part_key *k = aes(K128);
	unsigned char iv[17] = {0};

	CU_ASSERT_EQUAL(init_rv(PART_OP_ENCRYPT, CKM_AES_CBC, iv, 15, k),
	                CKR_MECHANISM_PARAM_INVALID);
	CU_ASSERT_EQUAL(init_rv(PART_OP_ENCRYPT, CKM_AES_CBC_PAD, iv, 17, k),
	                CKR_MECHANISM_PARAM_INVALID);
	CU_ASSERT_EQUAL(init_rv(PART_OP_ENCRYPT, CKM_AES_CBC, NULL, 0, k),
	                CKR_MECHANISM_PARAM_INVALID);
	part_key_free(k);
}

static void
test_refuse_ecb_parameter(void)
{
	struct part_key *k = aes(K128);
	unsigned char iv[16] = {0};

	CU_ASSERT_EQUAL(init_rv(PART_OP_ENCRYPT, CKM_AES_ECB, iv, 16, k),
	                CKR_MECHANISM_PARAM_INVALID);
	part_key_free(k);
}

static void
test_refuse_gcm_tag_bits(void)
{
	struct part_key *k = aes(K128);
	unsigned char iv[12] = {0};
	CK_GCM_PARAMS p = {iv, 12, 96, NULL, 0, 0};
	static const CK_ULONG bad[] = {0, 8, 100, 129, 136, 256};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		p.ulTagBits = bad[i];
		CU_ASSERT_EQUAL(init_rv(PART_OP_ENCRYPT, CKM_AES_GCM, &p, sizeof(p), k),
		                CKR_MECHANISM_PARAM_INVALID);
	}
	p.ulTagBits = 64;
	CU_ASSERT_EQUAL(init_rv(PART_OP_ENCRYPT, CKM_AES_GCM, &p, sizeof(p), k), CKR_OK);
	part_key_free(k);
}

static void
test_refuse_gcm_iv_length(void)
{
	struct part_key *k = aes(K128);
	unsigned char iv[200] = {0};
	CK_GCM_PARAMS p = {iv, 0, 0, NULL, 0, 128};

	CU_ASSERT_EQUAL(init_rv(PART_OP_ENCRYPT, CKM_AES_GCM, &p, sizeof(p), k),
	                CKR_MECHANISM_PARAM_INVALID);
	p.ulIvLen = 129;
	CU_ASSERT_EQUAL(init_rv(PART_OP_ENCRYPT, CKM_AES_GCM, &p, sizeof(p), k),
	                CKR_MECHANISM_PARAM_INVALID);
	p.pIv = NULL, p.ulIvLen = 12;
	CU_ASSERT_EQUAL(init_rv(PART_OP_ENCRYPT, CKM_AES_GCM, &p, sizeof(p), k),
	                CKR_MECHANISM_PARAM_INVALID);
	p.pIv = iv;
	CU_ASSERT_EQUAL(init_rv(PART_OP_ENCRYPT, CKM_AES_GCM, &p, sizeof(p) - 1, k),
	                CKR_MECHANISM_PARAM_INVALID);
	p.ulIvLen = 1; /* GCM takes any IV length; 1 byte is legal */
	CU_ASSERT_EQUAL(init_rv(PART_OP_ENCRYPT, CKM_AES_GCM, &p, sizeof(p), k), CKR_OK);
	part_key_free(k);
}

static void
test_refuse_ctr_counter_bits(void)
{
	struct part_key *k = aes(K128);
	CK_AES_CTR_PARAMS p = {0, {0}};

	CU_ASSERT_EQUAL(init_rv(PART_OP_ENCRYPT, CKM_AES_CTR, &p, sizeof(p), k),
	                CKR_MECHANISM_PARAM_INVALID);
	p.ulCounterBits = 129;
	CU_ASSERT_EQUAL(init_rv(PART_OP_ENCRYPT, CKM_AES_CTR, &p, sizeof(p), k),
	                CKR_MECHANISM_PARAM_INVALID);
	part_key_free(k);
}

static void
test_refuse_ctr_counter_wrap(void)
{
	struct part_key *k = aes(K128);
	CK_AES_CTR_PARAMS p = {8, {0}};
	CK_MECHANISM m = th_mech(CKM_AES_CTR, &p, sizeof(p));
	unsigned char in[64] = {0}, out[64];
	CK_ULONG n = sizeof(out);

	p.cb[15] = 0xfe; /* two blocks left in an 8-bit counter */
	CU_ASSERT_EQUAL(th_oneshot(PART_OP_ENCRYPT, &m, k, in, 32, out, &n), CKR_OK);
	n = sizeof(out);
	CU_ASSERT_EQUAL(th_oneshot(PART_OP_ENCRYPT, &m, k, in, 33, out, &n), CKR_DATA_LEN_RANGE);
	part_key_free(k);
}

static void
test_refuse_wrong_key_type(void)
{
	unsigned char v[32] = {1};
	struct part_key *g = th_secret(CKK_GENERIC_SECRET, v, 32);
	struct part_key *a = th_secret(CKK_AES, v, 32);
	unsigned char iv[16] = {0};

	CU_ASSERT_EQUAL(init_rv(PART_OP_ENCRYPT, CKM_AES_CBC, iv, 16, g),
	                CKR_KEY_TYPE_INCONSISTENT);
	CU_ASSERT_EQUAL(init_rv(PART_OP_SIGN, CKM_SHA256_HMAC, NULL, 0, a),
	                CKR_KEY_TYPE_INCONSISTENT);
	CU_ASSERT_EQUAL(init_rv(PART_OP_SIGN, CKM_AES_CMAC, NULL, 0, g), CKR_KEY_TYPE_INCONSISTENT);
	part_key_free(g);
	part_key_free(a);
}

static void
test_refuse_mechanism_for_function(void)
{
	struct part_key *k = aes(K128);

	CU_ASSERT_EQUAL(init_rv(PART_OP_SIGN, CKM_AES_ECB, NULL, 0, k), CKR_MECHANISM_INVALID);
	CU_ASSERT_EQUAL(init_rv(PART_OP_ENCRYPT, CKM_AES_CMAC, NULL, 0, k), CKR_MECHANISM_INVALID);
	CU_ASSERT_EQUAL(init_rv(PART_OP_ENCRYPT, CKM_DES3_CBC, NULL, 0, k), CKR_MECHANISM_INVALID);
	CU_ASSERT_EQUAL(init_rv(PART_OP_DIGEST, CKM_SHA256_HMAC, NULL, 0, NULL),
	                CKR_MECHANISM_INVALID);
	part_key_free(k);
}

static void
test_refuse_ecb_cbc_data_length(void)
{
	struct part_key *k = aes(K128);
	unsigned char iv[16] = {0}, in[33] = {0}, out[64];
	CK_MECHANISM ecb = th_mech(CKM_AES_ECB, NULL, 0), cbc = th_mech(CKM_AES_CBC, iv, 16);
	CK_MECHANISM pad = th_mech(CKM_AES_CBC_PAD, iv, 16);
	struct part_op *op = NULL;
	CK_ULONG n = sizeof(out);

	CU_ASSERT_EQUAL(th_oneshot(PART_OP_ENCRYPT, &ecb, k, in, 17, out, &n), CKR_DATA_LEN_RANGE);
	n = sizeof(out);
	CU_ASSERT_EQUAL(th_oneshot(PART_OP_ENCRYPT, &cbc, k, in, 33, out, &n), CKR_DATA_LEN_RANGE);
	n = sizeof(out);
	CU_ASSERT_EQUAL(th_oneshot(PART_OP_DECRYPT, &cbc, k, in, 31, out, &n),
	                CKR_ENCRYPTED_DATA_LEN_RANGE);
	n = sizeof(out);
	CU_ASSERT_EQUAL(th_oneshot(PART_OP_DECRYPT, &pad, k, in, 17, out, &n),
	                CKR_ENCRYPTED_DATA_LEN_RANGE);
	/* multi-part: the final finds the leftover */
	CU_ASSERT_EQUAL_FATAL(part_mech_op_init(PART_OP_ENCRYPT, &ecb, k, &op), CKR_OK);
	n = sizeof(out);
	CU_ASSERT_EQUAL(part_op_update(op, in, 20, out, &n), CKR_OK);
	CU_ASSERT_EQUAL(n, 16);
	n = sizeof(out);
	CU_ASSERT_EQUAL(part_op_final(op, out, &n), CKR_DATA_LEN_RANGE);
	part_op_free(op);
	part_key_free(k);
}

static void
test_refuse_cbc_pad_bad_padding(void)
{
	struct part_key *k = aes(K128);
	unsigned char iv[16] = {0}, blk[16], ct[16], out[32];
	CK_MECHANISM cbc = th_mech(CKM_AES_CBC, iv, 16), pad = th_mech(CKM_AES_CBC_PAD, iv, 16);
	CK_ULONG n = sizeof(ct);

	memset(blk, 0x11, 16); /* ends in 0x11 = 17 > 16 */
	CU_ASSERT_EQUAL_FATAL(th_oneshot(PART_OP_ENCRYPT, &cbc, k, blk, 16, ct, &n), CKR_OK);
	n = sizeof(out);
	CU_ASSERT_EQUAL(th_oneshot(PART_OP_DECRYPT, &pad, k, ct, 16, out, &n),
	                CKR_ENCRYPTED_DATA_INVALID);
	memset(blk, 0x03, 16);
	blk[14] = 0x02; /* 03 03 at the end but not 03 03 03 */
	n = sizeof(ct);
	CU_ASSERT_EQUAL_FATAL(th_oneshot(PART_OP_ENCRYPT, &cbc, k, blk, 16, ct, &n), CKR_OK);
	n = sizeof(out);
	CU_ASSERT_EQUAL(th_oneshot(PART_OP_DECRYPT, &pad, k, ct, 16, out, &n),
	                CKR_ENCRYPTED_DATA_INVALID);
	part_key_free(k);
}

static void
test_refuse_gcm_bad_tag(void)
{
	struct part_key *k = aes(GCM_K);
	unsigned char iv[12] = {0}, in[30] = {1}, ct[46], out[46];
	CK_GCM_PARAMS p = {iv, 12, 96, NULL, 0, 128};
	CK_MECHANISM m = th_mech(CKM_AES_GCM, &p, sizeof(p));
	struct part_op *op = NULL;
	CK_ULONG n = sizeof(ct);

	CU_ASSERT_EQUAL_FATAL(th_oneshot(PART_OP_ENCRYPT, &m, k, in, 30, ct, &n), CKR_OK);
	ct[45] ^= 1;
	n = sizeof(out);
	CU_ASSERT_EQUAL(th_oneshot(PART_OP_DECRYPT, &m, k, ct, 46, out, &n),
	                CKR_ENCRYPTED_DATA_INVALID);
	/* multi-part: nothing comes out of the updates, the final refuses */
	CU_ASSERT_EQUAL_FATAL(part_mech_op_init(PART_OP_DECRYPT, &m, k, &op), CKR_OK);
	n = sizeof(out);
	CU_ASSERT_EQUAL(part_op_update(op, ct, 46, out, &n), CKR_OK);
	CU_ASSERT_EQUAL(n, 0);
	n = sizeof(out);
	CU_ASSERT_EQUAL(part_op_final(op, out, &n), CKR_ENCRYPTED_DATA_INVALID);
	part_op_free(op);
	/* changed AAD */
	ct[45] ^= 1;
	p.pAAD = in, p.ulAADLen = 1;
	n = sizeof(out);
	CU_ASSERT_EQUAL(th_oneshot(PART_OP_DECRYPT, &m, k, ct, 46, out, &n),
	                CKR_ENCRYPTED_DATA_INVALID);
	part_key_free(k);
}

static void
test_refuse_gcm_short_input(void)
{
	struct part_key *k = aes(GCM_K);
	unsigned char iv[12] = {0}, ct[15] = {0}, out[16];
	CK_GCM_PARAMS p = {iv, 12, 96, NULL, 0, 128};
	CK_MECHANISM m = th_mech(CKM_AES_GCM, &p, sizeof(p));
	CK_ULONG n = sizeof(out);

	CU_ASSERT_EQUAL(th_oneshot(PART_OP_DECRYPT, &m, k, ct, 15, out, &n),
	                CKR_ENCRYPTED_DATA_LEN_RANGE);
	part_key_free(k);
}

static void
test_refuse_oneshot_after_update(void)
{
	struct part_key *k = aes(K128);
	CK_MECHANISM m = th_mech(CKM_AES_ECB, NULL, 0);
	unsigned char in[16] = {0}, out[16];
	struct part_op *op = NULL;
	CK_ULONG n = sizeof(out);

	CU_ASSERT_EQUAL_FATAL(part_mech_op_init(PART_OP_ENCRYPT, &m, k, &op), CKR_OK);
	CU_ASSERT_EQUAL(part_op_update(op, in, 16, out, &n), CKR_OK);
	n = sizeof(out);
	CU_ASSERT_EQUAL(part_op_oneshot(op, in, 16, out, &n), CKR_OPERATION_ACTIVE);
	part_op_free(op);
	part_key_free(k);
}

/* ---- AES key wrap as a cipher ---------------------------------------------------------- */

static void
test_aes_kw_encrypt_rfc3394(void)
{
	struct part_key *k = aes("000102030405060708090a0b0c0d0e0f");
	CK_MECHANISM m = th_mech(CKM_AES_KEY_WRAP, NULL, 0);
	unsigned char in[16], out[24], want[24];
	CK_ULONG n = sizeof(out);

	th_hex("00112233445566778899aabbccddeeff", in, 16);
	th_hex("1fa68b0a8112b447aef34bd8fb5a7b829d3e862371d2cfe5", want, 24);
	CU_ASSERT_EQUAL(th_oneshot(PART_OP_ENCRYPT, &m, k, in, 16, out, &n), CKR_OK);
	CU_ASSERT_EQUAL(n, 24);
	CU_ASSERT_EQUAL(memcmp(out, want, 24), 0);
	n = sizeof(out);
	CU_ASSERT_EQUAL(th_oneshot(PART_OP_ENCRYPT, &m, k, in, 12, out, &n), CKR_DATA_LEN_RANGE);
	part_key_free(k);
}

/* ---- MACs ------------------------------------------------------------------------------ */

static void
check_mac(CK_MECHANISM_TYPE mt, CK_KEY_TYPE kt, const char *khex, const char *msg, size_t mlen,
          const char *want_hex)
{
	unsigned char key[200], want[64], out[64];
	size_t kl = th_hex(khex, key, sizeof(key)), wl = th_hex(want_hex, want, sizeof(want));
	struct part_key *k = th_secret(kt, key, kl);
	CK_MECHANISM m = th_mech(mt, NULL, 0);
	struct part_op *op = NULL;
	CK_ULONG n = sizeof(out);
	size_t i;

	CU_ASSERT_EQUAL(th_oneshot(PART_OP_SIGN, &m, k, (const unsigned char *)msg, mlen, out, &n),
	                CKR_OK);
	CU_ASSERT_EQUAL(n, wl);
	CU_ASSERT_EQUAL(memcmp(out, want, wl), 0);
	CU_ASSERT_EQUAL(th_verify(&m, k, (const unsigned char *)msg, mlen, want, wl), CKR_OK);
	/* multi-part, byte by byte */
	CU_ASSERT_EQUAL_FATAL(part_mech_op_init(PART_OP_SIGN, &m, k, &op), CKR_OK);
	for (i = 0; i < mlen; i++) {
		CU_ASSERT_EQUAL(part_op_update(op, (const unsigned char *)msg + i, 1, NULL, NULL),
		                CKR_OK);
	}
	n = sizeof(out);
	CU_ASSERT_EQUAL(part_op_final(op, out, &n), CKR_OK);
	CU_ASSERT_EQUAL(memcmp(out, want, wl), 0);
	part_op_free(op);
	CU_ASSERT_EQUAL_FATAL(part_mech_op_init(PART_OP_VERIFY, &m, k, &op), CKR_OK);
	CU_ASSERT_EQUAL(part_op_update(op, (const unsigned char *)msg, mlen, NULL, NULL), CKR_OK);
	CU_ASSERT_EQUAL(part_op_verify_final(op, want, wl), CKR_OK);
	part_op_free(op);
	part_key_free(k);
}

static void
test_hmac_rfc4231_case1(void)
{
	const char *k = "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b";

	check_mac(CKM_SHA_1_HMAC, CKK_GENERIC_SECRET, k, "Hi There", 8,
	          "b617318655057264e28bc0b6fb378c8ef146be00"); /* RFC 2202 */
	check_mac(CKM_SHA224_HMAC, CKK_GENERIC_SECRET, k, "Hi There", 8,
	          "896fb1128abbdf196832107cd49df33f47b4b1169912ba4f53684b22");
	check_mac(CKM_SHA256_HMAC, CKK_GENERIC_SECRET, k, "Hi There", 8,
	          "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
	check_mac(CKM_SHA384_HMAC, CKK_GENERIC_SECRET, k, "Hi There", 8,
	          "afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59c"
	          "faea9ea9076ede7f4af152e8b2fa9cb6");
	check_mac(CKM_SHA512_HMAC, CKK_SHA512_HMAC, k, "Hi There", 8,
	          "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cde"
	          "daa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854");
}

static void
test_hmac_rfc4231_case2(void)
{
	check_mac(CKM_SHA256_HMAC, CKK_GENERIC_SECRET, "4a656665", "what do ya want for nothing?",
	          28, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

static void
test_cmac_sp800_38b(void)
{
	check_mac(CKM_AES_CMAC, CKK_AES, K128, "", 0, "bb1d6929e95937287fa37d129b756746");
	check_mac(CKM_AES_CMAC, CKK_AES, K128,
	          "\x6b\xc1\xbe\xe2\x2e\x40\x9f\x96\xe9\x3d\x7e\x11\x73\x93\x17\x2a", 16,
	          "070a16b46b4d4144f79bdd9dd04a287c");
}

static void
test_refuse_mac_verify(void)
{
	unsigned char key[32] = {1}, mac[32];
	struct part_key *k = th_secret(CKK_GENERIC_SECRET, key, 32);
	CK_MECHANISM m = th_mech(CKM_SHA256_HMAC, NULL, 0);
	CK_ULONG n = sizeof(mac);

	CU_ASSERT_EQUAL_FATAL(th_oneshot(PART_OP_SIGN, &m, k, key, 5, mac, &n), CKR_OK);
	CU_ASSERT_EQUAL(th_verify(&m, k, key, 5, mac, 32), CKR_OK);
	CU_ASSERT_EQUAL(th_verify(&m, k, key, 5, mac, 31), CKR_SIGNATURE_LEN_RANGE);
	CU_ASSERT_EQUAL(th_verify(&m, k, key, 5, mac, 0), CKR_SIGNATURE_LEN_RANGE);
	mac[0] ^= 0x80;
	CU_ASSERT_EQUAL(th_verify(&m, k, key, 5, mac, 32), CKR_SIGNATURE_INVALID);
	mac[0] ^= 0x80;
	CU_ASSERT_EQUAL(th_verify(&m, k, key, 4, mac, 32), CKR_SIGNATURE_INVALID);
	part_key_free(k);
}

static void
test_refuse_mac_parameter(void)
{
	unsigned char key[32] = {1};
	struct part_key *k = th_secret(CKK_GENERIC_SECRET, key, 32);
	CK_ULONG len = 16;

	CU_ASSERT_EQUAL(init_rv(PART_OP_SIGN, CKM_SHA256_HMAC, &len, sizeof(len), k),
	                CKR_MECHANISM_PARAM_INVALID);
	part_key_free(k);
}

static void
test_refuse_hmac_key_type_mismatch(void)
{
	unsigned char key[32] = {1};
	struct part_key *k = th_secret(CKK_SHA256_HMAC, key, 32);

	CU_ASSERT_EQUAL(init_rv(PART_OP_SIGN, CKM_SHA256_HMAC, NULL, 0, k), CKR_OK);
	CU_ASSERT_EQUAL(init_rv(PART_OP_SIGN, CKM_SHA384_HMAC, NULL, 0, k),
	                CKR_KEY_TYPE_INCONSISTENT);
	part_key_free(k);
}

/* ---- digests --------------------------------------------------------------------------- */

static void
test_digests_vs_evp(void)
{
	static const struct {
		CK_MECHANISM_TYPE m;
		const char *name;
	} d[] = {{CKM_SHA_1, "SHA1"},
	         {CKM_SHA224, "SHA224"},
	         {CKM_SHA256, "SHA256"},
	         {CKM_SHA384, "SHA384"},
	         {CKM_SHA512, "SHA512"}};
	unsigned char in[1000], out[64], many[64], want[64];
	unsigned int wl;
	size_t i;

	CU_ASSERT_FATAL(RAND_bytes(in, sizeof(in)) == 1);
	for (i = 0; i < 5; i++) {
		CK_MECHANISM m = th_mech(d[i].m, NULL, 0);
		struct part_op *op = NULL;
		CK_ULONG n = 0;

		CU_ASSERT_FATAL(EVP_Digest(in, sizeof(in), want, &wl,
		                           EVP_get_digestbyname(d[i].name), NULL));
		CU_ASSERT_EQUAL_FATAL(part_mech_op_init(PART_OP_DIGEST, &m, NULL, &op), CKR_OK);
		CU_ASSERT_EQUAL(part_op_oneshot(op, in, sizeof(in), NULL, &n), CKR_OK);
		CU_ASSERT_EQUAL(n, wl);
		CU_ASSERT_EQUAL(part_op_oneshot(op, in, sizeof(in), out, &n), CKR_OK);
		CU_ASSERT_EQUAL(memcmp(out, want, wl), 0);
		part_op_free(op);
		CU_ASSERT_EQUAL(multi(PART_OP_DIGEST, &m, NULL, in, sizeof(in), many), wl);
		CU_ASSERT_EQUAL(memcmp(many, want, wl), 0);
	}
}

static void
test_digest_abc(void)
{
	CK_MECHANISM m = th_mech(CKM_SHA256, NULL, 0);
	unsigned char out[32], want[32];
	CK_ULONG n = sizeof(out);

	th_hex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", want, 32);
	CU_ASSERT_EQUAL(
	        th_oneshot(PART_OP_DIGEST, &m, NULL, (const unsigned char *)"abc", 3, out, &n),
	        CKR_OK);
	CU_ASSERT_EQUAL(memcmp(out, want, 32), 0);
}

static void
test_digest_key(void)
{
	unsigned char v[24], want[32], out[32];
	struct part_key *k;
	CK_MECHANISM m = th_mech(CKM_SHA256, NULL, 0);
	struct part_op *op = NULL;
	CK_ULONG n = sizeof(out);
	unsigned int wl;

	CU_ASSERT_FATAL(RAND_bytes(v, sizeof(v)) == 1);
	k = th_secret(CKK_AES, v, 24);
	/* digest("ab" || key) */
	{
		unsigned char buf[26] = {'a', 'b'};

		memcpy(buf + 2, v, 24);
		CU_ASSERT_FATAL(EVP_Digest(buf, 26, want, &wl, EVP_sha256(), NULL));
	}
	CU_ASSERT_EQUAL_FATAL(part_mech_op_init(PART_OP_DIGEST, &m, NULL, &op), CKR_OK);
	CU_ASSERT_EQUAL(part_op_update(op, (const unsigned char *)"ab", 2, NULL, NULL), CKR_OK);
	CU_ASSERT_EQUAL(part_op_digest_key(op, k), CKR_OK);
	CU_ASSERT_EQUAL(part_op_final(op, out, &n), CKR_OK);
	CU_ASSERT_EQUAL(memcmp(out, want, 32), 0);
	part_op_free(op);
	part_key_free(k);
}

static void
test_refuse_single_part_update(void)
{
	unsigned char v[32] = {1};
	struct part_key *k = th_secret(CKK_AES, v, 32);
	CK_MECHANISM m = th_mech(CKM_AES_KEY_WRAP, NULL, 0);
	struct part_op *op = NULL;
	CK_ULONG n = 64;
	unsigned char out[64];

	CU_ASSERT_EQUAL_FATAL(part_mech_op_init(PART_OP_ENCRYPT, &m, k, &op), CKR_OK);
	CU_ASSERT_EQUAL(part_op_update(op, v, 16, out, &n), CKR_FUNCTION_NOT_SUPPORTED);
	part_op_free(op);
	part_key_free(k);
}

void
test_register(void)
{
	static const struct test_case cases[] = {
	        {"aes_ecb_fips197", test_aes_ecb_fips197},
	        {"aes_cbc_sp800_38a", test_aes_cbc_sp800_38a},
	        {"aes_ctr_sp800_38a", test_aes_ctr_sp800_38a},
	        {"aes_gcm_case3", test_aes_gcm_case3},
	        {"aes_gcm_case4_aad", test_aes_gcm_case4_aad},
	        {"aes_gcm_short_tag_and_v240_params", test_aes_gcm_short_tag_and_v240_params},
	        {"aes_modes_vs_evp", test_aes_modes_vs_evp},
	        {"aes_ctr_vs_evp_odd_length", test_aes_ctr_vs_evp_odd_length},
	        {"multipart_equals_single_part", test_multipart_equals_single_part},
	        {"size_query_then_too_small_then_ok", test_size_query_then_too_small_then_ok},
	        {"size_query_other_input_recomputed", test_size_query_other_input_recomputed},
	        {"update_too_small_keeps_state", test_update_too_small_keeps_state},
	        {"cbc_pad_decrypt_final_exact_length", test_cbc_pad_decrypt_final_exact_length},
	        {"refuse_cbc_iv_length", test_refuse_cbc_iv_length},
	        {"refuse_ecb_parameter", test_refuse_ecb_parameter},
	        {"refuse_gcm_tag_bits", test_refuse_gcm_tag_bits},
	        {"refuse_gcm_iv_length", test_refuse_gcm_iv_length},
	        {"refuse_ctr_counter_bits", test_refuse_ctr_counter_bits},
	        {"refuse_ctr_counter_wrap", test_refuse_ctr_counter_wrap},
	        {"refuse_wrong_key_type", test_refuse_wrong_key_type},
	        {"refuse_mechanism_for_function", test_refuse_mechanism_for_function},
	        {"refuse_ecb_cbc_data_length", test_refuse_ecb_cbc_data_length},
	        {"refuse_cbc_pad_bad_padding", test_refuse_cbc_pad_bad_padding},
	        {"refuse_gcm_bad_tag", test_refuse_gcm_bad_tag},
	        {"refuse_gcm_short_input", test_refuse_gcm_short_input},
	        {"refuse_oneshot_after_update", test_refuse_oneshot_after_update},
	        {"aes_kw_encrypt_rfc3394", test_aes_kw_encrypt_rfc3394},
	        {"hmac_rfc4231_case1", test_hmac_rfc4231_case1},
	        {"hmac_rfc4231_case2", test_hmac_rfc4231_case2},
	        {"cmac_sp800_38b", test_cmac_sp800_38b},
	        {"refuse_mac_verify", test_refuse_mac_verify},
	        {"refuse_mac_parameter", test_refuse_mac_parameter},
	        {"refuse_hmac_key_type_mismatch", test_refuse_hmac_key_type_mismatch},
	        {"digests_vs_evp", test_digests_vs_evp},
	        {"digest_abc", test_digest_abc},
	        {"digest_key", test_digest_key},
	        {"refuse_single_part_update", test_refuse_single_part_update},
	        {NULL, NULL},
	};

	test_suite_add("hsm-partitions/crypto/op", NULL, NULL, cases);
}
