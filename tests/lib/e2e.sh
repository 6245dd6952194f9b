# tests/lib/e2e.sh — helpers for the end-to-end tests (sourced, bash).
#
# Every test gets a throw-away directory with its own PKI, a gateway config with two tenants
# (acme: partitions a1 and a2; globex: partition g1), and a real hsmgated on a free loopback
# port (listen.port 0 + --ready-file). Results are lines "PASS name" / "FAIL name" that
# tests/run.sh counts.

set -u
E2E_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$E2E_TOP/$BUILD ;; esac
BIN=$BUILD/bin
MODULE=$BUILD/lib/libhsmgate-pkcs11.so
RAW=$BUILD/tests/e2e/rawclient
STRESS=$BUILD/tests/e2e/p11_stress
# Under SANITIZE=1 the client module is built with ASan/UBSan; a program that is not (pkcs11-tool,
# openssl, p11tool) can only load it with the runtimes preloaded. Leak checks stay on for our
# own binaries and are off for those tools, whose own leaks are not ours to judge.
E2E_PRELOAD=
if ldd "$MODULE" 2>/dev/null | grep -q libasan; then
	E2E_PRELOAD="$(gcc -print-file-name=libasan.so):$(gcc -print-file-name=libubsan.so)"
fi
# ext CMD... — runs an external tool that may load the client module.
ext() {
	if [ -n "$E2E_PRELOAD" ]; then
		LD_PRELOAD=$E2E_PRELOAD ASAN_OPTIONS=detect_leaks=0:verify_asan_link_order=0 "$@"
	else
		"$@"
	fi
}
E2E_DIR=$(mktemp -d "${TMPDIR:-/tmp}/hsmgate-e2e-XXXXXX")
E2E_PID=
E2E_ADDR=
E2E_FAILED=0

