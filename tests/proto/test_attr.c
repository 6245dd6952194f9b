/* tests/proto/test_attr.c — attribute registry, templates, C_GetAttributeValue query and
 * reply (proto/attr.c). */
#include "tests/proto/proto_test.h"

static CK_OBJECT_CLASS cls_secret = CKO_SECRET_KEY;
static CK_KEY_TYPE kt_aes = CKK_AES;
static CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
static CK_ULONG len32 = 32;
static CK_DATE start = {{'2', '0', '2', '5'}, {'0', '1'}, {'3', '1'}};
static CK_MECHANISM_TYPE allowed[] = {CKM_AES_GCM, CKM_AES_KEY_WRAP_PAD, CKM_AES_CBC_PAD};
static CK_BYTE idv[8] = {1, 2, 3, 4, 5, 6, 7, 8};
static CK_BYTE secret[16] = {0xde, 0xad};

static CK_ATTRIBUTE wrap_tmpl[] = {
        {CKA_CLASS, &cls_secret, sizeof(cls_secret)},
        {CKA_KEY_TYPE, &kt_aes, sizeof(kt_aes)},
};

/* ---- registry ------------------------------------------------------------------------ */

static void
test_registry(void)
{
	static const CK_ATTRIBUTE_TYPE bools[] = {CKA_TOKEN,
	                                          CKA_PRIVATE,
	                                          CKA_SENSITIVE,
	                                          CKA_SIGN,
	                                          CKA_VERIFY,
	                                          CKA_ENCRYPT,
	                                          CKA_DECRYPT,
	                                          CKA_WRAP,
	                                          CKA_UNWRAP,
	                                          CKA_DERIVE,
	                                          CKA_EXTRACTABLE,
	                                          CKA_LOCAL,
	                                          CKA_NEVER_EXTRACTABLE,
	                                          CKA_ALWAYS_SENSITIVE,
	                                          CKA_MODIFIABLE,
	                                          CKA_COPYABLE,
	                                          CKA_DESTROYABLE,
	                                          CKA_TRUSTED,
	                                          CKA_WRAP_WITH_TRUSTED,
	                                          CKA_ALWAYS_AUTHENTICATE,
	                                          CKA_SIGN_RECOVER,
	                                          CKA_VERIFY_RECOVER};
	static const CK_ATTRIBUTE_TYPE ulongs[] = {CKA_CLASS,
	                                           CKA_KEY_TYPE,
	                                           CKA_VALUE_LEN,
	                                           CKA_MODULUS_BITS,
	                                           CKA_CERTIFICATE_TYPE,
	                                           CKA_KEY_GEN_MECHANISM,
	                                           CKA_CERTIFICATE_CATEGORY,
	                                           CKA_VALUE_BITS,
	                                           CKA_PRIME_BITS,
	                                           CKA_HW_FEATURE_TYPE,
	                                           CKA_MECHANISM_TYPE,
	                                           CKA_NAME_HASH_ALGORITHM,
	                                           CKA_JAVA_MIDP_SECURITY_DOMAIN};
	static const CK_ATTRIBUTE_TYPE bytes[] = {
	        CKA_LABEL,       CKA_ID,          CKA_VALUE,     CKA_MODULUS, CKA_PUBLIC_EXPONENT,
	        CKA_EC_PARAMS,   CKA_EC_POINT,    CKA_SUBJECT,   CKA_ISSUER,  CKA_SERIAL_NUMBER,
	        CKA_CHECK_VALUE, CKA_APPLICATION, CKA_OBJECT_ID, CKA_URL};
	size_t i;

	for (i = 0; i < sizeof(bools) / sizeof(bools[0]); i++) {
		CU_ASSERT_EQUAL(proto_attr_kind(bools[i]), PROTO_AV_BOOL);
		CU_ASSERT_PTR_NOT_NULL(proto_attr_name(bools[i]));
	}
	for (i = 0; i < sizeof(ulongs) / sizeof(ulongs[0]); i++) {
		CU_ASSERT_EQUAL(proto_attr_kind(ulongs[i]), PROTO_AV_ULONG);
		CU_ASSERT_PTR_NOT_NULL(proto_attr_name(ulongs[i]));
	}
	for (i = 0; i < sizeof(bytes) / sizeof(bytes[0]); i++) {
		CU_ASSERT_EQUAL(proto_attr_kind(bytes[i]), PROTO_AV_BYTES);
		CU_ASSERT_PTR_NOT_NULL(proto_attr_name(bytes[i]));
	}
	CU_ASSERT_EQUAL(proto_attr_kind(CKA_START_DATE), PROTO_AV_DATE);
	CU_ASSERT_EQUAL(proto_attr_kind(CKA_END_DATE), PROTO_AV_DATE);
	CU_ASSERT_EQUAL(proto_attr_kind(CKA_WRAP_TEMPLATE), PROTO_AV_TEMPLATE);
	CU_ASSERT_EQUAL(proto_attr_kind(CKA_UNWRAP_TEMPLATE), PROTO_AV_TEMPLATE);
	CU_ASSERT_EQUAL(proto_attr_kind(CKA_DERIVE_TEMPLATE), PROTO_AV_TEMPLATE);
	CU_ASSERT_EQUAL(proto_attr_kind(CKA_ALLOWED_MECHANISMS), PROTO_AV_MECHS);
	CU_ASSERT_STRING_EQUAL(proto_attr_name(CKA_LABEL), "CKA_LABEL");
	CU_ASSERT_STRING_EQUAL(proto_attr_name(CKA_WRAP_TEMPLATE), "CKA_WRAP_TEMPLATE");
	CU_ASSERT_PTR_NULL(proto_attr_name(CKA_VENDOR_DEFINED | 7));
	CU_ASSERT_EQUAL(proto_attr_kind(CKA_VENDOR_DEFINED | 7), PROTO_AV_BYTES);
	/* a vendor array attribute holds pointers: never bytes */
	CU_ASSERT_EQUAL(proto_attr_kind(CKA_VENDOR_DEFINED | CKF_ARRAY_ATTRIBUTE | 7),
	                PROTO_AV_TEMPLATE);
}

