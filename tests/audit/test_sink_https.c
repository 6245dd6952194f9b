/*
 * tests/audit/test_sink_https.c — audit/sink_https.c: the batch body byte for byte, the
 * response parser (status, Retry-After as seconds and as an HTTP-date, truncation at every
 * byte, bit flips), and the driver against a tiny HTTP/1.1 receiver on loopback (a thread,
 * plain TCP through the sink's test-only http:// scheme) scripted to answer 200, 429 with
 * Retry-After, 503, 500 and 400: the bearer token is sent, 2xx acknowledges, 429/5xx are
 * retried (Retry-After honoured), and a 400 batch is quarantined and skipped with a
 * critical log line.
 */
#include "tests/audit/test_sink_fixture.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <time.h>

static char *tmp;
static char keyprefix[600], logd[700], tokenp[700];

static int
suite_init(void)
{
	if ((tmp = test_tmpdir_new("audit-sink-https")) == NULL) {
		return -1;
	}
	snprintf(keyprefix, sizeof(keyprefix), "%s/k", tmp);
	snprintf(logd, sizeof(logd), "%s/log", tmp);
	snprintf(tokenp, sizeof(tokenp), "%s/token", tmp);
	if (test_file_write(tokenp, "s3cr3t-token\n", 13) != 0) {
		return -1;
	}
	return fix_log_append(logd, keyprefix, 0, 50, 0) == 0 ? 0 : -1;
}

static int
suite_cleanup(void)
{
	test_tmpdir_remove(tmp);
	return 0;
}

/* ---- encoders and parsers ------------------------------------------------------------- */

static void
test_body_exact(void)
{
	static const uint8_t zero[AUD_HASH_LEN];
	static const char payload[] = "{\"action\":\"hsmgate.keys.sign\"}";
	struct aud_buf line = {0}, b = {0};
	struct aud_sink_msg m[2];
	uint8_t leaf[AUD_HASH_LEN], chain[AUD_HASH_LEN];
	char want[1024], lh[65], ch[65];

	memset(m, 0, sizeof(m));
	CU_ASSERT_FATAL(aud_record_format(&line, 0, 1795720070329000000ull, 'E', payload,
	                                  strlen(payload), zero, leaf, chain) == 0);
	CU_ASSERT_FATAL(aud_record_parse(line.data, line.len - 1, &m[0].rec) == 0);
	m[1] = m[0];
	CU_ASSERT_FATAL(aud_sink_https_body(&b, "o/\"x", m, 2) == 0);
	/* The leaf of the worked example in AUDIT.md §2.1. */
	aud_hex_encode(leaf, AUD_HASH_LEN, lh);
	aud_hex_encode(chain, AUD_HASH_LEN, ch);
	CU_ASSERT_STRING_EQUAL(lh,
	                       "1eb09dc584bb8ca3445d3ab2287365d3d35a0a0e665247f33145f943200b6ab2");
	snprintf(
	        want, sizeof(want),
	        "[{\"origin\":\"o/\\\"x\",\"seq\":0,\"leaf\":\"%s\",\"chain\":\"%s\",\"event\":%s},"
	        "{\"origin\":\"o/\\\"x\",\"seq\":0,\"leaf\":\"%s\",\"chain\":\"%s\",\"event\":%s}]",
	        lh, ch, payload, lh, ch, payload);
	CU_ASSERT_STRING_EQUAL(b.data, want);
	aud_buf_free(&b);
	aud_buf_free(&line);
}

static void
test_response_parse(void)
{
	int status;
	uint32_t retry;
	time_t now = 1795720070;
	const char *ok = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";

	CU_ASSERT(aud_sink_http_response(ok, strlen(ok), &status, &retry, now) == 0);
	CU_ASSERT(status == 200 && retry == 0);
	CU_ASSERT(aud_sink_http_response("HTTP/1.0 429 Too Many\r\nretry-after:  3 \r\n\r\n", 43,
	                                 &status, &retry, now) == 0);
	CU_ASSERT(status == 429 && retry == 3000);
	/* 1795720070 + 5 s as an IMF-fixdate. */
	{
		const char *r =
		        "HTTP/1.1 503 Busy\r\nRetry-After: Thu, 26 Nov 2026 19:07:55 GMT\r\n\r\n";

		CU_ASSERT(aud_sink_http_response(r, strlen(r), &status, &retry, now) == 0);
		CU_ASSERT(status == 503 && retry == 5000);
	}
	CU_ASSERT(aud_sink_http_response("HTTP/1.1 429 X\r\nRetry-After: soon\r\n\r\n", 38, &status,
	                                 &retry, now) == 0);
	CU_ASSERT(retry == 0);
	CU_ASSERT(aud_sink_http_response("HTTP/1.1 400\r\n\r\n", 16, &status, &retry, now) == 0);
	CU_ASSERT(status == 400);
	CU_ASSERT(aud_sink_http_response("HTTP/2 200 OK\r\n\r\n", 17, &status, &retry, now) ==
	          AUD_ERR_MALFORMED);
	CU_ASSERT(aud_sink_http_response("HTTP/1.1 2000 OK\r\n\r\n", 20, &status, &retry, now) ==
	          AUD_ERR_MALFORMED);
	CU_ASSERT(aud_sink_http_response("HTTP/1.1 200 OK\r\nNoColon\r\n\r\n", 28, &status, &retry,
	                                 now) == AUD_ERR_MALFORMED);
}

