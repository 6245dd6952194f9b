/*
 * config/load.c — the machinery shared by the daemon and client loaders: reading the file,
 * checking it against the libcyaml schema with libyaml (so that every refusal names a line,
 * a column and a key), loading it with libcyaml, error messages and path resolution.
 * See cfg_int.h for why the schema is checked by a walk of our own before libcyaml loads.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* asprintf, reallocarray (the Makefile defines it too) */
#endif
#include "config/cfg_int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include <openssl/crypto.h>

const char *
cfg_strerror(int err)
{
	switch (err) {
	case CFG_OK:
		return "success";
	case CFG_ERR_IO:
		return "configuration file cannot be read";
	case CFG_ERR_SYNTAX:
		return "configuration is not YAML of the expected schema";
	case CFG_ERR_INVALID:
		return "configuration is inconsistent";
	case CFG_ERR_NOMEM:
		return "out of memory";
	default:
		return "unknown configuration error";
	}
}

/* ---- messages ----------------------------------------------------------------------------- */

static void
src_vmsg(struct cfg_src *s, const struct cfg_mark *m, const char *prefix, const char *fmt,
         va_list ap)
{
	char msg[768];

	if (s->err == NULL || s->errsz == 0) {
		return;
	}
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (m != NULL) {
		snprintf(s->err, s->errsz, "%s:%u:%u: %s%s", s->name, m->line, m->col,
		         prefix != NULL ? prefix : "", msg);
	} else {
		snprintf(s->err, s->errsz, "%s: %s%s", s->name, prefix != NULL ? prefix : "", msg);
	}
}

int
cfg_src_fail_at(struct cfg_src *s, int code, const struct cfg_mark *m, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	src_vmsg(s, m, NULL, fmt, ap);
	va_end(ap);
	return code;
}

static const struct cfg_mark *
src_find(const struct cfg_src *s, const char *path, int want_key)
{
	size_t i;

	for (i = 0; i < s->n_marks; i++) {
		if (strcmp(s->marks[i].path, path) == 0) {
			return want_key ? &s->marks[i].key : &s->marks[i].val;
		}
	}
	return NULL;
}

/* The mark for `path`, or failing that the nearest enclosing one that was in the file
 * ("partitions[1].slot" -> "partitions[1]"). */
static const struct cfg_mark *
src_find_near(const struct cfg_src *s, const char *path)
{
	char buf[256];
	const struct cfg_mark *m;
	char *cut;

	snprintf(buf, sizeof(buf), "%s", path);
	for (;;) {
		if ((m = src_find(s, buf, 0)) != NULL) {
			return m;
		}
		cut = strrchr(buf, '.');
		if (cut == NULL || strrchr(buf, '[') > cut) {
			cut = strrchr(buf, '[');
		}
		if (cut == NULL) {
			return NULL;
		}
		*cut = '\0';
	}
}

int
cfg_src_fail(struct cfg_src *s, int code, const char *path, const char *fmt, ...)
{
	char prefix[300];
	va_list ap;

	snprintf(prefix, sizeof(prefix), "%s: ", path);
	va_start(ap, fmt);
	src_vmsg(s, src_find_near(s, path), prefix, fmt, ap);
	va_end(ap);
	return code;
}