/* ---- templates ----------------------------------------------------------------------- */

static int
dec_template(struct proto_cur *c, struct proto_arena *a, void *ctx)
{
	CK_ATTRIBUTE *t;
	CK_ULONG n;

	(void)ctx;
	return proto_get_template(c, a, &t, &n);
}

static void
assert_same_template(const CK_ATTRIBUTE *x, const CK_ATTRIBUTE *y, CK_ULONG n)
{
	CK_ULONG i;

	for (i = 0; i < n; i++) {
		CU_ASSERT_EQUAL(x[i].type, y[i].type);
		CU_ASSERT_EQUAL(x[i].ulValueLen, y[i].ulValueLen);
		if (x[i].pValue == NULL) {
			CU_ASSERT_PTR_NULL(y[i].pValue);
			continue;
		}
		CU_ASSERT_PTR_NOT_NULL_FATAL(y[i].pValue);
		if (proto_attr_kind(x[i].type) == PROTO_AV_TEMPLATE) {
			assert_same_template(x[i].pValue, y[i].pValue,
			                     x[i].ulValueLen / sizeof(CK_ATTRIBUTE));
		} else if (x[i].ulValueLen != 0) {
			CU_ASSERT_EQUAL(memcmp(x[i].pValue, y[i].pValue, x[i].ulValueLen), 0);
		}
	}
}

static void
template_roundtrip(const CK_ATTRIBUTE *t, CK_ULONG n, int loops)
{
	struct proto_arena *a = proto_arena_new();
	struct proto_buf b;
	struct proto_cur c;
	CK_ATTRIBUTE *g;
	CK_ULONG gn;

	proto_buf_init(&b);
	CU_ASSERT_EQUAL_FATAL(proto_put_template(&b, t, n), 0);
	proto_cur_init(&c, b.data, b.len);
	CU_ASSERT_EQUAL_FATAL(proto_get_template(&c, a, &g, &gn), 0);
	CU_ASSERT_EQUAL(proto_cur_end(&c), 0);
	CU_ASSERT_EQUAL_FATAL(gn, n);
	assert_same_template(t, g, n);
	if (loops) {
		pt_truncations(b.data, b.len, dec_template, NULL);
		pt_bitflips(b.data, b.len, dec_template, NULL);
	}
	proto_buf_free(&b);
	proto_arena_free(a);
}

static void
test_template_every_kind(void)
{
	CK_ATTRIBUTE t[] = {
	        {CKA_CLASS, &cls_secret, sizeof(cls_secret)},
	        {CKA_TOKEN, &yes, sizeof(yes)},
	        {CKA_EXTRACTABLE, &no, sizeof(no)},
	        {CKA_VALUE_LEN, &len32, sizeof(len32)},
	        {CKA_LABEL, "my key", 6},
	        {CKA_ID, idv, 0},         /* empty, non-NULL */
	        {CKA_SUBJECT, NULL, 0},   /* NULL */
	        {CKA_MODULUS, NULL, 256}, /* NULL with a length */
	        {CKA_START_DATE, &start, sizeof(start)},
	        {CKA_ALLOWED_MECHANISMS, allowed, sizeof(allowed)},
	        {CKA_WRAP_TEMPLATE, wrap_tmpl, sizeof(wrap_tmpl)},
	        {CKA_VENDOR_DEFINED | 5, idv, 3},
	};

	template_roundtrip(t, sizeof(t) / sizeof(t[0]), 1);
	template_roundtrip(NULL, 0, 1);
}

static void
test_template_byte_layout(void)
{
	CK_ATTRIBUTE t[] = {{CKA_TOKEN, &yes, 1}, {CKA_CLASS, &cls_secret, sizeof(CK_ULONG)}};
	static const uint8_t want[] = {0,
	                               0,
	                               0,
	                               2,
	                               0,
	                               0,
	                               0,
	                               0,
	                               0,
	                               0,
	                               0,
	                               1,
	                               PROTO_AV_BOOL,
	                               1,
	                               0,
	                               0,
	                               0,
	                               0,
	                               0,
	                               0,
	                               0,
	                               0,
	                               PROTO_AV_ULONG,
	                               0,
	                               0,
	                               0,
	                               0,
	                               0,
	                               0,
	                               0,
	                               4};
	struct proto_buf b;

	proto_buf_init(&b);
	CU_ASSERT_EQUAL(proto_put_template(&b, t, 2), 0);
	CU_ASSERT_EQUAL(b.len, sizeof(want));
	CU_ASSERT_EQUAL(memcmp(b.data, want, sizeof(want)), 0);
	proto_buf_free(&b);
}

static void
test_template_wrong_length_as_bytes(void)
{
	/* A CK_ULONG attribute of 4 bytes and a bool of 2 travel as bytes: the token judges. */
	CK_BYTE four[4] = {1, 2, 3, 4};
	CK_ATTRIBUTE t[] = {{CKA_CLASS, four, 4},
	                    {CKA_TOKEN, four, 2},
	                    {CKA_START_DATE, four, 3},
	                    {CKA_ALLOWED_MECHANISMS, four, 3}};
	struct proto_buf b;

	template_roundtrip(t, 4, 0);
	proto_buf_init(&b);
	CU_ASSERT_EQUAL(proto_put_template(&b, t, 1), 0);
	CU_ASSERT_EQUAL(b.data[12], PROTO_AV_BYTES);
	proto_buf_free(&b);
}

