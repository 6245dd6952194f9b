/*
 * audit/sink_relp.c — the `relp` sink: each event record as a RELP "syslog" command (the
 * RFC 5424 message of the syslog sink, unframed), over TLS, to a RELP server such as
 * rsyslog's imrelp. RELP (rsyslog's Reliable Event Logging Protocol, specified in librelp's
 * relp.html) answers every command with a "rsp" carrying the same transaction number, so,
 * unlike RFC 5425, a message counts as acknowledged only when the server said "200" for it.
 *
 *   C: 1 open 52 relp_version=0\nrelp_software=hsmgate\ncommands=syslog\n
 *   S: 1 rsp 93 200 OK\nrelp_version=0\nrelp_software=librelp,1.11.0,...\ncommands=syslog\n\n
 *   C: 2 syslog 512 <110>1 2026-... [hsmgate@32473 origin=".." seq=".." ...] {...}\n
 *   S: 2 rsp 6 200 OK\n
 *   C: 9 close 0\n                        (at shutdown, when everything was answered)
 *   S: 9 rsp 0\n
 *
 * The protocol is small enough to speak here, over the TLS connection the other sinks use
 * (sink_tls.c: certificate and host name verified, client certificate). librelp, the one
 * maintained implementation, is GPL-3.0 and would bring its own TLS configuration; and its
 * client API tells the caller when a window drains, not which message was answered.
 *
 * Version: librelp, the reference implementation, speaks relp_version 0 (1.11 answers an
 * offer of 1 with 0), so that is what this sink offers.
 */
#include "audit/sink_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#define RELP_OFFERS   "relp_version=0\nrelp_software=hsmgate\ncommands=syslog"
#define ACK_WAIT_MS   50   /* how long acked() waits for an answer (the runner naps after) */
#define CLOSE_WAIT_MS 1000 /* how long close() waits for the answer to "close" */

struct relp_sink {
	const struct aud_sink_env *env;
	struct aud_sink_peer peer; /* ring: seq of each message sent and not yet reported */
	struct aud_buf out, msg;
	char in[AUD_RELP_RSP_MAX + 64]; /* answers not yet parsed */
	size_t inlen;
	uint32_t next_txnr;     /* of the next command */
	uint32_t oldest_txnr;   /* of the oldest syslog command not answered yet */
	size_t first;           /* the ring's oldest slot */
	size_t nflight;         /* sent, not yet reported to the runner as acknowledged */
	size_t ready;           /* of those, the oldest `ready` were answered 200 */
	uint64_t waiting_since; /* ms: last answer, or the send that started the wait */
	int broken;             /* the connection failed (logged): only reset() may follow */
};

static uint32_t
txnr_next(uint32_t t)
{
	/* relp.html: "TXNR montonically increases but is latched at 999,999,999. After that
	 * TXNR, the next TXNR is 1." (0 is for hints.) */
	return t >= AUD_RELP_TXNR_MAX ? 1 : t + 1;
}

/* ---- parsing (tested and fuzzed alone) ------------------------------------------------ */

/* NUMBER = 1*9DIGIT at buf[*i], then `end` (SP or LF). 0, AUD_ERR_EOF (buffer ends inside
 * it), AUD_ERR_MALFORMED. */
static int
relp_number(const char *buf, size_t len, size_t *i, uint32_t *v)
{
	size_t d = 0;

	*v = 0;
	while (*i < len && buf[*i] >= '0' && buf[*i] <= '9') {
		if (++d > 9) {
			return AUD_ERR_MALFORMED;
		}
		*v = *v * 10 + (uint32_t)(buf[*i] - '0');
		(*i)++;
	}
	if (*i == len) {
		return AUD_ERR_EOF;
	}
	return d == 0 ? AUD_ERR_MALFORMED : 0;
}

