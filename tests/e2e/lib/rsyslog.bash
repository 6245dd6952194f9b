# tests/e2e/lib/rsyslog.bash — what tests/e2e/syslog.sh and tests/e2e/relp.sh share (sourced,
# bash; the name does not end in .sh, so tests/run.sh does not run it as a test): a throw-away
# directory with a dev PKI, a real rsyslogd on a free loopback port with the caller's own
# configuration, the event generator, `hsmgate-audit forward`, and the comparison of what
# rsyslog wrote with what the log holds.
#
# The caller sets NAME (the prefix of its PASS/FAIL names), then:
#   rs_init PACKAGES MODULE.so...   checks tools and modules; makes $T, $T/pki (with a client
#                                   certificate "forwarder"), $PORT, $RAW
#   SINK_URL=scheme://127.0.0.1:$PORT
#   writes $T/rsyslog.conf          every raw message (template "%rawmsg%\n") to $RAW
#   rs_setup                        rsyslogd -N1, then rs_start
# Prints PASS/FAIL lines; KEEP=1 keeps $T.
set -u
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$TOP/$BUILD ;; esac
AUDIT=$BUILD/bin/hsmgate-audit
GEN=$BUILD/tests/audit/test_sink
RSYSLOGD=${RSYSLOGD:-$(command -v rsyslogd || echo /usr/sbin/rsyslogd)}
RSYSLOG_MODDIR=${RSYSLOG_MODDIR:-/usr/lib/x86_64-linux-gnu/rsyslog}
T=
RS_PID=
FWD_PID=
GEN_PID=

pass() { echo "PASS $1"; }
fail() {
	echo "FAIL $1"
	shift
	for l in "$@"; do echo "  $l"; done
}

rs_cleanup() {
	[ -n "$FWD_PID" ] && kill "$FWD_PID" 2>/dev/null && wait "$FWD_PID" 2>/dev/null
	[ -n "$GEN_PID" ] && kill "$GEN_PID" 2>/dev/null && wait "$GEN_PID" 2>/dev/null
	rs_stop
	[ -n "$T" ] || return 0
	if [ "${KEEP:-0}" = 1 ]; then echo "kept $T"; else rm -rf "$T"; fi
}

rs_init() { # PACKAGES MODULE.so...
	local pkgs=$1 m
	shift
	for m in "$RSYSLOGD" "${@/#/$RSYSLOG_MODDIR/}"; do
		if [ ! -e "$m" ]; then
			fail "$NAME-setup" "$pkgs not installed (no $m; make deps)"
			exit 1
		fi
	done
	if [ ! -x "$AUDIT" ] || [ ! -x "$GEN" ]; then
		fail "$NAME-setup" "build first (make tests): $AUDIT, $GEN"
		exit 1
	fi
	T=$(mktemp -d "${TMPDIR:-/tmp}/hsmgate-e2e-$NAME-XXXXXX")
	trap rs_cleanup EXIT
	if ! "$TOP/tools/hsmgate-dev-pki" "$T/pki" forwarder >/dev/null; then
		fail "$NAME-setup" "dev-pki failed"
		exit 1
	fi
	# A free loopback port: bind 0, read it back, release it.
	PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])')
	mkdir -p "$T/rs-work" "$T/out"
	RAW=$T/out/raw.log
	LOG=$T/log
}

# Whether something listens on 127.0.0.1:$PORT (from /proc, so that rsyslog does not log a
# connection that never completes its TLS handshake).
rs_listening() {
	awk -v p="$(printf ':%04X' "$PORT")" '
		NR > 1 && $4 == "0A" && substr($2, length($2) - 4) == p { found = 1 }
		END { exit !found }' /proc/net/tcp
}
rs_start() {
	"$RSYSLOGD" -n -f "$T/rsyslog.conf" -i "$T/rsyslog.pid" -M "$RSYSLOG_MODDIR" \
		>>"$T/rsyslogd.log" 2>&1 &
	RS_PID=$!
	for _ in $(seq 1 100); do
		rs_listening && return 0
		kill -0 "$RS_PID" 2>/dev/null || break
		sleep 0.1
	done
	return 1
}
rs_stop() { # [SIGNAL], TERM by default
	if [ -n "$RS_PID" ]; then
		kill -s "${1:-TERM}" "$RS_PID" 2>/dev/null
		wait "$RS_PID" 2>/dev/null
		RS_PID=
		# A crash leaves the pid file; rsyslogd refuses to start if its pid is alive again.
		rm -f "$T/rsyslog.pid"
	fi
}
rs_setup() {
	if ! "$RSYSLOGD" -N1 -f "$T/rsyslog.conf" -M "$RSYSLOG_MODDIR" >"$T/rsyslogd-check.log" 2>&1
	then
		fail "$NAME-setup" "rsyslogd -N1 refused the config:" \
			"$(tail -5 "$T/rsyslogd-check.log")"
		exit 1
	fi
	if ! rs_start; then
		fail "$NAME-setup" "rsyslogd did not start:" "$(tail -5 "$T/rsyslogd.log")"
		exit 1
	fi
}

