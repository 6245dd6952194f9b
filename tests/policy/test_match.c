/*
 * tests/policy/test_match.c — wildcard patterns (policy/match.c): compile rules, the three
 * flavours, fast paths, variables, and the worst-case input that would make a
 * backtracking matcher exponential.
 */
#include "policy/internal.h"
#include "tests/policy/polt.h"

static struct pol_arena arena;

static int
cleanup(void)
{
	pol_arena_free(&arena);
	return polt_cleanup();
}

static bool
m(const char *pat, enum pol_pat_kind kind, const char *s, bool icase)
{
	struct pol_pattern p;
	const char *why;

	CU_ASSERT_EQUAL_FATAL(pol_pattern_compile(&arena, pat, kind, false, &p, &why), 0);
	return pol_prog_match(p.prog, p.len, s, strlen(s), icase);
}

static void
test_glob(void)
{
	CU_ASSERT(m("hsm.crypto.*", POL_PAT_GLOB, "hsm.crypto.sign", false));
	CU_ASSERT(m("*", POL_PAT_GLOB, "", false));
	CU_ASSERT(m("a*b*c", POL_PAT_GLOB, "a:b:::c", false));
	CU_ASSERT(m("h?m.*", POL_PAT_GLOB, "hsm.x", false));
	CU_ASSERT_FALSE(m("h?m.*", POL_PAT_GLOB, "hm.x", false));
	CU_ASSERT_FALSE(m("abc", POL_PAT_GLOB, "abcd", false));
	CU_ASSERT(m("HSM.*", POL_PAT_GLOB, "hsm.x", true));
	CU_ASSERT_FALSE(m("HSM.*", POL_PAT_GLOB, "hsm.x", false));
}

static void
test_crn(void)
{
	/* '*' and '?' inside a segment do not cross ':'; a segment-final '*' does. */
	CU_ASSERT(m("crn:hsmgate:a:p:*", POL_PAT_CRN, "crn:hsmgate:a:p:x:key:y", false));
	CU_ASSERT(m("crn:hsmgate:*:p:x", POL_PAT_CRN, "crn:hsmgate:a:b:p:x", false));
	CU_ASSERT_FALSE(m("crn:hsmgate:a*b:p", POL_PAT_CRN, "crn:hsmgate:a:b:p", false));
	CU_ASSERT(m("crn:hsmgate:a*b:p", POL_PAT_CRN, "crn:hsmgate:axxb:p", false));
	CU_ASSERT_FALSE(m("crn:hsmgate:a?b", POL_PAT_CRN, "crn:hsmgate:a:b", false));
	CU_ASSERT(m("crn:hsmgate:a?b", POL_PAT_CRN, "crn:hsmgate:a-b", false));
}

static void
test_literal(void)
{
	CU_ASSERT(m("a*b?", POL_PAT_LITERAL, "a*b?", false));
	CU_ASSERT_FALSE(m("a*b?", POL_PAT_LITERAL, "axxbc", false));
}

static void
test_compile_fast_paths(void)
{
	struct pol_pattern p;
	const char *why;

	CU_ASSERT_EQUAL(pol_pattern_compile(&arena, "abc", POL_PAT_GLOB, false, &p, &why), 0);
	CU_ASSERT_STRING_EQUAL(p.lit, "abc");
	CU_ASSERT_EQUAL(p.flags & POL_PAT_PREFIX, 0);
	CU_ASSERT_EQUAL(pol_pattern_compile(&arena, "abc*", POL_PAT_GLOB, false, &p, &why), 0);
	CU_ASSERT_STRING_EQUAL(p.lit, "abc");
	CU_ASSERT(p.flags & POL_PAT_PREFIX);
	CU_ASSERT_EQUAL(pol_pattern_compile(&arena, "a*c", POL_PAT_GLOB, false, &p, &why), 0);
	CU_ASSERT_PTR_NULL(p.lit);
}

static void
test_compile_refusals(void)
{
	struct pol_pattern p;
	const char *why;
	char big[POL_MAX_STRING + 2];

	CU_ASSERT_EQUAL(pol_pattern_compile(&arena, "${hsm:Tenant}", POL_PAT_GLOB, false, &p, &why),
	                POL_ERR_VALUE);
	CU_ASSERT_EQUAL(pol_pattern_compile(&arena, "${nope:Key}", POL_PAT_GLOB, true, &p, &why),
	                POL_ERR_KEY);
	CU_ASSERT_EQUAL(pol_pattern_compile(&arena, "${}", POL_PAT_GLOB, true, &p, &why),
	                POL_ERR_VALUE);
	CU_ASSERT_EQUAL(
	        pol_pattern_compile(&arena, "${hsm:Tenant, x}", POL_PAT_GLOB, true, &p, &why),
	        POL_ERR_VALUE);
	CU_ASSERT_EQUAL(
	        pol_pattern_compile(&arena, "${hsm:Tenant, 'x}", POL_PAT_GLOB, true, &p, &why),
	        POL_ERR_VALUE);
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	CU_ASSERT_EQUAL(pol_pattern_compile(&arena, big, POL_PAT_GLOB, false, &p, &why),
	                POL_ERR_TOO_LARGE);
	CU_ASSERT_EQUAL(pol_pattern_compile(&arena, "${*}${?}${$}", POL_PAT_GLOB, true, &p, &why),
	                0);
	CU_ASSERT_EQUAL(p.len, 3);
	CU_ASSERT_EQUAL(p.prog[0], '*');
}

static void
test_no_exponential_blowup(void)
{
	/* "a*a*a*...b" against "aaaa...": a backtracking matcher takes forever. */
	char pat[256], s[1100];
	size_t i, n = 0;

	for (i = 0; i < 60; i++) {
		pat[n++] = 'a';
		pat[n++] = '*';
	}
	pat[n++] = 'b';
	pat[n] = '\0';
	memset(s, 'a', sizeof(s) - 1);
	s[sizeof(s) - 1] = '\0';
	CU_ASSERT_FALSE(m(pat, POL_PAT_GLOB, s, false));
}

static const struct test_case cases[] = {
        {"glob", test_glob},
        {"crn segments", test_crn},
        {"literal", test_literal},
        {"compile fast paths", test_compile_fast_paths},
        {"compile refusals", test_compile_refusals},
        {"no exponential blowup", test_no_exponential_blowup},
        {NULL, NULL},
};

void
test_register(void)
{
	test_suite_add("policy/match", NULL, cleanup, cases);
}
