/*
 * audit/audit.h — hsmgate's tamper-evident audit log: CADF / Activity Tracker events, an
 * append-only hash-chained log of them with signed Merkle checkpoints, and its verifier.
 *
 * docs/AUDIT.md is the normative description of the bytes on disk; this header is its C
 * binding. Three layers:
 *   - events (struct aud_event): a builder that takes typed inputs only, so that a PIN, a
 *     key, plaintext or an IV has no setter to go through (redaction by type, STYLE 11);
 *   - the log (struct aud_log): one writer thread, group commit, a completion callback per
 *     record, checkpoints, fail-closed;
 *   - readers: record parsing, the verifier and RFC 6962 proofs, used by hsmgate-audit.
 *
 * Conventions (STYLE.md): functions return 0 or a negative AUD_ERR_* code (-4000...);
 * object types are opaque; the few structs declared here are parameter blocks and
 * read-only views, documented field by field. This module does not use libevent: the
 * gateway learns of durability through the callback it passes to aud_log_append().
 */
#ifndef HSMGATE_AUDIT_H
#define HSMGATE_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#define AUD_WUR __attribute__((warn_unused_result))

/* ---- errors --------------------------------------------------------------------------- */

enum aud_err {
	AUD_OK = 0,
	AUD_ERR_NOMEM = -4000,
	AUD_ERR_INVALID = -4001,   /* a bad argument: unknown enum, bad characters, NULL */
	AUD_ERR_TOO_LARGE = -4002, /* a string, event or line over its cap */
	AUD_ERR_MALFORMED = -4003, /* a record line, note or proof that does not parse */
	AUD_ERR_IO = -4004,        /* open/read/write/fsync failed (errno is kept) */
	AUD_ERR_FAILED = -4005,    /* the log is sticky-failed; reopen it */
	AUD_ERR_CLOSED = -4006,    /* the log is closing */
	AUD_ERR_CRYPTO = -4007,    /* an OpenSSL call failed */
	AUD_ERR_KEY = -4008,       /* a key file is missing, unreadable or not Ed25519 */
	AUD_ERR_TAMPER = -4009,    /* the log on disk is damaged beyond a torn final line */
	AUD_ERR_VERIFY = -4010,    /* verification found damage (see struct aud_verify_result) */
	AUD_ERR_EOF = -4011,       /* no more records (readers) */
	AUD_ERR_SIGNATURE = -4012, /* a signature does not verify */
	AUD_ERR_LOCKED = -4013,    /* another process has the log open for writing */
	AUD_ERR_RANGE = -4014,     /* a sequence number or size outside the log */
	AUD_ERR_KEY_NOT_CURRENT = -4015, /* the signing key is not the key in force in the log:
	                                  * announce it with a rotation (hsmgate-audit
	                                  * rotate-key) or use the log's current key */
};

/* A static, human-readable message for an AUD_ERR_* code (or "unknown error"). */
const char *aud_strerror(int err);

/* ---- limits --------------------------------------------------------------------------- */

#define AUD_HASH_LEN    32           /* SHA-256 */
#define AUD_MAX_PAYLOAD (60u * 1024) /* one record's payload (an event's JSON) */
#define AUD_MAX_LINE    (64u * 1024) /* one stored line, header and hashes included */
/* The writer never has more than this many bytes of a segment written but not yet synced
 * (a batch is capped to it, and async mode syncs before passing it), so a power loss can
 * leave NULs followed by data only within this window (AUDIT.md §5). */
#define AUD_TORN_WINDOW ((uint64_t)1 << 20)
#define AUD_MAX_STRING  512 /* any string field of an event */
#define AUD_MAX_SIDS    16  /* matched policy statement ids in one event */
#define AUD_MAX_ATTRS   64  /* template attribute types in one event */
#define AUD_MAX_ORIGIN  128 /* the log's origin (checkpoint key name) */

/* A signed-note verifier key, "<origin>+<key id>+<base64 key>" (AUDIT.md §2.4). */
#define AUD_MAX_VKEY (AUD_MAX_ORIGIN + 64)

/* ---- events --------------------------------------------------------------------------- */

struct aud_event;

enum aud_outcome {
	AUD_OUTCOME_SUCCESS = 0,
	AUD_OUTCOME_FAILURE = 1,
	AUD_OUTCOME_PENDING = 2, /* written before a state-changing call is forwarded */
};

enum aud_severity {
	AUD_SEVERITY_AUTO = 0, /* derived: AT's code rules, then the verb (see AUDIT.md) */
	AUD_SEVERITY_NORMAL = 1,
	AUD_SEVERITY_WARNING = 2,
	AUD_SEVERITY_CRITICAL = 3,
};

enum aud_initiator_kind {
	AUD_INITIATOR_USER = 0,    /* tenant/<t>/user/<n>: service/security/account/user */
	AUD_INITIATOR_SERVICE = 1, /* tenant/<t>/service/<n>: service/security/account/serviceid */
	AUD_INITIATOR_CERT = 2, /* an unmapped certificate: service/security/client/certificateid */
	AUD_INITIATOR_SYSTEM =
	        3, /* hsmgate itself (audit, supervisor): service/security/clientid */
};

