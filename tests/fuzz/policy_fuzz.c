/*
 * tests/fuzz/policy_fuzz.c — libFuzzer target for the policy loader (policy/load.c), and
 * for what a loaded policy then does: evaluate, explain, run its tests: block, lint.
 * Seeds: tests/fuzz/corpus/policy/.
 */
#include <stddef.h>
#include <stdint.h>

#include "policy/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
evaluate(const struct pol_policy *pol, const char *principal, const char *action,
         const char *resource)
{
	struct pol_request *req = NULL;
	struct pol_decision *dec = NULL;
	char buf[4096];

	if (pol_request_new(&req) != 0 || pol_decision_new(&dec) != 0) {
		goto out;
	}
	if (pol_request_set_principal(req, principal) != 0 ||
	    pol_request_set_action(req, action) != 0 ||
	    pol_request_set_resource(req, resource) != 0 ||
	    pol_request_add(req, "hsm:Mechanism", "CKM_ECDSA_SHA256") != 0 ||
	    pol_request_add(req, "gw:SourceIp", "10.64.1.5") != 0 ||
	    pol_request_add(req, "hsm:KeyLabel", "payments-*:x") != 0 ||
	    pol_request_add(req, "hsm:AttrChanged", "CKA_LABEL") != 0 ||
	    pol_request_add(req, "hsm:AttrChanged", "CKA_ID") != 0 ||
	    pol_request_add_group(req, "payments-signers") != 0) {
		goto out;
	}
	if (pol_evaluate(pol, req, dec) != 0) {
		/* Errors deny; nothing more to check here. */
	}
	if (pol_decision_explain(dec, buf, sizeof(buf)) != 0) {
		/* truncated is fine */
	}
out:
	pol_decision_free(dec);
	pol_request_free(req);
}

static void
ignore_diag(const struct pol_diag *d, void *arg)
{
	(void)d;
	(void)arg;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pol_policy *pol = NULL;
	struct pol_diag d;
	unsigned np, nf, ne, nw;

	if (pol_policy_load_buffer((const char *)data, size, "fuzz", &pol, &d) == 0) {
		evaluate(pol, "tenant/demo/user/demo", "hsm.crypto.sign",
		         "crn:hsmgate:demo:partition:demo:key:id/1");
		evaluate(pol, "tenant/demo/service/x", "hsm.keys.generatepair",
		         "crn:hsmgate:demo:partition:demo");
		evaluate(pol, "tenant/o/user/y", "hsm.unknown.action", "crn:hsmgate:o:x");
		if (pol_policy_run_tests(pol, NULL, NULL, &np, &nf) != 0) {
			/* failing tests are not a bug of the loader */
		}
		pol_policy_free(pol);
	}
	if (pol_policy_lint_buffer((const char *)data, size, "fuzz", ignore_diag, NULL, &ne, &nw) !=
	    0) {
		/* errors are expected for most inputs */
	}
	return 0;
}
