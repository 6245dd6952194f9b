/*
 * proto/attr.c — the attribute registry and the encodings of attribute templates:
 * templates with values ('a'), C_GetAttributeValue queries ('A') and replies ('Q').
 *
 * The registry gives every PKCS #11 v2.40 attribute a value kind, so that a value crosses
 * the wire field by field (a CK_ULONG as u64, a nested template as attributes) and never as
 * platform bytes. Array attributes (CKF_ARRAY_ATTRIBUTE) hold pointers on the sender's side:
 * they are only ever decoded into arena-built arrays, never passed on as raw bytes that a
 * token would dereference.
 */
#include "proto/proto.h"
#include "proto/proto_int.h"

#include <string.h>

#define K_BOOL  PROTO_AV_BOOL
#define K_ULONG PROTO_AV_ULONG
#define K_BYTES PROTO_AV_BYTES
#define K_TMPL  PROTO_AV_TEMPLATE
#define K_MECHS PROTO_AV_MECHS
#define K_DATE  PROTO_AV_DATE

/* Smallest encodings, used to bound a count by the bytes left before allocating. */
#define ATTR_MIN_WIRE  9  /* u64 type | u8 kind (| value of >= 0 bytes) */
#define QUERY_MIN_WIRE 17 /* u64 type | u8 has_buffer | u64 capacity */
#define REPLY_MIN_WIRE 9  /* u64 length | u8 kind */

struct attr_def {
	CK_ATTRIBUTE_TYPE type;
	const char *name;
	enum proto_av kind;
};

#define A(t, k)                                                                                    \
	{                                                                                          \
		t, #t, k                                                                           \
	}
