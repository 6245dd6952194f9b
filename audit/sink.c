/*
 * audit/sink.c — the sink runner: reads the log after a persisted cursor, hands records to
 * a destination driver, advances the cursor only over acknowledged records, and retries
 * with exponential backoff and jitter. The log is the spool: the runner holds at most one
 * window of records in memory, so an outage costs disk (the log keeps growing), never
 * events and never the writer's time.
 */
#include "audit/sink_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#define CURSOR_MAGIC "hsmgate-audit-cursor 1\n"
#define CURSOR_MAX   512
#define SLEEP_SLICE  50 /* ms: how quickly a sleeping runner notices aud_sink_stop() */

struct aud_sink {
	struct aud_sink_options o;
	struct aud_sink_env env;
	char origin[AUD_MAX_ORIGIN + 1];
	char hostname[256];
	const struct aud_sink_driver *drv;
	void *st;
	struct aud_reader *rd;
	struct aud_sink_msg *win; /* unacknowledged records, oldest first */
	size_t nwin, nsent;
	struct aud_sink_msg held; /* read but not yet durable (o.durable) */
	int has_held;
	uint64_t read_next;    /* seq of the next record to take from the log */
	uint64_t unsynced_seg; /* segment read from since its last fdatasync, or UINT64_MAX */
	uint64_t persisted;    /* `next` as last written to the cursor file */
	uint64_t retry_at;     /* monotonic ms before which no send is tried */
	uint32_t backoff_ms;   /* the next backoff before jitter */
	uint64_t rng;
	_Atomic uint64_t next; /* cursor: every record below it acknowledged */
	_Atomic uint64_t head; /* one past the last record seen in the log */
	atomic_int stop;
};

void
aud_sink_options_init(struct aud_sink_options *o)
{
	memset(o, 0, sizeof(*o));
	o->batch_max = 256;
	o->window_max = 4096;
	o->poll_ms = 200;
	o->settle_ms = 2000;
	o->backoff_min_ms = 250;
	o->backoff_max_ms = 30000;
	o->timeout_ms = 10000;
}

static void
sink_logf(const struct aud_sink_env *env, int level, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (env->o->log != NULL) {
		env->o->log(env->o->log_arg, level, msg);
		return;
	}
	fprintf(stderr, "hsmgate-audit sink: %s%s\n", level <= LOG_CRIT ? "CRITICAL: " : "", msg);
}

/* ---- cursor file ---------------------------------------------------------------------- */

int
aud_sink_cursor_read(const char *path, uint64_t *next, char *origin)
{
	char buf[CURSOR_MAX + 1];
	struct aud_cur c;
	const char *s;
	size_t len = 0, slen;
	ssize_t n;
	int fd, r;

	*next = 0;
	if (origin != NULL) {
		origin[0] = '\0';
	}
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		/* No cursor yet: nothing was ever acknowledged. */
		return errno == ENOENT ? 0 : AUD_ERR_IO;
	}
	while (len < sizeof(buf)) {
		n = read(fd, buf + len, sizeof(buf) - len);
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n < 0) {
			close(fd);
			return AUD_ERR_IO;
		}
		if (n == 0) {
			break;
		}
		len += (size_t)n;
	}
	close(fd);
	if (len > CURSOR_MAX) {
		return AUD_ERR_MALFORMED;
	}
	/* "hsmgate-audit-cursor 1\n" "origin " ORIGIN "\n" "next " N "\n", nothing else. The
	 * file is replaced by rename, so a torn one means damage, not a crash: refuse it. */
	aud_cur_init(&c, buf, len);
	if ((r = aud_cur_lit(&c, CURSOR_MAGIC)) != 0 || (r = aud_cur_lit(&c, "origin ")) != 0 ||
	    (r = aud_cur_until(&c, '\n', &s, &slen, AUD_MAX_ORIGIN)) != 0 ||
	    (r = aud_cur_lit(&c, "next ")) != 0 || (r = aud_cur_u64(&c, next)) != 0 ||
	    (r = aud_cur_lit(&c, "\n")) != 0 || (r = aud_cur_end(&c)) != 0 ||
	    !aud_text_ok(s, slen) || memchr(s, ' ', slen) != NULL) {
		*next = 0;
		return AUD_ERR_MALFORMED;
	}
	if (origin != NULL) {
		memcpy(origin, s, slen);
		origin[slen] = '\0';
	}
	return 0;
}