enum aud_credential {
	AUD_CRED_NONE = 0,
	AUD_CRED_CERTIFICATE = 1, /* mutual TLS */
	AUD_CRED_APIKEY = 2,      /* API key in the hello or as C_Login PIN */
	AUD_CRED_USER = 3,        /* a plain token PIN (the PIN itself is never recorded) */
	AUD_CRED_TOKEN = 4,
};

enum aud_target_kind {
	AUD_TARGET_GATEWAY = 0,   /* hsmgate/gateway */
	AUD_TARGET_PARTITION = 1, /* hsmgate/partition */
	AUD_TARGET_KEY = 2,       /* hsmgate/partition/key */
	AUD_TARGET_SESSION = 3,   /* hsmgate/partition/session */
	AUD_TARGET_POLICY = 4,    /* hsmgate/policy */
	AUD_TARGET_AUDIT = 5,     /* hsmgate/audit */
};

enum aud_policy_result {
	AUD_POLICY_NONE = 0, /* no decision was made (the block is omitted) */
	AUD_POLICY_ALLOW = 1,
	AUD_POLICY_DENY = 2,         /* an explicit deny matched */
	AUD_POLICY_DEFAULT_DENY = 3, /* no statement matched */
};

/* A new event for action `hsmgate.<object>.<verb>`; object is [a-z0-9-]+ (e.g. "keys",
 * "partition-session"), verb is [a-z0-9]+ (e.g. "sign"). eventTime defaults to the time
 * of this call. *ev is owned by the caller: aud_event_free(). AUD_ERR_INVALID on a bad
 * name. */
int aud_event_new(struct aud_event **ev, const char *object, const char *verb) AUD_WUR;
/* NULL is a no-op. */
void aud_event_free(struct aud_event *ev);

/*
 * Setters. Every string is copied, must be valid UTF-8 of at most AUD_MAX_STRING bytes
 * without control characters (AUD_ERR_INVALID / AUD_ERR_TOO_LARGE otherwise), and names
 * something — an identity, a CRN, a label — never a value: there is deliberately no setter
 * for PINs, API keys, key material, plaintext, ciphertext or IVs. A setter called twice
 * replaces the earlier value. A failed setter leaves the event as it was.
 */
int aud_event_set_time(struct aud_event *ev, uint64_t unix_ns) AUD_WUR;
int aud_event_set_outcome(struct aud_event *ev, enum aud_outcome o) AUD_WUR;
int aud_event_set_severity(struct aud_event *ev, enum aud_severity s) AUD_WUR;
/* The PKCS #11 return value: sets reason.reasonCode/reasonType (AT's HTTP-style code:
 * CKR_OK 200, denials 403, login failures 401, bad arguments 400, the rest 500), the CK_RV
 * name, and, unless set, the outcome (success iff CKR_OK). */
int aud_event_set_ckrv(struct aud_event *ev, unsigned long ckrv) AUD_WUR;
/* initiator.id (the principal, e.g. tenant/acme/user/alice), initiator.name (may be NULL:
 * then the id), its kind, credential kind and source address (IPv4/IPv6 text, or NULL). */
int aud_event_set_initiator(struct aud_event *ev, const char *principal, const char *name,
                            enum aud_initiator_kind kind, enum aud_credential cred,
                            const char *address) AUD_WUR;
/* target.id (a CRN, crn:hsmgate:...), target.name (may be NULL) and its kind. */
int aud_event_set_target(struct aud_event *ev, const char *crn, const char *name,
                         enum aud_target_kind kind) AUD_WUR;
/* requestData.mechanism: the CKM_* name (or 0x... for an unknown value). */
int aud_event_set_mechanism(struct aud_event *ev, unsigned long ckm) AUD_WUR;
/* requestData.template: appends a CKA_* type name; never its value. At most AUD_MAX_ATTRS. */
int aud_event_add_attribute(struct aud_event *ev, unsigned long cka) AUD_WUR;
/* requestData.inputLength / responseData.outputLength: sizes only. */
int aud_event_set_lengths(struct aud_event *ev, uint64_t in_len, uint64_t out_len) AUD_WUR;
/* responseData.keyId: the immutable id of a key the call created or used. */
int aud_event_set_key_id(struct aud_event *ev, const char *key_ref) AUD_WUR;
/* correlationId: "<gateway id>-<connection>-<request id>" built from numbers. */
int aud_event_set_correlation(struct aud_event *ev, uint64_t conn_id, uint32_t request_id) AUD_WUR;
/* policy.result and policy.sids (matched statement ids, each [A-Za-z0-9._-]{1,64}). */
int aud_event_set_policy(struct aud_event *ev, enum aud_policy_result res, const char *const *sids,
                         size_t nsids) AUD_WUR;
