/*
 * audit/proof.c — RFC 6962 inclusion and consistency proofs taken from a log directory,
 * and the inclusion-proof bundle that lets one event be handed to an auditor alone:
 *
 *   hsmgate-audit inclusion proof v1\n
 *   seq <n>\n
 *   size <tree size>\n
 *   entry <base64 of the record's entry bytes>\n
 *   hash <hex>\n            (the audit path, leaf to root; zero or more lines)
 *   checkpoint <base64 of the signed checkpoint note for <tree size>>\n
 */
#include "audit/aud_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROOF_MAGIC "hsmgate-audit inclusion proof v1\n"

struct leaves {
	uint8_t (*h)[AUD_HASH_LEN];
	size_t n, cap;
};

static int
leaves_push(struct leaves *l, const uint8_t h[AUD_HASH_LEN])
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 1024;
		uint8_t(*v)[AUD_HASH_LEN] = realloc(l->h, cap * AUD_HASH_LEN);

		if (v == NULL) {
			return AUD_ERR_NOMEM;
		}
		l->h = v;
		l->cap = cap;
	}
	memcpy(l->h[l->n++], h, AUD_HASH_LEN);
	return 0;
}

/* Key windows while reading (consistency): the rotations move the key in force, and the
 * old note is checked with the key in force at its size. */
struct kwalk {
	struct aud_keywin *kw;
	const char *old_note;
	size_t old_len;
	uint64_t old_size;
	int old_done;
	uint8_t prev_chain[AUD_HASH_LEN]; /* stored chain of the record before */
	char origin[AUD_MAX_ORIGIN + 1];
};

/* A note checked against the key windows: AUD_ERR_SIGNATURE when it is not signed by the
 * key in force at its size. */
static int
kwalk_note(struct kwalk *w, const char *note, size_t len, uint64_t size)
{
	enum aud_damage d;
	char detail[256];
	int r = aud_keywin_note(w->kw, note, len, size, &d, detail, sizeof(detail));

	return r == AUD_ERR_VERIFY ? AUD_ERR_SIGNATURE : r;
}

static int
kwalk_record(struct kwalk *w, const struct aud_record_view *rec)
{
	enum aud_damage d;
	char detail[256];
	int r = 0;

	if (rec->seq == w->old_size) {
		w->old_done = 1;
		r = kwalk_note(w, w->old_note, w->old_len, w->old_size);
	}
	if (r == 0 && rec->type == 'K') {
		/* Followed as verify does before --from: the leaves are authenticated by the new
		 * root, the rotation by the key in force. */
		r = aud_keywin_rotation(w->kw, rec, w->prev_chain, w->origin, 0, &d, detail,
		                        sizeof(detail));
	}
	memcpy(w->prev_chain, rec->chain, AUD_HASH_LEN);
	return r;
}

/*
 * Reads records 0..stop (inclusive, UINT64_MAX: all), recomputing their leaves. If want_seq
 * is not UINT64_MAX, its entry is copied to *entry. *last_note gets the payload of the last
 * checkpoint record read, or of the checkpoint at seq == note_at when note_at != 0. With a
 * kwalk (may be NULL), each record also goes through kwalk_record().
 */
static int
read_leaves(const char *dir, uint64_t stop, uint64_t want_seq, uint64_t note_at, struct leaves *l,
            char **entry, size_t *entry_len, char **note_b64, size_t *note_b64_len, struct kwalk *w)
{
	struct aud_reader *rd = NULL;
	const char *line;
	size_t len;
	uint64_t seg, no;
	int r;

	if ((r = aud_reader_open(&rd, dir)) != 0) {
		return r;
	}
	while ((r = aud_reader_next(rd, &line, &len, &seg, &no, NULL)) == 0) {
		struct aud_record_view rec;
		uint8_t leaf[AUD_HASH_LEN];

		if ((r = aud_record_parse(line, len, &rec)) != 0) {
			goto out;
		}
		if (rec.seq != l->n) {
			r = AUD_ERR_MALFORMED; /* run verify to learn what is wrong */
			goto out;
		}
		aud_record_leaf(&rec, leaf);
		if ((r = leaves_push(l, leaf)) != 0 ||
		    (w != NULL && (r = kwalk_record(w, &rec)) != 0)) {
			goto out;
		}
		if (rec.seq == want_seq && entry != NULL) {
			if ((*entry = malloc(rec.entry_len + 1)) == NULL) {
				r = AUD_ERR_NOMEM;
				goto out;
			}
			memcpy(*entry, rec.entry, rec.entry_len);
			(*entry)[rec.entry_len] = '\0';
			*entry_len = rec.entry_len;
		}
		if (rec.type == 'C' && note_b64 != NULL && (note_at == 0 || rec.seq == note_at)) {
			free(*note_b64);
			if ((*note_b64 = malloc(rec.payload_len + 1)) == NULL) {
				r = AUD_ERR_NOMEM;
				goto out;
			}
			memcpy(*note_b64, rec.payload, rec.payload_len);
			(*note_b64)[rec.payload_len] = '\0';
			*note_b64_len = rec.payload_len;
		}
		if (rec.seq == stop) {
			break;
		}
	}
	r = r == AUD_ERR_EOF ? 0 : r;
out:
	aud_reader_free(rd);
	return r;
}

