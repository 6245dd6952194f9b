/*
 * tests/audit/test_sink_file.c — audit/sink_file.c through its driver: each record becomes
 * its stored JSON plus LF, appended (never overwriting what is there), acknowledged as
 * sent (after fdatasync); a torn unterminated tail left by a crash is cut before writing;
 * a file that cannot be opened is an error the runner retries.
 */
#include "tests/audit/test_sink_fixture.h"

#include <stdarg.h>

static char *tmp;

static int
suite_init(void)
{
	return (tmp = test_tmpdir_new("audit-sink-file")) == NULL ? -1 : 0;
}

static int
suite_cleanup(void)
{
	test_tmpdir_remove(tmp);
	return 0;
}

static void
env_logf(const struct aud_sink_env *env, int level, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	(void)env;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fix_log_cb(NULL, level, msg);
}

static void
mk(struct aud_sink_msg *m, struct aud_buf *line, uint64_t seq, const char *payload)
{
	static const uint8_t zero[AUD_HASH_LEN];
	uint8_t leaf[AUD_HASH_LEN], chain[AUD_HASH_LEN];

	memset(m, 0, sizeof(*m));
	memset(line, 0, sizeof(*line));
	CU_ASSERT_FATAL(aud_record_format(line, seq, 1, 'E', payload, strlen(payload), zero, leaf,
	                                  chain) == 0);
	CU_ASSERT_FATAL(aud_record_parse(line->data, line->len - 1, &m->rec) == 0);
}

static void
test_lines_and_torn_tail(void)
{
	struct aud_sink_options o;
	struct aud_sink_env env = {0};
	struct aud_sink_msg m[2];
	struct aud_buf l0, l1;
	char out[700], *text;
	void *st = NULL;
	size_t nacked = 0, len;
	uint32_t retry = 7;

	snprintf(out, sizeof(out), "%s/a.jsonl", tmp);
	/* An earlier complete line stays, the torn fragment after it goes. */
	CU_ASSERT_FATAL(test_file_write(out, "{\"old\":1}\n{\"torn", 16) == 0);
	aud_sink_options_init(&o);
	env.o = &o;
	env.origin = FIX_ORIGIN;
	env.hostname = "h";
	env.logf = env_logf;
	mk(&m[0], &l0, 0, "{\"a\":\"x\"}");
	mk(&m[1], &l1, 1, "{\"b\":\"\\u00e9 y\"}");
	CU_ASSERT_FATAL(aud_sink_file_driver.open(&st, &env, out) == 0);
	CU_ASSERT(aud_sink_file_driver.send(st, m, 2, &retry) == 0);
	CU_ASSERT(retry == 0);
	CU_ASSERT(aud_sink_file_driver.acked(st, 2, &nacked) == 0 && nacked == 2);
	aud_sink_file_driver.reset(st);
	CU_ASSERT(aud_sink_file_driver.send(st, m, 1, &retry) == 0);
	aud_sink_file_driver.close(st);
	text = fix_slurp(out, &len);
	CU_ASSERT_FATAL(text != NULL);
	CU_ASSERT_STRING_EQUAL(
	        text, "{\"old\":1}\n{\"a\":\"x\"}\n{\"b\":\"\\u00e9 y\"}\n{\"a\":\"x\"}\n");
	free(text);
	aud_buf_free(&l0);
	aud_buf_free(&l1);
}

static void
test_unopenable(void)
{
	struct aud_sink_options o;
	struct aud_sink_env env = {0};
	struct aud_sink_msg m;
	struct aud_buf l;
	char out[700];
	void *st = NULL;
	uint32_t retry;

	snprintf(out, sizeof(out), "%s/missing-dir/a.jsonl", tmp);
	aud_sink_options_init(&o);
	env.o = &o;
	env.origin = FIX_ORIGIN;
	env.logf = env_logf;
	mk(&m, &l, 0, "{}");
	fix_logbuf[0] = '\0';
	CU_ASSERT(aud_sink_file_driver.open(&st, &env, "") == AUD_ERR_INVALID);
	CU_ASSERT_FATAL(aud_sink_file_driver.open(&st, &env, out) == 0);
	CU_ASSERT(aud_sink_file_driver.send(st, &m, 1, &retry) == AUD_ERR_IO);
	CU_ASSERT(strstr(fix_logbuf, "cannot open") != NULL);
	aud_sink_file_driver.close(st);
	aud_buf_free(&l);
}

static const struct test_case cases[] = {
        {"lines: stored bytes + LF, appended, torn tail cut", test_lines_and_torn_tail},
        {"unopenable file: an error to retry", test_unopenable},
        {NULL, NULL},
};

void
test_register(void)
{
	test_suite_add("audit/sink_file", suite_init, suite_cleanup, cases);
}