static void
test_template_ragged_nested(void)
{
	CK_ATTRIBUTE t[] = {{CKA_WRAP_TEMPLATE, wrap_tmpl, sizeof(CK_ATTRIBUTE) + 1}};
	struct proto_buf b;

	proto_buf_init(&b);
	CU_ASSERT_EQUAL(proto_put_template(&b, t, 1), PROTO_ERR_BAD_VALUE);
	proto_buf_free(&b);
}

static void
test_template_depth_encoder(void)
{
	CK_ATTRIBUTE l2[] = {{CKA_LABEL, "x", 1}};
	CK_ATTRIBUTE l1[] = {{CKA_DERIVE_TEMPLATE, l2, sizeof(l2)}};
	CK_ATTRIBUTE top[] = {{CKA_WRAP_TEMPLATE, l1, sizeof(l1)}};
	CK_ATTRIBUTE self[1];
	CK_ATTRIBUTE l0[] = {{CKA_UNWRAP_TEMPLATE, top, sizeof(top)}};
	struct proto_buf b;

	/* top template, a template value, a template in it: depth 2 is fine */
	template_roundtrip(top, 1, 1);
	proto_buf_init(&b);
	CU_ASSERT_EQUAL(proto_put_template(&b, l0, 1), PROTO_ERR_DEPTH);
	proto_buf_free(&b);
	/* a template that contains itself must not recurse forever */
	self[0].type = CKA_WRAP_TEMPLATE;
	self[0].pValue = self;
	self[0].ulValueLen = sizeof(self);
	proto_buf_init(&b);
	CU_ASSERT_EQUAL(proto_put_template(&b, self, 1), PROTO_ERR_DEPTH);
	proto_buf_free(&b);
}

static int
decode_template_raw(const struct proto_buf *b)
{
	struct proto_arena *a = proto_arena_new();
	struct proto_cur c;
	CK_ATTRIBUTE *t;
	CK_ULONG n;
	int r;

	proto_cur_init(&c, b->data, b->len);
	r = proto_get_template(&c, a, &t, &n);
	if (r != 0) {
		CU_ASSERT_EQUAL(c.len, b->len);
		CU_ASSERT_PTR_NULL(t);
		CU_ASSERT_EQUAL(n, 0);
	} else {
		r = proto_cur_end(&c);
	}
	proto_arena_free(a);
	return r;
}

static void
test_template_depth_decoder(void)
{
	struct proto_buf b;
	int i;

	proto_buf_init(&b);
	for (i = 0; i < 3; i++) {
		CU_ASSERT_EQUAL(proto_put_u32(&b, 1), 0);
		CU_ASSERT_EQUAL(proto_put_u64(&b, CKA_WRAP_TEMPLATE), 0);
		CU_ASSERT_EQUAL(proto_put_u8(&b, PROTO_AV_TEMPLATE), 0);
	}
	CU_ASSERT_EQUAL(proto_put_u32(&b, 0), 0);
	CU_ASSERT_EQUAL(decode_template_raw(&b), PROTO_ERR_DEPTH);
	proto_buf_free(&b);
}

static void
test_template_too_many(void)
{
	struct proto_buf b;
	int i;

	proto_buf_init(&b);
	CU_ASSERT_EQUAL(proto_put_u32(&b, PROTO_MAX_ATTRS + 1), 0);
	for (i = 0; i < PROTO_MAX_ATTRS + 1; i++) {
		CU_ASSERT_EQUAL(proto_put_u64(&b, CKA_TOKEN), 0);
		CU_ASSERT_EQUAL(proto_put_u8(&b, PROTO_AV_BOOL), 0);
		CU_ASSERT_EQUAL(proto_put_u8(&b, 1), 0);
	}
	CU_ASSERT_EQUAL(decode_template_raw(&b), PROTO_ERR_TOO_LARGE);
	proto_buf_reset(&b);
	CU_ASSERT_EQUAL(proto_put_u32(&b, UINT32_MAX), 0);
	CU_ASSERT_EQUAL(decode_template_raw(&b), PROTO_ERR_TOO_LARGE);
	proto_buf_free(&b);
	{
		static CK_ATTRIBUTE many[PROTO_MAX_ATTRS + 1];

		proto_buf_init(&b);
		CU_ASSERT_EQUAL(proto_put_template(&b, many, PROTO_MAX_ATTRS + 1),
		                PROTO_ERR_TOO_LARGE);
		proto_buf_free(&b);
	}
}

static void
test_template_count_over_remaining(void)
{
	struct proto_buf b;

	/* 200 attributes announced, one present: refused before allocating 200. */
	proto_buf_init(&b);
	CU_ASSERT_EQUAL(proto_put_u32(&b, 200), 0);
	CU_ASSERT_EQUAL(proto_put_u64(&b, CKA_TOKEN), 0);
	CU_ASSERT_EQUAL(proto_put_u8(&b, PROTO_AV_BOOL), 0);
	CU_ASSERT_EQUAL(proto_put_u8(&b, 1), 0);
	CU_ASSERT_EQUAL(decode_template_raw(&b), PROTO_ERR_TRUNCATED);
	proto_buf_free(&b);
}

static void
test_template_bad_kind(void)
{
	struct proto_buf b;
	uint8_t k;

	for (k = PROTO_AV_DATE + 1; k != 0; k++) {
		proto_buf_init(&b);
		CU_ASSERT_EQUAL(proto_put_u32(&b, 1), 0);
		CU_ASSERT_EQUAL(proto_put_u64(&b, CKA_LABEL), 0);
		CU_ASSERT_EQUAL(proto_put_u8(&b, k), 0);
		CU_ASSERT_EQUAL(proto_put_u32(&b, 0), 0);
		CU_ASSERT_EQUAL(decode_template_raw(&b), PROTO_ERR_BAD_VALUE);
		proto_buf_free(&b);
	}
}

