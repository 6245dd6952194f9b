/*
 * tools/hsmgate-bench — PKCS #11 throughput and latency, for any module (ours, SoftHSMv2,
 * p11-kit-client), measured the same way for each.
 *
 * Calls in flight. A PKCS #11 call is synchronous for its calling thread, so the only way an
 * application has N calls in flight is N threads. "--threads T --inflight K" therefore runs
 * T × K application threads, each with its own session and its own key; for our module they
 * share one C_Initialize and hence one TLS connection, over which the client module pipelines
 * their requests. The same T × K threads drive every other module, which is the honest
 * comparison: modules that do not pipeline serialise or parallelise the threads as they can.
 *
 * Method. Every worker opens its session, creates its key and verifies one result with
 * OpenSSL or a round trip through the module (ops.c) before anything is timed; an operation
 * the module lacks is reported as "unsupported (CKR_...)". Then all workers run calls for
 * --warmup seconds (not counted) and --duration seconds (counted): each call is timed with
 * CLOCK_MONOTONIC into the worker's histogram; calls that straddle the window's edges are
 * dropped. ops/s = counted calls / duration. CPU time over the window: the client from
 * getrusage(RUSAGE_SELF); the servers (--server-pid, and all their descendants, e.g.
 * hsmgated's partition workers) from /proc/PID/stat; peak RSS from VmHWM.
 *
 * In-process operations (audit.c: audit-append, audit-verify) load no module: they drive the
 * audit log of audit/ directly, as hsmgated does, and report in the same table and JSON.
 *
 * --op idle-conns (idle.c) runs alone: it holds --conns idle, logged-in connections (a
 * process each) and measures the servers' RSS and ecdsa-p256-sign beside them; main.c only
 * supplies that measurement (run_op), loading the module once the holders are forked.
 *
 * Exit status: 0 every operation ran or was unsupported; 1 an operation failed or answered
 * wrongly; 2 usage or set-up error (module, token, login).
 */
#include <dlfcn.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "tools/hsmgate-bench/bench.h"

#define MAX_APP_THREADS 1024
#define MAX_SERVER_PIDS 16
/* records in flight in audit-append: at most the log's default queue_max */
#define MAX_LOCAL_INFLIGHT 65536
/* idle-conns: a process per connection */
#define MAX_IDLE_CONNS 100000

enum status { ST_OK, ST_UNSUPPORTED, ST_FAILED, ST_WRONG };

struct result {
	const struct bench_op *op;          /* a PKCS #11 operation, or NULL and: */
	const struct bench_local_op *local; /* an in-process one */
	enum status status;
	char msg[300];
	char note[96];
	uint64_t calls;
	double secs;
	struct bench_hist hist;
	double cli_cpu;
	double srv_cpu;
	long cli_maxrss_kib;
	struct bench_procs procs;
};

struct opts {
	const char *module;
	const char *token;
	long slot;
	char *pin;
	const char *label;
	unsigned threads;
	unsigned inflight;
	double duration;
	double warmup;
	int json;
	pid_t server[MAX_SERVER_PIDS];
	size_t nserver;
	/* The operations in command-line order: ops[i] or local[i] is set. */
	const struct bench_op *ops[64];
	const struct bench_local_op *local[64];
	size_t nops;
	const char *audit_dir;
	uint64_t audit_events;
	int idle;            /* --op idle-conns (idle.c), alone */
	unsigned conns;      /* --conns */
	unsigned conn_batch; /* --conn-batch */
	unsigned rounds;     /* --rounds */
};

const char *
bench_strerror(int r)
{
	switch (r) {
	case BENCH_OK:
		return "ok";
	case BENCH_ERR_USAGE:
		return "usage error";
	case BENCH_ERR_SYS:
		return "system error";
	case BENCH_ERR_MODULE:
		return "the PKCS #11 module cannot be used";
	case BENCH_ERR_TOKEN:
		return "token not found or login failed";
	default:
		return "unknown error";
	}
}

const char *
bench_ckr_name(CK_RV rv)
{
	static char buf[32];

	switch (rv) {
#define N(x)                                                                                       \
	case x:                                                                                    \
		return #x
		N(CKR_OK);
		N(CKR_HOST_MEMORY);
		N(CKR_SLOT_ID_INVALID);
		N(CKR_GENERAL_ERROR);
		N(CKR_FUNCTION_FAILED);
		N(CKR_ARGUMENTS_BAD);
		N(CKR_ATTRIBUTE_READ_ONLY);
		N(CKR_ATTRIBUTE_SENSITIVE);
		N(CKR_ATTRIBUTE_TYPE_INVALID);
		N(CKR_ATTRIBUTE_VALUE_INVALID);
		N(CKR_DATA_INVALID);
		N(CKR_DATA_LEN_RANGE);
		N(CKR_DEVICE_ERROR);
		N(CKR_DEVICE_MEMORY);
		N(CKR_DEVICE_REMOVED);
		N(CKR_ENCRYPTED_DATA_INVALID);
		N(CKR_ENCRYPTED_DATA_LEN_RANGE);
		N(CKR_FUNCTION_CANCELED);
		N(CKR_FUNCTION_NOT_SUPPORTED);
		N(CKR_KEY_HANDLE_INVALID);
		N(CKR_KEY_SIZE_RANGE);
		N(CKR_KEY_TYPE_INCONSISTENT);
		N(CKR_KEY_FUNCTION_NOT_PERMITTED);
		N(CKR_MECHANISM_INVALID);
		N(CKR_MECHANISM_PARAM_INVALID);
		N(CKR_OBJECT_HANDLE_INVALID);
		N(CKR_OPERATION_ACTIVE);
		N(CKR_OPERATION_NOT_INITIALIZED);
		N(CKR_PIN_INCORRECT);
		N(CKR_PIN_LOCKED);
		N(CKR_SESSION_CLOSED);
		N(CKR_SESSION_COUNT);
		N(CKR_SESSION_HANDLE_INVALID);
		N(CKR_SESSION_READ_ONLY);
		N(CKR_SIGNATURE_INVALID);
		N(CKR_SIGNATURE_LEN_RANGE);
		N(CKR_TEMPLATE_INCOMPLETE);
		N(CKR_TEMPLATE_INCONSISTENT);
		N(CKR_TOKEN_NOT_PRESENT);
		N(CKR_USER_ALREADY_LOGGED_IN);
		N(CKR_USER_NOT_LOGGED_IN);
		N(CKR_USER_PIN_NOT_INITIALIZED);
		N(CKR_USER_TYPE_INVALID);
		N(CKR_BUFFER_TOO_SMALL);
		N(CKR_CRYPTOKI_NOT_INITIALIZED);
		N(CKR_CRYPTOKI_ALREADY_INITIALIZED);
#undef N
	default:
		snprintf(buf, sizeof(buf), "CKR_0x%lx", (unsigned long)rv);
		return buf;
	}
}

