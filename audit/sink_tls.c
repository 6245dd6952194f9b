/*
 * audit/sink_tls.c — what the network sinks share: parsing "HOST:PORT/PATH", a verifying
 * TLS client context, and one connection (TCP, optionally TLS) with timeouts. The socket
 * is non-blocking throughout; every wait is a poll() bounded by the caller's timeout, so
 * a receiver that stops reading cannot hang the sink forever.
 */
#include "audit/sink_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <syslog.h>
#include <unistd.h>

struct aud_sink_conn {
	int fd;
	SSL *ssl;      /* NULL: plain TCP */
	char why[128]; /* why the last read or write failed (aud_sink_conn_why), or "" */
};

/* Keeps why an I/O call failed: OpenSSL's reason (a TLS alert from the peer, such as
 * "tlsv13 alert certificate required"), else the system's, else a timeout. Clears
 * OpenSSL's error queue. Returns r. */
static int
conn_failed(struct aud_sink_conn *c, int r, int saved_errno, uint32_t timeout_ms)
{
	unsigned long e = ERR_peek_last_error();
	const char *reason = e != 0 ? ERR_reason_error_string(e) : NULL;

	if (reason != NULL) {
		snprintf(c->why, sizeof(c->why), "%s", reason);
	} else if (r == AUD_ERR_EOF) {
		snprintf(c->why, sizeof(c->why), "no progress for %u ms", timeout_ms);
	} else if (saved_errno != 0) {
		snprintf(c->why, sizeof(c->why), "%s", strerror(saved_errno));
	} else {
		snprintf(c->why, sizeof(c->why), "connection lost");
	}
	ERR_clear_error();
	return r;
}

/*
 * OpenSSL writes to the socket with write(2), so a peer that has gone raises SIGPIPE,
 * which would kill a process that did not ignore it. A library must not depend on its
 * caller's signal set-up: block SIGPIPE in this thread around every call that may write,
 * and consume one that this call raised (the pattern libcurl uses).
 */
struct pipe_guard {
	sigset_t old;
	int was_pending;
};

static void
pipe_block(struct pipe_guard *g)
{
	sigset_t set, pending;

	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	sigemptyset(&pending);
	(void)sigpending(&pending);
	g->was_pending = sigismember(&pending, SIGPIPE) == 1;
	(void)pthread_sigmask(SIG_BLOCK, &set, &g->old);
}

static void
pipe_restore(struct pipe_guard *g)
{
	sigset_t set, pending;
	struct timespec zero = {0, 0};

	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	sigemptyset(&pending);
	if (!g->was_pending && sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1) {
		while (sigtimedwait(&set, NULL, &zero) < 0 && errno == EINTR) {
		}
	}
	(void)pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}

int
aud_sink_target_parse(const char *target, uint16_t def_port, char *host, uint16_t *port, char *path)
{
	const char *p = target, *hend, *slash;
	size_t hlen;
	unsigned long v = 0;

	host[0] = '\0';
	*port = def_port;
	if (path != NULL) {
		snprintf(path, 1024, "/");
	}
	if (*p == '[') {
		/* RFC 3986 §3.2.2: an IPv6 literal is enclosed in brackets. */
		if ((hend = strchr(p, ']')) == NULL) {
			return AUD_ERR_INVALID;
		}
		p++;
		hlen = (size_t)(hend - p);
		hend++;
	} else {
		hend = p + strcspn(p, ":/");
		hlen = (size_t)(hend - p);
	}
	if (hlen == 0 || hlen > 255) {
		return AUD_ERR_INVALID;
	}
	memcpy(host, p, hlen);
	host[hlen] = '\0';
	if (strcspn(host, " \t\r\n\"@?#") != hlen) {
		return AUD_ERR_INVALID;
	}
	p = hend;
	if (*p == ':') {
		p++;
		if (*p < '0' || *p > '9') {
			return AUD_ERR_INVALID;
		}
		while (*p >= '0' && *p <= '9') {
			v = v * 10 + (unsigned long)(*p++ - '0');
			if (v > 65535) {
				return AUD_ERR_INVALID;
			}
		}
		if (v == 0) {
			return AUD_ERR_INVALID;
		}
		*port = (uint16_t)v;
	}
	if (*p == '\0') {
		return 0;
	}
	slash = p;
	if (*slash != '/' || path == NULL || strlen(slash) >= 1024 ||
	    strcspn(slash, " \t\r\n") != strlen(slash)) {
		return AUD_ERR_INVALID;
	}
	snprintf(path, 1024, "%s", slash);
	return 0;
}

