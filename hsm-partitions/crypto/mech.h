/*
 * hsm-partitions/crypto/mech.h — the cryptographic engine of the soft token.
 *
 * The engine knows mechanisms and key material, nothing else: no sessions, no object
 * handles, no attribute policy (CKA_SENSITIVE, CKA_SIGN ... are the worker's business).
 * The worker (the .c files of hsm-partitions/) resolves handles, enforces the key usage flags and
 * the operation-state rules, and calls this API with the key's PKCS #11 attribute values.
 *
 * Conventions. Every function returns a CK_RV: each error here maps onto exactly one
 * PKCS #11 code, so the engine speaks that vocabulary directly (the STYLE.md exception for
 * code that sits at the PKCS #11 boundary). Output buffers follow the PKCS #11 v2.40
 * §5.2 convention: `out == NULL` is a size query answered in `*outlen` with CKR_OK; a
 * buffer that is too small returns CKR_BUFFER_TOO_SMALL with the required length in
 * `*outlen`. In both cases the operation is left exactly as it was, so the caller may
 * repeat the call with a larger buffer. Every other return (success or error) of a
 * single-part call or of a final ends the operation; the caller frees it with
 * part_op_free(). Key material handled here is wiped (OPENSSL_cleanse / _clear_free) on
 * every path, and what the engine keeps or hands back of it is allocated in OpenSSL's
 * secure heap (OPENSSL_secure_malloc; ordinary memory where the process made none) and
 * released with OPENSSL_secure_clear_free. Crypto is OpenSSL 3 EVP only.
 */
#ifndef HSMGATE_PART_MECH_H
#define HSMGATE_PART_MECH_H

#include <stddef.h>

#include <p11-kit/pkcs11.h>

#define PART_WUR __attribute__((warn_unused_result))

/* ---- mechanism table ------------------------------------------------------------------- */

/*
 * Lists the supported mechanisms, in a stable order. With `out == NULL` stores the count
 * in `*n`; otherwise `*n` is the capacity of `out` on entry and the count on return, and
 * CKR_BUFFER_TOO_SMALL (count in `*n`) when the capacity is short — C_GetMechanismList.
 */
CK_RV part_mech_list(CK_MECHANISM_TYPE *out, size_t *n) PART_WUR;

/*
 * The CK_MECHANISM_INFO of `type`: key sizes in the spec's units (bits for RSA, EC and
 * EdDSA; bytes for AES and generic secrets; 0/0 for digests) and the CKF_* functions this
 * engine implements. CKR_MECHANISM_INVALID for a mechanism not in the table.
 */
CK_RV part_mech_info(CK_MECHANISM_TYPE type, CK_MECHANISM_INFO *info) PART_WUR;

/*
 * Whether `type` may be used with C_*Update (multi-part). 0 for unknown mechanisms and
 * for the single-part ones (CKM_RSA_PKCS, CKM_RSA_X_509, CKM_RSA_PKCS_PSS,
 * CKM_RSA_PKCS_OAEP, CKM_ECDSA, CKM_EDDSA, CKM_AES_KEY_WRAP(_PAD)).
 */
int part_mech_multipart(CK_MECHANISM_TYPE type);

/* ---- attribute lists ------------------------------------------------------------------- */

/*
 * An owned list of attributes produced by the engine (key generation, PKCS #8 import).
 * Every pValue is owned by the list and wiped when the list is freed; the values
 * part_key_secret_attr() names are in the secure heap. CKA_MODULUS_BITS and CKA_VALUE_LEN
 * are stored as a native CK_ULONG, every other value as PKCS #11 bytes.
 */
struct part_attrs;

/* Whether `type` is key material of a secret or private key (CKA_VALUE, and the private
 * RSA parts CKA_PRIVATE_EXPONENT, CKA_PRIME_1/2, CKA_EXPONENT_1/2, CKA_COEFFICIENT): the
 * values kept in the secure heap. The caller decides for other classes (a data object's
 * CKA_VALUE is not a key). */
