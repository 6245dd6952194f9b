/*
 * tests/client/test_initrace.c — client/module.c under concurrency: C_Initialize called by
 * several threads at once (the fix of commit 2546f64), a first C_Initialize that fails while
 * others wait for it, C_Initialize after a failed one, and C_Finalize racing calls and other
 * C_Finalize calls (which reaches client/conn.c: the closing connection must not free a
 * frame the I/O thread is writing, nor close the eventfd a caller is about to wake, and in
 * threadless mode must wake the caller driving the connection). Kept apart from
 * test_module.c because its cases run many rounds.
 *
 * What is checked follows PKCS #11 v2.40 §5.1 (return values): "CKR_CRYPTOKI_ALREADY_
 * INITIALIZED: This value can only be returned by C_Initialize. It means that the Cryptoki
 * library has already been initialized (by a previous call to C_Initialize which did not
 * have a matching C_Finalize call)." So of N racing C_Initialize calls exactly one returns
 * CKR_OK and the others CKR_CRYPTOKI_ALREADY_INITIALIZED, and a thread told so can use the
 * module at once; if the call that got there first fails, the library was not initialised
 * by it, and the others must not be told it was.
 *
 * Two ways to race:
 *   free   N threads leave a barrier together, many rounds: whatever order the scheduler
 *          picks, the answers must be the same.
 *   held   the fake gateway holds the first HELLO's answer (fakegw_hold) until every other
 *          thread is asleep inside C_Initialize (/proc/self/task/<tid>/stat), so that they
 *          are certain to arrive while the first one is still connecting. Nothing here is
 *          decided by a clock; the only time limits are hang guards of a minute.
 */
#include "tests/client/fakegw.h"
#include "proto/proto.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "tests/lib/test.h"

#include <limits.h>
#include <signal.h>
#include <time.h>

#define MAX_RACERS 8
/* Free races: rounds per thread count (2, 4, 8). Enough for every order of arrival to
 * come up often on two cores; each round is one TLS connection to the fake gateway. */
#define FREE_ROUNDS 60

static struct fakegw_suite fs;

static int
suite_init(void)
{
	return fakegw_suite_init(&fs, "cli-initrace");
}

static int
suite_cleanup(void)
{
	return fakegw_suite_fini(&fs);
}

/* A held handshake may last as long as the slowest thread takes to fall asleep (seconds
 * under a sanitizer): the connect timeout must not be what ends it. */
#define CONF_EXTRA "connect_timeout_ms: 120000\n"

static void
conf_fake(void)
{
	CU_ASSERT_EQUAL_FATAL(fakegw_write_conf(fs.gw, fs.conf, CONF_EXTRA), 0);
	setenv("HSMGATE_CONF", fs.conf, 1);
}

/* A loopback port nothing listens on: bind, read the port, close. */
static unsigned
closed_port(void)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	unsigned port = 0;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sa, &sl) == 0) {
		port = ntohs(sa.sin_port);
	}
	if (fd >= 0) {
		close(fd);
	}
	return port;
}

static int
count_substr(const char *s, const char *needle)
{
	int n = 0;

	while ((s = strstr(s, needle)) != NULL) {
		n++;
		s += strlen(needle);
	}
	return n;
}

/* ---- racing threads ------------------------------------------------------------------- */

/* How a racer calls C_Initialize (the three forms an application may use, v2.40 §5.4). */
enum init_form {
	FORM_NULL,       /* C_Initialize(NULL) */
	FORM_OS_LOCKING, /* CKF_OS_LOCKING_OK */
	FORM_THREADLESS, /* CKF_LIBRARY_CANT_CREATE_OS_THREADS | CKF_OS_LOCKING_OK */
	FORM_MIXED,      /* racer i uses form i % 3 */
};

struct racer {
	pthread_t t;
	struct race *race;
	enum init_form form;
	pid_t tid;
	CK_RV init_rv;
	CK_RV list_rv; /* C_GetSlotList right after C_Initialize */
	CK_ULONG nslots;
	CK_RV info_rv; /* then C_GetInfo */
	int entered;   /* (race->lock) about to call C_Initialize */
	int done;      /* (race->lock) */
};

struct race {
	pthread_barrier_t go;
	pthread_mutex_t lock;
	unsigned n;
	struct racer r[MAX_RACERS];
};

