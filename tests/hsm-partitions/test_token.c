/* tests/hsm-partitions/test_token.c — hsm-partitions/token.c: token info, C_InitToken,
 * C_InitPIN, C_SetPIN, C_Login / C_Logout rules with their exact CK_RVs, PIN lockout,
 * the verified-PIN cache (counted in PBKDF2 derivations, never timed), the sealed token
 * record and the migration of an unsealed one, and the offline provisioning of hsmctl. */
#include "hsm-partitions/part_int.h"
#include "tests/hsm-partitions/part_test.h"

#include <unistd.h>

static void
test_slot_info(void)
{
	CK_SLOT_INFO si;
	struct proto_cur c;

	t_setup();
	CU_ASSERT_EQUAL(CALL(CONN_A, C_GetSlotInfo, &c, PUTU(SLOT)), CKR_OK);
	CU_ASSERT(proto_get_slot_info(&c, &si) == 0);
	CU_ASSERT(si.flags & CKF_TOKEN_PRESENT);
	CU_ASSERT(memcmp(si.manufacturerID, "hsmgate ", 8) == 0);
	CU_ASSERT_EQUAL(CALL(CONN_A, C_GetSlotInfo, NULL, PUTU(SLOT + 1)), CKR_SLOT_ID_INVALID);
	CU_ASSERT_EQUAL(CALL(CONN_A, C_GetTokenInfo, NULL, PUTU(0)), CKR_SLOT_ID_INVALID);
	t_teardown();
}

static void
test_token_info_uninitialised(void)
{
	CK_TOKEN_INFO ti;
	CK_SESSION_HANDLE h;

	t_setup();
	CU_ASSERT_FATAL(ck_token_info(&ti) == CKR_OK);
	CU_ASSERT(memcmp(ti.label, "demo-token                      ", 32) == 0);
	CU_ASSERT((ti.flags & CKF_TOKEN_INITIALIZED) == 0);
	CU_ASSERT((ti.flags & CKF_USER_PIN_INITIALIZED) == 0);
	CU_ASSERT(ti.flags & CKF_RNG);
	CU_ASSERT(ti.flags & CKF_LOGIN_REQUIRED);
	CU_ASSERT(ti.flags & CKF_CLOCK_ON_TOKEN);
	CU_ASSERT((ti.flags & CKF_PROTECTED_AUTHENTICATION_PATH) == 0);
	CU_ASSERT_EQUAL(ti.ulMinPinLen, PART_PIN_MIN);
	CU_ASSERT_EQUAL(ti.ulMaxPinLen, PART_PIN_MAX);
	CU_ASSERT_EQUAL(ti.ulSessionCount, 0);
	CU_ASSERT(ti.utcTime[0] == '2' && ti.utcTime[14] == '0' && ti.utcTime[15] == '0');
	/* The serial number is hex, stable, and derived from the partition. */
	CU_ASSERT(ti.serialNumber[0] != ' ');
	/* An uninitialised token cannot be used. */
	CU_ASSERT_EQUAL(ck_open(CONN_A, RW, &h), CKR_TOKEN_NOT_RECOGNIZED);
	t_teardown();
}

static void
test_init_token_first(void)
{
	CK_TOKEN_INFO ti, ti2;

	t_setup();
	CU_ASSERT_EQUAL(ck_init_token(SO_PIN, "first"), CKR_OK);
	CU_ASSERT_FATAL(ck_token_info(&ti) == CKR_OK);
	CU_ASSERT(memcmp(ti.label, "first   ", 8) == 0);
	CU_ASSERT(ti.flags & CKF_TOKEN_INITIALIZED);
	CU_ASSERT((ti.flags & CKF_USER_PIN_INITIALIZED) == 0);
	/* Survives a restart, serial number included. */
	t_reopen();
	CU_ASSERT_FATAL(ck_token_info(&ti2) == CKR_OK);
	CU_ASSERT(ti2.flags & CKF_TOKEN_INITIALIZED);
	CU_ASSERT(memcmp(ti.serialNumber, ti2.serialNumber, 16) == 0);
	t_teardown();
}

static void
test_init_token_pin_len_range(void)
{
	t_setup();
	CU_ASSERT_EQUAL(ck_init_token("123", "x"), CKR_PIN_LEN_RANGE);
	t_teardown();
}

static void
test_init_token_reinit_needs_so_pin(void)
{
	CK_TOKEN_INFO ti;

	t_setup();
	t_ready();
	CU_ASSERT_EQUAL(ck_init_token("wrong-pin", "again"), CKR_PIN_INCORRECT);
	CU_ASSERT_EQUAL(ck_init_token(SO_PIN, "again"), CKR_OK);
	CU_ASSERT_FATAL(ck_token_info(&ti) == CKR_OK);
	CU_ASSERT(memcmp(ti.label, "again ", 6) == 0);
	/* Re-initialisation disables the user until the SO sets a PIN again. */
	CU_ASSERT((ti.flags & CKF_USER_PIN_INITIALIZED) == 0);
	t_teardown();
}

static void
test_init_token_session_exists(void)
{
	CK_SESSION_HANDLE h;

	t_setup();
	t_ready();
	/* Another connection's session blocks it too. */
	CU_ASSERT_FATAL(ck_open(CONN_B, RO, &h) == CKR_OK);
	CU_ASSERT_EQUAL(ck_init_token(SO_PIN, "again"), CKR_SESSION_EXISTS);
	CU_ASSERT_EQUAL(ck_close(CONN_B, h), CKR_OK);
	CU_ASSERT_EQUAL(ck_init_token(SO_PIN, "again"), CKR_OK);
	t_teardown();
}

