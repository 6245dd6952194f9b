/*
 * tests/audit/test_sink_fixture.h — shared by the tests/audit/test_sink*.c suites: a log
 * with N events written by the real writer, and readers of what a sink delivered. Static
 * functions in a header because the Makefile links each test file alone with libaud.
 */
#ifndef HSMGATE_TEST_SINK_FIXTURE_H
#define HSMGATE_TEST_SINK_FIXTURE_H

#include "audit/sink_int.h"
#include "tests/lib/test.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define FIX_ORIGIN "hsmgate.test/audit/sink"
#define FIX_UNUSED __attribute__((unused))

/* Appends n events (keys.sign, correlation id i0..i0+n-1) to the log in dir, creating it
 * with the key prefix.key (generated if absent). 0 or an AUD_ERR_*. */
static FIX_UNUSED int
fix_log_append(const char *dir, const char *key_prefix, unsigned i0, unsigned n, unsigned delay_ms)
{
	struct aud_log_options o;
	struct aud_log *log = NULL;
	char keyp[1024];
	struct stat st;
	uint64_t seq = 0;
	unsigned i;
	int r;

	snprintf(keyp, sizeof(keyp), "%s.key", key_prefix);
	if (stat(keyp, &st) != 0 && (r = aud_key_generate(key_prefix)) != 0) {
		return r;
	}
	aud_log_options_init(&o);
	o.dir = dir;
	o.origin = FIX_ORIGIN;
	o.key_path = keyp;
	o.checkpoint_every = 40; /* a few checkpoints between events: the sink skips them */
	if ((r = aud_log_open(&log, &o)) != 0) {
		return r;
	}
	for (i = i0; i < i0 + n && r == 0; i++) {
		struct aud_event *ev = NULL;
		const char *sids[] = {"allow-sign"};

		if ((r = aud_event_new(&ev, "keys", i % 7 == 3 ? "destroy" : "sign")) != 0) {
			break;
		}
		if ((r = aud_event_set_initiator(ev, "tenant/acme/user/alice", NULL,
		                                 AUD_INITIATOR_USER, AUD_CRED_APIKEY,
		                                 "192.0.2.7")) != 0 ||
		    (r = aud_event_set_target(ev, "crn:hsmgate:acme:partition:p1:key:k1", "k1",
		                              AUD_TARGET_KEY)) != 0 ||
		    (r = aud_event_set_correlation(ev, 7, i)) != 0 ||
		    (r = aud_event_set_ckrv(ev, 0)) != 0 ||
		    (r = aud_event_set_policy(ev, AUD_POLICY_ALLOW, sids, 1)) != 0 ||
		    (r = aud_log_append(log, ev, NULL, NULL, &seq)) != 0) {
			aud_event_free(ev);
			break;
		}
		aud_event_free(ev);
		if (delay_ms != 0) {
			r = aud_log_wait(log, seq);
			usleep(delay_ms * 1000u);
		}
	}
	if (r == 0 && n > 0) {
		r = aud_log_wait(log, seq);
	}
	return aud_log_close(log) != 0 && r == 0 ? AUD_ERR_IO : r;
}

/* The event records of a log (E, S, R) in order: payloads (malloc'd, NUL-terminated) and
 * seqs; *n their number; *head one past the last record. */
static FIX_UNUSED int
fix_log_events(const char *dir, char ***payloads, uint64_t **seqs, size_t *n, uint64_t *head)
{
	struct aud_reader *rd = NULL;
	const char *line;
	size_t len, cap = 0;
	uint64_t seg, no;
	int r;

	*payloads = NULL;
	*seqs = NULL;
	*n = 0;
	*head = 0;
	if ((r = aud_reader_open(&rd, dir)) != 0) {
		return r;
	}
	while ((r = aud_reader_next(rd, &line, &len, &seg, &no, NULL)) == 0) {
		struct aud_record_view rec;

		if ((r = aud_record_parse(line, len, &rec)) != 0) {
			break;
		}
		*head = rec.seq + 1;
		if (rec.type == 'C') {
			continue;
		}
		if (*n == cap) {
			cap = cap ? 2 * cap : 64;
			*payloads = realloc(*payloads, cap * sizeof(**payloads));
			*seqs = realloc(*seqs, cap * sizeof(**seqs));
		}
		(*payloads)[*n] = strndup(rec.payload, rec.payload_len);
		(*seqs)[(*n)++] = rec.seq;
	}
	aud_reader_free(rd);
	return r == AUD_ERR_EOF ? 0 : r;
}

static FIX_UNUSED void
fix_strv_free(char **v, size_t n)
{
	size_t i;

	for (i = 0; v != NULL && i < n; i++) {
		free(v[i]);
	}
	free(v);
}

/* A whole file, NUL-terminated; *len its size. NULL if unreadable. */
static FIX_UNUSED char *
fix_slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long sz;

	*len = 0;
	if (f == NULL) {
		return NULL;
	}
	if (fseek(f, 0, SEEK_END) == 0 && (sz = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
	    (buf = malloc((size_t)sz + 1)) != NULL) {
		*len = fread(buf, 1, (size_t)sz, f);
		buf[*len] = '\0';
	}
	fclose(f);
	return buf;
}

