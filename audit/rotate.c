/*
 * audit/rotate.c — signing-key rotation: keyrings (the keys a verifier trusts), the
 * key-rotation statement a 'K' record carries, the writer's key history (which key is in
 * force at the end of the log it opens) and the verifier's key windows. AUDIT.md §2.4.
 *
 * A rotation is a C2SP signed note, signed twice over the same body: by the key in force
 * (it authorises the change) and by the new key (proof of possession: whoever announced
 * the key holds it, so nobody can hand a log over to a key that is not theirs, and a
 * typo'd or foreign public key is refused where it is named, not at the next checkpoint):
 *
 *   <origin>\n
 *   hsmgate-audit key rotation v1\n
 *   seq <N>\n                      the K record's own seq: the new key signs after it
 *   time <unix ns>\n               the K record's time
 *   chain <base64 chain[N-1]>\n    the chain head before it: binds the whole history
 *   old <vkey>\n
 *   new <vkey>\n
 *   \n
 *   — <origin> <base64(old key id || Ed25519 signature)>\n
 *   — <origin> <base64(new key id || Ed25519 signature)>\n
 *
 * vkey is a signed-note verifier key, "<origin>+<key id, 8 hex>+<base64(0x01 || key)>".
 * Line 2 keeps every rotation body apart from every checkpoint body (whose line 2 is a
 * number), so no signature over one can be taken for the other.
 */
#include "audit/aud_int.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROT_MAGIC "hsmgate-audit key rotation v1\n"
#define VKEY_B64  44 /* base64 of 0x01 || 32-byte key */

/* ---- keys ----------------------------------------------------------------------------- */

int
aud_key_raw(EVP_PKEY *pk, uint8_t raw[AUD_ED25519_LEN])
{
	size_t n = AUD_ED25519_LEN;

	if (pk == NULL || EVP_PKEY_get_id(pk) != EVP_PKEY_ED25519 ||
	    EVP_PKEY_get_raw_public_key(pk, raw, &n) != 1 || n != AUD_ED25519_LEN) {
		memset(raw, 0, AUD_ED25519_LEN);
		return AUD_ERR_KEY;
	}
	return 0;
}

static int
key_from_raw(const uint8_t raw[AUD_ED25519_LEN], EVP_PKEY **pk)
{
	*pk = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, raw, AUD_ED25519_LEN);
	return *pk != NULL ? 0 : AUD_ERR_CRYPTO;
}

void
aud_key_id_raw(const char *origin, const uint8_t raw[AUD_ED25519_LEN], uint8_t id[4])
{
	uint8_t buf[2 + AUD_ED25519_LEN], h[AUD_HASH_LEN];

	buf[0] = '\n';
	buf[1] = 0x01; /* signed-note: Ed25519 */
	memcpy(buf + 2, raw, AUD_ED25519_LEN);
	aud_sha256(origin, strlen(origin), buf, sizeof(buf), h);
	memcpy(id, h, 4);
}

/* The key id as 8 hex digits, for messages. */
static void
key_hex(const char *origin, const uint8_t raw[AUD_ED25519_LEN], char out[9])
{
	uint8_t id[4];

	aud_key_id_raw(origin, raw, id);
	aud_hex_encode(id, 4, out);
}

static int
vkey_format(const char *origin, const uint8_t raw[AUD_ED25519_LEN], char out[AUD_MAX_VKEY + 1])
{
	uint8_t kd[1 + AUD_ED25519_LEN];
	char hex[9], *b64 = NULL;
	size_t blen;
	int r;

	out[0] = '\0';
	if (!aud_origin_ok(origin, strlen(origin))) {
		return AUD_ERR_INVALID;
	}
	key_hex(origin, raw, hex);
	kd[0] = 0x01;
	memcpy(kd + 1, raw, AUD_ED25519_LEN);
	if ((r = aud_b64_encode(kd, sizeof(kd), &b64, &blen)) != 0) {
		return r;
	}
	snprintf(out, AUD_MAX_VKEY + 1, "%s+%s+%s", origin, hex, b64);
	free(b64);
	return 0;
}

/* A vkey for `origin` whose key id matches its key. */
static int
vkey_parse(const char *s, size_t n, const char *origin, uint8_t raw[AUD_ED25519_LEN])
{
	size_t olen = strlen(origin), got;
	uint8_t id[4], want[4], kd[1 + AUD_ED25519_LEN];

	memset(raw, 0, AUD_ED25519_LEN);
	if (n != olen + 1 + 8 + 1 + VKEY_B64 || memcmp(s, origin, olen) != 0 || s[olen] != '+' ||
	    s[olen + 9] != '+' || aud_hex_decode(s + olen + 1, 8, id, 4) != 0 ||
	    aud_b64_decode(s + olen + 10, VKEY_B64, kd, sizeof(kd), &got) != 0 ||
	    got != sizeof(kd) || kd[0] != 0x01) {
		return AUD_ERR_MALFORMED;
	}
	aud_key_id_raw(origin, kd + 1, want);
	if (memcmp(id, want, 4) != 0) {
		return AUD_ERR_MALFORMED;
	}
	memcpy(raw, kd + 1, AUD_ED25519_LEN);
	return 0;
}

