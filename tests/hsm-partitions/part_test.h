/*
 * tests/hsm-partitions/part_test.h — drives the worker's dispatch core with frames built
 * by proto/, against a fresh store in a temporary directory. Each test file includes it
 * once (its helpers are static).
 */
#ifndef HSMGATE_TESTS_PART_TEST_H
#define HSMGATE_TESTS_PART_TEST_H

#include "hsm-partitions/part_int.h"
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
/* Crypto threads of the worker (part_worker_threads); a suite's init sets it, and t_call
 * then takes the reply of a call handed over from part_worker_flush (counted in tlater). */
static unsigned tthreads;
static unsigned tlater;
static struct proto_ctx tctx = {.cred = PROTO_CRED_CERT,
                                .principal = "tenant/demo/user/alice",
                                .tenant = "demo",
                                .source = "127.0.0.1:1"};

static int
t_open_worker(void)
{
	struct part_worker_opts o = {0};
	int r;

	o.partition = "demo";
	o.tenant = "demo"; /* key-level policy: crn:hsmgate:demo:partition:demo */
	o.store_dir = tstore;
	o.token_label = "demo-token";
	o.slot = SLOT;
	o.pin_iter = 1000; /* the production count is tested in test_pin.c */
	if ((r = part_worker_open(&o, &W)) != 0) {
		return r;
	}
	return tthreads > 1 ? part_worker_threads(W, tthreads) : 0;
}

/* Suite init/cleanup that run a file's cases again with three crypto threads. */
static int
t_threads_on(void)
{
	tthreads = 3;
	return 0;
}

static int
t_threads_off(void)
{
	tthreads = 0;
	return 0;
}

/* The reply of the call handed over: the one PROTO_IPC_REPLY message the flush returns. */
static int
t_later_reply(uint64_t conn, struct proto_buf *reply)
{
	struct proto_buf out;
	uint64_t c;
	uint32_t len;
	uint8_t kind;
	int r = -1;

	proto_buf_init(&out);
	if (part_worker_flush(W, &out, 1) == 0 &&
	    proto_ipc_hdr_decode(out.data, out.len, out.len, &kind, &c, &len) == 0 &&
	    kind == PROTO_IPC_REPLY && c == conn && PROTO_IPC_HDR_BYTES + (size_t)len == out.len &&
	    proto_put_raw(reply, out.data + PROTO_IPC_HDR_BYTES, len) == 0) {
		tlater++;
		r = 0;
	}
	proto_buf_free(&out);
	return r;
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
	switch (part_worker_handle(W, conn, &tctx, req.data, req.len, &treply)) {
	case 0:
		break;
	case PART_LATER:
		CU_ASSERT_FATAL(treply.len == 0 && t_later_reply(conn, &treply) == 0);
		break;
	default:
		CU_FAIL_FATAL("part_worker_handle failed");
	}
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

/* ---- keys and operations (test_keys.c, test_crypt.c, test_object.c) ------------------- */

static CK_BBOOL t_yes = CK_TRUE, t_no = CK_FALSE;
static CK_OBJECT_CLASS t_secret = CKO_SECRET_KEY, t_pubc = CKO_PUBLIC_KEY,
                       t_privc = CKO_PRIVATE_KEY;
static CK_KEY_TYPE t_aes = CKK_AES, t_generic = CKK_GENERIC_SECRET, t_eck = CKK_EC,
                   t_rsak = CKK_RSA;
/* DER of the OID of P-256 (CKA_EC_PARAMS) */
static const CK_BYTE t_p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};

#define ATTR(t, v)                                                                                 \
	{                                                                                          \
		t, (void *)&(v), sizeof(v)                                                         \
	}

static CK_RV
ck_handle_reply(CK_RV rv, struct proto_cur *c, CK_OBJECT_HANDLE *obj)
{
	*obj = CK_INVALID_HANDLE;
	if (rv == CKR_OK) {
		CU_ASSERT(proto_get_ulong(c, obj) == 0);
	}
	return rv;
}

static CK_RV
ck_create(uint64_t conn, CK_SESSION_HANDLE h, CK_ATTRIBUTE *t, CK_ULONG n, CK_OBJECT_HANDLE *obj)
{
	struct proto_cur c;

	return ck_handle_reply(CALL(conn, C_CreateObject, &c, (PUTU(h), PUTT(t, n))), &c, obj);
}

static CK_RV
ck_copy(uint64_t conn, CK_SESSION_HANDLE h, CK_OBJECT_HANDLE src, CK_ATTRIBUTE *t, CK_ULONG n,
        CK_OBJECT_HANDLE *obj)
{
	struct proto_cur c;

	return ck_handle_reply(CALL(conn, C_CopyObject, &c, (PUTU(h), PUTU(src), PUTT(t, n))), &c,
	                       obj);
}

