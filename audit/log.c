/*
 * audit/log.c — the append-only log: recovery at open, the append path, the writer thread
 * with group commit, checkpoints and heartbeats, fail-closed.
 *
 * Everything that orders records happens under one mutex at append time: the sequence
 * number, the record time (never decreasing), the leaf and chain hashes, the compact Merkle
 * range and the formatted line, which goes into a queue buffer. The writer thread swaps the
 * queue out, writes it with as few write(2) calls as segment rolls allow, runs one
 * fdatasync for the batch (sync mode) and then calls each record's completion callback.
 * So an append costs two SHA-256 and a memcpy under the lock, and one fdatasync covers
 * every record that arrived while the previous one ran.
 *
 * A write or sync error makes the log sticky-failed (STYLE 7): every queued and later
 * append fails and the gateway must refuse requests until the log is reopened — the
 * reopen's recovery then cuts a torn tail and says so in a recovery record.
 *
 * The active segment is preallocated: zeros are written (and synced) ahead of the data in
 * chunks of AUD_PREALLOC, and records go in with pwrite at the data's end, so a group
 * commit's fdatasync writes data blocks only — an fdatasync after an append that grows the
 * file also writes the inode, about twice the time. A segment that is closed (roll, clean
 * close, open) is cut back to its data and synced, so only the active segment ever has a
 * zero tail; readers take a NUL at a line start as the end of the data (record.c).
 * In sync mode the active segment is written with O_DIRECT where the file system takes it:
 * whole blocks, the last partial one rewritten from memory (dio), each batch with
 * RWF_DSYNC instead of a separate fdatasync (AUDIT.md §5).
 * Each batch is synced before the next is written and holds at most AUD_TORN_WINDOW bytes
 * (async mode syncs before passing that), so a power loss can tear only that much, after
 * the last sync: the shape recovery cuts as a torn write (record.c, torn_write()).
 *
 * Waking the writer: an append signals cv_work only if the writer waits (w_waiting), and
 * after the mutex is released, so that the writer does not wake into a held lock. Between
 * aud_log_hold and aud_log_release appends do not wake it at all: the gateway holds the
 * log while it handles a batch of replies, and their records go to one fdatasync. In async
 * mode a batch that needs no sync, roll or zeros is written by the appender itself while
 * the writer waits (write_inline_unlock): no wake-up at all.
 */
#include "audit/aud_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

/* aud_log_append's stack buffer for the event's JSON (larger events go to the heap). */
#define AUD_APPEND_STACK 4096

/* The active segment's zero-filled room is extended by this much, and whenever a batch
 * would leave less than AUD_PREALLOC_LOW of it. 1 MiB: a few ms of zeros and one sync per
 * ~1000 records; more only delays a roll's and a start's cut (measured, AUDIT.md §5). */
#define AUD_PREALLOC     ((uint64_t)1 << 20)
#define AUD_PREALLOC_LOW ((uint64_t)64 << 10)

/* Direct I/O writes whole blocks of this size from buffers aligned to it: the page size,
 * a multiple of every logical block size Linux accepts. */
#define AUD_DIO_BLOCK ((uint64_t)4096)

struct pend {
	uint64_t seq;
	size_t end; /* offset just past this record's line in the queue buffer */
	int roll;   /* open a new segment (named after seq) before writing this record */
	int ckpt;   /* a checkpoint: always synced, in async mode too */
	aud_done_fn done;
	void *arg;
};

struct queue {
	struct aud_buf buf;
	struct pend *v;
	size_t n, cap;
};

struct aud_log {
	struct aud_log_options o;
	char *dir, *origin;
	EVP_PKEY *key;
	struct aud_keyhist *keyhist; /* keys in force and retired (rotate.c) */
	int lockfd, dirfd, segfd;
	/* The writer thread's (and, before it starts and after it ends, open's and close's):
	 * the active segment's data ends at seg_off, its zeros at seg_alloc (its size). */
	uint64_t seg_off, seg_alloc;
	uint64_t unsynced; /* bytes of the active segment written since its last sync */
	/* Direct I/O (sync mode, AUDIT.md §5): the segment is written in whole blocks from
	 * dio, which starts with the data of the segment's last partial block (seg_off %
	 * AUD_DIO_BLOCK bytes); zeros is AUD_PREALLOC of them, aligned, for the room. */
	int direct;
	char *dio, *dio_zeros;
	size_t dio_cap;
	pthread_t thr;
	int thr_started;
	pthread_mutex_t mu;
	pthread_cond_t cv_work, cv_done;

	/* Under mu. */
	uint64_t next_seq;
	uint64_t last_time;
	uint8_t chain[AUD_HASH_LEN];
	struct aud_range range;
	uint8_t prev_note[AUD_HASH_LEN];
	uint64_t last_ckpt_mono_ms;
	uint32_t since_ckpt;
	uint64_t seg_bytes; /* bytes in the current segment, queued ones included */
	struct queue q;
	uint64_t durable_n; /* records 0..durable_n-1 are durable */
	int failed;
	int stopping;
	int inject_errno;
	int w_waiting;     /* the writer waits on cv_work and nobody has signalled it yet */
	int kick;          /* signal cv_work once mu is released (kick_unlock) */
	unsigned hold;     /* aud_log_hold nesting: appends do not wake the writer */
	int held_appended; /* a record was queued while held */
	struct queue inl;  /* a batch written by the appending thread (write_inline_unlock) */
	int inl_busy;      /* its callbacks are running, outside mu */
};

static void write_inline_unlock(struct aud_log *log);

void
aud_log_options_init(struct aud_log_options *o)
{
	memset(o, 0, sizeof(*o));
	o->durability = AUD_DURABILITY_SYNC;
	o->checkpoint_every = 1000;
	o->checkpoint_ms = 10000;
	o->batch_max = 4096;
	o->segment_bytes = (uint64_t)256 << 20;
	o->queue_max = 65536;
	o->direct_io = 1;
}

/* ---- the append path (all _inlock: the caller holds mu) ------------------------------- */

static uint64_t
time_inlock(struct aud_log *log)
{
	uint64_t t = aud_now_ns();

	/* Record times never go backwards, even when the wall clock does: verify checks it. */
	if (t < log->last_time) {
		t = log->last_time;
	}
	return t;
}

/* Asks for one signal of a waiting writer, sent by kick_unlock() after mu is released. */
static void
wake_inlock(struct aud_log *log)
{
	if (log->w_waiting) {
		log->w_waiting = 0; /* the next appends need not signal again */
		log->kick = 1;
	}
}

