/*
 * audit/checkpoint.c — Ed25519 keys and the signed checkpoint note.
 *
 * A checkpoint is a C2SP signed note (c2sp.org/signed-note, tlog-checkpoint):
 *
 *   <origin>\n<size>\n<base64 root>\nchain <base64>\ntime <unix ns>\nprev <base64>\n
 *   \n
 *   — <origin> <base64(key id[4] || Ed25519 signature[64])>\n
 *
 * The signature covers the body: every byte up to and including the newline after the
 * "prev" line. The key id is SHA-256(name || 0x0A || 0x01 || public key)[:4], 0x01 being
 * signed-note's Ed25519 type. In the log, the note is a 'C' record's payload as base64.
 */
#include "audit/aud_int.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_SIG_LINES 16

/* ---- keys ----------------------------------------------------------------------------- */

static int
write_pem_file(const char *path, EVP_PKEY *pk, int priv)
{
	int fd, r = AUD_ERR_IO;
	FILE *f = NULL;

	/* O_EXCL: never overwrite a signing key by accident. */
	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, priv ? 0600 : 0644)) < 0) {
		return AUD_ERR_IO;
	}
	if ((f = fdopen(fd, "w")) == NULL) {
		close(fd);
		goto out;
	}
	if ((priv ? PEM_write_PrivateKey(f, pk, NULL, NULL, 0, NULL, NULL)
	          : PEM_write_PUBKEY(f, pk)) != 1) {
		r = AUD_ERR_CRYPTO;
		goto out;
	}
	if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
		goto out;
	}
	r = 0;
out:
	if (f != NULL && fclose(f) != 0 && r == 0) {
		r = AUD_ERR_IO;
	}
	return r;
}

int
aud_key_file_private(const char *path, unsigned *mode)
{
	struct stat st;

	*mode = 0;
	if (stat(path, &st) != 0) {
		return AUD_ERR_IO;
	}
	*mode = (unsigned)(st.st_mode & 07777);
	return S_ISREG(st.st_mode) && (st.st_mode & 077) == 0 ? 0 : AUD_ERR_KEY;
}

int
aud_key_generate(const char *prefix)
{
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *pk = NULL;
	char kpath[4096], ppath[4096];
	int r;

	if (prefix == NULL ||
	    (size_t)snprintf(kpath, sizeof(kpath), "%s.key", prefix) >= sizeof(kpath) ||
	    (size_t)snprintf(ppath, sizeof(ppath), "%s.pub", prefix) >= sizeof(ppath)) {
		return AUD_ERR_INVALID;
	}
	if ((ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, NULL)) == NULL ||
	    EVP_PKEY_keygen_init(ctx) != 1 || EVP_PKEY_keygen(ctx, &pk) != 1) {
		r = AUD_ERR_CRYPTO;
		goto out;
	}
	if ((r = write_pem_file(kpath, pk, 1)) != 0) {
		goto out;
	}
	if ((r = write_pem_file(ppath, pk, 0)) != 0) {
		unlink(kpath);
		goto out;
	}
	r = 0;
out:
	EVP_PKEY_free(pk);
	EVP_PKEY_CTX_free(ctx);
	return r;
}

static int
key_load(const char *path, EVP_PKEY **pk, int priv)
{
	FILE *f;

	*pk = NULL;
	if (path == NULL || (f = fopen(path, "re")) == NULL) {
		return AUD_ERR_KEY;
	}
	*pk = priv ? PEM_read_PrivateKey(f, NULL, NULL, NULL)
	           : PEM_read_PUBKEY(f, NULL, NULL, NULL);
	fclose(f);
	if (*pk == NULL || EVP_PKEY_get_id(*pk) != EVP_PKEY_ED25519) {
		EVP_PKEY_free(*pk);
		*pk = NULL;
		return AUD_ERR_KEY;
	}
	return 0;
}

int
aud_key_load_private(const char *path, EVP_PKEY **pk)
{
	return key_load(path, pk, 1);
}

int
aud_key_load_public(const char *path, EVP_PKEY **pk)
{
	return key_load(path, pk, 0);
}

static int
key_id(EVP_PKEY *pk, const char *name, uint8_t id[4])
{
	uint8_t raw[AUD_ED25519_LEN];
	size_t rawlen = sizeof(raw);

	if (EVP_PKEY_get_raw_public_key(pk, raw, &rawlen) != 1 || rawlen != sizeof(raw)) {
		return AUD_ERR_CRYPTO;
	}
	aud_key_id_raw(name, raw, id);
	return 0;
}

/* ---- notes ---------------------------------------------------------------------------- */

