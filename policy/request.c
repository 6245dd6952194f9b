/*
 * policy/request.c — the request context evaluated against a policy.
 *
 * All strings live in one growing buffer and are referred to by offset, so reset() keeps
 * the memory and a request reused per connection stops allocating after its largest call.
 * Context values are (key, value) records; a multi-valued key is several records.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "policy/internal.h"

struct rec {
	size_t key, val; /* offsets into buf */
};

struct pol_request {
	char *buf;
	size_t len, cap;
	size_t principal, tenant, action, resource;
	bool tenant_explicit;
	struct rec *recs;
	size_t nrecs, caprecs;
	size_t *groups;
	size_t ngroups, capgroups;
};

int
pol_request_new(struct pol_request **out)
{
	struct pol_request *req;

	if (out == NULL) {
		return POL_ERR_INVAL;
	}
	*out = NULL;
	req = calloc(1, sizeof(*req));
	if (req == NULL) {
		return POL_ERR_NOMEM;
	}
	pol_request_reset(req);
	*out = req;
	return 0;
}

void
pol_request_free(struct pol_request *req)
{
	if (req == NULL) {
		return;
	}
	free(req->buf);
	free(req->recs);
	free(req->groups);
	free(req);
}

void
pol_request_reset(struct pol_request *req)
{
	if (req == NULL) {
		return;
	}
	req->len = 0;
	req->principal = req->tenant = req->action = req->resource = POL_NOFF;
	req->tenant_explicit = false;
	req->nrecs = 0;
	req->ngroups = 0;
}

static int
check_str(const char *s, size_t *n)
{
	if (s == NULL || *s == '\0') {
		return POL_ERR_INVAL;
	}
	*n = strnlen(s, POL_MAX_REQ_VALUE + 1);
	if (*n > POL_MAX_REQ_VALUE) {
		return POL_ERR_TOO_LARGE;
	}
	return 0;
}

/* Appends n bytes of s plus a NUL; *off receives the offset. */
static int
put_str(struct pol_request *req, const char *s, size_t n, size_t *off)
{
	size_t need = req->len + n + 1, ncap;
	char *nb;

	if (need > req->cap) {
		ncap = req->cap == 0 ? 512 : req->cap;
		while (ncap < need) {
			ncap *= 2;
		}
		nb = realloc(req->buf, ncap);
		if (nb == NULL) {
			return POL_ERR_NOMEM;
		}
		req->buf = nb;
		req->cap = ncap;
	}
	memcpy(req->buf + req->len, s, n);
	req->buf[req->len + n] = '\0';
	*off = req->len;
	req->len = need;
	return 0;
}

static int
set_field(struct pol_request *req, size_t *field, const char *s)
{
	size_t n, off;
	int r;

	if (req == NULL) {
		return POL_ERR_INVAL;
	}
	if ((r = check_str(s, &n)) != 0 || (r = put_str(req, s, n, &off)) != 0) {
		return r;
	}
	*field = off;
	return 0;
}

int
pol_request_set_principal(struct pol_request *req, const char *principal)
{
	const char *t, *end;
	size_t off;
	int r;

	if (req == NULL) {
		return POL_ERR_INVAL;
	}
	if ((r = set_field(req, &req->principal, principal)) != 0) {
		return r;
	}
	/* "tenant/<t>/..." names its tenant; an explicit set_tenant() still wins. */
	if (!req->tenant_explicit && strncmp(principal, "tenant/", 7) == 0) {
		t = principal + 7;
		end = strchr(t, '/');
		if (end != NULL && end > t) {
			if ((r = put_str(req, t, (size_t)(end - t), &off)) != 0) {
				return r;
			}
			req->tenant = off;
		}
	}
	return 0;
}

int
pol_request_set_tenant(struct pol_request *req, const char *tenant)
{
	int r;

	if (req == NULL) {
		return POL_ERR_INVAL;
	}
	if ((r = set_field(req, &req->tenant, tenant)) != 0) {
		return r;
	}
	req->tenant_explicit = true;
	return 0;
}

int
pol_request_set_action(struct pol_request *req, const char *action)
{
	return req == NULL ? POL_ERR_INVAL : set_field(req, &req->action, action);
}

int
pol_request_set_resource(struct pol_request *req, const char *resource)
{
	return req == NULL ? POL_ERR_INVAL : set_field(req, &req->resource, resource);
}

