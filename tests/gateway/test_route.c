/* tests/gateway/test_route.c — gateway/route.c: framing step, routing decision, the
 * gateway's own answers. */
#include "gateway/gw_int.h"
#include "tests/lib/test.h"

#include <string.h>

static const struct gw_part parts[] = {
        {"a2", "acme", 2},
        {"g1", "globex", 3},
        {"a1", "acme", 1},
};
#define NPARTS 3u

/* A request frame for `call` with body[len] into b. */
static void
mkreq(struct proto_buf *b, uint16_t call, uint32_t req, const void *body, size_t len)
{
	proto_buf_reset(b);
	CU_ASSERT_FATAL(proto_frame_begin(b, PROTO_MSG_REQUEST, call, 0, req) == 0);
	if (len > 0) {
		CU_ASSERT_FATAL(proto_put_raw(b, body, len) == 0);
	}
	CU_ASSERT_FATAL(proto_frame_finish(b) == 0);
}

static void
decide(uint16_t call, uint64_t first, const char *tenant, struct gw_route *rt)
{
	struct proto_buf b;
	struct proto_hdr h;
	uint8_t body[8];
	int i;

	for (i = 0; i < 8; i++) {
		body[i] = (uint8_t)(first >> (56 - 8 * i));
	}
	proto_buf_init(&b);
	mkreq(&b, call, 9, body, sizeof(body));
	CU_ASSERT_FATAL(proto_hdr_decode(b.data, b.len, 0, &h) == 0);
	gw_route_decide(parts, NPARTS, tenant, &h, b.data + PROTO_HDR_BYTES, h.body_len, rt);
	proto_buf_free(&b);
}

static void
test_frame_need(void)
{
	struct proto_buf b;
	struct proto_hdr h;
	size_t need = 0, i;

	proto_buf_init(&b);
	mkreq(&b, PROTO_CALL_C_GetSlotInfo, 7, "\0\0\0\0\0\0\0\1", 8);
	/* every prefix shorter than a header asks for the header */
	for (i = 0; i < PROTO_HDR_BYTES; i++) {
		CU_ASSERT(gw_frame_need(b.data, i, 1 << 20, &h, &need) == 0);
		CU_ASSERT(need == PROTO_HDR_BYTES);
	}
	CU_ASSERT(gw_frame_need(b.data, PROTO_HDR_BYTES, 1 << 20, &h, &need) == 0);
	CU_ASSERT(need == b.len);
	CU_ASSERT(h.req_id == 7 && h.call == PROTO_CALL_C_GetSlotInfo && h.body_len == 8);
	proto_buf_free(&b);
}

static void
test_frame_oversize_from_header(void)
{
	uint8_t hdr[PROTO_HDR_BYTES] = {0x04, 0, 0, 0, 0x48, 0x47, 1, PROTO_MSG_REQUEST,
	                                0,    5, 0, 0, 0,    0,    0, 7};
	struct proto_hdr h;
	size_t need = 1;
	int r;

	/* 64 MiB announced, only the header present: refused without the body */
	r = gw_frame_need(hdr, sizeof(hdr), 1 << 20, &h, &need);
	CU_ASSERT(r == PROTO_ERR_TOO_LARGE);
	CU_ASSERT(gw_frame_gwerr(r) == PROTO_GWERR_TOO_LARGE);
}

static void
test_frame_bad_magic(void)
{
	uint8_t hdr[PROTO_HDR_BYTES] = {0, 0, 0, 12, 0x48, 0x48, 1, PROTO_MSG_REQUEST,
	                                0, 5, 0, 0,  0,    0,    0, 7};
	struct proto_hdr h;
	size_t need;
	int r;

	r = gw_frame_need(hdr, sizeof(hdr), 1 << 20, &h, &need);
	CU_ASSERT(r == PROTO_ERR_BAD_MAGIC);
	CU_ASSERT(gw_frame_gwerr(r) == PROTO_GWERR_MALFORMED);
	hdr[5] = 0x47;
	hdr[6] = 9; /* a REQUEST of another version */
	r = gw_frame_need(hdr, sizeof(hdr), 1 << 20, &h, &need);
	CU_ASSERT(gw_frame_gwerr(r) == PROTO_GWERR_VERSION);
}

static void
test_route_own_slot(void)
{
	struct gw_route rt;

	decide(PROTO_CALL_C_GetSlotInfo, 1, "acme", &rt);
	CU_ASSERT(rt.kind == GW_ROUTE_FORWARD);
	CU_ASSERT(rt.part == 2); /* parts[2] is a1, slot 1 */
	decide(PROTO_CALL_C_GetTokenInfo, 3, "globex", &rt);
	CU_ASSERT(rt.kind == GW_ROUTE_FORWARD && rt.part == 1);
}

