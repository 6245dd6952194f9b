/*
 * client/conn.c — one TLS 1.3 connection to the gateway, shared by every application
 * thread.
 *
 * OpenSSL forbids concurrent use of one SSL object from several threads, so one thread at a
 * time *drives* the connection: it holds `drive` and runs io_step — writes the queued
 * frames, polls, reads, and hands every reply to its waiter. Usually that thread is a
 * caller (leader/follower):
 *
 *   cli_conn_call:
 *     take a slot (max_inflight), assign a request id, register a waiter, queue the frame
 *     nobody drives?  drive: io_step until this call's reply is in (dispatching the others'
 *                     on the way); if other calls still wait, pass the role to the I/O
 *                     thread (io_turn), which reads for all of them while any waits
 *     somebody does?  wake it if it sleeps in poll (eventfd), so that the frame goes out;
 *                     wait on the waiter's cv for the reply (or, without an I/O thread,
 *                     for the turn to drive: w->turn)
 *
 * So a single-threaded application's call is its own write, poll and read: no thread
 * hand-off on either side of the round trip, and half the client CPU. Concurrent calls get
 * one reader that is always there, rather than drivers handing over to each other. The I/O
 * thread also does the handshake, and drives when no call has begun for IO_IDLE_MS:
 * keep-alive PINGs, noticing a closed link, replies to calls that timed out. With
 * CKF_LIBRARY_CANT_CREATE_OS_THREADS there is no I/O thread; the handshake runs in
 * cli_conn_open's caller, callers pass the role to each other, and keep-alive waits for
 * the next call.
 *
 * Application threads write to the socket, so the TLS layer writes with send(MSG_NOSIGNAL)
 * (nosig_bio): a gateway that resets the connection can never raise SIGPIPE in them.
 *
 * A call may carry a deferred init (cli_int.h): its frame is queued just before the call's,
 * with a waiter of its own whose `owner` is the call's waiter; the caller waits for both
 * replies, and the driver treats the pair as one caller.
 *
 * A caller that times out leaves its waiter behind, marked abandoned: it keeps its request
 * id and its in-flight slot until the reply arrives (the gateway still counts the call), and
 * whoever drives then frees it. When the connection fails every waiter completes with
 * CLI_ERR_REMOVED; the module makes a new connection on the next call.
 *
 * Locking: c->lock guards every field below marked (L); it is never held across I/O. The
 * driver's fields (read buffer, poll flags, ping state) belong to whoever holds `drive`,
 * and to the handshake before it reports. Lock order: drive, then lock.
 */
#include "client/cli_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#define READ_CHUNK 16384
#define PING_IDLE_MS                                                                               \
	30000u /* a PING after this long without traffic keeps NATs and the                        \
	        * gateway's idle timer from closing a connection that holds                        \
	        * sessions, and finds a half-open one */
#define MSG_MAX 512
/* The I/O thread drives only after this long without a call beginning (see the top). */
#define IO_IDLE_MS 500u
/* Small frames merged into one SSL_write (a TLS record holds 16 KiB). */
#define WRITE_BATCH 16384u

enum conn_state {
	CONN_CONNECTING = 0,
	CONN_UP = 1,
	CONN_DEAD = 2,   /* failed; calls fail with c->reason */
	CONN_CLOSED = 3, /* cli_conn_close ran */
};

/* A queued request frame, owned by the connection once queued (a caller that times out
 * may return while its frame is still being written). */
struct cli_out {
	struct cli_out *next;
	uint8_t *data;
	size_t len;
	size_t off;
};

struct cli_waiter {
	struct cli_waiter *next, *prev;
	uint32_t req_id;
	int done;
	int err;
	int abandoned;
	uint8_t type;
	uint8_t *body;
	size_t body_len;
	int turn; /* (L) the driver passed the role to this waiter's thread */
	pthread_cond_t cv;
	/* A request sent just before this one by the same caller (a deferred init, see
	 * cli_conn_call): `pre` is its waiter, which has no thread of its own; its `owner` is
	 * this one, whose thread waits for both and is woken for both. */
	struct cli_waiter *pre;
	struct cli_waiter *owner;
};

struct cli_conn {
	pthread_mutex_t lock;
	pthread_cond_t cv; /* (L) handshake done, a slot came free, or the connection failed */
	unsigned refs;     /* (L) */
	int state;         /* (L) enum conn_state */
	int reason;        /* (L) CLI_ERR_* once state >= CONN_DEAD */
	int stop;          /* (L) cli_conn_close asks the I/O thread to leave */
	int hs_done;       /* (L) the handshake reported */
	int hs_err;        /* (L) its result */
	char hs_msg[MSG_MAX];
	char peer[320]; /* "host:port" for messages */

	const struct cli_target *target; /* during the handshake only */
	int fd;
	int evfd;
	SSL *ssl;
	pthread_t io;
	int io_started;
	/* Threadless mode (the application set CKF_LIBRARY_CANT_CREATE_OS_THREADS): there is no
	 * I/O thread; a caller waiting for its reply runs io_step() itself while holding
	 * `drive`, and dispatches every other caller's reply on the way. */
	int threadless;
	pthread_mutex_t drive; /* held by the thread running io_step */
	int driving;           /* (L) the role is taken (or being passed to a waiter) */
	unsigned callers;      /* (L) application threads inside cli_conn_call */
	uint64_t last_call_ms; /* (L) when a call last began */
	pthread_cond_t io_cv;  /* (L) the I/O thread, parked while callers drive */
	int io_turn;           /* (L) a caller passed the role to the I/O thread */

	uint32_t next_id;      /* (L) */
	uint32_t max_frame;    /* from the welcome; fixed once UP */
	uint32_t max_inflight; /* from the welcome; fixed once UP */
	uint32_t inflight;     /* (L) waiters registered, abandoned ones included */
	uint32_t timeout_ms;
	int defer_init;             /* the configuration's defer_init */
	struct proto_spin spin;     /* busy_poll_us: a lone caller's poll for its reply (drive) */
	struct cli_waiter *waiters; /* (L) */
	/* (L) the list; the frame at the head is the writer's while it writes it (io_write). */
	struct cli_out *out_head, *out_tail;
	struct cli_sessions sessions; /* (L) */
	/* (L) the driver is in (or about to enter) poll() with nothing left to write,
	 * and whether a wake-up is already on its way: a caller writes the eventfd only when
	 * both say it must, so many calls in flight cost one wake-up, not one each. */
	int polling;
	int wake_pending;

	/* The driver's (whoever holds `drive`). */
	uint8_t *rbuf;
	size_t rlen, rcap;
	int write_blocked;    /* SSL_write wants the socket writable */
	int write_wants_read; /* SSL_write wants the socket readable (retried after a read) */
	int read_wants_write; /* SSL_read wants the socket writable */
	uint64_t last_io_ms;
	uint64_t ping_sent_ms; /* 0 = no PING outstanding */
	struct proto_welcome welcome;
};

/* ---- errors ------------------------------------------------------------------------- */

const char *
cli_strerror(int err)
{
	switch (err) {
	case CLI_OK:
		return "success";
	case CLI_ERR_NOMEM:
		return "out of memory";
	case CLI_ERR_CONFIG:
		return "unusable configuration";
	case CLI_ERR_CONNECT:
		return "cannot reach the gateway";
	case CLI_ERR_AUTH:
		return "authentication failed";
	case CLI_ERR_PROTO:
		return "protocol error";
	case CLI_ERR_REMOVED:
		return "connection to the gateway lost";
	case CLI_ERR_TIMEOUT:
		return "timed out";
	case CLI_ERR_FINALIZED:
		return "module finalized";
	case CLI_ERR_GATEWAY:
		return "the gateway refused the request";
	case CLI_ERR_TOO_LARGE:
		return "request larger than the gateway accepts";
	case CLI_ERR_SYS:
		return "system error";
	default:
		return "unknown error";
	}
}

/* ---- time --------------------------------------------------------------------------- */

static uint64_t
now_ms(void)
{
	return proto_now_ns() / 1000000u;
}

static void
deadline_ts(uint64_t deadline, struct timespec *ts)
{
	ts->tv_sec = (time_t)(deadline / 1000u);
	ts->tv_nsec = (long)(deadline % 1000u) * 1000000L;
}

static int
ms_left(uint64_t deadline)
{
	uint64_t now = now_ms();

	if (now >= deadline) {
		return 0;
	}
	return deadline - now > INT32_MAX ? INT32_MAX : (int)(deadline - now);
}

