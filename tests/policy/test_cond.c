/*
 * tests/policy/test_cond.c — value parsers and the operator table (policy/cond.c). The
 * operator semantics themselves are exercised end to end in test_eval.c.
 */
#include "policy/internal.h"
#include "tests/policy/polt.h"

static void
test_number(void)
{
	double d;

	CU_ASSERT_EQUAL(pol_parse_number("42", &d), 0);
	CU_ASSERT_EQUAL(d, 42);
	CU_ASSERT_EQUAL(pol_parse_number("-1.5e2", &d), 0);
	CU_ASSERT_EQUAL(d, -150);
	CU_ASSERT_EQUAL(pol_parse_number("", &d), POL_ERR_VALUE);
	CU_ASSERT_EQUAL(pol_parse_number(" 1", &d), POL_ERR_VALUE);
	CU_ASSERT_EQUAL(pol_parse_number("0x10", &d), POL_ERR_VALUE);
	CU_ASSERT_EQUAL(pol_parse_number("inf", &d), POL_ERR_VALUE);
	CU_ASSERT_EQUAL(pol_parse_number("1e999", &d), POL_ERR_VALUE);
	CU_ASSERT_EQUAL(pol_parse_number("1.2.3", &d), POL_ERR_VALUE);
}

static void
test_date(void)
{
	int64_t t;

	CU_ASSERT_EQUAL(pol_parse_date("1970-01-01T00:00:00Z", &t), 0);
	CU_ASSERT_EQUAL(t, 0);
	CU_ASSERT_EQUAL(pol_parse_date("2026-03-02T06:00:00Z", &t), 0);
	CU_ASSERT_EQUAL(t, 1772431200);
	CU_ASSERT_EQUAL(pol_parse_date("2026-03-02T08:00:00.123+02:00", &t), 0);
	CU_ASSERT_EQUAL(t, 1772431200);
	CU_ASSERT_EQUAL(pol_parse_date("2024-02-29", &t), 0);
	CU_ASSERT_EQUAL(pol_parse_date("1772431200", &t), 0);
	CU_ASSERT_EQUAL(t, 1772431200);
	CU_ASSERT_EQUAL(pol_parse_date("2026-13-01", &t), POL_ERR_VALUE);
	CU_ASSERT_EQUAL(pol_parse_date("2026-04-31", &t), POL_ERR_VALUE);
	CU_ASSERT_EQUAL(pol_parse_date("2026-03-02T06:00:00", &t), POL_ERR_VALUE);
	CU_ASSERT_EQUAL(pol_parse_date("2026-03-02T24:00:00Z", &t), POL_ERR_VALUE);
	CU_ASSERT_EQUAL(pol_parse_date("2026-03-02T06:00:00Zx", &t), POL_ERR_VALUE);
	CU_ASSERT_EQUAL(pol_parse_date("yesterday", &t), POL_ERR_VALUE);
	CU_ASSERT_EQUAL(pol_parse_date("", &t), POL_ERR_VALUE);
	CU_ASSERT_EQUAL(pol_parse_date("9999999999999", &t), POL_ERR_VALUE);
}

static void
test_bool(void)
{
	bool b;

	CU_ASSERT_EQUAL(pol_parse_bool("TRUE", &b), 0);
	CU_ASSERT(b);
	CU_ASSERT_EQUAL(pol_parse_bool("false", &b), 0);
	CU_ASSERT_FALSE(b);
	CU_ASSERT_EQUAL(pol_parse_bool("1", &b), POL_ERR_VALUE);
	CU_ASSERT_EQUAL(pol_parse_bool("yes", &b), POL_ERR_VALUE);
}

