/*
 * policy/load.c — YAML policy file → compiled struct pol_policy.
 *
 * libyaml's document API rather than libcyaml: a condition block is a map of operator →
 * map of key → string or list, whose keys are data, not schema, and libcyaml can only
 * describe fixed field names. The document API keeps a start mark (line, column) on every
 * node, so each refusal names the node at fault.
 *
 * The loader is strict by design (docs/POLICY.md "Loading"): an unknown field, action,
 * condition key or operator, an undeclared group/role/principal, a duplicate key in any
 * mapping (libyaml silently keeps both) or a duplicate sid is an error, because a policy
 * that means something other than what its author wrote must never be enforced. YAML
 * aliases are refused: they are never needed here and would let a small file expand into
 * a huge one.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "policy/internal.h"

struct ld {
	yaml_document_t doc;
	const char *file;
	struct pol_policy *pol;
	struct pol_diag *diag; /* first error */
	struct pol_load_opts *opts;
	unsigned nerr;
	int first_err;
	char path[256];
	size_t plen;
	const char *key;
	/* declarations */
	const char **pr_names, **pr_ids;
	size_t npr;
	const char **role_names;
	struct pol_pattern **role_pats;
	size_t *role_npats;
	uint64_t (*role_masks)[POL_ACTION_WORDS];
	size_t nroles;
	bool shadow_default;
};

struct psave {
	size_t plen;
	const char *key;
};

/* ---- diagnostics and path ------------------------------------------------------------- */

static struct psave
path_push(struct ld *ld, const char *key, long idx)
{
	struct psave s = {ld->plen, ld->key};
	int n;

	if (idx >= 0) {
		n = snprintf(ld->path + ld->plen, sizeof(ld->path) - ld->plen, "[%ld]", idx);
	} else {
		n = snprintf(ld->path + ld->plen, sizeof(ld->path) - ld->plen, "%s%s",
		             ld->plen > 0 ? "." : "", key);
		ld->key = key;
	}
	if (n > 0) {
		ld->plen += (size_t)n;
		if (ld->plen >= sizeof(ld->path)) {
			ld->plen = sizeof(ld->path) - 1;
		}
	}
	return s;
}

static void
path_pop(struct ld *ld, struct psave s)
{
	ld->plen = s.plen;
	ld->path[ld->plen] = '\0';
	ld->key = s.key;
}

static int __attribute__((format(printf, 4, 5)))
ld_err(struct ld *ld, const yaml_node_t *n, int code, const char *fmt, ...)
{
	struct pol_diag d;
	char msg[320];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pol_diag_set(
	        &d, code, POL_SEV_ERROR, ld->file, n != NULL ? (unsigned)n->start_mark.line + 1 : 0,
	        n != NULL ? (unsigned)n->start_mark.column + 1 : 0, ld->key, ld->path, "%s", msg);
	if (ld->nerr == 0) {
		ld->first_err = code;
		if (ld->diag != NULL) {
			*ld->diag = d;
		}
	}
	ld->nerr++;
	if (ld->opts != NULL && ld->opts->fn != NULL) {
		ld->opts->fn(&d, ld->opts->arg);
	}
	return code;
}

/* ---- node access ---------------------------------------------------------------------- */

static yaml_node_t *
node(struct ld *ld, int idx)
{
	return yaml_document_get_node(&ld->doc, idx);
}

static int
get_str(struct ld *ld, yaml_node_t *n, const char **out)
{
	*out = NULL;
	if (n == NULL || n->type != YAML_SCALAR_NODE) {
		return ld_err(ld, n, POL_ERR_SYNTAX, "expected a string");
	}
	if (n->data.scalar.length > POL_MAX_STRING) {
		return ld_err(ld, n, POL_ERR_TOO_LARGE, "string longer than %u bytes",
		              POL_MAX_STRING);
	}
	if (strlen((const char *)n->data.scalar.value) != n->data.scalar.length) {
		return ld_err(ld, n, POL_ERR_VALUE, "string contains a NUL byte");
	}
	*out = (const char *)n->data.scalar.value;
	return 0;
}

static int
get_nonempty(struct ld *ld, yaml_node_t *n, const char **out)
{
	int r;

	if ((r = get_str(ld, n, out)) != 0) {
		return r;
	}
	if (**out == '\0') {
		return ld_err(ld, n, POL_ERR_VALUE, "empty string");
	}
	return 0;
}

static int
dup_str(struct ld *ld, const char *s, const char **out)
{
	*out = pol_arena_strndup(&ld->pol->arena, s, strlen(s));
	return *out == NULL ? POL_ERR_NOMEM : 0;
}

/* A string or a sequence of strings → array of scalar nodes (in the arena). */
static int
get_list(struct ld *ld, yaml_node_t *n, yaml_node_t ***out, size_t *count)
{
	yaml_node_item_t *it;
	size_t i, c;

	*out = NULL;
	*count = 0;
	if (n == NULL) {
		return ld_err(ld, n, POL_ERR_SYNTAX, "expected a string or a list of strings");
	}
	if (n->type == YAML_SCALAR_NODE) {
		*out = pol_arena_alloc(&ld->pol->arena, sizeof(**out));
		if (*out == NULL) {
			return POL_ERR_NOMEM;
		}
		(*out)[0] = n;
		*count = 1;
		return 0;
	}
	if (n->type != YAML_SEQUENCE_NODE) {
		return ld_err(ld, n, POL_ERR_SYNTAX, "expected a string or a list of strings");
	}
	c = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
	if (c == 0) {
		return ld_err(ld, n, POL_ERR_VALUE, "empty list");
	}
	if (c > POL_MAX_LIST) {
		return ld_err(ld, n, POL_ERR_TOO_LARGE, "list longer than %u entries",
		              POL_MAX_LIST);
	}
	*out = pol_arena_alloc(&ld->pol->arena, c * sizeof(**out));
	if (*out == NULL) {
		return POL_ERR_NOMEM;
	}
	for (i = 0, it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++, i++) {
		(*out)[i] = node(ld, *it);
		if ((*out)[i] == NULL || (*out)[i]->type != YAML_SCALAR_NODE) {
			struct psave s = path_push(ld, NULL, (long)i);
			int r = ld_err(ld, (*out)[i], POL_ERR_SYNTAX, "expected a string");

			path_pop(ld, s);
			return r;
		}
	}
	*count = c;
	return 0;
}

