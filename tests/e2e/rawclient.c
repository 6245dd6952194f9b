/*
 * tests/e2e/rawclient.c — a raw TLS client for end-to-end tests of hsmgated's refusals.
 *
 * It encodes frames by hand from docs/PROTOCOL.md rather than with proto/, so it is also a
 * second implementation of the wire format. It prints one line saying what the gateway did:
 *   WELCOME principal=<p>         ERROR code=<n> msg=<text>      CLOSED      REPLY rv=<hex>
 *
 * usage: rawclient --connect HOST:PORT --ca FILE [--cert FILE --key FILE] MODE [ARG]
 * modes:
 *   hello-cert             HELLO with the certificate credential
 *   hello-apikey KEY       HELLO with an API key
 *   garbage                256 random bytes instead of a frame
 *   bad-magic              a frame whose magic is wrong
 *   oversized              HELLO (cert), then a header announcing a 64 MiB frame
 *   truncated              HELLO (cert), then half a request frame and a TLS close
 *   request-before-hello   a C_GetSlotList request as the first frame
 *   slotlist               HELLO (cert), then C_GetSlotList(NULL): prints the count
 *   dup-reqid              HELLO (cert), then two C_GetSlotList(NULL) with request id 7 in
 *                          one write: the second arrives while the first is in flight
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MSG_HELLO        1
#define MSG_WELCOME      2
#define MSG_REQUEST      3
#define MSG_REPLY        4
#define MSG_ERROR        5
#define CALL_GETSLOTLIST 5

struct out {
	uint8_t b[1 << 16];
	size_t n;
};

static void
put8(struct out *o, uint8_t v)
{
	o->b[o->n++] = v;
}

static void
put16(struct out *o, uint16_t v)
{
	put8(o, v >> 8);
	put8(o, v & 0xff);
}

static void
put32(struct out *o, uint32_t v)
{
	put16(o, v >> 16);
	put16(o, v & 0xffff);
}

static void
put64(struct out *o, uint64_t v)
{
	put32(o, v >> 32);
	put32(o, v & 0xffffffffu);
}

static void
putstr(struct out *o, const char *s)
{
	size_t n = strlen(s);

	put32(o, (uint32_t)n);
	memcpy(o->b + o->n, s, n);
	o->n += n;
}

/* Starts a frame; finish() patches the length. */
static void
frame(struct out *o, uint8_t type, uint16_t call, uint32_t req)
{
	o->n = 0;
	put32(o, 0);
	put16(o, 0x4847);
	put8(o, 1);
	put8(o, type);
	put16(o, call);
	put16(o, 0);
	put32(o, req);
}

static void
finish(struct out *o)
{
	uint32_t len = (uint32_t)(o->n - 4);

	o->b[0] = len >> 24;
	o->b[1] = len >> 16;
	o->b[2] = len >> 8;
	o->b[3] = len;
}

static void
hello(struct out *o, int cred, const char *key)
{
	frame(o, MSG_HELLO, 0, 0);
	put8(o, 1);
	put8(o, 1);
	put8(o, (uint8_t)cred);
	putstr(o, "rawclient");
	putstr(o, "1");
	putstr(o, key != NULL ? key : "");
	finish(o);
}