static CK_RV
ck_destroy(uint64_t conn, CK_SESSION_HANDLE h, CK_OBJECT_HANDLE obj)
{
	return CALL(conn, C_DestroyObject, NULL, (PUTU(h), PUTU(obj)));
}

static CK_RV
ck_get(uint64_t conn, CK_SESSION_HANDLE h, CK_OBJECT_HANDLE obj, CK_ATTRIBUTE *t, CK_ULONG n)
{
	struct proto_cur c;
	CK_RV rv = CALL(conn, C_GetAttributeValue, &c,
	                (PUTU(h), PUTU(obj), (void)!proto_put_attrquery(&b, t, n)));

	if (proto_reply_has_fields(PROTO_CALL_C_GetAttributeValue, rv)) {
		CU_ASSERT(proto_get_attrreply(&c, t, n) == 0);
	}
	return rv;
}

static CK_RV
ck_set(uint64_t conn, CK_SESSION_HANDLE h, CK_OBJECT_HANDLE obj, CK_ATTRIBUTE *t, CK_ULONG n)
{
	return CALL(conn, C_SetAttributeValue, NULL, (PUTU(h), PUTU(obj), PUTT(t, n)));
}

/* A CK_BBOOL attribute of an object (-1 when it cannot be read). */
static int
ck_bool(uint64_t conn, CK_SESSION_HANDLE h, CK_OBJECT_HANDLE obj, CK_ATTRIBUTE_TYPE type)
{
	CK_BBOOL v = 0xff;
	CK_ATTRIBUTE a = {type, &v, 1};

	if (ck_get(conn, h, obj, &a, 1) != CKR_OK) {
		return -1;
	}
	return v == CK_TRUE;
}

static CK_ULONG
ck_ulong(uint64_t conn, CK_SESSION_HANDLE h, CK_OBJECT_HANDLE obj, CK_ATTRIBUTE_TYPE type)
{
	CK_ULONG v = 0xdead;
	CK_ATTRIBUTE a = {type, &v, sizeof(v)};

	CU_ASSERT(ck_get(conn, h, obj, &a, 1) == CKR_OK);
	return v;
}

static CK_RV
ck_genkey(uint64_t conn, CK_SESSION_HANDLE h, const CK_MECHANISM *m, CK_ATTRIBUTE *t, CK_ULONG n,
          CK_OBJECT_HANDLE *obj)
{
	struct proto_cur c;

	return ck_handle_reply(CALL(conn, C_GenerateKey, &c,
	                            (PUTU(h), (void)!proto_put_mechanism(&b, m), PUTT(t, n))),
	                       &c, obj);
}

static CK_RV
ck_genpair(uint64_t conn, CK_SESSION_HANDLE h, const CK_MECHANISM *m, CK_ATTRIBUTE *pub,
           CK_ULONG npub, CK_ATTRIBUTE *priv, CK_ULONG npriv, CK_OBJECT_HANDLE *pubh,
           CK_OBJECT_HANDLE *privh)
{
	struct proto_cur c;
	CK_RV rv = CALL(
	        conn, C_GenerateKeyPair, &c,
	        (PUTU(h), (void)!proto_put_mechanism(&b, m), PUTT(pub, npub), PUTT(priv, npriv)));

	*pubh = *privh = CK_INVALID_HANDLE;
	if (rv == CKR_OK) {
		CU_ASSERT(proto_get_ulong(&c, pubh) == 0);
		CU_ASSERT(proto_get_ulong(&c, privh) == 0);
	}
	return rv;
}

/* A session AES-256 key with the given CKA_SENSITIVE / CKA_EXTRACTABLE (value `v`, 32
 * bytes), imported with C_CreateObject. */
static CK_OBJECT_HANDLE
t_aes_key(CK_SESSION_HANDLE h, const CK_BYTE *v, CK_BBOOL sens, CK_BBOOL extr)
{
	CK_ATTRIBUTE t[] = {ATTR(CKA_CLASS, t_secret),   ATTR(CKA_KEY_TYPE, t_aes),
	                    {CKA_VALUE, (void *)v, 32},  {CKA_SENSITIVE, &sens, 1},
	                    {CKA_EXTRACTABLE, &extr, 1}, ATTR(CKA_PRIVATE, t_no)};
	CK_OBJECT_HANDLE o;

	CU_ASSERT_FATAL(ck_create(CONN_A, h, t, 6, &o) == CKR_OK);
	return o;
}

/* A session P-256 key pair. */
static void
t_ec_pair(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE *pub, CK_OBJECT_HANDLE *priv)
{
	CK_MECHANISM m = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
	CK_ATTRIBUTE pt[] = {{CKA_EC_PARAMS, (void *)t_p256, sizeof(t_p256)}};
	CK_ATTRIBUTE vt[] = {ATTR(CKA_DERIVE, t_yes)};

	CU_ASSERT_FATAL(ck_genpair(CONN_A, h, &m, pt, 1, vt, 1, pub, priv) == CKR_OK);
}

