/*
 * tests/e2e/p11_stress.c — many application threads × many mixed PKCS #11 calls over one
 * instance of a PKCS #11 module (the hsmgate client module in the e2e tests, but any
 * module works), checking every result.
 *
 * usage: p11_stress --module SO --token LABEL [--pin-file F] [--threads T] [--calls N] [--rsa]
 *
 * Each thread runs N calls, picked at random among:
 *   random    C_GenerateRandom on the thread's session (length and not all zero)
 *   digest    C_DigestInit + C_Digest (SHA-256) of random data, against OpenSSL's SHA256,
 *             with a size query first
 *   session   C_OpenSession + C_GetSessionInfo + C_CloseSession
 *   token     C_GetTokenInfo: the label is the one asked for
 *   object    (only with --pin-file) create a private session CKO_DATA object, find it by
 *             its unique label, read CKA_VALUE back (size query, then value), destroy it,
 *             and check that it is gone
 *   rsa       (only with --rsa, which needs --pin-file) C_SignInit + C_Sign (size query, then
 *             the signature, checked with OpenSSL) or C_DecryptInit + C_Decrypt of what
 *             OpenSSL encrypted, with one RSA-2048 session key pair made at the start: the
 *             soft worker's crypto threads take these (hsm-partitions/pool.c)
 * The module is initialised once with CKF_OS_LOCKING_OK; with --pin-file the user logs in
 * once on a session held for the whole run (login state is per application, §6.7.1).
 *
 * Output: "PASS p11_stress <kind>: <n> calls" per kind that ran without error, "FAIL ..."
 * lines for wrong results (at most 20 detailed ones), "CALLS ok=<n>" (the PKCS #11 calls
 * that returned CKR_OK, i.e. whose reply the client received: the audit e2e test compares
 * it with the gateway's events; C_DigestInit counts with the C_Digest after it), and a final
 * PASS/FAIL line. Exit
 * status: 0 all good, 1 a wrong result, 2 usage or setup error.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <p11-kit/pkcs11.h>

#include "tests/lib/pin.h"

enum op { OP_RANDOM, OP_DIGEST, OP_SESSION, OP_TOKEN, OP_OBJECT, OP_RSA, OP_COUNT };
static const char *op_names[OP_COUNT] = {"random", "digest", "session", "token", "object", "rsa"};

#define MAX_FAIL_LINES 20

static CK_FUNCTION_LIST_PTR p11;
static CK_SLOT_ID slot;
static char label[33];
static int have_pin;
static int want_rsa;
static CK_OBJECT_HANDLE rsa_priv;
static EVP_PKEY *rsa_pub; /* the same key's public half, for OpenSSL */
static unsigned calls_per_thread = 1000;

static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned fail_lines;
static unsigned long done[OP_COUNT];
static unsigned long failed[OP_COUNT];

/* ---- counting every call that returned CKR_OK ------------------------------------------ */

static CK_FUNCTION_LIST_PTR real;
static CK_FUNCTION_LIST counted;
static unsigned long calls_ok;

static CK_RV
count_rv(CK_RV rv)
{
	if (rv == CKR_OK) {
		__atomic_fetch_add(&calls_ok, 1, __ATOMIC_RELAXED);
	}
	return rv;
}

#define COUNTED(name, params, args)                                                                \
	static CK_RV cnt_##name params                                                             \
	{                                                                                          \
		return count_rv(real->name args);                                                  \
	}
COUNTED(C_GetSlotList, (CK_BBOOL a, CK_SLOT_ID_PTR b, CK_ULONG_PTR c), (a, b, c))
COUNTED(C_GetTokenInfo, (CK_SLOT_ID a, CK_TOKEN_INFO_PTR b), (a, b))
COUNTED(C_OpenSession,
        (CK_SLOT_ID a, CK_FLAGS b, CK_VOID_PTR c, CK_NOTIFY d, CK_SESSION_HANDLE_PTR e),
        (a, b, c, d, e))
