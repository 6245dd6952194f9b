/*
 * client/fwd_token.c — forwarded PKCS #11 functions: slots, tokens, sessions, login and
 * objects (PKCS #11 v2.40 §5.5–§5.7). Each reads like its layout in proto_calls: the
 * request fields in order, then the reply fields in order.
 */
#include "client/cli_int.h"

#include <string.h>

#define CALL(fn) PROTO_CALL_##fn
/* Slot-routed and gateway-routed calls have no session to check. */
#define NO_SESSION 0

/* ---- slots and tokens --------------------------------------------------------------- */

CLI_EXPORT CK_RV
C_GetSlotList(CK_BBOOL tokenPresent, CK_SLOT_ID_PTR pSlotList, CK_ULONG_PTR pulCount)
{
	struct cli_call c;
	CK_RV rv;

	if ((rv = cli_call_begin(&c, CALL(C_GetSlotList), NO_SESSION)) != CKR_OK) {
		return rv;
	}
	if (pulCount == NULL) {
		return cli_call_end(&c, CKR_ARGUMENTS_BAD);
	}
	cli_put_bool(&c, tokenPresent ? CK_TRUE : CK_FALSE);
	cli_put_ulongs(&c, pSlotList, pSlotList != NULL ? *pulCount : 0);
	rv = cli_call_run(&c);
	cli_get_ulongs(&c, pSlotList, pulCount);
	return cli_call_end(&c, rv);
}

CLI_EXPORT CK_RV
C_GetSlotInfo(CK_SLOT_ID slotID, CK_SLOT_INFO_PTR pInfo)
{
	struct cli_call c;
	CK_RV rv;

	if ((rv = cli_call_begin(&c, CALL(C_GetSlotInfo), NO_SESSION)) != CKR_OK) {
		return rv;
	}
	if (pInfo == NULL) {
		return cli_call_end(&c, CKR_ARGUMENTS_BAD);
	}
	cli_put_ulong(&c, slotID);
	rv = cli_call_run(&c);
	cli_get_info(&c, 'S', pInfo);
	return cli_call_end(&c, rv);
}

CLI_EXPORT CK_RV
C_GetTokenInfo(CK_SLOT_ID slotID, CK_TOKEN_INFO_PTR pInfo)
{
	struct cli_call c;
	CK_RV rv;

	if ((rv = cli_call_begin(&c, CALL(C_GetTokenInfo), NO_SESSION)) != CKR_OK) {
		return rv;
	}
	if (pInfo == NULL) {
		return cli_call_end(&c, CKR_ARGUMENTS_BAD);
	}
	cli_put_ulong(&c, slotID);
	rv = cli_call_run(&c);
	cli_get_info(&c, 'T', pInfo);
	return cli_call_end(&c, rv);
}

CLI_EXPORT CK_RV
C_GetMechanismList(CK_SLOT_ID slotID, CK_MECHANISM_TYPE_PTR pMechanismList, CK_ULONG_PTR pulCount)
{
	struct cli_call c;
	CK_RV rv;

	if ((rv = cli_call_begin(&c, CALL(C_GetMechanismList), NO_SESSION)) != CKR_OK) {
		return rv;
	}
	if (pulCount == NULL) {
		return cli_call_end(&c, CKR_ARGUMENTS_BAD);
	}
	cli_put_ulong(&c, slotID);
	cli_put_ulongs(&c, pMechanismList, pMechanismList != NULL ? *pulCount : 0);
	rv = cli_call_run(&c);
	cli_get_ulongs(&c, pMechanismList, pulCount);
	return cli_call_end(&c, rv);
}

CLI_EXPORT CK_RV
C_GetMechanismInfo(CK_SLOT_ID slotID, CK_MECHANISM_TYPE type, CK_MECHANISM_INFO_PTR pInfo)
{
	struct cli_call c;
	CK_RV rv;

	if ((rv = cli_call_begin(&c, CALL(C_GetMechanismInfo), NO_SESSION)) != CKR_OK) {
		return rv;
	}
	if (pInfo == NULL) {
		return cli_call_end(&c, CKR_ARGUMENTS_BAD);
	}
	cli_put_ulong(&c, slotID);
	cli_put_ulong(&c, type);
	rv = cli_call_run(&c);
	cli_get_info(&c, 'm', pInfo);
	return cli_call_end(&c, rv);
}

CLI_EXPORT CK_RV
C_InitToken(CK_SLOT_ID slotID, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen, CK_UTF8CHAR_PTR pLabel)
{
	struct cli_call c;
	CK_RV rv;

	if ((rv = cli_call_begin(&c, CALL(C_InitToken), NO_SESSION)) != CKR_OK) {
		return rv;
	}
	/* pPin NULL is the protected authentication path (ulPinLen 0); the label is 32
	 * blank-padded bytes (v2.40 §5.6). */
	if ((pPin == NULL && ulPinLen != 0) || pLabel == NULL) {
		return cli_call_end(&c, CKR_ARGUMENTS_BAD);
	}
	cli_put_ulong(&c, slotID);
	cli_put_inbytes(&c, pPin, ulPinLen);
	cli_put_inbytes(&c, pLabel, 32);
	rv = cli_call_run(&c);
	return cli_call_end(&c, rv);
}

