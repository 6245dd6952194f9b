/* tests/config/test_daemon.c — config/daemon.c (and the shared loader in config/load.c). */
#include "config/cfg.h"
#include "config/cfg_int.h"
#include "tests/lib/test.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EXAMPLE "config/examples/hsmgated.yaml"
/* The API key whose hash is in the example (a demo key, not a secret). */
#define EXAMPLE_KEY "hsk_TjwToLncUHW294Xh8e8t32g-WYxwmEll8WJYKtIB-Cs"
#define HASH                                                                                       \
	"pbkdf2-sha256$10000$S3c+qhr9XlOFfoIH9IVBTw==$5lCJ7avGBrGTIy/"                             \
	"E9malJwS7Ll7xtKVKER4caOti65g="

static char *tmp;
static char file[PATH_MAX];
static char err[512];

static int
suite_init(void)
{
	tmp = test_tmpdir_new("cfgd");
	if (tmp == NULL) {
		return -1;
	}
	snprintf(file, sizeof(file), "%s/hsmgated.yaml", tmp);
	return 0;
}

static int
suite_cleanup(void)
{
	test_tmpdir_remove(tmp);
	tmp = NULL;
	return 0;
}

static int
load_text(const char *yaml, struct cfg_daemon **c)
{
	if (test_file_write(file, yaml, strlen(yaml)) != 0) {
		return -1;
	}
	err[0] = '\0';
	return cfg_daemon_load(file, c, err, sizeof(err));
}

/* The load fails with `code`, and the message starts with "FILE:LINE:" (or "FILE: " when
 * line is 0) and contains `needle`. */
static void
expect_fail(const char *yaml, int code, unsigned line, const char *needle)
{
	struct cfg_daemon *c = (struct cfg_daemon *)1;
	char prefix[PATH_MAX + 32];
	int r = load_text(yaml, &c);

	CU_ASSERT_EQUAL(r, code);
	CU_ASSERT_PTR_NULL(c);
	if (line > 0) {
		snprintf(prefix, sizeof(prefix), "%s:%u:", file, line);
	} else {
		snprintf(prefix, sizeof(prefix), "%s: ", file);
	}
	CU_ASSERT_EQUAL(strncmp(err, prefix, strlen(prefix)), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, needle));
	if (r != code || strncmp(err, prefix, strlen(prefix)) != 0 || strstr(err, needle) == NULL) {
		fprintf(stderr, "  got %d '%s'; want %d '%s' ... '%s'\n", r, err, code, prefix,
		        needle);
	}
	cfg_daemon_free(c == (struct cfg_daemon *)1 ? NULL : c);
}

static int
ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

#define MINIMAL "tls:\n  cert: s.pem\n  key: s.key\nstate_dir: st\n"

/* ---- good files --------------------------------------------------------------------------- */

static void
test_example_loads(void)
{
	struct cfg_daemon *c = NULL;
	const struct cfg_partition *p;
	const struct cfg_tenant *t;
	int r;

	r = cfg_daemon_load(EXAMPLE, &c, err, sizeof(err));
	CU_ASSERT_EQUAL_FATAL(r, 0);
	if (r != 0) {
		fprintf(stderr, "  %s\n", err);
		return;
	}
	CU_ASSERT_EQUAL(c->path[0], '/');
	CU_ASSERT_TRUE(ends_with(c->path, "/" EXAMPLE));
	CU_ASSERT_STRING_EQUAL(c->gateway_id, "hsmgated@demo");
	CU_ASSERT_STRING_EQUAL(c->listen.address, "127.0.0.1");
	CU_ASSERT_EQUAL(c->listen.port, 7443);
	CU_ASSERT_TRUE(ends_with(c->tls.cert, "/config/examples/pki/server.pem"));
	CU_ASSERT_EQUAL(c->tls.cert[0], '/');
	CU_ASSERT_TRUE(ends_with(c->tls.client_ca, "/config/examples/pki/clients-ca.pem"));
	CU_ASSERT_EQUAL(c->limits.max_frame, 1048576);
	CU_ASSERT_TRUE(ends_with(c->state_dir, "/config/examples/state"));
	CU_ASSERT_TRUE(ends_with(c->policy, "/config/examples/policy.yaml"));
	CU_ASSERT_PTR_NOT_NULL_FATAL(c->audit);
	CU_ASSERT_TRUE(ends_with(c->audit->dir, "/config/examples/state/audit"));
	CU_ASSERT_TRUE(ends_with(c->audit->signing_key, "/config/examples/pki/audit-ed25519.key"));
	CU_ASSERT_STRING_EQUAL(c->audit->durability, "sync");
	CU_ASSERT_TRUE(c->audit->enabled);
	CU_ASSERT_EQUAL_FATAL(c->audit->n_sinks, 2);
	CU_ASSERT_STRING_EQUAL(c->audit->sinks[0].url, "syslog://siem.example:6514");
	CU_ASSERT_TRUE(ends_with(c->audit->sinks[0].cursor,
	                         "/config/examples/state/audit-sinks/siem.cursor"));
	CU_ASSERT_TRUE(ends_with(c->audit->sinks[1].url, "/config/examples/state/events.jsonl"));
	CU_ASSERT_EQUAL(c->n_tenants, 2);
	CU_ASSERT_EQUAL(c->n_partitions, 2);

	t = cfg_tenant_find(c, "acme");
	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_EQUAL_FATAL(t->n_principals, 2);
	CU_ASSERT_STRING_EQUAL(t->principals[0].cert_subject, "CN=alice,O=acme");
	CU_ASSERT_EQUAL(t->principals[0].n_groups, 2);
	CU_ASSERT_STRING_EQUAL(t->principals[1].kind, "service");
	CU_ASSERT_EQUAL_FATAL(t->principals[1].n_api_keys, 1);
	CU_ASSERT_EQUAL(cfg_apikey_verify(EXAMPLE_KEY, t->principals[1].api_keys[0]), 1);
	CU_ASSERT_STRING_EQUAL(cfg_tenant_find(c, "globex")->principals[0].kind, "user");
	CU_ASSERT_PTR_NULL(cfg_tenant_find(c, "nobody"));

	p = cfg_partition_find(c, "globex-hsm");
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	CU_ASSERT_STRING_EQUAL(p->backend, "pkcs11");
	CU_ASSERT_STRING_EQUAL(p->module, "/usr/lib/softhsm/libsofthsm2.so");
	CU_ASSERT_STRING_EQUAL(p->token, "globex");
	CU_ASSERT_PTR_EQUAL(cfg_partition_by_slot(c, 2), p);
	CU_ASSERT_PTR_EQUAL(cfg_partition_by_slot(c, 1), cfg_partition_find(c, "acme-prod"));
	CU_ASSERT_PTR_NULL(cfg_partition_by_slot(c, 3));
	CU_ASSERT_PTR_NULL(cfg_partition_find(c, "nope"));
	CU_ASSERT_TRUE(ends_with(cfg_partition_find(c, "acme-prod")->store,
	                         "/config/examples/state/acme-prod"));
	cfg_daemon_free(c);
}

