/*
 * tools/hsmgate-bench/ops.c — the operations hsmgate-bench times.
 *
 * Each operation has a set-up run once per worker before timing, and a call that is timed.
 * The set-up creates the worker's own key in the worker's own session (session objects,
 * CKA_TOKEN false, so nothing is left on the token) and verifies one result independently:
 * signatures with OpenSSL against the public key read back with C_GetAttributeValue
 * (CKA_EC_POINT, CKA_MODULUS/CKA_PUBLIC_EXPONENT), HMACs with OpenSSL against the key value
 * we imported, ciphertexts by decrypting them through the module, digests against OpenSSL's,
 * random output by its length and by two calls differing. A module that answers wrongly
 * therefore never gets a figure.
 *
 * A timed call is what an application does for one result, with the output buffer sized in
 * advance (no size query): e.g. C_SignInit + C_Sign. Every module is measured the same way.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>

#include "tools/hsmgate-bench/bench.h"

#define P11     (w->ctx->p11)
#define DATA_4K 4096
#define DATA_1K 1024

/* DER of the named curves, the CKA_EC_PARAMS values (PKCS #11 v3.0 §2.3.3/§2.3.5) */
static const unsigned char oid_p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48,
                                         0xce, 0x3d, 0x03, 0x01, 0x07};
static const unsigned char oid_ed25519[] = {0x06, 0x03, 0x2b, 0x65, 0x70};
static const unsigned char rsa_e[] = {0x01, 0x00, 0x01};

/* SHA-256 DigestInfo prefix (RFC 8017 §9.2 note 1), for CKM_RSA_PKCS over a hash */
static const unsigned char sha256_prefix[] = {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60,
                                              0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                                              0x01, 0x05, 0x00, 0x04, 0x20};

static CK_BBOOL yes = CK_TRUE;
static CK_BBOOL no = CK_FALSE;

void
bench_worker_fail(struct bench_worker *w, const char *fmt, ...)
{
	va_list ap;

	if (w->msg[0] != '\0') {
		return;
	}
	va_start(ap, fmt);
	vsnprintf(w->msg, sizeof(w->msg), fmt, ap);
	va_end(ap);
}

uint64_t
bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int
bench_rv_unsupported(CK_RV rv)
{
	return rv == CKR_MECHANISM_INVALID || rv == CKR_FUNCTION_NOT_SUPPORTED ||
	       rv == CKR_MECHANISM_PARAM_INVALID;
}

/* Records a refused call and passes its CK_RV on. */
static CK_RV
refused(struct bench_worker *w, const char *call, CK_RV rv)
{
	w->rv = rv;
	bench_worker_fail(w, "from %s", call);
	return rv;
}

/* Records a wrong result. */
static CK_RV
wrong(struct bench_worker *w, const char *what)
{
	w->wrong = 1;
	bench_worker_fail(w, "wrong result: %s", what);
	return CKR_GENERAL_ERROR;
}

/* Whether the slot offers mech (C_GetMechanismInfo). */
static int
has_mech(struct bench_worker *w, CK_MECHANISM_TYPE mech)
{
	CK_MECHANISM_INFO info;

	return P11->C_GetMechanismInfo(w->ctx->slot, mech, &info) == CKR_OK;
}

/* Reads one attribute into a fresh buffer (size query, then value). Caller frees *out. */
static CK_RV
get_attr(struct bench_worker *w, CK_OBJECT_HANDLE obj, CK_ATTRIBUTE_TYPE type, unsigned char **out,
         size_t *len)
{
	CK_ATTRIBUTE a = {type, NULL, 0};
	CK_RV rv;

	*out = NULL;
	*len = 0;
	if ((rv = P11->C_GetAttributeValue(w->session, obj, &a, 1)) != CKR_OK) {
		return refused(w, "C_GetAttributeValue(size)", rv);
	}
	if (a.ulValueLen == 0 || a.ulValueLen > 4096 || (a.pValue = malloc(a.ulValueLen)) == NULL) {
		return wrong(w, "attribute length out of range");
	}
	if ((rv = P11->C_GetAttributeValue(w->session, obj, &a, 1)) != CKR_OK) {
		free(a.pValue);
		return refused(w, "C_GetAttributeValue", rv);
	}
	*out = a.pValue;
	*len = a.ulValueLen;
	return CKR_OK;
}

/* ---- key generation -------------------------------------------------------------------------- */

static CK_RV
gen_pair(struct bench_worker *w, CK_MECHANISM_TYPE mech, CK_ATTRIBUTE *pub, CK_ULONG npub)
{
	CK_MECHANISM m = {mech, NULL, 0};
	CK_ATTRIBUTE priv[] = {
	        {CKA_TOKEN, &no, sizeof(no)},       {CKA_PRIVATE, &yes, sizeof(yes)},
	        {CKA_SENSITIVE, &yes, sizeof(yes)}, {CKA_SIGN, &yes, sizeof(yes)},
	        {CKA_DECRYPT, &yes, sizeof(yes)},
	};
	CK_ULONG npriv = sizeof(priv) / sizeof(priv[0]);
	CK_RV rv;

	/* EC keys do not decrypt; a module may refuse the attribute for them */
	if (mech != CKM_RSA_PKCS_KEY_PAIR_GEN) {
		npriv--;
	}
	if ((rv = P11->C_GenerateKeyPair(w->session, &m, pub, npub, priv, npriv, &w->pub,
	                                 &w->key)) != CKR_OK) {
		return refused(w, "C_GenerateKeyPair", rv);
	}
	return CKR_OK;
}

