/*
 * tests/audit/test_log.c — audit/log.c: appends with completion callbacks, group commit in
 * both durability modes, checkpoints by count, by time (heartbeats) and at roll, reopen,
 * torn-tail repair with a recovery record, refusal to open a damaged log, fail-closed
 * after a write error, the writer lock, and concurrent appenders; the preallocated active
 * segment and the reader's rules for its zeros (record.c), aud_log_hold/release; the
 * active segment written with direct I/O (sync mode) or through the page cache.
 */
#include "audit/aud_int.h"
#include "tests/lib/test.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *tmp;
static char keyp[600], pubp[600], logd[600];

static int
suite_init(void)
{
	char prefix[512];

	if ((tmp = test_tmpdir_new("audit-log")) == NULL) {
		return -1;
	}
	snprintf(prefix, sizeof(prefix), "%s/k", tmp);
	snprintf(keyp, sizeof(keyp), "%s.key", prefix);
	snprintf(pubp, sizeof(pubp), "%s.pub", prefix);
	return aud_key_generate(prefix) == 0 ? 0 : -1;
}

static int
suite_cleanup(void)
{
	test_tmpdir_remove(tmp);
	return 0;
}

static void
fresh_dir(const char *tag)
{
	snprintf(logd, sizeof(logd), "%s/%s", tmp, tag);
}

static void
opts(struct aud_log_options *o)
{
	aud_log_options_init(o);
	o->dir = logd;
	o->origin = "hsmgate.test/audit/gw1";
	o->key_path = keyp;
}

static struct aud_event *
mk_event(unsigned i)
{
	struct aud_event *ev = NULL;
	const char *sids[] = {"allow-sign"};

	CU_ASSERT_FATAL(aud_event_new(&ev, "keys", "sign") == 0);
	CU_ASSERT(aud_event_set_initiator(ev, "tenant/acme/user/alice", NULL, AUD_INITIATOR_USER,
	                                  AUD_CRED_APIKEY, "192.0.2.7") == 0);
	CU_ASSERT(aud_event_set_target(ev, "crn:hsmgate:acme:partition:p1:key:k1", "k1",
	                               AUD_TARGET_KEY) == 0);
	CU_ASSERT(aud_event_set_correlation(ev, 7, i) == 0);
	CU_ASSERT(aud_event_set_ckrv(ev, 0) == 0);
	CU_ASSERT(aud_event_set_policy(ev, AUD_POLICY_ALLOW, sids, 1) == 0);
	return ev;
}

static int
append_n(struct aud_log *log, unsigned n)
{
	uint64_t seq = 0;
	unsigned i;
	int r = 0;

	for (i = 0; i < n && r == 0; i++) {
		struct aud_event *ev = mk_event(i);

		r = aud_log_append(log, ev, NULL, NULL, &seq);
		aud_event_free(ev);
	}
	return r != 0 ? r : aud_log_wait(log, seq);
}

static int
verify_dir(struct aud_verify_result *res)
{
	struct aud_verify_options vo;

	aud_verify_options_init(&vo);
	vo.dir = logd;
	vo.pubkey_path = pubp;
	return aud_log_verify(&vo, res);
}

/* Counts records of a type ('*': all) across the log. */
static unsigned
count_type(char type)
{
	struct aud_reader *rd = NULL;
	const char *line;
	size_t len;
	uint64_t seg, no;
	unsigned n = 0;

	CU_ASSERT_FATAL(aud_reader_open(&rd, logd) == 0);
	while (aud_reader_next(rd, &line, &len, &seg, &no, NULL) == 0) {
		struct aud_record_view rec;

		if (aud_record_parse(line, len, &rec) == 0 && (type == '*' || rec.type == type)) {
			n++;
		}
	}
	aud_reader_free(rd);
	return n;
}

/* Whether the log's last R (repair) record holds `a` and, unless NULL, `b`. */
static int
repair_has(const char *a, const char *b)
{
	struct aud_reader *rd = NULL;
	const char *line;
	size_t len;
	uint64_t seg, no;
	int saw = 0;

	CU_ASSERT_FATAL(aud_reader_open(&rd, logd) == 0);
	while (aud_reader_next(rd, &line, &len, &seg, &no, NULL) == 0) {
		struct aud_record_view rec;

		if (aud_record_parse(line, len, &rec) == 0 && rec.type == 'R') {
			saw = memmem(rec.payload, rec.payload_len, a, strlen(a)) != NULL &&
			      (b == NULL ||
			       memmem(rec.payload, rec.payload_len, b, strlen(b)) != NULL);
		}
	}
	aud_reader_free(rd);
	return saw;
}

static void
test_open_append_close_verify(void)
{
	struct aud_log_options o;
	struct aud_log *log = NULL;
	struct aud_verify_result res;

	fresh_dir("basic");
	opts(&o);
	CU_ASSERT_FATAL(aud_log_open(&log, &o) == 0);
	CU_ASSERT(append_n(log, 25) == 0);
	CU_ASSERT(aud_log_failed(log) == 0);
	CU_ASSERT(aud_log_close(log) == 0);
	/* S, C (start), 25 E, C (shutdown) */
	CU_ASSERT(count_type('*') == 28);
	CU_ASSERT(count_type('S') == 1);
	CU_ASSERT(count_type('C') == 2);
	CU_ASSERT(verify_dir(&res) == 0);
	CU_ASSERT(res.records == 28);
	CU_ASSERT(res.checkpoints == 2);
	CU_ASSERT(res.unsealed == 0);
}

