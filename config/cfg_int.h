/*
 * config/cfg_int.h — private to config/: the shared loading machinery (load.c) used by the
 * daemon and client loaders, and the API-key parser used by daemon validation.
 *
 * Loading is three passes over one in-memory copy of the file:
 *   0. libyaml parses the whole stream, so that a syntax error is reported as such even
 *      when a schema error comes before it in the file.
 *   1. libyaml events are walked against the libcyaml schema itself (load.c). This is where
 *      unknown keys, wrong types, missing required keys and duplicate keys are refused, with
 *      the line and column of the offending node: libcyaml 1.3.1 reports line/column only
 *      in a backtrace whose marks are often those of the enclosing mapping (and stale for a
 *      missing key), echoes values (which may be secrets) and turns YAML syntax errors into
 *      "Unexpected key". The walk also records the mark of every key path
 *      ("partitions[1].tenant") so that semantic checks can point at a line too.
 *   2. libcyaml loads the same bytes into the structs of cfg.h.
 */
#ifndef HSMGATE_CFG_INT_H
#define HSMGATE_CFG_INT_H

#include <cyaml/cyaml.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "config/cfg.h"

/* Largest config file accepted; far above any real config, low enough to bound memory. */
#define CFG_FILE_MAX (16u * 1024 * 1024)

struct cfg_mark {
	unsigned line; /* 1-based */
	unsigned col;  /* 1-based */
};

struct cfg_mark_ent {
	char *path;          /* "listen.port", "partitions[1]", "tenants[0].principals[2].name" */
	struct cfg_mark key; /* where the key is (for sequence entries: the entry) */
	struct cfg_mark val; /* where its value starts */
};

/* One load in progress: where the text came from, the marks of its keys, and where the
 * error message goes. */
struct cfg_src {
	const char *name; /* the path as the caller gave it: used in messages */
	char *abspath;    /* absolute path of the file */
	char *dir;        /* directory of abspath: base of relative paths */
	struct cfg_mark_ent *marks;
	size_t n_marks;
	size_t cap_marks;
	char *err;
	size_t errsz;
	int redact; /* the file may hold a secret: never quote libcyaml's messages */
};

/* Sets up `s` for a file named `name` (absolute or relative to the working directory).
 * Fails only with CFG_ERR_NOMEM or CFG_ERR_IO (writing the message). */
int cfg_src_init(struct cfg_src *s, const char *name, char *err, size_t errsz) CFG_WUR;
void cfg_src_fini(struct cfg_src *s);

/* Reads the file named by s->name whole into *buf (NUL-terminated, *len without the NUL);
 * on failure writes "FILE: cannot read: why" and returns CFG_ERR_IO. Free with
 * cfg_buf_free, which wipes it (a client file may hold an API key). */
int cfg_file_read(struct cfg_src *s, char **buf, size_t *len) CFG_WUR;
void cfg_buf_free(char *buf, size_t len);

/* Checks buf[len] against `schema` (a CYAML_FLAG_POINTER mapping) and loads it with
 * libcyaml. On success *out is the loaded struct (free with cfg_cyaml_free) and s->marks
 * holds the mark of every key. On failure *out is NULL and the message is written. */
int cfg_yaml_load(struct cfg_src *s, const cyaml_schema_value_t *schema, const char *buf,
                  size_t len, void **out) CFG_WUR;
void cfg_cyaml_free(const cyaml_schema_value_t *schema, void *data);

/* The mark of the value (or key) at the path printed by fmt; NULL when the key was absent. */
const struct cfg_mark *cfg_src_val(const struct cfg_src *s, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
const struct cfg_mark *cfg_src_key(const struct cfg_src *s, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

/* Writes "FILE:LINE:COL: msg" (or "FILE: msg" when m is NULL) into s->err; returns `code`. */
int cfg_src_fail_at(struct cfg_src *s, int code, const struct cfg_mark *m, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
/* Writes "FILE:LINE:COL: PATH: msg", the mark being that of the value at PATH, or of PATH's
 * entry/parent when PATH itself is absent; returns `code`. */
int cfg_src_fail(struct cfg_src *s, int code, const char *path, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

/* *p := s->dir + "/" + *p when *p is relative (freeing the old string). */
int cfg_path_resolve(const struct cfg_src *s, char **p) CFG_WUR;
/* *p := strdup(v) when *p is NULL. */
int cfg_str_default(char **p, const char *v) CFG_WUR;
/* *p := printf(fmt...) when *p is NULL. */
int cfg_str_defaultf(char **p, const char *fmt, ...) CFG_WUR __attribute__((format(printf, 2, 3)));

/* 1 when name matches [a-z0-9][a-z0-9-]{0,62}. */
int cfg_name_valid(const char *name);

/* Parses a stored API-key hash "pbkdf2-sha256$<iter>$<salt b64>$<hash b64>"; 0 or
 * CFG_ERR_INVALID. salt must hold CFG_APIKEY_SALT_MAX bytes, hash CFG_APIKEY_DK bytes. */
#define CFG_APIKEY_SALT_MIN 8
#define CFG_APIKEY_SALT_MAX 64
#define CFG_APIKEY_DK       32
#define CFG_APIKEY_ITER_MAX 1000000
int cfg_apikey_parse(const char *stored, unsigned *iter, unsigned char *salt, size_t *saltlen,
                     unsigned char *hash) CFG_WUR;

/* Loaders from memory, for the fuzzer: `name` is used for messages and as the file's path
 * (relative paths in it resolve against its directory); nothing is read from disk except
 * the client's api_key_file. */
int cfg_daemon_load_buf(const char *name, const char *buf, size_t len, struct cfg_daemon **out,
                        char *err, size_t errsz) CFG_WUR;
int cfg_client_load_buf(const char *name, const char *buf, size_t len, struct cfg_client **out,
                        char *err, size_t errsz) CFG_WUR;

#endif /* HSMGATE_CFG_INT_H */
