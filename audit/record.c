/*
 * audit/record.c — the stored record line, its parser, segment names and the reader that
 * walks a log directory's segments in order.
 *
 *   line  = "GWA1" SP seq SP time_ns SP type TAB payload TAB leaf_hex SP chain_hex LF
 *   entry = the line up to (not including) its second TAB
 *   leaf  = SHA-256(0x00 || entry)                       RFC 6962 §2.1 leaf hash
 *   chain = SHA-256(0x02 || chain[seq-1] || leaf)        chain[-1] = 32 zero bytes
 *
 * The entry covers seq, time and type as well as the payload, so none of them can change
 * without changing the leaf. Verifiers hash the entry bytes as stored and never
 * re-serialise the payload.
 */
#include "audit/aud_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int
type_ok(char t)
{
	switch (t) {
	case 'E':
	case 'C':
	case 'S':
	case 'R':
	case 'K':
		return 1;
	default:
		return 0;
	}
}

int
aud_record_is_event(char type)
{
	return type == 'E' || type == 'S' || type == 'R';
}

/* Canonical decimal of v into out (at least 20 bytes); returns the number of digits. */
static size_t
put_u64(char *out, uint64_t v)
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

int
aud_record_format(struct aud_buf *b, uint64_t seq, uint64_t time_ns, char type, const char *payload,
                  size_t payload_len, const uint8_t prev_chain[AUD_HASH_LEN],
                  uint8_t leaf[AUD_HASH_LEN], uint8_t chain[AUD_HASH_LEN])
{
	/* "GWA1 " seq " " time " " type "\t": 5 + 20 + 1 + 20 + 3 */
	char head[56], tail[1 + 2 * AUD_HASH_LEN + 1 + 2 * AUD_HASH_LEN + 1 + 1]; /* + NUL */
	size_t start = b->len, h;
	int r;

	if (!type_ok(type) || payload_len == 0) {
		return AUD_ERR_INVALID;
	}
	if (payload_len > AUD_MAX_PAYLOAD) {
		return AUD_ERR_TOO_LARGE;
	}
	/* A payload with a TAB, LF or other control byte would break the line grammar. */
	if (!aud_text_ok(payload, payload_len)) {
		return AUD_ERR_INVALID;
	}
	/* The log formats every record under its lock: no printf, three copies in all. */
	memcpy(head, AUD_MAGIC " ", 5);
	h = 5 + put_u64(head + 5, seq);
	head[h++] = ' ';
	h += put_u64(head + h, time_ns);
	head[h++] = ' ';
	head[h++] = type;
	head[h++] = '\t';
	if ((r = aud_buf_put(b, head, h)) != 0 || (r = aud_buf_put(b, payload, payload_len)) != 0) {
		return r;
	}
	aud_hash_leaf(b->data + start, b->len - start, leaf);
	aud_hash_chain(prev_chain, leaf, chain);
	tail[0] = '\t';
	aud_hex_encode(leaf, AUD_HASH_LEN, tail + 1);
	tail[1 + 2 * AUD_HASH_LEN] = ' ';
	aud_hex_encode(chain, AUD_HASH_LEN, tail + 2 + 2 * AUD_HASH_LEN);
	tail[sizeof(tail) - 2] = '\n'; /* over the hex encoder's NUL */
	return aud_buf_put(b, tail, sizeof(tail) - 1);
}