/* "<what> <path>: <OpenSSL's reason>" into why: the file that a TLS context refused. */
static void
tls_file_why(char *why, size_t whysz, const char *what, const char *path)
{
	const char *reason = ERR_reason_error_string(ERR_peek_last_error());

	snprintf(why, whysz, "%s %s cannot be used: %s", what, path,
	         reason != NULL ? reason : "unreadable");
}

int
aud_sink_tls_ctx(const struct aud_sink_options *o, SSL_CTX **ctxp, char *why, size_t whysz)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	int r = AUD_ERR_KEY;

	*ctxp = NULL;
	snprintf(why, whysz, "%s", aud_strerror(AUD_ERR_CRYPTO));
	if (ctx == NULL) {
		return AUD_ERR_CRYPTO;
	}
	/* RFC 9662 (updating RFC 5425): TLS 1.2 at least, and implementations SHOULD support
	 * TLS 1.3; OpenSSL's defaults give both. */
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
		r = AUD_ERR_CRYPTO;
		goto out;
	}
	/* RFC 5425 §5.1: the client MUST authenticate the server (certificate path validation
	 * against configured trust anchors, then its identity; see conn_open). */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if (o->ca_file != NULL) {
		if (SSL_CTX_load_verify_locations(ctx, o->ca_file, NULL) != 1) {
			tls_file_why(why, whysz, "CA file", o->ca_file);
			goto out;
		}
	} else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
		snprintf(why, whysz, "the system's CA store cannot be loaded");
		goto out;
	}
	if ((o->cert_file == NULL) != (o->key_file == NULL)) {
		snprintf(why, whysz,
		         "a client certificate needs its key, and a key its certificate");
		r = AUD_ERR_INVALID;
		goto out;
	}
	if (o->cert_file != NULL) {
		if (SSL_CTX_use_certificate_chain_file(ctx, o->cert_file) != 1) {
			tls_file_why(why, whysz, "client certificate", o->cert_file);
			goto out;
		}
		if (SSL_CTX_use_PrivateKey_file(ctx, o->key_file, SSL_FILETYPE_PEM) != 1) {
			tls_file_why(why, whysz, "client key", o->key_file);
			goto out;
		}
		if (SSL_CTX_check_private_key(ctx) != 1) {
			snprintf(why, whysz, "client key %s does not match certificate %s",
			         o->key_file, o->cert_file);
			goto out;
		}
	}
	SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	*ctxp = ctx;
	ctx = NULL; /* transferred */
	why[0] = '\0';
	r = 0;
out:
	ERR_clear_error();
	SSL_CTX_free(ctx);
	return r;
}

int
aud_sink_peer_open(struct aud_sink_peer *p, const struct aud_sink_env *env, const char *kind,
                   const char *target, uint16_t def_port)
{
	char why[1200];
	int r;

	memset(p, 0, sizeof(*p));
	p->env = env;
	p->cap = env->o->window_max;
	why[0] = '\0';
	if ((r = aud_sink_target_parse(target, def_port, p->host, &p->port, NULL)) == 0 &&
	    p->port == 0) {
		snprintf(why, sizeof(why), "a %s:// URL needs a port (%s://HOST:PORT)", kind, kind);
		r = AUD_ERR_INVALID;
	}
	if (r != 0 || (r = aud_sink_tls_ctx(env->o, &p->ctx, why, sizeof(why))) != 0) {
		env->logf(env, LOG_ERR, "%s sink %s: %s", kind, target,
		          why[0] != '\0' ? why : aud_strerror(r));
		return r;
	}
	if ((p->ring = calloc(p->cap, sizeof(*p->ring))) == NULL) {
		SSL_CTX_free(p->ctx);
		p->ctx = NULL;
		return AUD_ERR_NOMEM;
	}
	snprintf(p->procid, sizeof(p->procid), "%ld", (long)getpid());
	return 0;
}

