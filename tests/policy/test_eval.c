/*
 * tests/policy/test_eval.c — evaluation semantics (policy/eval.c, policy/cond.c): one test
 * per rule of docs/POLICY.md "Evaluation", each with a request that must be allowed and
 * one that must be denied.
 */
#include "tests/policy/polt.h"

#define HDR "version: 1\nstatements:\n"
#define ALLOW_SIGN(sid)                                                                            \
	"  - sid: " sid "\n    effect: allow\n    principals: \"*\"\n"                             \
	"    actions: hsm.crypto.sign\n    resources: \"crn:hsmgate:demo:*\"\n"

/* A policy with one allow of hsm.crypto.sign whose conditions block is `conds` (lines
 * indented by 6 spaces). */
static struct pol_policy *
cond_policy(const char *conds)
{
	char buf[4096];

	snprintf(buf, sizeof(buf), HDR ALLOW_SIGN("C") "    conditions:\n%s", conds);
	return polt_load(buf);
}

#define SIGN(pol, ...) polt_eval(pol, P_ALICE, "hsm.crypto.sign", R_KEY1, __VA_ARGS__)

static void
test_default_deny(void)
{
	struct pol_policy *pol = polt_load(HDR ALLOW_SIGN("S"));

	CU_ASSERT_EQUAL(polt_eval(pol, P_ALICE, "hsm.crypto.sign", R_KEY1, NULL), POL_ALLOWED);
	CU_ASSERT(polt_has_sid(POL_LIST_ALLOW, "S"));
	/* Another action: nothing allows it. */
	CU_ASSERT_EQUAL(polt_eval(pol, P_ALICE, "hsm.crypto.decrypt", R_KEY1, NULL),
	                POL_IMPLICIT_DENY);
	CU_ASSERT_EQUAL(pol_decision_count(polt_dec, POL_LIST_ALLOW), 0);
	/* Another tenant's resource. */
	CU_ASSERT_EQUAL(polt_eval(pol, P_ALICE, "hsm.crypto.sign",
	                          "crn:hsmgate:other:partition:x:key:id/1", NULL),
	                POL_IMPLICIT_DENY);
	pol_policy_free(pol);
}

static void
test_explicit_deny_wins(void)
{
	/* The deny comes first in one policy and last in the other: order never matters. */
	static const char *const deny =
	        "  - sid: D\n    effect: deny\n    principals: \"*\"\n"
	        "    actions: hsm.crypto.*\n    resources: \"" R_KEY2 "\"\n";
	char a[1024], b[1024];
	struct pol_policy *p1, *p2;

	snprintf(a, sizeof(a), HDR "%s" ALLOW_SIGN("A"), deny);
	snprintf(b, sizeof(b), HDR ALLOW_SIGN("A") "%s", deny);
	p1 = polt_load(a);
	p2 = polt_load(b);
	CU_ASSERT_EQUAL(polt_eval(p1, P_ALICE, "hsm.crypto.sign", R_KEY1, NULL), POL_ALLOWED);
	CU_ASSERT_EQUAL(polt_eval(p1, P_ALICE, "hsm.crypto.sign", R_KEY2, NULL), POL_EXPLICIT_DENY);
	CU_ASSERT(polt_has_sid(POL_LIST_DENY, "D"));
	CU_ASSERT(polt_has_sid(POL_LIST_ALLOW, "A"));
	CU_ASSERT_EQUAL(polt_eval(p2, P_ALICE, "hsm.crypto.sign", R_KEY1, NULL), POL_ALLOWED);
	CU_ASSERT_EQUAL(polt_eval(p2, P_ALICE, "hsm.crypto.sign", R_KEY2, NULL), POL_EXPLICIT_DENY);
	pol_policy_free(p1);
	pol_policy_free(p2);
}

static void
test_principals(void)
{
	struct pol_policy *pol = polt_load(
	        HDR "  - sid: P\n    effect: allow\n    principals: [\"tenant/demo/user/a*\"]\n"
	            "    actions: hsm.crypto.sign\n    resources: \"*\"\n");

	CU_ASSERT_EQUAL(polt_eval(pol, P_ALICE, "hsm.crypto.sign", R_KEY1, NULL), POL_ALLOWED);
	CU_ASSERT_EQUAL(polt_eval(pol, P_BOB, "hsm.crypto.sign", R_KEY1, NULL), POL_IMPLICIT_DENY);
	/* Principals are case-sensitive. */
	CU_ASSERT_EQUAL(polt_eval(pol, "tenant/demo/user/Alice", "hsm.crypto.sign", R_KEY1, NULL),
	                POL_IMPLICIT_DENY);
	pol_policy_free(pol);
}

static void
test_not_principals(void)
{
	struct pol_policy *pol =
	        polt_load(HDR ALLOW_SIGN("A") "  - sid: OnlyAlice\n    effect: deny\n"
	                                      "    not_principals: [\"" P_ALICE "\"]\n"
	                                      "    actions: \"*\"\n    resources: \"*\"\n");

	CU_ASSERT_EQUAL(polt_eval(pol, P_ALICE, "hsm.crypto.sign", R_KEY1, NULL), POL_ALLOWED);
	CU_ASSERT_EQUAL(polt_eval(pol, P_BOB, "hsm.crypto.sign", R_KEY1, NULL), POL_EXPLICIT_DENY);
	pol_policy_free(pol);
}

static void
test_not_actions(void)
{
	/* Deny + not_actions: everything but the listed actions is denied. */
	struct pol_policy *pol = polt_load(
	        HDR "  - sid: All\n    effect: allow\n    principals: \"*\"\n"
	            "    actions: \"hsm.*\"\n    resources: \"*\"\n"
	            "  - sid: OnlySign\n    effect: deny\n    principals: \"*\"\n"
	            "    not_actions: [hsm.crypto.sign, hsm.session.*]\n    resources: \"*\"\n");

	CU_ASSERT_EQUAL(polt_eval(pol, P_ALICE, "hsm.crypto.sign", R_KEY1, NULL), POL_ALLOWED);
	CU_ASSERT_EQUAL(polt_eval(pol, P_ALICE, "hsm.session.open", R_PART, NULL), POL_ALLOWED);
	CU_ASSERT_EQUAL(polt_eval(pol, P_ALICE, "hsm.crypto.decrypt", R_KEY1, NULL),
	                POL_EXPLICIT_DENY);
	pol_policy_free(pol);
}

