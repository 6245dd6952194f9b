/*
 * hsm-partitions/keys.c — the functions that make keys: C_GenerateKey, C_GenerateKeyPair,
 * C_UnwrapKey, C_DeriveKey, and C_WrapKey, which lets key material leave the token.
 *
 * The engine (crypto/) makes the key material; object.c validates the templates against the
 * class rules and sets what the token sets (CKA_LOCAL, CKA_KEY_GEN_MECHANISM,
 * CKA_ALWAYS_SENSITIVE, CKA_NEVER_EXTRACTABLE). Templates and the session's rights are
 * checked before any key is generated, so a refused call costs nothing.
 */
#include "hsm-partitions/part_int.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

/* An engine attribute list as a template (the values stay the list's). */
static CK_RV
flatten(const struct part_attrs *l, CK_ATTRIBUTE **out, CK_ULONG *n)
{
	size_t i, cnt = part_attrs_count(l);
	CK_ATTRIBUTE *t;

	*out = NULL;
	*n = 0;
	if ((t = calloc(cnt != 0 ? cnt : 1, sizeof(*t))) == NULL) {
		return CKR_HOST_MEMORY;
	}
	for (i = 0; i < cnt; i++) {
		t[i] = *part_attrs_at(l, i);
	}
	*out = t;
	*n = cnt;
	return CKR_OK;
}

static const CK_ATTRIBUTE *
find_attr(const CK_ATTRIBUTE *t, CK_ULONG n, CK_ATTRIBUTE_TYPE type)
{
	CK_ULONG i;

	for (i = 0; i < n && t != NULL; i++) {
		if (t[i].type == type) {
			return &t[i];
		}
	}
	return NULL;
}

/* A CK_ULONG attribute of a template: 0 and *v untouched when absent. */
static CK_RV
find_ulong(const CK_ATTRIBUTE *t, CK_ULONG n, CK_ATTRIBUTE_TYPE type, CK_ULONG *v, int *present)
{
	const CK_ATTRIBUTE *a = find_attr(t, n, type);

	*present = 0;
	if (a == NULL) {
		return CKR_OK;
	}
	if (a->pValue == NULL || a->ulValueLen != sizeof(CK_ULONG)) {
		return CKR_ATTRIBUTE_VALUE_INVALID;
	}
	*v = *(const CK_ULONG *)a->pValue;
	*present = 1;
	return CKR_OK;
}

static int
is_key(const struct part_object *o)
{
	return o->cls == CKO_SECRET_KEY || o->cls == CKO_PUBLIC_KEY || o->cls == CKO_PRIVATE_KEY;
}

/* Builds and commits one key object; `*out` its handle. */
static CK_RV
make(struct part_token *t, struct part_session *s, const struct part_newobj *nd,
     const CK_ATTRIBUTE *tmpl, CK_ULONG n, CK_OBJECT_HANDLE *out)
{
	struct part_object *o = NULL;
	CK_RV rv;

	if ((rv = part_object_build(t, s, nd, tmpl, n, &o)) != CKR_OK) {
		return rv;
	}
	if ((rv = part_object_commit(t, s, o)) != CKR_OK) {
		part_object_discard(o);
		return rv;
	}
	*out = o->handle;
	return CKR_OK;
}

/* The key type a secret key of a generic-secret family gets: the template's when it names
 * one the mechanism can make, CKK_GENERIC_SECRET when it names none. */
static CK_RV
generic_type(const CK_ATTRIBUTE *tmpl, CK_ULONG n, CK_ULONG *kt)
{
	int present;
	CK_RV rv;

	*kt = CKK_GENERIC_SECRET;
	if ((rv = find_ulong(tmpl, n, CKA_KEY_TYPE, kt, &present)) != CKR_OK) {
		return rv;
	}
	switch (*kt) {
	case CKK_GENERIC_SECRET:
	case CKK_SHA_1_HMAC:
	case CKK_SHA224_HMAC:
	case CKK_SHA256_HMAC:
	case CKK_SHA384_HMAC:
	case CKK_SHA512_HMAC:
		return CKR_OK;
	default:
		return CKR_TEMPLATE_INCONSISTENT;
	}
}

