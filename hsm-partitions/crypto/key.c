/*
 * hsm-partitions/crypto/key.c — keys: from PKCS #11 attribute values to an EVP_PKEY or a
 * raw secret, key generation into attribute lists, and PKCS #8 for wrapping.
 *
 * PKCS #11 big integers are unsigned, most significant byte first (v2.40 base §2.5,
 * "Big integer"), which is BN_bin2bn()/BN_bn2bin().
 *
 * Key material stays in OpenSSL's secure heap (hsm-partitions/secmem.c) where OpenSSL 3.0
 * lets it: raw secrets are OPENSSL_secure_malloc'ed here, and private EVP_PKEYs are built
 * the way that leaves their private parts there. That is not the same way for every type,
 * because EVP_PKEY_fromdata() copies each BIGNUM through OSSL_PARAM_get_BN(), which in 3.0
 * allocates a plain BN_new() whatever the input was (crypto/params.c), while the DER
 * decoders give secure BIGNUMs (the CBIGNUM ASN.1 type of RSAPrivateKey, BN_secure_new() in
 * the EC and X25519/Ed25519 private-key decoders). Measured with CRYPTO_secure_used() on
 * 3.0: an RSA key from EVP_PKEY_fromdata keeps nothing in the secure heap, from its PKCS #1
 * DER all six private parts; an Ed25519 key from EVP_PKEY_new_raw_private_key_ex nothing,
 * from PKCS #8 its 32 bytes; an EC key from EVP_PKEY_fromdata its scalar (ec_backend.c takes
 * it with BN_secure_new). So: RSA private keys with their CRT values and Ed25519 private keys
 * are decoded from DER assembled in the secure heap; EC keys keep the fromdata path. An RSA
 * private key imported without CRT values (no PKCS #1 encoding) keeps fromdata, and its d
 * lives in the ordinary heap (wiped on free). OpenSSL's working copies stay its own: the
 * Montgomery contexts of the RSA primes and cipher key schedules are ordinary memory.
 */
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "hsm-partitions/crypto/mech_int.h"

#define SECRET_MAX 512 /* generic secrets, bytes: the table's CKM_*_HMAC maximum */

static struct part_key *
key_new(CK_OBJECT_CLASS cls, CK_KEY_TYPE type)
{
	struct part_key *k = OPENSSL_zalloc(sizeof(*k));

	if (k != NULL) {
		k->cls = cls;
		k->type = type;
	}
	return k;
}

void
part_key_free(struct part_key *key)
{
	if (key == NULL) {
		return;
	}
	EVP_PKEY_free(key->pkey);
	OPENSSL_secure_clear_free(key->secret, key->secret_len);
	OPENSSL_free(key);
}

CK_OBJECT_CLASS
part_key_class(const struct part_key *key)
{
	return key->cls;
}

CK_KEY_TYPE
part_key_type(const struct part_key *key)
{
	return key->type;
}

CK_ULONG
part_key_size(const struct part_key *key)
{
	return key->size;
}

/* A present, non-empty byte attribute; CKR_TEMPLATE_INCOMPLETE when absent. */
static CK_RV
attr_bytes(const CK_ATTRIBUTE *t, CK_ULONG n, CK_ATTRIBUTE_TYPE type, const unsigned char **v,
           size_t *len)
{
	const CK_ATTRIBUTE *a = tmpl_find(t, n, type);

	*v = NULL;
	*len = 0;
	if (a == NULL) {
		return CKR_TEMPLATE_INCOMPLETE;
	}
	if (a->pValue == NULL || a->ulValueLen == 0 ||
	    a->ulValueLen == CK_UNAVAILABLE_INFORMATION) {
		return CKR_ATTRIBUTE_VALUE_INVALID;
	}
	*v = a->pValue;
	*len = a->ulValueLen;
	return CKR_OK;
}

/* ---- secret keys ----------------------------------------------------------------------- */

static CK_RV
secret_from_attrs(struct part_key *k, const CK_ATTRIBUTE *t, CK_ULONG n)
{
	const unsigned char *v;
	size_t len;
	CK_ULONG vlen;
	CK_RV rv;

	if ((rv = attr_bytes(t, n, CKA_VALUE, &v, &len)) != CKR_OK) {
		return rv;
	}
	if (k->type == CKK_AES && len != 16 && len != 24 && len != 32) {
		return CKR_ATTRIBUTE_VALUE_INVALID;
	}
	if (len > SECRET_MAX) {
		return CKR_ATTRIBUTE_VALUE_INVALID;
	}
	rv = tmpl_ulong(t, n, CKA_VALUE_LEN, &vlen);
	if (rv == CKR_ATTRIBUTE_VALUE_INVALID || (rv == CKR_OK && vlen != len)) {
		return CKR_ATTRIBUTE_VALUE_INVALID;
	}
	if ((k->secret = OPENSSL_secure_malloc(len)) == NULL) {
		return CKR_HOST_MEMORY;
	}
	memcpy(k->secret, v, len);
	k->secret_len = len;
	k->size = len;
	return CKR_OK;
}

