/*
 * proto/frame.c — frame header, handshake bodies (hello, welcome, gateway error), and the
 * gateway ↔ worker IPC header and caller context.
 */
#include "proto/proto.h"
#include "proto/proto_int.h"

#include <openssl/crypto.h>
#include <string.h>

#define GWERR_MSG_MAX     512
#define IPC_MAX_DEFAULT   ((size_t)PROTO_MAX_FRAME_CAP + 4096) /* a frame plus its context */
#define WELCOME_MIN_FRAME 4096u

/* ---- header -------------------------------------------------------------------------- */

int
proto_hdr_decode(const uint8_t *p, size_t avail, size_t max_frame, struct proto_hdr *h)
{
	uint32_t len;
	uint8_t version, type;

	memset(h, 0, sizeof(*h));
	if (avail < PROTO_HDR_BYTES) {
		return PROTO_ERR_TRUNCATED;
	}
	if (max_frame == 0 || max_frame > PROTO_MAX_FRAME_CAP) {
		max_frame = max_frame == 0 ? PROTO_MAX_FRAME_DEFAULT : PROTO_MAX_FRAME_CAP;
	}
	len = proto_be32_read(p);
	if ((uint16_t)(p[4] << 8 | p[5]) != PROTO_MAGIC) {
		return PROTO_ERR_BAD_MAGIC;
	}
	version = p[6];
	type = p[7];
	if (type < PROTO_MSG_HELLO || type > PROTO_MSG_PONG) {
		return PROTO_ERR_BAD_TYPE;
	}
	/* A HELLO may carry any version: the gateway must be able to read it to answer
	 * PROTO_GWERR_VERSION rather than drop the connection silently. */
	if (type != PROTO_MSG_HELLO && version != PROTO_VERSION) {
		return PROTO_ERR_BAD_VERSION;
	}
	if (len < PROTO_HDR_BYTES - PROTO_LEN_BYTES) {
		return PROTO_ERR_BAD_VALUE;
	}
	/* Decided here, from 16 bytes, so that no reader ever buffers an oversized frame
	 * (the p11-kit counter-example: p11_rpc_transport_read sizes buffers from the header). */
	if (max_frame < PROTO_HDR_BYTES || (size_t)len > max_frame - PROTO_LEN_BYTES) {
		return PROTO_ERR_TOO_LARGE;
	}
	h->body_len = len - (PROTO_HDR_BYTES - PROTO_LEN_BYTES);
	h->version = version;
	h->type = type;
	h->call = (uint16_t)(p[8] << 8 | p[9]);
	h->flags = (uint16_t)(p[10] << 8 | p[11]);
	h->req_id = proto_be32_read(p + 12);
	return 0;
}

int
proto_frame_begin(struct proto_buf *b, enum proto_msg type, uint16_t call, uint16_t flags,
                  uint32_t req_id)
{
	int r;

	if (b->len != 0) {
		return proto_buf_fail(b, PROTO_ERR_BAD_VALUE);
	}
	if ((r = proto_put_u32(b, 0)) != 0 || (r = proto_put_u16(b, PROTO_MAGIC)) != 0 ||
	    (r = proto_put_u8(b, PROTO_VERSION)) != 0 ||
	    (r = proto_put_u8(b, (uint8_t)type)) != 0 || (r = proto_put_u16(b, call)) != 0 ||
	    (r = proto_put_u16(b, flags)) != 0 || (r = proto_put_u32(b, req_id)) != 0) {
		return r;
	}
	return 0;
}

int
proto_frame_finish(struct proto_buf *b)
{
	if (b->failed != 0) {
		return b->failed;
	}
	if (b->len < PROTO_HDR_BYTES || b->len - PROTO_LEN_BYTES > UINT32_MAX) {
		return proto_buf_fail(b, PROTO_ERR_BAD_VALUE);
	}
	proto_be32_write(b->data, (uint32_t)(b->len - PROTO_LEN_BYTES));
	return 0;
}

