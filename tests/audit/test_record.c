/*
 * tests/audit/test_record.c — audit/record.c and the cursor under it: a record line
 * round-trips; the parser refuses it truncated at every byte, with trailing bytes,
 * non-canonical numbers and hex, bad types and control characters; a deterministic
 * bit-flip loop never crashes and never yields a record with the original hashes and
 * different entry bytes. Also segment names, base64 and hex.
 */
#include "audit/aud_int.h"
#include "tests/lib/test.h"

#include <stdlib.h>
#include <string.h>

static const char payload[] = "{\"action\":\"hsmgate.keys.sign\",\"outcome\":\"success\"}";

static char *
make_line(uint64_t seq, size_t *len)
{
	struct aud_buf b = {0};
	uint8_t prev[AUD_HASH_LEN] = {0}, leaf[AUD_HASH_LEN], chain[AUD_HASH_LEN];

	CU_ASSERT_FATAL(aud_record_format(&b, seq, 1795720070329000000ull, 'E', payload,
	                                  strlen(payload), prev, leaf, chain) == 0);
	CU_ASSERT_FATAL(b.len > 0 && b.data[b.len - 1] == '\n');
	*len = b.len - 1; /* without the newline, as the reader returns it */
	return b.data;
}

static void
test_round_trip(void)
{
	struct aud_record_view rec;
	uint8_t leaf[AUD_HASH_LEN], chain[AUD_HASH_LEN], zero[AUD_HASH_LEN] = {0};
	size_t len;
	char *line = make_line(42, &len);

	CU_ASSERT_FATAL(aud_record_parse(line, len, &rec) == 0);
	CU_ASSERT(rec.seq == 42);
	CU_ASSERT(rec.time_ns == 1795720070329000000ull);
	CU_ASSERT(rec.type == 'E');
	CU_ASSERT(rec.payload_len == strlen(payload));
	CU_ASSERT(memcmp(rec.payload, payload, rec.payload_len) == 0);
	CU_ASSERT(rec.entry == line);
	CU_ASSERT(rec.entry_len == (size_t)(strchr(strchr(line, '\t') + 1, '\t') - line));
	aud_record_leaf(&rec, leaf);
	CU_ASSERT(memcmp(leaf, rec.leaf, AUD_HASH_LEN) == 0);
	aud_hash_chain(zero, leaf, chain);
	CU_ASSERT(memcmp(chain, rec.chain, AUD_HASH_LEN) == 0);
	CU_ASSERT(strncmp(line, "GWA1 42 1795720070329000000 E\t{", 31) == 0);
	free(line);
}

static void
test_truncated_every_byte(void)
{
	struct aud_record_view rec;
	size_t len, i;
	char *line = make_line(7, &len);

	for (i = 0; i < len; i++) {
		char *copy = malloc(i + 1);

		memcpy(copy, line, i);
		CU_ASSERT(aud_record_parse(copy, i, &rec) == AUD_ERR_MALFORMED);
		CU_ASSERT(rec.entry == NULL && rec.seq == 0); /* outputs zeroed on failure */
		free(copy);
	}
	free(line);
}

static void
refused(const char *s)
{
	struct aud_record_view rec;

	CU_ASSERT(aud_record_parse(s, strlen(s), &rec) == AUD_ERR_MALFORMED);
}

