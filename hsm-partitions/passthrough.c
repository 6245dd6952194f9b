/*
 * hsm-partitions/passthrough.c — the `backend: pkcs11` partition: the worker dlopens a
 * vendor PKCS #11 module (a real HSM partition's library, or SoftHSMv2) and forwards every
 * call it receives to the token whose label the config names, so that hsmgate fronts it
 * with its own transport, authentication (and, when they land, policy and audit).
 *
 * Same input and output as the soft worker (part_worker_handle): one client request frame
 * in, one reply frame out, decoded and encoded with proto/ by the call's layout; it runs on
 * the same IPC loop (part_ipc_serve).
 *
 * Handles.
 *   - Slot: the client sees our slot id (the gateway routes by it); the vendor's slot id is
 *     never shown. C_GetSessionInfo answers with our slot id.
 *   - Sessions: the client sees proto_session_make(our slot, n), because the gateway routes
 *     session calls by the handle's top byte; a table maps (connection, n) to the vendor's
 *     handle. A session belongs to the client connection that opened it: another
 *     connection's handle is CKR_SESSION_HANDLE_INVALID, and PROTO_IPC_CONN_CLOSED closes
 *     the connection's sessions at the vendor.
 *   - Objects: the vendor's handles pass through unchanged. They are stable for the life
 *     of the vendor session state and need no table; the consequence is that the vendor
 *     sees one application, so a session object created by one connection can be named by
 *     another connection of the same partition (all are the same tenant's authenticated
 *     principals). The key-level policy is the guard for that, as for everything below.
 *
 * Login. A PKCS #11 module has one login state per application (v2.40 §5.6: "all sessions
 * of an application share the same login state"), and this worker process is one
 * application to the vendor: all connections of the partition share the vendor login.
 * Consequences, and what we do about them:
 *   - While any connection is logged in, every connection's sessions have the vendor's
 *     logged-in rights (private objects, private keys). We keep PKCS #11's bookkeeping per
 *     connection (C_Login twice is CKR_USER_ALREADY_LOGGED_IN, C_Logout without a login is
 *     CKR_USER_NOT_LOGGED_IN, C_GetSessionInfo shows a public state to a connection that
 *     has not logged in), and the vendor is logged out as soon as no connection is.
 *   - A second connection's C_Login gets CKR_USER_ALREADY_LOGGED_IN from the vendor. It is
 *     not waved through: the PIN that logged the vendor in is kept as a salted hash (in
 *     memory only), and the second login succeeds only with the same user type and a PIN
 *     that matches (else CKR_PIN_INCORRECT, or CKR_USER_ANOTHER_ALREADY_LOGGED_IN for the
 *     other user type). CKU_CONTEXT_SPECIFIC goes straight to the vendor.
 *
 * Mechanisms: parameters travel typed where proto/ knows the mechanism and as opaque bytes
 * otherwise; opaque bytes of vendor mechanisms are forwarded unchanged, since only the
 * vendor knows their meaning. The mechanism allow-list of a passthrough partition is the
 * vendor's; the key-level policy (a later issue) will be the guard.
 */
#include "hsm-partitions/part_int.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#define PIN_WIRE_MAX PROTO_MAX_STRING
#define FIND_MAX     1024
#define PT_PIN_ITER  1000 /* an in-memory comparison only, never stored */
#define BAD          CKR_ARGUMENTS_BAD

struct pt_session {
	struct pt_session *next;
	uint32_t n; /* the client's handle is proto_session_make(slot, n) */
	uint64_t conn;
	CK_SESSION_HANDLE vh; /* the vendor's */
	CK_FLAGS flags;
};

struct pt_conn {
	struct pt_conn *next;
	uint64_t id;
	CK_USER_TYPE user; /* PART_USER_NONE, CKU_SO or CKU_USER: this connection's login */
};

struct part_pt {
	void *dl;
	CK_FUNCTION_LIST_PTR f;
	int initialized;
	CK_SLOT_ID vslot; /* the vendor's slot of the token */
	CK_SLOT_ID slot;  /* ours */
	uint32_t max_frame;
	struct proto_arena *arena;
	struct proto_buf out;
	struct pt_session *sessions;
	unsigned nsessions;
	uint32_t next_n;
	struct pt_conn *conns;
	CK_USER_TYPE vuser;       /* the vendor's login: PART_USER_NONE, CKU_SO or CKU_USER */
	struct part_pin pin;      /* hash of the PIN that logged the vendor in */
	struct part_later *later; /* threads calling the vendor (part_pt_threads); NULL: none */
};

struct call {
	struct part_pt *p;
	CK_FUNCTION_LIST_PTR f;
	uint64_t conn;
	struct proto_cur in;
	struct proto_arena *a;
	struct proto_buf *out;
	unsigned call;
	uint32_t req_id;
	int later; /* handed to a thread (job_submit): no reply now */
};

/*
 * A call on a session's cryptographic operation made to the vendor from another thread
 * (later.c): a one-shot call, an update or a final. The vendor's own time (a network HSM's
 * round trip, its cryptography) no longer holds up the partition's other sessions. PKCS #11
 * allows calls on different sessions from different threads of a module initialised with
 * CKF_OS_LOCKING_OK (part_pt_open); later.c keeps the calls of one session in order. The
 * input is a copy: the IPC buffer is wiped and reused before the call runs. One of the five
 * function pointers is set, after the shape of the call.
 */
struct pt_job {
	struct part_job base; /* first */
	CK_SESSION_HANDLE vh;
	CK_RV (*fn)(CK_SESSION_HANDLE, CK_BYTE_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG_PTR);
	CK_RV (*verify)(CK_SESSION_HANDLE, CK_BYTE_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG);
	CK_RV (*fn_in)(CK_SESSION_HANDLE, CK_BYTE_PTR, CK_ULONG);      /* updates */
	CK_RV (*fn_out)(CK_SESSION_HANDLE, CK_BYTE_PTR, CK_ULONG_PTR); /* finals */
	CK_RV (*fn_rand)(CK_SESSION_HANDLE, CK_BYTE_PTR, CK_ULONG);    /* C_GenerateRandom */
	unsigned call;
	uint32_t req_id;
	uint8_t *in, *in2, *out; /* OPENSSL_clear_free */
	CK_ULONG inlen, in2len, cap, len;
	int has;
	CK_RV rv;
};

static int pt_handle(void *arg, uint64_t conn, const struct proto_ctx *ctx, const uint8_t *frame,
                     size_t len, struct proto_buf *reply);

/* ---- sessions and connections ----------------------------------------------------------- */

static struct pt_session *
sess_find(struct part_pt *p, uint64_t conn, CK_SESSION_HANDLE h)
{
	struct pt_session *s;

	if (proto_session_slot(h) != p->slot) {
		return NULL;
	}
	for (s = p->sessions; s != NULL; s = s->next) {
		if (s->conn == conn && proto_session_make(p->slot, s->n) == h) {
			return s;
		}
	}
	return NULL;
}

static struct pt_conn *
conn_find(struct part_pt *p, uint64_t id, int create)
{
	struct pt_conn *c;

	for (c = p->conns; c != NULL; c = c->next) {
		if (c->id == id) {
			return c;
		}
	}
	if (!create || (c = calloc(1, sizeof(*c))) == NULL) {
		return NULL;
	}
	c->id = id;
	c->user = PART_USER_NONE;
	c->next = p->conns;
	p->conns = c;
	return c;
}

static void
vendor_forget_login(struct part_pt *p)
{
	p->vuser = PART_USER_NONE;
	OPENSSL_cleanse(&p->pin, sizeof(p->pin));
}

/* After sessions closed or a connection logged out: a connection without sessions is not
 * logged in (v2.40 §5.6 C_CloseSession: closing the last session logs the application
 * out), and the vendor stays logged in only while some connection is. */
static void
login_sync(struct part_pt *p)
{
	struct pt_conn *c, **pc;
	struct pt_session *s;
	int any = 0;

	for (pc = &p->conns; (c = *pc) != NULL;) {
		for (s = p->sessions; s != NULL && s->conn != c->id; s = s->next) {
		}
		if (s == NULL) {
			*pc = c->next;
			free(c);
			continue;
		}
		any |= c->user != PART_USER_NONE;
		pc = &c->next;
	}
	if (any || p->vuser == PART_USER_NONE) {
		return;
	}
	if (p->sessions != NULL) {
		(void)p->f->C_Logout(p->sessions->vh);
	}
	/* No session left: the vendor logged itself out with the last one. */
	vendor_forget_login(p);
}

static void
sess_close(struct part_pt *p, struct pt_session *s)
{
	struct pt_session **ps;

	for (ps = &p->sessions; *ps != NULL; ps = &(*ps)->next) {
		if (*ps == s) {
			*ps = s->next;
			break;
		}
	}
	(void)p->f->C_CloseSession(s->vh);
	p->nsessions--;
	free(s);
}