static void
test_response_truncated_and_flipped(void)
{
	const char *r = "HTTP/1.1 429 Slow down\r\nRetry-After: 2\r\nX-A: b\r\n\r\n";
	size_t len = strlen(r), i;
	char buf[128];
	int status, bit;
	uint32_t retry;

	for (i = 0; i < len; i++) {
		CU_ASSERT(aud_sink_http_response(r, i, &status, &retry, 0) == AUD_ERR_MALFORMED);
		CU_ASSERT(status == 0);
	}
	for (i = 0; i < len; i++) {
		for (bit = 0; bit < 8; bit++) {
			int e;

			memcpy(buf, r, len);
			buf[i] ^= (char)(1 << bit);
			e = aud_sink_http_response(buf, len, &status, &retry, 0);
			CU_ASSERT(e == 0 || e == AUD_ERR_MALFORMED);
			CU_ASSERT(e != 0 || (status >= 100 && status <= 599));
		}
	}
}

/* ---- a scripted HTTP receiver on loopback --------------------------------------------- */

struct server {
	struct fix_server srv;
	const char *const *script; /* responses in turn; the last one repeats */
	size_t nscript;
	pthread_mutex_t mu;
	size_t requests;
	uint64_t req_ms[16]; /* arrival time of each of the first requests */
	int auth_ok;         /* every request carried the bearer token */
	char *bodies;        /* bodies of 2xx-answered requests, one per line */
	size_t bodies_len;
};

static void
srv_handle(struct server *sv, int fd)
{
	char buf[1 << 17];
	size_t have = 0, clen = 0, hlen;
	const char *resp, *h, *cl;
	ssize_t n;

	for (;;) {
		char *end;

		n = recv(fd, buf + have, sizeof(buf) - 1 - have, 0);
		if (n <= 0) {
			return;
		}
		have += (size_t)n;
		buf[have] = '\0';
		if ((end = strstr(buf, "\r\n\r\n")) == NULL) {
			continue;
		}
		hlen = (size_t)(end - buf) + 4;
		cl = strcasestr(buf, "\r\nContent-Length: ");
		clen = cl != NULL && cl < end ? strtoul(cl + 18, NULL, 10) : 0;
		if (have >= hlen + clen) {
			break;
		}
	}
	pthread_mutex_lock(&sv->mu);
	if (sv->requests < 16) {
		sv->req_ms[sv->requests] = aud_mono_ms();
	}
	resp = sv->script[sv->requests < sv->nscript ? sv->requests : sv->nscript - 1];
	sv->requests++;
	h = strstr(buf, "\r\nAuthorization: Bearer s3cr3t-token\r\n");
	sv->auth_ok =
	        sv->auth_ok && h != NULL && strncmp(buf, "POST /ingest HTTP/1.1\r\n", 23) == 0;
	if (strncmp(resp, "HTTP/1.1 2", 10) == 0) {
		sv->bodies = realloc(sv->bodies, sv->bodies_len + clen + 2);
		memcpy(sv->bodies + sv->bodies_len, buf + hlen, clen);
		sv->bodies_len += clen;
		sv->bodies[sv->bodies_len++] = '\n';
		sv->bodies[sv->bodies_len] = '\0';
	}
	pthread_mutex_unlock(&sv->mu);
	(void)send(fd, resp, strlen(resp), MSG_NOSIGNAL);
}

/* fix_server's conn: one request on fd, then the socket closed. */
static void
srv_accepted(void *arg, int fd)
{
	srv_handle(arg, fd);
	close(fd);
}