struct cbstate {
	pthread_mutex_t mu;
	unsigned calls, bad;
	uint64_t last;
};

static void
done_cb(void *arg, uint64_t seq, int status)
{
	struct cbstate *s = arg;

	pthread_mutex_lock(&s->mu);
	s->calls++;
	if (status != 0 || (s->calls > 1 && seq <= s->last)) {
		s->bad++;
	}
	s->last = seq;
	pthread_mutex_unlock(&s->mu);
}

static void
callbacks_in_mode(enum aud_durability d, const char *tag)
{
	struct aud_log_options o;
	struct aud_log *log = NULL;
	struct cbstate s = {PTHREAD_MUTEX_INITIALIZER, 0, 0, 0};
	struct aud_verify_result res;
	uint64_t seq = 0;
	unsigned i;

	fresh_dir(tag);
	opts(&o);
	o.durability = d;
	o.batch_max = d == AUD_DURABILITY_ASYNC ? 7 : o.batch_max; /* the partial-take path */
	CU_ASSERT_FATAL(aud_log_open(&log, &o) == 0);
	for (i = 0; i < 500; i++) {
		struct aud_event *ev = mk_event(i);

		CU_ASSERT(aud_log_append(log, ev, done_cb, &s, &seq) == 0);
		aud_event_free(ev);
	}
	CU_ASSERT(aud_log_wait(log, seq) == 0);
	CU_ASSERT(aud_log_durable_seq(log) >= seq);
	CU_ASSERT(aud_log_close(log) == 0);
	CU_ASSERT(s.calls == 500);
	CU_ASSERT(s.bad == 0);
	CU_ASSERT(verify_dir(&res) == 0);
}

static void
test_callbacks_sync(void)
{
	callbacks_in_mode(AUD_DURABILITY_SYNC, "cb-sync");
}

static void
test_callbacks_async(void)
{
	callbacks_in_mode(AUD_DURABILITY_ASYNC, "cb-async");
}

/* Which thread ran a record's callback. */
struct whostate {
	pthread_mutex_t mu;
	pthread_t caller;
	unsigned calls, by_caller, bad;
};

static void
who_cb(void *arg, uint64_t seq, int status)
{
	struct whostate *s = arg;

	(void)seq;
	pthread_mutex_lock(&s->mu);
	s->calls++;
	s->by_caller += pthread_equal(pthread_self(), s->caller) != 0;
	s->bad += status != 0;
	pthread_mutex_unlock(&s->mu);
}

/* One append with who_cb; its seq. */
static uint64_t
append_who(struct aud_log *log, struct whostate *s, unsigned i)
{
	struct aud_event *ev = mk_event(i);
	uint64_t seq = 0;

	CU_ASSERT(aud_log_append(log, ev, who_cb, s, &seq) == 0);
	aud_event_free(ev);
	return seq;
}

/* Async: a batch that needs no sync is written by the appending thread, which runs its
 * callbacks before aud_log_append (or the release of a hold) returns, instead of waking the
 * writer; a batch with a checkpoint, which is synced, still goes to the writer. */
static void
test_async_inline(void)
{
	struct whostate s = {PTHREAD_MUTEX_INITIALIZER, pthread_self(), 0, 0, 0};
	struct aud_log_options o;
	struct aud_log *log = NULL;
	struct aud_verify_result res;
	unsigned i, before, inline_seen = 0, n = 0;
	uint64_t seq = 0;

	fresh_dir("async-inline");
	opts(&o);
	o.durability = AUD_DURABILITY_ASYNC;
	o.checkpoint_every = 1000;
	CU_ASSERT_FATAL(aud_log_open(&log, &o) == 0);
	/* The writer may still be finishing the start-up batch: then the append wakes it, and
	 * the next one finds it waiting. */
	for (i = 0; i < 100 && !inline_seen; i++) {
		before = s.by_caller;
		seq = append_who(log, &s, n++);
		inline_seen = s.by_caller == before + 1; /* ran before the append returned */
		CU_ASSERT(aud_log_wait(log, seq) == 0);
	}
	CU_ASSERT_FATAL(inline_seen);
	CU_ASSERT(aud_log_durable_seq(log) >= seq);
	/* held: nothing is written until the release, which writes the three at once */
	aud_log_hold(log);
	before = s.calls;
	for (i = 0; i < 3; i++) {
		seq = append_who(log, &s, n++);
	}
	aud_log_release(log);
	CU_ASSERT(aud_log_wait(log, seq) == 0);
	CU_ASSERT_EQUAL(s.calls, before + 3);
	CU_ASSERT(aud_log_close(log) == 0);
	CU_ASSERT_EQUAL(s.calls, n);
	CU_ASSERT_EQUAL(s.bad, 0);
	CU_ASSERT(verify_dir(&res) == 0);

	/* every record a checkpoint follows: each batch is synced, by the writer */
	fresh_dir("async-ckpt");
	opts(&o);
	o.durability = AUD_DURABILITY_ASYNC;
	o.checkpoint_every = 1;
	memset(&s, 0, sizeof(s));
	pthread_mutex_init(&s.mu, NULL);
	s.caller = pthread_self();
	CU_ASSERT_FATAL(aud_log_open(&log, &o) == 0);
	for (i = 0; i < 20; i++) {
		CU_ASSERT(aud_log_wait(log, append_who(log, &s, i)) == 0);
	}
	CU_ASSERT(aud_log_close(log) == 0);
	CU_ASSERT_EQUAL(s.calls, 20);
	CU_ASSERT_EQUAL(s.by_caller, 0);
	CU_ASSERT(verify_dir(&res) == 0);
	CU_ASSERT(count_type('C') >= 20);
	pthread_mutex_destroy(&s.mu);
}