int
aud_sink_relp_parse(const char *buf, size_t len, size_t max_data, struct aud_relp_frame *f,
                    size_t *used)
{
	size_t i = 0, c = 0;
	uint32_t datalen;
	int r;

	memset(f, 0, sizeof(*f));
	*used = 0;
	/* HEADER = TXNR SP COMMAND SP DATALEN */
	if ((r = relp_number(buf, len, &i, &f->txnr)) != 0) {
		return r;
	}
	if (buf[i++] != ' ') {
		return AUD_ERR_MALFORMED;
	}
	/* COMMAND = 1*32ALPHA */
	while (i < len && ((buf[i] >= 'a' && buf[i] <= 'z') || (buf[i] >= 'A' && buf[i] <= 'Z'))) {
		if (c == sizeof(f->command) - 1) {
			return AUD_ERR_MALFORMED;
		}
		f->command[c++] = buf[i++];
	}
	if (i == len) {
		return AUD_ERR_EOF;
	}
	if (c == 0 || buf[i++] != ' ') {
		return AUD_ERR_MALFORMED;
	}
	if ((r = relp_number(buf, len, &i, &datalen)) != 0) {
		return r;
	}
	if (datalen > max_data) {
		return AUD_ERR_TOO_LARGE;
	}
	/* DATA = [SP 1*OCTET] ("if DATALEN is 0, no data is present"); TRAILER = LF. */
	if (datalen > 0) {
		if (buf[i++] != ' ') {
			return AUD_ERR_MALFORMED;
		}
		if (len - i < (size_t)datalen + 1) {
			return AUD_ERR_EOF;
		}
		f->data = buf + i;
		f->data_len = datalen;
		i += datalen;
	}
	if (buf[i++] != '\n') {
		return AUD_ERR_MALFORMED;
	}
	*used = i;
	return 0;
}

int
aud_sink_relp_rsp(const char *data, size_t len, int *status, const char **text, size_t *text_len,
                  const char **rest, size_t *rest_len)
{
	const char *lf;
	size_t i;

	*status = 0;
	*text = NULL;
	*text_len = 0;
	*rest = NULL;
	*rest_len = 0;
	/* RSP-HEADER = TXNR SP RSP-CODE [SP HUMANMSG] LF [CMDDATA]; the frame's TXNR is outside
	 * the data, so the data starts with the code. */
	if (len < 3) {
		return AUD_ERR_MALFORMED;
	}
	for (i = 0; i < 3; i++) {
		if (data[i] < '0' || data[i] > '9') {
			return AUD_ERR_MALFORMED;
		}
		*status = *status * 10 + (data[i] - '0');
	}
	if (len == 3) {
		return 0;
	}
	if (data[3] != ' ' && data[3] != '\n') {
		return AUD_ERR_MALFORMED;
	}
	i = data[3] == ' ' ? 4 : 3;
	lf = memchr(data + i, '\n', len - i);
	*text = data + i;
	*text_len = lf != NULL ? (size_t)(lf - (data + i)) : len - i;
	if (lf != NULL) {
		*rest = lf + 1;
		*rest_len = len - (size_t)(lf + 1 - data);
	}
	return 0;
}

/* Whether the comma-separated list v[n] holds `word`. */
static int
list_has(const char *v, size_t n, const char *word)
{
	size_t i = 0, wl = strlen(word);

	while (i <= n) {
		const char *comma = memchr(v + i, ',', n - i);
		size_t e = comma != NULL ? (size_t)(comma - v) : n;

		if (e - i == wl && memcmp(v + i, word, wl) == 0) {
			return 1;
		}
		i = e + 1;
	}
	return 0;
}

int
aud_sink_relp_offers(const char *offers, size_t len, const char **why)
{
	size_t i = 0;
	int version = 0, syslog_cmd = 0;

	*why = NULL;
	/* OFFER = LF FEATURENAME ["=" VALUE *("," VALUE)]: one offer per line. offers is NULL
	 * (len 0) when the answer has nothing after its status line. */
	while (i < len) {
		const char *nl = memchr(offers + i, '\n', len - i);
		size_t e = nl != NULL ? (size_t)(nl - offers) : len;
		const char *eq = memchr(offers + i, '=', e - i);
		size_t name_end = eq != NULL ? (size_t)(eq - offers) : e;
		size_t v = eq != NULL ? name_end + 1 : e, k;

		if (name_end - i == 12 && memcmp(offers + i, "relp_version", 12) == 0) {
			version = v < e;
			for (k = v; k < e; k++) {
				version = version && offers[k] >= '0' && offers[k] <= '9';
			}
		} else if (name_end - i == 8 && memcmp(offers + i, "commands", 8) == 0 &&
		           eq != NULL) {
			syslog_cmd = syslog_cmd || list_has(offers + v, e - v, "syslog");
		}
		i = e + 1;
	}
	if (!version) {
		*why = "the server's answer to \"open\" has no relp_version";
		return AUD_ERR_INVALID;
	}
	if (!syslog_cmd) {
		*why = "the server does not offer the syslog command";
		return AUD_ERR_INVALID;
	}
	return 0;
}

/* ---- the connection ------------------------------------------------------------------- */

/* A server's text in our log: printable ASCII only, at most 80 characters. */
static void
printable(char *dst, size_t cap, const char *s, size_t n)
{
	size_t i, o = 0;

	for (i = 0; i < n && o + 1 < cap && o < 80; i++) {
		dst[o++] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
	}
	dst[o] = '\0';
}

