/*
 * gateway/server.c — the daemon: event loop, listener, signals, reload, shutdown.
 *
 * One event loop serves every connection and every worker channel. A loop per core would
 * split here: N event bases in N threads, the listener handing each accepted socket to one
 * of them (round robin), each loop owning its connections; the worker channels would then
 * need one socketpair per (loop, worker) so that replies come back on the loop that owns the
 * connection, and s->stats would become per-loop counters summed on read.
 */
#include "gateway/gw_int.h"

#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <openssl/err.h>

/* In-flight calls get this long to finish after SIGTERM (hsmgated's callers, and the e2e
 * harness, wait 5 s before SIGKILL; the workers' stop needs the rest). */
#define GW_DRAIN_MS        2500
#define GW_ACCEPT_RETRY_MS 100
/* Connections the kernel may queue before accept (it caps this at net.core.somaxconn): a
 * burst of reconnecting clients waits there instead of retrying its SYN a second later. */
#define GW_LISTEN_BACKLOG 4096

static void
timer_add_ms(struct event *ev, unsigned ms)
{
	struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};

	evtimer_add(ev, &tv);
}

/* ---- paths --------------------------------------------------------------------------- */

static char *
absolute_path(const char *path)
{
	char cwd[PATH_MAX], *out = NULL;

	if (path[0] == '/') {
		return strdup(path);
	}
	if (getcwd(cwd, sizeof(cwd)) == NULL || asprintf(&out, "%s/%s", cwd, path) < 0) {
		return NULL;
	}
	return out;
}

/* The worker program: the override, else cfg->worker, else hsmgate-worker beside the running
 * hsmgated (/proc/self/exe). */
static int
worker_path_resolve(const struct cfg_daemon *cfg, const char *override, char **out, char *err,
                    size_t errsz)
{
	char exe[PATH_MAX], *slash, *p = NULL;
	ssize_t n;

	*out = NULL;
	if (override != NULL && *override != '\0') {
		p = absolute_path(override);
	} else if (cfg->worker != NULL && *cfg->worker != '\0') {
		p = absolute_path(cfg->worker);
	} else {
		if ((n = readlink("/proc/self/exe", exe, sizeof(exe) - 1)) <= 0) {
			snprintf(err, errsz,
			         "cannot find the hsmgated executable (/proc/self/exe): %s",
			         strerror(errno));
			return GW_ERR_CONFIG;
		}
		exe[n] = '\0';
		if ((slash = strrchr(exe, '/')) != NULL) {
			*slash = '\0';
		}
		if (asprintf(&p, "%s/hsmgate-worker", exe) < 0) {
			p = NULL;
		}
	}
	if (p == NULL) {
		snprintf(err, errsz, "out of memory");
		return GW_ERR_NOMEM;
	}
	if (access(p, X_OK) != 0) {
		snprintf(err, errsz, "worker program %s is not executable: %s", p, strerror(errno));
		free(p);
		return GW_ERR_CONFIG;
	}
	*out = p;
	return 0;
}

/* The policy named by `path` (NULL: none) into *out; on failure err holds
 * file:line:column: why. */
static int
policy_open(const char *path, struct pol_policy **out, char **text, size_t *len, char *err,
            size_t errsz)
{
	*out = NULL;
	if (text != NULL) {
		*text = NULL;
		*len = 0;
	}
	if (path == NULL) {
		return 0;
	}
	return gw_policy_load_text(path, out, text, len, err, errsz);
}

int
gw_config_check(const struct cfg_daemon *cfg, const char *worker_path, char *err, size_t errsz)
{
	struct pol_policy *pol = NULL;
	SSL_CTX *ctx = NULL;
	char *wp = NULL;
	int r;

	if ((r = gw_tls_ctx_new(cfg, &ctx, err, errsz)) != 0 ||
	    (r = worker_path_resolve(cfg, worker_path, &wp, err, errsz)) != 0 ||
	    (r = policy_open(cfg->policy, &pol, NULL, NULL, err, errsz)) != 0 ||
	    (r = gw_sinks_check_config(cfg, err, errsz)) != 0) {
		goto out;
	}
	r = 0;
out:
	SSL_CTX_free(ctx);
	pol_policy_free(pol);
	free(wp);
	return r;
}

