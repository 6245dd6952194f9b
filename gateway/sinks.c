/*
 * gateway/sinks.c — the gateway's audit sinks (docs/AUDIT.md §8): one thread per sink runs
 * the audit library's runner (aud_sink_run, following the log) over the gateway's own log,
 * and the loop checks every second how far each one lags behind the log.
 *
 * Threads. A sink thread only does what the runner does: read the log's segment files,
 * talk to its destination, write its cursor. It never touches the loop, a connection or
 * the log writer, so an outage of a SIEM (a connect that hangs, a TLS error, a receiver
 * that answers 4xx) never slows serving. What a thread has to tell (delivery failures,
 * quarantined batches, its own restarts) goes into counters under its mutex; the loop's
 * tick turns them into audit events, at most one per episode. The one thing a thread asks
 * of the rest is how far the log is durable (aud_sink_options.durable), answered from
 * `log` under log_mu, which the loop clears before the log is closed or reopened.
 *
 * Spool limits. lag = (last durable seq + 1) - cursor, in records (aud_spool_check). At
 * spool_soft: one critical hsmgate.audit-sink.spool event and an ALERT line per episode,
 * and a normal one when the lag is back under. At spool_hard, for a required sink: the
 * gateway refuses new requests with CKR_DEVICE_ERROR, as when the log cannot be written
 * (gw_audit_usable), until the lag is back under the hard limit. Calls already in flight
 * finish and are recorded: the log is writable, only its growth is bounded.
 */
#include "gateway/gw_int.h"

#include <errno.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#define SINK_TICK_MS      1000  /* the spool check */
#define SINK_RESTART_MS   5000  /* a runner that stopped on a local failure starts again */
#define SINK_LOG_EVERY_MS 10000 /* at most one log line per sink this often (CRIT: always) */
#define SINK_DRAIN_MS     3000  /* shutdown: time the sinks get to deliver the last events */
#define SINK_JOIN_MS      3000  /* ... and to stop after that (a network timeout, at worst) */

struct gw_sink {
	struct gw_sinks *set;
	char *name, *url, *ca, *cert, *key, *token_file, *cursor_path, *quarantine, *hostname;
	uint64_t soft, hard;
	int required;
	struct aud_sink_options o; /* its strings are the copies above */
	pthread_t thr;
	int thr_started;

	pthread_mutex_t mu; /* guards the fields down to log_held */
	pthread_cond_t cv;  /* wakes a napping thread at stop */
	int mu_ok;
	struct aud_sink *as; /* the runner; NULL between a local failure and the next open */
	int stop;
	uint64_t cursor;   /* the cursor when `as` was last closed */
	uint64_t n_fail;   /* delivery failures the runner reported */
	uint64_t n_crit;   /* quarantined batches, and stops of the runner */
	char msg[256];     /* the latest report (printable ASCII) */
	uint64_t log_at;   /* monotonic ms of the last line logged */
	uint64_t log_held; /* lines not logged since (rate limit) */

	/* The loop's alone. */
	uint64_t seen_fail, seen_crit;
	int failing;          /* a failure episode is open */
	uint64_t fail_cursor; /* the cursor when it opened */
	int soft_on, hard_on; /* over the soft / hard limit (an episode is open) */
};

struct gw_sinks {
	struct gw_server *srv;
	struct gw_sink *v;
	unsigned n;
	unsigned n_hard; /* required sinks over their hard limit */
	struct event *tick;
	int stopped;            /* gw_sinks_stop ran */
	int leaked;             /* a thread did not stop: its sink stays allocated */
	pthread_mutex_t log_mu; /* guards log and durable */
	int log_mu_ok;
	struct aud_log *log;
	uint64_t durable; /* the last answer; UINT64_MAX: nothing durable yet */
};

static uint64_t
mono_ms(void)
{
	return proto_now_ns() / 1000000u;
}

/* ---- what a thread reports ---------------------------------------------------------------- */

