/*
 * proto/mech.c — the mechanism registry and the mechanism encoding ('M').
 *
 * Parameters are typed field by field, never as a memcpy of a C struct (the pkcs11-proxy
 * mistake: such structs embed pointers and an ABI). A parameter whose C struct holds
 * pointers and that the registry cannot type is refused on both sides, because a token
 * handed opaque bytes for it would dereference whatever the sender wrote there.
 */
#include "proto/proto.h"
#include "proto/proto_int.h"

#include <string.h>

/* The native shape of a registered mechanism's parameter. */
enum mech_shape {
	SH_NONE,   /* takes no parameter; one given anyway travels as opaque bytes */
	SH_RAW,    /* the parameter is a byte string (an IV, a public value) */
	SH_KDSTR,  /* CK_KEY_DERIVATION_STRING_DATA, its data as bytes on the wire */
	SH_GCM,    /* CK_GCM_PARAMS */
	SH_OAEP,   /* CK_RSA_PKCS_OAEP_PARAMS */
	SH_PSS,    /* CK_RSA_PKCS_PSS_PARAMS */
	SH_ECDH1,  /* CK_ECDH1_DERIVE_PARAMS */
	SH_CTR,    /* CK_AES_CTR_PARAMS */
	SH_ULONG,  /* a CK_ULONG (MAC lengths, object handles, bit offsets) */
	SH_REFUSE, /* a struct with pointers we do not type: only a NULL parameter passes */
};

struct mech_def {
	CK_MECHANISM_TYPE type;
	const char *name;
	enum mech_shape shape;
};

#define M(t, s)                                                                                    \
	{                                                                                          \
		t, #t, s                                                                           \
	}
