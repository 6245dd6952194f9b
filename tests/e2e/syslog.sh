#!/usr/bin/env bash
# tests/e2e/syslog.sh — the syslog sink against a real rsyslog (Debian rsyslog +
# rsyslog-gnutls), started here on loopback with its own configuration: an RFC 5425
# receiver (imtcp, gtls stream driver, TLS only, client certificate required) that writes
# every raw message to a file.
#
#   1. a log of events (written by the real audit writer) is forwarded with
#      `hsmgate-audit forward --once`: rsyslog has every event once, MSG byte-identical to
#      the stored event JSON, with its seq in the structured data, and the cursor is at the
#      log's head;
#   2. events keep coming while `forward --follow` runs; rsyslog is stopped mid-run and
#      started again: in the end every event is there (duplicates allowed, none missing).
#
# The events come from build/tests/audit/test_sink run as a generator
# (HSMGATE_SINK_GEN_DIR; see tests/audit/test_sink.c). Prints PASS/FAIL lines.
set -u
TOP=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$TOP/$BUILD ;; esac
AUDIT=$BUILD/bin/hsmgate-audit
GEN=$BUILD/tests/audit/test_sink
RSYSLOGD=${RSYSLOGD:-$(command -v rsyslogd || echo /usr/sbin/rsyslogd)}
RSYSLOG_MODDIR=${RSYSLOG_MODDIR:-/usr/lib/x86_64-linux-gnu/rsyslog}

if [ ! -x "$RSYSLOGD" ] || [ ! -e "$RSYSLOG_MODDIR/lmnsd_gtls.so" ]; then
	echo "FAIL syslog-setup: rsyslog and rsyslog-gnutls are not installed (make deps)"
	exit 1
fi
if [ ! -x "$AUDIT" ] || [ ! -x "$GEN" ]; then
	echo "FAIL syslog-setup: build first (make tests): $AUDIT, $GEN"
	exit 1
fi

T=$(mktemp -d "${TMPDIR:-/tmp}/hsmgate-e2e-syslog-XXXXXX")
RS_PID=
FWD_PID=
GEN_PID=
cleanup() {
	[ -n "$FWD_PID" ] && kill "$FWD_PID" 2>/dev/null && wait "$FWD_PID" 2>/dev/null
	[ -n "$GEN_PID" ] && kill "$GEN_PID" 2>/dev/null && wait "$GEN_PID" 2>/dev/null
	rs_stop
	if [ "${KEEP:-0}" = 1 ]; then echo "kept $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT

pass() { echo "PASS $1"; }
fail() {
	echo "FAIL $1"
	shift
	for l in "$@"; do echo "  $l"; done
}

"$TOP/tools/hsmgate-dev-pki" "$T/pki" forwarder >/dev/null || { fail syslog-setup "dev-pki failed"; exit 1; }

# A free loopback port: bind 0, read it back, release it.
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$T/rs-work" "$T/out"
RAW=$T/out/raw.log
cat >"$T/rsyslog.conf" <<EOF
global(workDirectory="$T/rs-work" maxMessageSize="64k"
       DefaultNetstreamDriver="gtls"
       DefaultNetstreamDriverCAFile="$T/pki/ca.crt"
       DefaultNetstreamDriverCertFile="$T/pki/server.crt"
       DefaultNetstreamDriverKeyFile="$T/pki/server.key")
# StreamDriver.Mode 1: TLS only. x509/name: the client must present a certificate from the
# CA whose name is a permitted peer (the forwarder's CN).
module(load="imtcp" StreamDriver.Name="gtls" StreamDriver.Mode="1"
       StreamDriver.AuthMode="x509/name" PermittedPeer=["forwarder"])
input(type="imtcp" address="127.0.0.1" port="$PORT" ruleset="siem")
template(name="raw5424" type="string" string="%rawmsg%\n")
ruleset(name="siem") {
	action(type="omfile" file="$RAW" template="raw5424" flushOnTXEnd="on")
}
EOF

rs_start() {
	"$RSYSLOGD" -n -f "$T/rsyslog.conf" -i "$T/rsyslog.pid" -M "$RSYSLOG_MODDIR" \
		>>"$T/rsyslogd.log" 2>&1 &
	RS_PID=$!
	# Ready when it accepts TCP connections.
	for _ in $(seq 1 100); do
		if python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$PORT),0.2)" 2>/dev/null; then
			return 0
		fi
		kill -0 "$RS_PID" 2>/dev/null || break
		sleep 0.1
	done
	return 1
}
# RS_STOP_SIGNAL=KILL makes the mid-run stop a crash (not part of the pass criteria: with
# plain syslog a message rsyslog had read but not yet written may be lost; see AUDIT.md §8.3).
rs_stop() {
	if [ -n "$RS_PID" ]; then
		kill -s "${1:-TERM}" "$RS_PID" 2>/dev/null
		wait "$RS_PID" 2>/dev/null
		RS_PID=
	fi
}

