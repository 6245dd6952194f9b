/*
 * hsm-partitions/part_int.h — private to hsm-partitions/ (and its unit tests): the store,
 * the seal seam, PIN hashes, and the token / session / object model.
 *
 * Layering, bottom up:
 *   store.c    part_store_*   LMDB: one environment per partition, named DBs
 *   seal.c     part_seal_*    every object record sealed (AES-256-GCM) + a sealed index
 *   masterkey.c part_masterkey_* the partition master key, in locked memory
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

#include "hsm-partitions/crypto/mech.h"
#include "hsm-partitions/part.h"

/* ---- store ------------------------------------------------------------------------------ */

struct part_store;
struct part_txn;

enum part_db {
	PART_DB_META = 0,    /* "token" → sealed token record (label, PIN hashes, retry counters);
	                      * "seal-index" → the sealed index (seal.c) */
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

/* ---- seal: see "sealed at rest and passthrough" at the end of this file ---------------- */

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
/* How many PBKDF2 derivations (hashes and checks) this process has made: tests count the
 * slow path with it. */
uint64_t part_pin_derivations(void);

/* The verified-PIN cache (pin.c says how, docs/PKCS11.md "PINs" why): per user type
 * (CKU_SO, CKU_USER; other types are ignored), a keyed MAC of the last PIN that passed the
 * full check against record `p`. Lives in the secure heap; one per token. */
struct part_pin_cache;
/* A new, empty cache with a fresh random key. PART_ERR_NOMEM, PART_ERR_CRYPTO. */
int part_pin_cache_new(struct part_pin_cache **out) PART_WUR;
/* Wipes and frees; NULL is a no-op. */
void part_pin_cache_free(struct part_pin_cache *c);
/* Forgets the PIN of `who` (a failed check, or its record changes). NULL c: no-op. */
void part_pin_cache_clear(struct part_pin_cache *c, CK_USER_TYPE who);
/* Remembers pin[len] for `who` after it passed part_pin_check(p, ...). Best effort: a MAC
 * that cannot be computed leaves the slot empty. */
void part_pin_cache_set(struct part_pin_cache *c, CK_USER_TYPE who, const struct part_pin *p,
                        const uint8_t *pin, size_t len);
/* 1 when pin[len] is the PIN remembered for `who` with record `p` (compared with
 * CRYPTO_memcmp), else 0 (nothing remembered, another PIN, another record, an error). */
int part_pin_cache_match(const struct part_pin_cache *c, CK_USER_TYPE who, const struct part_pin *p,
                         const uint8_t *pin, size_t len) PART_WUR;

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

/* The operation slots of a session. */
enum part_ops { PART_OPS_ENCRYPT, PART_OPS_DECRYPT, PART_OPS_SIGN, PART_OPS_VERIFY, PART_OPS };

struct part_session {
	struct part_session *next;
	CK_SESSION_HANDLE handle;
	struct part_conn *conn;
	int rw;
	/* digest operation (digest.c) */
	EVP_MD_CTX *md;
	int md_updated; /* a C_DigestUpdate was made: C_Digest may no longer finish it */
	/* cryptographic operations (crypt.c), one per kind: C_SignRecover shares the sign
	 * slot and C_VerifyRecover the verify slot (v2.40 §5.12, §5.13) */
	struct part_op *op[PART_OPS];
	enum part_op_kind op_kind[PART_OPS]; /* which kind each active slot holds */
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
	CK_ULONG sub;              /* CKA_KEY_TYPE or CKA_CERTIFICATE_TYPE; 0 for data objects */
	struct part_key *key;      /* keys: the engine's form, built on first use; freed with o */
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
	struct part_seal *seal; /* seal.c: opened right after the store, closed before it */
	CK_SLOT_ID slot;
	char partition[64];
	char default_label[32]; /* blank padded: the label of an uninitialised token */
	char serial[16];        /* blank padded hex, derived from the partition name */
	uint32_t pin_iter;
	struct part_meta meta;
	struct part_pin_cache *pins; /* pin.c: the verified-PIN cache, in the secure heap */
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
/* Seals t->meta (part_seal_token) and writes it into the store, in its own write
 * transaction. */
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
CK_RV part_object_copy(struct part_token *t, uint64_t conn, CK_SESSION_HANDLE h,
                       CK_OBJECT_HANDLE obj, const CK_ATTRIBUTE *tmpl, CK_ULONG n,
                       CK_OBJECT_HANDLE *out);

/* How a new object comes to be (part_object_build): which attributes the template may
 * hold, and what the token sets (CKA_LOCAL, CKA_KEY_GEN_MECHANISM, CKA_ALWAYS_SENSITIVE,
 * CKA_NEVER_EXTRACTABLE: v2.40 §4.7, §4.9, §4.10). */
enum part_origin {
	PART_ORIGIN_CREATE,   /* C_CreateObject: key material in the template */
	PART_ORIGIN_GENERATE, /* C_GenerateKey(Pair): no material in the template */
	PART_ORIGIN_UNWRAP,   /* C_UnwrapKey */
	PART_ORIGIN_DERIVE,   /* C_DeriveKey */
};

#define PART_ANY ((CK_ULONG)-1)

struct part_newobj {
	enum part_origin origin;
	CK_OBJECT_CLASS cls; /* the class the function makes, or PART_ANY: the template's */
	CK_ULONG sub;        /* the key type, or PART_ANY: the template's */
	/* values the token produced (key material from the engine): they win over the
	 * template and need not be in it */
	const CK_ATTRIBUTE *extra;
	CK_ULONG nextra;
	CK_MECHANISM_TYPE mech;                            /* GENERATE: the CKA_KEY_GEN_MECHANISM */
	int base_always_sensitive, base_never_extractable; /* DERIVE: the base key's */
};

/* Validates `tmpl` for a new object described by `nd` and the session's rights (R/O
 * session and token object: CKR_SESSION_READ_ONLY; private object without a user login:
 * CKR_USER_NOT_LOGGED_IN) — the checks of part_object_build() that need no key material,
 * so that a generation is refused before any work. */
CK_RV part_object_check(struct part_token *t, struct part_session *s, const struct part_newobj *nd,
                        const CK_ATTRIBUTE *tmpl, CK_ULONG n);
/* Builds (validates and fills in every attribute of its class) an object not yet linked
 * nor stored; `*out` is the caller's until part_object_commit() succeeds. */
CK_RV part_object_build(struct part_token *t, struct part_session *s, const struct part_newobj *nd,
                        const CK_ATTRIBUTE *tmpl, CK_ULONG n, struct part_object **out);
/* Stores a token object (through part_seal) or ties a session object to session `s`, and
 * links it: the token owns it from here. On failure (CKR_DEVICE_ERROR) the caller still
 * owns `o`. */
CK_RV part_object_commit(struct part_token *t, struct part_session *s, struct part_object *o);
/* Frees an object that was never committed. NULL: no-op. */
void part_object_discard(struct part_object *o);
/* Destroys a committed object whatever its attributes (undoing half of a key pair). */
void part_object_remove(struct part_token *t, struct part_object *o);

/* The object `h` as session `s` sees it: CKR_OBJECT_HANDLE_INVALID when it does not exist
 * or is not visible (another connection's session object, a private object without a
 * user login). */
CK_RV part_object_lookup(struct part_token *t, const struct part_session *s, CK_OBJECT_HANDLE h,
                         struct part_object **out);
/* A CK_BBOOL attribute: 1 when present and CK_TRUE. */
int part_object_bool(const struct part_object *o, CK_ATTRIBUTE_TYPE type);
/* The attribute, or NULL. */
const struct part_attr *part_object_attr(const struct part_object *o, CK_ATTRIBUTE_TYPE type);
/* The engine's key of a key object (owned by the object). */
CK_RV part_object_key(struct part_object *o, const struct part_key **out);
/* v2.40 §4.7 CKA_ALLOWED_MECHANISMS: whether `mech` may be used with the key (an empty or
 * absent list allows every mechanism). */
int part_object_mech_allowed(const struct part_object *o, CK_MECHANISM_TYPE mech);

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

/* digest.c: C_DigestKey (the key's value is fed into the active digest) */
CK_RV part_digest_key(struct part_token *t, uint64_t conn, CK_SESSION_HANDLE h,
                      CK_OBJECT_HANDLE key);

/* crypt.c: C_Encrypt*, C_Decrypt*, C_Sign*, C_Verify* and the recover and dual functions.
 * `kind` is the engine's; the session slot follows from it. */
CK_RV part_crypt_init(struct part_token *t, uint64_t conn, CK_SESSION_HANDLE h,
                      enum part_op_kind kind, const CK_MECHANISM *m, CK_OBJECT_HANDLE key);
/* C_Encrypt, C_Decrypt, C_Sign, C_SignRecover, C_VerifyRecover. */
CK_RV part_crypt_oneshot(struct part_token *t, uint64_t conn, CK_SESSION_HANDLE h,
                         enum part_op_kind kind, const CK_BYTE *in, CK_ULONG inlen, CK_BYTE *out,
                         CK_ULONG *outlen);
/* C_EncryptUpdate, C_DecryptUpdate (out/outlen), C_SignUpdate, C_VerifyUpdate (NULL). */
CK_RV part_crypt_update(struct part_token *t, uint64_t conn, CK_SESSION_HANDLE h,
                        enum part_op_kind kind, const CK_BYTE *in, CK_ULONG inlen, CK_BYTE *out,
                        CK_ULONG *outlen);
/* C_EncryptFinal, C_DecryptFinal, C_SignFinal. */
CK_RV part_crypt_final(struct part_token *t, uint64_t conn, CK_SESSION_HANDLE h,
                       enum part_op_kind kind, CK_BYTE *out, CK_ULONG *outlen);
/* C_Verify, C_VerifyFinal (data == NULL). */
CK_RV part_crypt_verify(struct part_token *t, uint64_t conn, CK_SESSION_HANDLE h,
                        const CK_BYTE *data, CK_ULONG datalen, int final, const CK_BYTE *sig,
                        CK_ULONG siglen);
/* The dual-function updates (v2.40 §5.13): `call` is the PROTO_CALL_C_* id. */
CK_RV part_crypt_dual(struct part_token *t, uint64_t conn, CK_SESSION_HANDLE h, unsigned call,
                      const CK_BYTE *in, CK_ULONG inlen, CK_BYTE *out, CK_ULONG *outlen);
/* Ends every operation of `s` (session closed). */
void part_crypt_end_all(struct part_session *s);
/*
 * The one-shot call of `kind` on session h, run away from the loop thread (pool.c):
 * part_crypt_lend() returns the session's active operation when its work is worth a thread
 * (an RSA private-key operation: part_op_heavy), else NULL and the call is served in line.
 * The operation stays in the session; the caller runs part_op_oneshot() on it elsewhere and
 * makes no other call on the session until part_crypt_settle() has ended the operation as
 * part_crypt_oneshot() would have (unless rv keeps it going).
 */
struct part_op *part_crypt_lend(struct part_token *t, uint64_t conn, CK_SESSION_HANDLE h,
                                enum part_op_kind kind);
void part_crypt_settle(struct part_token *t, uint64_t conn, CK_SESSION_HANDLE h,
                       enum part_op_kind kind, CK_RV rv, const CK_BYTE *out,
                       const CK_ULONG *outlen);

/* pool.c: helper threads that run tasks handed over by the loop thread. */
#define PART_POOL_MAX PART_THREADS_MAX /* helpers (a vendor's: the loop thread calls none) */
struct part_task {
	void (*run)(struct part_task *t); /* on a helper or on the loop thread */
	struct part_task *next;           /* the pool's */
	int long_run; /* may take seconds (a key pair, any vendor call): an idle loop thread
	               * leaves it to a helper (part_pool_run_short), so that it keeps serving
	               * requests */
};
struct part_pool;
/* PART_ERR_INVALID (too many), PART_ERR_NOMEM, PART_ERR_SYS (pthread_create failed). */
int part_pool_new(unsigned helpers, struct part_pool **out) PART_WUR;
void part_pool_submit(struct part_pool *p, struct part_task *t);
/* Runs one queued task on the calling thread: 1, or 0 when none is queued. */
int part_pool_run_one(struct part_pool *p);
/* The same, for the first queued task that is not long_run. */
int part_pool_run_short(struct part_pool *p);
/* Runs the queued tasks on the calling thread, waits for those running: all have ended. */
void part_pool_wait(struct part_pool *p);
/* Takes the tasks that have run (linked by `next`, any order), or NULL. */
struct part_task *part_pool_done(struct part_pool *p);
/* Readable (POLLIN) while part_pool_done() has tasks to give. */
int part_pool_fd(const struct part_pool *p);
unsigned part_pool_helpers(const struct part_pool *p);
/* Waits (part_pool_wait) and joins the helpers. NULL is a no-op. */
void part_pool_free(struct part_pool *p);

/* later.c: calls a backend hands to a pool and answers later (see its top comment).
 * A NULL part_later (threads <= 1) hands nothing over; every function accepts it. `arg` is
 * the backend's, passed to finish(). */
#define PART_LATER_JOBS 64 /* jobs out at once; the next waits for all of them */
struct part_job {
	struct part_task task; /* first */
	uint64_t conn;
	CK_SESSION_HANDLE h; /* the client's session handle */
	unsigned idx;        /* later.c's */
	/* On the loop thread once the job has run: ends what the in-line call would have ended,
	 * appends the reply frame; 0 or a PART_ERR_*. */
	int (*finish)(struct part_job *j, void *arg, struct proto_buf *frame);
	void (*free)(struct part_job *j); /* wipes what it held */
	/* The request's arena, when the job keeps pointers into it (part_later_take_arena);
	 * freed, wiped, with the job. */
	struct proto_arena *arena;
};
struct part_later;
/* A reply frame (both backends): REPLY, `call`, `req_id`, the CK_RV, then `fields` when the
 * call has response fields for that rv; a `fields` that failed to encode turns the rv into
 * CKR_DEVICE_MEMORY (no memory) or CKR_GENERAL_ERROR. PART_ERR_NOMEM. */
int part_reply_frame(const struct proto_buf *fields, unsigned call, uint32_t req_id, CK_RV rv,
                     struct proto_buf *reply) PART_WUR;
/* A pool of `helpers` threads beside the loop thread; *out NULL for 0. PART_ERR_INVALID
 * (helpers > PART_POOL_MAX), PART_ERR_NOMEM, PART_ERR_IO, PART_ERR_SYS. */
int part_later_new(unsigned helpers, struct part_later **out) PART_WUR;
void part_later_submit(struct part_later *l, void *arg, struct part_job *j);
/* Gives j the arena the request was decoded in (*owner, the backend's), so that what was
 * decoded (a mechanism, templates) lives as long as the job, and puts a fresh one in its
 * place; the caller's own pointers to *owner must follow. PART_ERR_NOMEM: nothing moved. */
int part_later_take_arena(struct part_job *j, struct proto_arena **owner) PART_WUR;
/* What a backend's handle() does with a request (later.c, the passthrough's pt_handle). */
typedef int (*part_later_handle_fn)(void *arg, uint64_t conn, const struct proto_ctx *ctx,
                                    const uint8_t *frame, size_t len, struct proto_buf *reply);
/* Lets requests wait for one session's job instead of all jobs: may_overlap may then say
 * PART_OVERLAP_QUEUE, and handle serves them when their turn comes (on the loop thread,
 * with the arg of part_later_flush/settle). */
void part_later_set_handler(struct part_later *l, part_later_handle_fn handle);
/* Whether a request may be served now (GO), must wait for every job (SETTLE:
 * part_later_settle first), or, with a handler set, is a call of the crypt family on a session
 * a job holds or a queued request waits for (QUEUE: part_later_queue). shared: the PROTO_CF_*
 * flags of calls that change what another connection's job may use in this backend
 * (PROTO_CF_SHARED, with PROTO_CF_VENDOR_SHARED for a vendor module). */
#define PART_OVERLAP_SETTLE 0
#define PART_OVERLAP_GO     1
#define PART_OVERLAP_QUEUE  2
int part_later_may_overlap(const struct part_later *l, uint64_t conn, unsigned call,
                           const uint8_t *body, size_t len, uint32_t shared);
/* Keeps a copy of the request frame (and ctx) until its session is free, then serves it;
 * its reply comes with part_later_flush, as a job's. PART_ERR_NOMEM (no memory, or 16 MiB
 * of frames queued already), PART_ERR_INVALID (no handler, no session handle). */
int part_later_queue(struct part_later *l, uint64_t conn, const struct proto_ctx *ctx,
                     const uint8_t *frame, size_t len) PART_WUR;
/* Whether connection `conn` has a job out or a request queued (0 for NULL). */
int part_later_conn_busy(const struct part_later *l, uint64_t conn);
void part_later_settle(struct part_later *l, void *arg);
/* Appends the replies of the jobs that have ended and of the queued requests served since
 * (all: after waiting for every job and queued request, running
 * those no helper has started) as PROTO_IPC_REPLY messages; PART_ERR_NOMEM when a reply could
 * not be built. pending: the jobs not yet finished; help: runs one no helper has started (not a
 * long_run one) on the calling thread (1) or finds none (0); fd: readable when some have ended (-1
 * for NULL). */
int part_later_flush(struct part_later *l, void *arg, struct proto_buf *out, int all) PART_WUR;
unsigned part_later_pending(const struct part_later *l);
int part_later_help(struct part_later *l);
int part_later_fd(const struct part_later *l);
/* The soft worker's (NULL without crypto threads), for its IPC loop and its tests. */
struct part_later *part_worker_later(const struct part_worker *w);
void part_later_free(struct part_later *l, void *arg);

/* keys.c: C_GenerateKey, C_GenerateKeyPair, C_WrapKey, C_UnwrapKey, C_DeriveKey. */
CK_RV part_key_gen(struct part_token *t, uint64_t conn, CK_SESSION_HANDLE h, const CK_MECHANISM *m,
                   const CK_ATTRIBUTE *tmpl, CK_ULONG n, CK_OBJECT_HANDLE *out);
CK_RV part_key_gen_pair(struct part_token *t, uint64_t conn, CK_SESSION_HANDLE h,
                        const CK_MECHANISM *m, const CK_ATTRIBUTE *pub, CK_ULONG npub,
                        const CK_ATTRIBUTE *priv, CK_ULONG npriv, CK_OBJECT_HANDLE *pubh,
                        CK_OBJECT_HANDLE *privh);
/* part_key_gen_pair in three steps, so that the middle one, part_key_generate_pair (pure:
 * no token state), can run on a crypto thread (worker.c): the checks of the session, the
 * mechanism and both templates, then storing the generated halves as two objects (both or
 * neither). Between the two, nothing may change the session, its login state or the
 * templates (later.c holds every such call back). */
CK_RV part_key_gen_pair_check(struct part_token *t, uint64_t conn, CK_SESSION_HANDLE h,
                              const CK_MECHANISM *m, const CK_ATTRIBUTE *pub, CK_ULONG npub,
                              const CK_ATTRIBUTE *priv, CK_ULONG npriv);
CK_RV part_key_gen_pair_store(struct part_token *t, uint64_t conn, CK_SESSION_HANDLE h,
                              const CK_MECHANISM *m, const CK_ATTRIBUTE *pub, CK_ULONG npub,
                              const CK_ATTRIBUTE *priv, CK_ULONG npriv,
                              const struct part_attrs *gpub, const struct part_attrs *gpriv,
                              CK_OBJECT_HANDLE *pubh, CK_OBJECT_HANDLE *privh);
CK_RV part_key_wrap(struct part_token *t, uint64_t conn, CK_SESSION_HANDLE h, const CK_MECHANISM *m,
                    CK_OBJECT_HANDLE wrapping, CK_OBJECT_HANDLE key, CK_BYTE *out,
                    CK_ULONG *outlen);
CK_RV part_key_unwrap(struct part_token *t, uint64_t conn, CK_SESSION_HANDLE h,
                      const CK_MECHANISM *m, CK_OBJECT_HANDLE unwrapping, const CK_BYTE *wrapped,
                      CK_ULONG wrappedlen, const CK_ATTRIBUTE *tmpl, CK_ULONG n,
                      CK_OBJECT_HANDLE *out);
CK_RV part_key_derive(struct part_token *t, uint64_t conn, CK_SESSION_HANDLE h,
                      const CK_MECHANISM *m, CK_OBJECT_HANDLE base, const CK_ATTRIBUTE *tmpl,
                      CK_ULONG n, CK_OBJECT_HANDLE *out);

/* worker.c: the largest client frame this worker accepts. */
uint32_t part_worker_max_frame(const struct part_worker *w);

/* Blank-pads s (truncated to n bytes) into dst[n], without a NUL (CK_TOKEN_INFO style). */
void part_pad(char *dst, size_t n, const char *s);
/* The CK_RV of a call whose response fields failed to encode with proto error r
 * (CKR_DEVICE_MEMORY for no memory, else CKR_GENERAL_ERROR), or rv when r is 0. */
CK_RV part_rv_encoded(int r, CK_RV rv);

/* ==== sealed at rest and passthrough (seal.c, masterkey.c, passthrough.c) =================
 * Kept in one block at the end so that edits to the token model above do not collide. */

/* secmem.c: the worker's secure heap (its top comment: what lives there, the size, and why
 * a heap that cannot be made refuses the start but one that cannot be locked does not). */
#define PART_SECMEM_MIN     (256u << 10) /* bytes; also the heap when RLIMIT_MEMLOCK is lower */
#define PART_SECMEM_MAX     (32u << 20)  /* bytes; the heap when RLIMIT_MEMLOCK is unlimited */
#define PART_SECMEM_RESERVE (64u << 10)  /* of RLIMIT_MEMLOCK, left for other locked pages */
/* The heap size for a RLIMIT_MEMLOCK of `memlock` bytes (UINT64_MAX: unlimited): the largest
 * power of two <= memlock - PART_SECMEM_RESERVE within [PART_SECMEM_MIN, PART_SECMEM_MAX]. */
size_t part_secmem_size(uint64_t memlock);
/* Creates the process's secure heap (CRYPTO_secure_malloc_init) once, sized by
 * part_secmem_size() after raising the soft RLIMIT_MEMLOCK to the hard one; `*size` (may be
 * NULL) gets its size (0 when another caller made it). A heap that cannot be locked is a
 * warning on stderr; one that cannot be made is PART_ERR_NOMEM with a line on stderr.
 * `partition` names the messages. A second call is a no-op. */
int part_secmem_init(const char *partition, size_t *size) PART_WUR;

/* masterkey.c: a 32-byte key in the secure heap when there is one (secmem.c), otherwise
 * (hsmctl, tests) in a page of its own; either way mlock()ed and MADV_DONTDUMP where the OS
 * allows, and wiped by part_masterkey_free. */
#define PART_MASTERKEY_LEN 32
struct part_masterkey;

/*
 * THE way a worker (or hsmctl) gets its partition's master key; the KYOK issue replaces the
 * body of this one function. Today: <o->store_dir>/master.key, created with 32 random bytes
 * (mode 0600, written then linked into place) when absent; refused when it is not a regular
 * file of our uid with no group/other permission bits, or not 32 bytes. The directory must
 * exist (part_store_open made it). On success *out is the caller's (part_masterkey_free).
 * Errors: PART_ERR_INVALID, PART_ERR_IO (with a line on stderr), PART_ERR_CORRUPT (size),
 * PART_ERR_CRYPTO (RNG), PART_ERR_NOMEM.
 */
int part_masterkey_obtain(const struct part_worker_opts *o, struct part_masterkey **out) PART_WUR;
/* A key from `len` (== PART_MASTERKEY_LEN, else PART_ERR_INVALID) bytes; tests and KYOK. */
int part_masterkey_from_bytes(const uint8_t *k, size_t len, struct part_masterkey **out) PART_WUR;
/* HKDF-SHA256(mk, info = label) → a new key of PART_MASTERKEY_LEN bytes in locked memory. */
int part_masterkey_derive(const struct part_masterkey *mk, const char *label,
                          struct part_masterkey **out) PART_WUR;
/* The PART_MASTERKEY_LEN key bytes; valid until part_masterkey_free. */
const uint8_t *part_masterkey_bytes(const struct part_masterkey *mk);
/* Wipes and frees; NULL is a no-op. */
void part_masterkey_free(struct part_masterkey *mk);

/*
 * seal.c (its top comment has the record format and what it detects). Every token object
 * record is sealed with AES-256-GCM, associated data = version, scheme, generation,
 * partition name and object ref; a sealed index in PART_DB_META holds each object's
 * current generation, written in the same transaction as the record.
 */
#define PART_SEAL_VERSION   1
#define PART_SEAL_NONE      0 /* the foundation's identity scheme: refused when read */
#define PART_SEAL_AES256GCM 1
struct part_seal;

/* Obtains the master key (part_masterkey_obtain), derives the sealing key and loads the
 * sealed index from `store`, which *out borrows (close *out before the store). Errors:
 * those of part_masterkey_obtain, PART_ERR_STORE, PART_ERR_CORRUPT (index missing while
 * records exist, index failing its seal — wrong master key —, records of the old scheme),
 * each with a line on stderr. */
int part_seal_open(const struct part_worker_opts *o, struct part_store *store,
                   struct part_seal **out) PART_WUR;
void part_seal_close(struct part_seal *s);
/* Load time: unseals the stored record `in` of object `ref` (32 hex) into `out` (appended
 * after a verified tag only; `out` is left empty on failure) and checks its generation
 * against the index. PART_ERR_CORRUPT, with the reason on stderr, for a modified,
 * truncated, swapped, foreign-key, rolled-back or resurrected record. */
int part_unseal(struct part_seal *s, const char *ref, const uint8_t *in, size_t len,
                struct proto_buf *out) PART_WUR;
/* After every record went through part_unseal: PART_ERR_CORRUPT when an object of the index
 * had no record (deleted from the store). */
int part_seal_load_end(struct part_seal *s) PART_WUR;
/* Seals record rec[len] of `ref` with its next generation and writes it with the updated
 * index in one write transaction. On failure the store and the index are unchanged. */
int part_seal_store(struct part_seal *s, const char *ref, const uint8_t *rec, size_t len) PART_WUR;
/* Deletes the record of `ref` (absent: fine) and its index entry, in one transaction. */
int part_seal_unstore(struct part_seal *s, const char *ref) PART_WUR;
/* Within the caller's write transaction that clears PART_DB_OBJECTS: an empty index. */
int part_seal_clear(struct part_seal *s, struct part_txn *txn) PART_WUR;
/* The token record (token.c), sealed like an object record with ref "token" and its own
 * generation (the top of seal.c says what that does and does not detect): into `out`
 * (appended). */
int part_seal_token(struct part_seal *s, const uint8_t *rec, size_t len,
                    struct proto_buf *out) PART_WUR;
/* Unseals a stored token record into `out` (appended after a verified tag only).
 * PART_ERR_CORRUPT with a line on stderr (wrong master key, modified or moved record),
 * PART_ERR_NOMEM. */
int part_unseal_token(struct part_seal *s, const uint8_t *in, size_t len,
                      struct proto_buf *out) PART_WUR;
/* One record, without the index (tests, and the index itself). part_unseal_record returns
 * the authenticated generation in *gen; PART_ERR_CORRUPT for anything that does not verify. */
int part_seal_record(const struct part_masterkey *key, const char *partition, const char *ref,
                     uint64_t gen, const uint8_t *in, size_t len, struct proto_buf *out) PART_WUR;
int part_unseal_record(const struct part_masterkey *key, const char *partition, const char *ref,
                       const uint8_t *in, size_t len, struct proto_buf *out,
                       uint64_t *gen) PART_WUR;

/* ipc.c: the worker's blocking IPC loop, shared by the soft worker (part_worker_serve) and
 * the passthrough backend (part_pt_serve); the contract of part_worker_serve, with the
 * handler's functions in place of part_worker_handle / part_worker_conn_closed. */
struct part_ipc_handler {
	void *arg;
	uint32_t max_frame;
	int (*handle)(void *arg, uint64_t conn, const struct proto_ctx *ctx, const uint8_t *frame,
	              size_t len, struct proto_buf *reply);
	void (*conn_closed)(void *arg, uint64_t conn);
	/* PROTO_IPC_POLICY's body (the policy text; may be empty): non-zero ends the loop.
	 * NULL: the message is accepted and the backend enforces no key-level policy. */
	int (*policy)(void *arg, const uint8_t *text, size_t len);
	/* Optional: after each request, the body of a PROTO_IPC_AUDIT message to send ahead of
	 * the reply (1), or none (0); negative on failure. */
	int (*decision)(void *arg, struct proto_buf *body);
	/* The backend's calls answered later (later.c), whose jobs finish with `arg`; NULL:
	 * handle() never returns PART_LATER. The loop writes their replies as they end, ahead of
	 * any reply it builds afterwards, waits for them or runs them while it has nothing to
	 * read, and waits for all of them when it ends. */
	struct part_later *later;
};
int part_ipc_serve(const struct part_ipc_handler *h, int fd) PART_WUR;

/* ==== end of the sealed-at-rest and passthrough block ===================================== */

#endif /* HSMGATE_PART_INT_H */