int
aud_key_vkey(const char *key_path, const char *origin, char *out)
{
	EVP_PKEY *pk = NULL;
	uint8_t raw[AUD_ED25519_LEN];
	int r;

	out[0] = '\0';
	/* A public key file, or the public half of a private one. */
	if (aud_key_load_public(key_path, &pk) != 0 &&
	    (r = aud_key_load_private(key_path, &pk)) != 0) {
		ERR_clear_error();
		return r;
	}
	ERR_clear_error();
	if ((r = aud_key_raw(pk, raw)) == 0) {
		r = vkey_format(origin, raw, out);
	}
	EVP_PKEY_free(pk);
	return r;
}

static int
ed_verify(const uint8_t raw[AUD_ED25519_LEN], const void *msg, size_t len, const uint8_t sig[64])
{
	EVP_PKEY *pk = NULL;
	EVP_MD_CTX *md = NULL;
	int r;

	if ((r = key_from_raw(raw, &pk)) != 0) {
		return r;
	}
	if ((md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestVerifyInit(md, NULL, NULL, NULL, pk) != 1) {
		r = AUD_ERR_CRYPTO;
	} else {
		r = EVP_DigestVerify(md, sig, 64, msg, len) == 1 ? 0 : AUD_ERR_SIGNATURE;
	}
	ERR_clear_error();
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(pk);
	return r;
}

/* ---- keyrings ------------------------------------------------------------------------- */

struct aud_keyring {
	EVP_PKEY **pk;
	uint8_t (*raw)[AUD_ED25519_LEN];
	uint64_t *tag;
	size_t n, cap;
};

int
aud_keyring_new(struct aud_keyring **kr)
{
	*kr = calloc(1, sizeof(**kr));
	return *kr != NULL ? 0 : AUD_ERR_NOMEM;
}

void
aud_keyring_free(struct aud_keyring *kr)
{
	size_t i;

	if (kr == NULL) {
		return;
	}
	for (i = 0; i < kr->n; i++) {
		EVP_PKEY_free(kr->pk[i]);
	}
	free(kr->pk);
	free(kr->raw);
	free(kr->tag);
	free(kr);
}

size_t
aud_keyring_count(const struct aud_keyring *kr)
{
	return kr != NULL ? kr->n : 0;
}

static int
keyring_reserve(struct aud_keyring *kr, size_t extra)
{
	size_t cap = kr->cap != 0 ? kr->cap : 4;
	void *p;

	while (cap < kr->n + extra) {
		cap *= 2;
	}
	if (cap == kr->cap) {
		return 0;
	}
	/* Each array is replaced as soon as it has grown; cap only once all have. */
	if ((p = realloc(kr->pk, cap * sizeof(*kr->pk))) == NULL) {
		return AUD_ERR_NOMEM;
	}
	kr->pk = p;
	if ((p = realloc(kr->raw, cap * sizeof(*kr->raw))) == NULL) {
		return AUD_ERR_NOMEM;
	}
	kr->raw = p;
	if ((p = realloc(kr->tag, cap * sizeof(*kr->tag))) == NULL) {
		return AUD_ERR_NOMEM;
	}
	kr->tag = p;
	kr->cap = cap;
	return 0;
}

long
aud_keyring_find(const struct aud_keyring *kr, const uint8_t raw[AUD_ED25519_LEN])
{
	size_t i;

	for (i = 0; kr != NULL && i < kr->n; i++) {
		if (memcmp(kr->raw[i], raw, AUD_ED25519_LEN) == 0) {
			return (long)i;
		}
	}
	return -1;
}

int
aud_keyring_add(struct aud_keyring *kr, EVP_PKEY *pk, uint64_t tag)
{
	uint8_t raw[AUD_ED25519_LEN];
	int r;

	if ((r = aud_key_raw(pk, raw)) != 0) {
		return r;
	}
	if (aud_keyring_find(kr, raw) >= 0) {
		return 0;
	}
	if ((r = keyring_reserve(kr, 1)) != 0) {
		return r;
	}
	if (EVP_PKEY_up_ref(pk) != 1) {
		return AUD_ERR_CRYPTO;
	}
	kr->pk[kr->n] = pk;
	memcpy(kr->raw[kr->n], raw, AUD_ED25519_LEN);
	kr->tag[kr->n] = tag;
	kr->n++;
	return 0;
}

EVP_PKEY *
aud_keyring_get(const struct aud_keyring *kr, size_t i, uint64_t *tag)
{
	if (tag != NULL) {
		*tag = i < kr->n ? kr->tag[i] : 0;
	}
	return i < kr->n ? kr->pk[i] : NULL;
}

#define KEYRING_MAX_FILE (64u * 1024)
#define PEM_PUBKEY_BEGIN "-----BEGIN PUBLIC KEY-----"

static int
keyring_load_file(struct aud_keyring *kr, const char *path)
{
	char *buf = NULL;
	const char *p;
	size_t len = 0, blocks = 0, i;
	EVP_PKEY *pk;
	BIO *bio = NULL;
	FILE *f;
	int r = AUD_ERR_KEY;

	if (path == NULL || (f = fopen(path, "re")) == NULL) {
		return AUD_ERR_KEY;
	}
	if ((buf = malloc(KEYRING_MAX_FILE + 1)) == NULL) {
		fclose(f);
		return AUD_ERR_NOMEM;
	}
	len = fread(buf, 1, KEYRING_MAX_FILE + 1, f);
	fclose(f);
	if (len == 0 || len > KEYRING_MAX_FILE) {
		goto out;
	}
	buf[len] = '\0';
	/* Every PUBLIC KEY block must decode; other blocks (a private key) do not count, so a
	 * private key file holds no key. */
	for (p = buf; (p = strstr(p, PEM_PUBKEY_BEGIN)) != NULL; p += strlen(PEM_PUBKEY_BEGIN)) {
		blocks++;
	}
	if (blocks == 0 || (bio = BIO_new_mem_buf(buf, (int)len)) == NULL) {
		goto out;
	}
	for (i = 0; i < blocks; i++) {
		if ((pk = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL)) == NULL) {
			r = AUD_ERR_KEY;
			goto out;
		}
		r = EVP_PKEY_get_id(pk) == EVP_PKEY_ED25519 ? aud_keyring_add(kr, pk, UINT64_MAX)
		                                            : AUD_ERR_KEY;
		EVP_PKEY_free(pk);
		if (r != 0) {
			goto out;
		}
	}
	r = 0;
out:
	ERR_clear_error();
	BIO_free(bio);
	free(buf);
	return r;
}

