/*
 * gateway/route.c — the routing decision and the gateway's own answers.
 *
 * Pure functions over the running partition set (struct gw_part) and one decoded frame
 * header: no sockets, no state. The routing rule (DESIGN: "a tenant only ever sees its own
 * partitions' slots"): the gateway reads only the first field of a request — the slot id or
 * the session handle, whose top byte names its slot (proto_session_slot) — and forwards the
 * frame unchanged; everything else is decoded by the worker.
 */
#include "gateway/gw_int.h"

#include <stdlib.h>
#include <string.h>

int
gw_frame_need(const uint8_t *p, size_t avail, size_t max_frame, struct proto_hdr *h, size_t *need)
{
	int r;

	memset(h, 0, sizeof(*h));
	if (avail < PROTO_HDR_BYTES) {
		*need = PROTO_HDR_BYTES;
		return 0;
	}
	if ((r = proto_hdr_decode(p, avail, max_frame, h)) != 0) {
		*need = 0;
		return r;
	}
	*need = PROTO_HDR_BYTES + (size_t)h->body_len;
	return 0;
}

uint32_t
gw_frame_gwerr(int proto_err)
{
	switch (proto_err) {
	case PROTO_ERR_TOO_LARGE:
		return PROTO_GWERR_TOO_LARGE;
	case PROTO_ERR_BAD_VERSION:
		return PROTO_GWERR_VERSION;
	default:
		return PROTO_GWERR_MALFORMED;
	}
}

/* The index of the tenant's partition on `slot`, or -1. */
static int
part_of_tenant(const struct gw_part *parts, unsigned n, const char *tenant, uint64_t slot)
{
	unsigned i;

	for (i = 0; i < n; i++) {
		if (parts[i].slot == slot && strcmp(parts[i].tenant, tenant) == 0) {
			return (int)i;
		}
	}
	return -1;
}

static int
body_decodes(const struct proto_call_info *ci, const uint8_t *body, size_t len)
{
	struct proto_arena *a;
	struct proto_cur c;
	int ok;

	if ((a = proto_arena_new()) == NULL) {
		return 0;
	}
	proto_cur_init(&c, body, len);
	ok = proto_layout_skim(&c, ci->req, a) == 0 && proto_cur_end(&c) == 0;
	proto_arena_free(a);
	return ok;
}

static void
route_reply(struct gw_route *out, CK_RV rv, const char *why)
{
	out->kind = GW_ROUTE_REPLY;
	out->rv = rv;
	out->why = why;
}

void
gw_route_decide(const struct gw_part *parts, unsigned n, const char *tenant,
                const struct proto_hdr *h, const uint8_t *body, size_t len, struct gw_route *out)
{
	const struct proto_call_info *ci = proto_call_get(h->call);
	struct proto_cur c;
	uint64_t first = 0;
	int idx;

	memset(out, 0, sizeof(*out));
	out->call = ci;
	if (ci == NULL) {
		out->kind = GW_ROUTE_ERROR;
		out->gwerr = PROTO_GWERR_MALFORMED;
		out->why = "unknown call id";
		return;
	}
	/*
	 * A call the client module answers itself never travels; if one does, the caller gets a
	 * PKCS #11 answer for that request (CKR_FUNCTION_NOT_SUPPORTED) rather than an ERROR:
	 * the frame is well-formed, the gateway just does not serve it.
	 */
	if ((ci->flags & PROTO_CF_LOCAL) != 0) {
		route_reply(out, CKR_FUNCTION_NOT_SUPPORTED,
		            "call is answered by the client module");
		return;
	}
	if ((ci->flags & PROTO_CF_ROUTE_GATEWAY) != 0) {
		out->kind = GW_ROUTE_ANSWER;
		return;
	}
	if ((ci->flags & (PROTO_CF_ROUTE_SLOT | PROTO_CF_ROUTE_SESSION)) == 0) {
		route_reply(out, CKR_FUNCTION_NOT_SUPPORTED, "call has no route");
		return;
	}
	proto_cur_init(&c, body, len);
	if (proto_get_u64(&c, &first) != 0) {
		out->kind = GW_ROUTE_ERROR;
		out->gwerr = PROTO_GWERR_MALFORMED;
		out->why = "request too short for its slot or session field";
		return;
	}
	if ((ci->flags & PROTO_CF_ROUTE_SLOT) != 0) {
		idx = first > 0xffffffffu ? -1 : part_of_tenant(parts, n, tenant, first);
		if (idx < 0) {
			route_reply(out, CKR_SLOT_ID_INVALID, "slot is not one of the tenant's");
			return;
		}
	} else {
		/* proto_session_slot keeps 8 bits: a handle with bits above the slot byte set is
		 * not one a worker issued, so it is refused here rather than aliased. */
		if (first > 0xffffffffu || proto_session_slot((CK_SESSION_HANDLE)first) == 0 ||
		    (first & 0xffffffu) == 0) {
			route_reply(out, CKR_SESSION_HANDLE_INVALID, "not a session handle");
			return;
		}
		idx = part_of_tenant(parts, n, tenant,
		                     proto_session_slot((CK_SESSION_HANDLE)first));
		if (idx < 0) {
			route_reply(out, CKR_SESSION_HANDLE_INVALID,
			            "session is not on one of the tenant's slots");
			return;
		}
	}
	/* The whole request is checked against its layout before it leaves the gateway: a
	 * worker only ever sees frames that decode (defence in depth; it decodes them again). */
	if (!body_decodes(ci, body, len)) {
		out->kind = GW_ROUTE_ERROR;
		out->gwerr = PROTO_GWERR_MALFORMED;
		out->why = "request does not match the layout of its call";
		return;
	}
	out->kind = GW_ROUTE_FORWARD;
	out->part = (unsigned)idx;
}