static int
cond_init_monotonic(pthread_cond_t *cv)
{
	pthread_condattr_t a;
	int r;

	if (pthread_condattr_init(&a) != 0) {
		return CLI_ERR_SYS;
	}
	r = pthread_condattr_setclock(&a, CLOCK_MONOTONIC) == 0 && pthread_cond_init(cv, &a) == 0
	            ? 0
	            : CLI_ERR_SYS;
	pthread_condattr_destroy(&a);
	return r;
}

/* ---- target ------------------------------------------------------------------------- */

/* "host:port" or "[v6]:port"; cfg_client_load has validated the form already. */
static int
target_split(struct cli_target *t, const char *gw)
{
	const char *colon, *hs, *he;

	if (gw[0] == '[') {
		hs = gw + 1;
		if ((he = strchr(hs, ']')) == NULL || he[1] != ':') {
			return -1;
		}
		colon = he + 1;
	} else {
		hs = gw;
		if ((colon = strrchr(gw, ':')) == NULL) {
			return -1;
		}
		he = colon;
	}
	if (he == hs || (size_t)(he - hs) >= sizeof(t->host) ||
	    strlen(colon + 1) >= sizeof(t->port) || colon[1] == '\0') {
		return -1;
	}
	memcpy(t->host, hs, (size_t)(he - hs));
	t->host[he - hs] = '\0';
	memcpy(t->port, colon + 1, strlen(colon + 1) + 1);
	return 0;
}

/* The first OpenSSL error's reason, or `dflt`; clears the thread's error queue so that the
 * application never finds our errors in it. */
static const char *
ssl_reason(const char *dflt)
{
	unsigned long e = ERR_peek_last_error();
	const char *s = e != 0 ? ERR_reason_error_string(e) : NULL;

	ERR_clear_error();
	return s != NULL ? s : dflt;
}

/* Why `path` could not be loaded: the system's word when it cannot be read at all
 * (OpenSSL would say only "system lib"), else OpenSSL's. */
static const char *
file_reason(const char *path, const char *dflt)
{
	if (access(path, R_OK) != 0) {
		ERR_clear_error();
		return strerror(errno);
	}
	return ssl_reason(dflt);
}

int
cli_target_init(struct cli_target *t, const struct cfg_client *cfg, char *err, size_t errsz)
{
	struct in6_addr a6;
	struct in_addr a4;
	SSL_CTX *ctx = NULL;
	int r;

	memset(t, 0, sizeof(*t));
	t->cfg = cfg;
	if (target_split(t, cfg->gateway) != 0) {
		snprintf(err, errsz, "%s: gateway '%s' is not host:port", cfg->path, cfg->gateway);
		r = CLI_ERR_CONFIG;
		goto out;
	}
	t->name_is_ip = inet_pton(AF_INET, cfg->server_name, &a4) == 1 ||
	                inet_pton(AF_INET6, cfg->server_name, &a6) == 1;
	ERR_clear_error();
	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
		snprintf(err, errsz, "cannot create a TLS context: %s",
		         ssl_reason("OpenSSL error"));
		r = CLI_ERR_NOMEM;
		goto out;
	}
	/* TLS 1.3 only: the gateway speaks nothing older, and a downgrade must not be possible. */
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1 ||
	    SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1) {
		snprintf(err, errsz, "cannot require TLS 1.3: %s", ssl_reason("OpenSSL error"));
		r = CLI_ERR_CONFIG;
		goto out;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if (SSL_CTX_load_verify_locations(ctx, cfg->ca, NULL) != 1) {
		snprintf(err, errsz, "%s: cannot load the CA bundle '%s': %s", cfg->path, cfg->ca,
		         file_reason(cfg->ca, "no usable certificate"));
		r = CLI_ERR_CONFIG;
		goto out;
	}
	if (cfg->cert != NULL) {
		if (SSL_CTX_use_certificate_chain_file(ctx, cfg->cert) != 1) {
			snprintf(err, errsz, "%s: cannot load the client certificate '%s': %s",
			         cfg->path, cfg->cert,
			         file_reason(cfg->cert, "not a PEM certificate"));
			r = CLI_ERR_CONFIG;
			goto out;
		}
		if (SSL_CTX_use_PrivateKey_file(ctx, cfg->key, SSL_FILETYPE_PEM) != 1 ||
		    SSL_CTX_check_private_key(ctx) != 1) {
			snprintf(err, errsz, "%s: cannot load the client key '%s': %s", cfg->path,
			         cfg->key, file_reason(cfg->key, "not the certificate's key"));
			r = CLI_ERR_CONFIG;
			goto out;
		}
	}
	t->ctx = ctx;
	ctx = NULL; /* transferred */
	r = 0;
out:
	SSL_CTX_free(ctx);
	ERR_clear_error();
	return r;
}

void
cli_target_fini(struct cli_target *t)
{
	SSL_CTX_free(t->ctx);
	memset(t, 0, sizeof(*t));
}

/* ---- connection lifetime ------------------------------------------------------------ */

static void
out_free(struct cli_out *o)
{
	/* A request frame may hold a PIN or key material. */
	OPENSSL_cleanse(o->data, o->len);
	free(o->data);
	free(o);
}

static void
waiter_free(struct cli_waiter *w)
{
	if (w->body != NULL) {
		OPENSSL_clear_free(w->body, w->body_len);
	}
	pthread_cond_destroy(&w->cv);
	free(w);
}

/* The caller behind waiter w has every reply it waits for; _inlock. */
static int
waiter_done(const struct cli_waiter *w)
{
	return w->done && (w->pre == NULL || w->pre->done);
}

/* Wakes the thread waiting for w: its own, or its owner's; _inlock. */
static void
waiter_signal(struct cli_waiter *w)
{
	pthread_cond_signal(w->owner != NULL ? &w->owner->cv : &w->cv);
}

static void
waiter_unlink_inlock(struct cli_conn *c, struct cli_waiter *w)
{
	if (w->prev != NULL) {
		w->prev->next = w->next;
	} else {
		c->waiters = w->next;
	}
	if (w->next != NULL) {
		w->next->prev = w->prev;
	}
	w->next = w->prev = NULL;
	if (c->inflight > 0) {
		c->inflight--;
	}
}

/* Fails the connection: every waiter completes with `reason`, nothing more is written (see
 * io_write), and later calls fail the same way. The first reason sticks. Any thread may
 * call it; the queued frames stay until out_drop_inlock. */
static void
conn_fail_inlock(struct cli_conn *c, int reason)
{
	struct cli_waiter *w;

	if (c->state == CONN_UP || c->state == CONN_CONNECTING) {
		c->state = CONN_DEAD;
		c->reason = reason;
	}
	while ((w = c->waiters) != NULL) {
		waiter_unlink_inlock(c, w);
		if (w->abandoned) {
			waiter_free(w);
			continue;
		}
		w->done = 1;
		w->err = c->reason;
		waiter_signal(w);
	}
	c->inflight = 0;
	pthread_cond_broadcast(&c->cv);
}

/* Frees the queued request frames. Only the writer may: the I/O thread, the caller
 * holding `drive` in threadless mode, or cli_conn_close once neither can be writing.
 * io_write uses the frame at the head outside the lock, so freeing the queue from any
 * other thread (C_Finalize's, a reconnecting caller's) would free memory SSL_write is
 * reading, and io_write would then free it again. */
static void
out_drop_inlock(struct cli_conn *c)
{
	struct cli_out *o;

	while ((o = c->out_head) != NULL) {
		c->out_head = o->next;
		out_free(o);
	}
	c->out_tail = NULL;
}

/* Callers hold c->lock, or are cli_conn_close before it closes the eventfd. */
static void
conn_wake(struct cli_conn *c)
{
	uint64_t one = 1;
	ssize_t n;

	if (c->evfd < 0) {
		return;
	}
	/* A full eventfd counter (EAGAIN) is already a pending wake-up. */
	do {
		n = write(c->evfd, &one, sizeof(one));
	} while (n < 0 && errno == EINTR);
}

void
cli_conn_ref(struct cli_conn *c)
{
	pthread_mutex_lock(&c->lock);
	c->refs++;
	pthread_mutex_unlock(&c->lock);
}

