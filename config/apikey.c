/*
 * config/apikey.c — API keys: new random keys, their salted PBKDF2-HMAC-SHA256 hashes as
 * stored in hsmgated.yaml, and the constant-time check of a presented key against one.
 *
 *   stored = "pbkdf2-sha256$" iterations "$" base64(salt) "$" base64(dk)
 *
 * base64 is RFC 4648 section 4 with padding, and must be canonical (we re-encode what we
 * decode and compare), so that one hash has exactly one spelling.
 */
#include "config/cfg_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#define APIKEY_PREFIX "pbkdf2-sha256$"
#define APIKEY_SALT   16
#define APIKEY_RAW    32 /* random bytes in a new key */

/* Decodes the canonical padded base64 in s[len] into out[outsz]; returns the decoded
 * length, or -1 when it is not canonical base64 or does not fit. */
static int
b64_decode(const char *s, size_t len, unsigned char *out, size_t outsz)
{
	unsigned char tmp[CFG_APIKEY_SALT_MAX + 3], check[((CFG_APIKEY_SALT_MAX + 3) / 3) * 4 + 1];
	int n, pad = 0;

	if (len == 0 || len % 4 != 0 || len > sizeof(check) - 1) {
		return -1;
	}
	if (s[len - 1] == '=') {
		pad = s[len - 2] == '=' ? 2 : 1;
	}
	n = EVP_DecodeBlock(tmp, (const unsigned char *)s, (int)len);
	if (n < 0 || n - pad <= 0 || (size_t)(n - pad) > outsz) {
		OPENSSL_cleanse(tmp, sizeof(tmp));
		return -1;
	}
	n -= pad;
	/* EVP_DecodeBlock skips whitespace and accepts non-canonical trailing bits: insist on
	 * the one spelling by encoding back. */
	if (EVP_EncodeBlock(check, tmp, n) != (int)len || memcmp(check, s, len) != 0) {
		OPENSSL_cleanse(tmp, sizeof(tmp));
		return -1;
	}
	memcpy(out, tmp, (size_t)n);
	OPENSSL_cleanse(tmp, sizeof(tmp));
	return n;
}

int
cfg_apikey_parse(const char *stored, unsigned *iter, unsigned char *salt, size_t *saltlen,
                 unsigned char *hash)
{
	const char *p, *d1, *d2;
	unsigned long it = 0;
	int n;

	*iter = 0;
	*saltlen = 0;
	if (stored == NULL || strncmp(stored, APIKEY_PREFIX, strlen(APIKEY_PREFIX)) != 0 ||
	    strlen(stored) >= CFG_APIKEY_HASH_MAX) {
		return CFG_ERR_INVALID;
	}
	p = stored + strlen(APIKEY_PREFIX);
	if ((d1 = strchr(p, '$')) == NULL || (d2 = strchr(d1 + 1, '$')) == NULL ||
	    strchr(d2 + 1, '$') != NULL) {
		return CFG_ERR_INVALID;
	}
	/* Decimal, no sign, no leading zero, bounded: a huge count would make every hello a
	 * denial of service. */
	if (d1 == p || d1 - p > 7 || *p == '0') {
		return CFG_ERR_INVALID;
	}
	for (; p < d1; p++) {
		if (*p < '0' || *p > '9') {
			return CFG_ERR_INVALID;
		}
		it = it * 10 + (unsigned long)(*p - '0');
	}
	if (it > CFG_APIKEY_ITER_MAX) {
		return CFG_ERR_INVALID;
	}
	n = b64_decode(d1 + 1, (size_t)(d2 - d1 - 1), salt, CFG_APIKEY_SALT_MAX);
	if (n < CFG_APIKEY_SALT_MIN) {
		return CFG_ERR_INVALID;
	}
	*saltlen = (size_t)n;
	if (b64_decode(d2 + 1, strlen(d2 + 1), hash, CFG_APIKEY_DK) != CFG_APIKEY_DK) {
		*saltlen = 0;
		return CFG_ERR_INVALID;
	}
	*iter = (unsigned)it;
	return 0;
}

