/*
 * client/session.c — the session handles opened on one connection.
 *
 * Sessions live in the gateway's worker and die with the connection that opened them, so
 * the module refuses, locally, any handle not opened on the current connection: a handle
 * from a lost connection, or one the application closed (a reused value the gateway might
 * have handed to another session of ours must not reach it by accident). A flat array:
 * applications hold a handful of sessions, hundreds at most, and a scan of a few cache
 * lines is cheaper than hashing.
 */
#include "client/cli_int.h"

#include <stdlib.h>

#define SESSIONS_MIN 16

void
cli_sessions_init(struct cli_sessions *s)
{
	s->h = NULL;
	s->n = 0;
	s->cap = 0;
}

void
cli_sessions_free(struct cli_sessions *s)
{
	free(s->h);
	cli_sessions_init(s);
}

int
cli_sessions_add(struct cli_sessions *s, CK_SESSION_HANDLE h)
{
	CK_SESSION_HANDLE *n;
	size_t cap;

	if (cli_sessions_has(s, h)) {
		return 0;
	}
	if (s->n == s->cap) {
		cap = s->cap == 0 ? SESSIONS_MIN : s->cap * 2;
		if ((n = reallocarray(s->h, cap, sizeof(*n))) == NULL) {
			return CLI_ERR_NOMEM;
		}
		s->h = n;
		s->cap = cap;
	}
	s->h[s->n++] = h;
	return 0;
}

int
cli_sessions_has(const struct cli_sessions *s, CK_SESSION_HANDLE h)
{
	size_t i;

	for (i = 0; i < s->n; i++) {
		if (s->h[i] == h) {
			return 1;
		}
	}
	return 0;
}

void
cli_sessions_del(struct cli_sessions *s, CK_SESSION_HANDLE h)
{
	size_t i;

	for (i = 0; i < s->n; i++) {
		if (s->h[i] == h) {
			/* Order does not matter: move the last one into the hole. */
			s->h[i] = s->h[--s->n];
			return;
		}
	}
}

void
cli_sessions_del_slot(struct cli_sessions *s, CK_SLOT_ID slot)
{
	size_t i = 0;

	while (i < s->n) {
		if (proto_session_slot(s->h[i]) == slot) {
			s->h[i] = s->h[--s->n];
		} else {
			i++;
		}
	}
}