static int
fsync_dir_of(const char *path)
{
	char *copy = strdup(path);
	int fd, r = 0;

	if (copy == NULL) {
		return AUD_ERR_NOMEM;
	}
	if ((fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 || fsync(fd) != 0) {
		r = AUD_ERR_IO;
	}
	if (fd >= 0) {
		close(fd);
	}
	free(copy);
	return r;
}

int
aud_sink_cursor_write(const char *path, const char *origin, uint64_t next)
{
	char tmp[4096], body[CURSOR_MAX + 1];
	int fd = -1, n, r = AUD_ERR_IO;
	size_t off = 0;

	if (strlen(origin) == 0 || strlen(origin) > AUD_MAX_ORIGIN ||
	    !aud_text_ok(origin, strlen(origin)) || strchr(origin, ' ') != NULL) {
		return AUD_ERR_INVALID;
	}
	n = snprintf(body, sizeof(body), CURSOR_MAGIC "origin %s\nnext %" PRIu64 "\n", origin,
	             next);
	if (n < 0 || (size_t)n >= sizeof(body) ||
	    snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
		return AUD_ERR_TOO_LARGE;
	}
	/* Write a temp file, fsync it, rename it over the cursor, fsync the directory: a crash
	 * leaves either the old cursor or the new one, never a mix (rename(2) is atomic), and
	 * the rename itself survives power loss only once the directory is synced. */
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0) {
		return AUD_ERR_IO;
	}
	while (off < (size_t)n) {
		ssize_t w = write(fd, body + off, (size_t)n - off);

		if (w < 0 && errno == EINTR) {
			continue;
		}
		if (w <= 0) {
			goto out;
		}
		off += (size_t)w;
	}
	if (fsync(fd) != 0) {
		goto out;
	}
	if (close(fd) != 0) {
		fd = -1;
		goto out;
	}
	fd = -1;
	if (rename(tmp, path) != 0) {
		goto out;
	}
	r = fsync_dir_of(path);
out:
	if (fd >= 0) {
		close(fd);
	}
	if (r != 0) {
		unlink(tmp);
	}
	return r;
}

enum aud_spool_state
aud_spool_check(uint64_t head, uint64_t cursor, uint64_t soft, uint64_t hard, uint64_t *lag)
{
	uint64_t l = head > cursor ? head - cursor : 0;

	if (lag != NULL) {
		*lag = l;
	}
	if (hard != 0 && l >= hard) {
		return AUD_SPOOL_HARD;
	}
	if (soft != 0 && l >= soft) {
		return AUD_SPOOL_SOFT;
	}
	return AUD_SPOOL_OK;
}

/* ---- opening -------------------------------------------------------------------------- */

/* The log's origin, from its first checkpoint record (written at every writer start). */
static int
find_origin(const char *dir, char origin[AUD_MAX_ORIGIN + 1])
{
	struct aud_reader *rd = NULL;
	struct aud_record_view rec;
	struct aud_checkpoint_view cp;
	const char *line;
	size_t len, note_len;
	uint64_t seg, no;
	char *note = NULL;
	int r;

	if ((r = aud_reader_open(&rd, dir)) != 0) {
		return r;
	}
	while ((r = aud_reader_next(rd, &line, &len, &seg, &no, NULL)) == 0) {
		if ((r = aud_record_parse(line, len, &rec)) != 0) {
			break;
		}
		if (rec.type != 'C') {
			continue;
		}
		if ((r = aud_checkpoint_decode_payload(rec.payload, rec.payload_len, &note,
		                                       &note_len)) == 0 &&
		    (r = aud_checkpoint_parse_note(note, note_len, &cp)) == 0) {
			memcpy(origin, cp.origin, sizeof(cp.origin));
		}
		break;
	}
	free(note);
	aud_reader_free(rd);
	/* A log without a checkpoint has no writer start yet: nothing to forward either. */
	return r == AUD_ERR_EOF ? AUD_ERR_EOF : r;
}

static const struct aud_sink_driver *
driver_for(const char *url, const char **target)
{
	static const struct aud_sink_driver *const drivers[] = {
	        &aud_sink_file_driver, &aud_sink_syslog_driver, &aud_sink_relp_driver,
	        &aud_sink_https_driver, &aud_sink_http_driver};
	size_t i, n;

	for (i = 0; i < sizeof(drivers) / sizeof(drivers[0]); i++) {
		n = strlen(drivers[i]->scheme);
		if (strncmp(url, drivers[i]->scheme, n) == 0) {
			*target = url + n;
			return drivers[i];
		}
	}
	return NULL;
}

