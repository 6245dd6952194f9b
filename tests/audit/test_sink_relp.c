/*
 * tests/audit/test_sink_relp.c — audit/sink_relp.c: the RELP frame parser (valid frames,
 * truncation at every byte, each refusal, a deterministic bit-flip loop), the "rsp" data
 * and the server's "open" offers; then the driver through the runner against a RELP server
 * on loopback (a thread speaking TLS with a certificate made here with EVP): delivery of
 * every record with the syslog sink's message, a message refused with 500, a server that
 * sends "serverclose", a wrong txnr, a refused session, a server that never answers, the
 * closing handshake, garbage, and answers that arrive in pieces.
 */
#include "tests/audit/test_sink_fixture.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/socket.h>

#define NEVENTS  60
#define NSENT    (NEVENTS + 1) /* what the sink sends: the writer's start record and them */
#define HOSTNAME "gw1.example"
#define OFFERS_OK                                                                                  \
	"relp_version=0\nrelp_software=librelp,1.10.0,http://librelp.adiscon.com\n"                \
	"commands=syslog"

static char *tmp;
static char keyprefix[600], certp[700], keyp[700], logd[700];

/* ---- the frame parser ----------------------------------------------------------------- */

static char pdata[1024]; /* the data of the last frame parse_n() accepted */

/* Parses the n bytes of s from an exact-size copy (ASan sees any read past the end).
 * On success f->data is redirected to a copy in pdata, NUL-terminated. */
static int
parse_n(const char *s, size_t n, size_t max, struct aud_relp_frame *f, size_t *used)
{
	char *b = malloc(n > 0 ? n : 1);
	int r;

	CU_ASSERT_FATAL(b != NULL);
	memcpy(b, s, n);
	r = aud_sink_relp_parse(b, n, max, f, used);
	pdata[0] = '\0';
	if (r == 0) {
		CU_ASSERT(*used > 0 && *used <= n);
		CU_ASSERT(f->command[0] != '\0' && strlen(f->command) < sizeof(f->command));
		if (f->data != NULL) {
			CU_ASSERT(f->data >= b && f->data + f->data_len <= b + n);
			CU_ASSERT_FATAL(f->data_len < sizeof(pdata));
			memcpy(pdata, f->data, f->data_len);
			pdata[f->data_len] = '\0';
			f->data = pdata;
		} else {
			CU_ASSERT(f->data_len == 0);
		}
	} else {
		CU_ASSERT(*used == 0);
	}
	free(b);
	return r;
}

static int
parse(const char *s, size_t max, struct aud_relp_frame *f, size_t *used)
{
	return parse_n(s, strlen(s), max, f, used);
}

/* Valid frames; each is also truncated at every byte and bit-flipped below. */
static const char *const valid_frames[] = {
        "2 rsp 6 200 OK\n",
        "0 serverclose 0\n",
        "999999999 close 0\n",
        "1 rsp 53 200 OK\nrelp_version=0\nrelp_software=x\ncommands=syslog\n",
        "17 syslog 5 a\nb c\n",
        "1 abcdefghijklmnopqrstuvwxyzABCDEF 0\n",
};

static void
test_parse_valid(void)
{
	struct aud_relp_frame f;
	size_t used;

	CU_ASSERT(parse("2 rsp 6 200 OK\n", 8192, &f, &used) == 0);
	CU_ASSERT(f.txnr == 2 && strcmp(f.command, "rsp") == 0);
	CU_ASSERT(f.data_len == 6 && strcmp(pdata, "200 OK") == 0);
	CU_ASSERT(used == 15);
	/* DATALEN 0: no data, no SP (relp.html: "if DATALEN is 0, no data is present"). */
	CU_ASSERT(parse("9 rsp 0\n", 8192, &f, &used) == 0);
	CU_ASSERT(f.txnr == 9 && strcmp(f.command, "rsp") == 0);
	CU_ASSERT(f.data == NULL && f.data_len == 0 && used == 8);
	/* TXNR 0: a hint. */
	CU_ASSERT(parse("0 serverclose 0\n", 8192, &f, &used) == 0);
	CU_ASSERT(f.txnr == 0 && strcmp(f.command, "serverclose") == 0 && used == 16);
	/* TXNR = 1*9DIGIT: the largest. */
	CU_ASSERT(parse("999999999 rsp 3 200\n", 8192, &f, &used) == 0);
	CU_ASSERT(f.txnr == 999999999u && f.data_len == 3 && strcmp(pdata, "200") == 0);
	/* Data may hold LF: only DATALEN says where it ends. */
	CU_ASSERT(parse(valid_frames[3], 8192, &f, &used) == 0);
	CU_ASSERT(f.txnr == 1 && f.data_len == 53 && used == strlen(valid_frames[3]));
	CU_ASSERT(strcmp(pdata, "200 OK\nrelp_version=0\nrelp_software=x\ncommands=syslog") == 0);
	/* COMMAND = 1*32ALPHA, either case. */
	CU_ASSERT(parse(valid_frames[5], 8192, &f, &used) == 0);
	CU_ASSERT(strcmp(f.command, "abcdefghijklmnopqrstuvwxyzABCDEF") == 0);
	/* Only the first frame is taken: the next one stays for the next call. */
	CU_ASSERT(parse("2 rsp 6 200 OK\n3 rsp 6 200 OK\n", 8192, &f, &used) == 0);
	CU_ASSERT(f.txnr == 2 && used == 15);
	/* DATALEN exactly the cap is fine. */
	CU_ASSERT(parse("2 rsp 6 200 OK\n", 6, &f, &used) == 0);
	/* The largest answer the sink accepts. */
	{
		char big[AUD_RELP_RSP_MAX + 64];
		int n = snprintf(big, sizeof(big), "123456789 rsp %u ", AUD_RELP_RSP_MAX);

		memset(big + n, 'x', AUD_RELP_RSP_MAX);
		big[(size_t)n + AUD_RELP_RSP_MAX] = '\n';
		CU_ASSERT(aud_sink_relp_parse(big, (size_t)n + AUD_RELP_RSP_MAX + 1,
		                              AUD_RELP_RSP_MAX, &f, &used) == 0);
		CU_ASSERT(used == (size_t)n + AUD_RELP_RSP_MAX + 1 &&
		          f.data_len == AUD_RELP_RSP_MAX);
		CU_ASSERT(aud_sink_relp_parse(big, (size_t)n + AUD_RELP_RSP_MAX, AUD_RELP_RSP_MAX,
		                              &f, &used) == AUD_ERR_EOF);
	}
}