static void
test_defaults(void)
{
	struct cfg_daemon *c = NULL;
	const struct cfg_partition *p;
	char want[PATH_MAX + 64];

	CU_ASSERT_EQUAL_FATAL(load_text(MINIMAL "tenants:\n"
	                                        "  - name: t1\n"
	                                        "    principals:\n"
	                                        "      - name: u\n"
	                                        "partitions:\n"
	                                        "  - name: p0\n"
	                                        "    tenant: t1\n"
	                                        "  - name: p1\n"
	                                        "    tenant: t1\n",
	                                &c),
	                      0);
	CU_ASSERT_EQUAL(strncmp(c->gateway_id, "hsmgated@", 9), 0);
	CU_ASSERT_STRING_EQUAL(c->listen.address, "127.0.0.1");
	CU_ASSERT_EQUAL(c->listen.port, 7443);
	CU_ASSERT_PTR_NULL(c->tls.client_ca);
	CU_ASSERT_EQUAL(c->limits.max_frame, 1048576);
	CU_ASSERT_EQUAL(c->limits.max_inflight, 64);
	CU_ASSERT_EQUAL(c->busy_poll_us, CFG_BUSY_POLL_US_DEFAULT);
	CU_ASSERT_EQUAL(c->limits.max_connections, 4096);
	CU_ASSERT_EQUAL(c->limits.handshake_timeout_ms, 10000);
	CU_ASSERT_EQUAL(c->limits.idle_timeout_s, 600);
	CU_ASSERT_PTR_NULL(c->policy);
	CU_ASSERT_PTR_NOT_NULL(c->worker);
	CU_ASSERT_TRUE(c->worker == NULL || ends_with(c->worker, "/hsmgate-worker"));
	CU_ASSERT_PTR_NOT_NULL_FATAL(c->audit);
	snprintf(want, sizeof(want), "%s/st/audit", tmp);
	CU_ASSERT_STRING_EQUAL(c->audit->dir, want);
	CU_ASSERT_PTR_NULL(c->audit->signing_key);
	CU_ASSERT_STRING_EQUAL(c->audit->durability, "sync");
	CU_ASSERT_EQUAL(c->audit->checkpoint_events, 1000);
	CU_ASSERT_EQUAL(c->audit->checkpoint_seconds, 10);
	CU_ASSERT_STRING_EQUAL(c->tenants[0].principals[0].kind, "user");
	CU_ASSERT_EQUAL(c->tenants[0].principals[0].n_api_keys, 0);
	CU_ASSERT_EQUAL_FATAL(c->n_partitions, 2);
	p = &c->partitions[1];
	CU_ASSERT_EQUAL(c->partitions[0].slot, 1);
	CU_ASSERT_EQUAL(p->slot, 2);
	CU_ASSERT_STRING_EQUAL(p->backend, "soft");
	CU_ASSERT_STRING_EQUAL(p->token_label, "p1");
	CU_ASSERT_EQUAL(p->crypto_threads, 0); /* the worker takes one per CPU */
	snprintf(want, sizeof(want), "%s/st/p1", tmp);
	CU_ASSERT_STRING_EQUAL(p->store, want);
	CU_ASSERT_PTR_NULL(p->module);
	cfg_daemon_free(c);
}

static void
test_relative_paths(void)
{
	struct cfg_daemon *c = NULL;
	char want[PATH_MAX + 64];

	CU_ASSERT_EQUAL_FATAL(load_text("tls:\n  cert: a/s.pem\n  key: /abs/s.key\n"
	                                "  client_ca: ../ca.pem\n"
	                                "state_dir: ./st\nworker: bin/w\npolicy: pol.yaml\n"
	                                "audit:\n  dir: logs\n  signing_key: k.pem\n"
	                                "tenants: [{name: t}]\n"
	                                "partitions:\n  - {name: p, tenant: t, store: db}\n"
	                                "  - {name: q, tenant: t, backend: pkcs11, module: lib.so, "
	                                "token: x}\n",
	                                &c),
	                      0);
	CU_ASSERT_STRING_EQUAL(c->path, file);
#define WANT(field, rel)                                                                           \
	do {                                                                                       \
		snprintf(want, sizeof(want), "%s/%s", tmp, rel);                                   \
		CU_ASSERT_STRING_EQUAL(field, want);                                               \
	} while (0)
	WANT(c->tls.cert, "a/s.pem");
	CU_ASSERT_STRING_EQUAL(c->tls.key, "/abs/s.key");
	WANT(c->tls.client_ca, "../ca.pem");
	WANT(c->state_dir, "./st");
	WANT(c->worker, "bin/w");
	WANT(c->policy, "pol.yaml");
	WANT(c->audit->dir, "logs");
	WANT(c->audit->signing_key, "k.pem");
	WANT(c->partitions[0].store, "db");
	WANT(c->partitions[1].module, "lib.so");
	CU_ASSERT_PTR_NULL(c->partitions[1].store);
#undef WANT
	cfg_daemon_free(c);
}

