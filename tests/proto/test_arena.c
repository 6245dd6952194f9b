/* tests/proto/test_arena.c — proto/arena.c. */
#include "tests/proto/proto_test.h"

#include <stdalign.h>
#include <stdint.h>

static void
test_alloc_zeroed_aligned(void)
{
	struct proto_arena *a = proto_arena_new();
	uint8_t *p;
	size_t i, n;

	CU_ASSERT_FATAL(a != NULL);
	for (n = 1; n < 3000; n += 97) {
		p = proto_arena_alloc(a, n);
		CU_ASSERT_FATAL(p != NULL);
		CU_ASSERT_EQUAL((uintptr_t)p % alignof(max_align_t), 0);
		for (i = 0; i < n; i++) {
			CU_ASSERT_EQUAL_FATAL(p[i], 0);
		}
		memset(p, 0xa5, n);
	}
	proto_arena_free(a);
}

static void
test_zero_size_distinct(void)
{
	struct proto_arena *a = proto_arena_new();
	void *p, *q;

	CU_ASSERT_FATAL(a != NULL);
	p = proto_arena_alloc(a, 0);
	q = proto_arena_alloc(a, 0);
	CU_ASSERT_PTR_NOT_NULL(p);
	CU_ASSERT_PTR_NOT_NULL(q);
	CU_ASSERT_PTR_NOT_EQUAL(p, q);
	proto_arena_free(a);
}

static void
test_large_and_reset(void)
{
	struct proto_arena *a = proto_arena_new();
	uint8_t *big, *small;

	CU_ASSERT_FATAL(a != NULL);
	big = proto_arena_alloc(a, 1 << 20);
	CU_ASSERT_FATAL(big != NULL);
	big[(1 << 20) - 1] = 1;
	small = proto_arena_alloc(a, 16);
	CU_ASSERT_FATAL(small != NULL);
	proto_arena_reset(a);
	small = proto_arena_alloc(a, 16);
	CU_ASSERT_PTR_NOT_NULL(small);
	proto_arena_free(a);
	proto_arena_free(NULL);
}

static void
test_refuse_over_cap(void)
{
	struct proto_arena *a = proto_arena_new();
	int i, got = 0;

	CU_ASSERT_FATAL(a != NULL);
	CU_ASSERT_PTR_NULL(proto_arena_alloc(a, SIZE_MAX));
	CU_ASSERT_PTR_NULL(proto_arena_alloc(a, (size_t)1 << 40));
	/* 64 MiB in total: the 17th block of 4 MiB fails. */
	for (i = 0; i < 20; i++) {
		got += proto_arena_alloc(a, (size_t)4 << 20) != NULL;
	}
	CU_ASSERT_EQUAL(got, 16);
	CU_ASSERT_PTR_NULL(proto_arena_alloc(NULL, 1));
	proto_arena_free(a);
}

static const struct test_case cases[] = {
        {"allocations are zeroed and aligned", test_alloc_zeroed_aligned},
        {"zero-size allocations are distinct and non-NULL", test_zero_size_distinct},
        {"large blocks and reset", test_large_and_reset},
        {"refuse: over the arena cap", test_refuse_over_cap},
        {NULL, NULL},
};

void
test_register(void)
{
	test_suite_add("proto/arena", NULL, NULL, cases);
}