static void
test_init_token_destroys_objects(void)
{
	CK_OBJECT_CLASS cls = CKO_DATA;
	CK_BBOOL yes = CK_TRUE;
	CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof(cls)}, {CKA_TOKEN, &yes, 1}};
	CK_SESSION_HANDLE h;
	CK_ULONG n;
	struct proto_cur c;

	t_setup();
	t_ready();
	CU_ASSERT_FATAL(ck_open(CONN_A, RW, &h) == CKR_OK);
	CU_ASSERT_EQUAL(CALL(CONN_A, C_CreateObject, NULL, (PUTU(h), PUTT(t, 2))), CKR_OK);
	CU_ASSERT_EQUAL(ck_close(CONN_A, h), CKR_OK);
	CU_ASSERT_EQUAL(ck_init_token(SO_PIN, "again"), CKR_OK);
	t_reopen();
	CU_ASSERT_FATAL(ck_open(CONN_A, RW, &h) == CKR_OK);
	CU_ASSERT_EQUAL(CALL(CONN_A, C_FindObjectsInit, NULL, (PUTU(h), PUTT(NULL, 0))), CKR_OK);
	CU_ASSERT_EQUAL(CALL(CONN_A, C_FindObjects, &c, (PUTU(h), PUTL(1, 10))), CKR_OK);
	n = 10;
	CU_ASSERT(proto_get_ulongs_reply(&c, (CK_ULONG[10]){0}, &n) == 0);
	CU_ASSERT_EQUAL(n, 0);
	t_teardown();
}

static void
test_init_pin_needs_so(void)
{
	CK_SESSION_HANDLE h;

	t_setup();
	CU_ASSERT_FATAL(ck_init_token(SO_PIN, "demo") == CKR_OK);
	CU_ASSERT_FATAL(ck_open(CONN_A, RW, &h) == CKR_OK);
	CU_ASSERT_EQUAL(ck_init_pin(CONN_A, h, USER_PIN), CKR_USER_NOT_LOGGED_IN);
	CU_ASSERT_EQUAL(ck_init_pin(CONN_A, h + 1, USER_PIN), CKR_SESSION_HANDLE_INVALID);
	CU_ASSERT_EQUAL(ck_login(CONN_A, h, CKU_SO, SO_PIN), CKR_OK);
	CU_ASSERT_EQUAL(ck_init_pin(CONN_A, h, "abc"), CKR_PIN_LEN_RANGE);
	CU_ASSERT_EQUAL(ck_init_pin(CONN_A, h, USER_PIN), CKR_OK);
	t_teardown();
}

static void
test_login_user_ok_and_states(void)
{
	CK_SESSION_HANDLE h1, h2;
	CK_STATE st;

	t_setup();
	t_ready();
	CU_ASSERT_FATAL(ck_open(CONN_A, RO, &h1) == CKR_OK);
	CU_ASSERT_FATAL(ck_open(CONN_A, RW, &h2) == CKR_OK);
	CU_ASSERT(ck_session_state(CONN_A, h1, &st) == CKR_OK && st == CKS_RO_PUBLIC_SESSION);
	CU_ASSERT(ck_session_state(CONN_A, h2, &st) == CKR_OK && st == CKS_RW_PUBLIC_SESSION);
	CU_ASSERT_EQUAL(ck_login(CONN_A, h1, CKU_USER, USER_PIN), CKR_OK);
	/* All sessions of the application share the login state. */
	CU_ASSERT(ck_session_state(CONN_A, h1, &st) == CKR_OK && st == CKS_RO_USER_FUNCTIONS);
	CU_ASSERT(ck_session_state(CONN_A, h2, &st) == CKR_OK && st == CKS_RW_USER_FUNCTIONS);
	CU_ASSERT_EQUAL(ck_logout(CONN_A, h2), CKR_OK);
	CU_ASSERT(ck_session_state(CONN_A, h1, &st) == CKR_OK && st == CKS_RO_PUBLIC_SESSION);
	t_teardown();
}

static void
test_login_so_state(void)
{
	CK_SESSION_HANDLE h;
	CK_STATE st;

	t_setup();
	t_ready();
	CU_ASSERT_FATAL(ck_open(CONN_A, RW, &h) == CKR_OK);
	CU_ASSERT_EQUAL(ck_login(CONN_A, h, CKU_SO, SO_PIN), CKR_OK);
	CU_ASSERT(ck_session_state(CONN_A, h, &st) == CKR_OK && st == CKS_RW_SO_FUNCTIONS);
	t_teardown();
}

static void
test_login_already_logged_in(void)
{
	CK_SESSION_HANDLE h;

	t_setup();
	t_ready();
	CU_ASSERT_FATAL(ck_open(CONN_A, RW, &h) == CKR_OK);
	CU_ASSERT_EQUAL(ck_login(CONN_A, h, CKU_USER, USER_PIN), CKR_OK);
	CU_ASSERT_EQUAL(ck_login(CONN_A, h, CKU_USER, USER_PIN), CKR_USER_ALREADY_LOGGED_IN);
	t_teardown();
}

static void
test_login_another_logged_in(void)
{
	CK_SESSION_HANDLE h;

	t_setup();
	t_ready();
	CU_ASSERT_FATAL(ck_open(CONN_A, RW, &h) == CKR_OK);
	CU_ASSERT_EQUAL(ck_login(CONN_A, h, CKU_USER, USER_PIN), CKR_OK);
	CU_ASSERT_EQUAL(ck_login(CONN_A, h, CKU_SO, SO_PIN), CKR_USER_ANOTHER_ALREADY_LOGGED_IN);
	t_teardown();
}

static void
test_login_so_read_only_exists(void)
{
	CK_SESSION_HANDLE ro, rw;

	t_setup();
	t_ready();
	CU_ASSERT_FATAL(ck_open(CONN_A, RO, &ro) == CKR_OK);
	CU_ASSERT_FATAL(ck_open(CONN_A, RW, &rw) == CKR_OK);
	CU_ASSERT_EQUAL(ck_login(CONN_A, rw, CKU_SO, SO_PIN), CKR_SESSION_READ_ONLY_EXISTS);
	t_teardown();
}

static void
test_login_user_pin_not_initialized(void)
{
	CK_SESSION_HANDLE h;

	t_setup();
	CU_ASSERT_FATAL(ck_init_token(SO_PIN, "demo") == CKR_OK);
	CU_ASSERT_FATAL(ck_open(CONN_A, RW, &h) == CKR_OK);
	CU_ASSERT_EQUAL(ck_login(CONN_A, h, CKU_USER, USER_PIN), CKR_USER_PIN_NOT_INITIALIZED);
	t_teardown();
}