static const struct attr_def attr_defs[] = {
        A(CKA_CLASS, K_ULONG),
        A(CKA_TOKEN, K_BOOL),
        A(CKA_PRIVATE, K_BOOL),
        A(CKA_LABEL, K_BYTES),
        A(CKA_APPLICATION, K_BYTES),
        A(CKA_VALUE, K_BYTES),
        A(CKA_OBJECT_ID, K_BYTES),
        A(CKA_CERTIFICATE_TYPE, K_ULONG),
        A(CKA_ISSUER, K_BYTES),
        A(CKA_SERIAL_NUMBER, K_BYTES),
        A(CKA_AC_ISSUER, K_BYTES),
        A(CKA_OWNER, K_BYTES),
        A(CKA_ATTR_TYPES, K_BYTES),
        A(CKA_TRUSTED, K_BOOL),
        A(CKA_CERTIFICATE_CATEGORY, K_ULONG),
        A(CKA_JAVA_MIDP_SECURITY_DOMAIN, K_ULONG),
        A(CKA_URL, K_BYTES),
        A(CKA_HASH_OF_SUBJECT_PUBLIC_KEY, K_BYTES),
        A(CKA_HASH_OF_ISSUER_PUBLIC_KEY, K_BYTES),
        A(CKA_NAME_HASH_ALGORITHM, K_ULONG),
        A(CKA_CHECK_VALUE, K_BYTES),
        A(CKA_KEY_TYPE, K_ULONG),
        A(CKA_SUBJECT, K_BYTES),
        A(CKA_ID, K_BYTES),
        A(CKA_SENSITIVE, K_BOOL),
        A(CKA_ENCRYPT, K_BOOL),
        A(CKA_DECRYPT, K_BOOL),
        A(CKA_WRAP, K_BOOL),
        A(CKA_UNWRAP, K_BOOL),
        A(CKA_SIGN, K_BOOL),
        A(CKA_SIGN_RECOVER, K_BOOL),
        A(CKA_VERIFY, K_BOOL),
        A(CKA_VERIFY_RECOVER, K_BOOL),
        A(CKA_DERIVE, K_BOOL),
        A(CKA_START_DATE, K_DATE),
        A(CKA_END_DATE, K_DATE),
        A(CKA_MODULUS, K_BYTES),
        A(CKA_MODULUS_BITS, K_ULONG),
        A(CKA_PUBLIC_EXPONENT, K_BYTES),
        A(CKA_PRIVATE_EXPONENT, K_BYTES),
        A(CKA_PRIME_1, K_BYTES),
        A(CKA_PRIME_2, K_BYTES),
        A(CKA_EXPONENT_1, K_BYTES),
        A(CKA_EXPONENT_2, K_BYTES),
        A(CKA_COEFFICIENT, K_BYTES),
        A(CKA_PUBLIC_KEY_INFO, K_BYTES),
        A(CKA_PRIME, K_BYTES),
        A(CKA_SUBPRIME, K_BYTES),
        A(CKA_BASE, K_BYTES),
        A(CKA_PRIME_BITS, K_ULONG),
        A(CKA_SUB_PRIME_BITS, K_ULONG),
        A(CKA_VALUE_BITS, K_ULONG),
        A(CKA_VALUE_LEN, K_ULONG),
        A(CKA_EXTRACTABLE, K_BOOL),
        A(CKA_LOCAL, K_BOOL),
        A(CKA_NEVER_EXTRACTABLE, K_BOOL),
        A(CKA_ALWAYS_SENSITIVE, K_BOOL),
        A(CKA_KEY_GEN_MECHANISM, K_ULONG),
        A(CKA_MODIFIABLE, K_BOOL),
        A(CKA_COPYABLE, K_BOOL),
        A(CKA_DESTROYABLE, K_BOOL),
        A(CKA_EC_PARAMS, K_BYTES),
        A(CKA_EC_POINT, K_BYTES),
        A(CKA_SECONDARY_AUTH, K_BOOL),
        A(CKA_AUTH_PIN_FLAGS, K_ULONG),
        A(CKA_ALWAYS_AUTHENTICATE, K_BOOL),
        A(CKA_WRAP_WITH_TRUSTED, K_BOOL),
        A(CKA_OTP_FORMAT, K_ULONG),
        A(CKA_OTP_LENGTH, K_ULONG),
        A(CKA_OTP_TIME_INTERVAL, K_ULONG),
        A(CKA_OTP_USER_FRIENDLY_MODE, K_BOOL),
        A(CKA_OTP_CHALLENGE_REQUIREMENT, K_ULONG),
        A(CKA_OTP_TIME_REQUIREMENT, K_ULONG),
        A(CKA_OTP_COUNTER_REQUIREMENT, K_ULONG),
        A(CKA_OTP_PIN_REQUIREMENT, K_ULONG),
        A(CKA_OTP_USER_IDENTIFIER, K_BYTES),
        A(CKA_OTP_SERVICE_IDENTIFIER, K_BYTES),
        A(CKA_OTP_SERVICE_LOGO, K_BYTES),
        A(CKA_OTP_SERVICE_LOGO_TYPE, K_BYTES),
        A(CKA_OTP_COUNTER, K_BYTES),
        A(CKA_OTP_TIME, K_BYTES),
        A(CKA_GOSTR3410_PARAMS, K_BYTES),
        A(CKA_GOSTR3411_PARAMS, K_BYTES),
        A(CKA_GOST28147_PARAMS, K_BYTES),
        A(CKA_HW_FEATURE_TYPE, K_ULONG),
        A(CKA_RESET_ON_INIT, K_BOOL),
        A(CKA_HAS_RESET, K_BOOL),
        A(CKA_PIXEL_X, K_ULONG),
        A(CKA_PIXEL_Y, K_ULONG),
        A(CKA_RESOLUTION, K_ULONG),
        A(CKA_CHAR_ROWS, K_ULONG),
        A(CKA_CHAR_COLUMNS, K_ULONG),
        A(CKA_COLOR, K_BOOL),
        A(CKA_BITS_PER_PIXEL, K_ULONG),
        A(CKA_CHAR_SETS, K_BYTES),
        A(CKA_ENCODING_METHODS, K_BYTES),
        A(CKA_MIME_TYPES, K_BYTES),
        A(CKA_MECHANISM_TYPE, K_ULONG),
        A(CKA_REQUIRED_CMS_ATTRIBUTES, K_BYTES),
        A(CKA_DEFAULT_CMS_ATTRIBUTES, K_BYTES),
        A(CKA_SUPPORTED_CMS_ATTRIBUTES, K_BYTES),
        A(CKA_WRAP_TEMPLATE, K_TMPL),
        A(CKA_UNWRAP_TEMPLATE, K_TMPL),
        A(CKA_DERIVE_TEMPLATE, K_TMPL),
        A(CKA_ALLOWED_MECHANISMS, K_MECHS),
};

static const struct attr_def *
attr_find(CK_ATTRIBUTE_TYPE type)
{
	size_t i;

	for (i = 0; i < sizeof(attr_defs) / sizeof(attr_defs[0]); i++) {
		if (attr_defs[i].type == type) {
			return &attr_defs[i];
		}
	}
	return NULL;
}

enum proto_av
proto_attr_kind(CK_ATTRIBUTE_TYPE type)
{
	const struct attr_def *d = attr_find(type);

	if (d != NULL) {
		return d->kind;
	}
	/* An unknown array attribute (a vendor's) holds CK_ATTRIBUTEs, i.e. pointers: it must
	 * never travel as opaque bytes that the far side's token would dereference. */
	if ((type & CKF_ARRAY_ATTRIBUTE) != 0) {
		return PROTO_AV_TEMPLATE;
	}
	return PROTO_AV_BYTES;
}

const char *
proto_attr_name(CK_ATTRIBUTE_TYPE type)
{
	const struct attr_def *d = attr_find(type);

	return d != NULL ? d->name : NULL;
}

/* Native bytes of one unit of a kind: lengths of ULONG, MECHS and TEMPLATE values travel
 * in these units so that 32- and 64-bit peers agree. */
