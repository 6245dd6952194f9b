/*
 * gateway/supervisor.c — the partition workers: spawn, IPC, death, restart, stop.
 *
 * One worker process per partition, started at start-up as
 *   hsmgate-worker --config FILE --partition NAME --fd 3
 * with its end of a socketpair on fd 3 and nothing else of ours open. The gateway forwards
 * requests (caller context + the client's frame) and gets back complete reply frames.
 *
 * The socketpair is SOCK_STREAM with proto's length-prefixed IPC framing, not the
 * SOCK_SEQPACKET of DESIGN.md: one message may be a whole max_frame (1 MiB and more), which
 * exceeds what an AF_UNIX datagram can carry unless the socket buffers are raised past
 * net.core.wmem_max, which only root can do (SO_SNDBUFFORCE).
 *
 * A worker is down when its channel closed (EOF) or its process was reaped; when both have
 * happened it is restarted after a backoff (100 ms doubling to 5 s, back to 100 ms once a
 * worker has lived GW_STABLE_S). Calls in flight on a dead worker fail with
 * CKR_DEVICE_ERROR (gw_conn_fail_worker) and calls arriving while it is down get the same;
 * the other partitions are untouched. Its sessions are gone with it: the new worker answers
 * CKR_SESSION_HANDLE_INVALID for them.
 */
#include "gateway/gw_int.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <openssl/crypto.h>

#define GW_BACKOFF_MIN_MS 100u
#define GW_BACKOFF_MAX_MS 5000u
#define GW_STABLE_S       10
/* Worker → gateway messages are replies (one client frame) or audit events. */
#define GW_IPC_MAX ((size_t)PROTO_IPC_HDR_BYTES + PROTO_MAX_FRAME_CAP)
/* How long exited-but-unread channels and stopping workers are waited for. */
#define GW_REAP_WAIT_MS 500
#define GW_STOP_TERM_MS 700
#define GW_STOP_KILL_MS 1000

/* close_range(2) (Linux 5.9) when the headers know it; otherwise a close() loop. */
#ifdef SYS_close_range
#define GW_SYS_CLOSE_RANGE SYS_close_range
#else
#define GW_SYS_CLOSE_RANGE -1
#endif

static void worker_read_cb(struct bufferevent *bev, void *arg);
static void worker_write_cb(struct bufferevent *bev, void *arg);
static void worker_read_batch(struct gw_worker *w, struct bufferevent *bev, struct evbuffer *in);
static void worker_event_cb(struct bufferevent *bev, short what, void *arg);

static void
timer_add_ms(struct event *ev, unsigned ms)
{
	struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};

	evtimer_add(ev, &tv);
}

/* Closes every descriptor from `from` up, in the child between fork and exec. */
static void
child_close_from(int from)
{
	long max;
	int fd;

	if (GW_SYS_CLOSE_RANGE >= 0 && syscall(GW_SYS_CLOSE_RANGE, (unsigned)from, ~0u, 0u) == 0) {
		return;
	}
	max = sysconf(_SC_OPEN_MAX);
	for (fd = from; fd < (max > 0 && max < 65536 ? max : 65536); fd++) {
		(void)close(fd);
	}
}