/* Reads one frame into *f, waiting up to wait_ms for the bytes of it. 0, AUD_ERR_EOF (no
 * whole frame within wait_ms), AUD_ERR_MALFORMED (a frame we refuse) or AUD_ERR_IO (closed
 * or broken); both logged. The frame points into s->in and stays valid until
 * relp_consume(). */
static int
relp_next(struct relp_sink *s, uint32_t wait_ms, struct aud_relp_frame *f, size_t *used)
{
	uint64_t deadline = aud_mono_ms() + wait_ms;

	for (;;) {
		uint64_t now;
		size_t n = 0;
		int r = aud_sink_relp_parse(s->in, s->inlen, AUD_RELP_RSP_MAX, f, used);

		if (r == 0) {
			return 0;
		}
		if (r != AUD_ERR_EOF) {
			s->env->logf(s->env, LOG_WARNING, "%s:%u sent a %s RELP frame",
			             s->peer.host, s->peer.port,
			             r == AUD_ERR_TOO_LARGE ? "too large" : "malformed");
			return AUD_ERR_MALFORMED;
		}
		r = aud_sink_conn_read_wait(s->peer.conn, s->in + s->inlen,
		                            sizeof(s->in) - s->inlen, &n, wait_ms);
		if (r == AUD_ERR_EOF) {
			return r;
		}
		if (r != 0) {
			s->env->logf(s->env, LOG_WARNING, "read from %s:%u failed: %s",
			             s->peer.host, s->peer.port, aud_sink_conn_why(s->peer.conn));
			return AUD_ERR_IO;
		}
		if (n == 0) {
			s->env->logf(s->env, LOG_WARNING, "%s:%u closed the connection",
			             s->peer.host, s->peer.port);
			return AUD_ERR_IO;
		}
		s->inlen += n;
		/* A frame has begun (TLS and TCP may cut it anywhere): wait for its rest, but
		 * not past the caller's wait. */
		now = aud_mono_ms();
		wait_ms = now < deadline ? (uint32_t)(deadline - now) : 0;
	}
}

static void
relp_consume(struct relp_sink *s, size_t used)
{
	memmove(s->in, s->in + used, s->inlen - used);
	s->inlen -= used;
}

/* Writes s->out. A failure is logged with its reason and leaves the connection broken. */
static int
relp_write(struct relp_sink *s)
{
	int r = aud_sink_peer_write(&s->peer, s->out.data, s->out.len);

	if (r != 0) {
		s->broken = 1;
	}
	return r;
}

/* With TLS 1.3 the client's handshake ends before the server has checked the client
 * certificate, so a refusal shows only as the session's first write or read failing. */
static void
relp_refused_hint(const struct relp_sink *s)
{
	s->env->logf(s->env, LOG_WARNING,
	             "%s:%u ended the session before answering \"open\"; does it accept this "
	             "client certificate (--cert, and its name)?",
	             s->peer.host, s->peer.port);
}

/* Connects and opens the RELP session: "open" with our offers, its "rsp" with the server's. */
static int
relp_connect(struct relp_sink *s)
{
	struct aud_relp_frame f;
	const char *text, *rest, *why;
	size_t tlen, rlen, used;
	char shown[96];
	uint64_t deadline;
	int status, r;

	if ((r = aud_sink_peer_connect(&s->peer)) != 0) {
		return r;
	}
	s->out.len = 0;
	(void)aud_buf_printf(&s->out, "1 open %zu " RELP_OFFERS "\n", sizeof(RELP_OFFERS) - 1);
	if (s->out.failed) {
		return AUD_ERR_NOMEM;
	}
	if ((r = relp_write(s)) != 0) {
		relp_refused_hint(s);
		return r;
	}
	deadline = aud_mono_ms() + s->env->o->timeout_ms;
	for (;;) {
		uint64_t now = aud_mono_ms();

		r = relp_next(s, now < deadline ? (uint32_t)(deadline - now) : 0, &f, &used);
		if (r != 0 || f.txnr != 0) {
			break;
		}
		relp_consume(s, used); /* a hint before the answer */
	}
	if (r != 0) {
		if (r == AUD_ERR_EOF) {
			s->env->logf(s->env, LOG_WARNING,
			             "%s:%u did not answer \"open\" within %u ms", s->peer.host,
			             s->peer.port, s->env->o->timeout_ms);
		} else if (r == AUD_ERR_IO) {
			relp_refused_hint(s);
		}
		return AUD_ERR_IO;
	}
	if (f.txnr != 1 || strcmp(f.command, "rsp") != 0 ||
	    aud_sink_relp_rsp(f.data, f.data_len, &status, &text, &tlen, &rest, &rlen) != 0) {
		s->env->logf(s->env, LOG_WARNING, "%s:%u answered \"open\" with a malformed frame",
		             s->peer.host, s->peer.port);
		return AUD_ERR_IO;
	}
	if (status != 200) {
		printable(shown, sizeof(shown), text, tlen);
		s->env->logf(s->env, LOG_WARNING, "%s:%u refused the RELP session: %d %s",
		             s->peer.host, s->peer.port, status, shown);
		return AUD_ERR_IO;
	}
	if (aud_sink_relp_offers(rest, rlen, &why) != 0) {
		s->env->logf(s->env, LOG_WARNING, "%s:%u: %s", s->peer.host, s->peer.port, why);
		return AUD_ERR_IO;
	}
	relp_consume(s, used);
	s->next_txnr = 2;
	s->oldest_txnr = 2;
	return 0;
}

