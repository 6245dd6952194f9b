/* tests/proto/test_calls.c — the call table, routing, reply rules and CK_RV names
 * (proto/calls.c). */
#include "tests/proto/proto_test.h"

/* CK_FUNCTION_LIST order, PKCS #11 v2.40 §5.2. */
static const char *const v240[] = {
        "C_Initialize",
        "C_Finalize",
        "C_GetInfo",
        "C_GetFunctionList",
        "C_GetSlotList",
        "C_GetSlotInfo",
        "C_GetTokenInfo",
        "C_GetMechanismList",
        "C_GetMechanismInfo",
        "C_InitToken",
        "C_InitPIN",
        "C_SetPIN",
        "C_OpenSession",
        "C_CloseSession",
        "C_CloseAllSessions",
        "C_GetSessionInfo",
        "C_GetOperationState",
        "C_SetOperationState",
        "C_Login",
        "C_Logout",
        "C_CreateObject",
        "C_CopyObject",
        "C_DestroyObject",
        "C_GetObjectSize",
        "C_GetAttributeValue",
        "C_SetAttributeValue",
        "C_FindObjectsInit",
        "C_FindObjects",
        "C_FindObjectsFinal",
        "C_EncryptInit",
        "C_Encrypt",
        "C_EncryptUpdate",
        "C_EncryptFinal",
        "C_DecryptInit",
        "C_Decrypt",
        "C_DecryptUpdate",
        "C_DecryptFinal",
        "C_DigestInit",
        "C_Digest",
        "C_DigestUpdate",
        "C_DigestKey",
        "C_DigestFinal",
        "C_SignInit",
        "C_Sign",
        "C_SignUpdate",
        "C_SignFinal",
        "C_SignRecoverInit",
        "C_SignRecover",
        "C_VerifyInit",
        "C_Verify",
        "C_VerifyUpdate",
        "C_VerifyFinal",
        "C_VerifyRecoverInit",
        "C_VerifyRecover",
        "C_DigestEncryptUpdate",
        "C_DecryptDigestUpdate",
        "C_SignEncryptUpdate",
        "C_DecryptVerifyUpdate",
        "C_GenerateKey",
        "C_GenerateKeyPair",
        "C_WrapKey",
        "C_UnwrapKey",
        "C_DeriveKey",
        "C_SeedRandom",
        "C_GenerateRandom",
        "C_GetFunctionStatus",
        "C_CancelFunction",
        "C_WaitForSlotEvent",
};

static void
test_ids_match_positions(void)
{
	unsigned i;

	CU_ASSERT_EQUAL(PROTO_CALL_COUNT, 69);
	CU_ASSERT_EQUAL(sizeof(v240) / sizeof(v240[0]), 68);
	for (i = 0; i < PROTO_CALL_COUNT; i++) {
		CU_ASSERT_EQUAL(proto_calls[i].id, i);
	}
}

static void
test_every_v240_function(void)
{
	unsigned i;

	for (i = 1; i < PROTO_CALL_COUNT; i++) {
		CU_ASSERT_PTR_NOT_NULL_FATAL(proto_calls[i].name);
		CU_ASSERT_EQUAL(strncmp(proto_calls[i].name, "C_", 2), 0);
		CU_ASSERT_STRING_EQUAL(proto_calls[i].name, v240[i - 1]);
		CU_ASSERT_PTR_NOT_NULL(proto_calls[i].req);
		CU_ASSERT_PTR_NOT_NULL(proto_calls[i].resp);
		CU_ASSERT_PTR_NOT_NULL(proto_calls[i].action);
		CU_ASSERT_EQUAL(strncmp(proto_calls[i].action, "hsm.", 4), 0);
		CU_ASSERT_PTR_EQUAL(proto_call_get(i), &proto_calls[i]);
	}
	CU_ASSERT_PTR_NULL(proto_call_get(0));
	CU_ASSERT_PTR_NULL(proto_call_get(PROTO_CALL_COUNT));
	CU_ASSERT_PTR_NULL(proto_call_get(0xffff));
	CU_ASSERT_EQUAL(PROTO_CALL_C_Sign, 44);
	CU_ASSERT_EQUAL(PROTO_CALL_C_WaitForSlotEvent, 68);
}

