/*
 * audit/util.c — aud_strerror(), the bounds-checked cursor every audit parser reads
 * through, hashing with RFC 6962's domain bytes, base64/hex, time and the output buffer.
 *
 * Cursor getters check the remaining length before they look at a byte and only advance
 * when they succeed, so a failed read leaves the cursor unchanged (STYLE 8).
 */
/* SHA256_Init/Update/Final: see aud_sha256(). */
#define OPENSSL_SUPPRESS_DEPRECATED
#include "audit/aud_int.h"

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *
aud_strerror(int err)
{
	switch (err) {
	case AUD_OK:
		return "success";
	case AUD_ERR_NOMEM:
		return "out of memory";
	case AUD_ERR_INVALID:
		return "invalid argument";
	case AUD_ERR_TOO_LARGE:
		return "over its size limit";
	case AUD_ERR_MALFORMED:
		return "malformed record, note or proof";
	case AUD_ERR_IO:
		return "I/O error";
	case AUD_ERR_FAILED:
		return "audit log has failed (fail closed); reopen it";
	case AUD_ERR_CLOSED:
		return "audit log is closing";
	case AUD_ERR_CRYPTO:
		return "cryptographic operation failed";
	case AUD_ERR_KEY:
		return "bad or missing Ed25519 key";
	case AUD_ERR_TAMPER:
		return "audit log damaged beyond a torn final line";
	case AUD_ERR_VERIFY:
		return "audit log verification failed";
	case AUD_ERR_EOF:
		return "end of log";
	case AUD_ERR_SIGNATURE:
		return "signature does not verify";
	case AUD_ERR_LOCKED:
		return "audit log is open in another process";
	case AUD_ERR_RANGE:
		return "sequence number or size out of range";
	case AUD_ERR_KEY_NOT_CURRENT:
		return "the signing key is not the key in force in the audit log "
		       "(a new key must be announced with hsmgate-audit rotate-key)";
	default:
		return "unknown error";
	}
}

/* ---- cursor --------------------------------------------------------------------------- */

void
aud_cur_init(struct aud_cur *c, const void *p, size_t len)
{
	c->p = p;
	c->len = p != NULL ? len : 0;
}

int
aud_cur_lit(struct aud_cur *c, const char *lit)
{
	size_t n = strlen(lit);

	if (n > c->len || memcmp(c->p, lit, n) != 0) {
		return AUD_ERR_MALFORMED;
	}
	c->p += n;
	c->len -= n;
	return 0;
}

int
aud_cur_u64(struct aud_cur *c, uint64_t *v)
{
	uint64_t x = 0;
	size_t i = 0;

	*v = 0;
	while (i < c->len && c->p[i] >= '0' && c->p[i] <= '9') {
		unsigned d = (unsigned)(c->p[i] - '0');

		if (i == 1 && c->p[0] == '0') {
			return AUD_ERR_MALFORMED; /* leading zero: not canonical */
		}
		if (x > (UINT64_MAX - d) / 10) {
			return AUD_ERR_MALFORMED;
		}
		x = x * 10 + d;
		i++;
	}
	if (i == 0) {
		return AUD_ERR_MALFORMED;
	}
	*v = x;
	c->p += i;
	c->len -= i;
	return 0;
}

int
aud_cur_until(struct aud_cur *c, char delim, const char **s, size_t *len, size_t cap)
{
	const uint8_t *d;
	size_t n;

	*s = NULL;
	*len = 0;
	d = memchr(c->p, (unsigned char)delim, c->len);
	if (d == NULL) {
		return AUD_ERR_MALFORMED;
	}
	n = (size_t)(d - c->p);
	if (n == 0 || n > cap) {
		return n == 0 ? AUD_ERR_MALFORMED : AUD_ERR_TOO_LARGE;
	}
	*s = (const char *)c->p;
	*len = n;
	c->p += n + 1;
	c->len -= n + 1;
	return 0;
}

int
aud_cur_byte(struct aud_cur *c, uint8_t *b)
{
	*b = 0;
	if (c->len < 1) {
		return AUD_ERR_MALFORMED;
	}
	*b = c->p[0];
	c->p++;
	c->len--;
	return 0;
}

/* A hex digit's value + 1; 0 for anything else (upper case is not canonical). A table:
 * every record's two hashes are read through here, by the verifier and every reader. */
static const uint8_t hexval1[256] = {
        ['0'] = 1,  ['1'] = 2,  ['2'] = 3,  ['3'] = 4,  ['4'] = 5,  ['5'] = 6,
        ['6'] = 7,  ['7'] = 8,  ['8'] = 9,  ['9'] = 10, ['a'] = 11, ['b'] = 12,
        ['c'] = 13, ['d'] = 14, ['e'] = 15, ['f'] = 16,
};

