/*
 * tests/policy/test_lint.c — lint (policy/lint.c): each warning has a policy that raises
 * it and one that does not; errors are all collected, not only the first.
 */
#include "tests/policy/polt.h"

struct seen {
	unsigned n;
	char msgs[16][320];
	unsigned lines[16];
};

static void
collect(const struct pol_diag *d, void *arg)
{
	struct seen *s = arg;

	if (s->n < 16) {
		snprintf(s->msgs[s->n], sizeof(s->msgs[0]), "%s", d->message);
		s->lines[s->n] = d->line;
	}
	s->n++;
}

static int
lint(const char *yaml, struct seen *s, unsigned *ne, unsigned *nw)
{
	memset(s, 0, sizeof(*s));
	return pol_policy_lint_buffer(yaml, strlen(yaml), "t.yaml", collect, s, ne, nw);
}

static bool
has(const struct seen *s, const char *needle)
{
	unsigned i;

	for (i = 0; i < s->n && i < 16; i++) {
		if (strstr(s->msgs[i], needle) != NULL) {
			return true;
		}
	}
	return false;
}

#define HDR "version: 1\ntenant: demo\nstatements:\n"

static void
test_clean(void)
{
	struct seen s;
	unsigned ne, nw;

	CU_ASSERT_EQUAL(lint(HDR "  - sid: A\n    effect: allow\n    principals: \"*\"\n"
	                         "    actions: hsm.crypto.sign\n"
	                         "    resources: \"crn:hsmgate:demo:*\"\n",
	                     &s, &ne, &nw),
	                0);
	CU_ASSERT_EQUAL(ne, 0);
	CU_ASSERT_EQUAL(nw, 0);
}

static void
test_all_errors_reported(void)
{
	struct seen s;
	unsigned ne, nw;

	CU_ASSERT_EQUAL(lint(HDR "  - sid: A\n    effect: allow\n    principals: \"*\"\n"
	                         "    actions: hsm.crypto.sing\n    resources: \"*\"\n"
	                         "  - sid: B\n    effect: allow\n    principals: \"*\"\n"
	                         "    actions: hsm.crypto.sign\n    resources: \"*\"\n"
	                         "    conditions: { StringEquals: { hsm:Mechansim: x } }\n",
	                     &s, &ne, &nw),
	                POL_ERR_LINT);
	CU_ASSERT_EQUAL(ne, 2);
	CU_ASSERT(has(&s, "unknown action 'hsm.crypto.sing'"));
	CU_ASSERT(has(&s, "unknown condition key 'hsm:Mechansim'"));
	CU_ASSERT_EQUAL(s.lines[0], 7);
	CU_ASSERT_EQUAL(s.lines[1], 14);
}

static void
test_allow_not_actions(void)
{
	struct seen s;
	unsigned ne, nw;

	CU_ASSERT_EQUAL(lint(HDR "  - sid: A\n    effect: allow\n    principals: \"*\"\n"
	                         "    not_actions: hsm.masterkey.*\n"
	                         "    resources: \"crn:hsmgate:demo:*\"\n",
	                     &s, &ne, &nw),
	                0);
	CU_ASSERT(has(&s, "allow with not_actions"));
	CU_ASSERT_EQUAL(lint(HDR "  - sid: A\n    effect: deny\n    principals: \"*\"\n"
	                         "    not_actions: hsm.masterkey.*\n"
	                         "    resources: \"crn:hsmgate:demo:*\"\n",
	                     &s, &ne, &nw),
	                0);
	CU_ASSERT_EQUAL(nw, 0);
}

static void
test_for_all_values_without_null(void)
{
	struct seen s;
	unsigned ne, nw;
	static const char base[] =
	        HDR "  - sid: A\n    effect: allow\n    principals: \"*\"\n"
	            "    actions: hsm.keys.setattributes\n"
	            "    resources: \"crn:hsmgate:demo:*\"\n"
	            "    conditions:\n"
	            "      ForAllValues:StringEquals: { hsm:AttrChanged: CKA_LABEL }\n";
	char buf[1024];

	CU_ASSERT_EQUAL(lint(base, &s, &ne, &nw), 0);
	CU_ASSERT(has(&s, "ForAllValues:StringEquals is true when"));
	snprintf(buf, sizeof(buf), "%s      Null: { hsm:AttrChanged: \"false\" }\n", base);
	CU_ASSERT_EQUAL(lint(buf, &s, &ne, &nw), 0);
	CU_ASSERT_EQUAL(nw, 0);
}