static void
conn_free(struct cli_conn *c)
{
	pthread_mutex_destroy(&c->lock);
	pthread_mutex_destroy(&c->drive);
	pthread_cond_destroy(&c->cv);
	pthread_cond_destroy(&c->io_cv);
	cli_sessions_free(&c->sessions);
	if (c->rbuf != NULL) {
		OPENSSL_clear_free(c->rbuf, c->rcap);
	}
	OPENSSL_cleanse(&c->welcome, sizeof(c->welcome));
	free(c);
}

void
cli_conn_unref(struct cli_conn *c)
{
	unsigned refs;

	if (c == NULL) {
		return;
	}
	pthread_mutex_lock(&c->lock);
	refs = --c->refs;
	pthread_mutex_unlock(&c->lock);
	if (refs == 0) {
		conn_free(c);
	}
}

void
cli_conn_close(struct cli_conn *c, int reason)
{
	int was_up, evfd;

	pthread_mutex_lock(&c->lock);
	was_up = c->state == CONN_UP;
	conn_fail_inlock(c, reason);
	c->state = CONN_CLOSED;
	c->stop = 1;
	pthread_mutex_unlock(&c->lock);
	if (c->io_started) {
		/* The I/O thread parks on io_cv or drives (in poll: the eventfd); a caller that
		 * drives is woken by the eventfd too, sees its waiter failed and lets go of
		 * `drive`, which the I/O thread takes to send close_notify. */
		pthread_mutex_lock(&c->lock);
		pthread_cond_signal(&c->io_cv);
		conn_wake(c);
		pthread_mutex_unlock(&c->lock);
		pthread_join(c->io, NULL);
		c->io_started = 0;
		/* No caller is in io_step any more (they check the state, under `drive`). */
		pthread_mutex_lock(&c->drive);
		pthread_mutex_unlock(&c->drive);
	} else if (c->threadless) {
		/* A caller driving the connection may be in poll() until its call's deadline:
		 * the wake-up sends it back to drive_until's loop, which sees its waiter failed
		 * and lets go of `drive`. */
		conn_wake(c);
		pthread_mutex_lock(&c->drive);
		if (was_up && c->ssl != NULL) {
			/* No I/O thread to send close_notify: one attempt, never waits. */
			ERR_clear_error();
			(void)SSL_shutdown(c->ssl);
			ERR_clear_error();
		}
		pthread_mutex_unlock(&c->drive);
	}
	/* Nobody writes any more; and the eventfd is taken under the lock that conn_wake's
	 * callers hold. */
	pthread_mutex_lock(&c->lock);
	out_drop_inlock(c);
	evfd = c->evfd;
	c->evfd = -1;
	pthread_mutex_unlock(&c->lock);
	/* The I/O thread has sent close_notify if the link was healthy; freeing the SSL
	 * object sends nothing. */
	SSL_free(c->ssl);
	c->ssl = NULL;
	if (c->fd >= 0) {
		close(c->fd);
		c->fd = -1;
	}
	if (evfd >= 0) {
		close(evfd);
	}
	ERR_clear_error();
}

void
cli_conn_abandon(struct cli_conn *c)
{
	/* In a child after fork(): the SSL object shares its session keys and sequence
	 * numbers with the parent's live connection, and the I/O thread was not copied.
	 * Freeing or shutting down anything here could corrupt the parent's stream, so the
	 * memory is left as it is (descriptors were opened with CLOEXEC). */
	(void)c;
}

int
cli_conn_alive(struct cli_conn *c)
{
	int up;

	pthread_mutex_lock(&c->lock);
	up = c->state == CONN_UP;
	pthread_mutex_unlock(&c->lock);
	return up;
}

size_t
cli_conn_max_frame(const struct cli_conn *c)
{
	return c->max_frame;
}

int
cli_conn_session_has(struct cli_conn *c, CK_SESSION_HANDLE h)
{
	int r;

	pthread_mutex_lock(&c->lock);
	r = cli_sessions_has(&c->sessions, h);
	pthread_mutex_unlock(&c->lock);
	return r;
}

int
cli_conn_session_add(struct cli_conn *c, CK_SESSION_HANDLE h)
{
	int r;

	pthread_mutex_lock(&c->lock);
	r = cli_sessions_add(&c->sessions, h);
	pthread_mutex_unlock(&c->lock);
	return r;
}

void
cli_conn_session_del(struct cli_conn *c, CK_SESSION_HANDLE h)
{
	pthread_mutex_lock(&c->lock);
	cli_sessions_del(&c->sessions, h);
	pthread_mutex_unlock(&c->lock);
}

void
cli_conn_session_del_slot(struct cli_conn *c, CK_SLOT_ID slot)
{
	pthread_mutex_lock(&c->lock);
	cli_sessions_del_slot(&c->sessions, slot);
	pthread_mutex_unlock(&c->lock);
}

int
cli_conn_defer(struct cli_conn *c, CK_SESSION_HANDLE h, struct cli_deferred *d)
{
	int r = 0;

	if (!c->defer_init || c->max_inflight < 2) {
		return 0;
	}
	pthread_mutex_lock(&c->lock);
	r = cli_sessions_defer(&c->sessions, h, d);
	pthread_mutex_unlock(&c->lock);
	return r;
}

struct cli_deferred *
cli_conn_deferred_take(struct cli_conn *c, CK_SESSION_HANDLE h)
{
	struct cli_deferred *d;

	pthread_mutex_lock(&c->lock);
	d = cli_sessions_deferred_take(&c->sessions, h);
	pthread_mutex_unlock(&c->lock);
	return d;
}

void
cli_conn_init_known(struct cli_conn *c, const struct cli_init_key *k, int ok)
{
	pthread_mutex_lock(&c->lock);
	cli_sessions_known(&c->sessions, k, ok);
	pthread_mutex_unlock(&c->lock);
}

void
cli_conn_init_forget(struct cli_conn *c)
{
	pthread_mutex_lock(&c->lock);
	cli_sessions_forget(&c->sessions);
	pthread_mutex_unlock(&c->lock);
}

/* ---- read buffer and frames (I/O thread) -------------------------------------------- */

static int
rbuf_reserve(struct cli_conn *c, size_t n)
{
	uint8_t *nb;
	size_t cap;

	if (c->rcap - c->rlen >= n) {
		return 0;
	}
	cap = c->rlen + n;
	if ((nb = malloc(cap)) == NULL) {
		return CLI_ERR_NOMEM;
	}
	/* Not realloc: the old block may hold reply bytes (plaintext, key material). */
	if (c->rlen != 0) {
		memcpy(nb, c->rbuf, c->rlen);
	}
	if (c->rbuf != NULL) {
		OPENSSL_clear_free(c->rbuf, c->rcap);
	}
	c->rbuf = nb;
	c->rcap = cap;
	return 0;
}

/* 1 when a whole frame starts the read buffer (header in *h), 0 when more bytes are
 * needed, CLI_ERR_PROTO when the header is not ours or announces too much. */
static int
frame_peek(struct cli_conn *c, size_t max_frame, struct proto_hdr *h)
{
	if (c->rlen < PROTO_HDR_BYTES) {
		return 0;
	}
	if (proto_hdr_decode(c->rbuf, c->rlen, max_frame, h) != 0) {
		return CLI_ERR_PROTO;
	}
	return c->rlen - PROTO_HDR_BYTES >= h->body_len ? 1 : 0;
}

static void
frame_consume(struct cli_conn *c, size_t n)
{
	memmove(c->rbuf, c->rbuf + n, c->rlen - n);
	OPENSSL_cleanse(c->rbuf + c->rlen - n, n);
	c->rlen -= n;
}

/* Appends a frame to the write queue. `data` is taken over (wiped and freed later). */
static int
out_queue_inlock(struct cli_conn *c, uint8_t *data, size_t len)
{
	struct cli_out *o;

	if ((o = calloc(1, sizeof(*o))) == NULL) {
		return CLI_ERR_NOMEM;
	}
	o->data = data;
	o->len = len;
	if (c->out_tail != NULL) {
		c->out_tail->next = o;
	} else {
		c->out_head = o;
	}
	c->out_tail = o;
	return 0;
}

/* ---- the socket BIO: no SIGPIPE ------------------------------------------------------ */

/*
 * OpenSSL's socket BIO writes with write(2): on a connection the gateway reset, that raises
 * SIGPIPE in the writing thread, and callers write (they drive). This one sends with
 * MSG_NOSIGNAL and is otherwise the socket BIO: nonblocking retries, EOF, the descriptor.
 * Its data is the descriptor + 1 (0: none); an EOF seen sets BIO_FLAGS_IN_EOF, as there.
 */
