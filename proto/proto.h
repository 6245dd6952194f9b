/*
 * proto/proto.h — the hsmgate wire protocol: frames, handshake, the call table and one
 * canonical, platform-independent encoding of every PKCS #11 type.
 *
 * Shared by the client module, the gateway and the partition workers. docs/PROTOCOL.md is
 * the normative description; this header is its C binding. All integers on the wire are
 * big-endian; CK_ULONG is always 64 bits on the wire.
 *
 * Conventions (STYLE.md): functions return 0 on success or a negative PROTO_ERR_* code;
 * every reader goes through struct proto_cur, which is bounds-checked, checks a length
 * against its cap before any copy or allocation, and is left unchanged by a failed read.
 * Writers append to a struct proto_buf whose failure is sticky: after one failed put every
 * later put fails too, so a caller may chain puts and check once.
 */
#ifndef HSMGATE_PROTO_H
#define HSMGATE_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include <p11-kit/pkcs11.h>

#define PROTO_WUR __attribute__((warn_unused_result))

/* ---- errors --------------------------------------------------------------------------- */

enum proto_err {
	PROTO_OK = 0,
	PROTO_ERR_TRUNCATED = -1000, /* a read past the end of the input */
	PROTO_ERR_TOO_LARGE = -1001, /* a length or count over its cap */
	PROTO_ERR_TRAILING = -1002,  /* bytes left after the last field */
	PROTO_ERR_BAD_MAGIC = -1003,
	PROTO_ERR_BAD_VERSION = -1004,
	PROTO_ERR_BAD_TYPE = -1005,  /* unknown message type */
	PROTO_ERR_BAD_CALL = -1006,  /* unknown call id, or one never sent on the wire */
	PROTO_ERR_BAD_VALUE = -1007, /* an invalid kind byte, bool, or an embedded NUL */
	PROTO_ERR_NOMEM = -1008,
	PROTO_ERR_DEPTH = -1009, /* nested templates deeper than PROTO_MAX_DEPTH */
	PROTO_ERR_SMALL = -1010, /* a reply holds more than the caller's buffer can take */
};

/* A static, human-readable message for a PROTO_ERR_* code (or "unknown error"). */
const char *proto_strerror(int err);

/* ---- limits --------------------------------------------------------------------------- */

#define PROTO_VERSION           1           /* the only version this code speaks */
#define PROTO_MAGIC             0x4847u     /* "HG" */
#define PROTO_LEN_BYTES         4           /* the frame length prefix */
#define PROTO_HDR_BYTES         16          /* length prefix + fixed header */
#define PROTO_MAX_FRAME_DEFAULT (1u << 20)  /* 1 MiB, negotiated in the welcome */
#define PROTO_MAX_FRAME_CAP     (16u << 20) /* no peer may negotiate more */
#define PROTO_MAX_ATTRS         256         /* attributes in one template */
#define PROTO_MAX_DEPTH         2           /* nesting of CKA_*_TEMPLATE values */
#define PROTO_MAX_STRING        4096        /* any string field */
#define PROTO_MAX_ULONGS        65536       /* slot, mechanism and handle lists */

/* ---- writer --------------------------------------------------------------------------- */

struct proto_buf {
	uint8_t *data;
	size_t len;
	size_t cap;
	size_t max; /* 0 = PROTO_MAX_FRAME_CAP; a put that would exceed it fails */
	int failed; /* sticky: the first error of any put (NOMEM, TOO_LARGE, BAD_VALUE ...) */
};

void proto_buf_init(struct proto_buf *b);
/* Wipes (OPENSSL_cleanse) the used bytes — a frame may carry a PIN — and frees. */
void proto_buf_free(struct proto_buf *b);
/* Wipes the used bytes and sets len to 0; keeps the allocation; clears `failed`. */
void proto_buf_reset(struct proto_buf *b);

int proto_put_u8(struct proto_buf *b, uint8_t v) PROTO_WUR;
int proto_put_u16(struct proto_buf *b, uint16_t v) PROTO_WUR;
int proto_put_u32(struct proto_buf *b, uint32_t v) PROTO_WUR;
int proto_put_u64(struct proto_buf *b, uint64_t v) PROTO_WUR;
/* CK_ULONG as u64; CK_UNAVAILABLE_INFORMATION ((CK_ULONG)-1) becomes UINT64_MAX. */
int proto_put_ulong(struct proto_buf *b, CK_ULONG v) PROTO_WUR;
/* Raw bytes, no length prefix (fixed-size fields). */
int proto_put_raw(struct proto_buf *b, const void *p, size_t len) PROTO_WUR;
/* u32 length + bytes. */
int proto_put_bytes(struct proto_buf *b, const void *p, size_t len) PROTO_WUR;
/* u32 length + bytes of a NUL-terminated string (the NUL is not sent). */
int proto_put_string(struct proto_buf *b, const char *s) PROTO_WUR;