/* ---- RSA ------------------------------------------------------------------------------- */

static const struct {
	CK_ATTRIBUTE_TYPE type;
	const char *param;
} rsa_parts[] = {
        {CKA_MODULUS, OSSL_PKEY_PARAM_RSA_N},
        {CKA_PUBLIC_EXPONENT, OSSL_PKEY_PARAM_RSA_E},
        {CKA_PRIVATE_EXPONENT, OSSL_PKEY_PARAM_RSA_D},
        {CKA_PRIME_1, OSSL_PKEY_PARAM_RSA_FACTOR1},
        {CKA_PRIME_2, OSSL_PKEY_PARAM_RSA_FACTOR2},
        {CKA_EXPONENT_1, OSSL_PKEY_PARAM_RSA_EXPONENT1},
        {CKA_EXPONENT_2, OSSL_PKEY_PARAM_RSA_EXPONENT2},
        {CKA_COEFFICIENT, OSSL_PKEY_PARAM_RSA_COEFFICIENT1},
};
#define RSA_NPARTS (sizeof(rsa_parts) / sizeof(rsa_parts[0]))

/* DER length octets of `len` at p (NULL: only counted); returns how many. */
static size_t
der_len(unsigned char *p, size_t len)
{
	size_t n = 1, v;

	if (len < 0x80) {
		if (p != NULL) {
			p[0] = (unsigned char)len;
		}
		return 1;
	}
	for (v = len; v > 0; v >>= 8) {
		n++;
	}
	if (p != NULL) {
		p[0] = (unsigned char)(0x80 | (n - 1));
		for (v = n - 1; v > 0; v--) {
			p[v] = (unsigned char)(len & 0xff);
			len >>= 8;
		}
	}
	return n;
}

/* The DER INTEGER of a non-negative BIGNUM at p (NULL: only counted); returns its size.
 * X.690 §8.3: two's complement, so a leading 0x00 when the top bit is set; zero is 00. */
static size_t
der_uint(unsigned char *p, const BIGNUM *bn)
{
	size_t blen = (size_t)BN_num_bytes(bn);
	size_t clen = blen == 0 ? 1 : blen + (BN_num_bits(bn) % 8 == 0 ? 1 : 0);
	size_t hlen;

	if (p == NULL) {
		return 1 + der_len(NULL, clen) + clen;
	}
	p[0] = 0x02;
	hlen = 1 + der_len(p + 1, clen);
	if (clen > blen) {
		p[hlen] = 0x00;
	}
	if (blen > 0) {
		(void)BN_bn2bin(bn, p + hlen + (clen - blen));
	}
	return hlen + clen;
}

/*
 * The PKCS #1 RSAPrivateKey (RFC 8017 A.1.2, version 0: two primes) of bn[0..7] = n, e, d,
 * p, q, dP, dQ, qInv (the order of rsa_parts), in the secure heap: released with
 * OPENSSL_secure_clear_free(*der, *len). Decoding it gives a key whose private BIGNUMs are
 * secure (the top of the file says why this and not EVP_PKEY_fromdata).
 */
static CK_RV
rsa_pkcs1_der(BIGNUM *const *bn, unsigned char **der, size_t *len)
{
	static const unsigned char version[] = {0x02, 0x01, 0x00};
	size_t body = sizeof(version), total, off, i;
	unsigned char *p;

	*der = NULL;
	*len = 0;
	for (i = 0; i < RSA_NPARTS; i++) {
		body += der_uint(NULL, bn[i]);
	}
	total = 1 + der_len(NULL, body) + body;
	if ((p = OPENSSL_secure_malloc(total)) == NULL) {
		return CKR_HOST_MEMORY;
	}
	p[0] = 0x30; /* SEQUENCE */
	off = 1 + der_len(p + 1, body);
	memcpy(p + off, version, sizeof(version));
	off += sizeof(version);
	for (i = 0; i < RSA_NPARTS; i++) {
		off += der_uint(p + off, bn[i]);
	}
	*der = p;
	*len = total;
	return CKR_OK;
}

