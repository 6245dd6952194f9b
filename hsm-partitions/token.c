/*
 * hsm-partitions/token.c — the token: its persistent record (label, PIN hashes, retry
 * counters), slot and token information, C_InitToken, C_InitPIN, C_SetPIN, C_Login and
 * C_Logout, and the offline initialisation used by hsmctl.
 *
 * Login state belongs to the application (PKCS #11 v2.40 §5.6 / §6.7: "all sessions of an
 * application share the same login state"); here the connection is the application, so it
 * lives in struct part_conn (session.c). The retry counters are persistent and written
 * before a refusal is answered, so restarting the worker does not reset them.
 *
 * The record is sealed (seal.c, part_seal_token) like every object: AES-256-GCM under the
 * partition's sealing key, so the PIN hashes and salts in a stolen store are no material
 * for an offline search. Stored form: the sealed record of
 *   u32 META_VERSION | u8 initialized | 32 label | pin so | pin user | u32 so_fails |
 *   u32 user_fails     (pin: u8 set | u32 iterations | 16 salt | 32 hash)
 * Earlier builds stored that plaintext as is. Such a record starts with the byte 0x00 (the
 * high byte of u32 META_VERSION), a sealed one with PART_SEAL_VERSION (1): an unsealed
 * record is read once and rewritten sealed right away, at the worker's start (see
 * meta_load for why not at the next write).
 *
 * C_Login of a PIN that passed the full PBKDF2 check before takes the verified-PIN cache
 * (pin.c; why it is safe: docs/PKCS11.md "PINs"). Every failed check clears it for that
 * user type, and so does every change of a PIN record (C_InitToken, C_InitPIN, C_SetPIN).
 */
#include "hsm-partitions/part_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#define META_KEY     "token"
#define META_VERSION 1
#define META_PLAIN   0x00 /* first byte of an unsealed record: the top of u32 META_VERSION */

/* ---- the persistent token record -------------------------------------------------------- */

static int
pin_put(struct proto_buf *b, const struct part_pin *p)
{
	int r;

	if ((r = proto_put_u8(b, p->set ? 1 : 0)) != 0 || (r = proto_put_u32(b, p->iter)) != 0 ||
	    (r = proto_put_raw(b, p->salt, sizeof(p->salt))) != 0 ||
	    (r = proto_put_raw(b, p->hash, sizeof(p->hash))) != 0) {
		return r;
	}
	return 0;
}

static int
pin_get(struct proto_cur *c, struct part_pin *p)
{
	uint8_t set;
	int r;

	if ((r = proto_get_u8(c, &set)) != 0 || (r = proto_get_u32(c, &p->iter)) != 0 ||
	    (r = proto_get_raw(c, p->salt, sizeof(p->salt))) != 0 ||
	    (r = proto_get_raw(c, p->hash, sizeof(p->hash))) != 0) {
		return r;
	}
	if (set > 1 || (set && p->iter == 0)) {
		return PROTO_ERR_BAD_VALUE;
	}
	p->set = set;
	return 0;
}

/* The plaintext of the record (the top of the file has its layout). */
static int
meta_encode(const struct part_meta *m, struct proto_buf *b)
{
	int r;

	if ((r = proto_put_u32(b, META_VERSION)) != 0 ||
	    (r = proto_put_u8(b, m->initialized ? 1 : 0)) != 0 ||
	    (r = proto_put_raw(b, m->label, sizeof(m->label))) != 0 ||
	    (r = pin_put(b, &m->so)) != 0 || (r = pin_put(b, &m->user)) != 0 ||
	    (r = proto_put_u32(b, m->so_fails)) != 0 ||
	    (r = proto_put_u32(b, m->user_fails)) != 0) {
		return r == PROTO_ERR_NOMEM ? PART_ERR_NOMEM : PART_ERR_INVALID;
	}
	return 0;
}