static void
test_refusals(void)
{
	size_t len;
	char *line = make_line(7, &len), *v;

	/* trailing bytes */
	v = malloc(len + 2);
	memcpy(v, line, len);
	v[len] = 'x';
	v[len + 1] = '\0';
	refused(v);
	/* upper-case hex */
	memcpy(v, line, len);
	v[len] = '\0';
	v[len - 1] = 'A';
	refused(v);
	free(v);
	/* each header field */
	refused("GWA2 7 1 E\tx\t"
	        "0000000000000000000000000000000000000000000000000000000000000000 "
	        "0000000000000000000000000000000000000000000000000000000000000000");
	refused("GWA1 07 1 E\tx\t"
	        "0000000000000000000000000000000000000000000000000000000000000000 "
	        "0000000000000000000000000000000000000000000000000000000000000000");
	refused("GWA1 18446744073709551616 1 E\tx\t"
	        "0000000000000000000000000000000000000000000000000000000000000000 "
	        "0000000000000000000000000000000000000000000000000000000000000000");
	refused("GWA1 -1 1 E\tx\t"
	        "0000000000000000000000000000000000000000000000000000000000000000 "
	        "0000000000000000000000000000000000000000000000000000000000000000");
	refused("GWA1 7 1 X\tx\t"
	        "0000000000000000000000000000000000000000000000000000000000000000 "
	        "0000000000000000000000000000000000000000000000000000000000000000");
	refused("GWA1 7 1 E\t\t"
	        "0000000000000000000000000000000000000000000000000000000000000000 "
	        "0000000000000000000000000000000000000000000000000000000000000000");
	refused("GWA1 7 1 E\tx\x01y\t"
	        "0000000000000000000000000000000000000000000000000000000000000000 "
	        "0000000000000000000000000000000000000000000000000000000000000000");
	refused("GWA1 7 1 E\tx\t"
	        "0000000000000000000000000000000000000000000000000000000000000000 "
	        "00000000000000000000000000000000000000000000000000000000000000");
	refused("GWA1  7 1 E\tx\t"
	        "0000000000000000000000000000000000000000000000000000000000000000 "
	        "0000000000000000000000000000000000000000000000000000000000000000");
	free(line);
	{
		/* The largest seq is fine. */
		struct aud_record_view rec;
		const char *ok = "GWA1 18446744073709551615 0 R\tx\t"
		                 "0000000000000000000000000000000000000000000000000000000000000000 "
		                 "0000000000000000000000000000000000000000000000000000000000000000";

		CU_ASSERT(aud_record_parse(ok, strlen(ok), &rec) == 0);
		CU_ASSERT(rec.seq == UINT64_MAX);
	}
}

static void
test_format_refusals(void)
{
	struct aud_buf b = {0};
	uint8_t prev[AUD_HASH_LEN] = {0}, leaf[AUD_HASH_LEN], chain[AUD_HASH_LEN];
	char *big = malloc(AUD_MAX_PAYLOAD + 2);

	CU_ASSERT(aud_record_format(&b, 0, 0, 'E', "a\tb", 3, prev, leaf, chain) ==
	          AUD_ERR_INVALID);
	CU_ASSERT(aud_record_format(&b, 0, 0, 'E', "a\nb", 3, prev, leaf, chain) ==
	          AUD_ERR_INVALID);
	CU_ASSERT(aud_record_format(&b, 0, 0, 'Z', "ab", 2, prev, leaf, chain) == AUD_ERR_INVALID);
	CU_ASSERT(aud_record_format(&b, 0, 0, 'E', "", 0, prev, leaf, chain) == AUD_ERR_INVALID);
	memset(big, 'a', AUD_MAX_PAYLOAD + 1);
	CU_ASSERT(aud_record_format(&b, 0, 0, 'E', big, AUD_MAX_PAYLOAD + 1, prev, leaf, chain) ==
	          AUD_ERR_TOO_LARGE);
	CU_ASSERT(b.len == 0);
	free(big);
	aud_buf_free(&b);
}

static void
test_bitflip_loop(void)
{
	struct aud_record_view rec;
	size_t len, i;
	int bit;
	char *line = make_line(123456, &len);

	for (i = 0; i < len; i++) {
		for (bit = 0; bit < 8; bit++) {
			uint8_t leaf[AUD_HASH_LEN];

			line[i] ^= (char)(1 << bit);
			if (aud_record_parse(line, len, &rec) == 0) {
				/* Whatever still parses must not hash to its stored leaf unless the
				 * flip was in the stored hashes themselves (then the chain check
				 * catches it). */
				aud_record_leaf(&rec, leaf);
				CU_ASSERT(memcmp(leaf, rec.leaf, AUD_HASH_LEN) != 0 ||
				          i > rec.entry_len + 1 + 2 * AUD_HASH_LEN);
			}
			line[i] ^= (char)(1 << bit);
		}
	}
	free(line);
}

