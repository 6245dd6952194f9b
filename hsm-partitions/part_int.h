/*
 * hsm-partitions/part_int.h — private to hsm-partitions/ (and its unit tests): the store,
 * the seal seam, PIN hashes, and the token / session / object model.
 *
 * Layering, bottom up:
 *   store.c    part_store_*   LMDB: one environment per partition, named DBs
 *   seal.c     part_seal      every object record passes through it (identity for now)
 *   pin.c      part_pin_*     PBKDF2-HMAC-SHA256 PIN hashes
 *   token.c    part_token_*   slot/token info, C_InitToken, C_InitPIN, C_SetPIN, login
 *   session.c  part_session_* sessions and per-connection login state
 *   object.c   part_object_*  objects, attributes, find, serialisation
 *   digest.c   part_mechanism_*, part_digest_*, part_random_*
 *   worker.c   the dispatch core: decodes a frame, calls the above, encodes the reply
 *   ipc.c      the blocking IPC loop; sandbox.c the start-up order of STYLE.md rule 10
 *
 * The token-level functions (part_token_*, part_session_*, part_object_*, part_digest_*,
 * part_random_*) implement PKCS #11 functions one to one and return CK_RV: they are the
 * PKCS #11 boundary (STYLE.md rule 5), with the same arguments as the C_* function they
 * implement and the same size-query conventions (v2.40 §5.2). Everything below them
 * returns int / PART_ERR_*.
 */
#ifndef HSMGATE_PART_INT_H
#define HSMGATE_PART_INT_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "hsm-partitions/part.h"

/* ---- store ------------------------------------------------------------------------------ */

struct part_store;
struct part_txn;

enum part_db {
	PART_DB_META = 0,    /* "token" → token record (label, PIN hashes, retry counters) */
	PART_DB_OBJECTS = 1, /* object ref (32 hex) → sealed object record */
	PART_DB_COUNT
};

/* Opens (creating the directory 0700 and the environment if needed) the LMDB environment
 * in `dir`. Errors: PART_ERR_IO (mkdir), PART_ERR_STORE, PART_ERR_NOMEM. */
int part_store_open(const char *dir, struct part_store **out) PART_WUR;
/* Closes the environment; every transaction must have ended. NULL is a no-op. */
void part_store_close(struct part_store *s);

/* A read (write == 0) or write transaction. Values returned by part_store_get live until
 * the transaction ends. */
int part_store_txn_begin(struct part_store *s, int write, struct part_txn **out) PART_WUR;
/* Commits and frees `t` (also on failure). */
int part_store_txn_commit(struct part_txn *t) PART_WUR;
/* Aborts and frees `t`; NULL is a no-op. */
void part_store_txn_abort(struct part_txn *t);

/* PART_ERR_NOT_FOUND when absent. */
int part_store_get(struct part_txn *t, enum part_db db, const void *key, size_t klen,
                   const uint8_t **val, size_t *vlen) PART_WUR;
int part_store_put(struct part_txn *t, enum part_db db, const void *key, size_t klen,
                   const void *val, size_t vlen) PART_WUR;
/* PART_ERR_NOT_FOUND when absent. */
int part_store_del(struct part_txn *t, enum part_db db, const void *key, size_t klen) PART_WUR;
/* Deletes every record of `db`. */
int part_store_clear(struct part_txn *t, enum part_db db) PART_WUR;

/* Calls fn for every record of `db` in key order (a cursor walk); a non-zero return of fn
 * stops the walk and is returned. */
typedef int (*part_store_fn)(void *arg, const uint8_t *key, size_t klen, const uint8_t *val,
                             size_t vlen);
int part_store_foreach(struct part_txn *t, enum part_db db, part_store_fn fn, void *arg) PART_WUR;

/* ---- seal ------------------------------------------------------------------------------- */
/*
 * Every object record goes through part_seal() on its way into the store and through
 * part_unseal() on its way out, with its object ref as associated data. Today the scheme is
 * PART_SEAL_NONE (identity, behind a 2-byte header: version, scheme); issue 3 adds
 * AES-256-GCM under the partition master key, authenticated with the ref, so that the store
 * never holds key material in clear and a record cannot be moved to another ref.
 * Both append to `out`. part_unseal errors: PART_ERR_CORRUPT (unknown version or scheme,
 * short record, failed authentication).
 */
#define PART_SEAL_VERSION 1
#define PART_SEAL_NONE    0
int part_seal(const char *ref, const uint8_t *in, size_t len, struct proto_buf *out) PART_WUR;
int part_unseal(const char *ref, const uint8_t *in, size_t len, struct proto_buf *out) PART_WUR;

/* ---- PIN hashes ------------------------------------------------------------------------- */

#define PART_PIN_SALT 16
#define PART_PIN_HASH 32

struct part_pin {
	int set;
	uint32_t iter;
	uint8_t salt[PART_PIN_SALT];
	uint8_t hash[PART_PIN_HASH];
};

