/*
 * tools/hsmgate-audit/main.c — the auditor's tool: verify a log, make and rotate checkpoint
 * keys, export and tail events, and produce or check RFC 6962 proofs.
 *
 * Everything that touches the log's format goes through audit/audit.h; this file only
 * parses the command line, filters events (cJSON over the stored payload, never
 * re-serialised) and prints.
 *
 * Exit status: 0 ok; 1 the log (or proof) failed verification; 2 usage or I/O error.
 */
#include "audit/audit.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define EXIT_BAD    1
#define EXIT_USAGE  2
#define MAX_FILE    (1u << 20)
#define MAX_PUBKEYS 16

static const char usage_text[] =
        "usage: hsmgate-audit <command> [options]\n"
        "\n"
        "commands:\n"
        "  verify --log DIR --pubkey FILE... [--from SEQ] [--to SEQ] [--checkpoint FILE]\n"
        "      Recompute every leaf and chain hash and Merkle root, check every checkpoint's\n"
        "      signature, size, time and link to the previous one, and every key rotation;\n"
        "      with --checkpoint (a note kept elsewhere), also detect truncation and rollback.\n"
        "      --pubkey (repeatable; a file may hold several keys) names the trusted keys:\n"
        "      the first checkpoint checked must be signed by one, and rotation records signed\n"
        "      by the key in force move it to the next key. On damage, print the first bad\n"
        "      sequence number and its kind (modified, deleted, reordered, inserted,\n"
        "      truncated, bad signature, key window, inconsistent checkpoint) and exit 1.\n"
        "  keygen --out PREFIX\n"
        "      Write an Ed25519 checkpoint key: PREFIX.key (private, 0600) and PREFIX.pub.\n"
        "  rotate-key --log DIR --key OLD.key --new-key NEW.key\n"
        "      Hand the log over to a new signing key (make it with keygen), with hsmgated\n"
        "      stopped: a checkpoint by OLD, a rotation record signed by OLD and NEW, the\n"
        "      event hsmgate.audit-key.rotate and a checkpoint by NEW. Then set\n"
        "      audit.signing_key to NEW.key. Both key files must be mode 0600.\n"
        "      (With hsmgated running: set audit.signing_key to NEW.key and send it SIGHUP.)\n"
        "  checkpoint --log DIR [--out FILE]\n"
        "      Print the log's last signed checkpoint note: keep it elsewhere (WORM, SIEM,\n"
        "      auditor) and pass it to verify --checkpoint later.\n"
        "  export --log DIR [--format jsonl|cadf] [filters]\n"
        "      jsonl: one envelope per record {seq,time,type,leaf,chain,\n"
        "      event|checkpoint|rotation};\n"
        "      cadf: the stored event JSON of each event record, byte for byte.\n"
        "  tail --log DIR [-n N] [-f] [filters]\n"
        "      The last N (10) events as CADF JSON; -f follows the log as it grows.\n"
        "  prove --log DIR --seq N [--size M] [--out FILE]\n"
        "      An inclusion proof that record N is in the tree of the first checkpoint after it\n"
        "      (or of the checkpoint of size M), with that signed checkpoint.\n"
        "  verify-proof --proof FILE --pubkey FILE...\n"
        "      Check a proof from `prove` without the log; print the proven event. The\n"
        "      checkpoint must be signed by one of the keys: give the key in force at its size.\n"
        "  consistency --log DIR --pubkey FILE... --old FILE [--new FILE]\n"
        "      Prove that the log's tree at --new (default: its last checkpoint) extends the\n"
        "      tree of the checkpoint note in --old; each note must be signed by the key in\n"
        "      force at its size (the log's rotation records say which).\n"
        "  forward --log DIR --sink URL --cursor FILE [--ca FILE] [--cert FILE --key FILE]\n"
        "          [--token-file FILE] [--quarantine FILE] [--hostname NAME] [--follow | --once]\n"
        "      Stream the log's events to a SIEM, at least once: every record after the cursor\n"
        "      is delivered and the cursor (written atomically) moves only on acknowledgement,\n"
        "      so a restart resumes where it stopped (it may resend; dedup on origin + seq).\n"
        "      URL: file:PATH (JSON lines) | syslog://HOST:PORT (RFC 5425 TLS, default port\n"
        "      6514) | relp://HOST:PORT (RELP over TLS: each event acknowledged by the\n"
        "      server, e.g. rsyslog imrelp) | https://HOST:PORT/PATH (JSON-array batches,\n"
        "      bearer token from --token-file; other 4xx answers are quarantined to\n"
        "      --quarantine, default CURSOR.quarantine). --once (default) returns when all\n"
        "      is delivered; --follow keeps following the log until SIGINT/SIGTERM.\n"
        "\n"
        "filters (export, tail):\n"
        "  --since T, --until T   record time, as unix seconds or YYYY-MM-DDTHH:MM:SSZ\n"
        "  --principal ID         initiator.id\n"
        "  --action A             action; a trailing * matches a prefix (hsmgate.keys.*)\n"
        "  --outcome O            success | failure | pending\n";

