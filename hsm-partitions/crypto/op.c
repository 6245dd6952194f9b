/*
 * hsm-partitions/crypto/op.c — operations: init, the single-part / multi-part / final
 * calls with PKCS #11 output-buffer semantics, and the symmetric mechanisms (AES modes,
 * AES key wrap as a cipher, HMAC, CMAC, digests). Public-key primitives are in pkey.c.
 *
 * How "the operation is not consumed" is kept (PKCS #11 v2.40 base §5.2: a call that
 * returns CKR_BUFFER_TOO_SMALL, or answers a size query, leaves the operation active):
 *   - an update's output length is computed exactly before any state changes: we do our
 *     own block buffering, so EVP never holds back bytes we cannot account for;
 *   - a single-part call and a final compute their whole result on duplicated EVP
 *     contexts, keep it, and hand it out when the caller's buffer is large enough. The
 *     operation's own state is untouched until then, so a different input on the next
 *     call can still be computed afresh.
 */
#include <limits.h>
#include <stdint.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "hsm-partitions/crypto/mech_int.h"

#define AES_BLOCK 16

/* PKCS #11 v3.0 §2.3.14 CK_EDDSA_PARAMS (not in this pkcs11.h) */
struct eddsa_params {
	CK_BBOOL phFlag;
	CK_ULONG ulContextDataLen;
	CK_BYTE_PTR pContextData;
};

/* CK_GCM_PARAMS as first published in v2.40, without ulIvBits; some clients still send it */
struct gcm_params_v240 {
	CK_BYTE_PTR pIv;
	CK_ULONG ulIvLen;
	CK_BYTE_PTR pAAD;
	CK_ULONG ulAADLen;
	CK_ULONG ulTagBits;
};

/* ---- buffers --------------------------------------------------------------------------- */

CK_RV
sbuf_append(struct sbuf *b, const unsigned char *p, size_t len)
{
	if (len == 0) {
		return CKR_OK;
	}
	if (len > SIZE_MAX / 2 - b->len) {
		return CKR_DATA_LEN_RANGE;
	}
	if (b->len + len > b->cap) {
		size_t cap = b->cap == 0 ? 256 : b->cap;
		unsigned char *n;

		while (cap < b->len + len) {
			cap *= 2;
		}
		/* not realloc: the old buffer may hold plaintext and must be wiped */
		if ((n = OPENSSL_malloc(cap)) == NULL) {
			return CKR_HOST_MEMORY;
		}
		if (b->len > 0) {
			memcpy(n, b->p, b->len);
		}
		OPENSSL_clear_free(b->p, b->cap);
		b->p = n;
		b->cap = cap;
	}
	memcpy(b->p + b->len, p, len);
	b->len += len;
	return CKR_OK;
}

void
sbuf_wipe(struct sbuf *b)
{
	OPENSSL_clear_free(b->p, b->cap);
	b->p = NULL;
	b->len = b->cap = 0;
}

static void
res_clear(struct part_op *op)
{
	OPENSSL_clear_free(op->res, op->reslen);
	op->res = NULL;
	op->reslen = 0;
	op->res_kind = 0;
}

int
part_op_heavy(const struct part_op *op)
{
	/* Handing a call to another thread costs a wake-up and copies, 10-20 µs on a VM: worth
	 * it for an RSA private-key operation (about 0.3 ms at 2048 bits, 2 ms at 4096), not for
	 * an ECDSA or Ed25519 signature (20-40 µs), measured in docs/PERFORMANCE.md. */
	return op != NULL && op->pkey != NULL && op->m->key_type == CKK_RSA &&
	       (op->kind == PART_OP_SIGN || op->kind == PART_OP_SIGN_RECOVER ||
	        op->kind == PART_OP_DECRYPT);
}

CK_ULONG
part_op_out_max(const struct part_op *op)
{
	return part_op_heavy(op) ? (CK_ULONG)op->k : 0;
}

void
part_op_free(struct part_op *op)
{
	if (op == NULL) {
		return;
	}
	EVP_CIPHER_CTX_free(op->cctx);
	EVP_MD_CTX_free(op->md);
	EVP_MAC_CTX_free(op->mac);
	EVP_PKEY_free(op->pkey);
	OPENSSL_secure_clear_free(op->secret, op->secret_len);
	OPENSSL_free(op->modulus);
	OPENSSL_free(op->label);
	sbuf_wipe(&op->acc);
	res_clear(op);
	OPENSSL_cleanse(op, sizeof(*op));
	OPENSSL_free(op);
}

/* ---- init ------------------------------------------------------------------------------ */

static CK_FLAGS
kind_flag(enum part_op_kind kind)
{
	switch (kind) {
	case PART_OP_ENCRYPT:
		return CKF_ENCRYPT;
	case PART_OP_DECRYPT:
		return CKF_DECRYPT;
	case PART_OP_SIGN:
		return CKF_SIGN;
	case PART_OP_VERIFY:
		return CKF_VERIFY;
	case PART_OP_SIGN_RECOVER:
		return CKF_SIGN_RECOVER;
	case PART_OP_VERIFY_RECOVER:
		return CKF_VERIFY_RECOVER;
	case PART_OP_DIGEST:
		return CKF_DIGEST;
	default:
		return 0;
	}
}

static int
is_encrypt(const struct part_op *op)
{
	return op->kind == PART_OP_ENCRYPT;
}