#define NOSIG_EOF BIO_FLAGS_IN_EOF

static int
nosig_fd(BIO *b)
{
	return (int)(intptr_t)BIO_get_data(b) - 1;
}

static int
nosig_write(BIO *b, const char *data, int len)
{
	ssize_t n;

	BIO_clear_retry_flags(b);
	do {
		n = send(nosig_fd(b), data, (size_t)len, MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
		BIO_set_retry_write(b);
	}
	return (int)n;
}

static int
nosig_read(BIO *b, char *out, int len)
{
	ssize_t n;

	BIO_clear_retry_flags(b);
	do {
		n = recv(nosig_fd(b), out, (size_t)len, 0);
	} while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
		BIO_set_retry_read(b);
	} else if (n == 0) {
		BIO_set_flags(b, NOSIG_EOF);
	}
	return (int)n;
}

static long
nosig_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	(void)num;
	switch (cmd) {
	case BIO_C_GET_FD:
		if (ptr != NULL) {
			*(int *)ptr = nosig_fd(b);
		}
		return nosig_fd(b);
	case BIO_CTRL_EOF:
		return BIO_test_flags(b, NOSIG_EOF) != 0;
	case BIO_CTRL_FLUSH:
		return 1;
	default:
		return 0;
	}
}

static BIO_METHOD *nosig_method;
static pthread_once_t nosig_once = PTHREAD_ONCE_INIT;

static void
nosig_method_make(void)
{
	BIO_METHOD *m = BIO_meth_new(
	        BIO_get_new_index() | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR, "hsmgate socket");

	if (m != NULL &&
	    (BIO_meth_set_write(m, nosig_write) != 1 || BIO_meth_set_read(m, nosig_read) != 1 ||
	     BIO_meth_set_ctrl(m, nosig_ctrl) != 1)) {
		BIO_meth_free(m);
		m = NULL;
	}
	nosig_method = m; /* kept for the process: the module may be loaded again */
}

BIO *
cli_nosig_bio_new(int fd)
{
	BIO *b;

	(void)pthread_once(&nosig_once, nosig_method_make);
	if (nosig_method == NULL || (b = BIO_new(nosig_method)) == NULL) {
		return NULL;
	}
	BIO_set_data(b, (void *)(intptr_t)(fd + 1));
	BIO_set_init(b, 1);
	return b;
}

/* ---- the handshake (I/O thread, before reporting) ----------------------------------- */

static int hs_fail(struct cli_conn *c, int err, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static int
hs_fail(struct cli_conn *c, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->hs_msg, sizeof(c->hs_msg), fmt, ap);
	va_end(ap);
	ERR_clear_error();
	return err;
}

/* Waits for `events` on the socket until the deadline: 0, or CLI_ERR_CONNECT. */
static int
hs_wait(struct cli_conn *c, short events, uint64_t deadline, const char *what)
{
	struct pollfd p = {.fd = c->fd, .events = events};
	int n, left;

	for (;;) {
		if ((left = ms_left(deadline)) == 0) {
			return hs_fail(c, CLI_ERR_CONNECT,
			               "cannot connect to gateway %s: timed out %s "
			               "(connect_timeout_ms %u)",
			               c->peer, what, c->target->cfg->connect_timeout_ms);
		}
		n = poll(&p, 1, left);
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n < 0) {
			return hs_fail(c, CLI_ERR_CONNECT, "cannot connect to gateway %s: poll: %s",
			               c->peer, strerror(errno));
		}
		if (n > 0) {
			return 0;
		}
	}
}

static int
hs_tcp(struct cli_conn *c, uint64_t deadline)
{
	struct addrinfo hints, *res = NULL, *ai;
	char why[256] = "no address";
	socklen_t sl;
	int fd = -1, one = 1, soerr, r, gai;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	if ((gai = getaddrinfo(c->target->host, c->target->port, &hints, &res)) != 0) {
		return hs_fail(c, CLI_ERR_CONNECT, "cannot connect to gateway %s: %s", c->peer,
		               gai_strerror(gai));
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
		            ai->ai_protocol);
		if (fd < 0) {
			snprintf(why, sizeof(why), "socket: %s", strerror(errno));
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
			snprintf(why, sizeof(why), "%s", strerror(errno));
			close(fd);
			fd = -1;
			continue;
		}
		c->fd = fd;
		if ((r = hs_wait(c, POLLOUT, deadline, "connecting")) != 0) {
			c->fd = -1;
			close(fd);
			fd = -1;
			goto out;
		}
		soerr = 0;
		sl = sizeof(soerr);
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr != 0) {
			snprintf(why, sizeof(why), "%s", strerror(soerr != 0 ? soerr : errno));
			c->fd = -1;
			close(fd);
			fd = -1;
			continue;
		}
		/* Requests are small frames written whole: do not let Nagle hold them back. */
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		break;
	}
	if (fd < 0) {
		r = hs_fail(c, CLI_ERR_CONNECT, "cannot connect to gateway %s: %s", c->peer, why);
		goto out;
	}
	r = 0;
out:
	freeaddrinfo(res);
	return r;
}

/* After an SSL call failed during the handshake phase: 1 to retry once the socket is
 * ready, or an error with c->hs_msg set. Alerts that mean "your credentials" are
 * authentication refusals; a certificate of the gateway that does not verify is a trust
 * failure (also CLI_ERR_AUTH: retrying cannot help); everything else is the link. */
static int
hs_ssl_retry(struct cli_conn *c, int ret, uint64_t deadline, const char *what)
{
	unsigned long e;
	long vr;
	int se = SSL_get_error(c->ssl, ret), r;

	switch (se) {
	case SSL_ERROR_WANT_READ:
		return (r = hs_wait(c, POLLIN, deadline, what)) != 0 ? r : 1;
	case SSL_ERROR_WANT_WRITE:
		return (r = hs_wait(c, POLLOUT, deadline, what)) != 0 ? r : 1;
	case SSL_ERROR_SSL:
		if ((vr = SSL_get_verify_result(c->ssl)) != X509_V_OK) {
			return hs_fail(c, CLI_ERR_AUTH,
			               "cannot verify gateway %s: %s (server_name '%s', CA '%s')",
			               c->peer, X509_verify_cert_error_string(vr),
			               c->target->cfg->server_name, c->target->cfg->ca);
		}
		e = ERR_peek_last_error();
		switch (ERR_GET_LIB(e) == ERR_LIB_SSL ? ERR_GET_REASON(e) : 0) {
		case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
		case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
		case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
		case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
		case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
		case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
		case SSL_R_TLSV1_ALERT_ACCESS_DENIED:
		case SSL_R_TLSV1_ALERT_DECRYPT_ERROR:
		case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
			return hs_fail(c, CLI_ERR_AUTH,
			               "gateway %s refused authentication: TLS alert: %s%s",
			               c->peer, ssl_reason("refused"),
			               c->target->cfg->cert == NULL
			                       ? " (no client certificate configured)"
			                       : "");
		default:
			return hs_fail(c, CLI_ERR_CONNECT, "TLS with gateway %s failed %s: %s",
			               c->peer, what, ssl_reason("TLS error"));
		}
	case SSL_ERROR_ZERO_RETURN:
	case SSL_ERROR_SYSCALL:
		return hs_fail(c, CLI_ERR_CONNECT, "gateway %s closed the connection %s%s%s",
		               c->peer, what, errno != 0 && se == SSL_ERROR_SYSCALL ? ": " : "",
		               errno != 0 && se == SSL_ERROR_SYSCALL ? strerror(errno) : "");
	default:
		return hs_fail(c, CLI_ERR_CONNECT, "TLS with gateway %s failed %s (error %d)",
		               c->peer, what, se);
	}
}

static int
hs_write_all(struct cli_conn *c, const uint8_t *p, size_t len, uint64_t deadline)
{
	int n, r;

	while (len > 0) {
		ERR_clear_error();
		errno = 0;
		n = SSL_write(c->ssl, p, len > INT32_MAX ? INT32_MAX : (int)len);
		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if ((r = hs_ssl_retry(c, n, deadline, "sending HELLO")) < 0) {
			return r;
		}
	}
	return 0;
}