static int
srv_start(struct server *sv, const char *const *script, size_t n)
{
	memset(sv, 0, sizeof(*sv));
	pthread_mutex_init(&sv->mu, NULL);
	sv->script = script;
	sv->nscript = n;
	sv->auth_ok = 1;
	return fix_server_start(&sv->srv, srv_accepted, sv);
}

static void
srv_stop(struct server *sv)
{
	fix_server_stop(&sv->srv);
	free(sv->bodies);
	pthread_mutex_destroy(&sv->mu);
}

static void
http_opts(struct aud_sink_options *o, const char *url, const char *cursor)
{
	aud_sink_options_init(o);
	o->log_dir = logd;
	o->url = url;
	o->cursor_path = cursor;
	o->token_file = tokenp;
	o->batch_max = 20;
	o->window_max = 100;
	o->backoff_min_ms = 40;
	o->backoff_max_ms = 200;
	o->timeout_ms = 2000;
	o->log = fix_log_cb;
}

/* How many events of the log appear in the 2xx-acknowledged bodies, each as
 * "seq":N,...,"event":<stored bytes>}. */
static size_t
count_in_bodies(const struct server *sv, size_t *nevents)
{
	char **ev = NULL, pat[80];
	uint64_t *seqs = NULL, head;
	size_t n = 0, i, found = 0;

	CU_ASSERT_FATAL(fix_log_events(logd, &ev, &seqs, &n, &head) == 0);
	for (i = 0; i < n && sv->bodies != NULL; i++) {
		const char *p;

		snprintf(pat, sizeof(pat), "\"seq\":%llu,", (unsigned long long)seqs[i]);
		p = strstr(sv->bodies, pat);
		found += p != NULL && (p = strstr(p, ",\"event\":")) != NULL &&
		         strncmp(p + 9, ev[i], strlen(ev[i])) == 0 && p[9 + strlen(ev[i])] == '}';
	}
	*nevents = n;
	free(seqs);
	fix_strv_free(ev, n);
	return found;
}

