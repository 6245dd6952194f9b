/*
 * tests/client/fakegw.h — a tiny in-process TLS 1.3 gateway for the client module's unit
 * tests: a throw-away self-signed certificate (EVP, written to <dir>/ca.pem), one thread per
 * connection, HELLO/WELCOME with an API key, and canned answers to a few calls.
 *
 * C_GetSlotInfo's slot id picks a behaviour, so that tests can script the gateway:
 *   1..99  answer at once ("slot N" in slotDescription)
 *   100    hold the reply until a request for slot 101 arrives; then answer 101, then 100
 *          (out-of-order replies)
 *   200    close the TCP connection abruptly (no close_notify)
 *   201    never answer
 *   202    an ERROR frame for the request id (PROTO_GWERR_UNAVAILABLE)
 *   203    an ERROR frame with request id 0, then close (the connection is refused)
 *   204    a reply with a trailing byte
 * Other calls: C_GetSlotList (one slot, 1), C_GetTokenInfo (label "fake"), C_OpenSession,
 * C_CloseSession, C_CloseAllSessions, C_GetSessionInfo, C_Login (PIN "1234"),
 * C_GenerateRandom (bytes i & 0xff), C_DigestInit/C_Digest (SHA-256 only; a second init
 * while one is active is CKR_OPERATION_ACTIVE; C_Digest of "hang" is never answered),
 * C_WaitForSlotEvent (CKR_NO_EVENT / CKR_FUNCTION_NOT_SUPPORTED), PING; anything else
 * CKR_FUNCTION_NOT_SUPPORTED.
 *
 * Test-only code; it is compiled into each test that uses it (#include "fakegw.c").
 */
#ifndef HSMGATE_TESTS_CLIENT_FAKEGW_H
#define HSMGATE_TESTS_CLIENT_FAKEGW_H

#include <limits.h>
#include <stdint.h>

#include <p11-kit/pkcs11.h>

#define FAKEGW_API_KEY "hsk_fakegw-test-key"

struct fakegw;

/* Starts a gateway on 127.0.0.1 (an ephemeral port) with its certificate in dir/ca.pem.
 * NULL on failure (a message on stderr). */
struct fakegw *fakegw_start(const char *dir);
/* Closes every connection, joins every thread, frees. */
void fakegw_stop(struct fakegw *g);

uint16_t fakegw_port(const struct fakegw *g);
const char *fakegw_ca(const struct fakegw *g);

/* Refuse every HELLO with PROTO_GWERR_AUTH. */
void fakegw_set_auth_fail(struct fakegw *g, int on);
/* C_DigestInit answers CKR_MECHANISM_INVALID whatever the mechanism (a policy that changed,
 * seen from the client). */
void fakegw_set_refuse_digest(struct fakegw *g, int on);
/* The limits the WELCOME announces to the next connections. */
void fakegw_set_limits(struct fakegw *g, uint32_t max_frame, uint32_t max_inflight);
/* Closes every open connection abruptly (a gateway restart, seen from the client). */
void fakegw_drop_all(struct fakegw *g);
/*
 * Holding the handshake, to keep a client inside C_Initialize for as long as a test needs:
 * after fakegw_hold, every connection that has sent its HELLO waits before the answer
 * (WELCOME, or the ERROR of fakegw_set_auth_fail) until fakegw_release. fakegw_drop_all
 * and fakegw_stop release too.
 */
void fakegw_hold(struct fakegw *g);
void fakegw_release(struct fakegw *g);
/* Waits until at least n connections are held: 0, or -1 after a minute (a hang guard). */
int fakegw_wait_held(struct fakegw *g, unsigned n);
/* Connections held now. */
unsigned fakegw_held(struct fakegw *g);
/* HELLOs received so far (each a connection attempt that reached the protocol). */
unsigned fakegw_hellos(struct fakegw *g);
/* Connections that got a WELCOME so far. */
unsigned fakegw_welcomed(struct fakegw *g);
/* REQUEST frames received so far, over all connections. */
unsigned fakegw_requests(struct fakegw *g);

/* Writes a client configuration for this gateway to `path`: gateway, ca, api_key, then the
 * lines in `extra` (may be NULL). 0 or -1. */
int fakegw_write_conf(const struct fakegw *g, const char *path, const char *extra);

/* ---- helpers for the client tests -------------------------------------------------- */

/* What every client test suite sets up: SIGPIPE ignored (a call on a connection the
 * gateway dropped must fail, not kill the test), a temporary directory, a fake gateway
 * serving from it, and the paths of a client configuration and a stderr capture there. */
struct fakegw_suite {
	char *tmp;
	struct fakegw *gw;
	char conf[PATH_MAX];    /* <tmp>/client.yaml */
	char errfile[PATH_MAX]; /* <tmp>/stderr.txt */
};

/* 0, or -1 (a message on stderr); `name` names the temporary directory. */
int fakegw_suite_init(struct fakegw_suite *fs, const char *name);
/* C_Finalize, then stops the gateway and removes the directory. Returns 0. */
int fakegw_suite_fini(struct fakegw_suite *fs);

/* Sends stderr to a file until stderr_capture_end(), which returns what was written
 * (static buffer, NUL-terminated). */
void stderr_capture_begin(const char *path);
const char *stderr_capture_end(void);

#endif