/* Reads one whole frame into the read buffer (it stays there; the caller consumes it). */
static int
hs_read_frame(struct cli_conn *c, struct proto_hdr *h, uint64_t deadline)
{
	int n, r;

	for (;;) {
		if ((r = frame_peek(c, PROTO_MAX_FRAME_DEFAULT, h)) < 0) {
			return hs_fail(
			        c, CLI_ERR_PROTO,
			        "gateway %s answered the HELLO with something that is not an "
			        "hsmgate frame",
			        c->peer);
		}
		if (r == 1) {
			return 0;
		}
		if (rbuf_reserve(c, READ_CHUNK) != 0) {
			return hs_fail(c, CLI_ERR_NOMEM, "out of memory");
		}
		ERR_clear_error();
		errno = 0;
		n = SSL_read(c->ssl, c->rbuf + c->rlen, (int)(c->rcap - c->rlen));
		if (n > 0) {
			c->rlen += (size_t)n;
			continue;
		}
		if ((r = hs_ssl_retry(c, n, deadline, "waiting for WELCOME")) < 0) {
			return r;
		}
	}
}

static int
hs_hello(struct cli_conn *c, uint64_t deadline)
{
	const struct cfg_client *cfg = c->target->cfg;
	struct proto_hello hello;
	struct proto_buf b;
	struct proto_cur cur;
	struct proto_hdr h;
	char msg[MSG_MAX];
	uint32_t code;
	int r;

	memset(&hello, 0, sizeof(hello));
	proto_buf_init(&b);
	hello.min_version = PROTO_VERSION;
	hello.max_version = PROTO_VERSION;
	snprintf(hello.client_name, sizeof(hello.client_name), "%s", CLI_NAME);
	snprintf(hello.client_version, sizeof(hello.client_version), "%s", CLI_VERSION_STRING);
	if (cfg->api_key != NULL) {
		hello.cred = PROTO_CRED_APIKEY;
		if (strlen(cfg->api_key) >= sizeof(hello.api_key)) {
			r = hs_fail(c, CLI_ERR_CONFIG, "%s: the API key is too long", cfg->path);
			goto out;
		}
		memcpy(hello.api_key, cfg->api_key, strlen(cfg->api_key) + 1);
	} else {
		hello.cred = PROTO_CRED_CERT;
	}
	if (proto_frame_begin(&b, PROTO_MSG_HELLO, 0, 0, 0) != 0 ||
	    proto_hello_put(&b, &hello) != 0 || proto_frame_finish(&b) != 0) {
		r = hs_fail(c, CLI_ERR_NOMEM, "cannot encode HELLO: %s", proto_strerror(b.failed));
		goto out;
	}
	OPENSSL_cleanse(&hello, sizeof(hello)); /* the API key: last use was the encoder */
	if ((r = hs_write_all(c, b.data, b.len, deadline)) != 0 ||
	    (r = hs_read_frame(c, &h, deadline)) != 0) {
		goto out;
	}
	proto_cur_init(&cur, c->rbuf + PROTO_HDR_BYTES, h.body_len);
	switch (h.type) {
	case PROTO_MSG_WELCOME:
		if (proto_welcome_get(&cur, &c->welcome) != 0 || proto_cur_end(&cur) != 0) {
			r = hs_fail(c, CLI_ERR_PROTO, "gateway %s sent a malformed WELCOME",
			            c->peer);
			goto out;
		}
		break;
	case PROTO_MSG_ERROR:
		if (proto_gwerror_get(&cur, &code, msg, sizeof(msg)) != 0) {
			r = hs_fail(c, CLI_ERR_PROTO, "gateway %s sent a malformed ERROR", c->peer);
			goto out;
		}
		if (code == PROTO_GWERR_AUTH) {
			r = hs_fail(c, CLI_ERR_AUTH, "gateway %s refused authentication: %s",
			            c->peer, msg);
		} else {
			r = hs_fail(c, CLI_ERR_CONNECT,
			            "gateway %s refused the connection (error %u): %s", c->peer,
			            code, msg);
		}
		goto out;
	default:
		r = hs_fail(c, CLI_ERR_PROTO, "gateway %s answered the HELLO with message type %u",
		            c->peer, h.type);
		goto out;
	}
	frame_consume(c, PROTO_HDR_BYTES + h.body_len);
	c->max_frame = c->welcome.max_frame;
	c->max_inflight = c->welcome.max_inflight;
	r = 0;
out:
	OPENSSL_cleanse(&hello, sizeof(hello));
	proto_buf_free(&b);
	return r;
}

static int
conn_handshake(struct cli_conn *c)
{
	const struct cli_target *t = c->target;
	const char *name = t->cfg->server_name;
	uint64_t deadline = now_ms() + t->cfg->connect_timeout_ms;
	BIO *bio;
	int n, r;

	if ((r = hs_tcp(c, deadline)) != 0) {
		return r;
	}
	ERR_clear_error();
	if ((c->ssl = SSL_new(t->ctx)) == NULL || (bio = cli_nosig_bio_new(c->fd)) == NULL) {
		return hs_fail(c, CLI_ERR_NOMEM, "cannot create a TLS connection: %s",
		               ssl_reason("OpenSSL error"));
	}
	SSL_set_bio(c->ssl, bio, bio); /* the SSL owns it now */
	/* Verify the name the configuration gives (default: the host of `gateway`): a DNS
	 * name as a DNS SAN, an address as an IP SAN (RFC 6125 §6.2; SNI carries no IPs). */
	if (t->name_is_ip) {
		r = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), name) == 1;
	} else {
		r = SSL_set_tlsext_host_name(c->ssl, name) == 1 && SSL_set1_host(c->ssl, name) == 1;
	}
	if (!r) {
		return hs_fail(c, CLI_ERR_CONFIG, "%s: cannot use server_name '%s': %s",
		               t->cfg->path, name, ssl_reason("invalid"));
	}
	SSL_set_mode(c->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	/* One read(2) takes whatever the socket holds, instead of a record header and then its
	 * body; io_read drains OpenSSL to WANT_READ and io_step checks SSL_has_pending before it
	 * polls, so nothing read ahead is left waiting. */
	SSL_set_read_ahead(c->ssl, 1);
	SSL_set_connect_state(c->ssl);
	for (;;) {
		ERR_clear_error();
		errno = 0;
		if ((n = SSL_connect(c->ssl)) == 1) {
			break;
		}
		if ((r = hs_ssl_retry(c, n, deadline, "during the TLS handshake")) < 0) {
			return r;
		}
	}
	return hs_hello(c, deadline);
}

/* ---- the I/O thread ----------------------------------------------------------------- */

static void
io_log_lost(struct cli_conn *c, const char *why)
{
	cli_log("lost the connection to gateway %s: %s", c->peer, why);
}

/* Hands one complete frame at the start of the read buffer to its waiter. */
static int
io_dispatch(struct cli_conn *c, const struct proto_hdr *h)
{
	const uint8_t *body = c->rbuf + PROTO_HDR_BYTES;
	struct cli_waiter *w;
	struct proto_cur cur;
	char msg[MSG_MAX];
	uint32_t code;
	uint8_t *copy;

	switch (h->type) {
	case PROTO_MSG_PONG:
		c->ping_sent_ms = 0;
		return 0;
	case PROTO_MSG_ERROR:
		if (h->req_id != 0) {
			break;
		}
		/* Request id 0: the gateway closes the whole connection. */
		proto_cur_init(&cur, body, h->body_len);
		if (proto_gwerror_get(&cur, &code, msg, sizeof(msg)) != 0) {
			snprintf(msg, sizeof(msg), "malformed ERROR frame");
		}
		io_log_lost(c, msg);
		return CLI_ERR_REMOVED;
	case PROTO_MSG_REPLY:
		break;
	default:
		io_log_lost(c, "unexpected message type from the gateway");
		return CLI_ERR_REMOVED;
	}
	pthread_mutex_lock(&c->lock);
	for (w = c->waiters; w != NULL && w->req_id != h->req_id; w = w->next) {
	}
	if (w == NULL) {
		/* Not ours (any more): ignore rather than fail every other call. */
		pthread_mutex_unlock(&c->lock);
		return 0;
	}
	waiter_unlink_inlock(c, w);
	pthread_cond_signal(&c->cv); /* a slot came free */
	if (w->abandoned) {
		pthread_mutex_unlock(&c->lock);
		waiter_free(w);
		return 0;
	}
	if ((copy = malloc(h->body_len == 0 ? 1 : h->body_len)) == NULL) {
		w->err = CLI_ERR_NOMEM;
	} else {
		memcpy(copy, body, h->body_len);
		w->body = copy;
		w->body_len = h->body_len;
		w->type = h->type;
	}
	w->done = 1;
	waiter_signal(w);
	pthread_mutex_unlock(&c->lock);
	return 0;
}