/* ---- listener ------------------------------------------------------------------------- */

static void
accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int socklen, void *arg)
{
	(void)l;
	gw_conn_accept(arg, fd, sa, socklen);
}

static void
listen_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct gw_server *s = arg;

	(void)fd;
	(void)what;
	if (s->listener != NULL && !s->stopping) {
		evconnlistener_enable(s->listener);
	}
}

static void
accept_error_cb(struct evconnlistener *l, void *arg)
{
	struct gw_server *s = arg;
	int e = EVUTIL_SOCKET_ERROR();

	gw_log(GW_LOG_ERROR, "gw", "accept failed", "errno=\"%s\" connections=%u",
	       evutil_socket_error_to_string(e), s->n_conns);
	/* Out of descriptors: pause accepting briefly instead of spinning on the error. */
	evconnlistener_disable(l);
	timer_add_ms(s->listen_retry, GW_ACCEPT_RETRY_MS);
}

static int
listen_open(struct gw_server *s, char *err, size_t errsz)
{
	const char *addr = s->cfg->listen.address != NULL ? s->cfg->listen.address : "127.0.0.1";
	struct addrinfo hints, *ai = NULL;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char port[8], host[INET6_ADDRSTRLEN];
	int r;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	snprintf(port, sizeof(port), "%u", s->cfg->listen.port);
	if ((r = getaddrinfo(addr, port, &hints, &ai)) != 0) {
		snprintf(err, errsz, "listen.address %s: %s", addr, gai_strerror(r));
		return GW_ERR_LISTEN;
	}
	s->listener = evconnlistener_new_bind(s->base, accept_cb, s,
	                                      LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
	                                              LEV_OPT_CLOSE_ON_EXEC,
	                                      GW_LISTEN_BACKLOG, ai->ai_addr, (int)ai->ai_addrlen);
	freeaddrinfo(ai);
	if (s->listener == NULL) {
		snprintf(err, errsz, "cannot listen on %s:%s: %s", addr, port, strerror(errno));
		return GW_ERR_LISTEN;
	}
	evconnlistener_set_error_cb(s->listener, accept_error_cb);
	if (getsockname(evconnlistener_get_fd(s->listener), (struct sockaddr *)&ss, &sl) != 0) {
		snprintf(err, errsz, "getsockname: %s", strerror(errno));
		return GW_ERR_LISTEN;
	}
	if (ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ss;

		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		snprintf(s->bound, sizeof(s->bound), "[%s]:%u", host, ntohs(in6->sin6_port));
	} else {
		const struct sockaddr_in *in4 = (const struct sockaddr_in *)&ss;

		inet_ntop(AF_INET, &in4->sin_addr, host, sizeof(host));
		snprintf(s->bound, sizeof(s->bound), "%s:%u", host, ntohs(in4->sin_port));
	}
	return 0;
}

/* "ADDRESS:PORT\n", written to a temporary file and renamed, so a reader never sees half. */
static int
ready_write(struct gw_server *s, char *err, size_t errsz)
{
	char *tmp = NULL;
	FILE *f = NULL;
	int r = GW_ERR_IO;

	if (asprintf(&tmp, "%s.tmp.%ld", s->ready_file, (long)getpid()) < 0) {
		tmp = NULL;
		snprintf(err, errsz, "out of memory");
		goto out;
	}
	if ((f = fopen(tmp, "w")) == NULL || fprintf(f, "%s\n", s->bound) < 0 || fflush(f) != 0 ||
	    fsync(fileno(f)) != 0) {
		snprintf(err, errsz, "cannot write %s: %s", tmp, strerror(errno));
		goto out;
	}
	if (fclose(f) != 0) {
		f = NULL;
		snprintf(err, errsz, "cannot write %s: %s", tmp, strerror(errno));
		goto out;
	}
	f = NULL;
	if (rename(tmp, s->ready_file) != 0) {
		snprintf(err, errsz, "cannot rename %s to %s: %s", tmp, s->ready_file,
		         strerror(errno));
		goto out;
	}
	r = 0;
out:
	if (f != NULL) {
		fclose(f);
	}
	if (r != 0 && tmp != NULL) {
		unlink(tmp);
	}
	free(tmp);
	return r;
}

