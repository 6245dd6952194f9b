/*
 * audit/verify.c — the offline verifier behind `hsmgate-audit verify`.
 *
 * One pass over the log recomputes every leaf and chain hash and the compact Merkle range,
 * and checks each checkpoint against them. On the first failure it classifies the damage
 * by looking at the lines that follow (only then: the fast path never looks ahead):
 *   - a line that does not parse, or whose hashes are wrong, followed by the expected
 *     record                                       → inserted
 *   - a record whose hashes are wrong              → modified
 *   - seq jumps forward, the missing seq later     → reordered
 *   - seq jumps forward, the missing seq never     → deleted
 *   - seq goes back (a copy of an earlier record)  → inserted
 *   - fewer records than an external checkpoint    → truncated
 *   - a checkpoint whose signature fails           → bad signature
 *   - a checkpoint or rotation signed by a key known but not in force there (retired, or
 *     not yet rotated to)                          → key window
 *   - a signed checkpoint that disagrees with consistent-looking records → modified (the
 *     records after the previous good checkpoint were rewritten with fresh hashes)
 */
#include "audit/aud_int.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *
aud_damage_name(enum aud_damage d)
{
	switch (d) {
	case AUD_DAMAGE_NONE:
		return "none";
	case AUD_DAMAGE_MODIFIED:
		return "modified";
	case AUD_DAMAGE_DELETED:
		return "deleted";
	case AUD_DAMAGE_REORDERED:
		return "reordered";
	case AUD_DAMAGE_INSERTED:
		return "inserted";
	case AUD_DAMAGE_TRUNCATED:
		return "truncated";
	case AUD_DAMAGE_SIGNATURE:
		return "bad signature";
	case AUD_DAMAGE_CHECKPOINT:
		return "inconsistent checkpoint";
	case AUD_DAMAGE_KEY_WINDOW:
		return "key window";
	default:
		return "unknown";
	}
}

void
aud_verify_options_init(struct aud_verify_options *o)
{
	memset(o, 0, sizeof(*o));
	o->to = UINT64_MAX;
}

struct vstate {
	const struct aud_verify_options *o;
	struct aud_verify_result *res;
	struct aud_keyring *own_kr; /* loaded from pubkey_path when no keyring is given */
	struct aud_keywin *kw;      /* the key in force as rotations move it (rotate.c) */
	uint64_t expect;
	uint8_t chain[AUD_HASH_LEN];
	struct aud_range range;
	uint8_t prev_note[AUD_HASH_LEN];
	uint64_t last_time, last_ckpt_time;
	int have_ckpt;
	uint64_t last_ckpt_seq;
	char origin[AUD_MAX_ORIGIN + 1];
	int have_ext;
	struct aud_checkpoint_view ext;
	char *ext_note; /* its text: signed by the key in force at its size, checked there */
	size_t ext_len;
};

