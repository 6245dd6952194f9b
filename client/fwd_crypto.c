/*
 * client/fwd_crypto.c — forwarded PKCS #11 functions: encryption, decryption, digests,
 * signatures, dual-function updates, keys and random numbers (PKCS #11 v2.40 §5.8–§5.15).
 * Most share one of the shapes in call.c; the rest read like their layouts in proto_calls.
 */
#include "client/cli_int.h"

#define CALL(fn)           PROTO_CALL_##fn
#define TEMPLATE_BAD(t, n) ((t) == NULL && (n) != 0)

/* ---- encryption and decryption ------------------------------------------------------ */

CLI_EXPORT CK_RV
C_EncryptInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey)
{
	return cli_fwd_init(CALL(C_EncryptInit), hSession, pMechanism, hKey);
}

CLI_EXPORT CK_RV
C_Encrypt(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen,
          CK_BYTE_PTR pEncryptedData, CK_ULONG_PTR pulEncryptedDataLen)
{
	return cli_fwd_inout(CALL(C_Encrypt), hSession, pData, ulDataLen, pEncryptedData,
	                     pulEncryptedDataLen);
}

CLI_EXPORT CK_RV
C_EncryptUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen,
                CK_BYTE_PTR pEncryptedPart, CK_ULONG_PTR pulEncryptedPartLen)
{
	return cli_fwd_inout(CALL(C_EncryptUpdate), hSession, pPart, ulPartLen, pEncryptedPart,
	                     pulEncryptedPartLen);
}

CLI_EXPORT CK_RV
C_EncryptFinal(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pLastEncryptedPart,
               CK_ULONG_PTR pulLastEncryptedPartLen)
{
	return cli_fwd_out(CALL(C_EncryptFinal), hSession, pLastEncryptedPart,
	                   pulLastEncryptedPartLen);
}

CLI_EXPORT CK_RV
C_DecryptInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey)
{
	return cli_fwd_init(CALL(C_DecryptInit), hSession, pMechanism, hKey);
}

CLI_EXPORT CK_RV
C_Decrypt(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pEncryptedData, CK_ULONG ulEncryptedDataLen,
          CK_BYTE_PTR pData, CK_ULONG_PTR pulDataLen)
{
	return cli_fwd_inout(CALL(C_Decrypt), hSession, pEncryptedData, ulEncryptedDataLen, pData,
	                     pulDataLen);
}

CLI_EXPORT CK_RV
C_DecryptUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pEncryptedPart, CK_ULONG ulEncryptedPartLen,
                CK_BYTE_PTR pPart, CK_ULONG_PTR pulPartLen)
{
	return cli_fwd_inout(CALL(C_DecryptUpdate), hSession, pEncryptedPart, ulEncryptedPartLen,
	                     pPart, pulPartLen);
}

CLI_EXPORT CK_RV
C_DecryptFinal(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pLastPart, CK_ULONG_PTR pulLastPartLen)
{
	return cli_fwd_out(CALL(C_DecryptFinal), hSession, pLastPart, pulLastPartLen);
}

/* ---- digests ------------------------------------------------------------------------ */

CLI_EXPORT CK_RV
C_DigestInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism)
{
	struct cli_call c;
	CK_RV rv;

	if ((rv = cli_call_begin(&c, CALL(C_DigestInit), hSession)) != CKR_OK) {
		return rv;
	}
	if (pMechanism == NULL) {
		return cli_call_end(&c, CKR_ARGUMENTS_BAD);
	}
	cli_put_ulong(&c, hSession);
	cli_put_mechanism(&c, pMechanism);
	rv = cli_call_run_init(&c, pMechanism, CK_INVALID_HANDLE);
	return cli_call_end(&c, rv);
}

CLI_EXPORT CK_RV
C_Digest(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pDigest,
         CK_ULONG_PTR pulDigestLen)
{
	return cli_fwd_inout(CALL(C_Digest), hSession, pData, ulDataLen, pDigest, pulDigestLen);
}

CLI_EXPORT CK_RV
C_DigestUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen)
{
	return cli_fwd_in(CALL(C_DigestUpdate), hSession, pPart, ulPartLen);
}

CLI_EXPORT CK_RV
C_DigestKey(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hKey)
{
	struct cli_call c;
	CK_RV rv;

	if ((rv = cli_call_begin(&c, CALL(C_DigestKey), hSession)) != CKR_OK) {
		return rv;
	}
	cli_put_ulong(&c, hSession);
	cli_put_ulong(&c, hKey);
	rv = cli_call_run(&c);
	return cli_call_end(&c, rv);
}