/* A fresh salted hash of pin[len] with `iter` iterations into *out. PART_ERR_CRYPTO. */
int part_pin_hash(const uint8_t *pin, size_t len, uint32_t iter, struct part_pin *out) PART_WUR;
/* 1 when pin[len] matches `p`, 0 when not (or p is unset), PART_ERR_CRYPTO. Constant time
 * in the comparison (CRYPTO_memcmp). */
int part_pin_check(const struct part_pin *p, const uint8_t *pin, size_t len) PART_WUR;

/* ---- the token model -------------------------------------------------------------------- */

#define PART_USER_NONE ((CK_USER_TYPE)-1)

/* One client connection (the PKCS #11 "application"): its login state and session counts.
 * Exists while it has sessions: closing the last one logs it out (v2.40 §5.6 C_CloseSession). */
struct part_conn {
	struct part_conn *next;
	uint64_t id;
	CK_USER_TYPE user; /* PART_USER_NONE, CKU_SO or CKU_USER */
	unsigned nsessions;
	unsigned nro; /* of which read-only */
};

struct part_session {
	struct part_session *next;
	CK_SESSION_HANDLE handle;
	struct part_conn *conn;
	int rw;
	/* digest operation (digest.c) */
	EVP_MD_CTX *md;
	int md_updated; /* a C_DigestUpdate was made: C_Digest may no longer finish it */
	/* find operation (object.c): a snapshot of the matching handles at C_FindObjectsInit */
	int find_active;
	CK_OBJECT_HANDLE *found;
	size_t nfound, found_pos;
};

struct part_attr {
	CK_ATTRIBUTE_TYPE type;
	CK_ULONG len;
	uint8_t *value; /* never NULL (len 0 values point at a 1-byte allocation); wiped on free */
};

struct part_object {
	struct part_object *next;
	CK_OBJECT_HANDLE handle;    /* per worker, never reused while the worker lives */
	char ref[PART_REF_LEN + 1]; /* immutable object id; the store key of token objects */
	CK_OBJECT_CLASS cls;
	int token, priv;           /* CKA_TOKEN, CKA_PRIVATE (immutable) */
	uint64_t conn;             /* session objects: owning connection */
	CK_SESSION_HANDLE session; /* session objects: the session they die with */
	struct part_attr *attrs;
	size_t nattrs;
};

struct part_meta {
	int initialized;
	char label[32]; /* blank padded, not NUL terminated */
	struct part_pin so, user;
	uint32_t so_fails, user_fails;
};

struct part_token {
	struct part_store *store;
	CK_SLOT_ID slot;
	char partition[64];
	char default_label[32]; /* blank padded: the label of an uninitialised token */
	char serial[16];        /* blank padded hex, derived from the partition name */
	uint32_t pin_iter;
	struct part_meta meta;
	struct part_conn *conns;
	struct part_session *sessions;
	unsigned nsessions, nrw;
	uint32_t next_session; /* last session number handed out, 1..0xffffff */
	struct part_object *objects;
	CK_OBJECT_HANDLE next_object;
};

/* token.c */
int part_token_open(const struct part_worker_opts *o, struct part_token **out) PART_WUR;
void part_token_free(struct part_token *t);
/* Writes t->meta into the store (its own write transaction). */
int part_token_meta_save(struct part_token *t) PART_WUR;
CK_RV part_token_slot_info(struct part_token *t, CK_SLOT_ID slot, CK_SLOT_INFO *info);
CK_RV part_token_info(struct part_token *t, CK_SLOT_ID slot, CK_TOKEN_INFO *info);
CK_RV part_token_init(struct part_token *t, CK_SLOT_ID slot, const CK_BYTE *pin, CK_ULONG len,
                      const CK_BYTE *label);
CK_RV part_token_init_pin(struct part_token *t, uint64_t conn, CK_SESSION_HANDLE h,
                          const CK_BYTE *pin, CK_ULONG len);
CK_RV part_token_set_pin(struct part_token *t, uint64_t conn, CK_SESSION_HANDLE h,
                         const CK_BYTE *old, CK_ULONG oldlen, const CK_BYTE *pin, CK_ULONG len);
CK_RV part_token_login(struct part_token *t, uint64_t conn, CK_SESSION_HANDLE h, CK_USER_TYPE user,
                       const CK_BYTE *pin, CK_ULONG len);
CK_RV part_token_logout(struct part_token *t, uint64_t conn, CK_SESSION_HANDLE h);
CK_RV part_token_mechanisms(struct part_token *t, CK_SLOT_ID slot, CK_MECHANISM_TYPE *list,
                            CK_ULONG *count);
CK_RV part_token_mechanism_info(struct part_token *t, CK_SLOT_ID slot, CK_MECHANISM_TYPE type,
                                CK_MECHANISM_INFO *info);

/* session.c */
CK_RV part_session_open(struct part_token *t, uint64_t conn, CK_SLOT_ID slot, CK_FLAGS flags,
                        CK_SESSION_HANDLE *out);