int
aud_origin_ok(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || n > AUD_MAX_ORIGIN) {
		return 0;
	}
	for (i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == ':' || c == '/' || c == '-')) {
			return 0;
		}
	}
	return 1;
}

static int
put_b64(struct aud_buf *b, const uint8_t *p, size_t n)
{
	char *s = NULL;
	size_t len;
	int r;

	if ((r = aud_b64_encode(p, n, &s, &len)) != 0) {
		return b->failed = r;
	}
	r = aud_buf_put(b, s, len);
	free(s);
	return r;
}

/* Appends the signature line of `key` over b->data[0, body). */
static int
note_sign_line(struct aud_buf *b, size_t body, EVP_PKEY *key, const char *origin)
{
	EVP_MD_CTX *md = NULL;
	uint8_t sig[4 + 64];
	size_t siglen = 64;
	int r;

	if (b->failed != 0) {
		return b->failed;
	}
	if ((r = key_id(key, origin, sig)) != 0) {
		return r;
	}
	if ((md = EVP_MD_CTX_new()) == NULL || EVP_DigestSignInit(md, NULL, NULL, NULL, key) != 1 ||
	    EVP_DigestSign(md, sig + 4, &siglen, (const uint8_t *)b->data, body) != 1 ||
	    siglen != 64) {
		EVP_MD_CTX_free(md);
		return AUD_ERR_CRYPTO;
	}
	EVP_MD_CTX_free(md);
	aud_buf_puts(b, AUD_SIG_DASH);
	aud_buf_puts(b, origin);
	aud_buf_puts(b, " ");
	put_b64(b, sig, sizeof(sig));
	return aud_buf_puts(b, "\n");
}

int
aud_note_finish(struct aud_buf *b, EVP_PKEY *const *keys, size_t nkeys, const char *origin,
                char **note, size_t *note_len)
{
	size_t body, i;
	int r;

	if ((r = aud_buf_puts(b, "\n")) != 0) {
		return r;
	}
	body = b->len;
	aud_buf_puts(b, "\n");
	for (i = 0; i < nkeys; i++) {
		if ((r = note_sign_line(b, body, keys[i], origin)) != 0) {
			return r;
		}
	}
	if (b->len > AUD_MAX_NOTE) {
		return AUD_ERR_TOO_LARGE;
	}
	*note = b->data;
	*note_len = b->len;
	b->data = NULL; /* transferred */
	b->len = b->cap = 0;
	return 0;
}

int
aud_checkpoint_sign(EVP_PKEY *key, const char *origin, uint64_t size,
                    const uint8_t root[AUD_HASH_LEN], const uint8_t chain[AUD_HASH_LEN],
                    uint64_t time_ns, const uint8_t prev[AUD_HASH_LEN], char **note,
                    size_t *note_len)
{
	struct aud_buf b = {0};
	int r;

	*note = NULL;
	*note_len = 0;
	if (!aud_origin_ok(origin, strlen(origin))) {
		return AUD_ERR_INVALID;
	}
	aud_buf_puts(&b, origin);
	aud_buf_printf(&b, "\n%llu\n", (unsigned long long)size);
	put_b64(&b, root, AUD_HASH_LEN);
	aud_buf_puts(&b, "\nchain ");
	put_b64(&b, chain, AUD_HASH_LEN);
	aud_buf_printf(&b, "\ntime %llu\nprev ", (unsigned long long)time_ns);
	put_b64(&b, prev, AUD_HASH_LEN);
	r = aud_note_finish(&b, &key, 1, origin, note, note_len);
	aud_buf_free(&b);
	return r;
}

int
aud_cur_b64_line(struct aud_cur *c, uint8_t *out, size_t n)
{
	const char *s;
	size_t len, got;
	int r;

	if ((r = aud_cur_until(c, '\n', &s, &len, 4 * ((n + 2) / 3))) != 0 ||
	    (r = aud_b64_decode(s, len, out, n, &got)) != 0) {
		return AUD_ERR_MALFORMED;
	}
	return got == n ? 0 : AUD_ERR_MALFORMED;
}

