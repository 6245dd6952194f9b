/*
 * hsm-partitions/worker.c — the dispatch core: one client request frame in, one reply
 * frame out, no process or socket involved (ipc.c adds those), so tests drive it directly.
 *
 * Each handler reads like its layout in proto/calls.c (STYLE.md rule 4): it decodes the
 * request fields in order, checks that nothing is left (proto_cur_end), calls the token
 * function that implements the PKCS #11 function, and encodes the response fields. A body
 * that does not decode is CKR_ARGUMENTS_BAD and changes nothing. Response fields go into
 * w->out and are copied into the reply only when proto_reply_has_fields(call, rv).
 */
#include "hsm-partitions/part_int.h"
#include "hsm-partitions/part_authz.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

/* Caps on what the wire may make the worker allocate for one call; each is at least what
 * the call can ever return, so clamping a larger capacity changes no answer. */
#define PIN_WIRE_MAX PROTO_MAX_STRING
#define FIND_MAX     1024 /* handles per C_FindObjects (fewer than asked is allowed) */

/* The key-level policy decision of the request being handled, for the gateway's audit event
 * (part_worker_decision). */
struct worker_decision {
	int made;
	uint32_t req_id;
	struct part_authz_result res;
	char ref[PART_REF_LEN + 1]; /* the key the first action was on; empty: the partition */
};

/* A one-shot call handed to the crypto threads (part_crypt_lend, later.c). Its input is a
 * copy: the IPC buffer it came in is wiped and reused before the call runs. */
struct worker_job {
	struct part_job base; /* first */
	struct part_op *op;   /* the session's; used by this job alone until finished */
	enum part_op_kind kind;
	unsigned call;
	uint32_t req_id;
	uint8_t *in, *out; /* OPENSSL_clear_free: plaintext either way */
	CK_ULONG inlen, outcap, outlen;
	int has; /* the application passed an output buffer (else a size query) */
	CK_RV rv;
};

/* A C_GenerateKeyPair of an RSA key handed to the crypto threads (offload_pair). The
 * mechanism and the templates live in the request's arena, which the job took over. */
struct pair_job {
	struct part_job base; /* first; base.arena holds m's parameter and the templates */
	CK_MECHANISM m;
	CK_ATTRIBUTE *pub, *priv;
	CK_ULONG npub, npriv;
	uint32_t req_id;
	struct part_attrs *gpub, *gpriv; /* what part_key_generate_pair made */
	CK_RV rv;
};

struct part_worker {
	struct part_token *tok;
	struct worker_decision decision;
	uint32_t max_frame;
	struct proto_arena *arena; /* allocations of the current request */
	struct proto_buf out;      /* response fields of the current request */
	struct part_authz *authz;  /* key-level policy (authz.c) */
	struct part_later *later;  /* crypto threads (part_worker_threads); NULL: all in line */
};

struct call {
	struct part_token *t;
	uint64_t conn;
	const struct proto_ctx *ctx; /* the caller: for key-level policy and audit (later) */
	struct proto_cur in;
	struct proto_arena *a;
	struct proto_buf *out;
	uint32_t max_frame;
	unsigned call; /* the PROTO_CALL_* id: shared handlers dispatch on it */
	struct part_authz *authz;
	struct worker_decision *dec;
	struct part_worker *w;
	int later; /* handed to the crypto threads: no reply now */
};

typedef CK_RV handler_fn(struct call *c);

#define BAD CKR_ARGUMENTS_BAD

/* Whether an output-size convention reply carries data or only a length. */
static CK_RV
put_out(struct call *c, CK_RV rv, const CK_BYTE *buf, CK_ULONG len)
{
	if (rv == CKR_OK && buf != NULL) {
		return part_rv_encoded(proto_put_outbuf_reply(c->out, buf, len), rv);
	}
	if (rv == CKR_OK || rv == CKR_BUFFER_TOO_SMALL) {
		return part_rv_encoded(proto_put_outbuf_reply(c->out, NULL, len), rv);
	}
	return rv;
}

static uint32_t
clamp(CK_ULONG v, uint32_t max)
{
	return v > max ? max : (uint32_t)v;
}

/* ---- slot and token --------------------------------------------------------------------- */

static CK_RV
h_get_slot_info(struct call *c)
{
	CK_SLOT_INFO info;
	CK_SLOT_ID slot;
	CK_RV rv;

	if (proto_get_ulong(&c->in, &slot) != 0 || proto_cur_end(&c->in) != 0) {
		return BAD;
	}
	if ((rv = part_token_slot_info(c->t, slot, &info)) != CKR_OK) {
		return rv;
	}
	return part_rv_encoded(proto_put_slot_info(c->out, &info), rv);
}

static CK_RV
h_get_token_info(struct call *c)
{
	CK_TOKEN_INFO info;
	CK_SLOT_ID slot;
	CK_RV rv;

	if (proto_get_ulong(&c->in, &slot) != 0 || proto_cur_end(&c->in) != 0) {
		return BAD;
	}
	if ((rv = part_token_info(c->t, slot, &info)) != CKR_OK) {
		return rv;
	}
	return part_rv_encoded(proto_put_token_info(c->out, &info), rv);
}

static CK_RV
h_get_mechanism_list(struct call *c)
{
	CK_MECHANISM_TYPE *list = NULL;
	CK_ULONG cap, count;
	size_t nmech;
	CK_SLOT_ID slot;
	int has;
	CK_RV rv;

	if (proto_get_ulong(&c->in, &slot) != 0 || proto_get_ulongs_req(&c->in, &has, &cap) != 0 ||
	    proto_cur_end(&c->in) != 0) {
		return BAD;
	}
	if (part_mech_list(NULL, &nmech) != CKR_OK) {
		return CKR_GENERAL_ERROR;
	}
	count = clamp(cap, (uint32_t)nmech);
	if (has && (list = proto_arena_alloc(c->a, (count + 1) * sizeof(*list))) == NULL) {
		return CKR_DEVICE_MEMORY;
	}
	rv = part_token_mechanisms(c->t, slot, list, &count);
	if (rv == CKR_OK || rv == CKR_BUFFER_TOO_SMALL) {
		return part_rv_encoded(
		        proto_put_ulongs_reply(c->out, rv == CKR_OK ? list : NULL, count), rv);
	}
	return rv;
}

static CK_RV
h_get_mechanism_info(struct call *c)
{
	CK_MECHANISM_INFO info;
	CK_MECHANISM_TYPE type;
	CK_SLOT_ID slot;
	CK_RV rv;

	if (proto_get_ulong(&c->in, &slot) != 0 || proto_get_ulong(&c->in, &type) != 0 ||
	    proto_cur_end(&c->in) != 0) {
		return BAD;
	}
	if ((rv = part_token_mechanism_info(c->t, slot, type, &info)) != CKR_OK) {
		return rv;
	}
	return part_rv_encoded(proto_put_mech_info(c->out, &info), rv);
}

static CK_RV
h_init_token(struct call *c)
{
	const CK_BYTE *pin, *label;
	CK_ULONG pinlen, labellen;
	CK_UTF8CHAR padded[32];
	CK_SLOT_ID slot;

	if (proto_get_ulong(&c->in, &slot) != 0 ||
	    proto_get_inbytes(&c->in, &pin, &pinlen, PIN_WIRE_MAX) != 0 ||
	    proto_get_inbytes(&c->in, &label, &labellen, PROTO_MAX_STRING) != 0 ||
	    proto_cur_end(&c->in) != 0) {
		return BAD;
	}
	/* pLabel is 32 blank-padded bytes (v2.40 §5.6); a shorter one is padded here. */
	if (labellen > sizeof(padded)) {
		return BAD;
	}
	memset(padded, ' ', sizeof(padded));
	if (label != NULL && labellen != 0) {
		memcpy(padded, label, labellen);
	}
	return part_token_init(c->t, slot, pin, pinlen, label != NULL ? padded : NULL);
}

