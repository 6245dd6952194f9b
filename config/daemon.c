/*
 * config/daemon.c — hsmgated.yaml: the libcyaml schema, defaults, path resolution and the
 * checks that a schema cannot express (names, uniqueness, references, ranges).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* asprintf, reallocarray (the Makefile defines it too) */
#endif
#include "config/cfg_int.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PATH_LEN_MAX  4096
#define MAX_FRAME_MIN 4096u
#define MAX_FRAME_MAX (16u * 1024 * 1024)

/* ---- schema ------------------------------------------------------------------------------- */

static const cyaml_schema_value_t str_entry = {
        CYAML_VALUE_STRING(CYAML_FLAG_POINTER, char, 1, PATH_LEN_MAX),
};

#define OPT (CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL)
#define REQ CYAML_FLAG_POINTER

static const cyaml_schema_field_t principal_fields[] = {
        CYAML_FIELD_STRING_PTR("name", REQ, struct cfg_principal, name, 1, 63),
        CYAML_FIELD_STRING_PTR("kind", OPT, struct cfg_principal, kind, 1, 16),
        CYAML_FIELD_STRING_PTR("cert_subject", OPT, struct cfg_principal, cert_subject, 1,
                               PATH_LEN_MAX),
        CYAML_FIELD_STRING_PTR("cert_san_uri", OPT, struct cfg_principal, cert_san_uri, 1,
                               PATH_LEN_MAX),
        CYAML_FIELD_SEQUENCE_COUNT("api_keys", OPT, struct cfg_principal, api_keys, n_api_keys,
                                   &str_entry, 0, CYAML_UNLIMITED),
        CYAML_FIELD_SEQUENCE_COUNT("groups", OPT, struct cfg_principal, groups, n_groups,
                                   &str_entry, 0, CYAML_UNLIMITED),
        CYAML_FIELD_END,
};

static const cyaml_schema_value_t principal_entry = {
        CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct cfg_principal, principal_fields),
};

static const cyaml_schema_field_t tenant_fields[] = {
        CYAML_FIELD_STRING_PTR("name", REQ, struct cfg_tenant, name, 1, 63),
        CYAML_FIELD_SEQUENCE_COUNT("principals", OPT, struct cfg_tenant, principals, n_principals,
                                   &principal_entry, 0, CYAML_UNLIMITED),
        CYAML_FIELD_END,
};

static const cyaml_schema_value_t tenant_entry = {
        CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct cfg_tenant, tenant_fields),
};

static const cyaml_schema_field_t partition_fields[] = {
        CYAML_FIELD_STRING_PTR("name", REQ, struct cfg_partition, name, 1, 63),
        CYAML_FIELD_STRING_PTR("tenant", REQ, struct cfg_partition, tenant, 1, 63),
        CYAML_FIELD_UINT("slot", CYAML_FLAG_OPTIONAL, struct cfg_partition, slot),
        CYAML_FIELD_STRING_PTR("backend", OPT, struct cfg_partition, backend, 1, 16),
        /* PKCS #11 v2.40 section 3.2: CK_TOKEN_INFO.label is 32 bytes. */
        CYAML_FIELD_STRING_PTR("token_label", OPT, struct cfg_partition, token_label, 1, 32),
        CYAML_FIELD_STRING_PTR("store", OPT, struct cfg_partition, store, 1, PATH_LEN_MAX),
        CYAML_FIELD_STRING_PTR("module", OPT, struct cfg_partition, module, 1, PATH_LEN_MAX),
        CYAML_FIELD_STRING_PTR("token", OPT, struct cfg_partition, token, 1, 32),
        CYAML_FIELD_UINT("crypto_threads", CYAML_FLAG_OPTIONAL, struct cfg_partition,
                         crypto_threads),
        CYAML_FIELD_END,
};

static const cyaml_schema_value_t partition_entry = {
        CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct cfg_partition, partition_fields),
};

static const cyaml_schema_field_t listen_fields[] = {
        CYAML_FIELD_STRING_PTR("address", OPT, struct cfg_listen, address, 1, 255),
        CYAML_FIELD_UINT("port", CYAML_FLAG_OPTIONAL, struct cfg_listen, port),
        CYAML_FIELD_END,
};

static const cyaml_schema_field_t tls_fields[] = {
        CYAML_FIELD_STRING_PTR("cert", REQ, struct cfg_tls, cert, 1, PATH_LEN_MAX),
        CYAML_FIELD_STRING_PTR("key", REQ, struct cfg_tls, key, 1, PATH_LEN_MAX),
        CYAML_FIELD_STRING_PTR("client_ca", OPT, struct cfg_tls, client_ca, 1, PATH_LEN_MAX),
        CYAML_FIELD_END,
};

