/*
 * audit/event.c — the event builder and its single-line CADF / Activity Tracker JSON.
 *
 * The JSON is written by hand, in one fixed field order, so that the bytes are stable
 * and cheap: they are what the log hashes and what a SIEM receives. Redaction is by
 * type: every setter takes an identity, a name, an enum or a number; there is no setter
 * through which a PIN, key value, plaintext or IV could reach an event.
 */
#include "audit/aud_int.h"

#include <arpa/inet.h>
#include <p11-kit/pkcs11.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EV_MAX_INFO 8

struct ev_info {
	char name[32];
	int is_num;
	uint64_t num;
	char *str;
};

struct aud_event {
	char object[64];
	char verb[32];
	uint64_t time_ns;
	int outcome; /* -1: derived from the CK_RV, else success */
	int severity;
	int has_rv;
	unsigned long rv;
	char *init_id, *init_name, *init_addr;
	int init_kind, cred, has_init;
	char *tgt_id, *tgt_name;
	int tgt_kind;
	int has_mech;
	unsigned long mech;
	unsigned long attrs[AUD_MAX_ATTRS];
	size_t nattrs;
	int has_len;
	uint64_t in_len, out_len;
	char *key_id;
	int has_corr;
	uint64_t conn;
	uint32_t req;
	int pol;
	char *sids[AUD_MAX_SIDS];
	size_t nsids;
	int has_lat;
	uint64_t lat;
	char *source;
	int data_event;
	char *detail;
	struct ev_info info[EV_MAX_INFO];
	size_t ninfo;
};

/* ---- name tables ---------------------------------------------------------------------- */

struct name {
	unsigned long v;
	const char *s;
};

#define N(x)                                                                                       \
	{                                                                                          \
		x, #x                                                                              \
	}
static const struct name ckr_names[] = {
        N(CKR_OK),
        N(CKR_CANCEL),
        N(CKR_HOST_MEMORY),
        N(CKR_SLOT_ID_INVALID),
        N(CKR_GENERAL_ERROR),
        N(CKR_FUNCTION_FAILED),
        N(CKR_ARGUMENTS_BAD),
        N(CKR_NO_EVENT),
        N(CKR_NEED_TO_CREATE_THREADS),
        N(CKR_CANT_LOCK),
        N(CKR_ATTRIBUTE_READ_ONLY),
        N(CKR_ATTRIBUTE_SENSITIVE),
        N(CKR_ATTRIBUTE_TYPE_INVALID),
        N(CKR_ATTRIBUTE_VALUE_INVALID),
        N(CKR_ACTION_PROHIBITED),
        N(CKR_DATA_INVALID),
        N(CKR_DATA_LEN_RANGE),
        N(CKR_DEVICE_ERROR),
        N(CKR_DEVICE_MEMORY),
        N(CKR_DEVICE_REMOVED),
        N(CKR_ENCRYPTED_DATA_INVALID),
        N(CKR_ENCRYPTED_DATA_LEN_RANGE),
        N(CKR_FUNCTION_CANCELED),
        N(CKR_FUNCTION_NOT_PARALLEL),
        N(CKR_FUNCTION_NOT_SUPPORTED),
        N(CKR_KEY_HANDLE_INVALID),
        N(CKR_KEY_SIZE_RANGE),
        N(CKR_KEY_TYPE_INCONSISTENT),
        N(CKR_KEY_NOT_NEEDED),
        N(CKR_KEY_CHANGED),
        N(CKR_KEY_NEEDED),
        N(CKR_KEY_INDIGESTIBLE),
        N(CKR_KEY_FUNCTION_NOT_PERMITTED),
        N(CKR_KEY_NOT_WRAPPABLE),
        N(CKR_KEY_UNEXTRACTABLE),
        N(CKR_MECHANISM_INVALID),
        N(CKR_MECHANISM_PARAM_INVALID),
        N(CKR_OBJECT_HANDLE_INVALID),
        N(CKR_OPERATION_ACTIVE),
        N(CKR_OPERATION_NOT_INITIALIZED),
        N(CKR_PIN_INCORRECT),
        N(CKR_PIN_INVALID),
        N(CKR_PIN_LEN_RANGE),
        N(CKR_PIN_EXPIRED),
        N(CKR_PIN_LOCKED),
        N(CKR_SESSION_CLOSED),
        N(CKR_SESSION_COUNT),
        N(CKR_SESSION_HANDLE_INVALID),
        N(CKR_SESSION_PARALLEL_NOT_SUPPORTED),
        N(CKR_SESSION_READ_ONLY),
        N(CKR_SESSION_EXISTS),
        N(CKR_SESSION_READ_ONLY_EXISTS),
        N(CKR_SESSION_READ_WRITE_SO_EXISTS),
        N(CKR_SIGNATURE_INVALID),
        N(CKR_SIGNATURE_LEN_RANGE),
        N(CKR_TEMPLATE_INCOMPLETE),
        N(CKR_TEMPLATE_INCONSISTENT),
        N(CKR_TOKEN_NOT_PRESENT),
        N(CKR_TOKEN_NOT_RECOGNIZED),
        N(CKR_TOKEN_WRITE_PROTECTED),
        N(CKR_UNWRAPPING_KEY_HANDLE_INVALID),
        N(CKR_UNWRAPPING_KEY_SIZE_RANGE),
        N(CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT),
        N(CKR_USER_ALREADY_LOGGED_IN),
        N(CKR_USER_NOT_LOGGED_IN),
        N(CKR_USER_PIN_NOT_INITIALIZED),
        N(CKR_USER_TYPE_INVALID),
        N(CKR_USER_ANOTHER_ALREADY_LOGGED_IN),
        N(CKR_USER_TOO_MANY_TYPES),
        N(CKR_WRAPPED_KEY_INVALID),
        N(CKR_WRAPPED_KEY_LEN_RANGE),
        N(CKR_WRAPPING_KEY_HANDLE_INVALID),
        N(CKR_WRAPPING_KEY_SIZE_RANGE),
        N(CKR_WRAPPING_KEY_TYPE_INCONSISTENT),
        N(CKR_RANDOM_SEED_NOT_SUPPORTED),
        N(CKR_RANDOM_NO_RNG),
        N(CKR_DOMAIN_PARAMS_INVALID),
        N(CKR_CURVE_NOT_SUPPORTED),
        N(CKR_BUFFER_TOO_SMALL),
        N(CKR_SAVED_STATE_INVALID),
        N(CKR_INFORMATION_SENSITIVE),
        N(CKR_STATE_UNSAVEABLE),
        N(CKR_CRYPTOKI_NOT_INITIALIZED),
        N(CKR_CRYPTOKI_ALREADY_INITIALIZED),
        N(CKR_MUTEX_BAD),
        N(CKR_MUTEX_NOT_LOCKED),
        N(CKR_FUNCTION_REJECTED),
};

