/*
 * hsm-partitions/crypto/mech_int.h — private to hsm-partitions/crypto/: the mechanism
 * descriptors, the key and attribute-list layouts, and the small DER helpers that
 * several files share. Nothing outside this folder includes it.
 */
#ifndef HSMGATE_PART_MECH_INT_H
#define HSMGATE_PART_MECH_INT_H

#include <stddef.h>

#include <openssl/evp.h>

#include "hsm-partitions/crypto/mech.h"

/* What a mechanism does, beyond its CK_MECHANISM_INFO: picks the code path. */
enum mech_family {
	FAM_DIGEST,
	FAM_KEYGEN,  /* CKM_AES_KEY_GEN, CKM_GENERIC_SECRET_KEY_GEN */
	FAM_PAIRGEN, /* RSA, EC and Edwards key pair generation */
	FAM_AES_ECB,
	FAM_AES_CBC,
	FAM_AES_CBC_PAD,
	FAM_AES_CTR,
	FAM_AES_GCM,
	FAM_AES_CMAC,
	FAM_AES_KW,
	FAM_AES_KWP,
	FAM_HMAC,
	FAM_RSA_PKCS, /* PKCS #1 v1.5, raw (caller hashes / builds DigestInfo) */
	FAM_RSA_X509,
	FAM_RSA_PKCS_MD, /* CKM_SHAx_RSA_PKCS */
	FAM_RSA_PSS,     /* raw: input is the hash */
	FAM_RSA_PSS_MD,
	FAM_RSA_OAEP,
	FAM_ECDSA, /* raw: input is the hash */
	FAM_ECDSA_MD,
	FAM_EDDSA,
	FAM_ECDH,
};

struct mech_desc {
	CK_MECHANISM_TYPE type;
	enum mech_family fam;
	CK_ULONG min, max; /* CK_MECHANISM_INFO units */
	CK_FLAGS flags;
	CK_KEY_TYPE key_type; /* (CK_KEY_TYPE)-1 for digests */
	int multipart;
	const char *md; /* the digest this mechanism applies, or NULL */
};

#define MECH_NO_KEY ((CK_KEY_TYPE)-1)

/* The descriptor of `type`, or NULL. */
const struct mech_desc *mech_find(CK_MECHANISM_TYPE type);

/*
 * The OpenSSL digest name of a CKM_SHA* digest mechanism (CKM_SHA_1 ... CKM_SHA512) and of
 * a CKG_MGF1_SHA* generator, or NULL.
 */
const char *mech_md_name(CK_MECHANISM_TYPE hash);
const char *mech_mgf_md_name(CK_ULONG mgf);

/* ---- keys ------------------------------------------------------------------------------ */

struct part_key {
	CK_OBJECT_CLASS cls;
	CK_KEY_TYPE type;
	EVP_PKEY *pkey;        /* RSA, EC, Ed25519 */
	unsigned char *secret; /* AES, generic secret; OPENSSL_clear_free */
	size_t secret_len;
	CK_ULONG size;     /* mechanism-info units */
	const char *group; /* EC: "P-256" ... */
	size_t field_len;  /* EC: bytes of one coordinate / of r and s; Ed25519: 32 */
};

/* ---- attribute lists ------------------------------------------------------------------- */

struct part_attrs {
	CK_ATTRIBUTE *a;
	size_t n, cap;
};

struct part_attrs *attrs_new(void);
/* Appends a copy of `len` bytes. CKR_HOST_MEMORY on failure. */
CK_RV attrs_add(struct part_attrs *l, CK_ATTRIBUTE_TYPE type, const void *v, size_t len);
CK_RV attrs_add_ulong(struct part_attrs *l, CK_ATTRIBUTE_TYPE type, CK_ULONG v);
/* Appends a BIGNUM as a PKCS #11 big integer; `pad` > 0 left-pads it to `pad` bytes. */
CK_RV attrs_add_bn(struct part_attrs *l, CK_ATTRIBUTE_TYPE type, const BIGNUM *bn, size_t pad);

/* The attribute of `type` in a caller's template, or NULL. */
const CK_ATTRIBUTE *tmpl_find(const CK_ATTRIBUTE *t, CK_ULONG n, CK_ATTRIBUTE_TYPE type);
/* Reads a CK_ULONG attribute: CKR_TEMPLATE_INCOMPLETE, CKR_ATTRIBUTE_VALUE_INVALID. */
CK_RV tmpl_ulong(const CK_ATTRIBUTE *t, CK_ULONG n, CK_ATTRIBUTE_TYPE type, CK_ULONG *v);

/* ---- curves and DER -------------------------------------------------------------------- */

struct curve {
	const char *name;         /* OpenSSL group or key type name */
	const unsigned char *oid; /* DER of the OID, tag included */
	size_t oid_len;
	size_t field_len;
	CK_ULONG bits;
	CK_KEY_TYPE key_type; /* CKK_EC or CKK_EC_EDWARDS */
};