CK_RV part_session_close(struct part_token *t, uint64_t conn, CK_SESSION_HANDLE h);
CK_RV part_session_close_all(struct part_token *t, uint64_t conn, CK_SLOT_ID slot);
CK_RV part_session_info(struct part_token *t, uint64_t conn, CK_SESSION_HANDLE h,
                        CK_SESSION_INFO *info);
/* The session `h` of connection `conn`: CKR_SESSION_HANDLE_INVALID for an unknown handle or
 * one of another connection (sessions belong to their connection). */
CK_RV part_session_get(struct part_token *t, uint64_t conn, CK_SESSION_HANDLE h,
                       struct part_session **out);
CK_STATE part_session_state(const struct part_session *s);
/* Closes every session of `conn` on this token; the connection is forgotten. */
void part_session_drop_conn(struct part_token *t, uint64_t conn);
void part_session_free_all(struct part_token *t);

/* object.c */
int part_object_load_all(struct part_token *t) PART_WUR;
void part_object_free_all(struct part_token *t);
/* Forgets the in-memory token objects (C_InitToken, after the store was cleared). */
void part_object_drop_token(struct part_token *t);
/* Destroys the session objects created in session `h`. */
void part_object_drop_session(struct part_token *t, CK_SESSION_HANDLE h);
/* Ends the find operation of `s` (session closed). */
void part_object_find_end(struct part_session *s);
/* Serialises the object's attributes (the record before sealing) into `out`. */
int part_object_encode(const struct part_object *o, struct proto_buf *out) PART_WUR;
CK_RV part_object_create(struct part_token *t, uint64_t conn, CK_SESSION_HANDLE h,
                         const CK_ATTRIBUTE *tmpl, CK_ULONG n, CK_OBJECT_HANDLE *out);
CK_RV part_object_destroy(struct part_token *t, uint64_t conn, CK_SESSION_HANDLE h,
                          CK_OBJECT_HANDLE obj);
CK_RV part_object_size(struct part_token *t, uint64_t conn, CK_SESSION_HANDLE h,
                       CK_OBJECT_HANDLE obj, CK_ULONG *size);
CK_RV part_object_get_attrs(struct part_token *t, uint64_t conn, CK_SESSION_HANDLE h,
                            CK_OBJECT_HANDLE obj, CK_ATTRIBUTE *tmpl, CK_ULONG n);
CK_RV part_object_set_attrs(struct part_token *t, uint64_t conn, CK_SESSION_HANDLE h,
                            CK_OBJECT_HANDLE obj, const CK_ATTRIBUTE *tmpl, CK_ULONG n);
CK_RV part_object_find_init(struct part_token *t, uint64_t conn, CK_SESSION_HANDLE h,
                            const CK_ATTRIBUTE *tmpl, CK_ULONG n);
CK_RV part_object_find(struct part_token *t, uint64_t conn, CK_SESSION_HANDLE h,
                       CK_OBJECT_HANDLE *out, CK_ULONG max, CK_ULONG *count);
CK_RV part_object_find_final(struct part_token *t, uint64_t conn, CK_SESSION_HANDLE h);

/* digest.c: the mechanism table (issue 3 extends it) and the digest operations */
struct part_mechanism {
	CK_MECHANISM_TYPE type;
	CK_MECHANISM_INFO info;
	const char *md; /* OpenSSL digest name for CKF_DIGEST mechanisms */
};
size_t part_mechanism_count(void);
const struct part_mechanism *part_mechanism_at(size_t i);
const struct part_mechanism *part_mechanism_find(CK_MECHANISM_TYPE type);
CK_RV part_digest_init(struct part_token *t, uint64_t conn, CK_SESSION_HANDLE h,
                       const CK_MECHANISM *m);
CK_RV part_digest(struct part_token *t, uint64_t conn, CK_SESSION_HANDLE h, const CK_BYTE *in,
                  CK_ULONG inlen, CK_BYTE *out, CK_ULONG *outlen);
CK_RV part_digest_update(struct part_token *t, uint64_t conn, CK_SESSION_HANDLE h,
                         const CK_BYTE *in, CK_ULONG inlen);
CK_RV part_digest_final(struct part_token *t, uint64_t conn, CK_SESSION_HANDLE h, CK_BYTE *out,
                        CK_ULONG *outlen);
/* Ends the digest operation of `s`. */
void part_digest_end(struct part_session *s);
CK_RV part_random_generate(struct part_token *t, uint64_t conn, CK_SESSION_HANDLE h, CK_BYTE *out,
                           CK_ULONG len);
CK_RV part_random_seed(struct part_token *t, uint64_t conn, CK_SESSION_HANDLE h,
                       const CK_BYTE *seed, CK_ULONG len);

/* worker.c: the largest client frame this worker accepts. */
uint32_t part_worker_max_frame(const struct part_worker *w);

/* Blank-pads s (truncated to n bytes) into dst[n], without a NUL (CK_TOKEN_INFO style). */
void part_pad(char *dst, size_t n, const char *s);

#endif /* HSMGATE_PART_INT_H */