/* The key type a mechanism accepts; HMAC also takes the matching CKK_SHA*_HMAC type. */
static int
key_type_ok(const struct mech_desc *m, CK_KEY_TYPE t)
{
	if (t == m->key_type) {
		return 1;
	}
	if (m->fam != FAM_HMAC) {
		return 0;
	}
	switch (m->type) {
	case CKM_SHA_1_HMAC:
		return t == CKK_SHA_1_HMAC;
	case CKM_SHA224_HMAC:
		return t == CKK_SHA224_HMAC;
	case CKM_SHA256_HMAC:
		return t == CKK_SHA256_HMAC;
	case CKM_SHA384_HMAC:
		return t == CKK_SHA384_HMAC;
	case CKM_SHA512_HMAC:
		return t == CKK_SHA512_HMAC;
	default:
		return 0;
	}
}

static CK_OBJECT_CLASS
class_for(const struct mech_desc *m, enum part_op_kind kind)
{
	if (m->key_type == CKK_AES || m->key_type == CKK_GENERIC_SECRET) {
		return CKO_SECRET_KEY;
	}
	switch (kind) {
	case PART_OP_ENCRYPT:
	case PART_OP_VERIFY:
	case PART_OP_VERIFY_RECOVER:
		return CKO_PUBLIC_KEY;
	default:
		return CKO_PRIVATE_KEY;
	}
}

static const char *
aes_name(enum mech_family fam, size_t keylen)
{
	static const char *const names[][3] = {
	        {"AES-128-ECB", "AES-192-ECB", "AES-256-ECB"},
	        {"AES-128-CBC", "AES-192-CBC", "AES-256-CBC"},
	        {"AES-128-CTR", "AES-192-CTR", "AES-256-CTR"},
	        {"AES-128-GCM", "AES-192-GCM", "AES-256-GCM"},
	        {"AES-128-WRAP", "AES-192-WRAP", "AES-256-WRAP"},
	        {"AES-128-WRAP-PAD", "AES-192-WRAP-PAD", "AES-256-WRAP-PAD"},
	};
	size_t i = keylen == 16 ? 0 : keylen == 24 ? 1 : 2;

	switch (fam) {
	case FAM_AES_ECB:
		return names[0][i];
	case FAM_AES_CBC:
	case FAM_AES_CBC_PAD:
	case FAM_AES_CMAC: /* CMAC is named by its CBC cipher */
		return names[1][i];
	case FAM_AES_CTR:
		return names[2][i];
	case FAM_AES_GCM:
		return names[3][i];
	case FAM_AES_KW:
		return names[4][i];
	case FAM_AES_KWP:
		return names[5][i];
	default:
		return NULL;
	}
}

static CK_RV
cipher_start(struct part_op *op, const struct part_key *key, const unsigned char *iv, size_t ivlen)
{
	EVP_CIPHER *c = EVP_CIPHER_fetch(NULL, aes_name(op->m->fam, key->secret_len), NULL);
	int enc = is_encrypt(op);
	CK_RV rv = CKR_FUNCTION_FAILED;

	if (c == NULL || (op->cctx = EVP_CIPHER_CTX_new()) == NULL) {
		goto out;
	}
	if (!EVP_CipherInit_ex2(op->cctx, c, NULL, NULL, enc, NULL)) {
		goto out;
	}
	if (op->m->fam == FAM_AES_GCM &&
	    EVP_CIPHER_CTX_ctrl(op->cctx, EVP_CTRL_AEAD_SET_IVLEN, (int)ivlen, NULL) <= 0) {
		rv = CKR_MECHANISM_PARAM_INVALID;
		goto out;
	}
	if (!EVP_CipherInit_ex2(op->cctx, NULL, key->secret, iv, enc, NULL) ||
	    !EVP_CIPHER_CTX_set_padding(op->cctx, 0)) {
		goto out;
	}
	rv = CKR_OK;
out:
	EVP_CIPHER_free(c);
	return rv;
}

static CK_RV
init_ctr(struct part_op *op, const CK_MECHANISM *mech, const struct part_key *key)
{
	const CK_AES_CTR_PARAMS *p = mech->pParameter;
	unsigned long long ctr = 0;
	size_t i;

	if (p == NULL || mech->ulParameterLen != sizeof(*p)) {
		return CKR_MECHANISM_PARAM_INVALID;
	}
	/* PKCS #11 v2.40 Current Mechanisms, CK_AES_CTR_PARAMS: "0 < ulCounterBits <= 128" */
	if (p->ulCounterBits == 0 || p->ulCounterBits > 128) {
		return CKR_MECHANISM_PARAM_INVALID;
	}
	/*
	 * Only the low ulCounterBits of cb are the counter. OpenSSL increments all 128
	 * bits, which is the same as long as the counter never wraps: refuse the data that
	 * would make it wrap (beyond 2^60 blocks nobody will get there).
	 */
	if (p->ulCounterBits < 60) {
		for (i = 8; i < 16; i++) {
			ctr = ctr << 8 | p->cb[i];
		}
		ctr &= (1ULL << p->ulCounterBits) - 1;
		op->ctr_left = ((1ULL << p->ulCounterBits) - ctr) * AES_BLOCK;
		op->ctr_bounded = 1;
	}
	return cipher_start(op, key, p->cb, sizeof(p->cb));
}

static int
gcm_tag_ok(CK_ULONG bits)
{
	/* NIST SP 800-38D §5.2.1.2: 128, 120, 112, 104, 96, and for some uses 64 and 32 */
	switch (bits) {
	case 32:
	case 64:
	case 96:
	case 104:
	case 112:
	case 120:
	case 128:
		return 1;
	default:
		return 0;
	}
}