/* Every proper prefix of a valid frame is the beginning of one: read more. */
static void
test_parse_truncated(void)
{
	struct aud_relp_frame f;
	size_t i, k, used;

	for (i = 0; i < sizeof(valid_frames) / sizeof(valid_frames[0]); i++) {
		size_t n = strlen(valid_frames[i]);

		for (k = 0; k < n; k++) {
			CU_ASSERT(parse_n(valid_frames[i], k, 8192, &f, &used) == AUD_ERR_EOF);
		}
		CU_ASSERT(parse_n(valid_frames[i], n, 8192, &f, &used) == 0 && used == n);
	}
}

static void
test_parse_txnr(void)
{
	struct aud_relp_frame f;
	size_t used;

	/* 10 digits: refused as soon as the tenth is seen, even without the rest. */
	CU_ASSERT(parse("1234567890 rsp 0\n", 8192, &f, &used) == AUD_ERR_MALFORMED);
	CU_ASSERT(parse("1234567890", 8192, &f, &used) == AUD_ERR_MALFORMED);
	CU_ASSERT(parse("0000000001 rsp 0\n", 8192, &f, &used) == AUD_ERR_MALFORMED);
	CU_ASSERT(parse("x rsp 0\n", 8192, &f, &used) == AUD_ERR_MALFORMED);
	CU_ASSERT(parse("-1 rsp 0\n", 8192, &f, &used) == AUD_ERR_MALFORMED);
	CU_ASSERT(parse(" 1 rsp 0\n", 8192, &f, &used) == AUD_ERR_MALFORMED);
	CU_ASSERT(parse("1x rsp 0\n", 8192, &f, &used) == AUD_ERR_MALFORMED);
	CU_ASSERT(parse("hello\n", 8192, &f, &used) == AUD_ERR_MALFORMED);
	CU_ASSERT(parse("\n", 8192, &f, &used) == AUD_ERR_MALFORMED);
}

static void
test_parse_command(void)
{
	struct aud_relp_frame f;
	size_t used;

	CU_ASSERT(parse("1  0\n", 8192, &f, &used) == AUD_ERR_MALFORMED);
	/* 33 letters. */
	CU_ASSERT(parse("1 abcdefghijklmnopqrstuvwxyzABCDEFG 0\n", 8192, &f, &used) ==
	          AUD_ERR_MALFORMED);
	CU_ASSERT(parse("1 abcdefghijklmnopqrstuvwxyzABCDEFG", 8192, &f, &used) ==
	          AUD_ERR_MALFORMED);
	CU_ASSERT(parse("1 rs1 0\n", 8192, &f, &used) == AUD_ERR_MALFORMED);
	CU_ASSERT(parse("1 rsp_x 0\n", 8192, &f, &used) == AUD_ERR_MALFORMED);
	CU_ASSERT(parse("1 1rsp 0\n", 8192, &f, &used) == AUD_ERR_MALFORMED);
	CU_ASSERT(parse("1 r\xc3\xa9sp 0\n", 8192, &f, &used) == AUD_ERR_MALFORMED);
}

static void
test_parse_separators(void)
{
	struct aud_relp_frame f;
	size_t used;

	CU_ASSERT(parse("1rsp 0\n", 8192, &f, &used) == AUD_ERR_MALFORMED);
	CU_ASSERT(parse("1 rsp0\n", 8192, &f, &used) == AUD_ERR_MALFORMED);
	CU_ASSERT(parse("1  rsp 0\n", 8192, &f, &used) == AUD_ERR_MALFORMED);
	CU_ASSERT(parse("1\trsp 0\n", 8192, &f, &used) == AUD_ERR_MALFORMED);
	CU_ASSERT(parse("1 rsp \n", 8192, &f, &used) == AUD_ERR_MALFORMED);
	CU_ASSERT(parse("1 rsp x\n", 8192, &f, &used) == AUD_ERR_MALFORMED);
	/* DATALEN > 0 must be followed by SP. */
	CU_ASSERT(parse("1 rsp 6\n200 OK\n", 8192, &f, &used) == AUD_ERR_MALFORMED);
	/* DATALEN 0 takes no SP: "0 SP LF" is not a frame. */
	CU_ASSERT(parse("1 rsp 0 \n", 8192, &f, &used) == AUD_ERR_MALFORMED);
	CU_ASSERT(parse("1 rsp 0 x\n", 8192, &f, &used) == AUD_ERR_MALFORMED);
	/* TRAILER = LF, not CR LF. */
	CU_ASSERT(parse("1 rsp 0\r\n", 8192, &f, &used) == AUD_ERR_MALFORMED);
	CU_ASSERT(parse_n("1 rsp 0\0", 8, 8192, &f, &used) == AUD_ERR_MALFORMED);
}

static void
test_parse_datalen(void)
{
	struct aud_relp_frame f;
	size_t used;

	/* Over the cap: refused from the header alone, before any data is there. */
	CU_ASSERT(parse("1 rsp 8193 ", 8192, &f, &used) == AUD_ERR_TOO_LARGE);
	CU_ASSERT(parse("1 rsp 999999999 ", 8192, &f, &used) == AUD_ERR_TOO_LARGE);
	CU_ASSERT(parse("2 rsp 6 200 OK\n", 5, &f, &used) == AUD_ERR_TOO_LARGE);
	CU_ASSERT(parse("2 rsp 1 x\n", 0, &f, &used) == AUD_ERR_TOO_LARGE);
	/* 10 digits of DATALEN. */
	CU_ASSERT(parse("1 rsp 0000000006 200 OK\n", 8192, &f, &used) == AUD_ERR_MALFORMED);
	/* Data not followed by LF: DATALEN too small, or too large by the trailer. */
	CU_ASSERT(parse("2 rsp 6 200 OKX", 8192, &f, &used) == AUD_ERR_MALFORMED);
	CU_ASSERT(parse("2 rsp 2 200 OK\n", 8192, &f, &used) == AUD_ERR_MALFORMED);
	CU_ASSERT(parse("2 rsp 5 200 OK\n", 8192, &f, &used) == AUD_ERR_MALFORMED);
	CU_ASSERT(parse("2 rsp 7 200 OK\nX", 8192, &f, &used) == AUD_ERR_MALFORMED);
	/* Too large by more: it may yet come, read more. */
	CU_ASSERT(parse("2 rsp 8 200 OK\n", 8192, &f, &used) == AUD_ERR_EOF);
}

/* Every bit of every valid frame flipped: any result but a crash or an out-of-range view
 * (parse_n checks it), and a change that keeps a frame keeps its length. */
