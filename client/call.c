/*
 * client/call.c — one forwarded call: encode the request in the order of its layout in
 * proto_calls, run it over the connection, decode the CK_RV and, iff
 * proto_reply_has_fields(call, rv), the reply fields into the application's arguments.
 *
 * Puts and gets are sticky (as proto_buf is): a function chains them and checks once, in
 * cli_call_run and cli_call_end. The first put that fails decides the CK_RV, so that a
 * mechanism parameter the encoder refuses is CKR_MECHANISM_PARAM_INVALID and a frame over
 * the negotiated maximum is CKR_DATA_LEN_RANGE — both without a round trip.
 *
 * Deferred inits (cli_int.h) are decided here: cli_call_run_init defers an init this
 * connection has seen succeed; cli_call_run sends a session's deferred init ahead of the
 * next call that continues its operation, and answers that call with the init's error if it
 * failed, or before any other call, alone, whose error then stops that call; and calls that
 * change what an init may do (login state, objects, sessions) make the connection forget
 * which inits succeeded.
 */
#include "client/cli_int.h"

#include <string.h>

#include <openssl/crypto.h>

/* The CK_RV for a put that failed with proto error `r`. */
static void
put_result(struct cli_call *c, int r, CK_RV bad_value, CK_RV too_large)
{
	if (r == 0 || c->enc_rv != CKR_OK) {
		return;
	}
	switch (r) {
	case PROTO_ERR_NOMEM:
		c->enc_rv = CKR_HOST_MEMORY;
		break;
	case PROTO_ERR_TOO_LARGE:
		c->enc_rv = too_large;
		break;
	case PROTO_ERR_BAD_VALUE:
	case PROTO_ERR_DEPTH:
		c->enc_rv = bad_value;
		break;
	default:
		c->enc_rv = CKR_ARGUMENTS_BAD;
		break;
	}
}

/* Whether call `id` may change what an init that succeeded before would do now: a login
 * state, an object (a handle may be reused), a session and its session objects. */
static int
changes_inits(unsigned id)
{
	switch (id) {
	case PROTO_CALL_C_Login:
	case PROTO_CALL_C_Logout:
	case PROTO_CALL_C_DestroyObject:
	case PROTO_CALL_C_SetAttributeValue:
	case PROTO_CALL_C_CloseSession:
	case PROTO_CALL_C_CloseAllSessions:
	case PROTO_CALL_C_InitToken:
	case PROTO_CALL_C_InitPIN:
		return 1;
	default:
		return 0;
	}
}

CK_RV
cli_call_begin(struct cli_call *c, unsigned id, CK_SESSION_HANDLE session)
{
	const struct proto_call_info *info = proto_call_get(id);
	int session_call;
	CK_RV rv;

	memset(c, 0, sizeof(*c));
	c->id = id;
	c->session = session;
	proto_buf_init(&c->req);
	if (info == NULL) {
		return CKR_GENERAL_ERROR;
	}
	session_call = c->session_call = (info->flags & PROTO_CF_ROUTE_SESSION) != 0;
	if ((rv = cli_module_conn_get(session_call, &c->conn, &c->timeout_ms)) != CKR_OK) {
		return rv;
	}
	/* Only sessions opened on this connection exist at the gateway for us. */
	if (session_call && !cli_conn_session_has(c->conn, session)) {
		cli_conn_unref(c->conn);
		c->conn = NULL;
		return CKR_SESSION_HANDLE_INVALID;
	}
	if (changes_inits(id)) {
		cli_conn_init_forget(c->conn);
	}
	c->req.max = cli_conn_max_frame(c->conn);
	if (proto_frame_begin(&c->req, PROTO_MSG_REQUEST, (uint16_t)id, 0, 0) != 0) {
		proto_buf_free(&c->req);
		cli_conn_unref(c->conn);
		c->conn = NULL;
		return CKR_HOST_MEMORY;
	}
	return CKR_OK;
}

void
cli_put_ulong(struct cli_call *c, CK_ULONG v)
{
	put_result(c, proto_put_ulong(&c->req, v), CKR_ARGUMENTS_BAD, CKR_ARGUMENTS_BAD);
}

void
cli_put_bool(struct cli_call *c, CK_BBOOL v)
{
	put_result(c, proto_put_u8(&c->req, v), CKR_ARGUMENTS_BAD, CKR_ARGUMENTS_BAD);
}

void
cli_put_inbytes(struct cli_call *c, const CK_BYTE *p, CK_ULONG len)
{
	put_result(c, proto_put_inbytes(&c->req, p, len), CKR_ARGUMENTS_BAD, CKR_DATA_LEN_RANGE);
}