static CK_RV
h_init_pin(struct call *c)
{
	CK_SESSION_HANDLE h;
	const CK_BYTE *pin;
	CK_ULONG len;

	if (proto_get_ulong(&c->in, &h) != 0 ||
	    proto_get_inbytes(&c->in, &pin, &len, PIN_WIRE_MAX) != 0 ||
	    proto_cur_end(&c->in) != 0) {
		return BAD;
	}
	return part_token_init_pin(c->t, c->conn, h, pin, len);
}

static CK_RV
h_set_pin(struct call *c)
{
	const CK_BYTE *old, *pin;
	CK_ULONG oldlen, len;
	CK_SESSION_HANDLE h;

	if (proto_get_ulong(&c->in, &h) != 0 ||
	    proto_get_inbytes(&c->in, &old, &oldlen, PIN_WIRE_MAX) != 0 ||
	    proto_get_inbytes(&c->in, &pin, &len, PIN_WIRE_MAX) != 0 ||
	    proto_cur_end(&c->in) != 0) {
		return BAD;
	}
	return part_token_set_pin(c->t, c->conn, h, old, oldlen, pin, len);
}

/* ---- sessions --------------------------------------------------------------------------- */

static CK_RV
h_open_session(struct call *c)
{
	CK_SESSION_HANDLE h;
	CK_SLOT_ID slot;
	CK_FLAGS flags;
	CK_RV rv;

	if (proto_get_ulong(&c->in, &slot) != 0 || proto_get_ulong(&c->in, &flags) != 0 ||
	    proto_cur_end(&c->in) != 0) {
		return BAD;
	}
	if ((rv = part_session_open(c->t, c->conn, slot, flags, &h)) != CKR_OK) {
		return rv;
	}
	if ((rv = part_rv_encoded(proto_put_ulong(c->out, h), rv)) != CKR_OK) {
		/* The application will never learn the handle: do not leave it open. */
		(void)part_session_close(c->t, c->conn, h);
	}
	return rv;
}

static CK_RV
h_close_session(struct call *c)
{
	CK_SESSION_HANDLE h;

	if (proto_get_ulong(&c->in, &h) != 0 || proto_cur_end(&c->in) != 0) {
		return BAD;
	}
	return part_session_close(c->t, c->conn, h);
}

static CK_RV
h_close_all_sessions(struct call *c)
{
	CK_SLOT_ID slot;

	if (proto_get_ulong(&c->in, &slot) != 0 || proto_cur_end(&c->in) != 0) {
		return BAD;
	}
	return part_session_close_all(c->t, c->conn, slot);
}

static CK_RV
h_get_session_info(struct call *c)
{
	CK_SESSION_INFO info;
	CK_SESSION_HANDLE h;
	CK_RV rv;

	if (proto_get_ulong(&c->in, &h) != 0 || proto_cur_end(&c->in) != 0) {
		return BAD;
	}
	if ((rv = part_session_info(c->t, c->conn, h, &info)) != CKR_OK) {
		return rv;
	}
	return part_rv_encoded(proto_put_session_info(c->out, &info), rv);
}

static CK_RV
h_login(struct call *c)
{
	CK_SESSION_HANDLE h;
	CK_USER_TYPE user;
	const CK_BYTE *pin;
	CK_ULONG len;

	if (proto_get_ulong(&c->in, &h) != 0 || proto_get_ulong(&c->in, &user) != 0 ||
	    proto_get_inbytes(&c->in, &pin, &len, PIN_WIRE_MAX) != 0 ||
	    proto_cur_end(&c->in) != 0) {
		return BAD;
	}
	return part_token_login(c->t, c->conn, h, user, pin, len);
}

static CK_RV
h_logout(struct call *c)
{
	CK_SESSION_HANDLE h;

	if (proto_get_ulong(&c->in, &h) != 0 || proto_cur_end(&c->in) != 0) {
		return BAD;
	}
	return part_token_logout(c->t, c->conn, h);
}

/* Legacy functions: v2.40 §5.16 "C_GetFunctionStatus is a legacy function which should
 * simply return the value CKR_FUNCTION_NOT_PARALLEL" (likewise C_CancelFunction). */
static CK_RV
h_function_not_parallel(struct call *c)
{
	CK_SESSION_HANDLE h;

	if (proto_get_ulong(&c->in, &h) != 0 || proto_cur_end(&c->in) != 0) {
		return BAD;
	}
	return CKR_FUNCTION_NOT_PARALLEL;
}

/* ---- key-level policy ------------------------------------------------------------------- */

/* What one call asks of the policy: action on obj (0: on the partition), optionally a second
 * action on obj2 (0: on the partition), with the mechanism and the template of a new key. */
struct authz_args {
	const char *action;
	CK_OBJECT_HANDLE obj;
	const char *action2;
	CK_OBJECT_HANDLE obj2;
	const CK_MECHANISM *m;
	const CK_ATTRIBUTE *tmpl;
	CK_ULONG ntmpl;
};

/* The policy's view of object `h`: its ref and its attributes as CK_ATTRIBUTEs pointing at
 * the object's own values (authz.c reads only bools, ulongs, the label and the id). *found is
 * 0 when `h` is not a visible object: the token then refuses the call with the exact CK_RV. */
static int
authz_key_view(struct call *c, struct part_session *s, CK_OBJECT_HANDLE h, struct part_authz_key *k,
               int *found)
{
	struct part_object *o;
	CK_ATTRIBUTE *attrs;
	size_t i;

	*found = 0;
	if (part_object_lookup(c->t, s, h, &o) != CKR_OK) {
		return 0;
	}
	if ((attrs = proto_arena_alloc(c->a, (o->nattrs + 1) * sizeof(*attrs))) == NULL) {
		return -1;
	}
	for (i = 0; i < o->nattrs; i++) {
		attrs[i].type = o->attrs[i].type;
		attrs[i].pValue = o->attrs[i].value;
		attrs[i].ulValueLen = o->attrs[i].len;
	}
	k->ref = o->ref;
	k->attrs = attrs;
	k->n = o->nattrs;
	*found = 1;
	return 0;
}

/*
 * Key-level policy, decided before the token acts (docs/POLICY.md, "Enforcement"): only
 * here is it known which object a handle names. A handle that names no session or no
 * visible object is left to the token, which refuses it with its exact CK_RV and does
 * nothing, so the policy never has to guess about objects that do not exist.
 */
static CK_RV
authorize(struct call *c, CK_SESSION_HANDLE h, const struct authz_args *x)
{
	static const struct proto_ctx nobody; /* no caller context: matches no principal */
	struct part_authz_key k1, k2;
	struct part_authz_result res;
	struct part_authz_call pc;
	struct part_session *s;
	const struct proto_call_info *ci = proto_call_get(c->call);
	int found;
	CK_RV rv;

	if (c->authz == NULL || !part_authz_has_policy(c->authz)) {
		return CKR_OK;
	}
	if (part_session_get(c->t, c->conn, h, &s) != CKR_OK) {
		return CKR_OK;
	}
	memset(&pc, 0, sizeof(pc));
	pc.action = x->action;
	pc.action2 = x->action2;
	pc.function = ci != NULL ? ci->name : NULL;
	if (x->obj != 0) {
		if (authz_key_view(c, s, x->obj, &k1, &found) != 0) {
			return CKR_DEVICE_MEMORY;
		}
		if (!found) {
			return CKR_OK;
		}
		pc.key = &k1;
	}
	if (x->action2 != NULL && x->obj2 != 0) {
		if (authz_key_view(c, s, x->obj2, &k2, &found) != 0) {
			return CKR_DEVICE_MEMORY;
		}
		if (!found) {
			return CKR_OK;
		}
		pc.key2 = &k2;
	}
	if (x->m != NULL) {
		pc.has_mech = 1;
		pc.mech = x->m->mechanism;
	}
	pc.tmpl = x->tmpl;
	pc.ntmpl = x->ntmpl;
	pc.has_session = 1;
	pc.session_rw = s->rw;
	rv = part_authz_check(c->authz, c->ctx != NULL ? c->ctx : &nobody, &pc, &res);
	if (c->dec != NULL) {
		c->dec->made = 1;
		c->dec->res = res;
		snprintf(c->dec->ref, sizeof(c->dec->ref), "%s", pc.key != NULL ? pc.key->ref : "");
	}
	if (rv != CKR_OK) {
		fprintf(stderr,
		        "level=info component=worker msg=\"denied by policy\" partition=%s "
		        "principal=%s function=%s action=%s result=%s sids=%s\n",
		        c->t->partition, c->ctx != NULL ? c->ctx->principal : "-",
		        pc.function != NULL ? pc.function : "-", res.action, res.result,
		        res.sids[0] != '\0' ? res.sids : "-");
	}
	return rv;
}

