/*
 * client/module.c — the module itself: C_GetFunctionList, C_Initialize, C_Finalize,
 * C_GetInfo, its global state, fork detection and (re)connection.
 *
 * Return values of the module's own failures (docs/PROTOCOL.md carries this table):
 *
 *   C_Initialize
 *     CKR_ARGUMENTS_BAD            pReserved not NULL, or only some mutex callbacks given
 *     (CKF_LIBRARY_CANT_CREATE_OS_THREADS is honoured: the module then creates no thread and
 *      each caller drives the connection while it waits; see client/conn.c io_drive.)
 *     CKR_CANT_LOCK                mutex callbacks without CKF_OS_LOCKING_OK (see below)
 *     CKR_CRYPTOKI_ALREADY_INITIALIZED
 *     CKR_GENERAL_ERROR            HSMGATE_CONF unset, the file missing, unreadable or
 *                                  invalid, or its CA / certificate / key unusable
 *     CKR_DEVICE_ERROR             the gateway cannot be reached (TCP, TLS link, timeout,
 *                                  not speaking our protocol)
 *     CKR_FUNCTION_FAILED          authentication refused: the gateway's ERROR (AUTH) to our
 *                                  HELLO, a TLS alert about our certificate, or the
 *                                  gateway's certificate failing verification (CA, name)
 *     CKR_HOST_MEMORY
 *   Each of these but the first four writes one line "hsmgate: ..." on stderr.
 *
 *   Any forwarded function
 *     CKR_CRYPTOKI_NOT_INITIALIZED before C_Initialize, after C_Finalize (also for calls in
 *                                  flight when another thread finalizes), and in a child
 *                                  after fork() until it calls C_Initialize
 *     CKR_DEVICE_REMOVED           the connection was lost while the call was in flight
 *     CKR_DEVICE_ERROR             no reply within timeout_ms; a reconnect that failed; the
 *                                  gateway answered with an ERROR frame (worker not running,
 *                                  limit ...); a reply that does not decode
 *     CKR_FUNCTION_FAILED          a reconnect refused by authentication
 *     CKR_SESSION_HANDLE_INVALID   a session not opened on the current connection (lost with
 *                                  an earlier one, or already closed)
 *     CKR_DATA_LEN_RANGE           a request that would exceed the gateway's max_frame
 *     CKR_MECHANISM_PARAM_INVALID  a mechanism parameter the encoder refuses
 *     CKR_ARGUMENTS_BAD            NULL pointers PKCS #11 does not allow
 *
 * Locking: PKCS #11 v2.40 §5.4 (C_Initialize) lets an application ask for OS locking
 * (CKF_OS_LOCKING_OK), for no locking (no flag, no callbacks: single-threaded), or for its
 * own mutex callbacks. We always use pthreads internally, which is allowed in the first two
 * cases; the module also runs an I/O thread whose locks an application's callbacks could
 * not serve, so callbacks without CKF_OS_LOCKING_OK get CKR_CANT_LOCK, as §5.4 permits
 * ("If the library is unable to do this, it should return CKR_CANT_LOCK").
 */
#include "client/cli_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cv; /* a connect or C_Initialize finished */
	int initialized;
	int busy;  /* C_Initialize is loading/connecting, or a reconnect is running */
	pid_t pid; /* the process that ran C_Initialize */
	struct cfg_client *cfg;
	struct cli_target target;
	struct cli_conn *conn; /* the current connection (one reference), or NULL */
	int reconnect_failing; /* the last reconnect failed and said so on stderr */
} M = {
        .lock = PTHREAD_MUTEX_INITIALIZER,
        .cv = PTHREAD_COND_INITIALIZER,
};

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static CK_FUNCTION_LIST function_list;

/* ---- helpers ------------------------------------------------------------------------ */

void
cli_log(const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	memcpy(line, "hsmgate: ", 9);
	va_start(ap, fmt);
	n = vsnprintf(line + 9, sizeof(line) - 10, fmt, ap);
	va_end(ap);
	if (n < 0) {
		return;
	}
	n = 9 + (n > (int)sizeof(line) - 11 ? (int)sizeof(line) - 11 : n);
	line[n++] = '\n';
	/* One write, so that lines of concurrent threads do not interleave. */
	(void)!write(STDERR_FILENO, line, (size_t)n);
}