void
cli_put_outbuf(struct cli_call *c, const CK_BYTE *buf, CK_ULONG capacity)
{
	put_result(c, proto_put_outbuf_req(&c->req, buf, capacity), CKR_ARGUMENTS_BAD,
	           CKR_ARGUMENTS_BAD);
}

void
cli_put_ulongs(struct cli_call *c, const CK_ULONG *buf, CK_ULONG capacity)
{
	put_result(c, proto_put_ulongs_req(&c->req, buf, capacity), CKR_ARGUMENTS_BAD,
	           CKR_ARGUMENTS_BAD);
}

void
cli_put_template(struct cli_call *c, const CK_ATTRIBUTE *t, CK_ULONG n)
{
	put_result(c, proto_put_template(&c->req, t, n), CKR_ATTRIBUTE_VALUE_INVALID,
	           CKR_ARGUMENTS_BAD);
}

void
cli_put_attrquery(struct cli_call *c, const CK_ATTRIBUTE *t, CK_ULONG n)
{
	put_result(c, proto_put_attrquery(&c->req, t, n), CKR_ATTRIBUTE_VALUE_INVALID,
	           CKR_ARGUMENTS_BAD);
}

void
cli_put_mechanism(struct cli_call *c, const CK_MECHANISM *m)
{
	put_result(c, proto_put_mechanism(&c->req, m), CKR_MECHANISM_PARAM_INVALID,
	           CKR_MECHANISM_PARAM_INVALID);
}

/* The CK_RV in reply `rep` to call `id`, with *cur after it; CKR_DEVICE_ERROR for the
 * gateway's own refusal (an ERROR frame: worker down, limit ...; the connection is fine)
 * or a reply without one. */
static CK_RV
reply_rv(unsigned id, const struct cli_reply *rep, struct proto_cur *cur, int *dec_err)
{
	char msg[512];
	uint32_t code;
	CK_ULONG rv;

	proto_cur_init(cur, rep->body, rep->body_len);
	if (rep->type == PROTO_MSG_ERROR) {
		if (proto_gwerror_get(cur, &code, msg, sizeof(msg)) == 0) {
			cli_log("gateway refused %s: %s (error %u)", proto_call_get(id)->name, msg,
			        code);
		}
		return CKR_DEVICE_ERROR;
	}
	if (proto_get_ulong(cur, &rv) != 0) {
		*dec_err = PROTO_ERR_TRUNCATED;
		return CKR_DEVICE_ERROR;
	}
	return (CK_RV)rv;
}

/* The CK_RV of a deferred init from its reply: its own, or CKR_DEVICE_ERROR when the reply
 * is malformed (an init's reply is the CK_RV alone). The connection forgets the init if it
 * failed. Frees the reply. */
static CK_RV
deferred_rv(struct cli_call *c, const struct cli_deferred *d, struct cli_reply *rep)
{
	struct proto_cur cur;
	unsigned id = d->id;
	int dec_err = 0;
	CK_RV rv;

	rv = reply_rv(id, rep, &cur, &dec_err);
	if (rep->type == PROTO_MSG_REPLY && (dec_err != 0 || proto_cur_end(&cur) != 0)) {
		cli_log("malformed reply to %s from the gateway", proto_call_get(id)->name);
		rv = CKR_DEVICE_ERROR;
	}
	if (rv != CKR_OK) {
		cli_conn_init_known(c->conn, &d->key, 0);
	}
	OPENSSL_clear_free(rep->body, rep->body_len);
	memset(rep, 0, sizeof(*rep));
	return rv;
}

/* Whether call `id` continues the operation init `init` began: same action (C_Sign,
 * C_SignUpdate, C_SignFinal after C_SignInit ...), and not an init itself. If such a call
 * finds the operation missing, it fails without any effect. */
static int
continues(unsigned init, unsigned id)
{
	const struct proto_call_info *ci = proto_call_get(id);

	return (ci->flags & PROTO_CF_OP_INIT) == 0 &&
	       strcmp(proto_call_get(init)->action, ci->action) == 0;
}

/* Sends deferred init d on its own and frees it: its CK_RV. */
static CK_RV
deferred_alone(struct cli_call *c, struct cli_deferred *d)
{
	struct cli_reply rep;
	CK_RV rv;
	int r;

	r = cli_conn_call(c->conn, NULL, &d->req, c->timeout_ms, NULL, &rep);
	rv = r != 0 ? cli_err_to_rv(r) : deferred_rv(c, d, &rep);
	cli_deferred_free(d);
	return rv;
}