const struct cfg_mark *
cfg_src_val(const struct cfg_src *s, const char *fmt, ...)
{
	char path[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(path, sizeof(path), fmt, ap);
	va_end(ap);
	return src_find(s, path, 0);
}

const struct cfg_mark *
cfg_src_key(const struct cfg_src *s, const char *fmt, ...)
{
	char path[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(path, sizeof(path), fmt, ap);
	va_end(ap);
	return src_find(s, path, 1);
}

static int
src_mark_add(struct cfg_src *s, const char *path, const yaml_mark_t *k, const yaml_mark_t *v)
{
	struct cfg_mark_ent *e;

	if (s->n_marks == s->cap_marks) {
		size_t cap = s->cap_marks == 0 ? 32 : s->cap_marks * 2;

		e = reallocarray(s->marks, cap, sizeof(*e));
		if (e == NULL) {
			return CFG_ERR_NOMEM;
		}
		s->marks = e;
		s->cap_marks = cap;
	}
	e = &s->marks[s->n_marks];
	if ((e->path = strdup(path)) == NULL) {
		return CFG_ERR_NOMEM;
	}
	e->key.line = (unsigned)k->line + 1;
	e->key.col = (unsigned)k->column + 1;
	e->val.line = (unsigned)v->line + 1;
	e->val.col = (unsigned)v->column + 1;
	s->n_marks++;
	return 0;
}

/* ---- source set-up ------------------------------------------------------------------------ */

int
cfg_src_init(struct cfg_src *s, const char *name, char *err, size_t errsz)
{
	char cwd[PATH_MAX];
	char *slash;

	memset(s, 0, sizeof(*s));
	s->name = name;
	s->err = err;
	s->errsz = errsz;
	if (err != NULL && errsz > 0) {
		err[0] = '\0';
	}
	if (name == NULL || name[0] == '\0') {
		s->name = "(null)";
		return cfg_src_fail_at(s, CFG_ERR_IO, NULL, "no configuration file named");
	}
	/* Lexically absolute, not realpath(): a config reached through a symlink resolves its
	 * relative paths beside the link, where the operator sees them. */
	if (name[0] == '/') {
		s->abspath = strdup(name);
	} else {
		if (getcwd(cwd, sizeof(cwd)) == NULL) {
			return cfg_src_fail_at(s, CFG_ERR_IO, NULL,
			                       "cannot find the working directory: %s",
			                       strerror(errno));
		}
		if (asprintf(&s->abspath, "%s/%s", cwd, name) < 0) {
			s->abspath = NULL;
		}
	}
	if (s->abspath == NULL || (s->dir = strdup(s->abspath)) == NULL) {
		return cfg_src_fail_at(s, CFG_ERR_NOMEM, NULL, "out of memory");
	}
	slash = strrchr(s->dir, '/');
	if (slash == s->dir) {
		slash[1] = '\0'; /* "/x.yaml" lives in "/" */
	} else {
		*slash = '\0';
	}
	return 0;
}

void
cfg_src_fini(struct cfg_src *s)
{
	size_t i;

	for (i = 0; i < s->n_marks; i++) {
		free(s->marks[i].path);
	}
	free(s->marks);
	free(s->abspath);
	free(s->dir);
	memset(s, 0, sizeof(*s));
}

int
cfg_file_read(struct cfg_src *s, char **out, size_t *outlen)
{
	struct stat st;
	char *buf = NULL;
	size_t len = 0, cap;
	ssize_t n;
	int fd, r;

	*out = NULL;
	*outlen = 0;
	if ((fd = open(s->name, O_RDONLY | O_CLOEXEC)) < 0) {
		return cfg_src_fail_at(s, CFG_ERR_IO, NULL, "cannot read: %s", strerror(errno));
	}
	if (fstat(fd, &st) != 0) {
		r = cfg_src_fail_at(s, CFG_ERR_IO, NULL, "cannot read: %s", strerror(errno));
		goto out;
	}
	if (S_ISDIR(st.st_mode)) {
		r = cfg_src_fail_at(s, CFG_ERR_IO, NULL, "cannot read: is a directory");
		goto out;
	}
	cap = S_ISREG(st.st_mode) && st.st_size > 0 && (uint64_t)st.st_size < CFG_FILE_MAX
	              ? (size_t)st.st_size + 1
	              : 4096;
	if ((buf = malloc(cap)) == NULL) {
		r = cfg_src_fail_at(s, CFG_ERR_NOMEM, NULL, "out of memory");
		goto out;
	}
	for (;;) {
		if (len + 1 == cap) {
			char *nb;

			if (cap > CFG_FILE_MAX) {
				r = cfg_src_fail_at(s, CFG_ERR_IO, NULL,
				                    "cannot read: larger than %u bytes",
				                    CFG_FILE_MAX);
				goto out;
			}
			/* Not realloc(): the old buffer may hold a secret and must be wiped. */
			if ((nb = malloc(cap * 2)) == NULL) {
				r = cfg_src_fail_at(s, CFG_ERR_NOMEM, NULL, "out of memory");
				goto out;
			}
			memcpy(nb, buf, len);
			cfg_buf_free(buf, cap);
			buf = nb;
			cap *= 2;
		}
		n = read(fd, buf + len, cap - 1 - len);
		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			r = cfg_src_fail_at(s, CFG_ERR_IO, NULL, "cannot read: %s",
			                    strerror(errno));
			goto out;
		}
		if (n == 0) {
			break;
		}
		len += (size_t)n;
	}
	buf[len] = '\0';
	*out = buf;
	*outlen = len;
	buf = NULL; /* transferred */
	r = 0;
out:
	if (buf != NULL) {
		cfg_buf_free(buf, cap);
	}
	close(fd);
	return r;
}

void
cfg_buf_free(char *buf, size_t len)
{
	if (buf != NULL) {
		OPENSSL_cleanse(buf, len);
		free(buf);
	}
}

/* ---- defaults and paths ------------------------------------------------------------------- */

int
cfg_path_resolve(const struct cfg_src *s, char **p)
{
	char *abs;

	if (*p == NULL || (*p)[0] == '/') {
		return 0;
	}
	if (asprintf(&abs, "%s%s%s", s->dir, strcmp(s->dir, "/") == 0 ? "" : "/", *p) < 0) {
		return CFG_ERR_NOMEM;
	}
	free(*p);
	*p = abs;
	return 0;
}

int
cfg_str_default(char **p, const char *v)
{
	if (*p != NULL) {
		return 0;
	}
	return (*p = strdup(v)) == NULL ? CFG_ERR_NOMEM : 0;
}

int
cfg_str_defaultf(char **p, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (*p != NULL) {
		return 0;
	}
	va_start(ap, fmt);
	n = vasprintf(p, fmt, ap);
	va_end(ap);
	if (n < 0) {
		*p = NULL;
		return CFG_ERR_NOMEM;
	}
	return 0;
}

int
cfg_name_valid(const char *name)
{
	size_t i;

	if (name == NULL || name[0] == '\0' || name[0] == '-') {
		return 0;
	}
	for (i = 0; name[i] != '\0'; i++) {
		char c = name[i];

		if (i >= 63) {
			return 0;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) {
			return 0;
		}
	}
	return 1;
}

/* ---- pass 1: the schema walk -------------------------------------------------------------- */

struct walk {
	struct cfg_src *src;
	yaml_parser_t p;
};

static struct cfg_mark
mk(const yaml_mark_t *m)
{
	struct cfg_mark c = {(unsigned)m->line + 1, (unsigned)m->column + 1};

	return c;
}

static int
walk_next(struct walk *w, yaml_event_t *ev)
{
	struct cfg_mark m;

	if (!yaml_parser_parse(&w->p, ev)) {
		memset(ev, 0, sizeof(*ev));
		if (w->p.error == YAML_MEMORY_ERROR) {
			return cfg_src_fail_at(w->src, CFG_ERR_NOMEM, NULL, "out of memory");
		}
		if (w->p.error == YAML_READER_ERROR) {
			return cfg_src_fail_at(w->src, CFG_ERR_SYNTAX, NULL,
			                       "not valid YAML: %s at byte %zu",
			                       w->p.problem != NULL ? w->p.problem : "bad input",
			                       w->p.problem_offset);
		}
		m = mk(&w->p.problem_mark);
		return cfg_src_fail_at(w->src, CFG_ERR_SYNTAX, &m, "not valid YAML: %s%s%s%s",
		                       w->p.problem != NULL ? w->p.problem : "syntax error",
		                       w->p.context != NULL ? " (" : "",
		                       w->p.context != NULL ? w->p.context : "",
		                       w->p.context != NULL ? ")" : "");
	}
	if (ev->type == YAML_ALIAS_EVENT) {
		/* Configs have no use for them, and they make one node appear in many places. */
		m = mk(&ev->start_mark);
		yaml_event_delete(ev);
		memset(ev, 0, sizeof(*ev));
		return cfg_src_fail_at(w->src, CFG_ERR_SYNTAX, &m,
		                       "YAML aliases are not supported");
	}
	return 0;
}

/* A key or value quoted in a message: printable ASCII only, and short. */
static void
printable(char *dst, size_t dstsz, const unsigned char *v, size_t len)
{
	size_t i, o = 0;

	for (i = 0; i < len && o + 4 < dstsz; i++) {
		dst[o++] = (v[i] >= 0x20 && v[i] < 0x7f) ? (char)v[i] : '?';
		if (i == 63 && len > 64) {
			memcpy(dst + o, "...", 3);
			o += 3;
			break;
		}
	}
	dst[o] = '\0';
}

/* " (in tls)" after a message, or nothing at the top level. */
static const char *
in_of(char *buf, size_t bufsz, const char *parent)
{
	if (parent == NULL || parent[0] == '\0') {
		return "";
	}
	snprintf(buf, bufsz, " (in %s)", parent);
	return buf;
}

static int walk_value(struct walk *w, const cyaml_schema_value_t *s, const yaml_event_t *ev,
                      const char *path, const char *label, const char *parent);

static const char *
type_name(const cyaml_schema_value_t *s)
{
	switch (s->type) {
	case CYAML_MAPPING:
		return "a mapping";
	case CYAML_SEQUENCE:
		return "a list";
	case CYAML_STRING:
		return s->string.min > 0 ? "a non-empty string" : "a string";
	case CYAML_UINT:
		return "an unsigned integer";
	case CYAML_BOOL:
		return "true or false";
	default:
		return "a value of another type";
	}
}

static int
walk_type_error(struct walk *w, const cyaml_schema_value_t *s, const yaml_event_t *ev,
                const char *label, const char *parent)
{
	struct cfg_mark m = mk(&ev->start_mark);
	char in[300];

	if (label == NULL) {
		return cfg_src_fail_at(w->src, CFG_ERR_SYNTAX, &m,
		                       "expected %s of configuration keys at the top level",
		                       type_name(s));
	}
	return cfg_src_fail_at(w->src, CFG_ERR_SYNTAX, &m, "key '%s': expected %s%s", label,
	                       type_name(s), in_of(in, sizeof(in), parent));
}

static int
walk_uint(struct walk *w, const cyaml_schema_value_t *s, const yaml_event_t *ev, const char *label,
          const char *parent)
{
	const unsigned char *v = ev->data.scalar.value;
	size_t len = ev->data.scalar.length, i;
	uint64_t max, n = 0;
	struct cfg_mark m = mk(&ev->start_mark);
	char in[300];

	max = s->data_size >= 8 ? UINT64_MAX : (UINT64_C(1) << (8 * s->data_size)) - 1;
	/* Decimal only: libcyaml parses with strtoull(base 0), which would read "010" as 8. */
	if (len == 0 || len > 20 || (len > 1 && v[0] == '0')) {
		return walk_type_error(w, s, ev, label, parent);
	}
	for (i = 0; i < len; i++) {
		if (v[i] < '0' || v[i] > '9') {
			return walk_type_error(w, s, ev, label, parent);
		}
		if (n > (UINT64_MAX - (v[i] - '0')) / 10) {
			n = UINT64_MAX;
			break;
		}
		n = n * 10 + (v[i] - '0');
	}
	if (n > max || (i < len)) {
		return cfg_src_fail_at(w->src, CFG_ERR_SYNTAX, &m,
		                       "key '%s': %.*s is out of range (at most %llu)%s", label,
		                       (int)len, (const char *)v, (unsigned long long)max,
		                       in_of(in, sizeof(in), parent));
	}
	return 0;
}

/* true or false, nothing else: libcyaml reads every value other than false, no, off,
 * disable and 0 as true, so that a typo ("flase") would silently mean true. */
static int
walk_bool(struct walk *w, const cyaml_schema_value_t *s, const yaml_event_t *ev, const char *label,
          const char *parent)
{
	const char *v = (const char *)ev->data.scalar.value;

	if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE ||
	    (strcmp(v, "true") != 0 && strcmp(v, "false") != 0)) {
		return walk_type_error(w, s, ev, label, parent);
	}
	return 0;
}

