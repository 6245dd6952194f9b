/*
 * tests/e2e/p11_genpair.c — generates an EC P-256 key pair through any PKCS #11 module with
 * the private key's CKA_EXTRACTABLE chosen on the command line, and prints the CK_RV.
 * pkcs11-tool (OpenSC 0.23) cannot set CKA_EXTRACTABLE, which the policy tests need.
 *
 * usage: p11_genpair --module SO --token LABEL --pin-file F --label L [--extractable]
 * prints: "rv=0x<hex>" and exits 0 when the call returned (whatever the CK_RV), 2 on set-up
 * errors.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <p11-kit/pkcs11.h>

#include "tests/lib/pin.h"

int
main(int argc, char **argv)
{
	const char *module = NULL, *token = NULL, *pin_file = NULL, *label = NULL;
	CK_BBOOL extractable = CK_FALSE, yes = CK_TRUE;
	/* DER of the OID prime256v1 (1.2.840.10045.3.1.7). */
	static CK_BYTE p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
	CK_FUNCTION_LIST_PTR f;
	CK_C_GetFunctionList get;
	CK_C_INITIALIZE_ARGS args;
	CK_SLOT_ID slots[64];
	CK_ULONG nslots = 64, i;
	CK_SESSION_HANDLE s;
	CK_OBJECT_HANDLE pub, priv;
	CK_MECHANISM mech = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
	CK_TOKEN_INFO ti;
	char pin[256];
	void *h;
	int k, found = 0;
	CK_RV rv;

	for (k = 1; k < argc; k++) {
		if (strcmp(argv[k], "--module") == 0 && k + 1 < argc) {
			module = argv[++k];
		} else if (strcmp(argv[k], "--token") == 0 && k + 1 < argc) {
			token = argv[++k];
		} else if (strcmp(argv[k], "--pin-file") == 0 && k + 1 < argc) {
			pin_file = argv[++k];
		} else if (strcmp(argv[k], "--label") == 0 && k + 1 < argc) {
			label = argv[++k];
		} else if (strcmp(argv[k], "--extractable") == 0) {
			extractable = CK_TRUE;
		} else {
			fprintf(stderr, "usage: p11_genpair --module SO --token LABEL --pin-file F "
			                "--label L [--extractable]\n");
			return 2;
		}
	}
	if (module == NULL || token == NULL || pin_file == NULL || label == NULL ||
	    test_read_pin(pin_file, pin, sizeof(pin)) != 0) {
		fprintf(stderr, "p11_genpair: missing or unreadable arguments\n");
		return 2;
	}
	if ((h = dlopen(module, RTLD_NOW)) == NULL ||
	    (get = (CK_C_GetFunctionList)dlsym(h, "C_GetFunctionList")) == NULL ||
	    get(&f) != CKR_OK) {
		fprintf(stderr, "p11_genpair: cannot load %s\n", module);
		return 2;
	}
	memset(&args, 0, sizeof(args));
	args.flags = CKF_OS_LOCKING_OK;
	if ((rv = f->C_Initialize(&args)) != CKR_OK ||
	    (rv = f->C_GetSlotList(CK_TRUE, slots, &nslots)) != CKR_OK) {
		printf("rv=0x%lx\n", (unsigned long)rv);
		return 2;
	}
	for (i = 0; i < nslots && !found; i++) {
		if (f->C_GetTokenInfo(slots[i], &ti) == CKR_OK &&
		    strncmp((const char *)ti.label, token, strlen(token)) == 0 &&
		    (strlen(token) == 32 || ti.label[strlen(token)] == ' ')) {
			found = 1;
			break;
		}
	}
	if (!found) {
		fprintf(stderr, "p11_genpair: no token %s\n", token);
		return 2;
	}
	if ((rv = f->C_OpenSession(slots[i], CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL,
	                           &s)) != CKR_OK ||
	    (rv = f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin))) != CKR_OK) {
		printf("rv=0x%lx\n", (unsigned long)rv);
		return 2;
	}
	{
		CK_ATTRIBUTE pubt[] = {
		        {CKA_EC_PARAMS, p256, sizeof(p256)},
		        {CKA_TOKEN, &yes, sizeof(yes)},
		        {CKA_VERIFY, &yes, sizeof(yes)},
		        {CKA_LABEL, (void *)label, strlen(label)},
		};
		CK_ATTRIBUTE privt[] = {
		        {CKA_TOKEN, &yes, sizeof(yes)},
		        {CKA_PRIVATE, &yes, sizeof(yes)},
		        {CKA_SIGN, &yes, sizeof(yes)},
		        {CKA_EXTRACTABLE, &extractable, sizeof(extractable)},
		        {CKA_LABEL, (void *)label, strlen(label)},
		};

		rv = f->C_GenerateKeyPair(s, &mech, pubt, 4, privt, 5, &pub, &priv);
	}
	printf("rv=0x%lx\n", (unsigned long)rv);
	f->C_Logout(s);
	f->C_CloseSession(s);
	f->C_Finalize(NULL);
	return 0;
}
