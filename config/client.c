/*
 * config/client.c — the client module's file (HSMGATE_CONF): the gateway to reach, the CA
 * that vouches for it, and exactly one credential. The file may hold an API key, so every
 * copy of its text is wiped and no message quotes a value from it.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* asprintf, reallocarray (the Makefile defines it too) */
#endif
#include "config/cfg_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#define PATH_LEN_MAX    4096
#define APIKEY_LEN_MAX  1024
#define APIKEY_FILE_MAX 4096

#define OPT (CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL)
#define REQ CYAML_FLAG_POINTER

static const cyaml_schema_field_t client_fields[] = {
        CYAML_FIELD_STRING_PTR("gateway", REQ, struct cfg_client, gateway, 1, 300),
        CYAML_FIELD_STRING_PTR("ca", REQ, struct cfg_client, ca, 1, PATH_LEN_MAX),
        CYAML_FIELD_STRING_PTR("cert", OPT, struct cfg_client, cert, 1, PATH_LEN_MAX),
        CYAML_FIELD_STRING_PTR("key", OPT, struct cfg_client, key, 1, PATH_LEN_MAX),
        CYAML_FIELD_STRING_PTR("api_key", OPT, struct cfg_client, api_key, 1, APIKEY_LEN_MAX),
        CYAML_FIELD_STRING_PTR("api_key_file", OPT, struct cfg_client, api_key_file, 1,
                               PATH_LEN_MAX),
        CYAML_FIELD_STRING_PTR("server_name", OPT, struct cfg_client, server_name, 1, 255),
        CYAML_FIELD_UINT("timeout_ms", CYAML_FLAG_OPTIONAL, struct cfg_client, timeout_ms),
        CYAML_FIELD_UINT("connect_timeout_ms", CYAML_FLAG_OPTIONAL, struct cfg_client,
                         connect_timeout_ms),
        CYAML_FIELD_UINT("busy_poll_us", CYAML_FLAG_OPTIONAL, struct cfg_client, busy_poll_us),
        CYAML_FIELD_BOOL("defer_init", CYAML_FLAG_OPTIONAL, struct cfg_client, defer_init),
        CYAML_FIELD_END,
};

static const cyaml_schema_value_t client_schema = {
        CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, struct cfg_client, client_fields),
};

/* Splits "host:port" or "[v6]:port" into host[hostsz] (brackets removed); 0 or -1. */
static int
gateway_split(const char *gw, char *host, size_t hostsz)
{
	const char *colon, *hs, *he, *c;
	unsigned long port = 0;
	struct in6_addr a6;
	char v6[INET6_ADDRSTRLEN + 1];

	if (gw[0] == '[') {
		if ((he = strchr(gw, ']')) == NULL || he[1] != ':') {
			return -1;
		}
		hs = gw + 1;
		colon = he + 1;
		if ((size_t)(he - hs) >= sizeof(v6) || he == hs) {
			return -1;
		}
		memcpy(v6, hs, (size_t)(he - hs));
		v6[he - hs] = '\0';
		if (inet_pton(AF_INET6, v6, &a6) != 1) {
			return -1;
		}
	} else {
		if ((colon = strchr(gw, ':')) == NULL || strchr(colon + 1, ':') != NULL) {
			return -1; /* a bare IPv6 address needs brackets */
		}
		hs = gw;
		he = colon;
		if (he == hs) {
			return -1;
		}
		for (c = hs; c < he; c++) {
			if (*c <= ' ' || *c == '[' || *c == ']' || *c == '/' || *c == '@' ||
			    *c == 0x7f) {
				return -1;
			}
		}
	}
	c = colon + 1;
	if (*c == '\0' || *c == '0' || strlen(c) > 5) {
		return -1;
	}
	for (; *c != '\0'; c++) {
		if (*c < '0' || *c > '9') {
			return -1;
		}
		port = port * 10 + (unsigned long)(*c - '0');
	}
	if (port < 1 || port > 65535 || (size_t)(he - hs) >= hostsz) {
		return -1;
	}
	memcpy(host, hs, (size_t)(he - hs));
	host[he - hs] = '\0';
	return 0;
}

