/*
 * policy/internal.h — the compiled policy model shared by the files of policy/. Private to
 * the module: nothing outside policy/ may include it.
 */
#ifndef HSMGATE_POLICY_INTERNAL_H
#define HSMGATE_POLICY_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy/policy.h"

#define POL_HIDDEN __attribute__((visibility("hidden")))

/* ---- arena: every byte of a compiled policy lives in one, freed at once --------------- */

struct pol_arena_blk;
struct pol_arena {
	struct pol_arena_blk *head;
};

void *pol_arena_alloc(struct pol_arena *a, size_t n) POL_HIDDEN;
char *pol_arena_strndup(struct pol_arena *a, const char *s, size_t n) POL_HIDDEN;
void pol_arena_free(struct pol_arena *a) POL_HIDDEN;

/* ---- vocabulary (vocab.c) ------------------------------------------------------------- */

#define POL_MAX_ACTIONS  128
#define POL_ACTION_WORDS (POL_MAX_ACTIONS / 64)

/* Index of `name` in the action table (case-insensitive), or -1. */
int pol_vocab_action_index(const char *name, size_t len) POL_HIDDEN;

enum pol_ktype {
	POL_KT_STRING = 0,
	POL_KT_BOOL,
	POL_KT_NUMERIC,
	POL_KT_DATE,
	POL_KT_IP,
	POL_KT_CRN,
	POL_KT_BINARY,
};

/* 0 and the key's value type when `key` is known, else POL_ERR_KEY. */
int pol_vocab_key_type(const char *key, enum pol_ktype *type) POL_HIDDEN;

/* The builtin role bundles: NULL-terminated list of action patterns, or NULL. */
const char *const *pol_vocab_role(const char *name) POL_HIDDEN;

/* ---- patterns (match.c) --------------------------------------------------------------- */

/* Pattern tokens: 0..255 are literal bytes. */
enum {
	PT_STAR_ANY = 256, /* '*' that matches any run of bytes */
	PT_STAR_SEG = 257, /* '*' inside a CRN segment: does not match ':' */
	PT_Q_ANY = 258,    /* '?' any one byte */
	PT_Q_SEG = 259,    /* '?' inside a CRN segment: not ':' */
	PT_VAR = 260,      /* PT_VAR + i: policy variable i */
};
#define POL_MAX_VARS    32
#define POL_MAX_PATTERN 2048 /* tokens after variable expansion */

enum pol_pat_kind {
	POL_PAT_LITERAL = 0, /* no wildcards (StringEquals values); variables allowed */
	POL_PAT_GLOB,        /* '*' and '?' match anything (actions, StringLike, principals) */
	POL_PAT_CRN,         /* segment-aware (resources, Crn*) */
};

#define POL_PAT_WILD   0x1u /* has a wildcard */
#define POL_PAT_VARS   0x2u /* has a variable */
#define POL_PAT_PREFIX 0x4u /* only wildcard is one trailing PT_STAR_ANY, no vars */

struct pol_var {
	const char *key;
	const char *def; /* default value, or NULL */
};

struct pol_pattern {
	const char *text; /* as written */
	const char *lit;  /* literal text (no vars): whole or prefix */
	size_t litlen;
	uint16_t *prog;
	size_t len;
	unsigned flags;
	struct pol_var *vars;
	size_t nvars;
};

/* Compiles `text` into `p` (allocated in `a`). kind decides the wildcard rules; vars
 * whether ${...} is allowed. On error returns POL_ERR_* and sets *why to a static string. */
int pol_pattern_compile(struct pol_arena *a, const char *text, enum pol_pat_kind kind, bool vars,
                        struct pol_pattern *p, const char **why) POL_HIDDEN;

/* Copies the literal tenant segment of a resource pattern ("crn:hsmgate:<t>:...") into
 * buf; false when the segment is empty, too long, or has a wildcard or variable. */
bool pol_pattern_crn_tenant(const struct pol_pattern *p, char *buf, size_t cap) POL_HIDDEN;

/* Matches token program against s; icase folds ASCII case. */
bool pol_prog_match(const uint16_t *p, size_t plen, const char *s, size_t slen,
                    bool icase) POL_HIDDEN;

/* ---- the compiled model --------------------------------------------------------------- */