static void
usage(FILE *f)
{
	fputs(usage_text, f);
}

enum {
	OPT_LOG = 256,
	OPT_PUBKEY,
	OPT_FROM,
	OPT_TO,
	OPT_CHECKPOINT,
	OPT_OUT,
	OPT_FORMAT,
	OPT_SINCE,
	OPT_UNTIL,
	OPT_PRINCIPAL,
	OPT_ACTION,
	OPT_OUTCOME,
	OPT_SEQ,
	OPT_SIZE,
	OPT_PROOF,
	OPT_OLD,
	OPT_NEW,
	OPT_HELP,
	OPT_SINK,
	OPT_CURSOR,
	OPT_CA,
	OPT_CERT,
	OPT_KEY,
	OPT_TOKEN_FILE,
	OPT_QUARANTINE,
	OPT_HOSTNAME,
	OPT_FOLLOW,
	OPT_ONCE,
	OPT_NEW_KEY,
};

static const struct option long_opts[] = {
        {"log", required_argument, NULL, OPT_LOG},
        {"pubkey", required_argument, NULL, OPT_PUBKEY},
        {"from", required_argument, NULL, OPT_FROM},
        {"to", required_argument, NULL, OPT_TO},
        {"checkpoint", required_argument, NULL, OPT_CHECKPOINT},
        {"out", required_argument, NULL, OPT_OUT},
        {"format", required_argument, NULL, OPT_FORMAT},
        {"since", required_argument, NULL, OPT_SINCE},
        {"until", required_argument, NULL, OPT_UNTIL},
        {"principal", required_argument, NULL, OPT_PRINCIPAL},
        {"action", required_argument, NULL, OPT_ACTION},
        {"outcome", required_argument, NULL, OPT_OUTCOME},
        {"seq", required_argument, NULL, OPT_SEQ},
        {"size", required_argument, NULL, OPT_SIZE},
        {"proof", required_argument, NULL, OPT_PROOF},
        {"old", required_argument, NULL, OPT_OLD},
        {"new", required_argument, NULL, OPT_NEW},
        {"help", no_argument, NULL, OPT_HELP},
        {"sink", required_argument, NULL, OPT_SINK},
        {"cursor", required_argument, NULL, OPT_CURSOR},
        {"ca", required_argument, NULL, OPT_CA},
        {"cert", required_argument, NULL, OPT_CERT},
        {"key", required_argument, NULL, OPT_KEY},
        {"token-file", required_argument, NULL, OPT_TOKEN_FILE},
        {"quarantine", required_argument, NULL, OPT_QUARANTINE},
        {"hostname", required_argument, NULL, OPT_HOSTNAME},
        {"follow", no_argument, NULL, OPT_FOLLOW},
        {"once", no_argument, NULL, OPT_ONCE},
        {"new-key", required_argument, NULL, OPT_NEW_KEY},
        {NULL, 0, NULL, 0},
};

struct args {
	const char *log, *pubkey, *checkpoint, *out, *format, *principal, *action, *outcome;
	const char *proof, *old, *new_, *new_key;
	const char *pubkeys[MAX_PUBKEYS]; /* every --pubkey; pubkey is the first */
	size_t npubkeys;
	/* forward */
	const char *sink, *cursor, *ca, *cert, *key, *token_file, *quarantine, *hostname;
	int once;
	uint64_t from, to, seq, size, since_ns, until_ns, n;
	int has_seq, follow;
};

static int
parse_u64(const char *s, uint64_t *v)
{
	char *end;
	unsigned long long x;

	errno = 0;
	if (*s < '0' || *s > '9') {
		return -1;
	}
	x = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0') {
		return -1;
	}
	*v = x;
	return 0;
}

