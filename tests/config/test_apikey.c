/* tests/config/test_apikey.c — config/apikey.c: API keys and their stored hashes. */
#include "config/cfg.h"
#include "config/cfg_int.h"
#include "tests/lib/test.h"

#include <stdio.h>
#include <string.h>

/* cfg_apikey_hash("hsk_TjwToLncUHW294Xh8e8t32g-WYxwmEll8WJYKtIB-Cs") */
#define KEY "hsk_TjwToLncUHW294Xh8e8t32g-WYxwmEll8WJYKtIB-Cs"
#define HASH                                                                                       \
	"pbkdf2-sha256$10000$S3c+qhr9XlOFfoIH9IVBTw==$5lCJ7avGBrGTIy/"                             \
	"E9malJwS7Ll7xtKVKER4caOti65g="

static void
test_round_trip(void)
{
	char h[CFG_APIKEY_HASH_MAX];

	CU_ASSERT_EQUAL_FATAL(cfg_apikey_hash("hsk_abc", h, sizeof(h)), 0);
	CU_ASSERT_EQUAL(strncmp(h, "pbkdf2-sha256$10000$", 20), 0);
	CU_ASSERT_EQUAL(cfg_apikey_verify("hsk_abc", h), 1);
}

static void
test_known_hash(void)
{
	CU_ASSERT_EQUAL(cfg_apikey_verify(KEY, HASH), 1);
}

static void
test_wrong_key(void)
{
	char h[CFG_APIKEY_HASH_MAX];

	CU_ASSERT_EQUAL_FATAL(cfg_apikey_hash("hsk_abc", h, sizeof(h)), 0);
	CU_ASSERT_EQUAL(cfg_apikey_verify("hsk_abd", h), 0);
	CU_ASSERT_EQUAL(cfg_apikey_verify("hsk_ab", h), 0);
	CU_ASSERT_EQUAL(cfg_apikey_verify("", h), 0);
	CU_ASSERT_EQUAL(cfg_apikey_verify(KEY "x", HASH), 0);
}

static void
test_salted(void)
{
	char a[CFG_APIKEY_HASH_MAX], b[CFG_APIKEY_HASH_MAX];

	CU_ASSERT_EQUAL_FATAL(cfg_apikey_hash("hsk_same", a, sizeof(a)), 0);
	CU_ASSERT_EQUAL_FATAL(cfg_apikey_hash("hsk_same", b, sizeof(b)), 0);
	CU_ASSERT_STRING_NOT_EQUAL(a, b);
	CU_ASSERT_EQUAL(cfg_apikey_verify("hsk_same", a), 1);
	CU_ASSERT_EQUAL(cfg_apikey_verify("hsk_same", b), 1);
}

static void
test_malformed_stored(void)
{
	static const char *bad[] = {
	        "",
	        "pbkdf2-sha256$",
	        "pbkdf2-sha256$10000$S3c+qhr9XlOFfoIH9IVBTw==",
	        "PBKDF2-SHA256$10000$S3c+qhr9XlOFfoIH9IVBTw==$5lCJ7avGBrGTIy/"
	        "E9malJwS7Ll7xtKVKER4caOti65g=",
	        "pbkdf2-sha256$-1$S3c+qhr9XlOFfoIH9IVBTw==$5lCJ7avGBrGTIy/"
	        "E9malJwS7Ll7xtKVKER4caOti65g=",
	        "pbkdf2-sha256$010000$S3c+qhr9XlOFfoIH9IVBTw==$5lCJ7avGBrGTIy/"
	        "E9malJwS7Ll7xtKVKER4caOti65g=",
	        "pbkdf2-sha256$2000000$S3c+qhr9XlOFfoIH9IVBTw==$5lCJ7avGBrGTIy/"
	        "E9malJwS7Ll7xtKVKER4caOti65g=",
	        /* salt too short (4 bytes) */
	        "pbkdf2-sha256$10000$AAAAAA==$5lCJ7avGBrGTIy/E9malJwS7Ll7xtKVKER4caOti65g=",
	        /* hash of the wrong length (31 bytes) */
	        "pbkdf2-sha256$10000$S3c+qhr9XlOFfoIH9IVBTw==$5lCJ7avGBrGTIy/"
	        "E9malJwS7Ll7xtKVKER4caOti",
	        /* not canonical base64: non-zero trailing bits, whitespace, bad character */
	        "pbkdf2-sha256$10000$S3c+qhr9XlOFfoIH9IVBTx==$5lCJ7avGBrGTIy/"
	        "E9malJwS7Ll7xtKVKER4caOti65g=",
	        "pbkdf2-sha256$10000$ "
	        "S3c+qhr9XlOFfoIH9IVBTw=$5lCJ7avGBrGTIy/E9malJwS7Ll7xtKVKER4caOti65g=",
	        "pbkdf2-sha256$10000$S3c+qhr9XlOFfoIH9IVBT!==$5lCJ7avGBrGTIy/"
	        "E9malJwS7Ll7xtKVKER4caOti65g=",
	        HASH "$",
	        HASH "AAAA",
	        NULL,
	};
	unsigned i;

	for (i = 0; bad[i] != NULL; i++) {
		int r = cfg_apikey_verify(KEY, bad[i]);

		CU_ASSERT_TRUE(r < 0);
		if (r >= 0) {
			fprintf(stderr, "  accepted: %s\n", bad[i]);
		}
	}
	CU_ASSERT_EQUAL(cfg_apikey_verify(KEY, NULL), CFG_ERR_INVALID);
	CU_ASSERT_EQUAL(cfg_apikey_verify(NULL, HASH), CFG_ERR_INVALID);
}

