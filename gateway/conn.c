/*
 * gateway/conn.c — one client connection: TLS, framing, the hello, requests and replies,
 * back-pressure, timeouts and a clean close.
 *
 * Life of a connection (enum gw_conn_state):
 *   TLS ─handshake─▶ HELLO ─WELCOME─▶ OPEN ─SIGTERM─▶ DRAIN
 *     any refusal ─▶ CLOSING (flush the ERROR frame) ─▶ LINGER (close_notify + FIN, discard
 *     input until the peer closes or GW_LINGER_MS) ─▶ freed
 * The lingering close matters: closing a socket that still has unread input makes the
 * kernel send a RST, which can destroy the ERROR frame the client has not read yet.
 *
 * Callbacks are deferred (BEV_OPT_DEFER_CALLBACKS) so that writing to a connection from
 * another connection's or a worker's callback never re-enters this file; a connection is
 * freed only from its own event/write/timer callbacks or by the server's teardown.
 */
#include "gateway/gw_int.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/x509.h>

/* Read past one frame's need so that small pipelined frames are taken in one callback. */
#define GW_READ_SLACK (64u * 1024u)
/* Frames before authentication are small (a HELLO is < 1 KiB): an unauthenticated peer
 * cannot make the gateway buffer more than this. */
#define GW_PREAUTH_MAX_FRAME 8192u
#define GW_LINGER_MS         2000
/* Slots of the in-flight table a connection starts with; it doubles up to max_inflight
 * when a request finds it full, so an idle connection does not pay for max_inflight
 * entries (64 B each; limits.max_inflight may be up to 65536). */
#define GW_INFLIGHT_INITIAL 8u
/* While the gateway stops, a peer that does not close gets less time. */
#define GW_LINGER_STOPPING_MS 300

static void conn_read_cb(struct bufferevent *bev, void *arg);
static void conn_write_cb(struct bufferevent *bev, void *arg);
static void conn_event_cb(struct bufferevent *bev, short what, void *arg);
static void conn_free(struct gw_conn *c, const char *why);

/* ---- helpers ----------------------------------------------------------------------------- */

static void
wipe_free_cb(const void *data, size_t len, void *extra)
{
	(void)extra;
	OPENSSL_cleanse((void *)(uintptr_t)data, len);
	free((void *)(uintptr_t)data);
}

int
gw_evbuffer_add_wiped(struct evbuffer *out, const void *p, size_t len)
{
	void *copy;

	if (len == 0) {
		return 0;
	}
	if ((copy = malloc(len)) == NULL) {
		return GW_ERR_NOMEM;
	}
	memcpy(copy, p, len);
	/* A frame may carry a PIN or key material (STYLE rule 9): the copy is wiped once
	 * libevent has written it. */
	if (evbuffer_add_reference(out, copy, len, wipe_free_cb, NULL) != 0) {
		OPENSSL_cleanse(copy, len);
		free(copy);
		return GW_ERR_NOMEM;
	}
	return 0;
}

static const char *
cred_name(uint8_t cred)
{
	switch (cred) {
	case PROTO_CRED_CERT:
		return "cert";
	case PROTO_CRED_APIKEY:
		return "apikey";
	default:
		return "none";
	}
}

static const char *
who(const struct gw_conn *c)
{
	return c->ctx.principal[0] != '\0' ? c->ctx.principal : "-";
}

static size_t
out_high(const struct gw_conn *c)
{
	/* Two frames of output per connection before reading stops. */
	return 2 *
	       (size_t)(c->max_frame > GW_PREAUTH_MAX_FRAME ? c->max_frame : GW_PREAUTH_MAX_FRAME);
}

static struct gw_conn **
conn_bucket(struct gw_server *s, uint64_t id)
{
	return &s->conn_tab[id & (GW_CONN_BUCKETS - 1)];
}

static struct gw_conn *
conn_find(struct gw_server *s, uint64_t id)
{
	struct gw_conn *c;

	for (c = *conn_bucket(s, id); c != NULL; c = c->hnext) {
		if (c->id == id) {
			return c;
		}
	}
	return NULL;
}

static void
conn_unhash(struct gw_conn *c)
{
	struct gw_conn **pp;

	for (pp = conn_bucket(c->srv, c->id); *pp != NULL; pp = &(*pp)->hnext) {
		if (*pp == c) {
			*pp = c->hnext;
			return;
		}
	}
}

static void
set_read_need(struct gw_conn *c, size_t need)
{
	bufferevent_setwatermark(c->bev, EV_READ, need, need + GW_READ_SLACK);
}

static void
check_pressure(struct gw_conn *c)
{
	if (!c->read_paused && evbuffer_get_length(bufferevent_get_output(c->bev)) > out_high(c)) {
		/* The client does not read its replies: stop taking requests until it does. */
		c->read_paused = 1;
		bufferevent_disable(c->bev, EV_READ);
	}
}

/* Appends a frame to c's stage (a proto_buf: grown without leaving a copy unwiped). */
static int
stage_add(struct gw_conn *c, const uint8_t *frame, size_t len)
{
	if (c->stage.data == NULL) {
		proto_buf_init(&c->stage);
		c->stage.max =
		        SIZE_MAX / 2; /* bounded by max_inflight x max_frame, not by one frame */
	}
	if (proto_put_raw(&c->stage, frame, len) != 0) {
		return GW_ERR_NOMEM;
	}
	if (!c->staged) {
		c->staged = 1;
		TAILQ_INSERT_TAIL(&c->srv->staged, c, stage_link);
	}
	return 0;
}

/* Hands c's staged frames to its output as one chunk (one SSL_write: one TLS record),
 * wiped once written. */
static void
stage_flush(struct gw_conn *c)
{
	if (!c->staged) {
		return;
	}
	TAILQ_REMOVE(&c->srv->staged, c, stage_link);
	c->staged = 0;
	if (c->stage.len != 0 &&
	    evbuffer_add_reference(bufferevent_get_output(c->bev), c->stage.data, c->stage.len,
	                           wipe_free_cb, NULL) == 0) {
		proto_buf_init(&c->stage); /* libevent's now: wipe_free_cb wipes what was written */
	} else if (c->stage.len != 0) {
		gw_log(GW_LOG_ERROR, "gw", "cannot queue frames", "conn=%llu bytes=%zu",
		       (unsigned long long)c->id, c->stage.len);
	}
	proto_buf_free(&c->stage);
	check_pressure(c);
}

/* Drops c's staged frames (the connection is being freed). */
static void
stage_drop(struct gw_conn *c)
{
	if (c->staged) {
		TAILQ_REMOVE(&c->srv->staged, c, stage_link);
		c->staged = 0;
	}
	proto_buf_free(&c->stage);
}

