/*
 * tests/fuzz/fuzz_input.h — what the fuzz targets that select a parser by the first byte
 * share: that byte, and the rest as an exact-size heap copy, so that ASan sees any read past
 * its end (libFuzzer's own buffer may have room after it). Static in a header: each target is
 * linked alone.
 */
#ifndef HSMGATE_FUZZ_INPUT_H
#define HSMGATE_FUZZ_INPUT_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* *sel = data[0]; the other bytes copied (*n of them): free() it. NULL for an empty input
 * or no memory: nothing to do. */
static inline char *
fuzz_input(const uint8_t *data, size_t size, uint8_t *sel, size_t *n)
{
	char *buf;

	if (size < 1) {
		return NULL;
	}
	*sel = data[0];
	*n = size - 1;
	if ((buf = malloc(*n > 0 ? *n : 1)) != NULL) {
		memcpy(buf, data + 1, *n);
	}
	return buf;
}

#endif