CK_RV
part_key_gen(struct part_token *t, uint64_t conn, CK_SESSION_HANDLE h, const CK_MECHANISM *m,
             const CK_ATTRIBUTE *tmpl, CK_ULONG n, CK_OBJECT_HANDLE *out)
{
	struct part_newobj nd = {PART_ORIGIN_GENERATE, CKO_SECRET_KEY, CKK_AES, NULL, 0, 0, 0, 0};
	struct part_attrs *gen = NULL;
	struct part_session *s;
	CK_MECHANISM_INFO info;
	CK_ATTRIBUTE *extra = NULL;
	CK_RV rv;

	*out = CK_INVALID_HANDLE;
	if ((rv = part_session_get(t, conn, h, &s)) != CKR_OK) {
		return rv;
	}
	if (m == NULL || (tmpl == NULL && n != 0)) {
		return CKR_ARGUMENTS_BAD;
	}
	if (part_mech_info(m->mechanism, &info) != CKR_OK || (info.flags & CKF_GENERATE) == 0) {
		return CKR_MECHANISM_INVALID;
	}
	if (m->mechanism == CKM_GENERIC_SECRET_KEY_GEN &&
	    (rv = generic_type(tmpl, n, &nd.sub)) != CKR_OK) {
		return rv;
	}
	nd.mech = m->mechanism;
	if ((rv = part_object_check(t, s, &nd, tmpl, n)) != CKR_OK ||
	    (rv = part_key_generate(m, tmpl, n, &gen)) != CKR_OK ||
	    (rv = flatten(gen, &extra, &nd.nextra)) != CKR_OK) {
		goto out;
	}
	nd.extra = extra;
	rv = make(t, s, &nd, tmpl, n, out);
out:
	free(extra);
	part_attrs_free(gen);
	return rv;
}

/* The two objects a key pair mechanism makes (their key type from the mechanism). */
static CK_RV
pair_newobjs(const CK_MECHANISM *m, struct part_newobj *pub, struct part_newobj *priv)
{
	static const struct part_newobj gen = {PART_ORIGIN_GENERATE, 0, 0, NULL, 0, 0, 0, 0};
	CK_MECHANISM_INFO info;

	*pub = *priv = gen;
	pub->cls = CKO_PUBLIC_KEY;
	priv->cls = CKO_PRIVATE_KEY;
	if (part_mech_info(m->mechanism, &info) != CKR_OK ||
	    (info.flags & CKF_GENERATE_KEY_PAIR) == 0) {
		return CKR_MECHANISM_INVALID;
	}
	switch (m->mechanism) {
	case CKM_RSA_PKCS_KEY_PAIR_GEN:
		pub->sub = CKK_RSA;
		break;
	case CKM_EC_KEY_PAIR_GEN:
		pub->sub = CKK_EC;
		break;
	case CKM_EC_EDWARDS_KEY_PAIR_GEN:
		pub->sub = CKK_EC_EDWARDS;
		break;
	default:
		return CKR_MECHANISM_INVALID;
	}
	priv->sub = pub->sub;
	pub->mech = priv->mech = m->mechanism;
	return CKR_OK;
}

CK_RV
part_key_gen_pair_check(struct part_token *t, uint64_t conn, CK_SESSION_HANDLE h,
                        const CK_MECHANISM *m, const CK_ATTRIBUTE *pub, CK_ULONG npub,
                        const CK_ATTRIBUTE *priv, CK_ULONG npriv)
{
	struct part_newobj ndpub, ndpriv;
	struct part_session *s;
	CK_RV rv;

	if ((rv = part_session_get(t, conn, h, &s)) != CKR_OK) {
		return rv;
	}
	if (m == NULL || (pub == NULL && npub != 0) || (priv == NULL && npriv != 0)) {
		return CKR_ARGUMENTS_BAD;
	}
	if ((rv = pair_newobjs(m, &ndpub, &ndpriv)) != CKR_OK ||
	    (rv = part_object_check(t, s, &ndpub, pub, npub)) != CKR_OK) {
		return rv;
	}
	return part_object_check(t, s, &ndpriv, priv, npriv);
}