CLI_EXPORT CK_RV
C_InitPIN(CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen)
{
	return cli_fwd_in(CALL(C_InitPIN), hSession, pPin, ulPinLen);
}

CLI_EXPORT CK_RV
C_SetPIN(CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pOldPin, CK_ULONG ulOldLen,
         CK_UTF8CHAR_PTR pNewPin, CK_ULONG ulNewLen)
{
	struct cli_call c;
	CK_RV rv;

	if ((rv = cli_call_begin(&c, CALL(C_SetPIN), hSession)) != CKR_OK) {
		return rv;
	}
	if ((pOldPin == NULL && ulOldLen != 0) || (pNewPin == NULL && ulNewLen != 0)) {
		return cli_call_end(&c, CKR_ARGUMENTS_BAD);
	}
	cli_put_ulong(&c, hSession);
	cli_put_inbytes(&c, pOldPin, ulOldLen);
	cli_put_inbytes(&c, pNewPin, ulNewLen);
	rv = cli_call_run(&c);
	return cli_call_end(&c, rv);
}

/* ---- sessions ----------------------------------------------------------------------- */

CLI_EXPORT CK_RV
C_OpenSession(CK_SLOT_ID slotID, CK_FLAGS flags, CK_VOID_PTR pApplication, CK_NOTIFY Notify,
              CK_SESSION_HANDLE_PTR phSession)
{
	struct cli_call c;
	CK_SESSION_HANDLE h = CK_INVALID_HANDLE;
	CK_RV rv;

	/* pApplication and Notify stay here: surrender callbacks have no meaning over the
	 * wire, and v2.40 lets a token never call them. */
	(void)pApplication;
	(void)Notify;
	if ((rv = cli_call_begin(&c, CALL(C_OpenSession), NO_SESSION)) != CKR_OK) {
		return rv;
	}
	if (phSession == NULL) {
		return cli_call_end(&c, CKR_ARGUMENTS_BAD);
	}
	cli_put_ulong(&c, slotID);
	cli_put_ulong(&c, flags);
	rv = cli_call_run(&c);
	cli_get_ulong(&c, &h);
	if (rv == CKR_OK && c.dec_err == 0) {
		if (cli_conn_session_add(c.conn, h) != 0) {
			/* Untracked, the handle would be refused by every later call: report
			 * the allocation failure (the gateway drops the session with the
			 * connection). */
			rv = CKR_HOST_MEMORY;
		} else {
			*phSession = h;
		}
	}
	return cli_call_end(&c, rv);
}

CLI_EXPORT CK_RV
C_CloseSession(CK_SESSION_HANDLE hSession)
{
	struct cli_call c;
	CK_RV rv;

	if ((rv = cli_call_begin(&c, CALL(C_CloseSession), hSession)) != CKR_OK) {
		return rv;
	}
	cli_put_ulong(&c, hSession);
	rv = cli_call_run(&c);
	/* Also when the gateway no longer knows it: it is gone either way. */
	if (rv == CKR_OK || rv == CKR_SESSION_HANDLE_INVALID || rv == CKR_SESSION_CLOSED) {
		cli_conn_session_del(c.conn, hSession);
	}
	return cli_call_end(&c, rv);
}

CLI_EXPORT CK_RV
C_CloseAllSessions(CK_SLOT_ID slotID)
{
	struct cli_call c;
	CK_RV rv;

	if ((rv = cli_call_begin(&c, CALL(C_CloseAllSessions), NO_SESSION)) != CKR_OK) {
		return rv;
	}
	cli_put_ulong(&c, slotID);
	rv = cli_call_run(&c);
	if (rv == CKR_OK) {
		cli_conn_session_del_slot(c.conn, slotID);
	}
	return cli_call_end(&c, rv);
}

CLI_EXPORT CK_RV
C_GetSessionInfo(CK_SESSION_HANDLE hSession, CK_SESSION_INFO_PTR pInfo)
{
	struct cli_call c;
	CK_RV rv;

	if ((rv = cli_call_begin(&c, CALL(C_GetSessionInfo), hSession)) != CKR_OK) {
		return rv;
	}
	if (pInfo == NULL) {
		return cli_call_end(&c, CKR_ARGUMENTS_BAD);
	}
	cli_put_ulong(&c, hSession);
	rv = cli_call_run(&c);
	cli_get_info(&c, 'N', pInfo);
	return cli_call_end(&c, rv);
}