enum pol_op {
	POL_OP_STR_EQ = 0,
	POL_OP_STR_EQ_IC,
	POL_OP_STR_LIKE,
	POL_OP_NUM_EQ,
	POL_OP_NUM_LT,
	POL_OP_NUM_LE,
	POL_OP_NUM_GT,
	POL_OP_NUM_GE,
	POL_OP_DATE_EQ,
	POL_OP_DATE_LT,
	POL_OP_DATE_LE,
	POL_OP_DATE_GT,
	POL_OP_DATE_GE,
	POL_OP_BOOL,
	POL_OP_BINARY,
	POL_OP_IP,
	POL_OP_CRN,
	POL_OP_NULL,
};

enum pol_qual {
	POL_Q_NONE = 0,
	POL_Q_ANY,
	POL_Q_ALL,
};

struct pol_cidr {
	uint8_t addr[16]; /* v4 as v4-mapped v6 */
	unsigned bits;    /* prefix length over the 128-bit form */
};

struct pol_cval {
	struct pol_pattern pat; /* string-like operators */
	double num;
	int64_t date;
	bool b;
	struct pol_cidr cidr;
};

struct pol_cond {
	enum pol_op op;
	enum pol_qual qual;
	bool negated;
	bool ifexists;
	const char *opname; /* as written, for lint */
	const char *key;    /* as written */
	struct pol_cval *vals;
	size_t nvals;
	unsigned line, column;
};

enum pol_pr_kind {
	POL_PR_ANY = 0,
	POL_PR_PATTERN,
	POL_PR_GROUP,
};

struct pol_princ {
	enum pol_pr_kind kind;
	struct pol_pattern pat; /* POL_PR_PATTERN */
	const char *group;      /* POL_PR_GROUP: name */
	int gidx;               /* declared group index, or -1 (request-supplied only) */
};

struct pol_group {
	const char *name;
	struct pol_princ *members; /* patterns only */
	size_t nmembers;
	struct pol_cond *match; /* StringEquals conditions, any of which admits */
	size_t nmatch;
	unsigned line;
};

enum pol_effect {
	POL_ALLOW = 0,
	POL_DENY = 1,
};

struct pol_stmt {
	const char *sid;
	enum pol_effect effect;
	bool shadow;
	unsigned line, column;
	bool not_principals;
	struct pol_princ *princ;
	size_t nprinc;
	bool not_actions;
	uint64_t amask[POL_ACTION_WORDS]; /* the listed actions, expanded */
	struct pol_pattern *apat;         /* as written, after role expansion */
	size_t napat;
	bool not_resources;
	struct pol_pattern *res;
	size_t nres;
	struct pol_cond *conds;
	size_t nconds;
	bool has_conds_block;
	const char *scope; /* the one tenant every resource names, or NULL */
};

struct pol_test {
	const char *name;
	unsigned line;
	struct pol_request *req;
	enum pol_result expect;
	bool has_shadow;
	enum pol_result expect_shadow;
	const char **sids;
	size_t nsids;
	bool has_sids;
};

struct pol_policy {
	int refs;
	struct pol_arena arena;
	const char *name;
	const char *tenant;
	struct pol_stmt *stmts;
	size_t nstmts;
	struct pol_group *groups;
	size_t ngroups;
	/* The index (load.c build_index): for bucket b and action a, idx[b * POL_MAX_ACTIONS
	 * + a] lists the statements that can apply to action a. Bucket 0 holds statements
	 * whose resources may name any tenant; bucket 1 + t those whose resources all name
	 * tenants[t] literally, so a request only walks its own tenant's statements. */
	const char **tenants; /* sorted */
	size_t ntenants;
	uint32_t **idx;
	uint32_t *nidx;
	struct pol_test *tests;
	size_t ntests;
	bool has_shadow;
};

/* ---- request internals (request.c) ---------------------------------------------------- */

#define POL_NOFF       ((size_t)-1)
#define POL_MAX_VALUES 64 /* values of one key seen by one condition */

/* Fills vals with up to max values of `key` in req (special keys included); returns the
 * count (may be more than max: the caller treats that as an error). buf is scratch space
 * for synthesised values (gw:CurrentTime), at least 32 bytes. */
