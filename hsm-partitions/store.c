/*
 * hsm-partitions/store.c — the keystore interface over LMDB: one environment per
 * partition, one named DB per kind of record (see enum part_db).
 *
 * LMDB because it is embedded, crash-safe (copy-on-write B+tree, no recovery step), and
 * lets several worker processes of one partition share an environment. An environment must
 * never cross a fork (LMDB's documentation: "Use an MDB_env* in the process which opened
 * it, without fork()ing"), which is why the worker opens it after exec (sandbox.c).
 * This interface is the seam where a replicated backend (etcd, PostgreSQL) would plug in.
 */
#include "hsm-partitions/part_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <lmdb.h>

/* Room for every object of a partition; LMDB reserves address space, not disk. */
#define STORE_MAP_SIZE ((size_t)1 << 30)

static const char *const db_names[PART_DB_COUNT] = {
        [PART_DB_META] = "meta",
        [PART_DB_OBJECTS] = "objects",
};

struct part_store {
	MDB_env *env;
	MDB_dbi dbi[PART_DB_COUNT];
};

struct part_txn {
	struct part_store *s;
	MDB_txn *txn;
};

/* mkdir -p with mode 0700 for every directory it creates: the state directory may not exist
 * yet on a first start. */
static int
mkdir_p(const char *dir)
{
	char path[4096];
	size_t i, n = strlen(dir);

	if (n == 0 || n >= sizeof(path)) {
		return PART_ERR_INVALID;
	}
	memcpy(path, dir, n + 1);
	for (i = 1; i <= n; i++) {
		if (path[i] != '/' && path[i] != '\0') {
			continue;
		}
		path[i] = '\0';
		if (mkdir(path, 0700) != 0 && errno != EEXIST) {
			return PART_ERR_IO;
		}
		path[i] = dir[i];
	}
	return 0;
}

static int
store_err(const char *what, int rc)
{
	fprintf(stderr, "hsmgate-worker: store: %s: %s\n", what, mdb_strerror(rc));
	return PART_ERR_STORE;
}

int
part_store_open(const char *dir, struct part_store **out)
{
	struct part_store *s = NULL;
	MDB_txn *txn = NULL;
	unsigned i;
	int rc, r;

	*out = NULL;
	if (dir == NULL || *dir == '\0') {
		return PART_ERR_INVALID;
	}
	if ((r = mkdir_p(dir)) != 0) {
		return r;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		return PART_ERR_NOMEM;
	}
	if ((rc = mdb_env_create(&s->env)) != 0) {
		s->env = NULL;
		r = store_err("mdb_env_create", rc);
		goto out;
	}
	if ((rc = mdb_env_set_maxdbs(s->env, PART_DB_COUNT)) != 0 ||
	    (rc = mdb_env_set_mapsize(s->env, STORE_MAP_SIZE)) != 0) {
		r = store_err("mdb_env_set", rc);
		goto out;
	}
	/* 0600 files in a 0700 directory: only the worker's uid reads the keystore. */
	if ((rc = mdb_env_open(s->env, dir, 0, 0600)) != 0) {
		r = store_err(dir, rc);
		goto out;
	}
	if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn)) != 0) {
		r = store_err("mdb_txn_begin", rc);
		goto out;
	}
	for (i = 0; i < PART_DB_COUNT; i++) {
		if ((rc = mdb_dbi_open(txn, db_names[i], MDB_CREATE, &s->dbi[i])) != 0) {
			r = store_err(db_names[i], rc);
			goto out;
		}
	}
	rc = mdb_txn_commit(txn);
	txn = NULL;
	if (rc != 0) {
		r = store_err("mdb_txn_commit", rc);
		goto out;
	}
	*out = s;
	s = NULL; /* transferred */
	r = 0;
out:
	if (txn != NULL) {
		mdb_txn_abort(txn);
	}
	part_store_close(s);
	return r;
}

void
part_store_close(struct part_store *s)
{
	if (s == NULL) {
		return;
	}
	if (s->env != NULL) {
		mdb_env_close(s->env);
	}
	free(s);
}

int
part_store_txn_begin(struct part_store *s, int write, struct part_txn **out)
{
	struct part_txn *t;
	int rc;

	*out = NULL;
	if ((t = calloc(1, sizeof(*t))) == NULL) {
		return PART_ERR_NOMEM;
	}
	if ((rc = mdb_txn_begin(s->env, NULL, write ? 0 : MDB_RDONLY, &t->txn)) != 0) {
		free(t);
		return store_err("mdb_txn_begin", rc);
	}
	t->s = s;
	*out = t;
	return 0;
}

int
part_store_txn_commit(struct part_txn *t)
{
	int rc = mdb_txn_commit(t->txn);

	free(t);
	return rc == 0 ? 0 : store_err("mdb_txn_commit", rc);
}

void
part_store_txn_abort(struct part_txn *t)
{
	if (t == NULL) {
		return;
	}
	mdb_txn_abort(t->txn);
	free(t);
}

int
part_store_get(struct part_txn *t, enum part_db db, const void *key, size_t klen,
               const uint8_t **val, size_t *vlen)
{
	MDB_val k = {klen, (void *)(uintptr_t)key}, v;
	int rc;

	*val = NULL;
	*vlen = 0;
	if ((rc = mdb_get(t->txn, t->s->dbi[db], &k, &v)) == MDB_NOTFOUND) {
		return PART_ERR_NOT_FOUND;
	}
	if (rc != 0) {
		return store_err("mdb_get", rc);
	}
	*val = v.mv_data;
	*vlen = v.mv_size;
	return 0;
}

int
part_store_put(struct part_txn *t, enum part_db db, const void *key, size_t klen, const void *val,
               size_t vlen)
{
	MDB_val k = {klen, (void *)(uintptr_t)key}, v = {vlen, (void *)(uintptr_t)val};
	int rc;

	if ((rc = mdb_put(t->txn, t->s->dbi[db], &k, &v, 0)) != 0) {
		return store_err("mdb_put", rc);
	}
	return 0;
}

int
part_store_del(struct part_txn *t, enum part_db db, const void *key, size_t klen)
{
	MDB_val k = {klen, (void *)(uintptr_t)key};
	int rc;

	if ((rc = mdb_del(t->txn, t->s->dbi[db], &k, NULL)) == MDB_NOTFOUND) {
		return PART_ERR_NOT_FOUND;
	}
	if (rc != 0) {
		return store_err("mdb_del", rc);
	}
	return 0;
}

int
part_store_clear(struct part_txn *t, enum part_db db)
{
	int rc;

	/* del = 0 empties the DB and keeps its handle. */
	if ((rc = mdb_drop(t->txn, t->s->dbi[db], 0)) != 0) {
		return store_err("mdb_drop", rc);
	}
	return 0;
}

int
part_store_foreach(struct part_txn *t, enum part_db db, part_store_fn fn, void *arg)
{
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	int rc, r;

	if ((rc = mdb_cursor_open(t->txn, t->s->dbi[db], &cur)) != 0) {
		return store_err("mdb_cursor_open", rc);
	}
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if ((r = fn(arg, k.mv_data, k.mv_size, v.mv_data, v.mv_size)) != 0) {
			goto out;
		}
	}
	if (rc != MDB_NOTFOUND) {
		r = store_err("mdb_cursor_get", rc);
		goto out;
	}
	r = 0;
out:
	mdb_cursor_close(cur);
	return r;
}