CLI_EXPORT CK_RV
C_GetOperationState(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pOperationState,
                    CK_ULONG_PTR pulOperationStateLen)
{
	return cli_fwd_out(CALL(C_GetOperationState), hSession, pOperationState,
	                   pulOperationStateLen);
}

CLI_EXPORT CK_RV
C_SetOperationState(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pOperationState,
                    CK_ULONG ulOperationStateLen, CK_OBJECT_HANDLE hEncryptionKey,
                    CK_OBJECT_HANDLE hAuthenticationKey)
{
	struct cli_call c;
	CK_RV rv;

	if ((rv = cli_call_begin(&c, CALL(C_SetOperationState), hSession)) != CKR_OK) {
		return rv;
	}
	if (pOperationState == NULL) {
		return cli_call_end(&c, CKR_ARGUMENTS_BAD);
	}
	cli_put_ulong(&c, hSession);
	cli_put_inbytes(&c, pOperationState, ulOperationStateLen);
	cli_put_ulong(&c, hEncryptionKey);
	cli_put_ulong(&c, hAuthenticationKey);
	rv = cli_call_run(&c);
	return cli_call_end(&c, rv);
}

CLI_EXPORT CK_RV
C_Login(CK_SESSION_HANDLE hSession, CK_USER_TYPE userType, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen)
{
	struct cli_call c;
	CK_RV rv;

	if ((rv = cli_call_begin(&c, CALL(C_Login), hSession)) != CKR_OK) {
		return rv;
	}
	if (pPin == NULL && ulPinLen != 0) {
		return cli_call_end(&c, CKR_ARGUMENTS_BAD);
	}
	cli_put_ulong(&c, hSession);
	cli_put_ulong(&c, userType);
	cli_put_inbytes(&c, pPin, ulPinLen); /* the frame is wiped when freed */
	rv = cli_call_run(&c);
	return cli_call_end(&c, rv);
}

CLI_EXPORT CK_RV
C_Logout(CK_SESSION_HANDLE hSession)
{
	return cli_fwd_session(CALL(C_Logout), hSession);
}

/* ---- objects ------------------------------------------------------------------------ */

/* A template pointer may be NULL only for an empty template. */
#define TEMPLATE_BAD(t, n) ((t) == NULL && (n) != 0)

CLI_EXPORT CK_RV
C_CreateObject(CK_SESSION_HANDLE hSession, CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount,
               CK_OBJECT_HANDLE_PTR phObject)
{
	struct cli_call c;
	CK_RV rv;

	if ((rv = cli_call_begin(&c, CALL(C_CreateObject), hSession)) != CKR_OK) {
		return rv;
	}
	if (TEMPLATE_BAD(pTemplate, ulCount) || phObject == NULL) {
		return cli_call_end(&c, CKR_ARGUMENTS_BAD);
	}
	cli_put_ulong(&c, hSession);
	cli_put_template(&c, pTemplate, ulCount);
	rv = cli_call_run(&c);
	cli_get_ulong(&c, phObject);
	return cli_call_end(&c, rv);
}

CLI_EXPORT CK_RV
C_CopyObject(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject, CK_ATTRIBUTE_PTR pTemplate,
             CK_ULONG ulCount, CK_OBJECT_HANDLE_PTR phNewObject)
{
	struct cli_call c;
	CK_RV rv;

	if ((rv = cli_call_begin(&c, CALL(C_CopyObject), hSession)) != CKR_OK) {
		return rv;
	}
	if (TEMPLATE_BAD(pTemplate, ulCount) || phNewObject == NULL) {
		return cli_call_end(&c, CKR_ARGUMENTS_BAD);
	}
	cli_put_ulong(&c, hSession);
	cli_put_ulong(&c, hObject);
	cli_put_template(&c, pTemplate, ulCount);
	rv = cli_call_run(&c);
	cli_get_ulong(&c, phNewObject);
	return cli_call_end(&c, rv);
}

CLI_EXPORT CK_RV
C_DestroyObject(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject)
{
	struct cli_call c;
	CK_RV rv;

	if ((rv = cli_call_begin(&c, CALL(C_DestroyObject), hSession)) != CKR_OK) {
		return rv;
	}
	cli_put_ulong(&c, hSession);
	cli_put_ulong(&c, hObject);
	rv = cli_call_run(&c);
	return cli_call_end(&c, rv);
}

CLI_EXPORT CK_RV
C_GetObjectSize(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject, CK_ULONG_PTR pulSize)
{
	struct cli_call c;
	CK_RV rv;

	if ((rv = cli_call_begin(&c, CALL(C_GetObjectSize), hSession)) != CKR_OK) {
		return rv;
	}
	if (pulSize == NULL) {
		return cli_call_end(&c, CKR_ARGUMENTS_BAD);
	}
	cli_put_ulong(&c, hSession);
	cli_put_ulong(&c, hObject);
	rv = cli_call_run(&c);
	cli_get_ulong(&c, pulSize);
	return cli_call_end(&c, rv);
}