if ! "$RSYSLOGD" -N1 -f "$T/rsyslog.conf" -M "$RSYSLOG_MODDIR" >"$T/rsyslogd-check.log" 2>&1; then
	fail syslog-setup "rsyslogd -N1 refused the config:" "$(tail -5 "$T/rsyslogd-check.log")"
	exit 1
fi
if ! rs_start; then
	fail syslog-setup "rsyslogd did not start:" "$(tail -5 "$T/rsyslogd.log")"
	exit 1
fi

LOG=$T/log
gen() { # first count delay_ms
	HSMGATE_SINK_GEN_DIR=$LOG HSMGATE_SINK_GEN_FIRST=$1 HSMGATE_SINK_GEN_COUNT=$2 \
		HSMGATE_SINK_GEN_DELAY_MS=$3 "$GEN"
}
forward() {
	"$AUDIT" forward --log "$LOG" --sink "syslog://127.0.0.1:$PORT" --cursor "$T/cursor" \
		--ca "$T/pki/ca.crt" --cert "$T/pki/client-forwarder.crt" \
		--key "$T/pki/client-forwarder.key" --hostname gw1.test "$@"
}

# What must arrive: "seq<TAB>event JSON" for every event record of the log.
expected() {
	"$AUDIT" export --log "$LOG" --format jsonl |
		python3 -c '
import json, sys
for line in sys.stdin:
    r = json.loads(line)
    if r.get("type") != "C":
        print(r["seq"])' >"$T/seqs"
	"$AUDIT" export --log "$LOG" --format cadf >"$T/events"
	paste "$T/seqs" "$T/events" | LC_ALL=C sort -u >"$T/expected"
}
# What arrived: "seq<TAB>MSG" for every message rsyslog wrote (MSG after the SD element).
received() {
	sed -E -n 's/^.* \[hsmgate@32473 origin="[^"]*" seq="([0-9]+)" leaf="[0-9a-f]{64}" chain="[0-9a-f]{64}"\] (\{.*)$/\1\t\2/p' \
		"$RAW" 2>/dev/null | LC_ALL=C sort >"$T/received-all"
	LC_ALL=C sort -u "$T/received-all" >"$T/received"
}
cursor_next() { sed -n 's/^next //p' "$T/cursor" 2>/dev/null; }
log_head() {
	"$AUDIT" export --log "$LOG" --format jsonl | tail -n 1 |
		python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["seq"] + 1)'
}

# ---- 1. every event once, byte-identical -------------------------------------------------
if ! gen 0 200 0 2>"$T/gen.log"; then
	fail syslog-generate "$(cat "$T/gen.log")"
	exit 1
fi
if forward --once 2>"$T/forward1.log"; then
	pass syslog-forward-once-exit
else
	fail syslog-forward-once-exit "$(tail -5 "$T/forward1.log")"
fi
expected
# rsyslog writes asynchronously: give its queue a moment.
for _ in $(seq 1 50); do
	received
	[ "$(wc -l <"$T/received-all")" -ge "$(wc -l <"$T/expected")" ] && break
	sleep 0.1
done
n_exp=$(wc -l <"$T/expected")
if [ "$n_exp" -ge 200 ] && cmp -s "$T/expected" "$T/received" &&
	[ "$(wc -l <"$T/received-all")" -eq "$n_exp" ]; then
	pass "syslog-every-event-once-byte-identical ($n_exp events)"
else
	fail syslog-every-event-once-byte-identical "expected $n_exp, received $(wc -l <"$T/received-all")" \
		"$(diff "$T/expected" "$T/received" | head -5)"
fi
if [ "$(cursor_next)" = "$(log_head)" ]; then
	pass syslog-cursor-at-head
else
	fail syslog-cursor-at-head "cursor $(cursor_next), head $(log_head)"