/* ---- handshake ----------------------------------------------------------------------- */

int
proto_hello_put(struct proto_buf *b, const struct proto_hello *h)
{
	int r;

	if (h->min_version > h->max_version ||
	    (h->cred != PROTO_CRED_CERT && h->cred != PROTO_CRED_APIKEY) ||
	    (h->cred != PROTO_CRED_APIKEY && h->api_key[0] != '\0')) {
		return proto_buf_fail(b, PROTO_ERR_BAD_VALUE);
	}
	/* The fixed arrays bound what the peer accepts; refuse what would not round-trip. */
	if (strnlen(h->client_name, sizeof(h->client_name)) >= sizeof(h->client_name) ||
	    strnlen(h->client_version, sizeof(h->client_version)) >= sizeof(h->client_version) ||
	    strnlen(h->api_key, sizeof(h->api_key)) >= sizeof(h->api_key)) {
		return proto_buf_fail(b, PROTO_ERR_TOO_LARGE);
	}
	if ((r = proto_put_u8(b, h->min_version)) != 0 ||
	    (r = proto_put_u8(b, h->max_version)) != 0 || (r = proto_put_u8(b, h->cred)) != 0 ||
	    (r = proto_put_string(b, h->client_name)) != 0 ||
	    (r = proto_put_string(b, h->client_version)) != 0 ||
	    (r = proto_put_string(b, h->api_key)) != 0) {
		return r;
	}
	return 0;
}

int
proto_hello_get(struct proto_cur *c, struct proto_hello *h)
{
	struct proto_cur t = *c;
	int r;

	memset(h, 0, sizeof(*h));
	if ((r = proto_get_u8(&t, &h->min_version)) != 0 ||
	    (r = proto_get_u8(&t, &h->max_version)) != 0 || (r = proto_get_u8(&t, &h->cred)) != 0 ||
	    (r = proto_get_string(&t, h->client_name, sizeof(h->client_name))) != 0 ||
	    (r = proto_get_string(&t, h->client_version, sizeof(h->client_version))) != 0 ||
	    (r = proto_get_string(&t, h->api_key, sizeof(h->api_key))) != 0) {
		goto out;
	}
	if (h->min_version > h->max_version ||
	    (h->cred != PROTO_CRED_CERT && h->cred != PROTO_CRED_APIKEY) ||
	    (h->cred != PROTO_CRED_APIKEY && h->api_key[0] != '\0')) {
		r = PROTO_ERR_BAD_VALUE;
		goto out;
	}
	*c = t;
	r = 0;
out:
	if (r != 0) {
		/* A half-read hello must not leave an API key behind. */
		OPENSSL_cleanse(h, sizeof(*h));
	}
	return r;
}

int
proto_welcome_put(struct proto_buf *b, const struct proto_welcome *w)
{
	int r;

	if (w->version != PROTO_VERSION) {
		return proto_buf_fail(b, PROTO_ERR_BAD_VERSION);
	}
	if (w->max_frame < WELCOME_MIN_FRAME || w->max_frame > PROTO_MAX_FRAME_CAP ||
	    w->max_inflight == 0) {
		return proto_buf_fail(b, PROTO_ERR_BAD_VALUE);
	}
	if (strnlen(w->gateway_id, sizeof(w->gateway_id)) >= sizeof(w->gateway_id) ||
	    strnlen(w->principal, sizeof(w->principal)) >= sizeof(w->principal)) {
		return proto_buf_fail(b, PROTO_ERR_TOO_LARGE);
	}
	if ((r = proto_put_u8(b, w->version)) != 0 ||
	    (r = proto_put_string(b, w->gateway_id)) != 0 ||
	    (r = proto_put_string(b, w->principal)) != 0 ||
	    (r = proto_put_u32(b, w->max_frame)) != 0 ||
	    (r = proto_put_u32(b, w->max_inflight)) != 0 ||
	    (r = proto_put_u64(b, w->conn_id)) != 0) {
		return r;
	}
	return 0;
}