void
gw_conn_flush_staged(struct gw_server *s)
{
	struct gw_conn *c;

	while ((c = TAILQ_FIRST(&s->staged)) != NULL) {
		stage_flush(c);
	}
}

/* Queues a complete frame for the client: staged while the server is corked (gw_cork). */
static void
conn_send(struct gw_conn *c, const uint8_t *frame, size_t len)
{
	if (c->srv->cork > 0 && c->bev != NULL) {
		if (stage_add(c, frame, len) != 0) {
			gw_log(GW_LOG_ERROR, "gw", "cannot queue a frame", "conn=%llu bytes=%zu",
			       (unsigned long long)c->id, len);
		}
		return;
	}
	if (gw_evbuffer_add_wiped(bufferevent_get_output(c->bev), frame, len) != 0) {
		gw_log(GW_LOG_ERROR, "gw", "cannot queue a frame", "conn=%llu bytes=%zu",
		       (unsigned long long)c->id, len);
		return;
	}
	check_pressure(c);
}

static void
conn_send_buf(struct gw_conn *c, struct proto_buf *b, int r)
{
	if (r != 0) {
		gw_log(GW_LOG_ERROR, "gw", "cannot encode a frame", "conn=%llu err=\"%s\"",
		       (unsigned long long)c->id, proto_strerror(r));
		return;
	}
	conn_send(c, b->data, b->len);
}

static void
conn_send_error(struct gw_conn *c, uint32_t req_id, uint32_t code, const char *msg)
{
	struct proto_buf b;

	proto_buf_init(&b);
	conn_send_buf(c, &b, gw_reply_error(&b, req_id, code, msg));
	proto_buf_free(&b);
}

static void
conn_send_rv(struct gw_conn *c, uint16_t call, uint32_t req_id, CK_RV rv)
{
	struct proto_buf b;

	proto_buf_init(&b);
	conn_send_buf(c, &b, gw_reply_rv(&b, call, req_id, rv));
	proto_buf_free(&b);
}

/* The CK_RV of a REPLY frame (u64 after the header), for the audit event. */
static CK_RV
frame_rv(const uint8_t *frame, size_t len)
{
	struct proto_cur cur;
	CK_ULONG rv = CKR_GENERAL_ERROR;

	if (len < PROTO_HDR_BYTES + 8 || frame[7] != PROTO_MSG_REPLY) {
		return CKR_GENERAL_ERROR;
	}
	proto_cur_init(&cur, frame + PROTO_HDR_BYTES, len - PROTO_HDR_BYTES);
	if (proto_get_ulong(&cur, &rv) != 0) {
		return CKR_GENERAL_ERROR;
	}
	return rv;
}

/* ---- closing ----------------------------------------------------------------------------- */

static void
conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct gw_conn *c = arg;

	(void)fd;
	(void)what;
	switch (c->state) {
	case GW_CONN_TLS:
	case GW_CONN_HELLO:
		gw_log(GW_LOG_INFO, "gw", "handshake timeout", "conn=%llu source=%s stage=%s",
		       (unsigned long long)c->id, c->source,
		       c->state == GW_CONN_TLS ? "tls" : "hello");
		conn_free(c, "handshake timeout");
		break;
	case GW_CONN_CLOSING:
	case GW_CONN_LINGER:
		conn_free(c, NULL);
		break;
	default:
		break;
	}
}

static void
conn_linger(struct gw_conn *c)
{
	unsigned ms = c->srv->stopping ? GW_LINGER_STOPPING_MS : GW_LINGER_MS;
	struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};

	c->state = GW_CONN_LINGER;
	/* close_notify, then FIN; the peer's close (or the timer) ends it. */
	(void)SSL_shutdown(c->ssl);
	ERR_clear_error();
	(void)shutdown(c->fd, SHUT_WR);
	bufferevent_setwatermark(c->bev, EV_READ, 0, 0);
	bufferevent_enable(c->bev, EV_READ);
	evtimer_add(c->timer, &tv);
}

/* Closes after the queued output (an ERROR frame) has been written. */
static void
conn_close(struct gw_conn *c)
{
	struct timeval tv = {GW_LINGER_MS / 1000, (GW_LINGER_MS % 1000) * 1000};

	if (c->state == GW_CONN_CLOSING || c->state == GW_CONN_LINGER) {
		return;
	}
	c->state = GW_CONN_CLOSING;
	bufferevent_set_timeouts(c->bev, NULL, NULL);
	/* Input is still read (and discarded) so the kernel never answers it with a RST. */
	bufferevent_setwatermark(c->bev, EV_READ, 0, 0);
	bufferevent_enable(c->bev, EV_READ);
	c->read_paused = 0;
	bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
	/* A client that never reads cannot hold the connection open. */
	evtimer_add(c->timer, &tv);
	stage_flush(c); /* the ERROR frame, if the server is corked */
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
		conn_linger(c);
	}
}

/* A connection-level refusal: ERROR with request id 0, then close. */
static void
conn_refuse(struct gw_conn *c, uint32_t code, const char *msg)
{
	c->srv->stats.frames_refused++;
	gw_log(GW_LOG_WARN, "gw", "frame refused",
	       "conn=%llu source=%s principal=%s code=%u reason=\"%s\"", (unsigned long long)c->id,
	       c->source, who(c), code, msg);
	conn_send_error(c, 0, code, msg);
	conn_close(c);
}