/* One frame from the server while syslog commands are out. */
static int
relp_handle(struct relp_sink *s, const struct aud_relp_frame *f)
{
	const char *text, *rest;
	size_t tlen, rlen;
	char shown[96];
	int status;

	if (f->txnr == 0) {
		/* Hints. "serverclose": the server is going away; what it has not answered is
		 * sent again on a new connection. Others are not defined; a hint needs no answer.
		 */
		if (strcmp(f->command, "serverclose") == 0) {
			s->env->logf(s->env, LOG_WARNING, "%s:%u closed the RELP session",
			             s->peer.host, s->peer.port);
			return AUD_ERR_IO;
		}
		return 0;
	}
	if (strcmp(f->command, "rsp") != 0 || s->ready == s->nflight || f->txnr != s->oldest_txnr ||
	    aud_sink_relp_rsp(f->data, f->data_len, &status, &text, &tlen, &rest, &rlen) != 0) {
		/* Answers come in the order of the commands (relp.html); anything else is a
		 * server we cannot follow. */
		s->env->logf(s->env, LOG_WARNING,
		             "%s:%u sent \"%s\" for txnr %" PRIu32 " where the answer to %" PRIu32
		             " was due",
		             s->peer.host, s->peer.port, f->command, f->txnr, s->oldest_txnr);
		return AUD_ERR_IO;
	}
	if (status != 200) {
		printable(shown, sizeof(shown), text, tlen);
		s->env->logf(s->env, LOG_WARNING, "%s:%u refused seq %" PRIu64 ": %d %s",
		             s->peer.host, s->peer.port,
		             s->peer.ring[(s->first + s->ready) % s->peer.cap], status, shown);
		return AUD_ERR_IO;
	}
	s->ready++;
	s->oldest_txnr = txnr_next(s->oldest_txnr);
	s->waiting_since = aud_mono_ms();
	return 0;
}

/* Reads and handles the answers that have come, waiting up to wait_ms for the first. 0, or
 * AUD_ERR_IO (AUD_ERR_MALFORMED for a frame we refuse) once the connection is of no more
 * use: logged, and s->broken until reset. */
static int
relp_pump(struct relp_sink *s, uint32_t wait_ms)
{
	struct aud_relp_frame f;
	size_t used;
	int r;

	if (s->broken) {
		return AUD_ERR_IO;
	}
	while ((r = relp_next(s, wait_ms, &f, &used)) == 0) {
		r = relp_handle(s, &f);
		relp_consume(s, used);
		if (r != 0) {
			break;
		}
		wait_ms = 0;
	}
	if (r == AUD_ERR_EOF) {
		r = 0;
		if (s->ready < s->nflight &&
		    aud_mono_ms() - s->waiting_since >= s->env->o->timeout_ms) {
			s->env->logf(s->env, LOG_WARNING, "%s:%u answered nothing for %u ms",
			             s->peer.host, s->peer.port, s->env->o->timeout_ms);
			r = AUD_ERR_IO;
		}
	}
	s->broken = r != 0;
	return r;
}

/* ---- the driver ----------------------------------------------------------------------- */

static int
relp_open(void **st, const struct aud_sink_env *env, const char *target)
{
	struct relp_sink *s;
	int r;

	*st = NULL;
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		return AUD_ERR_NOMEM;
	}
	s->env = env;
	/* RELP has no assigned port (rsyslog's examples use 2514 and 20514): it must be named. */
	if ((r = aud_sink_peer_open(&s->peer, env, "relp", target, 0)) != 0) {
		free(s);
		return r;
	}
	*st = s;
	return 0;
}