static int
walk_string(struct walk *w, const cyaml_schema_value_t *s, const yaml_event_t *ev,
            const char *label, const char *parent)
{
	size_t len = ev->data.scalar.length;
	struct cfg_mark m = mk(&ev->start_mark);
	char in[300];

	if (len < s->string.min) {
		return walk_type_error(w, s, ev, label, parent);
	}
	/* libcyaml would load a plain `~` or `null` as that very string: say so instead of
	 * resolving "~" as a path. An absent optional key is written by leaving it out. */
	if (ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
	    (strcmp((const char *)ev->data.scalar.value, "~") == 0 ||
	     strcmp((const char *)ev->data.scalar.value, "null") == 0 ||
	     strcmp((const char *)ev->data.scalar.value, "Null") == 0 ||
	     strcmp((const char *)ev->data.scalar.value, "NULL") == 0)) {
		return cfg_src_fail_at(w->src, CFG_ERR_SYNTAX, &m,
		                       "key '%s': expected %s, not null (leave the key out)%s",
		                       label, type_name(s), in_of(in, sizeof(in), parent));
	}
	if (s->string.max != CYAML_UNLIMITED && len > s->string.max) {
		return cfg_src_fail_at(w->src, CFG_ERR_SYNTAX, &m,
		                       "key '%s': longer than %u characters%s", label,
		                       s->string.max, in_of(in, sizeof(in), parent));
	}
	if (strlen((const char *)ev->data.scalar.value) != len) {
		return cfg_src_fail_at(w->src, CFG_ERR_SYNTAX, &m,
		                       "key '%s': contains a NUL character%s", label,
		                       in_of(in, sizeof(in), parent));
	}
	return 0;
}