/* Releases mu, then signals the writer if wake_inlock() asked for it. Signalling after the
 * unlock is safe: the writer checks its queue under mu before it waits, and w_waiting was
 * set under mu before that wait, so the signal finds it waiting or finds the queue taken. */
static void
kick_unlock(struct aud_log *log)
{
	int k = log->kick;

	log->kick = 0;
	pthread_mutex_unlock(&log->mu);
	if (k) {
		pthread_cond_signal(&log->cv_work);
	}
}

static int
queue_push(struct queue *q, const struct pend *p)
{
	if (q->n == q->cap) {
		size_t cap = q->cap ? 2 * q->cap : 64;
		struct pend *v = realloc(q->v, cap * sizeof(*v));

		if (v == NULL) {
			return AUD_ERR_NOMEM;
		}
		q->v = v;
		q->cap = cap;
	}
	q->v[q->n++] = *p;
	return 0;
}

static int
record_inlock(struct aud_log *log, char type, uint64_t t, const char *payload, size_t len, int roll,
              aud_done_fn done, void *arg, uint64_t *seq)
{
	uint8_t leaf[AUD_HASH_LEN], chain[AUD_HASH_LEN];
	struct pend p = {0};
	size_t start = log->q.buf.len;
	int r;

	if ((r = aud_record_format(&log->q.buf, log->next_seq, t, type, payload, len, log->chain,
	                           leaf, chain)) != 0) {
		/* Leave the queue as it was: a failed format must not leave half a line. */
		log->q.buf.len = start;
		log->q.buf.failed = 0;
		return r;
	}
	p.seq = log->next_seq;
	p.end = log->q.buf.len;
	p.roll = roll;
	p.ckpt = type == 'C';
	p.done = done;
	p.arg = arg;
	if ((r = queue_push(&log->q, &p)) != 0) {
		log->q.buf.len = start;
		return r;
	}
	memcpy(log->chain, chain, AUD_HASH_LEN);
	aud_range_push(&log->range, leaf);
	log->last_time = t;
	log->seg_bytes += log->q.buf.len - start;
	if (seq != NULL) {
		*seq = log->next_seq;
	}
	log->next_seq++;
	if (log->hold > 0) {
		log->held_appended = 1;
	} else {
		wake_inlock(log);
	}
	return 0;
}

static int
ckpt_inlock(struct aud_log *log, aud_done_fn done, void *arg, uint64_t *seq)
{
	uint8_t root[AUD_HASH_LEN];
	char *note = NULL, *payload = NULL;
	size_t note_len, plen;
	uint64_t t = time_inlock(log);
	int r;

	/* The checkpoint at seq n covers leaves 0..n-1, i.e. everything before itself; the
	 * next checkpoint covers this one as a leaf (so checkpoints are chained twice: by
	 * "prev" and by the tree). */
	aud_range_root(&log->range, root);
	if ((r = aud_checkpoint_sign(log->key, log->origin, log->next_seq, root, log->chain, t,
	                             log->prev_note, &note, &note_len)) != 0 ||
	    (r = aud_b64_encode((const uint8_t *)note, note_len, &payload, &plen)) != 0 ||
	    (r = record_inlock(log, 'C', t, payload, plen, 0, done, arg, seq)) != 0) {
		goto out;
	}
	aud_sha256(note, note_len, NULL, 0, log->prev_note);
	log->since_ckpt = 0;
	log->last_ckpt_mono_ms = aud_mono_ms();
	r = 0;
out:
	free(note);
	free(payload);
	return r;
}

static int
append_inlock(struct aud_log *log, char type, const char *payload, size_t len, aud_done_fn done,
              void *arg, uint64_t *seq)
{
	/* 5 + 2*20 + 3 + 2 + 2*64 + 2: the header and hashes around the payload. */
	uint64_t line = (uint64_t)len + 190;
	int roll = 0, r;

	if (log->failed != 0) {
		return AUD_ERR_FAILED;
	}
	if (log->stopping) {
		return AUD_ERR_CLOSED;
	}
	if (log->q.n >= log->o.queue_max) {
		return AUD_ERR_TOO_LARGE;
	}
	if (log->seg_bytes > 0 && log->seg_bytes + line > log->o.segment_bytes) {
		/* A segment ends with a checkpoint, so each segment is sealed on its own. */
		if ((r = ckpt_inlock(log, NULL, NULL, NULL)) != 0) {
			return r;
		}
		roll = 1;
	}
	if ((r = record_inlock(log, type, time_inlock(log), payload, len, roll, done, arg, seq)) !=
	    0) {
		return r;
	}
	if (roll) {
		log->seg_bytes = log->q.buf.len - (log->q.n >= 2 ? log->q.v[log->q.n - 2].end : 0);
	}
	if (++log->since_ckpt >= log->o.checkpoint_every) {
		/* The event is already queued: a failed checkpoint must not fail its append; the
		 * next record retries, and the heartbeat bounds the delay. */
		(void)ckpt_inlock(log, NULL, NULL, NULL);
	}
	return 0;
}

int
aud_log_append(struct aud_log *log, const struct aud_event *ev, aud_done_fn done, void *arg,
               uint64_t *seq)
{
	/* A request's event is about 1 KiB: encode it on the stack, the rare larger one on the
	 * heap. */
	char stack[AUD_APPEND_STACK], *heap = NULL;
	const char *json = stack;
	size_t len;
	int r;

	if (seq != NULL) {
		*seq = 0;
	}
	if (log == NULL || ev == NULL) {
		return AUD_ERR_INVALID;
	}
	/* Encoding happens outside the lock; only ordering and hashing are serialised. */
	r = aud_event_encode_into(ev, stack, sizeof(stack), &len);
	if (r == AUD_ERR_TOO_LARGE) {
		r = aud_event_encode(ev, &heap, &len);
		json = heap;
	}
	if (r != 0) {
		return r;
	}
	pthread_mutex_lock(&log->mu);
	r = append_inlock(log, 'E', json, len, done, arg, seq);
	if (r == 0 && log->hold == 0) {
		write_inline_unlock(log);
	} else {
		kick_unlock(log);
	}
	free(heap);
	return r;
}

void
aud_log_hold(struct aud_log *log)
{
	if (log == NULL) {
		return;
	}
	pthread_mutex_lock(&log->mu);
	log->hold++;
	pthread_mutex_unlock(&log->mu);
}