static void
conn_close_all(struct part_pt *p, uint64_t conn)
{
	struct pt_session *s, *next;

	for (s = p->sessions; s != NULL; s = next) {
		next = s->next;
		if (s->conn == conn) {
			sess_close(p, s);
		}
	}
	login_sync(p);
}

/* ---- helpers ---------------------------------------------------------------------------- */

/* The vendor handle of the client's session `h`, or CKR_SESSION_HANDLE_INVALID. */
static CK_RV
vs(struct call *c, CK_SESSION_HANDLE h, CK_SESSION_HANDLE *vh)
{
	struct pt_session *s = sess_find(c->p, c->conn, h);

	if (s == NULL) {
		return CKR_SESSION_HANDLE_INVALID;
	}
	*vh = s->vh;
	return CKR_OK;
}

/* The largest output the reply can carry. */
static CK_ULONG
out_cap(struct call *c, CK_ULONG cap)
{
	CK_ULONG max = c->p->max_frame - 1024;

	return cap > max ? max : cap;
}

/* An output buffer of the asked capacity (NULL when the client sent none). */
static CK_RV
out_buf(struct call *c, int has, CK_ULONG *cap, CK_BYTE **buf)
{
	*buf = NULL;
	if (!has) {
		*cap = 0;
		return CKR_OK;
	}
	*cap = out_cap(c, *cap);
	if ((*buf = proto_arena_alloc(c->a, *cap != 0 ? *cap : 1)) == NULL) {
		return CKR_DEVICE_MEMORY;
	}
	return CKR_OK;
}

/* The reply of an output-buffer call ('O'), with the vendor's rv and length. */
static CK_RV
put_out(struct call *c, CK_RV rv, const CK_BYTE *buf, CK_ULONG cap, CK_ULONG len)
{
	if (rv == CKR_OK && buf != NULL) {
		if (len > cap) {
			return CKR_GENERAL_ERROR; /* the vendor wrote past the buffer it was given
			                           */
		}
		return part_rv_encoded(proto_put_outbuf_reply(c->out, buf, len), rv);
	}
	if (rv == CKR_OK || rv == CKR_BUFFER_TOO_SMALL) {
		return part_rv_encoded(proto_put_outbuf_reply(c->out, NULL, len), rv);
	}
	return rv;
}

static void
job_free(struct part_job *pj)
{
	struct pt_job *j = (struct pt_job *)pj;

	OPENSSL_clear_free(j->in, j->inlen);
	OPENSSL_clear_free(j->in2, j->in2len);
	OPENSSL_clear_free(j->out, j->cap);
	free(j);
}

static void
job_run(struct part_task *t)
{
	struct pt_job *j = (struct pt_job *)t;

	j->len = j->cap;
	if (j->verify != NULL) {
		j->rv = j->verify(j->vh, j->in, j->inlen, j->in2, j->in2len);
	} else if (j->fn_in != NULL) {
		j->rv = j->fn_in(j->vh, j->in, j->inlen);
	} else if (j->fn_out != NULL) {
		j->rv = j->fn_out(j->vh, j->has ? j->out : NULL, &j->len);
	} else if (j->fn_rand != NULL) {
		j->rv = j->fn_rand(j->vh, j->out, j->cap);
	} else {
		j->rv = j->fn(j->vh, j->in, j->inlen, j->has ? j->out : NULL, &j->len);
	}
}

/* Back on the loop thread: the reply part_pt_handle would have built. */
static int
job_finish(struct part_job *pj, void *arg, struct proto_buf *frame)
{
	struct pt_job *j = (struct pt_job *)pj;
	struct part_pt *p = arg;
	struct call c = {.p = p, .out = &p->out};
	CK_RV rv = j->rv;
	int r;

	proto_buf_reset(&p->out);
	if (j->fn != NULL || j->fn_out != NULL || j->fn_rand != NULL) {
		rv = put_out(&c, j->rv, j->has ? j->out : NULL, j->cap, j->len);
	}
	r = part_reply_frame(&p->out, j->call, j->req_id, rv, frame);
	proto_buf_reset(&p->out);
	return r;
}

/* What every job for the vendor-calling threads starts with, for the call c on the client's
 * session h. A vendor call may take as long as the vendor likes (a network HSM's round trip,
 * a latch in a test): long_run, so that an idle loop thread never runs one itself, or it
 * would hold up every other session meanwhile. */
static void
job_base(const struct call *c, struct part_job *b, CK_SESSION_HANDLE h,
         void (*run)(struct part_task *),
         int (*finish)(struct part_job *, void *, struct proto_buf *),
         void (*free_fn)(struct part_job *))
{
	b->task.run = run;
	b->task.long_run = 1;
	b->conn = c->conn;
	b->h = h;
	b->finish = finish;
	b->free = free_fn;
}

/* Hands the job over: its reply comes when it has run (c->later). */
static CK_RV
job_submit(struct call *c, struct part_job *b)
{
	part_later_submit(c->p->later, c->p, b);
	c->later = 1;
	return CKR_OK;
}

/* A job for the vendor-calling threads with copies of the input (in2: C_Verify's
 * signature) and an output buffer when the client sent one; NULL to call the vendor in line
 * (no threads, or no memory for the copies: the same answer, slower). The caller sets one
 * of its functions and hands it over with job_submit(). */
static struct pt_job *
job_new(struct call *c, CK_SESSION_HANDLE h, CK_SESSION_HANDLE vh, const CK_BYTE *in,
        CK_ULONG inlen, const CK_BYTE *in2, CK_ULONG in2len, int has, CK_ULONG cap)
{
	struct pt_job *j;

	if (c->p->later == NULL || (j = calloc(1, sizeof(*j))) == NULL) {
		return NULL;
	}
	job_base(c, &j->base, h, job_run, job_finish, job_free);
	j->vh = vh;
	j->call = c->call;
	j->req_id = c->req_id;
	j->has = has;
	j->inlen = inlen;
	j->in2len = in2len;
	j->cap = has ? out_cap(c, cap) : 0;
	if ((in != NULL && (j->in = OPENSSL_malloc(inlen != 0 ? inlen : 1)) == NULL) ||
	    (in2 != NULL && (j->in2 = OPENSSL_malloc(in2len != 0 ? in2len : 1)) == NULL) ||
	    (has && (j->out = OPENSSL_malloc(j->cap != 0 ? j->cap : 1)) == NULL)) {
		job_free(&j->base);
		return NULL;
	}
	if (inlen != 0) {
		memcpy(j->in, in, inlen);
	}
	if (in2len != 0) {
		memcpy(j->in2, in2, in2len);
	}
	return j;
}

/* Whether this call goes to the vendor-calling threads: a one-shot call or a part of a
 * multi-part operation (an update, a final), never one that begins or ends a session. */
static int
later_call(const struct call *c)
{
	return (proto_call_get(c->call)->flags & (PROTO_CF_OP_ONESHOT | PROTO_CF_OP_PART)) != 0;
}

static CK_RV
slot_ok(struct call *c, CK_SLOT_ID slot)
{
	return slot == c->p->slot ? CKR_OK : CKR_SLOT_ID_INVALID;
}

#define GET_U(v)    (proto_get_ulong(&c->in, &(v)) == 0)
#define GET_Y(p, n) (proto_get_inbytes(&c->in, &(p), &(n), PROTO_MAX_FRAME_CAP) == 0)
#define GET_O(h, n) (proto_get_outbuf_req(&c->in, &(h), &(n)) == 0)
#define GET_L(h, n) (proto_get_ulongs_req(&c->in, &(h), &(n)) == 0)
#define GET_M(m)    (proto_get_mechanism(&c->in, c->a, &(m)) == 0)
#define GET_A(t, n) (proto_get_template(&c->in, c->a, &(t), &(n)) == 0)
#define END         (proto_cur_end(&c->in) == 0)

/* ---- calls whose inputs live in the request's arena, on the vendor-calling threads ------ */

/* A call made from another thread whose inputs were decoded into the request's arena (a
 * mechanism's parameter, templates, a buffer for handles): a key generation, an init, or a
 * read of objects (C_GetAttributeValue, C_GetObjectSize, the C_FindObjects calls), each of
 * which a network HSM answers after a round trip. */
struct pt_arena_job {
	struct part_job base; /* first; base.arena holds what the pointers below point into */
	CK_FUNCTION_LIST *f;
	CK_SESSION_HANDLE vh;
	CK_MECHANISM m;
	CK_ATTRIBUTE *pt, *st; /* st NULL: C_GenerateKey */
	CK_ULONG pn, sn;
	/* An init: C_EncryptInit ... with its key, or (init NULL) C_DigestInit. */
	CK_RV (*init)(CK_SESSION_HANDLE, CK_MECHANISM_PTR, CK_OBJECT_HANDLE);
	CK_OBJECT_HANDLE obj;      /* an init's key; the object read */
	CK_OBJECT_HANDLE *handles; /* C_FindObjects: cap of them */
	CK_ULONG cap, count;       /* and how many came */
	CK_ULONG size;             /* C_GetObjectSize */
	unsigned call;
	uint32_t req_id;
	CK_OBJECT_HANDLE key, pub, priv;
	CK_RV rv;
};