static void
conn_free(struct gw_conn *c, const char *why)
{
	struct gw_server *s = c->srv;
	char tls[256];
	uint32_t i;

	gw_tls_errors_drain(c->bev, tls, sizeof(tls));
	if (why != NULL) {
		gw_log(GW_LOG_INFO, "gw", "connection closed",
		       "conn=%llu source=%s principal=%s requests=%llu reason=\"%s\"",
		       (unsigned long long)c->id, c->source, who(c),
		       (unsigned long long)c->n_requests, why);
	} else {
		gw_log(GW_LOG_INFO, "gw", "connection closed",
		       "conn=%llu source=%s principal=%s requests=%llu", (unsigned long long)c->id,
		       c->source, who(c), (unsigned long long)c->n_requests);
	}
	/* The workers this connection used drop its sessions (they would otherwise live until
	 * the worker restarts). */
	for (i = 0; c->used != NULL && i < s->n_workers; i++) {
		if (c->used[i] && gw_worker_send(&s->workers[i], PROTO_IPC_CONN_CLOSED, c->id, NULL,
		                                 NULL, 0) != 0) {
			gw_log(GW_LOG_DEBUG, "gw", "worker not told of a closed connection",
			       "conn=%llu partition=%s", (unsigned long long)c->id,
			       s->workers[i].part.name);
		}
	}
	for (i = 0; c->inflight != NULL && i < c->inflight_cap; i++) {
		struct gw_inflight *f = &c->inflight[i];

		if (f->state == GW_SLOT_WORKER && f->worker >= 0 &&
		    (unsigned)f->worker < s->n_workers) {
			s->workers[f->worker].n_inflight--;
		}
		/* A held reply or request is dropped with its connection (wiped: it may carry a
		 * PIN or key material); its audit completion then finds no connection. */
		if (f->frame != NULL) {
			OPENSSL_clear_free(f->frame, f->frame_len);
		}
		aud_event_free(f->ev);
	}
	s->n_calls -= c->n_inflight;
	stage_drop(c);
	TAILQ_REMOVE(&s->conns, c, link);
	conn_unhash(c);
	s->n_conns--;
	if (c->timer != NULL) {
		event_free(c->timer);
	}
	if (c->bev != NULL) {
		bufferevent_free(c->bev); /* BEV_OPT_CLOSE_ON_FREE: frees the SSL, closes fd */
	}
	free(c->inflight);
	free(c->used);
	OPENSSL_cleanse(c, sizeof(*c));
	free(c);
	gw_server_conn_gone(s);
}

/* ---- the hello ----------------------------------------------------------------------------- */

/* Authenticates by the TLS client certificate; on failure writes the reason. */
static int
auth_cert(struct gw_conn *c, const struct cfg_tenant **t, const struct cfg_principal **p, char *why,
          size_t whysz)
{
	struct gw_peer peer;
	const char *uris[GW_MAX_URIS];
	size_t i;

	if ((SSL_get_verify_mode(c->ssl) & SSL_VERIFY_PEER) == 0) {
		snprintf(why, whysz,
		         "certificate authentication is not enabled on this gateway (no "
		         "tls.client_ca)");
		return GW_ERR_AUTH;
	}
	gw_tls_peer(c->ssl, c->verify_err, &peer);
	if (!peer.has_cert) {
		snprintf(why, whysz, "no client certificate");
		return GW_ERR_AUTH;
	}
	if (peer.verify_err != X509_V_OK) {
		snprintf(why, whysz, "client certificate not trusted: %s",
		         X509_verify_cert_error_string(peer.verify_err));
		return GW_ERR_AUTH;
	}
	for (i = 0; i < peer.n_uris; i++) {
		uris[i] = peer.uris[i];
	}
	if (gw_auth_cert_lookup(c->srv->cfg, peer.subject, uris, peer.n_uris, t, p) != 0) {
		snprintf(why, whysz, "certificate subject %s is not mapped to a principal",
		         peer.subject);
		return GW_ERR_AUTH;
	}
	return 0;
}

/* hsm.session.connect (docs/POLICY.md), once per connection, right after authentication: a
 * refusal closes the connection with ERROR AUTH. */
static int
connect_allowed(struct gw_conn *c)
{
	struct gw_server *s = c->srv;
	struct gw_decision d;

	if (gw_policy_connect_check(s, &c->ctx, &d) == 0) {
		return 1;
	}
	s->stats.auth_failed++;
	gw_log(GW_LOG_WARN, "gw", "connection refused by policy",
	       "conn=%llu source=%s principal=%s action=hsm.session.connect result=%s sid=%s",
	       (unsigned long long)c->id, c->source, c->ctx.principal,
	       pol_result_name((enum pol_result)d.result), d.nsids > 0 ? d.sids[0] : "-");
	gw_audit_auth_failure(s, c->source, c->ctx.cred, "denied by policy");
	memset(c->ctx.principal, 0, sizeof(c->ctx.principal));
	conn_send_error(c, 0, PROTO_GWERR_AUTH, "denied by policy (hsm.session.connect)");
	conn_close(c);
	return 0;
}