static void
test_parse_bitflip(void)
{
	struct aud_relp_frame f;
	size_t i, k, used;
	char buf[256];
	int bit, r;

	for (i = 0; i < sizeof(valid_frames) / sizeof(valid_frames[0]); i++) {
		size_t n = strlen(valid_frames[i]);

		for (k = 0; k < n; k++) {
			for (bit = 0; bit < 8; bit++) {
				memcpy(buf, valid_frames[i], n);
				buf[k] = (char)(buf[k] ^ (1 << bit));
				r = parse_n(buf, n, 8192, &f, &used);
				CU_ASSERT(r == 0 || r == AUD_ERR_EOF || r == AUD_ERR_MALFORMED ||
				          r == AUD_ERR_TOO_LARGE);
				CU_ASSERT(r != 0 || used <= n);
			}
		}
	}
}

/* ---- "rsp" data and offers ------------------------------------------------------------ */

static int
rsp(const char *s, int *status, char *text, char *rest, int *has_rest)
{
	size_t n = strlen(s), tlen, rlen;
	const char *t, *re;
	char *b = malloc(n > 0 ? n : 1);
	int r;

	CU_ASSERT_FATAL(b != NULL);
	memcpy(b, s, n);
	r = aud_sink_relp_rsp(b, n, status, &t, &tlen, &re, &rlen);
	text[0] = rest[0] = '\0';
	*has_rest = re != NULL;
	if (t != NULL) {
		CU_ASSERT(t >= b && t + tlen <= b + n);
		memcpy(text, t, tlen);
		text[tlen] = '\0';
	}
	if (re != NULL) {
		CU_ASSERT(re >= b && re + rlen <= b + n);
		memcpy(rest, re, rlen);
		rest[rlen] = '\0';
	}
	free(b);
	return r;
}

static void
test_rsp(void)
{
	char text[128], rest[128];
	int status, has_rest;

	CU_ASSERT(rsp("200 OK", &status, text, rest, &has_rest) == 0);
	CU_ASSERT(status == 200 && strcmp(text, "OK") == 0 && !has_rest);
	CU_ASSERT(rsp("200", &status, text, rest, &has_rest) == 0);
	CU_ASSERT(status == 200 && text[0] == '\0' && !has_rest);
	CU_ASSERT(rsp("500 error text", &status, text, rest, &has_rest) == 0);
	CU_ASSERT(status == 500 && strcmp(text, "error text") == 0 && !has_rest);
	CU_ASSERT(rsp("200 OK\nrelp_version=0\ncommands=syslog", &status, text, rest, &has_rest) ==
	          0);
	CU_ASSERT(status == 200 && strcmp(text, "OK") == 0 && has_rest);
	CU_ASSERT(strcmp(rest, "relp_version=0\ncommands=syslog") == 0);
	CU_ASSERT(rsp("200\nrelp_version=0", &status, text, rest, &has_rest) == 0);
	CU_ASSERT(status == 200 && text[0] == '\0' && strcmp(rest, "relp_version=0") == 0);
	CU_ASSERT(rsp("200 OK\n", &status, text, rest, &has_rest) == 0);
	CU_ASSERT(status == 200 && has_rest && rest[0] == '\0');
	CU_ASSERT(rsp("200 ", &status, text, rest, &has_rest) == 0);
	CU_ASSERT(status == 200 && text[0] == '\0' && !has_rest);
}

static void
test_rsp_refused(void)
{
	static const char *const bad[] = {"",       "2",       "20",    "2x0 OK", "200X",   "200OK",
	                                  "OK 200", " 200 OK", "20 OK", "-20 OK", "200\tOK"};
	char text[128], rest[128];
	size_t i, k;
	int status, has_rest;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CU_ASSERT(rsp(bad[i], &status, text, rest, &has_rest) == AUD_ERR_MALFORMED);
		CU_ASSERT(!has_rest && text[0] == '\0');
	}
	/* Truncated at every byte: three digits are the least. */
	for (k = 0; k <= 7; k++) {
		char s[8];

		memcpy(s, "500 bad", k);
		s[k] = '\0';
		CU_ASSERT(rsp(s, &status, text, rest, &has_rest) ==
		          (k < 3 ? AUD_ERR_MALFORMED : 0));
	}
}

static int
offers(const char *s, const char **why)
{
	size_t n = strlen(s);
	char *b = malloc(n > 0 ? n : 1);
	int r;

	CU_ASSERT_FATAL(b != NULL);
	memcpy(b, s, n);
	r = aud_sink_relp_offers(b, n, why);
	free(b);
	return r;
}

static void
test_offers(void)
{
	const char *why = "x";

	CU_ASSERT(offers(OFFERS_OK, &why) == 0 && why == NULL);
	CU_ASSERT(offers(OFFERS_OK "\n", &why) == 0);
	CU_ASSERT(offers("\n" OFFERS_OK, &why) == 0);
	CU_ASSERT(offers("commands=syslog\nrelp_version=0", &why) == 0);
	CU_ASSERT(offers("relp_version=1\ncommands=foo,syslog,bar", &why) == 0);
	CU_ASSERT(offers("relp_version=0\ncommands=syslog,bar", &why) == 0);
	CU_ASSERT(offers("relp_version=0\ncommands=foo,syslog", &why) == 0);
	CU_ASSERT(offers("relp_version=10\ncommands=syslog", &why) == 0);
}

static void
test_offers_refused(void)
{
	static const char *const noversion[] = {
	        "commands=syslog",
	        "",
	        "\n\n",
	        "relp_version=\ncommands=syslog",
	        "relp_version\ncommands=syslog",
	        "relp_version=x\ncommands=syslog",
	        "relp_version=0x\ncommands=syslog",
	        "relp_version= 0\ncommands=syslog",
	        "relp_versions=0\ncommands=syslog",
	        "xrelp_version=0\ncommands=syslog",
	        "relp_version=0 \ncommands=syslog",
	};
	static const char *const nosyslog[] = {
	        "relp_version=0\ncommands=eventlog",
	        "relp_version=0",
	        "relp_version=0\ncommands",
	        "relp_version=0\ncommands=",
	        "relp_version=0\ncommands=syslogx",
	        "relp_version=0\ncommands=xsyslog",
	        "relp_version=0\ncommands=sys,log",
	        "relp_version=0\ncommands=SYSLOG",
	        "relp_version=0\ncommands= syslog",
	        "relp_version=0\nxcommands=syslog",
	        "relp_version=0\nsyslog",
	        "relp_version=0\nrelp_software=syslog",
	};
	const char *why;
	size_t i;

	/* An answer without LF has no offers: aud_sink_relp_rsp gives NULL, 0. */
	why = NULL;
	CU_ASSERT(aud_sink_relp_offers(NULL, 0, &why) == AUD_ERR_INVALID);
	CU_ASSERT(why != NULL && strstr(why, "relp_version") != NULL);
	for (i = 0; i < sizeof(noversion) / sizeof(noversion[0]); i++) {
		why = NULL;
		CU_ASSERT(offers(noversion[i], &why) == AUD_ERR_INVALID);
		CU_ASSERT(why != NULL && strstr(why, "relp_version") != NULL);
	}
	for (i = 0; i < sizeof(nosyslog) / sizeof(nosyslog[0]); i++) {
		why = NULL;
		CU_ASSERT(offers(nosyslog[i], &why) == AUD_ERR_INVALID);
		CU_ASSERT(why != NULL && strstr(why, "syslog command") != NULL);
	}
}