static void
test_login_pin_incorrect(void)
{
	CK_SESSION_HANDLE h;
	CK_TOKEN_INFO ti;

	t_setup();
	t_ready();
	CU_ASSERT_FATAL(ck_open(CONN_A, RW, &h) == CKR_OK);
	CU_ASSERT_EQUAL(ck_login(CONN_A, h, CKU_USER, "not-the-pin"), CKR_PIN_INCORRECT);
	CU_ASSERT_FATAL(ck_token_info(&ti) == CKR_OK);
	CU_ASSERT(ti.flags & CKF_USER_PIN_COUNT_LOW);
	CU_ASSERT((ti.flags & CKF_USER_PIN_FINAL_TRY) == 0);
	/* A good PIN resets the counter. */
	CU_ASSERT_EQUAL(ck_login(CONN_A, h, CKU_USER, USER_PIN), CKR_OK);
	CU_ASSERT_FATAL(ck_token_info(&ti) == CKR_OK);
	CU_ASSERT((ti.flags & CKF_USER_PIN_COUNT_LOW) == 0);
	t_teardown();
}

static void
test_login_user_type_invalid(void)
{
	CK_SESSION_HANDLE h;

	t_setup();
	t_ready();
	CU_ASSERT_FATAL(ck_open(CONN_A, RW, &h) == CKR_OK);
	CU_ASSERT_EQUAL(ck_login(CONN_A, h, 7, USER_PIN), CKR_USER_TYPE_INVALID);
	CU_ASSERT_EQUAL(ck_login(CONN_A, h, CKU_CONTEXT_SPECIFIC, USER_PIN),
	                CKR_OPERATION_NOT_INITIALIZED);
	t_teardown();
}

static void
test_login_session_handle_invalid(void)
{
	CK_SESSION_HANDLE h;

	t_setup();
	t_ready();
	CU_ASSERT_FATAL(ck_open(CONN_A, RW, &h) == CKR_OK);
	CU_ASSERT_EQUAL(ck_login(CONN_B, h, CKU_USER, USER_PIN), CKR_SESSION_HANDLE_INVALID);
	CU_ASSERT_EQUAL(ck_login(CONN_A, 12345, CKU_USER, USER_PIN), CKR_SESSION_HANDLE_INVALID);
	t_teardown();
}

static void
test_logout_not_logged_in(void)
{
	CK_SESSION_HANDLE h;

	t_setup();
	t_ready();
	CU_ASSERT_FATAL(ck_open(CONN_A, RW, &h) == CKR_OK);
	CU_ASSERT_EQUAL(ck_logout(CONN_A, h), CKR_USER_NOT_LOGGED_IN);
	t_teardown();
}

static void
test_login_is_per_connection(void)
{
	CK_SESSION_HANDLE a, b;
	CK_STATE st;

	t_setup();
	t_ready();
	CU_ASSERT_FATAL(ck_open(CONN_A, RW, &a) == CKR_OK);
	CU_ASSERT_FATAL(ck_open(CONN_B, RW, &b) == CKR_OK);
	CU_ASSERT_EQUAL(ck_login(CONN_A, a, CKU_USER, USER_PIN), CKR_OK);
	CU_ASSERT(ck_session_state(CONN_B, b, &st) == CKR_OK && st == CKS_RW_PUBLIC_SESSION);
	/* Another application may be the SO at the same time. */
	CU_ASSERT_EQUAL(ck_login(CONN_B, b, CKU_SO, SO_PIN), CKR_OK);
	t_teardown();
}

static void
test_login_state_ends_with_last_session(void)
{
	CK_SESSION_HANDLE h;
	CK_STATE st;

	t_setup();
	t_ready();
	CU_ASSERT_FATAL(ck_open(CONN_A, RW, &h) == CKR_OK);
	CU_ASSERT_EQUAL(ck_login(CONN_A, h, CKU_USER, USER_PIN), CKR_OK);
	CU_ASSERT_EQUAL(ck_close(CONN_A, h), CKR_OK);
	CU_ASSERT_FATAL(ck_open(CONN_A, RW, &h) == CKR_OK);
	CU_ASSERT(ck_session_state(CONN_A, h, &st) == CKR_OK && st == CKS_RW_PUBLIC_SESSION);
	t_teardown();
}

static void
test_pin_lockout(void)
{
	CK_SESSION_HANDLE h;
	CK_TOKEN_INFO ti;
	int i;

	t_setup();
	t_ready();
	CU_ASSERT_FATAL(ck_open(CONN_A, RW, &h) == CKR_OK);
	for (i = 0; i < PART_PIN_TRIES - 1; i++) {
		CU_ASSERT_EQUAL(ck_login(CONN_A, h, CKU_USER, "wrong-pin"), CKR_PIN_INCORRECT);
	}
	CU_ASSERT_FATAL(ck_token_info(&ti) == CKR_OK);
	CU_ASSERT(ti.flags & CKF_USER_PIN_FINAL_TRY);
	CU_ASSERT(ti.flags & CKF_USER_PIN_COUNT_LOW);
	CU_ASSERT_EQUAL(ck_login(CONN_A, h, CKU_USER, "wrong-pin"), CKR_PIN_INCORRECT);
	CU_ASSERT_FATAL(ck_token_info(&ti) == CKR_OK);
	CU_ASSERT(ti.flags & CKF_USER_PIN_LOCKED);
	/* Locked: even the right PIN is refused, and a restart does not reset the count. */
	CU_ASSERT_EQUAL(ck_login(CONN_A, h, CKU_USER, USER_PIN), CKR_PIN_LOCKED);
	t_reopen();
	CU_ASSERT_FATAL(ck_open(CONN_A, RW, &h) == CKR_OK);
	CU_ASSERT_EQUAL(ck_login(CONN_A, h, CKU_USER, USER_PIN), CKR_PIN_LOCKED);
	/* The SO's C_InitPIN unlocks. */
	CU_ASSERT_EQUAL(ck_login(CONN_A, h, CKU_SO, SO_PIN), CKR_OK);
	CU_ASSERT_EQUAL(ck_init_pin(CONN_A, h, "new-user-pin"), CKR_OK);
	CU_ASSERT_EQUAL(ck_logout(CONN_A, h), CKR_OK);
	CU_ASSERT_EQUAL(ck_login(CONN_A, h, CKU_USER, "new-user-pin"), CKR_OK);
	CU_ASSERT_FATAL(ck_token_info(&ti) == CKR_OK);
	CU_ASSERT((ti.flags & (CKF_USER_PIN_LOCKED | CKF_USER_PIN_COUNT_LOW)) == 0);
	t_teardown();
}