static void
usage(FILE *f)
{
	const struct bench_local_op *lop;
	const struct bench_op *op;

	fprintf(f,
	        "usage: hsmgate-bench --module SO (--token LABEL | --slot ID) [--pin PIN | "
	        "--pin-file F]\n"
	        "                     --op NAME[,NAME...] [--threads T] [--inflight K]\n"
	        "                     [--duration S] [--warmup S] [--format table|json]\n"
	        "                     [--server-pid PID]... [--label NAME]\n"
	        "       hsmgate-bench --op audit-append|audit-verify [--threads T] [--inflight K]\n"
	        "                     [--duration S] [--warmup S] [--audit-dir DIR] "
	        "[--audit-events N]\n"
	        "                     [--format table|json] [--label NAME]\n"
	        "       hsmgate-bench --module SO (--token LABEL | --slot ID) --pin-file F\n"
	        "                     --server-pid PID --op idle-conns [--conns N] "
	        "[--conn-batch B] [--rounds R]\n"
	        "                     [--threads T] [--inflight K] [--duration S] [--warmup S]\n"
	        "                     [--format table|json] [--label NAME]\n"
	        "\n"
	        "  --module SO        PKCS #11 module to dlopen (ours, SoftHSMv2, p11-kit-client, "
	        "...);\n"
	        "                     not needed when every --op is an in-process one\n"
	        "  --token LABEL      the token by label (or --slot ID)\n"
	        "  --pin/--pin-file   user PIN; needed by every operation except random32 and\n"
	        "                     digest-sha256-4k (the file's trailing newline is ignored)\n"
	        "  --op NAME          operation(s), repeatable or comma-separated, or \"all\"\n"
	        "  --threads T        (default 1) and --inflight K (default 1): T × K application\n"
	        "                     threads, each with its own session and key. PKCS #11 calls "
	        "are\n"
	        "                     synchronous per thread, so K calls in flight need K "
	        "threads\n"
	        "                     (T × K ≤ 1024). audit-append: T threads, each with K "
	        "records\n"
	        "                     in flight (T × K ≤ 65536).\n"
	        "  --duration S       seconds measured per operation (default 5)\n"
	        "  --warmup S         seconds run but not counted first (default 1)\n"
	        "  --format F         table (default) or json\n"
	        "  --server-pid PID   a server process whose CPU time (with its descendants') over "
	        "the\n"
	        "                     measured window and peak RSS are reported; repeatable\n"
	        "  --label NAME       what to call this module in the output (default: file name)\n"
	        "  --audit-dir DIR    in-process operations: where their temporary log goes "
	        "(default\n"
	        "                     $TMPDIR or /tmp); it is removed afterwards\n"
	        "  --audit-events N   audit-verify: events in the verified log (default 100000)\n"
	        "  --conns N          idle-conns: connections to hold (default 1000)\n"
	        "  --conn-batch B     idle-conns: connections opened, and awaited, at a time "
	        "(default 50)\n"
	        "  --rounds R         idle-conns: runs of ecdsa-p256-sign while held, and as many "
	        "after\n"
	        "                     the release; the medians are compared (default 1, at most "
	        "20)\n"
	        "\n"
	        "Operations (\"all\" = these):\n");
	for (op = bench_ops; op->name != NULL; op++) {
		fprintf(f, "  %-22s %s\n", op->name, op->what);
	}
	fprintf(f, "\nIn-process operations (no module: the audit log of audit/, as hsmgated "
	           "writes it):\n");
	for (lop = bench_local_ops; lop->name != NULL; lop++) {
		fprintf(f, "  %-22s %s\n", lop->name, lop->what);
	}
	fprintf(f,
	        "  audit-append: T threads each build the event of a signing request as the "
	        "gateway\n"
	        "  does (initiator, target, policy block; about 1 KiB) and append it to a fresh "
	        "log\n"
	        "  with the default options (durability sync, group commit, a checkpoint every\n"
	        "  1000 records or 10 s), keeping up to K records in flight (appended, not yet\n"
	        "  durable). ops/s = events durable per second; latency = aud_log_append() to the\n"
	        "  record's done callback (after its fdatasync). The log is verified afterwards.\n"
	        "  audit-verify: writes --audit-events events so, then runs the verifier of\n"
	        "  `hsmgate-audit verify` over the log, pass after pass (--threads/--inflight\n"
	        "  unused). ops/s = records verified per second; latency = one whole pass.\n"
	        "  cpu = CPU of this process (every thread) per operation.\n");
	fprintf(f,
	        "\nidle-conns (alone): N processes each load the module, C_Initialize (one "
	        "connection\n"
	        "  each), C_OpenSession, C_Login and stay idle; the servers' VmRSS (--server-pid "
	        "and\n"
	        "  descendants) before and while held gives KiB per idle connection; "
	        "ecdsa-p256-sign\n"
	        "  (T × K) runs in this process while they are held and again after their "
	        "release;\n"
	        "  before the release each holder checks that its session is still logged in.\n");
	fprintf(f, "\nExit status: 0 all ran or were unsupported, 1 a failure or wrong result, 2 "
	           "set-up error.\n");
}

