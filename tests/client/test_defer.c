/*
 * tests/client/test_defer.c — deferred inits (client/call.c, client/session.c, the `pre`
 * frame of cli_conn_call): an init this connection has seen succeed is answered by the
 * module and sent with the session's next call; every way that can go differently from a
 * round trip per init, against the fake gateway, counting the requests it receives.
 */
#include "tests/client/fakegw.h"
#include "proto/proto.h"

#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include "tests/lib/test.h"

static struct fakegw_suite fs;

static CK_MECHANISM sha256 = {CKM_SHA256, NULL, 0};
static CK_MECHANISM sha1 = {CKM_SHA_1, NULL, 0};

static int
suite_init(void)
{
	return fakegw_suite_init(&fs, "cli-defer");
}

static int
suite_cleanup(void)
{
	return fakegw_suite_fini(&fs);
}

/* A fresh module on a fresh connection with one session in *h; `extra` adds configuration
 * lines; C_Initialize gets `flags` (0: no arguments). */
static CK_RV
up_flags(const char *extra, CK_FLAGS flags, CK_SESSION_HANDLE *h)
{
	CK_C_INITIALIZE_ARGS a = {.flags = flags};
	CK_RV rv;

	(void)C_Finalize(NULL);
	fakegw_drop_all(fs.gw);
	fakegw_set_refuse_digest(fs.gw, 0);
	if (fakegw_write_conf(fs.gw, fs.conf, extra) != 0) {
		return CKR_GENERAL_ERROR;
	}
	setenv("HSMGATE_CONF", fs.conf, 1);
	if ((rv = C_Initialize(flags != 0 ? &a : NULL)) != CKR_OK) {
		return rv;
	}
	return C_OpenSession(1, CKF_SERIAL_SESSION, NULL, NULL, h);
}

static CK_RV
up(const char *extra, CK_SESSION_HANDLE *h)
{
	return up_flags(extra, 0, h);
}

/* C_Digest of "abc" on h: its CK_RV, and whether the digest is right when CKR_OK. */
static CK_RV
digest_abc(CK_SESSION_HANDLE h)
{
	CK_BYTE md[32], want[32];
	CK_ULONG n = sizeof(md);
	CK_RV rv;

	SHA256((const uint8_t *)"abc", 3, want);
	rv = C_Digest(h, (CK_BYTE_PTR) "abc", 3, md, &n);
	if (rv == CKR_OK && (n != 32 || memcmp(md, want, 32) != 0)) {
		return CKR_GENERAL_ERROR;
	}
	return rv;
}

/* ---- cases ---------------------------------------------------------------------------- */

static void
test_second_init_rides_along(void)
{
	CK_SESSION_HANDLE h;
	unsigned n;

	CU_ASSERT_EQUAL_FATAL(up(NULL, &h), CKR_OK);
	/* The first init of its kind is a round trip of its own. */
	n = fakegw_requests(fs.gw);
	CU_ASSERT_EQUAL(C_DigestInit(h, &sha256), CKR_OK);
	CU_ASSERT_EQUAL(fakegw_requests(fs.gw), n + 1);
	CU_ASSERT_EQUAL(digest_abc(h), CKR_OK);
	/* The next is answered here and goes out with the call after it. */
	n = fakegw_requests(fs.gw);
	CU_ASSERT_EQUAL(C_DigestInit(h, &sha256), CKR_OK);
	CU_ASSERT_EQUAL(fakegw_requests(fs.gw), n);
	CU_ASSERT_EQUAL(digest_abc(h), CKR_OK);
	CU_ASSERT_EQUAL(fakegw_requests(fs.gw), n + 2);
	/* Again, many times: each operation one round trip. */
	n = fakegw_requests(fs.gw);
	for (int i = 0; i < 50; i++) {
		CU_ASSERT_EQUAL(C_DigestInit(h, &sha256), CKR_OK);
		CU_ASSERT_EQUAL(digest_abc(h), CKR_OK);
	}
	CU_ASSERT_EQUAL(fakegw_requests(fs.gw), n + 100);
	CU_ASSERT_EQUAL(C_Finalize(NULL), CKR_OK);
}

