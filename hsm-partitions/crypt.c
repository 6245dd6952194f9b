/*
 * hsm-partitions/crypt.c — the cryptographic operations of a session: C_Encrypt*,
 * C_Decrypt*, C_Sign*, C_Verify*, C_SignRecover*, C_VerifyRecover* and the dual-function
 * updates. The engine (crypto/) does the cryptography; this file resolves the key handle
 * and enforces what PKCS #11 asks of the token around it:
 *
 * - v2.40 §5.2: a session has at most one active operation of each kind
 *   (CKR_OPERATION_ACTIVE); C_SignRecover shares the signing slot and C_VerifyRecover the
 *   verification slot.
 * - The key usage attributes (CKA_ENCRYPT, CKA_DECRYPT, CKA_SIGN, CKA_VERIFY,
 *   CKA_SIGN_RECOVER, CKA_VERIFY_RECOVER): "CKR_KEY_FUNCTION_NOT_PERMITTED: An attempt has
 *   been made to use a key for a cryptographic purpose that the key's attributes are not
 *   set to allow it to do" (§5.1). CKA_ALLOWED_MECHANISMS (§4.7) refuses any other
 *   mechanism with CKR_MECHANISM_INVALID.
 * - Operation ends (§5.8 C_Encrypt and the like): "A call to C_Encrypt always terminates
 *   the active encryption operation unless it returns CKR_BUFFER_TOO_SMALL or is a
 *   successful call (i.e., one which returns CKR_OK) to determine the length of the
 *   buffer needed"; an update or final that fails ends the operation too.
 */
#include "hsm-partitions/part_int.h"

#include <stdlib.h>
#include <string.h>

static enum part_ops
slot_of(enum part_op_kind kind)
{
	switch (kind) {
	case PART_OP_ENCRYPT:
		return PART_OPS_ENCRYPT;
	case PART_OP_DECRYPT:
		return PART_OPS_DECRYPT;
	case PART_OP_SIGN:
	case PART_OP_SIGN_RECOVER:
		return PART_OPS_SIGN;
	case PART_OP_VERIFY:
	case PART_OP_VERIFY_RECOVER:
		return PART_OPS_VERIFY;
	case PART_OP_DIGEST:
	default:
		return PART_OPS;
	}
}

static CK_ATTRIBUTE_TYPE
usage_of(enum part_op_kind kind)
{
	switch (kind) {
	case PART_OP_ENCRYPT:
		return CKA_ENCRYPT;
	case PART_OP_DECRYPT:
		return CKA_DECRYPT;
	case PART_OP_SIGN:
		return CKA_SIGN;
	case PART_OP_VERIFY:
		return CKA_VERIFY;
	case PART_OP_SIGN_RECOVER:
		return CKA_SIGN_RECOVER;
	case PART_OP_VERIFY_RECOVER:
		return CKA_VERIFY_RECOVER;
	case PART_OP_DIGEST:
	default:
		return CKA_VENDOR_DEFINED;
	}
}

static CK_FLAGS
flag_of(enum part_op_kind kind)
{
	switch (kind) {
	case PART_OP_ENCRYPT:
		return CKF_ENCRYPT;
	case PART_OP_DECRYPT:
		return CKF_DECRYPT;
	case PART_OP_SIGN:
		return CKF_SIGN;
	case PART_OP_VERIFY:
		return CKF_VERIFY;
	case PART_OP_SIGN_RECOVER:
		return CKF_SIGN_RECOVER;
	case PART_OP_VERIFY_RECOVER:
		return CKF_VERIFY_RECOVER;
	case PART_OP_DIGEST:
	default:
		return CKF_DIGEST;
	}
}

/* Whether a key of class `cls` can do `kind`: the private half (or a secret key) decrypts
 * and signs, the public half (or a secret key) encrypts and verifies. */
static int
class_ok(enum part_op_kind kind, CK_OBJECT_CLASS cls)
{
	if (cls == CKO_SECRET_KEY) {
		return 1;
	}
	switch (kind) {
	case PART_OP_ENCRYPT:
	case PART_OP_VERIFY:
	case PART_OP_VERIFY_RECOVER:
		return cls == CKO_PUBLIC_KEY;
	case PART_OP_DECRYPT:
	case PART_OP_SIGN:
	case PART_OP_SIGN_RECOVER:
		return cls == CKO_PRIVATE_KEY;
	case PART_OP_DIGEST:
	default:
		return 0;
	}
}

static void
op_end(struct part_session *s, enum part_ops slot)
{
	part_op_free(s->op[slot]);
	s->op[slot] = NULL;
}

void
part_crypt_end_all(struct part_session *s)
{
	int i;

	for (i = 0; i < PART_OPS; i++) {
		op_end(s, (enum part_ops)i);
	}
}