CK_RV
cli_err_to_rv(int err)
{
	switch (err) {
	case CLI_OK:
		return CKR_OK;
	case CLI_ERR_NOMEM:
		return CKR_HOST_MEMORY;
	case CLI_ERR_CONFIG:
		return CKR_GENERAL_ERROR;
	case CLI_ERR_CONNECT:
	case CLI_ERR_PROTO:
	case CLI_ERR_TIMEOUT:
	case CLI_ERR_GATEWAY:
		return CKR_DEVICE_ERROR;
	case CLI_ERR_AUTH:
		return CKR_FUNCTION_FAILED;
	case CLI_ERR_REMOVED:
		return CKR_DEVICE_REMOVED;
	case CLI_ERR_FINALIZED:
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	case CLI_ERR_TOO_LARGE:
		return CKR_DATA_LEN_RANGE;
	case CLI_ERR_SYS:
	default:
		return CKR_GENERAL_ERROR;
	}
}

/* fork(): the child gets a consistent copy of M (the lock is held across the fork) and
 * forgets the parent's connection without touching it; it must call C_Initialize. */
static void
atfork_prepare(void)
{
	pthread_mutex_lock(&M.lock);
}

static void
atfork_parent(void)
{
	pthread_mutex_unlock(&M.lock);
}

static void
atfork_child(void)
{
	pthread_mutex_unlock(&M.lock);
}

