/*
 * hsm-partitions/crypto/table.c — the mechanism table: what C_GetMechanismList and
 * C_GetMechanismInfo report, and the facts the engine dispatches on.
 *
 * The table is the single source of truth: an operation is refused with
 * CKR_MECHANISM_INVALID unless the flag for it is set here, so what the token lists is
 * exactly what it does.
 */
#include "hsm-partitions/crypto/mech_int.h"

#define F_EC (CKF_EC_F_P | CKF_EC_NAMEDCURVE | CKF_EC_UNCOMPRESS)
#define F_SV (CKF_SIGN | CKF_VERIFY)
#define F_ED (CKF_ENCRYPT | CKF_DECRYPT)

static const struct mech_desc mechs[] = {
        /* digests: key sizes "not applicable" are 0 */
        {CKM_SHA_1, FAM_DIGEST, 0, 0, CKF_DIGEST, MECH_NO_KEY, 1, "SHA1"},
        {CKM_SHA224, FAM_DIGEST, 0, 0, CKF_DIGEST, MECH_NO_KEY, 1, "SHA224"},
        {CKM_SHA256, FAM_DIGEST, 0, 0, CKF_DIGEST, MECH_NO_KEY, 1, "SHA256"},
        {CKM_SHA384, FAM_DIGEST, 0, 0, CKF_DIGEST, MECH_NO_KEY, 1, "SHA384"},
        {CKM_SHA512, FAM_DIGEST, 0, 0, CKF_DIGEST, MECH_NO_KEY, 1, "SHA512"},

        /* RSA, modulus bits */
        {CKM_RSA_PKCS_KEY_PAIR_GEN, FAM_PAIRGEN, 2048, 4096, CKF_GENERATE_KEY_PAIR, CKK_RSA, 0,
         NULL},
        {CKM_RSA_PKCS, FAM_RSA_PKCS, 2048, 4096,
         F_ED | F_SV | CKF_SIGN_RECOVER | CKF_VERIFY_RECOVER | CKF_WRAP | CKF_UNWRAP, CKK_RSA, 0,
         NULL},
        {CKM_RSA_X_509, FAM_RSA_X509, 2048, 4096,
         F_ED | F_SV | CKF_SIGN_RECOVER | CKF_VERIFY_RECOVER, CKK_RSA, 0, NULL},
        {CKM_SHA1_RSA_PKCS, FAM_RSA_PKCS_MD, 2048, 4096, F_SV, CKK_RSA, 1, "SHA1"},
        {CKM_SHA224_RSA_PKCS, FAM_RSA_PKCS_MD, 2048, 4096, F_SV, CKK_RSA, 1, "SHA224"},
        {CKM_SHA256_RSA_PKCS, FAM_RSA_PKCS_MD, 2048, 4096, F_SV, CKK_RSA, 1, "SHA256"},
        {CKM_SHA384_RSA_PKCS, FAM_RSA_PKCS_MD, 2048, 4096, F_SV, CKK_RSA, 1, "SHA384"},
        {CKM_SHA512_RSA_PKCS, FAM_RSA_PKCS_MD, 2048, 4096, F_SV, CKK_RSA, 1, "SHA512"},
        {CKM_RSA_PKCS_PSS, FAM_RSA_PSS, 2048, 4096, F_SV, CKK_RSA, 0, NULL},
        {CKM_SHA1_RSA_PKCS_PSS, FAM_RSA_PSS_MD, 2048, 4096, F_SV, CKK_RSA, 1, "SHA1"},
        {CKM_SHA224_RSA_PKCS_PSS, FAM_RSA_PSS_MD, 2048, 4096, F_SV, CKK_RSA, 1, "SHA224"},
        {CKM_SHA256_RSA_PKCS_PSS, FAM_RSA_PSS_MD, 2048, 4096, F_SV, CKK_RSA, 1, "SHA256"},
        {CKM_SHA384_RSA_PKCS_PSS, FAM_RSA_PSS_MD, 2048, 4096, F_SV, CKK_RSA, 1, "SHA384"},
        {CKM_SHA512_RSA_PKCS_PSS, FAM_RSA_PSS_MD, 2048, 4096, F_SV, CKK_RSA, 1, "SHA512"},
        {CKM_RSA_PKCS_OAEP, FAM_RSA_OAEP, 2048, 4096, F_ED | CKF_WRAP | CKF_UNWRAP, CKK_RSA, 0,
         NULL},

        /* EC over prime fields, order bits */
        {CKM_EC_KEY_PAIR_GEN, FAM_PAIRGEN, 256, 521, CKF_GENERATE_KEY_PAIR | F_EC, CKK_EC, 0, NULL},
        {CKM_ECDSA, FAM_ECDSA, 256, 521, F_SV | F_EC, CKK_EC, 0, NULL},
        {CKM_ECDSA_SHA1, FAM_ECDSA_MD, 256, 521, F_SV | F_EC, CKK_EC, 1, "SHA1"},
        {CKM_ECDSA_SHA224, FAM_ECDSA_MD, 256, 521, F_SV | F_EC, CKK_EC, 1, "SHA224"},
        {CKM_ECDSA_SHA256, FAM_ECDSA_MD, 256, 521, F_SV | F_EC, CKK_EC, 1, "SHA256"},
        {CKM_ECDSA_SHA384, FAM_ECDSA_MD, 256, 521, F_SV | F_EC, CKK_EC, 1, "SHA384"},
        {CKM_ECDSA_SHA512, FAM_ECDSA_MD, 256, 521, F_SV | F_EC, CKK_EC, 1, "SHA512"},
        {CKM_ECDH1_DERIVE, FAM_ECDH, 256, 521, CKF_DERIVE | F_EC, CKK_EC, 0, NULL},
        {CKM_ECDH1_COFACTOR_DERIVE, FAM_ECDH, 256, 521, CKF_DERIVE | F_EC, CKK_EC, 0, NULL},

        /* Ed25519 (PKCS #11 v3.0 §2.3.14), curve bits */
        {CKM_EC_EDWARDS_KEY_PAIR_GEN, FAM_PAIRGEN, 255, 255, CKF_GENERATE_KEY_PAIR, CKK_EC_EDWARDS,
         0, NULL},
        {CKM_EDDSA, FAM_EDDSA, 255, 255, F_SV, CKK_EC_EDWARDS, 0, NULL},

        /* AES, key bytes */
        {CKM_AES_KEY_GEN, FAM_KEYGEN, 16, 32, CKF_GENERATE, CKK_AES, 0, NULL},
        {CKM_AES_ECB, FAM_AES_ECB, 16, 32, F_ED, CKK_AES, 1, NULL},
        {CKM_AES_CBC, FAM_AES_CBC, 16, 32, F_ED, CKK_AES, 1, NULL},
        {CKM_AES_CBC_PAD, FAM_AES_CBC_PAD, 16, 32, F_ED, CKK_AES, 1, NULL},
        {CKM_AES_CTR, FAM_AES_CTR, 16, 32, F_ED, CKK_AES, 1, NULL},
        {CKM_AES_GCM, FAM_AES_GCM, 16, 32, F_ED, CKK_AES, 1, NULL},
        {CKM_AES_CMAC, FAM_AES_CMAC, 16, 32, F_SV, CKK_AES, 1, NULL},
        {CKM_AES_KEY_WRAP, FAM_AES_KW, 16, 32, F_ED | CKF_WRAP | CKF_UNWRAP, CKK_AES, 0, NULL},
        {CKM_AES_KEY_WRAP_PAD, FAM_AES_KWP, 16, 32, F_ED | CKF_WRAP | CKF_UNWRAP, CKK_AES, 0, NULL},

        /* generic secrets and HMAC, key bytes */
        {CKM_GENERIC_SECRET_KEY_GEN, FAM_KEYGEN, 1, 512, CKF_GENERATE, CKK_GENERIC_SECRET, 0, NULL},
        {CKM_SHA_1_HMAC, FAM_HMAC, 1, 512, F_SV, CKK_GENERIC_SECRET, 1, "SHA1"},
        {CKM_SHA224_HMAC, FAM_HMAC, 1, 512, F_SV, CKK_GENERIC_SECRET, 1, "SHA224"},
        {CKM_SHA256_HMAC, FAM_HMAC, 1, 512, F_SV, CKK_GENERIC_SECRET, 1, "SHA256"},
        {CKM_SHA384_HMAC, FAM_HMAC, 1, 512, F_SV, CKK_GENERIC_SECRET, 1, "SHA384"},
        {CKM_SHA512_HMAC, FAM_HMAC, 1, 512, F_SV, CKK_GENERIC_SECRET, 1, "SHA512"},
};

