/*
 * hsm-partitions/crypto/wrap.c — C_WrapKey / C_UnwrapKey (AES-KW, AES-KWP, RSA-OAEP,
 * RSA-PKCS) and C_DeriveKey (ECDH). Wrapping is encryption of the key bytes with the
 * same code as C_Encrypt; what differs is the error vocabulary, which is translated here.
 */
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>

#include "hsm-partitions/crypto/mech_int.h"

/* C_Encrypt/C_Decrypt codes to C_WrapKey/C_UnwrapKey codes (v2.40 §5.14). */
static CK_RV
wrap_rv(CK_RV rv, int wrap)
{
	switch (rv) {
	case CKR_KEY_TYPE_INCONSISTENT:
		return wrap ? CKR_WRAPPING_KEY_TYPE_INCONSISTENT
		            : CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT;
	case CKR_KEY_SIZE_RANGE:
		return wrap ? CKR_WRAPPING_KEY_SIZE_RANGE : CKR_UNWRAPPING_KEY_SIZE_RANGE;
	case CKR_DATA_LEN_RANGE:
	case CKR_DATA_INVALID:
		return CKR_KEY_SIZE_RANGE; /* the key to wrap has a length we cannot take */
	case CKR_ENCRYPTED_DATA_LEN_RANGE:
		return CKR_WRAPPED_KEY_LEN_RANGE;
	case CKR_ENCRYPTED_DATA_INVALID:
		return CKR_WRAPPED_KEY_INVALID;
	default:
		return rv;
	}
}

static CK_RV
wrap_mech_ok(const CK_MECHANISM *mech, CK_FLAGS flag)
{
	const struct mech_desc *m = mech_find(mech->mechanism);

	return m != NULL && (m->flags & flag) != 0 ? CKR_OK : CKR_MECHANISM_INVALID;
}

CK_RV
part_mech_wrap(const CK_MECHANISM *mech, const struct part_key *wrapping,
               const unsigned char *keybytes, size_t keylen, unsigned char *out, CK_ULONG *outlen)
{
	struct part_op *op = NULL;
	CK_ULONG need, got;
	CK_RV rv;

	if (mech == NULL || wrapping == NULL || outlen == NULL ||
	    (keybytes == NULL && keylen > 0)) {
		return CKR_ARGUMENTS_BAD;
	}
	if ((rv = wrap_mech_ok(mech, CKF_WRAP)) != CKR_OK) {
		return rv;
	}
	if ((rv = part_mech_op_init(PART_OP_ENCRYPT, mech, wrapping, &op)) != CKR_OK) {
		return wrap_rv(rv, 1);
	}
	/* the output length is known from the input length: answer queries without work */
	switch (op->m->fam) {
	case FAM_AES_KW:
		need = keylen + 8;
		break;
	case FAM_AES_KWP:
		need = (keylen + 7) / 8 * 8 + 8;
		break;
	default:
		need = pk_out_len(op);
		break;
	}
	if (out == NULL || *outlen < need) {
		rv = out == NULL ? CKR_OK : CKR_BUFFER_TOO_SMALL;
		*outlen = need;
		goto out;
	}
	got = *outlen;
	if ((rv = part_op_oneshot(op, keybytes, keylen, out, &got)) != CKR_OK) {
		rv = wrap_rv(rv, 1);
		goto out;
	}
	*outlen = got;
out:
	part_op_free(op);
	return rv;
}

CK_RV
part_mech_unwrap(const CK_MECHANISM *mech, const struct part_key *unwrapping,
                 const unsigned char *wrapped, size_t wrappedlen, unsigned char **out,
                 size_t *outlen)
{
	struct part_op *op = NULL;
	unsigned char *r = NULL;
	CK_ULONG len = 0;
	CK_RV rv;

	if (mech == NULL || unwrapping == NULL || out == NULL || outlen == NULL ||
	    (wrapped == NULL && wrappedlen > 0)) {
		return CKR_ARGUMENTS_BAD;
	}
	*out = NULL;
	*outlen = 0;
	if ((rv = wrap_mech_ok(mech, CKF_UNWRAP)) != CKR_OK) {
		return rv;
	}
	if ((rv = part_mech_op_init(PART_OP_DECRYPT, mech, unwrapping, &op)) != CKR_OK) {
		return wrap_rv(rv, 0);
	}
	/* the size query computes and keeps the key: the second call only copies it */
	if ((rv = part_op_oneshot(op, wrapped, wrappedlen, NULL, &len)) != CKR_OK) {
		rv = wrap_rv(rv, 0);
		goto out;
	}
	if ((r = OPENSSL_secure_malloc(len + 1)) == NULL) {
		rv = CKR_HOST_MEMORY;
		goto out;
	}
	if ((rv = part_op_oneshot(op, wrapped, wrappedlen, r, &len)) != CKR_OK) {
		rv = wrap_rv(rv, 0);
		goto out;
	}
	if (len == 0) {
		rv = CKR_WRAPPED_KEY_INVALID;
		goto out;
	}
	*out = r;
	*outlen = len;
	r = NULL; /* transferred */
out:
	OPENSSL_secure_clear_free(r, len + 1);
	part_op_free(op);
	return rv;
}

/* ---- ECDH ------------------------------------------------------------------------------ */

static const char *
kdf_md(CK_ULONG kdf)
{
	switch (kdf) {
	case CKD_SHA1_KDF:
		return "SHA1";
	case CKD_SHA224_KDF:
		return "SHA224";
	case CKD_SHA256_KDF:
		return "SHA256";
	case CKD_SHA384_KDF:
		return "SHA384";
	case CKD_SHA512_KDF:
		return "SHA512";
	default:
		return NULL;
	}
}

