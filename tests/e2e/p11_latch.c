/*
 * tests/e2e/p11_latch.c — proves that a partition serves other calls while one of its
 * vendor's multi-part calls is still running, with a latch rather than timing: the partition's
 * module is tests/e2e/latch_module.c, which holds C_DigestUpdate in the vendor while the file
 * "hold" exists in the latch directory, and says so by creating "entered".
 *
 * usage: p11_latch --module SO --slot N --latch-dir D [--pin-file F] [--wait-release]
 *                  [--hold-init | --hold-find]
 *        p11_latch --module SO --slot N --latch-dir D --no-block
 *
 * Default: the main thread opens two sessions (and logs in with --pin-file), creates "hold"
 * and starts thread A, which opens its own session and calls C_DigestInit (SHA-256),
 * C_DigestUpdate (held in the vendor) and C_DigestFinal. Once "entered" exists (at most
 * 30 s), two probes run on the two sessions, each in its own thread: C_GenerateRandom, and
 * C_DigestInit + C_Digest checked against OpenSSL. They have 15 s together; a probe that
 * returns the right result while A is still inside C_DigestUpdate overlapped it. Then (with
 * --wait-release: once the file "release" exists, at most 30 s, so that another process can
 * run its probes meanwhile) "hold" is removed, everything is joined, and A's digest is
 * checked against OpenSSL's.
 *
 * --hold-init: thread A is held in C_DigestInit instead (the latch file is "hold-init",
 * which the module renames "held-init" when it holds that one call), so that the probes show
 * an init waiting in the vendor holds up no other session. --hold-find: thread A searches
 * instead (C_FindObjectsInit, held the same way with "hold-find", then C_FindObjects and
 * C_FindObjectsFinal), and the last line is "find: ok" or "find: FAILED (why)".
 *
 * --no-block: only the probes, for another process (another client connection) while a
 * default-mode run holds the latch: "hold" and "entered" must exist before, each probe opens
 * its own session, and "hold" must still exist once both have returned.
 *
 * Output: one line per probe ("random: ok", "digest-oneshot: BLOCKED", ...), then
 * "overlap: ok" or "overlap: BLOCKED" (a probe did not return in time) or "overlap: FAILED
 * (why)", and in the default mode "digest: ok" or "digest: FAILED (why)". Exit status 0 when
 * every line is ok, 1 otherwise, 2 on set-up errors. Every wait is bounded, and "hold" is
 * removed on every path that created it.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <p11-kit/pkcs11.h>

#include "tests/lib/pin.h"

#define PROBE_MS   15000 /* the probes' bound, together */
#define ENTER_MS   30000 /* A reaching the latch */
#define RELEASE_MS 30000 /* --wait-release */
#define JOIN_MS    60000 /* every thread, once "hold" is gone */

static CK_FUNCTION_LIST_PTR p11;
static CK_SLOT_ID slot;
static const char *latch_dir;
static int hold_init; /* --hold-init: A is held in C_DigestInit, not C_DigestUpdate */
static int hold_find; /* --hold-find: A searches, held in C_FindObjectsInit */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv;

struct probe {
	const char *name;
	void *(*run)(void *);
	CK_SESSION_HANDLE s; /* 0: the probe opens its own */
	pthread_t t;
	const char *in;  /* the call it is in, or was in last; under mu */
	int done;        /* under mu */
	const char *why; /* NULL: the result is right */
	CK_RV rv;
};

/* Thread A: the held multi-part digest. */
static struct {
	pthread_t t;
	int inside; /* in C_DigestUpdate; under mu */
	int done;
	const char *why;
	CK_RV rv;
} a;

static unsigned char a_data[8192];

static char *
latch_path(const char *name)
{
	static char buf[4][PATH_MAX];
	static unsigned n;
	char *p = buf[n++ % 4];

	snprintf(p, PATH_MAX, "%s/%s", latch_dir, name);
	return p;
}

static int
exists(const char *name)
{
	return access(latch_path(name), F_OK) == 0;
}

static void
sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

static int
sha256_is(const unsigned char *data, size_t len, const unsigned char *md, CK_ULONG mdlen)
{
	unsigned char want[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	return EVP_Digest(data, len, want, &n, EVP_sha256(), NULL) == 1 && mdlen == n &&
	       memcmp(want, md, n) == 0;
}

static CK_RV
open_session(CK_SESSION_HANDLE *s)
{
	return p11->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, s);
}

static void
set_inside(int v)
{
	pthread_mutex_lock(&mu);
	a.inside = v;
	pthread_mutex_unlock(&mu);
}

