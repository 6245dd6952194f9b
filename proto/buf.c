/*
 * proto/buf.c — the writer (struct proto_buf), the bounds-checked reader cursor
 * (struct proto_cur) and proto_strerror().
 *
 * Every decoder in proto/ reads through the getters here. A getter zeroes its output,
 * checks the remaining length (and the caller's cap) before it copies anything, and only
 * advances the cursor when it succeeds, so a failed read leaves the cursor unchanged.
 */
#include "proto/proto.h"
#include "proto/proto_int.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

const char *
proto_strerror(int err)
{
	switch (err) {
	case PROTO_OK:
		return "success";
	case PROTO_ERR_TRUNCATED:
		return "message truncated";
	case PROTO_ERR_TOO_LARGE:
		return "length or count over its limit";
	case PROTO_ERR_TRAILING:
		return "trailing bytes after the last field";
	case PROTO_ERR_BAD_MAGIC:
		return "bad frame magic";
	case PROTO_ERR_BAD_VERSION:
		return "unsupported protocol version";
	case PROTO_ERR_BAD_TYPE:
		return "unknown message type";
	case PROTO_ERR_BAD_CALL:
		return "unknown call";
	case PROTO_ERR_BAD_VALUE:
		return "invalid value";
	case PROTO_ERR_NOMEM:
		return "out of memory";
	case PROTO_ERR_DEPTH:
		return "templates nested too deeply";
	case PROTO_ERR_SMALL:
		return "reply larger than the caller's buffer";
	default:
		return "unknown error";
	}
}

/* ---- writer ------------------------------------------------------------------------- */

void
proto_buf_init(struct proto_buf *b)
{
	memset(b, 0, sizeof(*b));
}

void
proto_buf_free(struct proto_buf *b)
{
	if (b == NULL) {
		return;
	}
	if (b->data != NULL) {
		/* The whole allocation: a frame may carry a PIN (STYLE.md rule 9). */
		OPENSSL_cleanse(b->data, b->cap);
		free(b->data);
	}
	memset(b, 0, sizeof(*b));
}

void
proto_buf_reset(struct proto_buf *b)
{
	if (b->data != NULL) {
		OPENSSL_cleanse(b->data, b->len);
	}
	b->len = 0;
	b->failed = 0;
}

int
proto_buf_fail(struct proto_buf *b, int err)
{
	if (b->failed == 0) {
		b->failed = err;
	}
	return b->failed;
}

/* Makes room for n more bytes and returns where they go, or NULL with b->failed set. */
uint8_t *
proto_buf_reserve(struct proto_buf *b, size_t n)
{
	size_t max = b->max != 0 ? b->max : PROTO_MAX_FRAME_CAP;
	size_t want, ncap;
	uint8_t *nd;

	if (b->failed != 0) {
		return NULL;
	}
	if (n > max || b->len > max - n) {
		proto_buf_fail(b, PROTO_ERR_TOO_LARGE);
		return NULL;
	}
	want = b->len + n;
	if (want > b->cap) {
		ncap = b->cap < 256 ? 256 : b->cap;
		while (ncap < want) {
			ncap = ncap > max / 2 ? max : ncap * 2;
		}
		/* Not realloc(): the old block may hold a PIN and must be wiped before it is
		 * given back. */
		if ((nd = malloc(ncap)) == NULL) {
			proto_buf_fail(b, PROTO_ERR_NOMEM);
			return NULL;
		}
		if (b->data != NULL) {
			memcpy(nd, b->data, b->len);
			OPENSSL_cleanse(b->data, b->cap);
			free(b->data);
		}
		b->data = nd;
		b->cap = ncap;
	}
	nd = b->data + b->len;
	b->len += n;
	return nd;
}

int
proto_put_raw(struct proto_buf *b, const void *p, size_t len)
{
	uint8_t *d;

	if (p == NULL && len != 0) {
		return proto_buf_fail(b, PROTO_ERR_BAD_VALUE);
	}
	if ((d = proto_buf_reserve(b, len)) == NULL) {
		return b->failed;
	}
	if (len != 0) {
		memcpy(d, p, len);
	}
	return 0;
}

int
proto_put_u8(struct proto_buf *b, uint8_t v)
{
	return proto_put_raw(b, &v, 1);
}

int
proto_put_u16(struct proto_buf *b, uint16_t v)
{
	uint8_t d[2] = {(uint8_t)(v >> 8), (uint8_t)v};

	return proto_put_raw(b, d, sizeof(d));
}

int
proto_put_u32(struct proto_buf *b, uint32_t v)
{
	uint8_t d[4];

	proto_be32_write(d, v);
	return proto_put_raw(b, d, sizeof(d));
}

int
proto_put_u64(struct proto_buf *b, uint64_t v)
{
	uint8_t d[8];
	int i;

	for (i = 7; i >= 0; i--) {
		d[i] = (uint8_t)v;
		v >>= 8;
	}
	return proto_put_raw(b, d, sizeof(d));
}

int
proto_put_ulong(struct proto_buf *b, CK_ULONG v)
{
	/* Explicit so that a 32-bit CK_UNAVAILABLE_INFORMATION (0xffffffff) still means
	 * "unavailable" to a 64-bit peer. */
	if (v == CK_UNAVAILABLE_INFORMATION) {
		return proto_put_u64(b, UINT64_MAX);
	}
	return proto_put_u64(b, (uint64_t)v);
}

