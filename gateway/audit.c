/*
 * gateway/audit.c — the gateway's audit events and its side of the log's durability.
 *
 * One event per request (built when the request arrives, completed with the CK_RV and the
 * latency when its answer is known), one per refused authentication, and system events
 * (gateway start/stop, worker start/exit/restart, policy reload). docs/AUDIT.md ("The
 * gateway") is the contract.
 *
 * Durability. aud_log_append() never blocks; its done callback runs on the log's writer
 * thread. The callback only queues (token, seq, status) under s->audit_mu and wakes the loop
 * with event_active() (libevent is set up for threads in gw_server_new); the loop then hands
 * each completion to conn.c (gw_conn_audit_done), which releases the held reply or forwards
 * the held request. Nothing here touches a bufferevent off the loop thread.
 *
 * Fail closed. A failed append or a failed completion makes the gateway refuse requests
 * (CKR_DEVICE_ERROR) and log an operator alert; a timer then reopens the log on a helper
 * thread (closing a failed log and reopening it reads and repairs the log, which is disk
 * I/O the loop must not do) until writing works again.
 */
#include "gateway/gw_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define GW_AUDIT_RETRY_MS 1000

/* What a request's done callback carries back to the loop. */
struct gw_audit_token {
	struct gw_server *srv;
	uint64_t conn_id;
	uint32_t req_id;
};

struct gw_audit_done {
	struct gw_audit_token *token; /* NULL: a reopen finished (status = its result) */
	uint64_t seq;
	int status;
};

static uint64_t
elapsed_us(const struct timespec *start)
{
	struct timespec now;

	if (start == NULL || (start->tv_sec == 0 && start->tv_nsec == 0)) {
		return 0;
	}
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)(now.tv_sec - start->tv_sec) * 1000000u +
	       (uint64_t)((now.tv_nsec - start->tv_nsec) / 1000);
}

/* ---- completions: writer thread → loop ----------------------------------------------------- */

static void
done_push(struct gw_server *s, struct gw_audit_token *token, uint64_t seq, int status)
{
	int pushed = 0;

	pthread_mutex_lock(&s->audit_mu);
	if (s->audit_done_n == s->audit_done_cap) {
		size_t cap = s->audit_done_cap != 0 ? s->audit_done_cap * 2 : 256;
		struct gw_audit_done *q = realloc(s->audit_done, cap * sizeof(*q));

		if (q != NULL) {
			s->audit_done = q;
			s->audit_done_cap = cap;
		}
	}
	if (s->audit_done_n < s->audit_done_cap) {
		s->audit_done[s->audit_done_n].token = token;
		s->audit_done[s->audit_done_n].seq = seq;
		s->audit_done[s->audit_done_n].status = status;
		s->audit_done_n++;
		pushed = 1;
	}
	/* Inside the lock: gw_audit_free() takes it before freeing the event, so a thread that
	 * pushed can never wake a freed event. (No deadlock: the loop never holds libevent's
	 * base lock while it takes audit_mu.) Out of memory: the held reply is never released
	 * (the client's call times out); the token leaks rather than risk being used twice. */
	if (pushed && s->ev_audit_done != NULL) {
		event_active(s->ev_audit_done, EV_READ, 0);
	}
	pthread_mutex_unlock(&s->audit_mu);
}

/* aud_done_fn: runs on the writer thread (or the thread closing the log). */
static void
audit_done_cb(void *arg, uint64_t seq, int status)
{
	struct gw_audit_token *t = arg;

	done_push(t->srv, t, seq, status);
}

static void audit_failed(struct gw_server *s, int err, const char *what);

/* The loop's side: every queued completion, in the order the log reported them. */
static void
audit_done_ev(evutil_socket_t fd, short what, void *arg)
{
	struct gw_server *s = arg;
	struct gw_audit_done *q;
	size_t n, i;

	(void)fd;
	(void)what;
	pthread_mutex_lock(&s->audit_mu);
	q = s->audit_done;
	n = s->audit_done_n;
	s->audit_done = NULL;
	s->audit_done_n = 0;
	s->audit_done_cap = 0;
	pthread_mutex_unlock(&s->audit_mu);
	/* The replies this sync released go out together: one TLS write per connection. */
	gw_cork(s);
	for (i = 0; i < n; i++) {
		struct gw_audit_token *t = q[i].token;

		if (t == NULL) {
			gw_audit_reopened(s, q[i].status);
			continue;
		}
		if (q[i].status != 0) {
			audit_failed(s, q[i].status, "a record did not become durable");
		}
		if (s->stopping < 3) {
			gw_conn_audit_done(s, t->conn_id, t->req_id, q[i].seq, q[i].status);
		}
		free(t);
	}
	gw_uncork(s);
	free(q);
}