int
aud_keyring_load(struct aud_keyring **krp, const char *const *paths, size_t n)
{
	struct aud_keyring *kr = NULL;
	size_t i;
	int r;

	*krp = NULL;
	if (paths == NULL || n == 0) {
		return AUD_ERR_INVALID;
	}
	if ((r = aud_keyring_new(&kr)) != 0) {
		return r;
	}
	for (i = 0; i < n; i++) {
		if ((r = keyring_load_file(kr, paths[i])) != 0) {
			aud_keyring_free(kr);
			return r;
		}
	}
	*krp = kr;
	return 0;
}

/* ---- the rotation statement ----------------------------------------------------------- */

int
aud_rotation_sign(EVP_PKEY *old, EVP_PKEY *nw, const char *origin, uint64_t seq, uint64_t time_ns,
                  const uint8_t chain[AUD_HASH_LEN], char **note, size_t *note_len)
{
	uint8_t raw[2][AUD_ED25519_LEN];
	EVP_PKEY *keys[2] = {old, nw};
	char vk[AUD_MAX_VKEY + 1], *b64 = NULL;
	struct aud_buf b = {0};
	size_t blen, i;
	int r;

	*note = NULL;
	*note_len = 0;
	if ((r = aud_key_raw(old, raw[0])) != 0 || (r = aud_key_raw(nw, raw[1])) != 0) {
		return r;
	}
	if (!aud_origin_ok(origin, strlen(origin)) ||
	    memcmp(raw[0], raw[1], AUD_ED25519_LEN) == 0) {
		return AUD_ERR_INVALID;
	}
	if ((r = aud_b64_encode(chain, AUD_HASH_LEN, &b64, &blen)) != 0) {
		return r;
	}
	aud_buf_puts(&b, origin);
	aud_buf_printf(&b, "\n" ROT_MAGIC "seq %llu\ntime %llu\nchain ", (unsigned long long)seq,
	               (unsigned long long)time_ns);
	aud_buf_put(&b, b64, blen);
	for (i = 0; i < 2; i++) {
		if ((r = vkey_format(origin, raw[i], vk)) != 0) {
			goto out;
		}
		aud_buf_puts(&b, i == 0 ? "\nold " : "\nnew ");
		aud_buf_puts(&b, vk);
	}
	r = aud_note_finish(&b, keys, 2, origin, note, note_len);
out:
	free(b64);
	aud_buf_free(&b);
	return r;
}