int
aud_sink_peer_connect(struct aud_sink_peer *p)
{
	char err[256];
	int r;

	if ((r = aud_sink_conn_open(&p->conn, p->ctx, p->host, p->port, p->env->o->timeout_ms,
	                            err)) != 0) {
		p->env->logf(p->env, LOG_WARNING, "%s", err);
	}
	return r;
}

int
aud_sink_peer_write(struct aud_sink_peer *p, const void *buf, size_t len)
{
	int r = aud_sink_conn_write(p->conn, buf, len, p->env->o->timeout_ms);

	if (r != 0) {
		p->env->logf(p->env, LOG_WARNING, "write to %s:%u failed: %s", p->host, p->port,
		             aud_sink_conn_why(p->conn));
	}
	return r;
}

void
aud_sink_peer_close(struct aud_sink_peer *p)
{
	aud_sink_conn_close(p->conn);
	p->conn = NULL;
	SSL_CTX_free(p->ctx);
	p->ctx = NULL;
	free(p->ring);
	p->ring = NULL;
}

/* 0 when fd is ready, AUD_ERR_EOF when timeout_ms passed first, AUD_ERR_IO on an error. */
static int
wait_fd(int fd, short ev, uint32_t timeout_ms)
{
	struct pollfd p = {.fd = fd, .events = ev};
	int n;

	do {
		n = poll(&p, 1, (int)timeout_ms);
	} while (n < 0 && errno == EINTR);
	return n > 0 ? 0 : n == 0 ? AUD_ERR_EOF : AUD_ERR_IO;
}

/* Waits for what an SSL call asked for: as wait_fd, and AUD_ERR_IO on a real error. */
static int
ssl_wait(struct aud_sink_conn *c, int ret, uint32_t timeout_ms)
{
	switch (SSL_get_error(c->ssl, ret)) {
	case SSL_ERROR_WANT_READ:
		return wait_fd(c->fd, POLLIN, timeout_ms);
	case SSL_ERROR_WANT_WRITE:
		return wait_fd(c->fd, POLLOUT, timeout_ms);
	default:
		return AUD_ERR_IO;
	}
}

static int
tcp_connect(const char *host, uint16_t port, uint32_t timeout_ms, char *errbuf)
{
	struct addrinfo hints, *res = NULL, *ai;
	char portstr[8];
	int fd = -1, e, one = 1;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_family = AF_UNSPEC;
	snprintf(portstr, sizeof(portstr), "%u", port);
	if ((e = getaddrinfo(host, portstr, &hints, &res)) != 0) {
		snprintf(errbuf, 256, "resolve %s: %s", host, gai_strerror(e));
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		socklen_t elen = sizeof(e);

		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
		            ai->ai_protocol);
		if (fd < 0) {
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 ||
		    (errno == EINPROGRESS && wait_fd(fd, POLLOUT, timeout_ms) == 0 &&
		     getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &elen) == 0 && e == 0)) {
			(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
			break;
		}
		snprintf(errbuf, 256, "connect %s:%u: %s", host, port,
		         strerror(errno == EINPROGRESS ? (e != 0 ? e : ETIMEDOUT) : errno));
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd;
}