/* ---- a RELP server on loopback -------------------------------------------------------- */

enum open_mode { OPEN_OK, OPEN_NO_SYSLOG, OPEN_NO_OFFERS, OPEN_REFUSE };

struct srv {
	struct fix_server srv;
	SSL_CTX *ctx;
	int handshakes; /* connections that got past TLS (the server thread's) */
	/* behaviour, set before the thread starts; "n-th" counts syslog commands from 1 over
	 * all connections, and each misbehaviour happens once */
	enum open_mode open_mode;
	unsigned garbage_open; /* answer "open" with "hello\n" on this many connections */
	unsigned busy_at;      /* answer the n-th with "500 busy" */
	unsigned wrong_at;     /* answer the n-th with the txnr after its own */
	unsigned garbage_at;   /* answer the n-th with "hello\n" */
	unsigned close_after;  /* first connection: "0 serverclose 0" after n answers, close */
	int silent;            /* never answer a syslog command */
	int split;             /* write the answers to "open", "close" and the first three
	                        * syslog commands in two parts, 150 ms apart */
	/* what happened, under mu */
	pthread_mutex_t mu;
	char **acc; /* data of the syslog commands answered 200, in order */
	size_t nacc, cap;
	unsigned nsyslog; /* syslog commands received */
	int connections, ended;
	int bad_txnr;  /* commands whose txnr was not the next of their connection */
	int bad_frame; /* malformed frames from the client */
	int bad_open;  /* an "open" without relp_version=0 and commands=syslog */
	long close_txnr, close_want;
	int close_waited;   /* the client was still there when the answer to close was due */
	int close_answered; /* and the answer was written */
};

/* A client frame at b[have]: 1 with its parts, 0 if incomplete, -1 if malformed. */
static int
srv_parse(const char *b, size_t have, unsigned long *txnr, char cmd[33], const char **data,
          size_t *dlen, size_t *used)
{
	unsigned long len = 0;
	size_t i = 0, c = 0, nd = 0;

	*txnr = 0;
	*data = NULL;
	*dlen = 0;
	for (; i < have && b[i] >= '0' && b[i] <= '9' && nd < 9; i++, nd++) {
		*txnr = *txnr * 10 + (unsigned long)(b[i] - '0');
	}
	if (i == have) {
		return 0;
	}
	if (nd == 0 || b[i++] != ' ') {
		return -1;
	}
	for (; i < have && c < 32 && ((b[i] >= 'a' && b[i] <= 'z') || (b[i] >= 'A' && b[i] <= 'Z'));
	     i++) {
		cmd[c++] = b[i];
	}
	cmd[c] = '\0';
	if (i == have) {
		return 0;
	}
	if (c == 0 || b[i++] != ' ') {
		return -1;
	}
	for (nd = 0; i < have && b[i] >= '0' && b[i] <= '9' && nd < 9; i++, nd++) {
		len = len * 10 + (unsigned long)(b[i] - '0');
	}
	if (i == have) {
		return 0;
	}
	if (nd == 0) {
		return -1;
	}
	if (len > 0) {
		if (b[i++] != ' ') {
			return -1;
		}
		if (have - i < len + 1) {
			return 0;
		}
		*data = b + i;
		*dlen = len;
		i += len;
	}
	if (b[i++] != '\n') {
		return -1;
	}
	*used = i;
	return 1;
}

static int
srv_write(SSL *ssl, const char *p, size_t n, int split)
{
	if (split && n > 1) {
		size_t h = n / 2;

		if (SSL_write(ssl, p, (int)h) != (int)h) {
			return -1;
		}
		usleep(150000);
		p += h;
		n -= h;
	}
	return SSL_write(ssl, p, (int)n) == (int)n ? 0 : -1;
}

static int
srv_rsp(SSL *ssl, unsigned long txnr, const char *data, int split)
{
	char buf[512];
	int n = snprintf(buf, sizeof(buf), "%lu rsp %zu%s%s\n", txnr, strlen(data),
	                 data[0] != '\0' ? " " : "", data);

	return srv_write(ssl, buf, (size_t)n, split);
}

/* Whether the client has closed (EOF or close_notify waiting), without blocking. */
static int
srv_peer_gone(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN | POLLRDHUP};

	return poll(&p, 1, 0) > 0;
}

/* After a "serverclose": close our side properly and read until the client goes, so that
 * no RST takes our last answers away from it. */
static void
srv_drain(struct srv *sv, SSL *ssl, int fd)
{
	char junk[4096];

	(void)SSL_shutdown(ssl);
	(void)shutdown(fd, SHUT_WR);
	while (!atomic_load(&sv->srv.stop)) {
		struct pollfd p = {.fd = fd, .events = POLLIN};

		if (poll(&p, 1, 50) > 0 && recv(fd, junk, sizeof(junk), 0) <= 0) {
			return;
		}
	}
}

