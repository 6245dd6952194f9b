/*
 * audit/sink_https.c — the `https` sink: POSTs batches of events as one JSON array with a
 * bearer token, over a hand-written minimal HTTP/1.1 client (one request per connection,
 * "Connection: close": no chunked decoding, no keep-alive state to get wrong).
 *
 *   2xx              acknowledged: the cursor moves past the batch
 *   429, 503         retried after Retry-After (seconds or an HTTP-date), else backoff
 *   408, 5xx, other  retried with exponential backoff and jitter (transient)
 *   other 4xx        poison: the batch would be refused forever. It is appended to the
 *                    quarantine file (one JSON array per line, fsync'd), a critical line is
 *                    logged, and the batch counts as handled so that the stream goes on.
 *
 * `http://` is the same without TLS, for the unit tests' loopback receiver only.
 */
#include "audit/sink_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#define TOKEN_MAX    4096
#define RESPONSE_MAX (16u * 1024)    /* status line and headers; the body is ignored */
#define RETRY_CAP_MS (3600u * 1000u) /* a Retry-After beyond an hour is capped */

struct https_sink {
	const struct aud_sink_env *env;
	int tls;
	char host[256];
	char path[1024];
	uint16_t port;
	SSL_CTX *ctx;
	char *token; /* NULL: no Authorization header */
	char *quarantine;
	struct aud_buf body, req;
};

int
aud_sink_https_body(struct aud_buf *b, const char *origin, const struct aud_sink_msg *m, size_t n)
{
	char leaf[2 * AUD_HASH_LEN + 1], chain[2 * AUD_HASH_LEN + 1];
	size_t i;

	(void)aud_buf_put(b, "[", 1);
	for (i = 0; i < n; i++) {
		aud_hex_encode(m[i].rec.leaf, AUD_HASH_LEN, leaf);
		aud_hex_encode(m[i].rec.chain, AUD_HASH_LEN, chain);
		(void)aud_buf_puts(b, i == 0 ? "{\"origin\":" : ",{\"origin\":");
		(void)aud_buf_json_str(b, origin);
		(void)aud_buf_printf(b, ",\"seq\":%" PRIu64 ",\"leaf\":\"%s\"", m[i].rec.seq, leaf);
		(void)aud_buf_printf(b, ",\"chain\":\"%s\",\"event\":", chain);
		/* The stored bytes, not a re-serialisation: the receiver can hash them. */
		(void)aud_buf_put(b, m[i].rec.payload, m[i].rec.payload_len);
		(void)aud_buf_put(b, "}", 1);
	}
	(void)aud_buf_put(b, "]", 1);
	return b->failed;
}

/* Retry-After (RFC 9110 §10.2.3) = HTTP-date / delay-seconds. */
static uint32_t
retry_after(const char *v, size_t n, int64_t now_unix)
{
	char tmp[64], *end;
	struct tm tm;
	unsigned long long secs;
	time_t t;

	if (n == 0 || n >= sizeof(tmp)) {
		return 0;
	}
	memcpy(tmp, v, n);
	tmp[n] = '\0';
	if (tmp[0] >= '0' && tmp[0] <= '9') {
		errno = 0;
		secs = strtoull(tmp, &end, 10);
		if (errno != 0 || *end != '\0') {
			return 0;
		}
		return secs >= RETRY_CAP_MS / 1000 ? RETRY_CAP_MS : (uint32_t)secs * 1000u;
	}
	memset(&tm, 0, sizeof(tm));
	/* IMF-fixdate, e.g. "Sun, 06 Nov 1994 08:49:37 GMT" (RFC 9110 §5.6.7). */
	end = strptime(tmp, "%a, %d %b %Y %H:%M:%S GMT", &tm);
	if (end == NULL || *end != '\0' || (t = timegm(&tm)) == (time_t)-1) {
		return 0;
	}
	if ((int64_t)t <= now_unix) {
		return 0;
	}
	return (int64_t)t - now_unix >= RETRY_CAP_MS / 1000
	               ? RETRY_CAP_MS
	               : (uint32_t)((int64_t)t - now_unix) * 1000u;
}