static int
parse_double(const char *s, double *out)
{
	char *end;

	errno = 0;
	*out = strtod(s, &end);
	return errno == 0 && end != s && *end == '\0' && *out >= 0 && *out < 86400
	               ? 0
	               : BENCH_ERR_USAGE;
}

static int
parse_uint(const char *s, unsigned max, unsigned *out)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v == 0 || v > max) {
		return BENCH_ERR_USAGE;
	}
	*out = (unsigned)v;
	return 0;
}

static int
read_pin_file(const char *path, char **out)
{
	char buf[256];
	FILE *f;
	size_t n;

	if ((f = fopen(path, "r")) == NULL) {
		fprintf(stderr, "hsmgate-bench: %s: %s\n", path, strerror(errno));
		return BENCH_ERR_USAGE;
	}
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	*out = strdup(buf);
	OPENSSL_cleanse(buf, sizeof(buf));
	return *out != NULL ? 0 : BENCH_ERR_SYS;
}

static int
add_ops(struct opts *o, const char *list)
{
	char *copy, *tok, *save = NULL;
	const struct bench_local_op *lop;
	const struct bench_op *op;
	int r = 0;

	if ((copy = strdup(list)) == NULL) {
		return BENCH_ERR_SYS;
	}
	for (tok = strtok_r(copy, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
		if (strcmp(tok, "idle-conns") == 0) {
			o->idle = 1;
			continue;
		}
		if (strcmp(tok, "all") == 0) {
			for (op = bench_ops; op->name != NULL && o->nops < 64; op++) {
				o->ops[o->nops++] = op;
			}
			continue;
		}
		if ((lop = bench_local_op_find(tok)) != NULL) {
			if (o->nops < 64) {
				o->local[o->nops++] = lop;
			}
			continue;
		}
		if ((op = bench_op_find(tok)) == NULL) {
			fprintf(stderr, "hsmgate-bench: unknown operation '%s' (see --help)\n",
			        tok);
			r = BENCH_ERR_USAGE;
			break;
		}
		if (o->nops < 64) {
			o->ops[o->nops++] = op;
		}
	}
	free(copy);
	return r;
}

static int
parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
	        {"module", required_argument, NULL, 'm'},
	        {"token", required_argument, NULL, 't'},
	        {"slot", required_argument, NULL, 's'},
	        {"pin", required_argument, NULL, 'p'},
	        {"pin-file", required_argument, NULL, 'P'},
	        {"op", required_argument, NULL, 'o'},
	        {"threads", required_argument, NULL, 'T'},
	        {"inflight", required_argument, NULL, 'k'},
	        {"duration", required_argument, NULL, 'd'},
	        {"warmup", required_argument, NULL, 'w'},
	        {"format", required_argument, NULL, 'f'},
	        {"server-pid", required_argument, NULL, 'S'},
	        {"label", required_argument, NULL, 'l'},
	        {"audit-dir", required_argument, NULL, 'D'},
	        {"audit-events", required_argument, NULL, 'E'},
	        {"conns", required_argument, NULL, 'N'},
	        {"conn-batch", required_argument, NULL, 'B'},
	        {"rounds", required_argument, NULL, 'R'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	unsigned v;
	size_t i;
	int c, r, need_module = 0;

	memset(o, 0, sizeof(*o));
	o->slot = -1;
	o->audit_events = 100000;
	o->conns = 1000;
	o->conn_batch = 50;
	o->rounds = 1;
	o->threads = 1;
	o->inflight = 1;
	o->duration = 5;
	o->warmup = 1;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		r = 0;
		switch (c) {
		case 'm':
			o->module = optarg;
			break;
		case 't':
			o->token = optarg;
			break;
		case 's':
			r = parse_uint(optarg, 0xffffffffu, &v);
			o->slot = (long)v;
			if (strcmp(optarg, "0") == 0) {
				/* slot 0 is valid (SoftHSMv2 numbers from 0); parse_uint refuses 0
				 */
				o->slot = 0;
				r = 0;
			}
			break;
		case 'p':
			free(o->pin);
			if ((o->pin = strdup(optarg)) == NULL) {
				r = BENCH_ERR_SYS;
			}
			break;
		case 'P':
			free(o->pin);
			r = read_pin_file(optarg, &o->pin);
			break;
		case 'o':
			r = add_ops(o, optarg);
			break;
		case 'T':
			r = parse_uint(optarg, MAX_APP_THREADS, &o->threads);
			break;
		case 'k':
			r = parse_uint(optarg, MAX_LOCAL_INFLIGHT, &o->inflight);
			break;
		case 'd':
			r = parse_double(optarg, &o->duration);
			if (r == 0 && o->duration <= 0) {
				r = BENCH_ERR_USAGE;
			}
			break;
		case 'w':
			r = parse_double(optarg, &o->warmup);
			break;
		case 'f':
			if (strcmp(optarg, "json") == 0) {
				o->json = 1;
			} else if (strcmp(optarg, "table") != 0) {
				r = BENCH_ERR_USAGE;
			}
			break;
		case 'S':
			if (o->nserver >= MAX_SERVER_PIDS ||
			    parse_uint(optarg, 0x7fffffff, &v) != 0) {
				r = BENCH_ERR_USAGE;
			} else {
				o->server[o->nserver++] = (pid_t)v;
			}
			break;
		case 'l':
			o->label = optarg;
			break;
		case 'D':
			o->audit_dir = optarg;
			break;
		case 'E':
			r = parse_uint(optarg, 100000000u, &v);
			o->audit_events = v;
			break;
		case 'N':
			r = parse_uint(optarg, MAX_IDLE_CONNS, &o->conns);
			break;
		case 'B':
			r = parse_uint(optarg, MAX_IDLE_CONNS, &o->conn_batch);
			break;
		case 'R':
			r = parse_uint(optarg, BENCH_IDLE_MAX_ROUNDS, &o->rounds);
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			r = BENCH_ERR_USAGE;
			break;
		}
		if (r != 0) {
			if (optarg != NULL && c != '?') {
				fprintf(stderr, "hsmgate-bench: bad value for --%s: %s\n",
				        c == 'P' ? "pin-file" : "option",
				        c == 'p' ? "(hidden)" : optarg);
			}
			return r;
		}
	}
	for (i = 0; i < o->nops; i++) {
		if (o->ops[i] != NULL) {
			need_module = 1;
		}
	}
	if (o->idle) {
		/* idle.c forks its holders before this process loads any module */
		if (o->nops > 0) {
			fprintf(stderr, "hsmgate-bench: --op idle-conns runs alone\n");
			return BENCH_ERR_USAGE;
		}
		if (o->pin == NULL || o->nserver == 0) {
			fprintf(stderr, "hsmgate-bench: --op idle-conns needs --pin or --pin-file "
			                "(each connection logs in) and --server-pid (whose memory "
			                "it measures)\n");
			return BENCH_ERR_USAGE;
		}
		need_module = 1;
	}
	if (optind != argc || (o->nops == 0 && !o->idle) ||
	    (need_module && (o->module == NULL || (o->token == NULL) == (o->slot < 0)))) {
		fprintf(stderr,
		        "hsmgate-bench: need --op, and for PKCS #11 operations --module and one "
		        "of --token/--slot (see --help)\n");
		return BENCH_ERR_USAGE;
	}
	if (need_module && (unsigned long)o->threads * o->inflight > MAX_APP_THREADS) {
		fprintf(stderr, "hsmgate-bench: threads × inflight is at most %d\n",
		        MAX_APP_THREADS);
		return BENCH_ERR_USAGE;
	}
	if ((unsigned long)o->threads * o->inflight > MAX_LOCAL_INFLIGHT) {
		/* the log's default queue_max: more would be refused as back-pressure */
		fprintf(stderr,
		        "hsmgate-bench: threads × inflight is at most %d for audit-append\n",
		        MAX_LOCAL_INFLIGHT);
		return BENCH_ERR_USAGE;
	}
	if (o->label == NULL && o->module == NULL) {
		o->label = "in-process";
	} else if (o->label == NULL) {
		o->label =
		        strrchr(o->module, '/') != NULL ? strrchr(o->module, '/') + 1 : o->module;
	}
	return 0;
}

