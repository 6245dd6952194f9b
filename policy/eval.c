/*
 * policy/eval.c — evaluation and decisions.
 *
 * AWS IAM evaluation (reference/policy-and-kms.md table (a) rows 1-4): every request is
 * implicitly denied; every statement that applies is considered, in no particular order;
 * any applicable deny makes the result an explicit deny; otherwise any applicable allow
 * allows. A statement applies when its principal, action and resource clauses match and
 * every condition is true. Shadow statements are evaluated the same way into separate
 * lists and a separate result that is never enforced.
 *
 * Hot path: the action is looked up once; the policy's per-action index names the only
 * statements that can apply; matching uses precompiled patterns; nothing is allocated.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "policy/internal.h"

struct pol_decision {
	enum pol_result result, shadow_result;
	int err;
	size_t count[4];
	const struct pol_stmt *hits[4][POL_DECISION_MAX_SIDS];
	const char *missing[POL_DECISION_MAX_MISSING];
	size_t nmissing;
	const struct pol_stmt *err_stmt;
};

int
pol_decision_new(struct pol_decision **out)
{
	struct pol_decision *dec;

	if (out == NULL) {
		return POL_ERR_INVAL;
	}
	dec = calloc(1, sizeof(*dec));
	*out = dec;
	if (dec == NULL) {
		return POL_ERR_NOMEM;
	}
	pol_decision_clear(dec);
	return 0;
}

void
pol_decision_free(struct pol_decision *dec)
{
	free(dec);
}

void
pol_decision_clear(struct pol_decision *dec)
{
	dec->result = POL_IMPLICIT_DENY;
	dec->shadow_result = POL_IMPLICIT_DENY;
	dec->err = 0;
	memset(dec->count, 0, sizeof(dec->count));
	dec->nmissing = 0;
	dec->err_stmt = NULL;
}

void
pol_decision_add(struct pol_decision *dec, enum pol_list list, const struct pol_stmt *st)
{
	if (dec->count[list] < POL_DECISION_MAX_SIDS) {
		dec->hits[list][dec->count[list]] = st;
	}
	dec->count[list]++;
}

void
pol_decision_note_missing(struct pol_decision *dec, const char *key)
{
	size_t i;

	for (i = 0; i < dec->nmissing; i++) {
		if (strcasecmp(dec->missing[i], key) == 0) {
			return;
		}
	}
	if (dec->nmissing < POL_DECISION_MAX_MISSING) {
		dec->missing[dec->nmissing++] = key;
	}
}

void
pol_decision_finish(struct pol_decision *dec, int err)
{
	size_t deny = dec->count[POL_LIST_DENY], allow = dec->count[POL_LIST_ALLOW];

	dec->err = err;
	if (deny > 0) {
		dec->result = POL_EXPLICIT_DENY;
	} else if (allow > 0 && err == 0) {
		dec->result = POL_ALLOWED;
	} else {
		dec->result = POL_IMPLICIT_DENY;
	}
	deny += dec->count[POL_LIST_SHADOW_DENY];
	allow += dec->count[POL_LIST_SHADOW_ALLOW];
	if (deny > 0) {
		dec->shadow_result = POL_EXPLICIT_DENY;
	} else if (allow > 0 && err == 0) {
		dec->shadow_result = POL_ALLOWED;
	} else {
		dec->shadow_result = POL_IMPLICIT_DENY;
	}
}

enum pol_result
pol_decision_result(const struct pol_decision *dec)
{
	return dec == NULL ? POL_IMPLICIT_DENY : dec->result;
}

enum pol_result
pol_decision_shadow_result(const struct pol_decision *dec)
{
	return dec == NULL ? POL_IMPLICIT_DENY : dec->shadow_result;
}

int
pol_decision_error(const struct pol_decision *dec)
{
	return dec == NULL ? POL_ERR_INVAL : dec->err;
}

size_t
pol_decision_count(const struct pol_decision *dec, enum pol_list list)
{
	if (dec == NULL || (unsigned)list > POL_LIST_SHADOW_DENY) {
		return 0;
	}
	return dec->count[list];
}

static const struct pol_stmt *
hit(const struct pol_decision *dec, enum pol_list list, size_t i)
{
	if (dec == NULL || (unsigned)list > POL_LIST_SHADOW_DENY || i >= dec->count[list] ||
	    i >= POL_DECISION_MAX_SIDS) {
		return NULL;
	}
	return dec->hits[list][i];
}

const char *
pol_decision_sid(const struct pol_decision *dec, enum pol_list list, size_t i)
{
	const struct pol_stmt *st = hit(dec, list, i);

	return st == NULL ? NULL : st->sid;
}

unsigned
pol_decision_line(const struct pol_decision *dec, enum pol_list list, size_t i)
{
	const struct pol_stmt *st = hit(dec, list, i);

	return st == NULL ? 0 : st->line;
}

size_t
pol_decision_missing_count(const struct pol_decision *dec)
{
	return dec == NULL ? 0 : dec->nmissing;
}

const char *
pol_decision_missing(const struct pol_decision *dec, size_t i)
{
	return (dec == NULL || i >= dec->nmissing) ? NULL : dec->missing[i];
}

const char *
pol_result_name(enum pol_result r)
{
	switch (r) {
	case POL_ALLOWED:
		return "allowed";
	case POL_EXPLICIT_DENY:
		return "explicit_deny";
	case POL_IMPLICIT_DENY:
		return "implicit_deny";
	default:
		return "implicit_deny";
	}
}

/* ---- explanation ---------------------------------------------------------------------- */