static const cyaml_schema_field_t limits_fields[] = {
        CYAML_FIELD_UINT("max_frame", CYAML_FLAG_OPTIONAL, struct cfg_limits, max_frame),
        CYAML_FIELD_UINT("max_inflight", CYAML_FLAG_OPTIONAL, struct cfg_limits, max_inflight),
        CYAML_FIELD_UINT("max_connections", CYAML_FLAG_OPTIONAL, struct cfg_limits,
                         max_connections),
        CYAML_FIELD_UINT("handshake_timeout_ms", CYAML_FLAG_OPTIONAL, struct cfg_limits,
                         handshake_timeout_ms),
        CYAML_FIELD_UINT("idle_timeout_s", CYAML_FLAG_OPTIONAL, struct cfg_limits, idle_timeout_s),
        CYAML_FIELD_END,
};

static const cyaml_schema_field_t sink_fields[] = {
        CYAML_FIELD_STRING_PTR("name", REQ, struct cfg_audit_sink, name, 1, 63),
        CYAML_FIELD_STRING_PTR("url", REQ, struct cfg_audit_sink, url, 1, PATH_LEN_MAX),
        CYAML_FIELD_STRING_PTR("ca", OPT, struct cfg_audit_sink, ca, 1, PATH_LEN_MAX),
        CYAML_FIELD_STRING_PTR("cert", OPT, struct cfg_audit_sink, cert, 1, PATH_LEN_MAX),
        CYAML_FIELD_STRING_PTR("key", OPT, struct cfg_audit_sink, key, 1, PATH_LEN_MAX),
        CYAML_FIELD_STRING_PTR("token_file", OPT, struct cfg_audit_sink, token_file, 1,
                               PATH_LEN_MAX),
        CYAML_FIELD_STRING_PTR("cursor", OPT, struct cfg_audit_sink, cursor, 1, PATH_LEN_MAX),
        CYAML_FIELD_STRING_PTR("quarantine", OPT, struct cfg_audit_sink, quarantine, 1,
                               PATH_LEN_MAX),
        /* RFC 5424 §6.2.4: HOSTNAME is at most 255 characters. */
        CYAML_FIELD_STRING_PTR("hostname", OPT, struct cfg_audit_sink, hostname, 1, 255),
        CYAML_FIELD_UINT("spool_soft", CYAML_FLAG_OPTIONAL, struct cfg_audit_sink, spool_soft),
        CYAML_FIELD_UINT("spool_hard", CYAML_FLAG_OPTIONAL, struct cfg_audit_sink, spool_hard),
        CYAML_FIELD_BOOL("required", CYAML_FLAG_OPTIONAL, struct cfg_audit_sink, required),
        CYAML_FIELD_END,
};

static const cyaml_schema_value_t sink_entry = {
        CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct cfg_audit_sink, sink_fields),
};

static const cyaml_schema_field_t audit_fields[] = {
        CYAML_FIELD_BOOL("enabled", CYAML_FLAG_OPTIONAL, struct cfg_audit, enabled),
        CYAML_FIELD_STRING_PTR("dir", OPT, struct cfg_audit, dir, 1, PATH_LEN_MAX),
        CYAML_FIELD_STRING_PTR("signing_key", OPT, struct cfg_audit, signing_key, 1, PATH_LEN_MAX),
        CYAML_FIELD_STRING_PTR("durability", OPT, struct cfg_audit, durability, 1, 16),
        CYAML_FIELD_UINT("checkpoint_events", CYAML_FLAG_OPTIONAL, struct cfg_audit,
                         checkpoint_events),
        CYAML_FIELD_UINT("checkpoint_seconds", CYAML_FLAG_OPTIONAL, struct cfg_audit,
                         checkpoint_seconds),
        CYAML_FIELD_SEQUENCE_COUNT("sinks", OPT, struct cfg_audit, sinks, n_sinks, &sink_entry, 0,
                                   CFG_MAX_SINKS),
        CYAML_FIELD_END,
};