static void
conn_hello(struct gw_conn *c, const uint8_t *body, size_t len)
{
	struct gw_server *s = c->srv;
	const struct cfg_limits *lim = &s->cfg->limits;
	const struct cfg_tenant *t = NULL;
	const struct cfg_principal *p = NULL;
	struct proto_hello hello;
	struct proto_welcome w;
	struct proto_buf b;
	struct proto_cur cur;
	char why[768], qname[160], qver[96];
	uint32_t i;
	int r;

	proto_cur_init(&cur, body, len);
	if (proto_hello_get(&cur, &hello) != 0 || proto_cur_end(&cur) != 0) {
		OPENSSL_cleanse(&hello, sizeof(hello));
		conn_refuse(c, PROTO_GWERR_MALFORMED, "malformed HELLO");
		return;
	}
	if (hello.min_version > PROTO_VERSION || hello.max_version < PROTO_VERSION) {
		snprintf(why, sizeof(why),
		         "no common protocol version: client speaks %u..%u, gateway %u",
		         hello.min_version, hello.max_version, PROTO_VERSION);
		OPENSSL_cleanse(&hello, sizeof(hello));
		conn_refuse(c, PROTO_GWERR_VERSION, why);
		return;
	}
	gw_log_quote(hello.client_name, qname, sizeof(qname));
	gw_log_quote(hello.client_version, qver, sizeof(qver));
	c->ctx.cred = hello.cred;
	switch (hello.cred) {
	case PROTO_CRED_CERT:
		r = auth_cert(c, &t, &p, why, sizeof(why));
		break;
	case PROTO_CRED_APIKEY:
		r = gw_auth_apikey_lookup(s->cfg, hello.api_key, &t, &p);
		if (r != 0) {
			snprintf(why, sizeof(why),
			         hello.api_key[0] == '\0' ? "no API key in HELLO"
			                                  : "unknown API key");
			r = GW_ERR_AUTH;
		}
		break;
	default:
		snprintf(why, sizeof(why), "unknown credential kind %u", hello.cred);
		r = GW_ERR_AUTH;
		break;
	}
	/* The key is not needed past this point (STYLE rule 9). */
	OPENSSL_cleanse(&hello, sizeof(hello));
	if (r == 0 && (r = gw_ident_fill(t, p, &c->ctx)) != 0) {
		snprintf(why, sizeof(why), "principal name too long");
	}
	if (r != 0) {
		char q[800];

		s->stats.auth_failed++;
		memset(c->ctx.principal, 0, sizeof(c->ctx.principal));
		gw_log(GW_LOG_WARN, "gw", "authentication failed",
		       "conn=%llu source=%s cred=%s client=%s reason=%s", (unsigned long long)c->id,
		       c->source, cred_name(c->ctx.cred), qname, gw_log_quote(why, q, sizeof(q)));
		gw_audit_auth_failure(s, c->source, c->ctx.cred, why);
		conn_send_error(c, 0, PROTO_GWERR_AUTH, why);
		conn_close(c);
		return;
	}
	snprintf(c->ctx.source, sizeof(c->ctx.source), "%s", c->source);
	if (!connect_allowed(c)) {
		return;
	}
	c->max_frame = lim->max_frame != 0 ? lim->max_frame : PROTO_MAX_FRAME_DEFAULT;
	if (c->max_frame > PROTO_MAX_FRAME_CAP) {
		c->max_frame = PROTO_MAX_FRAME_CAP;
	}
	c->max_inflight = lim->max_inflight != 0 ? lim->max_inflight : 64;
	if (c->max_inflight > 65536) {
		c->max_inflight = 65536;
	}
	c->inflight_cap =
	        c->max_inflight < GW_INFLIGHT_INITIAL ? c->max_inflight : GW_INFLIGHT_INITIAL;
	c->inflight = calloc(c->inflight_cap, sizeof(*c->inflight));
	c->used = calloc(s->n_workers > 0 ? s->n_workers : 1, 1);
	if (c->inflight == NULL || c->used == NULL) {
		conn_refuse(c, PROTO_GWERR_INTERNAL, "out of memory");
		return;
	}
	for (i = 0; i < c->inflight_cap; i++) {
		c->inflight[i].state = GW_SLOT_FREE;
		c->inflight[i].worker = -1;
	}
	memset(&w, 0, sizeof(w));
	w.version = PROTO_VERSION;
	snprintf(w.gateway_id, sizeof(w.gateway_id), "%s",
	         s->cfg->gateway_id != NULL ? s->cfg->gateway_id : "hsmgated");
	snprintf(w.principal, sizeof(w.principal), "%s", c->ctx.principal);
	w.max_frame = c->max_frame;
	w.max_inflight = c->max_inflight;
	w.conn_id = c->id;
	proto_buf_init(&b);
	if ((r = proto_frame_begin(&b, PROTO_MSG_WELCOME, 0, 0, 0)) == 0 &&
	    (r = proto_welcome_put(&b, &w)) == 0) {
		r = proto_frame_finish(&b);
	}
	if (r != 0) {
		proto_buf_free(&b);
		conn_refuse(c, PROTO_GWERR_INTERNAL, "cannot encode WELCOME");
		return;
	}
	conn_send(c, b.data, b.len);
	proto_buf_free(&b);
	c->state = GW_CONN_OPEN;
	s->stats.auth_ok++;
	evtimer_del(c->timer);
	if (lim->idle_timeout_s != 0) {
		struct timeval tv = {(time_t)lim->idle_timeout_s, 0};

		bufferevent_set_timeouts(c->bev, &tv, NULL);
	}
	gw_log(GW_LOG_INFO, "gw", "authenticated",
	       "conn=%llu source=%s principal=%s cred=%s client=%s client_version=%s",
	       (unsigned long long)c->id, c->source, c->ctx.principal, cred_name(c->ctx.cred),
	       qname, qver);
}

/* ---- requests ------------------------------------------------------------------------------ */

static struct gw_inflight *
inflight_find(struct gw_conn *c, uint32_t req_id)
{
	uint32_t i;

	for (i = 0; i < c->inflight_cap; i++) {
		if (c->inflight[i].state != GW_SLOT_FREE && c->inflight[i].req_id == req_id) {
			return &c->inflight[i];
		}
	}
	return NULL;
}

static struct gw_inflight *
inflight_free_slot(struct gw_conn *c)
{
	uint32_t i;

	for (i = 0; i < c->inflight_cap; i++) {
		if (c->inflight[i].state == GW_SLOT_FREE) {
			return &c->inflight[i];
		}
	}
	return NULL;
}

/* Makes room for one more call (n_inflight < max_inflight): a full table doubles, up to
 * max_inflight. Slots move, so no slot pointer may be held across this call. 0 or
 * GW_ERR_NOMEM. */
static int
inflight_reserve(struct gw_conn *c)
{
	struct gw_inflight *t;
	uint32_t cap, i;

	if (c->n_inflight < c->inflight_cap) {
		return 0;
	}
	cap = c->inflight_cap > c->max_inflight / 2 ? c->max_inflight : 2 * c->inflight_cap;
	if ((t = realloc(c->inflight, (size_t)cap * sizeof(*t))) == NULL) {
		return GW_ERR_NOMEM;
	}
	for (i = c->inflight_cap; i < cap; i++) {
		memset(&t[i], 0, sizeof(t[i]));
		t[i].state = GW_SLOT_FREE;
		t[i].worker = -1;
	}
	c->inflight = t;
	c->inflight_cap = cap;
	return 0;
}

/* SIGTERM came while this connection had calls in flight: once the last reply is out, the
 * client is told and the connection closes. */
static void
drain_check(struct gw_conn *c)
{
	if (c->state == GW_CONN_DRAIN && c->n_inflight == 0) {
		conn_send_error(c, 0, PROTO_GWERR_SHUTDOWN, "gateway is shutting down");
		conn_close(c);
	}
}

/* Frees a slot: its held frame (wiped), its event; the call is no longer in flight. */
static void
slot_release(struct gw_conn *c, struct gw_inflight *slot)
{
	if (slot->frame != NULL) {
		OPENSSL_clear_free(slot->frame, slot->frame_len);
	}
	aud_event_free(slot->ev);
	memset(slot, 0, sizeof(*slot));
	slot->state = GW_SLOT_FREE;
	slot->worker = -1;
	c->n_inflight--;
	c->srv->n_calls--;
}

static int
slot_keep_frame(struct gw_inflight *slot, const uint8_t *frame, size_t len)
{
	if ((slot->frame = malloc(len)) == NULL) {
		return GW_ERR_NOMEM;
	}
	memcpy(slot->frame, frame, len);
	slot->frame_len = len;
	return 0;
}

/*
 * The answer to the slot's request. Its audit event is completed (CK_RV, latency) and
 * appended; with audit.durability sync the answer is held in the slot until the event is
 * durable (gw_conn_audit_done), with async it goes now. When the event cannot be appended
 * the answer never leaves: the client gets GW_CKR_AUDIT_FAILED instead (fail closed). An
 * ERROR frame (a refused, malformed request) is sent either way: it serves nothing.
 */
