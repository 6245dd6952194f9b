/*
 * audit/sink_syslog.c — the `syslog` sink: RFC 5424 messages over TLS with RFC 5425
 * octet-counting framing, one message per event record:
 *
 *   <PRI>1 TIMESTAMP HOSTNAME hsmgate PROCID MSGID [hsmgate@32473 origin=".." seq=".."
 *   leaf=".." chain=".."] EVENT-JSON
 *
 * MSG is the stored event JSON byte for byte, so a SIEM can recompute the leaf hash.
 *
 * Acknowledgement. RFC 5425 has none: a successful TLS write only means the bytes reached
 * our kernel. This driver counts a message as acknowledged once it was written and flushed
 * AND the connection has stayed up for settle_ms after it (the receiver has not closed or
 * reset it); if the connection breaks first, every message still inside that window is
 * sent again on a new connection. That covers a receiver that stops or restarts (its
 * unread socket buffer is lost with the connection), but not a receiver that crashes after
 * reading a message and before writing it to disk: the relp sink (sink_relp.c) sends the
 * same message and is answered for each. AUDIT.md "Sinks" says the same to operators.
 */
#include "audit/sink_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

/* RFC 5424 §6.3.2: SD-ID with an "@" and an IANA Private Enterprise Number. 32473 is the
 * documentation PEN of RFC 5612; a deployment with its own PEN changes it here. */
#define SD_ID          "hsmgate@32473"
#define APP_NAME       "hsmgate"
#define FACILITY_AUDIT 13 /* RFC 5424 §6.2.1 table 1: "log audit" */

struct syslog_sink {
	const struct aud_sink_env *env;
	struct aud_sink_peer peer; /* ring: write time (ms) of each unacknowledged message */
	struct aud_buf buf;
	size_t first, nflight;
};

/* The value of a top-level string field of an event, found by its key in the stored JSON.
 * Events are written by aud_event_encode() with a fixed field order and no whitespace, and
 * the keys used here are not nested anywhere; an absent or odd field yields NULL. */
static const char *
json_field(const char *json, size_t len, const char *key, size_t *vlen)
{
	char pat[40];
	const char *p, *end = json + len, *v;
	int n = snprintf(pat, sizeof(pat), "\"%s\":\"", key);

	if (n < 0 || (size_t)n >= sizeof(pat)) {
		return NULL;
	}
	p = memmem(json, len, pat, (size_t)n);
	if (p == NULL) {
		return NULL;
	}
	v = p + n;
	for (p = v; p < end && *p != '"'; p++) {
		if (*p == '\\') {
			return NULL; /* no escapes in the values we look up */
		}
	}
	if (p >= end) {
		return NULL;
	}
	*vlen = (size_t)(p - v);
	return v;
}

/* RFC 5424 §6.2.1 severities from the event's AT severity. */
static int
severity_of(const struct aud_record_view *rec)
{
	size_t n = 0;
	const char *v = json_field(rec->payload, rec->payload_len, "severity", &n);

	if (v != NULL && n == 8 && memcmp(v, "critical", 8) == 0) {
		return 2; /* Critical: critical conditions */
	}
	if (v != NULL && n == 7 && memcmp(v, "warning", 7) == 0) {
		return 4; /* Warning: warning conditions */
	}
	return 6; /* Informational (normal, or no severity) */
}

/* RFC 5424 §6.3.3: "Inside PARAM-VALUE, the characters '"' (ABNF %d34), '\' (ABNF %d92),
 * and ']' (ABNF %d93) MUST be escaped. This is necessary to avoid parsing errors.
 * Escaping ']' would not strictly be necessary but is REQUIRED by this specification to
 * avoid syslog application implementation errors. Each of these three characters MUST
 * be escaped as '\"', '\\', and '\]' respectively." */
static void
put_param_value(struct aud_buf *b, const char *s, size_t n)
{
	size_t i, run = 0;

	for (i = 0; i < n; i++) {
		if (s[i] == '"' || s[i] == '\\' || s[i] == ']') {
			(void)aud_buf_put(b, s + run, i - run);
			(void)aud_buf_put(b, "\\", 1);
			run = i;
		}
	}
	(void)aud_buf_put(b, s + run, n - run);
}