int
proto_welcome_get(struct proto_cur *c, struct proto_welcome *w)
{
	struct proto_cur t = *c;
	int r;

	memset(w, 0, sizeof(*w));
	if ((r = proto_get_u8(&t, &w->version)) != 0 ||
	    (r = proto_get_string(&t, w->gateway_id, sizeof(w->gateway_id))) != 0 ||
	    (r = proto_get_string(&t, w->principal, sizeof(w->principal))) != 0 ||
	    (r = proto_get_u32(&t, &w->max_frame)) != 0 ||
	    (r = proto_get_u32(&t, &w->max_inflight)) != 0 ||
	    (r = proto_get_u64(&t, &w->conn_id)) != 0) {
		goto out;
	}
	if (w->version != PROTO_VERSION) {
		r = PROTO_ERR_BAD_VERSION;
		goto out;
	}
	if (w->max_frame < WELCOME_MIN_FRAME || w->max_frame > PROTO_MAX_FRAME_CAP ||
	    w->max_inflight == 0) {
		r = PROTO_ERR_BAD_VALUE;
		goto out;
	}
	*c = t;
	r = 0;
out:
	if (r != 0) {
		memset(w, 0, sizeof(*w));
	}
	return r;
}

int
proto_gwerror_put(struct proto_buf *b, uint32_t code, const char *msg)
{
	int r;

	if (msg == NULL) {
		msg = "";
	}
	if (strnlen(msg, GWERR_MSG_MAX + 1) > GWERR_MSG_MAX) {
		return proto_buf_fail(b, PROTO_ERR_TOO_LARGE);
	}
	if ((r = proto_put_u32(b, code)) != 0 || (r = proto_put_string(b, msg)) != 0) {
		return r;
	}
	return 0;
}

int
proto_gwerror_get(struct proto_cur *c, uint32_t *code, char *msg, size_t msgsz)
{
	struct proto_cur t = *c;
	size_t sz = msgsz > GWERR_MSG_MAX + 1 ? GWERR_MSG_MAX + 1 : msgsz;
	int r;

	*code = 0;
	if (msgsz != 0) {
		memset(msg, 0, msgsz);
	}
	if ((r = proto_get_u32(&t, code)) != 0 || (r = proto_get_string(&t, msg, sz)) != 0) {
		*code = 0;
		return r;
	}
	*c = t;
	return 0;
}

/* ---- IPC ----------------------------------------------------------------------------- */

int
proto_ctx_put(struct proto_buf *b, const struct proto_ctx *x)
{
	uint32_t i;
	int r;

	if (x->ngroups > sizeof(x->groups) / sizeof(x->groups[0])) {
		return proto_buf_fail(b, PROTO_ERR_TOO_LARGE);
	}
	if (strnlen(x->principal, sizeof(x->principal)) >= sizeof(x->principal) ||
	    strnlen(x->tenant, sizeof(x->tenant)) >= sizeof(x->tenant) ||
	    strnlen(x->source, sizeof(x->source)) >= sizeof(x->source)) {
		return proto_buf_fail(b, PROTO_ERR_TOO_LARGE);
	}
	if ((r = proto_put_u8(b, x->cred)) != 0 || (r = proto_put_string(b, x->principal)) != 0 ||
	    (r = proto_put_string(b, x->tenant)) != 0 ||
	    (r = proto_put_string(b, x->source)) != 0 || (r = proto_put_u32(b, x->ngroups)) != 0) {
		return r;
	}
	for (i = 0; i < x->ngroups; i++) {
		if (strnlen(x->groups[i], sizeof(x->groups[i])) >= sizeof(x->groups[i])) {
			return proto_buf_fail(b, PROTO_ERR_TOO_LARGE);
		}
		if ((r = proto_put_string(b, x->groups[i])) != 0) {
			return r;
		}
	}
	return 0;
}