int
pol_request_add_group(struct pol_request *req, const char *group)
{
	size_t n, off, ncap;
	size_t *ng;
	int r;

	if (req == NULL) {
		return POL_ERR_INVAL;
	}
	if ((r = check_str(group, &n)) != 0) {
		return r;
	}
	if (req->ngroups == req->capgroups) {
		ncap = req->capgroups == 0 ? 8 : req->capgroups * 2;
		ng = realloc(req->groups, ncap * sizeof(*ng));
		if (ng == NULL) {
			return POL_ERR_NOMEM;
		}
		req->groups = ng;
		req->capgroups = ncap;
	}
	if ((r = put_str(req, group, n, &off)) != 0) {
		return r;
	}
	req->groups[req->ngroups++] = off;
	return 0;
}

int
pol_request_add(struct pol_request *req, const char *key, const char *value)
{
	size_t kn, vn, koff, voff, ncap;
	struct rec *nr;
	int r;

	if (req == NULL || value == NULL) {
		return POL_ERR_INVAL;
	}
	if ((r = check_str(key, &kn)) != 0) {
		return r;
	}
	/* An empty value is a value (StringEquals ""), unlike an empty key. */
	vn = strnlen(value, POL_MAX_REQ_VALUE + 1);
	if (vn > POL_MAX_REQ_VALUE) {
		return POL_ERR_TOO_LARGE;
	}
	if (req->nrecs == req->caprecs) {
		ncap = req->caprecs == 0 ? 16 : req->caprecs * 2;
		nr = realloc(req->recs, ncap * sizeof(*nr));
		if (nr == NULL) {
			return POL_ERR_NOMEM;
		}
		req->recs = nr;
		req->caprecs = ncap;
	}
	if ((r = put_str(req, key, kn, &koff)) != 0 || (r = put_str(req, value, vn, &voff)) != 0) {
		return r;
	}
	req->recs[req->nrecs].key = koff;
	req->recs[req->nrecs].val = voff;
	req->nrecs++;
	return 0;
}

int
pol_request_set(struct pol_request *req, const char *key, const char *value)
{
	size_t i, j;

	if (req == NULL || key == NULL) {
		return POL_ERR_INVAL;
	}
	for (i = 0, j = 0; i < req->nrecs; i++) {
		if (strcasecmp(req->buf + req->recs[i].key, key) != 0) {
			req->recs[j++] = req->recs[i];
		}
	}
	req->nrecs = j;
	return pol_request_add(req, key, value);
}

static const char *
field(const struct pol_request *req, size_t off)
{
	return off == POL_NOFF ? NULL : req->buf + off;
}

const char *
pol_request_principal(const struct pol_request *req)
{
	return field(req, req->principal);
}

const char *
pol_request_action(const struct pol_request *req)
{
	return field(req, req->action);
}

const char *
pol_request_resource(const struct pol_request *req)
{
	return field(req, req->resource);
}

size_t
pol_request_group_count(const struct pol_request *req)
{
	return req->ngroups;
}

const char *
pol_request_group(const struct pol_request *req, size_t i)
{
	return i < req->ngroups ? req->buf + req->groups[i] : NULL;
}

size_t
pol_request_values(const struct pol_request *req, const char *key, const char **vals, size_t max,
                   char *scratch, size_t scratchlen)
{
	size_t i, n = 0;

	for (i = 0; i < req->nrecs; i++) {
		if (strcasecmp(req->buf + req->recs[i].key, key) == 0) {
			if (n < max) {
				vals[n] = req->buf + req->recs[i].val;
			}
			n++;
		}
	}
	if (n > 0) {
		return n;
	}
	/* Keys the request always carries, unless the caller overrode them above. */
	if (strcasecmp(key, "hsm:PrincipalName") == 0 || strcasecmp(key, "gw:PrincipalId") == 0) {
		if (req->principal != POL_NOFF && max > 0) {
			vals[0] = req->buf + req->principal;
			return 1;
		}
		return 0;
	}
	if (strcasecmp(key, "hsm:Tenant") == 0 || strcasecmp(key, "gw:Tenant") == 0) {
		if (req->tenant != POL_NOFF && max > 0) {
			vals[0] = req->buf + req->tenant;
			return 1;
		}
		return 0;
	}
	if (strcasecmp(key, "gw:Group") == 0) {
		for (i = 0; i < req->ngroups; i++) {
			if (n < max) {
				vals[n] = req->buf + req->groups[i];
			}
			n++;
		}
		return n;
	}
	if ((strcasecmp(key, "gw:CurrentTime") == 0 || strcasecmp(key, "gw:EpochTime") == 0) &&
	    max > 0 && scratchlen >= 32) {
		/* Like aws:CurrentTime, always present: the clock when the caller gave none. */
		(void)snprintf(scratch, scratchlen, "%" PRId64, (int64_t)time(NULL));
		vals[0] = scratch;
		return 1;
	}
	return 0;
}
