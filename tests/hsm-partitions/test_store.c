/* tests/hsm-partitions/test_store.c — hsm-partitions/store.c, seal.c and pin.c: the LMDB
 * interface, the seal seam, and PIN hashes. */
#include "hsm-partitions/part_int.h"
#include "tests/lib/test.h"

#include <stdio.h>
#include <string.h>

static int
count_one(void *arg, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
	(void)key;
	(void)klen;
	(void)val;
	(void)vlen;
	(*(int *)arg)++;
	return 0;
}

static void
test_store_roundtrip(void)
{
	char *dir = test_tmpdir_new("store"), path[512];
	struct part_store *s = NULL;
	struct part_txn *t = NULL;
	const uint8_t *v;
	size_t vlen;
	int n = 0;

	CU_ASSERT_FATAL(dir != NULL);
	snprintf(path, sizeof(path), "%s/a/b", dir); /* parents are made too */
	CU_ASSERT_FATAL(part_store_open(path, &s) == 0);
	CU_ASSERT_FATAL(part_store_txn_begin(s, 1, &t) == 0);
	CU_ASSERT(part_store_put(t, PART_DB_OBJECTS, "k1", 2, "v1", 2) == 0);
	CU_ASSERT(part_store_put(t, PART_DB_OBJECTS, "k2", 2, "v2", 2) == 0);
	CU_ASSERT(part_store_put(t, PART_DB_META, "k1", 2, "meta", 4) == 0);
	CU_ASSERT(part_store_txn_commit(t) == 0);
	/* an aborted write leaves nothing */
	CU_ASSERT_FATAL(part_store_txn_begin(s, 1, &t) == 0);
	CU_ASSERT(part_store_put(t, PART_DB_OBJECTS, "k3", 2, "v3", 2) == 0);
	part_store_txn_abort(t);
	part_store_close(s);
	/* reopen */
	CU_ASSERT_FATAL(part_store_open(path, &s) == 0);
	CU_ASSERT_FATAL(part_store_txn_begin(s, 0, &t) == 0);
	CU_ASSERT(part_store_get(t, PART_DB_OBJECTS, "k1", 2, &v, &vlen) == 0);
	CU_ASSERT(vlen == 2 && memcmp(v, "v1", 2) == 0);
	CU_ASSERT(part_store_get(t, PART_DB_META, "k1", 2, &v, &vlen) == 0);
	CU_ASSERT(vlen == 4 && memcmp(v, "meta", 4) == 0);
	CU_ASSERT_EQUAL(part_store_get(t, PART_DB_OBJECTS, "k3", 2, &v, &vlen), PART_ERR_NOT_FOUND);
	CU_ASSERT(part_store_foreach(t, PART_DB_OBJECTS, count_one, &n) == 0);
	CU_ASSERT_EQUAL(n, 2);
	part_store_txn_abort(t);
	CU_ASSERT_FATAL(part_store_txn_begin(s, 1, &t) == 0);
	CU_ASSERT(part_store_del(t, PART_DB_OBJECTS, "k1", 2) == 0);
	CU_ASSERT_EQUAL(part_store_del(t, PART_DB_OBJECTS, "k1", 2), PART_ERR_NOT_FOUND);
	CU_ASSERT(part_store_clear(t, PART_DB_META) == 0);
	CU_ASSERT(part_store_txn_commit(t) == 0);
	CU_ASSERT_FATAL(part_store_txn_begin(s, 0, &t) == 0);
	n = 0;
	CU_ASSERT(part_store_foreach(t, PART_DB_OBJECTS, count_one, &n) == 0);
	CU_ASSERT_EQUAL(n, 1);
	CU_ASSERT_EQUAL(part_store_get(t, PART_DB_META, "k1", 2, &v, &vlen), PART_ERR_NOT_FOUND);
	part_store_txn_abort(t);
	part_store_close(s);
	test_tmpdir_remove(dir);
}

static void
test_pin_hash(void)
{
	struct part_pin p, q;

	/* The production iteration count, once. */
	CU_ASSERT_FATAL(part_pin_hash((const uint8_t *)"1234", 4, PART_PIN_ITER, &p) == 0);
	CU_ASSERT(p.set && p.iter == PART_PIN_ITER);
	CU_ASSERT_EQUAL(part_pin_check(&p, (const uint8_t *)"1234", 4), 1);
	CU_ASSERT_EQUAL(part_pin_check(&p, (const uint8_t *)"1235", 4), 0);
	CU_ASSERT_EQUAL(part_pin_check(&p, (const uint8_t *)"12345", 5), 0);
	/* Salted: the same PIN hashes differently. */
	CU_ASSERT_FATAL(part_pin_hash((const uint8_t *)"1234", 4, 1000, &q) == 0);
	CU_ASSERT(memcmp(p.salt, q.salt, sizeof(p.salt)) != 0);
	q.set = 0;
	CU_ASSERT_EQUAL(part_pin_check(&q, (const uint8_t *)"1234", 4), 0);
}

static const struct test_case cases[] = {
        {"store roundtrip, reopen, delete, clear", test_store_roundtrip},
        {"PIN hashes", test_pin_hash},
        {NULL, NULL},
};

void
test_register(void)
{
	test_suite_add("hsm-partitions/store", NULL, NULL, cases);
}
