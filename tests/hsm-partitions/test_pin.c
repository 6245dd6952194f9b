/* tests/hsm-partitions/test_pin.c — hsm-partitions/pin.c: the verified-PIN cache (a match
 * only for the same PIN, user type and record; cleared per user type) and the PBKDF2
 * derivation counter. The hashes themselves are tested in test_store.c. */
#include "hsm-partitions/part_int.h"
#include "tests/lib/test.h"

#include <string.h>

#define PIN(s) (const uint8_t *)(s), strlen(s)

static void
test_cache_match(void)
{
	struct part_pin_cache *c = NULL;
	struct part_pin so, user;

	CU_ASSERT_FATAL(part_pin_hash(PIN("so-pin-1"), 1000, &so) == 0);
	CU_ASSERT_FATAL(part_pin_hash(PIN("user-pin-1"), 1000, &user) == 0);
	CU_ASSERT_FATAL(part_pin_cache_new(&c) == 0);
	/* Empty: nothing matches. */
	CU_ASSERT_EQUAL(part_pin_cache_match(c, CKU_USER, &user, PIN("user-pin-1")), 0);
	part_pin_cache_set(c, CKU_USER, &user, PIN("user-pin-1"));
	CU_ASSERT_EQUAL(part_pin_cache_match(c, CKU_USER, &user, PIN("user-pin-1")), 1);
	/* Another PIN, a prefix, a longer PIN, the empty PIN: no. */
	CU_ASSERT_EQUAL(part_pin_cache_match(c, CKU_USER, &user, PIN("user-pin-2")), 0);
	CU_ASSERT_EQUAL(part_pin_cache_match(c, CKU_USER, &user, PIN("user-pin-")), 0);
	CU_ASSERT_EQUAL(part_pin_cache_match(c, CKU_USER, &user, PIN("user-pin-11")), 0);
	CU_ASSERT_EQUAL(part_pin_cache_match(c, CKU_USER, &user, (const uint8_t *)"", 0), 0);
	/* Per user type: the SO slot is still empty, even for the user's PIN and record. */
	CU_ASSERT_EQUAL(part_pin_cache_match(c, CKU_SO, &user, PIN("user-pin-1")), 0);
	part_pin_cache_set(c, CKU_SO, &so, PIN("so-pin-1"));
	CU_ASSERT_EQUAL(part_pin_cache_match(c, CKU_SO, &so, PIN("so-pin-1")), 1);
	CU_ASSERT_EQUAL(part_pin_cache_match(c, CKU_USER, &user, PIN("user-pin-1")), 1);
	/* Types without a slot are never remembered nor matched. */
	part_pin_cache_set(c, CKU_CONTEXT_SPECIFIC, &user, PIN("user-pin-1"));
	CU_ASSERT_EQUAL(part_pin_cache_match(c, CKU_CONTEXT_SPECIFIC, &user, PIN("user-pin-1")), 0);
	/* Clearing one type leaves the other. */
	part_pin_cache_clear(c, CKU_USER);
	CU_ASSERT_EQUAL(part_pin_cache_match(c, CKU_USER, &user, PIN("user-pin-1")), 0);
	CU_ASSERT_EQUAL(part_pin_cache_match(c, CKU_SO, &so, PIN("so-pin-1")), 1);
	part_pin_cache_free(c);
}