static void
test_relative_config_name(void)
{
	struct cfg_daemon *c = NULL;
	char cwd[PATH_MAX], want[PATH_MAX + 64];

	CU_ASSERT_PTR_NOT_NULL_FATAL(getcwd(cwd, sizeof(cwd)));
	CU_ASSERT_EQUAL_FATAL(test_file_write(file, MINIMAL, strlen(MINIMAL)), 0);
	CU_ASSERT_EQUAL_FATAL(chdir(tmp), 0);
	CU_ASSERT_EQUAL(cfg_daemon_load("hsmgated.yaml", &c, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL_FATAL(chdir(cwd), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_STRING_EQUAL(c->path, file);
	snprintf(want, sizeof(want), "%s/st", tmp);
	CU_ASSERT_STRING_EQUAL(c->state_dir, want);
	cfg_daemon_free(c);
}

static void
test_explicit_values_kept(void)
{
	struct cfg_daemon *c = NULL;

	CU_ASSERT_EQUAL_FATAL(load_text(MINIMAL
	                                "listen: {port: 0, address: '::'}\n"
	                                "limits: {max_frame: 4096, max_inflight: 1}\n"
	                                "audit: {durability: async, checkpoint_events: 5}\n"
	                                "tenants: [{name: t}]\n"
	                                "partitions:\n"
	                                "  - {name: a, tenant: t, slot: 255, token_label: L}\n"
	                                "  - {name: b, tenant: t, crypto_threads: 64}\n",
	                                &c),
	                      0);
	CU_ASSERT_EQUAL(c->listen.port, 0); /* 0 = any free port, not "absent" */
	CU_ASSERT_STRING_EQUAL(c->listen.address, "::");
	CU_ASSERT_EQUAL(c->limits.max_frame, 4096);
	CU_ASSERT_EQUAL(c->limits.max_inflight, 1);
	CU_ASSERT_EQUAL(c->limits.max_connections, 4096);
	CU_ASSERT_STRING_EQUAL(c->audit->durability, "async");
	CU_ASSERT_EQUAL(c->audit->checkpoint_events, 5);
	CU_ASSERT_EQUAL(c->audit->checkpoint_seconds, 10);
	CU_ASSERT_EQUAL(c->partitions[0].slot, 255);
	CU_ASSERT_STRING_EQUAL(c->partitions[0].token_label, "L");
	CU_ASSERT_EQUAL(c->partitions[1].slot, 2);
	CU_ASSERT_EQUAL(c->partitions[1].crypto_threads, 64);
	cfg_daemon_free(c);
}

/* ---- refusals: schema --------------------------------------------------------------------- */

static void
test_unknown_key(void)
{
	expect_fail(MINIMAL "listen:\n  address: x\n  prot: 1\n", CFG_ERR_SYNTAX, 7,
	            "7:3: unknown key 'prot' (in listen)");
}

static void
test_unknown_key_top(void)
{
	expect_fail("statedir: x\n" MINIMAL, CFG_ERR_SYNTAX, 1, "1:1: unknown key 'statedir'");
}

static void
test_unknown_key_nested_list(void)
{
	expect_fail(MINIMAL "tenants:\n  - name: a\n    principals:\n      - name: b\n"
	                    "        knd: user\n",
	            CFG_ERR_SYNTAX, 9, "unknown key 'knd' (in tenants[0].principals[0])");
}

static void
test_wrong_type_uint(void)
{
	expect_fail(MINIMAL "listen:\n  port: abc\n", CFG_ERR_SYNTAX, 6,
	            "6:9: key 'port': expected an unsigned integer");
}

static void
test_wrong_type_negative(void)
{
	expect_fail(MINIMAL "limits:\n  max_inflight: -1\n", CFG_ERR_SYNTAX, 6,
	            "key 'max_inflight': expected an unsigned integer");
}

static void
test_wrong_type_octal(void)
{
	/* libcyaml would read 010 as 8 */
	expect_fail(MINIMAL "limits:\n  max_inflight: 010\n", CFG_ERR_SYNTAX, 6,
	            "key 'max_inflight': expected an unsigned integer");
}

static void
test_wrong_type_mapping(void)
{
	expect_fail("tls: [a, b]\nstate_dir: x\n", CFG_ERR_SYNTAX, 1,
	            "1:6: key 'tls': expected a mapping");
}

static void
test_wrong_type_string(void)
{
	expect_fail(MINIMAL "policy: [a]\n", CFG_ERR_SYNTAX, 5, "key 'policy': expected a");
}

static void
test_wrong_type_list(void)
{
	expect_fail(MINIMAL "tenants: acme\n", CFG_ERR_SYNTAX, 5, "key 'tenants': expected a list");
}

static void
test_empty_string(void)
{
	expect_fail(MINIMAL "policy: ''\n", CFG_ERR_SYNTAX, 5,
	            "key 'policy': expected a non-empty string");
}

static void
test_null_string(void)
{
	expect_fail(MINIMAL "policy: ~\n", CFG_ERR_SYNTAX, 5,
	            "key 'policy': expected a non-empty "
	            "string, not null");
}

static void
test_port_out_of_range(void)
{
	expect_fail(MINIMAL "listen:\n  port: 65536\n", CFG_ERR_SYNTAX, 6,
	            "key 'port': 65536 is out of range (at most 65535)");
}

static void
test_missing_required_top(void)
{
	struct cfg_daemon *c = NULL;
	char want[PATH_MAX + 64];

	expect_fail("tls:\n  cert: a\n  key: b\n", CFG_ERR_SYNTAX, 0,
	            "missing required key 'state_dir'");
	snprintf(want, sizeof(want), "%s: missing required key 'state_dir'", file);
	CU_ASSERT_STRING_EQUAL(err, want);
	cfg_daemon_free(c);
}

static void
test_missing_required_nested(void)
{
	expect_fail("state_dir: x\ntls:\n  cert: a\n", CFG_ERR_SYNTAX, 3,
	            "missing required key 'key' (in tls)");
}

static void
test_missing_partition_tenant(void)
{
	expect_fail(MINIMAL "partitions:\n  - name: p\n", CFG_ERR_SYNTAX, 6,
	            "missing required key 'tenant' (in partitions[0])");
}

static void
test_duplicate_key(void)
{
	expect_fail(MINIMAL "state_dir: y\n", CFG_ERR_SYNTAX, 5, "5:1: duplicate key 'state_dir'");
}

/* ---- refusals: not a config at all -------------------------------------------------------- */

static void
test_unreadable_file(void)
{
	struct cfg_daemon *c = (struct cfg_daemon *)1;
	char path[PATH_MAX + 16];

	snprintf(path, sizeof(path), "%s/missing.yaml", tmp);
	CU_ASSERT_EQUAL(cfg_daemon_load(path, &c, err, sizeof(err)), CFG_ERR_IO);
	CU_ASSERT_PTR_NULL(c);
	CU_ASSERT_EQUAL(strncmp(err, path, strlen(path)), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "cannot read: No such file"));

	CU_ASSERT_EQUAL(cfg_daemon_load(tmp, &c, err, sizeof(err)), CFG_ERR_IO);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "is a directory"));
	CU_ASSERT_EQUAL(cfg_daemon_load("", &c, err, sizeof(err)), CFG_ERR_IO);
}