static void
test_known_only_per_session_and_shape(void)
{
	CK_SESSION_HANDLE h, h2;
	unsigned n;

	CU_ASSERT_EQUAL_FATAL(up(NULL, &h), CKR_OK);
	/* An init that fails is reported by C_DigestInit, every time: never deferred. */
	n = fakegw_requests(fs.gw);
	CU_ASSERT_EQUAL(C_DigestInit(h, &sha1), CKR_MECHANISM_INVALID);
	CU_ASSERT_EQUAL(C_DigestInit(h, &sha1), CKR_MECHANISM_INVALID);
	CU_ASSERT_EQUAL(fakegw_requests(fs.gw), n + 2);
	/* What succeeded on one session is known to the connection: another session defers. */
	CU_ASSERT_EQUAL(C_DigestInit(h, &sha256), CKR_OK);
	CU_ASSERT_EQUAL(digest_abc(h), CKR_OK);
	CU_ASSERT_EQUAL_FATAL(C_OpenSession(1, CKF_SERIAL_SESSION, NULL, NULL, &h2), CKR_OK);
	n = fakegw_requests(fs.gw);
	CU_ASSERT_EQUAL(C_DigestInit(h2, &sha256), CKR_OK);
	CU_ASSERT_EQUAL(fakegw_requests(fs.gw), n);
	CU_ASSERT_EQUAL(digest_abc(h2), CKR_OK);
	CU_ASSERT_EQUAL(fakegw_requests(fs.gw), n + 2);
	/* A handle the module does not know is refused locally, deferred or not. */
	CU_ASSERT_EQUAL(C_DigestInit(h2 + 1000, &sha256), CKR_SESSION_HANDLE_INVALID);
	CU_ASSERT_EQUAL(C_Finalize(NULL), CKR_OK);
}

static void
test_failure_after_the_fact(void)
{
	CK_SESSION_HANDLE h;
	unsigned n;

	CU_ASSERT_EQUAL_FATAL(up(NULL, &h), CKR_OK);
	CU_ASSERT_EQUAL(C_DigestInit(h, &sha256), CKR_OK);
	CU_ASSERT_EQUAL(digest_abc(h), CKR_OK);
	/* The gateway changes its mind (a policy reload): the deferred init fails, and the
	 * call that carried it returns the init's error. */
	fakegw_set_refuse_digest(fs.gw, 1);
	CU_ASSERT_EQUAL(C_DigestInit(h, &sha256), CKR_OK);
	CU_ASSERT_EQUAL(digest_abc(h), CKR_MECHANISM_INVALID);
	/* Another call than the operation's own: the init goes first, alone, and its failure
	 * stops the call (C_GenerateRandom is never sent). */
	CU_ASSERT_EQUAL(C_DigestInit(h, &sha256), CKR_MECHANISM_INVALID);
	fakegw_set_refuse_digest(fs.gw, 0);
	CU_ASSERT_EQUAL(C_DigestInit(h, &sha256), CKR_OK);
	CU_ASSERT_EQUAL(digest_abc(h), CKR_OK);
	CU_ASSERT_EQUAL(C_DigestInit(h, &sha256), CKR_OK); /* deferred */
	fakegw_set_refuse_digest(fs.gw, 1);
	{
		CK_BYTE rnd[8];

		n = fakegw_requests(fs.gw);
		CU_ASSERT_EQUAL(C_GenerateRandom(h, rnd, sizeof(rnd)), CKR_MECHANISM_INVALID);
		CU_ASSERT_EQUAL(fakegw_requests(fs.gw), n + 1);
		CU_ASSERT_EQUAL(C_GenerateRandom(h, rnd, sizeof(rnd)), CKR_OK);
	}
	/* The connection has forgotten it: the next init is a round trip, with its own error. */
	n = fakegw_requests(fs.gw);
	CU_ASSERT_EQUAL(C_DigestInit(h, &sha256), CKR_MECHANISM_INVALID);
	CU_ASSERT_EQUAL(fakegw_requests(fs.gw), n + 1);
	fakegw_set_refuse_digest(fs.gw, 0);
	CU_ASSERT_EQUAL(C_DigestInit(h, &sha256), CKR_OK);
	CU_ASSERT_EQUAL(fakegw_requests(fs.gw), n + 2);
	CU_ASSERT_EQUAL(digest_abc(h), CKR_OK);
	CU_ASSERT_EQUAL(C_Finalize(NULL), CKR_OK);
}