static const struct name ckm_names[] = {
        N(CKM_RSA_PKCS_KEY_PAIR_GEN),
        N(CKM_RSA_PKCS),
        N(CKM_RSA_X_509),
        N(CKM_RSA_PKCS_OAEP),
        N(CKM_RSA_PKCS_PSS),
        N(CKM_SHA1_RSA_PKCS),
        N(CKM_SHA256_RSA_PKCS),
        N(CKM_SHA384_RSA_PKCS),
        N(CKM_SHA512_RSA_PKCS),
        N(CKM_SHA256_RSA_PKCS_PSS),
        N(CKM_SHA384_RSA_PKCS_PSS),
        N(CKM_SHA512_RSA_PKCS_PSS),
        N(CKM_SHA_1),
        N(CKM_SHA256),
        N(CKM_SHA384),
        N(CKM_SHA512),
        N(CKM_SHA256_HMAC),
        N(CKM_SHA384_HMAC),
        N(CKM_SHA512_HMAC),
        N(CKM_GENERIC_SECRET_KEY_GEN),
        N(CKM_EC_KEY_PAIR_GEN),
        N(CKM_ECDSA),
        N(CKM_ECDSA_SHA1),
        N(CKM_ECDSA_SHA256),
        N(CKM_ECDSA_SHA384),
        N(CKM_ECDSA_SHA512),
        N(CKM_ECDH1_DERIVE),
        N(CKM_AES_KEY_GEN),
        N(CKM_AES_ECB),
        N(CKM_AES_CBC),
        N(CKM_AES_CBC_PAD),
        N(CKM_AES_CTR),
        N(CKM_AES_GCM),
        N(CKM_AES_CMAC),
        N(CKM_AES_KEY_WRAP),
        N(CKM_AES_KEY_WRAP_PAD),
};

static const struct name cka_names[] = {
        N(CKA_CLASS),
        N(CKA_TOKEN),
        N(CKA_PRIVATE),
        N(CKA_LABEL),
        N(CKA_APPLICATION),
        N(CKA_VALUE),
        N(CKA_CERTIFICATE_TYPE),
        N(CKA_KEY_TYPE),
        N(CKA_SUBJECT),
        N(CKA_ID),
        N(CKA_SENSITIVE),
        N(CKA_ENCRYPT),
        N(CKA_DECRYPT),
        N(CKA_WRAP),
        N(CKA_UNWRAP),
        N(CKA_SIGN),
        N(CKA_SIGN_RECOVER),
        N(CKA_VERIFY),
        N(CKA_VERIFY_RECOVER),
        N(CKA_DERIVE),
        N(CKA_START_DATE),
        N(CKA_END_DATE),
        N(CKA_MODULUS),
        N(CKA_MODULUS_BITS),
        N(CKA_PUBLIC_EXPONENT),
        N(CKA_VALUE_LEN),
        N(CKA_EXTRACTABLE),
        N(CKA_LOCAL),
        N(CKA_NEVER_EXTRACTABLE),
        N(CKA_ALWAYS_SENSITIVE),
        N(CKA_KEY_GEN_MECHANISM),
        N(CKA_MODIFIABLE),
        N(CKA_COPYABLE),
        N(CKA_DESTROYABLE),
        N(CKA_EC_PARAMS),
        N(CKA_EC_POINT),
        N(CKA_ALWAYS_AUTHENTICATE),
        N(CKA_WRAP_WITH_TRUSTED),
        N(CKA_TRUSTED),
        N(CKA_WRAP_TEMPLATE),
        N(CKA_UNWRAP_TEMPLATE),
        N(CKA_ALLOWED_MECHANISMS),
};
#undef N

