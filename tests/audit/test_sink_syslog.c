/*
 * tests/audit/test_sink_syslog.c — audit/sink_syslog.c: the RFC 5424 message and RFC 5425
 * frame for a known record, byte for byte; PRI from the severity; SD-PARAM escaping
 * (RFC 5424 §6.3.3); MSGID fallback; then the driver against a TLS receiver on loopback
 * (a thread, certificate made here with EVP): delivery of every record, a receiver that
 * drops the connection (everything unacknowledged is sent again), and a server that the
 * CA does not vouch for (nothing sent, nothing acknowledged).
 */
#include "tests/audit/test_sink_fixture.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>

static char *tmp;
static char keyprefix[600], certp[700], keyp[700], othercertp[700], logd[700];

/* ---- framing -------------------------------------------------------------------------- */

static const char payload_normal[] =
        "{\"eventTime\":\"2026-11-26T19:07:50.32+0000\",\"action\":\"hsmgate.keys.sign\","
        "\"outcome\":\"success\",\"severity\":\"normal\"}";

/* A record line for seq 7 at 1795720070.329123456 with this payload, as the writer
 * would store it (first record after a zero chain). */
static void
mk_msg(struct aud_sink_msg *m, struct aud_buf *line, const char *payload)
{
	static const uint8_t zero[AUD_HASH_LEN];
	uint8_t leaf[AUD_HASH_LEN], chain[AUD_HASH_LEN];

	memset(m, 0, sizeof(*m));
	memset(line, 0, sizeof(*line));
	CU_ASSERT_FATAL(aud_record_format(line, 7, 1795720070329123456ull, 'E', payload,
	                                  strlen(payload), zero, leaf, chain) == 0);
	CU_ASSERT_FATAL(aud_record_parse(line->data, line->len - 1, &m->rec) == 0);
}

static void
test_frame_exact(void)
{
	static const char want_msg[] =
	        "<110>1 2026-11-26T19:07:50.329123Z gw1.example hsmgate 4242 hsmgate.keys.sign "
	        "[hsmgate@32473 origin=\"hsmgate.test/audit/sink\" seq=\"7\" "
	        "leaf=\"4391b0b14d33bba1f515f429cdd61a8c4831eabcfcbb3c6563b2fd48b506db35\" "
	        "chain=\"1ecf67a0de0b18cf5d1c13f26afccea8d9b49946b1649d113ff60b34d0fd9389\"] "
	        "{\"eventTime\":\"2026-11-26T19:07:50.32+0000\",\"action\":\"hsmgate.keys.sign\","
	        "\"outcome\":\"success\",\"severity\":\"normal\"}";
	struct aud_sink_msg m;
	struct aud_buf line, b = {0};

	mk_msg(&m, &line, payload_normal);
	CU_ASSERT_FATAL(aud_sink_syslog_frame(&b, FIX_ORIGIN, "gw1.example", "4242", &m) == 0);
	/* RFC 5425 §4.3: "392 " then exactly the 392 octets of the message. */
	CU_ASSERT(strlen(want_msg) == 392);
	CU_ASSERT(b.len == 4 + 392);
	CU_ASSERT(memcmp(b.data, "392 ", 4) == 0);
	CU_ASSERT(b.len == 396 && memcmp(b.data + 4, want_msg, 392) == 0);
	/* Frames concatenate: a second one follows directly. */
	CU_ASSERT(aud_sink_syslog_frame(&b, FIX_ORIGIN, "gw1.example", "4242", &m) == 0);
	CU_ASSERT(b.len == 2 * 396 && memcmp(b.data + 396, b.data, 396) == 0);
	aud_buf_free(&b);
	aud_buf_free(&line);
}

static int
pri_of(const char *payload)
{
	struct aud_sink_msg m;
	struct aud_buf line, b = {0};
	int pri = -1;

	mk_msg(&m, &line, payload);
	if (aud_sink_syslog_frame(&b, "o", "h", "-", &m) == 0) {
		const char *lt = strchr(b.data, '<');

		pri = lt != NULL ? atoi(lt + 1) : -1;
	}
	aud_buf_free(&b);
	aud_buf_free(&line);
	return pri;
}