/* ---- failure and reopening ------------------------------------------------------------------ */

static void
audit_failed(struct gw_server *s, int err, const char *what)
{
	if (!s->audit_alerted) {
		s->audit_alerted = 1;
		/* The operator alert: requests are refused until the log is writable again. */
		gw_log(GW_LOG_ERROR, "audit",
		       "ALERT: audit log cannot be written; refusing requests with "
		       "CKR_DEVICE_ERROR",
		       "dir=%s what=\"%s\" error=\"%s\"", s->audit_dir != NULL ? s->audit_dir : "-",
		       what, aud_strerror(err));
	}
	if (s->audit_retry != NULL && !evtimer_pending(s->audit_retry, NULL) &&
	    !s->audit_reopening) {
		struct timeval tv = {GW_AUDIT_RETRY_MS / 1000, (GW_AUDIT_RETRY_MS % 1000) * 1000};

		evtimer_add(s->audit_retry, &tv);
	}
}

static void *
reopen_thread(void *arg)
{
	struct gw_server *s = arg;
	struct aud_log *log = NULL;
	int r;

	/* Closing a failed log runs its pending callbacks (each with the failure) and returns
	 * the failure; the new open repairs what the failed write left behind. */
	(void)aud_log_close(s->audit_old);
	s->audit_old = NULL;
	r = aud_log_open(&log, &s->audit_opts);
	pthread_mutex_lock(&s->audit_mu);
	s->audit_new = r == 0 ? log : NULL;
	pthread_mutex_unlock(&s->audit_mu);
	done_push(s, NULL, 0, r);
	return NULL;
}

static void
audit_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct gw_server *s = arg;
	pthread_attr_t attr;
	pthread_t th;

	(void)fd;
	(void)what;
	if (s->audit_reopening || s->stopping) {
		return;
	}
	s->audit_reopening = 1;
	s->audit_old = s->audit;
	s->audit = NULL;           /* requests are refused meanwhile */
	gw_sinks_set_log(s, NULL); /* the reopening thread closes the old log */
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&th, &attr, reopen_thread, s) != 0) {
		s->audit = s->audit_old;
		s->audit_old = NULL;
		gw_sinks_set_log(s, s->audit);
		s->audit_reopening = 0;
		audit_failed(s, AUD_ERR_NOMEM, "cannot start the reopening thread");
	}
	pthread_attr_destroy(&attr);
}

void
gw_audit_reopened(struct gw_server *s, int status)
{
	pthread_mutex_lock(&s->audit_mu);
	if (status == 0) {
		s->audit = s->audit_new;
	}
	s->audit_new = NULL;
	pthread_mutex_unlock(&s->audit_mu);
	s->audit_reopening = 0;
	if (status != 0 || s->audit == NULL) {
		gw_log(GW_LOG_ERROR, "audit", "ALERT: audit log still cannot be opened; retrying",
		       "dir=%s error=\"%s\"", s->audit_opts.dir, aud_strerror(status));
		s->audit_alerted = 1;
		audit_failed(s, status != 0 ? status : AUD_ERR_FAILED, "reopen");
		return;
	}
	s->audit_alerted = 0;
	gw_sinks_set_log(s, s->audit);
	gw_log(GW_LOG_WARN, "audit", "audit log writable again; serving requests", "dir=%s",
	       s->audit_opts.dir);
}

/* 1 when events can be appended; otherwise the caller refuses the request. */
static int
log_usable(struct gw_server *s)
{
	int r;

	if (s->audit == NULL) {
		audit_failed(s, AUD_ERR_FAILED, "the log is being reopened");
		return 0;
	}
	if ((r = aud_log_failed(s->audit)) != 0) {
		audit_failed(s, r, "the log failed");
		return 0;
	}
	return 1;
}

int
gw_audit_usable(struct gw_server *s)
{
	if (s->audit_off) {
		return 1;
	}
	/* A required sink over its hard spool limit (sinks.c logs that alert): the log could
	 * take more, but it must not grow further before the sink catches up. */
	if (gw_sinks_over_hard(s)) {
		return 0;
	}
	return log_usable(s);
}

/* ---- building events ---------------------------------------------------------------------------
 */

/* "hsm.crypto.sign" → object "crypto", verb "sign"; "hsm.partition.settings.read" → object
 * "partition-settings". AUDIT.md: object [a-z0-9-]+, verb [a-z0-9]+. */
