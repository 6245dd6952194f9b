/*
 * proto/calls.c — the call table that drives the wire (STYLE.md rule 4), the return-value
 * names, and proto_reply_has_fields().
 *
 * Ids are the positions of the functions in CK_FUNCTION_LIST (PKCS #11 v2.40 §5.2),
 * starting at 1, and are append-only. Layout letters are listed in proto.h and
 * docs/PROTOCOL.md; the server handler for a call reads its request fields in exactly the
 * order of `req`, and the reply fields (after the CK_RV) in the order of `resp`.
 */
#include "proto/proto.h"
#include "proto/proto_int.h"

#include <stddef.h>

#define LOCAL   PROTO_CF_LOCAL
#define GW      PROTO_CF_ROUTE_GATEWAY
#define SLOT    PROTO_CF_ROUTE_SLOT
#define SESS    PROTO_CF_ROUTE_SESSION
#define SIN     PROTO_CF_SECRET_IN
#define SOUT    PROTO_CF_SECRET_OUT
#define STATE   PROTO_CF_STATE
#define INIT    PROTO_CF_OP_INIT
#define ONE     PROTO_CF_OP_ONESHOT
#define PART    PROTO_CF_OP_PART
#define OWN     PROTO_CF_OWN_SESSION
#define READ    PROTO_CF_READ_OBJECTS
#define KEYGEN  PROTO_CF_KEYGEN
#define SHARED  PROTO_CF_SHARED
#define VSHARED PROTO_CF_VENDOR_SHARED

#define CALL(fn, rq, rs, act, fl) [PROTO_CALL_##fn] = {PROTO_CALL_##fn, #fn, rq, rs, act, fl}