int
aud_cur_hex(struct aud_cur *c, uint8_t *out, size_t n)
{
	unsigned bad = 0;
	size_t i;

	memset(out, 0, n);
	if (n > c->len / 2) {
		return AUD_ERR_MALFORMED;
	}
	for (i = 0; i < n; i++) {
		unsigned hi = hexval1[c->p[2 * i]], lo = hexval1[c->p[2 * i + 1]];

		bad |= (hi == 0) | (lo == 0);
		out[i] = (uint8_t)((hi - 1) << 4 | (lo - 1));
	}
	if (bad) {
		memset(out, 0, n);
		return AUD_ERR_MALFORMED;
	}
	c->p += 2 * n;
	c->len -= 2 * n;
	return 0;
}

int
aud_cur_end(const struct aud_cur *c)
{
	return c->len == 0 ? 0 : AUD_ERR_MALFORMED;
}

size_t
aud_u64_dec(char *out, uint64_t v)
{
	char d[20];
	size_t i = sizeof(d);

	do {
		d[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	memcpy(out, d + i, sizeof(d) - i);
	return sizeof(d) - i;
}

void
aud_hex_encode(const uint8_t *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

int
aud_hex_decode(const char *in, size_t len, uint8_t *out, size_t n)
{
	struct aud_cur c;
	int r;

	if (len != 2 * n) {
		memset(out, 0, n);
		return AUD_ERR_MALFORMED;
	}
	aud_cur_init(&c, in, len);
	if ((r = aud_cur_hex(&c, out, n)) != 0) {
		return r;
	}
	return aud_cur_end(&c);
}

/* ---- hashing -------------------------------------------------------------------------- */

void
aud_sha256(const void *a, size_t alen, const void *b, size_t blen, uint8_t out[AUD_HASH_LEN])
{
	SHA256_CTX ctx;

	/* The low-level SHA256_* calls are deprecated in OpenSSL 3 but cost a third of
	 * EVP_Digest* per small message, and the log hashes twice per record. */
	SHA256_Init(&ctx);
	SHA256_Update(&ctx, a, alen);
	if (blen > 0) {
		SHA256_Update(&ctx, b, blen);
	}
	SHA256_Final(out, &ctx);
}

void
aud_hash_leaf(const void *entry, size_t len, uint8_t out[AUD_HASH_LEN])
{
	static const uint8_t dom =
	        AUD_DOMAIN_LEAF; /* RFC 6962 §2.1: MTH({d}) = SHA-256(0x00 || d) */

	aud_sha256(&dom, 1, entry, len, out);
}

void
aud_hash_node(const uint8_t l[AUD_HASH_LEN], const uint8_t r[AUD_HASH_LEN],
              uint8_t out[AUD_HASH_LEN])
{
	uint8_t buf[1 + 2 * AUD_HASH_LEN];

	buf[0] = AUD_DOMAIN_NODE; /* RFC 6962 §2.1: SHA-256(0x01 || left || right) */
	memcpy(buf + 1, l, AUD_HASH_LEN);
	memcpy(buf + 1 + AUD_HASH_LEN, r, AUD_HASH_LEN);
	aud_sha256(buf, sizeof(buf), NULL, 0, out);
}

void
aud_hash_chain(const uint8_t prev[AUD_HASH_LEN], const uint8_t leaf[AUD_HASH_LEN],
               uint8_t out[AUD_HASH_LEN])
{
	uint8_t buf[1 + 2 * AUD_HASH_LEN];

	/* Its own domain byte so that no chain value is ever also a Merkle node. */
	buf[0] = AUD_DOMAIN_CHAIN;
	memcpy(buf + 1, prev, AUD_HASH_LEN);
	memcpy(buf + 1 + AUD_HASH_LEN, leaf, AUD_HASH_LEN);
	aud_sha256(buf, sizeof(buf), NULL, 0, out);
}

/* ---- base64 --------------------------------------------------------------------------- */

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int
aud_b64_encode(const uint8_t *in, size_t n, char **out, size_t *outlen)
{
	size_t olen = 4 * ((n + 2) / 3), i, o = 0;
	char *s;

	*out = NULL;
	*outlen = 0;
	if ((s = malloc(olen + 1)) == NULL) {
		return AUD_ERR_NOMEM;
	}
	for (i = 0; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];

		s[o++] = b64chars[v >> 18];
		s[o++] = b64chars[(v >> 12) & 63];
		s[o++] = b64chars[(v >> 6) & 63];
		s[o++] = b64chars[v & 63];
	}
	if (i < n) {
		uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0);

		s[o++] = b64chars[v >> 18];
		s[o++] = b64chars[(v >> 12) & 63];
		s[o++] = i + 1 < n ? b64chars[(v >> 6) & 63] : '=';
		s[o++] = '=';
	}
	s[o] = '\0';
	*out = s;
	*outlen = o;
	return 0;
}

static int
b64val(char ch)
{
	const char *p;

	if (ch == '\0' || (p = strchr(b64chars, ch)) == NULL) {
		return -1;
	}
	return (int)(p - b64chars);
}

int
aud_b64_decode(const char *in, size_t len, uint8_t *out, size_t cap, size_t *outlen)
{
	size_t i, o = 0, need;

	*outlen = 0;
	if (len % 4 != 0) {
		return AUD_ERR_MALFORMED;
	}
	need = len / 4 * 3;
	if (len > 0 && in[len - 1] == '=') {
		need--;
	}
	if (len > 1 && in[len - 2] == '=') {
		need--;
	}
	if (need > cap) {
		return AUD_ERR_TOO_LARGE;
	}
	for (i = 0; i < len; i += 4) {
		int a = b64val(in[i]), b = b64val(in[i + 1]), c, d;
		int last = i + 4 == len;
		uint32_t v;

		c = last && in[i + 2] == '=' && in[i + 3] == '=' ? -2 : b64val(in[i + 2]);
		d = last && in[i + 3] == '=' ? -2 : b64val(in[i + 3]);
		if (a < 0 || b < 0 || c == -1 || d == -1 || (c == -2 && d != -2)) {
			return AUD_ERR_MALFORMED;
		}
		v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)(c < 0 ? 0 : c) << 6 |
		    (uint32_t)(d < 0 ? 0 : d);
		/* Canonical: the bits under the padding must be zero. */
		if ((c == -2 && (v & 0xffff) != 0) || (d == -2 && (v & 0xff) != 0)) {
			return AUD_ERR_MALFORMED;
		}
		out[o++] = (uint8_t)(v >> 16);
		if (c != -2) {
			out[o++] = (uint8_t)(v >> 8);
		}
		if (d != -2) {
			out[o++] = (uint8_t)v;
		}
	}
	*outlen = o;
	return 0;
}

