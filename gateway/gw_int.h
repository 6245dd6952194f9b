/*
 * gateway/gw_int.h — private to gateway/ (and its unit tests in tests/gateway/).
 *
 * The files of the module:
 *   log.c         structured log lines, gw_strerror
 *   auth.c        config lookups: certificate subject / URI SAN / API key → principal (pure)
 *   route.c       frame splitting, the routing decision, the gateway's own answers (pure)
 *   tls.c         the TLS context and the peer's identity
 *   policy.c      the gateway's policy decisions (partition-, session-, connection-level)
 *   audit.c       the audit events, durability callbacks, fail-closed and log reopening
 *   sinks.c       the audit sinks' threads and their spool limits
 *   conn.c        one client connection: framing, handshake, requests, replies, close
 *   supervisor.c  the worker processes: spawn, IPC, death, restart
 *   server.c      the loop, listener, signals, reload, shutdown, ready file
 */
#ifndef HSMGATE_GW_INT_H
#define HSMGATE_GW_INT_H

#include "audit/audit.h"
#include "config/cfg.h"
#include "gateway/gw.h"
#include "policy/policy.h"
#include "proto/proto.h"

#include <pthread.h>
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

enum gw_slot_state {
	GW_SLOT_FREE = 0,
	GW_SLOT_WORKER = 1,   /* forwarded: waiting for the worker's reply */
	GW_SLOT_PREAUDIT = 2, /* state-changing call: its `pending` event is being made durable
	                       * before the request (in `frame`) is forwarded */
	GW_SLOT_HELD = 3,     /* answered: the reply (in `frame`) waits for its event to be
	                       * durable (audit.durability sync) */
};

struct gw_inflight {
	enum gw_slot_state state;
	uint32_t req_id;
	uint16_t call;
	int worker; /* index into s->workers; -1 when not waiting for a worker */
	struct timespec start;
	struct aud_event *ev; /* the request's audit event, completed with its answer */
	uint64_t seq;         /* PREAUDIT/HELD: the audit record awaited */
	uint8_t *frame;       /* PREAUDIT: the request; HELD: the reply (wiped when freed) */
	size_t frame_len;
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
	struct gw_inflight *inflight; /* inflight_cap entries, grown up to max_inflight */
	uint32_t inflight_cap;
	uint32_t n_inflight;
	uint8_t *used;       /* per worker: 1 when a request was forwarded to it */
	int read_paused;     /* back-pressure: output over the high mark */
	struct event *timer; /* handshake deadline, then linger deadline */
	struct timespec accepted;
	uint64_t n_requests;
	/* Frames queued while the server is corked, written at gw_uncork as one TLS write (a
	 * batch of replies released by one audit sync is one record, not one each). */
	struct proto_buf stage;
	int staged; /* on srv->staged */
	TAILQ_ENTRY(gw_conn) stage_link;
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
	int out_dirty; /* frames added while the server was corked; written at gw_uncork */
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
	unsigned cork; /* > 0: gw_worker_send and replies queue, gw_uncork writes (one per batch) */
	struct proto_spin spin;     /* busy_poll_us: the loop's poll for a worker's reply */
	uint64_t n_calls;           /* calls in flight, of all connections (their n_inflight) */
	struct gw_conn_list staged; /* connections with frames staged while corked */
	struct gw_part *parts;      /* n_workers entries, parallel to workers (for route.c) */
	struct gw_conn_list conns;
	unsigned n_conns;
	unsigned max_conns; /* limits.max_connections, within what fd_limit leaves room for */
	uint64_t fd_limit;  /* RLIMIT_NOFILE (soft), raised to the hard limit at start */
	struct gw_conn *conn_tab[GW_CONN_BUCKETS];
	uint64_t next_conn_id;
	int stopping; /* 1: draining connections; 2: stopping workers; 3: freeing */
	struct gw_stats stats;
	char bound[128]; /* "ADDRESS:PORT" actually bound */

	/* policy (policy.c): NULL when the config names no policy file */
	struct pol_policy *policy;
	struct pol_request *pol_req; /* reused by every decision (one loop thread) */
	struct pol_decision *pol_dec;
	char *policy_path; /* the file the running policy came from */
	char *policy_text; /* its bytes, sent to every worker (PROTO_IPC_POLICY) */
	size_t policy_text_len;

