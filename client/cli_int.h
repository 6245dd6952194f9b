/*
 * client/cli_int.h — private to client/: the module state, the connection to the gateway
 * and the call helpers the forwarded PKCS #11 functions are written with.
 *
 * The module exports the PKCS #11 entry points only (client/exports.map); nothing here is
 * visible outside libhsmgate-pkcs11.so.
 *
 * Layers, bottom up:
 *   conn.c     one TLS 1.3 connection to the gateway: connect, HELLO/WELCOME, one I/O
 *              thread that owns the SSL, request ids, waiters, timeouts, in-flight limit
 *   session.c  the set of session handles opened on one connection, their deferred inits
 *              and the inits known to succeed
 *   module.c   the module's global state: C_Initialize/C_Finalize/C_GetInfo, the function
 *              list, fork detection, (re)connection, CK_RV mapping
 *   call.c     one forwarded call: encode the request, run it, decode the reply
 *   fwd_*.c    the forwarded PKCS #11 functions, each reading like its layout in proto_calls
 */
#ifndef HSMGATE_CLIENT_CLI_INT_H
#define HSMGATE_CLIENT_CLI_INT_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>
#include <p11-kit/pkcs11.h>

#include "config/cfg.h"
#include "proto/proto.h"

#define CLI_WUR __attribute__((warn_unused_result))
/* Every PKCS #11 entry point: the build hides everything else (-fvisibility=hidden). */
#define CLI_EXPORT __attribute__((visibility("default")))

#define CLI_NAME           "libhsmgate-pkcs11"
#define CLI_VERSION_MAJOR  0
#define CLI_VERSION_MINOR  1
#define CLI_VERSION_STRING "0.1"

/* ---- errors --------------------------------------------------------------------------- */

enum cli_err {
	CLI_OK = 0,
	CLI_ERR_NOMEM = -3000,
	CLI_ERR_CONFIG = -3001,    /* the configuration (file, CA, cert, key) is unusable */
	CLI_ERR_CONNECT = -3002,   /* the gateway cannot be reached, or the TLS link failed */
	CLI_ERR_AUTH = -3003,      /* TLS trust or the gateway's authentication refused us */
	CLI_ERR_PROTO = -3004,     /* the gateway sent something that is not our protocol */
	CLI_ERR_REMOVED = -3005,   /* the connection was lost while the call was in flight */
	CLI_ERR_TIMEOUT = -3006,   /* no reply within timeout_ms */
	CLI_ERR_FINALIZED = -3007, /* C_Finalize ran while the call was in flight */
	CLI_ERR_GATEWAY = -3008,   /* the gateway answered the request with an ERROR frame */
	CLI_ERR_TOO_LARGE = -3009, /* the request exceeds the negotiated max_frame */
	CLI_ERR_SYS = -3010,       /* a system call (thread, eventfd ...) failed */
};

const char *cli_strerror(int err);

/* ---- sessions (session.c) ------------------------------------------------------------- */

/*
 * Deferred inits. An operation's init (C_SignInit, C_EncryptInit ...) that this connection
 * has seen succeed before for the same key and mechanism shape (proto_put_mechanism_shape)
 * is answered CKR_OK by the module and sent just before the session's next call that
 * continues the operation (C_Sign after C_SignInit ...), in the same write; that call then
 * returns the init's error if the init failed after all (the key was destroyed or the
 * policy changed in between). Any other call on the session sends the init alone first and
 * is not sent if it failed. One round trip, and one audit sync, per operation instead of
 * two. Never changes whether a call succeeds or what it returns.
 */
#define CLI_INIT_KEY_MAX 128 /* call id, key handle, mechanism shape: longer is never deferred */
#define CLI_INIT_KNOWN   32  /* inits remembered per connection */

struct cli_init_key {
	size_t len;
	uint8_t b[CLI_INIT_KEY_MAX];
};

struct cli_deferred {
	unsigned id;             /* enum proto_call */
	struct proto_buf req;    /* the finished request frame, request id 0 */
	struct cli_init_key key; /* forgotten if the init fails */
};

void cli_deferred_free(struct cli_deferred *d);