static void
test_not_resources(void)
{
	struct pol_policy *pol = polt_load(
	        HDR ALLOW_SIGN("A") "  - sid: OnlyKey1\n    effect: deny\n    principals: \"*\"\n"
	                            "    actions: \"*\"\n    not_resources: \"" R_KEY1 "\"\n");

	CU_ASSERT_EQUAL(polt_eval(pol, P_ALICE, "hsm.crypto.sign", R_KEY1, NULL), POL_ALLOWED);
	CU_ASSERT_EQUAL(polt_eval(pol, P_ALICE, "hsm.crypto.sign", R_KEY2, NULL),
	                POL_EXPLICIT_DENY);
	pol_policy_free(pol);
}

static void
test_action_wildcards_case_insensitive(void)
{
	struct pol_policy *pol = polt_load(
	        HDR
	        "  - sid: W\n    effect: allow\n    principals: \"*\"\n"
	        "    actions: [\"HSM.Crypto.S?gn\", \"hsm.keys.gen*\"]\n    resources: \"*\"\n");

	CU_ASSERT_EQUAL(polt_eval(pol, P_ALICE, "hsm.crypto.sign", R_KEY1, NULL), POL_ALLOWED);
	CU_ASSERT_EQUAL(polt_eval(pol, P_ALICE, "HSM.CRYPTO.SIGN", R_KEY1, NULL), POL_ALLOWED);
	CU_ASSERT_EQUAL(polt_eval(pol, P_ALICE, "hsm.keys.generatepair", R_PART, NULL),
	                POL_ALLOWED);
	CU_ASSERT_EQUAL(polt_eval(pol, P_ALICE, "hsm.crypto.verify", R_KEY1, NULL),
	                POL_IMPLICIT_DENY);
	CU_ASSERT_EQUAL(polt_eval(pol, P_ALICE, "hsm.keys.destroy", R_KEY1, NULL),
	                POL_IMPLICIT_DENY);
	pol_policy_free(pol);
}

static void
test_unknown_action_never_allowed(void)
{
	struct pol_policy *pol =
	        polt_load(HDR "  - sid: All\n    effect: allow\n    principals: \"*\"\n"
	                      "    actions: \"*\"\n    resources: \"*\"\n"
	                      "  - sid: DenyCrypto\n    effect: deny\n    principals: \"*\"\n"
	                      "    actions: \"hsm.crypto.*\"\n    resources: \"*\"\n");

	CU_ASSERT_EQUAL(polt_eval(pol, P_ALICE, "hsm.keys.list", R_PART, NULL), POL_ALLOWED);
	CU_ASSERT_EQUAL(polt_eval(pol, P_ALICE, "hsm.bogus.thing", R_PART, NULL),
	                POL_IMPLICIT_DENY);
	/* ... but a wildcard deny still names it. */
	CU_ASSERT_EQUAL(polt_eval(pol, P_ALICE, "hsm.crypto.frobnicate", R_PART, NULL),
	                POL_EXPLICIT_DENY);
	pol_policy_free(pol);
}

static void
test_resource_case_sensitive(void)
{
	struct pol_policy *pol = polt_load(
	        HDR "  - sid: R\n    effect: allow\n    principals: \"*\"\n"
	            "    actions: hsm.crypto.sign\n"
	            "    resources: \"crn:hsmgate:demo:partition:demo:key:label/Pay-*\"\n");

	CU_ASSERT_EQUAL(polt_eval(pol, P_ALICE, "hsm.crypto.sign",
	                          "crn:hsmgate:demo:partition:demo:key:label/Pay-1", NULL),
	                POL_ALLOWED);
	CU_ASSERT_EQUAL(polt_eval(pol, P_ALICE, "hsm.crypto.sign",
	                          "crn:hsmgate:demo:partition:demo:key:label/pay-1", NULL),
	                POL_IMPLICIT_DENY);
	pol_policy_free(pol);
}

static void
test_resource_segments(void)
{
	/* A '*' inside a segment stays there; a '*' ending a segment may cross ':'. */
	struct pol_policy *pol =
	        polt_load(HDR "  - sid: Mid\n    effect: allow\n    principals: \"*\"\n"
	                      "    actions: hsm.crypto.sign\n"
	                      "    resources: \"crn:hsmgate:demo:partition:d*o:key:id/1\"\n"
	                      "  - sid: End\n    effect: allow\n    principals: \"*\"\n"
	                      "    actions: hsm.crypto.verify\n"
	                      "    resources: \"crn:hsmgate:demo:partition:demo*\"\n"
	                      "  - sid: Q\n    effect: allow\n    principals: \"*\"\n"
	                      "    actions: hsm.crypto.encrypt\n"
	                      "    resources: \"crn:hsmgate:demo:partition:dem?:key:id/1\"\n");

	CU_ASSERT_EQUAL(polt_eval(pol, P_ALICE, "hsm.crypto.sign", R_KEY1, NULL), POL_ALLOWED);
	CU_ASSERT_EQUAL(polt_eval(pol, P_ALICE, "hsm.crypto.sign",
	                          "crn:hsmgate:demo:partition:d:x:o:key:id/1", NULL),
	                POL_IMPLICIT_DENY);
	CU_ASSERT_EQUAL(polt_eval(pol, P_ALICE, "hsm.crypto.verify", R_KEY1, NULL), POL_ALLOWED);
	CU_ASSERT_EQUAL(polt_eval(pol, P_ALICE, "hsm.crypto.verify",
	                          "crn:hsmgate:demo:partition:other:key:id/1", NULL),
	                POL_IMPLICIT_DENY);
	CU_ASSERT_EQUAL(polt_eval(pol, P_ALICE, "hsm.crypto.encrypt", R_KEY1, NULL), POL_ALLOWED);
	CU_ASSERT_EQUAL(polt_eval(pol, P_ALICE, "hsm.crypto.encrypt",
	                          "crn:hsmgate:demo:partition:de::key:id/1", NULL),
	                POL_IMPLICIT_DENY);
	pol_policy_free(pol);
}

