/*
 * tools/hsmgate-bench/audit.c — the in-process operations: the audit log of audit/ (libaud)
 * driven directly, with no PKCS #11 module, the way hsmgated drives it.
 *
 * audit-append. T threads each build the event the gateway writes for a signing request
 * (initiator, target, policy block, correlation, latency; about 1 KiB of JSON) and append it
 * with aud_log_append() to a fresh log in a temporary directory, opened with the defaults of
 * aud_log_options_init(): durability sync (a record is reported only after the fdatasync
 * that covers it), group commit, a checkpoint every 1,000 records or 10 s. Each thread keeps
 * up to K records in flight — appended, not yet durable — like a gateway holding K answers
 * for their records; at K it waits for its oldest. An operation is one event: timed from the
 * aud_log_append() call to its done callback (append → durable), counted when both fall in
 * the measured window. Afterwards the whole log is verified (aud_log_verify): a log that does
 * not verify is a wrong result.
 *
 * audit-verify. Writes a log of N events (--audit-events) the same way, then runs the
 * streaming verifier of `hsmgate-audit verify` (aud_log_verify: every leaf, chain, Merkle
 * root and checkpoint signature) over it, pass after pass, for --warmup and then --duration
 * seconds (at least one pass each; the log is in the page cache after the first). ops/s =
 * records verified / time of the counted passes; the latency columns are one whole pass.
 */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "audit/audit.h"
#include "tools/hsmgate-bench/bench.h"

#define BENCH_ORIGIN "hsmgate.bench/audit/hsmgated-bench"

/* A temporary directory holding the checkpoint key pair and the log directory. */
struct audit_tmp {
	char root[4096];
	char key_prefix[4200];
	char key[4300];
	char pub[4300];
	char log[4300];
};

static int
tmp_create(const char *base, struct audit_tmp *t)
{
	const char *b = base != NULL ? base : getenv("TMPDIR");

	memset(t, 0, sizeof(*t));
	if (b == NULL || *b == '\0') {
		b = "/tmp";
	}
	if ((size_t)snprintf(t->root, sizeof(t->root), "%s/hsmgate-bench-audit-XXXXXX", b) >=
	            sizeof(t->root) ||
	    mkdtemp(t->root) == NULL) {
		return BENCH_ERR_SYS;
	}
	snprintf(t->key_prefix, sizeof(t->key_prefix), "%s/checkpoint", t->root);
	snprintf(t->key, sizeof(t->key), "%s.key", t->key_prefix);
	snprintf(t->pub, sizeof(t->pub), "%s.pub", t->key_prefix);
	snprintf(t->log, sizeof(t->log), "%s/log", t->root);
	return 0;
}

/* Removes the log directory (flat: segments and LOCK), the key pair and the root. */
static void
tmp_remove(const struct audit_tmp *t)
{
	char path[8600];
	struct dirent *de;
	DIR *d;

	if (t->root[0] == '\0') {
		return;
	}
	if ((d = opendir(t->log)) != NULL) {
		while ((de = readdir(d)) != NULL) {
			if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) {
				continue;
			}
			snprintf(path, sizeof(path), "%s/%s", t->log, de->d_name);
			(void)unlink(path);
		}
		closedir(d);
		(void)rmdir(t->log);
	}
	(void)unlink(t->key);
	(void)unlink(t->pub);
	(void)rmdir(t->root);
}

static int
log_open(const struct audit_tmp *t, struct aud_log **log)
{
	struct aud_log_options o;

	/* The defaults are what hsmgated runs with unless configured otherwise. */
	aud_log_options_init(&o);
	o.dir = t->log;
	o.origin = BENCH_ORIGIN;
	o.key_path = t->key;
	return aud_log_open(log, &o);
}

/*
 * The event of one signing request as gateway/audit.c builds it (gw_audit_request_event,
 * the worker's policy decision with its key id, then gw_audit_commit): a certificate user,
 * the partition as target, a policy block, the correlation id, the CK_RV and the latency.
 */