int
proto_ctx_get(struct proto_cur *c, struct proto_ctx *x)
{
	struct proto_cur t = *c;
	uint32_t i;
	int r;

	memset(x, 0, sizeof(*x));
	if ((r = proto_get_u8(&t, &x->cred)) != 0 ||
	    (r = proto_get_string(&t, x->principal, sizeof(x->principal))) != 0 ||
	    (r = proto_get_string(&t, x->tenant, sizeof(x->tenant))) != 0 ||
	    (r = proto_get_string(&t, x->source, sizeof(x->source))) != 0 ||
	    (r = proto_get_u32(&t, &x->ngroups)) != 0) {
		goto out;
	}
	if (x->cred != PROTO_CRED_CERT && x->cred != PROTO_CRED_APIKEY) {
		r = PROTO_ERR_BAD_VALUE;
		goto out;
	}
	if (x->ngroups > sizeof(x->groups) / sizeof(x->groups[0])) {
		r = PROTO_ERR_TOO_LARGE;
		goto out;
	}
	for (i = 0; i < x->ngroups; i++) {
		if ((r = proto_get_string(&t, x->groups[i], sizeof(x->groups[i]))) != 0) {
			goto out;
		}
	}
	*c = t;
	r = 0;
out:
	if (r != 0) {
		memset(x, 0, sizeof(*x));
	}
	return r;
}

int
proto_ipc_begin(struct proto_buf *b, enum proto_ipc kind, uint64_t conn_id)
{
	int r;

	if (b->len != 0) {
		return proto_buf_fail(b, PROTO_ERR_BAD_VALUE);
	}
	if ((r = proto_put_u32(b, 0)) != 0 || (r = proto_put_u8(b, (uint8_t)kind)) != 0 ||
	    (r = proto_put_u64(b, conn_id)) != 0) {
		return r;
	}
	return 0;
}

int
proto_ipc_finish(struct proto_buf *b)
{
	if (b->failed != 0) {
		return b->failed;
	}
	if (b->len < PROTO_IPC_HDR_BYTES || b->len - PROTO_LEN_BYTES > UINT32_MAX) {
		return proto_buf_fail(b, PROTO_ERR_BAD_VALUE);
	}
	proto_be32_write(b->data, (uint32_t)(b->len - PROTO_LEN_BYTES));
	return 0;
}

int
proto_ipc_hdr_decode(const uint8_t *p, size_t avail, size_t max, uint8_t *kind, uint64_t *conn_id,
                     uint32_t *body_len)
{
	uint32_t len;

	*kind = 0;
	*conn_id = 0;
	*body_len = 0;
	if (avail < PROTO_IPC_HDR_BYTES) {
		return PROTO_ERR_TRUNCATED;
	}
	if (max == 0) {
		max = IPC_MAX_DEFAULT;
	}
	len = proto_be32_read(p);
	if (p[4] < PROTO_IPC_REQUEST || p[4] > PROTO_IPC_POLICY) {
		return PROTO_ERR_BAD_TYPE;
	}
	if (len < PROTO_IPC_HDR_BYTES - PROTO_LEN_BYTES) {
		return PROTO_ERR_BAD_VALUE;
	}
	if (max < PROTO_LEN_BYTES || (size_t)len > max - PROTO_LEN_BYTES) {
		return PROTO_ERR_TOO_LARGE;
	}
	*kind = p[4];
	*conn_id = proto_be64_read(p + 5);
	*body_len = len - (PROTO_IPC_HDR_BYTES - PROTO_LEN_BYTES);
	return 0;
}

void
proto_source_ip(const char *source, char *out, size_t outsz)
{
	const char *end;
	size_t n;

	if (source[0] == '[') {
		source++;
		end = strchr(source, ']');
	} else {
		end = strrchr(source, ':');
	}
	n = end != NULL ? (size_t)(end - source) : strlen(source);
	if (n >= outsz) {
		n = outsz - 1;
	}
	memcpy(out, source, n);
	out[n] = '\0';
}
