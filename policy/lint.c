/*
 * policy/lint.c — warnings about policies that load but probably do not say what their
 * author meant (issue 4, "Tools"): allow with not_*, ForAllValues in an allow without a
 * Null guard, statements that can never match, wildcard-everything allows, operators
 * applied to keys of another type, tests naming statements that do not exist.
 *
 * Errors come from the loader itself (run in collecting mode, so every broken statement
 * is reported, not only the first); lint then adds warnings on the compiled policy.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "policy/internal.h"

struct lint {
	const struct pol_policy *pol;
	const char *file;
	pol_diag_fn fn;
	void *arg;
	unsigned nwarn;
};

static void __attribute__((format(printf, 5, 6)))
warn(struct lint *l, size_t si, unsigned line, const char *key, const char *fmt, ...)
{
	struct pol_diag d;
	char path[64], msg[320];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (si != (size_t)-1) {
		(void)snprintf(path, sizeof(path), "statements[%zu]", si);
	} else {
		path[0] = '\0';
	}
	pol_diag_set(&d, POL_ERR_LINT, POL_SEV_WARNING, l->file, line, 0, key, path, "%s", msg);
	l->nwarn++;
	if (l->fn != NULL) {
		l->fn(&d, l->arg);
	}
}

static bool
covers_all_actions(const struct pol_stmt *st)
{
	size_t i, n = pol_action_count();

	for (i = 0; i < n; i++) {
		bool in = (st->amask[i / 64] >> (i % 64)) & 1;

		if (in == st->not_actions) {
			return false;
		}
	}
	return true;
}

static bool
covers_no_action(const struct pol_stmt *st)
{
	size_t i, n = pol_action_count();

	for (i = 0; i < n; i++) {
		bool in = (st->amask[i / 64] >> (i % 64)) & 1;

		if (in != st->not_actions) {
			return false;
		}
	}
	return true;
}

/* The tenant segment of a CRN pattern "crn:hsmgate:<tenant>:...", when it is literal. */
static bool
crn_tenant(const char *text, char *out, size_t cap)
{
	const char *t, *end;
	size_t n;

	if (strncmp(text, "crn:hsmgate:", 12) != 0) {
		return false;
	}
	t = text + 12;
	end = strchr(t, ':');
	n = end != NULL ? (size_t)(end - t) : strlen(t);
	if (n == 0 || n >= cap || memchr(t, '*', n) != NULL || memchr(t, '?', n) != NULL ||
	    memchr(t, '$', n) != NULL) {
		return false;
	}
	memcpy(out, t, n);
	out[n] = '\0';
	return true;
}

static bool
principal_tenant(const char *text, char *out, size_t cap)
{
	const char *t = text + 7, *end;
	size_t n;

	if (strncmp(text, "tenant/", 7) != 0) {
		return false;
	}
	end = strchr(t, '/');
	n = end != NULL ? (size_t)(end - t) : strlen(t);
	if (n == 0 || n >= cap || memchr(t, '*', n) != NULL || memchr(t, '?', n) != NULL) {
		return false;
	}
	memcpy(out, t, n);
	out[n] = '\0';
	return true;
}

static void
lint_conditions(struct lint *l, size_t si, const struct pol_stmt *st)
{
	size_t i, j;
	enum pol_ktype kt;

	for (i = 0; i < st->nconds; i++) {
		const struct pol_cond *c = &st->conds[i];
		enum pol_ktype ot = pol_op_type(c->op);

		/* Type mismatch, for keys whose type is known (not KeyAttr/ families). */
		/* Only the types whose request values are parsed can turn into evaluation
		 * errors; Crn and Binary operators compare strings. */
		if (pol_vocab_key_type(c->key, &kt) == 0 && strchr(c->key, '/') == NULL &&
		    c->op != POL_OP_NULL &&
		    (ot == POL_KT_NUMERIC || ot == POL_KT_DATE || ot == POL_KT_BOOL ||
		     ot == POL_KT_IP) &&
		    ot != kt && !(ot == POL_KT_DATE && kt == POL_KT_NUMERIC)) {
			warn(l, si, c->line, c->key,
			     "statement '%s': operator %s compares a different type than key '%s' "
			     "holds; every request will be an evaluation error (deny)",
			     st->sid, c->opname, c->key);
		}
		if (st->effect == POL_ALLOW && c->qual == POL_Q_ALL && !c->ifexists) {
			bool guarded = false;

			for (j = 0; j < st->nconds; j++) {
				const struct pol_cond *g = &st->conds[j];

				if (g->op == POL_OP_NULL && strcasecmp(g->key, c->key) == 0 &&
				    g->nvals == 1 && !g->vals[0].b) {
					guarded = true;
				}
			}
			if (!guarded) {
				warn(l, si, c->line, c->key,
				     "statement '%s': %s is true when '%s' is absent; add "
				     "Null: { %s: false } to require it",
				     st->sid, c->opname, c->key, c->key);
			}
		}
		/* Null: {k: true} next to an operator that needs k present: never true. */
		if (c->op == POL_OP_NULL && c->nvals == 1 && c->vals[0].b) {
			for (j = 0; j < st->nconds; j++) {
				const struct pol_cond *o = &st->conds[j];

				if (o != c && o->op != POL_OP_NULL && !o->negated && !o->ifexists &&
				    o->qual != POL_Q_ALL && strcasecmp(o->key, c->key) == 0) {
					warn(l, si, o->line, o->key,
					     "statement '%s' can never match: '%s' must be absent "
					     "(Null) and present (%s)",
					     st->sid, c->key, o->opname);
				}
			}
		}
	}
}