/* The action of C_CreateObject: importing a key, or creating another kind of object. */
static const char *
create_action(const CK_ATTRIBUTE *t, CK_ULONG n)
{
	CK_ULONG i;
	CK_OBJECT_CLASS cls;

	for (i = 0; i < n; i++) {
		if (t[i].type == CKA_CLASS && t[i].pValue != NULL &&
		    t[i].ulValueLen == sizeof(cls)) {
			memcpy(&cls, t[i].pValue, sizeof(cls));
			if (cls == CKO_SECRET_KEY || cls == CKO_PRIVATE_KEY ||
			    cls == CKO_PUBLIC_KEY) {
				return "hsm.keys.import";
			}
		}
	}
	return "hsm.objects.create";
}

/* ---- objects ---------------------------------------------------------------------------- */

static CK_RV
h_create_object(struct call *c)
{
	CK_OBJECT_HANDLE obj;
	CK_SESSION_HANDLE h;
	CK_ATTRIBUTE *tmpl;
	CK_ULONG n;
	CK_RV rv;

	if (proto_get_ulong(&c->in, &h) != 0 || proto_get_template(&c->in, c->a, &tmpl, &n) != 0 ||
	    proto_cur_end(&c->in) != 0) {
		return BAD;
	}
	if ((rv = authorize(c, h,
	                    &(struct authz_args){
	                            .action = create_action(tmpl, n), .tmpl = tmpl, .ntmpl = n})) !=
	    CKR_OK) {
		return rv;
	}
	if ((rv = part_object_create(c->t, c->conn, h, tmpl, n, &obj)) != CKR_OK) {
		return rv;
	}
	return part_rv_encoded(proto_put_ulong(c->out, obj), rv);
}

static CK_RV
h_destroy_object(struct call *c)
{
	CK_SESSION_HANDLE h;
	CK_OBJECT_HANDLE obj;
	CK_RV rv;

	if (proto_get_ulong(&c->in, &h) != 0 || proto_get_ulong(&c->in, &obj) != 0 ||
	    proto_cur_end(&c->in) != 0) {
		return BAD;
	}
	if ((rv = authorize(c, h,
	                    &(struct authz_args){.action = "hsm.keys.destroy", .obj = obj})) !=
	    CKR_OK) {
		return rv;
	}
	return part_object_destroy(c->t, c->conn, h, obj);
}

static CK_RV
h_get_object_size(struct call *c)
{
	CK_SESSION_HANDLE h;
	CK_OBJECT_HANDLE obj;
	CK_ULONG size;
	CK_RV rv;

	if (proto_get_ulong(&c->in, &h) != 0 || proto_get_ulong(&c->in, &obj) != 0 ||
	    proto_cur_end(&c->in) != 0) {
		return BAD;
	}
	if ((rv = authorize(c, h,
	                    &(struct authz_args){.action = "hsm.keys.readmetadata", .obj = obj})) !=
	    CKR_OK) {
		return rv;
	}
	if ((rv = part_object_size(c->t, c->conn, h, obj, &size)) != CKR_OK) {
		return rv;
	}
	return part_rv_encoded(proto_put_ulong(c->out, size), rv);
}

static CK_RV
h_get_attribute_value(struct call *c)
{
	CK_SESSION_HANDLE h;
	CK_OBJECT_HANDLE obj;
	CK_ATTRIBUTE *tmpl;
	CK_ULONG n;
	CK_RV rv;

	if (proto_get_ulong(&c->in, &h) != 0 || proto_get_ulong(&c->in, &obj) != 0 ||
	    proto_get_attrquery(&c->in, c->a, &tmpl, &n) != 0 || proto_cur_end(&c->in) != 0) {
		return BAD;
	}
	if ((rv = authorize(c, h,
	                    &(struct authz_args){.action = "hsm.keys.readattributes",
	                                         .obj = obj})) != CKR_OK) {
		return rv;
	}
	rv = part_object_get_attrs(c->t, c->conn, h, obj, tmpl, n);
	if (!proto_reply_has_fields(PROTO_CALL_C_GetAttributeValue, rv)) {
		return rv;
	}
	return part_rv_encoded(proto_put_attrreply(c->out, tmpl, n), rv);
}

static CK_RV
h_set_attribute_value(struct call *c)
{
	CK_SESSION_HANDLE h;
	CK_OBJECT_HANDLE obj;
	CK_ATTRIBUTE *tmpl;
	CK_ULONG n;
	CK_RV rv;

	if (proto_get_ulong(&c->in, &h) != 0 || proto_get_ulong(&c->in, &obj) != 0 ||
	    proto_get_template(&c->in, c->a, &tmpl, &n) != 0 || proto_cur_end(&c->in) != 0) {
		return BAD;
	}
	if ((rv = authorize(c, h,
	                    &(struct authz_args){.action = "hsm.keys.setattributes",
	                                         .obj = obj,
	                                         .tmpl = tmpl,
	                                         .ntmpl = n})) != CKR_OK) {
		return rv;
	}
	return part_object_set_attrs(c->t, c->conn, h, obj, tmpl, n);
}

static CK_RV
h_find_objects_init(struct call *c)
{
	CK_SESSION_HANDLE h;
	CK_ATTRIBUTE *tmpl;
	CK_ULONG n;

	if (proto_get_ulong(&c->in, &h) != 0 || proto_get_template(&c->in, c->a, &tmpl, &n) != 0 ||
	    proto_cur_end(&c->in) != 0) {
		return BAD;
	}
	return part_object_find_init(c->t, c->conn, h, tmpl, n);
}

static CK_RV
h_find_objects(struct call *c)
{
	CK_OBJECT_HANDLE *list = NULL;
	CK_SESSION_HANDLE h;
	CK_ULONG cap, count;
	int has;
	CK_RV rv;

	if (proto_get_ulong(&c->in, &h) != 0 || proto_get_ulongs_req(&c->in, &has, &cap) != 0 ||
	    proto_cur_end(&c->in) != 0) {
		return BAD;
	}
	cap = clamp(cap, FIND_MAX);
	if (has && (list = proto_arena_alloc(c->a, (cap + 1) * sizeof(*list))) == NULL) {
		return CKR_DEVICE_MEMORY;
	}
	if ((rv = part_object_find(c->t, c->conn, h, list, cap, &count)) != CKR_OK) {
		return rv;
	}
	return part_rv_encoded(proto_put_ulongs_reply(c->out, list, count), rv);
}

static CK_RV
h_find_objects_final(struct call *c)
{
	CK_SESSION_HANDLE h;

	if (proto_get_ulong(&c->in, &h) != 0 || proto_cur_end(&c->in) != 0) {
		return BAD;
	}
	return part_object_find_final(c->t, c->conn, h);
}