static CK_RV
gen_ec(struct bench_worker *w, CK_MECHANISM_TYPE mech, const unsigned char *oid, size_t oid_len)
{
	CK_ATTRIBUTE pub[] = {
	        {CKA_TOKEN, &no, sizeof(no)},
	        {CKA_VERIFY, &yes, sizeof(yes)},
	        {CKA_EC_PARAMS, (void *)oid, oid_len},
	};

	return gen_pair(w, mech, pub, sizeof(pub) / sizeof(pub[0]));
}

static CK_RV
gen_rsa(struct bench_worker *w)
{
	CK_ULONG bits = 2048;
	CK_ATTRIBUTE pub[] = {
	        {CKA_TOKEN, &no, sizeof(no)},
	        {CKA_VERIFY, &yes, sizeof(yes)},
	        {CKA_ENCRYPT, &yes, sizeof(yes)},
	        {CKA_MODULUS_BITS, &bits, sizeof(bits)},
	        {CKA_PUBLIC_EXPONENT, (void *)rsa_e, sizeof(rsa_e)},
	};

	return gen_pair(w, CKM_RSA_PKCS_KEY_PAIR_GEN, pub, sizeof(pub) / sizeof(pub[0]));
}

static CK_RV
gen_aes(struct bench_worker *w, CK_OBJECT_HANDLE *key)
{
	CK_MECHANISM m = {CKM_AES_KEY_GEN, NULL, 0};
	CK_ULONG len = 32;
	CK_ATTRIBUTE t[] = {
	        {CKA_TOKEN, &no, sizeof(no)},       {CKA_PRIVATE, &yes, sizeof(yes)},
	        {CKA_SENSITIVE, &yes, sizeof(yes)}, {CKA_ENCRYPT, &yes, sizeof(yes)},
	        {CKA_DECRYPT, &yes, sizeof(yes)},   {CKA_VALUE_LEN, &len, sizeof(len)},
	};
	CK_RV rv;

	if ((rv = P11->C_GenerateKey(w->session, &m, t, sizeof(t) / sizeof(t[0]), key)) != CKR_OK) {
		return refused(w, "C_GenerateKey(AES)", rv);
	}
	return CKR_OK;
}

/* ---- public keys into OpenSSL ------------------------------------------------------------- */

/* CKA_EC_POINT is a DER OCTET STRING holding the point (PKCS #11 v2.40 §2.3.3); some modules
 * return the bare point. Returns a pointer into buf and the point's length, or NULL. */
static const unsigned char *
ec_point_unwrap(const unsigned char *buf, size_t len, size_t want, size_t *plen)
{
	if (len == want + 2 && buf[0] == 0x04 && buf[1] == want) {
		*plen = want;
		return buf + 2;
	}
	if (len == want) {
		*plen = want;
		return buf;
	}
	return NULL;
}

static EVP_PKEY *
pkey_from_params(const char *type, OSSL_PARAM *params)
{
	EVP_PKEY_CTX *pc;
	EVP_PKEY *pk = NULL;

	if ((pc = EVP_PKEY_CTX_new_from_name(NULL, type, NULL)) == NULL) {
		return NULL;
	}
	if (EVP_PKEY_fromdata_init(pc) != 1 ||
	    EVP_PKEY_fromdata(pc, &pk, EVP_PKEY_PUBLIC_KEY, params) != 1) {
		pk = NULL;
	}
	EVP_PKEY_CTX_free(pc);
	return pk;
}

/* The worker's public key as an EVP_PKEY, read from the module. NULL (and w->msg) on error. */
static EVP_PKEY *
pub_key(struct bench_worker *w, const char *type)
{
	unsigned char *a = NULL, *b = NULL;
	const unsigned char *pt;
	size_t alen, blen, plen;
	EVP_PKEY *pk = NULL;
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	BIGNUM *n = NULL, *e = NULL;

	if (strcmp(type, "RSA") == 0) {
		if (get_attr(w, w->pub, CKA_MODULUS, &a, &alen) != CKR_OK ||
		    get_attr(w, w->pub, CKA_PUBLIC_EXPONENT, &b, &blen) != CKR_OK) {
			goto out;
		}
		if ((n = BN_bin2bn(a, (int)alen, NULL)) == NULL ||
		    (e = BN_bin2bn(b, (int)blen, NULL)) == NULL ||
		    (bld = OSSL_PARAM_BLD_new()) == NULL ||
		    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) != 1 ||
		    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) != 1 ||
		    (params = OSSL_PARAM_BLD_to_param(bld)) == NULL) {
			bench_worker_fail(w, "OpenSSL: cannot build the RSA public key");
			goto out;
		}
		pk = pkey_from_params("RSA", params);
	} else if (strcmp(type, "EC") == 0) {
		OSSL_PARAM p[3];

		if (get_attr(w, w->pub, CKA_EC_POINT, &a, &alen) != CKR_OK) {
			goto out;
		}
		if ((pt = ec_point_unwrap(a, alen, 65, &plen)) == NULL || pt[0] != 0x04) {
			wrong(w, "CKA_EC_POINT is not an uncompressed P-256 point");
			goto out;
		}
		p[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
		                                        (char *)"prime256v1", 0);
		p[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, (void *)pt, plen);
		p[2] = OSSL_PARAM_construct_end();
		pk = pkey_from_params("EC", p);
	} else {
		if (get_attr(w, w->pub, CKA_EC_POINT, &a, &alen) != CKR_OK) {
			goto out;
		}
		if ((pt = ec_point_unwrap(a, alen, 32, &plen)) == NULL) {
			wrong(w, "CKA_EC_POINT is not a 32-byte Ed25519 key");
			goto out;
		}
		pk = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pt, plen);
	}
	if (pk == NULL) {
		wrong(w, "OpenSSL does not accept the public key read from the module");
	}
