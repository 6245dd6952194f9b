/* tests/hsm-partitions/test_object.c — hsm-partitions/object.c: CKO_DATA objects through
 * C_CreateObject, C_FindObjects*, C_GetAttributeValue (§5.7 semantics), C_SetAttributeValue,
 * C_DestroyObject, C_GetObjectSize; private visibility; persistence across a restart. */
#include "tests/hsm-partitions/part_test.h"

#include <openssl/evp.h>

static CK_OBJECT_CLASS data_class = CKO_DATA;
static CK_BBOOL yes = CK_TRUE, no = CK_FALSE;

static CK_RV
create(uint64_t conn, CK_SESSION_HANDLE h, CK_ATTRIBUTE *t, CK_ULONG n, CK_OBJECT_HANDLE *obj)
{
	struct proto_cur c;
	CK_RV rv = CALL(conn, C_CreateObject, &c, (PUTU(h), PUTT(t, n)));

	*obj = CK_INVALID_HANDLE;
	if (rv == CKR_OK) {
		CU_ASSERT(proto_get_ulong(&c, obj) == 0);
	}
	return rv;
}

static CK_RV
create_data(uint64_t conn, CK_SESSION_HANDLE h, CK_BBOOL token, CK_BBOOL priv, const char *label,
            CK_OBJECT_HANDLE *obj)
{
	CK_ATTRIBUTE t[] = {
	        {CKA_CLASS, &data_class, sizeof(data_class)},
	        {CKA_TOKEN, &token, 1},
	        {CKA_PRIVATE, &priv, 1},
	        {CKA_LABEL, (void *)label, strlen(label)},
	        {CKA_APPLICATION, "app", 3},
	        {CKA_VALUE, "value-bytes", 11},
	};

	return create(conn, h, t, 6, obj);
}

/* All handles found with template t[n] (at most 32). */
static CK_ULONG
find(uint64_t conn, CK_SESSION_HANDLE h, CK_ATTRIBUTE *t, CK_ULONG n, CK_OBJECT_HANDLE *out)
{
	CK_ULONG got, total = 0;
	struct proto_cur c;

	CU_ASSERT_FATAL(CALL(conn, C_FindObjectsInit, NULL, (PUTU(h), PUTT(t, n))) == CKR_OK);
	do {
		/* two at a time, to exercise the continuation */
		CU_ASSERT_FATAL(CALL(conn, C_FindObjects, &c, (PUTU(h), PUTL(1, 2))) == CKR_OK);
		got = 2;
		CU_ASSERT_FATAL(proto_get_ulongs_reply(&c, out + total, &got) == 0);
		total += got;
	} while (got != 0 && total < 30);
	CU_ASSERT_FATAL(CALL(conn, C_FindObjectsFinal, NULL, PUTU(h)) == CKR_OK);
	return total;
}

/* C_GetAttributeValue of t[n] (pValue NULL = size query); returns the CK_RV and fills t. */
static CK_RV
get_attrs(uint64_t conn, CK_SESSION_HANDLE h, CK_OBJECT_HANDLE obj, CK_ATTRIBUTE *t, CK_ULONG n)
{
	struct proto_cur c;
	CK_RV rv = CALL(conn, C_GetAttributeValue, &c,
	                (PUTU(h), PUTU(obj), (void)!proto_put_attrquery(&b, t, n)));

	if (proto_reply_has_fields(PROTO_CALL_C_GetAttributeValue, rv)) {
		CU_ASSERT(proto_get_attrreply(&c, t, n) == 0);
	}
	return rv;
}

static CK_RV
set_attrs(uint64_t conn, CK_SESSION_HANDLE h, CK_OBJECT_HANDLE obj, CK_ATTRIBUTE *t, CK_ULONG n)
{
	return CALL(conn, C_SetAttributeValue, NULL, (PUTU(h), PUTU(obj), PUTT(t, n)));
}

static CK_RV
destroy(uint64_t conn, CK_SESSION_HANDLE h, CK_OBJECT_HANDLE obj)
{
	return CALL(conn, C_DestroyObject, NULL, (PUTU(h), PUTU(obj)));
}

static void
test_create_get_defaults(void)
{
	CK_ATTRIBUTE t[] = {{CKA_CLASS, &data_class, sizeof(data_class)}};
	CK_BBOOL tok = 9, priv = 9, mod = 9, cp = 9, ds = 9;
	CK_OBJECT_CLASS cls = 0;
	char ref[40];
	CK_ATTRIBUTE q[] = {
	        {CKA_CLASS, &cls, sizeof(cls)}, {CKA_TOKEN, &tok, 1},
	        {CKA_PRIVATE, &priv, 1},        {CKA_MODIFIABLE, &mod, 1},
	        {CKA_COPYABLE, &cp, 1},         {CKA_DESTROYABLE, &ds, 1},
	        {CKA_VALUE, NULL, 0},           {CKA_HSMGATE_REF, ref, sizeof(ref)},
	};
	CK_SESSION_HANDLE h;
	CK_OBJECT_HANDLE o;

	t_setup();
	t_ready();
	CU_ASSERT_FATAL(ck_open(CONN_A, RO, &h) == CKR_OK);
	/* A session object may be created in a read-only session. */
	CU_ASSERT_EQUAL(create(CONN_A, h, t, 1, &o), CKR_OK);
	CU_ASSERT_EQUAL(get_attrs(CONN_A, h, o, q, 8), CKR_OK);
	CU_ASSERT_EQUAL(cls, CKO_DATA);
	CU_ASSERT(tok == CK_FALSE && priv == CK_FALSE && mod == CK_TRUE && cp == CK_TRUE &&
	          ds == CK_TRUE);
	CU_ASSERT_EQUAL(q[6].ulValueLen, 0);
	CU_ASSERT_EQUAL(q[7].ulValueLen, PART_REF_LEN);
	t_teardown();
}

