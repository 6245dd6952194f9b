/*
 * tests/audit/test_event.c — audit/event.c: the CADF / Activity Tracker JSON (every field,
 * AT's eventTime format, severity and reason rules), that it is one line of valid JSON
 * with no control characters, that no setter takes a secret, and that bad input is
 * refused without changing the event.
 */
#include "audit/aud_int.h"
#include "tests/lib/test.h"

#include <cjson/cJSON.h>
#include <p11-kit/pkcs11.h>
#include <stdlib.h>
#include <string.h>

static cJSON *
encode(const struct aud_event *ev, char **json)
{
	size_t len;
	cJSON *j;

	CU_ASSERT_FATAL(aud_event_encode(ev, json, &len) == 0);
	CU_ASSERT(strlen(*json) == len);
	CU_ASSERT(aud_text_ok(*json, len)); /* one line, no control characters */
	j = cJSON_Parse(*json);
	CU_ASSERT_FATAL(j != NULL);
	return j;
}

static const char *
str_at(cJSON *j, const char *a, const char *b)
{
	cJSON *x = cJSON_GetObjectItemCaseSensitive(j, a);

	if (b != NULL) {
		x = cJSON_GetObjectItemCaseSensitive(x, b);
	}
	return cJSON_IsString(x) ? x->valuestring : NULL;
}

static void
test_full_event(void)
{
	struct aud_event *ev = NULL;
	const char *sids[] = {"allow-sign", "tenant.acme_2"};
	char *json = NULL;
	cJSON *j, *x;

	CU_ASSERT_FATAL(aud_event_new(&ev, "keys", "sign") == 0);
	/* 2026-11-26T19:07:50.329 UTC */
	CU_ASSERT(aud_event_set_time(ev, 1795720070329000000ull) == 0);
	CU_ASSERT(aud_event_set_initiator(ev, "tenant/acme/user/alice", "alice@acme.example",
	                                  AUD_INITIATOR_USER, AUD_CRED_APIKEY,
	                                  "198.51.100.4") == 0);
	CU_ASSERT(aud_event_set_target(ev, "crn:hsmgate:acme:partition:p1:key:7f3a",
	                               "payments-signing", AUD_TARGET_KEY) == 0);
	CU_ASSERT(aud_event_set_mechanism(ev, CKM_ECDSA_SHA256) == 0);
	CU_ASSERT(aud_event_add_attribute(ev, CKA_CLASS) == 0);
	CU_ASSERT(aud_event_add_attribute(ev, CKA_VALUE) == 0); /* the type's name, never a value */
	CU_ASSERT(aud_event_set_lengths(ev, 32, 72) == 0);
	CU_ASSERT(aud_event_set_key_id(ev, "7f3a") == 0);
	CU_ASSERT(aud_event_set_correlation(ev, 12, 345) == 0);
	CU_ASSERT(aud_event_set_ckrv(ev, CKR_OK) == 0);
	CU_ASSERT(aud_event_set_policy(ev, AUD_POLICY_ALLOW, sids, 2) == 0);
	CU_ASSERT(aud_event_set_latency(ev, 812) == 0);
	CU_ASSERT(aud_event_set_source(ev, "crn:hsmgate:gateway:gw1") == 0);
	CU_ASSERT(aud_event_set_data_event(ev, 1) == 0);
	j = encode(ev, &json);
	CU_ASSERT_STRING_EQUAL(str_at(j, "eventTime", NULL), "2026-11-26T19:07:50.32+0000");
	CU_ASSERT_STRING_EQUAL(str_at(j, "action", NULL), "hsmgate.keys.sign");
	CU_ASSERT_STRING_EQUAL(str_at(j, "outcome", NULL), "success");
	CU_ASSERT_STRING_EQUAL(str_at(j, "severity", NULL), "normal");
	x = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "reason"),
	                                     "reasonCode");
	CU_ASSERT(cJSON_IsNumber(x) && x->valueint == 200);
	CU_ASSERT_STRING_EQUAL(str_at(j, "reason", "reasonType"), "OK");
	CU_ASSERT_STRING_EQUAL(str_at(j, "reason", "ckrv"), "CKR_OK");
	CU_ASSERT_STRING_EQUAL(str_at(j, "initiator", "id"), "tenant/acme/user/alice");
	CU_ASSERT_STRING_EQUAL(str_at(j, "initiator", "name"), "alice@acme.example");
	CU_ASSERT_STRING_EQUAL(str_at(j, "initiator", "typeURI"), "service/security/account/user");
	CU_ASSERT(strstr(json, "\"credential\":{\"type\":\"apikey\"}") != NULL);
	CU_ASSERT(
	        strstr(json, "\"host\":{\"address\":\"198.51.100.4\",\"addressType\":\"IPv4\"}") !=
	        NULL);
	CU_ASSERT_STRING_EQUAL(str_at(j, "target", "id"), "crn:hsmgate:acme:partition:p1:key:7f3a");
	CU_ASSERT_STRING_EQUAL(str_at(j, "target", "name"), "payments-signing");
	CU_ASSERT_STRING_EQUAL(str_at(j, "target", "typeURI"), "hsmgate/partition/key");
	CU_ASSERT(strstr(json, "\"requestData\":{\"mechanism\":\"CKM_ECDSA_SHA256\",\"template\":["
	                       "\"CKA_CLASS\",\"CKA_VALUE\"],\"inputLength\":32}") != NULL);
	CU_ASSERT(strstr(json, "\"responseData\":{\"keyId\":\"7f3a\",\"outputLength\":72}") !=
	          NULL);
	CU_ASSERT(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "dataEvent")));
	CU_ASSERT_STRING_EQUAL(str_at(j, "correlationId", NULL), "c12-r345");
	CU_ASSERT_STRING_EQUAL(str_at(j, "message", NULL), "hsmgate: sign keys payments-signing");
	CU_ASSERT_STRING_EQUAL(str_at(j, "logSourceCRN", NULL), "crn:hsmgate:gateway:gw1");
	CU_ASSERT_STRING_EQUAL(str_at(j, "observer", "name"), "ActivityTracker");
	CU_ASSERT(strstr(json, "\"policy\":{\"result\":\"allow\",\"sids\":[\"allow-sign\",\"tenant."
	                       "acme_2\"]}") != NULL);
	CU_ASSERT(strstr(json, "\"latencyUs\":812") != NULL);
	cJSON_Delete(j);
	free(json);
	aud_event_free(ev);
}

