/*
 * config/cfg.h — the YAML configuration of the daemon (hsmgated.yaml) and of the client
 * module (the file named by HSMGATE_CONF), loaded with libcyaml against a schema.
 *
 * An unknown key, a wrong type, a missing required field or an inconsistent value (a
 * partition naming an unknown tenant, two partitions on one slot ...) fails the load with
 * a message naming the file, the line and the key, e.g.
 *   "var/demo/hsmgated.yaml:12:5: unknown key 'prot' (in listen)"
 * Relative paths inside a file are resolved against the directory of that file, so a
 * config works from any working directory. Loaded structures are read-only plain data;
 * free them with the matching *_free. config/examples/ holds commented examples.
 */
#ifndef HSMGATE_CFG_H
#define HSMGATE_CFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CFG_WUR __attribute__((warn_unused_result))

enum cfg_err {
	CFG_OK = 0,
	CFG_ERR_IO = -2000,      /* the file cannot be read */
	CFG_ERR_SYNTAX = -2001,  /* not YAML, or not of the schema */
	CFG_ERR_INVALID = -2002, /* of the schema, but inconsistent */
	CFG_ERR_NOMEM = -2003,
};
const char *cfg_strerror(int err);

/* ---- daemon ------------------------------------------------------------------------------- */

struct cfg_principal {
	char *name;         /* required: "alice"; the principal is tenant/<t>/<kind>/<name> */
	char *kind;         /* "user" (default) or "service" */
	char *cert_subject; /* optional: the client certificate subject, RFC 2253
	                       ("CN=alice,O=demo") */
	char *cert_san_uri; /* optional: a URI SAN of the client certificate (SPIFFE id ...) */
	char **api_keys;    /* salted hashes from `hsmctl apikey hash` (never the key itself) */
	unsigned n_api_keys;
	char **groups;
	unsigned n_groups;
};

struct cfg_tenant {
	char *name; /* required: [a-z0-9][a-z0-9-]{0,62} */
	struct cfg_principal *principals;
	unsigned n_principals;
};

#define CFG_CRYPTO_THREADS_MAX 64

struct cfg_partition {
	char *name;        /* required, unique: [a-z0-9][a-z0-9-]{0,62} */
	char *tenant;      /* required: a tenant's name */
	uint32_t slot;     /* the slot id clients see, 1..255, unique; default: 1 + index */
	char *backend;     /* "soft" (default) or "pkcs11" (passthrough) */
	char *token_label; /* soft: the label an uninitialised token shows; default: name */
	char *store;       /* soft: directory of the LMDB environment; default <state_dir>/<name> */
	char *module;      /* pkcs11: path of the vendor PKCS #11 library */
	char *token;       /* pkcs11: label of the vendor token to front */
	uint32_t crypto_threads; /* soft: threads for private-key work, 1..64; 0 = the CPUs */
};

struct cfg_listen {
	char *address; /* default "127.0.0.1" */
	uint16_t port; /* default 7443; 0 = any free port (see hsmgated --ready-file) */
};

struct cfg_tls {
	char *cert;      /* required: server certificate chain (PEM) */
	char *key;       /* required: its private key (PEM) */
	char *client_ca; /* optional: CA bundle for client certificates; without it, API keys only
	                  */
};

struct cfg_limits {
	uint32_t max_frame;            /* default 1048576, at most 16 MiB */
	uint32_t max_inflight;         /* per connection, default 64 */
	uint32_t max_connections;      /* default 4096 */
	uint32_t handshake_timeout_ms; /* TLS handshake + hello, default 10000 */
	uint32_t idle_timeout_s;       /* default 600 */
};

/* One SIEM destination the gateway streams its log to (docs/AUDIT.md §8). */
struct cfg_audit_sink {
	char *name;          /* required, unique: [a-z0-9][a-z0-9-]{0,62} */
	char *url;           /* required: file:PATH (made absolute), syslog://HOST[:PORT],
	                      * relp://HOST:PORT, https://HOST[:PORT][/PATH] */
	char *ca;            /* syslog, relp, https: CA bundle for the receiver; default: system
	                      * store */
	char *cert;          /* syslog, relp, https: client certificate (PEM), with key */
	char *key;           /* its private key (PEM) */
	char *token_file;    /* https: file whose first line is the bearer token */
	char *cursor;        /* default <state_dir>/audit-sinks/<name>.cursor; unique */
	char *quarantine;    /* https: rejected batches; default <cursor>.quarantine */
	char *hostname;      /* syslog, relp: HOSTNAME field; default gethostname() */
	uint64_t spool_soft; /* records of lag that raise a critical event; default 1000000,
	                      * 0 = never */
	uint64_t spool_hard; /* records of lag that make the gateway refuse requests (when
	                      * required); default 10000000, 0 = never; >= spool_soft */
	bool required;       /* default true: the hard limit fails closed */
};

