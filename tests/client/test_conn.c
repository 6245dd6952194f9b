/*
 * tests/client/test_conn.c — client/conn.c (and the forwarding in call.c / fwd_*.c) against
 * the in-process fake gateway: requests and replies, out-of-order replies, a gateway that
 * goes away mid-call, reconnection and session invalidation, gateway ERROR frames,
 * timeouts, max_inflight and max_frame, C_Finalize with calls in flight, many threads.
 */
#include "tests/client/fakegw.h"
#include "client/cli_int.h"
#include "proto/proto.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <openssl/sha.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "tests/lib/test.h"

#include <limits.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

static struct fakegw_suite fs;

static int
suite_init(void)
{
	return fakegw_suite_init(&fs, "cli-conn");
}

static int
suite_cleanup(void)
{
	return fakegw_suite_fini(&fs);
}

/* A fresh module on a fresh connection; `extra` adds configuration lines. */
static CK_RV
up(const char *extra)
{
	(void)C_Finalize(NULL);
	fakegw_drop_all(fs.gw);
	if (fakegw_write_conf(fs.gw, fs.conf, extra) != 0) {
		return CKR_GENERAL_ERROR;
	}
	setenv("HSMGATE_CONF", fs.conf, 1);
	return C_Initialize(NULL);
}

static uint64_t
ms_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void
sleep_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* C_GetSlotInfo in a thread: the fake gateway's behaviour is picked by the slot id. */
struct slot_call {
	pthread_t t;
	CK_SLOT_ID slot;
	CK_SLOT_INFO info;
	CK_RV rv;
};

static void *
slot_call_main(void *arg)
{
	struct slot_call *s = arg;

	s->rv = C_GetSlotInfo(s->slot, &s->info);
	return NULL;
}

static void
slot_call_start(struct slot_call *s, CK_SLOT_ID slot)
{
	memset(s, 0, sizeof(*s));
	s->slot = slot;
	s->rv = (CK_RV)-1;
	CU_ASSERT_EQUAL_FATAL(pthread_create(&s->t, NULL, slot_call_main, s), 0);
}

static int
desc_is(const CK_SLOT_INFO *si, const char *want)
{
	return memcmp(si->slotDescription, want, strlen(want)) == 0 &&
	       si->slotDescription[strlen(want)] == ' ';
}

/* ---- cases ------------------------------------------------------------------------------ */

