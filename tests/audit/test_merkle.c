/*
 * tests/audit/test_merkle.c — audit/merkle.c against the RFC 6962 reference vectors (the
 * eight Certificate Transparency leaves) and a naive recursive MTH, plus every inclusion
 * and consistency proof for small trees, each checked to fail when any part is altered.
 */
#include "audit/aud_int.h"
#include "tests/lib/test.h"

#include <stdlib.h>
#include <string.h>

static const char *const ct_leaves_hex[8] = {
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
};
static const char *const ct_roots[9] = {
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
};

static void
ct_leaves(uint8_t out[8][AUD_HASH_LEN])
{
	uint8_t raw[16];
	size_t i;

	for (i = 0; i < 8; i++) {
		size_t n = strlen(ct_leaves_hex[i]) / 2;

		CU_ASSERT_FATAL(aud_hex_decode(ct_leaves_hex[i], 2 * n, raw, n) == 0);
		aud_hash_leaf(raw, n, out[i]);
	}
}

static void
hex_is(const uint8_t h[AUD_HASH_LEN], const char *want)
{
	char hex[2 * AUD_HASH_LEN + 1];

	aud_hex_encode(h, AUD_HASH_LEN, hex);
	CU_ASSERT_STRING_EQUAL(hex, want);
}

static void
test_ct_roots(void)
{
	uint8_t l[8][AUD_HASH_LEN], root[AUD_HASH_LEN];
	struct aud_range r;
	uint64_t n;

	ct_leaves(l);
	aud_range_init(&r);
	aud_range_root(&r, root);
	hex_is(root, ct_roots[0]);
	for (n = 1; n <= 8; n++) {
		aud_merkle_root((const uint8_t(*)[AUD_HASH_LEN])l, n, root);
		hex_is(root, ct_roots[n]);
		aud_range_push(&r, l[n - 1]);
		aud_range_root(&r, root);
		hex_is(root, ct_roots[n]);
	}
}

static void
test_ct_inclusion_vectors(void)
{
	static const char *const p0[] = {
	        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
	        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
	        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
	};
	static const char *const p5[] = {
	        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
	        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
	        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
	};
	uint8_t l[8][AUD_HASH_LEN], (*path)[AUD_HASH_LEN] = NULL;
	size_t n, i;

	ct_leaves(l);
	CU_ASSERT_FATAL(aud_merkle_inclusion_proof((const uint8_t(*)[AUD_HASH_LEN])l, 8, 0, &path,
	                                           &n) == 0);
	CU_ASSERT_FATAL(n == 3);
	for (i = 0; i < 3; i++) {
		hex_is(path[i], p0[i]);
	}
	free(path);
	CU_ASSERT_FATAL(aud_merkle_inclusion_proof((const uint8_t(*)[AUD_HASH_LEN])l, 8, 5, &path,
	                                           &n) == 0);
	CU_ASSERT_FATAL(n == 3);
	for (i = 0; i < 3; i++) {
		hex_is(path[i], p5[i]);
	}
	free(path);
	/* Consistency 2 -> 8: [MTH(D[2:4]), MTH(D[4:8])]. */
	CU_ASSERT_FATAL(aud_merkle_consistency_proof((const uint8_t(*)[AUD_HASH_LEN])l, 2, 8, &path,
	                                             &n) == 0);
	CU_ASSERT_FATAL(n == 2);
	hex_is(path[0], p0[1]);
	hex_is(path[1], p0[2]);
	free(path);
}

/* Naive MTH straight from RFC 6962 §2.1, for cross-checking larger trees. */
static void
naive(const uint8_t (*d)[AUD_HASH_LEN], uint64_t n, uint8_t out[AUD_HASH_LEN])
{
	uint8_t a[AUD_HASH_LEN], b[AUD_HASH_LEN];
	uint64_t k = 1;

	if (n == 1) {
		memcpy(out, d[0], AUD_HASH_LEN);
		return;
	}
	while (2 * k < n) {
		k *= 2;
	}
	naive(d, k, a);
	naive(d + k, n - k, b);
	aud_hash_node(a, b, out);
}

#define MANY 70

static void
many_leaves(uint8_t l[MANY][AUD_HASH_LEN])
{
	size_t i;

	for (i = 0; i < MANY; i++) {
		uint8_t d[2] = {(uint8_t)i, (uint8_t)(i * 7)};

		aud_hash_leaf(d, 2, l[i]);
	}
}

static void
test_range_matches_naive(void)
{
	uint8_t l[MANY][AUD_HASH_LEN], a[AUD_HASH_LEN], b[AUD_HASH_LEN], c[AUD_HASH_LEN];
	struct aud_range r;
	uint64_t n;

	many_leaves(l);
	aud_range_init(&r);
	for (n = 1; n <= MANY; n++) {
		aud_range_push(&r, l[n - 1]);
		aud_range_root(&r, a);
		naive((const uint8_t(*)[AUD_HASH_LEN])l, n, b);
		aud_merkle_root((const uint8_t(*)[AUD_HASH_LEN])l, n, c);
		CU_ASSERT(memcmp(a, b, AUD_HASH_LEN) == 0);
		CU_ASSERT(memcmp(c, b, AUD_HASH_LEN) == 0);
	}
}

