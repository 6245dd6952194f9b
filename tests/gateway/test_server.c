/* tests/gateway/test_server.c — gateway/server.c: how many connections fit the descriptor
 * limit. */
#include "gateway/gw_int.h"
#include "tests/lib/test.h"

#include <stdint.h>

static void
test_limit_fits(void)
{
	/* plenty of descriptors: limits.max_connections decides */
	CU_ASSERT_EQUAL(gw_conn_limit(4096, 524288, 3, 1), 4096);
	CU_ASSERT_EQUAL(gw_conn_limit(1, 1024, 0, 0), 1);
	/* exactly enough */
	CU_ASSERT_EQUAL(
	        gw_conn_limit(1000,
	                      1000 + GW_FD_RESERVE + 3 * GW_FD_PER_WORKER + 2 * GW_FD_PER_SINK, 3,
	                      2),
	        1000);
}

static void
test_limit_capped(void)
{
	/* the usual soft limit: 1024 less the reserve, one descriptor per connection */
	CU_ASSERT_EQUAL(gw_conn_limit(4096, 1024, 0, 0), 1024 - GW_FD_RESERVE);
	CU_ASSERT_EQUAL(gw_conn_limit(4096, 1024, 3, 0),
	                1024 - GW_FD_RESERVE - 3 * GW_FD_PER_WORKER);
	CU_ASSERT_EQUAL(gw_conn_limit(4096, 1024, 3, 2),
	                1024 - GW_FD_RESERVE - 3 * GW_FD_PER_WORKER - 2 * GW_FD_PER_SINK);
	/* one short of the limit above */
	CU_ASSERT_EQUAL(gw_conn_limit(1000, 1000 + GW_FD_RESERVE - 1, 0, 0), 999);
}

static void
test_limit_nothing_fits(void)
{
	CU_ASSERT_EQUAL(gw_conn_limit(4096, GW_FD_RESERVE, 0, 0), 0);
	CU_ASSERT_EQUAL(gw_conn_limit(4096, 10, 0, 0), 0);
	CU_ASSERT_EQUAL(gw_conn_limit(4096, 0, 0, 0), 0);
	CU_ASSERT_EQUAL(gw_conn_limit(4096, GW_FD_RESERVE + 2, 3, 0), 0);
}

static void
test_limit_huge(void)
{
	/* RLIMIT_NOFILE unlimited (reported as UINT64_MAX) and the largest counts never wrap */
	CU_ASSERT_EQUAL(gw_conn_limit(UINT32_MAX, UINT64_MAX, 255, 16), UINT32_MAX);
	CU_ASSERT_EQUAL(gw_conn_limit(4096, UINT64_MAX, UINT32_MAX, UINT32_MAX), 4096);
}

void
test_register(void)
{
	static const struct test_case cases[] = {
	        {"limit_fits", test_limit_fits},
	        {"limit_capped", test_limit_capped},
	        {"limit_nothing_fits", test_limit_nothing_fits},
	        {"limit_huge", test_limit_huge},
	        {NULL, NULL},
	};

	test_suite_add("gateway/server", NULL, NULL, cases);
}
