/*
 * hsm-partitions/object.c — objects: the attribute rules of each class, C_CreateObject,
 * C_CopyObject, C_DestroyObject, C_GetObjectSize, C_GetAttributeValue,
 * C_SetAttributeValue, the C_FindObjects* operation, the building of new keys for keys.c,
 * and the stored form of token objects.
 *
 * Classes are a table of attribute rules (struct class_def): one row per class, or per
 * (class, key type) and (class, certificate type), each the union of rule sets (common key
 * attributes, public/private/secret key attributes, key-type attributes: v2.40 §4.x).
 * Every object holds every attribute of its class (defaults filled in at creation), so
 * C_GetAttributeValue answers from the object alone. docs/PKCS11.md lists the rules and
 * where they deviate from the specification.
 *
 * Visibility: a session object belongs to the connection that created it (v2.40 §4.4:
 * "session objects ... can only be accessed by the application that created them") and
 * dies with the session that created it; a private object exists, for a connection, only
 * while it is logged in as the normal user. An object that is not visible is answered
 * exactly like one that does not exist (CKR_OBJECT_HANDLE_INVALID).
 *
 * Stored record of a token object, before part_seal(): u32 OBJ_VERSION | template
 * (proto_put_template: typed, bounds-checked, versioned by OBJ_VERSION). The key is the
 * object's ref, which is also its CKA_HSMGATE_REF attribute; a record whose attribute
 * differs from its key is corrupt.
 */
#include "hsm-partitions/part_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#define OBJ_VERSION 1

enum attr_kind {
	AK_BOOL,  /* CK_BBOOL, exactly 1 byte, CK_TRUE or CK_FALSE */
	AK_ULONG, /* CK_ULONG, exactly sizeof(CK_ULONG) */
	AK_BYTES, /* any length, default empty */
	AK_DATE,  /* CK_DATE (8 bytes) or empty (v2.40 §4.4: "empty" dates are allowed) */
	AK_MECHS, /* CK_MECHANISM_TYPE array, default empty */
};

#define AF_FIXED     0x001 /* given at creation only: CKR_ATTRIBUTE_READ_ONLY afterwards */
#define AF_TOKEN     0x002 /* set by the token only: CKR_ATTRIBUTE_READ_ONLY in any template */
#define AF_TO_FALSE  0x004 /* may change from CK_TRUE to CK_FALSE only */
#define AF_REQUIRED  0x008 /* C_CreateObject: CKR_TEMPLATE_INCOMPLETE when missing */
#define AF_TO_TRUE   0x010 /* may change from CK_FALSE to CK_TRUE only */
#define AF_SENSITIVE 0x020 /* never revealed while CKA_SENSITIVE or !CKA_EXTRACTABLE */
#define AF_NOCREATE  0x040 /* not in a C_CreateObject template (the token computes it) */
#define AF_MATERIAL  0x080 /* key material: only in C_CreateObject templates */
#define AF_SO        0x100 /* only the SO may make it CK_TRUE */

struct attr_rule {
	CK_ATTRIBUTE_TYPE type;
	enum attr_kind kind;
	unsigned flags;
	CK_ULONG def; /* default of an AK_BOOL or AK_ULONG */
};

/* Common object and storage attributes (v2.40 §4.2 and §4.4, table 17). CKA_MODIFIABLE:
 * "Can be changed in the process of copying the object using C_CopyObject" only; we treat
 * CKA_DESTROYABLE the same way. CKA_COPYABLE: once CK_FALSE, it stays CK_FALSE. */
static const struct attr_rule storage_rules[] = {
        {CKA_CLASS, AK_ULONG, AF_FIXED | AF_REQUIRED, 0},
        {CKA_TOKEN, AK_BOOL, AF_FIXED, CK_FALSE},
        {CKA_PRIVATE, AK_BOOL, AF_FIXED, CK_FALSE},
        {CKA_MODIFIABLE, AK_BOOL, AF_FIXED, CK_TRUE},
        {CKA_COPYABLE, AK_BOOL, AF_TO_FALSE, CK_TRUE},
        {CKA_DESTROYABLE, AK_BOOL, AF_FIXED, CK_TRUE},
        {CKA_LABEL, AK_BYTES, 0, 0},
        {CKA_HSMGATE_REF, AK_BYTES, AF_TOKEN, 0},
};

/* Data objects (v2.40 §4.5, table 20): all three default to empty. */
static const struct attr_rule data_rules[] = {
        {CKA_APPLICATION, AK_BYTES, 0, 0},
        {CKA_OBJECT_ID, AK_BYTES, 0, 0},
        {CKA_VALUE, AK_BYTES, 0, 0},
};

/* Certificates (v2.40 §4.6.2 table 21) and X.509 public key certificates (§4.6.3 table
 * 23). CKA_TRUSTED: "The CKA_TRUSTED attribute cannot be set to CK_TRUE by an application.
 * It MUST be set by a token initialization application or by the token's SO." */
static const struct attr_rule cert_rules[] = {
        {CKA_CERTIFICATE_TYPE, AK_ULONG, AF_FIXED | AF_REQUIRED, 0},
        {CKA_TRUSTED, AK_BOOL, AF_SO, CK_FALSE},
        {CKA_CERTIFICATE_CATEGORY, AK_ULONG, 0, 0 /* CK_CERTIFICATE_CATEGORY_UNSPECIFIED */},
        {CKA_CHECK_VALUE, AK_BYTES, 0, 0},
        {CKA_START_DATE, AK_DATE, 0, 0},
        {CKA_END_DATE, AK_DATE, 0, 0},
        {CKA_PUBLIC_KEY_INFO, AK_BYTES, 0, 0},
};

static const struct attr_rule x509_rules[] = {
        {CKA_SUBJECT, AK_BYTES, AF_FIXED | AF_REQUIRED, 0},
        {CKA_ID, AK_BYTES, 0, 0},
        {CKA_ISSUER, AK_BYTES, 0, 0},
        {CKA_SERIAL_NUMBER, AK_BYTES, 0, 0},
        {CKA_VALUE, AK_BYTES, AF_FIXED | AF_REQUIRED, 0},
        {CKA_URL, AK_BYTES, AF_FIXED, 0},
        {CKA_HASH_OF_SUBJECT_PUBLIC_KEY, AK_BYTES, AF_FIXED, 0},
        {CKA_HASH_OF_ISSUER_PUBLIC_KEY, AK_BYTES, AF_FIXED, 0},
        {CKA_JAVA_MIDP_SECURITY_DOMAIN, AK_ULONG, AF_FIXED, 0},
        {CKA_NAME_HASH_ALGORITHM, AK_ULONG, AF_FIXED, CKM_SHA_1},
};

/* Common key attributes (v2.40 §4.7 table 25). CKA_LOCAL and CKA_KEY_GEN_MECHANISM are
 * the token's ("cannot be set" by an application). */
static const struct attr_rule key_rules[] = {
        {CKA_KEY_TYPE, AK_ULONG, AF_FIXED | AF_REQUIRED, 0},
        {CKA_ID, AK_BYTES, 0, 0},
        {CKA_START_DATE, AK_DATE, 0, 0},
        {CKA_END_DATE, AK_DATE, 0, 0},
        {CKA_DERIVE, AK_BOOL, 0, CK_FALSE},
        {CKA_LOCAL, AK_BOOL, AF_TOKEN, CK_FALSE},
        {CKA_KEY_GEN_MECHANISM, AK_ULONG, AF_TOKEN, CK_UNAVAILABLE_INFORMATION},
        {CKA_ALLOWED_MECHANISMS, AK_MECHS, 0, 0},
};

/* Public keys (§4.8 table 28). The usage defaults are "token-specific"; ours are those of
 * SoftHSMv2, which the tools we are used with expect. */
static const struct attr_rule pub_rules[] = {
        {CKA_SUBJECT, AK_BYTES, 0, 0},
        {CKA_ENCRYPT, AK_BOOL, 0, CK_TRUE},
        {CKA_VERIFY, AK_BOOL, 0, CK_TRUE},
        {CKA_VERIFY_RECOVER, AK_BOOL, 0, CK_TRUE},
        {CKA_WRAP, AK_BOOL, 0, CK_TRUE},
        {CKA_TRUSTED, AK_BOOL, AF_SO, CK_FALSE},
        {CKA_PUBLIC_KEY_INFO, AK_BYTES, AF_FIXED, 0},
};

/* Private keys (§4.9 table 31). CKA_SENSITIVE: "Attribute cannot be changed once set to
 * CK_TRUE"; CKA_EXTRACTABLE: "Attribute cannot be changed once set to CK_FALSE" (note 11,
 * 12); CKA_ALWAYS_SENSITIVE and CKA_NEVER_EXTRACTABLE are the token's. Sensitive by
 * default: a key is exposed only when its creator asks for that. */
