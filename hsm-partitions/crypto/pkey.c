/*
 * hsm-partitions/crypto/pkey.c — RSA, ECDSA and EdDSA operations with PKCS #11 input and
 * output formats: RSA_X_509 raw blocks, ECDSA signatures as r || s, the length rules of
 * the v2.40 Current Mechanisms tables. Every function here is pure with respect to the
 * operation: a fresh EVP_PKEY_CTX per call, so a size query can be answered by computing.
 */
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "hsm-partitions/crypto/mech_int.h"

#define ED25519_SIG 64

static int
is_rsa(const struct part_op *op)
{
	return op->m->key_type == CKK_RSA;
}

/* ---- init ------------------------------------------------------------------------------ */

static CK_RV
init_pss(struct part_op *op, const CK_MECHANISM *mech)
{
	const CK_RSA_PKCS_PSS_PARAMS *p = mech->pParameter;
	const char *h, *mgf;
	size_t emlen;

	if (p == NULL || mech->ulParameterLen != sizeof(*p)) {
		return CKR_MECHANISM_PARAM_INVALID;
	}
	if ((h = mech_md_name(p->hashAlg)) == NULL || (mgf = mech_mgf_md_name(p->mgf)) == NULL) {
		return CKR_MECHANISM_PARAM_INVALID;
	}
	/* v2.40 §2.1.15: with CKM_SHAx_RSA_PKCS_PSS, hashAlg must be that same hash */
	if (op->m->md != NULL && strcmp(op->m->md, h) != 0) {
		return CKR_MECHANISM_PARAM_INVALID;
	}
	op->hash = h;
	op->mgf_hash = mgf;
	op->hlen = (size_t)EVP_MD_get_size(EVP_get_digestbyname(h));
	/* RFC 8017 §9.1.1: emLen >= hLen + sLen + 2, emLen = ceil((modBits - 1) / 8) */
	emlen = ((size_t)EVP_PKEY_get_bits(op->pkey) - 1 + 7) / 8;
	if (p->sLen > emlen || emlen < op->hlen + p->sLen + 2) {
		return CKR_MECHANISM_PARAM_INVALID;
	}
	op->saltlen = (int)p->sLen;
	return CKR_OK;
}

static CK_RV
init_oaep(struct part_op *op, const CK_MECHANISM *mech)
{
	const CK_RSA_PKCS_OAEP_PARAMS *p = mech->pParameter;

	if (p == NULL || mech->ulParameterLen != sizeof(*p)) {
		return CKR_MECHANISM_PARAM_INVALID;
	}
	if ((op->hash = mech_md_name(p->hashAlg)) == NULL ||
	    (op->mgf_hash = mech_mgf_md_name(p->mgf)) == NULL) {
		return CKR_MECHANISM_PARAM_INVALID;
	}
	/*
	 * v2.40 §2.1.8: source is CKZ_DATA_SPECIFIED, the label in pSourceData. Some
	 * clients pass 0 when there is no label: that is the same encoding, accept it.
	 */
	if ((p->source != CKZ_DATA_SPECIFIED && !(p->source == 0 && p->ulSourceDataLen == 0)) ||
	    (p->pSourceData == NULL && p->ulSourceDataLen != 0) || p->ulSourceDataLen > 4096) {
		return CKR_MECHANISM_PARAM_INVALID;
	}
	op->hlen = (size_t)EVP_MD_get_size(EVP_get_digestbyname(op->hash));
	if (p->ulSourceDataLen > 0) {
		if ((op->label = OPENSSL_memdup(p->pSourceData, p->ulSourceDataLen)) == NULL) {
			return CKR_HOST_MEMORY;
		}
		op->label_len = p->ulSourceDataLen;
	}
	return CKR_OK;
}