COUNTED(C_CloseSession, (CK_SESSION_HANDLE a), (a))
COUNTED(C_GetSessionInfo, (CK_SESSION_HANDLE a, CK_SESSION_INFO_PTR b), (a, b))
COUNTED(C_Login, (CK_SESSION_HANDLE a, CK_USER_TYPE b, CK_UTF8CHAR_PTR c, CK_ULONG d), (a, b, c, d))
COUNTED(C_Logout, (CK_SESSION_HANDLE a), (a))
COUNTED(C_CreateObject,
        (CK_SESSION_HANDLE a, CK_ATTRIBUTE_PTR b, CK_ULONG c, CK_OBJECT_HANDLE_PTR d), (a, b, c, d))
COUNTED(C_DestroyObject, (CK_SESSION_HANDLE a, CK_OBJECT_HANDLE b), (a, b))
COUNTED(C_GetAttributeValue,
        (CK_SESSION_HANDLE a, CK_OBJECT_HANDLE b, CK_ATTRIBUTE_PTR c, CK_ULONG d), (a, b, c, d))
COUNTED(C_FindObjectsInit, (CK_SESSION_HANDLE a, CK_ATTRIBUTE_PTR b, CK_ULONG c), (a, b, c))
COUNTED(C_FindObjects, (CK_SESSION_HANDLE a, CK_OBJECT_HANDLE_PTR b, CK_ULONG c, CK_ULONG_PTR d),
        (a, b, c, d))
COUNTED(C_FindObjectsFinal, (CK_SESSION_HANDLE a), (a))

/* An init the module may answer itself (a deferred init, docs/PKCS11.md deviation 17) is
 * counted once the call after it on the thread's session returned CKR_OK: that proves the
 * gateway answered both. An init followed by a failure is not counted (it may never have
 * left the process). */
static __thread int init_unconfirmed;

static CK_RV
count_continued(CK_RV rv)
{
	if (rv == CKR_OK && init_unconfirmed) {
		count_rv(rv);
	}
	init_unconfirmed = 0;
	return count_rv(rv);
}

/* An init, counted by the call after it, and that call. */
#define INIT_COUNTED(name, params, args)                                                           \
	static CK_RV cnt_##name params                                                             \
	{                                                                                          \
		CK_RV rv = real->name args;                                                        \
		init_unconfirmed = rv == CKR_OK;                                                   \
		return rv;                                                                         \
	}
#define CONTINUE_COUNTED(name, params, args)                                                       \
	static CK_RV cnt_##name params                                                             \
	{                                                                                          \
		return count_continued(real->name args);                                           \
	}
INIT_COUNTED(C_DigestInit, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b), (a, b))
INIT_COUNTED(C_SignInit, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_OBJECT_HANDLE c), (a, b, c))
INIT_COUNTED(C_DecryptInit, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_OBJECT_HANDLE c),
             (a, b, c))
CONTINUE_COUNTED(C_Digest,
                 (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e),
                 (a, b, c, d, e))
CONTINUE_COUNTED(C_Sign,
                 (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e),
                 (a, b, c, d, e))
CONTINUE_COUNTED(C_Decrypt,
                 (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e),
                 (a, b, c, d, e))
COUNTED(C_GenerateRandom, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c), (a, b, c))

/* The module's function list with the calls that travel to the gateway counted. */
static void
count_calls(void)
{
	counted = *real;
	counted.C_GetSlotList = cnt_C_GetSlotList;
	counted.C_GetTokenInfo = cnt_C_GetTokenInfo;
	counted.C_OpenSession = cnt_C_OpenSession;
	counted.C_CloseSession = cnt_C_CloseSession;
	counted.C_GetSessionInfo = cnt_C_GetSessionInfo;
	counted.C_Login = cnt_C_Login;
	counted.C_Logout = cnt_C_Logout;
	counted.C_CreateObject = cnt_C_CreateObject;
	counted.C_DestroyObject = cnt_C_DestroyObject;
	counted.C_GetAttributeValue = cnt_C_GetAttributeValue;
	counted.C_FindObjectsInit = cnt_C_FindObjectsInit;
	counted.C_FindObjects = cnt_C_FindObjects;
	counted.C_FindObjectsFinal = cnt_C_FindObjectsFinal;
	counted.C_DigestInit = cnt_C_DigestInit;
	counted.C_Digest = cnt_C_Digest;
	counted.C_SignInit = cnt_C_SignInit;
	counted.C_Sign = cnt_C_Sign;
	counted.C_DecryptInit = cnt_C_DecryptInit;
	counted.C_Decrypt = cnt_C_Decrypt;
	counted.C_GenerateRandom = cnt_C_GenerateRandom;
}