/* ---- descriptors ---------------------------------------------------------------------- */

unsigned
gw_conn_limit(uint32_t max_connections, uint64_t fd_limit, unsigned n_partitions, unsigned n_sinks)
{
	uint64_t reserve = GW_FD_RESERVE + (uint64_t)n_partitions * GW_FD_PER_WORKER +
	                   (uint64_t)n_sinks * GW_FD_PER_SINK;
	uint64_t fit = fd_limit > reserve ? fd_limit - reserve : 0;

	return fit < max_connections ? (unsigned)fit : (unsigned)max_connections;
}

/* Every client connection is a descriptor, and the soft RLIMIT_NOFILE is often 1024 while
 * the hard one is far higher (systemd's default is 524288): the soft limit goes up to the
 * hard one, as far as the kernel lets it. */
static void
fd_limit_raise(struct gw_server *s)
{
	struct rlimit rl;
	rlim_t was;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
		gw_log(GW_LOG_WARN, "gw", "cannot read the descriptor limit (RLIMIT_NOFILE)",
		       "errno=\"%s\"", strerror(errno));
		s->fd_limit = 1024;
		return;
	}
	was = rl.rlim_cur;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
			gw_log(GW_LOG_WARN, "gw", "cannot raise the descriptor limit",
			       "nofile=%llu hard=%llu errno=\"%s\"", (unsigned long long)was,
			       (unsigned long long)rl.rlim_max, strerror(errno));
			rl.rlim_cur = was;
		}
	}
	s->fd_limit = rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : (uint64_t)rl.rlim_cur;
	gw_log(GW_LOG_INFO, "gw", "descriptor limit", "nofile=%llu was=%llu hard=%llu",
	       (unsigned long long)rl.rlim_cur, (unsigned long long)was,
	       (unsigned long long)rl.rlim_max);
}

/* s->max_conns: limits.max_connections (`want`), unless the descriptor limit holds fewer
 * next to n_partitions workers and n_sinks audit sinks; that is said at start and at every
 * reload. GW_ERR_CONFIG when no connection fits. */
static int
conn_limit_apply(struct gw_server *s, uint32_t want, unsigned n_partitions, unsigned n_sinks,
                 char *err, size_t errsz)
{
	unsigned fit;

	if (want == 0) {
		want = 4096; /* the documented default (config/cfg.h) */
	}
	fit = gw_conn_limit(want, s->fd_limit, n_partitions, n_sinks);
	if (fit == 0) {
		snprintf(err, errsz,
		         "the descriptor limit (RLIMIT_NOFILE %llu) leaves no room for client "
		         "connections next to the %u descriptors the gateway keeps for itself; "
		         "raise it (ulimit -n, systemd LimitNOFILE=)",
		         (unsigned long long)s->fd_limit,
		         GW_FD_RESERVE + n_partitions * GW_FD_PER_WORKER +
		                 n_sinks * GW_FD_PER_SINK);
		return GW_ERR_CONFIG;
	}
	if (fit < want) {
		gw_log(GW_LOG_WARN, "gw",
		       "limits.max_connections does not fit the descriptor limit; connections "
		       "over the lower figure are refused",
		       "max_connections=%u nofile=%llu accepted_max=%u", want,
		       (unsigned long long)s->fd_limit, fit);
	}
	s->max_conns = fit;
	return 0;
}