CK_RV
part_key_gen_pair_store(struct part_token *t, uint64_t conn, CK_SESSION_HANDLE h,
                        const CK_MECHANISM *m, const CK_ATTRIBUTE *pub, CK_ULONG npub,
                        const CK_ATTRIBUTE *priv, CK_ULONG npriv, const struct part_attrs *gpub,
                        const struct part_attrs *gpriv, CK_OBJECT_HANDLE *pubh,
                        CK_OBJECT_HANDLE *privh)
{
	struct part_newobj ndpub, ndpriv;
	struct part_object *opub = NULL, *opriv = NULL;
	CK_ATTRIBUTE *xpub = NULL, *xpriv = NULL;
	struct part_session *s;
	CK_RV rv;

	*pubh = CK_INVALID_HANDLE;
	*privh = CK_INVALID_HANDLE;
	if ((rv = part_session_get(t, conn, h, &s)) != CKR_OK ||
	    (rv = pair_newobjs(m, &ndpub, &ndpriv)) != CKR_OK ||
	    (rv = flatten(gpub, &xpub, &ndpub.nextra)) != CKR_OK ||
	    (rv = flatten(gpriv, &xpriv, &ndpriv.nextra)) != CKR_OK) {
		goto out;
	}
	ndpub.extra = xpub;
	ndpriv.extra = xpriv;
	if ((rv = part_object_build(t, s, &ndpub, pub, npub, &opub)) != CKR_OK ||
	    (rv = part_object_build(t, s, &ndpriv, priv, npriv, &opriv)) != CKR_OK ||
	    (rv = part_object_commit(t, s, opub)) != CKR_OK) {
		goto out;
	}
	*pubh = opub->handle;
	if ((rv = part_object_commit(t, s, opriv)) != CKR_OK) {
		/* Both halves or neither. */
		part_object_remove(t, opub);
		opub = NULL;
		*pubh = CK_INVALID_HANDLE;
		goto out;
	}
	*privh = opriv->handle;
	opub = opriv = NULL; /* transferred */
	rv = CKR_OK;
out:
	part_object_discard(opub);
	part_object_discard(opriv);
	free(xpub);
	free(xpriv);
	return rv;
}

CK_RV
part_key_gen_pair(struct part_token *t, uint64_t conn, CK_SESSION_HANDLE h, const CK_MECHANISM *m,
                  const CK_ATTRIBUTE *pub, CK_ULONG npub, const CK_ATTRIBUTE *priv, CK_ULONG npriv,
                  CK_OBJECT_HANDLE *pubh, CK_OBJECT_HANDLE *privh)
{
	struct part_attrs *gpub = NULL, *gpriv = NULL;
	CK_RV rv;

	*pubh = CK_INVALID_HANDLE;
	*privh = CK_INVALID_HANDLE;
	if ((rv = part_key_gen_pair_check(t, conn, h, m, pub, npub, priv, npriv)) == CKR_OK &&
	    (rv = part_key_generate_pair(m, pub, npub, priv, npriv, &gpub, &gpriv)) == CKR_OK) {
		rv = part_key_gen_pair_store(t, conn, h, m, pub, npub, priv, npriv, gpub, gpriv,
		                             pubh, privh);
	}
	part_attrs_free(gpub);
	part_attrs_free(gpriv);
	return rv;
}

