/*
 * gateway/gw_int.h — private to gateway/ (and its unit tests in tests/gateway/).
 *
 * The files of the module:
 *   log.c         structured log lines, gw_strerror
 *   auth.c        config lookups: certificate subject / URI SAN / API key → principal (pure)
 *   route.c       frame splitting, the routing decision, the gateway's own answers (pure)
 *   tls.c         the TLS context and the peer's identity
 *   hooks.c       the partition-level policy decision and the audit events (hook points)
 *   conn.c        one client connection: framing, handshake, requests, replies, close
 *   supervisor.c  the worker processes: spawn, IPC, death, restart
 *   server.c      the loop, listener, signals, reload, shutdown, ready file
 */
#ifndef HSMGATE_GW_INT_H
#define HSMGATE_GW_INT_H

#include "config/cfg.h"
#include "gateway/gw.h"
#include "proto/proto.h"

#include <stdint.h>
#include <sys/queue.h>
#include <sys/types.h>
#include <time.h>

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/ssl.h>

/* A partition as the router sees it. Copied from the config at start: a reload never changes
 * the running set of partitions (that needs a restart, and the reload says so). */
struct gw_part {
	char name[64];
	char tenant[64];
	uint32_t slot;
};

/* ---- auth.c ---------------------------------------------------------------------------- */

/* Fills ctx->principal ("tenant/<t>/<kind>/<name>"), ctx->tenant and ctx->groups from the
 * config entries (groups beyond 8, or too long, are left out with a warning). ctx->cred and
 * ctx->source are left to the caller. GW_ERR_CONFIG when a name does not fit. */
int gw_ident_fill(const struct cfg_tenant *t, const struct cfg_principal *p,
                  struct proto_ctx *ctx) GW_WUR;

/* The principal whose cert_subject equals `subject` (RFC 2253, exact match) or whose
 * cert_san_uri equals one of uris[n_uris]. GW_ERR_NOTFOUND when none does. The returned
 * pointers point into `cfg`. */
int gw_auth_cert_lookup(const struct cfg_daemon *cfg, const char *subject, const char *const *uris,
                        size_t n_uris, const struct cfg_tenant **t,
                        const struct cfg_principal **p) GW_WUR;

/* The principal one of whose api_keys hashes verifies `key` (cfg_apikey_verify, constant
 * time). Every stored hash costs one PBKDF2. GW_ERR_NOTFOUND when none matches. */
int gw_auth_apikey_lookup(const struct cfg_daemon *cfg, const char *key,
                          const struct cfg_tenant **t, const struct cfg_principal **p) GW_WUR;

/* ---- route.c --------------------------------------------------------------------------- */

/*
 * The framing step of STYLE rule 12. Looks at the avail bytes at p: when fewer than
 * PROTO_HDR_BYTES, sets *need = PROTO_HDR_BYTES; otherwise decodes the header into *h
 * (proto_hdr_decode, checked against max_frame) and sets *need to the whole frame's size.
 * The frame is complete when avail >= *need. A bad header is its PROTO_ERR_* code.
 */
int gw_frame_need(const uint8_t *p, size_t avail, size_t max_frame, struct proto_hdr *h,
                  size_t *need) GW_WUR;

/* The ERROR code to send for a proto_hdr_decode failure. */
uint32_t gw_frame_gwerr(int proto_err);

enum gw_route_kind {
	GW_ROUTE_FORWARD = 1, /* send to the worker of parts[part] */
	GW_ROUTE_ANSWER = 2,  /* the gateway answers it itself (gw_route_answer) */
	GW_ROUTE_REPLY = 3,   /* answer with a REPLY carrying `rv` and no fields */
	GW_ROUTE_ERROR = 4,   /* answer with an ERROR `gwerr` for the request id */
};

struct gw_route {
	enum gw_route_kind kind;
	unsigned part;                      /* FORWARD: index in parts */
	CK_RV rv;                           /* REPLY */
	uint32_t gwerr;                     /* ERROR: enum proto_gwerr */
	const char *why;                    /* REPLY/ERROR: a static reason for log and message */
	const struct proto_call_info *call; /* NULL for an unknown call id */
};

/*
 * Decides where the REQUEST (header h, body[len]) of a caller of `tenant` goes, from the
 * call table alone: unknown call → ERROR MALFORMED; a call the client module answers
 * itself (PROTO_CF_LOCAL) → REPLY CKR_FUNCTION_NOT_SUPPORTED; ROUTE_GATEWAY → ANSWER;
 * ROUTE_SLOT / ROUTE_SESSION → FORWARD to the partition of the slot named by the first field
 * when it is one of the tenant's, else REPLY CKR_SLOT_ID_INVALID / CKR_SESSION_HANDLE_INVALID
 * (so a tenant never learns whether another tenant's slot exists). A request to forward
 * must decode in full against its call's layout (proto_layout_skim), else ERROR MALFORMED.
 * Never fails.
 */
void gw_route_decide(const struct gw_part *parts, unsigned n, const char *tenant,
                     const struct proto_hdr *h, const uint8_t *body, size_t len,
                     struct gw_route *out);