static int damage(struct vstate *v, enum aud_damage d, uint64_t seq, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

static int
damage(struct vstate *v, enum aud_damage d, uint64_t seq, const char *fmt, ...)
{
	va_list ap;

	v->res->damage = d;
	v->res->seq = seq;
	va_start(ap, fmt);
	vsnprintf(v->res->detail, sizeof(v->res->detail), fmt, ap);
	va_end(ap);
	return AUD_ERR_VERIFY;
}

/* Reads the line after line `line_no` into *rec (parsed) — classification only. */
static int
peek_after(const char *dir, uint64_t line_no, struct aud_record_view *rec, char **copy)
{
	struct aud_reader *rd = NULL;
	const char *line;
	size_t len;
	uint64_t seg, no;
	int r;

	*copy = NULL;
	memset(rec, 0, sizeof(*rec));
	if ((r = aud_reader_open(&rd, dir)) != 0) {
		return r;
	}
	while ((r = aud_reader_next(rd, &line, &len, &seg, &no, NULL)) == 0 && no <= line_no) {
	}
	if (r == 0) {
		if ((*copy = malloc(len + 1)) == NULL) {
			r = AUD_ERR_NOMEM;
		} else {
			memcpy(*copy, line, len);
			r = aud_record_parse(*copy, len, rec);
		}
	}
	aud_reader_free(rd);
	return r;
}

/* 1 if a line after line_no holds record `seq`. */
static int
seq_appears_after(const char *dir, uint64_t line_no, uint64_t seq)
{
	struct aud_reader *rd = NULL;
	const char *line;
	size_t len;
	uint64_t seg, no;
	int found = 0;

	if (aud_reader_open(&rd, dir) != 0) {
		return 0;
	}
	while (aud_reader_next(rd, &line, &len, &seg, &no, NULL) == 0) {
		struct aud_record_view rec;

		if (no > line_no && aud_record_parse(line, len, &rec) == 0 && rec.seq == seq) {
			found = 1;
			break;
		}
	}
	aud_reader_free(rd);
	return found;
}

/* The record after a bad line is the one we expected and it links to our chain: the bad
 * line was put in between. */
static int
next_is_expected(struct vstate *v, uint64_t line_no)
{
	struct aud_record_view rec;
	uint8_t leaf[AUD_HASH_LEN], chain[AUD_HASH_LEN];
	char *copy = NULL;
	int ok = 0;

	if (peek_after(v->o->dir, line_no, &rec, &copy) == 0 && rec.seq == v->expect) {
		aud_record_leaf(&rec, leaf);
		aud_hash_chain(v->chain, leaf, chain);
		ok = memcmp(leaf, rec.leaf, AUD_HASH_LEN) == 0 &&
		     memcmp(chain, rec.chain, AUD_HASH_LEN) == 0;
	}
	free(copy);
	return ok;
}

static int
check_ext(struct vstate *v)
{
	uint8_t root[AUD_HASH_LEN];

	enum aud_damage d;
	char detail[sizeof(v->res->detail)];
	int r;

	/* Called when exactly ext.size records have been read: the rotations before it have
	 * moved the window, so the key in force there must have signed it. */
	if ((r = aud_keywin_note(v->kw, v->ext_note, v->ext_len, v->ext.size, &d, detail,
	                         sizeof(detail))) != 0) {
		return r == AUD_ERR_VERIFY
		               ? damage(v, d, v->ext.size, "the external checkpoint: %s", detail)
		               : r;
	}
	aud_range_root(&v->range, root);
	if (memcmp(root, v->ext.root, AUD_HASH_LEN) != 0 ||
	    memcmp(v->chain, v->ext.chain, AUD_HASH_LEN) != 0) {
		return damage(
		        v, AUD_DAMAGE_MODIFIED, 0,
		        "the first %llu records differ from the external checkpoint (rollback "
		        "or rewrite)",
		        (unsigned long long)v->ext.size);
	}
	v->have_ext = 2; /* checked */
	return 0;
}

static int
check_checkpoint(struct vstate *v, const struct aud_record_view *rec, int full)
{
	struct aud_checkpoint_view cp;
	uint8_t root[AUD_HASH_LEN];
	char *note = NULL, detail[sizeof(v->res->detail)];
	enum aud_damage d;
	size_t nlen;
	int r;

	if (aud_checkpoint_decode_payload(rec->payload, rec->payload_len, &note, &nlen) != 0) {
		return damage(v, AUD_DAMAGE_MODIFIED, rec->seq, "checkpoint payload is not base64");
	}
	if ((r = aud_checkpoint_parse_note(note, nlen, &cp)) == 0 && full) {
		/* Signed by the key in force at this seq (the first picks the anchor). */
		r = aud_keywin_note(v->kw, note, nlen, rec->seq, &d, detail, sizeof(detail));
	}
	free(note);
	if (r == AUD_ERR_MALFORMED) {
		return damage(v, AUD_DAMAGE_MODIFIED, rec->seq, "checkpoint note does not parse");
	}
	if (r == AUD_ERR_VERIFY) {
		return damage(v, d, rec->seq, "%s", detail);
	}
	if (r != 0) {
		return r;
	}
	if (!full) {
		/* Before --from: only follow the links. */
		memcpy(v->prev_note, cp.note_hash, AUD_HASH_LEN);
		v->last_ckpt_time = cp.time_ns;
		return 0;
	}
	aud_range_root(&v->range, root);
	if (v->origin[0] == '\0') {
		snprintf(v->origin, sizeof(v->origin), "%s", cp.origin);
	}
	if (strcmp(v->origin, cp.origin) != 0) {
		return damage(v, AUD_DAMAGE_CHECKPOINT, rec->seq,
		              "checkpoint origin %s differs from %s", cp.origin, v->origin);
	}
	if (cp.size != rec->seq) {
		return damage(v, AUD_DAMAGE_CHECKPOINT, rec->seq,
		              "checkpoint size %llu at seq %llu", (unsigned long long)cp.size,
		              (unsigned long long)rec->seq);
	}
	if (memcmp(root, cp.root, AUD_HASH_LEN) != 0 ||
	    memcmp(v->chain, cp.chain, AUD_HASH_LEN) != 0) {
		uint64_t from = v->have_ckpt ? v->last_ckpt_seq + 1 : 0;

		return damage(v, AUD_DAMAGE_MODIFIED, from,
		              "records %llu..%llu were rewritten: their hashes are consistent but "
		              "do not match the signed checkpoint at seq %llu",
		              (unsigned long long)from, (unsigned long long)rec->seq - 1,
		              (unsigned long long)rec->seq);
	}
	if (memcmp(v->prev_note, cp.prev, AUD_HASH_LEN) != 0) {
		return damage(v, AUD_DAMAGE_CHECKPOINT, rec->seq,
		              "checkpoint does not link to the previous checkpoint");
	}
	if (cp.time_ns != rec->time_ns || cp.time_ns < v->last_ckpt_time) {
		return damage(v, AUD_DAMAGE_CHECKPOINT, rec->seq, "checkpoint time goes backwards");
	}
	memcpy(v->prev_note, cp.note_hash, AUD_HASH_LEN);
	v->last_ckpt_time = cp.time_ns;
	v->have_ckpt = 1;
	v->last_ckpt_seq = rec->seq;
	v->res->checkpoints++;
	v->res->last_checkpoint_size = cp.size;
	return 0;
}

static int
check_rotation(struct vstate *v, const struct aud_record_view *rec, int full)
{
	char detail[sizeof(v->res->detail)];
	enum aud_damage d;
	int r;

	/* v->chain is still the chain head of the record before this one. Before --from the
	 * rotation is followed without judging it (the checkpoint after --from decides). */
	r = aud_keywin_rotation(v->kw, rec, v->chain, v->origin, full, &d, detail, sizeof(detail));
	return r == AUD_ERR_VERIFY ? damage(v, d, rec->seq, "%s", detail) : r;
}

/* The log ends before the external checkpoint's size: it was cut back, if that checkpoint
 * is genuine — signed by the key in force at the end, or by a given key. */
static int
ext_truncated(struct vstate *v)
{
	char detail[sizeof(v->res->detail)];
	enum aud_damage d;
	const struct aud_keyring *kr = v->o->keyring != NULL ? v->o->keyring : v->own_kr;
	struct aud_checkpoint_view cp;
	size_t i;
	int r;

	r = aud_keywin_note(v->kw, v->ext_note, v->ext_len, v->ext.size, &d, detail,
	                    sizeof(detail));
	for (i = 0; r == AUD_ERR_VERIFY && i < aud_keyring_count(kr); i++) {
		if (aud_checkpoint_check(v->ext_note, v->ext_len, aud_keyring_get(kr, i, NULL),
		                         &cp) == 0) {
			r = 0;
		}
	}
	if (r == AUD_ERR_VERIFY) {
		return damage(v, AUD_DAMAGE_SIGNATURE, v->ext.size,
		              "the external checkpoint (size %llu, beyond the log's %llu records) "
		              "does not verify with the key in force at the end of the log or a "
		              "given key; if a rotation introduced its key, the log may be cut "
		              "before that rotation: give that key too (--pubkey) to tell",
		              (unsigned long long)v->ext.size, (unsigned long long)v->expect);
	}
	if (r != 0) {
		return r;
	}
	return damage(v, AUD_DAMAGE_TRUNCATED, v->expect,
	              "the log ends at %llu records; the external checkpoint covers %llu",
	              (unsigned long long)v->expect, (unsigned long long)v->ext.size);
}

static int
load_ext(struct vstate *v)
{
	char buf[AUD_MAX_NOTE + 1];
	ssize_t n;
	size_t len = 0;
	int fd, r;

	if ((fd = open(v->o->checkpoint_path, O_RDONLY | O_CLOEXEC)) < 0) {
		return AUD_ERR_IO;
	}
	while ((n = read(fd, buf + len, sizeof(buf) - len)) > 0) {
		len += (size_t)n;
		if (len == sizeof(buf)) {
			break;
		}
	}
	close(fd);
	if (n < 0 || len > AUD_MAX_NOTE) {
		return n < 0 ? AUD_ERR_IO : AUD_ERR_MALFORMED;
	}
	/* Parsed now; its signature is checked where the log reaches its size, with the key
	 * in force there (which a rotation may have made one that was not given). */
	if ((r = aud_checkpoint_parse_note(buf, len, &v->ext)) != 0) {
		return r;
	}
	if ((v->ext_note = malloc(len)) == NULL) {
		return AUD_ERR_NOMEM;
	}
	memcpy(v->ext_note, buf, len);
	v->ext_len = len;
	snprintf(v->origin, sizeof(v->origin), "%s", v->ext.origin);
	v->have_ext = 1;
	return 0;
}

int
aud_log_verify(const struct aud_verify_options *o, struct aud_verify_result *res)
{
	struct vstate v;
	struct aud_reader *rd = NULL;
	const char *line;
	size_t len, torn = 0;
	uint64_t gap;
	uint64_t seg, line_no;
	const struct aud_keyring *kr = o->keyring;
	int r, at_end = 0;

	memset(res, 0, sizeof(*res));
	memset(&v, 0, sizeof(v));
	v.o = o;
	v.res = res;
	aud_range_init(&v.range);
	if (o->dir == NULL || (o->pubkey_path == NULL && o->keyring == NULL) || o->from > o->to) {
		return AUD_ERR_INVALID;
	}
	if (kr == NULL && (r = aud_keyring_load(&v.own_kr, &o->pubkey_path, 1)) != 0) {
		return r;
	}
	if ((r = aud_keywin_new(&v.kw, kr != NULL ? kr : v.own_kr)) != 0 ||
	    (o->checkpoint_path != NULL && (r = load_ext(&v)) != 0) ||
	    (r = aud_reader_open(&rd, o->dir)) != 0) {
		goto out;
	}
	aud_reader_at_rest(rd);
	for (;;) {
		struct aud_record_view rec;
		uint8_t leaf[AUD_HASH_LEN], chain[AUD_HASH_LEN];
		int full;

		if (v.have_ext == 1 && v.expect == v.ext.size && (r = check_ext(&v)) != 0) {
			goto out;
		}
		r = aud_reader_next(rd, &line, &len, &seg, &line_no, &torn);
		if (r == AUD_ERR_EOF) {
			at_end = 1;
			break;
		}
		if (r == AUD_ERR_TAMPER) {
			/* Bytes after the NUL that ends a segment's data (AUDIT.md §2). */
			uint64_t pseg, off;
			char name[64];

			aud_reader_pos(rd, &pseg, &off);
			aud_segment_name(pseg, name);
			r = damage(&v, AUD_DAMAGE_MODIFIED, v.expect,
			           "%s: bytes other than NUL after the end of the data at offset "
			           "%llu (or a zero-filled end in a segment that is not the last)",
			           name, (unsigned long long)off);
			goto out;
		}
		if (r == AUD_ERR_TOO_LARGE || (r == 0 && torn != 0) ||
		    (r == 0 && aud_record_parse(line, len, &rec) != 0)) {
			r = next_is_expected(&v, line_no)
			            ? damage(&v, AUD_DAMAGE_INSERTED, v.expect,
			                     "a line that is not a record before seq %llu",
			                     (unsigned long long)v.expect)
			            : damage(&v, AUD_DAMAGE_MODIFIED, v.expect,
			                     "record %llu does not parse",
			                     (unsigned long long)v.expect);
			goto out;
		}
		if (r != 0) {
			goto out;
		}
		res->records++;
		if (rec.seq > v.expect) {
			r = seq_appears_after(o->dir, line_no, v.expect)
			            ? damage(&v, AUD_DAMAGE_REORDERED, v.expect,
			                     "record %llu appears after record %llu",
			                     (unsigned long long)v.expect,
			                     (unsigned long long)rec.seq)
			            : damage(&v, AUD_DAMAGE_DELETED, v.expect,
			                     "records %llu..%llu are missing",
			                     (unsigned long long)v.expect,
			                     (unsigned long long)rec.seq - 1);
			goto out;
		}
		if (rec.seq < v.expect) {
			r = damage(&v, AUD_DAMAGE_INSERTED, v.expect,
			           "a second record %llu where record %llu belongs",
			           (unsigned long long)rec.seq, (unsigned long long)v.expect);
			goto out;
		}
		full = rec.seq >= o->from;
		if (full) {
			aud_record_leaf(&rec, leaf);
			aud_hash_chain(v.chain, leaf, chain);
			if (CRYPTO_memcmp(leaf, rec.leaf, AUD_HASH_LEN) != 0 ||
			    CRYPTO_memcmp(chain, rec.chain, AUD_HASH_LEN) != 0) {
				r = next_is_expected(&v, line_no)
				            ? damage(&v, AUD_DAMAGE_INSERTED, v.expect,
				                     "a forged record %llu was inserted",
				                     (unsigned long long)v.expect)
				            : damage(&v, AUD_DAMAGE_MODIFIED, v.expect,
				                     "record %llu: %s hash does not match its "
				                     "bytes",
				                     (unsigned long long)v.expect,
				                     CRYPTO_memcmp(leaf, rec.leaf, AUD_HASH_LEN) !=
				                                     0
				                             ? "leaf"
				                             : "chain");
				goto out;
			}
			if (rec.time_ns < v.last_time) {
				r = damage(&v, AUD_DAMAGE_MODIFIED, rec.seq,
				           "record time goes backwards");
				goto out;
			}
		} else {
			/* Before --from: trust the stored hashes; the first checkpoint at or after
			 * --from authenticates them through its root and chain head. */
			memcpy(leaf, rec.leaf, AUD_HASH_LEN);
			memcpy(chain, rec.chain, AUD_HASH_LEN);
		}
		if (rec.type == 'C' && (r = check_checkpoint(&v, &rec, full)) != 0) {
			goto out;
		}
		if (rec.type == 'K' && (r = check_rotation(&v, &rec, full)) != 0) {
			goto out;
		}
		memcpy(v.chain, chain, AUD_HASH_LEN);
		aud_range_push(&v.range, leaf);
		v.last_time = rec.time_ns;
		v.expect++;
		if (o->to != UINT64_MAX && rec.type == 'C' && full && rec.seq > o->to) {
			break; /* the range is covered by a verified checkpoint */
		}
	}
	if (v.have_ext == 1 && v.expect < v.ext.size && at_end) {
		r = ext_truncated(&v);
		goto out;
	}
	res->unsealed = v.have_ckpt ? v.expect - v.last_ckpt_seq - 1 : v.expect;
	res->rotations = aud_keywin_rotations(v.kw);
	aud_keywin_vkey(v.kw, v.origin, res->key_in_force);
	if (torn > 0 && aud_reader_gap(rd, &gap)) {
		snprintf(res->detail, sizeof(res->detail),
		         "%zu bytes of a torn write at the end: zeros from offset %llu, then data "
		         "(a power loss during the last unsynced write; the writer cuts it at "
		         "open)",
		         torn, (unsigned long long)gap);
	} else if (torn > 0) {
		snprintf(res->detail, sizeof(res->detail),
		         "%zu bytes of an unterminated final line (a write in progress or a crash; "
		         "the writer repairs it at open)",
		         torn);
	}
	r = 0;
out:
	aud_reader_free(rd);
	aud_keywin_free(v.kw);
	aud_keyring_free(v.own_kr);
	free(v.ext_note);
	return r;
}
