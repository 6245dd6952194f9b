/* tests/hsm-partitions/test_worker.c — hsm-partitions/worker.c: the reply frame, malformed
 * request bodies (CKR_ARGUMENTS_BAD, and the worker keeps going), unsupported calls, broken
 * frame headers (PART_ERR_IPC), and the order of calls handed to crypto threads. */
#include "tests/hsm-partitions/part_test.h"

#include <poll.h>

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

/* ---- crypto threads ---------------------------------------------------------------------- */

/* The request frame `req` (request id `id`), as connection `conn`, straight to
 * part_worker_handle: its return; *rv the CK_RV when it was answered at once. Frees req. */
static int
handle_raw(uint64_t conn, struct proto_buf *req, uint32_t id, CK_RV *rv)
{
	struct proto_buf reply;
	struct proto_hdr hdr;
	struct proto_cur c;
	uint64_t v = 0;
	int r;

	proto_buf_init(&reply);
	CU_ASSERT_FATAL(proto_frame_finish(req) == 0);
	r = part_worker_handle(W, conn, &tctx, req->data, req->len, &reply);
	if (r == PART_LATER) {
		CU_ASSERT_EQUAL(reply.len, 0);
	} else if (r == 0) {
		CU_ASSERT_FATAL(proto_hdr_decode(reply.data, reply.len, 0, &hdr) == 0 &&
		                hdr.req_id == id);
		proto_cur_init(&c, reply.data + PROTO_HDR_BYTES, hdr.body_len);
		CU_ASSERT(proto_get_u64(&c, &v) == 0);
	}
	*rv = (CK_RV)v;
	proto_buf_free(req);
	proto_buf_free(&reply);
	return r;
}

/* A C_Sign (t_put_sign) on session h as request `id` of connection `conn` (handle_raw). */
static int
sign_raw(uint64_t conn, CK_SESSION_HANDLE h, uint32_t id, CK_RV *rv)
{
	struct proto_buf req;

	proto_buf_init(&req);
	CU_ASSERT_FATAL(proto_frame_begin(&req, PROTO_MSG_REQUEST, PROTO_CALL_C_Sign, 0, id) == 0);
	t_put_sign(&req, h);
	return handle_raw(conn, &req, id, rv);
}

/* The next reply message in out[*off..]: 1 with its connection, header, CK_RV and `c` on
 * the fields after the CK_RV (*off moved past it), 0 at the end. */
static int
next_reply(const struct proto_buf *out, size_t *off, uint64_t *conn, struct proto_hdr *hdr,
           struct proto_cur *c, uint64_t *rv)
{
	uint32_t len;
	uint8_t kind;

	if (*off >= out->len) {
		CU_ASSERT_EQUAL(*off, out->len);
		return 0;
	}
	CU_ASSERT_FATAL(proto_ipc_hdr_decode(out->data + *off, out->len - *off, out->len - *off,
	                                     &kind, conn, &len) == 0);
	CU_ASSERT(kind == PROTO_IPC_REPLY);
	*off += PROTO_IPC_HDR_BYTES;
	CU_ASSERT_FATAL(proto_hdr_decode(out->data + *off, len, 0, hdr) == 0);
	proto_cur_init(c, out->data + *off + PROTO_HDR_BYTES, hdr->body_len);
	CU_ASSERT_FATAL(proto_get_u64(c, rv) == 0);
	*off += len;
	return 1;
}

/* Takes the replies of calls answered later (all: waiting for them) into ids[]/rvs[], with
 * the signature length of each; the count. */
static unsigned
later_replies(int all, uint64_t conn, uint32_t *ids, CK_RV *rvs, CK_ULONG *lens, unsigned max)
{
	struct proto_buf out;
	struct proto_hdr hdr;
	struct proto_cur c;
	CK_BYTE sig[512];
	size_t off = 0;
	uint64_t cid, v;
	unsigned n = 0;

	proto_buf_init(&out);
	CU_ASSERT_FATAL(part_worker_flush(W, &out, all) == 0);
	while (n < max && next_reply(&out, &off, &cid, &hdr, &c, &v)) {
		CU_ASSERT(cid == conn);
		ids[n] = hdr.req_id;
		rvs[n] = (CK_RV)v;
		lens[n] = 0;
		if (v == CKR_OK) {
			lens[n] = sizeof(sig);
			CU_ASSERT(proto_get_outbuf_reply(&c, sig, &lens[n]) == 0);
		}
		n++;
	}
	CU_ASSERT_EQUAL(off, out.len);
	proto_buf_free(&out);
	return n;
}

