/*
 * tests/hsm-partitions/part_test.h — drives the worker's dispatch core with frames built
 * by proto/, against a fresh store in a temporary directory. Each test file includes it
 * once (its helpers are static).
 */
#ifndef HSMGATE_TESTS_PART_TEST_H
#define HSMGATE_TESTS_PART_TEST_H

#include "hsm-partitions/part.h"
#include "tests/lib/test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Not every test file uses every helper. */
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-variable"

#define SO_PIN   "so-secret-1"
#define USER_PIN "user-secret-1"
#define CONN_A   100
#define CONN_B   200
#define SLOT     3
#define RW       (CKF_SERIAL_SESSION | CKF_RW_SESSION)
#define RO       CKF_SERIAL_SESSION

static struct part_worker *W;
static char *tdir;
static char tstore[512];
static uint32_t treq;
static struct proto_buf treply;
static struct proto_ctx tctx = {.cred = PROTO_CRED_CERT,
                                .principal = "tenant/demo/user/alice",
                                .tenant = "demo",
                                .source = "127.0.0.1:1"};

static int
t_open_worker(void)
{
	struct part_worker_opts o = {0};

	o.partition = "demo";
	o.store_dir = tstore;
	o.token_label = "demo-token";
	o.slot = SLOT;
	o.pin_iter = 1000; /* the production count is tested in test_pin.c */
	return part_worker_open(&o, &W);
}

/* A fresh worker on a fresh store. */
static void
t_setup(void)
{
	tdir = test_tmpdir_new("part");
	CU_ASSERT_FATAL(tdir != NULL);
	snprintf(tstore, sizeof(tstore), "%s/store", tdir);
	CU_ASSERT_FATAL(t_open_worker() == 0);
	proto_buf_init(&treply);
}

/* The worker process restarts: same store, all sessions gone. */
static void
t_reopen(void)
{
	part_worker_free(W);
	W = NULL;
	CU_ASSERT_FATAL(t_open_worker() == 0);
}

static void
t_teardown(void)
{
	part_worker_free(W);
	W = NULL;
	proto_buf_free(&treply);
	test_tmpdir_remove(tdir);
	tdir = NULL;
}

/*
 * Sends one request (body already encoded in `body`) as connection `conn`; returns the
 * CK_RV and leaves `resp` on the response fields (valid until the next call).
 */
static CK_RV
t_call(uint64_t conn, unsigned call, const struct proto_buf *body, struct proto_cur *resp)
{
	struct proto_buf req;
	struct proto_hdr hdr;
	struct proto_cur c;
	uint64_t rv;
	uint32_t id = ++treq;

	proto_buf_init(&req);
	proto_buf_reset(&treply);
	CU_ASSERT_FATAL(body->failed == 0);
	CU_ASSERT_FATAL(proto_frame_begin(&req, PROTO_MSG_REQUEST, (uint16_t)call, 0, id) == 0);
	CU_ASSERT_FATAL(proto_put_raw(&req, body->data, body->len) == 0);
	CU_ASSERT_FATAL(proto_frame_finish(&req) == 0);
	CU_ASSERT_FATAL(part_worker_handle(W, conn, &tctx, req.data, req.len, &treply) == 0);
	proto_buf_free(&req);
	CU_ASSERT_FATAL(proto_hdr_decode(treply.data, treply.len, 0, &hdr) == 0);
	CU_ASSERT_FATAL(hdr.type == PROTO_MSG_REPLY && hdr.call == call && hdr.req_id == id);
	CU_ASSERT_FATAL(hdr.body_len + PROTO_HDR_BYTES == treply.len);
	proto_cur_init(&c, treply.data + PROTO_HDR_BYTES, hdr.body_len);
	CU_ASSERT_FATAL(proto_get_u64(&c, &rv) == 0);
	if (!proto_reply_has_fields(call, (CK_RV)rv)) {
		CU_ASSERT(proto_cur_end(&c) == 0);
	}
	if (resp != NULL) {
		*resp = c;
	}
	return (CK_RV)rv;
}