static const struct mech_def mech_defs[] = {
        M(CKM_RSA_PKCS_KEY_PAIR_GEN, SH_NONE),
        M(CKM_RSA_PKCS, SH_NONE),
        M(CKM_RSA_9796, SH_NONE),
        M(CKM_RSA_X_509, SH_NONE),
        M(CKM_MD5_RSA_PKCS, SH_NONE),
        M(CKM_SHA1_RSA_PKCS, SH_NONE),
        M(CKM_SHA224_RSA_PKCS, SH_NONE),
        M(CKM_SHA256_RSA_PKCS, SH_NONE),
        M(CKM_SHA384_RSA_PKCS, SH_NONE),
        M(CKM_SHA512_RSA_PKCS, SH_NONE),
        M(CKM_RSA_PKCS_OAEP, SH_OAEP),
        M(CKM_RSA_X9_31_KEY_PAIR_GEN, SH_NONE),
        M(CKM_RSA_X9_31, SH_NONE),
        M(CKM_SHA1_RSA_X9_31, SH_NONE),
        M(CKM_RSA_PKCS_PSS, SH_PSS),
        M(CKM_SHA1_RSA_PKCS_PSS, SH_PSS),
        M(CKM_SHA224_RSA_PKCS_PSS, SH_PSS),
        M(CKM_SHA256_RSA_PKCS_PSS, SH_PSS),
        M(CKM_SHA384_RSA_PKCS_PSS, SH_PSS),
        M(CKM_SHA512_RSA_PKCS_PSS, SH_PSS),
        M(CKM_RSA_AES_KEY_WRAP, SH_REFUSE),
        M(CKM_DSA_KEY_PAIR_GEN, SH_NONE),
        M(CKM_DSA_PARAMETER_GEN, SH_NONE),
        M(CKM_DSA_SHA1, SH_NONE),
        M(CKM_DSA_SHA224, SH_NONE),
        M(CKM_DSA_SHA256, SH_NONE),
        M(CKM_DSA_SHA384, SH_NONE),
        M(CKM_DSA_SHA512, SH_NONE),
        M(CKM_DH_PKCS_KEY_PAIR_GEN, SH_NONE),
        M(CKM_DH_PKCS_PARAMETER_GEN, SH_NONE),
        M(CKM_DH_PKCS_DERIVE, SH_RAW),
        M(CKM_X9_42_DH_DERIVE, SH_REFUSE),
        M(CKM_X9_42_DH_HYBRID_DERIVE, SH_REFUSE),
        M(CKM_X9_42_MQV_DERIVE, SH_REFUSE),
        M(CKM_EC_KEY_PAIR_GEN, SH_NONE),
        M(CKM_ECDSA, SH_NONE),
        M(CKM_ECDSA_SHA1, SH_NONE),
        M(CKM_ECDSA_SHA224, SH_NONE),
        M(CKM_ECDSA_SHA256, SH_NONE),
        M(CKM_ECDSA_SHA384, SH_NONE),
        M(CKM_ECDSA_SHA512, SH_NONE),
        M(CKM_ECDH1_DERIVE, SH_ECDH1),
        M(CKM_ECDH1_COFACTOR_DERIVE, SH_ECDH1),
        M(CKM_ECMQV_DERIVE, SH_REFUSE),
        M(CKM_ECDH_AES_KEY_WRAP, SH_REFUSE),
        M(CKM_EC_EDWARDS_KEY_PAIR_GEN, SH_NONE),
        M(CKM_EDDSA, SH_REFUSE),
        M(CKM_MD5, SH_NONE),
        M(CKM_MD5_HMAC, SH_NONE),
        M(CKM_MD5_HMAC_GENERAL, SH_ULONG),
        M(CKM_SHA_1, SH_NONE),
        M(CKM_SHA_1_HMAC, SH_NONE),
        M(CKM_SHA_1_HMAC_GENERAL, SH_ULONG),
        M(CKM_SHA224, SH_NONE),
        M(CKM_SHA224_HMAC, SH_NONE),
        M(CKM_SHA224_HMAC_GENERAL, SH_ULONG),
        M(CKM_SHA256, SH_NONE),
        M(CKM_SHA256_HMAC, SH_NONE),
        M(CKM_SHA256_HMAC_GENERAL, SH_ULONG),
        M(CKM_SHA384, SH_NONE),
        M(CKM_SHA384_HMAC, SH_NONE),
        M(CKM_SHA384_HMAC_GENERAL, SH_ULONG),
        M(CKM_SHA512, SH_NONE),
        M(CKM_SHA512_HMAC, SH_NONE),
        M(CKM_SHA512_HMAC_GENERAL, SH_ULONG),
        M(CKM_SHA512_224, SH_NONE),
        M(CKM_SHA512_224_HMAC, SH_NONE),
        M(CKM_SHA512_224_HMAC_GENERAL, SH_ULONG),
        M(CKM_SHA512_256, SH_NONE),
        M(CKM_SHA512_256_HMAC, SH_NONE),
        M(CKM_SHA512_256_HMAC_GENERAL, SH_ULONG),
        M(CKM_SHA512_T, SH_REFUSE),
        M(CKM_MD5_KEY_DERIVATION, SH_NONE),
        M(CKM_SHA1_KEY_DERIVATION, SH_NONE),
        M(CKM_SHA224_KEY_DERIVATION, SH_NONE),
        M(CKM_SHA256_KEY_DERIVATION, SH_NONE),
        M(CKM_SHA384_KEY_DERIVATION, SH_NONE),
        M(CKM_SHA512_KEY_DERIVATION, SH_NONE),
        M(CKM_SHA512_224_KEY_DERIVATION, SH_NONE),
        M(CKM_SHA512_256_KEY_DERIVATION, SH_NONE),
        M(CKM_GENERIC_SECRET_KEY_GEN, SH_NONE),
        M(CKM_CONCATENATE_BASE_AND_KEY, SH_ULONG),
        M(CKM_CONCATENATE_BASE_AND_DATA, SH_KDSTR),
        M(CKM_CONCATENATE_DATA_AND_BASE, SH_KDSTR),
        M(CKM_XOR_BASE_AND_DATA, SH_KDSTR),
        M(CKM_EXTRACT_KEY_FROM_KEY, SH_ULONG),
        M(CKM_DES_KEY_GEN, SH_NONE),
        M(CKM_DES_ECB, SH_NONE),
        M(CKM_DES_CBC, SH_RAW),
        M(CKM_DES_CBC_PAD, SH_RAW),
        M(CKM_DES2_KEY_GEN, SH_NONE),
        M(CKM_DES3_KEY_GEN, SH_NONE),
        M(CKM_DES3_ECB, SH_NONE),
        M(CKM_DES3_CBC, SH_RAW),
        M(CKM_DES3_CBC_PAD, SH_RAW),
        M(CKM_DES3_MAC, SH_NONE),
        M(CKM_DES3_MAC_GENERAL, SH_ULONG),
        M(CKM_DES3_CMAC, SH_NONE),
        M(CKM_DES3_CMAC_GENERAL, SH_ULONG),
        M(CKM_DES_ECB_ENCRYPT_DATA, SH_KDSTR),
        M(CKM_DES_CBC_ENCRYPT_DATA, SH_REFUSE),
        M(CKM_DES3_ECB_ENCRYPT_DATA, SH_KDSTR),
        M(CKM_DES3_CBC_ENCRYPT_DATA, SH_REFUSE),
        M(CKM_AES_KEY_GEN, SH_NONE),
        M(CKM_AES_ECB, SH_NONE),
        M(CKM_AES_CBC, SH_RAW),
        M(CKM_AES_CBC_PAD, SH_RAW),
        M(CKM_AES_CTR, SH_CTR),
        M(CKM_AES_GCM, SH_GCM),
        M(CKM_AES_CCM, SH_REFUSE),
        M(CKM_AES_CTS, SH_RAW),
        M(CKM_AES_MAC, SH_NONE),
        M(CKM_AES_MAC_GENERAL, SH_ULONG),
        M(CKM_AES_CMAC, SH_NONE),
        M(CKM_AES_CMAC_GENERAL, SH_ULONG),
        M(CKM_AES_XCBC_MAC, SH_NONE),
        M(CKM_AES_XCBC_MAC_96, SH_NONE),
        M(CKM_AES_GMAC, SH_RAW),
        M(CKM_AES_OFB, SH_RAW),
        M(CKM_AES_CFB1, SH_RAW),
        M(CKM_AES_CFB8, SH_RAW),
        M(CKM_AES_CFB64, SH_RAW),
        M(CKM_AES_CFB128, SH_RAW),
        M(CKM_AES_KEY_WRAP, SH_RAW),
        M(CKM_AES_KEY_WRAP_PAD, SH_RAW),
        M(CKM_AES_ECB_ENCRYPT_DATA, SH_KDSTR),
        M(CKM_AES_CBC_ENCRYPT_DATA, SH_REFUSE),
        M(CKM_CAMELLIA_KEY_GEN, SH_NONE),
        M(CKM_CAMELLIA_ECB, SH_NONE),
        M(CKM_CAMELLIA_CBC, SH_RAW),
        M(CKM_CAMELLIA_CBC_PAD, SH_RAW),
        M(CKM_CAMELLIA_CTR, SH_REFUSE),
        M(CKM_PKCS5_PBKD2, SH_REFUSE),
        M(CKM_SSL3_PRE_MASTER_KEY_GEN, SH_REFUSE),
        M(CKM_SSL3_MASTER_KEY_DERIVE, SH_REFUSE),
        M(CKM_SSL3_KEY_AND_MAC_DERIVE, SH_REFUSE),
        M(CKM_TLS_PRE_MASTER_KEY_GEN, SH_REFUSE),
        M(CKM_TLS_MASTER_KEY_DERIVE, SH_REFUSE),
        M(CKM_TLS_KEY_AND_MAC_DERIVE, SH_REFUSE),
        M(CKM_TLS_PRF, SH_REFUSE),
        M(CKM_TLS12_MASTER_KEY_DERIVE, SH_REFUSE),
        M(CKM_TLS12_KEY_AND_MAC_DERIVE, SH_REFUSE),
        M(CKM_TLS12_KDF, SH_REFUSE),
        M(CKM_TLS_KDF, SH_REFUSE),
        M(CKM_TLS_MAC, SH_REFUSE),
};