static void
test_checkpoint_every_n(void)
{
	struct aud_log_options o;
	struct aud_log *log = NULL;
	struct aud_verify_result res;

	fresh_dir("every");
	opts(&o);
	o.checkpoint_every = 10;
	CU_ASSERT_FATAL(aud_log_open(&log, &o) == 0);
	CU_ASSERT(append_n(log, 35) == 0);
	CU_ASSERT(aud_log_close(log) == 0);
	/* start + after 10, 20, 30 + shutdown (the S record counts toward the first 10) */
	CU_ASSERT(count_type('C') == 5);
	CU_ASSERT(verify_dir(&res) == 0);
	CU_ASSERT(res.checkpoints == 5);
}

static void
test_heartbeat_when_idle(void)
{
	struct aud_log_options o;
	struct aud_log *log = NULL;
	struct aud_verify_result res;

	fresh_dir("heartbeat");
	opts(&o);
	o.checkpoint_ms = 40;
	CU_ASSERT_FATAL(aud_log_open(&log, &o) == 0);
	usleep(300 * 1000);
	CU_ASSERT(aud_log_close(log) == 0);
	CU_ASSERT(count_type('C') >= 4);
	CU_ASSERT(count_type('E') == 0);
	CU_ASSERT(verify_dir(&res) == 0);
}

static unsigned
count_segments(void)
{
	DIR *d = opendir(logd);
	struct dirent *de;
	unsigned n = 0;
	uint64_t f;

	CU_ASSERT_FATAL(d != NULL);
	while ((de = readdir(d)) != NULL) {
		n += aud_segment_parse(de->d_name, &f);
	}
	closedir(d);
	return n;
}

static void
test_segment_roll_and_reopen(void)
{
	struct aud_log_options o;
	struct aud_log *log = NULL;
	struct aud_verify_result res;

	fresh_dir("roll");
	opts(&o);
	o.segment_bytes = 8192;
	CU_ASSERT_FATAL(aud_log_open(&log, &o) == 0);
	CU_ASSERT(append_n(log, 120) == 0);
	CU_ASSERT(aud_log_close(log) == 0);
	CU_ASSERT(count_segments() >= 5);
	CU_ASSERT(verify_dir(&res) == 0);
	/* Reopen continues the same chain. */
	CU_ASSERT_FATAL(aud_log_open(&log, &o) == 0);
	CU_ASSERT(append_n(log, 30) == 0);
	CU_ASSERT(aud_log_close(log) == 0);
	CU_ASSERT(count_type('S') == 2);
	CU_ASSERT(count_type('E') == 150);
	CU_ASSERT(verify_dir(&res) == 0);
}

static char *
last_segment_path(void)
{
	DIR *d = opendir(logd);
	struct dirent *de;
	uint64_t f, best = 0;
	int found = 0;
	char name[64], *p = NULL;

	CU_ASSERT_FATAL(d != NULL);
	while ((de = readdir(d)) != NULL) {
		if (aud_segment_parse(de->d_name, &f) && (!found || f > best)) {
			best = f;
			found = 1;
		}
	}
	closedir(d);
	aud_segment_name(best, name);
	CU_ASSERT_FATAL(asprintf(&p, "%s/%s", logd, name) > 0);
	return p;
}

static void
append_raw(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_APPEND);

	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT(write(fd, s, strlen(s)) == (ssize_t)strlen(s));
	close(fd);
}

/* The open flags of this process's descriptor on the file at path, or -1 if none. */
static long
fd_flags_of(const char *path)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	long flags = -1;

	CU_ASSERT_FATAL(d != NULL);
	while (flags < 0 && (de = readdir(d)) != NULL) {
		char link[300], target[PATH_MAX], line[128];
		ssize_t n;
		FILE *f;

		snprintf(link, sizeof(link), "/proc/self/fd/%s", de->d_name);
		if ((n = readlink(link, target, sizeof(target) - 1)) <= 0) {
			continue;
		}
		target[n] = '\0';
		if (strcmp(target, path) != 0) {
			continue;
		}
		snprintf(link, sizeof(link), "/proc/self/fdinfo/%s", de->d_name);
		if ((f = fopen(link, "r")) == NULL) {
			continue;
		}
		while (fgets(line, sizeof(line), f) != NULL) {
			if (sscanf(line, "flags: %lo", &flags) == 1) {
				break;
			}
		}
		fclose(f);
	}
	closedir(d);
	return flags;
}

/* Whether the file system of the test directory takes O_DIRECT (tmpfs before Linux 6.6
 * does not). */
