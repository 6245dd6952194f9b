/*
 * tools/hsmgate-policy — lint, simulate and test hsmgate policy files (docs/POLICY.md).
 *
 *   hsmgate-policy lint FILE
 *   hsmgate-policy simulate FILE --principal P --action A --resource R
 *                  [--group G ...] [--tenant T] [--context key=value ...]
 *   hsmgate-policy test FILE
 *   hsmgate-policy actions
 *
 * Exit codes: lint 0 clean or warnings only, 1 errors; simulate 0 allowed, 1 denied;
 * test 0 all passed, 1 some failed; 2 usage or load error everywhere. The same pol_ code
 * the gateway and workers run decides here, so a simulation is the real decision.
 */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"

#define EXIT_USAGE 2

static void
usage_main(FILE *f)
{
	fprintf(f,
	        "usage: hsmgate-policy <command> [options]\n"
	        "\n"
	        "commands:\n"
	        "  lint FILE       check a policy file: schema, actions, condition keys, warnings\n"
	        "  simulate FILE   evaluate one request and explain the decision\n"
	        "  test FILE       run the file's tests: block\n"
	        "  actions         list the action vocabulary\n"
	        "\n"
	        "'hsmgate-policy <command> --help' describes each command.\n");
}

static void
usage_lint(FILE *f)
{
	fprintf(f,
	        "usage: hsmgate-policy lint FILE\n"
	        "\n"
	        "Loads FILE as the gateway would and reports every error (file:line:column) and\n"
	        "every warning: allow with not_actions/not_resources/not_principals, ForAllValues\n"
	        "in an allow without a Null guard, statements that can never match,\n"
	        "wildcard-everything allows, operator/key type mismatches.\n"
	        "Exit: 0 no errors (warnings allowed), 1 errors, 2 usage or unreadable file.\n");
}

static void
usage_simulate(FILE *f)
{
	fprintf(f, "usage: hsmgate-policy simulate FILE --principal P --action A --resource R\n"
	           "                [--group G]... [--tenant T] [--context KEY=VALUE]...\n"
	           "\n"
	           "Evaluates one request against FILE and prints the decision, the matched\n"
	           "statements, the condition keys the request lacked and the shadow decision.\n"
	           "A --context key given twice is multi-valued.\n"
	           "  --principal P   e.g. tenant/demo/user/alice\n"
	           "  --action A      e.g. hsm.crypto.sign\n"
	           "  --resource R    e.g. crn:hsmgate:demo:partition:demo:key:id/1\n"
	           "  --group G       a group the principal belongs to (repeatable)\n"
	           "  --tenant T      the tenant, when not the principal's\n"
	           "  --context K=V   a condition key value, e.g. hsm:Mechanism=CKM_ECDSA_SHA256\n"
	           "Exit: 0 allowed, 1 denied, 2 usage or load error.\n");
}

static void
usage_test(FILE *f)
{
	fprintf(f, "usage: hsmgate-policy test FILE\n"
	           "\n"
	           "Runs every case of FILE's tests: block and prints PASS/FAIL per case, then\n"
	           "\"N passed, N failed\".\n"
	           "Exit: 0 all passed, 1 some failed, 2 usage or load error.\n");
}

static bool
wants_help(int argc, char **argv)
{
	int i;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			return true;
		}
	}
	return false;
}

static void
print_diag(const struct pol_diag *d, void *arg)
{
	char buf[1024];

	(void)arg;
	if (pol_diag_format(d, buf, sizeof(buf)) != 0) {
		/* Truncated output is still the best we have. */
	}
	fprintf(stderr, "%s\n", buf);
}

static int
load_or_report(const char *file, struct pol_policy **pol)
{
	struct pol_diag d;
	int r;

	if ((r = pol_policy_load(file, pol, &d)) != 0) {
		print_diag(&d, NULL);
		return r;
	}
	return 0;
}

static int
cmd_lint(int argc, char **argv)
{
	unsigned ne = 0, nw = 0;
	int r;

	if (wants_help(argc, argv)) {
		usage_lint(stdout);
		return 0;
	}
	if (argc != 2) {
		usage_lint(stderr);
		return EXIT_USAGE;
	}
	r = pol_policy_lint(argv[1], print_diag, NULL, &ne, &nw);
	printf("%s: %u error%s, %u warning%s\n", argv[1], ne, ne == 1 ? "" : "s", nw,
	       nw == 1 ? "" : "s");
	if (r == POL_ERR_IO || r == POL_ERR_NOMEM || r == POL_ERR_INVAL) {
		return EXIT_USAGE;
	}
	return r == 0 ? 0 : 1;
}

