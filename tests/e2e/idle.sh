#!/usr/bin/env bash
# End-to-end: many idle, logged-in connections (issue 6). hsmgated raises its soft descriptor
# limit to the hard one and holds 300 connections, each a process of `hsmgate-bench --op
# idle-conns` with an open, logged-in session, and serves them after they idled (each checks
# its session with C_GetSessionInfo before its release) while ecdsa-p256-sign 2x8 runs beside
# them (16 calls in flight: the in-flight table grows past its first 8 slots). With a hard
# limit too low for limits.max_connections it says so and refuses the connections over what
# fits, cleanly; with one too low for any connection it does not start. No timings are
# checked: the figures are docs/BENCHMARKS.md's business (`make bench`).
. "$(dirname "$0")/../lib/e2e.sh"

BENCH=$BIN/hsmgate-bench
d=$E2E_DIR
[ -x "$BENCH" ] || { fail "hsmgate-bench is built" "$BENCH missing"; exit 1; }

# ---- refusals of the command line ---------------------------------------------------------
# usage_error NAME REGEX ARGS... — exit 2 and a message matching REGEX.
usage_error() {
	local name=$1 re=$2 out rc
	shift 2
	out=$("$BENCH" "$@" 2>&1)
	rc=$?
	if [ $rc = 2 ] && grep -Eq -- "$re" <<<"$out"; then
		pass "$name"
	else
		fail "$name" "exit $rc" "$(head -n 3 <<<"$out")"
	fi
}
usage_error "idle-conns with another --op is a usage error" 'idle-conns runs alone' \
	--module "$MODULE" --slot 1 --pin 1234-user --server-pid $$ --op idle-conns,random32
usage_error "idle-conns without a PIN is a usage error" 'needs --pin or --pin-file' \
	--module "$MODULE" --slot 1 --server-pid $$ --op idle-conns
usage_error "idle-conns without --server-pid is a usage error" 'and --server-pid' \
	--module "$MODULE" --slot 1 --pin 1234-user --op idle-conns
usage_error "idle-conns: --rounds over 20 is a usage error" 'bad value' \
	--module "$MODULE" --slot 1 --pin 1234-user --server-pid $$ --op idle-conns --rounds 21
usage_error "idle-conns: --conns 0 is a usage error" 'bad value' \
	--module "$MODULE" --slot 1 --pin 1234-user --server-pid $$ --op idle-conns --conns 0

# ---- the soft limit is raised; 300 connections are held and served -------------------------
hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$hard" -lt 1024 ]; then
	fail "the hard descriptor limit allows this test (>= 1024)" "ulimit -Hn is $hard"
	exit 1
fi
# hsmgated inherits a soft limit too low for 300 connections; it must raise it itself
ulimit -Sn 256
e2e_setup || { fail setup "e2e_setup failed"; exit 1; }
e2e_start || { fail start "hsmgated did not start"; exit 1; }
expect_output "hsmgated raises its soft descriptor limit to the hard one and logs it" \
	"msg=\"descriptor limit\" nofile=$hard was=256 hard=$hard" cat "$d/hsmgated.log"

out=$(HSMGATE_CONF=$d/alice.yaml "$BENCH" --module "$MODULE" --token a1 --pin-file "$d/user-pin" \
	--server-pid "$E2E_PID" --op idle-conns --conns 300 --conn-batch 50 --threads 2 --inflight 8 \
	--duration 0.3 --warmup 0 2>&1)
rc=$?
if [ $rc = 0 ] && grep -Eq '^idle-conns +300 +300 +[0-9.]+ +[1-9][0-9]* +[1-9][0-9]* ' <<<"$out"; then
	pass "300 logged-in connections are held, still logged in after idling, and ecdsa runs beside them"
else
	fail "300 logged-in connections are held, still logged in after idling, and ecdsa runs beside them" \
		"exit $rc" "$(tail -n 8 <<<"$out")"
fi
n=$(grep -c 'msg="authenticated"' "$d/hsmgated.log")
[ "$n" -ge 301 ] && pass "hsmgated authenticated every one of them (and the measuring connection)" ||
	fail "hsmgated authenticated every one of them (and the measuring connection)" "$n authenticated"
grep -q 'max_connections reached\|accept failed' "$d/hsmgated.log" &&
	fail "no connection was refused or failed to be accepted" "$(grep -m3 'max_connections reached\|accept failed' "$d/hsmgated.log")" ||
	pass "no connection was refused or failed to be accepted"
e2e_stop

