/*
 * hsm-partitions/ipc.c — the worker's loop on the gateway's socketpair.
 *
 * Blocking, and one thread: requests of one partition are served in order, so the token
 * model needs no locks. (A worker may hand a one-shot call to its crypto threads; later.c
 * keeps the order a client can observe.) Only the gateway writes to this descriptor, and it
 * checks every frame before forwarding it, so broken IPC framing is an internal bug: the
 * loop returns PART_ERR_IPC and the worker exits to be restarted (STYLE.md rule 7). Bad
 * *client* input inside a well-framed request is answered (CKR_ARGUMENTS_BAD) instead.
 */
#include "hsm-partitions/part_int.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

/*
 * Input: one buffer, read as far as the socket holds (one read(2) takes every request the
 * gateway wrote in one go); messages are served in place. Output: the replies of the
 * requests taken from one read are collected and written with one write(2) just before the
 * loop would block again, so a batch costs two system calls, not two per request. A worker
 * with crypto threads (later.c) answers some requests of a batch later: their replies join
 * a write as those calls end.
 */
/* What the I/O helpers return when the gateway has gone away: EOF on a read, or EPIPE /
 * ECONNRESET on a write (replies of calls that ended after the gateway closed its end). Not
 * an error: the loop ends with 0. */
#define IPC_GONE 1

struct ipc_io {
	const struct part_ipc_handler *h;
	int fd;
	uint8_t *in;
	size_t cap, off, len; /* unserved bytes are in[off, len) */
	struct proto_buf out;
};

static int
write_full(int fd, const uint8_t *p, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = write(fd, p, len);
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n < 0 && (errno == EPIPE || errno == ECONNRESET)) {
			return IPC_GONE;
		}
		if (n <= 0) {
			return PART_ERR_IO;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Writes the collected replies, with those of the calls answered later that have ended
 * (all of them: after waiting for them); they may hold key material or plaintext: wiped
 * after. */
static int
io_flush(struct ipc_io *io, int all)
{
	int r;

	if (part_later_flush(io->h->later, io->h->arg, &io->out, all) != 0) {
		return PART_ERR_NOMEM;
	}
	if (io->out.len == 0) {
		return 0;
	}
	r = write_full(io->fd, io->out.data, io->out.len);
	proto_buf_reset(&io->out);
	return r;
}

/* Before a read that may block, with calls answered later still out: returns (0) once the
 * socket is readable, writing the replies of those calls as they end, and runs calls that
 * no helper has started while there is nothing to read. Without such calls: 0 at once. */
static int
io_idle(struct ipc_io *io)
{
	const struct part_ipc_handler *h = io->h;
	struct pollfd pf[2];
	int n, r;

	for (;;) {
		if ((r = io_flush(io, 0)) != 0) {
			return r;
		}
		if (part_later_pending(h->later) == 0) {
			return 0;
		}
		pf[0].fd = io->fd;
		pf[0].events = POLLIN;
		pf[1].fd = part_later_fd(h->later);
		pf[1].events = POLLIN;
		pf[0].revents = pf[1].revents = 0;
		if ((n = poll(pf, 2, 0)) == 0 && part_later_help(h->later)) {
			continue; /* ran one here: its reply goes out at the top */
		}
		if (n == 0) {
			n = poll(pf, 2, -1); /* the helpers have them all */
		}
		if (n < 0 && errno != EINTR) {
			return PART_ERR_IO;
		}
		if (n > 0 && pf[0].revents != 0) {
			return 0; /* a request, EOF or an error: the read says which */
		}
	}
}

/* Makes `need` bytes available at in[off]: flushes the replies first if the read may
 * block, moves the unserved bytes to the front, reads. 0, IPC_GONE on EOF at a message
 * boundary or when a reply could not be written to a closed socket, or a PART_ERR_*. */
static int
io_fill(struct ipc_io *io, size_t need)
{
	size_t left;
	ssize_t n;
	int r;

	while (io->len - io->off < need) {
		if ((r = io_idle(io)) != 0) {
			return r;
		}
		if (io->off > 0) {
			left = io->len - io->off;
			memmove(io->in, io->in + io->off, left);
			/* the tail still holds a copy of what moved (it may be a PIN) */
			OPENSSL_cleanse(io->in + left, io->len - left);
			io->off = 0;
			io->len = left;
		}
		n = read(io->fd, io->in + io->len, io->cap - io->len);
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n < 0) {
			return PART_ERR_IO;
		}
		if (n == 0) {
			return io->len == io->off ? IPC_GONE : PART_ERR_IPC;
		}
		io->len += (size_t)n;
	}
	return 0;
}

/* The key-level policy decision of the request just handled, if it made one, into io->out:
 * it travels ahead of its reply, so the gateway can put it into that request's audit event
 * before completing it. 0 or PART_ERR_NOMEM. */
static int
put_decision(const struct part_ipc_handler *h, struct ipc_io *io, uint64_t conn,
             struct proto_buf *msg)
{
	int r;

