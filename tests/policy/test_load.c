/*
 * tests/policy/test_load.c — the loader (policy/load.c): every refusal has its own test,
 * which checks the error code, the line of the node at fault and the key named.
 */
#include "tests/policy/polt.h"

#define HDR "version: 1\nstatements:\n"
#define STMT(sid)                                                                                  \
	"  - sid: " sid "\n    effect: allow\n    principals: \"*\"\n"                             \
	"    actions: hsm.crypto.sign\n    resources: \"*\"\n"

static void
refuse(const char *yaml, int code, unsigned line, const char *key)
{
	struct pol_diag d;
	int r = polt_refuse(yaml, &d);

	if (r != code || d.line != line || strcmp(d.key, key) != 0) {
		fprintf(stderr, "refuse: got %d line %u key '%s' (%s), want %d line %u key '%s'\n",
		        r, d.line, d.key, d.message, code, line, key);
	}
	CU_ASSERT_EQUAL(r, code);
	CU_ASSERT_EQUAL(d.line, line);
	CU_ASSERT_STRING_EQUAL(d.key, key);
	CU_ASSERT_STRING_EQUAL(d.file, "test.yaml");
	CU_ASSERT(d.message[0] != '\0');
}

static void
test_accepts_minimal(void)
{
	struct pol_policy *pol = polt_load(HDR STMT("A"));

	CU_ASSERT_EQUAL(pol_policy_statement_count(pol), 1);
	CU_ASSERT_STRING_EQUAL(pol_policy_name(pol), "");
	pol_policy_free(pol);
}

static void
test_yaml_syntax(void)
{
	refuse("statements: [\n  - x: y\n  bad: : :\n", POL_ERR_SYNTAX, 2, "");
}

static void
test_empty_document(void)
{
	refuse("# nothing\n", POL_ERR_MISSING, 0, "");
}

static void
test_two_documents(void)
{
	refuse(HDR STMT("A") "---\n" HDR, POL_ERR_SYNTAX, 9, "");
}

static void
test_alias(void)
{
	refuse("version: 1\nstatements:\n  - &s\n    sid: A\n    effect: allow\n"
	       "    principals: \"*\"\n    actions: hsm.crypto.sign\n    resources: \"*\"\n"
	       "  - *s\n",
	       POL_ERR_SYNTAX, 3, "");
}

static void
test_top_not_mapping(void)
{
	refuse("- a\n- b\n", POL_ERR_SYNTAX, 1, "");
}

static void
test_unknown_top_key(void)
{
	refuse(HDR STMT("A") "statments: []\n", POL_ERR_SYNTAX, 8, "statments");
}

static void
test_duplicate_top_key(void)
{
	refuse("tenant: a\ntenant: b\n" HDR STMT("A"), POL_ERR_DUPLICATE, 2, "tenant");
}

static void
test_bad_version(void)
{
	refuse("version: 2\nstatements: []\n", POL_ERR_VALUE, 1, "version");
}

static void
test_missing_statements(void)
{
	refuse("version: 1\nname: x\n", POL_ERR_MISSING, 1, "");
}

static void
test_statements_not_list(void)
{
	refuse("version: 1\nstatements: {a: b}\n", POL_ERR_SYNTAX, 2, "statements");
}

static void
test_missing_sid(void)
{
	refuse(HDR "  - effect: allow\n    principals: \"*\"\n    actions: hsm.crypto.sign\n"
	           "    resources: \"*\"\n",
	       POL_ERR_MISSING, 3, "statements");
}

static void
test_bad_sid(void)
{
	refuse(HDR STMT("has space"), POL_ERR_VALUE, 3, "sid");
}

static void
test_duplicate_sid(void)
{
	refuse(HDR STMT("A") STMT("A"), POL_ERR_DUPLICATE, 8, "sid");
}

static void
test_missing_effect(void)
{
	refuse(HDR "  - sid: A\n    principals: \"*\"\n    actions: hsm.crypto.sign\n"
	           "    resources: \"*\"\n",
	       POL_ERR_MISSING, 3, "statements");
}

static void
test_bad_effect(void)
{
	refuse(HDR "  - sid: A\n    effect: Allow\n    principals: \"*\"\n"
	           "    actions: hsm.crypto.sign\n    resources: \"*\"\n",
	       POL_ERR_VALUE, 4, "effect");
}

