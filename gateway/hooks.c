/*
 * gateway/hooks.c — where policy/ and audit/ plug into the gateway.
 *
 * Each hook is the single place its decision or event happens, so wiring the real modules in
 * is a change to this file only:
 *   gw_policy_partition_check  one partition-level decision per forwarded request
 *   gw_audit_request           one event per answered request
 *   gw_audit_auth_failure      one event per refused authentication
 *   gw_audit_worker_event      events a worker asks the gateway to record (STYLE rule 11)
 * Until then the decision is "allow within the caller's own tenant" (route.c already refused
 * other tenants' slots) and events go to the debug log.
 */
#include "gateway/gw_int.h"

#include <stdio.h>

CK_RV
gw_policy_partition_check(struct gw_server *s, const struct proto_ctx *who,
                          const struct proto_call_info *call, const struct gw_part *part)
{
	(void)s;
	(void)who;
	(void)call;
	(void)part;
	/* policy/: pol_eval(compiled, principal, groups, call->action,
	 *   "crn:hsmgate:<tenant>:partition:<name>", conditions {source ip, time}) → deny gives
	 *   CKR_ACTION_PROHIBITED, with the matched statement passed on to gw_audit_request. */
	return CKR_OK;
}

static uint64_t
elapsed_us(const struct timespec *start)
{
	struct timespec now;

	if (start == NULL || (start->tv_sec == 0 && start->tv_nsec == 0)) {
		return 0;
	}
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)(now.tv_sec - start->tv_sec) * 1000000u +
	       (uint64_t)((now.tv_nsec - start->tv_nsec) / 1000);
}

void
gw_audit_request(struct gw_server *s, const struct proto_ctx *who, uint16_t call,
                 const struct gw_part *part, CK_RV rv, const char *outcome,
                 const struct timespec *start)
{
	const struct proto_call_info *ci = proto_call_get(call);
	const char *rvname = proto_rv_name(rv);

	(void)s;
	/* audit/: aud_event_request(...) with the same fields; the reply must then wait for the
	 * event to be durable (group commit) before it is written to the client. */
	gw_log(GW_LOG_DEBUG, "audit", "request",
	       "principal=%s source=%s call=%s partition=%s "
	       "rv=%s outcome=%s latency_us=%llu",
	       who->principal, who->source, ci != NULL ? ci->name : "unknown",
	       part != NULL ? part->name : "-", rvname != NULL ? rvname : "unknown", outcome,
	       (unsigned long long)elapsed_us(start));
}

void
gw_audit_auth_failure(struct gw_server *s, const char *source, uint8_t cred, const char *reason)
{
	char q[600];

	(void)s;
	/* audit/: aud_event_auth(source, cred, reason, outcome=failure). */
	gw_log(GW_LOG_DEBUG, "audit", "authentication failure", "source=%s cred=%s reason=%s",
	       source,
	       cred == PROTO_CRED_CERT     ? "cert"
	       : cred == PROTO_CRED_APIKEY ? "apikey"
	                                   : "none",
	       gw_log_quote(reason, q, sizeof(q)));
}

void
gw_audit_worker_event(struct gw_server *s, struct gw_worker *w, const uint8_t *body, size_t len)
{
	(void)s;
	(void)body;
	/* audit/: validate the event kind against the whitelist for workers, then append. */
	gw_log(GW_LOG_DEBUG, "audit", "worker event", "partition=%s bytes=%zu", w->part.name, len);
}
