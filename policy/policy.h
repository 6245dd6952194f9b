/*
 * policy/policy.h — IAM-style policy for hsmgate: load a YAML policy file, compile it once,
 * evaluate requests against it on every PKCS #11 call, and explain every decision.
 *
 * docs/POLICY.md is the normative description of the language; this header is its C
 * binding. The semantics are AWS IAM's (reference/policy-and-kms.md, table (a)): default
 * deny, any matching deny wins over every allow, statement order does not matter.
 *
 * Conventions (STYLE.md): functions return 0 on success or a negative POL_ERR_* code; all
 * public types are opaque except struct pol_diag, which is a plain value filled by the
 * loader. Fail closed: pol_evaluate() leaves a deny in its decision on every error path,
 * so a caller that only looks at pol_decision_result() can never allow by mistake.
 *
 * Threads: a compiled struct pol_policy is immutable and may be shared read-only by any
 * number of threads; it is reference-counted (pol_policy_ref / pol_policy_free) so that a
 * reload can swap in a new policy while requests still hold the old one. A struct
 * pol_request and a struct pol_decision belong to one thread at a time; create them once
 * per thread (or connection) and reuse them: evaluation itself does not allocate.
 */
#ifndef HSMGATE_POLICY_H
#define HSMGATE_POLICY_H

#include <stddef.h>

#define POL_WUR __attribute__((warn_unused_result))

/* ---- errors --------------------------------------------------------------------------- */

enum pol_err {
	POL_OK = 0,
	POL_ERR_INVAL = -3000, /* a NULL or otherwise unusable argument */
	POL_ERR_NOMEM = -3001,
	POL_ERR_IO = -3002,        /* the policy file cannot be read */
	POL_ERR_SYNTAX = -3003,    /* not YAML, or not of the policy schema */
	POL_ERR_DUPLICATE = -3004, /* a key or sid given twice */
	POL_ERR_MISSING = -3005,   /* a required field is absent */
	POL_ERR_ACTION = -3006,    /* an action or action pattern names no known action */
	POL_ERR_KEY = -3007,       /* an unknown condition key or policy variable */
	POL_ERR_OPERATOR = -3008,  /* an unknown condition operator or qualifier */
	POL_ERR_VALUE = -3009,     /* a malformed value (number, date, CIDR, bool, pattern) */
	POL_ERR_REFERENCE = -3010, /* a principal, group or role that is not declared */
	POL_ERR_TOO_LARGE = -3011, /* a string, list or file over its cap */
	POL_ERR_EVAL = -3012,      /* a request value of the wrong type at evaluation: deny */
	POL_ERR_TRUNCATED = -3013, /* an output buffer was too small; output is truncated */
	POL_ERR_LINT = -3014,      /* lint found errors */
};

/* A static, human-readable message for a POL_ERR_* code (or "unknown error"). */
const char *pol_strerror(int err);

/* ---- limits --------------------------------------------------------------------------- */

#define POL_MAX_FILE             (4u << 20) /* bytes in one policy file */
#define POL_MAX_STRING           1024       /* bytes in one scalar (pattern, value, sid) */
#define POL_MAX_STATEMENTS       10000
#define POL_MAX_LIST             1024 /* entries in one principals/actions/resources/value list */
#define POL_MAX_GROUPS           256  /* groups declared in one file */
#define POL_MAX_REQ_VALUE        4096 /* bytes in one request field or context value */
#define POL_DECISION_MAX_SIDS    32   /* matched statements kept per list (counts stay exact) */
#define POL_DECISION_MAX_MISSING 16

/* ---- diagnostics ---------------------------------------------------------------------- */

enum pol_severity {
	POL_SEV_ERROR = 0,
	POL_SEV_WARNING = 1,
};

/*
 * Where and why a policy file was refused (or, from lint, warned about). `line` and
 * `column` are 1-based and point at the YAML node at fault (0 when not tied to a node);
 * `key` is the innermost mapping key ("actions", "hsm:Mechanism" ...) and `path` the whole
 * way there ("statements[2].conditions.StringEquals.hsm:Mechanism").
 */
struct pol_diag {
	int code; /* a POL_ERR_* code (POL_ERR_LINT for a warning) */
	enum pol_severity severity;
	char file[256]; /* the path given to the loader, or "<buffer>" */
	unsigned line;
	unsigned column;
	char key[128];
	char path[256];
	char message[320];
};

/* Formats `d` as "file:line:column: error: message (key 'k')" into buf (always NUL
 * terminated). Returns 0, or POL_ERR_TRUNCATED when buf was too small. */
int pol_diag_format(const struct pol_diag *d, char *buf, size_t len) POL_WUR;

/* Called by the lint functions for every finding; `d` is valid only during the call. */
typedef void (*pol_diag_fn)(const struct pol_diag *d, void *arg);

/* ---- policies ------------------------------------------------------------------------- */

struct pol_policy;

