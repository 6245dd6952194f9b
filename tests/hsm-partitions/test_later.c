/* tests/hsm-partitions/test_later.c — hsm-partitions/later.c: which requests may overlap the
 * jobs out, and requests queued behind their session's job (part_later_queue): served in the
 * order they came once the job has ended, answered after it, a queued request that becomes a
 * job holding up the next one, settle waiting for the queued ones too. Jobs wait on a gate
 * that the test opens, so nothing here depends on timing. */
#include "hsm-partitions/part_int.h"
#include "tests/lib/test.h"

#include <poll.h>
#include <pthread.h>
#include <string.h>

#define CONN 7

/* Two gates the jobs wait at until the test opens them. */
static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static int gate_open[2];

static void
gate_put(int g, int open)
{
	pthread_mutex_lock(&gate_mu);
	gate_open[g] = open;
	pthread_cond_broadcast(&gate_cv);
	pthread_mutex_unlock(&gate_mu);
}

static void
gate_set(int open)
{
	gate_put(0, open);
	gate_put(1, open);
}

struct tjob {
	struct part_job base; /* first */
	int gate;
	uint16_t call;
	uint32_t req_id;
};

static void
tjob_run(struct part_task *t)
{
	struct tjob *j = (struct tjob *)t;

	pthread_mutex_lock(&gate_mu);
	while (!gate_open[j->gate]) {
		pthread_cond_wait(&gate_cv, &gate_mu);
	}
	pthread_mutex_unlock(&gate_mu);
}

static int
tjob_finish(struct part_job *pj, void *arg, struct proto_buf *frame)
{
	struct tjob *j = (struct tjob *)pj;
	struct proto_buf none;
	int r;

	(void)arg;
	proto_buf_init(&none);
	r = part_reply_frame(&none, j->call, j->req_id, CKR_OK, frame);
	proto_buf_free(&none);
	return r;
}

static void
tjob_free(struct part_job *pj)
{
	free(pj);
}

/* A job on session h that waits at gate g. */
static void
submit_at(struct part_later *l, int g, CK_SESSION_HANDLE h, uint16_t call, uint32_t req_id)
{
	struct tjob *j = calloc(1, sizeof(*j));

	CU_ASSERT_FATAL(j != NULL);
	j->gate = g;
	j->base.task.run = tjob_run;
	j->base.task.long_run = 1;
	j->base.conn = CONN;
	j->base.h = h;
	j->base.finish = tjob_finish;
	j->base.free = tjob_free;
	j->call = call;
	j->req_id = req_id;
	part_later_submit(l, NULL, &j->base);
}

static void
submit(struct part_later *l, CK_SESSION_HANDLE h, uint16_t call, uint32_t req_id)
{
	submit_at(l, 0, h, call, req_id);
}

/* A request frame: the session handle first, as every call of the crypt family has it. */
static void
request(struct proto_buf *f, uint16_t call, uint32_t req_id, CK_SESSION_HANDLE h)
{
	proto_buf_reset(f);
	CU_ASSERT_FATAL(proto_frame_begin(f, PROTO_MSG_REQUEST, call, 0, req_id) == 0 &&
	                proto_put_ulong(f, h) == 0 && proto_frame_finish(f) == 0);
}

/* The handler the queued requests reach, a backend's handle(): asks may_overlap first, as
 * the passthrough does (queues or settles as told); then answers at once, except req_id 100,
 * which it hands over as a job on the same session (as the passthrough's C_Sign after its
 * init). */
static struct part_later *handler_l;
static unsigned handled;

static int
handle(void *arg, uint64_t conn, const struct proto_ctx *ctx, const uint8_t *frame, size_t len,
       struct proto_buf *reply)
{
	struct proto_hdr hdr;
	struct proto_buf none;
	struct proto_cur cur;
	CK_SESSION_HANDLE h;
	int r;

	(void)arg;
	CU_ASSERT_EQUAL(conn, CONN);
	CU_ASSERT_STRING_EQUAL(ctx->principal, "tenant/t/user/u");
	CU_ASSERT_FATAL(proto_hdr_decode(frame, len, PROTO_MAX_FRAME_CAP, &hdr) == 0);
	switch (part_later_may_overlap(handler_l, conn, hdr.call, frame + PROTO_HDR_BYTES,
	                               hdr.body_len, PROTO_CF_SHARED)) {
	case PART_OVERLAP_QUEUE:
		CU_ASSERT_FATAL(part_later_queue(handler_l, conn, ctx, frame, len) == 0);
		return PART_LATER;
	case PART_OVERLAP_SETTLE:
		part_later_settle(handler_l, NULL);
		break;
	default:
		break;
	}
	proto_cur_init(&cur, frame + PROTO_HDR_BYTES, hdr.body_len);
	CU_ASSERT_FATAL(proto_get_ulong(&cur, &h) == 0);
	handled++;
	if (hdr.req_id == 100) {
		submit(handler_l, h, hdr.call, hdr.req_id);
		return PART_LATER;
	}
	proto_buf_init(&none);
	r = part_reply_frame(&none, hdr.call, hdr.req_id, CKR_OK, reply);
	proto_buf_free(&none);
	return r;
}