static void
test_calls(void)
{
	CK_SLOT_ID slots[4];
	CK_ULONG n;
	CK_SLOT_INFO si;
	CK_TOKEN_INFO ti;
	CK_SESSION_INFO sinfo;
	CK_SESSION_HANDLE h;
	CK_MECHANISM sha256 = {CKM_SHA256, NULL, 0};
	CK_BYTE rnd[300], md[64], want[32];
	CK_SLOT_ID ev;
	size_t i;

	CU_ASSERT_EQUAL_FATAL(up(NULL), CKR_OK);

	/* Size query, then the list, then a buffer that is too small. */
	n = 0;
	CU_ASSERT_EQUAL(C_GetSlotList(CK_TRUE, NULL, &n), CKR_OK);
	CU_ASSERT_EQUAL(n, 1);
	n = 4;
	CU_ASSERT_EQUAL(C_GetSlotList(CK_TRUE, slots, &n), CKR_OK);
	CU_ASSERT_EQUAL(n, 1);
	CU_ASSERT_EQUAL(slots[0], 1);
	n = 0;
	CU_ASSERT_EQUAL(C_GetSlotList(CK_TRUE, slots, &n), CKR_BUFFER_TOO_SMALL);
	CU_ASSERT_EQUAL(n, 1);

	CU_ASSERT_EQUAL(C_GetSlotInfo(5, &si), CKR_OK);
	CU_ASSERT(desc_is(&si, "slot 5"));
	CU_ASSERT_EQUAL(C_GetTokenInfo(1, &ti), CKR_OK);
	CU_ASSERT_EQUAL(memcmp(ti.label, "fake ", 5), 0);

	CU_ASSERT_EQUAL_FATAL(C_OpenSession(1, CKF_SERIAL_SESSION, NULL, NULL, &h), CKR_OK);
	CU_ASSERT_EQUAL(proto_session_slot(h), 1);
	CU_ASSERT_EQUAL(C_GetSessionInfo(h, &sinfo), CKR_OK);
	CU_ASSERT_EQUAL(sinfo.slotID, 1);
	CU_ASSERT_EQUAL(sinfo.flags, CKF_SERIAL_SESSION);

	CU_ASSERT_EQUAL(C_Login(h, CKU_USER, (CK_UTF8CHAR_PTR) "0000", 4), CKR_PIN_INCORRECT);
	CU_ASSERT_EQUAL(C_Login(h, CKU_USER, (CK_UTF8CHAR_PTR) "1234", 4), CKR_OK);

	memset(rnd, 0xee, sizeof(rnd));
	CU_ASSERT_EQUAL(C_GenerateRandom(h, rnd, sizeof(rnd)), CKR_OK);
	for (i = 0; i < sizeof(rnd); i++) {
		if (rnd[i] != (CK_BYTE)i) {
			CU_FAIL("C_GenerateRandom: wrong byte");
			break;
		}
	}
	CU_ASSERT_EQUAL(C_GenerateRandom(h, NULL, 0), CKR_OK);

	/* Digest: a size query keeps the operation; the real call ends it. */
	SHA256((const uint8_t *)"abc", 3, want);
	CU_ASSERT_EQUAL(C_DigestInit(h, &sha256), CKR_OK);
	n = 0;
	CU_ASSERT_EQUAL(C_Digest(h, (CK_BYTE_PTR) "abc", 3, NULL, &n), CKR_OK);
	CU_ASSERT_EQUAL(n, 32);
	n = 16;
	CU_ASSERT_EQUAL(C_Digest(h, (CK_BYTE_PTR) "abc", 3, md, &n), CKR_BUFFER_TOO_SMALL);
	CU_ASSERT_EQUAL(n, 32);
	n = sizeof(md);
	CU_ASSERT_EQUAL(C_Digest(h, (CK_BYTE_PTR) "abc", 3, md, &n), CKR_OK);
	CU_ASSERT_EQUAL(n, 32);
	CU_ASSERT_EQUAL(memcmp(md, want, 32), 0);
	CU_ASSERT_EQUAL(C_Digest(h, (CK_BYTE_PTR) "abc", 3, md, &n), CKR_OPERATION_NOT_INITIALIZED);

	/* What the gateway does not know comes back as its CK_RV. */
	CU_ASSERT_EQUAL(C_SignInit(h, &sha256, 7), CKR_FUNCTION_NOT_SUPPORTED);

	/* Slot events: documented gateway answers. */
	CU_ASSERT_EQUAL(C_WaitForSlotEvent(CKF_DONT_BLOCK, &ev, NULL), CKR_NO_EVENT);
	CU_ASSERT_EQUAL(C_WaitForSlotEvent(0, &ev, NULL), CKR_FUNCTION_NOT_SUPPORTED);

	CU_ASSERT_EQUAL(C_CloseSession(h), CKR_OK);
	CU_ASSERT_EQUAL(C_Finalize(NULL), CKR_OK);
}

