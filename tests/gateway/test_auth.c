/* tests/gateway/test_auth.c — gateway/auth.c: credential → principal lookups on a config. */
#include "gateway/gw_int.h"
#include "tests/lib/test.h"

#include <string.h>

static char h_alice[CFG_APIKEY_HASH_MAX], h_billing[CFG_APIKEY_HASH_MAX],
        h_bad[] = "pbkdf2-sha256$x$y$z";
static char *alice_keys[] = {h_alice};
static char *billing_keys[] = {h_bad, h_billing}; /* a malformed hash is skipped, not fatal */
static char *alice_groups[] = {"key-admins", "signers"};
static struct cfg_principal acme_p[] = {
        {.name = "alice",
         .kind = NULL,
         .cert_subject = "CN=alice,O=acme",
         .api_keys = alice_keys,
         .n_api_keys = 1,
         .groups = alice_groups,
         .n_groups = 2},
        {.name = "billing",
         .kind = "service",
         .cert_san_uri = "spiffe://acme.example/billing",
         .api_keys = billing_keys,
         .n_api_keys = 2},
};
static struct cfg_principal globex_p[] = {
        {.name = "bob", .kind = "user", .cert_subject = "CN=bob,O=globex"},
};
static struct cfg_tenant tenants[] = {
        {.name = "acme", .principals = acme_p, .n_principals = 2},
        {.name = "globex", .principals = globex_p, .n_principals = 1},
};
static struct cfg_daemon cfg = {.tenants = tenants, .n_tenants = 2};

static int
init(void)
{
	gw_log_set_level(GW_LOG_ERROR); /* the malformed-hash warning is expected */
	return cfg_apikey_hash("hsk_alice", h_alice, sizeof(h_alice)) != 0 ||
	       cfg_apikey_hash("hsk_billing", h_billing, sizeof(h_billing)) != 0;
}

static void
test_cert_subject(void)
{
	const struct cfg_tenant *t;
	const struct cfg_principal *p;

	CU_ASSERT(gw_auth_cert_lookup(&cfg, "CN=bob,O=globex", NULL, 0, &t, &p) == 0);
	CU_ASSERT(t == &tenants[1] && p == &globex_p[0]);
	CU_ASSERT(gw_auth_cert_lookup(&cfg, "CN=alice,O=acme", NULL, 0, &t, &p) == 0);
	CU_ASSERT(p == &acme_p[0]);
}

static void
test_cert_subject_exact(void)
{
	const struct cfg_tenant *t;
	const struct cfg_principal *p;

	/* no prefix, case or order games */
	CU_ASSERT(gw_auth_cert_lookup(&cfg, "CN=alice,O=acm", NULL, 0, &t, &p) == GW_ERR_NOTFOUND);
	CU_ASSERT(gw_auth_cert_lookup(&cfg, "CN=alice,O=acme,OU=x", NULL, 0, &t, &p) ==
	          GW_ERR_NOTFOUND);
	CU_ASSERT(gw_auth_cert_lookup(&cfg, "cn=alice,o=acme", NULL, 0, &t, &p) == GW_ERR_NOTFOUND);
	CU_ASSERT(gw_auth_cert_lookup(&cfg, "O=acme,CN=alice", NULL, 0, &t, &p) == GW_ERR_NOTFOUND);
	CU_ASSERT(gw_auth_cert_lookup(&cfg, "", NULL, 0, &t, &p) == GW_ERR_NOTFOUND);
	CU_ASSERT(t == NULL && p == NULL);
}

static void
test_cert_san_uri(void)
{
	const char *uris[] = {"hsmgate://acme/other", "spiffe://acme.example/billing"};
	const struct cfg_tenant *t;
	const struct cfg_principal *p;

	CU_ASSERT(gw_auth_cert_lookup(&cfg, "CN=whatever", uris, 2, &t, &p) == 0);
	CU_ASSERT(t == &tenants[0] && p == &acme_p[1]);
	CU_ASSERT(gw_auth_cert_lookup(&cfg, "CN=whatever", uris, 1, &t, &p) == GW_ERR_NOTFOUND);
}

static void
test_apikey(void)
{
	const struct cfg_tenant *t;
	const struct cfg_principal *p;

	CU_ASSERT(gw_auth_apikey_lookup(&cfg, "hsk_alice", &t, &p) == 0 && p == &acme_p[0]);
	CU_ASSERT(gw_auth_apikey_lookup(&cfg, "hsk_billing", &t, &p) == 0 && p == &acme_p[1]);
}

static void
test_apikey_refused(void)
{
	const struct cfg_tenant *t;
	const struct cfg_principal *p;

	CU_ASSERT(gw_auth_apikey_lookup(&cfg, "hsk_alicE", &t, &p) == GW_ERR_NOTFOUND);
	CU_ASSERT(gw_auth_apikey_lookup(&cfg, "", &t, &p) == GW_ERR_NOTFOUND);
	CU_ASSERT(gw_auth_apikey_lookup(&cfg, NULL, &t, &p) == GW_ERR_NOTFOUND);
	/* the stored hash itself is not a key */
	CU_ASSERT(gw_auth_apikey_lookup(&cfg, h_alice, &t, &p) == GW_ERR_NOTFOUND);
	CU_ASSERT(t == NULL && p == NULL);
}

static void
test_ident_fill(void)
{
	struct proto_ctx ctx;

	memset(&ctx, 0xaa, sizeof(ctx));
	CU_ASSERT(gw_ident_fill(&tenants[0], &acme_p[0], &ctx) == 0);
	CU_ASSERT_STRING_EQUAL(ctx.principal, "tenant/acme/user/alice");
	CU_ASSERT_STRING_EQUAL(ctx.tenant, "acme");
	CU_ASSERT(ctx.ngroups == 2);
	CU_ASSERT_STRING_EQUAL(ctx.groups[1], "signers");
	CU_ASSERT(gw_ident_fill(&tenants[0], &acme_p[1], &ctx) == 0);
	CU_ASSERT_STRING_EQUAL(ctx.principal, "tenant/acme/service/billing");
	CU_ASSERT(ctx.ngroups == 0);
}

static void
test_ident_fill_groups_capped(void)
{
	char *many[10] = {"g0", "g1", "g2", "g3", "g4", "g5", "g6", "g7", "g8", "g9"};
	char longname[80];
	struct cfg_principal p = {.name = "x", .groups = many, .n_groups = 10};
	struct proto_ctx ctx;

	CU_ASSERT(gw_ident_fill(&tenants[0], &p, &ctx) == 0);
	CU_ASSERT(ctx.ngroups == 8);
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	many[0] = longname;
	p.n_groups = 2;
	CU_ASSERT(gw_ident_fill(&tenants[0], &p, &ctx) == 0);
	CU_ASSERT(ctx.ngroups == 1 && strcmp(ctx.groups[0], "g1") == 0);
}

void
test_register(void)
{
	static const struct test_case cases[] = {
	        {"cert_subject", test_cert_subject},
	        {"cert_subject_exact", test_cert_subject_exact},
	        {"cert_san_uri", test_cert_san_uri},
	        {"apikey", test_apikey},
	        {"apikey_refused", test_apikey_refused},
	        {"ident_fill", test_ident_fill},
	        {"ident_fill_groups_capped", test_ident_fill_groups_capped},
	        {NULL, NULL},
	};

	test_suite_add("gateway/auth", init, NULL, cases);
}