/* One frame from the client. 0 to go on, 1 to end the connection. */
static int
srv_frame(struct srv *sv, SSL *ssl, int fd, unsigned long txnr, const char *cmd, const char *data,
          size_t dlen, unsigned long *want, unsigned *answered, int first)
{
	unsigned k;

	pthread_mutex_lock(&sv->mu);
	if (txnr != *want) {
		sv->bad_txnr++;
	}
	pthread_mutex_unlock(&sv->mu);
	if (strcmp(cmd, "open") == 0) {
		char *o = strndup(data != NULL ? data : "", dlen);
		int ok =
		        o != NULL && strstr(o, "relp_version=0") != NULL &&
		        (strstr(o, "\ncommands=syslog\n") != NULL ||
		         (strlen(o) >= 16 && strcmp(o + strlen(o) - 16, "\ncommands=syslog") == 0));

		free(o);
		pthread_mutex_lock(&sv->mu);
		sv->bad_open += !ok || txnr != 1;
		pthread_mutex_unlock(&sv->mu);
		*want = txnr + 1;
		if (sv->garbage_open > 0) {
			sv->garbage_open--;
			return srv_write(ssl, "hello\n", 6, 0) != 0;
		}
		switch (sv->open_mode) {
		case OPEN_NO_SYSLOG:
			return srv_rsp(ssl, txnr,
			               "200 "
			               "OK\nrelp_version=0\nrelp_software=test\ncommands=eventlog",
			               0) != 0;
		case OPEN_NO_OFFERS:
			return srv_rsp(ssl, txnr, "200 OK", 0) != 0;
		case OPEN_REFUSE:
			return srv_rsp(ssl, txnr, "500 go away", 0) != 0;
		case OPEN_OK:
		default:
			return srv_rsp(ssl, txnr, "200 OK\n" OFFERS_OK, sv->split) != 0;
		}
	}
	if (strcmp(cmd, "close") == 0) {
		int waited;

		/* Late on purpose: a client that does not wait for the answer is gone by now. */
		usleep(100000);
		waited = !srv_peer_gone(fd);
		pthread_mutex_lock(&sv->mu);
		sv->close_txnr = (long)txnr;
		sv->close_want = (long)*want;
		sv->close_waited = waited;
		pthread_mutex_unlock(&sv->mu);
		*want = txnr + 1;
		if (srv_rsp(ssl, txnr, "", sv->split) == 0) {
			pthread_mutex_lock(&sv->mu);
			sv->close_answered = 1;
			pthread_mutex_unlock(&sv->mu);
		}
		return 0;
	}
	*want = txnr + 1;
	if (strcmp(cmd, "syslog") != 0) {
		return srv_rsp(ssl, txnr, "500 unknown command", 0) != 0;
	}
	pthread_mutex_lock(&sv->mu);
	k = ++sv->nsyslog;
	pthread_mutex_unlock(&sv->mu);
	if (sv->silent) {
		return 0;
	}
	if (k == sv->busy_at) {
		return srv_rsp(ssl, txnr, "500 busy", 0) != 0;
	}
	if (k == sv->wrong_at) {
		return srv_rsp(ssl, txnr + 1, "200 OK", 0) != 0;
	}
	if (k == sv->garbage_at) {
		return srv_write(ssl, "hello\n", 6, 0) != 0;
	}
	/* Recorded before the answer: once the client has it, the test may look. */
	pthread_mutex_lock(&sv->mu);
	if (sv->nacc == sv->cap) {
		sv->cap = sv->cap ? 2 * sv->cap : 64;
		sv->acc = realloc(sv->acc, sv->cap * sizeof(*sv->acc));
	}
	sv->acc[sv->nacc++] = strndup(data != NULL ? data : "", dlen);
	pthread_mutex_unlock(&sv->mu);
	if (srv_rsp(ssl, txnr, "200 OK", sv->split && k <= 3) != 0) {
		return 1;
	}
	if (first && sv->close_after > 0 && ++*answered == sv->close_after) {
		(void)srv_write(ssl, "0 serverclose 0\n", 16, 0);
		srv_drain(sv, ssl, fd);
		return 1;
	}
	return 0;
}

/* Serves one connection until the client goes, a write fails or the test stops. */
static void
srv_conn(struct srv *sv, SSL *ssl, int fd, int first)
{
	static char buf[1 << 16]; /* one connection at a time */
	unsigned long want = 1;
	unsigned answered = 0;
	size_t have = 0;

	while (!atomic_load(&sv->srv.stop)) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int n;

		for (;;) {
			unsigned long txnr;
			char cmd[33];
			const char *data;
			size_t dlen, used = 0;
			int r = srv_parse(buf, have, &txnr, cmd, &data, &dlen, &used);

			if (r == 0) {
				break;
			}
			if (r < 0) {
				pthread_mutex_lock(&sv->mu);
				sv->bad_frame++;
				pthread_mutex_unlock(&sv->mu);
				return;
			}
			if (srv_frame(sv, ssl, fd, txnr, cmd, data, dlen, &want, &answered,
			              first) != 0) {
				return;
			}
			memmove(buf, buf + used, have - used);
			have -= used;
		}
		if (have == sizeof(buf)) {
			return;
		}
		if (SSL_pending(ssl) == 0 && poll(&p, 1, 50) <= 0) {
			continue;
		}
		if ((n = SSL_read(ssl, buf + have, (int)(sizeof(buf) - have))) <= 0) {
			if (SSL_get_error(ssl, n) == SSL_ERROR_WANT_READ) {
				continue; /* a record without application data */
			}
			return;
		}
		have += (size_t)n;
	}
}

static void
srv_tls(void *arg, SSL *ssl, int fd)
{
	struct srv *sv = arg;

	srv_conn(sv, ssl, fd, sv->handshakes++ == 0);
}

static void
srv_accepted(void *arg, int fd)
{
	struct srv *sv = arg;

	pthread_mutex_lock(&sv->mu);
	sv->connections++;
	pthread_mutex_unlock(&sv->mu);
	fix_tls_serve(sv->ctx, fd, srv_tls, sv);
	pthread_mutex_lock(&sv->mu);
	sv->ended++;
	pthread_mutex_unlock(&sv->mu);
}

static void
srv_init(struct srv *sv)
{
	memset(sv, 0, sizeof(*sv));
	pthread_mutex_init(&sv->mu, NULL);
	sv->close_txnr = -1;
	sv->close_want = -1;
}

/* Starts the server configured in *sv (after srv_init and the behaviour fields). */
static int
srv_start(struct srv *sv)
{
	if (fix_tls_ctx(certp, keyp, &sv->ctx) != 0) {
		return -1;
	}
	return fix_server_start(&sv->srv, srv_accepted, sv);
}

static void
srv_stop(struct srv *sv)
{
	fix_server_stop(&sv->srv);
	SSL_CTX_free(sv->ctx);
	fix_strv_free(sv->acc, sv->nacc);
	pthread_mutex_destroy(&sv->mu);
}

static int
srv_get(struct srv *sv, const int *field)
{
	int v;

	pthread_mutex_lock(&sv->mu);
	v = *field;
	pthread_mutex_unlock(&sv->mu);
	return v;
}