static void
test_arguments(void)
{
	CK_SESSION_HANDLE h;
	CK_ULONG n = 0;
	CK_BYTE buf[8];
	CK_SLOT_ID ev;
	int dummy;

	CU_ASSERT_EQUAL_FATAL(up(NULL), CKR_OK);
	CU_ASSERT_EQUAL(C_GetSlotList(CK_FALSE, NULL, NULL), CKR_ARGUMENTS_BAD);
	CU_ASSERT_EQUAL(C_GetSlotInfo(1, NULL), CKR_ARGUMENTS_BAD);
	CU_ASSERT_EQUAL(C_GetTokenInfo(1, NULL), CKR_ARGUMENTS_BAD);
	CU_ASSERT_EQUAL(C_OpenSession(1, CKF_SERIAL_SESSION, NULL, NULL, NULL), CKR_ARGUMENTS_BAD);
	CU_ASSERT_EQUAL(C_WaitForSlotEvent(CKF_DONT_BLOCK, NULL, NULL), CKR_ARGUMENTS_BAD);
	CU_ASSERT_EQUAL(C_WaitForSlotEvent(CKF_DONT_BLOCK, &ev, &dummy), CKR_ARGUMENTS_BAD);
	CU_ASSERT_EQUAL_FATAL(C_OpenSession(1, CKF_SERIAL_SESSION, NULL, NULL, &h), CKR_OK);
	CU_ASSERT_EQUAL(C_Digest(h, NULL, 5, buf, &n), CKR_ARGUMENTS_BAD);
	CU_ASSERT_EQUAL(C_Digest(h, buf, 5, buf, NULL), CKR_ARGUMENTS_BAD);
	CU_ASSERT_EQUAL(C_GenerateRandom(h, NULL, 8), CKR_ARGUMENTS_BAD);
	CU_ASSERT_EQUAL(C_Login(h, CKU_USER, NULL, 4), CKR_ARGUMENTS_BAD);
	CU_ASSERT_EQUAL(C_DigestInit(h, NULL), CKR_ARGUMENTS_BAD);
	CU_ASSERT_EQUAL(C_FindObjectsInit(h, NULL, 2), CKR_ARGUMENTS_BAD);
	CU_ASSERT_EQUAL(C_FindObjects(h, NULL, 4, &n), CKR_ARGUMENTS_BAD);
	CU_ASSERT_EQUAL(C_GetSessionInfo(h, NULL), CKR_ARGUMENTS_BAD);
	CU_ASSERT_EQUAL(C_CreateObject(h, NULL, 0, NULL), CKR_ARGUMENTS_BAD);
	CU_ASSERT_EQUAL(C_Finalize(NULL), CKR_OK);
}

static void
test_mechanism_param_invalid(void)
{
	CK_SESSION_HANDLE h;
	CK_BYTE junk[3] = {1, 2, 3};
	CK_MECHANISM gcm = {CKM_AES_GCM, junk, sizeof(junk)};
	unsigned before;

	CU_ASSERT_EQUAL_FATAL(up(NULL), CKR_OK);
	CU_ASSERT_EQUAL_FATAL(C_OpenSession(1, CKF_SERIAL_SESSION, NULL, NULL, &h), CKR_OK);
	before = fakegw_requests(fs.gw);
	/* A GCM parameter that is not a CK_GCM_PARAMS: refused before the wire. */
	CU_ASSERT_EQUAL(C_EncryptInit(h, &gcm, 5), CKR_MECHANISM_PARAM_INVALID);
	CU_ASSERT_EQUAL(fakegw_requests(fs.gw), before);
	CU_ASSERT_EQUAL(C_Finalize(NULL), CKR_OK);
}

static void
test_out_of_order(void)
{
	struct slot_call a, b;

	CU_ASSERT_EQUAL_FATAL(up(NULL), CKR_OK);
	slot_call_start(&a, 100); /* held by the gateway ... */
	sleep_ms(100);
	slot_call_start(&b, 101); /* ... until this one: replies come back 101, then 100 */
	pthread_join(a.t, NULL);
	pthread_join(b.t, NULL);
	CU_ASSERT_EQUAL(a.rv, CKR_OK);
	CU_ASSERT_EQUAL(b.rv, CKR_OK);
	CU_ASSERT(desc_is(&a.info, "slot 100"));
	CU_ASSERT(desc_is(&b.info, "slot 101"));
	CU_ASSERT_EQUAL(C_Finalize(NULL), CKR_OK);
}