int
cfg_apikey_hash(const char *key, char *out, size_t outsz)
{
	unsigned char salt[APIKEY_SALT], dk[CFG_APIKEY_DK];
	char salt64[((APIKEY_SALT + 2) / 3) * 4 + 1], dk64[((CFG_APIKEY_DK + 2) / 3) * 4 + 1];
	int n, r;

	if (out != NULL && outsz > 0) {
		out[0] = '\0';
	}
	if (key == NULL || key[0] == '\0' || out == NULL) {
		return CFG_ERR_INVALID;
	}
	if (RAND_bytes(salt, sizeof(salt)) != 1 ||
	    PKCS5_PBKDF2_HMAC(key, (int)strlen(key), salt, sizeof(salt), CFG_APIKEY_ITER,
	                      EVP_sha256(), sizeof(dk), dk) != 1) {
		r = CFG_ERR_NOMEM;
		goto out;
	}
	EVP_EncodeBlock((unsigned char *)salt64, salt, sizeof(salt));
	EVP_EncodeBlock((unsigned char *)dk64, dk, sizeof(dk));
	n = snprintf(out, outsz, APIKEY_PREFIX "%u$%s$%s", (unsigned)CFG_APIKEY_ITER, salt64, dk64);
	if (n < 0 || (size_t)n >= outsz) {
		OPENSSL_cleanse(out, outsz);
		out[0] = '\0';
		r = CFG_ERR_NOMEM; /* out[] too small: see CFG_APIKEY_HASH_MAX */
		goto out;
	}
	r = 0;
out:
	OPENSSL_cleanse(dk, sizeof(dk));
	OPENSSL_cleanse(dk64, sizeof(dk64));
	return r;
}

int
cfg_apikey_verify(const char *key, const char *stored)
{
	unsigned char salt[CFG_APIKEY_SALT_MAX], want[CFG_APIKEY_DK], got[CFG_APIKEY_DK];
	size_t saltlen;
	unsigned iter;
	int r;

	if ((r = cfg_apikey_parse(stored, &iter, salt, &saltlen, want)) != 0) {
		goto out;
	}
	if (key == NULL) {
		r = CFG_ERR_INVALID;
		goto out;
	}
	if (PKCS5_PBKDF2_HMAC(key, (int)strlen(key), salt, (int)saltlen, (int)iter, EVP_sha256(),
	                      sizeof(got), got) != 1) {
		r = CFG_ERR_NOMEM;
		goto out;
	}
	r = CRYPTO_memcmp(got, want, sizeof(got)) == 0 ? 1 : 0;
out:
	OPENSSL_cleanse(got, sizeof(got));
	OPENSSL_cleanse(want, sizeof(want));
	return r;
}

int
cfg_apikey_new(char *out, size_t outsz)
{
	unsigned char raw[APIKEY_RAW];
	char b64[((APIKEY_RAW + 2) / 3) * 4 + 1];
	size_t i, n;
	int r;

	/* "hsk_" + 43 base64url characters (32 bytes, unpadded) + NUL */
	if (out == NULL || outsz < 4 + 43 + 1) {
		return CFG_ERR_NOMEM;
	}
	if (RAND_bytes(raw, sizeof(raw)) != 1) {
		r = CFG_ERR_NOMEM;
		goto out;
	}
	EVP_EncodeBlock((unsigned char *)b64, raw, sizeof(raw));
	/* RFC 4648 section 5: base64url, here without the '=' padding. */
	for (n = 0; b64[n] != '\0' && b64[n] != '='; n++) {
		if (b64[n] == '+') {
			b64[n] = '-';
		} else if (b64[n] == '/') {
			b64[n] = '_';
		}
	}
	memcpy(out, "hsk_", 4);
	for (i = 0; i < n; i++) {
		out[4 + i] = b64[i];
	}
	out[4 + n] = '\0';
	r = 0;
out:
	OPENSSL_cleanse(raw, sizeof(raw));
	OPENSSL_cleanse(b64, sizeof(b64));
	return r;
}