void
aud_log_release(struct aud_log *log)
{
	if (log == NULL) {
		return;
	}
	pthread_mutex_lock(&log->mu);
	/* A release without a hold (the caller's log was swapped meanwhile) changes nothing. */
	if (log->hold > 0 && --log->hold == 0 && log->held_appended) {
		log->held_appended = 0;
		wake_inlock(log);
		write_inline_unlock(log); /* or signals the writer */
		return;
	}
	kick_unlock(log);
}

/* ---- the writer thread ---------------------------------------------------------------- */

/* pwrite of all n bytes; flags RWF_DSYNC: each write returns once durable. */
static int
pwrite_all_flags(int fd, const char *p, size_t n, uint64_t at, int flags)
{
	while (n > 0) {
		struct iovec iov = {(void *)p, n};
		ssize_t w = pwritev2(fd, &iov, 1, (off_t)at, flags);

		if (w < 0 && errno == EINTR) {
			continue;
		}
		if (w <= 0) {
			return AUD_ERR_IO;
		}
		p += w;
		n -= (size_t)w;
		at += (uint64_t)w;
	}
	return 0;
}

static int
pwrite_all(int fd, const char *p, size_t n, uint64_t at)
{
	return pwrite_all_flags(fd, p, n, at, 0);
}

/* The data of the active segment's last partial block: how many bytes dio starts with. */
static size_t
dio_tail(const struct aud_log *log)
{
	return (size_t)(log->seg_off % AUD_DIO_BLOCK);
}

static uint64_t
dio_round_up(uint64_t x)
{
	return (x + AUD_DIO_BLOCK - 1) / AUD_DIO_BLOCK * AUD_DIO_BLOCK;
}

/* Makes log->dio hold at least n bytes, keeping the partial block it starts with. */
static int
dio_reserve(struct aud_log *log, size_t n)
{
	size_t cap = log->dio_cap, tail = dio_tail(log);
	void *p;

	if (n <= cap) {
		return 0;
	}
	while (cap < n) {
		cap *= 2;
	}
	if (posix_memalign(&p, AUD_DIO_BLOCK, cap) != 0) {
		return AUD_ERR_NOMEM;
	}
	memcpy(p, log->dio, tail);
	free(log->dio);
	log->dio = p;
	log->dio_cap = cap;
	return 0;
}

/*
 * Direct I/O: writes n bytes at seg_off as whole blocks: the data already in the last
 * partial block (kept in dio), then p, then zeros to the block's end, which is zero-filled
 * room anyway. Rewriting the partial block is what the page cache's writeback does too; a
 * torn write leaves each sector old or new, and its old part is the same bytes either way.
 */
static int
seg_write_direct(struct aud_log *log, const char *p, size_t n)
{
	size_t tail = dio_tail(log), len = tail + n, padded, keep;
	uint64_t at = log->seg_off - tail;
	int r;

	padded = (size_t)dio_round_up(len);
	if ((r = dio_reserve(log, padded)) != 0) {
		return r;
	}
	memcpy(log->dio + tail, p, n);
	memset(log->dio + len, 0, padded - len);
	/* RWF_DSYNC: the write and the device's cache flush in one call, which saves a
	 * return to user space between the two and the fdatasync's own work. */
	if ((r = pwrite_all_flags(log->segfd, log->dio, padded, at, RWF_DSYNC)) != 0) {
		return r;
	}
	log->unsynced = 0;
	log->seg_off += n;
	if (at + padded > log->seg_alloc) {
		log->seg_alloc = at + padded; /* the padding grew the file: zeros */
	}
	/* The new partial block moves to dio's start. */
	keep = dio_tail(log);
	memmove(log->dio, log->dio + (len - keep), keep);
	return 0;
}

/* Appends n bytes at the active segment's data end (inside its zero-filled room). */
static int
seg_write(struct aud_log *log, const char *p, size_t n)
{
	int r;

	if (log->direct) {
		return seg_write_direct(log, p, n);
	}
	if ((r = pwrite_all(log->segfd, p, n, log->seg_off)) != 0) {
		return r;
	}
	log->seg_off += n;
	return 0;
}

/* fdatasync of the active segment: nothing written to it is unsynced any more. */
static int
seg_sync(struct aud_log *log)
{
	if (fdatasync(log->segfd) != 0) {
		return AUD_ERR_IO;
	}
	log->unsynced = 0;
	return 0;
}

/* seg_reserve with direct I/O: zeros in whole blocks up to to (rounded up to one), from
 * the block seg_alloc is in; if that block still holds data, its data and zeros. */
static int
seg_reserve_direct(struct aud_log *log, uint64_t to)
{
	uint64_t at = log->seg_alloc - log->seg_alloc % AUD_DIO_BLOCK;
	size_t tail = dio_tail(log);
	int r;

	to = dio_round_up(to);
	if (at < log->seg_off) {
		/* seg_off <= seg_alloc, so this is seg_off's own block. */
		memset(log->dio + tail, 0, (size_t)AUD_DIO_BLOCK - tail);
		if ((r = pwrite_all(log->segfd, log->dio, (size_t)AUD_DIO_BLOCK, at)) != 0) {
			return r;
		}
		at += AUD_DIO_BLOCK;
	}
	while (at < to) {
		size_t k = to - at < AUD_PREALLOC ? (size_t)(to - at) : (size_t)AUD_PREALLOC;

		if ((r = pwrite_all(log->segfd, log->dio_zeros, k, at)) != 0) {
			return r;
		}
		at += k;
	}
	if (to > log->seg_alloc) {
		log->seg_alloc = to;
	}
	return seg_sync(log);
}

/*
 * Makes sure the active segment has zero-filled room for n more bytes and at least
 * AUD_PREALLOC_LOW beyond: writes zeros up to AUD_PREALLOC past what is needed (not much
 * past segment_bytes: a segment rolls there) and syncs them, size and all, so that the
 * fdatasync of later records writes data blocks only. Real zeros, not fallocate: writing
 * into an unwritten extent would change the extent tree at each sync again.
 */