/* ---- time and text -------------------------------------------------------------------- */

uint64_t
aud_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t
aud_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static char *
put2(char *p, unsigned v)
{
	p[0] = (char)('0' + v / 10);
	p[1] = (char)('0' + v % 10);
	return p + 2;
}

void
aud_time_format(uint64_t unix_ns, char out[32])
{
	uint64_t secs = unix_ns / 1000000000u, z, era, doe, yoe, doy, mp, y;
	unsigned cs = (unsigned)(unix_ns % 1000000000u / 10000000u), sod, m, d;
	char *p = out;

	/* Once per event, so without gmtime_r (which takes glibc's tz lock) and snprintf: the
	 * proleptic Gregorian date from days since 1970-01-01 by H. Hinnant's days_from_civil
	 * inverse ("chrono-Compatible Low-Level Date Algorithms", civil_from_days), exact for
	 * every uint64_t of ns (years 1970..2554). */
	sod = (unsigned)(secs % 86400u);
	z = secs / 86400u + 719468u;
	era = z / 146097u;
	doe = z - era * 146097u;
	yoe = (doe - doe / 1460u + doe / 36524u - doe / 146096u) / 365u;
	doy = doe - (365u * yoe + yoe / 4u - yoe / 100u);
	mp = (5u * doy + 2u) / 153u;
	d = (unsigned)(doy - (153u * mp + 2u) / 5u + 1u);
	m = (unsigned)(mp < 10u ? mp + 3u : mp - 9u);
	y = yoe + era * 400u + (m <= 2u);
	/* Activity Tracker's own format (Java yyyy-MM-dd'T'HH:mm:ss.SSZ): two fractional
	 * digits and no colon in the offset — not RFC 3339. */
	p = put2(p, (unsigned)(y / 100u));
	p = put2(p, (unsigned)(y % 100u));
	*p++ = '-';
	p = put2(p, m);
	*p++ = '-';
	p = put2(p, d);
	*p++ = 'T';
	p = put2(p, sod / 3600u);
	*p++ = ':';
	p = put2(p, sod / 60u % 60u);
	*p++ = ':';
	p = put2(p, sod % 60u);
	*p++ = '.';
	p = put2(p, cs);
	memcpy(p, "+0000", 6);
}

