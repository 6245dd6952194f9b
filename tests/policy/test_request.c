/*
 * tests/policy/test_request.c — the request context (policy/request.c): argument checks,
 * set vs add, defaults for the keys every request carries, reuse after reset.
 */
#include "policy/internal.h"
#include "tests/policy/polt.h"

static void
test_refusals(void)
{
	struct pol_request *req = NULL;
	char big[POL_MAX_REQ_VALUE + 2];

	CU_ASSERT_EQUAL(pol_request_new(NULL), POL_ERR_INVAL);
	CU_ASSERT_EQUAL_FATAL(pol_request_new(&req), 0);
	CU_ASSERT_EQUAL(pol_request_set_principal(req, NULL), POL_ERR_INVAL);
	CU_ASSERT_EQUAL(pol_request_set_action(req, ""), POL_ERR_INVAL);
	CU_ASSERT_EQUAL(pol_request_set_resource(NULL, "x"), POL_ERR_INVAL);
	CU_ASSERT_EQUAL(pol_request_add(req, "", "v"), POL_ERR_INVAL);
	CU_ASSERT_EQUAL(pol_request_add(req, "k", NULL), POL_ERR_INVAL);
	CU_ASSERT_EQUAL(pol_request_add_group(req, ""), POL_ERR_INVAL);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	CU_ASSERT_EQUAL(pol_request_set_resource(req, big), POL_ERR_TOO_LARGE);
	CU_ASSERT_EQUAL(pol_request_add(req, "hsm:KeyLabel", big), POL_ERR_TOO_LARGE);
	pol_request_free(req);
	pol_request_free(NULL);
}

static void
test_set_add_values(void)
{
	struct pol_request *req = NULL;
	const char *v[4];
	char scratch[64];

	CU_ASSERT_EQUAL_FATAL(pol_request_new(&req), 0);
	CU_ASSERT_EQUAL(pol_request_add(req, "hsm:AttrChanged", "CKA_LABEL"), 0);
	CU_ASSERT_EQUAL(pol_request_add(req, "hsm:Mechanism", "M"), 0);
	CU_ASSERT_EQUAL(pol_request_add(req, "HSM:ATTRCHANGED", "CKA_ID"), 0);
	CU_ASSERT_EQUAL(pol_request_values(req, "hsm:attrchanged", v, 4, scratch, 64), 2);
	CU_ASSERT_STRING_EQUAL(v[0], "CKA_LABEL");
	CU_ASSERT_STRING_EQUAL(v[1], "CKA_ID");
	CU_ASSERT_EQUAL(pol_request_set(req, "hsm:AttrChanged", "CKA_VALUE"), 0);
	CU_ASSERT_EQUAL(pol_request_values(req, "hsm:AttrChanged", v, 4, scratch, 64), 1);
	CU_ASSERT_STRING_EQUAL(v[0], "CKA_VALUE");
	CU_ASSERT_EQUAL(pol_request_values(req, "hsm:Mechanism", v, 4, scratch, 64), 1);
	/* An empty value is a value. */
	CU_ASSERT_EQUAL(pol_request_set(req, "hsm:KeyLabel", ""), 0);
	CU_ASSERT_EQUAL(pol_request_values(req, "hsm:KeyLabel", v, 4, scratch, 64), 1);
	pol_request_free(req);
}

static void
test_builtin_keys(void)
{
	struct pol_request *req = NULL;
	const char *v[4];
	char scratch[64];

	CU_ASSERT_EQUAL_FATAL(pol_request_new(&req), 0);
	CU_ASSERT_EQUAL(pol_request_values(req, "hsm:PrincipalName", v, 4, scratch, 64), 0);
	CU_ASSERT_EQUAL(pol_request_set_principal(req, "tenant/acme/user/alice"), 0);
	CU_ASSERT_EQUAL(pol_request_values(req, "hsm:PrincipalName", v, 4, scratch, 64), 1);
	CU_ASSERT_STRING_EQUAL(v[0], "tenant/acme/user/alice");
	CU_ASSERT_EQUAL(pol_request_values(req, "hsm:Tenant", v, 4, scratch, 64), 1);
	CU_ASSERT_STRING_EQUAL(v[0], "acme");
	CU_ASSERT_EQUAL(pol_request_set_tenant(req, "other"), 0);
	CU_ASSERT_EQUAL(pol_request_set_principal(req, "tenant/acme/user/bob"), 0);
	CU_ASSERT_EQUAL(pol_request_values(req, "hsm:Tenant", v, 4, scratch, 64), 1);
	CU_ASSERT_STRING_EQUAL(v[0], "other");
	CU_ASSERT_EQUAL(pol_request_add_group(req, "g1"), 0);
	CU_ASSERT_EQUAL(pol_request_add_group(req, "g2"), 0);
	CU_ASSERT_EQUAL(pol_request_values(req, "gw:Group", v, 4, scratch, 64), 2);
	CU_ASSERT_EQUAL(pol_request_values(req, "gw:CurrentTime", v, 4, scratch, 64), 1);
	CU_ASSERT(strlen(v[0]) >= 10);
	pol_request_reset(req);
	CU_ASSERT_EQUAL(pol_request_values(req, "gw:Group", v, 4, scratch, 64), 0);
	CU_ASSERT_EQUAL(pol_request_values(req, "hsm:Tenant", v, 4, scratch, 64), 0);
	pol_request_free(req);
}

static void
test_many_values(void)
{
	struct pol_request *req = NULL;
	const char *v[4];
	char scratch[64], key[32];
	int i;

	CU_ASSERT_EQUAL_FATAL(pol_request_new(&req), 0);
	for (i = 0; i < 500; i++) {
		snprintf(key, sizeof(key), "gw:PrincipalTag/t%d", i % 7);
		CU_ASSERT_EQUAL(pol_request_add(req, key, "value"), 0);
	}
	/* More values than the caller's array: the count is still exact. */
	CU_ASSERT_EQUAL(pol_request_values(req, "gw:PrincipalTag/t0", v, 4, scratch, 64), 72);
	pol_request_free(req);
}

static const struct test_case cases[] = {
        {"refusals", test_refusals},
        {"set and add", test_set_add_values},
        {"builtin keys", test_builtin_keys},
        {"many values", test_many_values},
        {NULL, NULL},
};

void
test_register(void)
{
	test_suite_add("policy/request", NULL, polt_cleanup, cases);
}