/*
 * C_WrapKey (v2.40 §5.16). The wrapping key needs CKA_WRAP ("CKR_KEY_FUNCTION_NOT_PERMITTED")
 * and the mechanism in its CKA_ALLOWED_MECHANISMS; the key to wrap must be extractable
 * ("CKR_KEY_UNEXTRACTABLE"), a secret or a private key (a public key is not wrapped:
 * CKR_KEY_NOT_WRAPPABLE) and, with CKA_WRAP_WITH_TRUSTED, §4.9: "If CK_TRUE, the key can
 * only be wrapped with a wrapping key that has CKA_TRUSTED set to CK_TRUE".
 */
CK_RV
part_key_wrap(struct part_token *t, uint64_t conn, CK_SESSION_HANDLE h, const CK_MECHANISM *m,
              CK_OBJECT_HANDLE wrapping, CK_OBJECT_HANDLE key, CK_BYTE *out, CK_ULONG *outlen)
{
	const struct part_key *wk, *kk;
	struct part_object *wo, *ko;
	const struct part_attr *v;
	struct part_session *s;
	CK_MECHANISM_INFO info;
	unsigned char *der = NULL;
	size_t derlen = 0;
	CK_RV rv;

	if ((rv = part_session_get(t, conn, h, &s)) != CKR_OK) {
		return rv;
	}
	if (m == NULL || outlen == NULL) {
		return CKR_ARGUMENTS_BAD;
	}
	if (part_object_lookup(t, s, wrapping, &wo) != CKR_OK || !is_key(wo)) {
		return CKR_WRAPPING_KEY_HANDLE_INVALID;
	}
	if (part_object_lookup(t, s, key, &ko) != CKR_OK || !is_key(ko)) {
		return CKR_KEY_HANDLE_INVALID;
	}
	if (part_mech_info(m->mechanism, &info) != CKR_OK || (info.flags & CKF_WRAP) == 0) {
		return CKR_MECHANISM_INVALID;
	}
	if (!part_object_bool(wo, CKA_WRAP)) {
		return CKR_KEY_FUNCTION_NOT_PERMITTED;
	}
	if (!part_object_mech_allowed(wo, m->mechanism)) {
		return CKR_MECHANISM_INVALID;
	}
	if (ko->cls == CKO_PUBLIC_KEY) {
		return CKR_KEY_NOT_WRAPPABLE;
	}
	if (!part_object_bool(ko, CKA_EXTRACTABLE)) {
		return CKR_KEY_UNEXTRACTABLE;
	}
	if (part_object_bool(ko, CKA_WRAP_WITH_TRUSTED) && !part_object_bool(wo, CKA_TRUSTED)) {
		return CKR_KEY_NOT_WRAPPABLE;
	}
	if ((rv = part_object_key(wo, &wk)) != CKR_OK) {
		return rv;
	}
	if (ko->cls == CKO_SECRET_KEY) {
		if ((v = part_object_attr(ko, CKA_VALUE)) == NULL) {
			return CKR_GENERAL_ERROR;
		}
		return part_mech_wrap(m, wk, v->value, v->len, out, outlen);
	}
	if ((rv = part_object_key(ko, &kk)) != CKR_OK ||
	    (rv = part_key_to_pkcs8(kk, &der, &derlen)) != CKR_OK) {
		return rv;
	}
	rv = part_mech_wrap(m, wk, der, derlen, out, outlen);
	OPENSSL_secure_clear_free(der, derlen);
	return rv;
}

/* The unwrapping or base key of C_UnwrapKey / C_DeriveKey, with its usage attribute. */
static CK_RV
usable(struct part_object *o, CK_ATTRIBUTE_TYPE usage, CK_FLAGS flag, const CK_MECHANISM *m,
       const struct part_key **k)
{
	CK_MECHANISM_INFO info;

	if (part_mech_info(m->mechanism, &info) != CKR_OK || (info.flags & flag) == 0) {
		return CKR_MECHANISM_INVALID;
	}
	if (!part_object_bool(o, usage)) {
		return CKR_KEY_FUNCTION_NOT_PERMITTED;
	}
	if (!part_object_mech_allowed(o, m->mechanism)) {
		return CKR_MECHANISM_INVALID;
	}
	return part_object_key(o, k);
}