static void
test_template_kind_mismatch(void)
{
	struct proto_buf b;

	/* bytes for a template attribute: the token would read pointers out of them */
	proto_buf_init(&b);
	CU_ASSERT_EQUAL(proto_put_u32(&b, 1), 0);
	CU_ASSERT_EQUAL(proto_put_u64(&b, CKA_WRAP_TEMPLATE), 0);
	CU_ASSERT_EQUAL(proto_put_u8(&b, PROTO_AV_BYTES), 0);
	CU_ASSERT_EQUAL(proto_put_bytes(&b, "01234567890123456789012", 24), 0);
	CU_ASSERT_EQUAL(decode_template_raw(&b), PROTO_ERR_BAD_VALUE);
	proto_buf_reset(&b);
	/* a template for a bytes attribute */
	CU_ASSERT_EQUAL(proto_put_u32(&b, 1), 0);
	CU_ASSERT_EQUAL(proto_put_u64(&b, CKA_LABEL), 0);
	CU_ASSERT_EQUAL(proto_put_u8(&b, PROTO_AV_TEMPLATE), 0);
	CU_ASSERT_EQUAL(proto_put_u32(&b, 0), 0);
	CU_ASSERT_EQUAL(decode_template_raw(&b), PROTO_ERR_BAD_VALUE);
	proto_buf_reset(&b);
	/* a ulong for a bool attribute */
	CU_ASSERT_EQUAL(proto_put_u32(&b, 1), 0);
	CU_ASSERT_EQUAL(proto_put_u64(&b, CKA_TOKEN), 0);
	CU_ASSERT_EQUAL(proto_put_u8(&b, PROTO_AV_ULONG), 0);
	CU_ASSERT_EQUAL(proto_put_u64(&b, 1), 0);
	CU_ASSERT_EQUAL(decode_template_raw(&b), PROTO_ERR_BAD_VALUE);
	proto_buf_free(&b);
}

static void
test_template_mechs_too_many(void)
{
	struct proto_buf b;

	proto_buf_init(&b);
	CU_ASSERT_EQUAL(proto_put_u32(&b, 1), 0);
	CU_ASSERT_EQUAL(proto_put_u64(&b, CKA_ALLOWED_MECHANISMS), 0);
	CU_ASSERT_EQUAL(proto_put_u8(&b, PROTO_AV_MECHS), 0);
	CU_ASSERT_EQUAL(proto_put_u32(&b, PROTO_MAX_ULONGS + 1), 0);
	CU_ASSERT_EQUAL(decode_template_raw(&b), PROTO_ERR_TOO_LARGE);
	proto_buf_reset(&b);
	CU_ASSERT_EQUAL(proto_put_u32(&b, 1), 0);
	CU_ASSERT_EQUAL(proto_put_u64(&b, CKA_ALLOWED_MECHANISMS), 0);
	CU_ASSERT_EQUAL(proto_put_u8(&b, PROTO_AV_MECHS), 0);
	CU_ASSERT_EQUAL(proto_put_u32(&b, 1000), 0);
	CU_ASSERT_EQUAL(proto_put_u64(&b, 1), 0);
	CU_ASSERT_EQUAL(decode_template_raw(&b), PROTO_ERR_TRUNCATED);
	proto_buf_free(&b);
}

static void
test_template_bool_raw_byte(void)
{
	struct proto_arena *a = proto_arena_new();
	struct proto_buf b;
	struct proto_cur c;
	CK_ATTRIBUTE *t;
	CK_ULONG n;

	proto_buf_init(&b);
	CU_ASSERT_EQUAL(proto_put_u32(&b, 1), 0);
	CU_ASSERT_EQUAL(proto_put_u64(&b, CKA_TOKEN), 0);
	CU_ASSERT_EQUAL(proto_put_u8(&b, PROTO_AV_BOOL), 0);
	CU_ASSERT_EQUAL(proto_put_u8(&b, 0x7f), 0);
	proto_cur_init(&c, b.data, b.len);
	CU_ASSERT_EQUAL(proto_get_template(&c, a, &t, &n), 0);
	CU_ASSERT_EQUAL(*(CK_BBOOL *)t[0].pValue, 0x7f);
	proto_buf_free(&b);
	proto_arena_free(a);
}

/* ---- C_GetAttributeValue ------------------------------------------------------------- */

/* A fake token object and a v2.40 §5.7 C_GetAttributeValue over it: the reference the wire
 * must reproduce exactly. */
static CK_BYTE modulus[256];
static CK_ATTRIBUTE object[] = {
        {CKA_CLASS, &cls_secret, sizeof(cls_secret)},
        {CKA_KEY_TYPE, &kt_aes, sizeof(kt_aes)},
        {CKA_LABEL, "payments-kek", 12},
        {CKA_ID, idv, sizeof(idv)},
        {CKA_SIGN, &yes, sizeof(yes)},
        {CKA_START_DATE, &start, sizeof(start)},
        {CKA_ALLOWED_MECHANISMS, allowed, sizeof(allowed)},
        {CKA_WRAP_TEMPLATE, wrap_tmpl, sizeof(wrap_tmpl)},
        {CKA_UNWRAP_TEMPLATE, wrap_tmpl, sizeof(wrap_tmpl)},
        {CKA_MODULUS, modulus, sizeof(modulus)},
        {CKA_VALUE, secret, sizeof(secret)}, /* sensitive */
};

