/*
 * policy/cond.c — condition operators and the values they compare.
 *
 * Semantics are AWS IAM's (reference/policy-and-kms.md table (a) rows 8-11):
 *  - every (operator, key) pair of a statement is ANDed; the values listed for one key are
 *    ORed; a negated operator (StringNotEquals ...) with several values is a NOR;
 *  - a key the request does not carry makes a condition false, but a negated one true;
 *    "...IfExists" makes it true; Null tests presence and nothing else;
 *  - ForAnyValue: some request value satisfies the operator (false when the key is absent);
 *    ForAllValues: every request value does (vacuously true when absent).
 * A request value that cannot be read as the operator's type (a bad IP, number, date or
 * bool) is an evaluation error, and the caller denies: a deny guarded by IpAddress must
 * never be skipped because the source address was garbage.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "policy/internal.h"

/* ---- values --------------------------------------------------------------------------- */

int
pol_parse_number(const char *s, double *out)
{
	char *end;
	double v;

	*out = 0;
	if (*s == '\0' || isspace((unsigned char)*s)) {
		return POL_ERR_VALUE;
	}
	/* Decimal only: no hex floats, inf or nan from strtod's extended syntax. */
	for (const char *p = s; *p != '\0'; p++) {
		if (!isdigit((unsigned char)*p) && *p != '.' && *p != '-' && *p != '+' &&
		    *p != 'e' && *p != 'E') {
			return POL_ERR_VALUE;
		}
	}
	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || *end != '\0' || !isfinite(v)) {
		return POL_ERR_VALUE;
	}
	*out = v;
	return 0;
}

static int
digits(const char *s, int n, int *out)
{
	int v = 0, i;

	for (i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i])) {
			return POL_ERR_VALUE;
		}
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static int64_t
days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

int
pol_parse_date(const char *s, int64_t *out)
{
	int y, mo, d, h = 0, mi = 0, se = 0, oh = 0, om = 0, sign = 0;
	size_t n = strlen(s), i;
	const char *p;
	static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

	*out = 0;
	/* Epoch seconds: all digits. */
	for (i = 0; i < n && isdigit((unsigned char)s[i]); i++) {
	}
	if (n > 0 && i == n) {
		if (n > 12) {
			return POL_ERR_VALUE;
		}
		*out = strtoll(s, NULL, 10);
		return 0;
	}
	/* RFC 3339: YYYY-MM-DD[THH:MM:SS[.frac](Z|±HH:MM)] */
	if (n < 10 || digits(s, 4, &y) != 0 || s[4] != '-' || digits(s + 5, 2, &mo) != 0 ||
	    s[7] != '-' || digits(s + 8, 2, &d) != 0) {
		return POL_ERR_VALUE;
	}
	if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1]) {
		return POL_ERR_VALUE;
	}
	p = s + 10;
	if (*p != '\0') {
		if ((*p != 'T' && *p != 't') || strlen(p) < 9 || digits(p + 1, 2, &h) != 0 ||
		    p[3] != ':' || digits(p + 4, 2, &mi) != 0 || p[6] != ':' ||
		    digits(p + 7, 2, &se) != 0) {
			return POL_ERR_VALUE;
		}
		if (h > 23 || mi > 59 || se > 60) {
			return POL_ERR_VALUE;
		}
		p += 9;
		if (*p == '.') {
			p++;
			if (!isdigit((unsigned char)*p)) {
				return POL_ERR_VALUE;
			}
			while (isdigit((unsigned char)*p)) {
				p++;
			}
		}
		if (*p == 'Z' || *p == 'z') {
			p++;
		} else if (*p == '+' || *p == '-') {
			sign = *p == '+' ? 1 : -1;
			if (strlen(p) < 6 || digits(p + 1, 2, &oh) != 0 || p[3] != ':' ||
			    digits(p + 4, 2, &om) != 0 || oh > 23 || om > 59) {
				return POL_ERR_VALUE;
			}
			p += 6;
		} else {
			return POL_ERR_VALUE;
		}
		if (*p != '\0') {
			return POL_ERR_VALUE;
		}
	}
	*out = days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + se -
	       sign * (oh * 3600 + om * 60);
	return 0;
}

