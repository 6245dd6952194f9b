/*
 * tests/lib/test.h — shared helpers for the CUnit unit tests.
 *
 * Each tests/<module>/test_<file>.c is one suite and one binary. It defines
 * test_register(), which adds its suite with test_suite_add(); main() lives in
 * tests/lib/cunit_main.c and prints a final line the runner adds up:
 *   RESULT <name> tests=<n> passed=<p> failed=<f>
 */
#ifndef HSMGATE_TESTS_LIB_TEST_H
#define HSMGATE_TESTS_LIB_TEST_H

#include <CUnit/CUnit.h>
#include <stddef.h>

struct test_case {
	const char *name;
	void (*fn)(void);
};

/* Called by main(): the test file adds its suite here. */
void test_register(void);

/* Adds a suite named `name` with the NULL-name-terminated `cases`. Aborts on CUnit errors. */
void test_suite_add(const char *name, int (*init)(void), int (*cleanup)(void),
                    const struct test_case *cases);

/* A fresh, empty directory under $TMPDIR (or /tmp); removed by test_tmpdir_remove(). */
char *test_tmpdir_new(const char *tag);
void test_tmpdir_remove(char *dir);

/* Writes `len` bytes to `path` (mode 0600); returns 0 or -1. */
int test_file_write(const char *path, const void *data, size_t len);

#endif