int
aud_sink_http_response(const char *buf, size_t len, int *status, uint32_t *retry_ms,
                       int64_t now_unix)
{
	struct aud_cur c;
	const char *line, *colon;
	size_t llen;
	uint64_t code;
	uint8_t minor;
	int r;

	*status = 0;
	*retry_ms = 0;
	aud_cur_init(&c, buf, len);
	/* RFC 9112 §4: status-line = HTTP-version SP status-code SP [ reason-phrase ] CRLF */
	if ((r = aud_cur_lit(&c, "HTTP/1.")) != 0 || (r = aud_cur_byte(&c, &minor)) != 0 ||
	    (minor != '0' && minor != '1') || (r = aud_cur_lit(&c, " ")) != 0 ||
	    (r = aud_cur_until(&c, '\n', &line, &llen, RESPONSE_MAX)) != 0) {
		return AUD_ERR_MALFORMED;
	}
	if (llen < 3 || line[0] < '1' || line[0] > '5' || line[1] < '0' || line[1] > '9' ||
	    line[2] < '0' || line[2] > '9' || (llen > 3 && line[3] != ' ' && line[3] != '\r')) {
		return AUD_ERR_MALFORMED;
	}
	code = (uint64_t)(line[0] - '0') * 100 + (uint64_t)(line[1] - '0') * 10 +
	       (uint64_t)(line[2] - '0');
	for (;;) {
		if (aud_cur_lit(&c, "\r\n") == 0) {
			break; /* end of the header section */
		}
		if (aud_cur_until(&c, '\n', &line, &llen, RESPONSE_MAX) != 0) {
			return AUD_ERR_MALFORMED; /* headers must end with an empty line */
		}
		if (llen > 0 && line[llen - 1] == '\r') {
			llen--;
		}
		colon = memchr(line, ':', llen);
		if (colon == NULL) {
			return AUD_ERR_MALFORMED;
		}
		if ((size_t)(colon - line) == 11 && strncasecmp(line, "Retry-After", 11) == 0) {
			const char *v = colon + 1, *e = line + llen;

			while (v < e && (*v == ' ' || *v == '\t')) {
				v++;
			}
			while (e > v && (e[-1] == ' ' || e[-1] == '\t')) {
				e--;
			}
			*retry_ms = retry_after(v, (size_t)(e - v), now_unix);
		}
	}
	*status = (int)code;
	return 0;
}

static int
read_token(const char *path, char **token)
{
	char buf[TOKEN_MAX + 2];
	size_t len = 0, i;
	ssize_t n;
	int fd;

	*token = NULL;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		return AUD_ERR_KEY;
	}
	while (len < sizeof(buf) - 1 && (n = read(fd, buf + len, sizeof(buf) - 1 - len)) != 0) {
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n < 0) {
			close(fd);
			OPENSSL_cleanse(buf, sizeof(buf));
			return AUD_ERR_KEY;
		}
		len += (size_t)n;
	}
	close(fd);
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' ')) {
		len--;
	}
	/* A token goes into a header line: CR, LF or any control byte would let the file
	 * inject headers (RFC 9110 §5.5 field-value has none of them). */
	for (i = 0; i < len; i++) {
		if ((unsigned char)buf[i] < 0x21 || (unsigned char)buf[i] > 0x7e) {
			len = 0;
			break;
		}
	}
	if (len == 0 || len > TOKEN_MAX || (*token = OPENSSL_strndup(buf, len)) == NULL) {
		OPENSSL_cleanse(buf, sizeof(buf));
		return len == 0 || len > TOKEN_MAX ? AUD_ERR_KEY : AUD_ERR_NOMEM;
	}
	OPENSSL_cleanse(buf, sizeof(buf));
	return 0;
}