static int
meta_decode(const uint8_t *p, size_t len, struct part_meta *m)
{
	struct proto_cur c;
	uint32_t version;
	uint8_t init;

	memset(m, 0, sizeof(*m));
	proto_cur_init(&c, p, len);
	if (proto_get_u32(&c, &version) != 0 || version != META_VERSION ||
	    proto_get_u8(&c, &init) != 0 || init > 1 ||
	    proto_get_raw(&c, m->label, sizeof(m->label)) != 0 || pin_get(&c, &m->so) != 0 ||
	    pin_get(&c, &m->user) != 0 || proto_get_u32(&c, &m->so_fails) != 0 ||
	    proto_get_u32(&c, &m->user_fails) != 0 || proto_cur_end(&c) != 0) {
		OPENSSL_cleanse(m, sizeof(*m));
		return PART_ERR_CORRUPT;
	}
	m->initialized = init;
	return 0;
}

/* Seals and writes `m` and, when `clear_objects`, empties the object DB, in one
 * transaction: a token re-initialisation either happens completely or not at all. */
static int
meta_write(struct part_token *t, const struct part_meta *m, int clear_objects)
{
	struct part_txn *txn = NULL;
	struct proto_buf b, sealed;
	int r;

	proto_buf_init(&b);
	proto_buf_init(&sealed);
	if ((r = meta_encode(m, &b)) != 0 ||
	    (r = part_seal_token(t->seal, b.data, b.len, &sealed)) != 0 ||
	    (r = part_store_txn_begin(t->store, 1, &txn)) != 0 ||
	    (clear_objects && (r = part_store_clear(txn, PART_DB_OBJECTS)) != 0) ||
	    (clear_objects && (r = part_seal_clear(t->seal, txn)) != 0) ||
	    (r = part_store_put(txn, PART_DB_META, META_KEY, strlen(META_KEY), sealed.data,
	                        sealed.len)) != 0) {
		goto out;
	}
	r = part_store_txn_commit(txn);
	txn = NULL; /* freed by commit */
out:
	part_store_txn_abort(txn);
	proto_buf_free(&b); /* wiped: PIN hashes */
	proto_buf_free(&sealed);
	return r;
}

int
part_token_meta_save(struct part_token *t)
{
	return meta_write(t, &t->meta, 0);
}

/*
 * Reads the token record; the seal is open, so the sealing key is known. An unsealed record
 * of an earlier build is decoded as it is and rewritten sealed at once: waiting for the
 * next write could wait for ever (a token whose logins all succeed never writes its
 * record), and the point of sealing is that the file holds no PIN hashes in clear. LMDB
 * may keep the old bytes in a free page until it reuses it; docs/PKCS11.md says how to
 * compact the store.
 */
static int
meta_load(struct part_token *t)
{
	struct part_txn *txn = NULL;
	struct proto_buf plain;
	const uint8_t *v;
	size_t vlen;
	int legacy = 0, r;

	proto_buf_init(&plain);
	if ((r = part_store_txn_begin(t->store, 0, &txn)) != 0) {
		return r;
	}
	r = part_store_get(txn, PART_DB_META, META_KEY, strlen(META_KEY), &v, &vlen);
	if (r == PART_ERR_NOT_FOUND) {
		/* A new store: a token "new from the factory" (v2.40 §5.6 C_InitToken). */
		memset(&t->meta, 0, sizeof(t->meta));
		r = 0;
	} else if (r == 0 && vlen > 0 && v[0] == META_PLAIN) {
		legacy = 1;
		if ((r = meta_decode(v, vlen, &t->meta)) != 0) {
			fprintf(stderr,
			        "hsmgate-worker: partition %s: the unsealed token record of an "
			        "earlier build is malformed\n",
			        t->partition);
		}
	} else if (r == 0 && (r = part_unseal_token(t->seal, v, vlen, &plain)) == 0 &&
	           (r = meta_decode(plain.data, plain.len, &t->meta)) != 0) {
		/* Authentic, so written by a build with another record layout. */
		fprintf(stderr, "hsmgate-worker: partition %s: the token record is malformed\n",
		        t->partition);
	}
	part_store_txn_abort(txn);
	proto_buf_free(&plain);
	if (r == 0 && legacy) {
		if ((r = meta_write(t, &t->meta, 0)) != 0) {
			fprintf(stderr,
			        "hsmgate-worker: partition %s: cannot seal the token record of an "
			        "earlier build: %s\n",
			        t->partition, part_strerror(r));
			return r;
		}
		fprintf(stderr,
		        "hsmgate-worker: partition %s: token record sealed (it was stored "
		        "unsealed by an earlier build)\n",
		        t->partition);
	}
	return r;
}

