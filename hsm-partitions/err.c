/* hsm-partitions/err.c — part_strerror() and small shared helpers. */
#include "hsm-partitions/part_int.h"

#include <string.h>

const char *
part_strerror(int err)
{
	switch (err) {
	case PART_OK:
		return "success";
	case PART_ERR_NOMEM:
		return "out of memory";
	case PART_ERR_IO:
		return "input/output error";
	case PART_ERR_STORE:
		return "keystore (LMDB) error";
	case PART_ERR_NOT_FOUND:
		return "no such record";
	case PART_ERR_CORRUPT:
		return "stored record is corrupt or fails its seal";
	case PART_ERR_INVALID:
		return "invalid argument";
	case PART_ERR_EXISTS:
		return "token already initialised";
	case PART_ERR_CRYPTO:
		return "cryptographic library error";
	case PART_ERR_IPC:
		return "broken IPC framing from the gateway";
	case PART_ERR_PIN:
		return "PIN length out of range";
	case PART_ERR_SYS:
		return "process hardening failed";
	default:
		return "unknown error";
	}
}

void
part_pad(char *dst, size_t n, const char *s)
{
	size_t l = s != NULL ? strnlen(s, n) : 0;

	memset(dst, ' ', n);
	if (l != 0) {
		memcpy(dst, s, l);
	}
}

CK_RV
part_rv_encoded(int r, CK_RV rv)
{
	if (r == 0) {
		return rv;
	}
	return r == PROTO_ERR_NOMEM ? CKR_DEVICE_MEMORY : CKR_GENERAL_ERROR;
}
