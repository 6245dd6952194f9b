#!/usr/bin/env bash
# End-to-end check that hsmgate-bench works (issue 6) — not a timed assertion: it only checks
# that the tool loads a module, verifies and runs an operation for one second, prints a result
# line and exits 0, against our module through a real hsmgated and against SoftHSMv2
# in-process. What the numbers are is docs/BENCHMARKS.md's business (`make bench`).
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