static void
test_set_pin_user(void)
{
	CK_SESSION_HANDLE h;

	t_setup();
	t_ready();
	CU_ASSERT_FATAL(ck_open(CONN_A, RW, &h) == CKR_OK);
	/* Not logged in: the user's PIN. */
	CU_ASSERT_EQUAL(ck_set_pin(CONN_A, h, USER_PIN, "changed-1"), CKR_OK);
	CU_ASSERT_EQUAL(ck_login(CONN_A, h, CKU_USER, USER_PIN), CKR_PIN_INCORRECT);
	CU_ASSERT_EQUAL(ck_login(CONN_A, h, CKU_USER, "changed-1"), CKR_OK);
	/* Logged in as the user: the user's PIN. */
	CU_ASSERT_EQUAL(ck_set_pin(CONN_A, h, "changed-1", "changed-2"), CKR_OK);
	CU_ASSERT_EQUAL(ck_set_pin(CONN_A, h, "wrong-old", "changed-3"), CKR_PIN_INCORRECT);
	CU_ASSERT_EQUAL(ck_set_pin(CONN_A, h, "changed-2", "abc"), CKR_PIN_LEN_RANGE);
	CU_ASSERT_EQUAL(ck_logout(CONN_A, h), CKR_OK);
	CU_ASSERT_EQUAL(ck_login(CONN_A, h, CKU_USER, "changed-2"), CKR_OK);
	t_teardown();
}

static void
test_set_pin_so(void)
{
	CK_SESSION_HANDLE h;

	t_setup();
	t_ready();
	CU_ASSERT_FATAL(ck_open(CONN_A, RW, &h) == CKR_OK);
	CU_ASSERT_EQUAL(ck_login(CONN_A, h, CKU_SO, SO_PIN), CKR_OK);
	CU_ASSERT_EQUAL(ck_set_pin(CONN_A, h, SO_PIN, "new-so-pin"), CKR_OK);
	CU_ASSERT_EQUAL(ck_close(CONN_A, h), CKR_OK);
	CU_ASSERT_EQUAL(ck_init_token(SO_PIN, "x"), CKR_PIN_INCORRECT);
	CU_ASSERT_EQUAL(ck_init_token("new-so-pin", "x"), CKR_OK);
	t_teardown();
}

static void
test_set_pin_read_only(void)
{
	CK_SESSION_HANDLE h;

	t_setup();
	t_ready();
	CU_ASSERT_FATAL(ck_open(CONN_A, RO, &h) == CKR_OK);
	CU_ASSERT_EQUAL(ck_set_pin(CONN_A, h, USER_PIN, "changed-1"), CKR_SESSION_READ_ONLY);
	t_teardown();
}

static void
test_set_pin_user_not_initialized(void)
{
	CK_SESSION_HANDLE h;

	t_setup();
	CU_ASSERT_FATAL(ck_init_token(SO_PIN, "demo") == CKR_OK);
	CU_ASSERT_FATAL(ck_open(CONN_A, RW, &h) == CKR_OK);
	CU_ASSERT_EQUAL(ck_set_pin(CONN_A, h, USER_PIN, "changed-1"), CKR_USER_PIN_NOT_INITIALIZED);
	t_teardown();
}

static void
test_provision(void)
{
	struct part_worker_opts o = {0};
	CK_SESSION_HANDLE h;
	CK_TOKEN_INFO ti;

	t_setup();
	part_worker_free(W);
	W = NULL;
	o.partition = "demo";
	o.store_dir = tstore;
	o.slot = SLOT;
	o.pin_iter = 1000;
	CU_ASSERT_EQUAL(part_token_provision(&o, "prov", (const uint8_t *)SO_PIN, strlen(SO_PIN),
	                                     (const uint8_t *)"abc", 3, 0),
	                PART_ERR_PIN);
	CU_ASSERT_EQUAL(part_token_provision(&o, "this label is longer than 32 bytes!",
	                                     (const uint8_t *)SO_PIN, strlen(SO_PIN),
	                                     (const uint8_t *)USER_PIN, strlen(USER_PIN), 0),
	                PART_ERR_INVALID);
	CU_ASSERT_EQUAL(part_token_provision(&o, "prov", (const uint8_t *)SO_PIN, strlen(SO_PIN),
	                                     (const uint8_t *)USER_PIN, strlen(USER_PIN), 0),
	                0);
	CU_ASSERT_EQUAL(part_token_provision(&o, "prov", (const uint8_t *)SO_PIN, strlen(SO_PIN),
	                                     (const uint8_t *)USER_PIN, strlen(USER_PIN), 0),
	                PART_ERR_EXISTS);
	CU_ASSERT_EQUAL(part_token_provision(&o, "forced", (const uint8_t *)SO_PIN, strlen(SO_PIN),
	                                     (const uint8_t *)"other-user", 10, 1),
	                0);
	CU_ASSERT_FATAL(t_open_worker() == 0);
	CU_ASSERT_FATAL(ck_token_info(&ti) == CKR_OK);
	CU_ASSERT(memcmp(ti.label, "forced ", 7) == 0);
	CU_ASSERT(ti.flags & CKF_USER_PIN_INITIALIZED);
	CU_ASSERT_FATAL(ck_open(CONN_A, RW, &h) == CKR_OK);
	CU_ASSERT_EQUAL(ck_login(CONN_A, h, CKU_USER, "other-user"), CKR_OK);
	t_teardown();
}

