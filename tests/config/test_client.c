/* tests/config/test_client.c — config/client.c: the client module's HSMGATE_CONF file. */
#include "config/cfg.h"
#include "config/cfg_int.h"
#include "tests/lib/test.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXAMPLE "config/examples/client.yaml"
#define SECRET  "hsk_SeCrEt0123456789abcdefghijklmnopqrstuvwxy"

static char *tmp;
static char file[PATH_MAX];
static char err[512];

static int
suite_init(void)
{
	tmp = test_tmpdir_new("cfgc");
	if (tmp == NULL) {
		return -1;
	}
	snprintf(file, sizeof(file), "%s/client.yaml", tmp);
	return 0;
}

static int
suite_cleanup(void)
{
	test_tmpdir_remove(tmp);
	tmp = NULL;
	return 0;
}

static int
load_text(const char *yaml, struct cfg_client **c)
{
	if (test_file_write(file, yaml, strlen(yaml)) != 0) {
		return -1;
	}
	err[0] = '\0';
	return cfg_client_load(file, c, err, sizeof(err));
}

static void
expect_fail(const char *yaml, int code, unsigned line, const char *needle)
{
	struct cfg_client *c = (struct cfg_client *)1;
	char prefix[PATH_MAX + 32];
	int r = load_text(yaml, &c);

	CU_ASSERT_EQUAL(r, code);
	CU_ASSERT_PTR_NULL(c);
	if (line > 0) {
		snprintf(prefix, sizeof(prefix), "%s:%u:", file, line);
	} else {
		snprintf(prefix, sizeof(prefix), "%s: ", file);
	}
	CU_ASSERT_EQUAL(strncmp(err, prefix, strlen(prefix)), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, needle));
	/* whatever went wrong, the key never appears in the message */
	CU_ASSERT_PTR_NULL(strstr(err, "SeCrEt"));
	if (r != code || strncmp(err, prefix, strlen(prefix)) != 0 || strstr(err, needle) == NULL) {
		fprintf(stderr, "  got %d '%s'; want %d '%s' ... '%s'\n", r, err, code, prefix,
		        needle);
	}
	if (c != (struct cfg_client *)1) {
		cfg_client_free(c);
	}
}

static int
ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

static void
test_example_loads(void)
{
	struct cfg_client *c = NULL;
	int r = cfg_client_load(EXAMPLE, &c, err, sizeof(err));

	CU_ASSERT_EQUAL_FATAL(r, 0);
	if (r != 0) {
		fprintf(stderr, "  %s\n", err);
		return;
	}
	CU_ASSERT_TRUE(ends_with(c->path, "/" EXAMPLE));
	CU_ASSERT_STRING_EQUAL(c->gateway, "localhost:7443");
	CU_ASSERT_TRUE(ends_with(c->ca, "/config/examples/pki/ca.pem"));
	CU_ASSERT_EQUAL(c->ca[0], '/');
	CU_ASSERT_TRUE(ends_with(c->cert, "/config/examples/pki/alice.pem"));
	CU_ASSERT_TRUE(ends_with(c->key, "/config/examples/pki/alice.key"));
	CU_ASSERT_PTR_NULL(c->api_key);
	CU_ASSERT_STRING_EQUAL(c->server_name, "localhost");
	CU_ASSERT_EQUAL(c->timeout_ms, 30000);
	CU_ASSERT_EQUAL(c->connect_timeout_ms, 5000);
	cfg_client_free(c);
}

static void
test_defaults(void)
{
	struct cfg_client *c = NULL;

	CU_ASSERT_EQUAL_FATAL(load_text("gateway: gw.example:7443\nca: ca.pem\n"
	                                "api_key: " SECRET "\n",
	                                &c),
	                      0);
	CU_ASSERT_STRING_EQUAL(c->server_name, "gw.example");
	CU_ASSERT_EQUAL(c->timeout_ms, 30000);
	CU_ASSERT_EQUAL(c->connect_timeout_ms, 5000);
	CU_ASSERT_TRUE(c->defer_init);
	CU_ASSERT_EQUAL(c->busy_poll_us, CFG_CLIENT_BUSY_POLL_US_DEFAULT);
	CU_ASSERT_STRING_EQUAL(c->api_key, SECRET);
	CU_ASSERT_PTR_NULL(c->cert);
	CU_ASSERT_STRING_EQUAL(c->path, file);
	cfg_client_free(c);
}

static void
test_defer_init_off(void)
{
	struct cfg_client *c = NULL;

	CU_ASSERT_EQUAL_FATAL(load_text("gateway: gw:1\nca: ca.pem\napi_key: " SECRET "\n"
	                                "defer_init: false\n",
	                                &c),
	                      0);
	CU_ASSERT_FALSE(c->defer_init);
	cfg_client_free(c);
}

