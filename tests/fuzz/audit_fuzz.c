/*
 * tests/fuzz/audit_fuzz.c — libFuzzer target for every parser in audit/: the record line,
 * a checkpoint or key-rotation record's payload and the signed note inside it (checkpoint
 * note, rotation statement), the inclusion-proof bundle, and the segment reader with its
 * rules for a zero-filled end and a torn write (first byte 0xff: the rest is a segment file). The
 * first byte selects the parser so that one corpus covers all of them.
 */
#include "audit/audit.h"
#include "tests/fuzz/fuzz_input.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[64]; /* fuzz_reader's log directory, removed at exit */

static void
dir_remove(void)
{
	(void)rmdir(dir);
}

/* Writes the input as the one segment of a log directory and reads it to its end. */
static void
fuzz_reader(const char *p, size_t n)
{
	char path[128];
	struct aud_reader *rd = NULL;
	const char *line;
	size_t len, torn;
	uint64_t seg, no, gap;
	int fd, rest, r;

	if (dir[0] == '\0') {
		snprintf(dir, sizeof(dir), "/tmp/audit-fuzz-XXXXXX");
		if (mkdtemp(dir) == NULL) {
			dir[0] = '\0';
			return;
		}
		atexit(dir_remove);
	}
	snprintf(path, sizeof(path), "%s/seg-00000000000000000000.log", dir);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600)) < 0) {
		return;
	}
	if (n > 0 && write(fd, p, n) != (ssize_t)n) {
		close(fd);
		return;
	}
	close(fd);
	/* As a follower reads it, and at rest as recovery and verify do (a torn write). */
	for (rest = 0; rest < 2; rest++) {
		if (aud_reader_open(&rd, dir) != 0) {
			break;
		}
		if (rest) {
			aud_reader_at_rest(rd);
		}
		while ((r = aud_reader_next(rd, &line, &len, &seg, &no, &torn)) == 0) {
		}
		if (r == AUD_ERR_EOF && aud_reader_gap(rd, &gap) && (gap >= n || torn > n)) {
			abort(); /* a torn write lies inside the file */
		}
		aud_reader_free(rd);
		rd = NULL;
	}
	unlink(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t sel;
	struct aud_record_view rec;
	struct aud_checkpoint_view cp;
	struct aud_rotation_view rv;
	char *buf, *note = NULL, *payload = NULL;
	size_t n, len;
	uint64_t seq;

	if ((buf = fuzz_input(data, size, &sel, &n)) == NULL) {
		return 0;
	}
	if (sel == 0xff) {
		fuzz_reader(buf, n);
		free(buf);
		return 0;
	}
	switch (sel % 5) {
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
