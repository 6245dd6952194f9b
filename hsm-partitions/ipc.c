/*
 * hsm-partitions/ipc.c — the worker's loop on the gateway's socketpair.
 *
 * Blocking and single-threaded on purpose: requests of one partition are served in order,
 * so the token model needs no locks. Only the gateway writes to this descriptor, and it
 * checks every frame before forwarding it, so broken IPC framing is an internal bug: the
 * loop returns PART_ERR_IPC and the worker exits to be restarted (STYLE.md rule 7). Bad
 * *client* input inside a well-framed request is answered (CKR_ARGUMENTS_BAD) instead.
 */
#include "hsm-partitions/part_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

/* Reads exactly `len` bytes. 0, or 1 on EOF before the first byte, or a PART_ERR_*. */
static int
read_full(int fd, uint8_t *p, size_t len)
{
	size_t got = 0;
	ssize_t n;

	while (got < len) {
		n = read(fd, p + got, len - got);
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n < 0) {
			return PART_ERR_IO;
		}
		if (n == 0) {
			return got == 0 ? 1 : PART_ERR_IPC;
		}
		got += (size_t)n;
	}
	return 0;
}

static int
write_full(int fd, const uint8_t *p, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = write(fd, p, len);
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n <= 0) {
			return PART_ERR_IO;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* One PROTO_IPC_REQUEST body: the caller context, then the client frame. */
static int
serve_request(const struct part_ipc_handler *h, int fd, uint64_t conn, const uint8_t *body,
              size_t len, struct proto_buf *frame, struct proto_buf *msg)
{
	struct proto_ctx ctx;
	struct proto_cur c;
	int r;

	proto_cur_init(&c, body, len);
	if (proto_ctx_get(&c, &ctx) != 0) {
		return PART_ERR_IPC;
	}
	proto_buf_reset(frame);
	proto_buf_reset(msg);
	if ((r = h->handle(h->arg, conn, &ctx, c.p, c.len, frame)) != 0) {
		return r;
	}
	if (h->decision != NULL) {
		/* The key-level policy decision travels just ahead of its reply, so the gateway
		 * can put it into that request's audit event before completing it. */
		if (proto_ipc_begin(msg, PROTO_IPC_AUDIT, conn) != 0 ||
		    (r = h->decision(h->arg, msg)) < 0 || proto_ipc_finish(msg) != 0) {
			return PART_ERR_NOMEM;
		}
		if (r == 1 && (r = write_full(fd, msg->data, msg->len)) != 0) {
			return r;
		}
		proto_buf_reset(msg);
	}
	if (proto_ipc_begin(msg, PROTO_IPC_REPLY, conn) != 0 ||
	    proto_put_raw(msg, frame->data, frame->len) != 0 || proto_ipc_finish(msg) != 0) {
		return PART_ERR_NOMEM;
	}
	return write_full(fd, msg->data, msg->len);
}

int
part_ipc_serve(const struct part_ipc_handler *h, int fd)
{
	struct proto_buf frame, msg;
	uint8_t hdr[PROTO_IPC_HDR_BYTES];
	uint8_t *body = NULL;
	size_t max_body;
	uint32_t body_len;
	uint64_t conn;
	uint8_t kind;
	int policy_noted = 0, r;

	proto_buf_init(&frame);
	proto_buf_init(&msg);
	max_body = (size_t)h->max_frame + PART_IPC_SLACK;
	/* One buffer for the largest body, allocated once: no size ever comes from the wire. */
	if ((body = malloc(max_body)) == NULL) {
		r = PART_ERR_NOMEM;
		goto out;
	}
	for (;;) {
		if ((r = read_full(fd, hdr, sizeof(hdr))) == 1) {
			r = 0; /* the gateway went away */
			break;
		}
		if (r != 0) {
			goto out;
		}
		if (proto_ipc_hdr_decode(hdr, sizeof(hdr), PROTO_IPC_HDR_BYTES + max_body, &kind,
		                         &conn, &body_len) != 0 ||
		    body_len > max_body) {
			r = PART_ERR_IPC;
			goto out;
		}
		if (body_len != 0 && (r = read_full(fd, body, body_len)) != 0) {
			r = r == 1 ? PART_ERR_IPC : r;
			goto out;
		}
		switch (kind) {
		case PROTO_IPC_REQUEST:
			r = serve_request(h, fd, conn, body, body_len, &frame, &msg);
			break;
		case PROTO_IPC_CONN_CLOSED:
			r = body_len == 0 ? 0 : PART_ERR_IPC;
			if (r == 0) {
				h->conn_closed(h->arg, conn);
			}
			break;
		case PROTO_IPC_POLICY:
			/* The policy text for key-level decisions (authz.c). A backend without
			 * them says so once, and keeps serving: the gateway's partition-level
			 * decisions still apply to every call. */
			if (h->policy != NULL) {
				r = h->policy(h->arg, body, body_len);
			} else if (!policy_noted) {
				fprintf(stderr,
				        "hsmgate-worker: key-level policy is not enforced by "
				        "this backend yet (partition-level policy is)\n");
				policy_noted = 1;
			}
			break;
		default:
			r = PART_ERR_IPC;
			break;
		}
		/* The request may have carried a PIN, the reply attribute values. */
		OPENSSL_cleanse(body, body_len);
		proto_buf_reset(&frame);
		proto_buf_reset(&msg);
		if (r != 0) {
			goto out;
		}
	}
out:
	if (body != NULL) {
		OPENSSL_clear_free(body, max_body);
	}
	proto_buf_free(&frame);
	proto_buf_free(&msg);
	return r;
}

/* ---- the soft worker on the shared loop (issue 3: the passthrough backend uses it too) -- */

static int
worker_handle(void *arg, uint64_t conn, const struct proto_ctx *ctx, const uint8_t *frame,
              size_t len, struct proto_buf *reply)
{
	return part_worker_handle(arg, conn, ctx, frame, len, reply);
}

static void
worker_conn_closed(void *arg, uint64_t conn)
{
	part_worker_conn_closed(arg, conn);
}

/* A policy that does not load was logged by part_worker_set_policy and leaves the old one in
 * force: the loop goes on (the gateway validated the text, so this is rare). */
static int
worker_policy(void *arg, const uint8_t *text, size_t len)
{
	(void)part_worker_set_policy(arg, text, len);
	return 0;
}

static int
worker_decision(void *arg, struct proto_buf *body)
{
	return part_worker_decision(arg, body);
}

int
part_worker_serve(struct part_worker *w, int fd)
{
	struct part_ipc_handler h = {w,          part_worker_max_frame(w), worker_handle,
	                             worker_conn_closed, worker_policy, worker_decision};

	return part_ipc_serve(&h, fd);
}
