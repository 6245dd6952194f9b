#!/usr/bin/env bash
# tests/e2e/relp.sh — the relp sink against a real rsyslog (Debian rsyslog + rsyslog-relp),
# started here on loopback with its own configuration: a RELP receiver (imrelp, TLS from the
# first byte, client certificate required and its name checked) whose ruleset has no queue,
# so that rsyslog answers "200 OK" to a message only after omfile has written it to a file.
#
#   1. a log of events (written by the real audit writer) is forwarded with
#      `hsmgate-audit forward --once`: as soon as it returns, rsyslog has every event once,
#      MSG byte-identical to the stored event JSON, with its seq in the structured data, and
#      the cursor is at the log's head. RELP answers are real acknowledgements, so --once
#      returns without the syslog sink's settle wait (its time is printed);
#   2. a forwarder without a client certificate, and one whose certificate names a peer
#      that is not permitted, are refused: nothing acknowledged, nothing written, and they
#      keep retrying until interrupted (exit non-zero);
#   3. events keep coming while `forward --follow` runs; rsyslog is stopped (TERM) mid-run
#      and started again: in the end every event is there (duplicates allowed, none
#      missing), the cursor is at the head;
#   4. the same with rsyslog killed (KILL) in the middle of a burst, messages in flight.
#      What rsyslog acknowledged it had written, so nothing may be missing even after a
#      crash: the point of RELP over plain syslog (AUDIT.md §8.3). RELP_QUEUE=memory puts
#      rsyslog's usual in-memory queue back between imrelp and the file (a "200" then only
#      means queued): a crash may then lose acknowledged events and this case may fail (as
#      may case 1, which reads the file the moment --once returns).
#
# The events come from build/tests/audit/test_sink run as a generator
# (HSMGATE_SINK_GEN_DIR; see tests/audit/test_sink.c); the rsyslog, generator and comparison
# helpers are shared with syslog.sh (tests/e2e/lib/rsyslog.bash). Prints PASS/FAIL lines.
NAME=relp
. "$(dirname "$0")/lib/rsyslog.bash"

rs_init "rsyslog and rsyslog-relp are" imrelp.so
SINK_URL=relp://127.0.0.1:$PORT
if ! "$TOP/tools/hsmgate-dev-pki" "$T/pki" intruder >/dev/null; then
	fail relp-setup "dev-pki failed"
	exit 1
fi
queue='queue.type="Direct"'
[ "${RELP_QUEUE:-direct}" = memory ] && queue=
cat >"$T/rsyslog.conf" <<EOC
global(workDirectory="$T/rs-work" maxMessageSize="64k")
module(load="imrelp")
# tls="on": TLS from the first byte (librelp with GnuTLS, its default tls.tlslib).
# authMode "name": the client must present a certificate from tls.caCert whose name (dNSName,
# else CN) is a permitted peer (the forwarder's CN).
input(type="imrelp" address="127.0.0.1" port="$PORT" ruleset="siem"
      tls="on" tls.caCert="$T/pki/ca.crt" tls.myCert="$T/pki/server.crt"
      tls.myPrivKey="$T/pki/server.key" tls.authMode="name" tls.permittedPeer=["forwarder"])
template(name="raw5424" type="string" string="%rawmsg%\n")
# queue.type="Direct": no queue, the ruleset runs in imrelp's thread before librelp sends
# "200 OK", and omfile (asyncWriting off, flushOnTXEnd on: its defaults, spelled out; one
# message per transaction) has called write(2) by then: a "200" survives a crash of rsyslogd
# (not of the machine). Without it, imrelp answers once the message is in the main queue.
ruleset(name="siem" $queue) {
	action(type="omfile" file="$RAW" template="raw5424" asyncWriting="off" flushOnTXEnd="on")
}
EOC
rs_setup

# ---- 1. every event once, byte-identical, acknowledged when written -----------------------
if ! gen 0 200 0 2>"$T/gen.log"; then
	fail relp-generate "$(cat "$T/gen.log")"
	exit 1