static int
readn(SSL *ssl, uint8_t *p, size_t n)
{
	while (n > 0) {
		int r = SSL_read(ssl, p, n > 1 << 20 ? 1 << 20 : (int)n);

		if (r <= 0) {
			return -1;
		}
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

static uint32_t
get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Reads one frame and prints what it was; returns its type, or 0 when the connection closed. */
static int
show(SSL *ssl)
{
	uint8_t hdr[16], *body;
	uint32_t len, blen;
	int type;

	if (readn(ssl, hdr, sizeof(hdr)) != 0) {
		printf("CLOSED\n");
		return 0;
	}
	len = get32(hdr);
	if (len < 12 || len > (16u << 20)) {
		printf("BADFRAME len=%u\n", len);
		return -1;
	}
	blen = len - 12;
	body = calloc(1, blen + 1);
	if (body == NULL || readn(ssl, body, blen) != 0) {
		printf("CLOSED\n");
		free(body);
		return 0;
	}
	type = hdr[7];
	if (type == MSG_WELCOME && blen >= 5) {
		uint32_t n = get32(body + 1); /* gateway id */
		uint32_t m = 5 + n + 4 <= blen ? get32(body + 5 + n) : 0;

		printf("WELCOME principal=%.*s\n", (int)m, (char *)body + 5 + n + 4);
	} else if (type == MSG_ERROR && blen >= 8) {
		uint32_t n = get32(body + 4);

		printf("ERROR code=%u msg=%.*s\n", get32(body), (int)(n <= blen - 8 ? n : 0),
		       (char *)body + 8);
	} else if (type == MSG_REPLY && blen >= 8) {
		uint64_t rv = (uint64_t)get32(body) << 32 | get32(body + 4);

		if (rv == 0 && blen >= 17) {
			uint64_t count = (uint64_t)get32(body + 8) << 32 | get32(body + 12);

			printf("REPLY rv=0x%llx count=%llu\n", (unsigned long long)rv,
			       (unsigned long long)count);
		} else {
			printf("REPLY rv=0x%llx\n", (unsigned long long)rv);
		}
	} else {
		printf("FRAME type=%d len=%u\n", type, blen);
	}
	free(body);
	return type;
}

static void
drain(SSL *ssl)
{
	int t;

	/* Print every frame until the gateway closes the connection. */
	while ((t = show(ssl)) > 0) {
	}
}

int
main(int argc, char **argv)
{
	const char *connect_to = NULL, *ca = NULL, *cert = NULL, *key = NULL, *mode = NULL,
	           *arg = NULL;
	char host[256], *colon;
	struct addrinfo hints = {0}, *ai = NULL;
	SSL_CTX *ctx;
	SSL *ssl;
	struct out o;
	int fd, i;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--connect") == 0 && i + 1 < argc) {
			connect_to = argv[++i];
		} else if (strcmp(argv[i], "--ca") == 0 && i + 1 < argc) {
			ca = argv[++i];
		} else if (strcmp(argv[i], "--cert") == 0 && i + 1 < argc) {
			cert = argv[++i];
		} else if (strcmp(argv[i], "--key") == 0 && i + 1 < argc) {
			key = argv[++i];
		} else if (mode == NULL) {
			mode = argv[i];
		} else {
			arg = argv[i];
		}
	}
	if (connect_to == NULL || ca == NULL || mode == NULL) {
		fprintf(stderr, "usage: rawclient --connect HOST:PORT --ca FILE [--cert F --key F] "
		                "MODE [ARG]\n");
		return 2;
	}
	snprintf(host, sizeof(host), "%s", connect_to);
	colon = strrchr(host, ':');
	if (colon == NULL) {
		return 2;
	}
	*colon = '\0';
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(host, colon + 1, &hints, &ai) != 0) {
		fprintf(stderr, "rawclient: cannot resolve %s\n", connect_to);
		return 2;
	}
	fd = socket(ai->ai_family, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
		printf("CONNECT-FAILED\n");
		return 1;
	}
	freeaddrinfo(ai);
	ctx = SSL_CTX_new(TLS_client_method());
	SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
	SSL_CTX_load_verify_locations(ctx, ca, NULL);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if (cert != NULL && (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
	                     SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)) {
		fprintf(stderr, "rawclient: cannot load %s\n", cert);
		return 2;
	}
	ssl = SSL_new(ctx);
	SSL_set_fd(ssl, fd);
	if (SSL_connect(ssl) != 1) {
		printf("TLS-FAILED\n");
		return 1;
	}

	if (strcmp(mode, "hello-cert") == 0 || strcmp(mode, "hello-apikey") == 0) {
		hello(&o, mode[6] == 'c' ? 1 : 2, arg);
		SSL_write(ssl, o.b, (int)o.n);
		show(ssl);
	} else if (strcmp(mode, "garbage") == 0) {
		RAND_bytes(o.b, 256);
		SSL_write(ssl, o.b, 256);
		drain(ssl);
	} else if (strcmp(mode, "bad-magic") == 0) {
		hello(&o, 1, NULL);
		o.b[4] ^= 0xff;
		SSL_write(ssl, o.b, (int)o.n);
		drain(ssl);
	} else if (strcmp(mode, "oversized") == 0) {
		hello(&o, 1, NULL);
		SSL_write(ssl, o.b, (int)o.n);
		show(ssl);
		frame(&o, MSG_REQUEST, CALL_GETSLOTLIST, 7);
		o.b[0] = 0x04; /* 64 MiB */
		SSL_write(ssl, o.b, (int)o.n);
		drain(ssl);
	} else if (strcmp(mode, "truncated") == 0) {
		hello(&o, 1, NULL);
		SSL_write(ssl, o.b, (int)o.n);
		show(ssl);
		frame(&o, MSG_REQUEST, CALL_GETSLOTLIST, 7);
		put8(&o, 1);
		put8(&o, 0);
		finish(&o);
		SSL_write(ssl, o.b, (int)o.n - 1);
		SSL_shutdown(ssl);
		drain(ssl);
	} else if (strcmp(mode, "request-before-hello") == 0) {
		frame(&o, MSG_REQUEST, CALL_GETSLOTLIST, 7);
		put8(&o, 1);
		put8(&o, 0);
		finish(&o);
		SSL_write(ssl, o.b, (int)o.n);
		drain(ssl);
	} else if (strcmp(mode, "slotlist") == 0) {
		hello(&o, 1, NULL);
		SSL_write(ssl, o.b, (int)o.n);
		if (show(ssl) == MSG_WELCOME) {
			frame(&o, MSG_REQUEST, CALL_GETSLOTLIST, 7);
			put8(&o, 1); /* tokenPresent */
			put8(&o, 0); /* NULL list: size query */
			finish(&o);
			SSL_write(ssl, o.b, (int)o.n);
			show(ssl);
		}
	} else if (strcmp(mode, "dup-reqid") == 0) {
		hello(&o, 1, NULL);
		SSL_write(ssl, o.b, (int)o.n);
		if (show(ssl) == MSG_WELCOME) {
			struct out two;

			frame(&o, MSG_REQUEST, CALL_GETSLOTLIST, 7);
			put8(&o, 1);
			put8(&o, 0);
			finish(&o);
			memcpy(two.b, o.b, o.n);
			memcpy(two.b + o.n, o.b, o.n);
			two.n = 2 * o.n;
			SSL_write(ssl, two.b, (int)two.n);
			show(ssl);
			show(ssl);
		}
	} else {
		fprintf(stderr, "rawclient: unknown mode %s\n", mode);
		return 2;
	}
	(void)put64;
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	close(fd);
	return 0;
}