static int
worker_spawn(struct gw_worker *w)
{
	struct gw_server *s = w->srv;
	char *argv[] = {s->worker_path,
	                "--config",
	                s->config_path,
	                "--partition",
	                w->part.name,
	                "--fd",
	                "3",
	                NULL};
	sigset_t all, none, saved;
	int sv[2] = {-1, -1};
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
		gw_log(GW_LOG_ERROR, "supervisor", "socketpair failed", "partition=%s errno=\"%s\"",
		       w->part.name, strerror(errno));
		return GW_ERR_SPAWN;
	}
	sigemptyset(&none);
	sigfillset(&all);
	/* Signals stay blocked across fork so that libevent's handlers, inherited by the child,
	 * never run there (they would write into the parent's signal socketpair). */
	(void)sigprocmask(SIG_BLOCK, &all, &saved);
	pid = fork();
	if (pid < 0) {
		(void)sigprocmask(SIG_SETMASK, &saved, NULL);
		gw_log(GW_LOG_ERROR, "supervisor", "fork failed", "partition=%s errno=\"%s\"",
		       w->part.name, strerror(errno));
		close(sv[0]);
		close(sv[1]);
		return GW_ERR_SPAWN;
	}
	if (pid == 0) {
		/* Child: async-signal-safe calls only until exec. The worker starts with default
		 * signal handling (ours is libevent's, and SIGPIPE is ignored here) and with fd 3
		 * as its only descriptor beyond stdio. */
		(void)signal(SIGTERM, SIG_DFL);
		(void)signal(SIGINT, SIG_DFL);
		(void)signal(SIGHUP, SIG_DFL);
		(void)signal(SIGCHLD, SIG_DFL);
		(void)signal(SIGPIPE, SIG_DFL);
		(void)sigprocmask(SIG_SETMASK, &none, NULL);
		if (sv[1] == 3) {
			(void)fcntl(3, F_SETFD, 0);
		} else if (dup2(sv[1], 3) != 3) {
			_exit(127);
		}
		child_close_from(4);
		execv(argv[0], argv);
		_exit(127);
	}
	(void)sigprocmask(SIG_SETMASK, &saved, NULL);
	close(sv[1]);
	w->bev = bufferevent_socket_new(s->base, sv[0],
	                                BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (w->bev == NULL) {
		close(sv[0]);
		(void)kill(pid, SIGKILL);
		w->pid = pid; /* reaped by SIGCHLD, then restarted */
		return GW_ERR_EVENT;
	}
	(void)evutil_make_socket_nonblocking(sv[0]);
	bufferevent_setcb(w->bev, worker_read_cb, worker_write_cb, worker_event_cb, w);
	bufferevent_setwatermark(w->bev, EV_READ, PROTO_IPC_HDR_BYTES, 0);
	/* EV_WRITE (on in a new bufferevent) stays off until a write leaves something behind
	 * (worker_flush). */
	bufferevent_disable(w->bev, EV_WRITE);
	bufferevent_enable(w->bev, EV_READ);
	w->out_dirty = 0;
	w->pid = pid;
	clock_gettime(CLOCK_MONOTONIC, &w->started);
	gw_log(GW_LOG_INFO, "supervisor", w->restarts > 0 ? "worker restarted" : "worker started",
	       "partition=%s tenant=%s slot=%u pid=%ld restarts=%u", w->part.name, w->part.tenant,
	       w->part.slot, (long)pid, w->restarts);
	gw_audit_worker(s, w, w->restarts > 0 ? "restart" : "start", NULL, 0);
	/* The policy goes first on the channel, ahead of any request. */
	gw_policy_push(s, w);
	return 0;
}

static void
maybe_restart(struct gw_worker *w)
{
	struct timespec now;
	unsigned delay;

	if (w->srv->stopping || w->pid != 0 || w->bev != NULL ||
	    evtimer_pending(w->restart_timer, NULL)) {
		return;
	}
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (now.tv_sec - w->started.tv_sec >= GW_STABLE_S) {
		w->backoff_ms = GW_BACKOFF_MIN_MS;
	}
	delay = w->backoff_ms;
	w->backoff_ms =
	        w->backoff_ms * 2 > GW_BACKOFF_MAX_MS ? GW_BACKOFF_MAX_MS : w->backoff_ms * 2;
	gw_log(GW_LOG_INFO, "supervisor", "worker restart scheduled", "partition=%s delay_ms=%u",
	       w->part.name, delay);
	timer_add_ms(w->restart_timer, delay);
}

/* The channel is gone: calls in flight fail, and the worker is restarted once reaped. */
static void
ipc_down(struct gw_worker *w, const char *why)
{
	if (w->bev == NULL) {
		return;
	}
	bufferevent_free(w->bev);
	w->bev = NULL;
	/* Past the drain (stopping 2) the gateway closed the channel itself. */
	if (w->srv->stopping >= 2) {
		return;
	}
	gw_log(GW_LOG_WARN, "supervisor", "worker channel closed",
	       "partition=%s pid=%ld reason=\"%s\"", w->part.name, (long)w->pid, why);
	gw_conn_fail_worker(w->srv, w);
	/* A live worker without its channel is useless; a zombie ignores the signal. */
	if (w->pid > 0) {
		(void)kill(w->pid, SIGKILL);
	}
	maybe_restart(w);
}

/* A worker that sends what no worker may is in an impossible state (STYLE rule 7). */
static void
worker_broken(struct gw_worker *w, const char *why)
{
	gw_log(GW_LOG_ERROR, "supervisor", "worker killed: protocol violation",
	       "partition=%s pid=%ld reason=\"%s\"", w->part.name, (long)w->pid, why);
	if (w->pid > 0) {
		(void)kill(w->pid, SIGKILL);
	}
	ipc_down(w, why);
}

static void
worker_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct gw_worker *w = arg;

	(void)fd;
	(void)what;
	if (w->srv->stopping) {
		return;
	}
	if (w->pid == 0 && w->bev != NULL) {
		/* Reaped, but the channel never reported EOF (a descendant holds its end?). */
		ipc_down(w, "worker exited");
		return;
	}
	if (w->pid != 0 || w->bev != NULL) {
		return;
	}
	w->restarts++;
	if (worker_spawn(w) != 0) {
		maybe_restart(w);
	}
}