static const cyaml_schema_field_t daemon_fields[] = {
        CYAML_FIELD_STRING_PTR("gateway_id", OPT, struct cfg_daemon, gateway_id, 1, 255),
        CYAML_FIELD_MAPPING("listen", CYAML_FLAG_OPTIONAL, struct cfg_daemon, listen,
                            listen_fields),
        CYAML_FIELD_MAPPING("tls", CYAML_FLAG_DEFAULT, struct cfg_daemon, tls, tls_fields),
        CYAML_FIELD_MAPPING("limits", CYAML_FLAG_OPTIONAL, struct cfg_daemon, limits,
                            limits_fields),
        CYAML_FIELD_STRING_PTR("state_dir", REQ, struct cfg_daemon, state_dir, 1, PATH_LEN_MAX),
        CYAML_FIELD_STRING_PTR("worker", OPT, struct cfg_daemon, worker, 1, PATH_LEN_MAX),
        CYAML_FIELD_STRING_PTR("policy", OPT, struct cfg_daemon, policy, 1, PATH_LEN_MAX),
        CYAML_FIELD_UINT("busy_poll_us", CYAML_FLAG_OPTIONAL, struct cfg_daemon, busy_poll_us),
        CYAML_FIELD_MAPPING_PTR("audit", CYAML_FLAG_OPTIONAL, struct cfg_daemon, audit,
                                audit_fields),
        CYAML_FIELD_SEQUENCE_COUNT("tenants", OPT, struct cfg_daemon, tenants, n_tenants,
                                   &tenant_entry, 0, CYAML_UNLIMITED),
        CYAML_FIELD_SEQUENCE_COUNT("partitions", OPT, struct cfg_daemon, partitions, n_partitions,
                                   &partition_entry, 0, CYAML_UNLIMITED),
        CYAML_FIELD_END,
};

static const cyaml_schema_value_t daemon_schema = {
        CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, struct cfg_daemon, daemon_fields),
};

/* ---- defaults ----------------------------------------------------------------------------- */

/* A uint field that is absent takes its default; one that is present must be in range. */
static int
uint_check(struct cfg_src *s, const char *path, uint32_t *v, uint32_t def, uint32_t min,
           uint32_t max)
{
	if (cfg_src_val(s, "%s", path) == NULL) {
		*v = def;
		return 0;
	}
	if (*v < min || *v > max) {
		return cfg_src_fail(s, CFG_ERR_INVALID, path, "%u is out of range (%u..%u)", *v,
		                    min, max);
	}
	return 0;
}

static int
daemon_limits(struct cfg_src *s, struct cfg_limits *l)
{
	int r;

	if ((r = uint_check(s, "limits.max_frame", &l->max_frame, 1048576, MAX_FRAME_MIN,
	                    MAX_FRAME_MAX)) != 0 ||
	    (r = uint_check(s, "limits.max_inflight", &l->max_inflight, 64, 1, UINT32_MAX)) != 0 ||
	    (r = uint_check(s, "limits.max_connections", &l->max_connections, 4096, 1,
	                    UINT32_MAX)) != 0 ||
	    (r = uint_check(s, "limits.handshake_timeout_ms", &l->handshake_timeout_ms, 10000, 1,
	                    UINT32_MAX)) != 0 ||
	    (r = uint_check(s, "limits.idle_timeout_s", &l->idle_timeout_s, 600, 1, UINT32_MAX)) !=
	            0) {
		return r;
	}
	return 0;
}

/* The default worker is hsmgate-worker beside the running program (hsmgated). */
static int
default_worker(char **worker)
{
	char exe[PATH_MAX];
	ssize_t n;
	char *slash;

	if (*worker != NULL) {
		return 0;
	}
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0) {
		return 0; /* left NULL: the gateway then looks beside itself */
	}
	exe[n] = '\0';
	if ((slash = strrchr(exe, '/')) == NULL) {
		return 0;
	}
	*slash = '\0';
	return cfg_str_defaultf(worker, "%s/hsmgate-worker", exe);
}

/* A sink's defaults; relative paths (file: URLs too) against the config's directory. */
static int
sink_defaults(struct cfg_src *s, struct cfg_daemon *c, unsigned i)
{
	struct cfg_audit_sink *k = &c->audit->sinks[i];
	int r;

	if (cfg_src_val(s, "audit.sinks[%u].spool_soft", i) == NULL) {
		k->spool_soft = 1000000;
	}
	if (cfg_src_val(s, "audit.sinks[%u].spool_hard", i) == NULL) {
		k->spool_hard = 10000000;
	}
	if (cfg_src_val(s, "audit.sinks[%u].required", i) == NULL) {
		k->required = true;
	}
	if ((r = cfg_path_resolve(s, &k->ca)) != 0 || (r = cfg_path_resolve(s, &k->cert)) != 0 ||
	    (r = cfg_path_resolve(s, &k->key)) != 0 ||
	    (r = cfg_path_resolve(s, &k->token_file)) != 0 ||
	    (r = cfg_path_resolve(s, &k->cursor)) != 0 ||
	    (r = cfg_path_resolve(s, &k->quarantine)) != 0 ||
	    (r = cfg_str_defaultf(&k->cursor, "%s/audit-sinks/%s.cursor", c->state_dir, k->name)) !=
	            0) {
		return r;
	}
	if (strncmp(k->url, "file:", 5) == 0 && k->url[5] != '\0' && k->url[5] != '/') {
		char *path = strdup(k->url + 5), *url = NULL;

		if (path == NULL || (r = cfg_path_resolve(s, &path)) != 0 ||
		    asprintf(&url, "file:%s", path) < 0) {
			free(path);
			return CFG_ERR_NOMEM;
		}
		free(path);
		free(k->url);
		k->url = url;
	}
	return 0;
}

