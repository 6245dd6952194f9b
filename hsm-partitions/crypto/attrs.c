/*
 * hsm-partitions/crypto/attrs.c — owned attribute lists, template readers, the named
 * curves and the two DER shapes PKCS #11 puts around EC keys (the curve OID in
 * CKA_EC_PARAMS, the OCTET STRING around the point in CKA_EC_POINT).
 */
#include <string.h>

#include <openssl/bn.h>
#include <openssl/crypto.h>

#include "hsm-partitions/crypto/mech_int.h"

/* ---- attribute lists ------------------------------------------------------------------- */

struct part_attrs *
attrs_new(void)
{
	return OPENSSL_zalloc(sizeof(struct part_attrs));
}

CK_RV
attrs_add(struct part_attrs *l, CK_ATTRIBUTE_TYPE type, const void *v, size_t len)
{
	unsigned char *copy;

	if (l->n == l->cap) {
		size_t cap = l->cap == 0 ? 8 : l->cap * 2;
		CK_ATTRIBUTE *a = OPENSSL_realloc(l->a, cap * sizeof(*a));

		if (a == NULL) {
			return CKR_HOST_MEMORY;
		}
		l->a = a;
		l->cap = cap;
	}
	/* one spare byte so that an empty value still has a non-NULL buffer */
	copy = part_key_secret_attr(type) ? OPENSSL_secure_malloc(len + 1)
	                                  : OPENSSL_malloc(len + 1);
	if (copy == NULL) {
		return CKR_HOST_MEMORY;
	}
	if (len > 0) {
		memcpy(copy, v, len);
	}
	l->a[l->n].type = type;
	l->a[l->n].pValue = copy;
	l->a[l->n].ulValueLen = len;
	l->n++;
	return CKR_OK;
}

CK_RV
attrs_add_ulong(struct part_attrs *l, CK_ATTRIBUTE_TYPE type, CK_ULONG v)
{
	return attrs_add(l, type, &v, sizeof(v));
}

CK_RV
attrs_add_bn(struct part_attrs *l, CK_ATTRIBUTE_TYPE type, const BIGNUM *bn, size_t pad)
{
	size_t len = pad > 0 ? pad : (size_t)BN_num_bytes(bn);
	unsigned char *b;
	CK_RV rv;

	if (len == 0) {
		len = 1; /* zero is one 0x00 byte, never an empty value */
	}
	if ((b = OPENSSL_secure_malloc(len)) == NULL) {
		return CKR_HOST_MEMORY;
	}
	if (BN_bn2binpad(bn, b, (int)len) < 0) {
		OPENSSL_secure_clear_free(b, len);
		return CKR_FUNCTION_FAILED;
	}
	rv = attrs_add(l, type, b, len);
	OPENSSL_secure_clear_free(b, len);
	return rv;
}

int
part_key_secret_attr(CK_ATTRIBUTE_TYPE type)
{
	switch (type) {
	case CKA_VALUE:
	case CKA_PRIVATE_EXPONENT:
	case CKA_PRIME_1:
	case CKA_PRIME_2:
	case CKA_EXPONENT_1:
	case CKA_EXPONENT_2:
	case CKA_COEFFICIENT:
		return 1;
	default:
		return 0;
	}
}

size_t
part_attrs_count(const struct part_attrs *l)
{
	return l == NULL ? 0 : l->n;
}

const CK_ATTRIBUTE *
part_attrs_at(const struct part_attrs *l, size_t i)
{
	return l == NULL || i >= l->n ? NULL : &l->a[i];
}

const CK_ATTRIBUTE *
part_attrs_find(const struct part_attrs *l, CK_ATTRIBUTE_TYPE type)
{
	return l == NULL ? NULL : tmpl_find(l->a, l->n, type);
}

void
part_attrs_free(struct part_attrs *l)
{
	size_t i;

	if (l == NULL) {
		return;
	}
	for (i = 0; i < l->n; i++) {
		OPENSSL_secure_clear_free(l->a[i].pValue, l->a[i].ulValueLen + 1);
	}
	OPENSSL_free(l->a);
	OPENSSL_free(l);
}

const CK_ATTRIBUTE *
tmpl_find(const CK_ATTRIBUTE *t, CK_ULONG n, CK_ATTRIBUTE_TYPE type)
{
	CK_ULONG i;

	if (t == NULL) {
		return NULL;
	}
	for (i = 0; i < n; i++) {
		if (t[i].type == type) {
			return &t[i];
		}
	}
	return NULL;
}

CK_RV
tmpl_ulong(const CK_ATTRIBUTE *t, CK_ULONG n, CK_ATTRIBUTE_TYPE type, CK_ULONG *v)
{
	const CK_ATTRIBUTE *a = tmpl_find(t, n, type);

	if (a == NULL) {
		return CKR_TEMPLATE_INCOMPLETE;
	}
	if (a->pValue == NULL || a->ulValueLen != sizeof(CK_ULONG)) {
		return CKR_ATTRIBUTE_VALUE_INVALID;
	}
	memcpy(v, a->pValue, sizeof(*v));
	return CKR_OK;
}