static void
worker_read_cb(struct bufferevent *bev, void *arg)
{
	struct gw_worker *w = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	/* The replies of one read are many when the worker batches them: their audit records
	 * and any requests they release go out together (gw_cork). */
	gw_cork(w->srv);
	worker_read_batch(w, bev, in);
	gw_uncork(w->srv);
}

static void
worker_read_batch(struct gw_worker *w, struct bufferevent *bev, struct evbuffer *in)
{
	uint8_t hdr[PROTO_IPC_HDR_BYTES];
	uint64_t conn_id;
	uint32_t blen;
	uint8_t kind;
	size_t avail, need;
	uint8_t *p;
	int r;

	for (;;) {
		avail = evbuffer_get_length(in);
		if (avail < PROTO_IPC_HDR_BYTES) {
			bufferevent_setwatermark(bev, EV_READ, PROTO_IPC_HDR_BYTES, 0);
			return;
		}
		if (evbuffer_copyout(in, hdr, sizeof(hdr)) != (ev_ssize_t)sizeof(hdr) ||
		    proto_ipc_hdr_decode(hdr, sizeof(hdr), GW_IPC_MAX, &kind, &conn_id, &blen) !=
		            0) {
			worker_broken(w, "malformed IPC header");
			return;
		}
		need = PROTO_IPC_HDR_BYTES + (size_t)blen;
		if (avail < need) {
			bufferevent_setwatermark(bev, EV_READ, need, 0);
			return;
		}
		if ((p = evbuffer_pullup(in, (ev_ssize_t)need)) == NULL) {
			worker_broken(w, "out of memory");
			return;
		}
		switch (kind) {
		case PROTO_IPC_REPLY:
			r = gw_conn_on_reply(w->srv, w, conn_id, p + PROTO_IPC_HDR_BYTES, blen);
			break;
		case PROTO_IPC_AUDIT:
			gw_audit_worker_event(w->srv, w, conn_id, p + PROTO_IPC_HDR_BYTES, blen);
			r = 0;
			break;
		default:
			r = GW_ERR_MALFORMED;
			break;
		}
		/* Replies may carry key material or plaintext (PROTO_CF_SECRET_OUT). */
		OPENSSL_cleanse(p, need);
		evbuffer_drain(in, need);
		if (r != 0) {
			worker_broken(w, kind == PROTO_IPC_REPLY ? "malformed reply frame"
			                                         : "unexpected IPC message kind");
			return;
		}
	}
}

/*
 * Writes what the channel holds now. Leaving it to libevent would cost, per message, an
 * epoll_ctl to arm EV_WRITE, a loop turn whose epoll_wait says what is already known (a
 * socketpair with room), and an epoll_ctl to disarm it. Only when the socket is full does
 * EV_WRITE go on, until worker_write_cb sees the output drained. A write error is left to
 * the bufferevent, which reports it through worker_event_cb on its own write.
 */
static void
worker_flush(struct gw_worker *w)
{
	struct evbuffer *out = bufferevent_get_output(w->bev);
	evutil_socket_t fd = bufferevent_getfd(w->bev);
	int n;

	w->out_dirty = 0;
	while (evbuffer_get_length(out) > 0) {
		if ((n = evbuffer_write(out, fd)) > 0) {
			continue;
		}
		if (n < 0 && errno == EINTR) {
			continue;
		}
		break;
	}
	if (evbuffer_get_length(out) > 0) {
		bufferevent_enable(w->bev, EV_WRITE);
	}
}

static void
worker_write_cb(struct bufferevent *bev, void *arg)
{
	(void)arg;
	/* Deferred: called after the output drained (write low-water mark 0), but a message
	 * queued since then may have left bytes behind that still need EV_WRITE. */
	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
		bufferevent_disable(bev, EV_WRITE);
	}
}

void
gw_cork(struct gw_server *s)
{
	/* The batch's audit records go to one fdatasync: appends do not wake the log's
	 * writer until gw_uncork (AUDIT.md §5). */
	if (s->cork++ == 0 && s->audit != NULL) {
		aud_log_hold(s->audit);
	}
}

void
gw_uncork(struct gw_server *s)
{
	unsigned i;

	if (s->cork == 0 || --s->cork > 0) {
		return;
	}
	if (s->audit != NULL) {
		aud_log_release(s->audit);
	}
	for (i = 0; i < s->n_workers; i++) {
		if (s->workers[i].out_dirty && s->workers[i].bev != NULL) {
			worker_flush(&s->workers[i]);
		}
	}
	gw_conn_flush_staged(s);
}

