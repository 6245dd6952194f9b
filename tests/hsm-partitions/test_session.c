/* tests/hsm-partitions/test_session.c — hsm-partitions/session.c: C_OpenSession rules,
 * sessions per connection, C_CloseSession / C_CloseAllSessions, PROTO_IPC_CONN_CLOSED. */
#include "tests/hsm-partitions/part_test.h"

static void
test_open_needs_serial(void)
{
	CK_SESSION_HANDLE h;

	t_setup();
	t_ready();
	CU_ASSERT_EQUAL(ck_open(CONN_A, CKF_RW_SESSION, &h), CKR_SESSION_PARALLEL_NOT_SUPPORTED);
	CU_ASSERT_EQUAL(ck_open(CONN_A, 0, &h), CKR_SESSION_PARALLEL_NOT_SUPPORTED);
	t_teardown();
}

static void
test_open_slot_invalid(void)
{
	struct proto_cur c;

	t_setup();
	t_ready();
	CU_ASSERT_EQUAL(CALL(CONN_A, C_OpenSession, &c, (PUTU(SLOT + 1), PUTU(RW))),
	                CKR_SLOT_ID_INVALID);
	t_teardown();
}

static void
test_open_ro_with_so(void)
{
	CK_SESSION_HANDLE h, h2;

	t_setup();
	t_ready();
	CU_ASSERT_FATAL(ck_open(CONN_A, RW, &h) == CKR_OK);
	CU_ASSERT_FATAL(ck_login(CONN_A, h, CKU_SO, SO_PIN) == CKR_OK);
	CU_ASSERT_EQUAL(ck_open(CONN_A, RO, &h2), CKR_SESSION_READ_WRITE_SO_EXISTS);
	CU_ASSERT_EQUAL(ck_open(CONN_A, RW, &h2), CKR_OK);
	/* Another application is not affected. */
	CU_ASSERT_EQUAL(ck_open(CONN_B, RO, &h2), CKR_OK);
	t_teardown();
}

static void
test_handles_route_to_slot(void)
{
	CK_SESSION_HANDLE h1, h2;

	t_setup();
	t_ready();
	CU_ASSERT_FATAL(ck_open(CONN_A, RW, &h1) == CKR_OK);
	CU_ASSERT_FATAL(ck_open(CONN_A, RW, &h2) == CKR_OK);
	CU_ASSERT_EQUAL(proto_session_slot(h1), SLOT);
	CU_ASSERT_EQUAL(proto_session_slot(h2), SLOT);
	CU_ASSERT_NOT_EQUAL(h1, h2);
	t_teardown();
}

static void
test_other_connection_handle_invalid(void)
{
	CK_SESSION_HANDLE h;
	CK_STATE st;

	t_setup();
	t_ready();
	CU_ASSERT_FATAL(ck_open(CONN_A, RW, &h) == CKR_OK);
	CU_ASSERT_EQUAL(ck_session_state(CONN_B, h, &st), CKR_SESSION_HANDLE_INVALID);
	CU_ASSERT_EQUAL(ck_close(CONN_B, h), CKR_SESSION_HANDLE_INVALID);
	CU_ASSERT_EQUAL(CALL(CONN_B, C_DigestInit, NULL,
	                     (PUTU(h), (void)!proto_put_mechanism(
	                                       &b, &(CK_MECHANISM){CKM_SHA256, NULL, 0}))),
	                CKR_SESSION_HANDLE_INVALID);
	CU_ASSERT_EQUAL(ck_session_state(CONN_A, h, &st), CKR_OK);
	t_teardown();
}

static void
test_close_session(void)
{
	CK_SESSION_HANDLE h;
	CK_STATE st;
	CK_TOKEN_INFO ti;

	t_setup();
	t_ready();
	CU_ASSERT_FATAL(ck_open(CONN_A, RW, &h) == CKR_OK);
	CU_ASSERT_FATAL(ck_token_info(&ti) == CKR_OK);
	CU_ASSERT_EQUAL(ti.ulSessionCount, 1);
	CU_ASSERT_EQUAL(ti.ulRwSessionCount, 1);
	CU_ASSERT_EQUAL(ck_close(CONN_A, h), CKR_OK);
	CU_ASSERT_EQUAL(ck_close(CONN_A, h), CKR_SESSION_HANDLE_INVALID);
	CU_ASSERT_EQUAL(ck_session_state(CONN_A, h, &st), CKR_SESSION_HANDLE_INVALID);
	CU_ASSERT_FATAL(ck_token_info(&ti) == CKR_OK);
	CU_ASSERT_EQUAL(ti.ulSessionCount, 0);
	CU_ASSERT_EQUAL(ti.ulRwSessionCount, 0);
	t_teardown();
}