static int
seg_reserve(struct aud_log *log, uint64_t n)
{
	static const char zeros[64 << 10];
	uint64_t need = log->seg_off + n, to;

	if (need + AUD_PREALLOC_LOW <= log->seg_alloc) {
		return 0;
	}
	to = need + AUD_PREALLOC;
	to -= to % 4096; /* whole pages, so the next chunk starts on one */
	if (to > log->o.segment_bytes + 4096 && need <= log->o.segment_bytes + 4096) {
		to = log->o.segment_bytes + 4096; /* a checkpoint may pass segment_bytes */
	}
	if (to < need) {
		to = need;
	}
	if (log->direct) {
		return seg_reserve_direct(log, to);
	}
	while (log->seg_alloc < to) {
		size_t k = to - log->seg_alloc < sizeof(zeros) ? (size_t)(to - log->seg_alloc)
		                                               : sizeof(zeros);

		if (pwrite_all(log->segfd, zeros, k, log->seg_alloc) != 0) {
			return AUD_ERR_IO;
		}
		log->seg_alloc += k;
	}
	return seg_sync(log);
}

/* Cuts the active segment's zero-filled room and syncs it: the segment is closed. */
static int
seg_seal(struct aud_log *log)
{
	if (log->segfd < 0) {
		return 0;
	}
	if (log->seg_alloc > log->seg_off) {
		if (ftruncate(log->segfd, (off_t)log->seg_off) != 0) {
			return AUD_ERR_IO;
		}
		log->seg_alloc = log->seg_off;
	}
	/* fsync, not fdatasync: the new size must be on disk before a later segment's name. */
	return fsync(log->segfd) == 0 ? 0 : AUD_ERR_IO;
}

/*
 * Puts the active segment's fd in direct I/O if the log is to use it (sync mode,
 * o.direct_io) and its file system takes O_DIRECT; else it stays buffered. Loads the data
 * of the segment's last partial block into dio. Call with segfd, seg_off and seg_alloc set.
 */
static int
seg_direct_init(struct aud_log *log)
{
	size_t tail = dio_tail(log);
	void *p;
	int fl;

	log->direct = 0;
	if (!log->o.direct_io || log->o.durability != AUD_DURABILITY_SYNC) {
		return 0;
	}
	if (log->dio == NULL) {
		if (posix_memalign(&p, AUD_DIO_BLOCK, 16 * AUD_DIO_BLOCK) != 0) {
			return AUD_ERR_NOMEM;
		}
		log->dio = p;
		log->dio_cap = 16 * AUD_DIO_BLOCK;
		if (posix_memalign(&p, AUD_DIO_BLOCK, AUD_PREALLOC) != 0) {
			return AUD_ERR_NOMEM;
		}
		memset(p, 0, AUD_PREALLOC);
		log->dio_zeros = p;
	}
	if ((fl = fcntl(log->segfd, F_GETFL)) < 0) {
		return AUD_ERR_IO;
	}
	if (fcntl(log->segfd, F_SETFL, fl | O_DIRECT) != 0) {
		/* EINVAL: this file system has no direct I/O; buffered writes work the same. */
		return errno == EINVAL ? 0 : AUD_ERR_IO;
	}
	if (tail > 0 && pread(log->segfd, log->dio, (size_t)AUD_DIO_BLOCK,
	                      (off_t)(log->seg_off - tail)) < (ssize_t)tail) {
		return AUD_ERR_IO;
	}
	log->direct = 1;
	return 0;
}

static int
segment_create(struct aud_log *log, uint64_t first)
{
	char name[64];
	int fd;

	aud_segment_name(first, name);
	fd = openat(log->dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		return AUD_ERR_IO;
	}
	/* The new name must be durable before any record in it is reported durable. */
	if (fsync(log->dirfd) != 0) {
		close(fd);
		return AUD_ERR_IO;
	}
	if (log->segfd >= 0) {
		close(log->segfd);
	}
	log->segfd = fd;
	log->seg_off = log->seg_alloc = log->unsynced = 0;
	return seg_direct_init(log);
}

/* Writes b's records [0, n); returns 0 or the error that fails the log. */
static int
write_batch(struct aud_log *log, const struct queue *b, size_t n)
{
	size_t i, from = 0, to;
	int sync = log->o.durability == AUD_DURABILITY_SYNC, r;

	if (log->inject_errno != 0) {
		errno = log->inject_errno;
		return AUD_ERR_IO;
	}
	for (i = 0; i < n; i++) {
		if (b->v[i].ckpt) {
			sync = 1;
		}
		if (!b->v[i].roll) {
			continue;
		}
		/* Finish the old segment (its last record is the checkpoint that sealed it), cut
		 * its zero-filled room before the next segment exists (readers rely on it). */
		to = i > 0 ? b->v[i - 1].end : 0;
		if ((r = seg_reserve(log, to - from)) != 0 ||
		    (r = seg_write(log, b->buf.data + from, to - from)) != 0 ||
		    (r = seg_seal(log)) != 0 || (r = segment_create(log, b->v[i].seq)) != 0) {
			return AUD_ERR_IO;
		}
		from = to;
	}
	to = b->v[n - 1].end;
	/* Async: sync first rather than have more than AUD_TORN_WINDOW unsynced, so that a
	 * power loss cannot tear more than a start-up repair may cut (AUDIT.md §5). */
	if (!sync && log->unsynced + (to - from) > AUD_TORN_WINDOW && (r = seg_sync(log)) != 0) {
		return r;
	}
	if ((r = seg_reserve(log, to - from)) != 0 ||
	    (r = seg_write(log, b->buf.data + from, to - from)) != 0) {
		return r;
	}
	if (sync) {
		return log->direct ? 0 : seg_sync(log); /* direct: written with RWF_DSYNC */
	}
	log->unsynced += to - from;
	return 0;
}

static void
run_callbacks(const struct queue *b, size_t n, int status)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (b->v[i].done != NULL) {
			b->v[i].done(b->v[i].arg, b->v[i].seq, status);
		}
	}
}

/* After batch b was written (status 0) or not: the log's durable count, or its sticky
 * failure; waiters woken. Returns the status b's callbacks get (0 or AUD_ERR_FAILED);
 * _inlock. */
static int
batch_end_inlock(struct aud_log *log, const struct queue *b, int status)
{
	if (status != 0) {
		/* The operator alert belongs to the gateway's structured log; here the failure
		 * is kept, sticky, for aud_log_failed(). */
		log->failed = AUD_ERR_FAILED;
		status = AUD_ERR_FAILED;
	} else if (b->n > 0) {
		log->durable_n = b->v[b->n - 1].seq + 1;
	}
	pthread_cond_broadcast(&log->cv_done);
	return status;
}