int
aud_sink_open(struct aud_sink **sp, const struct aud_sink_options *o)
{
	struct aud_sink *s = NULL;
	char corigin[AUD_MAX_ORIGIN + 1];
	const char *target = NULL;
	uint64_t next = 0;
	size_t i;
	int r;

	*sp = NULL;
	if (o == NULL || o->log_dir == NULL || o->url == NULL || o->cursor_path == NULL ||
	    o->batch_max == 0 || o->window_max == 0) {
		return AUD_ERR_INVALID;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		return AUD_ERR_NOMEM;
	}
	s->o = *o;
	if (s->o.batch_max > s->o.window_max) {
		s->o.batch_max = s->o.window_max;
	}
	if (s->o.backoff_min_ms == 0) {
		s->o.backoff_min_ms = 1;
	}
	if (s->o.backoff_max_ms < s->o.backoff_min_ms) {
		s->o.backoff_max_ms = s->o.backoff_min_ms;
	}
	s->backoff_ms = s->o.backoff_min_ms;
	s->unsynced_seg = UINT64_MAX;
	s->rng = aud_now_ns() ^ ((uint64_t)getpid() << 32) ^ 0x9e3779b97f4a7c15ull;
	s->env.o = &s->o;
	s->env.origin = s->origin;
	s->env.hostname = s->hostname;
	s->env.logf = sink_logf;
	if ((s->drv = driver_for(o->url, &target)) == NULL) {
		r = AUD_ERR_INVALID;
		goto fail;
	}
	/* RFC 5424 §6.2.4: HOSTNAME = NILVALUE / 1*255PRINTUSASCII. */
	if (o->hostname != NULL) {
		snprintf(s->hostname, sizeof(s->hostname), "%s", o->hostname);
	} else if (gethostname(s->hostname, sizeof(s->hostname) - 1) != 0) {
		s->hostname[0] = '\0';
	}
	for (i = 0; s->hostname[i] != '\0'; i++) {
		if ((unsigned char)s->hostname[i] < 33 || (unsigned char)s->hostname[i] > 126) {
			s->hostname[i] = '_';
		}
	}
	if (s->hostname[0] == '\0') {
		snprintf(s->hostname, sizeof(s->hostname), "-");
	}
	if (o->origin != NULL) {
		if (strlen(o->origin) == 0 || strlen(o->origin) > AUD_MAX_ORIGIN) {
			r = AUD_ERR_INVALID;
			goto fail;
		}
		snprintf(s->origin, sizeof(s->origin), "%s", o->origin);
	} else if ((r = find_origin(o->log_dir, s->origin)) != 0) {
		goto fail;
	}
	if ((r = aud_sink_cursor_read(o->cursor_path, &next, corigin)) != 0) {
		goto fail;
	}
	/* A cursor belongs to one log: following another log from its position would skip
	 * or repeat records without anyone noticing. */
	if (corigin[0] != '\0' && strcmp(corigin, s->origin) != 0) {
		sink_logf(&s->env, LOG_ERR, "cursor %s belongs to origin %s, not %s",
		          o->cursor_path, corigin, s->origin);
		r = AUD_ERR_INVALID;
		goto fail;
	}
	atomic_store(&s->next, next);
	atomic_store(&s->head, next);
	s->persisted = corigin[0] != '\0' ? next : UINT64_MAX;
	if ((s->win = calloc(s->o.window_max, sizeof(*s->win))) == NULL) {
		r = AUD_ERR_NOMEM;
		goto fail;
	}
	if ((r = aud_reader_open(&s->rd, o->log_dir)) != 0 ||
	    (r = s->drv->open(&s->st, &s->env, target)) != 0) {
		goto fail;
	}
	*sp = s;
	return 0;
fail:
	aud_sink_close(s);
	return r;
}

void
aud_sink_close(struct aud_sink *s)
{
	size_t i;

	if (s == NULL) {
		return;
	}
	if (s->st != NULL) {
		s->drv->close(s->st);
	}
	for (i = 0; i < s->nwin; i++) {
		free(s->win[i].line);
	}
	free(s->held.line);
	free(s->win);
	aud_reader_free(s->rd);
	free(s);
}

void
aud_sink_stop(struct aud_sink *s)
{
	atomic_store(&s->stop, 1);
}

uint64_t
aud_sink_cursor(struct aud_sink *s)
{
	return atomic_load(&s->next);
}

uint64_t
aud_sink_head(struct aud_sink *s)
{
	return atomic_load(&s->head);
}

/* ---- the loop ------------------------------------------------------------------------- */

