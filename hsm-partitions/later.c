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
 * or a final), a key generation or a random number, on a session no job holds. Anything
 * else first waits for every job (part_later_settle). A job that has run is finished on the
 * loop thread (its finish() ends what the in-line call would have ended and puts the reply
 * frame), and its reply, as a PROTO_IPC_REPLY message, waits in `done` until
 * part_later_flush() hands it to the IPC loop, which writes it ahead of any reply it builds
 * afterwards: a call that waited for a job is answered, and audited, after it.
 */
#include "hsm-partitions/part_int.h"

#include <stdint.h>
#include <stdlib.h>

struct part_later {
	struct part_pool *pool;
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

void
part_later_submit(struct part_later *l, void *arg, struct part_job *j)
{
	if (l->n_jobs == PART_LATER_JOBS) {
		part_later_settle(l, arg); /* bounds the inputs and outputs held at once */
	}
	j->idx = l->n_jobs;
	l->jobs[l->n_jobs++] = j;
	part_pool_submit(l->pool, &j->task);
}

/* A job that has run: finished, its reply queued in `done`, out of `jobs`, freed. A reply
 * that cannot be built is remembered as a failure of `done`, reported by the flush. */
static void
finish(struct part_later *l, void *arg, struct part_job *j)
{
	proto_buf_reset(&l->frame);
	proto_buf_reset(&l->msg);
	if (j->finish(j, arg, &l->frame) != 0 ||
	    proto_ipc_begin(&l->msg, PROTO_IPC_REPLY, j->conn) != 0 ||
	    proto_put_raw(&l->msg, l->frame.data, l->frame.len) != 0 ||
	    proto_ipc_finish(&l->msg) != 0 ||
	    proto_put_raw(&l->done, l->msg.data, l->msg.len) != 0) {
		l->done.failed = l->done.failed != 0 ? l->done.failed : PROTO_ERR_NOMEM;
	}
	/* Signatures, plaintext: wiped before reuse. */
	proto_buf_reset(&l->frame);
	proto_buf_reset(&l->msg);
	l->jobs[j->idx] = l->jobs[--l->n_jobs];
	l->jobs[j->idx]->idx = j->idx;
	l->jobs[l->n_jobs] = NULL;
	proto_arena_free(j->arena); /* wiped */
	j->free(j);
}

/* Finishes the jobs that have run, without waiting. */
static void
collect(struct part_later *l, void *arg)
{
	struct part_task *t, *next;

	if (l == NULL || l->n_jobs == 0) {
		return;
	}
	for (t = part_pool_done(l->pool); t != NULL; t = next) {
		next = t->next;
		finish(l, arg, (struct part_job *)t);
	}
}

void
part_later_settle(struct part_later *l, void *arg)
{
	if (l == NULL || l->n_jobs == 0) {
		return;
	}
	part_pool_wait(l->pool);
	collect(l, arg);
}

int
part_later_may_overlap(const struct part_later *l, uint64_t conn, unsigned call,
                       const uint8_t *body, size_t len, uint32_t shared)
{
	const struct proto_call_info *ci;
	CK_SESSION_HANDLE h;
	struct proto_cur cur;
	unsigned i;

	if (l == NULL || l->n_jobs == 0) {
		return 1;
	}
	if ((ci = proto_call_get(call)) == NULL) {
		return 0;
	}
	if (!part_later_conn_busy(l, conn)) {
		return (ci->flags & shared) == 0;
	}
	if ((ci->flags & (PROTO_CF_OP_INIT | PROTO_CF_OP_ONESHOT | PROTO_CF_OP_PART |
	                  PROTO_CF_KEYGEN | PROTO_CF_OWN_SESSION)) == 0) {
		return 0;
	}
	proto_cur_init(&cur, body, len);
	if (proto_get_ulong(&cur, &h) != 0) {
		return 0;
	}
	for (i = 0; i < l->n_jobs; i++) {
		if (l->jobs[i]->conn == conn && l->jobs[i]->h == h) {
			return 0;
		}
	}
	return 1;
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
		collect(l, arg);
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

	for (i = 0; l != NULL && i < l->n_jobs; i++) {
		if (l->jobs[i]->conn == conn) {
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
	part_pool_free(l->pool);
	proto_buf_free(&l->done);
	proto_buf_free(&l->frame);
	proto_buf_free(&l->msg);
	free(l);
}