static int
action_split(const char *action, char *object, size_t osz, char *verb, size_t vsz)
{
	const char *p, *dot;
	size_t i, n;

	if (action == NULL || strncmp(action, "hsm.", 4) != 0) {
		return -1;
	}
	p = action + 4;
	if ((dot = strrchr(p, '.')) == NULL || (size_t)(dot - p) >= osz || strlen(dot + 1) >= vsz) {
		return -1;
	}
	n = (size_t)(dot - p);
	for (i = 0; i < n; i++) {
		object[i] = p[i] == '.' ? '-' : p[i];
	}
	object[n] = '\0';
	snprintf(verb, vsz, "%s", dot + 1);
	return 0;
}

static enum aud_credential
cred_of(uint8_t cred)
{
	switch (cred) {
	case PROTO_CRED_CERT:
		return AUD_CRED_CERTIFICATE;
	case PROTO_CRED_APIKEY:
		return AUD_CRED_APIKEY;
	default:
		return AUD_CRED_NONE;
	}
}

static enum aud_initiator_kind
initiator_kind(const char *principal)
{
	const char *p = strchr(principal, '/');

	/* tenant/<t>/service/<n> */
	if (p != NULL && (p = strchr(p + 1, '/')) != NULL && strncmp(p, "/service/", 9) == 0) {
		return AUD_INITIATOR_SERVICE;
	}
	return AUD_INITIATOR_USER;
}

static int
set_common(struct gw_server *s, struct aud_event *ev)
{
	return aud_event_set_source(ev, s->audit_source_crn);
}

static enum aud_policy_result
policy_result(const struct gw_decision *d)
{
	switch (d->result) {
	case POL_ALLOWED:
		return AUD_POLICY_ALLOW;
	case POL_EXPLICIT_DENY:
		return AUD_POLICY_DENY;
	default:
		return AUD_POLICY_DEFAULT_DENY;
	}
}

int
gw_audit_request_event(struct gw_server *s, const struct proto_ctx *who, uint16_t call,
                       const struct gw_part *part, const struct gw_decision *d, uint64_t conn_id,
                       uint32_t req_id, struct aud_event **out)
{
	const char *action = gw_policy_action(call, NULL);
	const char *sids[GW_DECISION_MAX_SIDS];
	char object[64], verb[32], crn[160], ip[64], detail[160];
	struct aud_event *ev = NULL;
	unsigned i;
	int r;

	*out = NULL;
	if (s->audit_off) {
		return 0; /* no event: gw_audit_commit takes the NULL */
	}
	if (action_split(action, object, sizeof(object), verb, sizeof(verb)) != 0) {
		snprintf(object, sizeof(object), "request");
		snprintf(verb, sizeof(verb), "unknown");
	}
	if (part != NULL) {
		gw_partition_crn(part, crn, sizeof(crn));
	} else {
		snprintf(crn, sizeof(crn), "crn:hsmgate:%s", who->tenant);
	}
	proto_source_ip(who->source, ip, sizeof(ip));
	if ((r = aud_event_new(&ev, object, verb)) != 0 || (r = set_common(s, ev)) != 0 ||
	    (r = aud_event_set_initiator(ev, who->principal, NULL, initiator_kind(who->principal),
	                                 cred_of(who->cred), ip[0] != '\0' ? ip : NULL)) != 0 ||
	    (r = aud_event_set_target(ev, crn, part != NULL ? part->name : NULL,
	                              part != NULL ? AUD_TARGET_PARTITION : AUD_TARGET_GATEWAY)) !=
	            0 ||
	    (r = aud_event_set_correlation(ev, conn_id, req_id)) != 0 ||
	    (r = aud_event_set_data_event(ev, 1)) != 0) {
		goto out;
	}
	if (d != NULL && d->made) {
		for (i = 0; i < d->nsids; i++) {
			sids[i] = d->sids[i];
		}
		if ((r = aud_event_set_policy(ev, policy_result(d), sids, d->nsids)) != 0) {
			goto out;
		}
		if (d->shadow != d->result) {
			snprintf(detail, sizeof(detail), "shadow policy: %s%s%s",
			         pol_result_name((enum pol_result)d->shadow),
			         d->shadow_sid[0] != '\0' ? " by " : "", d->shadow_sid);
			if ((r = aud_event_set_detail(ev, detail)) != 0) {
				goto out;
			}
		}
	}
	*out = ev;
	ev = NULL; /* transferred */
	r = 0;
out:
	if (r != 0) {
		gw_log(GW_LOG_ERROR, "audit", "cannot build a request event",
		       "principal=%s call=%u error=\"%s\"", who->principal, call, aud_strerror(r));
	}
	aud_event_free(ev);
	return r;
}