/* The session handles opened on one connection, each with its deferred init, and the inits
 * known to succeed. Not locked: the owner (struct cli_conn) holds its lock around every
 * call. */
struct cli_sessions {
	CK_SESSION_HANDLE *h;
	struct cli_deferred **def; /* parallel to h */
	size_t n;
	size_t cap;
	struct cli_init_key known[CLI_INIT_KNOWN];
	unsigned known_next; /* the entry to replace next */
};

void cli_sessions_init(struct cli_sessions *s);
void cli_sessions_free(struct cli_sessions *s);
int cli_sessions_add(struct cli_sessions *s, CK_SESSION_HANDLE h) CLI_WUR;
/* 1 if h is in the set, 0 otherwise. */
int cli_sessions_has(const struct cli_sessions *s, CK_SESSION_HANDLE h);
/* Removes h (no-op when absent), dropping its deferred init. */
void cli_sessions_del(struct cli_sessions *s, CK_SESSION_HANDLE h);
/* Removes every handle of `slot` (proto_session_slot), dropping their deferred inits. */
void cli_sessions_del_slot(struct cli_sessions *s, CK_SLOT_ID slot);
/* Defers d on session h: 1 when h exists, has no deferred init and d's key is known (d is
 * then the set's), 0 otherwise. */
int cli_sessions_defer(struct cli_sessions *s, CK_SESSION_HANDLE h, struct cli_deferred *d);
/* Takes h's deferred init (NULL when none). */
struct cli_deferred *cli_sessions_deferred_take(struct cli_sessions *s, CK_SESSION_HANDLE h);
/* Remembers that an init with this key succeeded, or (ok = 0) forgets it. */
void cli_sessions_known(struct cli_sessions *s, const struct cli_init_key *k, int ok);
/* Forgets every known init (a login state, an object or a session changed). */
void cli_sessions_forget(struct cli_sessions *s);

/* ---- the connection (conn.c) ---------------------------------------------------------- */

struct cli_conn;

/* What a connection needs to reach the gateway; owned by the module, outlives every
 * connection made from it (C_Finalize waits for a connect in progress). */
struct cli_target {
	const struct cfg_client *cfg;
	SSL_CTX *ctx;   /* TLS 1.3 client context with CA, and client cert + key if configured */
	char host[302]; /* host part of cfg->gateway, brackets removed */
	char port[6];
	int name_is_ip; /* server_name is an address literal: verify it as an IP SAN */
	int threadless; /* CKF_LIBRARY_CANT_CREATE_OS_THREADS: callers drive the I/O themselves */
};

/* The socket BIO the connection's TLS runs over: OpenSSL's, but sending with MSG_NOSIGNAL,
 * so that no application thread ever gets SIGPIPE from a gateway that went away. Over fd
 * (not closed by the BIO), or NULL. */
BIO *cli_nosig_bio_new(int fd);

/* Splits cfg->gateway, builds the SSL_CTX. Errors: CLI_ERR_CONFIG with a message in
 * err[errsz] that names the file. */
int cli_target_init(struct cli_target *t, const struct cfg_client *cfg, char *err,
                    size_t errsz) CLI_WUR;
void cli_target_fini(struct cli_target *t);

/*
 * Connects to the gateway: TCP (connect_timeout_ms), TLS 1.3 handshake verifying the
 * gateway certificate against the CA and server_name, HELLO, WELCOME; then starts the I/O
 * thread. On success *out holds one reference (the caller's). Errors: CLI_ERR_CONNECT
 * (unreachable, timeout, link failure), CLI_ERR_AUTH (certificate verification or the
 * gateway's refusal), CLI_ERR_PROTO, CLI_ERR_NOMEM, CLI_ERR_SYS, each with a one-line
 * message in err[errsz] (without the "hsmgate: " prefix).
 */
int cli_conn_open(const struct cli_target *t, struct cli_conn **out, char *err,
                  size_t errsz) CLI_WUR;

/* Takes and drops a reference. The last cli_conn_unref frees the memory; it never blocks
 * on the network (cli_conn_close has stopped the thread by then). */
void cli_conn_ref(struct cli_conn *c);
void cli_conn_unref(struct cli_conn *c);

