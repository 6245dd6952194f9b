/*
 * tests/audit/test_sink.c — audit/sink.c: the cursor file (round trip, atomic replacement,
 * a crash before the rename, refusal of damaged or foreign cursors), the spool check, and
 * the runner through the file sink: every record delivered once, resumed after a simulated
 * crash with nothing missing, following a growing log, the durability bound, an outage
 * that loses nothing.
 *
 * It doubles as the event generator of tests/e2e/syslog.sh (whose Makefile rule links no
 * audit library): with HSMGATE_SINK_GEN_DIR set, it appends events and exits instead of
 * running the suite (see test_register).
 */
#include "tests/audit/test_sink_fixture.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>

static char *tmp;
static char keyprefix[600];

static int
suite_init(void)
{
	if ((tmp = test_tmpdir_new("audit-sink")) == NULL) {
		return -1;
	}
	snprintf(keyprefix, sizeof(keyprefix), "%s/k", tmp);
	return 0;
}

static int
suite_cleanup(void)
{
	test_tmpdir_remove(tmp);
	return 0;
}

static void
path(char *out, size_t n, const char *name)
{
	snprintf(out, n, "%s/%s", tmp, name);
}

/* ---- cursor --------------------------------------------------------------------------- */

static void
test_cursor_missing(void)
{
	char p[700], origin[AUD_MAX_ORIGIN + 1];
	uint64_t next = 99;

	path(p, sizeof(p), "no-such-cursor");
	CU_ASSERT(aud_sink_cursor_read(p, &next, origin) == 0);
	CU_ASSERT(next == 0);
	CU_ASSERT(origin[0] == '\0');
}

static void
test_cursor_roundtrip(void)
{
	char p[700], origin[AUD_MAX_ORIGIN + 1];
	uint64_t next = 0;

	path(p, sizeof(p), "c-roundtrip");
	CU_ASSERT(aud_sink_cursor_write(p, FIX_ORIGIN, 0) == 0);
	CU_ASSERT(aud_sink_cursor_read(p, &next, origin) == 0);
	CU_ASSERT(next == 0);
	CU_ASSERT_STRING_EQUAL(origin, FIX_ORIGIN);
	CU_ASSERT(aud_sink_cursor_write(p, FIX_ORIGIN, UINT64_MAX) == 0);
	CU_ASSERT(aud_sink_cursor_read(p, &next, NULL) == 0);
	CU_ASSERT(next == UINT64_MAX);
	CU_ASSERT(aud_sink_cursor_write(p, "", 1) == AUD_ERR_INVALID);
	CU_ASSERT(aud_sink_cursor_write(p, "a b", 1) == AUD_ERR_INVALID);
	CU_ASSERT(aud_sink_cursor_write(p, "a\nnext 5", 1) == AUD_ERR_INVALID);
}

/* The cursor is replaced by rename: no temp file stays behind, and a crash after the temp
 * file was (partly) written but before the rename leaves the old cursor in force. */
static void
test_cursor_atomic(void)
{
	char p[700], t[720];
	uint64_t next = 0;
	struct stat st;
	int i;

	path(p, sizeof(p), "c-atomic");
	snprintf(t, sizeof(t), "%s.tmp", p);
	for (i = 1; i <= 50; i++) {
		CU_ASSERT(aud_sink_cursor_write(p, FIX_ORIGIN, (uint64_t)i) == 0);
	}
	CU_ASSERT(stat(t, &st) != 0 && errno == ENOENT);
	CU_ASSERT(aud_sink_cursor_read(p, &next, NULL) == 0);
	CU_ASSERT(next == 50);
	/* The crash: a torn temp file, never renamed. */
	CU_ASSERT(test_file_write(t, "hsmgate-audit-cursor 1\norigin x\nne", 34) == 0);
	CU_ASSERT(aud_sink_cursor_read(p, &next, NULL) == 0);
	CU_ASSERT(next == 50);
	/* The next write replaces the stale temp file. */
	CU_ASSERT(aud_sink_cursor_write(p, FIX_ORIGIN, 51) == 0);
	CU_ASSERT(aud_sink_cursor_read(p, &next, NULL) == 0);
	CU_ASSERT(next == 51);
	CU_ASSERT(stat(t, &st) != 0 && errno == ENOENT);
}