static void
test_denied_event(void)
{
	struct aud_event *ev = NULL;
	char *json = NULL;
	cJSON *j, *x;

	CU_ASSERT_FATAL(aud_event_new(&ev, "keys", "unwrap") == 0);
	CU_ASSERT(aud_event_set_ckrv(ev, CKR_ACTION_PROHIBITED) == 0);
	CU_ASSERT(aud_event_set_policy(ev, AUD_POLICY_DEFAULT_DENY, NULL, 0) == 0);
	CU_ASSERT(aud_event_set_target(ev, "crn:hsmgate:acme:partition:p1", NULL,
	                               AUD_TARGET_PARTITION) == 0);
	CU_ASSERT(aud_event_set_detail(ev, "no statement allows hsm.keys.unwrap") == 0);
	j = encode(ev, &json);
	CU_ASSERT_STRING_EQUAL(str_at(j, "outcome", NULL), "failure");
	CU_ASSERT_STRING_EQUAL(str_at(j, "severity", NULL), "critical"); /* 403 */
	x = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "reason"),
	                                     "reasonCode");
	CU_ASSERT(cJSON_IsNumber(x) && x->valueint == 403);
	CU_ASSERT_STRING_EQUAL(str_at(j, "reason", "reasonForFailure"), "CKR_ACTION_PROHIBITED");
	CU_ASSERT_STRING_EQUAL(str_at(j, "policy", "result"), "default-deny");
	CU_ASSERT_STRING_EQUAL(
	        str_at(j, "message", NULL),
	        "hsmgate: unwrap keys crn:hsmgate:acme:partition:p1 no statement allows "
	        "hsm.keys.unwrap -failure");
	/* No initiator set: the system itself. */
	CU_ASSERT_STRING_EQUAL(str_at(j, "initiator", "typeURI"), "service/security/clientid");
	cJSON_Delete(j);
	free(json);
	aud_event_free(ev);
}

static void
severity_is(const char *object, const char *verb, unsigned long rv, const char *want)
{
	struct aud_event *ev = NULL;
	char *json = NULL;
	cJSON *j;

	CU_ASSERT_FATAL(aud_event_new(&ev, object, verb) == 0);
	CU_ASSERT(aud_event_set_ckrv(ev, rv) == 0);
	j = encode(ev, &json);
	CU_ASSERT_STRING_EQUAL(str_at(j, "severity", NULL), want);
	cJSON_Delete(j);
	free(json);
	aud_event_free(ev);
}

