/*
 * hsm-partitions/secmem.c — the worker's secure heap: OpenSSL's CRYPTO_secure_malloc arena,
 * where the soft token keeps its key material.
 *
 * What lives there (OPENSSL_secure_malloc, freed with OPENSSL_secure_clear_free): the master
 * key and the sealing key derived from it (masterkey.c), the verified-PIN cache (pin.c),
 * the secret attribute values of objects (CKA_VALUE of secret and private keys, the
 * private RSA parts: object.c), the engine's raw secrets and operation keys and the private
 * halves it builds into EVP_PKEYs (crypto/key.c, crypto/op.c), and the plaintext of an
 * unsealed record while it is being decrypted (seal.c). OpenSSL's arena is one mmap with
 * guard pages on both sides, mlock()ed (MLOCK_ONFAULT where the kernel has it) and
 * MADV_DONTDUMP, so key pages are never swapped and never reach a core file, and a buffer
 * overrun elsewhere in the heap cannot walk into them.
 *
 * Size: a power of two (OpenSSL requires one), the largest that fits in the process's
 * RLIMIT_MEMLOCK less PART_SECMEM_RESERVE, between PART_SECMEM_MIN and PART_SECMEM_MAX.
 * The soft limit is first raised to the hard one (allowed without privilege). The operator's
 * knob is therefore RLIMIT_MEMLOCK (systemd LimitMEMLOCK=, docker --ulimit memlock=): with
 * the common 8 MiB the heap is 4 MiB, which holds the key material of about a thousand
 * RSA-4096 keys in use, two thousand RSA-2048 keys or tens of thousands of AES keys.
 * A full heap refuses the allocation: the call that needed it fails with CKR_HOST_MEMORY
 * rather than put a key outside the heap. Stored objects never need more at start than
 * they took when they were made, so a store always loads into a heap of the same size.
 *
 * Refuse or warn: when OpenSSL cannot make the heap at all (CRYPTO_secure_malloc_init()
 * returns 0: no memory for the mapping, or an OpenSSL built without secure memory), every
 * secure allocation would silently fall back to the ordinary heap, so the worker refuses to
 * start, as an HSM refuses to serve keys from unprotected memory. When the heap exists but
 * could not be locked (returns 2: RLIMIT_MEMLOCK below PART_SECMEM_MIN), the keys are still
 * in their own guarded, non-dumpable, wiped arena, only swappable: the worker starts with a
 * warning on stderr that names the limit to raise. This follows the master key's "where the
 * OS allows" (masterkey.c), and a worker that cannot lock memory is no worse than it was.
 */
#include "hsm-partitions/part_int.h"

#include <stdio.h>
#include <sys/resource.h>

#include <openssl/crypto.h>

/* The OpenSSL minimum allocation unit: one AES-256 key, a P-256 scalar. */
#define SECMEM_MINSIZE 32

size_t
part_secmem_size(uint64_t memlock)
{
	uint64_t fit, size = PART_SECMEM_MIN;

	if (memlock <= PART_SECMEM_RESERVE) {
		return PART_SECMEM_MIN;
	}
	fit = memlock - PART_SECMEM_RESERVE;
	while (size * 2 <= fit && size * 2 <= PART_SECMEM_MAX) {
		size *= 2;
	}
	return (size_t)size;
}

/* RLIMIT_MEMLOCK, with the soft limit raised to the hard one where it was lower. */
static uint64_t
memlock_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_MEMLOCK, &rl) != 0) {
		return 0;
	}
	if (rl.rlim_cur != rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_MEMLOCK, &rl); /* best effort: the old limit still holds */
		(void)getrlimit(RLIMIT_MEMLOCK, &rl);
	}
	return rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : (uint64_t)rl.rlim_cur;
}

int
part_secmem_init(const char *partition, size_t *size)
{
	static size_t made;
	uint64_t limit;
	size_t want;
	int r;

	if (size != NULL) {
		*size = made;
	}
	if (CRYPTO_secure_malloc_initialized()) {
		return 0; /* one heap per process: a second call changes nothing */
	}
	limit = memlock_limit();
	want = part_secmem_size(limit);
	if (partition == NULL) {
		partition = "?";
	}
	r = CRYPTO_secure_malloc_init(want, SECMEM_MINSIZE);
	if (r == 0) {
		fprintf(stderr,
		        "hsmgate-worker: partition %s: cannot create the secure heap of %zu bytes "
		        "for key material: refusing to start\n",
		        partition, want);
		return PART_ERR_NOMEM;
	}
	if (r == 2) {
		fprintf(stderr,
		        "hsmgate-worker: partition %s: warning: the secure heap of %zu bytes could "
		        "not be locked in memory (RLIMIT_MEMLOCK %llu bytes): key material may be "
		        "swapped; raise the limit to at least %llu bytes (LimitMEMLOCK=)\n",
		        partition, want, (unsigned long long)limit,
		        (unsigned long long)(want + PART_SECMEM_RESERVE));
	}
	made = want;
	if (size != NULL) {
		*size = made;
	}
	return 0;
}