/* Builds a body with the puts in `stmts` (using `b`) and calls. */
#define CALL(conn, fn, resp, stmts)                                                                \
	({                                                                                         \
		struct proto_buf b;                                                                \
		CK_RV rv_;                                                                         \
		proto_buf_init(&b);                                                                \
		stmts;                                                                             \
		rv_ = t_call(conn, PROTO_CALL_##fn, &b, resp);                                     \
		proto_buf_free(&b);                                                                \
		rv_;                                                                               \
	})

#define PUTU(v)        (void)!proto_put_ulong(&b, (CK_ULONG)(v))
#define PUTY(p, n)     (void)!proto_put_inbytes(&b, (const CK_BYTE *)(p), (CK_ULONG)(n))
#define PUTS(s)        PUTY(s, strlen(s))
#define PUTO(has, cap) (void)!proto_put_outbuf_req(&b, (has) ? (const CK_BYTE *)"" : NULL, cap)
#define PUTL(has, cap) (void)!proto_put_ulongs_req(&b, (has) ? (const CK_ULONG *)&b : NULL, cap)
#define PUTT(t, n)     (void)!proto_put_template(&b, t, n)

static CK_RV
ck_init_token(const char *pin, const char *label)
{
	char lab[32];

	memset(lab, ' ', sizeof(lab));
	memcpy(lab, label, strlen(label));
	return CALL(CONN_A, C_InitToken, NULL, (PUTU(SLOT), PUTS(pin), PUTY(lab, 32)));
}

static CK_RV
ck_open(uint64_t conn, CK_FLAGS flags, CK_SESSION_HANDLE *h)
{
	struct proto_cur c;
	CK_RV rv = CALL(conn, C_OpenSession, &c, (PUTU(SLOT), PUTU(flags)));

	*h = CK_INVALID_HANDLE;
	if (rv == CKR_OK) {
		CU_ASSERT(proto_get_ulong(&c, h) == 0);
		CU_ASSERT(proto_cur_end(&c) == 0);
	}
	return rv;
}

static CK_RV
ck_close(uint64_t conn, CK_SESSION_HANDLE h)
{
	return CALL(conn, C_CloseSession, NULL, PUTU(h));
}

static CK_RV
ck_login(uint64_t conn, CK_SESSION_HANDLE h, CK_USER_TYPE u, const char *pin)
{
	return CALL(conn, C_Login, NULL, (PUTU(h), PUTU(u), PUTS(pin)));
}

static CK_RV
ck_logout(uint64_t conn, CK_SESSION_HANDLE h)
{
	return CALL(conn, C_Logout, NULL, PUTU(h));
}

static CK_RV
ck_init_pin(uint64_t conn, CK_SESSION_HANDLE h, const char *pin)
{
	return CALL(conn, C_InitPIN, NULL, (PUTU(h), PUTS(pin)));
}

static CK_RV
ck_set_pin(uint64_t conn, CK_SESSION_HANDLE h, const char *old, const char *pin)
{
	return CALL(conn, C_SetPIN, NULL, (PUTU(h), PUTS(old), PUTS(pin)));
}

static CK_RV
ck_token_info(CK_TOKEN_INFO *info)
{
	struct proto_cur c;
	CK_RV rv = CALL(CONN_A, C_GetTokenInfo, &c, PUTU(SLOT));

	if (rv == CKR_OK) {
		CU_ASSERT(proto_get_token_info(&c, info) == 0);
		CU_ASSERT(proto_cur_end(&c) == 0);
	}
	return rv;
}

static CK_RV
ck_session_state(uint64_t conn, CK_SESSION_HANDLE h, CK_STATE *state)
{
	CK_SESSION_INFO info;
	struct proto_cur c;
	CK_RV rv = CALL(conn, C_GetSessionInfo, &c, PUTU(h));

	if (rv == CKR_OK) {
		CU_ASSERT(proto_get_session_info(&c, &info) == 0);
		*state = info.state;
	}
	return rv;
}

/* An initialised token with a user PIN, and no session open. */
static void
t_ready(void)
{
	CK_SESSION_HANDLE h;

	CU_ASSERT_FATAL(ck_init_token(SO_PIN, "demo") == CKR_OK);
	CU_ASSERT_FATAL(ck_open(CONN_A, RW, &h) == CKR_OK);
	CU_ASSERT_FATAL(ck_login(CONN_A, h, CKU_SO, SO_PIN) == CKR_OK);
	CU_ASSERT_FATAL(ck_init_pin(CONN_A, h, USER_PIN) == CKR_OK);
	CU_ASSERT_FATAL(ck_close(CONN_A, h) == CKR_OK);
}

#endif