int
gw_audit_commit(struct gw_server *s, struct aud_event *ev, int pending, CK_RV rv,
                const struct timespec *start, uint64_t conn_id, uint32_t req_id, int want_done,
                uint64_t *seq)
{
	struct gw_audit_token *t = NULL;
	int r;

	*seq = 0;
	if (s->audit_off) {
		aud_event_free(ev);
		return 0; /* and audit_sync is 0: the caller answers at once */
	}
	if (ev == NULL) {
		return AUD_ERR_INVALID;
	}
	/* Not gw_audit_usable: a call already in flight is recorded even while a sink is over
	 * its hard limit (that refuses new requests only). */
	if (!log_usable(s)) {
		r = AUD_ERR_FAILED;
		goto out;
	}
	if (pending) {
		r = aud_event_set_outcome(ev, AUD_OUTCOME_PENDING);
	} else if ((r = aud_event_set_ckrv(ev, rv)) == 0) {
		r = aud_event_set_latency(ev, elapsed_us(start));
	}
	if (r != 0) {
		goto out;
	}
	if (want_done) {
		if ((t = calloc(1, sizeof(*t))) == NULL) {
			r = AUD_ERR_NOMEM;
			goto out;
		}
		t->srv = s;
		t->conn_id = conn_id;
		t->req_id = req_id;
	}
	if ((r = aud_log_append(s->audit, ev, want_done ? audit_done_cb : NULL, t, seq)) != 0) {
		audit_failed(s, r, "append");
		goto out;
	}
	t = NULL; /* transferred: freed by audit_done_ev */
	r = 0;
out:
	free(t);
	aud_event_free(ev);
	return r;
}

void
gw_audit_refused(struct gw_server *s, const struct proto_ctx *who, uint16_t call, uint64_t conn_id,
                 uint32_t req_id, const struct timespec *start, const char *why)
{
	struct aud_event *ev = NULL;
	uint64_t seq;

	/* Nothing is recorded where nothing may be appended: a failed log, or a sink over its
	 * hard limit (whose point is that the log stops growing); the alerts cover those. */
	if (s->audit_off || s->audit == NULL || aud_log_failed(s->audit) != 0 ||
	    gw_sinks_over_hard(s)) {
		return;
	}
	if (gw_audit_request_event(s, who, call, NULL, NULL, conn_id, req_id, &ev) != 0 ||
	    aud_event_set_detail(ev, why) != 0) {
		aud_event_free(ev);
		return;
	}
	/* An ERROR frame counts as CKR_GENERAL_ERROR (AUDIT.md §7). Not waited for: the
	 * refusal serves nothing. */
	if (gw_audit_commit(s, ev, 0, CKR_GENERAL_ERROR, start, conn_id, req_id, 0, &seq) != 0) {
		return; /* the log has failed: gw_audit_commit raised the alert */
	}
}

/* A fire-and-forget event of the gateway itself. */
static void
system_event(struct gw_server *s, const char *object, const char *verb, const char *crn,
             enum aud_target_kind kind, const char *name, const char *detail, int failure,
             enum aud_severity severity)
{
	struct aud_event *ev = NULL;
	uint64_t seq;
	int r;

	if (s->audit == NULL || aud_log_failed(s->audit) != 0) {
		return;
	}
	if ((r = aud_event_new(&ev, object, verb)) != 0 || (r = set_common(s, ev)) != 0 ||
	    (r = aud_event_set_initiator(ev, "hsmgate", NULL, AUD_INITIATOR_SYSTEM, AUD_CRED_NONE,
	                                 NULL)) != 0 ||
	    (r = aud_event_set_target(ev, crn, name, kind)) != 0 ||
	    (detail != NULL && (r = aud_event_set_detail(ev, detail)) != 0) ||
	    (r = aud_event_set_outcome(ev, failure ? AUD_OUTCOME_FAILURE : AUD_OUTCOME_SUCCESS)) !=
	            0 ||
	    (severity != AUD_SEVERITY_AUTO && (r = aud_event_set_severity(ev, severity)) != 0) ||
	    (r = aud_log_append(s->audit, ev, NULL, NULL, &seq)) != 0) {
		gw_log(GW_LOG_ERROR, "audit", "cannot record a system event",
		       "action=hsmgate.%s.%s error=\"%s\"", object, verb, aud_strerror(r));
	}
	aud_event_free(ev);
}

void
gw_audit_gateway(struct gw_server *s, const char *verb, const char *detail)
{
	system_event(s, "gateway", verb, s->audit_source_crn, AUD_TARGET_GATEWAY, s->audit_origin,
	             detail, 0, AUD_SEVERITY_AUTO);
}