/* ---- digests and random numbers --------------------------------------------------------- */

static CK_RV
h_digest_init(struct call *c)
{
	CK_SESSION_HANDLE h;
	CK_MECHANISM m;

	if (proto_get_ulong(&c->in, &h) != 0 || proto_get_mechanism(&c->in, c->a, &m) != 0 ||
	    proto_cur_end(&c->in) != 0) {
		return BAD;
	}
	return part_digest_init(c->t, c->conn, h, &m);
}

static CK_RV
h_digest(struct call *c)
{
	CK_BYTE md[EVP_MAX_MD_SIZE];
	CK_SESSION_HANDLE h;
	const CK_BYTE *in;
	CK_ULONG inlen, cap, len;
	int has;
	CK_RV rv;

	if (proto_get_ulong(&c->in, &h) != 0 ||
	    proto_get_inbytes(&c->in, &in, &inlen, PROTO_MAX_FRAME_CAP) != 0 ||
	    proto_get_outbuf_req(&c->in, &has, &cap) != 0 || proto_cur_end(&c->in) != 0) {
		return BAD;
	}
	len = clamp(cap, sizeof(md));
	rv = part_digest(c->t, c->conn, h, in, inlen, has ? md : NULL, &len);
	rv = put_out(c, rv, has ? md : NULL, len);
	OPENSSL_cleanse(md, sizeof(md));
	return rv;
}

static CK_RV
h_digest_update(struct call *c)
{
	CK_SESSION_HANDLE h;
	const CK_BYTE *in;
	CK_ULONG inlen;

	if (proto_get_ulong(&c->in, &h) != 0 ||
	    proto_get_inbytes(&c->in, &in, &inlen, PROTO_MAX_FRAME_CAP) != 0 ||
	    proto_cur_end(&c->in) != 0) {
		return BAD;
	}
	return part_digest_update(c->t, c->conn, h, in, inlen);
}

static CK_RV
h_digest_final(struct call *c)
{
	CK_BYTE md[EVP_MAX_MD_SIZE];
	CK_SESSION_HANDLE h;
	CK_ULONG cap, len;
	int has;
	CK_RV rv;

	if (proto_get_ulong(&c->in, &h) != 0 || proto_get_outbuf_req(&c->in, &has, &cap) != 0 ||
	    proto_cur_end(&c->in) != 0) {
		return BAD;
	}
	len = clamp(cap, sizeof(md));
	rv = part_digest_final(c->t, c->conn, h, has ? md : NULL, &len);
	rv = put_out(c, rv, has ? md : NULL, len);
	OPENSSL_cleanse(md, sizeof(md));
	return rv;
}

static CK_RV
h_seed_random(struct call *c)
{
	CK_SESSION_HANDLE h;
	const CK_BYTE *seed;
	CK_ULONG len;

	if (proto_get_ulong(&c->in, &h) != 0 ||
	    proto_get_inbytes(&c->in, &seed, &len, PROTO_MAX_FRAME_CAP) != 0 ||
	    proto_cur_end(&c->in) != 0) {
		return BAD;
	}
	return part_random_seed(c->t, c->conn, h, seed, len);
}

static CK_RV
h_generate_random(struct call *c)
{
	CK_SESSION_HANDLE h;
	CK_BYTE *buf = NULL;
	CK_ULONG cap;
	int has;
	CK_RV rv;

	if (proto_get_ulong(&c->in, &h) != 0 || proto_get_outbuf_req(&c->in, &has, &cap) != 0 ||
	    proto_cur_end(&c->in) != 0) {
		return BAD;
	}
	/* pRandomData is a buffer of exactly ulRandomLen bytes: no size query. The reply
	 * must fit one frame; a larger request is refused rather than split. */
	if (!has || cap > c->max_frame - 1024) {
		rv = part_random_generate(c->t, c->conn, h, NULL, 0);
		return rv == CKR_OK ? BAD : rv;
	}
	if ((buf = proto_arena_alloc(c->a, cap != 0 ? cap : 1)) == NULL) {
		return CKR_DEVICE_MEMORY;
	}
	if ((rv = part_random_generate(c->t, c->conn, h, buf, cap)) != CKR_OK) {
		return rv;
	}
	return part_rv_encoded(proto_put_outbuf_reply(c->out, buf, cap), rv);
}

/* ---- keys and cryptographic operations -------------------------------------------------- */

/* Output buffers of the crypto calls: the application's capacity, clamped to what one
 * reply can carry (and, for calls whose output cannot exceed their input by much, to that),
 * allocated in the arena. NULL when the application asked for the length only. */
static CK_ULONG
out_len(const struct call *c, CK_ULONG cap, CK_ULONG bound)
{
	CK_ULONG max = c->max_frame - 1024;

	if (bound < max) {
		max = bound;
	}
	return cap > max ? max : cap;
}

static CK_BYTE *
out_buf(struct call *c, int has, CK_ULONG cap, CK_ULONG bound, CK_ULONG *len)
{
	*len = out_len(c, cap, bound);
	if (!has) {
		return NULL;
	}
	return proto_arena_alloc(c->a, *len != 0 ? *len : 1);
}

/* Input plus room for padding, a tag, and the largest RSA or EC signature. */
#define OUT_BOUND(inlen) ((inlen) + 4096)

static CK_RV
h_copy_object(struct call *c)
{
	CK_OBJECT_HANDLE obj, nobj;
	CK_SESSION_HANDLE h;
	CK_ATTRIBUTE *tmpl;
	CK_ULONG n;
	CK_RV rv;

	if (proto_get_ulong(&c->in, &h) != 0 || proto_get_ulong(&c->in, &obj) != 0 ||
	    proto_get_template(&c->in, c->a, &tmpl, &n) != 0 || proto_cur_end(&c->in) != 0) {
		return BAD;
	}
	if ((rv = authorize(
	             c, h,
	             &(struct authz_args){
	                     .action = "hsm.keys.copy", .obj = obj, .tmpl = tmpl, .ntmpl = n})) !=
	    CKR_OK) {
		return rv;
	}
	if ((rv = part_object_copy(c->t, c->conn, h, obj, tmpl, n, &nobj)) != CKR_OK) {
		return rv;
	}
	return part_rv_encoded(proto_put_ulong(c->out, nobj), rv);
}

static enum part_op_kind
kind_of(unsigned call)
{
	switch (call) {
	case PROTO_CALL_C_EncryptInit:
	case PROTO_CALL_C_Encrypt:
	case PROTO_CALL_C_EncryptUpdate:
	case PROTO_CALL_C_EncryptFinal:
		return PART_OP_ENCRYPT;
	case PROTO_CALL_C_DecryptInit:
	case PROTO_CALL_C_Decrypt:
	case PROTO_CALL_C_DecryptUpdate:
	case PROTO_CALL_C_DecryptFinal:
		return PART_OP_DECRYPT;
	case PROTO_CALL_C_SignInit:
	case PROTO_CALL_C_Sign:
	case PROTO_CALL_C_SignUpdate:
	case PROTO_CALL_C_SignFinal:
		return PART_OP_SIGN;
	case PROTO_CALL_C_SignRecoverInit:
	case PROTO_CALL_C_SignRecover:
		return PART_OP_SIGN_RECOVER;
	case PROTO_CALL_C_VerifyInit:
	case PROTO_CALL_C_Verify:
	case PROTO_CALL_C_VerifyUpdate:
	case PROTO_CALL_C_VerifyFinal:
		return PART_OP_VERIFY;
	case PROTO_CALL_C_VerifyRecoverInit:
	case PROTO_CALL_C_VerifyRecover:
		return PART_OP_VERIFY_RECOVER;
	default:
		return PART_OP_DIGEST;
	}
}

