/* tests/proto/test_buf.c — the writer, the reader cursor and proto_strerror (proto/buf.c). */
#include "tests/proto/proto_test.h"

#include <stdint.h>

static void
test_ints_big_endian(void)
{
	static const uint8_t want[] = {0xab, 0x12, 0x34, 0xde, 0xad, 0xbe, 0xef, 0x01,
	                               0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08};
	struct proto_buf b;
	struct proto_cur c;
	uint8_t u8;
	uint16_t u16;
	uint32_t u32;
	uint64_t u64;

	proto_buf_init(&b);
	CU_ASSERT_EQUAL(proto_put_u8(&b, 0xab), 0);
	CU_ASSERT_EQUAL(proto_put_u16(&b, 0x1234), 0);
	CU_ASSERT_EQUAL(proto_put_u32(&b, 0xdeadbeef), 0);
	CU_ASSERT_EQUAL(proto_put_u64(&b, 0x0102030405060708ull), 0);
	CU_ASSERT_EQUAL(b.len, sizeof(want));
	CU_ASSERT_EQUAL(memcmp(b.data, want, sizeof(want)), 0);
	proto_cur_init(&c, b.data, b.len);
	CU_ASSERT_EQUAL(proto_get_u8(&c, &u8), 0);
	CU_ASSERT_EQUAL(proto_get_u16(&c, &u16), 0);
	CU_ASSERT_EQUAL(proto_get_u32(&c, &u32), 0);
	CU_ASSERT_EQUAL(proto_get_u64(&c, &u64), 0);
	CU_ASSERT_EQUAL(u8, 0xab);
	CU_ASSERT_EQUAL(u16, 0x1234);
	CU_ASSERT_EQUAL(u32, 0xdeadbeef);
	CU_ASSERT_EQUAL(u64, 0x0102030405060708ull);
	CU_ASSERT_EQUAL(proto_cur_end(&c), 0);
	proto_buf_free(&b);
}

static void
test_ulong_unavailable(void)
{
	struct proto_buf b;
	struct proto_cur c;
	CK_ULONG v;
	uint64_t u;

	proto_buf_init(&b);
	CU_ASSERT_EQUAL(proto_put_ulong(&b, CK_UNAVAILABLE_INFORMATION), 0);
	CU_ASSERT_EQUAL(proto_put_ulong(&b, 42), 0);
	CU_ASSERT_EQUAL(proto_put_u64(&b, UINT64_MAX), 0);
	proto_cur_init(&c, b.data, b.len);
	CU_ASSERT_EQUAL(proto_get_u64(&c, &u), 0);
	CU_ASSERT_EQUAL(u, UINT64_MAX);
	CU_ASSERT_EQUAL(proto_get_ulong(&c, &v), 0);
	CU_ASSERT_EQUAL(v, 42);
	CU_ASSERT_EQUAL(proto_get_ulong(&c, &v), 0);
	CU_ASSERT_EQUAL(v, CK_UNAVAILABLE_INFORMATION);
	proto_buf_free(&b);
}

static void
test_truncated_leaves_cursor(void)
{
	static const uint8_t d[3] = {1, 2, 3};
	struct proto_cur c;
	uint32_t u32 = 7;
	uint64_t u64 = 7;
	CK_ULONG ul = 7;

	proto_cur_init(&c, d, sizeof(d));
	CU_ASSERT_EQUAL(proto_get_u32(&c, &u32), PROTO_ERR_TRUNCATED);
	CU_ASSERT_EQUAL(u32, 0);
	CU_ASSERT_EQUAL(proto_get_u64(&c, &u64), PROTO_ERR_TRUNCATED);
	CU_ASSERT_EQUAL(u64, 0);
	CU_ASSERT_EQUAL(proto_get_ulong(&c, &ul), PROTO_ERR_TRUNCATED);
	CU_ASSERT_EQUAL(ul, 0);
	CU_ASSERT_PTR_EQUAL(c.p, d);
	CU_ASSERT_EQUAL(c.len, 3);
}

static void
test_bytes_roundtrip(void)
{
	struct proto_buf b;
	struct proto_cur c;
	const uint8_t *p;
	size_t len;

	proto_buf_init(&b);
	CU_ASSERT_EQUAL(proto_put_bytes(&b, "hello", 5), 0);
	CU_ASSERT_EQUAL(proto_put_bytes(&b, NULL, 0), 0);
	CU_ASSERT_EQUAL(b.len, 4 + 5 + 4);
	proto_cur_init(&c, b.data, b.len);
	CU_ASSERT_EQUAL(proto_get_bytes_ref(&c, &p, &len, 5), 0);
	CU_ASSERT_EQUAL(len, 5);
	CU_ASSERT_EQUAL(memcmp(p, "hello", 5), 0);
	CU_ASSERT_EQUAL(proto_get_bytes_ref(&c, &p, &len, 0), 0);
	CU_ASSERT_EQUAL(len, 0);
	CU_ASSERT_EQUAL(proto_cur_end(&c), 0);
	proto_buf_free(&b);
}