/* ---- module ---------------------------------------------------------------------------------- */

static int
module_load(const struct opts *o, void **so, CK_FUNCTION_LIST_PTR *p11, CK_SLOT_ID *slot)
{
	CK_C_GetFunctionList getfl;
	CK_C_INITIALIZE_ARGS args;
	CK_RV rv;

	if ((*so = dlopen(o->module, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		fprintf(stderr, "hsmgate-bench: dlopen %s: %s\n", o->module, dlerror());
		return BENCH_ERR_MODULE;
	}
	if ((getfl = (CK_C_GetFunctionList)dlsym(*so, "C_GetFunctionList")) == NULL ||
	    getfl(p11) != CKR_OK) {
		fprintf(stderr, "hsmgate-bench: %s has no usable C_GetFunctionList\n", o->module);
		return BENCH_ERR_MODULE;
	}
	/* the workers call concurrently: the module must do its own locking (§5.4) */
	memset(&args, 0, sizeof(args));
	args.flags = CKF_OS_LOCKING_OK;
	if ((rv = (*p11)->C_Initialize(&args)) != CKR_OK) {
		fprintf(stderr, "hsmgate-bench: C_Initialize: %s\n", bench_ckr_name(rv));
		return BENCH_ERR_MODULE;
	}
	if (o->token == NULL) {
		*slot = (CK_SLOT_ID)o->slot;
		return 0;
	}
	if ((rv = bench_slot_by_label(*p11, o->token, slot)) == CKR_TOKEN_NOT_PRESENT) {
		fprintf(stderr, "hsmgate-bench: no token labelled '%s'\n", o->token);
		return BENCH_ERR_TOKEN;
	}
	if (rv != CKR_OK) {
		fprintf(stderr, "hsmgate-bench: C_GetSlotList: %s\n", bench_ckr_name(rv));
		return BENCH_ERR_TOKEN;
	}
	return 0;
}

CK_RV
bench_slot_by_label(CK_FUNCTION_LIST_PTR p11, const char *label, CK_SLOT_ID *slot)
{
	CK_SLOT_ID slots[256];
	CK_ULONG n = 256, i;
	CK_TOKEN_INFO ti;
	char want[32];
	size_t len;
	CK_RV rv;

	if ((rv = p11->C_GetSlotList(CK_TRUE, slots, &n)) != CKR_OK) {
		return rv;
	}
	/* token labels are blank-padded, not NUL-terminated (§3.2 CK_TOKEN_INFO) */
	memset(want, ' ', sizeof(want));
	len = strlen(label);
	memcpy(want, label, len < sizeof(want) ? len : sizeof(want));
	for (i = 0; i < n; i++) {
		if (p11->C_GetTokenInfo(slots[i], &ti) == CKR_OK &&
		    memcmp(ti.label, want, sizeof(want)) == 0) {
			*slot = slots[i];
			return CKR_OK;
		}
	}
	return CKR_TOKEN_NOT_PRESENT;
}

/* ---- one operation --------------------------------------------------------------------------- */

static void
sleep_until(uint64_t t)
{
	struct timespec ts = {(time_t)(t / 1000000000u), (long)(t % 1000000000u)};

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
		continue;
	}
}

static void *
worker_main(void *arg)
{
	struct bench_worker *w = arg;
	struct bench_ctx *ctx = w->ctx;
	const struct bench_op *op = ctx->op;
	uint64_t t0, t1;
	CK_RV rv = CKR_OK;
	int ok;

	if (!op->own_session) {
		rv = ctx->p11->C_OpenSession(ctx->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL,
		                             NULL, &w->session);
		if (rv != CKR_OK) {
			w->rv = rv;
			bench_worker_fail(w, "from C_OpenSession");
		}
	}
	if (rv == CKR_OK) {
		rv = op->setup(w);
	}
	if (rv != CKR_OK && w->rv == CKR_OK && !w->wrong) {
		w->rv = rv;
		bench_worker_fail(w, "in set-up");
	}
	ok = rv == CKR_OK;

	pthread_mutex_lock(&ctx->lock);
	w->ready = 1;
	ctx->nready++;
	pthread_cond_broadcast(&ctx->cond);
	while (!ctx->go && !atomic_load(&ctx->stop)) {
		pthread_cond_wait(&ctx->cond, &ctx->lock);
	}
	pthread_mutex_unlock(&ctx->lock);

	while (ok && !atomic_load_explicit(&ctx->stop, memory_order_relaxed)) {
		t0 = bench_now_ns();
		rv = op->call(w);
		t1 = bench_now_ns();
		if (rv != CKR_OK || w->wrong) {
			if (w->rv == CKR_OK && !w->wrong) {
				w->rv = rv;
			}
			bench_worker_fail(w, "after %llu timed calls",
			                  (unsigned long long)w->calls);
			break;
		}
		if (t0 >= ctx->t_measure && t1 <= ctx->t_end) {
			bench_hist_add(&w->hist, t1 - t0);
			w->calls++;
		}
		if (t1 > ctx->t_end) {
			break;
		}
	}
	if (w->session != CK_INVALID_HANDLE) {
		ctx->p11->C_CloseSession(w->session);
	}
	return NULL;
}

/* The result of the failed workers: a wrong answer first, then a failure, then unsupported. */
static void
collect_failure(struct result *res, struct bench_worker *ws, unsigned n)
{
	unsigned i, pick = n;

	for (i = 0; i < n; i++) {
		if (ws[i].wrong) {
			res->status = ST_WRONG;
			pick = i;
			break;
		}
		if (ws[i].rv != CKR_OK) {
			if (!bench_rv_unsupported(ws[i].rv)) {
				res->status = ST_FAILED;
				pick = i;
			} else if (pick == n) {
				res->status = ST_UNSUPPORTED;
				pick = i;
			}
		}
	}
	if (pick < n) {
		snprintf(res->msg, sizeof(res->msg), "%s %s, worker %u",
		         res->status == ST_WRONG ? "WRONG RESULT:" : bench_ckr_name(ws[pick].rv),
		         ws[pick].msg, pick);
	}
}

static void
describe(struct result *res, const struct bench_worker *w)
{
	switch (w->mech) {
	case CKM_SHA256_RSA_PKCS:
		snprintf(res->note, sizeof(res->note), "CKM_SHA256_RSA_PKCS");
		break;
	case CKM_RSA_PKCS:
		snprintf(res->note, sizeof(res->note), "CKM_RSA_PKCS+DigestInfo");
		break;
	case CKM_SHA256_RSA_PKCS_PSS:
		snprintf(res->note, sizeof(res->note), "CKM_SHA256_RSA_PKCS_PSS");
		break;
	case CKM_RSA_PKCS_PSS:
		snprintf(res->note, sizeof(res->note), "CKM_RSA_PKCS_PSS");
		break;
	default:
		break;
	}
	if (strcmp(res->op->name, "rsa2048-oaep-decrypt") == 0) {
		snprintf(res->note, sizeof(res->note), "OAEP %s",
		         w->variant == 0 ? "SHA-256" : "SHA-1");
	} else if (strcmp(res->op->name, "hmac-sha256-1k") == 0 && w->variant == 1) {
		snprintf(res->note, sizeof(res->note),
		         "key import refused (%s): generated key, checked by C_Verify",
		         bench_ckr_name(w->variant_rv));
	}
}

static int
run_op(const struct opts *o, CK_FUNCTION_LIST_PTR p11, CK_SLOT_ID slot, const struct bench_op *op,
       struct result *res)
{
	unsigned n = o->threads * o->inflight, i, started = 0;
	struct bench_worker *ws = NULL;
	struct bench_procs *p0 = NULL;
	CK_SESSION_HANDLE login = CK_INVALID_HANDLE;
	struct bench_ctx ctx;
	struct rusage ru0, ru1;
	uint64_t now;
	CK_RV rv;
	int r = BENCH_ERR_SYS;

	memset(res, 0, sizeof(*res));
	memset(&ctx, 0, sizeof(ctx));
	res->op = op;
	ctx.p11 = p11;
	ctx.slot = slot;
	ctx.op = op;
	ctx.pin = o->pin;
	ctx.pin_len = o->pin != NULL ? strlen(o->pin) : 0;
	atomic_init(&ctx.stop, 0);
	pthread_mutex_init(&ctx.lock, NULL);
	pthread_cond_init(&ctx.cond, NULL);

	if (op->needs_login && o->pin == NULL) {
		res->status = ST_FAILED;
		snprintf(res->msg, sizeof(res->msg), "needs --pin or --pin-file");
		r = 0;
		goto out;
	}
	/* Login state is per application (§5.6): one logged-in session held for the whole run
	 * makes every worker session a user session. Not for "session", which logs in itself. */
	if (op->needs_login && !op->own_session) {
		if ((rv = p11->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL,
		                             &login)) != CKR_OK ||
		    ((rv = p11->C_Login(login, CKU_USER, (unsigned char *)o->pin,
		                        strlen(o->pin))) != CKR_OK &&
		     rv != CKR_USER_ALREADY_LOGGED_IN)) {
			fprintf(stderr, "hsmgate-bench: login: %s\n", bench_ckr_name(rv));
			r = BENCH_ERR_TOKEN;
			goto out;
		}
	}
	if ((ws = calloc(n, sizeof(*ws))) == NULL || (p0 = calloc(1, sizeof(*p0))) == NULL) {
		goto out;
	}
	for (i = 0; i < n; i++) {
		ws[i].id = i;
		ws[i].ctx = &ctx;
		ws[i].session = CK_INVALID_HANDLE;
		if (pthread_create(&ws[i].thread, NULL, worker_main, &ws[i]) != 0) {
			break;
		}
		started++;
	}
	pthread_mutex_lock(&ctx.lock);
	while (ctx.nready < started) {
		pthread_cond_wait(&ctx.cond, &ctx.lock);
	}
	collect_failure(res, ws, started);
	if (started < n && res->status == ST_OK) {
		res->status = ST_FAILED;
		snprintf(res->msg, sizeof(res->msg), "could only start %u of %u threads", started,
		         n);
	}
	if (res->status != ST_OK) {
		atomic_store(&ctx.stop, 1);
	} else {
		now = bench_now_ns();
		ctx.t_measure = now + (uint64_t)(o->warmup * 1e9);
		ctx.t_end = ctx.t_measure + (uint64_t)(o->duration * 1e9);
		ctx.go = 1;
	}
	pthread_cond_broadcast(&ctx.cond);
	pthread_mutex_unlock(&ctx.lock);

	if (res->status == ST_OK) {
		sleep_until(ctx.t_measure);
		getrusage(RUSAGE_SELF, &ru0);
		if (o->nserver > 0 && bench_procs_snapshot(o->server, o->nserver, p0) != 0) {
			fprintf(stderr, "hsmgate-bench: warning: a --server-pid cannot be read\n");
		}
		sleep_until(ctx.t_end);
		getrusage(RUSAGE_SELF, &ru1);
		if (o->nserver > 0 &&
		    bench_procs_snapshot(o->server, o->nserver, &res->procs) != 0) {
			fprintf(stderr, "hsmgate-bench: warning: a --server-pid cannot be read\n");
		}
		atomic_store(&ctx.stop, 1);
		res->secs = o->duration;
		res->cli_cpu = (double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec +
		                        ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) +
		               (double)(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec +
		                        ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec) /
		                       1e6;
		res->cli_maxrss_kib = ru1.ru_maxrss;
		res->srv_cpu = bench_procs_cpu_delta(p0, &res->procs);
	}
	for (i = 0; i < started; i++) {
		pthread_join(ws[i].thread, NULL);
	}
	if (res->status == ST_OK) {
		/* a failure during the timed run voids the figure */
		collect_failure(res, ws, started);
		for (i = 0; i < started; i++) {
			bench_hist_merge(&res->hist, &ws[i].hist);
		}
		res->calls = res->hist.count;
		if (started > 0) {
			describe(res, &ws[0]);
		}
	}
	r = 0;
out:
	if (login != CK_INVALID_HANDLE) {
		p11->C_CloseSession(login);
	}
	free(p0);
	free(ws);
	pthread_cond_destroy(&ctx.cond);
	pthread_mutex_destroy(&ctx.lock);
	return r;
}

