/*
 * tests/e2e/latch_module.c — a PKCS #11 module for tests that wraps a real one and can hold
 * its multi-part calls on a latch, so that a test can prove, without any timing assertion,
 * that other calls are served while a vendor call is still running (tests/e2e/p11_latch.c).
 *
 * Built as $(BUILD)/tests/e2e/liblatch-pkcs11.so. Environment (read by C_GetFunctionList):
 *   HSMGATE_LATCH_MODULE  the real module (dlopen), e.g. SoftHSMv2; required
 *   HSMGATE_LATCH_DIR     the latch directory; unset: every call is forwarded unchanged
 *
 * C_DigestUpdate, C_EncryptUpdate and C_SignUpdate: while the file "$HSMGATE_LATCH_DIR/hold"
 * exists, the call creates "$HSMGATE_LATCH_DIR/entered" (atomically: written aside, then
 * renamed; it holds the function's name), waits until "hold" is gone (checked every 5 ms, at
 * most 120 s, so that a failed test cannot leave a worker stuck), then calls the real
 * function.
 *
 * C_DigestInit: held the same way once, by the first call that finds the file
 * "$HSMGATE_LATCH_DIR/hold-init" (it renames it "held-init", so no other C_DigestInit is
 * held), until "held-init" is gone. C_FindObjectsInit the same with "hold-find" and
 * "held-find". Every other function is the real module's own.
 */
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <p11-kit/pkcs11.h>

#define POLL_NS   5000000L /* 5 ms */
#define MAX_POLLS 24000    /* 120 s */

static CK_FUNCTION_LIST real, wrapped;
static CK_RV load_rv = CKR_GENERAL_ERROR;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static unsigned long n_entered; /* names each "entered" written aside */

/* Holds the calling thread while the file `name` exists in the latch directory; with
 * `from`, only if it can rename `from` to `name` first (one call is held). */
static void
latch_on(const char *fn, const char *name, const char *from)
{
	const char *dir = getenv("HSMGATE_LATCH_DIR");
	char hold[PATH_MAX], entered[PATH_MAX], tmp[PATH_MAX];
	struct timespec ts = {0, POLL_NS};
	FILE *f;
	int i;

	if (dir == NULL || snprintf(hold, sizeof(hold), "%s/%s", dir, name) >= (int)sizeof(hold)) {
		return;
	}
	if (from != NULL) {
		snprintf(tmp, sizeof(tmp), "%s/%s", dir, from);
		if (rename(tmp, hold) != 0) {
			return; /* not asked for, or another call took it */
		}
	} else if (access(hold, F_OK) != 0) {
		return;
	}
	snprintf(entered, sizeof(entered), "%s/entered", dir);
	snprintf(tmp, sizeof(tmp), "%s/entered.%ld.%lu", dir, (long)getpid(),
	         __atomic_fetch_add(&n_entered, 1, __ATOMIC_RELAXED));
	if ((f = fopen(tmp, "w")) != NULL) {
		fprintf(f, "%s\n", fn);
		if (fclose(f) != 0 || rename(tmp, entered) != 0) {
			unlink(tmp);
		}
	}
	for (i = 0; i < MAX_POLLS && access(hold, F_OK) == 0; i++) {
		nanosleep(&ts, NULL);
	}
}

/* Holds the calling thread while "hold" exists in the latch directory. */
static void
latch(const char *fn)
{
	latch_on(fn, "hold", NULL);
}

static CK_RV
digest_init(CK_SESSION_HANDLE s, CK_MECHANISM_PTR m)
{
	latch_on("C_DigestInit", "held-init", "hold-init");
	return real.C_DigestInit(s, m);
}

static CK_RV
find_objects_init(CK_SESSION_HANDLE s, CK_ATTRIBUTE_PTR t, CK_ULONG n)
{
	latch_on("C_FindObjectsInit", "held-find", "hold-find");
	return real.C_FindObjectsInit(s, t, n);
}

static CK_RV
digest_update(CK_SESSION_HANDLE s, CK_BYTE_PTR part, CK_ULONG len)
{
	latch("C_DigestUpdate");
	return real.C_DigestUpdate(s, part, len);
}

static CK_RV
encrypt_update(CK_SESSION_HANDLE s, CK_BYTE_PTR part, CK_ULONG len, CK_BYTE_PTR out,
               CK_ULONG_PTR outlen)
{
	latch("C_EncryptUpdate");
	return real.C_EncryptUpdate(s, part, len, out, outlen);
}

static CK_RV
sign_update(CK_SESSION_HANDLE s, CK_BYTE_PTR part, CK_ULONG len)
{
	latch("C_SignUpdate");
	return real.C_SignUpdate(s, part, len);
}

static void
load(void)
{
	const char *path = getenv("HSMGATE_LATCH_MODULE");
	CK_C_GetFunctionList get;
	CK_FUNCTION_LIST_PTR f;
	void *h;

	/* Never closed: the module stays loaded for the life of the process. */
	if (path == NULL || (h = dlopen(path, RTLD_NOW | RTLD_LOCAL)) == NULL ||
	    (get = (CK_C_GetFunctionList)dlsym(h, "C_GetFunctionList")) == NULL) {
		fprintf(stderr, "latch_module: cannot load HSMGATE_LATCH_MODULE=%s\n",
		        path != NULL ? path : "(unset)");
		return;
	}
	if ((load_rv = get(&f)) != CKR_OK || f == NULL) {
		load_rv = load_rv != CKR_OK ? load_rv : CKR_GENERAL_ERROR;
		return;
	}
	real = *f;
	wrapped = real;
	wrapped.C_GetFunctionList = C_GetFunctionList;
	wrapped.C_DigestInit = digest_init;
	wrapped.C_FindObjectsInit = find_objects_init;
	wrapped.C_DigestUpdate = digest_update;
	wrapped.C_EncryptUpdate = encrypt_update;
	wrapped.C_SignUpdate = sign_update;
}

__attribute__((visibility("default"))) CK_RV
C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR list)
{
	if (list == NULL) {
		return CKR_ARGUMENTS_BAD;
	}
	pthread_once(&once, load);
	if (load_rv != CKR_OK) {
		return load_rv;
	}
	*list = &wrapped;
	return CKR_OK;
}
