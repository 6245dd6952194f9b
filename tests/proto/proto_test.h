/*
 * tests/proto/proto_test.h — helpers shared by the proto suites: the truncate-at-every-byte
 * and bit-flip loops that every decoder goes through (STYLE.md rule 13).
 *
 * Header-only so that it stays inside tests/proto/ (each test file is its own binary).
 * Every decode runs on an exact-size heap copy so that ASan sees any over-read.
 */
#ifndef HSMGATE_TESTS_PROTO_TEST_H
#define HSMGATE_TESTS_PROTO_TEST_H

#include "proto/proto.h"
#include "tests/lib/test.h"

#include <stdlib.h>
#include <string.h>

/* Decodes one message from c with allocations in a; returns 0 or a PROTO_ERR_*. */
typedef int (*pt_decoder)(struct proto_cur *c, struct proto_arena *a, void *ctx);

static inline int
pt_decode_copy(const uint8_t *enc, size_t len, pt_decoder dec, void *ctx, int want_end)
{
	struct proto_arena *a = proto_arena_new();
	uint8_t *copy = malloc(len != 0 ? len : 1);
	struct proto_cur c;
	const uint8_t *start;
	int r;

	CU_ASSERT_FATAL(a != NULL && copy != NULL);
	if (len != 0) {
		memcpy(copy, enc, len);
	}
	proto_cur_init(&c, copy, len);
	start = c.p;
	r = dec(&c, a, ctx);
	if (r != 0) {
		/* STYLE.md rule 8: a failed read leaves the cursor unchanged. */
		CU_ASSERT_PTR_EQUAL(c.p, start);
		CU_ASSERT_EQUAL(c.len, len);
	} else if (want_end) {
		r = proto_cur_end(&c);
	}
	proto_arena_free(a);
	free(copy);
	return r;
}

/* The whole encoding decodes (to its end); every proper prefix fails cleanly. */
static inline void
pt_truncations(const uint8_t *enc, size_t len, pt_decoder dec, void *ctx)
{
	size_t i;
	int r;

	CU_ASSERT_EQUAL(pt_decode_copy(enc, len, dec, ctx, 1), 0);
	for (i = 0; i < len; i++) {
		r = pt_decode_copy(enc, i, dec, ctx, 1);
		CU_ASSERT_NOT_EQUAL(r, 0);
		if (r == 0) {
			fprintf(stderr, "prefix of %zu/%zu bytes decoded\n", i, len);
		}
	}
	/* One byte more is trailing. */
	{
		uint8_t *longer = malloc(len + 1);

		CU_ASSERT_FATAL(longer != NULL);
		if (len != 0) {
			memcpy(longer, enc, len);
		}
		longer[len] = 0;
		CU_ASSERT_EQUAL(pt_decode_copy(longer, len + 1, dec, ctx, 1), PROTO_ERR_TRAILING);
		free(longer);
	}
}

/* Every single-bit flip (up to 64 KiB bits), then 2000 deterministic multi-byte
 * corruptions: none may crash (run under ASan/UBSan). Returns how many still decoded. */
static inline unsigned
pt_bitflips(const uint8_t *enc, size_t len, pt_decoder dec, void *ctx)
{
	uint8_t *m = malloc(len != 0 ? len : 1);
	uint32_t seed = 0x2545f491u;
	unsigned ok = 0;
	size_t bit, i;
	int k;

	CU_ASSERT_FATAL(m != NULL);
	for (bit = 0; bit < len * 8 && bit < 65536; bit++) {
		memcpy(m, enc, len);
		m[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		ok += pt_decode_copy(m, len, dec, ctx, 1) == 0;
	}
	for (i = 0; i < 2000 && len != 0; i++) {
		memcpy(m, enc, len);
		for (k = 0; k < 3; k++) {
			seed = seed * 1103515245u + 12345u;
			m[(seed >> 8) % len] = (uint8_t)(seed >> 20);
		}
		ok += pt_decode_copy(m, len, dec, ctx, 1) == 0;
	}
	free(m);
	return ok;
}

/* A buffer that must have encoded without error. */
#define PT_ENCODED(b) CU_ASSERT_FATAL((b)->failed == 0)

#endif