struct out {
	char *buf;
	size_t len, used;
	bool trunc;
};

static void __attribute__((format(printf, 2, 3))) out_printf(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (o->trunc) {
		return;
	}
	va_start(ap, fmt);
	n = vsnprintf(o->buf + o->used, o->len - o->used, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= o->len - o->used) {
		o->trunc = true;
		o->used = o->len - 1;
		return;
	}
	o->used += (size_t)n;
}

static void
out_list(struct out *o, const struct pol_decision *dec, enum pol_list list)
{
	size_t i, n = dec->count[list];

	for (i = 0; i < n && i < POL_DECISION_MAX_SIDS; i++) {
		out_printf(o, "%s%s (line %u)", i == 0 ? "" : ", ", dec->hits[list][i]->sid,
		           dec->hits[list][i]->line);
	}
	if (n > POL_DECISION_MAX_SIDS) {
		out_printf(o, " and %zu more", n - POL_DECISION_MAX_SIDS);
	}
}

int
pol_decision_explain(const struct pol_decision *dec, char *buf, size_t len)
{
	struct out o = {buf, len, 0, false};
	size_t i;

	if (dec == NULL || buf == NULL || len == 0) {
		return POL_ERR_INVAL;
	}
	buf[0] = '\0';
	out_printf(&o, "decision: %s\n", pol_result_name(dec->result));
	if (dec->err != 0) {
		out_printf(&o, "  evaluation error: %s%s%s; failing closed\n",
		           pol_strerror(dec->err), dec->err_stmt != NULL ? " in statement " : "",
		           dec->err_stmt != NULL ? dec->err_stmt->sid : "");
	}
	switch (dec->result) {
	case POL_EXPLICIT_DENY:
		out_printf(&o, "  denied by: ");
		out_list(&o, dec, POL_LIST_DENY);
		out_printf(&o, "\n");
		if (dec->count[POL_LIST_ALLOW] > 0) {
			out_printf(&o, "  overridden allows: ");
			out_list(&o, dec, POL_LIST_ALLOW);
			out_printf(&o, "\n");
		}
		break;
	case POL_ALLOWED:
		out_printf(&o, "  allowed by: ");
		out_list(&o, dec, POL_LIST_ALLOW);
		out_printf(&o, "\n");
		break;
	case POL_IMPLICIT_DENY:
	default:
		if (dec->count[POL_LIST_ALLOW] > 0) {
			out_printf(&o, "  matched allows (not honoured after the error): ");
			out_list(&o, dec, POL_LIST_ALLOW);
			out_printf(&o, "\n");
		} else {
			out_printf(&o, "  no statement allows this request (default deny)\n");
		}
		break;
	}
	if (dec->nmissing > 0) {
		out_printf(&o, "  missing context keys: ");
		for (i = 0; i < dec->nmissing; i++) {
			out_printf(&o, "%s%s", i == 0 ? "" : ", ", dec->missing[i]);
		}
		out_printf(&o, "\n");
	}
	if (dec->count[POL_LIST_SHADOW_ALLOW] + dec->count[POL_LIST_SHADOW_DENY] > 0 ||
	    dec->shadow_result != dec->result) {
		out_printf(&o, "  shadow decision: %s (not enforced)",
		           pol_result_name(dec->shadow_result));
		if (dec->count[POL_LIST_SHADOW_DENY] > 0) {
			out_printf(&o, "; shadow denies: ");
			out_list(&o, dec, POL_LIST_SHADOW_DENY);
		}
		if (dec->count[POL_LIST_SHADOW_ALLOW] > 0) {
			out_printf(&o, "; shadow allows: ");
			out_list(&o, dec, POL_LIST_SHADOW_ALLOW);
		}
		out_printf(&o, "\n");
	}
	return o.trunc ? POL_ERR_TRUNCATED : 0;
}