/* ---- shutdown ------------------------------------------------------------------------- */

void
gw_server_conn_gone(struct gw_server *s)
{
	if (s->stopping == 1 && s->n_conns == 0) {
		if (s->shutdown_timer != NULL) {
			evtimer_del(s->shutdown_timer);
		}
		gw_log(GW_LOG_INFO, "gw", "all connections closed; stopping workers", NULL);
		gw_supervisor_stop(s);
	}
}

static void
shutdown_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct gw_server *s = arg;

	(void)fd;
	(void)what;
	gw_log(GW_LOG_WARN, "gw", "shutdown deadline passed; closing connections", "connections=%u",
	       s->n_conns);
	gw_conn_free_all(s); /* the last one stops the workers */
}

static void
shutdown_begin(struct gw_server *s, int sig)
{
	if (s->stopping != 0) {
		/* A second signal: no more waiting for in-flight calls. */
		if (s->stopping == 1) {
			gw_log(GW_LOG_WARN, "gw", "second stop signal; closing connections now",
			       "signal=%d", sig);
			gw_conn_free_all(s);
		}
		return;
	}
	s->stopping = 1;
	gw_log(GW_LOG_INFO, "gw", "shutdown requested", "signal=%s connections=%u",
	       sig == SIGTERM  ? "SIGTERM"
	       : sig == SIGINT ? "SIGINT"
	                       : "other",
	       s->n_conns);
	if (s->listener != NULL) {
		evconnlistener_free(s->listener); /* new connections are refused by the kernel */
		s->listener = NULL;
	}
	timer_add_ms(s->shutdown_timer, GW_DRAIN_MS);
	gw_conn_shutdown_all(s);
	if (s->stopping == 1 && s->n_conns == 0) {
		gw_server_conn_gone(s);
	}
}

/* ---- reload --------------------------------------------------------------------------- */

static int
same_partitions(const struct gw_server *s, const struct cfg_daemon *n)
{
	unsigned i;

	if (n->n_partitions != s->n_workers) {
		return 0;
	}
	for (i = 0; i < n->n_partitions; i++) {
		const struct cfg_partition *p = &n->partitions[i];

		if (p->name == NULL || p->tenant == NULL ||
		    strcmp(p->name, s->parts[i].name) != 0 ||
		    strcmp(p->tenant, s->parts[i].tenant) != 0 || p->slot != s->parts[i].slot) {
			return 0;
		}
	}
	return 1;
}