/* ---- open / free ------------------------------------------------------------------------ */

/* The serial number: 16 hex digits of SHA-256("hsmgate-partition:" name), stable for the
 * life of the partition and distinct between partitions. */
static int
make_serial(const char *partition, char serial[16])
{
	static const char hex[] = "0123456789ABCDEF";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int ok, i;

	ok = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
	     EVP_DigestUpdate(ctx, "hsmgate-partition:", 18) == 1 &&
	     EVP_DigestUpdate(ctx, partition, strlen(partition)) == 1 &&
	     EVP_DigestFinal_ex(ctx, md, &mdlen) == 1;
	EVP_MD_CTX_free(ctx);
	if (!ok || mdlen < 8) {
		return PART_ERR_CRYPTO;
	}
	for (i = 0; i < 8; i++) {
		serial[2 * i] = hex[md[i] >> 4];
		serial[2 * i + 1] = hex[md[i] & 0xf];
	}
	return 0;
}

int
part_token_open(const struct part_worker_opts *o, struct part_token **out)
{
	struct part_token *t = NULL;
	int r;

	*out = NULL;
	if (o == NULL || o->partition == NULL || *o->partition == '\0' ||
	    strlen(o->partition) >= sizeof(t->partition) || o->store_dir == NULL || o->slot < 1 ||
	    o->slot > 255) {
		return PART_ERR_INVALID;
	}
	if ((t = calloc(1, sizeof(*t))) == NULL) {
		return PART_ERR_NOMEM;
	}
	t->slot = o->slot;
	snprintf(t->partition, sizeof(t->partition), "%s", o->partition);
	part_pad(t->default_label, sizeof(t->default_label),
	         o->token_label != NULL ? o->token_label : o->partition);
	t->pin_iter = o->pin_iter != 0 ? o->pin_iter : PART_PIN_ITER;
	t->next_object = 0;
	/* The order matters: the seal (master key, sealed index) opens before the token
	 * record, which is sealed under it, and the objects come last. */
	if ((r = make_serial(o->partition, t->serial)) != 0 ||
	    (r = part_pin_cache_new(&t->pins)) != 0 ||
	    (r = part_store_open(o->store_dir, &t->store)) != 0 ||
	    (r = part_seal_open(o, t->store, &t->seal)) != 0 || (r = meta_load(t)) != 0 ||
	    (r = part_object_load_all(t)) != 0) {
		goto out;
	}
	*out = t;
	t = NULL; /* transferred */
	r = 0;
out:
	part_token_free(t);
	return r;
}

void
part_token_free(struct part_token *t)
{
	if (t == NULL) {
		return;
	}
	part_session_free_all(t);
	part_object_free_all(t);
	part_seal_close(t->seal);
	part_store_close(t->store);
	part_pin_cache_free(t->pins);
	OPENSSL_cleanse(&t->meta, sizeof(t->meta));
	free(t);
}

/* ---- information ------------------------------------------------------------------------ */

static const CK_VERSION part_version = {0, 1};

CK_RV
part_token_slot_info(struct part_token *t, CK_SLOT_ID slot, CK_SLOT_INFO *info)
{
	char desc[128];

	if (slot != t->slot) {
		return CKR_SLOT_ID_INVALID;
	}
	memset(info, 0, sizeof(*info));
	snprintf(desc, sizeof(desc), "hsmgate partition %s", t->partition);
	part_pad((char *)info->slotDescription, sizeof(info->slotDescription), desc);
	part_pad((char *)info->manufacturerID, sizeof(info->manufacturerID), "hsmgate");
	/* A network partition: always present, neither removable nor a hardware slot. */
	info->flags = CKF_TOKEN_PRESENT;
	info->hardwareVersion = part_version;
	info->firmwareVersion = part_version;
	return CKR_OK;
}