/*
 * Loads and compiles the policy file at `path`. On success *out holds a policy with one
 * reference, to be dropped with pol_policy_free(). On failure *out is NULL, the return is
 * a POL_ERR_* code and, when `diag` is not NULL, *diag says where and why (the first
 * error found). The loader is strict: unknown keys, actions, condition keys, operators,
 * undeclared groups/roles, duplicate sids and duplicate mapping keys are all errors,
 * because a policy that means something other than what its author wrote must never be
 * enforced.
 */
int pol_policy_load(const char *path, struct pol_policy **out, struct pol_diag *diag) POL_WUR;

/* As pol_policy_load(), from `len` bytes at `buf` (need not be NUL terminated); `name` is
 * used as the file name in diagnostics (NULL: "<buffer>"). */
int pol_policy_load_buffer(const char *buf, size_t len, const char *name, struct pol_policy **out,
                           struct pol_diag *diag) POL_WUR;

/* Takes one more reference on `pol` and returns it (NULL-safe). Thread-safe. */
struct pol_policy *pol_policy_ref(struct pol_policy *pol);

/* Drops one reference; the last one frees the policy. NULL-safe, thread-safe. Decisions
 * that point into the policy must not be read after the last reference is gone. */
void pol_policy_free(struct pol_policy *pol);

/* The file's `name:` (or ""), `tenant:` (or ""), number of statements. Strings live as
 * long as the policy. */
const char *pol_policy_name(const struct pol_policy *pol);
const char *pol_policy_tenant(const struct pol_policy *pol);
size_t pol_policy_statement_count(const struct pol_policy *pol);

/*
 * Lints the policy file at `path` (or a buffer): reports every load error it can find
 * (not only the first) and then every warning (allow with not_*, ForAllValues in an
 * allow without a Null guard, statements that can never match, wildcard-everything
 * allows, operator/key type mismatches ...) through `fn`. Returns 0 when there were no
 * errors (warnings allowed), POL_ERR_LINT when there were, or another POL_ERR_* when the
 * file could not be read at all (also reported through `fn`). *nerrors and *nwarnings
 * (each may be NULL) receive the counts.
 */
int pol_policy_lint(const char *path, pol_diag_fn fn, void *arg, unsigned *nerrors,
                    unsigned *nwarnings) POL_WUR;
int pol_policy_lint_buffer(const char *buf, size_t len, const char *name, pol_diag_fn fn, void *arg,
                           unsigned *nerrors, unsigned *nwarnings) POL_WUR;

/* ---- requests ------------------------------------------------------------------------- */

struct pol_request;

/* A new, empty request. Returns 0 or POL_ERR_NOMEM. Free with pol_request_free(). */
int pol_request_new(struct pol_request **out) POL_WUR;
void pol_request_free(struct pol_request *req);

/* Empties the request but keeps its memory, so a reused request stops allocating once it
 * has seen its largest call. */
void pol_request_reset(struct pol_request *req);

/*
 * The request's fields; each string is copied. `principal` is "tenant/<t>/user/<n>" or
 * "tenant/<t>/service/<n>"; setting it also sets the tenant to <t> unless a tenant was set
 * explicitly. `action` is e.g. "hsm.crypto.sign" (case-insensitive). `resource` is a CRN,
 * e.g. "crn:hsmgate:demo:partition:demo:key:<ref>". Errors: POL_ERR_INVAL (NULL or empty),
 * POL_ERR_TOO_LARGE (over POL_MAX_REQ_VALUE), POL_ERR_NOMEM.
 */
int pol_request_set_principal(struct pol_request *req, const char *principal) POL_WUR;
int pol_request_set_tenant(struct pol_request *req, const char *tenant) POL_WUR;
int pol_request_set_action(struct pol_request *req, const char *action) POL_WUR;
int pol_request_set_resource(struct pol_request *req, const char *resource) POL_WUR;

/* Adds a group the caller belongs to (from config or its certificate). Groups declared in
 * the policy file with `members:`/`match:` are resolved at evaluation in addition. */
int pol_request_add_group(struct pol_request *req, const char *group) POL_WUR;

/*
 * Condition context. pol_request_set() replaces every value of `key` with `value`;
 * pol_request_add() appends one more value, making the key multi-valued (for
 * ForAnyValue/ForAllValues). Keys are case-insensitive ("hsm:Mechanism",
 * "hsm:KeyAttr/CKA_EXTRACTABLE", "gw:SourceIp" ...); values are strings in the forms
 * docs/POLICY.md gives (booleans "true"/"false", dates RFC 3339 or epoch seconds, IP
 * addresses v4 or v6). hsm:PrincipalName, hsm:Tenant and gw:Group default to the fields
 * above; gw:CurrentTime defaults to the clock. Errors as for the setters.
 */
int pol_request_set(struct pol_request *req, const char *key, const char *value) POL_WUR;
int pol_request_add(struct pol_request *req, const char *key, const char *value) POL_WUR;

/* ---- evaluation ----------------------------------------------------------------------- */