static void *
racer_main(void *arg)
{
	struct racer *r = arg;
	CK_C_INITIALIZE_ARGS a;
	CK_INFO info;
	CK_ULONG n = 0;

	memset(&a, 0, sizeof(a));
	a.flags = CKF_OS_LOCKING_OK;
	if (r->form == FORM_THREADLESS) {
		a.flags |= CKF_LIBRARY_CANT_CREATE_OS_THREADS;
	}
	r->tid = gettid();
	pthread_barrier_wait(&r->race->go);
	pthread_mutex_lock(&r->race->lock);
	r->entered = 1;
	pthread_mutex_unlock(&r->race->lock);
	r->init_rv = C_Initialize(r->form == FORM_NULL ? NULL : &a);
	r->list_rv = C_GetSlotList(CK_FALSE, NULL, &n);
	r->nslots = n;
	r->info_rv = C_GetInfo(&info);
	pthread_mutex_lock(&r->race->lock);
	r->done = 1;
	pthread_mutex_unlock(&r->race->lock);
	return NULL;
}

/* Starts n racers; they are past the barrier (calling C_Initialize) when this returns. */
static void
race_start(struct race *race, unsigned n, enum init_form form)
{
	unsigned i;

	memset(race, 0, sizeof(*race));
	race->n = n;
	pthread_mutex_init(&race->lock, NULL);
	CU_ASSERT_EQUAL_FATAL(pthread_barrier_init(&race->go, NULL, n + 1), 0);
	for (i = 0; i < n; i++) {
		race->r[i].race = race;
		race->r[i].form = form == FORM_MIXED ? (enum init_form)(i % 3) : form;
		race->r[i].init_rv = race->r[i].list_rv = race->r[i].info_rv = (CK_RV)-1;
		CU_ASSERT_EQUAL_FATAL(pthread_create(&race->r[i].t, NULL, racer_main, &race->r[i]),
		                      0);
	}
	pthread_barrier_wait(&race->go);
}

static void
race_join(struct race *race)
{
	unsigned i;

	for (i = 0; i < race->n; i++) {
		pthread_join(race->r[i].t, NULL);
	}
	pthread_barrier_destroy(&race->go);
	pthread_mutex_destroy(&race->lock);
}

/* The scheduler state of one of our threads ('R', 'S', ...), or 0 if it has gone. */
static char
thread_state(pid_t tid)
{
	char path[64], buf[512], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", (int)tid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		return 0;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0) {
		return 0;
	}
	buf[n] = '\0';
	/* "tid (comm) S ...": comm may hold spaces and parentheses; the state follows the last ')'.
	 */
	if ((p = strrchr(buf, ')')) == NULL || p[1] != ' ') {
		return 0;
	}
	return p[2];
}

/* Waits until every racer has either finished or is asleep after `entered` (blocked in
 * C_Initialize: a racer blocks nowhere else). Returns the number finished; -1 after a
 * minute. */
static int
race_wait_parked(struct race *race)
{
	struct timespec pause = {.tv_sec = 0, .tv_nsec = 1000000L};
	unsigned i, done, asleep, spins;
	int entered, finished;
	char st;

	for (spins = 0; spins < 60000; spins++) {
		done = asleep = 0;
		for (i = 0; i < race->n; i++) {
			pthread_mutex_lock(&race->lock);
			entered = race->r[i].entered;
			finished = race->r[i].done;
			pthread_mutex_unlock(&race->lock);
			st = thread_state(race->r[i].tid);
			done += finished;
			asleep += entered && !finished && (st == 'S' || st == 'D');
		}
		if (done + asleep == race->n) {
			return (int)done;
		}
		nanosleep(&pause, NULL); /* polling a state, not measuring time */
	}
	return -1;
}

/* The answers of a race whose first C_Initialize succeeded: exactly one CKR_OK, all others
 * CKR_CRYPTOKI_ALREADY_INITIALIZED, and every thread's next calls work at once. */
static void
race_check_ok(const struct race *race)
{
	unsigned i, ok = 0, already = 0, other = 0, usable = 0;

	for (i = 0; i < race->n; i++) {
		const struct racer *r = &race->r[i];

		ok += r->init_rv == CKR_OK;
		already += r->init_rv == CKR_CRYPTOKI_ALREADY_INITIALIZED;
		other += r->init_rv != CKR_OK && r->init_rv != CKR_CRYPTOKI_ALREADY_INITIALIZED;
		usable += r->list_rv == CKR_OK && r->nslots == 1 && r->info_rv == CKR_OK;
		if (r->list_rv != CKR_OK || r->info_rv != CKR_OK) {
			fprintf(stderr,
			        "racer %u/%u: C_Initialize 0x%lx, then C_GetSlotList 0x%lx, "
			        "C_GetInfo 0x%lx\n",
			        i, race->n, (unsigned long)r->init_rv, (unsigned long)r->list_rv,
			        (unsigned long)r->info_rv);
		}
	}
	CU_ASSERT_EQUAL(ok, 1);
	CU_ASSERT_EQUAL(already, race->n - 1);
	CU_ASSERT_EQUAL(other, 0);
	CU_ASSERT_EQUAL(usable, race->n);
}