/*
 * Stops the connection: every call in flight or waiting for a slot fails with `reason`
 * (CLI_ERR_FINALIZED, CLI_ERR_REMOVED), the I/O thread is joined (in threadless mode: the
 * caller driving the connection is woken and waited for), the queued frames are freed and
 * the SSL shut down and freed. Any thread may call it while others use the connection.
 * Called once, by the module, for the connection it drops. Does not drop a ref.
 */
void cli_conn_close(struct cli_conn *c, int reason);

/* Abandons a connection inherited over fork(): touches neither its SSL nor its thread
 * (which does not exist in the child), frees nothing. */
void cli_conn_abandon(struct cli_conn *c);

/* 1 while the connection is usable (the I/O thread has not seen it fail). */
int cli_conn_alive(struct cli_conn *c);

/* The negotiated maximum frame size. */
size_t cli_conn_max_frame(const struct cli_conn *c);

/* Session handles of this connection (locked inside). */
int cli_conn_session_has(struct cli_conn *c, CK_SESSION_HANDLE h);
int cli_conn_session_add(struct cli_conn *c, CK_SESSION_HANDLE h) CLI_WUR;
void cli_conn_session_del(struct cli_conn *c, CK_SESSION_HANDLE h);
void cli_conn_session_del_slot(struct cli_conn *c, CK_SLOT_ID slot);

/* Deferred inits of this connection's sessions (locked inside); see cli_sessions_*.
 * cli_conn_defer also refuses when max_inflight leaves no room for two requests. */
int cli_conn_defer(struct cli_conn *c, CK_SESSION_HANDLE h, struct cli_deferred *d);
struct cli_deferred *cli_conn_deferred_take(struct cli_conn *c, CK_SESSION_HANDLE h);
void cli_conn_init_known(struct cli_conn *c, const struct cli_init_key *k, int ok);
void cli_conn_init_forget(struct cli_conn *c);

/* One reply: type PROTO_MSG_REPLY or PROTO_MSG_ERROR, and its body (to free with
 * OPENSSL_clear_free(body, body_len)). */
struct cli_reply {
	uint8_t type;
	uint8_t *body;
	size_t body_len;
};

/*
 * Sends the request frame in `req` (begun with request id 0: the id is assigned and
 * patched in here) and waits up to timeout_ms for its reply, into *rep. With `pre` (a
 * deferred init, or NULL), that frame is sent first, in the same write, and its reply goes
 * to *pre_rep: the call returns when both are in. `req` and `pre` are consumed (wiped)
 * either way. Errors: CLI_ERR_REMOVED, CLI_ERR_TIMEOUT, CLI_ERR_FINALIZED,
 * CLI_ERR_TOO_LARGE, CLI_ERR_NOMEM.
 */
int cli_conn_call(struct cli_conn *c, struct proto_buf *pre, struct proto_buf *req,
                  uint32_t timeout_ms, struct cli_reply *pre_rep, struct cli_reply *rep) CLI_WUR;

/* ---- the module (module.c) ------------------------------------------------------------ */

/* Writes "hsmgate: <fmt>\n" to stderr as one write. */
void cli_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * The connection for one call, with a reference the caller drops with cli_conn_unref.
 * If the current connection is dead it is replaced (the next call reconnects). When
 * `session_call` is set and no live connection exists, no connection is made: the
 * session cannot be valid (CKR_SESSION_HANDLE_INVALID).
 * Returns CKR_OK or the CK_RV to give the application.
 */
CK_RV cli_module_conn_get(int session_call, struct cli_conn **out, uint32_t *timeout_ms);

/* The CK_RV for an internal error (the table in module.c). */
CK_RV cli_err_to_rv(int err);

/* ---- one forwarded call (call.c) ------------------------------------------------------ */

struct cli_call {
	unsigned id;               /* enum proto_call */
	CK_SESSION_HANDLE session; /* of a call routed by session */
	int session_call;
	struct cli_conn *conn;
	uint32_t timeout_ms;
	struct proto_buf req;
	CK_RV enc_rv;  /* CK_RV for the first put that failed, CKR_OK otherwise */
	uint8_t *body; /* reply body (after the header) */
	size_t body_len;
	struct proto_cur cur; /* over the reply fields, after the CK_RV */
	int fields;           /* proto_reply_has_fields(id, rv) */
	int dec_err;          /* the first decode error */
};