static void
conn_answer(struct gw_conn *c, struct gw_inflight *slot, const uint8_t *frame, size_t len, CK_RV rv)
{
	struct gw_server *s = c->srv;
	struct aud_event *ev = slot->ev;
	int is_error = len > 7 && frame[7] == PROTO_MSG_ERROR;
	uint64_t seq = 0;
	int r;

	slot->ev = NULL;
	r = gw_audit_commit(s, ev, 0, rv, &slot->start, c->id, slot->req_id, s->audit_sync, &seq);
	if (r != 0 || !s->audit_sync) {
		if (r != 0 && !is_error) {
			gw_log(GW_LOG_WARN, "gw",
			       "answer withheld: its audit event cannot be written",
			       "conn=%llu principal=%s req=%u rv=CKR_DEVICE_ERROR",
			       (unsigned long long)c->id, who(c), slot->req_id);
			conn_send_rv(c, slot->call, slot->req_id, GW_CKR_AUDIT_FAILED);
		} else {
			conn_send(c, frame, len);
		}
		slot_release(c, slot);
		drain_check(c);
		return;
	}
	if (slot_keep_frame(slot, frame, len) != 0) {
		/* The event is on its way; the answer is lost: the client's call times out rather
		 * than getting a reply whose event may not be durable. */
		gw_log(GW_LOG_ERROR, "gw", "cannot hold a reply (out of memory)",
		       "conn=%llu req=%u", (unsigned long long)c->id, slot->req_id);
	}
	slot->state = GW_SLOT_HELD;
	slot->seq = seq;
	slot->worker = -1;
}

static void
conn_answer_rv(struct gw_conn *c, struct gw_inflight *slot, CK_RV rv)
{
	struct proto_buf b;

	proto_buf_init(&b);
	if (gw_reply_rv(&b, slot->call, slot->req_id, rv) != 0) {
		proto_buf_free(&b);
		slot_release(c, slot);
		return;
	}
	conn_answer(c, slot, b.data, b.len, rv);
	proto_buf_free(&b);
}

/* Hands the request to worker `idx`; a worker that is down answers CKR_DEVICE_ERROR. */
static void
conn_to_worker(struct gw_conn *c, struct gw_inflight *slot, unsigned idx, const uint8_t *frame,
               size_t flen)
{
	struct gw_server *s = c->srv;
	struct gw_worker *w = &s->workers[idx];

	if (gw_worker_send(w, PROTO_IPC_REQUEST, c->id, &c->ctx, frame, flen) != 0) {
		/* The partition's worker is down (restarting): a clean PKCS #11 error now rather
		 * than a call parked until it is back. */
		conn_answer_rv(c, slot, CKR_DEVICE_ERROR);
		return;
	}
	slot->state = GW_SLOT_WORKER;
	slot->worker = (int)idx;
	w->n_inflight++;
	c->used[idx] = 1;
}

/* A state-changing call (PROTO_CF_STATE) first records a `pending` event; with durability
 * sync the request waits in the slot until that record is durable (write-ahead). */
static void
conn_forward(struct gw_conn *c, struct gw_inflight *slot, unsigned idx, const uint8_t *frame,
             size_t flen)
{
	struct gw_server *s = c->srv;
	const struct proto_call_info *ci = proto_call_get(slot->call);
	struct aud_event *pev = NULL;
	uint64_t seq = 0;

	if (ci == NULL || (ci->flags & PROTO_CF_STATE) == 0) {
		conn_to_worker(c, slot, idx, frame, flen);
		return;
	}
	if (gw_audit_request_event(s, &c->ctx, slot->call, &s->workers[idx].part, NULL, c->id,
	                           slot->req_id, &pev) != 0 ||
	    gw_audit_commit(s, pev, 1, CKR_OK, &slot->start, c->id, slot->req_id, s->audit_sync,
	                    &seq) != 0) {
		conn_answer_rv(c, slot, GW_CKR_AUDIT_FAILED);
		return;
	}
	if (!s->audit_sync) {
		conn_to_worker(c, slot, idx, frame, flen);
		return;
	}
	if (slot_keep_frame(slot, frame, flen) != 0) {
		conn_answer_rv(c, slot, CKR_HOST_MEMORY);
		return;
	}
	slot->state = GW_SLOT_PREAUDIT;
	slot->seq = seq;
	slot->worker = (int)idx;
}

void
gw_conn_audit_done(struct gw_server *s, uint64_t conn_id, uint32_t req_id, uint64_t seq, int status)
{
	struct gw_inflight *slot;
	struct gw_conn *c;
	int live;

	if ((c = conn_find(s, conn_id)) == NULL || c->inflight == NULL ||
	    (slot = inflight_find(c, req_id)) == NULL || slot->seq != seq ||
	    (slot->state != GW_SLOT_HELD && slot->state != GW_SLOT_PREAUDIT)) {
		return; /* the connection (and the call) went away meanwhile */
	}
	live = c->state == GW_CONN_OPEN || c->state == GW_CONN_DRAIN;
	if (slot->state == GW_SLOT_HELD) {
		if (live && status == 0 && slot->frame != NULL) {
			conn_send(c, slot->frame, slot->frame_len);
		} else if (live) {
			conn_send_rv(c, slot->call, slot->req_id, GW_CKR_AUDIT_FAILED);
		}
		slot_release(c, slot);
		drain_check(c);
		return;
	}
	/* PREAUDIT: the pending record is durable; now the call may change state. */
	if (!live) {
		slot_release(c, slot);
		return;
	}
	if (status != 0) {
		conn_answer_rv(c, slot, GW_CKR_AUDIT_FAILED);
		return;
	}
	{
		uint8_t *req = slot->frame;
		size_t rlen = slot->frame_len;

		slot->frame = NULL;
		slot->frame_len = 0;
		conn_to_worker(c, slot, (unsigned)slot->worker, req, rlen);
		OPENSSL_clear_free(req, rlen);
	}
}