/* The first checkpoint record after seq: its seq is its tree size. */
static int
first_checkpoint_after(const char *dir, uint64_t seq, uint64_t *size)
{
	struct aud_reader *rd = NULL;
	const char *line;
	size_t len;
	uint64_t seg, no;
	int r;

	*size = 0;
	if ((r = aud_reader_open(&rd, dir)) != 0) {
		return r;
	}
	while ((r = aud_reader_next(rd, &line, &len, &seg, &no, NULL)) == 0) {
		struct aud_record_view rec;

		if (aud_record_parse(line, len, &rec) == 0 && rec.type == 'C' && rec.seq > seq) {
			*size = rec.seq;
			break;
		}
	}
	aud_reader_free(rd);
	return *size != 0 ? 0 : AUD_ERR_RANGE;
}

int
aud_proof_build(const char *dir, uint64_t seq, uint64_t size, char **text, size_t *len)
{
	struct leaves l = {0};
	struct aud_buf b = {0};
	uint8_t(*path)[AUD_HASH_LEN] = NULL;
	char *entry = NULL, *note = NULL, *eb64 = NULL, hex[2 * AUD_HASH_LEN + 1];
	size_t entry_len = 0, note_len = 0, eb64_len, npath = 0, i;
	int r;

	*text = NULL;
	*len = 0;
	if (size == 0 && (r = first_checkpoint_after(dir, seq, &size)) != 0) {
		return r;
	}
	if (seq >= size) {
		return AUD_ERR_RANGE;
	}
	if ((r = read_leaves(dir, size, seq, size, &l, &entry, &entry_len, &note, &note_len,
	                     NULL)) != 0) {
		goto out;
	}
	if (l.n <= size || entry == NULL || note == NULL) {
		r = AUD_ERR_RANGE; /* no checkpoint record at seq == size */
		goto out;
	}
	if ((r = aud_merkle_inclusion_proof((const uint8_t(*)[AUD_HASH_LEN])l.h, size, seq, &path,
	                                    &npath)) != 0 ||
	    (r = aud_b64_encode((const uint8_t *)entry, entry_len, &eb64, &eb64_len)) != 0) {
		goto out;
	}
	aud_buf_puts(&b, PROOF_MAGIC);
	aud_buf_printf(&b, "seq %llu\nsize %llu\nentry ", (unsigned long long)seq,
	               (unsigned long long)size);
	aud_buf_put(&b, eb64, eb64_len);
	aud_buf_puts(&b, "\n");
	for (i = 0; i < npath; i++) {
		aud_hex_encode(path[i], AUD_HASH_LEN, hex);
		aud_buf_printf(&b, "hash %s\n", hex);
	}
	aud_buf_puts(&b, "checkpoint ");
	aud_buf_put(&b, note, note_len);
	if ((r = aud_buf_puts(&b, "\n")) != 0) {
		goto out;
	}
	*text = b.data;
	*len = b.len;
	b.data = NULL; /* transferred */
	r = 0;
out:
	aud_buf_free(&b);
	free(l.h);
	free(path);
	free(entry);
	free(note);
	free(eb64);
	return r;
}

int
aud_proof_verify(const char *text, size_t len, const char *pubkey_path, uint64_t *seq,
                 char **payload, size_t *payload_len)
{
	struct aud_keyring *kr = NULL;
	int r, kr_err;

	/* Without a usable key everything is still parsed, then AUD_ERR_KEY (fuzzing). */
	kr_err = aud_keyring_load(&kr, &pubkey_path, 1);
	r = aud_proof_verify_keyring(text, len, kr, seq, payload, payload_len);
	aud_keyring_free(kr);
	return r == AUD_ERR_KEY && kr_err != 0 ? kr_err : r;
}

/* 0 if one key of kr signed the note (kr NULL: AUD_ERR_KEY once it has parsed). */
static int
note_signed_by_ring(const char *note, size_t len, const struct aud_keyring *kr,
                    struct aud_checkpoint_view *cp)
{
	size_t i;
	int r;

	if ((r = aud_checkpoint_parse_note(note, len, cp)) != 0) {
		return r;
	}
	if (kr == NULL) {
		return AUD_ERR_KEY;
	}
	for (i = 0; i < aud_keyring_count(kr); i++) {
		if ((r = aud_checkpoint_check(note, len, aud_keyring_get(kr, i, NULL), cp)) !=
		    AUD_ERR_SIGNATURE) {
			return r;
		}
	}
	return AUD_ERR_SIGNATURE;
}