static void
test_busy_poll(void)
{
	struct cfg_client *c = NULL;

	CU_ASSERT_EQUAL_FATAL(load_text("gateway: gw:1\nca: ca.pem\napi_key: " SECRET "\n"
	                                "busy_poll_us: 0\n",
	                                &c),
	                      0);
	CU_ASSERT_EQUAL(c->busy_poll_us, 0); /* never */
	cfg_client_free(c);
	expect_fail("gateway: h:1\nca: ca\ncert: c\nkey: k\nbusy_poll_us: 10001\n", CFG_ERR_INVALID,
	            5, "busy_poll_us: 10001 is out of range (0..10000)");
	expect_fail("gateway: h:1\nca: ca\ncert: c\nkey: k\nbusy_poll_us: soon\n", CFG_ERR_SYNTAX,
	            5, "key 'busy_poll_us': expected an unsigned integer");
}

static void
test_ipv6_gateway(void)
{
	struct cfg_client *c = NULL;

	CU_ASSERT_EQUAL_FATAL(load_text("gateway: '[::1]:7443'\nca: /ca.pem\n"
	                                "cert: c.pem\nkey: c.key\ntimeout_ms: 5\n",
	                                &c),
	                      0);
	CU_ASSERT_STRING_EQUAL(c->server_name, "::1");
	CU_ASSERT_STRING_EQUAL(c->ca, "/ca.pem");
	CU_ASSERT_EQUAL(c->timeout_ms, 5);
	cfg_client_free(c);
}

static void
test_relative_paths(void)
{
	struct cfg_client *c = NULL;
	char want[PATH_MAX + 32], keyfile[PATH_MAX + 32];

	snprintf(keyfile, sizeof(keyfile), "%s/k.txt", tmp);
	CU_ASSERT_EQUAL_FATAL(
	        test_file_write(keyfile, SECRET "\nsecond line\n", strlen(SECRET) + 13), 0);
	CU_ASSERT_EQUAL_FATAL(load_text("gateway: h:1\nca: sub/ca.pem\napi_key_file: k.txt\n", &c),
	                      0);
	snprintf(want, sizeof(want), "%s/sub/ca.pem", tmp);
	CU_ASSERT_STRING_EQUAL(c->ca, want);
	CU_ASSERT_STRING_EQUAL(c->api_key_file, keyfile);
	CU_ASSERT_STRING_EQUAL(c->api_key, SECRET); /* first line only, no newline */
	cfg_client_free(c);
}

static void
test_api_key_file_crlf(void)
{
	struct cfg_client *c = NULL;
	char keyfile[PATH_MAX + 32];

	snprintf(keyfile, sizeof(keyfile), "%s/k.txt", tmp);
	CU_ASSERT_EQUAL_FATAL(test_file_write(keyfile, SECRET "\r\n", strlen(SECRET) + 2), 0);
	CU_ASSERT_EQUAL_FATAL(load_text("gateway: h:1\nca: ca\napi_key_file: k.txt\n", &c), 0);
	CU_ASSERT_STRING_EQUAL(c->api_key, SECRET);
	cfg_client_free(c);
}

static void
test_both_credentials(void)
{
	expect_fail("gateway: h:1\nca: ca\ncert: c\nkey: k\napi_key: " SECRET "\n", CFG_ERR_INVALID,
	            5, "5:10: api_key: give one credential");
	expect_fail("gateway: h:1\nca: ca\ncert: c\nkey: k\napi_key_file: f\n", CFG_ERR_INVALID, 5,
	            "api_key_file: give one credential");
}

static void
test_both_api_keys(void)
{
	expect_fail("gateway: h:1\nca: ca\napi_key: " SECRET "\napi_key_file: f\n", CFG_ERR_INVALID,
	            4, "api_key_file: give 'api_key' or 'api_key_file', not both");
}

static void
test_no_credential(void)
{
	expect_fail("gateway: h:1\nca: ca\n", CFG_ERR_INVALID, 0, "no credential");
}

static void
test_cert_without_key(void)
{
	expect_fail("gateway: h:1\nca: ca\ncert: c\n", CFG_ERR_INVALID, 3,
	            "cert: 'cert' and 'key' go together");
}

static void
test_bad_gateway(void)
{
	static const char *bad[] = {"h",           "h:",    ":1",       "h:0",
	                            "h:65536",     "h:1x",  "::1:7443", "[::1]7443",
	                            "[nothost]:1", "h h:1", "h:01",     NULL};
	char yaml[256];
	unsigned i;

	for (i = 0; bad[i] != NULL; i++) {
		snprintf(yaml, sizeof(yaml), "ca: ca\ncert: c\nkey: k\ngateway: '%s'\n", bad[i]);
		expect_fail(yaml, CFG_ERR_INVALID, 4, "gateway: '");
	}
}

static void
test_unknown_key(void)
{
	expect_fail("gateway: h:1\nca: ca\napikey: " SECRET "\n", CFG_ERR_SYNTAX, 3,
	            "3:1: unknown key 'apikey'");
}

static void
test_wrong_type(void)
{
	expect_fail("gateway: h:1\nca: ca\ncert: c\nkey: k\ntimeout_ms: soon\n", CFG_ERR_SYNTAX, 5,
	            "key 'timeout_ms': expected an unsigned integer");
	expect_fail("gateway: h:1\nca: ca\napi_key: [" SECRET "]\n", CFG_ERR_SYNTAX, 3,
	            "key 'api_key': expected a non-empty string");
}