	/* audit (audit.c) */
	struct aud_log *audit; /* NULL while being reopened after a failure */
	struct aud_log_options audit_opts;
	char *audit_dir, *audit_key;
	char audit_origin[AUD_MAX_ORIGIN + 1];
	char audit_source_crn[200];
	int audit_sync;    /* durability sync: replies wait for their event */
	int audit_alerted; /* the operator alert for the current failure was logged */
	int audit_reopening;
	struct aud_log *audit_old, *audit_new; /* handed to / back from the reopening thread */
	struct event *ev_audit_done;           /* made active from the writer thread */
	struct event *audit_retry;
	pthread_mutex_t audit_mu; /* guards audit_done*, audit_new */
	int audit_mu_ok;
	struct gw_audit_done *audit_done;
	size_t audit_done_n, audit_done_cap;
	int audit_off;          /* audit.enabled false: no log, no events (measurements) */
	struct gw_sinks *sinks; /* sinks.c; NULL without audit.sinks */
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
/* Writes the frames each connection staged while the server was corked (gw_uncork). */
void gw_conn_flush_staged(struct gw_server *s);
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
 * Written at once, or, while the server is corked, at gw_uncork. GW_ERR_IO when the worker
 * is not running. */
int gw_worker_send(struct gw_worker *w, enum proto_ipc kind, uint64_t conn_id,
                   const struct proto_ctx *ctx, const uint8_t *frame, size_t len) GW_WUR;
/* Corking: between gw_cork and gw_uncork (nested), messages to workers and frames to clients
 * are only queued, and gw_uncork writes each worker's batch with one writev and each
 * client's with one TLS write. A client's TLS read that carries many pipelined requests
 * thus costs one write per worker, not one per request; the replies of one worker read, or
 * of one audit sync, one TLS record per client. */
void gw_cork(struct gw_server *s);
void gw_uncork(struct gw_server *s);
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

/* Descriptors kept for everything but client connections: stdio, the listener, epoll,
 * libevent's signal and wake-up pipes, the audit log's files, logs, TLS files read at a
 * reload; plus GW_FD_PER_WORKER per partition and GW_FD_PER_SINK per audit sink. */
#define GW_FD_RESERVE    64u
#define GW_FD_PER_WORKER 1u
#define GW_FD_PER_SINK   2u
/* How many client connections fit in fd_limit descriptors (one each) next to the reserve:
 * min(max_connections, fd_limit - reserve), 0 when nothing fits. Pure. */
unsigned gw_conn_limit(uint32_t max_connections, uint64_t fd_limit, unsigned n_partitions,
                       unsigned n_sinks);

/* The in-flight request `req_id` of connection `conn_id`, waiting for worker `w`; NULL when
 * there is none (conn.c). */
struct gw_inflight *gw_conn_inflight_for(struct gw_server *s, const struct gw_worker *w,
                                         uint64_t conn_id, uint32_t req_id);

/* ---- policy.c -------------------------------------------------------------------------- */

#define GW_DECISION_MAX_SIDS 16 /* = AUD_MAX_SIDS: what an audit event can carry */

/* A policy decision as the gateway keeps it: copied out of the pol_decision (whose strings
 * live in the policy, which a reload may free) for the log and the audit event. */
struct gw_decision {
	int made;   /* 0: no decision was taken here (no policy, or decided elsewhere) */
	int error;  /* the POL_ERR_* that cut evaluation short (then a deny) */
	int result; /* enum pol_result */
	int shadow; /* enum pol_result with shadow statements enforced (recorded only) */
	char action[64];
	unsigned nsids; /* the deciding statements: denies for a deny, allows for an allow */
	char sids[GW_DECISION_MAX_SIDS][65];
	char shadow_sid[65];
};

/* The policy action of `call` in the policy vocabulary (the call table's own action for calls
 * without one); *gateway_decides (may be NULL) is 1 when the gateway takes the decision. */
const char *gw_policy_action(uint16_t call, int *gateway_decides);

/* Loads a policy file; on failure err says file:line:column: why. GW_ERR_CONFIG. */
int gw_policy_load(const char *path, struct pol_policy **out, char *err, size_t errsz) GW_WUR;
/* The same, also returning the file's bytes (malloc'd; the caller frees) that the policy was
 * compiled from, for the workers. A file over GW_POLICY_MAX is refused. */
#define GW_POLICY_MAX (512u * 1024u)
int gw_policy_load_text(const char *path, struct pol_policy **out, char **text, size_t *textlen,
                        char *err, size_t errsz) GW_WUR;
/* Sends the running policy's text to one worker (all of them when w is NULL). */
void gw_policy_push(struct gw_server *s, struct gw_worker *w);

/* The partition-level decision of one forwarded request (body: the request's fields, for
 * hsm:SessionRW, hsm:UserType, hsm:Length). CKR_OK to forward or CKR_ACTION_PROHIBITED; *d
 * records the decision (d->made 0 when none was taken here). */
CK_RV gw_policy_partition_check(struct gw_server *s, const struct proto_ctx *who, uint16_t call,
                                const struct gw_part *part, const uint8_t *body, size_t len,
                                struct gw_decision *d);

/* hsm.session.connect on crn:hsmgate:<tenant> at the hello: 0 or GW_ERR_AUTH. */
int gw_policy_connect_check(struct gw_server *s, const struct proto_ctx *who,
                            struct gw_decision *d) GW_WUR;

/* crn:hsmgate:<tenant>:partition:<name> */
void gw_partition_crn(const struct gw_part *part, char *out, size_t outsz);

/* ---- audit.c --------------------------------------------------------------------------- */

/* Opens the log of s->cfg->audit (generating the signing key when its file is missing).
 * Before the loop runs: it reads and checks the whole existing log. */
int gw_audit_open(struct gw_server *s, char *err, size_t errsz) GW_WUR;
/* Closes the log (final checkpoint); pending completions are dropped. */
void gw_audit_close(struct gw_server *s);
void gw_audit_free(struct gw_server *s);

/* 1 when a new request may be served: its events can be appended (or audit is off); 0
 * (and the operator alert, once) when the log has failed or is being reopened, or a
 * required sink is over its hard spool limit: the caller refuses the request with
 * GW_CKR_AUDIT_FAILED. */
int gw_audit_usable(struct gw_server *s);
#define GW_CKR_AUDIT_FAILED CKR_DEVICE_ERROR

/* The event of a request refused before routing with an ERROR frame (over max_inflight, a
 * request id already in flight, draining): failure, CKR_GENERAL_ERROR, `why` (static text,
 * no caller data) in its message. Written when the log is writable and no sink is over its
 * hard limit; never waited for (the ERROR serves nothing). */
void gw_audit_refused(struct gw_server *s, const struct proto_ctx *who, uint16_t call,
                      uint64_t conn_id, uint32_t req_id, const struct timespec *start,
                      const char *why);

/* The event of one request, before its answer is known: initiator, target (the partition,
 * or the tenant when `part` is NULL), action, correlation, the policy decision (d may be
 * NULL). *out is the caller's (aud_event_free) until given to gw_audit_commit. */
int gw_audit_request_event(struct gw_server *s, const struct proto_ctx *who, uint16_t call,
                           const struct gw_part *part, const struct gw_decision *d,
                           uint64_t conn_id, uint32_t req_id, struct aud_event **out) GW_WUR;

/* Completes `ev` (consumed, always) as pending, or with rv and the latency since start, and
 * appends it. With want_done, gw_conn_audit_done(conn_id, req_id, *seq, status) runs on the
 * loop once the record is durable or failed. An AUD_ERR_* when the event could not be
 * appended (the log has then failed, or is refusing: the caller fails closed). */
int gw_audit_commit(struct gw_server *s, struct aud_event *ev, int pending, CK_RV rv,
                    const struct timespec *start, uint64_t conn_id, uint32_t req_id, int want_done,
                    uint64_t *seq) GW_WUR;

/* A reopen after a failure finished with `status` (loop thread). */
void gw_audit_reopened(struct gw_server *s, int status);

/* System events: gateway start/stop, worker start/exit/restart, policy reload. */
void gw_audit_gateway(struct gw_server *s, const char *verb, const char *detail);
void gw_audit_worker(struct gw_server *s, const struct gw_worker *w, const char *verb,
                     const char *detail, int failure);
void gw_audit_policy_reload(struct gw_server *s, const char *path, int ok, const char *detail);

/* THE audit event of a refused connection-level authentication (no request to hold). */
void gw_audit_auth_failure(struct gw_server *s, const char *source, uint8_t cred,
                           const char *reason);

/* An event a worker sent over IPC (PROTO_IPC_AUDIT, JSON body). */
/* A worker's key-level policy decision for a request in flight (PROTO_IPC_AUDIT; the only
 * event kind a worker may send): put into that request's audit event. */
void gw_audit_worker_event(struct gw_server *s, struct gw_worker *w, uint64_t conn_id,
                           const uint8_t *body, size_t len);

/* An event of the audit sink `sink` (object audit-sink: spool, fail, recover) with an
 * explicit severity and `detail` (printable ASCII, our own text). */
void gw_audit_sink_event(struct gw_server *s, const char *sink, const char *verb,
                         const char *detail, int failure, enum aud_severity severity);

/* The log's origin for a gateway_id: [A-Za-z0-9._:/-] only, anything else becomes '-'. */
void gw_audit_origin(const char *gateway_id, char *out, size_t outsz);

/* 1 when the two audit blocks differ in anything that needs a restart (SIGHUP keeps the
 * running log and sinks and says so). A new signing key is not such a change: see below. */
int gw_audit_cfg_changed(const struct cfg_audit *a, const struct cfg_audit *b);
/*
 * SIGHUP with a new audit.signing_key (n, the new configuration): rotates the running log to
 * it online (AUDIT.md §2.4: a checkpoint by the old key, the rotation record signed by both,
 * the hsmgate.audit-key.rotate event and a checkpoint by the new key, durable before this
 * returns). 0 with nothing done when the key is the same, the log directory changed (that
 * needs a restart) or audit is off; GW_ERR_CONFIG and err when the new key is missing, not
 * mode 0600, not Ed25519, or the key in force or a retired one: the reload must then keep
 * the running configuration, and the log is unchanged.
 */
int gw_audit_key_reload(struct gw_server *s, const struct cfg_daemon *n, char *err, size_t errsz);

/* ---- sinks.c --------------------------------------------------------------------------- */

/*
 * Opens every sink of s->cfg->audit over the open log (the cursor and TLS files are read
 * now, so a damaged cursor or an unreadable key stops the start; nothing connects yet),
 * starts one thread each running aud_sink_run, and the loop's 1 s spool check. Called by
 * gw_audit_open, before the loop runs. GW_ERR_CONFIG with the sink's name and the reason.
 */
int gw_sinks_start(struct gw_server *s, char *err, size_t errsz) GW_WUR;
/* hsmgated --check: opens and closes every sink of cfg as gw_sinks_start() would (url,
 * cursor and the log it belongs to, TLS files, token file), without a gateway, connecting
 * or creating anything. 0, or GW_ERR_CONFIG and the first sink's reason in err. */
int gw_sinks_check_config(const struct cfg_daemon *cfg, char *err, size_t errsz) GW_WUR;
/* The log whose durability the sink threads may ask for; NULL while it is closed or being
 * reopened (the threads then keep the last answer). Loop thread. */
void gw_sinks_set_log(struct gw_server *s, struct aud_log *log);
/* The spool check of every sink (the 1 s timer runs it): events, alerts, the hard state. */
void gw_sinks_check(struct gw_server *s);
/* 1 while a required sink is over its hard spool limit: new requests are refused. */
int gw_sinks_over_hard(const struct gw_server *s);
/* Shutdown, before the log is closed: lets the sinks deliver what the log holds (at most
 * a few seconds; the rest waits for the next start), then stops and joins their threads. */
void gw_sinks_stop(struct gw_server *s);
void gw_sinks_free(struct gw_server *s);

/* conn.c: the record `seq` of request (conn_id, req_id) is durable (status 0) or failed. */
void gw_conn_audit_done(struct gw_server *s, uint64_t conn_id, uint32_t req_id, uint64_t seq,
                        int status);

#endif /* HSMGATE_GW_INT_H */
