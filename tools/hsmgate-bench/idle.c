/*
 * tools/hsmgate-bench/idle.c — --op idle-conns: what idle, logged-in connections cost the
 * server, and what holding them does to an operation measured beside them (issue 6: 1,000
 * connections at ≤ 100 KiB of server RSS each, ecdsa-p256-sign 2×8 at most 20% slower).
 *
 * Our client module keeps one connection per process, so N connections are N processes:
 * "holders", forked by this process while it still has one thread (no module loaded, no
 * OpenSSL state in use), a batch at a time so that the gateway sees at most --conn-batch
 * handshakes and logins at once. Each holder loads the module itself (dlopen after the fork,
 * never inherited), C_Initialize (TLS, HELLO), finds the slot, C_OpenSession, C_Login, writes
 * a report on the shared report pipe and blocks in read(2) on the hold pipe, whose write end
 * only this process has: no CPU is spent while held, and the module's I/O thread only wakes
 * for its 30 s PING. Closing the hold pipe releases them all (and so does this process dying):
 * each then calls C_GetSessionInfo, which must still see a logged-in session — the gateway
 * kept the idle connection and serves it — reports again and finalizes.
 *
 * Reports are fixed-size records below PIPE_BUF, so writes from many holders never
 * interleave (pipe(7)). A holder that dies without a report is found by waitpid.
 *
 * Memory: the servers' (--server-pid and descendants: hsmgated and its partition workers)
 * VmRSS summed, before the first holder and once all are held and the servers settled;
 * (held - before) / N is the cost of one idle connection with its session and login. VmHWM
 * while held is reported too. The measured operation runs in this process through the
 * caller's measure function, loaded only after the last fork, while the holders are held
 * and again once they are gone; ratio = held ops/s / released ops/s.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "tools/hsmgate-bench/bench.h"

/* A holder that reports nothing for this long is counted as failed (a login costs one
 * PBKDF2 in the partition worker, and a batch of them queue there). */
#define IDLE_REPORT_TIMEOUT_MS 120000
/* After the last holder is ready (or gone): time for the servers to finish their work
 * (audit records, log lines, closes) before memory is read or the next measurement runs. */
#define IDLE_SETTLE_MS 1000

enum idle_phase {
	IDLE_READY = 1,   /* logged in, now held */
	IDLE_CHECKED = 2, /* released: the session was still logged in */
	IDLE_FAILED = 3,  /* a call failed: `call` and `rv` say which */
};

/* One record on the report pipe (well below PIPE_BUF: written atomically). */
struct idle_report {
	uint32_t idx;
	uint32_t phase; /* enum idle_phase */
	uint64_t rv;
	char call[48];
};

struct idle_holder {
	pid_t pid;   /* 0 once reaped */
	int phase;   /* the last report, 0 before the first */
	int status;  /* wait status once reaped */
	uint64_t rv; /* IDLE_FAILED */
	char call[48];
};

struct idle_run {
	const struct bench_idle_args *a;
	struct idle_holder *h;
	unsigned started; /* holders forked */
	unsigned ready;   /* reported IDLE_READY */
	unsigned checked; /* reported IDLE_CHECKED */
	unsigned reaped;  /* exited */
	int report_fd;    /* read end of the report pipe */
	int failed;       /* something went wrong: msg says what (first one wins) */
	char msg[300];
	uint8_t buf[sizeof(struct idle_report)];
	size_t buf_len; /* a partial record read so far */
};

struct idle_result {
	unsigned held; /* holders that were ready at once */
	double open_s; /* time to start and log in all of them */
	/* before the first holder, all held, after the measurement beside them, released */
	struct bench_procs before, held_procs, after_held, released;
	uint64_t rss_before, rss_held, hwm_held, rss_released; /* KiB, summed */
	struct bench_idle_sample m_held, m_released;           /* the median runs */
	double ops_held[BENCH_IDLE_MAX_ROUNDS], ops_released[BENCH_IDLE_MAX_ROUNDS];
	unsigned n_held, n_released; /* runs made (a failed one ends the series) */
};