int
aud_rotation_build(EVP_PKEY *old, EVP_PKEY *nw, const char *origin, uint64_t seq, uint64_t time_ns,
                   const uint8_t chain[AUD_HASH_LEN], char **payload, size_t *payload_len,
                   char **event_json, size_t *event_len)
{
	struct aud_event *ev = NULL;
	uint8_t oraw[AUD_ED25519_LEN], nraw[AUD_ED25519_LEN];
	char ov[AUD_MAX_VKEY + 1], nv[AUD_MAX_VKEY + 1], *note = NULL;
	size_t nlen;
	int r;

	*payload = *event_json = NULL;
	*payload_len = *event_len = 0;
	if ((r = aud_rotation_sign(old, nw, origin, seq, time_ns, chain, &note, &nlen)) != 0 ||
	    (r = aud_b64_encode((const uint8_t *)note, nlen, payload, payload_len)) != 0 ||
	    (r = aud_key_raw(old, oraw)) != 0 || (r = aud_key_raw(nw, nraw)) != 0 ||
	    (r = vkey_format(origin, oraw, ov)) != 0 || (r = vkey_format(origin, nraw, nv)) != 0) {
		goto out;
	}
	/* The audit event a SIEM sees (the K record itself is a signed statement, not sent):
	 * the keys are public, so naming them in full lets anyone match a .pub file. */
	if ((r = aud_event_new(&ev, "audit-key", "rotate")) != 0 ||
	    (r = aud_event_set_time(ev, time_ns)) != 0 ||
	    (r = aud_event_set_initiator(ev, "hsmgate", "hsmgate", AUD_INITIATOR_SYSTEM,
	                                 AUD_CRED_NONE, NULL)) != 0 ||
	    (r = aud_event_set_target(ev, origin, "audit-log", AUD_TARGET_AUDIT)) != 0 ||
	    (r = aud_event_set_outcome(ev, AUD_OUTCOME_SUCCESS)) != 0 ||
	    (r = aud_event_set_key_id(ev, nv)) != 0 ||
	    (r = aud_event_add_info_u64(ev, "rotationSeq", seq)) != 0 ||
	    (r = aud_event_add_info_str(ev, "oldKey", ov)) != 0 ||
	    (r = aud_event_encode(ev, event_json, event_len)) != 0) {
		goto out;
	}
	r = 0;
out:
	if (r != 0) {
		free(*payload);
		*payload = NULL;
		*payload_len = 0;
	}
	aud_event_free(ev);
	free(note);
	return r;
}

static int
cur_field(struct aud_cur *c, const char *name, const char **s, size_t *n, size_t cap)
{
	if (aud_cur_lit(c, name) != 0 || aud_cur_until(c, '\n', s, n, cap) != 0) {
		return AUD_ERR_MALFORMED;
	}
	return 0;
}

int
aud_rotation_parse_note(const char *note, size_t len, struct aud_rotation_view *rv)
{
	struct aud_cur c;
	const char *s;
	size_t n, i;
	uint8_t sig[4 + 64], id[4];

	memset(rv, 0, sizeof(*rv));
	if (note == NULL || len > AUD_MAX_NOTE) {
		return AUD_ERR_MALFORMED;
	}
	aud_cur_init(&c, note, len);
	if (aud_cur_until(&c, '\n', &s, &n, AUD_MAX_ORIGIN) != 0 || !aud_origin_ok(s, n)) {
		goto fail;
	}
	memcpy(rv->origin, s, n);
	if (aud_cur_lit(&c, ROT_MAGIC) != 0 || aud_cur_lit(&c, "seq ") != 0 ||
	    aud_cur_u64(&c, &rv->seq) != 0 || aud_cur_lit(&c, "\ntime ") != 0 ||
	    aud_cur_u64(&c, &rv->time_ns) != 0 || aud_cur_lit(&c, "\nchain ") != 0 ||
	    aud_cur_b64_line(&c, rv->chain, AUD_HASH_LEN) != 0 ||
	    cur_field(&c, "old ", &s, &n, AUD_MAX_VKEY) != 0 ||
	    vkey_parse(s, n, rv->origin, rv->old_key) != 0) {
		goto fail;
	}
	memcpy(rv->old_vkey, s, n);
	if (cur_field(&c, "new ", &s, &n, AUD_MAX_VKEY) != 0 ||
	    vkey_parse(s, n, rv->origin, rv->new_key) != 0) {
		goto fail;
	}
	memcpy(rv->new_vkey, s, n);
	rv->body_len = len - c.len;
	if (aud_cur_lit(&c, "\n") != 0) {
		goto fail;
	}
	/* Exactly two signature lines: the old key's, then the new key's. */
	for (i = 0; i < 2; i++) {
		if (aud_cur_lit(&c, AUD_SIG_DASH) != 0 ||
		    aud_cur_until(&c, ' ', &s, &n, AUD_MAX_ORIGIN) != 0 ||
		    n != strlen(rv->origin) || memcmp(s, rv->origin, n) != 0 ||
		    aud_cur_b64_line(&c, sig, sizeof(sig)) != 0) {
			goto fail;
		}
		aud_key_id_raw(rv->origin, i == 0 ? rv->old_key : rv->new_key, id);
		if (memcmp(sig, id, 4) != 0) {
			goto fail;
		}
		memcpy(i == 0 ? rv->old_sig : rv->new_sig, sig + 4, 64);
	}
	if (aud_cur_end(&c) != 0) {
		goto fail;
	}
	return 0;
fail:
	memset(rv, 0, sizeof(*rv));
	return AUD_ERR_MALFORMED;
}

/* 0 if both signatures verify; else AUD_ERR_SIGNATURE and *which: 0 old, 1 new. */
static int
rotation_sigs(const char *note, const struct aud_rotation_view *rv, int *which)
{
	int r;

	*which = 0;
	if ((r = ed_verify(rv->old_key, note, rv->body_len, rv->old_sig)) != 0) {
		return r;
	}
	*which = 1;
	return ed_verify(rv->new_key, note, rv->body_len, rv->new_sig);
}

/* Decodes and parses a K record's statement; *note malloc'd on success. */
static int
rotation_load(const struct aud_record_view *rec, char **note, size_t *len,
              struct aud_rotation_view *rv)
{
	int r;