fi
# Every message is RFC 5424 with facility log-audit (13) and our APP-NAME.
if grep -Eqv '^<1(06|08|10)>1 [0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z gw1\.test hsmgate [0-9]+ [^ ]+ \[hsmgate@32473 ' "$RAW"; then
	fail syslog-header "$(grep -Ev '^<1(06|08|10)>1 ' "$RAW" | head -2)"
else
	pass syslog-header
fi

# ---- 1b. a forwarder without a client certificate: rsyslog completes the TLS 1.3 handshake,
# then rejects the peer and drops its data. The write "succeeded"; the cursor must not move.
before=$(wc -l <"$RAW")
timeout -s INT 6 "$AUDIT" forward --log "$LOG" --sink "syslog://127.0.0.1:$PORT" \
	--cursor "$T/cursor-nocert" --ca "$T/pki/ca.crt" --once 2>"$T/forward-nocert.log"
rc=$?
if [ "$rc" -ne 0 ] && [ ! -e "$T/cursor-nocert" ] && [ "$(wc -l <"$RAW")" -eq "$before" ]; then
	pass syslog-rejected-client-not-acknowledged
else
	fail syslog-rejected-client-not-acknowledged "exit $rc, cursor $(cat "$T/cursor-nocert" 2>/dev/null | tail -1)" \
		"$(tail -3 "$T/forward-nocert.log")"
fi

# ---- 2. rsyslog stopped and restarted mid-run ---------------------------------------------
gen 200 300 10 2>>"$T/gen.log" &
GEN_PID=$!
# Not through the forward() function: $! must be the forwarder itself, not a subshell.
"$AUDIT" forward --log "$LOG" --sink "syslog://127.0.0.1:$PORT" --cursor "$T/cursor" \
	--ca "$T/pki/ca.crt" --cert "$T/pki/client-forwarder.crt" \
	--key "$T/pki/client-forwarder.key" --hostname gw1.test --follow 2>"$T/forward2.log" &
FWD_PID=$!
sleep 1.5
rs_stop "${RS_STOP_SIGNAL:-TERM}"
sleep 1.5
if ! rs_start; then
	fail syslog-restart "rsyslogd did not restart:" "$(tail -5 "$T/rsyslogd.log")"
fi
wait "$GEN_PID"
gen_rc=$?
GEN_PID=
head=$(log_head)
for _ in $(seq 1 300); do
	[ "$(cursor_next)" = "$head" ] && break
	sleep 0.1
done
kill "$FWD_PID" 2>/dev/null
wait "$FWD_PID"
fwd_rc=$?
FWD_PID=
if [ "$gen_rc" -eq 0 ] && [ "$fwd_rc" -eq 0 ] && [ "$(cursor_next)" = "$head" ]; then
	pass syslog-follow-cursor-at-head
else
	fail syslog-follow-cursor-at-head "generator rc $gen_rc, forward rc $fwd_rc, cursor $(cursor_next), head $head" \
		"$(tail -5 "$T/forward2.log")"
fi
sleep 0.5
expected
received
n_exp=$(wc -l <"$T/expected")
missing=$(LC_ALL=C comm -23 "$T/expected" "$T/received" | wc -l)
extra=$(LC_ALL=C comm -13 "$T/expected" "$T/received" | wc -l)
dups=$(($(wc -l <"$T/received-all") - $(wc -l <"$T/received")))
if [ "$n_exp" -ge 500 ] && [ "$missing" -eq 0 ] && [ "$extra" -eq 0 ]; then
	pass "syslog-restart-none-missing ($n_exp events, $dups duplicates)"
else
	fail syslog-restart-none-missing "expected $n_exp, missing $missing, unexpected $extra, duplicates $dups" \
		"$(LC_ALL=C comm -23 "$T/expected" "$T/received" | head -3 | cut -c1-120)"
fi
if grep -q 'retry in' "$T/forward2.log"; then
	pass syslog-outage-was-seen
else
	fail syslog-outage-was-seen "the forwarder never noticed rsyslog was down" "$(tail -3 "$T/forward2.log")"
fi
# Under SANITIZE=1 the forwarder is built with ASan/UBSan: a report is a failure even when
# every event arrived.
if grep -Eqs 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$T"/forward*.log; then
	fail syslog-forwarder-sanitizer-clean "$(grep -Eh 'ERROR:|runtime error:' "$T"/forward*.log | head -3)"
else
	pass syslog-forwarder-sanitizer-clean
fi