/* Moves up to max records from the log's queue into *b (empty on entry); _inlock. */
static int
queue_take_inlock(struct aud_log *log, struct queue *b, size_t max)
{
	struct queue *q = &log->q;
	size_t n = q->n < max ? q->n : max, bytes, i, lo, hi;

	/* At most AUD_TORN_WINDOW bytes (one record at least): what one write may leave torn. */
	if (n > 0 && q->v[n - 1].end > AUD_TORN_WINDOW) {
		lo = 1;
		hi = n; /* v[lo-1].end <= W or lo == 1; v[hi-1].end > W */
		while (hi - lo > 1) {
			size_t mid = lo + (hi - lo) / 2;

			if (q->v[mid - 1].end <= AUD_TORN_WINDOW) {
				lo = mid;
			} else {
				hi = mid;
			}
		}
		n = lo;
	}
	if (n == q->n) {
		/* The common case: swap the whole queue. */
		struct queue t = *b;

		*b = *q;
		*q = t;
		q->n = 0;
		q->buf.len = 0;
		q->buf.failed = 0;
		return 0;
	}
	bytes = q->v[n - 1].end;
	b->buf.len = 0;
	b->n = 0;
	if (aud_buf_put(&b->buf, q->buf.data, bytes) != 0) {
		return AUD_ERR_NOMEM;
	}
	for (i = 0; i < n; i++) {
		if (queue_push(b, &q->v[i]) != 0) {
			return AUD_ERR_NOMEM;
		}
	}
	memmove(q->buf.data, q->buf.data + bytes, q->buf.len - bytes);
	q->buf.len -= bytes;
	memmove(q->v, q->v + n, (q->n - n) * sizeof(*q->v));
	q->n -= n;
	for (i = 0; i < q->n; i++) {
		q->v[i].end -= bytes;
	}
	return 0;
}

/*
 * Async mode, from the appending thread: when the writer waits and the queue needs neither
 * a sync (no checkpoint, the torn window not reached), nor a roll, nor more zero-filled
 * room, the appender writes it itself and runs its callbacks, instead of waking the writer
 * and being woken back by its callbacks: two thread hand-offs per batch, which on a VM cost
 * more than the write. The writer's segment state is safe to touch: it waits on cv_work
 * and needs mu to go on — w_waiting says so, or, once wake_inlock has asked for a signal
 * in this same hold of mu, kick does. Called with mu held, after wake_inlock; returns with
 * it released, as kick_unlock, which it calls when the writer must do the work.
 */
static void
write_inline_unlock(struct aud_log *log)
{
	struct queue *q = &log->q, t;
	uint64_t bytes = q->buf.len;
	size_t i, n = q->n;
	int status;

	if (log->o.durability != AUD_DURABILITY_ASYNC || !(log->w_waiting || log->kick) ||
	    log->inl_busy || n == 0 || log->failed != 0 || log->stopping ||
	    log->unsynced + bytes > AUD_TORN_WINDOW ||
	    log->seg_off + bytes + AUD_PREALLOC_LOW > log->seg_alloc) {
		kick_unlock(log);
		return;
	}
	for (i = 0; i < n; i++) {
		if (q->v[i].roll || q->v[i].ckpt) {
			kick_unlock(log);
			return;
		}
	}
	/* The writer is not signalled for these: it goes on waiting. */
	log->kick = 0;
	log->w_waiting = 1;
	t = log->inl;
	log->inl = *q;
	*q = t;
	q->n = 0;
	q->buf.len = 0;
	q->buf.failed = 0;
	status = log->inject_errno != 0 ? AUD_ERR_IO
	                                : seg_write(log, log->inl.buf.data, (size_t)bytes);
	if (status == 0) {
		log->unsynced += bytes;
	}
	status = batch_end_inlock(log, &log->inl, status);
	log->inl_busy = 1;
	pthread_mutex_unlock(&log->mu);
	run_callbacks(&log->inl, n, status);
	pthread_mutex_lock(&log->mu);
	log->inl.n = 0;
	log->inl.buf.len = 0;
	log->inl_busy = 0;
	pthread_mutex_unlock(&log->mu);
}

static void *
writer_main(void *arg)
{
	struct aud_log *log = arg;
	struct queue b = {0};

	pthread_mutex_lock(&log->mu);
	for (;;) {
		int status;

		while (log->q.n == 0 && !log->stopping) {
			uint64_t now = aud_mono_ms(),
			         due = log->last_ckpt_mono_ms + log->o.checkpoint_ms;
			struct timespec ts;

			if (now >= due && log->failed == 0) {
				/* Heartbeat: a checkpoint even when idle, so a silent truncation of
				 * the tail is bounded in time (the CVE-2023-31438 lesson). */
				if (ckpt_inlock(log, NULL, NULL, NULL) != 0) {
					log->last_ckpt_mono_ms = now; /* retry next interval */
				}
				continue;
			}
			clock_gettime(CLOCK_REALTIME, &ts);
			due = log->failed != 0 ? 1000 : due - now;
			ts.tv_sec += (time_t)(due / 1000);
			ts.tv_nsec += (long)(due % 1000) * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			log->w_waiting = 1;
			pthread_cond_timedwait(&log->cv_work, &log->mu, &ts);
			log->w_waiting = 0;
		}
		if (log->q.n == 0 && log->stopping) {
			break;
		}
		if ((status = queue_take_inlock(log, &b, log->o.batch_max)) != 0) {
			log->failed = AUD_ERR_FAILED;
		}
		status = log->failed;
		pthread_mutex_unlock(&log->mu);

		if (status == 0 && b.n > 0) {
			status = write_batch(log, &b, b.n);
		} else if (status != 0) {
			status = AUD_ERR_FAILED;
		}

		pthread_mutex_lock(&log->mu);
		status = batch_end_inlock(log, &b, status);
		pthread_mutex_unlock(&log->mu);
		run_callbacks(&b, b.n, status);
		b.n = 0;
		b.buf.len = 0;
		pthread_mutex_lock(&log->mu);
	}
	pthread_mutex_unlock(&log->mu);
	aud_buf_free(&b.buf);
	free(b.v);
	return NULL;
}

/* ---- waiting, status ------------------------------------------------------------------ */

