#!/usr/bin/env bash
# tools/bench/run-bench.sh — what `make bench` runs: the side-by-side comparison of issue 6 and
# the audit-log bars of issue 5, written to docs/BENCHMARKS.md.
#
#   tools/bench/run-bench.sh [BUILD_DIR]          (default build)
#
# Peers, all driven by the same build/bin/hsmgate-bench with the same operations:
#   hsmgate       our client module -> hsmgated (TLS 1.3, audit on, default durability) ->
#                 a soft partition; started here on a throw-away PKI, port 0 + --ready-file
#   hsmgate-pt    the same gateway, partition with backend pkcs11 in front of SoftHSMv2
#                 (only when the passthrough backend exists; otherwise "not yet available")
#   softhsm       SoftHSMv2 in-process (/usr/lib/softhsm/libsofthsm2.so, temp SOFTHSM2_CONF)
#   p11kit        p11-kit-client.so -> `p11-kit server` -> SoftHSMv2 (p11-kit's RPC)
# plus `openssl speed -multi 2` as the raw-crypto reference for rsa2048 and ecdsap256.
#
# The bars of issue 5 (the audit log), measured in the same runs:
#   in-process    hsmgate-bench's in-process operations, no module and no gateway: audit-append
#                 (2 threads, each keeping 512 records in flight, building gateway-shaped
#                 events of ~1 KiB and appending them through aud_log_append to a fresh log in
#                 $TMPDIR with the default options: durability sync, group commit, a checkpoint
#                 every 1000 records or 10 s; events/s durable and append -> durable latency;
#                 the log is verified afterwards) and audit-verify (aud_log_verify, the code of
#                 `hsmgate-audit verify`, over a log of 100,000 such events; records/s)
#   hsmgate-noaudit  a third hsmgated with `audit: {enabled: false}`, beside hsmgate (default
#                 config, durability sync) in the case ecdsa-p256-sign 2x8 (16 in flight): what
#                 the audit log costs. An hsmgated that refuses the key is reported as
#                 "not measured", not as a failure of the bench.
# Issue 6's idle-connection bar, after the runs: `hsmgate-bench --op idle-conns` holds
# BENCH_IDLE_CONNS connections (a process each: C_Initialize, C_OpenSession, C_Login, then
# idle) to a fourth, fresh hsmgated (default config), reads its RSS and its workers' before and
# while they are held, and runs ecdsa-p256-sign 2x8 beside them BENCH_RUNS times, then as often
# after their release.
# The peers alternate within each case, and every case runs BENCH_RUNS times; the report
# shows the median and the min–max of ops/s and the medians of the latencies.
#
# Environment:
#   BENCH_QUICK=1       about 2-3 minutes: 2 runs x 0.5 s (default: 3 runs x 2 s, about 10 minutes)
#   BENCH_RUNS, BENCH_DURATION, BENCH_WARMUP   override the above
#   BENCH_OUT           the report (default docs/BENCHMARKS.md)
#   BENCH_KEEP=1        keep the temporary directory (raw JSON of every run, server logs)
#   BENCH_CASES         the cases, "op:threads:inflight ..." (default: all of issue 6's)
#   BENCH_PROFILE=0     skip the callgrind profile of one ecdsa call path (default: on)
#   BENCH_AUDIT=0       skip the in-process audit operations (default: on)
#   BENCH_IDLE_CONNS    idle logged-in connections held for issue 6's bar (default 1000; 0 skips)
#
# Servers as daemons: hsmgated and `p11-kit server` are started with setsid, each in a
# session of its own, as systemd (or any daemon manager) runs them, and apart from the
# benchmark client. With the kernel's autogroup scheduling (sched_autogroup_enabled=1 here)
# a server started in the client's own session shares one scheduling group with it, and
# the scheduler then tends to put the client and hsmgated on one CPU: random32 1x1 through
# hsmgated (audit async) measured 89-99 us p50 that way against 43-53 us in a session of
# its own; p11-kit server measured 60-65 us either way (docs/PERFORMANCE.md).
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-build}
case $build in /*) ;; *) build=$top/$build ;; esac
cd "$top"

bench=$build/bin/hsmgate-bench
ourmod=$build/lib/libhsmgate-pkcs11.so
softhsm=/usr/lib/softhsm/libsofthsm2.so
p11kit_client=/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so
out=${BENCH_OUT:-docs/BENCHMARKS.md}
quick=${BENCH_QUICK:-0}
idle_conns=${BENCH_IDLE_CONNS:-1000}
case $idle_conns in
'' | *[!0-9]*) echo "run-bench: BENCH_IDLE_CONNS must be a number (0 skips)" >&2; exit 1 ;;
esac
if [ "$quick" = 1 ]; then
	runs=${BENCH_RUNS:-2}
	duration=${BENCH_DURATION:-0.5}
	warmup=${BENCH_WARMUP:-0.2}
	prof_secs=1
else
	runs=${BENCH_RUNS:-3}
	duration=${BENCH_DURATION:-2}
	warmup=${BENCH_WARMUP:-0.5}
	prof_secs=3
fi
cmdline="make bench${BENCH_QUICK:+ BENCH_QUICK=$BENCH_QUICK}"
[ "$build" = "$top/build" ] || cmdline+=" BUILD=${build#"$top"/}"
[ "${BENCH_RUNS:-}${BENCH_DURATION:-}${BENCH_WARMUP:-}" != "" ] &&
	cmdline="BENCH_RUNS=$runs BENCH_DURATION=$duration BENCH_WARMUP=$warmup $cmdline"

for f in "$bench" "$ourmod" "$build/bin/hsmgated" "$build/bin/hsmgate-worker" "$build/bin/hsmctl"; do
	[ -x "$f" ] || [ -f "$f" ] || { echo "run-bench: $f is missing; run make first" >&2; exit 1; }
done
for t in jq softhsm2-util p11-kit openssl; do
	command -v $t >/dev/null || { echo "run-bench: $t is needed" >&2; exit 1; }
done

dir=$(mktemp -d "${TMPDIR:-/tmp}/hsmgate-bench-XXXXXX")
gw_pids=
p11_pid=
cleanup() {
	local p
	for p in $gw_pids $p11_pid; do
		if kill -0 "$p" 2>/dev/null; then
			kill -TERM "$p"
			wait "$p" 2>/dev/null
		fi
	done
	if [ -z "${BENCH_KEEP:-}" ]; then rm -rf "$dir"; else echo "run-bench: kept $dir"; fi
}
trap cleanup EXIT
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

pin=1234-bench
printf '%s' "$pin" >"$dir/user-pin"
printf '%s' 5678-bench-so >"$dir/so-pin"

# ---- SoftHSMv2: one token for in-process and p11-kit, one for the passthrough partition ----
mkdir -p "$dir/softhsm/tokens"
cat >"$dir/softhsm/softhsm2.conf" <<EOF
directories.tokendir = $dir/softhsm/tokens
objectstore.backend = file
log.level = ERROR
EOF
export SOFTHSM2_CONF=$dir/softhsm/softhsm2.conf
for t in bench benchpt; do
	softhsm2-util --init-token --free --label $t --pin "$pin" --so-pin 5678-bench-so >/dev/null ||
		{ echo "run-bench: softhsm2-util --init-token failed" >&2; exit 1; }
done

# ---- hsmgated on a throw-away PKI (as tests/lib/e2e.sh does) ------------------------------
# The passthrough backend is used only once the built worker implements it (the worker of an
# older build says "backend 'pkcs11' is not implemented yet" and exits).
passthrough=1
if grep -aq "is not implemented yet" "$build/bin/hsmgate-worker"; then
	passthrough=0
fi
tools/hsmgate-dev-pki "$dir" bench@bench >/dev/null || { echo "run-bench: dev PKI failed" >&2; exit 1; }
# start_gw NAME DURABILITY — an hsmgated with its own config and state in $dir/NAME; sets
# gw_pid_NAME and writes $dir/NAME/client.yaml. The audit block is written only when asked
# for, so that the default durability is what a default config gets; DURABILITY "off" writes
# `audit: {enabled: false}` instead.
start_gw() {
	local name=$1 durability=$2 d=$dir/$1 i pid
	mkdir -p "$d"
	cp "$dir"/ca.crt "$dir"/server.crt "$dir"/server.key "$dir"/client-bench.crt "$dir"/client-bench.key "$d/"
	{
		cat <<YAML
gateway_id: hsmgated-$name
listen:
  address: 127.0.0.1
  port: 0
tls:
  cert: server.crt
  key: server.key
  client_ca: ca.crt
state_dir: state
YAML
		if [ "$durability" = off ]; then
			printf 'audit:\n  enabled: false\n'
		elif [ -n "$durability" ]; then
			printf 'audit:\n  durability: %s\n' "$durability"
		fi
		cat <<YAML
tenants:
  - name: bench
    principals:
      - name: bench
        cert_subject: "CN=bench,O=bench"
partitions:
  - name: bench
    tenant: bench
    slot: 1
    token_label: bench
YAML
		if [ $passthrough = 1 ]; then
			cat <<YAML
  - name: benchpt
    tenant: bench
    slot: 2
    backend: pkcs11
    module: $softhsm
    token: benchpt
YAML
		fi
	} >"$d/hsmgated.yaml"
	"$build/bin/hsmctl" token init --config "$d/hsmgated.yaml" --partition bench --label bench \
		--so-pin-file "$dir/so-pin" --user-pin-file "$dir/user-pin" >/dev/null ||
		{ echo "run-bench: hsmctl token init failed" >&2; return 1; }
	# setsid: a session of its own, as a daemon runs (see "Servers as daemons" above).
	setsid ${GW_WRAP:-} "$build/bin/hsmgated" --config "$d/hsmgated.yaml" --ready-file "$d/ready" \
		>"$d/hsmgated.log" 2>&1 </dev/null &
	pid=$!
	gw_pids+=" $pid"
	for i in $(seq 1 1200); do
		[ -s "$d/ready" ] && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	[ -s "$d/ready" ] || { echo "run-bench: hsmgated ($name) did not start:" >&2; tail -n 20 "$d/hsmgated.log" >&2; return 1; }
	printf -v "gw_pid_${name//-/_}" '%s' "$pid"
	cat >"$d/client.yaml" <<YAML
gateway: $(head -n 1 "$d/ready")
ca: ca.crt
cert: client-bench.crt
key: client-bench.key
timeout_ms: 60000
YAML
}
gw_pids=
start_gw hsmgate "" || exit 1
start_gw hsmgate-async async || exit 1
# what the default gateway says about its audit log at start-up
audit_line=$(grep -m1 'durability=' "$dir/hsmgate/hsmgated.log" | grep -o 'durability=[a-z]*')
# The audit log's cost (issue 5): the same gateway with `audit: {enabled: false}`. A build
# without that setting refuses the config; the bar then says so instead of failing the bench.
noaudit=
if start_gw hsmgate-noaudit off 2>"$dir/noaudit.err"; then
	noaudit=hsmgate-noaudit
elif grep -qi 'enabled' "$dir/hsmgate-noaudit/hsmgated.log" "$dir/noaudit.err" 2>/dev/null; then
	noaudit_why="not measured: this build has no audit.enabled"
else
	noaudit_why="not measured: hsmgated with \`audit: {enabled: false}\` did not start ($(grep -m1 -i 'error' "$dir/hsmgate-noaudit/hsmgated.log" 2>/dev/null | cut -c1-120))"
fi
[ -n "$noaudit" ] || log "hsmgate-noaudit: ${noaudit_why#not measured: }"

# ---- p11-kit server in front of SoftHSMv2 ---------------------------------------------------
# p11-kit 0.24: `p11-kit server [--provider MODULE] TOKEN-URI` prints the shell lines
# P11_KIT_SERVER_ADDRESS=...; P11_KIT_SERVER_PID=...; it needs a runtime directory for its
# socket.
mkdir -p "$dir/run" && chmod 700 "$dir/run"
XDG_RUNTIME_DIR=$dir/run setsid p11-kit server -f -s --provider "$softhsm" "pkcs11:token=bench" \
	>"$dir/p11kit.out" 2>&1 </dev/null &
p11_pid=$!
p11_addr=
for i in $(seq 1 100); do
	p11_addr=$(sed -n 's/^P11_KIT_SERVER_ADDRESS=\([^;]*\);.*/\1/p' "$dir/p11kit.out")
	[ -n "$p11_addr" ] && break
	sleep 0.05