int
aud_record_parse(const char *line, size_t len, struct aud_record_view *rec)
{
	struct aud_cur c;
	const char *payload;
	size_t plen;
	uint8_t t;
	int r;

	memset(rec, 0, sizeof(*rec));
	if (line == NULL || len > AUD_MAX_LINE) {
		return AUD_ERR_MALFORMED;
	}
	aud_cur_init(&c, line, len);
	if ((r = aud_cur_lit(&c, AUD_MAGIC " ")) != 0 || (r = aud_cur_u64(&c, &rec->seq)) != 0 ||
	    (r = aud_cur_lit(&c, " ")) != 0 || (r = aud_cur_u64(&c, &rec->time_ns)) != 0 ||
	    (r = aud_cur_lit(&c, " ")) != 0 || (r = aud_cur_byte(&c, &t)) != 0 ||
	    (r = aud_cur_lit(&c, "\t")) != 0 ||
	    (r = aud_cur_until(&c, '\t', &payload, &plen, AUD_MAX_PAYLOAD)) != 0 ||
	    (r = aud_cur_hex(&c, rec->leaf, AUD_HASH_LEN)) != 0 ||
	    (r = aud_cur_lit(&c, " ")) != 0 ||
	    (r = aud_cur_hex(&c, rec->chain, AUD_HASH_LEN)) != 0 || (r = aud_cur_end(&c)) != 0) {
		goto fail;
	}
	if (!type_ok((char)t) || !aud_text_ok(payload, plen)) {
		goto fail;
	}
	rec->type = (char)t;
	rec->entry = line;
	rec->entry_len = (size_t)(payload + plen - line);
	rec->payload = payload;
	rec->payload_len = plen;
	return 0;
fail:
	memset(rec, 0, sizeof(*rec));
	return AUD_ERR_MALFORMED;
}

void
aud_record_leaf(const struct aud_record_view *rec, uint8_t leaf[AUD_HASH_LEN])
{
	aud_hash_leaf(rec->entry, rec->entry_len, leaf);
}

/* ---- segment names -------------------------------------------------------------------- */

void
aud_segment_name(uint64_t first, char out[64])
{
	snprintf(out, 64, AUD_SEG_PREFIX "%020llu" AUD_SEG_SUFFIX, (unsigned long long)first);
}

int
aud_segment_parse(const char *name, uint64_t *first)
{
	size_t plen = strlen(AUD_SEG_PREFIX), slen = strlen(AUD_SEG_SUFFIX);
	struct aud_cur c;
	uint64_t v = 0;
	size_t i;

	*first = 0;
	if (strlen(name) != plen + AUD_SEG_DIGITS + slen ||
	    strcmp(name + plen + AUD_SEG_DIGITS, AUD_SEG_SUFFIX) != 0) {
		return 0;
	}
	aud_cur_init(&c, name, plen);
	if (aud_cur_lit(&c, AUD_SEG_PREFIX) != 0) {
		return 0;
	}
	for (i = 0; i < AUD_SEG_DIGITS; i++) {
		char ch = name[plen + i];

		if (ch < '0' || ch > '9' || v > (UINT64_MAX - 9) / 10) {
			return 0;
		}
		v = v * 10 + (uint64_t)(ch - '0');
	}
	*first = v;
	return 1;
}

/* ---- reader --------------------------------------------------------------------------- */

#define READ_CHUNK (256u * 1024)

struct aud_reader {
	char *dir;
	uint64_t *segs; /* first seq of each segment, sorted */
	size_t nsegs;
	size_t cur; /* index into segs of the open segment */
	int fd;
	char *buf; /* buf[start..end) unread bytes of the open segment */
	size_t start, end, cap;
	uint64_t line_no;
};

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int
reader_scan(struct aud_reader *r)
{
	DIR *d = opendir(r->dir);
	struct dirent *de;
	uint64_t *v = NULL, first;
	size_t n = 0, cap = 0;

	if (d == NULL) {
		return AUD_ERR_IO;
	}
	while ((de = readdir(d)) != NULL) {
		if (!aud_segment_parse(de->d_name, &first)) {
			continue;
		}
		if (n == cap) {
			uint64_t *nv = realloc(v, (cap = cap ? 2 * cap : 16) * sizeof(*v));

			if (nv == NULL) {
				free(v);
				closedir(d);
				return AUD_ERR_NOMEM;
			}
			v = nv;
		}
		v[n++] = first;
	}
	closedir(d);
	if (n > 1) {
		qsort(v, n, sizeof(*v), cmp_u64);
	}
	free(r->segs);
	r->segs = v;
	r->nsegs = n;
	return 0;
}

