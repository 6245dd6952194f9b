/*
 * tests/hsm-partitions/test_authz.c — hsm-partitions/authz.c: key-level policy decisions,
 * each rule with a case that must allow and one that must deny.
 */
#include "tests/lib/test.h"

#include "hsm-partitions/part_authz.h"

#include <string.h>

static const char policy_text[] =
        "version: 1\n"
        "name: t\n"
        "tenant: acme\n"
        "principals:\n"
        "  app: tenant/acme/service/payments\n"
        "  admin: tenant/acme/user/admin\n"
        "statements:\n"
        "  - sid: SignPayments\n"
        "    effect: allow\n"
        "    principals: [principal:app]\n"
        "    actions: [hsm.crypto.sign]\n"
        "    resources: [\"crn:hsmgate:acme:partition:p1:key:*\"]\n"
        "    conditions:\n"
        "      StringLike: { \"hsm:KeyLabel\": \"payments-*\" }\n"
        "      StringEquals: { \"hsm:Mechanism\": CKM_ECDSA_SHA256 }\n"
        "      IpAddress: { \"gw:SourceIp\": 127.0.0.0/8 }\n"
        "  - sid: AdminAll\n"
        "    effect: allow\n"
        "    principals: [principal:admin]\n"
        "    actions: [\"hsm.keys.*\", \"hsm.crypto.*\"]\n"
        "    resources: [\"crn:hsmgate:acme:partition:p1\", \"crn:hsmgate:acme:partition:p1:*\"]\n"
        "  - sid: NoExtractable\n"
        "    effect: deny\n"
        "    principals: \"*\"\n"
        "    actions: [hsm.keys.generate, hsm.keys.generatepair]\n"
        "    resources: \"crn:hsmgate:acme:partition:p1*\"\n"
        "    conditions:\n"
        "      Bool: { \"hsm:Template/CKA_EXTRACTABLE\": \"true\" }\n"
        "  - sid: NoExportOfSensitive\n"
        "    effect: deny\n"
        "    principals: \"*\"\n"
        "    actions: [hsm.keys.export]\n"
        "    resources: \"crn:hsmgate:acme:partition:p1:key:*\"\n"
        "    conditions:\n"
        "      Bool: { \"hsm:KeyAttr/CKA_SENSITIVE\": \"true\" }\n";

static struct part_authz *authz;
static CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
static CK_OBJECT_CLASS priv_class = CKO_PRIVATE_KEY;
static CK_KEY_TYPE ec_type = CKK_EC;
static CK_BYTE secret_value[] = "TOP-SECRET-VALUE";

static struct proto_ctx
ctx_of(const char *principal, const char *source)
{
	struct proto_ctx c;

	memset(&c, 0, sizeof(c));
	c.cred = PROTO_CRED_CERT;
	snprintf(c.principal, sizeof(c.principal), "%s", principal);
	snprintf(c.tenant, sizeof(c.tenant), "acme");
	snprintf(c.source, sizeof(c.source), "%s", source);
	return c;
}

static int
setup(void)
{
	char err[512];

	if (part_authz_new("acme", "p1", &authz) != 0) {
		return -1;
	}
	if (part_authz_set_policy(authz, policy_text, strlen(policy_text), "test.yaml", err,
	                          sizeof(err)) != 0) {
		fprintf(stderr, "policy: %s\n", err);
		return -1;
	}
	return 0;
}

static int
teardown(void)
{
	part_authz_free(authz);
	return 0;
}