static CK_RV
fake_get(const CK_ATTRIBUTE *obj, CK_ULONG on, CK_ATTRIBUTE *t, CK_ULONG n)
{
	CK_RV rv = CKR_OK;
	CK_ULONG i, j, k, cnt;
	const CK_ATTRIBUTE *src;
	CK_ATTRIBUTE *dst;

	for (i = 0; i < n; i++) {
		src = NULL;
		for (j = 0; j < on; j++) {
			if (obj[j].type == t[i].type) {
				src = &obj[j];
			}
		}
		if (t[i].type == CKA_VALUE) {
			t[i].ulValueLen = CK_UNAVAILABLE_INFORMATION;
			rv = CKR_ATTRIBUTE_SENSITIVE;
		} else if (src == NULL) {
			t[i].ulValueLen = CK_UNAVAILABLE_INFORMATION;
			rv = CKR_ATTRIBUTE_TYPE_INVALID;
		} else if (t[i].pValue == NULL) {
			t[i].ulValueLen = src->ulValueLen;
		} else if (t[i].ulValueLen < src->ulValueLen) {
			t[i].ulValueLen = CK_UNAVAILABLE_INFORMATION;
			rv = CKR_BUFFER_TOO_SMALL;
		} else if (proto_attr_kind(t[i].type) == PROTO_AV_TEMPLATE) {
			/* applied to each attribute of the caller's array */
			cnt = src->ulValueLen / sizeof(CK_ATTRIBUTE);
			dst = t[i].pValue;
			for (k = 0; k < cnt; k++) {
				dst[k].type = ((const CK_ATTRIBUTE *)src->pValue)[k].type;
				if (fake_get(src->pValue, cnt, &dst[k], 1) != CKR_OK) {
					rv = CKR_BUFFER_TOO_SMALL;
				}
			}
			t[i].ulValueLen = src->ulValueLen;
		} else {
			memcpy(t[i].pValue, src->pValue, src->ulValueLen);
			t[i].ulValueLen = src->ulValueLen;
		}
	}
	return rv;
}

/* The application's template, built twice (wire and reference) with its own buffers. */
struct app {
	CK_ATTRIBUTE t[12];
	CK_ATTRIBUTE nested[3];
	CK_ULONG cls;
	CK_BYTE id[2];
	CK_BBOOL sign;
	CK_DATE date;
	CK_MECHANISM_TYPE mechs[4];
	CK_ULONG nested_cls;
	CK_BYTE mod[512];
	CK_BYTE value[16];
	CK_BYTE unused[8];
};

static CK_ULONG
app_build(struct app *p)
{
	CK_ULONG n = 0;

	memset(p, 0xcc, sizeof(*p));
	p->nested[0] = (CK_ATTRIBUTE){0, NULL, 0};
	p->nested[1] = (CK_ATTRIBUTE){0, &p->nested_cls, sizeof(p->nested_cls)};
	p->nested[2] = (CK_ATTRIBUTE){0, p->unused, sizeof(p->unused)};
	p->t[n++] = (CK_ATTRIBUTE){CKA_CLASS, &p->cls, sizeof(p->cls)};
	p->t[n++] = (CK_ATTRIBUTE){CKA_LABEL, NULL, 0};                     /* size query */
	p->t[n++] = (CK_ATTRIBUTE){CKA_ID, p->id, sizeof(p->id)};           /* too small */
	p->t[n++] = (CK_ATTRIBUTE){CKA_VALUE_LEN, &p->cls, sizeof(p->cls)}; /* invalid type */
	p->t[n++] = (CK_ATTRIBUTE){CKA_VALUE, p->value, sizeof(p->value)};  /* sensitive */
	p->t[n++] = (CK_ATTRIBUTE){CKA_SIGN, &p->sign, sizeof(p->sign)};
	p->t[n++] = (CK_ATTRIBUTE){CKA_START_DATE, &p->date, sizeof(p->date)};
	p->t[n++] = (CK_ATTRIBUTE){CKA_ALLOWED_MECHANISMS, p->mechs, sizeof(p->mechs)};
	p->t[n++] = (CK_ATTRIBUTE){CKA_WRAP_TEMPLATE, p->nested, sizeof(p->nested)};
	p->t[n++] = (CK_ATTRIBUTE){CKA_UNWRAP_TEMPLATE, NULL, 0};
	p->t[n++] = (CK_ATTRIBUTE){CKA_MODULUS, p->mod, sizeof(p->mod)};
	return n;
}

/* Compares what the application sees, ignoring where the buffers live. */
static void
app_assert_same(const struct app *x, const struct app *y, CK_ULONG n)
{
	CK_ULONG i;

	for (i = 0; i < n; i++) {
		CU_ASSERT_EQUAL(x->t[i].type, y->t[i].type);
		CU_ASSERT_EQUAL(x->t[i].ulValueLen, y->t[i].ulValueLen);
	}
	CU_ASSERT_EQUAL(x->cls, y->cls);
	CU_ASSERT_EQUAL(memcmp(x->id, y->id, sizeof(x->id)), 0);
	CU_ASSERT_EQUAL(x->sign, y->sign);
	CU_ASSERT_EQUAL(memcmp(&x->date, &y->date, sizeof(x->date)), 0);
	CU_ASSERT_EQUAL(memcmp(x->mechs, y->mechs, sizeof(x->mechs)), 0);
	CU_ASSERT_EQUAL(x->nested_cls, y->nested_cls);
	CU_ASSERT_EQUAL(memcmp(x->mod, y->mod, sizeof(x->mod)), 0);
	CU_ASSERT_EQUAL(memcmp(x->value, y->value, sizeof(x->value)), 0);
	CU_ASSERT_EQUAL(memcmp(x->unused, y->unused, sizeof(x->unused)), 0);
	for (i = 0; i < 3; i++) {
		CU_ASSERT_EQUAL(x->nested[i].type, y->nested[i].type);
		CU_ASSERT_EQUAL(x->nested[i].ulValueLen, y->nested[i].ulValueLen);
	}
}