static const struct mech_def *
mech_find(CK_MECHANISM_TYPE type)
{
	size_t i;

	for (i = 0; i < sizeof(mech_defs) / sizeof(mech_defs[0]); i++) {
		if (mech_defs[i].type == type) {
			return &mech_defs[i];
		}
	}
	return NULL;
}

const char *
proto_mech_name(CK_MECHANISM_TYPE type)
{
	const struct mech_def *d = mech_find(type);

	return d != NULL ? d->name : NULL;
}

/* Unknown mechanisms (a vendor's) carry their parameter as opaque bytes. */
static enum mech_shape
mech_shape(CK_MECHANISM_TYPE type)
{
	const struct mech_def *d = mech_find(type);

	return d != NULL ? d->shape : SH_RAW;
}

enum proto_mp
proto_mech_param_kind(CK_MECHANISM_TYPE type)
{
	switch (mech_shape(type)) {
	case SH_RAW:
	case SH_KDSTR:
		return PROTO_MP_BYTES;
	case SH_GCM:
		return PROTO_MP_GCM;
	case SH_OAEP:
		return PROTO_MP_OAEP;
	case SH_PSS:
		return PROTO_MP_PSS;
	case SH_ECDH1:
		return PROTO_MP_ECDH1;
	case SH_CTR:
		return PROTO_MP_CTR;
	case SH_ULONG:
		return PROTO_MP_ULONG;
	case SH_NONE:
	case SH_REFUSE:
	default:
		return PROTO_MP_NONE;
	}
}

