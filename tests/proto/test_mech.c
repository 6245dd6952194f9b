/* tests/proto/test_mech.c — the mechanism registry and encoding (proto/mech.c). */
#include "tests/proto/proto_test.h"

static int
dec_mech(struct proto_cur *c, struct proto_arena *a, void *ctx)
{
	CK_MECHANISM m;

	(void)ctx;
	return proto_get_mechanism(c, a, &m);
}

/* Encodes m, decodes it into *out (arena a), checks the cursor ended, then runs the
 * truncation and bit-flip loops on the encoding. */
static void
roundtrip(const CK_MECHANISM *m, struct proto_arena *a, CK_MECHANISM *out)
{
	struct proto_buf b;
	struct proto_cur c;

	proto_buf_init(&b);
	CU_ASSERT_EQUAL_FATAL(proto_put_mechanism(&b, m), 0);
	proto_cur_init(&c, b.data, b.len);
	CU_ASSERT_EQUAL_FATAL(proto_get_mechanism(&c, a, out), 0);
	CU_ASSERT_EQUAL(proto_cur_end(&c), 0);
	CU_ASSERT_EQUAL(out->mechanism, m->mechanism);
	CU_ASSERT_EQUAL(out->ulParameterLen, m->ulParameterLen);
	pt_truncations(b.data, b.len, dec_mech, NULL);
	pt_bitflips(b.data, b.len, dec_mech, NULL);
	proto_buf_free(&b);
}

static int
encode_err(const CK_MECHANISM *m)
{
	struct proto_buf b;
	int r;

	proto_buf_init(&b);
	r = proto_put_mechanism(&b, m);
	proto_buf_free(&b);
	return r;
}