static void
worker_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct gw_worker *w = arg;

	(void)bev;
	ipc_down(w, (what & BEV_EVENT_EOF) != 0 ? "EOF" : "channel error");
}

int
gw_worker_send(struct gw_worker *w, enum proto_ipc kind, uint64_t conn_id,
               const struct proto_ctx *ctx, const uint8_t *frame, size_t len)
{
	struct proto_buf b;
	int r;

	if (w->bev == NULL) {
		return GW_ERR_IO;
	}
	proto_buf_init(&b);
	if ((r = proto_ipc_begin(&b, kind, conn_id)) != 0 ||
	    (ctx != NULL && (r = proto_ctx_put(&b, ctx)) != 0) ||
	    (len > 0 && (r = proto_put_raw(&b, frame, len)) != 0) ||
	    (r = proto_ipc_finish(&b)) != 0) {
		gw_log(GW_LOG_ERROR, "supervisor", "cannot encode an IPC message",
		       "partition=%s err=\"%s\"", w->part.name, proto_strerror(r));
		r = GW_ERR_MALFORMED;
		goto out;
	}
	/* Back-pressure towards a slow worker is bounded per connection by max_inflight. */
	if ((r = gw_evbuffer_add_wiped(bufferevent_get_output(w->bev), b.data, b.len)) != 0) {
		goto out;
	}
	if (w->srv->cork > 0) {
		w->out_dirty = 1;
	} else {
		worker_flush(w);
	}
	r = 0;
out:
	proto_buf_free(&b);
	return r;
}

void
gw_policy_push(struct gw_server *s, struct gw_worker *w)
{
	unsigned i;

	if (w == NULL) {
		for (i = 0; s->workers != NULL && i < s->n_workers; i++) {
			gw_policy_push(s, &s->workers[i]);
		}
		return;
	}
	if (w->bev == NULL) {
		return; /* not running: it gets the text when it is spawned */
	}
	if (gw_worker_send(w, PROTO_IPC_POLICY, 0, NULL, (const uint8_t *)s->policy_text,
	                   s->policy_text_len) != 0) {
		/* A worker left with an older policy would decide differently from the gateway:
		 * restarting it (it gets the text at spawn) is the safe way out. */
		worker_broken(w, "cannot send the policy");
	}
}

int
gw_supervisor_start(struct gw_server *s, char *err, size_t errsz)
{
	const struct cfg_daemon *cfg = s->cfg;
	unsigned i;
	int r;

	s->n_workers = 0;
	if (cfg->n_partitions > 0) {
		s->workers = calloc(cfg->n_partitions, sizeof(*s->workers));
		s->parts = calloc(cfg->n_partitions, sizeof(*s->parts));
		if (s->workers == NULL || s->parts == NULL) {
			snprintf(err, errsz, "out of memory");
			return GW_ERR_NOMEM;
		}
	}
	for (i = 0; i < cfg->n_partitions; i++) {
		const struct cfg_partition *cp = &cfg->partitions[i];
		struct gw_worker *w = &s->workers[i];

		if (cp->name == NULL || cp->tenant == NULL ||
		    strlen(cp->name) >= sizeof(w->part.name) ||
		    strlen(cp->tenant) >= sizeof(w->part.tenant)) {
			snprintf(err, errsz, "partition %u: name or tenant missing or too long", i);
			return GW_ERR_CONFIG;
		}
		w->srv = s;
		w->idx = i;
		snprintf(w->part.name, sizeof(w->part.name), "%s", cp->name);
		snprintf(w->part.tenant, sizeof(w->part.tenant), "%s", cp->tenant);
		w->part.slot = cp->slot;
		w->backoff_ms = GW_BACKOFF_MIN_MS;
		if ((w->restart_timer = evtimer_new(s->base, worker_timer_cb, w)) == NULL) {
			snprintf(err, errsz, "cannot create a timer");
			return GW_ERR_EVENT;
		}
		s->parts[i] = w->part;
		s->n_workers = i + 1;
	}
	for (i = 0; i < s->n_workers; i++) {
		if ((r = worker_spawn(&s->workers[i])) != 0) {
			snprintf(err, errsz, "cannot start the worker of partition %s: %s",
			         s->workers[i].part.name, gw_strerror(r));
			return r;
		}
	}
	return 0;
}

static int
all_reaped(const struct gw_server *s)
{
	unsigned i;

	for (i = 0; i < s->n_workers; i++) {
		if (s->workers[i].pid > 0) {
			return 0;
		}
	}
	return 1;
}