static void
test_disconnect_mid_call(void)
{
	struct slot_call pending;
	CK_SESSION_HANDLE h, h2;
	CK_SESSION_INFO si;
	CK_SLOT_INFO info;
	CK_ULONG n = 0;
	unsigned welcomed;

	CU_ASSERT_EQUAL_FATAL(up(NULL), CKR_OK);
	welcomed = fakegw_welcomed(fs.gw);
	CU_ASSERT_EQUAL_FATAL(C_OpenSession(1, CKF_SERIAL_SESSION, NULL, NULL, &h), CKR_OK);
	slot_call_start(&pending, 201); /* never answered */
	sleep_ms(50);
	stderr_capture_begin(fs.errfile);
	/* The gateway drops the connection while both calls are in flight. */
	CU_ASSERT_EQUAL(C_GetSlotInfo(200, &info), CKR_DEVICE_REMOVED);
	pthread_join(pending.t, NULL);
	CU_ASSERT_PTR_NOT_NULL(strstr(stderr_capture_end(), "hsmgate: lost the connection"));
	CU_ASSERT_EQUAL(pending.rv, CKR_DEVICE_REMOVED);
	/* The session died with its connection: refused locally, no reconnect needed. */
	CU_ASSERT_EQUAL(C_GetSessionInfo(h, &si), CKR_SESSION_HANDLE_INVALID);
	CU_ASSERT_EQUAL(C_CloseSession(h), CKR_SESSION_HANDLE_INVALID);
	CU_ASSERT_EQUAL(fakegw_welcomed(fs.gw), welcomed);
	/* The next call reconnects. */
	CU_ASSERT_EQUAL(C_GetSlotList(CK_FALSE, NULL, &n), CKR_OK);
	CU_ASSERT_EQUAL(n, 1);
	CU_ASSERT_EQUAL(fakegw_welcomed(fs.gw), welcomed + 1);
	CU_ASSERT_EQUAL(C_GetSessionInfo(h, &si), CKR_SESSION_HANDLE_INVALID);
	CU_ASSERT_EQUAL_FATAL(C_OpenSession(1, CKF_SERIAL_SESSION, NULL, NULL, &h2), CKR_OK);
	CU_ASSERT_EQUAL(C_GetSessionInfo(h2, &si), CKR_OK);
	CU_ASSERT_EQUAL(C_Finalize(NULL), CKR_OK);
}

static void
test_gateway_restart_idle(void)
{
	CK_SESSION_HANDLE h;
	CK_SESSION_INFO si;
	CK_ULONG n = 0;
	uint64_t t0;

	CU_ASSERT_EQUAL_FATAL(up(NULL), CKR_OK);
	CU_ASSERT_EQUAL_FATAL(C_OpenSession(1, CKF_SERIAL_SESSION, NULL, NULL, &h), CKR_OK);
	stderr_capture_begin(fs.errfile);
	fakegw_drop_all(fs.gw);
	/* The I/O thread notices the close on its own; wait for that. */
	t0 = ms_now();
	while (C_GetSessionInfo(h, &si) == CKR_OK && ms_now() - t0 < 2000) {
		sleep_ms(10);
	}
	(void)stderr_capture_end();
	CU_ASSERT_EQUAL(C_GetSessionInfo(h, &si), CKR_SESSION_HANDLE_INVALID);
	CU_ASSERT_EQUAL(C_GetSlotList(CK_FALSE, NULL, &n), CKR_OK);
	CU_ASSERT_EQUAL(C_GetSessionInfo(h, &si), CKR_SESSION_HANDLE_INVALID);
	CU_ASSERT_EQUAL(C_Finalize(NULL), CKR_OK);
}

static void
test_closed_session(void)
{
	CK_SESSION_HANDLE a, b, c;
	CK_SESSION_INFO si;

	CU_ASSERT_EQUAL_FATAL(up(NULL), CKR_OK);
	CU_ASSERT_EQUAL(C_GetSessionInfo(12345, &si), CKR_SESSION_HANDLE_INVALID);
	CU_ASSERT_EQUAL_FATAL(C_OpenSession(1, CKF_SERIAL_SESSION, NULL, NULL, &a), CKR_OK);
	CU_ASSERT_EQUAL_FATAL(C_OpenSession(1, CKF_SERIAL_SESSION, NULL, NULL, &b), CKR_OK);
	CU_ASSERT_EQUAL_FATAL(C_OpenSession(2, CKF_SERIAL_SESSION, NULL, NULL, &c), CKR_OK);
	CU_ASSERT_EQUAL(C_CloseSession(a), CKR_OK);
	CU_ASSERT_EQUAL(C_GetSessionInfo(a, &si), CKR_SESSION_HANDLE_INVALID);
	CU_ASSERT_EQUAL(C_GetSessionInfo(b, &si), CKR_OK);
	CU_ASSERT_EQUAL(C_CloseAllSessions(1), CKR_OK);
	CU_ASSERT_EQUAL(C_GetSessionInfo(b, &si), CKR_SESSION_HANDLE_INVALID);
	CU_ASSERT_EQUAL(C_GetSessionInfo(c, &si), CKR_OK); /* another slot */
	CU_ASSERT_EQUAL(C_Finalize(NULL), CKR_OK);
}

