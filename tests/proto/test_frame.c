/* tests/proto/test_frame.c — frame header, handshake, gateway error, IPC (proto/frame.c). */
#include "tests/proto/proto_test.h"

#include <stdio.h>

static void
make_frame(struct proto_buf *b, uint8_t type, uint16_t call, uint32_t req_id, size_t body)
{
	size_t i;

	proto_buf_init(b);
	CU_ASSERT_EQUAL_FATAL(proto_frame_begin(b, (enum proto_msg)type, call, 0x0102, req_id), 0);
	for (i = 0; i < body; i++) {
		CU_ASSERT_EQUAL_FATAL(proto_put_u8(b, (uint8_t)i), 0);
	}
	CU_ASSERT_EQUAL_FATAL(proto_frame_finish(b), 0);
}

static void
test_header_roundtrip(void)
{
	static const uint8_t want[16] = {0, 0,  0, 15, 'H',  'G',  1,    3,
	                                 0, 44, 1, 2,  0xde, 0xad, 0xbe, 0xef};
	struct proto_buf b;
	struct proto_hdr h;

	make_frame(&b, PROTO_MSG_REQUEST, PROTO_CALL_C_Sign, 0xdeadbeef, 3);
	CU_ASSERT_EQUAL(b.len, 19);
	CU_ASSERT_EQUAL(memcmp(b.data, want, 16), 0);
	CU_ASSERT_EQUAL(proto_hdr_decode(b.data, b.len, 0, &h), 0);
	CU_ASSERT_EQUAL(h.body_len, 3);
	CU_ASSERT_EQUAL(h.version, PROTO_VERSION);
	CU_ASSERT_EQUAL(h.type, PROTO_MSG_REQUEST);
	CU_ASSERT_EQUAL(h.call, PROTO_CALL_C_Sign);
	CU_ASSERT_EQUAL(h.flags, 0x0102);
	CU_ASSERT_EQUAL(h.req_id, 0xdeadbeef);
	proto_buf_free(&b);
}

static void
test_header_every_type(void)
{
	struct proto_buf b;
	struct proto_hdr h;
	uint8_t t;

	for (t = PROTO_MSG_HELLO; t <= PROTO_MSG_PONG; t++) {
		make_frame(&b, t, 0, t, 0);
		CU_ASSERT_EQUAL(proto_hdr_decode(b.data, b.len, 0, &h), 0);
		CU_ASSERT_EQUAL(h.type, t);
		CU_ASSERT_EQUAL(h.body_len, 0);
		proto_buf_free(&b);
	}
}

static void
test_header_truncated(void)
{
	struct proto_buf b;
	struct proto_hdr h;
	size_t i;

	make_frame(&b, PROTO_MSG_PING, 0, 1, 0);
	for (i = 0; i < PROTO_HDR_BYTES; i++) {
		CU_ASSERT_EQUAL(proto_hdr_decode(b.data, i, 0, &h), PROTO_ERR_TRUNCATED);
	}
	proto_buf_free(&b);
}

static void
test_header_bad_magic(void)
{
	struct proto_buf b;
	struct proto_hdr h;

	make_frame(&b, PROTO_MSG_PING, 0, 1, 0);
	b.data[4] = 'X';
	CU_ASSERT_EQUAL(proto_hdr_decode(b.data, b.len, 0, &h), PROTO_ERR_BAD_MAGIC);
	proto_buf_free(&b);
}

static void
test_header_bad_version(void)
{
	struct proto_buf b;
	struct proto_hdr h;

	make_frame(&b, PROTO_MSG_REQUEST, 1, 1, 0);
	b.data[6] = 2;
	CU_ASSERT_EQUAL(proto_hdr_decode(b.data, b.len, 0, &h), PROTO_ERR_BAD_VERSION);
	b.data[6] = 0;
	CU_ASSERT_EQUAL(proto_hdr_decode(b.data, b.len, 0, &h), PROTO_ERR_BAD_VERSION);
	/* A HELLO of any version is readable so that the gateway can answer it. */
	b.data[7] = PROTO_MSG_HELLO;
	b.data[6] = 9;
	CU_ASSERT_EQUAL(proto_hdr_decode(b.data, b.len, 0, &h), 0);
	CU_ASSERT_EQUAL(h.version, 9);
	proto_buf_free(&b);
}