/* Sleeps ms in slices, returning early (1) once stopped. */
static int
nap(struct aud_sink *s, uint64_t ms)
{
	while (ms > 0 && !atomic_load(&s->stop)) {
		uint64_t d = ms < SLEEP_SLICE ? ms : SLEEP_SLICE;
		struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)d * 1000000L};

		nanosleep(&ts, NULL);
		ms -= d;
	}
	return atomic_load(&s->stop);
}

static uint64_t
rng_next(struct aud_sink *s)
{
	/* xorshift64*: jitter only needs to spread retries, not to be unpredictable. */
	s->rng ^= s->rng >> 12;
	s->rng ^= s->rng << 25;
	s->rng ^= s->rng >> 27;
	return s->rng * 0x2545f4914f6cdd1dull;
}

/* After a failure: drop the connection, forget what was sent, and wait. The delay is the
 * driver's (Retry-After) if it gave one, else "equal jitter" exponential backoff: half the
 * current step plus a random part of the other half, the step doubling up to its cap. */
static void
sink_fail(struct aud_sink *s, int err, uint32_t retry_ms)
{
	uint64_t delay;

	s->drv->reset(s->st);
	s->nsent = 0;
	if (retry_ms != 0) {
		delay = retry_ms;
	} else {
		delay = s->backoff_ms / 2 + rng_next(s) % (s->backoff_ms / 2 + 1);
		s->backoff_ms = s->backoff_ms > s->o.backoff_max_ms / 2 ? s->o.backoff_max_ms
		                                                        : s->backoff_ms * 2;
	}
	s->retry_at = aud_mono_ms() + delay;
	sink_logf(&s->env, LOG_WARNING,
	          "delivery to %s failed (%s); %zu record(s) from seq %" PRIu64
	          " wait in the log, retry in %" PRIu64 " ms",
	          s->o.url, aud_strerror(err), s->nwin,
	          s->nwin > 0 ? s->win[0].rec.seq : s->read_next, delay);
}

static int
persist(struct aud_sink *s)
{
	uint64_t next = s->nwin > 0 ? s->win[0].rec.seq : s->read_next;
	int r;

	atomic_store(&s->next, next);
	if (next == s->persisted) {
		return 0;
	}
	if ((r = aud_sink_cursor_write(s->o.cursor_path, s->origin, next)) != 0) {
		sink_logf(&s->env, LOG_ERR, "cannot write cursor %s: %s", s->o.cursor_path,
		          aud_strerror(r));
		return r;
	}
	s->persisted = next;
	return 0;
}

/*
 * Makes what the sink has read of a segment durable before it is sent. A forwarder in
 * another process can read a record the writer has written but not yet synced; if the
 * machine then lost power, the writer would reuse that seq for a different event and the
 * SIEM would hold a record the log never kept. fdatasync works on a read-only descriptor
 * (fsync(2) flushes the file, not the descriptor), so the reader can close that window.
 */
static int
sync_segment(struct aud_sink *s, uint64_t seg_first)
{
	char name[64], *p = NULL;
	int fd, r = 0;

	aud_segment_name(seg_first, name);
	if (asprintf(&p, "%s/%s", s->o.log_dir, name) < 0) {
		return AUD_ERR_NOMEM;
	}
	if ((fd = open(p, O_RDONLY | O_CLOEXEC)) < 0 || fdatasync(fd) != 0) {
		sink_logf(&s->env, LOG_ERR, "cannot sync %s: %s", p, strerror(errno));
		r = AUD_ERR_IO;
	}
	if (fd >= 0) {
		close(fd);
	}
	free(p);
	return r;
}