/* Client → server → fake token → client, returning the reply encoding in *reply. */
static CK_RV
over_the_wire(struct app *p, CK_ULONG n, struct proto_buf *reply)
{
	struct proto_arena *a = proto_arena_new();
	struct proto_buf q;
	struct proto_cur c;
	CK_ATTRIBUTE *st;
	CK_ULONG sn;
	CK_RV rv;

	proto_buf_init(&q);
	CU_ASSERT_EQUAL_FATAL(proto_put_attrquery(&q, p->t, n), 0);
	proto_cur_init(&c, q.data, q.len);
	CU_ASSERT_EQUAL_FATAL(proto_get_attrquery(&c, a, &st, &sn), 0);
	CU_ASSERT_EQUAL(proto_cur_end(&c), 0);
	CU_ASSERT_EQUAL_FATAL(sn, n);
	rv = fake_get(object, sizeof(object) / sizeof(object[0]), st, sn);
	proto_buf_init(reply);
	CU_ASSERT_EQUAL_FATAL(proto_put_attrreply(reply, st, sn), 0);
	proto_cur_init(&c, reply->data, reply->len);
	CU_ASSERT_EQUAL_FATAL(proto_get_attrreply(&c, p->t, n), 0);
	CU_ASSERT_EQUAL(proto_cur_end(&c), 0);
	proto_buf_free(&q);
	proto_arena_free(a);
	return rv;
}

static void
test_getattr_mirrors_token(void)
{
	struct app wire, ref;
	struct proto_buf reply;
	CK_ULONG n;
	CK_RV rv_wire, rv_ref;

	memset(modulus, 0x61, sizeof(modulus));
	n = app_build(&wire);
	app_build(&ref);
	rv_wire = over_the_wire(&wire, n, &reply);
	rv_ref = fake_get(object, sizeof(object) / sizeof(object[0]), ref.t, n);
	CU_ASSERT_EQUAL(rv_wire, rv_ref);
	app_assert_same(&wire, &ref, n);
	/* spot checks of v2.40 §5.7 */
	CU_ASSERT_EQUAL(wire.cls, CKO_SECRET_KEY);
	CU_ASSERT_EQUAL(wire.t[1].ulValueLen, 12);                         /* size query */
	CU_ASSERT_EQUAL(wire.t[2].ulValueLen, CK_UNAVAILABLE_INFORMATION); /* too small */
	CU_ASSERT_EQUAL(wire.id[0], 0xcc);                                 /* untouched */
	CU_ASSERT_EQUAL(wire.t[3].ulValueLen, CK_UNAVAILABLE_INFORMATION); /* invalid */
	CU_ASSERT_EQUAL(wire.t[4].ulValueLen, CK_UNAVAILABLE_INFORMATION); /* sensitive */
	CU_ASSERT_EQUAL(wire.value[0], 0xcc);
	CU_ASSERT_EQUAL(wire.t[7].ulValueLen, sizeof(allowed));
	CU_ASSERT_EQUAL(wire.t[8].ulValueLen, 2 * sizeof(CK_ATTRIBUTE));
	CU_ASSERT_EQUAL(wire.nested[0].type, CKA_CLASS);
	CU_ASSERT_EQUAL(wire.nested[0].ulValueLen, sizeof(CK_ULONG));
	CU_ASSERT_EQUAL(wire.nested[1].type, CKA_KEY_TYPE);
	CU_ASSERT_EQUAL(wire.nested_cls, CKK_AES);
	CU_ASSERT_EQUAL(wire.nested[2].type, 0);                         /* untouched */
	CU_ASSERT_EQUAL(wire.t[9].ulValueLen, 2 * sizeof(CK_ATTRIBUTE)); /* size query */
	CU_ASSERT_EQUAL(wire.t[10].ulValueLen, sizeof(modulus));
	proto_buf_free(&reply);
}

static int
dec_attrquery(struct proto_cur *c, struct proto_arena *a, void *ctx)
{
	CK_ATTRIBUTE *t;
	CK_ULONG n;

	(void)ctx;
	return proto_get_attrquery(c, a, &t, &n);
}

static int
dec_attrreply(struct proto_cur *c, struct proto_arena *a, void *ctx)
{
	struct app p, before;
	CK_ULONG n = app_build(&p);
	int r;

	(void)a;
	(void)ctx;
	before = p;
	r = proto_get_attrreply(c, p.t, n);
	if (r != 0) {
		/* a reply that fails leaves the application's template as it was */
		CU_ASSERT_EQUAL(memcmp(&p, &before, sizeof(p)), 0);
	}
	return r;
}

static void
test_getattr_truncation_and_flips(void)
{
	struct app p;
	struct proto_buf q, reply;
	CK_ULONG n;

	n = app_build(&p);
	proto_buf_init(&q);
	CU_ASSERT_EQUAL(proto_put_attrquery(&q, p.t, n), 0);
	pt_truncations(q.data, q.len, dec_attrquery, NULL);
	pt_bitflips(q.data, q.len, dec_attrquery, NULL);
	proto_buf_free(&q);
	over_the_wire(&p, n, &reply);
	pt_truncations(reply.data, reply.len, dec_attrreply, NULL);
	pt_bitflips(reply.data, reply.len, dec_attrreply, NULL);
	proto_buf_free(&reply);
}

static void
test_attrreply_over_capacity(void)
{
	CK_BYTE lbl[4];
	CK_ATTRIBUTE server[] = {{CKA_LABEL, "payments-kek", 12}};
	CK_ATTRIBUTE app[] = {{CKA_LABEL, lbl, sizeof(lbl)}};
	struct proto_buf b;
	struct proto_cur c;

	memset(lbl, 0xcc, sizeof(lbl));
	proto_buf_init(&b);
	CU_ASSERT_EQUAL(proto_put_attrreply(&b, server, 1), 0);
	proto_cur_init(&c, b.data, b.len);
	CU_ASSERT_EQUAL(proto_get_attrreply(&c, app, 1), PROTO_ERR_SMALL);
	CU_ASSERT_EQUAL(app[0].ulValueLen, sizeof(lbl));
	CU_ASSERT_EQUAL(lbl[0], 0xcc);
	CU_ASSERT_EQUAL(c.len, b.len);
	/* a value for an attribute the app only asked the size of */
	app[0].pValue = NULL;
	CU_ASSERT_EQUAL(proto_get_attrreply(&c, app, 1), PROTO_ERR_SMALL);
	proto_buf_free(&b);
}