static void
test_bad_mode(void)
{
	refuse(HDR "  - sid: A\n    effect: allow\n    mode: audit\n    principals: \"*\"\n"
	           "    actions: hsm.crypto.sign\n    resources: \"*\"\n",
	       POL_ERR_VALUE, 5, "mode");
}

static void
test_unknown_statement_key(void)
{
	refuse(HDR STMT("A") "    condition: {}\n", POL_ERR_SYNTAX, 8, "condition");
}

static void
test_duplicate_statement_key(void)
{
	/* libyaml keeps both; the loader must not pick one silently. */
	refuse(HDR STMT("A") "    effect: deny\n", POL_ERR_DUPLICATE, 8, "effect");
}

static void
test_actions_and_not_actions(void)
{
	refuse(HDR STMT("A") "    not_actions: hsm.crypto.verify\n", POL_ERR_SYNTAX, 8,
	       "not_actions");
}

static void
test_missing_actions(void)
{
	refuse(HDR "  - sid: A\n    effect: allow\n    principals: \"*\"\n"
	           "    resources: \"*\"\n",
	       POL_ERR_MISSING, 3, "statements");
}

static void
test_unknown_action(void)
{
	refuse(HDR "  - sid: A\n    effect: allow\n    principals: \"*\"\n"
	           "    actions:\n      - hsm.crypto.sign\n      - hsm.crypto.sing\n"
	           "    resources: \"*\"\n",
	       POL_ERR_ACTION, 8, "actions");
}

static void
test_unknown_action_pattern(void)
{
	refuse(HDR "  - sid: A\n    effect: deny\n    principals: \"*\"\n"
	           "    actions: \"hsm.cyrpto.*\"\n    resources: \"*\"\n",
	       POL_ERR_ACTION, 6, "actions");
}

static void
test_bad_action_chars(void)
{
	refuse(HDR "  - sid: A\n    effect: deny\n    principals: \"*\"\n"
	           "    actions: \"hsm.crypto.sign ; x\"\n    resources: \"*\"\n",
	       POL_ERR_ACTION, 6, "actions");
}

static void
test_unknown_role(void)
{
	refuse(HDR "  - sid: A\n    effect: allow\n    principals: \"*\"\n"
	           "    actions: role:CryptoUsr\n    resources: \"*\"\n",
	       POL_ERR_REFERENCE, 6, "actions");
}

static void
test_role_shadows_builtin(void)
{
	refuse("roles:\n  CryptoUser: [hsm.crypto.sign]\n" HDR STMT("A"), POL_ERR_DUPLICATE, 2,
	       "CryptoUser");
}

static void
test_role_unknown_action(void)
{
	refuse("roles:\n  Signer: [hsm.crypto.sign, hsm.crypto.sing]\n" HDR STMT("A"),
	       POL_ERR_ACTION, 2, "Signer");
}

static void
test_undeclared_group(void)
{
	refuse(HDR "  - sid: A\n    effect: allow\n    principals: [group:signers]\n"
	           "    actions: hsm.crypto.sign\n    resources: \"*\"\n",
	       POL_ERR_REFERENCE, 5, "principals");
}

static void
test_undeclared_principal(void)
{
	refuse("principals: { alice: tenant/demo/user/alice }\n" HDR
	       "  - sid: A\n    effect: allow\n    principals: principal:bob\n"
	       "    actions: hsm.crypto.sign\n    resources: \"*\"\n",
	       POL_ERR_REFERENCE, 6, "principals");
}

static void
test_bad_principal(void)
{
	refuse(HDR "  - sid: A\n    effect: allow\n    principals: alice\n"
	           "    actions: hsm.crypto.sign\n    resources: \"*\"\n",
	       POL_ERR_VALUE, 5, "principals");
}

static void
test_principal_variable(void)
{
	refuse(HDR "  - sid: A\n    effect: allow\n"
	           "    principals: \"tenant/${hsm:Tenant}/user/x\"\n"
	           "    actions: hsm.crypto.sign\n    resources: \"*\"\n",
	       POL_ERR_VALUE, 5, "principals");
}

static void
test_bad_principal_declaration(void)
{
	refuse("principals:\n  alice: alice@example.com\n" HDR STMT("A"), POL_ERR_VALUE, 2,
	       "alice");
}