static const struct attr_rule priv_rules[] = {
        {CKA_SUBJECT, AK_BYTES, 0, 0},
        {CKA_SENSITIVE, AK_BOOL, AF_TO_TRUE, CK_TRUE},
        {CKA_DECRYPT, AK_BOOL, 0, CK_TRUE},
        {CKA_SIGN, AK_BOOL, 0, CK_TRUE},
        {CKA_SIGN_RECOVER, AK_BOOL, 0, CK_TRUE},
        {CKA_UNWRAP, AK_BOOL, 0, CK_TRUE},
        {CKA_EXTRACTABLE, AK_BOOL, AF_TO_FALSE, CK_FALSE},
        {CKA_ALWAYS_SENSITIVE, AK_BOOL, AF_TOKEN, CK_FALSE},
        {CKA_NEVER_EXTRACTABLE, AK_BOOL, AF_TOKEN, CK_FALSE},
        {CKA_WRAP_WITH_TRUSTED, AK_BOOL, AF_TO_TRUE, CK_FALSE},
        {CKA_ALWAYS_AUTHENTICATE, AK_BOOL, AF_FIXED, CK_FALSE},
        {CKA_PUBLIC_KEY_INFO, AK_BYTES, AF_FIXED, 0},
};

/* Secret keys (§4.10 table 34). */
static const struct attr_rule secret_rules[] = {
        {CKA_SENSITIVE, AK_BOOL, AF_TO_TRUE, CK_TRUE},
        {CKA_ENCRYPT, AK_BOOL, 0, CK_TRUE},
        {CKA_DECRYPT, AK_BOOL, 0, CK_TRUE},
        {CKA_SIGN, AK_BOOL, 0, CK_TRUE},
        {CKA_VERIFY, AK_BOOL, 0, CK_TRUE},
        {CKA_WRAP, AK_BOOL, 0, CK_TRUE},
        {CKA_UNWRAP, AK_BOOL, 0, CK_TRUE},
        {CKA_EXTRACTABLE, AK_BOOL, AF_TO_FALSE, CK_FALSE},
        {CKA_ALWAYS_SENSITIVE, AK_BOOL, AF_TOKEN, CK_FALSE},
        {CKA_NEVER_EXTRACTABLE, AK_BOOL, AF_TOKEN, CK_FALSE},
        {CKA_CHECK_VALUE, AK_BYTES, AF_TOKEN, 0},
        {CKA_WRAP_WITH_TRUSTED, AK_BOOL, AF_TO_TRUE, CK_FALSE},
        {CKA_TRUSTED, AK_BOOL, AF_SO, CK_FALSE},
};

/* Key-type attributes (§2.1.2, §2.1.3, §2.3.3, §2.3.4, v3.0 §2.3.5/6, §2.8.2, §2.4.2). */
static const struct attr_rule rsa_pub_rules[] = {
        {CKA_MODULUS, AK_BYTES, AF_FIXED | AF_REQUIRED | AF_MATERIAL, 0},
        {CKA_MODULUS_BITS, AK_ULONG, AF_FIXED | AF_NOCREATE, 0},
        {CKA_PUBLIC_EXPONENT, AK_BYTES, AF_FIXED | AF_REQUIRED, 0},
};

#define PRIV_MAT (AF_FIXED | AF_MATERIAL | AF_SENSITIVE)
static const struct attr_rule rsa_priv_rules[] = {
        {CKA_MODULUS, AK_BYTES, AF_FIXED | AF_MATERIAL | AF_REQUIRED, 0},
        {CKA_PUBLIC_EXPONENT, AK_BYTES, AF_FIXED | AF_MATERIAL, 0},
        {CKA_PRIVATE_EXPONENT, AK_BYTES, PRIV_MAT | AF_REQUIRED, 0},
        {CKA_PRIME_1, AK_BYTES, PRIV_MAT, 0},
        {CKA_PRIME_2, AK_BYTES, PRIV_MAT, 0},
        {CKA_EXPONENT_1, AK_BYTES, PRIV_MAT, 0},
        {CKA_EXPONENT_2, AK_BYTES, PRIV_MAT, 0},
        {CKA_COEFFICIENT, AK_BYTES, PRIV_MAT, 0},
};

static const struct attr_rule ec_pub_rules[] = {
        {CKA_EC_PARAMS, AK_BYTES, AF_FIXED | AF_REQUIRED, 0},
        {CKA_EC_POINT, AK_BYTES, AF_FIXED | AF_REQUIRED | AF_MATERIAL, 0},
};

static const struct attr_rule ec_priv_rules[] = {
        {CKA_EC_PARAMS, AK_BYTES, AF_FIXED | AF_REQUIRED | AF_MATERIAL, 0},
        {CKA_VALUE, AK_BYTES, PRIV_MAT | AF_REQUIRED, 0},
};

static const struct attr_rule secret_value_rules[] = {
        {CKA_VALUE, AK_BYTES, PRIV_MAT | AF_REQUIRED, 0},
        {CKA_VALUE_LEN, AK_ULONG, AF_FIXED | AF_NOCREATE, 0},
};

struct rule_set {
	const struct attr_rule *r;
	size_t n;
};

#define SET(a)                                                                                     \
	{                                                                                          \
		a, sizeof(a) / sizeof(a[0])                                                        \
	}
#define NSETS 3

/* A class, or a (class, key type) / (class, certificate type) pair. */
struct class_def {
	CK_OBJECT_CLASS cls;
	CK_ATTRIBUTE_TYPE sub_attr; /* CKA_KEY_TYPE, CKA_CERTIFICATE_TYPE, or 0 */
	CK_ULONG sub;
	struct rule_set sets[NSETS];
};

#define SECRET(kt)                                                                                 \
	{                                                                                          \
		CKO_SECRET_KEY, CKA_KEY_TYPE, kt,                                                  \
		{                                                                                  \
			SET(key_rules), SET(secret_rules), SET(secret_value_rules)                 \
		}                                                                                  \
	}

static const struct class_def classes[] = {
        {CKO_DATA, 0, 0, {SET(data_rules)}},
        {CKO_CERTIFICATE, CKA_CERTIFICATE_TYPE, CKC_X_509, {SET(cert_rules), SET(x509_rules)}},
        {CKO_PUBLIC_KEY,
         CKA_KEY_TYPE,
         CKK_RSA,
         {SET(key_rules), SET(pub_rules), SET(rsa_pub_rules)}},
        {CKO_PRIVATE_KEY,
         CKA_KEY_TYPE,
         CKK_RSA,
         {SET(key_rules), SET(priv_rules), SET(rsa_priv_rules)}},
        {CKO_PUBLIC_KEY, CKA_KEY_TYPE, CKK_EC, {SET(key_rules), SET(pub_rules), SET(ec_pub_rules)}},
        {CKO_PRIVATE_KEY,
         CKA_KEY_TYPE,
         CKK_EC,
         {SET(key_rules), SET(priv_rules), SET(ec_priv_rules)}},
        {CKO_PUBLIC_KEY,
         CKA_KEY_TYPE,
         CKK_EC_EDWARDS,
         {SET(key_rules), SET(pub_rules), SET(ec_pub_rules)}},
        {CKO_PRIVATE_KEY,
         CKA_KEY_TYPE,
         CKK_EC_EDWARDS,
         {SET(key_rules), SET(priv_rules), SET(ec_priv_rules)}},
        SECRET(CKK_AES),
        SECRET(CKK_GENERIC_SECRET),
        SECRET(CKK_SHA_1_HMAC),
        SECRET(CKK_SHA224_HMAC),
        SECRET(CKK_SHA256_HMAC),
        SECRET(CKK_SHA384_HMAC),
        SECRET(CKK_SHA512_HMAC),
};

#define NSTORAGE (sizeof(storage_rules) / sizeof(storage_rules[0]))
#define NCLASSES (sizeof(classes) / sizeof(classes[0]))

static int
is_key_class(CK_OBJECT_CLASS cls)
{
	return cls == CKO_SECRET_KEY || cls == CKO_PUBLIC_KEY || cls == CKO_PRIVATE_KEY;
}

static const struct class_def *
class_find(CK_OBJECT_CLASS cls, CK_ULONG sub)
{
	size_t i;

	for (i = 0; i < NCLASSES; i++) {
		if (classes[i].cls == cls && (classes[i].sub_attr == 0 || classes[i].sub == sub)) {
			return &classes[i];
		}
	}
	return NULL;
}

/* Whether some row has class `cls` (then it needs its subtype attribute). */
static CK_ATTRIBUTE_TYPE
class_sub_attr(CK_OBJECT_CLASS cls, int *known)
{
	size_t i;

	*known = 0;
	for (i = 0; i < NCLASSES; i++) {
		if (classes[i].cls == cls) {
			*known = 1;
			return classes[i].sub_attr;
		}
	}
	return 0;
}

static size_t
class_nrules(const struct class_def *cd)
{
	size_t i, n = NSTORAGE;

	for (i = 0; i < NSETS; i++) {
		n += cd->sets[i].n;
	}
	return n;
}