void
gw_audit_sink_event(struct gw_server *s, const char *sink, const char *verb, const char *detail,
                    int failure, enum aud_severity severity)
{
	char crn[300];

	snprintf(crn, sizeof(crn), "%s:audit-sink:%s", s->audit_source_crn, sink);
	system_event(s, "audit-sink", verb, crn, AUD_TARGET_AUDIT, sink, detail, failure, severity);
}

void
gw_audit_worker(struct gw_server *s, const struct gw_worker *w, const char *verb,
                const char *detail, int failure)
{
	char crn[160];

	gw_partition_crn(&w->part, crn, sizeof(crn));
	system_event(s, "partition-worker", verb, crn, AUD_TARGET_PARTITION, w->part.name, detail,
	             failure, AUD_SEVERITY_AUTO);
}

void
gw_audit_policy_reload(struct gw_server *s, const char *path, int ok, const char *detail)
{
	char crn[240], clean[200];
	size_t i;

	snprintf(crn, sizeof(crn), "%s:policy", s->audit_source_crn);
	/* The diagnostic is our own text (file:line:column, message); keep it printable. */
	snprintf(clean, sizeof(clean), "%s", detail != NULL ? detail : "");
	for (i = 0; clean[i] != '\0'; i++) {
		if (clean[i] < 0x20 || clean[i] > 0x7e) {
			clean[i] = '?';
		}
	}
	(void)path;
	system_event(s, "policy", "reload", crn, AUD_TARGET_POLICY, NULL,
	             clean[0] != '\0' ? clean : NULL, !ok, AUD_SEVERITY_AUTO);
}

void
gw_audit_auth_failure(struct gw_server *s, const char *source, uint8_t cred, const char *reason)
{
	struct aud_event *ev = NULL;
	char ip[64];
	uint64_t seq;
	int r;

	(void)reason; /* may quote a certificate subject: the log line has it, the event not */
	if (s->audit == NULL || aud_log_failed(s->audit) != 0) {
		return;
	}
	proto_source_ip(source, ip, sizeof(ip));
	if ((r = aud_event_new(&ev, "session", "connect")) != 0 || (r = set_common(s, ev)) != 0 ||
	    (r = aud_event_set_initiator(ev, "unauthenticated", NULL, AUD_INITIATOR_CERT,
	                                 cred_of(cred), ip[0] != '\0' ? ip : NULL)) != 0 ||
	    (r = aud_event_set_target(ev, s->audit_source_crn, NULL, AUD_TARGET_GATEWAY)) != 0 ||
	    (r = aud_event_set_detail(ev, "authentication failed")) != 0 ||
	    (r = aud_event_set_ckrv(ev, CKR_PIN_INCORRECT)) != 0 ||
	    (r = aud_log_append(s->audit, ev, NULL, NULL, &seq)) != 0) {
		gw_log(GW_LOG_ERROR, "audit", "cannot record an authentication failure",
		       "error=\"%s\"", aud_strerror(r));
	}
	aud_event_free(ev);
}

void
gw_audit_worker_event(struct gw_server *s, struct gw_worker *w, uint64_t conn_id,
                      const uint8_t *body, size_t len)
{
	/* STYLE rule 11: the less-trusted side requests, the owner decides. A worker can only
	 * report the policy decision of a request it is answering; the gateway checks that the
	 * request is in flight to this very worker and builds the event fields itself. */
	char action[64], sids[256], ref[64], *save = NULL, *tok;
	const char *list[GW_DECISION_MAX_SIDS];
	struct gw_inflight *slot;
	struct proto_cur c;
	enum aud_policy_result res;
	uint32_t req_id;
	uint8_t result;
	size_t n = 0;

	proto_cur_init(&c, body, len);
	if (proto_get_u32(&c, &req_id) != 0 || proto_get_string(&c, action, sizeof(action)) != 0 ||
	    proto_get_u8(&c, &result) != 0 || result > 2 ||
	    proto_get_string(&c, sids, sizeof(sids)) != 0 ||
	    proto_get_string(&c, ref, sizeof(ref)) != 0 || proto_cur_end(&c) != 0) {
		gw_log(GW_LOG_WARN, "audit", "malformed policy decision from a worker dropped",
		       "partition=%s bytes=%zu", w->part.name, len);
		return;
	}
	if ((slot = gw_conn_inflight_for(s, w, conn_id, req_id)) == NULL || slot->ev == NULL) {
		return; /* the connection or the call is gone: its event was already written */
	}
	for (tok = strtok_r(sids, ",", &save); tok != NULL && n < GW_DECISION_MAX_SIDS;
	     tok = strtok_r(NULL, ",", &save)) {
		list[n++] = tok;
	}
	res = result == 2   ? AUD_POLICY_ALLOW
	      : result == 1 ? AUD_POLICY_DENY
	                    : AUD_POLICY_DEFAULT_DENY;
	if (aud_event_set_policy(slot->ev, res, list, n) != 0 ||
	    (ref[0] != '\0' && aud_event_set_key_id(slot->ev, ref) != 0)) {
		gw_log(GW_LOG_WARN, "audit", "policy decision from a worker not recorded",
		       "partition=%s req=%u action=%s", w->part.name, req_id, action);
	}
}