const struct proto_call_info proto_calls[PROTO_CALL_COUNT] = {
        [PROTO_CALL_NONE] = {PROTO_CALL_NONE, "NONE", "", "", "", 0},
        /* Answered by the client module: they manage the module itself. */
        CALL(C_Initialize, "", "", "hsm.library.initialize", LOCAL),
        CALL(C_Finalize, "", "", "hsm.library.finalize", LOCAL),
        CALL(C_GetInfo, "", "I", "hsm.library.info", LOCAL),
        CALL(C_GetFunctionList, "", "", "hsm.library.functionlist", LOCAL),
        /* Slot and token management. */
        CALL(C_GetSlotList, "bl", "L", "hsm.slot.list", GW),
        CALL(C_GetSlotInfo, "u", "S", "hsm.slot.read", SLOT),
        CALL(C_GetTokenInfo, "u", "T", "hsm.token.read", SLOT),
        CALL(C_GetMechanismList, "ul", "L", "hsm.token.mechanisms", SLOT),
        CALL(C_GetMechanismInfo, "uu", "m", "hsm.token.mechanisms", SLOT),
        /* pin, label (32 bytes, blank padded) */
        CALL(C_InitToken, "uyy", "", "hsm.token.init", SLOT | SIN | STATE | SHARED),
        CALL(C_InitPIN, "uy", "", "hsm.token.initpin", SESS | SIN | STATE | SHARED),
        CALL(C_SetPIN, "uyy", "", "hsm.token.setpin", SESS | SIN | STATE | SHARED),
        /* Sessions. C_OpenSession's pApplication and Notify stay in the client. */
        CALL(C_OpenSession, "uu", "u", "hsm.session.open", SLOT),
        CALL(C_CloseSession, "u", "", "hsm.session.close", SESS),
        CALL(C_CloseAllSessions, "u", "", "hsm.session.close", SLOT | VSHARED),
        CALL(C_GetSessionInfo, "u", "N", "hsm.session.read", SESS),
        CALL(C_GetOperationState, "uo", "O", "hsm.session.getstate", SESS | SOUT),
        /* state, encryption key, authentication key */
        CALL(C_SetOperationState, "uyuu", "", "hsm.session.setstate", SESS | SIN),
        CALL(C_Login, "uuy", "", "hsm.session.login", SESS | SIN),
        CALL(C_Logout, "u", "", "hsm.session.logout", SESS | VSHARED),
        /* Objects. */
        CALL(C_CreateObject, "ua", "u", "hsm.keys.import", SESS | SIN | STATE),
        CALL(C_CopyObject, "uua", "u", "hsm.keys.copy", SESS | STATE),
        CALL(C_DestroyObject, "uu", "", "hsm.keys.destroy", SESS | STATE | SHARED),
        CALL(C_GetObjectSize, "uu", "u", "hsm.keys.readattributes", SESS | READ),
        CALL(C_GetAttributeValue, "uuA", "Q", "hsm.keys.readattributes", SESS | SOUT | READ),
        CALL(C_SetAttributeValue, "uua", "", "hsm.keys.setattributes", SESS | SIN | STATE | SHARED),
        CALL(C_FindObjectsInit, "ua", "", "hsm.keys.list", SESS | READ),
        /* phObject is always a buffer of ulMaxObjectCount handles */
        CALL(C_FindObjects, "ul", "L", "hsm.keys.list", SESS | READ),
        CALL(C_FindObjectsFinal, "u", "", "hsm.keys.list", SESS | READ),
        /* Encryption. */
        CALL(C_EncryptInit, "uMu", "", "hsm.crypto.encrypt", SESS | INIT),
        CALL(C_Encrypt, "uyo", "O", "hsm.crypto.encrypt", SESS | SIN | ONE),
        CALL(C_EncryptUpdate, "uyo", "O", "hsm.crypto.encrypt", SESS | SIN | PART),
        CALL(C_EncryptFinal, "uo", "O", "hsm.crypto.encrypt", SESS | PART),
        CALL(C_DecryptInit, "uMu", "", "hsm.crypto.decrypt", SESS | INIT),
        CALL(C_Decrypt, "uyo", "O", "hsm.crypto.decrypt", SESS | SOUT | ONE),
        CALL(C_DecryptUpdate, "uyo", "O", "hsm.crypto.decrypt", SESS | SOUT | PART),
        CALL(C_DecryptFinal, "uo", "O", "hsm.crypto.decrypt", SESS | SOUT | PART),
        /* Digests. */
        CALL(C_DigestInit, "uM", "", "hsm.crypto.digest", SESS | INIT),
        CALL(C_Digest, "uyo", "O", "hsm.crypto.digest", SESS | ONE),
        CALL(C_DigestUpdate, "uy", "", "hsm.crypto.digest", SESS | PART),
        CALL(C_DigestKey, "uu", "", "hsm.crypto.digest", SESS),
        CALL(C_DigestFinal, "uo", "O", "hsm.crypto.digest", SESS | PART),
        /* Signatures. */
        CALL(C_SignInit, "uMu", "", "hsm.crypto.sign", SESS | INIT),
        CALL(C_Sign, "uyo", "O", "hsm.crypto.sign", SESS | ONE),
        CALL(C_SignUpdate, "uy", "", "hsm.crypto.sign", SESS | PART),
        CALL(C_SignFinal, "uo", "O", "hsm.crypto.sign", SESS | PART),
        CALL(C_SignRecoverInit, "uMu", "", "hsm.crypto.sign", SESS | INIT),
        CALL(C_SignRecover, "uyo", "O", "hsm.crypto.sign", SESS | ONE),
        CALL(C_VerifyInit, "uMu", "", "hsm.crypto.verify", SESS | INIT),
        /* data, signature */
        CALL(C_Verify, "uyy", "", "hsm.crypto.verify", SESS | ONE),
        CALL(C_VerifyUpdate, "uy", "", "hsm.crypto.verify", SESS | PART),
        CALL(C_VerifyFinal, "uy", "", "hsm.crypto.verify", SESS | PART),
        CALL(C_VerifyRecoverInit, "uMu", "", "hsm.crypto.verify", SESS | INIT),
        CALL(C_VerifyRecover, "uyo", "O", "hsm.crypto.verify", SESS | SOUT | ONE),
        /* Dual-function updates: both operations were authorised at their Init; the action
         * names the one whose output leaves the token. */
        CALL(C_DigestEncryptUpdate, "uyo", "O", "hsm.crypto.encrypt", SESS | SIN | PART),
        CALL(C_DecryptDigestUpdate, "uyo", "O", "hsm.crypto.decrypt", SESS | SOUT | PART),
        CALL(C_SignEncryptUpdate, "uyo", "O", "hsm.crypto.encrypt", SESS | SIN | PART),
        CALL(C_DecryptVerifyUpdate, "uyo", "O", "hsm.crypto.decrypt", SESS | SOUT | PART),
        /* Keys. */
        CALL(C_GenerateKey, "uMa", "u", "hsm.keys.generate", SESS | STATE | KEYGEN),
        /* public template, private template → public handle, private handle */
        CALL(C_GenerateKeyPair, "uMaa", "uu", "hsm.keys.generatepair", SESS | STATE | KEYGEN),
        /* wrapping key, key */
        CALL(C_WrapKey, "uMuuo", "O", "hsm.keys.wrap", SESS | SOUT),
        /* unwrapping key, wrapped key, template */
        CALL(C_UnwrapKey, "uMuya", "u", "hsm.keys.unwrap", SESS | SIN | STATE),
        /* base key, template; derivation data in the mechanism may be secret */
        CALL(C_DeriveKey, "uMua", "u", "hsm.keys.derive", SESS | SIN | STATE),
        /* Random numbers. C_GenerateRandom's buffer is an 'o' of exactly ulRandomLen. */
        CALL(C_SeedRandom, "uy", "", "hsm.random.seed", SESS | OWN),
        CALL(C_GenerateRandom, "uo", "O", "hsm.random.generate", SESS | SOUT | OWN),
        /* Legacy: a v2.40 token answers CKR_FUNCTION_NOT_PARALLEL. */
        CALL(C_GetFunctionStatus, "u", "", "hsm.session.read", SESS),
        CALL(C_CancelFunction, "u", "", "hsm.session.read", SESS),
        /* flags → slot; the gateway answers it from its slot list. */
        CALL(C_WaitForSlotEvent, "u", "u", "hsm.slot.wait", GW),
};