/* The req_ids of the replies part_later_flush gave, in order; how many. */
static unsigned
replies(struct part_later *l, int all, uint32_t *ids, unsigned max)
{
	struct proto_buf out;
	size_t off = 0;
	unsigned n = 0;

	proto_buf_init(&out);
	CU_ASSERT_FATAL(part_later_flush(l, NULL, &out, all) == 0);
	while (off < out.len) {
		struct proto_hdr hdr;
		uint64_t conn;
		uint32_t body;
		uint8_t kind;

		CU_ASSERT_FATAL(proto_ipc_hdr_decode(out.data + off, out.len - off, out.len, &kind,
		                                     &conn, &body) == 0);
		CU_ASSERT_EQUAL(kind, PROTO_IPC_REPLY);
		CU_ASSERT_EQUAL(conn, CONN);
		CU_ASSERT_FATAL(proto_hdr_decode(out.data + off + PROTO_IPC_HDR_BYTES, body,
		                                 PROTO_MAX_FRAME_CAP, &hdr) == 0);
		if (n < max) {
			ids[n] = hdr.req_id;
		}
		n++;
		off += PROTO_IPC_HDR_BYTES + body;
	}
	proto_buf_free(&out);
	return n;
}

static int
overlap(struct part_later *l, uint16_t call, CK_SESSION_HANDLE h)
{
	struct proto_buf f;
	int r;

	proto_buf_init(&f);
	request(&f, call, 1, h);
	r = part_later_may_overlap(l, CONN, call, f.data + PROTO_HDR_BYTES, f.len - PROTO_HDR_BYTES,
	                           PROTO_CF_SHARED);
	proto_buf_free(&f);
	return r;
}

static void
queue(struct part_later *l, uint16_t call, uint32_t req_id, CK_SESSION_HANDLE h)
{
	struct proto_ctx ctx;
	struct proto_buf f;

	memset(&ctx, 0, sizeof(ctx));
	snprintf(ctx.principal, sizeof(ctx.principal), "tenant/t/user/u");
	proto_buf_init(&f);
	request(&f, call, req_id, h);
	CU_ASSERT(part_later_queue(l, CONN, &ctx, f.data, f.len) == 0);
	proto_buf_free(&f);
}

/* Without a handler a call on a held session waits for every job, as before queueing. */
static void
test_no_handler_settles(void)
{
	struct part_later *l = NULL;
	struct proto_buf f;
	struct proto_ctx ctx;

	gate_set(0);
	CU_ASSERT_FATAL(part_later_new(2, &l) == 0);
	submit(l, 5, PROTO_CALL_C_SignInit, 1);
	CU_ASSERT_EQUAL(overlap(l, PROTO_CALL_C_Sign, 5), PART_OVERLAP_SETTLE);
	CU_ASSERT_EQUAL(overlap(l, PROTO_CALL_C_Sign, 6), PART_OVERLAP_GO);
	memset(&ctx, 0, sizeof(ctx));
	proto_buf_init(&f);
	request(&f, PROTO_CALL_C_Sign, 2, 5);
	CU_ASSERT_EQUAL(part_later_queue(l, CONN, &ctx, f.data, f.len), PART_ERR_INVALID);
	proto_buf_free(&f);
	gate_set(1);
	part_later_free(l, NULL);
}

/* A later with `helpers` threads and the test's handler; the gate as given. */
static struct part_later *
later_with_handler(unsigned helpers, int gate)
{
	struct part_later *l = NULL;

	gate_set(gate);
	handled = 0;
	CU_ASSERT_FATAL(part_later_new(helpers, &l) == 0);
	part_later_set_handler(l, handle);
	handler_l = l;
	return l;
}

static void
test_queue_order(void)
{
	struct part_later *l = later_with_handler(2, 0);
	uint32_t ids[8];

	submit(l, 5, PROTO_CALL_C_SignInit, 10); /* the init, held at the gate */
	/* Its session's call queues; another session's goes; a call that is not of the crypt
	 * family waits for everything. */
	CU_ASSERT_EQUAL(overlap(l, PROTO_CALL_C_Sign, 5), PART_OVERLAP_QUEUE);
	CU_ASSERT_EQUAL(overlap(l, PROTO_CALL_C_Sign, 6), PART_OVERLAP_GO);
	CU_ASSERT_EQUAL(overlap(l, PROTO_CALL_C_GetSessionInfo, 6), PART_OVERLAP_SETTLE);
	queue(l, PROTO_CALL_C_Sign, 11, 5);
	queue(l, PROTO_CALL_C_SignInit, 12, 5);
	/* Behind the queued ones even if the job had ended. */
	CU_ASSERT_EQUAL(overlap(l, PROTO_CALL_C_Sign, 5), PART_OVERLAP_QUEUE);
	CU_ASSERT(part_later_conn_busy(l, CONN));
	CU_ASSERT_EQUAL(replies(l, 0, ids, 8), 0);
	CU_ASSERT_EQUAL(handled, 0);

	gate_set(1);
	/* The job's reply first, then the queued requests', in the order they came. */
	CU_ASSERT_EQUAL_FATAL(replies(l, 1, ids, 8), 3);
	CU_ASSERT_EQUAL(ids[0], 10);
	CU_ASSERT_EQUAL(ids[1], 11);
	CU_ASSERT_EQUAL(ids[2], 12);
	CU_ASSERT_EQUAL(handled, 2);
	CU_ASSERT_EQUAL(part_later_pending(l), 0);
	CU_ASSERT(!part_later_conn_busy(l, CONN));
	CU_ASSERT_EQUAL(overlap(l, PROTO_CALL_C_Sign, 5), PART_OVERLAP_GO);
	part_later_free(l, NULL);
}