static void
test_header_bad_type(void)
{
	struct proto_buf b;
	struct proto_hdr h;

	make_frame(&b, PROTO_MSG_PING, 0, 1, 0);
	b.data[7] = 0;
	CU_ASSERT_EQUAL(proto_hdr_decode(b.data, b.len, 0, &h), PROTO_ERR_BAD_TYPE);
	b.data[7] = PROTO_MSG_PONG + 1;
	CU_ASSERT_EQUAL(proto_hdr_decode(b.data, b.len, 0, &h), PROTO_ERR_BAD_TYPE);
	b.data[7] = 0xff;
	CU_ASSERT_EQUAL(proto_hdr_decode(b.data, b.len, 0, &h), PROTO_ERR_BAD_TYPE);
	proto_buf_free(&b);
}

static void
test_header_length_below_header(void)
{
	struct proto_buf b;
	struct proto_hdr h;

	make_frame(&b, PROTO_MSG_PING, 0, 1, 0);
	b.data[3] = 11;
	CU_ASSERT_EQUAL(proto_hdr_decode(b.data, b.len, 0, &h), PROTO_ERR_BAD_VALUE);
	proto_buf_free(&b);
}

static void
test_header_too_large_from_header_alone(void)
{
	uint8_t hdr[PROTO_HDR_BYTES] = {0, 0,  0, 0, 'H', 'G', 1, PROTO_MSG_REQUEST,
	                                0, 44, 0, 0, 0,   0,   0, 1};
	struct proto_hdr h;
	uint32_t len;

	/* Exactly the default maximum is allowed ... */
	len = PROTO_MAX_FRAME_DEFAULT - PROTO_LEN_BYTES;
	hdr[0] = (uint8_t)(len >> 24), hdr[1] = (uint8_t)(len >> 16);
	hdr[2] = (uint8_t)(len >> 8), hdr[3] = (uint8_t)len;
	CU_ASSERT_EQUAL(proto_hdr_decode(hdr, sizeof(hdr), 0, &h), 0);
	CU_ASSERT_EQUAL(h.body_len, PROTO_MAX_FRAME_DEFAULT - PROTO_HDR_BYTES);
	/* ... one byte more is not, and neither is 4 GiB, with only 16 bytes in hand. */
	len++;
	hdr[3] = (uint8_t)len;
	CU_ASSERT_EQUAL(proto_hdr_decode(hdr, sizeof(hdr), 0, &h), PROTO_ERR_TOO_LARGE);
	CU_ASSERT_EQUAL(proto_hdr_decode(hdr, sizeof(hdr), PROTO_MAX_FRAME_CAP, &h), 0);
	memset(hdr, 0xff, 4);
	CU_ASSERT_EQUAL(proto_hdr_decode(hdr, sizeof(hdr), PROTO_MAX_FRAME_CAP, &h),
	                PROTO_ERR_TOO_LARGE);
	/* A max_frame over the cap is the cap. */
	CU_ASSERT_EQUAL(proto_hdr_decode(hdr, sizeof(hdr), SIZE_MAX, &h), PROTO_ERR_TOO_LARGE);
	/* A tiny negotiated maximum. */
	memset(hdr, 0, 4);
	hdr[3] = 100;
	CU_ASSERT_EQUAL(proto_hdr_decode(hdr, sizeof(hdr), 64, &h), PROTO_ERR_TOO_LARGE);
	CU_ASSERT_EQUAL(proto_hdr_decode(hdr, sizeof(hdr), 2, &h), PROTO_ERR_TOO_LARGE);
}