static void
test_severity_rules(void)
{
	severity_is("keys", "sign", CKR_OK, "normal");
	severity_is("keys", "destroy", CKR_OK, "critical");
	severity_is("keys", "rotate", CKR_OK, "warning");
	severity_is("masterkey", "loadpart", CKR_OK, "critical");
	severity_is("keys", "sign", CKR_ARGUMENTS_BAD, "warning");      /* 400 */
	severity_is("keys", "sign", CKR_DEVICE_ERROR, "warning");       /* 500 */
	severity_is("session", "login", CKR_PIN_INCORRECT, "critical"); /* 401 */
	severity_is("keys", "sign", CKR_DEVICE_MEMORY, "critical");     /* 507 */
}

static void
test_pending_and_override(void)
{
	struct aud_event *ev = NULL;
	char *json = NULL;
	cJSON *j;

	CU_ASSERT_FATAL(aud_event_new(&ev, "keys", "destroy") == 0);
	CU_ASSERT(aud_event_set_outcome(ev, AUD_OUTCOME_PENDING) == 0);
	CU_ASSERT(aud_event_set_severity(ev, AUD_SEVERITY_WARNING) == 0);
	CU_ASSERT(aud_event_set_outcome(ev, (enum aud_outcome)7) == AUD_ERR_INVALID);
	CU_ASSERT(aud_event_set_severity(ev, (enum aud_severity)9) == AUD_ERR_INVALID);
	j = encode(ev, &json);
	CU_ASSERT_STRING_EQUAL(str_at(j, "outcome", NULL), "pending");
	CU_ASSERT_STRING_EQUAL(str_at(j, "severity", NULL), "warning");
	cJSON_Delete(j);
	free(json);
	aud_event_free(ev);
}

static void
test_escaping(void)
{
	struct aud_event *ev = NULL;
	char *json = NULL;
	cJSON *j;

	CU_ASSERT_FATAL(aud_event_new(&ev, "keys", "create") == 0);
	CU_ASSERT(aud_event_set_target(ev, "crn:x", "la\"bel\\ with \xc3\xa9", AUD_TARGET_KEY) ==
	          0);
	j = encode(ev, &json);
	CU_ASSERT_STRING_EQUAL(str_at(j, "target", "name"), "la\"bel\\ with \xc3\xa9");
	cJSON_Delete(j);
	free(json);
	aud_event_free(ev);
}

static void
test_bad_input_refused(void)
{
	struct aud_event *ev = NULL;
	char big[AUD_MAX_STRING + 2];
	const char *bad_sid[] = {"has space"};
	const char *ok_sid[] = {"s1"};
	char *json = NULL;
	size_t len;

	CU_ASSERT(aud_event_new(&ev, "Keys", "sign") == AUD_ERR_INVALID);
	CU_ASSERT(aud_event_new(&ev, "keys", "si-gn") == AUD_ERR_INVALID);
	CU_ASSERT(aud_event_new(&ev, "", "sign") == AUD_ERR_INVALID);
	CU_ASSERT(aud_event_new(&ev, "keys.x", "sign") == AUD_ERR_INVALID);
	CU_ASSERT(ev == NULL);
	CU_ASSERT_FATAL(aud_event_new(&ev, "keys", "sign") == 0);
	CU_ASSERT(aud_event_set_initiator(ev, "tenant/a/user/b", NULL, AUD_INITIATOR_USER,
	                                  AUD_CRED_APIKEY, "not-an-ip") == AUD_ERR_INVALID);
	CU_ASSERT(aud_event_set_initiator(ev, "a\nb", NULL, AUD_INITIATOR_USER, AUD_CRED_APIKEY,
	                                  NULL) == AUD_ERR_INVALID);
	CU_ASSERT(aud_event_set_initiator(ev, "a\tb", NULL, AUD_INITIATOR_USER, AUD_CRED_APIKEY,
	                                  NULL) == AUD_ERR_INVALID);
	CU_ASSERT(aud_event_set_initiator(ev, "bad\xff", NULL, AUD_INITIATOR_USER, AUD_CRED_APIKEY,
	                                  NULL) == AUD_ERR_INVALID);
	CU_ASSERT(aud_event_set_initiator(ev, "\xc0\xaf", NULL, AUD_INITIATOR_USER, AUD_CRED_APIKEY,
	                                  NULL) == AUD_ERR_INVALID); /* overlong '/' */
	CU_ASSERT(aud_event_set_initiator(ev, "x", NULL, (enum aud_initiator_kind)9,
	                                  AUD_CRED_APIKEY, NULL) == AUD_ERR_INVALID);
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	CU_ASSERT(aud_event_set_target(ev, big, NULL, AUD_TARGET_KEY) == AUD_ERR_TOO_LARGE);
	CU_ASSERT(aud_event_set_policy(ev, AUD_POLICY_ALLOW, bad_sid, 1) == AUD_ERR_INVALID);
	CU_ASSERT(aud_event_set_policy(ev, AUD_POLICY_ALLOW, ok_sid, AUD_MAX_SIDS + 1) ==
	          AUD_ERR_TOO_LARGE);
	CU_ASSERT(aud_event_set_detail(ev, "caf\xc3\xa9") == AUD_ERR_INVALID);
	/* The event is unchanged by the refusals. */
	CU_ASSERT_FATAL(aud_event_encode(ev, &json, &len) == 0);
	CU_ASSERT(strstr(json, "\"initiator\":{\"id\":\"hsmgate\"") != NULL);
	CU_ASSERT(strstr(json, "\"policy\"") == NULL);
	free(json);
	aud_event_free(ev);
}