static void
test_bad_group_field(void)
{
	refuse("groups:\n  admins: { member: [tenant/demo/user/a] }\n" HDR STMT("A"),
	       POL_ERR_SYNTAX, 2, "member");
}

static void
test_bad_tenant(void)
{
	refuse("tenant: \"a:b\"\n" HDR STMT("A"), POL_ERR_VALUE, 1, "tenant");
}

static void
test_resource_not_crn(void)
{
	refuse(HDR "  - sid: A\n    effect: allow\n    principals: \"*\"\n"
	           "    actions: hsm.crypto.sign\n    resources: [\"crn:*:demo\"]\n",
	       POL_ERR_VALUE, 7, "resources");
}

static void
test_unknown_operator(void)
{
	refuse(HDR STMT("A") "    conditions:\n      StringEqual: { hsm:Mechanism: x }\n",
	       POL_ERR_OPERATOR, 9, "StringEqual");
}

static void
test_null_if_exists(void)
{
	refuse(HDR STMT("A") "    conditions:\n      NullIfExists: { hsm:Mechanism: \"true\" }\n",
	       POL_ERR_OPERATOR, 9, "NullIfExists");
}

static void
test_unknown_condition_key(void)
{
	refuse(HDR STMT("A") "    conditions:\n      StringEquals:\n        hsm:Mechanizm: x\n",
	       POL_ERR_KEY, 10, "hsm:Mechanizm");
}

static void
test_bad_number(void)
{
	refuse(HDR STMT("A") "    conditions:\n      NumericLessThan: { gw:AuthAge: 5m }\n",
	       POL_ERR_VALUE, 9, "gw:AuthAge");
}

static void
test_bad_date(void)
{
	refuse(HDR STMT("A") "    conditions:\n"
	                     "      DateLessThan: { gw:CurrentTime: \"2026-02-30T00:00:00Z\" }\n",
	       POL_ERR_VALUE, 9, "gw:CurrentTime");
}

static void
test_date_variable(void)
{
	refuse(HDR STMT("A") "    conditions:\n"
	                     "      DateLessThan: { gw:CurrentTime: \"${gw:PrincipalTag/x}\" }\n",
	       POL_ERR_VALUE, 9, "gw:CurrentTime");
}

static void
test_bad_bool(void)
{
	refuse(HDR STMT("A") "    conditions:\n      Bool: { hsm:SessionRW: yes }\n", POL_ERR_VALUE,
	       9, "hsm:SessionRW");
}

static void
test_bad_cidr(void)
{
	refuse(HDR STMT("A") "    conditions:\n      IpAddress:\n        gw:SourceIp:\n"
	                     "          - 10.0.0.0/8\n          - 10.0.0.0/33\n",
	       POL_ERR_VALUE, 12, "gw:SourceIp");
}

static void
test_bad_base64(void)
{
	refuse(HDR STMT("A") "    conditions:\n      BinaryEquals: { hsm:KeyId: \"AQI\" }\n",
	       POL_ERR_VALUE, 9, "hsm:KeyId");
}

static void
test_unknown_variable(void)
{
	refuse(HDR "  - sid: A\n    effect: allow\n    principals: \"*\"\n"
	           "    actions: hsm.crypto.sign\n"
	           "    resources: \"crn:hsmgate:${hsm:Tennant}:partition:x\"\n",
	       POL_ERR_KEY, 7, "resources");
}

static void
test_unterminated_variable(void)
{
	refuse(HDR STMT("A") "    conditions:\n"
	                     "      StringEquals: { hsm:KeyLabel: \"${hsm:PrincipalName\" }\n",
	       POL_ERR_VALUE, 9, "hsm:KeyLabel");
}

static void
test_empty_list(void)
{
	refuse(HDR "  - sid: A\n    effect: allow\n    principals: \"*\"\n"
	           "    actions: []\n    resources: \"*\"\n",
	       POL_ERR_VALUE, 6, "actions");
}

static void
test_nested_list(void)
{
	refuse(HDR "  - sid: A\n    effect: allow\n    principals: \"*\"\n"
	           "    actions: [[hsm.crypto.sign]]\n    resources: \"*\"\n",
	       POL_ERR_SYNTAX, 6, "actions");
}