/* The i-th rule of the class (storage rules first), i < class_nrules(cd). */
static const struct attr_rule *
class_rule(const struct class_def *cd, size_t i)
{
	size_t k;

	if (i < NSTORAGE) {
		return &storage_rules[i];
	}
	i -= NSTORAGE;
	for (k = 0; k < NSETS; k++) {
		if (i < cd->sets[k].n) {
			return &cd->sets[k].r[i];
		}
		i -= cd->sets[k].n;
	}
	return NULL;
}

static const struct attr_rule *
rule_find(const struct class_def *cd, CK_ATTRIBUTE_TYPE type)
{
	size_t i, n = class_nrules(cd);

	for (i = 0; i < n; i++) {
		if (class_rule(cd, i)->type == type) {
			return class_rule(cd, i);
		}
	}
	return NULL;
}

/* A value's shape against its rule (the wire carries lengths as the application gave
 * them, so a wrong-length CK_BBOOL arrives here and is refused here). */
static int
value_ok(const struct attr_rule *r, const CK_ATTRIBUTE *a)
{
	if (a->pValue == NULL && a->ulValueLen != 0) {
		return 0;
	}
	switch (r->kind) {
	case AK_BOOL:
		return a->pValue != NULL && a->ulValueLen == sizeof(CK_BBOOL) &&
		       (*(const CK_BBOOL *)a->pValue == CK_TRUE ||
		        *(const CK_BBOOL *)a->pValue == CK_FALSE);
	case AK_ULONG:
		return a->pValue != NULL && a->ulValueLen == sizeof(CK_ULONG);
	case AK_BYTES:
		return 1;
	case AK_DATE:
		return a->ulValueLen == 0 || a->ulValueLen == sizeof(CK_DATE);
	case AK_MECHS:
		return a->ulValueLen % sizeof(CK_MECHANISM_TYPE) == 0;
	default:
		return 0;
	}
}

static const CK_ATTRIBUTE *
tmpl_find(const CK_ATTRIBUTE *t, CK_ULONG n, CK_ATTRIBUTE_TYPE type)
{
	CK_ULONG i;

	for (i = 0; i < n; i++) {
		if (t[i].type == type) {
			return &t[i];
		}
	}
	return NULL;
}

static struct part_attr *
attr_find(const struct part_object *o, CK_ATTRIBUTE_TYPE type)
{
	size_t i;

	for (i = 0; i < o->nattrs; i++) {
		if (o->attrs[i].type == type) {
			return &o->attrs[i];
		}
	}
	return NULL;
}

static int
attr_bool(const struct part_object *o, CK_ATTRIBUTE_TYPE type)
{
	const struct part_attr *a = attr_find(o, type);

	return a != NULL && a->len == 1 && a->value[0] == CK_TRUE;
}

/* Whether the sensitive attributes of `o` are hidden (CKA_SENSITIVE, or not extractable). */
static int
hidden(const struct part_object *o)
{
	return attr_bool(o, CKA_SENSITIVE) ||
	       (attr_find(o, CKA_EXTRACTABLE) != NULL && !attr_bool(o, CKA_EXTRACTABLE));
}

static void
attrs_free(struct part_attr *a, size_t n)
{
	size_t i;

	if (a == NULL) {
		return;
	}
	for (i = 0; i < n; i++) {
		/* Either heap: OPENSSL_secure_clear_free wipes and frees an ordinary block too. */
		OPENSSL_secure_clear_free(a[i].value, a[i].len != 0 ? a[i].len : 1);
	}
	free(a);
}

/* Whether attribute `type` of a `cls` object is key material to keep in the secure heap
 * (secmem.c): the values part_key_secret_attr() names, of secret and private keys only (a
 * data object's CKA_VALUE is the application's data, a certificate's is public). */
static int
secret_attr(CK_OBJECT_CLASS cls, CK_ATTRIBUTE_TYPE type)
{
	return (cls == CKO_SECRET_KEY || cls == CKO_PRIVATE_KEY) && part_key_secret_attr(type);
}

/* Sets `a` to a copy of v[len]; secret values of a `cls` object go to the secure heap. */
static int
attr_set(struct part_attr *a, CK_OBJECT_CLASS cls, CK_ATTRIBUTE_TYPE type, const void *v,
         CK_ULONG len)
{
	size_t n = len != 0 ? len : 1;
	uint8_t *p = secret_attr(cls, type) ? OPENSSL_secure_malloc(n) : OPENSSL_malloc(n);

	if (p == NULL) {
		return PART_ERR_NOMEM;
	}
	if (len != 0) {
		memcpy(p, v, len);
	}
	a->type = type;
	a->len = len;
	a->value = p;
	return 0;
}

static void
object_free(struct part_object *o)
{
	if (o == NULL) {
		return;
	}
	attrs_free(o->attrs, o->nattrs);
	part_key_free(o->key);
	free(o);
}

/* Appends `o` to the object list: creation order is the order C_FindObjects reports. */
static void
object_link(struct part_token *t, struct part_object *o)
{
	struct part_object **pp;

	o->handle = ++t->next_object;
	o->next = NULL;
	for (pp = &t->objects; *pp != NULL; pp = &(*pp)->next) {
	}
	*pp = o;
}

static void
object_unlink(struct part_token *t, struct part_object *o)
{
	struct part_object **pp;

	for (pp = &t->objects; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == o) {
			*pp = o->next;
			return;
		}
	}
}

static int
visible(const struct part_session *s, const struct part_object *o)
{
	if (!o->token && o->conn != s->conn->id) {
		return 0;
	}
	if (o->priv && s->conn->user != CKU_USER) {
		return 0;
	}
	return 1;
}

static CK_RV
object_get(struct part_token *t, const struct part_session *s, CK_OBJECT_HANDLE h,
           struct part_object **out)
{
	struct part_object *o;

	*out = NULL;
	for (o = t->objects; o != NULL; o = o->next) {
		if (o->handle == h) {
			if (!visible(s, o)) {
				break;
			}
			*out = o;
			return CKR_OK;
		}
	}
	return CKR_OBJECT_HANDLE_INVALID;
}

/*
 * The class row a template names with CKA_CLASS and, for keys and certificates, CKA_KEY_TYPE
 * or CKA_CERTIFICATE_TYPE. `cls` / `sub` other than PART_ANY are imposed by the function
 * (C_GenerateKey makes secret keys): the template may repeat them but not contradict them
 * (CKR_TEMPLATE_INCONSISTENT). v2.40 §4.2: CKA_CLASS "must be specified when the object is
 * created" — CKR_TEMPLATE_INCOMPLETE when neither gives it.
 */
static CK_RV
tmpl_class(const CK_ATTRIBUTE *tmpl, CK_ULONG n, CK_ULONG cls, CK_ULONG sub,
           const struct class_def **out)
{
	const CK_ATTRIBUTE *a;
	CK_ATTRIBUTE_TYPE sa;
	const struct class_def *cd;
	int known;

	*out = NULL;
	if ((a = tmpl_find(tmpl, n, CKA_CLASS)) != NULL) {
		if (a->pValue == NULL || a->ulValueLen != sizeof(CK_ULONG)) {
			return CKR_ATTRIBUTE_VALUE_INVALID;
		}
		if (cls != PART_ANY && *(const CK_ULONG *)a->pValue != cls) {
			return CKR_TEMPLATE_INCONSISTENT;
		}
		cls = *(const CK_ULONG *)a->pValue;
	} else if (cls == PART_ANY) {
		return CKR_TEMPLATE_INCOMPLETE;
	}
	sa = class_sub_attr(cls, &known);
	if (!known) {
		switch (cls) {
		case CKO_HW_FEATURE:
		case CKO_DOMAIN_PARAMETERS:
		case CKO_MECHANISM:
		case CKO_OTP_KEY:
			/* Classes PKCS #11 defines that this token does not hold. */
			return CKR_TEMPLATE_INCONSISTENT;
		default:
			return CKR_ATTRIBUTE_VALUE_INVALID;
		}
	}
	if (sa != 0) {
		if ((a = tmpl_find(tmpl, n, sa)) != NULL) {
			if (a->pValue == NULL || a->ulValueLen != sizeof(CK_ULONG)) {
				return CKR_ATTRIBUTE_VALUE_INVALID;
			}
			if (sub != PART_ANY && *(const CK_ULONG *)a->pValue != sub) {
				return CKR_TEMPLATE_INCONSISTENT;
			}
			sub = *(const CK_ULONG *)a->pValue;
		} else if (sub == PART_ANY) {
			return CKR_TEMPLATE_INCOMPLETE;
		}
	} else {
		sub = 0;
	}
	if ((cd = class_find(cls, sub)) == NULL) {
		/* A key or certificate type this token does not support. */
		return CKR_ATTRIBUTE_VALUE_INVALID;
	}
	*out = cd;
	return CKR_OK;
}

CK_RV
part_object_lookup(struct part_token *t, const struct part_session *s, CK_OBJECT_HANDLE h,
                   struct part_object **out)
{
	return object_get(t, s, h, out);
}

int
part_object_bool(const struct part_object *o, CK_ATTRIBUTE_TYPE type)
{
	return attr_bool(o, type);
}