/* The reply fields of C_GenerateKey (key) or C_GenerateKeyPair (pub, priv). */
static CK_RV
put_keys(struct proto_buf *out, CK_RV rv, unsigned call, CK_OBJECT_HANDLE key, CK_OBJECT_HANDLE pub,
         CK_OBJECT_HANDLE priv)
{
	int r;

	if (rv != CKR_OK) {
		return rv;
	}
	if (call == PROTO_CALL_C_GenerateKey) {
		return part_rv_encoded(proto_put_ulong(out, key), rv);
	}
	if ((r = proto_put_ulong(out, pub)) == 0) {
		r = proto_put_ulong(out, priv);
	}
	return part_rv_encoded(r, rv);
}

/* The reply fields of C_GetAttributeValue: the template as the vendor filled it, also for
 * the CK_RVs that still carry it (CKR_ATTRIBUTE_SENSITIVE ...). */
static CK_RV
put_attrs(struct proto_buf *out, CK_RV rv, const CK_ATTRIBUTE *t, CK_ULONG n)
{
	if (!proto_reply_has_fields(PROTO_CALL_C_GetAttributeValue, rv)) {
		return rv;
	}
	return part_rv_encoded(proto_put_attrreply(out, t, n), rv);
}

/* The reply field of C_GetObjectSize. */
static CK_RV
put_size(struct proto_buf *out, CK_RV rv, CK_ULONG size)
{
	if (rv != CKR_OK) {
		return rv;
	}
	return part_rv_encoded(proto_put_ulong(out, size), rv);
}

/* The reply fields of C_FindObjects: the handles found. */
static CK_RV
put_found(struct proto_buf *out, CK_RV rv, const CK_OBJECT_HANDLE *handles, CK_ULONG count,
          CK_ULONG cap)
{
	if (rv != CKR_OK) {
		return rv;
	}
	if (count > cap) {
		return CKR_GENERAL_ERROR; /* a vendor that wrote past what it was given */
	}
	return part_rv_encoded(proto_put_ulongs_reply(out, handles, count), rv);
}

static void
arena_free(struct part_job *pj)
{
	free(pj);
}

static void
arena_run(struct part_task *t)
{
	struct pt_arena_job *j = (struct pt_arena_job *)t;
	CK_FUNCTION_LIST *f = j->f;

	switch (j->call) {
	case PROTO_CALL_C_GenerateKey:
		j->rv = f->C_GenerateKey(j->vh, &j->m, j->pt, j->pn, &j->key);
		break;
	case PROTO_CALL_C_GenerateKeyPair:
		j->rv = f->C_GenerateKeyPair(j->vh, &j->m, j->pt, j->pn, j->st, j->sn, &j->pub,
		                             &j->priv);
		break;
	case PROTO_CALL_C_GetAttributeValue:
		j->rv = f->C_GetAttributeValue(j->vh, j->obj, j->pt, j->pn);
		break;
	case PROTO_CALL_C_GetObjectSize:
		j->rv = f->C_GetObjectSize(j->vh, j->obj, &j->size);
		break;
	case PROTO_CALL_C_FindObjectsInit:
		j->rv = f->C_FindObjectsInit(j->vh, j->pt, j->pn);
		break;
	case PROTO_CALL_C_FindObjects:
		j->rv = f->C_FindObjects(j->vh, j->handles, j->cap, &j->count);
		break;
	case PROTO_CALL_C_FindObjectsFinal:
		j->rv = f->C_FindObjectsFinal(j->vh);
		break;
	case PROTO_CALL_C_DigestInit:
		j->rv = f->C_DigestInit(j->vh, &j->m);
		break;
	default:
		j->rv = j->init(j->vh, &j->m, j->obj); /* the other inits */
		break;
	}
}

/* Back on the loop thread: the reply the in-line call would have built. */
static int
arena_finish(struct part_job *pj, void *arg, struct proto_buf *frame)
{
	struct pt_arena_job *j = (struct pt_arena_job *)pj;
	struct part_pt *p = arg;
	CK_RV rv = j->rv;
	int r;

	proto_buf_reset(&p->out);
	switch (j->call) {
	case PROTO_CALL_C_GenerateKey:
	case PROTO_CALL_C_GenerateKeyPair:
		rv = put_keys(&p->out, j->rv, j->call, j->key, j->pub, j->priv);
		break;
	case PROTO_CALL_C_GetAttributeValue:
		rv = put_attrs(&p->out, j->rv, j->pt, j->pn);
		break;
	case PROTO_CALL_C_GetObjectSize:
		rv = put_size(&p->out, j->rv, j->size);
		break;
	case PROTO_CALL_C_FindObjects:
		rv = put_found(&p->out, j->rv, j->handles, j->count, j->cap);
		break;
	default:
		break; /* the inits, C_FindObjectsInit and C_FindObjectsFinal: no reply fields */
	}
	r = part_reply_frame(&p->out, j->call, j->req_id, rv, frame);
	/* Attribute values may be secret (a key's CKA_VALUE when the vendor allows it). */
	proto_buf_reset(&p->out);
	return r;
}

/* A job for the vendor-calling threads for the call c on session h, taking the request's
 * arena (which holds what was decoded: a mechanism's parameter, templates, buffers); the
 * caller sets what the call needs and hands it over with job_submit(). NULL to call the
 * vendor in line (no threads, no memory). */
static struct pt_arena_job *
arena_job(struct call *c, CK_SESSION_HANDLE h, CK_SESSION_HANDLE vh)
{
	struct pt_arena_job *j;

	if (c->p->later == NULL || c->a != c->p->arena || (j = calloc(1, sizeof(*j))) == NULL) {
		return NULL;
	}
	if (part_later_take_arena(&j->base, &c->p->arena) != 0) {
		free(j);
		return NULL;
	}
	c->a = c->p->arena;
	job_base(c, &j->base, h, arena_run, arena_finish, arena_free);
	j->f = c->f;
	j->vh = vh;
	j->call = c->call;
	j->req_id = c->req_id;
	return j;
}

/* The same for a call with mechanism m (a key generation, an init). */
static struct pt_arena_job *
mech_job(struct call *c, CK_SESSION_HANDLE h, CK_SESSION_HANDLE vh, const CK_MECHANISM *m)
{
	struct pt_arena_job *j = arena_job(c, h, vh);

	if (j != NULL) {
		j->m = *m;
	}
	return j;
}

/* ---- slot and token --------------------------------------------------------------------- */

static CK_RV
h_get_slot_info(struct call *c)
{
	CK_SLOT_INFO info = {0}; /* see h_get_mechanism_info */
	CK_SLOT_ID slot;
	CK_RV rv;

	if (!GET_U(slot) || !END) {
		return BAD;
	}
	if ((rv = slot_ok(c, slot)) != CKR_OK ||
	    (rv = c->f->C_GetSlotInfo(c->p->vslot, &info)) != CKR_OK) {
		return rv;
	}
	return part_rv_encoded(proto_put_slot_info(c->out, &info), rv);
}

static CK_RV
h_get_token_info(struct call *c)
{
	CK_TOKEN_INFO info = {0}; /* see h_get_mechanism_info */
	CK_SLOT_ID slot;
	CK_RV rv;

	if (!GET_U(slot) || !END) {
		return BAD;
	}
	if ((rv = slot_ok(c, slot)) != CKR_OK ||
	    (rv = c->f->C_GetTokenInfo(c->p->vslot, &info)) != CKR_OK) {
		return rv;
	}
	return part_rv_encoded(proto_put_token_info(c->out, &info), rv);
}

static CK_RV
h_get_mechanism_list(struct call *c)
{
	CK_MECHANISM_TYPE *list = NULL;
	CK_ULONG cap, count;
	CK_SLOT_ID slot;
	int has;
	CK_RV rv;

	if (!GET_U(slot) || !GET_L(has, cap) || !END) {
		return BAD;
	}
	if ((rv = slot_ok(c, slot)) != CKR_OK) {
		return rv;
	}
	count = cap > PROTO_MAX_ULONGS ? PROTO_MAX_ULONGS : cap;
	if (has && (list = proto_arena_alloc(c->a, (count + 1) * sizeof(*list))) == NULL) {
		return CKR_DEVICE_MEMORY;
	}
	rv = c->f->C_GetMechanismList(c->p->vslot, has ? list : NULL, &count);
	if (count > PROTO_MAX_ULONGS) {
		return CKR_GENERAL_ERROR;
	}
	if (rv == CKR_OK || rv == CKR_BUFFER_TOO_SMALL) {
		return part_rv_encoded(
		        proto_put_ulongs_reply(c->out, rv == CKR_OK && has ? list : NULL, count),
		        rv);
	}
	return rv;
}