/*
 * A line from the runner (aud_sink_log_fn) or from the thread itself. Counted for the
 * loop's events (LOG_CRIT: quarantine or a stopped runner; LOG_ERR, LOG_WARNING: a failed
 * delivery) and logged, at most one line per SINK_LOG_EVERY_MS: a destination that is down
 * is retried every few seconds and need not say so each time.
 */
static void
sink_report(struct gw_sink *k, int level, const char *msg)
{
	char clean[sizeof(k->msg)], more[64];
	uint64_t now = mono_ms(), held = 0;
	size_t i;
	int print;

	snprintf(clean, sizeof(clean), "%s", msg);
	for (i = 0; clean[i] != '\0'; i++) {
		if (clean[i] < 0x20 || clean[i] > 0x7e) {
			clean[i] = '?';
		}
	}
	pthread_mutex_lock(&k->mu);
	if (level <= LOG_CRIT) {
		k->n_crit++;
	} else if (level <= LOG_WARNING) {
		k->n_fail++;
	}
	if (level <= LOG_WARNING) {
		memcpy(k->msg, clean, sizeof(clean));
	}
	print = level <= LOG_CRIT || k->log_at == 0 || now - k->log_at >= SINK_LOG_EVERY_MS;
	if (print) {
		held = k->log_held;
		k->log_held = 0;
		k->log_at = now;
	} else {
		k->log_held++;
	}
	pthread_mutex_unlock(&k->mu);
	if (!print) {
		return;
	}
	more[0] = '\0';
	if (held > 0) {
		snprintf(more, sizeof(more), " not_logged=%" PRIu64, held);
	}
	gw_log(level <= LOG_ERR       ? GW_LOG_ERROR
	       : level <= LOG_WARNING ? GW_LOG_WARN
	                              : GW_LOG_INFO,
	       "audit-sink", clean, "sink=%s%s", k->name, more);
}

/* aud_sink_log_fn: runs on the sink's thread. */
static void
sink_log_cb(void *arg, int level, const char *msg)
{
	sink_report(arg, level, msg);
}

/* aud_sink_durable_fn: how far the log is durable; runs on the sink's thread. */
static uint64_t
sink_durable_cb(void *arg)
{
	struct gw_sinks *set = arg;
	uint64_t n;

	pthread_mutex_lock(&set->log_mu);
	if (set->log != NULL) {
		set->durable = aud_log_durable_seq(set->log);
	}
	n = set->durable;
	pthread_mutex_unlock(&set->log_mu);
	return n;
}

/* ---- the threads ---------------------------------------------------------------------------- */

/* Sleeps ms, or less when stopped; 1 when stopped. */
static int
sink_nap(struct gw_sink *k, uint64_t ms)
{
	struct timespec ts;
	int stop;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += (time_t)(ms / 1000);
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&k->mu);
	while (!k->stop && pthread_cond_timedwait(&k->cv, &k->mu, &ts) != ETIMEDOUT) {
	}
	stop = k->stop;
	pthread_mutex_unlock(&k->mu);
	return stop;
}

/*
 * Runs the sink until stopped. The runner retries delivery failures itself, with backoff;
 * it returns only when stopped or on a local failure (the cursor cannot be written, the log
 * cannot be read or is out of sequence), after which the thread reopens it a little later:
 * a sink never stays down for good while the gateway runs.
 */