static void
test_bytes_over_cap(void)
{
	struct proto_buf b;
	struct proto_cur c;
	const uint8_t *p;
	size_t len;

	proto_buf_init(&b);
	CU_ASSERT_EQUAL(proto_put_bytes(&b, "hello", 5), 0);
	proto_cur_init(&c, b.data, b.len);
	CU_ASSERT_EQUAL(proto_get_bytes_ref(&c, &p, &len, 4), PROTO_ERR_TOO_LARGE);
	CU_ASSERT_PTR_NULL(p);
	CU_ASSERT_EQUAL(c.len, b.len);
	proto_buf_free(&b);
}

static void
test_bytes_length_past_end(void)
{
	/* A length of 4 GiB - 1 with 2 bytes behind it: refused before anything is read. */
	static const uint8_t d[] = {0xff, 0xff, 0xff, 0xff, 'a', 'b'};
	struct proto_cur c;
	const uint8_t *p;
	size_t len;

	proto_cur_init(&c, d, sizeof(d));
	CU_ASSERT_EQUAL(proto_get_bytes_ref(&c, &p, &len, SIZE_MAX), PROTO_ERR_TRUNCATED);
	CU_ASSERT_EQUAL(proto_get_bytes_ref(&c, &p, &len, 100), PROTO_ERR_TOO_LARGE);
	CU_ASSERT_EQUAL(c.len, sizeof(d));
}

static void
test_string_roundtrip(void)
{
	struct proto_buf b;
	struct proto_cur c;
	char out[16];

	proto_buf_init(&b);
	CU_ASSERT_EQUAL(proto_put_string(&b, "gateway-1"), 0);
	CU_ASSERT_EQUAL(proto_put_string(&b, ""), 0);
	proto_cur_init(&c, b.data, b.len);
	CU_ASSERT_EQUAL(proto_get_string(&c, out, sizeof(out)), 0);
	CU_ASSERT_STRING_EQUAL(out, "gateway-1");
	CU_ASSERT_EQUAL(proto_get_string(&c, out, sizeof(out)), 0);
	CU_ASSERT_STRING_EQUAL(out, "");
	CU_ASSERT_EQUAL(proto_cur_end(&c), 0);
	proto_buf_free(&b);
}

static void
test_string_embedded_nul(void)
{
	static const uint8_t d[] = {0, 0, 0, 3, 'a', 0, 'b'};
	struct proto_cur c;
	char out[16];

	proto_cur_init(&c, d, sizeof(d));
	CU_ASSERT_EQUAL(proto_get_string(&c, out, sizeof(out)), PROTO_ERR_BAD_VALUE);
	CU_ASSERT_EQUAL(out[0], '\0');
	CU_ASSERT_EQUAL(c.len, sizeof(d));
}

static void
test_string_too_long_for_output(void)
{
	struct proto_buf b;
	struct proto_cur c;
	char out[5];

	proto_buf_init(&b);
	CU_ASSERT_EQUAL(proto_put_string(&b, "12345"), 0);
	proto_cur_init(&c, b.data, b.len);
	/* Five bytes need six with the NUL. */
	CU_ASSERT_EQUAL(proto_get_string(&c, out, sizeof(out)), PROTO_ERR_TOO_LARGE);
	CU_ASSERT_EQUAL(c.len, b.len);
	CU_ASSERT_EQUAL(proto_get_string(&c, out, 0), PROTO_ERR_TOO_LARGE);
	proto_buf_free(&b);
}

static void
test_string_over_max(void)
{
	struct proto_buf b;
	char *s = malloc(PROTO_MAX_STRING + 2);

	CU_ASSERT_FATAL(s != NULL);
	memset(s, 'x', PROTO_MAX_STRING + 1);
	s[PROTO_MAX_STRING + 1] = '\0';
	proto_buf_init(&b);
	CU_ASSERT_EQUAL(proto_put_string(&b, s), PROTO_ERR_TOO_LARGE);
	proto_buf_free(&b);
	s[PROTO_MAX_STRING] = '\0';
	proto_buf_init(&b);
	CU_ASSERT_EQUAL(proto_put_string(&b, s), 0);
	proto_buf_free(&b);
	free(s);
}

static void
test_trailing(void)
{
	static const uint8_t d[] = {1, 2};
	struct proto_cur c;
	uint8_t u;

	proto_cur_init(&c, d, sizeof(d));
	CU_ASSERT_EQUAL(proto_get_u8(&c, &u), 0);
	CU_ASSERT_EQUAL(proto_cur_end(&c), PROTO_ERR_TRAILING);
	CU_ASSERT_EQUAL(proto_get_u8(&c, &u), 0);
	CU_ASSERT_EQUAL(proto_cur_end(&c), 0);
}

