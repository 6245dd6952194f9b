/* tests/client/test_session.c — client/session.c: the set of session handles of one
 * connection. */
#include "client/cli_int.h"
#include "tests/lib/test.h"

static void
test_add_has_del(void)
{
	struct cli_sessions s;
	CK_SESSION_HANDLE a = proto_session_make(1, 1), b = proto_session_make(1, 2);

	cli_sessions_init(&s);
	CU_ASSERT_FALSE(cli_sessions_has(&s, a));
	CU_ASSERT_EQUAL(cli_sessions_add(&s, a), 0);
	CU_ASSERT_EQUAL(cli_sessions_add(&s, a), 0); /* idempotent */
	CU_ASSERT_EQUAL(s.n, 1);
	CU_ASSERT_TRUE(cli_sessions_has(&s, a));
	CU_ASSERT_FALSE(cli_sessions_has(&s, b));
	CU_ASSERT_EQUAL(cli_sessions_add(&s, b), 0);
	cli_sessions_del(&s, a);
	CU_ASSERT_FALSE(cli_sessions_has(&s, a));
	CU_ASSERT_TRUE(cli_sessions_has(&s, b));
	cli_sessions_del(&s, a); /* absent: no-op */
	CU_ASSERT_EQUAL(s.n, 1);
	cli_sessions_free(&s);
	CU_ASSERT_EQUAL(s.n, 0);
	CU_ASSERT_FALSE(cli_sessions_has(&s, b));
}

static void
test_grow(void)
{
	struct cli_sessions s;
	uint32_t i;
	int ok = 1;

	cli_sessions_init(&s);
	for (i = 1; i <= 1000; i++) {
		ok &= cli_sessions_add(&s, proto_session_make(i % 3, i)) == 0;
	}
	CU_ASSERT_TRUE(ok);
	CU_ASSERT_EQUAL(s.n, 1000);
	for (i = 1; i <= 1000; i++) {
		ok &= cli_sessions_has(&s, proto_session_make(i % 3, i));
	}
	CU_ASSERT_TRUE(ok);
	cli_sessions_free(&s);
}

static void
test_del_slot(void)
{
	struct cli_sessions s;
	uint32_t i;

	cli_sessions_init(&s);
	for (i = 1; i <= 30; i++) {
		CU_ASSERT_EQUAL(cli_sessions_add(&s, proto_session_make(i % 3, i)), 0);
	}
	cli_sessions_del_slot(&s, 1);
	CU_ASSERT_EQUAL(s.n, 20);
	for (i = 1; i <= 30; i++) {
		CU_ASSERT_EQUAL(cli_sessions_has(&s, proto_session_make(i % 3, i)), i % 3 != 1);
	}
	cli_sessions_del_slot(&s, 7); /* no such slot */
	CU_ASSERT_EQUAL(s.n, 20);
	cli_sessions_free(&s);
}

static const struct test_case cases[] = {
        {"add, has, del", test_add_has_del},
        {"grows past its first block", test_grow},
        {"C_CloseAllSessions removes one slot's handles", test_del_slot},
        {NULL, NULL},
};

void
test_register(void)
{
	test_suite_add("client/session", NULL, NULL, cases);
}