static void *
sink_main(void *arg)
{
	struct gw_sink *k = arg;
	struct aud_sink *as;
	char msg[200];
	int r, stop;

	for (;;) {
		pthread_mutex_lock(&k->mu);
		as = k->as;
		stop = k->stop;
		pthread_mutex_unlock(&k->mu);
		if (stop) {
			break;
		}
		if (as == NULL) {
			if ((r = aud_sink_open(&as, &k->o)) != 0) {
				snprintf(msg, sizeof(msg),
				         "cannot open the sink: %s; retrying in %d s",
				         aud_strerror(r), SINK_RESTART_MS / 1000);
				sink_report(k, LOG_CRIT, msg);
				if (sink_nap(k, SINK_RESTART_MS)) {
					break;
				}
				continue;
			}
			/* Published under the lock, and stop looked at under it: gw_sinks_stop
			 * either sees this runner (and stops it) or this thread sees the stop. */
			pthread_mutex_lock(&k->mu);
			k->as = as;
			stop = k->stop;
			pthread_mutex_unlock(&k->mu);
			if (stop) {
				break;
			}
		}
		r = aud_sink_run(as);
		pthread_mutex_lock(&k->mu);
		stop = k->stop;
		if (!stop) {
			k->cursor = aud_sink_cursor(as);
			k->as = NULL;
		}
		pthread_mutex_unlock(&k->mu);
		if (stop) {
			break; /* `as` stays in k->as: gw_sinks_free closes it */
		}
		aud_sink_close(as);
		snprintf(msg, sizeof(msg), "the sink stopped: %s; restarting in %d s",
		         aud_strerror(r), SINK_RESTART_MS / 1000);
		sink_report(k, LOG_CRIT, msg);
		if (sink_nap(k, SINK_RESTART_MS)) {
			break;
		}
	}
	return NULL;
}

/* ---- the loop's spool check ----------------------------------------------------------------- */

static uint64_t
sink_cursor(struct gw_sink *k)
{
	uint64_t c;

	pthread_mutex_lock(&k->mu);
	c = k->as != NULL ? aud_sink_cursor(k->as) : k->cursor;
	pthread_mutex_unlock(&k->mu);
	return c;
}

/* Failure episodes: one event when deliveries start failing (warning) or a batch is
 * quarantined / the runner stops (critical, each time), one when the cursor moves again
 * without a new failure. */
static void
sink_check_failures(struct gw_server *s, struct gw_sink *k, uint64_t cursor)
{
	uint64_t n_fail, n_crit;
	char msg[sizeof(k->msg)], detail[400];

	pthread_mutex_lock(&k->mu);
	n_fail = k->n_fail;
	n_crit = k->n_crit;
	memcpy(msg, k->msg, sizeof(msg));
	pthread_mutex_unlock(&k->mu);
	if (n_crit > k->seen_crit || (n_fail > k->seen_fail && !k->failing)) {
		int crit = n_crit > k->seen_crit;

		snprintf(detail, sizeof(detail), "sink=%s %s", k->name, msg);
		gw_audit_sink_event(s, k->name, "fail", detail, 1,
		                    crit ? AUD_SEVERITY_CRITICAL : AUD_SEVERITY_WARNING);
		if (!k->failing) {
			k->failing = 1;
			k->fail_cursor = cursor;
		}
	} else if (k->failing && n_fail == k->seen_fail && cursor > k->fail_cursor) {
		k->failing = 0;
		snprintf(detail, sizeof(detail), "sink=%s delivering again", k->name);
		gw_audit_sink_event(s, k->name, "recover", detail, 0, AUD_SEVERITY_NORMAL);
		gw_log(GW_LOG_WARN, "audit-sink", "audit sink delivering again",
		       "sink=%s cursor=%" PRIu64, k->name, cursor);
	}
	k->seen_fail = n_fail;
	k->seen_crit = n_crit;
}