/* A signing key labelled `label`, with a value that must never matter. */
static CK_RV
sign_with(const char *principal, const char *source, const char *label, CK_MECHANISM_TYPE mech)
{
	CK_ATTRIBUTE attrs[] = {
	        {CKA_CLASS, &priv_class, sizeof(priv_class)},
	        {CKA_KEY_TYPE, &ec_type, sizeof(ec_type)},
	        {CKA_LABEL, (void *)label, strlen(label)},
	        {CKA_SIGN, &yes, sizeof(yes)},
	        {CKA_VALUE, secret_value, sizeof(secret_value)},
	};
	struct part_authz_key key = {"0123abcd", attrs, 5};
	struct part_authz_call c;
	struct proto_ctx ctx = ctx_of(principal, source);

	memset(&c, 0, sizeof(c));
	c.action = "hsm.crypto.sign";
	c.key = &key;
	c.function = "C_SignInit";
	c.has_mech = 1;
	c.mech = mech;
	return part_authz_check(authz, &ctx, &c, NULL);
}

static void
test_label_and_mechanism(void)
{
	const char *app = "tenant/acme/service/payments";

	CU_ASSERT_EQUAL(sign_with(app, "127.0.0.1:4000", "payments-2026", CKM_ECDSA_SHA256),
	                CKR_OK);
	CU_ASSERT_EQUAL(sign_with(app, "127.0.0.1:4000", "hr-key", CKM_ECDSA_SHA256),
	                CKR_ACTION_PROHIBITED);
	CU_ASSERT_EQUAL(sign_with(app, "127.0.0.1:4000", "payments-2026", CKM_ECDSA),
	                CKR_ACTION_PROHIBITED);
}

static void
test_source_address(void)
{
	const char *app = "tenant/acme/service/payments";

	CU_ASSERT_EQUAL(sign_with(app, "127.0.0.9:4000", "payments-1", CKM_ECDSA_SHA256), CKR_OK);
	CU_ASSERT_EQUAL(sign_with(app, "10.1.2.3:4000", "payments-1", CKM_ECDSA_SHA256),
	                CKR_ACTION_PROHIBITED);
}

static void
test_default_deny_other_principal(void)
{
	CU_ASSERT_EQUAL(sign_with("tenant/acme/user/admin", "10.1.2.3:1", "any", CKM_ECDSA),
	                CKR_OK);
	CU_ASSERT_EQUAL(
	        sign_with("tenant/acme/user/nobody", "127.0.0.1:1", "payments-1", CKM_ECDSA_SHA256),
	        CKR_ACTION_PROHIBITED);
}

static CK_RV
generate(CK_BBOOL *extractable)
{
	CK_ATTRIBUTE tmpl[] = {
	        {CKA_CLASS, &priv_class, sizeof(priv_class)},
	        {CKA_EXTRACTABLE, extractable, sizeof(*extractable)},
	};
	struct part_authz_call c;
	struct proto_ctx ctx = ctx_of("tenant/acme/user/admin", "127.0.0.1:1");
	struct part_authz_result res;
	CK_RV rv;

	memset(&c, 0, sizeof(c));
	c.action = "hsm.keys.generatepair";
	c.function = "C_GenerateKeyPair";
	c.tmpl = tmpl;
	c.ntmpl = 2;
	rv = part_authz_check(authz, &ctx, &c, &res);
	if (rv != CKR_OK) {
		CU_ASSERT_STRING_EQUAL(res.result, "explicit_deny");
		CU_ASSERT_STRING_EQUAL(res.sids, "NoExtractable");
	} else {
		CU_ASSERT_STRING_EQUAL(res.result, "allowed");
		CU_ASSERT_STRING_EQUAL(res.sids, "AdminAll");
	}
	return rv;
}

static void
test_template_condition(void)
{
	CU_ASSERT_EQUAL(generate(&no), CKR_OK);
	CU_ASSERT_EQUAL(generate(&yes), CKR_ACTION_PROHIBITED);
}