/* RFC 5424 §6.2.1: PRIVAL = facility 13 (log audit) * 8 + severity. */
static void
test_pri_from_severity(void)
{
	CU_ASSERT(pri_of("{\"action\":\"hsmgate.keys.destroy\",\"severity\":\"critical\"}") == 106);
	CU_ASSERT(pri_of("{\"action\":\"hsmgate.keys.rotate\",\"severity\":\"warning\"}") == 108);
	CU_ASSERT(pri_of("{\"action\":\"hsmgate.keys.sign\",\"severity\":\"normal\"}") == 110);
	CU_ASSERT(pri_of("{\"action\":\"hsmgate.keys.sign\"}") == 110);
	CU_ASSERT(pri_of("{\"severity\":\"critical-ish\"}") == 110);
}

static void
test_sd_escaping(void)
{
	struct aud_sink_msg m;
	struct aud_buf line, b = {0};

	mk_msg(&m, &line, payload_normal);
	/* An origin cannot hold these (aud_log_open refuses it), but the encoder must not rely
	 * on that: '"', '\' and ']' MUST be escaped as \" \\ \] (RFC 5424 §6.3.3). */
	CU_ASSERT_FATAL(aud_sink_syslog_frame(&b, "a\"b\\c]d", "h", "-", &m) == 0);
	CU_ASSERT(strstr(b.data, " origin=\"a\\\"b\\\\c\\]d\" seq=\"7\"") != NULL);
	aud_buf_free(&b);
	aud_buf_free(&line);
}

/* RFC 5424 §6.2.7: MSGID is at most 32 printable characters, else NILVALUE. */
static void
test_msgid(void)
{
	struct aud_sink_msg m;
	struct aud_buf line, b = {0};

	mk_msg(&m, &line, "{\"action\":\"hsmgate.partition-session.create\",\"x\":1}");
	CU_ASSERT_FATAL(aud_sink_syslog_frame(&b, "o", "h", "1", &m) == 0);
	CU_ASSERT(strstr(b.data, " hsmgate 1 hsmgate.partition-session.create [") != NULL);
	aud_buf_free(&line);
	b.len = 0;
	mk_msg(&m, &line, "{\"action\":\"hsmgate.partition-sessions.create\",\"x\":1}");
	CU_ASSERT_FATAL(aud_sink_syslog_frame(&b, "o", "h", "1", &m) == 0);
	CU_ASSERT(strstr(b.data, " hsmgate 1 - [hsmgate@32473 ") != NULL);
	aud_buf_free(&line);
	b.len = 0;
	mk_msg(&m, &line, "{\"x\":1}");
	CU_ASSERT_FATAL(aud_sink_syslog_frame(&b, "o", "h", "1", &m) == 0);
	CU_ASSERT(strstr(b.data, " hsmgate 1 - [hsmgate@32473 ") != NULL);
	aud_buf_free(&line);
	aud_buf_free(&b);
}

/* ---- a TLS receiver on loopback ------------------------------------------------------- */

struct receiver {
	struct fix_server srv;
	SSL_CTX *ctx;
	int drop_after; /* close the first connection abruptly after this many messages */
	pthread_mutex_t mu;
	char **msgs;
	size_t nmsgs, cap;
	int connections;
};

static void
rcv_add(struct receiver *rv, const char *m, size_t n)
{
	pthread_mutex_lock(&rv->mu);
	if (rv->nmsgs == rv->cap) {
		rv->cap = rv->cap ? 2 * rv->cap : 64;
		rv->msgs = realloc(rv->msgs, rv->cap * sizeof(*rv->msgs));
	}
	rv->msgs[rv->nmsgs++] = strndup(m, n);
	pthread_mutex_unlock(&rv->mu);
}

/* Reads octet-counted frames until EOF; returns when the peer goes or drop_after hits. */
static void
rcv_conn(void *arg, SSL *ssl, int fd)
{
	struct receiver *rv = arg;
	char buf[1 << 16];
	size_t have = 0;
	int count = 0;

	(void)fd;
	while (!atomic_load(&rv->srv.stop)) {
		int n = SSL_read(ssl, buf + have, (int)(sizeof(buf) - have));
		size_t off = 0;

		if (n <= 0) {
			return;
		}
		have += (size_t)n;
		for (;;) {
			char *sp = memchr(buf + off, ' ', have - off);
			size_t len;

			if (sp == NULL) {
				break;
			}
			len = (size_t)strtoul(buf + off, NULL, 10);
			if ((size_t)(sp + 1 - buf) + len > have) {
				break;
			}
			rcv_add(rv, sp + 1, len);
			off = (size_t)(sp + 1 - buf) + len;
			if (rv->drop_after > 0 && ++count == rv->drop_after) {
				rv->drop_after = 0;
				return; /* abrupt: whatever is still in flight is lost */
			}
		}
		memmove(buf, buf + off, have - off);
		have -= off;
	}
}