/* Truncated at every byte, trailing bytes, oversize, and a deterministic bit-flip loop:
 * an error or a well-formed value, never a crash or a half-read value. */
static void
test_cursor_malformed(void)
{
	static const char good[] = "hsmgate-audit-cursor 1\norigin " FIX_ORIGIN "\nnext 1234\n";
	char p[700], buf[sizeof(good) + 8], origin[AUD_MAX_ORIGIN + 1], big[1024];
	size_t len = sizeof(good) - 1, i;
	uint64_t next;
	int bit;

	path(p, sizeof(p), "c-bad");
	CU_ASSERT(test_file_write(p, good, len) == 0);
	CU_ASSERT(aud_sink_cursor_read(p, &next, origin) == 0 && next == 1234);
	for (i = 0; i < len; i++) {
		CU_ASSERT(test_file_write(p, good, i) == 0);
		CU_ASSERT(aud_sink_cursor_read(p, &next, origin) == AUD_ERR_MALFORMED);
		CU_ASSERT(next == 0);
	}
	memcpy(buf, good, len);
	memcpy(buf + len, "x", 1);
	CU_ASSERT(test_file_write(p, buf, len + 1) == 0);
	CU_ASSERT(aud_sink_cursor_read(p, &next, origin) == AUD_ERR_MALFORMED);
	CU_ASSERT(test_file_write(p, "hsmgate-audit-cursor 1\norigin o\nnext 01\n", 40) == 0);
	CU_ASSERT(aud_sink_cursor_read(p, &next, origin) == AUD_ERR_MALFORMED);
	CU_ASSERT(test_file_write(p,
	                          "hsmgate-audit-cursor 1\norigin o\nnext 18446744073709551616\n",
	                          58) == 0);
	CU_ASSERT(aud_sink_cursor_read(p, &next, origin) == AUD_ERR_MALFORMED);
	memset(big, 'a', sizeof(big));
	CU_ASSERT(test_file_write(p, big, sizeof(big)) == 0);
	CU_ASSERT(aud_sink_cursor_read(p, &next, origin) == AUD_ERR_MALFORMED);
	for (i = 0; i < len; i++) {
		for (bit = 0; bit < 8; bit++) {
			int r;

			memcpy(buf, good, len);
			buf[i] ^= (char)(1 << bit);
			CU_ASSERT(test_file_write(p, buf, len) == 0);
			r = aud_sink_cursor_read(p, &next, origin);
			CU_ASSERT(r == 0 || r == AUD_ERR_MALFORMED);
			CU_ASSERT(r != 0 || strlen(origin) > 0);
		}
	}
}

/* ---- spool check ---------------------------------------------------------------------- */

static void
test_spool_check(void)
{
	uint64_t lag = 7;

	CU_ASSERT(aud_spool_check(100, 100, 10, 20, &lag) == AUD_SPOOL_OK && lag == 0);
	CU_ASSERT(aud_spool_check(109, 100, 10, 20, &lag) == AUD_SPOOL_OK && lag == 9);
	CU_ASSERT(aud_spool_check(110, 100, 10, 20, &lag) == AUD_SPOOL_SOFT && lag == 10);
	CU_ASSERT(aud_spool_check(119, 100, 10, 20, NULL) == AUD_SPOOL_SOFT);
	CU_ASSERT(aud_spool_check(120, 100, 10, 20, NULL) == AUD_SPOOL_HARD);
	CU_ASSERT(aud_spool_check(1000, 0, 0, 0, &lag) == AUD_SPOOL_OK && lag == 1000);
	CU_ASSERT(aud_spool_check(1000, 0, 0, 20, NULL) == AUD_SPOOL_HARD);
	CU_ASSERT(aud_spool_check(1000, 0, 10, 0, NULL) == AUD_SPOOL_SOFT);
	/* A cursor ahead of what the caller thinks is durable is no lag. */
	CU_ASSERT(aud_spool_check(5, 9, 1, 2, &lag) == AUD_SPOOL_OK && lag == 0);
}