/* Reads the first line of c->api_key_file into c->api_key. */
static int
client_read_key(struct cfg_src *s, struct cfg_client *c)
{
	char buf[APIKEY_FILE_MAX];
	struct stat st;
	size_t len = 0, n;
	ssize_t got;
	int fd, r;

	/* O_NONBLOCK and a regular file only: a FIFO or a terminal named here must not hang
	 * the application that loads the client module. */
	if ((fd = open(c->api_key_file, O_RDONLY | O_CLOEXEC | O_NONBLOCK)) < 0) {
		return cfg_src_fail(s, CFG_ERR_IO, "api_key_file", "cannot read %s: %s",
		                    c->api_key_file, strerror(errno));
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		r = cfg_src_fail(s, CFG_ERR_IO, "api_key_file", "cannot read %s: %s",
		                 c->api_key_file, "not a regular file");
		goto out;
	}
	while (len < sizeof(buf) - 1) {
		got = read(fd, buf + len, sizeof(buf) - 1 - len);
		if (got < 0 && errno == EINTR) {
			continue;
		}
		if (got < 0) {
			r = cfg_src_fail(s, CFG_ERR_IO, "api_key_file", "cannot read %s: %s",
			                 c->api_key_file, strerror(errno));
			goto out;
		}
		if (got == 0) {
			break;
		}
		len += (size_t)got;
	}
	buf[len] = '\0';
	for (n = 0; n < len && buf[n] != '\n' && buf[n] != '\r'; n++) {
		if (buf[n] == '\0') {
			break;
		}
	}
	if (n == 0) {
		r = cfg_src_fail(s, CFG_ERR_INVALID, "api_key_file",
		                 "the first line of %s is empty", c->api_key_file);
		goto out;
	}
	if (buf[n] == '\0' && n < len) {
		r = cfg_src_fail(s, CFG_ERR_INVALID, "api_key_file",
		                 "the first line of %s holds a NUL byte", c->api_key_file);
		goto out;
	}
	if (n > APIKEY_LEN_MAX) {
		r = cfg_src_fail(s, CFG_ERR_INVALID, "api_key_file",
		                 "the first line of %s is too long for an API key",
		                 c->api_key_file);
		goto out;
	}
	if ((c->api_key = strndup(buf, n)) == NULL) {
		r = cfg_src_fail_at(s, CFG_ERR_NOMEM, NULL, "out of memory");
		goto out;
	}
	r = 0;
out:
	OPENSSL_cleanse(buf, sizeof(buf));
	close(fd);
	return r;
}

static int
uint_default(struct cfg_src *s, const char *path, uint32_t *v, uint32_t def)
{
	if (cfg_src_val(s, "%s", path) == NULL) {
		*v = def;
		return 0;
	}
	if (*v == 0) {
		return cfg_src_fail(s, CFG_ERR_INVALID, path, "must be greater than 0");
	}
	return 0;
}