static int
walk_mapping(struct walk *w, const cyaml_schema_value_t *s, const yaml_event_t *start,
             const char *path)
{
	const cyaml_schema_field_t *fields = s->mapping.fields, *f;
	unsigned char seen[64];
	size_t nf, i;
	yaml_event_t k, v;
	struct cfg_mark m;
	char child[256], key[80], in[300];
	int r;

	memset(&k, 0, sizeof(k));
	memset(&v, 0, sizeof(v));
	memset(seen, 0, sizeof(seen));
	for (nf = 0; fields[nf].key != NULL; nf++) {
	}
	if (nf > sizeof(seen)) {
		return cfg_src_fail_at(w->src, CFG_ERR_SYNTAX, NULL, "internal: schema too wide");
	}
	for (;;) {
		if ((r = walk_next(w, &k)) != 0) {
			goto out;
		}
		if (k.type == YAML_MAPPING_END_EVENT) {
			break;
		}
		m = mk(&k.start_mark);
		if (k.type != YAML_SCALAR_EVENT) {
			r = cfg_src_fail_at(w->src, CFG_ERR_SYNTAX, &m, "keys must be strings%s",
			                    in_of(in, sizeof(in), path));
			goto out;
		}
		printable(key, sizeof(key), k.data.scalar.value, k.data.scalar.length);
		for (i = 0, f = NULL; i < nf; i++) {
			if (strlen(fields[i].key) == k.data.scalar.length &&
			    memcmp(fields[i].key, k.data.scalar.value, k.data.scalar.length) == 0) {
				f = &fields[i];
				break;
			}
		}
		if (f == NULL) {
			r = cfg_src_fail_at(w->src, CFG_ERR_SYNTAX, &m, "unknown key '%s'%s", key,
			                    in_of(in, sizeof(in), path));
			goto out;
		}
		if (seen[i]) {
			r = cfg_src_fail_at(w->src, CFG_ERR_SYNTAX, &m, "duplicate key '%s'%s", key,
			                    in_of(in, sizeof(in), path));
			goto out;
		}
		seen[i] = 1;
		snprintf(child, sizeof(child), "%s%s%s", path, path[0] != '\0' ? "." : "", f->key);
		if ((r = walk_next(w, &v)) != 0) {
			goto out;
		}
		if ((r = src_mark_add(w->src, child, &k.start_mark, &v.start_mark)) != 0) {
			r = cfg_src_fail_at(w->src, r, NULL, "out of memory");
			goto out;
		}
		if ((r = walk_value(w, &f->value, &v, child, f->key, path)) != 0) {
			goto out;
		}
		yaml_event_delete(&k);
		yaml_event_delete(&v);
		memset(&k, 0, sizeof(k));
		memset(&v, 0, sizeof(v));
	}
	for (i = 0; i < nf; i++) {
		if (seen[i] || (fields[i].value.flags & CYAML_FLAG_OPTIONAL) != 0) {
			continue;
		}
		if (path[0] == '\0') {
			r = cfg_src_fail_at(w->src, CFG_ERR_SYNTAX, NULL,
			                    "missing required key '%s'", fields[i].key);
		} else {
			m = mk(&start->start_mark);
			r = cfg_src_fail_at(w->src, CFG_ERR_SYNTAX, &m,
			                    "missing required key '%s' (in %s)", fields[i].key,
			                    path);
		}
		goto out;
	}
	r = 0;
out:
	yaml_event_delete(&k);
	yaml_event_delete(&v);
	return r;
}

