/*
 * audit/aud_int.h — private to audit/ (and its own unit tests): the bounds-checked cursor,
 * hashing helpers, record formatting, checkpoint signing and the compact Merkle range.
 */
#ifndef HSMGATE_AUD_INT_H
#define HSMGATE_AUD_INT_H

#include "audit/audit.h"

#include <openssl/evp.h>
#include <stdint.h>

#define AUD_MAGIC        "GWA1"
#define AUD_DOMAIN_LEAF  0x00
#define AUD_DOMAIN_NODE  0x01
#define AUD_DOMAIN_CHAIN 0x02
#define AUD_SEG_PREFIX   "seg-"
#define AUD_SEG_SUFFIX   ".log"
#define AUD_SEG_DIGITS   20
#define AUD_MAX_NOTE     2048

/* ---- cursor: every parser in audit/ reads through this (STYLE 8) ---------------------- */

struct aud_cur {
	const uint8_t *p;
	size_t len; /* bytes remaining */
};

void aud_cur_init(struct aud_cur *c, const void *p, size_t len);
/* Consumes exactly the bytes of `lit`. */
int aud_cur_lit(struct aud_cur *c, const char *lit) AUD_WUR;
/* A canonical unsigned decimal (no sign, no leading zero unless "0", <= UINT64_MAX). */
int aud_cur_u64(struct aud_cur *c, uint64_t *v) AUD_WUR;
/* The bytes before the first `delim` (which is consumed too); the span is at most `cap`
 * bytes and non-empty. */
int aud_cur_until(struct aud_cur *c, char delim, const char **s, size_t *len, size_t cap) AUD_WUR;
/* One byte. */
int aud_cur_byte(struct aud_cur *c, uint8_t *b) AUD_WUR;
/* 2*n lower-case hex digits into out[n]. */
int aud_cur_hex(struct aud_cur *c, uint8_t *out, size_t n) AUD_WUR;
/* AUD_ERR_MALFORMED unless every byte was consumed. */
int aud_cur_end(const struct aud_cur *c) AUD_WUR;

/* ---- hashing and encodings ------------------------------------------------------------ */

void aud_sha256(const void *a, size_t alen, const void *b, size_t blen, uint8_t out[AUD_HASH_LEN]);
void aud_hash_leaf(const void *entry, size_t len, uint8_t out[AUD_HASH_LEN]);
void aud_hash_node(const uint8_t l[AUD_HASH_LEN], const uint8_t r[AUD_HASH_LEN],
                   uint8_t out[AUD_HASH_LEN]);
void aud_hash_chain(const uint8_t prev[AUD_HASH_LEN], const uint8_t leaf[AUD_HASH_LEN],
                    uint8_t out[AUD_HASH_LEN]);

/* Standard base64 with padding, no newlines. *out malloc'd and NUL-terminated. */
int aud_b64_encode(const uint8_t *in, size_t n, char **out, size_t *outlen) AUD_WUR;
/* Canonical decimal of v (no sign, no leading zeros) into out, which has room for 20
 * digits; not terminated. Returns the number of digits. */
size_t aud_u64_dec(char *out, uint64_t v);
/* Strict decode (canonical padding, no whitespace) into out[cap]. */
int aud_b64_decode(const char *in, size_t len, uint8_t *out, size_t cap, size_t *outlen) AUD_WUR;

/* Wall-clock time in ns since the epoch. */
uint64_t aud_now_ns(void);
/* Milliseconds on the monotonic clock (intervals: heartbeats, retries, timeouts). */
uint64_t aud_mono_ms(void);
/* AT's eventTime: "YYYY-MM-DDTHH:MM:SS.ss+0000" into out[32]. */
void aud_time_format(uint64_t unix_ns, char out[32]);

/* 1 if s[0..len) is valid UTF-8 without control characters (< 0x20, 0x7f). */
int aud_text_ok(const char *s, size_t len);

/* ---- growable byte buffer with a sticky failure --------------------------------------- */

struct aud_buf {
	char *data;
	size_t len;
	size_t cap;
	int failed;
};