static size_t
map_len(const yaml_node_t *n)
{
	return (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
}

/*
 * Checks that n is a mapping whose keys are all in `names` (NULL-terminated), each at most
 * once; found[i] / keyn[i] get the value / key node of names[i] (NULL when absent).
 */
static int
map_fields(struct ld *ld, yaml_node_t *n, const char *const *names, yaml_node_t **found,
           yaml_node_t **keyn)
{
	yaml_node_pair_t *pr;
	size_t i, nn = 0;
	const char *k;
	int r;

	while (names[nn] != NULL) {
		found[nn] = NULL;
		keyn[nn] = NULL;
		nn++;
	}
	if (n == NULL || n->type != YAML_MAPPING_NODE) {
		return ld_err(ld, n, POL_ERR_SYNTAX, "expected a mapping");
	}
	for (pr = n->data.mapping.pairs.start; pr < n->data.mapping.pairs.top; pr++) {
		yaml_node_t *kn = node(ld, pr->key);

		if ((r = get_str(ld, kn, &k)) != 0) {
			return r;
		}
		for (i = 0; i < nn; i++) {
			if (strcmp(names[i], k) == 0) {
				break;
			}
		}
		if (i == nn) {
			struct psave s = path_push(ld, k, -1);

			r = ld_err(ld, kn, POL_ERR_SYNTAX, "unknown key '%s'", k);
			path_pop(ld, s);
			return r;
		}
		if (found[i] != NULL) {
			struct psave s = path_push(ld, k, -1);

			r = ld_err(ld, kn, POL_ERR_DUPLICATE,
			           "duplicate key '%s' (first at line %lu)", k,
			           (unsigned long)keyn[i]->start_mark.line + 1);
			path_pop(ld, s);
			return r;
		}
		found[i] = node(ld, pr->value);
		keyn[i] = kn;
		if (found[i] == NULL) {
			return ld_err(ld, kn, POL_ERR_SYNTAX, "missing value");
		}
	}
	return 0;
}

/* Checks a mapping with free-form keys for duplicates; keys must be strings. */
static int
map_check_keys(struct ld *ld, yaml_node_t *n)
{
	yaml_node_pair_t *a, *b;
	const char *ka, *kb;
	int r;

	if (n == NULL || n->type != YAML_MAPPING_NODE) {
		return ld_err(ld, n, POL_ERR_SYNTAX, "expected a mapping");
	}
	if (map_len(n) > POL_MAX_LIST) {
		return ld_err(ld, n, POL_ERR_TOO_LARGE, "mapping larger than %u entries",
		              POL_MAX_LIST);
	}
	for (a = n->data.mapping.pairs.start; a < n->data.mapping.pairs.top; a++) {
		if ((r = get_nonempty(ld, node(ld, a->key), &ka)) != 0) {
			return r;
		}
		for (b = n->data.mapping.pairs.start; b < a; b++) {
			kb = (const char *)node(ld, b->key)->data.scalar.value;
			if (strcmp(ka, kb) == 0) {
				struct psave s = path_push(ld, ka, -1);

				r = ld_err(ld, node(ld, a->key), POL_ERR_DUPLICATE,
				           "duplicate key '%s' (first at line %lu)", ka,
				           (unsigned long)node(ld, b->key)->start_mark.line + 1);
				path_pop(ld, s);
				return r;
			}
		}
	}
	return 0;
}

/* Aliases and cycles: a node reachable twice is an alias. Iterative, bounded. */
static int
check_tree(struct ld *ld)
{
	size_t nn = (size_t)(ld->doc.nodes.top - ld->doc.nodes.start), sp = 0;
	uint8_t *seen = NULL;
	int *stack = NULL, r = 0;
	yaml_node_t *n;

	seen = calloc(nn + 1, 1);
	stack = calloc(nn + 1, sizeof(*stack));
	if (seen == NULL || stack == NULL) {
		r = POL_ERR_NOMEM;
		goto out;
	}
	stack[sp++] = 1; /* the root */
	while (sp > 0) {
		int idx = stack[--sp];

		n = node(ld, idx);
		if (n == NULL) {
			continue;
		}
		if (seen[idx]) {
			r = ld_err(ld, n, POL_ERR_SYNTAX, "YAML aliases are not allowed");
			goto out;
		}
		seen[idx] = 1;
		if (n->type == YAML_SEQUENCE_NODE) {
			yaml_node_item_t *it;

			for (it = n->data.sequence.items.start; it < n->data.sequence.items.top;
			     it++) {
				if (sp > nn) {
					r = ld_err(ld, n, POL_ERR_SYNTAX,
					           "YAML aliases are not allowed");
					goto out;
				}
				stack[sp++] = *it;
			}
		} else if (n->type == YAML_MAPPING_NODE) {
			yaml_node_pair_t *pr;

			for (pr = n->data.mapping.pairs.start; pr < n->data.mapping.pairs.top;
			     pr++) {
				if (sp + 1 > nn) {
					r = ld_err(ld, n, POL_ERR_SYNTAX,
					           "YAML aliases are not allowed");
					goto out;
				}
				stack[sp++] = pr->key;
				stack[sp++] = pr->value;
			}
		}
	}
out:
	free(seen);
	free(stack);
	return r;
}

/* ---- actions and roles ---------------------------------------------------------------- */

/* Compiles one action pattern and ORs the actions it names into mask. */
static int
action_pattern(struct ld *ld, yaml_node_t *n, const char *text, struct pol_pattern *pat,
               uint64_t mask[POL_ACTION_WORDS])
{
	const char *why;
	size_t i;
	bool any = false;
	int r;

	for (i = 0; text[i] != '\0'; i++) {
		char c = text[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '*' || c == '?' || c == '_' || c == '-')) {
			return ld_err(ld, n, POL_ERR_ACTION, "invalid character in action '%s'",
			              text);
		}
	}
	if ((r = pol_pattern_compile(&ld->pol->arena, text, POL_PAT_GLOB, false, pat, &why)) != 0) {
		return r == POL_ERR_NOMEM ? r : ld_err(ld, n, r, "action '%s': %s", text, why);
	}
	for (i = 0; i < pol_action_count(); i++) {
		const char *name = pol_action_name(i);

		if (pol_prog_match(pat->prog, pat->len, name, strlen(name), true)) {
			mask[i / 64] |= (uint64_t)1 << (i % 64);
			any = true;
		}
	}
	if (!any) {
		return ld_err(ld, n, POL_ERR_ACTION, "unknown action '%s'", text);
	}
	return 0;
}

static int
find_role(struct ld *ld, const char *name)
{
	size_t i;

	for (i = 0; i < ld->nroles; i++) {
		if (strcmp(ld->role_names[i], name) == 0) {
			return (int)i;
		}
	}
	return -1;
}

/* Compiles an actions list (patterns and role:<Name>) into pattern array + mask. */
static int
action_list(struct ld *ld, yaml_node_t *n, bool allow_file_roles, struct pol_pattern **pats,
            size_t *npats, uint64_t mask[POL_ACTION_WORDS])
{
	yaml_node_t **items;
	size_t count, i, j, cap, np = 0;
	struct pol_pattern *out;
	const char *s;
	int r;

	*pats = NULL;
	*npats = 0;
	if ((r = get_list(ld, n, &items, &count)) != 0) {
		return r;
	}
	/* Upper bound: a role expands to at most its builtin list; count them first. */
	cap = 0;
	for (i = 0; i < count; i++) {
		if ((r = get_nonempty(ld, items[i], &s)) != 0) {
			return r;
		}
		if (strncmp(s, "role:", 5) == 0) {
			const char *const *b = pol_vocab_role(s + 5);
			int fi = allow_file_roles ? find_role(ld, s + 5) : -1;

			if (fi >= 0) {
				cap += ld->role_npats[fi];
			} else if (b != NULL) {
				while (*b++ != NULL) {
					cap++;
				}
			} else {
				struct psave ps = path_push(ld, NULL, (long)i);

				r = ld_err(ld, items[i], POL_ERR_REFERENCE, "unknown role '%s'",
				           s + 5);
				path_pop(ld, ps);
				return r;
			}
		} else {
			cap++;
		}
	}
	out = pol_arena_alloc(&ld->pol->arena, cap * sizeof(*out));
	if (out == NULL) {
		return POL_ERR_NOMEM;
	}
	for (i = 0; i < count; i++) {
		struct psave ps = path_push(ld, NULL, (long)i);

		s = (const char *)items[i]->data.scalar.value;
		if (strncmp(s, "role:", 5) == 0) {
			const char *const *b = pol_vocab_role(s + 5);
			int fi = allow_file_roles ? find_role(ld, s + 5) : -1;

			if (fi >= 0) {
				for (j = 0; j < ld->role_npats[fi]; j++) {
					out[np++] = ld->role_pats[fi][j];
				}
				for (j = 0; j < POL_ACTION_WORDS; j++) {
					mask[j] |= ld->role_masks[fi][j];
				}
			} else {
				for (; *b != NULL; b++) {
					if ((r = action_pattern(ld, items[i], *b, &out[np++],
					                        mask)) != 0) {
						path_pop(ld, ps);
						return r;
					}
				}
			}
		} else if ((r = action_pattern(ld, items[i], s, &out[np++], mask)) != 0) {
			path_pop(ld, ps);
			return r;
		}
		path_pop(ld, ps);
	}
	*pats = out;
	*npats = np;
	return 0;
}