static int
walk_sequence(struct walk *w, const cyaml_schema_value_t *s, const yaml_event_t *start,
              const char *path, const char *label, const char *parent)
{
	yaml_event_t e;
	unsigned n = 0;
	struct cfg_mark m = mk(&start->start_mark);
	char child[256], lab[128], in[300];
	int r;

	memset(&e, 0, sizeof(e));
	for (;;) {
		if ((r = walk_next(w, &e)) != 0) {
			goto out;
		}
		if (e.type == YAML_SEQUENCE_END_EVENT) {
			break;
		}
		if (n == 1000000) {
			r = cfg_src_fail_at(w->src, CFG_ERR_SYNTAX, &m,
			                    "key '%s': too many entries", label);
			goto out;
		}
		snprintf(child, sizeof(child), "%s[%u]", path, n);
		snprintf(lab, sizeof(lab), "%s[%u]", label, n);
		if ((r = src_mark_add(w->src, child, &e.start_mark, &e.start_mark)) != 0) {
			r = cfg_src_fail_at(w->src, r, NULL, "out of memory");
			goto out;
		}
		if ((r = walk_value(w, s->sequence.entry, &e, child, lab, parent)) != 0) {
			goto out;
		}
		yaml_event_delete(&e);
		memset(&e, 0, sizeof(e));
		n++;
	}
	if (n < s->sequence.min) {
		r = cfg_src_fail_at(w->src, CFG_ERR_SYNTAX, &m, "key '%s': needs at least %u %s%s",
		                    label, s->sequence.min,
		                    s->sequence.min == 1 ? "entry" : "entries",
		                    in_of(in, sizeof(in), parent));
		goto out;
	}
	if (s->sequence.max != CYAML_UNLIMITED && n > s->sequence.max) {
		r = cfg_src_fail_at(w->src, CFG_ERR_SYNTAX, &m, "key '%s': at most %u entries%s",
		                    label, s->sequence.max, in_of(in, sizeof(in), parent));
		goto out;
	}
	r = 0;
out:
	yaml_event_delete(&e);
	return r;
}