/* latencyUs: the time the request took. */
int aud_event_set_latency(struct aud_event *ev, uint64_t usec) AUD_WUR;
/* logSourceCRN (the gateway's CRN) and dataEvent (true for data-plane calls). */
int aud_event_set_source(struct aud_event *ev, const char *crn) AUD_WUR;
int aud_event_set_data_event(struct aud_event *ev, int data_event) AUD_WUR;
/* A free-text suffix for `message` (e.g. "mechanism not allowed by key policy"): must not
 * carry caller data; limited to AUD_MAX_STRING printable ASCII characters. */
int aud_event_set_detail(struct aud_event *ev, const char *text) AUD_WUR;

/* Encodes the event as one line of UTF-8 JSON (no newline, no control characters, fixed
 * field order; see AUDIT.md). *json is malloc'd, NUL-terminated, owned by the caller;
 * *len excludes the NUL. */
int aud_event_encode(const struct aud_event *ev, char **json, size_t *len) AUD_WUR;

/* ---- keys ----------------------------------------------------------------------------- */

/* Generates an Ed25519 checkpoint key: <prefix>.key (PKCS #8 PEM, mode 0600, created
 * exclusively: an existing file is AUD_ERR_IO with EEXIST) and <prefix>.pub (SPKI PEM). */
int aud_key_generate(const char *prefix) AUD_WUR;
/* Whether path may hold a private key: a regular file that only its owner can use (no
 * group or other permission bits). 0; AUD_ERR_IO if it cannot be stat'ed (errno says why);
 * AUD_ERR_KEY otherwise, with its permission bits in *mode. */
int aud_key_file_private(const char *path, unsigned *mode) AUD_WUR;

/*
 * The C2SP signed-note verifier key of an Ed25519 key for the log `origin`:
 * "<origin>+<key id, 8 hex>+<base64(0x01 || raw public key)>" into out[AUD_MAX_VKEY + 1]
 * (AUDIT.md §2.4). key_path is a public (SPKI) or private (PKCS #8) PEM file; only the
 * public half is used and nothing secret is written. AUD_ERR_KEY, AUD_ERR_INVALID (origin).
 */
int aud_key_vkey(const char *key_path, const char *origin, char *out) AUD_WUR;

/*
 * A keyring: the Ed25519 public keys a verifier trusts (its trust anchors). Each file holds
 * one or more SubjectPublicKeyInfo PEM blocks (a keyring file is `cat a.pub b.pub`).
 * AUD_ERR_KEY when a file is unreadable, holds no public key (a private key file holds
 * none), a damaged block or a key that is not Ed25519. *kr owned by the caller.
 */
struct aud_keyring;
int aud_keyring_load(struct aud_keyring **kr, const char *const *paths, size_t n) AUD_WUR;
/* Number of distinct keys. */
size_t aud_keyring_count(const struct aud_keyring *kr);
/* NULL is a no-op. */
void aud_keyring_free(struct aud_keyring *kr);

/* ---- the log -------------------------------------------------------------------------- */

struct aud_log;

enum aud_durability {
	AUD_DURABILITY_SYNC = 0,  /* a record's callback runs after the fdatasync covering it */
	AUD_DURABILITY_ASYNC = 1, /* after write(2); fdatasync at checkpoints only: a crash may
	                           * lose up to one checkpoint interval */
};

/*
 * Completion of one appended record, called once per record on the log's writer thread
 * (never from inside aud_log_append). status is 0 once the record is durable (per the
 * durability mode) or a negative AUD_ERR_* (AUD_ERR_FAILED, AUD_ERR_IO) if it never will
 * be. It must not block and must not call aud_log_* on the same log except
 * aud_log_durable_seq(); a libevent user typically queues (seq, status) and calls
 * event_active() to get back onto its loop.
 */
typedef void (*aud_done_fn)(void *arg, uint64_t seq, int status);

/* Options for aud_log_open(). Fill with aud_log_options_init() first, then override. */
struct aud_log_options {
	const char *dir;      /* the log directory (created if absent, mode 0700) */
	const char *origin;   /* the log's name, e.g. "hsmgate.example/audit/gw1":
	                       * [A-Za-z0-9._:/-]{1,AUD_MAX_ORIGIN} */
	const char *key_path; /* Ed25519 private key PEM (aud_key_generate) */
	enum aud_durability durability;
	uint32_t checkpoint_every; /* records between checkpoints; default 1000 */
	uint32_t checkpoint_ms;    /* max time between checkpoints, heartbeats when idle;
	                            * default 10000 */
	uint32_t batch_max;        /* records per group commit; default 4096 */
	uint64_t segment_bytes;    /* roll a segment beyond this size; default 256 MiB */
	uint32_t queue_max;        /* records waiting for the writer before appends fail
	                            * with AUD_ERR_TOO_LARGE (back-pressure); default 65536 */
	const char *source_crn;    /* logSourceCRN of the writer's own start and repair events
	                            * (e.g. the gateway's CRN); NULL: empty. Used during
	                            * aud_log_open only, not kept */
	int direct_io;             /* sync mode: write the active segment with O_DIRECT, past
	                            * the page cache (buffered where the file system refuses
	                            * it); default 1 */
};

void aud_log_options_init(struct aud_log_options *o);