int
aud_checkpoint_check(const char *note, size_t len, EVP_PKEY *pk, struct aud_checkpoint_view *cp)
{
	EVP_MD_CTX *md = NULL;
	struct aud_cur c;
	const char *s;
	size_t slen, body, nsig = 0;
	uint8_t want_id[4], sig[4 + 64];
	int r, found = 0, good = 0;

	memset(cp, 0, sizeof(*cp));
	if (note == NULL || len > AUD_MAX_NOTE) {
		return AUD_ERR_MALFORMED;
	}
	aud_cur_init(&c, note, len);
	if ((r = aud_cur_until(&c, '\n', &s, &slen, AUD_MAX_ORIGIN)) != 0 ||
	    !aud_origin_ok(s, slen)) {
		r = AUD_ERR_MALFORMED;
		goto out;
	}
	memcpy(cp->origin, s, slen);
	cp->origin[slen] = '\0';
	if ((r = aud_cur_u64(&c, &cp->size)) != 0 || (r = aud_cur_lit(&c, "\n")) != 0 ||
	    (r = aud_cur_b64_line(&c, cp->root, AUD_HASH_LEN)) != 0 ||
	    (r = aud_cur_lit(&c, "chain ")) != 0 ||
	    (r = aud_cur_b64_line(&c, cp->chain, AUD_HASH_LEN)) != 0 ||
	    (r = aud_cur_lit(&c, "time ")) != 0 || (r = aud_cur_u64(&c, &cp->time_ns)) != 0 ||
	    (r = aud_cur_lit(&c, "\n")) != 0 || (r = aud_cur_lit(&c, "prev ")) != 0 ||
	    (r = aud_cur_b64_line(&c, cp->prev, AUD_HASH_LEN)) != 0) {
		r = AUD_ERR_MALFORMED;
		goto out;
	}
	body = len - c.len;
	if ((r = aud_cur_lit(&c, "\n")) != 0) {
		r = AUD_ERR_MALFORMED;
		goto out;
	}
	if (pk != NULL && (r = key_id(pk, cp->origin, want_id)) != 0) {
		goto out;
	}
	/* One or more signature lines; others than ours (witness cosignatures) are ignored
	 * but must be well-formed. */
	while (c.len > 0) {
		const char *name;
		size_t nlen;

		if (++nsig > MAX_SIG_LINES || (r = aud_cur_lit(&c, AUD_SIG_DASH)) != 0 ||
		    (r = aud_cur_until(&c, ' ', &name, &nlen, AUD_MAX_ORIGIN)) != 0 ||
		    !aud_origin_ok(name, nlen) ||
		    (r = aud_cur_b64_line(&c, sig, sizeof(sig))) != 0) {
			r = AUD_ERR_MALFORMED;
			goto out;
		}
		if (pk == NULL || nlen != strlen(cp->origin) ||
		    memcmp(name, cp->origin, nlen) != 0 || memcmp(sig, want_id, 4) != 0) {
			continue;
		}
		found = 1;
		EVP_MD_CTX_free(md);
		if ((md = EVP_MD_CTX_new()) == NULL ||
		    EVP_DigestVerifyInit(md, NULL, NULL, NULL, pk) != 1) {
			r = AUD_ERR_CRYPTO;
			goto out;
		}
		if (EVP_DigestVerify(md, sig + 4, 64, (const uint8_t *)note, body) == 1) {
			good = 1;
		}
	}
	if (nsig == 0) {
		r = AUD_ERR_MALFORMED;
		goto out;
	}
	aud_sha256(note, len, NULL, 0, cp->note_hash);
	r = pk == NULL || (found && good) ? 0 : AUD_ERR_SIGNATURE;
out:
	EVP_MD_CTX_free(md);
	if (r == AUD_ERR_MALFORMED) {
		memset(cp, 0, sizeof(*cp));
	}
	return r;
}

int
aud_checkpoint_parse_note(const char *note, size_t len, struct aud_checkpoint_view *cp)
{
	return aud_checkpoint_check(note, len, NULL, cp);
}

int
aud_checkpoint_verify_note(const char *note, size_t len, const char *pubkey_path,
                           struct aud_checkpoint_view *cp)
{
	EVP_PKEY *pk = NULL;
	int r;

	memset(cp, 0, sizeof(*cp));
	if ((r = aud_key_load_public(pubkey_path, &pk)) != 0) {
		return r;
	}
	r = aud_checkpoint_check(note, len, pk, cp);
	EVP_PKEY_free(pk);
	return r;
}

int
aud_checkpoint_decode_payload(const char *payload, size_t len, char **note, size_t *note_len)
{
	uint8_t *buf;
	size_t n;
	int r;

	*note = NULL;
	*note_len = 0;
	if (len > 4 * ((AUD_MAX_NOTE + 2) / 3)) {
		return AUD_ERR_MALFORMED;
	}
	if ((buf = malloc(AUD_MAX_NOTE + 1)) == NULL) {
		return AUD_ERR_NOMEM;
	}
	if ((r = aud_b64_decode(payload, len, buf, AUD_MAX_NOTE, &n)) != 0) {
		free(buf);
		return AUD_ERR_MALFORMED;
	}
	buf[n] = '\0';
	*note = (char *)buf;
	*note_len = n;
	return 0;
}