out:
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(n);
	BN_free(e);
	free(a);
	free(b);
	return pk;
}

/* ---- signing -------------------------------------------------------------------------------- */

/* Mechanism parameters of the timed sign call, by w->mech. */
static CK_RSA_PKCS_PSS_PARAMS pss_params = {CKM_SHA256, CKG_MGF1_SHA256, 32};

static CK_RV
sign_once(struct bench_worker *w, CK_ULONG *siglen)
{
	CK_MECHANISM m = {w->mech, NULL, 0};
	CK_ULONG inlen;
	CK_RV rv;

	if (w->mech == CKM_SHA256_RSA_PKCS_PSS || w->mech == CKM_RSA_PKCS_PSS) {
		m.pParameter = &pss_params;
		m.ulParameterLen = sizeof(pss_params);
	}
	/* w->in holds the 32-byte message; for the raw mechanisms its hash (and DigestInfo) */
	switch (w->mech) {
	case CKM_ECDSA:
	case CKM_RSA_PKCS_PSS:
		inlen = 32;
		break;
	case CKM_RSA_PKCS:
		inlen = sizeof(sha256_prefix) + 32;
		break;
	default:
		inlen = 32;
		break;
	}
	if ((rv = P11->C_SignInit(w->session, &m, w->key)) != CKR_OK) {
		return refused(w, "C_SignInit", rv);
	}
	*siglen = sizeof(w->out);
	if ((rv = P11->C_Sign(w->session, w->aux, inlen, w->out, siglen)) != CKR_OK) {
		return refused(w, "C_Sign", rv);
	}
	return CKR_OK;
}

/* The 32-byte message is in w->in; w->aux holds what the mechanism signs. */
static void
sign_input(struct bench_worker *w)
{
	unsigned char h[32];

	RAND_bytes(w->in, 32);
	SHA256(w->in, 32, h);
	switch (w->mech) {
	case CKM_ECDSA:
	case CKM_RSA_PKCS_PSS:
		memcpy(w->aux, h, 32);
		break;
	case CKM_RSA_PKCS:
		memcpy(w->aux, sha256_prefix, sizeof(sha256_prefix));
		memcpy(w->aux + sizeof(sha256_prefix), h, 32);
		break;
	default:
		memcpy(w->aux, w->in, 32);
		break;
	}
}

/* Verifies w->out (siglen bytes) over the message w->in with OpenSSL. */
static CK_RV
sign_verify(struct bench_worker *w, const char *type, CK_ULONG siglen)
{
	EVP_MD_CTX *md = NULL;
	EVP_PKEY_CTX *pc = NULL;
	EVP_PKEY *pk;
	ECDSA_SIG *es = NULL;
	BIGNUM *r = NULL, *s = NULL;
	unsigned char *der = NULL, h[32];
	int derlen, ok = 0;

	if ((pk = pub_key(w, type)) == NULL) {
		return w->wrong ? CKR_GENERAL_ERROR : (w->rv != CKR_OK ? w->rv : CKR_GENERAL_ERROR);
	}
	if (strcmp(type, "EC") == 0) {
		/* PKCS #11 ECDSA signatures are r || s (v2.40 §2.3.1); OpenSSL wants DER */
		SHA256(w->in, 32, h);
		if (siglen != 64 || (es = ECDSA_SIG_new()) == NULL ||
		    (r = BN_bin2bn(w->out, 32, NULL)) == NULL ||
		    (s = BN_bin2bn(w->out + 32, 32, NULL)) == NULL ||
		    ECDSA_SIG_set0(es, r, s) != 1) {
			BN_free(r);
			BN_free(s);
			goto out;
		}
		/* r, s transferred */
		if ((derlen = i2d_ECDSA_SIG(es, &der)) <= 0 ||
		    (pc = EVP_PKEY_CTX_new(pk, NULL)) == NULL || EVP_PKEY_verify_init(pc) != 1) {
			goto out;
		}
		ok = EVP_PKEY_verify(pc, der, (size_t)derlen, h, sizeof(h)) == 1;
	} else {
		const EVP_MD *mdt = strcmp(type, "RSA") == 0 ? EVP_sha256() : NULL;

		if ((md = EVP_MD_CTX_new()) == NULL ||
		    EVP_DigestVerifyInit(md, &pc, mdt, NULL, pk) != 1) {
			goto out;
		}
		if (w->mech == CKM_SHA256_RSA_PKCS_PSS || w->mech == CKM_RSA_PKCS_PSS) {
			if (EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PSS_PADDING) != 1 ||
			    EVP_PKEY_CTX_set_rsa_pss_saltlen(pc, 32) != 1 ||
			    EVP_PKEY_CTX_set_rsa_mgf1_md(pc, EVP_sha256()) != 1) {
				goto out;
			}
		}
		pc = NULL; /* owned by md */
		ok = EVP_DigestVerify(md, w->out, siglen, w->in, 32) == 1;
	}
out:
	OPENSSL_free(der);
	ECDSA_SIG_free(es);
	EVP_PKEY_CTX_free(pc);
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(pk);
	return ok ? CKR_OK : wrong(w, "the signature does not verify with OpenSSL");
}