int
aud_sink_syslog_msg(struct aud_buf *msg, const char *origin, const char *hostname,
                    const char *procid, const struct aud_sink_msg *m)
{
	const struct aud_record_view *rec = &m->rec;
	char leaf[2 * AUD_HASH_LEN + 1], chain[2 * AUD_HASH_LEN + 1], ts[96];
	const char *action;
	size_t alen = 0, i;
	struct tm tm;
	time_t secs = (time_t)(rec->time_ns / 1000000000u);
	int ok_msgid;

	if (gmtime_r(&secs, &tm) == NULL) {
		return AUD_ERR_INVALID;
	}
	/* RFC 5424 §6.2.3: TIMESTAMP is RFC 3339 with the restrictions of §6.2.3.1: upper-case
	 * "T" and "Z", at most 6 digits of TIME-SECFRAC. Microseconds, UTC. */
	snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%06uZ", tm.tm_year + 1900,
	         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
	         (unsigned)(rec->time_ns % 1000000000u / 1000u));
	/* RFC 5424 §6.2.7: MSGID = NILVALUE / 1*32PRINTUSASCII. The action names the event
	 * type; one too long for the field is left to the JSON (NILVALUE "-"). */
	action = json_field(rec->payload, rec->payload_len, "action", &alen);
	ok_msgid = action != NULL && alen >= 1 && alen <= 32;
	for (i = 0; ok_msgid && i < alen; i++) {
		ok_msgid = (unsigned char)action[i] >= 33 && (unsigned char)action[i] <= 126;
	}
	aud_hex_encode(rec->leaf, AUD_HASH_LEN, leaf);
	aud_hex_encode(rec->chain, AUD_HASH_LEN, chain);
	/* RFC 5424 §6: HEADER = PRI VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP
	 * MSGID; PRI = "<" PRIVAL ">", PRIVAL = Facility * 8 + Severity (§6.2.1). */
	(void)aud_buf_printf(msg, "<%d>1 %s ", FACILITY_AUDIT * 8 + severity_of(rec), ts);
	(void)aud_buf_puts(msg, hostname);
	(void)aud_buf_puts(msg, " " APP_NAME " ");
	(void)aud_buf_puts(msg, procid);
	(void)aud_buf_puts(msg, " ");
	if (ok_msgid) {
		(void)aud_buf_put(msg, action, alen);
	} else {
		(void)aud_buf_puts(msg, "-");
	}
	(void)aud_buf_puts(msg, " [" SD_ID " origin=\"");
	put_param_value(msg, origin, strlen(origin));
	(void)aud_buf_printf(msg, "\" seq=\"%" PRIu64 "\" leaf=\"%s\"", rec->seq, leaf);
	(void)aud_buf_printf(msg, " chain=\"%s\"] ", chain);
	/* RFC 5424 §6.4: MSG = MSG-ANY / MSG-UTF8. The event is UTF-8 JSON; it goes without a
	 * BOM (MSG-ANY) so that MSG is exactly the hashed bytes. */
	(void)aud_buf_put(msg, rec->payload, rec->payload_len);
	return msg->failed;
}

int
aud_sink_syslog_frame(struct aud_buf *b, const char *origin, const char *hostname,
                      const char *procid, const struct aud_sink_msg *m)
{
	struct aud_buf msg = {0};
	char len[24];
	int r;

	if ((r = aud_sink_syslog_msg(&msg, origin, hostname, procid, m)) != 0) {
		aud_buf_free(&msg);
		return r;
	}
	/* RFC 5425 §4.3: SYSLOG-FRAME = MSG-LEN SP SYSLOG-MSG, MSG-LEN = NONZERO-DIGIT *DIGIT,
	 * "the octet count of the SYSLOG-MSG in the SYSLOG-FRAME". */
	snprintf(len, sizeof(len), "%zu ", msg.len);
	(void)aud_buf_puts(b, len);
	(void)aud_buf_put(b, msg.data, msg.len);
	aud_buf_free(&msg);
	return b->failed;
}

static int
syslog_open(void **st, const struct aud_sink_env *env, const char *target)
{
	struct syslog_sink *s;
	int r;

	*st = NULL;
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		return AUD_ERR_NOMEM;
	}
	s->env = env;
	/* RFC 5425 §4.1: port 6514 is assigned to syslog over TLS. */
	if ((r = aud_sink_peer_open(&s->peer, env, "syslog", target, 6514)) != 0) {
		free(s);
		return r;
	}
	*st = s;
	return 0;
}

static int
syslog_send(void *st, const struct aud_sink_msg *m, size_t n, uint32_t *retry_ms)
{
	struct syslog_sink *s = st;
	uint64_t now;
	size_t i;
	int r;

	*retry_ms = 0;
	if (s->peer.conn == NULL) {
		if ((r = aud_sink_peer_connect(&s->peer)) != 0) {
			return r;
		}
		s->first = 0;
		s->nflight = 0;
	}
	if (s->nflight + n > s->peer.cap) {
		return AUD_ERR_INVALID; /* the runner never has more than window_max in flight */
	}
	s->buf.len = 0;
	for (i = 0; i < n; i++) {
		if ((r = aud_sink_syslog_frame(&s->buf, s->env->origin, s->env->hostname,
		                               s->peer.procid, &m[i])) != 0) {
			return r;
		}
	}
	if ((r = aud_sink_peer_write(&s->peer, s->buf.data, s->buf.len)) != 0) {
		return r;
	}
	now = aud_mono_ms();
	for (i = 0; i < n; i++) {
		s->peer.ring[(s->first + s->nflight++) % s->peer.cap] = now;
	}
	return 0;
}

static int
syslog_acked(void *st, size_t sent, size_t *nacked)
{
	struct syslog_sink *s = st;
	uint64_t now = aud_mono_ms();
	size_t k = 0;

	*nacked = 0;
	if (s->peer.conn == NULL || sent != s->nflight) {
		return s->peer.conn == NULL && sent == 0 ? 0 : AUD_ERR_IO;
	}
	if (!aud_sink_conn_alive(s->peer.conn)) {
		s->env->logf(s->env, LOG_WARNING, "%s:%u closed the connection", s->peer.host,
		             s->peer.port);
		return AUD_ERR_IO;
	}
	while (k < s->nflight &&
	       now - s->peer.ring[(s->first + k) % s->peer.cap] >= s->env->o->settle_ms) {
		k++;
	}
	s->first = (s->first + k) % s->peer.cap;
	s->nflight -= k;
	*nacked = k;
	return 0;
}

static void
syslog_reset(void *st)
{
	struct syslog_sink *s = st;

	aud_sink_conn_close(s->peer.conn);
	s->peer.conn = NULL;
	s->first = 0;
	s->nflight = 0;
}

static void
syslog_close(void *st)
{
	struct syslog_sink *s = st;

	syslog_reset(s);
	aud_sink_peer_close(&s->peer);
	aud_buf_free(&s->buf);
	free(s);
}

const struct aud_sink_driver aud_sink_syslog_driver = {
        .scheme = "syslog://",
        .open = syslog_open,
        .send = syslog_send,
        .acked = syslog_acked,
        .reset = syslog_reset,
        .close = syslog_close,
};
