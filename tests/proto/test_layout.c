/* tests/proto/test_layout.c — proto_layout_skim (proto/layout.c) over every call's request
 * and reply layout. With PROTO_SEED_DIR set it also writes the fuzz seeds of
 * tests/fuzz/corpus/proto_frame/ (valid frames of every kind). */
#include "tests/proto/proto_test.h"

#include <stdio.h>
#include <stdlib.h>

static CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
static CK_BBOOL yes = CK_TRUE;
static CK_BYTE iv[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
static CK_BYTE outbuf[256];
static CK_ULONG ulbuf[16];

/* One sample value for a layout letter. */
static int
put_sample(struct proto_buf *b, char letter, unsigned seed)
{
	CK_ATTRIBUTE tmpl[] = {
	        {CKA_CLASS, &cls, sizeof(cls)}, {CKA_TOKEN, &yes, 1}, {CKA_LABEL, "k1", 2}};
	CK_ATTRIBUTE query[] = {{CKA_LABEL, NULL, 0}, {CKA_CLASS, &cls, sizeof(cls)}};
	CK_ATTRIBUTE reply[] = {{CKA_LABEL, NULL, 2}, {CKA_CLASS, &cls, sizeof(cls)}};
	CK_GCM_PARAMS gcm = {iv, sizeof(iv), 96, NULL, 0, 128};
	CK_MECHANISM mech = {CKM_AES_GCM, &gcm, sizeof(gcm)};
	static const CK_ULONG list[] = {1, 2};
	CK_INFO info;
	CK_SLOT_INFO slot;
	CK_TOKEN_INFO token;
	CK_SESSION_INFO sess;
	CK_MECHANISM_INFO minfo;

	memset(&info, 0x20, sizeof(info));
	memset(&slot, 0x20, sizeof(slot));
	memset(&token, 0x20, sizeof(token));
	memset(&sess, 0, sizeof(sess));
	memset(&minfo, 0, sizeof(minfo));
	switch (letter) {
	case 'u':
		return proto_put_ulong(b, proto_session_make(1, seed + 1));
	case 'b':
		return proto_put_u8(b, CK_TRUE);
	case 'y':
		return proto_put_inbytes(b, (const CK_BYTE *)"payload", 7);
	case 'o':
		return proto_put_outbuf_req(b, outbuf, sizeof(outbuf));
	case 'l':
		return proto_put_ulongs_req(b, ulbuf, 16);
	case 'a':
		return proto_put_template(b, tmpl, 3);
	case 'A':
		return proto_put_attrquery(b, query, 2);
	case 'M':
		return proto_put_mechanism(b, &mech);
	case 'O':
		return proto_put_outbuf_reply(b, (const CK_BYTE *)"signature", 9);
	case 'Q':
		return proto_put_attrreply(b, reply, 2);
	case 'L':
		return proto_put_ulongs_reply(b, list, 2);
	case 'I':
		return proto_put_info(b, &info);
	case 'S':
		return proto_put_slot_info(b, &slot);
	case 'T':
		return proto_put_token_info(b, &token);
	case 'N':
		return proto_put_session_info(b, &sess);
	case 'm':
		return proto_put_mech_info(b, &minfo);
	default:
		return PROTO_ERR_BAD_VALUE;
	}
}

static int
put_layout(struct proto_buf *b, const char *layout)
{
	unsigned i;
	int r;

	for (i = 0; layout[i] != '\0'; i++) {
		if ((r = put_sample(b, layout[i], i)) != 0) {
			return r;
		}
	}
	return 0;
}

static int
dec_layout(struct proto_cur *c, struct proto_arena *a, void *ctx)
{
	return proto_layout_skim(c, ctx, a);
}

static void
test_skim_every_layout(void)
{
	struct proto_buf b;
	unsigned i;
	int pass;

	for (i = 1; i < PROTO_CALL_COUNT; i++) {
		for (pass = 0; pass < 2; pass++) {
			const char *layout = pass == 0 ? proto_calls[i].req : proto_calls[i].resp;

			proto_buf_init(&b);
			CU_ASSERT_EQUAL_FATAL(put_layout(&b, layout), 0);
			pt_truncations(b.data, b.len, dec_layout, (void *)layout);
			proto_buf_free(&b);
		}
	}
}

static void
test_skim_flips(void)
{
	static const unsigned calls[] = {PROTO_CALL_C_GetAttributeValue,
	                                 PROTO_CALL_C_GenerateKeyPair, PROTO_CALL_C_UnwrapKey,
	                                 PROTO_CALL_C_GetTokenInfo};
	struct proto_buf b;
	size_t i;

	for (i = 0; i < sizeof(calls) / sizeof(calls[0]); i++) {
		const struct proto_call_info *ci = proto_call_get(calls[i]);

		proto_buf_init(&b);
		CU_ASSERT_EQUAL_FATAL(put_layout(&b, ci->req), 0);
		pt_bitflips(b.data, b.len, dec_layout, (void *)ci->req);
		proto_buf_reset(&b);
		CU_ASSERT_EQUAL_FATAL(put_layout(&b, ci->resp), 0);
		pt_bitflips(b.data, b.len, dec_layout, (void *)ci->resp);
		proto_buf_free(&b);
	}
}

static void
test_skim_refusals(void)
{
	struct proto_arena *a = proto_arena_new();
	static const uint8_t d[] = {0, 0, 0, 0, 0, 0, 0, 1};
	struct proto_cur c;

	proto_cur_init(&c, d, sizeof(d));
	CU_ASSERT_EQUAL(proto_layout_skim(&c, "z", a), PROTO_ERR_BAD_VALUE);
	CU_ASSERT_EQUAL(proto_layout_skim(&c, NULL, a), PROTO_ERR_BAD_VALUE);
	CU_ASSERT_EQUAL(proto_layout_skim(&c, "u", NULL), PROTO_ERR_BAD_VALUE);
	/* a failure part-way leaves the cursor at the start */
	CU_ASSERT_EQUAL(proto_layout_skim(&c, "uu", a), PROTO_ERR_TRUNCATED);
	CU_ASSERT_EQUAL(c.len, sizeof(d));
	CU_ASSERT_EQUAL(proto_layout_skim(&c, "u", a), 0);
	CU_ASSERT_EQUAL(proto_cur_end(&c), 0);
	proto_arena_free(a);
}

/* ---- fuzz seeds ---------------------------------------------------------------------- */

static void
seed_write(const char *dir, const char *name, const struct proto_buf *b)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	CU_ASSERT_EQUAL(test_file_write(path, b->data, b->len), 0);
}