static void
lint_statement(struct lint *l, size_t si, const struct pol_stmt *st)
{
	const struct pol_policy *pol = l->pol;
	bool any_princ = false, any_res = false;
	char t[256];
	size_t i;

	if (st->effect == POL_ALLOW && st->not_actions) {
		warn(l, si, st->line, "not_actions",
		     "statement '%s': allow with not_actions grants every other action, including "
		     "actions added later",
		     st->sid);
	}
	if (st->effect == POL_ALLOW && st->not_resources) {
		warn(l, si, st->line, "not_resources",
		     "statement '%s': allow with not_resources grants every other resource",
		     st->sid);
	}
	if (st->effect == POL_ALLOW && st->not_principals) {
		warn(l, si, st->line, "not_principals",
		     "statement '%s': allow with not_principals grants every other principal",
		     st->sid);
	}
	if (covers_no_action(st)) {
		warn(l, si, st->line, "not_actions",
		     "statement '%s' can never match: not_actions excludes every action", st->sid);
	}
	for (i = 0; i < st->nprinc; i++) {
		const struct pol_princ *p = &st->princ[i];

		if (p->kind == POL_PR_ANY) {
			any_princ = true;
		}
		if (p->kind == POL_PR_PATTERN && pol->tenant[0] != '\0' && !st->not_principals &&
		    principal_tenant(p->pat.text, t, sizeof(t)) && strcmp(t, pol->tenant) != 0) {
			warn(l, si, st->line, "principals",
			     "statement '%s': principal '%s' belongs to tenant '%s', not this "
			     "policy's tenant '%s'",
			     st->sid, p->pat.text, t, pol->tenant);
		}
	}
	for (i = 0; i < st->nres; i++) {
		if (strcmp(st->res[i].text, "*") == 0) {
			any_res = true;
		}
		if (pol->tenant[0] != '\0' && !st->not_resources &&
		    crn_tenant(st->res[i].text, t, sizeof(t)) && strcmp(t, pol->tenant) != 0) {
			warn(l, si, st->line, "resources",
			     "statement '%s' can never match a resource of tenant '%s': '%s' names "
			     "tenant '%s'",
			     st->sid, pol->tenant, st->res[i].text, t);
		}
	}
	if (st->effect == POL_ALLOW && !st->shadow && covers_all_actions(st) && any_princ &&
	    any_res && !st->not_resources && !st->not_principals && st->nconds == 0) {
		warn(l, si, st->line, "actions",
		     "statement '%s' allows every action on every resource to every principal",
		     st->sid);
	} else if (st->effect == POL_ALLOW && covers_all_actions(st) && any_res &&
	           !st->not_resources && st->nconds == 0) {
		warn(l, si, st->line, "actions",
		     "statement '%s' allows every action on every resource without conditions",
		     st->sid);
	}
	lint_conditions(l, si, st);
}

static void
lint_policy(struct lint *l)
{
	const struct pol_policy *pol = l->pol;
	size_t i, j, k;

	if (pol->nstmts == 0) {
		warn(l, (size_t)-1, 0, "statements",
		     "the policy has no statements: it denies everything");
	}
	for (i = 0; i < pol->nstmts; i++) {
		lint_statement(l, i, &pol->stmts[i]);
	}
	for (i = 0; i < pol->ntests; i++) {
		const struct pol_test *t = &pol->tests[i];

		for (j = 0; j < t->nsids; j++) {
			for (k = 0; k < pol->nstmts; k++) {
				if (strcmp(pol->stmts[k].sid, t->sids[j]) == 0) {
					break;
				}
			}
			if (k == pol->nstmts) {
				warn(l, (size_t)-1, t->line, "sids",
				     "test '%s' expects sid '%s', which no statement has", t->name,
				     t->sids[j]);
			}
		}
	}
}

static int
lint_common(int r, struct pol_policy *pol, const char *file, pol_diag_fn fn, void *arg,
            struct pol_load_opts *opts, unsigned *nerrors, unsigned *nwarnings)
{
	struct lint l = {pol, file, fn, arg, 0};

	if (r == 0) {
		lint_policy(&l);
	}
	pol_policy_free(pol);
	if (nerrors != NULL) {
		*nerrors = opts->nerrors;
	}
	if (nwarnings != NULL) {
		*nwarnings = l.nwarn;
	}
	if (r == POL_ERR_NOMEM || r == POL_ERR_IO || r == POL_ERR_INVAL) {
		return r;
	}
	return opts->nerrors > 0 ? POL_ERR_LINT : 0;
}

int
pol_policy_lint(const char *path, pol_diag_fn fn, void *arg, unsigned *nerrors, unsigned *nwarnings)
{
	struct pol_load_opts opts = {fn, arg, 0};
	struct pol_policy *pol = NULL;
	int r;

	r = pol_file_load_internal(path, &pol, NULL, &opts);
	return lint_common(r, pol, path, fn, arg, &opts, nerrors, nwarnings);
}

int
pol_policy_lint_buffer(const char *buf, size_t len, const char *name, pol_diag_fn fn, void *arg,
                       unsigned *nerrors, unsigned *nwarnings)
{
	struct pol_load_opts opts = {fn, arg, 0};
	struct pol_policy *pol = NULL;
	int r;

	r = pol_load_internal(buf, len, name, &pol, NULL, &opts);
	return lint_common(r, pol, name != NULL ? name : "<buffer>", fn, arg, &opts, nerrors,
	                   nwarnings);
}
