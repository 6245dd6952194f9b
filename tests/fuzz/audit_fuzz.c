/*
 * tests/fuzz/audit_fuzz.c — libFuzzer target for every parser in audit/: the record line,
 * a checkpoint or key-rotation record's payload and the signed note inside it (checkpoint
 * note, rotation statement), and the inclusion-proof bundle. The first byte selects the
 * parser so that one corpus covers all of them.
 */
#include "audit/audit.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct aud_record_view rec;
	struct aud_checkpoint_view cp;
	struct aud_rotation_view rv;
	char *buf, *note = NULL, *payload = NULL;
	size_t n, len;
	uint64_t seq;

	if (size < 1) {
		return 0;
	}
	n = size - 1;
	/* An exact-size copy, so that ASan sees any read past the end. */
	if ((buf = malloc(n > 0 ? n : 1)) == NULL) {
		return 0;
	}
	memcpy(buf, data + 1, n);
	switch (data[0] % 5) {
	case 0:
		if (aud_record_parse(buf, n, &rec) == 0) {
			uint8_t leaf[AUD_HASH_LEN];

			aud_record_leaf(&rec, leaf);
			if ((rec.type == 'C' || rec.type == 'K') &&
			    aud_checkpoint_decode_payload(rec.payload, rec.payload_len, &note,
			                                  &len) == 0) {
				if (rec.type == 'C') {
					(void)aud_checkpoint_parse_note(note, len, &cp);
				} else {
					(void)aud_rotation_parse_note(note, len, &rv);
				}
			}
		}
		break;
	case 1:
		(void)aud_checkpoint_parse_note(buf, n, &cp);
		break;
	case 2:
		if (aud_checkpoint_decode_payload(buf, n, &note, &len) == 0) {
			(void)aud_checkpoint_parse_note(note, len, &cp);
			(void)aud_rotation_parse_note(note, len, &rv);
		}
		break;
	case 4:
		(void)aud_rotation_parse_note(buf, n, &rv);
		break;
	default:
		/* No key file: every parsing step runs, the signature check cannot. */
		(void)aud_proof_verify(buf, n, "/nonexistent/audit-fuzz.pub", &seq, &payload, &len);
		break;
	}
	free(note);
	free(payload);
	free(buf);
	return 0;
}
