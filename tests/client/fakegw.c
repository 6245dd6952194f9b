/*
 * tests/client/fakegw.c — see fakegw.h. Blocking OpenSSL, one thread per connection: the
 * point is to script what the gateway does, not to be fast.
 */
#include "tests/client/fakegw.h"

#include "proto/proto.h"
#include "tests/lib/test.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#define FAKEGW_MAX_CONNS 256

struct fakegw_conn {
	struct fakegw *g;
	int fd;
	int active;
	pthread_t thread;
	SSL *ssl;
};

struct fakegw {
	pthread_mutex_t lock;
	pthread_cond_t cv; /* `held` or `hold` changed */
	SSL_CTX *ctx;
	int lfd;
	uint16_t port;
	char ca[1024];
	pthread_t accept_thread;
	int stop;
	int auth_fail;
	int hold;      /* answer no HELLO until fakegw_release */
	unsigned held; /* connections waiting for that now */
	unsigned hellos;
	uint32_t max_frame;
	uint32_t max_inflight;
	unsigned welcomed;
	unsigned requests;
	int refuse_digest; /* C_DigestInit answers CKR_MECHANISM_INVALID */
	uint64_t next_conn_id;
	struct fakegw_conn conns[FAKEGW_MAX_CONNS];
};

/* ---- certificate ---------------------------------------------------------------------- */

static int
fakegw_cert(const char *dir, char *ca, size_t casz, EVP_PKEY **keyp, X509 **certp)
{
	EVP_PKEY *key = NULL;
	X509 *x = NULL;
	X509_NAME *n;
	X509V3_CTX v3;
	X509_EXTENSION *ext;
	FILE *f = NULL;
	static const char *exts[][2] = {
	        {"basicConstraints", "critical,CA:TRUE"},
	        {"keyUsage", "critical,digitalSignature,keyCertSign"},
	        {"subjectAltName", "DNS:localhost,IP:127.0.0.1"},
	};
	size_t i;
	int r = -1;

	snprintf(ca, casz, "%s/ca.pem", dir);
	if ((key = EVP_EC_gen("P-256")) == NULL || (x = X509_new()) == NULL) {
		goto out;
	}
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	n = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1,
	                           -1, 0);
	X509_set_issuer_name(x, n);
	X509_set_pubkey(x, key);
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	for (i = 0; i < sizeof(exts) / sizeof(exts[0]); i++) {
		if ((ext = X509V3_EXT_conf(NULL, &v3, exts[i][0], exts[i][1])) == NULL) {
			goto out;
		}
		X509_add_ext(x, ext, -1);
		X509_EXTENSION_free(ext);
	}
	if (X509_sign(x, key, EVP_sha256()) == 0 || (f = fopen(ca, "w")) == NULL ||
	    PEM_write_X509(f, x) != 1) {
		goto out;
	}
	*keyp = key;
	*certp = x;
	key = NULL;
	x = NULL;
	r = 0;
out:
	if (f != NULL) {
		fclose(f);
	}
	EVP_PKEY_free(key);
	X509_free(x);
	return r;
}

/* ---- frames --------------------------------------------------------------------------- */

static int
fakegw_read_full(SSL *ssl, uint8_t *p, size_t n)
{
	int got;

	while (n > 0) {
		if ((got = SSL_read(ssl, p, n > INT32_MAX ? INT32_MAX : (int)n)) <= 0) {
			return -1;
		}
		p += got;
		n -= (size_t)got;
	}
	return 0;
}

/* Reads one frame; *body is malloc'd. */
static int
fakegw_read_frame(SSL *ssl, struct proto_hdr *h, uint8_t **body)
{
	uint8_t hdr[PROTO_HDR_BYTES];

	*body = NULL;
	if (fakegw_read_full(ssl, hdr, sizeof(hdr)) != 0 ||
	    proto_hdr_decode(hdr, sizeof(hdr), PROTO_MAX_FRAME_CAP, h) != 0) {
		return -1;
	}
	if ((*body = malloc(h->body_len + 1)) == NULL ||
	    fakegw_read_full(ssl, *body, h->body_len) != 0) {
		free(*body);
		*body = NULL;
		return -1;
	}
	return 0;
}