/* The name of v in t, or NULL (then the caller writes 0x<hex>). */
static const char *
name_of(const struct name *t, size_t n, unsigned long v)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (t[i].v == v) {
			return t[i].s;
		}
	}
	return NULL;
}

#define NAME_OF(t, v) name_of((t), sizeof(t) / sizeof((t)[0]), (v))

/* AT's reasonCode is an HTTP status; PKCS #11 has none, so map by meaning. */
static unsigned
rv_code(unsigned long rv)
{
	switch (rv) {
	case CKR_OK:
		return 200;
	case CKR_ACTION_PROHIBITED:
	case CKR_KEY_FUNCTION_NOT_PERMITTED:
	case CKR_KEY_UNEXTRACTABLE:
	case CKR_ATTRIBUTE_SENSITIVE:
	case CKR_FUNCTION_REJECTED:
		return 403;
	case CKR_PIN_INCORRECT:
	case CKR_PIN_EXPIRED:
	case CKR_PIN_LOCKED:
	case CKR_USER_NOT_LOGGED_IN:
		return 401;
	case CKR_DEVICE_REMOVED:
	case CKR_TOKEN_NOT_PRESENT:
		return 503;
	case CKR_DEVICE_MEMORY:
		return 507;
	case CKR_ARGUMENTS_BAD:
	case CKR_ATTRIBUTE_TYPE_INVALID:
	case CKR_ATTRIBUTE_VALUE_INVALID:
	case CKR_ATTRIBUTE_READ_ONLY:
	case CKR_DATA_INVALID:
	case CKR_DATA_LEN_RANGE:
	case CKR_KEY_HANDLE_INVALID:
	case CKR_KEY_TYPE_INCONSISTENT:
	case CKR_KEY_SIZE_RANGE:
	case CKR_MECHANISM_INVALID:
	case CKR_MECHANISM_PARAM_INVALID:
	case CKR_OBJECT_HANDLE_INVALID:
	case CKR_SESSION_HANDLE_INVALID:
	case CKR_TEMPLATE_INCOMPLETE:
	case CKR_TEMPLATE_INCONSISTENT:
	case CKR_BUFFER_TOO_SMALL:
	case CKR_SIGNATURE_INVALID:
	case CKR_SIGNATURE_LEN_RANGE:
	case CKR_PIN_INVALID:
	case CKR_PIN_LEN_RANGE:
		return 400;
	default:
		return 500;
	}
}

static const char *
code_phrase(unsigned code)
{
	switch (code) {
	case 200:
		return "OK";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 503:
		return "Service Unavailable";
	case 507:
		return "Insufficient Storage";
	default:
		return "Internal Server Error";
	}
}

/* ---- validation ----------------------------------------------------------------------- */

static int
name_ok(const char *s, size_t cap, int allow_dash)
{
	size_t n = strlen(s), i;

	if (n == 0 || n >= cap) {
		return 0;
	}
	for (i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      (allow_dash && c == '-'))) {
			return 0;
		}
	}
	return 1;
}

/* Copies a string field after checking it; *dst replaced only on success. */
static int
str_set(char **dst, const char *s)
{
	size_t n;
	char *d;

	if (s == NULL) {
		free(*dst);
		*dst = NULL;
		return 0;
	}
	n = strlen(s);
	if (n > AUD_MAX_STRING) {
		return AUD_ERR_TOO_LARGE;
	}
	if (!aud_text_ok(s, n)) {
		return AUD_ERR_INVALID;
	}
	if ((d = strdup(s)) == NULL) {
		return AUD_ERR_NOMEM;
	}
	free(*dst);
	*dst = d;
	return 0;
}

static int
sid_ok(const char *s)
{
	size_t n = strlen(s), i;

	if (n == 0 || n > 64) {
		return 0;
	}
	for (i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-')) {
			return 0;
		}
	}
	return 1;
}

/* ---- builder -------------------------------------------------------------------------- */

int
aud_event_new(struct aud_event **evp, const char *object, const char *verb)
{
	struct aud_event *ev;

	*evp = NULL;
	if (object == NULL || verb == NULL || !name_ok(object, sizeof(ev->object), 1) ||
	    !name_ok(verb, sizeof(ev->verb), 0)) {
		return AUD_ERR_INVALID;
	}
	if ((ev = calloc(1, sizeof(*ev))) == NULL) {
		return AUD_ERR_NOMEM;
	}
	snprintf(ev->object, sizeof(ev->object), "%s", object);
	snprintf(ev->verb, sizeof(ev->verb), "%s", verb);
	ev->time_ns = aud_now_ns();
	ev->outcome = -1;
	*evp = ev;
	return 0;
}

