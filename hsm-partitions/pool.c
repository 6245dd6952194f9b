/*
 * hsm-partitions/pool.c — the crypto threads of a worker: RSA private-key operations
 * (part_op_heavy) and RSA key pair generation of a soft worker, a passthrough worker's
 * vendor calls, of several sessions run side by side on several cores, while the token
 * model stays on the loop thread.
 *
 * What runs here is a task that owns everything it touches: the worker hands over one
 * session's operation (its own EVP contexts over a shared, read-only EVP_PKEY, which
 * OpenSSL 3 allows from several threads), a copy of the input and an output buffer, and
 * takes them back from part_pool_done(). The loop thread never touches a handed-over
 * operation until then; later.c waits before any call that could (part_later_settle).
 *
 * A task that has run goes on the done list, and the pool's eventfd is readable while that
 * list is not empty (both change under the mutex), so the loop thread can wait for a
 * request and for finished work in one poll(2). The loop thread takes part:
 * part_pool_run_one() runs a task no helper has started, part_pool_wait() runs them all and
 * waits for the rest. So a pool with no helper is correct, only serial, and a helper slow
 * to wake costs nothing. Helpers are signalled only when one waits. Helpers block every
 * signal: a signal for the worker goes to its loop thread.
 */
#include "hsm-partitions/part_int.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct part_pool {
	pthread_mutex_t mu;
	pthread_cond_t cv_work;        /* a task was queued, or stop */
	pthread_cond_t cv_idle;        /* the last task in flight ended */
	struct part_task *head, *tail; /* queued, not started */
	struct part_task *done;        /* ran, not yet taken (part_pool_done); LIFO */
	unsigned pending;              /* queued + running */
	int efd;                       /* readable while `done` is not empty */
	unsigned waiting;              /* helpers waiting on cv_work */
	int stop;
	unsigned n_threads;
	pthread_t *threads;
};

static struct part_task *
take_inlock(struct part_pool *p)
{
	struct part_task *t = p->head;

	if (t != NULL) {
		p->head = t->next;
		if (p->head == NULL) {
			p->tail = NULL;
		}
		t->next = NULL;
	}
	return t;
}

/* The first queued task that is not long_run, unlinked; NULL if none. */
static struct part_task *
take_short_inlock(struct part_pool *p)
{
	struct part_task *t, *prev = NULL;

	for (t = p->head; t != NULL && t->long_run; t = t->next) {
		prev = t;
	}
	if (t == NULL) {
		return NULL;
	}
	if (prev == NULL) {
		return take_inlock(p);
	}
	prev->next = t->next;
	if (p->tail == t) {
		p->tail = prev;
	}
	t->next = NULL;
	return t;
}

static void
done_inlock(struct part_pool *p, struct part_task *t)
{
	uint64_t one = 1;

	t->next = p->done;
	p->done = t;
	if (t->next == NULL) {
		/* Cannot fail short of a counter at 2^64 - 2: it is read back to 0 below. */
		(void)!write(p->efd, &one, sizeof(one));
	}
	if (--p->pending == 0) {
		pthread_cond_broadcast(&p->cv_idle);
	}
}

static void *
helper_main(void *arg)
{
	struct part_pool *p = arg;
	struct part_task *t;

	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (!p->stop && p->head == NULL) {
			p->waiting++;
			pthread_cond_wait(&p->cv_work, &p->mu);
			p->waiting--;
		}
		if (p->stop) {
			break;
		}
		t = take_inlock(p);
		pthread_mutex_unlock(&p->mu);
		t->run(t);
		pthread_mutex_lock(&p->mu);
		done_inlock(p, t);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

int
part_pool_new(unsigned helpers, struct part_pool **out)
{
	struct part_pool *p;
	sigset_t all, old;
	unsigned i;
	int r = 0;

	*out = NULL;
	if (helpers > PART_POOL_MAX) {
		return PART_ERR_INVALID;
	}
	if ((p = calloc(1, sizeof(*p))) == NULL) {
		return PART_ERR_NOMEM;
	}
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv_work, NULL);
	pthread_cond_init(&p->cv_idle, NULL);
	if ((p->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
		p->efd = -1;
		part_pool_free(p);
		return PART_ERR_IO;
	}
	if (helpers > 0 && (p->threads = calloc(helpers, sizeof(*p->threads))) == NULL) {
		part_pool_free(p);
		return PART_ERR_NOMEM;
	}
	/* The helpers inherit this mask: every signal stays with the loop thread. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (i = 0; i < helpers; i++) {
		if (pthread_create(&p->threads[i], NULL, helper_main, p) != 0) {
			r = PART_ERR_SYS;
			break;
		}
		p->n_threads++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r != 0) {
		part_pool_free(p);
		return r;
	}
	*out = p;
	return 0;
}

void
part_pool_submit(struct part_pool *p, struct part_task *t)
{
	t->next = NULL;
	pthread_mutex_lock(&p->mu);
	if (p->tail != NULL) {
		p->tail->next = t;
	} else {
		p->head = t;
	}
	p->tail = t;
	p->pending++;
	if (p->waiting > 0) {
		pthread_cond_signal(&p->cv_work);
	}
	pthread_mutex_unlock(&p->mu);
}

static int
run_taken(struct part_pool *p, int any)
{
	struct part_task *t;

	pthread_mutex_lock(&p->mu);
	if ((t = any ? take_inlock(p) : take_short_inlock(p)) != NULL) {
		pthread_mutex_unlock(&p->mu);
		t->run(t);
		pthread_mutex_lock(&p->mu);
		done_inlock(p, t);
	}
	pthread_mutex_unlock(&p->mu);
	return t != NULL;
}

int
part_pool_run_one(struct part_pool *p)
{
	return run_taken(p, 1);
}

int
part_pool_run_short(struct part_pool *p)
{
	return run_taken(p, 0);
}

void
part_pool_wait(struct part_pool *p)
{
	while (part_pool_run_one(p)) {
	}
	pthread_mutex_lock(&p->mu);
	while (p->pending > 0) {
		pthread_cond_wait(&p->cv_idle, &p->mu);
	}
	pthread_mutex_unlock(&p->mu);
}

struct part_task *
part_pool_done(struct part_pool *p)
{
	struct part_task *t;
	uint64_t n;

	pthread_mutex_lock(&p->mu);
	t = p->done;
	p->done = NULL;
	if (t != NULL) {
		(void)!read(p->efd, &n, sizeof(n));
	}
	pthread_mutex_unlock(&p->mu);
	return t;
}

int
part_pool_fd(const struct part_pool *p)
{
	return p->efd;
}

unsigned
part_pool_helpers(const struct part_pool *p)
{
	return p != NULL ? p->n_threads : 0;
}

void
part_pool_free(struct part_pool *p)
{
	unsigned i;

	if (p == NULL) {
		return;
	}
	part_pool_wait(p);
	pthread_mutex_lock(&p->mu);
	p->stop = 1;
	pthread_cond_broadcast(&p->cv_work);
	pthread_mutex_unlock(&p->mu);
	for (i = 0; i < p->n_threads; i++) {
		pthread_join(p->threads[i], NULL);
	}
	pthread_cond_destroy(&p->cv_work);
	pthread_cond_destroy(&p->cv_idle);
	pthread_mutex_destroy(&p->mu);
	if (p->efd >= 0) {
		close(p->efd);
	}
	free(p->threads);
	free(p);
}