static void
https_free(struct https_sink *h)
{
	if (h == NULL) {
		return;
	}
	SSL_CTX_free(h->ctx);
	if (h->token != NULL) {
		OPENSSL_clear_free(h->token, strlen(h->token));
	}
	free(h->quarantine);
	aud_buf_free(&h->body);
	if (h->req.data != NULL) {
		OPENSSL_cleanse(h->req.data, h->req.cap); /* holds the token */
	}
	aud_buf_free(&h->req);
	free(h);
}

static int
open_common(void **st, const struct aud_sink_env *env, const char *target, int tls)
{
	struct https_sink *h;
	const struct aud_sink_options *o = env->o;
	char why[1200];
	int r;

	*st = NULL;
	if ((h = calloc(1, sizeof(*h))) == NULL) {
		return AUD_ERR_NOMEM;
	}
	h->env = env;
	h->tls = tls;
	why[0] = '\0';
	if ((r = aud_sink_target_parse(target, tls ? 443 : 80, h->host, &h->port, h->path)) != 0 ||
	    (tls && (r = aud_sink_tls_ctx(o, &h->ctx, why, sizeof(why))) != 0) ||
	    (o->token_file != NULL && (r = read_token(o->token_file, &h->token)) != 0)) {
		if (why[0] == '\0' && r == AUD_ERR_KEY) {
			/* What is wrong with it, never what is in it. */
			snprintf(why, sizeof(why),
			         "token file %s cannot be used: unreadable, empty, too long or "
			         "holding control characters",
			         o->token_file);
		}
		env->logf(env, LOG_ERR, "https sink %s: %s", target,
		          why[0] != '\0' ? why : aud_strerror(r));
		https_free(h);
		return r;
	}
	if (o->quarantine_path != NULL) {
		h->quarantine = strdup(o->quarantine_path);
	} else if (asprintf(&h->quarantine, "%s.quarantine", o->cursor_path) < 0) {
		h->quarantine = NULL;
	}
	if (h->quarantine == NULL) {
		https_free(h);
		return AUD_ERR_NOMEM;
	}
	*st = h;
	return 0;
}

static int
https_open(void **st, const struct aud_sink_env *env, const char *target)
{
	return open_common(st, env, target, 1);
}

static int
http_open(void **st, const struct aud_sink_env *env, const char *target)
{
	return open_common(st, env, target, 0);
}

static int
quarantine(struct https_sink *h, const struct aud_sink_msg *m, size_t n, int status)
{
	int fd, r = 0;
	size_t off = 0;

	if ((fd = open(h->quarantine, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600)) < 0) {
		return AUD_ERR_IO;
	}
	(void)aud_buf_put(&h->body, "\n", 1);
	while (r == 0 && off < h->body.len) {
		ssize_t w = write(fd, h->body.data + off, h->body.len - off);

		if (w < 0 && errno == EINTR) {
			continue;
		}
		if (w <= 0) {
			r = AUD_ERR_IO;
			break;
		}
		off += (size_t)w;
	}
	if (r == 0 && fdatasync(fd) != 0) {
		r = AUD_ERR_IO;
	}
	close(fd);
	if (r == 0) {
		h->env->logf(h->env, LOG_CRIT,
		             "%s refused a batch with HTTP %d: records %" PRIu64 "..%" PRIu64
		             " quarantined in %s and skipped",
		             h->host, status, m[0].rec.seq, m[n - 1].rec.seq, h->quarantine);
	}
	return r;
}