gen() { # first count delay_ms
	HSMGATE_SINK_GEN_DIR=$LOG HSMGATE_SINK_GEN_FIRST=$1 HSMGATE_SINK_GEN_COUNT=$2 \
		HSMGATE_SINK_GEN_DELAY_MS=$3 "$GEN"
}
forward() { # options (--once, --follow, ...)
	"$AUDIT" forward --log "$LOG" --sink "$SINK_URL" --cursor "$T/cursor" \
		--ca "$T/pki/ca.crt" --cert "$T/pki/client-forwarder.crt" \
		--key "$T/pki/client-forwarder.key" --hostname gw1.test "$@"
}
# forward_bg STDERR-FILE options: forward in the background, FWD_PID the forwarder itself
# (a function run with & would be a subshell).
forward_bg() {
	local err=$1
	shift
	"$AUDIT" forward --log "$LOG" --sink "$SINK_URL" --cursor "$T/cursor" \
		--ca "$T/pki/ca.crt" --cert "$T/pki/client-forwarder.crt" \
		--key "$T/pki/client-forwarder.key" --hostname gw1.test "$@" 2>"$err" &
	FWD_PID=$!
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
	local sd='\[hsmgate@32473 origin="[^"]*" seq="([0-9]+)" '
	sd+='leaf="[0-9a-f]{64}" chain="[0-9a-f]{64}"\]'
	sed -E -n 's/^.* '"$sd"' (\{.*)$/\1\t\2/p' "$RAW" 2>/dev/null |
		LC_ALL=C sort >"$T/received-all"
	LC_ALL=C sort -u "$T/received-all" >"$T/received"
}
cursor_next() { sed -n 's/^next //p' "$T/cursor" 2>/dev/null; }
log_head() {
	"$AUDIT" export --log "$LOG" --format jsonl | tail -n 1 |
		python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["seq"] + 1)'
}

# check_once MIN WAIT: after `forward --once`, within WAIT tenths of a second (1: now),
# rsyslog has written every event of the log once, MSG byte-identical (at least MIN events);
# the cursor is at the head; every message has our RFC 5424 header.
check_once() {
	local min=$1 tries=$2 n_exp
	expected
	for _ in $(seq 1 "$tries"); do
		received
		[ "$(wc -l <"$T/received-all")" -ge "$(wc -l <"$T/expected")" ] && break
		sleep 0.1
	done
	n_exp=$(wc -l <"$T/expected")
	if [ "$n_exp" -ge "$min" ] && cmp -s "$T/expected" "$T/received" &&
		[ "$(wc -l <"$T/received-all")" -eq "$n_exp" ]; then
		pass "$NAME-every-event-once-byte-identical ($n_exp events)"
	else
		fail "$NAME-every-event-once-byte-identical" \
			"expected $n_exp, received $(wc -l <"$T/received-all")" \
			"$(diff "$T/expected" "$T/received" | head -5)"
	fi
	if [ "$(cursor_next)" = "$(log_head)" ]; then
		pass "$NAME-cursor-at-head"
	else
		fail "$NAME-cursor-at-head" "cursor $(cursor_next), head $(log_head)"
	fi
	# Every message is RFC 5424 with facility log-audit (13) and our APP-NAME.
	local hdr='^<1(06|08|10)>1 [0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z '
	hdr+='gw1\.test hsmgate [0-9]+ [^ ]+ \[hsmgate@32473 '
	if grep -Eqv "$hdr" "$RAW"; then
		fail "$NAME-header" "$(grep -Ev '^<1(06|08|10)>1 ' "$RAW" | head -2)"
	else
		pass "$NAME-header"
	fi
}

