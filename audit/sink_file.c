/*
 * audit/sink_file.c — the `file` sink: JSON lines for a log agent to tail. Each line is a
 * stored event's JSON, byte for byte, then LF. Acknowledgement = the lines are written and
 * fdatasync'd: after that a crash cannot take them back.
 */
#include "audit/sink_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

struct file_sink {
	const struct aud_sink_env *env;
	char *path;
	int fd;
	struct aud_buf buf;
};

/*
 * A crash in the middle of a write can leave an unterminated line at the end. It was never
 * acknowledged, so it will be sent again; cut it, or the resent line would be glued to the
 * fragment and both would be lost to a line-based reader.
 */
static int
cut_torn_tail(int fd)
{
	struct stat st;
	off_t end, pos;
	char c[4096];

	if (fstat(fd, &st) != 0) {
		return AUD_ERR_IO;
	}
	end = st.st_size;
	pos = end;
	while (pos > 0) {
		size_t n = pos > (off_t)sizeof(c) ? sizeof(c) : (size_t)pos;
		ssize_t got = pread(fd, c, n, pos - (off_t)n);
		size_t i;

		if (got != (ssize_t)n) {
			return AUD_ERR_IO;
		}
		for (i = n; i > 0; i--) {
			if (c[i - 1] == '\n') {
				pos = pos - (off_t)n + (off_t)i;
				goto found;
			}
		}
		pos -= (off_t)n;
	}
found:
	if (pos != end && (ftruncate(fd, pos) != 0 || fdatasync(fd) != 0)) {
		return AUD_ERR_IO;
	}
	return 0;
}

static int
file_open_fd(struct file_sink *f)
{
	int r;

	if (f->fd >= 0) {
		return 0;
	}
	/* O_APPEND: several forwarders (or a restarted one) never overwrite each other. */
	if ((f->fd = open(f->path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0640)) < 0) {
		f->env->logf(f->env, LOG_ERR, "cannot open %s: %s", f->path, strerror(errno));
		return AUD_ERR_IO;
	}
	if ((r = cut_torn_tail(f->fd)) != 0) {
		close(f->fd);
		f->fd = -1;
		return r;
	}
	return 0;
}

static int
file_open(void **st, const struct aud_sink_env *env, const char *target)
{
	struct file_sink *f;

	*st = NULL;
	if (*target == '\0') {
		return AUD_ERR_INVALID;
	}
	if ((f = calloc(1, sizeof(*f))) == NULL || (f->path = strdup(target)) == NULL) {
		free(f);
		return AUD_ERR_NOMEM;
	}
	f->env = env;
	f->fd = -1;
	*st = f;
	return 0;
}

static int
file_send(void *st, const struct aud_sink_msg *m, size_t n, uint32_t *retry_ms)
{
	struct file_sink *f = st;
	size_t i, off = 0;
	int r;

	*retry_ms = 0;
	if ((r = file_open_fd(f)) != 0) {
		return r;
	}
	f->buf.len = 0;
	for (i = 0; i < n; i++) {
		(void)aud_buf_put(&f->buf, m[i].rec.payload, m[i].rec.payload_len);
		(void)aud_buf_put(&f->buf, "\n", 1);
	}
	if (f->buf.failed != 0) {
		return f->buf.failed;
	}
	while (off < f->buf.len) {
		ssize_t w = write(f->fd, f->buf.data + off, f->buf.len - off);

		if (w < 0 && errno == EINTR) {
			continue;
		}
		if (w <= 0) {
			f->env->logf(f->env, LOG_ERR, "write %s: %s", f->path, strerror(errno));
			return AUD_ERR_IO;
		}
		off += (size_t)w;
	}
	if (fdatasync(f->fd) != 0) {
		f->env->logf(f->env, LOG_ERR, "fdatasync %s: %s", f->path, strerror(errno));
		return AUD_ERR_IO;
	}
	return 0;
}

static int
file_acked(void *st, size_t sent, size_t *nacked)
{
	(void)st;
	/* send() returned only after fdatasync: everything sent is acknowledged. */
	*nacked = sent;
	return 0;
}

static void
file_reset(void *st)
{
	struct file_sink *f = st;

	/* Reopen on the next send, which cuts whatever a failed write left unterminated. */
	if (f->fd >= 0) {
		close(f->fd);
		f->fd = -1;
	}
}

static void
file_close(void *st)
{
	struct file_sink *f = st;

	file_reset(f);
	aud_buf_free(&f->buf);
	free(f->path);
	free(f);
}

const struct aud_sink_driver aud_sink_file_driver = {
        .scheme = "file:",
        .open = file_open,
        .send = file_send,
        .acked = file_acked,
        .reset = file_reset,
        .close = file_close,
};