static void
test_layout_letters(void)
{
	const char *p;
	unsigned i;

	for (i = 1; i < PROTO_CALL_COUNT; i++) {
		for (p = proto_calls[i].req; *p != '\0'; p++) {
			CU_ASSERT_PTR_NOT_NULL(strchr("ubyoaAMl", *p));
		}
		for (p = proto_calls[i].resp; *p != '\0'; p++) {
			CU_ASSERT_PTR_NOT_NULL(strchr("ubOQLISTNm", *p));
		}
		/* an 'o' request has an 'O' reply, an 'l' an 'L', an 'A' a 'Q' */
		CU_ASSERT_EQUAL(strchr(proto_calls[i].req, 'o') != NULL,
		                strchr(proto_calls[i].resp, 'O') != NULL);
		CU_ASSERT_EQUAL(strchr(proto_calls[i].req, 'l') != NULL,
		                strchr(proto_calls[i].resp, 'L') != NULL);
		CU_ASSERT_EQUAL(strchr(proto_calls[i].req, 'A') != NULL,
		                strchr(proto_calls[i].resp, 'Q') != NULL);
	}
	CU_ASSERT_STRING_EQUAL(proto_calls[PROTO_CALL_C_SignInit].req, "uMu");
	CU_ASSERT_STRING_EQUAL(proto_calls[PROTO_CALL_C_Sign].req, "uyo");
	CU_ASSERT_STRING_EQUAL(proto_calls[PROTO_CALL_C_Sign].resp, "O");
	CU_ASSERT_STRING_EQUAL(proto_calls[PROTO_CALL_C_GetAttributeValue].req, "uuA");
	CU_ASSERT_STRING_EQUAL(proto_calls[PROTO_CALL_C_GenerateKeyPair].req, "uMaa");
	CU_ASSERT_STRING_EQUAL(proto_calls[PROTO_CALL_C_GenerateKeyPair].resp, "uu");
}

static void
test_actions(void)
{
	static const struct {
		unsigned id;
		const char *action;
	} want[] = {
	        {PROTO_CALL_C_Sign, "hsm.crypto.sign"},
	        {PROTO_CALL_C_SignInit, "hsm.crypto.sign"},
	        {PROTO_CALL_C_GenerateKeyPair, "hsm.keys.generatepair"},
	        {PROTO_CALL_C_GenerateKey, "hsm.keys.generate"},
	        {PROTO_CALL_C_Login, "hsm.session.login"},
	        {PROTO_CALL_C_OpenSession, "hsm.session.open"},
	        {PROTO_CALL_C_GetTokenInfo, "hsm.token.read"},
	        {PROTO_CALL_C_InitToken, "hsm.token.init"},
	        {PROTO_CALL_C_CreateObject, "hsm.keys.import"},
	        {PROTO_CALL_C_DestroyObject, "hsm.keys.destroy"},
	        {PROTO_CALL_C_GetAttributeValue, "hsm.keys.readattributes"},
	        {PROTO_CALL_C_SetAttributeValue, "hsm.keys.setattributes"},
	        {PROTO_CALL_C_WrapKey, "hsm.keys.wrap"},
	        {PROTO_CALL_C_UnwrapKey, "hsm.keys.unwrap"},
	        {PROTO_CALL_C_DeriveKey, "hsm.keys.derive"},
	        {PROTO_CALL_C_EncryptInit, "hsm.crypto.encrypt"},
	        {PROTO_CALL_C_Encrypt, "hsm.crypto.encrypt"},
	        {PROTO_CALL_C_EncryptUpdate, "hsm.crypto.encrypt"},
	        {PROTO_CALL_C_EncryptFinal, "hsm.crypto.encrypt"},
	        {PROTO_CALL_C_Decrypt, "hsm.crypto.decrypt"},
	        {PROTO_CALL_C_DigestInit, "hsm.crypto.digest"},
	        {PROTO_CALL_C_Digest, "hsm.crypto.digest"},
	        {PROTO_CALL_C_DigestFinal, "hsm.crypto.digest"},
	        {PROTO_CALL_C_Verify, "hsm.crypto.verify"},
	        {PROTO_CALL_C_GenerateRandom, "hsm.random.generate"},
	        {PROTO_CALL_C_FindObjectsInit, "hsm.keys.list"},
	        {PROTO_CALL_C_FindObjects, "hsm.keys.list"},
	        {PROTO_CALL_C_FindObjectsFinal, "hsm.keys.list"},
	};
	size_t i;

	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		CU_ASSERT_STRING_EQUAL(proto_calls[want[i].id].action, want[i].action);
	}
}