int
aud_proof_verify_keyring(const char *text, size_t len, const struct aud_keyring *kr, uint64_t *seq,
                         char **payload, size_t *payload_len)
{
	struct aud_cur c;
	struct aud_checkpoint_view cp;
	struct aud_record_view rec;
	uint8_t path[64][AUD_HASH_LEN], leaf[AUD_HASH_LEN];
	const char *s;
	size_t slen, npath = 0, entry_len, note_len;
	uint64_t size;
	char *entry = NULL, *note = NULL;
	int r;

	*seq = 0;
	if (payload != NULL) {
		*payload = NULL;
		*payload_len = 0;
	}
	aud_cur_init(&c, text, len);
	if ((r = aud_cur_lit(&c, PROOF_MAGIC)) != 0 || (r = aud_cur_lit(&c, "seq ")) != 0 ||
	    (r = aud_cur_u64(&c, seq)) != 0 || (r = aud_cur_lit(&c, "\nsize ")) != 0 ||
	    (r = aud_cur_u64(&c, &size)) != 0 || (r = aud_cur_lit(&c, "\nentry ")) != 0 ||
	    (r = aud_cur_until(&c, '\n', &s, &slen, 4 * ((AUD_MAX_LINE + 2) / 3))) != 0) {
		r = AUD_ERR_MALFORMED;
		goto out;
	}
	if ((entry = malloc(AUD_MAX_LINE + 1)) == NULL) {
		r = AUD_ERR_NOMEM;
		goto out;
	}
	if (aud_b64_decode(s, slen, (uint8_t *)entry, AUD_MAX_LINE, &entry_len) != 0) {
		r = AUD_ERR_MALFORMED;
		goto out;
	}
	while (aud_cur_lit(&c, "hash ") == 0) {
		if (npath == 64 || (r = aud_cur_hex(&c, path[npath], AUD_HASH_LEN)) != 0 ||
		    (r = aud_cur_lit(&c, "\n")) != 0) {
			r = AUD_ERR_MALFORMED;
			goto out;
		}
		npath++;
	}
	if ((r = aud_cur_lit(&c, "checkpoint ")) != 0 ||
	    (r = aud_cur_until(&c, '\n', &s, &slen, 4 * ((AUD_MAX_NOTE + 2) / 3))) != 0 ||
	    (r = aud_cur_end(&c)) != 0 ||
	    (r = aud_checkpoint_decode_payload(s, slen, &note, &note_len)) != 0) {
		r = AUD_ERR_MALFORMED;
		goto out;
	}
	if ((r = note_signed_by_ring(note, note_len, kr, &cp)) != 0) {
		goto out;
	}
	/* The entry must be a real record entry for this seq: append the hashes' place-holder
	 * to reuse the one parser. */
	{
		char *line = malloc(entry_len + 2 + 4 * AUD_HASH_LEN + 1);

		if (line == NULL) {
			r = AUD_ERR_NOMEM;
			goto out;
		}
		memcpy(line, entry, entry_len);
		line[entry_len] = '\t';
		memset(line + entry_len + 1, '0', 2 * AUD_HASH_LEN);
		line[entry_len + 1 + 2 * AUD_HASH_LEN] = ' ';
		memset(line + entry_len + 2 + 2 * AUD_HASH_LEN, '0', 2 * AUD_HASH_LEN);
		r = aud_record_parse(line, entry_len + 2 + 4 * AUD_HASH_LEN, &rec);
		if (r == 0 && rec.seq != *seq) {
			r = AUD_ERR_VERIFY;
		}
		if (r == 0 && payload != NULL) {
			if ((*payload = malloc(rec.payload_len + 1)) == NULL) {
				r = AUD_ERR_NOMEM;
			} else {
				memcpy(*payload, rec.payload, rec.payload_len);
				(*payload)[rec.payload_len] = '\0';
				*payload_len = rec.payload_len;
			}
		}
		free(line);
		if (r != 0) {
			goto out;
		}
	}
	aud_hash_leaf(entry, entry_len, leaf);
	if (cp.size != size ||
	    aud_merkle_inclusion_verify(leaf, *seq, size, (const uint8_t(*)[AUD_HASH_LEN])path,
	                                npath, cp.root) != 0) {
		r = AUD_ERR_VERIFY;
		goto out;
	}
	r = 0;
out:
	if (r != 0 && payload != NULL) {
		free(*payload);
		*payload = NULL;
		*payload_len = 0;
	}
	free(entry);
	free(note);
	return r;
}