/* Redaction by type: whatever the caller does, no field of an event is named like a
 * secret, and the builder's API has no parameter that could carry one. */
static void
test_no_secret_fields(void)
{
	static const char *const forbidden[] = {"pin",        "PIN",      "apiKey", "apikeyValue",
	                                        "password",   "keyValue", "value",  "plaintext",
	                                        "ciphertext", "iv",       "IV",     "nonce",
	                                        "data",       "secret",   NULL};
	struct aud_event *ev = NULL;
	const char *sids[] = {"a"};
	char *json = NULL, pat[64];
	size_t i;
	cJSON *j;

	CU_ASSERT_FATAL(aud_event_new(&ev, "session", "login") == 0);
	CU_ASSERT(aud_event_set_initiator(ev, "tenant/a/user/b", NULL, AUD_INITIATOR_USER,
	                                  AUD_CRED_USER, "::1") == 0);
	CU_ASSERT(aud_event_set_mechanism(ev, CKM_AES_GCM) == 0);
	CU_ASSERT(aud_event_add_attribute(ev, CKA_VALUE) == 0);
	CU_ASSERT(aud_event_set_lengths(ev, 1, 2) == 0);
	CU_ASSERT(aud_event_set_key_id(ev, "k") == 0);
	CU_ASSERT(aud_event_set_policy(ev, AUD_POLICY_DENY, sids, 1) == 0);
	CU_ASSERT(aud_event_set_ckrv(ev, CKR_PIN_INCORRECT) == 0);
	j = encode(ev, &json);
	for (i = 0; forbidden[i] != NULL; i++) {
		snprintf(pat, sizeof(pat), "\"%s\":", forbidden[i]);
		CU_ASSERT(strstr(json, pat) == NULL);
	}
	cJSON_Delete(j);
	free(json);
	aud_event_free(ev);
}

static void
test_time_format(void)
{
	char out[32];

	aud_time_format(0, out);
	CU_ASSERT_STRING_EQUAL(out, "1970-01-01T00:00:00.00+0000");
	aud_time_format(1795720070999999999ull, out);
	CU_ASSERT_STRING_EQUAL(out, "2026-11-26T19:07:50.99+0000");
	/* the calendar by hand: a leap day, a century that is not a leap year, a year's end,
	 * and the last nanosecond a uint64_t holds */
	aud_time_format(951868799990000000ull, out);
	CU_ASSERT_STRING_EQUAL(out, "2000-02-29T23:59:59.99+0000");
	aud_time_format(4107542400000000000ull, out);
	CU_ASSERT_STRING_EQUAL(out, "2100-03-01T00:00:00.00+0000");
	aud_time_format(946684799999999999ull, out);
	CU_ASSERT_STRING_EQUAL(out, "1999-12-31T23:59:59.99+0000");
	aud_time_format(UINT64_MAX, out);
	CU_ASSERT_STRING_EQUAL(out, "2554-07-21T23:34:33.70+0000");
}