static int
parse_time(const char *s, uint64_t *ns)
{
	struct tm tm;
	uint64_t secs;
	const char *end;

	if (parse_u64(s, &secs) == 0) {
		*ns = secs * 1000000000u;
		return 0;
	}
	memset(&tm, 0, sizeof(tm));
	end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (end == NULL || *end != '\0') {
		return -1;
	}
	*ns = (uint64_t)timegm(&tm) * 1000000000u;
	return 0;
}

static int
read_file(const char *path, char **data, size_t *len)
{
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap);
	int fd;
	ssize_t k;

	*data = NULL;
	*len = 0;
	if (buf == NULL || (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		free(buf);
		return -1;
	}
	for (;;) {
		if (n == cap) {
			char *nb;

			if (cap >= MAX_FILE || (nb = realloc(buf, cap * 2)) == NULL) {
				break;
			}
			buf = nb;
			cap *= 2;
		}
		k = read(fd, buf + n, cap - n);
		if (k <= 0) {
			break;
		}
		n += (size_t)k;
	}
	close(fd);
	if (k < 0 || n == cap) {
		free(buf);
		return -1;
	}
	buf[n] = '\0';
	*data = buf;
	*len = n;
	return 0;
}

static int
write_out(const char *path, const char *data, size_t len)
{
	FILE *f = path != NULL ? fopen(path, "we") : stdout;
	int ok;

	if (f == NULL) {
		fprintf(stderr, "hsmgate-audit: %s: %s\n", path, strerror(errno));
		return EXIT_USAGE;
	}
	ok = fwrite(data, 1, len, f) == len;
	if (path != NULL) {
		ok = fclose(f) == 0 && ok;
	} else {
		ok = fflush(f) == 0 && ok;
	}
	return ok ? 0 : EXIT_USAGE;
}

static int
fail(const char *what, int err)
{
	fprintf(stderr, "hsmgate-audit: %s: %s\n", what, aud_strerror(err));
	return err == AUD_ERR_VERIFY || err == AUD_ERR_SIGNATURE ? EXIT_BAD : EXIT_USAGE;
}

/* ---- verify, keygen, checkpoint ------------------------------------------------------- */

/* The trusted keys of every --pubkey, or NULL after a message. */
static struct aud_keyring *
load_keys(const char *cmd, const struct args *a)
{
	struct aud_keyring *kr = NULL;
	int r;

	if ((r = aud_keyring_load(&kr, a->pubkeys, a->npubkeys)) != 0) {
		fprintf(stderr,
		        "hsmgate-audit %s: --pubkey: %s (each file must hold Ed25519 public keys "
		        "in PEM)\n",
		        cmd, aud_strerror(r));
		return NULL;
	}
	return kr;
}

static int
cmd_verify(const struct args *a)
{
	struct aud_verify_options o;
	struct aud_verify_result res;
	struct aud_keyring *kr;
	int r;

	if (a->log == NULL || a->pubkey == NULL) {
		fprintf(stderr, "hsmgate-audit verify: --log and --pubkey are required\n");
		return EXIT_USAGE;
	}
	if ((kr = load_keys("verify", a)) == NULL) {
		return EXIT_USAGE;
	}
	aud_verify_options_init(&o);
	o.dir = a->log;
	o.keyring = kr;
	o.from = a->from;
	o.to = a->to;
	o.checkpoint_path = a->checkpoint;
	r = aud_log_verify(&o, &res);
	aud_keyring_free(kr);
	if (r == AUD_ERR_VERIFY) {
		printf("FAIL seq=%" PRIu64 " kind=%s: %s\n", res.seq, aud_damage_name(res.damage),
		       res.detail);
		return EXIT_BAD;
	}
	if (r != 0) {
		return fail("verify", r);
	}
	printf("OK %" PRIu64 " records, %" PRIu64 " checkpoints verified; the last covers %" PRIu64
	       " records; %" PRIu64 " records after it are not yet sealed\n",
	       res.records, res.checkpoints, res.last_checkpoint_size, res.unsealed);
	if (res.rotations > 0) {
		printf("keys: %" PRIu64 " rotation%s; the key in force is %s\n", res.rotations,
		       res.rotations > 1 ? "s" : "", res.key_in_force);
	}
	if (res.detail[0] != '\0') {
		printf("note: %s\n", res.detail);
	}
	return 0;
}

