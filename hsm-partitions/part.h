/*
 * hsm-partitions/part.h — the partition worker: one tenant's token served over the
 * gateway's socketpair, with its keystore in LMDB.
 *
 * The worker owns PKCS #11 semantics (slot, token, sessions, login state, objects and their
 * attributes, multi-part operations). The gateway hands it one client frame at a time with
 * the caller's context; the worker answers with a complete client reply frame. Everything
 * the gateway may not see (PIN hashes, object values, key material) stays in this process.
 *
 * Conventions (STYLE.md): functions return 0 on success or a negative PART_ERR_* code;
 * CK_RV appears only inside reply frames. Types are opaque. Nothing here is thread-safe:
 * every function is called from the worker's loop thread (or hsmctl's one thread); the
 * crypto threads a worker may start (part_worker_threads) run only the calls it hands them.
 */
#ifndef HSMGATE_PART_H
#define HSMGATE_PART_H

#include <stddef.h>
#include <stdint.h>

#include "proto/proto.h"

#define PART_WUR __attribute__((warn_unused_result))

/* ---- errors --------------------------------------------------------------------------- */

enum part_err {
	PART_OK = 0,
	PART_ERR_NOMEM = -5000,
	PART_ERR_IO = -5001,        /* a file, directory or socket operation failed (errno kept) */
	PART_ERR_STORE = -5002,     /* LMDB failed (details on stderr once, at the failing call) */
	PART_ERR_NOT_FOUND = -5003, /* no such record */
	PART_ERR_CORRUPT = -5004,   /* a stored record does not decode or fails its seal */
	PART_ERR_INVALID = -5005,   /* an argument the caller should not have passed */
	PART_ERR_EXISTS = -5006,    /* the token is already initialised (hsmctl without --force) */
	PART_ERR_CRYPTO = -5007,    /* OpenSSL failed (RNG, KDF, digest) */
	PART_ERR_IPC = -5008,       /* the gateway's IPC framing is broken: an internal bug */
	PART_ERR_PIN = -5009,       /* a PIN outside the token's length range */
	PART_ERR_SYS = -5010,       /* a process-hardening call (prctl, setrlimit) failed */
};

/* A static, human-readable message for a PART_ERR_* code (or "unknown error"). */
const char *part_strerror(int err);

/* ---- limits --------------------------------------------------------------------------- */

#define PART_PIN_MIN      4           /* ulMinPinLen */
#define PART_PIN_MAX      255         /* ulMaxPinLen */
#define PART_PIN_TRIES    5           /* wrong PINs in a row before the PIN locks */
#define PART_PIN_ITER     200000      /* PBKDF2-HMAC-SHA256 iterations (pin.c says why) */
#define PART_MAX_SESSIONS 4096        /* ulMaxSessionCount, over all connections */
#define PART_IPC_SLACK    (64u << 10) /* IPC body = caller context + a frame of max_frame */

/* Vendor attribute: the immutable object id (32 hex characters), the policy resource
 * <ref> of crn:hsmgate:<tenant>:partition:<name>:key:<ref>. Read-only; never in a
 * creation template. */
#define CKA_HSMGATE_REF (CKA_VENDOR_DEFINED | 0x4847UL)
#define PART_REF_LEN    32

/* ---- the worker ----------------------------------------------------------------------- */

struct part_worker;

struct part_worker_opts {
	const char *partition;   /* required: the partition's name (serial number, messages) */
	const char *store_dir;   /* required: the LMDB environment's directory, made 0700 */
	const char *token_label; /* label an uninitialised token shows; NULL = partition */
	uint32_t slot;           /* the slot id clients see, 1..255 */
	uint32_t max_frame;      /* largest client frame; 0 = PROTO_MAX_FRAME_DEFAULT */
	uint32_t pin_iter;       /* PBKDF2 iterations for new PIN hashes; 0 = PART_PIN_ITER.
	                          * Only tests lower it: the config has no such knob. */
	const char *tenant;      /* the owning tenant: key CRNs of the policy; NULL = "" */
};

/*
 * Opens (creating if needed) the partition's store under o->store_dir and loads the token:
 * its metadata and every token object, each through part_unseal(). The worker keeps no
 * pointer to `o` or its strings. On success `*out` is owned by the caller.
 * Errors: PART_ERR_INVALID (missing name or dir, slot outside 1..255), PART_ERR_IO,
 * PART_ERR_STORE, PART_ERR_CORRUPT, PART_ERR_NOMEM.
 */
