/*
 * proto/spin.c — the adaptive busy-poll budget shared by the client module (a caller that
 * drives its connection) and the gateway (its loop, while a worker call is out).
 *
 * The rule is the haltpoll governor's (linux/drivers/cpuidle/governors/haltpoll.c): poll
 * for the budget; a wait that polling would have caught with a larger budget, up to the
 * maximum, grows it; a wait longer than the maximum, which polling could never catch,
 * shrinks it. Only the waiter's own thread touches its struct.
 */
#include "proto/proto.h"

#include <time.h>

void
proto_spin_init(struct proto_spin *sp, uint32_t max_us)
{
	sp->max_ns = (uint64_t)max_us * 1000u;
	sp->budget_ns = sp->max_ns / 4u;
}

void
proto_spin_learn(struct proto_spin *sp, uint64_t waited_ns)
{
	uint64_t b = sp->budget_ns, start = sp->max_ns / 4u;

	if (waited_ns <= b) {
		return; /* polling caught it */
	}
	if (waited_ns <= sp->max_ns) {
		b = b < start ? start : b * 2u;
		sp->budget_ns = b > sp->max_ns ? sp->max_ns : b;
		return;
	}
	b /= 2u;
	sp->budget_ns = b < start ? 0 : b;
}

uint64_t
proto_now_ns(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
