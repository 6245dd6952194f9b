/* tests/gateway/test_log.c — gateway/log.c: quoting of values in log lines. */
#include "gateway/gw.h"
#include "tests/lib/test.h"

#include <string.h>

static void
test_quote_plain(void)
{
	char out[64];

	CU_ASSERT_STRING_EQUAL(gw_log_quote("CN=alice,O=acme", out, sizeof(out)),
	                       "\"CN=alice,O=acme\"");
	CU_ASSERT_STRING_EQUAL(gw_log_quote("", out, sizeof(out)), "\"\"");
	CU_ASSERT_STRING_EQUAL(gw_log_quote(NULL, out, sizeof(out)), "\"\"");
}

static void
test_quote_escapes(void)
{
	char out[64];

	/* a peer cannot forge a key=value or a new line */
	CU_ASSERT_STRING_EQUAL(gw_log_quote("a\" level=error\nx\\", out, sizeof(out)),
	                       "\"a\\\" level=error\\x0ax\\\\\"");
}

static void
test_quote_truncates(void)
{
	char out[12];
	size_t n;

	gw_log_quote("abcdefghijklmnopqrstuvwxyz", out, sizeof(out));
	n = strlen(out);
	CU_ASSERT(n < sizeof(out));
	CU_ASSERT(out[0] == '"' && out[n - 1] == '"');
	CU_ASSERT(strstr(out, "...") != NULL);
	/* an escape is never cut in half */
	gw_log_quote("\n\n\n\n\n\n", out, sizeof(out));
	CU_ASSERT_STRING_EQUAL(out, "\"\\x0a...\"");
}

void
test_register(void)
{
	static const struct test_case cases[] = {
	        {"quote_plain", test_quote_plain},
	        {"quote_escapes", test_quote_escapes},
	        {"quote_truncates", test_quote_truncates},
	        {NULL, NULL},
	};

	test_suite_add("gateway/log", NULL, NULL, cases);
}