static void
test_conditions_and_or(void)
{
	/* Operators AND, keys AND, values OR. */
	struct pol_policy *pol =
	        cond_policy("      StringEquals:\n"
	                    "        hsm:Mechanism: [CKM_ECDSA_SHA256, CKM_ECDSA_SHA384]\n"
	                    "        hsm:UserType: USER\n"
	                    "      Bool: { \"hsm:KeyAttr/CKA_NEVER_EXTRACTABLE\": \"true\" }\n");

	CU_ASSERT_EQUAL(SIGN(pol, "hsm:Mechanism=CKM_ECDSA_SHA384", "hsm:UserType=USER",
	                     "hsm:KeyAttr/CKA_NEVER_EXTRACTABLE=true", NULL),
	                POL_ALLOWED);
	CU_ASSERT_EQUAL(SIGN(pol, "hsm:Mechanism=CKM_RSA_PKCS", "hsm:UserType=USER",
	                     "hsm:KeyAttr/CKA_NEVER_EXTRACTABLE=true", NULL),
	                POL_IMPLICIT_DENY);
	CU_ASSERT_EQUAL(SIGN(pol, "hsm:Mechanism=CKM_ECDSA_SHA256", "hsm:UserType=SO",
	                     "hsm:KeyAttr/CKA_NEVER_EXTRACTABLE=true", NULL),
	                POL_IMPLICIT_DENY);
	CU_ASSERT_EQUAL(SIGN(pol, "hsm:Mechanism=CKM_ECDSA_SHA256", "hsm:UserType=USER",
	                     "hsm:KeyAttr/CKA_NEVER_EXTRACTABLE=false", NULL),
	                POL_IMPLICIT_DENY);
	pol_policy_free(pol);
}

static void
test_negated_nor(void)
{
	struct pol_policy *pol = cond_policy(
	        "      StringNotEquals: { hsm:Mechanism: [CKM_RSA_PKCS, CKM_SHA1_RSA_PKCS] }\n");

	CU_ASSERT_EQUAL(SIGN(pol, "hsm:Mechanism=CKM_ECDSA", NULL), POL_ALLOWED);
	CU_ASSERT_EQUAL(SIGN(pol, "hsm:Mechanism=CKM_RSA_PKCS", NULL), POL_IMPLICIT_DENY);
	CU_ASSERT_EQUAL(SIGN(pol, "hsm:Mechanism=CKM_SHA1_RSA_PKCS", NULL), POL_IMPLICIT_DENY);
	pol_policy_free(pol);
}

static void
test_missing_key(void)
{
	struct pol_policy *pos = cond_policy("      StringEquals: { hsm:Mechanism: CKM_ECDSA }\n");
	struct pol_policy *neg =
	        cond_policy("      StringNotEquals: { hsm:Mechanism: CKM_RSA_PKCS }\n");

	/* Absent key: a positive operator is false, a negated one true. */
	CU_ASSERT_EQUAL(SIGN(pos, NULL), POL_IMPLICIT_DENY);
	CU_ASSERT_EQUAL(pol_decision_missing_count(polt_dec), 1);
	CU_ASSERT_STRING_EQUAL(pol_decision_missing(polt_dec, 0), "hsm:Mechanism");
	CU_ASSERT_EQUAL(SIGN(pos, "hsm:Mechanism=CKM_ECDSA", NULL), POL_ALLOWED);
	CU_ASSERT_EQUAL(SIGN(neg, NULL), POL_ALLOWED);
	CU_ASSERT_EQUAL(SIGN(neg, "hsm:Mechanism=CKM_RSA_PKCS", NULL), POL_IMPLICIT_DENY);
	pol_policy_free(pos);
	pol_policy_free(neg);
}

static void
test_if_exists(void)
{
	struct pol_policy *pol =
	        cond_policy("      StringEqualsIfExists: { hsm:Mechanism: CKM_ECDSA }\n");

	CU_ASSERT_EQUAL(SIGN(pol, NULL), POL_ALLOWED);
	CU_ASSERT_EQUAL(SIGN(pol, "hsm:Mechanism=CKM_ECDSA", NULL), POL_ALLOWED);
	CU_ASSERT_EQUAL(SIGN(pol, "hsm:Mechanism=CKM_RSA_PKCS", NULL), POL_IMPLICIT_DENY);
	pol_policy_free(pol);
}

static void
test_null(void)
{
	struct pol_policy *absent = cond_policy("      Null: { hsm:KeyLabel: \"true\" }\n");
	struct pol_policy *present = cond_policy("      Null: { hsm:KeyLabel: \"false\" }\n");

	CU_ASSERT_EQUAL(SIGN(absent, NULL), POL_ALLOWED);
	CU_ASSERT_EQUAL(SIGN(absent, "hsm:KeyLabel=x", NULL), POL_IMPLICIT_DENY);
	CU_ASSERT_EQUAL(SIGN(present, "hsm:KeyLabel=x", NULL), POL_ALLOWED);
	CU_ASSERT_EQUAL(SIGN(present, NULL), POL_IMPLICIT_DENY);
	pol_policy_free(absent);
	pol_policy_free(present);
}

static void
test_for_any_value(void)
{
	struct pol_policy *pol = cond_policy(
	        "      ForAnyValue:StringEquals: { hsm:AttrChanged: [CKA_LABEL, CKA_ID] }\n");

	CU_ASSERT_EQUAL(SIGN(pol, "hsm:AttrChanged=CKA_VALUE", "hsm:AttrChanged=CKA_ID", NULL),
	                POL_ALLOWED);
	CU_ASSERT_EQUAL(SIGN(pol, "hsm:AttrChanged=CKA_VALUE", "hsm:AttrChanged=CKA_SIGN", NULL),
	                POL_IMPLICIT_DENY);
	/* Absent: false. */
	CU_ASSERT_EQUAL(SIGN(pol, NULL), POL_IMPLICIT_DENY);
	pol_policy_free(pol);
}