CLI_EXPORT CK_RV
C_DigestFinal(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pDigest, CK_ULONG_PTR pulDigestLen)
{
	return cli_fwd_out(CALL(C_DigestFinal), hSession, pDigest, pulDigestLen);
}

/* ---- signatures --------------------------------------------------------------------- */

CLI_EXPORT CK_RV
C_SignInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey)
{
	return cli_fwd_init(CALL(C_SignInit), hSession, pMechanism, hKey);
}

CLI_EXPORT CK_RV
C_Sign(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pSignature,
       CK_ULONG_PTR pulSignatureLen)
{
	return cli_fwd_inout(CALL(C_Sign), hSession, pData, ulDataLen, pSignature, pulSignatureLen);
}

CLI_EXPORT CK_RV
C_SignUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen)
{
	return cli_fwd_in(CALL(C_SignUpdate), hSession, pPart, ulPartLen);
}

CLI_EXPORT CK_RV
C_SignFinal(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSignature, CK_ULONG_PTR pulSignatureLen)
{
	return cli_fwd_out(CALL(C_SignFinal), hSession, pSignature, pulSignatureLen);
}

CLI_EXPORT CK_RV
C_SignRecoverInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey)
{
	return cli_fwd_init(CALL(C_SignRecoverInit), hSession, pMechanism, hKey);
}

CLI_EXPORT CK_RV
C_SignRecover(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen,
              CK_BYTE_PTR pSignature, CK_ULONG_PTR pulSignatureLen)
{
	return cli_fwd_inout(CALL(C_SignRecover), hSession, pData, ulDataLen, pSignature,
	                     pulSignatureLen);
}

CLI_EXPORT CK_RV
C_VerifyInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey)
{
	return cli_fwd_init(CALL(C_VerifyInit), hSession, pMechanism, hKey);
}

CLI_EXPORT CK_RV
C_Verify(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pSignature,
         CK_ULONG ulSignatureLen)
{
	struct cli_call c;
	CK_RV rv;

	if ((rv = cli_call_begin(&c, CALL(C_Verify), hSession)) != CKR_OK) {
		return rv;
	}
	if ((pData == NULL && ulDataLen != 0) || (pSignature == NULL && ulSignatureLen != 0)) {
		return cli_call_end(&c, CKR_ARGUMENTS_BAD);
	}
	cli_put_ulong(&c, hSession);
	cli_put_inbytes(&c, pData, ulDataLen);
	cli_put_inbytes(&c, pSignature, ulSignatureLen);
	rv = cli_call_run(&c);
	return cli_call_end(&c, rv);
}

CLI_EXPORT CK_RV
C_VerifyUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen)
{
	return cli_fwd_in(CALL(C_VerifyUpdate), hSession, pPart, ulPartLen);
}

CLI_EXPORT CK_RV
C_VerifyFinal(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSignature, CK_ULONG ulSignatureLen)
{
	return cli_fwd_in(CALL(C_VerifyFinal), hSession, pSignature, ulSignatureLen);
}

CLI_EXPORT CK_RV
C_VerifyRecoverInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey)
{
	return cli_fwd_init(CALL(C_VerifyRecoverInit), hSession, pMechanism, hKey);
}

CLI_EXPORT CK_RV
C_VerifyRecover(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSignature, CK_ULONG ulSignatureLen,
                CK_BYTE_PTR pData, CK_ULONG_PTR pulDataLen)
{
	return cli_fwd_inout(CALL(C_VerifyRecover), hSession, pSignature, ulSignatureLen, pData,
	                     pulDataLen);
}

/* ---- dual-function updates ---------------------------------------------------------- */

CLI_EXPORT CK_RV
C_DigestEncryptUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen,
                      CK_BYTE_PTR pEncryptedPart, CK_ULONG_PTR pulEncryptedPartLen)
{
	return cli_fwd_inout(CALL(C_DigestEncryptUpdate), hSession, pPart, ulPartLen,
	                     pEncryptedPart, pulEncryptedPartLen);
}

CLI_EXPORT CK_RV
C_DecryptDigestUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pEncryptedPart,
                      CK_ULONG ulEncryptedPartLen, CK_BYTE_PTR pPart, CK_ULONG_PTR pulPartLen)
{
	return cli_fwd_inout(CALL(C_DecryptDigestUpdate), hSession, pEncryptedPart,
	                     ulEncryptedPartLen, pPart, pulPartLen);
}