static void
test_frame_begin_refuses_nonempty(void)
{
	struct proto_buf b;

	proto_buf_init(&b);
	CU_ASSERT_EQUAL(proto_put_u8(&b, 1), 0);
	CU_ASSERT_EQUAL(proto_frame_begin(&b, PROTO_MSG_PING, 0, 0, 1), PROTO_ERR_BAD_VALUE);
	CU_ASSERT_NOT_EQUAL(proto_frame_finish(&b), 0);
	proto_buf_free(&b);
	proto_buf_init(&b);
	CU_ASSERT_EQUAL(proto_frame_finish(&b), PROTO_ERR_BAD_VALUE);
	proto_buf_free(&b);
}

/* ---- hello --------------------------------------------------------------------------- */

static void
hello_sample(struct proto_hello *h)
{
	memset(h, 0, sizeof(*h));
	h->min_version = 1;
	h->max_version = 1;
	h->cred = PROTO_CRED_APIKEY;
	strcpy(h->client_name, "libhsmgate-pkcs11");
	strcpy(h->client_version, "0.1.0");
	strcpy(h->api_key, "hg_key_0123456789abcdef");
}

static int
dec_hello(struct proto_cur *c, struct proto_arena *a, void *ctx)
{
	struct proto_hello h;

	(void)a;
	(void)ctx;
	return proto_hello_get(c, &h);
}

static void
test_hello_roundtrip(void)
{
	struct proto_hello h, g;
	struct proto_buf b;
	struct proto_cur c;

	hello_sample(&h);
	proto_buf_init(&b);
	CU_ASSERT_EQUAL(proto_hello_put(&b, &h), 0);
	proto_cur_init(&c, b.data, b.len);
	CU_ASSERT_EQUAL(proto_hello_get(&c, &g), 0);
	CU_ASSERT_EQUAL(proto_cur_end(&c), 0);
	CU_ASSERT_EQUAL(memcmp(&h, &g, sizeof(h)), 0);
	pt_truncations(b.data, b.len, dec_hello, NULL);
	pt_bitflips(b.data, b.len, dec_hello, NULL);
	proto_buf_free(&b);

	h.cred = PROTO_CRED_CERT;
	memset(h.api_key, 0, sizeof(h.api_key));
	proto_buf_init(&b);
	CU_ASSERT_EQUAL(proto_hello_put(&b, &h), 0);
	proto_cur_init(&c, b.data, b.len);
	CU_ASSERT_EQUAL(proto_hello_get(&c, &g), 0);
	CU_ASSERT_EQUAL(memcmp(&h, &g, sizeof(h)), 0);
	proto_buf_free(&b);
}

static int
hello_get_after(void (*mutate)(struct proto_buf *))
{
	struct proto_hello h;
	struct proto_buf b;
	struct proto_cur c;
	int r;

	hello_sample(&h);
	proto_buf_init(&b);
	CU_ASSERT_EQUAL(proto_hello_put(&b, &h), 0);
	mutate(&b);
	proto_cur_init(&c, b.data, b.len);
	r = proto_hello_get(&c, &h);
	if (r != 0) {
		CU_ASSERT_EQUAL(c.len, b.len);
		CU_ASSERT_EQUAL(h.api_key[0], '\0');
	}
	proto_buf_free(&b);
	return r;
}

static void
mut_min_over_max(struct proto_buf *b)
{
	b->data[0] = 2;
}
static void
mut_bad_cred(struct proto_buf *b)
{
	b->data[2] = 3;
}
static void
mut_cert_with_key(struct proto_buf *b)
{
	b->data[2] = PROTO_CRED_CERT;
}
static void
mut_nul_in_name(struct proto_buf *b)
{
	b->data[3 + 4 + 2] = '\0';
}
static void
mut_name_long(struct proto_buf *b)
{
	/* name length 64 (needs 65 bytes with the NUL) */
	b->data[3 + 3] = 64;
}