#define NMECHS (sizeof(mechs) / sizeof(mechs[0]))

const struct mech_desc *
mech_find(CK_MECHANISM_TYPE type)
{
	size_t i;

	for (i = 0; i < NMECHS; i++) {
		if (mechs[i].type == type) {
			return &mechs[i];
		}
	}
	return NULL;
}

CK_RV
part_mech_list(CK_MECHANISM_TYPE *out, size_t *n)
{
	size_t i;

	if (n == NULL) {
		return CKR_ARGUMENTS_BAD;
	}
	if (out == NULL) {
		*n = NMECHS;
		return CKR_OK;
	}
	if (*n < NMECHS) {
		*n = NMECHS;
		return CKR_BUFFER_TOO_SMALL;
	}
	for (i = 0; i < NMECHS; i++) {
		out[i] = mechs[i].type;
	}
	*n = NMECHS;
	return CKR_OK;
}

CK_RV
part_mech_info(CK_MECHANISM_TYPE type, CK_MECHANISM_INFO *info)
{
	const struct mech_desc *m = mech_find(type);

	if (info == NULL) {
		return CKR_ARGUMENTS_BAD;
	}
	if (m == NULL) {
		return CKR_MECHANISM_INVALID;
	}
	info->ulMinKeySize = m->min;
	info->ulMaxKeySize = m->max;
	info->flags = m->flags;
	return CKR_OK;
}

int
part_mech_multipart(CK_MECHANISM_TYPE type)
{
	const struct mech_desc *m = mech_find(type);

	return m != NULL && m->multipart;
}

const char *
mech_md_name(CK_MECHANISM_TYPE hash)
{
	switch (hash) {
	case CKM_SHA_1:
		return "SHA1";
	case CKM_SHA224:
		return "SHA224";
	case CKM_SHA256:
		return "SHA256";
	case CKM_SHA384:
		return "SHA384";
	case CKM_SHA512:
		return "SHA512";
	default:
		return NULL;
	}
}

const char *
mech_mgf_md_name(CK_ULONG mgf)
{
	switch (mgf) {
	case CKG_MGF1_SHA1:
		return "SHA1";
	case CKG_MGF1_SHA224:
		return "SHA224";
	case CKG_MGF1_SHA256:
		return "SHA256";
	case CKG_MGF1_SHA384:
		return "SHA384";
	case CKG_MGF1_SHA512:
		return "SHA512";
	default:
		return NULL;
	}
}
