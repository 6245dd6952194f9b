/*
 * tests/fuzz/config_fuzz.c — libFuzzer target for config/: every input is loaded as a
 * daemon config and as a client config, from memory (cfg_*_load_buf), so the whole
 * pipeline runs — libyaml schema walk, libcyaml load, defaults, validation — and every
 * allocation must be freed whether the load succeeds or fails.
 *
 * Seeds: tests/fuzz/corpus/config/ (the examples and variants).
 */
#include "config/cfg.h"
#include "config/cfg_int.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cfg_daemon *d = NULL;
	struct cfg_client *c = NULL;
	char err[512];
	int r;

	/* A directory that does not exist: relative api_key_file names read nothing. */
	r = cfg_daemon_load_buf("/nonexistent-hsmgate-fuzz/hsmgated.yaml", (const char *)data, size,
	                        &d, err, sizeof(err));
	if (r == 0) {
		if (d == NULL || d->path == NULL || d->state_dir == NULL || d->audit == NULL) {
			abort();
		}
		cfg_daemon_free(d);
	} else if (d != NULL || r >= 0 || strncmp(err, "/nonexistent-hsmgate-fuzz/", 26) != 0) {
		abort();
	}
	r = cfg_client_load_buf("/nonexistent-hsmgate-fuzz/client.yaml", (const char *)data, size,
	                        &c, err, sizeof(err));
	if (r == 0) {
		if (c == NULL || c->gateway == NULL || c->server_name == NULL ||
		    (c->cert == NULL) == (c->api_key == NULL)) {
			abort();
		}
		cfg_client_free(c);
	} else if (c != NULL || r >= 0) {
		abort();
	}
	return 0;
}