static void
test_string_too_long(void)
{
	char buf[4096], lab[POL_MAX_STRING + 2];

	memset(lab, 'a', sizeof(lab) - 1);
	lab[sizeof(lab) - 1] = '\0';
	snprintf(buf, sizeof(buf),
	         HDR STMT("A") "    conditions:\n"
	                       "      StringEquals: { hsm:KeyLabel: %s }\n",
	         lab);
	refuse(buf, POL_ERR_TOO_LARGE, 9, "hsm:KeyLabel");
}

static void
test_nul_in_string(void)
{
	refuse(HDR STMT("A") "    conditions:\n      StringEquals: { hsm:KeyLabel: \"a\\0b\" }\n",
	       POL_ERR_VALUE, 9, "hsm:KeyLabel");
}

static void
test_empty_conditions(void)
{
	refuse(HDR STMT("A") "    conditions: {}\n", POL_ERR_VALUE, 8, "conditions");
}

static void
test_duplicate_condition_key(void)
{
	refuse(HDR STMT("A") "    conditions:\n      StringEquals:\n        hsm:Mechanism: a\n"
	                     "        hsm:Mechanism: b\n",
	       POL_ERR_DUPLICATE, 11, "hsm:Mechanism");
}

static void
test_conditions_not_map(void)
{
	refuse(HDR STMT("A") "    conditions:\n      StringEquals: [a, b]\n", POL_ERR_SYNTAX, 9,
	       "StringEquals");
}

static void
test_test_bad_decision(void)
{
	refuse(HDR STMT("A") "tests:\n  - name: t\n"
	                     "    request: { principal: tenant/a/user/b, action: hsm.crypto.sign, "
	                     "resource: x }\n    expect:\n      decision: allow_maybe\n",
	       POL_ERR_VALUE, 12, "decision");
}

static void
test_test_unknown_context_key(void)
{
	refuse(HDR STMT("A") "tests:\n  - name: t\n    request:\n"
	                     "      principal: tenant/a/user/b\n      action: hsm.crypto.sign\n"
	                     "      resource: x\n      context:\n        hsm:Mech: x\n"
	                     "    expect: { decision: allowed }\n",
	       POL_ERR_KEY, 15, "hsm:Mech");
}

static void
test_test_missing_field(void)
{
	refuse(HDR STMT(
	               "A") "tests:\n  - name: t\n"
	                    "    request: { principal: tenant/a/user/b, action: hsm.crypto.sign }\n"
	                    "    expect: { decision: allowed }\n",
	       POL_ERR_MISSING, 10, "request");
}

static void
test_file_missing(void)
{
	struct pol_policy *pol = NULL;
	struct pol_diag d;

	CU_ASSERT_EQUAL(pol_policy_load("/nonexistent/policy.yaml", &pol, &d), POL_ERR_IO);
	CU_ASSERT_PTR_NULL(pol);
	CU_ASSERT_STRING_EQUAL(d.file, "/nonexistent/policy.yaml");
	CU_ASSERT_EQUAL(pol_policy_load(NULL, &pol, &d), POL_ERR_INVAL);
}

static void
test_file_load(void)
{
	char *dir = test_tmpdir_new("pol");
	char path[512];
	struct pol_policy *pol = NULL;
	struct pol_diag d;
	static const char body[] = HDR STMT("A");

	CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
	snprintf(path, sizeof(path), "%s/p.yaml", dir);
	CU_ASSERT_EQUAL_FATAL(test_file_write(path, body, sizeof(body) - 1), 0);
	CU_ASSERT_EQUAL(pol_policy_load(path, &pol, &d), 0);
	CU_ASSERT_EQUAL(pol_policy_statement_count(pol), 1);
	pol_policy_free(pol);
	test_tmpdir_remove(dir);
}

static void
test_diag_format(void)
{
	struct pol_diag d;
	char buf[512];

	(void)polt_refuse(HDR STMT("A") "    effect: deny\n", &d);
	CU_ASSERT_EQUAL(pol_diag_format(&d, buf, sizeof(buf)), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(buf, "test.yaml:8:5: error: duplicate key 'effect'"));
	CU_ASSERT_PTR_NOT_NULL(strstr(buf, "statements[0].effect"));
	CU_ASSERT_EQUAL(pol_diag_format(&d, buf, 8), POL_ERR_TRUNCATED);
}

