/* tests/gateway/test_policy.c — gateway/policy.c: which calls the gateway decides, the
 * request it builds (principal, resource, context keys), deny/allow/shadow, loading. */
#include "gateway/gw_int.h"
#include "tests/lib/test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char policy_text[] =
        "version: 1\n"
        "statements:\n"
        "  - sid: AcmeAll\n"
        "    effect: allow\n"
        "    principals: [\"tenant/acme/*\"]\n"
        "    actions: [\"hsm.*\"]\n"
        "    resources: [\"crn:hsmgate:acme\", \"crn:hsmgate:acme:*\"]\n"
        "  - sid: NoRandomForBob\n"
        "    effect: deny\n"
        "    principals: tenant/acme/user/bob\n"
        "    actions: hsm.random.generate\n"
        "    resources: \"*\"\n"
        "  - sid: SmallRandomOnly\n"
        "    effect: deny\n"
        "    principals: \"*\"\n"
        "    actions: hsm.random.generate\n"
        "    resources: \"*\"\n"
        "    conditions:\n"
        "      NumericGreaterThan: { \"hsm:Length\": \"1024\" }\n"
        "  - sid: NoDigestFromLab\n"
        "    effect: deny\n"
        "    principals: \"*\"\n"
        "    actions: hsm.crypto.digest\n"
        "    resources: \"*\"\n"
        "    conditions:\n"
        "      IpAddress: { \"gw:SourceIp\": 10.9.0.0/16 }\n"
        "  - sid: NoSoLogin\n"
        "    effect: deny\n"
        "    principals: \"*\"\n"
        "    actions: hsm.session.login\n"
        "    resources: \"*\"\n"
        "    conditions:\n"
        "      StringEquals: { \"hsm:UserType\": SO, \"gw:CredentialType\": apikey }\n"
        "  - sid: ReadOnlySessionsForCarol\n"
        "    effect: deny\n"
        "    principals: tenant/acme/user/carol\n"
        "    actions: hsm.session.open\n"
        "    resources: \"*\"\n"
        "    conditions:\n"
        "      Bool: { \"hsm:SessionRW\": \"true\" }\n"
        "  - sid: TrialNoTokenInfo\n"
        "    effect: deny\n"
        "    mode: shadow\n"
        "    principals: \"*\"\n"
        "    actions: hsm.token.read\n"
        "    resources: \"*\"\n";

static const struct gw_part part_a1 = {"a1", "acme", 1};

static struct gw_server srv;
static char *tmp;