static void
test_cidr(void)
{
	struct pol_cidr c;
	uint8_t ip[16];

	CU_ASSERT_EQUAL(pol_parse_cidr("10.64.0.0/12", &c), 0);
	CU_ASSERT_EQUAL(c.bits, 108);
	CU_ASSERT_EQUAL(pol_parse_ip("10.79.1.1", ip), 0);
	CU_ASSERT(pol_cidr_contains(&c, ip));
	CU_ASSERT_EQUAL(pol_parse_ip("10.80.1.1", ip), 0);
	CU_ASSERT_FALSE(pol_cidr_contains(&c, ip));
	CU_ASSERT_EQUAL(pol_parse_cidr("::/0", &c), 0);
	CU_ASSERT(pol_cidr_contains(&c, ip));
	CU_ASSERT_EQUAL(pol_parse_cidr("2001:db8::1", &c), 0);
	CU_ASSERT_EQUAL(c.bits, 128);
	CU_ASSERT_EQUAL(pol_parse_cidr("10.0.0.0/33", &c), POL_ERR_VALUE);
	CU_ASSERT_EQUAL(pol_parse_cidr("::/129", &c), POL_ERR_VALUE);
	CU_ASSERT_EQUAL(pol_parse_cidr("10.0.0.0/", &c), POL_ERR_VALUE);
	CU_ASSERT_EQUAL(pol_parse_cidr("10.0.0.0/-1", &c), POL_ERR_VALUE);
	CU_ASSERT_EQUAL(pol_parse_cidr("/8", &c), POL_ERR_VALUE);
	CU_ASSERT_EQUAL(pol_parse_cidr("host.example/8", &c), POL_ERR_VALUE);
	CU_ASSERT_EQUAL(pol_parse_ip("10.0.0", ip), POL_ERR_VALUE);
}

static void
test_base64(void)
{
	CU_ASSERT_EQUAL(pol_base64_valid("AQID"), 0);
	CU_ASSERT_EQUAL(pol_base64_valid("AQ=="), 0);
	CU_ASSERT_EQUAL(pol_base64_valid("AQ="), POL_ERR_VALUE);
	CU_ASSERT_EQUAL(pol_base64_valid("A=QI"), POL_ERR_VALUE);
	CU_ASSERT_EQUAL(pol_base64_valid(""), POL_ERR_VALUE);
	CU_ASSERT_EQUAL(pol_base64_valid("A!ID"), POL_ERR_VALUE);
}

static void
test_operator_names(void)
{
	enum pol_op op;
	enum pol_qual q;
	bool neg, ife;

	CU_ASSERT_EQUAL(pol_op_parse("ForAllValues:StringNotLikeIfExists", &op, &q, &neg, &ife), 0);
	CU_ASSERT_EQUAL(op, POL_OP_STR_LIKE);
	CU_ASSERT_EQUAL(q, POL_Q_ALL);
	CU_ASSERT(neg);
	CU_ASSERT(ife);
	CU_ASSERT_EQUAL(pol_op_parse("NotIpAddress", &op, &q, &neg, &ife), 0);
	CU_ASSERT_EQUAL(op, POL_OP_IP);
	CU_ASSERT(neg);
	CU_ASSERT_EQUAL(pol_op_parse("Null", &op, &q, &neg, &ife), 0);
	CU_ASSERT_EQUAL(pol_op_parse("ForAnyValue:Null", &op, &q, &neg, &ife), POL_ERR_OPERATOR);
	CU_ASSERT_EQUAL(pol_op_parse("stringequals", &op, &q, &neg, &ife), POL_ERR_OPERATOR);
	CU_ASSERT_EQUAL(pol_op_parse("IfExists", &op, &q, &neg, &ife), POL_ERR_OPERATOR);
	CU_ASSERT_EQUAL(pol_op_parse("ForSomeValues:StringEquals", &op, &q, &neg, &ife),
	                POL_ERR_OPERATOR);
}

static const struct test_case cases[] = {
        {"number", test_number},
        {"date", test_date},
        {"bool", test_bool},
        {"cidr and ip", test_cidr},
        {"base64", test_base64},
        {"operator names", test_operator_names},
        {NULL, NULL},
};

void
test_register(void)
{
	test_suite_add("policy/cond", NULL, polt_cleanup, cases);
}