/* ---- the verified-PIN cache ------------------------------------------------------------- */

/* PBKDF2 derivations since `n0`. */
#define DERIVED(n0) (part_pin_derivations() - (n0))

static void
test_login_fast_path(void)
{
	CK_SESSION_HANDLE h, h2;
	uint64_t n0;

	t_setup();
	t_ready();
	t_reopen(); /* t_ready's SO login is forgotten with the process */
	CU_ASSERT_FATAL(ck_open(CONN_A, RW, &h) == CKR_OK);
	/* The first login pays PBKDF2 ... */
	n0 = part_pin_derivations();
	CU_ASSERT_EQUAL(ck_login(CONN_A, h, CKU_USER, USER_PIN), CKR_OK);
	CU_ASSERT_EQUAL(DERIVED(n0), 1);
	CU_ASSERT_EQUAL(ck_logout(CONN_A, h), CKR_OK);
	/* ... the next ones of the same PIN do not, on any connection. */
	n0 = part_pin_derivations();
	CU_ASSERT_EQUAL(ck_login(CONN_A, h, CKU_USER, USER_PIN), CKR_OK);
	CU_ASSERT_FATAL(ck_open(CONN_B, RO, &h2) == CKR_OK);
	CU_ASSERT_EQUAL(ck_login(CONN_B, h2, CKU_USER, USER_PIN), CKR_OK);
	CU_ASSERT_EQUAL(DERIVED(n0), 0);
	/* Per user type: the SO's first login is slow although the user's is cached. */
	CU_ASSERT_EQUAL(ck_close(CONN_B, h2), CKR_OK);
	CU_ASSERT_EQUAL(ck_logout(CONN_A, h), CKR_OK);
	n0 = part_pin_derivations();
	CU_ASSERT_EQUAL(ck_login(CONN_A, h, CKU_SO, SO_PIN), CKR_OK);
	CU_ASSERT_EQUAL(DERIVED(n0), 1);
	CU_ASSERT_EQUAL(ck_logout(CONN_A, h), CKR_OK);
	n0 = part_pin_derivations();
	CU_ASSERT_EQUAL(ck_login(CONN_A, h, CKU_SO, SO_PIN), CKR_OK);
	CU_ASSERT_EQUAL(DERIVED(n0), 0);
	/* A restart forgets it: the cache is in the worker's memory only. */
	t_reopen();
	CU_ASSERT_FATAL(ck_open(CONN_A, RW, &h) == CKR_OK);
	n0 = part_pin_derivations();
	CU_ASSERT_EQUAL(ck_login(CONN_A, h, CKU_USER, USER_PIN), CKR_OK);
	CU_ASSERT_EQUAL(DERIVED(n0), 1);
	t_teardown();
}

static void
test_login_cached_wrong_pin_counted(void)
{
	CK_SESSION_HANDLE h;
	CK_TOKEN_INFO ti;
	uint64_t n0;
	int i;

	t_setup();
	t_ready();
	CU_ASSERT_FATAL(ck_open(CONN_A, RW, &h) == CKR_OK);
	CU_ASSERT_FATAL(ck_login(CONN_A, h, CKU_USER, USER_PIN) == CKR_OK);
	CU_ASSERT_FATAL(ck_logout(CONN_A, h) == CKR_OK);
	/* With the right PIN cached, a wrong one still takes PBKDF2 and is counted ... */
	n0 = part_pin_derivations();
	CU_ASSERT_EQUAL(ck_login(CONN_A, h, CKU_USER, "wrong-pin"), CKR_PIN_INCORRECT);
	CU_ASSERT_EQUAL(DERIVED(n0), 1);
	CU_ASSERT_FATAL(ck_token_info(&ti) == CKR_OK);
	CU_ASSERT(ti.flags & CKF_USER_PIN_COUNT_LOW);
	/* ... and empties the cache: the right PIN is checked in full, and resets the count. */
	n0 = part_pin_derivations();
	CU_ASSERT_EQUAL(ck_login(CONN_A, h, CKU_USER, USER_PIN), CKR_OK);
	CU_ASSERT_EQUAL(DERIVED(n0), 1);
	CU_ASSERT_FATAL(ck_token_info(&ti) == CKR_OK);
	CU_ASSERT((ti.flags & CKF_USER_PIN_COUNT_LOW) == 0);
	CU_ASSERT_FATAL(ck_logout(CONN_A, h) == CKR_OK);
	/* Cached again; every wrong PIN is slow and counted, up to the lock. */
	CU_ASSERT_FATAL(ck_login(CONN_A, h, CKU_USER, USER_PIN) == CKR_OK);
	CU_ASSERT_FATAL(ck_logout(CONN_A, h) == CKR_OK);
	n0 = part_pin_derivations();
	for (i = 0; i < PART_PIN_TRIES; i++) {
		CU_ASSERT_EQUAL(ck_login(CONN_A, h, CKU_USER, "wrong-pin"), CKR_PIN_INCORRECT);
	}
	CU_ASSERT_EQUAL(DERIVED(n0), PART_PIN_TRIES);
	CU_ASSERT_FATAL(ck_token_info(&ti) == CKR_OK);
	CU_ASSERT(ti.flags & CKF_USER_PIN_LOCKED);
	/* Locked: the right PIN is refused without a derivation. */
	n0 = part_pin_derivations();
	CU_ASSERT_EQUAL(ck_login(CONN_A, h, CKU_USER, USER_PIN), CKR_PIN_LOCKED);
	CU_ASSERT_EQUAL(DERIVED(n0), 0);
	t_teardown();
}