/* C_EncryptInit, C_DecryptInit, C_SignInit, C_SignRecoverInit, C_VerifyInit,
 * C_VerifyRecoverInit: "uMu". */
static CK_RV
h_crypt_init(struct call *c)
{
	CK_SESSION_HANDLE h;
	CK_OBJECT_HANDLE key;
	CK_MECHANISM m;

	if (proto_get_ulong(&c->in, &h) != 0 || proto_get_mechanism(&c->in, c->a, &m) != 0 ||
	    proto_get_ulong(&c->in, &key) != 0 || proto_cur_end(&c->in) != 0) {
		return BAD;
	}
	{
		static const char *const actions[] = {
		        [PART_OP_ENCRYPT] = "hsm.crypto.encrypt",
		        [PART_OP_DECRYPT] = "hsm.crypto.decrypt",
		        [PART_OP_SIGN] = "hsm.crypto.sign",
		        [PART_OP_VERIFY] = "hsm.crypto.verify",
		        [PART_OP_SIGN_RECOVER] = "hsm.crypto.sign",
		        [PART_OP_VERIFY_RECOVER] = "hsm.crypto.verify",
		        [PART_OP_DIGEST] = "hsm.crypto.digest",
		};
		CK_RV rv = authorize(c, h,
		                     &(struct authz_args){.action = actions[kind_of(c->call)],
		                                          .obj = key,
		                                          .m = &m});

		if (rv != CKR_OK) {
			return rv;
		}
	}
	return part_crypt_init(c->t, c->conn, h, kind_of(c->call), &m, key);
}

static void
job_free(struct part_job *pj)
{
	struct worker_job *j = (struct worker_job *)pj;

	OPENSSL_clear_free(j->in, j->inlen);
	OPENSSL_clear_free(j->out, j->outcap);
	free(j);
}

static void
job_run(struct part_task *t)
{
	struct worker_job *j = (struct worker_job *)t;

	j->rv = part_op_oneshot(j->op, j->in, j->inlen, j->has ? j->out : NULL, &j->outlen);
}

/* Back on the loop thread: the operation ends as part_crypt_oneshot would have ended it,
 * and the reply is built as part_worker_handle would have built it. */
static int
job_finish(struct part_job *pj, void *arg, struct proto_buf *frame)
{
	struct worker_job *j = (struct worker_job *)pj;
	struct part_worker *w = arg;
	struct call c = {.out = &w->out};
	int r;

	part_crypt_settle(w->tok, pj->conn, pj->h, j->kind, j->rv, j->has ? j->out : NULL,
	                  &j->outlen);
	proto_buf_reset(&w->out);
	r = part_reply_frame(&w->out, j->call, j->req_id,
	                     put_out(&c, j->rv, j->has ? j->out : NULL, j->outlen), frame);
	proto_buf_reset(&w->out);
	return r;
}

/* Hands the call to the crypto threads if its session's operation is worth it: 1, with
 * c->later set; 0 when it is to be served in line (also when memory is short: the same
 * answer comes in line, only slower). */
static int
offload(struct call *c, CK_SESSION_HANDLE h, const CK_BYTE *in, CK_ULONG inlen, int has,
        CK_ULONG cap)
{
	struct part_worker *w = c->w;
	enum part_op_kind kind = kind_of(c->call);
	struct worker_job *j;
	struct part_op *op;
	CK_ULONG max;

	if (w->later == NULL || (in == NULL && inlen != 0) ||
	    (op = part_crypt_lend(c->t, c->conn, h, kind)) == NULL) {
		return 0;
	}
	if ((j = calloc(1, sizeof(*j))) == NULL) {
		return 0;
	}
	j->base.task.run = job_run;
	j->base.conn = c->conn;
	j->base.h = h;
	j->base.finish = job_finish;
	j->base.free = job_free;
	j->op = op;
	j->kind = kind;
	j->call = c->call;
	j->req_id = c->dec->req_id;
	j->has = has;
	j->inlen = inlen;
	/* An RSA result is at most the modulus: a larger buffer would only hold zeros (a
	 * megabyte each, for a hashing mechanism fed a megabyte). */
	j->outlen = out_len(c, cap, OUT_BOUND(inlen));
	if ((max = part_op_out_max(op)) != 0 && j->outlen > max) {
		j->outlen = max;
	}
	j->outcap = has ? j->outlen : 0;
	if ((j->in = OPENSSL_malloc(inlen != 0 ? inlen : 1)) == NULL ||
	    (has && (j->out = OPENSSL_malloc(j->outcap != 0 ? j->outcap : 1)) == NULL)) {
		job_free(&j->base);
		return 0;
	}
	if (inlen != 0) {
		memcpy(j->in, in, inlen);
	}
	part_later_submit(w->later, w, &j->base);
	c->later = 1;
	return 1;
}

/* C_Encrypt, C_Decrypt, C_Sign, C_SignRecover, C_VerifyRecover: "uyo" → "O". */
static CK_RV
h_crypt_oneshot(struct call *c)
{
	CK_SESSION_HANDLE h;
	const CK_BYTE *in;
	CK_BYTE *buf;
	CK_ULONG inlen, cap, len;
	int has;
	CK_RV rv;

	if (proto_get_ulong(&c->in, &h) != 0 ||
	    proto_get_inbytes(&c->in, &in, &inlen, PROTO_MAX_FRAME_CAP) != 0 ||
	    proto_get_outbuf_req(&c->in, &has, &cap) != 0 || proto_cur_end(&c->in) != 0) {
		return BAD;
	}
	if (offload(c, h, in, inlen, has, cap)) {
		return CKR_OK;
	}
	buf = out_buf(c, has, cap, OUT_BOUND(inlen), &len);
	if (has && buf == NULL) {
		return CKR_DEVICE_MEMORY;
	}
	rv = part_crypt_oneshot(c->t, c->conn, h, kind_of(c->call), in, inlen, buf, &len);
	return put_out(c, rv, buf, len);
}

/* C_EncryptUpdate, C_DecryptUpdate: "uyo" → "O". */
static CK_RV
h_crypt_update_out(struct call *c)
{
	CK_SESSION_HANDLE h;
	const CK_BYTE *in;
	CK_BYTE *buf;
	CK_ULONG inlen, cap, len;
	int has;
	CK_RV rv;

	if (proto_get_ulong(&c->in, &h) != 0 ||
	    proto_get_inbytes(&c->in, &in, &inlen, PROTO_MAX_FRAME_CAP) != 0 ||
	    proto_get_outbuf_req(&c->in, &has, &cap) != 0 || proto_cur_end(&c->in) != 0) {
		return BAD;
	}
	buf = out_buf(c, has, cap, OUT_BOUND(inlen), &len);
	if (has && buf == NULL) {
		return CKR_DEVICE_MEMORY;
	}
	rv = part_crypt_update(c->t, c->conn, h, kind_of(c->call), in, inlen, buf, &len);
	return put_out(c, rv, buf, len);
}

/* C_SignUpdate, C_VerifyUpdate: "uy". */
static CK_RV
h_crypt_update(struct call *c)
{
	CK_SESSION_HANDLE h;
	const CK_BYTE *in;
	CK_ULONG inlen;

	if (proto_get_ulong(&c->in, &h) != 0 ||
	    proto_get_inbytes(&c->in, &in, &inlen, PROTO_MAX_FRAME_CAP) != 0 ||
	    proto_cur_end(&c->in) != 0) {
		return BAD;
	}
	return part_crypt_update(c->t, c->conn, h, kind_of(c->call), in, inlen, NULL, NULL);
}

/* C_EncryptFinal, C_DecryptFinal, C_SignFinal: "uo" → "O". A GCM decryption returns all
 * of its plaintext here, so the bound is the frame. */