static void
test_route_other_tenants_slot(void)
{
	struct gw_route rt;

	decide(PROTO_CALL_C_GetSlotInfo, 3, "acme", &rt);
	CU_ASSERT(rt.kind == GW_ROUTE_REPLY && rt.rv == CKR_SLOT_ID_INVALID);
	/* a slot nobody has answers the same: no tenant learns what exists */
	decide(PROTO_CALL_C_GetSlotInfo, 99, "acme", &rt);
	CU_ASSERT(rt.kind == GW_ROUTE_REPLY && rt.rv == CKR_SLOT_ID_INVALID);
	decide(PROTO_CALL_C_GetSlotInfo, (1ull << 32) | 1, "acme", &rt);
	CU_ASSERT(rt.kind == GW_ROUTE_REPLY && rt.rv == CKR_SLOT_ID_INVALID);
}

static void
test_route_session(void)
{
	struct gw_route rt;

	decide(PROTO_CALL_C_CloseSession, proto_session_make(2, 5), "acme", &rt);
	CU_ASSERT(rt.kind == GW_ROUTE_FORWARD && rt.part == 0);
	decide(PROTO_CALL_C_CloseSession, proto_session_make(3, 5), "acme", &rt);
	CU_ASSERT(rt.kind == GW_ROUTE_REPLY && rt.rv == CKR_SESSION_HANDLE_INVALID);
	decide(PROTO_CALL_C_CloseSession, 5, "acme", &rt); /* slot 0 */
	CU_ASSERT(rt.kind == GW_ROUTE_REPLY && rt.rv == CKR_SESSION_HANDLE_INVALID);
	decide(PROTO_CALL_C_CloseSession, proto_session_make(1, 0), "acme", &rt); /* n == 0 */
	CU_ASSERT(rt.kind == GW_ROUTE_REPLY && rt.rv == CKR_SESSION_HANDLE_INVALID);
	/* bits above the slot byte would alias slot 1: refused */
	decide(PROTO_CALL_C_CloseSession, (1ull << 40) | proto_session_make(1, 1), "acme", &rt);
	CU_ASSERT(rt.kind == GW_ROUTE_REPLY && rt.rv == CKR_SESSION_HANDLE_INVALID);
}

static void
test_route_unknown_and_local(void)
{
	struct gw_route rt;

	decide(PROTO_CALL_COUNT, 1, "acme", &rt);
	CU_ASSERT(rt.kind == GW_ROUTE_ERROR && rt.gwerr == PROTO_GWERR_MALFORMED &&
	          rt.call == NULL);
	decide(0, 1, "acme", &rt);
	CU_ASSERT(rt.kind == GW_ROUTE_ERROR);
	decide(PROTO_CALL_C_GetInfo, 1, "acme", &rt);
	CU_ASSERT(rt.kind == GW_ROUTE_REPLY && rt.rv == CKR_FUNCTION_NOT_SUPPORTED);
	decide(PROTO_CALL_C_GetSlotList, 1, "acme", &rt);
	CU_ASSERT(rt.kind == GW_ROUTE_ANSWER);
}

static void
test_route_short_body(void)
{
	struct proto_buf b;
	struct proto_hdr h;
	struct gw_route rt;
	size_t len;

	proto_buf_init(&b);
	for (len = 0; len < 8; len++) {
		mkreq(&b, PROTO_CALL_C_GetSlotInfo, 1, "\0\0\0\0\0\0\0\1", len);
		CU_ASSERT_FATAL(proto_hdr_decode(b.data, b.len, 0, &h) == 0);
		gw_route_decide(parts, NPARTS, "acme", &h, b.data + PROTO_HDR_BYTES, h.body_len,
		                &rt);
		CU_ASSERT(rt.kind == GW_ROUTE_ERROR && rt.gwerr == PROTO_GWERR_MALFORMED);
	}
	proto_buf_free(&b);
}