const struct part_attr *
part_object_attr(const struct part_object *o, CK_ATTRIBUTE_TYPE type)
{
	return attr_find(o, type);
}

int
part_object_mech_allowed(const struct part_object *o, CK_MECHANISM_TYPE mech)
{
	const struct part_attr *a = attr_find(o, CKA_ALLOWED_MECHANISMS);
	CK_MECHANISM_TYPE m;
	size_t i;

	if (a == NULL || a->len == 0) {
		return 1;
	}
	for (i = 0; i + sizeof(m) <= a->len; i += sizeof(m)) {
		memcpy(&m, a->value + i, sizeof(m));
		if (m == mech) {
			return 1;
		}
	}
	return 0;
}

/* The object's attributes as a template for the engine, without empty values (an empty
 * CKA_PRIME_1 of an imported key is an absent one) and without the lengths the token
 * computes. `*out` is freed by the caller; the
 * values are the object's. */
static CK_RV
object_flat(const struct part_object *o, CK_ATTRIBUTE **out, CK_ULONG *n)
{
	CK_ATTRIBUTE *t;
	size_t i;

	*n = 0;
	if ((t = calloc(o->nattrs != 0 ? o->nattrs : 1, sizeof(*t))) == NULL) {
		return CKR_HOST_MEMORY;
	}
	for (i = 0; i < o->nattrs; i++) {
		/* CKA_VALUE_LEN and CKA_MODULUS_BITS are computed from the material here, and
		 * a default of 0 is not a length the engine should check the value against. */
		if (o->attrs[i].len == 0 || o->attrs[i].type == CKA_VALUE_LEN ||
		    o->attrs[i].type == CKA_MODULUS_BITS) {
			continue;
		}
		t[*n].type = o->attrs[i].type;
		t[*n].pValue = o->attrs[i].value;
		t[*n].ulValueLen = o->attrs[i].len;
		(*n)++;
	}
	*out = t;
	return CKR_OK;
}

CK_RV
part_object_key(struct part_object *o, const struct part_key **out)
{
	CK_ATTRIBUTE *flat = NULL;
	CK_ULONG n;
	CK_RV rv;

	*out = NULL;
	if (!is_key_class(o->cls)) {
		return CKR_KEY_HANDLE_INVALID;
	}
	if (o->key == NULL) {
		if ((rv = object_flat(o, &flat, &n)) != CKR_OK) {
			return rv;
		}
		rv = part_key_from_attrs(o->cls, o->sub, flat, n, &o->key);
		free(flat);
		if (rv != CKR_OK) {
			/* The record passed its seal and the rules when it was made. */
			return rv == CKR_HOST_MEMORY ? rv : CKR_GENERAL_ERROR;
		}
	}
	*out = o->key;
	return CKR_OK;
}

/* ---- the stored form -------------------------------------------------------------------- */

int
part_object_encode(const struct part_object *o, struct proto_buf *out)
{
	CK_ATTRIBUTE *t;
	size_t i;
	int r;

	if ((t = calloc(o->nattrs != 0 ? o->nattrs : 1, sizeof(*t))) == NULL) {
		return PART_ERR_NOMEM;
	}
	for (i = 0; i < o->nattrs; i++) {
		t[i].type = o->attrs[i].type;
		t[i].pValue = o->attrs[i].value;
		t[i].ulValueLen = o->attrs[i].len;
	}
	r = proto_put_u32(out, OBJ_VERSION);
	if (r == 0) {
		r = proto_put_template(out, t, o->nattrs);
	}
	free(t);
	if (r != 0) {
		return r == PROTO_ERR_NOMEM ? PART_ERR_NOMEM : PART_ERR_INVALID;
	}
	return 0;
}

/* Seals and writes a token object, with its sealed-index entry (seal.c, one write
 * transaction). */
static int
object_store(struct part_token *t, const struct part_object *o)
{
	struct proto_buf rec;
	int r;

	proto_buf_init(&rec);
	if ((r = part_object_encode(o, &rec)) == 0) {
		r = part_seal_store(t->seal, o->ref, rec.data, rec.len);
	}
	proto_buf_free(&rec);
	return r;
}

static int
object_unstore(struct part_token *t, const struct part_object *o)
{
	return part_seal_unstore(t->seal, o->ref);
}

/* Builds a token object from its unsealed record; checks it against the class rules as
 * strictly as a creation template, since a record is input too. */
static int
object_decode(const char *ref, const uint8_t *p, size_t len, struct part_object **out)
{
	struct proto_arena *arena = NULL;
	struct part_object *o = NULL;
	const struct class_def *cd;
	const struct attr_rule *rule;
	const CK_ATTRIBUTE *ra;
	struct proto_cur c;
	CK_ATTRIBUTE *tmpl;
	CK_ULONG n, i;
	uint32_t version;
	int r = PART_ERR_CORRUPT;

	*out = NULL;
	proto_cur_init(&c, p, len);
	if ((arena = proto_arena_new()) == NULL) {
		return PART_ERR_NOMEM;
	}
	if (proto_get_u32(&c, &version) != 0 || version != OBJ_VERSION ||
	    proto_get_template(&c, arena, &tmpl, &n) != 0 || proto_cur_end(&c) != 0) {
		goto out;
	}
	if (tmpl_class(tmpl, n, PART_ANY, PART_ANY, &cd) != CKR_OK) {
		goto out;
	}
	if ((ra = tmpl_find(tmpl, n, CKA_HSMGATE_REF)) == NULL || ra->ulValueLen != PART_REF_LEN ||
	    memcmp(ra->pValue, ref, PART_REF_LEN) != 0) {
		goto out;
	}
	if ((o = calloc(1, sizeof(*o))) == NULL ||
	    (o->attrs = calloc(n != 0 ? n : 1, sizeof(*o->attrs))) == NULL) {
		r = PART_ERR_NOMEM;
		goto out;
	}
	o->cls = cd->cls;
	o->sub = cd->sub;
	memcpy(o->ref, ref, PART_REF_LEN);
	for (i = 0; i < n; i++) {
		if ((rule = rule_find(cd, tmpl[i].type)) == NULL || !value_ok(rule, &tmpl[i]) ||
		    attr_find(o, tmpl[i].type) != NULL) {
			goto out;
		}
		if ((r = attr_set(&o->attrs[o->nattrs], o->cls, tmpl[i].type, tmpl[i].pValue,
		                  tmpl[i].ulValueLen)) != 0) {
			goto out;
		}
		o->nattrs++;
		r = PART_ERR_CORRUPT;
	}
	o->token = attr_bool(o, CKA_TOKEN);
	o->priv = attr_bool(o, CKA_PRIVATE);
	if (!o->token) {
		goto out;
	}
	*out = o;
	o = NULL; /* transferred */
	r = 0;
out:
	object_free(o);
	proto_arena_free(arena);
	return r;
}

struct load_ctx {
	struct part_token *t;
	struct proto_buf rec;
};

static int
load_one(void *arg, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
	struct load_ctx *lc = arg;
	struct part_object *o = NULL;
	char ref[PART_REF_LEN + 1];
	int r;

	if (klen != PART_REF_LEN) {
		fprintf(stderr, "hsmgate-worker: store: object key of %zu bytes\n", klen);
		return PART_ERR_CORRUPT;
	}
	memcpy(ref, key, PART_REF_LEN);
	ref[PART_REF_LEN] = '\0';
	proto_buf_reset(&lc->rec);
	if ((r = part_unseal(lc->t->seal, ref, val, vlen, &lc->rec)) != 0 ||
	    (r = object_decode(ref, lc->rec.data, lc->rec.len, &o)) != 0) {
		/* Fail closed: a record that does not unseal may have been tampered with. */
		fprintf(stderr, "hsmgate-worker: store: object %s: %s\n", ref, part_strerror(r));
		return r;
	}
	object_link(lc->t, o);
	return 0;
}

int
part_object_load_all(struct part_token *t)
{
	struct load_ctx lc = {t, {0}};
	struct part_txn *txn = NULL;
	int r;

	proto_buf_init(&lc.rec);
	if ((r = part_store_txn_begin(t->store, 0, &txn)) != 0) {
		goto out;
	}
	if ((r = part_store_foreach(txn, PART_DB_OBJECTS, load_one, &lc)) == 0) {
		r = part_seal_load_end(t->seal); /* a record deleted from the store */
	}
out:
	part_store_txn_abort(txn);
	proto_buf_free(&lc.rec);
	return r;
}

void
part_object_free_all(struct part_token *t)
{
	struct part_object *o;

	while ((o = t->objects) != NULL) {
		t->objects = o->next;
		object_free(o);
	}
}

void
part_object_drop_token(struct part_token *t)
{
	struct part_object **pp = &t->objects, *o;

	while ((o = *pp) != NULL) {
		if (o->token) {
			*pp = o->next;
			object_free(o);
		} else {
			pp = &o->next;
		}
	}
}