/* ---- the runner, through the file sink ------------------------------------------------ */

static void
sink_opts(struct aud_sink_options *o, const char *logd, const char *url, const char *cursor)
{
	aud_sink_options_init(o);
	o->log_dir = logd;
	o->url = url;
	o->cursor_path = cursor;
	o->batch_max = 16;
	o->window_max = 64;
	o->poll_ms = 20;
	o->backoff_min_ms = 10;
	o->backoff_max_ms = 50;
	o->log = fix_log_cb;
}

/* Every event of the log appears in `out` at least once (exactly once if `once`), and
 * nothing else does. */
static void
check_delivered(const char *logd, const char *out, int once)
{
	char **ev = NULL, *text;
	uint64_t *seqs = NULL, head;
	size_t n = 0, i, len, lines = 0;

	CU_ASSERT_FATAL(fix_log_events(logd, &ev, &seqs, &n, &head) == 0);
	CU_ASSERT(n > 0);
	text = fix_slurp(out, &len);
	CU_ASSERT_FATAL(text != NULL);
	for (i = 0; i < len; i++) {
		lines += text[i] == '\n';
	}
	CU_ASSERT(len > 0 && text[len - 1] == '\n');
	for (i = 0; i < n; i++) {
		unsigned c = fix_count_line(text, ev[i]);

		CU_ASSERT(once ? c == 1 : c >= 1);
		if (c == 0 || (once && c != 1)) {
			fprintf(stderr, "seq %llu delivered %u times\n",
			        (unsigned long long)seqs[i], c);
		}
	}
	if (once) {
		CU_ASSERT(lines == n);
	}
	free(text);
	free(seqs);
	fix_strv_free(ev, n);
}

static void
test_file_delivers_once(void)
{
	char logd[700], out[700], cur[700], url[800], origin[AUD_MAX_ORIGIN + 1];
	struct aud_sink_options o;
	struct aud_sink *s = NULL;
	uint64_t next, head;
	char **ev;
	uint64_t *seqs;
	size_t n;

	path(logd, sizeof(logd), "once-log");
	path(out, sizeof(out), "once.jsonl");
	path(cur, sizeof(cur), "once.cursor");
	snprintf(url, sizeof(url), "file:%s", out);
	CU_ASSERT_FATAL(fix_log_append(logd, keyprefix, 0, 100, 0) == 0);
	sink_opts(&o, logd, url, cur);
	CU_ASSERT_FATAL(aud_sink_open(&s, &o) == 0);
	CU_ASSERT(aud_sink_run_once(s) == 0);
	CU_ASSERT_FATAL(fix_log_events(logd, &ev, &seqs, &n, &head) == 0);
	CU_ASSERT(aud_sink_cursor(s) == head);
	CU_ASSERT(aud_sink_head(s) == head);
	/* A second pass finds nothing new and sends nothing again. */
	CU_ASSERT(aud_sink_run_once(s) == 0);
	aud_sink_close(s);
	check_delivered(logd, out, 1);
	CU_ASSERT(aud_sink_cursor_read(cur, &next, origin) == 0);
	CU_ASSERT(next == head);
	CU_ASSERT_STRING_EQUAL(origin, FIX_ORIGIN);
	/* The log grows; a new run (a restarted forwarder) sends only the new records. */
	CU_ASSERT_FATAL(fix_log_append(logd, keyprefix, 100, 30, 0) == 0);
	CU_ASSERT_FATAL(aud_sink_open(&s, &o) == 0);
	CU_ASSERT(aud_sink_run_once(s) == 0);
	aud_sink_close(s);
	check_delivered(logd, out, 1);
	free(seqs);
	fix_strv_free(ev, n);
}

/* A crash after the sink wrote (and fsync'd) records but before it moved the cursor is
 * the same as a cursor that lags: rewind it, restart, and every record is there at least
 * once, the resent ones at most twice. */