static void
test_route_layout_checked(void)
{
	static const uint8_t trailing[9] = {0, 0, 0, 0, 0, 0, 0, 1, 0};
	/* C_GenerateRandom(session, 'o' output buffer): has_buffer 1 without its capacity */
	static const uint8_t partial[9] = {0, 0, 0, 0, 1, 0, 0, 1, 1};
	static const uint8_t good[17] = {0, 0, 0, 0, 1, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 32};
	struct proto_buf b;
	struct proto_hdr h;
	struct gw_route rt;

	proto_buf_init(&b);
	mkreq(&b, PROTO_CALL_C_GetSlotInfo, 1, trailing, sizeof(trailing));
	CU_ASSERT_FATAL(proto_hdr_decode(b.data, b.len, 0, &h) == 0);
	gw_route_decide(parts, NPARTS, "acme", &h, b.data + PROTO_HDR_BYTES, h.body_len, &rt);
	CU_ASSERT(rt.kind == GW_ROUTE_ERROR && rt.gwerr == PROTO_GWERR_MALFORMED);
	mkreq(&b, PROTO_CALL_C_GenerateRandom, 1, partial, sizeof(partial));
	CU_ASSERT_FATAL(proto_hdr_decode(b.data, b.len, 0, &h) == 0);
	gw_route_decide(parts, NPARTS, "acme", &h, b.data + PROTO_HDR_BYTES, h.body_len, &rt);
	CU_ASSERT(rt.kind == GW_ROUTE_ERROR && rt.gwerr == PROTO_GWERR_MALFORMED);
	mkreq(&b, PROTO_CALL_C_GenerateRandom, 1, good, sizeof(good));
	CU_ASSERT_FATAL(proto_hdr_decode(b.data, b.len, 0, &h) == 0);
	gw_route_decide(parts, NPARTS, "acme", &h, b.data + PROTO_HDR_BYTES, h.body_len, &rt);
	CU_ASSERT(rt.kind == GW_ROUTE_FORWARD && rt.part == 2);
	proto_buf_free(&b);
}

static void
test_tenant_slots(void)
{
	CK_ULONG out[4] = {0};

	CU_ASSERT(gw_tenant_slots(parts, NPARTS, "acme", out, 4) == 2);
	CU_ASSERT(out[0] == 1 && out[1] == 2); /* in slot order */
	CU_ASSERT(gw_tenant_slots(parts, NPARTS, "globex", out, 4) == 1 && out[0] == 3);
	CU_ASSERT(gw_tenant_slots(parts, NPARTS, "nobody", out, 4) == 0);
	CU_ASSERT(gw_tenant_slots(parts, NPARTS, "acme", out, 1) == 2 && out[0] == 1);
}

/* Runs C_GetSlotList for acme with the given 'l' request and decodes the reply. */
static void
slot_list(int has_buffer, CK_ULONG cap, CK_RV *rv, CK_ULONG *list, CK_ULONG *count)
{
	struct proto_buf req, rep;
	struct proto_hdr h, rh;
	struct proto_cur c;
	CK_ULONG v;

	proto_buf_init(&req);
	proto_buf_init(&rep);
	CU_ASSERT_FATAL(
	        proto_frame_begin(&req, PROTO_MSG_REQUEST, PROTO_CALL_C_GetSlotList, 0, 4) == 0);
	CU_ASSERT_FATAL(proto_put_u8(&req, 1) == 0);
	CU_ASSERT_FATAL(proto_put_ulongs_req(&req, has_buffer ? list : NULL, cap) == 0);
	CU_ASSERT_FATAL(proto_frame_finish(&req) == 0);
	CU_ASSERT_FATAL(proto_hdr_decode(req.data, req.len, 0, &h) == 0);
	CU_ASSERT_FATAL(gw_route_answer(parts, NPARTS, "acme", &h, req.data + PROTO_HDR_BYTES,
	                                h.body_len, &rep) == 0);
	CU_ASSERT_FATAL(proto_hdr_decode(rep.data, rep.len, 0, &rh) == 0);
	CU_ASSERT(rh.type == PROTO_MSG_REPLY && rh.req_id == 4 &&
	          rh.call == PROTO_CALL_C_GetSlotList);
	proto_cur_init(&c, rep.data + PROTO_HDR_BYTES, rh.body_len);
	CU_ASSERT_FATAL(proto_get_ulong(&c, &v) == 0);
	*rv = v;
	*count = cap;
	CU_ASSERT(proto_get_ulongs_reply(&c, has_buffer ? list : NULL, count) == 0);
	CU_ASSERT(proto_cur_end(&c) == 0);
	proto_buf_free(&req);
	proto_buf_free(&rep);
}

static void
test_answer_slot_list(void)
{
	CK_ULONG list[4] = {0}, count;
	CK_RV rv;

	slot_list(0, 0, &rv, list, &count); /* size query */
	CU_ASSERT(rv == CKR_OK && count == 2);
	slot_list(1, 4, &rv, list, &count);
	CU_ASSERT(rv == CKR_OK && count == 2 && list[0] == 1 && list[1] == 2);
	slot_list(1, 1, &rv, list, &count);
	CU_ASSERT(rv == CKR_BUFFER_TOO_SMALL && count == 2);
}