/*
 * C_UnwrapKey (v2.40 §5.16): the template names the class (and, for a secret key, the key
 * type: CKR_TEMPLATE_INCOMPLETE without them); a private key's type comes from its
 * PrivateKeyInfo and the template may only agree with it. The new key is neither local nor
 * ever-sensitive: its material has been outside the token.
 */
CK_RV
part_key_unwrap(struct part_token *t, uint64_t conn, CK_SESSION_HANDLE h, const CK_MECHANISM *m,
                CK_OBJECT_HANDLE unwrapping, const CK_BYTE *wrapped, CK_ULONG wrappedlen,
                const CK_ATTRIBUTE *tmpl, CK_ULONG n, CK_OBJECT_HANDLE *out)
{
	struct part_newobj nd = {PART_ORIGIN_UNWRAP, PART_ANY, PART_ANY, NULL, 0, 0, 0, 0};
	struct part_attrs *pattrs = NULL;
	const struct part_key *uk;
	struct part_session *s;
	struct part_object *uo;
	CK_ATTRIBUTE *extra = NULL, value;
	unsigned char *bytes = NULL;
	size_t len = 0, alloc = 0;
	CK_ULONG cls = PART_ANY, vlen = 0;
	CK_KEY_TYPE kt;
	int present, has_vlen;
	CK_RV rv;

	*out = CK_INVALID_HANDLE;
	if ((rv = part_session_get(t, conn, h, &s)) != CKR_OK) {
		return rv;
	}
	if (m == NULL || wrapped == NULL || (tmpl == NULL && n != 0)) {
		return CKR_ARGUMENTS_BAD;
	}
	if (part_object_lookup(t, s, unwrapping, &uo) != CKR_OK || !is_key(uo)) {
		return CKR_UNWRAPPING_KEY_HANDLE_INVALID;
	}
	if ((rv = usable(uo, CKA_UNWRAP, CKF_UNWRAP, m, &uk)) != CKR_OK) {
		return rv;
	}
	if ((rv = find_ulong(tmpl, n, CKA_CLASS, &cls, &present)) != CKR_OK ||
	    (rv = find_ulong(tmpl, n, CKA_VALUE_LEN, &vlen, &has_vlen)) != CKR_OK) {
		return rv;
	}
	if (!present) {
		return CKR_TEMPLATE_INCOMPLETE;
	}
	if (cls != CKO_SECRET_KEY && cls != CKO_PRIVATE_KEY) {
		return CKR_TEMPLATE_INCONSISTENT;
	}
	nd.cls = cls;
	if (cls == CKO_PRIVATE_KEY) {
		/* The key type is known only after unwrapping: check with the template's. */
		nd.sub = CKK_RSA;
		if ((rv = find_ulong(tmpl, n, CKA_KEY_TYPE, &nd.sub, &present)) != CKR_OK) {
			return rv;
		}
	}
	if ((rv = part_object_check(t, s, &nd, tmpl, n)) != CKR_OK) {
		return rv;
	}
	if ((rv = part_mech_unwrap(m, uk, wrapped, wrappedlen, &bytes, &len)) != CKR_OK) {
		return rv;
	}
	alloc = len; /* what to wipe, whatever part of it becomes the key */
	if (cls == CKO_SECRET_KEY) {
		nd.sub = PART_ANY;
		if (has_vlen) {
			/* CKA_VALUE_LEN names the key's length when the wrapping padded it
			 * (CKM_AES_KEY_WRAP takes whole blocks only). */
			if (vlen > len) {
				rv = CKR_TEMPLATE_INCONSISTENT;
				goto out;
			}
			len = vlen;
		}
		value.type = CKA_VALUE;
		value.pValue = bytes;
		value.ulValueLen = len;
		nd.extra = &value;
		nd.nextra = 1;
	} else {
		if ((rv = part_key_from_pkcs8(bytes, len, &kt, &pattrs)) != CKR_OK ||
		    (rv = flatten(pattrs, &extra, &nd.nextra)) != CKR_OK) {
			goto out;
		}
		nd.sub = kt;
		nd.extra = extra;
	}
	rv = make(t, s, &nd, tmpl, n, out);
out:
	free(extra);
	part_attrs_free(pattrs);
	OPENSSL_secure_clear_free(bytes, alloc);
	return rv;
}