static size_t
kind_unit(enum proto_av kind)
{
	switch (kind) {
	case PROTO_AV_ULONG:
		return sizeof(CK_ULONG);
	case PROTO_AV_MECHS:
		return sizeof(CK_MECHANISM_TYPE);
	case PROTO_AV_TEMPLATE:
		return sizeof(CK_ATTRIBUTE);
	case PROTO_AV_NONE:
	case PROTO_AV_BOOL:
	case PROTO_AV_BYTES:
	case PROTO_AV_DATE:
	default:
		return 1;
	}
}

/* Whether a value of wire kind `kind` may be decoded for an attribute registered as
 * `reg`: its own kind, NONE, or BYTES (the token then judges the length) — except that
 * templates are only ever templates, because the token reads pointers out of them. */
static int
kind_allowed(uint8_t kind, enum proto_av reg)
{
	if (kind > PROTO_AV_DATE) {
		return 0;
	}
	if (kind == PROTO_AV_NONE || kind == reg) {
		return 1;
	}
	return kind == PROTO_AV_BYTES && reg != PROTO_AV_TEMPLATE;
}

/* The wire kind the encoder uses for a non-NULL value of `len` bytes. */
static int
value_kind(enum proto_av reg, CK_ULONG len, uint8_t *kind)
{
	switch (reg) {
	case PROTO_AV_BOOL:
		*kind = len == sizeof(CK_BBOOL) ? PROTO_AV_BOOL : PROTO_AV_BYTES;
		return 0;
	case PROTO_AV_ULONG:
		*kind = len == sizeof(CK_ULONG) ? PROTO_AV_ULONG : PROTO_AV_BYTES;
		return 0;
	case PROTO_AV_DATE:
		*kind = len == sizeof(CK_DATE) ? PROTO_AV_DATE : PROTO_AV_BYTES;
		return 0;
	case PROTO_AV_MECHS:
		*kind = len % sizeof(CK_MECHANISM_TYPE) == 0 ? PROTO_AV_MECHS : PROTO_AV_BYTES;
		return 0;
	case PROTO_AV_TEMPLATE:
		/* Cannot be sent as bytes (pointers), so a ragged length is the caller's
		 * error: the client answers CKR_ATTRIBUTE_VALUE_INVALID. */
		if (len % sizeof(CK_ATTRIBUTE) != 0) {
			return PROTO_ERR_BAD_VALUE;
		}
		*kind = PROTO_AV_TEMPLATE;
		return 0;
	case PROTO_AV_NONE:
	case PROTO_AV_BYTES:
	default:
		*kind = PROTO_AV_BYTES;
		return 0;
	}
}

/* ---- templates with values ('a') ----------------------------------------------------- */

static int put_template_depth(struct proto_buf *b, const CK_ATTRIBUTE *t, CK_ULONG n, int depth);

/* The value of a non-NULL attribute in wire kind `kind` (without the kind byte).
 * `nested` encodes the elements of a TEMPLATE value. */
static int
put_value(struct proto_buf *b, const CK_ATTRIBUTE *at, uint8_t kind, int depth,
          int (*nested)(struct proto_buf *, const CK_ATTRIBUTE *, CK_ULONG, int))
{
	CK_ULONG v, i, cnt;
	int r;

	switch (kind) {
	case PROTO_AV_BOOL:
		return proto_put_u8(b, *(const CK_BYTE *)at->pValue);
	case PROTO_AV_ULONG:
		memcpy(&v, at->pValue, sizeof(v));
		return proto_put_ulong(b, v);
	case PROTO_AV_DATE:
		return proto_put_raw(b, at->pValue, sizeof(CK_DATE));
	case PROTO_AV_MECHS:
		cnt = at->ulValueLen / sizeof(CK_MECHANISM_TYPE);
		if (cnt > PROTO_MAX_ULONGS) {
			return proto_buf_fail(b, PROTO_ERR_TOO_LARGE);
		}
		if ((r = proto_put_u32(b, (uint32_t)cnt)) != 0) {
			return r;
		}
		for (i = 0; i < cnt; i++) {
			memcpy(&v, (const CK_BYTE *)at->pValue + i * sizeof(v), sizeof(v));
			if ((r = proto_put_ulong(b, v)) != 0) {
				return r;
			}
		}
		return 0;
	case PROTO_AV_TEMPLATE:
		if (depth + 1 > PROTO_MAX_DEPTH) {
			return proto_buf_fail(b, PROTO_ERR_DEPTH);
		}
		return nested(b, at->pValue, at->ulValueLen / sizeof(CK_ATTRIBUTE), depth + 1);
	case PROTO_AV_BYTES:
		if ((uint64_t)at->ulValueLen > UINT32_MAX) {
			return proto_buf_fail(b, PROTO_ERR_TOO_LARGE);
		}
		return proto_put_bytes(b, at->pValue, (size_t)at->ulValueLen);
	default:
		return proto_buf_fail(b, PROTO_ERR_BAD_VALUE);
	}
}