/* CK names longer than 31 characters are written whole; unknown values as 0x<hex>. */
static void
test_names(void)
{
	struct aud_event *ev = NULL;
	char *json = NULL;
	cJSON *j, *t;

	CU_ASSERT_FATAL(aud_event_new(&ev, "session", "login") == 0);
	CU_ASSERT(aud_event_set_ckrv(ev, CKR_USER_ANOTHER_ALREADY_LOGGED_IN) == 0);
	CU_ASSERT(aud_event_set_mechanism(ev, 0x80001234ul) == 0);
	CU_ASSERT(aud_event_add_attribute(ev, CKA_UNWRAP_TEMPLATE) == 0);
	CU_ASSERT(aud_event_add_attribute(ev, 0xdeadul) == 0);
	j = encode(ev, &json);
	CU_ASSERT_STRING_EQUAL(str_at(j, "reason", "ckrv"), "CKR_USER_ANOTHER_ALREADY_LOGGED_IN");
	CU_ASSERT_STRING_EQUAL(str_at(j, "reason", "reasonForFailure"),
	                       "CKR_USER_ANOTHER_ALREADY_LOGGED_IN");
	CU_ASSERT_STRING_EQUAL(str_at(j, "requestData", "mechanism"), "0x80001234");
	t = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "requestData"),
	                                     "template");
	CU_ASSERT(cJSON_GetArraySize(t) == 2);
	CU_ASSERT_STRING_EQUAL(cJSON_GetArrayItem(t, 0)->valuestring, "CKA_UNWRAP_TEMPLATE");
	CU_ASSERT_STRING_EQUAL(cJSON_GetArrayItem(t, 1)->valuestring, "0xdead");
	cJSON_Delete(j);
	free(json);
	CU_ASSERT(aud_event_set_ckrv(ev, 0) == 0);
	j = encode(ev, &json);
	CU_ASSERT_STRING_EQUAL(str_at(j, "reason", "ckrv"), "CKR_OK");
	cJSON_Delete(j);
	free(json);
	aud_event_free(ev);
}

/* aud_event_encode_into: the same bytes as aud_event_encode when they fit, exactly; one byte
 * short is AUD_ERR_TOO_LARGE. */
static void
test_encode_into(void)
{
	static const char *const sids[] = {"allow-sign"};
	struct aud_event *ev = NULL;
	char *json = NULL, *buf;
	size_t len, n = 7;

	CU_ASSERT_FATAL(aud_event_new(&ev, "crypto", "sign") == 0);
	CU_ASSERT(aud_event_set_initiator(ev, "tenant/acme/user/alice", NULL, AUD_INITIATOR_USER,
	                                  AUD_CRED_CERTIFICATE, "2001:db8::7") == 0);
	CU_ASSERT(aud_event_set_target(ev, "crn:hsmgate:acme:partition:p1", "p \"1\"",
	                               AUD_TARGET_PARTITION) == 0);
	CU_ASSERT(aud_event_set_policy(ev, AUD_POLICY_ALLOW, sids, 1) == 0);
	CU_ASSERT(aud_event_set_correlation(ev, 18446744073709551615ull, 4294967295u) == 0);
	CU_ASSERT(aud_event_set_ckrv(ev, CKR_OK) == 0);
	CU_ASSERT(aud_event_set_latency(ev, 0) == 0);
	CU_ASSERT_FATAL(aud_event_encode(ev, &json, &len) == 0);
	CU_ASSERT(strstr(json, "\"correlationId\":\"c18446744073709551615-r4294967295\"") != NULL);
	CU_ASSERT(strstr(json, "\"latencyUs\":0}") != NULL);
	CU_ASSERT_FATAL((buf = malloc(len)) != NULL);
	CU_ASSERT(aud_event_encode_into(ev, buf, len, &n) == 0);
	CU_ASSERT(n == len && memcmp(buf, json, len) == 0);
	n = 7;
	CU_ASSERT(aud_event_encode_into(ev, buf, len - 1, &n) == AUD_ERR_TOO_LARGE);
	CU_ASSERT(n == 0);
	CU_ASSERT(aud_event_encode_into(ev, buf, 0, &n) == AUD_ERR_TOO_LARGE);
	free(buf);
	free(json);
	aud_event_free(ev);
}

static const struct test_case cases[] = {
        {"every CADF / AT field of a full event", test_full_event},
        {"a denied call: failure, 403, critical, reasonForFailure", test_denied_event},
        {"AT severity rules by code and by verb", test_severity_rules},
        {"pending outcome and explicit severity", test_pending_and_override},
        {"JSON escaping of quotes, backslashes, UTF-8", test_escaping},
        {"bad names, addresses, control characters, sizes are refused", test_bad_input_refused},
        {"no field could carry a PIN, key, plaintext or IV", test_no_secret_fields},
        {"AT eventTime format", test_time_format},
        {"CK names in full, unknown values in hex", test_names},
        {"encoding into a caller's buffer: same bytes, or too large", test_encode_into},
        {NULL, NULL},
};

void
test_register(void)
{
	test_suite_add("audit/event", NULL, NULL, cases);
}