static CK_RV
h_get_mechanism_info(struct call *c)
{
	CK_MECHANISM_INFO info = {0};
	CK_MECHANISM_TYPE type;
	CK_SLOT_ID slot;
	CK_RV rv;

	if (!GET_U(slot) || !GET_U(type) || !END) {
		return BAD;
	}
	/* Zeroed: for some mechanisms (CKM_AES_ECB, _CBC_PAD, _CTR, _GCM, CKM_DES3_ECB,
	 * _CBC_PAD) SoftHSMv2 2.6 adds its flags to what the struct held, so whatever was on
	 * our stack reached the client as flags, and pkcs11-tool --test took CKM_AES_CBC_PAD
	 * for a digest. The other vendor-filled structs are zeroed the same way. */
	if ((rv = slot_ok(c, slot)) != CKR_OK ||
	    (rv = c->f->C_GetMechanismInfo(c->p->vslot, type, &info)) != CKR_OK) {
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
	CK_RV rv;

	if (!GET_U(slot) || proto_get_inbytes(&c->in, &pin, &pinlen, PIN_WIRE_MAX) != 0 ||
	    proto_get_inbytes(&c->in, &label, &labellen, PROTO_MAX_STRING) != 0 || !END ||
	    labellen > sizeof(padded)) {
		return BAD;
	}
	if ((rv = slot_ok(c, slot)) != CKR_OK) {
		return rv;
	}
	memset(padded, ' ', sizeof(padded));
	if (label != NULL && labellen != 0) {
		memcpy(padded, label, labellen);
	}
	return c->f->C_InitToken(c->p->vslot, (CK_UTF8CHAR_PTR)pin, pinlen,
	                         label != NULL ? padded : NULL);
}

static CK_RV
h_init_pin(struct call *c)
{
	CK_SESSION_HANDLE h, vh;
	const CK_BYTE *pin;
	CK_ULONG len;
	CK_RV rv;

	if (!GET_U(h) || proto_get_inbytes(&c->in, &pin, &len, PIN_WIRE_MAX) != 0 || !END) {
		return BAD;
	}
	if ((rv = vs(c, h, &vh)) != CKR_OK) {
		return rv;
	}
	return c->f->C_InitPIN(vh, (CK_UTF8CHAR_PTR)pin, len);
}

static CK_RV
h_set_pin(struct call *c)
{
	const CK_BYTE *old, *pin;
	CK_SESSION_HANDLE h, vh;
	CK_ULONG oldlen, len;
	CK_RV rv;

	if (!GET_U(h) || proto_get_inbytes(&c->in, &old, &oldlen, PIN_WIRE_MAX) != 0 ||
	    proto_get_inbytes(&c->in, &pin, &len, PIN_WIRE_MAX) != 0 || !END) {
		return BAD;
	}
	if ((rv = vs(c, h, &vh)) != CKR_OK) {
		return rv;
	}
	rv = c->f->C_SetPIN(vh, (CK_UTF8CHAR_PTR)old, oldlen, (CK_UTF8CHAR_PTR)pin, len);
	if (rv == CKR_OK && c->p->vuser != PART_USER_NONE &&
	    part_pin_hash(pin, len, PT_PIN_ITER, &c->p->pin) != 0) {
		/* Later logins of other connections compare with the new PIN; when that hash
		 * cannot be made, they are refused rather than compared with the old one. */
		OPENSSL_cleanse(&c->p->pin, sizeof(c->p->pin));
	}
	return rv;
}

/* ---- sessions and login ----------------------------------------------------------------- */

static CK_RV
h_open_session(struct call *c)
{
	struct part_pt *p = c->p;
	struct pt_session *s, *o;
	CK_SESSION_HANDLE vh;
	CK_SLOT_ID slot;
	CK_FLAGS flags;
	CK_RV rv;

	if (!GET_U(slot) || !GET_U(flags) || !END) {
		return BAD;
	}
	if ((rv = slot_ok(c, slot)) != CKR_OK) {
		return rv;
	}
	if (p->nsessions >= PART_MAX_SESSIONS) {
		return CKR_SESSION_COUNT;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL || conn_find(p, c->conn, 1) == NULL) {
		free(s);
		return CKR_HOST_MEMORY;
	}
	/* Callbacks (pApplication, Notify) stay in the client: none reach the vendor. */
	if ((rv = c->f->C_OpenSession(p->vslot, flags, NULL, NULL, &vh)) != CKR_OK) {
		free(s);
		login_sync(p);
		return rv;
	}
	/* The next free number; at most PART_MAX_SESSIONS of 2^24 are ever taken. */
	do {
		p->next_n = p->next_n >= 0xffffffu ? 1 : p->next_n + 1;
		for (o = p->sessions; o != NULL && o->n != p->next_n; o = o->next) {
		}
	} while (o != NULL);
	s->n = p->next_n;
	s->conn = c->conn;
	s->vh = vh;
	s->flags = flags;
	s->next = p->sessions;
	p->sessions = s;
	p->nsessions++;
	if ((rv = part_rv_encoded(proto_put_ulong(c->out, proto_session_make(p->slot, s->n)),
	                          CKR_OK)) != CKR_OK) {
		sess_close(p, s); /* the application will never learn the handle */
		login_sync(p);
	}
	return rv;
}

static CK_RV
h_close_session(struct call *c)
{
	struct pt_session *s;
	CK_SESSION_HANDLE h;

	if (!GET_U(h) || !END) {
		return BAD;
	}
	if ((s = sess_find(c->p, c->conn, h)) == NULL) {
		return CKR_SESSION_HANDLE_INVALID;
	}
	sess_close(c->p, s);
	login_sync(c->p);
	return CKR_OK;
}

static CK_RV
h_close_all_sessions(struct call *c)
{
	CK_SLOT_ID slot;
	CK_RV rv;

	if (!GET_U(slot) || !END) {
		return BAD;
	}
	/* This connection's sessions only: the vendor's C_CloseAllSessions would close every
	 * connection's. */
	if ((rv = slot_ok(c, slot)) == CKR_OK) {
		conn_close_all(c->p, c->conn);
	}
	return rv;
}

static CK_RV
h_get_session_info(struct call *c)
{
	struct pt_session *s;
	struct pt_conn *pc;
	CK_SESSION_INFO info = {0}; /* see h_get_mechanism_info */
	CK_SESSION_HANDLE h;
	CK_RV rv;

	if (!GET_U(h) || !END) {
		return BAD;
	}
	if ((s = sess_find(c->p, c->conn, h)) == NULL) {
		return CKR_SESSION_HANDLE_INVALID;
	}
	if ((rv = c->f->C_GetSessionInfo(s->vh, &info)) != CKR_OK) {
		return rv;
	}
	info.slotID = c->p->slot;
	/* The vendor's state is the shared login's; a connection that has not logged in sees
	 * the public state its own login would give it. */
	pc = conn_find(c->p, c->conn, 0);
	if (pc == NULL || pc->user == PART_USER_NONE) {
		info.state = (info.flags & CKF_RW_SESSION) ? CKS_RW_PUBLIC_SESSION
		                                           : CKS_RO_PUBLIC_SESSION;
	}
	return part_rv_encoded(proto_put_session_info(c->out, &info), rv);
}

static CK_RV
h_login(struct call *c)
{
	struct part_pt *p = c->p;
	CK_SESSION_HANDLE h, vh;
	struct pt_conn *pc;
	CK_USER_TYPE user;
	const CK_BYTE *pin;
	CK_ULONG len;
	CK_RV rv;
	int ok;

	if (!GET_U(h) || !GET_U(user) || proto_get_inbytes(&c->in, &pin, &len, PIN_WIRE_MAX) != 0 ||
	    !END) {
		return BAD;
	}
	if ((rv = vs(c, h, &vh)) != CKR_OK) {
		return rv;
	}
	if (user == CKU_CONTEXT_SPECIFIC) {
		return c->f->C_Login(vh, user, (CK_UTF8CHAR_PTR)pin, len);
	}
	if ((pc = conn_find(p, c->conn, 1)) == NULL) {
		return CKR_HOST_MEMORY;
	}
	if (pc->user != PART_USER_NONE) {
		return pc->user == user ? CKR_USER_ALREADY_LOGGED_IN
		                        : CKR_USER_ANOTHER_ALREADY_LOGGED_IN;
	}
	rv = c->f->C_Login(vh, user, (CK_UTF8CHAR_PTR)pin, len);
	if (rv == CKR_OK) {
		if (part_pin_hash(pin, len, PT_PIN_ITER, &p->pin) != 0) {
			(void)c->f->C_Logout(vh);
			vendor_forget_login(p);
			return CKR_DEVICE_ERROR;
		}
		p->vuser = user;
		pc->user = user;
		return CKR_OK;
	}
	if (rv != CKR_USER_ALREADY_LOGGED_IN && rv != CKR_USER_ANOTHER_ALREADY_LOGGED_IN) {
		return rv;
	}
	/* Another connection logged the vendor in (see the top of the file). */
	if (p->vuser == PART_USER_NONE) {
		return rv; /* not by us: nothing to compare with */
	}
	if (p->vuser != user) {
		return CKR_USER_ANOTHER_ALREADY_LOGGED_IN;
	}
	if ((ok = part_pin_check(&p->pin, pin, len)) < 0) {
		return CKR_DEVICE_ERROR;
	}
	if (!ok) {
		return CKR_PIN_INCORRECT;
	}
	pc->user = user;
	return CKR_OK;
}

static CK_RV
h_logout(struct call *c)
{
	CK_SESSION_HANDLE h, vh;
	struct pt_conn *pc;
	CK_RV rv;

	if (!GET_U(h) || !END) {
		return BAD;
	}
	if ((rv = vs(c, h, &vh)) != CKR_OK) {
		return rv;
	}
	if ((pc = conn_find(c->p, c->conn, 0)) == NULL || pc->user == PART_USER_NONE) {
		return CKR_USER_NOT_LOGGED_IN;
	}
	pc->user = PART_USER_NONE;
	login_sync(c->p); /* logs the vendor out when this was the last login */
	return CKR_OK;
}

/* ---- objects ---------------------------------------------------------------------------- */

static CK_RV
h_create_object(struct call *c)
{
	CK_SESSION_HANDLE h, vh;
	CK_OBJECT_HANDLE obj;
	CK_ATTRIBUTE *t;
	CK_ULONG n;
	CK_RV rv;

	if (!GET_U(h) || !GET_A(t, n) || !END) {
		return BAD;
	}
	if ((rv = vs(c, h, &vh)) != CKR_OK ||
	    (rv = c->f->C_CreateObject(vh, t, n, &obj)) != CKR_OK) {
		return rv;
	}
	return part_rv_encoded(proto_put_ulong(c->out, obj), rv);
}

static CK_RV
h_copy_object(struct call *c)
{
	CK_SESSION_HANDLE h, vh;
	CK_OBJECT_HANDLE src, obj;
	CK_ATTRIBUTE *t;
	CK_ULONG n;
	CK_RV rv;

	if (!GET_U(h) || !GET_U(src) || !GET_A(t, n) || !END) {
		return BAD;
	}
	if ((rv = vs(c, h, &vh)) != CKR_OK ||
	    (rv = c->f->C_CopyObject(vh, src, t, n, &obj)) != CKR_OK) {
		return rv;
	}
	return part_rv_encoded(proto_put_ulong(c->out, obj), rv);
}

static CK_RV
h_get_object_size(struct call *c)
{
	struct pt_arena_job *j;
	CK_SESSION_HANDLE h, vh;
	CK_OBJECT_HANDLE obj;
	CK_ULONG size = 0;
	CK_RV rv;

	if (!GET_U(h) || !GET_U(obj) || !END) {
		return BAD;
	}
	if ((rv = vs(c, h, &vh)) != CKR_OK) {
		return rv;
	}
	if ((j = arena_job(c, h, vh)) != NULL) {
		j->obj = obj;
		return job_submit(c, &j->base);
	}
	rv = c->f->C_GetObjectSize(vh, obj, &size);
	return put_size(c->out, rv, size);
}

static CK_RV
h_get_attribute_value(struct call *c)
{
	struct pt_arena_job *j;
	CK_SESSION_HANDLE h, vh;
	CK_OBJECT_HANDLE obj;
	CK_ATTRIBUTE *t;
	CK_ULONG n;
	CK_RV rv;

	if (!GET_U(h) || !GET_U(obj) || proto_get_attrquery(&c->in, c->a, &t, &n) != 0 || !END) {
		return BAD;
	}
	if ((rv = vs(c, h, &vh)) != CKR_OK) {
		return rv;
	}
	if ((j = arena_job(c, h, vh)) != NULL) {
		j->obj = obj;
		j->pt = t;
		j->pn = n;
		return job_submit(c, &j->base);
	}
	rv = c->f->C_GetAttributeValue(vh, obj, t, n);
	return put_attrs(c->out, rv, t, n);
}

static CK_RV
h_set_attribute_value(struct call *c)
{
	CK_SESSION_HANDLE h, vh;
	CK_OBJECT_HANDLE obj;
	CK_ATTRIBUTE *t;
	CK_ULONG n;
	CK_RV rv;

	if (!GET_U(h) || !GET_U(obj) || !GET_A(t, n) || !END) {
		return BAD;
	}
	if ((rv = vs(c, h, &vh)) != CKR_OK) {
		return rv;
	}
	return c->f->C_SetAttributeValue(vh, obj, t, n);
}

static CK_RV
h_find_objects_init(struct call *c)
{
	struct pt_arena_job *j;
	CK_SESSION_HANDLE h, vh;
	CK_ATTRIBUTE *t;
	CK_ULONG n;
	CK_RV rv;

	if (!GET_U(h) || !GET_A(t, n) || !END) {
		return BAD;
	}
	if ((rv = vs(c, h, &vh)) != CKR_OK) {
		return rv;
	}
	if ((j = arena_job(c, h, vh)) != NULL) {
		j->pt = t;
		j->pn = n;
		return job_submit(c, &j->base);
	}
	return c->f->C_FindObjectsInit(vh, t, n);
}

static CK_RV
h_find_objects(struct call *c)
{
	struct pt_arena_job *j;
	CK_OBJECT_HANDLE *buf;
	CK_SESSION_HANDLE h, vh;
	CK_ULONG cap, count = 0;
	int has;
	CK_RV rv;

	if (!GET_U(h) || !GET_L(has, cap) || !END || !has) {
		return BAD;
	}
	if ((rv = vs(c, h, &vh)) != CKR_OK) {
		return rv;
	}
	cap = cap > FIND_MAX ? FIND_MAX : cap; /* fewer than asked is allowed */
	if ((buf = proto_arena_alloc(c->a, (cap + 1) * sizeof(*buf))) == NULL) {
		return CKR_DEVICE_MEMORY;
	}
	if ((j = arena_job(c, h, vh)) != NULL) {
		j->handles = buf;
		j->cap = cap;
		return job_submit(c, &j->base);
	}
	rv = c->f->C_FindObjects(vh, buf, cap, &count);
	return put_found(c->out, rv, buf, count, cap);
}

/* "uu" → "": C_DestroyObject, C_DigestKey */
static CK_RV
h_uu(struct call *c, CK_RV (*fn)(CK_SESSION_HANDLE, CK_OBJECT_HANDLE))
{
	CK_SESSION_HANDLE h, vh;
	CK_OBJECT_HANDLE obj;
	CK_RV rv;

	if (!GET_U(h) || !GET_U(obj) || !END) {
		return BAD;
	}
	if ((rv = vs(c, h, &vh)) != CKR_OK) {
		return rv;
	}
	return fn(vh, obj);
}

/* "u" → "": C_FindObjectsFinal (on the vendor-calling threads), C_GetFunctionStatus,
 * C_CancelFunction */
static CK_RV
h_u(struct call *c, CK_RV (*fn)(CK_SESSION_HANDLE))
{
	struct pt_arena_job *j;
	CK_SESSION_HANDLE h, vh;
	CK_RV rv;

	if (!GET_U(h) || !END) {
		return BAD;
	}
	if ((rv = vs(c, h, &vh)) != CKR_OK) {
		return rv;
	}
	if (c->call == PROTO_CALL_C_FindObjectsFinal && (j = arena_job(c, h, vh)) != NULL) {
		return job_submit(c, &j->base);
	}
	return fn(vh);
}

/* ---- cryptographic operations, by layout ------------------------------------------------ */

/* "uMu" → "": the Init of encrypt, decrypt, sign, sign-recover, verify, verify-recover */
static CK_RV
h_init_op(struct call *c, CK_RV (*fn)(CK_SESSION_HANDLE, CK_MECHANISM_PTR, CK_OBJECT_HANDLE))
{
	struct pt_arena_job *j;
	CK_SESSION_HANDLE h, vh;
	CK_OBJECT_HANDLE key;
	CK_MECHANISM m;
	CK_RV rv;

	if (!GET_U(h) || !GET_M(m) || !GET_U(key) || !END) {
		return BAD;
	}
	if ((rv = vs(c, h, &vh)) != CKR_OK) {
		return rv;
	}
	if ((j = mech_job(c, h, vh, &m)) != NULL) {
		j->init = fn;
		j->obj = key;
		return job_submit(c, &j->base);
	}
	return fn(vh, &m, key);
}

static CK_RV
h_digest_init(struct call *c)
{
	struct pt_arena_job *j;
	CK_SESSION_HANDLE h, vh;
	CK_MECHANISM m;
	CK_RV rv;

	if (!GET_U(h) || !GET_M(m) || !END) {
		return BAD;
	}
	if ((rv = vs(c, h, &vh)) != CKR_OK) {
		return rv;
	}
	if ((j = mech_job(c, h, vh, &m)) != NULL) {
		return job_submit(c, &j->base); /* init NULL: C_DigestInit */
	}
	return c->f->C_DigestInit(vh, &m);
}

/* "uyo" → "O": single-part operations, updates with output, dual-function updates */
static CK_RV
h_in_out(struct call *c,
         CK_RV (*fn)(CK_SESSION_HANDLE, CK_BYTE_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG_PTR))
{
	CK_SESSION_HANDLE h, vh;
	const CK_BYTE *in;
	CK_ULONG inlen, cap, len;
	CK_BYTE *buf;
	struct pt_job *j;
	int has;
	CK_RV rv;

	if (!GET_U(h) || !GET_Y(in, inlen) || !GET_O(has, cap) || !END) {
		return BAD;
	}
	if ((rv = vs(c, h, &vh)) != CKR_OK) {
		return rv;
	}
	if (later_call(c) && (j = job_new(c, h, vh, in, inlen, NULL, 0, has, cap)) != NULL) {
		j->fn = fn;
		return job_submit(c, &j->base);
	}
	if ((rv = out_buf(c, has, &cap, &buf)) != CKR_OK) {
		return rv;
	}
	len = cap;
	rv = fn(vh, (CK_BYTE_PTR)in, inlen, buf, &len);
	return put_out(c, rv, buf, cap, len);
}

/* "uo" → "O": the Finals with output, C_GetOperationState */
static CK_RV
h_out(struct call *c, CK_RV (*fn)(CK_SESSION_HANDLE, CK_BYTE_PTR, CK_ULONG_PTR))
{
	CK_SESSION_HANDLE h, vh;
	CK_ULONG cap, len;
	CK_BYTE *buf;
	struct pt_job *j;
	int has;
	CK_RV rv;

	if (!GET_U(h) || !GET_O(has, cap) || !END) {
		return BAD;
	}
	if ((rv = vs(c, h, &vh)) != CKR_OK) {
		return rv;
	}
	if (later_call(c) && (j = job_new(c, h, vh, NULL, 0, NULL, 0, has, cap)) != NULL) {
		j->fn_out = fn;
		return job_submit(c, &j->base);
	}
	if ((rv = out_buf(c, has, &cap, &buf)) != CKR_OK) {
		return rv;
	}
	len = cap;
	rv = fn(vh, buf, &len);
	return put_out(c, rv, buf, cap, len);
}

/* "uy" → "": updates without output, C_VerifyFinal, C_SeedRandom */
static CK_RV
h_in(struct call *c, CK_RV (*fn)(CK_SESSION_HANDLE, CK_BYTE_PTR, CK_ULONG))
{
	CK_SESSION_HANDLE h, vh;
	const CK_BYTE *in;
	CK_ULONG inlen;
	struct pt_job *j;
	CK_RV rv;

	if (!GET_U(h) || !GET_Y(in, inlen) || !END) {
		return BAD;
	}
	if ((rv = vs(c, h, &vh)) != CKR_OK) {
		return rv;
	}
	if (later_call(c) && (j = job_new(c, h, vh, in, inlen, NULL, 0, 0, 0)) != NULL) {
		j->fn_in = fn;
		return job_submit(c, &j->base);
	}
	return fn(vh, (CK_BYTE_PTR)in, inlen);
}

static CK_RV
h_verify(struct call *c)
{
	CK_SESSION_HANDLE h, vh;
	const CK_BYTE *data, *sig;
	CK_ULONG dlen, slen;
	struct pt_job *j;
	CK_RV rv;

	if (!GET_U(h) || !GET_Y(data, dlen) || !GET_Y(sig, slen) || !END) {
		return BAD;
	}
	if ((rv = vs(c, h, &vh)) != CKR_OK) {
		return rv;
	}
	if ((j = job_new(c, h, vh, data, dlen, sig, slen, 0, 0)) != NULL) {
		j->verify = c->f->C_Verify;
		return job_submit(c, &j->base);
	}
	return c->f->C_Verify(vh, (CK_BYTE_PTR)data, dlen, (CK_BYTE_PTR)sig, slen);
}

static CK_RV
h_set_operation_state(struct call *c)
{
	CK_OBJECT_HANDLE enc, auth;
	CK_SESSION_HANDLE h, vh;
	const CK_BYTE *state;
	CK_ULONG len;
	CK_RV rv;

	if (!GET_U(h) || !GET_Y(state, len) || !GET_U(enc) || !GET_U(auth) || !END) {
		return BAD;
	}
	if ((rv = vs(c, h, &vh)) != CKR_OK) {
		return rv;
	}
	return c->f->C_SetOperationState(vh, (CK_BYTE_PTR)state, len, enc, auth);
}

/* ---- keys ------------------------------------------------------------------------------- */

/*
 * A C_GenerateKey or C_GenerateKeyPair made by the vendor from another thread: an HSM takes
 * milliseconds to seconds for a key pair, and the partition's other sessions go on
 * meanwhile. The mechanism and the templates live in the request's arena, which the job
 * took over (gen_later).
 */
/* Hands a key generation to the vendor-calling threads: 1 (c->later set), or 0 to call the
 * vendor in line. */
static int
gen_later(struct call *c, CK_SESSION_HANDLE h, CK_SESSION_HANDLE vh, const CK_MECHANISM *m,
          CK_ATTRIBUTE *pt, CK_ULONG pn, CK_ATTRIBUTE *st, CK_ULONG sn)
{
	struct pt_arena_job *j = mech_job(c, h, vh, m);

	if (j == NULL) {
		return 0;
	}
	j->pt = pt;
	j->pn = pn;
	j->st = st;
	j->sn = sn;
	(void)job_submit(c, &j->base);
	return 1;
}

static CK_RV
h_generate_key(struct call *c)
{
	CK_SESSION_HANDLE h, vh;
	CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;
	CK_MECHANISM m;
	CK_ATTRIBUTE *t;
	CK_ULONG n;
	CK_RV rv;

	if (!GET_U(h) || !GET_M(m) || !GET_A(t, n) || !END) {
		return BAD;
	}
	if ((rv = vs(c, h, &vh)) != CKR_OK) {
		return rv;
	}
	if (gen_later(c, h, vh, &m, t, n, NULL, 0)) {
		return CKR_OK; /* answered by arena_finish */
	}
	rv = c->f->C_GenerateKey(vh, &m, t, n, &key);
	return put_keys(c->out, rv, c->call, key, 0, 0);
}

static CK_RV
h_generate_key_pair(struct call *c)
{
	CK_OBJECT_HANDLE pub = CK_INVALID_HANDLE, priv = CK_INVALID_HANDLE;
	CK_SESSION_HANDLE h, vh;
	CK_ATTRIBUTE *pt, *st;
	CK_ULONG pn, sn;
	CK_MECHANISM m;
	CK_RV rv;

	if (!GET_U(h) || !GET_M(m) || !GET_A(pt, pn) || !GET_A(st, sn) || !END) {
		return BAD;
	}
	if ((rv = vs(c, h, &vh)) != CKR_OK) {
		return rv;
	}
	if (gen_later(c, h, vh, &m, pt, pn, st, sn)) {
		return CKR_OK; /* answered by arena_finish */
	}
	rv = c->f->C_GenerateKeyPair(vh, &m, pt, pn, st, sn, &pub, &priv);
	return put_keys(c->out, rv, c->call, 0, pub, priv);
}

static CK_RV
h_wrap_key(struct call *c)
{
	CK_OBJECT_HANDLE wrapping, key;
	CK_SESSION_HANDLE h, vh;
	CK_ULONG cap, len;
	CK_MECHANISM m;
	CK_BYTE *buf;
	int has;
	CK_RV rv;

	if (!GET_U(h) || !GET_M(m) || !GET_U(wrapping) || !GET_U(key) || !GET_O(has, cap) || !END) {
		return BAD;
	}
	if ((rv = vs(c, h, &vh)) != CKR_OK || (rv = out_buf(c, has, &cap, &buf)) != CKR_OK) {
		return rv;
	}
	len = cap;
	rv = c->f->C_WrapKey(vh, &m, wrapping, key, buf, &len);
	return put_out(c, rv, buf, cap, len);
}

static CK_RV
h_unwrap_key(struct call *c)
{
	CK_OBJECT_HANDLE unwrapping, key;
	CK_SESSION_HANDLE h, vh;
	const CK_BYTE *wrapped;
	CK_ULONG wlen, n;
	CK_ATTRIBUTE *t;
	CK_MECHANISM m;
	CK_RV rv;

	if (!GET_U(h) || !GET_M(m) || !GET_U(unwrapping) || !GET_Y(wrapped, wlen) || !GET_A(t, n) ||
	    !END) {
		return BAD;
	}
	if ((rv = vs(c, h, &vh)) != CKR_OK ||
	    (rv = c->f->C_UnwrapKey(vh, &m, unwrapping, (CK_BYTE_PTR)wrapped, wlen, t, n, &key)) !=
	            CKR_OK) {
		return rv;
	}
	return part_rv_encoded(proto_put_ulong(c->out, key), rv);
}

static CK_RV
h_derive_key(struct call *c)
{
	CK_OBJECT_HANDLE base, key;
	CK_SESSION_HANDLE h, vh;
	CK_ATTRIBUTE *t;
	CK_MECHANISM m;
	CK_ULONG n;
	CK_RV rv;

	if (!GET_U(h) || !GET_M(m) || !GET_U(base) || !GET_A(t, n) || !END) {
		return BAD;
	}
	if ((rv = vs(c, h, &vh)) != CKR_OK ||
	    (rv = c->f->C_DeriveKey(vh, &m, base, t, n, &key)) != CKR_OK) {
		return rv;
	}
	return part_rv_encoded(proto_put_ulong(c->out, key), rv);
}

static CK_RV
h_generate_random(struct call *c)
{
	CK_SESSION_HANDLE h, vh;
	CK_BYTE *buf;
	CK_ULONG cap;
	int has;
	struct pt_job *j;
	CK_RV rv;

	if (!GET_U(h) || !GET_O(has, cap) || !END) {
		return BAD;
	}
	if ((rv = vs(c, h, &vh)) != CKR_OK) {
		return rv;
	}
	/* pRandomData is a buffer of exactly ulRandomLen bytes: no size query, and the reply
	 * must fit one frame (as in the soft worker). */
	if (!has || cap != out_cap(c, cap)) {
		return BAD;
	}
	/* From a vendor thread like the cryptographic calls: an HSM's random numbers cost a
	 * round trip too. */
	if ((j = job_new(c, h, vh, NULL, 0, NULL, 0, 1, cap)) != NULL) {
		j->fn_rand = c->f->C_GenerateRandom;
		return job_submit(c, &j->base);
	}
	if ((buf = proto_arena_alloc(c->a, cap != 0 ? cap : 1)) == NULL) {
		return CKR_DEVICE_MEMORY;
	}
	if ((rv = c->f->C_GenerateRandom(vh, buf, cap)) != CKR_OK) {
		return rv;
	}
	return part_rv_encoded(proto_put_outbuf_reply(c->out, buf, cap), rv);
}

/* ---- dispatch --------------------------------------------------------------------------- */

static CK_RV
dispatch(struct call *c, unsigned call)
{
	CK_FUNCTION_LIST_PTR f = c->f;

	switch (call) {
	case PROTO_CALL_C_GetSlotInfo:
		return h_get_slot_info(c);
	case PROTO_CALL_C_GetTokenInfo:
		return h_get_token_info(c);
	case PROTO_CALL_C_GetMechanismList:
		return h_get_mechanism_list(c);
	case PROTO_CALL_C_GetMechanismInfo:
		return h_get_mechanism_info(c);
	case PROTO_CALL_C_InitToken:
		return h_init_token(c);
	case PROTO_CALL_C_InitPIN:
		return h_init_pin(c);
	case PROTO_CALL_C_SetPIN:
		return h_set_pin(c);
	case PROTO_CALL_C_OpenSession:
		return h_open_session(c);
	case PROTO_CALL_C_CloseSession:
		return h_close_session(c);
	case PROTO_CALL_C_CloseAllSessions:
		return h_close_all_sessions(c);
	case PROTO_CALL_C_GetSessionInfo:
		return h_get_session_info(c);
	case PROTO_CALL_C_GetOperationState:
		return h_out(c, f->C_GetOperationState);
	case PROTO_CALL_C_SetOperationState:
		return h_set_operation_state(c);
	case PROTO_CALL_C_Login:
		return h_login(c);
	case PROTO_CALL_C_Logout:
		return h_logout(c);
	case PROTO_CALL_C_CreateObject:
		return h_create_object(c);
	case PROTO_CALL_C_CopyObject:
		return h_copy_object(c);
	case PROTO_CALL_C_DestroyObject:
		return h_uu(c, f->C_DestroyObject);
	case PROTO_CALL_C_GetObjectSize:
		return h_get_object_size(c);
	case PROTO_CALL_C_GetAttributeValue:
		return h_get_attribute_value(c);
	case PROTO_CALL_C_SetAttributeValue:
		return h_set_attribute_value(c);
	case PROTO_CALL_C_FindObjectsInit:
		return h_find_objects_init(c);
	case PROTO_CALL_C_FindObjects:
		return h_find_objects(c);
	case PROTO_CALL_C_FindObjectsFinal:
		return h_u(c, f->C_FindObjectsFinal);
	case PROTO_CALL_C_EncryptInit:
		return h_init_op(c, f->C_EncryptInit);
	case PROTO_CALL_C_Encrypt:
		return h_in_out(c, f->C_Encrypt);
	case PROTO_CALL_C_EncryptUpdate:
		return h_in_out(c, f->C_EncryptUpdate);
	case PROTO_CALL_C_EncryptFinal:
		return h_out(c, f->C_EncryptFinal);
	case PROTO_CALL_C_DecryptInit:
		return h_init_op(c, f->C_DecryptInit);
	case PROTO_CALL_C_Decrypt:
		return h_in_out(c, f->C_Decrypt);
	case PROTO_CALL_C_DecryptUpdate:
		return h_in_out(c, f->C_DecryptUpdate);
	case PROTO_CALL_C_DecryptFinal:
		return h_out(c, f->C_DecryptFinal);
	case PROTO_CALL_C_DigestInit:
		return h_digest_init(c);
	case PROTO_CALL_C_Digest:
		return h_in_out(c, f->C_Digest);
	case PROTO_CALL_C_DigestUpdate:
		return h_in(c, f->C_DigestUpdate);
	case PROTO_CALL_C_DigestKey:
		return h_uu(c, f->C_DigestKey);
	case PROTO_CALL_C_DigestFinal:
		return h_out(c, f->C_DigestFinal);
	case PROTO_CALL_C_SignInit:
		return h_init_op(c, f->C_SignInit);
	case PROTO_CALL_C_Sign:
		return h_in_out(c, f->C_Sign);
	case PROTO_CALL_C_SignUpdate:
		return h_in(c, f->C_SignUpdate);
	case PROTO_CALL_C_SignFinal:
		return h_out(c, f->C_SignFinal);
	case PROTO_CALL_C_SignRecoverInit:
		return h_init_op(c, f->C_SignRecoverInit);
	case PROTO_CALL_C_SignRecover:
		return h_in_out(c, f->C_SignRecover);
	case PROTO_CALL_C_VerifyInit:
		return h_init_op(c, f->C_VerifyInit);
	case PROTO_CALL_C_Verify:
		return h_verify(c);
	case PROTO_CALL_C_VerifyUpdate:
		return h_in(c, f->C_VerifyUpdate);
	case PROTO_CALL_C_VerifyFinal:
		return h_in(c, f->C_VerifyFinal);
	case PROTO_CALL_C_VerifyRecoverInit:
		return h_init_op(c, f->C_VerifyRecoverInit);
	case PROTO_CALL_C_VerifyRecover:
		return h_in_out(c, f->C_VerifyRecover);
	case PROTO_CALL_C_DigestEncryptUpdate:
		return h_in_out(c, f->C_DigestEncryptUpdate);
	case PROTO_CALL_C_DecryptDigestUpdate:
		return h_in_out(c, f->C_DecryptDigestUpdate);
	case PROTO_CALL_C_SignEncryptUpdate:
		return h_in_out(c, f->C_SignEncryptUpdate);
	case PROTO_CALL_C_DecryptVerifyUpdate:
		return h_in_out(c, f->C_DecryptVerifyUpdate);
	case PROTO_CALL_C_GenerateKey:
		return h_generate_key(c);
	case PROTO_CALL_C_GenerateKeyPair:
		return h_generate_key_pair(c);
	case PROTO_CALL_C_WrapKey:
		return h_wrap_key(c);
	case PROTO_CALL_C_UnwrapKey:
		return h_unwrap_key(c);
	case PROTO_CALL_C_DeriveKey:
		return h_derive_key(c);
	case PROTO_CALL_C_SeedRandom:
		return h_in(c, f->C_SeedRandom);
	case PROTO_CALL_C_GenerateRandom:
		return h_generate_random(c);
	case PROTO_CALL_C_GetFunctionStatus:
		return h_u(c, f->C_GetFunctionStatus);
	case PROTO_CALL_C_CancelFunction:
		return h_u(c, f->C_CancelFunction);
	default:
		/* The module-local calls and the gateway's own never reach a worker. */
		return CKR_FUNCTION_NOT_SUPPORTED;
	}
}

int
part_pt_handle(struct part_pt *p, uint64_t conn_id, const struct proto_ctx *ctx,
               const uint8_t *frame, size_t len, struct proto_buf *reply)
{
	struct proto_hdr hdr;
	struct call c;
	CK_RV rv;
	int r;

	if (proto_hdr_decode(frame, len, p->max_frame, &hdr) != 0 ||
	    hdr.type != PROTO_MSG_REQUEST || (size_t)PROTO_HDR_BYTES + hdr.body_len != len) {
		return PART_ERR_IPC;
	}
	switch (part_later_may_overlap(p->later, conn_id, hdr.call, frame + PROTO_HDR_BYTES,
	                               hdr.body_len, PROTO_CF_SHARED | PROTO_CF_VENDOR_SHARED)) {
	case PART_OVERLAP_GO:
		break;
	case PART_OVERLAP_QUEUE:
		/* Its session's job first (the usual case: the call after its init); the others
		 * go on meanwhile. Without memory for the copy, it waits for every job instead. */
		if (part_later_queue(p->later, conn_id, ctx, frame, len) == 0) {
			return PART_LATER;
		}
		/* fall through */
	default:
		part_later_settle(p->later, p);
		break;
	}
	memset(&c, 0, sizeof(c));
	c.p = p;
	c.f = p->f;
	c.conn = conn_id;
	c.a = p->arena;
	c.out = &p->out;
	c.call = hdr.call;
	c.req_id = hdr.req_id;
	proto_cur_init(&c.in, frame + PROTO_HDR_BYTES, hdr.body_len);
	proto_buf_reset(&p->out);
	rv = dispatch(&c, hdr.call);
	r = c.later ? PART_LATER : part_reply_frame(&p->out, hdr.call, hdr.req_id, rv, reply);
	/* Both may hold secrets (attribute values, plaintext, random bytes). */
	proto_buf_reset(&p->out);
	proto_arena_reset(p->arena);
	return r;
}

void
part_pt_conn_closed(struct part_pt *p, uint64_t conn_id)
{
	/* Its sessions may be in a call; and the vendor's session objects are visible to every
	 * session of this process, so another connection's call may be using one: all wait. */
	part_later_settle(p->later, p);
	conn_close_all(p, conn_id);
}

int
part_pt_threads(struct part_pt *p, unsigned n)
{
	int r;

	part_later_free(p->later, p);
	p->later = NULL;
	if (n > PART_THREADS_MAX) {
		return PART_ERR_INVALID;
	}
	/* n threads call the vendor: the loop thread leaves every vendor job to them (long_run,
	 * job_new), so they are all helpers. 1: every call in line, on the loop thread. */
	if ((r = part_later_new(n <= 1 ? 0 : n, &p->later)) == 0) {
		part_later_set_handler(p->later, pt_handle);
	}
	return r;
}

/* ---- open, serve, free ------------------------------------------------------------------ */

/* Finds the slot whose token label is `label` (blank padded to 32 bytes, as in
 * CK_TOKEN_INFO). Two tokens with the label: ambiguous, refused. */
static int
find_slot(struct part_pt *p, const char *label)
{
	CK_SLOT_ID *slots = NULL;
	CK_TOKEN_INFO info = {0}; /* see h_get_mechanism_info */
	CK_ULONG n = 0, i;
	char want[32];
	int found = 0, r = PART_ERR_NOT_FOUND;

	part_pad(want, sizeof(want), label);
	if (p->f->C_GetSlotList(CK_TRUE, NULL, &n) != CKR_OK || n > PROTO_MAX_ULONGS ||
	    (slots = calloc(n + 1, sizeof(*slots))) == NULL ||
	    p->f->C_GetSlotList(CK_TRUE, slots, &n) != CKR_OK) {
		r = PART_ERR_IO;
		goto out;
	}
	for (i = 0; i < n; i++) {
		if (p->f->C_GetTokenInfo(slots[i], &info) == CKR_OK &&
		    memcmp(info.label, want, sizeof(want)) == 0) {
			p->vslot = slots[i];
			found++;
		}
	}
	r = found == 1 ? 0 : found == 0 ? PART_ERR_NOT_FOUND : PART_ERR_INVALID;
out:
	free(slots);
	return r;
}

int
part_pt_open(const struct part_pt_opts *o, struct part_pt **out)
{
	CK_C_INITIALIZE_ARGS args;
	CK_C_GetFunctionList get;
	struct part_pt *p = NULL;
	const char *what = NULL;
	CK_RV rv;
	int r;

	*out = NULL;
	if (o == NULL || o->module == NULL || o->token == NULL || o->slot < 1 || o->slot > 255 ||
	    (o->max_frame != 0 && (o->max_frame < 4096 || o->max_frame > PROTO_MAX_FRAME_CAP))) {
		return PART_ERR_INVALID;
	}
	if ((p = calloc(1, sizeof(*p))) == NULL) {
		return PART_ERR_NOMEM;
	}
	p->slot = o->slot;
	p->max_frame = o->max_frame != 0 ? o->max_frame : PROTO_MAX_FRAME_DEFAULT;
	p->vuser = PART_USER_NONE;
	proto_buf_init(&p->out);
	p->out.max = p->max_frame - PROTO_HDR_BYTES - 8;
	if ((p->arena = proto_arena_new()) == NULL) {
		r = PART_ERR_NOMEM;
		goto out;
	}
	/* RTLD_NOW: a module with a missing symbol fails here, not in the middle of a call. */
	if ((p->dl = dlopen(o->module, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		fprintf(stderr, "hsmgate-worker: passthrough: %s\n", dlerror());
		r = PART_ERR_IO;
		goto out;
	}
	if ((get = (CK_C_GetFunctionList)dlsym(p->dl, "C_GetFunctionList")) == NULL ||
	    (rv = get(&p->f)) != CKR_OK || p->f == NULL) {
		what = "C_GetFunctionList";
		r = PART_ERR_IO;
		goto out;
	}
	/* The worker calls the vendor from several threads (part_pt_threads), and the vendor
	 * may start threads of its own: it uses the OS's locks. */
	memset(&args, 0, sizeof(args));
	args.flags = CKF_OS_LOCKING_OK;
	if ((rv = p->f->C_Initialize(&args)) != CKR_OK) {
		fprintf(stderr, "hsmgate-worker: passthrough: %s: C_Initialize: %s (0x%lx)\n",
		        o->module, proto_rv_name(rv) != NULL ? proto_rv_name(rv) : "?", rv);
		r = PART_ERR_IO;
		goto out;
	}
	p->initialized = 1;
	if ((r = find_slot(p, o->token)) != 0) {
		fprintf(stderr, "hsmgate-worker: passthrough: %s: %s token labelled '%s'\n",
		        o->module, r == PART_ERR_INVALID ? "more than one" : "no", o->token);
		goto out;
	}
	*out = p;
	p = NULL; /* transferred */
	r = 0;
out:
	if (what != NULL) {
		fprintf(stderr, "hsmgate-worker: passthrough: %s: %s failed\n", o->module, what);
	}
	part_pt_free(p);
	return r;
}

void
part_pt_free(struct part_pt *p)
{
	struct pt_session *s;
	struct pt_conn *c;

	if (p == NULL) {
		return;
	}
	part_later_free(p->later, p); /* before C_Finalize: no call may be running then */
	while ((s = p->sessions) != NULL) {
		p->sessions = s->next;
		free(s);
	}
	while ((c = p->conns) != NULL) {
		p->conns = c->next;
		free(c);
	}
	/* C_Finalize closes the vendor's sessions and logs it out. */
	if (p->initialized) {
		(void)p->f->C_Finalize(NULL);
	}
	if (p->dl != NULL) {
		dlclose(p->dl);
	}
	OPENSSL_cleanse(&p->pin, sizeof(p->pin));
	proto_arena_free(p->arena);
	proto_buf_free(&p->out);
	free(p);
}

static int
pt_handle(void *arg, uint64_t conn, const struct proto_ctx *ctx, const uint8_t *frame, size_t len,
          struct proto_buf *reply)
{
	return part_pt_handle(arg, conn, ctx, frame, len, reply);
}

static void
pt_conn_closed(void *arg, uint64_t conn)
{
	part_pt_conn_closed(arg, conn);
}

int
part_pt_serve(struct part_pt *p, int fd)
{
	/* No key-level policy in the passthrough backend yet: no policy and no decision hooks. */
	struct part_ipc_handler h = {p,    p->max_frame, pt_handle, pt_conn_closed,
	                             NULL, NULL,         p->later};

	return part_ipc_serve(&h, fd);
}