/* Picks the first mechanism of the list the slot offers. */
static CK_RV
pick_mech(struct bench_worker *w, const CK_MECHANISM_TYPE *list, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (has_mech(w, list[i])) {
			w->mech = list[i];
			return CKR_OK;
		}
	}
	return refused(w, "C_GetMechanismInfo", CKR_MECHANISM_INVALID);
}

static CK_RV
sign_setup(struct bench_worker *w, const char *type)
{
	CK_ULONG siglen;
	CK_RV rv;

	sign_input(w);
	if ((rv = sign_once(w, &siglen)) != CKR_OK) {
		return rv;
	}
	return sign_verify(w, type, siglen);
}

static CK_RV
ecdsa_setup(struct bench_worker *w)
{
	static const CK_MECHANISM_TYPE m[] = {CKM_ECDSA};
	CK_RV rv;

	if ((rv = pick_mech(w, m, 1)) != CKR_OK ||
	    (rv = gen_ec(w, CKM_EC_KEY_PAIR_GEN, oid_p256, sizeof(oid_p256))) != CKR_OK) {
		return rv;
	}
	return sign_setup(w, "EC");
}

static CK_RV
ed25519_setup(struct bench_worker *w)
{
	static const CK_MECHANISM_TYPE m[] = {CKM_EDDSA};
	CK_RV rv;

	if ((rv = pick_mech(w, m, 1)) != CKR_OK ||
	    (rv = gen_ec(w, CKM_EC_EDWARDS_KEY_PAIR_GEN, oid_ed25519, sizeof(oid_ed25519))) !=
	            CKR_OK) {
		return rv;
	}
	return sign_setup(w, "ED25519");
}

static CK_RV
rsa_setup(struct bench_worker *w)
{
	/* the hashing mechanism when offered (hashing 32 bytes costs nothing), otherwise the raw
	 * one over a DigestInfo: both produce the same RSASSA-PKCS1-v1_5 signature */
	static const CK_MECHANISM_TYPE m[] = {CKM_SHA256_RSA_PKCS, CKM_RSA_PKCS};
	CK_RV rv;

	if ((rv = pick_mech(w, m, 2)) != CKR_OK || (rv = gen_rsa(w)) != CKR_OK) {
		return rv;
	}
	return sign_setup(w, "RSA");
}

static CK_RV
rsa_pss_setup(struct bench_worker *w)
{
	static const CK_MECHANISM_TYPE m[] = {CKM_SHA256_RSA_PKCS_PSS, CKM_RSA_PKCS_PSS};
	CK_RV rv;

	if ((rv = pick_mech(w, m, 2)) != CKR_OK || (rv = gen_rsa(w)) != CKR_OK) {
		return rv;
	}
	return sign_setup(w, "RSA");
}

static CK_RV
sign_call(struct bench_worker *w)
{
	CK_ULONG siglen;
	CK_RV rv;

	if ((rv = sign_once(w, &siglen)) != CKR_OK) {
		return rv;
	}
	if (siglen == 0) {
		return wrong(w, "empty signature");
	}
	return CKR_OK;
}

/* ---- RSA-OAEP decrypt ------------------------------------------------------------------------ */

/* variant 0: OAEP with SHA-256 and MGF1-SHA-256; variant 1: SHA-1 (SoftHSMv2 2.6 accepts only
 * SHA-1 for OAEP), chosen at set-up and reported in the result line. */
static CK_RSA_PKCS_OAEP_PARAMS oaep_params[2] = {
        {CKM_SHA256, CKG_MGF1_SHA256, CKZ_DATA_SPECIFIED, NULL, 0},
        {CKM_SHA_1, CKG_MGF1_SHA1, CKZ_DATA_SPECIFIED, NULL, 0},
};

static CK_RV
oaep_decrypt(struct bench_worker *w, CK_ULONG *outlen)
{
	CK_MECHANISM m = {CKM_RSA_PKCS_OAEP, &oaep_params[w->variant], sizeof(oaep_params[0])};
	CK_RV rv;

	if ((rv = P11->C_DecryptInit(w->session, &m, w->key)) != CKR_OK) {
		return refused(w, "C_DecryptInit", rv);
	}
	*outlen = sizeof(w->out);
	if ((rv = P11->C_Decrypt(w->session, w->aux, w->aux_len, w->out, outlen)) != CKR_OK) {
		return refused(w, "C_Decrypt", rv);
	}
	return CKR_OK;
}

/* Encrypts w->in[0..32) to w->aux with OpenSSL under the worker's public key. */
static CK_RV
oaep_encrypt_openssl(struct bench_worker *w, EVP_PKEY *pk)
{
	const EVP_MD *md = w->variant == 0 ? EVP_sha256() : EVP_sha1();
	EVP_PKEY_CTX *pc;
	size_t len = sizeof(w->aux);
	int ok;

	if ((pc = EVP_PKEY_CTX_new(pk, NULL)) == NULL) {
		return CKR_HOST_MEMORY;
	}
	ok = EVP_PKEY_encrypt_init(pc) == 1 &&
	     EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_OAEP_PADDING) == 1 &&
	     EVP_PKEY_CTX_set_rsa_oaep_md(pc, md) == 1 &&
	     EVP_PKEY_CTX_set_rsa_mgf1_md(pc, md) == 1 &&
	     EVP_PKEY_encrypt(pc, w->aux, &len, w->in, 32) == 1;
	EVP_PKEY_CTX_free(pc);
	if (!ok) {
		bench_worker_fail(w, "OpenSSL: OAEP encryption failed");
		return CKR_GENERAL_ERROR;
	}
	w->aux_len = len;
	return CKR_OK;
}