/* Consumes the rest of the value that `ev` starts, checking it against `s`. `path` is the
 * value's key path, `label` its name in messages, `parent` the path of its mapping. */
static int
walk_value(struct walk *w, const cyaml_schema_value_t *s, const yaml_event_t *ev, const char *path,
           const char *label, const char *parent)
{
	switch (s->type) {
	case CYAML_MAPPING:
		if (ev->type != YAML_MAPPING_START_EVENT) {
			return walk_type_error(w, s, ev, label, parent);
		}
		return walk_mapping(w, s, ev, path);
	case CYAML_SEQUENCE:
		if (ev->type != YAML_SEQUENCE_START_EVENT) {
			return walk_type_error(w, s, ev, label, parent);
		}
		return walk_sequence(w, s, ev, path, label, parent);
	case CYAML_STRING:
		if (ev->type != YAML_SCALAR_EVENT) {
			return walk_type_error(w, s, ev, label, parent);
		}
		return walk_string(w, s, ev, label, parent);
	case CYAML_UINT:
		if (ev->type != YAML_SCALAR_EVENT) {
			return walk_type_error(w, s, ev, label, parent);
		}
		return walk_uint(w, s, ev, label, parent);
	case CYAML_BOOL:
		if (ev->type != YAML_SCALAR_EVENT) {
			return walk_type_error(w, s, ev, label, parent);
		}
		return walk_bool(w, s, ev, label, parent);
	default:
		return cfg_src_fail_at(w->src, CFG_ERR_SYNTAX, NULL,
		                       "internal: schema type %d not supported", (int)s->type);
	}
}

