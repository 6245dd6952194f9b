/*
 * gateway/main.c — hsmgated: command line, config load, then the server (gateway/gw.h).
 */
#include "config/cfg.h"
#include "gateway/gw.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HSMGATED_VERSION "0.1.0"

static void
usage(FILE *f)
{
	fprintf(f, "usage: hsmgated --config FILE [--ready-file FILE] [--check]\n"
	           "       hsmgated --help | --version\n"
	           "\n"
	           "  --config FILE      the daemon configuration (YAML; see config/examples/)\n"
	           "  --ready-file FILE  once listening, write \"ADDRESS:PORT\\n\" there "
	           "(atomically);\n"
	           "                     with listen.port 0 this is how to learn the port\n"
	           "  --check            validate the configuration, policy, TLS files, worker "
	           "program\n"
	           "                     and audit sinks (cursor, TLS and token files); exit\n"
	           "\n"
	           "Signals: SIGTERM/SIGINT stop gracefully, SIGHUP reloads the configuration.\n"
	           "Logs go to stderr as key=value lines (HSMGATE_LOG_LEVEL=debug for more).\n");
}

/* Descriptors 0-2 must be open: otherwise a socketpair could land on fd 2 and a stray
 * log line would be written into a worker's channel. */
static void
stdio_ensure(void)
{
	int fd;

	while ((fd = open("/dev/null", O_RDWR)) >= 0 && fd <= 2) {
	}
	if (fd > 2) {
		close(fd);
	}
}

int
main(int argc, char **argv)
{
	const char *config = NULL, *ready = NULL;
	struct cfg_daemon *cfg = NULL;
	struct gw_server *srv = NULL;
	struct gw_opts opts;
	char err[1024];
	int i, check = 0, r;

	stdio_ensure();
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
			config = argv[++i];
		} else if (strcmp(argv[i], "--ready-file") == 0 && i + 1 < argc) {
			ready = argv[++i];
		} else if (strcmp(argv[i], "--check") == 0) {
			check = 1;
		} else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return 0;
		} else if (strcmp(argv[i], "--version") == 0) {
			printf("hsmgated %s (protocol %d)\n", HSMGATED_VERSION, 1);
			return 0;
		} else {
			fprintf(stderr, "hsmgated: unknown or incomplete argument '%s'\n", argv[i]);
			usage(stderr);
			return 2;
		}
	}
	if (config == NULL) {
		fprintf(stderr, "hsmgated: --config FILE is required\n");
		usage(stderr);
		return 2;
	}
	if ((r = cfg_daemon_load(config, &cfg, err, sizeof(err))) != 0) {
		fprintf(stderr, "hsmgated: %s\n", err);
		return 1;
	}
	if (check) {
		r = gw_config_check(cfg, NULL, err, sizeof(err));
		cfg_daemon_free(cfg);
		if (r != 0) {
			fprintf(stderr, "hsmgated: %s\n", err);
			return 1;
		}
		printf("hsmgated: %s: configuration OK\n", config);
		return 0;
	}
	memset(&opts, 0, sizeof(opts));
	opts.config_path = config;
	opts.ready_file = ready;
	if ((r = gw_server_new(cfg, &opts, &srv, err, sizeof(err))) != 0) {
		fprintf(stderr, "hsmgated: %s\n", err);
		cfg_daemon_free(cfg);
		return 1;
	}
	cfg = NULL; /* transferred */
	r = gw_server_run(srv);
	gw_server_free(srv);
	return r == 0 ? 0 : 1;
}