int
aud_sink_conn_open(struct aud_sink_conn **cp, SSL_CTX *ctx, const char *host, uint16_t port,
                   uint32_t timeout_ms, char *errbuf)
{
	struct aud_sink_conn *c;
	struct pipe_guard g;
	struct in6_addr a6;
	struct in_addr a4;
	int ret, is_ip;

	*cp = NULL;
	snprintf(errbuf, 256, "connect %s:%u failed", host, port);
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		return AUD_ERR_NOMEM;
	}
	if ((c->fd = tcp_connect(host, port, timeout_ms, errbuf)) < 0) {
		free(c);
		return AUD_ERR_IO;
	}
	if (ctx == NULL) {
		*cp = c;
		return 0;
	}
	is_ip = inet_pton(AF_INET, host, &a4) == 1 || inet_pton(AF_INET6, host, &a6) == 1;
	if ((c->ssl = SSL_new(ctx)) == NULL || SSL_set_fd(c->ssl, c->fd) != 1 ||
	    /* RFC 5425 §5.2 (via RFC 5280/6125): the server's identity is checked against the
	     * name the client was configured with — a DNS name or an IP address. */
	    (is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), host) != 1
	           : (SSL_set1_host(c->ssl, host) != 1 ||
	              SSL_set_tlsext_host_name(c->ssl, host) != 1))) {
		snprintf(errbuf, 256, "TLS set-up for %s failed", host);
		goto fail;
	}
	pipe_block(&g);
	while ((ret = SSL_connect(c->ssl)) != 1) {
		if (ssl_wait(c, ret, timeout_ms) != 0) {
			pipe_restore(&g);
			long v = SSL_get_verify_result(c->ssl);
			unsigned long e = ERR_peek_error();

			snprintf(errbuf, 256, "TLS handshake with %s:%u failed: %s", host, port,
			         v != X509_V_OK ? X509_verify_cert_error_string(v)
			                        : (e != 0 ? ERR_reason_error_string(e) : "closed"));
			goto fail;
		}
	}
	pipe_restore(&g);
	*cp = c;
	return 0;
fail:
	ERR_clear_error();
	aud_sink_conn_close(c);
	return AUD_ERR_IO;
}

