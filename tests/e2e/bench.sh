#!/usr/bin/env bash
# End-to-end check that hsmgate-bench works (issue 6) — not a timed assertion: it only checks
# that the tool loads a module, verifies and runs an operation for one second, prints a result
# line and exits 0, against our module through a real hsmgated and against SoftHSMv2
# in-process; and that its in-process audit operations (issue 5) write, verify and clean up a
# log. What the numbers are is docs/BENCHMARKS.md's business (`make bench`).
. "$(dirname "$0")/../lib/e2e.sh"

BENCH=$BIN/hsmgate-bench
SOFTHSM=/usr/lib/softhsm/libsofthsm2.so
d=$E2E_DIR

[ -x "$BENCH" ] || { fail "hsmgate-bench is built" "$BENCH missing"; exit 1; }
expect_output "--help lists the operations" 'rsa2048-oaep-decrypt' "$BENCH" --help
out=$("$BENCH" --module "$MODULE" --op nosuch --slot 1 2>&1)
rc=$?
[ $rc = 2 ] && grep -q "unknown operation 'nosuch'" <<<"$out" && pass "an unknown operation is a usage error (exit 2)" ||
	fail "an unknown operation is a usage error (exit 2)" "exit $rc" "$out"

# The in-process audit operations (issue 5) need no module: they write and verify a log in
# a temporary directory under --audit-dir, removed afterwards.
mkdir -p "$d/audit-bench"
out=$("$BENCH" --op audit-append --threads 2 --inflight 64 --duration 0.5 --warmup 0.1 \
	--audit-dir "$d/audit-bench" 2>&1)
rc=$?
if [ $rc = 0 ] && grep -Eq '^audit-append +2 +64 +[1-9][0-9]* +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9.]+ .*checked by verify' <<<"$out"; then
	pass "audit-append: appends, verifies the log and prints a result line"
else
	fail "audit-append: appends, verifies the log and prints a result line" "exit $rc" "$out"
fi
out=$("$BENCH" --op audit-verify --audit-events 2000 --duration 0.3 --warmup 0 --format json \
	--audit-dir "$d/audit-bench" 2>&1)
rc=$?
if [ $rc = 0 ] && grep -q '"module":null' <<<"$out" && grep -Eq '"op":"audit-verify","status":"ok","calls":[1-9][0-9]*' <<<"$out" &&
	grep -q '"note":"2005 records per pass' <<<"$out"; then
	# 2000 events + the start record + checkpoints at open, after 1000 and 2000 events, at close
	pass "audit-verify: verifies a log of 2000 events (2005 records) and reports JSON"
else
	fail "audit-verify: verifies a log of 2000 events (2005 records) and reports JSON" "exit $rc" "$out"
fi
left=$(ls -A "$d/audit-bench")
[ -z "$left" ] && pass "audit operations remove their temporary log" ||
	fail "audit operations remove their temporary log" "left behind: $left"
out=$("$BENCH" --op audit-append --audit-dir "$d/no/such/dir" --duration 0.2 --warmup 0 2>&1)
rc=$?
[ $rc = 1 ] && grep -q 'failed (cannot create a temporary directory in' <<<"$out" &&
	pass "audit-append: an unusable --audit-dir is a failure (exit 1)" ||
	fail "audit-append: an unusable --audit-dir is a failure (exit 1)" "exit $rc" "$out"
out=$("$BENCH" --op audit-append,random32 2>&1)
rc=$?
[ $rc = 2 ] && grep -q 'for PKCS #11 operations --module' <<<"$out" &&
	pass "a PKCS #11 operation beside an audit one still needs --module (exit 2)" ||
	fail "a PKCS #11 operation beside an audit one still needs --module (exit 2)" "exit $rc" "$out"
out=$("$BENCH" --op audit-append --threads 2 --inflight 40000 2>&1)
rc=$?
[ $rc = 2 ] && grep -q 'at most 65536 for audit-append' <<<"$out" &&
	pass "audit-append: more records in flight than the log queues is a usage error" ||
	fail "audit-append: more records in flight than the log queues is a usage error" "exit $rc" "$out"