static CK_RV
oaep_setup(struct bench_worker *w)
{
	CK_ULONG outlen;
	EVP_PKEY *pk;
	CK_RV rv;

	if (!has_mech(w, CKM_RSA_PKCS_OAEP)) {
		return refused(w, "C_GetMechanismInfo", CKR_MECHANISM_INVALID);
	}
	if ((rv = gen_rsa(w)) != CKR_OK) {
		return rv;
	}
	if ((pk = pub_key(w, "RSA")) == NULL) {
		return w->wrong ? CKR_GENERAL_ERROR : w->rv;
	}
	RAND_bytes(w->in, 32);
	for (w->variant = 0; w->variant < 2; w->variant++) {
		if ((rv = oaep_encrypt_openssl(w, pk)) != CKR_OK) {
			break;
		}
		rv = oaep_decrypt(w, &outlen);
		if (rv == CKR_OK ||
		    !(rv == CKR_MECHANISM_PARAM_INVALID || rv == CKR_ARGUMENTS_BAD)) {
			break;
		}
		/* this hash is refused: try the next one */
		w->msg[0] = '\0';
		w->rv = CKR_OK;
	}
	EVP_PKEY_free(pk);
	if (w->variant == 2) {
		return refused(w, "C_DecryptInit(OAEP SHA-256 and SHA-1)",
		               CKR_MECHANISM_PARAM_INVALID);
	}
	if (rv != CKR_OK) {
		return rv;
	}
	if (outlen != 32 || memcmp(w->out, w->in, 32) != 0) {
		return wrong(w,
		             "OAEP decryption of an OpenSSL ciphertext differs from the plaintext");
	}
	return CKR_OK;
}

static CK_RV
oaep_call(struct bench_worker *w)
{
	CK_ULONG outlen;
	CK_RV rv;

	if ((rv = oaep_decrypt(w, &outlen)) != CKR_OK) {
		return rv;
	}
	return outlen == 32 ? CKR_OK : wrong(w, "OAEP plaintext length");
}

/* ---- AES ------------------------------------------------------------------------------------- */

/* One AES-GCM or AES-CBC operation over 4 KiB. GCM IVs are unique per worker and call (the
 * worker id and a counter): reusing a GCM IV under one key would be a real bug to copy. */
static CK_RV
aes_crypt(struct bench_worker *w, int encrypt, const unsigned char *in, CK_ULONG inlen,
          unsigned char *out, CK_ULONG *outlen, uint64_t ivctr)
{
	unsigned char iv[16] = {0};
	CK_GCM_PARAMS gcm;
	CK_MECHANISM m = {w->mech, iv, 16};
	CK_RV rv;

	if (w->mech == CKM_AES_GCM) {
		memcpy(iv, &w->id, sizeof(w->id));
		memcpy(iv + 4, &ivctr, sizeof(ivctr));
		memset(&gcm, 0, sizeof(gcm));
		gcm.pIv = iv;
		gcm.ulIvLen = 12;
		gcm.ulIvBits = 96;
		gcm.ulTagBits = 128;
		m.pParameter = &gcm;
		m.ulParameterLen = sizeof(gcm);
	}
	*outlen = sizeof(w->out);
	if (encrypt) {
		if ((rv = P11->C_EncryptInit(w->session, &m, w->key)) != CKR_OK) {
			return refused(w, "C_EncryptInit", rv);
		}
		if ((rv = P11->C_Encrypt(w->session, (unsigned char *)in, inlen, out, outlen)) !=
		    CKR_OK) {
			return refused(w, "C_Encrypt", rv);
		}
	} else {
		if ((rv = P11->C_DecryptInit(w->session, &m, w->key)) != CKR_OK) {
			return refused(w, "C_DecryptInit", rv);
		}
		if ((rv = P11->C_Decrypt(w->session, (unsigned char *)in, inlen, out, outlen)) !=
		    CKR_OK) {
			return refused(w, "C_Decrypt", rv);
		}
	}
	return CKR_OK;
}

static CK_RV
aes_setup(struct bench_worker *w, CK_MECHANISM_TYPE mech)
{
	CK_ULONG ctlen, ptlen, want = mech == CKM_AES_GCM ? DATA_4K + 16 : DATA_4K;
	unsigned char *back;
	CK_RV rv;

	if (!has_mech(w, mech)) {
		return refused(w, "C_GetMechanismInfo", CKR_MECHANISM_INVALID);
	}
	w->mech = mech;
	if ((rv = gen_aes(w, &w->key)) != CKR_OK) {
		return rv;
	}
	RAND_bytes(w->in, DATA_4K);
	if ((rv = aes_crypt(w, 1, w->in, DATA_4K, w->out, &ctlen, w->counter)) != CKR_OK) {
		return rv;
	}
	if (ctlen != want || memcmp(w->out, w->in, 64) == 0) {
		return wrong(w, "ciphertext length or content");
	}
	if ((back = malloc(DATA_4K + 512)) == NULL) {
		return CKR_HOST_MEMORY;
	}
	rv = aes_crypt(w, 0, w->out, ctlen, back, &ptlen, w->counter);
	if (rv == CKR_OK && (ptlen != DATA_4K || memcmp(back, w->in, DATA_4K) != 0)) {
		rv = wrong(w,
		           "the ciphertext does not decrypt to the plaintext through the module");
	}
	free(back);
	w->counter++;
	return rv;
}

static CK_RV
gcm_setup(struct bench_worker *w)
{
	return aes_setup(w, CKM_AES_GCM);
}

