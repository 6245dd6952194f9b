/*
 * hsm-partitions/masterkey.c — the partition master key: where it comes from, and the
 * locked memory it lives in.
 *
 * Until the KYOK issue lands (key parts loaded in a ceremony, Shamir K of N), the master key
 * is 32 random bytes created with the partition — at the first start of its worker or by
 * `hsmctl token init`, whichever opens the store first — in <store>/master.key, mode 0600,
 * owned by the worker's user. part_masterkey_obtain() is the one function that knows this:
 * the KYOK issue replaces its body and nothing else.
 *
 * Key memory: in the worker, OpenSSL's secure heap (secmem.c), which is mlock()ed, guarded
 * and MADV_DONTDUMP, with every other key of the partition. Where no secure heap was made
 * (hsmctl, unit tests), a page of its own from mmap, mlock()ed so it is never swapped, and
 * MADV_DONTDUMP so it never reaches a core file (the worker also sets RLIMIT_CORE 0; this
 * covers a crash before that). mlock may fail where RLIMIT_MEMLOCK is tiny (containers):
 * "where the OS allows" — the key is still wiped, and the failure is not fatal. Freed with
 * OPENSSL_secure_clear_free, or OPENSSL_cleanse before munmap.
 */
#include "hsm-partitions/part_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#define MK_FILE "master.key"

struct part_masterkey {
	uint8_t *key;  /* PART_MASTERKEY_LEN bytes: in the secure heap, or a mapping's start */
	size_t maplen; /* one page; 0 when the key is in the secure heap */
};

static int
mk_alloc(struct part_masterkey **out)
{
	struct part_masterkey *mk;
	long page = sysconf(_SC_PAGESIZE);
	void *p;

	*out = NULL;
	if ((mk = calloc(1, sizeof(*mk))) == NULL) {
		return PART_ERR_NOMEM;
	}
	if (CRYPTO_secure_malloc_initialized()) {
		if ((mk->key = OPENSSL_secure_zalloc(PART_MASTERKEY_LEN)) == NULL) {
			free(mk);
			return PART_ERR_NOMEM;
		}
		*out = mk;
		return 0;
	}
	mk->maplen = page > 0 ? (size_t)page : 4096;
	p = mmap(NULL, mk->maplen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		free(mk);
		return PART_ERR_NOMEM;
	}
	/* Best effort, see the top of the file: neither failure weakens the wipe. */
	(void)mlock(p, mk->maplen);
	(void)madvise(p, mk->maplen, MADV_DONTDUMP);
	mk->key = p;
	*out = mk;
	return 0;
}

void
part_masterkey_free(struct part_masterkey *mk)
{
	if (mk == NULL) {
		return;
	}
	if (mk->maplen == 0) {
		OPENSSL_secure_clear_free(mk->key, PART_MASTERKEY_LEN);
		free(mk);
		return;
	}
	OPENSSL_cleanse(mk->key, mk->maplen);
	(void)munlock(mk->key, mk->maplen);
	(void)munmap(mk->key, mk->maplen);
	free(mk);
}

const uint8_t *
part_masterkey_bytes(const struct part_masterkey *mk)
{
	return mk->key;
}

int
part_masterkey_from_bytes(const uint8_t *k, size_t len, struct part_masterkey **out)
{
	int r;

	*out = NULL;
	if (len != PART_MASTERKEY_LEN) {
		return PART_ERR_INVALID;
	}
	if ((r = mk_alloc(out)) != 0) {
		return r;
	}
	memcpy((*out)->key, k, len);
	return 0;
}

int
part_masterkey_derive(const struct part_masterkey *mk, const char *label,
                      struct part_masterkey **out)
{
	struct part_masterkey *d = NULL;
	EVP_KDF_CTX *kctx = NULL;
	EVP_KDF *kdf = NULL;
	OSSL_PARAM params[4];
	int r;

	*out = NULL;
	if ((r = mk_alloc(&d)) != 0) {
		return r;
	}
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
	params[1] =
	        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, mk->key, PART_MASTERKEY_LEN);
	params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (char *)label,
	                                              strlen(label));
	params[3] = OSSL_PARAM_construct_end();
	if ((kdf = EVP_KDF_fetch(NULL, "HKDF", NULL)) == NULL ||
	    (kctx = EVP_KDF_CTX_new(kdf)) == NULL ||
	    EVP_KDF_derive(kctx, d->key, PART_MASTERKEY_LEN, params) != 1) {
		r = PART_ERR_CRYPTO;
		goto out;
	}
	*out = d;
	d = NULL; /* transferred */
	r = 0;
out:
	EVP_KDF_CTX_free(kctx);
	EVP_KDF_free(kdf);
	part_masterkey_free(d);
	return r;
}