struct worker {
	pthread_t t;
	unsigned id;
	unsigned seed;
	CK_SESSION_HANDLE session;
};

static void fail(unsigned tid, enum op op, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static void
fail(unsigned tid, enum op op, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&out_lock);
	failed[op]++;
	if (fail_lines++ < MAX_FAIL_LINES) {
		printf("FAIL p11_stress %s: thread %u: ", op_names[op], tid);
		va_start(ap, fmt);
		vprintf(fmt, ap);
		va_end(ap);
		printf("\n");
		fflush(stdout);
	}
	pthread_mutex_unlock(&out_lock);
}

static void
count(enum op op)
{
	pthread_mutex_lock(&out_lock);
	done[op]++;
	pthread_mutex_unlock(&out_lock);
}

/* The padded token label field, trimmed. */
static void
label_of(const CK_TOKEN_INFO *ti, char out[33])
{
	int n = 32;

	memcpy(out, ti->label, 32);
	while (n > 0 && out[n - 1] == ' ') {
		n--;
	}
	out[n] = '\0';
}

/* ---- operations --------------------------------------------------------------------- */

static int
op_random(struct worker *w)
{
	CK_BYTE buf[64];
	size_t i, zero = 0;
	CK_RV rv;

	memset(buf, 0, sizeof(buf));
	if ((rv = p11->C_GenerateRandom(w->session, buf, sizeof(buf))) != CKR_OK) {
		fail(w->id, OP_RANDOM, "C_GenerateRandom returned 0x%lx", (unsigned long)rv);
		return -1;
	}
	for (i = 0; i < sizeof(buf); i++) {
		zero += buf[i] == 0;
	}
	if (zero == sizeof(buf)) {
		fail(w->id, OP_RANDOM, "C_GenerateRandom left 64 zero bytes");
		return -1;
	}
	return 0;
}

static int
op_digest(struct worker *w)
{
	CK_MECHANISM m = {CKM_SHA256, NULL, 0};
	CK_BYTE data[1024], md[64], want[SHA256_DIGEST_LENGTH];
	CK_ULONG len = 1 + (CK_ULONG)(rand_r(&w->seed) % sizeof(data)), n;
	CK_RV rv;

	if (RAND_bytes(data, (int)len) != 1) {
		fail(w->id, OP_DIGEST, "RAND_bytes failed");
		return -1;
	}
	SHA256(data, len, want);
	if ((rv = p11->C_DigestInit(w->session, &m)) != CKR_OK) {
		fail(w->id, OP_DIGEST, "C_DigestInit returned 0x%lx", (unsigned long)rv);
		return -1;
	}
	n = 0;
	if ((rv = p11->C_Digest(w->session, data, len, NULL, &n)) != CKR_OK || n != sizeof(want)) {
		fail(w->id, OP_DIGEST, "C_Digest size query returned 0x%lx, length %lu",
		     (unsigned long)rv, (unsigned long)n);
		/* v2.40 §5.2: a failed C_Digest ends the operation; a successful query does not. */
		if (rv == CKR_OK) {
			n = sizeof(md);
			(void)p11->C_Digest(w->session, data, len, md, &n);
		}
		return -1;
	}
	n = sizeof(md);
	if ((rv = p11->C_Digest(w->session, data, len, md, &n)) != CKR_OK) {
		fail(w->id, OP_DIGEST, "C_Digest returned 0x%lx", (unsigned long)rv);
		return -1;
	}
	if (n != sizeof(want) || memcmp(md, want, sizeof(want)) != 0) {
		fail(w->id, OP_DIGEST, "C_Digest of %lu bytes does not match OpenSSL's SHA-256",
		     (unsigned long)len);
		return -1;
	}
	return 0;
}