/* ---- evaluation ----------------------------------------------------------------------- */

static bool
group_member_declared(struct pol_eval_ctx *ctx, const struct pol_group *g)
{
	const char *principal = pol_request_principal(ctx->req);
	size_t i;
	int r;

	for (i = 0; i < g->nmembers; i++) {
		if (pol_pattern_match_ctx(ctx, &g->members[i].pat, principal, false) == 1) {
			return true;
		}
	}
	for (i = 0; i < g->nmatch; i++) {
		r = pol_cond_eval(ctx, &g->match[i]);
		if (r == 1) {
			return true;
		}
	}
	return false;
}

static bool
in_group(struct pol_eval_ctx *ctx, const struct pol_princ *p)
{
	size_t i, n = pol_request_group_count(ctx->req);

	if (p->gidx >= 0 && ctx->gm[p->gidx] >= 0) {
		return ctx->gm[p->gidx] == 1;
	}
	bool yes = false;

	for (i = 0; i < n && !yes; i++) {
		yes = strcmp(pol_request_group(ctx->req, i), p->group) == 0;
	}
	if (!yes && p->gidx >= 0) {
		yes = group_member_declared(ctx, &ctx->pol->groups[p->gidx]);
	}
	if (p->gidx >= 0) {
		ctx->gm[p->gidx] = yes ? 1 : 0;
	}
	return yes;
}

static int
principal_matches(struct pol_eval_ctx *ctx, const struct pol_stmt *st)
{
	const char *principal = pol_request_principal(ctx->req);
	size_t i;
	int r;

	for (i = 0; i < st->nprinc; i++) {
		const struct pol_princ *p = &st->princ[i];

		switch (p->kind) {
		case POL_PR_ANY:
			r = 1;
			break;
		case POL_PR_PATTERN:
			r = pol_pattern_match_ctx(ctx, &p->pat, principal, false);
			break;
		case POL_PR_GROUP:
			r = in_group(ctx, p) ? 1 : 0;
			break;
		default:
			r = 0;
			break;
		}
		if (r != 0) {
			return r;
		}
	}
	return 0;
}

static int
action_matches_slow(struct pol_eval_ctx *ctx, const struct pol_stmt *st)
{
	const char *action = pol_request_action(ctx->req);
	size_t i;
	int r;

	for (i = 0; i < st->napat; i++) {
		if ((r = pol_pattern_match_ctx(ctx, &st->apat[i], action, true)) != 0) {
			return r;
		}
	}
	return 0;
}

static int
resource_matches(struct pol_eval_ctx *ctx, const struct pol_stmt *st)
{
	const char *res = pol_request_resource(ctx->req);
	size_t i;
	int r;

	for (i = 0; i < st->nres; i++) {
		if ((r = pol_pattern_match_ctx(ctx, &st->res[i], res, false)) != 0) {
			return r;
		}
	}
	return 0;
}

