/*
 * hsm-partitions/later.c — calls answered later: the bookkeeping a backend (worker.c,
 * passthrough.c) needs to hand calls to a pool of threads (pool.c) and still answer as if
 * it served one call at a time.
 *
 * A job is a call on one session (connection, client session handle). While jobs are out,
 * the backend asks part_later_may_overlap() before serving a request. A job touches only
 * what it was handed (its session's operation, copies of its input), so a request may go
 * ahead if it cannot touch that: from a connection with no job out, anything that does not
 * change what others may be using (the backend's `shared` flags: destroying or changing
 * objects, the token and its PINs; for a vendor module also its login and sessions); from a
 * connection with jobs out, a call of the crypt family (an init, a one-shot call, an update
 * or a final), a key generation, a random number or a read of objects (attributes, a
 * search), on a session no job holds. Anything
 * else first waits for every job (part_later_settle). A job that has run is finished on the
 * loop thread (its finish() ends what the in-line call would have ended and puts the reply
 * frame), and its reply, as a PROTO_IPC_REPLY message, waits in `done` until
 * part_later_flush() hands it to the IPC loop, which writes it ahead of any reply it builds
 * afterwards: a call that waited for a job is answered, and audited, after it.
 *
 * A backend that set a handler (part_later_set_handler, the passthrough) need not wait for
 * every job when such a call comes for a session a job holds — the usual case
 * for a call that follows its init, which a vendor module answers later too: may_overlap
 * says PART_OVERLAP_QUEUE, part_later_queue() keeps a copy of the request, and it is served
 * (by the handler, on the loop thread) as soon as no job holds that session any more, in the
 * order the requests came; its reply joins `done` behind the job's. Requests queued for one
 * session wait for each other, and a call that would wait for every job (settle) also waits
 * for the queued ones, so that no connection sees its calls served out of order.
 */
#include "hsm-partitions/part_int.h"

#include <openssl/crypto.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* What requests may wait in the queue at once, frames counted: beyond it a request waits
 * for every job instead (the same answer, later). */
#define PART_LATER_QUEUED_BYTES ((size_t)16 << 20)

/* A request waiting for its session's job (part_later_queue). */
struct queued {
	struct queued *next;
	uint64_t conn;
	CK_SESSION_HANDLE h;
	struct proto_ctx ctx;
	size_t len;
	uint8_t frame[]; /* the whole request frame, wiped when freed */
};

struct part_later {
	struct part_pool *pool;
	part_later_handle_fn handle; /* serves a queued request; NULL: nothing is queued */
	struct queued *queued, **queued_tail;
	size_t queued_bytes;          /* frames held, bounded by PART_LATER_QUEUED_BYTES */
	const struct queued *current; /* the one the handler is serving, out of the queue */
	int serving; /* serve_queued() is running: nested settles wait for the jobs only */
	struct part_job *jobs[PART_LATER_JOBS]; /* handed over, not finished */
	unsigned n_jobs;
	struct proto_buf done;  /* IPC replies of finished jobs, for part_later_flush */
	struct proto_buf frame; /* one finished job's reply frame */
	struct proto_buf msg;   /* and its IPC message */
};

int
part_reply_frame(const struct proto_buf *fields, unsigned call, uint32_t req_id, CK_RV rv,
                 struct proto_buf *reply)
{
	rv = part_rv_encoded(fields->failed, rv);
	if (proto_frame_begin(reply, PROTO_MSG_REPLY, call, 0, req_id) != 0 ||
	    proto_put_u64(reply, rv) != 0 ||
	    (proto_reply_has_fields(call, rv) &&
	     proto_put_raw(reply, fields->data, fields->len) != 0) ||
	    proto_frame_finish(reply) != 0) {
		return PART_ERR_NOMEM;
	}
	return 0;
}

int
part_later_new(unsigned helpers, struct part_later **out)
{
	struct part_later *l;
	int r;

	*out = NULL;
	if (helpers == 0) {
		return 0; /* nothing handed over: *out stays NULL */
	}
	if (helpers > PART_POOL_MAX) {
		return PART_ERR_INVALID;
	}
	if ((l = calloc(1, sizeof(*l))) == NULL) {
		return PART_ERR_NOMEM;
	}
	proto_buf_init(&l->done);
	proto_buf_init(&l->frame);
	proto_buf_init(&l->msg);
	l->queued_tail = &l->queued;
	l->done.max = SIZE_MAX / 2; /* at most PART_LATER_JOBS replies */
	if ((r = part_pool_new(helpers, &l->pool)) != 0) {
		part_later_free(l, NULL);
		return r;
	}
	*out = l;
	return 0;
}

int
part_later_take_arena(struct part_job *j, struct proto_arena **owner)
{
	struct proto_arena *fresh = proto_arena_new();

	if (fresh == NULL) {
		return PART_ERR_NOMEM;
	}
	j->arena = *owner;
	*owner = fresh;
	return 0;
}

static void settle_jobs(struct part_later *l, void *arg);