static int
https_send(void *st, const struct aud_sink_msg *m, size_t n, uint32_t *retry_ms)
{
	struct https_sink *h = st;
	struct aud_sink_conn *c = NULL;
	char resp[RESPONSE_MAX], err[256];
	size_t rlen = 0, got;
	uint32_t tmo = h->env->o->timeout_ms;
	int r, status;

	*retry_ms = 0;
	h->body.len = 0;
	h->req.len = 0;
	if ((r = aud_sink_https_body(&h->body, h->env->origin, m, n)) != 0) {
		return r;
	}
	(void)aud_buf_printf(&h->req, "POST %.900s HTTP/1.1\r\n", h->path);
	/* RFC 9110 §7.2: Host is uri-host [":" port]; an IPv6 literal goes in brackets. */
	(void)aud_buf_printf(&h->req,
	                     strchr(h->host, ':') != NULL ? "Host: [%.255s]:%u\r\n"
	                                                  : "Host: %.255s:%u\r\n",
	                     h->host, h->port);
	(void)aud_buf_puts(&h->req, "User-Agent: hsmgate-audit-sink\r\n"
	                            "Content-Type: application/json\r\n"
	                            "Connection: close\r\n");
	if (h->token != NULL) {
		(void)aud_buf_puts(&h->req, "Authorization: Bearer ");
		(void)aud_buf_puts(&h->req, h->token);
		(void)aud_buf_puts(&h->req, "\r\n");
	}
	(void)aud_buf_printf(&h->req, "Content-Length: %zu\r\n\r\n", h->body.len);
	if (h->req.failed != 0) {
		return h->req.failed;
	}
	if ((r = aud_sink_conn_open(&c, h->ctx, h->host, h->port, tmo, err)) != 0) {
		h->env->logf(h->env, LOG_WARNING, "%s", err);
		return r;
	}
	if ((r = aud_sink_conn_write(c, h->req.data, h->req.len, tmo)) != 0 ||
	    (r = aud_sink_conn_write(c, h->body.data, h->body.len, tmo)) != 0) {
		h->env->logf(h->env, LOG_WARNING, "write to %s:%u failed: %s", h->host, h->port,
		             aud_sink_conn_why(c));
		goto out;
	}
	/* Read until the end of the header section; the body is not needed. */
	for (;;) {
		if (rlen == sizeof(resp)) {
			r = AUD_ERR_TOO_LARGE;
			goto out;
		}
		if ((r = aud_sink_conn_read(c, resp + rlen, sizeof(resp) - rlen, &got, tmo)) != 0) {
			h->env->logf(h->env, LOG_WARNING, "read from %s:%u failed: %s", h->host,
			             h->port, aud_sink_conn_why(c));
			goto out;
		}
		if (got == 0) {
			break;
		}
		rlen += got;
		if (memmem(resp, rlen, "\r\n\r\n", 4) != NULL) {
			rlen = (size_t)((char *)memmem(resp, rlen, "\r\n\r\n", 4) - resp) + 4;
			break;
		}
	}
	if ((r = aud_sink_http_response(resp, rlen, &status, retry_ms, (int64_t)time(NULL))) != 0) {
		h->env->logf(h->env, LOG_WARNING, "%s: malformed HTTP response", h->host);
		goto out;
	}
	if (status >= 200 && status <= 299) {
		*retry_ms = 0;
		r = 0;
	} else if (status == 429 || status == 503) {
		h->env->logf(h->env, LOG_WARNING, "%s: HTTP %d, retry after %u ms", h->host, status,
		             *retry_ms);
		r = AUD_ERR_IO;
	} else if (status >= 400 && status <= 499 && status != 408) {
		*retry_ms = 0;
		r = quarantine(h, m, n, status);
	} else {
		h->env->logf(h->env, LOG_WARNING, "%s: HTTP %d", h->host, status);
		*retry_ms = 0;
		r = AUD_ERR_IO;
	}
out:
	aud_sink_conn_close(c);
	OPENSSL_cleanse(h->req.data, h->req.len);
	return r;
}

static int
https_acked(void *st, size_t sent, size_t *nacked)
{
	(void)st;
	/* send() returns 0 only on a 2xx or after quarantining: both are final. */
	*nacked = sent;
	return 0;
}

static void
https_reset(void *st)
{
	(void)st; /* no connection outlives a request */
}

static void
https_close(void *st)
{
	https_free(st);
}

const struct aud_sink_driver aud_sink_https_driver = {
        .scheme = "https://",
        .open = https_open,
        .send = https_send,
        .acked = https_acked,
        .reset = https_reset,
        .close = https_close,
};

const struct aud_sink_driver aud_sink_http_driver = {
        .scheme = "http://",
        .open = http_open,
        .send = https_send,
        .acked = https_acked,
        .reset = https_reset,
        .close = https_close,
};