static int
fakegw_send(SSL *ssl, struct proto_buf *b)
{
	int r = -1;

	if (proto_frame_finish(b) == 0 && SSL_write(ssl, b->data, (int)b->len) == (int)b->len) {
		r = 0;
	}
	proto_buf_free(b);
	return r;
}

static int
fakegw_send_error(SSL *ssl, uint32_t req_id, uint32_t code, const char *msg)
{
	struct proto_buf b;

	proto_buf_init(&b);
	if (proto_frame_begin(&b, PROTO_MSG_ERROR, 0, 0, req_id) != 0 ||
	    proto_gwerror_put(&b, code, msg) != 0) {
		proto_buf_free(&b);
		return -1;
	}
	return fakegw_send(ssl, &b);
}

/* Starts a reply: header and CK_RV. */
static int
fakegw_reply_begin(struct proto_buf *b, const struct proto_hdr *h, CK_RV rv)
{
	proto_buf_init(b);
	if (proto_frame_begin(b, PROTO_MSG_REPLY, h->call, 0, h->req_id) != 0 ||
	    proto_put_u64(b, rv) != 0) {
		return -1;
	}
	return 0;
}

static int
fakegw_reply_rv(SSL *ssl, const struct proto_hdr *h, CK_RV rv)
{
	struct proto_buf b;

	if (fakegw_reply_begin(&b, h, rv) != 0) {
		proto_buf_free(&b);
		return -1;
	}
	return fakegw_send(ssl, &b);
}

static void
fakegw_pad(CK_UTF8CHAR *d, size_t n, const char *s)
{
	size_t l = strlen(s);

	memset(d, ' ', n);
	memcpy(d, s, l < n ? l : n);
}

static int
fakegw_slot_info(SSL *ssl, const struct proto_hdr *h, CK_SLOT_ID slot)
{
	CK_SLOT_INFO si;
	struct proto_buf b;
	char desc[64];

	memset(&si, 0, sizeof(si));
	snprintf(desc, sizeof(desc), "slot %lu", (unsigned long)slot);
	fakegw_pad(si.slotDescription, sizeof(si.slotDescription), desc);
	fakegw_pad(si.manufacturerID, sizeof(si.manufacturerID), "fakegw");
	si.flags = CKF_TOKEN_PRESENT;
	if (fakegw_reply_begin(&b, h, CKR_OK) != 0 || proto_put_slot_info(&b, &si) != 0) {
		proto_buf_free(&b);
		return -1;
	}
	return fakegw_send(ssl, &b);
}

/* ---- one connection ------------------------------------------------------------------- */

struct fakegw_state {
	uint32_t session_n;
	uint8_t digest_active[4096]; /* per session, by its number modulo the size */
	struct proto_hdr held;       /* a slot-100 request waiting for slot 101 */
	int have_held;
};