static void
test_answer_wait_slot(void)
{
	struct proto_buf req, rep;
	struct proto_hdr h;
	CK_ULONG flags[] = {CKF_DONT_BLOCK, 0};
	CK_RV want[] = {CKR_NO_EVENT, CKR_FUNCTION_NOT_SUPPORTED};
	struct proto_cur c;
	CK_ULONG rv;
	int i;

	proto_buf_init(&req);
	proto_buf_init(&rep);
	for (i = 0; i < 2; i++) {
		proto_buf_reset(&req);
		proto_buf_reset(&rep);
		CU_ASSERT_FATAL(proto_frame_begin(&req, PROTO_MSG_REQUEST,
		                                  PROTO_CALL_C_WaitForSlotEvent, 0, 1) == 0);
		CU_ASSERT_FATAL(proto_put_ulong(&req, flags[i]) == 0 &&
		                proto_frame_finish(&req) == 0);
		CU_ASSERT_FATAL(proto_hdr_decode(req.data, req.len, 0, &h) == 0);
		CU_ASSERT_FATAL(gw_route_answer(parts, NPARTS, "acme", &h,
		                                req.data + PROTO_HDR_BYTES, h.body_len, &rep) == 0);
		proto_cur_init(&c, rep.data + PROTO_HDR_BYTES, rep.len - PROTO_HDR_BYTES);
		CU_ASSERT(proto_get_ulong(&c, &rv) == 0 && rv == want[i]);
		CU_ASSERT(proto_cur_end(&c) == 0);
	}
	proto_buf_free(&req);
	proto_buf_free(&rep);
}

static void
test_answer_bad_body(void)
{
	struct proto_buf req, rep;
	struct proto_hdr h;
	struct proto_cur c;
	CK_ULONG rv;

	proto_buf_init(&req);
	proto_buf_init(&rep);
	mkreq(&req, PROTO_CALL_C_GetSlotList, 3, "\1\1\0", 3); /* truncated capacity */
	CU_ASSERT_FATAL(proto_hdr_decode(req.data, req.len, 0, &h) == 0);
	CU_ASSERT_FATAL(gw_route_answer(parts, NPARTS, "acme", &h, req.data + PROTO_HDR_BYTES,
	                                h.body_len, &rep) == 0);
	proto_cur_init(&c, rep.data + PROTO_HDR_BYTES, rep.len - PROTO_HDR_BYTES);
	CU_ASSERT(proto_get_ulong(&c, &rv) == 0 && rv == CKR_ARGUMENTS_BAD);
	proto_buf_free(&req);
	proto_buf_free(&rep);
}

static void
test_reply_error_frame(void)
{
	struct proto_buf b;
	struct proto_hdr h;
	struct proto_cur c;
	uint32_t code;
	char msg[64];

	proto_buf_init(&b);
	CU_ASSERT_FATAL(gw_reply_error(&b, 0, PROTO_GWERR_AUTH, "unknown API key") == 0);
	CU_ASSERT_FATAL(proto_hdr_decode(b.data, b.len, 0, &h) == 0);
	CU_ASSERT(h.type == PROTO_MSG_ERROR && h.req_id == 0);
	proto_cur_init(&c, b.data + PROTO_HDR_BYTES, h.body_len);
	CU_ASSERT(proto_gwerror_get(&c, &code, msg, sizeof(msg)) == 0);
	CU_ASSERT(code == PROTO_GWERR_AUTH && strcmp(msg, "unknown API key") == 0);
	proto_buf_free(&b);
}

void
test_register(void)
{
	static const struct test_case cases[] = {
	        {"frame_need", test_frame_need},
	        {"frame_oversize_from_header", test_frame_oversize_from_header},
	        {"frame_bad_magic", test_frame_bad_magic},
	        {"route_own_slot", test_route_own_slot},
	        {"route_other_tenants_slot", test_route_other_tenants_slot},
	        {"route_session", test_route_session},
	        {"route_unknown_and_local", test_route_unknown_and_local},
	        {"route_short_body", test_route_short_body},
	        {"route_layout_checked", test_route_layout_checked},
	        {"tenant_slots", test_tenant_slots},
	        {"answer_slot_list", test_answer_slot_list},
	        {"answer_wait_slot", test_answer_wait_slot},
	        {"answer_bad_body", test_answer_bad_body},
	        {"reply_error_frame", test_reply_error_frame},
	        {NULL, NULL},
	};

	test_suite_add("gateway/route", NULL, NULL, cases);
}