static void
test_for_all_values(void)
{
	struct pol_policy *pol = cond_policy(
	        "      ForAllValues:StringEquals: { hsm:AttrChanged: [CKA_LABEL, CKA_ID] }\n");
	struct pol_policy *guarded = cond_policy(
	        "      ForAllValues:StringEquals: { hsm:AttrChanged: [CKA_LABEL, CKA_ID] }\n"
	        "      Null: { hsm:AttrChanged: \"false\" }\n");

	CU_ASSERT_EQUAL(SIGN(pol, "hsm:AttrChanged=CKA_LABEL", "hsm:AttrChanged=CKA_ID", NULL),
	                POL_ALLOWED);
	CU_ASSERT_EQUAL(SIGN(pol, "hsm:AttrChanged=CKA_LABEL", "hsm:AttrChanged=CKA_SIGN", NULL),
	                POL_IMPLICIT_DENY);
	/* Absent: vacuously true, unless a Null guard requires the key. */
	CU_ASSERT_EQUAL(SIGN(pol, NULL), POL_ALLOWED);
	CU_ASSERT_EQUAL(SIGN(guarded, NULL), POL_IMPLICIT_DENY);
	pol_policy_free(pol);
	pol_policy_free(guarded);
}

static void
test_for_any_value_negated(void)
{
	/* ForAnyValue:StringNotEquals: some value is not in the list. */
	struct pol_policy *pol = cond_policy(
	        "      ForAnyValue:StringNotEquals: { hsm:AttrChanged: [CKA_LABEL] }\n");

	CU_ASSERT_EQUAL(SIGN(pol, "hsm:AttrChanged=CKA_LABEL", "hsm:AttrChanged=CKA_ID", NULL),
	                POL_ALLOWED);
	CU_ASSERT_EQUAL(SIGN(pol, "hsm:AttrChanged=CKA_LABEL", NULL), POL_IMPLICIT_DENY);
	pol_policy_free(pol);
}

static void
test_string_ops(void)
{
	struct pol_policy *ic =
	        cond_policy("      StringEqualsIgnoreCase: { hsm:KeyType: ckk_ec }\n");
	struct pol_policy *nic =
	        cond_policy("      StringNotEqualsIgnoreCase: { hsm:KeyType: ckk_rsa }\n");
	struct pol_policy *like =
	        cond_policy("      StringLike: { hsm:KeyLabel: \"pay-?\?-*\" }\n");
	struct pol_policy *nlike =
	        cond_policy("      StringNotLike: { hsm:KeyLabel: \"tmp-*\" }\n");

	CU_ASSERT_EQUAL(SIGN(ic, "hsm:KeyType=CKK_EC", NULL), POL_ALLOWED);
	CU_ASSERT_EQUAL(SIGN(ic, "hsm:KeyType=CKK_RSA", NULL), POL_IMPLICIT_DENY);
	CU_ASSERT_EQUAL(SIGN(nic, "hsm:KeyType=CKK_EC", NULL), POL_ALLOWED);
	CU_ASSERT_EQUAL(SIGN(nic, "hsm:KeyType=CKK_RSA", NULL), POL_IMPLICIT_DENY);
	CU_ASSERT_EQUAL(SIGN(like, "hsm:KeyLabel=pay-01-x:y", NULL), POL_ALLOWED);
	CU_ASSERT_EQUAL(SIGN(like, "hsm:KeyLabel=pay-1-x", NULL), POL_IMPLICIT_DENY);
	CU_ASSERT_EQUAL(SIGN(like, "hsm:KeyLabel=PAY-01-x", NULL), POL_IMPLICIT_DENY);
	CU_ASSERT_EQUAL(SIGN(nlike, "hsm:KeyLabel=prod-1", NULL), POL_ALLOWED);
	CU_ASSERT_EQUAL(SIGN(nlike, "hsm:KeyLabel=tmp-1", NULL), POL_IMPLICIT_DENY);
	pol_policy_free(ic);
	pol_policy_free(nic);
	pol_policy_free(like);
	pol_policy_free(nlike);
}

static void
test_numeric_ops(void)
{
	struct pol_policy *lt = cond_policy("      NumericLessThan: { gw:AuthAge: 300 }\n");
	struct pol_policy *le = cond_policy("      NumericLessThanEquals: { hsm:Length: 64 }\n");
	struct pol_policy *gt = cond_policy("      NumericGreaterThan: { hsm:KeyBits: 2047.5 }\n");
	struct pol_policy *ge =
	        cond_policy("      NumericGreaterThanEquals: { hsm:KeyBits: 256 }\n");
	struct pol_policy *eq = cond_policy("      NumericEquals: { hsm:KeyBits: [256, 384] }\n");
	struct pol_policy *ne = cond_policy("      NumericNotEquals: { hsm:KeyBits: 1024 }\n");

	CU_ASSERT_EQUAL(SIGN(lt, "gw:AuthAge=299", NULL), POL_ALLOWED);
	CU_ASSERT_EQUAL(SIGN(lt, "gw:AuthAge=300", NULL), POL_IMPLICIT_DENY);
	CU_ASSERT_EQUAL(SIGN(le, "hsm:Length=64", NULL), POL_ALLOWED);
	CU_ASSERT_EQUAL(SIGN(le, "hsm:Length=65", NULL), POL_IMPLICIT_DENY);
	CU_ASSERT_EQUAL(SIGN(gt, "hsm:KeyBits=2048", NULL), POL_ALLOWED);
	CU_ASSERT_EQUAL(SIGN(gt, "hsm:KeyBits=2047", NULL), POL_IMPLICIT_DENY);
	CU_ASSERT_EQUAL(SIGN(ge, "hsm:KeyBits=256", NULL), POL_ALLOWED);
	CU_ASSERT_EQUAL(SIGN(ge, "hsm:KeyBits=128", NULL), POL_IMPLICIT_DENY);
	CU_ASSERT_EQUAL(SIGN(eq, "hsm:KeyBits=384.0", NULL), POL_ALLOWED);
	CU_ASSERT_EQUAL(SIGN(eq, "hsm:KeyBits=512", NULL), POL_IMPLICIT_DENY);
	CU_ASSERT_EQUAL(SIGN(ne, "hsm:KeyBits=2048", NULL), POL_ALLOWED);
	CU_ASSERT_EQUAL(SIGN(ne, "hsm:KeyBits=1024", NULL), POL_IMPLICIT_DENY);
	pol_policy_free(lt);
	pol_policy_free(le);
	pol_policy_free(gt);
	pol_policy_free(ge);
	pol_policy_free(eq);
	pol_policy_free(ne);
}