static int
fs_takes_direct(void)
{
	char path[700];
	int fd;

	snprintf(path, sizeof(path), "%s/direct-probe", tmp);
	fd = open(path, O_WRONLY | O_CREAT | O_DIRECT, 0600);
	if (fd >= 0) {
		close(fd);
		unlink(path);
	}
	return fd >= 0;
}

/*
 * Sync mode writes the active segment with O_DIRECT, in whole blocks, rewriting the last
 * partial one from memory (log.c, seg_write_direct); async mode, or direct_io 0, writes
 * through the page cache. Each way, across block boundaries at odd offsets, segment rolls
 * and a reopen at an unaligned end (the partial block read back), the log verifies: a
 * rewritten block that lost a byte of an earlier record would break its hashes.
 */
static void
test_direct_and_buffered(void)
{
	static const struct {
		const char *tag;
		enum aud_durability durability;
		int direct_io;
	} modes[] = {
	        {"direct", AUD_DURABILITY_SYNC, 1},
	        {"buffered", AUD_DURABILITY_SYNC, 0},
	        {"async", AUD_DURABILITY_ASYNC, 1},
	};
	int direct_ok = fs_takes_direct();
	size_t i;

	for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		struct aud_log_options o;
		struct aud_log *log = NULL;
		struct aud_verify_result res;
		char *seg;
		long flags;
		int want;

		fresh_dir(modes[i].tag);
		opts(&o);
		o.durability = modes[i].durability;
		o.direct_io = modes[i].direct_io;
		o.segment_bytes = 20000; /* not a multiple of the block size */
		want = modes[i].direct_io && modes[i].durability == AUD_DURABILITY_SYNC &&
		       direct_ok;
		CU_ASSERT_FATAL(aud_log_open(&log, &o) == 0);
		CU_ASSERT(append_n(log, 37) == 0);
		seg = last_segment_path();
		flags = fd_flags_of(seg);
		CU_ASSERT(flags >= 0);
		CU_ASSERT(flags >= 0 && ((flags & O_DIRECT) != 0) == want);
		free(seg);
		CU_ASSERT(aud_log_close(log) == 0);
		CU_ASSERT(count_segments() >= 2);

		/* Reopened: the last segment ends mid-block. */
		CU_ASSERT_FATAL(aud_log_open(&log, &o) == 0);
		CU_ASSERT(append_n(log, 41) == 0);
		CU_ASSERT(aud_log_close(log) == 0);
		CU_ASSERT(count_type('S') == 2);
		CU_ASSERT(count_type('E') == 78);
		CU_ASSERT(verify_dir(&res) == 0);
	}
}

static void
test_torn_tail_repaired(void)
{
	struct aud_log_options o;
	struct aud_log *log = NULL;
	struct aud_verify_result res;
	char *seg;

	fresh_dir("torn");
	opts(&o);
	CU_ASSERT_FATAL(aud_log_open(&log, &o) == 0);
	CU_ASSERT(append_n(log, 10) == 0);
	CU_ASSERT(aud_log_close(log) == 0);
	seg = last_segment_path();
	/* What a crash mid-write leaves: the start of a line, no newline. */
	append_raw(seg, "GWA1 14 17000000 E\t{\"eventTime\":\"20");
	CU_ASSERT(verify_dir(&res) == 0); /* verify reports, it does not fail, on a torn tail */
	CU_ASSERT(strstr(res.detail, "unterminated") != NULL);
	CU_ASSERT_FATAL(aud_log_open(&log, &o) == 0);
	CU_ASSERT(aud_log_close(log) == 0);
	CU_ASSERT(count_type('R') == 1);
	CU_ASSERT(verify_dir(&res) == 0);
	CU_ASSERT(res.detail[0] == '\0');
	CU_ASSERT(repair_has("\"cutBytes\":35", "hsmgate.audit.repair"));
	free(seg);
}

static void
test_damage_refuses_open(void)
{
	struct aud_log_options o;
	struct aud_log *log = NULL;
	char *seg, *buf;
	FILE *f;
	long n;

	fresh_dir("damaged");
	opts(&o);
	CU_ASSERT_FATAL(aud_log_open(&log, &o) == 0);
	CU_ASSERT(append_n(log, 10) == 0);
	CU_ASSERT(aud_log_close(log) == 0);
	seg = last_segment_path();
	f = fopen(seg, "r+");
	CU_ASSERT_FATAL(f != NULL);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	buf = malloc((size_t)n);
	fseek(f, 0, SEEK_SET);
	CU_ASSERT(fread(buf, 1, (size_t)n, f) == (size_t)n);
	/* Flip one byte inside the third line's payload. */
	{
		char *p = buf;
		int i;

		for (i = 0; i < 2; i++) {
			p = strchr(p, '\n') + 1;
		}
		p = strchr(p, '{') + 5;
		*p ^= 1;
	}
	fseek(f, 0, SEEK_SET);
	CU_ASSERT(fwrite(buf, 1, (size_t)n, f) == (size_t)n);
	fclose(f);
	CU_ASSERT(aud_log_open(&log, &o) == AUD_ERR_TAMPER);
	CU_ASSERT(log == NULL);
	free(buf);
	free(seg);
}