int
aud_reader_open(struct aud_reader **rp, const char *dir)
{
	struct aud_reader *r;
	int e;

	*rp = NULL;
	if ((r = calloc(1, sizeof(*r))) == NULL) {
		return AUD_ERR_NOMEM;
	}
	r->fd = -1;
	r->cap = AUD_MAX_LINE + READ_CHUNK;
	if ((r->dir = strdup(dir)) == NULL || (r->buf = malloc(r->cap)) == NULL) {
		aud_reader_free(r);
		return AUD_ERR_NOMEM;
	}
	if ((e = reader_scan(r)) != 0) {
		aud_reader_free(r);
		return e;
	}
	r->cur = SIZE_MAX;
	*rp = r;
	return 0;
}

void
aud_reader_free(struct aud_reader *r)
{
	if (r == NULL) {
		return;
	}
	if (r->fd >= 0) {
		close(r->fd);
	}
	free(r->dir);
	free(r->segs);
	free(r->buf);
	free(r);
}

static int
reader_open_seg(struct aud_reader *r, size_t idx)
{
	char name[64], path[4096];

	if (r->fd >= 0) {
		close(r->fd);
		r->fd = -1;
	}
	aud_segment_name(r->segs[idx], name);
	snprintf(path, sizeof(path), "%s/%s", r->dir, name);
	if ((r->fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		return AUD_ERR_IO;
	}
	r->cur = idx;
	r->start = r->end = 0;
	return 0;
}

int
aud_reader_next(struct aud_reader *r, const char **line, size_t *len, uint64_t *seg_first,
                uint64_t *line_no, size_t *torn)
{
	int e;

	*line = NULL;
	*len = 0;
	if (torn != NULL) {
		*torn = 0;
	}
	for (;;) {
		char *nl;
		ssize_t n;

		if (r->fd >= 0) {
			nl = memchr(r->buf + r->start, '\n', r->end - r->start);
			if (nl != NULL) {
				*line = r->buf + r->start;
				*len = (size_t)(nl - *line);
				r->start = (size_t)(nl - r->buf) + 1;
				*seg_first = r->segs[r->cur];
				*line_no = r->line_no++;
				return *len > AUD_MAX_LINE ? AUD_ERR_TOO_LARGE : 0;
			}
			if (r->end - r->start > AUD_MAX_LINE) {
				return AUD_ERR_TOO_LARGE;
			}
			/* Keep the partial line, read more behind it. */
			memmove(r->buf, r->buf + r->start, r->end - r->start);
			r->end -= r->start;
			r->start = 0;
			do {
				n = read(r->fd, r->buf + r->end, r->cap - r->end);
			} while (n < 0 && errno == EINTR);
			if (n < 0) {
				return AUD_ERR_IO;
			}
			if (n > 0) {
				r->end += (size_t)n;
				continue;
			}
			/* End of this segment. A later segment means this one is finished; any
			 * unterminated bytes left are a torn line. */
			if (r->cur + 1 >= r->nsegs && (e = reader_scan(r)) != 0) {
				return e;
			}
			if (r->cur + 1 >= r->nsegs) {
				if (torn != NULL) {
					*torn = r->end - r->start;
				}
				return AUD_ERR_EOF;
			}
			if (r->end > r->start && torn != NULL) {
				*torn = r->end - r->start;
			}
			if ((e = reader_open_seg(r, r->cur + 1)) != 0) {
				return e;
			}
			continue;
		}
		if (r->cur == SIZE_MAX) {
			if (r->nsegs == 0 && (e = reader_scan(r)) != 0) {
				return e;
			}
			if (r->nsegs == 0) {
				return AUD_ERR_EOF;
			}
			if ((e = reader_open_seg(r, 0)) != 0) {
				return e;
			}
			continue;
		}
		return AUD_ERR_EOF;
	}
}