/* ANSI X9.63 KDF: Hash(Z || counter || SharedInfo) ..., which CKD_SHAx_KDF names. */
static CK_RV
x963(const char *md, const unsigned char *z, size_t zlen, const unsigned char *info, size_t infolen,
     unsigned char *out, size_t outlen)
{
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, OSSL_KDF_NAME_X963KDF, NULL);
	EVP_KDF_CTX *ctx = NULL;
	OSSL_PARAM params[4], *p = params;
	CK_RV rv = CKR_FUNCTION_FAILED;

	*p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)md, 0);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)z, zlen);
	if (infolen > 0) {
		*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info,
		                                         infolen);
	}
	*p = OSSL_PARAM_construct_end();
	if (kdf != NULL && (ctx = EVP_KDF_CTX_new(kdf)) != NULL &&
	    EVP_KDF_derive(ctx, out, outlen, params) > 0) {
		rv = CKR_OK;
	}
	EVP_KDF_CTX_free(ctx);
	EVP_KDF_free(kdf);
	return rv;
}

CK_RV
part_mech_derive(const CK_MECHANISM *mech, const struct part_key *base, size_t keylen,
                 unsigned char **out, size_t *outlen)
{
	const struct mech_desc *m;
	const CK_ECDH1_DERIVE_PARAMS *p;
	const struct curve *c;
	const unsigned char *pt;
	size_t ptlen, zlen = 0;
	const char *md = NULL;
	EVP_PKEY *peer = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	unsigned char *z = NULL, *r = NULL;
	CK_RV rv;

	if (mech == NULL || base == NULL || out == NULL || outlen == NULL) {
		return CKR_ARGUMENTS_BAD;
	}
	*out = NULL;
	*outlen = 0;
	if ((m = mech_find(mech->mechanism)) == NULL || m->fam != FAM_ECDH) {
		return CKR_MECHANISM_INVALID;
	}
	p = mech->pParameter;
	if (p == NULL || mech->ulParameterLen != sizeof(*p)) {
		return CKR_MECHANISM_PARAM_INVALID;
	}
	/* v2.40 Current Mechanisms, CK_ECDH1_DERIVE_PARAMS: "With the key derivation function
	 * CKD_NULL, pSharedData must be NULL and ulSharedDataLen must be zero." */
	if (p->kdf == CKD_NULL) {
		if (p->pSharedData != NULL || p->ulSharedDataLen != 0) {
			return CKR_MECHANISM_PARAM_INVALID;
		}
	} else if ((md = kdf_md(p->kdf)) == NULL || keylen == 0 ||
	           (p->pSharedData == NULL && p->ulSharedDataLen != 0)) {
		return CKR_MECHANISM_PARAM_INVALID;
	}
	if (base->type != CKK_EC || base->cls != CKO_PRIVATE_KEY) {
		return CKR_KEY_TYPE_INCONSISTENT;
	}
	if (base->size < m->min || base->size > m->max) {
		return CKR_KEY_SIZE_RANGE;
	}
	if ((c = curve_by_name(base->group)) == NULL) {
		return CKR_KEY_TYPE_INCONSISTENT;
	}
	if (point_unwrap(c, p->pPublicData, p->ulPublicDataLen, &pt, &ptlen) != CKR_OK ||
	    ec_pub_from_point(c, pt, ptlen, &peer) != CKR_OK) {
		return CKR_MECHANISM_PARAM_INVALID;
	}
	rv = CKR_FUNCTION_FAILED;
	if ((ctx = EVP_PKEY_CTX_new_from_pkey(NULL, base->pkey, NULL)) == NULL ||
	    EVP_PKEY_derive_init(ctx) <= 0) {
		goto out;
	}
	/* the curves offered all have cofactor 1, where both mechanisms agree */
	if (mech->mechanism == CKM_ECDH1_COFACTOR_DERIVE &&
	    EVP_PKEY_CTX_set_ecdh_cofactor_mode(ctx, 1) <= 0) {
		goto out;
	}
	if (EVP_PKEY_derive_set_peer(ctx, peer) <= 0 || EVP_PKEY_derive(ctx, NULL, &zlen) <= 0) {
		rv = CKR_MECHANISM_PARAM_INVALID;
		goto out;
	}
	if ((z = OPENSSL_secure_malloc(zlen)) == NULL) {
		rv = CKR_HOST_MEMORY;
		goto out;
	}
	if (EVP_PKEY_derive(ctx, z, &zlen) <= 0) {
		goto out;
	}
	if (md == NULL) {
		if (keylen > zlen) {
			rv = CKR_KEY_SIZE_RANGE;
			goto out;
		}
		keylen = keylen == 0 ? zlen : keylen;
		if ((r = OPENSSL_secure_malloc(keylen)) != NULL) {
			memcpy(r, z + zlen - keylen, keylen);
		}
		rv = r != NULL ? CKR_OK : CKR_HOST_MEMORY;
	} else if ((r = OPENSSL_secure_malloc(keylen)) == NULL) {
		rv = CKR_HOST_MEMORY;
	} else {
		rv = x963(md, z, zlen, p->pSharedData, p->ulSharedDataLen, r, keylen);
	}
	if (rv != CKR_OK) {
		goto out;
	}
	*out = r;
	*outlen = keylen;
	r = NULL; /* transferred */
out:
	OPENSSL_secure_clear_free(z, zlen);
	OPENSSL_secure_clear_free(r, keylen);
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(peer);
	return rv;
}