CK_RV
pk_init(struct part_op *op, const CK_MECHANISM *mech, const struct part_key *key)
{
	BIGNUM *n = NULL;
	CK_RV rv = CKR_OK;

	if (key->pkey == NULL || !EVP_PKEY_up_ref(key->pkey)) {
		return CKR_KEY_TYPE_INCONSISTENT;
	}
	op->pkey = key->pkey;
	switch (op->m->fam) {
	case FAM_RSA_PKCS:
	case FAM_RSA_X509:
	case FAM_RSA_PKCS_MD:
	case FAM_RSA_PSS:
	case FAM_RSA_PSS_MD:
	case FAM_RSA_OAEP:
		op->k = (size_t)EVP_PKEY_get_size(op->pkey);
		if (!EVP_PKEY_get_bn_param(op->pkey, OSSL_PKEY_PARAM_RSA_N, &n) ||
		    (op->modulus = OPENSSL_malloc(op->k)) == NULL ||
		    BN_bn2binpad(n, op->modulus, (int)op->k) < 0) {
			rv = CKR_FUNCTION_FAILED;
			break;
		}
		if (op->m->fam == FAM_RSA_PSS || op->m->fam == FAM_RSA_PSS_MD) {
			rv = init_pss(op, mech);
		} else if (op->m->fam == FAM_RSA_OAEP) {
			rv = init_oaep(op, mech);
		} else if (mech->ulParameterLen != 0) {
			rv = CKR_MECHANISM_PARAM_INVALID;
		} else {
			op->hash = op->m->md;
		}
		break;
	case FAM_ECDSA:
	case FAM_ECDSA_MD:
		op->k = key->field_len;
		rv = mech->ulParameterLen != 0 ? CKR_MECHANISM_PARAM_INVALID : CKR_OK;
		break;
	case FAM_EDDSA:
		op->k = ED25519_SIG / 2;
		break;
	default:
		rv = CKR_MECHANISM_INVALID;
		break;
	}
	BN_free(n);
	return rv;
}

size_t
pk_out_len(const struct part_op *op)
{
	return is_rsa(op) ? op->k : 2 * op->k;
}

/* ---- RSA helpers ----------------------------------------------------------------------- */

enum pk_do { DO_SIGN, DO_VERIFY, DO_RECOVER, DO_ENCRYPT, DO_DECRYPT };