int part_key_secret_attr(CK_ATTRIBUTE_TYPE type);

size_t part_attrs_count(const struct part_attrs *l);
/* The i-th attribute (i < count), valid until part_attrs_free(). */
const CK_ATTRIBUTE *part_attrs_at(const struct part_attrs *l, size_t i);
/* The attribute of `type`, or NULL; valid until part_attrs_free(). */
const CK_ATTRIBUTE *part_attrs_find(const struct part_attrs *l, CK_ATTRIBUTE_TYPE type);
/* Wipes every value and frees the list; NULL is a no-op. */
void part_attrs_free(struct part_attrs *l);

/* ---- keys ------------------------------------------------------------------------------ */

/*
 * A key ready for use by the engine: an EVP_PKEY for RSA, EC and Ed25519 keys, the raw
 * secret for AES and generic-secret keys. Opaque; freed (and wiped) by part_key_free().
 * Operations, wrap and derive do not keep a pointer to the key: it may be freed as soon as
 * the call that received it returns.
 */
struct part_key;

/*
 * Builds a key from its PKCS #11 attribute values (C_CreateObject, or a stored object).
 * Unknown attributes are ignored (they are the worker's). Accepted (class, key type):
 *   CKO_SECRET_KEY  CKK_AES             CKA_VALUE (16, 24 or 32 bytes), CKA_VALUE_LEN
 *                                       optional but must match;
 *   CKO_SECRET_KEY  CKK_GENERIC_SECRET, CKK_SHA*_HMAC: CKA_VALUE (1..512 bytes);
 *   CKO_PUBLIC_KEY  CKK_RSA             CKA_MODULUS, CKA_PUBLIC_EXPONENT;
 *   CKO_PRIVATE_KEY CKK_RSA             CKA_MODULUS, CKA_PUBLIC_EXPONENT,
 *                                       CKA_PRIVATE_EXPONENT, and either all or none of
 *                                       CKA_PRIME_1/2, CKA_EXPONENT_1/2, CKA_COEFFICIENT;
 *   CKO_PUBLIC_KEY  CKK_EC              CKA_EC_PARAMS, CKA_EC_POINT;
 *   CKO_PRIVATE_KEY CKK_EC              CKA_EC_PARAMS, CKA_VALUE;
 *   CKO_PUBLIC_KEY  CKK_EC_EDWARDS      CKA_EC_PARAMS, CKA_EC_POINT;
 *   CKO_PRIVATE_KEY CKK_EC_EDWARDS      CKA_EC_PARAMS, CKA_VALUE (32 bytes).
 * CKA_EC_PARAMS is the DER of a named-curve OID (P-256, P-384, P-521, 1.3.101.112) or,
 * for Ed25519, the PrintableString "edwards25519". CKA_EC_POINT is the DER OCTET STRING
 * of the point (v2.40) or, tolerated, the bare point.
 * Errors: CKR_TEMPLATE_INCOMPLETE (a required attribute missing), CKR_ATTRIBUTE_VALUE_INVALID
 * (malformed, wrong length, inconsistent RSA components, point not on the curve),
 * CKR_CURVE_NOT_SUPPORTED, CKR_KEY_TYPE_INCONSISTENT (class/type pair not supported),
 * CKR_HOST_MEMORY. On success `*out` is owned by the caller.
 */
CK_RV part_key_from_attrs(CK_OBJECT_CLASS cls, CK_KEY_TYPE type, const CK_ATTRIBUTE *attrs,
                          CK_ULONG n, struct part_key **out) PART_WUR;

void part_key_free(struct part_key *key);

CK_OBJECT_CLASS part_key_class(const struct part_key *key);
CK_KEY_TYPE part_key_type(const struct part_key *key);
/* Size in mechanism-info units: modulus/curve bits, or the secret's length in bytes. */
CK_ULONG part_key_size(const struct part_key *key);

