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
 *
 * The verified-PIN cache (part_pin_cache_*): after a PIN passed the full PBKDF2 check, the
 * token keeps HMAC-SHA256(K, who | salt | hash | PIN) for that user type, K being 32 random
 * bytes made when the worker opens its token; K and the MACs live in OpenSSL's secure heap.
 * A later login with the same PIN matches the MAC (CRYPTO_memcmp) and skips PBKDF2; any
 * other PIN misses and takes the full check, so wrong PINs stay slow and counted. Binding
 * the MAC to the record's salt and hash means a changed record can never match a MAC made
 * for the old one, even if a caller forgot to clear. docs/PKCS11.md ("PINs") says why
 * this is safe; token.c decides when the cache is filled and cleared.
 */
#include "hsm-partitions/part_int.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

/* PBKDF2 derivations made by this process (part_pin_derivations); one thread only. */
static uint64_t derivations;

static int
derive(const uint8_t *pin, size_t len, const uint8_t *salt, uint32_t iter, uint8_t *out)
{
	static const uint8_t empty[1];

	if (iter == 0 || iter > INT32_MAX || len > PART_PIN_MAX) {
		return PART_ERR_INVALID;
	}
	derivations++;
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

uint64_t
part_pin_derivations(void)
{
	return derivations;
}

/* ---- the verified-PIN cache ------------------------------------------------------------- */

#define CACHE_SLOTS 2 /* CKU_SO, CKU_USER */

struct part_pin_cache {
	uint8_t key[PART_PIN_HASH];
	uint8_t mac[CACHE_SLOTS][PART_PIN_HASH];
	int valid[CACHE_SLOTS];
};

/* The slot of a user type, or -1 (CKU_CONTEXT_SPECIFIC and unknown types have none). */
static int
cache_slot(CK_USER_TYPE who)
{
	switch (who) {
	case CKU_SO:
		return 0;
	case CKU_USER:
		return 1;
	default:
		return -1;
	}
}

/* HMAC-SHA256(K, u8 slot | salt | hash | PIN) into mac. */
static int
cache_mac(const struct part_pin_cache *c, int slot, const struct part_pin *p, const uint8_t *pin,
          size_t len, uint8_t mac[PART_PIN_HASH])
{
	uint8_t in[1 + PART_PIN_SALT + PART_PIN_HASH + PART_PIN_MAX];
	size_t n = 0, maclen = 0;
	int ok;

	if (len > PART_PIN_MAX) {
		return PART_ERR_INVALID;
	}
	in[n++] = (uint8_t)slot;
	memcpy(in + n, p->salt, PART_PIN_SALT);
	n += PART_PIN_SALT;
	memcpy(in + n, p->hash, PART_PIN_HASH);
	n += PART_PIN_HASH;
	if (len != 0) {
		memcpy(in + n, pin, len);
		n += len;
	}
	ok = EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, c->key, sizeof(c->key), in, n, mac,
	               PART_PIN_HASH, &maclen) != NULL &&
	     maclen == PART_PIN_HASH;
	OPENSSL_cleanse(in, sizeof(in));
	return ok ? 0 : PART_ERR_CRYPTO;
}

int
part_pin_cache_new(struct part_pin_cache **out)
{
	struct part_pin_cache *c;

	*out = NULL;
	if ((c = OPENSSL_secure_zalloc(sizeof(*c))) == NULL) {
		return PART_ERR_NOMEM;
	}
	if (RAND_priv_bytes(c->key, sizeof(c->key)) != 1) {
		OPENSSL_secure_clear_free(c, sizeof(*c));
		return PART_ERR_CRYPTO;
	}
	*out = c;
	return 0;
}

void
part_pin_cache_free(struct part_pin_cache *c)
{
	if (c != NULL) {
		OPENSSL_secure_clear_free(c, sizeof(*c));
	}
}

void
part_pin_cache_clear(struct part_pin_cache *c, CK_USER_TYPE who)
{
	int slot = cache_slot(who);

	if (c == NULL || slot < 0) {
		return;
	}
	OPENSSL_cleanse(c->mac[slot], sizeof(c->mac[slot]));
	c->valid[slot] = 0;
}

void
part_pin_cache_set(struct part_pin_cache *c, CK_USER_TYPE who, const struct part_pin *p,
                   const uint8_t *pin, size_t len)
{
	int slot = cache_slot(who);

	if (c == NULL || slot < 0) {
		return;
	}
	/* A MAC that cannot be made leaves the slot empty: the next login is only slower. */
	c->valid[slot] = p->set && cache_mac(c, slot, p, pin, len, c->mac[slot]) == 0;
	if (!c->valid[slot]) {
		OPENSSL_cleanse(c->mac[slot], sizeof(c->mac[slot]));
	}
}

int
part_pin_cache_match(const struct part_pin_cache *c, CK_USER_TYPE who, const struct part_pin *p,
                     const uint8_t *pin, size_t len)
{
	uint8_t mac[PART_PIN_HASH];
	int slot = cache_slot(who), r;

	if (c == NULL || slot < 0 || !c->valid[slot] || !p->set) {
		return 0;
	}
	r = cache_mac(c, slot, p, pin, len, mac) == 0 &&
	    CRYPTO_memcmp(mac, c->mac[slot], sizeof(mac)) == 0;
	OPENSSL_cleanse(mac, sizeof(mac));
	return r;
}
