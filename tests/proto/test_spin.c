/* tests/proto/test_spin.c — the adaptive busy-poll budget (proto/spin.c). */
#include "tests/proto/proto_test.h"

#define US 1000u

static void
test_off(void)
{
	struct proto_spin sp;

	proto_spin_init(&sp, 0);
	CU_ASSERT_EQUAL(proto_spin_budget(&sp), 0);
	proto_spin_learn(&sp, 1);
	proto_spin_learn(&sp, 0);
	CU_ASSERT_EQUAL(proto_spin_budget(&sp), 0); /* 0 never grows */
}

static void
test_grows_to_max(void)
{
	struct proto_spin sp;

	proto_spin_init(&sp, 200);
	CU_ASSERT_EQUAL(proto_spin_budget(&sp), 50 * US); /* starts at a quarter */
	proto_spin_learn(&sp, 40 * US);                   /* caught: unchanged */
	CU_ASSERT_EQUAL(proto_spin_budget(&sp), 50 * US);
	proto_spin_learn(&sp, 60 * US); /* would have been caught with more */
	CU_ASSERT_EQUAL(proto_spin_budget(&sp), 100 * US);
	proto_spin_learn(&sp, 150 * US);
	CU_ASSERT_EQUAL(proto_spin_budget(&sp), 200 * US);
	proto_spin_learn(&sp, 200 * US); /* at max: caught */
	CU_ASSERT_EQUAL(proto_spin_budget(&sp), 200 * US);
}

static void
test_shrinks_on_long_waits(void)
{
	struct proto_spin sp;

	proto_spin_init(&sp, 200);
	proto_spin_learn(&sp, 150 * US);
	CU_ASSERT_EQUAL(proto_spin_budget(&sp), 100 * US);
	proto_spin_learn(&sp, 150 * US);
	CU_ASSERT_EQUAL(proto_spin_budget(&sp), 200 * US);
	proto_spin_learn(&sp, 700 * US); /* an RSA signature: polling never catches it */
	CU_ASSERT_EQUAL(proto_spin_budget(&sp), 100 * US);
	proto_spin_learn(&sp, 700 * US);
	CU_ASSERT_EQUAL(proto_spin_budget(&sp), 50 * US);
	proto_spin_learn(&sp, 700 * US); /* under a quarter: off */
	CU_ASSERT_EQUAL(proto_spin_budget(&sp), 0);
	proto_spin_learn(&sp, 700 * US);
	CU_ASSERT_EQUAL(proto_spin_budget(&sp), 0);
	proto_spin_learn(&sp, 30 * US); /* short again: back at the start */
	CU_ASSERT_EQUAL(proto_spin_budget(&sp), 50 * US);
}

static void
test_huge_values(void)
{
	struct proto_spin sp;

	proto_spin_init(&sp, UINT32_MAX); /* no overflow in µs -> ns */
	CU_ASSERT_EQUAL(sp.max_ns, (uint64_t)UINT32_MAX * 1000u);
	proto_spin_learn(&sp, sp.max_ns);
	CU_ASSERT_EQUAL(proto_spin_budget(&sp), sp.max_ns / 2u);
	proto_spin_learn(&sp, UINT64_MAX);
	CU_ASSERT_EQUAL(proto_spin_budget(&sp), sp.max_ns / 4u);
}

static void
test_clock(void)
{
	uint64_t a = proto_now_ns(), b = proto_now_ns();

	CU_ASSERT(a > 0);
	CU_ASSERT(b >= a); /* monotonic */
}

static const struct test_case cases[] = {
        {"busy_poll_us 0 never polls", test_off},
        {"a wait within max grows the budget, up to max", test_grows_to_max},
        {"waits over max shrink it to 0, a short one restarts it", test_shrinks_on_long_waits},
        {"huge max and waits", test_huge_values},
        {"monotonic clock", test_clock},
        {NULL, NULL},
};

void
test_register(void)
{
	test_suite_add("proto/spin", NULL, NULL, cases);
}