static void
test_gateway_errors(void)
{
	CK_SLOT_INFO info;
	const char *err;
	unsigned welcomed;

	CU_ASSERT_EQUAL_FATAL(up(NULL), CKR_OK);
	welcomed = fakegw_welcomed(fs.gw);
	/* An ERROR frame for the request: that call fails, the connection stays. */
	stderr_capture_begin(fs.errfile);
	CU_ASSERT_EQUAL(C_GetSlotInfo(202, &info), CKR_DEVICE_ERROR);
	err = stderr_capture_end();
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "partition worker not running"));
	CU_ASSERT_EQUAL(C_GetSlotInfo(3, &info), CKR_OK);
	CU_ASSERT_EQUAL(fakegw_welcomed(fs.gw), welcomed);
	/* A reply with a trailing byte is not trusted. */
	stderr_capture_begin(fs.errfile);
	CU_ASSERT_EQUAL(C_GetSlotInfo(204, &info), CKR_DEVICE_ERROR);
	(void)stderr_capture_end();
	CU_ASSERT_EQUAL(C_GetSlotInfo(3, &info), CKR_OK);
	/* An ERROR with request id 0 closes the connection: in-flight calls are removed. */
	stderr_capture_begin(fs.errfile);
	CU_ASSERT_EQUAL(C_GetSlotInfo(203, &info), CKR_DEVICE_REMOVED);
	err = stderr_capture_end();
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "gateway is shutting down"));
	CU_ASSERT_EQUAL(C_GetSlotInfo(3, &info), CKR_OK);
	CU_ASSERT_EQUAL(fakegw_welcomed(fs.gw), welcomed + 1);
	CU_ASSERT_EQUAL(C_Finalize(NULL), CKR_OK);
}

static void
test_timeout(void)
{
	CK_SLOT_INFO info;
	uint64_t t0, dt;

	CU_ASSERT_EQUAL_FATAL(up("timeout_ms: 300\n"), CKR_OK);
	t0 = ms_now();
	CU_ASSERT_EQUAL(C_GetSlotInfo(201, &info), CKR_DEVICE_ERROR);
	dt = ms_now() - t0;
	CU_ASSERT(dt >= 290 && dt < 2000);
	/* The connection is still good. */
	CU_ASSERT_EQUAL(C_GetSlotInfo(3, &info), CKR_OK);
	CU_ASSERT_EQUAL(C_Finalize(NULL), CKR_OK);
}

static void
test_max_inflight(void)
{
	CK_SLOT_INFO info;
	unsigned before;

	fakegw_set_limits(fs.gw, PROTO_MAX_FRAME_DEFAULT, 2);
	CU_ASSERT_EQUAL_FATAL(up("timeout_ms: 200\n"), CKR_OK);
	fakegw_set_limits(fs.gw, PROTO_MAX_FRAME_DEFAULT, 64);
	before = fakegw_requests(fs.gw);
	/* Two calls the gateway never answers keep both slots, even after timing out
	 * (the gateway still counts them) ... */
	CU_ASSERT_EQUAL(C_GetSlotInfo(201, &info), CKR_DEVICE_ERROR);
	CU_ASSERT_EQUAL(C_GetSlotInfo(201, &info), CKR_DEVICE_ERROR);
	/* ... so a third waits for a slot and times out without being sent. */
	CU_ASSERT_EQUAL(C_GetSlotInfo(3, &info), CKR_DEVICE_ERROR);
	CU_ASSERT_EQUAL(fakegw_requests(fs.gw), before + 2);
	CU_ASSERT_EQUAL(C_Finalize(NULL), CKR_OK);
}

static void
test_max_frame(void)
{
	CK_SESSION_HANDLE h;
	CK_MECHANISM sha256 = {CKM_SHA256, NULL, 0};
	static CK_BYTE big[8192];
	CK_BYTE md[32];
	CK_ULONG n = sizeof(md);

	fakegw_set_limits(fs.gw, 4096, 64);
	CU_ASSERT_EQUAL_FATAL(up(NULL), CKR_OK);
	fakegw_set_limits(fs.gw, PROTO_MAX_FRAME_DEFAULT, 64);
	CU_ASSERT_EQUAL_FATAL(C_OpenSession(1, CKF_SERIAL_SESSION, NULL, NULL, &h), CKR_OK);
	CU_ASSERT_EQUAL(C_DigestInit(h, &sha256), CKR_OK);
	CU_ASSERT_EQUAL(C_Digest(h, big, sizeof(big), md, &n), CKR_DATA_LEN_RANGE);
	n = sizeof(md);
	CU_ASSERT_EQUAL(C_Digest(h, big, 1000, md, &n), CKR_OK);
	CU_ASSERT_EQUAL(C_Finalize(NULL), CKR_OK);
}

