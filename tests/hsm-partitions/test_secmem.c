/* tests/hsm-partitions/test_secmem.c — hsm-partitions/secmem.c: the size of the secure heap,
 * its creation, and that the worker's key material lands in it: the master key, the secret
 * attribute values of objects (and only those), the private halves of the engine's keys of
 * every type, measured with CRYPTO_secure_used() and CRYPTO_secure_allocated(); and that a
 * whole worker life gives back every byte it took. This binary makes the heap in its suite
 * set-up, as the worker does at start (the other test binaries run without one). */
#include "hsm-partitions/part_int.h"
#include "tests/hsm-partitions/part_test.h"

#include <sys/resource.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

static size_t heap_size;

static int
suite_init(void)
{
	return part_secmem_init("test", &heap_size) == 0 ? 0 : -1;
}

static int
is_pow2(size_t v)
{
	return v != 0 && (v & (v - 1)) == 0;
}

static void
test_size(void)
{
	static const uint64_t limits[] = {0,         1,          64 << 10,  (64 << 10) + 1,
	                                  320 << 10, 8u << 20,   9u << 20,  64u << 20,
	                                  1u << 31,  UINT64_MAX, 123456789, 5u << 20};
	size_t i, s;

	CU_ASSERT_EQUAL(part_secmem_size(UINT64_MAX), PART_SECMEM_MAX);
	CU_ASSERT_EQUAL(part_secmem_size(8u << 20), 4u << 20); /* the usual 8 MiB limit */
	CU_ASSERT_EQUAL(part_secmem_size((8u << 20) + PART_SECMEM_RESERVE), 8u << 20);
	CU_ASSERT_EQUAL(part_secmem_size(PART_SECMEM_MIN + PART_SECMEM_RESERVE), PART_SECMEM_MIN);
	CU_ASSERT_EQUAL(part_secmem_size(64 << 10), PART_SECMEM_MIN); /* below: the minimum */
	CU_ASSERT_EQUAL(part_secmem_size(0), PART_SECMEM_MIN);
	for (i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
		s = part_secmem_size(limits[i]);
		CU_ASSERT(is_pow2(s));
		CU_ASSERT(s >= PART_SECMEM_MIN && s <= PART_SECMEM_MAX);
		/* it fits the limit whenever the minimum does */
		if (limits[i] >= PART_SECMEM_MIN + PART_SECMEM_RESERVE) {
			CU_ASSERT(s + PART_SECMEM_RESERVE <= limits[i]);
			CU_ASSERT(s == PART_SECMEM_MAX || 2 * s + PART_SECMEM_RESERVE > limits[i]);
		}
	}
}

static void
test_init(void)
{
	struct rlimit rl;
	size_t again = 0;

	CU_ASSERT(CRYPTO_secure_malloc_initialized());
	/* Sized from the (raised) RLIMIT_MEMLOCK. */
	CU_ASSERT_FATAL(getrlimit(RLIMIT_MEMLOCK, &rl) == 0);
	CU_ASSERT_EQUAL(rl.rlim_cur, rl.rlim_max);
	CU_ASSERT_EQUAL(heap_size,
	                part_secmem_size(rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX
	                                                              : (uint64_t)rl.rlim_cur));
	/* Once per process: a second call changes nothing. */
	CU_ASSERT_EQUAL(part_secmem_init("test", &again), 0);
	CU_ASSERT_EQUAL(again, heap_size);
	CU_ASSERT_EQUAL(part_secmem_init(NULL, NULL), 0);
}

static void
test_masterkey_secure(void)
{
	struct part_masterkey *k = NULL, *d = NULL;
	uint8_t raw[PART_MASTERKEY_LEN];
	size_t u0;

	memset(raw, 7, sizeof(raw));
	u0 = CRYPTO_secure_used();
	CU_ASSERT_FATAL(part_masterkey_from_bytes(raw, sizeof(raw), &k) == 0);
	CU_ASSERT_FATAL(part_masterkey_derive(k, "label", &d) == 0);
	CU_ASSERT(CRYPTO_secure_allocated(part_masterkey_bytes(k)));
	CU_ASSERT(CRYPTO_secure_allocated(part_masterkey_bytes(d)));
	CU_ASSERT(CRYPTO_secure_used() >= u0 + 2 * PART_MASTERKEY_LEN);
	part_masterkey_free(k);
	part_masterkey_free(d);
	CU_ASSERT_EQUAL(CRYPTO_secure_used(), u0);
}

/* ---- objects through the worker --------------------------------------------------------- */

