/* tests/gateway/test_sinks.c — gateway/sinks.c: a sink thread delivers the gateway's log
 * (file sink), the spool limits raise their events once per episode and the hard limit of a
 * required sink refuses new requests until the sink catches up, a sink that is not required
 * never does, and a damaged cursor stops the start. The spool check is called directly
 * (the loop's 1 s timer is never run here). */
#include "gateway/gw_int.h"
#include "tests/lib/test.h"

#include <event2/thread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char *tmp;

struct fixture {
	struct gw_server s;
	struct cfg_daemon cfg;
	struct cfg_audit audit;
	struct cfg_audit_sink sink;
	char state[400], dir[512], key[512], out[600], cursor[600], url[700];
};

static int
suite_init(void)
{
	if (evthread_use_pthreads() != 0) {
		return -1;
	}
	return (tmp = test_tmpdir_new("gw-sinks")) != NULL ? 0 : -1;
}

static int
suite_cleanup(void)
{
	test_tmpdir_remove(tmp);
	return 0;
}

/* One file sink writing to <state>/<outdir>/events.jsonl. */
static void
fixture_init(struct fixture *f, const char *tag, const char *outdir, uint64_t soft, uint64_t hard,
             int required)
{
	memset(f, 0, sizeof(*f));
	snprintf(f->state, sizeof(f->state), "%s/%s", tmp, tag);
	snprintf(f->dir, sizeof(f->dir), "%s/audit", f->state);
	snprintf(f->key, sizeof(f->key), "%s/k.key", f->state);
	snprintf(f->out, sizeof(f->out), "%s/%s/events.jsonl", f->state, outdir);
	snprintf(f->url, sizeof(f->url), "file:%s", f->out);
	snprintf(f->cursor, sizeof(f->cursor), "%s/audit-sinks/jsonl.cursor", f->state);
	CU_ASSERT_FATAL(mkdir(f->state, 0700) == 0);
	f->sink.name = "jsonl";
	f->sink.url = f->url;
	f->sink.cursor = f->cursor;
	f->sink.spool_soft = soft;
	f->sink.spool_hard = hard;
	f->sink.required = required != 0;
	f->audit.enabled = true;
	f->audit.dir = f->dir;
	f->audit.signing_key = f->key;
	f->audit.durability = "sync";
	f->audit.sinks = &f->sink;
	f->audit.n_sinks = 1;
	f->cfg.gateway_id = "gw-sinks";
	f->cfg.state_dir = f->state;
	f->cfg.audit = &f->audit;
	f->s.cfg = &f->cfg;
	f->s.base = event_base_new();
	CU_ASSERT_FATAL(f->s.base != NULL);
}

static void
fixture_free(struct fixture *f)
{
	gw_audit_free(&f->s);
	event_base_free(f->s.base);
}

static char *
file_text(const char *path)
{
	char cmd[800], *buf = NULL;
	size_t cap = 0, len = 0, n;
	FILE *p;

	snprintf(cmd, sizeof(cmd), "cat %s 2>/dev/null", path);
	if ((p = popen(cmd, "r")) == NULL) {
		return NULL;
	}
	do {
		if (len + 4096 + 1 > cap) {
			cap = cap * 2 + 8192;
			buf = realloc(buf, cap);
		}
		n = fread(buf + len, 1, 4096, p);
		len += n;
	} while (n > 0 && buf != NULL);
	pclose(p);
	if (buf != NULL) {
		buf[len] = '\0';
	}
	return buf;
}

/* The payloads of the log's event records (E, S, R), each followed by a newline: exactly
 * what a file sink writes. */