/* Appends n NUL bytes to path, as the writer's preallocation leaves them. */
static void
append_zeros(const char *path, size_t n)
{
	char *z = calloc(1, n);
	int fd = open(path, O_WRONLY | O_APPEND);

	CU_ASSERT_FATAL(z != NULL && fd >= 0);
	CU_ASSERT(write(fd, z, n) == (ssize_t)n);
	close(fd);
	free(z);
}

/* The size of path; *nul set if it holds a NUL byte, *lf_end if its last byte is a LF. */
static off_t
file_shape(const char *path, int *nul, int *lf_end)
{
	FILE *f = fopen(path, "r");
	int c, last = -1;
	off_t n = 0;

	CU_ASSERT_FATAL(f != NULL);
	*nul = 0;
	while ((c = fgetc(f)) != EOF) {
		*nul |= c == 0;
		last = c;
		n++;
	}
	fclose(f);
	*lf_end = last == '\n';
	return n;
}

static void
test_active_segment_preallocated(void)
{
	struct aud_log_options o;
	struct aud_log *log = NULL;
	struct aud_verify_result res;
	struct aud_reader *rd = NULL;
	const char *line;
	size_t len, torn = 1;
	uint64_t s, no;
	unsigned n = 0, after = 0;
	int nul, lf;
	char *seg;

	fresh_dir("prealloc");
	opts(&o);
	o.checkpoint_ms = 3600 * 1000;
	CU_ASSERT_FATAL(aud_log_open(&log, &o) == 0);
	CU_ASSERT(append_n(log, 20) == 0);
	seg = last_segment_path();
	/* While the writer runs: zeros after the data, and the log verifies. */
	CU_ASSERT(file_shape(seg, &nul, &lf) >= 1 << 20);
	CU_ASSERT(nul && !lf);
	CU_ASSERT(verify_dir(&res) == 0);
	CU_ASSERT(res.records == 22); /* S, the checkpoint at open, 20 E */
	/* A follower stops at the zeros, and reads on once records are written there. */
	CU_ASSERT_FATAL(aud_reader_open(&rd, logd) == 0);
	while (aud_reader_next(rd, &line, &len, &s, &no, &torn) == 0) {
		n++;
	}
	CU_ASSERT(n == count_type('*'));
	CU_ASSERT(torn == 0);
	CU_ASSERT(append_n(log, 5) == 0);
	while (aud_reader_next(rd, &line, &len, &s, &no, &torn) == 0) {
		after++;
	}
	CU_ASSERT(after == 5);
	aud_reader_free(rd);
	/* Closing cuts the zeros: only the active segment ever has them. */
	CU_ASSERT(aud_log_close(log) == 0);
	(void)file_shape(seg, &nul, &lf);
	CU_ASSERT(!nul && lf);
	CU_ASSERT(verify_dir(&res) == 0);
	free(seg);
}

static void
test_zero_tail_after_crash(void)
{
	struct aud_log_options o;
	struct aud_log *log = NULL;
	struct aud_verify_result res;
	int nul, lf;
	char *seg;

	fresh_dir("zerotail");
	opts(&o);
	CU_ASSERT_FATAL(aud_log_open(&log, &o) == 0);
	CU_ASSERT(append_n(log, 10) == 0);
	CU_ASSERT(aud_log_close(log) == 0);
	seg = last_segment_path();
	/* What a killed writer leaves: its zero-filled room after the last record. */
	append_zeros(seg, 70000);
	CU_ASSERT(verify_dir(&res) == 0);
	CU_ASSERT(res.detail[0] == '\0'); /* zeros are not a torn line */
	/* The next start cuts them without a repair record. */
	CU_ASSERT_FATAL(aud_log_open(&log, &o) == 0);
	CU_ASSERT(aud_log_close(log) == 0);
	CU_ASSERT(count_type('R') == 0);
	CU_ASSERT(count_type('S') == 2);
	(void)file_shape(seg, &nul, &lf);
	CU_ASSERT(!nul && lf);
	CU_ASSERT(verify_dir(&res) == 0);
	free(seg);
}

static void
test_torn_line_before_zeros_repaired(void)
{
	struct aud_log_options o;
	struct aud_log *log = NULL;
	struct aud_verify_result res;
	int nul, lf;
	char *seg;

	fresh_dir("tornzero");
	opts(&o);
	CU_ASSERT_FATAL(aud_log_open(&log, &o) == 0);
	CU_ASSERT(append_n(log, 10) == 0);
	CU_ASSERT(aud_log_close(log) == 0);
	seg = last_segment_path();
	append_raw(seg, "GWA1 14 17000000 E\t{\"eventTime\":\"20");
	append_zeros(seg, 5000);
	CU_ASSERT(verify_dir(&res) == 0);
	CU_ASSERT(strstr(res.detail, "35 bytes of an unterminated") != NULL);
	CU_ASSERT_FATAL(aud_log_open(&log, &o) == 0);
	CU_ASSERT(aud_log_close(log) == 0);
	CU_ASSERT(count_type('R') == 1);
	/* The torn bytes are cut and counted; the zeros after them are not. */
	CU_ASSERT(repair_has("\"cutBytes\":35", NULL));
	(void)file_shape(seg, &nul, &lf);
	CU_ASSERT(!nul && lf);
	CU_ASSERT(verify_dir(&res) == 0);
	free(seg);
}

