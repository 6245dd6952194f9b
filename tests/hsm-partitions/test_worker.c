/* tests/hsm-partitions/test_worker.c — hsm-partitions/worker.c: the reply frame, malformed
 * request bodies (CKR_ARGUMENTS_BAD, and the worker keeps going), unsupported calls, and
 * broken frame headers (PART_ERR_IPC). */
#include "tests/hsm-partitions/part_test.h"

/* Sends raw body bytes for `call`. */
static CK_RV
raw(unsigned call, const void *p, size_t n)
{
	struct proto_buf b;
	CK_RV rv;

	proto_buf_init(&b);
	CU_ASSERT(proto_put_raw(&b, p, n) == 0);
	rv = t_call(CONN_A, call, &b, NULL);
	proto_buf_free(&b);
	return rv;
}

static void
test_malformed_bodies(void)
{
	CK_SESSION_HANDLE h;
	CK_TOKEN_INFO ti;
	struct proto_buf lb;
	size_t cut;

	t_setup();
	t_ready();
	CU_ASSERT_FATAL(ck_open(CONN_A, RW, &h) == CKR_OK);
	/* Empty, truncated, trailing bytes. */
	CU_ASSERT_EQUAL(raw(PROTO_CALL_C_Login, "", 0), CKR_ARGUMENTS_BAD);
	CU_ASSERT_EQUAL(raw(PROTO_CALL_C_GetTokenInfo, "\0\0\0", 3), CKR_ARGUMENTS_BAD);
	CU_ASSERT_EQUAL(CALL(CONN_A, C_GetTokenInfo, NULL, (PUTU(SLOT), PUTU(0))),
	                CKR_ARGUMENTS_BAD);
	/* A C_Login body cut at every byte: each is refused, none logs in. */
	proto_buf_init(&lb);
	CU_ASSERT(proto_put_ulong(&lb, h) == 0 && proto_put_ulong(&lb, CKU_USER) == 0 &&
	          proto_put_inbytes(&lb, (const CK_BYTE *)USER_PIN, strlen(USER_PIN)) == 0);
	for (cut = 0; cut < lb.len; cut++) {
		CU_ASSERT_EQUAL(raw(PROTO_CALL_C_Login, lb.data, cut), CKR_ARGUMENTS_BAD);
	}
	/* A bad template kind byte in C_CreateObject. */
	CU_ASSERT_EQUAL(raw(PROTO_CALL_C_CreateObject,
	                    "\0\0\0\0\0\0\0\1"
	                    "\0\0\0\1"
	                    "\0\0\0\0\0\0\0\0"
	                    "\x09",
	                    21),
	                CKR_ARGUMENTS_BAD);
	/* The worker keeps going, with its state intact. */
	CU_ASSERT_EQUAL(raw(PROTO_CALL_C_Login, lb.data, lb.len), CKR_OK);
	proto_buf_free(&lb);
	CU_ASSERT_EQUAL(ck_token_info(&ti), CKR_OK);
	t_teardown();
}

static void
test_unsupported_calls(void)
{
	CK_SESSION_HANDLE h;

	t_setup();
	t_ready();
	CU_ASSERT_FATAL(ck_open(CONN_A, RW, &h) == CKR_OK);
	/* docs/PKCS11.md: the operation state functions are not supported. */
	CU_ASSERT_EQUAL(CALL(CONN_A, C_GetOperationState, NULL, (PUTU(h), PUTO(0, 0))),
	                CKR_FUNCTION_NOT_SUPPORTED);
	CU_ASSERT_EQUAL(
	        CALL(CONN_A, C_SetOperationState, NULL, (PUTU(h), PUTY("x", 1), PUTU(0), PUTU(0))),
	        CKR_FUNCTION_NOT_SUPPORTED);
	/* A key function whose body does not decode. */
	CU_ASSERT_EQUAL(CALL(CONN_A, C_SignInit, NULL, PUTU(h)), CKR_ARGUMENTS_BAD);
	CU_ASSERT_EQUAL(CALL(CONN_A, C_GenerateKey, NULL, PUTU(h)), CKR_ARGUMENTS_BAD);
	CU_ASSERT_EQUAL(CALL(CONN_A, C_GetSlotList, NULL, PUTU(0)), CKR_FUNCTION_NOT_SUPPORTED);
	CU_ASSERT_EQUAL(raw(PROTO_CALL_COUNT + 5, "", 0), CKR_FUNCTION_NOT_SUPPORTED);
	CU_ASSERT_EQUAL(raw(0, "", 0), CKR_FUNCTION_NOT_SUPPORTED);
	t_teardown();
}

static void
test_broken_header(void)
{
	struct proto_buf req, reply;
	uint8_t junk[32];

	t_setup();
	proto_buf_init(&req);
	proto_buf_init(&reply);
	memset(junk, 0xa5, sizeof(junk));
	CU_ASSERT_EQUAL(part_worker_handle(W, CONN_A, &tctx, junk, sizeof(junk), &reply),
	                PART_ERR_IPC);
	CU_ASSERT_EQUAL(part_worker_handle(W, CONN_A, &tctx, junk, 3, &reply), PART_ERR_IPC);
	/* A reply frame where a request belongs. */
	CU_ASSERT(proto_frame_begin(&req, PROTO_MSG_REPLY, PROTO_CALL_C_GetTokenInfo, 0, 1) == 0);
	CU_ASSERT(proto_frame_finish(&req) == 0);
	CU_ASSERT_EQUAL(part_worker_handle(W, CONN_A, &tctx, req.data, req.len, &reply),
	                PART_ERR_IPC);
	/* A frame whose length does not match what was handed over. */
	proto_buf_reset(&req);
	CU_ASSERT(proto_frame_begin(&req, PROTO_MSG_REQUEST, PROTO_CALL_C_GetTokenInfo, 0, 1) == 0);
	CU_ASSERT(proto_put_ulong(&req, SLOT) == 0 && proto_frame_finish(&req) == 0);
	CU_ASSERT_EQUAL(part_worker_handle(W, CONN_A, &tctx, req.data, req.len - 1, &reply),
	                PART_ERR_IPC);
	CU_ASSERT_EQUAL(part_worker_handle(W, CONN_A, &tctx, req.data, req.len, &reply), 0);
	proto_buf_free(&req);
	proto_buf_free(&reply);
	t_teardown();
}

static void
test_open_refusals(void)
{
	struct part_worker_opts o = {0};
	struct part_worker *w = NULL;

	CU_ASSERT_EQUAL(part_worker_open(&o, &w), PART_ERR_INVALID);
	o.partition = "demo";
	o.store_dir = "/dev/null/store" /* not a directory */;
	o.slot = 0;
	CU_ASSERT_EQUAL(part_worker_open(&o, &w), PART_ERR_INVALID);
	o.slot = 1;
	CU_ASSERT_EQUAL(part_worker_open(&o, &w), PART_ERR_IO);
	CU_ASSERT_PTR_NULL(w);
}

static const struct test_case cases[] = {
        {"malformed bodies: CKR_ARGUMENTS_BAD, worker goes on", test_malformed_bodies},
        {"unsupported calls", test_unsupported_calls},
        {"broken frame header: PART_ERR_IPC", test_broken_header},
        {"part_worker_open refusals", test_open_refusals},
        {NULL, NULL},
};

void
test_register(void)
{
	test_suite_add("hsm-partitions/worker", NULL, NULL, cases);
}