int
proto_put_bytes(struct proto_buf *b, const void *p, size_t len)
{
	int r;

	if (len > UINT32_MAX) {
		return proto_buf_fail(b, PROTO_ERR_TOO_LARGE);
	}
	if (p == NULL && len != 0) {
		return proto_buf_fail(b, PROTO_ERR_BAD_VALUE);
	}
	if ((r = proto_put_u32(b, (uint32_t)len)) != 0 || (r = proto_put_raw(b, p, len)) != 0) {
		return r;
	}
	return 0;
}

int
proto_put_string(struct proto_buf *b, const char *s)
{
	size_t len;

	if (s == NULL) {
		s = "";
	}
	len = strnlen(s, PROTO_MAX_STRING + 1);
	if (len > PROTO_MAX_STRING) {
		return proto_buf_fail(b, PROTO_ERR_TOO_LARGE);
	}
	return proto_put_bytes(b, s, len);
}

void
proto_be32_write(uint8_t *d, uint32_t v)
{
	d[0] = (uint8_t)(v >> 24);
	d[1] = (uint8_t)(v >> 16);
	d[2] = (uint8_t)(v >> 8);
	d[3] = (uint8_t)v;
}

uint32_t
proto_be32_read(const uint8_t *d)
{
	return (uint32_t)d[0] << 24 | (uint32_t)d[1] << 16 | (uint32_t)d[2] << 8 | d[3];
}

uint64_t
proto_be64_read(const uint8_t *d)
{
	return (uint64_t)proto_be32_read(d) << 32 | proto_be32_read(d + 4);
}

/* ---- reader ------------------------------------------------------------------------- */

static const uint8_t proto_empty[1];

void
proto_cur_init(struct proto_cur *c, const void *p, size_t len)
{
	c->p = p != NULL ? p : proto_empty;
	c->len = p != NULL ? len : 0;
}

int
proto_get_raw(struct proto_cur *c, void *out, size_t len)
{
	if (len != 0) {
		memset(out, 0, len);
	}
	if (len > c->len) {
		return PROTO_ERR_TRUNCATED;
	}
	if (len != 0) {
		memcpy(out, c->p, len);
	}
	c->p += len;
	c->len -= len;
	return 0;
}

int
proto_get_u8(struct proto_cur *c, uint8_t *v)
{
	return proto_get_raw(c, v, 1);
}

int
proto_get_u16(struct proto_cur *c, uint16_t *v)
{
	uint8_t d[2];
	int r;

	*v = 0;
	if ((r = proto_get_raw(c, d, sizeof(d))) != 0) {
		return r;
	}
	*v = (uint16_t)(d[0] << 8 | d[1]);
	return 0;
}

int
proto_get_u32(struct proto_cur *c, uint32_t *v)
{
	uint8_t d[4];
	int r;

	*v = 0;
	if ((r = proto_get_raw(c, d, sizeof(d))) != 0) {
		return r;
	}
	*v = proto_be32_read(d);
	return 0;
}

int
proto_get_u64(struct proto_cur *c, uint64_t *v)
{
	uint8_t d[8];
	int r;

	*v = 0;
	if ((r = proto_get_raw(c, d, sizeof(d))) != 0) {
		return r;
	}
	*v = proto_be64_read(d);
	return 0;
}

int
proto_get_ulong(struct proto_cur *c, CK_ULONG *v)
{
	struct proto_cur t = *c;
	uint64_t u;
	int r;

	*v = 0;
	if ((r = proto_get_u64(&t, &u)) != 0) {
		return r;
	}
	if (u == UINT64_MAX) {
		*v = CK_UNAVAILABLE_INFORMATION;
	} else if ((uint64_t)(CK_ULONG)u != u || (CK_ULONG)u == CK_UNAVAILABLE_INFORMATION) {
		/* Only reachable where CK_ULONG is 32 bits. */
		return PROTO_ERR_BAD_VALUE;
	} else {
		*v = (CK_ULONG)u;
	}
	*c = t;
	return 0;
}

int
proto_get_bool(struct proto_cur *c, int *v)
{
	struct proto_cur t = *c;
	uint8_t u;
	int r;

	*v = 0;
	if ((r = proto_get_u8(&t, &u)) != 0) {
		return r;
	}
	if (u > 1) {
		return PROTO_ERR_BAD_VALUE;
	}
	*v = u;
	*c = t;
	return 0;
}

int
proto_get_bytes_ref(struct proto_cur *c, const uint8_t **p, size_t *len, size_t cap)
{
	struct proto_cur t = *c;
	uint32_t n;
	int r;

	*p = NULL;
	*len = 0;
	if ((r = proto_get_u32(&t, &n)) != 0) {
		return r;
	}
	if (n > cap) {
		return PROTO_ERR_TOO_LARGE;
	}
	if (n > t.len) {
		return PROTO_ERR_TRUNCATED;
	}
	*p = t.p;
	*len = n;
	t.p += n;
	t.len -= n;
	*c = t;
	return 0;
}

int
proto_get_string(struct proto_cur *c, char *out, size_t outsz)
{
	struct proto_cur t = *c;
	const uint8_t *p;
	size_t len, cap;
	int r;

	if (outsz == 0) {
		return PROTO_ERR_TOO_LARGE;
	}
	memset(out, 0, outsz);
	cap = outsz - 1 < PROTO_MAX_STRING ? outsz - 1 : PROTO_MAX_STRING;
	if ((r = proto_get_bytes_ref(&t, &p, &len, cap)) != 0) {
		return r;
	}
	if (memchr(p, '\0', len) != NULL) {
		return PROTO_ERR_BAD_VALUE;
	}
	memcpy(out, p, len);
	*c = t;
	return 0;
}

int
proto_cur_end(const struct proto_cur *c)
{
	return c->len == 0 ? 0 : PROTO_ERR_TRAILING;
}