static void
test_names_and_kinds(void)
{
	CU_ASSERT_STRING_EQUAL(proto_mech_name(CKM_AES_GCM), "CKM_AES_GCM");
	CU_ASSERT_STRING_EQUAL(proto_mech_name(CKM_SHA256_RSA_PKCS_PSS), "CKM_SHA256_RSA_PKCS_PSS");
	CU_ASSERT_STRING_EQUAL(proto_mech_name(CKM_EC_KEY_PAIR_GEN), "CKM_EC_KEY_PAIR_GEN");
	CU_ASSERT_PTR_NULL(proto_mech_name(CKM_VENDOR_DEFINED | 0x1234));

	CU_ASSERT_EQUAL(proto_mech_param_kind(CKM_AES_CBC), PROTO_MP_BYTES);
	CU_ASSERT_EQUAL(proto_mech_param_kind(CKM_AES_CBC_PAD), PROTO_MP_BYTES);
	CU_ASSERT_EQUAL(proto_mech_param_kind(CKM_AES_KEY_WRAP), PROTO_MP_BYTES);
	CU_ASSERT_EQUAL(proto_mech_param_kind(CKM_AES_KEY_WRAP_PAD), PROTO_MP_BYTES);
	CU_ASSERT_EQUAL(proto_mech_param_kind(CKM_AES_OFB), PROTO_MP_BYTES);
	CU_ASSERT_EQUAL(proto_mech_param_kind(CKM_AES_CFB8), PROTO_MP_BYTES);
	CU_ASSERT_EQUAL(proto_mech_param_kind(CKM_AES_CFB64), PROTO_MP_BYTES);
	CU_ASSERT_EQUAL(proto_mech_param_kind(CKM_AES_CFB128), PROTO_MP_BYTES);
	CU_ASSERT_EQUAL(proto_mech_param_kind(CKM_AES_GCM), PROTO_MP_GCM);
	CU_ASSERT_EQUAL(proto_mech_param_kind(CKM_RSA_PKCS_OAEP), PROTO_MP_OAEP);
	CU_ASSERT_EQUAL(proto_mech_param_kind(CKM_RSA_PKCS_PSS), PROTO_MP_PSS);
	CU_ASSERT_EQUAL(proto_mech_param_kind(CKM_SHA1_RSA_PKCS_PSS), PROTO_MP_PSS);
	CU_ASSERT_EQUAL(proto_mech_param_kind(CKM_SHA224_RSA_PKCS_PSS), PROTO_MP_PSS);
	CU_ASSERT_EQUAL(proto_mech_param_kind(CKM_SHA256_RSA_PKCS_PSS), PROTO_MP_PSS);
	CU_ASSERT_EQUAL(proto_mech_param_kind(CKM_SHA384_RSA_PKCS_PSS), PROTO_MP_PSS);
	CU_ASSERT_EQUAL(proto_mech_param_kind(CKM_SHA512_RSA_PKCS_PSS), PROTO_MP_PSS);
	CU_ASSERT_EQUAL(proto_mech_param_kind(CKM_ECDH1_DERIVE), PROTO_MP_ECDH1);
	CU_ASSERT_EQUAL(proto_mech_param_kind(CKM_ECDH1_COFACTOR_DERIVE), PROTO_MP_ECDH1);
	CU_ASSERT_EQUAL(proto_mech_param_kind(CKM_AES_CTR), PROTO_MP_CTR);
	CU_ASSERT_EQUAL(proto_mech_param_kind(CKM_SHA256_HMAC_GENERAL), PROTO_MP_ULONG);
	CU_ASSERT_EQUAL(proto_mech_param_kind(CKM_SHA_1_HMAC_GENERAL), PROTO_MP_ULONG);
	CU_ASSERT_EQUAL(proto_mech_param_kind(CKM_AES_MAC_GENERAL), PROTO_MP_ULONG);
	CU_ASSERT_EQUAL(proto_mech_param_kind(CKM_AES_CMAC_GENERAL), PROTO_MP_ULONG);
	CU_ASSERT_EQUAL(proto_mech_param_kind(CKM_CONCATENATE_BASE_AND_DATA), PROTO_MP_BYTES);
	CU_ASSERT_EQUAL(proto_mech_param_kind(CKM_AES_ECB_ENCRYPT_DATA), PROTO_MP_BYTES);
	CU_ASSERT_EQUAL(proto_mech_param_kind(CKM_SHA256), PROTO_MP_NONE);
	CU_ASSERT_EQUAL(proto_mech_param_kind(CKM_ECDSA), PROTO_MP_NONE);
	CU_ASSERT_EQUAL(proto_mech_param_kind(CKM_VENDOR_DEFINED | 1), PROTO_MP_BYTES);
}

static void
test_none(void)
{
	struct proto_arena *a = proto_arena_new();
	CK_MECHANISM m = {CKM_ECDSA_SHA256, NULL, 0}, g;

	roundtrip(&m, a, &g);
	CU_ASSERT_PTR_NULL(g.pParameter);
	proto_arena_free(a);
}