static const char r200[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
static const char r429[] = "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\n\r\n";
static const char r503[] = "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\n\r\n";
static const char r500[] = "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n";
static const char r400[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";

/* Starts a receiver answering `script` in turn, runs a sink over the whole log into it (its
 * cursor tmp/<name>.cursor) and says whether the cursor then stood at the log's head. The
 * receiver keeps what it got for the caller's checks: srv_stop() it afterwards. */
static int
deliver_to(struct server *sv, const char *const *script, size_t n, const char *name)
{
	struct aud_sink_options o;
	struct aud_sink *s = NULL;
	char url[96], cur[720];
	int at_head;

	CU_ASSERT_FATAL(srv_start(sv, script, n) == 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/ingest", sv->srv.port);
	snprintf(cur, sizeof(cur), "%s/%s.cursor", tmp, name);
	http_opts(&o, url, cur);
	CU_ASSERT_FATAL(aud_sink_open(&s, &o) == 0);
	CU_ASSERT(aud_sink_run_once(s) == 0);
	at_head = aud_sink_cursor(s) == aud_sink_head(s);
	aud_sink_close(s);
	return at_head;
}

static void
test_http_ok(void)
{
	static const char *const script[] = {r200};
	struct server sv;
	size_t n;

	CU_ASSERT(deliver_to(&sv, script, 1, "ok"));
	CU_ASSERT(count_in_bodies(&sv, &n) == n);
	CU_ASSERT(sv.requests == (n + 19) / 20); /* batches of batch_max */
	CU_ASSERT(sv.auth_ok);
	srv_stop(&sv);
}

/* 429 and 503 with Retry-After: 1 — the retry waits at least that second, then succeeds. */
static void
test_http_retry_after(void)
{
	static const char *const script[] = {r429, r503, r200};
	struct server sv;
	size_t n;

	CU_ASSERT(deliver_to(&sv, script, 3, "retry"));
	CU_ASSERT(count_in_bodies(&sv, &n) == n);
	CU_ASSERT(sv.requests >= 3);
	CU_ASSERT(sv.req_ms[1] - sv.req_ms[0] >= 990);
	CU_ASSERT(sv.req_ms[2] - sv.req_ms[1] >= 990);
	srv_stop(&sv);
}

/* A 500 is transient: retried with backoff (no Retry-After), nothing lost or skipped. */
static void
test_http_5xx_backoff(void)
{
	static const char *const script[] = {r500, r500, r500, r200};
	struct server sv;
	size_t n;

	(void)deliver_to(&sv, script, 4, "backoff");
	CU_ASSERT(count_in_bodies(&sv, &n) == n);
	/* Equal jitter: each wait is at least half the step (40, 80, 160 ms). */
	CU_ASSERT(sv.req_ms[1] - sv.req_ms[0] >= 20);
	CU_ASSERT(sv.req_ms[2] - sv.req_ms[1] >= 40);
	CU_ASSERT(sv.req_ms[3] - sv.req_ms[2] >= 80);
	srv_stop(&sv);
}

/* A batch that got its 2xx stays acknowledged when a later batch of the same pass fails: only
 * the failed one and those after it are sent again. */
static void
test_http_acked_before_failure(void)
{
	static const char *const script[] = {r200, r500, r200};
	struct server sv;
	const char *p;
	unsigned first_seq_seen = 0;
	size_t n;

	CU_ASSERT(deliver_to(&sv, script, 3, "partial"));
	CU_ASSERT(count_in_bodies(&sv, &n) == n);
	CU_ASSERT_FATAL(n > 40); /* at least three batches */
	/* every batch once with a 2xx, plus the one refused with a 500 */
	CU_ASSERT_EQUAL(sv.requests, (n + 19) / 20 + 1);
	for (p = sv.bodies; p != NULL && (p = strstr(p, "\"seq\":0,")) != NULL; p++) {
		first_seq_seen++;
	}
	CU_ASSERT_EQUAL(first_seq_seen, 1);
	srv_stop(&sv);
}

/* A 400 is poison: that batch goes to the quarantine file with a critical log line, the
 * cursor moves on, and the following batches are delivered. */
static void
test_http_400_quarantined(void)
{
	static const char *const script[] = {r400, r200};
	struct server sv;
	char qpath[740], *q;
	size_t n, qlen, found;

	snprintf(qpath, sizeof(qpath), "%s/q.cursor.quarantine", tmp);
	fix_crit_lines = 0;
	fix_logbuf[0] = '\0';
	CU_ASSERT(deliver_to(&sv, script, 2, "q"));
	found = count_in_bodies(&sv, &n);
	CU_ASSERT(found == n - 20); /* the first batch was refused */
	CU_ASSERT(fix_crit_lines == 1);
	CU_ASSERT(strstr(fix_logbuf, "HTTP 400") != NULL &&
	          strstr(fix_logbuf, "quarantined") != NULL);
	q = fix_slurp(qpath, &qlen);
	CU_ASSERT_FATAL(q != NULL);
	CU_ASSERT(qlen > 2 && q[0] == '[' && q[qlen - 2] == ']' && q[qlen - 1] == '\n');
	CU_ASSERT(strstr(q, "\"seq\":0,") != NULL);
	CU_ASSERT(memchr(q, '\n', qlen) == q + qlen - 1); /* one batch, one line */
	free(q);
	srv_stop(&sv);
}

static void
test_token_refused(void)
{
	struct aud_sink_options o;
	struct aud_sink *s = NULL;
	char cur[720], bad[720];

	snprintf(cur, sizeof(cur), "%s/tok.cursor", tmp);
	snprintf(bad, sizeof(bad), "%s/badtoken", tmp);
	http_opts(&o, "http://127.0.0.1:9/x", cur);
	o.token_file = bad;
	/* A token that would inject a header line. */
	CU_ASSERT(test_file_write(bad, "abc\r\nX-Evil: 1\n", 15) == 0);
	CU_ASSERT(aud_sink_open(&s, &o) == AUD_ERR_KEY);
	CU_ASSERT(test_file_write(bad, "\n", 1) == 0);
	CU_ASSERT(aud_sink_open(&s, &o) == AUD_ERR_KEY);
	CU_ASSERT(s == NULL);
}

static const struct test_case cases[] = {
        {"body: JSON array of envelopes, byte-exact", test_body_exact},
        {"response: status and Retry-After", test_response_parse},
        {"response: truncated at every byte, bit flips", test_response_truncated_and_flipped},
        {"token: control bytes refused", test_token_refused},
        {"200: every event delivered, bearer token", test_http_ok},
        {"429/503: Retry-After honoured", test_http_retry_after},
        {"500: exponential backoff, then delivered", test_http_5xx_backoff},
        {"a batch acknowledged before a failure is not sent again", test_http_acked_before_failure},
        {"400: batch quarantined, stream goes on", test_http_400_quarantined},
        {NULL, NULL},
};

void
test_register(void)
{
	test_suite_add("audit/sink_https", suite_init, suite_cleanup, cases);
}