int
aud_log_wait(struct aud_log *log, uint64_t seq)
{
	int r;

	pthread_mutex_lock(&log->mu);
	if (log->durable_n <= seq && seq < log->next_seq && log->w_waiting) {
		/* A waiter overrides a hold (aud_log_hold): its record must not wait for the
		 * heartbeat. */
		log->w_waiting = 0;
		pthread_cond_signal(&log->cv_work);
	}
	while (log->durable_n <= seq && log->failed == 0 && seq < log->next_seq) {
		pthread_cond_wait(&log->cv_done, &log->mu);
	}
	r = log->durable_n > seq ? 0 : (log->failed != 0 ? log->failed : AUD_ERR_RANGE);
	pthread_mutex_unlock(&log->mu);
	return r;
}

int
aud_log_checkpoint(struct aud_log *log, uint64_t *seq)
{
	uint64_t s = 0;
	int r;

	pthread_mutex_lock(&log->mu);
	r = log->failed != 0 ? AUD_ERR_FAILED : ckpt_inlock(log, NULL, NULL, &s);
	kick_unlock(log);
	if (r == 0) {
		r = aud_log_wait(log, s);
	}
	if (seq != NULL) {
		*seq = s;
	}
	return r;
}

/* The rotation's records, in one go under the lock (AUDIT.md §2.4). */
static int
rotate_inlock(struct aud_log *log, EVP_PKEY **nk, uint64_t *kseq, uint64_t *cseq)
{
	char *payload = NULL, *json = NULL;
	size_t plen, jlen;
	uint64_t t;
	int r;

	if ((r = aud_keyhist_rotate_check(log->keyhist, *nk)) != 0 ||
	    (log->since_ckpt > 0 && (r = ckpt_inlock(log, NULL, NULL, NULL)) != 0)) {
		return r;
	}
	t = time_inlock(log);
	if ((r = aud_rotation_build(log->key, *nk, log->origin, log->next_seq, t, log->chain,
	                            &payload, &plen, &json, &jlen)) != 0 ||
	    (r = record_inlock(log, 'K', t, payload, plen, 0, NULL, NULL, kseq)) != 0) {
		goto out;
	}
	/* The rotation is queued: from here on the new key signs. */
	aud_keyhist_rotated(log->keyhist, *nk);
	EVP_PKEY_free(log->key);
	log->key = *nk;
	*nk = NULL; /* transferred */
	if ((r = append_inlock(log, 'E', json, jlen, NULL, NULL, NULL)) != 0 ||
	    (r = ckpt_inlock(log, NULL, NULL, cseq)) != 0) {
		goto out;
	}
	r = 0;
out:
	free(payload);
	free(json);
	return r;
}

int
aud_log_rotate(struct aud_log *log, const char *new_key_path, uint64_t *seq)
{
	EVP_PKEY *nk = NULL;
	uint64_t kseq = 0, cseq = 0;
	int r;

	if (seq != NULL) {
		*seq = 0;
	}
	if (log == NULL || new_key_path == NULL) {
		return AUD_ERR_INVALID;
	}
	if ((r = aud_key_load_private(new_key_path, &nk)) != 0) {
		return r;
	}
	pthread_mutex_lock(&log->mu);
	r = log->failed != 0 ? AUD_ERR_FAILED
	    : log->stopping  ? AUD_ERR_CLOSED
	                     : rotate_inlock(log, &nk, &kseq, &cseq);
	kick_unlock(log);
	EVP_PKEY_free(nk);
	if (r == 0 && (r = aud_log_wait(log, cseq)) == 0 && seq != NULL) {
		*seq = kseq;
	}
	return r;
}

uint64_t
aud_log_durable_seq(struct aud_log *log)
{
	uint64_t n;

	pthread_mutex_lock(&log->mu);
	n = log->durable_n;
	pthread_mutex_unlock(&log->mu);
	return n == 0 ? UINT64_MAX : n - 1;
}

int
aud_log_failed(struct aud_log *log)
{
	int f;

	pthread_mutex_lock(&log->mu);
	f = log->failed;
	pthread_mutex_unlock(&log->mu);
	return f;
}

void
aud_log_inject_fault(struct aud_log *log, int err)
{
	pthread_mutex_lock(&log->mu);
	log->inject_errno = err;
	pthread_mutex_unlock(&log->mu);
}

/* ---- open: recovery ------------------------------------------------------------------- */

struct scan {
	uint64_t last_seg; /* first seq of the last segment seen (UINT64_MAX: none) */
	size_t torn;       /* unterminated bytes at the end of the last segment's data */
	uint64_t end_off;  /* where the last segment's data ends (torn bytes excluded) */
	int gap;           /* the torn bytes are a torn write: NULs from gap_at, then data */
	uint64_t gap_at;
};

/* Reads the whole log, checking what the writer itself guarantees, and leaves the state
 * (next seq, chain, range, previous note, last time) ready to append. */