static CK_RV
h_crypt_final(struct call *c)
{
	CK_SESSION_HANDLE h;
	CK_BYTE *buf;
	CK_ULONG cap, len;
	int has;
	CK_RV rv;

	if (proto_get_ulong(&c->in, &h) != 0 || proto_get_outbuf_req(&c->in, &has, &cap) != 0 ||
	    proto_cur_end(&c->in) != 0) {
		return BAD;
	}
	buf = out_buf(c, has, cap, c->max_frame, &len);
	if (has && buf == NULL) {
		return CKR_DEVICE_MEMORY;
	}
	rv = part_crypt_final(c->t, c->conn, h, kind_of(c->call), buf, &len);
	return put_out(c, rv, buf, len);
}

static CK_RV
h_verify(struct call *c)
{
	const CK_BYTE *data, *sig;
	CK_ULONG datalen, siglen;
	CK_SESSION_HANDLE h;

	if (proto_get_ulong(&c->in, &h) != 0 ||
	    proto_get_inbytes(&c->in, &data, &datalen, PROTO_MAX_FRAME_CAP) != 0 ||
	    proto_get_inbytes(&c->in, &sig, &siglen, PROTO_MAX_FRAME_CAP) != 0 ||
	    proto_cur_end(&c->in) != 0) {
		return BAD;
	}
	return part_crypt_verify(c->t, c->conn, h, data, datalen, 0, sig, siglen);
}

static CK_RV
h_verify_final(struct call *c)
{
	CK_SESSION_HANDLE h;
	const CK_BYTE *sig;
	CK_ULONG siglen;

	if (proto_get_ulong(&c->in, &h) != 0 ||
	    proto_get_inbytes(&c->in, &sig, &siglen, PROTO_MAX_FRAME_CAP) != 0 ||
	    proto_cur_end(&c->in) != 0) {
		return BAD;
	}
	return part_crypt_verify(c->t, c->conn, h, NULL, 0, 1, sig, siglen);
}

/* The dual-function updates: "uyo" → "O". */
static CK_RV
h_dual(struct call *c)
{
	CK_SESSION_HANDLE h;
	const CK_BYTE *in;
	CK_BYTE *buf;
	CK_ULONG inlen, cap, len;
	int has;
	CK_RV rv;

	if (proto_get_ulong(&c->in, &h) != 0 ||
	    proto_get_inbytes(&c->in, &in, &inlen, PROTO_MAX_FRAME_CAP) != 0 ||
	    proto_get_outbuf_req(&c->in, &has, &cap) != 0 || proto_cur_end(&c->in) != 0) {
		return BAD;
	}
	buf = out_buf(c, has, cap, OUT_BOUND(inlen), &len);
	if (has && buf == NULL) {
		return CKR_DEVICE_MEMORY;
	}
	rv = part_crypt_dual(c->t, c->conn, h, c->call, in, inlen, buf, &len);
	return put_out(c, rv, buf, len);
}

static CK_RV
h_digest_key(struct call *c)
{
	CK_SESSION_HANDLE h;
	CK_OBJECT_HANDLE key;
	CK_RV rv;

	if (proto_get_ulong(&c->in, &h) != 0 || proto_get_ulong(&c->in, &key) != 0 ||
	    proto_cur_end(&c->in) != 0) {
		return BAD;
	}
	if ((rv = authorize(c, h,
	                    &(struct authz_args){.action = "hsm.crypto.digestkey", .obj = key})) !=
	    CKR_OK) {
		return rv;
	}
	return part_digest_key(c->t, c->conn, h, key);
}

static CK_RV
h_generate_key(struct call *c)
{
	CK_SESSION_HANDLE h;
	CK_OBJECT_HANDLE key;
	CK_ATTRIBUTE *tmpl;
	CK_MECHANISM m;
	CK_ULONG n;
	CK_RV rv;

	if (proto_get_ulong(&c->in, &h) != 0 || proto_get_mechanism(&c->in, c->a, &m) != 0 ||
	    proto_get_template(&c->in, c->a, &tmpl, &n) != 0 || proto_cur_end(&c->in) != 0) {
		return BAD;
	}
	if ((rv = authorize(
	             c, h,
	             &(struct authz_args){
	                     .action = "hsm.keys.generate", .m = &m, .tmpl = tmpl, .ntmpl = n})) !=
	    CKR_OK) {
		return rv;
	}
	if ((rv = part_key_gen(c->t, c->conn, h, &m, tmpl, n, &key)) != CKR_OK) {
		return rv;
	}
	return part_rv_encoded(proto_put_ulong(c->out, key), rv);
}

/* The reply fields of C_GenerateKeyPair: the two handles. */
static CK_RV
put_pair(struct proto_buf *out, CK_RV rv, CK_OBJECT_HANDLE pubh, CK_OBJECT_HANDLE privh)
{
	int r;

	if (rv != CKR_OK) {
		return rv;
	}
	if ((r = proto_put_ulong(out, pubh)) != 0 || (r = proto_put_ulong(out, privh)) != 0) {
		return part_rv_encoded(r, rv);
	}
	return rv;
}

static void
pair_free(struct part_job *pj)
{
	struct pair_job *j = (struct pair_job *)pj;

	part_attrs_free(j->gpub);
	part_attrs_free(j->gpriv);
	free(j);
}

static void
pair_run(struct part_task *t)
{
	struct pair_job *j = (struct pair_job *)t;

	j->rv = part_key_generate_pair(&j->m, j->pub, j->npub, j->priv, j->npriv, &j->gpub,
	                               &j->gpriv);
}

/* Back on the loop thread: the halves become objects as part_key_gen_pair would have made
 * them (the checks held: later.c kept back every call that could change them). */
static int
pair_finish(struct part_job *pj, void *arg, struct proto_buf *frame)
{
	struct pair_job *j = (struct pair_job *)pj;
	struct part_worker *w = arg;
	CK_OBJECT_HANDLE pubh = CK_INVALID_HANDLE, privh = CK_INVALID_HANDLE;
	CK_RV rv = j->rv;
	int r;

	if (rv == CKR_OK) {
		rv = part_key_gen_pair_store(w->tok, pj->conn, pj->h, &j->m, j->pub, j->npub,
		                             j->priv, j->npriv, j->gpub, j->gpriv, &pubh, &privh);
	}
	proto_buf_reset(&w->out);
	r = part_reply_frame(&w->out, PROTO_CALL_C_GenerateKeyPair, j->req_id,
	                     put_pair(&w->out, rv, pubh, privh), frame);
	proto_buf_reset(&w->out);
	return r;
}

/* Hands an RSA key pair generation (tens of ms for 2048 bits, seconds for 4096) to the
 * crypto threads, so that the loop thread serves other sessions' calls meanwhile: 1, with
 * c->later set; 0 when it is to be made in line (memory short). The job takes the
 * request's arena, where the mechanism and the templates were decoded. */
static int
offload_pair(struct call *c, CK_SESSION_HANDLE h, const CK_MECHANISM *m, CK_ATTRIBUTE *pub,
             CK_ULONG npub, CK_ATTRIBUTE *priv, CK_ULONG npriv)
{
	struct part_worker *w = c->w;
	struct pair_job *j;

	if (c->a != w->arena || (j = calloc(1, sizeof(*j))) == NULL) {
		return 0;
	}
	if (part_later_take_arena(&j->base, &w->arena) != 0) {
		free(j);
		return 0;
	}
	c->a = w->arena;
	j->base.task.run = pair_run;
	j->base.task.long_run = 1;
	j->base.conn = c->conn;
	j->base.h = h;
	j->base.finish = pair_finish;
	j->base.free = pair_free;
	j->m = *m;
	j->pub = pub;
	j->npub = npub;
	j->priv = priv;
	j->npriv = npriv;
	j->req_id = c->dec->req_id;
	part_later_submit(w->later, w, &j->base);
	c->later = 1;
	return 1;
}

