/*
 * hsm-partitions/main.c — hsmgate-worker: serves one partition's token on the socketpair
 * the gateway (its supervisor) hands it.
 *
 *   hsmgate-worker --config FILE --partition NAME --fd N
 *
 * The partition's backend: `soft` (default) serves hsmgate's own token (part_worker_*);
 * `pkcs11` forwards to a vendor module's token (part_pt_*, passthrough.c), on the same loop.
 *
 * Exit status: 0 when the gateway closes the socket (it went away or stops the worker),
 * 1 on a start-up error (config, store), 2 when the IPC framing is broken (an internal bug:
 * the supervisor restarts the worker). Client input never ends the worker.
 */
#include "config/cfg.h"
#include "hsm-partitions/part.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

/* crypto_threads left out: one per online CPU, up to this many. */
#define CRYPTO_THREADS_AUTO_MAX 16

static void
usage(FILE *f)
{
	fprintf(f, "usage: hsmgate-worker --config FILE --partition NAME --fd N\n"
	           "\n"
	           "Serves the token of partition NAME (from the hsmgated config FILE) over the\n"
	           "socket N that hsmgated passes. Started by hsmgated; not meant to be run by "
	           "hand.\n");
}

/* partitions[].crypto_threads, or one per online CPU (up to CRYPTO_THREADS_AUTO_MAX). */
static unsigned
crypto_threads(const struct cfg_partition *p)
{
	long ncpu;

	if (p->crypto_threads != 0) {
		return p->crypto_threads;
	}
	ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	return ncpu < 1                         ? 1
	       : ncpu > CRYPTO_THREADS_AUTO_MAX ? CRYPTO_THREADS_AUTO_MAX
	                                        : (unsigned)ncpu;
}

/* Slower, not wrong: every call is then served on the loop thread. */
static void
no_threads(const char *partition, int r)
{
	fprintf(stderr, "hsmgate-worker: partition %s: no crypto threads (%s); serving in line\n",
	        partition, part_strerror(r));
}

/* backend: pkcs11 — the vendor module's token behind the same IPC loop. The process
 * hardening of the soft worker (no dumps, no new privileges) applies too: the vendor module
 * holds the PIN-derived login state in this process. Exit status as for the soft worker. */
static int
serve_passthrough(const struct cfg_daemon *cfg, const struct cfg_partition *p, int fd)
{
	struct rlimit rl = {0, 0};
	struct part_pt_opts po;
	struct part_pt *pt = NULL;
	int r;

	if (p->module == NULL || p->token == NULL) {
		fprintf(stderr,
		        "hsmgate-worker: partition %s: backend pkcs11 needs module and token\n",
		        p->name);
		return 1;
	}
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0 || setrlimit(RLIMIT_CORE, &rl) != 0) {
		fprintf(stderr, "hsmgate-worker: partition %s: %s\n", p->name,
		        part_strerror(PART_ERR_SYS));
		return 1;
	}
	memset(&po, 0, sizeof(po));
	po.partition = p->name;
	po.module = p->module;
	po.token = p->token;
	po.slot = p->slot;
	po.max_frame = cfg->limits.max_frame;
	if ((r = part_pt_open(&po, &pt)) != 0) {
		fprintf(stderr, "hsmgate-worker: partition %s: %s\n", p->name, part_strerror(r));
		return 1;
	}
	/* After the vendor's C_Initialize, which may legitimately exec helpers or raise
	 * privileges (some HSM clients do); nothing after it may. */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
		part_pt_free(pt);
		return 1;
	}
	if ((r = part_pt_threads(pt, crypto_threads(p))) != 0) {
		no_threads(p->name, r);
	}
	r = part_pt_serve(pt, fd);
	part_pt_free(pt);
	if (r == 0) {
		return 0;
	}
	fprintf(stderr, "hsmgate-worker: partition %s: %s\n", p->name, part_strerror(r));
	return r == PART_ERR_IPC ? 2 : 1;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
	        {"config", required_argument, NULL, 'c'},
	        {"partition", required_argument, NULL, 'p'},
	        {"fd", required_argument, NULL, 'f'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	const char *config = NULL, *partition = NULL;
	const struct cfg_partition *p;
	struct part_worker_opts wo;
	struct cfg_daemon *cfg = NULL;
	struct part_worker *w = NULL;
	char err[512], *end;
	unsigned threads;
	long fd = -1;
	int c, r;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			config = optarg;
			break;
		case 'p':
			partition = optarg;
			break;
		case 'f':
			errno = 0;
			fd = strtol(optarg, &end, 10);
			if (errno != 0 || *end != '\0' || fd < 0 || fd > INT_MAX) {
				fd = -1;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 1;
		}
	}
	if (config == NULL || partition == NULL || fd < 0 || optind != argc) {
		usage(stderr);
		return 1;
	}
	if (fcntl((int)fd, F_GETFD) < 0) {
		fprintf(stderr, "hsmgate-worker: --fd %ld: %s\n", fd, strerror(errno));
		return 1;
	}
	/* A write to a gateway that went away must be an error, not a signal. */
	signal(SIGPIPE, SIG_IGN);
	if (cfg_daemon_load(config, &cfg, err, sizeof(err)) != 0) {
		fprintf(stderr, "hsmgate-worker: %s\n", err);
		return 1;
	}
	if ((p = cfg_partition_find(cfg, partition)) == NULL) {
		fprintf(stderr, "hsmgate-worker: %s: no partition '%s'\n", config, partition);
		cfg_daemon_free(cfg);
		return 1;
	}
	if (p->backend != NULL && strcmp(p->backend, "pkcs11") == 0) {
		r = serve_passthrough(cfg, p, (int)fd);
		cfg_daemon_free(cfg);
		return r;
	}
	if (p->backend != NULL && strcmp(p->backend, "soft") != 0) {
		fprintf(stderr, "hsmgate-worker: partition %s: unknown backend '%s'\n", partition,
		        p->backend);
		cfg_daemon_free(cfg);
		return 1;
	}
	memset(&wo, 0, sizeof(wo));
	wo.partition = p->name;
	wo.tenant = p->tenant;
	wo.store_dir = p->store;
	wo.token_label = p->token_label;
	wo.slot = p->slot;
	wo.max_frame = cfg->limits.max_frame;
	/* The worker copies what it keeps, so the config can go right after. */
	r = part_worker_start(&wo, &w);
	threads = crypto_threads(p);
	cfg_daemon_free(cfg);
	if (r != 0) {
		fprintf(stderr, "hsmgate-worker: partition %s: %s\n", partition, part_strerror(r));
		return 1;
	}
	if ((r = part_worker_threads(w, threads)) != 0) {
		no_threads(partition, r);
	}
	r = part_worker_serve(w, (int)fd);
	part_worker_free(w);
	if (r == 0) {
		return 0;
	}
	fprintf(stderr, "hsmgate-worker: partition %s: %s\n", partition, part_strerror(r));
	return r == PART_ERR_IPC ? 2 : 1;
}
