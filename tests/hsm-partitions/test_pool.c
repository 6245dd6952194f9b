/* tests/hsm-partitions/test_pool.c — hsm-partitions/pool.c: every task runs once, on a
 * helper or on the caller; the done list and its eventfd; waiting; freeing with work queued;
 * the helper limit. */
#include "hsm-partitions/part_int.h"
#include "tests/lib/test.h"

#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#define NTASKS 200

struct ttask {
	struct part_task t;
	atomic_int runs;
	pthread_t by;
};

static struct ttask tasks[NTASKS];

static void
ttask_run(struct part_task *t)
{
	struct ttask *x = (struct ttask *)t;

	x->by = pthread_self();
	atomic_fetch_add(&x->runs, 1);
}

static void
tasks_reset(void)
{
	unsigned i;

	memset(tasks, 0, sizeof(tasks));
	for (i = 0; i < NTASKS; i++) {
		tasks[i].t.run = ttask_run;
	}
}

static int
readable(int fd)
{
	struct pollfd pf = {.fd = fd, .events = POLLIN};

	return poll(&pf, 1, 0) == 1;
}

/* Takes the done list: how many tasks it held. */
static unsigned
take_done(struct part_pool *p)
{
	struct part_task *t;
	unsigned n = 0;

	for (t = part_pool_done(p); t != NULL; t = t->next) {
		n++;
	}
	return n;
}

static void
test_no_helper(void)
{
	struct part_pool *p = NULL;
	unsigned i;

	tasks_reset();
	CU_ASSERT_FATAL(part_pool_new(0, &p) == 0);
	CU_ASSERT_EQUAL(part_pool_helpers(p), 0);
	for (i = 0; i < 10; i++) {
		part_pool_submit(p, &tasks[i].t);
	}
	/* nothing runs by itself */
	CU_ASSERT_EQUAL(atomic_load(&tasks[0].runs), 0);
	CU_ASSERT(!readable(part_pool_fd(p)));
	CU_ASSERT_PTR_NULL(part_pool_done(p));
	CU_ASSERT_EQUAL(part_pool_run_one(p), 1);
	CU_ASSERT_EQUAL(atomic_load(&tasks[0].runs), 1); /* in order */
	CU_ASSERT(readable(part_pool_fd(p)));
	CU_ASSERT_EQUAL(take_done(p), 1);
	CU_ASSERT(!readable(part_pool_fd(p)));
	part_pool_wait(p);
	CU_ASSERT_EQUAL(take_done(p), 9);
	for (i = 0; i < 10; i++) {
		CU_ASSERT_EQUAL(atomic_load(&tasks[i].runs), 1);
		CU_ASSERT(pthread_equal(tasks[i].by, pthread_self()));
	}
	CU_ASSERT_EQUAL(part_pool_run_one(p), 0);
	part_pool_free(p);
}

/* An idle loop thread takes short tasks only (part_pool_run_short), in order, from
 * anywhere in the queue; a long_run one (a key pair) stays for a helper or a wait. */
static void
test_run_short(void)
{
	struct part_pool *p = NULL;

	tasks_reset();
	tasks[0].t.long_run = 1;
	tasks[2].t.long_run = 1;
	tasks[3].t.long_run = 1;
	CU_ASSERT_FATAL(part_pool_new(0, &p) == 0);
	for (unsigned i = 0; i < 4; i++) {
		part_pool_submit(p, &tasks[i].t);
	}
	CU_ASSERT_EQUAL(part_pool_run_short(p), 1);
	CU_ASSERT(atomic_load(&tasks[0].runs) == 0 && atomic_load(&tasks[1].runs) == 1);
	CU_ASSERT_EQUAL(part_pool_run_short(p), 0); /* only long ones left */
	CU_ASSERT_EQUAL(take_done(p), 1);
	tasks[4].t.long_run = 0;
	part_pool_submit(p, &tasks[4].t); /* behind two long ones, after the tail moved */
	CU_ASSERT_EQUAL(part_pool_run_short(p), 1);
	CU_ASSERT_EQUAL(atomic_load(&tasks[4].runs), 1);
	part_pool_submit(p, &tasks[5].t); /* the tail is still right */
	CU_ASSERT_EQUAL(part_pool_run_short(p), 1);
	CU_ASSERT_EQUAL(part_pool_run_short(p), 0);
	part_pool_wait(p); /* a wait runs the long ones too, in order */
	CU_ASSERT(atomic_load(&tasks[0].runs) == 1 && atomic_load(&tasks[2].runs) == 1 &&
	          atomic_load(&tasks[3].runs) == 1);
	CU_ASSERT_EQUAL(take_done(p), 5);
	CU_ASSERT_EQUAL(part_pool_run_one(p), 0);
	part_pool_free(p);
}

static void
test_helpers(void)
{
	struct part_pool *p = NULL;
	unsigned i, n = 0;

	tasks_reset();
	CU_ASSERT_FATAL(part_pool_new(3, &p) == 0);
	CU_ASSERT_EQUAL(part_pool_helpers(p), 3);
	for (i = 0; i < NTASKS; i++) {
		part_pool_submit(p, &tasks[i].t);
		if (i % 50 == 49) {
			n += take_done(p); /* taking while others run */
		}
	}
	part_pool_wait(p);
	n += take_done(p);
	CU_ASSERT_EQUAL(n, NTASKS);
	for (i = 0; i < NTASKS; i++) {
		CU_ASSERT_EQUAL(atomic_load(&tasks[i].runs), 1);
	}
	CU_ASSERT(!readable(part_pool_fd(p)));
	/* the helpers really run tasks: one alone, with the caller not helping */
	tasks_reset();
	part_pool_submit(p, &tasks[0].t);
	{
		struct pollfd pf = {.fd = part_pool_fd(p), .events = POLLIN};

		CU_ASSERT_FATAL(poll(&pf, 1, 10000) == 1);
	}
	CU_ASSERT_EQUAL(take_done(p), 1);
	CU_ASSERT(!pthread_equal(tasks[0].by, pthread_self()));
	part_pool_free(p);
}

static void
test_free_runs_queued(void)
{
	struct part_pool *p = NULL;
	unsigned i;

	tasks_reset();
	CU_ASSERT_FATAL(part_pool_new(1, &p) == 0);
	for (i = 0; i < NTASKS; i++) {
		part_pool_submit(p, &tasks[i].t);
	}
	part_pool_free(p);
	for (i = 0; i < NTASKS; i++) {
		CU_ASSERT_EQUAL(atomic_load(&tasks[i].runs), 1);
	}
	part_pool_free(NULL);
}

static void
test_limit(void)
{
	struct part_pool *p = (struct part_pool *)&p;

	CU_ASSERT_EQUAL(part_pool_new(PART_POOL_MAX + 1, &p), PART_ERR_INVALID);
	CU_ASSERT_PTR_NULL(p);
	CU_ASSERT_EQUAL(part_pool_helpers(NULL), 0);
}

void
test_register(void)
{
	static const struct test_case cases[] = {
	        {"no helper: the caller runs every task, in order", test_no_helper},
	        {"three helpers: each task once, done list and eventfd", test_helpers},
	        {"free runs what is queued first", test_free_runs_queued},
	        {"more helpers than PART_POOL_MAX refused", test_limit},
	        {"an idle loop thread leaves long tasks to the helpers", test_run_short},
	        {NULL, NULL},
	};

	test_suite_add("hsm-partitions/pool", NULL, NULL, cases);
}