static CK_RV
init_gcm(struct part_op *op, const CK_MECHANISM *mech, const struct part_key *key)
{
	const unsigned char *iv, *aad;
	CK_ULONG ivlen, aadlen, tagbits;
	int outl;
	CK_RV rv;

	if (mech->pParameter != NULL && mech->ulParameterLen == sizeof(CK_GCM_PARAMS)) {
		const CK_GCM_PARAMS *p = mech->pParameter;

		iv = p->pIv, ivlen = p->ulIvLen, aad = p->pAAD, aadlen = p->ulAADLen;
		tagbits = p->ulTagBits;
	} else if (mech->pParameter != NULL &&
	           mech->ulParameterLen == sizeof(struct gcm_params_v240)) {
		const struct gcm_params_v240 *p = mech->pParameter;

		iv = p->pIv, ivlen = p->ulIvLen, aad = p->pAAD, aadlen = p->ulAADLen;
		tagbits = p->ulTagBits;
	} else {
		return CKR_MECHANISM_PARAM_INVALID;
	}
	/*
	 * ulIvLen may be 1..2^32-1 in the spec; OpenSSL's GCM takes at most 128 bytes.
	 * ulIvBits is ignored: clients disagree on its meaning (errata of v2.40).
	 */
	if (iv == NULL || ivlen == 0 || ivlen > 128 || (aad == NULL && aadlen != 0) ||
	    !gcm_tag_ok(tagbits)) {
		return CKR_MECHANISM_PARAM_INVALID;
	}
	op->taglen = tagbits / 8;
	if ((rv = cipher_start(op, key, iv, ivlen)) != CKR_OK) {
		return rv;
	}
	if (aadlen > 0 && !EVP_CipherUpdate(op->cctx, NULL, &outl, aad, (int)aadlen)) {
		return CKR_FUNCTION_FAILED;
	}
	return CKR_OK;
}

static CK_RV
init_sym(struct part_op *op, const CK_MECHANISM *mech, const struct part_key *key)
{
	const struct mech_desc *m = op->m;
	OSSL_PARAM params[2];
	EVP_MAC *mac = NULL;
	CK_RV rv = CKR_FUNCTION_FAILED;

	switch (m->fam) {
	case FAM_AES_ECB:
		if (mech->ulParameterLen != 0) {
			return CKR_MECHANISM_PARAM_INVALID;
		}
		return cipher_start(op, key, NULL, 0);
	case FAM_AES_CBC:
	case FAM_AES_CBC_PAD:
		/* v2.40 §2.10: "It has a parameter, a 16-byte initialization vector." */
		if (mech->pParameter == NULL || mech->ulParameterLen != AES_BLOCK) {
			return CKR_MECHANISM_PARAM_INVALID;
		}
		return cipher_start(op, key, mech->pParameter, AES_BLOCK);
	case FAM_AES_CTR:
		return init_ctr(op, mech, key);
	case FAM_AES_GCM:
		return init_gcm(op, mech, key);
	case FAM_AES_KW:
	case FAM_AES_KWP:
		/* an optional IV: 8 bytes for RFC 3394, 4 for RFC 5649 (v2.40 §2.14) */
		op->kw_ivlen = m->fam == FAM_AES_KW ? 8 : 4;
		if (mech->ulParameterLen == 0) {
			op->kw_ivlen = 0;
		} else if (mech->pParameter == NULL || mech->ulParameterLen != op->kw_ivlen) {
			return CKR_MECHANISM_PARAM_INVALID;
		} else {
			memcpy(op->kw_iv, mech->pParameter, op->kw_ivlen);
		}
		if ((op->secret = OPENSSL_secure_malloc(key->secret_len)) == NULL) {
			return CKR_HOST_MEMORY;
		}
		memcpy(op->secret, key->secret, key->secret_len);
		op->secret_len = key->secret_len;
		return CKR_OK;
	case FAM_HMAC:
	case FAM_AES_CMAC:
		if (mech->ulParameterLen != 0) {
			return CKR_MECHANISM_PARAM_INVALID;
		}
		if (m->fam == FAM_HMAC) {
			mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
			params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
			                                             (char *)m->md, 0);
		} else {
			mac = EVP_MAC_fetch(NULL, "CMAC", NULL);
			params[0] = OSSL_PARAM_construct_utf8_string(
			        OSSL_MAC_PARAM_CIPHER, (char *)aes_name(m->fam, key->secret_len),
			        0);
		}
		params[1] = OSSL_PARAM_construct_end();
		if (mac == NULL || (op->mac = EVP_MAC_CTX_new(mac)) == NULL ||
		    !EVP_MAC_init(op->mac, key->secret, key->secret_len, params)) {
			goto out;
		}
		op->maclen = EVP_MAC_CTX_get_mac_size(op->mac);
		rv = CKR_OK;
		break;
	default:
		rv = CKR_MECHANISM_INVALID;
		break;
	}
out:
	EVP_MAC_free(mac);
	return rv;
}

static CK_RV
init_digest(struct part_op *op, const char *name)
{
	EVP_MD *md = EVP_MD_fetch(NULL, name, NULL);
	CK_RV rv = CKR_FUNCTION_FAILED;

	if (md != NULL && (op->md = EVP_MD_CTX_new()) != NULL &&
	    EVP_DigestInit_ex2(op->md, md, NULL)) {
		rv = CKR_OK;
	}
	EVP_MD_free(md);
	return rv;
}

CK_RV
part_mech_op_init(enum part_op_kind kind, const CK_MECHANISM *mech, const struct part_key *key,
                  struct part_op **out)
{
	const struct mech_desc *m;
	struct part_op *op = NULL;
	CK_RV rv;