static int
cmp_ulong(const void *a, const void *b)
{
	CK_ULONG x = *(const CK_ULONG *)a, y = *(const CK_ULONG *)b;

	return x < y ? -1 : x > y ? 1 : 0;
}

size_t
gw_tenant_slots(const struct gw_part *parts, unsigned n, const char *tenant, CK_ULONG *out,
                size_t max)
{
	CK_ULONG all[256];
	size_t count = 0, i;
	unsigned k;

	/* Slots are unique and 1..255 (config/), so 256 entries always suffice. */
	for (k = 0; k < n && count < sizeof(all) / sizeof(all[0]); k++) {
		if (strcmp(parts[k].tenant, tenant) == 0) {
			all[count++] = parts[k].slot;
		}
	}
	qsort(all, count, sizeof(all[0]), cmp_ulong);
	for (i = 0; i < count && i < max; i++) {
		out[i] = all[i];
	}
	return count;
}

int
gw_reply_rv(struct proto_buf *b, uint16_t call, uint32_t req_id, CK_RV rv)
{
	int r;

	if ((r = proto_frame_begin(b, PROTO_MSG_REPLY, call, 0, req_id)) != 0 ||
	    (r = proto_put_ulong(b, rv)) != 0 || (r = proto_frame_finish(b)) != 0) {
		goto out;
	}
	r = 0;
out:
	return r;
}

int
gw_reply_error(struct proto_buf *b, uint32_t req_id, uint32_t code, const char *msg)
{
	int r;

	if ((r = proto_frame_begin(b, PROTO_MSG_ERROR, 0, 0, req_id)) != 0 ||
	    (r = proto_gwerror_put(b, code, msg)) != 0 || (r = proto_frame_finish(b)) != 0) {
		goto out;
	}
	r = 0;
out:
	return r;
}

/* C_GetSlotList(tokenPresent, pSlotList, pulCount): request "bl", reply "L". */
static int
answer_slot_list(const struct gw_part *parts, unsigned n, const char *tenant,
                 const struct proto_hdr *h, const uint8_t *body, size_t len, struct proto_buf *b)
{
	CK_ULONG slots[256], capacity = 0;
	const CK_ULONG *list = NULL;
	CK_RV rv = CKR_OK;
	struct proto_cur c;
	uint8_t token_present;
	size_t count;
	int has_buffer = 0, r;

	proto_cur_init(&c, body, len);
	if (proto_get_u8(&c, &token_present) != 0 ||
	    proto_get_ulongs_req(&c, &has_buffer, &capacity) != 0 || proto_cur_end(&c) != 0) {
		return gw_reply_rv(b, h->call, h->req_id, CKR_ARGUMENTS_BAD);
	}
	/* tokenPresent is not consulted: every partition's token is present (a soft token
	 * always is). A passthrough partition whose vendor token is missing would need the
	 * worker's answer here. */
	count = gw_tenant_slots(parts, n, tenant, slots, sizeof(slots) / sizeof(slots[0]));
	/* PKCS #11 v2.40 §5.5 C_GetSlotList: with a NULL pSlotList only the count is returned;
	 * with a buffer too small, CKR_BUFFER_TOO_SMALL and the count. */
	if (has_buffer && capacity < count) {
		rv = CKR_BUFFER_TOO_SMALL;
	} else if (has_buffer) {
		list = slots;
	}
	if ((r = proto_frame_begin(b, PROTO_MSG_REPLY, h->call, 0, h->req_id)) != 0 ||
	    (r = proto_put_ulong(b, rv)) != 0 ||
	    (r = proto_put_ulongs_reply(b, list, count)) != 0 || (r = proto_frame_finish(b)) != 0) {
		goto out;
	}
	r = 0;
out:
	return r;
}

/* C_WaitForSlotEvent(flags, pSlot, pReserved): request "u", reply "u". */
static int
answer_wait_slot(const struct proto_hdr *h, const uint8_t *body, size_t len, struct proto_buf *b)
{
	struct proto_cur c;
	CK_ULONG flags = 0;

	proto_cur_init(&c, body, len);
	if (proto_get_ulong(&c, &flags) != 0 || proto_cur_end(&c) != 0) {
		return gw_reply_rv(b, h->call, h->req_id, CKR_ARGUMENTS_BAD);
	}
	/* Slots of a gateway never appear or disappear while it runs (partitions change only
	 * with a restart), so a non-blocking poll never has an event, and a blocking wait would
	 * never return: refused rather than parked forever on the loop. */
	if ((flags & CKF_DONT_BLOCK) != 0) {
		return gw_reply_rv(b, h->call, h->req_id, CKR_NO_EVENT);
	}
	return gw_reply_rv(b, h->call, h->req_id, CKR_FUNCTION_NOT_SUPPORTED);
}

int
gw_route_answer(const struct gw_part *parts, unsigned n, const char *tenant,
                const struct proto_hdr *h, const uint8_t *body, size_t len, struct proto_buf *b)
{
	switch (h->call) {
	case PROTO_CALL_C_GetSlotList:
		return answer_slot_list(parts, n, tenant, h, body, len, b);
	case PROTO_CALL_C_WaitForSlotEvent:
		return answer_wait_slot(h, body, len, b);
	default:
		return gw_reply_rv(b, h->call, h->req_id, CKR_FUNCTION_NOT_SUPPORTED);
	}
}