static int
put_template_depth(struct proto_buf *b, const CK_ATTRIBUTE *t, CK_ULONG n, int depth)
{
	CK_ULONG i;
	uint8_t kind;
	int r;

	if (n > PROTO_MAX_ATTRS) {
		return proto_buf_fail(b, PROTO_ERR_TOO_LARGE);
	}
	if (t == NULL && n != 0) {
		return proto_buf_fail(b, PROTO_ERR_BAD_VALUE);
	}
	if ((r = proto_put_u32(b, (uint32_t)n)) != 0) {
		return r;
	}
	for (i = 0; i < n; i++) {
		if ((r = proto_put_ulong(b, t[i].type)) != 0) {
			return r;
		}
		if (t[i].pValue == NULL) {
			if ((r = proto_put_u8(b, PROTO_AV_NONE)) != 0 ||
			    (r = proto_put_ulong(b, t[i].ulValueLen)) != 0) {
				return r;
			}
			continue;
		}
		if ((r = value_kind(proto_attr_kind(t[i].type), t[i].ulValueLen, &kind)) != 0) {
			return proto_buf_fail(b, r);
		}
		if ((r = proto_put_u8(b, kind)) != 0 ||
		    (r = put_value(b, &t[i], kind, depth, put_template_depth)) != 0) {
			return r;
		}
	}
	return 0;
}

int
proto_put_template(struct proto_buf *b, const CK_ATTRIBUTE *t, CK_ULONG n)
{
	return put_template_depth(b, t, n, 0);
}

/* u32 count | u64 × count into an arena array of CK_MECHANISM_TYPE. */
static int
get_mechs(struct proto_cur *c, struct proto_arena *a, CK_MECHANISM_TYPE **out, uint32_t *cnt)
{
	struct proto_cur t = *c;
	CK_MECHANISM_TYPE *m = NULL;
	uint32_t n, i;
	int r;

	*out = NULL;
	*cnt = 0;
	if ((r = proto_get_u32(&t, &n)) != 0) {
		return r;
	}
	if (n > PROTO_MAX_ULONGS) {
		return PROTO_ERR_TOO_LARGE;
	}
	if ((size_t)n * 8 > t.len) {
		return PROTO_ERR_TRUNCATED;
	}
	if (a != NULL && (m = proto_arena_alloc(a, (size_t)n * sizeof(*m))) == NULL) {
		return PROTO_ERR_NOMEM;
	}
	for (i = 0; i < n; i++) {
		CK_ULONG v;

		if ((r = proto_get_ulong(&t, &v)) != 0) {
			return r;
		}
		if (a != NULL) {
			m[i] = v;
		}
	}
	*out = a != NULL ? m : NULL;
	*cnt = n;
	*c = t;
	return 0;
}

static int get_template_depth(struct proto_cur *c, struct proto_arena *a, CK_ATTRIBUTE **t,
                              CK_ULONG *n, int depth);

/* One value of wire kind `kind` into at->pValue/ulValueLen (arena-owned). */
static int
get_value(struct proto_cur *c, struct proto_arena *a, uint8_t kind, CK_ATTRIBUTE *at, int depth)
{
	CK_MECHANISM_TYPE *mechs;
	CK_ATTRIBUTE *nested;
	const uint8_t *p;
	CK_ULONG v, n;
	uint32_t cnt;
	size_t len;
	uint8_t u;
	int r;

	at->pValue = NULL;
	at->ulValueLen = 0;
	switch (kind) {
	case PROTO_AV_NONE:
		return proto_get_ulong(c, &at->ulValueLen);
	case PROTO_AV_BOOL:
		/* A raw byte: PKCS #11 leaves a CK_BBOOL other than 0/1 to the token. */
		if ((r = proto_get_u8(c, &u)) != 0) {
			return r;
		}
		p = &u;
		len = 1;
		break;
	case PROTO_AV_ULONG:
		if ((r = proto_get_ulong(c, &v)) != 0) {
			return r;
		}
		p = (const uint8_t *)&v;
		len = sizeof(v);
		break;
	case PROTO_AV_DATE:
		if (c->len < sizeof(CK_DATE)) {
			return PROTO_ERR_TRUNCATED;
		}
		p = c->p;
		len = sizeof(CK_DATE);
		c->p += len;
		c->len -= len;
		break;
	case PROTO_AV_BYTES:
		if ((r = proto_get_bytes_ref(c, &p, &len, PROTO_MAX_FRAME_CAP)) != 0) {
			return r;
		}
		break;
	case PROTO_AV_MECHS:
		if ((r = get_mechs(c, a, &mechs, &cnt)) != 0) {
			return r;
		}
		at->pValue = mechs;
		at->ulValueLen = (CK_ULONG)cnt * sizeof(CK_MECHANISM_TYPE);
		return 0;
	case PROTO_AV_TEMPLATE:
		if (depth + 1 > PROTO_MAX_DEPTH) {
			return PROTO_ERR_DEPTH;
		}
		if ((r = get_template_depth(c, a, &nested, &n, depth + 1)) != 0) {
			return r;
		}
		at->pValue = nested;
		at->ulValueLen = n * sizeof(CK_ATTRIBUTE);
		return 0;
	default:
		return PROTO_ERR_BAD_VALUE;
	}
	if ((at->pValue = proto_arena_alloc(a, len)) == NULL) {
		return PROTO_ERR_NOMEM;
	}
	if (len != 0) {
		memcpy(at->pValue, p, len);
	}
	at->ulValueLen = (CK_ULONG)len;
	return 0;
}