/*
 * Opens (creating if needed) the log in o->dir for writing and starts its writer thread.
 * On an existing log it recomputes every leaf and chain hash and checks every checkpoint's
 * root, chain head and link; a torn final line (bytes after the last newline of the last
 * segment) is cut and a recovery record ("R", naming the bytes cut and their SHA-256) is
 * appended. Any other damage is AUD_ERR_TAMPER and nothing is changed on disk. Then a start
 * record ("S") and a checkpoint are appended. An exclusive flock on <dir>/LOCK keeps a
 * second writer out (AUD_ERR_LOCKED). *log is owned by the caller: aud_log_close().
 */
int aud_log_open(struct aud_log **log, const struct aud_log_options *o) AUD_WUR;

/*
 * Appends one event. On success *seq (if not NULL) is its sequence number and done (if not
 * NULL) will be called exactly once for it; on failure done is never called. Never blocks
 * on I/O: it encodes, hashes and queues; the writer thread writes and syncs batches.
 * AUD_ERR_FAILED once the log has failed (fail closed: the caller must refuse the request),
 * AUD_ERR_TOO_LARGE when queue_max records are waiting, AUD_ERR_CLOSED while closing.
 */
int aud_log_append(struct aud_log *log, const struct aud_event *ev, aud_done_fn done, void *arg,
                   uint64_t *seq) AUD_WUR;

/*
 * Holding back the writer's wake-up (AUDIT.md §5). Between aud_log_hold and the matching
 * aud_log_release (nested: a counter), appends queue their records without waking the
 * writer thread; the release that ends the outermost hold wakes it once if anything was
 * appended, so the records of one batch (e.g. the replies an event-loop callback handles)
 * share one fdatasync. A writer that is already busy still takes what is queued when it is
 * done; aud_log_wait, aud_log_checkpoint and aud_log_rotate wake it regardless, and so does
 * the heartbeat (checkpoint_ms), which bounds the delay of a hold never released. Cheap (one
 * uncontended lock); any thread; NULL is ignored; a release without a hold does nothing.
 */
void aud_log_hold(struct aud_log *log);
void aud_log_release(struct aud_log *log);

/* Blocks until the record `seq` is durable or the log has failed; 0 or the failure. For
 * tools and tests; the gateway uses the callback instead. */
int aud_log_wait(struct aud_log *log, uint64_t seq) AUD_WUR;

/* Appends a checkpoint now (e.g. before handing a checkpoint to a witness) and waits for it
 * to be durable; *seq (may be NULL) is its sequence number. */
int aud_log_checkpoint(struct aud_log *log, uint64_t *seq) AUD_WUR;

/*
 * Rotates the checkpoint signing key (AUDIT.md §2.4): seals what was written with a
 * checkpoint signed by the current key (unless the last record is one), appends a
 * key-rotation record ("K") signed by the current key and by the new key (proof of
 * possession) and naming both, the event hsmgate.audit-key.rotate, and a checkpoint signed
 * by the new key; waits until that checkpoint is durable. From then on the log signs with
 * the new key; later opens must use it (the old key gets AUD_ERR_KEY_NOT_CURRENT).
 * *seq (may be NULL) is the rotation record's seq. AUD_ERR_KEY for an unreadable or
 * non-Ed25519 key file, AUD_ERR_INVALID for the key in force or a key the log retired,
 * AUD_ERR_FAILED once the log has failed.
 */
int aud_log_rotate(struct aud_log *log, const char *new_key_path, uint64_t *seq) AUD_WUR;

/* Highest sequence number known durable (UINT64_MAX before the first), and the sticky
 * failure (0 while healthy). Both thread-safe and non-blocking. */
uint64_t aud_log_durable_seq(struct aud_log *log);
int aud_log_failed(struct aud_log *log);

/* Writes a final checkpoint, drains the queue (running every pending callback), stops the
 * writer, closes. Returns the sticky failure if there was one. NULL is a no-op (0). */
int aud_log_close(struct aud_log *log);

/* ---- reading records ------------------------------------------------------------------ */

/* A parsed record line: pointers into the caller's line buffer (valid while it is). */
struct aud_record_view {
	uint64_t seq;
	uint64_t time_ns;
	char type; /* 'E' event, 'C' checkpoint, 'S' start, 'R' recovery, 'K' key rotation */
	const char *entry; /* the hashed bytes: "GWA1 <seq> <time> <type> TAB <payload>" */
	size_t entry_len;
	const char *payload; /* inside entry */
	size_t payload_len;
	uint8_t leaf[AUD_HASH_LEN];  /* as stored (not recomputed) */
	uint8_t chain[AUD_HASH_LEN]; /* as stored */
};

/* Parses one record line of `len` bytes (without its newline). AUD_ERR_MALFORMED on any
 * deviation from the grammar in AUDIT.md; hashes are not checked here. */