static void
test_routing(void)
{
	const uint32_t route = PROTO_CF_LOCAL | PROTO_CF_ROUTE_GATEWAY | PROTO_CF_ROUTE_SLOT |
	                       PROTO_CF_ROUTE_SESSION;
	unsigned i;

	for (i = 1; i < PROTO_CALL_COUNT; i++) {
		uint32_t f = proto_calls[i].flags & route;
		uint32_t want;

		switch (i) {
		case PROTO_CALL_C_Initialize:
		case PROTO_CALL_C_Finalize:
		case PROTO_CALL_C_GetInfo:
		case PROTO_CALL_C_GetFunctionList:
			want = PROTO_CF_LOCAL;
			break;
		case PROTO_CALL_C_GetSlotList:
		case PROTO_CALL_C_WaitForSlotEvent:
			want = PROTO_CF_ROUTE_GATEWAY;
			break;
		case PROTO_CALL_C_GetSlotInfo:
		case PROTO_CALL_C_GetTokenInfo:
		case PROTO_CALL_C_GetMechanismList:
		case PROTO_CALL_C_GetMechanismInfo:
		case PROTO_CALL_C_InitToken:
		case PROTO_CALL_C_OpenSession:
		case PROTO_CALL_C_CloseAllSessions:
			want = PROTO_CF_ROUTE_SLOT;
			break;
		default:
			want = PROTO_CF_ROUTE_SESSION;
			break;
		}
		CU_ASSERT_EQUAL(f, want);
		if (f == PROTO_CF_ROUTE_SLOT || f == PROTO_CF_ROUTE_SESSION) {
			/* the routing field comes first */
			CU_ASSERT_EQUAL(proto_calls[i].req[0], 'u');
		}
	}
}