static void
test_not_yaml(void)
{
	expect_fail("tls: {cert: a, key: b\nstate_dir: x\n", CFG_ERR_SYNTAX, 2, "not valid YAML");
}

static void
test_not_yaml_tab(void)
{
	expect_fail("tls:\n\tcert: a\n", CFG_ERR_SYNTAX, 2, "not valid YAML");
}

static void
test_not_utf8(void)
{
	expect_fail("state_dir: \xff\xfe\n", CFG_ERR_SYNTAX, 0, "not valid YAML");
}

static void
test_syntax_error_first(void)
{
	/* the unknown key on line 1 comes first, but a file that is not YAML is said so */
	expect_fail("bogus: 1\n" MINIMAL "tenants: [\n", CFG_ERR_SYNTAX, 7, "not valid YAML");
}

static void
test_empty_file(void)
{
	expect_fail("", CFG_ERR_SYNTAX, 0, "empty file");
	expect_fail("# only a comment\n", CFG_ERR_SYNTAX, 0, "empty file");
	expect_fail("---\n", CFG_ERR_SYNTAX, 2, "empty document");
}

static void
test_top_not_mapping(void)
{
	expect_fail("- a\n- b\n", CFG_ERR_SYNTAX, 1, "expected a mapping");
	expect_fail("hello\n", CFG_ERR_SYNTAX, 1, "expected a mapping");
}

static void
test_alias_refused(void)
{
	expect_fail(MINIMAL "tenants:\n  - &t {name: a}\n  - *t\n", CFG_ERR_SYNTAX, 7,
	            "aliases are not supported");
}

static void
test_two_documents(void)
{
	expect_fail(MINIMAL "---\n" MINIMAL, CFG_ERR_SYNTAX, 5, "only one YAML document");
}

/* ---- refusals: semantics ------------------------------------------------------------------ */

static void
test_bad_tenant_name(void)
{
	expect_fail(MINIMAL "tenants:\n  - name: Acme\n", CFG_ERR_INVALID, 6,
	            "6:11: tenants[0].name: 'Acme' is not a valid name");
}

static void
test_bad_partition_name(void)
{
	expect_fail(MINIMAL "tenants: [{name: a}]\npartitions:\n  - name: -p\n    tenant: a\n",
	            CFG_ERR_INVALID, 7, "partitions[0].name: '-p' is not a valid name");
}

static void
test_name_too_long(void)
{
	expect_fail(MINIMAL "tenants:\n  - name: "
	                    "a123456789012345678901234567890123456789012345678901234567890123\n",
	            CFG_ERR_SYNTAX, 6, "key 'name': longer than 63 characters");
}

static void
test_bad_principal_name(void)
{
	expect_fail(MINIMAL "tenants:\n  - name: a\n    principals:\n      - name: al/ice\n",
	            CFG_ERR_INVALID, 8, "tenants[0].principals[0].name: 'al/ice' is not a valid");
}

static void
test_duplicate_tenant(void)
{
	expect_fail(MINIMAL "tenants:\n  - name: a\n  - name: a\n", CFG_ERR_INVALID, 7,
	            "tenants[1].name: duplicate tenant name 'a'");
}

static void
test_duplicate_partition(void)
{
	expect_fail(MINIMAL "tenants: [{name: t}]\npartitions:\n  - {name: p, tenant: t}\n"
	                    "  - {name: p, tenant: t}\n",
	            CFG_ERR_INVALID, 8, "partitions[1].name: duplicate partition name 'p'");
}

static void
test_duplicate_slot(void)
{
	expect_fail(MINIMAL "tenants: [{name: t}]\npartitions:\n"
	                    "  - name: p\n    tenant: t\n    slot: 3\n"
	                    "  - name: q\n    tenant: t\n    slot: 3\n",
	            CFG_ERR_INVALID, 12, "12:11: partitions[1].slot: duplicate slot 3");
}

static void
test_duplicate_default_slot(void)
{
	/* the second partition's default slot (2) is the first one's explicit slot */
	expect_fail(MINIMAL "tenants: [{name: t}]\npartitions:\n"
	                    "  - name: p\n    tenant: t\n    slot: 2\n"
	                    "  - name: q\n    tenant: t\n",
	            CFG_ERR_INVALID, 10, "partitions[1].slot: duplicate slot 2");
}

static void
test_slot_out_of_range(void)
{
	expect_fail(MINIMAL
	            "tenants: [{name: t}]\npartitions:\n  - {name: p, tenant: t, slot: 0}\n",
	            CFG_ERR_INVALID, 7, "partitions[0].slot: slot 0 is out of range (1..255)");
	expect_fail(MINIMAL "tenants: [{name: t}]\npartitions:\n"
	                    "  - {name: p, tenant: t, slot: 256}\n",
	            CFG_ERR_INVALID, 7, "slot 256 is out of range");
}

static void
test_crypto_threads_out_of_range(void)
{
	expect_fail(MINIMAL "tenants: [{name: t}]\npartitions:\n"
	                    "  - {name: p, tenant: t, crypto_threads: 0}\n",
	            CFG_ERR_INVALID, 7,
	            "partitions[0].crypto_threads: crypto_threads 0 is out of range (1..64)");
	expect_fail(MINIMAL "tenants: [{name: t}]\npartitions:\n"
	                    "  - {name: p, tenant: t, crypto_threads: 65}\n",
	            CFG_ERR_INVALID, 7, "crypto_threads 65 is out of range (1..64)");
	expect_fail(MINIMAL "tenants: [{name: t}]\npartitions:\n"
	                    "  - {name: p, tenant: t, crypto_threads: two}\n",
	            CFG_ERR_SYNTAX, 7, "crypto_threads");
}