static void
test_max_sticky(void)
{
	struct proto_buf b;

	proto_buf_init(&b);
	b.max = 8;
	CU_ASSERT_EQUAL(proto_put_u64(&b, 1), 0);
	CU_ASSERT_EQUAL(proto_put_u8(&b, 1), PROTO_ERR_TOO_LARGE);
	CU_ASSERT_EQUAL(b.failed, PROTO_ERR_TOO_LARGE);
	CU_ASSERT_EQUAL(b.len, 8);
	/* Sticky: even a put that would fit fails now. */
	proto_buf_reset(&b);
	CU_ASSERT_EQUAL(b.failed, 0);
	CU_ASSERT_EQUAL(b.len, 0);
	CU_ASSERT_EQUAL(proto_put_u32(&b, 1), 0);
	b.failed = PROTO_ERR_NOMEM;
	CU_ASSERT_EQUAL(proto_put_u8(&b, 1), PROTO_ERR_NOMEM);
	CU_ASSERT_EQUAL(b.len, 4);
	proto_buf_free(&b);
	CU_ASSERT_PTR_NULL(b.data);
}

static void
test_null_with_length(void)
{
	struct proto_buf b;

	proto_buf_init(&b);
	CU_ASSERT_EQUAL(proto_put_bytes(&b, NULL, 3), PROTO_ERR_BAD_VALUE);
	CU_ASSERT_EQUAL(b.failed, PROTO_ERR_BAD_VALUE);
	proto_buf_free(&b);
	proto_buf_init(&b);
	CU_ASSERT_EQUAL(proto_put_raw(&b, NULL, 1), PROTO_ERR_BAD_VALUE);
	proto_buf_free(&b);
}

static void
test_growth(void)
{
	struct proto_buf b;
	struct proto_cur c;
	uint32_t i, v;

	proto_buf_init(&b);
	for (i = 0; i < 100000; i++) {
		CU_ASSERT_EQUAL_FATAL(proto_put_u32(&b, i), 0);
	}
	proto_cur_init(&c, b.data, b.len);
	for (i = 0; i < 100000; i++) {
		CU_ASSERT_EQUAL_FATAL(proto_get_u32(&c, &v), 0);
		CU_ASSERT_EQUAL_FATAL(v, i);
	}
	proto_buf_free(&b);
}

static void
test_strerror(void)
{
	static const int codes[] = {PROTO_OK,           PROTO_ERR_TRUNCATED, PROTO_ERR_TOO_LARGE,
	                            PROTO_ERR_TRAILING, PROTO_ERR_BAD_MAGIC, PROTO_ERR_BAD_VERSION,
	                            PROTO_ERR_BAD_TYPE, PROTO_ERR_BAD_CALL,  PROTO_ERR_BAD_VALUE,
	                            PROTO_ERR_NOMEM,    PROTO_ERR_DEPTH,     PROTO_ERR_SMALL};
	size_t i;

	for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		CU_ASSERT_STRING_NOT_EQUAL(proto_strerror(codes[i]), "unknown error");
	}
	CU_ASSERT_STRING_EQUAL(proto_strerror(-1), "unknown error");
	CU_ASSERT_STRING_EQUAL(proto_strerror(12345), "unknown error");
}

static int
dec_string_u64(struct proto_cur *c, struct proto_arena *a, void *ctx)
{
	struct proto_cur t = *c;
	char s[32];
	uint64_t u;
	int r;

	(void)a;
	(void)ctx;
	if ((r = proto_get_string(&t, s, sizeof(s))) != 0 || (r = proto_get_u64(&t, &u)) != 0) {
		return r;
	}
	*c = t;
	return 0;
}

static void
test_truncation_and_flips(void)
{
	struct proto_buf b;

	proto_buf_init(&b);
	CU_ASSERT_EQUAL(proto_put_string(&b, "abc"), 0);
	CU_ASSERT_EQUAL(proto_put_u64(&b, 99), 0);
	pt_truncations(b.data, b.len, dec_string_u64, NULL);
	pt_bitflips(b.data, b.len, dec_string_u64, NULL);
	proto_buf_free(&b);
}

static const struct test_case cases[] = {
        {"ints are big-endian and round-trip", test_ints_big_endian},
        {"CK_UNAVAILABLE_INFORMATION <-> UINT64_MAX", test_ulong_unavailable},
        {"truncated read leaves cursor and zeroes output", test_truncated_leaves_cursor},
        {"bytes round-trip", test_bytes_roundtrip},
        {"refuse: bytes over cap", test_bytes_over_cap},
        {"refuse: bytes length past end", test_bytes_length_past_end},
        {"string round-trip", test_string_roundtrip},
        {"refuse: string with embedded NUL", test_string_embedded_nul},
        {"refuse: string longer than output", test_string_too_long_for_output},
        {"refuse: string over PROTO_MAX_STRING", test_string_over_max},
        {"refuse: trailing bytes", test_trailing},
        {"refuse: buffer max, failure is sticky", test_max_sticky},
        {"refuse: NULL with a length", test_null_with_length},
        {"buffer grows", test_growth},
        {"strerror", test_strerror},
        {"truncation at every byte and bit flips", test_truncation_and_flips},
        {NULL, NULL},
};

void
test_register(void)
{
	test_suite_add("proto/buf", NULL, NULL, cases);
}
