/* tests/hsm-partitions/test_masterkey.c — hsm-partitions/masterkey.c: the key file is
 * created once (32 bytes, 0600) and read back the same; loose modes, wrong sizes and
 * symlinks are refused; derivation is deterministic and label-separated. */
#include "hsm-partitions/part_int.h"
#include "tests/lib/test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *dir;
static char path[600];

static int
obtain(struct part_masterkey **k)
{
	struct part_worker_opts o = {0};

	o.partition = "demo";
	o.store_dir = dir;
	o.slot = 1;
	return part_masterkey_obtain(&o, k);
}

static void
setup(void)
{
	dir = test_tmpdir_new("mk");
	CU_ASSERT_FATAL(dir != NULL);
	snprintf(path, sizeof(path), "%s/master.key", dir);
}

static void
teardown(void)
{
	test_tmpdir_remove(dir);
	dir = NULL;
}

static void
test_create_then_read(void)
{
	struct part_masterkey *a = NULL, *b = NULL;
	struct stat st;

	setup();
	CU_ASSERT_FATAL(obtain(&a) == 0);
	CU_ASSERT_FATAL(stat(path, &st) == 0);
	CU_ASSERT(st.st_size == PART_MASTERKEY_LEN && (st.st_mode & 0777) == 0600);
	CU_ASSERT(st.st_uid == geteuid());
	CU_ASSERT_FATAL(obtain(&b) == 0);
	CU_ASSERT(memcmp(part_masterkey_bytes(a), part_masterkey_bytes(b), PART_MASTERKEY_LEN) ==
	          0);
	part_masterkey_free(a);
	part_masterkey_free(b);
	/* No temporary file is left behind. */
	CU_ASSERT(access(path, F_OK) == 0);
	teardown();
}

static void
test_two_partitions_differ(void)
{
	struct part_masterkey *a = NULL, *b = NULL;

	setup();
	CU_ASSERT_FATAL(obtain(&a) == 0);
	CU_ASSERT_FATAL(unlink(path) == 0);
	CU_ASSERT_FATAL(obtain(&b) == 0);
	CU_ASSERT(memcmp(part_masterkey_bytes(a), part_masterkey_bytes(b), PART_MASTERKEY_LEN) !=
	          0);
	part_masterkey_free(a);
	part_masterkey_free(b);
	teardown();
}

static void
test_loose_mode_refused(void)
{
	struct part_masterkey *a = NULL;

	setup();
	CU_ASSERT_FATAL(obtain(&a) == 0);
	part_masterkey_free(a);
	a = NULL;
	CU_ASSERT_FATAL(chmod(path, 0640) == 0);
	CU_ASSERT_EQUAL(obtain(&a), PART_ERR_IO);
	CU_ASSERT(a == NULL);
	CU_ASSERT_FATAL(chmod(path, 0604) == 0);
	CU_ASSERT_EQUAL(obtain(&a), PART_ERR_IO);
	CU_ASSERT_FATAL(chmod(path, 0400) == 0);
	CU_ASSERT(obtain(&a) == 0);
	part_masterkey_free(a);
	teardown();
}

static void
test_wrong_size_refused(void)
{
	struct part_masterkey *a = NULL;
	uint8_t raw[PART_MASTERKEY_LEN + 1] = {0};

	setup();
	CU_ASSERT_FATAL(test_file_write(path, raw, PART_MASTERKEY_LEN - 1) == 0);
	CU_ASSERT_EQUAL(obtain(&a), PART_ERR_CORRUPT);
	CU_ASSERT_FATAL(unlink(path) == 0);
	CU_ASSERT_FATAL(test_file_write(path, raw, sizeof(raw)) == 0);
	CU_ASSERT_EQUAL(obtain(&a), PART_ERR_CORRUPT);
	CU_ASSERT_FATAL(unlink(path) == 0);
	CU_ASSERT_FATAL(test_file_write(path, raw, 0) == 0);
	CU_ASSERT_EQUAL(obtain(&a), PART_ERR_CORRUPT);
	CU_ASSERT(a == NULL);
	teardown();
}

static void
test_symlink_refused(void)
{
	struct part_masterkey *a = NULL;
	char other[700];
	uint8_t raw[PART_MASTERKEY_LEN] = {0};

	setup();
	snprintf(other, sizeof(other), "%s/elsewhere", dir);
	CU_ASSERT_FATAL(test_file_write(other, raw, sizeof(raw)) == 0);
	CU_ASSERT_FATAL(symlink(other, path) == 0);
	CU_ASSERT_EQUAL(obtain(&a), PART_ERR_IO);
	CU_ASSERT(a == NULL);
	teardown();
}

static void
test_missing_dir_refused(void)
{
	struct part_masterkey *a = NULL;
	struct part_worker_opts o = {0};

	setup();
	o.partition = "demo";
	o.store_dir = path; /* a directory that does not exist */
	CU_ASSERT_EQUAL(part_masterkey_obtain(&o, &a), PART_ERR_IO);
	o.store_dir = NULL;
	CU_ASSERT_EQUAL(part_masterkey_obtain(&o, &a), PART_ERR_INVALID);
	CU_ASSERT(a == NULL);
	teardown();
}

static void
test_from_bytes_and_derive(void)
{
	struct part_masterkey *k = NULL, *d1 = NULL, *d2 = NULL, *d3 = NULL;
	uint8_t raw[PART_MASTERKEY_LEN];

	memset(raw, 7, sizeof(raw));
	CU_ASSERT_EQUAL(part_masterkey_from_bytes(raw, sizeof(raw) - 1, &k), PART_ERR_INVALID);
	CU_ASSERT(k == NULL);
	CU_ASSERT_FATAL(part_masterkey_from_bytes(raw, sizeof(raw), &k) == 0);
	CU_ASSERT(memcmp(part_masterkey_bytes(k), raw, sizeof(raw)) == 0);
	CU_ASSERT_FATAL(part_masterkey_derive(k, "label one", &d1) == 0);
	CU_ASSERT_FATAL(part_masterkey_derive(k, "label one", &d2) == 0);
	CU_ASSERT_FATAL(part_masterkey_derive(k, "label two", &d3) == 0);
	CU_ASSERT(memcmp(part_masterkey_bytes(d1), part_masterkey_bytes(d2), PART_MASTERKEY_LEN) ==
	          0);
	CU_ASSERT(memcmp(part_masterkey_bytes(d1), part_masterkey_bytes(d3), PART_MASTERKEY_LEN) !=
	          0);
	CU_ASSERT(memcmp(part_masterkey_bytes(d1), raw, sizeof(raw)) != 0);
	part_masterkey_free(k);
	part_masterkey_free(d1);
	part_masterkey_free(d2);
	part_masterkey_free(d3);
	part_masterkey_free(NULL);
}

static const struct test_case cases[] = {
        {"created 0600 once, read back the same", test_create_then_read},
        {"a new key per partition", test_two_partitions_differ},
        {"group/other permission bits refused", test_loose_mode_refused},
        {"wrong size refused", test_wrong_size_refused},
        {"symlink refused", test_symlink_refused},
        {"missing directory or options refused", test_missing_dir_refused},
        {"from bytes; HKDF derivation", test_from_bytes_and_derive},
        {NULL, NULL},
};

void
test_register(void)
{
	test_suite_add("hsm-partitions/masterkey", NULL, NULL, cases);
}