static void
test_secret_flags(void)
{
	static const unsigned secret_in[] = {PROTO_CALL_C_InitToken,
	                                     PROTO_CALL_C_InitPIN,
	                                     PROTO_CALL_C_SetPIN,
	                                     PROTO_CALL_C_Login,
	                                     PROTO_CALL_C_CreateObject,
	                                     PROTO_CALL_C_UnwrapKey,
	                                     PROTO_CALL_C_SetOperationState,
	                                     PROTO_CALL_C_Encrypt};
	static const unsigned secret_out[] = {
	        PROTO_CALL_C_Decrypt, PROTO_CALL_C_WrapKey, PROTO_CALL_C_GetAttributeValue,
	        PROTO_CALL_C_GenerateRandom, PROTO_CALL_C_GetOperationState};
	static const unsigned state[] = {
	        PROTO_CALL_C_InitToken,   PROTO_CALL_C_CreateObject,     PROTO_CALL_C_DestroyObject,
	        PROTO_CALL_C_GenerateKey, PROTO_CALL_C_GenerateKeyPair,  PROTO_CALL_C_UnwrapKey,
	        PROTO_CALL_C_DeriveKey,   PROTO_CALL_C_SetAttributeValue};
	size_t i;

	for (i = 0; i < sizeof(secret_in) / sizeof(secret_in[0]); i++) {
		CU_ASSERT(proto_calls[secret_in[i]].flags & PROTO_CF_SECRET_IN);
	}
	for (i = 0; i < sizeof(secret_out) / sizeof(secret_out[0]); i++) {
		CU_ASSERT(proto_calls[secret_out[i]].flags & PROTO_CF_SECRET_OUT);
	}
	for (i = 0; i < sizeof(state) / sizeof(state[0]); i++) {
		CU_ASSERT(proto_calls[state[i]].flags & PROTO_CF_STATE);
	}
	/* operation inits, single-part calls and parts of multi-part ones: exactly these */
	for (i = 0; i < PROTO_CALL_COUNT; i++) {
		const char *n = proto_calls[i].name;
		size_t l = n != NULL ? strlen(n) : 0;
		int init = l > 4 && strcmp(n + l - 4, "Init") == 0 &&
		           strcmp(n, "C_FindObjectsInit") != 0 && strcmp(n, "C_InitToken") != 0;
		int one = n != NULL &&
		          (strcmp(n, "C_Encrypt") == 0 || strcmp(n, "C_Decrypt") == 0 ||
		           strcmp(n, "C_Digest") == 0 || strcmp(n, "C_Sign") == 0 ||
		           strcmp(n, "C_SignRecover") == 0 || strcmp(n, "C_Verify") == 0 ||
		           strcmp(n, "C_VerifyRecover") == 0);
		/* the updates and finals of the crypt family; C_DigestKey reads an object */
		int part = n != NULL && strcmp(n, "C_DigestKey") != 0 &&
		           (strstr(n, "Update") != NULL ||
		            (l > 5 && strcmp(n + l - 5, "Final") == 0 &&
		             strcmp(n, "C_FindObjectsFinal") != 0 && strcmp(n, "C_Finalize") != 0));

		CU_ASSERT_EQUAL((proto_calls[i].flags & PROTO_CF_OP_INIT) != 0, init);
		CU_ASSERT_EQUAL((proto_calls[i].flags & PROTO_CF_OP_ONESHOT) != 0, one);
		CU_ASSERT_EQUAL((proto_calls[i].flags & PROTO_CF_OP_PART) != 0, part);
		CU_ASSERT_EQUAL((proto_calls[i].flags & PROTO_CF_OWN_SESSION) != 0,
		                i == PROTO_CALL_C_GenerateRandom || i == PROTO_CALL_C_SeedRandom);
		CU_ASSERT_EQUAL((proto_calls[i].flags & PROTO_CF_READ_OBJECTS) != 0,
		                i == PROTO_CALL_C_GetAttributeValue ||
		                        i == PROTO_CALL_C_GetObjectSize ||
		                        i == PROTO_CALL_C_FindObjectsInit ||
		                        i == PROTO_CALL_C_FindObjects ||
		                        i == PROTO_CALL_C_FindObjectsFinal);
		CU_ASSERT_EQUAL((proto_calls[i].flags & PROTO_CF_KEYGEN) != 0,
		                i == PROTO_CALL_C_GenerateKey || i == PROTO_CALL_C_GenerateKeyPair);
		CU_ASSERT_EQUAL((proto_calls[i].flags & PROTO_CF_SHARED) != 0,
		                i == PROTO_CALL_C_InitToken || i == PROTO_CALL_C_InitPIN ||
		                        i == PROTO_CALL_C_SetPIN ||
		                        i == PROTO_CALL_C_DestroyObject ||
		                        i == PROTO_CALL_C_SetAttributeValue);
		CU_ASSERT_EQUAL((proto_calls[i].flags & PROTO_CF_VENDOR_SHARED) != 0,
		                i == PROTO_CALL_C_Logout || i == PROTO_CALL_C_CloseAllSessions);
	}
	CU_ASSERT_FALSE(proto_calls[PROTO_CALL_C_Sign].flags &
	                (PROTO_CF_SECRET_OUT | PROTO_CF_STATE));
	CU_ASSERT_FALSE(proto_calls[PROTO_CALL_C_GetTokenInfo].flags & PROTO_CF_SECRET_IN);
}