static void
sink_check_spool(struct gw_server *s, struct gw_sink *k, uint64_t head, uint64_t cursor)
{
	enum aud_spool_state st;
	uint64_t lag = 0;
	int over_soft, over_hard;
	char detail[300];

	st = aud_spool_check(head, cursor, k->soft, k->hard, &lag);
	over_hard = st == AUD_SPOOL_HARD;
	over_soft = st == AUD_SPOOL_SOFT || (over_hard && k->soft != 0);
	if (over_soft && !k->soft_on) {
		k->soft_on = 1;
		gw_log(GW_LOG_ERROR, "audit-sink",
		       "ALERT: audit sink over its soft spool limit; events wait in the log",
		       "sink=%s lag=%" PRIu64 " spool_soft=%" PRIu64 " spool_hard=%" PRIu64,
		       k->name, lag, k->soft, k->hard);
		snprintf(detail, sizeof(detail),
		         "sink=%s lag=%llu over the soft limit %llu (hard %llu)", k->name,
		         (unsigned long long)lag, (unsigned long long)k->soft,
		         (unsigned long long)k->hard);
		gw_audit_sink_event(s, k->name, "spool", detail, 1, AUD_SEVERITY_CRITICAL);
	}
	if (over_hard && !k->hard_on) {
		k->hard_on = 1;
		if (k->required) {
			k->set->n_hard++;
			gw_log(GW_LOG_ERROR, "audit-sink",
			       "ALERT: audit sink over its hard spool limit; "
			       "refusing requests with CKR_DEVICE_ERROR",
			       "sink=%s lag=%" PRIu64 " spool_hard=%" PRIu64, k->name, lag,
			       k->hard);
		} else {
			gw_log(GW_LOG_ERROR, "audit-sink",
			       "ALERT: audit sink over its hard spool limit; "
			       "not required, still serving",
			       "sink=%s lag=%" PRIu64 " spool_hard=%" PRIu64, k->name, lag,
			       k->hard);
		}
		snprintf(detail, sizeof(detail),
		         "sink=%s lag=%" PRIu64 " over the hard limit %" PRIu64 "%s", k->name, lag,
		         k->hard,
		         k->required ? ": refusing requests" : " (not required: still serving)");
		gw_audit_sink_event(s, k->name, "spool", detail, 1, AUD_SEVERITY_CRITICAL);
	}
	if (!over_hard && k->hard_on) {
		k->hard_on = 0;
		if (k->required) {
			k->set->n_hard--;
		}
		gw_log(GW_LOG_WARN, "audit-sink",
		       k->required ? "audit sink back under its hard spool limit; serving requests"
		                   : "audit sink back under its hard spool limit",
		       "sink=%s lag=%" PRIu64 " spool_hard=%" PRIu64, k->name, lag, k->hard);
		snprintf(detail, sizeof(detail),
		         "sink=%s lag=%" PRIu64 " back under the hard limit %" PRIu64, k->name, lag,
		         k->hard);
		gw_audit_sink_event(s, k->name, "spool", detail, 0, AUD_SEVERITY_NORMAL);
	}
	if (!over_soft && k->soft_on) {
		k->soft_on = 0;
		gw_log(GW_LOG_WARN, "audit-sink", "audit sink back under its soft spool limit",
		       "sink=%s lag=%" PRIu64 " spool_soft=%" PRIu64, k->name, lag, k->soft);
		snprintf(detail, sizeof(detail),
		         "sink=%s lag=%" PRIu64 " back under the soft limit %" PRIu64, k->name, lag,
		         k->soft);
		gw_audit_sink_event(s, k->name, "spool", detail, 0, AUD_SEVERITY_NORMAL);
	}
}

void
gw_sinks_check(struct gw_server *s)
{
	struct gw_sinks *set = s->sinks;
	uint64_t durable, head, cursor;
	unsigned i;

	/* A failed or reopening log: its own fail-closed is in force, the head is unknown and no
	 * event could be written; the sinks' states stay as they are until it is back. */
	if (set == NULL || s->audit == NULL || aud_log_failed(s->audit) != 0) {
		return;
	}
	durable = aud_log_durable_seq(s->audit);
	head = durable == UINT64_MAX ? 0 : durable + 1;
	for (i = 0; i < set->n; i++) {
		cursor = sink_cursor(&set->v[i]);
		sink_check_failures(s, &set->v[i], cursor);
		sink_check_spool(s, &set->v[i], head, cursor);
	}
}

static void
sinks_tick_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	gw_sinks_check(arg);
}

int
gw_sinks_over_hard(const struct gw_server *s)
{
	return s->sinks != NULL && s->sinks->n_hard > 0;
}

void
gw_sinks_set_log(struct gw_server *s, struct aud_log *log)
{
	struct gw_sinks *set = s->sinks;

	if (set == NULL || !set->log_mu_ok) {
		return;
	}
	pthread_mutex_lock(&set->log_mu);
	if (set->log != NULL) {
		set->durable = aud_log_durable_seq(set->log);
	}
	set->log = log;
	pthread_mutex_unlock(&set->log_mu);
}

/* ---- start and stop ------------------------------------------------------------------------ */