/* ---- open and close
 * ------------------------------------------------------------------------------ */

/* [A-Za-z0-9._:/-] only (the log's origin); anything else becomes '-'. */
void
gw_audit_origin(const char *in, char *out, size_t outsz)
{
	size_t i;

	for (i = 0; in[i] != '\0' && i + 1 < outsz; i++) {
		char ch = in[i];

		out[i] = ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		          (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == ':' ||
		          ch == '/' || ch == '-')
		                 ? ch
		                 : '-';
	}
	out[i] = '\0';
	if (out[0] == '\0') {
		snprintf(out, outsz, "hsmgated");
	}
}

#define NOT_CURRENT_FMT                                                                            \
	"audit.signing_key %s is not the key in force in the audit log %s: if the log's key "      \
	"was rotated, configure the new key; to change keys, stop here and run hsmgate-audit "     \
	"rotate-key --log %s --key OLD.key --new-key %s"

/* The signing key: used when it exists, otherwise generated as PREFIX.key + PREFIX.pub —
 * but only for a log that has no checkpoint yet: a log's key changes only by a rotation
 * signed with the old key (AUDIT.md §2.4), never by starting with a fresh one. */
static int
key_ensure(const char *key_path, const char *dir, char *err, size_t errsz)
{
	char prefix[4096], *note = NULL;
	size_t n = strlen(key_path), len;
	int r;

	if (access(key_path, F_OK) == 0) {
		return 0;
	}
	if (aud_log_last_checkpoint(dir, &note, &len) == 0) {
		free(note);
		snprintf(err, errsz,
		         "audit.signing_key %s does not exist, but the audit log %s is signed "
		         "with a key already: restore that key, or make a new one (hsmgate-audit "
		         "keygen) and announce it with hsmgate-audit rotate-key --log %s --key "
		         "OLD.key --new-key NEW.key",
		         key_path, dir, dir);
		return GW_ERR_CONFIG;
	}
	if (n < 5 || strcmp(key_path + n - 4, ".key") != 0 || n - 4 >= sizeof(prefix)) {
		snprintf(err, errsz,
		         "audit.signing_key %s does not exist, and only a name ending in .key is "
		         "generated (or run: hsmgate-audit keygen --out PREFIX)",
		         key_path);
		return GW_ERR_CONFIG;
	}
	memcpy(prefix, key_path, n - 4);
	prefix[n - 4] = '\0';
	if ((r = aud_key_generate(prefix)) != 0) {
		snprintf(err, errsz, "cannot generate the audit signing key %s: %s", key_path,
		         aud_strerror(r));
		return GW_ERR_CONFIG;
	}
	gw_log(GW_LOG_WARN, "audit", "generated a new audit signing key",
	       "key=%s public_key=%s.pub", key_path, prefix);
	return 0;
}