static int
same_str(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static void
policy_install(struct gw_server *s, struct pol_policy *pol, const char *path, char *text,
               size_t len)
{
	char *p = path != NULL ? strdup(path) : NULL;

	free(s->policy_text);
	s->policy_text = text; /* transferred */
	s->policy_text_len = len;
	/* Workers decide key-level actions with the same text; a running worker gets it now,
	 * ahead of any request queued after this point. */
	gw_policy_push(s, NULL);

	/* Decisions are taken synchronously on this loop and copy what they keep
	 * (struct gw_decision): the old policy has no other holder and can go now. */
	pol_policy_free(s->policy);
	s->policy = pol;
	free(s->policy_path);
	s->policy_path = p;
	if (pol != NULL) {
		gw_log(GW_LOG_INFO, "policy", "policy in force", "file=%s name=%s statements=%zu",
		       path, pol_policy_name(pol), pol_policy_statement_count(pol));
	} else {
		gw_log(GW_LOG_INFO, "policy",
		       "no policy file: authenticated callers may use their own tenant's "
		       "partitions",
		       NULL);
	}
}

/* SIGHUP: a config that fails to load leaves the running one in force and says why. What
 * changes: principals, API keys, limits (for new connections), the TLS files and the policy
 * (atomically with the config: both or neither), and the audit signing key (an online
 * rotation, the last step: a failed one fails the reload). What needs a restart (and is
 * logged as such): the partition set, the listen address and the other audit settings. */
static void
reload(struct gw_server *s)
{
	struct cfg_daemon *n = NULL, *old;
	struct pol_policy *pol = NULL;
	SSL_CTX *ctx = NULL;
	char *text = NULL;
	size_t text_len = 0;
	char err[1024], q[1100];
	unsigned i, principals = 0;
	int r;

	gw_log(GW_LOG_INFO, "gw", "reload requested", "config=%s", s->config_path);
	if ((r = cfg_daemon_load(s->config_path, &n, err, sizeof(err))) != 0) {
		gw_log(GW_LOG_ERROR, "gw", "reload failed; keeping the running configuration",
		       "error=%s", gw_log_quote(err, q, sizeof(q)));
		return;
	}
	if ((r = gw_tls_ctx_new(n, &ctx, err, sizeof(err))) != 0) {
		gw_log(GW_LOG_ERROR, "gw", "reload failed; keeping the running configuration",
		       "error=%s", gw_log_quote(err, q, sizeof(q)));
		cfg_daemon_free(n);
		return;
	}
	if ((r = policy_open(n->policy, &pol, &text, &text_len, err, sizeof(err))) != 0) {
		gw_log(GW_LOG_ERROR, "policy",
		       "reload failed: policy does not load; keeping the running policy and "
		       "configuration",
		       "error=%s", gw_log_quote(err, q, sizeof(q)));
		gw_audit_policy_reload(s, n->policy, 0, err);
		SSL_CTX_free(ctx);
		cfg_daemon_free(n);
		return;
	}
	if (gw_audit_cfg_changed(n->audit, s->cfg->audit)) {
		gw_log(GW_LOG_WARN, "gw",
		       "audit changes need a restart; the running log and sinks stay", "dir=%s",
		       s->audit_dir != NULL ? s->audit_dir : "-");
	}
	if (!same_partitions(s, n)) {
		gw_log(GW_LOG_WARN, "gw",
		       "partition changes need a restart; the running partitions stay",
		       "running=%u configured=%u", s->n_workers, n->n_partitions);
	}
	if (!same_str(n->listen.address, s->cfg->listen.address) ||
	    n->listen.port != s->cfg->listen.port) {
		gw_log(GW_LOG_WARN, "gw", "listen changes need a restart", "listening=%s",
		       s->bound);
	}
	/* The running partitions and sinks stay (above), so do their descriptors. Last, as
	 * it writes records: a new audit signing key rotates the running log. */
	if ((r = conn_limit_apply(s, n->limits.max_connections, s->n_workers,
	                          s->cfg->audit != NULL ? s->cfg->audit->n_sinks : 0, err,
	                          sizeof(err))) != 0 ||
	    (r = gw_audit_key_reload(s, n, err, sizeof(err))) != 0) {
		gw_log(GW_LOG_ERROR, "gw", "reload failed; keeping the running configuration",
		       "error=%s", gw_log_quote(err, q, sizeof(q)));
		pol_policy_free(pol);
		free(text);
		SSL_CTX_free(ctx);
		cfg_daemon_free(n);
		return;
	}
	/* Connections copied what they need (principal, tenant, limits) at their hello, and
	 * their SSL objects hold a reference to the old context: both can go now. */
	old = s->cfg;
	s->cfg = n;
	proto_spin_init(&s->spin, n->busy_poll_us);
	cfg_daemon_free(old);
	SSL_CTX_free(s->ssl_ctx);
	s->ssl_ctx = ctx;
	policy_install(s, pol, n->policy, text, text_len);
	gw_audit_policy_reload(s, n->policy, 1,
	                       n->policy != NULL ? "policy reloaded" : "no policy");
	for (i = 0; i < n->n_tenants; i++) {
		principals += n->tenants[i].n_principals;
	}
	gw_log(GW_LOG_INFO, "gw", "configuration reloaded",
	       "tenants=%u principals=%u max_connections=%u", n->n_tenants, principals,
	       n->limits.max_connections);
}

/* ---- signals -------------------------------------------------------------------------- */

static void
signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct gw_server *s = arg;

	(void)what;
	switch (sig) {
	case SIGTERM:
	case SIGINT:
		shutdown_begin(s, (int)sig);
		break;
	case SIGHUP:
		if (!s->stopping) {
			reload(s);
		}
		break;
	case SIGCHLD:
		gw_supervisor_reap(s);
		break;
	default:
		break;
	}
}