/* Waits (up to 10 s) until the server has ended every connection it accepted. */
static void
srv_wait_idle(struct srv *sv)
{
	int i;

	for (i = 0; i < 1000 && srv_get(sv, &sv->ended) < srv_get(sv, &sv->connections); i++) {
		usleep(10000);
	}
}

/* ---- the driver through the runner ---------------------------------------------------- */

static int
suite_init(void)
{
	/* The server writes to clients that may have gone. */
	signal(SIGPIPE, SIG_IGN);
	if ((tmp = test_tmpdir_new("audit-sink-relp")) == NULL) {
		return -1;
	}
	snprintf(keyprefix, sizeof(keyprefix), "%s/k", tmp);
	snprintf(certp, sizeof(certp), "%s/server.crt", tmp);
	snprintf(keyp, sizeof(keyp), "%s/server.key", tmp);
	snprintf(logd, sizeof(logd), "%s/log", tmp);
	if (fix_write_cert(certp, keyp, "localhost") != 0) {
		return -1;
	}
	return fix_log_append(logd, keyprefix, 0, NEVENTS, 0) == 0 ? 0 : -1;
}

static int
suite_cleanup(void)
{
	test_tmpdir_remove(tmp);
	return 0;
}

/* What the sink must send for each event of the log, in seq order: the data of a RELP
 * syslog command is exactly the syslog sink's RFC 5424 message. */
static void
expected_msgs(char ***msgs, uint64_t **seqs, size_t *n)
{
	struct aud_reader *rd = NULL;
	struct aud_buf b = {0};
	const char *line;
	char procid[24];
	size_t len, cap = 0;
	uint64_t seg, no;
	int r;

	*msgs = NULL;
	*seqs = NULL;
	*n = 0;
	snprintf(procid, sizeof(procid), "%ld", (long)getpid());
	CU_ASSERT_FATAL(aud_reader_open(&rd, logd) == 0);
	while ((r = aud_reader_next(rd, &line, &len, &seg, &no, NULL)) == 0) {
		struct aud_sink_msg m;

		memset(&m, 0, sizeof(m));
		CU_ASSERT_FATAL((m.line = strndup(line, len)) != NULL);
		m.line_len = len;
		CU_ASSERT_FATAL(aud_record_parse(m.line, len, &m.rec) == 0);
		if (aud_record_is_event(m.rec.type)) {
			b.len = 0;
			CU_ASSERT_FATAL(aud_sink_syslog_msg(&b, FIX_ORIGIN, HOSTNAME, procid, &m) ==
			                0);
			if (*n == cap) {
				cap = cap ? 2 * cap : 64;
				*msgs = realloc(*msgs, cap * sizeof(**msgs));
				*seqs = realloc(*seqs, cap * sizeof(**seqs));
			}
			(*seqs)[*n] = m.rec.seq;
			(*msgs)[(*n)++] = strndup(b.data, b.len);
		}
		free(m.line);
	}
	CU_ASSERT(r == AUD_ERR_EOF);
	CU_ASSERT(*n == NSENT);
	aud_reader_free(rd);
	aud_buf_free(&b);
}

/* How often the server accepted (answered 200) message i of the log. Also checks that it
 * accepted nothing that is not one of them. */
static void
count_accepted(struct srv *sv, char **msgs, size_t n, unsigned *count)
{
	size_t i, j;

	memset(count, 0, n * sizeof(*count));
	pthread_mutex_lock(&sv->mu);
	for (j = 0; j < sv->nacc; j++) {
		int known = 0;

		for (i = 0; i < n; i++) {
			if (strcmp(sv->acc[j], msgs[i]) == 0) {
				count[i]++;
				known = 1;
			}
		}
		CU_ASSERT(known);
	}
	pthread_mutex_unlock(&sv->mu);
}

/*
 * Checks what the server accepted: every event at least once; exactly once in log order
 * when `exact`; else at least the first `once` exactly once (answered before the fault).
 * With the MSG of each byte-identical to the stored event (it ends the message).
 */
static void
check_delivered(struct srv *sv, int exact, size_t once)
{
	char **msgs, **ev;
	uint64_t *seqs, *evseqs, head;
	unsigned count[NSENT];
	size_t n, nev, i;

	expected_msgs(&msgs, &seqs, &n);
	CU_ASSERT_FATAL(n == NSENT);
	CU_ASSERT_FATAL(fix_log_events(logd, &ev, &evseqs, &nev, &head) == 0 && nev == n);
	for (i = 0; i < n; i++) {
		size_t ml = strlen(msgs[i]), el = strlen(ev[i]);

		CU_ASSERT(seqs[i] == evseqs[i]);
		CU_ASSERT(ml > el + 2 && memcmp(msgs[i] + ml - el - 2, "] ", 2) == 0 &&
		          strcmp(msgs[i] + ml - el, ev[i]) == 0);
	}
	count_accepted(sv, msgs, n, count);
	for (i = 0; i < n; i++) {
		CU_ASSERT(count[i] >= 1);
		if (exact || i < once) {
			CU_ASSERT(count[i] == 1);
		}
	}
	if (exact) {
		pthread_mutex_lock(&sv->mu);
		CU_ASSERT(sv->nacc == n);
		for (i = 0; i < n && i < sv->nacc; i++) {
			CU_ASSERT(strcmp(sv->acc[i], msgs[i]) == 0);
		}
		pthread_mutex_unlock(&sv->mu);
	}
	fix_strv_free(msgs, n);
	fix_strv_free(ev, nev);
	free(seqs);
	free(evseqs);
}

static void
relp_opts(struct aud_sink_options *o, const char *url, const char *cursor)
{
	aud_sink_options_init(o);
	o->log_dir = logd;
	o->url = url;
	o->cursor_path = cursor;
	o->ca_file = certp;
	o->hostname = HOSTNAME;
	o->batch_max = 16;
	o->window_max = 256;
	o->settle_ms = 200;
	o->poll_ms = 20;
	o->backoff_min_ms = 20;
	o->backoff_max_ms = 100;
	o->timeout_ms = 2000;
	o->log = fix_log_cb;
}

/* Stops the sink once the server has seen min_conns connections, or after bound_ms, or
 * not at all once the test says done. */
struct stopper {
	struct aud_sink *s;
	struct srv *sv;
	int min_conns;
	unsigned bound_ms;
	atomic_int done;
	pthread_t th;
};