static int
recover_scan(struct aud_log *log, struct scan *sc)
{
	struct aud_reader *rd = NULL;
	const char *line;
	size_t len, torn;
	uint64_t seg, line_no, seg_seen = UINT64_MAX;
	int r;

	sc->last_seg = UINT64_MAX;
	sc->torn = 0;
	sc->end_off = 0;
	sc->gap = 0;
	if ((r = aud_reader_open(&rd, log->dir)) != 0) {
		return r;
	}
	aud_reader_at_rest(rd); /* a power loss may have torn the last write (AUDIT.md §5) */
	for (;;) {
		struct aud_record_view rec;
		uint8_t leaf[AUD_HASH_LEN], chain[AUD_HASH_LEN];

		r = aud_reader_next(rd, &line, &len, &seg, &line_no, &torn);
		if (r == AUD_ERR_EOF) {
			sc->torn = torn;
			sc->gap = aud_reader_gap(rd, &sc->gap_at);
			aud_reader_pos(rd, &seg, &sc->end_off);
			break;
		}
		if (r != 0 || torn != 0) {
			/* A line over the cap or a torn line inside an earlier segment: not
			 * something a crash of this writer can leave behind. */
			r = r == AUD_ERR_IO ? r : AUD_ERR_TAMPER;
			goto out;
		}
		if (aud_record_parse(line, len, &rec) != 0 || rec.seq != log->next_seq ||
		    rec.time_ns < log->last_time || (seg != seg_seen && seg != rec.seq)) {
			r = AUD_ERR_TAMPER;
			goto out;
		}
		seg_seen = seg;
		aud_record_leaf(&rec, leaf);
		aud_hash_chain(log->chain, leaf, chain);
		if (CRYPTO_memcmp(leaf, rec.leaf, AUD_HASH_LEN) != 0 ||
		    CRYPTO_memcmp(chain, rec.chain, AUD_HASH_LEN) != 0) {
			r = AUD_ERR_TAMPER;
			goto out;
		}
		if (rec.type == 'C') {
			struct aud_checkpoint_view cp;
			uint8_t root[AUD_HASH_LEN];
			char *note = NULL;
			size_t nlen;

			aud_range_root(&log->range, root);
			if (aud_checkpoint_decode_payload(rec.payload, rec.payload_len, &note,
			                                  &nlen) != 0) {
				r = AUD_ERR_TAMPER;
				goto out;
			}
			/* The signature is checked with the key in force here (rotate.c). */
			if ((r = aud_checkpoint_check(note, nlen, NULL, &cp)) == 0) {
				r = aud_keyhist_checkpoint(log->keyhist, note, nlen);
			}
			free(note);
			if (r != 0 || cp.size != rec.seq || strcmp(cp.origin, log->origin) != 0 ||
			    memcmp(cp.root, root, AUD_HASH_LEN) != 0 ||
			    memcmp(cp.chain, log->chain, AUD_HASH_LEN) != 0 ||
			    memcmp(cp.prev, log->prev_note, AUD_HASH_LEN) != 0) {
				r = AUD_ERR_TAMPER;
				goto out;
			}
			memcpy(log->prev_note, cp.note_hash, AUD_HASH_LEN);
		}
		if (rec.type == 'K' &&
		    (r = aud_keyhist_rotation(log->keyhist, log->origin, &rec, log->chain)) != 0) {
			goto out;
		}
		memcpy(log->chain, chain, AUD_HASH_LEN);
		aud_range_push(&log->range, leaf);
		log->last_time = rec.time_ns;
		log->next_seq++;
	}
	/* Our key must be the one in force: never start signing with an unannounced key. */
	r = aud_keyhist_finish(log->keyhist, log->key, log->origin);
out:
	aud_reader_free(rd);
	return r;
}

static int
last_segment(struct aud_log *log, uint64_t *first, int *found)
{
	DIR *d;
	struct dirent *de;
	uint64_t v;

	*found = 0;
	*first = 0;
	if ((d = opendir(log->dir)) == NULL) {
		return AUD_ERR_IO;
	}
	while ((de = readdir(d)) != NULL) {
		if (aud_segment_parse(de->d_name, &v) && (!*found || v > *first)) {
			*first = v;
			*found = 1;
		}
	}
	closedir(d);
	return 0;
}

static int
system_event(struct aud_log *log, const char *source_crn, const char *verb, struct aud_event **evp)
{
	struct aud_event *ev = NULL;
	int r;

	*evp = NULL;
	if ((r = aud_event_new(&ev, "audit", verb)) != 0 ||
	    (r = aud_event_set_initiator(ev, "hsmgate", "hsmgate", AUD_INITIATOR_SYSTEM,
	                                 AUD_CRED_NONE, NULL)) != 0 ||
	    (r = aud_event_set_target(ev, log->origin, "audit-log", AUD_TARGET_AUDIT)) != 0 ||
	    (source_crn != NULL && (r = aud_event_set_source(ev, source_crn)) != 0)) {
		aud_event_free(ev);
		return r;
	}
	*evp = ev;
	return 0;
}

static int
append_system(struct aud_log *log, char type, struct aud_event *ev)
{
	char *json = NULL;
	size_t len;
	int r;

	if ((r = aud_event_encode(ev, &json, &len)) != 0) {
		return r;
	}
	pthread_mutex_lock(&log->mu);
	r = append_inlock(log, type, json, len, NULL, NULL, NULL);
	kick_unlock(log);
	free(json);
	return r;
}

/*
 * Cuts the last segment back to the end of its last complete line: a torn final line (torn
 * bytes from end_off; ev gets what was cut) and the zero-filled room a writer that did not
 * close left behind (AUDIT.md §2.3). The writer preallocates again before its first write.
 */
static int
cut_tail(struct aud_log *log, uint64_t seg_first, uint64_t end_off, size_t torn,
         struct aud_event *ev)
{
	char name[64], hex[2 * AUD_HASH_LEN + 1];
	uint8_t h[AUD_HASH_LEN];
	struct stat st;
	char *buf = NULL;
	int fd = -1, r = AUD_ERR_IO;
	ssize_t n;

	aud_segment_name(seg_first, name);
	if ((fd = openat(log->dirfd, name, O_RDWR | O_CLOEXEC)) < 0 || fstat(fd, &st) != 0 ||
	    (uint64_t)st.st_size < end_off + torn) {
		goto out;
	}
	if ((uint64_t)st.st_size == end_off) {
		r = 0; /* nothing to cut */
		goto out;
	}
	if ((buf = malloc(torn > 0 ? torn : 1)) == NULL) {
		r = AUD_ERR_NOMEM;
		goto out;
	}
	n = pread(fd, buf, torn, (off_t)end_off);
	if (n != (ssize_t)torn) {
		goto out;
	}
	aud_sha256(buf, torn, NULL, 0, h);
	aud_hex_encode(h, AUD_HASH_LEN, hex);
	if (ftruncate(fd, (off_t)end_off) != 0 || fsync(fd) != 0) {
		goto out;
	}
	/* The cut bytes themselves are not recorded: a torn event may be half of anything;
	 * their size and hash let an operator match a copy taken before the repair. Zeros
	 * after them are the writer's preallocation, not data: not counted. */
	if (torn > 0 && ((r = aud_event_add_info_str(ev, "segment", name)) != 0 ||
	                 (r = aud_event_add_info_u64(ev, "offset", end_off)) != 0 ||
	                 (r = aud_event_add_info_u64(ev, "cutBytes", torn)) != 0 ||
	                 (r = aud_event_add_info_str(ev, "cutSha256", hex)) != 0 ||
	                 (r = aud_event_set_outcome(ev, AUD_OUTCOME_SUCCESS)) != 0 ||
	                 (r = aud_event_set_severity(ev, AUD_SEVERITY_WARNING)) != 0)) {
		goto out;
	}
	r = 0;
out:
	free(buf);
	if (fd >= 0) {
		close(fd);
	}
	return r;
}

static int
options_ok(const struct aud_log_options *o)
{
	if (o == NULL || o->dir == NULL || o->origin == NULL || o->key_path == NULL) {
		return 0;
	}
	if (o->checkpoint_every == 0 || o->checkpoint_ms == 0 || o->batch_max == 0 ||
	    o->queue_max == 0 || o->segment_bytes < 4096) {
		return 0;
	}
	return o->durability == AUD_DURABILITY_SYNC || o->durability == AUD_DURABILITY_ASYNC;
}