static void
test_hello_refusals(void)
{
	CU_ASSERT_EQUAL(hello_get_after(mut_min_over_max), PROTO_ERR_BAD_VALUE);
	CU_ASSERT_EQUAL(hello_get_after(mut_bad_cred), PROTO_ERR_BAD_VALUE);
	CU_ASSERT_EQUAL(hello_get_after(mut_cert_with_key), PROTO_ERR_BAD_VALUE);
	CU_ASSERT_EQUAL(hello_get_after(mut_nul_in_name), PROTO_ERR_BAD_VALUE);
	CU_ASSERT_EQUAL(hello_get_after(mut_name_long), PROTO_ERR_TOO_LARGE);
}

static void
test_hello_put_refusals(void)
{
	struct proto_hello h;
	struct proto_buf b;

	hello_sample(&h);
	h.min_version = 3;
	proto_buf_init(&b);
	CU_ASSERT_EQUAL(proto_hello_put(&b, &h), PROTO_ERR_BAD_VALUE);
	proto_buf_free(&b);
	hello_sample(&h);
	h.cred = PROTO_CRED_CERT;
	proto_buf_init(&b);
	CU_ASSERT_EQUAL(proto_hello_put(&b, &h), PROTO_ERR_BAD_VALUE);
	proto_buf_free(&b);
	hello_sample(&h);
	memset(h.client_name, 'n', sizeof(h.client_name));
	proto_buf_init(&b);
	CU_ASSERT_EQUAL(proto_hello_put(&b, &h), PROTO_ERR_TOO_LARGE);
	proto_buf_free(&b);
}

/* ---- welcome ------------------------------------------------------------------------- */

static void
welcome_sample(struct proto_welcome *w)
{
	memset(w, 0, sizeof(*w));
	w->version = PROTO_VERSION;
	strcpy(w->gateway_id, "gw-eu-1");
	strcpy(w->principal, "tenant/acme/service/payments");
	w->max_frame = PROTO_MAX_FRAME_DEFAULT;
	w->max_inflight = 64;
	w->conn_id = 0x1122334455667788ull;
}

static int
dec_welcome(struct proto_cur *c, struct proto_arena *a, void *ctx)
{
	struct proto_welcome w;

	(void)a;
	(void)ctx;
	return proto_welcome_get(c, &w);
}

static void
test_welcome_roundtrip(void)
{
	struct proto_welcome w, g;
	struct proto_buf b;
	struct proto_cur c;

	welcome_sample(&w);
	proto_buf_init(&b);
	CU_ASSERT_EQUAL(proto_welcome_put(&b, &w), 0);
	proto_cur_init(&c, b.data, b.len);
	CU_ASSERT_EQUAL(proto_welcome_get(&c, &g), 0);
	CU_ASSERT_EQUAL(proto_cur_end(&c), 0);
	CU_ASSERT_EQUAL(memcmp(&w, &g, sizeof(w)), 0);
	pt_truncations(b.data, b.len, dec_welcome, NULL);
	pt_bitflips(b.data, b.len, dec_welcome, NULL);
	proto_buf_free(&b);
}

static void
test_welcome_refusals(void)
{
	struct proto_welcome w, g;
	struct proto_buf b;
	struct proto_cur c;
	size_t off;

	welcome_sample(&w);
	proto_buf_init(&b);
	CU_ASSERT_EQUAL(proto_welcome_put(&b, &w), 0);
	b.data[0] = 2;
	proto_cur_init(&c, b.data, b.len);
	CU_ASSERT_EQUAL(proto_welcome_get(&c, &g), PROTO_ERR_BAD_VERSION);
	b.data[0] = PROTO_VERSION;
	/* max_frame is after the two strings */
	off = 1 + 4 + strlen(w.gateway_id) + 4 + strlen(w.principal);
	b.data[off] = 0x10; /* 256 MiB */
	proto_cur_init(&c, b.data, b.len);
	CU_ASSERT_EQUAL(proto_welcome_get(&c, &g), PROTO_ERR_BAD_VALUE);
	CU_ASSERT_EQUAL(c.len, b.len);
	proto_buf_free(&b);

	w.max_inflight = 0;
	proto_buf_init(&b);
	CU_ASSERT_EQUAL(proto_welcome_put(&b, &w), PROTO_ERR_BAD_VALUE);
	proto_buf_free(&b);
	welcome_sample(&w);
	w.max_frame = 100;
	proto_buf_init(&b);
	CU_ASSERT_EQUAL(proto_welcome_put(&b, &w), PROTO_ERR_BAD_VALUE);
	proto_buf_free(&b);
	welcome_sample(&w);
	w.version = 7;
	proto_buf_init(&b);
	CU_ASSERT_EQUAL(proto_welcome_put(&b, &w), PROTO_ERR_BAD_VERSION);
	proto_buf_free(&b);
}

