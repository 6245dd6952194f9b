/*
 * tests/policy/test_vocab.c — the action table, roles and condition keys (policy/vocab.c).
 */
#include "policy/internal.h"
#include "tests/policy/polt.h"

static void
test_actions(void)
{
	static const char *const required[] = {"hsm.token.read",          "hsm.token.init",
	                                       "hsm.session.open",        "hsm.session.login",
	                                       "hsm.keys.generate",       "hsm.keys.generatepair",
	                                       "hsm.keys.import",         "hsm.keys.destroy",
	                                       "hsm.keys.readattributes", "hsm.keys.setattributes",
	                                       "hsm.keys.list",           "hsm.keys.wrap",
	                                       "hsm.keys.export",         "hsm.keys.unwrap",
	                                       "hsm.keys.derive",         "hsm.crypto.encrypt",
	                                       "hsm.crypto.decrypt",      "hsm.crypto.sign",
	                                       "hsm.crypto.verify",       "hsm.crypto.digest",
	                                       "hsm.random.generate",     "hsm.partition.create",
	                                       "hsm.masterkey.loadpart",  "hsm.policy.reload",
	                                       "hsm.audit.read",          NULL};
	size_t i, j;

	for (i = 0; required[i] != NULL; i++) {
		CU_ASSERT(pol_action_known(required[i]));
	}
	CU_ASSERT(pol_action_known("HSM.Crypto.Sign"));
	CU_ASSERT_FALSE(pol_action_known("hsm.crypto"));
	CU_ASSERT_FALSE(pol_action_known("hsm.crypto.sign.x"));
	CU_ASSERT_FALSE(pol_action_known(NULL));
	/* Lowercase, dotted, unique, documented. */
	for (i = 0; i < pol_action_count(); i++) {
		const char *n = pol_action_name(i);

		CU_ASSERT(strncmp(n, "hsm.", 4) == 0);
		for (j = 0; n[j] != '\0'; j++) {
			CU_ASSERT(n[j] == '.' || (n[j] >= 'a' && n[j] <= 'z'));
		}
		for (j = i + 1; j < pol_action_count(); j++) {
			CU_ASSERT(strcmp(n, pol_action_name(j)) != 0);
		}
		CU_ASSERT(pol_action_functions(i)[0] != '\0');
		CU_ASSERT(pol_action_resource(i)[0] != '\0');
	}
	CU_ASSERT_PTR_NULL(pol_action_name(pol_action_count()));
	CU_ASSERT(pol_action_count() <= POL_MAX_ACTIONS);
}

static void
test_roles(void)
{
	static const char *const names[] = {"CryptoUser",      "KeyOperator", "KeyManager",
	                                    "KeyPurger",       "TokenAdmin",  "SecurityOfficer",
	                                    "CryptoUnitAdmin", "Auditor",     NULL};
	size_t i;

	for (i = 0; names[i] != NULL; i++) {
		CU_ASSERT_PTR_NOT_NULL(pol_vocab_role(names[i]));
	}
	CU_ASSERT_PTR_NULL(pol_vocab_role("cryptouser"));
	CU_ASSERT_PTR_NULL(pol_vocab_role("Root"));
}

static void
test_keys(void)
{
	enum pol_ktype t;

	CU_ASSERT(pol_condition_key_known("hsm:Mechanism"));
	CU_ASSERT(pol_condition_key_known("HSM:MECHANISM"));
	CU_ASSERT(pol_condition_key_known("hsm:KeyAttr/CKA_EXTRACTABLE"));
	CU_ASSERT(pol_condition_key_known("hsm:Template/CKA_SENSITIVE"));
	CU_ASSERT(pol_condition_key_known("gw:PrincipalTag/team"));
	CU_ASSERT_FALSE(pol_condition_key_known("hsm:KeyAttr/"));
	CU_ASSERT_FALSE(pol_condition_key_known("hsm:KeyAttr/a b"));
	CU_ASSERT_FALSE(pol_condition_key_known("hsm:Mechanisms"));
	CU_ASSERT_FALSE(pol_condition_key_known("aws:SourceIp"));
	CU_ASSERT_FALSE(pol_condition_key_known(NULL));
	CU_ASSERT_EQUAL(pol_vocab_key_type("gw:SourceIp", &t), 0);
	CU_ASSERT_EQUAL(t, POL_KT_IP);
	CU_ASSERT_EQUAL(pol_vocab_key_type("gw:CurrentTime", &t), 0);
	CU_ASSERT_EQUAL(t, POL_KT_DATE);
}

static const struct test_case cases[] = {
        {"actions", test_actions},
        {"roles", test_roles},
        {"condition keys", test_keys},
        {NULL, NULL},
};

void
test_register(void)
{
	test_suite_add("policy/vocab", NULL, polt_cleanup, cases);
}