/*
 * C_GenerateKey for CKM_AES_KEY_GEN and CKM_GENERIC_SECRET_KEY_GEN (no parameter).
 * Reads CKA_VALUE_LEN from `tmpl` (required: CKR_TEMPLATE_INCOMPLETE without it;
 * CKR_ATTRIBUTE_VALUE_INVALID outside the mechanism's range). `*out` receives CKA_VALUE and
 * CKA_VALUE_LEN. CKR_MECHANISM_INVALID for other mechanisms, CKR_MECHANISM_PARAM_INVALID
 * when a parameter is given.
 */
CK_RV part_key_generate(const CK_MECHANISM *mech, const CK_ATTRIBUTE *tmpl, CK_ULONG n,
                        struct part_attrs **out) PART_WUR;

/*
 * C_GenerateKeyPair for CKM_RSA_PKCS_KEY_PAIR_GEN (public template: CKA_MODULUS_BITS
 * required, CKA_PUBLIC_EXPONENT optional, default 65537), CKM_EC_KEY_PAIR_GEN and
 * CKM_EC_EDWARDS_KEY_PAIR_GEN (public template: CKA_EC_PARAMS required). The private
 * template is read for nothing today but is part of the contract.
 * Outputs: RSA public CKA_MODULUS, CKA_PUBLIC_EXPONENT, CKA_MODULUS_BITS; RSA private
 * CKA_MODULUS, CKA_PUBLIC_EXPONENT, CKA_PRIVATE_EXPONENT, CKA_PRIME_1/2, CKA_EXPONENT_1/2,
 * CKA_COEFFICIENT. EC/Ed25519 public CKA_EC_PARAMS (OID form), CKA_EC_POINT (DER OCTET
 * STRING); private CKA_EC_PARAMS, CKA_VALUE.
 * Errors: CKR_TEMPLATE_INCOMPLETE, CKR_ATTRIBUTE_VALUE_INVALID (bits outside 2048..4096,
 * even or small exponent), CKR_CURVE_NOT_SUPPORTED, CKR_MECHANISM_INVALID,
 * CKR_MECHANISM_PARAM_INVALID, CKR_HOST_MEMORY, CKR_FUNCTION_FAILED.
 */
CK_RV part_key_generate_pair(const CK_MECHANISM *mech, const CK_ATTRIBUTE *pub_tmpl, CK_ULONG npub,
                             const CK_ATTRIBUTE *priv_tmpl, CK_ULONG npriv, struct part_attrs **pub,
                             struct part_attrs **priv) PART_WUR;

/*
 * The PKCS #8 PrivateKeyInfo DER of a private key, for C_WrapKey. `*der` is owned by the
 * caller, in the secure heap, and must be released with OPENSSL_secure_clear_free(*der,
 * *len).
 * CKR_KEY_TYPE_INCONSISTENT for a key that is not a private key.
 */
CK_RV part_key_to_pkcs8(const struct part_key *key, unsigned char **der, size_t *len) PART_WUR;

/*
 * The reverse, for C_UnwrapKey: parses a PrivateKeyInfo of an RSA, EC (named curve) or
 * Ed25519 key and returns its key type and the private-key attributes that
 * part_key_generate_pair() would have produced. CKR_WRAPPED_KEY_INVALID when the bytes are
 * not such a key, CKR_CURVE_NOT_SUPPORTED for another curve.
 */
CK_RV part_key_from_pkcs8(const unsigned char *der, size_t len, CK_KEY_TYPE *type,
                          struct part_attrs **priv) PART_WUR;

/* ---- operations ------------------------------------------------------------------------ */

enum part_op_kind {
	PART_OP_ENCRYPT,
	PART_OP_DECRYPT,
	PART_OP_SIGN,
	PART_OP_VERIFY,
	PART_OP_SIGN_RECOVER,
	PART_OP_VERIFY_RECOVER,
	PART_OP_DIGEST,
};