CLI_EXPORT CK_RV
C_GetAttributeValue(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject,
                    CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount)
{
	struct cli_call c;
	CK_RV rv;

	if ((rv = cli_call_begin(&c, CALL(C_GetAttributeValue), hSession)) != CKR_OK) {
		return rv;
	}
	if (TEMPLATE_BAD(pTemplate, ulCount)) {
		return cli_call_end(&c, CKR_ARGUMENTS_BAD);
	}
	cli_put_ulong(&c, hSession);
	cli_put_ulong(&c, hObject);
	cli_put_attrquery(&c, pTemplate, ulCount);
	rv = cli_call_run(&c);
	/* CKR_ATTRIBUTE_SENSITIVE / _TYPE_INVALID / BUFFER_TOO_SMALL still fill the
	 * template (v2.40 §5.7); proto_reply_has_fields knows. */
	cli_get_attrreply(&c, pTemplate, ulCount);
	return cli_call_end(&c, rv);
}

CLI_EXPORT CK_RV
C_SetAttributeValue(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject,
                    CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount)
{
	struct cli_call c;
	CK_RV rv;

	if ((rv = cli_call_begin(&c, CALL(C_SetAttributeValue), hSession)) != CKR_OK) {
		return rv;
	}
	if (TEMPLATE_BAD(pTemplate, ulCount)) {
		return cli_call_end(&c, CKR_ARGUMENTS_BAD);
	}
	cli_put_ulong(&c, hSession);
	cli_put_ulong(&c, hObject);
	cli_put_template(&c, pTemplate, ulCount);
	rv = cli_call_run(&c);
	return cli_call_end(&c, rv);
}

CLI_EXPORT CK_RV
C_FindObjectsInit(CK_SESSION_HANDLE hSession, CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount)
{
	struct cli_call c;
	CK_RV rv;

	if ((rv = cli_call_begin(&c, CALL(C_FindObjectsInit), hSession)) != CKR_OK) {
		return rv;
	}
	if (TEMPLATE_BAD(pTemplate, ulCount)) {
		return cli_call_end(&c, CKR_ARGUMENTS_BAD);
	}
	cli_put_ulong(&c, hSession);
	cli_put_template(&c, pTemplate, ulCount);
	rv = cli_call_run(&c);
	return cli_call_end(&c, rv);
}

CLI_EXPORT CK_RV
C_FindObjects(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE_PTR phObject, CK_ULONG ulMaxObjectCount,
              CK_ULONG_PTR pulObjectCount)
{
	struct cli_call c;
	CK_ULONG n = ulMaxObjectCount;
	CK_RV rv;

	if ((rv = cli_call_begin(&c, CALL(C_FindObjects), hSession)) != CKR_OK) {
		return rv;
	}
	if (phObject == NULL || pulObjectCount == NULL) {
		return cli_call_end(&c, CKR_ARGUMENTS_BAD);
	}
	cli_put_ulong(&c, hSession);
	cli_put_ulongs(&c, phObject, ulMaxObjectCount);
	rv = cli_call_run(&c);
	cli_get_ulongs(&c, phObject, &n);
	if (rv == CKR_OK && c.dec_err == 0) {
		*pulObjectCount = n;
	}
	return cli_call_end(&c, rv);
}

CLI_EXPORT CK_RV
C_FindObjectsFinal(CK_SESSION_HANDLE hSession)
{
	return cli_fwd_session(CALL(C_FindObjectsFinal), hSession);
}

/* ---- slot events -------------------------------------------------------------------- */

/*
 * Forwarded to the gateway, which answers from its slot list: CKR_NO_EVENT for
 * CKF_DONT_BLOCK, and CKR_FUNCTION_NOT_SUPPORTED for a blocking wait (hsmgate slots do
 * not come and go while a connection is open). C_Finalize makes a call in flight return
 * CKR_CRYPTOKI_NOT_INITIALIZED, as v2.40 §5.5 asks.
 */
CLI_EXPORT CK_RV
C_WaitForSlotEvent(CK_FLAGS flags, CK_SLOT_ID_PTR pSlot, CK_VOID_PTR pReserved)
{
	struct cli_call c;
	CK_RV rv;

	if ((rv = cli_call_begin(&c, CALL(C_WaitForSlotEvent), NO_SESSION)) != CKR_OK) {
		return rv;
	}
	if (pSlot == NULL || pReserved != NULL) {
		return cli_call_end(&c, CKR_ARGUMENTS_BAD);
	}
	cli_put_ulong(&c, flags);
	rv = cli_call_run(&c);
	cli_get_ulong(&c, pSlot);
	return cli_call_end(&c, rv);
}
