#!/usr/bin/env bash
# End-to-end: hsmgated writes one audit event per request into its hash-chained log
# (docs/AUDIT.md), with durability sync: a reply leaves only once its event is on disk. The
# log verifies with hsmgate-audit, holds no secret, names the record a flipped byte broke,
# and survives a kill -9 of the gateway under load with every answered call in it.
. "$(dirname "$0")/../lib/e2e.sh"

d=$E2E_DIR
E2E_AUDIT='audit:
  dir: audit
  signing_key: audit-signing.key
  durability: sync'
AUDIT=$BIN/hsmgate-audit

e2e_setup || { fail setup "e2e_setup failed"; exit 1; }
e2e_start || { fail start "hsmgated did not start"; exit 1; }

# The JSON of every event record (type E), one per line.
events() { cat "$d"/audit/seg-*.log | awk -F'\t' '$1 ~ / E$/ { print $2 }'; }
# Request events of principal $1 (not the gateway's own events), all outcomes.
requests_of() { events | grep -F "\"initiator\":{\"id\":\"$1\""; }
verify() { "$AUDIT" verify --log "$1" --pubkey "$d/audit-signing.pub"; }
random_ok() { # CONF — 16 random bytes come back through slot 1
	local n
	n=$(p11 "$1" --slot 1 --generate-random 16 2>/dev/null | wc -c)
	[ "$n" = 16 ]
}

# --- the signing key is generated on first start, the .pub beside it ------------------------
[ -s "$d/audit-signing.key" ] && [ -s "$d/audit-signing.pub" ] &&
	pass "audit: signing key generated (audit-signing.key/.pub)" ||
	fail "audit: signing key generated (audit-signing.key/.pub)" "$(ls "$d")"
grep -q "generated a new audit signing key.*public_key=$d/audit-signing.pub" "$d/hsmgated.log" &&
	pass "audit: the log says where the public key is" ||
	fail "audit: the log says where the public key is" "$(grep audit "$d/hsmgated.log" | head -3)"

# --- one event per call: count pkcs11-tool's calls with pkcs11-spy --------------------------
SPY=/usr/lib/x86_64-linux-gnu/pkcs11/pkcs11-spy.so
# The calls of one pkcs11-tool run that travel to the gateway (the module answers
# C_Initialize, C_Finalize, C_GetInfo and C_GetFunctionList itself).
spy_calls() {
	local conf=$1
	shift
	rm -f "$d/spy.out"
	HSMGATE_CONF=$d/$conf.yaml PKCS11SPY=$MODULE PKCS11SPY_OUTPUT=$d/spy.out \
		ext pkcs11-tool --module "$SPY" "$@" >/dev/null 2>&1
	grep -E '^[0-9]+: C_' "$d/spy.out" |
		grep -vcE ': C_(Initialize|Finalize|GetInfo|GetFunctionList|GetInterface)$'
}
one_event_per_call() { # NAME CONF ARGS... — new request events == calls made
	local name=$1 conf=$2 before after calls who
	shift 2
	who=tenant/acme/user/alice
	[ "$conf" = bob ] && who=tenant/globex/user/bob
	before=$(requests_of $who | grep -vc '"outcome":"pending"')
	calls=$(spy_calls "$conf" "$@")
	after=$(requests_of $who | grep -vc '"outcome":"pending"')
	[ "$calls" -gt 0 ] && [ $((after - before)) = "$calls" ] && pass "$name: $calls calls, $calls events" ||
		fail "$name: one event per call" "calls=$calls events=$((after - before))"
}
one_event_per_call "audit: -L" alice -L
one_event_per_call "audit: --generate-random" alice --slot 1 --generate-random 16
head -c 3000 /dev/urandom >"$d/data.bin"
one_event_per_call "audit: --hash" alice --slot 1 --hash -m SHA256 -i "$d/data.bin"
printf 'audited object' >"$d/obj.bin"
one_event_per_call "audit: --login --write-object" alice --slot 1 --login --pin 1234-user \
	--write-object "$d/obj.bin" --type data --label audited-obj
one_event_per_call "audit: wrong PIN" alice --slot 1 --login --pin 0000 -O
one_event_per_call "audit: another tenant's slot" bob --slot 1 --generate-random 8

