/*
 * proto/proto_int.h — private to proto/: helpers shared by its source files.
 * Nothing outside proto/ includes this.
 */
#ifndef HSMGATE_PROTO_INT_H
#define HSMGATE_PROTO_INT_H

#include "proto/proto.h"

/* Upper bound of one arena: a decoded message may ask the server for output buffers
 * (C_GetAttributeValue capacities), so the arena — not the frame — bounds the memory one
 * request can make a worker allocate. */
#define PROTO_ARENA_MAX ((size_t)64 << 20)

/* Sets b->failed (if not yet set) and returns it. */
int proto_buf_fail(struct proto_buf *b, int err);
/* Room for n more bytes at the end of b, or NULL with b->failed set. */
uint8_t *proto_buf_reserve(struct proto_buf *b, size_t n);

void proto_be32_write(uint8_t *d, uint32_t v);
uint32_t proto_be32_read(const uint8_t *d);
uint64_t proto_be64_read(const uint8_t *d);

/* A u8 that must be 0 or 1 (a has_* flag); PROTO_ERR_BAD_VALUE otherwise. */
int proto_get_bool(struct proto_cur *c, int *v) PROTO_WUR;

/* Attribute value kinds by depth (attr.c), used by the layout skimmer. */
int proto_attrreply_skim(struct proto_cur *c) PROTO_WUR;

#endif