/* Damage the zero rule refuses: verify says "modified" at the next seq, open says tamper,
 * a reader stops with AUD_ERR_TAMPER. */
static void
expect_nul_damage(const struct aud_log_options *o, uint64_t next)
{
	struct aud_log *log = NULL;
	struct aud_verify_result res;
	struct aud_reader *rd = NULL;
	const char *line;
	size_t len;
	uint64_t s, no;
	int r;

	CU_ASSERT(verify_dir(&res) == AUD_ERR_VERIFY);
	CU_ASSERT(res.damage == AUD_DAMAGE_MODIFIED);
	CU_ASSERT(res.seq == next);
	CU_ASSERT(strstr(res.detail, "after the end of the data") != NULL);
	CU_ASSERT(aud_log_open(&log, o) == AUD_ERR_TAMPER);
	CU_ASSERT(log == NULL);
	CU_ASSERT_FATAL(aud_reader_open(&rd, logd) == 0);
	while ((r = aud_reader_next(rd, &line, &len, &s, &no, NULL)) == 0) {
	}
	CU_ASSERT(r == AUD_ERR_TAMPER);
	aud_reader_free(rd);
}

/* A closed log of 10 events (S, C, 10 E, C: the next record would be 13) whose last
 * segment then gets NULs up to `pad` bytes past a 512-byte boundary plus `extra` more. */
static char *
log_then_zeros(const char *name, const struct aud_log_options *o, size_t pad, size_t extra,
               size_t *end, size_t *zeros)
{
	struct aud_log *log = NULL;
	int nul, lf;
	off_t n;
	size_t z;
	char *seg;

	fresh_dir(name);
	CU_ASSERT_FATAL(aud_log_open(&log, o) == 0);
	CU_ASSERT(append_n(log, 10) == 0);
	CU_ASSERT(aud_log_close(log) == 0);
	seg = last_segment_path();
	n = file_shape(seg, &nul, &lf);
	z = (size_t)(512 - n % 512) + pad + extra;
	append_zeros(seg, z);
	if (end != NULL) {
		*end = (size_t)n;
		*zeros = z;
	}
	return seg;
}

/* Data after zeros that no power loss leaves: a run of NULs ending inside a sector. */
static void
test_data_after_zeros_refused(void)
{
	struct aud_log_options o;
	char *seg;

	opts(&o);
	seg = log_then_zeros("zerodata", &o, 2 * 512, 7, NULL, NULL);
	append_raw(seg, "GWA1 13 17000000 E\t{}\n");
	append_zeros(seg, 100);
	expect_nul_damage(&o, 13);
	free(seg);
}

/* Further than AUD_TORN_WINDOW from the first NUL: more than the writer has unsynced. */
static void
test_data_beyond_torn_window_refused(void)
{
	struct aud_log_options o;
	char *seg;

	opts(&o);
	seg = log_then_zeros("zerofar", &o, (size_t)AUD_TORN_WINDOW, 0, NULL, NULL);
	append_raw(seg, "GWA1 13 17000000 E\t{}\n");
	expect_nul_damage(&o, 13);
	free(seg);
}

/* Sectors of data after zeros, then a second run of zeros that begins inside a sector
 * and is followed by data: not the shape of one torn write. */
static void
test_unaligned_second_gap_refused(void)
{
	struct aud_log_options o;
	char line[512];
	char *seg;

	opts(&o);
	seg = log_then_zeros("zerotwice", &o, 512, 0, NULL, NULL);
	memset(line, 'x', sizeof(line));
	line[sizeof(line) - 1] = '\0';
	append_raw(seg, line); /* 511 bytes of data: the next NUL is not on a boundary */
	append_zeros(seg, 513);
	append_raw(seg, "GWA1 13 17000000 E\t{}\n");
	expect_nul_damage(&o, 13);
	free(seg);
}

/* What a power loss during the last write leaves: its first sectors never reached the
 * disk (zeros), a later one did. Verify calls it a torn write; start-up cuts it all with
 * a recovery record saying where the zeros began, and the log verifies again. */
static void
test_torn_write_after_zeros_repaired(void)
{
	struct aud_log_options o;
	struct aud_log *log = NULL;
	struct aud_verify_result res;
	const char *data = "tail of record 14\nGWA1 15 17000000 E\t{\"eventTime\"";
	char cut[64], at[64];
	size_t end, zeros;
	int nul, lf;
	char *seg;

	opts(&o);
	seg = log_then_zeros("tornwrite", &o, 1024, 0, &end, &zeros);
	append_raw(seg, data);
	append_zeros(seg, 3000); /* the rest of the preallocated room */
	CU_ASSERT(verify_dir(&res) == 0);
	CU_ASSERT(strstr(res.detail, "torn write") != NULL);
	CU_ASSERT(res.records == 13);
	CU_ASSERT_FATAL(aud_log_open(&log, &o) == 0);
	CU_ASSERT(aud_log_close(log) == 0);
	CU_ASSERT(count_type('R') == 1);
	snprintf(cut, sizeof(cut), "\"cutBytes\":%zu,", zeros + strlen(data));
	snprintf(at, sizeof(at), "\"zerosAt\":%zu,", end);
	CU_ASSERT(repair_has(cut, at));
	(void)file_shape(seg, &nul, &lf);
	CU_ASSERT(!nul && lf);
	CU_ASSERT(verify_dir(&res) == 0);
	CU_ASSERT(res.detail[0] == '\0');
	free(seg);
}