static char *
log_events(const char *dir)
{
	char pattern[600], *all, *line, *save = NULL, *out;
	size_t o = 0;

	snprintf(pattern, sizeof(pattern), "%s/seg-*.log", dir);
	if ((all = file_text(pattern)) == NULL || (out = calloc(1, strlen(all) + 1)) == NULL) {
		free(all);
		return NULL;
	}
	for (line = strtok_r(all, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		char *tab = strchr(line, '\t'), *tab2;

		if (tab == NULL || tab - line < 2 || (tab2 = strchr(tab + 1, '\t')) == NULL) {
			continue;
		}
		if (tab[-1] == 'E' || tab[-1] == 'S' || tab[-1] == 'R') {
			memcpy(out + o, tab + 1, (size_t)(tab2 - tab - 1));
			o += (size_t)(tab2 - tab - 1);
			out[o++] = '\n';
		}
	}
	free(all);
	return out;
}

static size_t
count(const char *text, const char *needle)
{
	size_t n = 0;

	while (text != NULL && (text = strstr(text, needle)) != NULL) {
		n++;
		text += strlen(needle);
	}
	return n;
}

static void
who_make(struct proto_ctx *c)
{
	memset(c, 0, sizeof(*c));
	c->cred = PROTO_CRED_CERT;
	snprintf(c->principal, sizeof(c->principal), "tenant/acme/user/alice");
	snprintf(c->tenant, sizeof(c->tenant), "acme");
	snprintf(c->source, sizeof(c->source), "127.0.0.1:4711");
}

/* n request events, each waited for until durable. */
static void
append_events(struct fixture *f, unsigned n)
{
	static const struct gw_part a1 = {"a1", "acme", 1};
	struct aud_event *ev;
	struct proto_ctx who;
	uint64_t seq = 0;
	unsigned i;

	who_make(&who);
	for (i = 0; i < n; i++) {
		ev = NULL;
		CU_ASSERT_FATAL(gw_audit_request_event(&f->s, &who, PROTO_CALL_C_GenerateRandom,
		                                       &a1, NULL, 1, i + 1, &ev) == 0);
		CU_ASSERT_FATAL(gw_audit_commit(&f->s, ev, 0, CKR_OK, NULL, 1, i + 1, 0, &seq) ==
		                0);
	}
	CU_ASSERT(aud_log_wait(f->s.audit, seq) == 0);
}

/* Runs the spool check until `text` is in the log (at most ~20 s; the sink thread works
 * meanwhile). 1 when it appeared. */
static int
check_until_logged(struct fixture *f, const char *text)
{
	int i, found = 0;
	char *log;

	for (i = 0; i < 2000 && !found; i++) {
		gw_sinks_check(&f->s);
		if (aud_log_wait(f->s.audit, aud_log_durable_seq(f->s.audit)) != 0) {
			break;
		}
		log = log_events(f->dir);
		found = log != NULL && strstr(log, text) != NULL;
		free(log);
		if (!found) {
			usleep(10000);
		}
	}
	return found;
}

static void
test_file_sink_delivers(void)
{
	struct fixture f;
	char err[512], *want, *got;
	int i;

	fixture_init(&f, "deliver", ".", 1000, 0, 1);
	CU_ASSERT_FATAL(gw_audit_open(&f.s, err, sizeof(err)) == 0);
	append_events(&f, 10);
	/* start record + 10 requests reach the file; the spool check finds nothing to say */
	for (i = 0; i < 1000; i++) {
		got = file_text(f.out);
		if (count(got, "\"action\":\"hsmgate.random.generate\"") == 10) {
			free(got);
			break;
		}
		free(got);
		usleep(10000);
	}
	CU_ASSERT(i < 1000);
	gw_sinks_check(&f.s);
	CU_ASSERT(gw_audit_usable(&f.s) == 1);
	gw_audit_gateway(&f.s, "stop", NULL);
	/* the shutdown gives the sink time to deliver the stop event too */
	fixture_free(&f);
	want = log_events(f.dir);
	got = file_text(f.out);
	CU_ASSERT_PTR_NOT_NULL_FATAL(want);
	CU_ASSERT_PTR_NOT_NULL_FATAL(got);
	CU_ASSERT_STRING_EQUAL(got, want); /* every event once, byte for byte, in order */
	CU_ASSERT(count(got, "\"action\":\"hsmgate.gateway.stop\"") == 1);
	CU_ASSERT(count(got, "hsmgate.audit-sink.") == 0);
	free(want);
	free(got);
	got = file_text(f.cursor);
	CU_ASSERT(got != NULL &&
	          strncmp(got, "hsmgate-audit-cursor 1\norigin gw-sinks\nnext ", 44) == 0);
	free(got);
}

static void
test_spool_limits(void)
{
	static const struct gw_part a1 = {"a1", "acme", 1};
	struct aud_event *ev = NULL;
	struct proto_ctx who;
	struct fixture f;
	char err[512], path[700], *log;
	uint64_t seq;

	/* the file's directory does not exist yet: every delivery fails */
	fixture_init(&f, "spool", "missing", 5, 12, 1);
	CU_ASSERT_FATAL(gw_audit_open(&f.s, err, sizeof(err)) == 0);
	CU_ASSERT(gw_audit_usable(&f.s) == 1);
	append_events(&f, 12);
	CU_ASSERT(check_until_logged(&f, "\"action\":\"hsmgate.audit-sink.fail\""));
	CU_ASSERT(check_until_logged(&f, "over the hard limit 12: refusing requests"));
	/* over hard: new requests refused, a call in flight still recorded, refusals not */
	CU_ASSERT(gw_audit_usable(&f.s) == 0);
	who_make(&who);
	CU_ASSERT_FATAL(
	        gw_audit_request_event(&f.s, &who, PROTO_CALL_C_Sign, &a1, NULL, 1, 99, &ev) == 0);
	CU_ASSERT(gw_audit_commit(&f.s, ev, 0, CKR_OK, NULL, 1, 99, 0, &seq) == 0);
	gw_audit_refused(&f.s, &who, PROTO_CALL_C_Sign, 1, 100, NULL,
	                 "request id already in flight");
	gw_sinks_check(&f.s);
	gw_sinks_check(&f.s);
	CU_ASSERT(aud_log_wait(f.s.audit, aud_log_durable_seq(f.s.audit)) == 0);
	log = log_events(f.dir);
	CU_ASSERT(count(log, "\"action\":\"hsmgate.crypto.sign\"") == 1);
	CU_ASSERT(count(log, "request id already in flight") == 0);
	/* one event per episode, however often the check runs */
	CU_ASSERT(count(log, "over the soft limit 5 (hard 12)") == 1);
	CU_ASSERT(count(log, "over the hard limit 12: refusing requests") == 1);
	CU_ASSERT(count(log, "\"action\":\"hsmgate.audit-sink.spool\",\"outcome\":\"failure\","
	                     "\"severity\":\"critical\"") == 2);
	CU_ASSERT(count(log, "\"action\":\"hsmgate.audit-sink.fail\",\"outcome\":\"failure\","
	                     "\"severity\":\"warning\"") == 1);
	CU_ASSERT(count(log, "crn:hsmgate:gateway:gw-sinks:audit-sink:jsonl") >= 3);
	free(log);

	/* the destination comes back: the sink catches up and serving resumes */
	snprintf(path, sizeof(path), "%s/missing", f.state);
	CU_ASSERT_FATAL(mkdir(path, 0700) == 0);
	CU_ASSERT(check_until_logged(&f, "back under the soft limit 5"));
	CU_ASSERT(gw_audit_usable(&f.s) == 1);
	CU_ASSERT(check_until_logged(&f, "\"action\":\"hsmgate.audit-sink.recover\""));
	log = log_events(f.dir);
	CU_ASSERT(count(log, "back under the hard limit 12") == 1);
	CU_ASSERT(count(log, "\"action\":\"hsmgate.audit-sink.spool\",\"outcome\":\"success\","
	                     "\"severity\":\"normal\"") == 2);
	free(log);
	fixture_free(&f);
}

static void
test_not_required_keeps_serving(void)
{
	struct fixture f;
	char err[512];

	fixture_init(&f, "optional", "missing", 2, 4, 0);
	CU_ASSERT_FATAL(gw_audit_open(&f.s, err, sizeof(err)) == 0);
	append_events(&f, 6);
	CU_ASSERT(check_until_logged(&f, "over the hard limit 4 (not required: still serving)"));
	CU_ASSERT(gw_audit_usable(&f.s) == 1);
	fixture_free(&f);
}

static void
test_damaged_cursor_stops_start(void)
{
	struct fixture f;
	char err[512], d[700];

	fixture_init(&f, "badcursor", ".", 10, 20, 1);
	snprintf(d, sizeof(d), "%s/audit-sinks", f.state);
	CU_ASSERT_FATAL(mkdir(d, 0700) == 0);
	CU_ASSERT_FATAL(test_file_write(f.cursor, "hsmgate-audit-cursor 1\nnext 12\n", 31) == 0);
	err[0] = '\0';
	CU_ASSERT(gw_audit_open(&f.s, err, sizeof(err)) == GW_ERR_CONFIG);
	CU_ASSERT(strstr(err, "audit sink jsonl") != NULL);
	CU_ASSERT(strstr(err, f.cursor) != NULL);
	fixture_free(&f);
}

void
test_register(void)
{
	static const struct test_case cases[] = {
	        {"file_sink_delivers", test_file_sink_delivers},
	        {"spool_limits", test_spool_limits},
	        {"not_required_keeps_serving", test_not_required_keeps_serving},
	        {"damaged_cursor_stops_start", test_damaged_cursor_stops_start},
	        {NULL, NULL},
	};

	test_suite_add("gateway/sinks", suite_init, suite_cleanup, cases);
}