int
pol_parse_bool(const char *s, bool *out)
{
	*out = false;
	if (strcasecmp(s, "true") == 0) {
		*out = true;
		return 0;
	}
	if (strcasecmp(s, "false") == 0) {
		return 0;
	}
	return POL_ERR_VALUE;
}

int
pol_parse_ip(const char *s, uint8_t out[16])
{
	struct in_addr a4;

	memset(out, 0, 16);
	if (inet_pton(AF_INET, s, &a4) == 1) {
		/* v4 as v4-mapped v6 (RFC 4291 2.5.5.2), so one comparison serves both. */
		out[10] = 0xff;
		out[11] = 0xff;
		memcpy(out + 12, &a4, 4);
		return 0;
	}
	if (inet_pton(AF_INET6, s, out) == 1) {
		return 0;
	}
	return POL_ERR_VALUE;
}

int
pol_parse_cidr(const char *s, struct pol_cidr *out)
{
	char buf[64];
	const char *slash = strchr(s, '/');
	size_t alen = slash != NULL ? (size_t)(slash - s) : strlen(s);
	bool v4;
	int bits, r;

	memset(out, 0, sizeof(*out));
	if (alen == 0 || alen >= sizeof(buf)) {
		return POL_ERR_VALUE;
	}
	memcpy(buf, s, alen);
	buf[alen] = '\0';
	v4 = strchr(buf, ':') == NULL;
	if ((r = pol_parse_ip(buf, out->addr)) != 0) {
		return r;
	}
	if (slash == NULL) {
		out->bits = 128;
		return 0;
	}
	if (slash[1] == '\0' || strlen(slash + 1) > 3 ||
	    digits(slash + 1, (int)strlen(slash + 1), &bits) != 0) {
		return POL_ERR_VALUE;
	}
	if (bits > (v4 ? 32 : 128)) {
		return POL_ERR_VALUE;
	}
	out->bits = (unsigned)(v4 ? bits + 96 : bits);
	return 0;
}

bool
pol_cidr_contains(const struct pol_cidr *c, const uint8_t ip[16])
{
	unsigned full = c->bits / 8, rest = c->bits % 8;

	if (memcmp(c->addr, ip, full) != 0) {
		return false;
	}
	if (rest == 0) {
		return true;
	}
	uint8_t mask = (uint8_t)(0xff << (8 - rest));
	return (c->addr[full] & mask) == (ip[full] & mask);
}

int
pol_base64_valid(const char *s)
{
	size_t n = strlen(s), i, pad = 0;

	if (n == 0 || n % 4 != 0) {
		return POL_ERR_VALUE;
	}
	for (i = 0; i < n; i++) {
		char c = s[i];

		if (c == '=') {
			pad++;
			continue;
		}
		if (pad > 0 || !(isalnum((unsigned char)c) || c == '+' || c == '/')) {
			return POL_ERR_VALUE;
		}
	}
	return pad <= 2 ? 0 : POL_ERR_VALUE;
}

/* ---- operators ------------------------------------------------------------------------ */

static const struct {
	const char *name;
	enum pol_op op;
	bool negated;
} ops[] = {
        {"StringEquals", POL_OP_STR_EQ, false},
        {"StringNotEquals", POL_OP_STR_EQ, true},
        {"StringEqualsIgnoreCase", POL_OP_STR_EQ_IC, false},
        {"StringNotEqualsIgnoreCase", POL_OP_STR_EQ_IC, true},
        {"StringLike", POL_OP_STR_LIKE, false},
        {"StringNotLike", POL_OP_STR_LIKE, true},
        {"NumericEquals", POL_OP_NUM_EQ, false},
        {"NumericNotEquals", POL_OP_NUM_EQ, true},
        {"NumericLessThan", POL_OP_NUM_LT, false},
        {"NumericLessThanEquals", POL_OP_NUM_LE, false},
        {"NumericGreaterThan", POL_OP_NUM_GT, false},
        {"NumericGreaterThanEquals", POL_OP_NUM_GE, false},
        {"DateEquals", POL_OP_DATE_EQ, false},
        {"DateNotEquals", POL_OP_DATE_EQ, true},
        {"DateLessThan", POL_OP_DATE_LT, false},
        {"DateLessThanEquals", POL_OP_DATE_LE, false},
        {"DateGreaterThan", POL_OP_DATE_GT, false},
        {"DateGreaterThanEquals", POL_OP_DATE_GE, false},
        {"Bool", POL_OP_BOOL, false},
        {"BinaryEquals", POL_OP_BINARY, false},
        {"IpAddress", POL_OP_IP, false},
        {"NotIpAddress", POL_OP_IP, true},
        {"CrnEquals", POL_OP_CRN, false},
        {"CrnLike", POL_OP_CRN, false},
        {"CrnNotEquals", POL_OP_CRN, true},
        {"CrnNotLike", POL_OP_CRN, true},
        {"Null", POL_OP_NULL, false},
};