static int
op_session(struct worker *w)
{
	CK_SESSION_HANDLE h;
	CK_SESSION_INFO si;
	CK_RV rv;
	int r = 0;

	if ((rv = p11->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &h)) != CKR_OK) {
		fail(w->id, OP_SESSION, "C_OpenSession returned 0x%lx", (unsigned long)rv);
		return -1;
	}
	if ((rv = p11->C_GetSessionInfo(h, &si)) != CKR_OK || si.slotID != slot) {
		fail(w->id, OP_SESSION, "C_GetSessionInfo returned 0x%lx (slot %lu)",
		     (unsigned long)rv, (unsigned long)si.slotID);
		r = -1;
	}
	if ((rv = p11->C_CloseSession(h)) != CKR_OK) {
		fail(w->id, OP_SESSION, "C_CloseSession returned 0x%lx", (unsigned long)rv);
		r = -1;
	}
	return r;
}

static int
op_token(struct worker *w)
{
	CK_TOKEN_INFO ti;
	char got[33];
	CK_RV rv;

	if ((rv = p11->C_GetTokenInfo(slot, &ti)) != CKR_OK) {
		fail(w->id, OP_TOKEN, "C_GetTokenInfo returned 0x%lx", (unsigned long)rv);
		return -1;
	}
	label_of(&ti, got);
	if (strcmp(got, label) != 0) {
		fail(w->id, OP_TOKEN, "token label '%s', expected '%s'", got, label);
		return -1;
	}
	return 0;
}

/* The handles of objects labelled `lab` (at most 4). */
static int
find_by_label(struct worker *w, const char *lab, CK_OBJECT_HANDLE *found, CK_ULONG *n)
{
	CK_OBJECT_CLASS cls = CKO_DATA;
	CK_ATTRIBUTE t[] = {
	        {CKA_CLASS, &cls, sizeof(cls)},
	        {CKA_LABEL, (void *)lab, strlen(lab)},
	};
	CK_RV rv;

	if ((rv = p11->C_FindObjectsInit(w->session, t, 2)) != CKR_OK) {
		fail(w->id, OP_OBJECT, "C_FindObjectsInit returned 0x%lx", (unsigned long)rv);
		return -1;
	}
	*n = 0;
	if ((rv = p11->C_FindObjects(w->session, found, 4, n)) != CKR_OK) {
		fail(w->id, OP_OBJECT, "C_FindObjects returned 0x%lx", (unsigned long)rv);
		(void)p11->C_FindObjectsFinal(w->session);
		return -1;
	}
	if ((rv = p11->C_FindObjectsFinal(w->session)) != CKR_OK) {
		fail(w->id, OP_OBJECT, "C_FindObjectsFinal returned 0x%lx", (unsigned long)rv);
		return -1;
	}
	return 0;
}