/* ---- reader --------------------------------------------------------------------------- */

struct proto_cur {
	const uint8_t *p;
	size_t len; /* bytes remaining */
};

void proto_cur_init(struct proto_cur *c, const void *p, size_t len);
int proto_get_u8(struct proto_cur *c, uint8_t *v) PROTO_WUR;
int proto_get_u16(struct proto_cur *c, uint16_t *v) PROTO_WUR;
int proto_get_u32(struct proto_cur *c, uint32_t *v) PROTO_WUR;
int proto_get_u64(struct proto_cur *c, uint64_t *v) PROTO_WUR;
/* u64 into CK_ULONG; UINT64_MAX becomes CK_UNAVAILABLE_INFORMATION; a value that does not
 * fit CK_ULONG (32-bit platforms) is PROTO_ERR_BAD_VALUE. */
int proto_get_ulong(struct proto_cur *c, CK_ULONG *v) PROTO_WUR;
int proto_get_raw(struct proto_cur *c, void *out, size_t len) PROTO_WUR;
/* u32 length + bytes, returned as a pointer into the input (no copy); len <= cap. */
int proto_get_bytes_ref(struct proto_cur *c, const uint8_t **p, size_t *len, size_t cap) PROTO_WUR;
/* u32 length + bytes copied into out[outsz] and NUL-terminated; refuses len >= outsz and
 * embedded NULs. */
int proto_get_string(struct proto_cur *c, char *out, size_t outsz) PROTO_WUR;
/* PROTO_ERR_TRAILING unless every byte was consumed. */
int proto_cur_end(const struct proto_cur *c) PROTO_WUR;

/* ---- arena: the allocations of one decoded message, freed (and wiped) together --------- */

struct proto_arena;
struct proto_arena *proto_arena_new(void);
/* Zeroed memory living until proto_arena_free/reset; NULL on exhaustion. n == 0 is valid. */
void *proto_arena_alloc(struct proto_arena *a, size_t n);
void proto_arena_reset(struct proto_arena *a); /* wipes and frees all blocks, keeps `a` */
void proto_arena_free(struct proto_arena *a);  /* wipes and frees everything; NULL is a no-op */

/* ---- frames --------------------------------------------------------------------------- */
/*
 * Frame: u32 length (bytes after this field, >= 12) | u16 magic "HG" | u8 version |
 *        u8 type | u16 call | u16 flags | u32 request id | body
 */
enum proto_msg {
	PROTO_MSG_HELLO = 1,   /* client → gateway, first frame; body: struct proto_hello */
	PROTO_MSG_WELCOME = 2, /* gateway → client; body: struct proto_welcome */
	PROTO_MSG_REQUEST = 3, /* a PKCS #11 call; `call` names it */
	PROTO_MSG_REPLY = 4,   /* its reply: u64 CK_RV, then the response fields (see below) */
	PROTO_MSG_ERROR = 5,   /* gateway error: u32 enum proto_gwerr, string message. With
	                        * request id 0 it concerns the connection, which then closes. */
	PROTO_MSG_PING = 6,    /* empty body; answered by PONG with the same request id */
	PROTO_MSG_PONG = 7,
};

enum proto_gwerr {
	PROTO_GWERR_AUTH = 1,      /* authentication failed */
	PROTO_GWERR_VERSION = 2,   /* no common protocol version */
	PROTO_GWERR_MALFORMED = 3, /* a frame failed to decode */
	PROTO_GWERR_TOO_LARGE = 4, /* a frame over the negotiated maximum */
	PROTO_GWERR_LIMIT = 5,     /* too many connections or calls in flight */
	PROTO_GWERR_SHUTDOWN = 6,  /* the gateway is stopping */
	PROTO_GWERR_INTERNAL = 7,
	PROTO_GWERR_UNAVAILABLE = 8, /* the partition's worker is not running */
};

struct proto_hdr {
	uint32_t body_len; /* bytes after the 16-byte header */
	uint8_t version;
	uint8_t type;
	uint16_t call;
	uint16_t flags;
	uint32_t req_id;
};