	memset(rv, 0, sizeof(*rv));
	if ((r = aud_checkpoint_decode_payload(rec->payload, rec->payload_len, note, len)) != 0) {
		return r;
	}
	if ((r = aud_rotation_parse_note(*note, *len, rv)) != 0) {
		free(*note);
		*note = NULL;
	}
	return r;
}

/* NULL if the statement was made for this record; else what differs. */
static const char *
rotation_misplaced(const struct aud_rotation_view *rv, const struct aud_record_view *rec,
                   const uint8_t chain_before[AUD_HASH_LEN], const char *origin)
{
	if (origin[0] != '\0' && strcmp(origin, rv->origin) != 0) {
		return "names another log origin";
	}
	if (rv->seq != rec->seq) {
		return "names another seq";
	}
	if (rv->time_ns != rec->time_ns) {
		return "names another time";
	}
	if (memcmp(rv->chain, chain_before, AUD_HASH_LEN) != 0) {
		return "names another chain head (it was made for another place or log)";
	}
	return NULL;
}

/* ---- the writer's key history --------------------------------------------------------- */

struct aud_keyhist {
	EVP_PKEY *force;    /* the key in force; NULL until a rotation or the end names it */
	char *pending;      /* the last checkpoint note while the key is not known */
	size_t pending_len; /* 0: none */
	struct aud_keyring *retired;
};

int
aud_keyhist_new(struct aud_keyhist **khp)
{
	struct aud_keyhist *kh;

	*khp = NULL;
	if ((kh = calloc(1, sizeof(*kh))) == NULL) {
		return AUD_ERR_NOMEM;
	}
	if ((kh->pending = malloc(AUD_MAX_NOTE)) == NULL || aud_keyring_new(&kh->retired) != 0) {
		aud_keyhist_free(kh);
		return AUD_ERR_NOMEM;
	}
	*khp = kh;
	return 0;
}

void
aud_keyhist_free(struct aud_keyhist *kh)
{
	if (kh == NULL) {
		return;
	}
	EVP_PKEY_free(kh->force);
	free(kh->pending);
	aud_keyring_free(kh->retired);
	free(kh);
}

static int
as_tamper(int r)
{
	return r == AUD_ERR_SIGNATURE || r == AUD_ERR_MALFORMED ? AUD_ERR_TAMPER : r;
}

int
aud_keyhist_checkpoint(struct aud_keyhist *kh, const char *note, size_t len)
{
	struct aud_checkpoint_view cp;

	if (kh->force != NULL) {
		return as_tamper(aud_checkpoint_check(note, len, kh->force, &cp));
	}
	/* Not known yet (a rotation later names it, or it is the writer's own): checking the
	 * latest note is enough, as its prev link commits to every earlier one. */
	if (len == 0 || len > AUD_MAX_NOTE) {
		return AUD_ERR_TAMPER;
	}
	memcpy(kh->pending, note, len);
	kh->pending_len = len;
	return 0;
}

int
aud_keyhist_rotation(struct aud_keyhist *kh, const char *origin, const struct aud_record_view *rec,
                     const uint8_t chain_before[AUD_HASH_LEN])
{
	struct aud_rotation_view rv;
	struct aud_checkpoint_view cp;
	EVP_PKEY *old = NULL, *nw = NULL;
	uint8_t raw[AUD_ED25519_LEN];
	char *note = NULL;
	size_t len;
	int which, r;

	if ((r = rotation_load(rec, &note, &len, &rv)) != 0) {
		return as_tamper(r);
	}
	if (rotation_misplaced(&rv, rec, chain_before, origin) != NULL ||
	    memcmp(rv.old_key, rv.new_key, AUD_ED25519_LEN) == 0 ||
	    aud_keyring_find(kh->retired, rv.new_key) >= 0) {
		r = AUD_ERR_TAMPER;
		goto out;
	}
	if ((r = rotation_sigs(note, &rv, &which)) != 0) {
		r = as_tamper(r);
		goto out;
	}
	if (kh->force != NULL) {
		if ((r = aud_key_raw(kh->force, raw)) != 0) {
			goto out;
		}
		if (memcmp(raw, rv.old_key, AUD_ED25519_LEN) != 0) {
			r = AUD_ERR_TAMPER; /* not signed by the key in force */
			goto out;
		}
		old = kh->force;
		kh->force = NULL; /* transferred */
	} else {
		/* The first rotation names the key the log began with: the checkpoints so far
		 * must be its. */
		if ((r = key_from_raw(rv.old_key, &old)) != 0) {
			goto out;
		}
		if (kh->pending_len > 0 &&
		    (r = as_tamper(aud_checkpoint_check(kh->pending, kh->pending_len, old, &cp))) !=
		            0) {
			goto out;
		}
		kh->pending_len = 0;
	}
	if ((r = key_from_raw(rv.new_key, &nw)) != 0 ||
	    (r = aud_keyring_add(kh->retired, old, rec->seq)) != 0) {
		goto out;
	}
	kh->force = nw;
	nw = NULL; /* transferred */
	r = 0;
out:
	EVP_PKEY_free(old);
	EVP_PKEY_free(nw);
	free(note);
	return r;
}

