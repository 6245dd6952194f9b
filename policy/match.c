/*
 * policy/match.c — wildcard patterns: compiled once at load into token programs, matched
 * without allocation at evaluation.
 *
 * Three flavours (reference/policy-and-kms.md table (a) rows 5, 6, 12):
 *  - glob: actions (case-insensitive), StringLike, principals: '*' any run, '?' one byte;
 *  - crn: resources and Crn* operators, case-sensitive and segment-aware: '*' and '?' stay
 *    inside one ':'-separated segment, except that a '*' ending a segment may run on across
 *    ':' (so "crn:hsmgate:demo:partition:demo*" covers the partition's keys);
 *  - literal: StringEquals values, where '*' is just a byte.
 * Every flavour may carry policy variables ${key}, ${key, 'default'} and the escapes ${*},
 * ${?}, ${$}. A variable's value is always literal: a '*' in a key label never becomes a
 * wildcard.
 *
 * Matching is dynamic programming over (pattern token, input byte), O(n*m) with no
 * backtracking, so a hostile resource string (a key label is tenant-controlled) cannot make
 * a pattern take exponential time.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "policy/internal.h"

/* ---- arena ---------------------------------------------------------------------------- */

struct pol_arena_blk {
	struct pol_arena_blk *next;
	size_t used, cap;
	max_align_t data[];
};

#define ARENA_BLK (64u * 1024u)

void *
pol_arena_alloc(struct pol_arena *a, size_t n)
{
	struct pol_arena_blk *b = a->head;
	size_t cap;
	void *p;

	n = (n + sizeof(max_align_t) - 1) & ~(sizeof(max_align_t) - 1);
	if (n == 0) {
		n = sizeof(max_align_t);
	}
	if (b == NULL || b->cap - b->used < n) {
		cap = n > ARENA_BLK ? n : ARENA_BLK;
		b = calloc(1, sizeof(*b) + cap);
		if (b == NULL) {
			return NULL;
		}
		b->cap = cap;
		b->next = a->head;
		a->head = b;
	}
	p = (char *)b->data + b->used;
	b->used += n;
	return p;
}