static int
relp_send(void *st, const struct aud_sink_msg *m, size_t n, uint32_t *retry_ms)
{
	struct relp_sink *s = st;
	uint32_t txnr;
	size_t i;
	int r;

	*retry_ms = 0;
	/* No connection: the first send, or one after reset(), which cleared its state. */
	if (s->peer.conn == NULL && (r = relp_connect(s)) != 0) {
		return r;
	}
	if (s->nflight + n > s->peer.cap) {
		return AUD_ERR_INVALID; /* the runner never has more than window_max in flight */
	}
	/* Take the answers that have come first: if this write fails, what they acknowledged
	 * still counts (the runner asks acked() after a failed send), and a "serverclose" that
	 * came while the session was idle is seen here rather than as a failed write. */
	if ((r = relp_pump(s, 0)) != 0) {
		return r;
	}
	s->out.len = 0;
	txnr = s->next_txnr;
	for (i = 0; i < n; i++) {
		s->msg.len = 0;
		if ((r = aud_sink_syslog_msg(&s->msg, s->env->origin, s->env->hostname,
		                             s->peer.procid, &m[i])) != 0) {
			return r;
		}
		/* RELP-FRAME = TXNR SP "syslog" SP DATALEN SP DATA LF */
		(void)aud_buf_printf(&s->out, "%" PRIu32 " syslog %zu ", txnr, s->msg.len);
		(void)aud_buf_put(&s->out, s->msg.data, s->msg.len);
		(void)aud_buf_put(&s->out, "\n", 1);
		txnr = txnr_next(txnr);
	}
	if (s->out.failed) {
		return AUD_ERR_NOMEM;
	}
	if ((r = relp_write(s)) != 0) {
		return r;
	}
	if (s->ready == s->nflight) {
		s->waiting_since = aud_mono_ms();
	}
	for (i = 0; i < n; i++) {
		s->peer.ring[(s->first + s->nflight++) % s->peer.cap] = m[i].rec.seq;
	}
	s->next_txnr = txnr;
	return 0;
}

static int
relp_acked(void *st, size_t sent, size_t *nacked)
{
	struct relp_sink *s = st;
	int r;

	*nacked = 0;
	if (s->peer.conn == NULL || sent != s->nflight) {
		return s->peer.conn == NULL && sent == 0 ? 0 : AUD_ERR_IO;
	}
	/* Wait a little for the first answer; then take only what has come. */
	r = relp_pump(s, s->ready < s->nflight ? ACK_WAIT_MS : 0);
	/* What was answered counts even when the connection then failed. */
	*nacked = s->ready;
	s->first = (s->first + s->ready) % s->peer.cap;
	s->nflight -= s->ready;
	s->ready = 0;
	return r;
}

static void
relp_reset(void *st)
{
	struct relp_sink *s = st;

	aud_sink_conn_close(s->peer.conn);
	s->peer.conn = NULL;
	s->first = 0;
	s->nflight = 0;
	s->ready = 0;
	s->inlen = 0;
	s->broken = 0;
}

/* A clean end of the session when nothing is outstanding: "close", and its answer. */
static void
relp_goodbye(struct relp_sink *s)
{
	struct aud_relp_frame f;
	uint32_t txnr = s->next_txnr;
	uint64_t deadline;
	size_t used;
	char frame[32];
	int len = snprintf(frame, sizeof(frame), "%" PRIu32 " close 0\n", txnr);

	if (aud_sink_conn_write(s->peer.conn, frame, (size_t)len, CLOSE_WAIT_MS) != 0) {
		return;
	}
	deadline = aud_mono_ms() + CLOSE_WAIT_MS;
	for (;;) {
		uint64_t now = aud_mono_ms();

		if (now >= deadline || relp_next(s, (uint32_t)(deadline - now), &f, &used) != 0) {
			return;
		}
		relp_consume(s, used);
		if (f.txnr == txnr) {
			return;
		}
	}
}

static void
relp_close(void *st)
{
	struct relp_sink *s = st;

	if (s->peer.conn != NULL && s->nflight == 0 && !s->broken) {
		relp_goodbye(s);
	}
	relp_reset(s);
	aud_sink_peer_close(&s->peer);
	aud_buf_free(&s->out);
	aud_buf_free(&s->msg);
	free(s);
}

const struct aud_sink_driver aud_sink_relp_driver = {
        .scheme = "relp://",
        .open = relp_open,
        .send = relp_send,
        .acked = relp_acked,
        .reset = relp_reset,
        .close = relp_close,
};