int aud_record_parse(const char *line, size_t len, struct aud_record_view *rec) AUD_WUR;
/* The leaf hash of a parsed record recomputed from its entry bytes. */
void aud_record_leaf(const struct aud_record_view *rec, uint8_t leaf[AUD_HASH_LEN]);
/* 1 if records of this type carry event JSON (E, S, R) — what sinks deliver and tools
 * print as events; 0 for signed statements (C checkpoint, K key rotation). */
int aud_record_is_event(char type);

struct aud_reader;

/* Reads the segments of a log directory in order (read-only, no lock). */
int aud_reader_open(struct aud_reader **r, const char *dir) AUD_WUR;
/*
 * The next complete line (without its newline) in *line and *len, valid until the next call;
 * *seg_first is the first sequence number in the segment's name, *line_no the 0-based line
 * index across the log. AUD_ERR_EOF at the end (a later call may find more when the log
 * grows: `tail -f`); an incomplete final line is not returned and *torn (if not NULL) is
 * set to its length. AUD_ERR_TOO_LARGE for a line over AUD_MAX_LINE. A run of NUL bytes
 * where a line starts (or inside the final line) is the end of the data written so far,
 * like EOF, if every byte after it is NUL (the writer's zero-filled room, AUDIT.md §2);
 * AUD_ERR_TAMPER if not (but see aud_reader_at_rest()), or in a segment that is not the last.
 */
int aud_reader_next(struct aud_reader *r, const char **line, size_t *len, uint64_t *seg_first,
                    uint64_t *line_no, size_t *torn) AUD_WUR;
/*
 * For a reader of a log at rest that a power loss may have hit (start-up recovery, verify),
 * not for one that follows a live log: at the end of the last segment, NUL bytes followed
 * by data that ends within AUD_TORN_WINDOW bytes of the first NUL are the writer's last,
 * unsynced write with its sectors persisted out of order (AUDIT.md §5). They end the data as
 * a torn final line does: AUD_ERR_EOF, with *torn counted from the line's start to the last
 * byte that is not NUL, and aud_reader_gap() saying where the NULs begin. Any other data
 * after NULs stays AUD_ERR_TAMPER.
 */
void aud_reader_at_rest(struct aud_reader *r);
/* 1 and *offset (in the last segment) when the last AUD_ERR_EOF ended at such a torn write;
 * 0 otherwise. */
int aud_reader_gap(const struct aud_reader *r, uint64_t *offset);
void aud_reader_free(struct aud_reader *r);

/* ---- checkpoints ---------------------------------------------------------------------- */

/* A parsed checkpoint note (C2SP signed-note text, see AUDIT.md). */
struct aud_checkpoint_view {
	char origin[AUD_MAX_ORIGIN + 1];
	uint64_t size;               /* leaves 0..size-1 */
	uint8_t root[AUD_HASH_LEN];  /* RFC 6962 MTH */
	uint8_t chain[AUD_HASH_LEN]; /* chain hash of record size-1 */
	uint64_t time_ns;
	uint8_t prev[AUD_HASH_LEN];      /* SHA-256 of the previous checkpoint's note */
	uint8_t note_hash[AUD_HASH_LEN]; /* SHA-256 of this whole note */
};

/* Parses a note's text and checks its Ed25519 signature with the public key in
 * pubkey_path (PEM). AUD_ERR_MALFORMED, AUD_ERR_SIGNATURE (including: no signature line
 * from this key), AUD_ERR_KEY. `cp` is filled even when only the signature fails. */
int aud_checkpoint_verify_note(const char *note, size_t len, const char *pubkey_path,
                               struct aud_checkpoint_view *cp) AUD_WUR;
/* Parses a note without checking any signature (fuzzing, tools that only display). */
int aud_checkpoint_parse_note(const char *note, size_t len, struct aud_checkpoint_view *cp) AUD_WUR;
/* Decodes a checkpoint record's payload (base64) into its note text: *note malloc'd, owned
 * by the caller. */
int aud_checkpoint_decode_payload(const char *payload, size_t len, char **note,
                                  size_t *note_len) AUD_WUR;

/* ---- key rotations -------------------------------------------------------------------- */

/* A parsed key-rotation statement (the note in a 'K' record's payload; AUDIT.md §2.4). */
struct aud_rotation_view {
	char origin[AUD_MAX_ORIGIN + 1];
	uint64_t seq;                /* the rotation record's seq: the new key signs after it */
	uint64_t time_ns;            /* the rotation record's time */
	uint8_t chain[AUD_HASH_LEN]; /* chain head of record seq-1 (zeros for seq 0) */
	uint8_t old_key[32];         /* raw Ed25519 public keys */
	uint8_t new_key[32];
	char old_vkey[AUD_MAX_VKEY + 1]; /* as written: "<origin>+<id>+<base64>" */
	char new_vkey[AUD_MAX_VKEY + 1];
	uint8_t old_sig[64]; /* by the old key (authorisation) */
	uint8_t new_sig[64]; /* by the new key (proof of possession) */
	size_t body_len;     /* the signed bytes: note[0..body_len) */
};

/* Parses a statement (decode a 'K' payload with aud_checkpoint_decode_payload first):
 * grammar, key ids consistent with the keys and with the signature lines. Signatures are
 * not checked here. AUD_ERR_MALFORMED otherwise. */