static void
conn_request(struct gw_conn *c, const struct proto_hdr *h, const uint8_t *body, size_t len,
             const uint8_t *frame, size_t flen)
{
	struct gw_server *s = c->srv;
	struct gw_inflight *slot;
	struct gw_decision d;
	struct gw_route rt;
	struct proto_buf b;
	struct timespec start;
	char msg[128];
	CK_RV rv = CKR_OK;
	int r;

	clock_gettime(CLOCK_MONOTONIC, &start);
	s->stats.requests++;
	c->n_requests++;
	if (c->state == GW_CONN_DRAIN) {
		gw_audit_refused(s, &c->ctx, h->call, c->id, h->req_id, &start,
		                 "gateway is shutting down");
		conn_send_error(c, h->req_id, PROTO_GWERR_SHUTDOWN, "gateway is shutting down");
		return;
	}
	/* Replies are matched to calls by request id: two calls in flight with one id could
	 * not be told apart. */
	if (inflight_find(c, h->req_id) != NULL) {
		gw_audit_refused(s, &c->ctx, h->call, c->id, h->req_id, &start,
		                 "request id already in flight");
		conn_send_error(c, h->req_id, PROTO_GWERR_MALFORMED,
		                "request id already in flight");
		return;
	}
	if (c->n_inflight >= c->max_inflight) {
		snprintf(msg, sizeof(msg), "too many calls in flight (max_inflight %u)",
		         c->max_inflight);
		gw_log(GW_LOG_WARN, "gw", "request refused",
		       "conn=%llu principal=%s req=%u reason=\"%s\"", (unsigned long long)c->id,
		       who(c), h->req_id, msg);
		gw_audit_refused(s, &c->ctx, h->call, c->id, h->req_id, &start, msg);
		conn_send_error(c, h->req_id, PROTO_GWERR_LIMIT, msg);
		return;
	}
	if (inflight_reserve(c) != 0) {
		gw_log(GW_LOG_ERROR, "gw", "request refused",
		       "conn=%llu principal=%s req=%u reason=\"out of memory\"",
		       (unsigned long long)c->id, who(c), h->req_id);
		gw_audit_refused(s, &c->ctx, h->call, c->id, h->req_id, &start, "out of memory");
		conn_send_error(c, h->req_id, PROTO_GWERR_INTERNAL, "out of memory");
		return;
	}
	/* Fail closed (docs/AUDIT.md): nothing is served while events cannot be written. */
	if (!gw_audit_usable(s)) {
		conn_send_rv(c, h->call, h->req_id, GW_CKR_AUDIT_FAILED);
		return;
	}
	gw_route_decide(s->parts, s->n_workers, c->ctx.tenant, h, body, len, &rt);
	memset(&d, 0, sizeof(d));
	if (rt.kind == GW_ROUTE_FORWARD) {
		rv = gw_policy_partition_check(s, &c->ctx, h->call, &s->workers[rt.part].part, body,
		                               len, &d);
	}
	slot = inflight_free_slot(c); /* exists: n_inflight < inflight_cap (inflight_reserve) */
	slot->state = GW_SLOT_HELD;   /* taken; conn_answer / conn_forward set the real state */
	slot->req_id = h->req_id;
	slot->call = h->call;
	slot->worker = -1;
	slot->start = start;
	c->n_inflight++;
	s->n_calls++;
	/* A failure leaves slot->ev NULL, and conn_answer then refuses (fail closed). */
	if (gw_audit_request_event(s, &c->ctx, h->call,
	                           rt.kind == GW_ROUTE_FORWARD ? &s->workers[rt.part].part : NULL,
	                           &d, c->id, h->req_id, &slot->ev) != 0) {
		slot->ev = NULL;
	}
	proto_buf_init(&b);
	switch (rt.kind) {
	case GW_ROUTE_ERROR:
		s->stats.frames_refused++;
		gw_log(GW_LOG_WARN, "gw", "request refused",
		       "conn=%llu principal=%s req=%u call=%u reason=\"%s\"",
		       (unsigned long long)c->id, who(c), h->req_id, h->call, rt.why);
		if (gw_reply_error(&b, h->req_id, rt.gwerr, rt.why) == 0) {
			conn_answer(c, slot, b.data, b.len, CKR_GENERAL_ERROR);
		} else {
			slot_release(c, slot);
		}
		break;
	case GW_ROUTE_REPLY:
		gw_log(GW_LOG_DEBUG, "gw", "request answered",
		       "conn=%llu principal=%s req=%u call=%s rv=0x%lx reason=\"%s\"",
		       (unsigned long long)c->id, who(c), h->req_id, rt.call->name,
		       (unsigned long)rt.rv, rt.why);
		conn_answer_rv(c, slot, rt.rv);
		break;
	case GW_ROUTE_ANSWER:
		r = gw_route_answer(s->parts, s->n_workers, c->ctx.tenant, h, body, len, &b);
		if (r == 0) {
			conn_answer(c, slot, b.data, b.len, frame_rv(b.data, b.len));
		} else {
			conn_answer_rv(c, slot, CKR_GENERAL_ERROR);
		}
		break;
	case GW_ROUTE_FORWARD:
		if (rv != CKR_OK) {
			conn_answer_rv(c, slot, rv);
		} else {
			conn_forward(c, slot, rt.part, frame, flen);
		}
		break;
	default:
		slot_release(c, slot);
		conn_send_error(c, h->req_id, PROTO_GWERR_INTERNAL, "no route");
		break;
	}
	proto_buf_free(&b);
}

static void
conn_frame(struct gw_conn *c, const struct proto_hdr *h, const uint8_t *frame, size_t flen)
{
	const uint8_t *body = frame + PROTO_HDR_BYTES;
	size_t len = flen - PROTO_HDR_BYTES;
	struct proto_buf b;

	if (c->state == GW_CONN_HELLO) {
		if (h->type != PROTO_MSG_HELLO) {
			conn_refuse(c, PROTO_GWERR_MALFORMED, "the first frame must be HELLO");
			return;
		}
		conn_hello(c, body, len);
		return;
	}
	switch (h->type) {
	case PROTO_MSG_REQUEST:
		conn_request(c, h, body, len, frame, flen);
		break;
	case PROTO_MSG_PING:
		proto_buf_init(&b);
		if (proto_frame_begin(&b, PROTO_MSG_PONG, 0, 0, h->req_id) == 0 &&
		    proto_frame_finish(&b) == 0) {
			conn_send(c, b.data, b.len);
		}
		proto_buf_free(&b);
		break;
	case PROTO_MSG_HELLO:
		conn_refuse(c, PROTO_GWERR_MALFORMED, "HELLO after the handshake");
		break;
	default:
		conn_refuse(c, PROTO_GWERR_MALFORMED, "unexpected message type from a client");
		break;
	}
}

/* ---- libevent callbacks ---------------------------------------------------------------------- */