static void
log_free(struct aud_log *log)
{
	if (log->segfd >= 0) {
		close(log->segfd);
	}
	if (log->dirfd >= 0) {
		close(log->dirfd);
	}
	if (log->lockfd >= 0) {
		close(log->lockfd); /* releases the flock */
	}
	EVP_PKEY_free(log->key);
	aud_keyhist_free(log->keyhist);
	aud_buf_free(&log->q.buf);
	free(log->q.v);
	aud_buf_free(&log->inl.buf);
	free(log->inl.v);
	free(log->dio);
	free(log->dio_zeros);
	free(log->dir);
	free(log->origin);
	pthread_mutex_destroy(&log->mu);
	pthread_cond_destroy(&log->cv_work);
	pthread_cond_destroy(&log->cv_done);
	free(log);
}

int
aud_log_open(struct aud_log **logp, const struct aud_log_options *o)
{
	struct aud_log *log = NULL;
	struct aud_event *rep = NULL, *start = NULL;
	struct scan sc;
	uint64_t seg_first, ck;
	int found, r;
	char name[64];

	*logp = NULL;
	if (!options_ok(o)) {
		return AUD_ERR_INVALID;
	}
	if (strlen(o->origin) > AUD_MAX_ORIGIN) {
		return AUD_ERR_TOO_LARGE;
	}
	if ((log = calloc(1, sizeof(*log))) == NULL) {
		return AUD_ERR_NOMEM;
	}
	log->lockfd = log->dirfd = log->segfd = -1;
	pthread_mutex_init(&log->mu, NULL);
	pthread_cond_init(&log->cv_work, NULL);
	pthread_cond_init(&log->cv_done, NULL);
	log->o = *o;
	if ((log->dir = strdup(o->dir)) == NULL || (log->origin = strdup(o->origin)) == NULL) {
		r = AUD_ERR_NOMEM;
		goto out;
	}
	log->o.dir = log->dir;
	log->o.origin = log->origin;
	log->o.key_path = NULL; /* not kept: the key is loaded now */
	if (mkdir(log->dir, 0700) != 0 && errno != EEXIST) {
		r = AUD_ERR_IO;
		goto out;
	}
	if ((log->dirfd = open(log->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 ||
	    (log->lockfd = openat(log->dirfd, "LOCK", O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0) {
		r = AUD_ERR_IO;
		goto out;
	}
	if (flock(log->lockfd, LOCK_EX | LOCK_NB) != 0) {
		r = errno == EWOULDBLOCK ? AUD_ERR_LOCKED : AUD_ERR_IO;
		goto out;
	}
	if ((r = aud_key_load_private(o->key_path, &log->key)) != 0 ||
	    (r = aud_keyhist_new(&log->keyhist)) != 0) {
		goto out;
	}
	if ((r = recover_scan(log, &sc)) != 0 || (r = last_segment(log, &seg_first, &found)) != 0 ||
	    (r = system_event(log, o->source_crn, "repair", &rep)) != 0 ||
	    (r = system_event(log, o->source_crn, "start", &start)) != 0) {
		goto out;
	}
	if (found && ((sc.gap && (r = aud_event_add_info_u64(rep, "zerosAt", sc.gap_at)) != 0) ||
	              (r = cut_tail(log, seg_first, sc.end_off, sc.torn, rep)) != 0)) {
		goto out;
	}
	if (found) {
		aud_segment_name(seg_first, name);
		/* Read-write: direct I/O reads the last partial block back (seg_direct_init). */
		if ((log->segfd = openat(log->dirfd, name, O_RDWR | O_CLOEXEC)) < 0) {
			r = AUD_ERR_IO;
			goto out;
		}
		log->seg_bytes = (uint64_t)lseek(log->segfd, 0, SEEK_END);
		log->seg_off = log->seg_alloc = log->seg_bytes;
		if ((r = seg_direct_init(log)) != 0) {
			goto out;
		}
		/* An empty last segment (a crash right after a roll) must be the next record's. */
		if (log->seg_bytes == 0 && seg_first != log->next_seq) {
			r = AUD_ERR_TAMPER;
			goto out;
		}
	} else if ((r = segment_create(log, log->next_seq)) != 0) {
		goto out;
	}
	log->last_ckpt_mono_ms = aud_mono_ms();
	if (pthread_create(&log->thr, NULL, writer_main, log) != 0) {
		r = AUD_ERR_NOMEM;
		goto out;
	}
	log->thr_started = 1;
	if ((r = aud_event_add_info_u64(start, "treeSize", log->next_seq)) != 0 ||
	    (r = aud_event_add_info_str(start, "durability",
	                                o->durability == AUD_DURABILITY_SYNC ? "sync" : "async")) !=
	            0 ||
	    (sc.torn > 0 && (r = append_system(log, 'R', rep)) != 0) ||
	    (r = append_system(log, 'S', start)) != 0 || (r = aud_log_checkpoint(log, &ck)) != 0) {
		goto out;
	}
	*logp = log;
	log = NULL; /* transferred */
	r = 0;
out:
	aud_event_free(rep);
	aud_event_free(start);
	if (log != NULL) {
		if (log->thr_started) {
			pthread_mutex_lock(&log->mu);
			log->stopping = 1;
			pthread_cond_signal(&log->cv_work);
			pthread_mutex_unlock(&log->mu);
			pthread_join(log->thr, NULL);
		}
		log_free(log);
	}
	return r;
}

int
aud_log_close(struct aud_log *log)
{
	int r;

	if (log == NULL) {
		return 0;
	}
	pthread_mutex_lock(&log->mu);
	if (log->failed == 0 && !log->stopping) {
		/* The clean-shutdown checkpoint seals everything written. */
		(void)ckpt_inlock(log, NULL, NULL, NULL);
	}
	log->stopping = 1;
	pthread_cond_signal(&log->cv_work);
	pthread_mutex_unlock(&log->mu);
	pthread_join(log->thr, NULL);
	r = log->failed;
	/* Closed cleanly: no zero-filled room is left behind (the writer has ended, so its
	 * seg_off is ours now). */
	if (r == 0 && seg_seal(log) != 0) {
		r = AUD_ERR_IO;
	}
	log_free(log);
	return r;
}
