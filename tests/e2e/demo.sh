#!/usr/bin/env bash
# End-to-end: what `make run` does (tools/hsmgate-demo), then the exact line it prints, as a
# new user would type it — in a throw-away demo directory and on a free port.
. "$(dirname "$0")/../lib/e2e.sh"

port=
for i in $(seq 1 50); do
	p=$((20000 + RANDOM % 20000))
	if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
		port=$p
		break
	fi
done
[ -n "$port" ] || { fail "find a free port"; exit 1; }

cd "$E2E_TOP"
rel_dir=$(realpath --relative-to="$E2E_TOP" "$E2E_DIR")/demo
HSMGATE_DEMO_DIR=$rel_dir HSMGATE_DEMO_PORT=$port tools/hsmgate-demo "$BUILD" >"$E2E_DIR/demo.log" 2>&1 &
E2E_PID=$!
for i in $(seq 1 200); do
	(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
	kill -0 $E2E_PID 2>/dev/null || break
	sleep 0.05
done
for f in user-pin so-pin api-key; do
	m=$(stat -c %a "$rel_dir/$f" 2>/dev/null)
	[ "$m" = 600 ] && pass "demo: $f is mode 0600" || fail "demo: $f is mode 0600" "mode $m"
done
line=$(grep -m1 -E '^ +HSMGATE_CONF=.* -L$' "$E2E_DIR/demo.log" | sed -E 's/^ +//')
[ -n "$line" ] && pass "demo: prints the next command" || fail "demo: prints the next command" "$(cat "$E2E_DIR/demo.log")"
expect_output "demo: the printed line lists token demo" 'token label +: demo' ext bash -c "$line"
login=$(grep -m1 -E '^ +HSMGATE_CONF=.* -O$' "$E2E_DIR/demo.log" | sed -E 's/^ +//')
check "demo: the printed login line works" ext bash -c "$login"
apikey=$(grep -m1 -E 'client-apikey.yaml' "$E2E_DIR/demo.log" | sed -E 's/^ +//')
expect_output "demo: the API-key line works" '[0-9a-f]{2}' ext bash -c "$apikey"
[ -f "$rel_dir/audit-signing.pub" ] && [ -d "$rel_dir/audit" ] &&
	pass "demo: the audit log and its public key are in the demo directory" ||
	fail "demo: the audit log and its public key are in the demo directory" "$(ls "$rel_dir")"
# A second start reuses the setup (the PINs do not change).
pin=$(cat "$rel_dir/user-pin")
e2e_stop
verify=$(grep -m1 -E '^ +.*hsmgate-audit verify --log ' "$E2E_DIR/demo.log" | sed -E 's/^ +//')
[ -n "$verify" ] && pass "demo: prints the auditor's first command" ||
	fail "demo: prints the auditor's first command" "$(cat "$E2E_DIR/demo.log")"
expect_output "demo: the printed verify line passes" '^OK ' ext bash -c "$verify"
expect_output "demo: the log has the demo's calls" 'hsmgate.random.generate' \
	bash -c "cat $rel_dir/audit/seg-*.log"
HSMGATE_DEMO_DIR=$rel_dir HSMGATE_DEMO_PORT=$port HSMGATE_DEMO_SETUP_ONLY=1 tools/hsmgate-demo "$BUILD" >/dev/null 2>&1
[ "$(cat "$rel_dir/user-pin")" = "$pin" ] && pass "demo: setup is created once" || fail "demo: setup is created once"
exit 0