/* How many lines of `text` equal `line` exactly. */
static FIX_UNUSED unsigned
fix_count_line(const char *text, const char *line)
{
	size_t l = strlen(line);
	const char *p = text;
	unsigned c = 0;

	while (*p != '\0') {
		const char *nl = strchr(p, '\n');
		size_t n = nl != NULL ? (size_t)(nl - p) : strlen(p);

		if (n == l && memcmp(p, line, l) == 0) {
			c++;
		}
		p += n + (nl != NULL);
	}
	return c;
}

/* A self-signed P-256 certificate for cn with the SAN IP:127.0.0.1 (and its key, unless
 * key_path is NULL), made with EVP: for the TLS receivers of the sink tests. 0 or -1. */
static FIX_UNUSED int
fix_write_cert(const char *cert_path, const char *key_path, const char *cn)
{
	EVP_PKEY *pk = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509V3_CTX v3;
	X509_EXTENSION *ext = NULL;
	FILE *f;
	int ok = 0;

	if (pk == NULL || x == NULL) {
		goto out;
	}
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -60);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
	                           (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	X509_set_pubkey(x, pk);
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	if ((ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, "IP:127.0.0.1")) == NULL ||
	    X509_add_ext(x, ext, -1) != 1 || X509_sign(x, pk, EVP_sha256()) == 0) {
		goto out;
	}
	if ((f = fopen(cert_path, "w")) == NULL) {
		goto out;
	}
	ok = PEM_write_X509(f, x) == 1;
	fclose(f);
	if (ok && key_path != NULL) {
		ok = (f = fopen(key_path, "w")) != NULL &&
		     PEM_write_PrivateKey(f, pk, NULL, NULL, 0, NULL, NULL) == 1;
		if (f != NULL) {
			fclose(f);
		}
	}
out:
	X509_EXTENSION_free(ext);
	X509_free(x);
	EVP_PKEY_free(pk);
	return ok ? 0 : -1;
}

/* A TCP socket listening on 127.0.0.1 at a free port. 0 or -1. */
static FIX_UNUSED int
fix_listen_loopback(int *lfd, uint16_t *port)
{
	struct sockaddr_in a;
	socklen_t alen = sizeof(a);

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((*lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    bind(*lfd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(*lfd, 8) != 0 ||
	    getsockname(*lfd, (struct sockaddr *)&a, &alen) != 0) {
		return -1;
	}
	*port = ntohs(a.sin_port);
	return 0;
}

/* A TLS server's context for cert/key. 0 or -1. */
static FIX_UNUSED int
fix_tls_ctx(const char *cert, const char *key, SSL_CTX **ctx)
{
	*ctx = SSL_CTX_new(TLS_server_method());
	if (*ctx == NULL || SSL_CTX_use_certificate_file(*ctx, cert, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_use_PrivateKey_file(*ctx, key, SSL_FILETYPE_PEM) != 1) {
		return -1;
	}
	return 0;
}

/*
 * A test server on a free loopback port (the receivers of the syslog, relp and https
 * suites): its thread accepts one connection at a time and hands the socket to
 * conn(arg, fd), which owns it; a conn that loops checks `stop`. fix_server_stop() ends the
 * accept loop within 50 ms and joins the thread.
 */
struct fix_server {
	int lfd;
	uint16_t port;
	pthread_t th;
	atomic_int stop;
	void (*conn)(void *arg, int fd);
	void *arg;
};

static FIX_UNUSED void *
fix_server_main(void *p)
{
	struct fix_server *s = p;

	while (!atomic_load(&s->stop)) {
		struct pollfd pf = {.fd = s->lfd, .events = POLLIN};
		int fd;

		if (poll(&pf, 1, 50) <= 0 || (fd = accept(s->lfd, NULL, NULL)) < 0) {
			continue;
		}
		s->conn(s->arg, fd);
	}
	return NULL;
}

/* 0 or -1 (no socket, no thread). */
static FIX_UNUSED int
fix_server_start(struct fix_server *s, void (*conn)(void *arg, int fd), void *arg)
{
	memset(s, 0, sizeof(*s));
	s->conn = conn;
	s->arg = arg;
	if (fix_listen_loopback(&s->lfd, &s->port) != 0) {
		return -1;
	}
	return pthread_create(&s->th, NULL, fix_server_main, s) == 0 ? 0 : -1;
}

static FIX_UNUSED void
fix_server_stop(struct fix_server *s)
{
	atomic_store(&s->stop, 1);
	pthread_join(s->th, NULL);
	close(s->lfd);
}

/* The TLS side of a connection conn() was handed: fn(arg, ssl, fd) once the handshake
 * succeeded; then the socket is closed. */
static FIX_UNUSED void
fix_tls_serve(SSL_CTX *ctx, int fd, void (*fn)(void *arg, SSL *ssl, int fd), void *arg)
{
	SSL *ssl = SSL_new(ctx);

	SSL_set_fd(ssl, fd);
	if (SSL_accept(ssl) == 1) {
		fn(arg, ssl, fd);
	}
	SSL_free(ssl);
	close(fd);
	ERR_clear_error();
}

/* Log lines of the sink, kept for assertions. */
static char fix_logbuf[8192];
static int fix_crit_lines;

static FIX_UNUSED void
fix_log_cb(void *arg, int level, const char *msg)
{
	size_t l = strlen(fix_logbuf);

	(void)arg;
	if (level <= 2) { /* LOG_CRIT */
		fix_crit_lines++;
	}
	snprintf(fix_logbuf + l, sizeof(fix_logbuf) - l, "%d %s\n", level, msg);
}

#endif
