/* tests/proto/test_info.c — input bytes, output buffers, ulong arrays and the info
 * structures (proto/info.c). */
#include "tests/proto/proto_test.h"

static void
fill_pattern(void *p, size_t n, uint8_t seed)
{
	uint8_t *d = p;
	size_t i;

	for (i = 0; i < n; i++) {
		d[i] = (uint8_t)(seed + i * 7);
	}
}

/* ---- info structures ----------------------------------------------------------------- */

#define INFO_CASE(T, put, get, fill)                                                               \
	static int dec_##get(struct proto_cur *c, struct proto_arena *a, void *ctx)                \
	{                                                                                          \
		T v;                                                                               \
		(void)a;                                                                           \
		(void)ctx;                                                                         \
		return get(c, &v);                                                                 \
	}                                                                                          \
	static void test_##get(void)                                                               \
	{                                                                                          \
		struct proto_buf b;                                                                \
		struct proto_cur c;                                                                \
		T v, g;                                                                            \
		memset(&v, 0, sizeof(v));                                                          \
		fill(&v);                                                                          \
		proto_buf_init(&b);                                                                \
		CU_ASSERT_EQUAL(put(&b, &v), 0);                                                   \
		proto_cur_init(&c, b.data, b.len);                                                 \
		CU_ASSERT_EQUAL(get(&c, &g), 0);                                                   \
		CU_ASSERT_EQUAL(proto_cur_end(&c), 0);                                             \
		CU_ASSERT_EQUAL(memcmp(&v, &g, sizeof(v)), 0);                                     \
		pt_truncations(b.data, b.len, dec_##get, NULL);                                    \
		pt_bitflips(b.data, b.len, dec_##get, NULL);                                       \
		proto_buf_free(&b);                                                                \
	}

static void
fill_info(CK_INFO *v)
{
	v->cryptokiVersion.major = 2;
	v->cryptokiVersion.minor = 40;
	fill_pattern(v->manufacturerID, sizeof(v->manufacturerID), 1);
	v->flags = 0;
	fill_pattern(v->libraryDescription, sizeof(v->libraryDescription), 2);
	v->libraryVersion.major = 0;
	v->libraryVersion.minor = 1;
}

static void
fill_slot(CK_SLOT_INFO *v)
{
	fill_pattern(v->slotDescription, sizeof(v->slotDescription), 3);
	fill_pattern(v->manufacturerID, sizeof(v->manufacturerID), 4);
	v->flags = CKF_TOKEN_PRESENT | CKF_REMOVABLE_DEVICE | CKF_HW_SLOT;
	v->hardwareVersion.major = 1;
	v->firmwareVersion.minor = 9;
}

static void
fill_token(CK_TOKEN_INFO *v)
{
	fill_pattern(v->label, sizeof(v->label), 5);
	fill_pattern(v->manufacturerID, sizeof(v->manufacturerID), 6);
	fill_pattern(v->model, sizeof(v->model), 7);
	fill_pattern(v->serialNumber, sizeof(v->serialNumber), 8);
	v->flags = CKF_RNG | CKF_LOGIN_REQUIRED | CKF_USER_PIN_INITIALIZED | CKF_TOKEN_INITIALIZED;
	v->ulMaxSessionCount = CK_EFFECTIVELY_INFINITE;
	v->ulSessionCount = CK_UNAVAILABLE_INFORMATION;
	v->ulMaxRwSessionCount = 100;
	v->ulRwSessionCount = 3;
	v->ulMaxPinLen = 255;
	v->ulMinPinLen = 4;
	v->ulTotalPublicMemory = CK_UNAVAILABLE_INFORMATION;
	v->ulFreePublicMemory = 1;
	v->ulTotalPrivateMemory = 2;
	v->ulFreePrivateMemory = CK_UNAVAILABLE_INFORMATION;
	v->hardwareVersion.major = 3;
	v->firmwareVersion.minor = 4;
	fill_pattern(v->utcTime, sizeof(v->utcTime), 9);
}

static void
fill_session(CK_SESSION_INFO *v)
{
	v->slotID = 7;
	v->state = CKS_RW_USER_FUNCTIONS;
	v->flags = CKF_RW_SESSION | CKF_SERIAL_SESSION;
	v->ulDeviceError = CK_UNAVAILABLE_INFORMATION;
}

static void
fill_mech(CK_MECHANISM_INFO *v)
{
	v->ulMinKeySize = 2048;
	v->ulMaxKeySize = 8192;
	v->flags = CKF_SIGN | CKF_VERIFY | CKF_HW;
}

INFO_CASE(CK_INFO, proto_put_info, proto_get_info, fill_info)
INFO_CASE(CK_SLOT_INFO, proto_put_slot_info, proto_get_slot_info, fill_slot)
INFO_CASE(CK_TOKEN_INFO, proto_put_token_info, proto_get_token_info, fill_token)
INFO_CASE(CK_SESSION_INFO, proto_put_session_info, proto_get_session_info, fill_session)
INFO_CASE(CK_MECHANISM_INFO, proto_put_mech_info, proto_get_mech_info, fill_mech)

static void
test_info_wire_size(void)
{
	CK_TOKEN_INFO t;
	CK_INFO i;
	struct proto_buf b;

	memset(&t, 0, sizeof(t));
	memset(&i, 0, sizeof(i));
	proto_buf_init(&b);
	CU_ASSERT_EQUAL(proto_put_info(&b, &i), 0);
	CU_ASSERT_EQUAL(b.len, 2 + 32 + 8 + 32 + 2);
	proto_buf_reset(&b);
	CU_ASSERT_EQUAL(proto_put_token_info(&b, &t), 0);
	CU_ASSERT_EQUAL(b.len, 32 + 32 + 16 + 16 + 8 * 11 + 2 + 2 + 16);
	proto_buf_free(&b);
}

/* ---- input bytes --------------------------------------------------------------------- */

static int
dec_inbytes(struct proto_cur *c, struct proto_arena *a, void *ctx)
{
	const CK_BYTE *p;
	CK_ULONG len;

	(void)a;
	(void)ctx;
	return proto_get_inbytes(c, &p, &len, 1024);
}

static void
test_inbytes_null_empty_data(void)
{
	static const CK_BYTE data[] = "secret-pin";
	static const CK_BYTE empty[1];
	struct proto_buf b;
	struct proto_cur c;
	const CK_BYTE *p;
	CK_ULONG len;

	proto_buf_init(&b);
	CU_ASSERT_EQUAL(proto_put_inbytes(&b, NULL, 0), 0);
	CU_ASSERT_EQUAL(proto_put_inbytes(&b, empty, 0), 0);
	CU_ASSERT_EQUAL(proto_put_inbytes(&b, data, 10), 0);
	CU_ASSERT_EQUAL(b.len, 1 + 5 + 5 + 10);
	proto_cur_init(&c, b.data, b.len);
	CU_ASSERT_EQUAL(proto_get_inbytes(&c, &p, &len, 64), 0);
	CU_ASSERT_PTR_NULL(p);
	CU_ASSERT_EQUAL(len, 0);
	CU_ASSERT_EQUAL(proto_get_inbytes(&c, &p, &len, 64), 0);
	CU_ASSERT_PTR_NOT_NULL(p);
	CU_ASSERT_EQUAL(len, 0);
	CU_ASSERT_EQUAL(proto_get_inbytes(&c, &p, &len, 64), 0);
	CU_ASSERT_EQUAL(len, 10);
	CU_ASSERT_EQUAL(memcmp(p, data, 10), 0);
	CU_ASSERT_EQUAL(proto_cur_end(&c), 0);
	proto_buf_reset(&b);
	CU_ASSERT_EQUAL(proto_put_inbytes(&b, data, 10), 0);
	pt_truncations(b.data, b.len, dec_inbytes, NULL);
	pt_bitflips(b.data, b.len, dec_inbytes, NULL);
	proto_buf_free(&b);
}

static void
test_inbytes_refusals(void)
{
	static const uint8_t bad_flag[] = {2};
	struct proto_buf b;
	struct proto_cur c;
	const CK_BYTE *p;
	CK_ULONG len;

	proto_cur_init(&c, bad_flag, sizeof(bad_flag));
	CU_ASSERT_EQUAL(proto_get_inbytes(&c, &p, &len, 64), PROTO_ERR_BAD_VALUE);
	proto_buf_init(&b);
	CU_ASSERT_EQUAL(proto_put_inbytes(&b, NULL, 3), PROTO_ERR_BAD_VALUE);
	proto_buf_free(&b);
	proto_buf_init(&b);
	CU_ASSERT_EQUAL(proto_put_inbytes(&b, (const CK_BYTE *)"abcdef", 6), 0);
	proto_cur_init(&c, b.data, b.len);
	CU_ASSERT_EQUAL(proto_get_inbytes(&c, &p, &len, 5), PROTO_ERR_TOO_LARGE);
	CU_ASSERT_EQUAL(c.len, b.len);
	proto_buf_free(&b);
}

/* ---- output buffers ------------------------------------------------------------------ */

static int
dec_outbuf_req(struct proto_cur *c, struct proto_arena *a, void *ctx)
{
	CK_ULONG cap;
	int has;

	(void)a;
	(void)ctx;
	return proto_get_outbuf_req(c, &has, &cap);
}

static void
test_outbuf_req_null_vs_zero(void)
{
	CK_BYTE buf[4];
	struct proto_buf b;
	struct proto_cur c;
	CK_ULONG cap;
	int has;

	proto_buf_init(&b);
	CU_ASSERT_EQUAL(proto_put_outbuf_req(&b, NULL, 0), 0);
	CU_ASSERT_EQUAL(proto_put_outbuf_req(&b, buf, 0), 0);
	CU_ASSERT_EQUAL(proto_put_outbuf_req(&b, buf, 256), 0);
	CU_ASSERT_EQUAL(b.len, 1 + 9 + 9);
	proto_cur_init(&c, b.data, b.len);
	CU_ASSERT_EQUAL(proto_get_outbuf_req(&c, &has, &cap), 0);
	CU_ASSERT_EQUAL(has, 0);
	CU_ASSERT_EQUAL(proto_get_outbuf_req(&c, &has, &cap), 0);
	CU_ASSERT_EQUAL(has, 1);
	CU_ASSERT_EQUAL(cap, 0);
	CU_ASSERT_EQUAL(proto_get_outbuf_req(&c, &has, &cap), 0);
	CU_ASSERT_EQUAL(has, 1);
	CU_ASSERT_EQUAL(cap, 256);
	CU_ASSERT_EQUAL(proto_cur_end(&c), 0);
	proto_buf_reset(&b);
	CU_ASSERT_EQUAL(proto_put_outbuf_req(&b, buf, 17), 0);
	pt_truncations(b.data, b.len, dec_outbuf_req, NULL);
	pt_bitflips(b.data, b.len, dec_outbuf_req, NULL);
	proto_buf_free(&b);
}

static void
test_outbuf_req_clamped(void)
{
	CK_BYTE buf[1];
	struct proto_buf b;
	struct proto_cur c;
	CK_ULONG cap;
	int has;

	proto_buf_init(&b);
	CU_ASSERT_EQUAL(proto_put_outbuf_req(&b, buf, (CK_ULONG)1 << 40), 0);
	proto_cur_init(&c, b.data, b.len);
	CU_ASSERT_EQUAL(proto_get_outbuf_req(&c, &has, &cap), 0);
	CU_ASSERT_EQUAL(cap, PROTO_MAX_FRAME_CAP);
	proto_buf_free(&b);
}

static int
dec_outbuf_reply(struct proto_cur *c, struct proto_arena *a, void *ctx)
{
	CK_BYTE buf[64];
	CK_ULONG len = sizeof(buf);

	(void)a;
	(void)ctx;
	return proto_get_outbuf_reply(c, buf, &len);
}

static void
test_outbuf_reply_data_and_length(void)
{
	CK_BYTE out[16];
	struct proto_buf b;
	struct proto_cur c;
	CK_ULONG len;

	proto_buf_init(&b);
	CU_ASSERT_EQUAL(proto_put_outbuf_reply(&b, (const CK_BYTE *)"signature", 9), 0);
	CU_ASSERT_EQUAL(proto_put_outbuf_reply(&b, NULL, 512), 0);
	CU_ASSERT_EQUAL(proto_put_outbuf_reply(&b, out, 0), 0);
	proto_cur_init(&c, b.data, b.len);
	memset(out, 0, sizeof(out));
	len = sizeof(out);
	CU_ASSERT_EQUAL(proto_get_outbuf_reply(&c, out, &len), 0);
	CU_ASSERT_EQUAL(len, 9);
	CU_ASSERT_EQUAL(memcmp(out, "signature", 9), 0);
	/* Length only: a size query answered, or CKR_BUFFER_TOO_SMALL. */
	len = 3;
	CU_ASSERT_EQUAL(proto_get_outbuf_reply(&c, NULL, &len), 0);
	CU_ASSERT_EQUAL(len, 512);
	len = 0;
	CU_ASSERT_EQUAL(proto_get_outbuf_reply(&c, out, &len), 0);
	CU_ASSERT_EQUAL(len, 0);
	CU_ASSERT_EQUAL(proto_cur_end(&c), 0);
	proto_buf_reset(&b);
	CU_ASSERT_EQUAL(proto_put_outbuf_reply(&b, (const CK_BYTE *)"signature", 9), 0);
	pt_truncations(b.data, b.len, dec_outbuf_reply, NULL);
	pt_bitflips(b.data, b.len, dec_outbuf_reply, NULL);
	proto_buf_reset(&b);
	CU_ASSERT_EQUAL(proto_put_outbuf_reply(&b, NULL, CK_UNAVAILABLE_INFORMATION), 0);
	pt_truncations(b.data, b.len, dec_outbuf_reply, NULL);
	proto_buf_free(&b);
}

static void
test_outbuf_reply_over_capacity(void)
{
	CK_BYTE out[16];
	struct proto_buf b;
	struct proto_cur c;
	CK_ULONG len;

	proto_buf_init(&b);
	CU_ASSERT_EQUAL(proto_put_outbuf_reply(&b, (const CK_BYTE *)"0123456789", 10), 0);
	proto_cur_init(&c, b.data, b.len);
	memset(out, 0xee, sizeof(out));
	len = 9;
	CU_ASSERT_EQUAL(proto_get_outbuf_reply(&c, out, &len), PROTO_ERR_SMALL);
	CU_ASSERT_EQUAL(len, 9);
	CU_ASSERT_EQUAL(out[0], 0xee);
	CU_ASSERT_EQUAL(c.len, b.len);
	/* Data for a NULL buffer (a size query) is as bad. */
	len = 100;
	CU_ASSERT_EQUAL(proto_get_outbuf_reply(&c, NULL, &len), PROTO_ERR_SMALL);
	proto_buf_free(&b);
}

/* ---- ulong arrays -------------------------------------------------------------------- */

static int
dec_ulongs_reply(struct proto_cur *c, struct proto_arena *a, void *ctx)
{
	CK_ULONG buf[8], n = 8;

	(void)a;
	(void)ctx;
	return proto_get_ulongs_reply(c, buf, &n);
}

static int
dec_ulongs_req(struct proto_cur *c, struct proto_arena *a, void *ctx)
{
	CK_ULONG cap;
	int has;

	(void)a;
	(void)ctx;
	return proto_get_ulongs_req(c, &has, &cap);
}

static void
test_ulongs_roundtrip(void)
{
	static const CK_ULONG slots[] = {0, 1, 0xff, CK_UNAVAILABLE_INFORMATION};
	CK_ULONG out[8], n, cap;
	struct proto_buf b;
	struct proto_cur c;
	int has;

	proto_buf_init(&b);
	CU_ASSERT_EQUAL(proto_put_ulongs_req(&b, NULL, 0), 0);
	CU_ASSERT_EQUAL(proto_put_ulongs_req(&b, out, 0), 0);
	CU_ASSERT_EQUAL(proto_put_ulongs_req(&b, out, 8), 0);
	proto_cur_init(&c, b.data, b.len);
	CU_ASSERT_EQUAL(proto_get_ulongs_req(&c, &has, &cap), 0);
	CU_ASSERT_EQUAL(has, 0);
	CU_ASSERT_EQUAL(proto_get_ulongs_req(&c, &has, &cap), 0);
	CU_ASSERT(has == 1 && cap == 0);
	CU_ASSERT_EQUAL(proto_get_ulongs_req(&c, &has, &cap), 0);
	CU_ASSERT(has == 1 && cap == 8);
	CU_ASSERT_EQUAL(proto_cur_end(&c), 0);
	proto_buf_reset(&b);
	CU_ASSERT_EQUAL(proto_put_ulongs_req(&b, out, 8), 0);
	pt_truncations(b.data, b.len, dec_ulongs_req, NULL);
	pt_bitflips(b.data, b.len, dec_ulongs_req, NULL);

	proto_buf_reset(&b);
	CU_ASSERT_EQUAL(proto_put_ulongs_reply(&b, slots, 4), 0);
	CU_ASSERT_EQUAL(proto_put_ulongs_reply(&b, NULL, 4), 0);
	proto_cur_init(&c, b.data, b.len);
	n = 8;
	CU_ASSERT_EQUAL(proto_get_ulongs_reply(&c, out, &n), 0);
	CU_ASSERT_EQUAL(n, 4);
	CU_ASSERT_EQUAL(memcmp(out, slots, sizeof(slots)), 0);
	n = 0;
	CU_ASSERT_EQUAL(proto_get_ulongs_reply(&c, NULL, &n), 0);
	CU_ASSERT_EQUAL(n, 4);
	CU_ASSERT_EQUAL(proto_cur_end(&c), 0);
	proto_buf_reset(&b);
	CU_ASSERT_EQUAL(proto_put_ulongs_reply(&b, slots, 4), 0);
	pt_truncations(b.data, b.len, dec_ulongs_reply, NULL);
	pt_bitflips(b.data, b.len, dec_ulongs_reply, NULL);
	proto_buf_free(&b);
}

static void
test_ulongs_reply_over_capacity(void)
{
	static const CK_ULONG slots[] = {1, 2, 3};
	CK_ULONG out[3] = {9, 9, 9}, n;
	struct proto_buf b;
	struct proto_cur c;

	proto_buf_init(&b);
	CU_ASSERT_EQUAL(proto_put_ulongs_reply(&b, slots, 3), 0);
	proto_cur_init(&c, b.data, b.len);
	n = 2;
	CU_ASSERT_EQUAL(proto_get_ulongs_reply(&c, out, &n), PROTO_ERR_SMALL);
	CU_ASSERT_EQUAL(n, 2);
	CU_ASSERT_EQUAL(out[0], 9);
	n = 3;
	CU_ASSERT_EQUAL(proto_get_ulongs_reply(&c, NULL, &n), PROTO_ERR_SMALL);
	CU_ASSERT_EQUAL(c.len, b.len);
	proto_buf_free(&b);
}

static void
test_ulongs_reply_count_too_large(void)
{
	CK_ULONG out[4], n = 4;
	struct proto_buf b;
	struct proto_cur c;

	proto_buf_init(&b);
	CU_ASSERT_EQUAL(proto_put_u64(&b, PROTO_MAX_ULONGS + 1), 0);
	CU_ASSERT_EQUAL(proto_put_u8(&b, 1), 0);
	proto_cur_init(&c, b.data, b.len);
	CU_ASSERT_EQUAL(proto_get_ulongs_reply(&c, out, &n), PROTO_ERR_TOO_LARGE);
	proto_buf_reset(&b);
	/* An overflow-sized count with the list flag. */
	CU_ASSERT_EQUAL(proto_put_u64(&b, UINT64_MAX - 1), 0);
	CU_ASSERT_EQUAL(proto_put_u8(&b, 1), 0);
	proto_cur_init(&c, b.data, b.len);
	CU_ASSERT_EQUAL(proto_get_ulongs_reply(&c, out, &n), PROTO_ERR_TOO_LARGE);
	proto_buf_reset(&b);
	/* Within the cap but more than the bytes present. */
	CU_ASSERT_EQUAL(proto_put_u64(&b, 3), 0);
	CU_ASSERT_EQUAL(proto_put_u8(&b, 1), 0);
	CU_ASSERT_EQUAL(proto_put_u64(&b, 1), 0);
	proto_cur_init(&c, b.data, b.len);
	CU_ASSERT_EQUAL(proto_get_ulongs_reply(&c, out, &n), PROTO_ERR_TRUNCATED);
	proto_buf_free(&b);
	proto_buf_init(&b);
	{
		CK_ULONG one = 1;

		CU_ASSERT_EQUAL(proto_put_ulongs_reply(&b, &one, PROTO_MAX_ULONGS + 1),
		                PROTO_ERR_TOO_LARGE);
	}
	proto_buf_free(&b);
}

static void
test_bad_flag_bytes(void)
{
	static const uint8_t two[] = {2, 0, 0, 0, 0, 0, 0, 0, 0};
	struct proto_cur c;
	CK_ULONG cap, n = 4, out[4];
	CK_BYTE buf[4];
	int has;

	proto_cur_init(&c, two, sizeof(two));
	CU_ASSERT_EQUAL(proto_get_outbuf_req(&c, &has, &cap), PROTO_ERR_BAD_VALUE);
	CU_ASSERT_EQUAL(proto_get_ulongs_req(&c, &has, &cap), PROTO_ERR_BAD_VALUE);
	CU_ASSERT_EQUAL(proto_get_outbuf_reply(&c, buf, &cap), PROTO_ERR_BAD_VALUE);
	CU_ASSERT_EQUAL(c.len, sizeof(two));
	{
		static const uint8_t r[] = {0, 0, 0, 0, 0, 0, 0, 0, 7};

		proto_cur_init(&c, r, sizeof(r));
		CU_ASSERT_EQUAL(proto_get_ulongs_reply(&c, out, &n), PROTO_ERR_BAD_VALUE);
	}
}

static const struct test_case cases[] = {
        {"CK_INFO round-trip, truncation, flips", test_proto_get_info},
        {"CK_SLOT_INFO round-trip, truncation, flips", test_proto_get_slot_info},
        {"CK_TOKEN_INFO round-trip (unavailable fields), truncation, flips",
         test_proto_get_token_info},
        {"CK_SESSION_INFO round-trip, truncation, flips", test_proto_get_session_info},
        {"CK_MECHANISM_INFO round-trip, truncation, flips", test_proto_get_mech_info},
        {"info wire sizes", test_info_wire_size},
        {"input bytes: NULL, empty and data are distinct", test_inbytes_null_empty_data},
        {"refuse: input bytes (flag, NULL with length, cap)", test_inbytes_refusals},
        {"output buffer request: NULL vs zero capacity", test_outbuf_req_null_vs_zero},
        {"output buffer request: capacity clamped", test_outbuf_req_clamped},
        {"output buffer reply: data, length only", test_outbuf_reply_data_and_length},
        {"refuse: output reply over the caller's capacity", test_outbuf_reply_over_capacity},
        {"ulong arrays round-trip", test_ulongs_roundtrip},
        {"refuse: ulong reply over the caller's capacity", test_ulongs_reply_over_capacity},
        {"refuse: ulong reply count too large / overflow / truncated",
         test_ulongs_reply_count_too_large},
        {"refuse: flag bytes other than 0 and 1", test_bad_flag_bytes},
        {NULL, NULL},
};

void
test_register(void)
{
	test_suite_add("proto/info", NULL, NULL, cases);
}