static void
conn_read_cb(struct bufferevent *bev, void *arg)
{
	struct gw_conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	uint8_t hdr[PROTO_HDR_BYTES];
	struct proto_hdr h;
	size_t avail, need, n;
	uint8_t *p;
	int r;

	/* STYLE rule 12: the watermark says how much is needed; a `while` takes every complete
	 * frame that is already there, and the requests it forwards go out in one write per
	 * worker (gw_cork). */
	gw_cork(c->srv);
	while (c->state == GW_CONN_HELLO || c->state == GW_CONN_OPEN || c->state == GW_CONN_DRAIN) {
		avail = evbuffer_get_length(in);
		n = avail < PROTO_HDR_BYTES ? avail : PROTO_HDR_BYTES;
		if (evbuffer_copyout(in, hdr, n) != (ev_ssize_t)n) {
			conn_refuse(c, PROTO_GWERR_INTERNAL, "cannot read the input");
			break;
		}
		r = gw_frame_need(hdr, n, c->max_frame, &h, &need);
		if (r != 0) {
			char msg[128];

			/* Decided from the header alone: an oversized frame is never buffered. */
			if (r == PROTO_ERR_TOO_LARGE) {
				snprintf(msg, sizeof(msg), "frame of %u bytes over the limit of %u",
				         (unsigned)(PROTO_HDR_BYTES +
				                    (size_t)(hdr[0] << 24 | hdr[1] << 16 |
				                             hdr[2] << 8 | hdr[3]) -
				                    PROTO_LEN_BYTES),
				         c->max_frame);
			} else {
				snprintf(msg, sizeof(msg), "bad frame header: %s",
				         proto_strerror(r));
			}
			conn_refuse(c, gw_frame_gwerr(r), msg);
			break;
		}
		if (avail < need) {
			set_read_need(c, need);
			gw_uncork(c->srv);
			return;
		}
		if ((p = evbuffer_pullup(in, (ev_ssize_t)need)) == NULL) {
			conn_refuse(c, PROTO_GWERR_INTERNAL, "out of memory");
			break;
		}
		conn_frame(c, &h, p, need);
		/* The frame may have carried a PIN (C_Login): wiped before its memory is reused. */
		OPENSSL_cleanse(p, need);
		evbuffer_drain(in, need);
	}
	gw_uncork(c->srv);
	/* Closing: whatever else arrives is read and dropped (see conn_linger). */
	evbuffer_drain(in, evbuffer_get_length(in));
}

static void
conn_write_cb(struct bufferevent *bev, void *arg)
{
	struct gw_conn *c = arg;
	size_t left = evbuffer_get_length(bufferevent_get_output(bev));

	if (c->state == GW_CONN_CLOSING) {
		if (left == 0) {
			conn_linger(c);
		}
		return;
	}
	if (c->read_paused && left <= out_high(c) / 2) {
		c->read_paused = 0;
		bufferevent_enable(bev, EV_READ);
	}
}

static void
conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct gw_conn *c = arg;
	char tls[256];

	if ((what & BEV_EVENT_CONNECTED) != 0) {
		if (c->state == GW_CONN_TLS) {
			c->state = GW_CONN_HELLO;
			gw_log(GW_LOG_DEBUG, "gw", "TLS established",
			       "conn=%llu source=%s version=%s cipher=%s",
			       (unsigned long long)c->id, c->source, SSL_get_version(c->ssl),
			       SSL_get_cipher_name(c->ssl));
			set_read_need(c, PROTO_HDR_BYTES);
		}
		return;
	}
	if ((what & BEV_EVENT_TIMEOUT) != 0 && c->state == GW_CONN_OPEN) {
		/* A call that runs longer than the idle timeout is not idleness. */
		if (c->n_inflight > 0) {
			bufferevent_enable(bev, EV_READ);
			return;
		}
		conn_free(c, "idle timeout");
		return;
	}
	if ((what & BEV_EVENT_ERROR) != 0) {
		gw_tls_errors_drain(bev, tls, sizeof(tls));
		if (c->state == GW_CONN_TLS) {
			gw_log(GW_LOG_INFO, "gw", "TLS handshake failed",
			       "conn=%llu source=%s reason=\"%s\"", (unsigned long long)c->id,
			       c->source, tls[0] != '\0' ? tls : "connection reset");
			conn_free(c, "TLS handshake failed");
			return;
		}
		conn_free(c, c->state == GW_CONN_LINGER || c->state == GW_CONN_CLOSING ? NULL
		             : tls[0] != '\0'                                          ? tls
		                              : "connection error");
		return;
	}
	if ((what & BEV_EVENT_EOF) != 0) {
		size_t left = evbuffer_get_length(bufferevent_get_input(bev));

		if (left > 0 && c->state != GW_CONN_LINGER && c->state != GW_CONN_CLOSING) {
			c->srv->stats.frames_refused++;
			conn_free(c, "peer closed mid-frame (truncated frame)");
			return;
		}
		conn_free(c, c->state == GW_CONN_LINGER || c->state == GW_CONN_CLOSING
		                     ? NULL
		                     : "peer closed");
		return;
	}
	conn_free(c, "unexpected event");
}

/* ---- entry points -------------------------------------------------------------------------- */

static void
format_source(const struct sockaddr *sa, char *out, size_t outsz)
{
	char ip[INET6_ADDRSTRLEN];

	switch (sa->sa_family) {
	case AF_INET: {
		const struct sockaddr_in *in4 = (const struct sockaddr_in *)(const void *)sa;

		inet_ntop(AF_INET, &in4->sin_addr, ip, sizeof(ip));
		snprintf(out, outsz, "%s:%u", ip, ntohs(in4->sin_port));
		break;
	}
	case AF_INET6: {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;

		inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
		snprintf(out, outsz, "[%s]:%u", ip, ntohs(in6->sin6_port));
		break;
	}
	default:
		snprintf(out, outsz, "unknown");
		break;
	}
}