/*
 * C_DeriveKey with ECDH (v2.40 §2.3.13): a secret key (CKO_SECRET_KEY; CKK_GENERIC_SECRET
 * unless the template names another type) of CKA_VALUE_LEN bytes (for CKK_AES the length
 * is required). §5.16: "The CKA_ALWAYS_SENSITIVE and CKA_NEVER_EXTRACTABLE attributes" of
 * the new key follow from the base key's and its own.
 */
CK_RV
part_key_derive(struct part_token *t, uint64_t conn, CK_SESSION_HANDLE h, const CK_MECHANISM *m,
                CK_OBJECT_HANDLE base, const CK_ATTRIBUTE *tmpl, CK_ULONG n, CK_OBJECT_HANDLE *out)
{
	struct part_newobj nd = {
	        PART_ORIGIN_DERIVE, CKO_SECRET_KEY, CKK_GENERIC_SECRET, NULL, 0, 0, 0, 0};
	const struct part_key *bk;
	struct part_session *s;
	struct part_object *bo;
	unsigned char *bytes = NULL;
	size_t len = 0;
	CK_ULONG vlen = 0;
	CK_ATTRIBUTE value;
	int present, has_vlen;
	CK_RV rv;

	*out = CK_INVALID_HANDLE;
	if ((rv = part_session_get(t, conn, h, &s)) != CKR_OK) {
		return rv;
	}
	if (m == NULL || (tmpl == NULL && n != 0)) {
		return CKR_ARGUMENTS_BAD;
	}
	if (part_object_lookup(t, s, base, &bo) != CKR_OK || !is_key(bo)) {
		return CKR_KEY_HANDLE_INVALID;
	}
	/* Key agreement takes the private half. */
	if (bo->cls == CKO_PUBLIC_KEY) {
		return CKR_KEY_TYPE_INCONSISTENT;
	}
	if ((rv = usable(bo, CKA_DERIVE, CKF_DERIVE, m, &bk)) != CKR_OK) {
		return rv;
	}
	if ((rv = find_ulong(tmpl, n, CKA_KEY_TYPE, &nd.sub, &present)) != CKR_OK ||
	    (rv = find_ulong(tmpl, n, CKA_VALUE_LEN, &vlen, &has_vlen)) != CKR_OK) {
		return rv;
	}
	if (nd.sub == CKK_AES && !has_vlen) {
		return CKR_TEMPLATE_INCOMPLETE;
	}
	nd.base_always_sensitive = part_object_bool(bo, CKA_ALWAYS_SENSITIVE);
	nd.base_never_extractable = part_object_bool(bo, CKA_NEVER_EXTRACTABLE);
	if ((rv = part_object_check(t, s, &nd, tmpl, n)) != CKR_OK ||
	    (rv = part_mech_derive(m, bk, has_vlen ? vlen : 0, &bytes, &len)) != CKR_OK) {
		return rv;
	}
	value.type = CKA_VALUE;
	value.pValue = bytes;
	value.ulValueLen = len;
	nd.extra = &value;
	nd.nextra = 1;
	rv = make(t, s, &nd, tmpl, n, out);
	OPENSSL_secure_clear_free(bytes, len != 0 ? len : 1);
	return rv;
}