void
part_later_set_handler(struct part_later *l, part_later_handle_fn handle)
{
	if (l != NULL) {
		l->handle = handle;
	}
}

void
part_later_submit(struct part_later *l, void *arg, struct part_job *j)
{
	if (l->n_jobs == PART_LATER_JOBS) {
		settle_jobs(l, arg); /* bounds the inputs and outputs held at once */
	}
	j->idx = l->n_jobs;
	l->jobs[l->n_jobs++] = j;
	part_pool_submit(l->pool, &j->task);
}

/* Appends l->frame, the reply to a request of connection conn, to `done` as an IPC reply;
 * r: how building the frame went (0 or a PART_ERR_*). A failure is remembered as a failure
 * of `done`, reported by the flush. Wipes frame and msg: signatures, plaintext. */
static void
done_put(struct part_later *l, uint64_t conn, int r)
{
	proto_buf_reset(&l->msg);
	if (r != 0 || proto_ipc_begin(&l->msg, PROTO_IPC_REPLY, conn) != 0 ||
	    proto_put_raw(&l->msg, l->frame.data, l->frame.len) != 0 ||
	    proto_ipc_finish(&l->msg) != 0 ||
	    proto_put_raw(&l->done, l->msg.data, l->msg.len) != 0) {
		l->done.failed = l->done.failed != 0 ? l->done.failed : PROTO_ERR_NOMEM;
	}
	proto_buf_reset(&l->frame);
	proto_buf_reset(&l->msg);
}

/* A job that has run: finished, its reply queued in `done`, out of `jobs`, freed. */
static void
finish(struct part_later *l, void *arg, struct part_job *j)
{
	proto_buf_reset(&l->frame);
	done_put(l, j->conn, j->finish(j, arg, &l->frame));
	l->jobs[j->idx] = l->jobs[--l->n_jobs];
	l->jobs[j->idx]->idx = j->idx;
	l->jobs[l->n_jobs] = NULL;
	proto_arena_free(j->arena); /* wiped */
	j->free(j);
}

static int
held_by_job(const struct part_later *l, uint64_t conn, CK_SESSION_HANDLE h)
{
	unsigned i;

	for (i = 0; i < l->n_jobs; i++) {
		if (l->jobs[i]->conn == conn && l->jobs[i]->h == h) {
			return 1;
		}
	}
	return 0;
}

/* Whether a request queued before q (from l->queued up to q) is for q's session. */
static int
queued_before(const struct part_later *l, const struct queued *q)
{
	const struct queued *e;

	for (e = l->queued; e != q; e = e->next) {
		if (e->conn == q->conn && e->h == q->h) {
			return 1;
		}
	}
	return 0;
}

static void
queued_free(struct queued *q)
{
	OPENSSL_cleanse(q->frame, q->len); /* a C_Sign's data, a C_Encrypt's plaintext */
	free(q);
}

/*
 * Serves the queued requests whose session no job holds, oldest first; one that becomes a
 * job holds its session for those behind it. A reply made at once joins `done`. Not
 * re-entered: a settle inside the handler (a full job table) waits for the jobs only.
 */
static void
serve_queued(struct part_later *l, void *arg)
{
	struct queued **pp, *q;
	int progress = 1;

	if (l->serving || l->queued == NULL) {
		return;
	}
	l->serving = 1;
	while (progress) {
		progress = 0;
		for (pp = &l->queued; (q = *pp) != NULL;) {
			int r;

			if (held_by_job(l, q->conn, q->h) || queued_before(l, q)) {
				pp = &q->next;
				continue;
			}
			*pp = q->next;
			if (l->queued_tail == &q->next) {
				l->queued_tail = pp;
			}
			l->queued_bytes -= q->len;
			proto_buf_reset(&l->frame);
			/* Its turn: may_overlap must not send it behind its own followers. */
			l->current = q;
			r = l->handle(arg, q->conn, &q->ctx, q->frame, q->len, &l->frame);
			l->current = NULL;
			if (r != PART_LATER) {
				done_put(l, q->conn, r);
			}
			queued_free(q);
			progress = 1;
		}
	}
	l->serving = 0;
}

/* Finishes the jobs that have run, without waiting; serve: then the queued requests that
 * no job holds up any more. */
static void
collect(struct part_later *l, void *arg, int serve)
{
	struct part_task *t, *next;

	if (l == NULL || l->n_jobs == 0) {
		return;
	}
	for (t = part_pool_done(l->pool); t != NULL; t = next) {
		next = t->next;
		finish(l, arg, (struct part_job *)t);
	}
	if (serve) {
		serve_queued(l, arg);
	}
}

/* Waits for every job out now; queued requests stay queued. */
static void
settle_jobs(struct part_later *l, void *arg)
{
	if (l == NULL || l->n_jobs == 0) {
		return;
	}
	part_pool_wait(l->pool);
	collect(l, arg, 0);
}