done
[ -n "$p11_addr" ] || { echo "run-bench: p11-kit server did not start:" >&2; cat "$dir/p11kit.out" >&2; exit 1; }

# ---- the runs -------------------------------------------------------------------------------
peers="hsmgate softhsm p11kit"
[ $passthrough = 1 ] && peers="hsmgate hsmgate-pt softhsm p11kit"

# case = op:threads:inflight. ecdsa and random also at 1 x 1 for latency; ecdsa at 2 x 8
# for the pipelining bar; rsa2048 at 2 x 8 for a partition's crypto threads (several cores).
cases=${BENCH_CASES:-"random32:1:1 random32:2:8 digest-sha256-4k:2:1 ecdsa-p256-sign:1:1 ecdsa-p256-sign:2:8
ed25519-sign:2:1 rsa2048-sign:2:1 rsa2048-sign:2:8 rsa2048-pss-sign:2:1 rsa2048-oaep-decrypt:2:1
aes256-gcm-encrypt-4k:2:1 aes256-cbc-encrypt-4k:2:1 hmac-sha256-1k:2:1 aes-keygen:2:1
find-objects:2:1 session:1:1"}

# run_peer PEER OP THREADS INFLIGHT OUTFILE — one hsmgate-bench invocation.
run_peer() {
	local peer=$1 op=$2 thr=$3 infl=$4 o=$5
	local common=(--op "$op" --threads "$thr" --inflight "$infl" --duration "$duration" --warmup "$warmup"
		--pin-file "$dir/user-pin" --format json --label "$peer")
	case $peer in
	hsmgate)
		HSMGATE_CONF=$dir/hsmgate/client.yaml "$bench" --module "$ourmod" --token bench \
			--server-pid "$gw_pid_hsmgate" "${common[@]}" ;;
	hsmgate-async)
		HSMGATE_CONF=$dir/hsmgate-async/client.yaml "$bench" --module "$ourmod" --token bench \
			--server-pid "$gw_pid_hsmgate_async" "${common[@]}" ;;
	hsmgate-noaudit)
		HSMGATE_CONF=$dir/hsmgate-noaudit/client.yaml "$bench" --module "$ourmod" --token bench \
			--server-pid "$gw_pid_hsmgate_noaudit" "${common[@]}" ;;
	in-process)
		# the audit operations need no module, token or PIN
		"$bench" --op "$op" --threads "$thr" --inflight "$infl" --duration "$duration" \
			--warmup "$warmup" --format json --label in-process ;;
	hsmgate-pt)
		HSMGATE_CONF=$dir/hsmgate/client.yaml "$bench" --module "$ourmod" --slot 2 \
			--server-pid "$gw_pid_hsmgate" "${common[@]}" ;;
	softhsm)
		"$bench" --module "$softhsm" --token bench "${common[@]}" ;;
	p11kit)
		P11_KIT_SERVER_ADDRESS=$p11_addr "$bench" --module "$p11kit_client" --token bench \
			--server-pid "$p11_pid" "${common[@]}" ;;
	*) return 2 ;;
	esac >"$o" 2>"$o.err"
}