static void
test_attrreply_count_mismatch(void)
{
	CK_ATTRIBUTE server[] = {{CKA_LABEL, NULL, 12}};
	CK_ATTRIBUTE app[2] = {{CKA_LABEL, NULL, 0}, {CKA_ID, NULL, 0}};
	struct proto_buf b;
	struct proto_cur c;

	proto_buf_init(&b);
	CU_ASSERT_EQUAL(proto_put_attrreply(&b, server, 1), 0);
	proto_cur_init(&c, b.data, b.len);
	CU_ASSERT_EQUAL(proto_get_attrreply(&c, app, 2), PROTO_ERR_BAD_VALUE);
	CU_ASSERT_EQUAL(proto_get_attrreply(&c, app, 1), 0);
	CU_ASSERT_EQUAL(app[0].ulValueLen, 12);
	proto_buf_free(&b);
}

static void
test_attrreply_nested_over_capacity(void)
{
	CK_ATTRIBUTE nested_app[1] = {{0, NULL, 0}};
	CK_ATTRIBUTE server[] = {{CKA_WRAP_TEMPLATE, wrap_tmpl, sizeof(wrap_tmpl)}};
	CK_ATTRIBUTE app[] = {{CKA_WRAP_TEMPLATE, nested_app, sizeof(nested_app)}};
	struct proto_buf b;
	struct proto_cur c;

	proto_buf_init(&b);
	CU_ASSERT_EQUAL(proto_put_attrreply(&b, server, 1), 0);
	proto_cur_init(&c, b.data, b.len);
	/* two nested attributes for a one-element array */
	CU_ASSERT_EQUAL(proto_get_attrreply(&c, app, 1), PROTO_ERR_SMALL);
	CU_ASSERT_EQUAL(nested_app[0].type, 0);
	proto_buf_free(&b);
}

static int
decode_query_raw(const struct proto_buf *b, CK_ATTRIBUTE **t, struct proto_arena *a)
{
	struct proto_cur c;
	CK_ULONG n;
	int r;

	proto_cur_init(&c, b->data, b->len);
	r = proto_get_attrquery(&c, a, t, &n);
	if (r != 0) {
		CU_ASSERT_EQUAL(c.len, b->len);
	}
	return r;
}

static void
test_attrquery_refusals(void)
{
	struct proto_arena *a = proto_arena_new();
	struct proto_buf b;
	CK_ATTRIBUTE *t;

	/* no buffer but a capacity */
	proto_buf_init(&b);
	CU_ASSERT_EQUAL(proto_put_u32(&b, 1), 0);
	CU_ASSERT_EQUAL(proto_put_u64(&b, CKA_LABEL), 0);
	CU_ASSERT_EQUAL(proto_put_u8(&b, 0), 0);
	CU_ASSERT_EQUAL(proto_put_u64(&b, 5), 0);
	CU_ASSERT_EQUAL(decode_query_raw(&b, &t, a), PROTO_ERR_BAD_VALUE);
	/* has_buffer 2 */
	b.data[12] = 2;
	CU_ASSERT_EQUAL(decode_query_raw(&b, &t, a), PROTO_ERR_BAD_VALUE);
	proto_buf_reset(&b);
	/* a nested template with more elements than any template may have */
	CU_ASSERT_EQUAL(proto_put_u32(&b, 1), 0);
	CU_ASSERT_EQUAL(proto_put_u64(&b, CKA_WRAP_TEMPLATE), 0);
	CU_ASSERT_EQUAL(proto_put_u8(&b, 1), 0);
	CU_ASSERT_EQUAL(proto_put_u64(&b, PROTO_MAX_ATTRS + 1), 0);
	CU_ASSERT_EQUAL(decode_query_raw(&b, &t, a), PROTO_ERR_TOO_LARGE);
	proto_buf_reset(&b);
	/* too many attributes */
	CU_ASSERT_EQUAL(proto_put_u32(&b, PROTO_MAX_ATTRS + 1), 0);
	CU_ASSERT_EQUAL(decode_query_raw(&b, &t, a), PROTO_ERR_TOO_LARGE);
	proto_buf_reset(&b);
	/* count over the remaining bytes */
	CU_ASSERT_EQUAL(proto_put_u32(&b, 100), 0);
	CU_ASSERT_EQUAL(proto_put_u64(&b, CKA_LABEL), 0);
	CU_ASSERT_EQUAL(decode_query_raw(&b, &t, a), PROTO_ERR_TRUNCATED);
	proto_buf_free(&b);
	proto_arena_free(a);
}

static void
test_attrquery_depth(void)
{
	struct proto_arena *a = proto_arena_new();
	struct proto_buf b;
	CK_ATTRIBUTE *t;
	int i;

	proto_buf_init(&b);
	CU_ASSERT_EQUAL(proto_put_u32(&b, 1), 0);
	for (i = 0; i < 3; i++) {
		CU_ASSERT_EQUAL(proto_put_u64(&b, CKA_WRAP_TEMPLATE), 0);
		CU_ASSERT_EQUAL(proto_put_u8(&b, 1), 0);
		CU_ASSERT_EQUAL(proto_put_u64(&b, 1), 0);
	}
	CU_ASSERT_EQUAL(proto_put_u64(&b, CKA_LABEL), 0);
	CU_ASSERT_EQUAL(proto_put_u8(&b, 0), 0);
	CU_ASSERT_EQUAL(proto_put_u64(&b, 0), 0);
	CU_ASSERT_EQUAL(decode_query_raw(&b, &t, a), PROTO_ERR_DEPTH);
	proto_buf_free(&b);
	proto_arena_free(a);
}