/* An in-process operation (audit.c), reported like the others. */
static int
run_local(const struct opts *o, const struct bench_local_op *lop, struct result *res)
{
	struct bench_local_args a;
	struct bench_local_result *lr;
	struct rusage ru;
	int r;

	memset(res, 0, sizeof(*res));
	res->local = lop;
	memset(&a, 0, sizeof(a));
	a.threads = o->threads;
	a.inflight = o->inflight;
	a.duration = o->duration;
	a.warmup = o->warmup;
	a.dir = o->audit_dir;
	a.events = o->audit_events;
	if ((lr = calloc(1, sizeof(*lr))) == NULL) {
		return BENCH_ERR_SYS;
	}
	if ((r = lop->run(&a, lr)) == 0) {
		res->status = lr->status == BENCH_LOCAL_OK      ? ST_OK
		              : lr->status == BENCH_LOCAL_WRONG ? ST_WRONG
		                                                : ST_FAILED;
		snprintf(res->msg, sizeof(res->msg), "%s", lr->msg);
		snprintf(res->note, sizeof(res->note), "%s", lr->note);
		res->calls = lr->calls;
		res->secs = lr->secs > 0 ? lr->secs : o->duration;
		res->hist = lr->hist;
		res->cli_cpu = lr->cpu_s;
		getrusage(RUSAGE_SELF, &ru);
		res->cli_maxrss_kib = ru.ru_maxrss;
	}
	free(lr);
	return r;
}