static CK_RV
cbc_setup(struct bench_worker *w)
{
	return aes_setup(w, CKM_AES_CBC);
}

static CK_RV
aes_call(struct bench_worker *w)
{
	CK_ULONG ctlen, want = w->mech == CKM_AES_GCM ? DATA_4K + 16 : DATA_4K;
	CK_RV rv;

	if ((rv = aes_crypt(w, 1, w->in, DATA_4K, w->out, &ctlen, w->counter++)) != CKR_OK) {
		return rv;
	}
	return ctlen == want ? CKR_OK : wrong(w, "ciphertext length");
}

/* ---- HMAC ------------------------------------------------------------------------------------ */

/* The key is imported with a value we know (C_CreateObject), so OpenSSL can check the MAC.
 * variant 1: the module refused the import; the key is generated and the MAC is checked
 * with C_Verify instead. */
static CK_RV
hmac_once(struct bench_worker *w, CK_ULONG *maclen)
{
	CK_MECHANISM m = {CKM_SHA256_HMAC, NULL, 0};
	CK_RV rv;

	if ((rv = P11->C_SignInit(w->session, &m, w->key)) != CKR_OK) {
		return refused(w, "C_SignInit", rv);
	}
	*maclen = sizeof(w->out);
	if ((rv = P11->C_Sign(w->session, w->in, DATA_1K, w->out, maclen)) != CKR_OK) {
		return refused(w, "C_Sign", rv);
	}
	return CKR_OK;
}

static CK_RV
hmac_setup(struct bench_worker *w)
{
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_KEY_TYPE kt = CKK_GENERIC_SECRET;
	unsigned char value[32], mac[EVP_MAX_MD_SIZE];
	unsigned int mlen = 0;
	CK_ULONG vlen = sizeof(value), maclen;
	CK_ATTRIBUTE t[] = {
	        {CKA_CLASS, &cls, sizeof(cls)},    {CKA_KEY_TYPE, &kt, sizeof(kt)},
	        {CKA_TOKEN, &no, sizeof(no)},      {CKA_PRIVATE, &yes, sizeof(yes)},
	        {CKA_SIGN, &yes, sizeof(yes)},     {CKA_VERIFY, &yes, sizeof(yes)},
	        {CKA_VALUE, value, sizeof(value)},
	};
	CK_ATTRIBUTE g[] = {
	        {CKA_KEY_TYPE, &kt, sizeof(kt)},  {CKA_TOKEN, &no, sizeof(no)},
	        {CKA_PRIVATE, &yes, sizeof(yes)}, {CKA_SIGN, &yes, sizeof(yes)},
	        {CKA_VERIFY, &yes, sizeof(yes)},  {CKA_VALUE_LEN, &vlen, sizeof(vlen)},
	};
	CK_MECHANISM gm = {CKM_GENERIC_SECRET_KEY_GEN, NULL, 0};
	CK_MECHANISM m = {CKM_SHA256_HMAC, NULL, 0};
	CK_RV rv;

	if (!has_mech(w, CKM_SHA256_HMAC)) {
		return refused(w, "C_GetMechanismInfo", CKR_MECHANISM_INVALID);
	}
	RAND_bytes(value, sizeof(value));
	RAND_bytes(w->in, DATA_1K);
	w->mech = CKM_SHA256_HMAC;
	rv = P11->C_CreateObject(w->session, t, sizeof(t) / sizeof(t[0]), &w->key);
	if (rv != CKR_OK) {
		w->variant = 1;
		w->variant_rv = rv;
		if ((rv = P11->C_GenerateKey(w->session, &gm, g, sizeof(g) / sizeof(g[0]),
		                             &w->key)) != CKR_OK) {
			OPENSSL_cleanse(value, sizeof(value));
			return refused(w, "C_CreateObject and C_GenerateKey(generic secret)", rv);
		}
	}
	if ((rv = hmac_once(w, &maclen)) != CKR_OK) {
		OPENSSL_cleanse(value, sizeof(value));
		return rv;
	}
	if (w->variant == 0) {
		HMAC(EVP_sha256(), value, sizeof(value), w->in, DATA_1K, mac, &mlen);
		OPENSSL_cleanse(value, sizeof(value));
		if (maclen != 32 || mlen != 32 || CRYPTO_memcmp(mac, w->out, 32) != 0) {
			return wrong(w, "the HMAC differs from OpenSSL's");
		}
		return CKR_OK;
	}
	OPENSSL_cleanse(value, sizeof(value));
	if (maclen != 32) {
		return wrong(w, "HMAC length");
	}
	if ((rv = P11->C_VerifyInit(w->session, &m, w->key)) != CKR_OK) {
		return refused(w, "C_VerifyInit", rv);
	}
	if ((rv = P11->C_Verify(w->session, w->in, DATA_1K, w->out, maclen)) != CKR_OK) {
		return rv == CKR_SIGNATURE_INVALID
		               ? wrong(w, "the module does not verify its own HMAC")
		               : refused(w, "C_Verify", rv);
	}
	return CKR_OK;
}

static CK_RV
hmac_call(struct bench_worker *w)
{
	CK_ULONG maclen;
	CK_RV rv;

	if ((rv = hmac_once(w, &maclen)) != CKR_OK) {
		return rv;
	}
	return maclen == 32 ? CKR_OK : wrong(w, "HMAC length");
}

/* ---- AES key generation ---------------------------------------------------------------------- */