CLI_EXPORT CK_RV
C_SignEncryptUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen,
                    CK_BYTE_PTR pEncryptedPart, CK_ULONG_PTR pulEncryptedPartLen)
{
	return cli_fwd_inout(CALL(C_SignEncryptUpdate), hSession, pPart, ulPartLen, pEncryptedPart,
	                     pulEncryptedPartLen);
}

CLI_EXPORT CK_RV
C_DecryptVerifyUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pEncryptedPart,
                      CK_ULONG ulEncryptedPartLen, CK_BYTE_PTR pPart, CK_ULONG_PTR pulPartLen)
{
	return cli_fwd_inout(CALL(C_DecryptVerifyUpdate), hSession, pEncryptedPart,
	                     ulEncryptedPartLen, pPart, pulPartLen);
}

/* ---- keys --------------------------------------------------------------------------- */

CLI_EXPORT CK_RV
C_GenerateKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_ATTRIBUTE_PTR pTemplate,
              CK_ULONG ulCount, CK_OBJECT_HANDLE_PTR phKey)
{
	struct cli_call c;
	CK_RV rv;

	if ((rv = cli_call_begin(&c, CALL(C_GenerateKey), hSession)) != CKR_OK) {
		return rv;
	}
	if (pMechanism == NULL || TEMPLATE_BAD(pTemplate, ulCount) || phKey == NULL) {
		return cli_call_end(&c, CKR_ARGUMENTS_BAD);
	}
	cli_put_ulong(&c, hSession);
	cli_put_mechanism(&c, pMechanism);
	cli_put_template(&c, pTemplate, ulCount);
	rv = cli_call_run(&c);
	cli_get_ulong(&c, phKey);
	return cli_call_end(&c, rv);
}

CLI_EXPORT CK_RV
C_GenerateKeyPair(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
                  CK_ATTRIBUTE_PTR pPublicKeyTemplate, CK_ULONG ulPublicKeyAttributeCount,
                  CK_ATTRIBUTE_PTR pPrivateKeyTemplate, CK_ULONG ulPrivateKeyAttributeCount,
                  CK_OBJECT_HANDLE_PTR phPublicKey, CK_OBJECT_HANDLE_PTR phPrivateKey)
{
	struct cli_call c;
	CK_OBJECT_HANDLE pub = CK_INVALID_HANDLE, priv = CK_INVALID_HANDLE;
	CK_RV rv;

	if ((rv = cli_call_begin(&c, CALL(C_GenerateKeyPair), hSession)) != CKR_OK) {
		return rv;
	}
	if (pMechanism == NULL || TEMPLATE_BAD(pPublicKeyTemplate, ulPublicKeyAttributeCount) ||
	    TEMPLATE_BAD(pPrivateKeyTemplate, ulPrivateKeyAttributeCount) || phPublicKey == NULL ||
	    phPrivateKey == NULL) {
		return cli_call_end(&c, CKR_ARGUMENTS_BAD);
	}
	cli_put_ulong(&c, hSession);
	cli_put_mechanism(&c, pMechanism);
	cli_put_template(&c, pPublicKeyTemplate, ulPublicKeyAttributeCount);
	cli_put_template(&c, pPrivateKeyTemplate, ulPrivateKeyAttributeCount);
	rv = cli_call_run(&c);
	cli_get_ulong(&c, &pub);
	cli_get_ulong(&c, &priv);
	/* Both handles or neither. */
	if (c.fields && c.dec_err == 0) {
		*phPublicKey = pub;
		*phPrivateKey = priv;
	}
	return cli_call_end(&c, rv);
}

CLI_EXPORT CK_RV
C_WrapKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hWrappingKey,
          CK_OBJECT_HANDLE hKey, CK_BYTE_PTR pWrappedKey, CK_ULONG_PTR pulWrappedKeyLen)
{
	struct cli_call c;
	CK_RV rv;

	if ((rv = cli_call_begin(&c, CALL(C_WrapKey), hSession)) != CKR_OK) {
		return rv;
	}
	if (pMechanism == NULL || pulWrappedKeyLen == NULL) {
		return cli_call_end(&c, CKR_ARGUMENTS_BAD);
	}
	cli_put_ulong(&c, hSession);
	cli_put_mechanism(&c, pMechanism);
	cli_put_ulong(&c, hWrappingKey);
	cli_put_ulong(&c, hKey);
	cli_put_outbuf(&c, pWrappedKey, pWrappedKey != NULL ? *pulWrappedKeyLen : 0);
	rv = cli_call_run(&c);
	cli_get_outbuf(&c, pWrappedKey, pulWrappedKeyLen);
	return cli_call_end(&c, rv);
}

