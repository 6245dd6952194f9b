/*
 * proto/layout.c — proto_layout_skim(): decode (and discard) the fields a call's layout
 * string names, so a receiver can check a whole request or reply before acting on it.
 */
#include "proto/proto.h"
#include "proto/proto_int.h"

static int
skim_one(struct proto_cur *c, char letter, struct proto_arena *a)
{
	CK_ATTRIBUTE *t;
	CK_MECHANISM m;
	CK_INFO info;
	CK_SLOT_INFO slot;
	CK_TOKEN_INFO token;
	CK_SESSION_INFO sess;
	CK_MECHANISM_INFO minfo;
	const CK_BYTE *p;
	const uint8_t *d;
	CK_ULONG ul, n, i;
	size_t len;
	uint8_t u8;
	int has, r;

	switch (letter) {
	case 'u':
		return proto_get_ulong(c, &ul);
	case 'b':
		return proto_get_u8(c, &u8);
	case 'y':
		return proto_get_inbytes(c, &p, &ul, PROTO_MAX_FRAME_CAP);
	case 'o':
		return proto_get_outbuf_req(c, &has, &ul);
	case 'l':
		return proto_get_ulongs_req(c, &has, &ul);
	case 'a':
		return proto_get_template(c, a, &t, &n);
	case 'A':
		return proto_get_attrquery(c, a, &t, &n);
	case 'Q':
		return proto_attrreply_skim(c);
	case 'M':
		return proto_get_mechanism(c, a, &m);
	case 'O': {
		struct proto_cur s = *c;

		if ((r = proto_get_bool(&s, &has)) != 0) {
			return r;
		}
		if (has) {
			r = proto_get_bytes_ref(&s, &d, &len, PROTO_MAX_FRAME_CAP);
		} else {
			r = proto_get_ulong(&s, &ul);
		}
		if (r != 0) {
			return r;
		}
		*c = s;
		return 0;
	}
	case 'L': {
		struct proto_cur s = *c;

		if ((r = proto_get_ulong(&s, &n)) != 0 || (r = proto_get_bool(&s, &has)) != 0) {
			return r;
		}
		if (has) {
			if (n > PROTO_MAX_ULONGS) {
				return PROTO_ERR_TOO_LARGE;
			}
			for (i = 0; i < n; i++) {
				if ((r = proto_get_ulong(&s, &ul)) != 0) {
					return r;
				}
			}
		}
		*c = s;
		return 0;
	}
	case 'I':
		return proto_get_info(c, &info);
	case 'S':
		return proto_get_slot_info(c, &slot);
	case 'T':
		return proto_get_token_info(c, &token);
	case 'N':
		return proto_get_session_info(c, &sess);
	case 'm':
		return proto_get_mech_info(c, &minfo);
	default:
		return PROTO_ERR_BAD_VALUE;
	}
}

int
proto_layout_skim(struct proto_cur *c, const char *layout, struct proto_arena *a)
{
	struct proto_cur t = *c;
	int r;

	if (layout == NULL || a == NULL) {
		return PROTO_ERR_BAD_VALUE;
	}
	for (; *layout != '\0'; layout++) {
		if ((r = skim_one(&t, *layout, a)) != 0) {
			return r;
		}
	}
	*c = t;
	return 0;
}