/* The answers of a race in which every C_Initialize fails with `want`: nobody is told
 * CKR_OK or CKR_CRYPTOKI_ALREADY_INITIALIZED, and the module stays uninitialised. */
static void
race_check_failed(const struct race *race, CK_RV want)
{
	unsigned i, failed = 0, uninit = 0;

	for (i = 0; i < race->n; i++) {
		const struct racer *r = &race->r[i];

		failed += r->init_rv == want;
		uninit += r->list_rv == CKR_CRYPTOKI_NOT_INITIALIZED &&
		          r->info_rv == CKR_CRYPTOKI_NOT_INITIALIZED;
		if (r->init_rv != want) {
			fprintf(stderr, "racer %u/%u: C_Initialize 0x%lx, want 0x%lx\n", i, race->n,
			        (unsigned long)r->init_rv, (unsigned long)want);
		}
	}
	CU_ASSERT_EQUAL(failed, race->n);
	CU_ASSERT_EQUAL(uninit, race->n);
}

/* One free race of n threads against the fake gateway; the module is finalised after. */
static void
free_round(unsigned n, enum init_form form)
{
	struct race race;
	unsigned welcomed = fakegw_welcomed(fs.gw), hellos = fakegw_hellos(fs.gw);

	race_start(&race, n, form);
	race_join(&race);
	race_check_ok(&race);
	/* The threads told ALREADY_INITIALIZED waited for the first one; none connected. */
	CU_ASSERT_EQUAL(fakegw_hellos(fs.gw), hellos + 1);
	CU_ASSERT_EQUAL(fakegw_welcomed(fs.gw), welcomed + 1);
	CU_ASSERT_EQUAL(C_Finalize(NULL), CKR_OK);
	fakegw_drop_all(fs.gw); /* reaps the connection slots of the fake gateway */
}

static void
free_races(enum init_form form)
{
	static const unsigned counts[] = {2, 4, 8};
	unsigned i, round, failures = CU_get_number_of_failures();

	(void)C_Finalize(NULL);
	conf_fake();
	for (i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
		for (round = 0; round < FREE_ROUNDS; round++) {
			free_round(counts[i], form);
			if (CU_get_number_of_failures() != failures) {
				return; /* one failed round says it; the rest would repeat it */
			}
		}
	}
}

static void
test_free_null(void)
{
	free_races(FORM_NULL);
}

static void
test_free_os_locking(void)
{
	free_races(FORM_OS_LOCKING);
}

static void
test_free_threadless(void)
{
	free_races(FORM_THREADLESS);
}

static void
test_free_mixed(void)
{
	free_races(FORM_MIXED);
}

/* One held race: the first C_Initialize is stopped in its handshake until the other n-1
 * threads are asleep in theirs; then the gateway answers (or refuses, with auth_fail). */
static void
held_round(unsigned n, enum init_form form, int auth_fail)
{
	struct race race;
	unsigned welcomed = fakegw_welcomed(fs.gw), hellos = fakegw_hellos(fs.gw);
	const char *err;
	int done;

	fakegw_set_auth_fail(fs.gw, auth_fail);
	fakegw_hold(fs.gw);
	stderr_capture_begin(fs.errfile);
	race_start(&race, n, form);
	CU_ASSERT_EQUAL(fakegw_wait_held(fs.gw, 1), 0);
	done = race_wait_parked(&race);
	/* Nobody has an answer while the first attempt is undecided, and nobody else has
	 * started a connection of their own. */
	CU_ASSERT_EQUAL(done, 0);
	CU_ASSERT_EQUAL(fakegw_held(fs.gw), 1);
	CU_ASSERT_EQUAL(fakegw_hellos(fs.gw), hellos + 1);
	fakegw_release(fs.gw);
	race_join(&race);
	err = stderr_capture_end();
	fakegw_set_auth_fail(fs.gw, 0);
	if (!auth_fail) {
		race_check_ok(&race);
		CU_ASSERT_EQUAL(fakegw_hellos(fs.gw), hellos + 1);
		CU_ASSERT_EQUAL(fakegw_welcomed(fs.gw), welcomed + 1);
		CU_ASSERT_EQUAL(err[0], '\0');
		CU_ASSERT_EQUAL(C_Finalize(NULL), CKR_OK);
	} else {
		/* The first attempt failed: each waiter then tried on its own (the gateway
		 * refused each), and each failure said so once on stderr. */
		race_check_failed(&race, CKR_FUNCTION_FAILED);
		CU_ASSERT_EQUAL(fakegw_hellos(fs.gw), hellos + n);
		CU_ASSERT_EQUAL(fakegw_welcomed(fs.gw), welcomed);
		CU_ASSERT_EQUAL(count_substr(err, "refused authentication"), (int)n);
		CU_ASSERT_EQUAL(C_Finalize(NULL), CKR_CRYPTOKI_NOT_INITIALIZED);
	}
	fakegw_drop_all(fs.gw);
}