/* Reads an existing key file into `mk`. A file that is not ours, not a regular file,
 * readable by anyone else or not exactly PART_MASTERKEY_LEN bytes is refused: a key
 * someone else could read or replace is not a master key (OpenSSH refuses private keys
 * with loose modes for the same reason). */
static int
mk_read(const char *path, int fd, struct part_masterkey *mk)
{
	struct stat st;
	ssize_t n;

	if (fstat(fd, &st) != 0) {
		fprintf(stderr, "hsmgate-worker: %s: %s\n", path, strerror(errno));
		return PART_ERR_IO;
	}
	if (!S_ISREG(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077) != 0) {
		fprintf(stderr,
		        "hsmgate-worker: %s: refusing a master key that is not a regular file "
		        "of uid %u with mode 0600 (mode %04o, uid %u)\n",
		        path, (unsigned)geteuid(), (unsigned)(st.st_mode & 07777),
		        (unsigned)st.st_uid);
		return PART_ERR_IO;
	}
	if (st.st_size != PART_MASTERKEY_LEN) {
		fprintf(stderr, "hsmgate-worker: %s: a master key is %d bytes, not %lld\n", path,
		        PART_MASTERKEY_LEN, (long long)st.st_size);
		return PART_ERR_CORRUPT;
	}
	do {
		n = read(fd, mk->key, PART_MASTERKEY_LEN);
	} while (n < 0 && errno == EINTR);
	if (n != PART_MASTERKEY_LEN) {
		fprintf(stderr, "hsmgate-worker: %s: short read\n", path);
		return PART_ERR_IO;
	}
	return 0;
}

/* Creates a new key file: written to a temporary name, synced, then link()ed into place, so
 * a crash never leaves a partial key, and of two processes creating it at once (two workers
 * of one partition) the second one finds the first one's key (EEXIST) and uses it. */
static int
mk_create(const char *dir, const char *path, struct part_masterkey *mk, int *lost_race)
{
	char tmp[4096];
	int fd = -1, dfd = -1, r;

	*lost_race = 0;
	if (snprintf(tmp, sizeof(tmp), "%s/.%s.%ld", dir, MK_FILE, (long)getpid()) >=
	    (int)sizeof(tmp)) {
		return PART_ERR_INVALID;
	}
	if (RAND_priv_bytes(mk->key, PART_MASTERKEY_LEN) != 1) {
		return PART_ERR_CRYPTO;
	}
	(void)unlink(tmp);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600)) < 0) {
		fprintf(stderr, "hsmgate-worker: %s: %s\n", tmp, strerror(errno));
		return PART_ERR_IO;
	}
	if (write(fd, mk->key, PART_MASTERKEY_LEN) != PART_MASTERKEY_LEN || fsync(fd) != 0) {
		fprintf(stderr, "hsmgate-worker: %s: %s\n", tmp, strerror(errno));
		r = PART_ERR_IO;
		goto out;
	}
	if (link(tmp, path) != 0) {
		if (errno == EEXIST) {
			*lost_race = 1;
			r = 0;
			goto out;
		}
		fprintf(stderr, "hsmgate-worker: %s: %s\n", path, strerror(errno));
		r = PART_ERR_IO;
		goto out;
	}
	/* The directory entry must be durable before any object is sealed under the key. */
	if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
		(void)fsync(dfd);
		close(dfd);
	}
	r = 0;
out:
	close(fd);
	(void)unlink(tmp);
	return r;
}

int
part_masterkey_obtain(const struct part_worker_opts *o, struct part_masterkey **out)
{
	struct part_masterkey *mk = NULL;
	char path[4096];
	int fd = -1, created = 0, lost, r;

	*out = NULL;
	if (o == NULL || o->store_dir == NULL ||
	    snprintf(path, sizeof(path), "%s/%s", o->store_dir, MK_FILE) >= (int)sizeof(path)) {
		return PART_ERR_INVALID;
	}
	if ((r = mk_alloc(&mk)) != 0) {
		return r;
	}
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT) {
		/* A new partition. A store that already holds sealed objects but lost its key
		 * file gets a new key here, and then fails to open its sealed index with a
		 * message that says so (seal.c): objects are never silently given up. */
		if ((r = mk_create(o->store_dir, path, mk, &lost)) != 0) {
			goto out;
		}
		if (!(created = !lost)) {
			fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		} else {
			fprintf(stderr, "hsmgate-worker: partition %s: new master key in %s\n",
			        o->partition != NULL ? o->partition : "?", path);
		}
	}
	if (!created && fd < 0) {
		fprintf(stderr, "hsmgate-worker: %s: %s\n", path, strerror(errno));
		r = PART_ERR_IO;
		goto out;
	}
	if (!created && (r = mk_read(path, fd, mk)) != 0) {
		goto out;
	}
	*out = mk;
	mk = NULL; /* transferred */
	r = 0;
out:
	if (fd >= 0) {
		close(fd);
	}
	part_masterkey_free(mk);
	return r;
}