static const char *
result_name(const struct result *res)
{
	return res->local != NULL ? res->local->name : res->op->name;
}

/* ---- output ---------------------------------------------------------------------------------- */

void
bench_json_str(const char *s)
{
	putchar('"');
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			printf("\\%c", c);
		} else if (c < 0x20) {
			printf("\\u%04x", c);
		} else {
			putchar(c);
		}
	}
	putchar('"');
}

static const char *
status_name(enum status s)
{
	switch (s) {
	case ST_OK:
		return "ok";
	case ST_UNSUPPORTED:
		return "unsupported";
	case ST_FAILED:
		return "failed";
	case ST_WRONG:
		return "wrong";
	default:
		return "?";
	}
}

static uint64_t
procs_hwm(const struct bench_procs *ps)
{
	uint64_t sum = 0;
	size_t i;

	for (i = 0; i < ps->n; i++) {
		sum += ps->p[i].hwm_kib;
	}
	return sum;
}

static void
print_table_header(const struct opts *o)
{
	if (o->module == NULL) {
		/* in-process operations only: K is records in flight per thread, not threads */
		printf("# hsmgate-bench %s: no module (in-process), %u thread(s) x %u in flight, "
		       "%.1f s "
		       "measured after %.1f s warm-up\n",
		       o->label, o->threads, o->inflight, o->duration, o->warmup);
	} else {
		printf("# hsmgate-bench %s: module %s, %u thread(s) x %u in flight = %u "
		       "application "
		       "threads, "
		       "%.1f s measured after %.1f s warm-up\n",
		       o->label, o->module, o->threads, o->inflight, o->threads * o->inflight,
		       o->duration, o->warmup);
	}
	printf("# latency in us; cpu in us per op (client process / --server-pid processes); rss = "
	       "sum of "
	       "server VmHWM in KiB\n");
	printf("%-22s %4s %4s %9s %10s %9s %9s %9s %8s %8s %9s  %s\n", "op", "thr", "infl", "calls",
	       "ops/s", "p50", "p99", "p99.9", "cli_cpu", "srv_cpu", "srv_rss", "note");
}