/* Non-zero if one of the 8 bytes in v is outside printable ASCII 0x20..0x7e. Bit tricks from
 * "Bit Twiddling Hacks" (hasless, haszero), exact here because a byte with its high bit set
 * is flagged by the first term. */
static uint64_t
ascii8_bad(uint64_t v)
{
	const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
	uint64_t del = v ^ (ones * 0x7f);

	return (v & highs) | ((v - ones * 0x20) & ~v & highs) | ((del - ones) & ~del & highs);
}

int
aud_text_ok(const char *s, size_t len)
{
	const uint8_t *p = (const uint8_t *)s;
	size_t i = 0;

	while (i < len) {
		uint8_t c = p[i];
		size_t n, k;
		uint32_t cp;
		uint64_t v[4];

		/* Every event's JSON passes here, in the log and in each reader: take printable
		 * ASCII, nearly all of it, 32 and then 8 bytes at a time. */
		if (len - i >= 32) {
			memcpy(v, p + i, 32);
			if ((ascii8_bad(v[0]) | ascii8_bad(v[1]) | ascii8_bad(v[2]) |
			     ascii8_bad(v[3])) == 0) {
				i += 32;
				continue;
			}
		}
		if (len - i >= 8) {
			memcpy(v, p + i, 8);
			if (ascii8_bad(v[0]) == 0) {
				i += 8;
				continue;
			}
		}

		if (c < 0x80) {
			if (c < 0x20 || c == 0x7f) {
				return 0;
			}
			i++;
			continue;
		}
		if ((c & 0xe0) == 0xc0) {
			n = 1;
			cp = c & 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			n = 2;
			cp = c & 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			n = 3;
			cp = c & 0x07;
		} else {
			return 0;
		}
		if (n > len - i - 1) {
			return 0;
		}
		for (k = 1; k <= n; k++) {
			if ((p[i + k] & 0xc0) != 0x80) {
				return 0;
			}
			cp = cp << 6 | (p[i + k] & 0x3f);
		}
		/* Overlong forms, surrogates and values past U+10FFFF are not UTF-8 (RFC 3629 §3);
		 * C1 controls are refused like C0. */
		if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
		    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff || (cp >= 0x80 && cp < 0xa0)) {
			return 0;
		}
		i += n + 1;
	}
	return 1;
}

/* ---- buffer --------------------------------------------------------------------------- */

void
aud_buf_free(struct aud_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

static int
buf_reserve(struct aud_buf *b, size_t n)
{
	size_t cap;
	char *d;

	if (b->failed != 0) {
		return b->failed;
	}
	if (n <= b->cap - b->len) {
		return 0;
	}
	if (n > SIZE_MAX / 2 - b->len) {
		return b->failed = AUD_ERR_NOMEM;
	}
	cap = b->cap < 256 ? 256 : b->cap;
	while (cap - b->len < n + 1) {
		cap *= 2;
	}
	if ((d = realloc(b->data, cap)) == NULL) {
		return b->failed = AUD_ERR_NOMEM;
	}
	b->data = d;
	b->cap = cap;
	return 0;
}

int
aud_buf_put(struct aud_buf *b, const void *p, size_t n)
{
	int r;

	if ((r = buf_reserve(b, n + 1)) != 0) {
		return r;
	}
	if (n > 0) {
		memcpy(b->data + b->len, p, n);
	}
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int
aud_buf_puts(struct aud_buf *b, const char *s)
{
	return aud_buf_put(b, s, strlen(s));
}

int
aud_buf_printf(struct aud_buf *b, const char *fmt, ...)
{
	char tmp[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	/* Only short, internal formats go through here (numbers, fixed names). */
	if (n < 0 || (size_t)n >= sizeof(tmp)) {
		return b->failed = AUD_ERR_TOO_LARGE;
	}
	return aud_buf_put(b, tmp, (size_t)n);
}

int
aud_buf_json_str(struct aud_buf *b, const char *s)
{
	const char *run = s;

	(void)aud_buf_put(b, "\"", 1);
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		char esc[8];

		if (c >= 0x20 && c != '"' && c != '\\' && c != 0x7f) {
			continue;
		}
		(void)aud_buf_put(b, run, (size_t)(s - run));
		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			esc[2] = '\0';
		} else {
			snprintf(esc, sizeof(esc), "\\u%04x", c);
		}
		(void)aud_buf_puts(b, esc);
		run = s + 1;
	}
	(void)aud_buf_put(b, run, (size_t)(s - run));
	return aud_buf_put(b, "\"", 1);
}
