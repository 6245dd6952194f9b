/*
 * tests/lib/pin.h — for the end-to-end programs in tests/e2e/ that log in through a
 * PKCS #11 module: the PIN from a file, as the tests keep it.
 */
#ifndef HSMGATE_TESTS_LIB_PIN_H
#define HSMGATE_TESTS_LIB_PIN_H

#include <stddef.h>

/* The first pinsz - 1 bytes of the file at path, without trailing CR/LF, NUL-terminated
 * into pin[pinsz]; 0, or -1 if it cannot be opened. */
int test_read_pin(const char *path, char *pin, size_t pinsz);

#endif
