/*
 * tools/hsmgate-bench/bench.h — the internal interfaces of hsmgate-bench (one program:
 * main.c runs and reports, ops.c holds the operations, stats.c the latency histogram and the
 * /proc readings, audit.c the in-process operations, idle.c --op idle-conns). Nothing here is
 * installed or linked by anything else.
 *
 * The tool links no PKCS #11 code of ours (Makefile): it dlopens any PKCS #11 module, so that
 * our client module is measured exactly like SoftHSMv2 or p11-kit-client. It links libaud
 * only for the in-process operations (audit.c), which load no module.
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

/* The slot of the token labelled `label` among the slots with a token: CKR_OK and *slot;
 * C_GetSlotList's error; or CKR_TOKEN_NOT_PRESENT when no token has that label. */
CK_RV bench_slot_by_label(CK_FUNCTION_LIST_PTR p11, const char *label, CK_SLOT_ID *slot);

/* Prints s to stdout as a JSON string (quotes, backslash and control escapes). */
void bench_json_str(const char *s);

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
	uint64_t rss_kib; /* VmRSS */
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

/* ---- in-process operations (audit.c) -----------------------------------------------------
 * Operations that load no PKCS #11 module: they drive audit/ (libaud) directly, in this
 * process, as hsmgated does. They run whole in one call and report like the others. */
struct bench_local_args {
	unsigned threads;  /* --threads */
	unsigned inflight; /* --inflight: records in flight per thread (audit-append) */
	double duration;   /* --duration */
	double warmup;     /* --warmup */
	const char *dir;   /* --audit-dir: where the temporary log goes; NULL: $TMPDIR or /tmp */
	uint64_t events;   /* --audit-events: events in the log that audit-verify checks */
};

enum { BENCH_LOCAL_OK = 0, BENCH_LOCAL_FAILED = 1, BENCH_LOCAL_WRONG = 2 };

struct bench_local_result {
	int status; /* BENCH_LOCAL_* */
	char msg[300];
	char note[96];
	uint64_t calls; /* operations counted */
	double secs;    /* the time they were counted over */
	struct bench_hist hist;
	double cpu_s; /* CPU time of this process (all its threads) over that time */
};

struct bench_local_op {
	const char *name;
	const char *what; /* one line for --help */
	/* Sets up, measures, checks and cleans up. Returns 0 with *res filled (res->status says
	 * whether the operation worked), or BENCH_ERR_SYS when nothing could be run. */
	int (*run)(const struct bench_local_args *a, struct bench_local_result *res);
};

/* The in-process operation table, terminated by a NULL name. */
extern const struct bench_local_op bench_local_ops[];

/* Looks an in-process operation up by name. NULL if none. */
const struct bench_local_op *bench_local_op_find(const char *name);

/* ---- idle connections (idle.c) -----------------------------------------------------------
 * --op idle-conns: N connections held idle, each by a process of its own (our client module
 * keeps one connection per process) that loaded the module, opened a session and logged in;
 * the servers' RSS before and while they are held; and an operation measured by this process
 * while they are held and again after they are released. */

/* One run of the measured operation, filled by the caller's measure function. */
struct bench_idle_sample {
	int ok;        /* 1: measured; 0: msg says why not */
	char msg[300]; /* "failed (...)", "unsupported (...)" */
	uint64_t calls;
	double ops_per_s;
	double p50_us, p99_us;
	double srv_cpu_us_per_op; /* 0 without --server-pid */
};

/* Runs the measured operation once, in this process (main.c: the module is loaded here at the
 * first call, i.e. only after idle.c has forked every holder, and the operation runs as any
 * --op does). Returns 0 with *s filled (s->ok says whether it ran), or a BENCH_ERR_* when
 * nothing could be run. */
typedef int (*bench_idle_measure_fn)(void *arg, struct bench_idle_sample *s);

#define BENCH_IDLE_MAX_ROUNDS 20

struct bench_idle_args {
	const char *module;  /* --module */
	const char *token;   /* --token, or NULL and: */
	long slot;           /* --slot */
	char *pin;           /* the user PIN (each holder wipes its own copy after C_Login) */
	unsigned conns;      /* --conns */
	unsigned batch;      /* --conn-batch: holders started, and awaited, at a time */
	const pid_t *server; /* --server-pid */
	size_t nserver;
	const char *label;
	int json;
	const char *measure_name; /* the measured operation, for the report */
	unsigned threads, inflight;
	double duration, warmup;
	unsigned rounds; /* --rounds: runs of the measured operation per phase (median) */
	bench_idle_measure_fn measure;
	void *measure_arg;
};

/*
 * Starts a->conns holders, a->batch at a time, each waiting until it is logged in (or
 * failed); snapshots the servers' RSS before and once all are held; measures while held;
 * releases them (each first checks with C_GetSessionInfo that its session is still logged in,
 * i.e. that the idle connection was kept and is served); measures again; prints the report
 * (table or JSON, as a->json says). Must be called while this process has one thread (it
 * forks). Returns 0 when everything was held, served and measured, 1 when something failed
 * (the report says what), or a BENCH_ERR_* when it could not start.
 */
int bench_idle_run(const struct bench_idle_args *a) __attribute__((warn_unused_result));

#endif /* HSMGATE_BENCH_H */