static void
seed_request(const char *dir, unsigned call, uint32_t req_id)
{
	const struct proto_call_info *ci = proto_call_get(call);
	struct proto_buf b;
	char name[96];

	proto_buf_init(&b);
	CU_ASSERT_EQUAL_FATAL(proto_frame_begin(&b, PROTO_MSG_REQUEST, (uint16_t)call, 0, req_id),
	                      0);
	CU_ASSERT_EQUAL_FATAL(put_layout(&b, ci->req), 0);
	CU_ASSERT_EQUAL_FATAL(proto_frame_finish(&b), 0);
	snprintf(name, sizeof(name), "req_%s", ci->name);
	seed_write(dir, name, &b);
	proto_buf_reset(&b);
	CU_ASSERT_EQUAL_FATAL(proto_frame_begin(&b, PROTO_MSG_REPLY, (uint16_t)call, 0, req_id), 0);
	CU_ASSERT_EQUAL_FATAL(proto_put_ulong(&b, CKR_OK), 0);
	CU_ASSERT_EQUAL_FATAL(put_layout(&b, ci->resp), 0);
	CU_ASSERT_EQUAL_FATAL(proto_frame_finish(&b), 0);
	snprintf(name, sizeof(name), "reply_%s", ci->name);
	seed_write(dir, name, &b);
	proto_buf_free(&b);
}

