/*
 * hsm-partitions/session.c — sessions and the per-connection login state.
 *
 * A session belongs to the connection that opened it: a handle presented by another
 * connection is CKR_SESSION_HANDLE_INVALID, exactly as if it did not exist, so one
 * application can neither use nor probe another's sessions. Handles are
 * proto_session_make(slot, n) with n from a per-worker counter (1..0xffffff, wrapping and
 * skipping numbers in use), so the gateway can route a session call without state.
 */
#include "hsm-partitions/part_int.h"

#include <stdlib.h>
#include <string.h>

static struct part_conn *
conn_find(struct part_token *t, uint64_t id)
{
	struct part_conn *c;

	for (c = t->conns; c != NULL; c = c->next) {
		if (c->id == id) {
			return c;
		}
	}
	return NULL;
}

static void
conn_unlink(struct part_token *t, struct part_conn *c)
{
	struct part_conn **pp;

	for (pp = &t->conns; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			free(c);
			return;
		}
	}
}

static struct part_session *
session_find(struct part_token *t, CK_SESSION_HANDLE h)
{
	struct part_session *s;

	for (s = t->sessions; s != NULL; s = s->next) {
		if (s->handle == h) {
			return s;
		}
	}
	return NULL;
}

CK_RV
part_session_get(struct part_token *t, uint64_t conn, CK_SESSION_HANDLE h,
                 struct part_session **out)
{
	struct part_session *s = session_find(t, h);

	*out = NULL;
	if (s == NULL || s->conn->id != conn) {
		return CKR_SESSION_HANDLE_INVALID;
	}
	*out = s;
	return CKR_OK;
}

CK_STATE
part_session_state(const struct part_session *s)
{
	switch (s->conn->user) {
	case CKU_SO:
		return CKS_RW_SO_FUNCTIONS;
	case CKU_USER:
		return s->rw ? CKS_RW_USER_FUNCTIONS : CKS_RO_USER_FUNCTIONS;
	default:
		return s->rw ? CKS_RW_PUBLIC_SESSION : CKS_RO_PUBLIC_SESSION;
	}
}

static CK_SESSION_HANDLE
next_handle(struct part_token *t)
{
	CK_SESSION_HANDLE h;

	/* At most PART_MAX_SESSIONS < 0xffffff are open, so this ends. */
	for (;;) {
		t->next_session = t->next_session >= 0xffffffu ? 1 : t->next_session + 1;
		h = proto_session_make(t->slot, t->next_session);
		if (session_find(t, h) == NULL) {
			return h;
		}
	}
}

CK_RV
part_session_open(struct part_token *t, uint64_t conn, CK_SLOT_ID slot, CK_FLAGS flags,
                  CK_SESSION_HANDLE *out)
{
	struct part_session *s;
	struct part_conn *c;
	int rw = (flags & CKF_RW_SESSION) != 0;

	*out = CK_INVALID_HANDLE;
	if (slot != t->slot) {
		return CKR_SLOT_ID_INVALID;
	}
	/* v2.40 §5.6 C_OpenSession: "For legacy reasons, the CKF_SERIAL_SESSION bit MUST
	 * always be set; if a call to C_OpenSession does not have this bit set, the call
	 * should return unsuccessfully with the error code CKR_SESSION_PARALLEL_NOT_SUPPORTED." */
	if ((flags & CKF_SERIAL_SESSION) == 0) {
		return CKR_SESSION_PARALLEL_NOT_SUPPORTED;
	}
	if (!t->meta.initialized) {
		return CKR_TOKEN_NOT_RECOGNIZED;
	}
	c = conn_find(t, conn);
	/* "If the application calling C_OpenSession already has a R/W SO session open with
	 * the token, then any attempt to open a R/O session with the token fails with error
	 * code CKR_SESSION_READ_WRITE_SO_EXISTS". */
	if (!rw && c != NULL && c->user == CKU_SO) {
		return CKR_SESSION_READ_WRITE_SO_EXISTS;
	}
	if (t->nsessions >= PART_MAX_SESSIONS) {
		return CKR_SESSION_COUNT;
	}
	if (c == NULL) {
		if ((c = calloc(1, sizeof(*c))) == NULL) {
			return CKR_HOST_MEMORY;
		}
		c->id = conn;
		c->user = PART_USER_NONE;
		c->next = t->conns;
		t->conns = c;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		if (c->nsessions == 0) {
			conn_unlink(t, c);
		}
		return CKR_HOST_MEMORY;
	}
	s->handle = next_handle(t);
	s->conn = c;
	s->rw = rw;
	s->next = t->sessions;
	t->sessions = s;
	c->nsessions++;
	t->nsessions++;
	if (rw) {
		t->nrw++;
	} else {
		c->nro++;
	}
	*out = s->handle;
	return CKR_OK;
}

/* Unlinks and frees `s`, its operations and its session objects; forgets its connection
 * when this was the connection's last session. */
static void
session_destroy(struct part_token *t, struct part_session *s)
{
	struct part_session **pp;
	struct part_conn *c = s->conn;

	for (pp = &t->sessions; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	}
	part_digest_end(s);
	part_crypt_end_all(s);
	part_object_find_end(s);
	part_object_drop_session(t, s->handle);
	t->nsessions--;
	if (s->rw) {
		t->nrw--;
	} else {
		c->nro--;
	}
	/* v2.40 §5.6 C_CloseSession: "If this function is successful and it closes the last
	 * session between the application and the token, the login state of the token for the
	 * application returns to public sessions." */
	if (--c->nsessions == 0) {
		conn_unlink(t, c);
	}
	free(s);
}

CK_RV
part_session_close(struct part_token *t, uint64_t conn, CK_SESSION_HANDLE h)
{
	struct part_session *s;
	CK_RV rv;

	if ((rv = part_session_get(t, conn, h, &s)) != CKR_OK) {
		return rv;
	}
	session_destroy(t, s);
	return CKR_OK;
}

void
part_session_drop_conn(struct part_token *t, uint64_t conn)
{
	struct part_session *s, *next;
	struct part_conn *c;

	for (s = t->sessions; s != NULL; s = next) {
		next = s->next;
		if (s->conn->id == conn) {
			session_destroy(t, s);
		}
	}
	/* A connection without sessions has no entry left; this is for safety only. */
	if ((c = conn_find(t, conn)) != NULL) {
		conn_unlink(t, c);
	}
}

CK_RV
part_session_close_all(struct part_token *t, uint64_t conn, CK_SLOT_ID slot)
{
	if (slot != t->slot) {
		return CKR_SLOT_ID_INVALID;
	}
	part_session_drop_conn(t, conn);
	return CKR_OK;
}

CK_RV
part_session_info(struct part_token *t, uint64_t conn, CK_SESSION_HANDLE h, CK_SESSION_INFO *info)
{
	struct part_session *s;
	CK_RV rv;

	if ((rv = part_session_get(t, conn, h, &s)) != CKR_OK) {
		return rv;
	}
	memset(info, 0, sizeof(*info));
	info->slotID = t->slot;
	info->state = part_session_state(s);
	info->flags = CKF_SERIAL_SESSION | (s->rw ? CKF_RW_SESSION : 0);
	info->ulDeviceError = 0;
	return CKR_OK;
}

void
part_session_free_all(struct part_token *t)
{
	while (t->sessions != NULL) {
		session_destroy(t, t->sessions);
	}
	while (t->conns != NULL) {
		conn_unlink(t, t->conns);
	}
}