void
part_object_drop_session(struct part_token *t, CK_SESSION_HANDLE h)
{
	struct part_object **pp = &t->objects, *o;

	while ((o = *pp) != NULL) {
		if (!o->token && o->session == h) {
			*pp = o->next;
			object_free(o);
		} else {
			pp = &o->next;
		}
	}
}

/* ---- new objects: C_CreateObject and the key functions ---------------------------------- */

static int
new_ref(char ref[PART_REF_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char rnd[PART_REF_LEN / 2];
	size_t i;

	if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
		return PART_ERR_CRYPTO;
	}
	for (i = 0; i < sizeof(rnd); i++) {
		ref[2 * i] = hex[rnd[i] >> 4];
		ref[2 * i + 1] = hex[rnd[i] & 0xf];
	}
	ref[PART_REF_LEN] = '\0';
	return 0;
}

/* Replaces (or adds) the value of `type` in `o`. */
static int
attr_replace(struct part_object *o, CK_ATTRIBUTE_TYPE type, const void *v, CK_ULONG len)
{
	struct part_attr *a = attr_find(o, type), na;

	if (a == NULL) {
		return PART_ERR_INVALID;
	}
	if (attr_set(&na, o->cls, type, v, len) != 0) {
		return PART_ERR_NOMEM;
	}
	OPENSSL_secure_clear_free(a->value, a->len != 0 ? a->len : 1);
	*a = na;
	return 0;
}

static int
attr_replace_bool(struct part_object *o, CK_ATTRIBUTE_TYPE type, int v)
{
	CK_BBOOL b = v ? CK_TRUE : CK_FALSE;

	return attr_replace(o, type, &b, 1);
}

static int
attr_replace_ulong(struct part_object *o, CK_ATTRIBUTE_TYPE type, CK_ULONG v)
{
	return attr_replace(o, type, &v, sizeof(v));
}

/* The boolean value a new object will have: the template's, else the default. v2.40 §4.4
 * makes CKA_PRIVATE's default "token-specific": private and secret keys are private unless
 * the template says otherwise, every other object is public. */
static int
tmpl_bool(const struct class_def *cd, const CK_ATTRIBUTE *tmpl, CK_ULONG n, CK_ATTRIBUTE_TYPE type)
{
	const CK_ATTRIBUTE *a = tmpl_find(tmpl, n, type);
	const struct attr_rule *r;

	if (a != NULL && a->pValue != NULL && a->ulValueLen == 1) {
		return *(const CK_BBOOL *)a->pValue == CK_TRUE;
	}
	if (type == CKA_PRIVATE) {
		return cd->cls == CKO_PRIVATE_KEY || cd->cls == CKO_SECRET_KEY;
	}
	return (r = rule_find(cd, type)) != NULL && r->def == CK_TRUE;
}

static CK_RV
check_tmpl(struct part_session *s, const struct part_newobj *nd, const CK_ATTRIBUTE *tmpl,
           CK_ULONG n, const struct class_def **out)
{
	const struct class_def *cd;
	const struct attr_rule *rule;
	CK_ULONG i, j;
	CK_RV rv;

	*out = NULL;
	if (tmpl == NULL && n != 0) {
		return CKR_ARGUMENTS_BAD;
	}
	if ((rv = tmpl_class(tmpl, n, nd->cls, nd->sub, &cd)) != CKR_OK) {
		return rv;
	}
	for (i = 0; i < n; i++) {
		if ((rule = rule_find(cd, tmpl[i].type)) == NULL) {
			return CKR_ATTRIBUTE_TYPE_INVALID;
		}
		/* v2.40 §4.1.2 table 10 note 4 ("Must not be specified when object is
		 * created with C_CreateObject") covers CKA_LOCAL and the token's other
		 * attributes; §5.7: an attribute the application may not set is
		 * CKR_ATTRIBUTE_READ_ONLY. */
		if (rule->flags & AF_TOKEN) {
			return CKR_ATTRIBUTE_READ_ONLY;
		}
		if (!value_ok(rule, &tmpl[i])) {
			return CKR_ATTRIBUTE_VALUE_INVALID;
		}
		for (j = 0; j < i; j++) {
			if (tmpl[j].type == tmpl[i].type) {
				return CKR_TEMPLATE_INCONSISTENT;
			}
		}
		/* Table 10 note 2: "Must not be specified when object is created with
		 * C_CreateObject" (CKA_MODULUS_BITS, CKA_VALUE_LEN); note 4 / 6: key material
		 * "Must not be specified when object is generated ... or unwrapped". */
		if (nd->origin == PART_ORIGIN_CREATE && (rule->flags & AF_NOCREATE)) {
			return CKR_TEMPLATE_INCONSISTENT;
		}
		if (nd->origin != PART_ORIGIN_CREATE && (rule->flags & AF_MATERIAL)) {
			return CKR_TEMPLATE_INCONSISTENT;
		}
		/* §4.8: "The CKA_TRUSTED attribute cannot be set to CK_TRUE by an
		 * application. It MUST be set by a token initialization application or by
		 * the token's SO." */
		if ((rule->flags & AF_SO) && *(const CK_BBOOL *)tmpl[i].pValue == CK_TRUE &&
		    s->conn->user != CKU_SO) {
			return CKR_ATTRIBUTE_READ_ONLY;
		}
		/* No per-operation re-authentication (CKU_CONTEXT_SPECIFIC) yet: refuse a
		 * key that would demand it rather than use it without (docs/PKCS11.md). */
		if (tmpl[i].type == CKA_ALWAYS_AUTHENTICATE &&
		    *(const CK_BBOOL *)tmpl[i].pValue == CK_TRUE) {
			return CKR_ATTRIBUTE_VALUE_INVALID;
		}
	}
	if (nd->origin == PART_ORIGIN_CREATE) {
		for (i = 0; i < class_nrules(cd); i++) {
			rule = class_rule(cd, i);
			if ((rule->flags & AF_REQUIRED) && tmpl_find(tmpl, n, rule->type) == NULL) {
				return CKR_TEMPLATE_INCOMPLETE;
			}
		}
	}
	/* v2.40 §5.7: "Only session objects can be created during a read-only session" and
	 * "Only public objects can be created unless the normal user is logged in." */
	if (tmpl_bool(cd, tmpl, n, CKA_TOKEN) && !s->rw) {
		return CKR_SESSION_READ_ONLY;
	}
	if (tmpl_bool(cd, tmpl, n, CKA_PRIVATE) && s->conn->user != CKU_USER) {
		return CKR_USER_NOT_LOGGED_IN;
	}
	*out = cd;
	return CKR_OK;
}

CK_RV
part_object_check(struct part_token *t, struct part_session *s, const struct part_newobj *nd,
                  const CK_ATTRIBUTE *tmpl, CK_ULONG n)
{
	const struct class_def *cd;

	(void)t;
	return check_tmpl(s, nd, tmpl, n, &cd);
}

/* CKA_CHECK_VALUE of a secret key (v2.40 §2.8.2 for AES: "the first three bytes of the
 * ECB encryption of a single block of null (0x00) bytes"; v3.0 §4.10 for other secret keys:
 * the first three bytes of the SHA-1 hash of the value). */
static CK_RV
check_value(const struct part_object *o, unsigned char cv[3])
{
	const struct part_attr *v = attr_find(o, CKA_VALUE);
	unsigned char zero[16] = {0}, blk[32], md[EVP_MAX_MD_SIZE];
	const EVP_CIPHER *c = NULL;
	EVP_CIPHER_CTX *ctx = NULL;
	unsigned int mdlen = 0;
	int len = 0;
	CK_RV rv = CKR_GENERAL_ERROR;

	if (v == NULL) {
		return CKR_GENERAL_ERROR;
	}
	if (o->sub != CKK_AES) {
		if (EVP_Digest(v->value, v->len, md, &mdlen, EVP_sha1(), NULL) != 1) {
			return CKR_GENERAL_ERROR;
		}
		memcpy(cv, md, 3);
		OPENSSL_cleanse(md, sizeof(md));
		return CKR_OK;
	}
	switch (v->len) {
	case 16:
		c = EVP_aes_128_ecb();
		break;
	case 24:
		c = EVP_aes_192_ecb();
		break;
	case 32:
		c = EVP_aes_256_ecb();
		break;
	default:
		return CKR_GENERAL_ERROR;
	}
	if ((ctx = EVP_CIPHER_CTX_new()) == NULL) {
		return CKR_HOST_MEMORY;
	}
	if (EVP_EncryptInit_ex(ctx, c, NULL, v->value, NULL) != 1 ||
	    EVP_CIPHER_CTX_set_padding(ctx, 0) != 1 ||
	    EVP_EncryptUpdate(ctx, blk, &len, zero, sizeof(zero)) != 1 || len != 16) {
		goto out;
	}
	memcpy(cv, blk, 3);
	rv = CKR_OK;
out:
	EVP_CIPHER_CTX_free(ctx);
	OPENSSL_cleanse(blk, sizeof(blk));
	return rv;
}