static int
walk_document(struct walk *w, const cyaml_schema_value_t *schema)
{
	yaml_event_t e;
	struct cfg_mark m;
	int r;

	memset(&e, 0, sizeof(e));
	if ((r = walk_next(w, &e)) != 0) {
		goto out;
	}
	if (e.type != YAML_STREAM_START_EVENT) {
		r = cfg_src_fail_at(w->src, CFG_ERR_SYNTAX, NULL, "not valid YAML");
		goto out;
	}
	yaml_event_delete(&e);
	if ((r = walk_next(w, &e)) != 0) {
		goto out;
	}
	if (e.type == YAML_STREAM_END_EVENT) {
		r = cfg_src_fail_at(w->src, CFG_ERR_SYNTAX, NULL,
		                    "empty file (expected a mapping of configuration keys)");
		goto out;
	}
	/* STREAM_START is always followed by DOCUMENT_START or STREAM_END. */
	yaml_event_delete(&e);
	if ((r = walk_next(w, &e)) != 0) {
		goto out;
	}
	if (e.type == YAML_SCALAR_EVENT && e.data.scalar.length == 0 &&
	    e.data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
		m = mk(&e.start_mark);
		r = cfg_src_fail_at(w->src, CFG_ERR_SYNTAX, &m,
		                    "empty document (expected a mapping of configuration keys)");
		goto out;
	}
	if ((r = walk_value(w, schema, &e, "", NULL, "")) != 0) {
		goto out;
	}
	yaml_event_delete(&e);
	if ((r = walk_next(w, &e)) != 0) { /* DOCUMENT_END */
		goto out;
	}
	yaml_event_delete(&e);
	if ((r = walk_next(w, &e)) != 0) {
		goto out;
	}
	if (e.type != YAML_STREAM_END_EVENT) {
		m = mk(&e.start_mark);
		r = cfg_src_fail_at(w->src, CFG_ERR_SYNTAX, &m,
		                    "only one YAML document is allowed in a file");
		goto out;
	}
	r = 0;
out:
	yaml_event_delete(&e);
	return r;
}

/* Parses the whole stream without looking at the schema, so that a file that is not YAML
 * is reported as such, rather than by the first schema error ahead of its syntax error. */
static int
walk_syntax(struct walk *w)
{
	yaml_event_t e;
	int r, done;

	do {
		if ((r = walk_next(w, &e)) != 0) {
			return r;
		}
		done = e.type == YAML_STREAM_END_EVENT;
		yaml_event_delete(&e);
	} while (!done);
	return 0;
}

/* ---- pass 2: libcyaml --------------------------------------------------------------------- */

/* libcyaml allocates through this, so that the loaded structs can be amended with strdup()
 * and freed with free() or cyaml_free() alike. */