size_t pol_request_values(const struct pol_request *req, const char *key, const char **vals,
                          size_t max, char *scratch, size_t scratchlen) POL_HIDDEN;
const char *pol_request_principal(const struct pol_request *req) POL_HIDDEN;
const char *pol_request_action(const struct pol_request *req) POL_HIDDEN;
const char *pol_request_resource(const struct pol_request *req) POL_HIDDEN;
size_t pol_request_group_count(const struct pol_request *req) POL_HIDDEN;
const char *pol_request_group(const struct pol_request *req, size_t i) POL_HIDDEN;

/* ---- values (cond.c) ------------------------------------------------------------------ */

int pol_parse_number(const char *s, double *out) POL_HIDDEN;
int pol_parse_date(const char *s, int64_t *out) POL_HIDDEN;
int pol_parse_bool(const char *s, bool *out) POL_HIDDEN;
int pol_parse_cidr(const char *s, struct pol_cidr *out) POL_HIDDEN;
int pol_parse_ip(const char *s, uint8_t out[16]) POL_HIDDEN;
bool pol_cidr_contains(const struct pol_cidr *c, const uint8_t ip[16]) POL_HIDDEN;
int pol_base64_valid(const char *s) POL_HIDDEN;

/* Operator table lookup: name → op, negated, ifexists, qual. Returns 0 or POL_ERR_OPERATOR. */
int pol_op_parse(const char *name, enum pol_op *op, enum pol_qual *qual, bool *negated,
                 bool *ifexists) POL_HIDDEN;
/* The value type an operator compares (for lint and variable checks). */
enum pol_ktype pol_op_type(enum pol_op op) POL_HIDDEN;

/* Evaluation context shared by eval.c and cond.c. */
struct pol_eval_ctx {
	const struct pol_policy *pol;
	const struct pol_request *req;
	struct pol_decision *dec;
	bool unresolved;           /* a policy variable had no value: statement does not apply */
	int8_t gm[POL_MAX_GROUPS]; /* group membership cache: -1 unknown, 0, 1 */
};

/* Evaluates one condition: 1 true, 0 false, or a negative POL_ERR_*. */
int pol_cond_eval(struct pol_eval_ctx *ctx, const struct pol_cond *c) POL_HIDDEN;

/* Expands a pattern's variables against the request into out (tokens); returns the length,
 * 0 with *unresolved set when a variable has no value, or a negative POL_ERR_*. */
int pol_pattern_expand(struct pol_eval_ctx *ctx, const struct pol_pattern *p, uint16_t *out,
                       size_t outcap, size_t *outlen, bool *unresolved) POL_HIDDEN;

/* Matches a compiled pattern (expanding variables) against s. 1/0 or POL_ERR_*. */
int pol_pattern_match_ctx(struct pol_eval_ctx *ctx, const struct pol_pattern *p, const char *s,
                          bool icase) POL_HIDDEN;

/* Records a missing condition key in the decision. */
void pol_decision_note_missing(struct pol_decision *dec, const char *key) POL_HIDDEN;

/* Decision internals used by eval.c. */
void pol_decision_clear(struct pol_decision *dec) POL_HIDDEN;
void pol_decision_add(struct pol_decision *dec, enum pol_list list,
                      const struct pol_stmt *st) POL_HIDDEN;
void pol_decision_finish(struct pol_decision *dec, int err) POL_HIDDEN;

/* Loader entry used by load.c's public functions and lint.c. */
struct pol_load_opts {
	pol_diag_fn fn; /* every error, not only the first */
	void *arg;
	unsigned nerrors;
};
int pol_load_internal(const char *buf, size_t len, const char *name, struct pol_policy **out,
                      struct pol_diag *diag, struct pol_load_opts *opts) POL_HIDDEN;

int pol_file_load_internal(const char *path, struct pol_policy **out, struct pol_diag *diag,
                           struct pol_load_opts *opts) POL_HIDDEN;

/* Fills a diag. */
void pol_diag_set(struct pol_diag *d, int code, enum pol_severity sev, const char *file,
                  unsigned line, unsigned column, const char *key, const char *path,
                  const char *fmt, ...) __attribute__((format(printf, 9, 10))) POL_HIDDEN;

#endif