/* ---- life ----------------------------------------------------------------------------- */

/*
 * The event loop. With epoll's changelist, libevent applies the epoll_ctl changes of one
 * loop iteration at once, just before epoll_wait, and an add and a delete of the same event
 * in between cancel out. Every reply and every forwarded request arms and then disarms
 * EV_WRITE on its socket; without the changelist that is two epoll_ctl calls each (measured:
 * 2.4 epoll_ctl per call at 16 calls in flight). Our callbacks never dup() a socket, the
 * case the changelist gets wrong (event_base_new_with_config(3)).
 */
static struct event_base *
loop_new(void)
{
	struct event_config *ec;
	struct event_base *base;

	if ((ec = event_config_new()) == NULL) {
		return NULL;
	}
	(void)event_config_set_flag(ec, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
	base = event_base_new_with_config(ec);
	event_config_free(ec);
	return base;
}

int
gw_server_new(struct cfg_daemon *cfg, const struct gw_opts *opts, struct gw_server **out, char *err,
              size_t errsz)
{
	struct gw_server *s = NULL;
	const char *lvl = getenv("HSMGATE_LOG_LEVEL");
	int r = GW_ERR_NOMEM;

	*out = NULL;
	if (lvl != NULL && strcmp(lvl, "debug") == 0) {
		gw_log_set_level(GW_LOG_DEBUG);
	}
	/* A client that disappears mid-write must be an error return, not a dead gateway. */
	(void)signal(SIGPIPE, SIG_IGN);
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		snprintf(err, errsz, "out of memory");
		goto out;
	}
	TAILQ_INIT(&s->conns);
	TAILQ_INIT(&s->staged);
	s->cfg = cfg;
	proto_spin_init(&s->spin, cfg->busy_poll_us);
	fd_limit_raise(s);
	if ((r = conn_limit_apply(s, cfg->limits.max_connections, cfg->n_partitions,
	                          cfg->audit != NULL ? cfg->audit->n_sinks : 0, err, errsz)) != 0) {
		goto out;
	}
	r = GW_ERR_NOMEM;
	if ((s->config_path = absolute_path(opts->config_path != NULL ? opts->config_path
	                                                              : cfg->path)) == NULL ||
	    (opts->ready_file != NULL && (s->ready_file = strdup(opts->ready_file)) == NULL)) {
		snprintf(err, errsz, "out of memory");
		goto out;
	}
	if ((r = worker_path_resolve(cfg, opts->worker_path, &s->worker_path, err, errsz)) != 0 ||
	    (r = gw_tls_ctx_new(cfg, &s->ssl_ctx, err, errsz)) != 0) {
		goto out;
	}
	r = GW_ERR_EVENT;
	/* The audit writer thread wakes the loop with event_active(). */
	if (evthread_use_pthreads() != 0) {
		snprintf(err, errsz, "libevent has no thread support");
		goto out;
	}
	if ((s->base = loop_new()) == NULL) {
		snprintf(err, errsz, "event_base_new failed");
		goto out;
	}
	if ((s->ev_term = evsignal_new(s->base, SIGTERM, signal_cb, s)) == NULL ||
	    (s->ev_int = evsignal_new(s->base, SIGINT, signal_cb, s)) == NULL ||
	    (s->ev_hup = evsignal_new(s->base, SIGHUP, signal_cb, s)) == NULL ||
	    (s->ev_chld = evsignal_new(s->base, SIGCHLD, signal_cb, s)) == NULL ||
	    (s->shutdown_timer = evtimer_new(s->base, shutdown_deadline_cb, s)) == NULL ||
	    (s->listen_retry = evtimer_new(s->base, listen_retry_cb, s)) == NULL ||
	    evsignal_add(s->ev_term, NULL) != 0 || evsignal_add(s->ev_int, NULL) != 0 ||
	    evsignal_add(s->ev_hup, NULL) != 0 || evsignal_add(s->ev_chld, NULL) != 0) {
		snprintf(err, errsz, "cannot set up signal handling");
		goto out;
	}
	if ((r = pol_request_new(&s->pol_req)) != 0 || (r = pol_decision_new(&s->pol_dec)) != 0) {
		snprintf(err, errsz, "out of memory");
		r = GW_ERR_NOMEM;
		goto out;
	}
	{
		struct pol_policy *pol = NULL;
		char *text = NULL;
		size_t text_len = 0;

		/* A policy that does not load stops the start: file:line:column in the message. */
		if ((r = policy_open(cfg->policy, &pol, &text, &text_len, err, errsz)) != 0) {
			goto out;
		}
		policy_install(s, pol, cfg->policy, text, text_len);
	}
	/* The audit log before anything is served: every request needs its event. */
	if ((r = gw_audit_open(s, err, errsz)) != 0) {
		goto out;
	}
	gw_audit_gateway(s, "start", NULL);
	/* Listening before the workers exist is harmless (connections wait in the loop, which
	 * is not running yet) and fails fast on a busy port before any process is forked. */
	if ((r = listen_open(s, err, errsz)) != 0 ||
	    (r = gw_supervisor_start(s, err, errsz)) != 0) {
		goto out;
	}
	if (s->ready_file != NULL && (r = ready_write(s, err, errsz)) != 0) {
		goto out;
	}
	gw_log(GW_LOG_INFO, "gw", "listening",
	       "address=%s gateway_id=%s partitions=%u worker=%s pid=%ld max_connections=%u "
	       "busy_poll_us=%u",
	       s->bound, cfg->gateway_id != NULL ? cfg->gateway_id : "-", s->n_workers,
	       s->worker_path, (long)getpid(), s->max_conns,
	       s->audit_sync ? 0 : cfg->busy_poll_us); /* gw_server_run: not with sync */
	*out = s;
	s = NULL; /* transferred */
	r = 0;
out:
	if (s != NULL) {
		s->cfg = NULL; /* still the caller's */
		gw_server_free(s);
	}
	return r;
}