static void
held_races(int auth_fail)
{
	static const unsigned counts[] = {2, 4, 8};
	static const enum init_form forms[] = {FORM_NULL, FORM_OS_LOCKING, FORM_THREADLESS,
	                                       FORM_MIXED};
	unsigned i, j;

	(void)C_Finalize(NULL);
	conf_fake();
	for (i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
		for (j = 0; j < sizeof(forms) / sizeof(forms[0]); j++) {
			held_round(counts[i], forms[j], auth_fail);
		}
	}
}

static void
test_held_ok(void)
{
	held_races(0);
}

static void
test_held_first_fails(void)
{
	held_races(1);
	/* C_Initialize after failed ones works, alone and raced. */
	conf_fake();
	CU_ASSERT_EQUAL(C_Initialize(NULL), CKR_OK);
	CU_ASSERT_EQUAL(C_Finalize(NULL), CKR_OK);
	held_round(4, FORM_MIXED, 0);
}

/* Free races against an address nothing listens on: each thread's own attempt fails with
 * CKR_DEVICE_ERROR and one line on stderr, never ALREADY_INITIALIZED; then C_Initialize
 * against the fake gateway works. */
static void
test_free_unreachable(void)
{
	char yaml[PATH_MAX * 2];
	struct race race;
	const char *err;
	unsigned port = closed_port(), n, round;

	(void)C_Finalize(NULL);
	CU_ASSERT_NOT_EQUAL_FATAL(port, 0);
	snprintf(yaml, sizeof(yaml), "gateway: 127.0.0.1:%u\nca: %s\napi_key: k\n", port,
	         fakegw_ca(fs.gw));
	CU_ASSERT_EQUAL_FATAL(test_file_write(fs.conf, yaml, strlen(yaml)), 0);
	setenv("HSMGATE_CONF", fs.conf, 1);
	for (n = 2; n <= MAX_RACERS; n *= 2) {
		for (round = 0; round < 10; round++) {
			stderr_capture_begin(fs.errfile);
			race_start(&race, n, FORM_MIXED);
			race_join(&race);
			err = stderr_capture_end();
			race_check_failed(&race, CKR_DEVICE_ERROR);
			CU_ASSERT_EQUAL(count_substr(err, "hsmgate: cannot connect to gateway"),
			                (int)n);
		}
	}
	CU_ASSERT_EQUAL(C_Finalize(NULL), CKR_CRYPTOKI_NOT_INITIALIZED);
	conf_fake();
	free_round(4, FORM_MIXED);
}

/* ---- C_Finalize racing calls ------------------------------------------------------------ */

struct caller {
	pthread_t t;
	pthread_mutex_t *lock;
	pthread_cond_t *cv;
	unsigned *ok_seen; /* callers that have had one CKR_OK (lock) */
	unsigned bad;      /* answers other than CKR_OK (1 slot) or NOT_INITIALIZED */
};

/* Calls C_GetSlotList until the module is finalised. */
static void *
caller_main(void *arg)
{
	struct caller *c = arg;
	CK_SLOT_ID slots[4];
	CK_ULONG n;
	CK_RV rv;
	int first = 1;

	for (;;) {
		n = 4;
		rv = C_GetSlotList(CK_FALSE, slots, &n);
		if (rv == CKR_CRYPTOKI_NOT_INITIALIZED) {
			break;
		}
		if (rv != CKR_OK || n != 1 || slots[0] != 1) {
			c->bad++;
			fprintf(stderr, "C_GetSlotList racing C_Finalize: 0x%lx\n",
			        (unsigned long)rv);
			continue;
		}
		if (first) {
			first = 0;
			pthread_mutex_lock(c->lock);
			(*c->ok_seen)++;
			pthread_cond_broadcast(c->cv);
			pthread_mutex_unlock(c->lock);
		}
	}
	if (first) {
		c->bad++; /* finalised before this caller got its first answer: cannot happen */
	}
	return NULL;
}