static void
test_set_pin_clears_cache(void)
{
	CK_SESSION_HANDLE h;
	uint64_t n0;

	t_setup();
	t_ready();
	CU_ASSERT_FATAL(ck_open(CONN_A, RW, &h) == CKR_OK);
	CU_ASSERT_FATAL(ck_login(CONN_A, h, CKU_USER, USER_PIN) == CKR_OK);
	/* The old PIN is checked through the cache; the new one is hashed. */
	n0 = part_pin_derivations();
	CU_ASSERT_EQUAL(ck_set_pin(CONN_A, h, USER_PIN, "changed-1"), CKR_OK);
	CU_ASSERT_EQUAL(DERIVED(n0), 1);
	CU_ASSERT_EQUAL(ck_logout(CONN_A, h), CKR_OK);
	/* The old PIN no longer logs in, and took the full check to find out. */
	n0 = part_pin_derivations();
	CU_ASSERT_EQUAL(ck_login(CONN_A, h, CKU_USER, USER_PIN), CKR_PIN_INCORRECT);
	CU_ASSERT_EQUAL(DERIVED(n0), 1);
	/* The new one is slow once, then cached. */
	n0 = part_pin_derivations();
	CU_ASSERT_EQUAL(ck_login(CONN_A, h, CKU_USER, "changed-1"), CKR_OK);
	CU_ASSERT_EQUAL(ck_logout(CONN_A, h), CKR_OK);
	CU_ASSERT_EQUAL(ck_login(CONN_A, h, CKU_USER, "changed-1"), CKR_OK);
	CU_ASSERT_EQUAL(DERIVED(n0), 1);
	t_teardown();
}

static void
test_init_pin_clears_cache(void)
{
	CK_SESSION_HANDLE h;
	uint64_t n0;

	t_setup();
	t_ready();
	CU_ASSERT_FATAL(ck_open(CONN_A, RW, &h) == CKR_OK);
	CU_ASSERT_FATAL(ck_login(CONN_A, h, CKU_USER, USER_PIN) == CKR_OK);
	CU_ASSERT_FATAL(ck_logout(CONN_A, h) == CKR_OK);
	/* The SO sets the user PIN anew, to the same value: the cache starts over. */
	CU_ASSERT_FATAL(ck_login(CONN_A, h, CKU_SO, SO_PIN) == CKR_OK);
	CU_ASSERT_EQUAL(ck_init_pin(CONN_A, h, USER_PIN), CKR_OK);
	CU_ASSERT_FATAL(ck_logout(CONN_A, h) == CKR_OK);
	n0 = part_pin_derivations();
	CU_ASSERT_EQUAL(ck_login(CONN_A, h, CKU_USER, USER_PIN), CKR_OK);
	CU_ASSERT_EQUAL(DERIVED(n0), 1);
	t_teardown();
}

static void
test_init_token_clears_cache(void)
{
	CK_SESSION_HANDLE h;
	uint64_t n0;

	t_setup();
	t_ready();
	CU_ASSERT_FATAL(ck_open(CONN_A, RW, &h) == CKR_OK);
	CU_ASSERT_FATAL(ck_login(CONN_A, h, CKU_SO, SO_PIN) == CKR_OK);
	CU_ASSERT_FATAL(ck_logout(CONN_A, h) == CKR_OK);
	CU_ASSERT_FATAL(ck_login(CONN_A, h, CKU_USER, USER_PIN) == CKR_OK);
	CU_ASSERT_FATAL(ck_close(CONN_A, h) == CKR_OK);
	/* Re-initialised with the same SO PIN, whose record (salt and hash) is kept: only the
	 * explicit clear makes the next SO login slow. */
	n0 = part_pin_derivations();
	CU_ASSERT_EQUAL(ck_init_token(SO_PIN, "again"), CKR_OK);
	CU_ASSERT_EQUAL(DERIVED(n0), 0); /* the SO PIN came from the cache */
	CU_ASSERT_FATAL(ck_open(CONN_A, RW, &h) == CKR_OK);
	n0 = part_pin_derivations();
	CU_ASSERT_EQUAL(ck_login(CONN_A, h, CKU_SO, SO_PIN), CKR_OK);
	CU_ASSERT_EQUAL(DERIVED(n0), 1);
	/* The user PIN is gone, cached or not. */
	CU_ASSERT_EQUAL(ck_init_pin(CONN_A, h, USER_PIN), CKR_OK);
	CU_ASSERT_EQUAL(ck_logout(CONN_A, h), CKR_OK);
	n0 = part_pin_derivations();
	CU_ASSERT_EQUAL(ck_login(CONN_A, h, CKU_USER, USER_PIN), CKR_OK);
	CU_ASSERT_EQUAL(DERIVED(n0), 1);
	t_teardown();
}

/* ---- the sealed token record ------------------------------------------------------------ */

/* The raw stored token record into `out`; 0, or PART_ERR_NOT_FOUND. */
static int
raw_meta_get(struct proto_buf *out)
{
	struct part_store *s = NULL;
	struct part_txn *t = NULL;
	const uint8_t *v;
	size_t vlen;
	int r;

	proto_buf_reset(out);
	CU_ASSERT_FATAL(part_store_open(tstore, &s) == 0);
	CU_ASSERT_FATAL(part_store_txn_begin(s, 0, &t) == 0);
	if ((r = part_store_get(t, PART_DB_META, "token", 5, &v, &vlen)) == 0) {
		CU_ASSERT_FATAL(proto_put_raw(out, v, vlen) == 0);
	}
	part_store_txn_abort(t);
	part_store_close(s);
	return r;
}

static void
raw_meta_put(const struct proto_buf *val)
{
	struct part_store *s = NULL;
	struct part_txn *t = NULL;

	CU_ASSERT_FATAL(part_store_open(tstore, &s) == 0);
	CU_ASSERT_FATAL(part_store_txn_begin(s, 1, &t) == 0);
	CU_ASSERT_FATAL(part_store_put(t, PART_DB_META, "token", 5, val->data, val->len) == 0);
	CU_ASSERT_FATAL(part_store_txn_commit(t) == 0);
	part_store_close(s);
}

static void
put_pin(struct proto_buf *b, const struct part_pin *p)
{
	CU_ASSERT_FATAL(proto_put_u8(b, 1) == 0 && proto_put_u32(b, p->iter) == 0 &&
	                proto_put_raw(b, p->salt, sizeof(p->salt)) == 0 &&
	                proto_put_raw(b, p->hash, sizeof(p->hash)) == 0);
}