/* Decodes the DER of a private key of `type` (PKCS #1 for RSA, PKCS #8 for Ed25519) whole
 * into *pk. CKR_ATTRIBUTE_VALUE_INVALID when OpenSSL refuses it. */
static CK_RV
priv_from_der(int type, const unsigned char *der, size_t len, EVP_PKEY **pk)
{
	const unsigned char *p = der;

	*pk = d2i_PrivateKey_ex(type, NULL, &p, (long)len, NULL, NULL);
	if (*pk != NULL && p != der + len) {
		EVP_PKEY_free(*pk);
		*pk = NULL;
	}
	return *pk != NULL ? CKR_OK : CKR_ATTRIBUTE_VALUE_INVALID;
}

/* A public key, or a private key without CRT values, through EVP_PKEY_fromdata (for the
 * latter, d lands in the ordinary heap: the top of the file). */
static CK_RV
rsa_fromdata(struct part_key *k, BIGNUM *const *bn, size_t nparts, int sel)
{
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	size_t i;
	CK_RV rv = CKR_HOST_MEMORY;

	if ((bld = OSSL_PARAM_BLD_new()) == NULL) {
		goto out;
	}
	for (i = 0; i < nparts; i++) {
		if (bn[i] != NULL && !OSSL_PARAM_BLD_push_BN(bld, rsa_parts[i].param, bn[i])) {
			goto out;
		}
	}
	if ((params = OSSL_PARAM_BLD_to_param(bld)) == NULL ||
	    (ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL)) == NULL) {
		goto out;
	}
	rv = CKR_ATTRIBUTE_VALUE_INVALID;
	if (EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, &k->pkey, sel, params) <= 0) {
		goto out;
	}
	rv = CKR_OK;
out:
	OSSL_PARAM_BLD_free(bld);
	OSSL_PARAM_free(params); /* holds copies of the private values: wiped by free */
	EVP_PKEY_CTX_free(ctx);
	return rv;
}

static CK_RV
rsa_from_attrs(struct part_key *k, const CK_ATTRIBUTE *t, CK_ULONG n)
{
	BIGNUM *bn[RSA_NPARTS] = {NULL};
	EVP_PKEY_CTX *chk = NULL;
	size_t i, nparts = k->cls == CKO_PRIVATE_KEY ? RSA_NPARTS : 2, ncrt = 0, derlen = 0;
	int sel = k->cls == CKO_PRIVATE_KEY ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY;
	unsigned char *der = NULL;
	CK_RV rv;

	for (i = 0; i < nparts; i++) {
		const unsigned char *v;
		size_t len;

		rv = attr_bytes(t, n, rsa_parts[i].type, &v, &len);
		if (rv == CKR_TEMPLATE_INCOMPLETE && i >= 3) {
			continue; /* the CRT values are optional, as a set */
		}
		if (rv != CKR_OK) {
			goto out;
		}
		ncrt += i >= 3;
		if ((bn[i] = BN_secure_new()) == NULL || BN_bin2bn(v, (int)len, bn[i]) == NULL) {
			rv = CKR_HOST_MEMORY;
			goto out;
		}
	}
	rv = CKR_ATTRIBUTE_VALUE_INVALID;
	/* OpenSSL cannot use a partial CRT set (and PKCS #8 cannot encode one) */
	if ((ncrt != 0 && ncrt != 5) || !BN_is_odd(bn[0]) || !BN_is_odd(bn[1]) ||
	    BN_is_one(bn[1])) {
		goto out;
	}
	if (ncrt == 5) {
		/* A full private key: through its PKCS #1 DER, for a secure-heap EVP_PKEY. */
		if ((rv = rsa_pkcs1_der(bn, &der, &derlen)) != CKR_OK ||
		    (rv = priv_from_der(EVP_PKEY_RSA, der, derlen, &k->pkey)) != CKR_OK) {
			goto out;
		}
		/* refuse components that do not belong together rather than sign garbage */
		rv = CKR_ATTRIBUTE_VALUE_INVALID;
		if ((chk = EVP_PKEY_CTX_new_from_pkey(NULL, k->pkey, NULL)) == NULL ||
		    EVP_PKEY_pairwise_check(chk) <= 0) {
			goto out;
		}
	} else if ((rv = rsa_fromdata(k, bn, nparts, sel)) != CKR_OK) {
		goto out;
	}
	k->size = (CK_ULONG)EVP_PKEY_get_bits(k->pkey);
	rv = CKR_OK;
out:
	for (i = 0; i < RSA_NPARTS; i++) {
		BN_clear_free(bn[i]);
	}
	OPENSSL_secure_clear_free(der, derlen);
	EVP_PKEY_CTX_free(chk);
	return rv;
}