static void
test_zero_timeout(void)
{
	expect_fail("gateway: h:1\nca: ca\ncert: c\nkey: k\ndefer_init: maybe\n", CFG_ERR_SYNTAX, 5,
	            "key 'defer_init': expected true or false");
	expect_fail("gateway: h:1\nca: ca\ncert: c\nkey: k\nconnect_timeout_ms: 0\n",
	            CFG_ERR_INVALID, 5, "connect_timeout_ms: must be greater than 0");
}

static void
test_missing_required(void)
{
	expect_fail("ca: ca\ncert: c\nkey: k\n", CFG_ERR_SYNTAX, 0,
	            "missing required key 'gateway'");
	expect_fail("gateway: h:1\ncert: c\nkey: k\n", CFG_ERR_SYNTAX, 0,
	            "missing required key 'ca'");
}

static void
test_api_key_file_missing(void)
{
	expect_fail("gateway: h:1\nca: ca\napi_key_file: nope.txt\n", CFG_ERR_IO, 3,
	            "api_key_file: cannot read");
}

static void
test_api_key_file_empty(void)
{
	char keyfile[PATH_MAX + 32];

	snprintf(keyfile, sizeof(keyfile), "%s/empty.txt", tmp);
	CU_ASSERT_EQUAL_FATAL(test_file_write(keyfile, "\n" SECRET "\n", strlen(SECRET) + 2), 0);
	expect_fail("gateway: h:1\nca: ca\napi_key_file: empty.txt\n", CFG_ERR_INVALID, 3,
	            "api_key_file: the first line");
}

static void
test_api_key_file_not_regular(void)
{
	/* a directory, a FIFO or a terminal: refused without blocking */
	expect_fail("gateway: h:1\nca: ca\napi_key_file: .\n", CFG_ERR_IO, 3,
	            "api_key_file: cannot read");
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "not a regular file"));
}

static void
test_unreadable_file(void)
{
	struct cfg_client *c = (struct cfg_client *)1;
	char path[PATH_MAX + 16];

	snprintf(path, sizeof(path), "%s/none.yaml", tmp);
	CU_ASSERT_EQUAL(cfg_client_load(path, &c, err, sizeof(err)), CFG_ERR_IO);
	CU_ASSERT_PTR_NULL(c);
	CU_ASSERT_EQUAL(strncmp(err, path, strlen(path)), 0);
}

static void
test_not_yaml(void)
{
	expect_fail("gateway: h:1\nca: 'ca\n", CFG_ERR_SYNTAX, 3, "not valid YAML");
}

static void
test_empty_file(void)
{
	expect_fail("", CFG_ERR_SYNTAX, 0, "empty file");
}

static void
test_truncated_every_byte(void)
{
	const char *full = "gateway: '[::1]:7443'\nca: ca.pem\napi_key: " SECRET "\n"
	                   "server_name: gw\ntimeout_ms: 100\nconnect_timeout_ms: 10\n";
	struct cfg_client *c;
	size_t i, len = strlen(full);

	for (i = 0; i <= len; i++) {
		int r = cfg_client_load_buf("/x/c.yaml", full, i, &c, err, sizeof(err));

		if (r == 0) {
			cfg_client_free(c);
		} else {
			CU_ASSERT_PTR_NULL(c);
			CU_ASSERT_EQUAL(strncmp(err, "/x/c.yaml", 9), 0);
		}
		/* even a truncated key is not quoted */
		CU_ASSERT_PTR_NULL(strstr(err, "SeCrEt"));
	}
}

static const struct test_case cases[] = {
        {"example_loads", test_example_loads},
        {"defaults", test_defaults},
        {"defer_init: false", test_defer_init_off},
        {"busy_poll_us: 0..10000", test_busy_poll},
        {"ipv6_gateway", test_ipv6_gateway},
        {"relative_paths", test_relative_paths},
        {"api_key_file_crlf", test_api_key_file_crlf},
        {"both_credentials", test_both_credentials},
        {"both_api_keys", test_both_api_keys},
        {"no_credential", test_no_credential},
        {"cert_without_key", test_cert_without_key},
        {"bad_gateway", test_bad_gateway},
        {"unknown_key", test_unknown_key},
        {"wrong_type", test_wrong_type},
        {"zero_timeout", test_zero_timeout},
        {"missing_required", test_missing_required},
        {"api_key_file_missing", test_api_key_file_missing},
        {"api_key_file_empty", test_api_key_file_empty},
        {"api_key_file_not_regular", test_api_key_file_not_regular},
        {"unreadable_file", test_unreadable_file},
        {"not_yaml", test_not_yaml},
        {"empty_file", test_empty_file},
        {"truncated_every_byte", test_truncated_every_byte},
        {NULL, NULL},
};

void
test_register(void)
{
	test_suite_add("config/client", suite_init, suite_cleanup, cases);
}