/* Decodes the first PROTO_HDR_BYTES of `p`. Checks magic, version (== PROTO_VERSION, except
 * that a HELLO may carry any version so the handshake can answer it), type, and that the
 * whole frame (PROTO_HDR_BYTES + body_len) is <= max_frame: PROTO_ERR_TOO_LARGE otherwise,
 * decided from the header alone so a reader never buffers an oversized frame.
 * avail < PROTO_HDR_BYTES is PROTO_ERR_TRUNCATED. */
int proto_hdr_decode(const uint8_t *p, size_t avail, size_t max_frame,
                     struct proto_hdr *h) PROTO_WUR;

/* Starts a frame in `b` (which should be empty): writes a header with a placeholder
 * length. proto_frame_finish() patches the length; it fails if b->failed. */
int proto_frame_begin(struct proto_buf *b, enum proto_msg type, uint16_t call, uint16_t flags,
                      uint32_t req_id) PROTO_WUR;
int proto_frame_finish(struct proto_buf *b) PROTO_WUR;

/* ---- handshake ------------------------------------------------------------------------ */

enum proto_cred {
	PROTO_CRED_CERT = 1,   /* the TLS client certificate identifies the caller */
	PROTO_CRED_APIKEY = 2, /* an API key in the hello */
};

struct proto_hello {
	uint8_t min_version;
	uint8_t max_version;
	uint8_t cred;         /* enum proto_cred */
	char client_name[64]; /* e.g. "libhsmgate-pkcs11" */
	char client_version[32];
	char api_key[256]; /* secret: wipe after use; empty unless cred == APIKEY */
};
/* body: u8 min | u8 max | u8 cred | string name | string version | string api_key */
int proto_hello_put(struct proto_buf *b, const struct proto_hello *h) PROTO_WUR;
int proto_hello_get(struct proto_cur *c, struct proto_hello *h) PROTO_WUR;

struct proto_welcome {
	uint8_t version;
	char gateway_id[64];
	char principal[256]; /* who the gateway took the caller to be */
	uint32_t max_frame;
	uint32_t max_inflight;
	uint64_t conn_id;
};
/* body: u8 version | string gateway_id | string principal | u32 max_frame |
 *       u32 max_inflight | u64 conn_id */
int proto_welcome_put(struct proto_buf *b, const struct proto_welcome *w) PROTO_WUR;
int proto_welcome_get(struct proto_cur *c, struct proto_welcome *w) PROTO_WUR;

/* ERROR body: u32 code | string message (<= 512 bytes). */
int proto_gwerror_put(struct proto_buf *b, uint32_t code, const char *msg) PROTO_WUR;
int proto_gwerror_get(struct proto_cur *c, uint32_t *code, char *msg, size_t msgsz) PROTO_WUR;

/* ---- the call table ------------------------------------------------------------------- */
/*
 * Call ids are the positions of the functions in CK_FUNCTION_LIST (v2.40), starting at 1.
 * They are append-only. tests/proto/test_calls.c checks proto_calls[i].id == i.
 */