/* The tenant's slot ids in ascending order into out[max]; returns how many there are (which
 * may exceed max; only max are written). */
size_t gw_tenant_slots(const struct gw_part *parts, unsigned n, const char *tenant, CK_ULONG *out,
                       size_t max);

/* Builds in `b` (empty) the complete reply frame to a GW_ROUTE_ANSWER request:
 * C_GetSlotList (the tenant's slots, size-query convention) and C_WaitForSlotEvent
 * (CKF_DONT_BLOCK → CKR_NO_EVENT, blocking → CKR_FUNCTION_NOT_SUPPORTED). A body that does
 * not decode is answered with CKR_ARGUMENTS_BAD. 0 or a PROTO_ERR_* from the writer. */
int gw_route_answer(const struct gw_part *parts, unsigned n, const char *tenant,
                    const struct proto_hdr *h, const uint8_t *body, size_t len,
                    struct proto_buf *b) GW_WUR;

/* A REPLY frame for (call, req_id) carrying only `rv`, into `b` (empty). */
int gw_reply_rv(struct proto_buf *b, uint16_t call, uint32_t req_id, CK_RV rv) GW_WUR;
/* An ERROR frame into `b` (empty). */
int gw_reply_error(struct proto_buf *b, uint32_t req_id, uint32_t code, const char *msg) GW_WUR;

/* ---- tls.c ----------------------------------------------------------------------------- */

/* A server context: TLS 1.3 only, tls.cert / tls.key, and when tls.client_ca is set client
 * certificates requested (never required: API-key callers have none) and verified against
 * it. The verify callback lets the handshake finish and records the verdict in the
 * connection so that a caller who chose the certificate credential gets a readable ERROR
 * instead of a bare TLS alert. */
int gw_tls_ctx_new(const struct cfg_daemon *cfg, SSL_CTX **out, char *err, size_t errsz) GW_WUR;

#define GW_MAX_URIS 8
struct gw_peer {
	int has_cert;
	long verify_err;   /* X509_V_OK when the chain verified */
	char subject[512]; /* RFC 2253 */
	char uris[GW_MAX_URIS][256];
	size_t n_uris;
};
/* The verified-or-not peer certificate of `ssl`; verify_err is the first error the verify
 * callback saw (stored via SSL app data), or the SSL's verify result. */
void gw_tls_peer(SSL *ssl, long cb_verify_err, struct gw_peer *out);

/* Empties the OpenSSL error queues of `bev` (libevent's) and of this thread, keeping the
 * first reason in buf[n] for the log ("" when there was none). */
void gw_tls_errors_drain(struct bufferevent *bev, char *buf, size_t n);

/* ---- the daemon's objects ---------------------------------------------------------------- */

struct gw_server;
struct gw_worker;

struct gw_inflight {
	uint32_t req_id;
	uint16_t call;
	int worker; /* index into s->workers; -1 = free slot */
	struct timespec start;
};

enum gw_conn_state {
	GW_CONN_TLS = 1,     /* TLS handshake running */
	GW_CONN_HELLO = 2,   /* waiting for the HELLO frame */
	GW_CONN_OPEN = 3,    /* authenticated: requests flow */
	GW_CONN_DRAIN = 4,   /* shutting down: waiting for in-flight replies */
	GW_CONN_CLOSING = 5, /* flushing the last frame(s) before closing */
	GW_CONN_LINGER = 6,  /* write side shut; discarding input until EOF or a short timer */
};

struct gw_conn {
	struct gw_server *srv;
	uint64_t id;
	enum gw_conn_state state;
	struct bufferevent *bev;
	SSL *ssl;
	int fd;
	char source[64];      /* "ip:port" */
	long verify_err;      /* first error of the client certificate's verification */
	struct proto_ctx ctx; /* who: filled at authentication */
	uint32_t max_frame;
	uint32_t max_inflight;
	struct gw_inflight *inflight; /* max_inflight entries */
	uint32_t n_inflight;
	uint8_t *used;       /* per worker: 1 when a request was forwarded to it */
	int read_paused;     /* back-pressure: output over the high mark */
	struct event *timer; /* handshake deadline, then linger deadline */
	struct timespec accepted;
	uint64_t n_requests;
	TAILQ_ENTRY(gw_conn) link;
	struct gw_conn *hnext; /* conn_id hash chain */
};
TAILQ_HEAD(gw_conn_list, gw_conn);

struct gw_worker {
	struct gw_server *srv;
	unsigned idx;
	struct gw_part part;
	pid_t pid;               /* 0 when not running (reaped) */
	struct bufferevent *bev; /* NULL when the IPC channel is closed */
	unsigned backoff_ms;
	struct event *restart_timer;
	struct timespec started;
	uint64_t n_inflight;
	unsigned restarts;
};

struct gw_stats {
	uint64_t accepted;
	uint64_t refused_limit; /* over max_connections */
	uint64_t auth_ok;
	uint64_t auth_failed;
	uint64_t frames_refused;
	uint64_t requests;
	uint64_t worker_exits;
};

