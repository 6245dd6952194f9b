/*
 * policy/vocab.c — the action vocabulary, the builtin role bundles and the known condition
 * keys. The loader rejects any action or key not listed here, so a typo can never turn a
 * deny statement into a no-op (reference/policy-and-kms.md: "Validator rejects unknown
 * actions at load time"). Append only: docs/POLICY.md mirrors this table.
 */
#include <stddef.h>
#include <string.h>
#include <strings.h>

#include "policy/internal.h"

struct action_def {
	const char *name;
	const char *functions; /* PKCS #11 functions or gateway operation */
	const char *resource;  /* what the resource CRN names */
};

static const struct action_def actions[] = {
        /* slot and token */
        {"hsm.token.read", "C_GetSlotList C_GetSlotInfo C_GetTokenInfo C_WaitForSlotEvent",
         "partition"},
        {"hsm.mechanism.read", "C_GetMechanismList C_GetMechanismInfo", "partition"},
        {"hsm.token.init", "C_InitToken", "partition"},
        {"hsm.token.initpin", "C_InitPIN", "partition"},
        {"hsm.token.setpin", "C_SetPIN", "partition"},
        /* sessions */
        {"hsm.session.connect", "connection accepted (hello)", "tenant"},
        {"hsm.session.open", "C_OpenSession (hsm:SessionRW)", "partition"},
        {"hsm.session.close", "C_CloseSession C_CloseAllSessions", "partition"},
        {"hsm.session.read", "C_GetSessionInfo C_SessionCancel", "partition"},
        {"hsm.session.login", "C_Login C_LoginUser (hsm:UserType)", "partition"},
        {"hsm.session.logout", "C_Logout", "partition"},
        {"hsm.session.exportstate", "C_GetOperationState", "partition"},
        {"hsm.session.importstate", "C_SetOperationState", "partition"},
        /* objects and keys */
        {"hsm.objects.create", "C_CreateObject (non-key classes)", "partition"},
        {"hsm.keys.generate", "C_GenerateKey", "partition"},
        {"hsm.keys.generatepair", "C_GenerateKeyPair", "partition"},
        {"hsm.keys.import", "C_CreateObject (key classes); C_UnwrapKey (on the partition)",
         "partition"},
        {"hsm.keys.copy", "C_CopyObject", "key"},
        {"hsm.keys.destroy", "C_DestroyObject", "key"},
        {"hsm.keys.readmetadata", "C_GetObjectSize", "key"},
        {"hsm.keys.readattributes", "C_GetAttributeValue", "key"},
        {"hsm.keys.setattributes", "C_SetAttributeValue", "key"},
        {"hsm.keys.list", "C_FindObjectsInit C_FindObjects C_FindObjectsFinal", "partition"},
        {"hsm.keys.wrap", "C_WrapKey (on the wrapping key)", "key"},
        {"hsm.keys.export", "C_WrapKey (on the key being wrapped)", "key"},
        {"hsm.keys.unwrap", "C_UnwrapKey (on the unwrapping key)", "key"},
        {"hsm.keys.derive", "C_DeriveKey (on the base key)", "key"},
        {"hsm.keys.encapsulate", "C_EncapsulateKey", "key"},
        {"hsm.keys.decapsulate", "C_DecapsulateKey", "key"},
        {"hsm.keys.rotate", "gateway: rotate key", "key"},
        {"hsm.keys.listversions", "gateway: list key versions", "key"},
        {"hsm.keys.disable", "gateway: suspend key", "key"},
        {"hsm.keys.enable", "gateway: reactivate key", "key"},
        {"hsm.keys.scheduledeletion", "gateway: schedule deletion", "key"},
        {"hsm.keys.canceldeletion", "gateway: cancel deletion", "key"},
        {"hsm.keys.restore", "gateway: restore deleted key", "key"},
        {"hsm.keys.purge", "gateway: purge deleted key", "key"},
        /* crypto */
        {"hsm.crypto.encrypt", "C_EncryptInit (decides C_Encrypt*, C_MessageEncrypt*)", "key"},
        {"hsm.crypto.decrypt", "C_DecryptInit (decides C_Decrypt*, C_MessageDecrypt*)", "key"},
        {"hsm.crypto.sign", "C_SignInit C_SignRecoverInit (decide C_Sign*)", "key"},
        {"hsm.crypto.verify", "C_VerifyInit C_VerifyRecoverInit (decide C_Verify*)", "key"},
        {"hsm.crypto.digest", "C_DigestInit (decides C_Digest*)", "partition"},
        {"hsm.crypto.digestkey", "C_DigestKey", "key"},
        {"hsm.random.generate", "C_GenerateRandom (hsm:Length)", "partition"},
        {"hsm.random.seed", "C_SeedRandom", "partition"},
        /* import tokens and key rings */
        {"hsm.importtoken.create", "gateway: create import token", "partition"},
        {"hsm.importtoken.read", "gateway: read import token", "partition"},
        {"hsm.keyring.create", "gateway: create key ring", "partition"},
        {"hsm.keyring.list", "gateway: list key rings", "partition"},
        {"hsm.keyring.delete", "gateway: delete key ring", "partition"},
        /* admin */
        {"hsm.partition.create", "hsmctl partition create", "partition"},
        {"hsm.partition.delete", "hsmctl partition delete", "partition"},
        {"hsm.partition.list", "hsmctl partition list", "tenant"},
        {"hsm.partition.settings.read", "hsmctl partition show", "partition"},
        {"hsm.partition.settings.write", "hsmctl partition set", "partition"},
        {"hsm.masterkey.loadpart", "hsmctl masterkey load-part", "partition"},
        {"hsm.masterkey.commit", "hsmctl masterkey commit", "partition"},
        {"hsm.masterkey.activate", "hsmctl masterkey activate", "partition"},
        {"hsm.masterkey.clear", "hsmctl masterkey clear", "partition"},
        {"hsm.masterkey.rotate", "hsmctl masterkey rotate", "partition"},
        {"hsm.masterkey.zeroize", "hsmctl masterkey zeroize", "partition"},
        {"hsm.admins.add", "hsmctl admins add", "partition"},
        {"hsm.admins.remove", "hsmctl admins remove", "partition"},
        {"hsm.admins.setthreshold", "hsmctl admins set-threshold", "partition"},
        {"hsm.policy.read", "admin API: read policy", "tenant"},
        {"hsm.policy.write", "admin API: write policy", "tenant"},
        {"hsm.policy.simulate", "admin API: simulate", "tenant"},
        {"hsm.policy.reload", "SIGHUP, hsmctl policy reload", "tenant"},
        {"hsm.audit.read", "hsmgate-audit, admin API: read audit log", "tenant"},
};