static void
test_file_resume_after_crash(void)
{
	char logd[700], out[700], cur[700], url[800], *text;
	struct aud_sink_options o;
	struct aud_sink *s = NULL;
	char **ev;
	uint64_t *seqs, head, next;
	size_t n, i, len;

	path(logd, sizeof(logd), "crash-log");
	path(out, sizeof(out), "crash.jsonl");
	path(cur, sizeof(cur), "crash.cursor");
	snprintf(url, sizeof(url), "file:%s", out);
	CU_ASSERT_FATAL(fix_log_append(logd, keyprefix, 0, 60, 0) == 0);
	sink_opts(&o, logd, url, cur);
	CU_ASSERT_FATAL(aud_sink_open(&s, &o) == 0);
	CU_ASSERT(aud_sink_run_once(s) == 0);
	aud_sink_close(s);
	/* The crash: the last 25 records were written, their cursor update was lost. */
	CU_ASSERT(aud_sink_cursor_read(cur, &next, NULL) == 0);
	CU_ASSERT_FATAL(next > 25);
	CU_ASSERT(aud_sink_cursor_write(cur, FIX_ORIGIN, next - 25) == 0);
	/* ... and a torn, unacknowledged line at the end of the output. */
	{
		int fd = open(out, O_WRONLY | O_APPEND);

		CU_ASSERT_FATAL(fd >= 0);
		CU_ASSERT(write(fd, "{\"eventTime\":\"20", 16) == 16);
		close(fd);
	}
	CU_ASSERT_FATAL(fix_log_append(logd, keyprefix, 60, 20, 0) == 0);
	CU_ASSERT_FATAL(aud_sink_open(&s, &o) == 0);
	CU_ASSERT(aud_sink_cursor(s) == next - 25);
	CU_ASSERT(aud_sink_run_once(s) == 0);
	aud_sink_close(s);
	check_delivered(logd, out, 0);
	CU_ASSERT_FATAL(fix_log_events(logd, &ev, &seqs, &n, &head) == 0);
	text = fix_slurp(out, &len);
	CU_ASSERT_FATAL(text != NULL);
	for (i = 0; i < n; i++) {
		unsigned c = fix_count_line(text, ev[i]);

		CU_ASSERT(seqs[i] >= next - 25 && seqs[i] < next ? c == 2 : c == 1);
	}
	CU_ASSERT(strstr(text, "{\"eventTime\":\"20\n") == NULL); /* the torn line was cut */
	CU_ASSERT(aud_sink_cursor_read(cur, &next, NULL) == 0 && next == head);
	free(text);
	free(seqs);
	fix_strv_free(ev, n);
}

/* (runs after test_file_delivers_once, which made once-log) */
static void
test_cursor_other_origin(void)
{
	char logd[700], cur[700], url[800];
	struct aud_sink_options o;
	struct aud_sink *s = NULL;

	path(logd, sizeof(logd), "once-log");
	path(cur, sizeof(cur), "foreign.cursor");
	snprintf(url, sizeof(url), "file:%s/foreign.jsonl", tmp);
	CU_ASSERT(aud_sink_cursor_write(cur, "another.example/audit/gw9", 5) == 0);
	sink_opts(&o, logd, url, cur);
	CU_ASSERT(aud_sink_open(&s, &o) == AUD_ERR_INVALID);
	CU_ASSERT(s == NULL);
	CU_ASSERT(test_file_write(cur, "garbage", 7) == 0);
	CU_ASSERT(aud_sink_open(&s, &o) == AUD_ERR_MALFORMED);
}

static void
test_open_refusals(void)
{
	char logd[700], cur[700];
	struct aud_sink_options o;
	struct aud_sink *s = NULL;

	path(logd, sizeof(logd), "once-log");
	path(cur, sizeof(cur), "refuse.cursor");
	sink_opts(&o, logd, "ftp://example", cur);
	CU_ASSERT(aud_sink_open(&s, &o) == AUD_ERR_INVALID);
	sink_opts(&o, logd, "file:", cur);
	CU_ASSERT(aud_sink_open(&s, &o) == AUD_ERR_INVALID);
	sink_opts(&o, NULL, "file:/dev/null", cur);
	CU_ASSERT(aud_sink_open(&s, &o) == AUD_ERR_INVALID);
	sink_opts(&o, logd, "syslog://host:99999", cur);
	CU_ASSERT(aud_sink_open(&s, &o) == AUD_ERR_INVALID);
	sink_opts(&o, logd, "syslog://127.0.0.1:6514", cur);
	o.ca_file = "/nonexistent/ca.pem";
	CU_ASSERT(aud_sink_open(&s, &o) == AUD_ERR_KEY);
	sink_opts(&o, logd, "https://127.0.0.1/x", cur);
	o.token_file = "/nonexistent/token";
	CU_ASSERT(aud_sink_open(&s, &o) == AUD_ERR_KEY);
	/* An empty directory: no checkpoint yet, so no origin. */
	path(logd, sizeof(logd), "empty-log");
	CU_ASSERT(mkdir(logd, 0700) == 0);
	sink_opts(&o, logd, "file:/dev/null", cur);
	CU_ASSERT(aud_sink_open(&s, &o) == AUD_ERR_EOF);
	CU_ASSERT(s == NULL);
}