/* ---- the holder ------------------------------------------------------------------------- */

static void
holder_report(int fd, uint32_t idx, enum idle_phase phase, const char *call, CK_RV rv)
{
	struct idle_report rep;
	ssize_t n;

	memset(&rep, 0, sizeof(rep));
	rep.idx = idx;
	rep.phase = (uint32_t)phase;
	rep.rv = rv;
	snprintf(rep.call, sizeof(rep.call), "%s", call != NULL ? call : "");
	do {
		n = write(fd, &rep, sizeof(rep));
	} while (n < 0 && errno == EINTR);
}

/* The slot: --slot, or the one whose token has the label (blank-padded, §3.2). */
static CK_RV
holder_slot(CK_FUNCTION_LIST_PTR p11, const struct bench_idle_args *a, CK_SLOT_ID *slot,
            const char **call)
{
	CK_RV rv;

	if (a->token == NULL) {
		*slot = (CK_SLOT_ID)a->slot;
		return CKR_OK;
	}
	rv = bench_slot_by_label(p11, a->token, slot);
	*call = rv == CKR_TOKEN_NOT_PRESENT ? "no token with that label" : "C_GetSlotList";
	return rv;
}

/* The life of holder idx (a child process). Never returns. */
static void __attribute__((noreturn))
holder_main(const struct bench_idle_args *a, uint32_t idx, int report_fd, int hold_fd)
{
	CK_FUNCTION_LIST_PTR p11 = NULL;
	CK_C_GetFunctionList getfl;
	CK_C_INITIALIZE_ARGS args;
	CK_SESSION_HANDLE session;
	CK_SESSION_INFO si;
	const char *call = "dlopen";
	CK_SLOT_ID slot = 0;
	CK_RV rv = CKR_GENERAL_ERROR;
	void *so;
	char c;
	ssize_t n;

	if ((so = dlopen(a->module, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		fprintf(stderr, "hsmgate-bench: holder %u: %s\n", idx, dlerror());
		goto fail;
	}
	call = "C_GetFunctionList";
	if ((getfl = (CK_C_GetFunctionList)dlsym(so, "C_GetFunctionList")) == NULL ||
	    getfl(&p11) != CKR_OK) {
		p11 = NULL;
		goto fail;
	}
	memset(&args, 0, sizeof(args));
	args.flags = CKF_OS_LOCKING_OK;
	call = "C_Initialize";
	if ((rv = p11->C_Initialize(&args)) != CKR_OK ||
	    (rv = holder_slot(p11, a, &slot, &call)) != CKR_OK) {
		goto fail;
	}
	call = "C_OpenSession";
	if ((rv = p11->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL,
	                             &session)) != CKR_OK) {
		goto fail;
	}
	call = "C_Login";
	rv = p11->C_Login(session, CKU_USER, (CK_UTF8CHAR_PTR)a->pin, strlen(a->pin));
	/* this process's copy of the PIN is not needed any more (STYLE rule 9) */
	OPENSSL_cleanse(a->pin, strlen(a->pin));
	if (rv != CKR_OK) {
		goto fail;
	}
	holder_report(report_fd, idx, IDLE_READY, NULL, CKR_OK);

	/* Held: blocked until the parent closes the hold pipe (or dies). */
	do {
		n = read(hold_fd, &c, 1);
	} while (n < 0 && errno == EINTR);

	call = "C_GetSessionInfo after the hold";
	if ((rv = p11->C_GetSessionInfo(session, &si)) != CKR_OK) {
		goto fail;
	}
	if (si.state != CKS_RW_USER_FUNCTIONS) {
		call = "C_GetSessionInfo: no longer logged in";
		rv = CKR_USER_NOT_LOGGED_IN;
		goto fail;
	}
	holder_report(report_fd, idx, IDLE_CHECKED, NULL, CKR_OK);
	(void)p11->C_Finalize(NULL);
	_exit(0);
fail:
	OPENSSL_cleanse(a->pin, strlen(a->pin)); /* a no-op once C_Login ran */
	holder_report(report_fd, idx, IDLE_FAILED, call, rv);
	if (p11 != NULL) {
		(void)p11->C_Finalize(NULL);
	}
	_exit(3);
}

/* ---- the parent ---------------------------------------------------------------------------- */

static void run_fail(struct idle_run *run, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

static void
run_fail(struct idle_run *run, const char *fmt, ...)
{
	va_list ap;

	if (run->failed) {
		return;
	}
	run->failed = 1;
	va_start(ap, fmt);
	vsnprintf(run->msg, sizeof(run->msg), fmt, ap);
	va_end(ap);
}

static void
take_report(struct idle_run *run, const struct idle_report *rep)
{
	struct idle_holder *h;

	if (rep->idx >= run->started) {
		return; /* cannot happen: only our holders have the pipe */
	}
	h = &run->h[rep->idx];
	h->phase = (int)rep->phase;
	switch (rep->phase) {
	case IDLE_READY:
		run->ready++;
		break;
	case IDLE_CHECKED:
		run->checked++;
		break;
	case IDLE_FAILED:
		h->rv = rep->rv;
		memcpy(h->call, rep->call, sizeof(h->call));
		h->call[sizeof(h->call) - 1] = '\0';
		run_fail(run, "connection %u: %s: %s", rep->idx, h->call, bench_ckr_name(h->rv));
		break;
	default:
		break;
	}
}

/* Reads what is on the report pipe (non-blocking). */
static void
read_reports(struct idle_run *run)
{
	uint8_t chunk[64 * sizeof(struct idle_report)];
	struct idle_report rep;
	size_t off, take;
	ssize_t n;

	for (;;) {
		n = read(run->report_fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n <= 0) {
			return;
		}
		for (off = 0; off < (size_t)n; off += take) {
			take = sizeof(rep) - run->buf_len;
			if (take > (size_t)n - off) {
				take = (size_t)n - off;
			}
			memcpy(run->buf + run->buf_len, chunk + off, take);
			run->buf_len += take;
			if (run->buf_len == sizeof(rep)) {
				memcpy(&rep, run->buf, sizeof(rep));
				run->buf_len = 0;
				take_report(run, &rep);
			}
		}
	}
}

/* Reaps the holders that exited (with block: waits for one at least); one that exits other
 * than after its check failed. */
static void
reap(struct idle_run *run, int block)
{
	unsigned i;
	pid_t pid;
	int st;

	for (;;) {
		pid = waitpid(-1, &st, block ? 0 : WNOHANG);
		if (pid < 0 && errno == EINTR) {
			continue;
		}
		if (pid < 0 && errno == ECHILD) {
			run->reaped = run->started; /* nothing left to wait for */
			return;
		}
		if (pid <= 0) {
			return;
		}
		for (i = 0; i < run->started; i++) {
			if (run->h[i].pid == pid) {
				break;
			}
		}
		if (i == run->started) {
			continue;
		}
		run->h[i].pid = 0;
		run->h[i].status = st;
		run->reaped++;
		read_reports(run); /* its last report may still be in the pipe */
		if (WIFSIGNALED(st)) {
			run_fail(run, "connection %u: its process was killed by signal %d", i,
			         WTERMSIG(st));
		} else if (WEXITSTATUS(st) != 0 || run->h[i].phase != IDLE_CHECKED) {
			run_fail(run, "connection %u: its process exited (status %d) %s", i,
			         WEXITSTATUS(st),
			         run->h[i].phase == IDLE_READY ? "while held"
			                                       : "before it was ready");
		}
		if (block) {
			return;
		}
	}
}

/* Waits until *count reaches want, a failure, or no report for IDLE_REPORT_TIMEOUT_MS. */
static void
await(struct idle_run *run, const unsigned *count, unsigned want, const char *what)
{
	struct pollfd p;
	uint64_t last = bench_now_ns();
	unsigned seen = *count;

	while (*count < want && !run->failed) {
		p.fd = run->report_fd;
		p.events = POLLIN;
		p.revents = 0;
		if (poll(&p, 1, 200) < 0 && errno != EINTR) {
			run_fail(run, "poll: %s", strerror(errno));
			return;
		}
		read_reports(run);
		reap(run, 0);
		if (*count != seen) {
			seen = *count;
			last = bench_now_ns();
		} else if (bench_now_ns() - last > (uint64_t)IDLE_REPORT_TIMEOUT_MS * 1000000u) {
			run_fail(run, "%u of %u connections %s; no progress for %d s", *count, want,
			         what, IDLE_REPORT_TIMEOUT_MS / 1000);
		}
	}
}

static void
sleep_ms(unsigned ms)
{
	struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
		continue;
	}
}

static uint64_t
sum_rss(const struct bench_procs *ps, int hwm)
{
	uint64_t sum = 0;
	size_t i;

	for (i = 0; i < ps->n; i++) {
		sum += hwm ? ps->p[i].hwm_kib : ps->p[i].rss_kib;
	}
	return sum;
}

static void
snapshot(const struct bench_idle_args *a, struct bench_procs *out)
{
	out->n = 0;
	if (a->nserver > 0 && bench_procs_snapshot(a->server, a->nserver, out) != 0) {
		fprintf(stderr, "hsmgate-bench: warning: a --server-pid cannot be read\n");
	}
}

/* Forks one holder. 0, or -1 (errno) when fork failed. */
static int
start_holder(struct idle_run *run, int report_w, int hold_r, int hold_w)
{
	unsigned idx = run->started;
	pid_t pid;

	/* nothing buffered may be written twice (the holder leaves with _exit, but still) */
	fflush(stdout);
	fflush(stderr);
	if ((pid = fork()) < 0) {
		return -1;
	}
	if (pid == 0) {
		(void)close(run->report_fd);
		(void)close(hold_w);
		holder_main(run->a, idx, report_w, hold_r);
	}
	run->h[idx].pid = pid;
	run->started++;
	return 0;
}

/* Waits for every holder to exit; with kill, first sends them SIGTERM (a failed run does not
 * wait for holders still connecting or logging in). */
static void
stop_holders(struct idle_run *run, int kill_them)
{
	unsigned i;

	for (i = 0; kill_them && i < run->started; i++) {
		if (run->h[i].pid > 0) {
			(void)kill(run->h[i].pid, SIGTERM);
		}
	}
	while (run->reaped < run->started) {
		reap(run, 1);
	}
}

/* Runs the measured operation a->rounds times into ops[] (*n of them); *med is the run with
 * the median ops/s (the lower middle one for an even count). A run that fails ends the
 * series and is *med. 0, or the measure function's BENCH_ERR_*. */
static int
measure_rounds(const struct bench_idle_args *a, struct bench_idle_sample *med, double *ops,
               unsigned *n)
{
	struct bench_idle_sample s[BENCH_IDLE_MAX_ROUNDS], t;
	unsigned i, j;
	int r;

	*n = 0;
	for (i = 0; i < a->rounds && i < BENCH_IDLE_MAX_ROUNDS; i++) {
		if ((r = a->measure(a->measure_arg, &s[i])) != 0) {
			return r;
		}
		if (!s[i].ok) {
			*med = s[i];
			return 0;
		}
		ops[(*n)++] = s[i].ops_per_s;
	}
	for (i = 1; i < *n; i++) {
		t = s[i];
		for (j = i; j > 0 && s[j - 1].ops_per_s > t.ops_per_s; j--) {
			s[j] = s[j - 1];
		}
		s[j] = t;
	}
	if (*n > 0) {
		*med = s[(*n - 1) / 2];
	}
	return 0;
}

/* ---- the report ---------------------------------------------------------------------------- */

static double
kib_per_conn(const struct idle_result *res, unsigned conns)
{
	if (conns == 0 || res->rss_held < res->rss_before) {
		return 0;
	}
	return (double)(res->rss_held - res->rss_before) / (double)conns;
}

static double
ratio(const struct idle_result *res)
{
	if (!res->m_held.ok || !res->m_released.ok || res->m_released.ops_per_s <= 0) {
		return 0;
	}
	return res->m_held.ops_per_s / res->m_released.ops_per_s;
}

/* The VmRSS (or with hwm, VmHWM) of pid in a snapshot, 0 when it is not there. */
static uint64_t
rss_of(const struct bench_procs *ps, pid_t pid, int hwm)
{
	size_t i;

	for (i = 0; i < ps->n; i++) {
		if (ps->p[i].pid == pid) {
			return hwm ? ps->p[i].hwm_kib : ps->p[i].rss_kib;
		}
	}
	return 0;
}

static void
json_sample(const char *key, const struct bench_idle_sample *m, const double *ops, unsigned n)
{
	unsigned i;

	printf(",\"%s\":{\"runs_ops_per_s\":[", key);
	for (i = 0; i < n; i++) {
		printf("%s%.2f", i > 0 ? "," : "", ops[i]);
	}
	printf("],\"status\":");
	if (!m->ok) {
		bench_json_str(m->msg[0] != '\0' ? "failed" : "not run");
		printf(",\"message\":");
		bench_json_str(m->msg);
		printf("}");
		return;
	}
	printf("\"ok\",\"calls\":%llu,\"ops_per_s\":%.2f,\"p50_us\":%.2f,\"p99_us\":%.2f,"
	       "\"server_cpu_us_per_op\":%.2f}",
	       (unsigned long long)m->calls, m->ops_per_s, m->p50_us, m->p99_us,
	       m->srv_cpu_us_per_op);
}

static void
print_json(const struct idle_run *run, const struct idle_result *res)
{
	const struct bench_idle_args *a = run->a;
	size_t i;

	printf("{\"tool\":\"hsmgate-bench\",\"label\":");
	bench_json_str(a->label);
	printf(",\"module\":");
	bench_json_str(a->module);
	printf(",\"threads\":%u,\"inflight\":%u,\"app_threads\":%u,\"duration_s\":%g,\"warmup_s\":%"
	       "g,\"rounds\":%u,\"results\":[{\"op\":\"idle-conns\",\"status\":\"%s\"",
	       a->threads, a->inflight, a->threads * a->inflight, a->duration, a->warmup, a->rounds,
	       run->failed ? "failed" : "ok");
	if (run->failed) {
		printf(",\"message\":");
		bench_json_str(run->msg);
	}
	printf(",\"conns\":%u,\"held\":%u,\"open_s\":%.2f,\"measured_op\":", a->conns, res->held,
	       res->open_s);
	bench_json_str(a->measure_name);
	printf(",\"server_rss_before_kib\":%llu,\"server_rss_held_kib\":%llu,\"server_hwm_held_"
	       "kib\":%llu,\"server_rss_released_kib\":%llu,\"server_kib_per_conn\":%.2f",
	       (unsigned long long)res->rss_before, (unsigned long long)res->rss_held,
	       (unsigned long long)res->hwm_held, (unsigned long long)res->rss_released,
	       kib_per_conn(res, res->held));
	json_sample("measured_held", &res->m_held, res->ops_held, res->n_held);
	json_sample("measured_released", &res->m_released, res->ops_released, res->n_released);
	printf(",\"held_vs_released\":%.3f,\"server_procs\":[", ratio(res));
	for (i = 0; i < res->held_procs.n; i++) {
		const struct bench_proc *p = &res->held_procs.p[i];

		printf("%s{\"pid\":%d,\"comm\":", i > 0 ? "," : "", (int)p->pid);
		bench_json_str(p->comm);
		printf(",\"rss_before_kib\":%llu,\"rss_held_kib\":%llu,\"hwm_held_kib\":%llu}",
		       (unsigned long long)rss_of(&res->before, p->pid, 0),
		       (unsigned long long)p->rss_kib,
		       (unsigned long long)rss_of(&res->after_held, p->pid, 1));
	}
	printf("]}]}\n");
}

static void
print_sample(const char *when, const char *name, const struct idle_run *run,
             const struct bench_idle_sample *m, const double *ops, unsigned n)
{
	unsigned i;

	if (!m->ok) {
		printf("#   %s %s: %s\n", name, when, m->msg[0] != '\0' ? m->msg : "not run");
		return;
	}
	printf("#   %s %u x %u %s: %.1f ops/s (median of", name, run->a->threads, run->a->inflight,
	       when, m->ops_per_s);
	for (i = 0; i < n; i++) {
		printf(" %.1f", ops[i]);
	}
	printf("), p50 %.1f us, p99 %.1f us, server cpu %.1f us/op\n", m->p50_us, m->p99_us,
	       m->srv_cpu_us_per_op);
}

static void
print_table(const struct idle_run *run, const struct idle_result *res)
{
	const struct bench_idle_args *a = run->a;
	size_t i;

	printf("# hsmgate-bench %s: module %s, --op idle-conns: %u connections (a process each, "
	       "C_Initialize + C_OpenSession + C_Login, %u at a time), held idle while %s runs "
	       "%u thread(s) x %u in flight, %.1f s after %.1f s warm-up, %u time(s), then as "
	       "often after their release\n",
	       a->label, a->module, a->conns, a->batch, a->measure_name, a->threads, a->inflight,
	       a->duration, a->warmup, a->rounds);
	printf("# rss = sum of the server processes' VmRSS in KiB (hwm: VmHWM); kib/conn = (held - "
	       "before) / held connections; ops/s: median of the runs; ratio = held / released\n");
	printf("%-12s %6s %6s %8s %10s %10s %10s %9s %11s %11s %6s\n", "op", "conns", "held",
	       "open_s", "rss_before", "rss_held", "hwm_held", "kib/conn", "held_ops/s",
	       "rel_ops/s", "ratio");
	if (run->failed) {
		printf("%-12s %6u %6u failed (%s)\n", "idle-conns", a->conns, res->held, run->msg);
	} else {
		printf("%-12s %6u %6u %8.1f %10llu %10llu %10llu %9.1f %11.1f %11.1f %6.3f\n",
		       "idle-conns", a->conns, res->held, res->open_s,
		       (unsigned long long)res->rss_before, (unsigned long long)res->rss_held,
		       (unsigned long long)res->hwm_held, kib_per_conn(res, res->held),
		       res->m_held.ops_per_s, res->m_released.ops_per_s, ratio(res));
	}
	if (res->held_procs.n > 0) {
		printf("#   server processes (VmRSS before -> held, KiB):");
		for (i = 0; i < res->held_procs.n; i++) {
			const struct bench_proc *p = &res->held_procs.p[i];

			printf(" %s[%d]=%llu->%llu", p->comm, (int)p->pid,
			       (unsigned long long)rss_of(&res->before, p->pid, 0),
			       (unsigned long long)p->rss_kib);
		}
		printf("\n");
	}
	print_sample("held", a->measure_name, run, &res->m_held, res->ops_held, res->n_held);
	print_sample("released", a->measure_name, run, &res->m_released, res->ops_released,
	             res->n_released);
	fflush(stdout);
}

/* ---- the run ------------------------------------------------------------------------------- */

int
bench_idle_run(const struct bench_idle_args *a)
{
	struct idle_result *res = NULL;
	struct idle_run run;
	int report[2] = {-1, -1}, hold[2] = {-1, -1};
	uint64_t t0;
	unsigned want;
	int r = BENCH_ERR_SYS;

	memset(&run, 0, sizeof(run));
	run.a = a;
	run.report_fd = -1;
	if (a->conns == 0 || a->batch == 0 || a->pin == NULL || a->rounds == 0 ||
	    a->rounds > BENCH_IDLE_MAX_ROUNDS) {
		return BENCH_ERR_USAGE;
	}
	if ((res = calloc(1, sizeof(*res))) == NULL ||
	    (run.h = calloc(a->conns, sizeof(*run.h))) == NULL || pipe2(report, O_CLOEXEC) != 0 ||
	    pipe2(hold, O_CLOEXEC) != 0 || fcntl(report[0], F_SETFL, O_NONBLOCK) != 0) {
		fprintf(stderr, "hsmgate-bench: idle-conns: %s\n", strerror(errno));
		goto out;
	}
	run.report_fd = report[0];

	snapshot(a, &res->before);
	res->rss_before = sum_rss(&res->before, 0);
	t0 = bench_now_ns();
	while (run.started < a->conns && !run.failed) {
		want = run.started +
		       (a->conns - run.started < a->batch ? a->conns - run.started : a->batch);
		while (run.started < want) {
			if (start_holder(&run, report[1], hold[0], hold[1]) != 0) {
				run_fail(&run, "fork for connection %u: %s", run.started,
				         strerror(errno));
				break;
			}
		}
		await(&run, &run.ready, run.started, "logged in");
	}
	res->open_s = (double)(bench_now_ns() - t0) / 1e9;
	res->held = run.ready;
	if (!run.failed) {
		sleep_ms(IDLE_SETTLE_MS);
		read_reports(&run);
		reap(&run, 0);
	}
	if (!run.failed) {
		snapshot(a, &res->held_procs);
		res->rss_held = sum_rss(&res->held_procs, 0);
		/* the measurement below loads the module: no fork after this point */
		if ((r = measure_rounds(a, &res->m_held, res->ops_held, &res->n_held)) != 0) {
			goto out;
		}
		snapshot(a, &res->after_held);
		res->hwm_held = sum_rss(&res->after_held, 1);
		read_reports(&run);
		reap(&run, 0);
	}
	/* Release: every holder checks its session, reports and exits. */
	(void)close(hold[1]);
	hold[1] = -1;
	if (!run.failed) {
		await(&run, &run.checked, run.started, "checked their session after the hold");
	}
	stop_holders(&run, run.failed);
	read_reports(&run);
	if (!run.failed) {
		sleep_ms(IDLE_SETTLE_MS);
		snapshot(a, &res->released);
		res->rss_released = sum_rss(&res->released, 0);
		if ((r = measure_rounds(a, &res->m_released, res->ops_released,
		                        &res->n_released)) != 0) {
			goto out;
		}
	}
	if (!run.failed && (!res->m_held.ok || !res->m_released.ok)) {
		run_fail(&run, "%s: %s", a->measure_name,
		         !res->m_held.ok ? res->m_held.msg : res->m_released.msg);
	}
	if (a->json) {
		print_json(&run, res);
	} else {
		print_table(&run, res);
	}
	r = run.failed ? 1 : 0;
out:
	if (hold[1] >= 0) {
		(void)close(hold[1]); /* releases any holder still waiting */
	}
	stop_holders(&run, 1);
	if (hold[0] >= 0) {
		(void)close(hold[0]);
	}
	if (report[0] >= 0) {
		(void)close(report[0]);
	}
	if (report[1] >= 0) {
		(void)close(report[1]);
	}
	free(run.h);
	free(res);
	return r;
}
