/* tests/gateway/test_audit.c — gateway/audit.c: opening the log (key generation, origin),
 * request events as written (fields, policy block, pending), completions back on the loop,
 * fail closed. */
#include "gateway/gw_int.h"
#include "tests/lib/test.h"

#include <event2/thread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *tmp;

struct fixture {
	struct gw_server s;
	struct cfg_daemon cfg;
	struct cfg_audit audit;
	char state[400], dir[512], key[512];
};

static int
suite_init(void)
{
	if (evthread_use_pthreads() != 0) {
		return -1;
	}
	return (tmp = test_tmpdir_new("gw-audit")) != NULL ? 0 : -1;
}

static int
suite_cleanup(void)
{
	test_tmpdir_remove(tmp);
	return 0;
}

static void
fixture_init(struct fixture *f, const char *tag, const char *keyname, const char *durability)
{
	memset(f, 0, sizeof(*f));
	snprintf(f->state, sizeof(f->state), "%s/%s", tmp, tag);
	snprintf(f->dir, sizeof(f->dir), "%s/audit", f->state);
	snprintf(f->key, sizeof(f->key), "%s/%s", f->state, keyname);
	CU_ASSERT_FATAL(mkdir(f->state, 0700) == 0);
	f->audit.enabled = true;
	f->audit.dir = f->dir;
	f->audit.signing_key = f->key;
	f->audit.durability = (char *)durability;
	f->cfg.gateway_id = "hsmgated@test host";
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

/* The whole log as one string (the segments in order). */
static char *
log_text(const char *dir)
{
	char cmd[800], *buf = NULL;
	size_t cap = 0, len = 0, n;
	FILE *p;

	snprintf(cmd, sizeof(cmd), "cat %s/seg-*.log", dir);
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

static void
who_make(struct proto_ctx *c)
{
	memset(c, 0, sizeof(*c));
	c->cred = PROTO_CRED_APIKEY;
	snprintf(c->principal, sizeof(c->principal), "tenant/acme/service/batch");
	snprintf(c->tenant, sizeof(c->tenant), "acme");
	snprintf(c->source, sizeof(c->source), "127.0.0.1:4711");
}

static void
test_open_generates_key(void)
{
	struct fixture f;
	char pub[700], err[512];
	struct stat st;

	fixture_init(&f, "gen", "signing.key", NULL);
	CU_ASSERT_FATAL(gw_audit_open(&f.s, err, sizeof(err)) == 0);
	snprintf(pub, sizeof(pub), "%s/signing.pub", f.state);
	CU_ASSERT(stat(f.key, &st) == 0 && (st.st_mode & 077) == 0);
	CU_ASSERT(stat(pub, &st) == 0);
	/* '@' and ' ' are not allowed in an origin */
	CU_ASSERT_STRING_EQUAL(f.s.audit_origin, "hsmgated-test-host");
	CU_ASSERT(f.s.audit_sync == 1);
	CU_ASSERT(gw_audit_usable(&f.s) == 1);
	fixture_free(&f);
	/* the second start uses the key it made */
	fixture_init(&f, "gen2", "signing.key", "async");
	CU_ASSERT_FATAL(gw_audit_open(&f.s, err, sizeof(err)) == 0);
	CU_ASSERT(f.s.audit_sync == 0);
	fixture_free(&f);
}

static void
test_open_refuses_unnamed_missing_key(void)
{
	struct fixture f;
	char err[512];

	fixture_init(&f, "nokey", "signing.pem", NULL);
	CU_ASSERT(gw_audit_open(&f.s, err, sizeof(err)) == GW_ERR_CONFIG);
	CU_ASSERT(strstr(err, "signing.pem") != NULL && strstr(err, ".key") != NULL);
	CU_ASSERT(f.s.audit == NULL);
	CU_ASSERT(gw_audit_usable(&f.s) == 0);
	fixture_free(&f);
}

static void
test_request_event_written(void)
{
	static const struct gw_part a1 = {"a1", "acme", 1};
	struct gw_decision d;
	struct aud_event *ev = NULL;
	struct proto_ctx who;
	struct timespec start;
	struct fixture f;
	char err[512], *text;
	uint64_t seq = 0;
	int i;

	fixture_init(&f, "req", "k.key", "sync");
	CU_ASSERT_FATAL(gw_audit_open(&f.s, err, sizeof(err)) == 0);
	who_make(&who);
	memset(&d, 0, sizeof(d));
	d.made = 1;
	d.result = POL_EXPLICIT_DENY;
	d.shadow = POL_EXPLICIT_DENY;
	d.nsids = 1;
	snprintf(d.sids[0], sizeof(d.sids[0]), "NoRandom");
	clock_gettime(CLOCK_MONOTONIC, &start);
	CU_ASSERT_FATAL(gw_audit_request_event(&f.s, &who, PROTO_CALL_C_GenerateRandom, &a1, &d, 7,
	                                       42, &ev) == 0);
	CU_ASSERT(gw_audit_commit(&f.s, ev, 0, CKR_ACTION_PROHIBITED, &start, 7, 42, 1, &seq) == 0);
	/* the completion comes back through the loop (the writer thread made it active) */
	for (i = 0; i < 500 && (aud_log_durable_seq(f.s.audit) == UINT64_MAX ||
	                        aud_log_durable_seq(f.s.audit) < seq);
	     i++) {
		usleep(2000);
	}
	CU_ASSERT(aud_log_durable_seq(f.s.audit) >= seq);
	CU_ASSERT(event_base_loop(f.s.base, EVLOOP_NONBLOCK) >= 0);
	pthread_mutex_lock(&f.s.audit_mu);
	CU_ASSERT(f.s.audit_done_n == 0); /* taken by the loop */
	pthread_mutex_unlock(&f.s.audit_mu);

	/* a state-changing call's pending event, and a system event */
	ev = NULL;
	CU_ASSERT_FATAL(gw_audit_request_event(&f.s, &who, PROTO_CALL_C_DestroyObject, &a1, NULL, 7,
	                                       43, &ev) == 0);
	CU_ASSERT(gw_audit_commit(&f.s, ev, 1, CKR_OK, &start, 7, 43, 0, &seq) == 0);
	gw_audit_gateway(&f.s, "stop", NULL);
	fixture_free(&f);

	CU_ASSERT_FATAL((text = log_text(f.dir)) != NULL);
	CU_ASSERT(strstr(text, "\"action\":\"hsmgate.random.generate\",\"outcome\":\"failure\"") !=
	          NULL);
	CU_ASSERT(strstr(text, "\"reasonCode\":403") != NULL);
	CU_ASSERT(strstr(text, "CKR_ACTION_PROHIBITED") != NULL);
	CU_ASSERT(strstr(text, "\"initiator\":{\"id\":\"tenant/acme/service/batch\"") != NULL);
	CU_ASSERT(strstr(text, "service/security/account/serviceid") != NULL);
	CU_ASSERT(strstr(text, "\"credential\":{\"type\":\"apikey\"}") != NULL);
	/* the address without its port (a hash or a time may contain "4711" by chance) */
	CU_ASSERT(strstr(text, "\"host\":{\"address\":\"127.0.0.1\",") != NULL);
	CU_ASSERT(strstr(text, "127.0.0.1:4711") == NULL);
	CU_ASSERT(strstr(text, "\"target\":{\"id\":\"crn:hsmgate:acme:partition:a1\"") != NULL);
	CU_ASSERT(strstr(text, "\"policy\":{\"result\":\"deny\",\"sids\":[\"NoRandom\"]}") != NULL);
	CU_ASSERT(strstr(text, "c7-r42") != NULL);
	CU_ASSERT(strstr(text, "\"latencyUs\":") != NULL);
	CU_ASSERT(strstr(text, "\"action\":\"hsmgate.keys.destroy\",\"outcome\":\"pending\"") !=
	          NULL);
	CU_ASSERT(strstr(text, "\"action\":\"hsmgate.gateway.stop\"") != NULL);
	CU_ASSERT(strstr(text, "crn:hsmgate:gateway:hsmgated-test-host") != NULL);
	free(text);
}

static void
test_shadow_in_event(void)
{
	static const struct gw_part a1 = {"a1", "acme", 1};
	struct gw_decision d;
	struct aud_event *ev = NULL;
	struct proto_ctx who;
	struct fixture f;
	char err[512], *text;
	uint64_t seq;

	fixture_init(&f, "shadow", "k.key", "async");
	CU_ASSERT_FATAL(gw_audit_open(&f.s, err, sizeof(err)) == 0);
	who_make(&who);
	memset(&d, 0, sizeof(d));
	d.made = 1;
	d.result = POL_ALLOWED;
	d.shadow = POL_EXPLICIT_DENY;
	d.nsids = 1;
	snprintf(d.sids[0], sizeof(d.sids[0]), "AllowAll");
	snprintf(d.shadow_sid, sizeof(d.shadow_sid), "TrialDeny");
	CU_ASSERT_FATAL(gw_audit_request_event(&f.s, &who, PROTO_CALL_C_GetOperationState, &a1, &d,
	                                       1, 2, &ev) == 0);
	CU_ASSERT(gw_audit_commit(&f.s, ev, 0, CKR_OK, NULL, 1, 2, 0, &seq) == 0);
	fixture_free(&f);
	CU_ASSERT_FATAL((text = log_text(f.dir)) != NULL);
	/* the call table's hsm.session.getstate is the policy's hsm.session.exportstate */
	CU_ASSERT(strstr(text, "\"action\":\"hsmgate.session.exportstate\"") != NULL);
	CU_ASSERT(strstr(text, "\"policy\":{\"result\":\"allow\",\"sids\":[\"AllowAll\"]}") !=
	          NULL);
	CU_ASSERT(strstr(text, "shadow policy: explicit_deny by TrialDeny") != NULL);
	free(text);
}

static void
test_fail_closed_without_log(void)
{
	struct fixture f;
	struct aud_event *ev = NULL;
	struct proto_ctx who;
	uint64_t seq;

	fixture_init(&f, "closed", "k.key", NULL);
	/* never opened: as while a failed log is being reopened */
	CU_ASSERT(gw_audit_usable(&f.s) == 0);
	who_make(&who);
	CU_ASSERT_FATAL(aud_event_new(&ev, "random", "generate") == 0);
	/* the event is consumed either way */
	CU_ASSERT(gw_audit_commit(&f.s, ev, 0, CKR_OK, NULL, 1, 1, 1, &seq) != 0);
	CU_ASSERT(gw_audit_commit(&f.s, NULL, 0, CKR_OK, NULL, 1, 1, 1, &seq) != 0);
	fixture_free(&f);
}

/* audit.enabled false: no log at all, every request served at once, nothing recorded. */
static void
test_audit_off(void)
{
	static const struct gw_part a1 = {"a1", "acme", 1};
	struct aud_event *ev = (struct aud_event *)1;
	struct proto_ctx who;
	struct fixture f;
	struct stat st;
	char err[512];
	uint64_t seq = 7;

	fixture_init(&f, "off", "k.key", "sync");
	f.audit.enabled = false;
	CU_ASSERT_FATAL(gw_audit_open(&f.s, err, sizeof(err)) == 0);
	CU_ASSERT(f.s.audit_off == 1);
	CU_ASSERT(f.s.audit_sync == 0); /* nothing is held for a record */
	CU_ASSERT_PTR_NULL(f.s.audit);
	CU_ASSERT(gw_audit_usable(&f.s) == 1);
	who_make(&who);
	CU_ASSERT(gw_audit_request_event(&f.s, &who, PROTO_CALL_C_Sign, &a1, NULL, 1, 2, &ev) == 0);
	CU_ASSERT_PTR_NULL(ev);
	CU_ASSERT(gw_audit_commit(&f.s, ev, 0, CKR_OK, NULL, 1, 2, 1, &seq) == 0);
	CU_ASSERT(seq == 0);
	CU_ASSERT(gw_audit_commit(&f.s, NULL, 1, CKR_OK, NULL, 1, 3, 1, &seq) == 0);
	gw_audit_refused(&f.s, &who, PROTO_CALL_C_Sign, 1, 4, NULL, "request id already in flight");
	gw_audit_gateway(&f.s, "start", NULL);
	CU_ASSERT(gw_audit_usable(&f.s) == 1);
	fixture_free(&f);
	/* no log directory, no key: nothing was written */
	CU_ASSERT(stat(f.dir, &st) != 0);
	CU_ASSERT(stat(f.key, &st) != 0);
}

/* A request refused before routing (here: its request id is in flight) has its event. */
static void
test_refused_event(void)
{
	static const char want[] = "\"action\":\"hsmgate.random.generate\",\"outcome\":\"failure\"";
	struct proto_ctx who;
	struct timespec start;
	struct fixture f;
	char err[512], *text, *ev;

	fixture_init(&f, "refused", "k.key", "sync");
	CU_ASSERT_FATAL(gw_audit_open(&f.s, err, sizeof(err)) == 0);
	who_make(&who);
	clock_gettime(CLOCK_MONOTONIC, &start);
	gw_audit_refused(&f.s, &who, PROTO_CALL_C_GenerateRandom, 9, 77, &start,
	                 "request id already in flight");
	fixture_free(&f);
	CU_ASSERT_FATAL((text = log_text(f.dir)) != NULL);
	ev = strstr(text, "\"action\":\"hsmgate.random.generate\"");
	CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
	CU_ASSERT(strncmp(ev, want, strlen(want)) == 0);
	CU_ASSERT(strstr(ev, "\"reasonCode\":500") != NULL);
	CU_ASSERT(strstr(ev, "CKR_GENERAL_ERROR") != NULL);
	CU_ASSERT(strstr(ev, "request id already in flight -failure") != NULL);
	CU_ASSERT(strstr(ev, "c9-r77") != NULL);
	CU_ASSERT(strstr(ev, "\"target\":{\"id\":\"crn:hsmgate:acme\"") != NULL);
	free(text);
}

/* The writer's own start record names the gateway as its logSourceCRN. */
static void
test_start_record_source(void)
{
	struct fixture f;
	char err[512], *text, *line, *end;

	fixture_init(&f, "source", "k.key", "sync");
	CU_ASSERT_FATAL(gw_audit_open(&f.s, err, sizeof(err)) == 0);
	fixture_free(&f);
	CU_ASSERT_FATAL((text = log_text(f.dir)) != NULL);
	line = strstr(text, " S\t");
	CU_ASSERT_PTR_NOT_NULL_FATAL(line);
	end = strchr(line, '\n');
	CU_ASSERT_PTR_NOT_NULL_FATAL(end);
	*end = '\0';
	CU_ASSERT(strstr(line, "\"action\":\"hsmgate.audit.start\"") != NULL);
	CU_ASSERT(strstr(line, "\"logSourceCRN\":\"crn:hsmgate:gateway:hsmgated-test-host\"") !=
	          NULL);
	free(text);
}

void
test_register(void)
{
	static const struct test_case cases[] = {
	        {"open_generates_key", test_open_generates_key},
	        {"open_refuses_unnamed_missing_key", test_open_refuses_unnamed_missing_key},
	        {"request_event_written", test_request_event_written},
	        {"shadow_in_event", test_shadow_in_event},
	        {"fail_closed_without_log", test_fail_closed_without_log},
	        {"audit_off", test_audit_off},
	        {"refused_event", test_refused_event},
	        {"start_record_source", test_start_record_source},
	        {NULL, NULL},
	};

	test_suite_add("gateway/audit", suite_init, suite_cleanup, cases);
}
