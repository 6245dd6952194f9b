/*
 * audit/merkle.c — RFC 6962 §2.1 Merkle tree hashes over the log's leaf hashes: the
 * compact range the writer keeps (O(log n) state), MTH over an array, inclusion and
 * consistency proofs and their verification (RFC 9162 §2.1.3.2 and §2.1.4.2).
 *
 * Leaves here are already leaf hashes (SHA-256(0x00 || entry)); interior nodes are
 * SHA-256(0x01 || left || right); the tree for n leaves splits at k, the largest power of
 * two smaller than n, so its shape depends on n only.
 */
#include "audit/aud_int.h"

#include <stdlib.h>
#include <string.h>

/* ---- compact range -------------------------------------------------------------------- */

void
aud_range_init(struct aud_range *r)
{
	memset(r, 0, sizeof(*r));
}

void
aud_range_push(struct aud_range *r, const uint8_t leaf[AUD_HASH_LEN])
{
	uint8_t h[AUD_HASH_LEN];
	unsigned level = 0;

	/* Like adding one to a binary counter: each carry merges two perfect subtrees. */
	memcpy(h, leaf, AUD_HASH_LEN);
	while ((r->size >> level) & 1) {
		aud_hash_node(r->node[level], h, h);
		level++;
	}
	memcpy(r->node[level], h, AUD_HASH_LEN);
	r->size++;
}

void
aud_range_root(const struct aud_range *r, uint8_t root[AUD_HASH_LEN])
{
	uint8_t acc[AUD_HASH_LEN];
	unsigned level;
	int have = 0;

	if (r->size == 0) {
		aud_sha256("", 0, NULL, 0, root);
		return;
	}
	/* The perfect subtrees, smallest (rightmost) first, folded right to left: exactly
	 * MTH's recursion for a left-balanced tree. */
	for (level = 0; level < 64; level++) {
		if (((r->size >> level) & 1) == 0) {
			continue;
		}
		if (!have) {
			memcpy(acc, r->node[level], AUD_HASH_LEN);
			have = 1;
		} else {
			aud_hash_node(r->node[level], acc, acc);
		}
	}
	memcpy(root, acc, AUD_HASH_LEN);
}

/* ---- MTH and proofs over an array ----------------------------------------------------- */

static uint64_t
split(uint64_t n)
{
	uint64_t k = 1;

	while (k << 1 < n) {
		k <<= 1;
	}
	return k;
}

static void
mth(const uint8_t (*d)[AUD_HASH_LEN], uint64_t n, uint8_t out[AUD_HASH_LEN])
{
	uint8_t l[AUD_HASH_LEN], r[AUD_HASH_LEN];
	uint64_t k;

	if (n == 1) {
		memcpy(out, d[0], AUD_HASH_LEN);
		return;
	}
	k = split(n);
	mth(d, k, l);
	mth(d + k, n - k, r);
	aud_hash_node(l, r, out);
}

void
aud_merkle_root(const uint8_t (*leaves)[AUD_HASH_LEN], uint64_t n, uint8_t root[AUD_HASH_LEN])
{
	if (n == 0) {
		aud_sha256("", 0, NULL, 0, root);
		return;
	}
	mth(leaves, n, root);
}

/* A proof is at most 64 hashes for any 64-bit size; one fixed array is enough. */
struct proof {
	uint8_t h[66][AUD_HASH_LEN];
	size_t n;
};

/* RFC 6962 §2.1.1: PATH(m, D[n]), appended bottom-up. */
static void
path(const uint8_t (*d)[AUD_HASH_LEN], uint64_t n, uint64_t m, struct proof *p)
{
	uint64_t k;

	if (n <= 1) {
		return;
	}
	k = split(n);
	if (m < k) {
		path(d, k, m, p);
		mth(d + k, n - k, p->h[p->n++]);
	} else {
		path(d + k, n - k, m - k, p);
		mth(d, k, p->h[p->n++]);
	}
}

/* RFC 6962 §2.1.2: SUBPROOF(m, D[n], b). */
static void
subproof(const uint8_t (*d)[AUD_HASH_LEN], uint64_t n, uint64_t m, int b, struct proof *p)
{
	uint64_t k;

	if (m == n) {
		if (!b) {
			mth(d, n, p->h[p->n++]);
		}
		return;
	}
	k = split(n);
	if (m <= k) {
		subproof(d, k, m, b, p);
		mth(d + k, n - k, p->h[p->n++]);
	} else {
		subproof(d + k, n - k, m - k, 0, p);
		mth(d, k, p->h[p->n++]);
	}
}

static int
proof_out(const struct proof *p, uint8_t (**out)[AUD_HASH_LEN], size_t *nout)
{
	if ((*out = malloc(p->n > 0 ? p->n * AUD_HASH_LEN : 1)) == NULL) {
		return AUD_ERR_NOMEM;
	}
	memcpy(*out, p->h, p->n * AUD_HASH_LEN);
	*nout = p->n;
	return 0;
}