/* The attributes of a new key that the token computes from its material. */
static CK_RV
key_fill(struct part_object *o, const struct part_newobj *nd)
{
	CK_ATTRIBUTE *flat = NULL;
	unsigned char cv[3];
	CK_ULONG n;
	int sens, extr;
	CK_RV rv;

	if ((rv = object_flat(o, &flat, &n)) != CKR_OK) {
		return rv;
	}
	rv = part_key_from_attrs(o->cls, o->sub, flat, n, &o->key);
	free(flat);
	if (rv != CKR_OK) {
		return rv;
	}
	if (o->cls == CKO_PUBLIC_KEY && o->sub == CKK_RSA &&
	    attr_replace_ulong(o, CKA_MODULUS_BITS, part_key_size(o->key)) != 0) {
		return CKR_HOST_MEMORY;
	}
	if (o->cls == CKO_SECRET_KEY) {
		if (attr_replace_ulong(o, CKA_VALUE_LEN, attr_find(o, CKA_VALUE)->len) != 0) {
			return CKR_HOST_MEMORY;
		}
		if ((rv = check_value(o, cv)) != CKR_OK) {
			return rv;
		}
		if (attr_replace(o, CKA_CHECK_VALUE, cv, 3) != 0) {
			return CKR_HOST_MEMORY;
		}
	}
	if (attr_replace_bool(o, CKA_LOCAL, nd->origin == PART_ORIGIN_GENERATE) != 0 ||
	    attr_replace_ulong(o, CKA_KEY_GEN_MECHANISM,
	                       nd->origin == PART_ORIGIN_GENERATE
	                               ? nd->mech
	                               : CK_UNAVAILABLE_INFORMATION) != 0) {
		return CKR_HOST_MEMORY;
	}
	if (o->cls == CKO_PUBLIC_KEY) {
		return CKR_OK;
	}
	/* §4.9 / §4.10: CKA_ALWAYS_SENSITIVE "If CK_TRUE, the key has always had the
	 * CKA_SENSITIVE attribute set to CK_TRUE", CKA_NEVER_EXTRACTABLE "... never had the
	 * CKA_EXTRACTABLE attribute set to CK_TRUE". Only a key born in the token can say so;
	 * a derived key inherits its base key's history (§5.16 C_DeriveKey). */
	sens = attr_bool(o, CKA_SENSITIVE);
	extr = attr_bool(o, CKA_EXTRACTABLE);
	switch (nd->origin) {
	case PART_ORIGIN_GENERATE:
		break;
	case PART_ORIGIN_DERIVE:
		sens = sens && nd->base_always_sensitive;
		extr = extr || !nd->base_never_extractable;
		break;
	case PART_ORIGIN_CREATE:
	case PART_ORIGIN_UNWRAP:
	default:
		sens = 0;
		extr = 1;
		break;
	}
	if (attr_replace_bool(o, CKA_ALWAYS_SENSITIVE, sens) != 0 ||
	    attr_replace_bool(o, CKA_NEVER_EXTRACTABLE, !extr) != 0) {
		return CKR_HOST_MEMORY;
	}
	return CKR_OK;
}

CK_RV
part_object_build(struct part_token *t, struct part_session *s, const struct part_newobj *nd,
                  const CK_ATTRIBUTE *tmpl, CK_ULONG n, struct part_object **out)
{
	struct part_object *o = NULL;
	const struct class_def *cd;
	const struct attr_rule *rule;
	const CK_ATTRIBUTE *a;
	size_t i, total;
	int r = 0;
	CK_RV rv;

	(void)t;
	*out = NULL;
	if ((rv = check_tmpl(s, nd, tmpl, n, &cd)) != CKR_OK) {
		return rv;
	}
	total = class_nrules(cd);
	if ((o = calloc(1, sizeof(*o))) == NULL ||
	    (o->attrs = calloc(total, sizeof(*o->attrs))) == NULL) {
		rv = CKR_HOST_MEMORY;
		goto out;
	}
	o->cls = cd->cls;
	o->sub = cd->sub;
	if (new_ref(o->ref) != 0) {
		rv = CKR_DEVICE_ERROR;
		goto out;
	}
	/* Every attribute of the class, in rule order: the token's value, the template's,
	 * or the default. */
	for (i = 0; i < total && r == 0; i++) {
		rule = class_rule(cd, i);
		if (rule->type == CKA_HSMGATE_REF) {
			r = attr_set(&o->attrs[i], o->cls, rule->type, o->ref, PART_REF_LEN);
		} else if (rule->type == CKA_CLASS) {
			r = attr_set(&o->attrs[i], o->cls, rule->type, &cd->cls, sizeof(CK_ULONG));
		} else if (rule->type == cd->sub_attr) {
			r = attr_set(&o->attrs[i], o->cls, rule->type, &cd->sub, sizeof(CK_ULONG));
		} else if ((a = tmpl_find(nd->extra, nd->nextra, rule->type)) != NULL ||
		           (a = tmpl_find(tmpl, n, rule->type)) != NULL) {
			r = attr_set(&o->attrs[i], o->cls, rule->type, a->pValue, a->ulValueLen);
		} else if (rule->type == CKA_PRIVATE) {
			CK_BBOOL b = tmpl_bool(cd, tmpl, n, CKA_PRIVATE) ? CK_TRUE : CK_FALSE;

			r = attr_set(&o->attrs[i], o->cls, rule->type, &b, 1);
		} else if (rule->kind == AK_BOOL) {
			CK_BBOOL b = (CK_BBOOL)rule->def;

			r = attr_set(&o->attrs[i], o->cls, rule->type, &b, 1);
		} else if (rule->kind == AK_ULONG) {
			r = attr_set(&o->attrs[i], o->cls, rule->type, &rule->def,
			             sizeof(CK_ULONG));
		} else {
			r = attr_set(&o->attrs[i], o->cls, rule->type, NULL, 0);
		}
		if (r == 0) {
			o->nattrs++;
		}
	}
	if (r != 0) {
		rv = CKR_HOST_MEMORY;
		goto out;
	}
	o->token = attr_bool(o, CKA_TOKEN);
	o->priv = attr_bool(o, CKA_PRIVATE);
	if (is_key_class(o->cls) && (rv = key_fill(o, nd)) != CKR_OK) {
		goto out;
	}
	*out = o;
	o = NULL; /* transferred */
	rv = CKR_OK;
out:
	object_free(o);
	return rv;
}

CK_RV
part_object_commit(struct part_token *t, struct part_session *s, struct part_object *o)
{
	if (o->token) {
		if (object_store(t, o) != 0) {
			return CKR_DEVICE_ERROR;
		}
	} else {
		o->conn = s->conn->id;
		o->session = s->handle;
	}
	object_link(t, o);
	return CKR_OK;
}

void
part_object_discard(struct part_object *o)
{
	object_free(o);
}

void
part_object_remove(struct part_token *t, struct part_object *o)
{
	if (o->token) {
		(void)object_unstore(t, o);
	}
	object_unlink(t, o);
	object_free(o);
}

CK_RV
part_object_create(struct part_token *t, uint64_t conn, CK_SESSION_HANDLE h,
                   const CK_ATTRIBUTE *tmpl, CK_ULONG n, CK_OBJECT_HANDLE *out)
{
	struct part_newobj nd = {PART_ORIGIN_CREATE, PART_ANY, PART_ANY, NULL, 0, 0, 0, 0};
	struct part_object *o = NULL;
	struct part_session *s;
	CK_RV rv;

	*out = CK_INVALID_HANDLE;
	if ((rv = part_session_get(t, conn, h, &s)) != CKR_OK) {
		return rv;
	}
	if ((rv = part_object_build(t, s, &nd, tmpl, n, &o)) != CKR_OK) {
		return rv;
	}
	if ((rv = part_object_commit(t, s, o)) != CKR_OK) {
		part_object_discard(o);
		return rv;
	}
	*out = o->handle;
	return CKR_OK;
}

/* ---- C_CopyObject ----------------------------------------------------------------------- */

/*
 * v2.40 §5.7 C_CopyObject: "The template may specify new values for any attributes of the
 * object that can ordinarily be modified ... (e.g., in the course of copying a secret key,
 * a key's CKA_EXTRACTABLE attribute may be changed from CK_TRUE to CK_FALSE, but not the
 * other way around. If this change is made, the new key's CKA_NEVER_EXTRACTABLE attribute
 * will have the value CK_FALSE. Similarly, the template may specify that the new key's
 * CKA_SENSITIVE attribute be CK_TRUE; the new key will have the same value for its
 * CKA_ALWAYS_SENSITIVE attribute as the original key)." CKA_TOKEN and CKA_PRIVATE may be
 * chosen anew (table 17 note); CKA_MODIFIABLE and CKA_DESTROYABLE may only be turned off,
 * so that a copy never has more rights than its original. A non-modifiable original lets
 * the copy change only those storage attributes.
 */