struct follower {
	struct aud_sink *s;
	int result;
};

static void *
follow_main(void *arg)
{
	struct follower *f = arg;

	f->result = aud_sink_run(f->s);
	return NULL;
}

static int
wait_cursor(struct aud_sink *s, uint64_t want, unsigned ms)
{
	while (aud_sink_cursor(s) < want && ms > 0) {
		usleep(10000);
		ms = ms > 10 ? ms - 10 : 0;
	}
	return aud_sink_cursor(s) >= want;
}

/* The sink follows a log that grows while it runs (the writer in another "process"). */
static void
test_follow(void)
{
	char logd[700], out[700], cur[700], url[800];
	struct aud_sink_options o;
	struct follower f = {0};
	pthread_t th;
	char **ev;
	uint64_t *seqs, head;
	size_t n;

	path(logd, sizeof(logd), "follow-log");
	path(out, sizeof(out), "follow.jsonl");
	path(cur, sizeof(cur), "follow.cursor");
	snprintf(url, sizeof(url), "file:%s", out);
	CU_ASSERT_FATAL(fix_log_append(logd, keyprefix, 0, 10, 0) == 0);
	sink_opts(&o, logd, url, cur);
	CU_ASSERT_FATAL(aud_sink_open(&f.s, &o) == 0);
	CU_ASSERT_FATAL(pthread_create(&th, NULL, follow_main, &f) == 0);
	CU_ASSERT(fix_log_append(logd, keyprefix, 10, 50, 2) == 0);
	CU_ASSERT(fix_log_append(logd, keyprefix, 60, 50, 0) == 0);
	CU_ASSERT_FATAL(fix_log_events(logd, &ev, &seqs, &n, &head) == 0);
	CU_ASSERT(wait_cursor(f.s, head, 10000));
	aud_sink_stop(f.s);
	pthread_join(th, NULL);
	CU_ASSERT(f.result == AUD_ERR_CLOSED);
	aud_sink_close(f.s);
	check_delivered(logd, out, 1);
	free(seqs);
	fix_strv_free(ev, n);
}

static uint64_t durable_bound;

static uint64_t
durable_fn(void *arg)
{
	(void)arg;
	return durable_bound;
}

/* In-process, the sink delivers only what the writer has made durable. */
static void
test_durable_bound(void)
{
	char logd[700], out[700], cur[700], url[800];
	struct aud_sink_options o;
	struct aud_sink *s = NULL;

	path(logd, sizeof(logd), "once-log");
	path(out, sizeof(out), "durable.jsonl");
	path(cur, sizeof(cur), "durable.cursor");
	snprintf(url, sizeof(url), "file:%s", out);
	sink_opts(&o, logd, url, cur);
	o.durable = durable_fn;
	durable_bound = UINT64_MAX; /* nothing durable yet */
	CU_ASSERT_FATAL(aud_sink_open(&s, &o) == 0);
	CU_ASSERT(aud_sink_run_once(s) == 0);
	CU_ASSERT(aud_sink_cursor(s) == 0);
	durable_bound = 20;
	CU_ASSERT(aud_sink_run_once(s) == 0);
	CU_ASSERT(aud_sink_cursor(s) == 21);
	durable_bound = 50;
	CU_ASSERT(aud_sink_run_once(s) == 0);
	CU_ASSERT(aud_sink_cursor(s) == 51);
	aud_sink_close(s);
}