/*
 * Starts call `id`: checks the module is initialised, gets the connection, checks
 * `session` belongs to it when the call is routed by session (PROTO_CF_ROUTE_SESSION),
 * and begins the request frame. On anything but CKR_OK nothing needs cleaning up.
 */
CK_RV cli_call_begin(struct cli_call *c, unsigned id, CK_SESSION_HANDLE session) CLI_WUR;

/* Request fields, in layout order. Failures are sticky and reported by cli_call_run. */
void cli_put_ulong(struct cli_call *c, CK_ULONG v);
void cli_put_bool(struct cli_call *c, CK_BBOOL v);
void cli_put_inbytes(struct cli_call *c, const CK_BYTE *p, CK_ULONG len);
void cli_put_outbuf(struct cli_call *c, const CK_BYTE *buf, CK_ULONG capacity);
void cli_put_ulongs(struct cli_call *c, const CK_ULONG *buf, CK_ULONG capacity);
void cli_put_template(struct cli_call *c, const CK_ATTRIBUTE *t, CK_ULONG n);
void cli_put_attrquery(struct cli_call *c, const CK_ATTRIBUTE *t, CK_ULONG n);
void cli_put_mechanism(struct cli_call *c, const CK_MECHANISM *m);

/*
 * Sends the request and waits for the reply. Returns the CK_RV of the call: the gateway's
 * (c->fields then says whether reply fields follow) or a local one (encoding refused,
 * connection lost ...), in which case c->fields is 0.
 */
CK_RV cli_call_run(struct cli_call *c);

/*
 * cli_call_run for an operation's init (`key`: the key handle, 0 for C_DigestInit): defers
 * it when this connection knows it to succeed, or runs it and remembers whether it did.
 */
CK_RV cli_call_run_init(struct cli_call *c, const CK_MECHANISM *m, CK_OBJECT_HANDLE key);

/* Reply fields, in layout order; only when c->fields. Errors are sticky. */
void cli_get_ulong(struct cli_call *c, CK_ULONG *v);
void cli_get_outbuf(struct cli_call *c, CK_BYTE *buf, CK_ULONG *len_io);
void cli_get_ulongs(struct cli_call *c, CK_ULONG *buf, CK_ULONG *count_io);
void cli_get_attrreply(struct cli_call *c, CK_ATTRIBUTE *t, CK_ULONG n);
void cli_get_info(struct cli_call *c, char kind, void *out);

/* Ends the call: a reply that did not decode, or had trailing bytes, turns `rv` into
 * CKR_DEVICE_ERROR. Frees everything (wiping the request and reply). Returns the rv. */
CK_RV cli_call_end(struct cli_call *c, CK_RV rv);

/*
 * The common shapes of forwarded calls, each a whole call (begin, check, run, end). They
 * check the arguments PKCS #11 requires (a NULL pointer with a length, a NULL length
 * pointer → CKR_ARGUMENTS_BAD).
 */
CK_RV cli_fwd_session(unsigned id, CK_SESSION_HANDLE h);                                /* "u"   */
CK_RV cli_fwd_in(unsigned id, CK_SESSION_HANDLE h, const CK_BYTE *in, CK_ULONG in_len); /* "uy"  */
CK_RV cli_fwd_out(unsigned id, CK_SESSION_HANDLE h, CK_BYTE *out, CK_ULONG *out_len);   /* "uo"  */
CK_RV cli_fwd_inout(unsigned id, CK_SESSION_HANDLE h, const CK_BYTE *in, CK_ULONG in_len,
                    CK_BYTE *out, CK_ULONG *out_len); /* "uyo" */
CK_RV cli_fwd_init(unsigned id, CK_SESSION_HANDLE h, const CK_MECHANISM *m,
                   CK_ULONG key); /* "uMu" */

#endif /* HSMGATE_CLIENT_CLI_INT_H */