static void
rcv_accepted(void *arg, int fd)
{
	struct receiver *rv = arg;

	rv->connections++;
	fix_tls_serve(rv->ctx, fd, rcv_conn, rv);
}

static int
rcv_start(struct receiver *rv, int drop_after)
{
	memset(rv, 0, sizeof(*rv));
	pthread_mutex_init(&rv->mu, NULL);
	rv->drop_after = drop_after;
	if (fix_tls_ctx(certp, keyp, &rv->ctx) != 0) {
		return -1;
	}
	return fix_server_start(&rv->srv, rcv_accepted, rv);
}

static void
rcv_stop(struct receiver *rv)
{
	fix_server_stop(&rv->srv);
	SSL_CTX_free(rv->ctx);
	fix_strv_free(rv->msgs, rv->nmsgs);
	pthread_mutex_destroy(&rv->mu);
}

static int
suite_init(void)
{
	if ((tmp = test_tmpdir_new("audit-sink-syslog")) == NULL) {
		return -1;
	}
	snprintf(keyprefix, sizeof(keyprefix), "%s/k", tmp);
	snprintf(certp, sizeof(certp), "%s/server.crt", tmp);
	snprintf(keyp, sizeof(keyp), "%s/server.key", tmp);
	snprintf(othercertp, sizeof(othercertp), "%s/other.crt", tmp);
	snprintf(logd, sizeof(logd), "%s/log", tmp);
	if (fix_write_cert(certp, keyp, "localhost") != 0 ||
	    fix_write_cert(othercertp, NULL, "other") != 0) {
		return -1;
	}
	return fix_log_append(logd, keyprefix, 0, 120, 0) == 0 ? 0 : -1;
}

static int
suite_cleanup(void)
{
	test_tmpdir_remove(tmp);
	return 0;
}

/* Every event of the log was received (at least once), with MSG byte-identical to the
 * stored event and seq="N" in the structured data. */
static void
check_received(struct receiver *rv, int exactly_once)
{
	char **ev = NULL;
	uint64_t *seqs = NULL, head;
	size_t n = 0, i, j;

	CU_ASSERT_FATAL(fix_log_events(logd, &ev, &seqs, &n, &head) == 0);
	pthread_mutex_lock(&rv->mu);
	for (i = 0; i < n; i++) {
		char sd[64];
		unsigned c = 0;

		snprintf(sd, sizeof(sd), " seq=\"%llu\" ", (unsigned long long)seqs[i]);
		for (j = 0; j < rv->nmsgs; j++) {
			const char *msg = strstr(rv->msgs[j], "\"] {");

			if (strstr(rv->msgs[j], sd) != NULL && msg != NULL &&
			    strcmp(msg + 3, ev[i]) == 0) {
				c++;
			}
		}
		CU_ASSERT(exactly_once ? c == 1 : c >= 1);
	}
	if (exactly_once) {
		CU_ASSERT(rv->nmsgs == n);
	}
	pthread_mutex_unlock(&rv->mu);
	free(seqs);
	fix_strv_free(ev, n);
}

static void
syslog_opts(struct aud_sink_options *o, const char *url, const char *cursor, const char *ca)
{
	aud_sink_options_init(o);
	o->log_dir = logd;
	o->url = url;
	o->cursor_path = cursor;
	o->ca_file = ca;
	o->batch_max = 16;
	o->window_max = 256;
	o->settle_ms = 200;
	o->poll_ms = 20;
	o->backoff_min_ms = 20;
	o->backoff_max_ms = 100;
	o->timeout_ms = 2000;
	o->log = fix_log_cb;
}