int
pol_op_parse(const char *name, enum pol_op *op, enum pol_qual *qual, bool *negated, bool *ifexists)
{
	size_t i, n;
	const char *base = name;

	*qual = POL_Q_NONE;
	*ifexists = false;
	if (strncmp(name, "ForAnyValue:", 12) == 0) {
		*qual = POL_Q_ANY;
		base = name + 12;
	} else if (strncmp(name, "ForAllValues:", 13) == 0) {
		*qual = POL_Q_ALL;
		base = name + 13;
	}
	n = strlen(base);
	if (n > 8 && strcmp(base + n - 8, "IfExists") == 0) {
		*ifexists = true;
		n -= 8;
	}
	for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		if (strlen(ops[i].name) == n && strncmp(ops[i].name, base, n) == 0) {
			/* Null is the presence test itself: no IfExists, no qualifier. */
			if (ops[i].op == POL_OP_NULL && (*ifexists || *qual != POL_Q_NONE)) {
				return POL_ERR_OPERATOR;
			}
			*op = ops[i].op;
			*negated = ops[i].negated;
			return 0;
		}
	}
	return POL_ERR_OPERATOR;
}

enum pol_ktype
pol_op_type(enum pol_op op)
{
	switch (op) {
	case POL_OP_NUM_EQ:
	case POL_OP_NUM_LT:
	case POL_OP_NUM_LE:
	case POL_OP_NUM_GT:
	case POL_OP_NUM_GE:
		return POL_KT_NUMERIC;
	case POL_OP_DATE_EQ:
	case POL_OP_DATE_LT:
	case POL_OP_DATE_LE:
	case POL_OP_DATE_GT:
	case POL_OP_DATE_GE:
		return POL_KT_DATE;
	case POL_OP_BOOL:
	case POL_OP_NULL:
		return POL_KT_BOOL;
	case POL_OP_BINARY:
		return POL_KT_BINARY;
	case POL_OP_IP:
		return POL_KT_IP;
	case POL_OP_CRN:
		return POL_KT_CRN;
	case POL_OP_STR_EQ:
	case POL_OP_STR_EQ_IC:
	case POL_OP_STR_LIKE:
	default:
		return POL_KT_STRING;
	}
}

/* ---- evaluation ----------------------------------------------------------------------- */

static int
cmp_num(enum pol_op op, double a, double b)
{
	switch (op) {
	case POL_OP_NUM_EQ:
		return a == b;
	case POL_OP_NUM_LT:
		return a < b;
	case POL_OP_NUM_LE:
		return a <= b;
	case POL_OP_NUM_GT:
		return a > b;
	case POL_OP_NUM_GE:
		return a >= b;
	default:
		return 0;
	}
}

static int
cmp_date(enum pol_op op, int64_t a, int64_t b)
{
	switch (op) {
	case POL_OP_DATE_EQ:
		return a == b;
	case POL_OP_DATE_LT:
		return a < b;
	case POL_OP_DATE_LE:
		return a <= b;
	case POL_OP_DATE_GT:
		return a > b;
	case POL_OP_DATE_GE:
		return a >= b;
	default:
		return 0;
	}
}

