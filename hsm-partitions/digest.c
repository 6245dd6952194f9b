/*
 * hsm-partitions/digest.c — the token's mechanism table, the digest operations, and the
 * random number functions.
 *
 * The table lists only what is implemented (C_GetMechanismList must not promise more);
 * issue 3 extends it with the key mechanisms of the crypto engine. Digests are OpenSSL 3 EVP.
 *
 * Operation-state rules (v2.40 §5.10 C_Digest): "A call to C_Digest always terminates the
 * active digest operation unless it returns CKR_BUFFER_TOO_SMALL or is a successful call
 * (i.e., one which returns CKR_OK) to determine the length of the buffer needed to hold the
 * message digest." The same holds for C_DigestFinal, and a C_DigestUpdate that fails ends
 * the operation too ("A call to C_DigestUpdate which results in an error terminates the
 * current digest operation").
 */
#include "hsm-partitions/part_int.h"

#include <openssl/evp.h>
#include <openssl/rand.h>

/* ulMinKeySize/ulMaxKeySize are meaningless for digests: 0. */
#define DIGEST(ck, name)                                                                           \
	{                                                                                          \
		ck, {0, 0, CKF_DIGEST}, name                                                       \
	}

static const struct part_mechanism mechanisms[] = {
        DIGEST(CKM_SHA_1, "SHA1"),    DIGEST(CKM_SHA224, "SHA224"), DIGEST(CKM_SHA256, "SHA256"),
        DIGEST(CKM_SHA384, "SHA384"), DIGEST(CKM_SHA512, "SHA512"),
};

size_t
part_mechanism_count(void)
{
	return sizeof(mechanisms) / sizeof(mechanisms[0]);
}

const struct part_mechanism *
part_mechanism_at(size_t i)
{
	return i < part_mechanism_count() ? &mechanisms[i] : NULL;
}

const struct part_mechanism *
part_mechanism_find(CK_MECHANISM_TYPE type)
{
	size_t i;

	for (i = 0; i < part_mechanism_count(); i++) {
		if (mechanisms[i].type == type) {
			return &mechanisms[i];
		}
	}
	return NULL;
}

void
part_digest_end(struct part_session *s)
{
	EVP_MD_CTX_free(s->md);
	s->md = NULL;
	s->md_updated = 0;
}

CK_RV
part_digest_init(struct part_token *t, uint64_t conn, CK_SESSION_HANDLE h, const CK_MECHANISM *m)
{
	const struct part_mechanism *pm;
	struct part_session *s;
	EVP_MD *md = NULL;
	CK_RV rv;

	if ((rv = part_session_get(t, conn, h, &s)) != CKR_OK) {
		return rv;
	}
	if (s->md != NULL) {
		return CKR_OPERATION_ACTIVE;
	}
	if ((pm = part_mechanism_find(m->mechanism)) == NULL ||
	    (pm->info.flags & CKF_DIGEST) == 0) {
		return CKR_MECHANISM_INVALID;
	}
	/* The SHA mechanisms take no parameter. */
	if (m->pParameter != NULL || m->ulParameterLen != 0) {
		return CKR_MECHANISM_PARAM_INVALID;
	}
	if ((md = EVP_MD_fetch(NULL, pm->md, NULL)) == NULL) {
		return CKR_DEVICE_ERROR;
	}
	if ((s->md = EVP_MD_CTX_new()) == NULL) {
		EVP_MD_free(md);
		return CKR_HOST_MEMORY;
	}
	if (EVP_DigestInit_ex(s->md, md, NULL) != 1) {
		EVP_MD_free(md);
		part_digest_end(s);
		return CKR_DEVICE_ERROR;
	}
	EVP_MD_free(md);
	s->md_updated = 0;
	return CKR_OK;
}

/* The digest of `s` into out[*outlen] with the size-query convention. Returns CKR_OK
 * with *done = 0 for a size query, and CKR_BUFFER_TOO_SMALL: the operation goes on. */
static CK_RV
digest_out(struct part_session *s, CK_BYTE *out, CK_ULONG *outlen, int *done)
{
	unsigned int n = 0;
	CK_ULONG need = (CK_ULONG)EVP_MD_CTX_get_size(s->md);

	*done = 0;
	if (out == NULL) {
		*outlen = need;
		return CKR_OK;
	}
	if (*outlen < need) {
		*outlen = need;
		return CKR_BUFFER_TOO_SMALL;
	}
	*done = 1;
	if (EVP_DigestFinal_ex(s->md, out, &n) != 1) {
		return CKR_DEVICE_ERROR;
	}
	*outlen = n;
	return CKR_OK;
}

