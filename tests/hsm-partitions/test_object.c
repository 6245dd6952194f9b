/* tests/hsm-partitions/test_object.c — hsm-partitions/object.c: CKO_DATA objects through
 * C_CreateObject, C_FindObjects*, C_GetAttributeValue (§5.7 semantics), C_SetAttributeValue,
 * C_DestroyObject, C_GetObjectSize; private visibility; persistence across a restart. */
#include "tests/hsm-partitions/part_test.h"

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
	CU_ASSERT_EQUAL(create(CONN_A, h, keyc, 1, &o), CKR_FUNCTION_NOT_SUPPORTED);
	CU_ASSERT_EQUAL(create(CONN_A, h, certc, 1, &o), CKR_TEMPLATE_INCONSISTENT);
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
        {NULL, NULL},
};

void
test_register(void)
{
	test_suite_add("hsm-partitions/object", NULL, NULL, cases);
}