static void
test_date_ops(void)
{
	struct pol_policy *lt =
	        cond_policy("      DateLessThan: { gw:CurrentTime: \"2026-03-02T06:00:00Z\" }\n");
	struct pol_policy *ge =
	        cond_policy("      DateGreaterThanEquals: { gw:CurrentTime: \"2026-03-02\" }\n");
	struct pol_policy *eq = cond_policy(
	        "      DateEquals: { gw:CurrentTime: \"2026-03-02T08:00:00+02:00\" }\n");
	struct pol_policy *past = cond_policy(
	        "      DateGreaterThan: { gw:CurrentTime: \"2000-01-01T00:00:00Z\" }\n");

	CU_ASSERT_EQUAL(SIGN(lt, "gw:CurrentTime=2026-03-02T05:59:59Z", NULL), POL_ALLOWED);
	CU_ASSERT_EQUAL(SIGN(lt, "gw:CurrentTime=2026-03-02T06:00:00Z", NULL), POL_IMPLICIT_DENY);
	CU_ASSERT_EQUAL(SIGN(ge, "gw:CurrentTime=1772409600", NULL), POL_ALLOWED); /* 03-02 */
	CU_ASSERT_EQUAL(SIGN(ge, "gw:CurrentTime=2026-03-01T23:59:59.5Z", NULL), POL_IMPLICIT_DENY);
	CU_ASSERT_EQUAL(SIGN(eq, "gw:CurrentTime=2026-03-02T06:00:00Z", NULL), POL_ALLOWED);
	CU_ASSERT_EQUAL(SIGN(eq, "gw:CurrentTime=2026-03-02T08:00:00Z", NULL), POL_IMPLICIT_DENY);
	/* Without gw:CurrentTime the clock is used. */
	CU_ASSERT_EQUAL(SIGN(past, NULL), POL_ALLOWED);
	CU_ASSERT_EQUAL(SIGN(lt, NULL), POL_IMPLICIT_DENY);
	pol_policy_free(lt);
	pol_policy_free(ge);
	pol_policy_free(eq);
	pol_policy_free(past);
}

static void
test_bool(void)
{
	struct pol_policy *pol =
	        cond_policy("      Bool: { \"hsm:KeyAttr/CKA_EXTRACTABLE\": \"false\" }\n");

	CU_ASSERT_EQUAL(SIGN(pol, "hsm:KeyAttr/CKA_EXTRACTABLE=FALSE", NULL), POL_ALLOWED);
	CU_ASSERT_EQUAL(SIGN(pol, "hsm:KeyAttr/CKA_EXTRACTABLE=true", NULL), POL_IMPLICIT_DENY);
	pol_policy_free(pol);
}

static void
test_binary(void)
{
	struct pol_policy *pol = cond_policy("      BinaryEquals: { hsm:KeyId: \"AQID\" }\n");

	CU_ASSERT_EQUAL(SIGN(pol, "hsm:KeyId=AQID", NULL), POL_ALLOWED);
	CU_ASSERT_EQUAL(SIGN(pol, "hsm:KeyId=AQIE", NULL), POL_IMPLICIT_DENY);
	pol_policy_free(pol);
}

static void
test_ip_address(void)
{
	struct pol_policy *pol = cond_policy(
	        "      IpAddress: { gw:SourceIp: [10.64.0.0/12, \"2001:db8::/32\", 192.0.2.1] }\n");
	struct pol_policy *not = cond_policy("      NotIpAddress: { gw:SourceIp: 10.0.0.0/8 }\n");

	CU_ASSERT_EQUAL(SIGN(pol, "gw:SourceIp=10.79.255.255", NULL), POL_ALLOWED);
	CU_ASSERT_EQUAL(SIGN(pol, "gw:SourceIp=10.80.0.0", NULL), POL_IMPLICIT_DENY);
	CU_ASSERT_EQUAL(SIGN(pol, "gw:SourceIp=2001:db8:1::5", NULL), POL_ALLOWED);
	CU_ASSERT_EQUAL(SIGN(pol, "gw:SourceIp=2001:db9::5", NULL), POL_IMPLICIT_DENY);
	CU_ASSERT_EQUAL(SIGN(pol, "gw:SourceIp=192.0.2.1", NULL), POL_ALLOWED);
	CU_ASSERT_EQUAL(SIGN(pol, "gw:SourceIp=192.0.2.2", NULL), POL_IMPLICIT_DENY);
	/* A v4-mapped v6 address is the v4 address. */
	CU_ASSERT_EQUAL(SIGN(pol, "gw:SourceIp=::ffff:10.64.0.1", NULL), POL_ALLOWED);
	CU_ASSERT_EQUAL(SIGN(not, "gw:SourceIp=192.168.1.1", NULL), POL_ALLOWED);
	CU_ASSERT_EQUAL(SIGN(not, "gw:SourceIp=10.1.2.3", NULL), POL_IMPLICIT_DENY);
	pol_policy_free(pol);
	pol_policy_free(not );
}

static void
test_crn_ops(void)
{
	struct pol_policy *like = cond_policy(
	        "      CrnLike: { hsm:Partition: \"crn:hsmgate:demo:partition:pay*\" }\n");
	struct pol_policy *nlike = cond_policy(
	        "      CrnNotLike: { hsm:Partition: \"crn:hsmgate:demo:partition:tmp-*\" }\n");

	CU_ASSERT_EQUAL(SIGN(like, "hsm:Partition=crn:hsmgate:demo:partition:payments", NULL),
	                POL_ALLOWED);
	CU_ASSERT_EQUAL(SIGN(like, "hsm:Partition=crn:hsmgate:demo:partition:hr", NULL),
	                POL_IMPLICIT_DENY);
	CU_ASSERT_EQUAL(SIGN(nlike, "hsm:Partition=crn:hsmgate:demo:partition:prod", NULL),
	                POL_ALLOWED);
	CU_ASSERT_EQUAL(SIGN(nlike, "hsm:Partition=crn:hsmgate:demo:partition:tmp-1", NULL),
	                POL_IMPLICIT_DENY);
	pol_policy_free(like);
	pol_policy_free(nlike);
}