static void
test_nul_inside_line_refused(void)
{
	struct aud_log_options o;
	struct aud_log *log = NULL;
	char *seg;
	FILE *f;

	fresh_dir("nulline");
	opts(&o);
	CU_ASSERT_FATAL(aud_log_open(&log, &o) == 0);
	CU_ASSERT(append_n(log, 10) == 0);
	CU_ASSERT(aud_log_close(log) == 0);
	seg = last_segment_path();
	/* Zero one byte of the first line (record 0): the records after it are data. */
	f = fopen(seg, "r+");
	CU_ASSERT_FATAL(f != NULL);
	CU_ASSERT(fseek(f, 10, SEEK_SET) == 0);
	CU_ASSERT(fputc(0, f) == 0);
	fclose(f);
	expect_nul_damage(&o, 0);
	free(seg);
}

static void
test_zeros_in_earlier_segment_refused(void)
{
	struct aud_log_options o;
	struct aud_log *log = NULL;
	char first[700];

	fresh_dir("zeroearly");
	opts(&o);
	o.segment_bytes = 8192;
	CU_ASSERT_FATAL(aud_log_open(&log, &o) == 0);
	CU_ASSERT(append_n(log, 40) == 0);
	CU_ASSERT(aud_log_close(log) == 0);
	CU_ASSERT_FATAL(count_segments() >= 2);
	{
		char name[64];
		struct aud_reader *rd = NULL;
		const char *line;
		size_t len;
		uint64_t s, no, next = 0;

		/* The first segment's records: damage is reported at the seq after them. */
		CU_ASSERT_FATAL(aud_reader_open(&rd, logd) == 0);
		while (aud_reader_next(rd, &line, &len, &s, &no, NULL) == 0 && s == 0) {
			next++;
		}
		aud_reader_free(rd);
		aud_segment_name(0, name);
		snprintf(first, sizeof(first), "%s/%s", logd, name);
		/* A finished segment never has a zero tail: the writer cuts it before the
		 * next segment exists. */
		append_zeros(first, 4096);
		expect_nul_damage(&o, next);
	}
}

static void
test_hold_release(void)
{
	struct aud_log_options o;
	struct aud_log *log = NULL;
	struct aud_verify_result res;
	struct aud_event *ev;
	uint64_t seq = 0;
	unsigned i;

	fresh_dir("hold");
	opts(&o);
	o.checkpoint_ms = 3600 * 1000; /* no heartbeat to wake the writer */
	CU_ASSERT_FATAL(aud_log_open(&log, &o) == 0);
	aud_log_release(log); /* without a hold: nothing */
	aud_log_hold(NULL);
	aud_log_release(NULL);
	/* Nested holds: records appended meanwhile are written after the last release. */
	aud_log_hold(log);
	aud_log_hold(log);
	for (i = 0; i < 8; i++) {
		ev = mk_event(i);
		CU_ASSERT(aud_log_append(log, ev, NULL, NULL, &seq) == 0);
		aud_event_free(ev);
	}
	aud_log_release(log);
	aud_log_release(log);
	CU_ASSERT(aud_log_wait(log, seq) == 0);
	/* A wait under a hold wakes the writer itself (else it would wait an hour). */
	aud_log_hold(log);
	ev = mk_event(9);
	CU_ASSERT(aud_log_append(log, ev, NULL, NULL, &seq) == 0);
	aud_event_free(ev);
	CU_ASSERT(aud_log_wait(log, seq) == 0);
	CU_ASSERT(aud_log_checkpoint(log, NULL) == 0);
	aud_log_release(log);
	CU_ASSERT(aud_log_close(log) == 0);
	CU_ASSERT(count_type('E') == 9);
	CU_ASSERT(verify_dir(&res) == 0);
}

static void
fail_closed_in_mode(enum aud_durability d, const char *tag)
{
	struct aud_log_options o;
	struct aud_log *log = NULL;
	struct cbstate s = {PTHREAD_MUTEX_INITIALIZER, 0, 0, 0};
	struct aud_verify_result res;
	struct aud_event *ev;
	uint64_t seq;
	int i;

	fresh_dir(tag);
	opts(&o);
	o.durability = d; /* async: the failing write is the appender's own (write_inline) */
	CU_ASSERT_FATAL(aud_log_open(&log, &o) == 0);
	CU_ASSERT(append_n(log, 5) == 0);
	aud_log_inject_fault(log, ENOSPC);
	ev = mk_event(99);
	CU_ASSERT(aud_log_append(log, ev, done_cb, &s, &seq) == 0);
	CU_ASSERT(aud_log_wait(log, seq) == AUD_ERR_FAILED);
	/* Its callback got the failure (callbacks run just after waiters are woken). */
	for (i = 0; i < 100 && s.calls == 0; i++) {
		usleep(10 * 1000);
	}
	CU_ASSERT(s.calls == 1 && s.bad == 1);
	CU_ASSERT(aud_log_failed(log) == AUD_ERR_FAILED);
	/* Sticky: later appends are refused even though the fault is gone. */
	aud_log_inject_fault(log, 0);
	CU_ASSERT(aud_log_append(log, ev, NULL, NULL, &seq) == AUD_ERR_FAILED);
	CU_ASSERT(aud_log_checkpoint(log, NULL) == AUD_ERR_FAILED);
	CU_ASSERT(aud_log_close(log) == AUD_ERR_FAILED);
	aud_event_free(ev);
	/* Reopening resumes; what was durable still verifies. */
	CU_ASSERT_FATAL(aud_log_open(&log, &o) == 0);
	CU_ASSERT(append_n(log, 3) == 0);
	CU_ASSERT(aud_log_close(log) == 0);
	CU_ASSERT(verify_dir(&res) == 0);
	CU_ASSERT(count_type('E') == 8);
}