enum proto_call {
	PROTO_CALL_NONE = 0,
	PROTO_CALL_C_Initialize,
	PROTO_CALL_C_Finalize,
	PROTO_CALL_C_GetInfo,
	PROTO_CALL_C_GetFunctionList,
	PROTO_CALL_C_GetSlotList,
	PROTO_CALL_C_GetSlotInfo,
	PROTO_CALL_C_GetTokenInfo,
	PROTO_CALL_C_GetMechanismList,
	PROTO_CALL_C_GetMechanismInfo,
	PROTO_CALL_C_InitToken,
	PROTO_CALL_C_InitPIN,
	PROTO_CALL_C_SetPIN,
	PROTO_CALL_C_OpenSession,
	PROTO_CALL_C_CloseSession,
	PROTO_CALL_C_CloseAllSessions,
	PROTO_CALL_C_GetSessionInfo,
	PROTO_CALL_C_GetOperationState,
	PROTO_CALL_C_SetOperationState,
	PROTO_CALL_C_Login,
	PROTO_CALL_C_Logout,
	PROTO_CALL_C_CreateObject,
	PROTO_CALL_C_CopyObject,
	PROTO_CALL_C_DestroyObject,
	PROTO_CALL_C_GetObjectSize,
	PROTO_CALL_C_GetAttributeValue,
	PROTO_CALL_C_SetAttributeValue,
	PROTO_CALL_C_FindObjectsInit,
	PROTO_CALL_C_FindObjects,
	PROTO_CALL_C_FindObjectsFinal,
	PROTO_CALL_C_EncryptInit,
	PROTO_CALL_C_Encrypt,
	PROTO_CALL_C_EncryptUpdate,
	PROTO_CALL_C_EncryptFinal,
	PROTO_CALL_C_DecryptInit,
	PROTO_CALL_C_Decrypt,
	PROTO_CALL_C_DecryptUpdate,
	PROTO_CALL_C_DecryptFinal,
	PROTO_CALL_C_DigestInit,
	PROTO_CALL_C_Digest,
	PROTO_CALL_C_DigestUpdate,
	PROTO_CALL_C_DigestKey,
	PROTO_CALL_C_DigestFinal,
	PROTO_CALL_C_SignInit,
	PROTO_CALL_C_Sign,
	PROTO_CALL_C_SignUpdate,
	PROTO_CALL_C_SignFinal,
	PROTO_CALL_C_SignRecoverInit,
	PROTO_CALL_C_SignRecover,
	PROTO_CALL_C_VerifyInit,
	PROTO_CALL_C_Verify,
	PROTO_CALL_C_VerifyUpdate,
	PROTO_CALL_C_VerifyFinal,
	PROTO_CALL_C_VerifyRecoverInit,
	PROTO_CALL_C_VerifyRecover,
	PROTO_CALL_C_DigestEncryptUpdate,
	PROTO_CALL_C_DecryptDigestUpdate,
	PROTO_CALL_C_SignEncryptUpdate,
	PROTO_CALL_C_DecryptVerifyUpdate,
	PROTO_CALL_C_GenerateKey,
	PROTO_CALL_C_GenerateKeyPair,
	PROTO_CALL_C_WrapKey,
	PROTO_CALL_C_UnwrapKey,
	PROTO_CALL_C_DeriveKey,
	PROTO_CALL_C_SeedRandom,
	PROTO_CALL_C_GenerateRandom,
	PROTO_CALL_C_GetFunctionStatus,
	PROTO_CALL_C_CancelFunction,
	PROTO_CALL_C_WaitForSlotEvent,
	PROTO_CALL_COUNT
};

/* How the gateway routes a request (flags of struct proto_call_info). */
#define PROTO_CF_LOCAL         0x01u /* answered by the client module; never on the wire */
#define PROTO_CF_ROUTE_GATEWAY 0x02u /* answered by the gateway itself */
#define PROTO_CF_ROUTE_SLOT    0x04u /* first request field is a CK_SLOT_ID */
#define PROTO_CF_ROUTE_SESSION 0x08u /* first request field is a CK_SESSION_HANDLE */
#define PROTO_CF_SECRET_IN     0x10u /* the request carries a PIN or key material */
#define PROTO_CF_SECRET_OUT    0x20u /* the reply may carry key material or plaintext */
#define PROTO_CF_STATE         0x40u /* changes token state (audit writes `pending` first) */
/* What a call does to a session's cryptographic operation (client deferred inits, the
 * workers' calls answered later): begins one that the session's next calls of the same
 * action continue (C_SignInit ...), or is a whole single-part one (C_Sign ...). */
#define PROTO_CF_OP_INIT    0x80u
#define PROTO_CF_OP_ONESHOT 0x100u
/* Continues the operation an init began, touching nothing else: the updates and finals of
 * encryption, decryption, digests, signatures and verification, and the dual-function
 * updates (not C_DigestKey, which reads a key object). */
#define PROTO_CF_OP_PART 0x1000u
/* Uses nothing of the token but its own session and random number generator
 * (C_GenerateRandom, C_SeedRandom): may go ahead of calls out on other sessions. */
#define PROTO_CF_OWN_SESSION 0x2000u
/* Reads objects and changes nothing but its own session's search (C_GetAttributeValue,
 * C_GetObjectSize, C_FindObjectsInit, C_FindObjects, C_FindObjectsFinal): may go ahead of
 * calls out on other sessions. */
#define PROTO_CF_READ_OBJECTS 0x4000u
/* Makes a new key (C_GenerateKey, C_GenerateKeyPair): reads its session and login state,
 * changes nothing but the objects it adds (the workers' calls answered later). */
#define PROTO_CF_KEYGEN 0x200u
/* Changes what other connections' calls may be using (the workers' calls answered later:
 * such a call waits for every call out): an object's existence or attributes, the token or
 * its PINs (SHARED); in a vendor module, whose login and sessions belong to the one
 * application the worker is, also the login or all sessions (VENDOR_SHARED). */