static int
cmd_keygen(const struct args *a)
{
	int r;

	if (a->out == NULL) {
		fprintf(stderr, "hsmgate-audit keygen: --out PREFIX is required\n");
		return EXIT_USAGE;
	}
	if ((r = aud_key_generate(a->out)) != 0) {
		fprintf(stderr, "hsmgate-audit keygen: %s: %s%s%s\n", a->out, aud_strerror(r),
		        r == AUD_ERR_IO ? ": " : "", r == AUD_ERR_IO ? strerror(errno) : "");
		return EXIT_USAGE;
	}
	printf("wrote %s.key and %s.pub\n", a->out, a->out);
	return 0;
}

static int
cmd_checkpoint(const struct args *a)
{
	char *note = NULL;
	size_t len;
	int r;

	if (a->log == NULL) {
		fprintf(stderr, "hsmgate-audit checkpoint: --log is required\n");
		return EXIT_USAGE;
	}
	if ((r = aud_log_last_checkpoint(a->log, &note, &len)) != 0) {
		return fail("checkpoint", r);
	}
	r = write_out(a->out, note, len);
	free(note);
	return r;
}

/* ---- rotate-key ----------------------------------------------------------------------- */

/* A private key file must be a regular file only its owner can read or write. */
static int
private_key_file_ok(const char *path)
{
	unsigned mode;
	int r = aud_key_file_private(path, &mode);

	if (r == AUD_ERR_IO) {
		fprintf(stderr, "hsmgate-audit rotate-key: %s: %s\n", path, strerror(errno));
	} else if (r != 0) {
		fprintf(stderr,
		        "hsmgate-audit rotate-key: %s must be a regular file that only its owner "
		        "can use (mode 0600; it is %04o)\n",
		        path, mode);
	}
	return r == 0;
}

static int
cmd_rotate_key(const struct args *a)
{
	struct aud_log_options o;
	struct aud_log *log = NULL;
	struct aud_checkpoint_view cp;
	char *note = NULL, oldv[AUD_MAX_VKEY + 1], newv[AUD_MAX_VKEY + 1];
	size_t len;
	uint64_t seq = 0;
	int r, cr;

	if (a->log == NULL || a->key == NULL || a->new_key == NULL) {
		fprintf(stderr,
		        "hsmgate-audit rotate-key: --log, --key and --new-key are required\n");
		return EXIT_USAGE;
	}
	if (!private_key_file_ok(a->key) || !private_key_file_ok(a->new_key)) {
		return EXIT_USAGE;
	}
	/* The log's origin, from its last checkpoint: a log without one has nothing to hand
	 * over (a new log simply starts with the new key). */
	if ((r = aud_log_last_checkpoint(a->log, &note, &len)) != 0 ||
	    (r = aud_checkpoint_parse_note(note, len, &cp)) != 0) {
		free(note);
		fprintf(stderr,
		        "hsmgate-audit rotate-key: %s: no checkpoint to rotate from (%s); a new "
		        "log "
		        "needs no rotation, configure the new key\n",
		        a->log, aud_strerror(r));
		return EXIT_USAGE;
	}
	free(note);
	if ((r = aud_key_vkey(a->key, cp.origin, oldv)) != 0 ||
	    (r = aud_key_vkey(a->new_key, cp.origin, newv)) != 0) {
		return fail("rotate-key: a key file", r);
	}
	aud_log_options_init(&o);
	o.dir = a->log;
	o.origin = cp.origin;
	o.key_path = a->key;
	if ((r = aud_log_open(&log, &o)) != 0) {
		if (r == AUD_ERR_LOCKED) {
			fprintf(stderr,
			        "hsmgate-audit rotate-key: %s is open in another process: stop "
			        "hsmgated first\n",
			        a->log);
		} else if (r == AUD_ERR_KEY_NOT_CURRENT) {
			fprintf(stderr,
			        "hsmgate-audit rotate-key: %s is not the key in force in %s (the "
			        "one "
			        "that signs its checkpoints now)\n",
			        a->key, a->log);
		} else {
			fprintf(stderr, "hsmgate-audit rotate-key: cannot open %s: %s\n", a->log,
			        aud_strerror(r));
		}
		return r == AUD_ERR_TAMPER ? EXIT_BAD : EXIT_USAGE;
	}
	r = aud_log_rotate(log, a->new_key, &seq);
	cr = aud_log_close(log);
	if (r == AUD_ERR_INVALID) {
		fprintf(stderr,
		        "hsmgate-audit rotate-key: %s is the key in force or a key this log "
		        "retired; make a new one with keygen\n",
		        a->new_key);
		return EXIT_USAGE;
	}
	if (r != 0 || cr != 0) {
		return fail("rotate-key", r != 0 ? r : cr);
	}
	printf("rotated the signing key of %s at seq %" PRIu64 "\n  old %s\n  new %s\n"
	       "Set audit.signing_key to %s before starting hsmgated, give the new public key "
	       "to the auditors, and destroy or lock away %s.\n",
	       a->log, seq, oldv, newv, a->new_key, a->key);
	return 0;
}

