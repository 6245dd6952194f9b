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
 *
 * The active segment is preallocated with zeros ahead of its data (log.c), so a NUL byte
 * where a line starts — or inside an unterminated final line — marks the end of the data
 * written so far, as EOF does, provided every byte from there to EOF is NUL (AUDIT.md §2).
 * Anything else after that NUL is damage: the reader reports AUD_ERR_TAMPER and
 * aud_reader_pos() says where — except, for a reader of a log at rest (aud_reader_at_rest),
 * the shape a power loss gives the writer's last write (torn_write()), which ends the data
 * as a torn final line does.
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
	h = 5 + aud_u64_dec(head + 5, seq);
	head[h++] = ' ';
	h += aud_u64_dec(head + h, time_ns);
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
/* The unit a disk persists whole (torn_write()): 512, the smallest logical block size. */
#define AUD_SECTOR 512u

struct aud_reader {
	char *dir;
	uint64_t *segs; /* first seq of each segment, sorted */
	size_t nsegs;
	size_t cur; /* index into segs of the open segment */
	int fd;
	char *buf; /* buf[start..end) unread bytes of the open segment */
	size_t start, end, cap;
	uint64_t off; /* file offset of buf[end] */
	uint64_t zok; /* the open segment's bytes from the data's end up to zok were NUL */
	uint64_t line_no;
	int at_rest;              /* aud_reader_at_rest(): NULs then data may be a torn write */
	int gap;                  /* zero_tail() found such a torn write: */
	uint64_t gap_at, gap_end; /* its first NUL, and the end of its last byte that is not */
};

/* What follows the first NUL at a line start or inside the final line (zero_tail()). */
enum ztail {
	ZT_EOF,    /* nothing: the file ends there (a segment truncated meanwhile) */
	ZT_ZERO,   /* NUL bytes up to EOF: the end of the data written so far */
	ZT_DATA,   /* the byte there is no longer NUL: the writer wrote it meanwhile */
	ZT_DAMAGE, /* still NUL there, but not all NUL after it */
	ZT_GAP,    /* as ZT_DAMAGE, but a torn last write (aud_reader_at_rest()) */
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
	r->off = r->zok = 0;
	return 0;
}

static int
pread_full(int fd, char *buf, size_t n, uint64_t at, size_t *got)
{
	ssize_t k;

	do {
		k = pread(fd, buf, n, (off_t)at);
	} while (k < 0 && errno == EINTR);
	if (k < 0) {
		return AUD_ERR_IO;
	}
	*got = (size_t)k;
	return 0;
}

static int
all_nul(const char *p, size_t n)
{
	return n == 0 || (p[0] == '\0' && memcmp(p, p + 1, n - 1) == 0);
}

/*
 * Data after the NUL at `at`: ZT_GAP if it has the shape a power loss gives the writer's
 * last, unsynced write, else ZT_DAMAGE. Only for a reader at rest, in the last segment.
 * The write went into zeros (the segment is zero-filled ahead, log.c) and a disk persists
 * whole sectors in any order, so a sector it did not persist still reads as zeros: every
 * run of NULs that is followed by data must end on a sector boundary, and begin on one
 * too unless it is the first (the write began inside a sector of synced data); and every
 * byte that is not NUL lies before at + AUD_TORN_WINDOW (the writer never has more than
 * that unsynced). A zeroed line or a byte set to NUL inside one does not have this shape.
 * Reads from `at` to EOF (at most the segment).
 */
static int
torn_write(struct aud_reader *r, uint64_t at, enum ztail *zt)
{
	char *tmp = r->buf + r->end;
	size_t room = r->cap - r->end, got, i;
	uint64_t pos = at, last = at;
	int in_run = 1, run_start_ok = 1, e;

	*zt = ZT_DAMAGE;
	if (!r->at_rest || r->cur + 1 < r->nsegs) {
		return 0;
	}
	if (room > READ_CHUNK) {
		room = READ_CHUNK;
	}
	for (;;) {
		if ((e = pread_full(r->fd, tmp, room, pos, &got)) != 0) {
			return e;
		}
		if (got == 0) {
			break;
		}
		for (i = 0; i < got; i++) {
			uint64_t o = pos + i;
			int nul = tmp[i] == '\0';

			if (!nul) {
				last = o + 1;
			}
			if (nul == in_run) {
				continue;
			}
			if (nul) {
				run_start_ok = o % AUD_SECTOR == 0;
			} else if (o % AUD_SECTOR != 0 || !run_start_ok ||
			           o - at >= AUD_TORN_WINDOW) {
				return 0;
			}
			in_run = nul;
		}
		if (last - at > AUD_TORN_WINDOW) {
			return 0;
		}
		pos += got;
	}
	r->gap = 1;
	r->gap_at = at;
	r->gap_end = last;
	*zt = ZT_GAP;
	return 0;
}

/*
 * Classifies the bytes of the open segment from file offset `at` (where a NUL was seen) to
 * EOF, reading them afresh: the writer may have written there since they were buffered.
 * Its writes go forward from the data's end, so when a later byte is not NUL the byte at
 * `at` is read again: written now means a write in progress, still NUL means damage.
 * Bytes checked before (below r->zok) are not read again: a follower polling at the end
 * then reads only the first chunk and whatever the writer preallocated since.
 */