struct cfg_audit {
	bool enabled;      /* default true; false: no log, no events (for measurements only) */
	char *dir;         /* directory of the hash-chained log; default <state_dir>/audit */
	char *signing_key; /* Ed25519 private key (PEM) for checkpoints */
	char *durability;  /* "sync" (default) or "async" */
	uint32_t checkpoint_events;  /* default 1000 */
	uint32_t checkpoint_seconds; /* default 10 */
	struct cfg_audit_sink *sinks;
	unsigned n_sinks; /* at most CFG_MAX_SINKS */
};
#define CFG_MAX_SINKS 16

/* busy_poll_us of the daemon (a worker's reply) and of the client module (a whole round
 * trip), proto_spin: µs, 0 = never. */
#define CFG_BUSY_POLL_US_DEFAULT        100
#define CFG_CLIENT_BUSY_POLL_US_DEFAULT 200
#define CFG_BUSY_POLL_US_MAX            10000

struct cfg_daemon {
	char *path;       /* the file this was loaded from (absolute) */
	char *gateway_id; /* default: "hsmgated@<hostname>" */
	struct cfg_listen listen;
	struct cfg_tls tls;
	struct cfg_limits limits;
	char *state_dir;         /* required: LMDB environments and audit log live below it */
	char *worker;            /* path of hsmgate-worker; default: beside hsmgated */
	char *policy;            /* optional: the policy file (policy/); absent = allow all callers
	                          * that authenticated, within their tenant */
	uint32_t busy_poll_us;   /* the loop polls for a worker's reply up to this long before it
	                          * sleeps (adaptive, proto_spin); default 100, 0 = never, <= 10000 */
	struct cfg_audit *audit; /* optional block; never NULL once loaded (defaults filled in) */
	struct cfg_tenant *tenants;
	unsigned n_tenants;
	struct cfg_partition *partitions;
	unsigned n_partitions;
};

/* Loads and validates `path`. On failure returns a CFG_ERR_* code and writes the message
 * (file:line:column: what, as above) into err[errsz]; *out is then NULL. */
int cfg_daemon_load(const char *path, struct cfg_daemon **out, char *err, size_t errsz) CFG_WUR;
void cfg_daemon_free(struct cfg_daemon *c);

/* Lookups on a loaded config; NULL when absent. */
const struct cfg_tenant *cfg_tenant_find(const struct cfg_daemon *c, const char *name);
const struct cfg_partition *cfg_partition_find(const struct cfg_daemon *c, const char *name);
const struct cfg_partition *cfg_partition_by_slot(const struct cfg_daemon *c, uint32_t slot);

/* ---- client module ------------------------------------------------------------------------ */

struct cfg_client {
	char *path;    /* the file this was loaded from (absolute) */
	char *gateway; /* required: "host:port" or "[v6]:port" */
	char *ca;      /* required: CA bundle that signed the gateway's certificate */
	char *cert;    /* client certificate (PEM), with key */
	char *key;
	char *api_key;      /* or an API key inline (secret: wiped by cfg_client_free) */
	char *api_key_file; /* or read from this file (first line) */
	char *server_name;  /* optional: name to verify in the gateway certificate; default: host */
	uint32_t timeout_ms;         /* per call, default 30000 */
	uint32_t connect_timeout_ms; /* default 5000 */
	bool defer_init;             /* send a known-good init with the next call; default true */
	uint32_t busy_poll_us; /* a caller alone on the connection polls for its reply up to this
	                        * long before it sleeps (adaptive, proto_spin); default 200,
	                        * 0 = never, <= 10000 */
};

/* Exactly one of cert+key or api_key/api_key_file must be given. When api_key_file is set
 * the key is read into api_key. Errors as cfg_daemon_load. */
int cfg_client_load(const char *path, struct cfg_client **out, char *err, size_t errsz) CFG_WUR;
void cfg_client_free(struct cfg_client *c);

/* ---- API keys ----------------------------------------------------------------------------- */
/*
 * API keys are stored in the daemon config only as salted hashes:
 *   "pbkdf2-sha256$<iterations>$<salt, base64>$<hash, base64>"
 * cfg_apikey_hash() makes one with a fresh 16-byte salt; cfg_apikey_verify() returns 1 when
 * `key` matches `stored`, 0 when it does not, or a negative CFG_ERR_* for a malformed
 * `stored`. The comparison is constant-time (CRYPTO_memcmp). API keys are 32 random bytes,
 * so a modest iteration count (CFG_APIKEY_ITER) costs an attacker nothing useful while
 * keeping the hello cheap; PINs, which are low-entropy, use far more (hsm-partitions/).
 */
#define CFG_APIKEY_ITER     10000
#define CFG_APIKEY_HASH_MAX 160
int cfg_apikey_hash(const char *key, char *out, size_t outsz) CFG_WUR;
int cfg_apikey_verify(const char *key, const char *stored) CFG_WUR;
/* A new random API key, "hsk_" + 43 base64url characters, NUL-terminated into out[outsz]. */
int cfg_apikey_new(char *out, size_t outsz) CFG_WUR;

#endif /* HSMGATE_CFG_H */