int aud_rotation_parse_note(const char *note, size_t len, struct aud_rotation_view *rv) AUD_WUR;

/* ---- verification --------------------------------------------------------------------- */

enum aud_damage {
	AUD_DAMAGE_NONE = 0,
	AUD_DAMAGE_MODIFIED = 1,   /* a record's bytes or hashes changed */
	AUD_DAMAGE_DELETED = 2,    /* one or more records missing */
	AUD_DAMAGE_REORDERED = 3,  /* a record appears out of order */
	AUD_DAMAGE_INSERTED = 4,   /* a line that is not the expected record */
	AUD_DAMAGE_TRUNCATED = 5,  /* fewer records than a checkpoint kept elsewhere covers */
	AUD_DAMAGE_SIGNATURE = 6,  /* a checkpoint's signature does not verify with the key */
	AUD_DAMAGE_CHECKPOINT = 7, /* a well-signed checkpoint or rotation inconsistent with
	                            * the log (root, chain head, size, time, previous link,
	                            * the rotation's position) */
	AUD_DAMAGE_KEY_WINDOW = 8, /* a checkpoint or rotation signed by a key that is known but
	                            * not in force at its seq (retired, or not yet rotated to) */
};

/* "modified", "deleted", ... */
const char *aud_damage_name(enum aud_damage d);

struct aud_verify_options {
	const char *dir;
	const char *pubkey_path;           /* the trust anchors (a keyring file) ... */
	const struct aud_keyring *keyring; /* ... or these; when set, pubkey_path is unused */
	uint64_t from;                     /* first record to check in full (0) */
	uint64_t to;                       /* last record to check (UINT64_MAX: the end) */
	const char *checkpoint_path;       /* an externally kept checkpoint note, or NULL */
};

struct aud_verify_result {
	enum aud_damage damage;
	uint64_t seq; /* the first bad sequence number */
	char detail[256];
	uint64_t records;                    /* records read */
	uint64_t checkpoints;                /* checkpoints verified */
	uint64_t last_checkpoint_size;       /* the size signed by the last good checkpoint */
	uint64_t unsealed;                   /* records after the last checkpoint */
	uint64_t rotations;                  /* key rotations followed */
	char key_in_force[AUD_MAX_VKEY + 1]; /* vkey of the key in force at the end ("" if none) */
};

void aud_verify_options_init(struct aud_verify_options *o);
/*
 * Verifies a log: every leaf and chain hash (records before o->from contribute their
 * stored leaf, which the next checkpoint's root then authenticates), every checkpoint's
 * signature, size, root, chain head, time and previous-checkpoint link, every key
 * rotation (signed by the key in force and by the new key, at its own position) and the
 * key windows they make, and against o->checkpoint_path, that the log still holds that
 * tree (truncation, rollback). The first checkpoint or rotation checked in full must be
 * signed by a trust anchor; rotations then move the key in force (AUDIT.md §3).
 * 0 if the log verifies; AUD_ERR_VERIFY with *res naming the first bad record and the
 * kind of damage; other errors (AUD_ERR_KEY, AUD_ERR_IO) when it could not run.
 */
int aud_log_verify(const struct aud_verify_options *o, struct aud_verify_result *res) AUD_WUR;

/* ---- Merkle proofs (RFC 6962 §2.1) ---------------------------------------------------- */

/* MTH of n leaf hashes (the empty tree is SHA-256 of nothing). */
void aud_merkle_root(const uint8_t (*leaves)[AUD_HASH_LEN], uint64_t n, uint8_t root[AUD_HASH_LEN]);
/* The audit path for leaf m in the tree of the first n leaves: *path malloc'd (caller
 * frees), *npath hashes. AUD_ERR_RANGE unless m < n. */
int aud_merkle_inclusion_proof(const uint8_t (*leaves)[AUD_HASH_LEN], uint64_t n, uint64_t m,
                               uint8_t (**path)[AUD_HASH_LEN], size_t *npath) AUD_WUR;
/* RFC 9162 §2.1.3.2: 0 if `path` proves `leaf` at index m in the tree of size n with
 * `root`; AUD_ERR_VERIFY otherwise. */
int aud_merkle_inclusion_verify(const uint8_t leaf[AUD_HASH_LEN], uint64_t m, uint64_t n,
                                const uint8_t (*path)[AUD_HASH_LEN], size_t npath,
                                const uint8_t root[AUD_HASH_LEN]) AUD_WUR;
/* The consistency proof between sizes m <= n (RFC 6962 §2.1.2); AUD_ERR_RANGE otherwise. */
int aud_merkle_consistency_proof(const uint8_t (*leaves)[AUD_HASH_LEN], uint64_t m, uint64_t n,
                                 uint8_t (**proof)[AUD_HASH_LEN], size_t *nproof) AUD_WUR;