/* A context for one RSA operation, with padding and digests set for the mechanism. */
static EVP_PKEY_CTX *
rsa_ctx(const struct part_op *op, enum pk_do what)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, op->pkey, NULL);
	OSSL_PARAM params[2];
	int ok, pad;

	if (ctx == NULL) {
		return NULL;
	}
	switch (what) {
	case DO_SIGN:
		ok = EVP_PKEY_sign_init(ctx) > 0;
		break;
	case DO_VERIFY:
		ok = EVP_PKEY_verify_init(ctx) > 0;
		break;
	case DO_RECOVER:
		ok = EVP_PKEY_verify_recover_init(ctx) > 0;
		break;
	case DO_ENCRYPT:
		ok = EVP_PKEY_encrypt_init(ctx) > 0;
		break;
	case DO_DECRYPT:
		ok = EVP_PKEY_decrypt_init(ctx) > 0;
		break;
	default:
		ok = 0;
		break;
	}
	switch (op->m->fam) {
	case FAM_RSA_X509:
		pad = RSA_NO_PADDING;
		break;
	case FAM_RSA_PSS:
	case FAM_RSA_PSS_MD:
		pad = RSA_PKCS1_PSS_PADDING;
		break;
	case FAM_RSA_OAEP:
		pad = RSA_PKCS1_OAEP_PADDING;
		break;
	default:
		pad = RSA_PKCS1_PADDING;
		break;
	}
	ok = ok && EVP_PKEY_CTX_set_rsa_padding(ctx, pad) > 0;
	if (ok && op->hash != NULL && pad != RSA_PKCS1_OAEP_PADDING) {
		ok = EVP_PKEY_CTX_set_signature_md(ctx, EVP_get_digestbyname(op->hash)) > 0;
	}
	if (ok && pad == RSA_PKCS1_PSS_PADDING) {
		ok = EVP_PKEY_CTX_set_rsa_mgf1_md_name(ctx, op->mgf_hash, NULL) > 0 &&
		     EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, op->saltlen) > 0;
	}
	if (ok && pad == RSA_PKCS1_OAEP_PADDING) {
		ok = EVP_PKEY_CTX_set_rsa_oaep_md_name(ctx, op->hash, NULL) > 0 &&
		     EVP_PKEY_CTX_set_rsa_mgf1_md_name(ctx, op->mgf_hash, NULL) > 0;
		if (ok && op->label_len > 0) {
			/* through OSSL_PARAM: the set0 call's ownership rules leak on failure */
			params[0] = OSSL_PARAM_construct_octet_string(
			        OSSL_ASYM_CIPHER_PARAM_OAEP_LABEL, op->label, op->label_len);
			params[1] = OSSL_PARAM_construct_end();
			ok = EVP_PKEY_CTX_set_params(ctx, params) > 0;
		}
	}
	if (!ok) {
		EVP_PKEY_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

/*
 * RSA_X_509 input: v2.40 §2.1.7 "input ... at most k bytes"; shorter input is the same
 * integer, so left-pad with zeros to k. An integer not below n has no RSA image.
 */
static CK_RV
x509_block(const struct part_op *op, const unsigned char *in, size_t inlen, unsigned char *blk,
           CK_RV too_long, CK_RV too_big)
{
	if (inlen > op->k) {
		return too_long;
	}
	memset(blk, 0, op->k - inlen);
	memcpy(blk + op->k - inlen, in, inlen);
	if (memcmp(blk, op->modulus, op->k) >= 0) {
		return too_big;
	}
	return CKR_OK;
}

/* Runs one sign/encrypt/decrypt/recover into a fresh buffer of `cap` bytes. */
static CK_RV
rsa_run(const struct part_op *op, enum pk_do what, const unsigned char *in, size_t inlen,
        unsigned char **res, size_t *reslen, CK_RV fail)
{
	EVP_PKEY_CTX *ctx = rsa_ctx(op, what);
	unsigned char *r = NULL;
	size_t cap = op->k, outl = op->k;
	int ok;

	if (ctx == NULL) {
		return CKR_FUNCTION_FAILED;
	}
	if ((r = OPENSSL_malloc(cap)) == NULL) {
		EVP_PKEY_CTX_free(ctx);
		return CKR_HOST_MEMORY;
	}
	switch (what) {
	case DO_SIGN:
		ok = EVP_PKEY_sign(ctx, r, &outl, in, inlen) > 0;
		break;
	case DO_RECOVER:
		ok = EVP_PKEY_verify_recover(ctx, r, &outl, in, inlen) > 0;
		break;
	case DO_ENCRYPT:
		ok = EVP_PKEY_encrypt(ctx, r, &outl, in, inlen) > 0;
		break;
	case DO_DECRYPT:
		ok = EVP_PKEY_decrypt(ctx, r, &outl, in, inlen) > 0;
		break;
	default:
		ok = 0;
		break;
	}
	EVP_PKEY_CTX_free(ctx);
	if (!ok || outl > cap) {
		OPENSSL_clear_free(r, cap);
		return fail;
	}
	*res = r;
	*reslen = outl;
	return CKR_OK;
}

/* ---- ECDSA: r || s (v2.40 §2.3.1: "the concatenation of r and s, each nLen bytes") ---- */

static CK_RV
ecdsa_der_to_raw(const struct part_op *op, const unsigned char *der, size_t len, unsigned char *raw)
{
	const unsigned char *p = der;
	ECDSA_SIG *s = d2i_ECDSA_SIG(NULL, &p, (long)len);
	const BIGNUM *r, *sv;
	CK_RV rv = CKR_FUNCTION_FAILED;

	if (s == NULL) {
		return rv;
	}
	ECDSA_SIG_get0(s, &r, &sv);
	if (BN_bn2binpad(r, raw, (int)op->k) >= 0 &&
	    BN_bn2binpad(sv, raw + op->k, (int)op->k) >= 0) {
		rv = CKR_OK;
	}
	ECDSA_SIG_free(s);
	return rv;
}

static int
ecdsa_raw_to_der(const struct part_op *op, const unsigned char *raw, unsigned char **der)
{
	ECDSA_SIG *s = ECDSA_SIG_new();
	BIGNUM *r = BN_bin2bn(raw, (int)op->k, NULL),
	       *sv = BN_bin2bn(raw + op->k, (int)op->k, NULL);
	int n = -1;

	if (s != NULL && r != NULL && sv != NULL && ECDSA_SIG_set0(s, r, sv)) {
		r = sv = NULL; /* transferred */
		n = i2d_ECDSA_SIG(s, der);
	}
	BN_free(r);
	BN_free(sv);
	ECDSA_SIG_free(s);
	return n;
}

static CK_RV
ec_sign(const struct part_op *op, const unsigned char *in, size_t inlen, unsigned char **res,
        size_t *reslen)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, op->pkey, NULL);
	unsigned char der[160], *raw = NULL;
	size_t derlen = sizeof(der);
	CK_RV rv = CKR_FUNCTION_FAILED;

	/*
	 * CKM_ECDSA signs what it is given as the hash; OpenSSL truncates a longer one to the
	 * order's bit length as X9.62 and v2.40 §2.3.1 ("hashes larger than nLen bits") say.
	 */
	if (ctx == NULL || EVP_PKEY_sign_init(ctx) <= 0 ||
	    EVP_PKEY_sign(ctx, der, &derlen, in, inlen) <= 0) {
		goto out;
	}
	if ((raw = OPENSSL_malloc(2 * op->k)) == NULL) {
		rv = CKR_HOST_MEMORY;
		goto out;
	}
	if ((rv = ecdsa_der_to_raw(op, der, derlen, raw)) != CKR_OK) {
		goto out;
	}
	*res = raw;
	*reslen = 2 * op->k;
	raw = NULL; /* transferred */