/* C_*Init of `call` with mechanism m and key k. */
static CK_RV
ck_init_op(unsigned call, CK_SESSION_HANDLE h, const CK_MECHANISM *m, CK_OBJECT_HANDLE k)
{
	struct proto_buf b;
	CK_RV rv;

	proto_buf_init(&b);
	PUTU(h);
	(void)!proto_put_mechanism(&b, m);
	PUTU(k);
	rv = t_call(CONN_A, call, &b, NULL);
	proto_buf_free(&b);
	return rv;
}

/* A "uyo" → "O" call (C_Encrypt, C_Sign, C_*Update with output ...): in[inlen] and an output
 * buffer of capacity *outlen (out NULL: size query). */
static CK_RV
ck_io(unsigned call, CK_SESSION_HANDLE h, const void *in, CK_ULONG inlen, CK_BYTE *out,
      CK_ULONG *outlen)
{
	struct proto_buf b;
	struct proto_cur c;
	CK_RV rv;

	proto_buf_init(&b);
	PUTU(h);
	PUTY(in, inlen);
	(void)!proto_put_outbuf_req(&b, out, *outlen);
	rv = t_call(CONN_A, call, &b, &c);
	proto_buf_free(&b);
	if (rv == CKR_OK || rv == CKR_BUFFER_TOO_SMALL) {
		CU_ASSERT(proto_get_outbuf_reply(&c, rv == CKR_OK ? out : NULL, outlen) == 0);
	}
	return rv;
}

/* A "uo" → "O" call (C_*Final). */
static CK_RV
ck_fin(unsigned call, CK_SESSION_HANDLE h, CK_BYTE *out, CK_ULONG *outlen)
{
	struct proto_buf b;
	struct proto_cur c;
	CK_RV rv;

	proto_buf_init(&b);
	PUTU(h);
	(void)!proto_put_outbuf_req(&b, out, *outlen);
	rv = t_call(CONN_A, call, &b, &c);
	proto_buf_free(&b);
	if (rv == CKR_OK || rv == CKR_BUFFER_TOO_SMALL) {
		CU_ASSERT(proto_get_outbuf_reply(&c, rv == CKR_OK ? out : NULL, outlen) == 0);
	}
	return rv;
}

/* A "uy" call (C_SignUpdate, C_VerifyUpdate, C_VerifyFinal, C_DigestUpdate). */
static CK_RV
ck_in(unsigned call, CK_SESSION_HANDLE h, const void *in, CK_ULONG inlen)
{
	struct proto_buf b;
	CK_RV rv;

	proto_buf_init(&b);
	PUTU(h);
	PUTY(in, inlen);
	rv = t_call(CONN_A, call, &b, NULL);
	proto_buf_free(&b);
	return rv;
}

static CK_RV
ck_verify(CK_SESSION_HANDLE h, const void *in, CK_ULONG inlen, const CK_BYTE *sig, CK_ULONG siglen)
{
	return CALL(CONN_A, C_Verify, NULL, (PUTU(h), PUTY(in, inlen), PUTY(sig, siglen)));
}

/* A fresh token with a user PIN, a R/W session `*h` logged in as the user. */
static void
t_user_session(CK_SESSION_HANDLE *h)
{
	t_setup();
	t_ready();
	CU_ASSERT_FATAL(ck_open(CONN_A, RW, h) == CKR_OK);
	CU_ASSERT_FATAL(ck_login(CONN_A, *h, CKU_USER, USER_PIN) == CKR_OK);
}

/* t_user_session on a worker with `threads` crypto threads, and an RSA-2048 key pair. */
static void
t_rsa_session(unsigned threads, CK_SESSION_HANDLE *h, CK_OBJECT_HANDLE *pub, CK_OBJECT_HANDLE *priv)
{
	CK_MECHANISM gen = {CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0};
	CK_ULONG bits = 2048;
	CK_ATTRIBUTE pt[] = {ATTR(CKA_MODULUS_BITS, bits)};
	unsigned saved = tthreads;

	tthreads = threads;
	t_user_session(h);
	tthreads = saved;
	CU_ASSERT_FATAL(ck_genpair(CONN_A, *h, &gen, pt, 1, pt, 0, pub, priv) == CKR_OK);
}

/* The body of a C_Sign of "data" on session h with a 256-byte output buffer. */
static void
t_put_sign(struct proto_buf *b, CK_SESSION_HANDLE h)
{
	CU_ASSERT_FATAL(proto_put_ulong(b, h) == 0 &&
	                proto_put_inbytes(b, (const CK_BYTE *)"data", 4) == 0 &&
	                proto_put_outbuf_req(b, (const CK_BYTE *)"", 256) == 0);
}

#endif