CK_RV
part_crypt_init(struct part_token *t, uint64_t conn, CK_SESSION_HANDLE h, enum part_op_kind kind,
                const CK_MECHANISM *m, CK_OBJECT_HANDLE key)
{
	enum part_ops slot = slot_of(kind);
	const struct part_key *k;
	struct part_session *s;
	struct part_object *o;
	CK_MECHANISM_INFO info;
	struct part_op *op = NULL;
	CK_RV rv;

	if ((rv = part_session_get(t, conn, h, &s)) != CKR_OK) {
		return rv;
	}
	if (slot == PART_OPS || m == NULL) {
		return CKR_ARGUMENTS_BAD;
	}
	if (s->op[slot] != NULL) {
		return CKR_OPERATION_ACTIVE;
	}
	if (part_object_lookup(t, s, key, &o) != CKR_OK ||
	    (o->cls != CKO_SECRET_KEY && o->cls != CKO_PUBLIC_KEY && o->cls != CKO_PRIVATE_KEY)) {
		return CKR_KEY_HANDLE_INVALID;
	}
	if (part_mech_info(m->mechanism, &info) != CKR_OK || (info.flags & flag_of(kind)) == 0) {
		return CKR_MECHANISM_INVALID;
	}
	if (!class_ok(kind, o->cls)) {
		return CKR_KEY_TYPE_INCONSISTENT;
	}
	if (!part_object_bool(o, usage_of(kind))) {
		return CKR_KEY_FUNCTION_NOT_PERMITTED;
	}
	if (!part_object_mech_allowed(o, m->mechanism)) {
		return CKR_MECHANISM_INVALID;
	}
	if ((rv = part_object_key(o, &k)) != CKR_OK ||
	    (rv = part_mech_op_init(kind, m, k, &op)) != CKR_OK) {
		return rv;
	}
	s->op[slot] = op;
	s->op_kind[slot] = kind;
	return CKR_OK;
}

/* The active operation of `kind` in session `h`: CKR_OPERATION_NOT_INITIALIZED when the
 * slot is empty or holds another kind (C_Sign after C_SignRecoverInit). */
static CK_RV
active(struct part_token *t, uint64_t conn, CK_SESSION_HANDLE h, enum part_op_kind kind,
       struct part_session **s, enum part_ops *slot)
{
	CK_RV rv;

	if ((rv = part_session_get(t, conn, h, s)) != CKR_OK) {
		return rv;
	}
	*slot = slot_of(kind);
	if (*slot == PART_OPS || (*s)->op[*slot] == NULL || (*s)->op_kind[*slot] != kind) {
		return CKR_OPERATION_NOT_INITIALIZED;
	}
	return CKR_OK;
}

/* Whether `rv` leaves the operation going: a too-small buffer, or a size query. */
static int
keeps_going(CK_RV rv, const CK_BYTE *out, const CK_ULONG *outlen)
{
	return rv == CKR_BUFFER_TOO_SMALL || (rv == CKR_OK && out == NULL && outlen != NULL);
}

CK_RV
part_crypt_oneshot(struct part_token *t, uint64_t conn, CK_SESSION_HANDLE h, enum part_op_kind kind,
                   const CK_BYTE *in, CK_ULONG inlen, CK_BYTE *out, CK_ULONG *outlen)
{
	struct part_session *s;
	enum part_ops slot;
	CK_RV rv;

	if ((rv = active(t, conn, h, kind, &s, &slot)) != CKR_OK) {
		return rv;
	}
	if (in == NULL && inlen != 0) {
		op_end(s, slot);
		return CKR_ARGUMENTS_BAD;
	}
	rv = part_op_oneshot(s->op[slot], in, inlen, out, outlen);
	if (!keeps_going(rv, out, outlen)) {
		op_end(s, slot);
	}
	return rv;
}

struct part_op *
part_crypt_lend(struct part_token *t, uint64_t conn, CK_SESSION_HANDLE h, enum part_op_kind kind)
{
	struct part_session *s;
	enum part_ops slot;

	if (active(t, conn, h, kind, &s, &slot) != CKR_OK || !part_op_heavy(s->op[slot])) {
		return NULL;
	}
	return s->op[slot];
}

void
part_crypt_settle(struct part_token *t, uint64_t conn, CK_SESSION_HANDLE h, enum part_op_kind kind,
                  CK_RV rv, const CK_BYTE *out, const CK_ULONG *outlen)
{
	struct part_session *s;
	enum part_ops slot;

	if (active(t, conn, h, kind, &s, &slot) == CKR_OK && !keeps_going(rv, out, outlen)) {
		op_end(s, slot);
	}
}

CK_RV
part_crypt_update(struct part_token *t, uint64_t conn, CK_SESSION_HANDLE h, enum part_op_kind kind,
                  const CK_BYTE *in, CK_ULONG inlen, CK_BYTE *out, CK_ULONG *outlen)
{
	struct part_session *s;
	enum part_ops slot;
	CK_RV rv;

	if ((rv = active(t, conn, h, kind, &s, &slot)) != CKR_OK) {
		return rv;
	}
	if (in == NULL && inlen != 0) {
		op_end(s, slot);
		return CKR_ARGUMENTS_BAD;
	}
	rv = part_op_update(s->op[slot], in, inlen, out, outlen);
	if (rv != CKR_OK && !keeps_going(rv, out, outlen)) {
		op_end(s, slot);
	}
	return rv;
}

