/*
 * tools/hsmctl/main.c — hsmctl, the administration tool.
 *
 *   hsmctl token init --config FILE --partition NAME [--label L]
 *                     --so-pin-file F --user-pin-file F [--force]
 *   hsmctl apikey new
 *   hsmctl apikey hash [--key-file F]
 *
 * `token init` writes the partition's store directly and is meant to run before hsmgated
 * starts (the worker reads the store at start). PIN and key files hold the secret on their
 * first line; a trailing newline is not part of it. Secrets are wiped after use and never
 * printed, except the new API key that `apikey new` exists to print.
 */
#include "config/cfg.h"
#include "hsm-partitions/part.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#define SECRET_MAX 4096

static const char usage_main[] =
        "usage: hsmctl <command> [options]\n"
        "\n"
        "commands:\n"
        "  token init   initialise a partition's token in its store (before hsmgated starts)\n"
        "  apikey new   print a new API key and the hash to put in hsmgated.yaml\n"
        "  apikey hash  print the hash of an existing API key\n"
        "\n"
        "`hsmctl <command> --help` describes each command.\n";

static const char usage_token_init[] =
        "usage: hsmctl token init --config FILE --partition NAME [--label LABEL]\n"
        "                         --so-pin-file FILE --user-pin-file FILE [--force]\n"
        "\n"
        "Initialises the token of partition NAME of the hsmgated config FILE directly in its\n"
        "store: label (default: the partition's token_label), SO PIN and user PIN, each read from\n"
        "the first line of its file (4 to 255 bytes). Run it before hsmgated starts.\n"
        "An initialised token is left alone unless --force is given, which destroys every\n"
        "object of the token.\n";

static const char usage_apikey_new[] =
        "usage: hsmctl apikey new\n"
        "\n"
        "Prints a new random API key (line 1: give it to the client, keep it secret) and its\n"
        "salted hash (line 2: put it under the principal's api_keys in hsmgated.yaml).\n";

static const char usage_apikey_hash[] =
        "usage: hsmctl apikey hash [--key-file FILE]\n"
        "\n"
        "Reads an API key from the first line of FILE (or of standard input) and prints its\n"
        "salted hash for hsmgated.yaml.\n";

/* Reads the first line of `f` into buf[bufsz] (NUL-terminated, newline dropped). Returns
 * its length, or -1 (with a message naming `what`). The caller wipes buf. */
static long
read_secret(FILE *f, const char *what, char *buf, size_t bufsz)
{
	size_t n = 0;
	int ch;

	while ((ch = getc(f)) != EOF && ch != '\n') {
		if (n + 1 >= bufsz) {
			fprintf(stderr, "hsmctl: %s: first line longer than %zu bytes\n", what,
			        bufsz - 1);
			return -1;
		}
		buf[n++] = (char)ch;
	}
	if (ferror(f)) {
		fprintf(stderr, "hsmctl: %s: read error\n", what);
		return -1;
	}
	if (n > 0 && buf[n - 1] == '\r') {
		n--;
	}
	buf[n] = '\0';
	return (long)n;
}

static long
read_secret_file(const char *path, char *buf, size_t bufsz)
{
	FILE *f = fopen(path, "r");
	long n;

	if (f == NULL) {
		fprintf(stderr, "hsmctl: %s: %s\n", path, strerror(errno));
		return -1;
	}
	/* stdio's own buffer holds the secret too: unbuffered, it never does. */
	setvbuf(f, NULL, _IONBF, 0);
	n = read_secret(f, path, buf, bufsz);
	fclose(f);
	return n;
}