#define PROTO_CF_SHARED        0x400u
#define PROTO_CF_VENDOR_SHARED 0x800u

/*
 * Layout strings name the fields of a request and of a reply (after the CK_RV), one letter
 * each, in order (docs/PROTOCOL.md has the table):
 *   u CK_ULONG            b CK_BBOOL / CK_BYTE      y input bytes (nullable)
 *   o output-buffer request (NULL or capacity)      O output-buffer reply
 *   a attribute template with values               A GetAttributeValue request template
 *   Q GetAttributeValue reply template              M mechanism with typed parameter
 *   l ulong-array request (NULL or capacity)        L ulong-array reply
 *   I CK_INFO  S CK_SLOT_INFO  T CK_TOKEN_INFO  N CK_SESSION_INFO  m CK_MECHANISM_INFO
 */
struct proto_call_info {
	uint16_t id;
	const char *name;   /* "C_Sign" */
	const char *req;    /* request layout */
	const char *resp;   /* reply layout (after the CK_RV) */
	const char *action; /* the policy action, e.g. "hsm.crypto.sign" */
	uint32_t flags;     /* PROTO_CF_* */
};

extern const struct proto_call_info proto_calls[PROTO_CALL_COUNT];

/* The entry for `id`, or NULL when id is 0 or >= PROTO_CALL_COUNT. */
const struct proto_call_info *proto_call_get(unsigned id);

/* Whether a reply with `rv` carries the response fields: CKR_OK and CKR_BUFFER_TOO_SMALL
 * always; for C_GetAttributeValue also CKR_ATTRIBUTE_SENSITIVE and
 * CKR_ATTRIBUTE_TYPE_INVALID (PKCS #11 v2.40 §5.7: the template is still filled in). */
int proto_reply_has_fields(unsigned call, CK_RV rv);

/* Session handles name their slot so the gateway can route without state:
 * handle = slot << 24 | n, with 1 <= n <= 0xffffff and slot <= 0xff. */
#define PROTO_SESSION_SLOT_SHIFT 24
static inline CK_SLOT_ID
proto_session_slot(CK_SESSION_HANDLE h)
{
	return (CK_SLOT_ID)((h >> PROTO_SESSION_SLOT_SHIFT) & 0xffu);
}
static inline CK_SESSION_HANDLE
proto_session_make(CK_SLOT_ID slot, uint32_t n)
{
	return ((CK_SESSION_HANDLE)(slot & 0xffu) << PROTO_SESSION_SLOT_SHIFT) | (n & 0xffffffu);
}

/* ---- PKCS #11 types ------------------------------------------------------------------- */

/* Input bytes ('y'): u8 present | [u32 len | bytes]. NULL with len 0 is "absent". */
int proto_put_inbytes(struct proto_buf *b, const CK_BYTE *p, CK_ULONG len) PROTO_WUR;
/* *p is NULL when absent (then *len is 0), otherwise points into the input. */
int proto_get_inbytes(struct proto_cur *c, const CK_BYTE **p, CK_ULONG *len, size_t cap) PROTO_WUR;

/*
 * Output buffers ('o' / 'O') carry the PKCS #11 size-query convention exactly (v2.40 §5.2):
 * a NULL buffer asks for the length; a buffer of capacity N gets the data if it fits, else
 * CKR_BUFFER_TOO_SMALL and the length. A zero-capacity buffer is not a NULL buffer.
 *   request: u8 has_buffer | [u64 capacity]
 *   reply:   u8 has_data | (has_data ? u32 len | bytes : u64 length)
 */
int proto_put_outbuf_req(struct proto_buf *b, const CK_BYTE *buf, CK_ULONG capacity) PROTO_WUR;
int proto_get_outbuf_req(struct proto_cur *c, int *has_buffer, CK_ULONG *capacity) PROTO_WUR;
/* data == NULL sends the length only. */
int proto_put_outbuf_reply(struct proto_buf *b, const CK_BYTE *data, CK_ULONG len) PROTO_WUR;
/* Client side: copies into the application's buf (may be NULL) of capacity *len_io and sets
 * *len_io. Data longer than the capacity the client asked for is PROTO_ERR_SMALL. */
int proto_get_outbuf_reply(struct proto_cur *c, CK_BYTE *buf, CK_ULONG *len_io) PROTO_WUR;