/* 1 when the statement applies, 0 when not, negative on an evaluation error. */
static int
stmt_applies(struct pol_eval_ctx *ctx, const struct pol_stmt *st, bool slow_action)
{
	size_t i;
	int r;

	ctx->unresolved = false;
	if (slow_action) {
		if ((r = action_matches_slow(ctx, st)) < 0) {
			return r;
		}
		if ((r != 0) == st->not_actions) {
			return 0;
		}
	}
	if ((r = principal_matches(ctx, st)) < 0) {
		return r;
	}
	if ((r != 0) == st->not_principals) {
		return 0;
	}
	if ((r = resource_matches(ctx, st)) < 0) {
		return r;
	}
	if (ctx->unresolved || (r != 0) == st->not_resources) {
		return 0;
	}
	for (i = 0; i < st->nconds; i++) {
		if ((r = pol_cond_eval(ctx, &st->conds[i])) < 0) {
			return r;
		}
		if (ctx->unresolved || r == 0) {
			return 0;
		}
	}
	return 1;
}

/* Evaluates the statements of one index list (or all of them when list is NULL). */
static int
eval_list(struct pol_eval_ctx *ctx, const uint32_t *list, size_t n, bool known_action)
{
	const struct pol_policy *pol = ctx->pol;
	size_t i;
	int r;

	for (i = 0; i < n; i++) {
		const struct pol_stmt *st = &pol->stmts[list != NULL ? list[i] : i];

		/* An action the vocabulary does not know is never allowed, whatever wildcard
		 * an allow uses: only denies are considered for it. */
		if (!known_action && st->effect == POL_ALLOW) {
			continue;
		}
		r = stmt_applies(ctx, st, !known_action);
		if (r < 0) {
			ctx->dec->err_stmt = st;
			return r;
		}
		if (r == 1) {
			pol_decision_add(
			        ctx->dec,
			        st->shadow
			                ? (st->effect == POL_DENY ? POL_LIST_SHADOW_DENY
			                                          : POL_LIST_SHADOW_ALLOW)
			                : (st->effect == POL_DENY ? POL_LIST_DENY : POL_LIST_ALLOW),
			        st);
		}
	}
	return 0;
}

/* The index bucket of the resource's tenant ("crn:hsmgate:<t>:..."), or 0. */
static size_t
tenant_bucket(const struct pol_policy *pol, const char *res)
{
	const char *t, *end;
	size_t lo = 0, hi = pol->ntenants, n;

	if (pol->ntenants == 0 || strncmp(res, "crn:hsmgate:", 12) != 0) {
		return 0;
	}
	t = res + 12;
	end = strchr(t, ':');
	n = end != NULL ? (size_t)(end - t) : strlen(t);
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strncmp(pol->tenants[mid], t, n);

		if (c == 0 && pol->tenants[mid][n] != '\0') {
			c = 1;
		}
		if (c == 0) {
			return 1 + mid;
		}
		if (c < 0) {
			lo = mid + 1;
		} else {
			hi = mid;
		}
	}
	return 0;
}

int
pol_evaluate(const struct pol_policy *pol, const struct pol_request *req, struct pol_decision *dec)
{
	struct pol_eval_ctx ctx;
	const char *action;
	size_t b;
	int ai, r;

	if (dec == NULL) {
		return POL_ERR_INVAL;
	}
	pol_decision_clear(dec);
	if (pol == NULL || req == NULL || pol_request_principal(req) == NULL ||
	    pol_request_action(req) == NULL || pol_request_resource(req) == NULL) {
		pol_decision_finish(dec, POL_ERR_INVAL);
		return POL_ERR_INVAL;
	}
	ctx.pol = pol;
	ctx.req = req;
	ctx.dec = dec;
	ctx.unresolved = false;
	if (pol->ngroups > 0) {
		memset(ctx.gm, -1, pol->ngroups);
	}
	action = pol_request_action(req);
	ai = pol_vocab_action_index(action, strlen(action));
	if (ai < 0) {
		/* An action outside the vocabulary can still be denied by a wildcard deny:
		 * walk every statement and glob-match its patterns (the slow path; the
		 * gateway only sends actions from the table). */
		r = eval_list(&ctx, NULL, pol->nstmts, false);
	} else {
		/* Statements for any tenant, then those of the resource's tenant. */
		b = tenant_bucket(pol, pol_request_resource(req));
		r = eval_list(&ctx, pol->idx[ai], pol->nidx[ai], true);
		if (r == 0 && b > 0) {
			size_t k = b * POL_MAX_ACTIONS + (size_t)ai;

			r = eval_list(&ctx, pol->idx[k], pol->nidx[k], true);
		}
	}
	pol_decision_finish(dec, r);
	return r;
}

