/*
 * hsm-partitions/authz.c — the worker's half of policy enforcement: key-level actions.
 *
 * The gateway decides the actions whose resource is the partition and whose condition keys
 * it knows (docs/POLICY.md, "Enforcement"). Actions on a key, and the key-creating actions
 * whose conditions read the template, need the object a handle names, which only the worker
 * knows: they are decided here, with the same pol_ code and the same policy text, which the
 * gateway sends on start and on every reload (PROTO_IPC_POLICY).
 *
 * What goes into a request is chosen by attribute kind, never by value: bools and ulongs of
 * the key or template, its label and id. A key's value, a private exponent or any other
 * byte-string attribute never reaches the policy engine, so it can never reach an audit
 * record or an explanation either.
 */
#include "hsm-partitions/part_authz.h"

#include "policy/policy.h"
#include "proto/proto.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct part_authz {
	struct pol_policy *pol; /* NULL: no policy configured */
	struct pol_request *req;
	struct pol_decision *dec;
	char tenant[64];
	char partition[64];
};

static const struct {
	CK_ULONG v;
	const char *name;
} class_names[] =
        {
                {CKO_DATA, "CKO_DATA"},
                {CKO_CERTIFICATE, "CKO_CERTIFICATE"},
                {CKO_PUBLIC_KEY, "CKO_PUBLIC_KEY"},
                {CKO_PRIVATE_KEY, "CKO_PRIVATE_KEY"},
                {CKO_SECRET_KEY, "CKO_SECRET_KEY"},
                {CKO_HW_FEATURE, "CKO_HW_FEATURE"},
                {CKO_DOMAIN_PARAMETERS, "CKO_DOMAIN_PARAMETERS"},
                {CKO_MECHANISM, "CKO_MECHANISM"},
                {CKO_OTP_KEY, "CKO_OTP_KEY"},
},
  keytype_names[] = {
          {CKK_RSA, "CKK_RSA"},
          {CKK_DSA, "CKK_DSA"},
          {CKK_DH, "CKK_DH"},
          {CKK_EC, "CKK_EC"},
          {CKK_GENERIC_SECRET, "CKK_GENERIC_SECRET"},
          {CKK_AES, "CKK_AES"},
          {CKK_DES3, "CKK_DES3"},
          {CKK_EC_EDWARDS, "CKK_EC_EDWARDS"},
};

static const char *
lookup(const void *table, size_t n, CK_ULONG v)
{
	const struct {
		CK_ULONG v;
		const char *name;
	} *t = table;
	size_t i;

	for (i = 0; i < n; i++) {
		if (t[i].v == v) {
			return t[i].name;
		}
	}
	return NULL;
}

int
part_authz_new(const char *tenant, const char *partition, struct part_authz **out)
{
	struct part_authz *a;
	int r;

	*out = NULL;
	if ((a = calloc(1, sizeof(*a))) == NULL) {
		return PART_AUTHZ_ERR_NOMEM;
	}
	snprintf(a->tenant, sizeof(a->tenant), "%s", tenant);
	snprintf(a->partition, sizeof(a->partition), "%s", partition);
	if ((r = pol_request_new(&a->req)) != 0 || (r = pol_decision_new(&a->dec)) != 0) {
		part_authz_free(a);
		return PART_AUTHZ_ERR_NOMEM;
	}
	*out = a;
	return 0;
}

void
part_authz_free(struct part_authz *a)
{
	if (a == NULL) {
		return;
	}
	pol_policy_free(a->pol);
	pol_request_free(a->req);
	pol_decision_free(a->dec);
	free(a);
}

int
part_authz_set_policy(struct part_authz *a, const char *text, size_t len, const char *name,
                      char *err, size_t errsz)
{
	struct pol_policy *pol = NULL;
	struct pol_diag diag;
	int r;

	if (len == 0) {
		/* An empty text means "no policy configured", as in the gateway. */
		pol_policy_free(a->pol);
		a->pol = NULL;
		return 0;
	}
	memset(&diag, 0, sizeof(diag));
	if ((r = pol_policy_load_buffer(text, len, name, &pol, &diag)) != 0) {
		/* The old policy stays in force: the gateway validated this text before sending
		 * it, so a failure here is a bug worth a loud line, not a reason to open up. */
		if (pol_diag_format(&diag, err, errsz) != 0) {
			snprintf(err, errsz, "%s: %s", name, pol_strerror(r));
		}
		return PART_AUTHZ_ERR_POLICY;
	}
	pol_policy_free(a->pol);
	a->pol = pol; /* transferred */
	return 0;
}

int
part_authz_has_policy(const struct part_authz *a)
{
	return a->pol != NULL;
}