struct finalizer {
	pthread_t t;
	pthread_barrier_t *go;
	CK_RV rv;
};

static void *
finalizer_main(void *arg)
{
	struct finalizer *f = arg;

	pthread_barrier_wait(f->go);
	f->rv = C_Finalize(NULL);
	return NULL;
}

/* `callers` threads keep calling C_GetSlotList; once each has had an answer, `finalizers`
 * threads call C_Finalize together. Exactly one C_Finalize returns CKR_OK, the others
 * CKR_CRYPTOKI_NOT_INITIALIZED; every call returns CKR_OK or CKR_CRYPTOKI_NOT_INITIALIZED. */
static void
finalize_round(const CK_C_INITIALIZE_ARGS *args, unsigned callers, unsigned finalizers)
{
	pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
	struct caller c[MAX_RACERS];
	struct finalizer f[MAX_RACERS];
	pthread_barrier_t go;
	unsigned i, ok_seen = 0, bad = 0, fin_ok = 0, fin_uninit = 0;

	CU_ASSERT_EQUAL_FATAL(C_Initialize((CK_VOID_PTR)args), CKR_OK);
	CU_ASSERT_EQUAL_FATAL(pthread_barrier_init(&go, NULL, finalizers + 1), 0);
	for (i = 0; i < callers; i++) {
		c[i] = (struct caller){.lock = &lock, .cv = &cv, .ok_seen = &ok_seen};
		CU_ASSERT_EQUAL_FATAL(pthread_create(&c[i].t, NULL, caller_main, &c[i]), 0);
	}
	for (i = 0; i < finalizers; i++) {
		f[i] = (struct finalizer){.go = &go, .rv = (CK_RV)-1};
		CU_ASSERT_EQUAL_FATAL(pthread_create(&f[i].t, NULL, finalizer_main, &f[i]), 0);
	}
	pthread_mutex_lock(&lock);
	while (ok_seen < callers) {
		pthread_cond_wait(&cv, &lock);
	}
	pthread_mutex_unlock(&lock);
	pthread_barrier_wait(&go);
	for (i = 0; i < finalizers; i++) {
		pthread_join(f[i].t, NULL);
		fin_ok += f[i].rv == CKR_OK;
		fin_uninit += f[i].rv == CKR_CRYPTOKI_NOT_INITIALIZED;
	}
	for (i = 0; i < callers; i++) {
		pthread_join(c[i].t, NULL);
		bad += c[i].bad;
	}
	pthread_barrier_destroy(&go);
	CU_ASSERT_EQUAL(fin_ok, 1);
	CU_ASSERT_EQUAL(fin_uninit, finalizers - 1);
	CU_ASSERT_EQUAL(bad, 0);
	fakegw_drop_all(fs.gw);
}

static void
finalize_races(const CK_C_INITIALIZE_ARGS *args)
{
	unsigned round, failures = CU_get_number_of_failures();

	(void)C_Finalize(NULL);
	conf_fake();
	for (round = 0; round < 40 && CU_get_number_of_failures() == failures; round++) {
		finalize_round(args, 1 + round % 6, 1 + round % 3);
	}
}

static void
test_finalize_race(void)
{
	finalize_races(NULL);
}

static void
test_finalize_race_threadless(void)
{
	CK_C_INITIALIZE_ARGS a;

	memset(&a, 0, sizeof(a));
	a.flags = CKF_LIBRARY_CANT_CREATE_OS_THREADS | CKF_OS_LOCKING_OK;
	finalize_races(&a);
}

/* Threadless mode: a caller waiting for a reply drives the connection itself (io_drive);
 * C_Finalize from another thread must end that wait at once with
 * CKR_CRYPTOKI_NOT_INITIALIZED, not when the call times out. timeout_ms is long enough
 * that only a hang could reach it. */
struct pending {
	pthread_t t;
	CK_SLOT_INFO info;
	CK_RV rv;
};