static int
get_template_depth(struct proto_cur *c, struct proto_arena *a, CK_ATTRIBUTE **out, CK_ULONG *nout,
                   int depth)
{
	struct proto_cur t = *c;
	CK_ATTRIBUTE *at;
	uint32_t n, i;
	uint8_t kind;
	int r;

	*out = NULL;
	*nout = 0;
	if ((r = proto_get_u32(&t, &n)) != 0) {
		return r;
	}
	if (n > PROTO_MAX_ATTRS) {
		return PROTO_ERR_TOO_LARGE;
	}
	if ((size_t)n * ATTR_MIN_WIRE > t.len) {
		return PROTO_ERR_TRUNCATED;
	}
	if ((at = proto_arena_alloc(a, (size_t)n * sizeof(*at))) == NULL) {
		return PROTO_ERR_NOMEM;
	}
	for (i = 0; i < n; i++) {
		if ((r = proto_get_ulong(&t, &at[i].type)) != 0 ||
		    (r = proto_get_u8(&t, &kind)) != 0) {
			return r;
		}
		if (!kind_allowed(kind, proto_attr_kind(at[i].type))) {
			return PROTO_ERR_BAD_VALUE;
		}
		if ((r = get_value(&t, a, kind, &at[i], depth)) != 0) {
			return r;
		}
	}
	*out = at;
	*nout = n;
	*c = t;
	return 0;
}

int
proto_get_template(struct proto_cur *c, struct proto_arena *a, CK_ATTRIBUTE **t, CK_ULONG *n)
{
	*t = NULL;
	*n = 0;
	if (a == NULL) {
		return PROTO_ERR_NOMEM;
	}
	return get_template_depth(c, a, t, n, 0);
}

/* ---- C_GetAttributeValue query ('A') ------------------------------------------------- */

static int
put_query_entries(struct proto_buf *b, const CK_ATTRIBUTE *t, CK_ULONG n, int depth)
{
	CK_ULONG i, cap;
	enum proto_av reg;
	int r;

	for (i = 0; i < n; i++) {
		reg = proto_attr_kind(t[i].type);
		cap = 0;
		if (t[i].pValue != NULL) {
			cap = t[i].ulValueLen / kind_unit(reg);
		}
		if (reg == PROTO_AV_TEMPLATE && cap > PROTO_MAX_ATTRS) {
			/* No reply can hold more; the rest of the app's array stays untouched. */
			cap = PROTO_MAX_ATTRS;
		}
		if ((r = proto_put_ulong(b, t[i].type)) != 0 ||
		    (r = proto_put_u8(b, t[i].pValue != NULL)) != 0 ||
		    (r = proto_put_u64(b, (uint64_t)cap)) != 0) {
			return r;
		}
		if (reg == PROTO_AV_TEMPLATE && t[i].pValue != NULL) {
			/* PKCS #11: the query applies to each attribute of the app's array,
			 * so the server needs their types and capacities too. */
			if (depth + 1 > PROTO_MAX_DEPTH) {
				return proto_buf_fail(b, PROTO_ERR_DEPTH);
			}
			if ((r = put_query_entries(b, t[i].pValue, cap, depth + 1)) != 0) {
				return r;
			}
		}
	}
	return 0;
}

int
proto_put_attrquery(struct proto_buf *b, const CK_ATTRIBUTE *t, CK_ULONG n)
{
	int r;

	if (n > PROTO_MAX_ATTRS) {
		return proto_buf_fail(b, PROTO_ERR_TOO_LARGE);
	}
	if (t == NULL && n != 0) {
		return proto_buf_fail(b, PROTO_ERR_BAD_VALUE);
	}
	if ((r = proto_put_u32(b, (uint32_t)n)) != 0 || (r = put_query_entries(b, t, n, 0)) != 0) {
		return r;
	}
	return 0;
}

