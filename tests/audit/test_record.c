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

/* AUDIT.md §2.1's worked example, byte for byte, and the widest header. */
static void
test_format_worked_example(void)
{
	static const char want[] =
	        "GWA1 0 1795720070329000000 E\t{\"action\":\"hsmgate.keys.sign\"}\t"
	        "1eb09dc584bb8ca3445d3ab2287365d3d35a0a0e665247f33145f943200b6ab2 "
	        "f999c0f50693e8e0f838cb423820ea7575e5e1e63e0335236720d776bdded705\n";
	static const char ex_payload[] = "{\"action\":\"hsmgate.keys.sign\"}";
	struct aud_buf b = {0};
	struct aud_record_view rec;
	uint8_t prev[AUD_HASH_LEN] = {0}, leaf[AUD_HASH_LEN], chain[AUD_HASH_LEN];
	char hex[2 * AUD_HASH_LEN + 1];

	CU_ASSERT_FATAL(aud_record_format(&b, 0, 1795720070329000000ull, 'E', ex_payload,
	                                  sizeof(ex_payload) - 1, prev, leaf, chain) == 0);
	CU_ASSERT(b.len == sizeof(want) - 1 && memcmp(b.data, want, b.len) == 0);
	aud_hex_encode(chain, AUD_HASH_LEN, hex);
	CU_ASSERT_STRING_EQUAL(hex,
	                       "f999c0f50693e8e0f838cb423820ea7575e5e1e63e0335236720d776bdded705");
	/* appended after what the buffer holds; 20-digit seq and time */
	CU_ASSERT_FATAL(aud_record_format(&b, UINT64_MAX, UINT64_MAX, 'C', "x", 1, chain, leaf,
	                                  chain) == 0);
	CU_ASSERT(memcmp(b.data + sizeof(want) - 1,
	                 "GWA1 18446744073709551615 18446744073709551615 C\tx\t", 51) == 0);
	CU_ASSERT(b.data[b.len - 1] == '\n');
	CU_ASSERT(aud_record_parse(b.data + sizeof(want) - 1, b.len - sizeof(want), &rec) == 0);
	CU_ASSERT(rec.seq == UINT64_MAX && rec.time_ns == UINT64_MAX && rec.type == 'C');
	CU_ASSERT(memcmp(rec.leaf, leaf, AUD_HASH_LEN) == 0);
	aud_buf_free(&b);
}

/* aud_text_ok takes printable ASCII eight bytes at a time: a control byte, DEL or a bad
 * UTF-8 byte is caught at every offset of a long run, and UTF-8 across the 8-byte steps
 * is still accepted. */
static void
test_text_ok(void)
{
	static const uint8_t bad[] = {0x00, 0x09, 0x0a, 0x1f, 0x7f, 0x80, 0xc0, 0xff};
	char s[64];
	size_t i, k;

	memset(s, 'a', sizeof(s));
	CU_ASSERT(aud_text_ok(s, sizeof(s)));
	CU_ASSERT(aud_text_ok(s, 0));
	for (k = 0; k < sizeof(bad); k++) {
		for (i = 0; i < sizeof(s); i++) {
			s[i] = (char)bad[k];
			CU_ASSERT(!aud_text_ok(s, sizeof(s)));
			CU_ASSERT(aud_text_ok(s, i)); /* the bytes before it are fine */
			s[i] = 'a';
		}
	}
	/* "é" (c3 a9) and "😀" (f0 9f 98 80) at every offset: split by an 8-byte step */
	for (i = 0; i + 4 <= sizeof(s); i++) {
		memcpy(s + i, "\xc3\xa9", 2);
		CU_ASSERT(aud_text_ok(s, sizeof(s)));
		CU_ASSERT(!aud_text_ok(s, i + 1)); /* cut inside the character */
		memcpy(s + i, "\xf0\x9f\x98\x80", 4);
		CU_ASSERT(aud_text_ok(s, sizeof(s)));
		memcpy(s + i, "\xc2\x85", 2); /* U+0085, a C1 control */
		CU_ASSERT(!aud_text_ok(s, sizeof(s)));
		memset(s + i, 'a', 4);
	}
	s[0] = ' ';
	s[1] = '~';
	CU_ASSERT(aud_text_ok(s, sizeof(s)));
}

/* The hex reader's table: exactly 0-9 and a-f, for every byte value in either position. */
static void
test_hex_every_byte(void)
{
	uint8_t h;
	unsigned c;
	char in[2];

	for (c = 0; c < 256; c++) {
		int digit = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');

		in[0] = (char)c;
		in[1] = '7';
		h = 0xee;
		CU_ASSERT((aud_hex_decode(in, 2, &h, 1) == 0) == digit);
		CU_ASSERT(digit ? h == (uint8_t)(strtoul((char[]){(char)c, '7', 0}, NULL, 16))
		                : h == 0);
		in[0] = '7';
		in[1] = (char)c;
		CU_ASSERT((aud_hex_decode(in, 2, &h, 1) == 0) == digit);
	}
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
        {"the formatter writes AUDIT.md's worked example exactly", test_format_worked_example},
        {"text check: every bad byte at every offset, UTF-8 across steps", test_text_ok},
        {"hex digits: every byte value", test_hex_every_byte},
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