/* With crypto threads a call handed over is still answered as if the worker served one call
 * at a time: whatever comes after it on its session, or could touch any session, waits. */
static void
test_threads_order(void)
{
	CK_MECHANISM ecgen = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
	CK_MECHANISM sha = {CKM_SHA256_RSA_PKCS, NULL, 0}, ecdsa = {CKM_ECDSA_SHA256, NULL, 0};
	static const CK_BYTE p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
	CK_ATTRIBUTE ect[] = {{CKA_EC_PARAMS, (void *)p256, sizeof(p256)}};
	CK_SESSION_HANDLE h, h2, h3;
	CK_OBJECT_HANDLE pub, priv, ecpub, ecpriv;
	uint32_t ids[4];
	CK_RV rvs[4], rv;
	CK_ULONG lens[4], siglen = 128;
	CK_BYTE sig[128];
	struct pollfd pf;

	t_rsa_session(3, &h, &pub, &priv);
	CU_ASSERT_FATAL(ck_genpair(CONN_A, h, &ecgen, ect, 1, NULL, 0, &ecpub, &ecpriv) == CKR_OK);
	CU_ASSERT_FATAL(ck_open(CONN_A, RW, &h2) == CKR_OK);
	CU_ASSERT_FATAL(ck_open(CONN_A, RW, &h3) == CKR_OK);

	/* handed over; a C_CloseSession of its session waits for it, so it signed */
	CU_ASSERT_EQUAL(ck_init_op(PROTO_CALL_C_SignInit, h2, &sha, priv), CKR_OK);
	CU_ASSERT_EQUAL(sign_raw(CONN_A, h2, 1001, &rv), PART_LATER);
	CU_ASSERT_EQUAL(part_later_pending(part_worker_later(W)), 1);
	CU_ASSERT_EQUAL(ck_close(CONN_A, h2), CKR_OK);
	CU_ASSERT_EQUAL(part_later_pending(part_worker_later(W)), 0);
	CU_ASSERT_EQUAL(later_replies(1, CONN_A, ids, rvs, lens, 4), 1);
	CU_ASSERT(ids[0] == 1001 && rvs[0] == CKR_OK && lens[0] == 256);

	/* a second C_Sign on the busy session waits for the first, which ended the operation */
	CU_ASSERT_EQUAL(ck_init_op(PROTO_CALL_C_SignInit, h3, &sha, priv), CKR_OK);
	CU_ASSERT_EQUAL(sign_raw(CONN_A, h3, 1002, &rv), PART_LATER);
	CU_ASSERT_EQUAL(sign_raw(CONN_A, h3, 1003, &rv), 0);
	CU_ASSERT_EQUAL(rv, CKR_OPERATION_NOT_INITIALIZED);
	CU_ASSERT_EQUAL(later_replies(1, CONN_A, ids, rvs, lens, 4), 1);
	CU_ASSERT(ids[0] == 1002 && rvs[0] == CKR_OK);

	/* two sessions side by side: an init on another session does not wait */
	CU_ASSERT_EQUAL(ck_init_op(PROTO_CALL_C_SignInit, h3, &sha, priv), CKR_OK);
	CU_ASSERT_EQUAL(sign_raw(CONN_A, h3, 1004, &rv), PART_LATER);
	CU_ASSERT_EQUAL(ck_init_op(PROTO_CALL_C_SignInit, h, &sha, priv), CKR_OK);
	CU_ASSERT_EQUAL(part_later_pending(part_worker_later(W)), 1);
	CU_ASSERT_EQUAL(sign_raw(CONN_A, h, 1005, &rv), PART_LATER);
	CU_ASSERT_EQUAL(part_later_pending(part_worker_later(W)), 2);
	/* the eventfd says when they have ended; flushing without waiting takes them */
	pf.fd = part_later_fd(part_worker_later(W));
	pf.events = POLLIN;
	while (part_later_pending(part_worker_later(W)) > 0) {
		CU_ASSERT_FATAL(poll(&pf, 1, 10000) == 1);
		later_replies(0, CONN_A, ids, rvs, lens, 4);
	}
	CU_ASSERT_EQUAL(poll(&pf, 1, 0), 0);

	/* a multi-part operation on another session goes on beside a call out (its update and
	 * final do not wait for it); an update on the busy session waits, then finds that the
	 * call out ended its operation */
	CU_ASSERT_FATAL(ck_open(CONN_A, RW, &h2) == CKR_OK);
	CU_ASSERT_EQUAL(ck_init_op(PROTO_CALL_C_SignInit, h3, &sha, priv), CKR_OK);
	CU_ASSERT_EQUAL(sign_raw(CONN_A, h3, 1008, &rv), PART_LATER);
	CU_ASSERT_EQUAL(ck_init_op(PROTO_CALL_C_SignInit, h2, &ecdsa, ecpriv), CKR_OK);
	CU_ASSERT_EQUAL(ck_in(PROTO_CALL_C_SignUpdate, h2, "part one", 8), CKR_OK);
	CU_ASSERT_EQUAL(part_later_pending(part_worker_later(W)), 1);
	CU_ASSERT_EQUAL(ck_fin(PROTO_CALL_C_SignFinal, h2, sig, &siglen), CKR_OK);
	CU_ASSERT_EQUAL(siglen, 64);
	CU_ASSERT_EQUAL(part_later_pending(part_worker_later(W)), 1);
	CU_ASSERT_EQUAL(ck_in(PROTO_CALL_C_SignUpdate, h3, "late", 4),
	                CKR_OPERATION_NOT_INITIALIZED);
	CU_ASSERT_EQUAL(part_later_pending(part_worker_later(W)), 0);
	CU_ASSERT_EQUAL(later_replies(1, CONN_A, ids, rvs, lens, 4), 1);
	CU_ASSERT(ids[0] == 1008 && rvs[0] == CKR_OK);

	/* an ECDSA signature is served in line */
	CU_ASSERT_EQUAL(ck_init_op(PROTO_CALL_C_SignInit, h, &ecdsa, ecpriv), CKR_OK);
	CU_ASSERT_EQUAL(sign_raw(CONN_A, h, 1006, &rv), 0);
	CU_ASSERT_EQUAL(rv, CKR_OK);

	/* the connection goes away with a call out: it ends first, its reply is flushed */
	CU_ASSERT_EQUAL(ck_init_op(PROTO_CALL_C_SignInit, h, &sha, priv), CKR_OK);
	CU_ASSERT_EQUAL(sign_raw(CONN_A, h, 1007, &rv), PART_LATER);
	part_worker_conn_closed(W, CONN_A);
	CU_ASSERT_EQUAL(part_later_pending(part_worker_later(W)), 0);
	CU_ASSERT_EQUAL(later_replies(1, CONN_A, ids, rvs, lens, 4), 1);
	CU_ASSERT(ids[0] == 1007 && rvs[0] == CKR_OK);
	CU_ASSERT_EQUAL(ck_close(CONN_A, h), CKR_SESSION_HANDLE_INVALID);

	CU_ASSERT_EQUAL(part_worker_threads(W, PART_THREADS_MAX + 1), PART_ERR_INVALID);
	CU_ASSERT_EQUAL(part_later_help(part_worker_later(W)), 0); /* no pool left: in line */
	CU_ASSERT_EQUAL(part_later_fd(part_worker_later(W)), -1);
	t_teardown();
}