static CK_RV
keygen_setup(struct bench_worker *w)
{
	CK_OBJECT_HANDLE k;
	CK_ULONG len = 0;
	CK_KEY_TYPE kt = 0;
	CK_ATTRIBUTE q[] = {{CKA_VALUE_LEN, &len, sizeof(len)}, {CKA_KEY_TYPE, &kt, sizeof(kt)}};
	CK_RV rv;

	if (!has_mech(w, CKM_AES_KEY_GEN)) {
		return refused(w, "C_GetMechanismInfo", CKR_MECHANISM_INVALID);
	}
	if ((rv = gen_aes(w, &k)) != CKR_OK) {
		return rv;
	}
	if ((rv = P11->C_GetAttributeValue(w->session, k, q, 2)) != CKR_OK) {
		P11->C_DestroyObject(w->session, k);
		return refused(w, "C_GetAttributeValue(CKA_VALUE_LEN)", rv);
	}
	if ((rv = P11->C_DestroyObject(w->session, k)) != CKR_OK) {
		return refused(w, "C_DestroyObject", rv);
	}
	return len == 32 && kt == CKK_AES ? CKR_OK
	                                  : wrong(w, "the generated key is not a 256-bit AES key");
}

static CK_RV
keygen_call(struct bench_worker *w)
{
	CK_OBJECT_HANDLE k;
	CK_RV rv;

	if ((rv = gen_aes(w, &k)) != CKR_OK) {
		return rv;
	}
	if ((rv = P11->C_DestroyObject(w->session, k)) != CKR_OK) {
		return refused(w, "C_DestroyObject", rv);
	}
	return CKR_OK;
}

/* ---- find objects ---------------------------------------------------------------------------- */

/* Each worker owns one session data object with a label unique to the process and worker;
 * the call finds it by class and label: C_FindObjectsInit + C_FindObjects + C_FindObjectsFinal. */
static CK_RV
find_once(struct bench_worker *w, CK_ULONG *count)
{
	CK_OBJECT_CLASS cls = CKO_DATA;
	CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof(cls)}, {CKA_LABEL, w->aux, w->aux_len}};
	CK_OBJECT_HANDLE found[2];
	CK_RV rv;

	*count = 0;
	if ((rv = P11->C_FindObjectsInit(w->session, t, 2)) != CKR_OK) {
		return refused(w, "C_FindObjectsInit", rv);
	}
	if ((rv = P11->C_FindObjects(w->session, found, 2, count)) != CKR_OK) {
		P11->C_FindObjectsFinal(w->session);
		return refused(w, "C_FindObjects", rv);
	}
	if ((rv = P11->C_FindObjectsFinal(w->session)) != CKR_OK) {
		return refused(w, "C_FindObjectsFinal", rv);
	}
	if (*count != 1 || found[0] != w->key) {
		return wrong(w, "C_FindObjects did not return exactly the worker's object");
	}
	return CKR_OK;
}

static CK_RV
find_setup(struct bench_worker *w)
{
	CK_OBJECT_CLASS cls = CKO_DATA;
	static const char value[] = "hsmgate-bench";
	CK_ATTRIBUTE t[] = {
	        {CKA_CLASS, &cls, sizeof(cls)},
	        {CKA_TOKEN, &no, sizeof(no)},
	        {CKA_LABEL, w->aux, 0},
	        {CKA_VALUE, (void *)value, sizeof(value) - 1},
	};
	CK_ULONG count;
	CK_RV rv;

	w->aux_len = (size_t)snprintf((char *)w->aux, sizeof(w->aux), "hsmgate-bench-%ld-%u",
	                              (long)getpid(), w->id);
	t[2].ulValueLen = w->aux_len;
	if ((rv = P11->C_CreateObject(w->session, t, 4, &w->key)) != CKR_OK) {
		return refused(w, "C_CreateObject(CKO_DATA)", rv);
	}
	return find_once(w, &count);
}

static CK_RV
find_call(struct bench_worker *w)
{
	CK_ULONG count;

	return find_once(w, &count);
}

/* ---- session: open + login + close ----------------------------------------------------------- */

/* Login state belongs to the application, not the session (PKCS #11 v2.40 §5.6): while
 * another thread's session is open the user is already logged in, so
 * CKR_USER_ALREADY_LOGGED_IN is a success here; with one thread every call logs in for real,
 * because closing the last session logs the user out. */
static CK_RV
session_once(struct bench_worker *w, CK_STATE *state)
{
	CK_SESSION_HANDLE h;
	CK_SESSION_INFO si;
	CK_RV rv;

	if ((rv = P11->C_OpenSession(w->ctx->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL,
	                             &h)) != CKR_OK) {
		return refused(w, "C_OpenSession", rv);
	}
	rv = P11->C_Login(h, CKU_USER, (unsigned char *)w->ctx->pin, w->ctx->pin_len);
	if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
		P11->C_CloseSession(h);
		return refused(w, "C_Login", rv);
	}
	if (state != NULL) {
		if ((rv = P11->C_GetSessionInfo(h, &si)) != CKR_OK) {
			P11->C_CloseSession(h);
			return refused(w, "C_GetSessionInfo", rv);
		}
		*state = si.state;
	}
	if ((rv = P11->C_CloseSession(h)) != CKR_OK) {
		return refused(w, "C_CloseSession", rv);
	}
	return CKR_OK;
}

static CK_RV
session_setup(struct bench_worker *w)
{
	CK_STATE state = 0;
	CK_RV rv;

	if ((rv = session_once(w, &state)) != CKR_OK) {
		return rv;
	}
	return state == CKS_RW_USER_FUNCTIONS
	               ? CKR_OK
	               : wrong(w, "the session is not logged in after C_Login");
}