/* ---- EC and Ed25519 -------------------------------------------------------------------- */

static int
curve_nid(const struct curve *c)
{
	return EC_curve_nist2nid(c->name);
}

CK_RV
ec_pub_from_point(const struct curve *c, const unsigned char *pt, size_t len, EVP_PKEY **out)
{
	OSSL_PARAM params[3];
	EVP_PKEY_CTX *ctx = NULL;
	CK_RV rv = CKR_ATTRIBUTE_VALUE_INVALID;

	*out = NULL;
	if (c->key_type == CKK_EC_EDWARDS) {
		*out = EVP_PKEY_new_raw_public_key_ex(NULL, "ED25519", NULL, pt, len);
		return *out != NULL ? CKR_OK : CKR_ATTRIBUTE_VALUE_INVALID;
	}
	params[0] =
	        OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)c->name, 0);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, (void *)pt, len);
	params[2] = OSSL_PARAM_construct_end();
	if ((ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) == NULL) {
		return CKR_HOST_MEMORY;
	}
	/* decoding the point checks that it lies on the curve */
	if (EVP_PKEY_fromdata_init(ctx) > 0 &&
	    EVP_PKEY_fromdata(ctx, out, EVP_PKEY_PUBLIC_KEY, params) > 0) {
		rv = CKR_OK;
	}
	EVP_PKEY_CTX_free(ctx);
	return rv;
}

/* d·G, uncompressed: OpenSSL 3.0 does not derive an EC public key on import. */
static CK_RV
ec_point_of(const struct curve *c, const BIGNUM *d, unsigned char *pt, size_t len)
{
	EC_GROUP *g = EC_GROUP_new_by_curve_name_ex(NULL, NULL, curve_nid(c));
	EC_POINT *p = NULL;
	CK_RV rv = CKR_ATTRIBUTE_VALUE_INVALID;

	if (g == NULL) {
		return CKR_HOST_MEMORY;
	}
	/* X9.62: the private key d is an integer in [1, n-1] */
	if (BN_is_zero(d) || BN_is_negative(d) || BN_cmp(d, EC_GROUP_get0_order(g)) >= 0) {
		goto out;
	}
	if ((p = EC_POINT_new(g)) == NULL || !EC_POINT_mul(g, p, d, NULL, NULL, NULL) ||
	    EC_POINT_point2oct(g, p, POINT_CONVERSION_UNCOMPRESSED, pt, len, NULL) != len) {
		rv = CKR_FUNCTION_FAILED;
		goto out;
	}
	rv = CKR_OK;
out:
	EC_POINT_free(p);
	EC_GROUP_free(g);
	return rv;
}

/*
 * An Ed25519 private key from its 32 bytes, through the PKCS #8 PrivateKeyInfo of RFC 8410
 * §7 assembled in the secure heap: EVP_PKEY_new_raw_private_key_ex() would keep the key in
 * the ordinary heap (the top of the file).
 */
static CK_RV
ed25519_from_value(const unsigned char *v, size_t len, EVP_PKEY **pk)
{
	/* SEQUENCE { INTEGER 0, SEQUENCE { OID 1.3.101.112 }, OCTET STRING { OCTET STRING } } */
	static const unsigned char prefix[] = {0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06,
	                                       0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20};
	unsigned char *der;
	CK_RV rv;

	*pk = NULL;
	if (len != 32) {
		return CKR_ATTRIBUTE_VALUE_INVALID;
	}
	if ((der = OPENSSL_secure_malloc(sizeof(prefix) + len)) == NULL) {
		return CKR_HOST_MEMORY;
	}
	memcpy(der, prefix, sizeof(prefix));
	memcpy(der + sizeof(prefix), v, len);
	rv = priv_from_der(EVP_PKEY_ED25519, der, sizeof(prefix) + len, pk);
	OPENSSL_secure_clear_free(der, sizeof(prefix) + len);
	return rv;
}