CK_RV
part_digest(struct part_token *t, uint64_t conn, CK_SESSION_HANDLE h, const CK_BYTE *in,
            CK_ULONG inlen, CK_BYTE *out, CK_ULONG *outlen)
{
	struct part_session *s;
	int done;
	CK_RV rv;

	if ((rv = part_session_get(t, conn, h, &s)) != CKR_OK) {
		return rv;
	}
	if (s->md == NULL) {
		return CKR_OPERATION_NOT_INITIALIZED;
	}
	if (in == NULL && inlen != 0) {
		part_digest_end(s);
		return CKR_ARGUMENTS_BAD;
	}
	/* "C_Digest cannot be used to terminate a multi-part operation, and must be called
	 * after C_DigestInit without intervening C_DigestUpdate calls." */
	if (s->md_updated) {
		part_digest_end(s);
		return CKR_OPERATION_ACTIVE;
	}
	if (out == NULL || *outlen < (CK_ULONG)EVP_MD_CTX_get_size(s->md)) {
		/* Size query or short buffer: answered before the data is hashed, so the
		 * retry hashes it exactly once. */
		return digest_out(s, out, outlen, &done);
	}
	if (inlen != 0 && EVP_DigestUpdate(s->md, in, inlen) != 1) {
		part_digest_end(s);
		return CKR_DEVICE_ERROR;
	}
	rv = digest_out(s, out, outlen, &done);
	part_digest_end(s);
	return rv;
}

CK_RV
part_digest_update(struct part_token *t, uint64_t conn, CK_SESSION_HANDLE h, const CK_BYTE *in,
                   CK_ULONG inlen)
{
	struct part_session *s;
	CK_RV rv;

	if ((rv = part_session_get(t, conn, h, &s)) != CKR_OK) {
		return rv;
	}
	if (s->md == NULL) {
		return CKR_OPERATION_NOT_INITIALIZED;
	}
	if (in == NULL && inlen != 0) {
		part_digest_end(s);
		return CKR_ARGUMENTS_BAD;
	}
	if (inlen != 0 && EVP_DigestUpdate(s->md, in, inlen) != 1) {
		part_digest_end(s);
		return CKR_DEVICE_ERROR;
	}
	s->md_updated = 1;
	return CKR_OK;
}

CK_RV
part_digest_final(struct part_token *t, uint64_t conn, CK_SESSION_HANDLE h, CK_BYTE *out,
                  CK_ULONG *outlen)
{
	struct part_session *s;
	int done;
	CK_RV rv;

	if ((rv = part_session_get(t, conn, h, &s)) != CKR_OK) {
		return rv;
	}
	if (s->md == NULL) {
		return CKR_OPERATION_NOT_INITIALIZED;
	}
	rv = digest_out(s, out, outlen, &done);
	if (done) {
		part_digest_end(s);
	}
	return rv;
}

CK_RV
part_random_generate(struct part_token *t, uint64_t conn, CK_SESSION_HANDLE h, CK_BYTE *out,
                     CK_ULONG len)
{
	struct part_session *s;
	CK_RV rv;

	if ((rv = part_session_get(t, conn, h, &s)) != CKR_OK) {
		return rv;
	}
	if (out == NULL || len > INT32_MAX) {
		return CKR_ARGUMENTS_BAD;
	}
	if (len != 0 && RAND_bytes(out, (int)len) != 1) {
		return CKR_DEVICE_ERROR;
	}
	return CKR_OK;
}

/*
 * C_SeedRandom answers CKR_RANDOM_SEED_NOT_SUPPORTED ("The token's random number generator
 * does not accept seeding from an application", v2.40 §5.1), a choice PKCS #11 allows for a
 * token with CKF_RNG. One worker's generator serves every application of the tenant:
 * letting one of them mix bytes into it would let it influence what the others get, and
 * OpenSSL's DRBG already reseeds itself from the operating system.
 */
CK_RV
part_random_seed(struct part_token *t, uint64_t conn, CK_SESSION_HANDLE h, const CK_BYTE *seed,
                 CK_ULONG len)
{
	struct part_session *s;
	CK_RV rv;

	(void)len;
	if ((rv = part_session_get(t, conn, h, &s)) != CKR_OK) {
		return rv;
	}
	if (seed == NULL) {
		return CKR_ARGUMENTS_BAD;
	}
	return CKR_RANDOM_SEED_NOT_SUPPORTED;
}

/*
 * C_DigestKey (v2.40 §5.10): "continues a multiple-part message-digesting operation by
 * digesting the value of a secret key". Only secret keys have a value to digest
 * (CKR_KEY_INDIGESTIBLE otherwise); like C_DigestUpdate, an error ends the operation.
 */
CK_RV
part_digest_key(struct part_token *t, uint64_t conn, CK_SESSION_HANDLE h, CK_OBJECT_HANDLE key)
{
	const struct part_attr *v;
	struct part_session *s;
	struct part_object *o;
	CK_RV rv;

	if ((rv = part_session_get(t, conn, h, &s)) != CKR_OK) {
		return rv;
	}
	if (s->md == NULL) {
		return CKR_OPERATION_NOT_INITIALIZED;
	}
	if (part_object_lookup(t, s, key, &o) != CKR_OK) {
		part_digest_end(s);
		return CKR_KEY_HANDLE_INVALID;
	}
	if (o->cls != CKO_SECRET_KEY || (v = part_object_attr(o, CKA_VALUE)) == NULL) {
		part_digest_end(s);
		return o->cls == CKO_PUBLIC_KEY || o->cls == CKO_PRIVATE_KEY
		               ? CKR_KEY_INDIGESTIBLE
		               : CKR_KEY_HANDLE_INVALID;
	}
	if (v->len != 0 && EVP_DigestUpdate(s->md, v->value, v->len) != 1) {
		part_digest_end(s);
		return CKR_DEVICE_ERROR;
	}
	s->md_updated = 1;
	return CKR_OK;
}