static uint64_t
worker_calls_out(const struct gw_server *s)
{
	uint64_t n = 0;
	unsigned i;

	for (i = 0; i < s->n_workers; i++) {
		n += s->workers[i].n_inflight;
	}
	return n;
}

/* Whether the one call in flight, of all connections, is out at a worker. */
static int
one_call_out(const struct gw_server *s)
{
	return s->n_calls == 1 && worker_calls_out(s) == 1;
}

/* No call is out at a worker (the one that was has been answered). */
static int
worker_idle(const struct gw_server *s)
{
	return worker_calls_out(s) == 0;
}

static int
loop_ended(struct gw_server *s)
{
	return event_base_got_exit(s->base) || event_base_got_break(s->base);
}

/*
 * The loop with busy polling (busy_poll_us; gw_server_run uses it unless that is 0 or the
 * audit log is synchronous): event_base_dispatch, except that while the one call in flight
 * is out at a worker, the loop first polls (EVLOOP_NONBLOCK: other events are served
 * meanwhile) for up to the budget before it sleeps in epoll_wait. A short call's reply
 * comes back sooner than a sleeping process wakes up on a VM (docs/PERFORMANCE.md, "Busy
 * polling"). With more calls in flight, work comes without waiting for it, and the cores
 * are the workers' and the clients'; with durability sync a reply waits for an fdatasync
 * that takes several times as long, and polling cost one caller 6-10% of its calls per
 * second. The budget learns from the time between the call going out and its reply.
 */