CK_RV
part_crypt_final(struct part_token *t, uint64_t conn, CK_SESSION_HANDLE h, enum part_op_kind kind,
                 CK_BYTE *out, CK_ULONG *outlen)
{
	struct part_session *s;
	enum part_ops slot;
	CK_RV rv;

	if ((rv = active(t, conn, h, kind, &s, &slot)) != CKR_OK) {
		return rv;
	}
	rv = part_op_final(s->op[slot], out, outlen);
	if (!keeps_going(rv, out, outlen)) {
		op_end(s, slot);
	}
	return rv;
}

CK_RV
part_crypt_verify(struct part_token *t, uint64_t conn, CK_SESSION_HANDLE h, const CK_BYTE *data,
                  CK_ULONG datalen, int final, const CK_BYTE *sig, CK_ULONG siglen)
{
	struct part_session *s;
	enum part_ops slot;
	CK_RV rv;

	if ((rv = active(t, conn, h, PART_OP_VERIFY, &s, &slot)) != CKR_OK) {
		return rv;
	}
	/* §5.13: "A call to C_Verify always terminates the active verification operation";
	 * so does C_VerifyFinal. */
	if ((data == NULL && datalen != 0) || (sig == NULL && siglen != 0)) {
		rv = CKR_ARGUMENTS_BAD;
	} else if (final) {
		rv = part_op_verify_final(s->op[slot], sig, siglen);
	} else {
		rv = part_op_verify(s->op[slot], data, datalen, sig, siglen);
	}
	op_end(s, slot);
	return rv;
}

/*
 * The dual-function updates (§5.14): the output-producing half runs first with the
 * size-query convention, so that a size query or a short buffer changes nothing; the
 * other half then takes the input (C_DigestEncryptUpdate, C_SignEncryptUpdate) or the
 * recovered plaintext (C_DecryptDigestUpdate, C_DecryptVerifyUpdate). An error in either
 * half ends both operations.
 */
CK_RV
part_crypt_dual(struct part_token *t, uint64_t conn, CK_SESSION_HANDLE h, unsigned call,
                const CK_BYTE *in, CK_ULONG inlen, CK_BYTE *out, CK_ULONG *outlen)
{
	enum part_op_kind first, second;
	enum part_ops slot1, slot2 = PART_OPS;
	struct part_session *s;
	const CK_BYTE *feed;
	CK_ULONG feedlen;
	CK_RV rv;

	switch (call) {
	case PROTO_CALL_C_DigestEncryptUpdate:
		first = PART_OP_ENCRYPT;
		second = PART_OP_DIGEST;
		break;
	case PROTO_CALL_C_DecryptDigestUpdate:
		first = PART_OP_DECRYPT;
		second = PART_OP_DIGEST;
		break;
	case PROTO_CALL_C_SignEncryptUpdate:
		first = PART_OP_ENCRYPT;
		second = PART_OP_SIGN;
		break;
	case PROTO_CALL_C_DecryptVerifyUpdate:
		first = PART_OP_DECRYPT;
		second = PART_OP_VERIFY;
		break;
	default:
		return CKR_FUNCTION_NOT_SUPPORTED;
	}
	if ((rv = active(t, conn, h, first, &s, &slot1)) != CKR_OK) {
		return rv;
	}
	if (second == PART_OP_DIGEST) {
		if (s->md == NULL) {
			return CKR_OPERATION_NOT_INITIALIZED;
		}
	} else if ((rv = active(t, conn, h, second, &s, &slot2)) != CKR_OK) {
		return rv;
	}
	if (in == NULL && inlen != 0) {
		rv = CKR_ARGUMENTS_BAD;
		goto fail;
	}
	rv = part_op_update(s->op[slot1], in, inlen, out, outlen);
	if (keeps_going(rv, out, outlen)) {
		return rv;
	}
	if (rv != CKR_OK) {
		goto fail;
	}
	feed = first == PART_OP_ENCRYPT ? in : out;
	feedlen = first == PART_OP_ENCRYPT ? inlen : *outlen;
	if (second == PART_OP_DIGEST) {
		if ((rv = part_digest_update(t, conn, h, feed, feedlen)) != CKR_OK) {
			op_end(s, slot1);
		}
		return rv;
	}
	if ((rv = part_op_update(s->op[slot2], feed, feedlen, NULL, NULL)) != CKR_OK) {
		goto fail;
	}
	return CKR_OK;
fail:
	op_end(s, slot1);
	if (slot2 != PART_OPS) {
		op_end(s, slot2);
	} else {
		part_digest_end(s);
	}
	return rv;
}