	if (mech == NULL || out == NULL ||
	    (mech->pParameter == NULL && mech->ulParameterLen != 0)) {
		return mech == NULL || out == NULL ? CKR_ARGUMENTS_BAD
		                                   : CKR_MECHANISM_PARAM_INVALID;
	}
	*out = NULL;
	if ((m = mech_find(mech->mechanism)) == NULL || (m->flags & kind_flag(kind)) == 0) {
		return CKR_MECHANISM_INVALID;
	}
	if (kind != PART_OP_DIGEST) {
		if (key == NULL) {
			return CKR_ARGUMENTS_BAD;
		}
		if (!key_type_ok(m, key->type) || key->cls != class_for(m, kind)) {
			return CKR_KEY_TYPE_INCONSISTENT;
		}
		if (key->size < m->min || key->size > m->max) {
			return CKR_KEY_SIZE_RANGE;
		}
	} else if (mech->ulParameterLen != 0) {
		return CKR_MECHANISM_PARAM_INVALID;
	}
	if ((op = OPENSSL_zalloc(sizeof(*op))) == NULL) {
		return CKR_HOST_MEMORY;
	}
	op->kind = kind;
	op->m = m;
	switch (m->fam) {
	case FAM_DIGEST:
		rv = init_digest(op, m->md);
		break;
	case FAM_RSA_PKCS:
	case FAM_RSA_X509:
	case FAM_RSA_PKCS_MD:
	case FAM_RSA_PSS:
	case FAM_RSA_PSS_MD:
	case FAM_RSA_OAEP:
	case FAM_ECDSA:
	case FAM_ECDSA_MD:
	case FAM_EDDSA:
		if (m->fam == FAM_EDDSA && mech->ulParameterLen != 0) {
			const struct eddsa_params *p = mech->pParameter;

			/* pure Ed25519 only: Ed25519ph/ctx need OpenSSL 3.2 */
			if (mech->ulParameterLen != sizeof(*p) || p->phFlag ||
			    p->ulContextDataLen != 0) {
				rv = CKR_MECHANISM_PARAM_INVALID;
				break;
			}
		}
		if ((rv = pk_init(op, mech, key)) == CKR_OK && m->md != NULL) {
			rv = init_digest(op, m->md); /* hash-then-sign: op.c hashes */
		}
		break;
	default:
		rv = init_sym(op, mech, key);
		break;
	}
	if (rv != CKR_OK) {
		part_op_free(op);
		return rv;
	}
	*out = op;
	return CKR_OK;
}

/* ---- AES ciphers ----------------------------------------------------------------------- */

/* The block-mode bytes kept back after an update of `inlen` (our buffering rule). */
static size_t
block_keep(const struct part_op *op, size_t total)
{
	/*
	 * CBC_PAD decryption must keep the last full block: only the final knows it holds
	 * the padding.
	 */
	if (op->m->fam == FAM_AES_CBC_PAD && !is_encrypt(op) && total % AES_BLOCK == 0) {
		return total > 0 ? AES_BLOCK : 0;
	}
	return total % AES_BLOCK;
}

/* The exact output of an update of `inlen` bytes. */
static size_t
cipher_update_len(const struct part_op *op, size_t inlen)
{
	size_t total;

	switch (op->m->fam) {
	case FAM_AES_ECB:
	case FAM_AES_CBC:
	case FAM_AES_CBC_PAD:
		total = op->blen + inlen;
		return total - block_keep(op, total);
	case FAM_AES_CTR:
		return inlen;
	case FAM_AES_GCM:
		return is_encrypt(op) ? inlen : 0; /* decryption waits for the tag */
	default:
		return 0;
	}
}

static CK_RV
evp_update(EVP_CIPHER_CTX *ctx, unsigned char *out, const unsigned char *in, size_t len)
{
	int outl = 0;

	if (len == 0) {
		return CKR_OK;
	}
	if (len > INT_MAX || !EVP_CipherUpdate(ctx, out, &outl, in, (int)len) ||
	    (size_t)outl != len) {
		return CKR_FUNCTION_FAILED;
	}
	return CKR_OK;
}

/*
 * One update on (ctx, blk, blen), output into `out` which holds cipher_update_len().
 * `op` gives the mode; the state is passed separately so that a single-part call can run
 * it on a duplicate.
 */
static CK_RV
cipher_update_on(struct part_op *op, EVP_CIPHER_CTX *ctx, unsigned char *blk, size_t *blen,
                 const unsigned char *in, size_t inlen, unsigned char *out)
{
	size_t total, keep, nout, fill;
	CK_RV rv;

	switch (op->m->fam) {
	case FAM_AES_CTR:
		if (op->ctr_bounded && inlen > op->ctr_left) {
			return is_encrypt(op) ? CKR_DATA_LEN_RANGE : CKR_ENCRYPTED_DATA_LEN_RANGE;
		}
		op->ctr_left -= op->ctr_bounded ? inlen : 0;
		return evp_update(ctx, out, in, inlen);
	case FAM_AES_GCM:
		if (!is_encrypt(op)) {
			return sbuf_append(&op->acc, in, inlen);
		}
		return evp_update(ctx, out, in, inlen);
	default:
		break;
	}
	total = *blen + inlen;
	keep = block_keep(op, total);
	nout = total - keep;
	if (nout > 0) {
		if (*blen > 0) {
			fill = AES_BLOCK - *blen;
			memcpy(blk + *blen, in, fill);
			if ((rv = evp_update(ctx, out, blk, AES_BLOCK)) != CKR_OK) {
				return rv;
			}
			in += fill, inlen -= fill, out += AES_BLOCK, nout -= AES_BLOCK;
			*blen = 0;
		}
		if ((rv = evp_update(ctx, out, in, nout)) != CKR_OK) {
			return rv;
		}
		in += nout, inlen -= nout;
	}
	memcpy(blk + *blen, in, inlen);
	*blen += inlen;
	OPENSSL_cleanse(blk + *blen, AES_BLOCK - *blen);
	return CKR_OK;
}