static void
test_variables_in_resources(void)
{
	struct pol_policy *pol =
	        polt_load(HDR "  - sid: Own\n    effect: allow\n    principals: \"*\"\n"
	                      "    actions: hsm.crypto.sign\n"
	                      "    resources: \"crn:hsmgate:${hsm:Tenant}:partition:demo:key:label/"
	                      "${gw:PrincipalTag/team}-*\"\n");

	CU_ASSERT_EQUAL(polt_eval(pol, P_ALICE, "hsm.crypto.sign",
	                          "crn:hsmgate:demo:partition:demo:key:label/pay-1",
	                          "gw:PrincipalTag/team=pay", NULL),
	                POL_ALLOWED);
	CU_ASSERT_EQUAL(polt_eval(pol, P_ALICE, "hsm.crypto.sign",
	                          "crn:hsmgate:demo:partition:demo:key:label/hr-1",
	                          "gw:PrincipalTag/team=pay", NULL),
	                POL_IMPLICIT_DENY);
	/* Unresolvable: the statement does not match, and the key is reported missing. */
	CU_ASSERT_EQUAL(polt_eval(pol, P_ALICE, "hsm.crypto.sign",
	                          "crn:hsmgate:demo:partition:demo:key:label/-1", NULL),
	                POL_IMPLICIT_DENY);
	CU_ASSERT_EQUAL(pol_decision_missing_count(polt_dec), 1);
	/* A variable's value is literal: a '*' in it is no wildcard. */
	CU_ASSERT_EQUAL(polt_eval(pol, P_ALICE, "hsm.crypto.sign",
	                          "crn:hsmgate:demo:partition:demo:key:label/payroll-1",
	                          "gw:PrincipalTag/team=pay*", NULL),
	                POL_IMPLICIT_DENY);
	pol_policy_free(pol);
}

static void
test_variables_default_and_escapes(void)
{
	struct pol_policy *pol = cond_policy(
	        "      StringEquals:\n"
	        "        hsm:KeyLabel: \"${gw:PrincipalTag/team, 'shared'}-${*}${$}\"\n");
	struct pol_policy *self =
	        cond_policy("      StringLike: { hsm:KeyLabel: \"${hsm:PrincipalName}/*\" }\n");

	CU_ASSERT_EQUAL(SIGN(pol, "hsm:KeyLabel=shared-*$", NULL), POL_ALLOWED);
	CU_ASSERT_EQUAL(SIGN(pol, "hsm:KeyLabel=pay-*$", "gw:PrincipalTag/team=pay", NULL),
	                POL_ALLOWED);
	CU_ASSERT_EQUAL(SIGN(pol, "hsm:KeyLabel=shared-x$", NULL), POL_IMPLICIT_DENY);
	CU_ASSERT_EQUAL(SIGN(self, "hsm:KeyLabel=" P_ALICE "/k1", NULL), POL_ALLOWED);
	CU_ASSERT_EQUAL(SIGN(self, "hsm:KeyLabel=" P_BOB "/k1", NULL), POL_IMPLICIT_DENY);
	pol_policy_free(pol);
	pol_policy_free(self);
}

static void
test_roles(void)
{
	struct pol_policy *pol =
	        polt_load("roles:\n  Signer: [hsm.crypto.sign, role:Auditor]\n" HDR
	                  "  - sid: R\n    effect: allow\n    principals: \"*\"\n"
	                  "    actions: [role:CryptoUser, role:Signer]\n    resources: \"*\"\n");

	CU_ASSERT_EQUAL(polt_eval(pol, P_ALICE, "hsm.crypto.decrypt", R_KEY1, NULL), POL_ALLOWED);
	CU_ASSERT_EQUAL(polt_eval(pol, P_ALICE, "hsm.audit.read", R_PART, NULL), POL_ALLOWED);
	CU_ASSERT_EQUAL(polt_eval(pol, P_ALICE, "hsm.keys.generate", R_PART, NULL),
	                POL_IMPLICIT_DENY);
	CU_ASSERT_EQUAL(polt_eval(pol, P_ALICE, "hsm.masterkey.zeroize", R_PART, NULL),
	                POL_IMPLICIT_DENY);
	pol_policy_free(pol);
}

static void
test_groups(void)
{
	struct pol_policy *pol = polt_load(
	        "principals:\n  alice: " P_ALICE "\n"
	        "groups:\n"
	        "  admins: { members: [principal:alice, \"tenant/demo/service/ops-*\"] }\n"
	        "  signers: { match: { \"gw:CertSubject/OU\": [payments-signers] } }\n"
	        "  external: {}\n" HDR "  - sid: G\n    effect: allow\n"
	        "    principals: [group:admins, group:signers, group:external]\n"
	        "    actions: hsm.crypto.sign\n    resources: \"*\"\n");

	CU_ASSERT_EQUAL(polt_eval(pol, P_ALICE, "hsm.crypto.sign", R_KEY1, NULL), POL_ALLOWED);
	CU_ASSERT_EQUAL(
	        polt_eval(pol, "tenant/demo/service/ops-1", "hsm.crypto.sign", R_KEY1, NULL),
	        POL_ALLOWED);
	CU_ASSERT_EQUAL(polt_eval(pol, P_BOB, "hsm.crypto.sign", R_KEY1,
	                          "gw:CertSubject/OU=payments-signers", NULL),
	                POL_ALLOWED);
	CU_ASSERT_EQUAL(polt_eval(pol, P_BOB, "hsm.crypto.sign", R_KEY1, "@external", NULL),
	                POL_ALLOWED);
	CU_ASSERT_EQUAL(polt_eval(pol, P_BOB, "hsm.crypto.sign", R_KEY1, "@other",
	                          "gw:CertSubject/OU=hr", NULL),
	                POL_IMPLICIT_DENY);
	pol_policy_free(pol);
}