out=$("$BENCH" --op audit-verify --audit-events 0 2>&1)
rc=$?
[ $rc = 2 ] && pass "audit-verify: --audit-events 0 is a usage error" ||
	fail "audit-verify: --audit-events 0 is a usage error" "exit $rc" "$out"

e2e_setup || { fail setup "e2e_setup failed"; exit 1; }
e2e_start || { fail start "hsmgated did not start"; exit 1; }

# bench_ok NAME REGEX CMD... — PASS when CMD exits 0 and prints a line matching REGEX.
bench_ok() {
	local name=$1 re=$2 out rc
	shift 2
	out=$("$@" 2>&1)
	rc=$?
	if [ $rc = 0 ] && grep -Eq -- "$re" <<<"$out"; then
		pass "$name"
	else
		fail "$name" "exit $rc, command: $*" "$(tail -n 15 <<<"$out")"
	fi
}

# a result line: op, threads, in flight, calls > 0, ops/s, p50, p99, p99.9
row='^%s +1 +1 +[1-9][0-9]* +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9.]+'
for op in random32 digest-sha256-4k; do
	bench_ok "hsmgate module: $op for 1 s prints a result line" "$(printf "$row" $op)" \
		env HSMGATE_CONF="$d/alice.yaml" "$BENCH" --module "$MODULE" --token a1 --pin-file "$d/user-pin" \
		--op $op --duration 1 --warmup 0.1 --server-pid "$E2E_PID"
done
# the server processes (hsmgated and its partition workers) are found and measured
bench_ok "hsmgate module: --server-pid reports hsmgated and its workers" 'hsmgated\[[0-9]+\]=[1-9][0-9]*KiB.*hsmgate-worker' \
	env HSMGATE_CONF="$d/alice.yaml" "$BENCH" --module "$MODULE" --token a1 --op random32 --duration 0.3 \
	--warmup 0 --server-pid "$E2E_PID"
bench_ok "hsmgate module: --format json" '"status":"ok","calls":[1-9]' \
	env HSMGATE_CONF="$d/alice.yaml" "$BENCH" --module "$MODULE" --token a1 --op random32 --duration 0.3 \
	--warmup 0 --threads 2 --inflight 2 --format json

# an operation the module lacks is reported, not timed, and is not a failure
out=$(HSMGATE_CONF="$d/alice.yaml" "$BENCH" --module "$MODULE" --token a1 --pin-file "$d/user-pin" \
	--op aes256-gcm-encrypt-4k --duration 0.3 --warmup 0 2>&1)
rc=$?
if [ $rc = 0 ] && grep -Eq '^aes256-gcm-encrypt-4k +1 +1 +(unsupported \(CKR_|[1-9])' <<<"$out"; then
	pass "hsmgate module: an operation is either measured or reported unsupported (CKR_...)"
else
	fail "hsmgate module: an operation is either measured or reported unsupported (CKR_...)" "exit $rc" "$out"
fi

if [ -f "$SOFTHSM" ] && command -v softhsm2-util >/dev/null; then
	mkdir -p "$d/softhsm/tokens"
	printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' \
		"$d/softhsm/tokens" >"$d/softhsm/softhsm2.conf"
	export SOFTHSM2_CONF=$d/softhsm/softhsm2.conf
	softhsm2-util --init-token --free --label bench --pin 1234-user --so-pin 5678-so-pin >/dev/null
	for op in random32 digest-sha256-4k; do
		bench_ok "SoftHSMv2 in-process: $op for 1 s prints a result line" "$(printf "$row" $op)" \
			"$BENCH" --module "$SOFTHSM" --token bench --op $op --duration 1 --warmup 0.1
	done
	# a signature verified with OpenSSL before timing
	bench_ok "SoftHSMv2 in-process: ecdsa-p256-sign verifies and runs" "$(printf "$row" ecdsa-p256-sign)" \
		"$BENCH" --module "$SOFTHSM" --token bench --pin-file "$d/user-pin" --op ecdsa-p256-sign \
		--duration 0.3 --warmup 0
else
	fail "SoftHSMv2 is installed" "$SOFTHSM or softhsm2-util missing"
fi
exit 0