static int
op_object(struct worker *w, unsigned i)
{
	CK_OBJECT_CLASS cls = CKO_DATA;
	CK_BBOOL no = CK_FALSE, yes = CK_TRUE;
	CK_BYTE value[256], back[256];
	CK_ULONG vlen = 1 + (CK_ULONG)(rand_r(&w->seed) % sizeof(value)), n;
	CK_OBJECT_HANDLE h = CK_INVALID_HANDLE, found[4];
	char lab[64];
	CK_RV rv;
	int r = -1;

	snprintf(lab, sizeof(lab), "p11stress-%u-%u-%u", w->id, i, (unsigned)rand_r(&w->seed));
	if (RAND_bytes(value, (int)vlen) != 1) {
		fail(w->id, OP_OBJECT, "RAND_bytes failed");
		return -1;
	}
	{
		CK_ATTRIBUTE t[] = {
		        {CKA_CLASS, &cls, sizeof(cls)},   {CKA_TOKEN, &no, sizeof(no)},
		        {CKA_PRIVATE, &yes, sizeof(yes)}, {CKA_LABEL, lab, strlen(lab)},
		        {CKA_VALUE, value, vlen},
		};

		if ((rv = p11->C_CreateObject(w->session, t, 5, &h)) != CKR_OK) {
			fail(w->id, OP_OBJECT, "C_CreateObject returned 0x%lx", (unsigned long)rv);
			return -1;
		}
	}
	if (find_by_label(w, lab, found, &n) != 0) {
		goto out;
	}
	if (n != 1 || found[0] != h) {
		fail(w->id, OP_OBJECT, "found %lu objects labelled %s (want exactly the new one)",
		     (unsigned long)n, lab);
		goto out;
	}
	{
		CK_ATTRIBUTE q = {CKA_VALUE, NULL, 0};

		if ((rv = p11->C_GetAttributeValue(w->session, h, &q, 1)) != CKR_OK ||
		    q.ulValueLen != vlen) {
			fail(w->id, OP_OBJECT,
			     "CKA_VALUE size query returned 0x%lx, length %lu (want %lu)",
			     (unsigned long)rv, (unsigned long)q.ulValueLen, (unsigned long)vlen);
			goto out;
		}
		q.pValue = back;
		q.ulValueLen = sizeof(back);
		if ((rv = p11->C_GetAttributeValue(w->session, h, &q, 1)) != CKR_OK ||
		    q.ulValueLen != vlen || memcmp(back, value, vlen) != 0) {
			fail(w->id, OP_OBJECT,
			     "CKA_VALUE read back 0x%lx, length %lu: not what was stored",
			     (unsigned long)rv, (unsigned long)q.ulValueLen);
			goto out;
		}
	}
	r = 0;
out:
	if ((rv = p11->C_DestroyObject(w->session, h)) != CKR_OK) {
		fail(w->id, OP_OBJECT, "C_DestroyObject returned 0x%lx", (unsigned long)rv);
		return -1;
	}
	if (r == 0 && find_by_label(w, lab, found, &n) == 0 && n != 0) {
		fail(w->id, OP_OBJECT, "object %s still found after C_DestroyObject", lab);
		r = -1;
	}
	return r;
}