static void
test_get_attribute_semantics(void)
{
	char small[4], big[32];
	CK_ATTRIBUTE q[] = {
	        {CKA_LABEL, NULL, 0},                /* size query */
	        {CKA_VALUE, small, sizeof(small)},   /* too small */
	        {CKA_MODULUS, big, sizeof(big)},     /* not an attribute of a data object */
	        {CKA_APPLICATION, big, sizeof(big)}, /* fits */
	};
	CK_SESSION_HANDLE h;
	CK_OBJECT_HANDLE o;

	t_setup();
	t_ready();
	CU_ASSERT_FATAL(ck_open(CONN_A, RW, &h) == CKR_OK);
	CU_ASSERT_FATAL(create_data(CONN_A, h, CK_FALSE, CK_FALSE, "my-label", &o) == CKR_OK);
	/* Every attribute is processed; one of the "not true errors" comes back. */
	CU_ASSERT_EQUAL(get_attrs(CONN_A, h, o, q, 4), CKR_BUFFER_TOO_SMALL);
	CU_ASSERT_EQUAL(q[0].ulValueLen, 8);
	CU_ASSERT_EQUAL(q[1].ulValueLen, CK_UNAVAILABLE_INFORMATION);
	CU_ASSERT_EQUAL(q[2].ulValueLen, CK_UNAVAILABLE_INFORMATION);
	CU_ASSERT_EQUAL(q[3].ulValueLen, 3);
	CU_ASSERT(memcmp(big, "app", 3) == 0);
	/* An unknown type alone: CKR_ATTRIBUTE_TYPE_INVALID. */
	q[2].ulValueLen = sizeof(big);
	CU_ASSERT_EQUAL(get_attrs(CONN_A, h, o, &q[2], 1), CKR_ATTRIBUTE_TYPE_INVALID);
	CU_ASSERT_EQUAL(q[2].ulValueLen, CK_UNAVAILABLE_INFORMATION);
	/* Unknown object handle. */
	q[3].ulValueLen = sizeof(big);
	CU_ASSERT_EQUAL(get_attrs(CONN_A, h, o + 1000, &q[3], 1), CKR_OBJECT_HANDLE_INVALID);
	t_teardown();
}

static void
test_create_refusals(void)
{
	CK_OBJECT_CLASS key = CKO_SECRET_KEY, cert = CKO_CERTIFICATE;
	CK_ULONG wrong = 1;
	CK_ATTRIBUTE noclass[] = {{CKA_LABEL, "x", 1}};
	CK_ATTRIBUTE keyc[] = {{CKA_CLASS, &key, sizeof(key)}};
	CK_ATTRIBUTE certc[] = {{CKA_CLASS, &cert, sizeof(cert)}};
	CK_ATTRIBUTE unknown[] = {{CKA_CLASS, &data_class, sizeof(data_class)},
	                          {CKA_MODULUS, "x", 1}};
	CK_ATTRIBUTE badbool[] = {{CKA_CLASS, &data_class, sizeof(data_class)},
	                          {CKA_TOKEN, &wrong, sizeof(wrong)}};
	CK_ATTRIBUTE badbool2[] = {{CKA_CLASS, &data_class, sizeof(data_class)},
	                           {CKA_TOKEN, "\x02", 1}};
	CK_ATTRIBUTE ref[] = {{CKA_CLASS, &data_class, sizeof(data_class)},
	                      {CKA_HSMGATE_REF, "0123456789abcdef0123456789abcdef", 32}};
	CK_ATTRIBUTE dup[] = {{CKA_CLASS, &data_class, sizeof(data_class)},
	                      {CKA_LABEL, "a", 1},
	                      {CKA_LABEL, "b", 1}};
	CK_ATTRIBUTE shortclass[] = {{CKA_CLASS, "\x00", 1}};
	CK_SESSION_HANDLE h;
	CK_OBJECT_HANDLE o;

	t_setup();
	t_ready();
	CU_ASSERT_FATAL(ck_open(CONN_A, RW, &h) == CKR_OK);
	CU_ASSERT_EQUAL(create(CONN_A, h, noclass, 1, &o), CKR_TEMPLATE_INCOMPLETE);
	/* A key needs its CKA_KEY_TYPE, a certificate its CKA_CERTIFICATE_TYPE. */
	CU_ASSERT_EQUAL(create(CONN_A, h, keyc, 1, &o), CKR_TEMPLATE_INCOMPLETE);
	CU_ASSERT_EQUAL(create(CONN_A, h, certc, 1, &o), CKR_TEMPLATE_INCOMPLETE);
	CU_ASSERT_EQUAL(create(CONN_A, h, unknown, 2, &o), CKR_ATTRIBUTE_TYPE_INVALID);
	CU_ASSERT_EQUAL(create(CONN_A, h, badbool, 2, &o), CKR_ATTRIBUTE_VALUE_INVALID);
	CU_ASSERT_EQUAL(create(CONN_A, h, badbool2, 2, &o), CKR_ATTRIBUTE_VALUE_INVALID);
	CU_ASSERT_EQUAL(create(CONN_A, h, ref, 2, &o), CKR_ATTRIBUTE_READ_ONLY);
	CU_ASSERT_EQUAL(create(CONN_A, h, dup, 3, &o), CKR_TEMPLATE_INCONSISTENT);
	CU_ASSERT_EQUAL(create(CONN_A, h, shortclass, 1, &o), CKR_ATTRIBUTE_VALUE_INVALID);
	t_teardown();
}

static void
test_create_token_in_ro_session(void)
{
	CK_SESSION_HANDLE h;
	CK_OBJECT_HANDLE o;

	t_setup();
	t_ready();
	CU_ASSERT_FATAL(ck_open(CONN_A, RO, &h) == CKR_OK);
	CU_ASSERT_EQUAL(create_data(CONN_A, h, CK_TRUE, CK_FALSE, "t", &o), CKR_SESSION_READ_ONLY);
	t_teardown();
}

static void
test_create_private_needs_user(void)
{
	CK_SESSION_HANDLE h;
	CK_OBJECT_HANDLE o;

	t_setup();
	t_ready();
	CU_ASSERT_FATAL(ck_open(CONN_A, RW, &h) == CKR_OK);
	CU_ASSERT_EQUAL(create_data(CONN_A, h, CK_FALSE, CK_TRUE, "p", &o), CKR_USER_NOT_LOGGED_IN);
	CU_ASSERT_FATAL(ck_login(CONN_A, h, CKU_SO, SO_PIN) == CKR_OK);
	CU_ASSERT_EQUAL(create_data(CONN_A, h, CK_TRUE, CK_TRUE, "p", &o), CKR_USER_NOT_LOGGED_IN);
	/* The SO may create public token objects. */
	CU_ASSERT_EQUAL(create_data(CONN_A, h, CK_TRUE, CK_FALSE, "p", &o), CKR_OK);
	t_teardown();
}