static void
test_init_while_deferred(void)
{
	CK_SESSION_HANDLE h;
	unsigned n;

	CU_ASSERT_EQUAL_FATAL(up(NULL, &h), CKR_OK);
	CU_ASSERT_EQUAL(C_DigestInit(h, &sha256), CKR_OK);
	CU_ASSERT_EQUAL(digest_abc(h), CKR_OK);
	/* A second init on a session with one deferred: the first goes out alone, then the
	 * second, which gets the token's answer (the first is active). */
	n = fakegw_requests(fs.gw);
	CU_ASSERT_EQUAL(C_DigestInit(h, &sha256), CKR_OK);
	CU_ASSERT_EQUAL(C_DigestInit(h, &sha256), CKR_OPERATION_ACTIVE);
	CU_ASSERT_EQUAL(fakegw_requests(fs.gw), n + 2);
	CU_ASSERT_EQUAL(digest_abc(h), CKR_OK);
	/* Any init that failed is forgotten (conservative: one more round trip). */
	n = fakegw_requests(fs.gw);
	CU_ASSERT_EQUAL(C_DigestInit(h, &sha256), CKR_OK);
	CU_ASSERT_EQUAL(fakegw_requests(fs.gw), n + 1);
	CU_ASSERT_EQUAL(digest_abc(h), CKR_OK);
	/* A call refused locally (before any request) leaves the deferred init waiting. */
	CU_ASSERT_EQUAL(C_DigestInit(h, &sha256), CKR_OK);
	CU_ASSERT_EQUAL(C_Digest(h, NULL, 3, NULL, NULL), CKR_ARGUMENTS_BAD);
	n = fakegw_requests(fs.gw);
	CU_ASSERT_EQUAL(digest_abc(h), CKR_OK);
	CU_ASSERT_EQUAL(fakegw_requests(fs.gw), n + 2);
	CU_ASSERT_EQUAL(C_Finalize(NULL), CKR_OK);
}

static void
test_forgotten_on_state_change(void)
{
	CK_SESSION_HANDLE h, h2;
	unsigned n;

	CU_ASSERT_EQUAL_FATAL(up(NULL, &h), CKR_OK);
	CU_ASSERT_EQUAL(C_DigestInit(h, &sha256), CKR_OK);
	CU_ASSERT_EQUAL(digest_abc(h), CKR_OK);
	/* A login changes what the application may do: inits are round trips again. */
	CU_ASSERT_EQUAL(C_Login(h, CKU_USER, (CK_UTF8CHAR_PTR) "1234", 4), CKR_OK);
	n = fakegw_requests(fs.gw);
	CU_ASSERT_EQUAL(C_DigestInit(h, &sha256), CKR_OK);
	CU_ASSERT_EQUAL(fakegw_requests(fs.gw), n + 1);
	CU_ASSERT_EQUAL(digest_abc(h), CKR_OK);
	/* A deferred init goes out alone before C_CloseSession, which also forgets. */
	CU_ASSERT_EQUAL(C_DigestInit(h, &sha256), CKR_OK);
	n = fakegw_requests(fs.gw);
	CU_ASSERT_EQUAL(C_CloseSession(h), CKR_OK);
	CU_ASSERT_EQUAL(fakegw_requests(fs.gw), n + 2);
	CU_ASSERT_EQUAL_FATAL(C_OpenSession(1, CKF_SERIAL_SESSION, NULL, NULL, &h2), CKR_OK);
	n = fakegw_requests(fs.gw);
	CU_ASSERT_EQUAL(C_DigestInit(h2, &sha256), CKR_OK);
	CU_ASSERT_EQUAL(fakegw_requests(fs.gw), n + 1);
	CU_ASSERT_EQUAL(digest_abc(h2), CKR_OK);
	/* C_CloseAllSessions drops a deferred init unsent: nothing is left to use it. */
	CU_ASSERT_EQUAL(C_DigestInit(h2, &sha256), CKR_OK);
	n = fakegw_requests(fs.gw);
	CU_ASSERT_EQUAL(C_CloseAllSessions(1), CKR_OK);
	CU_ASSERT_EQUAL(fakegw_requests(fs.gw), n + 1);
	CU_ASSERT_EQUAL(digest_abc(h2), CKR_SESSION_HANDLE_INVALID);
	CU_ASSERT_EQUAL(C_Finalize(NULL), CKR_OK);
}