/* A signature checked by OpenSSL, or a decryption of OpenSSL's ciphertext. */
static int
op_rsa(struct worker *w)
{
	CK_MECHANISM sha = {CKM_SHA256_RSA_PKCS, NULL, 0}, pkcs = {CKM_RSA_PKCS, NULL, 0};
	CK_BYTE data[200], out[256], ct[256];
	CK_ULONG len = 1 + (CK_ULONG)(rand_r(&w->seed) % sizeof(data)), n;
	EVP_PKEY_CTX *ctx = NULL;
	EVP_MD_CTX *md;
	size_t ctlen = sizeof(ct);
	int sign = rand_r(&w->seed) % 2, ok;
	CK_RV rv;

	if (RAND_bytes(data, (int)len) != 1) {
		fail(w->id, OP_RSA, "RAND_bytes failed");
		return -1;
	}
	if (sign) {
		if ((rv = p11->C_SignInit(w->session, &sha, rsa_priv)) != CKR_OK) {
			fail(w->id, OP_RSA, "C_SignInit returned 0x%lx", (unsigned long)rv);
			return -1;
		}
		n = 0;
		if ((rv = p11->C_Sign(w->session, data, len, NULL, &n)) != CKR_OK || n != 256) {
			fail(w->id, OP_RSA, "C_Sign size query returned 0x%lx, length %lu",
			     (unsigned long)rv, (unsigned long)n);
			if (rv == CKR_OK) {
				n = sizeof(out);
				(void)p11->C_Sign(w->session, data, len, out, &n);
			}
			return -1;
		}
		n = sizeof(out);
		if ((rv = p11->C_Sign(w->session, data, len, out, &n)) != CKR_OK) {
			fail(w->id, OP_RSA, "C_Sign returned 0x%lx", (unsigned long)rv);
			return -1;
		}
		md = EVP_MD_CTX_new();
		ok = md != NULL &&
		     EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, rsa_pub) == 1 &&
		     EVP_DigestVerify(md, out, n, data, len) == 1;
		EVP_MD_CTX_free(md);
		if (!ok) {
			fail(w->id, OP_RSA,
			     "OpenSSL does not verify the RSA signature of %lu bytes",
			     (unsigned long)len);
			return -1;
		}
		return 0;
	}
	if ((ctx = EVP_PKEY_CTX_new(rsa_pub, NULL)) == NULL || EVP_PKEY_encrypt_init(ctx) != 1 ||
	    EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) != 1 ||
	    EVP_PKEY_encrypt(ctx, ct, &ctlen, data, len > 245 ? 245 : len) != 1) {
		EVP_PKEY_CTX_free(ctx);
		fail(w->id, OP_RSA, "OpenSSL RSA encryption failed");
		return -1;
	}
	EVP_PKEY_CTX_free(ctx);
	len = len > 245 ? 245 : len;
	if ((rv = p11->C_DecryptInit(w->session, &pkcs, rsa_priv)) != CKR_OK) {
		fail(w->id, OP_RSA, "C_DecryptInit returned 0x%lx", (unsigned long)rv);
		return -1;
	}
	n = sizeof(out);
	if ((rv = p11->C_Decrypt(w->session, ct, (CK_ULONG)ctlen, out, &n)) != CKR_OK) {
		fail(w->id, OP_RSA, "C_Decrypt returned 0x%lx", (unsigned long)rv);
		return -1;
	}
	if (n != len || memcmp(out, data, len) != 0) {
		fail(w->id, OP_RSA, "C_Decrypt gave %lu bytes, not the %lu OpenSSL encrypted",
		     (unsigned long)n, (unsigned long)len);
		return -1;
	}
	return 0;
}

/* One RSA-2048 session key pair for every thread (session objects are the application's),
 * and its public half for OpenSSL. Set-up calls are not counted: they only add events. */
static int
rsa_setup(CK_SESSION_HANDLE h)
{
	CK_MECHANISM gen = {CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0};
	CK_ULONG bits = 2048;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_ATTRIBUTE pubt[] = {{CKA_MODULUS_BITS, &bits, sizeof(bits)},
	                       {CKA_TOKEN, &no, sizeof(no)}};
	CK_ATTRIBUTE privt[] = {{CKA_TOKEN, &no, sizeof(no)},
	                        {CKA_SIGN, &yes, sizeof(yes)},
	                        {CKA_DECRYPT, &yes, sizeof(yes)}};
	CK_BYTE mod[512], exp[16];
	CK_ATTRIBUTE q[] = {{CKA_MODULUS, mod, sizeof(mod)},
	                    {CKA_PUBLIC_EXPONENT, exp, sizeof(exp)}};
	CK_OBJECT_HANDLE pub;
	OSSL_PARAM_BLD *b = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	BIGNUM *n = NULL, *e = NULL;
	CK_RV rv;
	int r = -1;

	if ((rv = real->C_GenerateKeyPair(h, &gen, pubt, 2, privt, 3, &pub, &rsa_priv)) != CKR_OK ||
	    (rv = real->C_GetAttributeValue(h, pub, q, 2)) != CKR_OK) {
		printf("FAIL p11_stress: RSA key pair: 0x%lx\n", (unsigned long)rv);
		return -1;
	}
	if ((n = BN_bin2bn(mod, (int)q[0].ulValueLen, NULL)) == NULL ||
	    (e = BN_bin2bn(exp, (int)q[1].ulValueLen, NULL)) == NULL ||
	    (b = OSSL_PARAM_BLD_new()) == NULL ||
	    !OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_RSA_N, n) ||
	    !OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_RSA_E, e) ||
	    (params = OSSL_PARAM_BLD_to_param(b)) == NULL ||
	    (ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL)) == NULL ||
	    EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &rsa_pub, EVP_PKEY_PUBLIC_KEY, params) != 1) {
		printf("FAIL p11_stress: the RSA public key does not load into OpenSSL\n");
		goto out;
	}
	r = 0;