static void
test_reply_has_fields(void)
{
	CU_ASSERT_TRUE(proto_reply_has_fields(PROTO_CALL_C_Sign, CKR_OK));
	CU_ASSERT_TRUE(proto_reply_has_fields(PROTO_CALL_C_Sign, CKR_BUFFER_TOO_SMALL));
	CU_ASSERT_FALSE(proto_reply_has_fields(PROTO_CALL_C_Sign, CKR_ATTRIBUTE_SENSITIVE));
	CU_ASSERT_FALSE(proto_reply_has_fields(PROTO_CALL_C_Sign, CKR_KEY_HANDLE_INVALID));
	CU_ASSERT_TRUE(
	        proto_reply_has_fields(PROTO_CALL_C_GetAttributeValue, CKR_ATTRIBUTE_SENSITIVE));
	CU_ASSERT_TRUE(
	        proto_reply_has_fields(PROTO_CALL_C_GetAttributeValue, CKR_ATTRIBUTE_TYPE_INVALID));
	CU_ASSERT_TRUE(
	        proto_reply_has_fields(PROTO_CALL_C_GetAttributeValue, CKR_BUFFER_TOO_SMALL));
	CU_ASSERT_FALSE(
	        proto_reply_has_fields(PROTO_CALL_C_GetAttributeValue, CKR_OBJECT_HANDLE_INVALID));
	CU_ASSERT_FALSE(proto_reply_has_fields(PROTO_CALL_C_Login, CKR_PIN_INCORRECT));
}