/* The struct size a typed shape requires of ulParameterLen (0 for untyped shapes). */
static size_t
shape_size(enum mech_shape sh)
{
	switch (sh) {
	case SH_KDSTR:
		return sizeof(CK_KEY_DERIVATION_STRING_DATA);
	case SH_GCM:
		return sizeof(CK_GCM_PARAMS);
	case SH_OAEP:
		return sizeof(CK_RSA_PKCS_OAEP_PARAMS);
	case SH_PSS:
		return sizeof(CK_RSA_PKCS_PSS_PARAMS);
	case SH_ECDH1:
		return sizeof(CK_ECDH1_DERIVE_PARAMS);
	case SH_CTR:
		return sizeof(CK_AES_CTR_PARAMS);
	case SH_ULONG:
		return sizeof(CK_ULONG);
	case SH_NONE:
	case SH_RAW:
	case SH_REFUSE:
	default:
		return 0;
	}
}

/* A (pointer, length) pair of a parameter struct as u32 len | bytes; in a shape, the
 * length alone (as a ulong). */
static int
put_pbytes(struct proto_buf *b, const void *p, CK_ULONG len, int shape)
{
	if (p == NULL && len != 0) {
		return proto_buf_fail(b, PROTO_ERR_BAD_VALUE);
	}
	if ((uint64_t)len > UINT32_MAX) {
		return proto_buf_fail(b, PROTO_ERR_TOO_LARGE);
	}
	return shape ? proto_put_ulong(b, len) : proto_put_bytes(b, p, (size_t)len);
}