static void
test_shadow(void)
{
	struct pol_policy *pol = polt_load(
	        HDR ALLOW_SIGN("A") "  - sid: Trial\n    effect: deny\n    mode: shadow\n"
	                            "    principals: \"*\"\n    actions: hsm.crypto.sign\n"
	                            "    resources: \"" R_KEY2 "\"\n");

	/* Enforced result unchanged; the shadow result says what the trial would do. */
	CU_ASSERT_EQUAL(polt_eval(pol, P_ALICE, "hsm.crypto.sign", R_KEY2, NULL), POL_ALLOWED);
	CU_ASSERT_EQUAL(pol_decision_shadow_result(polt_dec), POL_EXPLICIT_DENY);
	CU_ASSERT(polt_has_sid(POL_LIST_SHADOW_DENY, "Trial"));
	CU_ASSERT_EQUAL(polt_eval(pol, P_ALICE, "hsm.crypto.sign", R_KEY1, NULL), POL_ALLOWED);
	CU_ASSERT_EQUAL(pol_decision_shadow_result(polt_dec), POL_ALLOWED);
	/* A whole file in shadow mode enforces nothing. */
	{
		struct pol_policy *all = polt_load("mode: shadow\n" HDR ALLOW_SIGN("A"));

		CU_ASSERT_EQUAL(polt_eval(all, P_ALICE, "hsm.crypto.sign", R_KEY1, NULL),
		                POL_IMPLICIT_DENY);
		CU_ASSERT_EQUAL(pol_decision_shadow_result(polt_dec), POL_ALLOWED);
		pol_policy_free(all);
	}
	pol_policy_free(pol);
}

static void
test_fail_closed_bad_value(void)
{
	/* A deny guarded by IpAddress must not be skipped because the address is garbage. */
	struct pol_policy *pol = polt_load(HDR ALLOW_SIGN(
	        "A") "  - sid: DenyNet\n    effect: deny\n    principals: \"*\"\n"
	             "    actions: \"*\"\n    resources: \"*\"\n"
	             "    conditions: { IpAddress: { gw:SourceIp: 192.0.2.0/24 } }\n");

	CU_ASSERT_EQUAL(SIGN(pol, "gw:SourceIp=10.0.0.1", NULL), POL_ALLOWED);
	CU_ASSERT_EQUAL(polt_last_err, 0);
	CU_ASSERT_EQUAL(SIGN(pol, "gw:SourceIp=not-an-ip", NULL), POL_IMPLICIT_DENY);
	CU_ASSERT_EQUAL(polt_last_err, POL_ERR_EVAL);
	CU_ASSERT_EQUAL(pol_decision_error(polt_dec), POL_ERR_EVAL);
	pol_policy_free(pol);
}

static void
test_incomplete_request(void)
{
	struct pol_policy *pol = polt_load(HDR ALLOW_SIGN("A"));
	struct pol_request *req = NULL;
	struct pol_decision *dec = NULL;

	CU_ASSERT_EQUAL_FATAL(pol_request_new(&req), 0);
	CU_ASSERT_EQUAL_FATAL(pol_decision_new(&dec), 0);
	CU_ASSERT_EQUAL(pol_request_set_principal(req, P_ALICE), 0);
	CU_ASSERT_EQUAL(pol_request_set_action(req, "hsm.crypto.sign"), 0);
	CU_ASSERT_EQUAL(pol_evaluate(pol, req, dec), POL_ERR_INVAL);
	CU_ASSERT_EQUAL(pol_decision_result(dec), POL_IMPLICIT_DENY);
	CU_ASSERT_EQUAL(pol_request_set_resource(req, R_KEY1), 0);
	CU_ASSERT_EQUAL(pol_evaluate(pol, req, dec), 0);
	CU_ASSERT_EQUAL(pol_decision_result(dec), POL_ALLOWED);
	CU_ASSERT_EQUAL(pol_evaluate(NULL, req, dec), POL_ERR_INVAL);
	CU_ASSERT_EQUAL(pol_decision_result(dec), POL_IMPLICIT_DENY);
	/* Reset and reuse. */
	pol_request_reset(req);
	CU_ASSERT_EQUAL(pol_evaluate(pol, req, dec), POL_ERR_INVAL);
	pol_decision_free(dec);
	pol_request_free(req);
	pol_policy_free(pol);
}

static void
test_explain(void)
{
	struct pol_policy *pol =
	        polt_load(HDR ALLOW_SIGN("AllowSign") "  - sid: DenyKey2\n    effect: deny\n"
	                                              "    principals: \"*\"\n    actions: \"*\"\n"
	                                              "    resources: \"" R_KEY2 "\"\n");
	char buf[2048];

	CU_ASSERT_EQUAL(polt_eval(pol, P_ALICE, "hsm.crypto.sign", R_KEY2, NULL),
	                POL_EXPLICIT_DENY);
	CU_ASSERT_EQUAL(pol_decision_explain(polt_dec, buf, sizeof(buf)), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(buf, "explicit_deny"));
	CU_ASSERT_PTR_NOT_NULL(strstr(buf, "denied by: DenyKey2 (line 8)"));
	CU_ASSERT_PTR_NOT_NULL(strstr(buf, "AllowSign"));
	CU_ASSERT_EQUAL(pol_decision_explain(polt_dec, buf, 10), POL_ERR_TRUNCATED);
	CU_ASSERT_EQUAL(strlen(buf), 9);
	CU_ASSERT_EQUAL(polt_eval(pol, P_ALICE, "hsm.crypto.decrypt", R_KEY1, NULL),
	                POL_IMPLICIT_DENY);
	CU_ASSERT_EQUAL(pol_decision_explain(polt_dec, buf, sizeof(buf)), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(buf, "no statement allows"));
	pol_policy_free(pol);
}

static void
test_tests_block(void)
{
	struct pol_policy *pol = polt_load(
	        HDR ALLOW_SIGN("A") "tests:\n"
	                            "  - name: ok\n    request: { principal: " P_ALICE
	                            ", action: hsm.crypto.sign, resource: \"" R_KEY1 "\" }\n"
	                            "    expect: { decision: allowed, sids: [A] }\n"
	                            "  - name: wrong\n    request: { principal: " P_ALICE
	                            ", action: hsm.crypto.decrypt, resource: \"" R_KEY1 "\" }\n"
	                            "    expect: { decision: allowed }\n");
	unsigned np = 9, nf = 9;

	CU_ASSERT_EQUAL(pol_policy_run_tests(pol, NULL, NULL, &np, &nf), POL_ERR_LINT);
	CU_ASSERT_EQUAL(np, 1);
	CU_ASSERT_EQUAL(nf, 1);
	pol_policy_free(pol);
}