static void
print_table_row(const struct opts *o, const struct result *res)
{
	if (res->status != ST_OK) {
		printf("%-22s %4u %4u %s (%s)\n", result_name(res), o->threads, o->inflight,
		       status_name(res->status), res->msg);
		return;
	}
	char srv_cpu[32] = "-", srv_rss[32] = "-";

	/* without --server-pid there is no server to measure: "-" rather than a misleading 0 */
	if (o->nserver > 0) {
		snprintf(srv_cpu, sizeof(srv_cpu), "%.1f",
		         res->calls > 0 ? res->srv_cpu * 1e6 / (double)res->calls : 0.0);
		snprintf(srv_rss, sizeof(srv_rss), "%llu",
		         (unsigned long long)procs_hwm(&res->procs));
	}
	printf("%-22s %4u %4u %9llu %10.1f %9.1f %9.1f %9.1f %8.1f %8s %9s  %s\n", result_name(res),
	       o->threads, o->inflight, (unsigned long long)res->calls,
	       (double)res->calls / res->secs, (double)bench_hist_quantile(&res->hist, 0.50) / 1e3,
	       (double)bench_hist_quantile(&res->hist, 0.99) / 1e3,
	       (double)bench_hist_quantile(&res->hist, 0.999) / 1e3,
	       res->calls > 0 ? res->cli_cpu * 1e6 / (double)res->calls : 0.0, srv_cpu, srv_rss,
	       res->note);
	if (o->nserver > 0) {
		size_t i;

		printf("#   server processes:");
		for (i = 0; i < res->procs.n; i++) {
			printf(" %s[%d]=%lluKiB", res->procs.p[i].comm, (int)res->procs.p[i].pid,
			       (unsigned long long)res->procs.p[i].hwm_kib);
		}
		printf("\n");
	}
	fflush(stdout);
}

static void
print_json(const struct opts *o, const struct result *res, size_t n)
{
	size_t i, j;

	printf("{\"tool\":\"hsmgate-bench\",\"label\":");
	bench_json_str(o->label);
	printf(",\"module\":");
	if (o->module != NULL) {
		bench_json_str(o->module);
	} else {
		printf("null");
	}
	printf(",\"threads\":%u,\"inflight\":%u,\"app_threads\":%u,\"duration_s\":%g,\"warmup_s\":%"
	       "g,\"results\":[",
	       o->threads, o->inflight, o->threads * o->inflight, o->duration, o->warmup);
	for (i = 0; i < n; i++) {
		const struct result *r = &res[i];

		printf("%s{\"op\":", i > 0 ? "," : "");
		bench_json_str(result_name(r));
		printf(",\"status\":\"%s\"", status_name(r->status));
		if (r->status != ST_OK) {
			printf(",\"message\":");
			bench_json_str(r->msg);
			printf("}");
			continue;
		}
		printf(",\"calls\":%llu,\"ops_per_s\":%.2f,\"mean_us\":%.2f,\"p50_us\":%.2f,\"p99_"
		       "us\":%.2f,"
		       "\"p999_us\":%.2f,\"max_us\":%.2f,\"client_cpu_s\":%.3f,\"server_cpu_s\":%."
		       "3f,"
		       "\"client_cpu_us_per_op\":%.2f,\"server_cpu_us_per_op\":%.2f,\"client_"
		       "maxrss_kib\":%ld,"
		       "\"server_rss_kib\":%llu,\"note\":",
		       (unsigned long long)r->calls, (double)r->calls / r->secs,
		       r->calls > 0 ? (double)r->hist.sum_ns / (double)r->calls / 1e3 : 0.0,
		       (double)bench_hist_quantile(&r->hist, 0.50) / 1e3,
		       (double)bench_hist_quantile(&r->hist, 0.99) / 1e3,
		       (double)bench_hist_quantile(&r->hist, 0.999) / 1e3,
		       (double)r->hist.max_ns / 1e3, r->cli_cpu, r->srv_cpu,
		       r->calls > 0 ? r->cli_cpu * 1e6 / (double)r->calls : 0.0,
		       r->calls > 0 ? r->srv_cpu * 1e6 / (double)r->calls : 0.0, r->cli_maxrss_kib,
		       (unsigned long long)procs_hwm(&r->procs));
		bench_json_str(r->note);
		printf(",\"server_procs\":[");
		for (j = 0; j < r->procs.n; j++) {
			printf("%s{\"pid\":%d,\"comm\":", j > 0 ? "," : "", (int)r->procs.p[j].pid);
			bench_json_str(r->procs.p[j].comm);
			printf(",\"hwm_kib\":%llu}", (unsigned long long)r->procs.p[j].hwm_kib);
		}
		printf("]}");
	}
	printf("]}\n");
}