static void
test_finalize_in_flight(void)
{
	struct slot_call pending;
	CK_SLOT_INFO info;

	CU_ASSERT_EQUAL_FATAL(up(NULL), CKR_OK);
	slot_call_start(&pending, 201);
	sleep_ms(100);
	CU_ASSERT_EQUAL(C_Finalize(NULL), CKR_OK);
	pthread_join(pending.t, NULL);
	CU_ASSERT_EQUAL(pending.rv, CKR_CRYPTOKI_NOT_INITIALIZED);
	CU_ASSERT_EQUAL(C_GetSlotInfo(3, &info), CKR_CRYPTOKI_NOT_INITIALIZED);
}

/* ---- many threads over one connection ----------------------------------------------- */

#define STRESS_THREADS 8
#define STRESS_CALLS   300

struct stress {
	pthread_t t;
	unsigned seed;
	int bad;
};

static void *
stress_main(void *arg)
{
	struct stress *s = arg;
	CK_SESSION_HANDLE h;
	CK_SLOT_INFO si;
	CK_BYTE rnd[64];
	char want[32];
	CK_SLOT_ID slot;
	int i, j;

	for (i = 0; i < STRESS_CALLS; i++) {
		switch (rand_r(&s->seed) % 3) {
		case 0:
			slot = 1 + (CK_SLOT_ID)(rand_r(&s->seed) % 99);
			snprintf(want, sizeof(want), "slot %lu", (unsigned long)slot);
			if (C_GetSlotInfo(slot, &si) != CKR_OK || !desc_is(&si, want)) {
				s->bad++;
			}
			break;
		case 1:
			if (C_OpenSession(1, CKF_SERIAL_SESSION, NULL, NULL, &h) != CKR_OK) {
				s->bad++;
				break;
			}
			if (C_GenerateRandom(h, rnd, sizeof(rnd)) != CKR_OK) {
				s->bad++;
			}
			for (j = 0; j < (int)sizeof(rnd); j++) {
				s->bad += rnd[j] != (CK_BYTE)j;
			}
			if (C_CloseSession(h) != CKR_OK) {
				s->bad++;
			}
			break;
		default: {
			CK_ULONG n = 0;

			if (C_GetSlotList(CK_FALSE, NULL, &n) != CKR_OK || n != 1) {
				s->bad++;
			}
			break;
		}
		}
	}
	return NULL;
}

static void
test_threads(void)
{
	struct stress s[STRESS_THREADS];
	int i, bad = 0;

	fakegw_set_limits(fs.gw, PROTO_MAX_FRAME_DEFAULT, 4); /* callers queue for slots too */
	CU_ASSERT_EQUAL_FATAL(up(NULL), CKR_OK);
	fakegw_set_limits(fs.gw, PROTO_MAX_FRAME_DEFAULT, 64);
	for (i = 0; i < STRESS_THREADS; i++) {
		s[i].seed = (unsigned)i * 7919u + 1;
		s[i].bad = 0;
		CU_ASSERT_EQUAL_FATAL(pthread_create(&s[i].t, NULL, stress_main, &s[i]), 0);
	}
	for (i = 0; i < STRESS_THREADS; i++) {
		pthread_join(s[i].t, NULL);
		bad += s[i].bad;
	}
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT_EQUAL(C_Finalize(NULL), CKR_OK);
}

/* The application forbids the module to create threads (GnuTLS's p11tool does): callers
 * drive the connection themselves. */
static CK_RV
up_threadless(void)
{
	CK_C_INITIALIZE_ARGS a;

	(void)C_Finalize(NULL);
	fakegw_drop_all(fs.gw);
	if (fakegw_write_conf(fs.gw, fs.conf, NULL) != 0) {
		return CKR_GENERAL_ERROR;
	}
	setenv("HSMGATE_CONF", fs.conf, 1);
	memset(&a, 0, sizeof(a));
	a.flags = CKF_LIBRARY_CANT_CREATE_OS_THREADS | CKF_OS_LOCKING_OK;
	return C_Initialize(&a);
}