static void
atfork_register(void)
{
	(void)pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

/* In a child of the process that initialised the module: forget the parent's state
 * without freeing anything that OpenSSL or another (now absent) thread may hold. */
static void
module_abandon_inlock(void)
{
	if (M.conn != NULL) {
		cli_conn_abandon(M.conn);
	}
	M.conn = NULL;
	M.cfg = NULL;                           /* leaked in the child on purpose */
	memset(&M.target, 0, sizeof(M.target)); /* its SSL_CTX too */
	M.initialized = 0;
	M.busy = 0;
	M.reconnect_failing = 0;
	M.pid = getpid();
}

/* Set by C_Initialize (under M.busy) for module_load: the application forbids us threads. */
static int init_threadless;

static CK_RV
init_args_check(CK_VOID_PTR p)
{
	CK_C_INITIALIZE_ARGS *a = p;
	int n;

	if (a == NULL) {
		return CKR_OK;
	}
	/* v2.40 §5.4: "pReserved: reserved for future use. Should be NULL_PTR". */
	if (a->pReserved != NULL) {
		return CKR_ARGUMENTS_BAD;
	}
	n = (a->CreateMutex != NULL) + (a->DestroyMutex != NULL) + (a->LockMutex != NULL) +
	    (a->UnlockMutex != NULL);
	/* "either all four or none of them must be supplied" */
	if (n != 0 && n != 4) {
		return CKR_ARGUMENTS_BAD;
	}
	if (n == 4 && !(a->flags & CKF_OS_LOCKING_OK)) {
		return CKR_CANT_LOCK;
	}
	return CKR_OK;
}

static CK_RV
module_load(struct cfg_client **cfgp, struct cli_target *t, struct cli_conn **connp)
{
	char err[1024];
	const char *path;
	int r;

	*cfgp = NULL;
	*connp = NULL;
	/* secure_getenv: a set-uid program must not be pointed at a file of the caller's. */
	if ((path = secure_getenv("HSMGATE_CONF")) == NULL || path[0] == '\0') {
		cli_log("HSMGATE_CONF is not set: it must name the client configuration file "
		        "(YAML: gateway, ca, and cert+key or api_key)");
		return CKR_GENERAL_ERROR;
	}
	if ((r = cfg_client_load(path, cfgp, err, sizeof(err))) != 0) {
		/* The loader's message names the file, line and key; say where it came from. */
		if (strstr(err, path) != NULL) {
			cli_log("HSMGATE_CONF: %s", err);
		} else {
			cli_log("HSMGATE_CONF=%s: %s", path, err);
		}
		return r == CFG_ERR_NOMEM ? CKR_HOST_MEMORY : CKR_GENERAL_ERROR;
	}
	if ((r = cli_target_init(t, *cfgp, err, sizeof(err))) == 0) {
		t->threadless = init_threadless;
	}
	if (r != 0) {
		cli_log("%s", err);
		cfg_client_free(*cfgp);
		*cfgp = NULL;
		return cli_err_to_rv(r);
	}
	if ((r = cli_conn_open(t, connp, err, sizeof(err))) != 0) {
		cli_log("%s", err);
		cli_target_fini(t);
		cfg_client_free(*cfgp);
		*cfgp = NULL;
		/* A link failure and a config problem found on connect both mean the device
		 * cannot be used; authentication keeps its own code. */
		return r == CLI_ERR_CONFIG ? CKR_GENERAL_ERROR : cli_err_to_rv(r);
	}
	return CKR_OK;
}

/* ---- connection for a call ----------------------------------------------------------- */

CK_RV
cli_module_conn_get(int session_call, struct cli_conn **out, uint32_t *timeout_ms)
{
	struct cli_conn *old, *conn = NULL;
	char err[1024];
	int r;

	*out = NULL;
	pthread_mutex_lock(&M.lock);
	for (;;) {
		if (!M.initialized || M.pid != getpid()) {
			pthread_mutex_unlock(&M.lock);
			return CKR_CRYPTOKI_NOT_INITIALIZED;
		}
		if (M.conn != NULL && cli_conn_alive(M.conn)) {
			cli_conn_ref(M.conn);
			*out = M.conn;
			*timeout_ms = M.cfg->timeout_ms;
			pthread_mutex_unlock(&M.lock);
			return CKR_OK;
		}
		/* Sessions die with their connection: no new one can make them valid. */
		if (session_call) {
			pthread_mutex_unlock(&M.lock);
			return CKR_SESSION_HANDLE_INVALID;
		}
		if (!M.busy) {
			break;
		}
		pthread_cond_wait(&M.cv, &M.lock);
	}
	/* Reconnect outside the lock (it takes up to connect_timeout_ms); `busy` keeps
	 * C_Finalize and other callers waiting, so M.target stays valid. */
	M.busy = 1;
	old = M.conn;
	M.conn = NULL;
	pthread_mutex_unlock(&M.lock);
	if (old != NULL) {
		cli_conn_close(old, CLI_ERR_REMOVED);
		cli_conn_unref(old);
	}
	r = cli_conn_open(&M.target, &conn, err, sizeof(err));
	pthread_mutex_lock(&M.lock);
	M.busy = 0;
	pthread_cond_broadcast(&M.cv);
	if (r != 0) {
		/* Say it once per outage, not once per call. */
		if (!M.reconnect_failing) {
			cli_log("%s", err);
		}
		M.reconnect_failing = 1;
		pthread_mutex_unlock(&M.lock);
		return cli_err_to_rv(r == CLI_ERR_CONFIG ? CLI_ERR_CONNECT : r);
	}
	M.reconnect_failing = 0;
	M.conn = conn; /* the module's reference */
	cli_conn_ref(conn);
	*out = conn;
	*timeout_ms = M.cfg->timeout_ms;
	pthread_mutex_unlock(&M.lock);
	return CKR_OK;
}

/* ---- the local functions ------------------------------------------------------------ */

CLI_EXPORT CK_RV
C_Initialize(CK_VOID_PTR pInitArgs)
{
	struct cfg_client *cfg = NULL;
	struct cli_target t;
	struct cli_conn *conn = NULL;
	CK_RV rv;

	if ((rv = init_args_check(pInitArgs)) != CKR_OK) {
		return rv;
	}
	pthread_once(&atfork_once, atfork_register);
	pthread_mutex_lock(&M.lock);
	if (M.pid != getpid()) {
		module_abandon_inlock();
	}
	/* Another thread's C_Initialize (or a reconnect) is under way: wait for its outcome, so
	 * that CKR_CRYPTOKI_ALREADY_INITIALIZED is only said once it is true — a caller told so
	 * must be able to use the module at once. If that attempt failed, this one goes on. */
	while (M.busy) {
		pthread_cond_wait(&M.cv, &M.lock);
	}
	if (M.initialized) {
		pthread_mutex_unlock(&M.lock);
		return CKR_CRYPTOKI_ALREADY_INITIALIZED;
	}
	M.busy = 1;
	pthread_mutex_unlock(&M.lock);

	memset(&t, 0, sizeof(t));
	init_threadless = pInitArgs != NULL && (((CK_C_INITIALIZE_ARGS *)pInitArgs)->flags &
	                                        CKF_LIBRARY_CANT_CREATE_OS_THREADS) != 0;
	rv = module_load(&cfg, &t, &conn);

	pthread_mutex_lock(&M.lock);
	if (rv == CKR_OK) {
		M.cfg = cfg;
		M.target = t;
		/* The target moved: the connection only used it during its handshake. */
		M.target.cfg = cfg;
		M.conn = conn;
		M.initialized = 1;
		M.reconnect_failing = 0;
	}
	M.busy = 0;
	pthread_cond_broadcast(&M.cv);
	pthread_mutex_unlock(&M.lock);
	return rv;
}

CLI_EXPORT CK_RV
C_Finalize(CK_VOID_PTR pReserved)
{
	struct cfg_client *cfg;
	struct cli_target t;
	struct cli_conn *conn;

	if (pReserved != NULL) {
		return CKR_ARGUMENTS_BAD;
	}
	pthread_mutex_lock(&M.lock);
	if (!M.initialized || M.pid != getpid()) {
		pthread_mutex_unlock(&M.lock);
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	}
	/* A reconnect in progress uses M.target: let it finish. */
	while (M.busy) {
		pthread_cond_wait(&M.cv, &M.lock);
	}
	if (!M.initialized) {
		pthread_mutex_unlock(&M.lock);
		return CKR_CRYPTOKI_NOT_INITIALIZED; /* another thread finalized meanwhile */
	}
	M.initialized = 0;
	conn = M.conn;
	M.conn = NULL;
	cfg = M.cfg;
	M.cfg = NULL;
	t = M.target;
	memset(&M.target, 0, sizeof(M.target));
	pthread_mutex_unlock(&M.lock);

	/* Calls in flight in other threads return CKR_CRYPTOKI_NOT_INITIALIZED. */
	if (conn != NULL) {
		cli_conn_close(conn, CLI_ERR_FINALIZED);
		cli_conn_unref(conn);
	}
	cli_target_fini(&t);
	cfg_client_free(cfg);
	return CKR_OK;
}

static void
pad_copy(CK_UTF8CHAR *dst, size_t n, const char *src)
{
	size_t len = strlen(src);

	memset(dst, ' ', n);
	memcpy(dst, src, len < n ? len : n);
}

CLI_EXPORT CK_RV
C_GetInfo(CK_INFO_PTR pInfo)
{
	int ok;

	pthread_mutex_lock(&M.lock);
	ok = M.initialized && M.pid == getpid();
	pthread_mutex_unlock(&M.lock);
	if (!ok) {
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	}
	if (pInfo == NULL) {
		return CKR_ARGUMENTS_BAD;
	}
	memset(pInfo, 0, sizeof(*pInfo));
	pInfo->cryptokiVersion.major = 2;
	pInfo->cryptokiVersion.minor = 40;
	pad_copy(pInfo->manufacturerID, sizeof(pInfo->manufacturerID), "hsmgate");
	pInfo->flags = 0;
	pad_copy(pInfo->libraryDescription, sizeof(pInfo->libraryDescription),
	         "hsmgate remote PKCS #11");
	pInfo->libraryVersion.major = CLI_VERSION_MAJOR;
	pInfo->libraryVersion.minor = CLI_VERSION_MINOR;
	return CKR_OK;
}

CLI_EXPORT CK_RV
C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR ppFunctionList)
{
	if (ppFunctionList == NULL) {
		return CKR_ARGUMENTS_BAD;
	}
	*ppFunctionList = &function_list;
	return CKR_OK;
}