int
aud_merkle_inclusion_proof(const uint8_t (*leaves)[AUD_HASH_LEN], uint64_t n, uint64_t m,
                           uint8_t (**out)[AUD_HASH_LEN], size_t *nout)
{
	struct proof p;

	*out = NULL;
	*nout = 0;
	if (m >= n) {
		return AUD_ERR_RANGE;
	}
	p.n = 0;
	path(leaves, n, m, &p);
	return proof_out(&p, out, nout);
}

int
aud_merkle_consistency_proof(const uint8_t (*leaves)[AUD_HASH_LEN], uint64_t m, uint64_t n,
                             uint8_t (**out)[AUD_HASH_LEN], size_t *nout)
{
	struct proof p;

	*out = NULL;
	*nout = 0;
	if (m > n) {
		return AUD_ERR_RANGE;
	}
	p.n = 0;
	/* RFC 6962 §2.1.2: the proof for m == 0 or m == n is empty. */
	if (m > 0 && m < n) {
		subproof(leaves, n, m, 1, &p);
	}
	return proof_out(&p, out, nout);
}

int
aud_merkle_inclusion_verify(const uint8_t leaf[AUD_HASH_LEN], uint64_t m, uint64_t n,
                            const uint8_t (*p)[AUD_HASH_LEN], size_t np,
                            const uint8_t root[AUD_HASH_LEN])
{
	uint8_t r[AUD_HASH_LEN];
	uint64_t fn = m, sn = n - 1;
	size_t i;

	/* RFC 9162 §2.1.3.2, step by step. */
	if (m >= n) {
		return AUD_ERR_VERIFY;
	}
	memcpy(r, leaf, AUD_HASH_LEN);
	for (i = 0; i < np; i++) {
		if (sn == 0) {
			return AUD_ERR_VERIFY;
		}
		if ((fn & 1) == 1 || fn == sn) {
			aud_hash_node(p[i], r, r);
			if ((fn & 1) == 0) {
				while ((fn & 1) == 0 && fn != 0) {
					fn >>= 1;
					sn >>= 1;
				}
			}
		} else {
			aud_hash_node(r, p[i], r);
		}
		fn >>= 1;
		sn >>= 1;
	}
	if (sn != 0 || memcmp(r, root, AUD_HASH_LEN) != 0) {
		return AUD_ERR_VERIFY;
	}
	return 0;
}

int
aud_merkle_consistency_verify(uint64_t m, uint64_t n, const uint8_t root1[AUD_HASH_LEN],
                              const uint8_t root2[AUD_HASH_LEN], const uint8_t (*p)[AUD_HASH_LEN],
                              size_t np)
{
	uint8_t fr[AUD_HASH_LEN], sr[AUD_HASH_LEN];
	uint64_t fn, sn;
	size_t i = 0;

	/* RFC 9162 §2.1.4.2, step by step. */
	if (m > n) {
		return AUD_ERR_VERIFY;
	}
	if (m == n) {
		return np == 0 && memcmp(root1, root2, AUD_HASH_LEN) == 0 ? 0 : AUD_ERR_VERIFY;
	}
	if (m == 0) {
		return np == 0 ? 0 : AUD_ERR_VERIFY;
	}
	if (np == 0) {
		return AUD_ERR_VERIFY;
	}
	/* If m is a power of two, the old root is the first proof node. */
	if ((m & (m - 1)) == 0) {
		memcpy(fr, root1, AUD_HASH_LEN);
		memcpy(sr, root1, AUD_HASH_LEN);
	} else {
		memcpy(fr, p[0], AUD_HASH_LEN);
		memcpy(sr, p[0], AUD_HASH_LEN);
		i = 1;
	}
	fn = m - 1;
	sn = n - 1;
	while ((fn & 1) == 1) {
		fn >>= 1;
		sn >>= 1;
	}
	for (; i < np; i++) {
		if (sn == 0) {
			return AUD_ERR_VERIFY;
		}
		if ((fn & 1) == 1 || fn == sn) {
			aud_hash_node(p[i], fr, fr);
			aud_hash_node(p[i], sr, sr);
			if ((fn & 1) == 0) {
				while ((fn & 1) == 0 && fn != 0) {
					fn >>= 1;
					sn >>= 1;
				}
			}
		} else {
			aud_hash_node(sr, p[i], sr);
		}
		fn >>= 1;
		sn >>= 1;
	}
	if (sn != 0 || memcmp(fr, root1, AUD_HASH_LEN) != 0 ||
	    memcmp(sr, root2, AUD_HASH_LEN) != 0) {
		return AUD_ERR_VERIFY;
	}
	return 0;
}