/* GCM decryption of ciphertext || tag, all at once: plaintext only if the tag verifies. */
static CK_RV
gcm_decrypt(const struct part_op *op, EVP_CIPHER_CTX *ctx, const unsigned char *in, size_t inlen,
            unsigned char **res, size_t *reslen)
{
	size_t ctlen;
	unsigned char *pt = NULL;
	int outl = 0;
	CK_RV rv;

	if (inlen < op->taglen) {
		return CKR_ENCRYPTED_DATA_LEN_RANGE;
	}
	ctlen = inlen - op->taglen;
	if ((pt = OPENSSL_malloc(ctlen + 1)) == NULL) {
		return CKR_HOST_MEMORY;
	}
	if ((rv = evp_update(ctx, pt, in, ctlen)) != CKR_OK) {
		goto out;
	}
	if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, (int)op->taglen,
	                        (void *)(in + ctlen)) <= 0) {
		rv = CKR_FUNCTION_FAILED;
		goto out;
	}
	/* v2.40 Current Mechanisms, AES-GCM: a tag that does not verify is
	 * CKR_ENCRYPTED_DATA_INVALID */
	if (EVP_CipherFinal_ex(ctx, pt + ctlen, &outl) <= 0) {
		rv = CKR_ENCRYPTED_DATA_INVALID;
		goto out;
	}
	*res = pt;
	*reslen = ctlen;
	pt = NULL; /* transferred */
	rv = CKR_OK;
out:
	OPENSSL_clear_free(pt, ctlen + 1);
	return rv;
}

/* The final of a cipher, on a context the caller may throw away. */
static CK_RV
cipher_final_on(const struct part_op *op, EVP_CIPHER_CTX *ctx, const unsigned char *blk,
                size_t blen, unsigned char **res, size_t *reslen)
{
	unsigned char b[AES_BLOCK], *r = NULL;
	size_t n = 0, pad, i;
	int outl = 0;
	unsigned bad;
	CK_RV rv = CKR_OK;

	switch (op->m->fam) {
	case FAM_AES_ECB:
	case FAM_AES_CBC:
		if (blen != 0) {
			return is_encrypt(op) ? CKR_DATA_LEN_RANGE : CKR_ENCRYPTED_DATA_LEN_RANGE;
		}
		break;
	case FAM_AES_CBC_PAD:
		if (is_encrypt(op)) {
			/* PKCS #7 (RFC 5652 §6.3): always 1..16 bytes of value n */
			pad = AES_BLOCK - blen;
			memcpy(b, blk, blen);
			memset(b + blen, (int)pad, pad);
			if ((rv = evp_update(ctx, b, b, AES_BLOCK)) != CKR_OK) {
				goto out;
			}
			n = AES_BLOCK;
			break;
		}
		if (blen != AES_BLOCK) {
			return CKR_ENCRYPTED_DATA_LEN_RANGE;
		}
		if ((rv = evp_update(ctx, b, blk, AES_BLOCK)) != CKR_OK) {
			goto out;
		}
		/* check the padding without branching on the plaintext bytes */
		pad = b[AES_BLOCK - 1];
		bad = (unsigned)(pad == 0) | (unsigned)(pad > AES_BLOCK);
		for (i = 0; i < AES_BLOCK; i++) {
			unsigned in_pad = (unsigned)(i >= AES_BLOCK - pad);

			bad |= in_pad & (unsigned)(b[i] != pad);
		}
		if (bad) {
			rv = CKR_ENCRYPTED_DATA_INVALID;
			goto out;
		}
		n = AES_BLOCK - pad;
		break;
	case FAM_AES_CTR:
		break;
	case FAM_AES_GCM:
		if (!is_encrypt(op)) {
			return gcm_decrypt(op, ctx, op->acc.p, op->acc.len, res, reslen);
		}
		if (EVP_CipherFinal_ex(ctx, b, &outl) <= 0 ||
		    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, (int)op->taglen, b) <= 0) {
			rv = CKR_FUNCTION_FAILED;
			goto out;
		}
		n = op->taglen;
		break;
	default:
		return CKR_FUNCTION_FAILED;
	}
	if ((r = OPENSSL_malloc(n + 1)) == NULL) {
		rv = CKR_HOST_MEMORY;
		goto out;
	}
	memcpy(r, b, n);
	*res = r;
	*reslen = n;
out:
	OPENSSL_cleanse(b, sizeof(b));
	return rv;
}