out:
	OPENSSL_free(raw);
	EVP_PKEY_CTX_free(ctx);
	return rv;
}

static CK_RV
ec_verify(const struct part_op *op, const unsigned char *in, size_t inlen, const unsigned char *sig,
          size_t siglen)
{
	EVP_PKEY_CTX *ctx = NULL;
	unsigned char *der = NULL;
	int n;
	CK_RV rv = CKR_SIGNATURE_INVALID;

	if (siglen != 2 * op->k) {
		return CKR_SIGNATURE_LEN_RANGE;
	}
	if ((n = ecdsa_raw_to_der(op, sig, &der)) <= 0) {
		return CKR_FUNCTION_FAILED;
	}
	if ((ctx = EVP_PKEY_CTX_new_from_pkey(NULL, op->pkey, NULL)) == NULL ||
	    EVP_PKEY_verify_init(ctx) <= 0) {
		rv = CKR_FUNCTION_FAILED;
	} else if (EVP_PKEY_verify(ctx, der, (size_t)n, in, inlen) == 1) {
		rv = CKR_OK;
	}
	OPENSSL_free(der);
	EVP_PKEY_CTX_free(ctx);
	return rv;
}

/* ---- EdDSA ----------------------------------------------------------------------------- */

static CK_RV
ed_sign(const struct part_op *op, const unsigned char *in, size_t inlen, unsigned char **res,
        size_t *reslen)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char *sig = OPENSSL_malloc(ED25519_SIG);
	size_t len = ED25519_SIG;
	CK_RV rv = CKR_FUNCTION_FAILED;

	if (md != NULL && sig != NULL &&
	    EVP_DigestSignInit_ex(md, NULL, NULL, NULL, NULL, op->pkey, NULL) > 0 &&
	    EVP_DigestSign(md, sig, &len, in, inlen) > 0 && len == ED25519_SIG) {
		*res = sig;
		*reslen = len;
		sig = NULL; /* transferred */
		rv = CKR_OK;
	}
	OPENSSL_free(sig);
	EVP_MD_CTX_free(md);
	return rv;
}