out:
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(b);
	BN_free(n);
	BN_free(e);
	return r;
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	unsigned i, kinds = !have_pin ? OP_OBJECT : want_rsa ? OP_COUNT : OP_RSA;
	enum op op;
	CK_RV rv;
	int r;

	rv = p11->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &w->session);
	if (rv != CKR_OK) {
		fail(w->id, OP_SESSION, "C_OpenSession (R/W) returned 0x%lx", (unsigned long)rv);
		return NULL;
	}
	for (i = 0; i < calls_per_thread; i++) {
		op = (enum op)(rand_r(&w->seed) % kinds);
		switch (op) {
		case OP_RANDOM:
			r = op_random(w);
			break;
		case OP_DIGEST:
			r = op_digest(w);
			break;
		case OP_SESSION:
			r = op_session(w);
			break;
		case OP_TOKEN:
			r = op_token(w);
			break;
		case OP_OBJECT:
			r = op_object(w, i);
			break;
		case OP_RSA:
			r = op_rsa(w);
			break;
		default:
			r = -1;
			break;
		}
		if (r == 0) {
			count(op);
		}
	}
	if ((rv = p11->C_CloseSession(w->session)) != CKR_OK) {
		fail(w->id, OP_SESSION, "C_CloseSession (R/W) returned 0x%lx", (unsigned long)rv);
	}
	return NULL;
}

/* ---- set-up --------------------------------------------------------------------------- */

static void
usage(void)
{
	fprintf(stderr, "usage: p11_stress --module SO --token LABEL [--pin-file F] "
	                "[--threads T] [--calls N] [--rsa]\n");
	exit(2);
}

static int
find_slot(const char *want)
{
	CK_SLOT_ID *slots = NULL;
	CK_TOKEN_INFO ti;
	CK_ULONG n = 0, i;
	char got[33];
	int r = -1;

	if (p11->C_GetSlotList(CK_TRUE, NULL, &n) != CKR_OK || n == 0 ||
	    (slots = calloc(n, sizeof(*slots))) == NULL ||
	    p11->C_GetSlotList(CK_TRUE, slots, &n) != CKR_OK) {
		goto out;
	}
	for (i = 0; i < n; i++) {
		if (p11->C_GetTokenInfo(slots[i], &ti) != CKR_OK) {
			continue;
		}
		label_of(&ti, got);
		if (strcmp(got, want) == 0) {
			slot = slots[i];
			r = 0;
			break;
		}
	}
out:
	free(slots);
	return r;
}

