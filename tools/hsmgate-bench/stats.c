/*
 * tools/hsmgate-bench/stats.c — the latency histogram and the readings of server processes
 * from /proc (CPU ticks from /proc/PID/stat, RSS and peak RSS from VmRSS and VmHWM in
 * /proc/PID/status, descendants from /proc/PID/task/TID/children).
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tools/hsmgate-bench/bench.h"

/* ---- histogram ----------------------------------------------------------------------------- */

static size_t
hist_index(uint64_t ns)
{
	unsigned shift;
	size_t idx;

	if (ns < 2 * BENCH_HIST_SUB) {
		return (size_t)ns;
	}
	/* shift such that ns >> shift lies in [64, 128): 64 sub-buckets per power of two */
	shift = (unsigned)(63 - __builtin_clzll(ns)) - 6;
	idx = (size_t)BENCH_HIST_SUB * (shift + 1) + (size_t)((ns >> shift) - BENCH_HIST_SUB);
	if (idx >= BENCH_HIST_BUCKETS) {
		idx = BENCH_HIST_BUCKETS - 1;
	}
	return idx;
}

/* The largest value that falls into bucket idx (the inverse of hist_index). */
static uint64_t
hist_upper(size_t idx)
{
	unsigned shift;
	uint64_t sub;

	if (idx < 2 * BENCH_HIST_SUB) {
		return (uint64_t)idx;
	}
	shift = (unsigned)(idx / BENCH_HIST_SUB) - 1;
	sub = (uint64_t)(idx % BENCH_HIST_SUB) + BENCH_HIST_SUB;
	return ((sub + 1) << shift) - 1;
}

void
bench_hist_add(struct bench_hist *h, uint64_t ns)
{
	h->bucket[hist_index(ns)]++;
	h->count++;
	h->sum_ns += ns;
	if (ns > h->max_ns) {
		h->max_ns = ns;
	}
}

void
bench_hist_merge(struct bench_hist *into, const struct bench_hist *from)
{
	size_t i;

	for (i = 0; i < BENCH_HIST_BUCKETS; i++) {
		into->bucket[i] += from->bucket[i];
	}
	into->count += from->count;
	into->sum_ns += from->sum_ns;
	if (from->max_ns > into->max_ns) {
		into->max_ns = from->max_ns;
	}
}

uint64_t
bench_hist_quantile(const struct bench_hist *h, double q)
{
	uint64_t rank, seen = 0, v;
	size_t i;

	if (h->count == 0) {
		return 0;
	}
	/* the smallest value with at least q * count values at or below it */
	rank = (uint64_t)(q * (double)h->count + 0.999999);
	if (rank == 0) {
		rank = 1;
	}
	for (i = 0; i < BENCH_HIST_BUCKETS; i++) {
		seen += h->bucket[i];
		if (seen >= rank) {
			v = hist_upper(i);
			/* a bucket's edge can lie above the largest value actually seen */
			return v < h->max_ns ? v : h->max_ns;
		}
	}
	return h->max_ns;
}

/* ---- /proc --------------------------------------------------------------------------------- */

/* Reads a small /proc file into buf (NUL-terminated). Returns 0 or BENCH_ERR_SYS. */
static int
read_small(const char *path, char *buf, size_t size)
{
	FILE *f;
	size_t n;

	if ((f = fopen(path, "r")) == NULL) {
		return BENCH_ERR_SYS;
	}
	n = fread(buf, 1, size - 1, f);
	buf[n] = '\0';
	fclose(f);
	return 0;
}

/* utime + stime of pid: fields 14 and 15 of /proc/PID/stat, counted after the ')' that ends
 * the command name (which may itself contain spaces and parentheses, proc(5)). */
