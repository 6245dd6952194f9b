/*
 * proto/info.c — the scalar-and-buffer PKCS #11 types: input bytes ('y'), output buffers
 * ('o'/'O'), ulong arrays ('l'/'L') and the info structures (I S T N m).
 *
 * Output buffers and ulong arrays carry the size-query convention of PKCS #11 v2.40 §5.2
 * exactly: "If pBuf is NULL_PTR, then all that the function does is return (in *pulBufLen)
 * a number of bytes which would suffice to hold the cryptographic output", and a buffer too
 * small gets CKR_BUFFER_TOO_SMALL with the length. So a NULL buffer and a buffer of
 * capacity 0 are different requests, and the wire keeps them apart.
 */
#include "proto/proto.h"
#include "proto/proto_int.h"

#include <string.h>

static const CK_BYTE empty_bytes[1];

/* ---- input bytes --------------------------------------------------------------------- */

int
proto_put_inbytes(struct proto_buf *b, const CK_BYTE *p, CK_ULONG len)
{
	int r;

	if (p == NULL) {
		if (len != 0) {
			return proto_buf_fail(b, PROTO_ERR_BAD_VALUE);
		}
		return proto_put_u8(b, 0);
	}
	if ((uint64_t)len > UINT32_MAX) {
		return proto_buf_fail(b, PROTO_ERR_TOO_LARGE);
	}
	if ((r = proto_put_u8(b, 1)) != 0 || (r = proto_put_bytes(b, p, (size_t)len)) != 0) {
		return r;
	}
	return 0;
}

int
proto_get_inbytes(struct proto_cur *c, const CK_BYTE **p, CK_ULONG *len, size_t cap)
{
	struct proto_cur t = *c;
	const uint8_t *d;
	size_t n;
	int present, r;

	*p = NULL;
	*len = 0;
	if ((r = proto_get_bool(&t, &present)) != 0) {
		return r;
	}
	if (present) {
		if ((r = proto_get_bytes_ref(&t, &d, &n, cap)) != 0) {
			return r;
		}
		/* Present but empty stays non-NULL. */
		*p = n != 0 ? d : empty_bytes;
		*len = (CK_ULONG)n;
	}
	*c = t;
	return 0;
}

/* ---- output buffers ------------------------------------------------------------------ */

int
proto_put_outbuf_req(struct proto_buf *b, const CK_BYTE *buf, CK_ULONG capacity)
{
	int r;

	if (buf == NULL) {
		return proto_put_u8(b, 0);
	}
	if ((r = proto_put_u8(b, 1)) != 0 || (r = proto_put_ulong(b, capacity)) != 0) {
		return r;
	}
	return 0;
}

int
proto_get_outbuf_req(struct proto_cur *c, int *has_buffer, CK_ULONG *capacity)
{
	struct proto_cur t = *c;
	CK_ULONG cap = 0;
	int r;

	*has_buffer = 0;
	*capacity = 0;
	if ((r = proto_get_bool(&t, has_buffer)) != 0) {
		return r;
	}
	if (*has_buffer && (r = proto_get_ulong(&t, &cap)) != 0) {
		*has_buffer = 0;
		return r;
	}
	/* No reply can carry more than a frame, so a larger capacity behaves exactly like
	 * this one; clamping keeps a server from sizing a buffer from the wire. */
	*capacity = cap > PROTO_MAX_FRAME_CAP ? PROTO_MAX_FRAME_CAP : cap;
	*c = t;
	return 0;
}

int
proto_put_outbuf_reply(struct proto_buf *b, const CK_BYTE *data, CK_ULONG len)
{
	int r;

	if (data == NULL) {
		if ((r = proto_put_u8(b, 0)) != 0 || (r = proto_put_ulong(b, len)) != 0) {
			return r;
		}
		return 0;
	}
	if ((uint64_t)len > UINT32_MAX) {
		return proto_buf_fail(b, PROTO_ERR_TOO_LARGE);
	}
	if ((r = proto_put_u8(b, 1)) != 0 || (r = proto_put_bytes(b, data, (size_t)len)) != 0) {
		return r;
	}
	return 0;
}