static int
cmd_token_init(int argc, char **argv)
{
	static const struct option opts[] = {
	        {"config", required_argument, NULL, 'c'},
	        {"partition", required_argument, NULL, 'p'},
	        {"label", required_argument, NULL, 'l'},
	        {"so-pin-file", required_argument, NULL, 's'},
	        {"user-pin-file", required_argument, NULL, 'u'},
	        {"force", no_argument, NULL, 'f'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	const char *config = NULL, *partition = NULL, *label = NULL, *so_file = NULL,
	           *user_file = NULL;
	char so[SECRET_MAX], user[SECRET_MAX], err[512];
	const struct cfg_partition *p;
	struct cfg_daemon *cfg = NULL;
	struct part_worker_opts wo;
	long so_len, user_len;
	int c, force = 0, r = 1;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			config = optarg;
			break;
		case 'p':
			partition = optarg;
			break;
		case 'l':
			label = optarg;
			break;
		case 's':
			so_file = optarg;
			break;
		case 'u':
			user_file = optarg;
			break;
		case 'f':
			force = 1;
			break;
		case 'h':
			fputs(usage_token_init, stdout);
			return 0;
		default:
			fputs(usage_token_init, stderr);
			return 1;
		}
	}
	if (config == NULL || partition == NULL || so_file == NULL || user_file == NULL ||
	    optind != argc) {
		fputs(usage_token_init, stderr);
		return 1;
	}
	if (label != NULL && strlen(label) > 32) {
		fprintf(stderr, "hsmctl: --label: at most 32 bytes\n");
		return 1;
	}
	memset(so, 0, sizeof(so));
	memset(user, 0, sizeof(user));
	if ((so_len = read_secret_file(so_file, so, sizeof(so))) < 0 ||
	    (user_len = read_secret_file(user_file, user, sizeof(user))) < 0) {
		goto out;
	}
	if (cfg_daemon_load(config, &cfg, err, sizeof(err)) != 0) {
		fprintf(stderr, "hsmctl: %s\n", err);
		goto out;
	}
	if ((p = cfg_partition_find(cfg, partition)) == NULL) {
		fprintf(stderr, "hsmctl: %s: no partition '%s'\n", config, partition);
		goto out;
	}
	if (p->backend != NULL && strcmp(p->backend, "soft") != 0) {
		fprintf(stderr, "hsmctl: partition %s: backend '%s' has no local token\n",
		        partition, p->backend);
		goto out;
	}
	memset(&wo, 0, sizeof(wo));
	wo.partition = p->name;
	wo.store_dir = p->store;
	wo.token_label = p->token_label;
	wo.slot = p->slot;
	switch ((c = part_token_provision(&wo, label, (const uint8_t *)so, (size_t)so_len,
	                                  (const uint8_t *)user, (size_t)user_len, force))) {
	case 0:
		printf("hsmctl: partition %s: token initialised in %s\n", partition, p->store);
		r = 0;
		break;
	case PART_ERR_EXISTS:
		fprintf(stderr,
		        "hsmctl: partition %s: token already initialised (--force "
		        "re-initialises it and destroys its objects)\n",
		        partition);
		break;
	case PART_ERR_PIN:
		fprintf(stderr, "hsmctl: PINs must be %d to %d bytes long\n", PART_PIN_MIN,
		        PART_PIN_MAX);
		break;
	default:
		fprintf(stderr, "hsmctl: partition %s: %s\n", partition, part_strerror(c));
		break;
	}
out:
	OPENSSL_cleanse(so, sizeof(so));
	OPENSSL_cleanse(user, sizeof(user));
	cfg_daemon_free(cfg);
	return r;
}

static int
cmd_apikey_new(int argc, char **argv)
{
	char key[128], hash[CFG_APIKEY_HASH_MAX];
	int r;

	if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		fputs(usage_apikey_new, stdout);
		return 0;
	}
	if (argc != 1) {
		fputs(usage_apikey_new, stderr);
		return 1;
	}
	if ((r = cfg_apikey_new(key, sizeof(key))) != 0 ||
	    (r = cfg_apikey_hash(key, hash, sizeof(hash))) != 0) {
		fprintf(stderr, "hsmctl: %s\n", cfg_strerror(r));
		OPENSSL_cleanse(key, sizeof(key));
		return 1;
	}
	printf("%s\n%s\n", key, hash);
	OPENSSL_cleanse(key, sizeof(key));
	return 0;
}

static int
cmd_apikey_hash(int argc, char **argv)
{
	static const struct option opts[] = {
	        {"key-file", required_argument, NULL, 'k'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	char key[SECRET_MAX], hash[CFG_APIKEY_HASH_MAX];
	const char *file = NULL;
	long n;
	int c, r = 1;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'k':
			file = optarg;
			break;
		case 'h':
			fputs(usage_apikey_hash, stdout);
			return 0;
		default:
			fputs(usage_apikey_hash, stderr);
			return 1;
		}
	}
	if (optind != argc) {
		fputs(usage_apikey_hash, stderr);
		return 1;
	}
	memset(key, 0, sizeof(key));
	n = file != NULL ? read_secret_file(file, key, sizeof(key))
	                 : read_secret(stdin, "standard input", key, sizeof(key));
	if (n < 0) {
		goto out;
	}
	if (n == 0) {
		fprintf(stderr, "hsmctl: empty API key\n");
		goto out;
	}
	if ((c = cfg_apikey_hash(key, hash, sizeof(hash))) != 0) {
		fprintf(stderr, "hsmctl: %s\n", cfg_strerror(c));
		goto out;
	}
	printf("%s\n", hash);
	r = 0;
out:
	OPENSSL_cleanse(key, sizeof(key));
	return r;
}

int
main(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		fputs(usage_main, argc < 2 ? stderr : stdout);
		return argc < 2 ? 1 : 0;
	}
	if (argc >= 3 && strcmp(argv[1], "token") == 0 && strcmp(argv[2], "init") == 0) {
		return cmd_token_init(argc - 2, argv + 2);
	}
	if (argc >= 3 && strcmp(argv[1], "apikey") == 0 && strcmp(argv[2], "new") == 0) {
		return cmd_apikey_new(argc - 2, argv + 2);
	}
	if (argc >= 3 && strcmp(argv[1], "apikey") == 0 && strcmp(argv[2], "hash") == 0) {
		return cmd_apikey_hash(argc - 2, argv + 2);
	}
	fprintf(stderr, "hsmctl: unknown command '%s%s%s'\n\n", argv[1], argc >= 3 ? " " : "",
	        argc >= 3 ? argv[2] : "");
	fputs(usage_main, stderr);
	return 1;
}
