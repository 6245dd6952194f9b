/*
 * gateway/policy.c — the gateway's half of policy enforcement (docs/POLICY.md, "Enforcement").
 *
 * The gateway decides the actions whose resource is the partition (or the tenant) and whose
 * condition keys it knows itself: token, slot, mechanism, session, random, digest and key
 * listing. Actions on a key (hsm.crypto.sign, hsm.keys.destroy ...) and the key-creating
 * actions (whose conditions read the template) need the object a handle names, which only
 * the worker knows: the gateway leaves them to the worker. Continuation calls of a
 * multi-part operation (C_DigestUpdate, C_FindObjects ...) inherit the decision taken at
 * their *Init call and are not evaluated again.
 *
 * The compiled policy is s->policy, replaced only on the loop thread (reload): a decision is
 * taken synchronously, so it needs no reference of its own; its sids are copied into
 * struct gw_decision before the loop runs anything else.
 */
#include "gateway/gw_int.h"
#include "policy/policy.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Where a call's policy decision is taken. */
enum gw_pol_where {
	GW_POL_NONE = 0,    /* no decision of its own: inherits its *Init call's, or none */
	GW_POL_GATEWAY = 1, /* here, against the partition */
	GW_POL_WORKER = 2,  /* in the worker (key-level, or conditions on the template) */
};

struct gw_pol_map {
	uint16_t call;
	const char *action; /* the action of the policy vocabulary (policy/vocab.c) */
	enum gw_pol_where where;
};

/*
 * The call table's `action` strings name calls for routing and audit; a few differ from the
 * policy vocabulary (hsm.slot.read, hsm.token.mechanisms, hsm.session.getstate ...), and
 * some calls need another action than their table entry (C_DigestKey reads a key). This
 * table is the gateway's translation, following docs/POLICY.md's action table.
 */
static const struct gw_pol_map pol_map[] = {
        {PROTO_CALL_C_GetSlotInfo, "hsm.token.read", GW_POL_GATEWAY},
        {PROTO_CALL_C_GetTokenInfo, "hsm.token.read", GW_POL_GATEWAY},
        {PROTO_CALL_C_GetMechanismList, "hsm.mechanism.read", GW_POL_GATEWAY},
        {PROTO_CALL_C_GetMechanismInfo, "hsm.mechanism.read", GW_POL_GATEWAY},
        {PROTO_CALL_C_InitToken, "hsm.token.init", GW_POL_GATEWAY},
        {PROTO_CALL_C_InitPIN, "hsm.token.initpin", GW_POL_GATEWAY},
        {PROTO_CALL_C_SetPIN, "hsm.token.setpin", GW_POL_GATEWAY},
        {PROTO_CALL_C_OpenSession, "hsm.session.open", GW_POL_GATEWAY},
        {PROTO_CALL_C_CloseSession, "hsm.session.close", GW_POL_GATEWAY},
        {PROTO_CALL_C_CloseAllSessions, "hsm.session.close", GW_POL_GATEWAY},
        {PROTO_CALL_C_GetSessionInfo, "hsm.session.read", GW_POL_GATEWAY},
        {PROTO_CALL_C_GetOperationState, "hsm.session.exportstate", GW_POL_GATEWAY},
        {PROTO_CALL_C_SetOperationState, "hsm.session.importstate", GW_POL_GATEWAY},
        {PROTO_CALL_C_Login, "hsm.session.login", GW_POL_GATEWAY},
        {PROTO_CALL_C_Logout, "hsm.session.logout", GW_POL_GATEWAY},
        {PROTO_CALL_C_FindObjectsInit, "hsm.keys.list", GW_POL_GATEWAY},
        {PROTO_CALL_C_DigestInit, "hsm.crypto.digest", GW_POL_GATEWAY},
        {PROTO_CALL_C_SeedRandom, "hsm.random.seed", GW_POL_GATEWAY},
        {PROTO_CALL_C_GenerateRandom, "hsm.random.generate", GW_POL_GATEWAY},
        {PROTO_CALL_C_GetFunctionStatus, "hsm.session.read", GW_POL_GATEWAY},
        {PROTO_CALL_C_CancelFunction, "hsm.session.read", GW_POL_GATEWAY},

        {PROTO_CALL_C_CreateObject, "hsm.keys.import", GW_POL_WORKER},
        {PROTO_CALL_C_CopyObject, "hsm.keys.copy", GW_POL_WORKER},
        {PROTO_CALL_C_DestroyObject, "hsm.keys.destroy", GW_POL_WORKER},
        {PROTO_CALL_C_GetObjectSize, "hsm.keys.readmetadata", GW_POL_WORKER},
        {PROTO_CALL_C_GetAttributeValue, "hsm.keys.readattributes", GW_POL_WORKER},
        {PROTO_CALL_C_SetAttributeValue, "hsm.keys.setattributes", GW_POL_WORKER},
        {PROTO_CALL_C_EncryptInit, "hsm.crypto.encrypt", GW_POL_WORKER},
        {PROTO_CALL_C_DecryptInit, "hsm.crypto.decrypt", GW_POL_WORKER},
        {PROTO_CALL_C_DigestKey, "hsm.crypto.digestkey", GW_POL_WORKER},
        {PROTO_CALL_C_SignInit, "hsm.crypto.sign", GW_POL_WORKER},
        {PROTO_CALL_C_SignRecoverInit, "hsm.crypto.sign", GW_POL_WORKER},
        {PROTO_CALL_C_VerifyInit, "hsm.crypto.verify", GW_POL_WORKER},
        {PROTO_CALL_C_VerifyRecoverInit, "hsm.crypto.verify", GW_POL_WORKER},
        {PROTO_CALL_C_GenerateKey, "hsm.keys.generate", GW_POL_WORKER},
        {PROTO_CALL_C_GenerateKeyPair, "hsm.keys.generatepair", GW_POL_WORKER},
        {PROTO_CALL_C_WrapKey, "hsm.keys.wrap", GW_POL_WORKER},
        {PROTO_CALL_C_UnwrapKey, "hsm.keys.unwrap", GW_POL_WORKER},
        {PROTO_CALL_C_DeriveKey, "hsm.keys.derive", GW_POL_WORKER},
};