/* A queued request that becomes a job holds its session: the one behind it waits for that
 * job too, and settle waits for all of it. */
static void
test_queued_becomes_job(void)
{
	struct part_later *l = later_with_handler(2, 0);
	uint32_t ids[8];

	submit(l, 5, PROTO_CALL_C_SignInit, 99);
	queue(l, PROTO_CALL_C_Sign, 100, 5); /* the handler makes it a job */
	queue(l, PROTO_CALL_C_SignInit, 101, 5);
	queue(l, PROTO_CALL_C_Sign, 200, 6); /* session 6: no job, served at the first turn */
	gate_set(1);
	CU_ASSERT_EQUAL_FATAL(replies(l, 1, ids, 8), 4);
	CU_ASSERT_EQUAL(ids[0], 99);
	/* 100 became a job; 200 (session 6) did not wait for it; 101 came after 100's reply. */
	CU_ASSERT_EQUAL(ids[3], 101);
	CU_ASSERT((ids[1] == 100 && ids[2] == 200) || (ids[1] == 200 && ids[2] == 100));
	CU_ASSERT_EQUAL(handled, 3);
	CU_ASSERT_EQUAL(part_later_pending(l), 0);
	part_later_free(l, NULL);
}

/* The replies of flushes without waiting for every job, until n have come (the jobs left
 * out stay out): the IPC loop's way, polling the pool's fd. */
static unsigned
replies_until(struct part_later *l, unsigned n, uint32_t *ids, unsigned max)
{
	unsigned got = 0, i;

	for (i = 0; i < 1000 && got < n; i++) {
		struct pollfd pf = {.fd = part_later_fd(l), .events = POLLIN};

		(void)poll(&pf, 1, 20);
		got += replies(l, 0, ids + got, max - got);
	}
	return got;
}

/* Served from the queue while another session's job is still out, a request does not go
 * behind those queued after it for its session (they would then wait for it, and it for
 * them). */
static void
test_followers_with_other_job_out(void)
{
	struct part_later *l = later_with_handler(2, 0);
	uint32_t ids[8];

	submit_at(l, 1, 9, PROTO_CALL_C_Sign, 50); /* stays out */
	submit(l, 5, PROTO_CALL_C_SignInit, 10);
	queue(l, PROTO_CALL_C_Sign, 11, 5);
	queue(l, PROTO_CALL_C_SignInit, 12, 5);
	queue(l, PROTO_CALL_C_Sign, 13, 5);
	gate_put(0, 1);
	CU_ASSERT_EQUAL_FATAL(replies_until(l, 4, ids, 8), 4);
	CU_ASSERT_EQUAL(ids[0], 10);
	CU_ASSERT_EQUAL(ids[1], 11);
	CU_ASSERT_EQUAL(ids[2], 12);
	CU_ASSERT_EQUAL(ids[3], 13);
	CU_ASSERT_EQUAL(part_later_pending(l), 1);
	gate_put(1, 1);
	CU_ASSERT_EQUAL_FATAL(replies(l, 1, ids, 8), 1);
	CU_ASSERT_EQUAL(ids[0], 50);
	part_later_free(l, NULL);
}

/* Freed with requests queued and jobs out: every job ends, every queued request is served
 * (its reply dropped with the later), nothing leaks (ASan). */
static void
test_free_with_queued(void)
{
	struct part_later *l = later_with_handler(1, 1);

	submit(l, 5, PROTO_CALL_C_SignInit, 1);
	queue(l, PROTO_CALL_C_Sign, 2, 5);
	part_later_free(l, NULL);
	CU_ASSERT_EQUAL(handled, 1);
}

void
test_register(void)
{
	static const struct test_case cases[] = {
	        {"without a handler a held session's call waits for every job",
	         test_no_handler_settles},
	        {"queued behind the session's job: served in order, answered after it",
	         test_queue_order},
	        {"a queued request that becomes a job holds up the next on its session",
	         test_queued_becomes_job},
	        {"served from the queue with another job out: not behind its followers",
	         test_followers_with_other_job_out},
	        {"freed with requests queued: each served once", test_free_with_queued},
	        {NULL, NULL},
	};

	test_suite_add("hsm-partitions/later", NULL, NULL, cases);
}