void
aud_event_free(struct aud_event *ev)
{
	size_t i;

	if (ev == NULL) {
		return;
	}
	free(ev->init_id);
	free(ev->init_name);
	free(ev->init_addr);
	free(ev->tgt_id);
	free(ev->tgt_name);
	free(ev->key_id);
	free(ev->source);
	free(ev->detail);
	for (i = 0; i < ev->nsids; i++) {
		free(ev->sids[i]);
	}
	for (i = 0; i < ev->ninfo; i++) {
		free(ev->info[i].str);
	}
	free(ev);
}

int
aud_event_set_time(struct aud_event *ev, uint64_t unix_ns)
{
	ev->time_ns = unix_ns;
	return 0;
}

int
aud_event_set_outcome(struct aud_event *ev, enum aud_outcome o)
{
	switch (o) {
	case AUD_OUTCOME_SUCCESS:
	case AUD_OUTCOME_FAILURE:
	case AUD_OUTCOME_PENDING:
		ev->outcome = (int)o;
		return 0;
	default:
		return AUD_ERR_INVALID;
	}
}

int
aud_event_set_severity(struct aud_event *ev, enum aud_severity s)
{
	switch (s) {
	case AUD_SEVERITY_AUTO:
	case AUD_SEVERITY_NORMAL:
	case AUD_SEVERITY_WARNING:
	case AUD_SEVERITY_CRITICAL:
		ev->severity = (int)s;
		return 0;
	default:
		return AUD_ERR_INVALID;
	}
}

int
aud_event_set_ckrv(struct aud_event *ev, unsigned long ckrv)
{
	ev->has_rv = 1;
	ev->rv = ckrv;
	return 0;
}

int
aud_event_set_initiator(struct aud_event *ev, const char *principal, const char *name,
                        enum aud_initiator_kind kind, enum aud_credential cred, const char *address)
{
	char *id = NULL, *nm = NULL, *ad = NULL;
	unsigned char tmp[16];
	int r;

	switch (kind) {
	case AUD_INITIATOR_USER:
	case AUD_INITIATOR_SERVICE:
	case AUD_INITIATOR_CERT:
	case AUD_INITIATOR_SYSTEM:
		break;
	default:
		return AUD_ERR_INVALID;
	}
	switch (cred) {
	case AUD_CRED_NONE:
	case AUD_CRED_CERTIFICATE:
	case AUD_CRED_APIKEY:
	case AUD_CRED_USER:
	case AUD_CRED_TOKEN:
		break;
	default:
		return AUD_ERR_INVALID;
	}
	if (principal == NULL) {
		return AUD_ERR_INVALID;
	}
	/* Only a real address goes in: this field must not become a free-text channel. */
	if (address != NULL && inet_pton(AF_INET, address, tmp) != 1 &&
	    inet_pton(AF_INET6, address, tmp) != 1) {
		return AUD_ERR_INVALID;
	}
	if ((r = str_set(&id, principal)) != 0 || (r = str_set(&nm, name)) != 0 ||
	    (r = str_set(&ad, address)) != 0) {
		goto out;
	}
	free(ev->init_id);
	free(ev->init_name);
	free(ev->init_addr);
	ev->init_id = id;
	ev->init_name = nm;
	ev->init_addr = ad;
	id = nm = ad = NULL; /* transferred */
	ev->init_kind = (int)kind;
	ev->cred = (int)cred;
	ev->has_init = 1;
	r = 0;
out:
	free(id);
	free(nm);
	free(ad);
	return r;
}

int
aud_event_set_target(struct aud_event *ev, const char *crn, const char *name,
                     enum aud_target_kind kind)
{
	char *id = NULL, *nm = NULL;
	int r;

	switch (kind) {
	case AUD_TARGET_GATEWAY:
	case AUD_TARGET_PARTITION:
	case AUD_TARGET_KEY:
	case AUD_TARGET_SESSION:
	case AUD_TARGET_POLICY:
	case AUD_TARGET_AUDIT:
		break;
	default:
		return AUD_ERR_INVALID;
	}
	if (crn == NULL) {
		return AUD_ERR_INVALID;
	}
	if ((r = str_set(&id, crn)) != 0 || (r = str_set(&nm, name)) != 0) {
		goto out;
	}
	free(ev->tgt_id);
	free(ev->tgt_name);
	ev->tgt_id = id;
	ev->tgt_name = nm;
	id = nm = NULL; /* transferred */
	ev->tgt_kind = (int)kind;
	r = 0;
out:
	free(id);
	free(nm);
	return r;
}

int
aud_event_set_mechanism(struct aud_event *ev, unsigned long ckm)
{
	ev->has_mech = 1;
	ev->mech = ckm;
	return 0;
}

