/*
 * tests/policy/polt.h — helpers shared by the policy unit tests: load a policy from a
 * string, build a request from "key=value" arguments, evaluate. Test-only, header-only
 * (static functions) so that each test binary stays one source file.
 */
#ifndef HSMGATE_TESTS_POLICY_POLT_H
#define HSMGATE_TESTS_POLICY_POLT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"
#include "tests/lib/test.h"

/* The decision of the last polt_eval(), for sid and missing-key checks. */
static struct pol_decision *polt_dec;
static int polt_last_err;

static inline struct pol_policy *
polt_load(const char *yaml)
{
	struct pol_policy *pol = NULL;
	struct pol_diag d;
	int r = pol_policy_load_buffer(yaml, strlen(yaml), "test.yaml", &pol, &d);

	if (r != 0) {
		fprintf(stderr, "polt_load: %s:%u:%u: %s (%s)\n", d.file, d.line, d.column,
		        d.message, d.path);
	}
	CU_ASSERT_EQUAL_FATAL(r, 0);
	return pol;
}

/* Loads a policy that must be refused; returns the error and fills *d. */
static inline int
polt_refuse(const char *yaml, struct pol_diag *d)
{
	struct pol_policy *pol = NULL;
	int r = pol_policy_load_buffer(yaml, strlen(yaml), "test.yaml", &pol, d);

	CU_ASSERT_PTR_NULL(pol);
	pol_policy_free(pol);
	return r;
}

/*
 * Evaluates principal/action/resource plus NULL-terminated extra arguments:
 * "key=value" adds a context value (repeat a key for multi-valued), "@group" adds a group.
 */
static inline enum pol_result
polt_eval(const struct pol_policy *pol, const char *principal, const char *action,
          const char *resource, ...)
{
	struct pol_request *req = NULL;
	const char *a;
	char buf[512];
	va_list ap;
	int r;

	if (polt_dec == NULL) {
		CU_ASSERT_EQUAL_FATAL(pol_decision_new(&polt_dec), 0);
	}
	CU_ASSERT_EQUAL_FATAL(pol_request_new(&req), 0);
	CU_ASSERT_EQUAL_FATAL(pol_request_set_principal(req, principal), 0);
	CU_ASSERT_EQUAL_FATAL(pol_request_set_action(req, action), 0);
	CU_ASSERT_EQUAL_FATAL(pol_request_set_resource(req, resource), 0);
	va_start(ap, resource);
	while ((a = va_arg(ap, const char *)) != NULL) {
		if (a[0] == '@') {
			r = pol_request_add_group(req, a + 1);
		} else {
			const char *eq = strchr(a, '=');

			CU_ASSERT_PTR_NOT_NULL_FATAL(eq);
			snprintf(buf, sizeof(buf), "%.*s", (int)(eq - a), a);
			r = pol_request_add(req, buf, eq + 1);
		}
		CU_ASSERT_EQUAL(r, 0);
	}
	va_end(ap);
	polt_last_err = pol_evaluate(pol, req, polt_dec);
	pol_request_free(req);
	return pol_decision_result(polt_dec);
}

static inline int
polt_has_sid(enum pol_list list, const char *sid)
{
	size_t i;

	for (i = 0; i < pol_decision_count(polt_dec, list); i++) {
		if (strcmp(pol_decision_sid(polt_dec, list, i), sid) == 0) {
			return 1;
		}
	}
	return 0;
}

static inline int
polt_cleanup(void)
{
	pol_decision_free(polt_dec);
	polt_dec = NULL;
	return 0;
}

#define P_ALICE "tenant/demo/user/alice"
#define P_BOB   "tenant/demo/user/bob"
#define R_PART  "crn:hsmgate:demo:partition:demo"
#define R_KEY1  "crn:hsmgate:demo:partition:demo:key:id/1"
#define R_KEY2  "crn:hsmgate:demo:partition:demo:key:id/2"

#endif