/* Reads until OpenSSL has nothing more; dispatches every complete frame. */
static int
io_read(struct cli_conn *c)
{
	struct proto_hdr h;
	int n, r, se;

	for (;;) {
		while ((r = frame_peek(c, c->max_frame, &h)) == 1) {
			if ((r = io_dispatch(c, &h)) != 0) {
				return r;
			}
			frame_consume(c, PROTO_HDR_BYTES + h.body_len);
		}
		if (r < 0) {
			io_log_lost(
			        c,
			        "the gateway sent a frame that is not valid (or over max_frame)");
			return CLI_ERR_REMOVED;
		}
		if (rbuf_reserve(c, READ_CHUNK) != 0) {
			io_log_lost(c, "out of memory");
			return CLI_ERR_REMOVED;
		}
		ERR_clear_error();
		errno = 0;
		n = SSL_read(c->ssl, c->rbuf + c->rlen, (int)(c->rcap - c->rlen));
		if (n > 0) {
			c->rlen += (size_t)n;
			c->last_io_ms = now_ms();
			continue;
		}
		switch ((se = SSL_get_error(c->ssl, n))) {
		case SSL_ERROR_WANT_READ:
			return 0;
		case SSL_ERROR_WANT_WRITE:
			c->read_wants_write = 1;
			return 0;
		case SSL_ERROR_ZERO_RETURN:
			io_log_lost(c, "the gateway closed the connection");
			return CLI_ERR_REMOVED;
		case SSL_ERROR_SYSCALL:
			io_log_lost(c, errno != 0 ? strerror(errno)
			                          : "the gateway closed the connection");
			return CLI_ERR_REMOVED;
		default:
			io_log_lost(c, ssl_reason("TLS error"));
			return CLI_ERR_REMOVED;
		}
	}
}

/*
 * Merges the small frames queued behind an unstarted head into it, up to WRITE_BATCH bytes:
 * one SSL_write, one TLS record and one write(2) for the calls of many threads, and fewer
 * records for the gateway to open. Only the writer calls it (it owns the head); the merged
 * frames are wiped like any other.
 */
static void
out_coalesce_inlock(struct cli_conn *c)
{
	struct cli_out *o = c->out_head, *n, *next;
	size_t total;
	uint8_t *buf;

	if (o == NULL || o->off != 0 || o->next == NULL || o->len >= WRITE_BATCH) {
		return;
	}
	total = o->len;
	for (n = o->next; n != NULL && n->len <= WRITE_BATCH - total; n = n->next) {
		total += n->len;
	}
	if (total == o->len || (buf = malloc(total)) == NULL) {
		return; /* nothing to merge, or no memory: written one by one */
	}
	memcpy(buf, o->data, o->len);
	OPENSSL_cleanse(o->data, o->len);
	free(o->data);
	o->data = buf;
	while ((n = o->next) != NULL && o->len + n->len <= total) {
		next = n->next;
		memcpy(buf + o->len, n->data, n->len);
		o->len += n->len;
		out_free(n);
		o->next = next;
	}
	if (o->next == NULL) {
		c->out_tail = o;
	}
}

/* Writes queued frames until the queue is empty or the socket is full. */
static int
io_write(struct cli_conn *c)
{
	struct cli_out *o;
	int n;

	c->write_wants_read = 0;
	for (;;) {
		/* A failed or closing connection writes nothing more: its callers have been
		 * answered, and the frames are freed by the writer or cli_conn_close. */
		pthread_mutex_lock(&c->lock);
		if (c->state == CONN_UP) {
			out_coalesce_inlock(c);
			o = c->out_head;
		} else {
			o = NULL;
		}
		pthread_mutex_unlock(&c->lock);
		if (o == NULL) {
			return 0;
		}
		ERR_clear_error();
		errno = 0;
		n = SSL_write(c->ssl, o->data + o->off,
		              o->len - o->off > INT32_MAX ? INT32_MAX : (int)(o->len - o->off));
		if (n > 0) {
			c->last_io_ms = now_ms();
			o->off += (size_t)n;
			if (o->off == o->len) {
				pthread_mutex_lock(&c->lock);
				c->out_head = o->next;
				if (c->out_head == NULL) {
					c->out_tail = NULL;
				}
				pthread_mutex_unlock(&c->lock);
				out_free(o);
			}
			continue;
		}
		switch (SSL_get_error(c->ssl, n)) {
		case SSL_ERROR_WANT_WRITE:
			c->write_blocked = 1;
			return 0;
		case SSL_ERROR_WANT_READ:
			/* Retried after the next read. */
			c->write_wants_read = 1;
			return 0;
		case SSL_ERROR_SYSCALL:
			io_log_lost(c, errno != 0 ? strerror(errno) : "write failed");
			return CLI_ERR_REMOVED;
		default:
			io_log_lost(c, ssl_reason("TLS error"));
			return CLI_ERR_REMOVED;
		}
	}
}

/* Sends a PING when idle, and gives up on a gateway that does not answer one. */
static int
io_ping(struct cli_conn *c, int *timeout)
{
	struct proto_buf b;
	uint64_t now = now_ms(), due;
	int r;

	if (c->ping_sent_ms != 0) {
		if (now - c->ping_sent_ms >= c->timeout_ms) {
			io_log_lost(c, "no answer to PING");
			return CLI_ERR_REMOVED;
		}
		*timeout = (int)(c->ping_sent_ms + c->timeout_ms - now);
		return 0;
	}
	due = c->last_io_ms + PING_IDLE_MS;
	if (now < due) {
		*timeout = (int)(due - now);
		return 0;
	}
	proto_buf_init(&b);
	if (proto_frame_begin(&b, PROTO_MSG_PING, 0, 0, 0) != 0 || proto_frame_finish(&b) != 0) {
		proto_buf_free(&b);
		*timeout = PING_IDLE_MS;
		return 0;
	}
	pthread_mutex_lock(&c->lock);
	r = out_queue_inlock(c, b.data, b.len);
	pthread_mutex_unlock(&c->lock);
	if (r != 0) {
		proto_buf_free(&b);
	}
	/* else: transferred */
	c->ping_sent_ms = now;
	*timeout = (int)c->timeout_ms;
	return 0;
}

/* poll(2) on p[2] (the socket, the eventfd). A lone caller waiting since `since` (ns; 0:
 * not one) first polls without blocking until the busy-poll budget from then is used. */
static int
io_poll(struct cli_conn *c, struct pollfd *p, int timeout, uint64_t since)
{
	uint64_t budget = proto_spin_budget(&c->spin);
	int n;

	if (since != 0 && budget > 0 && timeout != 0) {
		while (proto_now_ns() - since < budget) {
			if ((n = poll(p, 2, 0)) != 0) {
				return n;
			}
			(void)sched_yield();
		}
	}
	return poll(p, 2, timeout);
}

/* One turn of the driver: write what is queued, wait for the socket or the eventfd, read.
 * since: when a lone caller driving for its reply began to wait (io_poll), or 0. */
static int
io_step(struct cli_conn *c, int cap, uint64_t since)
{
	struct pollfd p[2];
	uint64_t drain;
	int r, timeout = cap, n;

	/* Keep-alive needs a clock that runs between calls: the I/O thread's. A threadless
	 * connection learns that the link is gone from its next call instead. */
	if (!c->threadless && (r = io_ping(c, &timeout)) != 0) {
		return r;
	}
	if (cap >= 0 && (timeout < 0 || timeout > cap)) {
		timeout = cap;
	}
	if (!c->write_blocked && (r = io_write(c)) != 0) {
		return r;
	}
	if (SSL_has_pending(c->ssl)) {
		return io_read(c); /* read ahead already: no poll needed */
	}
	pthread_mutex_lock(&c->lock);
	if (c->state == CONN_UP && c->out_head != NULL && !c->write_blocked &&
	    !c->write_wants_read) {
		/* queued while we wrote: write it before sleeping */
		pthread_mutex_unlock(&c->lock);
		return 0;
	}
	c->polling = 1;
	pthread_mutex_unlock(&c->lock);
	p[0].fd = c->fd;
	p[0].events = POLLIN | (c->write_blocked || c->read_wants_write ? POLLOUT : 0);
	p[0].revents = 0;
	p[1].fd = c->evfd;
	p[1].events = POLLIN;
	p[1].revents = 0;
	n = io_poll(c, p, timeout, since);
	pthread_mutex_lock(&c->lock);
	c->polling = 0;
	c->wake_pending = 0;
	pthread_mutex_unlock(&c->lock);
	if (n < 0 && errno != EINTR) {
		io_log_lost(c, strerror(errno));
		return CLI_ERR_REMOVED;
	}
	if (n <= 0) {
		return 0;
	}
	if (p[1].revents & POLLIN) {
		(void)!read(c->evfd, &drain, sizeof(drain));
	}
	if (p[0].revents & POLLOUT) {
		c->write_blocked = 0;
		c->read_wants_write = 0;
	}
	if (p[0].revents & (POLLIN | POLLHUP | POLLERR | POLLOUT)) {
		return io_read(c);
	}
	return 0;
}