static const struct gw_pol_map *
map_find(uint16_t call)
{
	size_t i;

	for (i = 0; i < sizeof(pol_map) / sizeof(pol_map[0]); i++) {
		if (pol_map[i].call == call) {
			return &pol_map[i];
		}
	}
	return NULL;
}

const char *
gw_policy_action(uint16_t call, int *gateway_decides)
{
	const struct gw_pol_map *m = map_find(call);
	const struct proto_call_info *ci;

	if (gateway_decides != NULL) {
		*gateway_decides = m != NULL && m->where == GW_POL_GATEWAY;
	}
	if (m != NULL) {
		return m->action;
	}
	/* Continuations and gateway-answered calls: their table action names them in audit. */
	ci = proto_call_get(call);
	return ci != NULL ? ci->action : NULL;
}

int
gw_policy_load(const char *path, struct pol_policy **out, char *err, size_t errsz)
{
	return gw_policy_load_text(path, out, NULL, NULL, err, errsz);
}

int
gw_policy_load_text(const char *path, struct pol_policy **out, char **text, size_t *textlen,
                    char *err, size_t errsz)
{
	struct pol_diag diag;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = NULL;
	int r;

	*out = NULL;
	if (text != NULL) {
		*text = NULL;
		*textlen = 0;
	}
	/* The bytes are read once and compiled from memory, so that the text the workers get
	 * (PROTO_IPC_POLICY) is exactly the text this policy was compiled from. */
	if ((f = fopen(path, "re")) == NULL) {
		snprintf(err, errsz, "%s: %s", path, strerror(errno));
		r = GW_ERR_CONFIG;
		goto out;
	}
	if ((buf = malloc(GW_POLICY_MAX + 1)) == NULL) {
		snprintf(err, errsz, "%s: out of memory", path);
		r = GW_ERR_NOMEM;
		goto out;
	}
	len = fread(buf, 1, GW_POLICY_MAX + 1, f);
	if (ferror(f) || len > GW_POLICY_MAX) {
		snprintf(err, errsz, "%s: %s", path,
		         ferror(f) ? "read error"
		                   : "larger than 512 KiB, the most a worker accepts");
		r = GW_ERR_CONFIG;
		goto out;
	}
	memset(&diag, 0, sizeof(diag));
	if ((r = pol_policy_load_buffer(buf, len, path, out, &diag)) != 0) {
		/* file:line:column: error: message (key 'k') */
		if (diag.file[0] == '\0' || pol_diag_format(&diag, err, errsz) != 0) {
			snprintf(err, errsz, "%s: %s", path, pol_strerror(r));
		}
		r = GW_ERR_CONFIG;
		goto out;
	}
	if (text != NULL) {
		*text = buf;
		*textlen = len;
		buf = NULL; /* transferred */
	}
	r = 0;
out:
	if (f != NULL) {
		fclose(f);
	}
	free(buf);
	return r;
}