_Static_assert(sizeof(actions) / sizeof(actions[0]) <= POL_MAX_ACTIONS, "raise POL_MAX_ACTIONS");

size_t
pol_action_count(void)
{
	return sizeof(actions) / sizeof(actions[0]);
}

const char *
pol_action_name(size_t i)
{
	return i < pol_action_count() ? actions[i].name : NULL;
}

const char *
pol_action_functions(size_t i)
{
	return i < pol_action_count() ? actions[i].functions : NULL;
}

const char *
pol_action_resource(size_t i)
{
	return i < pol_action_count() ? actions[i].resource : NULL;
}

int
pol_vocab_action_index(const char *name, size_t len)
{
	size_t i;

	/* ~70 entries: a linear scan with an early length check is fast enough and has no
	 * set-up; the hot path looks the action up once per evaluation. */
	for (i = 0; i < pol_action_count(); i++) {
		if (strlen(actions[i].name) == len &&
		    strncasecmp(actions[i].name, name, len) == 0) {
			return (int)i;
		}
	}
	return -1;
}

int
pol_action_known(const char *action)
{
	if (action == NULL) {
		return 0;
	}
	return pol_vocab_action_index(action, strlen(action)) >= 0;
}

/* ---- roles ---------------------------------------------------------------------------- */

/* The bundles of reference/policy-and-kms.md "Role bundles"; each extends the one before
 * it the way IBM's Reader < Writer < Manager do, written out so a reader sees the lot. */
static const char *const role_crypto_user[] = {"hsm.crypto.*",
                                               "hsm.keys.list",
                                               "hsm.keys.readmetadata",
                                               "hsm.keys.readattributes",
                                               "hsm.random.generate",
                                               "hsm.session.*",
                                               "hsm.token.read",
                                               "hsm.mechanism.read",
                                               NULL};
static const char *const role_key_operator[] = {"hsm.crypto.*",
                                                "hsm.keys.list",
                                                "hsm.keys.readmetadata",
                                                "hsm.keys.readattributes",
                                                "hsm.random.generate",
                                                "hsm.session.*",
                                                "hsm.token.read",
                                                "hsm.mechanism.read",
                                                "hsm.keys.generate*",
                                                "hsm.keys.import",
                                                "hsm.keys.unwrap",
                                                "hsm.keys.derive",
                                                "hsm.keys.copy",
                                                "hsm.keys.rotate",
                                                "hsm.keys.scheduledeletion",
                                                "hsm.keys.canceldeletion",
                                                "hsm.importtoken.*",
                                                "hsm.keyring.create",
                                                "hsm.keys.wrap",
                                                "hsm.keys.encapsulate",
                                                "hsm.keys.decapsulate",
                                                "hsm.objects.create",
                                                NULL};
static const char *const role_key_manager[] = {"hsm.crypto.*",
                                               "hsm.keys.list",
                                               "hsm.keys.readmetadata",
                                               "hsm.keys.readattributes",
                                               "hsm.random.generate",
                                               "hsm.session.*",
                                               "hsm.token.read",
                                               "hsm.mechanism.read",
                                               "hsm.keys.generate*",
                                               "hsm.keys.import",
                                               "hsm.keys.unwrap",
                                               "hsm.keys.derive",
                                               "hsm.keys.copy",
                                               "hsm.keys.rotate",
                                               "hsm.keys.scheduledeletion",
                                               "hsm.keys.canceldeletion",
                                               "hsm.importtoken.*",
                                               "hsm.keyring.create",
                                               "hsm.keys.wrap",
                                               "hsm.keys.encapsulate",
                                               "hsm.keys.decapsulate",
                                               "hsm.objects.create",
                                               "hsm.keys.destroy",
                                               "hsm.keys.disable",
                                               "hsm.keys.enable",
                                               "hsm.keys.restore",
                                               "hsm.keys.setattributes",
                                               "hsm.keys.listversions",
                                               "hsm.partition.settings.*",
                                               "hsm.keyring.*",
                                               "hsm.policy.read",
                                               NULL};