/* proto_put_mechanism, or with `shape` proto_put_mechanism_shape. */
static int
put_mech(struct proto_buf *b, const CK_MECHANISM *m, int shape)
{
	enum mech_shape sh;
	CK_KEY_DERIVATION_STRING_DATA kd;
	CK_GCM_PARAMS gcm;
	CK_RSA_PKCS_OAEP_PARAMS oaep;
	CK_RSA_PKCS_PSS_PARAMS pss;
	CK_ECDH1_DERIVE_PARAMS ecdh;
	CK_AES_CTR_PARAMS ctr;
	CK_ULONG ul;
	int r;

	if (m == NULL) {
		return proto_buf_fail(b, PROTO_ERR_BAD_VALUE);
	}
	if ((r = proto_put_ulong(b, m->mechanism)) != 0) {
		return r;
	}
	if (m->pParameter == NULL) {
		if (m->ulParameterLen != 0) {
			return proto_buf_fail(b, PROTO_ERR_BAD_VALUE);
		}
		return proto_put_u8(b, PROTO_MP_NONE);
	}
	sh = mech_shape(m->mechanism);
	if (sh == SH_REFUSE) {
		return proto_buf_fail(b, PROTO_ERR_BAD_VALUE);
	}
	if (shape_size(sh) != 0 && m->ulParameterLen != shape_size(sh)) {
		/* The client answers CKR_MECHANISM_PARAM_INVALID. */
		return proto_buf_fail(b, PROTO_ERR_BAD_VALUE);
	}
	switch (sh) {
	case SH_NONE:
	case SH_RAW:
		if ((r = proto_put_u8(b, PROTO_MP_BYTES)) != 0 ||
		    (r = put_pbytes(b, m->pParameter, m->ulParameterLen, shape)) != 0) {
			return r;
		}
		return 0;
	case SH_KDSTR:
		memcpy(&kd, m->pParameter, sizeof(kd));
		if ((r = proto_put_u8(b, PROTO_MP_BYTES)) != 0 ||
		    (r = put_pbytes(b, kd.pData, kd.ulLen, shape)) != 0) {
			return r;
		}
		return 0;
	case SH_GCM:
		memcpy(&gcm, m->pParameter, sizeof(gcm));
		if ((r = proto_put_u8(b, PROTO_MP_GCM)) != 0 ||
		    (r = put_pbytes(b, gcm.pIv, gcm.ulIvLen, shape)) != 0 ||
		    (r = proto_put_ulong(b, gcm.ulIvBits)) != 0 ||
		    (r = put_pbytes(b, gcm.pAAD, gcm.ulAADLen, shape)) != 0 ||
		    (r = proto_put_ulong(b, gcm.ulTagBits)) != 0) {
			return r;
		}
		return 0;
	case SH_OAEP:
		memcpy(&oaep, m->pParameter, sizeof(oaep));
		if ((r = proto_put_u8(b, PROTO_MP_OAEP)) != 0 ||
		    (r = proto_put_ulong(b, oaep.hashAlg)) != 0 ||
		    (r = proto_put_ulong(b, oaep.mgf)) != 0 ||
		    (r = proto_put_ulong(b, oaep.source)) != 0 ||
		    (r = put_pbytes(b, oaep.pSourceData, oaep.ulSourceDataLen, shape)) != 0) {
			return r;
		}
		return 0;
	case SH_PSS:
		memcpy(&pss, m->pParameter, sizeof(pss));
		if ((r = proto_put_u8(b, PROTO_MP_PSS)) != 0 ||
		    (r = proto_put_ulong(b, pss.hashAlg)) != 0 ||
		    (r = proto_put_ulong(b, pss.mgf)) != 0 ||
		    (r = proto_put_ulong(b, pss.sLen)) != 0) {
			return r;
		}
		return 0;
	case SH_ECDH1:
		memcpy(&ecdh, m->pParameter, sizeof(ecdh));
		if ((r = proto_put_u8(b, PROTO_MP_ECDH1)) != 0 ||
		    (r = proto_put_ulong(b, ecdh.kdf)) != 0 ||
		    (r = put_pbytes(b, ecdh.pSharedData, ecdh.ulSharedDataLen, shape)) != 0 ||
		    (r = put_pbytes(b, ecdh.pPublicData, ecdh.ulPublicDataLen, shape)) != 0) {
			return r;
		}
		return 0;
	case SH_CTR:
		memcpy(&ctr, m->pParameter, sizeof(ctr));
		if ((r = proto_put_u8(b, PROTO_MP_CTR)) != 0 ||
		    (r = proto_put_ulong(b, ctr.ulCounterBits)) != 0 ||
		    (!shape && (r = proto_put_raw(b, ctr.cb, sizeof(ctr.cb))) != 0)) {
			return r;
		}
		return 0;
	case SH_ULONG:
		memcpy(&ul, m->pParameter, sizeof(ul));
		if ((r = proto_put_u8(b, PROTO_MP_ULONG)) != 0 ||
		    (r = proto_put_ulong(b, ul)) != 0) {
			return r;
		}
		return 0;
	case SH_REFUSE:
	default:
		return proto_buf_fail(b, PROTO_ERR_BAD_VALUE);
	}
}