/* Thread A with --hold-find: a search of every object, held in C_FindObjectsInit. */
static CK_RV
run_a_find(CK_SESSION_HANDLE s)
{
	CK_OBJECT_HANDLE found[16];
	CK_ULONG n = 0;
	CK_RV rv;

	set_inside(1);
	rv = p11->C_FindObjectsInit(s, NULL, 0);
	set_inside(0);
	if (rv != CKR_OK) {
		a.why = "C_FindObjectsInit";
	} else if ((rv = p11->C_FindObjects(s, found, 16, &n)) != CKR_OK) {
		a.why = "C_FindObjects";
	} else if ((rv = p11->C_FindObjectsFinal(s)) != CKR_OK) {
		a.why = "C_FindObjectsFinal";
	}
	return rv;
}

static void *
run_a(void *arg)
{
	CK_MECHANISM m = {CKM_SHA256, NULL, 0};
	CK_BYTE md[64];
	CK_ULONG mdlen = sizeof(md);
	CK_SESSION_HANDLE s;
	CK_RV rv;

	(void)arg;
	if ((rv = open_session(&s)) != CKR_OK) {
		a.why = "C_OpenSession";
		goto out;
	}
	if (hold_find) {
		rv = run_a_find(s);
		goto out;
	}
	set_inside(hold_init);
	rv = p11->C_DigestInit(s, &m);
	set_inside(0);
	if (rv != CKR_OK) {
		a.why = "C_DigestInit";
	} else {
		set_inside(!hold_init);
		rv = p11->C_DigestUpdate(s, a_data, sizeof(a_data));
		set_inside(0);
		if (rv != CKR_OK) {
			a.why = "C_DigestUpdate";
		} else if ((rv = p11->C_DigestFinal(s, md, &mdlen)) != CKR_OK) {
			a.why = "C_DigestFinal";
		} else if (!sha256_is(a_data, sizeof(a_data), md, mdlen)) {
			a.why = "not OpenSSL's SHA-256";
		}
	}
out:
	a.rv = rv;
	pthread_mutex_lock(&mu);
	a.done = 1;
	pthread_mutex_unlock(&mu);
	return NULL;
}

/* Notes the call a probe is about to make: a probe that does not return names it. */
static int
in(struct probe *p, const char *call)
{
	pthread_mutex_lock(&mu);
	p->in = call;
	pthread_mutex_unlock(&mu);
	return 1;
}

static void
probe_done(struct probe *p, const char *why, CK_RV rv)
{
	pthread_mutex_lock(&mu);
	p->why = why;
	p->rv = rv;
	p->done = 1;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
}

static void *
probe_random(void *arg)
{
	struct probe *p = arg;
	CK_BYTE buf[32] = {0}, zero[32] = {0};
	const char *why = NULL;
	CK_RV rv = CKR_OK;

	if (p->s == 0 && in(p, "C_OpenSession") && (rv = open_session(&p->s)) != CKR_OK) {
		why = "C_OpenSession";
	} else if (in(p, "C_GenerateRandom") &&
	           (rv = p11->C_GenerateRandom(p->s, buf, sizeof(buf))) != CKR_OK) {
		why = "C_GenerateRandom";
	} else if (memcmp(buf, zero, sizeof(buf)) == 0) {
		why = "all zero";
	}
	probe_done(p, why, rv);
	return NULL;
}

static void *
probe_digest(void *arg)
{
	struct probe *p = arg;
	static CK_BYTE data[] = "a one-shot digest while a multi-part one is held";
	CK_MECHANISM m = {CKM_SHA256, NULL, 0};
	CK_BYTE md[64];
	CK_ULONG mdlen = sizeof(md);
	const char *why = NULL;
	CK_RV rv = CKR_OK;

	if (p->s == 0 && in(p, "C_OpenSession") && (rv = open_session(&p->s)) != CKR_OK) {
		why = "C_OpenSession";
	} else if (in(p, "C_DigestInit") && (rv = p11->C_DigestInit(p->s, &m)) != CKR_OK) {
		why = "C_DigestInit";
	} else if (in(p, "C_Digest") &&
	           (rv = p11->C_Digest(p->s, data, sizeof(data), md, &mdlen)) != CKR_OK) {
		why = "C_Digest";
	} else if (!sha256_is(data, sizeof(data), md, mdlen)) {
		why = "not OpenSSL's SHA-256";
	}
	probe_done(p, why, rv);
	return NULL;
}