static void
test_find_and_private_visibility(void)
{
	CK_OBJECT_HANDLE pub, priv, sess, found[32];
	CK_ATTRIBUTE bylabel[] = {{CKA_LABEL, "secret", 6}};
	CK_ATTRIBUTE bytoken[] = {{CKA_TOKEN, &yes, 1}};
	char buf[32];
	CK_ATTRIBUTE q[] = {{CKA_VALUE, buf, sizeof(buf)}};
	CK_SESSION_HANDLE a, b;

	t_setup();
	t_ready();
	CU_ASSERT_FATAL(ck_open(CONN_A, RW, &a) == CKR_OK);
	CU_ASSERT_FATAL(ck_open(CONN_B, RW, &b) == CKR_OK);
	CU_ASSERT_FATAL(ck_login(CONN_A, a, CKU_USER, USER_PIN) == CKR_OK);
	CU_ASSERT_FATAL(create_data(CONN_A, a, CK_TRUE, CK_FALSE, "public", &pub) == CKR_OK);
	CU_ASSERT_FATAL(create_data(CONN_A, a, CK_TRUE, CK_TRUE, "secret", &priv) == CKR_OK);
	CU_ASSERT_FATAL(create_data(CONN_A, a, CK_FALSE, CK_FALSE, "mine", &sess) == CKR_OK);
	/* A logged-in user sees all three, in creation order. */
	CU_ASSERT_EQUAL_FATAL(find(CONN_A, a, NULL, 0, found), 3);
	CU_ASSERT(found[0] == pub && found[1] == priv && found[2] == sess);
	CU_ASSERT_EQUAL(find(CONN_A, a, bylabel, 1, found), 1);
	CU_ASSERT_EQUAL(find(CONN_A, a, bytoken, 1, found), 2);
	/* Another, public, application sees only the public token object. */
	CU_ASSERT_EQUAL_FATAL(find(CONN_B, b, NULL, 0, found), 1);
	CU_ASSERT_EQUAL(found[0], pub);
	CU_ASSERT_EQUAL(get_attrs(CONN_B, b, priv, q, 1), CKR_OBJECT_HANDLE_INVALID);
	CU_ASSERT_EQUAL(get_attrs(CONN_B, b, sess, q, 1), CKR_OBJECT_HANDLE_INVALID);
	CU_ASSERT_EQUAL(destroy(CONN_B, b, priv), CKR_OBJECT_HANDLE_INVALID);
	/* After logout the owner no longer sees the private object either. */
	CU_ASSERT_EQUAL(ck_logout(CONN_A, a), CKR_OK);
	CU_ASSERT_EQUAL(find(CONN_A, a, NULL, 0, found), 2);
	CU_ASSERT_EQUAL(get_attrs(CONN_A, a, priv, q, 1), CKR_OBJECT_HANDLE_INVALID);
	t_teardown();
}

static void
test_find_operation_rules(void)
{
	CK_SESSION_HANDLE h;

	t_setup();
	t_ready();
	CU_ASSERT_FATAL(ck_open(CONN_A, RW, &h) == CKR_OK);
	CU_ASSERT_EQUAL(CALL(CONN_A, C_FindObjects, NULL, (PUTU(h), PUTL(1, 2))),
	                CKR_OPERATION_NOT_INITIALIZED);
	CU_ASSERT_EQUAL(CALL(CONN_A, C_FindObjectsFinal, NULL, PUTU(h)),
	                CKR_OPERATION_NOT_INITIALIZED);
	CU_ASSERT_EQUAL(CALL(CONN_A, C_FindObjectsInit, NULL, (PUTU(h), PUTT(NULL, 0))), CKR_OK);
	CU_ASSERT_EQUAL(CALL(CONN_A, C_FindObjectsInit, NULL, (PUTU(h), PUTT(NULL, 0))),
	                CKR_OPERATION_ACTIVE);
	CU_ASSERT_EQUAL(CALL(CONN_A, C_FindObjects, NULL, (PUTU(h), PUTL(0, 0))),
	                CKR_ARGUMENTS_BAD);
	CU_ASSERT_EQUAL(CALL(CONN_A, C_FindObjectsFinal, NULL, PUTU(h)), CKR_OK);
	t_teardown();
}

static void
test_set_attribute(void)
{
	CK_ATTRIBUTE setlabel[] = {{CKA_LABEL, "renamed", 7}, {CKA_VALUE, "v2", 2}};
	CK_ATTRIBUTE settoken[] = {{CKA_TOKEN, &yes, 1}};
	CK_ATTRIBUTE setpriv[] = {{CKA_PRIVATE, &no, 1}};
	CK_ATTRIBUTE setclass[] = {{CKA_CLASS, &data_class, sizeof(data_class)}};
	CK_ATTRIBUTE setref[] = {{CKA_HSMGATE_REF, "x", 1}};
	CK_ATTRIBUTE setunknown[] = {{CKA_MODULUS, "x", 1}};
	CK_ATTRIBUTE setcopy_no[] = {{CKA_COPYABLE, &no, 1}};
	CK_ATTRIBUTE setcopy_yes[] = {{CKA_COPYABLE, &yes, 1}};
	CK_ATTRIBUTE badbool[] = {{CKA_COPYABLE, "\x01\x00", 2}};
	char buf[32];
	CK_ATTRIBUTE q[] = {{CKA_LABEL, buf, sizeof(buf)}};
	CK_SESSION_HANDLE h;
	CK_OBJECT_HANDLE o;

	t_setup();
	t_ready();
	CU_ASSERT_FATAL(ck_open(CONN_A, RW, &h) == CKR_OK);
	CU_ASSERT_FATAL(create_data(CONN_A, h, CK_TRUE, CK_FALSE, "label", &o) == CKR_OK);
	CU_ASSERT_EQUAL(set_attrs(CONN_A, h, o, setlabel, 2), CKR_OK);
	CU_ASSERT_EQUAL(get_attrs(CONN_A, h, o, q, 1), CKR_OK);
	CU_ASSERT(q[0].ulValueLen == 7 && memcmp(buf, "renamed", 7) == 0);
	CU_ASSERT_EQUAL(set_attrs(CONN_A, h, o, settoken, 1), CKR_ATTRIBUTE_READ_ONLY);
	CU_ASSERT_EQUAL(set_attrs(CONN_A, h, o, setpriv, 1), CKR_ATTRIBUTE_READ_ONLY);
	CU_ASSERT_EQUAL(set_attrs(CONN_A, h, o, setclass, 1), CKR_ATTRIBUTE_READ_ONLY);
	CU_ASSERT_EQUAL(set_attrs(CONN_A, h, o, setref, 1), CKR_ATTRIBUTE_READ_ONLY);
	CU_ASSERT_EQUAL(set_attrs(CONN_A, h, o, setunknown, 1), CKR_ATTRIBUTE_TYPE_INVALID);
	CU_ASSERT_EQUAL(set_attrs(CONN_A, h, o, badbool, 1), CKR_ATTRIBUTE_VALUE_INVALID);
	CU_ASSERT_EQUAL(set_attrs(CONN_A, h, o, setcopy_no, 1), CKR_OK);
	CU_ASSERT_EQUAL(set_attrs(CONN_A, h, o, setcopy_yes, 1), CKR_ATTRIBUTE_READ_ONLY);
	/* A refused template changes nothing. */
	CU_ASSERT_EQUAL(get_attrs(CONN_A, h, o, q, 1), CKR_OK);
	CU_ASSERT(q[0].ulValueLen == 7 && memcmp(buf, "renamed", 7) == 0);
	/* The change persisted. */
	t_reopen();
	CU_ASSERT_FATAL(ck_open(CONN_A, RW, &h) == CKR_OK);
	CU_ASSERT_EQUAL_FATAL(find(CONN_A, h, q, 0, &o), 1);
	q[0].ulValueLen = sizeof(buf);
	CU_ASSERT_EQUAL(get_attrs(CONN_A, h, o, q, 1), CKR_OK);
	CU_ASSERT(q[0].ulValueLen == 7 && memcmp(buf, "renamed", 7) == 0);
	t_teardown();
}