static void
test_segment_names(void)
{
	char name[64];
	uint64_t f;

	aud_segment_name(1234, name);
	CU_ASSERT_STRING_EQUAL(name, "seg-00000000000000001234.log");
	CU_ASSERT(aud_segment_parse(name, &f) == 1 && f == 1234);
	CU_ASSERT(aud_segment_parse("seg-0000000000000000123.log", &f) == 0);
	CU_ASSERT(aud_segment_parse("seg-00000000000000001234.log~", &f) == 0);
	CU_ASSERT(aud_segment_parse("seg-0000000000000000123x.log", &f) == 0);
	CU_ASSERT(aud_segment_parse("LOCK", &f) == 0);
	CU_ASSERT(aud_segment_parse("seg-99999999999999999999.log", &f) == 0); /* > 2^64-1 */
}

static void
test_base64_hex(void)
{
	static const char *const v[][2] = {
	        {"", ""},
	        {"f", "Zg=="},
	        {"fo", "Zm8="},
	        {"foo", "Zm9v"},
	        {"foob", "Zm9vYg=="},
	        {"fooba", "Zm9vYmE="},
	        {"foobar", "Zm9vYmFy"},
	}; /* RFC 4648 §10 */
	uint8_t out[16], h[2];
	size_t i, n;
	char *s;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		CU_ASSERT_FATAL(aud_b64_encode((const uint8_t *)v[i][0], strlen(v[i][0]), &s, &n) ==
		                0);
		CU_ASSERT_STRING_EQUAL(s, v[i][1]);
		free(s);
		CU_ASSERT(aud_b64_decode(v[i][1], strlen(v[i][1]), out, sizeof(out), &n) == 0);
		CU_ASSERT(n == strlen(v[i][0]) && memcmp(out, v[i][0], n) == 0);
	}
	CU_ASSERT(aud_b64_decode("Zm9=", 4, out, sizeof(out), &n) ==
	          AUD_ERR_MALFORMED); /* non-zero pad bits */
	CU_ASSERT(aud_b64_decode("Zg=a", 4, out, sizeof(out), &n) == AUD_ERR_MALFORMED);
	CU_ASSERT(aud_b64_decode("Zg", 2, out, sizeof(out), &n) == AUD_ERR_MALFORMED);
	CU_ASSERT(aud_b64_decode("Z g=", 4, out, sizeof(out), &n) == AUD_ERR_MALFORMED);
	CU_ASSERT(aud_b64_decode("Zm9vYmFy", 8, out, 5, &n) == AUD_ERR_TOO_LARGE);
	CU_ASSERT(aud_hex_decode("0aff", 4, h, 2) == 0 && h[0] == 0x0a && h[1] == 0xff);
	CU_ASSERT(aud_hex_decode("0AFF", 4, h, 2) == AUD_ERR_MALFORMED);
	CU_ASSERT(aud_hex_decode("0af", 3, h, 2) == AUD_ERR_MALFORMED);
}

static const struct test_case cases[] = {
        {"a record line round-trips; leaf and chain per the format", test_round_trip},
        {"truncated at every byte: refused, outputs zeroed", test_truncated_every_byte},
        {"trailing bytes, non-canonical fields, bad types refused", test_refusals},
        {"the formatter refuses TAB/LF, empty and oversize payloads", test_format_refusals},
        {"deterministic bit-flip loop", test_bitflip_loop},
        {"segment names", test_segment_names},
        {"base64 (RFC 4648 vectors, strict) and hex", test_base64_hex},
        {NULL, NULL},
};

void
test_register(void)
{
	test_suite_add("audit/record", NULL, NULL, cases);
}