/* 0 to go on, 1 to close the connection abruptly, -1 on error. */
static int
fakegw_handle(struct fakegw_conn *fc, struct fakegw_state *st, const struct proto_hdr *h,
              const uint8_t *body)
{
	SSL *ssl = fc->ssl;
	struct proto_cur c;
	struct proto_buf b;
	struct proto_arena *a = NULL;
	CK_ULONG u1, u2, cap;
	const CK_BYTE *p;
	CK_ULONG len;
	CK_MECHANISM m;
	int has, r = -1;
	uint8_t u8;

	proto_cur_init(&c, body, h->body_len);
	proto_buf_init(&b);
	switch (h->call) {
	case PROTO_CALL_C_GetSlotList: {
		CK_SLOT_ID one = 1;

		if (proto_get_u8(&c, &u8) != 0 || proto_get_ulongs_req(&c, &has, &cap) != 0) {
			goto out;
		}
		if (has && cap < 1) {
			r = fakegw_reply_begin(&b, h, CKR_BUFFER_TOO_SMALL) != 0 ||
			                    proto_put_ulongs_reply(&b, NULL, 1) != 0
			            ? -1
			            : fakegw_send(ssl, &b);
			goto out;
		}
		r = fakegw_reply_begin(&b, h, CKR_OK) != 0 ||
		                    proto_put_ulongs_reply(&b, has ? &one : NULL, 1) != 0
		            ? -1
		            : fakegw_send(ssl, &b);
		goto out;
	}
	case PROTO_CALL_C_GetSlotInfo:
		if (proto_get_ulong(&c, &u1) != 0) {
			goto out;
		}
		switch (u1) {
		case 100:
			st->held = *h;
			st->have_held = 1;
			r = 0;
			goto out;
		case 101:
			if ((r = fakegw_slot_info(ssl, h, 101)) == 0 && st->have_held) {
				st->have_held = 0;
				r = fakegw_slot_info(ssl, &st->held, 100);
			}
			goto out;
		case 200:
			r = 1;
			goto out;
		case 201:
			r = 0;
			goto out;
		case 202:
			r = fakegw_send_error(ssl, h->req_id, PROTO_GWERR_UNAVAILABLE,
			                      "partition worker not running");
			goto out;
		case 203:
			fakegw_send_error(ssl, 0, PROTO_GWERR_SHUTDOWN, "gateway is shutting down");
			r = 1;
			goto out;
		case 204:
			r = fakegw_reply_begin(&b, h, CKR_OK) != 0 || proto_put_u8(&b, 0) != 0
			            ? -1
			            : fakegw_send(ssl, &b);
			goto out;
		default:
			r = fakegw_slot_info(ssl, h, u1);
			goto out;
		}
	case PROTO_CALL_C_GetTokenInfo: {
		CK_TOKEN_INFO ti;

		memset(&ti, 0, sizeof(ti));
		fakegw_pad(ti.label, sizeof(ti.label), "fake");
		fakegw_pad(ti.manufacturerID, sizeof(ti.manufacturerID), "fakegw");
		fakegw_pad(ti.model, sizeof(ti.model), "test");
		fakegw_pad((CK_UTF8CHAR *)ti.serialNumber, sizeof(ti.serialNumber), "1");
		ti.flags = CKF_TOKEN_INITIALIZED | CKF_RNG;
		r = fakegw_reply_begin(&b, h, CKR_OK) != 0 || proto_put_token_info(&b, &ti) != 0
		            ? -1
		            : fakegw_send(ssl, &b);
		goto out;
	}
	case PROTO_CALL_C_OpenSession:
		if (proto_get_ulong(&c, &u1) != 0 || proto_get_ulong(&c, &u2) != 0) {
			goto out;
		}
		r = fakegw_reply_begin(&b, h, CKR_OK) != 0 ||
		                    proto_put_ulong(&b, proto_session_make(u1, ++st->session_n)) !=
		                            0
		            ? -1
		            : fakegw_send(ssl, &b);
		goto out;
	case PROTO_CALL_C_CloseSession:
	case PROTO_CALL_C_CloseAllSessions:
		r = fakegw_reply_rv(ssl, h, CKR_OK);
		goto out;
	case PROTO_CALL_C_GetSessionInfo: {
		CK_SESSION_INFO si;

		if (proto_get_ulong(&c, &u1) != 0) {
			goto out;
		}
		memset(&si, 0, sizeof(si));
		si.slotID = proto_session_slot(u1);
		si.state = CKS_RO_PUBLIC_SESSION;
		si.flags = CKF_SERIAL_SESSION;
		r = fakegw_reply_begin(&b, h, CKR_OK) != 0 || proto_put_session_info(&b, &si) != 0
		            ? -1
		            : fakegw_send(ssl, &b);
		goto out;
	}
	case PROTO_CALL_C_Login:
		if (proto_get_ulong(&c, &u1) != 0 || proto_get_ulong(&c, &u2) != 0 ||
		    proto_get_inbytes(&c, &p, &len, 1024) != 0) {
			goto out;
		}
		r = fakegw_reply_rv(ssl, h,
		                    p != NULL && len == 4 && memcmp(p, "1234", 4) == 0
		                            ? CKR_OK
		                            : CKR_PIN_INCORRECT);
		goto out;
	case PROTO_CALL_C_GenerateRandom: {
		uint8_t *rnd;
		CK_ULONG i;

		if (proto_get_ulong(&c, &u1) != 0 || proto_get_outbuf_req(&c, &has, &cap) != 0) {
			goto out;
		}
		if ((rnd = malloc(cap + 1)) == NULL) {
			goto out;
		}
		for (i = 0; i < cap; i++) {
			rnd[i] = (uint8_t)i;
		}
		r = fakegw_reply_begin(&b, h, CKR_OK) != 0 ||
		                    proto_put_outbuf_reply(&b, rnd, cap) != 0
		            ? -1
		            : fakegw_send(ssl, &b);
		free(rnd);
		goto out;
	}
	case PROTO_CALL_C_DigestInit:
		if ((a = proto_arena_new()) == NULL || proto_get_ulong(&c, &u1) != 0 ||
		    proto_get_mechanism(&c, a, &m) != 0) {
			goto out;
		}
		pthread_mutex_lock(&fc->g->lock);
		u2 = fc->g->refuse_digest || m.mechanism != CKM_SHA256 ? CKR_MECHANISM_INVALID
		                                                       : CKR_OK;
		pthread_mutex_unlock(&fc->g->lock);
		if (st->digest_active[u1 % sizeof(st->digest_active)]) {
			u2 = CKR_OPERATION_ACTIVE;
		}
		if (u2 == CKR_OK) {
			st->digest_active[u1 % sizeof(st->digest_active)] = 1;
		}
		r = fakegw_reply_rv(ssl, h, u2);
		goto out;
	case PROTO_CALL_C_Digest: {
		uint8_t md[SHA256_DIGEST_LENGTH];

		if (proto_get_ulong(&c, &u1) != 0 ||
		    proto_get_inbytes(&c, &p, &len, PROTO_MAX_FRAME_CAP) != 0 ||
		    proto_get_outbuf_req(&c, &has, &cap) != 0) {
			goto out;
		}
		if (!st->digest_active[u1 % sizeof(st->digest_active)]) {
			r = fakegw_reply_rv(ssl, h, CKR_OPERATION_NOT_INITIALIZED);
			goto out;
		}
		if (len == 4 && memcmp(p, "hang", 4) == 0) {
			st->digest_active[u1 % sizeof(st->digest_active)] = 0;
			r = 0; /* never answered */
			goto out;
		}
		/* v2.40 §5.2: a size query leaves the operation active; otherwise it ends. */
		if (!has || cap < sizeof(md)) {
			r = fakegw_reply_begin(&b, h, has ? CKR_BUFFER_TOO_SMALL : CKR_OK) != 0 ||
			                    proto_put_outbuf_reply(&b, NULL, sizeof(md)) != 0
			            ? -1
			            : fakegw_send(ssl, &b);
			goto out;
		}
		SHA256(p != NULL ? p : (const uint8_t *)"", len, md);
		st->digest_active[u1 % sizeof(st->digest_active)] = 0;
		r = fakegw_reply_begin(&b, h, CKR_OK) != 0 ||
		                    proto_put_outbuf_reply(&b, md, sizeof(md)) != 0
		            ? -1
		            : fakegw_send(ssl, &b);
		goto out;
	}
	case PROTO_CALL_C_WaitForSlotEvent:
		if (proto_get_ulong(&c, &u1) != 0) {
			goto out;
		}
		r = fakegw_reply_rv(
		        ssl, h, (u1 & CKF_DONT_BLOCK) ? CKR_NO_EVENT : CKR_FUNCTION_NOT_SUPPORTED);
		goto out;
	default:
		r = fakegw_reply_rv(ssl, h, CKR_FUNCTION_NOT_SUPPORTED);
		goto out;
	}
out:
	proto_buf_free(&b);
	proto_arena_free(a);
	return r;
}