static void
test_attrquery_capacity_clamped(void)
{
	struct proto_arena *a = proto_arena_new();
	struct proto_buf b;
	CK_ATTRIBUTE *t;

	proto_buf_init(&b);
	CU_ASSERT_EQUAL(proto_put_u32(&b, 2), 0);
	CU_ASSERT_EQUAL(proto_put_u64(&b, CKA_VALUE), 0);
	CU_ASSERT_EQUAL(proto_put_u8(&b, 1), 0);
	CU_ASSERT_EQUAL(proto_put_u64(&b, UINT64_MAX - 3), 0);
	CU_ASSERT_EQUAL(proto_put_u64(&b, CKA_CLASS), 0);
	CU_ASSERT_EQUAL(proto_put_u8(&b, 1), 0);
	CU_ASSERT_EQUAL(proto_put_u64(&b, 1), 0);
	CU_ASSERT_EQUAL_FATAL(decode_query_raw(&b, &t, a), 0);
	CU_ASSERT_EQUAL(t[0].ulValueLen, PROTO_MAX_FRAME_CAP);
	CU_ASSERT_PTR_NOT_NULL(t[0].pValue);
	/* capacities of ulong attributes count ulongs */
	CU_ASSERT_EQUAL(t[1].ulValueLen, sizeof(CK_ULONG));
	proto_buf_free(&b);
	proto_arena_free(a);
}

static void
test_attrreply_unit_conversion(void)
{
	/* A size query on a ULONG or TEMPLATE attribute answers in elements on the wire and
	 * in native bytes to the application. */
	CK_ATTRIBUTE server[] = {{CKA_CLASS, NULL, sizeof(CK_ULONG)},
	                         {CKA_WRAP_TEMPLATE, NULL, 3 * sizeof(CK_ATTRIBUTE)},
	                         {CKA_ALLOWED_MECHANISMS, NULL, 5 * sizeof(CK_MECHANISM_TYPE)}};
	CK_ATTRIBUTE app[3] = {{CKA_CLASS, NULL, 0},
	                       {CKA_WRAP_TEMPLATE, NULL, 0},
	                       {CKA_ALLOWED_MECHANISMS, NULL, 0}};
	struct proto_buf b;
	struct proto_cur c;

	proto_buf_init(&b);
	CU_ASSERT_EQUAL(proto_put_attrreply(&b, server, 3), 0);
	/* u32 count | u64 1 | NONE | u64 3 | NONE | u64 5 | NONE */
	CU_ASSERT_EQUAL(b.len, 4 + 3 * 9);
	CU_ASSERT_EQUAL(b.data[4 + 7], 1);
	CU_ASSERT_EQUAL(b.data[4 + 9 + 7], 3);
	CU_ASSERT_EQUAL(b.data[4 + 18 + 7], 5);
	proto_cur_init(&c, b.data, b.len);
	CU_ASSERT_EQUAL(proto_get_attrreply(&c, app, 3), 0);
	CU_ASSERT_EQUAL(app[0].ulValueLen, sizeof(CK_ULONG));
	CU_ASSERT_EQUAL(app[1].ulValueLen, 3 * sizeof(CK_ATTRIBUTE));
	CU_ASSERT_EQUAL(app[2].ulValueLen, 5 * sizeof(CK_MECHANISM_TYPE));
	proto_buf_free(&b);
}

static void
test_attrreply_length_overflow(void)
{
	CK_ATTRIBUTE app[1] = {{CKA_WRAP_TEMPLATE, NULL, 0}};
	struct proto_buf b;
	struct proto_cur c;

	proto_buf_init(&b);
	CU_ASSERT_EQUAL(proto_put_u32(&b, 1), 0);
	CU_ASSERT_EQUAL(proto_put_u64(&b, UINT64_MAX / 2), 0);
	CU_ASSERT_EQUAL(proto_put_u8(&b, PROTO_AV_NONE), 0);
	proto_cur_init(&c, b.data, b.len);
	CU_ASSERT_EQUAL(proto_get_attrreply(&c, app, 1), PROTO_ERR_BAD_VALUE);
	CU_ASSERT_EQUAL(app[0].ulValueLen, 0);
	proto_buf_free(&b);
}

static const struct test_case cases[] = {
        {"registry kinds and names", test_registry},
        {"template round-trip of every kind, truncation, flips", test_template_every_kind},
        {"template byte layout", test_template_byte_layout},
        {"template: wrong-length values travel as bytes", test_template_wrong_length_as_bytes},
        {"refuse: ragged nested template", test_template_ragged_nested},
        {"refuse: encoder depth (and self-reference)", test_template_depth_encoder},
        {"refuse: decoder depth", test_template_depth_decoder},
        {"refuse: too many attributes", test_template_too_many},
        {"refuse: count over remaining bytes", test_template_count_over_remaining},
        {"refuse: unknown kind bytes", test_template_bad_kind},
        {"refuse: kind not allowed for the attribute", test_template_kind_mismatch},
        {"refuse: mechanism list too long / truncated", test_template_mechs_too_many},
        {"bool values are a raw byte", test_template_bool_raw_byte},
        {"GetAttributeValue over the wire mirrors the token", test_getattr_mirrors_token},
        {"GetAttributeValue truncation and flips", test_getattr_truncation_and_flips},
        {"refuse: reply value over the app's buffer", test_attrreply_over_capacity},
        {"refuse: reply count mismatch", test_attrreply_count_mismatch},
        {"refuse: nested reply over the app's array", test_attrreply_nested_over_capacity},
        {"refuse: bad queries", test_attrquery_refusals},
        {"refuse: query depth", test_attrquery_depth},
        {"query capacity clamped and in units", test_attrquery_capacity_clamped},
        {"reply lengths in units", test_attrreply_unit_conversion},
        {"refuse: reply length overflow", test_attrreply_length_overflow},
        {NULL, NULL},
};

void
test_register(void)
{
	test_suite_add("proto/attr", NULL, NULL, cases);
}