static void
test_busy_poll(void)
{
	struct cfg_daemon *c = NULL;

	CU_ASSERT_EQUAL_FATAL(load_text(MINIMAL "busy_poll_us: 0\n", &c), 0);
	CU_ASSERT_EQUAL(c->busy_poll_us, 0); /* never */
	cfg_daemon_free(c);
	c = NULL;
	CU_ASSERT_EQUAL_FATAL(load_text(MINIMAL "busy_poll_us: 10000\n", &c), 0);
	CU_ASSERT_EQUAL(c->busy_poll_us, 10000);
	cfg_daemon_free(c);
	expect_fail(MINIMAL "busy_poll_us: 10001\n", CFG_ERR_INVALID, 5,
	            "busy_poll_us: 10001 is out of range (0..10000)");
	expect_fail(MINIMAL "busy_poll_us: -1\n", CFG_ERR_SYNTAX, 5, "busy_poll_us");
}

static void
test_unknown_tenant(void)
{
	expect_fail(MINIMAL "tenants:\n  - name: globex\npartitions:\n"
	                    "  - name: p\n    tenant: globex\n"
	                    "  - name: q\n    tenant: acme\n",
	            CFG_ERR_INVALID, 11, "11:13: partitions[1].tenant: unknown tenant 'acme'");
}

static void
test_bad_backend(void)
{
	expect_fail(MINIMAL "tenants: [{name: t}]\npartitions:\n"
	                    "  - name: p\n    tenant: t\n    backend: hsm\n",
	            CFG_ERR_INVALID, 9, "9:14: partitions[0].backend: unknown backend 'hsm'");
}

static void
test_pkcs11_needs_module(void)
{
	expect_fail(MINIMAL "tenants: [{name: t}]\npartitions:\n"
	                    "  - name: p\n    tenant: t\n    backend: pkcs11\n    token: x\n",
	            CFG_ERR_INVALID, 9, "backend 'pkcs11' needs 'module' and 'token'");
}

static void
test_bad_kind(void)
{
	expect_fail(MINIMAL "tenants:\n  - name: a\n    principals:\n      - name: b\n"
	                    "        kind: robot\n",
	            CFG_ERR_INVALID, 9, "tenants[0].principals[0].kind: unknown kind 'robot'");
}

static void
test_duplicate_principal(void)
{
	expect_fail(MINIMAL "tenants:\n  - name: a\n    principals:\n      - name: b\n"
	                    "      - name: b\n",
	            CFG_ERR_INVALID, 9, "duplicate user 'b' in tenant 'a'");
}

static void
test_duplicate_cert_subject(void)
{
	expect_fail(MINIMAL "tenants:\n  - name: a\n    principals:\n"
	                    "      - {name: b, cert_subject: 'CN=x'}\n"
	                    "  - name: c\n    principals:\n"
	                    "      - {name: d, cert_subject: 'CN=x'}\n",
	            CFG_ERR_INVALID, 11, "tenants[1].principals[0].cert_subject: already mapped");
}

static void
test_bad_api_key_hash(void)
{
	const char *secret = "hsk_this-is-a-key-not-a-hash";
	char yaml[1024];

	snprintf(yaml, sizeof(yaml),
	         MINIMAL "tenants:\n  - name: a\n    principals:\n      - name: b\n"
	                 "        api_keys:\n          - '%s'\n          - '%s'\n",
	         HASH, secret);
	expect_fail(yaml, CFG_ERR_INVALID, 11,
	            "tenants[0].principals[0].api_keys[1]: not an API key hash");
	CU_ASSERT_PTR_NULL(strstr(err, secret));
	CU_ASSERT_PTR_NULL(strstr(err, "this-is-a-key"));
}

static void
test_bad_api_key_hash_variants(void)
{
	static const char *bad[] = {
	        "pbkdf2-sha256$10000$S3c+qhr9XlOFfoIH9IVBTw==",
	        "pbkdf2-sha1$10000$S3c+qhr9XlOFfoIH9IVBTw==$5lCJ7avGBrGTIy/"
	        "E9malJwS7Ll7xtKVKER4caOti65g=",
	        "pbkdf2-sha256$0$S3c+qhr9XlOFfoIH9IVBTw==$5lCJ7avGBrGTIy/"
	        "E9malJwS7Ll7xtKVKER4caOti65g=",
	        "pbkdf2-sha256$99999999$S3c+qhr9XlOFfoIH9IVBTw==$5lCJ7avGBrGTIy/"
	        "E9malJwS7Ll7xtKVKER4caOti65g=",
	        "pbkdf2-sha256$10000$S3c+qhr9XlOFfoIH9IVBT===$5lCJ7avGBrGTIy/"
	        "E9malJwS7Ll7xtKVKER4caOti65g=",
	        "pbkdf2-sha256$10000$S3c+qhr9XlOFfoIH9IVBTw==$5lCJ7avGBrGTIy/"
	        "E9malJwS7Ll7xtKVKER4caOti6",
	        "pbkdf2-sha256$10000$$5lCJ7avGBrGTIy/E9malJwS7Ll7xtKVKER4caOti65g=",
	        "pbkdf2-sha256$10000$S3c+qhr9XlOFfoIH9IVBTw==$5lCJ7avGBrGTIy/"
	        "E9malJwS7Ll7xtKVKER4caOti65g=$",
	        NULL,
	};
	char yaml[1024];
	unsigned i;

	for (i = 0; bad[i] != NULL; i++) {
		snprintf(yaml, sizeof(yaml),
		         MINIMAL "tenants:\n  - name: a\n    principals:\n      - name: b\n"
		                 "        api_keys: ['%s']\n",
		         bad[i]);
		expect_fail(yaml, CFG_ERR_INVALID, 9, "api_keys[0]: not an API key hash");
	}
}