/* The unsealed record an earlier build wrote: version 1, initialised, `label`, both PINs,
 * the user's retry counter at `user_fails`. */
static void
legacy_record(struct proto_buf *b, const char *label, uint32_t user_fails)
{
	struct part_pin so, user;
	char lab[32];

	memset(lab, ' ', sizeof(lab));
	memcpy(lab, label, strlen(label));
	CU_ASSERT_FATAL(part_pin_hash((const uint8_t *)SO_PIN, strlen(SO_PIN), 1000, &so) == 0);
	CU_ASSERT_FATAL(part_pin_hash((const uint8_t *)USER_PIN, strlen(USER_PIN), 1000, &user) ==
	                0);
	CU_ASSERT_FATAL(proto_put_u32(b, 1) == 0 && proto_put_u8(b, 1) == 0 &&
	                proto_put_raw(b, lab, sizeof(lab)) == 0);
	put_pin(b, &so);
	put_pin(b, &user);
	CU_ASSERT_FATAL(proto_put_u32(b, 0) == 0 && proto_put_u32(b, user_fails) == 0);
}

static void
test_token_record_sealed(void)
{
	static const char label[] = "sealed-label-0x51ab";
	struct proto_buf raw;
	CK_SESSION_HANDLE h;

	t_setup();
	CU_ASSERT_FATAL(ck_init_token(SO_PIN, label) == CKR_OK);
	CU_ASSERT_FATAL(ck_open(CONN_A, RW, &h) == CKR_OK);
	CU_ASSERT_FATAL(ck_login(CONN_A, h, CKU_SO, SO_PIN) == CKR_OK);
	CU_ASSERT_FATAL(ck_init_pin(CONN_A, h, USER_PIN) == CKR_OK);
	part_worker_free(W);
	W = NULL;
	proto_buf_init(&raw);
	CU_ASSERT_FATAL(raw_meta_get(&raw) == 0);
	/* A sealed record (the seal's header), and nothing of it in clear: not the label. */
	CU_ASSERT(raw.len > 2 && raw.data[0] == PART_SEAL_VERSION &&
	          raw.data[1] == PART_SEAL_AES256GCM);
	CU_ASSERT(memmem(raw.data, raw.len, label, strlen(label)) == NULL);
	/* It reads back. */
	CU_ASSERT_FATAL(t_open_worker() == 0);
	CU_ASSERT_FATAL(ck_open(CONN_A, RW, &h) == CKR_OK);
	CU_ASSERT_EQUAL(ck_login(CONN_A, h, CKU_USER, USER_PIN), CKR_OK);
	proto_buf_free(&raw);
	t_teardown();
}

static void
test_token_record_modified_refused(void)
{
	struct proto_buf raw, keep;
	size_t i;

	t_setup();
	t_ready();
	part_worker_free(W);
	W = NULL;
	proto_buf_init(&raw);
	proto_buf_init(&keep);
	CU_ASSERT_FATAL(raw_meta_get(&keep) == 0);
	/* Any flipped byte (header, nonce, ciphertext or tag) refuses the start. */
	for (i = 0; i < keep.len; i += 7) {
		proto_buf_reset(&raw);
		CU_ASSERT_FATAL(proto_put_raw(&raw, keep.data, keep.len) == 0);
		raw.data[i] ^= 0x10;
		raw_meta_put(&raw);
		CU_ASSERT_EQUAL(t_open_worker(), PART_ERR_CORRUPT);
		CU_ASSERT(W == NULL);
	}
	/* Truncated. */
	proto_buf_reset(&raw);
	CU_ASSERT_FATAL(proto_put_raw(&raw, keep.data, keep.len - 1) == 0);
	raw_meta_put(&raw);
	CU_ASSERT_EQUAL(t_open_worker(), PART_ERR_CORRUPT);
	/* Put back, it opens again. */
	raw_meta_put(&keep);
	CU_ASSERT_EQUAL(t_open_worker(), 0);
	proto_buf_free(&raw);
	proto_buf_free(&keep);
	t_teardown();
}

static void
test_token_record_other_master_key(void)
{
	struct part_store *s = NULL;
	struct part_txn *t = NULL;
	uint8_t other[PART_MASTERKEY_LEN];
	char path[600];

	t_setup();
	t_ready();
	part_worker_free(W);
	W = NULL;
	/* Without the sealed index (a token that never had an object; deleted here), the
	 * token record is the first thing the master key opens: it is what refuses. */
	CU_ASSERT_FATAL(part_store_open(tstore, &s) == 0);
	CU_ASSERT_FATAL(part_store_txn_begin(s, 1, &t) == 0);
	CU_ASSERT_FATAL(part_store_del(t, PART_DB_META, "seal-index", 10) == 0);
	CU_ASSERT_FATAL(part_store_txn_commit(t) == 0);
	part_store_close(s);
	CU_ASSERT_EQUAL(t_open_worker(), 0); /* the right key: fine without an index */
	part_worker_free(W);
	W = NULL;
	snprintf(path, sizeof(path), "%s/master.key", tstore);
	memset(other, 0x5a, sizeof(other));
	CU_ASSERT_FATAL(unlink(path) == 0);
	CU_ASSERT_FATAL(test_file_write(path, other, sizeof(other)) == 0);
	CU_ASSERT_EQUAL(t_open_worker(), PART_ERR_CORRUPT);
	CU_ASSERT(W == NULL);
	t_teardown();
}