static struct timespec
deadline(long ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

/* Runs the probes, at most PROBE_MS together; prints a line each. 1: all returned right. */
static int
run_probes(struct probe *pr, int n, int *blocked)
{
	struct timespec end = deadline(PROBE_MS);
	int i, all = 1, ok = 1;

	for (i = 0; i < n; i++) {
		if (pthread_create(&pr[i].t, NULL, pr[i].run, &pr[i]) != 0) {
			fprintf(stderr, "p11_latch: pthread_create failed\n");
			exit(2);
		}
	}
	pthread_mutex_lock(&mu);
	for (;;) {
		for (all = 1, i = 0; i < n; i++) {
			all = all && pr[i].done;
		}
		if (all || pthread_cond_timedwait(&cv, &mu, &end) == ETIMEDOUT) {
			break;
		}
	}
	for (i = 0; i < n; i++) {
		if (!pr[i].done) {
			printf("%s: BLOCKED (no answer to %s within %d s)\n", pr[i].name,
			       pr[i].in != NULL ? pr[i].in : "its first call", PROBE_MS / 1000);
			ok = 0;
		} else if (pr[i].why != NULL) {
			printf("%s: FAILED (%s, rv=0x%lx)\n", pr[i].name, pr[i].why, pr[i].rv);
			ok = 0;
		} else {
			printf("%s: ok\n", pr[i].name);
		}
	}
	pthread_mutex_unlock(&mu);
	*blocked = !all;
	return ok;
}

/* Joins a thread, or gives up after JOIN_MS: it is stuck in the module, which cannot be
 * finalised under it, so the process ends here. */
static void
join(pthread_t t, const char *what)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += JOIN_MS / 1000;
	if (pthread_timedjoin_np(t, NULL, &ts) != 0) {
		printf("%s: still in the module %d s after the latch opened\n", what,
		       JOIN_MS / 1000);
		fflush(stdout);
		_exit(1);
	}
}

/* The probes from another process, while a default-mode run holds the latch. */
static int
no_block(void)
{
	struct probe pr[2] = {{.name = "random", .run = probe_random},
	                      {.name = "digest-oneshot", .run = probe_digest}};
	int blocked, ok;

	if (!exists("hold") || !exists("entered")) {
		printf("overlap: FAILED (the latch is not held: no hold or entered in %s)\n",
		       latch_dir);
		return 2;
	}
	ok = run_probes(pr, 2, &blocked);
	if (blocked) {
		printf("overlap: BLOCKED\n");
		fflush(stdout);
		_exit(1); /* a probe is still in the module */
	}
	if (ok && !exists("hold")) {
		printf("overlap: FAILED (the latch opened before the probes returned)\n");
		ok = 0;
	} else if (ok) {
		printf("overlap: ok\n");
	} else {
		printf("overlap: FAILED (a probe's result is wrong)\n");
	}
	join(pr[0].t, pr[0].name);
	join(pr[1].t, pr[1].name);
	p11->C_Finalize(NULL);
	return ok ? 0 : 1;
}

/* Waits up to ms for the file `name` in the latch directory (0: not there), and with
 * until_a_done no longer than thread A runs. */
static int
wait_file(const char *name, long ms, int until_a_done)
{
	long i;
	int done;

	for (i = 0; i < ms / 5; i++) {
		if (exists(name)) {
			return 1;
		}
		pthread_mutex_lock(&mu);
		done = a.done;
		pthread_mutex_unlock(&mu);
		if (done && until_a_done) {
			return 0;
		}
		sleep_ms(5);
	}
	return exists(name);
}

