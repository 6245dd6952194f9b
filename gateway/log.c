/*
 * gateway/log.c — structured log lines on stderr and the module's error strings.
 *
 * One event = one line = one write(2), so that lines of the gateway and of its workers
 * (which share stderr) never interleave mid-line.
 */
#include "gateway/gw.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static enum gw_log_level log_level = GW_LOG_INFO;

const char *
gw_strerror(int err)
{
	switch (err) {
	case GW_OK:
		return "success";
	case GW_ERR_NOMEM:
		return "out of memory";
	case GW_ERR_CONFIG:
		return "unusable configuration";
	case GW_ERR_TLS:
		return "TLS set-up failed";
	case GW_ERR_LISTEN:
		return "cannot listen";
	case GW_ERR_SPAWN:
		return "cannot start a worker";
	case GW_ERR_IO:
		return "I/O error";
	case GW_ERR_MALFORMED:
		return "malformed message";
	case GW_ERR_AUTH:
		return "authentication failed";
	case GW_ERR_EVENT:
		return "event loop error";
	case GW_ERR_NOTFOUND:
		return "not found";
	default:
		return "unknown error";
	}
}

void
gw_log_set_level(enum gw_log_level level)
{
	log_level = level;
}

static const char *
level_name(enum gw_log_level level)
{
	switch (level) {
	case GW_LOG_DEBUG:
		return "debug";
	case GW_LOG_INFO:
		return "info";
	case GW_LOG_WARN:
		return "warn";
	case GW_LOG_ERROR:
		return "error";
	default:
		return "info";
	}
}

const char *
gw_log_quote(const char *s, char *out, size_t outsz)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	if (outsz < 6) {
		if (outsz > 0) {
			out[0] = '\0';
		}
		return out;
	}
	out[o++] = '"';
	for (; s != NULL && *s != '\0'; s++) {
		unsigned char ch = (unsigned char)*s;
		char esc[4];
		size_t n = 0;

		if (ch == '"' || ch == '\\') {
			esc[n++] = '\\';
			esc[n++] = (char)ch;
		} else if (ch < 0x20 || ch == 0x7f) {
			esc[n++] = '\\';
			esc[n++] = 'x';
			esc[n++] = hex[ch >> 4];
			esc[n++] = hex[ch & 0xf];
		} else {
			esc[n++] = (char)ch;
		}
		/* keep room for `..."` and the NUL */
		if (o + n + 5 > outsz) {
			memcpy(out + o, "...", 3);
			o += 3;
			break;
		}
		memcpy(out + o, esc, n);
		o += n;
	}
	out[o++] = '"';
	out[o] = '\0';
	return out;
}

void
gw_log(enum gw_log_level level, const char *component, const char *msg, const char *kv, ...)
{
	char line[2048], qmsg[512];
	struct timespec ts;
	struct tm tm;
	size_t n;
	int r;

	if (level < log_level) {
		return;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	r = snprintf(line, sizeof(line),
	             "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s component=%s msg=%s",
	             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
	             ts.tv_nsec / 1000000, level_name(level), component,
	             gw_log_quote(msg, qmsg, sizeof(qmsg)));
	n = r < 0 ? 0 : (size_t)r >= sizeof(line) ? sizeof(line) - 1 : (size_t)r;
	if (kv != NULL && *kv != '\0' && n + 2 < sizeof(line)) {
		va_list ap;

		line[n++] = ' ';
		va_start(ap, kv);
		r = vsnprintf(line + n, sizeof(line) - n, kv, ap);
		va_end(ap);
		if (r > 0) {
			n += (size_t)r >= sizeof(line) - n ? sizeof(line) - n - 1 : (size_t)r;
		}
	}
	if (n + 1 >= sizeof(line)) {
		n = sizeof(line) - 2;
	}
	line[n++] = '\n';
	/* A short or failed write to stderr has nowhere better to be reported. */
	if (write(STDERR_FILENO, line, n) < 0) {
		return;
	}
}