static CK_FLAGS
pin_flags(uint32_t fails, CK_FLAGS low, CK_FLAGS final, CK_FLAGS locked)
{
	if (fails >= PART_PIN_TRIES) {
		return locked;
	}
	if (fails == PART_PIN_TRIES - 1) {
		return low | final;
	}
	return fails > 0 ? low : 0;
}

CK_RV
part_token_info(struct part_token *t, CK_SLOT_ID slot, CK_TOKEN_INFO *info)
{
	char utc[64];
	struct tm tm;
	time_t now;

	if (slot != t->slot) {
		return CKR_SLOT_ID_INVALID;
	}
	memset(info, 0, sizeof(*info));
	if (t->meta.initialized) {
		memcpy(info->label, t->meta.label, sizeof(info->label));
	} else {
		memcpy(info->label, t->default_label, sizeof(info->label));
	}
	part_pad((char *)info->manufacturerID, sizeof(info->manufacturerID), "hsmgate");
	part_pad((char *)info->model, sizeof(info->model), "soft partition");
	memcpy(info->serialNumber, t->serial, sizeof(info->serialNumber));
	info->flags = CKF_RNG | CKF_LOGIN_REQUIRED | CKF_CLOCK_ON_TOKEN;
	if (t->meta.initialized) {
		info->flags |= CKF_TOKEN_INITIALIZED;
	}
	if (t->meta.user.set) {
		info->flags |= CKF_USER_PIN_INITIALIZED;
	}
	info->flags |= pin_flags(t->meta.user_fails, CKF_USER_PIN_COUNT_LOW, CKF_USER_PIN_FINAL_TRY,
	                         CKF_USER_PIN_LOCKED);
	info->flags |= pin_flags(t->meta.so_fails, CKF_SO_PIN_COUNT_LOW, CKF_SO_PIN_FINAL_TRY,
	                         CKF_SO_PIN_LOCKED);
	info->ulMaxSessionCount = PART_MAX_SESSIONS;
	info->ulSessionCount = t->nsessions;
	info->ulMaxRwSessionCount = PART_MAX_SESSIONS;
	info->ulRwSessionCount = t->nrw;
	info->ulMaxPinLen = PART_PIN_MAX;
	info->ulMinPinLen = PART_PIN_MIN;
	info->ulTotalPublicMemory = CK_UNAVAILABLE_INFORMATION;
	info->ulFreePublicMemory = CK_UNAVAILABLE_INFORMATION;
	info->ulTotalPrivateMemory = CK_UNAVAILABLE_INFORMATION;
	info->ulFreePrivateMemory = CK_UNAVAILABLE_INFORMATION;
	info->hardwareVersion = part_version;
	info->firmwareVersion = part_version;
	/* v2.40 §3.2 CK_TOKEN_INFO: utcTime is "YYYYMMDDhhmmssxx" (xx reserved, "00") when
	 * CKF_CLOCK_ON_TOKEN is set. */
	now = time(NULL);
	gmtime_r(&now, &tm);
	snprintf(utc, sizeof(utc), "%04d%02d%02d%02d%02d%02d00", tm.tm_year + 1900, tm.tm_mon + 1,
	         tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
	memcpy(info->utcTime, utc, sizeof(info->utcTime));
	return CKR_OK;
}

/* The list and the infos are the crypto engine's table (crypto/table.c), the single
 * source of truth: an operation is refused unless its flag is set there, so what the token
 * lists is exactly what it does. */
CK_RV
part_token_mechanisms(struct part_token *t, CK_SLOT_ID slot, CK_MECHANISM_TYPE *list,
                      CK_ULONG *count)
{
	size_t n = *count;
	CK_RV rv;

	if (slot != t->slot) {
		return CKR_SLOT_ID_INVALID;
	}
	rv = part_mech_list(list, &n);
	*count = n;
	return rv;
}

CK_RV
part_token_mechanism_info(struct part_token *t, CK_SLOT_ID slot, CK_MECHANISM_TYPE type,
                          CK_MECHANISM_INFO *info)
{
	if (slot != t->slot) {
		return CKR_SLOT_ID_INVALID;
	}
	return part_mech_info(type, info);
}

/* ---- PINs ------------------------------------------------------------------------------- */

static int
pin_len_ok(CK_ULONG len)
{
	return len >= PART_PIN_MIN && len <= PART_PIN_MAX;
}

/*
 * Checks `pin` against the SO or user PIN with the retry counter: CKR_PIN_LOCKED once
 * PART_PIN_TRIES wrong PINs were given in a row (the attempt that reaches the limit still
 * answers CKR_PIN_INCORRECT; the token info then shows the LOCKED flag), CKR_PIN_INCORRECT
 * with the counter incremented and saved, CKR_OK with the counter reset. The counter is
 * written before the answer, so no refusal is ever lost to a crash.
 * The lock is checked first, so a locked PIN is refused even when it is cached. A PIN the
 * verified-PIN cache knows skips PBKDF2; any other takes the full check, and a failed
 * check empties the cache for `who` (the cache is only ever filled by a success, which
 * also zeroes the counter, so a hit never meets a non-zero counter).
 */
static CK_RV
pin_verify(struct part_token *t, CK_USER_TYPE who, const CK_BYTE *pin, CK_ULONG len)
{
	struct part_pin *p = who == CKU_SO ? &t->meta.so : &t->meta.user;
	uint32_t *fails = who == CKU_SO ? &t->meta.so_fails : &t->meta.user_fails;
	int ok;

	if (*fails >= PART_PIN_TRIES) {
		return CKR_PIN_LOCKED;
	}
	if (part_pin_cache_match(t->pins, who, p, pin, len)) {
		ok = 1;
	} else if ((ok = part_pin_check(p, pin, len)) < 0) {
		return CKR_DEVICE_ERROR;
	} else if (ok) {
		part_pin_cache_set(t->pins, who, p, pin, len);
	}
	if (!ok) {
		part_pin_cache_clear(t->pins, who);
		(*fails)++;
		return part_token_meta_save(t) == 0 ? CKR_PIN_INCORRECT : CKR_DEVICE_ERROR;
	}
	if (*fails != 0) {
		*fails = 0;
		if (part_token_meta_save(t) != 0) {
			return CKR_DEVICE_ERROR;
		}
	}
	return CKR_OK;
}

CK_RV
part_token_init(struct part_token *t, CK_SLOT_ID slot, const CK_BYTE *pin, CK_ULONG len,
                const CK_BYTE *label)
{
	struct part_meta m;
	CK_RV rv;

	if (slot != t->slot) {
		return CKR_SLOT_ID_INVALID;
	}
	/* No protected authentication path: the PIN must come with the call. */
	if (pin == NULL || label == NULL) {
		return CKR_ARGUMENTS_BAD;
	}
	/* v2.40 §5.6 C_InitToken: "If the token has not been initialized ... the pPin parameter
	 * becomes the initial value of the SO PIN. If the token is being reinitialized, the
	 * pPin parameter is checked against the existing SO PIN"; and CKR_SESSION_EXISTS when
	 * any session is open with the token (whoever opened it). */
	if (t->nsessions > 0) {
		return CKR_SESSION_EXISTS;
	}
	memset(&m, 0, sizeof(m));
	if (t->meta.initialized) {
		if ((rv = pin_verify(t, CKU_SO, pin, len)) != CKR_OK) {
			return rv;
		}
		m.so = t->meta.so;
	} else {
		if (!pin_len_ok(len)) {
			return CKR_PIN_LEN_RANGE;
		}
		if (part_pin_hash(pin, len, t->pin_iter, &m.so) != 0) {
			return CKR_DEVICE_ERROR;
		}
	}
	/* "When a token is initialized, all objects that can be destroyed are destroyed ...
	 * Also, access by the normal user is disabled until the SO sets the normal user's
	 * PIN": the user PIN and both counters start over. */
	m.initialized = 1;
	memcpy(m.label, label, sizeof(m.label));
	/* A new token record: the cache forgets both PINs, the SO's included. */
	part_pin_cache_clear(t->pins, CKU_SO);
	part_pin_cache_clear(t->pins, CKU_USER);
	if (meta_write(t, &m, 1) != 0) {
		OPENSSL_cleanse(&m, sizeof(m));
		return CKR_DEVICE_ERROR;
	}
	part_object_drop_token(t);
	t->meta = m;
	OPENSSL_cleanse(&m, sizeof(m));
	return CKR_OK;
}

CK_RV
part_token_init_pin(struct part_token *t, uint64_t conn, CK_SESSION_HANDLE h, const CK_BYTE *pin,
                    CK_ULONG len)
{
	struct part_session *s;
	struct part_pin old;
	CK_RV rv;

	if ((rv = part_session_get(t, conn, h, &s)) != CKR_OK) {
		return rv;
	}
	/* "C_InitPIN can only be called in the 'R/W SO Functions' state. An attempt to call it
	 * from a session in any other state fails with error CKR_USER_NOT_LOGGED_IN." */
	if (part_session_state(s) != CKS_RW_SO_FUNCTIONS) {
		return CKR_USER_NOT_LOGGED_IN;
	}
	if (pin == NULL) {
		return CKR_ARGUMENTS_BAD;
	}
	if (!pin_len_ok(len)) {
		return CKR_PIN_LEN_RANGE;
	}
	old = t->meta.user;
	part_pin_cache_clear(t->pins, CKU_USER);
	if (part_pin_hash(pin, len, t->pin_iter, &t->meta.user) != 0) {
		t->meta.user = old;
		return CKR_DEVICE_ERROR;
	}
	/* Setting the user PIN also unlocks it: the SO's reset is the recovery path. */
	t->meta.user_fails = 0;
	if (part_token_meta_save(t) != 0) {
		OPENSSL_cleanse(&old, sizeof(old));
		return CKR_DEVICE_ERROR;
	}
	OPENSSL_cleanse(&old, sizeof(old));
	return CKR_OK;
}

CK_RV
part_token_set_pin(struct part_token *t, uint64_t conn, CK_SESSION_HANDLE h, const CK_BYTE *old,
                   CK_ULONG oldlen, const CK_BYTE *pin, CK_ULONG len)
{
	struct part_session *s;
	struct part_pin np;
	CK_USER_TYPE who;
	CK_RV rv;

	if ((rv = part_session_get(t, conn, h, &s)) != CKR_OK) {
		return rv;
	}
	/* "C_SetPIN can only be called in the 'R/W Public Session' state, 'R/W SO Functions'
	 * state, or 'R/W User Functions' state. An attempt to call it from a session in the
	 * 'R/O Public Session' state fails with error CKR_SESSION_READ_ONLY." (An R/O user
	 * session is refused the same way.) Not logged in, it changes the user's PIN. */
	if (!s->rw) {
		return CKR_SESSION_READ_ONLY;
	}
	if (old == NULL || pin == NULL) {
		return CKR_ARGUMENTS_BAD;
	}
	who = s->conn->user == CKU_SO ? CKU_SO : CKU_USER;
	if (who == CKU_USER && !t->meta.user.set) {
		return CKR_USER_PIN_NOT_INITIALIZED;
	}
	/* The new PIN's length first: a refusal that costs no guess. */
	if (!pin_len_ok(len)) {
		return CKR_PIN_LEN_RANGE;
	}
	if ((rv = pin_verify(t, who, old, oldlen)) != CKR_OK) {
		return rv;
	}
	part_pin_cache_clear(t->pins, who);
	if (part_pin_hash(pin, len, t->pin_iter, &np) != 0) {
		return CKR_DEVICE_ERROR;
	}
	if (who == CKU_SO) {
		t->meta.so = np;
	} else {
		t->meta.user = np;
	}
	OPENSSL_cleanse(&np, sizeof(np));
	return part_token_meta_save(t) == 0 ? CKR_OK : CKR_DEVICE_ERROR;
}

CK_RV
part_token_login(struct part_token *t, uint64_t conn, CK_SESSION_HANDLE h, CK_USER_TYPE user,
                 const CK_BYTE *pin, CK_ULONG len)
{
	struct part_session *s;
	CK_RV rv;

	if ((rv = part_session_get(t, conn, h, &s)) != CKR_OK) {
		return rv;
	}
	switch (user) {
	case CKU_SO:
	case CKU_USER:
		break;
	case CKU_CONTEXT_SPECIFIC:
		/* Re-authentication for an operation with CKA_ALWAYS_AUTHENTICATE; no key
		 * has it yet (issue 3), so no operation can be waiting for it. */
		return CKR_OPERATION_NOT_INITIALIZED;
	default:
		return CKR_USER_TYPE_INVALID;
	}
	if (s->conn->user == user) {
		return CKR_USER_ALREADY_LOGGED_IN;
	}
	if (s->conn->user != PART_USER_NONE) {
		return CKR_USER_ANOTHER_ALREADY_LOGGED_IN;
	}
	if (pin == NULL) {
		return CKR_ARGUMENTS_BAD;
	}
	/* "CKR_SESSION_READ_ONLY_EXISTS: a read-only session already exists, and so the SO
	 * cannot be logged in" (v2.40 §5.1). */
	if (user == CKU_SO && s->conn->nro > 0) {
		return CKR_SESSION_READ_ONLY_EXISTS;
	}
	if (user == CKU_USER && !t->meta.user.set) {
		return CKR_USER_PIN_NOT_INITIALIZED;
	}
	if ((rv = pin_verify(t, user, pin, len)) != CKR_OK) {
		return rv;
	}
	s->conn->user = user;
	return CKR_OK;
}

CK_RV
part_token_logout(struct part_token *t, uint64_t conn, CK_SESSION_HANDLE h)
{
	struct part_session *s;
	CK_RV rv;

	if ((rv = part_session_get(t, conn, h, &s)) != CKR_OK) {
		return rv;
	}
	if (s->conn->user == PART_USER_NONE) {
		return CKR_USER_NOT_LOGGED_IN;
	}
	s->conn->user = PART_USER_NONE;
	return CKR_OK;
}

/* ---- offline initialisation (hsmctl) --------------------------------------------------- */

int
part_token_provision(const struct part_worker_opts *o, const char *label, const uint8_t *so_pin,
                     size_t so_len, const uint8_t *user_pin, size_t user_len, int force)
{
	struct part_token *t = NULL;
	struct part_meta m;
	int r;

	memset(&m, 0, sizeof(m));
	if (so_pin == NULL || user_pin == NULL) {
		return PART_ERR_INVALID;
	}
	if (!pin_len_ok(so_len) || !pin_len_ok(user_len)) {
		return PART_ERR_PIN;
	}
	if (label != NULL && strlen(label) > sizeof(m.label)) {
		return PART_ERR_INVALID;
	}
	if ((r = part_token_open(o, &t)) != 0) {
		return r;
	}
	if (t->meta.initialized && !force) {
		r = PART_ERR_EXISTS;
		goto out;
	}
	m.initialized = 1;
	if (label != NULL) {
		part_pad(m.label, sizeof(m.label), label);
	} else {
		memcpy(m.label, t->default_label, sizeof(m.label));
	}
	if ((r = part_pin_hash(so_pin, so_len, t->pin_iter, &m.so)) != 0 ||
	    (r = part_pin_hash(user_pin, user_len, t->pin_iter, &m.user)) != 0 ||
	    (r = meta_write(t, &m, 1)) != 0) {
		goto out;
	}
	r = 0;
out:
	OPENSSL_cleanse(&m, sizeof(m));
	part_token_free(t);
	return r;
}