static void *
cfg_mem(void *ctx, void *ptr, size_t size)
{
	(void)ctx;
	if (size == 0) {
		free(ptr);
		return NULL;
	}
	return realloc(ptr, size);
}

struct cyaml_log_ctx {
	char first[256];
	int have;
};

/* Keeps libcyaml's first error line; its backtrace lines follow and are dropped. */
static void
cfg_cyaml_log(cyaml_log_t level, void *ctx, const char *fmt, va_list args)
{
	struct cyaml_log_ctx *lc = ctx;
	size_t n;

	if (level < CYAML_LOG_ERROR || lc->have) {
		return;
	}
	vsnprintf(lc->first, sizeof(lc->first), fmt, args);
	n = strlen(lc->first);
	while (n > 0 && (lc->first[n - 1] == '\n' || lc->first[n - 1] == ' ')) {
		lc->first[--n] = '\0';
	}
	lc->have = 1;
}

static const cyaml_config_t cfg_cyaml_free_config = {
        .log_fn = NULL,
        .mem_fn = cfg_mem,
        .log_level = CYAML_LOG_ERROR,
        .flags = CYAML_CFG_NO_ALIAS,
};

void
cfg_cyaml_free(const cyaml_schema_value_t *schema, void *data)
{
	if (data != NULL) {
		(void)cyaml_free(&cfg_cyaml_free_config, schema, data, 0);
	}
}

int
cfg_yaml_load(struct cfg_src *s, const cyaml_schema_value_t *schema, const char *buf, size_t len,
              void **out)
{
	struct walk w;
	struct cyaml_log_ctx lc;
	cyaml_config_t cc;
	cyaml_err_t ce;
	void *data = NULL;
	int r;

	*out = NULL;
	memset(&w, 0, sizeof(w));
	w.src = s;
	if (!yaml_parser_initialize(&w.p)) {
		return cfg_src_fail_at(s, CFG_ERR_NOMEM, NULL, "out of memory");
	}
	yaml_parser_set_input_string(&w.p, (const unsigned char *)buf, len);
	r = walk_syntax(&w);
	yaml_parser_delete(&w.p);
	if (r != 0) {
		return r;
	}
	if (!yaml_parser_initialize(&w.p)) {
		return cfg_src_fail_at(s, CFG_ERR_NOMEM, NULL, "out of memory");
	}
	yaml_parser_set_input_string(&w.p, (const unsigned char *)buf, len);
	r = walk_document(&w, schema);
	yaml_parser_delete(&w.p);
	if (r != 0) {
		return r;
	}

	memset(&lc, 0, sizeof(lc));
	memset(&cc, 0, sizeof(cc));
	cc.log_fn = cfg_cyaml_log;
	cc.log_ctx = &lc;
	cc.mem_fn = cfg_mem;
	cc.log_level = CYAML_LOG_ERROR;
	cc.flags = CYAML_CFG_NO_ALIAS;
	ce = cyaml_load_data((const uint8_t *)buf, len, &cc, schema, &data, NULL);
	if (ce == CYAML_ERR_OOM) {
		return cfg_src_fail_at(s, CFG_ERR_NOMEM, NULL, "out of memory");
	}
	if (ce != CYAML_OK) {
		/* Our walk accepted what libcyaml refused: say what libcyaml said, unless the
		 * file may hold a secret (libcyaml quotes values). */
		if (data != NULL) {
			cfg_cyaml_free(schema, data);
		}
		return cfg_src_fail_at(s, CFG_ERR_SYNTAX, NULL, "does not match the schema: %s",
		                       s->redact || !lc.have ? cyaml_strerror(ce) : lc.first);
	}
	if (data == NULL) {
		/* libcyaml returns no struct for a mapping that sets no key. */
		if ((data = calloc(1, schema->data_size)) == NULL) {
			return cfg_src_fail_at(s, CFG_ERR_NOMEM, NULL, "out of memory");
		}
	}
	*out = data;
	return 0;
}