static int
load_roles(struct ld *ld, yaml_node_t *n)
{
	yaml_node_pair_t *pr;
	size_t i = 0, c;
	int r;

	if ((r = map_check_keys(ld, n)) != 0) {
		return r;
	}
	c = map_len(n);
	ld->role_names = calloc(c + 1, sizeof(*ld->role_names));
	ld->role_pats = calloc(c + 1, sizeof(*ld->role_pats));
	ld->role_npats = calloc(c + 1, sizeof(*ld->role_npats));
	ld->role_masks = calloc(c + 1, sizeof(*ld->role_masks));
	if (ld->role_names == NULL || ld->role_pats == NULL || ld->role_npats == NULL ||
	    ld->role_masks == NULL) {
		return POL_ERR_NOMEM;
	}
	for (pr = n->data.mapping.pairs.start; pr < n->data.mapping.pairs.top; pr++, i++) {
		yaml_node_t *kn = node(ld, pr->key);
		const char *name = (const char *)kn->data.scalar.value;
		struct psave ps = path_push(ld, name, -1);

		if (pol_vocab_role(name) != NULL) {
			r = ld_err(ld, kn, POL_ERR_DUPLICATE, "role '%s' is a builtin role", name);
		} else {
			/* Custom roles may use builtin roles, not each other: no cycles. */
			r = action_list(ld, node(ld, pr->value), false, &ld->role_pats[i],
			                &ld->role_npats[i], ld->role_masks[i]);
		}
		path_pop(ld, ps);
		if (r != 0) {
			return r;
		}
		if ((r = dup_str(ld, name, &ld->role_names[i])) != 0) {
			return r;
		}
		ld->nroles = i + 1;
	}
	return 0;
}

/* ---- principals and groups ------------------------------------------------------------ */

static int
find_group(struct ld *ld, const char *name)
{
	size_t i;

	for (i = 0; i < ld->pol->ngroups; i++) {
		if (strcmp(ld->pol->groups[i].name, name) == 0) {
			return (int)i;
		}
	}
	return -1;
}

static int
principal_pattern(struct ld *ld, yaml_node_t *n, const char *s, struct pol_pattern *pat)
{
	const char *why;
	int r;

	/* "principal:<name>" names a declaration of this file. */
	if (strncmp(s, "principal:", 10) == 0) {
		size_t i;

		for (i = 0; i < ld->npr; i++) {
			if (strcmp(ld->pr_names[i], s + 10) == 0) {
				s = ld->pr_ids[i];
				break;
			}
		}
		if (i == ld->npr) {
			return ld_err(ld, n, POL_ERR_REFERENCE, "undeclared principal '%s'",
			              s + 10);
		}
	}
	if (strncmp(s, "tenant/", 7) != 0) {
		return ld_err(ld, n, POL_ERR_VALUE,
		              "principal '%s' is not '*', group:<name>, principal:<name> or "
		              "tenant/<tenant>/(user|service)/<name>",
		              s);
	}
	if ((r = pol_pattern_compile(&ld->pol->arena, s, POL_PAT_GLOB, false, pat, &why)) != 0) {
		return r == POL_ERR_NOMEM ? r : ld_err(ld, n, r, "principal '%s': %s", s, why);
	}
	return 0;
}

static int
principal_list(struct ld *ld, yaml_node_t *n, bool groups_ok, struct pol_princ **out, size_t *count)
{
	yaml_node_t **items;
	size_t c, i;
	struct pol_princ *p;
	const char *s;
	int r;

	*out = NULL;
	*count = 0;
	if ((r = get_list(ld, n, &items, &c)) != 0) {
		return r;
	}
	p = pol_arena_alloc(&ld->pol->arena, c * sizeof(*p));
	if (p == NULL) {
		return POL_ERR_NOMEM;
	}
	memset(p, 0, c * sizeof(*p));
	for (i = 0; i < c; i++) {
		struct psave ps = path_push(ld, NULL, (long)i);

		r = get_nonempty(ld, items[i], &s);
		if (r == 0 && strcmp(s, "*") == 0 && groups_ok) {
			p[i].kind = POL_PR_ANY;
		} else if (r == 0 && strncmp(s, "group:", 6) == 0 && groups_ok) {
			p[i].kind = POL_PR_GROUP;
			p[i].gidx = find_group(ld, s + 6);
			if (p[i].gidx < 0) {
				r = ld_err(ld, items[i], POL_ERR_REFERENCE,
				           "undeclared group '%s' (declare it under groups:)",
				           s + 6);
			} else {
				p[i].group = ld->pol->groups[p[i].gidx].name;
			}
		} else if (r == 0) {
			p[i].kind = POL_PR_PATTERN;
			p[i].gidx = -1;
			r = principal_pattern(ld, items[i], s, &p[i].pat);
		}
		path_pop(ld, ps);
		if (r != 0) {
			return r;
		}
	}
	*out = p;
	*count = c;
	return 0;
}

static int
load_principals(struct ld *ld, yaml_node_t *n)
{
	yaml_node_pair_t *pr;
	size_t i = 0, c;
	const char *id;
	int r;

	if ((r = map_check_keys(ld, n)) != 0) {
		return r;
	}
	c = map_len(n);
	ld->pr_names = calloc(c + 1, sizeof(*ld->pr_names));
	ld->pr_ids = calloc(c + 1, sizeof(*ld->pr_ids));
	if (ld->pr_names == NULL || ld->pr_ids == NULL) {
		return POL_ERR_NOMEM;
	}
	for (pr = n->data.mapping.pairs.start; pr < n->data.mapping.pairs.top; pr++, i++) {
		yaml_node_t *kn = node(ld, pr->key), *vn = node(ld, pr->value);
		const char *name = (const char *)kn->data.scalar.value;
		struct psave ps = path_push(ld, name, -1);

		r = get_nonempty(ld, vn, &id);
		if (r == 0 && strncmp(id, "tenant/", 7) != 0) {
			r = ld_err(ld, vn, POL_ERR_VALUE,
			           "principal id '%s' is not tenant/<tenant>/(user|service)/<name>",
			           id);
		}
		path_pop(ld, ps);
		if (r != 0) {
			return r;
		}
		if ((r = dup_str(ld, name, &ld->pr_names[i])) != 0 ||
		    (r = dup_str(ld, id, &ld->pr_ids[i])) != 0) {
			return r;
		}
		ld->npr = i + 1;
	}
	return 0;
}

static int cond_block(struct ld *ld, yaml_node_t *n, bool only_string_equals, struct pol_cond **out,
                      size_t *count);

static int
load_groups(struct ld *ld, yaml_node_t *n)
{
	static const char *const fields[] = {"members", "match", "description", NULL};
	yaml_node_t *f[3], *k[3];
	yaml_node_pair_t *pr;
	size_t c, i = 0;
	int r;

	if ((r = map_check_keys(ld, n)) != 0) {
		return r;
	}
	c = map_len(n);
	if (c > POL_MAX_GROUPS) {
		return ld_err(ld, n, POL_ERR_TOO_LARGE, "more than %u groups", POL_MAX_GROUPS);
	}
	ld->pol->groups = pol_arena_alloc(&ld->pol->arena, (c + 1) * sizeof(*ld->pol->groups));
	if (ld->pol->groups == NULL) {
		return POL_ERR_NOMEM;
	}
	memset(ld->pol->groups, 0, (c + 1) * sizeof(*ld->pol->groups));
	for (pr = n->data.mapping.pairs.start; pr < n->data.mapping.pairs.top; pr++, i++) {
		yaml_node_t *kn = node(ld, pr->key), *vn = node(ld, pr->value);
		const char *name = (const char *)kn->data.scalar.value;
		struct pol_group *g = &ld->pol->groups[i];
		struct psave ps = path_push(ld, name, -1);

		g->line = (unsigned)kn->start_mark.line + 1;
		r = dup_str(ld, name, &g->name);
		/* "name: {}" or "name:" (null) declares a group whose membership comes only
		 * from the request (config or certificate). */
		if (r == 0 && !(vn->type == YAML_SCALAR_NODE && vn->data.scalar.length == 0)) {
			r = map_fields(ld, vn, fields, f, k);
			if (r == 0 && f[0] != NULL) {
				struct psave p2 = path_push(ld, "members", -1);

				r = principal_list(ld, f[0], false, &g->members, &g->nmembers);
				path_pop(ld, p2);
			}
			if (r == 0 && f[1] != NULL) {
				struct psave p2 = path_push(ld, "match", -1);

				r = cond_block(ld, f[1], true, &g->match, &g->nmatch);
				path_pop(ld, p2);
			}
		}
		path_pop(ld, ps);
		if (r != 0) {
			return r;
		}
		ld->pol->ngroups = i + 1;
	}
	return 0;
}