CK_RV
cli_call_run(struct cli_call *c)
{
	struct cli_deferred *pre = NULL;
	struct cli_reply rep, pre_rep;
	CK_RV rv;
	int r;

	if (c->enc_rv != CKR_OK) {
		return c->enc_rv;
	}
	if (proto_frame_finish(&c->req) != 0) {
		put_result(c, c->req.failed, CKR_ARGUMENTS_BAD, CKR_DATA_LEN_RANGE);
		return c->enc_rv != CKR_OK ? c->enc_rv : CKR_GENERAL_ERROR;
	}
	if (c->session_call && (pre = cli_conn_deferred_take(c->conn, c->session)) != NULL &&
	    !continues(pre->id, c->id)) {
		/* Any other call must act only if the init did succeed (an init, a key
		 * generation ... that the application would be told had failed must not have
		 * happened): the init goes first, alone, and its error stops the call. */
		rv = deferred_alone(c, pre);
		pre = NULL;
		if (rv != CKR_OK) {
			return rv;
		}
	}
	r = cli_conn_call(c->conn, pre != NULL ? &pre->req : NULL, &c->req, c->timeout_ms, &pre_rep,
	                  &rep);
	if (r != 0) {
		cli_deferred_free(pre);
		return cli_err_to_rv(r);
	}
	c->body = rep.body;
	c->body_len = rep.body_len;
	/* The init the application was told had succeeded failed after all: this call, which
	 * then found no operation to continue, is answered with the init's error. */
	if (pre != NULL && (rv = deferred_rv(c, pre, &pre_rep)) != CKR_OK) {
		cli_deferred_free(pre);
		OPENSSL_clear_free(c->body, c->body_len);
		c->body = NULL;
		return rv;
	}
	cli_deferred_free(pre);
	rv = reply_rv(c->id, &rep, &c->cur, &c->dec_err);
	if (rep.type == PROTO_MSG_ERROR) {
		OPENSSL_clear_free(c->body, c->body_len);
		c->body = NULL;
		return rv;
	}
	if (c->dec_err == 0) {
		c->fields = proto_reply_has_fields(c->id, rv);
	}
	return rv;
}

CK_RV
cli_call_run_init(struct cli_call *c, const CK_MECHANISM *m, CK_OBJECT_HANDLE key)
{
	struct cli_init_key k = {0};
	struct cli_deferred *d;
	struct proto_buf kb;
	CK_RV rv;

	/* The key: call id, key handle, mechanism shape. One that does not fit is never
	 * deferred (k.len stays 0). */
	proto_buf_init(&kb);
	kb.max = sizeof(k.b);
	if (proto_put_ulong(&kb, c->id) == 0 && proto_put_ulong(&kb, key) == 0 &&
	    proto_put_mechanism_shape(&kb, m) == 0) {
		memcpy(k.b, kb.data, kb.len);
		k.len = kb.len;
	}
	proto_buf_free(&kb);
	/* Short of memory for the deferral, the init runs now, as it would undeferred.
	 * (Finishing the frame here and again in cli_call_run writes the same length.) */
	if (k.len != 0 && c->enc_rv == CKR_OK && proto_frame_finish(&c->req) == 0 &&
	    (d = calloc(1, sizeof(*d))) != NULL) {
		d->id = c->id;
		d->req = c->req;
		d->key = k;
		if (cli_conn_defer(c->conn, c->session, d)) {
			proto_buf_init(&c->req); /* the session's now */
			return CKR_OK;
		}
		proto_buf_init(&d->req);
		free(d);
	}
	rv = cli_call_run(c);
	if (k.len != 0 && !c->dec_err) {
		cli_conn_init_known(c->conn, &k, rv == CKR_OK);
	}
	return rv;
}

void
cli_get_ulong(struct cli_call *c, CK_ULONG *v)
{
	if (c->dec_err == 0 && c->fields) {
		c->dec_err = proto_get_ulong(&c->cur, v);
	}
}

void
cli_get_outbuf(struct cli_call *c, CK_BYTE *buf, CK_ULONG *len_io)
{
	if (c->dec_err == 0 && c->fields) {
		c->dec_err = proto_get_outbuf_reply(&c->cur, buf, len_io);
	}
}

void
cli_get_ulongs(struct cli_call *c, CK_ULONG *buf, CK_ULONG *count_io)
{
	if (c->dec_err == 0 && c->fields) {
		c->dec_err = proto_get_ulongs_reply(&c->cur, buf, count_io);
	}
}

void
cli_get_attrreply(struct cli_call *c, CK_ATTRIBUTE *t, CK_ULONG n)
{
	if (c->dec_err == 0 && c->fields) {
		c->dec_err = proto_get_attrreply(&c->cur, t, n);
	}
}

