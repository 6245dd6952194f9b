/* tests/hsm-partitions/test_ipc.c — hsm-partitions/ipc.c: the worker loop over a
 * socketpair: requests answered with their conn_id, CONN_CLOSED, EOF, broken framing, and
 * the order of replies with crypto threads. */
#include "tests/hsm-partitions/part_test.h"

#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

static void
put_request(int fd, uint64_t conn, unsigned call, const struct proto_buf *body)
{
	struct proto_buf f, m;

	proto_buf_init(&f);
	proto_buf_init(&m);
	CU_ASSERT_FATAL(proto_frame_begin(&f, PROTO_MSG_REQUEST, (uint16_t)call, 0, 9) == 0 &&
	                proto_put_raw(&f, body->data, body->len) == 0 &&
	                proto_frame_finish(&f) == 0);
	CU_ASSERT_FATAL(proto_ipc_begin(&m, PROTO_IPC_REQUEST, conn) == 0 &&
	                proto_ctx_put(&m, &tctx) == 0 && proto_put_raw(&m, f.data, f.len) == 0 &&
	                proto_ipc_finish(&m) == 0);
	CU_ASSERT_FATAL(write(fd, m.data, m.len) == (ssize_t)m.len);
	proto_buf_free(&f);
	proto_buf_free(&m);
}

/* Reads one reply message; returns its CK_RV and conn_id (and its call, if asked). */
static CK_RV
get_reply_call(int fd, uint64_t *conn, unsigned *call)
{
	uint8_t buf[4096];
	uint8_t kind;
	uint32_t blen;
	struct proto_hdr hdr;
	struct proto_cur c;
	uint64_t rv;

	CU_ASSERT_FATAL(recv(fd, buf, PROTO_IPC_HDR_BYTES, MSG_WAITALL) == PROTO_IPC_HDR_BYTES);
	CU_ASSERT_FATAL(proto_ipc_hdr_decode(buf, PROTO_IPC_HDR_BYTES, sizeof(buf), &kind, conn,
	                                     &blen) == 0);
	CU_ASSERT_FATAL(kind == PROTO_IPC_REPLY);
	CU_ASSERT_FATAL(recv(fd, buf, blen, MSG_WAITALL) == (ssize_t)blen);
	CU_ASSERT_FATAL(proto_hdr_decode(buf, blen, 0, &hdr) == 0);
	if (call != NULL) {
		*call = hdr.call;
	}
	proto_cur_init(&c, buf + PROTO_HDR_BYTES, blen - PROTO_HDR_BYTES);
	CU_ASSERT_FATAL(proto_get_u64(&c, &rv) == 0);
	return (CK_RV)rv;
}

static CK_RV
get_reply(int fd, uint64_t *conn)
{
	return get_reply_call(fd, conn, NULL);
}