/* One cryptographic operation in progress. Opaque; freed by part_op_free(). */
struct part_op;

/*
 * C_*Init: validates `mech` against `kind` and `key` and prepares the operation. `key` is
 * NULL for PART_OP_DIGEST (and ignored). The parameter is copied: it need not outlive the
 * call. Errors:
 *   CKR_MECHANISM_INVALID        unknown mechanism, or one that does not do `kind`;
 *   CKR_MECHANISM_PARAM_INVALID  missing/extra parameter, wrong parameter length, bad IV
 *                                length, GCM tag bits, CTR counter bits, PSS/OAEP hash,
 *                                MGF or salt length, OAEP source, EdDSA options;
 *   CKR_KEY_TYPE_INCONSISTENT    wrong key type, or wrong class (e.g. sign with a public key);
 *   CKR_KEY_SIZE_RANGE           key size outside the mechanism's range;
 *   CKR_HOST_MEMORY, CKR_FUNCTION_FAILED.
 */
CK_RV part_mech_op_init(enum part_op_kind kind, const CK_MECHANISM *mech,
                        const struct part_key *key, struct part_op **out) PART_WUR;

/*
 * C_Encrypt, C_Decrypt, C_Sign, C_SignRecover, C_VerifyRecover (input: the signature),
 * C_Digest: the whole operation in one call, with the size-query convention. A size query
 * computes the result once and keeps it: the next call with the same input returns those
 * bytes, so a signature or ciphertext is never computed twice. Errors besides the size
 * convention: CKR_DATA_LEN_RANGE, CKR_DATA_INVALID (RSA input not below the modulus),
 * CKR_ENCRYPTED_DATA_LEN_RANGE, CKR_ENCRYPTED_DATA_INVALID (padding, GCM tag),
 * CKR_SIGNATURE_LEN_RANGE / CKR_SIGNATURE_INVALID (verify-recover), CKR_OPERATION_ACTIVE
 * (an update was already made: PKCS #11 forbids finishing a multi-part operation with the
 * single-part call), CKR_OPERATION_NOT_INITIALIZED (the operation has ended).
 */
CK_RV part_op_oneshot(struct part_op *op, const unsigned char *in, CK_ULONG inlen,
                      unsigned char *out, CK_ULONG *outlen) PART_WUR;

/*
 * C_*Update. For encrypt/decrypt `out`/`outlen` follow the size convention (the output of
 * one update is always known exactly before any work is done; GCM decryption buffers
 * everything until the final and outputs nothing here). For sign/verify/digest pass
 * out = NULL and outlen = NULL. CKR_FUNCTION_NOT_SUPPORTED for a single-part mechanism.
 */
CK_RV part_op_update(struct part_op *op, const unsigned char *in, CK_ULONG inlen,
                     unsigned char *out, CK_ULONG *outlen) PART_WUR;

/* C_EncryptFinal, C_DecryptFinal, C_SignFinal, C_DigestFinal, with the size convention. */
CK_RV part_op_final(struct part_op *op, unsigned char *out, CK_ULONG *outlen) PART_WUR;

/*
 * C_Verify (single part) and C_VerifyFinal. CKR_OK for a good signature,
 * CKR_SIGNATURE_LEN_RANGE for a signature of the wrong length, CKR_SIGNATURE_INVALID
 * otherwise; CKR_DATA_LEN_RANGE for input the mechanism cannot take.
 */
CK_RV part_op_verify(struct part_op *op, const unsigned char *data, CK_ULONG datalen,
                     const unsigned char *sig, CK_ULONG siglen) PART_WUR;
CK_RV part_op_verify_final(struct part_op *op, const unsigned char *sig, CK_ULONG siglen) PART_WUR;

/*
 * C_DigestKey: feeds the value of a secret key into a digest operation.
 * CKR_KEY_INDIGESTIBLE for a key that is not a secret key.
 */