static int
daemon_defaults(struct cfg_src *s, struct cfg_daemon *c)
{
	char host[256];
	unsigned i;
	int r;

	if (c->gateway_id == NULL) {
		if (gethostname(host, sizeof(host)) != 0) {
			snprintf(host, sizeof(host), "localhost");
		}
		host[sizeof(host) - 1] = '\0';
		if ((r = cfg_str_defaultf(&c->gateway_id, "hsmgated@%s", host)) != 0) {
			return r;
		}
	}
	if ((r = cfg_str_default(&c->listen.address, "127.0.0.1")) != 0) {
		return r;
	}
	if (cfg_src_val(s, "listen.port") == NULL) {
		c->listen.port = 7443;
	}
	if (c->audit == NULL && (c->audit = calloc(1, sizeof(*c->audit))) == NULL) {
		return CFG_ERR_NOMEM;
	}
	if ((r = cfg_path_resolve(s, &c->state_dir)) != 0 ||
	    (r = cfg_path_resolve(s, &c->tls.cert)) != 0 ||
	    (r = cfg_path_resolve(s, &c->tls.key)) != 0 ||
	    (r = cfg_path_resolve(s, &c->tls.client_ca)) != 0 ||
	    (r = cfg_path_resolve(s, &c->worker)) != 0 ||
	    (r = cfg_path_resolve(s, &c->policy)) != 0 ||
	    (r = cfg_path_resolve(s, &c->audit->dir)) != 0 ||
	    (r = cfg_path_resolve(s, &c->audit->signing_key)) != 0 ||
	    (r = default_worker(&c->worker)) != 0 ||
	    (r = cfg_str_defaultf(&c->audit->dir, "%s/audit", c->state_dir)) != 0 ||
	    (r = cfg_str_default(&c->audit->durability, "sync")) != 0) {
		return r;
	}
	if (cfg_src_val(s, "audit.enabled") == NULL) {
		c->audit->enabled = true;
	}
	for (i = 0; i < c->audit->n_sinks; i++) {
		if ((r = sink_defaults(s, c, i)) != 0) {
			return r;
		}
	}
	for (i = 0; i < c->n_tenants; i++) {
		struct cfg_tenant *t = &c->tenants[i];
		unsigned j;

		for (j = 0; j < t->n_principals; j++) {
			if ((r = cfg_str_default(&t->principals[j].kind, "user")) != 0) {
				return r;
			}
		}
	}
	for (i = 0; i < c->n_partitions; i++) {
		struct cfg_partition *p = &c->partitions[i];

		if (cfg_src_val(s, "partitions[%u].slot", i) == NULL) {
			p->slot = i + 1;
		}
		if ((r = cfg_str_default(&p->backend, "soft")) != 0 ||
		    (r = cfg_str_defaultf(&p->token_label, "%.32s", p->name)) != 0 ||
		    (r = cfg_path_resolve(s, &p->store)) != 0 ||
		    (r = cfg_path_resolve(s, &p->module)) != 0) {
			return r;
		}
		if (strcmp(p->backend, "soft") == 0 &&
		    (r = cfg_str_defaultf(&p->store, "%s/%s", c->state_dir, p->name)) != 0) {
			return r;
		}
	}
	return 0;
}

/* ---- validation --------------------------------------------------------------------------- */

static int
name_check(struct cfg_src *s, const char *path, const char *name)
{
	if (!cfg_name_valid(name)) {
		return cfg_src_fail(s, CFG_ERR_INVALID, path,
		                    "'%s' is not a valid name ([a-z0-9][a-z0-9-]{0,62})", name);
	}
	return 0;
}