static void
test_tls_delivery(void)
{
	struct receiver rv;
	struct aud_sink_options o;
	struct aud_sink *s = NULL;
	char url[64], cur[700];
	uint64_t next, head;

	CU_ASSERT_FATAL(rcv_start(&rv, 0) == 0);
	snprintf(url, sizeof(url), "syslog://127.0.0.1:%u", rv.srv.port);
	snprintf(cur, sizeof(cur), "%s/deliver.cursor", tmp);
	syslog_opts(&o, url, cur, certp);
	CU_ASSERT_FATAL(aud_sink_open(&s, &o) == 0);
	CU_ASSERT(aud_sink_run_once(s) == 0);
	head = aud_sink_head(s);
	CU_ASSERT(aud_sink_cursor(s) == head);
	aud_sink_close(s);
	CU_ASSERT(aud_sink_cursor_read(cur, &next, NULL) == 0 && next == head);
	/* run_once returns after the settle time, when the receiver has read everything. */
	usleep(100000);
	check_received(&rv, 1);
	CU_ASSERT(rv.connections == 1);
	rcv_stop(&rv);
}

/* The receiver drops the connection after 10 messages: everything written after them sat
 * in socket buffers and is gone. The sink notices, reconnects and sends every record that
 * had not settled again: in the end all are there. */
static void
test_tls_receiver_drops(void)
{
	struct receiver rv;
	struct aud_sink_options o;
	struct aud_sink *s = NULL;
	char url[64], cur[700];

	CU_ASSERT_FATAL(rcv_start(&rv, 10) == 0);
	snprintf(url, sizeof(url), "syslog://127.0.0.1:%u", rv.srv.port);
	snprintf(cur, sizeof(cur), "%s/drop.cursor", tmp);
	syslog_opts(&o, url, cur, certp);
	CU_ASSERT_FATAL(aud_sink_open(&s, &o) == 0);
	CU_ASSERT(aud_sink_run_once(s) == 0);
	CU_ASSERT(aud_sink_cursor(s) == aud_sink_head(s));
	aud_sink_close(s);
	usleep(100000);
	check_received(&rv, 0);
	CU_ASSERT(rv.connections >= 2);
	rcv_stop(&rv);
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

/* RFC 5425 §5.1: the server is authenticated. With a CA that did not sign its certificate
 * the handshake fails: nothing is delivered, the cursor stays, the runner keeps retrying. */
static void
test_tls_untrusted_server(void)
{
	struct receiver rv;
	struct aud_sink_options o;
	struct aud_sink *s = NULL;
	struct stopper st;
	pthread_t th;
	char url[64], cur[700];

	CU_ASSERT_FATAL(rcv_start(&rv, 0) == 0);
	snprintf(url, sizeof(url), "syslog://127.0.0.1:%u", rv.srv.port);
	snprintf(cur, sizeof(cur), "%s/untrusted.cursor", tmp);
	syslog_opts(&o, url, cur, othercertp);
	fix_logbuf[0] = '\0';
	CU_ASSERT_FATAL(aud_sink_open(&s, &o) == 0);
	st.s = s;
	st.ms = 300;
	CU_ASSERT_FATAL(pthread_create(&th, NULL, stop_later, &st) == 0);
	CU_ASSERT(aud_sink_run_once(s) == AUD_ERR_CLOSED);
	pthread_join(th, NULL);
	CU_ASSERT(aud_sink_cursor(s) == 0);
	CU_ASSERT(strstr(fix_logbuf, "TLS handshake") != NULL);
	aud_sink_close(s);
	pthread_mutex_lock(&rv.mu);
	CU_ASSERT(rv.nmsgs == 0);
	pthread_mutex_unlock(&rv.mu);
	rcv_stop(&rv);
}

static const struct test_case cases[] = {
        {"frame: byte-exact RFC 5424 / RFC 5425", test_frame_exact},
        {"PRI: facility 13, severity from the event", test_pri_from_severity},
        {"SD-PARAM escaping (RFC 5424 6.3.3)", test_sd_escaping},
        {"MSGID: the action, or NILVALUE", test_msgid},
        {"TLS: every record delivered once", test_tls_delivery},
        {"TLS: receiver drops, all resent", test_tls_receiver_drops},
        {"TLS: untrusted server, nothing sent", test_tls_untrusted_server},
        {NULL, NULL},
};

void
test_register(void)
{
	test_suite_add("audit/sink_syslog", suite_init, suite_cleanup, cases);
}