int part_worker_open(const struct part_worker_opts *o, struct part_worker **out) PART_WUR;

/*
 * The worker process's start-up in the order of STYLE.md rule 10: creates OpenSSL's secure
 * heap for key material (sized from RLIMIT_MEMLOCK; a heap that cannot be made refuses
 * the start, one that cannot be locked is a warning on stderr), opens this partition's
 * LMDB environment (after exec, never inherited), then PR_SET_DUMPABLE 0 and RLIMIT_CORE
 * 0, then (when a uid is configured — not yet) drops groups, gid and uid and sets
 * PR_SET_DUMPABLE 0 again, then PR_SET_NO_NEW_PRIVS. A seccomp filter follows in a later
 * issue. Errors: PART_ERR_NOMEM (the secure heap), those of part_worker_open(),
 * PART_ERR_SYS.
 */
int part_worker_start(const struct part_worker_opts *o, struct part_worker **out) PART_WUR;

/* Closes every session, wipes in-memory object values and closes the store. NULL: no-op. */
void part_worker_free(struct part_worker *w);

/*
 * Installs the policy text the gateway sent (PROTO_IPC_POLICY; empty: no policy) for the
 * key-level decisions (authz.c). A text that fails to load leaves the old policy in force,
 * says why on stderr, and returns PART_ERR_INVALID; the worker keeps serving.
 */
int part_worker_set_policy(struct part_worker *w, const uint8_t *text, size_t len);

/*
 * The key-level policy decision taken while handling the last request, if any, encoded for
 * the gateway's audit event (a PROTO_IPC_AUDIT body, docs/PROTOCOL.md §11):
 *   u32 request id | string action | u8 result (0 implicit deny, 1 explicit deny,
 *   2 allowed) | string sids (comma-separated) | string key ref (empty: the partition)
 * Returns 1 and appends to `body` when there is one (once), 0 when there is none,
 * PART_ERR_NOMEM when encoding fails.
 */
int part_worker_decision(struct part_worker *w, struct proto_buf *body);

/*
 * Handles one client request frame (`frame`, `len` bytes: header and body) of connection
 * `conn_id` on behalf of `ctx`, and appends the complete reply frame to `reply` (normally
 * empty): type PROTO_MSG_REPLY, the same call and request id, body u64 CK_RV then the
 * call's response fields iff proto_reply_has_fields(call, rv).
 * A body that does not decode gets CKR_ARGUMENTS_BAD; an unknown or unimplemented call
 * CKR_FUNCTION_NOT_SUPPORTED. Returns PART_ERR_IPC only when the frame header itself is
 * broken (not a request, wrong length) — only the gateway writes to the worker, so that is
 * an internal bug, and the caller exits — and PART_ERR_NOMEM when the reply cannot be built.
 * `frame` may hold a PIN: the caller wipes it after the call.
 */
int part_worker_handle(struct part_worker *w, uint64_t conn_id, const struct proto_ctx *ctx,
                       const uint8_t *frame, size_t len, struct proto_buf *reply) PART_WUR;

/*
 * Crypto threads (pool.c, later.c). With part_worker_threads(w, n), n > 1,
 * part_worker_handle() may hand a one-shot RSA private-key call (C_Sign, C_SignRecover,
 * C_Decrypt) or the computation of an RSA key pair (C_GenerateKeyPair) to one of n - 1
 * helper threads and return PART_LATER with nothing in `reply`.
 * Its reply, a whole PROTO_IPC_REPLY message for its connection, is appended to `out` by a
 * later part_worker_flush(): with `all`, that waits for every call handed over (running
 * those no helper has started); without, it takes those that have ended. Calls are still
 * answered as if served in order: one that could touch a session or object in use by a
 * call handed over waits for it first. n of 0 or 1: every call is served in line (the
 * default). Errors: PART_ERR_INVALID (n > PART_THREADS_MAX), PART_ERR_NOMEM, PART_ERR_IO,
 * PART_ERR_SYS; the worker then serves in line.
 */
#define PART_LATER       1
#define PART_THREADS_MAX 64
int part_worker_threads(struct part_worker *w, unsigned n) PART_WUR;
/* PART_ERR_NOMEM when a reply cannot be built (the worker's IPC is then unusable). */
int part_worker_flush(struct part_worker *w, struct proto_buf *out, int all) PART_WUR;