static int
principal_check(struct cfg_src *s, const struct cfg_daemon *c, unsigned ti, unsigned pi)
{
	const struct cfg_principal *p = &c->tenants[ti].principals[pi];
	unsigned char salt[CFG_APIKEY_SALT_MAX], hash[CFG_APIKEY_DK];
	size_t saltlen;
	unsigned iter, k, tj, pj;
	char path[128];
	int r;

	snprintf(path, sizeof(path), "tenants[%u].principals[%u].name", ti, pi);
	if ((r = name_check(s, path, p->name)) != 0) {
		return r;
	}
	if (strcmp(p->kind, "user") != 0 && strcmp(p->kind, "service") != 0) {
		snprintf(path, sizeof(path), "tenants[%u].principals[%u].kind", ti, pi);
		return cfg_src_fail(s, CFG_ERR_INVALID, path, "unknown kind '%s' (user or service)",
		                    p->kind);
	}
	for (pj = 0; pj < pi; pj++) {
		const struct cfg_principal *q = &c->tenants[ti].principals[pj];

		if (strcmp(p->name, q->name) == 0 && strcmp(p->kind, q->kind) == 0) {
			snprintf(path, sizeof(path), "tenants[%u].principals[%u].name", ti, pi);
			return cfg_src_fail(s, CFG_ERR_INVALID, path,
			                    "duplicate %s '%s' in tenant '%s'", p->kind, p->name,
			                    c->tenants[ti].name);
		}
	}
	/* A certificate must map to one principal, or authentication would be ambiguous. */
	for (tj = 0; tj <= ti; tj++) {
		unsigned end = tj == ti ? pi : c->tenants[tj].n_principals;

		for (pj = 0; pj < end; pj++) {
			const struct cfg_principal *q = &c->tenants[tj].principals[pj];

			if (p->cert_subject != NULL && q->cert_subject != NULL &&
			    strcmp(p->cert_subject, q->cert_subject) == 0) {
				snprintf(path, sizeof(path),
				         "tenants[%u].principals[%u].cert_subject", ti, pi);
				return cfg_src_fail(s, CFG_ERR_INVALID, path,
				                    "already mapped to tenants[%u].principals[%u]",
				                    tj, pj);
			}
			if (p->cert_san_uri != NULL && q->cert_san_uri != NULL &&
			    strcmp(p->cert_san_uri, q->cert_san_uri) == 0) {
				snprintf(path, sizeof(path),
				         "tenants[%u].principals[%u].cert_san_uri", ti, pi);
				return cfg_src_fail(s, CFG_ERR_INVALID, path,
				                    "already mapped to tenants[%u].principals[%u]",
				                    tj, pj);
			}
		}
	}
	for (k = 0; k < p->n_api_keys; k++) {
		if (cfg_apikey_parse(p->api_keys[k], &iter, salt, &saltlen, hash) != 0) {
			snprintf(path, sizeof(path), "tenants[%u].principals[%u].api_keys[%u]", ti,
			         pi, k);
			/* The value is not quoted: a key pasted here by mistake is a secret. */
			return cfg_src_fail(s, CFG_ERR_INVALID, path,
			                    "not an API key hash (pbkdf2-sha256$<iterations>$"
			                    "<salt>$<hash>, from `hsmctl apikey hash`)");
		}
	}
	for (k = 0; k < p->n_groups; k++) {
		if (strchr(p->groups[k], '/') != NULL) {
			snprintf(path, sizeof(path), "tenants[%u].principals[%u].groups[%u]", ti,
			         pi, k);
			return cfg_src_fail(s, CFG_ERR_INVALID, path,
			                    "a group name cannot contain '/'");
		}
	}
	return 0;
}