static void
test_strerror(void)
{
	CU_ASSERT_STRING_EQUAL(pol_strerror(0), "success");
	CU_ASSERT_STRING_EQUAL(pol_strerror(POL_ERR_ACTION), "unknown action");
	CU_ASSERT_STRING_EQUAL(pol_strerror(-1), "unknown error");
}

/* Every prefix of a valid policy either loads or is refused with a diagnostic. */
static void
test_truncations(void)
{
	static const char body[] =
	        "version: 1\ntenant: demo\ngroups: { g: { members: [tenant/demo/user/a] } }\n"
	        "statements:\n  - sid: A\n    effect: allow\n    principals: [group:g]\n"
	        "    actions: [role:CryptoUser]\n    resources: \"crn:hsmgate:demo:*\"\n"
	        "    conditions: { IpAddress: { gw:SourceIp: 10.0.0.0/8 } }\n";
	size_t n;

	for (n = 0; n < sizeof(body) - 1; n++) {
		struct pol_policy *pol = NULL;
		struct pol_diag d;
		int r = pol_policy_load_buffer(body, n, "t", &pol, &d);

		if (r != 0) {
			CU_ASSERT_PTR_NULL(pol);
			CU_ASSERT(d.code == r);
		}
		pol_policy_free(pol);
	}
}

static const struct test_case cases[] = {
        {"accepts minimal", test_accepts_minimal},
        {"YAML syntax", test_yaml_syntax},
        {"empty document", test_empty_document},
        {"two documents", test_two_documents},
        {"alias", test_alias},
        {"top level not a mapping", test_top_not_mapping},
        {"unknown top-level key", test_unknown_top_key},
        {"duplicate top-level key", test_duplicate_top_key},
        {"bad version", test_bad_version},
        {"missing statements", test_missing_statements},
        {"statements not a list", test_statements_not_list},
        {"missing sid", test_missing_sid},
        {"bad sid", test_bad_sid},
        {"duplicate sid", test_duplicate_sid},
        {"missing effect", test_missing_effect},
        {"bad effect", test_bad_effect},
        {"bad mode", test_bad_mode},
        {"unknown statement key", test_unknown_statement_key},
        {"duplicate statement key", test_duplicate_statement_key},
        {"actions and not_actions", test_actions_and_not_actions},
        {"missing actions", test_missing_actions},
        {"unknown action", test_unknown_action},
        {"unknown action pattern", test_unknown_action_pattern},
        {"bad action characters", test_bad_action_chars},
        {"unknown role", test_unknown_role},
        {"role shadows builtin", test_role_shadows_builtin},
        {"role with unknown action", test_role_unknown_action},
        {"undeclared group", test_undeclared_group},
        {"undeclared principal", test_undeclared_principal},
        {"bad principal", test_bad_principal},
        {"variable in principal", test_principal_variable},
        {"bad principal declaration", test_bad_principal_declaration},
        {"bad group field", test_bad_group_field},
        {"bad tenant", test_bad_tenant},
        {"resource not a CRN", test_resource_not_crn},
        {"unknown operator", test_unknown_operator},
        {"Null with IfExists", test_null_if_exists},
        {"unknown condition key", test_unknown_condition_key},
        {"bad number", test_bad_number},
        {"bad date", test_bad_date},
        {"variable in a Date value", test_date_variable},
        {"bad bool", test_bad_bool},
        {"bad CIDR", test_bad_cidr},
        {"bad base64", test_bad_base64},
        {"unknown variable", test_unknown_variable},
        {"unterminated variable", test_unterminated_variable},
        {"empty list", test_empty_list},
        {"nested list", test_nested_list},
        {"string too long", test_string_too_long},
        {"NUL in a string", test_nul_in_string},
        {"empty conditions", test_empty_conditions},
        {"duplicate condition key", test_duplicate_condition_key},
        {"conditions not a mapping", test_conditions_not_map},
        {"test: bad decision", test_test_bad_decision},
        {"test: unknown context key", test_test_unknown_context_key},
        {"test: missing request field", test_test_missing_field},
        {"file missing", test_file_missing},
        {"file load", test_file_load},
        {"diag format", test_diag_format},
        {"strerror", test_strerror},
        {"truncated at every byte", test_truncations},
        {NULL, NULL},
};

void
test_register(void)
{
	test_suite_add("policy/load", NULL, polt_cleanup, cases);
}