void
part_later_settle(struct part_later *l, void *arg)
{
	if (l != NULL && l->serving) {
		settle_jobs(l, arg);
		return;
	}
	/* Serving a queued request may hand over a new job, behind which others wait. */
	while (l != NULL && l->n_jobs > 0) {
		part_pool_wait(l->pool);
		collect(l, arg, 1);
	}
}

int
part_later_queue(struct part_later *l, uint64_t conn, const struct proto_ctx *ctx,
                 const uint8_t *frame, size_t len)
{
	struct proto_cur cur;
	struct queued *q;
	CK_SESSION_HANDLE h;

	if (l == NULL || l->handle == NULL || len < PROTO_HDR_BYTES) {
		return PART_ERR_INVALID;
	}
	if (len > PART_LATER_QUEUED_BYTES - l->queued_bytes) {
		return PART_ERR_NOMEM;
	}
	proto_cur_init(&cur, frame + PROTO_HDR_BYTES, len - PROTO_HDR_BYTES);
	if (proto_get_ulong(&cur, &h) != 0) {
		return PART_ERR_INVALID;
	}
	if ((q = malloc(sizeof(*q) + len)) == NULL) {
		return PART_ERR_NOMEM;
	}
	q->next = NULL;
	q->conn = conn;
	q->h = h;
	q->ctx = *ctx;
	q->len = len;
	memcpy(q->frame, frame, len);
	*l->queued_tail = q;
	l->queued_tail = &q->next;
	l->queued_bytes += len;
	return 0;
}

int
part_later_may_overlap(const struct part_later *l, uint64_t conn, unsigned call,
                       const uint8_t *body, size_t len, uint32_t shared)
{
	const struct proto_call_info *ci;
	const struct queued *q;
	CK_SESSION_HANDLE h;
	struct proto_cur cur;

	if (l == NULL || l->n_jobs == 0) {
		return PART_OVERLAP_GO;
	}
	if ((ci = proto_call_get(call)) == NULL) {
		return PART_OVERLAP_SETTLE;
	}
	if (!part_later_conn_busy(l, conn)) {
		return (ci->flags & shared) == 0 ? PART_OVERLAP_GO : PART_OVERLAP_SETTLE;
	}
	if ((ci->flags & (PROTO_CF_OP_INIT | PROTO_CF_OP_ONESHOT | PROTO_CF_OP_PART |
	                  PROTO_CF_KEYGEN | PROTO_CF_OWN_SESSION | PROTO_CF_READ_OBJECTS)) == 0) {
		return PART_OVERLAP_SETTLE;
	}
	proto_cur_init(&cur, body, len);
	if (proto_get_ulong(&cur, &h) != 0) {
		return PART_OVERLAP_SETTLE;
	}
	if (held_by_job(l, conn, h)) {
		return l->handle != NULL ? PART_OVERLAP_QUEUE : PART_OVERLAP_SETTLE;
	}
	if (l->current != NULL && l->current->conn == conn && l->current->h == h) {
		return PART_OVERLAP_GO; /* served from the queue: those behind it came after it */
	}
	for (q = l->queued; q != NULL; q = q->next) {
		if (q->conn == conn && q->h == h) {
			return PART_OVERLAP_QUEUE; /* behind the one queued before */
		}
	}
	return PART_OVERLAP_GO;
}

int
part_later_flush(struct part_later *l, void *arg, struct proto_buf *out, int all)
{
	int r = 0;

	if (l == NULL || (l->n_jobs == 0 && l->done.len == 0 && l->done.failed == 0)) {
		return 0; /* every request but those handed over: no lock taken */
	}
	if (all) {
		part_later_settle(l, arg);
	} else {
		collect(l, arg, 1);
	}
	if (l->done.failed || proto_put_raw(out, l->done.data, l->done.len) != 0) {
		r = PART_ERR_NOMEM;
	}
	proto_buf_reset(&l->done);
	return r;
}

int
part_later_conn_busy(const struct part_later *l, uint64_t conn)
{
	unsigned i;

	const struct queued *q;

	for (i = 0; l != NULL && i < l->n_jobs; i++) {
		if (l->jobs[i]->conn == conn) {
			return 1;
		}
	}
	for (q = l != NULL ? l->queued : NULL; q != NULL; q = q->next) {
		if (q->conn == conn) {
			return 1;
		}
	}
	return 0;
}

unsigned
part_later_pending(const struct part_later *l)
{
	return l != NULL ? l->n_jobs : 0;
}

int
part_later_help(struct part_later *l)
{
	return l != NULL && part_pool_run_short(l->pool);
}

int
part_later_fd(const struct part_later *l)
{
	return l != NULL ? part_pool_fd(l->pool) : -1;
}

void
part_later_free(struct part_later *l, void *arg)
{
	if (l == NULL) {
		return;
	}
	part_later_settle(l, arg);
	while (l->queued != NULL) { /* none: each waits for a job, and the jobs have ended */
		struct queued *q = l->queued;

		l->queued = q->next;
		queued_free(q);
	}
	part_pool_free(l->pool);
	proto_buf_free(&l->done);
	proto_buf_free(&l->frame);
	proto_buf_free(&l->msg);
	free(l);
}