enum pol_result {
	POL_IMPLICIT_DENY = 0, /* no statement allowed it (the default) */
	POL_EXPLICIT_DENY = 1, /* a deny statement matched */
	POL_ALLOWED = 2,       /* an allow statement matched and no deny did */
};

/* "allowed", "explicit_deny", "implicit_deny" (the names in tests: blocks and audit). */
const char *pol_result_name(enum pol_result r);

/* The lists a decision keeps. Shadow lists hold statements with `mode: shadow`. */
enum pol_list {
	POL_LIST_ALLOW = 0,
	POL_LIST_DENY = 1,
	POL_LIST_SHADOW_ALLOW = 2,
	POL_LIST_SHADOW_DENY = 3,
};

struct pol_decision;

/* A new decision buffer, reused across pol_evaluate() calls. Returns 0 or POL_ERR_NOMEM. */
int pol_decision_new(struct pol_decision **out) POL_WUR;
void pol_decision_free(struct pol_decision *dec);

/*
 * Evaluates `req` against `pol` into `dec`. Every statement whose action set contains the
 * request's action is considered (statements are indexed by action at load), and every
 * statement that applies is recorded, so the decision can name all matching allows and
 * denies. Does not allocate.
 *
 * Returns 0 when the evaluation ran (the outcome is in pol_decision_result(); 0 does NOT
 * mean allowed), or a negative POL_ERR_* when it could not run to the end (NULL
 * arguments, a request without principal/action/resource, a context value of the wrong
 * type for an operator): then the decision is POL_IMPLICIT_DENY (or POL_EXPLICIT_DENY if a
 * deny already matched) and pol_decision_error() holds the code. Fail closed.
 *
 * The decision refers to statement ids inside `pol` and key names inside `pol`: keep a
 * reference on the policy while reading it.
 */
int pol_evaluate(const struct pol_policy *pol, const struct pol_request *req,
                 struct pol_decision *dec) POL_WUR;

/* The enforced outcome. */
enum pol_result pol_decision_result(const struct pol_decision *dec);

/* The outcome had every `mode: shadow` statement been enforced too (equal to the result
 * when the policy has no shadow statements). Record it; never enforce it. */
enum pol_result pol_decision_shadow_result(const struct pol_decision *dec);

/* 0, or the POL_ERR_* that cut the evaluation short. */
int pol_decision_error(const struct pol_decision *dec);

/* How many statements of a list matched (exact, may exceed POL_DECISION_MAX_SIDS), and
 * the sid / source line of the i-th kept one (i < min(count, POL_DECISION_MAX_SIDS); NULL
 * or 0 past the end). Strings live as long as the policy. */
size_t pol_decision_count(const struct pol_decision *dec, enum pol_list list);
const char *pol_decision_sid(const struct pol_decision *dec, enum pol_list list, size_t i);
unsigned pol_decision_line(const struct pol_decision *dec, enum pol_list list, size_t i);

/* Condition keys a considered statement referenced that the request did not carry (the
 * simulator's "missing context values"); strings live as long as the policy. */
size_t pol_decision_missing_count(const struct pol_decision *dec);
const char *pol_decision_missing(const struct pol_decision *dec, size_t i);

/*
 * Writes a human-readable explanation of `dec` (several lines: the outcome, the statement
 * that decided it or that none did, the other matches, missing keys, the shadow outcome)
 * into buf, always NUL terminated. Returns 0, or POL_ERR_TRUNCATED.
 */
int pol_decision_explain(const struct pol_decision *dec, char *buf, size_t len) POL_WUR;

/* ---- the `tests:` block --------------------------------------------------------------- */

/* One test case result: `name` and `line` of the case, whether it passed, the decision it
 * got and, when it failed, why. All pointers are valid only during the call. */
typedef void (*pol_test_fn)(const char *name, unsigned line, int passed,
                            const struct pol_decision *dec, const char *why, void *arg);

/* Runs every case of the policy's `tests:` block through pol_evaluate(), calling `fn`
 * (may be NULL) per case. Returns 0 when all passed (or there were none), POL_ERR_LINT
 * when some failed, POL_ERR_NOMEM. *passed and *failed (may be NULL) get the counts. */
int pol_policy_run_tests(const struct pol_policy *pol, pol_test_fn fn, void *arg, unsigned *passed,
                         unsigned *failed) POL_WUR;

/* ---- vocabulary ----------------------------------------------------------------------- */

/* 1 when `action` is in the action vocabulary (case-insensitive), else 0. */
int pol_action_known(const char *action);

/* The action table, for tools and docs: name, the PKCS #11 functions or gateway operation
 * that need it, and the resource it is checked against. i < pol_action_count(); NULL past
 * the end. */
size_t pol_action_count(void);
const char *pol_action_name(size_t i);
const char *pol_action_functions(size_t i);
const char *pol_action_resource(size_t i);

/* 1 when `key` is a known condition key (including the KeyAttr/, Template/, PrincipalTag/
 * families), else 0. */
int pol_condition_key_known(const char *key);

#endif
