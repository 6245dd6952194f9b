/*
 * tools/hsmgate-bench/bench.h — the internal interfaces of hsmgate-bench (one program, three
 * files: main.c runs and reports, ops.c holds the operations, stats.c the latency histogram
 * and the /proc readings). Nothing here is installed or linked by anything else.
 *
 * The tool links no hsmgate library (Makefile): it dlopens any PKCS #11 module, so that our
 * client module is measured exactly like SoftHSMv2 or p11-kit-client.
 */
#ifndef HSMGATE_BENCH_H
#define HSMGATE_BENCH_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <p11-kit/pkcs11.h>

/* Error codes of the tool's own functions (STYLE.md rule 5); CK_RV stays at the PKCS #11
 * boundary, i.e. in the operations' setup/call functions. */
enum {
	BENCH_OK = 0,
	BENCH_ERR_USAGE = -1,  /* bad command line */
	BENCH_ERR_SYS = -2,    /* out of memory, /proc unreadable, thread creation */
	BENCH_ERR_MODULE = -3, /* the module could not be loaded or initialised */
	BENCH_ERR_TOKEN = -4,  /* no such token/slot, or the login failed */
};

/* Returns a static string for a BENCH_ERR_* code. */
const char *bench_strerror(int r);

/* Returns the CKR_* name of rv, or "CKR_0x<hex>" in a static buffer for unknown values
 * (not thread-safe for unknown values; only the main thread prints). */
const char *bench_ckr_name(CK_RV rv);

/* ---- latency histogram (stats.c) ----------------------------------------------------------
 * Log-linear buckets: exact below 128 ns, then 64 buckets per power of two (≤ 1.6% error),
 * up to 2^40 ns (~18 minutes). Fixed size so a worker records a call with no allocation. */
#define BENCH_HIST_SUB     64
#define BENCH_HIST_BUCKETS (BENCH_HIST_SUB * 36)

struct bench_hist {
	uint64_t count;
	uint64_t sum_ns;
	uint64_t max_ns;
	uint64_t bucket[BENCH_HIST_BUCKETS];
};

void bench_hist_add(struct bench_hist *h, uint64_t ns);
void bench_hist_merge(struct bench_hist *into, const struct bench_hist *from);
/* The latency at quantile q (0..1) in ns: the upper edge of the bucket holding it. 0 when
 * the histogram is empty. */
uint64_t bench_hist_quantile(const struct bench_hist *h, double q);

/* ---- server processes (stats.c) -----------------------------------------------------------
 * A snapshot of the processes given by --server-pid and all their descendants (found through
 * /proc/PID/task/TID/children), with their CPU ticks and peak RSS. */
#define BENCH_MAX_PROCS 256

struct bench_proc {
	pid_t pid;
	uint64_t ticks;   /* utime + stime, in clock ticks */
	uint64_t hwm_kib; /* VmHWM */
	char comm[32];
};

struct bench_procs {
	size_t n;
	struct bench_proc p[BENCH_MAX_PROCS];
};

/* Fills *out from the roots and their descendants. Processes that vanish while being read are
 * skipped (a worker may be restarted at any time). Returns 0, or BENCH_ERR_SYS when a root
 * cannot be read at all. */
int bench_procs_snapshot(const pid_t *roots, size_t nroots, struct bench_procs *out)
        __attribute__((warn_unused_result));
/* CPU seconds spent between two snapshots: per pid, end - start (a pid new at the end counts
 * fully). */
double bench_procs_cpu_delta(const struct bench_procs *start, const struct bench_procs *end);

/* ---- operations (ops.c) ------------------------------------------------------------------ */
struct bench_ctx;

/* One application thread: its own session, its own keys, its own histogram. */
struct bench_worker {
	pthread_t thread;
	unsigned id;
	struct bench_ctx *ctx;
	CK_SESSION_HANDLE session;
	CK_OBJECT_HANDLE key;   /* secret or private key, or the data object to find */
	CK_OBJECT_HANDLE pub;   /* public key of a pair */
	CK_MECHANISM_TYPE mech; /* the mechanism chosen at set-up */
	int variant;            /* op-specific choice made at set-up (e.g. OAEP hash) */
	CK_RV variant_rv;       /* why set-up fell back to that variant (reported) */
	uint64_t counter;       /* per-call counter (GCM IVs) */
	unsigned char in[4096]; /* the call's input */
	unsigned char out[4096 + 512];
	unsigned char aux[512]; /* op-specific (ciphertext to decrypt, label) */
	size_t aux_len;
	/* results */
	struct bench_hist hist;
	uint64_t calls;
	CK_RV rv;      /* the failing call's return value, CKR_OK if none */
	int wrong;     /* 1 when a result did not verify */
	int ready;     /* set-up done (successfully or not) */
	char msg[256]; /* what failed */
};

struct bench_op {
	const char *name;
	const char *what; /* one line for --help */
	int needs_login;  /* keys are private session objects: log in first */
	int own_session;  /* the call opens and closes its own session (no worker session) */
	/* Creates the worker's key(s) and verifies one result with OpenSSL or by a round trip
	 * through the module. Returns CKR_OK; on a refused call its CK_RV (w->msg says which
	 * call); on a wrong result CKR_GENERAL_ERROR with w->wrong set. */
	CK_RV (*setup)(struct bench_worker *w);
	/* One timed operation. Cheap checks (lengths, counts) are done on every call and set
	 * w->wrong. */
	CK_RV (*call)(struct bench_worker *w);
};

/* Shared, read-only while workers run (except the atomics). */
struct bench_ctx {
	CK_FUNCTION_LIST_PTR p11;
	CK_SLOT_ID slot;
	const char *pin;
	size_t pin_len;
	const struct bench_op *op;
	uint64_t t_measure; /* CLOCK_MONOTONIC ns: calls started before are warm-up */
	uint64_t t_end;     /* calls that end after are not counted */
	atomic_int stop;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned nready;
	int go;
};

/* The operation table, terminated by a NULL name. */
extern const struct bench_op bench_ops[];

/* Looks an operation up by name ("session" also answers to "open-session"). NULL if none. */
const struct bench_op *bench_op_find(const char *name);

/* Records a failure message in w->msg (first one wins). */
void bench_worker_fail(struct bench_worker *w, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

/* CLOCK_MONOTONIC in ns. */
uint64_t bench_now_ns(void);

/* True for the CK_RVs that mean "this module cannot do that", which are reported as
 * unsupported rather than as failures. */
int bench_rv_unsupported(CK_RV rv);

#endif /* HSMGATE_BENCH_H */