static int
conn_write_inner(struct aud_sink_conn *c, const void *buf, size_t len, uint32_t timeout_ms)
{
	const char *p = buf;

	while (len > 0) {
		size_t chunk = len > (1u << 30) ? (1u << 30) : len;
		ssize_t n;
		int ret, w;

		if (c->ssl == NULL) {
			n = send(c->fd, p, chunk, MSG_NOSIGNAL);
			if (n < 0 && errno == EINTR) {
				continue;
			}
			if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
				if ((w = wait_fd(c->fd, POLLOUT, timeout_ms)) != 0) {
					(void)conn_failed(c, w, errno, timeout_ms);
					return AUD_ERR_IO;
				}
				continue;
			}
			if (n <= 0) {
				return conn_failed(c, AUD_ERR_IO, errno, timeout_ms);
			}
		} else {
			/* Without SSL_MODE_ENABLE_PARTIAL_WRITE, SSL_write succeeds only once the
			 * whole chunk is handed to the kernel; a retry repeats the same arguments.
			 */
			errno = 0;
			if ((ret = SSL_write(c->ssl, p, (int)chunk)) <= 0) {
				int saved = errno;

				if ((w = ssl_wait(c, ret, timeout_ms)) != 0) {
					(void)conn_failed(c, w, saved, timeout_ms);
					return AUD_ERR_IO;
				}
				continue;
			}
			n = ret;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int
aud_sink_conn_write(struct aud_sink_conn *c, const void *buf, size_t len, uint32_t timeout_ms)
{
	struct pipe_guard g;
	int r;

	pipe_block(&g);
	r = conn_write_inner(c, buf, len, timeout_ms);
	pipe_restore(&g);
	return r;
}

/* Reads what is available, waiting up to timeout_ms: 1 with *n > 0 bytes, 0 with *n = 0 at
 * EOF, AUD_ERR_EOF on timeout (nothing came: not a failure here, see aud_sink_conn_read),
 * AUD_ERR_IO on an error (c->why says why). */
static int
conn_read(struct aud_sink_conn *c, void *buf, size_t cap, size_t *n, uint32_t timeout_ms)
{
	*n = 0;
	for (;;) {
		ssize_t got;
		int ret, w;

		if (c->ssl == NULL) {
			got = recv(c->fd, buf, cap, 0);
			if (got < 0 && errno == EINTR) {
				continue;
			}
			if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
				if ((w = wait_fd(c->fd, POLLIN, timeout_ms)) != 0) {
					return w == AUD_ERR_EOF
					               ? w
					               : conn_failed(c, w, errno, timeout_ms);
				}
				continue;
			}
			if (got < 0) {
				return conn_failed(c, AUD_ERR_IO, errno, timeout_ms);
			}
			*n = (size_t)got;
			return got > 0;
		}
		errno = 0;
		if ((ret = SSL_read(c->ssl, buf, cap > INT32_MAX ? INT32_MAX : (int)cap)) > 0) {
			*n = (size_t)ret;
			return 1;
		}
		if (SSL_get_error(c->ssl, ret) == SSL_ERROR_ZERO_RETURN) {
			return 0;
		}
		if ((w = ssl_wait(c, ret, timeout_ms)) != 0) {
			return w == AUD_ERR_EOF ? w : conn_failed(c, w, errno, timeout_ms);
		}
	}
}

int
aud_sink_conn_read_wait(struct aud_sink_conn *c, void *buf, size_t cap, size_t *n, uint32_t wait_ms)
{
	struct pipe_guard g;
	int r;

	/* SSL_read may write (a TLS 1.3 KeyUpdate answer, an alert). */
	pipe_block(&g);
	r = conn_read(c, buf, cap, n, wait_ms);
	pipe_restore(&g);
	return r < 0 ? r : 0;
}

int
aud_sink_conn_read(struct aud_sink_conn *c, void *buf, size_t cap, size_t *n, uint32_t timeout_ms)
{
	int r = aud_sink_conn_read_wait(c, buf, cap, n, timeout_ms);

	/* A wait with nothing read is an error here, as any other. */
	if (r == AUD_ERR_EOF) {
		(void)conn_failed(c, r, 0, timeout_ms);
	}
	return r != 0 ? AUD_ERR_IO : 0;
}

static int
conn_alive_inner(struct aud_sink_conn *c)
{
	char junk[512];
	struct pollfd p = {.fd = c->fd, .events = POLLIN};

	for (;;) {
		int ret;

		if (poll(&p, 1, 0) == 0) {
			return 1; /* nothing to read, no hang-up: still connected */
		}
		if (c->ssl == NULL) {
			ssize_t n = recv(c->fd, junk, sizeof(junk), MSG_DONTWAIT);

			if (n > 0) {
				continue;
			}
			return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR);
		}
		/* Readable is not closed: a TLS 1.3 server sends session tickets after the
		 * handshake. Only a close_notify, EOF or error means the peer is gone. */
		if ((ret = SSL_read(c->ssl, junk, sizeof(junk))) > 0) {
			continue;
		}
		ret = SSL_get_error(c->ssl, ret);
		ERR_clear_error();
		return ret == SSL_ERROR_WANT_READ || ret == SSL_ERROR_WANT_WRITE;
	}
}

int
aud_sink_conn_alive(struct aud_sink_conn *c)
{
	struct pipe_guard g;
	int r;

	/* SSL_read may write (a TLS 1.3 KeyUpdate answer, an alert). */
	pipe_block(&g);
	r = conn_alive_inner(c);
	pipe_restore(&g);
	return r;
}

const char *
aud_sink_conn_why(const struct aud_sink_conn *c)
{
	return c != NULL && c->why[0] != '\0' ? c->why : "connection lost";
}

void
aud_sink_conn_close(struct aud_sink_conn *c)
{
	struct pipe_guard g;

	if (c == NULL) {
		return;
	}
	if (c->ssl != NULL) {
		/* Best effort close_notify; a dead peer is not waited for (non-blocking fd). */
		pipe_block(&g);
		(void)SSL_shutdown(c->ssl);
		pipe_restore(&g);
		SSL_free(c->ssl);
		ERR_clear_error();
	}
	if (c->fd >= 0) {
		close(c->fd);
	}
	free(c);
}