/* ---- --op idle-conns (idle.c) ---------------------------------------------------------------
 * The operation measured beside the held connections is ecdsa-p256-sign (issue 6's figure), run
 * as any --op with --threads × --inflight. This process loads the module only at its first
 * run, i.e. after idle.c has forked every holder. */
struct idle_hook {
	const struct opts *o;
	void **so;
	CK_FUNCTION_LIST_PTR *p11;
	CK_SLOT_ID slot;
	const struct bench_op *op;
};

static int
idle_measure(void *arg, struct bench_idle_sample *s)
{
	struct idle_hook *h = arg;
	struct result *res;
	int r;

	memset(s, 0, sizeof(*s));
	if (*h->p11 == NULL && (r = module_load(h->o, h->so, h->p11, &h->slot)) != 0) {
		return r;
	}
	if ((res = calloc(1, sizeof(*res))) == NULL) {
		return BENCH_ERR_SYS;
	}
	if ((r = run_op(h->o, *h->p11, h->slot, h->op, res)) == 0) {
		s->ok = res->status == ST_OK && res->calls > 0 && res->secs > 0;
		if (res->status != ST_OK) {
			snprintf(s->msg, sizeof(s->msg), "%.12s (%.280s)", status_name(res->status),
			         res->msg);
		} else if (!s->ok) {
			snprintf(s->msg, sizeof(s->msg),
			         "no call completed in the measured window");
		} else {
			s->calls = res->calls;
			s->ops_per_s = (double)res->calls / res->secs;
			s->p50_us = (double)bench_hist_quantile(&res->hist, 0.50) / 1e3;
			s->p99_us = (double)bench_hist_quantile(&res->hist, 0.99) / 1e3;
			s->srv_cpu_us_per_op = res->srv_cpu * 1e6 / (double)res->calls;
		}
	}
	free(res);
	return r;
}

static int
run_idle(const struct opts *o, void **so, CK_FUNCTION_LIST_PTR *p11)
{
	struct idle_hook h = {o, so, p11, 0, bench_op_find("ecdsa-p256-sign")};
	struct bench_idle_args a;

	memset(&a, 0, sizeof(a));
	a.module = o->module;
	a.token = o->token;
	a.slot = o->slot;
	a.pin = o->pin;
	a.conns = o->conns;
	a.batch = o->conn_batch;
	a.server = o->server;
	a.nserver = o->nserver;
	a.label = o->label;
	a.json = o->json;
	a.measure_name = h.op->name;
	a.threads = o->threads;
	a.inflight = o->inflight;
	a.duration = o->duration;
	a.warmup = o->warmup;
	a.rounds = o->rounds;
	a.measure = idle_measure;
	a.measure_arg = &h;
	return bench_idle_run(&a);
}

int
main(int argc, char **argv)
{
	CK_FUNCTION_LIST_PTR p11 = NULL;
	struct result *res = NULL;
	CK_SLOT_ID slot = 0;
	struct opts o;
	void *so = NULL;
	size_t i;
	int r, bad = 0;

	if ((r = parse_opts(argc, argv, &o)) != 0) {
		if (r == BENCH_ERR_USAGE) {
			usage(stderr);
		}
		/* a refused command line may still have taken the PIN */
		if (o.pin != NULL) {
			OPENSSL_cleanse(o.pin, strlen(o.pin));
			free(o.pin);
		}
		return 2;
	}
	if (o.idle) {
		/* 1: the report says what failed */
		if ((r = run_idle(&o, &so, &p11)) == 1) {
			bad = 1;
			r = 0;
		}
		goto out;
	}
	if ((res = calloc(o.nops, sizeof(*res))) == NULL) {
		fprintf(stderr, "hsmgate-bench: %s\n", bench_strerror(BENCH_ERR_SYS));
		return 2;
	}
	for (i = 0; i < o.nops; i++) {
		if (o.ops[i] != NULL && p11 == NULL &&
		    (r = module_load(&o, &so, &p11, &slot)) != 0) {
			goto out;
		}
	}
	if (!o.json) {
		print_table_header(&o);
	}
	for (i = 0; i < o.nops; i++) {
		r = o.local[i] != NULL ? run_local(&o, o.local[i], &res[i])
		                       : run_op(&o, p11, slot, o.ops[i], &res[i]);
		if (r != 0) {
			goto out;
		}
		if (res[i].status == ST_FAILED || res[i].status == ST_WRONG) {
			bad = 1;
		}
		if (!o.json) {
			print_table_row(&o, &res[i]);
		}
	}
	if (o.json) {
		print_json(&o, res, o.nops);
	}
	r = 0;
out:
	if (r != 0) {
		fprintf(stderr, "hsmgate-bench: %s\n", bench_strerror(r));
	}
	if (p11 != NULL) {
		p11->C_Finalize(NULL);
	}
	/* the module stays mapped: some modules leave threads behind after C_Finalize, and the
	 * process exits next anyway */
	if (o.pin != NULL) {
		OPENSSL_cleanse(o.pin, strlen(o.pin));
		free(o.pin);
	}
	free(res);
	(void)so;
	return r != 0 ? 2 : (bad ? 1 : 0);
}