static void
test_switched_off(void)
{
	CK_SESSION_HANDLE h;
	unsigned n;

	CU_ASSERT_EQUAL_FATAL(up("defer_init: false\n", &h), CKR_OK);
	n = fakegw_requests(fs.gw);
	for (int i = 0; i < 3; i++) {
		CU_ASSERT_EQUAL(C_DigestInit(h, &sha256), CKR_OK);
		CU_ASSERT_EQUAL(fakegw_requests(fs.gw), n + 2 * (unsigned)i + 1);
		CU_ASSERT_EQUAL(digest_abc(h), CKR_OK);
	}
	CU_ASSERT_EQUAL(C_Finalize(NULL), CKR_OK);
}

static void
test_timeout(void)
{
	CK_SESSION_HANDLE h;
	CK_BYTE md[32];
	CK_ULONG n = sizeof(md);
	CK_BYTE rnd[8];

	CU_ASSERT_EQUAL_FATAL(up("timeout_ms: 300\n", &h), CKR_OK);
	CU_ASSERT_EQUAL(C_DigestInit(h, &sha256), CKR_OK);
	CU_ASSERT_EQUAL(digest_abc(h), CKR_OK);
	/* The init is answered, the call never is: the call times out, the init's waiter
	 * (answered) is freed at once, the call's (abandoned) when the connection goes. */
	CU_ASSERT_EQUAL(C_DigestInit(h, &sha256), CKR_OK);
	CU_ASSERT_EQUAL(C_Digest(h, (CK_BYTE_PTR) "hang", 4, md, &n), CKR_DEVICE_ERROR);
	/* The connection is fine. */
	CU_ASSERT_EQUAL(C_GenerateRandom(h, rnd, sizeof(rnd)), CKR_OK);
	CU_ASSERT_EQUAL(C_DigestInit(h, &sha256), CKR_OK);
	CU_ASSERT_EQUAL(digest_abc(h), CKR_OK);
	CU_ASSERT_EQUAL(C_Finalize(NULL), CKR_OK);
}

static void
test_connection_lost(void)
{
	CK_SESSION_HANDLE h;
	CK_RV rv;

	CU_ASSERT_EQUAL_FATAL(up(NULL, &h), CKR_OK);
	CU_ASSERT_EQUAL(C_DigestInit(h, &sha256), CKR_OK);
	CU_ASSERT_EQUAL(digest_abc(h), CKR_OK);
	CU_ASSERT_EQUAL(C_DigestInit(h, &sha256), CKR_OK);
	/* The gateway goes away with the init still here: the session is gone with the
	 * connection, and the call says so. */
	fakegw_drop_all(fs.gw);
	rv = digest_abc(h);
	CU_ASSERT_TRUE(rv == CKR_DEVICE_REMOVED || rv == CKR_SESSION_HANDLE_INVALID);
	CU_ASSERT_EQUAL(digest_abc(h), CKR_SESSION_HANDLE_INVALID);
	CU_ASSERT_EQUAL(C_Finalize(NULL), CKR_OK);
}