int
aud_event_add_attribute(struct aud_event *ev, unsigned long cka)
{
	if (ev->nattrs >= AUD_MAX_ATTRS) {
		return AUD_ERR_TOO_LARGE;
	}
	ev->attrs[ev->nattrs++] = cka;
	return 0;
}

int
aud_event_set_lengths(struct aud_event *ev, uint64_t in_len, uint64_t out_len)
{
	ev->has_len = 1;
	ev->in_len = in_len;
	ev->out_len = out_len;
	return 0;
}

int
aud_event_set_key_id(struct aud_event *ev, const char *key_ref)
{
	return str_set(&ev->key_id, key_ref);
}

int
aud_event_set_correlation(struct aud_event *ev, uint64_t conn_id, uint32_t request_id)
{
	ev->has_corr = 1;
	ev->conn = conn_id;
	ev->req = request_id;
	return 0;
}

int
aud_event_set_policy(struct aud_event *ev, enum aud_policy_result res, const char *const *sids,
                     size_t nsids)
{
	char *copy[AUD_MAX_SIDS] = {0};
	size_t i;
	int r;

	switch (res) {
	case AUD_POLICY_NONE:
	case AUD_POLICY_ALLOW:
	case AUD_POLICY_DENY:
	case AUD_POLICY_DEFAULT_DENY:
		break;
	default:
		return AUD_ERR_INVALID;
	}
	if (nsids > AUD_MAX_SIDS) {
		return AUD_ERR_TOO_LARGE;
	}
	for (i = 0; i < nsids; i++) {
		if (sids[i] == NULL || !sid_ok(sids[i])) {
			r = AUD_ERR_INVALID;
			goto out;
		}
		if ((copy[i] = strdup(sids[i])) == NULL) {
			r = AUD_ERR_NOMEM;
			goto out;
		}
	}
	for (i = 0; i < ev->nsids; i++) {
		free(ev->sids[i]);
	}
	memcpy(ev->sids, copy, sizeof(copy));
	memset(copy, 0, sizeof(copy)); /* transferred */
	ev->nsids = nsids;
	ev->pol = (int)res;
	r = 0;
out:
	for (i = 0; i < AUD_MAX_SIDS; i++) {
		free(copy[i]);
	}
	return r;
}

int
aud_event_set_latency(struct aud_event *ev, uint64_t usec)
{
	ev->has_lat = 1;
	ev->lat = usec;
	return 0;
}

int
aud_event_set_source(struct aud_event *ev, const char *crn)
{
	return str_set(&ev->source, crn);
}

int
aud_event_set_data_event(struct aud_event *ev, int data_event)
{
	ev->data_event = data_event != 0;
	return 0;
}

int
aud_event_set_detail(struct aud_event *ev, const char *text)
{
	size_t i;

	if (text != NULL) {
		for (i = 0; text[i] != '\0'; i++) {
			if (text[i] < 0x20 || text[i] > 0x7e) {
				return AUD_ERR_INVALID;
			}
		}
	}
	return str_set(&ev->detail, text);
}

static int
info_slot(struct aud_event *ev, const char *name, struct ev_info **slot)
{
	*slot = NULL;
	/* Internal callers only, but the name is written unescaped: keep it a plain word. */
	if (strlen(name) == 0 || strlen(name) >= sizeof(ev->info[0].name) ||
	    strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") !=
	            strlen(name)) {
		return AUD_ERR_INVALID;
	}
	if (ev->ninfo >= EV_MAX_INFO) {
		return AUD_ERR_TOO_LARGE;
	}
	*slot = &ev->info[ev->ninfo];
	return 0;
}

int
aud_event_add_info_u64(struct aud_event *ev, const char *name, uint64_t v)
{
	struct ev_info *s;
	int r;

	if ((r = info_slot(ev, name, &s)) != 0) {
		return r;
	}
	snprintf(s->name, sizeof(s->name), "%s", name);
	s->is_num = 1;
	s->num = v;
	ev->ninfo++;
	return 0;
}

int
aud_event_add_info_str(struct aud_event *ev, const char *name, const char *v)
{
	struct ev_info *s;
	char *copy = NULL;
	int r;

	if ((r = info_slot(ev, name, &s)) != 0 || (r = str_set(&copy, v)) != 0) {
		return r;
	}
	snprintf(s->name, sizeof(s->name), "%s", name);
	s->is_num = 0;
	s->str = copy;
	ev->ninfo++;
	return 0;
}

/* ---- encoding ------------------------------------------------------------------------- */

static const char *
outcome_name(int o)
{
	switch (o) {
	case AUD_OUTCOME_FAILURE:
		return "failure";
	case AUD_OUTCOME_PENDING:
		return "pending";
	default:
		return "success";
	}
}

static const char *
severity_name(int s)
{
	switch (s) {
	case AUD_SEVERITY_WARNING:
		return "warning";
	case AUD_SEVERITY_CRITICAL:
		return "critical";
	default:
		return "normal";
	}
}