static const char *const role_key_purger[] = {"hsm.keys.purge", NULL};
static const char *const role_token_admin[] = {"hsm.token.*", "hsm.session.*", "hsm.mechanism.read",
                                               NULL};
static const char *const role_unit_admin[] = {"hsm.masterkey.*", "hsm.admins.*", "hsm.partition.*",
                                              NULL};
static const char *const role_auditor[] = {"hsm.audit.read", "hsm.policy.read",
                                           "hsm.policy.simulate", NULL};

static const struct {
	const char *name;
	const char *const *actions;
} roles[] = {
        {"CryptoUser", role_crypto_user},     {"KeyOperator", role_key_operator},
        {"KeyManager", role_key_manager},     {"KeyPurger", role_key_purger},
        {"TokenAdmin", role_token_admin},     {"SecurityOfficer", role_token_admin},
        {"CryptoUnitAdmin", role_unit_admin}, {"Auditor", role_auditor},
};

const char *const *
pol_vocab_role(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(roles) / sizeof(roles[0]); i++) {
		if (strcmp(roles[i].name, name) == 0) {
			return roles[i].actions;
		}
	}
	return NULL;
}

/* ---- condition keys ------------------------------------------------------------------- */

static const struct {
	const char *name;
	bool family; /* name is a prefix: "hsm:KeyAttr/" + suffix */
	enum pol_ktype type;
} keys[] = {
        {"hsm:Mechanism", false, POL_KT_STRING},
        {"hsm:KeyClass", false, POL_KT_STRING},
        {"hsm:KeyType", false, POL_KT_STRING},
        {"hsm:KeyLabel", false, POL_KT_STRING},
        {"hsm:KeyId", false, POL_KT_STRING},
        {"hsm:KeyBits", false, POL_KT_NUMERIC},
        {"hsm:KeyState", false, POL_KT_STRING},
        {"hsm:KeyRing", false, POL_KT_STRING},
        {"hsm:UserType", false, POL_KT_STRING},
        {"hsm:SessionRW", false, POL_KT_BOOL},
        {"hsm:Function", false, POL_KT_STRING},
        {"hsm:Length", false, POL_KT_NUMERIC},
        {"hsm:AttrChanged", false, POL_KT_STRING},
        {"hsm:PrincipalName", false, POL_KT_STRING},
        {"hsm:Tenant", false, POL_KT_STRING},
        {"hsm:Partition", false, POL_KT_CRN},
        {"hsm:WrappingKeyTrusted", false, POL_KT_BOOL},
        {"hsm:KeyAttr/", true, POL_KT_STRING},
        {"hsm:Template/", true, POL_KT_STRING},
        {"hsm:TargetKeyAttr/", true, POL_KT_STRING},
        {"hsm:AadTag/", true, POL_KT_STRING},
        {"gw:SourceIp", false, POL_KT_IP},
        {"gw:CredentialType", false, POL_KT_STRING},
        {"gw:CurrentTime", false, POL_KT_DATE},
        {"gw:EpochTime", false, POL_KT_NUMERIC},
        {"gw:AuthAge", false, POL_KT_NUMERIC},
        {"gw:Approvals", false, POL_KT_NUMERIC},
        {"gw:Group", false, POL_KT_STRING},
        {"gw:PrincipalId", false, POL_KT_STRING},
        {"gw:CertFingerprint", false, POL_KT_STRING},
        {"gw:Tenant", false, POL_KT_STRING},
        {"gw:PrincipalTag/", true, POL_KT_STRING},
        {"gw:CertSubject/", true, POL_KT_STRING},
};

static bool
family_suffix_ok(const char *s)
{
	if (*s == '\0') {
		return false;
	}
	for (; *s != '\0'; s++) {
		if (*s <= ' ' || *s == 0x7f || *s == '$' || *s == '{' || *s == '}' || *s == ',' ||
		    *s == '\'') {
			return false;
		}
	}
	return true;
}

int
pol_vocab_key_type(const char *key, enum pol_ktype *type)
{
	size_t i, n;

	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		n = strlen(keys[i].name);
		if (keys[i].family) {
			if (strncasecmp(key, keys[i].name, n) == 0 && family_suffix_ok(key + n)) {
				*type = keys[i].type;
				return 0;
			}
		} else if (strcasecmp(key, keys[i].name) == 0) {
			*type = keys[i].type;
			return 0;
		}
	}
	return POL_ERR_KEY;
}

int
pol_condition_key_known(const char *key)
{
	enum pol_ktype t;

	if (key == NULL) {
		return 0;
	}
	return pol_vocab_key_type(key, &t) == 0;
}
