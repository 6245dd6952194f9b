/*
 * hsm-partitions/seal.c — the seam through which every object record enters and leaves
 * the store.
 *
 * Record: u8 PART_SEAL_VERSION | u8 scheme | payload.
 * Today only PART_SEAL_NONE exists: the payload is the record itself. Issue 3 adds
 * AES-256-GCM under the partition master key (scheme 1: 12-byte nonce | ciphertext |
 * 16-byte tag, with the object ref as additional authenticated data, as DESIGN.md asks:
 * "sealed (AES-256-GCM, authenticated with its object id)"). Readers already refuse an
 * unknown scheme, so a store written by a newer worker fails closed in an older one.
 */
#include "hsm-partitions/part_int.h"

int
part_seal(const char *ref, const uint8_t *in, size_t len, struct proto_buf *out)
{
	int r;

	(void)ref; /* issue 3: the GCM additional data */
	if ((r = proto_put_u8(out, PART_SEAL_VERSION)) != 0 ||
	    (r = proto_put_u8(out, PART_SEAL_NONE)) != 0 ||
	    (r = proto_put_raw(out, in, len)) != 0) {
		return r == PROTO_ERR_NOMEM ? PART_ERR_NOMEM : PART_ERR_INVALID;
	}
	return 0;
}

int
part_unseal(const char *ref, const uint8_t *in, size_t len, struct proto_buf *out)
{
	(void)ref;
	if (len < 2 || in[0] != PART_SEAL_VERSION) {
		return PART_ERR_CORRUPT;
	}
	switch (in[1]) {
	case PART_SEAL_NONE:
		if (proto_put_raw(out, in + 2, len - 2) != 0) {
			return PART_ERR_NOMEM;
		}
		return 0;
	default:
		return PART_ERR_CORRUPT;
	}
}