static CK_FUNCTION_LIST function_list = {
        .version = {2, 40},
        .C_Initialize = C_Initialize,
        .C_Finalize = C_Finalize,
        .C_GetInfo = C_GetInfo,
        .C_GetFunctionList = C_GetFunctionList,
        .C_GetSlotList = C_GetSlotList,
        .C_GetSlotInfo = C_GetSlotInfo,
        .C_GetTokenInfo = C_GetTokenInfo,
        .C_GetMechanismList = C_GetMechanismList,
        .C_GetMechanismInfo = C_GetMechanismInfo,
        .C_InitToken = C_InitToken,
        .C_InitPIN = C_InitPIN,
        .C_SetPIN = C_SetPIN,
        .C_OpenSession = C_OpenSession,
        .C_CloseSession = C_CloseSession,
        .C_CloseAllSessions = C_CloseAllSessions,
        .C_GetSessionInfo = C_GetSessionInfo,
        .C_GetOperationState = C_GetOperationState,
        .C_SetOperationState = C_SetOperationState,
        .C_Login = C_Login,
        .C_Logout = C_Logout,
        .C_CreateObject = C_CreateObject,
        .C_CopyObject = C_CopyObject,
        .C_DestroyObject = C_DestroyObject,
        .C_GetObjectSize = C_GetObjectSize,
        .C_GetAttributeValue = C_GetAttributeValue,
        .C_SetAttributeValue = C_SetAttributeValue,
        .C_FindObjectsInit = C_FindObjectsInit,
        .C_FindObjects = C_FindObjects,
        .C_FindObjectsFinal = C_FindObjectsFinal,
        .C_EncryptInit = C_EncryptInit,
        .C_Encrypt = C_Encrypt,
        .C_EncryptUpdate = C_EncryptUpdate,
        .C_EncryptFinal = C_EncryptFinal,
        .C_DecryptInit = C_DecryptInit,
        .C_Decrypt = C_Decrypt,
        .C_DecryptUpdate = C_DecryptUpdate,
        .C_DecryptFinal = C_DecryptFinal,
        .C_DigestInit = C_DigestInit,
        .C_Digest = C_Digest,
        .C_DigestUpdate = C_DigestUpdate,
        .C_DigestKey = C_DigestKey,
        .C_DigestFinal = C_DigestFinal,
        .C_SignInit = C_SignInit,
        .C_Sign = C_Sign,
        .C_SignUpdate = C_SignUpdate,
        .C_SignFinal = C_SignFinal,
        .C_SignRecoverInit = C_SignRecoverInit,
        .C_SignRecover = C_SignRecover,
        .C_VerifyInit = C_VerifyInit,
        .C_Verify = C_Verify,
        .C_VerifyUpdate = C_VerifyUpdate,
        .C_VerifyFinal = C_VerifyFinal,
        .C_VerifyRecoverInit = C_VerifyRecoverInit,
        .C_VerifyRecover = C_VerifyRecover,
        .C_DigestEncryptUpdate = C_DigestEncryptUpdate,
        .C_DecryptDigestUpdate = C_DecryptDigestUpdate,
        .C_SignEncryptUpdate = C_SignEncryptUpdate,
        .C_DecryptVerifyUpdate = C_DecryptVerifyUpdate,
        .C_GenerateKey = C_GenerateKey,
        .C_GenerateKeyPair = C_GenerateKeyPair,
        .C_WrapKey = C_WrapKey,
        .C_UnwrapKey = C_UnwrapKey,
        .C_DeriveKey = C_DeriveKey,
        .C_SeedRandom = C_SeedRandom,
        .C_GenerateRandom = C_GenerateRandom,
        .C_GetFunctionStatus = C_GetFunctionStatus,
        .C_CancelFunction = C_CancelFunction,
        .C_WaitForSlotEvent = C_WaitForSlotEvent,
};