/* Takes records from the log into the window. *got: records taken. Local errors only. */
static int
fill(struct aud_sink *s, size_t *got)
{
	uint64_t durable = UINT64_MAX, seg, no;
	const char *line;
	size_t len;
	int r;

	*got = 0;
	if (s->o.durable != NULL) {
		durable = s->o.durable(s->o.durable_arg);
	}
	while (s->nwin < s->o.window_max) {
		struct aud_sink_msg m;

		if (s->has_held) {
			m = s->held;
		} else {
			if ((r = aud_reader_next(s->rd, &line, &len, &seg, &no, NULL)) ==
			    AUD_ERR_EOF) {
				return 0;
			}
			if (r != 0) {
				return r;
			}
			if (s->o.durable == NULL && seg != s->unsynced_seg) {
				if (s->unsynced_seg != UINT64_MAX &&
				    (r = sync_segment(s, s->unsynced_seg)) != 0) {
					return r;
				}
				s->unsynced_seg = seg;
			}
			memset(&m, 0, sizeof(m));
			if ((m.line = malloc(len + 1)) == NULL) {
				return AUD_ERR_NOMEM;
			}
			memcpy(m.line, line, len);
			m.line[len] = '\0';
			m.line_len = len;
			if ((r = aud_record_parse(m.line, len, &m.rec)) != 0) {
				free(m.line);
				return r;
			}
			/* Sequence numbers are gap-free from 0 (AUDIT.md §2.1); anything else is a
			 * damaged log, which a sink must not paper over. */
			if (m.rec.seq != s->read_next) {
				sink_logf(&s->env, LOG_ERR,
				          "log out of sequence: seq %" PRIu64 " where %" PRIu64
				          " was expected",
				          m.rec.seq, s->read_next);
				free(m.line);
				return AUD_ERR_TAMPER;
			}
			atomic_store(&s->head, m.rec.seq + 1 > atomic_load(&s->next)
			                               ? m.rec.seq + 1
			                               : atomic_load(&s->next));
		}
		if (durable == UINT64_MAX ? s->o.durable != NULL : m.rec.seq > durable) {
			s->held = m;
			s->has_held = 1;
			return 0;
		}
		s->has_held = 0;
		memset(&s->held, 0, sizeof(s->held));
		s->read_next = m.rec.seq + 1;
		/* Records below the cursor were acknowledged before; signed statements
		 * (checkpoints, key rotations) are not sent, only events. */
		if (m.rec.seq < atomic_load(&s->next) || !aud_record_is_event(m.rec.type)) {
			free(m.line);
			continue;
		}
		s->win[s->nwin++] = m;
		(*got)++;
	}
	return 0;
}

static void
drop_acked(struct aud_sink *s, size_t k)
{
	size_t i;

	for (i = 0; i < k; i++) {
		free(s->win[i].line);
	}
	memmove(s->win, s->win + k, (s->nwin - k) * sizeof(*s->win));
	s->nwin -= k;
	s->nsent -= k;
}

static int
sink_loop(struct aud_sink *s, int follow)
{
	int r;

	for (;;) {
		size_t got = 0, k = 0;
		uint32_t retry_ms = 0;
		uint64_t now;

		if (atomic_load(&s->stop)) {
			return AUD_ERR_CLOSED;
		}
		if ((r = fill(s, &got)) != 0) {
			return r;
		}
		/* In-process (o.durable) the writer says what is durable; else sync it here. */
		if (got > 0 && s->unsynced_seg != UINT64_MAX) {
			if ((r = sync_segment(s, s->unsynced_seg)) != 0) {
				return r;
			}
		}
		if (s->nwin == 0) {
			if ((r = persist(s)) != 0) {
				return r;
			}
			if (!follow) {
				return 0;
			}
			nap(s, s->o.poll_ms);
			continue;
		}
		now = aud_mono_ms();
		if (now < s->retry_at) {
			nap(s, s->retry_at - now);
			continue;
		}
		while (s->nsent < s->nwin) {
			size_t n = s->nwin - s->nsent;

			n = n > s->o.batch_max ? s->o.batch_max : n;
			if ((r = s->drv->send(s->st, s->win + s->nsent, n, &retry_ms)) != 0) {
				break;
			}
			s->nsent += n;
		}
		/* After a failed send too: what was acknowledged before it (an https batch that
		 * got its 2xx, RELP answers already read) is not sent again. */
		if (r == 0 || s->nsent > 0) {
			int ar = s->drv->acked(s->st, s->nsent, &k);

			r = r != 0 ? r : ar;
		}
		if (k > 0) {
			drop_acked(s, k);
			s->backoff_ms = s->o.backoff_min_ms;
		}
		if (k > 0 || s->nwin == 0) {
			int pr = persist(s);

			if (pr != 0) {
				return pr;
			}
		}
		if (r != 0) {
			sink_fail(s, r, retry_ms);
			continue;
		}
		/* Everything sent, some not yet acknowledged (syslog settling): look again soon,
		 * sooner when new records arrive. */
		if (k == 0 && got == 0 && s->nwin > 0) {
			nap(s, s->o.poll_ms < 100 ? s->o.poll_ms : 100);
		}
	}
}

int
aud_sink_run_once(struct aud_sink *s)
{
	return sink_loop(s, 0);
}

int
aud_sink_run(struct aud_sink *s)
{
	return sink_loop(s, 1);
}