/* Adds the policy-visible attributes of `t` as `<prefix><CKA_NAME>` condition keys. */
static int
add_attrs(struct pol_request *req, const char *prefix, const CK_ATTRIBUTE *t, CK_ULONG n,
          int describe_key)
{
	char key[96], val[96];
	const char *name, *s;
	CK_ULONG i, j, v;
	int r;

	for (i = 0; i < n; i++) {
		if (t[i].pValue == NULL || (name = proto_attr_name(t[i].type)) == NULL) {
			continue;
		}
		snprintf(key, sizeof(key), "%s%s", prefix, name);
		switch (proto_attr_kind(t[i].type)) {
		case PROTO_AV_BOOL:
			if (t[i].ulValueLen != sizeof(CK_BBOOL)) {
				continue;
			}
			s = *(const CK_BBOOL *)t[i].pValue ? "true" : "false";
			if ((r = pol_request_set(req, key, s)) != 0) {
				return r;
			}
			break;
		case PROTO_AV_ULONG:
			if (t[i].ulValueLen != sizeof(CK_ULONG)) {
				continue;
			}
			v = *(const CK_ULONG *)t[i].pValue;
			s = NULL;
			if (t[i].type == CKA_CLASS) {
				s = lookup(class_names,
				           sizeof(class_names) / sizeof(class_names[0]), v);
			} else if (t[i].type == CKA_KEY_TYPE) {
				s = lookup(keytype_names,
				           sizeof(keytype_names) / sizeof(keytype_names[0]), v);
			}
			if (s == NULL) {
				snprintf(val, sizeof(val), "%lu", (unsigned long)v);
				s = val;
			}
			if ((r = pol_request_set(req, key, s)) != 0) {
				return r;
			}
			if (describe_key && t[i].type == CKA_CLASS &&
			    (r = pol_request_set(req, "hsm:KeyClass", s)) != 0) {
				return r;
			}
			if (describe_key && t[i].type == CKA_KEY_TYPE &&
			    (r = pol_request_set(req, "hsm:KeyType", s)) != 0) {
				return r;
			}
			break;
		case PROTO_AV_BYTES:
			/* Only the label and the id: names, not secrets. */
			if (t[i].type == CKA_LABEL) {
				char label[256];
				size_t len = t[i].ulValueLen < sizeof(label) - 1
				                     ? t[i].ulValueLen
				                     : sizeof(label) - 1;

				memcpy(label, t[i].pValue, len);
				label[len] = '\0';
				if (memchr(label, '\0', len) != NULL) {
					continue; /* an embedded NUL cannot be matched honestly */
				}
				if ((r = pol_request_set(req, key, label)) != 0 ||
				    (describe_key &&
				     (r = pol_request_set(req, "hsm:KeyLabel", label)) != 0)) {
					return r;
				}
			} else if (t[i].type == CKA_ID && t[i].ulValueLen <= 64) {
				char hex[129];
				const CK_BYTE *p = t[i].pValue;

				for (j = 0; j < t[i].ulValueLen; j++) {
					snprintf(hex + 2 * j, 3, "%02x", p[j]);
				}
				hex[2 * t[i].ulValueLen] = '\0';
				if ((r = pol_request_set(req, key, hex)) != 0 ||
				    (describe_key &&
				     (r = pol_request_set(req, "hsm:KeyId", hex)) != 0)) {
					return r;
				}
			}
			break;
		case PROTO_AV_NONE:
		case PROTO_AV_TEMPLATE:
		case PROTO_AV_MECHS:
		case PROTO_AV_DATE:
		default:
			break;
		}
	}
	return 0;
}

