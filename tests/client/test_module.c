/*
 * tests/client/test_module.c — client/module.c: the function list, C_Initialize's argument
 * and configuration checks (each refusal with its documented CK_RV and stderr line),
 * C_Finalize, C_GetInfo, and fork safety.
 */
#include "tests/client/fakegw.h"
#include "proto/proto.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <openssl/sha.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "tests/lib/test.h"

#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <sys/wait.h>

static struct fakegw_suite fs;

static int
suite_init(void)
{
	return fakegw_suite_init(&fs, "cli-module");
}

static int
suite_cleanup(void)
{
	return fakegw_suite_fini(&fs);
}

/* C_Initialize with a configuration file holding `yaml`; stderr captured. */
static int
count_lines(const char *s)
{
	int n = 0;

	for (; *s != '\0'; s++) {
		n += *s == '\n';
	}
	return n;
}

static CK_RV
init_with_text(const char *yaml, const char **err)
{
	CK_RV rv;

	(void)C_Finalize(NULL);
	CU_ASSERT_EQUAL_FATAL(test_file_write(fs.conf, yaml, strlen(yaml)), 0);
	setenv("HSMGATE_CONF", fs.conf, 1);
	stderr_capture_begin(fs.errfile);
	rv = C_Initialize(NULL);
	*err = stderr_capture_end();
	return rv;
}

static CK_RV
init_fake(const char *extra, const char **err)
{
	CK_RV rv;

	(void)C_Finalize(NULL);
	CU_ASSERT_EQUAL_FATAL(fakegw_write_conf(fs.gw, fs.conf, extra), 0);
	setenv("HSMGATE_CONF", fs.conf, 1);
	stderr_capture_begin(fs.errfile);
	rv = C_Initialize(NULL);
	*err = stderr_capture_end();
	return rv;
}

static void
test_function_list(void)
{
	CK_FUNCTION_LIST_PTR fl = NULL;
	void (**fp)(void);
	size_t i, n;

	CU_ASSERT_EQUAL(C_GetFunctionList(NULL), CKR_ARGUMENTS_BAD);
	CU_ASSERT_EQUAL(C_GetFunctionList(&fl), CKR_OK);
	CU_ASSERT_PTR_NOT_NULL_FATAL(fl);
	CU_ASSERT_EQUAL(fl->version.major, 2);
	CU_ASSERT_EQUAL(fl->version.minor, 40);
	/* Every one of the 68 v2.40 entry points is there. */
	n = (sizeof(*fl) - offsetof(CK_FUNCTION_LIST, C_Initialize)) / sizeof(void (*)(void));
	CU_ASSERT_EQUAL(n, 68);
	fp = (void (**)(void))(void *)&fl->C_Initialize;
	for (i = 0; i < n; i++) {
		CU_ASSERT_PTR_NOT_NULL(fp[i]);
	}
	CU_ASSERT_PTR_EQUAL(fl->C_Initialize, C_Initialize);
	CU_ASSERT_PTR_EQUAL(fl->C_WaitForSlotEvent, C_WaitForSlotEvent);
}

static void
test_not_initialized(void)
{
	CK_INFO info;
	CK_ULONG n = 0;
	CK_SESSION_HANDLE h;
	CK_BYTE buf[4];

	(void)C_Finalize(NULL);
	CU_ASSERT_EQUAL(C_Finalize(NULL), CKR_CRYPTOKI_NOT_INITIALIZED);
	CU_ASSERT_EQUAL(C_GetInfo(&info), CKR_CRYPTOKI_NOT_INITIALIZED);
	CU_ASSERT_EQUAL(C_GetSlotList(CK_FALSE, NULL, &n), CKR_CRYPTOKI_NOT_INITIALIZED);
	CU_ASSERT_EQUAL(C_OpenSession(1, CKF_SERIAL_SESSION, NULL, NULL, &h),
	                CKR_CRYPTOKI_NOT_INITIALIZED);
	CU_ASSERT_EQUAL(C_GenerateRandom(1, buf, sizeof(buf)), CKR_CRYPTOKI_NOT_INITIALIZED);
	CU_ASSERT_EQUAL(C_CloseSession(1), CKR_CRYPTOKI_NOT_INITIALIZED);
}

static CK_RV
mutex_create(CK_VOID_PTR_PTR m)
{
	*m = NULL;
	return CKR_OK;
}