# ---- a hard limit below limits.max_connections --------------------------------------------
# start_limited NOFILE CONFIG — hsmgated with RLIMIT_NOFILE NOFILE (soft and hard); sets
# lim_pid and E2E_ADDR, or returns 1 when it exits first.
start_limited() {
	local n=$1 conf=$2 i
	rm -f "$d/limited.ready"
	(ulimit -n "$n" && exec "$BIN/hsmgated" --config "$conf" --ready-file "$d/limited.ready") \
		>>"$d/limited.log" 2>&1 &
	lim_pid=$!
	for i in $(seq 1 200); do
		[ -s "$d/limited.ready" ] && break
		kill -0 "$lim_pid" 2>/dev/null || return 1
		sleep 0.05
	done
	[ -s "$d/limited.ready" ] || return 1
	E2E_ADDR=$(head -n 1 "$d/limited.ready")
}
stop_limited() {
	kill -TERM "$lim_pid" 2>/dev/null
	wait "$lim_pid" 2>/dev/null
}
# the same gateway (same state), with a max_inflight that is not a power of two
sed 's/^limits:$/limits:\n  max_inflight: 12/' "$d/hsmgated.yaml" >"$d/gw-limited.yaml"
grep -q 'max_inflight: 12' "$d/gw-limited.yaml" || { fail "gw-limited.yaml written" "no max_inflight"; exit 1; }
fit=$((100 - 64 - 3)) # gw_conn_limit: the reserve, one descriptor per partition
if start_limited 100 "$d/gw-limited.yaml"; then
	pass "hsmgated starts with a descriptor limit of 100"
	e2e_client limited cert alice # the client's config: $d/limited.yaml
	expect_output "it says that limits.max_connections does not fit, and how many connections do" \
		"limits.max_connections does not fit the descriptor limit.* max_connections=4096 nofile=100 accepted_max=$fit" \
		cat "$d/limited.log"
	out=$(HSMGATE_CONF=$d/limited.yaml "$BENCH" --module "$MODULE" --token a1 \
		--pin-file "$d/user-pin" --server-pid "$lim_pid" --op idle-conns --conns $((fit + 7)) \
		--conn-batch 50 --duration 0.2 --warmup 0 2>&1)
	rc=$?
	if [ $rc = 1 ] && grep -Eq "^idle-conns +$((fit + 7)) +[0-9]+ failed \(connection [0-9]+: C_Initialize: CKR_" <<<"$out"; then
		pass "connections over what fits are refused at C_Initialize"
	else
		fail "connections over what fits are refused at C_Initialize" "exit $rc" "$(tail -n 5 <<<"$out")"
	fi
	expect_output "the refusals are logged as max_connections reached, with the lower figure" \
		"connection refused: max_connections reached.* max_connections=$fit " cat "$d/limited.log"
	grep -q 'accept failed' "$d/limited.log" &&
		fail "the gateway never ran out of descriptors (accept failed)" "$(grep -m3 'accept failed' "$d/limited.log")" ||
		pass "the gateway never ran out of descriptors (accept failed)"
	# the refused holders are gone once every accepted connection is closed again
	for i in $(seq 1 100); do
		[ "$(grep -c 'msg="connection closed"' "$d/limited.log")" -ge "$(grep -c 'msg="connection accepted"' "$d/limited.log")" ] && break
		sleep 0.1
	done
	bench_out=$(HSMGATE_CONF=$d/limited.yaml "$BENCH" --module "$MODULE" --token a1 \
		--pin-file "$d/user-pin" --op ecdsa-p256-sign --threads 2 --inflight 8 --duration 0.3 \
		--warmup 0 2>&1)
	rc=$?
	if [ $rc = 0 ] && grep -Eq '^ecdsa-p256-sign +2 +8 +[1-9][0-9]* ' <<<"$bench_out"; then
		pass "it serves again afterwards: 16 threads over max_inflight 12, every signature verified"
	else
		fail "it serves again afterwards: 16 threads over max_inflight 12, every signature verified" \
			"exit $rc" "$(tail -n 5 <<<"$bench_out")"
	fi
	stop_limited
else
	fail "hsmgated starts with a descriptor limit of 100" "$(tail -n 5 "$d/limited.log")"
fi

# ---- a hard limit that leaves no room for any connection -----------------------------------
: >"$d/limited.log"
if start_limited 60 "$d/gw-limited.yaml"; then
	fail "with a descriptor limit of 60 hsmgated refuses to start" "it started"
	stop_limited
else
	wait "$lim_pid" 2>/dev/null
	rc=$?
	if [ $rc = 1 ] && grep -q 'leaves no room for client connections' "$d/limited.log"; then
		pass "with a descriptor limit of 60 hsmgated refuses to start, saying why"
	else
		fail "with a descriptor limit of 60 hsmgated refuses to start, saying why" "exit $rc" \
			"$(tail -n 3 "$d/limited.log")"
	fi
fi
exit 0
