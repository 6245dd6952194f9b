/* tests/lib/cunit_main.c — main() for every unit-test binary (see test.h). */
#include "tests/lib/test.h"

#include <CUnit/Basic.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

void
test_suite_add(const char *name, int (*init)(void), int (*cleanup)(void),
               const struct test_case *cases)
{
	CU_pSuite s = CU_add_suite(name, init, cleanup);

	if (s == NULL) {
		fprintf(stderr, "CU_add_suite(%s): %s\n", name, CU_get_error_msg());
		exit(2);
	}
	for (; cases->name != NULL; cases++) {
		if (CU_add_test(s, cases->name, cases->fn) == NULL) {
			fprintf(stderr, "CU_add_test(%s): %s\n", cases->name, CU_get_error_msg());
			exit(2);
		}
	}
}

char *
test_tmpdir_new(const char *tag)
{
	const char *base = getenv("TMPDIR");
	char *dir = NULL;

	if (base == NULL || *base == '\0') {
		base = "/tmp";
	}
	if (asprintf(&dir, "%s/hsmgate-%s-XXXXXX", base, tag) < 0) {
		return NULL;
	}
	if (mkdtemp(dir) == NULL) {
		free(dir);
		return NULL;
	}
	return dir;
}

static int
rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

void
test_tmpdir_remove(char *dir)
{
	if (dir == NULL) {
		return;
	}
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(dir);
}

int
test_file_write(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	const char *p = data;

	if (fd < 0) {
		return -1;
	}
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n <= 0) {
			close(fd);
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return close(fd);
}

int
main(int argc, char **argv)
{
	const char *name = strrchr(argv[0], '/');
	unsigned run, failed;

	(void)argc;
	name = name != NULL ? name + 1 : argv[0];
	if (CU_initialize_registry() != CUE_SUCCESS) {
		fprintf(stderr, "CU_initialize_registry: %s\n", CU_get_error_msg());
		return 2;
	}
	test_register();
	CU_basic_set_mode(getenv("TEST_VERBOSE") != NULL ? CU_BRM_VERBOSE : CU_BRM_NORMAL);
	CU_basic_run_tests();
	run = CU_get_number_of_tests_run();
	failed = CU_get_number_of_tests_failed() + CU_get_number_of_suites_failed();
	printf("\nRESULT %s tests=%u passed=%u failed=%u\n", name, run,
	       run >= failed ? run - failed : 0, failed);
	CU_cleanup_registry();
	return failed == 0 ? 0 : 1;
}