/* A C_GenerateKeyPair (h, RSA, modulus bits, the private template) as request `id` of
 * CONN_A (handle_raw). */
static int
genpair_raw(CK_SESSION_HANDLE h, uint32_t id, CK_ULONG bits, CK_ATTRIBUTE *priv, CK_ULONG npriv,
            CK_RV *rv)
{
	CK_MECHANISM gen = {CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0};
	CK_ATTRIBUTE pt[] = {{CKA_MODULUS_BITS, &bits, sizeof(bits)}};
	struct proto_buf req;

	proto_buf_init(&req);
	CU_ASSERT_FATAL(proto_frame_begin(&req, PROTO_MSG_REQUEST, PROTO_CALL_C_GenerateKeyPair, 0,
	                                  id) == 0);
	CU_ASSERT_FATAL(proto_put_ulong(&req, h) == 0 && proto_put_mechanism(&req, &gen) == 0 &&
	                proto_put_template(&req, pt, 1) == 0 &&
	                proto_put_template(&req, priv, npriv) == 0);
	return handle_raw(CONN_A, &req, id, rv);
}

/* Waits for every call answered later and finds the reply of C_GenerateKeyPair `id` among
 * them: its CK_RV and handles; the number of replies. */
static unsigned
pair_reply(uint32_t id, CK_RV *rv, CK_OBJECT_HANDLE *pub, CK_OBJECT_HANDLE *priv)
{
	struct proto_buf out;
	struct proto_hdr hdr;
	struct proto_cur c;
	size_t off = 0;
	uint64_t cid, v;
	unsigned n = 0;

	*rv = CKR_GENERAL_ERROR;
	*pub = *priv = CK_INVALID_HANDLE;
	proto_buf_init(&out);
	CU_ASSERT_FATAL(part_worker_flush(W, &out, 1) == 0);
	for (; next_reply(&out, &off, &cid, &hdr, &c, &v); n++) {
		if (hdr.req_id == id && hdr.call == PROTO_CALL_C_GenerateKeyPair) {
			*rv = (CK_RV)v;
			if (v == CKR_OK) {
				CU_ASSERT(proto_get_ulong(&c, pub) == 0 &&
				          proto_get_ulong(&c, priv) == 0 && proto_cur_end(&c) == 0);
			}
		}
	}
	proto_buf_free(&out);
	return n;
}