# The audit log's own cases (issue 5), op:threads:inflight: appends from 2 threads with 512
# records in flight each (1,024 requests waiting for their record, e.g. 64 connections x 16),
# and the verifier (threads and in flight unused).
audit_cases="audit-append:2:512 audit-verify:1:1"
[ "${BENCH_AUDIT:-1}" = 1 ] || audit_cases=

mkdir -p "$dir/raw"
ncases=$(wc -w <<<"$cases")
log "hsmgate-bench: $(wc -w <<<"$peers") peers x $ncases cases x $runs runs of ${duration}s (+${warmup}s warm-up)"
start_s=$(date +%s)
: >"$dir/runs.tsv"
for run in $(seq 1 "$runs"); do
	for c in $cases; do
		IFS=: read -r op thr infl <<<"$c"
		case_peers=$peers
		# the latency bar of issue 6 is stated with audit durability async
		[ "$c" = random32:1:1 ] && case_peers="$peers hsmgate-async"
		# issue 5: the audit log's cost at 16 in flight
		[ "$c" = ecdsa-p256-sign:2:8 ] && case_peers="$case_peers $noaudit"
		for peer in $case_peers; do
			o=$dir/raw/$peer-$op-$thr-$infl-$run.json
			run_peer "$peer" "$op" "$thr" "$infl" "$o"
			rc=$?
			if ! jq -e . "$o" >/dev/null 2>&1; then
				# the tool itself failed (module, token, login): one line says why
				printf '%s\t%s\t%s\t%s\t%s\terror\t\t\t\t\t\t\t\t%s\n' "$peer" "$op" "$thr" "$infl" "$run" \
					"exit $rc: $(tr '\n\t' '  ' <"$o.err" | cut -c1-200)" >>"$dir/runs.tsv"
				continue
			fi
			jq -r --arg peer "$peer" --arg run "$run" '.threads as $t | .inflight as $k | .results[] |
				[$peer, .op, $t, $k, $run, .status, (.ops_per_s // ""), (.p50_us // ""), (.p99_us // ""),
				 (.p999_us // ""), (.client_cpu_us_per_op // ""), (.server_cpu_us_per_op // ""),
				 (.server_rss_kib // ""), (.note // .message // "")] | @tsv' "$o" >>"$dir/runs.tsv"
		done
	done
	# issue 5: the audit log in-process (no peers: nothing else writes this log)
	for c in $audit_cases; do
		IFS=: read -r op thr infl <<<"$c"
		o=$dir/raw/in-process-$op-$thr-$infl-$run.json
		run_peer in-process "$op" "$thr" "$infl" "$o"
		rc=$?
		if ! jq -e . "$o" >/dev/null 2>&1; then
			printf '%s\t%s\t%s\t%s\t%s\terror\t\t\t\t\t\t\t\t%s\n' in-process "$op" "$thr" "$infl" "$run" \
				"exit $rc: $(tr '\n\t' '  ' <"$o.err" | cut -c1-200)" >>"$dir/runs.tsv"
			continue
		fi
		jq -r --arg run "$run" '.threads as $t | .inflight as $k | .results[] |
			["in-process", .op, $t, $k, $run, .status, (.ops_per_s // ""), (.p50_us // ""), (.p99_us // ""),
			 (.p999_us // ""), (.client_cpu_us_per_op // ""), "", "", (.note // .message // "")] | @tsv' "$o" >>"$dir/runs.tsv"
	done
	log "run $run/$runs done ($(($(date +%s) - start_s)) s)"
done

# ---- idle connections (issue 6) -------------------------------------------------------------
# A fresh hsmgated, so that its RSS before the connections is a clean baseline (memory freed by
# earlier connections would otherwise be reused and hide part of their cost).
idle_json=
idle_rc=
if [ "$idle_conns" -gt 0 ]; then
	log "idle-conns: $idle_conns logged-in connections held by a fresh hsmgated"
	if start_gw hsmgate-idle ""; then
		idle_json=$dir/raw/hsmgate-idle-conns.json
		HSMGATE_CONF=$dir/hsmgate-idle/client.yaml "$bench" --module "$ourmod" --token bench \
			--pin-file "$dir/user-pin" --server-pid "$gw_pid_hsmgate_idle" --op idle-conns \
			--conns "$idle_conns" --threads 2 --inflight 8 --duration "$duration" \
			--warmup "$warmup" --rounds "$runs" --format json --label hsmgate-idle \
			>"$idle_json" 2>"$idle_json.err"
		idle_rc=$?
	fi
fi

# ---- raw OpenSSL ------------------------------------------------------------------------------
log "openssl speed -seconds 3 -multi 2 rsa2048 ecdsap256"
openssl speed -seconds 3 -multi 2 rsa2048 ecdsap256 >"$dir/speed.txt" 2>&1
# The summary lines: "rsa 2048 bits <sign s> <verify s> <sign/s> <verify/s>" and
# "256 bits ecdsa (nistp256) <sign s> <verify s> <sign/s> <verify/s>".
ossl_rsa=$(awk '/^rsa 2048 bits/ {v=$(NF-1)} END {print v}' "$dir/speed.txt")
ossl_ecdsa=$(awk '/ecdsa \(nistp256\)/ {v=$(NF-1)} END {print v}' "$dir/speed.txt")

# aggregate PEER OP THR INFL -> "status|median ops|min ops|max ops|p50|p99|p999|cli|srv|rss|note"
aggregate() {
	awk -F'\t' -v peer="$1" -v op="$2" -v thr="$3" -v infl="$4" '
	function median(a, n,   i, j, t) {
		for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j+1] = a[j]; a[j+1] = t }
		return n % 2 ? a[(n+1)/2] : (a[n/2] + a[n/2+1]) / 2
	}
	$1 == peer && $2 == op && $3 == thr && $4 == infl {
		if ($6 == "ok") {
			n++; ops[n] = $7; p50[n] = $8; p99[n] = $9; p999[n] = $10; cli[n] = $11; srv[n] = $12
			if ($13 + 0 > rss) rss = $13 + 0
			note = $14
		} else if (status == "") { status = $6; msg = $14 }
	}
	END {
		if (n == 0) { printf "%s||||||||||%s\n", (status == "" ? "missing" : status), msg; exit }
		for (i = 1; i <= n; i++) { o2[i] = ops[i] }
		mn = ops[1]; mx = ops[1]
		for (i = 1; i <= n; i++) { if (ops[i] < mn) mn = ops[i]; if (ops[i] > mx) mx = ops[i] }
		printf "ok|%.0f|%.0f|%.0f|%.1f|%.1f|%.1f|%.1f|%.1f|%d|%s\n", median(o2, n), mn, mx, median(p50, n),
			median(p99, n), median(p999, n), median(cli, n), median(srv, n), rss, note
	}' "$dir/runs.tsv"
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "n/a"; else printf "%.2f", a / b }'; }

# ---- where the time goes: callgrind of client, gateway and worker ---------------------------
# A third hsmgated runs under callgrind (--trace-children: its workers too). For each profiled
# operation the client runs under callgrind, a 0.01 s run and a 3 s run (1 s with BENCH_QUICK),
# 1 x 1, after a first 0.01 s run that takes the worker's one-time costs; the
# gateway's and workers' counters are dumped (callgrind_control -d) around each run. The
# instructions per operation of each process and shared object are
# (long run - short run) / (calls of the long run - calls of the short run), so start-up,
# TLS handshake, login and key set-up cancel out. SoftHSMv2 in-process, profiled the same way,
# shows what the same operation costs where nothing but the crypto runs. Instruction counts
# (Ir), not time: the kernel (syscalls, socket and IPC wake-ups) is not in them.
prof_ops=
if [ "${BENCH_PROFILE:-1}" = 1 ] && command -v valgrind >/dev/null && command -v callgrind_control >/dev/null; then
	for op in random32 ecdsa-p256-sign; do
		[ "$(aggregate hsmgate "$op" 1 1 | cut -d'|' -f1)" = ok ] && prof_ops+=" $op"
	done
fi
objsum() { # FILES... -> "object<TAB>Ir" summed over the files
	local f
	for f in "$@"; do
		callgrind_annotate --auto=no --threshold=100 "$f" 2>/dev/null | awk -f "$top/tools/bench/callgrind-objects.awk"
	done | awk -F'\t' '$1 != "TOTAL" && $1 != "CHECKSUM" { s[$1] += $2 } END { for (o in s) printf "%s\t%.0f\n", o, s[o] }'
}
gw_tree() { # PID -> PID and its descendants
	local p=$1 c
	echo "$p"
	for c in $(cat /proc/"$p"/task/*/children 2>/dev/null); do gw_tree "$c"; done
}
dump_new() { # PIDS... -> names of the dump files this dump created
	local before after
	before=$(ls "$dir/prof"/cg.*.out.* 2>/dev/null | sort)
	callgrind_control -d "$@" >/dev/null 2>&1
	sleep 0.5
	after=$(ls "$dir/prof"/cg.*.out.* 2>/dev/null | sort)
	comm -13 <(echo "$before") <(echo "$after")
}
# per_op OUT_LABEL CALLS_LONG CALLS_SHORT LONG_FILES -- SHORT_FILES : rows "label<TAB>object<TAB>Ir/op"
per_op() {
	local label=$1 cl=$2 cs=$3 long=() short=() f
	shift 3
	while [ $# -gt 0 ] && [ "$1" != -- ]; do long+=("$1"); shift; done
	shift
	short=("$@")
	join -t $'\t' -a1 -e 0 -o 0,1.2,2.2 <(objsum "${long[@]}" | sort) <(objsum "${short[@]}" | sort) |
		awk -F'\t' -v l="$label" -v n=$((cl - cs)) 'n > 0 { v = ($2 - $3) / n; if (v > 0) printf "%s\t%s\t%.0f\n", l, $1, v }'
}
# files of one process kind among dump files
files_of() { # KIND(hsmgated|hsmgate-worker) FILES...
	local kind=$1 f
	shift
	for f in "$@"; do
		if grep -q "^cmd: .*/$kind " "$f"; then echo "$f"; fi
	done
}
if [ -n "$prof_ops" ]; then
	log "callgrind: where the time goes for$prof_ops"
	mkdir -p "$dir/prof"
	GW_WRAP="valgrind --tool=callgrind --trace-children=yes --callgrind-out-file=$dir/prof/cg.%p.out"
	if start_gw hsmgate-prof ""; then
		for op in $prof_ops; do
			pids=$(gw_tree "$gw_pid_hsmgate_prof")
			dump_new $pids >/dev/null
			run_client() { # DURATION OUT PEER -> calls
				local module=$ourmod conf=(HSMGATE_CONF=$dir/hsmgate-prof/client.yaml)
				[ "$3" = softhsm ] && module=$softhsm
				env "${conf[@]}" valgrind --tool=callgrind --callgrind-out-file="$2" "$bench" --module "$module" \
					--token bench --pin-file "$dir/user-pin" --op "$op" --duration "$1" --warmup 0 --format json \
					2>"$2.err" | jq -r '.results[0].calls // 0'
			}
			# a first run takes the one-time costs of the worker (first login) out of the short run
			run_client 0.01 "$dir/prof/client.$op.first" hsmgate >/dev/null
			dump_new $pids >/dev/null
			cs=$(run_client 0.01 "$dir/prof/client.$op.short" hsmgate)
			short=$(dump_new $pids)
			cl=$(run_client "$prof_secs" "$dir/prof/client.$op.long" hsmgate)
			long=$(dump_new $pids)
			ss=$(run_client 0.01 "$dir/prof/softhsm.$op.short" softhsm)
			sl=$(run_client "$prof_secs" "$dir/prof/softhsm.$op.long" softhsm)
			{
				per_op client "$cl" "$cs" "$dir/prof/client.$op.long" -- "$dir/prof/client.$op.short"
				per_op hsmgated "$cl" "$cs" $(files_of hsmgated $long) -- $(files_of hsmgated $short)
				per_op worker "$cl" "$cs" $(files_of hsmgate-worker $long) -- $(files_of hsmgate-worker $short)
				per_op softhsm-in-process "$sl" "$ss" "$dir/prof/softhsm.$op.long" -- "$dir/prof/softhsm.$op.short"
			} >"$dir/prof/$op.tsv"
			top_fns=$(for f in $(files_of hsmgated $long) $(files_of hsmgate-worker $long); do
				callgrind_annotate --auto=no --threshold=100 "$f" 2>/dev/null |
					awk -v who="$(grep -q '^cmd: .*/hsmgate-worker ' "$f" && echo worker || echo hsmgated)" '
					/PROGRAM TOTALS/ { t = $1; gsub(",", "", t); total = t + 0; next }
					/^ *[0-9,]+ +\( *[0-9.]+%\) / { ir = $1; gsub(",", "", ir); ir += 0; n++; v[n] = ir; c[ir]++; line[n] = $0 }
					END { k = 0; for (i = 1; i <= n && k < 6; i++) { if (c[v[i]] >= 2 && v[i] > total * 0.01) continue;
						l = line[i]; sub(/^ *[0-9,]+ +\( *[0-9.]+%\) +/, "", l); o = ""
						if (match(l, /\[[^]]*\]$/)) { o = substr(l, RSTART + 1, RLENGTH - 2); sub(".*/", "", o) }
						sub(/ \[.*\]$/, "", l); sub(/^.*:/, "", l); if (l ~ /^0x/) l = o ":" l;
						printf "%s %s %.1f%%\n", who, l, 100 * v[i] / total; k++ } }'
			done)
			echo "$cl $cs $sl $ss" >"$dir/prof/$op.calls"
			printf '%s\n' "$top_fns" >"$dir/prof/$op.top"
		done
	else
		log "callgrind: the profiled hsmgated did not start"
	fi
fi

# ---- the report -------------------------------------------------------------------------------
peer_desc() {
	case $1 in
	hsmgate) echo "hsmgate (soft partition; client module → TLS 1.3 → hsmgated → worker; default config: ${audit_line:-no audit log line at start-up, i.e. audit not in this build}, policy allow-all)" ;;
	hsmgate-async) echo "the same with \`audit: {durability: async}\` (a second hsmgated; random32 1×1 only)" ;;
	hsmgate-noaudit) if [ -n "$noaudit" ]; then echo "the same with \`audit: {enabled: false}\` (a third hsmgated, no audit log; ecdsa-p256-sign 2×8 only)"; else echo "$noaudit_why"; fi ;;
	hsmgate-pt) echo "hsmgate passthrough (the same gateway; partition backend pkcs11 → SoftHSMv2)" ;;
	softhsm) echo "SoftHSMv2 $(dpkg-query -W -f='${Version}' softhsm2 2>/dev/null) in-process ($softhsm)" ;;
	p11kit) echo "p11-kit $(dpkg-query -W -f='${Version}' p11-kit 2>/dev/null) RPC: p11-kit-client.so → \`p11-kit server\` → SoftHSMv2" ;;
	*) echo "$1" ;;
	esac
}