int
main(int argc, char **argv)
{
	const char *module = NULL, *token = NULL, *pin_file = NULL;
	unsigned threads = 8, i, k;
	CK_C_GetFunctionList getfl;
	CK_C_INITIALIZE_ARGS args;
	CK_SESSION_HANDLE login = CK_INVALID_HANDLE;
	struct worker *w;
	char pin[256];
	unsigned long total_failed = 0, total_done = 0;
	void *so;
	CK_RV rv;
	int a;

	for (a = 1; a < argc; a++) {
		if (strcmp(argv[a], "--rsa") == 0) {
			want_rsa = 1;
			continue;
		}
		if (a + 1 >= argc) {
			usage();
		}
		if (strcmp(argv[a], "--module") == 0) {
			module = argv[++a];
		} else if (strcmp(argv[a], "--token") == 0) {
			token = argv[++a];
		} else if (strcmp(argv[a], "--pin-file") == 0) {
			pin_file = argv[++a];
		} else if (strcmp(argv[a], "--threads") == 0) {
			threads = (unsigned)strtoul(argv[++a], NULL, 10);
		} else if (strcmp(argv[a], "--calls") == 0) {
			calls_per_thread = (unsigned)strtoul(argv[++a], NULL, 10);
		} else {
			usage();
		}
	}
	if (module == NULL || token == NULL || threads == 0 || threads > 1024 ||
	    strlen(token) > 32 || (want_rsa && pin_file == NULL)) {
		usage();
	}
	snprintf(label, sizeof(label), "%s", token);

	if ((so = dlopen(module, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		printf("FAIL p11_stress: dlopen %s: %s\n", module, dlerror());
		return 2;
	}
	if ((getfl = (CK_C_GetFunctionList)dlsym(so, "C_GetFunctionList")) == NULL ||
	    getfl(&real) != CKR_OK) {
		printf("FAIL p11_stress: %s has no usable C_GetFunctionList\n", module);
		return 2;
	}
	count_calls();
	p11 = &counted;
	memset(&args, 0, sizeof(args));
	args.flags = CKF_OS_LOCKING_OK;
	if ((rv = p11->C_Initialize(&args)) != CKR_OK) {
		printf("FAIL p11_stress: C_Initialize returned 0x%lx\n", (unsigned long)rv);
		return 2;
	}
	if (find_slot(token) != 0) {
		printf("FAIL p11_stress: no token labelled '%s'\n", token);
		(void)p11->C_Finalize(NULL);
		return 2;
	}
	if (pin_file != NULL) {
		if (test_read_pin(pin_file, pin, sizeof(pin)) != 0) {
			printf("FAIL p11_stress: cannot read a PIN from %s\n", pin_file);
			(void)p11->C_Finalize(NULL);
			return 2;
		}
		rv = p11->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL,
		                        &login);
		if (rv == CKR_OK) {
			rv = p11->C_Login(login, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin));
		}
		OPENSSL_cleanse(pin, sizeof(pin));
		if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
			printf("FAIL p11_stress: C_Login returned 0x%lx\n", (unsigned long)rv);
			(void)p11->C_Finalize(NULL);
			return 2;
		}
		have_pin = 1;
		if (want_rsa && rsa_setup(login) != 0) {
			(void)p11->C_Finalize(NULL);
			return 2;
		}
	}

	if ((w = calloc(threads, sizeof(*w))) == NULL) {
		return 2;
	}
	for (i = 0; i < threads; i++) {
		w[i].id = i;
		w[i].seed = 0x9e3779b9u * (i + 1);
		if (pthread_create(&w[i].t, NULL, worker_main, &w[i]) != 0) {
			printf("FAIL p11_stress: cannot start thread %u\n", i);
			return 2;
		}
	}
	for (i = 0; i < threads; i++) {
		pthread_join(w[i].t, NULL);
	}
	free(w);

	if (login != CK_INVALID_HANDLE) {
		(void)p11->C_Logout(login);
		(void)p11->C_CloseSession(login);
	}
	if ((rv = p11->C_Finalize(NULL)) != CKR_OK) {
		printf("FAIL p11_stress: C_Finalize returned 0x%lx\n", (unsigned long)rv);
		total_failed++;
	}
	EVP_PKEY_free(rsa_pub);
	printf("CALLS ok=%lu\n", __atomic_load_n(&calls_ok, __ATOMIC_RELAXED));
	for (k = 0; k < OP_COUNT; k++) {
		if ((k == OP_OBJECT && !have_pin) || (k == OP_RSA && !want_rsa)) {
			continue;
		}
		total_done += done[k];
		total_failed += failed[k];
		if (failed[k] == 0) {
			printf("PASS p11_stress %s: %lu calls\n", op_names[k], done[k]);
		} else {
			printf("FAIL p11_stress %s: %lu wrong of %lu\n", op_names[k], failed[k],
			       done[k] + failed[k]);
		}
	}
	if (total_failed != 0) {
		printf("FAIL p11_stress: %lu wrong results (%u threads x %u calls)\n", total_failed,
		       threads, calls_per_thread);
		return 1;
	}
	printf("PASS p11_stress: %lu operations, %u threads x %u calls\n", total_done, threads,
	       calls_per_thread);
	return 0;
}