static void
test_serve(void)
{
	struct proto_buf b, m;
	uint64_t conn;
	int sv[2];

	t_setup();
	t_ready();
	CU_ASSERT_FATAL(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	proto_buf_init(&b);
	proto_buf_init(&m);
	CU_ASSERT(proto_put_ulong(&b, SLOT) == 0 && proto_put_ulong(&b, RW) == 0);
	put_request(sv[0], 77, PROTO_CALL_C_OpenSession, &b);
	CU_ASSERT(proto_ipc_begin(&m, PROTO_IPC_CONN_CLOSED, 77) == 0 && proto_ipc_finish(&m) == 0);
	CU_ASSERT(write(sv[0], m.data, m.len) == (ssize_t)m.len);
	proto_buf_reset(&b);
	CU_ASSERT(proto_put_u8(&b, 1) == 0); /* malformed body */
	put_request(sv[0], 78, PROTO_CALL_C_GetTokenInfo, &b);
	shutdown(sv[0], SHUT_WR);
	/* Everything is queued: serve runs to EOF, the replies wait in the socket. */
	CU_ASSERT_EQUAL(part_worker_serve(W, sv[1]), 0);
	CU_ASSERT_EQUAL(get_reply(sv[0], &conn), CKR_OK);
	CU_ASSERT_EQUAL(conn, 77);
	CU_ASSERT_EQUAL(get_reply(sv[0], &conn), CKR_ARGUMENTS_BAD);
	CU_ASSERT_EQUAL(conn, 78);
	close(sv[0]);
	close(sv[1]);
	proto_buf_free(&b);
	proto_buf_free(&m);
	t_teardown();
}

static void
test_serve_broken_framing(void)
{
	static const uint8_t junk[] = {0, 0, 0, 9, 9, 0, 0, 0, 0, 0, 0, 0, 1};
	struct proto_buf m;
	int sv[2];

	t_setup();
	/* unknown kind */
	CU_ASSERT_FATAL(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	CU_ASSERT(write(sv[0], junk, sizeof(junk)) == (ssize_t)sizeof(junk));
	shutdown(sv[0], SHUT_WR);
	CU_ASSERT_EQUAL(part_worker_serve(W, sv[1]), PART_ERR_IPC);
	close(sv[0]);
	close(sv[1]);
	/* EOF inside a message */
	CU_ASSERT_FATAL(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	proto_buf_init(&m);
	CU_ASSERT(proto_ipc_begin(&m, PROTO_IPC_REQUEST, 1) == 0 && proto_put_u32(&m, 5) == 0 &&
	          proto_ipc_finish(&m) == 0);
	CU_ASSERT(write(sv[0], m.data, m.len - 2) == (ssize_t)m.len - 2);
	shutdown(sv[0], SHUT_WR);
	CU_ASSERT_EQUAL(part_worker_serve(W, sv[1]), PART_ERR_IPC);
	close(sv[0]);
	close(sv[1]);
	/* a request whose context does not decode */
	CU_ASSERT_FATAL(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	CU_ASSERT(write(sv[0], m.data, m.len) == (ssize_t)m.len);
	shutdown(sv[0], SHUT_WR);
	CU_ASSERT_EQUAL(part_worker_serve(W, sv[1]), PART_ERR_IPC);
	close(sv[0]);
	close(sv[1]);
	proto_buf_free(&m);
	t_teardown();
}

/* With crypto threads: RSA signatures on three sessions are handed over; a C_DestroyObject
 * of their key, in the same batch, waits for them, and its reply (so its audit event) comes
 * after theirs. */
static void
test_serve_threads(void)
{
	CK_MECHANISM sha = {CKM_SHA256_RSA_PKCS, NULL, 0};
	CK_OBJECT_HANDLE pub, priv;
	CK_SESSION_HANDLE h[3];
	struct proto_buf b;
	uint64_t conn;
	unsigned call, i;
	int sv[2];

	t_rsa_session(3, &h[0], &pub, &priv);
	for (i = 0; i < 3; i++) {
		if (i > 0) {
			CU_ASSERT_FATAL(ck_open(CONN_A, RW, &h[i]) == CKR_OK);
		}
		CU_ASSERT_FATAL(ck_init_op(PROTO_CALL_C_SignInit, h[i], &sha, priv) == CKR_OK);
	}
	CU_ASSERT_FATAL(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	proto_buf_init(&b);
	for (i = 0; i < 3; i++) {
		proto_buf_reset(&b);
		t_put_sign(&b, h[i]);
		put_request(sv[0], CONN_A, PROTO_CALL_C_Sign, &b);
	}
	proto_buf_reset(&b);
	CU_ASSERT(proto_put_ulong(&b, h[0]) == 0 && proto_put_ulong(&b, priv) == 0);
	put_request(sv[0], CONN_A, PROTO_CALL_C_DestroyObject, &b);
	shutdown(sv[0], SHUT_WR);
	CU_ASSERT_EQUAL(part_worker_serve(W, sv[1]), 0);
	for (i = 0; i < 3; i++) {
		CU_ASSERT_EQUAL(get_reply_call(sv[0], &conn, &call), CKR_OK);
		CU_ASSERT(conn == CONN_A && call == PROTO_CALL_C_Sign);
	}
	CU_ASSERT_EQUAL(get_reply_call(sv[0], &conn, &call), CKR_OK);
	CU_ASSERT_EQUAL(call, PROTO_CALL_C_DestroyObject);
	close(sv[0]);
	close(sv[1]);
	proto_buf_free(&b);
	t_teardown();
}

/* A C_GenerateKeyPair of an RSA key handed to the crypto threads made its key-level policy
 * decision before it left: the decision goes to the gateway at once (it would otherwise be
 * lost to the next request's), the reply after it, once the pair is made. */
static void
test_serve_threads_decision(void)
{
	static const char pol[] =
	        "version: 1\nname: t\ntenant: demo\nprincipals:\n"
	        "  alice: tenant/demo/user/alice\nstatements:\n"
	        "  - sid: AliceKeys\n    effect: allow\n    principals: [principal:alice]\n"
	        "    actions: [\"hsm.*\"]\n"
	        "    resources: [\"crn:hsmgate:demo:partition:demo\", "
	        "\"crn:hsmgate:demo:partition:demo:*\"]\n";
	CK_MECHANISM gen = {CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0};
	CK_ULONG bits = 2048;
	CK_ATTRIBUTE pt[] = {{CKA_MODULUS_BITS, &bits, sizeof(bits)}};
	CK_OBJECT_HANDLE pub, priv;
	CK_SESSION_HANDLE h;
	struct proto_buf b;
	struct proto_cur c;
	uint8_t buf[4096], kind, result = 0;
	char action[64], sids[64];
	uint32_t blen, req = 0;
	uint64_t conn;
	unsigned call;
	int sv[2];

	t_rsa_session(3, &h, &pub, &priv);
	CU_ASSERT_FATAL(part_worker_set_policy(W, (const uint8_t *)pol, sizeof(pol) - 1) == 0);
	CU_ASSERT_FATAL(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	proto_buf_init(&b);
	CU_ASSERT(proto_put_ulong(&b, h) == 0 && proto_put_mechanism(&b, &gen) == 0 &&
	          proto_put_template(&b, pt, 1) == 0 && proto_put_template(&b, NULL, 0) == 0);
	put_request(sv[0], CONN_A, PROTO_CALL_C_GenerateKeyPair, &b);
	shutdown(sv[0], SHUT_WR);
	CU_ASSERT_EQUAL(part_worker_serve(W, sv[1]), 0);
	CU_ASSERT_EQUAL(part_later_pending(part_worker_later(W)), 0);

	CU_ASSERT_FATAL(recv(sv[0], buf, PROTO_IPC_HDR_BYTES, MSG_WAITALL) == PROTO_IPC_HDR_BYTES);
	CU_ASSERT_FATAL(proto_ipc_hdr_decode(buf, PROTO_IPC_HDR_BYTES, sizeof(buf), &kind, &conn,
	                                     &blen) == 0);
	CU_ASSERT_EQUAL_FATAL(kind, PROTO_IPC_AUDIT);
	CU_ASSERT_FATAL(recv(sv[0], buf, blen, MSG_WAITALL) == (ssize_t)blen);
	proto_cur_init(&c, buf, blen);
	CU_ASSERT(proto_get_u32(&c, &req) == 0 &&
	          proto_get_string(&c, action, sizeof(action)) == 0 &&
	          proto_get_u8(&c, &result) == 0 && proto_get_string(&c, sids, sizeof(sids)) == 0);
	CU_ASSERT(conn == CONN_A && req == 9 && result == 2);
	CU_ASSERT_STRING_EQUAL(action, "hsm.keys.generatepair");
	CU_ASSERT_STRING_EQUAL(sids, "AliceKeys");
	CU_ASSERT_EQUAL(get_reply_call(sv[0], &conn, &call), CKR_OK);
	CU_ASSERT(conn == CONN_A && call == PROTO_CALL_C_GenerateKeyPair);
	close(sv[0]);
	close(sv[1]);
	proto_buf_free(&b);
	t_teardown();
}

/* The gateway closes its end with signatures still out: they end, their replies cannot be
 * written, and the loop still ends as for any EOF (0), not as an I/O error. */
static void
test_serve_threads_gateway_gone(void)
{
	CK_MECHANISM sha = {CKM_SHA256_RSA_PKCS, NULL, 0};
	CK_OBJECT_HANDLE pub, priv;
	CK_SESSION_HANDLE h;
	struct proto_buf b;
	void (*old)(int);
	int sv[2];

	t_rsa_session(3, &h, &pub, &priv);
	CU_ASSERT_FATAL(ck_init_op(PROTO_CALL_C_SignInit, h, &sha, priv) == CKR_OK);
	CU_ASSERT_FATAL(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	proto_buf_init(&b);
	t_put_sign(&b, h);
	put_request(sv[0], CONN_A, PROTO_CALL_C_Sign, &b);
	close(sv[0]);
	old = signal(SIGPIPE, SIG_IGN); /* hsmgate-worker ignores it too */
	CU_ASSERT_EQUAL(part_worker_serve(W, sv[1]), 0);
	signal(SIGPIPE, old);
	CU_ASSERT_EQUAL(part_later_pending(part_worker_later(W)), 0);
	close(sv[1]);
	proto_buf_free(&b);
	t_teardown();
}

static const struct test_case cases[] = {
        {"serve: replies, CONN_CLOSED, EOF", test_serve},
        {"serve: broken framing", test_serve_broken_framing},
        {"serve with crypto threads: a call that waited is answered after", test_serve_threads},
        {"serve with crypto threads: the gateway gone with calls out",
         test_serve_threads_gateway_gone},
        {"serve with crypto threads: a key pair's policy decision goes ahead",
         test_serve_threads_decision},
        {NULL, NULL},
};

void
test_register(void)
{
	test_suite_add("hsm-partitions/ipc", NULL, NULL, cases);
}