static void
test_limits_ranges(void)
{
	expect_fail(MINIMAL "limits:\n  max_frame: 4095\n", CFG_ERR_INVALID, 6,
	            "limits.max_frame: 4095 is out of range (4096..16777216)");
	expect_fail(MINIMAL "limits:\n  max_frame: 16777217\n", CFG_ERR_INVALID, 6,
	            "limits.max_frame: 16777217 is out of range");
	expect_fail(MINIMAL "limits:\n  idle_timeout_s: 0\n", CFG_ERR_INVALID, 6,
	            "limits.idle_timeout_s: 0 is out of range");
	expect_fail(MINIMAL "limits:\n  max_connections: 4294967296\n", CFG_ERR_SYNTAX, 6,
	            "key 'max_connections': 4294967296 is out of range");
}

static void
test_bad_durability(void)
{
	expect_fail(MINIMAL "audit:\n  durability: later\n", CFG_ERR_INVALID, 6,
	            "audit.durability: unknown durability 'later'");
	expect_fail(MINIMAL "audit:\n  checkpoint_seconds: 0\n", CFG_ERR_INVALID, 6,
	            "audit.checkpoint_seconds: 0 is out of range");
}

/* ---- audit sinks and audit.enabled ------------------------------------------------------- */

#define SINKS MINIMAL "audit:\n  sinks:\n"

static void
test_sink_defaults(void)
{
	struct cfg_daemon *c = NULL;
	const struct cfg_audit_sink *k;
	char want[PATH_MAX + 64];

	CU_ASSERT_EQUAL_FATAL(load_text(SINKS "    - name: siem\n"
	                                      "      url: syslog://siem.example\n"
	                                      "      ca: ca.pem\n"
	                                      "    - name: jsonl\n"
	                                      "      url: file:out/events.jsonl\n",
	                                &c),
	                      0);
	CU_ASSERT_TRUE(c->audit->enabled);
	CU_ASSERT_EQUAL_FATAL(c->audit->n_sinks, 2);
	k = &c->audit->sinks[0];
	CU_ASSERT_STRING_EQUAL(k->name, "siem");
	CU_ASSERT_STRING_EQUAL(k->url, "syslog://siem.example");
	snprintf(want, sizeof(want), "%s/ca.pem", tmp);
	CU_ASSERT_STRING_EQUAL(k->ca, want);
	snprintf(want, sizeof(want), "%s/st/audit-sinks/siem.cursor", tmp);
	CU_ASSERT_STRING_EQUAL(k->cursor, want);
	CU_ASSERT_EQUAL(k->spool_soft, 1000000);
	CU_ASSERT_EQUAL(k->spool_hard, 10000000);
	CU_ASSERT_TRUE(k->required);
	CU_ASSERT_PTR_NULL(k->cert);
	CU_ASSERT_PTR_NULL(k->quarantine);
	/* a relative file: URL is relative to the config file, like every path */
	snprintf(want, sizeof(want), "file:%s/out/events.jsonl", tmp);
	CU_ASSERT_STRING_EQUAL(c->audit->sinks[1].url, want);
	cfg_daemon_free(c);
}

static void
test_sink_explicit_values(void)
{
	struct cfg_daemon *c = NULL;
	const struct cfg_audit_sink *k;

	CU_ASSERT_EQUAL_FATAL(load_text(MINIMAL "audit:\n"
	                                        "  enabled: false\n"
	                                        "  sinks:\n"
	                                        "    - name: logs\n"
	                                        "      url: https://[::1]:8443/v1/ingest\n"
	                                        "      token_file: /etc/token\n"
	                                        "      cursor: /var/c\n"
	                                        "      quarantine: /var/q\n"
	                                        "      cert: c.pem\n"
	                                        "      key: c.key\n"
	                                        "      spool_soft: 0\n"
	                                        "      spool_hard: 0\n"
	                                        "      required: false\n"
	                                        "    - name: siem\n"
	                                        "      url: syslog://10.0.0.1:6514\n"
	                                        "      hostname: gw1\n"
	                                        "      spool_soft: 20\n"
	                                        "      spool_hard: 20\n"
	                                        "      required: true\n"
	                                        "    - name: relp\n"
	                                        "      url: relp://[fd00::7]:2514\n"
	                                        "      ca: /etc/ca.pem\n"
	                                        "      cert: c.pem\n"
	                                        "      key: c.key\n"
	                                        "      hostname: gw1\n",
	                                &c),
	                      0);
	CU_ASSERT_FALSE(c->audit->enabled);
	CU_ASSERT_EQUAL_FATAL(c->audit->n_sinks, 3);
	CU_ASSERT_STRING_EQUAL(c->audit->sinks[2].url, "relp://[fd00::7]:2514");
	CU_ASSERT_STRING_EQUAL(c->audit->sinks[2].hostname, "gw1");
	k = &c->audit->sinks[0];
	CU_ASSERT_STRING_EQUAL(k->url, "https://[::1]:8443/v1/ingest");
	CU_ASSERT_STRING_EQUAL(k->token_file, "/etc/token");
	CU_ASSERT_STRING_EQUAL(k->cursor, "/var/c");
	CU_ASSERT_STRING_EQUAL(k->quarantine, "/var/q");
	CU_ASSERT_EQUAL(k->spool_soft, 0);
	CU_ASSERT_EQUAL(k->spool_hard, 0);
	CU_ASSERT_FALSE(k->required);
	k = &c->audit->sinks[1];
	CU_ASSERT_STRING_EQUAL(k->hostname, "gw1");
	CU_ASSERT_EQUAL(k->spool_soft, 20);
	CU_ASSERT_EQUAL(k->spool_hard, 20);
	CU_ASSERT_TRUE(k->required);
	cfg_daemon_free(c);
}

static void
test_bad_bool(void)
{
	/* libcyaml alone would read "flase" as true */
	expect_fail(MINIMAL "audit:\n  enabled: flase\n", CFG_ERR_SYNTAX, 6,
	            "6:12: key 'enabled': expected true or false (in audit)");
	expect_fail(MINIMAL "audit:\n  enabled: 'false'\n", CFG_ERR_SYNTAX, 6,
	            "key 'enabled': expected true or false");
	expect_fail(MINIMAL "audit:\n  enabled: [true]\n", CFG_ERR_SYNTAX, 6,
	            "key 'enabled': expected true or false");
}