static void *
stopper_main(void *arg)
{
	struct stopper *st = arg;
	unsigned waited = 0;

	while (!atomic_load(&st->done) && waited < st->bound_ms &&
	       srv_get(st->sv, &st->sv->connections) < st->min_conns) {
		usleep(10000);
		waited += 10;
	}
	if (!atomic_load(&st->done)) {
		aud_sink_stop(st->s);
	}
	return NULL;
}

static void
stopper_start(struct stopper *st, struct aud_sink *s, struct srv *sv, int min_conns,
              unsigned bound_ms)
{
	st->s = s;
	st->sv = sv;
	st->min_conns = min_conns;
	st->bound_ms = bound_ms;
	atomic_store(&st->done, 0);
	CU_ASSERT_FATAL(pthread_create(&st->th, NULL, stopper_main, st) == 0);
}

static void
stopper_end(struct stopper *st)
{
	atomic_store(&st->done, 1);
	pthread_join(st->th, NULL);
}

/*
 * Runs the sink once against the server (a watchdog stops it after 20 s, so that a sink
 * that never catches up fails rather than hangs) and checks that it caught up: the cursor,
 * in memory and on disk, is at the head. Returns run_once's result.
 */
static int
run_to_head(struct srv *sv, const char *name)
{
	struct aud_sink_options o;
	struct aud_sink *s = NULL;
	struct stopper st;
	char url[64], cur[700];
	uint64_t next = 0, head;
	int r;

	snprintf(url, sizeof(url), "relp://127.0.0.1:%u", sv->srv.port);
	snprintf(cur, sizeof(cur), "%s/%s.cursor", tmp, name);
	relp_opts(&o, url, cur);
	fix_logbuf[0] = '\0';
	CU_ASSERT_FATAL(aud_sink_open(&s, &o) == 0);
	stopper_start(&st, s, sv, 1 << 30, 20000);
	r = aud_sink_run_once(s);
	stopper_end(&st);
	CU_ASSERT(r == 0);
	head = aud_sink_head(s);
	CU_ASSERT(head > NSENT);
	CU_ASSERT(aud_sink_cursor(s) == head);
	aud_sink_close(s);
	CU_ASSERT(aud_sink_cursor_read(cur, &next, NULL) == 0 && next == head);
	srv_wait_idle(sv);
	CU_ASSERT(srv_get(sv, &sv->bad_txnr) == 0);
	CU_ASSERT(srv_get(sv, &sv->bad_frame) == 0);
	CU_ASSERT(srv_get(sv, &sv->bad_open) == 0);
	return r;
}

/*
 * Runs the sink against a server that never acknowledges anything, stopping it (from
 * another thread) once the server has seen min_conns connections: it must have retried,
 * acknowledged nothing and left the cursor where it was.
 */
static void
run_until_stopped(struct srv *sv, const char *name, uint32_t timeout_ms, int min_conns)
{
	struct aud_sink_options o;
	struct aud_sink *s = NULL;
	struct stopper st;
	char url[64], cur[700];
	uint64_t next = 1;

	snprintf(url, sizeof(url), "relp://127.0.0.1:%u", sv->srv.port);
	snprintf(cur, sizeof(cur), "%s/%s.cursor", tmp, name);
	relp_opts(&o, url, cur);
	o.timeout_ms = timeout_ms;
	fix_logbuf[0] = '\0';
	CU_ASSERT_FATAL(aud_sink_open(&s, &o) == 0);
	stopper_start(&st, s, sv, min_conns, 20000);
	CU_ASSERT(aud_sink_run_once(s) == AUD_ERR_CLOSED);
	stopper_end(&st);
	CU_ASSERT(srv_get(sv, &sv->connections) >= min_conns);
	CU_ASSERT(aud_sink_cursor(s) == 0);
	aud_sink_close(s);
	CU_ASSERT(aud_sink_cursor_read(cur, &next, NULL) == 0 && next == 0);
	srv_wait_idle(sv);
	pthread_mutex_lock(&sv->mu);
	CU_ASSERT(sv->nacc == 0);
	CU_ASSERT(sv->bad_txnr == 0 && sv->bad_frame == 0 && sv->bad_open == 0);
	pthread_mutex_unlock(&sv->mu);
}

/* (a) Every event once, in order, as the syslog sink's message; open is txnr 1, the
 * syslog commands 2, 3, ... (the server counts any other txnr). */
static void
test_delivery(void)
{
	struct srv sv;

	srv_init(&sv);
	CU_ASSERT_FATAL(srv_start(&sv) == 0);
	run_to_head(&sv, "deliver");
	check_delivered(&sv, 1, 0);
	CU_ASSERT(sv.connections == 1);
	CU_ASSERT(sv.nsyslog == NSENT);
	srv_stop(&sv);
}

/* (b) "500 busy" for the 20th message: it and every later one go again on a new
 * connection; the 19 before it were answered 200 and are not sent again. */
static void
test_refused_message(void)
{
	char **msgs;
	uint64_t *seqs;
	char want[128];
	unsigned count[NSENT];
	struct srv sv;
	size_t n;

	srv_init(&sv);
	sv.busy_at = 20;
	CU_ASSERT_FATAL(srv_start(&sv) == 0);
	run_to_head(&sv, "busy");
	check_delivered(&sv, 0, 19);
	expected_msgs(&msgs, &seqs, &n);
	count_accepted(&sv, msgs, n, count);
	CU_ASSERT(count[19] == 1); /* refused once, accepted once */
	CU_ASSERT(sv.connections >= 2);
	snprintf(want, sizeof(want), "refused seq %llu: 500 busy", (unsigned long long)seqs[19]);
	CU_ASSERT(strstr(fix_logbuf, want) != NULL);
	fix_strv_free(msgs, n);
	free(seqs);
	srv_stop(&sv);
}

/* (c) "0 serverclose 0" after 10 answers, then the server closes: the 10 count, the rest
 * goes again on a new connection, each event exactly once. */
static void
test_serverclose(void)
{
	struct srv sv;

	srv_init(&sv);
	sv.close_after = 10;
	CU_ASSERT_FATAL(srv_start(&sv) == 0);
	run_to_head(&sv, "serverclose");
	check_delivered(&sv, 1, 0);
	CU_ASSERT(sv.connections == 2);
	CU_ASSERT(strstr(fix_logbuf, "closed the RELP session") != NULL);
	srv_stop(&sv);
}

/* (d) An answer with the wrong txnr: a server the sink cannot follow; it drops the
 * connection and sends everything unanswered again. */
