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

enum status { ST_OK, ST_UNSUPPORTED, ST_FAILED, ST_WRONG };

struct result {
	const struct bench_op *op;
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
	const struct bench_op *ops[64];
	size_t nops;
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
	const struct bench_op *op;

	fprintf(f,
	        "usage: hsmgate-bench --module SO (--token LABEL | --slot ID) [--pin PIN | "
	        "--pin-file F]\n"
	        "                     --op NAME[,NAME...] [--threads T] [--inflight K]\n"
	        "                     [--duration S] [--warmup S] [--format table|json]\n"
	        "                     [--server-pid PID]... [--label NAME]\n"
	        "\n"
	        "  --module SO        PKCS #11 module to dlopen (ours, SoftHSMv2, p11-kit-client, "
	        "...)\n"
	        "  --token LABEL      the token by label (or --slot ID)\n"
	        "  --pin/--pin-file   user PIN; needed by every operation except random32 and\n"
	        "                     digest-sha256-4k (the file's trailing newline is ignored)\n"
	        "  --op NAME          operation(s), repeatable or comma-separated, or \"all\"\n"
	        "  --threads T        (default 1) and --inflight K (default 1): T × K application\n"
	        "                     threads, each with its own session and key. PKCS #11 calls "
	        "are\n"
	        "                     synchronous per thread, so K calls in flight need K "
	        "threads.\n"
	        "  --duration S       seconds measured per operation (default 5)\n"
	        "  --warmup S         seconds run but not counted first (default 1)\n"
	        "  --format F         table (default) or json\n"
	        "  --server-pid PID   a server process whose CPU time (with its descendants') over "
	        "the\n"
	        "                     measured window and peak RSS are reported; repeatable\n"
	        "  --label NAME       what to call this module in the output (default: file name)\n"
	        "\n"
	        "Operations:\n");
	for (op = bench_ops; op->name != NULL; op++) {
		fprintf(f, "  %-22s %s\n", op->name, op->what);
	}
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
	const struct bench_op *op;
	int r = 0;

	if ((copy = strdup(list)) == NULL) {
		return BENCH_ERR_SYS;
	}
	for (tok = strtok_r(copy, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
		if (strcmp(tok, "all") == 0) {
			for (op = bench_ops; op->name != NULL && o->nops < 64; op++) {
				o->ops[o->nops++] = op;
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
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	unsigned v;
	int c, r;

	memset(o, 0, sizeof(*o));
	o->slot = -1;
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
			r = parse_uint(optarg, MAX_APP_THREADS, &o->inflight);
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
	if (optind != argc || o->module == NULL || o->nops == 0 ||
	    (o->token == NULL) == (o->slot < 0)) {
		fprintf(stderr, "hsmgate-bench: need --module, --op and one of --token/--slot (see "
		                "--help)\n");
		return BENCH_ERR_USAGE;
	}
	if ((unsigned long)o->threads * o->inflight > MAX_APP_THREADS) {
		fprintf(stderr, "hsmgate-bench: threads × inflight is at most %d\n",
		        MAX_APP_THREADS);
		return BENCH_ERR_USAGE;
	}
	if (o->label == NULL) {
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
	CK_SLOT_ID slots[256];
	CK_ULONG n = 256, i;
	CK_TOKEN_INFO ti;
	char want[32];
	size_t len;
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
	if ((rv = (*p11)->C_GetSlotList(CK_TRUE, slots, &n)) != CKR_OK) {
		fprintf(stderr, "hsmgate-bench: C_GetSlotList: %s\n", bench_ckr_name(rv));
		return BENCH_ERR_TOKEN;
	}
	/* token labels are blank-padded, not NUL-terminated (§3.2 CK_TOKEN_INFO) */
	memset(want, ' ', sizeof(want));
	len = strlen(o->token);
	memcpy(want, o->token, len < sizeof(want) ? len : sizeof(want));
	for (i = 0; i < n; i++) {
		if ((*p11)->C_GetTokenInfo(slots[i], &ti) == CKR_OK &&
		    memcmp(ti.label, want, sizeof(want)) == 0) {
			*slot = slots[i];
			return 0;
		}
	}
	fprintf(stderr, "hsmgate-bench: no token labelled '%s'\n", o->token);
	return BENCH_ERR_TOKEN;
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

/* ---- output ---------------------------------------------------------------------------------- */

static void
json_str(const char *s)
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
	printf("# hsmgate-bench %s: module %s, %u thread(s) x %u in flight = %u application "
	       "threads, "
	       "%.1f s measured after %.1f s warm-up\n",
	       o->label, o->module, o->threads, o->inflight, o->threads * o->inflight, o->duration,
	       o->warmup);
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
		printf("%-22s %4u %4u %s (%s)\n", res->op->name, o->threads, o->inflight,
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
	printf("%-22s %4u %4u %9llu %10.1f %9.1f %9.1f %9.1f %8.1f %8s %9s  %s\n", res->op->name,
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
	json_str(o->label);
	printf(",\"module\":");
	json_str(o->module);
	printf(",\"threads\":%u,\"inflight\":%u,\"app_threads\":%u,\"duration_s\":%g,\"warmup_s\":%"
	       "g,\"results\":[",
	       o->threads, o->inflight, o->threads * o->inflight, o->duration, o->warmup);
	for (i = 0; i < n; i++) {
		const struct result *r = &res[i];

		printf("%s{\"op\":", i > 0 ? "," : "");
		json_str(r->op->name);
		printf(",\"status\":\"%s\"", status_name(r->status));
		if (r->status != ST_OK) {
			printf(",\"message\":");
			json_str(r->msg);
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
		json_str(r->note);
		printf(",\"server_procs\":[");
		for (j = 0; j < r->procs.n; j++) {
			printf("%s{\"pid\":%d,\"comm\":", j > 0 ? "," : "", (int)r->procs.p[j].pid);
			json_str(r->procs.p[j].comm);
			printf(",\"hwm_kib\":%llu}", (unsigned long long)r->procs.p[j].hwm_kib);
		}
		printf("]}");
	}
	printf("]}\n");
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
		return 2;
	}
	if ((res = calloc(o.nops, sizeof(*res))) == NULL) {
		fprintf(stderr, "hsmgate-bench: %s\n", bench_strerror(BENCH_ERR_SYS));
		return 2;
	}
	if ((r = module_load(&o, &so, &p11, &slot)) != 0) {
		goto out;
	}
	if (!o.json) {
		print_table_header(&o);
	}
	for (i = 0; i < o.nops; i++) {
		if ((r = run_op(&o, p11, slot, o.ops[i], &res[i])) != 0) {
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