void
gw_conn_accept(struct gw_server *s, int fd, const struct sockaddr *sa, int socklen)
{
	const struct cfg_limits *lim = &s->cfg->limits;
	/* limits.max_connections within the descriptor limit (server.c) */
	uint32_t max_conns = s->max_conns;
	uint32_t hs_ms = lim->handshake_timeout_ms != 0 ? lim->handshake_timeout_ms : 10000;
	struct timeval tv = {(time_t)(hs_ms / 1000), (suseconds_t)(hs_ms % 1000) * 1000};
	struct gw_conn *c = NULL;
	char source[64];
	SSL *ssl = NULL;
	int one = 1;

	(void)socklen;
	s->stats.accepted++;
	format_source(sa, source, sizeof(source));
	if (s->stopping) {
		close(fd);
		return;
	}
	if (s->n_conns >= max_conns) {
		/* Accepted and closed at once: the client learns promptly instead of waiting in the
		 * backlog; a TLS handshake to say so would cost what the limit protects. */
		s->stats.refused_limit++;
		gw_log(GW_LOG_WARN, "gw", "connection refused: max_connections reached",
		       "source=%s max_connections=%u refused_total=%llu", source, max_conns,
		       (unsigned long long)s->stats.refused_limit);
		close(fd);
		return;
	}
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if ((c = calloc(1, sizeof(*c))) == NULL || (ssl = SSL_new(s->ssl_ctx)) == NULL) {
		goto fail;
	}
	c->srv = s;
	c->id = ++s->next_conn_id;
	c->fd = fd;
	c->state = GW_CONN_TLS;
	c->verify_err = X509_V_OK;
	c->max_frame = GW_PREAUTH_MAX_FRAME;
	snprintf(c->source, sizeof(c->source), "%s", source);
	clock_gettime(CLOCK_MONOTONIC, &c->accepted);
	SSL_set_app_data(ssl, c);
	/* An idle connection keeps no TLS record buffers: OpenSSL frees them whenever they are
	 * empty and allocates them again for the next record (measured with hsmgate-bench
	 * --op idle-conns: 47 -> 31 KiB of hsmgated RSS per idle connection). */
	SSL_set_mode(ssl, SSL_MODE_RELEASE_BUFFERS);
	c->bev = bufferevent_openssl_socket_new(s->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
	                                        BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (c->bev == NULL) {
		goto fail;
	}
	c->ssl = ssl;
	ssl = NULL; /* transferred */
	/* A client that drops the TCP connection without close_notify is just gone. */
	bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
	if ((c->timer = evtimer_new(s->base, conn_timer_cb, c)) == NULL) {
		bufferevent_free(c->bev); /* closes fd */
		free(c);
		return;
	}
	bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
	set_read_need(c, PROTO_HDR_BYTES);
	bufferevent_setwatermark(c->bev, EV_WRITE, out_high(c) / 2, 0);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	/* limits.handshake_timeout_ms covers TLS and the hello together. */
	evtimer_add(c->timer, &tv);
	TAILQ_INSERT_TAIL(&s->conns, c, link);
	c->hnext = *conn_bucket(s, c->id);
	*conn_bucket(s, c->id) = c;
	s->n_conns++;
	gw_log(GW_LOG_INFO, "gw", "connection accepted", "conn=%llu source=%s connections=%u",
	       (unsigned long long)c->id, source, s->n_conns);
	return;
fail:
	gw_log(GW_LOG_ERROR, "gw", "cannot set up a connection", "source=%s", source);
	SSL_free(ssl);
	free(c);
	close(fd);
}

int
gw_conn_on_reply(struct gw_server *s, struct gw_worker *w, uint64_t conn_id, const uint8_t *frame,
                 size_t len)
{
	struct gw_inflight *slot;
	struct proto_hdr h;
	struct gw_conn *c;
	CK_RV rv;

	if (proto_hdr_decode(frame, len, PROTO_MAX_FRAME_CAP, &h) != 0 ||
	    PROTO_HDR_BYTES + (size_t)h.body_len != len ||
	    (h.type != PROTO_MSG_REPLY && h.type != PROTO_MSG_ERROR)) {
		return GW_ERR_MALFORMED;
	}
	if ((c = conn_find(s, conn_id)) == NULL || c->inflight == NULL) {
		gw_log(GW_LOG_DEBUG, "gw", "reply for a closed connection dropped",
		       "conn=%llu partition=%s", (unsigned long long)conn_id, w->part.name);
		return 0;
	}
	if ((slot = inflight_find(c, h.req_id)) == NULL || slot->state != GW_SLOT_WORKER ||
	    slot->worker != (int)w->idx) {
		gw_log(GW_LOG_WARN, "gw", "reply for no call in flight dropped",
		       "conn=%llu partition=%s req=%u", (unsigned long long)conn_id, w->part.name,
		       h.req_id);
		return 0;
	}
	slot->worker = -1;
	w->n_inflight--;
	if (c->state != GW_CONN_OPEN && c->state != GW_CONN_DRAIN) {
		slot_release(c, slot);
		return 0;
	}
	if (len > c->max_frame) {
		/* The worker knows max_frame too; a reply the client would refuse becomes a clean
		 * error for this call instead of a dropped connection. */
		gw_log(GW_LOG_WARN, "gw", "reply over max_frame replaced by CKR_DEVICE_ERROR",
		       "conn=%llu partition=%s req=%u bytes=%zu", (unsigned long long)conn_id,
		       w->part.name, h.req_id, len);
		conn_answer_rv(c, slot, CKR_DEVICE_ERROR);
	} else {
		/* The CK_RV is the u64 at the start of the REPLY body (ERROR: a general error). */
		rv = frame_rv(frame, len);
		conn_answer(c, slot, frame, len, rv);
	}
	return 0;
}

void
gw_conn_fail_worker(struct gw_server *s, struct gw_worker *w)
{
	struct gw_conn *c;
	uint32_t i;
	uint64_t n = 0;

	TAILQ_FOREACH(c, &s->conns, link)
	{
		for (i = 0; c->inflight != NULL && i < c->inflight_cap; i++) {
			struct gw_inflight *f = &c->inflight[i];

			if (f->state != GW_SLOT_WORKER || f->worker != (int)w->idx) {
				continue;
			}
			f->worker = -1;
			w->n_inflight--;
			n++;
			if (c->state == GW_CONN_OPEN || c->state == GW_CONN_DRAIN) {
				conn_answer_rv(c, f, CKR_DEVICE_ERROR);
			} else {
				slot_release(c, f);
			}
		}
		drain_check(c);
	}
	if (n > 0) {
		gw_log(GW_LOG_WARN, "supervisor", "calls in flight failed with CKR_DEVICE_ERROR",
		       "partition=%s calls=%llu", w->part.name, (unsigned long long)n);
	}
}

void
gw_conn_shutdown_all(struct gw_server *s)
{
	struct gw_conn *c, *next;

	for (c = TAILQ_FIRST(&s->conns); c != NULL; c = next) {
		next = TAILQ_NEXT(c, link);
		switch (c->state) {
		case GW_CONN_TLS:
		case GW_CONN_HELLO:
			conn_free(c, "shutdown");
			break;
		case GW_CONN_OPEN:
			c->state = GW_CONN_DRAIN;
			drain_check(c);
			break;
		default:
			break;
		}
	}
}

void
gw_conn_free_all(struct gw_server *s)
{
	struct gw_conn *c;

	while ((c = TAILQ_FIRST(&s->conns)) != NULL) {
		conn_free(c, c->state == GW_CONN_DRAIN ? "shutdown deadline" : "shutdown");
	}
}

struct gw_inflight *
gw_conn_inflight_for(struct gw_server *s, const struct gw_worker *w, uint64_t conn_id,
                     uint32_t req_id)
{
	struct gw_inflight *slot;
	struct gw_conn *c;

	if ((c = conn_find(s, conn_id)) == NULL || c->inflight == NULL ||
	    (slot = inflight_find(c, req_id)) == NULL || slot->state != GW_SLOT_WORKER ||
	    slot->worker != (int)w->idx) {
		return NULL;
	}
	return slot;
}