/* ---- export and tail ------------------------------------------------------------------ */

static int
filter_match(const struct args *a, const struct aud_record_view *rec)
{
	cJSON *j, *x;
	int ok = 1;

	if (rec->time_ns < a->since_ns || rec->time_ns > a->until_ns) {
		return 0;
	}
	if (a->principal == NULL && a->action == NULL && a->outcome == NULL) {
		return 1;
	}
	if (!aud_record_is_event(rec->type) ||
	    (j = cJSON_ParseWithLength(rec->payload, rec->payload_len)) == NULL) {
		return 0;
	}
	if (a->principal != NULL) {
		x = cJSON_GetObjectItemCaseSensitive(
		        cJSON_GetObjectItemCaseSensitive(j, "initiator"), "id");
		ok = ok && cJSON_IsString(x) && strcmp(x->valuestring, a->principal) == 0;
	}
	if (a->action != NULL) {
		size_t n = strlen(a->action);

		x = cJSON_GetObjectItemCaseSensitive(j, "action");
		ok = ok && cJSON_IsString(x) &&
		     (n > 0 && a->action[n - 1] == '*'
		              ? strncmp(x->valuestring, a->action, n - 1) == 0
		              : strcmp(x->valuestring, a->action) == 0);
	}
	if (a->outcome != NULL) {
		x = cJSON_GetObjectItemCaseSensitive(j, "outcome");
		ok = ok && cJSON_IsString(x) && strcmp(x->valuestring, a->outcome) == 0;
	}
	cJSON_Delete(j);
	return ok;
}