static CK_RV
copy_check(const struct part_session *s, const struct class_def *cd, const struct part_object *src,
           const CK_ATTRIBUTE *tmpl, CK_ULONG n)
{
	const struct attr_rule *rule;
	CK_ULONG i, j;
	CK_BBOOL v;

	for (i = 0; i < n; i++) {
		if ((rule = rule_find(cd, tmpl[i].type)) == NULL) {
			return CKR_ATTRIBUTE_TYPE_INVALID;
		}
		if (!value_ok(rule, &tmpl[i])) {
			return CKR_ATTRIBUTE_VALUE_INVALID;
		}
		for (j = 0; j < i; j++) {
			if (tmpl[j].type == tmpl[i].type) {
				return CKR_TEMPLATE_INCONSISTENT;
			}
		}
		v = rule->kind == AK_BOOL ? *(const CK_BBOOL *)tmpl[i].pValue : CK_FALSE;
		switch (tmpl[i].type) {
		case CKA_TOKEN:
		case CKA_PRIVATE:
			continue;
		case CKA_MODIFIABLE:
		case CKA_DESTROYABLE:
			if (v == CK_TRUE && !attr_bool(src, tmpl[i].type)) {
				return CKR_ATTRIBUTE_READ_ONLY;
			}
			continue;
		default:
			break;
		}
		if (rule->flags & (AF_FIXED | AF_TOKEN)) {
			return CKR_ATTRIBUTE_READ_ONLY;
		}
		if (!attr_bool(src, CKA_MODIFIABLE) && tmpl[i].type != CKA_COPYABLE) {
			return CKR_ATTRIBUTE_READ_ONLY;
		}
		if ((rule->flags & AF_TO_FALSE) && v == CK_TRUE && !attr_bool(src, rule->type)) {
			return CKR_ATTRIBUTE_READ_ONLY;
		}
		if ((rule->flags & AF_TO_TRUE) && v == CK_FALSE && attr_bool(src, rule->type)) {
			return CKR_ATTRIBUTE_READ_ONLY;
		}
		if ((rule->flags & AF_SO) && v == CK_TRUE && s->conn->user != CKU_SO) {
			return CKR_ATTRIBUTE_READ_ONLY;
		}
	}
	return CKR_OK;
}

CK_RV
part_object_copy(struct part_token *t, uint64_t conn, CK_SESSION_HANDLE h, CK_OBJECT_HANDLE obj,
                 const CK_ATTRIBUTE *tmpl, CK_ULONG n, CK_OBJECT_HANDLE *out)
{
	struct part_object *src, *o = NULL;
	const struct class_def *cd;
	const CK_ATTRIBUTE *a;
	struct part_session *s;
	size_t i;
	CK_RV rv;

	*out = CK_INVALID_HANDLE;
	if ((rv = part_session_get(t, conn, h, &s)) != CKR_OK ||
	    (rv = object_get(t, s, obj, &src)) != CKR_OK) {
		return rv;
	}
	if (tmpl == NULL && n != 0) {
		return CKR_ARGUMENTS_BAD;
	}
	/* §4.4 CKA_COPYABLE: "If CK_FALSE, the object cannot be copied"; §5.7 names
	 * CKR_ACTION_PROHIBITED. */
	if (!attr_bool(src, CKA_COPYABLE)) {
		return CKR_ACTION_PROHIBITED;
	}
	cd = class_find(src->cls, src->sub);
	if ((rv = copy_check(s, cd, src, tmpl, n)) != CKR_OK) {
		return rv;
	}
	if ((o = calloc(1, sizeof(*o))) == NULL ||
	    (o->attrs = calloc(src->nattrs != 0 ? src->nattrs : 1, sizeof(*o->attrs))) == NULL) {
		rv = CKR_HOST_MEMORY;
		goto out;
	}
	o->cls = src->cls;
	o->sub = src->sub;
	if (new_ref(o->ref) != 0) {
		rv = CKR_DEVICE_ERROR;
		goto out;
	}
	for (i = 0; i < src->nattrs; i++) {
		const struct part_attr *sa = &src->attrs[i];
		int r;

		if (sa->type == CKA_HSMGATE_REF) {
			r = attr_set(&o->attrs[i], o->cls, sa->type, o->ref, PART_REF_LEN);
		} else if ((a = tmpl_find(tmpl, n, sa->type)) != NULL) {
			r = attr_set(&o->attrs[i], o->cls, sa->type, a->pValue, a->ulValueLen);
		} else {
			r = attr_set(&o->attrs[i], o->cls, sa->type, sa->value, sa->len);
		}
		if (r != 0) {
			rv = CKR_HOST_MEMORY;
			goto out;
		}
		o->nattrs++;
	}
	if (attr_find(o, CKA_NEVER_EXTRACTABLE) != NULL && attr_bool(o, CKA_EXTRACTABLE) &&
	    attr_replace_bool(o, CKA_NEVER_EXTRACTABLE, 0) != 0) {
		rv = CKR_HOST_MEMORY;
		goto out;
	}
	o->token = attr_bool(o, CKA_TOKEN);
	o->priv = attr_bool(o, CKA_PRIVATE);
	if (o->token && !s->rw) {
		rv = CKR_SESSION_READ_ONLY;
		goto out;
	}
	if (o->priv && s->conn->user != CKU_USER) {
		rv = CKR_USER_NOT_LOGGED_IN;
		goto out;
	}
	if ((rv = part_object_commit(t, s, o)) != CKR_OK) {
		goto out;
	}
	*out = o->handle;
	o = NULL; /* transferred */
	rv = CKR_OK;
out:
	object_free(o);
	return rv;
}

/* ---- C_DestroyObject, C_GetObjectSize --------------------------------------------------- */

CK_RV
part_object_destroy(struct part_token *t, uint64_t conn, CK_SESSION_HANDLE h, CK_OBJECT_HANDLE obj)
{
	struct part_session *s;
	struct part_object *o;
	CK_RV rv;

	if ((rv = part_session_get(t, conn, h, &s)) != CKR_OK ||
	    (rv = object_get(t, s, obj, &o)) != CKR_OK) {
		return rv;
	}
	if (o->token && !s->rw) {
		return CKR_SESSION_READ_ONLY;
	}
	/* v2.40 §4.4: CKA_DESTROYABLE "If CK_FALSE, the object cannot be destroyed". */
	if (!attr_bool(o, CKA_DESTROYABLE)) {
		return CKR_ACTION_PROHIBITED;
	}
	if (o->token && object_unstore(t, o) != 0) {
		return CKR_DEVICE_ERROR;
	}
	object_unlink(t, o);
	object_free(o);
	return CKR_OK;
}

CK_RV
part_object_size(struct part_token *t, uint64_t conn, CK_SESSION_HANDLE h, CK_OBJECT_HANDLE obj,
                 CK_ULONG *size)
{
	struct part_session *s;
	struct part_object *o;
	struct proto_buf b;
	CK_RV rv;

	*size = CK_UNAVAILABLE_INFORMATION;
	if ((rv = part_session_get(t, conn, h, &s)) != CKR_OK ||
	    (rv = object_get(t, s, obj, &o)) != CKR_OK) {
		return rv;
	}
	/* The size of its record: what it costs the store. */
	proto_buf_init(&b);
	if (part_object_encode(o, &b) != 0) {
		proto_buf_free(&b);
		return CKR_HOST_MEMORY;
	}
	*size = b.len;
	proto_buf_free(&b);
	return CKR_OK;
}

/* ---- C_GetAttributeValue, C_SetAttributeValue ------------------------------------------ */

CK_RV
part_object_get_attrs(struct part_token *t, uint64_t conn, CK_SESSION_HANDLE h,
                      CK_OBJECT_HANDLE obj, CK_ATTRIBUTE *tmpl, CK_ULONG n)
{
	const struct class_def *cd;
	const struct attr_rule *rule;
	const struct part_attr *a;
	struct part_session *s;
	struct part_object *o;
	CK_ULONG i;
	int secret;
	CK_RV rv;

	if ((rv = part_session_get(t, conn, h, &s)) != CKR_OK ||
	    (rv = object_get(t, s, obj, &o)) != CKR_OK) {
		return rv;
	}
	if (tmpl == NULL && n != 0) {
		return CKR_ARGUMENTS_BAD;
	}
	/* v2.40 §5.7 C_GetAttributeValue: every attribute of the template is processed; the
	 * first of the three "not true errors" met is the one returned (the spec lets the
	 * token return any of them). */
	cd = class_find(o->cls, o->sub);
	secret = hidden(o);
	rv = CKR_OK;
	for (i = 0; i < n; i++) {
		if (secret && (rule = rule_find(cd, tmpl[i].type)) != NULL &&
		    (rule->flags & AF_SENSITIVE)) {
			/* "If the specified attribute (i.e., the attribute specified by the
			 * type field) for the object cannot be revealed because the object is
			 * sensitive or unextractable, then the ulValueLen field in that triple
			 * is modified to hold the value CK_UNAVAILABLE_INFORMATION." */
			tmpl[i].ulValueLen = CK_UNAVAILABLE_INFORMATION;
			if (rv == CKR_OK) {
				rv = CKR_ATTRIBUTE_SENSITIVE;
			}
		} else if ((a = attr_find(o, tmpl[i].type)) == NULL) {
			/* "the object does not possess such an attribute": length
			 * CK_UNAVAILABLE_INFORMATION, CKR_ATTRIBUTE_TYPE_INVALID. */
			tmpl[i].ulValueLen = CK_UNAVAILABLE_INFORMATION;
			if (rv == CKR_OK) {
				rv = CKR_ATTRIBUTE_TYPE_INVALID;
			}
		} else if (tmpl[i].pValue == NULL) {
			/* "if pValue is NULL_PTR, then ulValueLen is modified to hold the exact
			 * length of the specified attribute" */
			tmpl[i].ulValueLen = a->len;
		} else if (tmpl[i].ulValueLen >= a->len) {
			if (a->len != 0) {
				memcpy(tmpl[i].pValue, a->value, a->len);
			}
			tmpl[i].ulValueLen = a->len;
		} else {
			/* "Otherwise, the ulValueLen field is modified to hold the value
			 * CK_UNAVAILABLE_INFORMATION" and CKR_BUFFER_TOO_SMALL. */
			tmpl[i].ulValueLen = CK_UNAVAILABLE_INFORMATION;
			if (rv == CKR_OK) {
				rv = CKR_BUFFER_TOO_SMALL;
			}
		}
	}
	return rv;
}

