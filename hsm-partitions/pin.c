/*
 * hsm-partitions/pin.c — PIN hashes: PBKDF2-HMAC-SHA256, a random 16-byte salt per hash,
 * PART_PIN_ITER (200000) iterations, 32-byte output.
 *
 * Why so many iterations: PINs are short and chosen by people, so the hash is the only
 * thing standing between a stolen store and the PIN. 200000 iterations of HMAC-SHA256 cost
 * roughly 50-100 ms of one core per login, which a login can afford and which makes an
 * offline search of a 6-digit PIN space take hours per PIN rather than seconds; OWASP's
 * 2023 guidance for PBKDF2-HMAC-SHA256 is 600000, which we trade down because every
 * C_Login of every application pays it inside the worker's single thread. Online guessing
 * is bounded separately by the retry counter (PART_PIN_TRIES). The iteration count is
 * stored with each hash, so it can be raised without invalidating existing PINs.
 * A PIN is never logged or stored; the derived hash is wiped after each comparison.
 */
#include "hsm-partitions/part_int.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

static int
derive(const uint8_t *pin, size_t len, const uint8_t *salt, uint32_t iter, uint8_t *out)
{
	static const uint8_t empty[1];

	if (iter == 0 || iter > INT32_MAX || len > PART_PIN_MAX) {
		return PART_ERR_INVALID;
	}
	if (PKCS5_PBKDF2_HMAC((const char *)(len != 0 ? pin : empty), (int)len, salt, PART_PIN_SALT,
	                      (int)iter, EVP_sha256(), PART_PIN_HASH, out) != 1) {
		return PART_ERR_CRYPTO;
	}
	return 0;
}

int
part_pin_hash(const uint8_t *pin, size_t len, uint32_t iter, struct part_pin *out)
{
	struct part_pin p;
	int r;

	memset(out, 0, sizeof(*out));
	memset(&p, 0, sizeof(p));
	if (RAND_bytes(p.salt, sizeof(p.salt)) != 1) {
		return PART_ERR_CRYPTO;
	}
	if ((r = derive(pin, len, p.salt, iter, p.hash)) != 0) {
		OPENSSL_cleanse(&p, sizeof(p));
		return r;
	}
	p.set = 1;
	p.iter = iter;
	*out = p;
	OPENSSL_cleanse(&p, sizeof(p));
	return 0;
}

int
part_pin_check(const struct part_pin *p, const uint8_t *pin, size_t len)
{
	uint8_t dk[PART_PIN_HASH];
	int r;

	if (!p->set) {
		return 0;
	}
	if (len > PART_PIN_MAX) {
		/* Cannot have been set: PINs are refused outside the range when set. */
		return 0;
	}
	if ((r = derive(pin, len, p->salt, p->iter, dk)) != 0) {
		OPENSSL_cleanse(dk, sizeof(dk));
		return r;
	}
	r = CRYPTO_memcmp(dk, p->hash, sizeof(dk)) == 0;
	OPENSSL_cleanse(dk, sizeof(dk));
	return r;
}
