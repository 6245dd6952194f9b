/*
 * audit/sink_int.h — private to audit/sink*.c (and their unit tests): the driver interface
 * between the sink runner (sink.c) and the destinations (sink_file.c, sink_syslog.c,
 * sink_https.c), the connection helper they share (sink_tls.c), and the message encoders
 * the tests check byte for byte.
 */
#ifndef HSMGATE_AUD_SINK_INT_H
#define HSMGATE_AUD_SINK_INT_H

#include "audit/aud_int.h"

#include <openssl/ssl.h>
#include <stdint.h>

/* One record in the runner's window: an owned copy of its line and a parsed view into it. */
struct aud_sink_msg {
	char *line;
	size_t line_len;
	struct aud_record_view rec;
};

/* What a driver sees of the runner: its options, the log's origin, logging. */
struct aud_sink_env {
	const struct aud_sink_options *o;
	const char *origin;
	const char *hostname; /* syslog HOSTNAME, already checked to be PRINTUSASCII */
	void (*logf)(const struct aud_sink_env *env, int level, const char *fmt, ...)
	        __attribute__((format(printf, 3, 4)));
};

/*
 * A destination. The runner calls send() with the oldest unsent records of its window
 * (in seq order), then acked() to learn how many of the `sent` oldest sent records are
 * acknowledged now (a prefix: the cursor moves over exactly those); after a send() that
 * failed, acked() too if earlier sends succeeded, so that what was acknowledged before the
 * failure counts (its error, if any, is then secondary). Any error from either makes the
 * runner call reset() and, after a backoff (or *retry_ms when the driver sets it, e.g. from
 * Retry-After), send every unacknowledged record again.
 */
struct aud_sink_driver {
	const char *scheme;
	int (*open)(void **st, const struct aud_sink_env *env, const char *target) AUD_WUR;
	int (*send)(void *st, const struct aud_sink_msg *m, size_t n, uint32_t *retry_ms) AUD_WUR;
	int (*acked)(void *st, size_t sent, size_t *nacked) AUD_WUR;
	void (*reset)(void *st);
	void (*close)(void *st);
};

extern const struct aud_sink_driver aud_sink_file_driver;
extern const struct aud_sink_driver aud_sink_syslog_driver;
extern const struct aud_sink_driver aud_sink_https_driver;
extern const struct aud_sink_driver aud_sink_relp_driver;
extern const struct aud_sink_driver aud_sink_http_driver; /* plain TCP: tests only */

/* ---- targets and connections (sink_tls.c) --------------------------------------------- */

/* "HOST:PORT[/PATH]" or "[V6]:PORT[/PATH]": host[256], port (default def_port when absent),
 * path[1024] ("/" when absent; NULL when the scheme takes none: a path is then an error). */
int aud_sink_target_parse(const char *target, uint16_t def_port, char *host, uint16_t *port,
                          char *path) AUD_WUR;

/* A client TLS context: TLS 1.2 or later, server certificate verified against ca_file
 * (or the system store), optional client certificate. AUD_ERR_KEY for unreadable files,
 * AUD_ERR_INVALID for a certificate without a key; why[whysz] then says which file and
 * what OpenSSL found (never file contents). */
int aud_sink_tls_ctx(const struct aud_sink_options *o, SSL_CTX **ctx, char *why,
                     size_t whysz) AUD_WUR;

struct aud_sink_conn;

/*
 * What a driver whose target is HOST[:PORT] over TLS (syslog, relp) holds of its peer: the
 * endpoint, a TLS context, the connection, the PROCID its messages carry, and a ring of
 * window_max slots, one per message in flight (syslog: its send time; relp: its seq).
 */
struct aud_sink_peer {
	const struct aud_sink_env *env;
	char host[256];
	uint16_t port;
	SSL_CTX *ctx;
	struct aud_sink_conn *conn; /* NULL: not connected */
	char procid[24];
	uint64_t *ring;
	size_t cap; /* of ring: window_max */
};

/* Fills *p for target: def_port when the target names none, 0 if it must. The reason of a
 * failure is logged as "<kind> sink <target>: ...". */
int aud_sink_peer_open(struct aud_sink_peer *p, const struct aud_sink_env *env, const char *kind,
                       const char *target, uint16_t def_port) AUD_WUR;
/* Connects to the peer within the sink's timeout_ms; a failure is logged (warning). */
int aud_sink_peer_connect(struct aud_sink_peer *p) AUD_WUR;
/* Writes all of buf within the sink's timeout_ms; a failure is logged with its reason. */
int aud_sink_peer_write(struct aud_sink_peer *p, const void *buf, size_t len) AUD_WUR;
/* Closes the connection and frees what aud_sink_peer_open took. */
void aud_sink_peer_close(struct aud_sink_peer *p);

/* Connects to host:port (TCP, then TLS when ctx is not NULL, checking that the certificate
 * names host), within timeout_ms. AUD_ERR_IO on any failure (the reason in errbuf[256]). */