static void
test_set_not_modifiable(void)
{
	CK_ATTRIBUTE t[] = {{CKA_CLASS, &data_class, sizeof(data_class)}, {CKA_MODIFIABLE, &no, 1}};
	CK_ATTRIBUTE setlabel[] = {{CKA_LABEL, "renamed", 7}};
	CK_SESSION_HANDLE h;
	CK_OBJECT_HANDLE o;

	t_setup();
	t_ready();
	CU_ASSERT_FATAL(ck_open(CONN_A, RW, &h) == CKR_OK);
	CU_ASSERT_FATAL(create(CONN_A, h, t, 2, &o) == CKR_OK);
	CU_ASSERT_EQUAL(set_attrs(CONN_A, h, o, setlabel, 1), CKR_ACTION_PROHIBITED);
	t_teardown();
}

static void
test_set_token_object_read_only_session(void)
{
	CK_ATTRIBUTE setlabel[] = {{CKA_LABEL, "renamed", 7}};
	CK_SESSION_HANDLE rw, ro;
	CK_OBJECT_HANDLE o;

	t_setup();
	t_ready();
	CU_ASSERT_FATAL(ck_open(CONN_A, RW, &rw) == CKR_OK);
	CU_ASSERT_FATAL(ck_open(CONN_A, RO, &ro) == CKR_OK);
	CU_ASSERT_FATAL(create_data(CONN_A, rw, CK_TRUE, CK_FALSE, "t", &o) == CKR_OK);
	CU_ASSERT_EQUAL(set_attrs(CONN_A, ro, o, setlabel, 1), CKR_SESSION_READ_ONLY);
	CU_ASSERT_EQUAL(destroy(CONN_A, ro, o), CKR_SESSION_READ_ONLY);
	t_teardown();
}

static void
test_destroy(void)
{
	CK_ATTRIBUTE nd[] = {{CKA_CLASS, &data_class, sizeof(data_class)},
	                     {CKA_DESTROYABLE, &no, 1}};
	CK_OBJECT_HANDLE o, o2, found[8];
	CK_SESSION_HANDLE h;

	t_setup();
	t_ready();
	CU_ASSERT_FATAL(ck_open(CONN_A, RW, &h) == CKR_OK);
	CU_ASSERT_FATAL(create_data(CONN_A, h, CK_TRUE, CK_FALSE, "t", &o) == CKR_OK);
	CU_ASSERT_EQUAL(destroy(CONN_A, h, o), CKR_OK);
	CU_ASSERT_EQUAL(destroy(CONN_A, h, o), CKR_OBJECT_HANDLE_INVALID);
	CU_ASSERT_FATAL(create(CONN_A, h, nd, 2, &o2) == CKR_OK);
	CU_ASSERT_EQUAL(destroy(CONN_A, h, o2), CKR_ACTION_PROHIBITED);
	/* Handles are never reused. */
	CU_ASSERT(o2 > o);
	t_reopen();
	CU_ASSERT_FATAL(ck_open(CONN_A, RW, &h) == CKR_OK);
	CU_ASSERT_EQUAL(find(CONN_A, h, NULL, 0, found), 0);
	t_teardown();
}

static void
test_object_size(void)
{
	struct proto_cur c;
	CK_ULONG size = 0;
	CK_SESSION_HANDLE h;
	CK_OBJECT_HANDLE o;

	t_setup();
	t_ready();
	CU_ASSERT_FATAL(ck_open(CONN_A, RW, &h) == CKR_OK);
	CU_ASSERT_FATAL(create_data(CONN_A, h, CK_FALSE, CK_FALSE, "t", &o) == CKR_OK);
	CU_ASSERT_EQUAL(CALL(CONN_A, C_GetObjectSize, &c, (PUTU(h), PUTU(o))), CKR_OK);
	CU_ASSERT(proto_get_ulong(&c, &size) == 0);
	CU_ASSERT(size > 11 && size < 1000);
	CU_ASSERT_EQUAL(CALL(CONN_A, C_GetObjectSize, NULL, (PUTU(h), PUTU(o + 99))),
	                CKR_OBJECT_HANDLE_INVALID);
	t_teardown();
}

static void
test_session_objects_die_with_session(void)
{
	CK_OBJECT_HANDLE o, found[8];
	CK_SESSION_HANDLE h1, h2;

	t_setup();
	t_ready();
	CU_ASSERT_FATAL(ck_open(CONN_A, RW, &h1) == CKR_OK);
	CU_ASSERT_FATAL(ck_open(CONN_A, RW, &h2) == CKR_OK);
	CU_ASSERT_FATAL(create_data(CONN_A, h1, CK_FALSE, CK_FALSE, "s", &o) == CKR_OK);
	/* Visible to the application's other sessions ... */
	CU_ASSERT_EQUAL(find(CONN_A, h2, NULL, 0, found), 1);
	/* ... until the session that made it closes. */
	CU_ASSERT_EQUAL(ck_close(CONN_A, h1), CKR_OK);
	CU_ASSERT_EQUAL(find(CONN_A, h2, NULL, 0, found), 0);
	t_teardown();
}

static void
test_token_objects_persist(void)
{
	CK_OBJECT_HANDLE pub, priv, found[8];
	char ref1[32], ref2[32], val[32];
	CK_ATTRIBUTE q1[] = {{CKA_HSMGATE_REF, ref1, sizeof(ref1)}};
	CK_ATTRIBUTE q2[] = {{CKA_HSMGATE_REF, ref2, sizeof(ref2)}, {CKA_VALUE, val, sizeof(val)}};
	CK_SESSION_HANDLE h;

	t_setup();
	t_ready();
	CU_ASSERT_FATAL(ck_open(CONN_A, RW, &h) == CKR_OK);
	CU_ASSERT_FATAL(ck_login(CONN_A, h, CKU_USER, USER_PIN) == CKR_OK);
	CU_ASSERT_FATAL(create_data(CONN_A, h, CK_TRUE, CK_FALSE, "pub", &pub) == CKR_OK);
	CU_ASSERT_FATAL(create_data(CONN_A, h, CK_TRUE, CK_TRUE, "priv", &priv) == CKR_OK);
	CU_ASSERT_FATAL(get_attrs(CONN_A, h, priv, q1, 1) == CKR_OK);
	t_reopen();
	CU_ASSERT_FATAL(ck_open(CONN_A, RW, &h) == CKR_OK);
	CU_ASSERT_EQUAL(find(CONN_A, h, NULL, 0, found), 1);
	CU_ASSERT_FATAL(ck_login(CONN_A, h, CKU_USER, USER_PIN) == CKR_OK);
	CU_ASSERT_EQUAL(find(CONN_A, h, q1, 1, found), 1);
	/* The ref is immutable across restarts; the value came back. */
	CU_ASSERT_EQUAL(get_attrs(CONN_A, h, found[0], q2, 2), CKR_OK);
	CU_ASSERT(memcmp(ref1, ref2, 32) == 0);
	CU_ASSERT(q2[1].ulValueLen == 11 && memcmp(val, "value-bytes", 11) == 0);
	t_teardown();
}