/* ---- tests: block --------------------------------------------------------------------- */

static bool
sids_equal(const struct pol_test *t, const struct pol_decision *dec, enum pol_list list, char *why,
           size_t whylen)
{
	size_t i, j, n = dec->count[list];

	if (n != t->nsids) {
		goto bad;
	}
	for (i = 0; i < t->nsids; i++) {
		for (j = 0; j < n && j < POL_DECISION_MAX_SIDS; j++) {
			if (strcmp(dec->hits[list][j]->sid, t->sids[i]) == 0) {
				break;
			}
		}
		if (j == n || j == POL_DECISION_MAX_SIDS) {
			goto bad;
		}
	}
	return true;
bad:
	(void)snprintf(why, whylen, "expected sids [");
	for (i = 0; i < t->nsids; i++) {
		size_t u = strlen(why);
		(void)snprintf(why + u, whylen - u, "%s%s", i == 0 ? "" : ", ", t->sids[i]);
	}
	{
		size_t u = strlen(why);
		(void)snprintf(why + u, whylen - u, "], matched [");
	}
	for (j = 0; j < n && j < POL_DECISION_MAX_SIDS; j++) {
		size_t u = strlen(why);
		(void)snprintf(why + u, whylen - u, "%s%s", j == 0 ? "" : ", ",
		               dec->hits[list][j]->sid);
	}
	{
		size_t u = strlen(why);
		(void)snprintf(why + u, whylen - u, "]");
	}
	return false;
}

int
pol_policy_run_tests(const struct pol_policy *pol, pol_test_fn fn, void *arg, unsigned *passed,
                     unsigned *failed)
{
	struct pol_decision *dec = NULL;
	unsigned np = 0, nf = 0;
	char why[512];
	size_t i;
	int r;

	if (passed != NULL) {
		*passed = 0;
	}
	if (failed != NULL) {
		*failed = 0;
	}
	if (pol == NULL) {
		return POL_ERR_INVAL;
	}
	if ((r = pol_decision_new(&dec)) != 0) {
		goto out;
	}
	for (i = 0; i < pol->ntests; i++) {
		const struct pol_test *t = &pol->tests[i];
		bool ok = true;
		int er;

		why[0] = '\0';
		er = pol_evaluate(pol, t->req, dec);
		if (dec->result != t->expect) {
			ok = false;
			(void)snprintf(why, sizeof(why), "expected %s, got %s%s%s",
			               pol_result_name(t->expect), pol_result_name(dec->result),
			               er != 0 ? ": " : "", er != 0 ? pol_strerror(er) : "");
		} else if (t->has_shadow && dec->shadow_result != t->expect_shadow) {
			ok = false;
			(void)snprintf(why, sizeof(why), "expected shadow %s, got %s",
			               pol_result_name(t->expect_shadow),
			               pol_result_name(dec->shadow_result));
		} else if (t->has_sids) {
			enum pol_list l =
			        t->expect == POL_EXPLICIT_DENY ? POL_LIST_DENY : POL_LIST_ALLOW;
			ok = sids_equal(t, dec, l, why, sizeof(why));
		}
		if (ok) {
			np++;
		} else {
			nf++;
		}
		if (fn != NULL) {
			fn(t->name, t->line, ok, dec, ok ? NULL : why, arg);
		}
	}
	r = nf > 0 ? POL_ERR_LINT : 0;
out:
	pol_decision_free(dec);
	if (passed != NULL) {
		*passed = np;
	}
	if (failed != NULL) {
		*failed = nf;
	}
	return r;
}