static int
partition_check(struct cfg_src *s, const struct cfg_daemon *c, unsigned i)
{
	const struct cfg_partition *p = &c->partitions[i];
	unsigned j;
	char path[128];

	snprintf(path, sizeof(path), "partitions[%u].name", i);
	if (!cfg_name_valid(p->name)) {
		return name_check(s, path, p->name);
	}
	for (j = 0; j < i; j++) {
		if (strcmp(c->partitions[j].name, p->name) == 0) {
			return cfg_src_fail(s, CFG_ERR_INVALID, path,
			                    "duplicate partition name '%s' (also partitions[%u])",
			                    p->name, j);
		}
	}
	snprintf(path, sizeof(path), "partitions[%u].tenant", i);
	if (cfg_tenant_find(c, p->tenant) == NULL) {
		return cfg_src_fail(s, CFG_ERR_INVALID, path, "unknown tenant '%s'", p->tenant);
	}
	snprintf(path, sizeof(path), "partitions[%u].slot", i);
	if (p->slot < 1 || p->slot > 255) {
		return cfg_src_fail(s, CFG_ERR_INVALID, path, "slot %u is out of range (1..255)",
		                    p->slot);
	}
	for (j = 0; j < i; j++) {
		if (c->partitions[j].slot == p->slot) {
			return cfg_src_fail(s, CFG_ERR_INVALID, path,
			                    "duplicate slot %u (also partitions[%u] '%s')", p->slot,
			                    j, c->partitions[j].name);
		}
	}
	snprintf(path, sizeof(path), "partitions[%u].crypto_threads", i);
	if (cfg_src_val(s, "partitions[%u].crypto_threads", i) != NULL &&
	    (p->crypto_threads < 1 || p->crypto_threads > CFG_CRYPTO_THREADS_MAX)) {
		return cfg_src_fail(s, CFG_ERR_INVALID, path,
		                    "crypto_threads %u is out of range (1..%u)", p->crypto_threads,
		                    CFG_CRYPTO_THREADS_MAX);
	}
	snprintf(path, sizeof(path), "partitions[%u].backend", i);
	if (strcmp(p->backend, "pkcs11") == 0) {
		if (p->module == NULL || p->token == NULL) {
			return cfg_src_fail(s, CFG_ERR_INVALID, path,
			                    "backend 'pkcs11' needs 'module' and 'token'");
		}
	} else if (strcmp(p->backend, "soft") != 0) {
		return cfg_src_fail(s, CFG_ERR_INVALID, path,
		                    "unknown backend '%s' (soft or pkcs11)", p->backend);
	}
	return 0;
}

/* "HOST[:PORT]" or "[V6]:PORT", then a path when allowed: the shape the sink's own parser
 * (audit/sink_tls.c) takes, checked here so that a typo stops the load, not the sink.
 * need_port: a scheme without an assigned port (relp). */
static const char *
sink_target_error(const char *t, int path_ok, int need_port)
{
	const char *p = t, *host_end;
	unsigned long port = 0;
	size_t n;

	if (*p == '[') {
		if ((host_end = strchr(p, ']')) == NULL || host_end == p + 1) {
			return "a bracketed IPv6 address needs its closing ']'";
		}
		p = host_end + 1;
	} else {
		n = strcspn(p, ":/");
		if (n == 0) {
			return "no host";
		}
		for (host_end = p; host_end < p + n; host_end++) {
			if (*host_end <= ' ' || *host_end >= 0x7f || *host_end == '@' ||
			    *host_end == '[' || *host_end == ']') {
				return "the host has a character a host name cannot have";
			}
		}
		p += n;
	}
	if (*p == ':') {
		p++;
		if (*p < '0' || *p > '9') {
			return "the port is not a number";
		}
		while (*p >= '0' && *p <= '9') {
			port = port * 10 + (unsigned long)(*p - '0');
			if (port > 65535) {
				return "the port is out of range (1..65535)";
			}
			p++;
		}
		if (port == 0) {
			return "the port is out of range (1..65535)";
		}
	} else if (need_port) {
		return "no port (HOST:PORT): RELP has no assigned port";
	}
	if (*p == '\0') {
		return NULL;
	}
	if (*p != '/') {
		return "unexpected characters after the host and port";
	}
	if (!path_ok) {
		return "a path after the port (this kind of URL takes none)";
	}
	for (; *p != '\0'; p++) {
		if (*p <= ' ' || *p >= 0x7f) {
			return "the path has a space or control character";
		}
	}
	return NULL;
}

/* Keys that only some kinds of sink take. */
static int
sink_key_unused(struct cfg_src *s, unsigned i, const char *key, const char *value, const char *kind)
{
	char path[96];

	if (value == NULL) {
		return 0;
	}
	snprintf(path, sizeof(path), "audit.sinks[%u].%s", i, key);
	return cfg_src_fail(s, CFG_ERR_INVALID, path, "does not apply to a %s sink", kind);
}