/* ---- gateway error ------------------------------------------------------------------- */

static int
dec_gwerror(struct proto_cur *c, struct proto_arena *a, void *ctx)
{
	char msg[513];
	uint32_t code;

	(void)a;
	(void)ctx;
	return proto_gwerror_get(c, &code, msg, sizeof(msg));
}

static void
test_gwerror_roundtrip(void)
{
	struct proto_buf b;
	struct proto_cur c;
	uint32_t code;
	char msg[600];

	proto_buf_init(&b);
	CU_ASSERT_EQUAL(proto_gwerror_put(&b, PROTO_GWERR_TOO_LARGE, "frame over 1048576 bytes"),
	                0);
	proto_cur_init(&c, b.data, b.len);
	CU_ASSERT_EQUAL(proto_gwerror_get(&c, &code, msg, sizeof(msg)), 0);
	CU_ASSERT_EQUAL(code, PROTO_GWERR_TOO_LARGE);
	CU_ASSERT_STRING_EQUAL(msg, "frame over 1048576 bytes");
	pt_truncations(b.data, b.len, dec_gwerror, NULL);
	pt_bitflips(b.data, b.len, dec_gwerror, NULL);
	proto_buf_free(&b);
	proto_buf_init(&b);
	CU_ASSERT_EQUAL(proto_gwerror_put(&b, PROTO_GWERR_SHUTDOWN, NULL), 0);
	proto_cur_init(&c, b.data, b.len);
	CU_ASSERT_EQUAL(proto_gwerror_get(&c, &code, msg, sizeof(msg)), 0);
	CU_ASSERT_STRING_EQUAL(msg, "");
	proto_buf_free(&b);
}

static void
test_gwerror_too_long(void)
{
	char big[600];
	struct proto_buf b;
	struct proto_cur c;
	uint32_t code;
	char msg[600];

	memset(big, 'e', 513);
	big[513] = '\0';
	proto_buf_init(&b);
	CU_ASSERT_EQUAL(proto_gwerror_put(&b, 1, big), PROTO_ERR_TOO_LARGE);
	proto_buf_free(&b);
	/* Hand-built: 513 bytes on the wire are refused even into a large buffer. */
	proto_buf_init(&b);
	CU_ASSERT_EQUAL(proto_put_u32(&b, 1), 0);
	CU_ASSERT_EQUAL(proto_put_string(&b, big), 0);
	proto_cur_init(&c, b.data, b.len);
	CU_ASSERT_EQUAL(proto_gwerror_get(&c, &code, msg, sizeof(msg)), PROTO_ERR_TOO_LARGE);
	CU_ASSERT_EQUAL(code, 0);
	proto_buf_free(&b);
}

/* ---- IPC ----------------------------------------------------------------------------- */

static void
ctx_sample(struct proto_ctx *x)
{
	memset(x, 0, sizeof(*x));
	x->cred = PROTO_CRED_CERT;
	strcpy(x->principal, "tenant/acme/user/alice");
	strcpy(x->tenant, "acme");
	strcpy(x->source, "192.0.2.7:51234");
	x->ngroups = 2;
	strcpy(x->groups[0], "admins");
	strcpy(x->groups[1], "payments");
}