void
cli_get_info(struct cli_call *c, char kind, void *out)
{
	if (c->dec_err != 0 || !c->fields) {
		return;
	}
	switch (kind) {
	case 'S':
		c->dec_err = proto_get_slot_info(&c->cur, out);
		break;
	case 'T':
		c->dec_err = proto_get_token_info(&c->cur, out);
		break;
	case 'N':
		c->dec_err = proto_get_session_info(&c->cur, out);
		break;
	case 'm':
		c->dec_err = proto_get_mech_info(&c->cur, out);
		break;
	default:
		c->dec_err = PROTO_ERR_BAD_VALUE;
		break;
	}
}

CK_RV
cli_call_end(struct cli_call *c, CK_RV rv)
{
	/* A reply that does not decode in full, or carries more than its layout, is not
	 * something the application can trust any part of. */
	if (c->body != NULL && (c->dec_err != 0 || proto_cur_end(&c->cur) != 0)) {
		cli_log("malformed reply to %s from the gateway",
		        proto_call_get(c->id) != NULL ? proto_call_get(c->id)->name : "?");
		rv = CKR_DEVICE_ERROR;
	}
	if (c->body != NULL) {
		OPENSSL_clear_free(c->body, c->body_len);
		c->body = NULL;
	}
	proto_buf_free(&c->req);
	cli_conn_unref(c->conn);
	c->conn = NULL;
	return rv;
}

/* ---- common shapes ------------------------------------------------------------------ */

CK_RV
cli_fwd_session(unsigned id, CK_SESSION_HANDLE h)
{
	struct cli_call c;
	CK_RV rv;

	if ((rv = cli_call_begin(&c, id, h)) != CKR_OK) {
		return rv;
	}
	cli_put_ulong(&c, h);
	rv = cli_call_run(&c);
	return cli_call_end(&c, rv);
}

CK_RV
cli_fwd_in(unsigned id, CK_SESSION_HANDLE h, const CK_BYTE *in, CK_ULONG in_len)
{
	struct cli_call c;
	CK_RV rv;

	if ((rv = cli_call_begin(&c, id, h)) != CKR_OK) {
		return rv;
	}
	if (in == NULL && in_len != 0) {
		return cli_call_end(&c, CKR_ARGUMENTS_BAD);
	}
	cli_put_ulong(&c, h);
	cli_put_inbytes(&c, in, in_len);
	rv = cli_call_run(&c);
	return cli_call_end(&c, rv);
}

CK_RV
cli_fwd_out(unsigned id, CK_SESSION_HANDLE h, CK_BYTE *out, CK_ULONG *out_len)
{
	struct cli_call c;
	CK_RV rv;

	if ((rv = cli_call_begin(&c, id, h)) != CKR_OK) {
		return rv;
	}
	if (out_len == NULL) {
		return cli_call_end(&c, CKR_ARGUMENTS_BAD);
	}
	cli_put_ulong(&c, h);
	cli_put_outbuf(&c, out, out != NULL ? *out_len : 0);
	rv = cli_call_run(&c);
	cli_get_outbuf(&c, out, out_len);
	return cli_call_end(&c, rv);
}

CK_RV
cli_fwd_inout(unsigned id, CK_SESSION_HANDLE h, const CK_BYTE *in, CK_ULONG in_len, CK_BYTE *out,
              CK_ULONG *out_len)
{
	struct cli_call c;
	CK_RV rv;

	if ((rv = cli_call_begin(&c, id, h)) != CKR_OK) {
		return rv;
	}
	if ((in == NULL && in_len != 0) || out_len == NULL) {
		return cli_call_end(&c, CKR_ARGUMENTS_BAD);
	}
	cli_put_ulong(&c, h);
	cli_put_inbytes(&c, in, in_len);
	cli_put_outbuf(&c, out, out != NULL ? *out_len : 0);
	rv = cli_call_run(&c);
	cli_get_outbuf(&c, out, out_len);
	return cli_call_end(&c, rv);
}

CK_RV
cli_fwd_init(unsigned id, CK_SESSION_HANDLE h, const CK_MECHANISM *m, CK_ULONG key)
{
	struct cli_call c;
	CK_RV rv;

	if ((rv = cli_call_begin(&c, id, h)) != CKR_OK) {
		return rv;
	}
	if (m == NULL) {
		return cli_call_end(&c, CKR_ARGUMENTS_BAD);
	}
	cli_put_ulong(&c, h);
	cli_put_mechanism(&c, m);
	cli_put_ulong(&c, key);
	rv = cli_call_run_init(&c, m, key);
	return cli_call_end(&c, rv);
}