/* Does request value v satisfy the positive operator against any policy value? 1/0/err. */
static int
value_matches(struct pol_eval_ctx *ctx, const struct pol_cond *c, const char *v)
{
	size_t i;
	double num = 0;
	int64_t date = 0;
	bool b = false;
	uint8_t ip[16] = {0};
	int r;

	/* Parse the request value once per operator type; a bad one is an error (deny). */
	switch (pol_op_type(c->op)) {
	case POL_KT_NUMERIC:
		if (pol_parse_number(v, &num) != 0) {
			return POL_ERR_EVAL;
		}
		break;
	case POL_KT_DATE:
		if (pol_parse_date(v, &date) != 0) {
			return POL_ERR_EVAL;
		}
		break;
	case POL_KT_BOOL:
		if (pol_parse_bool(v, &b) != 0) {
			return POL_ERR_EVAL;
		}
		break;
	case POL_KT_IP:
		if (pol_parse_ip(v, ip) != 0) {
			return POL_ERR_EVAL;
		}
		break;
	case POL_KT_STRING:
	case POL_KT_CRN:
	case POL_KT_BINARY:
	default:
		break;
	}
	for (i = 0; i < c->nvals; i++) {
		const struct pol_cval *pv = &c->vals[i];

		switch (c->op) {
		case POL_OP_STR_EQ:
		case POL_OP_STR_LIKE:
		case POL_OP_CRN:
		case POL_OP_BINARY:
			r = pol_pattern_match_ctx(ctx, &pv->pat, v, false);
			break;
		case POL_OP_STR_EQ_IC:
			r = pol_pattern_match_ctx(ctx, &pv->pat, v, true);
			break;
		case POL_OP_NUM_EQ:
		case POL_OP_NUM_LT:
		case POL_OP_NUM_LE:
		case POL_OP_NUM_GT:
		case POL_OP_NUM_GE:
			r = cmp_num(c->op, num, pv->num);
			break;
		case POL_OP_DATE_EQ:
		case POL_OP_DATE_LT:
		case POL_OP_DATE_LE:
		case POL_OP_DATE_GT:
		case POL_OP_DATE_GE:
			r = cmp_date(c->op, date, pv->date);
			break;
		case POL_OP_BOOL:
			r = b == pv->b;
			break;
		case POL_OP_IP:
			r = pol_cidr_contains(&pv->cidr, ip);
			break;
		case POL_OP_NULL:
		default:
			r = POL_ERR_EVAL;
			break;
		}
		if (r != 0) {
			return r; /* 1: matched, or an error */
		}
	}
	return 0;
}

int
pol_cond_eval(struct pol_eval_ctx *ctx, const struct pol_cond *c)
{
	const char *vals[POL_MAX_VALUES];
	char scratch[64];
	size_t n, i;
	int r;

	n = pol_request_values(ctx->req, c->key, vals, POL_MAX_VALUES, scratch, sizeof(scratch));
	if (n > POL_MAX_VALUES) {
		return POL_ERR_EVAL;
	}
	if (c->op == POL_OP_NULL) {
		/* Null: true → "the key is absent", false → "present"; values ORed. */
		for (i = 0; i < c->nvals; i++) {
			if (c->vals[i].b == (n == 0)) {
				return 1;
			}
		}
		return 0;
	}
	if (n == 0) {
		pol_decision_note_missing(ctx->dec, c->key);
		if (c->ifexists || c->qual == POL_Q_ALL) {
			return 1;
		}
		if (c->qual == POL_Q_ANY) {
			return 0;
		}
		return c->negated ? 1 : 0;
	}
	switch (c->qual) {
	case POL_Q_ALL:
		for (i = 0; i < n; i++) {
			if ((r = value_matches(ctx, c, vals[i])) < 0) {
				return r;
			}
			if ((c->negated ? !r : r) == 0) {
				return 0;
			}
		}
		return 1;
	case POL_Q_ANY:
		for (i = 0; i < n; i++) {
			if ((r = value_matches(ctx, c, vals[i])) < 0) {
				return r;
			}
			if (c->negated ? !r : r) {
				return 1;
			}
		}
		return 0;
	case POL_Q_NONE:
	default:
		/* Positive: any value matches any policy value. Negated: none does (NOR). */
		for (i = 0; i < n; i++) {
			if ((r = value_matches(ctx, c, vals[i])) < 0) {
				return r;
			}
			if (r) {
				return c->negated ? 0 : 1;
			}
		}
		return c->negated ? 1 : 0;
	}
}