/* RFC 9162 §2.1.4.2: 0 if `proof` shows the tree (m, root1) is a prefix of (n, root2). */
int aud_merkle_consistency_verify(uint64_t m, uint64_t n, const uint8_t root1[AUD_HASH_LEN],
                                  const uint8_t root2[AUD_HASH_LEN],
                                  const uint8_t (*proof)[AUD_HASH_LEN], size_t nproof) AUD_WUR;

/* ---- proofs from a log directory ------------------------------------------------------ */

/*
 * An inclusion proof bundle for record `seq` (text, AUDIT.md "Proofs"): the record's entry
 * bytes, the audit path, and the signed checkpoint note it is proven against — the first
 * checkpoint record after seq, or the one whose size is `size` when size != 0. Anyone with
 * the public key checks it with aud_proof_verify(), without the log. *text malloc'd.
 * AUD_ERR_RANGE when no such checkpoint exists yet.
 */
int aud_proof_build(const char *dir, uint64_t seq, uint64_t size, char **text, size_t *len) AUD_WUR;
/* Checks a bundle: the note's signature (by a key of the keyring file pubkey_path), the
 * leaf from the entry, the path to the root. On success *seq and (if not NULL) a malloc'd
 * copy of the record's payload. AUD_ERR_VERIFY, AUD_ERR_SIGNATURE, AUD_ERR_MALFORMED or
 * AUD_ERR_KEY (after every parsing step) otherwise. */
int aud_proof_verify(const char *text, size_t len, const char *pubkey_path, uint64_t *seq,
                     char **payload, size_t *payload_len) AUD_WUR;
/* The same with a keyring: the note must be signed by one of its keys. */
int aud_proof_verify_keyring(const char *text, size_t len, const struct aud_keyring *kr,
                             uint64_t *seq, char **payload, size_t *payload_len) AUD_WUR;
/*
 * Checks that the log's tree at the checkpoint `new_note` (NULL: the log's last checkpoint
 * record) extends the tree at `old_note` (e.g. one an auditor kept): both signatures (each
 * by the key in force at its size, see aud_log_consistency_keyring; pubkey_path is a
 * keyring file), then an RFC 6962 consistency proof computed from the log's leaves and
 * verified against both roots. *proof_text (may be NULL) receives the proof as text: "old
 * N", "new M", one "hash <hex>" line per node. AUD_ERR_VERIFY when they are not consistent,
 * AUD_ERR_SIGNATURE when a note is not signed by the key in force at its size.
 */
int aud_log_consistency(const char *dir, const char *pubkey_path, const char *old_note,
                        size_t old_len, const char *new_note, size_t new_len,
                        char **proof_text) AUD_WUR;
/* The same with a keyring of trust anchors. Across key rotations each note must be signed
 * by the key in force at its size, learnt from the log's rotation records (a rotation
 * signed by a trusted key in force makes its new key trusted). */
int aud_log_consistency_keyring(const char *dir, const struct aud_keyring *kr, const char *old_note,
                                size_t old_len, const char *new_note, size_t new_len,
                                char **proof_text) AUD_WUR;
/* The log's last checkpoint note (text) in *note (malloc'd): what to keep elsewhere. */
int aud_log_last_checkpoint(const char *dir, char **note, size_t *len) AUD_WUR;

/* ---- encodings shared with the tool ----------------------------------------------------- */

/* Lower-case hex of n bytes into out[2n+1]. */
void aud_hex_encode(const uint8_t *in, size_t n, char *out);
/* Exactly 2n hex digits into out[n]; AUD_ERR_MALFORMED otherwise. */
int aud_hex_decode(const char *in, size_t len, uint8_t *out, size_t n) AUD_WUR;

/* ==== sinks: streaming the log to SIEMs, at-least-once (audit/sink*.c) ================ */
/*
 * A sink forwards the records of a log directory to one destination, reading the log as
 * its spool: nothing is queued in memory beyond one window of unacknowledged records, so
 * a sink outage never blocks the writer and loses nothing. Each sink keeps a cursor file
 * holding the log's origin and `next`: every record below `next` has been acknowledged by
 * the destination. The cursor advances only on an acknowledgement (see AUDIT.md "Sinks"
 * for what each kind counts as one); after a crash the sink resumes from it and may send
 * records again, which consumers drop by (origin, seq). Event records (E, S, R) are
 * delivered; checkpoint records (C) are not (their seq is still passed by the cursor).
 *
 * Destinations (url):
 *   file:PATH                  JSON lines: the stored event bytes, one per line, fsync'd
 *   syslog://HOST:PORT         RFC 5424 messages over TLS, RFC 5425 octet-counting
 *   relp://HOST:PORT           the same messages as RELP "syslog" commands over TLS,
 *                              each acknowledged by the server (rsyslog imrelp)
 *   https://HOST:PORT/PATH     POST of JSON-array batches with a bearer token
 *   http://HOST:PORT/PATH      the same without TLS: for tests on loopback only
 */

struct aud_sink;

/* Log lines of a sink (delivery failures, quarantine): level is a syslog(3) LOG_* value. */
typedef void (*aud_sink_log_fn)(void *arg, int level, const char *msg);
/* The highest durable sequence number (aud_log_durable_seq), or UINT64_MAX for none. */
typedef uint64_t (*aud_sink_durable_fn)(void *arg);