static const CK_BYTE t_ed25519[] = {0x06, 0x03, 0x2b, 0x65, 0x70};

/* Token objects of every kind of key material, and a data object, in a fresh store; the
 * worker is left closed (the store holds them), the rest of t_setup() open. */
static void
make_objects(void)
{
	static const CK_BYTE aes[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
	static const char data[] = "application data, not a key";
	CK_OBJECT_CLASS dcls = CKO_DATA;
	CK_ATTRIBUTE at[] = {ATTR(CKA_CLASS, t_secret),
	                     ATTR(CKA_KEY_TYPE, t_aes),
	                     {CKA_VALUE, (void *)aes, 32},
	                     ATTR(CKA_TOKEN, t_yes),
	                     ATTR(CKA_EXTRACTABLE, t_yes)};
	CK_ATTRIBUTE dt[] = {ATTR(CKA_CLASS, dcls),
	                     ATTR(CKA_TOKEN, t_yes),
	                     {CKA_VALUE, (void *)data, sizeof(data)}};
	CK_ULONG bits = 2048;
	CK_MECHANISM rsa = {CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0};
	CK_MECHANISM ec = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
	CK_MECHANISM ed = {CKM_EC_EDWARDS_KEY_PAIR_GEN, NULL, 0};
	CK_ATTRIBUTE rpub[] = {ATTR(CKA_MODULUS_BITS, bits), ATTR(CKA_TOKEN, t_yes)};
	CK_ATTRIBUTE epub[] = {{CKA_EC_PARAMS, (void *)t_p256, sizeof(t_p256)},
	                       ATTR(CKA_TOKEN, t_yes)};
	CK_ATTRIBUTE dpub[] = {{CKA_EC_PARAMS, (void *)t_ed25519, sizeof(t_ed25519)},
	                       ATTR(CKA_TOKEN, t_yes)};
	CK_ATTRIBUTE priv[] = {ATTR(CKA_TOKEN, t_yes)};
	CK_OBJECT_HANDLE o, pub, prv;
	CK_SESSION_HANDLE h;

	t_user_session(&h);
	CU_ASSERT_FATAL(ck_create(CONN_A, h, at, 5, &o) == CKR_OK);
	CU_ASSERT_FATAL(ck_create(CONN_A, h, dt, 3, &o) == CKR_OK);
	CU_ASSERT_FATAL(ck_genpair(CONN_A, h, &rsa, rpub, 2, priv, 1, &pub, &prv) == CKR_OK);
	CU_ASSERT_FATAL(ck_genpair(CONN_A, h, &ec, epub, 2, priv, 1, &pub, &prv) == CKR_OK);
	CU_ASSERT_FATAL(ck_genpair(CONN_A, h, &ed, dpub, 2, priv, 1, &pub, &prv) == CKR_OK);
	part_worker_free(W);
	W = NULL;
}

static void
test_object_values_secure(void)
{
	struct part_worker_opts o = {0};
	struct part_token *t = NULL;
	struct part_object *obj;
	size_t i, nsecret = 0, nplain = 0;

	make_objects();
	/* Loaded from the store, as a worker start does. */
	o.partition = "demo";
	o.store_dir = tstore;
	o.slot = SLOT;
	CU_ASSERT_FATAL(part_token_open(&o, &t) == 0);
	for (obj = t->objects; obj != NULL; obj = obj->next) {
		for (i = 0; i < obj->nattrs; i++) {
			const struct part_attr *a = &obj->attrs[i];
			int want = (obj->cls == CKO_SECRET_KEY || obj->cls == CKO_PRIVATE_KEY) &&
			           part_key_secret_attr(a->type);

			CU_ASSERT_EQUAL(CRYPTO_secure_allocated(a->value), want);
			if (want) {
				nsecret++;
			} else {
				nplain++;
			}
		}
	}
	/* AES CKA_VALUE, six RSA private parts, the EC and the Ed25519 CKA_VALUE; the data
	 * object's CKA_VALUE, the labels, the public keys are ordinary memory. */
	CU_ASSERT_EQUAL(nsecret, 1 + 6 + 1 + 1);
	CU_ASSERT(nplain > 0);
	part_token_free(t);
	t_teardown();
}

/* Signs one byte with `prv` (CKM_SHA256_RSA_PKCS, CKM_ECDSA_SHA256 or CKM_EDDSA), which
 * builds the engine's key of the object. */
static void
sign_with(CK_SESSION_HANDLE h, CK_MECHANISM_TYPE mech, CK_OBJECT_HANDLE prv)
{
	CK_MECHANISM m = {mech, NULL, 0};
	CK_BYTE sig[512];
	CK_ULONG siglen = sizeof(sig);

	CU_ASSERT_FATAL(ck_init_op(PROTO_CALL_C_SignInit, h, &m, prv) == CKR_OK);
	CU_ASSERT_EQUAL(ck_io(PROTO_CALL_C_Sign, h, "x", 1, sig, &siglen), CKR_OK);
}

/* The handle of the private key of type `kt` (the objects of make_objects()). */
static CK_OBJECT_HANDLE
find_priv(CK_SESSION_HANDLE h, CK_KEY_TYPE kt)
{
	CK_ATTRIBUTE t[] = {ATTR(CKA_CLASS, t_privc), ATTR(CKA_KEY_TYPE, kt)};
	CK_OBJECT_HANDLE found[2];
	CK_ULONG n = 2;
	struct proto_cur c;

	CU_ASSERT_FATAL(CALL(CONN_A, C_FindObjectsInit, NULL, (PUTU(h), PUTT(t, 2))) == CKR_OK);
	CU_ASSERT_FATAL(CALL(CONN_A, C_FindObjects, &c, (PUTU(h), PUTL(1, 2))) == CKR_OK);
	CU_ASSERT_FATAL(proto_get_ulongs_reply(&c, found, &n) == 0);
	CU_ASSERT_FATAL(n == 1);
	CU_ASSERT_FATAL(CALL(CONN_A, C_FindObjectsFinal, NULL, PUTU(h)) == CKR_OK);
	return found[0];
}

static void
test_heap_grows_on_load_and_use(void)
{
	CK_SESSION_HANDLE h;
	size_t u_empty, u_loaded, u;

	/* A worker with an empty store holds its keys only (master, sealing, PIN cache). */
	t_setup();
	u_empty = CRYPTO_secure_used();
	t_teardown();
	make_objects();
	/* Loading the objects puts their secret values in the heap: at least the AES key,
	 * the RSA-2048 private parts (256 + 5 × 128 bytes) and two 32-byte scalars. */
	u = CRYPTO_secure_used();
	CU_ASSERT_FATAL(t_open_worker() == 0);
	u_loaded = CRYPTO_secure_used();
	CU_ASSERT(u_loaded >= u + (u_empty - u) + 32 + 896 + 32 + 32);
	CU_ASSERT_FATAL(ck_open(CONN_A, RW, &h) == CKR_OK);
	CU_ASSERT_FATAL(ck_login(CONN_A, h, CKU_USER, USER_PIN) == CKR_OK);
	/* Using a key builds the engine's key, whose private half is in the heap too: the
	 * six RSA parts through PKCS #1 DER, the P-256 scalar, the Ed25519 key through
	 * PKCS #8 (each would be ordinary memory through EVP_PKEY_fromdata / raw import). */
	u = CRYPTO_secure_used();
	sign_with(h, CKM_SHA256_RSA_PKCS, find_priv(h, CKK_RSA));
	CU_ASSERT(CRYPTO_secure_used() >= u + 896);
	u = CRYPTO_secure_used();
	sign_with(h, CKM_ECDSA_SHA256, find_priv(h, CKK_EC));
	CU_ASSERT(CRYPTO_secure_used() >= u + 32);
	u = CRYPTO_secure_used();
	sign_with(h, CKM_EDDSA, find_priv(h, CKK_EC_EDWARDS));
	CU_ASSERT(CRYPTO_secure_used() >= u + 32);
	t_teardown();
}

static CK_RV
ck_wrap(CK_SESSION_HANDLE h, const CK_MECHANISM *m, CK_OBJECT_HANDLE wk, CK_OBJECT_HANDLE k,
        CK_BYTE *out, CK_ULONG *outlen)
{
	struct proto_cur c;
	CK_RV rv = CALL(CONN_A, C_WrapKey, &c,
	                (PUTU(h), (void)!proto_put_mechanism(&b, m), PUTU(wk), PUTU(k),
	                 (void)!proto_put_outbuf_req(&b, out, *outlen)));

	if (rv == CKR_OK) {
		CU_ASSERT(proto_get_outbuf_reply(&c, out, outlen) == 0);
	}
	return rv;
}

/* Every path that handles key material once — import, generation, wrap and unwrap of a
 * private key (PKCS #8), ECDH (the shared secret), sign, copy, destroy, a token
 * re-initialisation — then the worker closes: the heap is back where it was, so every
 * secure allocation was given back (and through the secure free, or OpenSSL would have
 * aborted on a foreign pointer). */
static void
test_worker_gives_back_every_byte(void)
{
	static const CK_BYTE v[32] = {9, 8, 7};
	CK_MECHANISM kw = {CKM_AES_KEY_WRAP_PAD, NULL, 0};
	CK_MECHANISM ecgen = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
	CK_ATTRIBUTE pubt[] = {{CKA_EC_PARAMS, (void *)t_p256, sizeof(t_p256)}};
	CK_ATTRIBUTE privt[] = {ATTR(CKA_EXTRACTABLE, t_yes), ATTR(CKA_DERIVE, t_yes)};
	CK_ATTRIBUTE ut[] = {ATTR(CKA_CLASS, t_privc), ATTR(CKA_KEY_TYPE, t_eck)};
	CK_ATTRIBUTE dt[] = {ATTR(CKA_CLASS, t_secret), ATTR(CKA_KEY_TYPE, t_generic)};
	CK_BYTE pt[80], wrapped[512];
	CK_ATTRIBUTE ptq = {CKA_EC_POINT, pt, sizeof(pt)};
	CK_ECDH1_DERIVE_PARAMS dp = {CKD_NULL, 0, NULL, 0, NULL};
	CK_MECHANISM derive = {CKM_ECDH1_DERIVE, &dp, sizeof(dp)};
	CK_OBJECT_HANDLE aes, pub, prv, un, copy, dk;
	CK_ULONG wlen = sizeof(wrapped);
	CK_SESSION_HANDLE h;
	struct proto_cur c;
	size_t u0;

	/* The RNG makes its own secure state once, at first use: before measuring. */
	make_objects();
	t_teardown();
	u0 = CRYPTO_secure_used();
	make_objects();
	CU_ASSERT_FATAL(t_open_worker() == 0);
	CU_ASSERT_FATAL(ck_open(CONN_A, RW, &h) == CKR_OK);
	CU_ASSERT_FATAL(ck_login(CONN_A, h, CKU_USER, USER_PIN) == CKR_OK);
	sign_with(h, CKM_SHA256_RSA_PKCS, find_priv(h, CKK_RSA));
	aes = t_aes_key(h, v, CK_FALSE, CK_TRUE);
	CU_ASSERT_FATAL(ck_genpair(CONN_A, h, &ecgen, pubt, 1, privt, 2, &pub, &prv) == CKR_OK);
	CU_ASSERT_FATAL(ck_wrap(h, &kw, aes, prv, wrapped, &wlen) == CKR_OK);
	CU_ASSERT_EQUAL(ck_handle_reply(CALL(CONN_A, C_UnwrapKey, &c,
	                                     (PUTU(h), (void)!proto_put_mechanism(&b, &kw),
	                                      PUTU(aes), PUTY(wrapped, wlen), PUTT(ut, 2))),
	                                &c, &un),
	                CKR_OK);
	CU_ASSERT_FATAL(ck_get(CONN_A, h, pub, &ptq, 1) == CKR_OK);
	dp.pPublicData = pt;
	dp.ulPublicDataLen = ptq.ulValueLen;
	CU_ASSERT_EQUAL(ck_handle_reply(CALL(CONN_A, C_DeriveKey, &c,
	                                     (PUTU(h), (void)!proto_put_mechanism(&b, &derive),
	                                      PUTU(prv), PUTT(dt, 2))),
	                                &c, &dk),
	                CKR_OK);
	CU_ASSERT_EQUAL(ck_copy(CONN_A, h, aes, NULL, 0, &copy), CKR_OK);
	CU_ASSERT_EQUAL(ck_destroy(CONN_A, h, aes), CKR_OK);
	CU_ASSERT_EQUAL(ck_close(CONN_A, h), CKR_OK);
	CU_ASSERT_EQUAL(ck_init_token(SO_PIN, "again"), CKR_OK); /* drops the token objects */
	t_teardown();
	CU_ASSERT_EQUAL(CRYPTO_secure_used(), u0);
}

static const struct test_case cases[] = {
        {"heap size from RLIMIT_MEMLOCK", test_size},
        {"heap made once, sized from the limit", test_init},
        {"master and derived keys in the heap", test_masterkey_secure},
        {"object values: key material in the heap, the rest not", test_object_values_secure},
        {"the heap grows when keys load and are used", test_heap_grows_on_load_and_use},
        {"a worker's life gives back every byte", test_worker_gives_back_every_byte},
        {NULL, NULL},
};

void
test_register(void)
{
	test_suite_add("hsm-partitions/secmem", suite_init, NULL, cases);
}