static CK_RV
ec_from_attrs(struct part_key *k, const CK_ATTRIBUTE *t, CK_ULONG n)
{
	const struct curve *c;
	const unsigned char *v, *pt;
	size_t len, ptlen;
	unsigned char point[1 + 2 * 66];
	BIGNUM *d = NULL;
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	CK_RV rv;

	if ((rv = attr_bytes(t, n, CKA_EC_PARAMS, &v, &len)) != CKR_OK ||
	    (rv = curve_from_params(v, len, &c)) != CKR_OK) {
		return rv;
	}
	if (c->key_type != k->type) {
		return CKR_ATTRIBUTE_VALUE_INVALID; /* an Edwards OID on a CKK_EC key, or back */
	}
	k->group = c->name;
	k->field_len = c->field_len;
	k->size = c->bits;
	if (k->cls == CKO_PUBLIC_KEY) {
		if ((rv = attr_bytes(t, n, CKA_EC_POINT, &v, &len)) != CKR_OK ||
		    (rv = point_unwrap(c, v, len, &pt, &ptlen)) != CKR_OK) {
			return rv;
		}
		return ec_pub_from_point(c, pt, ptlen, &k->pkey);
	}
	if ((rv = attr_bytes(t, n, CKA_VALUE, &v, &len)) != CKR_OK) {
		return rv;
	}
	if (c->key_type == CKK_EC_EDWARDS) {
		return ed25519_from_value(v, len, &k->pkey);
	}
	if (len > c->field_len) {
		return CKR_ATTRIBUTE_VALUE_INVALID;
	}
	if ((d = BN_secure_new()) == NULL || BN_bin2bn(v, (int)len, d) == NULL) {
		rv = CKR_HOST_MEMORY;
		goto out;
	}
	ptlen = 1 + 2 * c->field_len;
	if ((rv = ec_point_of(c, d, point, ptlen)) != CKR_OK) {
		goto out;
	}
	/* OSSL_PARAM BIGNUMs are native-endian: go through a builder */
	if ((bld = OSSL_PARAM_BLD_new()) == NULL ||
	    !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, c->name, 0) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, d) ||
	    !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, ptlen) ||
	    (params = OSSL_PARAM_BLD_to_param(bld)) == NULL ||
	    (ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) == NULL) {
		rv = CKR_HOST_MEMORY;
		goto out;
	}
	if (EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, &k->pkey, EVP_PKEY_KEYPAIR, params) <= 0) {
		rv = CKR_ATTRIBUTE_VALUE_INVALID;
		goto out;
	}
	rv = CKR_OK;
out:
	BN_clear_free(d);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	EVP_PKEY_CTX_free(ctx);
	return rv;
}

CK_RV
part_key_from_attrs(CK_OBJECT_CLASS cls, CK_KEY_TYPE type, const CK_ATTRIBUTE *attrs, CK_ULONG n,
                    struct part_key **out)
{
	struct part_key *k;
	CK_RV rv;

	if (out == NULL || (attrs == NULL && n > 0)) {
		return CKR_ARGUMENTS_BAD;
	}
	*out = NULL;
	if ((k = key_new(cls, type)) == NULL) {
		return CKR_HOST_MEMORY;
	}
	switch (type) {
	case CKK_AES:
	case CKK_GENERIC_SECRET:
	case CKK_SHA_1_HMAC:
	case CKK_SHA224_HMAC:
	case CKK_SHA256_HMAC:
	case CKK_SHA384_HMAC:
	case CKK_SHA512_HMAC:
		rv = cls == CKO_SECRET_KEY ? secret_from_attrs(k, attrs, n)
		                           : CKR_KEY_TYPE_INCONSISTENT;
		break;
	case CKK_RSA:
		rv = cls == CKO_PUBLIC_KEY || cls == CKO_PRIVATE_KEY ? rsa_from_attrs(k, attrs, n)
		                                                     : CKR_KEY_TYPE_INCONSISTENT;
		break;
	case CKK_EC:
	case CKK_EC_EDWARDS:
		rv = cls == CKO_PUBLIC_KEY || cls == CKO_PRIVATE_KEY ? ec_from_attrs(k, attrs, n)
		                                                     : CKR_KEY_TYPE_INCONSISTENT;
		break;
	default:
		rv = CKR_KEY_TYPE_INCONSISTENT;
		break;
	}
	if (rv != CKR_OK) {
		part_key_free(k);
		return rv;
	}
	*out = k;
	return CKR_OK;
}

/* ---- EVP_PKEY to attributes ------------------------------------------------------------ */

static CK_RV
pkey_curve(EVP_PKEY *pk, const struct curve **c)
{
	char name[64];

	*c = NULL;
	if (EVP_PKEY_is_a(pk, "ED25519")) {
		*c = curve_by_name("ED25519");
		return CKR_OK;
	}
	if (!EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, name, sizeof(name),
	                                    NULL) ||
	    (*c = curve_by_name(name)) == NULL) {
		return CKR_CURVE_NOT_SUPPORTED;
	}
	return CKR_OK;
}