int
proto_get_outbuf_reply(struct proto_cur *c, CK_BYTE *buf, CK_ULONG *len_io)
{
	struct proto_cur t = *c;
	const uint8_t *d;
	CK_ULONG len;
	size_t n;
	int has_data, r;

	if ((r = proto_get_bool(&t, &has_data)) != 0) {
		return r;
	}
	if (!has_data) {
		if ((r = proto_get_ulong(&t, &len)) != 0) {
			return r;
		}
		*len_io = len;
		*c = t;
		return 0;
	}
	if ((r = proto_get_bytes_ref(&t, &d, &n, PROTO_MAX_FRAME_CAP)) != 0) {
		return r;
	}
	/* The server may never write past the buffer the application gave us. */
	if (buf == NULL || (uint64_t)n > (uint64_t)*len_io) {
		return PROTO_ERR_SMALL;
	}
	if (n != 0) {
		memcpy(buf, d, n);
	}
	*len_io = (CK_ULONG)n;
	*c = t;
	return 0;
}

/* ---- ulong arrays -------------------------------------------------------------------- */

int
proto_put_ulongs_req(struct proto_buf *b, const CK_ULONG *buf, CK_ULONG capacity)
{
	return proto_put_outbuf_req(b, (const CK_BYTE *)buf, capacity);
}

int
proto_get_ulongs_req(struct proto_cur *c, int *has_buffer, CK_ULONG *capacity)
{
	struct proto_cur t = *c;
	CK_ULONG cap = 0;
	int r;

	*has_buffer = 0;
	*capacity = 0;
	if ((r = proto_get_bool(&t, has_buffer)) != 0) {
		return r;
	}
	if (*has_buffer && (r = proto_get_ulong(&t, &cap)) != 0) {
		*has_buffer = 0;
		return r;
	}
	/* As for output buffers: no reply carries more than PROTO_MAX_ULONGS. */
	*capacity = cap > PROTO_MAX_ULONGS ? PROTO_MAX_ULONGS : cap;
	*c = t;
	return 0;
}

int
proto_put_ulongs_reply(struct proto_buf *b, const CK_ULONG *list, CK_ULONG n)
{
	CK_ULONG i;
	int r;

	if (n > PROTO_MAX_ULONGS && list != NULL) {
		return proto_buf_fail(b, PROTO_ERR_TOO_LARGE);
	}
	if ((r = proto_put_ulong(b, n)) != 0 || (r = proto_put_u8(b, list != NULL)) != 0) {
		return r;
	}
	for (i = 0; list != NULL && i < n; i++) {
		if ((r = proto_put_ulong(b, list[i])) != 0) {
			return r;
		}
	}
	return 0;
}

int
proto_get_ulongs_reply(struct proto_cur *c, CK_ULONG *buf, CK_ULONG *count_io)
{
	struct proto_cur t = *c;
	CK_ULONG n, i, v;
	int has_list, r;

	if ((r = proto_get_ulong(&t, &n)) != 0 || (r = proto_get_bool(&t, &has_list)) != 0) {
		return r;
	}
	if (!has_list) {
		*count_io = n;
		*c = t;
		return 0;
	}
	if (n > PROTO_MAX_ULONGS) {
		return PROTO_ERR_TOO_LARGE;
	}
	if (n * 8 > t.len) {
		return PROTO_ERR_TRUNCATED;
	}
	if (buf == NULL || n > *count_io) {
		return PROTO_ERR_SMALL;
	}
	/* Checked above that every element is there, so the app's buffer is only written
	 * once the whole list is known to decode. */
	for (i = 0; i < n; i++) {
		if ((r = proto_get_ulong(&t, &v)) != 0) {
			return r;
		}
		buf[i] = v;
	}
	*count_io = n;
	*c = t;
	return 0;
}

/* ---- info structures ----------------------------------------------------------------- */

static int
put_version(struct proto_buf *b, const CK_VERSION *v)
{
	int r;

	if ((r = proto_put_u8(b, v->major)) != 0 || (r = proto_put_u8(b, v->minor)) != 0) {
		return r;
	}
	return 0;
}

static int
get_version(struct proto_cur *c, CK_VERSION *v)
{
	int r;

	if ((r = proto_get_u8(c, &v->major)) != 0 || (r = proto_get_u8(c, &v->minor)) != 0) {
		return r;
	}
	return 0;
}