static void
test_close_all_sessions(void)
{
	CK_SESSION_HANDLE a1, a2, b1;
	CK_STATE st;

	t_setup();
	t_ready();
	CU_ASSERT_FATAL(ck_open(CONN_A, RW, &a1) == CKR_OK);
	CU_ASSERT_FATAL(ck_open(CONN_A, RO, &a2) == CKR_OK);
	CU_ASSERT_FATAL(ck_open(CONN_B, RO, &b1) == CKR_OK);
	CU_ASSERT_EQUAL(CALL(CONN_A, C_CloseAllSessions, NULL, PUTU(SLOT + 1)),
	                CKR_SLOT_ID_INVALID);
	CU_ASSERT_EQUAL(CALL(CONN_A, C_CloseAllSessions, NULL, PUTU(SLOT)), CKR_OK);
	CU_ASSERT_EQUAL(ck_session_state(CONN_A, a1, &st), CKR_SESSION_HANDLE_INVALID);
	CU_ASSERT_EQUAL(ck_session_state(CONN_A, a2, &st), CKR_SESSION_HANDLE_INVALID);
	CU_ASSERT_EQUAL(ck_session_state(CONN_B, b1, &st), CKR_OK);
	t_teardown();
}

static void
test_conn_closed(void)
{
	CK_SESSION_HANDLE a, b;
	CK_STATE st;
	CK_TOKEN_INFO ti;

	t_setup();
	t_ready();
	CU_ASSERT_FATAL(ck_open(CONN_A, RW, &a) == CKR_OK);
	CU_ASSERT_FATAL(ck_login(CONN_A, a, CKU_USER, USER_PIN) == CKR_OK);
	CU_ASSERT_FATAL(ck_open(CONN_B, RW, &b) == CKR_OK);
	part_worker_conn_closed(W, CONN_A);
	part_worker_conn_closed(W, 999); /* unknown: no-op */
	CU_ASSERT_EQUAL(ck_session_state(CONN_A, a, &st), CKR_SESSION_HANDLE_INVALID);
	CU_ASSERT_EQUAL(ck_session_state(CONN_B, b, &st), CKR_OK);
	CU_ASSERT_FATAL(ck_token_info(&ti) == CKR_OK);
	CU_ASSERT_EQUAL(ti.ulSessionCount, 1);
	/* The login state went with it. */
	CU_ASSERT_FATAL(ck_open(CONN_A, RW, &a) == CKR_OK);
	CU_ASSERT(ck_session_state(CONN_A, a, &st) == CKR_OK && st == CKS_RW_PUBLIC_SESSION);
	t_teardown();
}

static void
test_function_not_parallel(void)
{
	CK_SESSION_HANDLE h;

	t_setup();
	t_ready();
	CU_ASSERT_FATAL(ck_open(CONN_A, RW, &h) == CKR_OK);
	CU_ASSERT_EQUAL(CALL(CONN_A, C_GetFunctionStatus, NULL, PUTU(h)),
	                CKR_FUNCTION_NOT_PARALLEL);
	CU_ASSERT_EQUAL(CALL(CONN_A, C_CancelFunction, NULL, PUTU(h)), CKR_FUNCTION_NOT_PARALLEL);
	t_teardown();
}

static const struct test_case cases[] = {
        {"CKF_SERIAL_SESSION required", test_open_needs_serial},
        {"open: CKR_SLOT_ID_INVALID", test_open_slot_invalid},
        {"CKR_SESSION_READ_WRITE_SO_EXISTS", test_open_ro_with_so},
        {"handles name the slot", test_handles_route_to_slot},
        {"another connection's handle", test_other_connection_handle_invalid},
        {"C_CloseSession", test_close_session},
        {"C_CloseAllSessions", test_close_all_sessions},
        {"connection closed", test_conn_closed},
        {"CKR_FUNCTION_NOT_PARALLEL", test_function_not_parallel},
        {NULL, NULL},
};

void
test_register(void)
{
	test_suite_add("hsm-partitions/session", NULL, NULL, cases);
}