static void *
fakegw_conn_main(void *arg)
{
	struct fakegw_conn *fc = arg;
	struct fakegw *g = fc->g;
	struct fakegw_state st;
	struct proto_hello hello;
	struct proto_welcome w;
	struct proto_hdr h;
	struct proto_cur c;
	struct proto_buf b;
	uint8_t *body = NULL;
	int r, auth_fail;

	memset(&st, 0, sizeof(st));
	if (SSL_accept(fc->ssl) != 1 || fakegw_read_frame(fc->ssl, &h, &body) != 0 ||
	    h.type != PROTO_MSG_HELLO) {
		goto out;
	}
	proto_cur_init(&c, body, h.body_len);
	if (proto_hello_get(&c, &hello) != 0) {
		goto out;
	}
	pthread_mutex_lock(&g->lock);
	g->hellos++;
	/* fakegw_hold: the client stays inside its handshake (C_Initialize) until released. */
	if (g->hold) {
		g->held++;
		pthread_cond_broadcast(&g->cv);
		while (g->hold) {
			pthread_cond_wait(&g->cv, &g->lock);
		}
		g->held--;
	}
	auth_fail = g->auth_fail;
	memset(&w, 0, sizeof(w));
	w.version = PROTO_VERSION;
	snprintf(w.gateway_id, sizeof(w.gateway_id), "fakegw");
	snprintf(w.principal, sizeof(w.principal), "tenant/test/service/client");
	w.max_frame = g->max_frame;
	w.max_inflight = g->max_inflight;
	w.conn_id = ++g->next_conn_id;
	pthread_mutex_unlock(&g->lock);
	if (auth_fail || hello.cred != PROTO_CRED_APIKEY ||
	    strcmp(hello.api_key, FAKEGW_API_KEY) != 0) {
		fakegw_send_error(fc->ssl, 0, PROTO_GWERR_AUTH, "unknown API key");
		SSL_shutdown(fc->ssl);
		goto out;
	}
	/* Counted before it is sent: once the client has it, the count must say so. */
	pthread_mutex_lock(&g->lock);
	g->welcomed++;
	pthread_mutex_unlock(&g->lock);
	proto_buf_init(&b);
	if (proto_frame_begin(&b, PROTO_MSG_WELCOME, 0, 0, 0) != 0 ||
	    proto_welcome_put(&b, &w) != 0 || fakegw_send(fc->ssl, &b) != 0) {
		goto out;
	}
	for (;;) {
		free(body);
		if (fakegw_read_frame(fc->ssl, &h, &body) != 0) {
			break;
		}
		if (h.type == PROTO_MSG_PING) {
			proto_buf_init(&b);
			if (proto_frame_begin(&b, PROTO_MSG_PONG, 0, 0, h.req_id) != 0 ||
			    fakegw_send(fc->ssl, &b) != 0) {
				break;
			}
			continue;
		}
		if (h.type != PROTO_MSG_REQUEST) {
			break;
		}
		pthread_mutex_lock(&g->lock);
		g->requests++;
		pthread_mutex_unlock(&g->lock);
		if ((r = fakegw_handle(fc, &st, &h, body)) != 0) {
			break; /* 1: drop abruptly; -1: error */
		}
	}
out:
	free(body);
	/* Abrupt: no close_notify, just the TCP close. */
	shutdown(fc->fd, SHUT_RDWR);
	return NULL;
}