/* ---- conditions ----------------------------------------------------------------------- */

static int
cond_values(struct ld *ld, yaml_node_t *n, struct pol_cond *c)
{
	yaml_node_t **items;
	size_t count, i;
	const char *s, *why = NULL;
	int r = 0;

	if ((r = get_list(ld, n, &items, &count)) != 0) {
		return r;
	}
	c->vals = pol_arena_alloc(&ld->pol->arena, count * sizeof(*c->vals));
	if (c->vals == NULL) {
		return POL_ERR_NOMEM;
	}
	memset(c->vals, 0, count * sizeof(*c->vals));
	c->nvals = count;
	for (i = 0; i < count; i++) {
		struct pol_cval *v = &c->vals[i];
		struct psave ps = {ld->plen, ld->key};

		if (n->type == YAML_SEQUENCE_NODE) {
			ps = path_push(ld, NULL, (long)i);
		}
		r = get_str(ld, items[i], &s);
		if (r != 0) {
			path_pop(ld, ps);
			return r;
		}
		switch (c->op) {
		case POL_OP_STR_EQ:
		case POL_OP_STR_EQ_IC:
			r = pol_pattern_compile(&ld->pol->arena, s, POL_PAT_LITERAL, true, &v->pat,
			                        &why);
			break;
		case POL_OP_STR_LIKE:
			r = pol_pattern_compile(&ld->pol->arena, s, POL_PAT_GLOB, true, &v->pat,
			                        &why);
			break;
		case POL_OP_CRN:
			r = pol_pattern_compile(&ld->pol->arena, s, POL_PAT_CRN, true, &v->pat,
			                        &why);
			break;
		case POL_OP_BINARY:
			if (pol_base64_valid(s) != 0) {
				r = POL_ERR_VALUE;
				why = "not base64";
			} else {
				r = pol_pattern_compile(&ld->pol->arena, s, POL_PAT_LITERAL, false,
				                        &v->pat, &why);
			}
			break;
		case POL_OP_NUM_EQ:
		case POL_OP_NUM_LT:
		case POL_OP_NUM_LE:
		case POL_OP_NUM_GT:
		case POL_OP_NUM_GE:
			r = pol_parse_number(s, &v->num);
			why = "not a number";
			break;
		case POL_OP_DATE_EQ:
		case POL_OP_DATE_LT:
		case POL_OP_DATE_LE:
		case POL_OP_DATE_GT:
		case POL_OP_DATE_GE:
			/* AWS: policy variables are not allowed with Date operators. */
			r = pol_parse_date(s, &v->date);
			why = strstr(s, "${") != NULL
			              ? "policy variables are not allowed with Date "
			                "operators"
			              : "not a date (RFC 3339 or epoch seconds)";
			break;
		case POL_OP_BOOL:
		case POL_OP_NULL:
			r = pol_parse_bool(s, &v->b);
			why = "not a boolean (true or false)";
			break;
		case POL_OP_IP:
			r = pol_parse_cidr(s, &v->cidr);
			why = "not an IP address or CIDR block";
			break;
		default:
			r = POL_ERR_OPERATOR;
			why = "unsupported operator";
			break;
		}
		if (r != 0 && r != POL_ERR_NOMEM) {
			r = ld_err(ld, items[i], r, "%s value '%s': %s", c->opname, s,
			           why != NULL ? why : "invalid");
		}
		path_pop(ld, ps);
		if (r != 0) {
			return r;
		}
	}
	return 0;
}

/*
 * A condition block: operator → key → value(s). With only_string_equals (group match:),
 * the block is key → value(s) compared with StringEquals.
 */
static int
cond_block(struct ld *ld, yaml_node_t *n, bool only_string_equals, struct pol_cond **out,
           size_t *count)
{
	yaml_node_pair_t *op, *kp;
	size_t total = 0, ci = 0;
	struct pol_cond *conds;
	enum pol_ktype kt;
	int r;

	*out = NULL;
	*count = 0;
	if ((r = map_check_keys(ld, n)) != 0) {
		return r;
	}
	if (only_string_equals) {
		total = map_len(n);
	} else {
		for (op = n->data.mapping.pairs.start; op < n->data.mapping.pairs.top; op++) {
			yaml_node_t *kn = node(ld, op->key), *vn = node(ld, op->value);
			struct psave ps = path_push(ld, (const char *)kn->data.scalar.value, -1);

			r = map_check_keys(ld, vn);
			path_pop(ld, ps);
			if (r != 0) {
				return r;
			}
			total += map_len(vn);
		}
	}
	if (total == 0) {
		return ld_err(ld, n, POL_ERR_VALUE, "empty condition block");
	}
	conds = pol_arena_alloc(&ld->pol->arena, total * sizeof(*conds));
	if (conds == NULL) {
		return POL_ERR_NOMEM;
	}
	memset(conds, 0, total * sizeof(*conds));
	for (op = n->data.mapping.pairs.start; op < n->data.mapping.pairs.top; op++) {
		yaml_node_t *okn = node(ld, op->key), *ovn = node(ld, op->value);
		const char *opname =
		        only_string_equals ? "StringEquals" : (const char *)okn->data.scalar.value;
		enum pol_op o;
		enum pol_qual q;
		bool neg, ife;
		struct psave ps = {0, NULL};
		yaml_node_pair_t *start, *end;

		if (!only_string_equals) {
			ps = path_push(ld, opname, -1);
			if (pol_op_parse(opname, &o, &q, &neg, &ife) != 0) {
				r = ld_err(ld, okn, POL_ERR_OPERATOR,
				           "unknown condition operator '%s'", opname);
				path_pop(ld, ps);
				return r;
			}
			start = ovn->data.mapping.pairs.start;
			end = ovn->data.mapping.pairs.top;
		} else {
			o = POL_OP_STR_EQ;
			q = POL_Q_NONE;
			neg = ife = false;
			start = op;
			end = op + 1;
		}
		for (kp = start; kp < end; kp++) {
			yaml_node_t *kn = node(ld, kp->key);
			const char *key = (const char *)kn->data.scalar.value;
			struct pol_cond *c = &conds[ci++];
			struct psave p2 = path_push(ld, key, -1);

			c->op = o;
			c->qual = q;
			c->negated = neg;
			c->ifexists = ife;
			c->line = (unsigned)kn->start_mark.line + 1;
			c->column = (unsigned)kn->start_mark.column + 1;
			if (pol_vocab_key_type(key, &kt) != 0) {
				r = ld_err(ld, kn, POL_ERR_KEY, "unknown condition key '%s'", key);
			} else if ((r = dup_str(ld, opname, &c->opname)) == 0 &&
			           (r = dup_str(ld, key, &c->key)) == 0) {
				r = cond_values(ld, node(ld, kp->value), c);
			}
			path_pop(ld, p2);
			if (r != 0) {
				if (!only_string_equals) {
					path_pop(ld, ps);
				}
				return r;
			}
		}
		if (!only_string_equals) {
			path_pop(ld, ps);
		}
	}
	*out = conds;
	*count = ci;
	return 0;
}

/* ---- statements ----------------------------------------------------------------------- */

static int
resource_list(struct ld *ld, yaml_node_t *n, struct pol_pattern **out, size_t *count)
{
	yaml_node_t **items;
	size_t c, i;
	struct pol_pattern *p;
	const char *s, *why;
	int r;

	if ((r = get_list(ld, n, &items, &c)) != 0) {
		return r;
	}
	p = pol_arena_alloc(&ld->pol->arena, c * sizeof(*p));
	if (p == NULL) {
		return POL_ERR_NOMEM;
	}
	for (i = 0; i < c; i++) {
		struct psave ps = path_push(ld, NULL, (long)i);

		r = get_nonempty(ld, items[i], &s);
		if (r == 0 && strcmp(s, "*") != 0 && strncmp(s, "crn:hsmgate:", 12) != 0) {
			/* No wildcard in the service segment (reference table (a) row 6). */
			r = ld_err(ld, items[i], POL_ERR_VALUE,
			           "resource '%s' must be '*' or start with 'crn:hsmgate:'", s);
		}
		if (r == 0 &&
		    (r = pol_pattern_compile(&ld->pol->arena, s, POL_PAT_CRN, true, &p[i], &why)) !=
		            0 &&
		    r != POL_ERR_NOMEM) {
			r = ld_err(ld, items[i], r, "resource '%s': %s", s, why);
		}
		path_pop(ld, ps);
		if (r != 0) {
			return r;
		}
	}
	*out = p;
	*count = c;
	return 0;
}