static int
fill(struct part_authz *a, const struct proto_ctx *ctx, const struct part_authz_call *c,
     const char *action, const struct part_authz_key *key)
{
	char resource[256], partition[192], ip[64], now[32];
	struct pol_request *req = a->req;
	struct tm tm;
	time_t t = time(NULL);
	const char *mech;
	uint32_t i;
	int r;

	snprintf(partition, sizeof(partition), "crn:hsmgate:%s:partition:%s", a->tenant,
	         a->partition);
	if (key != NULL && key->ref != NULL) {
		snprintf(resource, sizeof(resource), "%s:key:%s", partition, key->ref);
	} else {
		snprintf(resource, sizeof(resource), "%s", partition);
	}
	proto_source_ip(ctx->source, ip, sizeof(ip));
	gmtime_r(&t, &tm);
	strftime(now, sizeof(now), "%Y-%m-%dT%H:%M:%SZ", &tm);
	pol_request_reset(req);
	if ((r = pol_request_set_principal(req, ctx->principal)) != 0 ||
	    (r = pol_request_set_tenant(req, ctx->tenant)) != 0 ||
	    (r = pol_request_set_action(req, action)) != 0 ||
	    (r = pol_request_set_resource(req, resource)) != 0 ||
	    (r = pol_request_set(req, "hsm:PrincipalName", ctx->principal)) != 0 ||
	    (r = pol_request_set(req, "hsm:Tenant", ctx->tenant)) != 0 ||
	    (r = pol_request_set(req, "hsm:Partition", partition)) != 0 ||
	    (r = pol_request_set(req, "gw:CurrentTime", now)) != 0 ||
	    (r = pol_request_set(req, "gw:CredentialType",
	                         ctx->cred == PROTO_CRED_APIKEY ? "apikey" : "certificate")) != 0 ||
	    (ip[0] != '\0' && (r = pol_request_set(req, "gw:SourceIp", ip)) != 0) ||
	    (c->function != NULL && (r = pol_request_set(req, "hsm:Function", c->function)) != 0)) {
		return r;
	}
	for (i = 0; i < ctx->ngroups && i < sizeof(ctx->groups) / sizeof(ctx->groups[0]); i++) {
		if ((r = pol_request_add_group(req, ctx->groups[i])) != 0) {
			return r;
		}
	}
	if (c->has_mech && (mech = proto_mech_name(c->mech)) != NULL &&
	    (r = pol_request_set(req, "hsm:Mechanism", mech)) != 0) {
		return r;
	}
	if (c->user_type != NULL && (r = pol_request_set(req, "hsm:UserType", c->user_type)) != 0) {
		return r;
	}
	if (c->has_session &&
	    (r = pol_request_set(req, "hsm:SessionRW", c->session_rw ? "true" : "false")) != 0) {
		return r;
	}
	if (key != NULL && (r = add_attrs(req, "hsm:KeyAttr/", key->attrs, key->n, 1)) != 0) {
		return r;
	}
	if (c->tmpl != NULL &&
	    (r = add_attrs(req, "hsm:Template/", c->tmpl, c->ntmpl, key == NULL)) != 0) {
		return r;
	}
	return 0;
}

/* Decides one action; the caller combines several (C_WrapKey needs two). */
static CK_RV
decide(struct part_authz *a, const struct proto_ctx *ctx, const struct part_authz_call *c,
       const char *action, const struct part_authz_key *key, struct part_authz_result *res)
{
	enum pol_result result;
	const char *sid;
	size_t i, n;

	if (fill(a, ctx, c, action, key) != 0 || pol_evaluate(a->pol, a->req, a->dec) != 0) {
		/* Fail closed: an evaluation error is a deny (issue 4, "Enforcement"). */
		result = POL_IMPLICIT_DENY;
	} else {
		result = pol_decision_result(a->dec);
	}
	if (res != NULL) {
		res->result = result == POL_ALLOWED         ? "allowed"
		              : result == POL_EXPLICIT_DENY ? "explicit_deny"
		                                            : "implicit_deny";
		snprintf(res->action, sizeof(res->action), "%s", action);
		res->sids[0] = '\0';
		n = pol_decision_count(a->dec, result == POL_EXPLICIT_DENY ? POL_LIST_DENY
		                                                           : POL_LIST_ALLOW);
		for (i = 0; i < n; i++) {
			sid = pol_decision_sid(
			        a->dec,
			        result == POL_EXPLICIT_DENY ? POL_LIST_DENY : POL_LIST_ALLOW, i);
			if (sid != NULL) {
				size_t used = strlen(res->sids);

				snprintf(res->sids + used, sizeof(res->sids) - used, "%s%s",
				         used > 0 ? "," : "", sid);
			}
		}
	}
	return result == POL_ALLOWED ? CKR_OK : CKR_ACTION_PROHIBITED;
}

CK_RV
part_authz_check(struct part_authz *a, const struct proto_ctx *ctx, const struct part_authz_call *c,
                 struct part_authz_result *res)
{
	CK_RV rv;

	if (res != NULL) {
		memset(res, 0, sizeof(*res));
		res->result = "allowed";
	}
	if (a == NULL || a->pol == NULL) {
		/* No policy configured: authenticated callers act within their tenant's partitions,
		 * which the gateway's routing already guarantees. */
		return CKR_OK;
	}
	if ((rv = decide(a, ctx, c, c->action, c->key, res)) != CKR_OK) {
		return rv;
	}
	if (c->action2 != NULL) {
		/* A call that needs several actions is allowed only if every one is (POLICY.md). */
		rv = decide(a, ctx, c, c->action2, c->key2, res);
	}
	return rv;
}