char *
pol_arena_strndup(struct pol_arena *a, const char *s, size_t n)
{
	char *p = pol_arena_alloc(a, n + 1);

	if (p == NULL) {
		return NULL;
	}
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

void
pol_arena_free(struct pol_arena *a)
{
	struct pol_arena_blk *b, *next;

	for (b = a->head; b != NULL; b = next) {
		next = b->next;
		free(b);
	}
	a->head = NULL;
}

/* ---- errors and diagnostics ----------------------------------------------------------- */

const char *
pol_strerror(int err)
{
	switch (err) {
	case POL_OK:
		return "success";
	case POL_ERR_INVAL:
		return "invalid argument";
	case POL_ERR_NOMEM:
		return "out of memory";
	case POL_ERR_IO:
		return "cannot read the policy file";
	case POL_ERR_SYNTAX:
		return "not a valid policy document";
	case POL_ERR_DUPLICATE:
		return "duplicate key or statement id";
	case POL_ERR_MISSING:
		return "required field missing";
	case POL_ERR_ACTION:
		return "unknown action";
	case POL_ERR_KEY:
		return "unknown condition key";
	case POL_ERR_OPERATOR:
		return "unknown condition operator";
	case POL_ERR_VALUE:
		return "malformed value";
	case POL_ERR_REFERENCE:
		return "undeclared principal, group or role";
	case POL_ERR_TOO_LARGE:
		return "value or list too large";
	case POL_ERR_EVAL:
		return "evaluation error (denied)";
	case POL_ERR_TRUNCATED:
		return "output truncated";
	case POL_ERR_LINT:
		return "policy has lint errors or failing tests";
	default:
		return "unknown error";
	}
}

static void
copy_str(char *dst, size_t cap, const char *src)
{
	size_t n;

	if (src == NULL) {
		dst[0] = '\0';
		return;
	}
	n = strlen(src);
	if (n >= cap) {
		n = cap - 1;
	}
	memcpy(dst, src, n);
	dst[n] = '\0';
}

void
pol_diag_set(struct pol_diag *d, int code, enum pol_severity sev, const char *file, unsigned line,
             unsigned column, const char *key, const char *path, const char *fmt, ...)
{
	va_list ap;

	memset(d, 0, sizeof(*d));
	d->code = code;
	d->severity = sev;
	copy_str(d->file, sizeof(d->file), file);
	d->line = line;
	d->column = column;
	copy_str(d->key, sizeof(d->key), key);
	copy_str(d->path, sizeof(d->path), path);
	va_start(ap, fmt);
	(void)vsnprintf(d->message, sizeof(d->message), fmt, ap);
	va_end(ap);
}

int
pol_diag_format(const struct pol_diag *d, char *buf, size_t len)
{
	int n;

	if (d == NULL || buf == NULL || len == 0) {
		return POL_ERR_INVAL;
	}
	char where[64] = "";

	/* "file:line:column:" as compilers print it, dropping what is unknown (0). */
	if (d->line > 0 && d->column > 0) {
		(void)snprintf(where, sizeof(where), ":%u:%u", d->line, d->column);
	} else if (d->line > 0) {
		(void)snprintf(where, sizeof(where), ":%u", d->line);
	}
	n = snprintf(buf, len, "%s%s: %s: %s%s%s%s", d->file, where,
	             d->severity == POL_SEV_ERROR ? "error" : "warning", d->message,
	             d->path[0] != '\0' ? " (at " : "", d->path, d->path[0] != '\0' ? ")" : "");
	if (n < 0 || (size_t)n >= len) {
		return POL_ERR_TRUNCATED;
	}
	return 0;
}

/* ---- compile -------------------------------------------------------------------------- */

static bool
var_key_char(char c)
{
	return c > ' ' && c != 0x7f && c != '}' && c != ',' && c != '$' && c != '{' && c != '\'';
}

/*
 * Parses "${...}" at s (s[0] == '$', s[1] == '{'). On success *adv is the bytes consumed
 * and either *esc is the escaped byte, or key/def describe a variable.
 */
static int
parse_var(const char *s, size_t *adv, int *esc, const char **key, size_t *keylen, const char **def,
          size_t *deflen, const char **why)
{
	const char *p = s + 2, *k;

	*esc = -1;
	*def = NULL;
	*deflen = 0;
	if ((p[0] == '*' || p[0] == '?' || p[0] == '$') && p[1] == '}') {
		*esc = (unsigned char)p[0];
		*adv = 4;
		return 0;
	}
	k = p;
	while (var_key_char(*p)) {
		p++;
	}
	if (p == k) {
		*why = "empty policy variable";
		return POL_ERR_VALUE;
	}
	*key = k;
	*keylen = (size_t)(p - k);
	while (*p == ' ') {
		p++;
	}
	if (*p == ',') {
		p++;
		while (*p == ' ') {
			p++;
		}
		if (*p != '\'') {
			*why = "a variable default must be quoted with '";
			return POL_ERR_VALUE;
		}
		p++;
		*def = p;
		while (*p != '\0' && *p != '\'') {
			p++;
		}
		if (*p != '\'') {
			*why = "unterminated variable default";
			return POL_ERR_VALUE;
		}
		*deflen = (size_t)(p - *def);
		p++;
		while (*p == ' ') {
			p++;
		}
	}
	if (*p != '}') {
		*why = "unterminated policy variable";
		return POL_ERR_VALUE;
	}
	*adv = (size_t)(p + 1 - s);
	return 0;
}

int
pol_pattern_compile(struct pol_arena *a, const char *text, enum pol_pat_kind kind, bool vars,
                    struct pol_pattern *p, const char **why)
{
	size_t n = strlen(text), i = 0, len = 0, nvars = 0, adv, keylen, deflen;
	uint16_t *prog;
	struct pol_var tmpv[POL_MAX_VARS];
	const char *key, *def;
	enum pol_ktype kt;
	char kbuf[POL_MAX_STRING + 1];
	int esc, r;

	memset(p, 0, sizeof(*p));
	*why = NULL;
	if (n > POL_MAX_STRING) {
		*why = "pattern too long";
		return POL_ERR_TOO_LARGE;
	}
	prog = pol_arena_alloc(a, (n + 1) * sizeof(*prog));
	if (prog == NULL) {
		return POL_ERR_NOMEM;
	}
	while (i < n) {
		char c = text[i];

		if (c == '$' && text[i + 1] == '{') {
			if (!vars) {
				*why = "policy variables are not allowed here";
				return POL_ERR_VALUE;
			}
			if ((r = parse_var(text + i, &adv, &esc, &key, &keylen, &def, &deflen,
			                   why)) != 0) {
				return r;
			}
			i += adv;
			if (esc >= 0) {
				prog[len++] = (uint16_t)esc;
				continue;
			}
			if (nvars >= POL_MAX_VARS) {
				*why = "too many policy variables";
				return POL_ERR_TOO_LARGE;
			}
			memcpy(kbuf, key, keylen);
			kbuf[keylen] = '\0';
			if (pol_vocab_key_type(kbuf, &kt) != 0) {
				*why = "unknown policy variable";
				return POL_ERR_KEY;
			}
			tmpv[nvars].key = pol_arena_strndup(a, key, keylen);
			tmpv[nvars].def = def != NULL ? pol_arena_strndup(a, def, deflen) : NULL;
			if (tmpv[nvars].key == NULL || (def != NULL && tmpv[nvars].def == NULL)) {
				return POL_ERR_NOMEM;
			}
			prog[len++] = (uint16_t)(PT_VAR + nvars);
			nvars++;
			p->flags |= POL_PAT_VARS;
			continue;
		}
		i++;
		if (kind != POL_PAT_LITERAL && (c == '*' || c == '?')) {
			p->flags |= POL_PAT_WILD;
			if (kind == POL_PAT_GLOB) {
				prog[len++] = c == '*' ? PT_STAR_ANY : PT_Q_ANY;
			} else if (c == '?') {
				prog[len++] = PT_Q_SEG;
			} else {
				/* A '*' that ends a segment may cross ':' (AWS ARN rule). */
				prog[len++] =
				        (i == n || text[i] == ':') ? PT_STAR_ANY : PT_STAR_SEG;
			}
			continue;
		}
		prog[len++] = (uint8_t)c;
	}
	p->text = pol_arena_strndup(a, text, n);
	if (p->text == NULL) {
		return POL_ERR_NOMEM;
	}
	p->prog = prog;
	p->len = len;
	p->nvars = nvars;
	if (nvars > 0) {
		p->vars = pol_arena_alloc(a, nvars * sizeof(*p->vars));
		if (p->vars == NULL) {
			return POL_ERR_NOMEM;
		}
		memcpy(p->vars, tmpv, nvars * sizeof(*p->vars));
		return 0;
	}
	/* Fast paths for the common shapes: exact text, or "prefix*". */
	if ((p->flags & POL_PAT_WILD) == 0 || (len > 0 && prog[len - 1] == PT_STAR_ANY)) {
		char *lit = pol_arena_alloc(a, len + 1);
		size_t j;
		bool plain = true;

		if (lit == NULL) {
			return POL_ERR_NOMEM;
		}
		for (j = 0; j < len; j++) {
			if (prog[j] > 255) {
				if (j != len - 1) {
					plain = false;
				}
				break;
			}
			lit[j] = (char)prog[j];
		}
		lit[j] = '\0';
		if (plain) {
			p->lit = lit;
			p->litlen = j;
			if ((p->flags & POL_PAT_WILD) != 0) {
				p->flags |= POL_PAT_PREFIX;
			}
		}
	}
	return 0;
}

bool
pol_pattern_crn_tenant(const struct pol_pattern *p, char *buf, size_t cap)
{
	static const char pfx[] = "crn:hsmgate:";
	size_t i, n = sizeof(pfx) - 1;

	buf[0] = '\0';
	if (p->len < n) {
		return false;
	}
	for (i = 0; i < n; i++) {
		if (p->prog[i] != (uint8_t)pfx[i]) {
			return false;
		}
	}
	/* From the tokens, not the text: an escape such as ${*} is one literal byte. */
	for (i = n; i < p->len && p->prog[i] != ':'; i++) {
		if (p->prog[i] > 255 || i - n + 1 >= cap) {
			return false;
		}
		buf[i - n] = (char)p->prog[i];
	}
	buf[i - n] = '\0';
	return i > n;
}

/* ---- match ---------------------------------------------------------------------------- */

static unsigned char
fold(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

bool
pol_prog_match(const uint16_t *p, size_t plen, const char *s, size_t slen, bool icase)
{
	/* prev[j]: s[0..i) matches p[0..j). Two rows on the stack; plen is capped at load
	 * (POL_MAX_STRING) and at expansion (POL_MAX_PATTERN). */
	bool rows[2][POL_MAX_PATTERN + 1];
	bool *prev = rows[0], *cur = rows[1], *t, any;
	size_t i, j;

	if (plen > POL_MAX_PATTERN) {
		return false;
	}
	prev[0] = true;
	for (j = 1; j <= plen; j++) {
		prev[j] = prev[j - 1] && (p[j - 1] == PT_STAR_ANY || p[j - 1] == PT_STAR_SEG);
	}
	for (i = 0; i < slen; i++) {
		unsigned char c = (unsigned char)s[i];

		cur[0] = false;
		any = false;
		for (j = 1; j <= plen; j++) {
			uint16_t tok = p[j - 1];
			bool v;

			switch (tok) {
			case PT_STAR_ANY:
				v = cur[j - 1] || prev[j];
				break;
			case PT_STAR_SEG:
				v = cur[j - 1] || (prev[j] && c != ':');
				break;
			case PT_Q_ANY:
				v = prev[j - 1];
				break;
			case PT_Q_SEG:
				v = prev[j - 1] && c != ':';
				break;
			default:
				if (tok > 255) {
					v = false; /* an unexpanded variable never matches */
				} else if (icase) {
					v = prev[j - 1] && fold((unsigned char)tok) == fold(c);
				} else {
					v = prev[j - 1] && tok == c;
				}
				break;
			}
			cur[j] = v;
			any = any || v;
		}
		if (!any) {
			return false;
		}
		t = prev;
		prev = cur;
		cur = t;
	}
	return prev[plen];
}

int
pol_pattern_expand(struct pol_eval_ctx *ctx, const struct pol_pattern *p, uint16_t *out,
                   size_t outcap, size_t *outlen, bool *unresolved)
{
	size_t i, n = 0, k, nv;
	const char *vals[2];
	char scratch[64];

	*unresolved = false;
	*outlen = 0;
	for (i = 0; i < p->len; i++) {
		uint16_t tok = p->prog[i];
		const char *v;

		if (tok < PT_VAR) {
			if (n >= outcap) {
				return POL_ERR_EVAL;
			}
			out[n++] = tok;
			continue;
		}
		const struct pol_var *var = &p->vars[tok - PT_VAR];

		nv = pol_request_values(ctx->req, var->key, vals, 2, scratch, sizeof(scratch));
		if (nv == 1) {
			v = vals[0];
		} else if (nv == 0 && var->def != NULL) {
			v = var->def;
		} else {
			/* Absent, or multi-valued: AWS substitutes single values only. The
			 * statement does not match (reference table (a) row 12). */
			if (nv == 0) {
				pol_decision_note_missing(ctx->dec, var->key);
			}
			ctx->unresolved = true;
			*unresolved = true;
			return 0;
		}
		for (k = 0; v[k] != '\0'; k++) {
			if (n >= outcap) {
				return POL_ERR_EVAL;
			}
			out[n++] = (uint8_t)v[k];
		}
	}
	*outlen = n;
	return 0;
}

int
pol_pattern_match_ctx(struct pol_eval_ctx *ctx, const struct pol_pattern *p, const char *s,
                      bool icase)
{
	uint16_t buf[POL_MAX_PATTERN];
	size_t slen = strlen(s), n;
	bool unresolved;
	int r;

	if ((p->flags & POL_PAT_VARS) == 0) {
		if (p->lit != NULL) {
			if ((p->flags & POL_PAT_PREFIX) != 0) {
				if (slen < p->litlen) {
					return 0;
				}
				return icase ? strncasecmp(s, p->lit, p->litlen) == 0
				             : memcmp(s, p->lit, p->litlen) == 0;
			}
			if (slen != p->litlen) {
				return 0;
			}
			return icase ? strcasecmp(s, p->lit) == 0 : memcmp(s, p->lit, slen) == 0;
		}
		return pol_prog_match(p->prog, p->len, s, slen, icase);
	}
	if ((r = pol_pattern_expand(ctx, p, buf, POL_MAX_PATTERN, &n, &unresolved)) != 0) {
		return r;
	}
	if (unresolved) {
		return 0;
	}
	return pol_prog_match(buf, n, s, slen, icase);
}