static CK_RV
rsa_attrs(EVP_PKEY *pk, struct part_attrs *l, size_t nparts)
{
	size_t i;
	CK_RV rv = CKR_OK;

	for (i = 0; i < nparts && rv == CKR_OK; i++) {
		BIGNUM *bn = NULL;

		if (!EVP_PKEY_get_bn_param(pk, rsa_parts[i].param, &bn)) {
			return CKR_FUNCTION_FAILED;
		}
		rv = attrs_add_bn(l, rsa_parts[i].type, bn, 0);
		BN_clear_free(bn);
	}
	return rv;
}

CK_RV
key_pub_attrs(EVP_PKEY *pk, struct part_attrs *l)
{
	const struct curve *c;
	unsigned char pt[1 + 2 * 66];
	size_t len = 0;
	CK_RV rv;

	if (EVP_PKEY_is_a(pk, "RSA")) {
		if ((rv = rsa_attrs(pk, l, 2)) != CKR_OK) {
			return rv;
		}
		return attrs_add_ulong(l, CKA_MODULUS_BITS, (CK_ULONG)EVP_PKEY_get_bits(pk));
	}
	if ((rv = pkey_curve(pk, &c)) != CKR_OK) {
		return rv;
	}
	if (c->key_type == CKK_EC_EDWARDS) {
		len = sizeof(pt);
		if (!EVP_PKEY_get_raw_public_key(pk, pt, &len)) {
			return CKR_FUNCTION_FAILED;
		}
	} else if (!EVP_PKEY_get_octet_string_param(pk, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof(pt),
	                                            &len)) {
		return CKR_FUNCTION_FAILED;
	}
	if ((rv = attrs_add(l, CKA_EC_PARAMS, c->oid, c->oid_len)) != CKR_OK) {
		return rv;
	}
	return attrs_add_point(l, pt, len);
}

CK_RV
key_priv_attrs(EVP_PKEY *pk, CK_KEY_TYPE *type, struct part_attrs *l)
{
	const struct curve *c;
	unsigned char v[32];
	size_t len = sizeof(v);
	BIGNUM *d = NULL;
	CK_RV rv;

	if (EVP_PKEY_is_a(pk, "RSA")) {
		*type = CKK_RSA;
		return rsa_attrs(pk, l, RSA_NPARTS);
	}
	if ((rv = pkey_curve(pk, &c)) != CKR_OK) {
		return rv;
	}
	*type = c->key_type;
	if ((rv = attrs_add(l, CKA_EC_PARAMS, c->oid, c->oid_len)) != CKR_OK) {
		return rv;
	}
	if (c->key_type == CKK_EC_EDWARDS) {
		if (!EVP_PKEY_get_raw_private_key(pk, v, &len)) {
			return CKR_FUNCTION_FAILED;
		}
		rv = attrs_add(l, CKA_VALUE, v, len);
		OPENSSL_cleanse(v, sizeof(v));
		return rv;
	}
	if (!EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_PRIV_KEY, &d)) {
		return CKR_FUNCTION_FAILED;
	}
	/* fixed length, as in RFC 5915's privateKey OCTET STRING */
	rv = attrs_add_bn(l, CKA_VALUE, d, c->field_len);
	BN_clear_free(d);
	return rv;
}

/* ---- generation ------------------------------------------------------------------------ */

static int
mech_has_param(const CK_MECHANISM *mech)
{
	return mech->ulParameterLen != 0;
}

CK_RV
part_key_generate(const CK_MECHANISM *mech, const CK_ATTRIBUTE *tmpl, CK_ULONG n,
                  struct part_attrs **out)
{
	const struct mech_desc *m;
	struct part_attrs *l = NULL;
	unsigned char *v = NULL;
	CK_ULONG len = 0;
	CK_RV rv;