# follow_restart SIGNAL FIRST COUNT DELAY_MS STDERR-FILE: a generator appends COUNT events
# (FIRST: its event numbering) DELAY_MS apart while `forward --follow` runs; 1.5 s in, rsyslog
# is stopped with SIGNAL and 1.5 s later started again; then follow_finish.
follow_restart() {
	local sig=$1 first=$2 count=$3 delay=$4 err=$5
	gen "$first" "$count" "$delay" 2>>"$T/gen.log" &
	GEN_PID=$!
	forward_bg "$err" --follow
	sleep 1.5
	rs_stop "$sig"
	sleep 1.5
	rs_restart
	follow_finish
}
rs_restart() {
	rs_start && return 0
	fail "$NAME-restart" "rsyslogd did not restart:" "$(tail -5 "$T/rsyslogd.log")"
	return 1
}
# follow_finish: waits for the generator (GEN_PID) and for the cursor to reach the head (30 s
# at most), then stops the forwarder (FWD_PID, SIGTERM). Sets GEN_RC, FWD_RC, HEAD.
follow_finish() {
	wait "$GEN_PID"
	GEN_RC=$?
	GEN_PID=
	HEAD=$(log_head)
	for _ in $(seq 1 300); do
		[ "$(cursor_next)" = "$HEAD" ] && break
		sleep 0.1
	done
	kill "$FWD_PID" 2>/dev/null
	wait "$FWD_PID"
	FWD_RC=$?
	FWD_PID=
}

# check_follow PREFIX MIN STDERR-FILE [NOTE], after follow_finish: PREFIX-follow-cursor-at-head,
# PREFIX-restart-none-missing (at least MIN events; duplicates allowed; NOTE added to the
# PASS line), PREFIX-outage-was-seen ("retry in" in the forwarder's log).
check_follow() {
	local p=$1 min=$2 err=$3 note=${4:+, $4} n_exp missing extra dups
	if [ "$GEN_RC" -eq 0 ] && [ "$FWD_RC" -eq 0 ] && [ "$(cursor_next)" = "$HEAD" ]; then
		pass "$p-follow-cursor-at-head"
	else
		fail "$p-follow-cursor-at-head" \
			"generator rc $GEN_RC, forward rc $FWD_RC" \
			"cursor $(cursor_next), head $HEAD" \
			"$(tail -5 "$err")"
	fi
	sleep 0.5
	expected
	received
	n_exp=$(wc -l <"$T/expected")
	missing=$(LC_ALL=C comm -23 "$T/expected" "$T/received" | wc -l)
	extra=$(LC_ALL=C comm -13 "$T/expected" "$T/received" | wc -l)
	dups=$(($(wc -l <"$T/received-all") - $(wc -l <"$T/received")))
	if [ "$n_exp" -ge "$min" ] && [ "$missing" -eq 0 ] && [ "$extra" -eq 0 ]; then
		pass "$p-restart-none-missing ($n_exp events, $dups duplicates$note)"
	else
		fail "$p-restart-none-missing" \
			"expected $n_exp, missing $missing, unexpected $extra, duplicates $dups" \
			"$(LC_ALL=C comm -23 "$T/expected" "$T/received" | head -3 | cut -c1-120)"
	fi
	if grep -q 'retry in' "$err"; then
		pass "$p-outage-was-seen"
	else
		fail "$p-outage-was-seen" "the forwarder never noticed rsyslog was down" \
			"$(tail -3 "$err")"
	fi
}

# Under SANITIZE=1 the forwarder is built with ASan/UBSan: a report in any of its logs
# ($T/forward*.log) is a failure even when every event arrived.
check_sanitizer() {
	local re='ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:'
	if grep -Eqs "$re" "$T"/forward*.log; then
		fail "$NAME-forwarder-sanitizer-clean" \
			"$(grep -Eh 'ERROR:|runtime error:' "$T"/forward*.log | head -3)"
	else
		pass "$NAME-forwarder-sanitizer-clean"
	fi
}