static int
dec_ctx(struct proto_cur *c, struct proto_arena *a, void *ctx)
{
	struct proto_ctx x;

	(void)a;
	(void)ctx;
	return proto_ctx_get(c, &x);
}

static void
test_ctx_roundtrip(void)
{
	struct proto_ctx x, g;
	struct proto_buf b;
	struct proto_cur c;

	ctx_sample(&x);
	proto_buf_init(&b);
	CU_ASSERT_EQUAL(proto_ctx_put(&b, &x), 0);
	proto_cur_init(&c, b.data, b.len);
	CU_ASSERT_EQUAL(proto_ctx_get(&c, &g), 0);
	CU_ASSERT_EQUAL(proto_cur_end(&c), 0);
	CU_ASSERT_EQUAL(memcmp(&x, &g, sizeof(x)), 0);
	pt_truncations(b.data, b.len, dec_ctx, NULL);
	pt_bitflips(b.data, b.len, dec_ctx, NULL);
	proto_buf_free(&b);
}

static void
test_ctx_too_many_groups(void)
{
	struct proto_ctx x, g;
	struct proto_buf b;
	struct proto_cur c;
	int i;

	ctx_sample(&x);
	x.ngroups = 9;
	proto_buf_init(&b);
	CU_ASSERT_EQUAL(proto_ctx_put(&b, &x), PROTO_ERR_TOO_LARGE);
	proto_buf_free(&b);
	/* Hand-built with 9 groups. */
	proto_buf_init(&b);
	CU_ASSERT_EQUAL(proto_put_u8(&b, PROTO_CRED_CERT), 0);
	CU_ASSERT_EQUAL(proto_put_string(&b, "p"), 0);
	CU_ASSERT_EQUAL(proto_put_string(&b, "t"), 0);
	CU_ASSERT_EQUAL(proto_put_string(&b, "s"), 0);
	CU_ASSERT_EQUAL(proto_put_u32(&b, 9), 0);
	for (i = 0; i < 9; i++) {
		CU_ASSERT_EQUAL(proto_put_string(&b, "g"), 0);
	}
	proto_cur_init(&c, b.data, b.len);
	CU_ASSERT_EQUAL(proto_ctx_get(&c, &g), PROTO_ERR_TOO_LARGE);
	CU_ASSERT_EQUAL(c.len, b.len);
	proto_buf_free(&b);
}

static void
test_ipc_roundtrip(void)
{
	struct proto_buf b;
	uint64_t conn;
	uint32_t body;
	uint8_t kind;

	proto_buf_init(&b);
	CU_ASSERT_EQUAL(proto_ipc_begin(&b, PROTO_IPC_REQUEST, 0xabcdef0123ull), 0);
	CU_ASSERT_EQUAL(proto_put_u32(&b, 7), 0);
	CU_ASSERT_EQUAL(proto_ipc_finish(&b), 0);
	CU_ASSERT_EQUAL(b.len, PROTO_IPC_HDR_BYTES + 4);
	CU_ASSERT_EQUAL(proto_ipc_hdr_decode(b.data, b.len, 0, &kind, &conn, &body), 0);
	CU_ASSERT_EQUAL(kind, PROTO_IPC_REQUEST);
	CU_ASSERT_EQUAL(conn, 0xabcdef0123ull);
	CU_ASSERT_EQUAL(body, 4);
	CU_ASSERT_EQUAL(
	        proto_ipc_hdr_decode(b.data, PROTO_IPC_HDR_BYTES - 1, 0, &kind, &conn, &body),
	        PROTO_ERR_TRUNCATED);
	proto_buf_free(&b);
}