/* ulong arrays ('l' / 'L'), e.g. C_GetSlotList, C_GetMechanismList:
 *   request: u8 has_buffer | [u64 capacity]
 *   reply:   u64 count | u8 has_list | [u64 × count]   (count <= PROTO_MAX_ULONGS) */
int proto_put_ulongs_req(struct proto_buf *b, const CK_ULONG *buf, CK_ULONG capacity) PROTO_WUR;
int proto_get_ulongs_req(struct proto_cur *c, int *has_buffer, CK_ULONG *capacity) PROTO_WUR;
int proto_put_ulongs_reply(struct proto_buf *b, const CK_ULONG *list, CK_ULONG count) PROTO_WUR;
/* Client side, as proto_get_outbuf_reply. */
int proto_get_ulongs_reply(struct proto_cur *c, CK_ULONG *buf, CK_ULONG *count_io) PROTO_WUR;

/* How an attribute's value is encoded, from the attribute registry (attr.c). */
enum proto_av {
	PROTO_AV_NONE = 0,     /* pValue NULL: u64 ulValueLen follows */
	PROTO_AV_BOOL = 1,     /* u8 */
	PROTO_AV_ULONG = 2,    /* u64 */
	PROTO_AV_BYTES = 3,    /* u32 len | bytes */
	PROTO_AV_TEMPLATE = 4, /* a nested template (CKA_WRAP_TEMPLATE ...) */
	PROTO_AV_MECHS = 5,    /* u32 count | u64 × count (CKA_ALLOWED_MECHANISMS) */
	PROTO_AV_DATE = 6,     /* 8 raw bytes (CK_DATE) */
};
/* The registered kind of attribute `type`; for unknown types PROTO_AV_TEMPLATE when
 * CKF_ARRAY_ATTRIBUTE is set (a vendor's array attribute holds pointers, which must never
 * travel as bytes), PROTO_AV_BYTES otherwise. */
enum proto_av proto_attr_kind(CK_ATTRIBUTE_TYPE type);
/* "CKA_LABEL", or NULL when unknown. Likewise for mechanisms and return values. */
const char *proto_attr_name(CK_ATTRIBUTE_TYPE type);
const char *proto_mech_name(CK_MECHANISM_TYPE type);
const char *proto_rv_name(CK_RV rv);

/*
 * Templates with values ('a'): u32 count | per attribute: u64 type | u8 kind | value.
 * The encoder uses the registered kind when the value's length matches it (1 for BOOL,
 * sizeof(CK_ULONG) for ULONG ...), and BYTES otherwise, so the token — not the wire —
 * decides that a wrong-length value is CKR_ATTRIBUTE_VALUE_INVALID. Nested templates and
 * mechanism lists travel as element counts, never as platform byte sizes. A decoder
 * accepts for an attribute its registered kind, NONE, or BYTES — never BYTES for a
 * TEMPLATE-kind attribute, and never TEMPLATE for another kind (PROTO_ERR_BAD_VALUE).
 * Nesting: a template value inside a template value is depth 2; depth 3 is PROTO_ERR_DEPTH.
 */
int proto_put_template(struct proto_buf *b, const CK_ATTRIBUTE *t, CK_ULONG n) PROTO_WUR;
/* Decodes into native CK_ATTRIBUTEs allocated in `a` (values too). */
int proto_get_template(struct proto_cur *c, struct proto_arena *a, CK_ATTRIBUTE **t,
                       CK_ULONG *n) PROTO_WUR;

/*
 * C_GetAttributeValue ('A' request, 'Q' reply).
 *   request: u32 count | per attribute: u64 type | u8 has_buffer | u64 capacity
 *            (capacity in units of the registered kind: elements for ULONG, MECHS and
 *            TEMPLATE, bytes otherwise; 0 without a buffer) and, for a TEMPLATE-kind
 *            attribute with a buffer, `capacity` nested entries of the same form (the
 *            query applies to each attribute of the application's array).
 *   reply:   u32 count | per attribute: u64 length (UINT64_MAX = unavailable, else in the
 *            units above) | u8 kind | value (kind NONE when no value is returned). A
 *            TEMPLATE value is u32 n | n × (u64 type | entry as here).
 * The server decodes the request into a template whose pValue are NULL or buffers of the
 * asked capacity (in `a`; a capacity over PROTO_MAX_FRAME_CAP bytes is clamped to it, since
 * no reply could carry more), runs the call, and sends back what it filled in.
 * proto_get_attrreply checks the whole reply before it writes anything, mirrors v2.40 §5.7
 * (length only, CK_UNAVAILABLE_INFORMATION, or the value), writes nested template values
 * into the application's nested arrays in place, and never writes more than an attribute's
 * ulValueLen: a value that does not fit is PROTO_ERR_SMALL.
 */