/* ---- who drives ---------------------------------------------------------------------- */

/* The waiter of a thread other than self's (not abandoned) that still waits for a reply;
 * _inlock. A deferred init's waiter stands for its owner's thread. */
static struct cli_waiter *
live_waiter_inlock(struct cli_conn *c, const struct cli_waiter *self)
{
	struct cli_waiter *x, *t;

	for (x = c->waiters; x != NULL; x = x->next) {
		t = x->owner != NULL ? x->owner : x;
		if (t != self && !x->abandoned && !x->done) {
			return t;
		}
	}
	return NULL;
}

/*
 * The driver lets go. With callers still waiting, the role goes on (`driving` stays set for
 * the taker): from a caller to the I/O thread (io_turn), which then serves the concurrent
 * calls as one reader; from the I/O thread, or without one, to a waiting caller (w->turn).
 * Otherwise nobody has it.
 */
static void
drive_pass_inlock(struct cli_conn *c, const struct cli_waiter *self, int to_io)
{
	struct cli_waiter *x = live_waiter_inlock(c, self);

	if (x == NULL) {
		c->driving = 0;
	} else if (to_io && !c->threadless && c->state == CONN_UP) {
		c->io_turn = 1;
		pthread_cond_signal(&c->io_cv);
	} else {
		x->turn = 1;
		pthread_cond_signal(&x->cv);
	}
}

/* Whether the driver goes on: for a caller, until its reply is in; for the I/O thread,
 * while calls wait for replies or several threads are in calls (concurrent callers that
 * were just answered call again at once), or while the connection is quiet; _inlock. */
static int
drive_goes_on_inlock(struct cli_conn *c, const struct cli_waiter *w)
{
	if (c->state != CONN_UP || c->stop) {
		return 0;
	}
	if (w != NULL) {
		return !waiter_done(w);
	}
	return c->callers >= 2 || live_waiter_inlock(c, NULL) != NULL ||
	       (c->callers == 0 && now_ms() - c->last_call_ms >= IO_IDLE_MS);
}

/* Runs io_step while holding `drive` as long as the driver goes on (w: a caller's waiter,
 * until its deadline; NULL: the I/O thread); a failure fails the connection. Then passes
 * the role on. */
static int
drive_until(struct cli_conn *c, const struct cli_waiter *w, uint64_t deadline)
{
	int left = -1, r = 0, go, alone = 0, done = 0;
	uint64_t since = w != NULL ? proto_now_ns() : 0;

	pthread_mutex_lock(&c->drive);
	for (;;) {
		pthread_mutex_lock(&c->lock);
		go = drive_goes_on_inlock(c, w);
		alone = w != NULL && c->callers == 1;
		done = w != NULL && waiter_done(w);
		pthread_mutex_unlock(&c->lock);
		if (!go || (w != NULL && (left = ms_left(deadline)) == 0)) {
			break;
		}
		if ((r = io_step(c, left, alone ? since : 0)) != 0) {
			pthread_mutex_lock(&c->lock);
			conn_fail_inlock(c, r);
			out_drop_inlock(c); /* holding `drive`: the writer */
			pthread_mutex_unlock(&c->lock);
			break;
		}
	}
	if (alone && done) {
		/* a lone caller's whole wait for its reply teaches the busy-poll budget */
		proto_spin_learn(&c->spin, proto_now_ns() - since);
	}
	pthread_mutex_unlock(&c->drive);
	pthread_mutex_lock(&c->lock);
	drive_pass_inlock(c, w, w != NULL);
	pthread_mutex_unlock(&c->lock);
	return r;
}

/*
 * The I/O thread after the handshake. It sleeps on io_cv while a lone caller drives. It
 * drives when a leaving caller passes it the role because others still wait (concurrent
 * calls: one reader for all, as long as any waits), and when no call has begun for
 * IO_IDLE_MS (PINGs, a closed link, replies to calls that timed out; a call that comes
 * meanwhile wakes it through the eventfd and is served).
 */
static void
io_loop(struct cli_conn *c)
{
	int stop, mine;

	for (;;) {
		struct timespec ts;
		uint64_t now = now_ms(), quiet;

		pthread_mutex_lock(&c->lock);
		stop = c->stop || c->state != CONN_UP;
		quiet = now - c->last_call_ms;
		mine = !stop &&
		       (c->io_turn || (!c->driving && c->callers == 0 && quiet >= IO_IDLE_MS));
		if (c->io_turn) {
			c->io_turn = 0; /* passed by a caller: `driving` is set for us */
			c->driving = !stop;
		} else if (mine) {
			c->driving = 1;
		} else if (!stop) {
			deadline_ts(now + (quiet >= IO_IDLE_MS ? IO_IDLE_MS : IO_IDLE_MS - quiet),
			            &ts);
			(void)pthread_cond_timedwait(&c->io_cv, &c->lock, &ts);
		}
		pthread_mutex_unlock(&c->lock);
		if (stop) {
			break;
		}
		if (mine && drive_until(c, NULL, 0) != 0) {
			return; /* failed: every waiter has been answered */
		}
	}
	/* A clean close: tell the gateway (one attempt, never waits), once no caller drives. */
	pthread_mutex_lock(&c->drive);
	pthread_mutex_lock(&c->lock);
	stop = c->stop;
	pthread_mutex_unlock(&c->lock);
	if (stop && c->ssl != NULL) {
		ERR_clear_error();
		(void)SSL_shutdown(c->ssl);
		ERR_clear_error();
	}
	pthread_mutex_unlock(&c->drive);
}

/* Runs the handshake and reports its result to cli_conn_open (hs_done, hs_err), in the I/O
 * thread or, in threadless mode, in the caller itself. */
static int
conn_handshake_report(struct cli_conn *c)
{
	int r;

	r = conn_handshake(c);
	pthread_mutex_lock(&c->lock);
	c->hs_done = 1;
	c->hs_err = r;
	if (r == 0 && c->state == CONN_CONNECTING) {
		c->state = CONN_UP;
	}
	c->target = NULL; /* not ours after the report */
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->lock);
	return r;
}

static void *
io_main(void *arg)
{
	struct cli_conn *c = arg;

	if (conn_handshake_report(c) == 0) {
		io_loop(c);
	}
	ERR_clear_error();
	return NULL;
}