/* ---- key and certificate objects (issue 3) ------------------------------------------------ */

static const CK_BYTE k32[32] = "0123456789abcdef0123456789abcdef";

static void
test_create_secret_key(void)
{
	CK_ULONG len = 32;
	CK_KEY_TYPE des = CKK_DES3;
	CK_ATTRIBUTE ok[] = {ATTR(CKA_CLASS, t_secret),
	                     ATTR(CKA_KEY_TYPE, t_aes),
	                     {CKA_VALUE, (void *)k32, 32},
	                     ATTR(CKA_PRIVATE, t_no)};
	CK_ATTRIBUTE withlen[] = {ATTR(CKA_CLASS, t_secret),
	                          ATTR(CKA_KEY_TYPE, t_aes),
	                          {CKA_VALUE, (void *)k32, 32},
	                          ATTR(CKA_VALUE_LEN, len)};
	CK_ATTRIBUTE noval[] = {ATTR(CKA_CLASS, t_secret), ATTR(CKA_KEY_TYPE, t_aes)};
	CK_ATTRIBUTE badlen[] = {
	        ATTR(CKA_CLASS, t_secret), ATTR(CKA_KEY_TYPE, t_aes), {CKA_VALUE, (void *)k32, 17}};
	CK_ATTRIBUTE local[] = {ATTR(CKA_CLASS, t_secret),
	                        ATTR(CKA_KEY_TYPE, t_aes),
	                        {CKA_VALUE, (void *)k32, 32},
	                        ATTR(CKA_LOCAL, t_no)};
	CK_ATTRIBUTE as[] = {ATTR(CKA_CLASS, t_secret),
	                     ATTR(CKA_KEY_TYPE, t_aes),
	                     {CKA_VALUE, (void *)k32, 32},
	                     ATTR(CKA_ALWAYS_SENSITIVE, t_no)};
	CK_ATTRIBUTE cv[] = {ATTR(CKA_CLASS, t_secret),
	                     ATTR(CKA_KEY_TYPE, t_aes),
	                     {CKA_VALUE, (void *)k32, 32},
	                     {CKA_CHECK_VALUE, "abc", 3}};
	CK_ATTRIBUTE des3[] = {
	        ATTR(CKA_CLASS, t_secret), ATTR(CKA_KEY_TYPE, des), {CKA_VALUE, (void *)k32, 24}};
	CK_ATTRIBUTE notype[] = {ATTR(CKA_CLASS, t_secret), {CKA_VALUE, (void *)k32, 32}};
	CK_ATTRIBUTE modbits[] = {ATTR(CKA_CLASS, t_secret),
	                          ATTR(CKA_KEY_TYPE, t_aes),
	                          {CKA_VALUE, (void *)k32, 32},
	                          ATTR(CKA_MODULUS_BITS, len)};
	CK_ATTRIBUTE aa[] = {ATTR(CKA_CLASS, t_secret),
	                     ATTR(CKA_KEY_TYPE, t_aes),
	                     {CKA_VALUE, (void *)k32, 32},
	                     ATTR(CKA_ALWAYS_AUTHENTICATE, t_yes)};
	CK_BYTE chk[3], ref[16], zero[16] = {0};
	CK_ATTRIBUTE q = {CKA_CHECK_VALUE, chk, 3};
	EVP_CIPHER_CTX *c;
	CK_OBJECT_HANDLE o;
	CK_SESSION_HANDLE h;
	int outl = 0;

	t_user_session(&h);
	CU_ASSERT_EQUAL_FATAL(ck_create(CONN_A, h, ok, 4, &o), CKR_OK);
	/* defaults and what the token sets (v2.40 §4.7, §4.10) */
	CU_ASSERT_EQUAL(ck_bool(CONN_A, h, o, CKA_SENSITIVE), 1);
	CU_ASSERT_EQUAL(ck_bool(CONN_A, h, o, CKA_EXTRACTABLE), 0);
	CU_ASSERT_EQUAL(ck_bool(CONN_A, h, o, CKA_LOCAL), 0);
	CU_ASSERT_EQUAL(ck_bool(CONN_A, h, o, CKA_ALWAYS_SENSITIVE), 0);
	CU_ASSERT_EQUAL(ck_bool(CONN_A, h, o, CKA_NEVER_EXTRACTABLE), 0);
	CU_ASSERT_EQUAL(ck_bool(CONN_A, h, o, CKA_DERIVE), 0);
	CU_ASSERT_EQUAL(ck_bool(CONN_A, h, o, CKA_ENCRYPT), 1);
	CU_ASSERT_EQUAL(ck_ulong(CONN_A, h, o, CKA_KEY_GEN_MECHANISM), CK_UNAVAILABLE_INFORMATION);
	CU_ASSERT_EQUAL(ck_ulong(CONN_A, h, o, CKA_VALUE_LEN), 32);
	/* §2.8.2: "the first three bytes of the ECB encryption of a single block of null
	 * (0x00) bytes" */
	CU_ASSERT_EQUAL(ck_get(CONN_A, h, o, &q, 1), CKR_OK);
	c = EVP_CIPHER_CTX_new();
	CU_ASSERT(EVP_EncryptInit_ex(c, EVP_aes_256_ecb(), NULL, k32, NULL) == 1);
	CU_ASSERT(EVP_EncryptUpdate(c, ref, &outl, zero, 16) == 1);
	EVP_CIPHER_CTX_free(c);
	CU_ASSERT(memcmp(chk, ref, 3) == 0);
	/* the template rules */
	CU_ASSERT_EQUAL(ck_create(CONN_A, h, withlen, 4, &o), CKR_TEMPLATE_INCONSISTENT);
	CU_ASSERT_EQUAL(ck_create(CONN_A, h, modbits, 4, &o), CKR_ATTRIBUTE_TYPE_INVALID);
	CU_ASSERT_EQUAL(ck_create(CONN_A, h, noval, 2, &o), CKR_TEMPLATE_INCOMPLETE);
	CU_ASSERT_EQUAL(ck_create(CONN_A, h, notype, 2, &o), CKR_TEMPLATE_INCOMPLETE);
	CU_ASSERT_EQUAL(ck_create(CONN_A, h, badlen, 3, &o), CKR_ATTRIBUTE_VALUE_INVALID);
	CU_ASSERT_EQUAL(ck_create(CONN_A, h, local, 4, &o), CKR_ATTRIBUTE_READ_ONLY);
	CU_ASSERT_EQUAL(ck_create(CONN_A, h, as, 4, &o), CKR_ATTRIBUTE_READ_ONLY);
	CU_ASSERT_EQUAL(ck_create(CONN_A, h, cv, 4, &o), CKR_ATTRIBUTE_READ_ONLY);
	CU_ASSERT_EQUAL(ck_create(CONN_A, h, des3, 3, &o), CKR_ATTRIBUTE_VALUE_INVALID);
	CU_ASSERT_EQUAL(ck_create(CONN_A, h, aa, 4, &o), CKR_ATTRIBUTE_TYPE_INVALID);
	/* secret keys are private by default: without a login, CKR_USER_NOT_LOGGED_IN */
	CU_ASSERT_EQUAL(ck_logout(CONN_A, h), CKR_OK);
	CU_ASSERT_EQUAL(ck_create(CONN_A, h, ok, 3, &o), CKR_USER_NOT_LOGGED_IN);
	CU_ASSERT_EQUAL(ck_create(CONN_A, h, ok, 4, &o), CKR_OK);
	t_teardown();
}