# --- the right action and outcome -------------------------------------------------------------
ev=$(requests_of tenant/acme/user/alice | grep '"action":"hsmgate.random.generate"' | tail -1)
grep -q '"outcome":"success"' <<<"$ev" && grep -q '"ckrv":"CKR_OK"' <<<"$ev" &&
	grep -q '"target":{"id":"crn:hsmgate:acme:partition:a1"' <<<"$ev" &&
	grep -q '"credential":{"type":"certificate"}' <<<"$ev" &&
	grep -Eq '"correlationId":"[^"]*c[0-9]+-r[0-9]+"' <<<"$ev" && grep -q '"latencyUs":' <<<"$ev" &&
	pass "audit: C_GenerateRandom event: action, outcome, target, credential, correlation" ||
	fail "audit: C_GenerateRandom event: action, outcome, target, credential, correlation" "$ev"
ev=$(requests_of tenant/acme/user/alice | grep '"action":"hsmgate.session.login"' | tail -1)
grep -q '"outcome":"failure"' <<<"$ev" && grep -q 'CKR_PIN_INCORRECT' <<<"$ev" &&
	pass "audit: a wrong PIN is a failed hsmgate.session.login" ||
	fail "audit: a wrong PIN is a failed hsmgate.session.login" "$ev"
requests_of tenant/acme/user/alice | grep '"action":"hsmgate.keys.import"' | grep -q '"outcome":"pending"' &&
	pass "audit: C_CreateObject wrote a pending event first" ||
	fail "audit: C_CreateObject wrote a pending event first"
ev=$(requests_of tenant/globex/user/bob | tail -1)
grep -q 'CKR_SLOT_ID_INVALID' <<<"$ev" && grep -q '"outcome":"failure"' <<<"$ev" &&
	pass "audit: a refused slot is a failure event" || fail "audit: a refused slot is a failure event" "$ev"
p11 wrong-key -L >/dev/null 2>&1
sleep 0.3
events | grep '"action":"hsmgate.session.connect"' | grep -q '"outcome":"failure"' &&
	pass "audit: an authentication failure has its event" ||
	fail "audit: an authentication failure has its event"
events | grep -q '"action":"hsmgate.partition-worker.start"' && events | grep -q '"action":"hsmgate.gateway.start"' &&
	pass "audit: gateway and worker start events" || fail "audit: gateway and worker start events"

# --- clean stop, then verify; no secret anywhere ------------------------------------------------
e2e_stop
events | grep -q '"action":"hsmgate.gateway.stop"' && pass "audit: gateway stop event" ||
	fail "audit: gateway stop event"
expect_output "audit: hsmgate-audit verify passes" '^OK ' verify "$d/audit"
secrets=(1234-user 5678-so-pin 0000 "$(cat "$d/acme.api-key")" "$(cat "$d/globex.api-key")" "$(cat "$d/wrong.api-key")")
leak=
for sec in "${secrets[@]}"; do
	[ "$sec" = 0000 ] && continue # too short to grep for meaningfully
	grep -rqF -- "$sec" "$d/audit" && leak="$leak $sec"
done
[ -z "$leak" ] && pass "audit: no PIN or API key in the log" || fail "audit: no PIN or API key in the log" "found:$leak"

# --- a flipped byte: verify names the record ----------------------------------------------------
rm -rf "$d/audit-copy"
cp -r "$d/audit" "$d/audit-copy"
seg=$(ls "$d"/audit-copy/seg-*.log | head -1)
line=$(grep -n '"action":"hsmgate.random.generate"' "$seg" | head -1 | cut -d: -f1)
seq=$(sed -n "${line}p" "$seg" | cut -d' ' -f2)
# "random" → "randoM" in that record's JSON: one byte.
sed -i "${line}s/hsmgate\.random\.generate/hsmgate.randoM.generate/" "$seg"
cmp -l "$d/audit/$(basename "$seg")" "$seg" | wc -l | grep -qx 1 && pass "audit: exactly one byte flipped" ||
	fail "audit: exactly one byte flipped"
expect_output "audit: verify fails naming seq=$seq" "FAIL seq=$seq kind=modified" verify "$d/audit-copy"
verify "$d/audit-copy" >/dev/null 2>&1
[ $? = 1 ] && pass "audit: verify exits 1 on damage" || fail "audit: verify exits 1 on damage"