ecdsa_ops() { aggregate "$1" ecdsa-p256-sign 2 8 | cut -d'|' -f2; }
tmp_report=$dir/report.md
{
	echo "# Benchmarks"
	echo
	echo "Written by \`tools/bench/run-bench.sh\` (\`make bench\`); do not edit by hand."
	echo
	echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "- Command: \`$cmdline\` — $runs run(s) per case, ${duration} s measured after ${warmup} s warm-up, peers alternating within each case"
	echo "- Machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), Linux $(uname -r), $(openssl version | cut -d' ' -f1-2)"
	echo "- Commit: $(git rev-parse --short HEAD 2>/dev/null)$(git diff --quiet HEAD -- 2>/dev/null || echo ' (with uncommitted changes)')"
	echo "- Client and servers on the same host. This machine is shared and noisy (other builds and tests"
	echo "  ran during the measurement): compare ratios within this one run, never absolute numbers across runs."
	echo "- Servers as daemons: hsmgated and \`p11-kit server\` each run in a session of their own (setsid),"
	echo "  apart from the benchmark client's (docs/PERFORMANCE.md, \"Servers in a session of their own\")."
	echo
	echo "Peers:"
	for p in $peers hsmgate-async hsmgate-noaudit; do echo "- **$p**: $(peer_desc "$p")"; done
	[ $passthrough = 1 ] || echo "- **hsmgate-pt**: not yet available — the built hsmgate-worker does not implement \`backend: pkcs11\` yet."
	echo
	echo "How it is measured: \`hsmgate-bench\` (tools/hsmgate-bench). \"T×K\" = T threads × K in flight ="
	echo "T·K application threads, each with its own session and key (a PKCS #11 call is synchronous per"
	echo "thread; our client module pipelines the threads' calls over its one TLS connection, the others"
	echo "get the same threads). An operation is an init and its call (C_SignInit + C_Sign ...); our"
	echo "module sends an init it has seen succeed together with that call (docs/PKCS11.md, deviation 17),"
	echo "so for us it is one round trip, for p11-kit two. Each worker verifies one result with OpenSSL (or by decrypting through the"
	echo "module) before timing. ops/s: median of the runs (min–max); latencies: medians of the runs'"
	echo "p50/p99/p99.9, in µs; cpu: CPU µs per operation of the client process / of the server processes"
	echo "(hsmgated and its workers; p11-kit server and its p11-kit-remote); rss: peak RSS (VmHWM, KiB) of"
	echo "the server processes, summed."
	echo
	echo "## The bars of issue 6"
	echo
	echo "| bar | measured | ratio | met? |"
	echo "|---|---|---|---|"
	h=$(ecdsa_ops hsmgate); pk=$(ecdsa_ops p11kit); sh=$(ecdsa_ops softhsm)
	r1=$(ratio "$h" "$pk"); r2=$(ratio "$h" "$sh")
	met() { awk -v r="$1" -v want="$2" -v dir="${3:-ge}" 'BEGIN { if (r == "n/a") print "n/a"; else if ((dir == "ge" && r + 0 >= want) || (dir == "le" && r + 0 <= want)) print "yes"; else print "**no**" }'; }
	echo "| ecdsa-p256-sign 2×8 ≥ 3× p11-kit | hsmgate ${h:-–}/s, p11-kit ${pk:-–}/s | $r1 | $(met "$r1" 3) |"
	echo "| ecdsa-p256-sign 2×8 ≥ 1× SoftHSMv2 in-process | hsmgate ${h:-–}/s, SoftHSMv2 ${sh:-–}/s | $r2 | $(met "$r2" 1) |"
	h=$(aggregate hsmgate rsa2048-sign 2 1 | cut -d'|' -f2)
	r3=$(ratio "$h" "$ossl_rsa")
	echo "| rsa2048-sign 2 threads ≥ 0.9× \`openssl speed -multi 2 rsa2048\` | hsmgate ${h:-–}/s, OpenSSL ${ossl_rsa:-–} sign/s | $r3 | $(met "$r3" 0.9) |"
	h=$(aggregate hsmgate-async random32 1 1 | cut -d'|' -f5); pk=$(aggregate p11kit random32 1 1 | cut -d'|' -f5)
	r4=$(ratio "$h" "$pk")
	echo "| random32 1×1 p50 ≤ p11-kit's p50, audit \`async\` | hsmgate-async ${h:-–} µs, p11-kit ${pk:-–} µs | $r4 | $(met "$r4" 1 le) |"
	h=$(aggregate hsmgate aes256-gcm-encrypt-4k 2 1 | cut -d'|' -f2); sh=$(aggregate softhsm aes256-gcm-encrypt-4k 2 1 | cut -d'|' -f2)
	r5=$(ratio "$h" "$sh")
	echo "| aes256-gcm-encrypt-4k 2 threads ≥ 0.5× SoftHSMv2 in-process | hsmgate ${h:-–}/s, SoftHSMv2 ${sh:-–}/s | $r5 | $(met "$r5" 0.5) |"
	bar6="1,000 idle logged-in connections: ≤ 100 KiB RSS each, ecdsa −20% at most"
	if [ -z "$idle_json" ]; then
		if [ "$idle_conns" = 0 ]; then
			echo "| $bar6 | not measured (BENCH_IDLE_CONNS=0) | | n/a |"
		else
			echo "| $bar6 | not measured: the hsmgated for it did not start | | n/a |"
		fi
	elif jq -e '.results[0].status == "ok"' "$idle_json" >/dev/null 2>&1; then
		IFS=$'\t' read -r n kib before held hh hr nr <<<"$(jq -r '.results[0] | [.held,
			.server_kib_per_conn, .server_rss_before_kib, .server_rss_held_kib,
			.measured_held.ops_per_s, .measured_released.ops_per_s,
			(.measured_held.runs_ops_per_s | length)] | @tsv' "$idle_json")"
		ir=$(ratio "$hh" "$hr")
		m=$(awk -v n="$n" -v k="$kib" -v r="$ir" 'BEGIN { if (r == "n/a") print "n/a";
			else if (n >= 1000 && k <= 100 && r >= 0.8) print "yes"; else print "**no**" }')
		printf '| %s | %s held by a fresh hsmgated: its and its workers'"'"' RSS %s → %s KiB = %.1f KiB per connection; ecdsa-p256-sign 2×8 beside them %.0f/s, after their release %.0f/s (medians of %s runs) | %.1f KiB; %s | %s |\n' \
			"$bar6" "$n" "$before" "$held" "$kib" "$hh" "$hr" "$nr" "$kib" "$ir" "$m"
	else
		msg=$(jq -r '.results[0].message // empty' "$idle_json" 2>/dev/null)
		[ -n "$msg" ] || msg="exit $idle_rc: $(tr '\n' ' ' <"$idle_json.err" | cut -c1-200)"
		echo "| $bar6 | failed: $(sed 's/|/\\|/g' <<<"$msg") | | **no** |"
	fi
	echo
	echo "\"n/a\": a side of the ratio has no figure (the operation is unsupported there; see below)."
	if [ -n "$idle_json" ]; then
		echo
		echo "Idle connections: \`hsmgate-bench --op idle-conns --conns $idle_conns\` against a fresh hsmgated: one"
		echo "process per connection (our client module keeps one connection per process), started 50 at a"
		echo "time, each running C_Initialize, C_OpenSession, C_Login and then blocking. KiB per connection ="
		echo "(VmRSS of hsmgated and its workers while all are held − before the first) / connections held;"
		echo "ratio = ecdsa-p256-sign 2×8 ops/s beside them / after their release. Before its release each"
		echo "process checks with C_GetSessionInfo that its session is still logged in."
	fi
	echo
	echo "Raw OpenSSL, \`openssl speed -seconds 3 -multi 2 rsa2048 ecdsap256\` (2 processes, same machine):"
	echo "rsa2048 ${ossl_rsa:-?} sign/s, ecdsa P-256 ${ossl_ecdsa:-?} sign/s."
	echo
	echo "## The bars of issue 5"
	echo
	if [ -n "$audit_cases" ]; then
		echo "The audit log alone, in-process (\`hsmgate-bench --op audit-append,audit-verify\`, no gateway, no"
		echo "module): audit-append = 2 threads, each keeping 512 records in flight, building the event of a"
		echo "signing request as the gateway does (initiator, target, policy block; ~1 KiB of JSON) and"
		echo "appending it with \`aud_log_append\` to a fresh log in \`${TMPDIR:-/tmp}\` ($(df -PT "${TMPDIR:-/tmp}" 2>/dev/null | awk 'NR == 2 { print $2 }')) with the default"
		echo "options: durability sync (a record counts once the \`fdatasync\` covering it returned), group"
		echo "commit, a checkpoint every 1,000 records or 10 s; events/s durable, latency = append → durable."
		echo "audit-verify = \`aud_log_verify\` (the code of \`hsmgate-audit verify\`: every leaf, chain, Merkle root"
		echo "and checkpoint signature) over a log of 100,000 such events in the page cache, 1 thread."
	else
		echo "The in-process audit operations were skipped (BENCH_AUDIT=0)."
	fi
	echo
	echo "| bar | measured | ratio | met? |"
	echo "|---|---|---|---|"
	IFS='|' read -r st med mn mx p50 p99 p999 cli srv rss note <<<"$(aggregate in-process audit-append 2 512)"
	if [ "$st" = ok ]; then
		r6=$(ratio "$med" 100000)
		echo "| audit append with group commit (sync) ≥ 100,000 events/s | ${med}/s (${mn}–${mx}), 2×512 in flight, append → durable p50 ${p50} µs, p99 ${p99} µs | $r6 | $(met "$r6" 1) |"
	else
		echo "| audit append with group commit (sync) ≥ 100,000 events/s | ${st/missing/not measured} $(sed 's/|/\\|/g' <<<"$note") | | n/a |"
	fi
	IFS='|' read -r st med mn mx p50 p99 p999 cli srv rss note <<<"$(aggregate in-process audit-verify 1 1)"
	if [ "$st" = ok ]; then
		r7=$(ratio "$med" 300000)
		echo "| audit verify ≥ 300,000 events/s | ${med}/s (${mn}–${mx}), one pass over ${note%% records*} records in ${p50} µs | $r7 | $(met "$r7" 1) |"
	else
		echo "| audit verify ≥ 300,000 events/s | ${st/missing/not measured} $(sed 's/|/\\|/g' <<<"$note") | | n/a |"
	fi
	h=$(ecdsa_ops hsmgate)
	if [ -n "$noaudit" ]; then
		na=$(ecdsa_ops hsmgate-noaudit); r8=$(ratio "$h" "$na")
		echo "| ecdsa-p256-sign 16 in flight (2×8), durability sync vs audit off ≥ 0.8 | hsmgate ${h:-–}/s, audit off ${na:-–}/s | $r8 | $(met "$r8" 0.8) |"
	else
		echo "| ecdsa-p256-sign 16 in flight (2×8), durability sync vs audit off ≥ 0.8 | $noaudit_why | | n/a |"
	fi
	if [ -n "$audit_cases" ]; then
		echo
		echo "| op | T×K | events/s (median) | min–max | p50 | p99 | p99.9 | cpu µs/event | note |"
		echo "|---|---|---:|---|---:|---:|---:|---:|---|"
		for c in $audit_cases; do
			IFS=: read -r op thr infl <<<"$c"
			IFS='|' read -r st med mn mx p50 p99 p999 cli srv rss note <<<"$(aggregate in-process "$op" "$thr" "$infl")"
			if [ "$st" = ok ]; then
				echo "| $op | ${thr}×${infl} | $med | $mn–$mx | $p50 | $p99 | $p999 | $cli | $note |"
			else
				echo "| $op | ${thr}×${infl} | $st | | | | | | $(sed 's/|/\\|/g' <<<"$note") |"
			fi
		done
		echo
		echo "Latencies in µs (audit-verify: one whole pass); cpu: CPU of the whole process (every thread,"
		echo "kernel included) per event. Sync appends wait for the disk: events/s follows the records in"
		echo "flight divided by the \`fdatasync\` time, which on this shared VM varies with the other I/O."
	fi
	echo
	echo "ecdsa-p256-sign 2×8 through hsmgated: with durability sync no answer leaves before the"
	echo "\`fdatasync\` that covers its event (AUDIT.md §7), so at 16 in flight the rate is at most"
	echo "16 / (the request's own time + the wait for that \`fdatasync\`); with audit off there is no wait."
	echo
	echo "## All operations"
	echo
	echo "| op | T×K | peer | ops/s (median) | min–max | p50 | p99 | p99.9 | cpu client/server µs/op | server rss KiB | note |"
	echo "|---|---|---|---:|---|---:|---:|---:|---|---:|---|"
	for c in $cases; do
		IFS=: read -r op thr infl <<<"$c"
		case_peers=$peers
		[ "$c" = random32:1:1 ] && case_peers="$peers hsmgate-async"
		[ "$c" = ecdsa-p256-sign:2:8 ] && case_peers="$case_peers $noaudit"
		for p in $case_peers; do
			IFS='|' read -r st med mn mx p50 p99 p999 cli srv rss note <<<"$(aggregate "$p" "$op" "$thr" "$infl")"
			if [ "$st" = ok ]; then
				srvcol=$srv; [ "$p" = softhsm ] && srvcol="–"
				rsscol=$rss; [ "$p" = softhsm ] && rsscol="–"
				echo "| $op | ${thr}×${infl} | $p | $med | $mn–$mx | $p50 | $p99 | $p999 | $cli / $srvcol | $rsscol | $note |"
			else
				note=$(sed 's/|/\\|/g' <<<"$note")
				echo "| $op | ${thr}×${infl} | $p | $st | | | | | | | $note |"
			fi
		done
	done
	echo
	echo "## Where the time goes"
	echo
	echo "The kernel's share (system calls, wake-ups, the audit log's fdatasync), which callgrind does"
	echo "not count, is read with perf in docs/PERFORMANCE.md, with what to optimise next."
	echo
	if [ -n "$prof_ops" ] && ls "$dir"/prof/*.tsv >/dev/null 2>&1; then
		echo "Measured with callgrind (valgrind $(valgrind --version 2>/dev/null | sed 's/valgrind-//')): instructions (Ir) per operation, 1×1,"
		echo "of the client process (hsmgate-bench + our module), hsmgated and the partition worker, and, for"
		echo "reference, SoftHSMv2 in-process doing the same operation. Per operation ="
		echo "(${prof_secs} s run − 0.01 s run) / (difference in calls), so start-up, TLS handshake, login and key set-up"
		echo "cancel out. Instructions are not time: the kernel (syscalls, socket and pipe wake-ups, context"
		echo "switches) is not counted — the measured \"cpu\" columns above include it. perf cannot help here:"
		echo "this VM exposes no hardware counters (\`perf stat -e instructions\` → not supported)."
		echo
		echo "Stages: client encode = libhsmgate-pkcs11.so; TLS = libssl + libcrypto on the client and in"
		echo "hsmgated (in hsmgated, libcrypto also hashes the audit chain); gateway + audit = hsmgated's own"
		echo "code, libevent, libc; worker = hsmgate-worker, liblmdb; crypto = libcrypto in the worker."
		for op in $prof_ops; do
			[ -s "$dir/prof/$op.tsv" ] || continue
			read -r cl cs sl ss <"$dir/prof/$op.calls"
			echo
			echo "### $op"
			echo
			echo "Profiled calls: $((cl - cs)) through hsmgate, $((sl - ss)) in SoftHSMv2 in-process (under valgrind, hence few)."
			echo
			echo "| process | object | Ir per op | share of process |"
			echo "|---|---|---:|---:|"
			for proc in client hsmgated worker softhsm-in-process; do
				awk -F'\t' -v p="$proc" '$1 == p { t += $3; o[$2] = $3 }
				END {
					if (t == 0) exit
					n = 0; for (k in o) { n++; key[n] = k }
					for (i = 2; i <= n; i++) { x = key[i]; for (j = i - 1; j >= 1 && o[key[j]] < o[x]; j--) key[j+1] = key[j]; key[j+1] = x }
					rest = 0
					for (i = 1; i <= n; i++) {
						if (i <= 5 && o[key[i]] >= t * 0.02) printf "| %s | %s | %.0f | %.0f%% |\n", p, key[i], o[key[i]], 100 * o[key[i]] / t
						else rest += o[key[i]]
					}
					if (rest > 0) printf "| %s | (rest) | %.0f | %.0f%% |\n", p, rest, 100 * rest / t
					printf "| **%s** | **total** | **%.0f** | |\n", p, t
				}' "$dir/prof/$op.tsv"
			done
			if [ -s "$dir/prof/$op.top" ]; then
				echo
				echo "Top functions by own instructions during the ${prof_secs} s run (share of that process):"
				echo
				sed 's/^/- /' "$dir/prof/$op.top"
			fi
		done
		echo
		echo "Not broken down yet: kernel time per stage (needs perf with counters or eBPF), and the operations"
		echo "other than those above."
	else
		echo "Not measured yet (BENCH_PROFILE=0, valgrind missing, or the profiled operations did not run"
		echo "through hsmgate). perf has no hardware counters in this VM (\`perf stat -e instructions\` →"
		echo "not supported)."
	fi
} >"$tmp_report"
mkdir -p "$(dirname "$out")"
cp "$tmp_report" "$out"
cp "$dir/runs.tsv" "$dir/speed.txt" "$dir/raw/" 2>/dev/null
log "wrote $out ($(($(date +%s) - start_s)) s)"
exit 0