struct fin_guard {
	pthread_t t;
	pthread_mutex_t lock;
	pthread_cond_t cv;
	int done; /* (lock) */
	CK_RV rv;
};

static void *
fin_guard_main(void *arg)
{
	struct fin_guard *g = arg;
	CK_RV rv = C_Finalize(NULL);

	pthread_mutex_lock(&g->lock);
	g->rv = rv;
	g->done = 1;
	pthread_cond_signal(&g->cv);
	pthread_mutex_unlock(&g->lock);
	return NULL;
}

static void *
pending_main(void *arg)
{
	struct pending *p = arg;

	p->rv = C_GetSlotInfo(201, &p->info); /* the fake gateway never answers slot 201 */
	return NULL;
}

static void
test_finalize_wakes_driver(void)
{
	struct timespec pause = {.tv_sec = 0, .tv_nsec = 1000000L};
	struct timespec guard;
	CK_C_INITIALIZE_ARGS a;
	struct fin_guard fg;
	struct pending p;
	unsigned requests, spins;
	int done;

	(void)C_Finalize(NULL);
	CU_ASSERT_EQUAL_FATAL(fakegw_write_conf(fs.gw, fs.conf, "timeout_ms: 600000\n"), 0);
	setenv("HSMGATE_CONF", fs.conf, 1);
	memset(&a, 0, sizeof(a));
	a.flags = CKF_LIBRARY_CANT_CREATE_OS_THREADS | CKF_OS_LOCKING_OK;
	CU_ASSERT_EQUAL_FATAL(C_Initialize(&a), CKR_OK);
	requests = fakegw_requests(fs.gw);
	p.rv = (CK_RV)-1;
	CU_ASSERT_EQUAL_FATAL(pthread_create(&p.t, NULL, pending_main, &p), 0);
	/* The request has reached the gateway: its caller is driving the connection. */
	for (spins = 0; spins < 60000 && fakegw_requests(fs.gw) == requests; spins++) {
		nanosleep(&pause, NULL);
	}
	CU_ASSERT_EQUAL(fakegw_requests(fs.gw), requests + 1);
	/* C_Finalize in a thread of its own, so that a hang is a failure and not the end of the
	 * test run: a minute is the guard, the call should take a few milliseconds. */
	memset(&fg, 0, sizeof(fg));
	pthread_mutex_init(&fg.lock, NULL);
	pthread_cond_init(&fg.cv, NULL);
	CU_ASSERT_EQUAL_FATAL(pthread_create(&fg.t, NULL, fin_guard_main, &fg), 0);
	clock_gettime(CLOCK_REALTIME, &guard);
	guard.tv_sec += 60;
	pthread_mutex_lock(&fg.lock);
	while (!fg.done && pthread_cond_timedwait(&fg.cv, &fg.lock, &guard) != ETIMEDOUT) {
	}
	done = fg.done;
	pthread_mutex_unlock(&fg.lock);
	CU_ASSERT(done);
	if (!done) {
		fakegw_drop_all(fs.gw); /* the connection fails: the driver lets go */
	}
	pthread_join(fg.t, NULL);
	pthread_join(p.t, NULL);
	CU_ASSERT_EQUAL(fg.rv, CKR_OK);
	CU_ASSERT_EQUAL(p.rv, CKR_CRYPTOKI_NOT_INITIALIZED);
	pthread_cond_destroy(&fg.cv);
	pthread_mutex_destroy(&fg.lock);
	fakegw_drop_all(fs.gw);
}

static const struct test_case cases[] = {
        {"free race, C_Initialize(NULL), 2/4/8 threads", test_free_null},
        {"free race, CKF_OS_LOCKING_OK, 2/4/8 threads", test_free_os_locking},
        {"free race, CKF_LIBRARY_CANT_CREATE_OS_THREADS, 2/4/8 threads", test_free_threadless},
        {"free race, the three forms mixed", test_free_mixed},
        {"held race: the others wait for the first, then ALREADY_INITIALIZED", test_held_ok},
        {"held race: the first fails, each waiter fails on its own", test_held_first_fails},
        {"free race against an unreachable gateway", test_free_unreachable},
        {"C_Finalize racing C_GetSlotList and C_Finalize", test_finalize_race},
        {"C_Finalize racing calls, threadless mode", test_finalize_race_threadless},
        {"C_Finalize ends a threadless caller's wait", test_finalize_wakes_driver},
        {NULL, NULL},
};

void
test_register(void)
{
	test_suite_add("client/initrace", suite_init, suite_cleanup, cases);
}