static CK_RV
mutex_op(CK_VOID_PTR m)
{
	(void)m;
	return CKR_OK;
}

static void
test_init_args(void)
{
	CK_C_INITIALIZE_ARGS a;
	int dummy;

	(void)C_Finalize(NULL);
	memset(&a, 0, sizeof(a));
	a.pReserved = &dummy;
	CU_ASSERT_EQUAL(C_Initialize(&a), CKR_ARGUMENTS_BAD);

	/* Some callbacks but not all four. */
	memset(&a, 0, sizeof(a));
	a.CreateMutex = mutex_create;
	CU_ASSERT_EQUAL(C_Initialize(&a), CKR_ARGUMENTS_BAD);

	/* All four without CKF_OS_LOCKING_OK: we cannot use them (documented choice). */
	a.DestroyMutex = mutex_op;
	a.LockMutex = mutex_op;
	a.UnlockMutex = mutex_op;
	CU_ASSERT_EQUAL(C_Initialize(&a), CKR_CANT_LOCK);
	CU_ASSERT_EQUAL(C_Finalize(NULL), CKR_CRYPTOKI_NOT_INITIALIZED);
}

static void
test_init_no_conf(void)
{
	const char *err;
	CK_RV rv;

	(void)C_Finalize(NULL);
	unsetenv("HSMGATE_CONF");
	stderr_capture_begin(fs.errfile);
	rv = C_Initialize(NULL);
	err = stderr_capture_end();
	CU_ASSERT_EQUAL(rv, CKR_GENERAL_ERROR);
	CU_ASSERT_EQUAL(strncmp(err, "hsmgate: HSMGATE_CONF is not set", 32), 0);
	CU_ASSERT_EQUAL(count_lines(err), 1);

	setenv("HSMGATE_CONF", "", 1);
	stderr_capture_begin(fs.errfile);
	CU_ASSERT_EQUAL(C_Initialize(NULL), CKR_GENERAL_ERROR);
	err = stderr_capture_end();
	CU_ASSERT_EQUAL(strncmp(err, "hsmgate: ", 9), 0);
	CU_ASSERT_EQUAL(C_Finalize(NULL), CKR_CRYPTOKI_NOT_INITIALIZED);
}

static void
test_init_missing_file(void)
{
	char path[PATH_MAX + 32];
	const char *err;
	CK_RV rv;

	(void)C_Finalize(NULL);
	snprintf(path, sizeof(path), "%s/does-not-exist.yaml", fs.tmp);
	setenv("HSMGATE_CONF", path, 1);
	stderr_capture_begin(fs.errfile);
	rv = C_Initialize(NULL);
	err = stderr_capture_end();
	CU_ASSERT_EQUAL(rv, CKR_GENERAL_ERROR);
	CU_ASSERT_EQUAL(strncmp(err, "hsmgate: ", 9), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, path));
	CU_ASSERT_EQUAL(C_Finalize(NULL), CKR_CRYPTOKI_NOT_INITIALIZED);
}

static void
test_init_broken_yaml(void)
{
	const char *err;

	CU_ASSERT_EQUAL(init_with_text("gateway: [127.0.0.1\nca: {\n", &err), CKR_GENERAL_ERROR);
	CU_ASSERT_EQUAL(strncmp(err, "hsmgate: ", 9), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, fs.conf));

	/* Of YAML, but not of the schema. */
	CU_ASSERT_EQUAL(init_with_text("gateway: 127.0.0.1:1\nca: x.pem\nprot: 1\n", &err),
	                CKR_GENERAL_ERROR);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, fs.conf));
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "prot"));

	/* No credential. */
	CU_ASSERT_EQUAL(init_with_text("gateway: 127.0.0.1:1\nca: x.pem\n", &err),
	                CKR_GENERAL_ERROR);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, fs.conf));
	CU_ASSERT_EQUAL(C_Finalize(NULL), CKR_CRYPTOKI_NOT_INITIALIZED);
}

static void
test_init_bad_ca(void)
{
	char yaml[PATH_MAX * 2];
	const char *err;

	snprintf(yaml, sizeof(yaml), "gateway: 127.0.0.1:%u\nca: %s/nope.pem\napi_key: k\n",
	         (unsigned)fakegw_port(fs.gw), fs.tmp);
	CU_ASSERT_EQUAL(init_with_text(yaml, &err), CKR_GENERAL_ERROR);
	CU_ASSERT_EQUAL(strncmp(err, "hsmgate: ", 9), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "nope.pem"));
	CU_ASSERT_EQUAL(C_Finalize(NULL), CKR_CRYPTOKI_NOT_INITIALIZED);
}