CLI_EXPORT CK_RV
C_UnwrapKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
            CK_OBJECT_HANDLE hUnwrappingKey, CK_BYTE_PTR pWrappedKey, CK_ULONG ulWrappedKeyLen,
            CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulAttributeCount, CK_OBJECT_HANDLE_PTR phKey)
{
	struct cli_call c;
	CK_RV rv;

	if ((rv = cli_call_begin(&c, CALL(C_UnwrapKey), hSession)) != CKR_OK) {
		return rv;
	}
	if (pMechanism == NULL || pWrappedKey == NULL ||
	    TEMPLATE_BAD(pTemplate, ulAttributeCount) || phKey == NULL) {
		return cli_call_end(&c, CKR_ARGUMENTS_BAD);
	}
	cli_put_ulong(&c, hSession);
	cli_put_mechanism(&c, pMechanism);
	cli_put_ulong(&c, hUnwrappingKey);
	cli_put_inbytes(&c, pWrappedKey, ulWrappedKeyLen);
	cli_put_template(&c, pTemplate, ulAttributeCount);
	rv = cli_call_run(&c);
	cli_get_ulong(&c, phKey);
	return cli_call_end(&c, rv);
}

CLI_EXPORT CK_RV
C_DeriveKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hBaseKey,
            CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulAttributeCount, CK_OBJECT_HANDLE_PTR phKey)
{
	struct cli_call c;
	CK_RV rv;

	if ((rv = cli_call_begin(&c, CALL(C_DeriveKey), hSession)) != CKR_OK) {
		return rv;
	}
	/* phKey may be NULL for mechanisms that derive no key object (e.g. the SSL3/TLS
	 * key-and-MAC derivations return handles in their parameter); forward those. */
	if (pMechanism == NULL || TEMPLATE_BAD(pTemplate, ulAttributeCount)) {
		return cli_call_end(&c, CKR_ARGUMENTS_BAD);
	}
	cli_put_ulong(&c, hSession);
	cli_put_mechanism(&c, pMechanism);
	cli_put_ulong(&c, hBaseKey);
	cli_put_template(&c, pTemplate, ulAttributeCount);
	rv = cli_call_run(&c);
	if (phKey != NULL) {
		cli_get_ulong(&c, phKey);
	} else {
		CK_OBJECT_HANDLE ignored;

		cli_get_ulong(&c, &ignored);
	}
	return cli_call_end(&c, rv);
}

/* ---- random numbers ----------------------------------------------------------------- */

CLI_EXPORT CK_RV
C_SeedRandom(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSeed, CK_ULONG ulSeedLen)
{
	return cli_fwd_in(CALL(C_SeedRandom), hSession, pSeed, ulSeedLen);
}

CLI_EXPORT CK_RV
C_GenerateRandom(CK_SESSION_HANDLE hSession, CK_BYTE_PTR RandomData, CK_ULONG ulRandomLen)
{
	struct cli_call c;
	CK_ULONG len = ulRandomLen;
	CK_BYTE none[1];
	CK_BYTE *buf = RandomData != NULL ? RandomData : none;
	CK_RV rv;

	if ((rv = cli_call_begin(&c, CALL(C_GenerateRandom), hSession)) != CKR_OK) {
		return rv;
	}
	if (RandomData == NULL && ulRandomLen != 0) {
		return cli_call_end(&c, CKR_ARGUMENTS_BAD);
	}
	/* An 'o' of exactly ulRandomLen: the reply must fill it all. */
	cli_put_ulong(&c, hSession);
	cli_put_outbuf(&c, buf, ulRandomLen);
	rv = cli_call_run(&c);
	cli_get_outbuf(&c, buf, &len);
	if (rv == CKR_OK && c.dec_err == 0 && len != ulRandomLen) {
		rv = CKR_DEVICE_ERROR;
	}
	return cli_call_end(&c, rv);
}

/* ---- legacy parallel functions ------------------------------------------------------ */

CLI_EXPORT CK_RV
C_GetFunctionStatus(CK_SESSION_HANDLE hSession)
{
	return cli_fwd_session(CALL(C_GetFunctionStatus), hSession);
}

CLI_EXPORT CK_RV
C_CancelFunction(CK_SESSION_HANDLE hSession)
{
	return cli_fwd_session(CALL(C_CancelFunction), hSession);
}