static void *
fakegw_accept_main(void *arg)
{
	struct fakegw *g = arg;
	struct fakegw_conn *fc;
	int fd, i, one = 1;

	for (;;) {
		fd = accept(g->lfd, NULL, NULL);
		pthread_mutex_lock(&g->lock);
		if (g->stop) {
			pthread_mutex_unlock(&g->lock);
			if (fd >= 0) {
				close(fd);
			}
			return NULL;
		}
		if (fd < 0) {
			pthread_mutex_unlock(&g->lock);
			continue;
		}
		for (i = 0; i < FAKEGW_MAX_CONNS && g->conns[i].fd >= 0; i++) {
		}
		if (i == FAKEGW_MAX_CONNS) {
			pthread_mutex_unlock(&g->lock);
			close(fd);
			continue;
		}
		/* Without it, Nagle holds the WELCOME behind the session tickets until the
		 * client's delayed ACK: 40 ms per connection, and the race tests make hundreds. */
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		fc = &g->conns[i];
		fc->g = g;
		fc->fd = fd;
		fc->ssl = SSL_new(g->ctx);
		SSL_set_fd(fc->ssl, fd);
		fc->active = pthread_create(&fc->thread, NULL, fakegw_conn_main, fc) == 0;
		pthread_mutex_unlock(&g->lock);
	}
}

/* ---- lifecycle ------------------------------------------------------------------------ */