/* A loopback port nothing listens on: bind, read the port, close. */
static unsigned
closed_port(void)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	unsigned port = 0;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sa, &sl) == 0) {
		port = ntohs(sa.sin_port);
	}
	if (fd >= 0) {
		close(fd);
	}
	return port;
}

static void
test_init_unreachable(void)
{
	char yaml[PATH_MAX * 2], needle[64];
	const char *err;
	unsigned port = closed_port();

	CU_ASSERT_NOT_EQUAL_FATAL(port, 0);
	snprintf(yaml, sizeof(yaml), "gateway: 127.0.0.1:%u\nca: %s\napi_key: k\n", port,
	         fakegw_ca(fs.gw));
	CU_ASSERT_EQUAL(init_with_text(yaml, &err), CKR_DEVICE_ERROR);
	snprintf(needle, sizeof(needle), "hsmgate: cannot connect to gateway 127.0.0.1:%u", port);
	CU_ASSERT_EQUAL(strncmp(err, needle, strlen(needle)), 0);
	CU_ASSERT_EQUAL(C_Finalize(NULL), CKR_CRYPTOKI_NOT_INITIALIZED);
}

static void
test_init_auth_refused(void)
{
	char needle[96];
	const char *err;

	snprintf(needle, sizeof(needle), "hsmgate: gateway 127.0.0.1:%u refused authentication: ",
	         (unsigned)fakegw_port(fs.gw));
	fakegw_set_auth_fail(fs.gw, 1);
	CU_ASSERT_EQUAL(init_fake(NULL, &err), CKR_FUNCTION_FAILED);
	fakegw_set_auth_fail(fs.gw, 0);
	CU_ASSERT_EQUAL(strncmp(err, needle, strlen(needle)), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "unknown API key"));
	CU_ASSERT_EQUAL(C_Finalize(NULL), CKR_CRYPTOKI_NOT_INITIALIZED);
}

static void
test_init_wrong_api_key(void)
{
	char yaml[PATH_MAX * 2];
	const char *err;

	snprintf(yaml, sizeof(yaml), "gateway: 127.0.0.1:%u\nca: %s\napi_key: hsk_wrong\n",
	         (unsigned)fakegw_port(fs.gw), fakegw_ca(fs.gw));
	CU_ASSERT_EQUAL(init_with_text(yaml, &err), CKR_FUNCTION_FAILED);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "refused authentication"));
	/* Never echo the key. */
	CU_ASSERT_PTR_NULL(strstr(err, "hsk_wrong"));
	CU_ASSERT_EQUAL(C_Finalize(NULL), CKR_CRYPTOKI_NOT_INITIALIZED);
}

static void
test_init_wrong_server_name(void)
{
	const char *err;

	CU_ASSERT_EQUAL(init_fake("server_name: other.example\n", &err), CKR_FUNCTION_FAILED);
	CU_ASSERT_EQUAL(strncmp(err, "hsmgate: cannot verify gateway", 30), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "other.example"));
	/* The DNS name in the certificate works. */
	CU_ASSERT_EQUAL(init_fake("server_name: localhost\n", &err), CKR_OK);
	CU_ASSERT_EQUAL(C_Finalize(NULL), CKR_OK);
}