fi
t0=$(date +%s%N)
forward --once 2>"$T/forward1.log"
rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
# Only a generous bound: the time is printed, not judged (a loaded machine is slow).
if [ "$rc" -eq 0 ] && [ "$ms" -lt 8000 ]; then
	pass "relp-forward-once-exit ($ms ms)"
else
	fail relp-forward-once-exit "exit $rc after $ms ms" "$(tail -5 "$T/forward1.log")"
fi
# No waiting: every "200 OK" came after the write.
check_once 200 1
# Our open, syslog and close commands drew no complaint from imrelp/librelp.
if grep -qi relp "$T/rsyslogd.log"; then
	fail relp-rsyslog-no-complaint "$(grep -i relp "$T/rsyslogd.log" | head -3)"
else
	pass relp-rsyslog-no-complaint
fi

# ---- 2. refused clients: librelp fails the TLS handshake, nothing is acknowledged ---------
refused() { # NAME forward-options...
	local name=$1 before rc running=0 next
	shift
	before=$(wc -l <"$RAW")
	"$AUDIT" forward --log "$LOG" --sink "$SINK_URL" --cursor "$T/cursor-$name" \
		--ca "$T/pki/ca.crt" "$@" --once 2>"$T/forward-$name.log" &
	FWD_PID=$!
	sleep 4
	kill -0 "$FWD_PID" 2>/dev/null && running=1
	kill -INT "$FWD_PID" 2>/dev/null
	wait "$FWD_PID"
	rc=$?
	FWD_PID=
	next=$(sed -n 's/^next //p' "$T/cursor-$name" 2>/dev/null)
	if [ "$running" = 1 ] && [ "$rc" -ne 0 ] && [ "${next:-0}" = 0 ] &&
		[ "$(wc -l <"$RAW")" -eq "$before" ] &&
		grep -q 'retry in' "$T/forward-$name.log"; then
		pass "relp-$name-not-acknowledged"
	else
		fail "relp-$name-not-acknowledged" \
			"still retrying after 4 s: $running, exit $rc, cursor ${next:-none}" \
			"rsyslog wrote $(($(wc -l <"$RAW") - before)) lines" \
			"$(tail -3 "$T/forward-$name.log")"
	fi
	# The operator is told where to look: TLS 1.3 shows the refusal only as the session
	# failing before the answer to "open".
	if grep -q 'does it accept this client certificate' "$T/forward-$name.log"; then
		pass "relp-$name-refusal-explained"
	else
		fail "relp-$name-refusal-explained" "$(head -3 "$T/forward-$name.log")"
	fi
}
refused no-client-cert
refused unpermitted-peer --cert "$T/pki/client-intruder.crt" --key "$T/pki/client-intruder.key"

# ---- 3. rsyslog stopped and restarted mid-run ---------------------------------------------
follow_restart TERM 200 300 10 "$T/forward-term.log"
check_follow relp 500 "$T/forward-term.log"

# ---- 4. rsyslog killed mid-run: nothing acknowledged is lost -----------------------------
# A burst of 10000 events (the forwarder streams them at tens of thousands a second, up to
# window_max in flight); rsyslog is killed once it has written 1000 of them, so the crash
# comes with messages in flight and acknowledged ones just written. A generator then keeps
# appending during the outage and after the restart.
before=$(wc -l <"$RAW")
forward_bg "$T/forward-kill.log" --follow
gen 500 10000 0 2>>"$T/gen.log" &
GEN_PID=$!
for _ in $(seq 1 500); do
	[ "$(wc -l <"$RAW")" -ge $((before + 1000)) ] && break
	sleep 0.01
done
rs_stop KILL
wait "$GEN_PID"
burst_rc=$?
gen 10500 300 10 2>>"$T/gen.log" &
GEN_PID=$!
sleep 1.5
rs_restart
follow_finish
[ "$burst_rc" -eq 0 ] || GEN_RC=$burst_rc
# The forwarder's first failure says how many records were unacknowledged at the crash.
inflight=$(sed -n -E '0,/ failed \(/s/.* failed \([^)]*\); ([0-9]+) record.*/\1/p' \
	"$T/forward-kill.log")
check_follow relp-crash 10800 "$T/forward-kill.log" "${inflight:-?} unacknowledged at the kill"

check_sanitizer