static void
test_rv_names(void)
{
	static const CK_RV all[] = {CKR_OK,
	                            CKR_CANCEL,
	                            CKR_HOST_MEMORY,
	                            CKR_SLOT_ID_INVALID,
	                            CKR_GENERAL_ERROR,
	                            CKR_FUNCTION_FAILED,
	                            CKR_ARGUMENTS_BAD,
	                            CKR_NO_EVENT,
	                            CKR_NEED_TO_CREATE_THREADS,
	                            CKR_CANT_LOCK,
	                            CKR_ATTRIBUTE_READ_ONLY,
	                            CKR_ATTRIBUTE_SENSITIVE,
	                            CKR_ATTRIBUTE_TYPE_INVALID,
	                            CKR_ATTRIBUTE_VALUE_INVALID,
	                            CKR_ACTION_PROHIBITED,
	                            CKR_DATA_INVALID,
	                            CKR_DATA_LEN_RANGE,
	                            CKR_DEVICE_ERROR,
	                            CKR_DEVICE_MEMORY,
	                            CKR_DEVICE_REMOVED,
	                            CKR_ENCRYPTED_DATA_INVALID,
	                            CKR_ENCRYPTED_DATA_LEN_RANGE,
	                            CKR_FUNCTION_CANCELED,
	                            CKR_FUNCTION_NOT_PARALLEL,
	                            CKR_FUNCTION_NOT_SUPPORTED,
	                            CKR_KEY_HANDLE_INVALID,
	                            CKR_KEY_SIZE_RANGE,
	                            CKR_KEY_TYPE_INCONSISTENT,
	                            CKR_KEY_NOT_NEEDED,
	                            CKR_KEY_CHANGED,
	                            CKR_KEY_NEEDED,
	                            CKR_KEY_INDIGESTIBLE,
	                            CKR_KEY_FUNCTION_NOT_PERMITTED,
	                            CKR_KEY_NOT_WRAPPABLE,
	                            CKR_KEY_UNEXTRACTABLE,
	                            CKR_MECHANISM_INVALID,
	                            CKR_MECHANISM_PARAM_INVALID,
	                            CKR_OBJECT_HANDLE_INVALID,
	                            CKR_OPERATION_ACTIVE,
	                            CKR_OPERATION_NOT_INITIALIZED,
	                            CKR_PIN_INCORRECT,
	                            CKR_PIN_INVALID,
	                            CKR_PIN_LEN_RANGE,
	                            CKR_PIN_EXPIRED,
	                            CKR_PIN_LOCKED,
	                            CKR_SESSION_CLOSED,
	                            CKR_SESSION_COUNT,
	                            CKR_SESSION_HANDLE_INVALID,
	                            CKR_SESSION_PARALLEL_NOT_SUPPORTED,
	                            CKR_SESSION_READ_ONLY,
	                            CKR_SESSION_EXISTS,
	                            CKR_SESSION_READ_ONLY_EXISTS,
	                            CKR_SESSION_READ_WRITE_SO_EXISTS,
	                            CKR_SIGNATURE_INVALID,
	                            CKR_SIGNATURE_LEN_RANGE,
	                            CKR_TEMPLATE_INCOMPLETE,
	                            CKR_TEMPLATE_INCONSISTENT,
	                            CKR_TOKEN_NOT_PRESENT,
	                            CKR_TOKEN_NOT_RECOGNIZED,
	                            CKR_TOKEN_WRITE_PROTECTED,
	                            CKR_UNWRAPPING_KEY_HANDLE_INVALID,
	                            CKR_UNWRAPPING_KEY_SIZE_RANGE,
	                            CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT,
	                            CKR_USER_ALREADY_LOGGED_IN,
	                            CKR_USER_NOT_LOGGED_IN,
	                            CKR_USER_PIN_NOT_INITIALIZED,
	                            CKR_USER_TYPE_INVALID,
	                            CKR_USER_ANOTHER_ALREADY_LOGGED_IN,
	                            CKR_USER_TOO_MANY_TYPES,
	                            CKR_WRAPPED_KEY_INVALID,
	                            CKR_WRAPPED_KEY_LEN_RANGE,
	                            CKR_WRAPPING_KEY_HANDLE_INVALID,
	                            CKR_WRAPPING_KEY_SIZE_RANGE,
	                            CKR_WRAPPING_KEY_TYPE_INCONSISTENT,
	                            CKR_RANDOM_SEED_NOT_SUPPORTED,
	                            CKR_RANDOM_NO_RNG,
	                            CKR_DOMAIN_PARAMS_INVALID,
	                            CKR_CURVE_NOT_SUPPORTED,
	                            CKR_BUFFER_TOO_SMALL,
	                            CKR_SAVED_STATE_INVALID,
	                            CKR_INFORMATION_SENSITIVE,
	                            CKR_STATE_UNSAVEABLE,
	                            CKR_CRYPTOKI_NOT_INITIALIZED,
	                            CKR_CRYPTOKI_ALREADY_INITIALIZED,
	                            CKR_MUTEX_BAD,
	                            CKR_MUTEX_NOT_LOCKED,
	                            CKR_NEW_PIN_MODE,
	                            CKR_NEXT_OTP,
	                            CKR_EXCEEDED_MAX_ITERATIONS,
	                            CKR_FIPS_SELF_TEST_FAILED,
	                            CKR_LIBRARY_LOAD_FAILED,
	                            CKR_PIN_TOO_WEAK,
	                            CKR_PUBLIC_KEY_INVALID,
	                            CKR_FUNCTION_REJECTED};
	size_t i;

	for (i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		CU_ASSERT_PTR_NOT_NULL_FATAL(proto_rv_name(all[i]));
		CU_ASSERT_EQUAL(strncmp(proto_rv_name(all[i]), "CKR_", 4), 0);
	}
	CU_ASSERT_STRING_EQUAL(proto_rv_name(CKR_ACTION_PROHIBITED), "CKR_ACTION_PROHIBITED");
	CU_ASSERT_STRING_EQUAL(proto_rv_name(CKR_OK), "CKR_OK");
	CU_ASSERT_PTR_NULL(proto_rv_name(0x12345));
}

static void
test_session_handles(void)
{
	CK_SESSION_HANDLE h = proto_session_make(7, 42);

	CU_ASSERT_EQUAL(h, (7ul << 24) | 42);
	CU_ASSERT_EQUAL(proto_session_slot(h), 7);
	CU_ASSERT_EQUAL(proto_session_slot(proto_session_make(0xff, 0xffffff)), 0xff);
	CU_ASSERT_EQUAL(proto_session_make(0x1ff, 0x1000001), (0xfful << 24) | 1);
}

static const struct test_case cases[] = {
        {"proto_calls[i].id == i", test_ids_match_positions},
        {"every v2.40 function, in CK_FUNCTION_LIST order", test_every_v240_function},
        {"layout letters", test_layout_letters},
        {"policy actions", test_actions},
        {"routing flags", test_routing},
        {"secret and state flags", test_secret_flags},
        {"reply has fields", test_reply_has_fields},
        {"every v2.40 CK_RV has a name", test_rv_names},
        {"session handles name their slot", test_session_handles},
        {NULL, NULL},
};

void
test_register(void)
{
	test_suite_add("proto/calls", NULL, NULL, cases);
}