/* PROTO_IPC_CONN_CLOSED: closes every session of `conn_id` (as C_CloseAllSessions would),
 * destroys its session objects and forgets its login state. Unknown ids are a no-op. */
void part_worker_conn_closed(struct part_worker *w, uint64_t conn_id);

/*
 * The worker's loop on `fd` (the gateway's end of a SOCK_STREAM socketpair): blocking reads
 * of IPC messages (body at most max_frame + PART_IPC_SLACK), dispatch, and a PROTO_IPC_REPLY
 * with the same conn_id for each request. Read buffers are wiped after every message (they
 * may carry PINs). Returns 0 on EOF at a message boundary (the gateway went away), and
 * PART_ERR_IPC on broken framing, an unknown message kind or EOF inside a message,
 * PART_ERR_IO on a read/write error, PART_ERR_NOMEM.
 */
int part_worker_serve(struct part_worker *w, int fd) PART_WUR;

/* ---- offline administration (hsmctl) -------------------------------------------------- */

/*
 * Initialises the token of the partition described by `o` directly in its store, as
 * C_InitToken followed by an SO login, C_InitPIN and a logout would: label (at most 32
 * bytes; NULL = o->token_label or the partition name), SO PIN and user PIN. Meant to run
 * before the daemon starts. An initialised token is refused with PART_ERR_EXISTS unless
 * `force`, which destroys every token object and sets both PINs anew.
 * The PINs are not kept; the caller wipes its copies. Errors: PART_ERR_PIN (a PIN outside
 * PART_PIN_MIN..PART_PIN_MAX), PART_ERR_INVALID (label too long), those of
 * part_worker_open().
 */
int part_token_provision(const struct part_worker_opts *o, const char *label, const uint8_t *so_pin,
                         size_t so_len, const uint8_t *user_pin, size_t user_len,
                         int force) PART_WUR;

/* ---- the passthrough backend (passthrough.c) ------------------------------------------ */
/*
 * A `backend: pkcs11` partition: the worker forwards every call to a vendor PKCS #11
 * module's token (passthrough.c explains the handle mapping and the shared vendor login).
 * Same contracts as the soft worker's functions above.
 */
struct part_pt;

struct part_pt_opts {
	const char *partition; /* the partition's name (messages) */
	const char *module;    /* required: path of the vendor PKCS #11 library */
	const char *token;     /* required: label of the vendor token to front */
	uint32_t slot;         /* the slot id clients see, 1..255 */
	uint32_t max_frame;    /* largest client frame; 0 = PROTO_MAX_FRAME_DEFAULT */
};

/* dlopens the module, C_Initialize (CKF_OS_LOCKING_OK), finds the one slot whose token has
 * the label. Errors: PART_ERR_INVALID (options; two tokens with the label), PART_ERR_IO
 * (dlopen, C_GetFunctionList, C_Initialize, C_GetSlotList: a line on stderr),
 * PART_ERR_NOT_FOUND (no such token), PART_ERR_NOMEM. */
int part_pt_open(const struct part_pt_opts *o, struct part_pt **out) PART_WUR;
/* As part_worker_handle. */
int part_pt_handle(struct part_pt *p, uint64_t conn_id, const struct proto_ctx *ctx,
                   const uint8_t *frame, size_t len, struct proto_buf *reply) PART_WUR;
/* As part_worker_conn_closed: the connection's vendor sessions are closed. */
void part_pt_conn_closed(struct part_pt *p, uint64_t conn_id);
/* As part_worker_threads, for every init, one-shot call (C_Encrypt, C_Decrypt, C_Digest,
 * C_Sign, C_SignRecover, C_Verify, C_VerifyRecover), update and final (PROTO_CF_OP_PART),
 * read of objects (PROTO_CF_READ_OBJECTS), C_GenerateRandom and key generation, whatever its
 * mechanism: the vendor's time (a network HSM's round trip) is what the threads overlap; a
 * call on a session with a call out is queued behind it (part_later_queue). n > 1 starts n
 * helper threads: the loop thread makes none of these calls itself, so that it stays free
 * to serve the other sessions. part_pt_handle may then return PART_LATER, as part_worker_handle
 * does. */
int part_pt_threads(struct part_pt *p, unsigned n) PART_WUR;
/* As part_worker_serve. */
int part_pt_serve(struct part_pt *p, int fd) PART_WUR;
/* C_Finalize, dlclose, free. NULL is a no-op. */
void part_pt_free(struct part_pt *p);

#endif /* HSMGATE_PART_H */