int
gw_audit_open(struct gw_server *s, char *err, size_t errsz)
{
	const struct cfg_audit *a = s->cfg->audit;
	const char *gid = s->cfg->gateway_id != NULL ? s->cfg->gateway_id : "hsmgated";
	int r;

	if (pthread_mutex_init(&s->audit_mu, NULL) != 0) {
		snprintf(err, errsz, "cannot create a mutex");
		return GW_ERR_NOMEM;
	}
	s->audit_mu_ok = 1;
	gw_audit_origin(gid, s->audit_origin, sizeof(s->audit_origin));
	snprintf(s->audit_source_crn, sizeof(s->audit_source_crn), "crn:hsmgate:gateway:%s",
	         s->audit_origin);
	if (a == NULL || a->dir == NULL) {
		snprintf(err, errsz, "audit.dir is not set");
		return GW_ERR_CONFIG;
	}
	if (!a->enabled) {
		/* For measuring what audit costs (docs/BENCHMARKS.md), never for service. */
		s->audit_off = 1;
		s->audit_sync = 0;
		gw_log(GW_LOG_WARN, "audit",
		       "audit is OFF: no audit log, no events, no sinks (audit.enabled: false); "
		       "for measurements only, never in production",
		       "dir=%s sinks_not_started=%u", a->dir, a->n_sinks);
		return 0;
	}
	if ((s->audit_dir = strdup(a->dir)) == NULL ||
	    (a->signing_key != NULL
	             ? (s->audit_key = strdup(a->signing_key)) == NULL
	             : asprintf(&s->audit_key, "%s/audit-signing.key", s->cfg->state_dir) < 0)) {
		snprintf(err, errsz, "out of memory");
		return GW_ERR_NOMEM;
	}
	/* The parent of the log (state_dir) may not exist yet on a first start. */
	(void)mkdir(s->cfg->state_dir, 0700);
	if ((r = key_ensure(s->audit_key, s->audit_dir, err, errsz)) != 0) {
		return r;
	}
	aud_log_options_init(&s->audit_opts);
	s->audit_opts.dir = s->audit_dir;
	s->audit_opts.origin = s->audit_origin;
	s->audit_opts.key_path = s->audit_key;
	s->audit_opts.source_crn = s->audit_source_crn;
	s->audit_sync = a->durability == NULL || strcmp(a->durability, "async") != 0;
	s->audit_opts.durability = s->audit_sync ? AUD_DURABILITY_SYNC : AUD_DURABILITY_ASYNC;
	if (a->checkpoint_events != 0) {
		s->audit_opts.checkpoint_every = a->checkpoint_events;
	}
	if (a->checkpoint_seconds != 0) {
		s->audit_opts.checkpoint_ms = a->checkpoint_seconds * 1000u;
	}
	if ((s->ev_audit_done = event_new(s->base, -1, 0, audit_done_ev, s)) == NULL ||
	    (s->audit_retry = evtimer_new(s->base, audit_retry_cb, s)) == NULL) {
		snprintf(err, errsz, "cannot create the audit events");
		return GW_ERR_EVENT;
	}
	/* Reading and checking the existing log is disk I/O: done here, before the loop runs. */
	if ((r = aud_log_open(&s->audit, &s->audit_opts)) != 0) {
		if (r == AUD_ERR_KEY_NOT_CURRENT) {
			/* Never start a new key silently: the log must announce it first. */
			snprintf(err, errsz, NOT_CURRENT_FMT, s->audit_key, s->audit_dir,
			         s->audit_dir, s->audit_key);
		} else {
			snprintf(err, errsz, "cannot open the audit log %s: %s", s->audit_dir,
			         aud_strerror(r));
		}
		s->audit = NULL;
		return GW_ERR_IO;
	}
	gw_log(GW_LOG_INFO, "audit", "audit log open", "dir=%s origin=%s durability=%s key=%s",
	       s->audit_dir, s->audit_origin, s->audit_sync ? "sync" : "async", s->audit_key);
	return gw_sinks_start(s, err, errsz);
}

static int
str_differ(const char *a, const char *b)
{
	return (a == NULL) != (b == NULL) || (a != NULL && strcmp(a, b) != 0);
}

int
gw_audit_cfg_changed(const struct cfg_audit *a, const struct cfg_audit *b)
{
	unsigned i;

	if (a->enabled != b->enabled || str_differ(a->dir, b->dir) ||
	    str_differ(a->durability, b->durability) ||
	    a->checkpoint_events != b->checkpoint_events ||
	    a->checkpoint_seconds != b->checkpoint_seconds || a->n_sinks != b->n_sinks) {
		return 1;
	}
	for (i = 0; i < a->n_sinks; i++) {
		const struct cfg_audit_sink *x = &a->sinks[i], *y = &b->sinks[i];

		if (str_differ(x->name, y->name) || str_differ(x->url, y->url) ||
		    str_differ(x->ca, y->ca) || str_differ(x->cert, y->cert) ||
		    str_differ(x->key, y->key) || str_differ(x->token_file, y->token_file) ||
		    str_differ(x->cursor, y->cursor) || str_differ(x->quarantine, y->quarantine) ||
		    str_differ(x->hostname, y->hostname) || x->spool_soft != y->spool_soft ||
		    x->spool_hard != y->spool_hard || x->required != y->required) {
			return 1;
		}
	}
	return 0;
}