/* "sensitive values never readable (CKR_ATTRIBUTE_SENSITIVE with length
 * CK_UNAVAILABLE_INFORMATION)" — also for unextractable ones; and the one-way attributes. */
static void
test_sensitive_and_one_way(void)
{
	CK_BYTE v[32];
	CK_ULONG len = 0;
	CK_ATTRIBUTE q[] = {{CKA_VALUE, v, sizeof(v)}, {CKA_LABEL, NULL, 0}};
	CK_ATTRIBUTE qlen[] = {{CKA_VALUE, NULL, 0}};
	CK_ATTRIBUTE sens_off[] = {ATTR(CKA_SENSITIVE, t_no)};
	CK_ATTRIBUTE sens_on[] = {ATTR(CKA_SENSITIVE, t_yes)};
	CK_ATTRIBUTE extr_on[] = {ATTR(CKA_EXTRACTABLE, t_yes)};
	CK_ATTRIBUTE extr_off[] = {ATTR(CKA_EXTRACTABLE, t_no)};
	CK_ATTRIBUTE value[] = {{CKA_VALUE, (void *)k32, 32}};
	CK_ATTRIBUTE vlen[] = {ATTR(CKA_VALUE_LEN, len)};
	CK_ATTRIBUTE never[] = {ATTR(CKA_NEVER_EXTRACTABLE, t_yes)};
	CK_ATTRIBUTE label[] = {{CKA_LABEL, "new", 3}};
	CK_OBJECT_HANDLE open_, unextr, sens, found[32];
	CK_SESSION_HANDLE h;

	t_user_session(&h);
	open_ = t_aes_key(h, k32, CK_FALSE, CK_TRUE);
	unextr = t_aes_key(h, k32, CK_FALSE, CK_FALSE);
	sens = t_aes_key(h, k32, CK_TRUE, CK_TRUE);
	/* a value that cannot be read cannot be searched for */
	CU_ASSERT_EQUAL_FATAL(find(CONN_A, h, value, 1, found), 1);
	CU_ASSERT_EQUAL(found[0], open_);
	CU_ASSERT_EQUAL(ck_get(CONN_A, h, open_, q, 1), CKR_OK);
	CU_ASSERT(q[0].ulValueLen == 32 && memcmp(v, k32, 32) == 0);
	q[0].ulValueLen = sizeof(v);
	CU_ASSERT_EQUAL(ck_get(CONN_A, h, sens, q, 2), CKR_ATTRIBUTE_SENSITIVE);
	CU_ASSERT_EQUAL(q[0].ulValueLen, CK_UNAVAILABLE_INFORMATION);
	CU_ASSERT_EQUAL(q[1].ulValueLen, 0); /* the rest of the template is still processed */
	q[0].ulValueLen = sizeof(v);
	CU_ASSERT_EQUAL(ck_get(CONN_A, h, unextr, q, 1), CKR_ATTRIBUTE_SENSITIVE);
	CU_ASSERT_EQUAL(q[0].ulValueLen, CK_UNAVAILABLE_INFORMATION);
	CU_ASSERT_EQUAL(ck_get(CONN_A, h, sens, qlen, 1), CKR_ATTRIBUTE_SENSITIVE);
	CU_ASSERT_EQUAL(qlen[0].ulValueLen, CK_UNAVAILABLE_INFORMATION);
	/* CKA_SENSITIVE: false → true only; CKA_EXTRACTABLE: true → false only */
	CU_ASSERT_EQUAL(ck_set(CONN_A, h, sens, sens_off, 1), CKR_ATTRIBUTE_READ_ONLY);
	CU_ASSERT_EQUAL(ck_set(CONN_A, h, unextr, extr_on, 1), CKR_ATTRIBUTE_READ_ONLY);
	CU_ASSERT_EQUAL(ck_set(CONN_A, h, open_, sens_on, 1), CKR_OK);
	CU_ASSERT_EQUAL(ck_set(CONN_A, h, open_, sens_on, 1), CKR_OK);
	CU_ASSERT_EQUAL(ck_bool(CONN_A, h, open_, CKA_ALWAYS_SENSITIVE), 0);
	CU_ASSERT_EQUAL(ck_set(CONN_A, h, sens, extr_off, 1), CKR_OK);
	CU_ASSERT_EQUAL(ck_bool(CONN_A, h, sens, CKA_NEVER_EXTRACTABLE), 0);
	q[0].ulValueLen = sizeof(v);
	CU_ASSERT_EQUAL(ck_get(CONN_A, h, open_, q, 1), CKR_ATTRIBUTE_SENSITIVE);
	/* key material, computed and token attributes are read-only */
	CU_ASSERT_EQUAL(ck_set(CONN_A, h, unextr, value, 1), CKR_ATTRIBUTE_READ_ONLY);
	CU_ASSERT_EQUAL(ck_set(CONN_A, h, unextr, vlen, 1), CKR_ATTRIBUTE_READ_ONLY);
	CU_ASSERT_EQUAL(ck_set(CONN_A, h, unextr, never, 1), CKR_ATTRIBUTE_READ_ONLY);
	CU_ASSERT_EQUAL(ck_set(CONN_A, h, unextr, label, 1), CKR_OK);
	t_teardown();
}