struct stopper {
	struct aud_sink *s;
	unsigned ms;
};

static void *
stop_later(void *arg)
{
	struct stopper *st = arg;

	usleep(st->ms * 1000u);
	aud_sink_stop(st->s);
	return NULL;
}

/* A destination that fails keeps the records in the log: the cursor does not move, the
 * runner retries with backoff, and once the destination works everything arrives. */
static void
test_outage_loses_nothing(void)
{
	char logd[700], out[720], cur[700], url[800], dir[700];
	struct aud_sink_options o;
	struct aud_sink *s = NULL;
	struct stopper st;
	pthread_t th;

	path(logd, sizeof(logd), "once-log");
	path(dir, sizeof(dir), "later");
	snprintf(out, sizeof(out), "%s/out.jsonl", dir);
	path(cur, sizeof(cur), "outage.cursor");
	snprintf(url, sizeof(url), "file:%s", out);
	sink_opts(&o, logd, url, cur);
	fix_logbuf[0] = '\0';
	CU_ASSERT_FATAL(aud_sink_open(&s, &o) == 0);
	st.s = s;
	st.ms = 300;
	CU_ASSERT_FATAL(pthread_create(&th, NULL, stop_later, &st) == 0);
	CU_ASSERT(aud_sink_run_once(s) == AUD_ERR_CLOSED);
	pthread_join(th, NULL);
	CU_ASSERT(aud_sink_cursor(s) == 0);
	CU_ASSERT(strstr(fix_logbuf, "wait in the log") != NULL);
	aud_sink_close(s);
	CU_ASSERT(mkdir(dir, 0700) == 0);
	CU_ASSERT_FATAL(aud_sink_open(&s, &o) == 0);
	CU_ASSERT(aud_sink_run_once(s) == 0);
	aud_sink_close(s);
	check_delivered(logd, out, 1);
}

static const struct test_case cases[] = {
        {"cursor: missing file is the start", test_cursor_missing},
        {"cursor: write/read round trip", test_cursor_roundtrip},
        {"cursor: atomic replace, crash before rename", test_cursor_atomic},
        {"cursor: truncated, trailing, oversize, bit flips", test_cursor_malformed},
        {"spool check: soft, hard, disabled", test_spool_check},
        {"file: every record once, resume only new", test_file_delivers_once},
        {"cursor: another origin's cursor is refused", test_cursor_other_origin},
        {"open: bad urls and files refused", test_open_refusals},
        {"file: resume after a crash, none missing", test_file_resume_after_crash},
        {"follow: a growing log", test_follow},
        {"durable bound (in-process)", test_durable_bound},
        {"outage: nothing lost, retried", test_outage_loses_nothing},
        {NULL, NULL},
};

/* The e2e event generator: HSMGATE_SINK_GEN_DIR=DIR [HSMGATE_SINK_GEN_COUNT=N]
 * [HSMGATE_SINK_GEN_FIRST=I] [HSMGATE_SINK_GEN_DELAY_MS=MS] appends N events (key DIR.key,
 * made if absent) and exits 0, or 1 with the error. */
static void
generate_and_exit(const char *dir)
{
	const char *c = getenv("HSMGATE_SINK_GEN_COUNT"), *f = getenv("HSMGATE_SINK_GEN_FIRST");
	const char *d = getenv("HSMGATE_SINK_GEN_DELAY_MS");
	char prefix[1024];
	int r;

	snprintf(prefix, sizeof(prefix), "%s", dir);
	r = fix_log_append(dir, prefix, f != NULL ? (unsigned)atoi(f) : 0,
	                   c != NULL ? (unsigned)atoi(c) : 100, d != NULL ? (unsigned)atoi(d) : 0);
	if (r != 0) {
		fprintf(stderr, "generator: %s\n", aud_strerror(r));
	}
	exit(r == 0 ? 0 : 1);
}

void
test_register(void)
{
	const char *gen = getenv("HSMGATE_SINK_GEN_DIR");

	if (gen != NULL) {
		generate_and_exit(gen);
	}
	test_suite_add("audit/sink", suite_init, suite_cleanup, cases);
}