int
gw_audit_key_reload(struct gw_server *s, const struct cfg_daemon *n, char *err, size_t errsz)
{
	const struct cfg_audit *a = n->audit;
	char *path = NULL, *keep;
	uint64_t seq = 0;
	unsigned mode;
	int r;

	if (s->audit == NULL || a == NULL || !a->enabled || str_differ(a->dir, s->audit_dir)) {
		return 0;
	}
	if (a->signing_key != NULL ? (path = strdup(a->signing_key)) == NULL
	                           : asprintf(&path, "%s/audit-signing.key", n->state_dir) < 0) {
		snprintf(err, errsz, "out of memory");
		return GW_ERR_NOMEM;
	}
	if (strcmp(path, s->audit_key) == 0) {
		free(path);
		return 0;
	}
	/* Unlike at a first start, a key for a rotation is never generated: its public half
	 * must reach the auditors first (hsmgate-audit keygen). */
	if ((r = aud_key_file_private(path, &mode)) != 0) {
		if (r == AUD_ERR_IO) {
			snprintf(err, errsz,
			         "audit.signing_key %s: %s (a new key for a rotation must exist: "
			         "make it with hsmgate-audit keygen)",
			         path, strerror(errno));
		} else {
			snprintf(err, errsz,
			         "audit.signing_key %s must be a regular file that only its owner "
			         "can use (mode 0600; it is %04o)",
			         path, mode);
		}
		free(path);
		return GW_ERR_CONFIG;
	}
	if ((r = aud_log_rotate(s->audit, path, &seq)) != 0) {
		snprintf(err, errsz,
		         "audit.signing_key %s: cannot rotate the audit log %s to it: %s", path,
		         s->audit_dir,
		         r == AUD_ERR_INVALID ? "it is the key in force or a key this log retired"
		                              : aud_strerror(r));
		free(path);
		if (aud_log_failed(s->audit) != 0) {
			audit_failed(s, r, "the key rotation's records cannot be written");
		}
		return GW_ERR_CONFIG;
	}
	keep = s->audit_key;
	s->audit_key = path;
	s->audit_opts.key_path = path;
	gw_log(GW_LOG_WARN, "audit", "audit signing key rotated online",
	       "dir=%s old_key=%s new_key=%s rotation_seq=%llu", s->audit_dir, keep, path,
	       (unsigned long long)seq);
	free(keep);
	return 0;
}

void
gw_audit_close(struct gw_server *s)
{
	int r;

	/* The sinks first: they deliver what the log holds, and must not ask a closed log
	 * how far it is durable. */
	gw_sinks_stop(s);
	if (s->audit != NULL) {
		if ((r = aud_log_close(s->audit)) != 0) {
			gw_log(GW_LOG_ERROR, "audit", "audit log closed with an error",
			       "dir=%s error=\"%s\"", s->audit_dir, aud_strerror(r));
		} else {
			gw_log(GW_LOG_INFO, "audit", "audit log closed", "dir=%s", s->audit_dir);
		}
		s->audit = NULL;
	}
	/* A reopen still running owns audit_old and will post its result: wait for it. */
	while (s->audit_reopening) {
		struct gw_audit_done *q;
		size_t n, i;
		int got = 0;

		pthread_mutex_lock(&s->audit_mu);
		q = s->audit_done;
		n = s->audit_done_n;
		for (i = 0; i < n; i++) {
			if (q[i].token == NULL) {
				got = 1;
			}
		}
		pthread_mutex_unlock(&s->audit_mu);
		if (got) {
			s->audit_reopening = 0;
			if (s->audit_new != NULL) {
				(void)aud_log_close(s->audit_new);
				s->audit_new = NULL;
			}
			break;
		}
		usleep(10000);
	}
}

void
gw_audit_free(struct gw_server *s)
{
	size_t i;

	gw_audit_close(s);
	gw_sinks_free(s);
	if (s->audit_mu_ok) {
		pthread_mutex_lock(&s->audit_mu);
		for (i = 0; i < s->audit_done_n; i++) {
			free(s->audit_done[i].token);
		}
		free(s->audit_done);
		s->audit_done = NULL;
		s->audit_done_n = 0;
		pthread_mutex_unlock(&s->audit_mu);
	}
	if (s->ev_audit_done != NULL) {
		struct event *ev = s->ev_audit_done;

		if (s->audit_mu_ok) {
			pthread_mutex_lock(&s->audit_mu);
		}
		s->ev_audit_done = NULL;
		if (s->audit_mu_ok) {
			pthread_mutex_unlock(&s->audit_mu);
		}
		event_free(ev);
	}
	if (s->audit_retry != NULL) {
		event_free(s->audit_retry);
		s->audit_retry = NULL;
	}
	if (s->audit_mu_ok) {
		pthread_mutex_destroy(&s->audit_mu);
		s->audit_mu_ok = 0;
	}
	free(s->audit_dir);
	free(s->audit_key);
	s->audit_dir = NULL;
	s->audit_key = NULL;
}