/* 1 if a signature line of the note names this key id. */
static int
note_names_key(const char *note, size_t len, const char *origin, const uint8_t id[4])
{
	const char *p = memmem(note, len, "\n\n", 2), *name;
	struct aud_cur c;
	uint8_t sig[4 + 64];
	size_t nlen;

	if (p == NULL) {
		return 0;
	}
	aud_cur_init(&c, p + 2, len - (size_t)(p + 2 - note));
	while (aud_cur_lit(&c, AUD_SIG_DASH) == 0 &&
	       aud_cur_until(&c, ' ', &name, &nlen, AUD_MAX_ORIGIN) == 0 &&
	       aud_cur_b64_line(&c, sig, sizeof(sig)) == 0) {
		if (nlen == strlen(origin) && memcmp(name, origin, nlen) == 0 &&
		    memcmp(sig, id, 4) == 0) {
			return 1;
		}
	}
	return 0;
}

int
aud_keyhist_finish(struct aud_keyhist *kh, EVP_PKEY *own, const char *origin)
{
	struct aud_checkpoint_view cp;
	uint8_t raw[AUD_ED25519_LEN], fraw[AUD_ED25519_LEN], id[4];
	int r;

	if ((r = aud_key_raw(own, raw)) != 0) {
		return r;
	}
	if (kh->force != NULL) {
		if ((r = aud_key_raw(kh->force, fraw)) != 0) {
			return r;
		}
		/* The last rotation named another key (this one is unannounced or retired). */
		return memcmp(raw, fraw, AUD_ED25519_LEN) == 0 ? 0 : AUD_ERR_KEY_NOT_CURRENT;
	}
	if (kh->pending_len > 0) {
		r = aud_checkpoint_check(kh->pending, kh->pending_len, own, &cp);
		if (r == AUD_ERR_SIGNATURE) {
			/* Another key signed the log and no rotation announced ours; but a note
			 * that claims our key id and does not verify is damage. */
			aud_key_id_raw(origin, raw, id);
			return note_names_key(kh->pending, kh->pending_len, origin, id)
			               ? AUD_ERR_TAMPER
			               : AUD_ERR_KEY_NOT_CURRENT;
		}
		if ((r = as_tamper(r)) != 0) {
			return r;
		}
		kh->pending_len = 0;
	}
	if (EVP_PKEY_up_ref(own) != 1) {
		return AUD_ERR_CRYPTO;
	}
	kh->force = own;
	return 0;
}

int
aud_keyhist_rotate_check(struct aud_keyhist *kh, EVP_PKEY *nw)
{
	uint8_t raw[AUD_ED25519_LEN], fraw[AUD_ED25519_LEN];
	int r;

	if ((r = aud_key_raw(nw, raw)) != 0 || (r = aud_key_raw(kh->force, fraw)) != 0) {
		return r;
	}
	/* A retired key stays retired: it may be the reason for the rotation. */
	if (memcmp(raw, fraw, AUD_ED25519_LEN) == 0 || aud_keyring_find(kh->retired, raw) >= 0) {
		return AUD_ERR_INVALID;
	}
	return keyring_reserve(kh->retired, 1);
}

void
aud_keyhist_rotated(struct aud_keyhist *kh, EVP_PKEY *nw)
{
	/* aud_keyhist_rotate_check() made room: adding cannot fail but for up_ref. */
	if (aud_keyring_add(kh->retired, kh->force, 0) != 0 || EVP_PKEY_up_ref(nw) != 1) {
		return;
	}
	EVP_PKEY_free(kh->force);
	kh->force = nw;
}

/* ---- the verifier's key windows ------------------------------------------------------- */

struct aud_keywin {
	const struct aud_keyring *anchors;
	struct aud_keyring *retired; /* tag: the seq of the rotation that retired the key */
	EVP_PKEY *force;
	uint8_t raw[AUD_ED25519_LEN];
	int trusted;    /* an anchor, or reached by rotations verified from one */
	uint64_t since; /* the rotation that put it in force; UINT64_MAX: an anchor */
	uint64_t rotations;
	char origin[AUD_MAX_ORIGIN + 1];
};

int
aud_keywin_new(struct aud_keywin **kwp, const struct aud_keyring *anchors)
{
	struct aud_keywin *kw;

	*kwp = NULL;
	if ((kw = calloc(1, sizeof(*kw))) == NULL) {
		return AUD_ERR_NOMEM;
	}
	if (aud_keyring_new(&kw->retired) != 0) {
		free(kw);
		return AUD_ERR_NOMEM;
	}
	kw->anchors = anchors;
	kw->since = UINT64_MAX;
	*kwp = kw;
	return 0;
}

void
aud_keywin_free(struct aud_keywin *kw)
{
	if (kw == NULL) {
		return;
	}
	aud_keyring_free(kw->retired);
	EVP_PKEY_free(kw->force);
	free(kw);
}

uint64_t
aud_keywin_rotations(const struct aud_keywin *kw)
{
	return kw->rotations;
}