static void
test_init_finalize(void)
{
	CK_C_INITIALIZE_ARGS a;
	CK_INFO info;
	const char *err;
	int dummy;

	CU_ASSERT_EQUAL_FATAL(init_fake(NULL, &err), CKR_OK);
	CU_ASSERT_EQUAL(err[0], '\0');
	CU_ASSERT_EQUAL(C_Initialize(NULL), CKR_CRYPTOKI_ALREADY_INITIALIZED);

	CU_ASSERT_EQUAL(C_GetInfo(NULL), CKR_ARGUMENTS_BAD);
	CU_ASSERT_EQUAL(C_GetInfo(&info), CKR_OK);
	CU_ASSERT_EQUAL(info.cryptokiVersion.major, 2);
	CU_ASSERT_EQUAL(info.cryptokiVersion.minor, 40);
	CU_ASSERT_EQUAL(memcmp(info.manufacturerID, "hsmgate ", 8), 0);
	CU_ASSERT_EQUAL(info.manufacturerID[31], ' ');
	CU_ASSERT_EQUAL(memcmp(info.libraryDescription, "hsmgate remote PKCS #11 ", 24), 0);
	CU_ASSERT_EQUAL(info.flags, 0);

	CU_ASSERT_EQUAL(C_Finalize(&dummy), CKR_ARGUMENTS_BAD);
	CU_ASSERT_EQUAL(C_Finalize(NULL), CKR_OK);
	CU_ASSERT_EQUAL(C_Finalize(NULL), CKR_CRYPTOKI_NOT_INITIALIZED);
	CU_ASSERT_EQUAL(C_GetInfo(&info), CKR_CRYPTOKI_NOT_INITIALIZED);

	/* Again, with OS locking asked for. */
	memset(&a, 0, sizeof(a));
	a.flags = CKF_OS_LOCKING_OK;
	CU_ASSERT_EQUAL(C_Initialize(&a), CKR_OK);
	CU_ASSERT_EQUAL(C_GetInfo(&info), CKR_OK);
	/* Callbacks with CKF_OS_LOCKING_OK: we may use OS locking. */
	CU_ASSERT_EQUAL(C_Finalize(NULL), CKR_OK);
	a.CreateMutex = mutex_create;
	a.DestroyMutex = mutex_op;
	a.LockMutex = mutex_op;
	a.UnlockMutex = mutex_op;
	CU_ASSERT_EQUAL(C_Initialize(&a), CKR_OK);
	CU_ASSERT_EQUAL(C_Finalize(NULL), CKR_OK);
}

static void
test_fork_child(void)
{
	CK_ULONG n = 0;
	const char *err;
	pid_t pid;
	int status = -1;

	CU_ASSERT_EQUAL_FATAL(init_fake(NULL, &err), CKR_OK);
	CU_ASSERT_EQUAL(C_GetSlotList(CK_FALSE, NULL, &n), CKR_OK);
	pid = fork();
	CU_ASSERT_FATAL(pid >= 0);
	if (pid == 0) {
		/* Child: no CUnit here; the exit code says which step failed. */
		n = 0;
		if (C_GetSlotList(CK_FALSE, NULL, &n) != CKR_CRYPTOKI_NOT_INITIALIZED) {
			_exit(10);
		}
		if (C_Finalize(NULL) != CKR_CRYPTOKI_NOT_INITIALIZED) {
			_exit(11);
		}
		if (C_Initialize(NULL) != CKR_OK) {
			_exit(12);
		}
		if (C_GetSlotList(CK_FALSE, NULL, &n) != CKR_OK || n != 1) {
			_exit(13);
		}
		if (C_Finalize(NULL) != CKR_OK) {
			_exit(14);
		}
		_exit(0);
	}
	CU_ASSERT_EQUAL(waitpid(pid, &status, 0), pid);
	CU_ASSERT(WIFEXITED(status));
	CU_ASSERT_EQUAL(WEXITSTATUS(status), 0);
	/* The parent's connection was not disturbed by the child. */
	n = 0;
	CU_ASSERT_EQUAL(C_GetSlotList(CK_FALSE, NULL, &n), CKR_OK);
	CU_ASSERT_EQUAL(n, 1);
	CU_ASSERT_EQUAL(C_Finalize(NULL), CKR_OK);
}

static const struct test_case cases[] = {
        {"function list", test_function_list},
        {"calls before C_Initialize", test_not_initialized},
        {"C_Initialize arguments", test_init_args},
        {"HSMGATE_CONF unset", test_init_no_conf},
        {"HSMGATE_CONF names a missing file", test_init_missing_file},
        {"broken configuration", test_init_broken_yaml},
        {"unloadable CA bundle", test_init_bad_ca},
        {"unreachable gateway", test_init_unreachable},
        {"authentication refused", test_init_auth_refused},
        {"wrong API key", test_init_wrong_api_key},
        {"gateway certificate name mismatch", test_init_wrong_server_name},
        {"C_Initialize, C_GetInfo, C_Finalize", test_init_finalize},
        {"fork: child needs C_Initialize", test_fork_child},
        {NULL, NULL},
};

void
test_register(void)
{
	test_suite_add("client/module", suite_init, suite_cleanup, cases);
}