int
cli_conn_open(const struct cli_target *t, struct cli_conn **out, char *err, size_t errsz)
{
	struct cli_conn *c;
	sigset_t all, old;
	int r;

	*out = NULL;
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		snprintf(err, errsz, "out of memory");
		return CLI_ERR_NOMEM;
	}
	c->fd = -1;
	c->evfd = -1;
	c->refs = 1;
	c->next_id = 1;
	c->target = t;
	c->timeout_ms = t->cfg->timeout_ms;
	c->defer_init = t->cfg->defer_init;
	proto_spin_init(&c->spin, t->cfg->busy_poll_us);
	cli_sessions_init(&c->sessions);
	snprintf(c->peer, sizeof(c->peer), "%s", t->cfg->gateway);
	if (pthread_mutex_init(&c->lock, NULL) != 0) {
		free(c);
		snprintf(err, errsz, "cannot create a mutex");
		return CLI_ERR_SYS;
	}
	if (cond_init_monotonic(&c->cv) != 0) {
		pthread_mutex_destroy(&c->lock);
		free(c);
		snprintf(err, errsz, "cannot create a condition variable");
		return CLI_ERR_SYS;
	}
	if ((c->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
		snprintf(err, errsz, "eventfd: %s", strerror(errno));
		r = CLI_ERR_SYS;
		goto out;
	}
	c->threadless = t->threadless;
	(void)pthread_mutex_init(&c->drive, NULL);
	if (cond_init_monotonic(&c->io_cv) != 0) {
		snprintf(err, errsz, "cannot create a condition variable");
		r = CLI_ERR_SYS;
		goto out;
	}
	c->last_call_ms = now_ms(); /* the first calls follow at once: let them drive */
	if (c->threadless) {
		/* The application may not have threads made for it (v2.40 §5.4): the
		 * handshake runs here, and calls drive the connection (drive_until). */
		(void)conn_handshake_report(c);
		c->last_io_ms = now_ms();
	} else {
		/* The I/O thread takes no signal: the application's handlers run in its own
		 * threads, and SIGPIPE from a reset connection stays pending here, harmlessly. */
		sigfillset(&all);
		pthread_sigmask(SIG_SETMASK, &all, &old);
		r = pthread_create(&c->io, NULL, io_main, c);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		if (r != 0) {
			snprintf(err, errsz, "cannot start the I/O thread: %s", strerror(r));
			r = CLI_ERR_SYS;
			goto out;
		}
		c->io_started = 1;
	}
	pthread_mutex_lock(&c->lock);
	while (!c->hs_done) {
		pthread_cond_wait(&c->cv, &c->lock);
	}
	r = c->hs_err;
	pthread_mutex_unlock(&c->lock);
	if (r != 0) {
		snprintf(err, errsz, "%s", c->hs_msg);
		goto out;
	}
	*out = c;
	c = NULL; /* transferred */
	r = 0;
out:
	if (c != NULL) {
		cli_conn_close(c, r);
		cli_conn_unref(c);
	}
	return r;
}

/* ---- one call ----------------------------------------------------------------------- */

/* A new waiter (its own cv), or NULL. */
static struct cli_waiter *
waiter_new(void)
{
	struct cli_waiter *w;

	if ((w = calloc(1, sizeof(*w))) == NULL) {
		return NULL;
	}
	if (cond_init_monotonic(&w->cv) != 0) {
		free(w);
		return NULL;
	}
	return w;
}

/* Assigns the next request id to frame `f` (begun with id 0: bytes 12..15 of the header)
 * and queues it, transferring its bytes; _inlock. */
static int
frame_send_inlock(struct cli_conn *c, struct proto_buf *f, struct cli_waiter *w)
{
	uint32_t id = c->next_id++;
	int r;

	if (c->next_id == 0) {
		c->next_id = 1; /* 0 is the connection's own id (ERROR, PING) */
	}
	f->data[12] = (uint8_t)(id >> 24);
	f->data[13] = (uint8_t)(id >> 16);
	f->data[14] = (uint8_t)(id >> 8);
	f->data[15] = (uint8_t)id;
	if ((r = out_queue_inlock(c, f->data, f->len)) != 0) {
		return r;
	}
	proto_buf_init(f); /* transferred */
	w->req_id = id;
	w->next = c->waiters;
	if (c->waiters != NULL) {
		c->waiters->prev = w;
	}
	c->waiters = w;
	c->inflight++;
	return 0;
}

/* A caller gives up on its waiter w (timeout): one whose reply came is freed now, one still
 * registered is left, abandoned, for the reply or the connection's failure to free;
 * _inlock. */
static void
waiter_abandon_inlock(struct cli_waiter *w)
{
	if (w->done) {
		waiter_free(w);
	} else {
		w->abandoned = 1;
	}
}

/* Hands w's reply to *rep; _inlock. */
static int
waiter_take(struct cli_waiter *w, struct cli_reply *rep)
{
	if (w->err != 0) {
		return w->err;
	}
	rep->type = w->type;
	rep->body = w->body;
	rep->body_len = w->body_len;
	w->body = NULL; /* transferred */
	return 0;
}

int
cli_conn_call(struct cli_conn *c, struct proto_buf *pre, struct proto_buf *req, uint32_t timeout_ms,
              struct cli_reply *pre_rep, struct cli_reply *rep)
{
	uint64_t start = now_ms(), deadline = start + timeout_ms;
	struct cli_waiter *w = NULL, *w0 = NULL;
	uint32_t slots = pre != NULL ? 2 : 1;
	struct timespec ts;
	int r, mine = 0;

	memset(rep, 0, sizeof(*rep));
	if (pre_rep != NULL) {
		memset(pre_rep, 0, sizeof(*pre_rep));
	}
	deadline_ts(deadline, &ts);
	if (req->len > c->max_frame || (pre != NULL && pre->len > c->max_frame)) {
		r = CLI_ERR_TOO_LARGE;
		goto out_unlocked;
	}
	if ((w = waiter_new()) == NULL || (pre != NULL && (w0 = waiter_new()) == NULL)) {
		r = CLI_ERR_NOMEM;
		goto out_unlocked;
	}
	pthread_mutex_lock(&c->lock);
	/* max_inflight: wait for free slots (the gateway refuses more). A deferred init needs
	 * two, which cli_conn_defer only allows when max_inflight has them. */
	while (c->state == CONN_UP && c->inflight + slots > c->max_inflight) {
		if (pthread_cond_timedwait(&c->cv, &c->lock, &ts) == ETIMEDOUT &&
		    c->state == CONN_UP && c->inflight + slots > c->max_inflight) {
			r = CLI_ERR_TIMEOUT;
			goto out;
		}
	}
	if (c->state != CONN_UP) {
		r = c->reason != 0 ? c->reason : CLI_ERR_REMOVED;
		goto out;
	}
	/* The deferred init goes first, in the same write: the gateway serves a session's
	 * requests in order. */
	if (w0 != NULL) {
		if ((r = frame_send_inlock(c, pre, w0)) != 0) {
			goto out;
		}
		w0->owner = w;
		w->pre = w0;
	}
	if ((r = frame_send_inlock(c, req, w)) != 0) {
		if (w0 != NULL) {
			/* Queued and registered: its reply comes, and nobody waits for it. */
			w0->owner = NULL;
			w0->abandoned = 1;
			w0 = NULL;
		}
		goto out;
	}
	w0 = NULL; /* w->pre from here on */
	c->callers++;
	c->last_call_ms = start;
	if (!c->driving) {
		c->driving = 1; /* nobody drives: this caller does */
		mine = 1;
	} else if (c->polling && !c->wake_pending) {
		/* Wakes the driver out of poll(), so that this request is written now. Under the
		 * lock: a C_Finalize in another thread closes the eventfd (cli_conn_close), and a
		 * write after that could reach whatever file has since been given its number. Not
		 * when it is not polling (it looks at the queue before it does) or a wake-up is
		 * already pending. */
		c->wake_pending = 1;
		conn_wake(c);
	}
	pthread_mutex_unlock(&c->lock);

	for (;;) {
		if (mine) {
			(void)drive_until(c, w, deadline); /* a failure completes w */
			mine = 0;
		}
		pthread_mutex_lock(&c->lock);
		while (!waiter_done(w) && !w->turn) {
			if (pthread_cond_timedwait(&w->cv, &c->lock, &ts) == ETIMEDOUT &&
			    !waiter_done(w) && !w->turn) {
				/* A waiter stays registered, holding its id and slot, until the
				 * reply comes or the connection fails; whichever happens frees it.
				 */
				if (w->pre != NULL) {
					waiter_abandon_inlock(w->pre); /* may free it */
					w->pre = NULL;
				}
				waiter_abandon_inlock(w);
				w = NULL;
				c->callers--;
				r = CLI_ERR_TIMEOUT;
				goto out;
			}
		}
		if (w->turn) {
			w->turn = 0;
			if (!waiter_done(w)) {
				mine = 1; /* the driver passed the role: drive until the reply */
				pthread_mutex_unlock(&c->lock);
				continue;
			}
			drive_pass_inlock(c, w, 1); /* answered meanwhile: pass it on */
		}
		break;
	}
	c->callers--;
	r = waiter_take(w, rep);
	if (w->pre != NULL) {
		w0 = w->pre;
		w->pre = NULL;
		if (r == 0 && (r = waiter_take(w0, pre_rep)) != 0) {
			OPENSSL_clear_free(rep->body, rep->body_len);
			memset(rep, 0, sizeof(*rep));
		}
	}
out:
	pthread_mutex_unlock(&c->lock);
out_unlocked:
	if (w != NULL) {
		waiter_free(w);
	}
	if (w0 != NULL) {
		waiter_free(w0);
	}
	proto_buf_free(req);
	if (pre != NULL) {
		proto_buf_free(pre);
	}
	return r;
}