int
aud_log_last_checkpoint(const char *dir, char **note, size_t *len)
{
	struct leaves l = {0};
	char *b64 = NULL;
	size_t b64_len = 0;
	int r;

	*note = NULL;
	*len = 0;
	if ((r = read_leaves(dir, UINT64_MAX, UINT64_MAX, 0, &l, NULL, NULL, &b64, &b64_len,
	                     NULL)) != 0) {
		goto out;
	}
	if (b64 == NULL) {
		r = AUD_ERR_RANGE;
		goto out;
	}
	r = aud_checkpoint_decode_payload(b64, b64_len, note, len);
out:
	free(l.h);
	free(b64);
	return r;
}

int
aud_log_consistency(const char *dir, const char *pubkey_path, const char *old_note, size_t old_len,
                    const char *new_note, size_t new_len, char **proof_text)
{
	struct aud_keyring *kr = NULL;
	int r;

	if (proof_text != NULL) {
		*proof_text = NULL;
	}
	if ((r = aud_keyring_load(&kr, &pubkey_path, 1)) != 0) {
		return r;
	}
	r = aud_log_consistency_keyring(dir, kr, old_note, old_len, new_note, new_len, proof_text);
	aud_keyring_free(kr);
	return r;
}

int
aud_log_consistency_keyring(const char *dir, const struct aud_keyring *kr, const char *old_note,
                            size_t old_len, const char *new_note, size_t new_len, char **proof_text)
{
	struct aud_checkpoint_view a, b;
	struct kwalk w;
	struct leaves l = {0};
	struct aud_buf t = {0};
	uint8_t(*proof)[AUD_HASH_LEN] = NULL, root[AUD_HASH_LEN];
	char *last = NULL, hex[2 * AUD_HASH_LEN + 1];
	size_t last_len, np = 0, i;
	int r;

	memset(&w, 0, sizeof(w));
	if (proof_text != NULL) {
		*proof_text = NULL;
	}
	if (new_note == NULL) {
		if ((r = aud_log_last_checkpoint(dir, &last, &last_len)) != 0) {
			goto out;
		}
		new_note = last;
		new_len = last_len;
	}
	if (kr == NULL || old_note == NULL) {
		r = AUD_ERR_INVALID;
		goto out;
	}
	if ((r = aud_checkpoint_parse_note(old_note, old_len, &a)) != 0 ||
	    (r = aud_checkpoint_parse_note(new_note, new_len, &b)) != 0) {
		goto out;
	}
	if (a.size > b.size || strcmp(a.origin, b.origin) != 0) {
		r = AUD_ERR_VERIFY;
		goto out;
	}
	/* Each note must be signed by the key in force at its size: the log's rotations
	 * before it say which (a single trusted key and no rotation: that key). */
	w.old_note = old_note;
	w.old_len = old_len;
	w.old_size = a.size;
	memcpy(w.origin, a.origin, sizeof(w.origin));
	if ((r = aud_keywin_new(&w.kw, kr)) != 0 ||
	    (r = read_leaves(dir, b.size == 0 ? 0 : b.size - 1, UINT64_MAX, 0, &l, NULL, NULL, NULL,
	                     NULL, &w)) != 0 ||
	    (!w.old_done && (r = kwalk_note(&w, old_note, old_len, a.size)) != 0) ||
	    (r = kwalk_note(&w, new_note, new_len, b.size)) != 0) {
		goto out;
	}
	if (l.n < b.size) {
		r = AUD_ERR_VERIFY; /* the log no longer holds the newer tree */
		goto out;
	}
	/* The log must hold the newer tree itself, then the proof links both roots. */
	aud_merkle_root((const uint8_t(*)[AUD_HASH_LEN])l.h, b.size, root);
	if (memcmp(root, b.root, AUD_HASH_LEN) != 0 ||
	    (r = aud_merkle_consistency_proof((const uint8_t(*)[AUD_HASH_LEN])l.h, a.size, b.size,
	                                      &proof, &np)) != 0) {
		r = r != 0 ? r : AUD_ERR_VERIFY;
		goto out;
	}
	if (aud_merkle_consistency_verify(a.size, b.size, a.root, b.root,
	                                  (const uint8_t(*)[AUD_HASH_LEN])proof, np) != 0) {
		r = AUD_ERR_VERIFY;
		goto out;
	}
	if (proof_text != NULL) {
		aud_buf_printf(&t, "old %llu\nnew %llu\n", (unsigned long long)a.size,
		               (unsigned long long)b.size);
		for (i = 0; i < np; i++) {
			aud_hex_encode(proof[i], AUD_HASH_LEN, hex);
			aud_buf_printf(&t, "hash %s\n", hex);
		}
		if ((r = t.failed) != 0) {
			goto out;
		}
		*proof_text = t.data;
		t.data = NULL; /* transferred */
	}
	r = 0;
out:
	aud_buf_free(&t);
	aud_keywin_free(w.kw);
	free(proof);
	free(l.h);
	free(last);
	return r;
}