static void
test_demo_policy(void)
{
	struct pol_policy *pol = NULL;
	struct pol_diag d;
	unsigned np = 0, nf = 0;

	CU_ASSERT_EQUAL_FATAL(pol_policy_load("policy/examples/demo-policy.yaml", &pol, &d), 0);
	CU_ASSERT_EQUAL(pol_policy_run_tests(pol, NULL, NULL, &np, &nf), 0);
	CU_ASSERT(np >= 8);
	CU_ASSERT_EQUAL(nf, 0);
	CU_ASSERT_STRING_EQUAL(pol_policy_tenant(pol), "demo");
	pol_policy_free(pol);
}

static void
test_refcount(void)
{
	struct pol_policy *pol = polt_load(HDR ALLOW_SIGN("A"));

	CU_ASSERT_PTR_EQUAL(pol_policy_ref(pol), pol);
	pol_policy_free(pol);
	/* Still alive after one free. */
	CU_ASSERT_EQUAL(polt_eval(pol, P_ALICE, "hsm.crypto.sign", R_KEY1, NULL), POL_ALLOWED);
	pol_policy_free(pol);
}

static void
test_tenant_index(void)
{
	/* Statements whose resources all name one tenant are indexed under it; the rest are
	 * considered for every request. Both must still decide correctly. */
	struct pol_policy *pol = polt_load(
	        HDR
	        "  - sid: Demo\n    effect: allow\n    principals: \"*\"\n"
	        "    actions: hsm.crypto.sign\n"
	        "    resources: [\"crn:hsmgate:demo:partition:a\", \"crn:hsmgate:demo:*\"]\n"
	        "  - sid: Other\n    effect: deny\n    principals: \"*\"\n"
	        "    actions: hsm.crypto.sign\n    resources: \"crn:hsmgate:other:*\"\n"
	        "  - sid: Star\n    effect: allow\n    principals: \"*\"\n"
	        "    actions: hsm.crypto.sign\n    resources: \"crn:hsmgate:o*:x\"\n"
	        "  - sid: Esc\n    effect: allow\n    principals: \"*\"\n"
	        "    actions: hsm.crypto.sign\n    resources: \"crn:hsmgate:${*}:x\"\n"
	        "  - sid: AnyDeny\n    effect: deny\n    principals: \"*\"\n"
	        "    actions: hsm.crypto.sign\n    resources: \"crn:hsmgate:demo:partition:b\"\n"
	        "    conditions: { Bool: { hsm:SessionRW: \"true\" } }\n");

	CU_ASSERT_EQUAL(polt_eval(pol, P_ALICE, "hsm.crypto.sign", R_KEY1, NULL), POL_ALLOWED);
	CU_ASSERT(polt_has_sid(POL_LIST_ALLOW, "Demo"));
	CU_ASSERT_EQUAL(polt_eval(pol, P_ALICE, "hsm.crypto.sign", "crn:hsmgate:other:x", NULL),
	                POL_EXPLICIT_DENY);
	CU_ASSERT_EQUAL(polt_eval(pol, P_ALICE, "hsm.crypto.sign", "crn:hsmgate:ox:x", NULL),
	                POL_ALLOWED);
	CU_ASSERT_EQUAL(polt_eval(pol, P_ALICE, "hsm.crypto.sign", "crn:hsmgate:*:x", NULL),
	                POL_ALLOWED);
	CU_ASSERT(polt_has_sid(POL_LIST_ALLOW, "Esc"));
	CU_ASSERT_EQUAL(polt_eval(pol, P_ALICE, "hsm.crypto.sign", "crn:hsmgate:demox:y", NULL),
	                POL_IMPLICIT_DENY);
	CU_ASSERT_EQUAL(polt_eval(pol, P_ALICE, "hsm.crypto.sign", "crn:hsmgate:demo", NULL),
	                POL_IMPLICIT_DENY);
	CU_ASSERT_EQUAL(polt_eval(pol, P_ALICE, "hsm.crypto.sign", "crn:hsmgate:demo:partition:b",
	                          "hsm:SessionRW=true", NULL),
	                POL_EXPLICIT_DENY);
	CU_ASSERT_EQUAL(polt_eval(pol, P_ALICE, "hsm.crypto.sign", "not-a-crn", NULL),
	                POL_IMPLICIT_DENY);
	pol_policy_free(pol);
}

static const struct test_case cases[] = {
        {"tenant index", test_tenant_index},
        {"default deny", test_default_deny},
        {"explicit deny wins, order-free", test_explicit_deny_wins},
        {"principals", test_principals},
        {"not_principals", test_not_principals},
        {"not_actions", test_not_actions},
        {"not_resources", test_not_resources},
        {"action wildcards, case-insensitive", test_action_wildcards_case_insensitive},
        {"unknown action never allowed", test_unknown_action_never_allowed},
        {"resource case-sensitive", test_resource_case_sensitive},
        {"resource segment-aware wildcards", test_resource_segments},
        {"conditions AND/OR", test_conditions_and_or},
        {"negated operator NOR", test_negated_nor},
        {"missing key", test_missing_key},
        {"IfExists", test_if_exists},
        {"Null", test_null},
        {"ForAnyValue", test_for_any_value},
        {"ForAllValues", test_for_all_values},
        {"ForAnyValue negated", test_for_any_value_negated},
        {"String operators", test_string_ops},
        {"Numeric operators", test_numeric_ops},
        {"Date operators", test_date_ops},
        {"Bool", test_bool},
        {"BinaryEquals", test_binary},
        {"IpAddress/NotIpAddress", test_ip_address},
        {"Crn operators", test_crn_ops},
        {"variables in resources", test_variables_in_resources},
        {"variables: default and escapes", test_variables_default_and_escapes},
        {"role bundles", test_roles},
        {"groups", test_groups},
        {"shadow mode", test_shadow},
        {"fail closed on a bad value", test_fail_closed_bad_value},
        {"incomplete request", test_incomplete_request},
        {"explain", test_explain},
        {"tests: block", test_tests_block},
        {"demo policy", test_demo_policy},
        {"refcount", test_refcount},
        {NULL, NULL},
};

void
test_register(void)
{
	test_suite_add("policy/eval", NULL, polt_cleanup, cases);
}