static void
test_inclusion_all(void)
{
	uint8_t l[MANY][AUD_HASH_LEN], root[AUD_HASH_LEN];
	const uint8_t(*cl)[AUD_HASH_LEN] = (const uint8_t(*)[AUD_HASH_LEN])l;
	uint64_t n, m;

	many_leaves(l);
	for (n = 1; n <= 40; n++) {
		aud_merkle_root(cl, n, root);
		for (m = 0; m < n; m++) {
			uint8_t(*p)[AUD_HASH_LEN] = NULL;
			size_t np, i;

			CU_ASSERT_FATAL(aud_merkle_inclusion_proof(cl, n, m, &p, &np) == 0);
			CU_ASSERT(aud_merkle_inclusion_verify(l[m], m, n,
			                                      (const uint8_t(*)[AUD_HASH_LEN])p, np,
			                                      root) == 0);
			/* Wrong index, wrong leaf, any altered node, a shorter path. (A proof may
			 * also fit a bigger size with the same path shape: the signed root pins the
			 * size.) */
			CU_ASSERT(aud_merkle_inclusion_verify(l[m], m + 1, n,
			                                      (const uint8_t(*)[AUD_HASH_LEN])p, np,
			                                      root) != 0 ||
			          m + 1 >= n);
			CU_ASSERT(aud_merkle_inclusion_verify(l[(m + 1) % MANY], m, n,
			                                      (const uint8_t(*)[AUD_HASH_LEN])p, np,
			                                      root) != 0);
			for (i = 0; i < np; i++) {
				p[i][i % AUD_HASH_LEN] ^= 1;
				CU_ASSERT(aud_merkle_inclusion_verify(
				                  l[m], m, n, (const uint8_t(*)[AUD_HASH_LEN])p, np,
				                  root) != 0);
				p[i][i % AUD_HASH_LEN] ^= 1;
			}
			if (np > 0) {
				CU_ASSERT(aud_merkle_inclusion_verify(
				                  l[m], m, n, (const uint8_t(*)[AUD_HASH_LEN])p,
				                  np - 1, root) != 0);
			}
			free(p);
		}
	}
	{
		uint8_t(*p)[AUD_HASH_LEN] = NULL;
		size_t np;

		CU_ASSERT(aud_merkle_inclusion_proof(cl, 5, 5, &p, &np) == AUD_ERR_RANGE);
	}
}

static void
test_consistency_all(void)
{
	uint8_t l[MANY][AUD_HASH_LEN], r1[AUD_HASH_LEN], r2[AUD_HASH_LEN];
	const uint8_t(*cl)[AUD_HASH_LEN] = (const uint8_t(*)[AUD_HASH_LEN])l;
	uint64_t n, m;

	many_leaves(l);
	for (n = 1; n <= 40; n++) {
		aud_merkle_root(cl, n, r2);
		for (m = 1; m <= n; m++) {
			uint8_t(*p)[AUD_HASH_LEN] = NULL;
			size_t np, i;

			aud_merkle_root(cl, m, r1);
			CU_ASSERT_FATAL(aud_merkle_consistency_proof(cl, m, n, &p, &np) == 0);
			CU_ASSERT(aud_merkle_consistency_verify(m, n, r1, r2,
			                                        (const uint8_t(*)[AUD_HASH_LEN])p,
			                                        np) == 0);
			if (m < n) {
				/* A different old root or new root must fail. */
				CU_ASSERT(aud_merkle_consistency_verify(
				                  m, n, r2, r2, (const uint8_t(*)[AUD_HASH_LEN])p,
				                  np) != 0);
				CU_ASSERT(aud_merkle_consistency_verify(
				                  m, n, r1, r1, (const uint8_t(*)[AUD_HASH_LEN])p,
				                  np) != 0);
				for (i = 0; i < np; i++) {
					p[i][0] ^= 0x80;
					CU_ASSERT(aud_merkle_consistency_verify(
					                  m, n, r1, r2,
					                  (const uint8_t(*)[AUD_HASH_LEN])p,
					                  np) != 0);
					p[i][0] ^= 0x80;
				}
			}
			free(p);
		}
	}
}

static const struct test_case cases[] = {
        {"RFC 6962 reference roots (array and compact range)", test_ct_roots},
        {"RFC 6962 reference inclusion and consistency proofs", test_ct_inclusion_vectors},
        {"compact range equals naive MTH for 1..70 leaves", test_range_matches_naive},
        {"every inclusion proof for n <= 40 verifies; altered ones fail", test_inclusion_all},
        {"every consistency proof for m <= n <= 40 verifies; altered ones fail",
         test_consistency_all},
        {NULL, NULL},
};

void
test_register(void)
{
	test_suite_add("audit/merkle", NULL, NULL, cases);
}
