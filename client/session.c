/*
 * client/session.c — the session handles opened on one connection.
 *
 * Sessions live in the gateway's worker and die with the connection that opened them, so
 * the module refuses, locally, any handle not opened on the current connection: a handle
 * from a lost connection, or one the application closed (a reused value the gateway might
 * have handed to another session of ours must not reach it by accident). A flat array:
 * applications hold a handful of sessions, hundreds at most, and a scan of a few cache
 * lines is cheaper than hashing.
 *
 * Beside each handle, its deferred init (cli_int.h: an init answered by the module and sent
 * with the session's next call); and the inits this connection has seen succeed, as keys of
 * call id, key handle and mechanism shape: a small ring, scanned the same way.
 */
#include "client/cli_int.h"

#include <stdlib.h>

#include <string.h>

#define SESSIONS_MIN 16

void
cli_deferred_free(struct cli_deferred *d)
{
	if (d != NULL) {
		proto_buf_free(&d->req); /* wipes: a request frame may carry key material */
		free(d);
	}
}

void
cli_sessions_init(struct cli_sessions *s)
{
	memset(s, 0, sizeof(*s));
}

void
cli_sessions_free(struct cli_sessions *s)
{
	size_t i;

	for (i = 0; i < s->n; i++) {
		cli_deferred_free(s->def[i]);
	}
	free(s->h);
	free(s->def);
	cli_sessions_init(s);
}

/* The index of h, or s->n. */
static size_t
find(const struct cli_sessions *s, CK_SESSION_HANDLE h)
{
	size_t i;

	for (i = 0; i < s->n && s->h[i] != h; i++) {
	}
	return i;
}

int
cli_sessions_add(struct cli_sessions *s, CK_SESSION_HANDLE h)
{
	CK_SESSION_HANDLE *n;
	struct cli_deferred **d;
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
		if ((d = reallocarray(s->def, cap, sizeof(*d))) == NULL) {
			return CLI_ERR_NOMEM; /* s->h is larger than cap says: harmless */
		}
		s->def = d;
		s->cap = cap;
	}
	s->def[s->n] = NULL;
	s->h[s->n++] = h;
	return 0;
}

int
cli_sessions_has(const struct cli_sessions *s, CK_SESSION_HANDLE h)
{
	return find(s, h) < s->n;
}

/* Removes entry i: order does not matter, the last one moves into the hole. */
static void
remove_at(struct cli_sessions *s, size_t i)
{
	cli_deferred_free(s->def[i]);
	s->n--;
	s->h[i] = s->h[s->n];
	s->def[i] = s->def[s->n];
}

void
cli_sessions_del(struct cli_sessions *s, CK_SESSION_HANDLE h)
{
	size_t i = find(s, h);

	if (i < s->n) {
		remove_at(s, i);
	}
}

void
cli_sessions_del_slot(struct cli_sessions *s, CK_SLOT_ID slot)
{
	size_t i = 0;

	while (i < s->n) {
		if (proto_session_slot(s->h[i]) == slot) {
			remove_at(s, i);
		} else {
			i++;
		}
	}
}

/* The index of k among the known inits, or CLI_INIT_KNOWN. Not secret: request ids, handles
 * and mechanism shapes. */
static unsigned
known_find(const struct cli_sessions *s, const struct cli_init_key *k)
{
	unsigned i;

	for (i = 0; i < CLI_INIT_KNOWN; i++) {
		if (s->known[i].len == k->len && k->len != 0 &&
		    memcmp(s->known[i].b, k->b, k->len) == 0) {
			return i;
		}
	}
	return CLI_INIT_KNOWN;
}

int
cli_sessions_defer(struct cli_sessions *s, CK_SESSION_HANDLE h, struct cli_deferred *d)
{
	size_t i = find(s, h);

	if (i == s->n || s->def[i] != NULL || known_find(s, &d->key) == CLI_INIT_KNOWN) {
		return 0;
	}
	s->def[i] = d;
	return 1;
}

struct cli_deferred *
cli_sessions_deferred_take(struct cli_sessions *s, CK_SESSION_HANDLE h)
{
	size_t i = find(s, h);
	struct cli_deferred *d;

	if (i == s->n) {
		return NULL;
	}
	d = s->def[i];
	s->def[i] = NULL;
	return d;
}

void
cli_sessions_known(struct cli_sessions *s, const struct cli_init_key *k, int ok)
{
	unsigned i = known_find(s, k);

	if (!ok) {
		if (i < CLI_INIT_KNOWN) {
			s->known[i].len = 0;
		}
	} else if (i == CLI_INIT_KNOWN && k->len != 0) {
		s->known[s->known_next] = *k;
		s->known_next = (s->known_next + 1) % CLI_INIT_KNOWN;
	}
}

void
cli_sessions_forget(struct cli_sessions *s)
{
	memset(s->known, 0, sizeof(s->known));
	s->known_next = 0;
}