/* AT's rules (reference/audit.md §1): some codes override the action's own severity. */
static int
auto_severity(const struct aud_event *ev, unsigned code)
{
	static const char *const critical[] = {"delete",   "destroy", "zeroize", "purge",
	                                       "loadpart", "reset",   "deny",    NULL};
	static const char *const warning[] = {
	        "rotate",       "restore", "enable", "disable", "update",
	        "setattribute", "reload",  "repair", "import",  NULL};
	size_t i;

	switch (code) {
	case 401:
	case 403:
	case 503:
	case 507:
		return AUD_SEVERITY_CRITICAL;
	case 400:
	case 409:
	case 424:
	case 500:
	case 502:
	case 504:
	case 505:
		return AUD_SEVERITY_WARNING;
	default:
		break;
	}
	if (strcmp(ev->object, "masterkey") == 0) {
		return AUD_SEVERITY_CRITICAL;
	}
	for (i = 0; critical[i] != NULL; i++) {
		if (strcmp(ev->verb, critical[i]) == 0) {
			return AUD_SEVERITY_CRITICAL;
		}
	}
	for (i = 0; warning[i] != NULL; i++) {
		if (strcmp(ev->verb, warning[i]) == 0) {
			return AUD_SEVERITY_WARNING;
		}
	}
	return AUD_SEVERITY_NORMAL;
}

static const char *
initiator_uri(int k)
{
	switch (k) {
	case AUD_INITIATOR_SERVICE:
		return "service/security/account/serviceid";
	case AUD_INITIATOR_CERT:
		return "service/security/client/certificateid";
	case AUD_INITIATOR_SYSTEM:
		return "service/security/clientid";
	default:
		return "service/security/account/user";
	}
}

static const char *
cred_name(int c)
{
	switch (c) {
	case AUD_CRED_CERTIFICATE:
		return "certificate";
	case AUD_CRED_APIKEY:
		return "apikey";
	case AUD_CRED_USER:
		return "user";
	case AUD_CRED_TOKEN:
		return "token";
	default:
		return NULL;
	}
}

static const char *
target_uri(int k)
{
	switch (k) {
	case AUD_TARGET_PARTITION:
		return "hsmgate/partition";
	case AUD_TARGET_KEY:
		return "hsmgate/partition/key";
	case AUD_TARGET_SESSION:
		return "hsmgate/partition/session";
	case AUD_TARGET_POLICY:
		return "hsmgate/policy";
	case AUD_TARGET_AUDIT:
		return "hsmgate/audit";
	default:
		return "hsmgate/gateway";
	}
}

/* ---- the JSON writer ---------------------------------------------------------------------
 * Every request's event is encoded here, so no printf and no intermediate buffers: pieces are
 * copied into the output, numbers written digit by digit. The writer fills a caller's fixed
 * buffer (aud_event_encode_into, e.g. on the log's append path, on the stack) or a heap
 * buffer it grows (aud_event_encode). The first failure sticks. */

struct jw {
	char *p;
	size_t len, cap;
	int grow; /* p is malloc'd and may be grown; else running out is AUD_ERR_TOO_LARGE */
	int err;
};

static int
jw_room(struct jw *w, size_t n)
{
	size_t cap;
	char *q;

	if (w->err != 0) {
		return 0;
	}
	if (n <= w->cap - w->len) {
		return 1;
	}
	/* Nothing over AUD_MAX_PAYLOAD is kept (encode() checks): stop growing well past it. */
	if (!w->grow || n > 2 * AUD_MAX_PAYLOAD - w->len) {
		w->err = AUD_ERR_TOO_LARGE;
		return 0;
	}
	cap = w->cap;
	while (cap - w->len < n) {
		cap *= 2;
	}
	if ((q = realloc(w->p, cap + 1)) == NULL) {
		w->err = AUD_ERR_NOMEM;
		return 0;
	}
	w->p = q;
	w->cap = cap;
	return 1;
}

static void
jw_put(struct jw *w, const char *s, size_t n)
{
	if (jw_room(w, n)) {
		memcpy(w->p + w->len, s, n);
		w->len += n;
	}
}

#define JW_LIT(w, lit) jw_put((w), (lit), sizeof(lit) - 1)

static void
jw_str(struct jw *w, const char *s)
{
	jw_put(w, s, strlen(s));
}

static void
jw_u64(struct jw *w, uint64_t v)
{
	char d[20];

	jw_put(w, d, aud_u64_dec(d, v));
}

/* The CK* name of v from t, or 0x<lower-case hex> when t has none. */
static void
jw_name(struct jw *w, const char *name, unsigned long v)
{
	static const char hex[] = "0123456789abcdef";
	char d[2 + 2 * sizeof(v)];
	size_t i = sizeof(d);

	if (name != NULL) {
		jw_str(w, name);
		return;
	}
	do {
		d[--i] = hex[v & 15];
		v >>= 4;
	} while (v != 0);
	d[--i] = 'x';
	d[--i] = '0';
	jw_put(w, d + i, sizeof(d) - i);
}

/* The bytes of s escaped for a JSON string (RFC 8259 §7): '"' and '\\' by a backslash,
 * control characters and DEL as \u00XX. The setters already refuse control characters;
 * this keeps the output well-formed whatever a string holds. */