static void
print_record(const struct aud_record_view *rec, int jsonl)
{
	char leaf[2 * AUD_HASH_LEN + 1], chain[2 * AUD_HASH_LEN + 1], ts[40];
	time_t t = (time_t)(rec->time_ns / 1000000000u);
	struct tm tm;

	if (!jsonl) {
		if (aud_record_is_event(rec->type)) {
			fwrite(rec->payload, 1, rec->payload_len, stdout);
			fputc('\n', stdout);
		}
		return;
	}
	gmtime_r(&t, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	aud_hex_encode(rec->leaf, AUD_HASH_LEN, leaf);
	aud_hex_encode(rec->chain, AUD_HASH_LEN, chain);
	printf("{\"seq\":%" PRIu64 ",\"time\":\"%s.%09" PRIu64
	       "Z\",\"type\":\"%c\",\"leaf\":\"%s\","
	       "\"chain\":\"%s\",\"%s\":",
	       rec->seq, ts, rec->time_ns % 1000000000u, rec->type, leaf, chain,
	       aud_record_is_event(rec->type) ? "event"
	       : rec->type == 'K'             ? "rotation"
	                                      : "checkpoint");
	if (!aud_record_is_event(rec->type)) {
		fputc('"', stdout);
	}
	/* The payload as stored: valid JSON (events) or base64 (checkpoints, rotations). */
	fwrite(rec->payload, 1, rec->payload_len, stdout);
	fputs(aud_record_is_event(rec->type) ? "}\n" : "\"}\n", stdout);
}

static int
cmd_export(const struct args *a)
{
	struct aud_reader *rd = NULL;
	const char *line;
	size_t len;
	uint64_t seg, no;
	int jsonl, r;

	if (a->log == NULL) {
		fprintf(stderr, "hsmgate-audit export: --log is required\n");
		return EXIT_USAGE;
	}
	if (a->format == NULL || strcmp(a->format, "jsonl") == 0) {
		jsonl = 1;
	} else if (strcmp(a->format, "cadf") == 0) {
		jsonl = 0;
	} else {
		fprintf(stderr, "hsmgate-audit export: --format is jsonl or cadf\n");
		return EXIT_USAGE;
	}
	if ((r = aud_reader_open(&rd, a->log)) != 0) {
		return fail("export", r);
	}
	while ((r = aud_reader_next(rd, &line, &len, &seg, &no, NULL)) == 0) {
		struct aud_record_view rec;

		if (aud_record_parse(line, len, &rec) != 0) {
			fprintf(stderr,
			        "hsmgate-audit export: line %" PRIu64
			        " is not a record; run verify\n",
			        no);
			aud_reader_free(rd);
			return EXIT_BAD;
		}
		if (filter_match(a, &rec)) {
			print_record(&rec, jsonl);
		}
	}
	aud_reader_free(rd);
	return r == AUD_ERR_EOF ? 0 : fail("export", r);
}

static int
cmd_tail(const struct args *a)
{
	struct aud_reader *rd = NULL;
	const char *line;
	size_t len, i, head = 0, count = 0;
	uint64_t seg, no, n = a->n;
	char **ring = NULL;
	int r;

	if (a->log == NULL) {
		fprintf(stderr, "hsmgate-audit tail: --log is required\n");
		return EXIT_USAGE;
	}
	if (n > 100000) {
		n = 100000;
	}
	if ((ring = calloc(n > 0 ? n : 1, sizeof(*ring))) == NULL ||
	    (r = aud_reader_open(&rd, a->log)) != 0) {
		free(ring);
		return EXIT_USAGE;
	}
	/* Keep the last n matching events, then print them, then follow. */
	while ((r = aud_reader_next(rd, &line, &len, &seg, &no, NULL)) == 0) {
		struct aud_record_view rec;

		if (n == 0 || aud_record_parse(line, len, &rec) != 0 ||
		    !aud_record_is_event(rec.type) || !filter_match(a, &rec)) {
			continue;
		}
		free(ring[head]);
		ring[head] = strndup(rec.payload, rec.payload_len);
		head = (head + 1) % n;
		count += count < n;
	}
	for (i = 0; i < count; i++) {
		char *s = ring[(head + n - count + i) % n];

		if (s != NULL) {
			puts(s);
		}
	}
	fflush(stdout);
	for (i = 0; i < n; i++) {
		free(ring[i]);
	}
	free(ring);
	while (a->follow && (r == 0 || r == AUD_ERR_EOF)) {
		struct aud_record_view rec;

		r = aud_reader_next(rd, &line, &len, &seg, &no, NULL);
		if (r == AUD_ERR_EOF) {
			usleep(200 * 1000);
			continue;
		}
		if (r == 0 && aud_record_parse(line, len, &rec) == 0 &&
		    aud_record_is_event(rec.type) && filter_match(a, &rec)) {
			fwrite(rec.payload, 1, rec.payload_len, stdout);
			fputc('\n', stdout);
			fflush(stdout);
		}
	}
	aud_reader_free(rd);
	return r == AUD_ERR_EOF || r == 0 ? 0 : fail("tail", r);
}

/* ---- proofs --------------------------------------------------------------------------- */

static int
cmd_prove(const struct args *a)
{
	char *text = NULL;
	size_t len;
	int r;

	if (a->log == NULL || !a->has_seq) {
		fprintf(stderr, "hsmgate-audit prove: --log and --seq are required\n");
		return EXIT_USAGE;
	}
	if ((r = aud_proof_build(a->log, a->seq, a->size, &text, &len)) != 0) {
		return fail("prove", r);
	}
	r = write_out(a->out, text, len);
	free(text);
	return r;
}

static int
cmd_verify_proof(const struct args *a)
{
	struct aud_keyring *kr;
	char *text = NULL, *payload = NULL;
	size_t len, plen;
	uint64_t seq;
	int r;

	if (a->proof == NULL || a->pubkey == NULL) {
		fprintf(stderr, "hsmgate-audit verify-proof: --proof and --pubkey are required\n");
		return EXIT_USAGE;
	}
	if (read_file(a->proof, &text, &len) != 0) {
		fprintf(stderr, "hsmgate-audit verify-proof: cannot read %s\n", a->proof);
		return EXIT_USAGE;
	}
	if ((kr = load_keys("verify-proof", a)) == NULL) {
		free(text);
		return EXIT_USAGE;
	}
	r = aud_proof_verify_keyring(text, len, kr, &seq, &payload, &plen);
	aud_keyring_free(kr);
	free(text);
	if (r != 0) {
		printf("FAIL: %s\n", aud_strerror(r));
		return EXIT_BAD;
	}
	printf("OK record %" PRIu64 " is in the signed tree\n%s\n", seq, payload);
	free(payload);
	return 0;
}

static int
cmd_consistency(const struct args *a)
{
	struct aud_keyring *kr;
	char *oldn = NULL, *newn = NULL, *proof = NULL;
	size_t olen, nlen = 0;
	int r;

	if (a->log == NULL || a->pubkey == NULL || a->old == NULL) {
		fprintf(stderr,
		        "hsmgate-audit consistency: --log, --pubkey and --old are required\n");
		return EXIT_USAGE;
	}
	if (read_file(a->old, &oldn, &olen) != 0 ||
	    (a->new_ != NULL && read_file(a->new_, &newn, &nlen) != 0)) {
		fprintf(stderr, "hsmgate-audit consistency: cannot read a checkpoint file\n");
		free(oldn);
		return EXIT_USAGE;
	}
	if ((kr = load_keys("consistency", a)) == NULL) {
		free(oldn);
		free(newn);
		return EXIT_USAGE;
	}
	r = aud_log_consistency_keyring(a->log, kr, oldn, olen, newn, nlen, &proof);
	aud_keyring_free(kr);
	if (r == 0) {
		printf("%sOK consistent\n", proof);
	} else if (r == AUD_ERR_VERIFY || r == AUD_ERR_SIGNATURE) {
		printf("FAIL: %s\n", aud_strerror(r));
		r = EXIT_BAD;
	} else {
		r = fail("consistency", r);
	}
	free(oldn);
	free(newn);
	free(proof);
	return r;
}

/* ---- forward (sinks) ------------------------------------------------------------------ */

static struct aud_sink *forward_sink;

static void
forward_on_signal(int sig)
{
	(void)sig;
	/* aud_sink_stop() is an atomic store: safe in a signal handler. */
	if (forward_sink != NULL) {
		aud_sink_stop(forward_sink);
	}
}

static int
cmd_forward(const struct args *a)
{
	struct aud_sink_options o;
	struct sigaction sa;
	int r;

	if (a->log == NULL || a->sink == NULL || a->cursor == NULL) {
		fprintf(stderr, "hsmgate-audit forward: --log, --sink and --cursor are required\n");
		return EXIT_USAGE;
	}
	if (a->follow && a->once) {
		fprintf(stderr, "hsmgate-audit forward: --follow and --once exclude each other\n");
		return EXIT_USAGE;
	}
	aud_sink_options_init(&o);
	o.log_dir = a->log;
	o.url = a->sink;
	o.cursor_path = a->cursor;
	o.ca_file = a->ca;
	o.cert_file = a->cert;
	o.key_file = a->key;
	o.token_file = a->token_file;
	o.quarantine_path = a->quarantine;
	o.hostname = a->hostname;
	if ((r = aud_sink_open(&forward_sink, &o)) != 0) {
		fprintf(stderr, "hsmgate-audit forward: cannot open sink %s: %s\n", a->sink,
		        aud_strerror(r));
		return EXIT_USAGE;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = forward_on_signal;
	sigemptyset(&sa.sa_mask);
	(void)sigaction(SIGINT, &sa, NULL);
	(void)sigaction(SIGTERM, &sa, NULL);
	/* A receiver that resets the connection must not kill the forwarder. */
	sa.sa_handler = SIG_IGN;
	(void)sigaction(SIGPIPE, &sa, NULL);
	r = a->follow ? aud_sink_run(forward_sink) : aud_sink_run_once(forward_sink);
	fprintf(stderr, "hsmgate-audit forward: cursor %" PRIu64 ", log head %" PRIu64 "\n",
	        aud_sink_cursor(forward_sink), aud_sink_head(forward_sink));
	aud_sink_close(forward_sink);
	forward_sink = NULL;
	if (r == 0 || (r == AUD_ERR_CLOSED && a->follow)) {
		return 0;
	}
	fprintf(stderr, "hsmgate-audit forward: %s\n", aud_strerror(r));
	return r == AUD_ERR_CLOSED ? EXIT_BAD : EXIT_USAGE;
}

/* ---- main ----------------------------------------------------------------------------- */

int
main(int argc, char **argv)
{
	struct args a;
	const char *cmd;
	int c;

	memset(&a, 0, sizeof(a));
	a.to = UINT64_MAX;
	a.until_ns = UINT64_MAX;
	a.n = 10;
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? EXIT_USAGE : 0;
	}
	cmd = argv[1];
	optind = 2;
	while ((c = getopt_long(argc, argv, "n:fh", long_opts, NULL)) != -1) {
		int bad = 0;

		switch (c) {
		case OPT_LOG:
			a.log = optarg;
			break;
		case OPT_PUBKEY:
			if (a.npubkeys == MAX_PUBKEYS) {
				fprintf(stderr, "hsmgate-audit: at most %d --pubkey\n",
				        MAX_PUBKEYS);
				return EXIT_USAGE;
			}
			a.pubkeys[a.npubkeys++] = optarg;
			if (a.pubkey == NULL) {
				a.pubkey = optarg;
			}
			break;
		case OPT_FROM:
			bad = parse_u64(optarg, &a.from);
			break;
		case OPT_TO:
			bad = parse_u64(optarg, &a.to);
			break;
		case OPT_CHECKPOINT:
			a.checkpoint = optarg;
			break;
		case OPT_OUT:
			a.out = optarg;
			break;
		case OPT_FORMAT:
			a.format = optarg;
			break;
		case OPT_SINCE:
			bad = parse_time(optarg, &a.since_ns);
			break;
		case OPT_UNTIL:
			bad = parse_time(optarg, &a.until_ns);
			break;
		case OPT_PRINCIPAL:
			a.principal = optarg;
			break;
		case OPT_ACTION:
			a.action = optarg;
			break;
		case OPT_OUTCOME:
			a.outcome = optarg;
			break;
		case OPT_SEQ:
			bad = parse_u64(optarg, &a.seq);
			a.has_seq = 1;
			break;
		case OPT_SIZE:
			bad = parse_u64(optarg, &a.size);
			break;
		case OPT_PROOF:
			a.proof = optarg;
			break;
		case OPT_OLD:
			a.old = optarg;
			break;
		case OPT_NEW:
			a.new_ = optarg;
			break;
		case 'n':
			bad = parse_u64(optarg, &a.n);
			break;
		case 'f':
			a.follow = 1;
			break;
		case OPT_SINK:
			a.sink = optarg;
			break;
		case OPT_CURSOR:
			a.cursor = optarg;
			break;
		case OPT_CA:
			a.ca = optarg;
			break;
		case OPT_CERT:
			a.cert = optarg;
			break;
		case OPT_KEY:
			a.key = optarg;
			break;
		case OPT_TOKEN_FILE:
			a.token_file = optarg;
			break;
		case OPT_QUARANTINE:
			a.quarantine = optarg;
			break;
		case OPT_HOSTNAME:
			a.hostname = optarg;
			break;
		case OPT_FOLLOW:
			a.follow = 1;
			break;
		case OPT_ONCE:
			a.once = 1;
			break;
		case OPT_NEW_KEY:
			a.new_key = optarg;
			break;
		case 'h':
		case OPT_HELP:
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
		if (bad) {
			fprintf(stderr, "hsmgate-audit: bad value for an option: %s\n", optarg);
			return EXIT_USAGE;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "hsmgate-audit: unexpected argument %s\n", argv[optind]);
		return EXIT_USAGE;
	}
	if (strcmp(cmd, "verify") == 0) {
		return cmd_verify(&a);
	}
	if (strcmp(cmd, "keygen") == 0) {
		return cmd_keygen(&a);
	}
	if (strcmp(cmd, "rotate-key") == 0) {
		return cmd_rotate_key(&a);
	}
	if (strcmp(cmd, "checkpoint") == 0) {
		return cmd_checkpoint(&a);
	}
	if (strcmp(cmd, "export") == 0) {
		return cmd_export(&a);
	}
	if (strcmp(cmd, "tail") == 0) {
		return cmd_tail(&a);
	}
	if (strcmp(cmd, "prove") == 0) {
		return cmd_prove(&a);
	}
	if (strcmp(cmd, "verify-proof") == 0) {
		return cmd_verify_proof(&a);
	}
	if (strcmp(cmd, "consistency") == 0) {
		return cmd_consistency(&a);
	}
	if (strcmp(cmd, "forward") == 0) {
		return cmd_forward(&a);
	}
	fprintf(stderr, "hsmgate-audit: unknown command %s\n", cmd);
	usage(stderr);
	return EXIT_USAGE;
}