int aud_sink_conn_open(struct aud_sink_conn **c, SSL_CTX *ctx, const char *host, uint16_t port,
                       uint32_t timeout_ms, char *errbuf) AUD_WUR;
/* Writes all of buf (AUD_ERR_IO on error or timeout). */
int aud_sink_conn_write(struct aud_sink_conn *c, const void *buf, size_t len,
                        uint32_t timeout_ms) AUD_WUR;
/* Reads what is available (at least one byte, waiting up to timeout_ms); *n = 0 at EOF. */
int aud_sink_conn_read(struct aud_sink_conn *c, void *buf, size_t cap, size_t *n,
                       uint32_t timeout_ms) AUD_WUR;
/* As aud_sink_conn_read, but a wait of wait_ms with nothing to read is not an error:
 * AUD_ERR_EOF then (*n = 0); 0 with *n = 0 still means the peer closed. */
int aud_sink_conn_read_wait(struct aud_sink_conn *c, void *buf, size_t cap, size_t *n,
                            uint32_t wait_ms) AUD_WUR;
/* 1 if the peer has neither closed nor reset the connection, without blocking. Incoming
 * application bytes (a syslog receiver sends none) are read and dropped. */
int aud_sink_conn_alive(struct aud_sink_conn *c);
/* Why the last read or write on c failed, for a log line: the peer's TLS alert ("tlsv13 alert
 * certificate required" when it refused our certificate), a system error, a timeout. */
const char *aud_sink_conn_why(const struct aud_sink_conn *c);
void aud_sink_conn_close(struct aud_sink_conn *c);

/* ---- encoders (tested byte for byte) -------------------------------------------------- */

/* The RFC 5424 message for record m (what a syslog frame or a RELP syslog command carries),
 * appended to b. procid is the PROCID field ("-" for none). */
int aud_sink_syslog_msg(struct aud_buf *b, const char *origin, const char *hostname,
                        const char *procid, const struct aud_sink_msg *m) AUD_WUR;

/*
 * One RFC 5425 frame ("MSG-LEN SP SYSLOG-MSG") carrying the RFC 5424 message for record
 * m, appended to b. procid is the PROCID field ("-" for none).
 */
int aud_sink_syslog_frame(struct aud_buf *b, const char *origin, const char *hostname,
                          const char *procid, const struct aud_sink_msg *m) AUD_WUR;

/* The JSON array body of an https batch: one {"origin","seq","leaf","chain","event"} per
 * record, the event being the stored bytes verbatim. */
int aud_sink_https_body(struct aud_buf *b, const char *origin, const struct aud_sink_msg *m,
                        size_t n) AUD_WUR;

/* Parses "HTTP/1.x SSS ...\r\n...headers...\r\n\r\n": *status and the Retry-After delay in
 * ms (0 if absent or unparsable; HTTP-date relative to now_unix). */
int aud_sink_http_response(const char *buf, size_t len, int *status, uint32_t *retry_ms,
                           int64_t now_unix) AUD_WUR;

/* ---- RELP (sink_relp.c) ---------------------------------------------------------------- */

#define AUD_RELP_TXNR_MAX 999999999u /* TXNR = 1*9DIGIT; after the largest comes 1 again */
#define AUD_RELP_RSP_MAX  8192u      /* the largest frame the sink accepts from a server */

/* One RELP frame: TXNR SP COMMAND SP DATALEN [SP DATA] LF. data points into the buffer. */
struct aud_relp_frame {
	uint32_t txnr;
	char command[33]; /* 1*32ALPHA */
	const char *data;
	size_t data_len;
};

/*
 * Parses the frame at the start of buf[len]: 0 with *f and *used (its length, LF included);
 * AUD_ERR_EOF when buf holds only the beginning of a valid frame (read more);
 * AUD_ERR_TOO_LARGE when DATALEN exceeds max_data; AUD_ERR_MALFORMED otherwise.
 */
int aud_sink_relp_parse(const char *buf, size_t len, size_t max_data, struct aud_relp_frame *f,
                        size_t *used) AUD_WUR;

/*
 * Parses a "rsp" frame's data: STATUS (3 digits) [SP HUMAN-TEXT] [LF CMDDATA]. *status,
 * the text (without LF) and what follows the first LF (NULL, 0 if nothing).
 * AUD_ERR_MALFORMED if it does not start with three digits followed by SP, LF or its end.
 */
int aud_sink_relp_rsp(const char *data, size_t len, int *status, const char **text,
                      size_t *text_len, const char **rest, size_t *rest_len) AUD_WUR;

/* Checks the offers of a server's "open" answer (LF-separated NAME[=VALUE[,VALUE]...]): a
 * relp_version offer must be present, and the "commands" offer must list syslog. 0, or
 * AUD_ERR_INVALID with the reason (static text) in *why. */
int aud_sink_relp_offers(const char *offers, size_t len, const char **why) AUD_WUR;

#endif