static int
build_event(unsigned thread, uint64_t i, struct aud_event **evp)
{
	static const char *const sids[] = {"allow-sign-bench"};
	struct aud_event *ev = NULL;
	int r;

	*evp = NULL;
	if ((r = aud_event_new(&ev, "crypto", "sign")) != 0 ||
	    (r = aud_event_set_source(ev, "crn:hsmgate:gateway:hsmgated-bench")) != 0 ||
	    (r = aud_event_set_initiator(ev, "tenant/bench/user/bench", NULL, AUD_INITIATOR_USER,
	                                 AUD_CRED_CERTIFICATE, "127.0.0.1")) != 0 ||
	    (r = aud_event_set_target(ev, "crn:hsmgate:bench:partition:bench", "bench",
	                              AUD_TARGET_PARTITION)) != 0 ||
	    (r = aud_event_set_correlation(ev, thread + 1, (uint32_t)i)) != 0 ||
	    (r = aud_event_set_data_event(ev, 1)) != 0 ||
	    (r = aud_event_set_policy(ev, AUD_POLICY_ALLOW, sids, 1)) != 0 ||
	    (r = aud_event_set_key_id(ev, "k-5f0e7c1d2a9b4c3e8d7f6a5b4c3d2e1f")) != 0 ||
	    (r = aud_event_set_ckrv(ev, 0 /* CKR_OK */)) != 0 ||
	    (r = aud_event_set_latency(ev, 180 + i % 97)) != 0) {
		aud_event_free(ev);
		return r;
	}
	*evp = ev;
	return 0;
}

static size_t
event_size(void)
{
	struct aud_event *ev = NULL;
	char *json = NULL;
	size_t len = 0;

	if (build_event(0, 12345, &ev) == 0 && aud_event_encode(ev, &json, &len) != 0) {
		len = 0;
	}
	free(json);
	aud_event_free(ev);
	return len;
}

static double
cpu_seconds(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void
sleep_until_ns(uint64_t t)
{
	struct timespec ts = {(time_t)(t / 1000000000u), (long)(t % 1000000000u)};

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
		continue;
	}
}