static int
proc_ticks(pid_t pid, uint64_t *ticks)
{
	char path[64], buf[1024], *p, *tok, *save = NULL;
	unsigned long long ut = 0, st = 0;
	int field;

	*ticks = 0;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (read_small(path, buf, sizeof(buf)) != 0 || (p = strrchr(buf, ')')) == NULL) {
		return BENCH_ERR_SYS;
	}
	field = 2;
	for (tok = strtok_r(p + 1, " ", &save); tok != NULL; tok = strtok_r(NULL, " ", &save)) {
		field++;
		if (field == 14) {
			ut = strtoull(tok, NULL, 10);
		} else if (field == 15) {
			st = strtoull(tok, NULL, 10);
			break;
		}
	}
	if (field != 15) {
		return BENCH_ERR_SYS;
	}
	*ticks = ut + st;
	return 0;
}

static void
proc_status(pid_t pid, struct bench_proc *pr)
{
	char path[64], buf[4096], *p;

	pr->hwm_kib = 0;
	pr->rss_kib = 0;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if (read_small(path, buf, sizeof(buf)) == 0) {
		if ((p = strstr(buf, "\nVmHWM:")) != NULL) {
			pr->hwm_kib = strtoull(p + 7, NULL, 10);
		}
		if ((p = strstr(buf, "\nVmRSS:")) != NULL) {
			pr->rss_kib = strtoull(p + 7, NULL, 10);
		}
	}
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	if (read_small(path, pr->comm, sizeof(pr->comm)) == 0) {
		pr->comm[strcspn(pr->comm, "\n")] = '\0';
	} else {
		snprintf(pr->comm, sizeof(pr->comm), "?");
	}
}

static int
procs_has(const struct bench_procs *ps, pid_t pid)
{
	size_t i;

	for (i = 0; i < ps->n; i++) {
		if (ps->p[i].pid == pid) {
			return 1;
		}
	}
	return 0;
}

/* Adds pid and, depth first, its descendants. A child list lives per thread (task), so every
 * task of a multi-threaded server is read. */
static void
procs_add_tree(struct bench_procs *ps, pid_t pid)
{
	char path[96], buf[4096], *tok, *save = NULL;
	struct bench_proc *pr;
	struct dirent *de;
	DIR *d;

	if (ps->n >= BENCH_MAX_PROCS || procs_has(ps, pid)) {
		return;
	}
	pr = &ps->p[ps->n];
	memset(pr, 0, sizeof(*pr));
	if (proc_ticks(pid, &pr->ticks) != 0) {
		return; /* gone meanwhile */
	}
	pr->pid = pid;
	proc_status(pid, pr);
	ps->n++;
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	if ((d = opendir(path)) == NULL) {
		return;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.') {
			continue;
		}
		snprintf(path, sizeof(path), "/proc/%d/task/%.20s/children", (int)pid, de->d_name);
		if (read_small(path, buf, sizeof(buf)) != 0) {
			continue;
		}
		for (tok = strtok_r(buf, " \n", &save); tok != NULL;
		     tok = strtok_r(NULL, " \n", &save)) {
			procs_add_tree(ps, (pid_t)strtol(tok, NULL, 10));
		}
	}
	closedir(d);
}

int
bench_procs_snapshot(const pid_t *roots, size_t nroots, struct bench_procs *out)
{
	uint64_t t;
	size_t i;

	out->n = 0;
	for (i = 0; i < nroots; i++) {
		if (proc_ticks(roots[i], &t) != 0) {
			return BENCH_ERR_SYS;
		}
		procs_add_tree(out, roots[i]);
	}
	return 0;
}

double
bench_procs_cpu_delta(const struct bench_procs *start, const struct bench_procs *end)
{
	uint64_t ticks = 0, before;
	long hz = sysconf(_SC_CLK_TCK);
	size_t i, j;

	for (i = 0; i < end->n; i++) {
		before = 0;
		for (j = 0; j < start->n; j++) {
			if (start->p[j].pid == end->p[i].pid) {
				before = start->p[j].ticks;
				break;
			}
		}
		if (end->p[i].ticks > before) {
			ticks += end->p[i].ticks - before;
		}
	}
	return (double)ticks / (double)(hz > 0 ? hz : 100);
}
