/*
 * proto/arena.c — the allocations of one decoded message, freed (and wiped) together.
 *
 * A decoded template or mechanism is a tree of native structs (CK_ATTRIBUTE arrays, values,
 * CK_GCM_PARAMS ...). Giving them one owner means a handler never frees piecemeal, and the
 * wipe on free covers every value the message held (they may be key material).
 */
#include "proto/proto.h"
#include "proto/proto_int.h"

#include <openssl/crypto.h>
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_CHUNK 4096

struct arena_block {
	struct arena_block *next;
	size_t size; /* usable bytes after the header */
	size_t used;
	alignas(max_align_t) unsigned char data[];
};

struct proto_arena {
	struct arena_block *head; /* the block small allocations are carved from first */
	size_t total;             /* bytes of all blocks, against PROTO_ARENA_MAX */
};

struct proto_arena *
proto_arena_new(void)
{
	return calloc(1, sizeof(struct proto_arena));
}

static struct arena_block *
arena_block_new(struct proto_arena *a, size_t size)
{
	struct arena_block *blk;

	if (size > PROTO_ARENA_MAX || a->total > PROTO_ARENA_MAX - size) {
		return NULL;
	}
	if ((blk = calloc(1, sizeof(*blk) + size)) == NULL) {
		return NULL;
	}
	blk->size = size;
	a->total += size;
	return blk;
}

void *
proto_arena_alloc(struct proto_arena *a, size_t n)
{
	const size_t align = alignof(max_align_t);
	struct arena_block *blk;
	size_t need;
	void *p;

	if (a == NULL || n > PROTO_ARENA_MAX) {
		return NULL;
	}
	/* n == 0 still gets a distinct, non-NULL pointer: callers use it to tell an empty
	 * value from an absent one. */
	need = (n + align - 1) & ~(align - 1);
	if (need == 0) {
		need = align;
	}
	blk = a->head;
	if (blk != NULL && blk->size - blk->used >= need) {
		p = blk->data + blk->used;
		blk->used += need;
		return p;
	}
	if (need > ARENA_CHUNK / 4) {
		/* A large value gets its own block, kept behind the current small block so the
		 * latter's free space stays usable. */
		if ((blk = arena_block_new(a, need)) == NULL) {
			return NULL;
		}
		blk->used = need;
		if (a->head != NULL) {
			blk->next = a->head->next;
			a->head->next = blk;
		} else {
			a->head = blk;
		}
		return blk->data;
	}
	if ((blk = arena_block_new(a, ARENA_CHUNK)) == NULL) {
		return NULL;
	}
	blk->next = a->head;
	a->head = blk;
	blk->used = need;
	return blk->data;
}

void
proto_arena_reset(struct proto_arena *a)
{
	struct arena_block *blk, *next;

	if (a == NULL) {
		return;
	}
	for (blk = a->head; blk != NULL; blk = next) {
		next = blk->next;
		OPENSSL_cleanse(blk->data, blk->used);
		free(blk);
	}
	a->head = NULL;
	a->total = 0;
}

void
proto_arena_free(struct proto_arena *a)
{
	if (a == NULL) {
		return;
	}
	proto_arena_reset(a);
	free(a);
}