static int
get_query_entries(struct proto_cur *c, struct proto_arena *a, uint32_t n, int depth,
                  CK_ATTRIBUTE **out)
{
	CK_ATTRIBUTE *at;
	enum proto_av reg;
	uint64_t cap;
	uint32_t i;
	int has, r;

	*out = NULL;
	if ((size_t)n * QUERY_MIN_WIRE > c->len) {
		return PROTO_ERR_TRUNCATED;
	}
	if ((at = proto_arena_alloc(a, (size_t)n * sizeof(*at))) == NULL) {
		return PROTO_ERR_NOMEM;
	}
	for (i = 0; i < n; i++) {
		if ((r = proto_get_ulong(c, &at[i].type)) != 0 ||
		    (r = proto_get_bool(c, &has)) != 0 || (r = proto_get_u64(c, &cap)) != 0) {
			return r;
		}
		if (!has) {
			if (cap != 0) {
				return PROTO_ERR_BAD_VALUE;
			}
			continue;
		}
		reg = proto_attr_kind(at[i].type);
		if (reg == PROTO_AV_TEMPLATE) {
			if (cap > PROTO_MAX_ATTRS) {
				return PROTO_ERR_TOO_LARGE;
			}
			if (depth + 1 > PROTO_MAX_DEPTH) {
				return PROTO_ERR_DEPTH;
			}
			if ((r = get_query_entries(c, a, (uint32_t)cap, depth + 1,
			                           (CK_ATTRIBUTE **)&at[i].pValue)) != 0) {
				return r;
			}
			at[i].ulValueLen = (CK_ULONG)cap * sizeof(CK_ATTRIBUTE);
			continue;
		}
		/* A value larger than a frame cannot come back anyway: the clamp gives the
		 * token the same answer to give (too small) without letting the wire size a
		 * buffer. PROTO_ARENA_MAX bounds the sum. */
		if (cap > PROTO_MAX_FRAME_CAP / kind_unit(reg)) {
			cap = PROTO_MAX_FRAME_CAP / kind_unit(reg);
		}
		at[i].ulValueLen = (CK_ULONG)cap * kind_unit(reg);
		if ((at[i].pValue = proto_arena_alloc(a, at[i].ulValueLen)) == NULL) {
			return PROTO_ERR_NOMEM;
		}
	}
	*out = at;
	return 0;
}

int
proto_get_attrquery(struct proto_cur *c, struct proto_arena *a, CK_ATTRIBUTE **t, CK_ULONG *n)
{
	struct proto_cur cur = *c;
	uint32_t cnt;
	int r;

	*t = NULL;
	*n = 0;
	if (a == NULL) {
		return PROTO_ERR_NOMEM;
	}
	if ((r = proto_get_u32(&cur, &cnt)) != 0) {
		return r;
	}
	if (cnt > PROTO_MAX_ATTRS) {
		return PROTO_ERR_TOO_LARGE;
	}
	if ((r = get_query_entries(&cur, a, cnt, 0, t)) != 0) {
		*t = NULL;
		return r;
	}
	*n = cnt;
	*c = cur;
	return 0;
}

/* ---- C_GetAttributeValue reply ('Q') ------------------------------------------------- */

static int
put_reply_entries(struct proto_buf *b, const CK_ATTRIBUTE *t, CK_ULONG n, int depth, int typed)
{
	CK_ULONG i, unit, len;
	enum proto_av reg;
	uint8_t kind;
	int r;

	for (i = 0; i < n; i++) {
		reg = proto_attr_kind(t[i].type);
		unit = kind_unit(reg);
		/* Nested entries name their type: the token writes it into the app's array. */
		if (typed && (r = proto_put_ulong(b, t[i].type)) != 0) {
			return r;
		}
		if (t[i].ulValueLen == CK_UNAVAILABLE_INFORMATION) {
			if ((r = proto_put_u64(b, UINT64_MAX)) != 0 ||
			    (r = proto_put_u8(b, PROTO_AV_NONE)) != 0) {
				return r;
			}
			continue;
		}
		if (t[i].pValue == NULL) {
			/* Rounded up so that a buffer of that many units always suffices. */
			len = t[i].ulValueLen / unit + (t[i].ulValueLen % unit != 0);
			if ((r = proto_put_u64(b, (uint64_t)len)) != 0 ||
			    (r = proto_put_u8(b, PROTO_AV_NONE)) != 0) {
				return r;
			}
			continue;
		}
		if ((r = value_kind(reg, t[i].ulValueLen, &kind)) != 0) {
			return proto_buf_fail(b, r);
		}
		len = t[i].ulValueLen / kind_unit(kind);
		if (kind == PROTO_AV_BOOL || kind == PROTO_AV_ULONG) {
			len = 1;
		}
		if ((r = proto_put_u64(b, (uint64_t)len)) != 0 ||
		    (r = proto_put_u8(b, kind)) != 0) {
			return r;
		}
		if (kind == PROTO_AV_TEMPLATE) {
			if (depth + 1 > PROTO_MAX_DEPTH) {
				return proto_buf_fail(b, PROTO_ERR_DEPTH);
			}
			if (len > PROTO_MAX_ATTRS) {
				return proto_buf_fail(b, PROTO_ERR_TOO_LARGE);
			}
			if ((r = proto_put_u32(b, (uint32_t)len)) != 0 ||
			    (r = put_reply_entries(b, t[i].pValue, len, depth + 1, 1)) != 0) {
				return r;
			}
			continue;
		}
		if ((r = put_value(b, &t[i], kind, depth, NULL)) != 0) {
			return r;
		}
	}
	return 0;
}