	if (mech == NULL || out == NULL) {
		return CKR_ARGUMENTS_BAD;
	}
	*out = NULL;
	if ((m = mech_find(mech->mechanism)) == NULL || m->fam != FAM_KEYGEN) {
		return CKR_MECHANISM_INVALID;
	}
	if (mech_has_param(mech)) {
		return CKR_MECHANISM_PARAM_INVALID;
	}
	if ((rv = tmpl_ulong(tmpl, n, CKA_VALUE_LEN, &len)) != CKR_OK) {
		return rv;
	}
	if (len < m->min || len > m->max ||
	    (m->key_type == CKK_AES && len != 16 && len != 24 && len != 32)) {
		return CKR_ATTRIBUTE_VALUE_INVALID;
	}
	if ((v = OPENSSL_secure_malloc(len)) == NULL || (l = attrs_new()) == NULL) {
		rv = CKR_HOST_MEMORY;
		goto out;
	}
	if (RAND_priv_bytes(v, (int)len) != 1) {
		rv = CKR_FUNCTION_FAILED;
		goto out;
	}
	if ((rv = attrs_add(l, CKA_VALUE, v, len)) != CKR_OK ||
	    (rv = attrs_add_ulong(l, CKA_VALUE_LEN, len)) != CKR_OK) {
		goto out;
	}
	*out = l;
	l = NULL; /* transferred */
	rv = CKR_OK;
out:
	OPENSSL_secure_clear_free(v, len);
	part_attrs_free(l);
	return rv;
}

static CK_RV
gen_rsa(const CK_ATTRIBUTE *t, CK_ULONG n, EVP_PKEY **pk)
{
	const CK_ATTRIBUTE *ea = tmpl_find(t, n, CKA_PUBLIC_EXPONENT);
	EVP_PKEY_CTX *ctx = NULL;
	BIGNUM *e = NULL;
	CK_ULONG bits;
	CK_RV rv;

	if ((rv = tmpl_ulong(t, n, CKA_MODULUS_BITS, &bits)) != CKR_OK) {
		return rv;
	}
	if (bits < 2048 || bits > 4096) {
		return CKR_ATTRIBUTE_VALUE_INVALID;
	}
	if (ea != NULL) {
		if (ea->pValue == NULL || ea->ulValueLen == 0 || ea->ulValueLen > 8) {
			return CKR_ATTRIBUTE_VALUE_INVALID;
		}
		e = BN_bin2bn(ea->pValue, (int)ea->ulValueLen, NULL);
	} else {
		e = BN_new();
		if (e != NULL && !BN_set_word(e, 65537)) {
			BN_free(e);
			e = NULL;
		}
	}
	if (e == NULL) {
		return CKR_HOST_MEMORY;
	}
	rv = CKR_ATTRIBUTE_VALUE_INVALID;
	if (!BN_is_odd(e) || BN_cmp(e, BN_value_one()) <= 0 || BN_num_bits(e) < 2) {
		goto out;
	}
	rv = CKR_FUNCTION_FAILED;
	if ((ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL)) == NULL ||
	    EVP_PKEY_keygen_init(ctx) <= 0 ||
	    EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, (int)bits) <= 0 ||
	    EVP_PKEY_CTX_set1_rsa_keygen_pubexp(ctx, e) <= 0 || EVP_PKEY_generate(ctx, pk) <= 0) {
		goto out;
	}
	rv = CKR_OK;
out:
	BN_free(e);
	EVP_PKEY_CTX_free(ctx);
	return rv;
}

static CK_RV
gen_ec(CK_KEY_TYPE want, const CK_ATTRIBUTE *t, CK_ULONG n, EVP_PKEY **pk)
{
	const CK_ATTRIBUTE *a = tmpl_find(t, n, CKA_EC_PARAMS);
	const struct curve *c;
	CK_RV rv;

	if (a == NULL) {
		return CKR_TEMPLATE_INCOMPLETE;
	}
	if ((rv = curve_from_params(a->pValue, a->ulValueLen, &c)) != CKR_OK) {
		return rv;
	}
	if (c->key_type != want) {
		return CKR_CURVE_NOT_SUPPORTED; /* e.g. Ed25519 with CKM_EC_KEY_PAIR_GEN */
	}
	if (want == CKK_EC_EDWARDS) {
		*pk = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	} else {
		*pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", c->name);
	}
	return *pk != NULL ? CKR_OK : CKR_FUNCTION_FAILED;
}

CK_RV
part_key_generate_pair(const CK_MECHANISM *mech, const CK_ATTRIBUTE *pub_tmpl, CK_ULONG npub,
                       const CK_ATTRIBUTE *priv_tmpl, CK_ULONG npriv, struct part_attrs **pub,
                       struct part_attrs **priv)
{
	const struct mech_desc *m;
	struct part_attrs *lpub = NULL, *lpriv = NULL;
	EVP_PKEY *pk = NULL;
	CK_KEY_TYPE type;
	CK_RV rv;

