/*
 * gateway/auth.c — from a credential to a principal of the config. Pure lookups on a loaded
 * config, so that they can be unit-tested without a TLS stack.
 */
#include "gateway/gw_int.h"

#include <stdio.h>
#include <string.h>

int
gw_ident_fill(const struct cfg_tenant *t, const struct cfg_principal *p, struct proto_ctx *ctx)
{
	const char *kind = p->kind != NULL && *p->kind != '\0' ? p->kind : "user";
	unsigned i;
	int n;

	memset(ctx->principal, 0, sizeof(ctx->principal));
	memset(ctx->tenant, 0, sizeof(ctx->tenant));
	memset(ctx->groups, 0, sizeof(ctx->groups));
	ctx->ngroups = 0;
	n = snprintf(ctx->principal, sizeof(ctx->principal), "tenant/%s/%s/%s", t->name, kind,
	             p->name);
	if (n < 0 || (size_t)n >= sizeof(ctx->principal)) {
		return GW_ERR_CONFIG;
	}
	n = snprintf(ctx->tenant, sizeof(ctx->tenant), "%s", t->name);
	if (n < 0 || (size_t)n >= sizeof(ctx->tenant)) {
		return GW_ERR_CONFIG;
	}
	for (i = 0; i < p->n_groups; i++) {
		size_t gl = strlen(p->groups[i]);

		/* The IPC context carries at most 8 groups of < 64 bytes (proto_ctx); a group
		 * that cannot travel is left out rather than truncated into another name. */
		if (ctx->ngroups >= 8 || gl >= sizeof(ctx->groups[0])) {
			char q[96];

			gw_log(GW_LOG_WARN, "auth", "group left out of the caller context",
			       "principal=%s group=%s", ctx->principal,
			       gw_log_quote(p->groups[i], q, sizeof(q)));
			continue;
		}
		memcpy(ctx->groups[ctx->ngroups], p->groups[i], gl + 1);
		ctx->ngroups++;
	}
	return 0;
}

int
gw_auth_cert_lookup(const struct cfg_daemon *cfg, const char *subject, const char *const *uris,
                    size_t n_uris, const struct cfg_tenant **t, const struct cfg_principal **p)
{
	unsigned i, j;
	size_t k;

	*t = NULL;
	*p = NULL;
	for (i = 0; i < cfg->n_tenants; i++) {
		const struct cfg_tenant *tn = &cfg->tenants[i];

		for (j = 0; j < tn->n_principals; j++) {
			const struct cfg_principal *pr = &tn->principals[j];

			if (pr->cert_subject != NULL && *pr->cert_subject != '\0' &&
			    subject != NULL && strcmp(pr->cert_subject, subject) == 0) {
				*t = tn;
				*p = pr;
				return 0;
			}
			if (pr->cert_san_uri == NULL || *pr->cert_san_uri == '\0') {
				continue;
			}
			for (k = 0; k < n_uris; k++) {
				if (strcmp(pr->cert_san_uri, uris[k]) == 0) {
					*t = tn;
					*p = pr;
					return 0;
				}
			}
		}
	}
	return GW_ERR_NOTFOUND;
}

int
gw_auth_apikey_lookup(const struct cfg_daemon *cfg, const char *key, const struct cfg_tenant **t,
                      const struct cfg_principal **p)
{
	unsigned i, j, k;
	int r;

	*t = NULL;
	*p = NULL;
	if (key == NULL || *key == '\0') {
		return GW_ERR_NOTFOUND;
	}
	/*
	 * Salted hashes cannot be indexed, so every stored hash is tried: one PBKDF2 each
	 * (CFG_APIKEY_ITER, about 5 ms), on the event loop. Acceptable for a handful of keys;
	 * with many, a key id prefix in the key ("hsk_<id>_...") would select the one hash to
	 * check, or the check would move to a thread pool.
	 */
	for (i = 0; i < cfg->n_tenants; i++) {
		const struct cfg_tenant *tn = &cfg->tenants[i];

		for (j = 0; j < tn->n_principals; j++) {
			const struct cfg_principal *pr = &tn->principals[j];

			for (k = 0; k < pr->n_api_keys; k++) {
				r = cfg_apikey_verify(key, pr->api_keys[k]);
				if (r == 1) {
					*t = tn;
					*p = pr;
					return 0;
				}
				if (r < 0) {
					gw_log(GW_LOG_WARN, "auth",
					       "malformed API key hash in config",
					       "tenant=%s principal=%s index=%u", tn->name,
					       pr->name, k);
				}
			}
		}
	}
	return GW_ERR_NOTFOUND;
}
