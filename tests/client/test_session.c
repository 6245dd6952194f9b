/* tests/client/test_session.c — client/session.c: the set of session handles of one
 * connection. */
#include "client/cli_int.h"
#include "tests/lib/test.h"

#include <stdlib.h>

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

/* A deferred init with key byte `k` and a frame of `n` bytes. */
static struct cli_deferred *
deferred_new(uint8_t k, size_t n)
{
	struct cli_deferred *d = calloc(1, sizeof(*d));
	static const uint8_t frame[64];

	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	CU_ASSERT_FATAL(n <= sizeof(frame));
	d->key.len = 1;
	d->key.b[0] = k;
	proto_buf_init(&d->req);
	CU_ASSERT_EQUAL_FATAL(proto_put_raw(&d->req, frame, n), 0);
	return d;
}

static void
test_deferred(void)
{
	struct cli_sessions s;
	CK_SESSION_HANDLE a = proto_session_make(1, 1), b = proto_session_make(2, 2);
	struct cli_deferred *d1 = deferred_new(1, 40), *d2 = deferred_new(1, 40),
	                    *d3 = deferred_new(2, 40), *d4 = deferred_new(1, 40);
	unsigned i;

	cli_sessions_init(&s);
	CU_ASSERT_EQUAL(cli_sessions_add(&s, a), 0);
	CU_ASSERT_EQUAL(cli_sessions_add(&s, b), 0);
	/* Only what is known is deferred; a session holds one. */
	CU_ASSERT_EQUAL(cli_sessions_defer(&s, a, d1), 0);
	cli_sessions_known(&s, &d1->key, 1);
	CU_ASSERT_EQUAL(cli_sessions_defer(&s, a, d1), 1);
	CU_ASSERT_EQUAL(cli_sessions_defer(&s, a, d2), 0);
	CU_ASSERT_EQUAL(cli_sessions_defer(&s, b, d3), 0); /* key 2 is not known */
	CU_ASSERT_EQUAL(cli_sessions_defer(&s, proto_session_make(3, 3), d2), 0);
	CU_ASSERT_EQUAL(cli_sessions_defer(&s, b, d2), 1);
	CU_ASSERT_PTR_EQUAL(cli_sessions_deferred_take(&s, a), d1);
	CU_ASSERT_PTR_NULL(cli_sessions_deferred_take(&s, a));
	CU_ASSERT_PTR_NULL(cli_sessions_deferred_take(&s, proto_session_make(3, 3)));
	/* Forgetting one key, then all. */
	cli_sessions_known(&s, &d1->key, 0);
	cli_deferred_free(d1);
	CU_ASSERT_EQUAL(cli_sessions_defer(&s, a, d4), 0);
	cli_sessions_known(&s, &d3->key, 1);
	cli_sessions_forget(&s);
	CU_ASSERT_EQUAL(cli_sessions_defer(&s, a, d3), 0);
	/* The ring keeps the last CLI_INIT_KNOWN keys. */
	for (i = 0; i <= CLI_INIT_KNOWN; i++) {
		struct cli_init_key k = {.len = 2, .b = {(uint8_t)i, 9}};

		cli_sessions_known(&s, &k, 1);
		cli_sessions_known(&s, &k, 1); /* once only */
	}
	{
		struct cli_init_key first = {.len = 2, .b = {0, 9}}, last = {.len = 2, .b = {1, 9}};

		d4->key = first;
		CU_ASSERT_EQUAL(cli_sessions_defer(&s, a, d4), 0);
		d4->key = last;
		CU_ASSERT_EQUAL(cli_sessions_defer(&s, a, d4), 1);
	}
	/* Removing a session frees its deferred init (ASan: no leak of d2, d4). */
	cli_sessions_del_slot(&s, 2);
	CU_ASSERT_FALSE(cli_sessions_has(&s, b));
	cli_deferred_free(d3);
	cli_sessions_free(&s);
}

static const struct test_case cases[] = {
        {"add, has, del", test_add_has_del},
        {"grows past its first block", test_grow},
        {"C_CloseAllSessions removes one slot's handles", test_del_slot},
        {"deferred inits and known inits", test_deferred},
        {NULL, NULL},
};

void
test_register(void)
{
	test_suite_add("client/session", NULL, NULL, cases);
}