int
proto_put_info(struct proto_buf *b, const CK_INFO *v)
{
	int r;

	if ((r = put_version(b, &v->cryptokiVersion)) != 0 ||
	    (r = proto_put_raw(b, v->manufacturerID, sizeof(v->manufacturerID))) != 0 ||
	    (r = proto_put_ulong(b, v->flags)) != 0 ||
	    (r = proto_put_raw(b, v->libraryDescription, sizeof(v->libraryDescription))) != 0 ||
	    (r = put_version(b, &v->libraryVersion)) != 0) {
		return r;
	}
	return 0;
}

int
proto_get_info(struct proto_cur *c, CK_INFO *v)
{
	struct proto_cur t = *c;
	int r;

	memset(v, 0, sizeof(*v));
	if ((r = get_version(&t, &v->cryptokiVersion)) != 0 ||
	    (r = proto_get_raw(&t, v->manufacturerID, sizeof(v->manufacturerID))) != 0 ||
	    (r = proto_get_ulong(&t, &v->flags)) != 0 ||
	    (r = proto_get_raw(&t, v->libraryDescription, sizeof(v->libraryDescription))) != 0 ||
	    (r = get_version(&t, &v->libraryVersion)) != 0) {
		memset(v, 0, sizeof(*v));
		return r;
	}
	*c = t;
	return 0;
}

int
proto_put_slot_info(struct proto_buf *b, const CK_SLOT_INFO *v)
{
	int r;

	if ((r = proto_put_raw(b, v->slotDescription, sizeof(v->slotDescription))) != 0 ||
	    (r = proto_put_raw(b, v->manufacturerID, sizeof(v->manufacturerID))) != 0 ||
	    (r = proto_put_ulong(b, v->flags)) != 0 ||
	    (r = put_version(b, &v->hardwareVersion)) != 0 ||
	    (r = put_version(b, &v->firmwareVersion)) != 0) {
		return r;
	}
	return 0;
}

int
proto_get_slot_info(struct proto_cur *c, CK_SLOT_INFO *v)
{
	struct proto_cur t = *c;
	int r;

	memset(v, 0, sizeof(*v));
	if ((r = proto_get_raw(&t, v->slotDescription, sizeof(v->slotDescription))) != 0 ||
	    (r = proto_get_raw(&t, v->manufacturerID, sizeof(v->manufacturerID))) != 0 ||
	    (r = proto_get_ulong(&t, &v->flags)) != 0 ||
	    (r = get_version(&t, &v->hardwareVersion)) != 0 ||
	    (r = get_version(&t, &v->firmwareVersion)) != 0) {
		memset(v, 0, sizeof(*v));
		return r;
	}
	*c = t;
	return 0;
}

int
proto_put_token_info(struct proto_buf *b, const CK_TOKEN_INFO *v)
{
	int r;

	if ((r = proto_put_raw(b, v->label, sizeof(v->label))) != 0 ||
	    (r = proto_put_raw(b, v->manufacturerID, sizeof(v->manufacturerID))) != 0 ||
	    (r = proto_put_raw(b, v->model, sizeof(v->model))) != 0 ||
	    (r = proto_put_raw(b, v->serialNumber, sizeof(v->serialNumber))) != 0 ||
	    (r = proto_put_ulong(b, v->flags)) != 0 ||
	    (r = proto_put_ulong(b, v->ulMaxSessionCount)) != 0 ||
	    (r = proto_put_ulong(b, v->ulSessionCount)) != 0 ||
	    (r = proto_put_ulong(b, v->ulMaxRwSessionCount)) != 0 ||
	    (r = proto_put_ulong(b, v->ulRwSessionCount)) != 0 ||
	    (r = proto_put_ulong(b, v->ulMaxPinLen)) != 0 ||
	    (r = proto_put_ulong(b, v->ulMinPinLen)) != 0 ||
	    (r = proto_put_ulong(b, v->ulTotalPublicMemory)) != 0 ||
	    (r = proto_put_ulong(b, v->ulFreePublicMemory)) != 0 ||
	    (r = proto_put_ulong(b, v->ulTotalPrivateMemory)) != 0 ||
	    (r = proto_put_ulong(b, v->ulFreePrivateMemory)) != 0 ||
	    (r = put_version(b, &v->hardwareVersion)) != 0 ||
	    (r = put_version(b, &v->firmwareVersion)) != 0 ||
	    (r = proto_put_raw(b, v->utcTime, sizeof(v->utcTime))) != 0) {
		return r;
	}
	return 0;
}