static int
cmd_simulate(int argc, char **argv)
{
	static const struct option longopts[] = {
	        {"principal", required_argument, NULL, 'p'},
	        {"action", required_argument, NULL, 'a'},
	        {"resource", required_argument, NULL, 'r'},
	        {"group", required_argument, NULL, 'g'},
	        {"tenant", required_argument, NULL, 't'},
	        {"context", required_argument, NULL, 'c'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	struct pol_policy *pol = NULL;
	struct pol_request *req = NULL;
	struct pol_decision *dec = NULL;
	const char *file;
	char buf[8192], *eq;
	bool have_p = false, have_a = false, have_r = false;
	int c, r, ret = EXIT_USAGE;
	size_t i;

	if ((r = pol_request_new(&req)) != 0 || (r = pol_decision_new(&dec)) != 0) {
		fprintf(stderr, "hsmgate-policy: %s\n", pol_strerror(r));
		goto out;
	}
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		r = 0;
		switch (c) {
		case 'p':
			r = pol_request_set_principal(req, optarg);
			have_p = true;
			break;
		case 'a':
			r = pol_request_set_action(req, optarg);
			have_a = true;
			break;
		case 'r':
			r = pol_request_set_resource(req, optarg);
			have_r = true;
			break;
		case 'g':
			r = pol_request_add_group(req, optarg);
			break;
		case 't':
			r = pol_request_set_tenant(req, optarg);
			break;
		case 'c':
			eq = strchr(optarg, '=');
			if (eq == NULL || eq == optarg) {
				fprintf(stderr,
				        "hsmgate-policy: --context wants KEY=VALUE, not '%s'\n",
				        optarg);
				goto out;
			}
			*eq = '\0';
			if (!pol_condition_key_known(optarg)) {
				fprintf(stderr,
				        "hsmgate-policy: warning: unknown condition key '%s'\n",
				        optarg);
			}
			r = pol_request_add(req, optarg, eq + 1);
			break;
		case 'h':
			usage_simulate(stdout);
			ret = 0;
			goto out;
		default:
			usage_simulate(stderr);
			goto out;
		}
		if (r != 0) {
			fprintf(stderr, "hsmgate-policy: bad value for %s: %s\n", argv[optind - 1],
			        pol_strerror(r));
			goto out;
		}
	}
	if (optind != argc - 1 || !have_p || !have_a || !have_r) {
		usage_simulate(stderr);
		goto out;
	}
	file = argv[optind];
	if (load_or_report(file, &pol) != 0) {
		goto out;
	}
	r = pol_evaluate(pol, req, dec);
	if (pol_decision_explain(dec, buf, sizeof(buf)) != 0) {
		/* The explanation was cut; what we have is still printed. */
	}
	fputs(buf, stdout);
	printf("allow sids:");
	for (i = 0; i < pol_decision_count(dec, POL_LIST_ALLOW) && i < POL_DECISION_MAX_SIDS; i++) {
		printf(" %s", pol_decision_sid(dec, POL_LIST_ALLOW, i));
	}
	printf("\ndeny sids:");
	for (i = 0; i < pol_decision_count(dec, POL_LIST_DENY) && i < POL_DECISION_MAX_SIDS; i++) {
		printf(" %s", pol_decision_sid(dec, POL_LIST_DENY, i));
	}
	printf("\nmissing keys:");
	for (i = 0; i < pol_decision_missing_count(dec); i++) {
		printf(" %s", pol_decision_missing(dec, i));
	}
	printf("\n");
	if (r != 0) {
		fprintf(stderr, "hsmgate-policy: evaluation error: %s\n", pol_strerror(r));
	}
	ret = pol_decision_result(dec) == POL_ALLOWED ? 0 : 1;
out:
	pol_decision_free(dec);
	pol_request_free(req);
	pol_policy_free(pol);
	return ret;
}

static void
print_test(const char *name, unsigned line, int passed, const struct pol_decision *dec,
           const char *why, void *arg)
{
	(void)arg;
	if (passed) {
		printf("PASS %s (line %u): %s\n", name, line,
		       pol_result_name(pol_decision_result(dec)));
	} else {
		printf("FAIL %s (line %u): %s\n", name, line, why != NULL ? why : "");
	}
}

static int
cmd_test(int argc, char **argv)
{
	struct pol_policy *pol = NULL;
	unsigned np = 0, nf = 0;
	int r;

	if (wants_help(argc, argv)) {
		usage_test(stdout);
		return 0;
	}
	if (argc != 2) {
		usage_test(stderr);
		return EXIT_USAGE;
	}
	if (load_or_report(argv[1], &pol) != 0) {
		return EXIT_USAGE;
	}
	r = pol_policy_run_tests(pol, print_test, NULL, &np, &nf);
	pol_policy_free(pol);
	printf("%u passed, %u failed\n", np, nf);
	if (r == POL_ERR_NOMEM) {
		return EXIT_USAGE;
	}
	return nf == 0 ? 0 : 1;
}

static int
cmd_actions(void)
{
	size_t i;

	for (i = 0; i < pol_action_count(); i++) {
		printf("%-30s %-10s %s\n", pol_action_name(i), pol_action_resource(i),
		       pol_action_functions(i));
	}
	return 0;
}

int
main(int argc, char **argv)
{
	if (argc < 2) {
		usage_main(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage_main(stdout);
		return 0;
	}
	if (strcmp(argv[1], "lint") == 0) {
		return cmd_lint(argc - 1, argv + 1);
	}
	if (strcmp(argv[1], "simulate") == 0) {
		return cmd_simulate(argc - 1, argv + 1);
	}
	if (strcmp(argv[1], "test") == 0) {
		return cmd_test(argc - 1, argv + 1);
	}
	if (strcmp(argv[1], "actions") == 0) {
		return cmd_actions();
	}
	fprintf(stderr, "hsmgate-policy: unknown command '%s'\n", argv[1]);
	usage_main(stderr);
	return EXIT_USAGE;
}