static int
dup_opt(char **dst, const char *src)
{
	if (src == NULL) {
		*dst = NULL;
		return 0;
	}
	return (*dst = strdup(src)) == NULL ? GW_ERR_NOMEM : 0;
}

/* The cursor's directory (the default <state_dir>/audit-sinks) on a first start. */
static void
cursor_dir_make(const char *cursor_path)
{
	char *copy = strdup(cursor_path);

	if (copy != NULL) {
		(void)mkdir(dirname(copy), 0700);
	}
	free(copy);
}

/* aud_sink_log_fn for --check: keeps the first error line (why[CHECK_WHY]) for the message. */
#define CHECK_WHY 512

static void
check_log_cb(void *arg, int level, const char *msg)
{
	char *why = arg;

	if (level <= LOG_ERR && why[0] == '\0') {
		snprintf(why, CHECK_WHY, "%s", msg);
	}
}

/* The options of sink c over the log in dir; the strings are c's. */
static void
sink_options(struct aud_sink_options *o, const struct cfg_audit_sink *c, const char *dir,
             const char *origin)
{
	aud_sink_options_init(o);
	o->log_dir = dir;
	o->url = c->url;
	o->cursor_path = c->cursor;
	o->origin = origin;
	o->ca_file = c->ca;
	o->cert_file = c->cert;
	o->key_file = c->key;
	o->token_file = c->token_file;
	o->quarantine_path = c->quarantine;
	o->hostname = c->hostname;
}

int
gw_sinks_check_config(const struct cfg_daemon *cfg, char *err, size_t errsz)
{
	const struct cfg_audit *a = cfg->audit;
	char origin[AUD_MAX_ORIGIN + 1], empty[] = "/tmp/hsmgated-check-XXXXXX", why[CHECK_WHY];
	const char *dir;
	struct stat st;
	unsigned i;
	int r = 0;

	if (a == NULL || !a->enabled || a->n_sinks == 0) {
		return 0;
	}
	gw_audit_origin(cfg->gateway_id != NULL ? cfg->gateway_id : "hsmgated", origin,
	                sizeof(origin));
	/* A first start has no log yet: the sinks then read an empty one. */
	dir = a->dir;
	if (stat(dir, &st) != 0) {
		if (mkdtemp(empty) == NULL) {
			snprintf(err, errsz, "cannot create a temporary directory: %s",
			         strerror(errno));
			return GW_ERR_CONFIG;
		}
		dir = empty;
	}
	for (i = 0; i < a->n_sinks && r == 0; i++) {
		const struct cfg_audit_sink *c = &a->sinks[i];
		struct aud_sink_options o;
		struct aud_sink *as = NULL;
		int e;

		sink_options(&o, c, dir, origin);
		why[0] = '\0';
		o.log = check_log_cb;
		o.log_arg = why;
		if ((e = aud_sink_open(&as, &o)) != 0) {
			snprintf(err, errsz, "audit sink %s (%s): cannot open: %s (cursor %s)%s%s",
			         c->name, c->url, aud_strerror(e), c->cursor,
			         why[0] != '\0' ? ": " : "", why);
			r = GW_ERR_CONFIG;
		}
		aud_sink_close(as);
	}
	if (dir == empty) {
		(void)rmdir(empty);
	}
	return r;
}