CK_RV part_op_digest_key(struct part_op *op, const struct part_key *key) PART_WUR;

/* Whether one call of `op` is expensive enough to hand to another thread: an RSA
 * private-key operation. Any operation touches only its own state and its key's EVP_PKEY,
 * read-only: several operations may run on several threads at once, one operation on one
 * thread at a time. */
int part_op_heavy(const struct part_op *op);
/* The most one call of a heavy operation can output (the RSA modulus, in bytes): an output
 * buffer of this size never comes back CKR_BUFFER_TOO_SMALL. 0 for other operations. */
CK_ULONG part_op_out_max(const struct part_op *op);

/* Frees an operation and wipes its state (buffered plaintext, cached result). */
void part_op_free(struct part_op *op);

/* ---- wrap, unwrap, derive -------------------------------------------------------------- */

/*
 * C_WrapKey: wraps `keybytes` (a secret key's CKA_VALUE, or the PKCS #8 DER of a private
 * key from part_key_to_pkcs8()) under `wrapping` with CKM_AES_KEY_WRAP (RFC 3394, optional
 * 8-byte IV), CKM_AES_KEY_WRAP_PAD (RFC 5649, optional 4-byte IV), CKM_RSA_PKCS_OAEP or
 * CKM_RSA_PKCS (wrapping key: an RSA public key). Size convention on `out`.
 * Errors: CKR_MECHANISM_INVALID, CKR_MECHANISM_PARAM_INVALID,
 * CKR_WRAPPING_KEY_TYPE_INCONSISTENT, CKR_WRAPPING_KEY_SIZE_RANGE, CKR_KEY_SIZE_RANGE (the
 * key to wrap has a length the mechanism cannot take).
 */
CK_RV part_mech_wrap(const CK_MECHANISM *mech, const struct part_key *wrapping,
                     const unsigned char *keybytes, size_t keylen, unsigned char *out,
                     CK_ULONG *outlen) PART_WUR;

/*
 * C_UnwrapKey: the reverse. `*out` (the key bytes) is owned by the caller, in the secure
 * heap, and released with OPENSSL_secure_clear_free(*out, *outlen). Errors: as part_mech_wrap with
 * UNWRAPPING_ codes, CKR_WRAPPED_KEY_LEN_RANGE, CKR_WRAPPED_KEY_INVALID (integrity check or padding
 * failed).
 */
CK_RV part_mech_unwrap(const CK_MECHANISM *mech, const struct part_key *unwrapping,
                       const unsigned char *wrapped, size_t wrappedlen, unsigned char **out,
                       size_t *outlen) PART_WUR;

/*
 * C_DeriveKey with CKM_ECDH1_DERIVE / CKM_ECDH1_COFACTOR_DERIVE (CK_ECDH1_DERIVE_PARAMS;
 * the other party's point as the bare uncompressed point or its DER OCTET STRING).
 * `keylen` is the derived key's length in bytes (0: the whole output of the KDF, for
 * CKD_NULL the shared secret Z). CKD_NULL takes no shared data; a shorter key keeps the
 * rightmost bytes of Z, as SoftHSMv2 does. CKD_SHA1/224/256/384/512_KDF are the ANSI X9.63
 * KDF and need `keylen` > 0. `*out` is owned by the caller, in the secure heap
 * (OPENSSL_secure_clear_free).
 * Errors: CKR_MECHANISM_INVALID, CKR_MECHANISM_PARAM_INVALID (KDF, shared data, point not
 * on the curve), CKR_KEY_TYPE_INCONSISTENT, CKR_KEY_SIZE_RANGE (`keylen` longer than Z
 * with CKD_NULL).
 */
CK_RV part_mech_derive(const CK_MECHANISM *mech, const struct part_key *base, size_t keylen,
                       unsigned char **out, size_t *outlen) PART_WUR;

#endif