static CK_RV
h_generate_key_pair(struct call *c)
{
	CK_OBJECT_HANDLE pubh, privh;
	CK_ATTRIBUTE *pub, *priv;
	CK_SESSION_HANDLE h;
	CK_ULONG npub, npriv;
	CK_MECHANISM m;
	CK_RV rv;

	if (proto_get_ulong(&c->in, &h) != 0 || proto_get_mechanism(&c->in, c->a, &m) != 0 ||
	    proto_get_template(&c->in, c->a, &pub, &npub) != 0 ||
	    proto_get_template(&c->in, c->a, &priv, &npriv) != 0 || proto_cur_end(&c->in) != 0) {
		return BAD;
	}
	/* The private key's template: extractability and usage live there. */
	if ((rv = authorize(c, h,
	                    &(struct authz_args){.action = "hsm.keys.generatepair",
	                                         .m = &m,
	                                         .tmpl = priv,
	                                         .ntmpl = npriv})) != CKR_OK) {
		return rv;
	}
	if (m.mechanism == CKM_RSA_PKCS_KEY_PAIR_GEN && c->w->later != NULL) {
		if ((rv = part_key_gen_pair_check(c->t, c->conn, h, &m, pub, npub, priv, npriv)) !=
		    CKR_OK) {
			return rv;
		}
		if (offload_pair(c, h, &m, pub, npub, priv, npriv)) {
			return CKR_OK; /* answered by pair_finish */
		}
	}
	rv = part_key_gen_pair(c->t, c->conn, h, &m, pub, npub, priv, npriv, &pubh, &privh);
	return put_pair(c->out, rv, pubh, privh);
}

static CK_RV
h_wrap_key(struct call *c)
{
	CK_OBJECT_HANDLE wrapping, key;
	CK_SESSION_HANDLE h;
	CK_MECHANISM m;
	CK_BYTE *buf;
	CK_ULONG cap, len;
	int has;
	CK_RV rv;

	if (proto_get_ulong(&c->in, &h) != 0 || proto_get_mechanism(&c->in, c->a, &m) != 0 ||
	    proto_get_ulong(&c->in, &wrapping) != 0 || proto_get_ulong(&c->in, &key) != 0 ||
	    proto_get_outbuf_req(&c->in, &has, &cap) != 0 || proto_cur_end(&c->in) != 0) {
		return BAD;
	}
	/* POLICY.md: wrap on the wrapping key and export on the key being wrapped. */
	if ((rv = authorize(c, h,
	                    &(struct authz_args){.action = "hsm.keys.wrap",
	                                         .obj = wrapping,
	                                         .action2 = "hsm.keys.export",
	                                         .obj2 = key,
	                                         .m = &m})) != CKR_OK) {
		return rv;
	}
	/* A wrapped RSA-4096 PKCS #8 key is under 2.5 KiB; 16 KiB is ample. */
	buf = out_buf(c, has, cap, 16384, &len);
	if (has && buf == NULL) {
		return CKR_DEVICE_MEMORY;
	}
	rv = part_key_wrap(c->t, c->conn, h, &m, wrapping, key, buf, &len);
	return put_out(c, rv, buf, len);
}

static CK_RV
h_unwrap_key(struct call *c)
{
	CK_OBJECT_HANDLE unwrapping, key;
	CK_SESSION_HANDLE h;
	const CK_BYTE *wrapped;
	CK_ATTRIBUTE *tmpl;
	CK_ULONG wlen, n;
	CK_MECHANISM m;
	CK_RV rv;

	if (proto_get_ulong(&c->in, &h) != 0 || proto_get_mechanism(&c->in, c->a, &m) != 0 ||
	    proto_get_ulong(&c->in, &unwrapping) != 0 ||
	    proto_get_inbytes(&c->in, &wrapped, &wlen, PROTO_MAX_FRAME_CAP) != 0 ||
	    proto_get_template(&c->in, c->a, &tmpl, &n) != 0 || proto_cur_end(&c->in) != 0) {
		return BAD;
	}
	/* POLICY.md: unwrap on the unwrapping key and import on the partition. */
	if ((rv = authorize(c, h,
	                    &(struct authz_args){.action = "hsm.keys.unwrap",
	                                         .obj = unwrapping,
	                                         .action2 = "hsm.keys.import",
	                                         .m = &m,
	                                         .tmpl = tmpl,
	                                         .ntmpl = n})) != CKR_OK) {
		return rv;
	}
	rv = part_key_unwrap(c->t, c->conn, h, &m, unwrapping, wrapped, wlen, tmpl, n, &key);
	if (rv != CKR_OK) {
		return rv;
	}
	return part_rv_encoded(proto_put_ulong(c->out, key), rv);
}

static CK_RV
h_derive_key(struct call *c)
{
	CK_OBJECT_HANDLE base, key;
	CK_SESSION_HANDLE h;
	CK_ATTRIBUTE *tmpl;
	CK_MECHANISM m;
	CK_ULONG n;
	CK_RV rv;

	if (proto_get_ulong(&c->in, &h) != 0 || proto_get_mechanism(&c->in, c->a, &m) != 0 ||
	    proto_get_ulong(&c->in, &base) != 0 ||
	    proto_get_template(&c->in, c->a, &tmpl, &n) != 0 || proto_cur_end(&c->in) != 0) {
		return BAD;
	}
	if ((rv = authorize(c, h,
	                    &(struct authz_args){.action = "hsm.keys.derive",
	                                         .obj = base,
	                                         .m = &m,
	                                         .tmpl = tmpl,
	                                         .ntmpl = n})) != CKR_OK) {
		return rv;
	}
	if ((rv = part_key_derive(c->t, c->conn, h, &m, base, tmpl, n, &key)) != CKR_OK) {
		return rv;
	}
	return part_rv_encoded(proto_put_ulong(c->out, key), rv);
}

/* ---- the table -------------------------------------------------------------------------- */

#define H(fn, h) [PROTO_CALL_##fn] = h

/* NULL: CKR_FUNCTION_NOT_SUPPORTED — C_GetOperationState and C_SetOperationState only
 * (docs/PKCS11.md says why); C_Initialize and the like never reach a worker. */
static handler_fn *const handlers[PROTO_CALL_COUNT] = {
        H(C_GetSlotInfo, h_get_slot_info),
        H(C_GetTokenInfo, h_get_token_info),
        H(C_GetMechanismList, h_get_mechanism_list),
        H(C_GetMechanismInfo, h_get_mechanism_info),
        H(C_InitToken, h_init_token),
        H(C_InitPIN, h_init_pin),
        H(C_SetPIN, h_set_pin),
        H(C_OpenSession, h_open_session),
        H(C_CloseSession, h_close_session),
        H(C_CloseAllSessions, h_close_all_sessions),
        H(C_GetSessionInfo, h_get_session_info),
        H(C_Login, h_login),
        H(C_Logout, h_logout),
        H(C_CreateObject, h_create_object),
        H(C_CopyObject, h_copy_object),
        H(C_DestroyObject, h_destroy_object),
        H(C_GetObjectSize, h_get_object_size),
        H(C_GetAttributeValue, h_get_attribute_value),
        H(C_SetAttributeValue, h_set_attribute_value),
        H(C_FindObjectsInit, h_find_objects_init),
        H(C_FindObjects, h_find_objects),
        H(C_FindObjectsFinal, h_find_objects_final),
        H(C_DigestInit, h_digest_init),
        H(C_Digest, h_digest),
        H(C_DigestUpdate, h_digest_update),
        H(C_DigestKey, h_digest_key),
        H(C_DigestFinal, h_digest_final),
        H(C_EncryptInit, h_crypt_init),
        H(C_Encrypt, h_crypt_oneshot),
        H(C_EncryptUpdate, h_crypt_update_out),
        H(C_EncryptFinal, h_crypt_final),
        H(C_DecryptInit, h_crypt_init),
        H(C_Decrypt, h_crypt_oneshot),
        H(C_DecryptUpdate, h_crypt_update_out),
        H(C_DecryptFinal, h_crypt_final),
        H(C_SignInit, h_crypt_init),
        H(C_Sign, h_crypt_oneshot),
        H(C_SignUpdate, h_crypt_update),
        H(C_SignFinal, h_crypt_final),
        H(C_SignRecoverInit, h_crypt_init),
        H(C_SignRecover, h_crypt_oneshot),
        H(C_VerifyInit, h_crypt_init),
        H(C_Verify, h_verify),
        H(C_VerifyUpdate, h_crypt_update),
        H(C_VerifyFinal, h_verify_final),
        H(C_VerifyRecoverInit, h_crypt_init),
        H(C_VerifyRecover, h_crypt_oneshot),
        H(C_DigestEncryptUpdate, h_dual),
        H(C_DecryptDigestUpdate, h_dual),
        H(C_SignEncryptUpdate, h_dual),
        H(C_DecryptVerifyUpdate, h_dual),
        H(C_GenerateKey, h_generate_key),
        H(C_GenerateKeyPair, h_generate_key_pair),
        H(C_WrapKey, h_wrap_key),
        H(C_UnwrapKey, h_unwrap_key),
        H(C_DeriveKey, h_derive_key),
        H(C_SeedRandom, h_seed_random),
        H(C_GenerateRandom, h_generate_random),
        H(C_GetFunctionStatus, h_function_not_parallel),
        H(C_CancelFunction, h_function_not_parallel),
};