static int
client_check(struct cfg_src *s, struct cfg_client *c)
{
	char host[301];
	int r;

	if (gateway_split(c->gateway, host, sizeof(host)) != 0) {
		return cfg_src_fail(s, CFG_ERR_INVALID, "gateway",
		                    "'%s' is not host:port or [IPv6]:port", c->gateway);
	}
	if ((r = uint_default(s, "timeout_ms", &c->timeout_ms, 30000)) != 0 ||
	    (r = uint_default(s, "connect_timeout_ms", &c->connect_timeout_ms, 5000)) != 0) {
		return r;
	}
	if (cfg_src_val(s, "defer_init") == NULL) {
		c->defer_init = true;
	}
	if (cfg_src_val(s, "busy_poll_us") == NULL) {
		c->busy_poll_us = CFG_CLIENT_BUSY_POLL_US_DEFAULT;
	} else if (c->busy_poll_us > CFG_BUSY_POLL_US_MAX) {
		return cfg_src_fail(s, CFG_ERR_INVALID, "busy_poll_us",
		                    "%u is out of range (0..%u)", c->busy_poll_us,
		                    CFG_BUSY_POLL_US_MAX);
	}
	if ((c->cert == NULL) != (c->key == NULL)) {
		return cfg_src_fail(s, CFG_ERR_INVALID, c->cert != NULL ? "cert" : "key",
		                    "'cert' and 'key' go together");
	}
	if (c->api_key != NULL && c->api_key_file != NULL) {
		return cfg_src_fail(s, CFG_ERR_INVALID, "api_key_file",
		                    "give 'api_key' or 'api_key_file', not both");
	}
	if (c->cert != NULL && (c->api_key != NULL || c->api_key_file != NULL)) {
		return cfg_src_fail(s, CFG_ERR_INVALID,
		                    c->api_key != NULL ? "api_key" : "api_key_file",
		                    "give one credential: a certificate (cert, key) or an API key "
		                    "(api_key or api_key_file), not both");
	}
	if (c->cert == NULL && c->api_key == NULL && c->api_key_file == NULL) {
		return cfg_src_fail_at(s, CFG_ERR_INVALID, NULL,
		                       "no credential: give 'cert' and 'key', or 'api_key' or "
		                       "'api_key_file'");
	}
	if ((r = cfg_path_resolve(s, &c->ca)) != 0 || (r = cfg_path_resolve(s, &c->cert)) != 0 ||
	    (r = cfg_path_resolve(s, &c->key)) != 0 ||
	    (r = cfg_path_resolve(s, &c->api_key_file)) != 0 ||
	    (r = cfg_str_default(&c->server_name, host)) != 0) {
		return cfg_src_fail_at(s, r, NULL, "out of memory");
	}
	if (c->api_key_file != NULL && (r = client_read_key(s, c)) != 0) {
		return r;
	}
	return 0;
}

static int
client_load(struct cfg_src *s, const char *buf, size_t len, struct cfg_client **out)
{
	struct cfg_client *c = NULL;
	void *data = NULL;
	int r;

	s->redact = 1;
	if ((r = cfg_yaml_load(s, &client_schema, buf, len, &data)) != 0) {
		goto out;
	}
	c = data;
	if ((c->path = strdup(s->abspath)) == NULL) {
		r = cfg_src_fail_at(s, CFG_ERR_NOMEM, NULL, "out of memory");
		goto out;
	}
	if ((r = client_check(s, c)) != 0) {
		goto out;
	}
	*out = c;
	c = NULL; /* transferred */
	r = 0;
out:
	cfg_client_free(c);
	return r;
}

int
cfg_client_load(const char *path, struct cfg_client **out, char *err, size_t errsz)
{
	struct cfg_src s;
	char *buf = NULL;
	size_t len = 0;
	int r;

	*out = NULL;
	if ((r = cfg_src_init(&s, path, err, errsz)) != 0 ||
	    (r = cfg_file_read(&s, &buf, &len)) != 0 || (r = client_load(&s, buf, len, out)) != 0) {
		goto out;
	}
	r = 0;
out:
	cfg_buf_free(buf, len);
	cfg_src_fini(&s);
	return r;
}

int
cfg_client_load_buf(const char *name, const char *buf, size_t len, struct cfg_client **out,
                    char *err, size_t errsz)
{
	struct cfg_src s;
	int r;

	*out = NULL;
	if ((r = cfg_src_init(&s, name, err, errsz)) != 0 ||
	    (r = client_load(&s, buf, len, out)) != 0) {
		goto out;
	}
	r = 0;
out:
	cfg_src_fini(&s);
	return r;
}

void
cfg_client_free(struct cfg_client *c)
{
	if (c == NULL) {
		return;
	}
	if (c->api_key != NULL) {
		OPENSSL_cleanse(c->api_key, strlen(c->api_key));
	}
	free(c->path); /* not in the schema: ours */
	c->path = NULL;
	cfg_cyaml_free(&client_schema, c);
}