/* AES key wrap as a single-part cipher (RFC 3394 / RFC 5649). */
static CK_RV
kw_run(const struct part_op *op, const unsigned char *in, size_t inlen, unsigned char **res,
       size_t *reslen)
{
	int kwp = op->m->fam == FAM_AES_KWP, enc = is_encrypt(op), outl = 0;
	EVP_CIPHER *c = NULL;
	EVP_CIPHER_CTX *ctx = NULL;
	unsigned char *r = NULL;
	size_t cap = inlen + 16;
	CK_RV rv;

	if (enc) {
		/* RFC 3394 §2: n >= 2 64-bit blocks; RFC 5649: any non-empty input */
		if (inlen > (1u << 30) || (!kwp && (inlen < 16 || inlen % 8 != 0)) ||
		    (kwp && inlen == 0)) {
			return CKR_DATA_LEN_RANGE;
		}
	} else if (inlen > (1u << 30) || inlen % 8 != 0 || inlen < (kwp ? 16u : 24u)) {
		return CKR_ENCRYPTED_DATA_LEN_RANGE;
	}
	rv = CKR_FUNCTION_FAILED;
	if ((c = EVP_CIPHER_fetch(NULL, aes_name(op->m->fam, op->secret_len), NULL)) == NULL ||
	    (ctx = EVP_CIPHER_CTX_new()) == NULL) {
		goto out;
	}
	EVP_CIPHER_CTX_set_flags(ctx, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
	if (!EVP_CipherInit_ex2(ctx, c, op->secret, op->kw_ivlen > 0 ? op->kw_iv : NULL, enc,
	                        NULL)) {
		goto out;
	}
	if ((r = OPENSSL_malloc(cap)) == NULL) {
		rv = CKR_HOST_MEMORY;
		goto out;
	}
	if (!EVP_CipherUpdate(ctx, r, &outl, in, (int)inlen) || outl <= 0) {
		/* the only way an unwrap fails on a well-sized input: the integrity check */
		rv = enc ? CKR_FUNCTION_FAILED : CKR_ENCRYPTED_DATA_INVALID;
		goto out;
	}
	*res = r;
	*reslen = (size_t)outl;
	r = NULL; /* transferred */
	rv = CKR_OK;
out:
	OPENSSL_clear_free(r, cap);
	EVP_CIPHER_CTX_free(ctx);
	EVP_CIPHER_free(c);
	return rv;
}

/* A whole encryption or decryption on a duplicate of the fresh context. */
static CK_RV
cipher_oneshot(struct part_op *op, const unsigned char *in, size_t inlen, unsigned char **res,
               size_t *reslen)
{
	EVP_CIPHER_CTX *ctx = NULL;
	unsigned char blk[AES_BLOCK], *a = NULL, *f = NULL;
	size_t blen = 0, alen, flen = 0;
	unsigned long long ctr_left = op->ctr_left;
	CK_RV rv;

	if (op->m->fam == FAM_AES_KW || op->m->fam == FAM_AES_KWP) {
		return kw_run(op, in, inlen, res, reslen);
	}
	if ((ctx = EVP_CIPHER_CTX_new()) == NULL || !EVP_CIPHER_CTX_copy(ctx, op->cctx)) {
		EVP_CIPHER_CTX_free(ctx);
		return CKR_FUNCTION_FAILED;
	}
	if (op->m->fam == FAM_AES_GCM && !is_encrypt(op)) {
		rv = gcm_decrypt(op, ctx, in, inlen, res, reslen);
		goto out;
	}
	/* the single-part rules on length, before any work (v2.40 §2.10 tables) */
	if ((op->m->fam == FAM_AES_ECB || op->m->fam == FAM_AES_CBC ||
	     (op->m->fam == FAM_AES_CBC_PAD && !is_encrypt(op))) &&
	    (inlen % AES_BLOCK != 0 || (op->m->fam == FAM_AES_CBC_PAD && inlen == 0))) {
		rv = is_encrypt(op) ? CKR_DATA_LEN_RANGE : CKR_ENCRYPTED_DATA_LEN_RANGE;
		goto out;
	}
	alen = cipher_update_len(op, inlen);
	if ((a = OPENSSL_malloc(alen + AES_BLOCK + 16)) == NULL) {
		rv = CKR_HOST_MEMORY;
		goto out;
	}
	if ((rv = cipher_update_on(op, ctx, blk, &blen, in, inlen, a)) != CKR_OK ||
	    (rv = cipher_final_on(op, ctx, blk, blen, &f, &flen)) != CKR_OK) {
		goto out;
	}
	memcpy(a + alen, f, flen);
	*res = a;
	*reslen = alen + flen;
	a = NULL; /* transferred */
out:
	op->ctr_left = ctr_left; /* the duplicate's counting must not stick */
	OPENSSL_cleanse(blk, sizeof(blk));
	if (a != NULL) {
		OPENSSL_clear_free(a, cipher_update_len(op, inlen) + AES_BLOCK + 16);
	}
	OPENSSL_clear_free(f, flen + 1);
	EVP_CIPHER_CTX_free(ctx);
	return rv;
}

/* ---- MACs, digests, hash-then-sign ------------------------------------------------------ */

static CK_RV
dup_digest(const struct part_op *op, const unsigned char *in, size_t inlen, unsigned char *h,
           unsigned int *hlen)
{
	EVP_MD_CTX *d = EVP_MD_CTX_new();
	CK_RV rv = CKR_FUNCTION_FAILED;

	if (d != NULL && EVP_MD_CTX_copy_ex(d, op->md) && EVP_DigestUpdate(d, in, inlen) &&
	    EVP_DigestFinal_ex(d, h, hlen)) {
		rv = CKR_OK;
	}
	EVP_MD_CTX_free(d);
	return rv;
}

static CK_RV
dup_mac(const struct part_op *op, const unsigned char *in, size_t inlen, unsigned char *mac)
{
	EVP_MAC_CTX *d = EVP_MAC_CTX_dup(op->mac);
	size_t outl = 0;
	CK_RV rv = CKR_FUNCTION_FAILED;

	if (d != NULL && EVP_MAC_update(d, in, inlen) &&
	    EVP_MAC_final(d, mac, &outl, EVP_MAX_MD_SIZE) && outl == op->maclen) {
		rv = CKR_OK;
	}
	EVP_MAC_CTX_free(d);
	return rv;
}

static CK_RV
copy_out(const unsigned char *p, size_t len, unsigned char **res, size_t *reslen)
{
	if ((*res = OPENSSL_malloc(len + 1)) == NULL) {
		return CKR_HOST_MEMORY;
	}
	memcpy(*res, p, len);
	*reslen = len;
	return CKR_OK;
}

/*
 * Sign, digest and sign-recover results: over the state plus `in` (which is the whole
 * input for a single-part call, empty for a final), without changing the state.
 */
static CK_RV
sign_compute(struct part_op *op, const unsigned char *in, size_t inlen, unsigned char **res,
             size_t *reslen)
{
	unsigned char h[EVP_MAX_MD_SIZE];
	unsigned int hlen = 0;
	CK_RV rv;

	switch (op->m->fam) {
	case FAM_HMAC:
	case FAM_AES_CMAC:
		if ((rv = dup_mac(op, in, inlen, h)) == CKR_OK) {
			rv = copy_out(h, op->maclen, res, reslen);
		}
		break;
	case FAM_DIGEST:
		if ((rv = dup_digest(op, in, inlen, h, &hlen)) == CKR_OK) {
			rv = copy_out(h, hlen, res, reslen);
		}
		break;
	case FAM_RSA_PKCS_MD:
	case FAM_RSA_PSS_MD:
	case FAM_ECDSA_MD:
		if ((rv = dup_digest(op, in, inlen, h, &hlen)) == CKR_OK) {
			rv = pk_sign(op, h, hlen, res, reslen);
		}
		break;
	default:
		/* single-part mechanisms: `in` is everything */
		rv = pk_sign(op, in, inlen, res, reslen);
		break;
	}
	OPENSSL_cleanse(h, sizeof(h));
	return rv;
}

static CK_RV
verify_compute(struct part_op *op, const unsigned char *in, size_t inlen, const unsigned char *sig,
               size_t siglen)
{
	unsigned char h[EVP_MAX_MD_SIZE];
	unsigned int hlen = 0;
	CK_RV rv;

	switch (op->m->fam) {
	case FAM_HMAC:
	case FAM_AES_CMAC:
		/* full-length MACs only (the *_GENERAL mechanisms are not offered) */
		if (siglen != op->maclen) {
			return CKR_SIGNATURE_LEN_RANGE;
		}
		if ((rv = dup_mac(op, in, inlen, h)) == CKR_OK &&
		    CRYPTO_memcmp(h, sig, siglen) != 0) {
			rv = CKR_SIGNATURE_INVALID;
		}
		break;
	case FAM_RSA_PKCS_MD:
	case FAM_RSA_PSS_MD:
	case FAM_ECDSA_MD:
		if ((rv = dup_digest(op, in, inlen, h, &hlen)) == CKR_OK) {
			rv = pk_verify(op, h, hlen, sig, siglen);
		}
		break;
	default:
		rv = pk_verify(op, in, inlen, sig, siglen);
		break;
	}
	OPENSSL_cleanse(h, sizeof(h));
	return rv;
}

/* ---- the calls ------------------------------------------------------------------------- */

/* Hands out the kept result under the size convention; the operation ends once it is out. */
static CK_RV
serve(struct part_op *op, unsigned char *out, CK_ULONG *outlen)
{
	if (out == NULL) {
		*outlen = op->reslen;
		return CKR_OK;
	}
	if (*outlen < op->reslen) {
		*outlen = op->reslen;
		return CKR_BUFFER_TOO_SMALL;
	}
	if (op->reslen > 0) {
		memcpy(out, op->res, op->reslen);
	}
	*outlen = op->reslen;
	res_clear(op);
	op->done = 1;
	return CKR_OK;
}

static CK_RV
input_digest(const unsigned char *in, size_t inlen, unsigned char d[32])
{
	return EVP_Digest(in, inlen, d, NULL, EVP_sha256(), NULL) ? CKR_OK : CKR_FUNCTION_FAILED;
}

CK_RV
part_op_oneshot(struct part_op *op, const unsigned char *in, CK_ULONG inlen, unsigned char *out,
                CK_ULONG *outlen)
{
	unsigned char d[32];
	CK_RV rv;

	if (op == NULL || outlen == NULL || (in == NULL && inlen > 0)) {
		return CKR_ARGUMENTS_BAD;
	}
	if (op->done || op->kind == PART_OP_VERIFY) {
		return CKR_OPERATION_NOT_INITIALIZED;
	}
	if (op->started) {
		return CKR_OPERATION_ACTIVE;
	}
	if (in == NULL) {
		in = (const unsigned char *)"";
	}
	if ((rv = input_digest(in, inlen, d)) != CKR_OK) {
		goto fail;
	}
	if (op->res_kind == 1 && op->res_inlen == inlen && CRYPTO_memcmp(d, op->res_in, 32) == 0) {
		return serve(op, out, outlen);
	}
	res_clear(op);
	switch (op->kind) {
	case PART_OP_ENCRYPT:
		rv = op->pkey != NULL ? pk_encrypt(op, in, inlen, &op->res, &op->reslen)
		                      : cipher_oneshot(op, in, inlen, &op->res, &op->reslen);
		break;
	case PART_OP_DECRYPT:
		rv = op->pkey != NULL ? pk_decrypt(op, in, inlen, &op->res, &op->reslen)
		                      : cipher_oneshot(op, in, inlen, &op->res, &op->reslen);
		break;
	case PART_OP_SIGN:
	case PART_OP_SIGN_RECOVER:
	case PART_OP_DIGEST:
		rv = sign_compute(op, in, inlen, &op->res, &op->reslen);
		break;
	case PART_OP_VERIFY_RECOVER:
		rv = pk_verify_recover(op, in, inlen, &op->res, &op->reslen);
		break;
	default:
		rv = CKR_OPERATION_NOT_INITIALIZED;
		break;
	}
	if (rv != CKR_OK) {
		goto fail;
	}
	op->res_kind = 1;
	memcpy(op->res_in, d, sizeof(d));
	op->res_inlen = inlen;
	return serve(op, out, outlen);
fail:
	res_clear(op);
	op->done = 1;
	return rv;
}

CK_RV
part_op_update(struct part_op *op, const unsigned char *in, CK_ULONG inlen, unsigned char *out,
               CK_ULONG *outlen)
{
	size_t need;
	CK_RV rv;

	if (op == NULL || (in == NULL && inlen > 0)) {
		return CKR_ARGUMENTS_BAD;
	}
	if (op->done || op->kind == PART_OP_SIGN_RECOVER || op->kind == PART_OP_VERIFY_RECOVER) {
		return CKR_OPERATION_NOT_INITIALIZED;
	}
	if (!op->m->multipart) {
		op->done = 1;
		return CKR_FUNCTION_NOT_SUPPORTED;
	}
	if (in == NULL) {
		in = (const unsigned char *)"";
	}
	res_clear(op); /* a kept single-part answer is for a call that is not coming */
	switch (op->kind) {
	case PART_OP_ENCRYPT:
	case PART_OP_DECRYPT:
		if (outlen == NULL) {
			return CKR_ARGUMENTS_BAD;
		}
		need = cipher_update_len(op, inlen);
		if (out == NULL) {
			*outlen = need;
			return CKR_OK;
		}
		if (*outlen < need) {
			*outlen = need;
			return CKR_BUFFER_TOO_SMALL;
		}
		rv = cipher_update_on(op, op->cctx, op->blk, &op->blen, in, inlen, out);
		*outlen = need;
		break;
	case PART_OP_DIGEST:
	case PART_OP_SIGN:
	case PART_OP_VERIFY:
		if (op->mac != NULL) {
			rv = EVP_MAC_update(op->mac, in, inlen) ? CKR_OK : CKR_FUNCTION_FAILED;
		} else {
			rv = EVP_DigestUpdate(op->md, in, inlen) ? CKR_OK : CKR_FUNCTION_FAILED;
		}
		break;
	default:
		rv = CKR_OPERATION_NOT_INITIALIZED;
		break;
	}
	if (rv != CKR_OK) {
		op->done = 1;
		return rv;
	}
	op->started = 1;
	return CKR_OK;
}

CK_RV
part_op_final(struct part_op *op, unsigned char *out, CK_ULONG *outlen)
{
	EVP_CIPHER_CTX *ctx = NULL;
	CK_RV rv;

	if (op == NULL || outlen == NULL) {
		return CKR_ARGUMENTS_BAD;
	}
	if (op->done || op->kind == PART_OP_VERIFY || op->kind == PART_OP_SIGN_RECOVER ||
	    op->kind == PART_OP_VERIFY_RECOVER) {
		return CKR_OPERATION_NOT_INITIALIZED;
	}
	if (op->res_kind == 2) {
		return serve(op, out, outlen);
	}
	if (!op->m->multipart) {
		op->done = 1;
		return CKR_FUNCTION_NOT_SUPPORTED;
	}
	res_clear(op);
	switch (op->kind) {
	case PART_OP_ENCRYPT:
	case PART_OP_DECRYPT:
		if ((ctx = EVP_CIPHER_CTX_new()) == NULL || !EVP_CIPHER_CTX_copy(ctx, op->cctx)) {
			rv = CKR_FUNCTION_FAILED;
			break;
		}
		rv = cipher_final_on(op, ctx, op->blk, op->blen, &op->res, &op->reslen);
		break;
	default:
		rv = sign_compute(op, (const unsigned char *)"", 0, &op->res, &op->reslen);
		break;
	}
	EVP_CIPHER_CTX_free(ctx);
	if (rv != CKR_OK) {
		res_clear(op);
		op->done = 1;
		return rv;
	}
	op->res_kind = 2;
	return serve(op, out, outlen);
}

CK_RV
part_op_verify(struct part_op *op, const unsigned char *data, CK_ULONG datalen,
               const unsigned char *sig, CK_ULONG siglen)
{
	CK_RV rv;

	if (op == NULL || (data == NULL && datalen > 0) || (sig == NULL && siglen > 0)) {
		return CKR_ARGUMENTS_BAD;
	}
	if (op->done || op->kind != PART_OP_VERIFY) {
		return CKR_OPERATION_NOT_INITIALIZED;
	}
	if (op->started) {
		return CKR_OPERATION_ACTIVE;
	}
	rv = verify_compute(op, data != NULL ? data : (const unsigned char *)"", datalen,
	                    sig != NULL ? sig : (const unsigned char *)"", siglen);
	op->done = 1;
	return rv;
}

CK_RV
part_op_verify_final(struct part_op *op, const unsigned char *sig, CK_ULONG siglen)
{
	CK_RV rv;

	if (op == NULL || (sig == NULL && siglen > 0)) {
		return CKR_ARGUMENTS_BAD;
	}
	if (op->done || op->kind != PART_OP_VERIFY) {
		return CKR_OPERATION_NOT_INITIALIZED;
	}
	if (!op->m->multipart) {
		op->done = 1;
		return CKR_FUNCTION_NOT_SUPPORTED;
	}
	rv = verify_compute(op, (const unsigned char *)"", 0,
	                    sig != NULL ? sig : (const unsigned char *)"", siglen);
	op->done = 1;
	return rv;
}

CK_RV
part_op_digest_key(struct part_op *op, const struct part_key *key)
{
	if (op == NULL || key == NULL) {
		return CKR_ARGUMENTS_BAD;
	}
	if (op->done || op->kind != PART_OP_DIGEST) {
		return CKR_OPERATION_NOT_INITIALIZED;
	}
	/* v2.40 §5.10 C_DigestKey: only a secret key's value can be digested */
	if (key->cls != CKO_SECRET_KEY || key->secret == NULL) {
		op->done = 1;
		return CKR_KEY_INDIGESTIBLE;
	}
	return part_op_update(op, key->secret, key->secret_len, NULL, NULL);
}