int
proto_put_mechanism(struct proto_buf *b, const CK_MECHANISM *m)
{
	return put_mech(b, m, 0);
}

int
proto_put_mechanism_shape(struct proto_buf *b, const CK_MECHANISM *m)
{
	return put_mech(b, m, 1);
}

/* u32 len | bytes into an arena copy; an empty string decodes as NULL/0, the PKCS #11
 * idiom for "none" inside parameter structs. */
static int
get_pbytes(struct proto_cur *c, struct proto_arena *a, CK_BYTE **p, CK_ULONG *len)
{
	struct proto_cur t = *c;
	const uint8_t *d;
	size_t n;
	int r;

	*p = NULL;
	*len = 0;
	if ((r = proto_get_bytes_ref(&t, &d, &n, PROTO_MAX_FRAME_CAP)) != 0) {
		return r;
	}
	if (n != 0) {
		if ((*p = proto_arena_alloc(a, n)) == NULL) {
			return PROTO_ERR_NOMEM;
		}
		memcpy(*p, d, n);
	}
	*len = (CK_ULONG)n;
	*c = t;
	return 0;
}

/* Whether wire kind `kind` may be decoded for a mechanism of shape `sh`: the token reads
 * the parameter as the struct it expects, so bytes are only ever given to a mechanism
 * whose parameter is bytes (or none), and a typed parameter only to its own mechanism. */
static int
shape_accepts(enum mech_shape sh, uint8_t kind)
{
	if (kind == PROTO_MP_NONE) {
		return 1;
	}
	switch (sh) {
	case SH_NONE:
	case SH_RAW:
	case SH_KDSTR:
		return kind == PROTO_MP_BYTES;
	case SH_GCM:
		return kind == PROTO_MP_GCM;
	case SH_OAEP:
		return kind == PROTO_MP_OAEP;
	case SH_PSS:
		return kind == PROTO_MP_PSS;
	case SH_ECDH1:
		return kind == PROTO_MP_ECDH1;
	case SH_CTR:
		return kind == PROTO_MP_CTR;
	case SH_ULONG:
		return kind == PROTO_MP_ULONG;
	case SH_REFUSE:
	default:
		return 0;
	}
}

static void *
arena_dup(struct proto_arena *a, const void *p, size_t n)
{
	void *d = proto_arena_alloc(a, n);

	if (d != NULL && n != 0) {
		memcpy(d, p, n);
	}
	return d;
}

