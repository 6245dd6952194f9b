/*
 * tests/fuzz/proto_frame_fuzz.c — libFuzzer target for everything a peer can send:
 * a client frame (header, then the body decoders its type and call imply) or a
 * gateway ↔ worker IPC message (header, caller context, the client frame inside).
 *
 * Beyond "no crash", it checks two properties of the decoders: a failed decode leaves the
 * cursor where it was, and what a template or mechanism decoder builds can be encoded
 * again and decodes again (the encoder must accept everything the decoder produces).
 *
 *   clang -O1 -g -fsanitize=fuzzer,address,undefined -std=gnu11 -D_GNU_SOURCE -I. \
 *     -I/usr/include/p11-kit-1 tests/fuzz/proto_frame_fuzz.c proto/[a-z]*.c -lcrypto -o /tmp/pf
 *   /tmp/pf tests/fuzz/corpus/proto_frame
 */
#include "proto/proto.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Results the target only decodes for coverage; (void) does not silence
 * warn_unused_result under gcc. */
static void
ignore(int r)
{
	(void)r;
}

#define CHECK(x)                                                                                   \
	do {                                                                                       \
		if (!(x)) {                                                                        \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

/* Decoding again what was re-encoded from a decoded template must work. */
static void
reencode_template(const CK_ATTRIBUTE *t, CK_ULONG n)
{
	struct proto_arena *a = proto_arena_new();
	struct proto_buf b;
	struct proto_cur c;
	CK_ATTRIBUTE *t2;
	CK_ULONG n2;

	CHECK(a != NULL);
	proto_buf_init(&b);
	if (proto_put_template(&b, t, n) == 0) {
		proto_cur_init(&c, b.data, b.len);
		CHECK(proto_get_template(&c, a, &t2, &n2) == 0);
		CHECK(n2 == n);
		CHECK(proto_cur_end(&c) == 0);
	}
	proto_buf_free(&b);
	proto_arena_free(a);
}

static void
reencode_mechanism(const CK_MECHANISM *m)
{
	struct proto_arena *a = proto_arena_new();
	struct proto_buf b;
	struct proto_cur c;
	CK_MECHANISM m2;

	CHECK(a != NULL);
	proto_buf_init(&b);
	/* The decoder only builds what the encoder accepts, so this must succeed. */
	CHECK(proto_put_mechanism(&b, m) == 0);
	proto_cur_init(&c, b.data, b.len);
	CHECK(proto_get_mechanism(&c, a, &m2) == 0);
	CHECK(m2.mechanism == m->mechanism && m2.ulParameterLen == m->ulParameterLen);
	CHECK(proto_cur_end(&c) == 0);
	proto_buf_free(&b);
	proto_arena_free(a);
}

/* A GetAttributeValue query as the worker would see it: decode, "run" it (leave the
 * buffers as they are), encode the reply, and skim that reply. */
static void
serve_attrquery(const CK_ATTRIBUTE *t, CK_ULONG n)
{
	struct proto_arena *a = proto_arena_new();
	struct proto_buf b;
	struct proto_cur c;

	CHECK(a != NULL);
	proto_buf_init(&b);
	if (proto_put_attrreply(&b, t, n) == 0) {
		proto_cur_init(&c, b.data, b.len);
		CHECK(proto_layout_skim(&c, "Q", a) == 0);
		CHECK(proto_cur_end(&c) == 0);
	}
	proto_buf_free(&b);
	proto_arena_free(a);
}

/* The request fields, decoded one by one with the real decoders. */
static void
request_fields(struct proto_cur *c, const char *layout, struct proto_arena *a)
{
	struct proto_cur before;
	CK_ATTRIBUTE *t;
	CK_MECHANISM m;
	CK_ULONG n;
	int r = 0;

	for (; *layout != '\0' && r == 0; layout++) {
		before = *c;
		switch (*layout) {
		case 'a':
			if ((r = proto_get_template(c, a, &t, &n)) == 0) {
				reencode_template(t, n);
			}
			break;
		case 'A':
			if ((r = proto_get_attrquery(c, a, &t, &n)) == 0) {
				serve_attrquery(t, n);
			}
			break;
		case 'M':
			if ((r = proto_get_mechanism(c, a, &m)) == 0) {
				reencode_mechanism(&m);
			}
			break;
		default: {
			char one[2] = {*layout, '\0'};

			r = proto_layout_skim(c, one, a);
			break;
		}
		}
		if (r != 0) {
			CHECK(c->p == before.p && c->len == before.len);
		}
	}
	if (r == 0) {
		ignore(proto_cur_end(c));
	}
}

static void
frame_body(const struct proto_hdr *h, const uint8_t *body, struct proto_arena *a)
{
	const struct proto_call_info *ci;
	struct proto_welcome w;
	struct proto_hello hello;
	struct proto_cur c;
	char msg[600];
	uint32_t code;
	CK_ULONG rv;

	proto_cur_init(&c, body, h->body_len);
	switch (h->type) {
	case PROTO_MSG_HELLO:
		if (proto_hello_get(&c, &hello) == 0) {
			ignore(proto_cur_end(&c));
		}
		break;
	case PROTO_MSG_WELCOME:
		if (proto_welcome_get(&c, &w) == 0) {
			ignore(proto_cur_end(&c));
		}
		break;
	case PROTO_MSG_ERROR:
		if (proto_gwerror_get(&c, &code, msg, sizeof(msg)) == 0) {
			ignore(proto_cur_end(&c));
		}
		break;
	case PROTO_MSG_REQUEST:
		ci = proto_call_get(h->call);
		if (ci != NULL && (ci->flags & PROTO_CF_LOCAL) == 0) {
			request_fields(&c, ci->req, a);
		}
		break;
	case PROTO_MSG_REPLY:
		ci = proto_call_get(h->call);
		if (ci != NULL && proto_get_ulong(&c, &rv) == 0 &&
		    proto_reply_has_fields(h->call, rv) &&
		    proto_layout_skim(&c, ci->resp, a) == 0) {
			ignore(proto_cur_end(&c));
		}
		break;
	case PROTO_MSG_PING:
	case PROTO_MSG_PONG:
	default:
		ignore(proto_cur_end(&c));
		break;
	}
}

/* Returns the bytes one frame used, or 0 when there is no complete frame. */
static size_t
frame(const uint8_t *p, size_t n, struct proto_arena *a)
{
	struct proto_hdr h;

	if (proto_hdr_decode(p, n, PROTO_MAX_FRAME_CAP, &h) != 0) {
		return 0;
	}
	if (h.body_len > n - PROTO_HDR_BYTES) {
		return 0;
	}
	frame_body(&h, p + PROTO_HDR_BYTES, a);
	return PROTO_HDR_BYTES + (size_t)h.body_len;
}

static void
ipc(const uint8_t *p, size_t n, struct proto_arena *a)
{
	struct proto_ctx x;
	struct proto_cur c;
	uint64_t conn;
	uint32_t body_len;
	uint8_t kind;
	size_t used;

	if (proto_ipc_hdr_decode(p, n, 0, &kind, &conn, &body_len) != 0 ||
	    body_len > n - PROTO_IPC_HDR_BYTES) {
		return;
	}
	proto_cur_init(&c, p + PROTO_IPC_HDR_BYTES, body_len);
	switch (kind) {
	case PROTO_IPC_REQUEST:
		if (proto_ctx_get(&c, &x) == 0) {
			used = frame(c.p, c.len, a);
			/* a request carries exactly one frame */
			CHECK(used == 0 || used <= c.len);
		}
		break;
	case PROTO_IPC_REPLY:
		(void)frame(c.p, c.len, a);
		break;
	case PROTO_IPC_CONN_CLOSED:
		ignore(proto_cur_end(&c));
		break;
	case PROTO_IPC_AUDIT:
	default:
		break;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proto_arena *a = proto_arena_new();
	uint8_t *copy;

	if (a == NULL) {
		return 0;
	}
	/* An exact-size copy, so that ASan sees any read past the end. */
	copy = malloc(size != 0 ? size : 1);
	if (copy == NULL) {
		proto_arena_free(a);
		return 0;
	}
	if (size != 0) {
		memcpy(copy, data, size);
	}
	if (size >= 6 && copy[4] == 'H' && copy[5] == 'G') {
		(void)frame(copy, size, a);
	} else {
		ipc(copy, size, a);
	}
	free(copy);
	proto_arena_free(a);
	return 0;
}