#define GW_CONN_BUCKETS 1024u

struct gw_server {
	struct event_base *base;
	struct cfg_daemon *cfg; /* current config: principals, API keys, limits */
	char *config_path;
	char *ready_file;
	char *worker_path;
	SSL_CTX *ssl_ctx;
	struct evconnlistener *listener;
	struct event *ev_term, *ev_int, *ev_hup, *ev_chld;
	struct event *listen_retry;
	struct event *shutdown_timer; /* the drain deadline */
	struct event *stop_timer;     /* supervisor: SIGTERM, then SIGKILL to slow workers */
	int stop_stage;
	struct gw_worker *workers;
	unsigned n_workers;
	struct gw_part *parts; /* n_workers entries, parallel to workers (for route.c) */
	struct gw_conn_list conns;
	unsigned n_conns;
	struct gw_conn *conn_tab[GW_CONN_BUCKETS];
	uint64_t next_conn_id;
	int stopping; /* 1: draining connections; 2: stopping workers; 3: freeing */
	struct gw_stats stats;
	char bound[128]; /* "ADDRESS:PORT" actually bound */
};

/* ---- conn.c ---------------------------------------------------------------------------- */

/* Takes a freshly accepted socket (refused at once when over max_connections). */
void gw_conn_accept(struct gw_server *s, int fd, const struct sockaddr *sa, int socklen);
/* A worker's REPLY for conn_id, forwarded as is: the connection may be gone (dropped then).
 * GW_ERR_MALFORMED when `frame` is not one complete REPLY/ERROR frame (the worker is then
 * in an impossible state). */
int gw_conn_on_reply(struct gw_server *s, struct gw_worker *w, uint64_t conn_id,
                     const uint8_t *frame, size_t len) GW_WUR;
/* Appends a copy of p[len] to `out` that is wiped (OPENSSL_cleanse) and freed once libevent
 * has written it: frames may carry PINs and key material. */
int gw_evbuffer_add_wiped(struct evbuffer *out, const void *p, size_t len) GW_WUR;
/* Fails every call in flight on worker `w` with a REPLY CKR_DEVICE_ERROR. */
void gw_conn_fail_worker(struct gw_server *s, struct gw_worker *w);
/* Graceful shutdown: idle connections get ERROR SHUTDOWN and close; busy ones drain. */
void gw_conn_shutdown_all(struct gw_server *s);
/* Frees every connection at once (deadline passed, or teardown). */
void gw_conn_free_all(struct gw_server *s);

/* ---- supervisor.c ---------------------------------------------------------------------- */

/* Copies the partitions of s->cfg into s->workers / s->parts and starts one worker each. */
int gw_supervisor_start(struct gw_server *s, char *err, size_t errsz) GW_WUR;
/* Sends one IPC message to worker w: header, then ctx (when not NULL), then `frame`.
 * GW_ERR_IO when the worker is not running. */
int gw_worker_send(struct gw_worker *w, enum proto_ipc kind, uint64_t conn_id,
                   const struct proto_ctx *ctx, const uint8_t *frame, size_t len) GW_WUR;
/* SIGCHLD: reaps, logs, schedules restarts (or finishes the shutdown). */
void gw_supervisor_reap(struct gw_server *s);
/* Shutdown: closes every IPC channel so the workers exit; escalates to SIGTERM/SIGKILL
 * after a grace period; exits the loop once all are reaped. */
void gw_supervisor_stop(struct gw_server *s);
/* Teardown: kills and reaps what is left, frees. */
void gw_supervisor_free(struct gw_server *s);

/* ---- server.c -------------------------------------------------------------------------- */

/* Called when the connection count drops (shutdown may be complete). */
void gw_server_conn_gone(struct gw_server *s);

/* ---- hooks.c --------------------------------------------------------------------------- */

/* THE partition-level policy decision (DESIGN: partition-level checks run in the gateway).
 * CKR_OK to forward, or the CK_RV to answer with (CKR_ACTION_PROHIBITED). policy/ plugs in
 * here; until then every authenticated caller may use its own tenant's partitions. */
CK_RV gw_policy_partition_check(struct gw_server *s, const struct proto_ctx *who,
                                const struct proto_call_info *call, const struct gw_part *part);

/* THE audit event of one request: called once per request that got an answer (from a
 * worker, from the gateway itself, or a refusal). `part` may be NULL. */
void gw_audit_request(struct gw_server *s, const struct proto_ctx *who, uint16_t call,
                      const struct gw_part *part, CK_RV rv, const char *outcome,
                      const struct timespec *start);

/* THE audit event of a refused connection-level authentication. */
void gw_audit_auth_failure(struct gw_server *s, const char *source, uint8_t cred,
                           const char *reason);

/* An event a worker sent over IPC (PROTO_IPC_AUDIT, JSON body). */
void gw_audit_worker_event(struct gw_server *s, struct gw_worker *w, const uint8_t *body,
                           size_t len);

#endif /* HSMGATE_GW_INT_H */