/* ---- the worker ------------------------------------------------------------------------- */

int
part_worker_open(const struct part_worker_opts *o, struct part_worker **out)
{
	struct part_worker *w = NULL;
	int r;

	*out = NULL;
	if (o == NULL ||
	    (o->max_frame != 0 && (o->max_frame < 4096 || o->max_frame > PROTO_MAX_FRAME_CAP))) {
		return PART_ERR_INVALID;
	}
	if ((w = calloc(1, sizeof(*w))) == NULL) {
		return PART_ERR_NOMEM;
	}
	w->max_frame = o->max_frame != 0 ? o->max_frame : PROTO_MAX_FRAME_DEFAULT;
	proto_buf_init(&w->out);
	/* Response fields never exceed a frame: the header and the CK_RV take the rest. */
	w->out.max = w->max_frame - PROTO_HDR_BYTES - 8;
	if ((w->arena = proto_arena_new()) == NULL) {
		r = PART_ERR_NOMEM;
		goto out;
	}
	if ((r = part_token_open(o, &w->tok)) != 0) {
		goto out;
	}
	if (part_authz_new(o->tenant != NULL ? o->tenant : "", o->partition, &w->authz) != 0) {
		r = PART_ERR_NOMEM;
		goto out;
	}
	*out = w;
	w = NULL; /* transferred */
	r = 0;
out:
	part_worker_free(w);
	return r;
}

void
part_worker_free(struct part_worker *w)
{
	if (w == NULL) {
		return;
	}
	part_later_free(w->later, w); /* finishing a job needs the token */
	part_token_free(w->tok);
	part_authz_free(w->authz);
	proto_arena_free(w->arena);
	proto_buf_free(&w->out);
	free(w);
}

uint32_t
part_worker_max_frame(const struct part_worker *w)
{
	return w->max_frame;
}

void
part_worker_conn_closed(struct part_worker *w, uint64_t conn_id)
{
	/* Its sessions may be lent out. Another connection's jobs cannot see its sessions or
	 * their objects (an application's session objects are its own), so they go on. */
	if (part_later_conn_busy(w->later, conn_id)) {
		part_later_settle(w->later, w);
	}
	part_session_drop_conn(w->tok, conn_id);
}

int
part_worker_threads(struct part_worker *w, unsigned n)
{
	part_later_free(w->later, w);
	w->later = NULL;
	if (n > PART_THREADS_MAX) {
		return PART_ERR_INVALID;
	}
	/* The loop thread is one of the n: it runs RSA calls itself when it has nothing to read. */
	return part_later_new(n <= 1 ? 0 : n - 1, &w->later);
}

int
part_worker_flush(struct part_worker *w, struct proto_buf *out, int all)
{
	return part_later_flush(w->later, w, out, all);
}

struct part_later *
part_worker_later(const struct part_worker *w)
{
	return w->later;
}

int
part_worker_handle(struct part_worker *w, uint64_t conn_id, const struct proto_ctx *ctx,
                   const uint8_t *frame, size_t len, struct proto_buf *reply)
{
	struct proto_hdr hdr;
	struct call c;
	handler_fn *fn;
	CK_RV rv;
	int r;

	if (proto_hdr_decode(frame, len, w->max_frame, &hdr) != 0 ||
	    hdr.type != PROTO_MSG_REQUEST || (size_t)PROTO_HDR_BYTES + hdr.body_len != len) {
		return PART_ERR_IPC;
	}
	if (part_later_may_overlap(w->later, conn_id, hdr.call, frame + PROTO_HDR_BYTES,
	                           hdr.body_len, PROTO_CF_SHARED) != PART_OVERLAP_GO) {
		part_later_settle(w->later, w);
	}
	memset(&c, 0, sizeof(c));
	c.t = w->tok;
	c.conn = conn_id;
	c.ctx = ctx;
	c.a = w->arena;
	c.out = &w->out;
	c.max_frame = w->max_frame;
	c.call = hdr.call;
	c.authz = w->authz;
	w->decision.made = 0;
	w->decision.req_id = hdr.req_id;
	c.dec = &w->decision;
	c.w = w;
	proto_cur_init(&c.in, frame + PROTO_HDR_BYTES, hdr.body_len);
	proto_buf_reset(&w->out);
	fn = hdr.call < PROTO_CALL_COUNT ? handlers[hdr.call] : NULL;
	rv = fn != NULL ? fn(&c) : CKR_FUNCTION_NOT_SUPPORTED;
	/* A call handed over has no reply yet; the IPC loop sends its policy decision now (if
	 * it made one: a one-shot call's init made it), and its reply when it ends. */
	r = c.later ? PART_LATER : part_reply_frame(&w->out, hdr.call, hdr.req_id, rv, reply);
	/* Both may hold secrets (attribute values, random bytes): wiped before reuse. */
	proto_buf_reset(&w->out);
	proto_arena_reset(w->arena);
	return r;
}

int
part_worker_set_policy(struct part_worker *w, const uint8_t *text, size_t len)
{
	char err[512];

	if (part_authz_set_policy(w->authz, (const char *)text, len, "policy (from the gateway)",
	                          err, sizeof(err)) != 0) {
		fprintf(stderr,
		        "level=error component=worker msg=\"policy refused; the previous one stays "
		        "in force\" partition=%s error=\"%s\"\n",
		        w->tok->partition, err);
		return PART_ERR_INVALID;
	}
	return 0;
}

int
part_worker_decision(struct part_worker *w, struct proto_buf *body)
{
	const struct part_authz_result *res = &w->decision.res;
	uint8_t result;
	int r;

	if (!w->decision.made) {
		return 0;
	}
	w->decision.made = 0;
	result = strcmp(res->result, "allowed") == 0         ? 2
	         : strcmp(res->result, "explicit_deny") == 0 ? 1
	                                                     : 0;
	if ((r = proto_put_u32(body, w->decision.req_id)) != 0 ||
	    (r = proto_put_string(body, res->action)) != 0 ||
	    (r = proto_put_u8(body, result)) != 0 || (r = proto_put_string(body, res->sids)) != 0 ||
	    (r = proto_put_string(body, w->decision.ref)) != 0) {
		return PART_ERR_NOMEM;
	}
	return 1;
}