int
main(int argc, char **argv)
{
	const char *module = NULL, *pin_file = NULL;
	struct probe pr[2] = {{.name = "random", .run = probe_random},
	                      {.name = "digest-oneshot", .run = probe_digest}};
	int k, nb = 0, wait_release = 0, overlap = 0, probed = 0, blocked = 0, inside, hold_fd;
	const char *hold_file, *held;
	pthread_condattr_t ca;
	CK_C_GetFunctionList get;
	CK_C_INITIALIZE_ARGS args;
	CK_RV rv;
	char pin[256];
	void *h;
	size_t i;

	for (k = 1; k < argc; k++) {
		if (strcmp(argv[k], "--module") == 0 && k + 1 < argc) {
			module = argv[++k];
		} else if (strcmp(argv[k], "--slot") == 0 && k + 1 < argc) {
			slot = strtoul(argv[++k], NULL, 10);
		} else if (strcmp(argv[k], "--latch-dir") == 0 && k + 1 < argc) {
			latch_dir = argv[++k];
		} else if (strcmp(argv[k], "--pin-file") == 0 && k + 1 < argc) {
			pin_file = argv[++k];
		} else if (strcmp(argv[k], "--wait-release") == 0) {
			wait_release = 1;
		} else if (strcmp(argv[k], "--hold-init") == 0) {
			hold_init = 1;
		} else if (strcmp(argv[k], "--hold-find") == 0) {
			hold_find = 1;
		} else if (strcmp(argv[k], "--no-block") == 0) {
			nb = 1;
		} else {
			module = NULL;
			break;
		}
	}
	if (module == NULL || latch_dir == NULL ||
	    (pin_file != NULL && test_read_pin(pin_file, pin, sizeof(pin)) != 0)) {
		fprintf(stderr,
		        "usage: p11_latch --module SO --slot N --latch-dir D [--pin-file F] "
		        "[--wait-release] [--hold-init | --hold-find] | --no-block\n");
		return 2;
	}
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&cv, &ca);
	if ((h = dlopen(module, RTLD_NOW)) == NULL ||
	    (get = (CK_C_GetFunctionList)dlsym(h, "C_GetFunctionList")) == NULL ||
	    get(&p11) != CKR_OK) {
		fprintf(stderr, "p11_latch: cannot load %s\n", module);
		return 2;
	}
	memset(&args, 0, sizeof(args));
	args.flags = CKF_OS_LOCKING_OK;
	if ((rv = p11->C_Initialize(&args)) != CKR_OK) {
		fprintf(stderr, "p11_latch: C_Initialize: rv=0x%lx\n", rv);
		return 2;
	}
	if (nb) {
		return no_block();
	}
	hold_file = hold_find ? "hold-find" : hold_init ? "hold-init" : "hold";
	held = hold_find ? "C_FindObjectsInit" : hold_init ? "C_DigestInit" : "C_DigestUpdate";

	/* Everything the probes need before the latch closes: a call that waits for A must be
	 * one of the probes. */
	for (i = 0; i < 2; i++) {
		if ((rv = open_session(&pr[i].s)) != CKR_OK) {
			fprintf(stderr, "p11_latch: C_OpenSession: rv=0x%lx\n", rv);
			return 2;
		}
	}
	if (pin_file != NULL &&
	    (rv = p11->C_Login(pr[0].s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin))) != CKR_OK) {
		fprintf(stderr, "p11_latch: C_Login: rv=0x%lx\n", rv);
		return 2;
	}
	for (i = 0; i < sizeof(a_data); i++) {
		a_data[i] = (unsigned char)(i * 7 + (i >> 8));
	}
	unlink(latch_path("entered"));
	unlink(latch_path("release"));
	unlink(latch_path("held-init"));
	unlink(latch_path("held-find"));
	if ((hold_fd = open(latch_path(hold_file), O_WRONLY | O_CREAT | O_TRUNC, 0644)) < 0) {
		fprintf(stderr, "p11_latch: cannot create %s\n", latch_path(hold_file));
		return 2;
	}
	close(hold_fd);
	if (pthread_create(&a.t, NULL, run_a, NULL) != 0) {
		unlink(latch_path(hold_file));
		fprintf(stderr, "p11_latch: pthread_create failed\n");
		return 2;
	}

	if (!wait_file("entered", ENTER_MS, 1)) {
		printf("overlap: FAILED (%s did not reach the latch)\n", held);
	} else {
		int ok = run_probes(pr, 2, &blocked);

		probed = 1;
		pthread_mutex_lock(&mu);
		inside = a.inside;
		pthread_mutex_unlock(&mu);
		if (blocked) {
			printf("overlap: BLOCKED\n");
		} else if (!ok) {
			printf("overlap: FAILED (a probe's result is wrong)\n");
		} else if (!inside) {
			printf("overlap: FAILED (%s returned while held)\n", held);
		} else {
			printf("overlap: ok\n");
			overlap = 1;
		}
	}
	fflush(stdout);
	if (wait_release && !wait_file("release", RELEASE_MS, 0)) {
		printf("release: not within %d s; opening the latch anyway\n", RELEASE_MS / 1000);
	}
	unlink(latch_path(hold_file));
	unlink(latch_path("held-init"));
	unlink(latch_path("held-find"));

	join(a.t, held);
	for (k = 0; k < 2 && probed; k++) {
		join(pr[k].t, pr[k].name);
	}
	if (a.why != NULL) {
		printf("%s: FAILED (%s, rv=0x%lx)\n", hold_find ? "find" : "digest", a.why, a.rv);
	} else {
		printf("%s: ok\n", hold_find ? "find" : "digest");
	}
	p11->C_Finalize(NULL);
	return overlap && a.why == NULL ? 0 : 1;
}