/* An RSA key pair is made on a crypto thread: the call is answered later, another session's
 * crypto calls go on meanwhile, a call that could see objects waits for it, and the pair
 * (a token object, stored when the thread is done) works and lasts. Refusals of the checks
 * come at once; a failure of the generation itself with the reply. */
static void
test_threads_keygen(void)
{
	CK_MECHANISM sha = {CKM_SHA256_RSA_PKCS, NULL, 0};
	CK_BBOOL yes = CK_TRUE;
	CK_OBJECT_CLASS secret = CKO_SECRET_KEY;
	CK_ATTRIBUTE tok[] = {{CKA_TOKEN, &yes, sizeof(yes)}, {CKA_SIGN, &yes, sizeof(yes)}};
	CK_ATTRIBUTE bad[] = {{CKA_CLASS, &secret, sizeof(secret)}};
	CK_OBJECT_CLASS pk = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE privs[] = {{CKA_CLASS, &pk, sizeof(pk)}};
	CK_MECHANISM aes = {CKM_AES_KEY_GEN, NULL, 0};
	CK_ULONG aeslen = 32;
	CK_ATTRIBUTE aesl[] = {{CKA_VALUE_LEN, &aeslen, sizeof(aeslen)}};
	CK_SESSION_HANDLE h, h2, h3, hb;
	CK_OBJECT_HANDLE pub, priv, gpub, gpriv, found[8];
	struct proto_cur c;
	CK_ULONG n;
	CK_RV rv;

	t_rsa_session(3, &h, &pub, &priv);
	CU_ASSERT_FATAL(ck_open(CONN_A, RW, &h2) == CKR_OK);

	CU_ASSERT_EQUAL_FATAL(genpair_raw(h2, 2001, 2048, tok, 2, &rv), PART_LATER);
	CU_ASSERT_EQUAL(part_later_pending(part_worker_later(W)), 1);
	/* another session's signature does not wait for it */
	CU_ASSERT_EQUAL(ck_init_op(PROTO_CALL_C_SignInit, h, &sha, priv), CKR_OK);
	CU_ASSERT_EQUAL(sign_raw(CONN_A, h, 2002, &rv), PART_LATER);
	CU_ASSERT_EQUAL(part_later_pending(part_worker_later(W)), 2);
	/* C_FindObjectsInit could see the new objects: it waits for both calls */
	CU_ASSERT_EQUAL(CALL(CONN_A, C_FindObjectsInit, NULL, (PUTU(h), PUTT(privs, 1))), CKR_OK);
	CU_ASSERT_EQUAL(part_later_pending(part_worker_later(W)), 0);
	CU_ASSERT_EQUAL(pair_reply(2001, &rv, &gpub, &gpriv), 2);
	CU_ASSERT_EQUAL_FATAL(rv, CKR_OK);
	CU_ASSERT(gpub != CK_INVALID_HANDLE && gpriv != CK_INVALID_HANDLE && gpub != gpriv);
	CU_ASSERT_EQUAL(CALL(CONN_A, C_FindObjectsFinal, NULL, PUTU(h)), CKR_OK);

	/* key generations on other sessions do not wait either: a second RSA pair is handed over
	 * beside the first, an AES key is made in line */
	CU_ASSERT_FATAL(ck_open(CONN_A, RW, &h3) == CKR_OK);
	CU_ASSERT_EQUAL(genpair_raw(h2, 2007, 2048, tok, 2, &rv), PART_LATER);
	CU_ASSERT_EQUAL(genpair_raw(h3, 2008, 2048, tok, 0, &rv), PART_LATER);
	CU_ASSERT_EQUAL(part_later_pending(part_worker_later(W)), 2);
	CU_ASSERT_EQUAL(CALL(CONN_A, C_GenerateKey, &c,
	                     (PUTU(h), (void)!proto_put_mechanism(&b, &aes), PUTT(aesl, 1))),
	                CKR_OK);
	CU_ASSERT_EQUAL(part_later_pending(part_worker_later(W)), 2);
	CU_ASSERT_EQUAL(pair_reply(2008, &rv, &pub, &priv), 2);
	CU_ASSERT_EQUAL(rv, CKR_OK);
	CU_ASSERT_EQUAL(ck_close(CONN_A, h3), CKR_OK);

	/* the new private key signs */
	CU_ASSERT_EQUAL(ck_init_op(PROTO_CALL_C_SignInit, h, &sha, gpriv), CKR_OK);
	CU_ASSERT_EQUAL(sign_raw(CONN_A, h, 2003, &rv), PART_LATER);
	CU_ASSERT_EQUAL(pair_reply(0, &rv, &pub, &priv), 1);

	/* another connection is not held up by this one's key generation: it opens a session,
	 * logs in, lists the token's private keys; its C_DestroyObject of one, which could be an
	 * object in use, waits for the generation */
	CU_ASSERT_EQUAL(genpair_raw(h2, 2009, 2048, tok, 2, &rv), PART_LATER);
	CU_ASSERT_FATAL(ck_open(CONN_B, RW, &hb) == CKR_OK);
	CU_ASSERT_EQUAL(ck_login(CONN_B, hb, CKU_USER, USER_PIN), CKR_OK);
	CU_ASSERT_EQUAL(CALL(CONN_B, C_FindObjectsInit, NULL, (PUTU(hb), PUTT(privs, 1))), CKR_OK);
	CU_ASSERT_EQUAL(CALL(CONN_B, C_FindObjects, &c, (PUTU(hb), PUTL(1, 8))), CKR_OK);
	n = 8;
	CU_ASSERT(proto_get_ulongs_reply(&c, found, &n) == 0 && n >= 1);
	CU_ASSERT_EQUAL(CALL(CONN_B, C_FindObjectsFinal, NULL, PUTU(hb)), CKR_OK);
	CU_ASSERT_EQUAL(part_later_pending(part_worker_later(W)), 1);
	/* its logout neither (a soft token's login state is its connection's) */
	CU_ASSERT_EQUAL(CALL(CONN_B, C_Logout, NULL, PUTU(hb)), CKR_OK);
	CU_ASSERT_EQUAL(ck_login(CONN_B, hb, CKU_USER, USER_PIN), CKR_OK);
	CU_ASSERT_EQUAL(part_later_pending(part_worker_later(W)), 1);
	/* nor does another connection going away (its sessions are its own) */
	CU_ASSERT_FATAL(ck_open(CONN_B + 1, RW, &h3) == CKR_OK);
	part_worker_conn_closed(W, CONN_B + 1);
	CU_ASSERT_EQUAL(ck_close(CONN_B + 1, h3), CKR_SESSION_HANDLE_INVALID);
	CU_ASSERT_EQUAL(part_later_pending(part_worker_later(W)), 1);
	CU_ASSERT_EQUAL(CALL(CONN_B, C_DestroyObject, NULL, (PUTU(hb), PUTU(found[0]))), CKR_OK);
	CU_ASSERT_EQUAL(part_later_pending(part_worker_later(W)), 0);
	CU_ASSERT_EQUAL(pair_reply(2009, &rv, &pub, &priv), 1);
	CU_ASSERT_EQUAL(rv, CKR_OK);
	CU_ASSERT_EQUAL(ck_close(CONN_B, hb), CKR_OK);

	/* a template the checks refuse is answered at once, nothing handed over */
	CU_ASSERT_EQUAL(genpair_raw(h2, 2004, 2048, bad, 1, &rv), 0);
	CU_ASSERT_EQUAL(rv, CKR_TEMPLATE_INCONSISTENT);
	CU_ASSERT_EQUAL(part_later_pending(part_worker_later(W)), 0);
	/* a size the engine refuses: the thread's CK_RV comes with the reply, no object made */
	CU_ASSERT_EQUAL(genpair_raw(h2, 2005, 100, tok, 2, &rv), PART_LATER);
	CU_ASSERT_EQUAL(pair_reply(2005, &rv, &pub, &priv), 1);
	CU_ASSERT_EQUAL(rv, CKR_ATTRIBUTE_VALUE_INVALID);
	CU_ASSERT_EQUAL(pub, CK_INVALID_HANDLE);
	/* the session of a call out closes: the pair is made first, and stays (token objects) */
	CU_ASSERT_EQUAL(genpair_raw(h2, 2006, 2048, tok, 2, &rv), PART_LATER);
	CU_ASSERT_EQUAL(ck_close(CONN_A, h2), CKR_OK);
	CU_ASSERT_EQUAL(pair_reply(2006, &rv, &pub, &priv), 1);
	CU_ASSERT_EQUAL(rv, CKR_OK);
	CU_ASSERT_EQUAL(CALL(CONN_A, C_FindObjectsInit, NULL, (PUTU(h), PUTT(privs, 1))), CKR_OK);
	CU_ASSERT_EQUAL(CALL(CONN_A, C_FindObjects, &c, (PUTU(h), PUTL(1, 8))), CKR_OK);
	n = 8;
	CU_ASSERT(proto_get_ulongs_reply(&c, found, &n) == 0);
	CU_ASSERT_EQUAL(n, 4); /* the session's, four token pairs (2008's went with h3), one gone */
	CU_ASSERT_EQUAL(CALL(CONN_A, C_FindObjectsFinal, NULL, PUTU(h)), CKR_OK);
	t_teardown();
}

static const struct test_case cases[] = {
        {"malformed bodies: CKR_ARGUMENTS_BAD, worker goes on", test_malformed_bodies},
        {"unsupported calls", test_unsupported_calls},
        {"broken frame header: PART_ERR_IPC", test_broken_header},
        {"part_worker_open refusals", test_open_refusals},
        {"crypto threads: calls after one handed over see it done", test_threads_order},
        {"crypto threads: an RSA key pair is made on one", test_threads_keygen},
        {NULL, NULL},
};

void
test_register(void)
{
	test_suite_add("hsm-partitions/worker", NULL, NULL, cases);
}