/* RSA public key import: CKA_MODULUS_BITS is computed ("must not be specified when object is
 * created with C_CreateObject"); a private key import; the public parts stay readable. */
static void
test_create_rsa_keys(void)
{
	CK_MECHANISM gen = {CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0};
	CK_ULONG bits = 2048;
	CK_ATTRIBUTE gt[] = {ATTR(CKA_MODULUS_BITS, bits)};
	CK_ATTRIBUTE xt[] = {ATTR(CKA_SENSITIVE, t_no), ATTR(CKA_EXTRACTABLE, t_yes)};
	CK_BYTE n[256], e[8], d[256];
	CK_ATTRIBUTE q[] = {{CKA_MODULUS, n, sizeof(n)},
	                    {CKA_PUBLIC_EXPONENT, e, sizeof(e)},
	                    {CKA_PRIVATE_EXPONENT, d, sizeof(d)}};
	CK_ATTRIBUTE pubt[] = {ATTR(CKA_CLASS, t_pubc),
	                       ATTR(CKA_KEY_TYPE, t_rsak),
	                       {CKA_MODULUS, n, 256},
	                       {CKA_PUBLIC_EXPONENT, e, 3}};
	CK_ATTRIBUTE pubbits[] = {ATTR(CKA_CLASS, t_pubc),
	                          ATTR(CKA_KEY_TYPE, t_rsak),
	                          {CKA_MODULUS, n, 256},
	                          {CKA_PUBLIC_EXPONENT, e, 3},
	                          ATTR(CKA_MODULUS_BITS, bits)};
	CK_ATTRIBUTE privt[] = {ATTR(CKA_CLASS, t_privc),
	                        ATTR(CKA_KEY_TYPE, t_rsak),
	                        {CKA_MODULUS, n, 256},
	                        {CKA_PUBLIC_EXPONENT, e, 3},
	                        {CKA_PRIVATE_EXPONENT, d, 256}};
	CK_OBJECT_HANDLE pub, priv, p2, v2;
	CK_SESSION_HANDLE h;

	t_user_session(&h);
	CU_ASSERT_FATAL(ck_genpair(CONN_A, h, &gen, gt, 1, xt, 2, &pub, &priv) == CKR_OK);
	CU_ASSERT_EQUAL_FATAL(ck_get(CONN_A, h, priv, q, 3), CKR_OK);
	CU_ASSERT_EQUAL_FATAL(q[1].ulValueLen, 3);
	CU_ASSERT_EQUAL(ck_create(CONN_A, h, pubbits, 5, &p2), CKR_TEMPLATE_INCONSISTENT);
	CU_ASSERT_EQUAL_FATAL(ck_create(CONN_A, h, pubt, 4, &p2), CKR_OK);
	CU_ASSERT_EQUAL(ck_ulong(CONN_A, h, p2, CKA_MODULUS_BITS), 2048);
	CU_ASSERT_EQUAL(ck_bool(CONN_A, h, p2, CKA_PRIVATE), 0);
	/* a private key without its CRT parts: sensitive by default, modulus readable */
	CU_ASSERT_EQUAL_FATAL(ck_create(CONN_A, h, privt, 5, &v2), CKR_OK);
	CU_ASSERT_EQUAL(ck_bool(CONN_A, h, v2, CKA_PRIVATE), 1);
	q[2].ulValueLen = sizeof(d);
	CU_ASSERT_EQUAL(ck_get(CONN_A, h, v2, q, 3), CKR_ATTRIBUTE_SENSITIVE);
	CU_ASSERT_EQUAL(q[0].ulValueLen, 256);
	CU_ASSERT_EQUAL(q[2].ulValueLen, CK_UNAVAILABLE_INFORMATION);
	privt[4].ulValueLen = 10;
	CU_ASSERT_EQUAL(ck_create(CONN_A, h, privt, 4, &v2), CKR_TEMPLATE_INCOMPLETE);
	t_teardown();
}

static void
test_create_certificate(void)
{
	CK_OBJECT_CLASS certc = CKO_CERTIFICATE;
	CK_CERTIFICATE_TYPE x509 = CKC_X_509, wtls = CKC_WTLS;
	CK_ATTRIBUTE ok[] = {ATTR(CKA_CLASS, certc),   ATTR(CKA_CERTIFICATE_TYPE, x509),
	                     {CKA_SUBJECT, "subj", 4}, {CKA_VALUE, "der-bytes", 9},
	                     {CKA_ID, "\x01", 1},      ATTR(CKA_TOKEN, t_yes)};
	CK_ATTRIBUTE nosubj[] = {ATTR(CKA_CLASS, certc),
	                         ATTR(CKA_CERTIFICATE_TYPE, x509),
	                         {CKA_VALUE, "der-bytes", 9}};
	CK_ATTRIBUTE other[] = {ATTR(CKA_CLASS, certc),
	                        ATTR(CKA_CERTIFICATE_TYPE, wtls),
	                        {CKA_SUBJECT, "subj", 4},
	                        {CKA_VALUE, "der-bytes", 9}};
	CK_ATTRIBUTE trusted[] = {ATTR(CKA_CLASS, certc),
	                          ATTR(CKA_CERTIFICATE_TYPE, x509),
	                          {CKA_SUBJECT, "subj", 4},
	                          {CKA_VALUE, "der-bytes", 9},
	                          ATTR(CKA_TRUSTED, t_yes)};
	CK_ATTRIBUTE value[] = {{CKA_VALUE, "other", 5}};
	CK_BYTE buf[16];
	CK_ATTRIBUTE q = {CKA_VALUE, buf, sizeof(buf)};
	CK_OBJECT_HANDLE o;
	CK_SESSION_HANDLE h, ro;

	t_user_session(&h);
	CU_ASSERT_EQUAL_FATAL(ck_create(CONN_A, h, ok, 6, &o), CKR_OK);
	CU_ASSERT_EQUAL(ck_get(CONN_A, h, o, &q, 1), CKR_OK);
	CU_ASSERT(q.ulValueLen == 9 && memcmp(buf, "der-bytes", 9) == 0);
	CU_ASSERT_EQUAL(ck_bool(CONN_A, h, o, CKA_TRUSTED), 0);
	CU_ASSERT_EQUAL(ck_bool(CONN_A, h, o, CKA_PRIVATE), 0);
	CU_ASSERT_EQUAL(ck_ulong(CONN_A, h, o, CKA_CERTIFICATE_CATEGORY), 0);
	CU_ASSERT_EQUAL(ck_set(CONN_A, h, o, value, 1), CKR_ATTRIBUTE_READ_ONLY);
	CU_ASSERT_EQUAL(ck_create(CONN_A, h, nosubj, 3, &o), CKR_TEMPLATE_INCOMPLETE);
	CU_ASSERT_EQUAL(ck_create(CONN_A, h, other, 4, &o), CKR_ATTRIBUTE_VALUE_INVALID);
	CU_ASSERT_EQUAL(ck_create(CONN_A, h, trusted, 5, &o), CKR_ATTRIBUTE_READ_ONLY);
	CU_ASSERT_FATAL(ck_open(CONN_A, RO, &ro) == CKR_OK);
	CU_ASSERT_EQUAL(ck_create(CONN_A, ro, ok, 6, &o), CKR_SESSION_READ_ONLY);
	/* the SO may create a trusted certificate */
	CU_ASSERT_EQUAL(ck_close(CONN_A, ro), CKR_OK);
	CU_ASSERT_EQUAL(ck_logout(CONN_A, h), CKR_OK);
	CU_ASSERT_EQUAL(ck_login(CONN_A, h, CKU_SO, SO_PIN), CKR_OK);
	CU_ASSERT_EQUAL(ck_create(CONN_A, h, trusted, 5, &o), CKR_OK);
	CU_ASSERT_EQUAL(ck_bool(CONN_A, h, o, CKA_TRUSTED), 1);
	t_teardown();
}