static void
test_sink_unknown_key(void)
{
	expect_fail(SINKS "    - name: a\n      url: file:/x\n      spool_sfot: 3\n",
	            CFG_ERR_SYNTAX, 9, "9:7: unknown key 'spool_sfot' (in audit.sinks[0])");
}

static void
test_sink_missing_url(void)
{
	expect_fail(SINKS "    - name: a\n", CFG_ERR_SYNTAX, 7,
	            "missing required key 'url' (in audit.sinks[0])");
}

static void
test_sink_bad_scheme(void)
{
	expect_fail(SINKS "    - name: a\n      url: ftp://user:secret@h/x\n", CFG_ERR_INVALID, 8,
	            "8:12: audit.sinks[0].url: unknown URL scheme (file:PATH, syslog://");
	/* the URL is not quoted back: it may hold a credential */
	CU_ASSERT_PTR_NULL(strstr(err, "secret"));
}

static void
test_sink_http_refused(void)
{
	expect_fail(SINKS "    - name: a\n      url: http://127.0.0.1:8080/x\n", CFG_ERR_INVALID, 8,
	            "audit.sinks[0].url: http:// sends events without TLS; use https://");
}

static void
test_sink_bad_target(void)
{
	static const struct {
		const char *url, *why;
	} bad[] = {
	        {"syslog://", "bad syslog URL: no host"},
	        {"syslog://:6514", "bad syslog URL: no host"},
	        {"syslog://h:0", "bad syslog URL: the port is out of range"},
	        {"syslog://h:65536", "bad syslog URL: the port is out of range"},
	        {"syslog://h:x", "bad syslog URL: the port is not a number"},
	        {"syslog://h:514/path", "bad syslog URL: a path after the port"},
	        {"relp://h", "bad relp URL: no port (HOST:PORT): RELP has no assigned port"},
	        {"relp://[::1]", "bad relp URL: no port"},
	        {"relp://h:2514/x", "bad relp URL: a path after the port"},
	        {"relp://:2514", "bad relp URL: no host"},
	        {"syslog://h x", "bad syslog URL: the host has a character"},
	        {"https://[::1/x", "bad https URL: a bracketed IPv6 address needs"},
	        {"https://h:443x", "bad https URL: unexpected characters after the host"},
	        {"'file:'", "bad file URL: file: needs a path"},
	};
	char yaml[512];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(yaml, sizeof(yaml), SINKS "    - name: a\n      url: %s\n", bad[i].url);
		expect_fail(yaml, CFG_ERR_INVALID, 8, bad[i].why);
	}
}

static void
test_sink_bad_name(void)
{
	expect_fail(SINKS "    - name: SIEM\n      url: file:/x\n", CFG_ERR_INVALID, 7,
	            "audit.sinks[0].name: 'SIEM' is not a valid name");
}

static void
test_sink_duplicate_name(void)
{
	expect_fail(SINKS "    - name: a\n      url: file:/x\n"
	                  "    - name: a\n      url: file:/y\n",
	            CFG_ERR_INVALID, 9,
	            "9:13: audit.sinks[1].name: duplicate sink name 'a' (also audit.sinks[0])");
}

static void
test_sink_duplicate_cursor(void)
{
	expect_fail(SINKS "    - name: a\n      url: file:/x\n      cursor: /c\n"
	                  "    - name: b\n      url: file:/y\n      cursor: /c\n",
	            CFG_ERR_INVALID, 12,
	            "audit.sinks[1].cursor: audit.sinks[0] uses the same cursor file");
}

static void
test_sink_soft_over_hard(void)
{
	expect_fail(SINKS "    - name: a\n      url: file:/x\n      spool_soft: 300\n"
	                  "      spool_hard: 200\n",
	            CFG_ERR_INVALID, 9, "audit.sinks[0].spool_soft: 300 is above spool_hard 200");
}

static void
test_sink_key_not_applicable(void)
{
	expect_fail(SINKS "    - name: a\n      url: file:/x\n      ca: ca.pem\n", CFG_ERR_INVALID,
	            9, "audit.sinks[0].ca: does not apply to a file sink");
	expect_fail(SINKS "    - name: a\n      url: syslog://h\n      token_file: t\n",
	            CFG_ERR_INVALID, 9,
	            "audit.sinks[0].token_file: does not apply to a syslog sink");
	expect_fail(SINKS "    - name: a\n      url: relp://h:2514\n      quarantine: q\n",
	            CFG_ERR_INVALID, 9, "audit.sinks[0].quarantine: does not apply to a relp sink");
	expect_fail(SINKS "    - name: a\n      url: https://h/\n      hostname: gw\n",
	            CFG_ERR_INVALID, 9, "audit.sinks[0].hostname: does not apply to a https sink");
}

static void
test_sink_cert_without_key(void)
{
	expect_fail(SINKS "    - name: a\n      url: syslog://h\n      cert: c.pem\n",
	            CFG_ERR_INVALID, 9,
	            "audit.sinks[0].cert: a client certificate needs both 'cert' and 'key'");
}

static void
test_sink_too_many(void)
{
	char yaml[4096];
	size_t o;
	unsigned i;

	o = (size_t)snprintf(yaml, sizeof(yaml), "%s", SINKS);
	for (i = 0; i <= CFG_MAX_SINKS; i++) {
		o += (size_t)snprintf(yaml + o, sizeof(yaml) - o,
		                      "    - {name: s%u, url: 'file:/%u'}\n", i, i);
	}
	expect_fail(yaml, CFG_ERR_SYNTAX, 7, "7:5: key 'sinks': at most 16 entries (in audit)");
}

static void
test_small_error_buffer(void)
{
	struct cfg_daemon *c = NULL;
	char small[8];

	CU_ASSERT_EQUAL_FATAL(test_file_write(file, "x: 1\n", 5), 0);
	CU_ASSERT_EQUAL(cfg_daemon_load(file, &c, small, sizeof(small)), CFG_ERR_SYNTAX);
	CU_ASSERT_EQUAL(strlen(small), sizeof(small) - 1);
	CU_ASSERT_EQUAL(cfg_daemon_load(file, &c, NULL, 0), CFG_ERR_SYNTAX);
	CU_ASSERT_PTR_NULL(c);
}