static int
sink_check(struct cfg_src *s, const struct cfg_daemon *c, unsigned i)
{
	const struct cfg_audit_sink *k = &c->audit->sinks[i];
	const char *kind, *why;
	char path[96];
	unsigned j;
	int r;

	snprintf(path, sizeof(path), "audit.sinks[%u].name", i);
	if ((r = name_check(s, path, k->name)) != 0) {
		return r;
	}
	for (j = 0; j < i; j++) {
		if (strcmp(c->audit->sinks[j].name, k->name) == 0) {
			return cfg_src_fail(s, CFG_ERR_INVALID, path,
			                    "duplicate sink name '%s' (also audit.sinks[%u])",
			                    k->name, j);
		}
	}
	snprintf(path, sizeof(path), "audit.sinks[%u].url", i);
	if (strncmp(k->url, "file:", 5) == 0) {
		kind = "file";
		why = k->url[5] == '\0' ? "file: needs a path (file:PATH)" : NULL;
	} else if (strncmp(k->url, "syslog://", 9) == 0) {
		kind = "syslog";
		why = sink_target_error(k->url + 9, 0, 0);
	} else if (strncmp(k->url, "relp://", 7) == 0) {
		kind = "relp";
		why = sink_target_error(k->url + 7, 0, 1);
	} else if (strncmp(k->url, "https://", 8) == 0) {
		kind = "https";
		why = sink_target_error(k->url + 8, 1, 0);
	} else if (strncmp(k->url, "http://", 7) == 0) {
		return cfg_src_fail(s, CFG_ERR_INVALID, path,
		                    "http:// sends events without TLS; use https://");
	} else {
		/* Not quoted: a URL may carry a credential someone pasted into it. */
		return cfg_src_fail(s, CFG_ERR_INVALID, path,
		                    "unknown URL scheme (file:PATH, syslog://HOST[:PORT], "
		                    "relp://HOST:PORT or https://HOST[:PORT]/PATH)");
	}
	if (why != NULL) {
		return cfg_src_fail(s, CFG_ERR_INVALID, path, "bad %s URL: %s", kind, why);
	}
	if (strcmp(kind, "file") == 0 && ((r = sink_key_unused(s, i, "ca", k->ca, kind)) != 0 ||
	                                  (r = sink_key_unused(s, i, "cert", k->cert, kind)) != 0 ||
	                                  (r = sink_key_unused(s, i, "key", k->key, kind)) != 0)) {
		return r;
	}
	if (strcmp(kind, "https") != 0 &&
	    ((r = sink_key_unused(s, i, "token_file", k->token_file, kind)) != 0 ||
	     (r = sink_key_unused(s, i, "quarantine", k->quarantine, kind)) != 0)) {
		return r;
	}
	if (strcmp(kind, "syslog") != 0 && strcmp(kind, "relp") != 0 &&
	    (r = sink_key_unused(s, i, "hostname", k->hostname, kind)) != 0) {
		return r;
	}
	if ((k->cert == NULL) != (k->key == NULL)) {
		snprintf(path, sizeof(path), "audit.sinks[%u].%s", i,
		         k->cert != NULL ? "cert" : "key");
		return cfg_src_fail(s, CFG_ERR_INVALID, path,
		                    "a client certificate needs both 'cert' and 'key'");
	}
	if (k->spool_hard != 0 && k->spool_soft > k->spool_hard) {
		snprintf(path, sizeof(path), "audit.sinks[%u].spool_soft", i);
		return cfg_src_fail(s, CFG_ERR_INVALID, path,
		                    "%llu is above spool_hard %llu (the soft limit warns before "
		                    "the hard limit refuses requests)",
		                    (unsigned long long)k->spool_soft,
		                    (unsigned long long)k->spool_hard);
	}
	/* Two sinks on one cursor would each move it over records only the other sent. */
	for (j = 0; j < i; j++) {
		if (strcmp(c->audit->sinks[j].cursor, k->cursor) == 0) {
			snprintf(path, sizeof(path), "audit.sinks[%u].cursor", i);
			return cfg_src_fail(s, CFG_ERR_INVALID, path,
			                    "audit.sinks[%u] uses the same cursor file", j);
		}
	}
	return 0;
}