void
aud_keywin_vkey(const struct aud_keywin *kw, const char *origin, char out[AUD_MAX_VKEY + 1])
{
	out[0] = '\0';
	if (kw->force != NULL &&
	    vkey_format(origin != NULL && origin[0] != '\0' ? origin : kw->origin, kw->raw, out) !=
	            0) {
		out[0] = '\0';
	}
}

static int
set_force(struct aud_keywin *kw, EVP_PKEY *pk, int trusted, uint64_t since)
{
	int r;

	if (EVP_PKEY_up_ref(pk) != 1) {
		return AUD_ERR_CRYPTO;
	}
	EVP_PKEY_free(kw->force);
	kw->force = pk;
	kw->trusted = trusted;
	kw->since = since;
	if ((r = aud_key_raw(pk, kw->raw)) != 0) {
		return r;
	}
	return 0;
}

static int kw_fail(enum aud_damage *d, enum aud_damage kind, char *detail, size_t dsz,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int
kw_fail(enum aud_damage *d, enum aud_damage kind, char *detail, size_t dsz, const char *fmt, ...)
{
	va_list ap;

	*d = kind;
	va_start(ap, fmt);
	vsnprintf(detail, dsz, fmt, ap);
	va_end(ap);
	return AUD_ERR_VERIFY;
}

/* A key of `kr` (other than the one in force) that verifies the note: its index, or -1. */
static long
signed_by(const struct aud_keyring *kr, const uint8_t *skip, const char *note, size_t len)
{
	struct aud_checkpoint_view cp;
	size_t i;

	for (i = 0; i < aud_keyring_count(kr); i++) {
		if ((skip == NULL || memcmp(kr->raw[i], skip, AUD_ED25519_LEN) != 0) &&
		    aud_checkpoint_check(note, len, kr->pk[i], &cp) == 0) {
			return (long)i;
		}
	}
	ERR_clear_error();
	return -1;
}

int
aud_keywin_note(struct aud_keywin *kw, const char *note, size_t len, uint64_t seq,
                enum aud_damage *d, char *detail, size_t dsz)
{
	struct aud_checkpoint_view cp;
	char fid[9], kid[9];
	long i;
	int r;

	*d = AUD_DAMAGE_NONE;
	detail[0] = '\0';
	if ((r = aud_checkpoint_parse_note(note, len, &cp)) != 0) {
		return r;
	}
	if (kw->origin[0] == '\0') {
		memcpy(kw->origin, cp.origin, sizeof(kw->origin));
	}
	if (kw->force == NULL) {
		/* The first signed statement checked picks the trust anchor in force. */
		if ((i = signed_by(kw->anchors, NULL, note, len)) >= 0) {
			return set_force(kw, kw->anchors->pk[i], 1, UINT64_MAX);
		}
		return kw_fail(d, AUD_DAMAGE_SIGNATURE, detail, dsz,
		               "checkpoint signature does not verify with the given key%s",
		               aud_keyring_count(kw->anchors) > 1 ? "s" : "");
	}
	key_hex(cp.origin, kw->raw, fid);
	r = aud_checkpoint_check(note, len, kw->force, &cp);
	if (r == 0 && kw->trusted) {
		return 0;
	}
	if (r == 0) {
		return kw_fail(
		        d, AUD_DAMAGE_SIGNATURE, detail, dsz,
		        "checkpoint is signed by key %s, which only the rotation at seq %llu "
		        "names and that rotation could not be checked (before --from, or "
		        "signed by a key not given): give its public key with --pubkey",
		        fid, (unsigned long long)kw->since);
	}
	if (r != AUD_ERR_SIGNATURE) {
		return r;
	}
	ERR_clear_error();
	if ((i = signed_by(kw->retired, NULL, note, len)) >= 0) {
		key_hex(cp.origin, kw->retired->raw[i], kid);
		return kw_fail(d, AUD_DAMAGE_KEY_WINDOW, detail, dsz,
		               "checkpoint at seq %llu is signed by key %s, which the rotation at "
		               "seq %llu retired; the key in force is %s",
		               (unsigned long long)seq, kid,
		               (unsigned long long)kw->retired->tag[i], fid);
	}
	if ((i = signed_by(kw->anchors, kw->raw, note, len)) >= 0) {
		key_hex(cp.origin, kw->anchors->raw[i], kid);
		return kw_fail(d, AUD_DAMAGE_KEY_WINDOW, detail, dsz,
		               "checkpoint at seq %llu is signed by key %s, which is not in force "
		               "there; the key in force is %s",
		               (unsigned long long)seq, kid, fid);
	}
	return kw_fail(d, AUD_DAMAGE_SIGNATURE, detail, dsz,
	               "checkpoint signature does not verify with the key in force (%s)", fid);
}

/* The checks of a rotation against the window; 0 if it verifies, else *d and detail. */
static int
rotation_judge(struct aud_keywin *kw, const struct aud_rotation_view *rv, const char *note,
               const struct aud_record_view *rec, const uint8_t chain_before[AUD_HASH_LEN],
               const char *origin, enum aud_damage *d, char *detail, size_t dsz)
{
	const char *why;
	char oid[9], nid[9], fid[9];
	long i;
	int which, r;

	key_hex(rv->origin, rv->old_key, oid);
	key_hex(rv->origin, rv->new_key, nid);
	if ((why = rotation_misplaced(rv, rec, chain_before, origin)) != NULL) {
		return kw_fail(d, AUD_DAMAGE_CHECKPOINT, detail, dsz, "rotation statement %s", why);
	}
	if (kw->force == NULL && (i = aud_keyring_find(kw->anchors, rv->old_key)) >= 0 &&
	    (r = set_force(kw, kw->anchors->pk[i], 1, UINT64_MAX)) != 0) {
		return r;
	}
	if (kw->force == NULL) {
		return kw_fail(d, AUD_DAMAGE_SIGNATURE, detail, dsz,
		               "rotation is signed by key %s, which is not a given key", oid);
	}
	key_hex(rv->origin, kw->raw, fid);
	if (memcmp(kw->raw, rv->old_key, AUD_ED25519_LEN) != 0) {
		if ((i = aud_keyring_find(kw->retired, rv->old_key)) >= 0) {
			return kw_fail(
			        d, AUD_DAMAGE_KEY_WINDOW, detail, dsz,
			        "rotation is signed by key %s, which the rotation at seq %llu "
			        "retired; the key in force is %s",
			        oid, (unsigned long long)kw->retired->tag[i], fid);
		}
		return kw_fail(d, AUD_DAMAGE_SIGNATURE, detail, dsz,
		               "rotation is signed by key %s, not by the key in force (%s)", oid,
		               fid);
	}
	if (memcmp(rv->new_key, rv->old_key, AUD_ED25519_LEN) == 0) {
		return kw_fail(d, AUD_DAMAGE_CHECKPOINT, detail, dsz,
		               "rotation names the key in force (%s) as its new key", fid);
	}
	if ((i = aud_keyring_find(kw->retired, rv->new_key)) >= 0) {
		return kw_fail(
		        d, AUD_DAMAGE_KEY_WINDOW, detail, dsz,
		        "rotation brings back key %s, which the rotation at seq %llu retired", nid,
		        (unsigned long long)kw->retired->tag[i]);
	}
	if ((r = rotation_sigs(note, rv, &which)) == AUD_ERR_SIGNATURE) {
		return which == 0 ? kw_fail(d, AUD_DAMAGE_SIGNATURE, detail, dsz,
		                            "rotation signature by the key in force (%s) does not "
		                            "verify",
		                            fid)
		                  : kw_fail(d, AUD_DAMAGE_SIGNATURE, detail, dsz,
		                            "rotation signature by the new key %s (proof of "
		                            "possession) does not verify",
		                            nid);
	}
	if (r != 0) {
		return r;
	}
	if (!kw->trusted) {
		return kw_fail(
		        d, AUD_DAMAGE_SIGNATURE, detail, dsz,
		        "rotation is signed by key %s, which only the unverified rotation at "
		        "seq %llu names: give its public key with --pubkey",
		        fid, (unsigned long long)kw->since);
	}
	return 0;
}

int
aud_keywin_rotation(struct aud_keywin *kw, const struct aud_record_view *rec,
                    const uint8_t chain_before[AUD_HASH_LEN], char origin[AUD_MAX_ORIGIN + 1],
                    int strict, enum aud_damage *d, char *detail, size_t dsz)
{
	struct aud_rotation_view rv;
	EVP_PKEY *nw = NULL;
	char *note = NULL;
	size_t len;
	int r, verified;

	*d = AUD_DAMAGE_NONE;
	detail[0] = '\0';
	r = rotation_load(rec, &note, &len, &rv);
	if (r == AUD_ERR_MALFORMED) {
		/* Before --from nothing can be learnt from it; the next checkpoint decides. */
		return strict ? kw_fail(d, AUD_DAMAGE_MODIFIED, detail, dsz,
		                        "rotation statement does not parse")
		              : 0;
	}
	if (r != 0) {
		return r;
	}
	if (origin[0] == '\0') {
		memcpy(origin, rv.origin, AUD_MAX_ORIGIN + 1);
	}
	if (kw->origin[0] == '\0') {
		memcpy(kw->origin, rv.origin, sizeof(kw->origin));
	}
	r = rotation_judge(kw, &rv, note, rec, chain_before, origin, d, detail, dsz);
	if (r != 0 && (r != AUD_ERR_VERIFY || strict)) {
		goto out;
	}
	/* Verified (or, before --from, followed): the window moves. A followed rotation's new
	 * key is trusted only if it is itself an anchor. */
	verified = r == 0;
	*d = AUD_DAMAGE_NONE;
	detail[0] = '\0';
	if ((r = key_from_raw(rv.new_key, &nw)) != 0 ||
	    (kw->force != NULL && (r = aud_keyring_add(kw->retired, kw->force, rec->seq)) != 0) ||
	    (r = set_force(kw, nw, verified || aud_keyring_find(kw->anchors, rv.new_key) >= 0,
	                   rec->seq)) != 0) {
		goto out;
	}
	kw->rotations++;
	r = 0;
out:
	EVP_PKEY_free(nw);
	free(note);
	return r;
}