void
gw_supervisor_reap(struct gw_server *s)
{
	unsigned i;
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		struct gw_worker *w = NULL;

		for (i = 0; i < s->n_workers; i++) {
			if (s->workers[i].pid == pid) {
				w = &s->workers[i];
				break;
			}
		}
		if (w == NULL) {
			continue;
		}
		w->pid = 0;
		s->stats.worker_exits++;
		{
			char detail[64];

			if (WIFSIGNALED(status)) {
				snprintf(detail, sizeof(detail), "signal %d", WTERMSIG(status));
			} else {
				snprintf(detail, sizeof(detail), "exit status %d",
				         WEXITSTATUS(status));
			}
			/* An exit while the gateway stops is the normal end; any other is a crash.
			 */
			gw_audit_worker(s, w, "exit", detail,
			                !s->stopping &&
			                        !(WIFEXITED(status) && WEXITSTATUS(status) == 0));
		}
		if (WIFSIGNALED(status)) {
			gw_log(s->stopping ? GW_LOG_INFO : GW_LOG_WARN, "supervisor",
			       "worker exited", "partition=%s pid=%ld signal=%d", w->part.name,
			       (long)pid, WTERMSIG(status));
		} else {
			gw_log(s->stopping || WEXITSTATUS(status) == 0 ? GW_LOG_INFO : GW_LOG_WARN,
			       "supervisor", "worker exited", "partition=%s pid=%ld status=%d",
			       w->part.name, (long)pid, WEXITSTATUS(status));
		}
		if (s->stopping) {
			continue;
		}
		if (w->bev == NULL) {
			maybe_restart(w);
		} else {
			/* Replies it wrote before dying are still in the socket: let the channel
			 * deliver them and report EOF, with a deadline. */
			timer_add_ms(w->restart_timer, GW_REAP_WAIT_MS);
		}
	}
	if (s->stopping >= 2 && all_reaped(s)) {
		gw_log(GW_LOG_INFO, "supervisor", "all workers stopped", NULL);
		event_base_loopexit(s->base, NULL);
	}
}

static void
stop_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct gw_server *s = arg;
	unsigned i;
	int sig = s->stop_stage == 0 ? SIGTERM : SIGKILL;

	(void)fd;
	(void)what;
	for (i = 0; i < s->n_workers; i++) {
		if (s->workers[i].pid > 0) {
			gw_log(GW_LOG_WARN, "supervisor", "worker did not stop; signalling",
			       "partition=%s pid=%ld signal=%s", s->workers[i].part.name,
			       (long)s->workers[i].pid, sig == SIGTERM ? "SIGTERM" : "SIGKILL");
			(void)kill(s->workers[i].pid, sig);
		}
	}
	if (s->stop_stage++ == 0) {
		timer_add_ms(s->stop_timer, GW_STOP_KILL_MS);
	}
}

void
gw_supervisor_stop(struct gw_server *s)
{
	unsigned i;

	s->stopping = 2;
	/* EOF on its channel is the worker's signal to exit. */
	for (i = 0; i < s->n_workers; i++) {
		struct gw_worker *w = &s->workers[i];

		if (w->restart_timer != NULL) {
			evtimer_del(w->restart_timer);
		}
		if (w->bev != NULL) {
			bufferevent_free(w->bev);
			w->bev = NULL;
		}
	}
	if (all_reaped(s)) {
		event_base_loopexit(s->base, NULL);
		return;
	}
	s->stop_stage = 0;
	if (s->stop_timer == NULL) {
		s->stop_timer = evtimer_new(s->base, stop_timer_cb, s);
	}
	if (s->stop_timer != NULL) {
		timer_add_ms(s->stop_timer, GW_STOP_TERM_MS);
	}
	/* A worker that exited before this point was reaped already; check now too. */
	gw_supervisor_reap(s);
}

void
gw_supervisor_free(struct gw_server *s)
{
	unsigned i;

	for (i = 0; s->workers != NULL && i < s->n_workers; i++) {
		struct gw_worker *w = &s->workers[i];

		if (w->bev != NULL) {
			bufferevent_free(w->bev);
		}
		if (w->restart_timer != NULL) {
			event_free(w->restart_timer);
		}
		if (w->pid > 0) {
			(void)kill(w->pid, SIGKILL);
			(void)waitpid(w->pid, NULL, 0);
		}
	}
	if (s->stop_timer != NULL) {
		event_free(s->stop_timer);
	}
	free(s->workers);
	free(s->parts);
	s->workers = NULL;
	s->parts = NULL;
	s->n_workers = 0;
}