int
proto_get_token_info(struct proto_cur *c, CK_TOKEN_INFO *v)
{
	struct proto_cur t = *c;
	int r;

	memset(v, 0, sizeof(*v));
	if ((r = proto_get_raw(&t, v->label, sizeof(v->label))) != 0 ||
	    (r = proto_get_raw(&t, v->manufacturerID, sizeof(v->manufacturerID))) != 0 ||
	    (r = proto_get_raw(&t, v->model, sizeof(v->model))) != 0 ||
	    (r = proto_get_raw(&t, v->serialNumber, sizeof(v->serialNumber))) != 0 ||
	    (r = proto_get_ulong(&t, &v->flags)) != 0 ||
	    (r = proto_get_ulong(&t, &v->ulMaxSessionCount)) != 0 ||
	    (r = proto_get_ulong(&t, &v->ulSessionCount)) != 0 ||
	    (r = proto_get_ulong(&t, &v->ulMaxRwSessionCount)) != 0 ||
	    (r = proto_get_ulong(&t, &v->ulRwSessionCount)) != 0 ||
	    (r = proto_get_ulong(&t, &v->ulMaxPinLen)) != 0 ||
	    (r = proto_get_ulong(&t, &v->ulMinPinLen)) != 0 ||
	    (r = proto_get_ulong(&t, &v->ulTotalPublicMemory)) != 0 ||
	    (r = proto_get_ulong(&t, &v->ulFreePublicMemory)) != 0 ||
	    (r = proto_get_ulong(&t, &v->ulTotalPrivateMemory)) != 0 ||
	    (r = proto_get_ulong(&t, &v->ulFreePrivateMemory)) != 0 ||
	    (r = get_version(&t, &v->hardwareVersion)) != 0 ||
	    (r = get_version(&t, &v->firmwareVersion)) != 0 ||
	    (r = proto_get_raw(&t, v->utcTime, sizeof(v->utcTime))) != 0) {
		memset(v, 0, sizeof(*v));
		return r;
	}
	*c = t;
	return 0;
}

int
proto_put_session_info(struct proto_buf *b, const CK_SESSION_INFO *v)
{
	int r;

	if ((r = proto_put_ulong(b, v->slotID)) != 0 || (r = proto_put_ulong(b, v->state)) != 0 ||
	    (r = proto_put_ulong(b, v->flags)) != 0 ||
	    (r = proto_put_ulong(b, v->ulDeviceError)) != 0) {
		return r;
	}
	return 0;
}

int
proto_get_session_info(struct proto_cur *c, CK_SESSION_INFO *v)
{
	struct proto_cur t = *c;
	int r;

	memset(v, 0, sizeof(*v));
	if ((r = proto_get_ulong(&t, &v->slotID)) != 0 ||
	    (r = proto_get_ulong(&t, &v->state)) != 0 ||
	    (r = proto_get_ulong(&t, &v->flags)) != 0 ||
	    (r = proto_get_ulong(&t, &v->ulDeviceError)) != 0) {
		memset(v, 0, sizeof(*v));
		return r;
	}
	*c = t;
	return 0;
}

int
proto_put_mech_info(struct proto_buf *b, const CK_MECHANISM_INFO *v)
{
	int r;

	if ((r = proto_put_ulong(b, v->ulMinKeySize)) != 0 ||
	    (r = proto_put_ulong(b, v->ulMaxKeySize)) != 0 ||
	    (r = proto_put_ulong(b, v->flags)) != 0) {
		return r;
	}
	return 0;
}

int
proto_get_mech_info(struct proto_cur *c, CK_MECHANISM_INFO *v)
{
	struct proto_cur t = *c;
	int r;

	memset(v, 0, sizeof(*v));
	if ((r = proto_get_ulong(&t, &v->ulMinKeySize)) != 0 ||
	    (r = proto_get_ulong(&t, &v->ulMaxKeySize)) != 0 ||
	    (r = proto_get_ulong(&t, &v->flags)) != 0) {
		memset(v, 0, sizeof(*v));
		return r;
	}
	*c = t;
	return 0;
}