static CK_RV
ed_verify(const struct part_op *op, const unsigned char *in, size_t inlen, const unsigned char *sig,
          size_t siglen)
{
	EVP_MD_CTX *md;
	CK_RV rv = CKR_SIGNATURE_INVALID;

	if (siglen != ED25519_SIG) {
		return CKR_SIGNATURE_LEN_RANGE;
	}
	if ((md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestVerifyInit_ex(md, NULL, NULL, NULL, NULL, op->pkey, NULL) <= 0) {
		rv = CKR_FUNCTION_FAILED;
	} else if (EVP_DigestVerify(md, sig, siglen, in, inlen) == 1) {
		rv = CKR_OK;
	}
	EVP_MD_CTX_free(md);
	return rv;
}

/* ---- the primitives -------------------------------------------------------------------- */

/* RFC 8017 §7.2.1 / §8.2.1: PKCS #1 v1.5 needs 11 bytes of padding. */
#define PKCS1_OVERHEAD 11

CK_RV
pk_sign(const struct part_op *op, const unsigned char *in, size_t inlen, unsigned char **res,
        size_t *reslen)
{
	unsigned char *blk = NULL;
	CK_RV rv;

	switch (op->m->fam) {
	case FAM_RSA_PKCS:
		if (inlen > op->k - PKCS1_OVERHEAD) {
			return CKR_DATA_LEN_RANGE;
		}
		return rsa_run(op, DO_SIGN, in, inlen, res, reslen, CKR_FUNCTION_FAILED);
	case FAM_RSA_X509:
		if ((blk = OPENSSL_malloc(op->k)) == NULL) {
			return CKR_HOST_MEMORY;
		}
		if ((rv = x509_block(op, in, inlen, blk, CKR_DATA_LEN_RANGE, CKR_DATA_INVALID)) ==
		    CKR_OK) {
			rv = rsa_run(op, DO_SIGN, blk, op->k, res, reslen, CKR_FUNCTION_FAILED);
		}
		OPENSSL_clear_free(blk, op->k);
		return rv;
	case FAM_RSA_PSS:
		/* v2.40 §2.1.14: the input is the message hash, hLen bytes */
		if (inlen != op->hlen) {
			return CKR_DATA_LEN_RANGE;
		}
		return rsa_run(op, DO_SIGN, in, inlen, res, reslen, CKR_FUNCTION_FAILED);
	case FAM_RSA_PKCS_MD:
	case FAM_RSA_PSS_MD:
		return rsa_run(op, DO_SIGN, in, inlen, res, reslen, CKR_FUNCTION_FAILED);
	case FAM_ECDSA:
	case FAM_ECDSA_MD:
		return ec_sign(op, in, inlen, res, reslen);
	case FAM_EDDSA:
		return ed_sign(op, in, inlen, res, reslen);
	default:
		return CKR_MECHANISM_INVALID;
	}
}

CK_RV
pk_verify(const struct part_op *op, const unsigned char *in, size_t inlen, const unsigned char *sig,
          size_t siglen)
{
	EVP_PKEY_CTX *ctx = NULL;
	unsigned char *blk = NULL, *rec = NULL;
	size_t reclen = 0;
	CK_RV rv;

	switch (op->m->fam) {
	case FAM_ECDSA:
	case FAM_ECDSA_MD:
		return ec_verify(op, in, inlen, sig, siglen);
	case FAM_EDDSA:
		return ed_verify(op, in, inlen, sig, siglen);
	case FAM_RSA_PKCS:
	case FAM_RSA_X509:
	case FAM_RSA_PSS:
	case FAM_RSA_PKCS_MD:
	case FAM_RSA_PSS_MD:
		break;
	default:
		return CKR_MECHANISM_INVALID;
	}
	if ((op->m->fam == FAM_RSA_PKCS && inlen > op->k - PKCS1_OVERHEAD) ||
	    (op->m->fam == FAM_RSA_PSS && inlen != op->hlen)) {
		return CKR_DATA_LEN_RANGE;
	}
	if (siglen != op->k) {
		return CKR_SIGNATURE_LEN_RANGE;
	}
	if (op->m->fam == FAM_RSA_X509) {
		/* raw: recover the block and compare it with the zero-extended input */
		if (inlen > op->k) {
			return CKR_DATA_LEN_RANGE;
		}
		if ((blk = OPENSSL_zalloc(op->k)) == NULL) {
			return CKR_HOST_MEMORY;
		}
		memcpy(blk + op->k - inlen, in, inlen);
		rv = rsa_run(op, DO_RECOVER, sig, siglen, &rec, &reclen, CKR_SIGNATURE_INVALID);
		if (rv == CKR_OK && (reclen != op->k || CRYPTO_memcmp(rec, blk, op->k) != 0)) {
			rv = CKR_SIGNATURE_INVALID;
		}
		OPENSSL_clear_free(rec, op->k);
		OPENSSL_clear_free(blk, op->k);
		return rv;
	}
	if ((ctx = rsa_ctx(op, DO_VERIFY)) == NULL) {
		return CKR_FUNCTION_FAILED;
	}
	rv = EVP_PKEY_verify(ctx, sig, siglen, in, inlen) == 1 ? CKR_OK : CKR_SIGNATURE_INVALID;
	EVP_PKEY_CTX_free(ctx);
	return rv;
}

CK_RV
pk_encrypt(const struct part_op *op, const unsigned char *in, size_t inlen, unsigned char **res,
           size_t *reslen)
{
	unsigned char *blk;
	CK_RV rv;

	switch (op->m->fam) {
	case FAM_RSA_PKCS:
		if (inlen > op->k - PKCS1_OVERHEAD) {
			return CKR_DATA_LEN_RANGE;
		}
		break;
	case FAM_RSA_OAEP:
		/* RFC 8017 §7.1.1: mLen <= k - 2hLen - 2 */
		if (op->k < 2 * op->hlen + 2 || inlen > op->k - 2 * op->hlen - 2) {
			return CKR_DATA_LEN_RANGE;
		}
		break;
	case FAM_RSA_X509:
		if ((blk = OPENSSL_malloc(op->k)) == NULL) {
			return CKR_HOST_MEMORY;
		}
		if ((rv = x509_block(op, in, inlen, blk, CKR_DATA_LEN_RANGE, CKR_DATA_INVALID)) ==
		    CKR_OK) {
			rv = rsa_run(op, DO_ENCRYPT, blk, op->k, res, reslen, CKR_FUNCTION_FAILED);
		}
		OPENSSL_clear_free(blk, op->k);
		return rv;
	default:
		return CKR_MECHANISM_INVALID;
	}
	return rsa_run(op, DO_ENCRYPT, in, inlen, res, reslen, CKR_FUNCTION_FAILED);
}

CK_RV
pk_decrypt(const struct part_op *op, const unsigned char *in, size_t inlen, unsigned char **res,
           size_t *reslen)
{
	/* v2.40 §2.1.6-8 tables: the ciphertext is exactly k bytes */
	if (inlen != op->k) {
		return CKR_ENCRYPTED_DATA_LEN_RANGE;
	}
	if (op->m->fam == FAM_RSA_X509 && memcmp(in, op->modulus, op->k) >= 0) {
		return CKR_ENCRYPTED_DATA_INVALID;
	}
	return rsa_run(op, DO_DECRYPT, in, inlen, res, reslen, CKR_ENCRYPTED_DATA_INVALID);
}

CK_RV
pk_verify_recover(const struct part_op *op, const unsigned char *sig, size_t siglen,
                  unsigned char **res, size_t *reslen)
{
	if (siglen != op->k) {
		return CKR_SIGNATURE_LEN_RANGE;
	}
	return rsa_run(op, DO_RECOVER, sig, siglen, res, reslen, CKR_SIGNATURE_INVALID);
}