static int
sink_init(struct gw_server *s, struct gw_sink *k, const struct cfg_audit_sink *c, char *err,
          size_t errsz)
{
	struct cfg_audit_sink own = *c;
	pthread_condattr_t ca;
	int r;

	if ((r = dup_opt(&k->name, c->name)) != 0 || (r = dup_opt(&k->url, c->url)) != 0 ||
	    (r = dup_opt(&k->ca, c->ca)) != 0 || (r = dup_opt(&k->cert, c->cert)) != 0 ||
	    (r = dup_opt(&k->key, c->key)) != 0 ||
	    (r = dup_opt(&k->token_file, c->token_file)) != 0 ||
	    (r = dup_opt(&k->cursor_path, c->cursor)) != 0 ||
	    (r = dup_opt(&k->quarantine, c->quarantine)) != 0 ||
	    (r = dup_opt(&k->hostname, c->hostname)) != 0) {
		snprintf(err, errsz, "out of memory");
		return r;
	}
	k->soft = c->spool_soft;
	k->hard = c->spool_hard;
	k->required = c->required;
	if (pthread_condattr_init(&ca) != 0) {
		snprintf(err, errsz, "cannot create a condition variable");
		return GW_ERR_NOMEM;
	}
	(void)pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	if (pthread_mutex_init(&k->mu, NULL) != 0) {
		pthread_condattr_destroy(&ca);
		snprintf(err, errsz, "cannot create a mutex");
		return GW_ERR_NOMEM;
	}
	if (pthread_cond_init(&k->cv, &ca) != 0) {
		pthread_mutex_destroy(&k->mu);
		pthread_condattr_destroy(&ca);
		snprintf(err, errsz, "cannot create a condition variable");
		return GW_ERR_NOMEM;
	}
	pthread_condattr_destroy(&ca);
	k->mu_ok = 1;
	/* The options point at the sink's own copies: a reload frees the configuration. */
	own.url = k->url;
	own.ca = k->ca;
	own.cert = k->cert;
	own.key = k->key;
	own.token_file = k->token_file;
	own.cursor = k->cursor_path;
	own.quarantine = k->quarantine;
	own.hostname = k->hostname;
	sink_options(&k->o, &own, s->audit_dir, s->audit_origin);
	k->o.durable = sink_durable_cb;
	k->o.durable_arg = k->set;
	k->o.log = sink_log_cb;
	k->o.log_arg = k;
	cursor_dir_make(k->cursor_path);
	/* Opened here, before anything is served: a damaged cursor, a cursor of another log or
	 * an unreadable TLS file stops the start with its reason. Nothing connects yet. */
	if ((r = aud_sink_open(&k->as, &k->o)) != 0) {
		snprintf(err, errsz, "audit sink %s (%s): cannot open: %s (cursor %s)", k->name,
		         k->url, aud_strerror(r), k->cursor_path);
		k->as = NULL;
		return GW_ERR_CONFIG;
	}
	k->cursor = aud_sink_cursor(k->as);
	return 0;
}

int
gw_sinks_start(struct gw_server *s, char *err, size_t errsz)
{
	const struct cfg_audit *a = s->cfg->audit;
	struct gw_sinks *set;
	struct timeval tv = {SINK_TICK_MS / 1000, (SINK_TICK_MS % 1000) * 1000};
	unsigned i;
	int r;

	if (a == NULL || a->n_sinks == 0) {
		return 0;
	}
	if ((set = calloc(1, sizeof(*set))) == NULL ||
	    (set->v = calloc(a->n_sinks, sizeof(*set->v))) == NULL) {
		free(set);
		snprintf(err, errsz, "out of memory");
		return GW_ERR_NOMEM;
	}
	s->sinks = set;
	set->srv = s;
	set->durable = UINT64_MAX;
	if (pthread_mutex_init(&set->log_mu, NULL) != 0) {
		snprintf(err, errsz, "cannot create a mutex");
		return GW_ERR_NOMEM;
	}
	set->log_mu_ok = 1;
	set->log = s->audit;
	for (i = 0; i < a->n_sinks; i++) {
		set->v[i].set = set;
		set->n = i + 1;
		if ((r = sink_init(s, &set->v[i], &a->sinks[i], err, errsz)) != 0) {
			return r;
		}
	}
	for (i = 0; i < set->n; i++) {
		if (pthread_create(&set->v[i].thr, NULL, sink_main, &set->v[i]) != 0) {
			snprintf(err, errsz, "audit sink %s: cannot start its thread",
			         set->v[i].name);
			return GW_ERR_NOMEM;
		}
		set->v[i].thr_started = 1;
		gw_log(GW_LOG_INFO, "audit-sink", "audit sink started",
		       "sink=%s url=%s cursor=%s next=%" PRIu64 " spool_soft=%" PRIu64
		       " spool_hard=%" PRIu64 " required=%s",
		       set->v[i].name, set->v[i].url, set->v[i].cursor_path, set->v[i].cursor,
		       set->v[i].soft, set->v[i].hard, set->v[i].required ? "true" : "false");
	}
	if ((set->tick = event_new(s->base, -1, EV_PERSIST, sinks_tick_cb, s)) == NULL ||
	    event_add(set->tick, &tv) != 0) {
		snprintf(err, errsz, "cannot create the audit sinks' timer");
		return GW_ERR_EVENT;
	}
	return 0;
}