int
proto_put_attrreply(struct proto_buf *b, const CK_ATTRIBUTE *t, CK_ULONG n)
{
	int r;

	if (n > PROTO_MAX_ATTRS) {
		return proto_buf_fail(b, PROTO_ERR_TOO_LARGE);
	}
	if (t == NULL && n != 0) {
		return proto_buf_fail(b, PROTO_ERR_BAD_VALUE);
	}
	if ((r = proto_put_u32(b, (uint32_t)n)) != 0 ||
	    (r = put_reply_entries(b, t, n, 0, 0)) != 0) {
		return r;
	}
	return 0;
}

enum reply_mode {
	REPLY_CHECK, /* validate against the app's template, write nothing */
	REPLY_FILL,  /* write into the app's template (after a successful CHECK) */
	REPLY_SKIM,  /* validate the encoding alone (no template) */
};

/* Room for `need` bytes in the app's attribute, which we must never write past. */
static int
app_room(const CK_ATTRIBUTE *at, uint64_t need)
{
	if (at->pValue == NULL || (uint64_t)at->ulValueLen < need) {
		return PROTO_ERR_SMALL;
	}
	return 0;
}

/*
 * One reply entry: u64 length | u8 kind | value. `type` is the attribute's type (from the
 * app's template at the top level, from the wire inside a template), `known` whether it is
 * known at all (not in SKIM mode at the top level).
 */
static int
get_reply_entry(struct proto_cur *c, CK_ATTRIBUTE_TYPE type, int known, CK_ATTRIBUTE *at, int depth,
                enum reply_mode mode)
{
	enum proto_av reg = known ? proto_attr_kind(type) : PROTO_AV_NONE;
	CK_ATTRIBUTE *nested = NULL;
	CK_ATTRIBUTE_TYPE ntype;
	const uint8_t *p;
	uint64_t len;
	uint32_t cnt, j;
	CK_ULONG v, room;
	size_t blen;
	uint8_t kind, u;
	int r;