static int
thread_count(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int n = 0;

	if (d == NULL) {
		return -1;
	}
	while ((e = readdir(d)) != NULL) {
		n += e->d_name[0] != '.';
	}
	closedir(d);
	return n;
}

static void
test_threadless(void)
{
	struct stress s[STRESS_THREADS];
	struct slot_call a, b;
	CK_SLOT_INFO si;
	int i, bad = 0, before = thread_count();

	CU_ASSERT_EQUAL_FATAL(up_threadless(), CKR_OK);
	/* The fake gateway serves each connection with a thread of this process; the module
	 * must add none of its own. */
	CU_ASSERT(thread_count() <= before + 1);
	CU_ASSERT_EQUAL(C_GetSlotInfo(5, &si), CKR_OK);
	CU_ASSERT(desc_is(&si, "slot 5"));
	/* Two application threads: the one driving the connection delivers the other's reply. */
	slot_call_start(&a, 100);
	sleep_ms(100);
	slot_call_start(&b, 101);
	pthread_join(a.t, NULL);
	pthread_join(b.t, NULL);
	CU_ASSERT_EQUAL(a.rv, CKR_OK);
	CU_ASSERT_EQUAL(b.rv, CKR_OK);
	CU_ASSERT(desc_is(&a.info, "slot 100"));
	CU_ASSERT(desc_is(&b.info, "slot 101"));
	for (i = 0; i < STRESS_THREADS; i++) {
		s[i].seed = (unsigned)i * 104729u + 3;
		s[i].bad = 0;
		CU_ASSERT_EQUAL_FATAL(pthread_create(&s[i].t, NULL, stress_main, &s[i]), 0);
	}
	for (i = 0; i < STRESS_THREADS; i++) {
		pthread_join(s[i].t, NULL);
		bad += s[i].bad;
	}
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT_EQUAL(C_Finalize(NULL), CKR_OK);
}

/* Writes one byte through a BIO from `bio_new` to a socket whose peer has closed, in a child
 * where SIGPIPE has its default action (termination): the child's wait status. */
static int
write_to_closed(BIO *(*bio_new)(int))
{
	int sv[2], st = -1;
	pid_t pid;
	BIO *b;

	if ((pid = fork()) == 0) {
		signal(SIGPIPE, SIG_DFL);
		if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) {
			_exit(3);
		}
		close(sv[1]);
		if ((b = bio_new(sv[0])) == NULL) {
			_exit(4);
		}
		_exit(BIO_write(b, "x", 1) < 0 && errno == EPIPE ? 0 : 5);
	}
	CU_ASSERT_FATAL(pid > 0);
	CU_ASSERT_EQUAL(waitpid(pid, &st, 0), pid);
	return st;
}

static BIO *
openssl_socket_bio(int fd)
{
	return BIO_new_socket(fd, BIO_NOCLOSE);
}

static void
test_no_sigpipe(void)
{
	int st;

	/* Application threads write to the socket (a lone caller drives its own call): the
	 * module's BIO reports EPIPE and the process lives on ... */
	st = write_to_closed(cli_nosig_bio_new);
	CU_ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	/* ... where OpenSSL's own socket BIO would have killed it. */
	st = write_to_closed(openssl_socket_bio);
	CU_ASSERT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGPIPE);
}

static const struct test_case cases[] = {
        {"forwarded calls and replies", test_calls},
        {"argument checks", test_arguments},
        {"mechanism parameter refused locally", test_mechanism_param_invalid},
        {"replies out of order", test_out_of_order},
        {"gateway drops the connection mid-call", test_disconnect_mid_call},
        {"gateway restart while idle", test_gateway_restart_idle},
        {"closed sessions are refused", test_closed_session},
        {"gateway ERROR frames", test_gateway_errors},
        {"per-call timeout", test_timeout},
        {"max_inflight", test_max_inflight},
        {"max_frame", test_max_frame},
        {"C_Finalize with a call in flight", test_finalize_in_flight},
        {"8 threads on one connection", test_threads},
        {"threadless mode (CKF_LIBRARY_CANT_CREATE_OS_THREADS)", test_threadless},
        {"no SIGPIPE from a write to a closed socket", test_no_sigpipe},
        {NULL, NULL},
};

void
test_register(void)
{
	test_suite_add("client/conn", suite_init, suite_cleanup, cases);
}
