/*
 * tests/audit/test_sink_tls.c — audit/sink_tls.c: parsing "HOST:PORT/PATH" targets
 * (defaults, IPv6 literals, refusals), the TLS context's refusals (missing files, a
 * certificate without its key), and a connection refused by a closed port. The TLS
 * connection itself is exercised against a loopback receiver in test_sink_syslog.c and
 * against rsyslog in tests/e2e/syslog.sh.
 */
#include "tests/audit/test_sink_fixture.h"

static void
test_target_parse(void)
{
	char host[256], path[1024];
	uint16_t port;

	CU_ASSERT(aud_sink_target_parse("siem.example:6514", 1, host, &port, NULL) == 0);
	CU_ASSERT_STRING_EQUAL(host, "siem.example");
	CU_ASSERT(port == 6514);
	CU_ASSERT(aud_sink_target_parse("siem.example", 6514, host, &port, NULL) == 0);
	CU_ASSERT(port == 6514);
	CU_ASSERT(aud_sink_target_parse("[::1]:8443/logs/v1/singles", 443, host, &port, path) == 0);
	CU_ASSERT_STRING_EQUAL(host, "::1");
	CU_ASSERT(port == 8443);
	CU_ASSERT_STRING_EQUAL(path, "/logs/v1/singles");
	CU_ASSERT(aud_sink_target_parse("h", 443, host, &port, path) == 0);
	CU_ASSERT_STRING_EQUAL(path, "/");
	CU_ASSERT(aud_sink_target_parse("h/p?q=1", 443, host, &port, path) == 0);
	CU_ASSERT_STRING_EQUAL(path, "/p?q=1");
}

static void
test_target_refused(void)
{
	static const char *const bad[] = {
	        "",
	        ":514",
	        "h:",
	        "h:0",
	        "h:65536",
	        "h:12x",
	        "[::1",
	        "[]:1",
	        "h:1/a b",
	        "h:1/a\r\nX: y",
	        "u@h:1",
	        "h h:1",
	        "h:99999999999999999999",
	};
	char host[256], path[1024], longhost[400];
	uint16_t port;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CU_ASSERT(aud_sink_target_parse(bad[i], 1, host, &port, path) == AUD_ERR_INVALID);
	}
	/* A path where the scheme takes none (syslog). */
	CU_ASSERT(aud_sink_target_parse("h:1/x", 1, host, &port, NULL) == AUD_ERR_INVALID);
	memset(longhost, 'a', sizeof(longhost) - 1);
	longhost[sizeof(longhost) - 1] = '\0';
	CU_ASSERT(aud_sink_target_parse(longhost, 1, host, &port, NULL) == AUD_ERR_INVALID);
}

static void
test_tls_ctx_refusals(void)
{
	struct aud_sink_options o;
	SSL_CTX *ctx = NULL;
	char why[1200];

	aud_sink_options_init(&o);
	CU_ASSERT(aud_sink_tls_ctx(&o, &ctx, why, sizeof(why)) == 0); /* the system store */
	CU_ASSERT(why[0] == '\0');
	SSL_CTX_free(ctx);
	/* Each refusal names the file and its role. */
	o.ca_file = "/nonexistent/ca.pem";
	CU_ASSERT(aud_sink_tls_ctx(&o, &ctx, why, sizeof(why)) == AUD_ERR_KEY && ctx == NULL);
	CU_ASSERT(strstr(why, "CA file /nonexistent/ca.pem cannot be used") != NULL);
	aud_sink_options_init(&o);
	o.cert_file = "/nonexistent/c.pem";
	CU_ASSERT(aud_sink_tls_ctx(&o, &ctx, why, sizeof(why)) == AUD_ERR_INVALID && ctx == NULL);
	CU_ASSERT(strstr(why, "needs its key") != NULL);
	o.key_file = "/nonexistent/k.pem";
	CU_ASSERT(aud_sink_tls_ctx(&o, &ctx, why, sizeof(why)) == AUD_ERR_KEY && ctx == NULL);
	CU_ASSERT(strstr(why, "client certificate /nonexistent/c.pem") != NULL);
}

static void
test_connect_refused(void)
{
	struct aud_sink_conn *c = NULL;
	char err[256];

	/* Port 1 on loopback: nothing listens there in a test environment. */
	CU_ASSERT(aud_sink_conn_open(&c, NULL, "127.0.0.1", 1, 1000, err) == AUD_ERR_IO);
	CU_ASSERT(c == NULL);
	CU_ASSERT(strstr(err, "127.0.0.1:1") != NULL);
	CU_ASSERT(aud_sink_conn_open(&c, NULL, "no-such-host.invalid", 1, 1000, err) == AUD_ERR_IO);
	CU_ASSERT(c == NULL);
	aud_sink_conn_close(NULL);
}

static const struct test_case cases[] = {
        {"target: host, port, path, IPv6", test_target_parse},
        {"target: malformed refused", test_target_refused},
        {"TLS context: bad files refused", test_tls_ctx_refusals},
        {"connect: refused port, unknown host", test_connect_refused},
        {NULL, NULL},
};

void
test_register(void)
{
	test_suite_add("audit/sink_tls", NULL, NULL, cases);
}