static int
zero_tail(struct aud_reader *r, uint64_t at, enum ztail *zt)
{
	char *tmp = r->buf + r->end; /* scratch: the free room behind the buffered bytes */
	size_t room = r->cap - r->end, got;
	uint64_t pos = at;
	int e;

	if (room > READ_CHUNK) {
		room = READ_CHUNK;
	}
	if ((e = pread_full(r->fd, tmp, room, pos, &got)) != 0) {
		return e;
	}
	if (got == 0 || tmp[0] != '\0') {
		*zt = got == 0 ? ZT_EOF : ZT_DATA;
		return 0;
	}
	for (;;) {
		if (!all_nul(tmp, got)) {
			if ((e = pread_full(r->fd, tmp, 1, at, &got)) != 0) {
				return e;
			}
			if (got == 1 && tmp[0] != '\0') {
				*zt = ZT_DATA;
				return 0;
			}
			return torn_write(r, at, zt);
		}
		pos += got;
		if (pos < r->zok) {
			pos = r->zok;
		}
		if ((e = pread_full(r->fd, tmp, room, pos, &got)) != 0) {
			return e;
		}
		if (got == 0) {
			break;
		}
	}
	r->zok = pos;
	*zt = ZT_ZERO;
	return 0;
}

/*
 * A NUL at buf[z], at a line start or inside the unterminated line buf[start..z). Forgets
 * the buffered bytes from z on and sets the file position there, so that the next read
 * takes what the writer puts there. 0 when the bytes from z on are NUL to EOF (or gone);
 * 1 when they are data now (read on); AUD_ERR_TAMPER on damage.
 */
static int
reader_nul(struct aud_reader *r, size_t z, enum ztail *ztp)
{
	uint64_t at = r->off - (r->end - z);
	enum ztail zt;
	int e;

	if (z - r->start > AUD_MAX_LINE) {
		return AUD_ERR_TOO_LARGE;
	}
	/* Keep the partial line at the front: zero_tail() reads into the room behind it. */
	memmove(r->buf, r->buf + r->start, z - r->start);
	r->end = z - r->start;
	r->start = 0;
	r->off = at;
	if (lseek(r->fd, (off_t)at, SEEK_SET) < 0) {
		return AUD_ERR_IO;
	}
	if ((e = zero_tail(r, at, &zt)) != 0) {
		return e;
	}
	*ztp = zt;
	return zt == ZT_DAMAGE ? AUD_ERR_TAMPER : 0;
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
	r->gap = 0;
	for (;;) {
		char *nl, *z;
		ssize_t n;
		enum ztail zt = ZT_EOF;
		int at_nul = 0;

		if (r->fd >= 0) {
			nl = memchr(r->buf + r->start, '\n', r->end - r->start);
			z = memchr(r->buf + r->start, '\0',
			           (nl != NULL ? (size_t)(nl - r->buf) : r->end) - r->start);
			if (z != NULL) {
				/* The zero-filled room of the active segment (log.c), or damage. */
				if ((e = reader_nul(r, (size_t)(z - r->buf), &zt)) != 0) {
					return e;
				}
				if (zt == ZT_DATA) {
					continue;
				}
				at_nul = zt == ZT_ZERO || zt == ZT_GAP;
			} else if (nl != NULL) {
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
			n = 0;
			if (!at_nul) {
				do {
					n = read(r->fd, r->buf + r->end, r->cap - r->end);
				} while (n < 0 && errno == EINTR);
			}
			if (n < 0) {
				return AUD_ERR_IO;
			}
			if (n > 0) {
				r->end += (size_t)n;
				r->off += (uint64_t)n;
				continue;
			}
			/* End of this segment's data. A later segment means this one is finished;
			 * any unterminated bytes left are a torn line. */
			if (r->cur + 1 >= r->nsegs && (e = reader_scan(r)) != 0) {
				return e;
			}
			if (r->cur + 1 >= r->nsegs) {
				if (torn != NULL) {
					/* A torn write: from the line's start to its last data. */
					*torn = r->gap ? (size_t)(r->gap_end -
					                          (r->off - (r->end - r->start)))
					               : r->end - r->start;
				}
				return AUD_ERR_EOF;
			}
			if (at_nul) {
				/* The writer cuts a segment's zero-filled room (and syncs that)
				 * before it creates the next segment: only the last one has any.
				 * Look again, now that the next one was seen. */
				if ((e = reader_nul(r, r->end, &zt)) != 0) {
					return e;
				}
				if (zt == ZT_ZERO) {
					return AUD_ERR_TAMPER;
				}
				continue;
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

void
aud_reader_at_rest(struct aud_reader *r)
{
	r->at_rest = 1;
}

int
aud_reader_gap(const struct aud_reader *r, uint64_t *offset)
{
	*offset = r->gap ? r->gap_at : 0;
	return r->gap;
}

void
aud_reader_pos(const struct aud_reader *r, uint64_t *seg_first, uint64_t *offset)
{
	*seg_first = r->fd >= 0 ? r->segs[r->cur] : 0;
	*offset = r->fd >= 0 ? r->off - (r->end - r->start) : 0;
}