static int
daemon_check(struct cfg_src *s, struct cfg_daemon *c)
{
	unsigned i, j;
	int r;

	/* listen.port: its uint16_t type already bounds it to 0..65535 in the schema walk. */
	if ((r = daemon_limits(s, &c->limits)) != 0 ||
	    (r = uint_check(s, "busy_poll_us", &c->busy_poll_us, CFG_BUSY_POLL_US_DEFAULT, 0,
	                    CFG_BUSY_POLL_US_MAX)) != 0) {
		return r;
	}
	if (strcmp(c->audit->durability, "sync") != 0 &&
	    strcmp(c->audit->durability, "async") != 0) {
		return cfg_src_fail(s, CFG_ERR_INVALID, "audit.durability",
		                    "unknown durability '%s' (sync or async)",
		                    c->audit->durability);
	}
	if ((r = uint_check(s, "audit.checkpoint_events", &c->audit->checkpoint_events, 1000, 1,
	                    UINT32_MAX)) != 0 ||
	    (r = uint_check(s, "audit.checkpoint_seconds", &c->audit->checkpoint_seconds, 10, 1,
	                    UINT32_MAX)) != 0) {
		return r;
	}
	for (i = 0; i < c->audit->n_sinks; i++) {
		if ((r = sink_check(s, c, i)) != 0) {
			return r;
		}
	}
	for (i = 0; i < c->n_tenants; i++) {
		char path[64];

		snprintf(path, sizeof(path), "tenants[%u].name", i);
		if ((r = name_check(s, path, c->tenants[i].name)) != 0) {
			return r;
		}
		for (j = 0; j < i; j++) {
			if (strcmp(c->tenants[j].name, c->tenants[i].name) == 0) {
				return cfg_src_fail(s, CFG_ERR_INVALID, path,
				                    "duplicate tenant name '%s' (also tenants[%u])",
				                    c->tenants[i].name, j);
			}
		}
		for (j = 0; j < c->tenants[i].n_principals; j++) {
			if ((r = principal_check(s, c, i, j)) != 0) {
				return r;
			}
		}
	}
	for (i = 0; i < c->n_partitions; i++) {
		if ((r = partition_check(s, c, i)) != 0) {
			return r;
		}
	}
	return 0;
}

/* ---- load / free / lookups ---------------------------------------------------------------- */

static int
daemon_load(struct cfg_src *s, const char *buf, size_t len, struct cfg_daemon **out)
{
	struct cfg_daemon *c = NULL;
	void *data = NULL;
	int r;

	if ((r = cfg_yaml_load(s, &daemon_schema, buf, len, &data)) != 0) {
		goto out;
	}
	c = data;
	if ((c->path = strdup(s->abspath)) == NULL) {
		r = cfg_src_fail_at(s, CFG_ERR_NOMEM, NULL, "out of memory");
		goto out;
	}
	if ((r = daemon_defaults(s, c)) != 0) {
		r = cfg_src_fail_at(s, r, NULL, "out of memory");
		goto out;
	}
	if ((r = daemon_check(s, c)) != 0) {
		goto out;
	}
	*out = c;
	c = NULL; /* transferred */
	r = 0;
out:
	cfg_daemon_free(c);
	return r;
}

int
cfg_daemon_load(const char *path, struct cfg_daemon **out, char *err, size_t errsz)
{
	struct cfg_src s;
	char *buf = NULL;
	size_t len = 0;
	int r;

	*out = NULL;
	if ((r = cfg_src_init(&s, path, err, errsz)) != 0 ||
	    (r = cfg_file_read(&s, &buf, &len)) != 0 || (r = daemon_load(&s, buf, len, out)) != 0) {
		goto out;
	}
	r = 0;
out:
	cfg_buf_free(buf, len);
	cfg_src_fini(&s);
	return r;
}

int
cfg_daemon_load_buf(const char *name, const char *buf, size_t len, struct cfg_daemon **out,
                    char *err, size_t errsz)
{
	struct cfg_src s;
	int r;

	*out = NULL;
	if ((r = cfg_src_init(&s, name, err, errsz)) != 0 ||
	    (r = daemon_load(&s, buf, len, out)) != 0) {
		goto out;
	}
	r = 0;
out:
	cfg_src_fini(&s);
	return r;
}

void
cfg_daemon_free(struct cfg_daemon *c)
{
	if (c == NULL) {
		return;
	}
	free(c->path); /* not in the schema: ours */
	c->path = NULL;
	cfg_cyaml_free(&daemon_schema, c);
}

const struct cfg_tenant *
cfg_tenant_find(const struct cfg_daemon *c, const char *name)
{
	unsigned i;

	if (c == NULL || name == NULL) {
		return NULL;
	}
	for (i = 0; i < c->n_tenants; i++) {
		if (strcmp(c->tenants[i].name, name) == 0) {
			return &c->tenants[i];
		}
	}
	return NULL;
}

const struct cfg_partition *
cfg_partition_find(const struct cfg_daemon *c, const char *name)
{
	unsigned i;

	if (c == NULL || name == NULL) {
		return NULL;
	}
	for (i = 0; i < c->n_partitions; i++) {
		if (strcmp(c->partitions[i].name, name) == 0) {
			return &c->partitions[i];
		}
	}
	return NULL;
}

const struct cfg_partition *
cfg_partition_by_slot(const struct cfg_daemon *c, uint32_t slot)
{
	unsigned i;

	if (c == NULL) {
		return NULL;
	}
	for (i = 0; i < c->n_partitions; i++) {
		if (c->partitions[i].slot == slot) {
			return &c->partitions[i];
		}
	}
	return NULL;
}