static CK_RV
session_call(struct bench_worker *w)
{
	return session_once(w, NULL);
}

/* ---- random and digest ----------------------------------------------------------------------- */

static CK_RV
random_setup(struct bench_worker *w)
{
	static const unsigned char zero[32];
	CK_RV rv;

	memset(w->out, 0, 64);
	if ((rv = P11->C_GenerateRandom(w->session, w->out, 32)) != CKR_OK ||
	    (rv = P11->C_GenerateRandom(w->session, w->out + 32, 32)) != CKR_OK) {
		return refused(w, "C_GenerateRandom", rv);
	}
	/* PKCS #11 returns exactly the length asked for; two all-zero or equal outputs of 32 bytes
	 * mean the module filled nothing */
	if (memcmp(w->out, zero, 32) == 0 || memcmp(w->out, w->out + 32, 32) == 0) {
		return wrong(w, "C_GenerateRandom returned zeros or the same 32 bytes twice");
	}
	return CKR_OK;
}

static CK_RV
random_call(struct bench_worker *w)
{
	CK_RV rv;

	if ((rv = P11->C_GenerateRandom(w->session, w->out, 32)) != CKR_OK) {
		return refused(w, "C_GenerateRandom", rv);
	}
	return CKR_OK;
}

static CK_RV
digest_once(struct bench_worker *w, CK_ULONG *len)
{
	CK_MECHANISM m = {CKM_SHA256, NULL, 0};
	CK_RV rv;

	if ((rv = P11->C_DigestInit(w->session, &m)) != CKR_OK) {
		return refused(w, "C_DigestInit", rv);
	}
	*len = sizeof(w->out);
	if ((rv = P11->C_Digest(w->session, w->in, DATA_4K, w->out, len)) != CKR_OK) {
		return refused(w, "C_Digest", rv);
	}
	return CKR_OK;
}

static CK_RV
digest_setup(struct bench_worker *w)
{
	unsigned char want[32];
	CK_ULONG len;
	CK_RV rv;

	RAND_bytes(w->in, DATA_4K);
	if ((rv = digest_once(w, &len)) != CKR_OK) {
		return rv;
	}
	SHA256(w->in, DATA_4K, want);
	return len == 32 && memcmp(want, w->out, 32) == 0
	               ? CKR_OK
	               : wrong(w, "the digest differs from OpenSSL's SHA-256");
}

static CK_RV
digest_call(struct bench_worker *w)
{
	CK_ULONG len;
	CK_RV rv;

	if ((rv = digest_once(w, &len)) != CKR_OK) {
		return rv;
	}
	return len == 32 ? CKR_OK : wrong(w, "digest length");
}

/* ---- the table ------------------------------------------------------------------------------- */

const struct bench_op bench_ops[] = {
        {"random32", "C_GenerateRandom of 32 bytes", 0, 0, random_setup, random_call},
        {"digest-sha256-4k", "C_DigestInit + C_Digest (SHA-256) of 4 KiB", 0, 0, digest_setup,
         digest_call},
        {"ecdsa-p256-sign", "C_SignInit + C_Sign, CKM_ECDSA over a SHA-256 hash, P-256 session key",
         1, 0, ecdsa_setup, sign_call},
        {"ed25519-sign", "C_SignInit + C_Sign, CKM_EDDSA over 32 bytes, Ed25519 session key", 1, 0,
         ed25519_setup, sign_call},
        {"rsa2048-sign",
         "C_SignInit + C_Sign, CKM_SHA256_RSA_PKCS (or CKM_RSA_PKCS over a DigestInfo)", 1, 0,
         rsa_setup, sign_call},
        {"rsa2048-pss-sign",
         "C_SignInit + C_Sign, CKM_SHA256_RSA_PKCS_PSS (or CKM_RSA_PKCS_PSS), salt 32", 1, 0,
         rsa_pss_setup, sign_call},
        {"rsa2048-oaep-decrypt",
         "C_DecryptInit + C_Decrypt, CKM_RSA_PKCS_OAEP (SHA-256, else SHA-1) of 32 bytes", 1, 0,
         oaep_setup, oaep_call},
        {"aes256-gcm-encrypt-4k",
         "C_EncryptInit + C_Encrypt, CKM_AES_GCM (96-bit IV, 128-bit tag) of 4 KiB", 1, 0,
         gcm_setup, aes_call},
        {"aes256-cbc-encrypt-4k", "C_EncryptInit + C_Encrypt, CKM_AES_CBC of 4 KiB", 1, 0,
         cbc_setup, aes_call},
        {"hmac-sha256-1k", "C_SignInit + C_Sign, CKM_SHA256_HMAC of 1 KiB, 256-bit key", 1, 0,
         hmac_setup, hmac_call},
        {"aes-keygen", "C_GenerateKey (AES-256 session key) + C_DestroyObject", 1, 0, keygen_setup,
         keygen_call},
        {"find-objects",
         "C_FindObjectsInit + C_FindObjects + C_FindObjectsFinal by class and label", 1, 0,
         find_setup, find_call},
        {"session", "C_OpenSession + C_Login + C_CloseSession", 1, 1, session_setup, session_call},
        {NULL, NULL, 0, 0, NULL, NULL},
};

const struct bench_op *
bench_op_find(const char *name)
{
	const struct bench_op *op;

	if (strcmp(name, "open-session") == 0) {
		name = "session";
	}
	for (op = bench_ops; op->name != NULL; op++) {
		if (strcmp(op->name, name) == 0) {
			return op;
		}
	}
	return NULL;
}
