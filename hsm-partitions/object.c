/*
 * hsm-partitions/object.c — objects: the attribute rules of each class, C_CreateObject,
 * C_DestroyObject, C_GetObjectSize, C_GetAttributeValue, C_SetAttributeValue, the
 * C_FindObjects* operation, and the stored form of token objects.
 *
 * Classes are a table of attribute rules (struct class_def): issue 3 adds the key classes
 * as further rows, with their own rules (CKA_SENSITIVE, CKA_EXTRACTABLE ...). Every object
 * holds every attribute of its class (defaults filled in at creation), so
 * C_GetAttributeValue answers from the object alone.
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
};

#define AF_FIXED    0x01 /* given at creation only: CKR_ATTRIBUTE_READ_ONLY afterwards */
#define AF_TOKEN    0x02 /* set by the token only: CKR_ATTRIBUTE_READ_ONLY in any template */
#define AF_TO_FALSE 0x04 /* may change from CK_TRUE to CK_FALSE only */
#define AF_REQUIRED 0x08 /* no default: CKR_TEMPLATE_INCOMPLETE when missing */

struct attr_rule {
	CK_ATTRIBUTE_TYPE type;
	enum attr_kind kind;
	unsigned flags;
	CK_BBOOL def; /* default of an AK_BOOL */
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

struct class_def {
	CK_OBJECT_CLASS cls;
	const struct attr_rule *rules;
	size_t n;
};

static const struct class_def classes[] = {
        {CKO_DATA, data_rules, sizeof(data_rules) / sizeof(data_rules[0])},
};

#define NSTORAGE (sizeof(storage_rules) / sizeof(storage_rules[0]))

static const struct class_def *
class_find(CK_OBJECT_CLASS cls)
{
	size_t i;

	for (i = 0; i < sizeof(classes) / sizeof(classes[0]); i++) {
		if (classes[i].cls == cls) {
			return &classes[i];
		}
	}
	return NULL;
}

static const struct attr_rule *
rule_find(const struct class_def *cd, CK_ATTRIBUTE_TYPE type)
{
	size_t i;

	for (i = 0; i < NSTORAGE; i++) {
		if (storage_rules[i].type == type) {
			return &storage_rules[i];
		}
	}
	for (i = 0; i < cd->n; i++) {
		if (cd->rules[i].type == type) {
			return &cd->rules[i];
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

static void
attrs_free(struct part_attr *a, size_t n)
{
	size_t i;

	if (a == NULL) {
		return;
	}
	for (i = 0; i < n; i++) {
		OPENSSL_clear_free(a[i].value, a[i].len != 0 ? a[i].len : 1);
	}
	free(a);
}

static int
attr_set(struct part_attr *a, CK_ATTRIBUTE_TYPE type, const void *v, CK_ULONG len)
{
	uint8_t *p = malloc(len != 0 ? len : 1);

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

/* Seals and writes a token object (one write transaction). */
static int
object_store(struct part_token *t, const struct part_object *o)
{
	struct part_txn *txn = NULL;
	struct proto_buf rec, sealed;
	int r;

	proto_buf_init(&rec);
	proto_buf_init(&sealed);
	if ((r = part_object_encode(o, &rec)) != 0 ||
	    (r = part_seal(o->ref, rec.data, rec.len, &sealed)) != 0 ||
	    (r = part_store_txn_begin(t->store, 1, &txn)) != 0 ||
	    (r = part_store_put(txn, PART_DB_OBJECTS, o->ref, PART_REF_LEN, sealed.data,
	                        sealed.len)) != 0) {
		goto out;
	}
	r = part_store_txn_commit(txn);
	txn = NULL; /* freed by commit */
out:
	part_store_txn_abort(txn);
	proto_buf_free(&rec);
	proto_buf_free(&sealed);
	return r;
}

static int
object_unstore(struct part_token *t, const struct part_object *o)
{
	struct part_txn *txn = NULL;
	int r;

	if ((r = part_store_txn_begin(t->store, 1, &txn)) != 0) {
		return r;
	}
	if ((r = part_store_del(txn, PART_DB_OBJECTS, o->ref, PART_REF_LEN)) != 0 &&
	    r != PART_ERR_NOT_FOUND) {
		part_store_txn_abort(txn);
		return r;
	}
	return part_store_txn_commit(txn);
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
	if ((ra = tmpl_find(tmpl, n, CKA_CLASS)) == NULL || ra->ulValueLen != sizeof(CK_ULONG) ||
	    ra->pValue == NULL || (cd = class_find(*(CK_ULONG *)ra->pValue)) == NULL) {
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
	memcpy(o->ref, ref, PART_REF_LEN);
	for (i = 0; i < n; i++) {
		if ((rule = rule_find(cd, tmpl[i].type)) == NULL || !value_ok(rule, &tmpl[i]) ||
		    attr_find(o, tmpl[i].type) != NULL) {
			goto out;
		}
		if ((r = attr_set(&o->attrs[o->nattrs], tmpl[i].type, tmpl[i].pValue,
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
	if ((r = part_unseal(ref, val, vlen, &lc->rec)) != 0 ||
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
	r = part_store_foreach(txn, PART_DB_OBJECTS, load_one, &lc);
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

/* ---- C_CreateObject --------------------------------------------------------------------- */

static CK_RV
class_refused(CK_OBJECT_CLASS cls)
{
	switch (cls) {
	case CKO_SECRET_KEY:
	case CKO_PUBLIC_KEY:
	case CKO_PRIVATE_KEY:
		/* Keys come with the soft token's crypto engine (issue 3). */
		return CKR_FUNCTION_NOT_SUPPORTED;
	case CKO_CERTIFICATE:
	case CKO_HW_FEATURE:
	case CKO_DOMAIN_PARAMETERS:
	case CKO_MECHANISM:
	case CKO_OTP_KEY:
		return CKR_TEMPLATE_INCONSISTENT;
	default:
		return CKR_ATTRIBUTE_VALUE_INVALID;
	}
}

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

/* Every attribute of the class, in rule order: the template's value or the default. */
static CK_RV
object_build(const struct class_def *cd, const CK_ATTRIBUTE *tmpl, CK_ULONG n,
             struct part_object *o)
{
	const struct attr_rule *rule;
	const CK_ATTRIBUTE *a;
	size_t i, total = NSTORAGE + cd->n;

	if ((o->attrs = calloc(total, sizeof(*o->attrs))) == NULL) {
		return CKR_HOST_MEMORY;
	}
	for (i = 0; i < total; i++) {
		rule = i < NSTORAGE ? &storage_rules[i] : &cd->rules[i - NSTORAGE];
		a = tmpl_find(tmpl, n, rule->type);
		if (rule->type == CKA_HSMGATE_REF) {
			if (attr_set(&o->attrs[i], rule->type, o->ref, PART_REF_LEN) != 0) {
				return CKR_HOST_MEMORY;
			}
		} else if (a != NULL) {
			if (attr_set(&o->attrs[i], rule->type, a->pValue, a->ulValueLen) != 0) {
				return CKR_HOST_MEMORY;
			}
		} else if (rule->kind == AK_BOOL) {
			if (attr_set(&o->attrs[i], rule->type, &rule->def, 1) != 0) {
				return CKR_HOST_MEMORY;
			}
		} else if (attr_set(&o->attrs[i], rule->type, NULL, 0) != 0) {
			return CKR_HOST_MEMORY;
		}
		o->nattrs++;
	}
	return CKR_OK;
}

CK_RV
part_object_create(struct part_token *t, uint64_t conn, CK_SESSION_HANDLE h,
                   const CK_ATTRIBUTE *tmpl, CK_ULONG n, CK_OBJECT_HANDLE *out)
{
	struct part_object *o = NULL;
	const struct class_def *cd;
	const struct attr_rule *rule;
	const CK_ATTRIBUTE *ca;
	struct part_session *s;
	CK_ULONG i, j;
	CK_RV rv;

	*out = CK_INVALID_HANDLE;
	if ((rv = part_session_get(t, conn, h, &s)) != CKR_OK) {
		return rv;
	}
	if (tmpl == NULL && n != 0) {
		return CKR_ARGUMENTS_BAD;
	}
	/* v2.40 §4.2: CKA_CLASS "must be specified when the object is created". */
	if ((ca = tmpl_find(tmpl, n, CKA_CLASS)) == NULL) {
		return CKR_TEMPLATE_INCOMPLETE;
	}
	if (ca->pValue == NULL || ca->ulValueLen != sizeof(CK_OBJECT_CLASS)) {
		return CKR_ATTRIBUTE_VALUE_INVALID;
	}
	if ((cd = class_find(*(const CK_OBJECT_CLASS *)ca->pValue)) == NULL) {
		return class_refused(*(const CK_OBJECT_CLASS *)ca->pValue);
	}
	for (i = 0; i < n; i++) {
		if ((rule = rule_find(cd, tmpl[i].type)) == NULL) {
			return CKR_ATTRIBUTE_TYPE_INVALID;
		}
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
	}
	if ((o = calloc(1, sizeof(*o))) == NULL) {
		return CKR_HOST_MEMORY;
	}
	o->cls = cd->cls;
	if (new_ref(o->ref) != 0) {
		rv = CKR_DEVICE_ERROR;
		goto out;
	}
	if ((rv = object_build(cd, tmpl, n, o)) != CKR_OK) {
		goto out;
	}
	o->token = attr_bool(o, CKA_TOKEN);
	o->priv = attr_bool(o, CKA_PRIVATE);
	/* v2.40 §5.7: "Only session objects can be created during a read-only session" and
	 * "Only public objects can be created unless the normal user is logged in." */
	if (o->token && !s->rw) {
		rv = CKR_SESSION_READ_ONLY;
		goto out;
	}
	if (o->priv && s->conn->user != CKU_USER) {
		rv = CKR_USER_NOT_LOGGED_IN;
		goto out;
	}
	if (o->token) {
		if (object_store(t, o) != 0) {
			rv = CKR_DEVICE_ERROR;
			goto out;
		}
	} else {
		o->conn = conn;
		o->session = h;
	}
	object_link(t, o);
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
	const struct part_attr *a;
	struct part_session *s;
	struct part_object *o;
	CK_ULONG i;
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
	 * token return any of them). Data objects have no sensitive attributes. */
	rv = CKR_OK;
	for (i = 0; i < n; i++) {
		if ((a = attr_find(o, tmpl[i].type)) == NULL) {
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
	cd = class_find(o->cls);
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
		if ((rule->flags & AF_TO_FALSE) && *(const CK_BBOOL *)tmpl[i].pValue == CK_TRUE &&
		    !attr_bool(o, rule->type)) {
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
		if (attr_set(&na[k], cur->type, ta != NULL ? ta->pValue : cur->value,
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
	const struct part_attr *a;
	CK_ULONG i;

	for (i = 0; i < n; i++) {
		if ((a = attr_find(o, tmpl[i].type)) == NULL || a->len != tmpl[i].ulValueLen) {
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
