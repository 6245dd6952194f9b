/*
 * gateway/gw.h — hsmgated: the TLS gateway in front of the partition workers.
 *
 * One libevent loop accepts TLS 1.3 connections, authenticates each caller (client
 * certificate or API key in the hello), answers the few calls that concern the gateway
 * itself (the slot list), checks that every other call names one of the caller's tenant's
 * slots or sessions, and forwards it to the worker process of that partition over a
 * socketpair. A supervisor (gateway/supervisor.c) forks one worker per configured
 * partition and restarts a worker that dies. The gateway never touches key material.
 *
 * Conventions (STYLE.md): functions return 0 or a negative GW_ERR_* code; gw_strerror()
 * names it. Log lines go to stderr, one per event, as key=value pairs (gw_log), and never
 * carry an API key or a PIN.
 */
#ifndef HSMGATE_GW_H
#define HSMGATE_GW_H

#include <stddef.h>

#define GW_WUR          __attribute__((warn_unused_result))
#define GW_PRINTF(f, a) __attribute__((format(printf, f, a)))

struct cfg_daemon;

enum gw_err {
	GW_OK = 0,
	GW_ERR_NOMEM = -6000,
	GW_ERR_CONFIG = -6001, /* the configuration cannot be used (see the message) */
	GW_ERR_TLS = -6002,    /* a TLS context or file could not be set up */
	GW_ERR_LISTEN = -6003, /* the listening socket could not be opened */
	GW_ERR_SPAWN = -6004,  /* a worker could not be started */
	GW_ERR_IO = -6005,
	GW_ERR_MALFORMED = -6006, /* a frame or message from a peer failed to decode */
	GW_ERR_AUTH = -6007,      /* the caller could not be authenticated */
	GW_ERR_EVENT = -6008,     /* libevent refused an operation */
	GW_ERR_NOTFOUND = -6009,
};
const char *gw_strerror(int err);

/* ---- the daemon ------------------------------------------------------------------------ */

struct gw_server;

struct gw_opts {
	const char *config_path; /* the file `cfg` was loaded from; re-read on SIGHUP and given
	                          * to the workers */
	const char *ready_file;  /* optional: written with "ADDRESS:PORT\n" once listening */
	const char *worker_path; /* optional: overrides cfg->worker and the default */
};

/*
 * Sets up a gateway for `cfg`: TLS context, listening socket, signal handlers and one
 * worker process per partition, then writes the ready file. On success the server owns
 * `cfg` (the caller must not free it) and *out is set; on failure `cfg` is still the
 * caller's, *out is NULL and err[errsz] says what went wrong.
 */
int gw_server_new(struct cfg_daemon *cfg, const struct gw_opts *opts, struct gw_server **out,
                  char *err, size_t errsz) GW_WUR;

/* Runs the event loop until a graceful shutdown (SIGTERM/SIGINT) has completed: in-flight
 * calls finished or the deadline passed, the workers stopped and reaped. Returns 0, or a
 * GW_ERR_* when the loop itself failed. */
int gw_server_run(struct gw_server *s) GW_WUR;

/* Frees the server and its config; workers still running are killed. NULL is a no-op. */
void gw_server_free(struct gw_server *s);

/*
 * What `hsmgated --check` does beyond loading the config: loads the TLS files into a
 * context, checks that the worker program is executable and loads the policy file (its
 * error says file:line:column). 0 or a GW_ERR_* with the reason in err[errsz].
 */
int gw_config_check(const struct cfg_daemon *cfg, const char *worker_path, char *err,
                    size_t errsz) GW_WUR;

/* ---- structured log -------------------------------------------------------------------- */

enum gw_log_level {
	GW_LOG_DEBUG = 0,
	GW_LOG_INFO = 1,
	GW_LOG_WARN = 2,
	GW_LOG_ERROR = 3,
};

/* Lines below `level` are dropped; the default is GW_LOG_INFO (HSMGATE_LOG_LEVEL=debug in
 * the environment lowers it at start). */
void gw_log_set_level(enum gw_log_level level);

/*
 * Writes one line to stderr in a single write(2):
 *   ts=<RFC 3339 UTC, ms> level=<l> component=<c> msg="<msg>" <kv ...>
 * `kv` is a printf format for the key=value tail (may be NULL). Values that come from a
 * peer or may hold spaces must be passed through gw_log_quote(). Never pass a secret.
 */
void gw_log(enum gw_log_level level, const char *component, const char *msg, const char *kv, ...)
        GW_PRINTF(4, 5);

/* Writes `s` into out[outsz] as a double-quoted value with `"`, `\` and control bytes
 * escaped, truncated (with "...") to fit; returns out. */
const char *gw_log_quote(const char *s, char *out, size_t outsz);

#endif /* HSMGATE_GW_H */