static void
jw_escaped(struct jw *w, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	const char *run = s;

	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		char esc[6] = {'\\', 'u', '0', '0', 0, 0};

		if (c >= 0x20 && c != '"' && c != '\\' && c != 0x7f) {
			continue;
		}
		jw_put(w, run, (size_t)(s - run));
		if (c == '"' || c == '\\') {
			esc[1] = (char)c;
			jw_put(w, esc, 2);
		} else {
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			jw_put(w, esc, 6);
		}
		run = s + 1;
	}
	jw_put(w, run, (size_t)(s - run));
}

static void
jw_json_str(struct jw *w, const char *s)
{
	JW_LIT(w, "\"");
	jw_escaped(w, s);
	JW_LIT(w, "\"");
}

/* Writes the event's JSON (fields in the order of AUDIT.md §1). */
static void
encode(const struct aud_event *ev, struct jw *w)
{
	char ts[32];
	unsigned code = ev->has_rv ? rv_code(ev->rv) : 200;
	int outcome = ev->outcome >= 0 ? ev->outcome
	                               : (ev->has_rv && ev->rv != CKR_OK ? AUD_OUTCOME_FAILURE
	                                                                 : AUD_OUTCOME_SUCCESS);
	int sev = ev->severity != AUD_SEVERITY_AUTO ? ev->severity : auto_severity(ev, code);
	const char *tname;
	size_t i;
	int sep;

	aud_time_format(ev->time_ns, ts);
	JW_LIT(w, "{\"eventTime\":\"");
	jw_str(w, ts);
	JW_LIT(w, "\",\"action\":\"hsmgate.");
	jw_str(w, ev->object);
	JW_LIT(w, ".");
	jw_str(w, ev->verb);
	JW_LIT(w, "\",\"outcome\":\"");
	jw_str(w, outcome_name(outcome));
	JW_LIT(w, "\",\"severity\":\"");
	jw_str(w, severity_name(sev));
	JW_LIT(w, "\",\"reason\":{\"reasonCode\":");
	jw_u64(w, code);
	JW_LIT(w, ",\"reasonType\":\"");
	jw_str(w, code_phrase(code));
	JW_LIT(w, "\"");
	if (ev->has_rv) {
		JW_LIT(w, ",\"ckrv\":\"");
		jw_name(w, NAME_OF(ckr_names, ev->rv), ev->rv);
		JW_LIT(w, "\"");
		if (outcome == AUD_OUTCOME_FAILURE) {
			JW_LIT(w, ",\"reasonForFailure\":\"");
			jw_name(w, NAME_OF(ckr_names, ev->rv), ev->rv);
			JW_LIT(w, "\"");
		}
	}
	JW_LIT(w, "},\"initiator\":{\"id\":");
	jw_json_str(w, ev->has_init ? ev->init_id : "hsmgate");
	JW_LIT(w, ",\"name\":");
	jw_json_str(w, ev->init_name != NULL ? ev->init_name
	                                     : (ev->has_init ? ev->init_id : "hsmgate"));
	JW_LIT(w, ",\"typeURI\":\"");
	jw_str(w, initiator_uri(ev->has_init ? ev->init_kind : AUD_INITIATOR_SYSTEM));
	JW_LIT(w, "\"");
	if (cred_name(ev->cred) != NULL) {
		JW_LIT(w, ",\"credential\":{\"type\":\"");
		jw_str(w, cred_name(ev->cred));
		JW_LIT(w, "\"}");
	}
	if (ev->init_addr != NULL) {
		JW_LIT(w, ",\"host\":{\"address\":");
		jw_json_str(w, ev->init_addr);
		if (strchr(ev->init_addr, ':') != NULL) {
			JW_LIT(w, ",\"addressType\":\"IPv6\"}");
		} else {
			JW_LIT(w, ",\"addressType\":\"IPv4\"}");
		}
	}
	JW_LIT(w, "},\"target\":{\"id\":");
	jw_json_str(w, ev->tgt_id != NULL ? ev->tgt_id : "");
	JW_LIT(w, ",\"name\":");
	jw_json_str(w, ev->tgt_name != NULL ? ev->tgt_name : "");
	JW_LIT(w, ",\"typeURI\":\"");
	jw_str(w, target_uri(ev->tgt_kind));
	JW_LIT(w, "\"}");

	JW_LIT(w, ",\"requestData\":{");
	sep = 0;
	if (ev->has_mech) {
		JW_LIT(w, "\"mechanism\":\"");
		jw_name(w, NAME_OF(ckm_names, ev->mech), ev->mech);
		JW_LIT(w, "\"");
		sep = 1;
	}
	if (ev->nattrs > 0) {
		if (sep) {
			JW_LIT(w, ",");
		}
		JW_LIT(w, "\"template\":[");
		for (i = 0; i < ev->nattrs; i++) {
			if (i > 0) {
				JW_LIT(w, ",");
			}
			JW_LIT(w, "\"");
			jw_name(w, NAME_OF(cka_names, ev->attrs[i]), ev->attrs[i]);
			JW_LIT(w, "\"");
		}
		JW_LIT(w, "]");
		sep = 1;
	}
	if (ev->has_len) {
		if (sep) {
			JW_LIT(w, ",");
		}
		JW_LIT(w, "\"inputLength\":");
		jw_u64(w, ev->in_len);
	}
	JW_LIT(w, "},\"responseData\":{");
	sep = 0;
	if (ev->key_id != NULL) {
		JW_LIT(w, "\"keyId\":");
		jw_json_str(w, ev->key_id);
		sep = 1;
	}
	if (ev->has_len) {
		if (sep) {
			JW_LIT(w, ",");
		}
		JW_LIT(w, "\"outputLength\":");
		jw_u64(w, ev->out_len);
		sep = 1;
	}
	for (i = 0; i < ev->ninfo; i++) {
		if (sep) {
			JW_LIT(w, ",");
		}
		JW_LIT(w, "\"");
		jw_str(w, ev->info[i].name); /* a plain word (info_slot) */
		JW_LIT(w, "\":");
		if (ev->info[i].is_num) {
			jw_u64(w, ev->info[i].num);
		} else {
			jw_json_str(w, ev->info[i].str);
		}
		sep = 1;
	}
	if (ev->data_event) {
		JW_LIT(w, "},\"dataEvent\":true");
	} else {
		JW_LIT(w, "},\"dataEvent\":false");
	}
	if (ev->has_corr) {
		JW_LIT(w, ",\"correlationId\":\"c");
		jw_u64(w, ev->conn);
		JW_LIT(w, "-r");
		jw_u64(w, ev->req);
		JW_LIT(w, "\"");
	}
	/* AT: "Service Name: verb objectType target.name [custom]", " -failure" unless success;
	 * one JSON string, escaped piece by piece. */
	tname = ev->tgt_name != NULL ? ev->tgt_name : (ev->tgt_id != NULL ? ev->tgt_id : "");
	JW_LIT(w, ",\"message\":\"hsmgate: ");
	jw_str(w, ev->verb);
	JW_LIT(w, " ");
	jw_str(w, ev->object);
	if (*tname != '\0') {
		JW_LIT(w, " ");
		jw_escaped(w, tname);
	}
	if (ev->detail != NULL) {
		JW_LIT(w, " ");
		jw_escaped(w, ev->detail);
	}
	if (outcome != AUD_OUTCOME_SUCCESS) {
		JW_LIT(w, " -failure");
	}
	JW_LIT(w, "\",\"logSourceCRN\":");
	jw_json_str(w, ev->source != NULL ? ev->source : "");
	JW_LIT(w, ",\"saveServiceCopy\":false,\"observer\":{\"name\":\"ActivityTracker\"},"
	          "\"eventType\":\"activity\","
	          "\"typeURI\":\"http://schemas.dmtf.org/cloud/audit/1.0/event\"");
	if (ev->pol != AUD_POLICY_NONE) {
		JW_LIT(w, ",\"policy\":{\"result\":\"");
		jw_str(w, ev->pol == AUD_POLICY_ALLOW  ? "allow"
		          : ev->pol == AUD_POLICY_DENY ? "deny"
		                                       : "default-deny");
		JW_LIT(w, "\",\"sids\":[");
		for (i = 0; i < ev->nsids; i++) {
			if (i > 0) {
				JW_LIT(w, ",");
			}
			JW_LIT(w, "\"");
			jw_str(w, ev->sids[i]); /* [A-Za-z0-9._-] only (sid_ok) */
			JW_LIT(w, "\"");
		}
		JW_LIT(w, "]}");
	}
	if (ev->has_lat) {
		JW_LIT(w, ",\"latencyUs\":");
		jw_u64(w, ev->lat);
	}
	JW_LIT(w, "}");
	if (w->err == 0 && w->len > AUD_MAX_PAYLOAD) {
		w->err = AUD_ERR_TOO_LARGE;
	}
}

int
aud_event_encode(const struct aud_event *ev, char **json, size_t *len)
{
	struct jw w = {0};

	*json = NULL;
	*len = 0;
	/* A request's event is about 1 KiB: start there, so that it usually takes one malloc. */
	w.cap = 1536;
	w.grow = 1;
	if ((w.p = malloc(w.cap + 1)) == NULL) {
		return AUD_ERR_NOMEM;
	}
	encode(ev, &w);
	if (w.err != 0) {
		free(w.p);
		return w.err;
	}
	w.p[w.len] = '\0';
	*json = w.p;
	*len = w.len;
	return 0;
}

int
aud_event_encode_into(const struct aud_event *ev, char *buf, size_t cap, size_t *len)
{
	struct jw w = {0};

	*len = 0;
	w.p = buf;
	w.cap = cap;
	encode(ev, &w);
	if (w.err != 0) {
		return w.err;
	}
	*len = w.len;
	return 0;
}