static void
test_ipc_refusals(void)
{
	uint8_t h[PROTO_IPC_HDR_BYTES] = {0, 0, 0, 9, PROTO_IPC_CONN_CLOSED, 0, 0, 0, 0,
	                                  0, 0, 0, 1};
	uint64_t conn;
	uint32_t body;
	uint8_t kind;

	CU_ASSERT_EQUAL(proto_ipc_hdr_decode(h, sizeof(h), 0, &kind, &conn, &body), 0);
	CU_ASSERT_EQUAL(body, 0);
	h[4] = 0;
	CU_ASSERT_EQUAL(proto_ipc_hdr_decode(h, sizeof(h), 0, &kind, &conn, &body),
	                PROTO_ERR_BAD_TYPE);
	h[4] = PROTO_IPC_POLICY;
	CU_ASSERT_EQUAL(proto_ipc_hdr_decode(h, sizeof(h), 0, &kind, &conn, &body), 0);
	h[4] = PROTO_IPC_POLICY + 1;
	CU_ASSERT_EQUAL(proto_ipc_hdr_decode(h, sizeof(h), 0, &kind, &conn, &body),
	                PROTO_ERR_BAD_TYPE);
	h[4] = PROTO_IPC_REPLY;
	h[3] = 8;
	CU_ASSERT_EQUAL(proto_ipc_hdr_decode(h, sizeof(h), 0, &kind, &conn, &body),
	                PROTO_ERR_BAD_VALUE);
	h[0] = 0xff;
	CU_ASSERT_EQUAL(proto_ipc_hdr_decode(h, sizeof(h), 0, &kind, &conn, &body),
	                PROTO_ERR_TOO_LARGE);
	h[0] = 0;
	h[3] = 200;
	CU_ASSERT_EQUAL(proto_ipc_hdr_decode(h, sizeof(h), 100, &kind, &conn, &body),
	                PROTO_ERR_TOO_LARGE);
	CU_ASSERT_EQUAL(kind, 0);
}

static void
test_source_ip(void)
{
	char ip[64];

	proto_source_ip("127.0.0.1:51522", ip, sizeof(ip));
	CU_ASSERT_STRING_EQUAL(ip, "127.0.0.1");
	proto_source_ip("[2001:db8::1]:443", ip, sizeof(ip));
	CU_ASSERT_STRING_EQUAL(ip, "2001:db8::1");
	proto_source_ip("unknown", ip, sizeof(ip));
	CU_ASSERT_STRING_EQUAL(ip, "unknown");
	proto_source_ip("10.0.0.1:1", ip, 4);
	CU_ASSERT_STRING_EQUAL(ip, "10.");
}

static const struct test_case cases[] = {
        {"header round-trip and byte layout", test_header_roundtrip},
        {"header: every message type", test_header_every_type},
        {"refuse: header truncated", test_header_truncated},
        {"refuse: bad magic", test_header_bad_magic},
        {"refuse: bad version (HELLO exempt)", test_header_bad_version},
        {"refuse: bad type", test_header_bad_type},
        {"refuse: length below the header", test_header_length_below_header},
        {"refuse: too large, from the header alone", test_header_too_large_from_header_alone},
        {"refuse: frame_begin on a non-empty buffer", test_frame_begin_refuses_nonempty},
        {"hello round-trip, truncation, flips", test_hello_roundtrip},
        {"refuse: bad hellos", test_hello_refusals},
        {"refuse: hello encoder", test_hello_put_refusals},
        {"welcome round-trip, truncation, flips", test_welcome_roundtrip},
        {"refuse: bad welcomes", test_welcome_refusals},
        {"gateway error round-trip, truncation, flips", test_gwerror_roundtrip},
        {"refuse: gateway error message too long", test_gwerror_too_long},
        {"ctx round-trip, truncation, flips", test_ctx_roundtrip},
        {"refuse: ctx with too many groups", test_ctx_too_many_groups},
        {"ipc header round-trip", test_ipc_roundtrip},
        {"refuse: bad ipc headers", test_ipc_refusals},
        {"proto_source_ip strips the port", test_source_ip},
        {NULL, NULL},
};

void
test_register(void)
{
	test_suite_add("proto/frame", NULL, NULL, cases);
}