static void
test_hash_refusals(void)
{
	char h[CFG_APIKEY_HASH_MAX], small[40];

	CU_ASSERT_EQUAL(cfg_apikey_hash(NULL, h, sizeof(h)), CFG_ERR_INVALID);
	CU_ASSERT_EQUAL(cfg_apikey_hash("", h, sizeof(h)), CFG_ERR_INVALID);
	CU_ASSERT_TRUE(cfg_apikey_hash("hsk_x", small, sizeof(small)) < 0);
	CU_ASSERT_EQUAL(small[0], '\0');
}

static void
test_new_key(void)
{
	char a[64], b[64], h[CFG_APIKEY_HASH_MAX];
	size_t i;

	CU_ASSERT_EQUAL_FATAL(cfg_apikey_new(a, sizeof(a)), 0);
	CU_ASSERT_EQUAL_FATAL(cfg_apikey_new(b, sizeof(b)), 0);
	CU_ASSERT_EQUAL(strlen(a), 47);
	CU_ASSERT_EQUAL(strncmp(a, "hsk_", 4), 0);
	for (i = 4; a[i] != '\0'; i++) {
		char c = a[i];

		CU_ASSERT_TRUE((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		               (c >= '0' && c <= '9') || c == '-' || c == '_');
	}
	CU_ASSERT_STRING_NOT_EQUAL(a, b);
	CU_ASSERT_EQUAL_FATAL(cfg_apikey_hash(a, h, sizeof(h)), 0);
	CU_ASSERT_EQUAL(cfg_apikey_verify(a, h), 1);
	CU_ASSERT_EQUAL(cfg_apikey_verify(b, h), 0);
	CU_ASSERT_TRUE(cfg_apikey_new(a, 47) < 0);
	CU_ASSERT_EQUAL(cfg_apikey_new(a, 48), 0);
}

static void
test_hash_fits_max(void)
{
	char h[CFG_APIKEY_HASH_MAX];
	unsigned char salt[CFG_APIKEY_SALT_MAX], dk[CFG_APIKEY_DK];
	size_t saltlen;
	unsigned iter;

	CU_ASSERT_EQUAL_FATAL(cfg_apikey_hash(KEY, h, sizeof(h)), 0);
	CU_ASSERT_TRUE(strlen(h) < CFG_APIKEY_HASH_MAX);
	CU_ASSERT_EQUAL(cfg_apikey_parse(h, &iter, salt, &saltlen, dk), 0);
	CU_ASSERT_EQUAL(iter, CFG_APIKEY_ITER);
	CU_ASSERT_EQUAL(saltlen, 16);
}

static const struct test_case cases[] = {
        {"round_trip", test_round_trip},
        {"known_hash", test_known_hash},
        {"wrong_key", test_wrong_key},
        {"salted", test_salted},
        {"malformed_stored", test_malformed_stored},
        {"hash_refusals", test_hash_refusals},
        {"new_key", test_new_key},
        {"hash_fits_max", test_hash_fits_max},
        {NULL, NULL},
};

void
test_register(void)
{
	test_suite_add("config/apikey", NULL, NULL, cases);
}