e2e_cleanup() {
	e2e_stop
	# hsmgated's and its workers' stderr: a sanitizer report there is a failure even when
	# every client-visible check passed.
	if grep -Eqs 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$E2E_DIR"/*.log; then
		fail "no sanitizer report from hsmgated or its workers" \
			"$(grep -Ehs -A8 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$E2E_DIR"/*.log | head -30)"
	elif [ -n "$E2E_PRELOAD" ]; then
		pass "no sanitizer report from hsmgated or its workers"
	fi
	if [ "$E2E_FAILED" = 0 ] && [ -z "${E2E_KEEP:-}" ]; then
		rm -rf "$E2E_DIR"
	else
		echo "  (kept $E2E_DIR)"
	fi
}
trap e2e_cleanup EXIT

pass() { echo "PASS $1"; }
fail() {
	echo "FAIL $1"
	shift
	E2E_FAILED=1
	local line
	for line in "$@"; do printf '  %s\n' "$line"; done
}

# check NAME CMD... — PASS when CMD exits 0.
check() {
	local name=$1 out
	shift
	if out=$("$@" 2>&1); then
		pass "$name"
	else
		fail "$name" "command: $*" "$(tail -n 15 <<<"$out")"
	fi
}

# expect_output NAME REGEX CMD... — PASS when CMD's output (stdout+stderr) matches REGEX.
expect_output() {
	local name=$1 re=$2 out
	shift 2
	out=$("$@" 2>&1)
	if grep -Eq -- "$re" <<<"$out"; then
		pass "$name"
	else
		fail "$name" "command: $*" "expected /$re/, got:" "$(tail -n 15 <<<"$out")"
	fi
}

# e2e_setup: PKI, PINs, API keys and the gateway config in $E2E_DIR.
e2e_setup() {
	local d=$E2E_DIR t
	"$E2E_TOP/tools/hsmgate-dev-pki" "$d" alice@acme bob@globex mallory@acme >/dev/null
	# A second, unrelated CA and a client certificate it signed ("wrong CA").
	"$E2E_TOP/tools/hsmgate-dev-pki" "$d/other" alice@acme >/dev/null
	for t in acme globex; do
		printf 'hsk_%s' "$(openssl rand -base64 32 | tr '+/' '-_' | tr -d '=\n')" >"$d/$t.api-key"
	done
	printf 'hsk_%s' "$(openssl rand -base64 32 | tr '+/' '-_' | tr -d '=\n')" >"$d/wrong.api-key"
	printf '%s' 1234-user >"$d/user-pin"
	printf '%s' 5678-so-pin >"$d/so-pin"
	local acme_hash globex_hash
	acme_hash=$("$BIN/hsmctl" apikey hash --key-file "$d/acme.api-key")
	globex_hash=$("$BIN/hsmctl" apikey hash --key-file "$d/globex.api-key")
	cat >"$d/hsmgated.yaml" <<YAML
gateway_id: hsmgated-e2e
listen:
  address: 127.0.0.1
  port: 0
tls:
  cert: server.crt
  key: server.key
  client_ca: ca.crt
state_dir: state
limits:
  max_frame: 1048576
  handshake_timeout_ms: 5000
tenants:
  - name: acme
    principals:
      - name: alice
        cert_subject: "CN=alice,O=acme"
        api_keys: ["$acme_hash"]
  - name: globex
    principals:
      - name: bob
        cert_subject: "CN=bob,O=globex"
        api_keys: ["$globex_hash"]
partitions:
  - name: a1
    tenant: acme
    slot: 1
    token_label: a1
  - name: a2
    tenant: acme
    slot: 2
    token_label: a2
  - name: g1
    tenant: globex
    slot: 3
    token_label: g1
YAML
	# Optional, for the passthrough test: more entries of the partitions list, in YAML
	# (unset: none). They follow the list above directly, so they must come first.
	if [ -n "${E2E_EXTRA_PARTITIONS:-}" ]; then
		printf '%s\n' "$E2E_EXTRA_PARTITIONS" >>"$d/hsmgated.yaml"
	fi
	# Optional, for the policy and audit tests (unset: the config above, unchanged):
	# E2E_POLICY names a policy file, E2E_AUDIT is an `audit:` block in YAML.
	if [ -n "${E2E_POLICY:-}" ]; then
		echo "policy: $E2E_POLICY" >>"$d/hsmgated.yaml"
	fi
	if [ -n "${E2E_AUDIT:-}" ]; then
		printf '%s\n' "$E2E_AUDIT" >>"$d/hsmgated.yaml"
	fi
	for t in a1 a2 g1; do
		"$BIN/hsmctl" token init --config "$d/hsmgated.yaml" --partition $t --label $t \
			--so-pin-file "$d/so-pin" --user-pin-file "$d/user-pin" >/dev/null
	done
}

# e2e_client NAME KIND WHO — writes $E2E_DIR/NAME.yaml for the client module.
#   KIND cert: WHO is a client certificate name (client-WHO.crt); KIND apikey: WHO.api-key.
e2e_client() {
	local name=$1 kind=$2 who=$3 f=$E2E_DIR/$1.yaml
	{
		echo "gateway: $E2E_ADDR"
		echo "ca: ca.crt"
		echo "timeout_ms: 20000"
		if [ "$kind" = cert ]; then
			echo "cert: client-$who.crt"
			echo "key: client-$who.key"
		else
			echo "api_key_file: $who.api-key"
		fi
	} >"$f"
}

# e2e_start: starts hsmgated in the background and waits for its ready file.
e2e_start() {
	local i
	rm -f "$E2E_DIR/ready"
	"$BIN/hsmgated" --config "$E2E_DIR/hsmgated.yaml" --ready-file "$E2E_DIR/ready" \
		>>"$E2E_DIR/hsmgated.log" 2>&1 &
	E2E_PID=$!
	for i in $(seq 1 200); do
		[ -s "$E2E_DIR/ready" ] && break
		if ! kill -0 "$E2E_PID" 2>/dev/null; then
			echo "hsmgated exited during start-up:"
			tail -n 20 "$E2E_DIR/hsmgated.log"
			return 1
		fi
		sleep 0.05
	done
	[ -s "$E2E_DIR/ready" ] || { echo "hsmgated did not become ready"; return 1; }
	E2E_ADDR=$(head -n 1 "$E2E_DIR/ready")
	e2e_client alice cert alice
	e2e_client bob cert bob
	e2e_client acme-key apikey acme
	e2e_client globex-key apikey globex
	e2e_client wrong-key apikey wrong
}

# e2e_stop: SIGTERM, then wait (graceful shutdown).
e2e_stop() {
	if [ -n "$E2E_PID" ] && kill -0 "$E2E_PID" 2>/dev/null; then
		kill -TERM "$E2E_PID"
		local i
		for i in $(seq 1 100); do
			kill -0 "$E2E_PID" 2>/dev/null || break
			sleep 0.05
		done
		kill -KILL "$E2E_PID" 2>/dev/null
		wait "$E2E_PID" 2>/dev/null
	fi
	E2E_PID=
}

# p11 CONF ARGS... — pkcs11-tool through the client module with client config CONF.
p11() {
	local conf=$1
	shift
	HSMGATE_CONF=$E2E_DIR/$conf.yaml ext pkcs11-tool --module "$MODULE" "$@"
}

# raw MODE [ARG] [--cert NAME] — the raw TLS client.
raw() {
	local mode=$1 arg=${2:-} who=${3:-}
	local certargs=()
	[ -n "$who" ] && certargs=(--cert "$E2E_DIR/client-$who.crt" --key "$E2E_DIR/client-$who.key")
	"$RAW" --connect "$E2E_ADDR" --ca "$E2E_DIR/ca.crt" "${certargs[@]}" "$mode" $arg
}

# The pid of the worker of partition NAME.
worker_pid() {
	pgrep -f -- "hsmgate-worker --config $E2E_DIR/hsmgated.yaml --partition $1( |\$)" | head -n 1
}
