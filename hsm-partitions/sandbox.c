/*
 * hsm-partitions/sandbox.c — the worker's start-up, in the one order of STYLE.md rule 10:
 *
 *   (fork + exec by the supervisor) → the secure heap → open this partition's LMDB
 *   environment → PR_SET_DUMPABLE 0, RLIMIT_CORE 0 → drop groups, gid, uid → PR_SET_DUMPABLE
 *   0 again → PR_SET_NO_NEW_PRIVS → seccomp.
 *
 * The secure heap (secmem.c) comes first because opening the token reads the master key and
 * unseals key material into it: OpenSSL's arena has to exist before the first secure
 * allocation, or that allocation lands in the ordinary heap.
 *
 * The environment is opened first, before any privilege is dropped, because its files may
 * belong to the service account; it is opened after exec, never inherited, because LMDB
 * forbids using an environment across fork. Not dumpable and no core files, because the
 * worker's memory holds PIN-derived hashes today and key material from issue 3 on. The uid
 * drop happens only when the config names a uid (not yet: the config has no such field), and
 * the seccomp allow-list comes with the hardening issue; both have their place below.
 */
#include "hsm-partitions/part_int.h"

#include <stdio.h>
#include <sys/prctl.h>
#include <sys/resource.h>

static int
no_dumps(void)
{
	struct rlimit rl = {0, 0};

	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0 || setrlimit(RLIMIT_CORE, &rl) != 0) {
		return PART_ERR_SYS;
	}
	return 0;
}

int
part_worker_start(const struct part_worker_opts *o, struct part_worker **out)
{
	struct part_worker *w = NULL;
	int r;

	*out = NULL;
	if ((r = part_secmem_init(o != NULL ? o->partition : NULL, NULL)) != 0 ||
	    (r = part_worker_open(o, &w)) != 0 || (r = no_dumps()) != 0) {
		goto out;
	}
	/* Here: setgroups/setgid/setuid to the configured account, then no_dumps() again
	 * (prctl(2): a uid change resets the dumpable flag). */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
		r = PART_ERR_SYS;
		goto out;
	}
	/* Here: the seccomp filter (arch check, allow-list, errno for harmless probes). */
	*out = w;
	w = NULL; /* transferred */
	r = 0;
out:
	part_worker_free(w);
	return r;
}