int proto_put_attrquery(struct proto_buf *b, const CK_ATTRIBUTE *t, CK_ULONG n) PROTO_WUR;
int proto_get_attrquery(struct proto_cur *c, struct proto_arena *a, CK_ATTRIBUTE **t,
                        CK_ULONG *n) PROTO_WUR;
int proto_put_attrreply(struct proto_buf *b, const CK_ATTRIBUTE *t, CK_ULONG n) PROTO_WUR;
/* Client side: fills the application's template (same count and order as the query). */
int proto_get_attrreply(struct proto_cur *c, CK_ATTRIBUTE *t, CK_ULONG n) PROTO_WUR;

/*
 * Mechanisms ('M'): u64 type | u8 param kind | parameter. Parameters are typed field by
 * field (never a memcpy of a C struct): none; bytes (IVs, derivation strings); GCM; OAEP;
 * PSS; ECDH1; AES-CTR; ulong (MAC_GENERAL lengths). A mechanism the registry does not know
 * carries its parameter as opaque bytes. A parameter whose length does not match its
 * registered struct is refused by the encoder with PROTO_ERR_BAD_VALUE (the client turns
 * that into CKR_MECHANISM_PARAM_INVALID).
 */
enum proto_mp {
	PROTO_MP_NONE = 0,
	PROTO_MP_BYTES = 1,
	PROTO_MP_GCM = 2,   /* bytes iv | u64 iv_bits | bytes aad | u64 tag_bits */
	PROTO_MP_OAEP = 3,  /* u64 hash | u64 mgf | u64 source | bytes source_data */
	PROTO_MP_PSS = 4,   /* u64 hash | u64 mgf | u64 salt_len */
	PROTO_MP_ECDH1 = 5, /* u64 kdf | bytes shared_data | bytes public_data */
	PROTO_MP_CTR = 6,   /* u64 counter_bits | 16 raw bytes cb */
	PROTO_MP_ULONG = 7, /* u64 */
};
enum proto_mp proto_mech_param_kind(CK_MECHANISM_TYPE type);
int proto_put_mechanism(struct proto_buf *b, const CK_MECHANISM *m) PROTO_WUR;
/* The mechanism's shape: the same encoding with every byte string of the parameter (IV,
 * AAD, OAEP label, ECDH data, CTR counter block) replaced by its length. It names what a
 * token checks when an operation is initialised, without what changes from call to call.
 * Never sent; the client module compares shapes to know which inits succeeded before. */
int proto_put_mechanism_shape(struct proto_buf *b, const CK_MECHANISM *m) PROTO_WUR;
/* Decodes into *m with the parameter (a native struct) allocated in `a`. */
int proto_get_mechanism(struct proto_cur *c, struct proto_arena *a, CK_MECHANISM *m) PROTO_WUR;

/* Info structures: every field in declaration order, fixed-size character arrays as raw
 * bytes, CK_VERSION as two u8, CK_ULONG as u64. */
int proto_put_info(struct proto_buf *b, const CK_INFO *v) PROTO_WUR;
int proto_get_info(struct proto_cur *c, CK_INFO *v) PROTO_WUR;
int proto_put_slot_info(struct proto_buf *b, const CK_SLOT_INFO *v) PROTO_WUR;
int proto_get_slot_info(struct proto_cur *c, CK_SLOT_INFO *v) PROTO_WUR;
int proto_put_token_info(struct proto_buf *b, const CK_TOKEN_INFO *v) PROTO_WUR;
int proto_get_token_info(struct proto_cur *c, CK_TOKEN_INFO *v) PROTO_WUR;
int proto_put_session_info(struct proto_buf *b, const CK_SESSION_INFO *v) PROTO_WUR;
int proto_get_session_info(struct proto_cur *c, CK_SESSION_INFO *v) PROTO_WUR;
int proto_put_mech_info(struct proto_buf *b, const CK_MECHANISM_INFO *v) PROTO_WUR;
int proto_get_mech_info(struct proto_cur *c, CK_MECHANISM_INFO *v) PROTO_WUR;

/* ---- gateway ↔ worker IPC ------------------------------------------------------------- */
/*
 * Over a SOCK_STREAM socketpair: u32 length (bytes after this field) | u8 kind |
 * u64 conn_id | body. REQUEST bodies are the caller context then the client's frame
 * unchanged; REPLY bodies are a complete client frame the gateway forwards as is.
 */