	(void)priv_tmpl;
	(void)npriv;
	if (mech == NULL || pub == NULL || priv == NULL) {
		return CKR_ARGUMENTS_BAD;
	}
	*pub = *priv = NULL;
	if ((m = mech_find(mech->mechanism)) == NULL || m->fam != FAM_PAIRGEN) {
		return CKR_MECHANISM_INVALID;
	}
	if (mech_has_param(mech)) {
		return CKR_MECHANISM_PARAM_INVALID;
	}
	switch (m->key_type) {
	case CKK_RSA:
		rv = gen_rsa(pub_tmpl, npub, &pk);
		break;
	case CKK_EC:
	case CKK_EC_EDWARDS:
		rv = gen_ec(m->key_type, pub_tmpl, npub, &pk);
		break;
	default:
		rv = CKR_MECHANISM_INVALID;
		break;
	}
	if (rv != CKR_OK) {
		goto out;
	}
	if ((lpub = attrs_new()) == NULL || (lpriv = attrs_new()) == NULL) {
		rv = CKR_HOST_MEMORY;
		goto out;
	}
	if ((rv = key_pub_attrs(pk, lpub)) != CKR_OK ||
	    (rv = key_priv_attrs(pk, &type, lpriv)) != CKR_OK) {
		goto out;
	}
	*pub = lpub;
	*priv = lpriv;
	lpub = lpriv = NULL; /* transferred */
	rv = CKR_OK;
out:
	EVP_PKEY_free(pk);
	part_attrs_free(lpub);
	part_attrs_free(lpriv);
	return rv;
}

/* ---- PKCS #8 --------------------------------------------------------------------------- */

CK_RV
part_key_to_pkcs8(const struct part_key *key, unsigned char **der, size_t *len)
{
	PKCS8_PRIV_KEY_INFO *p8 = NULL;
	unsigned char *p;
	CK_RV rv = CKR_FUNCTION_FAILED;
	int n;

	if (key == NULL || der == NULL || len == NULL) {
		return CKR_ARGUMENTS_BAD;
	}
	*der = NULL;
	*len = 0;
	if (key->cls != CKO_PRIVATE_KEY || key->pkey == NULL) {
		return CKR_KEY_TYPE_INCONSISTENT;
	}
	/* an RSA key without its CRT values has no PKCS #1 RSAPrivateKey encoding */
	if ((p8 = EVP_PKEY2PKCS8(key->pkey)) == NULL) {
		return CKR_KEY_NOT_WRAPPABLE;
	}
	/* measured, then written into the secure heap (i2d would allocate ordinary memory) */
	if ((n = i2d_PKCS8_PRIV_KEY_INFO(p8, NULL)) <= 0) {
		goto out;
	}
	if ((*der = OPENSSL_secure_malloc((size_t)n)) == NULL) {
		rv = CKR_HOST_MEMORY;
		goto out;
	}
	p = *der;
	if (i2d_PKCS8_PRIV_KEY_INFO(p8, &p) != n) {
		OPENSSL_secure_clear_free(*der, (size_t)n);
		*der = NULL;
		goto out;
	}
	*len = (size_t)n;
	rv = CKR_OK;
out:
	PKCS8_PRIV_KEY_INFO_free(p8); /* wipes its copy of the key (p8_pkey.c) */
	return rv;
}

CK_RV
part_key_from_pkcs8(const unsigned char *der, size_t len, CK_KEY_TYPE *type,
                    struct part_attrs **priv)
{
	const unsigned char *p = der;
	PKCS8_PRIV_KEY_INFO *p8 = NULL;
	EVP_PKEY *pk = NULL;
	struct part_attrs *l = NULL;
	CK_RV rv = CKR_WRAPPED_KEY_INVALID;

	if (der == NULL || type == NULL || priv == NULL) {
		return CKR_ARGUMENTS_BAD;
	}
	*priv = NULL;
	if (len > 65536 || (p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, (long)len)) == NULL ||
	    p != der + len) {
		goto out;
	}
	if ((pk = EVP_PKCS82PKEY(p8)) == NULL) {
		goto out;
	}
	if (!EVP_PKEY_is_a(pk, "RSA") && !EVP_PKEY_is_a(pk, "EC") &&
	    !EVP_PKEY_is_a(pk, "ED25519")) {
		goto out;
	}
	if ((l = attrs_new()) == NULL) {
		rv = CKR_HOST_MEMORY;
		goto out;
	}
	if ((rv = key_priv_attrs(pk, type, l)) != CKR_OK) {
		goto out;
	}
	*priv = l;
	l = NULL; /* transferred */
	rv = CKR_OK;
out:
	PKCS8_PRIV_KEY_INFO_free(p8);
	EVP_PKEY_free(pk);
	part_attrs_free(l);
	return rv;
}