static void
test_cache_bound_to_record(void)
{
	struct part_pin_cache *c = NULL;
	struct part_pin a, b;

	/* The same PIN hashed again (a C_SetPIN or C_InitPIN to the same value): a new salt,
	 * so a MAC made for the old record does not match the new one. */
	CU_ASSERT_FATAL(part_pin_hash(PIN("same-pin"), 1000, &a) == 0);
	CU_ASSERT_FATAL(part_pin_hash(PIN("same-pin"), 1000, &b) == 0);
	CU_ASSERT_FATAL(part_pin_cache_new(&c) == 0);
	part_pin_cache_set(c, CKU_USER, &a, PIN("same-pin"));
	CU_ASSERT_EQUAL(part_pin_cache_match(c, CKU_USER, &a, PIN("same-pin")), 1);
	CU_ASSERT_EQUAL(part_pin_cache_match(c, CKU_USER, &b, PIN("same-pin")), 0);
	/* An unset record never matches, and setting against one remembers nothing. */
	b.set = 0;
	CU_ASSERT_EQUAL(part_pin_cache_match(c, CKU_USER, &b, PIN("same-pin")), 0);
	part_pin_cache_set(c, CKU_SO, &b, PIN("same-pin"));
	CU_ASSERT_EQUAL(part_pin_cache_match(c, CKU_SO, &b, PIN("same-pin")), 0);
	/* Two caches (two worker processes) have different keys: nothing carries over. */
	part_pin_cache_free(c);
	CU_ASSERT_FATAL(part_pin_cache_new(&c) == 0);
	CU_ASSERT_EQUAL(part_pin_cache_match(c, CKU_USER, &a, PIN("same-pin")), 0);
	part_pin_cache_free(c);
}

static void
test_cache_null_and_limits(void)
{
	struct part_pin_cache *c = NULL;
	struct part_pin p;
	uint8_t big[PART_PIN_MAX + 1];

	/* A token without a cache (NULL) is a cache that never matches. */
	CU_ASSERT_FATAL(part_pin_hash(PIN("1234"), 1000, &p) == 0);
	part_pin_cache_set(NULL, CKU_USER, &p, PIN("1234"));
	part_pin_cache_clear(NULL, CKU_USER);
	CU_ASSERT_EQUAL(part_pin_cache_match(NULL, CKU_USER, &p, PIN("1234")), 0);
	part_pin_cache_free(NULL);
	/* A PIN longer than any the token takes is never remembered. */
	memset(big, 'x', sizeof(big));
	CU_ASSERT_FATAL(part_pin_cache_new(&c) == 0);
	part_pin_cache_set(c, CKU_USER, &p, big, sizeof(big));
	CU_ASSERT_EQUAL(part_pin_cache_match(c, CKU_USER, &p, big, sizeof(big)), 0);
	/* The longest one is. */
	part_pin_cache_set(c, CKU_USER, &p, big, PART_PIN_MAX);
	CU_ASSERT_EQUAL(part_pin_cache_match(c, CKU_USER, &p, big, PART_PIN_MAX), 1);
	part_pin_cache_free(c);
}

static void
test_derivation_counter(void)
{
	struct part_pin_cache *c = NULL;
	struct part_pin p;
	uint64_t n0 = part_pin_derivations();

	CU_ASSERT_FATAL(part_pin_hash(PIN("count-me"), 1000, &p) == 0);
	CU_ASSERT_EQUAL(part_pin_derivations(), n0 + 1);
	CU_ASSERT_EQUAL(part_pin_check(&p, PIN("count-me")), 1);
	CU_ASSERT_EQUAL(part_pin_check(&p, PIN("not-me")), 0);
	CU_ASSERT_EQUAL(part_pin_derivations(), n0 + 3);
	/* The cache derives nothing. */
	CU_ASSERT_FATAL(part_pin_cache_new(&c) == 0);
	part_pin_cache_set(c, CKU_USER, &p, PIN("count-me"));
	CU_ASSERT_EQUAL(part_pin_cache_match(c, CKU_USER, &p, PIN("count-me")), 1);
	CU_ASSERT_EQUAL(part_pin_cache_match(c, CKU_USER, &p, PIN("not-me")), 0);
	CU_ASSERT_EQUAL(part_pin_derivations(), n0 + 3);
	part_pin_cache_free(c);
}

static const struct test_case cases[] = {
        {"cache: same PIN, user type and record only", test_cache_match},
        {"cache: bound to the record and the process", test_cache_bound_to_record},
        {"cache: NULL cache, PIN length limits", test_cache_null_and_limits},
        {"PBKDF2 derivation counter", test_derivation_counter},
        {NULL, NULL},
};

void
test_register(void)
{
	test_suite_add("hsm-partitions/pin", NULL, NULL, cases);
}