	if ((r = proto_get_u64(c, &len)) != 0 || (r = proto_get_u8(c, &kind)) != 0) {
		return r;
	}
	if (kind > PROTO_AV_DATE || (known && !kind_allowed(kind, reg))) {
		return PROTO_ERR_BAD_VALUE;
	}
	switch (kind) {
	case PROTO_AV_NONE:
		if (mode != REPLY_FILL) {
			if (len != UINT64_MAX && len > (uint64_t)(CK_ULONG)-2 / kind_unit(reg)) {
				return PROTO_ERR_BAD_VALUE;
			}
			return 0;
		}
		/* v2.40 §5.7: unavailable (sensitive, invalid type, too small) is -1. */
		at->ulValueLen = len == UINT64_MAX ? CK_UNAVAILABLE_INFORMATION
		                                   : (CK_ULONG)len * kind_unit(reg);
		return 0;
	case PROTO_AV_BOOL:
		if ((r = proto_get_u8(c, &u)) != 0) {
			return r;
		}
		if (len != 1) {
			return PROTO_ERR_BAD_VALUE;
		}
		if (mode == REPLY_SKIM) {
			return 0;
		}
		if ((r = app_room(at, 1)) != 0) {
			return r;
		}
		if (mode == REPLY_FILL) {
			*(CK_BYTE *)at->pValue = u;
			at->ulValueLen = 1;
		}
		return 0;
	case PROTO_AV_ULONG:
		if ((r = proto_get_ulong(c, &v)) != 0) {
			return r;
		}
		if (len != 1) {
			return PROTO_ERR_BAD_VALUE;
		}
		if (mode == REPLY_SKIM) {
			return 0;
		}
		if ((r = app_room(at, sizeof(v))) != 0) {
			return r;
		}
		if (mode == REPLY_FILL) {
			memcpy(at->pValue, &v, sizeof(v));
			at->ulValueLen = sizeof(v);
		}
		return 0;
	case PROTO_AV_DATE:
	case PROTO_AV_BYTES:
		if (kind == PROTO_AV_DATE) {
			if (c->len < sizeof(CK_DATE)) {
				return PROTO_ERR_TRUNCATED;
			}
			p = c->p;
			blen = sizeof(CK_DATE);
			c->p += blen;
			c->len -= blen;
		} else if ((r = proto_get_bytes_ref(c, &p, &blen, PROTO_MAX_FRAME_CAP)) != 0) {
			return r;
		}
		if (len != blen) {
			return PROTO_ERR_BAD_VALUE;
		}
		if (mode == REPLY_SKIM) {
			return 0;
		}
		if ((r = app_room(at, blen)) != 0) {
			return r;
		}
		if (mode == REPLY_FILL) {
			if (blen != 0) {
				memcpy(at->pValue, p, blen);
			}
			at->ulValueLen = (CK_ULONG)blen;
		}
		return 0;
	case PROTO_AV_MECHS:
		if ((r = proto_get_u32(c, &cnt)) != 0) {
			return r;
		}
		if (cnt > PROTO_MAX_ULONGS) {
			return PROTO_ERR_TOO_LARGE;
		}
		if ((size_t)cnt * 8 > c->len) {
			return PROTO_ERR_TRUNCATED;
		}
		if (len != cnt) {
			return PROTO_ERR_BAD_VALUE;
		}
		if (mode != REPLY_SKIM &&
		    (r = app_room(at, (uint64_t)cnt * sizeof(CK_MECHANISM_TYPE))) != 0) {
			return r;
		}
		for (j = 0; j < cnt; j++) {
			if ((r = proto_get_ulong(c, &v)) != 0) {
				return r;
			}
			if (mode == REPLY_FILL) {
				memcpy((CK_BYTE *)at->pValue + j * sizeof(v), &v, sizeof(v));
			}
		}
		if (mode == REPLY_FILL) {
			at->ulValueLen = (CK_ULONG)cnt * sizeof(CK_MECHANISM_TYPE);
		}
		return 0;
	case PROTO_AV_TEMPLATE:
		if (depth + 1 > PROTO_MAX_DEPTH) {
			return PROTO_ERR_DEPTH;
		}
		if ((r = proto_get_u32(c, &cnt)) != 0) {
			return r;
		}
		if (cnt > PROTO_MAX_ATTRS) {
			return PROTO_ERR_TOO_LARGE;
		}
		if ((size_t)cnt * (8 + REPLY_MIN_WIRE) > c->len) {
			return PROTO_ERR_TRUNCATED;
		}
		if (len != cnt) {
			return PROTO_ERR_BAD_VALUE;
		}
		if (mode != REPLY_SKIM) {
			/* At most the elements we asked about (put_query_entries). */
			room = at->pValue == NULL ? 0 : at->ulValueLen / sizeof(CK_ATTRIBUTE);
			if (room > PROTO_MAX_ATTRS) {
				room = PROTO_MAX_ATTRS;
			}
			if (cnt > room) {
				return PROTO_ERR_SMALL;
			}
			nested = at->pValue;
		}
		for (j = 0; j < cnt; j++) {
			if ((r = proto_get_ulong(c, &ntype)) != 0) {
				return r;
			}
			if (mode == REPLY_FILL) {
				nested[j].type = ntype;
			}
			if ((r = get_reply_entry(c, ntype, 1, nested != NULL ? &nested[j] : NULL,
			                         depth + 1, mode)) != 0) {
				return r;
			}
		}
		if (mode == REPLY_FILL) {
			at->ulValueLen = (CK_ULONG)cnt * sizeof(CK_ATTRIBUTE);
		}
		return 0;
	default:
		return PROTO_ERR_BAD_VALUE;
	}
}

static int
get_attrreply_mode(struct proto_cur *c, CK_ATTRIBUTE *t, CK_ULONG n, enum reply_mode mode)
{
	uint32_t cnt, i;
	int r;

	if ((r = proto_get_u32(c, &cnt)) != 0) {
		return r;
	}
	if (cnt > PROTO_MAX_ATTRS) {
		return PROTO_ERR_TOO_LARGE;
	}
	if (mode != REPLY_SKIM && cnt != n) {
		return PROTO_ERR_BAD_VALUE;
	}
	if ((size_t)cnt * REPLY_MIN_WIRE > c->len) {
		return PROTO_ERR_TRUNCATED;
	}
	for (i = 0; i < cnt; i++) {
		if ((r = get_reply_entry(c, mode == REPLY_SKIM ? 0 : t[i].type, mode != REPLY_SKIM,
		                         mode == REPLY_SKIM ? NULL : &t[i], 0, mode)) != 0) {
			return r;
		}
	}
	return 0;
}

int
proto_get_attrreply(struct proto_cur *c, CK_ATTRIBUTE *t, CK_ULONG n)
{
	struct proto_cur check = *c, fill = *c;
	int r;

	if (t == NULL && n != 0) {
		return PROTO_ERR_BAD_VALUE;
	}
	/* Two passes so that a reply that fails anywhere leaves the app's template as it
	 * was: the first checks every length against the app's buffers, the second copies. */
	if ((r = get_attrreply_mode(&check, t, n, REPLY_CHECK)) != 0 ||
	    (r = get_attrreply_mode(&fill, t, n, REPLY_FILL)) != 0) {
		return r;
	}
	*c = fill;
	return 0;
}

int
proto_attrreply_skim(struct proto_cur *c)
{
	struct proto_cur t = *c;
	int r;

	if ((r = get_attrreply_mode(&t, NULL, 0, REPLY_SKIM)) != 0) {
		return r;
	}
	*c = t;
	return 0;
}