static void
test_fail_closed(void)
{
	fail_closed_in_mode(AUD_DURABILITY_SYNC, "failclosed");
}

static void
test_fail_closed_async(void)
{
	fail_closed_in_mode(AUD_DURABILITY_ASYNC, "failclosed-async");
}

static void
test_second_writer_locked(void)
{
	struct aud_log_options o;
	struct aud_log *a = NULL, *b = NULL;

	fresh_dir("locked");
	opts(&o);
	CU_ASSERT_FATAL(aud_log_open(&a, &o) == 0);
	CU_ASSERT(aud_log_open(&b, &o) == AUD_ERR_LOCKED);
	CU_ASSERT(aud_log_close(a) == 0);
}

static void
test_bad_options(void)
{
	struct aud_log_options o;
	struct aud_log *log = NULL;

	fresh_dir("badopts");
	opts(&o);
	o.origin = "has space";
	CU_ASSERT(aud_log_open(&log, &o) != 0);
	opts(&o);
	o.checkpoint_every = 0;
	CU_ASSERT(aud_log_open(&log, &o) == AUD_ERR_INVALID);
	opts(&o);
	o.key_path = pubp; /* a public key cannot sign */
	CU_ASSERT(aud_log_open(&log, &o) == AUD_ERR_KEY);
}

struct worker {
	struct aud_log *log;
	unsigned n;
	int err;
};

static void *
worker_main(void *arg)
{
	struct worker *w = arg;

	w->err = append_n(w->log, w->n);
	return NULL;
}

static void
test_concurrent_appenders(void)
{
	struct aud_log_options o;
	struct aud_log *log = NULL;
	struct aud_verify_result res;
	struct worker w[4];
	pthread_t t[4];
	int i;

	fresh_dir("concurrent");
	opts(&o);
	o.checkpoint_every = 100;
	CU_ASSERT_FATAL(aud_log_open(&log, &o) == 0);
	for (i = 0; i < 4; i++) {
		w[i].log = log;
		w[i].n = 2000;
		w[i].err = -1;
		pthread_create(&t[i], NULL, worker_main, &w[i]);
	}
	for (i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		CU_ASSERT(w[i].err == 0);
	}
	CU_ASSERT(aud_log_close(log) == 0);
	CU_ASSERT(count_type('E') == 8000);
	CU_ASSERT(verify_dir(&res) == 0);
}

static const struct test_case cases[] = {
        {"open, append, close; the log verifies", test_open_append_close_verify},
        {"sync durability: one callback per record, in order", test_callbacks_sync},
        {"async durability: callbacks and a verifiable log", test_callbacks_async},
        {"async: the appender writes a batch that needs no sync itself", test_async_inline},
        {"a checkpoint every N records", test_checkpoint_every_n},
        {"heartbeat checkpoints while idle", test_heartbeat_when_idle},
        {"segments roll, sealed by checkpoints; reopen continues", test_segment_roll_and_reopen},
        {"sync: direct I/O; async or direct_io 0: page cache; both verify after rolls, reopen",
         test_direct_and_buffered},
        {"a torn final line is cut and a recovery record says so", test_torn_tail_repaired},
        {"damage before the tail refuses to open (tamper)", test_damage_refuses_open},
        {"the active segment is zero-filled ahead; a follower reads on; close cuts it",
         test_active_segment_preallocated},
        {"a zero tail left by a crash verifies and is cut at open", test_zero_tail_after_crash},
        {"a torn line before zeros is repaired", test_torn_line_before_zeros_repaired},
        {"data after zeros is refused (modified)", test_data_after_zeros_refused},
        {"data beyond the torn-write window is refused", test_data_beyond_torn_window_refused},
        {"a second, unaligned run of zeros before data is refused",
         test_unaligned_second_gap_refused},
        {"a write torn by a power loss (zeros, then data) is cut at open",
         test_torn_write_after_zeros_repaired},
        {"a NUL inside a line is refused (modified)", test_nul_inside_line_refused},
        {"zeros at the end of an earlier segment are refused",
         test_zeros_in_earlier_segment_refused},
        {"hold and release: nested, waits override", test_hold_release},
        {"fail closed after a write error, until reopened", test_fail_closed},
        {"async: a failed write fails closed too", test_fail_closed_async},
        {"a second writer is locked out", test_second_writer_locked},
        {"bad options and a public key as signing key are refused", test_bad_options},
        {"4 threads x 2000 appends", test_concurrent_appenders},
        {NULL, NULL},
};

void
test_register(void)
{
	test_suite_add("audit/log", suite_init, suite_cleanup, cases);
}