static void
test_never_matches(void)
{
	struct seen s;
	unsigned ne, nw;

	CU_ASSERT_EQUAL(lint(HDR "  - sid: A\n    effect: allow\n    principals: \"*\"\n"
	                         "    actions: hsm.crypto.sign\n"
	                         "    resources: \"crn:hsmgate:other:*\"\n",
	                     &s, &ne, &nw),
	                0);
	CU_ASSERT(has(&s, "can never match a resource of tenant 'demo'"));
	CU_ASSERT_EQUAL(lint(HDR "  - sid: A\n    effect: deny\n    principals: \"*\"\n"
	                         "    not_actions: \"*\"\n    resources: \"*\"\n",
	                     &s, &ne, &nw),
	                0);
	CU_ASSERT(has(&s, "not_actions excludes every action"));
	CU_ASSERT_EQUAL(lint(HDR "  - sid: A\n    effect: allow\n    principals: \"*\"\n"
	                         "    actions: hsm.crypto.sign\n"
	                         "    resources: \"crn:hsmgate:demo:*\"\n    conditions:\n"
	                         "      Null: { hsm:KeyLabel: \"true\" }\n"
	                         "      StringLike: { hsm:KeyLabel: \"a*\" }\n",
	                     &s, &ne, &nw),
	                0);
	CU_ASSERT(has(&s, "can never match: 'hsm:KeyLabel' must be absent"));
	CU_ASSERT_EQUAL(lint(HDR "  - sid: A\n    effect: allow\n"
	                         "    principals: tenant/other/user/x\n"
	                         "    actions: hsm.crypto.sign\n"
	                         "    resources: \"crn:hsmgate:demo:*\"\n",
	                     &s, &ne, &nw),
	                0);
	CU_ASSERT(has(&s, "belongs to tenant 'other'"));
}

static void
test_wildcard_everything(void)
{
	struct seen s;
	unsigned ne, nw;

	CU_ASSERT_EQUAL(lint(HDR "  - sid: A\n    effect: allow\n    principals: \"*\"\n"
	                         "    actions: \"*\"\n    resources: \"*\"\n",
	                     &s, &ne, &nw),
	                0);
	CU_ASSERT(has(&s, "allows every action on every resource to every principal"));
	CU_ASSERT_EQUAL(lint(HDR "  - sid: A\n    effect: allow\n    principals: \"*\"\n"
	                         "    actions: \"*\"\n    resources: \"*\"\n"
	                         "    conditions: { IpAddress: { gw:SourceIp: 10.0.0.0/8 } }\n",
	                     &s, &ne, &nw),
	                0);
	CU_ASSERT_EQUAL(nw, 0);
}

static void
test_type_mismatch(void)
{
	struct seen s;
	unsigned ne, nw;

	CU_ASSERT_EQUAL(lint(HDR "  - sid: A\n    effect: allow\n    principals: \"*\"\n"
	                         "    actions: hsm.crypto.sign\n"
	                         "    resources: \"crn:hsmgate:demo:*\"\n"
	                         "    conditions: { NumericLessThan: { hsm:Mechanism: 5 } }\n",
	                     &s, &ne, &nw),
	                0);
	CU_ASSERT(has(&s, "compares a different type"));
	CU_ASSERT_EQUAL(lint(HDR "  - sid: A\n    effect: allow\n    principals: \"*\"\n"
	                         "    actions: hsm.crypto.sign\n"
	                         "    resources: \"crn:hsmgate:demo:*\"\n"
	                         "    conditions: { NumericLessThan: { hsm:KeyBits: 5 } }\n",
	                     &s, &ne, &nw),
	                0);
	CU_ASSERT_EQUAL(nw, 0);
}

static void
test_test_unknown_sid(void)
{
	struct seen s;
	unsigned ne, nw;

	CU_ASSERT_EQUAL(lint(HDR
	                     "  - sid: A\n    effect: allow\n    principals: \"*\"\n"
	                     "    actions: hsm.crypto.sign\n"
	                     "    resources: \"crn:hsmgate:demo:*\"\n"
	                     "tests:\n  - name: t\n    request: { principal: tenant/demo/user/a, "
	                     "action: hsm.crypto.sign, resource: \"crn:hsmgate:demo:x\" }\n"
	                     "    expect: { decision: allowed, sids: [B] }\n",
	                     &s, &ne, &nw),
	                0);
	CU_ASSERT(has(&s, "expects sid 'B'"));
}

static void
test_unreadable(void)
{
	struct seen s;
	unsigned ne = 0, nw = 0;

	memset(&s, 0, sizeof(s));
	CU_ASSERT_EQUAL(pol_policy_lint("/nonexistent.yaml", collect, &s, &ne, &nw), POL_ERR_IO);
	CU_ASSERT_EQUAL(ne, 1);
	CU_ASSERT_EQUAL(s.n, 1);
}

static const struct test_case cases[] = {
        {"clean", test_clean},
        {"all errors reported", test_all_errors_reported},
        {"allow with not_actions", test_allow_not_actions},
        {"ForAllValues without Null", test_for_all_values_without_null},
        {"never matches", test_never_matches},
        {"wildcard everything", test_wildcard_everything},
        {"type mismatch", test_type_mismatch},
        {"test names an unknown sid", test_test_unknown_sid},
        {"unreadable file", test_unreadable},
        {NULL, NULL},
};

void
test_register(void)
{
	test_suite_add("policy/lint", NULL, polt_cleanup, cases);
}