/*
 * The curve named by a CKA_EC_PARAMS value: CKR_CURVE_NOT_SUPPORTED for a well-formed OID
 * or string we do not know, CKR_ATTRIBUTE_VALUE_INVALID for bytes that are not one.
 */
CK_RV curve_from_params(const unsigned char *p, size_t len, const struct curve **c);
const struct curve *curve_by_name(const char *name);

/*
 * The bare point from a CKA_EC_POINT or ECDH public data value: accepts the DER OCTET
 * STRING (v2.40) and the bare uncompressed point of `c`. Returns a pointer into `p`.
 */
CK_RV point_unwrap(const struct curve *c, const unsigned char *p, size_t len,
                   const unsigned char **pt, size_t *ptlen);
/* Wraps a bare point into a DER OCTET STRING and appends it as CKA_EC_POINT. */
CK_RV attrs_add_point(struct part_attrs *l, const unsigned char *pt, size_t len);

/* Builds the private-key attributes of an EVP_PKEY (generation, PKCS #8 import). */
CK_RV key_priv_attrs(EVP_PKEY *pk, CK_KEY_TYPE *type, struct part_attrs *l);
CK_RV key_pub_attrs(EVP_PKEY *pk, struct part_attrs *l);

/* An EC public EVP_PKEY from a bare point; CKR_ATTRIBUTE_VALUE_INVALID if off the curve. */
CK_RV ec_pub_from_point(const struct curve *c, const unsigned char *pt, size_t len, EVP_PKEY **out);

/* ---- operations ------------------------------------------------------------------------ */

/* A growable byte buffer whose contents are wiped when it grows or is freed. */
struct sbuf {
	unsigned char *p;
	size_t len, cap;
};

CK_RV sbuf_append(struct sbuf *b, const unsigned char *p, size_t len);
void sbuf_wipe(struct sbuf *b);

struct part_op {
	enum part_op_kind kind;
	const struct mech_desc *m;
	int started; /* an update was made */
	int done;    /* ended: every call but free refuses */

	/* AES */
	EVP_CIPHER_CTX *cctx;
	unsigned char blk[16]; /* ECB/CBC: input not yet processed (our buffering, not EVP's) */
	size_t blen;
	size_t taglen;               /* GCM, bytes */
	unsigned long long ctr_left; /* CTR: bytes before the counter would wrap */
	int ctr_bounded;
	unsigned char *secret; /* AES-KW(P) and CMAC keys; OPENSSL_clear_free */
	size_t secret_len;
	unsigned char kw_iv[8];
	size_t kw_ivlen;

	/* digests and hash-then-sign */
	EVP_MD_CTX *md;
	/* HMAC and CMAC */
	EVP_MAC_CTX *mac;
	size_t maclen;

	/* RSA, EC, Ed25519 */
	EVP_PKEY *pkey;
	size_t k;               /* RSA modulus bytes; EC: bytes of r (and of s) */
	unsigned char *modulus; /* RSA n, k bytes, for the X.509 range check */
	const char *hash;       /* PSS/OAEP hashAlg; *_MD families: the mechanism's digest */
	const char *mgf_hash;
	size_t hlen;
	int saltlen;
	unsigned char *label; /* OAEP source data */
	size_t label_len;

	/* input collected for single-part mechanisms and GCM decryption */
	struct sbuf acc;

	/* the result of a size query or a too-small buffer, served by the next call */
	unsigned char *res;
	size_t reslen;
	int res_kind;             /* 0 none, 1 single-part (keyed by res_in), 2 final */
	unsigned char res_in[32]; /* SHA-256 of the single-part input */
	size_t res_inlen;
};

/* pkey.c: the public-key half of part_mech_op_init() and the primitives. */
CK_RV pk_init(struct part_op *op, const CK_MECHANISM *mech, const struct part_key *key);
/* Sign `in` (the hash for the *_MD families, which op.c computes). */
CK_RV pk_sign(const struct part_op *op, const unsigned char *in, size_t inlen, unsigned char **res,
              size_t *reslen);
CK_RV pk_verify(const struct part_op *op, const unsigned char *in, size_t inlen,
                const unsigned char *sig, size_t siglen);
CK_RV pk_encrypt(const struct part_op *op, const unsigned char *in, size_t inlen,
                 unsigned char **res, size_t *reslen);
CK_RV pk_decrypt(const struct part_op *op, const unsigned char *in, size_t inlen,
                 unsigned char **res, size_t *reslen);
CK_RV pk_verify_recover(const struct part_op *op, const unsigned char *sig, size_t siglen,
                        unsigned char **res, size_t *reslen);
/* The exact ciphertext/signature length, for wrap size queries. */
size_t pk_out_len(const struct part_op *op);

#endif