void
gw_partition_crn(const struct gw_part *part, char *out, size_t outsz)
{
	snprintf(out, outsz, "crn:hsmgate:%s:partition:%s", part->tenant, part->name);
}

static const char *
user_type_name(CK_ULONG t)
{
	switch (t) {
	case CKU_SO:
		return "SO";
	case CKU_USER:
		return "USER";
	case CKU_CONTEXT_SPECIFIC:
		return "CONTEXT_SPECIFIC";
	default:
		return "NONE";
	}
}

/* The request fields the gateway reads for conditions (never the PIN of C_Login). */
static int
call_context(struct pol_request *req, uint16_t call, const uint8_t *body, size_t len)
{
	struct proto_cur cur;
	CK_ULONG first = 0, second = 0, cap = 0;
	int has_buf = 0;
	char num[32];

	if (body == NULL) {
		return 0;
	}
	proto_cur_init(&cur, body, len);
	switch (call) {
	case PROTO_CALL_C_OpenSession: /* "uu": slot, flags */
		if (proto_get_ulong(&cur, &first) == 0 && proto_get_ulong(&cur, &second) == 0) {
			return pol_request_set(req, "hsm:SessionRW",
			                       (second & CKF_RW_SESSION) != 0 ? "true" : "false");
		}
		return 0;
	case PROTO_CALL_C_Login: /* "uuy": session, user type, PIN (not read) */
		if (proto_get_ulong(&cur, &first) == 0 && proto_get_ulong(&cur, &second) == 0) {
			return pol_request_set(req, "hsm:UserType", user_type_name(second));
		}
		return 0;
	case PROTO_CALL_C_GenerateRandom: /* "uo": session, output buffer */
		if (proto_get_ulong(&cur, &first) == 0 &&
		    proto_get_outbuf_req(&cur, &has_buf, &cap) == 0) {
			snprintf(num, sizeof(num), "%lu", (unsigned long)cap);
			return pol_request_set(req, "hsm:Length", num);
		}
		return 0;
	default:
		return 0;
	}
}

static int
fill_request(struct pol_request *req, const struct proto_ctx *who, const char *action,
             const char *resource, const char *partition, const char *function)
{
	char ip[64], now[32];
	struct tm tm;
	time_t t = time(NULL);
	uint32_t i;
	int r;

	proto_source_ip(who->source, ip, sizeof(ip));
	gmtime_r(&t, &tm);
	strftime(now, sizeof(now), "%Y-%m-%dT%H:%M:%SZ", &tm);
	pol_request_reset(req);
	if ((r = pol_request_set_principal(req, who->principal)) != 0 ||
	    (r = pol_request_set_tenant(req, who->tenant)) != 0 ||
	    (r = pol_request_set_action(req, action)) != 0 ||
	    (r = pol_request_set_resource(req, resource)) != 0 ||
	    (r = pol_request_set(req, "hsm:PrincipalName", who->principal)) != 0 ||
	    (r = pol_request_set(req, "hsm:Tenant", who->tenant)) != 0 ||
	    (r = pol_request_set(req, "gw:CurrentTime", now)) != 0 ||
	    (r = pol_request_set(req, "gw:CredentialType",
	                         who->cred == PROTO_CRED_CERT ? "certificate" : "apikey")) != 0 ||
	    (ip[0] != '\0' && (r = pol_request_set(req, "gw:SourceIp", ip)) != 0) ||
	    (partition != NULL && (r = pol_request_set(req, "hsm:Partition", partition)) != 0) ||
	    (function != NULL && (r = pol_request_set(req, "hsm:Function", function)) != 0)) {
		return r;
	}
	for (i = 0; i < who->ngroups && i < 8; i++) {
		if (who->groups[i][0] != '\0' &&
		    (r = pol_request_add_group(req, who->groups[i])) != 0) {
			return r;
		}
	}
	return 0;
}

static void
copy_sids(struct gw_decision *d, const struct pol_decision *dec, enum pol_list list)
{
	size_t i, n = pol_decision_count(dec, list);
	const char *sid;

	for (i = 0; i < n && i < POL_DECISION_MAX_SIDS && d->nsids < GW_DECISION_MAX_SIDS; i++) {
		if ((sid = pol_decision_sid(dec, list, i)) != NULL) {
			snprintf(d->sids[d->nsids++], sizeof(d->sids[0]), "%s", sid);
		}
	}
}