/* ---- curves ---------------------------------------------------------------------------- */

static const unsigned char oid_p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48,
                                         0xce, 0x3d, 0x03, 0x01, 0x07};
static const unsigned char oid_p384[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22};
static const unsigned char oid_p521[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23};
static const unsigned char oid_ed25519[] = {0x06, 0x03, 0x2b, 0x65, 0x70};
/* PKCS #11 v3.0 §2.3.5: "edwards25519" as a PrintableString names the curve too */
static const unsigned char str_ed25519[] = {0x13, 0x0c, 'e', 'd', 'w', 'a', 'r',
                                            'd',  's',  '2', '5', '5', '1', '9'};

static const struct curve curves[] = {
        {"P-256", oid_p256, sizeof(oid_p256), 32, 256, CKK_EC},
        {"P-384", oid_p384, sizeof(oid_p384), 48, 384, CKK_EC},
        {"P-521", oid_p521, sizeof(oid_p521), 66, 521, CKK_EC},
        {"ED25519", oid_ed25519, sizeof(oid_ed25519), 32, 255, CKK_EC_EDWARDS},
};

CK_RV
curve_from_params(const unsigned char *p, size_t len, const struct curve **c)
{
	size_t i;

	*c = NULL;
	if (p == NULL || len < 2 || p[1] >= 0x80 || (size_t)p[1] + 2 != len) {
		return CKR_ATTRIBUTE_VALUE_INVALID;
	}
	for (i = 0; i < sizeof(curves) / sizeof(curves[0]); i++) {
		if (len == curves[i].oid_len && memcmp(p, curves[i].oid, len) == 0) {
			*c = &curves[i];
			return CKR_OK;
		}
	}
	if (len == sizeof(str_ed25519) && memcmp(p, str_ed25519, len) == 0) {
		*c = &curves[3];
		return CKR_OK;
	}
	/* a well-formed OID or string we do not know, versus garbage */
	if (p[0] == 0x06 || p[0] == 0x13) {
		return CKR_CURVE_NOT_SUPPORTED;
	}
	return CKR_ATTRIBUTE_VALUE_INVALID;
}

const struct curve *
curve_by_name(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(curves) / sizeof(curves[0]); i++) {
		if (OPENSSL_strcasecmp(name, curves[i].name) == 0) {
			return &curves[i];
		}
	}
	if (OPENSSL_strcasecmp(name, "prime256v1") == 0) {
		return &curves[0];
	}
	if (OPENSSL_strcasecmp(name, "secp384r1") == 0) {
		return &curves[1];
	}
	if (OPENSSL_strcasecmp(name, "secp521r1") == 0) {
		return &curves[2];
	}
	return NULL;
}

/* ---- points ---------------------------------------------------------------------------- */

static size_t
point_len(const struct curve *c)
{
	/* Ed25519 keys are 32 bytes; Weierstrass points 04 || X || Y */
	return c->key_type == CKK_EC_EDWARDS ? 32 : 1 + 2 * c->field_len;
}

CK_RV
point_unwrap(const struct curve *c, const unsigned char *p, size_t len, const unsigned char **pt,
             size_t *ptlen)
{
	size_t want = point_len(c), hdr;

	*pt = NULL;
	*ptlen = 0;
	if (p == NULL) {
		return CKR_ATTRIBUTE_VALUE_INVALID;
	}
	/*
	 * The bare point first: both it and the OCTET STRING begin with 0x04, but only the
	 * bare uncompressed point has exactly this length.
	 */
	if (len == want && (c->key_type == CKK_EC_EDWARDS || p[0] == 0x04)) {
		*pt = p;
		*ptlen = len;
		return CKR_OK;
	}
	hdr = want < 0x80 ? 2 : 3;
	if (len != hdr + want || p[0] != 0x04) {
		return CKR_ATTRIBUTE_VALUE_INVALID;
	}
	if ((hdr == 2 && p[1] != want) || (hdr == 3 && (p[1] != 0x81 || p[2] != want))) {
		return CKR_ATTRIBUTE_VALUE_INVALID;
	}
	if (c->key_type == CKK_EC && p[hdr] != 0x04) {
		return CKR_ATTRIBUTE_VALUE_INVALID; /* compressed points are not offered */
	}
	*pt = p + hdr;
	*ptlen = want;
	return CKR_OK;
}

CK_RV
attrs_add_point(struct part_attrs *l, const unsigned char *pt, size_t len)
{
	unsigned char der[3 + 255];
	size_t hdr;

	if (len > 255) {
		return CKR_FUNCTION_FAILED;
	}
	der[0] = 0x04;
	if (len < 0x80) {
		der[1] = (unsigned char)len;
		hdr = 2;
	} else {
		der[1] = 0x81;
		der[2] = (unsigned char)len;
		hdr = 3;
	}
	memcpy(der + hdr, pt, len);
	return attrs_add(l, CKA_EC_POINT, der, hdr + len);
}