static void
test_write_seeds(void)
{
	const char *dir = getenv("PROTO_SEED_DIR");
	static const unsigned calls[] = {PROTO_CALL_C_GetSlotList,
	                                 PROTO_CALL_C_GetTokenInfo,
	                                 PROTO_CALL_C_OpenSession,
	                                 PROTO_CALL_C_Login,
	                                 PROTO_CALL_C_CreateObject,
	                                 PROTO_CALL_C_GetAttributeValue,
	                                 PROTO_CALL_C_FindObjects,
	                                 PROTO_CALL_C_SignInit,
	                                 PROTO_CALL_C_Sign,
	                                 PROTO_CALL_C_GenerateKeyPair,
	                                 PROTO_CALL_C_UnwrapKey,
	                                 PROTO_CALL_C_DeriveKey,
	                                 PROTO_CALL_C_GetMechanismInfo,
	                                 PROTO_CALL_C_GetSessionInfo};
	struct proto_hello h;
	struct proto_welcome w;
	struct proto_ctx x;
	struct proto_buf b, inner;
	size_t i;

	if (dir == NULL) {
		return;
	}
	for (i = 0; i < sizeof(calls) / sizeof(calls[0]); i++) {
		seed_request(dir, calls[i], (uint32_t)i + 1);
	}
	memset(&h, 0, sizeof(h));
	h.min_version = h.max_version = PROTO_VERSION;
	h.cred = PROTO_CRED_APIKEY;
	strcpy(h.client_name, "libhsmgate-pkcs11");
	strcpy(h.client_version, "0.1.0");
	strcpy(h.api_key, "hg_test_key");
	proto_buf_init(&b);
	CU_ASSERT_EQUAL(proto_frame_begin(&b, PROTO_MSG_HELLO, 0, 0, 0), 0);
	CU_ASSERT_EQUAL(proto_hello_put(&b, &h), 0);
	CU_ASSERT_EQUAL(proto_frame_finish(&b), 0);
	seed_write(dir, "hello", &b);

	memset(&w, 0, sizeof(w));
	w.version = PROTO_VERSION;
	strcpy(w.gateway_id, "gw-1");
	strcpy(w.principal, "tenant/acme/service/app");
	w.max_frame = PROTO_MAX_FRAME_DEFAULT;
	w.max_inflight = 64;
	w.conn_id = 77;
	proto_buf_reset(&b);
	CU_ASSERT_EQUAL(proto_frame_begin(&b, PROTO_MSG_WELCOME, 0, 0, 0), 0);
	CU_ASSERT_EQUAL(proto_welcome_put(&b, &w), 0);
	CU_ASSERT_EQUAL(proto_frame_finish(&b), 0);
	seed_write(dir, "welcome", &b);

	proto_buf_reset(&b);
	CU_ASSERT_EQUAL(proto_frame_begin(&b, PROTO_MSG_ERROR, 0, 0, 0), 0);
	CU_ASSERT_EQUAL(proto_gwerror_put(&b, PROTO_GWERR_TOO_LARGE, "frame too large"), 0);
	CU_ASSERT_EQUAL(proto_frame_finish(&b), 0);
	seed_write(dir, "error", &b);

	proto_buf_reset(&b);
	CU_ASSERT_EQUAL(proto_frame_begin(&b, PROTO_MSG_PING, 0, 0, 9), 0);
	CU_ASSERT_EQUAL(proto_frame_finish(&b), 0);
	seed_write(dir, "ping", &b);

	/* reply with an error CK_RV: no fields */
	proto_buf_reset(&b);
	CU_ASSERT_EQUAL(proto_frame_begin(&b, PROTO_MSG_REPLY, PROTO_CALL_C_Sign, 0, 3), 0);
	CU_ASSERT_EQUAL(proto_put_ulong(&b, CKR_ACTION_PROHIBITED), 0);
	CU_ASSERT_EQUAL(proto_frame_finish(&b), 0);
	seed_write(dir, "reply_denied", &b);

	/* IPC: a request with its caller context around a client frame */
	memset(&x, 0, sizeof(x));
	x.cred = PROTO_CRED_CERT;
	strcpy(x.principal, "tenant/acme/user/alice");
	strcpy(x.tenant, "acme");
	strcpy(x.source, "127.0.0.1:5555");
	x.ngroups = 1;
	strcpy(x.groups[0], "ops");
	proto_buf_init(&inner);
	CU_ASSERT_EQUAL(proto_frame_begin(&inner, PROTO_MSG_REQUEST, PROTO_CALL_C_SignInit, 0, 5),
	                0);
	CU_ASSERT_EQUAL(put_layout(&inner, proto_calls[PROTO_CALL_C_SignInit].req), 0);
	CU_ASSERT_EQUAL(proto_frame_finish(&inner), 0);
	proto_buf_reset(&b);
	CU_ASSERT_EQUAL(proto_ipc_begin(&b, PROTO_IPC_REQUEST, 42), 0);
	CU_ASSERT_EQUAL(proto_ctx_put(&b, &x), 0);
	CU_ASSERT_EQUAL(proto_put_raw(&b, inner.data, inner.len), 0);
	CU_ASSERT_EQUAL(proto_ipc_finish(&b), 0);
	seed_write(dir, "ipc_request", &b);
	proto_buf_reset(&b);
	CU_ASSERT_EQUAL(proto_ipc_begin(&b, PROTO_IPC_CONN_CLOSED, 42), 0);
	CU_ASSERT_EQUAL(proto_ipc_finish(&b), 0);
	seed_write(dir, "ipc_closed", &b);
	proto_buf_free(&inner);
	proto_buf_free(&b);
}

static const struct test_case cases[] = {
        {"skim every call's layouts, truncated at every byte", test_skim_every_layout},
        {"skim bit flips", test_skim_flips},
        {"refuse: skim with a bad layout or short input", test_skim_refusals},
        {"fuzz seeds (when PROTO_SEED_DIR is set)", test_write_seeds},
        {NULL, NULL},
};

void
test_register(void)
{
	test_suite_add("proto/layout", NULL, NULL, cases);
}