void aud_buf_free(struct aud_buf *b);
int aud_buf_put(struct aud_buf *b, const void *p, size_t n);
int aud_buf_puts(struct aud_buf *b, const char *s);
int aud_buf_printf(struct aud_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A JSON string literal, quotes included, escaping what JSON requires. */
int aud_buf_json_str(struct aud_buf *b, const char *s);

/* ---- records -------------------------------------------------------------------------- */

/* Formats "GWA1 <seq> <time> <type>\t<payload>\t<leaf> <chain>\n" into b, computing the
 * leaf from the entry and the chain from `prev_chain`; leaf/chain out. */
int aud_record_format(struct aud_buf *b, uint64_t seq, uint64_t time_ns, char type,
                      const char *payload, size_t payload_len,
                      const uint8_t prev_chain[AUD_HASH_LEN], uint8_t leaf[AUD_HASH_LEN],
                      uint8_t chain[AUD_HASH_LEN]) AUD_WUR;

/* Segment file name for a segment whose first record is `first`, into out[64]. */
void aud_segment_name(uint64_t first, char out[64]);
/* 1 and *first if `name` is a segment file name. */
int aud_segment_parse(const char *name, uint64_t *first);
/* Where the reader is: the open segment and the file offset of the next unread line (after
 * AUD_ERR_EOF: where the data ends, torn bytes excluded; after AUD_ERR_TAMPER: the start of
 * the line or the NUL where the damage begins). 0, 0 before the first segment is opened. */
void aud_reader_pos(const struct aud_reader *r, uint64_t *seg_first, uint64_t *offset);

/* ---- compact Merkle range: O(log n) state for the root of a growing tree -------------- */

struct aud_range {
	uint64_t size;
	uint8_t node[64][AUD_HASH_LEN]; /* node[i] valid iff bit i of size is set */
};

void aud_range_init(struct aud_range *r);
void aud_range_push(struct aud_range *r, const uint8_t leaf[AUD_HASH_LEN]);
void aud_range_root(const struct aud_range *r, uint8_t root[AUD_HASH_LEN]);

/* ---- keys and checkpoint notes -------------------------------------------------------- */

int aud_key_load_private(const char *path, EVP_PKEY **pk) AUD_WUR;
int aud_key_load_public(const char *path, EVP_PKEY **pk) AUD_WUR;

/* Builds and signs the note for a checkpoint; *note malloc'd. */
int aud_checkpoint_sign(EVP_PKEY *key, const char *origin, uint64_t size,
                        const uint8_t root[AUD_HASH_LEN], const uint8_t chain[AUD_HASH_LEN],
                        uint64_t time_ns, const uint8_t prev[AUD_HASH_LEN], char **note,
                        size_t *note_len) AUD_WUR;
/* Parses a note and, if pk is not NULL, verifies its signature. */
int aud_checkpoint_check(const char *note, size_t len, EVP_PKEY *pk,
                         struct aud_checkpoint_view *cp) AUD_WUR;
/* 1 if s[0..n) is a valid origin, [A-Za-z0-9._:/-]{1,AUD_MAX_ORIGIN}. */
int aud_origin_ok(const char *s, size_t n);
/* A line of base64 that decodes to exactly n bytes, newline consumed. */
int aud_cur_b64_line(struct aud_cur *c, uint8_t *out, size_t n) AUD_WUR;

/* ---- key rotation (rotate.c) ---------------------------------------------------------- */

#define AUD_ED25519_LEN 32

/* The raw public key of an Ed25519 key (public or private). */
int aud_key_raw(EVP_PKEY *pk, uint8_t raw[AUD_ED25519_LEN]) AUD_WUR;
/* signed-note key id: SHA-256(origin || 0x0A || 0x01 || raw)[0:4]. */
void aud_key_id_raw(const char *origin, const uint8_t raw[AUD_ED25519_LEN], uint8_t id[4]);

/* A signed note's signature line: U+2014 EM DASH, then a space, then the name. */
#define AUD_SIG_DASH "\xe2\x80\x94 "
/* Ends a signed note whose text is in b, its last line not yet terminated: the LF, the
 * blank line, then a signature line by each of keys[0, nkeys) over the text — AUD_SIG_DASH
 * origin " " base64(key id || Ed25519 signature) "\n" — and the AUD_MAX_NOTE cap. On
 * success the note moves to *note (NUL-free, *note_len bytes) and b is empty; else b stays
 * the caller's to free. Checkpoints and rotation statements are finished by this one
 * function (checkpoint.c). 0, AUD_ERR_CRYPTO, AUD_ERR_TOO_LARGE or b's failure. */
int aud_note_finish(struct aud_buf *b, EVP_PKEY *const *keys, size_t nkeys, const char *origin,
                    char **note, size_t *note_len) AUD_WUR;

/* A keyring as a growable set: aud_keyring_add takes a reference (duplicates ignored);
 * tag is the caller's (the verifier keeps the seq that retired a key there). */
int aud_keyring_new(struct aud_keyring **kr) AUD_WUR;
int aud_keyring_add(struct aud_keyring *kr, EVP_PKEY *pk, uint64_t tag) AUD_WUR;
/* Index of the key with this raw public key, or -1. */
long aud_keyring_find(const struct aud_keyring *kr, const uint8_t raw[AUD_ED25519_LEN]);
EVP_PKEY *aud_keyring_get(const struct aud_keyring *kr, size_t i, uint64_t *tag);

/* Builds the two records of a rotation at `seq`/`time_ns` after chain head `chain`: the
 * base64 payload of the 'K' record (the statement signed by old and by nw) and the JSON of
 * its hsmgate.audit-key.rotate event. Both malloc'd. */
int aud_rotation_build(EVP_PKEY *old, EVP_PKEY *nw, const char *origin, uint64_t seq,
                       uint64_t time_ns, const uint8_t chain[AUD_HASH_LEN], char **payload,
                       size_t *payload_len, char **event_json, size_t *event_len) AUD_WUR;
/* The statement's note itself (tests forge rotations with it); *note malloc'd. */
int aud_rotation_sign(EVP_PKEY *old, EVP_PKEY *nw, const char *origin, uint64_t seq,
                      uint64_t time_ns, const uint8_t chain[AUD_HASH_LEN], char **note,
                      size_t *note_len) AUD_WUR;

/* The writer's key history, built while it reads the log at open: which key is in force at
 * the end (checked against its own), and which keys were retired. */
struct aud_keyhist;
int aud_keyhist_new(struct aud_keyhist **kh) AUD_WUR;
void aud_keyhist_free(struct aud_keyhist *kh);
/* A checkpoint note at its place in the log: checked with the key in force, or kept until
 * the key is known (its prev link commits to every earlier note). AUD_ERR_TAMPER. */
int aud_keyhist_checkpoint(struct aud_keyhist *kh, const char *note, size_t len) AUD_WUR;
/* A 'K' record; chain_before is the chain head of the record before it. AUD_ERR_TAMPER. */
int aud_keyhist_rotation(struct aud_keyhist *kh, const char *origin,
                         const struct aud_record_view *rec,
                         const uint8_t chain_before[AUD_HASH_LEN]) AUD_WUR;
/* At the end of the log: `own` must be the key in force. AUD_ERR_KEY_NOT_CURRENT when it
 * is not (a key never announced, or a retired one); AUD_ERR_TAMPER when a checkpoint that
 * names it does not verify. */
int aud_keyhist_finish(struct aud_keyhist *kh, EVP_PKEY *own, const char *origin) AUD_WUR;
/* Before rotating to nw: AUD_ERR_INVALID if it is the key in force or a retired one; makes
 * room so that aud_keyhist_rotated() cannot fail. */
int aud_keyhist_rotate_check(struct aud_keyhist *kh, EVP_PKEY *nw) AUD_WUR;
void aud_keyhist_rotated(struct aud_keyhist *kh, EVP_PKEY *nw);

/* The verifier's key windows: the key in force as rotations move it. */
struct aud_keywin;
int aud_keywin_new(struct aud_keywin **kw, const struct aud_keyring *anchors) AUD_WUR;
void aud_keywin_free(struct aud_keywin *kw);
/*
 * A checkpoint note at seq: 0 if signed by the key in force (the first one picks the anchor
 * that signed it). AUD_ERR_VERIFY with *d (bad signature, key window) and detail;
 * AUD_ERR_MALFORMED if the note does not parse.
 */
int aud_keywin_note(struct aud_keywin *kw, const char *note, size_t len, uint64_t seq,
                    enum aud_damage *d, char *detail, size_t dsz) AUD_WUR;
/*
 * A 'K' record. strict (verified in full): anything wrong is AUD_ERR_VERIFY with *d and
 * detail. Not strict (before --from): the window moves anyway; the new key is trusted only
 * if this rotation verified under a trusted key in force, or it is an anchor. origin[] is
 * the log's origin, filled from the statement when empty.
 */
int aud_keywin_rotation(struct aud_keywin *kw, const struct aud_record_view *rec,
                        const uint8_t chain_before[AUD_HASH_LEN], char origin[AUD_MAX_ORIGIN + 1],
                        int strict, enum aud_damage *d, char *detail, size_t dsz) AUD_WUR;
/* Rotations followed, and the vkey of the key in force ("" if none yet). */
uint64_t aud_keywin_rotations(const struct aud_keywin *kw);
void aud_keywin_vkey(const struct aud_keywin *kw, const char *origin, char out[AUD_MAX_VKEY + 1]);

/* ---- events (internal builders for the log's own records) ----------------------------- */

/* responseData fields for audit-system events (repair): name → number / string. */
int aud_event_add_info_u64(struct aud_event *ev, const char *name, uint64_t v) AUD_WUR;
int aud_event_add_info_str(struct aud_event *ev, const char *name, const char *v) AUD_WUR;
/* aud_event_encode() into the caller's buf[cap] (not NUL-terminated), e.g. a stack buffer on
 * the append path: AUD_ERR_TOO_LARGE when the event does not fit (then use
 * aud_event_encode()), or over AUD_MAX_PAYLOAD. *len is the JSON's length. */
int aud_event_encode_into(const struct aud_event *ev, char *buf, size_t cap, size_t *len) AUD_WUR;

/* ---- test hooks ----------------------------------------------------------------------- */

/* Makes the writer's next write fail with `err` (an errno), to test fail-closed. */
void aud_log_inject_fault(struct aud_log *log, int err);

#endif