/* Shutdown: the log has its last events (gateway stop); give the sinks that are delivering
 * a moment to send them, so that a SIEM does not learn of the stop only at the next start. */
static void
sinks_drain(struct gw_server *s, struct gw_sinks *set)
{
	uint64_t ck = 0, deadline = mono_ms() + SINK_DRAIN_MS;
	unsigned i, behind;

	if (s->audit == NULL || aud_log_failed(s->audit) != 0 ||
	    aud_log_checkpoint(s->audit, &ck) != 0) {
		return;
	}
	for (;;) {
		behind = 0;
		for (i = 0; i < set->n; i++) {
			if (!set->v[i].failing && set->v[i].thr_started &&
			    sink_cursor(&set->v[i]) <= ck) {
				behind++;
			}
		}
		if (behind == 0 || mono_ms() >= deadline) {
			break;
		}
		usleep(20000);
	}
	if (behind > 0) {
		gw_log(GW_LOG_INFO, "audit-sink",
		       "audit sinks not caught up at shutdown; the rest is sent at the next start",
		       "behind=%u", behind);
	}
}

void
gw_sinks_stop(struct gw_server *s)
{
	struct gw_sinks *set = s->sinks;
	struct timespec ts;
	unsigned i;

	if (set == NULL || set->stopped) {
		return;
	}
	set->stopped = 1;
	if (set->tick != NULL) {
		event_del(set->tick);
	}
	sinks_drain(s, set);
	for (i = 0; i < set->n; i++) {
		struct gw_sink *k = &set->v[i];

		if (!k->mu_ok) {
			continue;
		}
		pthread_mutex_lock(&k->mu);
		k->stop = 1;
		if (k->as != NULL) {
			aud_sink_stop(k->as);
		}
		pthread_cond_broadcast(&k->cv);
		pthread_mutex_unlock(&k->mu);
	}
	for (i = 0; i < set->n; i++) {
		struct gw_sink *k = &set->v[i];

		if (!k->thr_started) {
			continue;
		}
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += SINK_JOIN_MS / 1000;
		/* A runner returns within ~50 ms of aud_sink_stop, or after a network timeout
		 * when it is inside a connect or write. One that does not is left running (and
		 * its sink allocated) rather than freed under it: the process is exiting. */
		if (pthread_timedjoin_np(k->thr, NULL, &ts) != 0) {
			gw_log(GW_LOG_WARN, "audit-sink", "audit sink thread did not stop in time",
			       "sink=%s", k->name);
			set->leaked = 1;
			continue;
		}
		k->thr_started = 0;
	}
	gw_sinks_set_log(s, NULL);
}

void
gw_sinks_free(struct gw_server *s)
{
	struct gw_sinks *set = s->sinks;
	unsigned i;

	if (set == NULL) {
		return;
	}
	gw_sinks_stop(s);
	if (set->tick != NULL) {
		event_free(set->tick);
		set->tick = NULL;
	}
	s->sinks = NULL;
	if (set->leaked) {
		return;
	}
	for (i = 0; i < set->n; i++) {
		struct gw_sink *k = &set->v[i];

		aud_sink_close(k->as);
		if (k->mu_ok) {
			pthread_cond_destroy(&k->cv);
			pthread_mutex_destroy(&k->mu);
		}
		free(k->name);
		free(k->url);
		free(k->ca);
		free(k->cert);
		free(k->key);
		free(k->token_file);
		free(k->cursor_path);
		free(k->quarantine);
		free(k->hostname);
	}
	if (set->log_mu_ok) {
		pthread_mutex_destroy(&set->log_mu);
	}
	free(set->v);
	free(set);
}