# --- fail closed: a log that cannot be synced refuses requests, then resumes ----------------------
# A preloaded shim makes the syncs of the audit segments fail with EIO while the file
# $d/fail-sync exists (the disk-full / I/O-error case, without needing root): fdatasync(2),
# and pwritev2(2) with RWF_DSYNC, which is how sync mode writes a batch with direct I/O.
cat >"$d/failsync.c" <<'C'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>
static int
failing(int fd)
{
	const char *trigger = getenv("HSMGATE_TEST_FAIL_SYNC");
	char link[64], path[4096];
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	if (trigger != NULL && access(trigger, F_OK) == 0 &&
	    (n = readlink(link, path, sizeof(path) - 1)) > 0) {
		path[n] = '\0';
		return strstr(path, "/audit/seg-") != NULL;
	}
	return 0;
}
int fdatasync(int fd)
{
	static int (*real)(int);

	if (real == NULL) {
		real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
	}
	if (failing(fd)) {
		errno = EIO;
		return -1;
	}
	return real(fd);
}
ssize_t pwritev2(int fd, const struct iovec *iov, int n, off_t at, int flags)
{
	static ssize_t (*real)(int, const struct iovec *, int, off_t, int);

	if (real == NULL) {
		real = (ssize_t(*)(int, const struct iovec *, int, off_t, int))dlsym(RTLD_NEXT,
		                                                                      "pwritev2");
	}
	if ((flags & RWF_DSYNC) && failing(fd)) {
		errno = EIO;
		return -1;
	}
	return real(fd, iov, n, at, flags);
}
C
spy_rv() { # CONF ARGS... — pkcs11-tool through pkcs11-spy, the CK_RVs it saw
	local conf=$1
	shift
	rm -f "$d/spy.out"
	HSMGATE_CONF=$d/$conf.yaml PKCS11SPY=$MODULE PKCS11SPY_OUTPUT=$d/spy.out \
		ext pkcs11-tool --module "$SPY" "$@" >/dev/null 2>&1
	grep -E '^Returned:' "$d/spy.out"
}
if cc -shared -fPIC -o "$d/failsync.so" "$d/failsync.c" -ldl 2>"$d/failsync.err"; then
	preload=$d/failsync.so
	[ -n "${E2E_PRELOAD:-}" ] && preload=$E2E_PRELOAD:$preload
	HSMGATE_TEST_FAIL_SYNC=$d/fail-sync LD_PRELOAD=$preload \
		ASAN_OPTIONS=${ASAN_OPTIONS:-}:verify_asan_link_order=0 e2e_start ||
		{ fail "fail closed: start" "hsmgated did not start"; exit 1; }
	check "fail closed: calls work while the log syncs" random_ok alice
	touch "$d/fail-sync"
	expect_output "fail closed: a failed sync refuses calls with CKR_DEVICE_ERROR (0x30)" \
		'Returned: +48 CKR_DEVICE_ERROR' spy_rv alice --slot 1 --generate-random 16
	expect_output "fail closed: still refused while the log cannot be written" \
		'Returned: +48 CKR_DEVICE_ERROR' spy_rv alice -L
	grep -q 'level=error component=audit msg="ALERT: audit log cannot be written' "$d/hsmgated.log" &&
		pass "fail closed: operator alert in the log" ||
		fail "fail closed: operator alert in the log" "$(grep audit "$d/hsmgated.log" | tail -3)"
	rm -f "$d/fail-sync"
	for i in $(seq 1 100); do grep -q 'audit log writable again' "$d/hsmgated.log" && break; sleep 0.1; done
	check "fail closed: serving again once the log is writable" random_ok alice
	e2e_stop
	expect_output "fail closed: the log verifies after the failure" '^OK ' verify "$d/audit"
else
	fail "fail closed: build the fdatasync shim" "$(cat "$d/failsync.err")"
fi

# --- kill -9 under load: every answered call has its event; the log verifies after restart ------
e2e_start || { fail restart "hsmgated did not restart"; exit 1; }
before=$(requests_of tenant/acme/user/alice | grep -c '"outcome":"success"')
env HSMGATE_CONF="$d/alice.yaml" "$STRESS" --module "$MODULE" --token a1 --pin-file "$d/user-pin" \
	--threads 8 --calls 3000 --rsa >"$d/stress-kill.log" 2>&1 &
