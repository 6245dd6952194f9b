/*
 * hsm-partitions/part_authz.h — private to hsm-partitions/: key-level policy decisions
 * (authz.c). The worker calls part_authz_check() at every call that acts on a key or creates
 * one, before doing anything else; a denial answers CKR_ACTION_PROHIBITED.
 */
#ifndef HSMGATE_PART_AUTHZ_H
#define HSMGATE_PART_AUTHZ_H

#include <stddef.h>

#include <p11-kit/pkcs11.h>

#include "proto/proto.h"

enum part_authz_err {
	PART_AUTHZ_ERR_NOMEM = -5100,
	PART_AUTHZ_ERR_POLICY = -5101, /* the policy text does not load; the old one stays */
};

struct part_authz;

/* A key (any object) as the policy sees it: its immutable ref and its attributes. Only the
 * bool and ulong attributes, CKA_LABEL and CKA_ID are read; byte strings such as CKA_VALUE
 * are ignored by kind, so passing the whole attribute list is safe. */
struct part_authz_key {
	const char *ref;
	const CK_ATTRIBUTE *attrs;
	CK_ULONG n;
};

/* One call to decide. `action` (and `action2` with `key2`, e.g. hsm.keys.export on the key
 * being wrapped) name the policy actions; `key` is NULL for actions on the partition (key
 * creation). `tmpl` is the template of a key being created, unwrapped, derived or copied. */
struct part_authz_call {
	const char *action;
	const struct part_authz_key *key;
	const char *action2;
	const struct part_authz_key *key2;
	const char *function; /* "C_SignInit" */
	int has_mech;
	CK_MECHANISM_TYPE mech;
	const CK_ATTRIBUTE *tmpl;
	CK_ULONG ntmpl;
	const char *user_type; /* "SO", "USER", "NONE", or NULL when not relevant */
	int has_session;
	int session_rw;
};

/* The decision, for the audit event and the worker's log: result name, the action that
 * decided (the first denied one, or the last allowed), and the deciding sids. */
struct part_authz_result {
	const char *result; /* static: "allowed", "explicit_deny", "implicit_deny" */
	char action[64];
	char sids[256];
};

/* A decider for one partition. Returns 0 or PART_AUTHZ_ERR_NOMEM. */
int part_authz_new(const char *tenant, const char *partition, struct part_authz **out)
        __attribute__((warn_unused_result));
void part_authz_free(struct part_authz *a);

/* Replaces the policy with `text` (the policy file's bytes, `name` for diagnostics); an empty
 * text removes it. On failure the old policy stays in force and err says why. */
int part_authz_set_policy(struct part_authz *a, const char *text, size_t len, const char *name,
                          char *err, size_t errsz) __attribute__((warn_unused_result));
int part_authz_has_policy(const struct part_authz *a);

/* CKR_OK when every action of `c` is allowed, CKR_ACTION_PROHIBITED otherwise (also on any
 * evaluation error: fail closed). Without a policy, everything is allowed. `res` may be NULL. */
CK_RV part_authz_check(struct part_authz *a, const struct proto_ctx *ctx,
                       const struct part_authz_call *c, struct part_authz_result *res);

#endif /* HSMGATE_PART_AUTHZ_H */