static void
test_bytes_iv(void)
{
	struct proto_arena *a = proto_arena_new();
	CK_BYTE iv[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
	CK_MECHANISM m = {CKM_AES_CBC_PAD, iv, sizeof(iv)}, g;

	roundtrip(&m, a, &g);
	CU_ASSERT_EQUAL(memcmp(g.pParameter, iv, sizeof(iv)), 0);
	/* An empty, non-NULL parameter stays non-NULL. */
	m.mechanism = CKM_AES_KEY_WRAP;
	m.ulParameterLen = 0;
	roundtrip(&m, a, &g);
	CU_ASSERT_PTR_NOT_NULL(g.pParameter);
	/* Unknown (vendor) mechanism: opaque bytes. */
	m.mechanism = CKM_VENDOR_DEFINED | 0x42;
	m.ulParameterLen = 5;
	roundtrip(&m, a, &g);
	CU_ASSERT_EQUAL(memcmp(g.pParameter, iv, 5), 0);
	proto_arena_free(a);
}

static void
test_gcm(void)
{
	struct proto_arena *a = proto_arena_new();
	CK_BYTE iv[12] = {0xca, 0xfe, 0xba, 0xbe, 0xfa, 0xce, 0xdb, 0xad, 0xde, 0xca, 0xf8, 0x88};
	CK_BYTE aad[20] = "additional-authdata";
	CK_GCM_PARAMS p = {iv, sizeof(iv), 96, aad, sizeof(aad), 128}, *q;
	CK_MECHANISM m = {CKM_AES_GCM, &p, sizeof(p)}, g;

	roundtrip(&m, a, &g);
	q = g.pParameter;
	CU_ASSERT_EQUAL(q->ulIvLen, 12);
	CU_ASSERT_EQUAL(memcmp(q->pIv, iv, 12), 0);
	CU_ASSERT_EQUAL(q->ulIvBits, 96);
	CU_ASSERT_EQUAL(q->ulAADLen, 20);
	CU_ASSERT_EQUAL(memcmp(q->pAAD, aad, 20), 0);
	CU_ASSERT_EQUAL(q->ulTagBits, 128);
	/* No AAD */
	p.pAAD = NULL;
	p.ulAADLen = 0;
	roundtrip(&m, a, &g);
	q = g.pParameter;
	CU_ASSERT_PTR_NULL(q->pAAD);
	CU_ASSERT_EQUAL(q->ulAADLen, 0);
	proto_arena_free(a);
}

static void
test_oaep(void)
{
	struct proto_arena *a = proto_arena_new();
	CK_BYTE label[] = "label";
	CK_RSA_PKCS_OAEP_PARAMS p = {CKM_SHA256, CKG_MGF1_SHA256, CKZ_DATA_SPECIFIED, label, 5}, *q;
	CK_MECHANISM m = {CKM_RSA_PKCS_OAEP, &p, sizeof(p)}, g;

	roundtrip(&m, a, &g);
	q = g.pParameter;
	CU_ASSERT_EQUAL(q->hashAlg, CKM_SHA256);
	CU_ASSERT_EQUAL(q->mgf, CKG_MGF1_SHA256);
	CU_ASSERT_EQUAL(q->source, CKZ_DATA_SPECIFIED);
	CU_ASSERT_EQUAL(q->ulSourceDataLen, 5);
	CU_ASSERT_EQUAL(memcmp(q->pSourceData, "label", 5), 0);
	proto_arena_free(a);
}

static void
test_pss(void)
{
	struct proto_arena *a = proto_arena_new();
	CK_RSA_PKCS_PSS_PARAMS p = {CKM_SHA384, CKG_MGF1_SHA384, 48}, *q;
	CK_MECHANISM m = {CKM_SHA384_RSA_PKCS_PSS, &p, sizeof(p)}, g;

	roundtrip(&m, a, &g);
	q = g.pParameter;
	CU_ASSERT_EQUAL(q->hashAlg, CKM_SHA384);
	CU_ASSERT_EQUAL(q->mgf, CKG_MGF1_SHA384);
	CU_ASSERT_EQUAL(q->sLen, 48);
	proto_arena_free(a);
}

static void
test_ecdh1(void)
{
	struct proto_arena *a = proto_arena_new();
	CK_BYTE pub[65];
	CK_ECDH1_DERIVE_PARAMS p = {CKD_NULL, 0, NULL, sizeof(pub), pub}, *q;
	CK_MECHANISM m = {CKM_ECDH1_DERIVE, &p, sizeof(p)}, g;

	memset(pub, 0x04, sizeof(pub));
	roundtrip(&m, a, &g);
	q = g.pParameter;
	CU_ASSERT_EQUAL(q->kdf, CKD_NULL);
	CU_ASSERT_PTR_NULL(q->pSharedData);
	CU_ASSERT_EQUAL(q->ulPublicDataLen, 65);
	CU_ASSERT_EQUAL(memcmp(q->pPublicData, pub, 65), 0);
	proto_arena_free(a);
}

static void
test_ctr(void)
{
	struct proto_arena *a = proto_arena_new();
	CK_AES_CTR_PARAMS p, *q;
	CK_MECHANISM m = {CKM_AES_CTR, &p, sizeof(p)}, g;

	p.ulCounterBits = 32;
	memset(p.cb, 0x5a, sizeof(p.cb));
	roundtrip(&m, a, &g);
	q = g.pParameter;
	CU_ASSERT_EQUAL(q->ulCounterBits, 32);
	CU_ASSERT_EQUAL(memcmp(q->cb, p.cb, 16), 0);
	proto_arena_free(a);
}

static void
test_ulong(void)
{
	struct proto_arena *a = proto_arena_new();
	CK_ULONG p = 16; /* CK_MAC_GENERAL_PARAMS */
	CK_MECHANISM m = {CKM_SHA256_HMAC_GENERAL, &p, sizeof(p)}, g;

	roundtrip(&m, a, &g);
	CU_ASSERT_EQUAL(*(CK_ULONG *)g.pParameter, 16);
	proto_arena_free(a);
}

static void
test_kdstring(void)
{
	struct proto_arena *a = proto_arena_new();
	CK_BYTE data[32];
	CK_KEY_DERIVATION_STRING_DATA p = {data, sizeof(data)}, *q;
	CK_MECHANISM m = {CKM_AES_ECB_ENCRYPT_DATA, &p, sizeof(p)}, g;

	memset(data, 0x33, sizeof(data));
	roundtrip(&m, a, &g);
	q = g.pParameter;
	CU_ASSERT_EQUAL(q->ulLen, 32);
	CU_ASSERT_EQUAL(memcmp(q->pData, data, 32), 0);
	proto_arena_free(a);
}

/* The shape of m, into out[*len]. */
static void
shape_of(const CK_MECHANISM *m, uint8_t *out, size_t *len)
{
	struct proto_buf b;

	proto_buf_init(&b);
	CU_ASSERT_EQUAL_FATAL(proto_put_mechanism_shape(&b, m), 0);
	CU_ASSERT_FATAL(b.len <= 256);
	memcpy(out, b.data, b.len);
	*len = b.len;
	proto_buf_free(&b);
}

static int
same_shape(const CK_MECHANISM *m1, const CK_MECHANISM *m2)
{
	uint8_t a[256], b[256];
	size_t na, nb;

	shape_of(m1, a, &na);
	shape_of(m2, b, &nb);
	return na == nb && memcmp(a, b, na) == 0;
}

static void
test_shape(void)
{
	CK_BYTE iv1[12] = {1}, iv2[12] = {2}, iv3[16] = {1}, aad[8] = {7};
	CK_GCM_PARAMS p1 = {iv1, sizeof(iv1), 96, NULL, 0, 128}, p2 = p1, p3 = p1;
	CK_MECHANISM g1 = {CKM_AES_GCM, &p1, sizeof(p1)}, g2 = {CKM_AES_GCM, &p2, sizeof(p2)},
	             g3 = {CKM_AES_GCM, &p3, sizeof(p3)};
	CK_MECHANISM c1 = {CKM_AES_CBC_PAD, iv1, 12}, c2 = {CKM_AES_CBC_PAD, iv2, 12},
	             c3 = {CKM_AES_CBC_PAD, iv3, 16};
	CK_AES_CTR_PARAMS r1 = {128, {1}}, r2 = {128, {2}}, r3 = {64, {1}};
	CK_MECHANISM t1 = {CKM_AES_CTR, &r1, sizeof(r1)}, t2 = {CKM_AES_CTR, &r2, sizeof(r2)},
	             t3 = {CKM_AES_CTR, &r3, sizeof(r3)};
	CK_RSA_PKCS_PSS_PARAMS s1 = {CKM_SHA256, CKG_MGF1_SHA256, 32}, s2 = s1;
	CK_MECHANISM q1 = {CKM_RSA_PKCS_PSS, &s1, sizeof(s1)},
	             q2 = {CKM_RSA_PKCS_PSS, &s2, sizeof(s2)};
	CK_MECHANISM e1 = {CKM_ECDSA, NULL, 0}, e2 = {CKM_ECDSA_SHA256, NULL, 0};

	/* What changes per call (IV, AAD, counter block bytes) is not in the shape ... */
	p2.pIv = iv2;
	CU_ASSERT_TRUE(same_shape(&g1, &g2));
	CU_ASSERT_TRUE(same_shape(&c1, &c2));
	CU_ASSERT_TRUE(same_shape(&t1, &t2));
	CU_ASSERT_TRUE(same_shape(&q1, &q2));
	/* ... every number and length is. */
	p3.ulTagBits = 96;
	CU_ASSERT_FALSE(same_shape(&g1, &g3));
	p3 = p1;
	p3.pAAD = aad;
	p3.ulAADLen = sizeof(aad);
	CU_ASSERT_FALSE(same_shape(&g1, &g3));
	p3 = p1;
	p3.ulIvLen = 8;
	CU_ASSERT_FALSE(same_shape(&g1, &g3));
	CU_ASSERT_FALSE(same_shape(&c1, &c3));
	CU_ASSERT_FALSE(same_shape(&t1, &t3));
	s2.sLen = 20;
	CU_ASSERT_FALSE(same_shape(&q1, &q2));
	CU_ASSERT_FALSE(same_shape(&e1, &e2));
	/* What the encoder refuses, the shape refuses the same way. */
	c3.pParameter = NULL;
	{
		struct proto_buf b;

		proto_buf_init(&b);
		CU_ASSERT_EQUAL(proto_put_mechanism_shape(&b, &c3), PROTO_ERR_BAD_VALUE);
		proto_buf_free(&b);
	}
}

static void
test_encoder_refusals(void)
{
	CK_BYTE raw[64] = {0};
	CK_GCM_PARAMS gcm = {NULL, 5, 0, NULL, 0, 128};
	CK_MECHANISM m;

	/* wrong struct size */
	m = (CK_MECHANISM){CKM_AES_GCM, raw, 7};
	CU_ASSERT_EQUAL(encode_err(&m), PROTO_ERR_BAD_VALUE);
	m = (CK_MECHANISM){CKM_SHA256_HMAC_GENERAL, raw, 4};
	CU_ASSERT_EQUAL(encode_err(&m), PROTO_ERR_BAD_VALUE);
	/* NULL parameter with a length */
	m = (CK_MECHANISM){CKM_AES_CBC, NULL, 16};
	CU_ASSERT_EQUAL(encode_err(&m), PROTO_ERR_BAD_VALUE);
	/* a pointer field NULL with a length */
	m = (CK_MECHANISM){CKM_AES_GCM, &gcm, sizeof(gcm)};
	CU_ASSERT_EQUAL(encode_err(&m), PROTO_ERR_BAD_VALUE);
	/* a struct-with-pointers mechanism we do not type */
	m = (CK_MECHANISM){CKM_AES_CCM, raw, 48};
	CU_ASSERT_EQUAL(encode_err(&m), PROTO_ERR_BAD_VALUE);
	m = (CK_MECHANISM){CKM_AES_CCM, NULL, 0};
	CU_ASSERT_EQUAL(encode_err(&m), 0);
	CU_ASSERT_EQUAL(encode_err(NULL), PROTO_ERR_BAD_VALUE);
}

static int
decode_raw(const uint8_t *d, size_t n)
{
	struct proto_arena *a = proto_arena_new();
	struct proto_cur c;
	CK_MECHANISM m;
	int r;

	proto_cur_init(&c, d, n);
	r = proto_get_mechanism(&c, a, &m);
	if (r != 0) {
		CU_ASSERT_EQUAL(c.len, n);
		CU_ASSERT_PTR_NULL(m.pParameter);
	}
	proto_arena_free(a);
	return r;
}

static void
test_decoder_bad_kind(void)
{
	uint8_t d[] = {0, 0, 0, 0, 0, 0, 0x10, 0x82 /* CKM_AES_CBC */, 8};

	CU_ASSERT_EQUAL(decode_raw(d, sizeof(d)), PROTO_ERR_BAD_VALUE);
	d[8] = 0xff;
	CU_ASSERT_EQUAL(decode_raw(d, sizeof(d)), PROTO_ERR_BAD_VALUE);
}

static void
test_decoder_kind_mismatch(void)
{
	/* CKM_AES_GCM given raw bytes: the token would read them as CK_GCM_PARAMS pointers. */
	uint8_t gcm_bytes[] = {0, 0, 0, 0, 0, 0, 0x10, 0x87, PROTO_MP_BYTES, 0, 0, 0, 1, 0xaa};
	/* CKM_AES_CBC given a GCM parameter. */
	uint8_t cbc_gcm[] = {0, 0, 0, 0, 0, 0, 0x10, 0x82, PROTO_MP_GCM,
	                     0, 0, 0, 0, 0, 0, 0,    0,    0,
	                     0, 0, 0, 0, 0, 0, 0,    0,    0,
	                     0, 0, 0, 0, 0, 0};
	/* CKM_AES_CCM (refused shape) given bytes. */
	uint8_t ccm_bytes[] = {0, 0, 0, 0, 0, 0, 0x10, 0x88, PROTO_MP_BYTES, 0, 0, 0, 0};
	/* a NULL parameter always decodes */
	uint8_t gcm_none[] = {0, 0, 0, 0, 0, 0, 0x10, 0x87, PROTO_MP_NONE};

	CU_ASSERT_EQUAL(decode_raw(gcm_bytes, sizeof(gcm_bytes)), PROTO_ERR_BAD_VALUE);
	CU_ASSERT_EQUAL(decode_raw(cbc_gcm, sizeof(cbc_gcm)), PROTO_ERR_BAD_VALUE);
	CU_ASSERT_EQUAL(decode_raw(ccm_bytes, sizeof(ccm_bytes)), PROTO_ERR_BAD_VALUE);
	CU_ASSERT_EQUAL(decode_raw(gcm_none, sizeof(gcm_none)), 0);
}

static void
test_decoder_length_over_remaining(void)
{
	/* AES_CBC with a 4 GiB IV */
	uint8_t d[] = {0, 0, 0, 0, 0, 0, 0x10, 0x82, PROTO_MP_BYTES, 0xff, 0xff, 0xff, 0xff, 1, 2};

	CU_ASSERT_EQUAL(decode_raw(d, sizeof(d)), PROTO_ERR_TOO_LARGE);
	/* 256 bytes announced, 2 present */
	d[9] = 0, d[10] = 0, d[11] = 1, d[12] = 0;
	CU_ASSERT_EQUAL(decode_raw(d, sizeof(d)), PROTO_ERR_TRUNCATED);
}

static const struct test_case cases[] = {
        {"names and parameter kinds", test_names_and_kinds},
        {"kind NONE round-trip", test_none},
        {"kind BYTES round-trip (IV, empty, vendor)", test_bytes_iv},
        {"kind GCM round-trip", test_gcm},
        {"kind OAEP round-trip", test_oaep},
        {"kind PSS round-trip", test_pss},
        {"kind ECDH1 round-trip", test_ecdh1},
        {"kind CTR round-trip", test_ctr},
        {"kind ULONG round-trip", test_ulong},
        {"key derivation string round-trip", test_kdstring},
        {"refuse: encoder (size, NULL, untyped struct)", test_encoder_refusals},
        {"refuse: unknown kind byte", test_decoder_bad_kind},
        {"refuse: kind not the mechanism's", test_decoder_kind_mismatch},
        {"refuse: parameter length over cap / over remaining bytes",
         test_decoder_length_over_remaining},
        {"shape: numbers and lengths, not bytes", test_shape},
        {NULL, NULL},
};

void
test_register(void)
{
	test_suite_add("proto/mech", NULL, NULL, cases);
}