	if (h->decision == NULL) {
		return 0;
	}
	proto_buf_reset(msg);
	if (proto_ipc_begin(msg, PROTO_IPC_AUDIT, conn) != 0 ||
	    (r = h->decision(h->arg, msg)) < 0 || proto_ipc_finish(msg) != 0) {
		return PART_ERR_NOMEM;
	}
	if (r == 1 && proto_put_raw(&io->out, msg->data, msg->len) != 0) {
		return PART_ERR_NOMEM;
	}
	proto_buf_reset(msg);
	return 0;
}

/* One PROTO_IPC_REQUEST body: the caller context, then the client frame. The decision (if
 * any) and the reply are appended to io->out. */
static int
serve_request(const struct part_ipc_handler *h, struct ipc_io *io, uint64_t conn,
              const uint8_t *body, size_t len, struct proto_buf *frame, struct proto_buf *msg)
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
	if ((r = h->handle(h->arg, conn, &ctx, c.p, c.len, frame)) == PART_LATER) {
		/* Its reply comes with io_flush; its decision (if it made one) goes now, ahead. */
		return put_decision(h, io, conn, msg);
	}
	if (r != 0) {
		return r;
	}
	/* Calls answered later that ended before this one go out ahead of it: a call that had
	 * to wait for one (a C_DestroyObject of the key a C_Sign uses) is then answered, and
	 * audited, after it, as it happened. */
	if (part_later_flush(h->later, h->arg, &io->out, 0) != 0 ||
	    put_decision(h, io, conn, msg) != 0) {
		return PART_ERR_NOMEM;
	}
	if (proto_ipc_begin(msg, PROTO_IPC_REPLY, conn) != 0 ||
	    proto_put_raw(msg, frame->data, frame->len) != 0 || proto_ipc_finish(msg) != 0 ||
	    proto_put_raw(&io->out, msg->data, msg->len) != 0) {
		return PART_ERR_NOMEM;
	}
	/* A big batch goes out before it grows further. */
	return io->out.len >= PART_IPC_SLACK ? io_flush(io, 0) : 0;
}

int
part_ipc_serve(const struct part_ipc_handler *h, int fd)
{
	struct proto_buf frame, msg;
	struct ipc_io io = {.h = h, .fd = fd};
	const uint8_t *hdr, *body;
	size_t max_body, need;
	uint32_t body_len;
	uint64_t conn;
	uint8_t kind;
	int policy_noted = 0, gone = 0, r, fr;

	proto_buf_init(&frame);
	proto_buf_init(&msg);
	proto_buf_init(&io.out);
	max_body = (size_t)h->max_frame + PART_IPC_SLACK;
	/* One buffer for the largest message plus room to read ahead, allocated once: no size
	 * ever comes from the wire. */
	io.cap = PROTO_IPC_HDR_BYTES + max_body + PART_IPC_SLACK;
	if ((io.in = malloc(io.cap)) == NULL) {
		r = PART_ERR_NOMEM;
		goto out;
	}
	for (;;) {
		if ((r = io_fill(&io, PROTO_IPC_HDR_BYTES)) == IPC_GONE) {
			r = 0; /* the gateway went away */
			gone = 1;
			break;
		}
		if (r != 0) {
			goto out;
		}
		hdr = io.in + io.off;
		if (proto_ipc_hdr_decode(hdr, PROTO_IPC_HDR_BYTES, PROTO_IPC_HDR_BYTES + max_body,
		                         &kind, &conn, &body_len) != 0 ||
		    body_len > max_body) {
			r = PART_ERR_IPC;
			goto out;
		}
		need = PROTO_IPC_HDR_BYTES + (size_t)body_len;
		if ((r = io_fill(&io, need)) != 0) {
			r = r == IPC_GONE ? PART_ERR_IPC : r; /* gone in the middle of a message */
			goto out;
		}
		body = io.in + io.off + PROTO_IPC_HDR_BYTES;
		switch (kind) {
		case PROTO_IPC_REQUEST:
			r = serve_request(h, &io, conn, body, body_len, &frame, &msg);
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
		OPENSSL_cleanse(io.in + io.off, need);
		io.off += need;
		proto_buf_reset(&frame);
		proto_buf_reset(&msg);
		if (r == IPC_GONE) {
			r = 0; /* a reply could not be written: the gateway went away */
			gone = 1;
			break;
		}
		if (r != 0) {
			goto out;
		}
	}
out:
	/* Whatever ends the loop, the requests served before it get their replies (calls
	 * still out end first). A gateway that went away may not read them: not an error. */
	if ((fr = io_flush(&io, 1)) != 0 && fr != IPC_GONE && r == 0 && !gone) {
		r = fr;
	}
	if (io.in != NULL) {
		OPENSSL_clear_free(io.in, io.cap);
	}
	proto_buf_free(&io.out);
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
	struct part_ipc_handler h = {w,
	                             part_worker_max_frame(w),
	                             worker_handle,
	                             worker_conn_closed,
	                             worker_policy,
	                             worker_decision,
	                             part_worker_later(w)};

	return part_ipc_serve(&h, fd);
}