CK_RV
part_object_set_attrs(struct part_token *t, uint64_t conn, CK_SESSION_HANDLE h,
                      CK_OBJECT_HANDLE obj, const CK_ATTRIBUTE *tmpl, CK_ULONG n)
{
	const struct class_def *cd;
	const struct attr_rule *rule;
	struct part_attr *na = NULL, *cur, *old;
	struct part_session *s;
	struct part_object *o;
	size_t nold, k;
	CK_ULONG i;
	CK_RV rv;

	if ((rv = part_session_get(t, conn, h, &s)) != CKR_OK ||
	    (rv = object_get(t, s, obj, &o)) != CKR_OK) {
		return rv;
	}
	if (tmpl == NULL && n != 0) {
		return CKR_ARGUMENTS_BAD;
	}
	if (o->token && !s->rw) {
		return CKR_SESSION_READ_ONLY;
	}
	/* v2.40 §4.4: CKA_MODIFIABLE "If CK_FALSE, the object is read only"; §5.7 names
	 * CKR_ACTION_PROHIBITED for it. */
	if (!attr_bool(o, CKA_MODIFIABLE)) {
		return CKR_ACTION_PROHIBITED;
	}
	cd = class_find(o->cls, o->sub);
	for (i = 0; i < n; i++) {
		if ((rule = rule_find(cd, tmpl[i].type)) == NULL) {
			return CKR_ATTRIBUTE_TYPE_INVALID;
		}
		if (rule->flags & (AF_FIXED | AF_TOKEN)) {
			return CKR_ATTRIBUTE_READ_ONLY;
		}
		if (!value_ok(rule, &tmpl[i])) {
			return CKR_ATTRIBUTE_VALUE_INVALID;
		}
		/* §4.9 table 31 notes 11 and 12: CKA_SENSITIVE and CKA_WRAP_WITH_TRUSTED
		 * "cannot be changed once set to CK_TRUE", CKA_EXTRACTABLE "once set to
		 * CK_FALSE"; §4.4: CKA_COPYABLE likewise. */
		if ((rule->flags & AF_TO_FALSE) && *(const CK_BBOOL *)tmpl[i].pValue == CK_TRUE &&
		    !attr_bool(o, rule->type)) {
			return CKR_ATTRIBUTE_READ_ONLY;
		}
		if ((rule->flags & AF_TO_TRUE) && *(const CK_BBOOL *)tmpl[i].pValue == CK_FALSE &&
		    attr_bool(o, rule->type)) {
			return CKR_ATTRIBUTE_READ_ONLY;
		}
		/* §4.8: CKA_TRUSTED is set by the SO only. */
		if ((rule->flags & AF_SO) && *(const CK_BBOOL *)tmpl[i].pValue == CK_TRUE &&
		    s->conn->user != CKU_SO) {
			return CKR_ATTRIBUTE_READ_ONLY;
		}
	}
	/* All or nothing: the new attribute set is built aside, stored, then swapped in. */
	if ((na = calloc(o->nattrs, sizeof(*na))) == NULL) {
		return CKR_HOST_MEMORY;
	}
	for (k = 0; k < o->nattrs; k++) {
		const CK_ATTRIBUTE *ta = NULL;

		cur = &o->attrs[k];
		for (i = 0; i < n; i++) {
			if (tmpl[i].type == cur->type) {
				ta = &tmpl[i]; /* the last one wins, as applied in order */
			}
		}
		if (attr_set(&na[k], o->cls, cur->type, ta != NULL ? ta->pValue : cur->value,
		             ta != NULL ? ta->ulValueLen : cur->len) != 0) {
			attrs_free(na, k);
			return CKR_HOST_MEMORY;
		}
	}
	old = o->attrs;
	nold = o->nattrs;
	o->attrs = na;
	if (o->token && object_store(t, o) != 0) {
		o->attrs = old;
		attrs_free(na, nold);
		return CKR_DEVICE_ERROR;
	}
	attrs_free(old, nold);
	return CKR_OK;
}

/* ---- C_FindObjects* --------------------------------------------------------------------- */

static int
matches(const struct part_object *o, const CK_ATTRIBUTE *tmpl, CK_ULONG n)
{
	const struct class_def *cd = class_find(o->cls, o->sub);
	const struct attr_rule *rule;
	const struct part_attr *a;
	CK_ULONG i;

	for (i = 0; i < n; i++) {
		if ((a = attr_find(o, tmpl[i].type)) == NULL || a->len != tmpl[i].ulValueLen) {
			return 0;
		}
		/* A value that cannot be read cannot be searched for either: otherwise
		 * C_FindObjects would confirm a guess of a sensitive key. */
		if (hidden(o) && (rule = rule_find(cd, tmpl[i].type)) != NULL &&
		    (rule->flags & AF_SENSITIVE)) {
			return 0;
		}
		if (a->len != 0 &&
		    (tmpl[i].pValue == NULL || memcmp(a->value, tmpl[i].pValue, a->len) != 0)) {
			return 0;
		}
	}
	return 1;
}

void
part_object_find_end(struct part_session *s)
{
	free(s->found);
	s->found = NULL;
	s->nfound = 0;
	s->found_pos = 0;
	s->find_active = 0;
}

CK_RV
part_object_find_init(struct part_token *t, uint64_t conn, CK_SESSION_HANDLE h,
                      const CK_ATTRIBUTE *tmpl, CK_ULONG n)
{
	struct part_session *s;
	struct part_object *o;
	size_t cnt = 0;
	CK_RV rv;

	if ((rv = part_session_get(t, conn, h, &s)) != CKR_OK) {
		return rv;
	}
	if (s->find_active) {
		return CKR_OPERATION_ACTIVE;
	}
	if (tmpl == NULL && n != 0) {
		return CKR_ARGUMENTS_BAD;
	}
	for (o = t->objects; o != NULL; o = o->next) {
		cnt++;
	}
	if ((s->found = calloc(cnt != 0 ? cnt : 1, sizeof(*s->found))) == NULL) {
		return CKR_HOST_MEMORY;
	}
	/* A snapshot: objects created later are not found, destroyed ones are skipped. */
	for (o = t->objects; o != NULL; o = o->next) {
		if (visible(s, o) && matches(o, tmpl, n)) {
			s->found[s->nfound++] = o->handle;
		}
	}
	s->found_pos = 0;
	s->find_active = 1;
	return CKR_OK;
}

CK_RV
part_object_find(struct part_token *t, uint64_t conn, CK_SESSION_HANDLE h, CK_OBJECT_HANDLE *out,
                 CK_ULONG max, CK_ULONG *count)
{
	struct part_session *s;
	struct part_object *o;
	CK_RV rv;

	*count = 0;
	if ((rv = part_session_get(t, conn, h, &s)) != CKR_OK) {
		return rv;
	}
	if (!s->find_active) {
		return CKR_OPERATION_NOT_INITIALIZED;
	}
	if (out == NULL) {
		return CKR_ARGUMENTS_BAD;
	}
	while (*count < max && s->found_pos < s->nfound) {
		CK_OBJECT_HANDLE oh = s->found[s->found_pos++];

		/* Still there and still visible (a logout hides private objects). */
		if (object_get(t, s, oh, &o) == CKR_OK) {
			out[(*count)++] = oh;
		}
	}
	return CKR_OK;
}

CK_RV
part_object_find_final(struct part_token *t, uint64_t conn, CK_SESSION_HANDLE h)
{
	struct part_session *s;
	CK_RV rv;

	if ((rv = part_session_get(t, conn, h, &s)) != CKR_OK) {
		return rv;
	}
	if (!s->find_active) {
		return CKR_OPERATION_NOT_INITIALIZED;
	}
	part_object_find_end(s);
	return CKR_OK;
}