struct fakegw *
fakegw_start(const char *dir)
{
	struct fakegw *g;
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	int i, one = 1;

	if ((g = calloc(1, sizeof(*g))) == NULL) {
		return NULL;
	}
	pthread_mutex_init(&g->lock, NULL);
	pthread_cond_init(&g->cv, NULL);
	g->lfd = -1;
	g->max_frame = PROTO_MAX_FRAME_DEFAULT;
	g->max_inflight = 64;
	for (i = 0; i < FAKEGW_MAX_CONNS; i++) {
		g->conns[i].fd = -1;
	}
	if (fakegw_cert(dir, g->ca, sizeof(g->ca), &key, &cert) != 0 ||
	    (g->ctx = SSL_CTX_new(TLS_server_method())) == NULL ||
	    SSL_CTX_set_min_proto_version(g->ctx, TLS1_3_VERSION) != 1 ||
	    SSL_CTX_use_certificate(g->ctx, cert) != 1 ||
	    SSL_CTX_use_PrivateKey(g->ctx, key) != 1) {
		fprintf(stderr, "fakegw: cannot make the TLS context\n");
		goto fail;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((g->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    setsockopt(g->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(g->lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(g->lfd, 16) != 0 ||
	    getsockname(g->lfd, (struct sockaddr *)&sa, &sl) != 0) {
		fprintf(stderr, "fakegw: cannot listen: %s\n", strerror(errno));
		goto fail;
	}
	g->port = ntohs(sa.sin_port);
	if (pthread_create(&g->accept_thread, NULL, fakegw_accept_main, g) != 0) {
		goto fail;
	}
	EVP_PKEY_free(key);
	X509_free(cert);
	return g;
fail:
	EVP_PKEY_free(key);
	X509_free(cert);
	if (g->lfd >= 0) {
		close(g->lfd);
	}
	SSL_CTX_free(g->ctx);
	pthread_cond_destroy(&g->cv);
	pthread_mutex_destroy(&g->lock);
	free(g);
	return NULL;
}

static void
fakegw_reap(struct fakegw *g, int all)
{
	int i;

	if (all) {
		fakegw_release(g); /* a held connection thread could not be joined */
	}
	for (i = 0; i < FAKEGW_MAX_CONNS; i++) {
		struct fakegw_conn *fc = &g->conns[i];

		pthread_mutex_lock(&g->lock);
		if (fc->fd < 0) {
			pthread_mutex_unlock(&g->lock);
			continue;
		}
		if (all) {
			shutdown(fc->fd, SHUT_RDWR);
		}
		pthread_mutex_unlock(&g->lock);
		if (fc->active) {
			pthread_join(fc->thread, NULL);
		}
		pthread_mutex_lock(&g->lock);
		SSL_free(fc->ssl);
		close(fc->fd);
		fc->ssl = NULL;
		fc->fd = -1;
		fc->active = 0;
		pthread_mutex_unlock(&g->lock);
	}
}

void
fakegw_drop_all(struct fakegw *g)
{
	fakegw_reap(g, 1);
}

void
fakegw_stop(struct fakegw *g)
{
	if (g == NULL) {
		return;
	}
	pthread_mutex_lock(&g->lock);
	g->stop = 1;
	pthread_mutex_unlock(&g->lock);
	shutdown(g->lfd, SHUT_RDWR);
	pthread_join(g->accept_thread, NULL);
	close(g->lfd);
	fakegw_reap(g, 1);
	SSL_CTX_free(g->ctx);
	pthread_cond_destroy(&g->cv);
	pthread_mutex_destroy(&g->lock);
	free(g);
}

uint16_t
fakegw_port(const struct fakegw *g)
{
	return g->port;
}

const char *
fakegw_ca(const struct fakegw *g)
{
	return g->ca;
}

void
fakegw_set_auth_fail(struct fakegw *g, int on)
{
	pthread_mutex_lock(&g->lock);
	g->auth_fail = on;
	pthread_mutex_unlock(&g->lock);
}

int
fakegw_suite_init(struct fakegw_suite *fs, const char *name)
{
	memset(fs, 0, sizeof(*fs));
	signal(SIGPIPE, SIG_IGN);
	if ((fs->tmp = test_tmpdir_new(name)) == NULL) {
		return -1;
	}
	snprintf(fs->conf, sizeof(fs->conf), "%s/client.yaml", fs->tmp);
	snprintf(fs->errfile, sizeof(fs->errfile), "%s/stderr.txt", fs->tmp);
	return (fs->gw = fakegw_start(fs->tmp)) == NULL ? -1 : 0;
}

int
fakegw_suite_fini(struct fakegw_suite *fs)
{
	(void)C_Finalize(NULL);
	if (fs->gw != NULL) {
		fakegw_stop(fs->gw);
	}
	if (fs->tmp != NULL) {
		test_tmpdir_remove(fs->tmp);
	}
	return 0;
}

void
fakegw_set_refuse_digest(struct fakegw *g, int on)
{
	pthread_mutex_lock(&g->lock);
	g->refuse_digest = on;
	pthread_mutex_unlock(&g->lock);
}

void
fakegw_set_limits(struct fakegw *g, uint32_t max_frame, uint32_t max_inflight)
{
	pthread_mutex_lock(&g->lock);
	g->max_frame = max_frame;
	g->max_inflight = max_inflight;
	pthread_mutex_unlock(&g->lock);
}

void
fakegw_hold(struct fakegw *g)
{
	pthread_mutex_lock(&g->lock);
	g->hold = 1;
	pthread_mutex_unlock(&g->lock);
}

void
fakegw_release(struct fakegw *g)
{
	pthread_mutex_lock(&g->lock);
	g->hold = 0;
	pthread_cond_broadcast(&g->cv);
	pthread_mutex_unlock(&g->lock);
}

int
fakegw_wait_held(struct fakegw *g, unsigned n)
{
	struct timespec ts;
	int r = 0;

	/* Only a guard against a hang: a test that gets here waits for an event, not a time. */
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 60;
	pthread_mutex_lock(&g->lock);
	while (g->held < n && r == 0) {
		r = pthread_cond_timedwait(&g->cv, &g->lock, &ts);
	}
	r = g->held >= n ? 0 : -1;
	pthread_mutex_unlock(&g->lock);
	return r;
}

unsigned
fakegw_held(struct fakegw *g)
{
	unsigned n;

	pthread_mutex_lock(&g->lock);
	n = g->held;
	pthread_mutex_unlock(&g->lock);
	return n;
}

unsigned
fakegw_hellos(struct fakegw *g)
{
	unsigned n;

	pthread_mutex_lock(&g->lock);
	n = g->hellos;
	pthread_mutex_unlock(&g->lock);
	return n;
}

unsigned
fakegw_welcomed(struct fakegw *g)
{
	unsigned n;

	pthread_mutex_lock(&g->lock);
	n = g->welcomed;
	pthread_mutex_unlock(&g->lock);
	return n;
}

unsigned
fakegw_requests(struct fakegw *g)
{
	unsigned n;

	pthread_mutex_lock(&g->lock);
	n = g->requests;
	pthread_mutex_unlock(&g->lock);
	return n;
}

int
fakegw_write_conf(const struct fakegw *g, const char *path, const char *extra)
{
	FILE *f;
	int r;

	if ((f = fopen(path, "w")) == NULL) {
		return -1;
	}
	fprintf(f, "gateway: 127.0.0.1:%u\nca: %s\napi_key: %s\n%s", (unsigned)g->port, g->ca,
	        FAKEGW_API_KEY, extra != NULL ? extra : "");
	r = ferror(f) ? -1 : 0;
	if (fclose(f) != 0) {
		r = -1;
	}
	return r;
}

/* ---- helpers -------------------------------------------------------------------------- */

static int stderr_saved = -1;
static char stderr_path[1024];

void
stderr_capture_begin(const char *path)
{
	int fd;

	fflush(stderr);
	snprintf(stderr_path, sizeof(stderr_path), "%s", path);
	stderr_saved = dup(STDERR_FILENO);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) >= 0) {
		dup2(fd, STDERR_FILENO);
		close(fd);
	}
}

const char *
stderr_capture_end(void)
{
	static char text[8192];
	ssize_t n = 0;
	int fd;

	fflush(stderr);
	if (stderr_saved >= 0) {
		dup2(stderr_saved, STDERR_FILENO);
		close(stderr_saved);
		stderr_saved = -1;
	}
	text[0] = '\0';
	if ((fd = open(stderr_path, O_RDONLY | O_CLOEXEC)) >= 0) {
		n = read(fd, text, sizeof(text) - 1);
		close(fd);
	}
	text[n > 0 ? n : 0] = '\0';
	/* Keep it visible in the test log too. */
	fputs(text, stderr);
	return text;
}