const struct proto_call_info *
proto_call_get(unsigned id)
{
	if (id == PROTO_CALL_NONE || id >= PROTO_CALL_COUNT) {
		return NULL;
	}
	return &proto_calls[id];
}

int
proto_reply_has_fields(unsigned call, CK_RV rv)
{
	switch (rv) {
	case CKR_OK:
	case CKR_BUFFER_TOO_SMALL:
		return 1;
	case CKR_ATTRIBUTE_SENSITIVE:
	case CKR_ATTRIBUTE_TYPE_INVALID:
		/* PKCS #11 v2.40 §5.7: "Note that the error codes CKR_ATTRIBUTE_SENSITIVE,
		 * CKR_ATTRIBUTE_TYPE_INVALID, and CKR_BUFFER_TOO_SMALL do not denote true errors
		 * for C_GetAttributeValue" — the template is still processed in full. */
		return call == PROTO_CALL_C_GetAttributeValue;
	default:
		return 0;
	}
}

#define RV(x)                                                                                      \
	{                                                                                          \
		x, #x                                                                              \
	}
static const struct {
	CK_RV rv;
	const char *name;
} rv_names[] = {
        RV(CKR_OK),
        RV(CKR_CANCEL),
        RV(CKR_HOST_MEMORY),
        RV(CKR_SLOT_ID_INVALID),
        RV(CKR_GENERAL_ERROR),
        RV(CKR_FUNCTION_FAILED),
        RV(CKR_ARGUMENTS_BAD),
        RV(CKR_NO_EVENT),
        RV(CKR_NEED_TO_CREATE_THREADS),
        RV(CKR_CANT_LOCK),
        RV(CKR_ATTRIBUTE_READ_ONLY),
        RV(CKR_ATTRIBUTE_SENSITIVE),
        RV(CKR_ATTRIBUTE_TYPE_INVALID),
        RV(CKR_ATTRIBUTE_VALUE_INVALID),
        RV(CKR_ACTION_PROHIBITED),
        RV(CKR_DATA_INVALID),
        RV(CKR_DATA_LEN_RANGE),
        RV(CKR_DEVICE_ERROR),
        RV(CKR_DEVICE_MEMORY),
        RV(CKR_DEVICE_REMOVED),
        RV(CKR_ENCRYPTED_DATA_INVALID),
        RV(CKR_ENCRYPTED_DATA_LEN_RANGE),
        RV(CKR_FUNCTION_CANCELED),
        RV(CKR_FUNCTION_NOT_PARALLEL),
        RV(CKR_FUNCTION_NOT_SUPPORTED),
        RV(CKR_KEY_HANDLE_INVALID),
        RV(CKR_KEY_SIZE_RANGE),
        RV(CKR_KEY_TYPE_INCONSISTENT),
        RV(CKR_KEY_NOT_NEEDED),
        RV(CKR_KEY_CHANGED),
        RV(CKR_KEY_NEEDED),
        RV(CKR_KEY_INDIGESTIBLE),
        RV(CKR_KEY_FUNCTION_NOT_PERMITTED),
        RV(CKR_KEY_NOT_WRAPPABLE),
        RV(CKR_KEY_UNEXTRACTABLE),
        RV(CKR_MECHANISM_INVALID),
        RV(CKR_MECHANISM_PARAM_INVALID),
        RV(CKR_OBJECT_HANDLE_INVALID),
        RV(CKR_OPERATION_ACTIVE),
        RV(CKR_OPERATION_NOT_INITIALIZED),
        RV(CKR_PIN_INCORRECT),
        RV(CKR_PIN_INVALID),
        RV(CKR_PIN_LEN_RANGE),
        RV(CKR_PIN_EXPIRED),
        RV(CKR_PIN_LOCKED),
        RV(CKR_SESSION_CLOSED),
        RV(CKR_SESSION_COUNT),
        RV(CKR_SESSION_HANDLE_INVALID),
        RV(CKR_SESSION_PARALLEL_NOT_SUPPORTED),
        RV(CKR_SESSION_READ_ONLY),
        RV(CKR_SESSION_EXISTS),
        RV(CKR_SESSION_READ_ONLY_EXISTS),
        RV(CKR_SESSION_READ_WRITE_SO_EXISTS),
        RV(CKR_SIGNATURE_INVALID),
        RV(CKR_SIGNATURE_LEN_RANGE),
        RV(CKR_TEMPLATE_INCOMPLETE),
        RV(CKR_TEMPLATE_INCONSISTENT),
        RV(CKR_TOKEN_NOT_PRESENT),
        RV(CKR_TOKEN_NOT_RECOGNIZED),
        RV(CKR_TOKEN_WRITE_PROTECTED),
        RV(CKR_UNWRAPPING_KEY_HANDLE_INVALID),
        RV(CKR_UNWRAPPING_KEY_SIZE_RANGE),
        RV(CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT),
        RV(CKR_USER_ALREADY_LOGGED_IN),
        RV(CKR_USER_NOT_LOGGED_IN),
        RV(CKR_USER_PIN_NOT_INITIALIZED),
        RV(CKR_USER_TYPE_INVALID),
        RV(CKR_USER_ANOTHER_ALREADY_LOGGED_IN),
        RV(CKR_USER_TOO_MANY_TYPES),
        RV(CKR_WRAPPED_KEY_INVALID),
        RV(CKR_WRAPPED_KEY_LEN_RANGE),
        RV(CKR_WRAPPING_KEY_HANDLE_INVALID),
        RV(CKR_WRAPPING_KEY_SIZE_RANGE),
        RV(CKR_WRAPPING_KEY_TYPE_INCONSISTENT),
        RV(CKR_RANDOM_SEED_NOT_SUPPORTED),
        RV(CKR_RANDOM_NO_RNG),
        RV(CKR_DOMAIN_PARAMS_INVALID),
        RV(CKR_CURVE_NOT_SUPPORTED),
        RV(CKR_BUFFER_TOO_SMALL),
        RV(CKR_SAVED_STATE_INVALID),
        RV(CKR_INFORMATION_SENSITIVE),
        RV(CKR_STATE_UNSAVEABLE),
        RV(CKR_CRYPTOKI_NOT_INITIALIZED),
        RV(CKR_CRYPTOKI_ALREADY_INITIALIZED),
        RV(CKR_MUTEX_BAD),
        RV(CKR_MUTEX_NOT_LOCKED),
        RV(CKR_NEW_PIN_MODE),
        RV(CKR_NEXT_OTP),
        RV(CKR_EXCEEDED_MAX_ITERATIONS),
        RV(CKR_FIPS_SELF_TEST_FAILED),
        RV(CKR_LIBRARY_LOAD_FAILED),
        RV(CKR_PIN_TOO_WEAK),
        RV(CKR_PUBLIC_KEY_INVALID),
        RV(CKR_FUNCTION_REJECTED),
        RV(CKR_VENDOR_DEFINED),
};

const char *
proto_rv_name(CK_RV rv)
{
	size_t i;

	for (i = 0; i < sizeof(rv_names) / sizeof(rv_names[0]); i++) {
		if (rv_names[i].rv == rv) {
			return rv_names[i].name;
		}
	}
	return NULL;
}