enum proto_ipc {
	PROTO_IPC_REQUEST = 1,     /* gateway → worker */
	PROTO_IPC_REPLY = 2,       /* worker → gateway */
	PROTO_IPC_CONN_CLOSED = 3, /* gateway → worker: drop the connection's sessions; no body */
	PROTO_IPC_AUDIT = 4,       /* worker → gateway: an event for audit/ (body: JSON) */
	PROTO_IPC_POLICY = 5, /* gateway → worker: the policy file's bytes (empty: none), sent
	                       * at the worker's start and after every successful reload */
};
#define PROTO_IPC_HDR_BYTES 13

struct proto_ctx {
	uint8_t cred;        /* enum proto_cred */
	char principal[256]; /* tenant/<t>/user/<name> */
	char tenant[64];
	char source[64]; /* the peer's address, "127.0.0.1:51234" */
	uint32_t ngroups;
	char groups[8][64];
};
/* ctx: u8 cred | string principal | string tenant | string source | u32 n | string × n */
int proto_ctx_put(struct proto_buf *b, const struct proto_ctx *x) PROTO_WUR;
int proto_ctx_get(struct proto_cur *c, struct proto_ctx *x) PROTO_WUR;
/* The address part of a context's `source`, without its port, for policy conditions and
 * audit: "127.0.0.1:5123" gives "127.0.0.1", "[::1]:5123" gives "::1"; a string without a
 * port is copied as is. Truncated to fit out[outsz] (outsz > 0). */
void proto_source_ip(const char *source, char *out, size_t outsz);

/* Writes the IPC header (with a placeholder length) into an empty `b`;
 * proto_ipc_finish() patches the length. */
int proto_ipc_begin(struct proto_buf *b, enum proto_ipc kind, uint64_t conn_id) PROTO_WUR;
int proto_ipc_finish(struct proto_buf *b) PROTO_WUR;
/* Decodes an IPC header from `p` (avail bytes): PROTO_ERR_TRUNCATED when avail is short of
 * PROTO_IPC_HDR_BYTES; PROTO_ERR_TOO_LARGE when the message would exceed max. *body_len is
 * the number of bytes after the header. */
int proto_ipc_hdr_decode(const uint8_t *p, size_t avail, size_t max, uint8_t *kind,
                         uint64_t *conn_id, uint32_t *body_len) PROTO_WUR;

/* ---- layout skimming (added with the implementation; not in the first draft) --------- */

/*
 * Decodes, and discards, the fields named by `layout` (a request or reply layout string of
 * struct proto_call_info) from `c`, with any allocation in `a` (reset it afterwards). Used by
 * the gateway to check a request in full before it forwards it, and by the fuzz target.
 * Does not require the cursor to be empty afterwards: call proto_cur_end() for that.
 * Errors: any decoder's; PROTO_ERR_BAD_VALUE for an unknown letter or NULL layout/arena. A
 * failure leaves `c` unchanged.
 */
int proto_layout_skim(struct proto_cur *c, const char *layout, struct proto_arena *a) PROTO_WUR;

/* ---- busy polling: how long a waiter for a reply polls before it sleeps ----------------- */

/*
 * On a VM whose idle vCPUs halt, waking a process that sleeps in poll(2) costs more than a
 * short call (docs/PERFORMANCE.md, "Busy polling"). A thread that waits for a reply it
 * expects soon may first poll without blocking for up to proto_spin_budget() ns, and then
 * tells proto_spin_learn() how long the wait took in all. The budget adapts the way Linux's
 * haltpoll cpuidle governor does: a wait that ended after the budget but within max_us
 * grows it (doubling, from a quarter of max), a wait longer than max_us halves it (to 0
 * below a quarter), so a caller of slow operations (an RSA signature, a disk sync) soon
 * stops polling. max_us 0: never.
 */
struct proto_spin {
	uint64_t max_ns;
	uint64_t budget_ns;
};

void proto_spin_init(struct proto_spin *sp, uint32_t max_us);
static inline uint64_t
proto_spin_budget(const struct proto_spin *sp)
{
	return sp->budget_ns;
}
void proto_spin_learn(struct proto_spin *sp, uint64_t waited_ns);
/* CLOCK_MONOTONIC in ns. */
uint64_t proto_now_ns(void);

#endif /* HSMGATE_PROTO_H */