/* Threads, each with its own session, each running init + digest with deferred inits;
 * a slot limit of 3 makes them wait for the two slots a deferred init needs. */
struct loop {
	pthread_t t;
	int bad;
};

static void *
loop_main(void *arg)
{
	struct loop *l = arg;
	CK_SESSION_HANDLE h;

	if (C_OpenSession(1, CKF_SERIAL_SESSION, NULL, NULL, &h) != CKR_OK) {
		l->bad++;
		return NULL;
	}
	for (int i = 0; i < 300; i++) {
		l->bad += C_DigestInit(h, &sha256) != CKR_OK;
		l->bad += digest_abc(h) != CKR_OK;
	}
	l->bad += C_CloseSession(h) != CKR_OK;
	return NULL;
}

static void
run_threads(CK_FLAGS flags)
{
	struct loop l[6];
	CK_SESSION_HANDLE h;
	int bad = 0;

	CU_ASSERT_EQUAL_FATAL(up_flags(NULL, flags, &h), CKR_OK);
	CU_ASSERT_EQUAL(C_DigestInit(h, &sha256), CKR_OK);
	CU_ASSERT_EQUAL(digest_abc(h), CKR_OK);
	for (size_t i = 0; i < 6; i++) {
		memset(&l[i], 0, sizeof(l[i]));
		CU_ASSERT_EQUAL_FATAL(pthread_create(&l[i].t, NULL, loop_main, &l[i]), 0);
	}
	for (size_t i = 0; i < 6; i++) {
		pthread_join(l[i].t, NULL);
		bad += l[i].bad;
	}
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT_EQUAL(C_Finalize(NULL), CKR_OK);
}

static void
test_threads(void)
{
	run_threads(0);
	fakegw_set_limits(fs.gw, PROTO_MAX_FRAME_DEFAULT, 3);
	run_threads(0);
	fakegw_set_limits(fs.gw, PROTO_MAX_FRAME_DEFAULT, 64);
	/* Without an I/O thread: callers drive, and deliver each other's pairs of replies. */
	run_threads(CKF_LIBRARY_CANT_CREATE_OS_THREADS | CKF_OS_LOCKING_OK);
}

static void
test_one_slot(void)
{
	CK_SESSION_HANDLE h;
	unsigned n;

	/* A gateway that allows one request in flight: an init and its call cannot both be
	 * in flight, so nothing is deferred. */
	fakegw_set_limits(fs.gw, PROTO_MAX_FRAME_DEFAULT, 1);
	CU_ASSERT_EQUAL_FATAL(up(NULL, &h), CKR_OK);
	fakegw_set_limits(fs.gw, PROTO_MAX_FRAME_DEFAULT, 64);
	CU_ASSERT_EQUAL(C_DigestInit(h, &sha256), CKR_OK);
	CU_ASSERT_EQUAL(digest_abc(h), CKR_OK);
	n = fakegw_requests(fs.gw);
	CU_ASSERT_EQUAL(C_DigestInit(h, &sha256), CKR_OK);
	CU_ASSERT_EQUAL(fakegw_requests(fs.gw), n + 1);
	CU_ASSERT_EQUAL(digest_abc(h), CKR_OK);
	CU_ASSERT_EQUAL(C_Finalize(NULL), CKR_OK);
}

static const struct test_case cases[] = {
        {"a second init rides along with the next call", test_second_init_rides_along},
        {"only inits known to succeed are deferred", test_known_only_per_session_and_shape},
        {"a deferred init that fails after all", test_failure_after_the_fact},
        {"an init while one is deferred", test_init_while_deferred},
        {"login and closed sessions forget", test_forgotten_on_state_change},
        {"defer_init: false", test_switched_off},
        {"connection lost with an init deferred", test_connection_lost},
        {"a call with its init times out", test_timeout},
        {"6 threads, with 3 slots, threadless", test_threads},
        {"max_inflight 1: nothing deferred", test_one_slot},
        {NULL, NULL},
};

void
test_register(void)
{
	test_suite_add("client/defer", suite_init, suite_cleanup, cases);
}
