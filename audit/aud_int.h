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
/* Strict decode (canonical padding, no whitespace) into out[cap]. */
int aud_b64_decode(const char *in, size_t len, uint8_t *out, size_t cap, size_t *outlen) AUD_WUR;

/* Wall-clock time in ns since the epoch. */
uint64_t aud_now_ns(void);
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

/* ---- events (internal builders for the log's own records) ----------------------------- */

/* responseData fields for audit-system events (repair): name → number / string. */
int aud_event_add_info_u64(struct aud_event *ev, const char *name, uint64_t v) AUD_WUR;
int aud_event_add_info_str(struct aud_event *ev, const char *name, const char *v) AUD_WUR;

/* ---- test hooks ----------------------------------------------------------------------- */

/* Makes the writer's next write fail with `err` (an errno), to test fail-closed. */
void aud_log_inject_fault(struct aud_log *log, int err);

#endif