static void
test_token_record_legacy_migrated(void)
{
	struct proto_buf raw;
	CK_SESSION_HANDLE h;
	CK_TOKEN_INFO ti;

	t_setup();
	part_worker_free(W);
	W = NULL;
	proto_buf_init(&raw);
	/* An earlier build's store: the record in clear, one wrong user PIN counted. */
	legacy_record(&raw, "legacy-label", 1);
	raw_meta_put(&raw);
	CU_ASSERT_FATAL(t_open_worker() == 0);
	/* Read as it was ... */
	CU_ASSERT_FATAL(ck_token_info(&ti) == CKR_OK);
	CU_ASSERT(memcmp(ti.label, "legacy-label ", 13) == 0);
	CU_ASSERT(ti.flags & CKF_USER_PIN_INITIALIZED);
	CU_ASSERT(ti.flags & CKF_USER_PIN_COUNT_LOW);
	/* ... and already sealed in the store, by the start itself. */
	CU_ASSERT_FATAL(raw_meta_get(&raw) == 0);
	CU_ASSERT(raw.len > 2 && raw.data[0] == PART_SEAL_VERSION &&
	          raw.data[1] == PART_SEAL_AES256GCM);
	CU_ASSERT(memmem(raw.data, raw.len, "legacy-label", 12) == NULL);
	CU_ASSERT_FATAL(ck_open(CONN_A, RW, &h) == CKR_OK);
	CU_ASSERT_EQUAL(ck_login(CONN_A, h, CKU_USER, USER_PIN), CKR_OK);
	CU_ASSERT_EQUAL(ck_logout(CONN_A, h), CKR_OK);
	CU_ASSERT_EQUAL(ck_login(CONN_A, h, CKU_SO, SO_PIN), CKR_OK);
	/* The sealed record carries everything over a restart. */
	t_reopen();
	CU_ASSERT_FATAL(ck_token_info(&ti) == CKR_OK);
	CU_ASSERT(memcmp(ti.label, "legacy-label ", 13) == 0);
	CU_ASSERT((ti.flags & CKF_USER_PIN_COUNT_LOW) == 0);
	proto_buf_free(&raw);
	t_teardown();
}

static void
test_token_record_legacy_malformed(void)
{
	struct proto_buf raw;

	t_setup();
	part_worker_free(W);
	W = NULL;
	proto_buf_init(&raw);
	/* An unsealed record with a byte too many, one too few, another version: refused,
	 * never rewritten. */
	legacy_record(&raw, "legacy", 0);
	CU_ASSERT_FATAL(proto_put_u8(&raw, 0) == 0);
	raw_meta_put(&raw);
	CU_ASSERT_EQUAL(t_open_worker(), PART_ERR_CORRUPT);
	raw.len -= 2;
	raw_meta_put(&raw);
	CU_ASSERT_EQUAL(t_open_worker(), PART_ERR_CORRUPT);
	proto_buf_reset(&raw);
	legacy_record(&raw, "legacy", 0);
	raw.data[3] = 2; /* u32 version 2 */
	raw_meta_put(&raw);
	CU_ASSERT_EQUAL(t_open_worker(), PART_ERR_CORRUPT);
	CU_ASSERT_FATAL(raw_meta_get(&raw) == 0);
	CU_ASSERT(raw.data[0] == 0x00); /* still the unsealed record */
	proto_buf_free(&raw);
	t_teardown();
}

static void
test_strerror(void)
{
	CU_ASSERT_STRING_EQUAL(part_strerror(PART_ERR_EXISTS), "token already initialised");
	CU_ASSERT_STRING_EQUAL(part_strerror(-1), "unknown error");
	CU_ASSERT_STRING_EQUAL(part_strerror(0), "success");
}

static const struct test_case cases[] = {
        {"slot info", test_slot_info},
        {"token info, uninitialised", test_token_info_uninitialised},
        {"C_InitToken first", test_init_token_first},
        {"C_InitToken PIN length", test_init_token_pin_len_range},
        {"C_InitToken re-init needs SO PIN", test_init_token_reinit_needs_so_pin},
        {"C_InitToken CKR_SESSION_EXISTS", test_init_token_session_exists},
        {"C_InitToken destroys token objects", test_init_token_destroys_objects},
        {"C_InitPIN needs SO", test_init_pin_needs_so},
        {"login user, states", test_login_user_ok_and_states},
        {"login SO state", test_login_so_state},
        {"CKR_USER_ALREADY_LOGGED_IN", test_login_already_logged_in},
        {"CKR_USER_ANOTHER_ALREADY_LOGGED_IN", test_login_another_logged_in},
        {"CKR_SESSION_READ_ONLY_EXISTS", test_login_so_read_only_exists},
        {"CKR_USER_PIN_NOT_INITIALIZED", test_login_user_pin_not_initialized},
        {"CKR_PIN_INCORRECT and counter", test_login_pin_incorrect},
        {"CKR_USER_TYPE_INVALID, context specific", test_login_user_type_invalid},
        {"login CKR_SESSION_HANDLE_INVALID", test_login_session_handle_invalid},
        {"logout CKR_USER_NOT_LOGGED_IN", test_logout_not_logged_in},
        {"login state per connection", test_login_is_per_connection},
        {"login state ends with last session", test_login_state_ends_with_last_session},
        {"PIN lockout", test_pin_lockout},
        {"C_SetPIN user", test_set_pin_user},
        {"C_SetPIN SO", test_set_pin_so},
        {"C_SetPIN CKR_SESSION_READ_ONLY", test_set_pin_read_only},
        {"C_SetPIN CKR_USER_PIN_NOT_INITIALIZED", test_set_pin_user_not_initialized},
        {"offline provisioning", test_provision},
        {"login: a verified PIN skips PBKDF2", test_login_fast_path},
        {"login: wrong PINs stay slow, counted, and lock", test_login_cached_wrong_pin_counted},
        {"C_SetPIN clears the PIN cache", test_set_pin_clears_cache},
        {"C_InitPIN clears the PIN cache", test_init_pin_clears_cache},
        {"C_InitToken clears the PIN cache", test_init_token_clears_cache},
        {"token record sealed, label not in clear", test_token_record_sealed},
        {"token record modified or truncated: refused", test_token_record_modified_refused},
        {"token record under another master key: refused", test_token_record_other_master_key},
        {"unsealed token record read and sealed at start", test_token_record_legacy_migrated},
        {"unsealed token record malformed: refused", test_token_record_legacy_malformed},
        {"part_strerror", test_strerror},
        {NULL, NULL},
};

void
test_register(void)
{
	test_suite_add("hsm-partitions/token", NULL, NULL, cases);
}