static void fail(struct bench_local_result *res, int status, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static void
fail(struct bench_local_result *res, int status, const char *fmt, ...)
{
	va_list ap;

	if (res->status != BENCH_LOCAL_OK) {
		return; /* the first failure is the one reported */
	}
	res->status = status;
	va_start(ap, fmt);
	vsnprintf(res->msg, sizeof(res->msg), fmt, ap);
	va_end(ap);
}

/* Verifies the log in t with the streaming verifier; 0 and the record count, or the error. */
static int
verify_log(const struct audit_tmp *t, uint64_t *records, char *detail, size_t detail_len)
{
	struct aud_verify_options o;
	struct aud_verify_result res;
	int r;

	aud_verify_options_init(&o);
	o.dir = t->log;
	o.pubkey_path = t->pub;
	r = aud_log_verify(&o, &res);
	*records = res.records;
	if (r != 0) {
		snprintf(detail, detail_len, "%s: seq %llu %s: %s", aud_strerror(r),
		         (unsigned long long)res.seq, aud_damage_name(res.damage), res.detail);
	}
	return r;
}

/* ---- audit-append ----------------------------------------------------------------------- */

struct append_run {
	struct aud_log *log;
	uint64_t t_measure, t_end;
	atomic_int stop;
	/* Written by the log's writer thread only (the done callback); read after the close,
	 * whose join orders it. */
	struct bench_hist hist;
	int bad_status;
};

struct appender {
	pthread_t thread;
	unsigned id;
	struct append_run *run;
	unsigned k;
	int err;       /* the failing aud_* call's error, 0 if none */
	char what[64]; /* which call */
};

/* The run whose log is open. Operations run one at a time, and the done callback's one
 * argument carries the record's start time instead of a pointer: nothing per record has to
 * outlive the append, so an appender never waits for a callback, only for durability. */
static struct append_run *append_current;

static void
append_done(void *arg, uint64_t seq, int status)
{
	struct append_run *run = append_current;
	uint64_t t0 = (uint64_t)(uintptr_t)arg, now = bench_now_ns();

	(void)seq;
	if (status != 0 && run->bad_status == 0) {
		run->bad_status = status;
	}
	if (status == 0 && t0 >= run->t_measure && now <= run->t_end) {
		bench_hist_add(&run->hist, now - t0);
	}
}

static void *
appender_main(void *arg)
{
	struct appender *a = arg;
	struct append_run *run = a->run;
	uint64_t *seqs, i;
	int r;

	if ((seqs = calloc(a->k, sizeof(*seqs))) == NULL) {
		a->err = AUD_ERR_NOMEM;
		snprintf(a->what, sizeof(a->what), "calloc");
		return NULL;
	}
	for (i = 0; !atomic_load_explicit(&run->stop, memory_order_relaxed); i++) {
		struct aud_event *ev = NULL;
		uint64_t t0;

		/* K in flight: wait until the oldest is durable (aud_log_wait returns at once if
		 * it already is). */
		if (i >= a->k && (r = aud_log_wait(run->log, seqs[i % a->k])) != 0) {
			a->err = r;
			snprintf(a->what, sizeof(a->what), "aud_log_wait");
			break;
		}
		if ((r = build_event(a->id, i, &ev)) != 0) {
			a->err = r;
			snprintf(a->what, sizeof(a->what), "building the event");
			break;
		}
		t0 = bench_now_ns();
		r = aud_log_append(run->log, ev, append_done, (void *)(uintptr_t)t0,
		                   &seqs[i % a->k]);
		aud_event_free(ev);
		if (r != 0) {
			a->err = r;
			snprintf(a->what, sizeof(a->what), "aud_log_append");
			break;
		}
	}
	free(seqs);
	return NULL;
}

static int
audit_append_run(const struct bench_local_args *args, struct bench_local_result *res)
{
	struct append_run *run = NULL;
	struct appender *as = NULL;
	struct audit_tmp t;
	char detail[400];
	uint64_t now, records;
	unsigned n = args->threads, i, started = 0;
	double cpu0 = 0;
	int r;

	memset(res, 0, sizeof(*res));
	if (tmp_create(args->dir, &t) != 0) {
		fail(res, BENCH_LOCAL_FAILED, "cannot create a temporary directory in %s: %s",
		     args->dir != NULL ? args->dir : "$TMPDIR", strerror(errno));
		return 0;
	}
	if ((run = calloc(1, sizeof(*run))) == NULL || (as = calloc(n, sizeof(*as))) == NULL) {
		r = BENCH_ERR_SYS;
		goto out;
	}
	atomic_init(&run->stop, 0);
	append_current = run;
	if ((r = aud_key_generate(t.key_prefix)) != 0 || (r = log_open(&t, &run->log)) != 0) {
		fail(res, BENCH_LOCAL_FAILED, "opening a log in %s: %s", t.log, aud_strerror(r));
		r = 0;
		goto out;
	}
	now = bench_now_ns();
	run->t_measure = now + (uint64_t)(args->warmup * 1e9);
	run->t_end = run->t_measure + (uint64_t)(args->duration * 1e9);
	for (i = 0; i < n; i++) {
		as[i].id = i;
		as[i].run = run;
		as[i].k = args->inflight;
		if (pthread_create(&as[i].thread, NULL, appender_main, &as[i]) != 0) {
			break;
		}
		started++;
	}
	if (started < n) {
		fail(res, BENCH_LOCAL_FAILED, "could only start %u of %u threads", started, n);
		atomic_store(&run->stop, 1);
	} else {
		sleep_until_ns(run->t_measure);
		cpu0 = cpu_seconds();
		sleep_until_ns(run->t_end);
		res->cpu_s = cpu_seconds() - cpu0;
		atomic_store(&run->stop, 1);
	}
	for (i = 0; i < started; i++) {
		pthread_join(as[i].thread, NULL);
		if (as[i].err != 0) {
			fail(res, BENCH_LOCAL_FAILED, "%s: %s (thread %u)", as[i].what,
			     aud_strerror(as[i].err), i);
		}
	}
	/* The close drains the queue (every callback runs) and writes the final checkpoint. */
	if ((r = aud_log_close(run->log)) != 0) {
		fail(res, BENCH_LOCAL_FAILED, "aud_log_close: %s", aud_strerror(r));
	}
	run->log = NULL;
	append_current = NULL;
	if (run->bad_status != 0) {
		fail(res, BENCH_LOCAL_FAILED, "a record's callback said %s",
		     aud_strerror(run->bad_status));
	}
	res->hist = run->hist;
	res->calls = run->hist.count;
	res->secs = args->duration;
	if (res->status == BENCH_LOCAL_OK) {
		/* The log must hold what was appended and verify, or the figure is void. */
		if ((r = verify_log(&t, &records, detail, sizeof(detail))) != 0) {
			fail(res, BENCH_LOCAL_WRONG, "the written log does not verify: %s", detail);
		} else if (records < res->calls) {
			fail(res, BENCH_LOCAL_WRONG,
			     "the log holds %llu records, %llu were counted",
			     (unsigned long long)records, (unsigned long long)res->calls);
		}
	}
	snprintf(res->note, sizeof(res->note), "sync, %zu-byte events, checked by verify",
	         event_size());
	r = 0;
out:
	if (run != NULL && run->log != NULL) {
		(void)aud_log_close(run->log);
	}
	free(as);
	free(run);
	tmp_remove(&t);
	return r;
}

/* ---- audit-verify ------------------------------------------------------------------------ */

/* Appends n events from one thread, keeping at most `window` in flight. */
static int
write_events(struct aud_log *log, uint64_t n, unsigned window)
{
	uint64_t i, seq = 0;
	int r;

	for (i = 0; i < n; i++) {
		struct aud_event *ev = NULL;

		if ((r = build_event(0, i, &ev)) != 0) {
			return r;
		}
		r = aud_log_append(log, ev, NULL, NULL, &seq);
		aud_event_free(ev);
		if (r != 0) {
			return r;
		}
		if ((i + 1) % window == 0 && (r = aud_log_wait(log, seq)) != 0) {
			return r;
		}
	}
	return aud_log_wait(log, seq);
}

/* One verifier pass: 0, or -1 with the failure recorded in res. *records must match expect
 * (0: the first pass sets it). */
static int
verify_pass(const struct audit_tmp *t, uint64_t events, uint64_t *expect, uint64_t *ns,
            struct bench_local_result *res)
{
	char detail[400];
	uint64_t t0 = bench_now_ns(), records = 0;

	if (verify_log(t, &records, detail, sizeof(detail)) != 0) {
		fail(res, BENCH_LOCAL_WRONG, "the log does not verify: %s", detail);
		return -1;
	}
	*ns = bench_now_ns() - t0;
	if (*expect == 0) {
		*expect = records;
	}
	if (records != *expect || records < events) {
		fail(res, BENCH_LOCAL_WRONG, "verify saw %llu records (expected %llu, %llu events)",
		     (unsigned long long)records, (unsigned long long)*expect,
		     (unsigned long long)events);
		return -1;
	}
	return 0;
}

static int
audit_verify_run(const struct bench_local_args *args, struct bench_local_result *res)
{
	struct aud_log *log = NULL;
	struct audit_tmp t;
	uint64_t start, ns, expect = 0;
	double cpu0;
	int r;

	memset(res, 0, sizeof(*res));
	if (tmp_create(args->dir, &t) != 0) {
		fail(res, BENCH_LOCAL_FAILED, "cannot create a temporary directory in %s: %s",
		     args->dir != NULL ? args->dir : "$TMPDIR", strerror(errno));
		return 0;
	}
	if ((r = aud_key_generate(t.key_prefix)) != 0 || (r = log_open(&t, &log)) != 0 ||
	    (r = write_events(log, args->events, 4096)) != 0) {
		fail(res, BENCH_LOCAL_FAILED, "writing %llu events to %s: %s",
		     (unsigned long long)args->events, t.log, aud_strerror(r));
		goto out;
	}
	r = aud_log_close(log);
	log = NULL;
	if (r != 0) {
		fail(res, BENCH_LOCAL_FAILED, "aud_log_close: %s", aud_strerror(r));
		goto out;
	}
	/* Warm-up passes, not counted (none for --warmup 0), then counted passes: at least one. */
	start = bench_now_ns();
	while (args->warmup > 0 && (double)(bench_now_ns() - start) < args->warmup * 1e9) {
		if (verify_pass(&t, args->events, &expect, &ns, res) != 0) {
			goto out;
		}
	}
	cpu0 = cpu_seconds();
	start = bench_now_ns();
	do {
		if (verify_pass(&t, args->events, &expect, &ns, res) != 0) {
			goto out;
		}
		bench_hist_add(&res->hist, ns);
		res->calls += expect;
		res->secs += (double)ns / 1e9;
	} while ((double)(bench_now_ns() - start) < args->duration * 1e9);
	res->cpu_s = cpu_seconds() - cpu0;
	snprintf(res->note, sizeof(res->note), "%llu records per pass, 1 thread, page cache",
	         (unsigned long long)expect);
out:
	if (log != NULL) {
		(void)aud_log_close(log);
	}
	tmp_remove(&t);
	return 0;
}

const struct bench_local_op bench_local_ops[] = {
        {"audit-append", "aud_log_append of ~1 KiB gateway events, sync + group commit",
         audit_append_run},
        {"audit-verify", "aud_log_verify (hsmgate-audit verify) of --audit-events events",
         audit_verify_run},
        {NULL, NULL, NULL},
};

const struct bench_local_op *
bench_local_op_find(const char *name)
{
	const struct bench_local_op *op;

	for (op = bench_local_ops; op->name != NULL; op++) {
		if (strcmp(op->name, name) == 0) {
			return op;
		}
	}
	return NULL;
}