int
proto_get_mechanism(struct proto_cur *c, struct proto_arena *a, CK_MECHANISM *m)
{
	struct proto_cur t = *c;
	enum mech_shape sh;
	CK_KEY_DERIVATION_STRING_DATA kd;
	CK_GCM_PARAMS gcm;
	CK_RSA_PKCS_OAEP_PARAMS oaep;
	CK_RSA_PKCS_PSS_PARAMS pss;
	CK_ECDH1_DERIVE_PARAMS ecdh;
	CK_AES_CTR_PARAMS ctr;
	CK_ULONG ul;
	const void *native = NULL;
	size_t nsize = 0;
	const uint8_t *d;
	size_t n;
	uint8_t kind;
	int r;

	memset(m, 0, sizeof(*m));
	if (a == NULL) {
		return PROTO_ERR_NOMEM;
	}
	if ((r = proto_get_ulong(&t, &m->mechanism)) != 0 || (r = proto_get_u8(&t, &kind)) != 0) {
		goto out;
	}
	sh = mech_shape(m->mechanism);
	if (kind > PROTO_MP_ULONG || !shape_accepts(sh, kind)) {
		r = PROTO_ERR_BAD_VALUE;
		goto out;
	}
	switch (kind) {
	case PROTO_MP_NONE:
		break;
	case PROTO_MP_BYTES:
		if (sh == SH_KDSTR) {
			memset(&kd, 0, sizeof(kd));
			if ((r = get_pbytes(&t, a, &kd.pData, &kd.ulLen)) != 0) {
				goto out;
			}
			native = &kd;
			nsize = sizeof(kd);
			break;
		}
		/* Present but empty stays non-NULL (arena_dup of 0 bytes). */
		if ((r = proto_get_bytes_ref(&t, &d, &n, PROTO_MAX_FRAME_CAP)) != 0) {
			goto out;
		}
		native = d;
		nsize = n;
		break;
	case PROTO_MP_GCM:
		memset(&gcm, 0, sizeof(gcm));
		if ((r = get_pbytes(&t, a, &gcm.pIv, &gcm.ulIvLen)) != 0 ||
		    (r = proto_get_ulong(&t, &gcm.ulIvBits)) != 0 ||
		    (r = get_pbytes(&t, a, &gcm.pAAD, &gcm.ulAADLen)) != 0 ||
		    (r = proto_get_ulong(&t, &gcm.ulTagBits)) != 0) {
			goto out;
		}
		native = &gcm;
		nsize = sizeof(gcm);
		break;
	case PROTO_MP_OAEP:
		memset(&oaep, 0, sizeof(oaep));
		if ((r = proto_get_ulong(&t, &oaep.hashAlg)) != 0 ||
		    (r = proto_get_ulong(&t, &oaep.mgf)) != 0 ||
		    (r = proto_get_ulong(&t, &oaep.source)) != 0 ||
		    (r = get_pbytes(&t, a, (CK_BYTE **)&oaep.pSourceData, &oaep.ulSourceDataLen)) !=
		            0) {
			goto out;
		}
		native = &oaep;
		nsize = sizeof(oaep);
		break;
	case PROTO_MP_PSS:
		memset(&pss, 0, sizeof(pss));
		if ((r = proto_get_ulong(&t, &pss.hashAlg)) != 0 ||
		    (r = proto_get_ulong(&t, &pss.mgf)) != 0 ||
		    (r = proto_get_ulong(&t, &pss.sLen)) != 0) {
			goto out;
		}
		native = &pss;
		nsize = sizeof(pss);
		break;
	case PROTO_MP_ECDH1:
		memset(&ecdh, 0, sizeof(ecdh));
		if ((r = proto_get_ulong(&t, &ecdh.kdf)) != 0 ||
		    (r = get_pbytes(&t, a, &ecdh.pSharedData, &ecdh.ulSharedDataLen)) != 0 ||
		    (r = get_pbytes(&t, a, &ecdh.pPublicData, &ecdh.ulPublicDataLen)) != 0) {
			goto out;
		}
		native = &ecdh;
		nsize = sizeof(ecdh);
		break;
	case PROTO_MP_CTR:
		memset(&ctr, 0, sizeof(ctr));
		if ((r = proto_get_ulong(&t, &ctr.ulCounterBits)) != 0 ||
		    (r = proto_get_raw(&t, ctr.cb, sizeof(ctr.cb))) != 0) {
			goto out;
		}
		native = &ctr;
		nsize = sizeof(ctr);
		break;
	case PROTO_MP_ULONG:
		if ((r = proto_get_ulong(&t, &ul)) != 0) {
			goto out;
		}
		native = &ul;
		nsize = sizeof(ul);
		break;
	default:
		r = PROTO_ERR_BAD_VALUE;
		goto out;
	}
	if (kind != PROTO_MP_NONE) {
		if ((m->pParameter = arena_dup(a, native, nsize)) == NULL) {
			r = PROTO_ERR_NOMEM;
			goto out;
		}
		m->ulParameterLen = (CK_ULONG)nsize;
	}
	*c = t;
	r = 0;
out:
	if (r != 0) {
		memset(m, 0, sizeof(*m));
	}
	return r;
}