/* C_WrapKey: hsm.keys.wrap on the wrapping key and hsm.keys.export on the wrapped one. */
static CK_RV
wrap(CK_BBOOL *sensitive)
{
	CK_ATTRIBUTE wrapping[] = {{CKA_WRAP, &yes, sizeof(yes)}};
	CK_ATTRIBUTE wrapped[] = {{CKA_SENSITIVE, sensitive, sizeof(*sensitive)}};
	struct part_authz_key k1 = {"aaaa", wrapping, 1}, k2 = {"bbbb", wrapped, 1};
	struct part_authz_call c;
	struct proto_ctx ctx = ctx_of("tenant/acme/user/admin", "127.0.0.1:1");
	struct part_authz_result res;
	CK_RV rv;

	memset(&c, 0, sizeof(c));
	c.action = "hsm.keys.wrap";
	c.key = &k1;
	c.action2 = "hsm.keys.export";
	c.key2 = &k2;
	rv = part_authz_check(authz, &ctx, &c, &res);
	if (rv != CKR_OK) {
		CU_ASSERT_STRING_EQUAL(res.action, "hsm.keys.export");
	}
	return rv;
}

static void
test_two_actions(void)
{
	CU_ASSERT_EQUAL(wrap(&no), CKR_OK);
	CU_ASSERT_EQUAL(wrap(&yes), CKR_ACTION_PROHIBITED);
}

static void
test_no_policy_allows(void)
{
	struct part_authz *open = NULL;
	struct part_authz_call c;
	struct proto_ctx ctx = ctx_of("tenant/acme/user/nobody", "10.0.0.1:1");

	CU_ASSERT_FATAL(part_authz_new("acme", "p1", &open) == 0);
	CU_ASSERT_FALSE(part_authz_has_policy(open));
	memset(&c, 0, sizeof(c));
	c.action = "hsm.crypto.sign";
	CU_ASSERT_EQUAL(part_authz_check(open, &ctx, &c, NULL), CKR_OK);
	part_authz_free(open);
}

static void
test_broken_policy_keeps_old(void)
{
	static const char broken[] = "version: 1\nstatements:\n  - sid: x\n    effect: perhaps\n";
	char err[512] = "";

	CU_ASSERT_EQUAL(part_authz_set_policy(authz, broken, strlen(broken), "broken.yaml", err,
	                                      sizeof(err)),
	                PART_AUTHZ_ERR_POLICY);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "broken.yaml"));
	CU_ASSERT_TRUE(part_authz_has_policy(authz));
	/* still enforced: the old rules answer as before */
	CU_ASSERT_EQUAL(sign_with("tenant/acme/service/payments", "127.0.0.1:1", "hr-key",
	                          CKM_ECDSA_SHA256),
	                CKR_ACTION_PROHIBITED);
	CU_ASSERT_EQUAL(sign_with("tenant/acme/service/payments", "127.0.0.1:1", "payments-1",
	                          CKM_ECDSA_SHA256),
	                CKR_OK);
}

static void
test_empty_text_removes_policy(void)
{
	struct part_authz *a = NULL;
	char err[256];

	CU_ASSERT_FATAL(part_authz_new("acme", "p1", &a) == 0);
	CU_ASSERT_EQUAL(
	        part_authz_set_policy(a, policy_text, strlen(policy_text), "p", err, sizeof(err)),
	        0);
	CU_ASSERT_TRUE(part_authz_has_policy(a));
	CU_ASSERT_EQUAL(part_authz_set_policy(a, "", 0, "p", err, sizeof(err)), 0);
	CU_ASSERT_FALSE(part_authz_has_policy(a));
	part_authz_free(a);
}

void
test_register(void)
{
	static const struct test_case cases[] = {
	        {"label and mechanism conditions", test_label_and_mechanism},
	        {"source address condition", test_source_address},
	        {"default deny for another principal", test_default_deny_other_principal},
	        {"template condition on key creation", test_template_condition},
	        {"C_WrapKey needs wrap and export", test_two_actions},
	        {"no policy: allowed", test_no_policy_allows},
	        {"a broken policy keeps the old one", test_broken_policy_keeps_old},
	        {"an empty text removes the policy", test_empty_text_removes_policy},
	        {NULL, NULL},
	};

	test_suite_add("authz", setup, teardown, cases);
}