static int
loop_polling(struct gw_server *s)
{
	uint64_t since = 0; /* when the loop began to wait for the one call out */
	int r;

	for (;;) {
		int one = one_call_out(s);
		uint64_t budget = proto_spin_budget(&s->spin);

		if (one && since == 0) {
			since = proto_now_ns();
		}
		while (one && proto_now_ns() - since < budget && !loop_ended(s)) {
			if (event_base_loop(s->base, EVLOOP_NONBLOCK) < 0) {
				return GW_ERR_EVENT;
			}
			one = one_call_out(s);
			(void)sched_yield(); /* a worker or client that waits for a core gets it */
		}
		if (loop_ended(s)) {
			return 0;
		}
		if (one || since == 0) {
			if ((r = event_base_loop(s->base, EVLOOP_ONCE)) < 0) {
				return GW_ERR_EVENT;
			}
			if (r == 1 || loop_ended(s)) {
				return 0; /* no events left, or loopexit */
			}
		}
		if (since != 0 && !one_call_out(s)) {
			if (worker_idle(s)) { /* its reply came */
				proto_spin_learn(&s->spin, proto_now_ns() - since);
			}
			since = 0;
		}
	}
}

int
gw_server_run(struct gw_server *s)
{
	int r;

	if (s->audit_sync || s->spin.max_ns == 0) {
		if (event_base_dispatch(s->base) < 0) {
			return GW_ERR_EVENT;
		}
	} else if ((r = loop_polling(s)) != 0) {
		return r;
	}
	gw_log(GW_LOG_INFO, "gw", "stopped",
	       "accepted=%llu refused_limit=%llu auth_ok=%llu "
	       "auth_failed=%llu frames_refused=%llu requests=%llu worker_exits=%llu",
	       (unsigned long long)s->stats.accepted, (unsigned long long)s->stats.refused_limit,
	       (unsigned long long)s->stats.auth_ok, (unsigned long long)s->stats.auth_failed,
	       (unsigned long long)s->stats.frames_refused, (unsigned long long)s->stats.requests,
	       (unsigned long long)s->stats.worker_exits);
	return 0;
}

void
gw_server_free(struct gw_server *s)
{
	if (s == NULL) {
		return;
	}
	s->stopping = 3; /* nothing below may start a shutdown step */
	gw_conn_free_all(s);
	gw_supervisor_free(s);
	if (s->audit != NULL) {
		gw_audit_gateway(s, "stop", NULL);
	}
	/* The final checkpoint; completions still queued are dropped with their tokens. */
	gw_audit_free(s);
	pol_policy_free(s->policy);
	pol_request_free(s->pol_req);
	pol_decision_free(s->pol_dec);
	free(s->policy_text);
	free(s->policy_path);
	if (s->listener != NULL) {
		evconnlistener_free(s->listener);
	}
	if (s->ev_term != NULL) {
		event_free(s->ev_term);
	}
	if (s->ev_int != NULL) {
		event_free(s->ev_int);
	}
	if (s->ev_hup != NULL) {
		event_free(s->ev_hup);
	}
	if (s->ev_chld != NULL) {
		event_free(s->ev_chld);
	}
	if (s->shutdown_timer != NULL) {
		event_free(s->shutdown_timer);
	}
	if (s->listen_retry != NULL) {
		event_free(s->listen_retry);
	}
	if (s->base != NULL) {
		event_base_free(s->base);
	}
	SSL_CTX_free(s->ssl_ctx);
	if (s->ready_file != NULL && s->bound[0] != '\0') {
		(void)unlink(s->ready_file);
	}
	cfg_daemon_free(s->cfg);
	free(s->config_path);
	free(s->ready_file);
	free(s->worker_path);
	free(s);
}
