/*
 * tests/fuzz/sink_fuzz.c — libFuzzer target for the parsers of what a sink's destination
 * sends back (audit/sink_int.h): a RELP frame (aud_sink_relp_parse), and on a parsed "rsp"
 * its data (aud_sink_relp_rsp) and the offers after its first LF (aud_sink_relp_offers),
 * as sink_relp.c reads a server; and an HTTP response head (aud_sink_http_response), as
 * the https sink reads it. The first byte selects the parser so that one corpus covers
 * all of them: even RELP (frames one after another, as in the sink's buffer; a selector
 * of 128 or more also lowers the DATALEN cap), odd HTTP.
 */
#include "audit/sink_int.h"
#include "tests/fuzz/fuzz_input.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A fixed "now" for HTTP-dates in Retry-After: runs must not depend on the clock. */
#define FUZZ_NOW 1795720070

static void
fuzz_relp(const char *buf, size_t n, size_t max)
{
	struct aud_relp_frame f;
	const char *text, *rest, *why;
	size_t used, tlen, rlen, off = 0;
	int status, r;

	while (off <= n) {
		r = aud_sink_relp_parse(buf + off, n - off, max, &f, &used);
		if (r != 0) {
			if (r != AUD_ERR_EOF && r != AUD_ERR_MALFORMED && r != AUD_ERR_TOO_LARGE) {
				abort();
			}
			break;
		}
		/* A parsed frame lies inside the buffer, its data inside the frame. */
		if (used == 0 || used > n - off || f.data_len > max ||
		    (f.data != NULL &&
		     (f.data < buf + off || f.data + f.data_len > buf + off + used)) ||
		    (f.data == NULL && f.data_len != 0) || f.command[0] == '\0' ||
		    memchr(f.command, '\0', sizeof(f.command)) == NULL) {
			abort();
		}
		if (strcmp(f.command, "rsp") == 0 &&
		    aud_sink_relp_rsp(f.data, f.data_len, &status, &text, &tlen, &rest, &rlen) ==
		            0) {
			if (status < 0 || status > 999 ||
			    (text != NULL && text + tlen > f.data + f.data_len) ||
			    (rest != NULL && rest + rlen != f.data + f.data_len)) {
				abort();
			}
			if (aud_sink_relp_offers(rest, rlen, &why) != 0 && why == NULL) {
				abort();
			}
		}
		off += used;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t sel;
	char *buf;
	size_t n;
	uint32_t retry_ms;
	int status;

	if ((buf = fuzz_input(data, size, &sel, &n)) == NULL) {
		return 0;
	}
	if (sel % 2 == 0) {
		/* The sink's cap for half of the selectors; small caps for the other half, so
		 * that DATALEN over the cap is reached with short frames too. */
		fuzz_relp(buf, n, sel < 128 ? AUD_RELP_RSP_MAX : (size_t)(sel - 128) / 2);
	} else if (aud_sink_http_response(buf, n, &status, &retry_ms, FUZZ_NOW) == 0) {
		if (status < 100 || status > 599 || retry_ms > 3600u * 1000u) {
			abort();
		}
	}
	free(buf);
	return 0;
}