/* Options for aud_sink_open(). Fill with aud_sink_options_init() first, then override. */
struct aud_sink_options {
	const char *log_dir;         /* the log directory (read-only) */
	const char *url;             /* the destination, see above */
	const char *cursor_path;     /* the cursor file (created on the first acknowledgement) */
	const char *origin;          /* the log's origin; NULL: read from its first checkpoint */
	const char *ca_file;         /* TLS: CA bundle to verify the server; NULL: system store */
	const char *cert_file;       /* TLS client certificate (PEM), or NULL */
	const char *key_file;        /* its private key (PEM), or NULL */
	const char *token_file;      /* https: a file holding the bearer token, or NULL */
	const char *quarantine_path; /* https: rejected batches; NULL: <cursor_path>.quarantine */
	const char *hostname;        /* syslog, relp HOSTNAME; NULL: gethostname() */
	uint32_t batch_max;          /* records per write or POST; default 256 */
	uint32_t window_max;         /* unacknowledged records in flight; default 4096 */
	uint32_t poll_ms;            /* how often to look for new records when following; 200 */
	uint32_t settle_ms;          /* syslog: see AUDIT.md "Sinks"; default 2000 */
	uint32_t backoff_min_ms;     /* first retry delay after a failure; default 250 */
	uint32_t backoff_max_ms;     /* cap of the exponential backoff; default 30000 */
	uint32_t timeout_ms;         /* connect/read/write timeout; default 10000 */
	aud_sink_durable_fn durable; /* in-process use: deliver only durable records; or NULL */
	void *durable_arg;
	aud_sink_log_fn log; /* NULL: lines go to stderr */
	void *log_arg;
};

void aud_sink_options_init(struct aud_sink_options *o);

/*
 * Opens a sink: parses the url, reads the cursor (AUD_ERR_MALFORMED if it is damaged,
 * AUD_ERR_INVALID if it names another origin), loads TLS files (AUD_ERR_KEY) and opens
 * the log for reading. It does not connect yet. *s is owned by the caller: aud_sink_close().
 * The option strings are not copied: they must stay valid until aud_sink_close().
 */
int aud_sink_open(struct aud_sink **s, const struct aud_sink_options *o) AUD_WUR;

/*
 * One pass: delivers every record the log holds now, waiting for their acknowledgements,
 * retrying with backoff while aud_sink_stop() has not been called. 0 when caught up (all
 * acknowledged); AUD_ERR_CLOSED if stopped first (unacknowledged records stay in the log);
 * AUD_ERR_IO and friends only for local failures (log or cursor unreadable/unwritable);
 * AUD_ERR_TAMPER if the log's sequence numbers are not contiguous (run verify).
 */
int aud_sink_run_once(struct aud_sink *s) AUD_WUR;

/* Follows the log as it grows (polling every poll_ms) until aud_sink_stop(); returns
 * AUD_ERR_CLOSED then, or a local failure as aud_sink_run_once(). */
int aud_sink_run(struct aud_sink *s) AUD_WUR;

/* Asks a running aud_sink_run*() to return soon (within ~50 ms, or a network timeout);
 * sticky: later runs return AUD_ERR_CLOSED at once. Thread- and async-signal-safe. */
void aud_sink_stop(struct aud_sink *s);

/* The cursor (every record below it acknowledged) and one past the last record seen in
 * the log; thread-safe. Their difference is the sink's lag. */
uint64_t aud_sink_cursor(struct aud_sink *s);
uint64_t aud_sink_head(struct aud_sink *s);

/* Closes the connection and frees the sink. NULL is a no-op. */
void aud_sink_close(struct aud_sink *s);

/* Reads a cursor file: *next and, if origin is not NULL, its origin into
 * origin[AUD_MAX_ORIGIN + 1]. A missing file is 0 with *next = 0 and origin "". */
int aud_sink_cursor_read(const char *path, uint64_t *next, char *origin) AUD_WUR;
/* Writes one atomically: temp file, fsync, rename, fsync of the directory. */
int aud_sink_cursor_write(const char *path, const char *origin, uint64_t next) AUD_WUR;

enum aud_spool_state {
	AUD_SPOOL_OK = 0,   /* lag below the soft limit */
	AUD_SPOOL_SOFT = 1, /* at or over soft: raise a critical audit event and alert */
	AUD_SPOOL_HARD = 2, /* at or over hard: fail closed (refuse requests) */
};

/*
 * The spool check a gateway runs for each required sink: lag = head - cursor records
 * (head: one past the log's last durable record, e.g. aud_log_durable_seq() + 1; cursor:
 * aud_sink_cursor() or aud_sink_cursor_read()). A limit of 0 is disabled. *lag (may be
 * NULL) receives the lag; a cursor beyond head counts as no lag.
 */
enum aud_spool_state aud_spool_check(uint64_t head, uint64_t cursor, uint64_t soft, uint64_t hard,
                                     uint64_t *lag);

/* ==== end of sinks ==================================================================== */

#endif