spid=$!
sleep 1
kill -0 $spid 2>/dev/null && pass "kill -9: the stress tool is running when hsmgated is killed" ||
	fail "kill -9: the stress tool is running when hsmgated is killed" "$(tail -n 5 "$d/stress-kill.log")"
kill -KILL "$E2E_PID"
wait "$E2E_PID" 2>/dev/null
E2E_PID=
# The stress tool's calls now fail (the gateway is gone); it ends with its counter.
for i in $(seq 1 1800); do kill -0 $spid 2>/dev/null || break; sleep 0.1; done
kill -KILL $spid 2>/dev/null
wait $spid 2>/dev/null
ok=$(sed -nE 's/^CALLS ok=([0-9]+)$/\1/p' "$d/stress-kill.log")
[ -n "$ok" ] && [ "$ok" -gt 0 ] && pass "kill -9: the stress tool got $ok answered calls" ||
	fail "kill -9: the stress tool reports its answered calls" "$(tail -n 5 "$d/stress-kill.log")"
# The workers notice the gateway is gone and exit; the restart repairs the log's tail.
for i in $(seq 1 50); do [ -z "$(worker_pid a1)" ] && break; sleep 0.1; done
e2e_start || { fail restart "hsmgated did not restart after kill -9"; exit 1; }
e2e_stop
expect_output "kill -9: the log verifies after restart" '^OK ' verify "$d/audit"
after=$(requests_of tenant/acme/user/alice | grep -c '"outcome":"success"')
[ -n "$ok" ] && [ $((after - before)) -ge "$ok" ] &&
	pass "kill -9: every answered call has its event ($((after - before)) events >= $ok calls)" ||
	fail "kill -9: every answered call has its event" "events=$((after - before)) calls=${ok:-?}"
n_start=$(events | grep -c '"action":"hsmgate.gateway.start"')
[ "$n_start" -ge 3 ] && pass "kill -9: the log continues across restarts ($n_start starts)" ||
	fail "kill -9: the log continues across restarts" "starts=$n_start"
if awk -F'\t' '$1 ~ / R$/' "$d"/audit/seg-*.log | grep -q 'hsmgate.audit.repair'; then
	echo "  (the kill tore the last line: a repair record was written)"
fi

# --- durability async: replies at once, every call still recorded; busy polling -------------------
# With async the gateway's loop polls for a worker's reply while one call is out, and the
# client module polls for the reply of a caller alone on its connection (busy_poll_us,
# docs/PERFORMANCE.md): one thread drives both, eight threads the ordinary paths.
sed -i 's/^  durability: sync$/  durability: async/' "$d/hsmgated.yaml"
e2e_start || { fail "async: start" "hsmgated did not start with durability async"; exit 1; }
grep -q 'msg="listening".*busy_poll_us=100' "$d/hsmgated.log" &&
	pass "async: the gateway polls for worker replies (busy_poll_us=100)" ||
	fail "async: the gateway polls for worker replies" "$(grep 'msg="listening"' "$d/hsmgated.log" | tail -1)"
before=$(requests_of tenant/acme/user/alice | grep -c '"outcome":"success"')
total=0
for t in 1 8; do
	env HSMGATE_CONF="$d/alice.yaml" "$STRESS" --module "$MODULE" --token a1 --pin-file "$d/user-pin" \
		--threads $t --calls $((2400 / t)) --rsa >"$d/stress-async-$t.log" 2>&1
	rc=$?
	ok=$(sed -nE 's/^CALLS ok=([0-9]+)$/\1/p' "$d/stress-async-$t.log")
	[ $rc = 0 ] && [ -n "$ok" ] && pass "async: $t thread(s) x $((2400 / t)) mixed calls, results checked" ||
		fail "async: $t thread(s) x $((2400 / t)) mixed calls" "rc=$rc $(grep -m3 FAIL "$d/stress-async-$t.log")"
	total=$((total + ${ok:-0}))
done
e2e_stop
expect_output "async: the log verifies" '^OK ' verify "$d/audit"
after=$(requests_of tenant/acme/user/alice | grep -c '"outcome":"success"')
[ $((after - before)) -ge "$total" ] && [ "$total" -gt 0 ] &&
	pass "async: every answered call has its event ($((after - before)) events >= $total calls)" ||
	fail "async: every answered call has its event" "events=$((after - before)) calls=$total"
exit 0