static bool
sid_valid(const char *s)
{
	for (; *s != '\0'; s++) {
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '_' || *s == '-' || *s == '.')) {
			return false;
		}
	}
	return true;
}

enum {
	F_SID,
	F_EFFECT,
	F_MODE,
	F_DESC,
	F_PR,
	F_NPR,
	F_AC,
	F_NAC,
	F_RES,
	F_NRES,
	F_COND,
	F_NFIELDS
};

static int
either(struct ld *ld, yaml_node_t *stmt, yaml_node_t **f, yaml_node_t **k, int a, int b,
       const char *an, const char *bn)
{
	if (f[a] != NULL && f[b] != NULL) {
		struct psave ps = path_push(ld, bn, -1);
		int r = ld_err(ld, k[b], POL_ERR_SYNTAX, "'%s' and '%s' are mutually exclusive", an,
		               bn);

		path_pop(ld, ps);
		return r;
	}
	if (f[a] == NULL && f[b] == NULL) {
		return ld_err(ld, stmt, POL_ERR_MISSING, "statement needs '%s' or '%s'", an, bn);
	}
	return 0;
}

static int
load_statement(struct ld *ld, yaml_node_t *n, struct pol_stmt *st)
{
	static const char *const fields[] = {"sid",           "effect",      "mode",
	                                     "description",   "principals",  "not_principals",
	                                     "actions",       "not_actions", "resources",
	                                     "not_resources", "conditions",  NULL};
	yaml_node_t *f[F_NFIELDS], *k[F_NFIELDS];
	const char *s;
	struct psave ps;
	size_t i;
	int r;

	memset(st, 0, sizeof(*st));
	if ((r = map_fields(ld, n, fields, f, k)) != 0) {
		return r;
	}
	st->line = (unsigned)n->start_mark.line + 1;
	st->column = (unsigned)n->start_mark.column + 1;
	st->shadow = ld->shadow_default;
	if (f[F_SID] == NULL) {
		return ld_err(ld, n, POL_ERR_MISSING, "statement needs a 'sid'");
	}
	ps = path_push(ld, "sid", -1);
	r = get_nonempty(ld, f[F_SID], &s);
	if (r == 0 && !sid_valid(s)) {
		r = ld_err(ld, f[F_SID], POL_ERR_VALUE, "sid '%s' may only use A-Z a-z 0-9 _ - .",
		           s);
	}
	for (i = 0; r == 0 && i < ld->pol->nstmts; i++) {
		if (ld->pol->stmts[i].sid != NULL && strcmp(ld->pol->stmts[i].sid, s) == 0) {
			r = ld_err(ld, f[F_SID], POL_ERR_DUPLICATE,
			           "duplicate sid '%s' (first at line %u)", s,
			           ld->pol->stmts[i].line);
		}
	}
	path_pop(ld, ps);
	if (r != 0 || (r = dup_str(ld, s, &st->sid)) != 0) {
		return r;
	}
	if (f[F_EFFECT] == NULL) {
		return ld_err(ld, n, POL_ERR_MISSING, "statement needs an 'effect'");
	}
	ps = path_push(ld, "effect", -1);
	r = get_str(ld, f[F_EFFECT], &s);
	if (r == 0 && strcmp(s, "allow") == 0) {
		st->effect = POL_ALLOW;
	} else if (r == 0 && strcmp(s, "deny") == 0) {
		st->effect = POL_DENY;
	} else if (r == 0) {
		r = ld_err(ld, f[F_EFFECT], POL_ERR_VALUE, "effect must be allow or deny, not '%s'",
		           s);
	}
	path_pop(ld, ps);
	if (r != 0) {
		return r;
	}
	if (f[F_MODE] != NULL) {
		ps = path_push(ld, "mode", -1);
		r = get_str(ld, f[F_MODE], &s);
		if (r == 0 && strcmp(s, "shadow") == 0) {
			st->shadow = true;
		} else if (r == 0 && strcmp(s, "enforce") == 0) {
			st->shadow = false;
		} else if (r == 0) {
			r = ld_err(ld, f[F_MODE], POL_ERR_VALUE,
			           "mode must be enforce or shadow, not '%s'", s);
		}
		path_pop(ld, ps);
		if (r != 0) {
			return r;
		}
	}
	if (f[F_DESC] != NULL) {
		ps = path_push(ld, "description", -1);
		r = get_str(ld, f[F_DESC], &s);
		path_pop(ld, ps);
		if (r != 0) {
			return r;
		}
	}
	/* Exactly one of each pair (reference table (a) row 4). */
	if ((r = either(ld, n, f, k, F_PR, F_NPR, "principals", "not_principals")) != 0 ||
	    (r = either(ld, n, f, k, F_AC, F_NAC, "actions", "not_actions")) != 0 ||
	    (r = either(ld, n, f, k, F_RES, F_NRES, "resources", "not_resources")) != 0) {
		return r;
	}
	st->not_principals = f[F_NPR] != NULL;
	ps = path_push(ld, st->not_principals ? "not_principals" : "principals", -1);
	r = principal_list(ld, f[st->not_principals ? F_NPR : F_PR], true, &st->princ, &st->nprinc);
	path_pop(ld, ps);
	if (r != 0) {
		return r;
	}
	st->not_actions = f[F_NAC] != NULL;
	ps = path_push(ld, st->not_actions ? "not_actions" : "actions", -1);
	r = action_list(ld, f[st->not_actions ? F_NAC : F_AC], true, &st->apat, &st->napat,
	                st->amask);
	path_pop(ld, ps);
	if (r != 0) {
		return r;
	}
	st->not_resources = f[F_NRES] != NULL;
	ps = path_push(ld, st->not_resources ? "not_resources" : "resources", -1);
	r = resource_list(ld, f[st->not_resources ? F_NRES : F_RES], &st->res, &st->nres);
	path_pop(ld, ps);
	if (r != 0) {
		return r;
	}
	if (f[F_COND] != NULL) {
		st->has_conds_block = true;
		ps = path_push(ld, "conditions", -1);
		r = cond_block(ld, f[F_COND], false, &st->conds, &st->nconds);
		path_pop(ld, ps);
	}
	return r;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The tenant every resource of st names literally, or NULL (not_resources, "*",
 * wildcards or variables in the tenant segment, or several tenants). Such a statement
 * can only match resources "crn:hsmgate:<that tenant>..." because its pattern starts
 * with those literal bytes. */
static int
stmt_scope(struct ld *ld, struct pol_stmt *st)
{
	char t[POL_MAX_STRING + 1], first[POL_MAX_STRING + 1];
	size_t i;

	st->scope = NULL;
	if (st->not_resources || st->nres == 0) {
		return 0;
	}
	for (i = 0; i < st->nres; i++) {
		if (!pol_pattern_crn_tenant(&st->res[i], t, sizeof(t)) ||
		    (i > 0 && strcmp(t, first) != 0)) {
			return 0;
		}
		if (i == 0) {
			memcpy(first, t, strlen(t) + 1);
		}
	}
	st->scope = pol_arena_strndup(&ld->pol->arena, first, strlen(first));
	return st->scope == NULL ? POL_ERR_NOMEM : 0;
}

static int
build_index(struct ld *ld)
{
	struct pol_policy *pol = ld->pol;
	size_t a, i, b, n, nb, nt = 0;
	const char **ts;
	int r;

	ts = pol_arena_alloc(&pol->arena, (pol->nstmts + 1) * sizeof(*ts));
	if (ts == NULL) {
		return POL_ERR_NOMEM;
	}
	for (i = 0; i < pol->nstmts; i++) {
		if ((r = stmt_scope(ld, &pol->stmts[i])) != 0) {
			return r;
		}
		if (pol->stmts[i].scope != NULL) {
			ts[nt++] = pol->stmts[i].scope;
		}
	}
	qsort(ts, nt, sizeof(*ts), cmp_str);
	for (i = 0, n = 0; i < nt; i++) {
		if (n == 0 || strcmp(ts[n - 1], ts[i]) != 0) {
			ts[n++] = ts[i];
		}
	}
	pol->tenants = ts;
	pol->ntenants = n;
	nb = (1 + n) * POL_MAX_ACTIONS;
	pol->idx = pol_arena_alloc(&pol->arena, nb * sizeof(*pol->idx));
	pol->nidx = pol_arena_alloc(&pol->arena, nb * sizeof(*pol->nidx));
	if (pol->idx == NULL || pol->nidx == NULL) {
		return POL_ERR_NOMEM;
	}
	memset(pol->idx, 0, nb * sizeof(*pol->idx));
	memset(pol->nidx, 0, nb * sizeof(*pol->nidx));
	for (i = 0; i < pol->nstmts; i++) {
		const struct pol_stmt *st = &pol->stmts[i];
		const char **hit;

		b = 0;
		if (st->scope != NULL) {
			hit = bsearch(&st->scope, pol->tenants, pol->ntenants,
			              sizeof(*pol->tenants), cmp_str);
			b = 1 + (size_t)(hit - pol->tenants);
		}
		st = &pol->stmts[i];
		for (a = 0; a < pol_action_count(); a++) {
			bool in = (st->amask[a / 64] >> (a % 64)) & 1;

			if (in != st->not_actions) {
				pol->nidx[b * POL_MAX_ACTIONS + a]++;
			}
		}
	}
	for (b = 0; b < nb; b++) {
		if (pol->nidx[b] > 0) {
			pol->idx[b] = pol_arena_alloc(&pol->arena, pol->nidx[b] * sizeof(uint32_t));
			if (pol->idx[b] == NULL) {
				return POL_ERR_NOMEM;
			}
			pol->nidx[b] = 0;
		}
	}
	for (i = 0; i < pol->nstmts; i++) {
		const struct pol_stmt *st = &pol->stmts[i];
		const char **hit;

		b = 0;
		if (st->scope != NULL) {
			hit = bsearch(&st->scope, pol->tenants, pol->ntenants,
			              sizeof(*pol->tenants), cmp_str);
			b = 1 + (size_t)(hit - pol->tenants);
		}
		for (a = 0; a < pol_action_count(); a++) {
			bool in = (st->amask[a / 64] >> (a % 64)) & 1;
			size_t k = b * POL_MAX_ACTIONS + a;

			if (in != st->not_actions) {
				pol->idx[k][pol->nidx[k]++] = (uint32_t)i;
			}
		}
	}
	return 0;
}

/* ---- tests: block --------------------------------------------------------------------- */

static int
parse_result(struct ld *ld, yaml_node_t *n, enum pol_result *out)
{
	const char *s;
	int r;

	if ((r = get_str(ld, n, &s)) != 0) {
		return r;
	}
	if (strcmp(s, "allowed") == 0 || strcmp(s, "allow") == 0) {
		*out = POL_ALLOWED;
	} else if (strcmp(s, "explicit_deny") == 0 || strcmp(s, "explicitDeny") == 0) {
		*out = POL_EXPLICIT_DENY;
	} else if (strcmp(s, "implicit_deny") == 0 || strcmp(s, "implicitDeny") == 0) {
		*out = POL_IMPLICIT_DENY;
	} else {
		return ld_err(ld, n, POL_ERR_VALUE,
		              "decision must be allowed, explicit_deny or implicit_deny, not '%s'",
		              s);
	}
	return 0;
}

static int
test_request(struct ld *ld, yaml_node_t *n, struct pol_request *req)
{
	static const char *const fields[] = {"principal", "groups",  "action",
	                                     "resource",  "context", NULL};
	yaml_node_t *f[5], *k[5], **items;
	yaml_node_pair_t *pr;
	size_t c, i;
	const char *s;
	enum pol_ktype kt;
	int r;

	if ((r = map_fields(ld, n, fields, f, k)) != 0) {
		return r;
	}
	for (i = 0; i < 4; i++) {
		if (f[i] == NULL && i != 1) {
			return ld_err(ld, n, POL_ERR_MISSING, "test request needs '%s'", fields[i]);
		}
	}
	if ((r = get_nonempty(ld, f[0], &s)) != 0 || (r = pol_request_set_principal(req, s)) != 0 ||
	    (r = get_nonempty(ld, f[2], &s)) != 0 || (r = pol_request_set_action(req, s)) != 0 ||
	    (r = get_nonempty(ld, f[3], &s)) != 0 || (r = pol_request_set_resource(req, s)) != 0) {
		return r == POL_ERR_TOO_LARGE ? ld_err(ld, n, r, "request field too long") : r;
	}
	if (f[1] != NULL) {
		if ((r = get_list(ld, f[1], &items, &c)) != 0) {
			return r;
		}
		for (i = 0; i < c; i++) {
			if ((r = get_nonempty(ld, items[i], &s)) != 0 ||
			    (r = pol_request_add_group(req, s)) != 0) {
				return r;
			}
		}
	}
	if (f[4] != NULL) {
		struct psave ps = path_push(ld, "context", -1);

		if ((r = map_check_keys(ld, f[4])) != 0) {
			path_pop(ld, ps);
			return r;
		}
		for (pr = f[4]->data.mapping.pairs.start; pr < f[4]->data.mapping.pairs.top; pr++) {
			yaml_node_t *kn = node(ld, pr->key);
			const char *key = (const char *)kn->data.scalar.value;
			struct psave p2 = path_push(ld, key, -1);

			if (pol_vocab_key_type(key, &kt) != 0) {
				r = ld_err(ld, kn, POL_ERR_KEY, "unknown condition key '%s'", key);
			} else if ((r = get_list(ld, node(ld, pr->value), &items, &c)) == 0) {
				for (i = 0; r == 0 && i < c; i++) {
					if ((r = get_str(ld, items[i], &s)) == 0) {
						r = pol_request_add(req, key, s);
					}
				}
			}
			path_pop(ld, p2);
			if (r != 0) {
				path_pop(ld, ps);
				return r;
			}
		}
		path_pop(ld, ps);
	}
	return 0;
}

static int
load_test(struct ld *ld, yaml_node_t *n, struct pol_test *t)
{
	static const char *const fields[] = {"name", "request", "expect", NULL};
	static const char *const efields[] = {"decision", "sids", "shadow_decision", NULL};
	yaml_node_t *f[3], *k[3], *ef[3], *ek[3], **items;
	const char *s;
	struct psave ps;
	size_t c, i;
	int r;

	t->line = (unsigned)n->start_mark.line + 1;
	if ((r = map_fields(ld, n, fields, f, k)) != 0) {
		return r;
	}
	if (f[0] == NULL || f[1] == NULL || f[2] == NULL) {
		return ld_err(ld, n, POL_ERR_MISSING,
		              "a test needs 'name', 'request' and 'expect'");
	}
	if ((r = get_nonempty(ld, f[0], &s)) != 0 || (r = dup_str(ld, s, &t->name)) != 0 ||
	    (r = pol_request_new(&t->req)) != 0) {
		return r;
	}
	ps = path_push(ld, "request", -1);
	r = test_request(ld, f[1], t->req);
	path_pop(ld, ps);
	if (r != 0) {
		return r;
	}
	ps = path_push(ld, "expect", -1);
	r = map_fields(ld, f[2], efields, ef, ek);
	if (r == 0 && ef[0] == NULL) {
		r = ld_err(ld, f[2], POL_ERR_MISSING, "expect needs 'decision'");
	}
	if (r == 0) {
		struct psave p2 = path_push(ld, "decision", -1);

		r = parse_result(ld, ef[0], &t->expect);
		path_pop(ld, p2);
	}
	if (r == 0 && ef[2] != NULL) {
		struct psave p2 = path_push(ld, "shadow_decision", -1);

		t->has_shadow = true;
		r = parse_result(ld, ef[2], &t->expect_shadow);
		path_pop(ld, p2);
	}
	if (r == 0 && ef[1] != NULL) {
		struct psave p2 = path_push(ld, "sids", -1);

		t->has_sids = true;
		/* "sids: []" expects no matched statement. */
		if (ef[1]->type == YAML_SEQUENCE_NODE &&
		    ef[1]->data.sequence.items.top == ef[1]->data.sequence.items.start) {
			c = 0;
			items = NULL;
		} else {
			r = get_list(ld, ef[1], &items, &c);
		}
		if (r == 0) {
			t->sids = pol_arena_alloc(&ld->pol->arena, (c + 1) * sizeof(*t->sids));
			r = t->sids == NULL ? POL_ERR_NOMEM : 0;
		}
		for (i = 0; r == 0 && i < c; i++) {
			if ((r = get_nonempty(ld, items[i], &s)) == 0) {
				r = dup_str(ld, s, &t->sids[i]);
			}
		}
		t->nsids = c;
		path_pop(ld, p2);
	}
	path_pop(ld, ps);
	return r;
}

/* ---- top level ------------------------------------------------------------------------ */

enum {
	T_VERSION,
	T_NAME,
	T_TENANT,
	T_DESC,
	T_MODE,
	T_PRINCIPALS,
	T_GROUPS,
	T_ROLES,
	T_STATEMENTS,
	T_TESTS,
	T_NFIELDS
};

/* Whether to go on after an error in one statement/test: only when collecting for lint,
 * and never after running out of memory. */
static bool
keep_going(struct ld *ld, int r)
{
	return ld->opts != NULL && r != POL_ERR_NOMEM;
}

static int
load_top(struct ld *ld, yaml_node_t *root)
{
	static const char *const fields[] = {"version",    "name",       "tenant", "description",
	                                     "mode",       "principals", "groups", "roles",
	                                     "statements", "tests",      NULL};
	yaml_node_t *f[T_NFIELDS], *k[T_NFIELDS];
	yaml_node_item_t *it;
	struct psave ps;
	const char *s;
	size_t c, i;
	int r;

	if ((r = map_fields(ld, root, fields, f, k)) != 0) {
		return r;
	}
	if (f[T_VERSION] != NULL) {
		ps = path_push(ld, "version", -1);
		r = get_str(ld, f[T_VERSION], &s);
		if (r == 0 && strcmp(s, "1") != 0) {
			r = ld_err(ld, f[T_VERSION], POL_ERR_VALUE,
			           "unsupported version '%s' (only 1)", s);
		}
		path_pop(ld, ps);
		if (r != 0) {
			return r;
		}
	}
	ld->pol->name = "";
	ld->pol->tenant = "";
	if (f[T_NAME] != NULL) {
		ps = path_push(ld, "name", -1);
		r = get_str(ld, f[T_NAME], &s);
		path_pop(ld, ps);
		if (r != 0 || (r = dup_str(ld, s, &ld->pol->name)) != 0) {
			return r;
		}
	}
	if (f[T_TENANT] != NULL) {
		ps = path_push(ld, "tenant", -1);
		r = get_nonempty(ld, f[T_TENANT], &s);
		if (r == 0 && (strchr(s, ':') != NULL || strchr(s, '/') != NULL)) {
			r = ld_err(ld, f[T_TENANT], POL_ERR_VALUE,
			           "tenant may not contain ':' or '/'");
		}
		path_pop(ld, ps);
		if (r != 0 || (r = dup_str(ld, s, &ld->pol->tenant)) != 0) {
			return r;
		}
	}
	if (f[T_DESC] != NULL) {
		ps = path_push(ld, "description", -1);
		r = get_str(ld, f[T_DESC], &s);
		path_pop(ld, ps);
		if (r != 0) {
			return r;
		}
	}
	if (f[T_MODE] != NULL) {
		ps = path_push(ld, "mode", -1);
		r = get_str(ld, f[T_MODE], &s);
		if (r == 0 && strcmp(s, "shadow") == 0) {
			ld->shadow_default = true;
		} else if (r == 0 && strcmp(s, "enforce") != 0) {
			r = ld_err(ld, f[T_MODE], POL_ERR_VALUE,
			           "mode must be enforce or shadow, not '%s'", s);
		}
		path_pop(ld, ps);
		if (r != 0) {
			return r;
		}
	}
	/* Declarations first: statements refer to them. */
	if (f[T_PRINCIPALS] != NULL) {
		ps = path_push(ld, "principals", -1);
		r = load_principals(ld, f[T_PRINCIPALS]);
		path_pop(ld, ps);
		if (r != 0) {
			return r;
		}
	}
	if (f[T_GROUPS] != NULL) {
		ps = path_push(ld, "groups", -1);
		r = load_groups(ld, f[T_GROUPS]);
		path_pop(ld, ps);
		if (r != 0) {
			return r;
		}
	}
	if (f[T_ROLES] != NULL) {
		ps = path_push(ld, "roles", -1);
		r = load_roles(ld, f[T_ROLES]);
		path_pop(ld, ps);
		if (r != 0) {
			return r;
		}
	}
	if (f[T_STATEMENTS] == NULL) {
		return ld_err(ld, root, POL_ERR_MISSING, "the policy needs 'statements'");
	}
	ps = path_push(ld, "statements", -1);
	if (f[T_STATEMENTS]->type != YAML_SEQUENCE_NODE) {
		r = ld_err(ld, f[T_STATEMENTS], POL_ERR_SYNTAX, "expected a list of statements");
		path_pop(ld, ps);
		return r;
	}
	c = (size_t)(f[T_STATEMENTS]->data.sequence.items.top -
	             f[T_STATEMENTS]->data.sequence.items.start);
	if (c > POL_MAX_STATEMENTS) {
		r = ld_err(ld, f[T_STATEMENTS], POL_ERR_TOO_LARGE, "more than %u statements",
		           POL_MAX_STATEMENTS);
		path_pop(ld, ps);
		return r;
	}
	ld->pol->stmts = pol_arena_alloc(&ld->pol->arena, (c + 1) * sizeof(*ld->pol->stmts));
	if (ld->pol->stmts == NULL) {
		path_pop(ld, ps);
		return POL_ERR_NOMEM;
	}
	for (i = 0, it = f[T_STATEMENTS]->data.sequence.items.start;
	     it < f[T_STATEMENTS]->data.sequence.items.top; it++, i++) {
		struct psave p2 = path_push(ld, NULL, (long)i);

		r = load_statement(ld, node(ld, *it), &ld->pol->stmts[ld->pol->nstmts]);
		path_pop(ld, p2);
		if (r != 0 && !keep_going(ld, r)) {
			path_pop(ld, ps);
			return r;
		}
		if (r == 0) {
			ld->pol->nstmts++;
		}
	}
	path_pop(ld, ps);
	if (f[T_TESTS] != NULL) {
		ps = path_push(ld, "tests", -1);
		if (f[T_TESTS]->type != YAML_SEQUENCE_NODE) {
			r = ld_err(ld, f[T_TESTS], POL_ERR_SYNTAX, "expected a list of tests");
			path_pop(ld, ps);
			return r;
		}
		c = (size_t)(f[T_TESTS]->data.sequence.items.top -
		             f[T_TESTS]->data.sequence.items.start);
		if (c > POL_MAX_STATEMENTS) {
			r = ld_err(ld, f[T_TESTS], POL_ERR_TOO_LARGE, "more than %u tests",
			           POL_MAX_STATEMENTS);
			path_pop(ld, ps);
			return r;
		}
		ld->pol->tests =
		        pol_arena_alloc(&ld->pol->arena, (c + 1) * sizeof(*ld->pol->tests));
		if (ld->pol->tests == NULL) {
			path_pop(ld, ps);
			return POL_ERR_NOMEM;
		}
		memset(ld->pol->tests, 0, (c + 1) * sizeof(*ld->pol->tests));
		for (i = 0, it = f[T_TESTS]->data.sequence.items.start;
		     it < f[T_TESTS]->data.sequence.items.top; it++, i++) {
			struct psave p2 = path_push(ld, NULL, (long)i);

			/* Counted before loading, so that free() releases its request. */
			ld->pol->ntests++;
			r = load_test(ld, node(ld, *it), &ld->pol->tests[i]);
			path_pop(ld, p2);
			if (r != 0 && !keep_going(ld, r)) {
				path_pop(ld, ps);
				return r;
			}
		}
		path_pop(ld, ps);
	}
	for (i = 0; i < ld->pol->nstmts; i++) {
		ld->pol->has_shadow = ld->pol->has_shadow || ld->pol->stmts[i].shadow;
	}
	return build_index(ld);
}

static void
ld_free_decls(struct ld *ld)
{
	free(ld->pr_names);
	free(ld->pr_ids);
	free(ld->role_names);
	free(ld->role_pats);
	free(ld->role_npats);
	free(ld->role_masks);
}

int
pol_load_internal(const char *buf, size_t len, const char *name, struct pol_policy **out,
                  struct pol_diag *diag, struct pol_load_opts *opts)
{
	struct ld ld;
	yaml_parser_t parser;
	yaml_document_t extra;
	bool parser_init = false, doc_init = false;
	yaml_node_t *root;
	int r;

	memset(&ld, 0, sizeof(ld));
	ld.file = name != NULL ? name : "<buffer>";
	ld.diag = diag;
	ld.opts = opts;
	if (diag != NULL) {
		memset(diag, 0, sizeof(*diag));
	}
	if (out == NULL || buf == NULL) {
		return POL_ERR_INVAL;
	}
	*out = NULL;
	if (len > POL_MAX_FILE) {
		r = ld_err(&ld, NULL, POL_ERR_TOO_LARGE, "policy larger than %u bytes",
		           POL_MAX_FILE);
		goto out;
	}
	ld.pol = calloc(1, sizeof(*ld.pol));
	if (ld.pol == NULL) {
		r = POL_ERR_NOMEM;
		goto out;
	}
	ld.pol->refs = 1;
	if (!yaml_parser_initialize(&parser)) {
		r = POL_ERR_NOMEM;
		goto out;
	}
	parser_init = true;
	yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
	if (!yaml_parser_load(&parser, &ld.doc)) {
		struct pol_diag d;

		r = parser.error == YAML_MEMORY_ERROR ? POL_ERR_NOMEM : POL_ERR_SYNTAX;
		pol_diag_set(&d, r, POL_SEV_ERROR, ld.file, (unsigned)parser.problem_mark.line + 1,
		             (unsigned)parser.problem_mark.column + 1, "", "", "YAML: %s%s%s",
		             parser.problem != NULL ? parser.problem : "parse error",
		             parser.context != NULL ? " " : "",
		             parser.context != NULL ? parser.context : "");
		if (diag != NULL) {
			*diag = d;
		}
		if (opts != NULL) {
			opts->nerrors++;
			if (opts->fn != NULL) {
				opts->fn(&d, opts->arg);
			}
		}
		goto out;
	}
	doc_init = true;
	root = yaml_document_get_root_node(&ld.doc);
	if (root == NULL) {
		r = ld_err(&ld, NULL, POL_ERR_MISSING, "empty policy document");
		goto out;
	}
	/* One document per file: a second one would be silently ignored otherwise. */
	if (!yaml_parser_load(&parser, &extra)) {
		r = ld_err(&ld, NULL, POL_ERR_SYNTAX, "YAML: %s",
		           parser.problem != NULL ? parser.problem : "parse error");
		goto out;
	}
	if (yaml_document_get_root_node(&extra) != NULL) {
		yaml_node_t *x = yaml_document_get_root_node(&extra);

		r = ld_err(&ld, x, POL_ERR_SYNTAX, "more than one YAML document");
		yaml_document_delete(&extra);
		goto out;
	}
	yaml_document_delete(&extra);
	if ((r = check_tree(&ld)) != 0) {
		goto out;
	}
	r = load_top(&ld, root);
	if (r == 0 && ld.nerr > 0) {
		r = ld.first_err;
	}
	if (r == 0) {
		*out = ld.pol;
		ld.pol = NULL; /* transferred */
	}
out:
	if (opts != NULL) {
		opts->nerrors += ld.nerr;
	}
	if (r != 0 && diag != NULL && ld.nerr == 0 && diag->code == 0) {
		pol_diag_set(diag, r, POL_SEV_ERROR, ld.file, 0, 0, "", "", "%s", pol_strerror(r));
	}
	if (doc_init) {
		yaml_document_delete(&ld.doc);
	}
	if (parser_init) {
		yaml_parser_delete(&parser);
	}
	ld_free_decls(&ld);
	pol_policy_free(ld.pol);
	return r;
}

int
pol_policy_load_buffer(const char *buf, size_t len, const char *name, struct pol_policy **out,
                       struct pol_diag *diag)
{
	return pol_load_internal(buf, len, name, out, diag, NULL);
}

/* Reads a whole file, capped at POL_MAX_FILE. */
static int
read_file(const char *path, char **out, size_t *len)
{
	FILE *f;
	char *b = NULL;
	size_t n;
	int r;

	*out = NULL;
	*len = 0;
	f = fopen(path, "rb");
	if (f == NULL) {
		return POL_ERR_IO;
	}
	b = malloc(POL_MAX_FILE + 1);
	if (b == NULL) {
		r = POL_ERR_NOMEM;
		goto out;
	}
	n = fread(b, 1, POL_MAX_FILE + 1, f);
	if (ferror(f)) {
		r = POL_ERR_IO;
		goto out;
	}
	if (n > POL_MAX_FILE) {
		r = POL_ERR_TOO_LARGE;
		goto out;
	}
	*out = b;
	b = NULL; /* transferred */
	*len = n;
	r = 0;
out:
	free(b);
	fclose(f);
	return r;
}

int
pol_file_load_internal(const char *path, struct pol_policy **out, struct pol_diag *diag,
                       struct pol_load_opts *opts)
{
	char *buf = NULL;
	size_t len;
	int r, e;

	if (out != NULL) {
		*out = NULL;
	}
	if (path == NULL || out == NULL) {
		return POL_ERR_INVAL;
	}
	if ((r = read_file(path, &buf, &len)) != 0) {
		struct pol_diag d;

		e = errno;
		pol_diag_set(&d, r, POL_SEV_ERROR, path, 0, 0, "", "", "%s%s%s", pol_strerror(r),
		             r == POL_ERR_IO ? ": " : "", r == POL_ERR_IO ? strerror(e) : "");
		if (diag != NULL) {
			*diag = d;
		}
		if (opts != NULL) {
			opts->nerrors++;
			if (opts->fn != NULL) {
				opts->fn(&d, opts->arg);
			}
		}
		return r;
	}
	r = pol_load_internal(buf, len, path, out, diag, opts);
	free(buf);
	return r;
}

int
pol_policy_load(const char *path, struct pol_policy **out, struct pol_diag *diag)
{
	return pol_file_load_internal(path, out, diag, NULL);
}

struct pol_policy *
pol_policy_ref(struct pol_policy *pol)
{
	if (pol != NULL) {
		__atomic_add_fetch(&pol->refs, 1, __ATOMIC_RELAXED);
	}
	return pol;
}

void
pol_policy_free(struct pol_policy *pol)
{
	size_t i;

	if (pol == NULL) {
		return;
	}
	/* Acquire-release so the last holder sees every write made before others let go. */
	if (__atomic_sub_fetch(&pol->refs, 1, __ATOMIC_ACQ_REL) != 0) {
		return;
	}
	for (i = 0; i < pol->ntests; i++) {
		pol_request_free(pol->tests[i].req);
	}
	pol_arena_free(&pol->arena);
	free(pol);
}

const char *
pol_policy_name(const struct pol_policy *pol)
{
	return pol == NULL ? "" : pol->name;
}

const char *
pol_policy_tenant(const struct pol_policy *pol)
{
	return pol == NULL ? "" : pol->tenant;
}

size_t
pol_policy_statement_count(const struct pol_policy *pol)
{
	return pol == NULL ? 0 : pol->nstmts;
}