static void
copy_shadow(struct gw_decision *d, const struct pol_decision *dec)
{
	enum pol_list list;
	const char *sid;

	d->shadow = pol_decision_shadow_result(dec);
	list = d->shadow == POL_EXPLICIT_DENY ? POL_LIST_SHADOW_DENY : POL_LIST_SHADOW_ALLOW;
	sid = pol_decision_count(dec, list) > 0 ? pol_decision_sid(dec, list, 0) : NULL;
	snprintf(d->shadow_sid, sizeof(d->shadow_sid), "%s", sid != NULL ? sid : "");
}

/* One evaluation into d; a request that cannot be built is an evaluation error: deny. */
static void
evaluate(struct gw_server *s, const struct proto_ctx *who, const char *action, const char *resource,
         const char *partition, const char *function, uint16_t call, const uint8_t *body,
         size_t len, struct gw_decision *d)
{
	int r;

	d->made = 1;
	d->result = POL_IMPLICIT_DENY;
	d->shadow = POL_IMPLICIT_DENY;
	snprintf(d->action, sizeof(d->action), "%s", action);
	if ((r = fill_request(s->pol_req, who, action, resource, partition, function)) != 0 ||
	    (r = call_context(s->pol_req, call, body, len)) != 0) {
		d->error = r;
		return;
	}
	/* A non-zero return leaves a deny in the decision (fail closed): only the result is read.
	 */
	d->error = pol_evaluate(s->policy, s->pol_req, s->pol_dec);
	d->result = pol_decision_result(s->pol_dec);
	copy_sids(d, s->pol_dec, d->result == POL_EXPLICIT_DENY ? POL_LIST_DENY : POL_LIST_ALLOW);
	copy_shadow(d, s->pol_dec);
}

static void
log_decision(const struct proto_ctx *who, const char *resource, const char *function,
             const struct gw_decision *d)
{
	if (d->result != POL_ALLOWED) {
		gw_log(GW_LOG_INFO, "policy", "denied",
		       "principal=%s action=%s resource=%s function=%s result=%s sid=%s error=%d",
		       who->principal, d->action, resource, function != NULL ? function : "-",
		       pol_result_name(d->result), d->nsids > 0 ? d->sids[0] : "-", d->error);
	}
	if (d->shadow != d->result) {
		gw_log(GW_LOG_INFO, "policy", "shadow decision differs (not enforced)",
		       "principal=%s action=%s resource=%s result=%s shadow_result=%s "
		       "shadow_sid=%s",
		       who->principal, d->action, resource, pol_result_name(d->result),
		       pol_result_name(d->shadow), d->shadow_sid[0] != '\0' ? d->shadow_sid : "-");
	}
}

CK_RV
gw_policy_partition_check(struct gw_server *s, const struct proto_ctx *who, uint16_t call,
                          const struct gw_part *part, const uint8_t *body, size_t len,
                          struct gw_decision *d)
{
	const struct proto_call_info *ci = proto_call_get(call);
	const char *action;
	char crn[160];
	int here = 0;

	memset(d, 0, sizeof(*d));
	action = gw_policy_action(call, &here);
	/* Without a policy file: every authenticated caller within its tenant (route.c already
	 * kept it to its own tenant's slots). */
	if (s->policy == NULL || !here || action == NULL) {
		return CKR_OK;
	}
	gw_partition_crn(part, crn, sizeof(crn));
	evaluate(s, who, action, crn, crn, ci != NULL ? ci->name : NULL, call, body, len, d);
	log_decision(who, crn, ci != NULL ? ci->name : NULL, d);
	return d->result == POL_ALLOWED ? CKR_OK : CKR_ACTION_PROHIBITED;
}

int
gw_policy_connect_check(struct gw_server *s, const struct proto_ctx *who, struct gw_decision *d)
{
	char crn[128];

	memset(d, 0, sizeof(*d));
	if (s->policy == NULL) {
		return 0;
	}
	snprintf(crn, sizeof(crn), "crn:hsmgate:%s", who->tenant);
	evaluate(s, who, "hsm.session.connect", crn, NULL, NULL, 0, NULL, 0, d);
	log_decision(who, crn, NULL, d);
	return d->result == POL_ALLOWED ? 0 : GW_ERR_AUTH;
}