static void
test_copy_object(void)
{
	CK_ATTRIBUTE to_token[] = {ATTR(CKA_TOKEN, t_yes), {CKA_LABEL, "copy", 4}};
	CK_ATTRIBUTE extr_on[] = {ATTR(CKA_EXTRACTABLE, t_yes)};
	CK_ATTRIBUTE extr_off[] = {ATTR(CKA_EXTRACTABLE, t_no)};
	CK_ATTRIBUTE sens_off[] = {ATTR(CKA_SENSITIVE, t_no)};
	CK_ATTRIBUTE value[] = {{CKA_VALUE, (void *)k32, 32}};
	CK_ATTRIBUTE nocopy[] = {ATTR(CKA_COPYABLE, t_no)};
	CK_ATTRIBUTE copy_on[] = {ATTR(CKA_COPYABLE, t_yes)};
	CK_ATTRIBUTE mod_off[] = {ATTR(CKA_MODIFIABLE, t_no)};
	CK_ATTRIBUTE mod_on[] = {ATTR(CKA_MODIFIABLE, t_yes)};
	CK_ATTRIBUTE label[] = {{CKA_LABEL, "x", 1}};
	CK_ATTRIBUTE unknown[] = {{CKA_MODULUS, "x", 1}};
	CK_OBJECT_HANDLE k, c, c2, c3;
	CK_SESSION_HANDLE h, ro;
	CK_BYTE v[32];
	CK_ATTRIBUTE q = {CKA_VALUE, v, sizeof(v)};

	t_user_session(&h);
	k = t_aes_key(h, k32, CK_FALSE, CK_TRUE);
	CU_ASSERT_EQUAL_FATAL(ck_copy(CONN_A, h, k, to_token, 2, &c), CKR_OK);
	CU_ASSERT(c != k);
	CU_ASSERT_EQUAL(ck_bool(CONN_A, h, c, CKA_TOKEN), 1);
	CU_ASSERT_EQUAL(ck_get(CONN_A, h, c, &q, 1), CKR_OK);
	CU_ASSERT(q.ulValueLen == 32 && memcmp(v, k32, 32) == 0);
	/* the copy works as a key */
	CU_ASSERT_EQUAL(ck_copy(CONN_A, h, k, extr_off, 1, &c2), CKR_OK);
	CU_ASSERT_EQUAL(ck_copy(CONN_A, h, c2, extr_on, 1, &c3), CKR_ATTRIBUTE_READ_ONLY);
	CU_ASSERT_EQUAL(ck_copy(CONN_A, h, k, value, 1, &c3), CKR_ATTRIBUTE_READ_ONLY);
	CU_ASSERT_EQUAL(ck_copy(CONN_A, h, k, unknown, 1, &c3), CKR_ATTRIBUTE_TYPE_INVALID);
	CU_ASSERT_EQUAL(ck_copy(CONN_A, h, 0x7777, label, 1, &c3), CKR_OBJECT_HANDLE_INVALID);
	/* a sensitive key stays sensitive in its copies */
	CU_ASSERT_EQUAL(ck_copy(CONN_A, h, c2, mod_off, 1, &c3), CKR_OK);
	CU_ASSERT_EQUAL(ck_copy(CONN_A, h, c3, mod_on, 1, &c), CKR_ATTRIBUTE_READ_ONLY);
	CU_ASSERT_EQUAL(ck_copy(CONN_A, h, c3, label, 1, &c), CKR_ATTRIBUTE_READ_ONLY);
	CU_ASSERT_EQUAL(ck_set(CONN_A, h, k, sens_off, 1), CKR_OK);
	/* CKA_COPYABLE false: "the object cannot be copied" */
	CU_ASSERT_EQUAL(ck_set(CONN_A, h, k, nocopy, 1), CKR_OK);
	CU_ASSERT_EQUAL(ck_set(CONN_A, h, k, copy_on, 1), CKR_ATTRIBUTE_READ_ONLY);
	CU_ASSERT_EQUAL(ck_copy(CONN_A, h, k, label, 1, &c3), CKR_ACTION_PROHIBITED);
	/* session rules apply to the copy */
	CU_ASSERT_FATAL(ck_open(CONN_A, RO, &ro) == CKR_OK);
	CU_ASSERT_EQUAL(ck_copy(CONN_A, ro, c2, to_token, 1, &c3), CKR_SESSION_READ_ONLY);
	t_teardown();
}

static const struct test_case cases[] = {
        {"create, defaults", test_create_get_defaults},
        {"C_GetAttributeValue semantics", test_get_attribute_semantics},
        {"create refusals", test_create_refusals},
        {"token object in R/O session", test_create_token_in_ro_session},
        {"private object needs user", test_create_private_needs_user},
        {"find, private visibility", test_find_and_private_visibility},
        {"find operation rules", test_find_operation_rules},
        {"C_SetAttributeValue", test_set_attribute},
        {"not modifiable", test_set_not_modifiable},
        {"token object, R/O session", test_set_token_object_read_only_session},
        {"C_DestroyObject", test_destroy},
        {"C_GetObjectSize", test_object_size},
        {"session objects die with session", test_session_objects_die_with_session},
        {"token objects persist", test_token_objects_persist},
        {"secret key import: defaults, token attributes, template rules", test_create_secret_key},
        {"sensitive/unextractable values; one-way attributes", test_sensitive_and_one_way},
        {"RSA key import: computed CKA_MODULUS_BITS, sensitive parts", test_create_rsa_keys},
        {"X.509 certificates; CKA_TRUSTED by the SO only", test_create_certificate},
        {"C_CopyObject rules", test_copy_object},
        {NULL, NULL},
};

void
test_register(void)
{
	test_suite_add("hsm-partitions/object", NULL, NULL, cases);
}