static void
test_wrong_txnr(void)
{
	struct srv sv;

	srv_init(&sv);
	sv.wrong_at = 5;
	CU_ASSERT_FATAL(srv_start(&sv) == 0);
	run_to_head(&sv, "wrongtxnr");
	check_delivered(&sv, 0, 4);
	CU_ASSERT(sv.connections >= 2);
	CU_ASSERT(strstr(fix_logbuf, "sent \"rsp\" for txnr 7 where the answer to 6 was due") !=
	          NULL);
	srv_stop(&sv);
}

/* (e) The server's answer to "open" does not offer syslog: nothing is sent. */
static void
test_open_no_syslog(void)
{
	struct srv sv;

	srv_init(&sv);
	sv.open_mode = OPEN_NO_SYSLOG;
	CU_ASSERT_FATAL(srv_start(&sv) == 0);
	run_until_stopped(&sv, "nosyslog", 2000, 2);
	CU_ASSERT(sv.nsyslog == 0);
	CU_ASSERT(strstr(fix_logbuf, "does not offer the syslog command") != NULL);
	srv_stop(&sv);
}

/* (e) "200 OK" and no offers at all (no LF in the answer): no relp_version, nothing sent. */
static void
test_open_no_offers(void)
{
	struct srv sv;

	srv_init(&sv);
	sv.open_mode = OPEN_NO_OFFERS;
	CU_ASSERT_FATAL(srv_start(&sv) == 0);
	run_until_stopped(&sv, "nooffers", 2000, 2);
	CU_ASSERT(sv.nsyslog == 0);
	CU_ASSERT(strstr(fix_logbuf, "has no relp_version") != NULL);
	srv_stop(&sv);
}

/* (e) The server refuses the session: nothing is sent. */
static void
test_open_refused(void)
{
	struct srv sv;

	srv_init(&sv);
	sv.open_mode = OPEN_REFUSE;
	CU_ASSERT_FATAL(srv_start(&sv) == 0);
	run_until_stopped(&sv, "openrefused", 2000, 2);
	CU_ASSERT(sv.nsyslog == 0);
	CU_ASSERT(strstr(fix_logbuf, "refused the RELP session: 500 go away") != NULL);
	srv_stop(&sv);
}

/* (f) A server that takes the messages and never answers: after timeout_ms the sink gives
 * that connection up and starts again; nothing counts as delivered. */
static void
test_no_answer(void)
{
	struct srv sv;

	srv_init(&sv);
	sv.silent = 1;
	CU_ASSERT_FATAL(srv_start(&sv) == 0);
	run_until_stopped(&sv, "silent", 300, 2);
	CU_ASSERT(sv.nsyslog >= NSENT);
	CU_ASSERT(strstr(fix_logbuf, "answered nothing for 300 ms") != NULL);
	srv_stop(&sv);
}

/* (g) At close, with everything answered: "close" with the next txnr, and the sink waits
 * for its answer before it hangs up. */
static void
test_graceful_close(void)
{
	struct srv sv;

	srv_init(&sv);
	CU_ASSERT_FATAL(srv_start(&sv) == 0);
	run_to_head(&sv, "close");
	CU_ASSERT(sv.connections == 1);
	CU_ASSERT(sv.close_txnr == 2 + NSENT);
	CU_ASSERT(sv.close_want == sv.close_txnr);
	CU_ASSERT(sv.close_waited);
	CU_ASSERT(sv.close_answered);
	srv_stop(&sv);
}

/* (h) Garbage instead of a frame, first as the answer to "open", then as the answer to a
 * syslog command: each time the connection goes, the sink starts again, nothing is lost. */
static void
test_garbage(void)
{
	struct srv sv;

	srv_init(&sv);
	sv.garbage_open = 1;
	sv.garbage_at = 3;
	CU_ASSERT_FATAL(srv_start(&sv) == 0);
	run_to_head(&sv, "garbage");
	check_delivered(&sv, 0, 2);
	CU_ASSERT(sv.connections >= 3);
	CU_ASSERT(strstr(fix_logbuf, "sent a malformed RELP frame") != NULL);
	srv_stop(&sv);
}

/* TLS and TCP may cut a frame anywhere: the answers to "open", to the first syslog
 * commands and to "close" come in two writes 150 ms apart. One connection does it all. */
static void
test_split_answers(void)
{
	struct srv sv;

	srv_init(&sv);
	sv.split = 1;
	CU_ASSERT_FATAL(srv_start(&sv) == 0);
	run_to_head(&sv, "split");
	check_delivered(&sv, 1, 0);
	CU_ASSERT(sv.connections == 1);
	CU_ASSERT(sv.close_answered);
	srv_stop(&sv);
}

static void
test_needs_port(void)
{
	struct aud_sink_options o;
	struct aud_sink *s = NULL;
	char cur[700];

	snprintf(cur, sizeof(cur), "%s/noport.cursor", tmp);
	relp_opts(&o, "relp://127.0.0.1", cur);
	fix_logbuf[0] = '\0';
	CU_ASSERT(aud_sink_open(&s, &o) == AUD_ERR_INVALID);
	CU_ASSERT(s == NULL);
	CU_ASSERT(strstr(fix_logbuf, "needs a port") != NULL);
}

static const struct test_case cases[] = {
        {"parse: valid frames", test_parse_valid},
        {"parse: every truncation reads more", test_parse_truncated},
        {"parse: TXNR refusals", test_parse_txnr},
        {"parse: COMMAND refusals", test_parse_command},
        {"parse: separator refusals", test_parse_separators},
        {"parse: DATALEN and trailer refusals", test_parse_datalen},
        {"parse: bit flips", test_parse_bitflip},
        {"rsp: status, text, rest", test_rsp},
        {"rsp: refusals and truncations", test_rsp_refused},
        {"offers: accepted", test_offers},
        {"offers: refusals", test_offers_refused},
        {"url: a port is required", test_needs_port},
        {"driver: every record delivered once, txnrs in order", test_delivery},
        {"driver: 500 for one message, it and later ones resent", test_refused_message},
        {"driver: serverclose, the rest resent", test_serverclose},
        {"driver: wrong txnr, connection dropped and retried", test_wrong_txnr},
        {"driver: open without syslog, nothing sent", test_open_no_syslog},
        {"driver: open answered without offers, nothing sent", test_open_no_offers},
        {"driver: open refused, nothing sent", test_open_refused},
        {"driver: no answers, timeout and retry", test_no_answer},
        {"driver: close handshake", test_graceful_close},
        {"driver: garbage from the server", test_garbage},
        {"driver: answers in pieces", test_split_answers},
        {NULL, NULL},
};

void
test_register(void)
{
	test_suite_add("audit/sink_relp", suite_init, suite_cleanup, cases);
}