/* ---- robustness: every prefix and deterministic bit flips of the example ------------------ */

static char *
read_example(size_t *len)
{
	FILE *f = fopen(EXAMPLE, "rb");
	char *buf;

	if (f == NULL) {
		return NULL;
	}
	buf = calloc(1, 65536);
	*len = fread(buf, 1, 65535, f);
	fclose(f);
	return buf;
}

static void
test_truncated_every_byte(void)
{
	struct cfg_daemon *c;
	size_t len, i;
	unsigned ok = 0;
	char *buf = read_example(&len);
	char name[PATH_MAX + 32];

	CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
	snprintf(name, sizeof(name), "%s/t.yaml", tmp);
	for (i = 0; i <= len; i++) {
		int r = cfg_daemon_load_buf(name, buf, i, &c, err, sizeof(err));

		if (r == 0) {
			ok++;
			cfg_daemon_free(c);
		} else {
			CU_ASSERT_PTR_NULL(c);
			CU_ASSERT_TRUE(r == CFG_ERR_SYNTAX || r == CFG_ERR_INVALID);
			CU_ASSERT_EQUAL(strncmp(err, name, strlen(name)), 0);
		}
	}
	CU_ASSERT_TRUE(ok >= 1); /* at least the whole file */
	free(buf);
}

static void
test_bit_flips(void)
{
	struct cfg_daemon *c;
	size_t len, i;
	char *buf = read_example(&len);
	uint32_t x = 2463534242u;

	CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
	for (i = 0; i < 3000; i++) {
		size_t at;
		unsigned bit;
		int r;

		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		at = x % len;
		bit = (x >> 24) & 7;
		buf[at] ^= (char)(1u << bit);
		r = cfg_daemon_load_buf("/tmp/flip.yaml", buf, len, &c, err, sizeof(err));
		if (r == 0) {
			cfg_daemon_free(c);
		} else {
			CU_ASSERT_PTR_NULL(c);
			CU_ASSERT_EQUAL(strncmp(err, "/tmp/flip.yaml", 14), 0);
		}
		buf[at] ^= (char)(1u << bit);
	}
	free(buf);
}

static const struct test_case cases[] = {
        {"example_loads", test_example_loads},
        {"defaults", test_defaults},
        {"relative_paths", test_relative_paths},
        {"relative_config_name", test_relative_config_name},
        {"explicit_values_kept", test_explicit_values_kept},
        {"unknown_key", test_unknown_key},
        {"unknown_key_top", test_unknown_key_top},
        {"unknown_key_nested_list", test_unknown_key_nested_list},
        {"wrong_type_uint", test_wrong_type_uint},
        {"wrong_type_negative", test_wrong_type_negative},
        {"wrong_type_octal", test_wrong_type_octal},
        {"wrong_type_mapping", test_wrong_type_mapping},
        {"wrong_type_string", test_wrong_type_string},
        {"wrong_type_list", test_wrong_type_list},
        {"empty_string", test_empty_string},
        {"null_string", test_null_string},
        {"port_out_of_range", test_port_out_of_range},
        {"missing_required_top", test_missing_required_top},
        {"missing_required_nested", test_missing_required_nested},
        {"missing_partition_tenant", test_missing_partition_tenant},
        {"duplicate_key", test_duplicate_key},
        {"unreadable_file", test_unreadable_file},
        {"not_yaml", test_not_yaml},
        {"not_yaml_tab", test_not_yaml_tab},
        {"not_utf8", test_not_utf8},
        {"syntax_error_first", test_syntax_error_first},
        {"empty_file", test_empty_file},
        {"top_not_mapping", test_top_not_mapping},
        {"alias_refused", test_alias_refused},
        {"two_documents", test_two_documents},
        {"bad_tenant_name", test_bad_tenant_name},
        {"bad_partition_name", test_bad_partition_name},
        {"name_too_long", test_name_too_long},
        {"bad_principal_name", test_bad_principal_name},
        {"duplicate_tenant", test_duplicate_tenant},
        {"duplicate_partition", test_duplicate_partition},
        {"duplicate_slot", test_duplicate_slot},
        {"duplicate_default_slot", test_duplicate_default_slot},
        {"slot_out_of_range", test_slot_out_of_range},
        {"crypto_threads_out_of_range", test_crypto_threads_out_of_range},
        {"busy_poll_us: 0..10000", test_busy_poll},
        {"unknown_tenant", test_unknown_tenant},
        {"bad_backend", test_bad_backend},
        {"pkcs11_needs_module", test_pkcs11_needs_module},
        {"bad_kind", test_bad_kind},
        {"duplicate_principal", test_duplicate_principal},
        {"duplicate_cert_subject", test_duplicate_cert_subject},
        {"bad_api_key_hash", test_bad_api_key_hash},
        {"bad_api_key_hash_variants", test_bad_api_key_hash_variants},
        {"limits_ranges", test_limits_ranges},
        {"bad_durability", test_bad_durability},
        {"sink_defaults", test_sink_defaults},
        {"sink_explicit_values", test_sink_explicit_values},
        {"bad_bool", test_bad_bool},
        {"sink_unknown_key", test_sink_unknown_key},
        {"sink_missing_url", test_sink_missing_url},
        {"sink_bad_scheme", test_sink_bad_scheme},
        {"sink_http_refused", test_sink_http_refused},
        {"sink_bad_target", test_sink_bad_target},
        {"sink_bad_name", test_sink_bad_name},
        {"sink_duplicate_name", test_sink_duplicate_name},
        {"sink_duplicate_cursor", test_sink_duplicate_cursor},
        {"sink_soft_over_hard", test_sink_soft_over_hard},
        {"sink_key_not_applicable", test_sink_key_not_applicable},
        {"sink_cert_without_key", test_sink_cert_without_key},
        {"sink_too_many", test_sink_too_many},
        {"small_error_buffer", test_small_error_buffer},
        {"truncated_every_byte", test_truncated_every_byte},
        {"bit_flips", test_bit_flips},
        {NULL, NULL},
};

void
test_register(void)
{
	test_suite_add("config/daemon", suite_init, suite_cleanup, cases);
}