static int
suite_init(void)
{
	char path[512];
	char err[512];

	memset(&srv, 0, sizeof(srv));
	if ((tmp = test_tmpdir_new("gw-policy")) == NULL) {
		return -1;
	}
	snprintf(path, sizeof(path), "%s/policy.yaml", tmp);
	if (test_file_write(path, policy_text, sizeof(policy_text) - 1) != 0 ||
	    gw_policy_load(path, &srv.policy, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	if (pol_request_new(&srv.pol_req) != 0 || pol_decision_new(&srv.pol_dec) != 0) {
		return -1;
	}
	return 0;
}

static int
suite_cleanup(void)
{
	pol_policy_free(srv.policy);
	pol_request_free(srv.pol_req);
	pol_decision_free(srv.pol_dec);
	test_tmpdir_remove(tmp);
	return 0;
}

static void
ctx_make(struct proto_ctx *c, const char *name, uint8_t cred, const char *source)
{
	memset(c, 0, sizeof(*c));
	c->cred = cred;
	snprintf(c->principal, sizeof(c->principal), "tenant/acme/user/%s", name);
	snprintf(c->tenant, sizeof(c->tenant), "acme");
	snprintf(c->source, sizeof(c->source), "%s", source);
}

/* The body of a request: big-endian u64 fields, as proto encodes CK_ULONG. */
static size_t
body_u64s(uint8_t *out, const uint64_t *v, size_t n)
{
	size_t i, k;

	for (i = 0; i < n; i++) {
		for (k = 0; k < 8; k++) {
			out[8 * i + k] = (uint8_t)(v[i] >> (56 - 8 * k));
		}
	}
	return 8 * n;
}

/* C_GenerateRandom's "uo": session, then an output buffer of `cap` bytes. */
static size_t
random_body(uint8_t *out, size_t outsz, CK_ULONG cap)
{
	struct proto_buf b;
	size_t n;

	proto_buf_init(&b);
	CU_ASSERT_FATAL(proto_put_ulong(&b, 0x01000005) == 0);
	CU_ASSERT_FATAL(proto_put_outbuf_req(&b, (const CK_BYTE *)"x", cap) == 0);
	n = b.len < outsz ? b.len : outsz;
	memcpy(out, b.data, n);
	proto_buf_free(&b);
	return n;
}

static void
test_action_table(void)
{
	unsigned id;
	int here = -1;

	/* every call that reaches the gateway has an action; the ones decided somewhere name
	 * an action of the policy vocabulary */
	for (id = 1; id < PROTO_CALL_COUNT; id++) {
		const struct proto_call_info *ci = proto_call_get(id);
		const char *a = gw_policy_action((uint16_t)id, &here);

		CU_ASSERT_PTR_NOT_NULL(a);
		if (here) {
			CU_ASSERT(pol_action_known(a));
		}
		if (ci != NULL && (ci->flags & PROTO_CF_LOCAL) != 0) {
			CU_ASSERT(!here);
		}
	}
	CU_ASSERT_STRING_EQUAL(gw_policy_action(PROTO_CALL_C_GetSlotInfo, &here), "hsm.token.read");
	CU_ASSERT(here == 1);
	CU_ASSERT_STRING_EQUAL(gw_policy_action(PROTO_CALL_C_GetMechanismList, &here),
	                       "hsm.mechanism.read");
	CU_ASSERT_STRING_EQUAL(gw_policy_action(PROTO_CALL_C_GetOperationState, &here),
	                       "hsm.session.exportstate");
	CU_ASSERT(here == 1);
	CU_ASSERT_STRING_EQUAL(gw_policy_action(PROTO_CALL_C_FindObjectsInit, &here),
	                       "hsm.keys.list");
	CU_ASSERT(here == 1);
	/* key-level: the worker decides */
	CU_ASSERT_STRING_EQUAL(gw_policy_action(PROTO_CALL_C_SignInit, &here), "hsm.crypto.sign");
	CU_ASSERT(here == 0);
	CU_ASSERT_STRING_EQUAL(gw_policy_action(PROTO_CALL_C_DigestKey, &here),
	                       "hsm.crypto.digestkey");
	CU_ASSERT(here == 0);
	CU_ASSERT(gw_policy_action(PROTO_CALL_C_GenerateKeyPair, &here) != NULL && here == 0);
	/* continuations inherit their *Init decision */
	(void)gw_policy_action(PROTO_CALL_C_DigestUpdate, &here);
	CU_ASSERT(here == 0);
	(void)gw_policy_action(PROTO_CALL_C_FindObjects, &here);
	CU_ASSERT(here == 0);
}

static void
test_no_policy_allows(void)
{
	struct gw_server none;
	struct gw_decision d;
	struct proto_ctx c;

	memset(&none, 0, sizeof(none));
	ctx_make(&c, "bob", PROTO_CRED_CERT, "127.0.0.1:1");
	CU_ASSERT(gw_policy_partition_check(&none, &c, PROTO_CALL_C_GenerateRandom, &part_a1, NULL,
	                                    0, &d) == CKR_OK);
	CU_ASSERT(d.made == 0);
	CU_ASSERT(gw_policy_connect_check(&none, &c, &d) == 0);
}

static void
test_allow(void)
{
	struct gw_decision d;
	struct proto_ctx c;
	uint8_t body[64];
	size_t n = random_body(body, sizeof(body), 32);

	ctx_make(&c, "alice", PROTO_CRED_CERT, "127.0.0.1:1");
	CU_ASSERT(gw_policy_partition_check(&srv, &c, PROTO_CALL_C_GenerateRandom, &part_a1, body,
	                                    n, &d) == CKR_OK);
	CU_ASSERT(d.made == 1 && d.result == POL_ALLOWED && d.error == 0);
	CU_ASSERT(d.nsids == 1 && strcmp(d.sids[0], "AcmeAll") == 0);
	CU_ASSERT_STRING_EQUAL(d.action, "hsm.random.generate");
}

static void
test_explicit_deny(void)
{
	struct gw_decision d;
	struct proto_ctx c;
	uint8_t body[64];
	size_t n = random_body(body, sizeof(body), 32);

	ctx_make(&c, "bob", PROTO_CRED_CERT, "127.0.0.1:1");
	CU_ASSERT(gw_policy_partition_check(&srv, &c, PROTO_CALL_C_GenerateRandom, &part_a1, body,
	                                    n, &d) == CKR_ACTION_PROHIBITED);
	CU_ASSERT(d.result == POL_EXPLICIT_DENY);
	CU_ASSERT(d.nsids == 1 && strcmp(d.sids[0], "NoRandomForBob") == 0);
}

static void
test_implicit_deny_other_tenant(void)
{
	static const struct gw_part g1 = {"g1", "globex", 3};
	struct gw_decision d;
	struct proto_ctx c;

	ctx_make(&c, "alice", PROTO_CRED_CERT, "127.0.0.1:1");
	CU_ASSERT(gw_policy_partition_check(&srv, &c, PROTO_CALL_C_GetTokenInfo, &g1, NULL, 0,
	                                    &d) == CKR_ACTION_PROHIBITED);
	CU_ASSERT(d.result == POL_IMPLICIT_DENY && d.nsids == 0);
}

static void
test_length_condition(void)
{
	struct gw_decision d;
	struct proto_ctx c;
	uint8_t body[64];
	size_t n = random_body(body, sizeof(body), 4096);

	ctx_make(&c, "alice", PROTO_CRED_CERT, "127.0.0.1:1");
	CU_ASSERT(gw_policy_partition_check(&srv, &c, PROTO_CALL_C_GenerateRandom, &part_a1, body,
	                                    n, &d) == CKR_ACTION_PROHIBITED);
	CU_ASSERT(d.nsids == 1 && strcmp(d.sids[0], "SmallRandomOnly") == 0);
}

static void
test_source_condition(void)
{
	struct gw_decision d;
	struct proto_ctx c;

	ctx_make(&c, "alice", PROTO_CRED_CERT, "10.9.3.4:5000");
	CU_ASSERT(gw_policy_partition_check(&srv, &c, PROTO_CALL_C_DigestInit, &part_a1, NULL, 0,
	                                    &d) == CKR_ACTION_PROHIBITED);
	CU_ASSERT(strcmp(d.sids[0], "NoDigestFromLab") == 0);
	ctx_make(&c, "alice", PROTO_CRED_CERT, "10.8.3.4:5000");
	CU_ASSERT(gw_policy_partition_check(&srv, &c, PROTO_CALL_C_DigestInit, &part_a1, NULL, 0,
	                                    &d) == CKR_OK);
	ctx_make(&c, "alice", PROTO_CRED_CERT, "[::ffff:10.9.0.1]:5000");
	CU_ASSERT(gw_policy_partition_check(&srv, &c, PROTO_CALL_C_DigestInit, &part_a1, NULL, 0,
	                                    &d) == CKR_ACTION_PROHIBITED);
}

static void
test_login_user_type_and_credential(void)
{
	struct gw_decision d;
	struct proto_ctx c;
	uint64_t f[2] = {0x01000005, CKU_SO};
	uint8_t body[16];
	size_t n = body_u64s(body, f, 2);

	ctx_make(&c, "alice", PROTO_CRED_APIKEY, "127.0.0.1:1");
	CU_ASSERT(gw_policy_partition_check(&srv, &c, PROTO_CALL_C_Login, &part_a1, body, n, &d) ==
	          CKR_ACTION_PROHIBITED);
	/* the same SO login with a certificate, or a USER login by API key, is allowed */
	ctx_make(&c, "alice", PROTO_CRED_CERT, "127.0.0.1:1");
	CU_ASSERT(gw_policy_partition_check(&srv, &c, PROTO_CALL_C_Login, &part_a1, body, n, &d) ==
	          CKR_OK);
	f[1] = CKU_USER;
	n = body_u64s(body, f, 2);
	ctx_make(&c, "alice", PROTO_CRED_APIKEY, "127.0.0.1:1");
	CU_ASSERT(gw_policy_partition_check(&srv, &c, PROTO_CALL_C_Login, &part_a1, body, n, &d) ==
	          CKR_OK);
}

static void
test_session_rw(void)
{
	struct gw_decision d;
	struct proto_ctx c;
	uint64_t f[2] = {1, CKF_SERIAL_SESSION | CKF_RW_SESSION};
	uint8_t body[16];
	size_t n = body_u64s(body, f, 2);

	ctx_make(&c, "carol", PROTO_CRED_CERT, "127.0.0.1:1");
	CU_ASSERT(gw_policy_partition_check(&srv, &c, PROTO_CALL_C_OpenSession, &part_a1, body, n,
	                                    &d) == CKR_ACTION_PROHIBITED);
	f[1] = CKF_SERIAL_SESSION;
	n = body_u64s(body, f, 2);
	CU_ASSERT(gw_policy_partition_check(&srv, &c, PROTO_CALL_C_OpenSession, &part_a1, body, n,
	                                    &d) == CKR_OK);
}

static void
test_shadow_recorded_not_enforced(void)
{
	struct gw_decision d;
	struct proto_ctx c;

	ctx_make(&c, "alice", PROTO_CRED_CERT, "127.0.0.1:1");
	CU_ASSERT(gw_policy_partition_check(&srv, &c, PROTO_CALL_C_GetTokenInfo, &part_a1, NULL, 0,
	                                    &d) == CKR_OK);
	CU_ASSERT(d.result == POL_ALLOWED);
	CU_ASSERT(d.shadow == POL_EXPLICIT_DENY);
	CU_ASSERT_STRING_EQUAL(d.shadow_sid, "TrialNoTokenInfo");
}

static void
test_key_level_left_to_worker(void)
{
	struct gw_decision d;
	struct proto_ctx c;

	/* bob is denied random, but key-level calls are not the gateway's to decide */
	ctx_make(&c, "bob", PROTO_CRED_CERT, "127.0.0.1:1");
	CU_ASSERT(gw_policy_partition_check(&srv, &c, PROTO_CALL_C_SignInit, &part_a1, NULL, 0,
	                                    &d) == CKR_OK);
	CU_ASSERT(d.made == 0);
}

static void
test_connect(void)
{
	struct gw_decision d;
	struct proto_ctx c;

	ctx_make(&c, "alice", PROTO_CRED_CERT, "127.0.0.1:1");
	CU_ASSERT(gw_policy_connect_check(&srv, &c, &d) == 0);
	CU_ASSERT(d.result == POL_ALLOWED);
	memset(&c, 0, sizeof(c));
	snprintf(c.principal, sizeof(c.principal), "tenant/globex/user/bob");
	snprintf(c.tenant, sizeof(c.tenant), "globex");
	snprintf(c.source, sizeof(c.source), "127.0.0.1:1");
	CU_ASSERT(gw_policy_connect_check(&srv, &c, &d) == GW_ERR_AUTH);
	CU_ASSERT(d.result == POL_IMPLICIT_DENY);
}

static void
test_load_error_names_position(void)
{
	static const char bad[] = "version: 1\nstatements:\n  - sid: X\n    effect: alow\n";
	struct pol_policy *pol = NULL;
	char path[512], err[512];

	snprintf(path, sizeof(path), "%s/bad.yaml", tmp);
	CU_ASSERT_FATAL(test_file_write(path, bad, sizeof(bad) - 1) == 0);
	CU_ASSERT(gw_policy_load(path, &pol, err, sizeof(err)) == GW_ERR_CONFIG);
	CU_ASSERT(pol == NULL);
	CU_ASSERT(strstr(err, "bad.yaml:4:") != NULL);
	snprintf(path, sizeof(path), "%s/missing.yaml", tmp);
	CU_ASSERT(gw_policy_load(path, &pol, err, sizeof(err)) == GW_ERR_CONFIG);
	CU_ASSERT(strstr(err, "missing.yaml") != NULL);
}

void
test_register(void)
{
	static const struct test_case cases[] = {
	        {"action_table", test_action_table},
	        {"no_policy_allows", test_no_policy_allows},
	        {"allow", test_allow},
	        {"explicit_deny", test_explicit_deny},
	        {"implicit_deny_other_tenant", test_implicit_deny_other_tenant},
	        {"length_condition", test_length_condition},
	        {"source_condition", test_source_condition},
	        {"login_user_type_and_credential", test_login_user_type_and_credential},
	        {"session_rw", test_session_rw},
	        {"shadow_recorded_not_enforced", test_shadow_recorded_not_enforced},
	        {"key_level_left_to_worker", test_key_level_left_to_worker},
	        {"connect", test_connect},
	        {"load_error_names_position", test_load_error_names_position},
	        {NULL, NULL},
	};

	test_suite_add("gateway/policy", suite_init, suite_cleanup, cases);
}
