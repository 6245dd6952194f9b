#!/usr/bin/env bash
# End-to-end: hsmgated streams its own audit log to three sinks configured in hsmgated.yaml
# (docs/AUDIT.md §7, §8): a JSON-lines file and a real rsyslog (Debian rsyslog +
# rsyslog-gnutls + rsyslog-relp, started here on loopback) twice: RFC 5425 over TLS, and
# RELP over TLS (imrelp), each with a client certificate.
#
#   1. calls are driven; both rsyslog inputs and the file receive every event (dedup by
#      origin + seq);
#   2. rsyslog is stopped (spool_soft 20, spool_hard 2000): serving goes on past the soft
#      limit, which leaves a critical hsmgate.audit-sink.spool event and an ALERT line; past
#      the hard limit calls get CKR_DEVICE_ERROR (0x30);
#   3. rsyslog comes back: the lag drains, serving resumes, rsyslog ends with every event
#      on both inputs (duplicates allowed, none missing) and `hsmgate-audit verify` passes;
#   4. a request refused before routing (a request id already in flight) has its event;
#   5. audit.enabled: false serves, says so loudly, and writes no log;
#   0. (first) hsmgated --check opens each sink as a start would and names a bad one.
. "$(dirname "$0")/../lib/e2e.sh"

d=$E2E_DIR
AUDIT=$BIN/hsmgate-audit
RSYSLOGD=${RSYSLOGD:-$(command -v rsyslogd || echo /usr/sbin/rsyslogd)}
RSYSLOG_MODDIR=${RSYSLOG_MODDIR:-/usr/lib/x86_64-linux-gnu/rsyslog}
if [ ! -x "$RSYSLOGD" ] || [ ! -e "$RSYSLOG_MODDIR/lmnsd_gtls.so" ] ||
	[ ! -e "$RSYSLOG_MODDIR/imrelp.so" ]; then
	fail "sinks: setup" "rsyslog, rsyslog-gnutls and rsyslog-relp are not installed (make deps)"
	exit 1
fi

# ---- rsyslog: TLS only, the forwarder's certificate required, every raw message to a file --
"$E2E_TOP/tools/hsmgate-dev-pki" "$d/siem" forwarder >/dev/null
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
RPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$d/rs-work"
RAWLOG=$d/siem-raw.log
RELPLOG=$d/relp-raw.log
cat >"$d/rsyslog.conf" <<EOF
global(workDirectory="$d/rs-work" maxMessageSize="64k"
       DefaultNetstreamDriver="gtls"
       DefaultNetstreamDriverCAFile="$d/siem/ca.crt"
       DefaultNetstreamDriverCertFile="$d/siem/server.crt"
       DefaultNetstreamDriverKeyFile="$d/siem/server.key")
module(load="imtcp" StreamDriver.Name="gtls" StreamDriver.Mode="1"
       StreamDriver.AuthMode="x509/name" PermittedPeer=["forwarder"])
input(type="imtcp" address="127.0.0.1" port="$PORT" ruleset="siem")
template(name="raw5424" type="string" string="%rawmsg%\n")
ruleset(name="siem") {
	action(type="omfile" file="$RAWLOG" template="raw5424" flushOnTXEnd="on")
}
module(load="imrelp")
input(type="imrelp" address="127.0.0.1" port="$RPORT" ruleset="relp"
      tls="on" tls.caCert="$d/siem/ca.crt" tls.myCert="$d/siem/server.crt"
      tls.myPrivKey="$d/siem/server.key" tls.authMode="name" tls.permittedPeer=["forwarder"])
ruleset(name="relp" queue.type="Direct") {
	action(type="omfile" file="$RELPLOG" template="raw5424" flushOnTXEnd="on")
}
EOF
RS_PID=
rs_start() {
	"$RSYSLOGD" -n -f "$d/rsyslog.conf" -i "$d/rsyslog.pid" -M "$RSYSLOG_MODDIR" \
		>>"$d/rsyslogd.log" 2>&1 &
	RS_PID=$!
	for _ in $(seq 1 100); do
		python3 -c "import socket; socket.create_connection(('127.0.0.1',$PORT),0.2)" 2>/dev/null &&
			return 0
		kill -0 "$RS_PID" 2>/dev/null || break
		sleep 0.1
	done
	return 1
}
rs_stop() {
	if [ -n "$RS_PID" ]; then
		kill -TERM "$RS_PID" 2>/dev/null
		wait "$RS_PID" 2>/dev/null
		RS_PID=
	fi
}
trap 'rs_stop; e2e_cleanup' EXIT
rs_start || { fail "sinks: rsyslogd starts" "$(tail -5 "$d/rsyslogd.log")"; exit 1; }

E2E_AUDIT="audit:
  dir: audit
  signing_key: audit-signing.key
  sinks:
    - name: jsonl
      url: file:events.jsonl
    - name: siem
      url: syslog://127.0.0.1:$PORT
      ca: siem/ca.crt
      cert: siem/client-forwarder.crt
      key: siem/client-forwarder.key
      hostname: gw1.test
      spool_soft: 20
      spool_hard: 2000
    - name: relp
      url: relp://127.0.0.1:$RPORT
      ca: siem/ca.crt
      cert: siem/client-forwarder.crt
      key: siem/client-forwarder.key
      hostname: gw1.test"
e2e_setup || { fail "sinks: setup" "e2e_setup failed"; exit 1; }

# ---- 0. hsmgated --check opens each sink as the start would (cursor, TLS files) -------------
# check_refused NAME SED REGEX — a copy of the config edited by SED fails --check with REGEX.
check_refused() {
	local out rc
	sed -E "$2" "$d/hsmgated.yaml" >"$d/check.yaml"
	out=$("$BIN/hsmgated" --config "$d/check.yaml" --check 2>&1)
	rc=$?
	[ $rc != 0 ] && grep -Eq -- "$3" <<<"$out" && pass "$1" || fail "$1" "rc=$rc $out"
}
expect_output "check: the sinks' configuration passes before the first start" 'configuration OK' \
	"$BIN/hsmgated" --config "$d/hsmgated.yaml" --check
check_refused "check: a sink's missing CA file is named" 's|ca: siem/ca.crt|ca: siem/nothere.crt|' \
	'audit sink siem \(syslog://127.0.0.1:[0-9]+\): cannot open: .*CA file [^ ]*nothere.crt cannot be used'
check_refused "check: a sink's client key that is not a key is named" \
	's|key: siem/client-forwarder.key|key: siem/ca.crt|' 'audit sink siem .*client key [^ ]*ca.crt cannot be used'
check_refused "check: an unknown sink URL scheme (config, file:line:column)" \
	's|url: file:events.jsonl|url: ftp://x/y|' 'check.yaml:[0-9]+:[0-9]+: audit.sinks\[0\].url: unknown URL scheme'
mkdir -p "$d/state/audit-sinks"
printf 'not a cursor\n' >"$d/state/audit-sinks/jsonl.cursor"
check_refused "check: a damaged cursor file is named" 's|^$||' 'audit sink jsonl .*cannot open.*jsonl.cursor'
rm -f "$d/state/audit-sinks/jsonl.cursor"
[ ! -e "$d/audit" ] && pass "check: created no log" || fail "check: created no log" "$(ls "$d")"

e2e_start || { fail "sinks: start" "hsmgated did not start"; exit 1; }
expect_output "check: passes beside the running gateway (its log, its cursors)" 'configuration OK' \
	"$BIN/hsmgated" --config "$d/hsmgated.yaml" --check

# The JSON of every event record (E, S, R), one per line; with seq: "seq<TAB>json".
events() { cat "$d"/audit/seg-*.log | awk -F'\t' '$1 ~ / [ESR]$/ { print $2 }'; }
events_seq() { cat "$d"/audit/seg-*.log | awk -F'\t' '$1 ~ / [ESR]$/ { split($1, h, " "); print h[2] "\t" $2 }'; }
# What rsyslog wrote ($1: the file, default the syslog input's): "seq<TAB>MSG" for every
# message (MSG after the SD element).
received() {
	sed -E -n 's/^.* \[hsmgate@32473 origin="hsmgated-e2e" seq="([0-9]+)" leaf="[0-9a-f]{64}" chain="[0-9a-f]{64}"\] (\{.*)$/\1\t\2/p' \
		"${1:-$RAWLOG}" 2>/dev/null
}
cursor_next() { sed -n 's/^next //p' "$d/state/audit-sinks/$1.cursor" 2>/dev/null; }
# One past the last event record in the log.
events_head() { events_seq | tail -n 1 | awk -F'\t' '{ print $1 + 1 }'; }
# Waits (up to $2 x 0.1 s) until sink $1's cursor has passed every event record.
wait_cursor() {
	local i head
	for i in $(seq 1 "$2"); do
		head=$(events_head)
		[ -n "$(cursor_next "$1")" ] && [ "$(cursor_next "$1")" -ge "$head" ] && return 0
		sleep 0.1
	done
	return 1
}
random_ok() { # CONF
	[ "$(p11 "$1" --slot 1 --generate-random 16 2>/dev/null | wc -c)" = 16 ]
}
# Every event of the log up to seq $1 (exclusive) is among what rsyslog received (in the
# file $2, default the syslog input's).
siem_has_all_below() {
	events_seq | awk -F'\t' -v n="$1" '$1 < n' | LC_ALL=C sort -u >"$d/expected"
	received "${2:-}" | LC_ALL=C sort -u >"$d/received"
	[ -s "$d/expected" ] && [ -z "$(LC_ALL=C comm -23 "$d/expected" "$d/received")" ]
}

# ---- 1. every sink receives every event -------------------------------------------------------
for _ in 1 2 3; do random_ok alice || break; done
check "sinks: calls are served" random_ok alice
if wait_cursor siem 100 && wait_cursor jsonl 50; then
	pass "sinks: both cursors reach the log's head"
else
	fail "sinks: both cursors reach the log's head" "siem $(cursor_next siem), jsonl $(cursor_next jsonl), head $(events_head)" \
		"$(grep component=audit-sink "$d/hsmgated.log" | tail -5)"
fi
next=$(cursor_next siem)
if siem_has_all_below "${next:-0}"; then
	pass "sinks: rsyslog has every event below the cursor ($(wc -l <"$d/expected") events, MSG byte-identical)"
else
	fail "sinks: rsyslog has every event below the cursor" \
		"missing $(LC_ALL=C comm -23 "$d/expected" "$d/received" | wc -l) of $(wc -l <"$d/expected")"
fi
if wait_cursor relp 100 && siem_has_all_below "$(cursor_next relp)" "$RELPLOG"; then
	pass "sinks: RELP: the cursor reaches the head, rsyslog has every event below it ($(wc -l <"$d/expected") events)"
else
	fail "sinks: RELP: the cursor reaches the head, rsyslog has every event below it" \
		"relp $(cursor_next relp), head $(events_head)" "$(grep 'sink=relp' "$d/hsmgated.log" | tail -3)"
fi
if events | LC_ALL=C sort -u | LC_ALL=C comm -23 - <(LC_ALL=C sort -u "$d/events.jsonl") | grep -q .; then
	fail "sinks: the file has every event" "$(events | wc -l) events, $(wc -l <"$d/events.jsonl") lines"
else
	pass "sinks: the file has every event ($(wc -l <"$d/events.jsonl") lines)"
fi

# ---- 2. rsyslog down: past soft serving goes on, past hard calls are refused ----------------
soft_alerts() { grep -c 'msg="ALERT: audit sink over its soft spool limit; events wait in the log" sink=siem' "$d/hsmgated.log"; }
soft_over() { grep -c 'msg="audit sink back under its soft spool limit" sink=siem' "$d/hsmgated.log"; }
# A soft episode of the busy moments above (syslog acknowledges after 2 s) is over first.
for i in $(seq 1 50); do [ "$(soft_alerts)" = "$(soft_over)" ] && break; sleep 0.1; done
soft_before=$(soft_alerts)
rs_stop
# The lag is checked once a second: the loop spans a few checks however fast the calls are.
for i in $(seq 1 60); do
	[ "$(soft_alerts)" -gt "$soft_before" ] && break
	random_ok alice
	sleep 0.05
done
if [ "$(soft_alerts)" -gt "$soft_before" ]; then
	pass "sinks: ALERT line for the soft limit in hsmgated's log"
else
	fail "sinks: ALERT line for the soft limit in hsmgated's log" "$(grep component=audit-sink "$d/hsmgated.log" | tail -5)"
fi
check "sinks: serving goes on past the soft limit" random_ok alice
# Past the hard limit (2000 records of lag) every call is refused with CKR_DEVICE_ERROR. The
# gap between the limits is wide because the lag is checked once a second: pkcs11-tool runs
# alone must not cross it between two checks. A burst of calls crosses it now.
HSMGATE_CONF=$d/alice.yaml timeout 60 "$STRESS" --module "$MODULE" --token a1 --threads 2 \
	--calls 1500 >/dev/null 2>&1
refused=
for i in $(seq 1 150); do
	out=$(p11 alice --slot 1 --generate-random 16 2>&1 >/dev/null)
	if grep -q 'CKR_DEVICE_ERROR (0x30)' <<<"$out"; then
		refused=$i
		break
	fi
done
if [ -n "$refused" ]; then
	pass "sinks: past the hard limit calls get CKR_DEVICE_ERROR (0x30) (after $refused runs)"
else
	fail "sinks: past the hard limit calls get CKR_DEVICE_ERROR (0x30)" "$out" \
		"$(grep component=audit-sink "$d/hsmgated.log" | tail -5)"
fi
grep -q 'level=error component=audit-sink msg="ALERT: audit sink over its hard spool limit; refusing requests with CKR_DEVICE_ERROR" sink=siem' "$d/hsmgated.log" &&
	pass "sinks: ALERT line for the hard limit" ||
	fail "sinks: ALERT line for the hard limit" "$(grep component=audit-sink "$d/hsmgated.log" | tail -5)"
expect_output "sinks: still refused while over the hard limit" 'CKR_DEVICE_ERROR \(0x30\)' \
	p11 alice --slot 1 --generate-random 16
events | grep -q '"action":"hsmgate.audit-sink.spool","outcome":"failure","severity":"critical".*sink=siem lag=[0-9]* over the soft limit 20 (hard 2000)' &&
	pass "sinks: a critical hsmgate.audit-sink.spool event for the soft limit" ||
	fail "sinks: a critical hsmgate.audit-sink.spool event for the soft limit" "$(events | grep audit-sink | tail -3)"
events | grep -q '"action":"hsmgate.audit-sink.spool","outcome":"failure","severity":"critical".*over the hard limit 2000: refusing requests' &&
	pass "sinks: a critical hsmgate.audit-sink.spool event for the hard limit" ||
	fail "sinks: a critical hsmgate.audit-sink.spool event for the hard limit" "$(events | grep audit-sink | tail -3)"
events | grep -q '"action":"hsmgate.audit-sink.fail","outcome":"failure","severity":"warning"' &&
	pass "sinks: a hsmgate.audit-sink.fail event for the outage" ||
	fail "sinks: a hsmgate.audit-sink.fail event for the outage" "$(events | grep audit-sink | tail -3)"
[ "$(events | grep -c 'over the hard limit 2000: refusing')" = 1 ] &&
	pass "sinks: one hard-limit event per episode" ||
	fail "sinks: one hard-limit event per episode" "$(events | grep -c 'over the hard limit 2000')"

# ---- 3. rsyslog back: the lag drains, serving resumes, nothing is missing --------------------
rs_start || fail "sinks: rsyslogd restarts" "$(tail -5 "$d/rsyslogd.log")"
# The runner retries with a backoff of at most 30 s; the spool check runs every second.
for i in $(seq 1 450); do
	grep -q 'msg="audit sink back under its hard spool limit; serving requests" sink=siem' "$d/hsmgated.log" && break
	sleep 0.1
done
grep -q 'msg="audit sink back under its hard spool limit; serving requests" sink=siem' "$d/hsmgated.log" &&
	pass "sinks: the lag drains under the hard limit" ||
	fail "sinks: the lag drains under the hard limit" "$(grep component=audit-sink "$d/hsmgated.log" | tail -5)"
check "sinks: serving resumes" random_ok alice
# The RELP sink was down as long (its retries back off to 30 s): it catches up too, and what
# rsyslog acknowledged it had, before and after the outage, is all there.
random_ok alice
if wait_cursor relp 450 && siem_has_all_below "$(cursor_next relp)" "$RELPLOG"; then
	pass "sinks: RELP catches up after the outage, none missing ($(wc -l <"$d/expected") events, $(($(received "$RELPLOG" | wc -l) - $(wc -l <"$d/received"))) duplicates)"
else
	fail "sinks: RELP catches up after the outage, none missing" \
		"relp $(cursor_next relp), head $(events_head)" "$(grep 'sink=relp' "$d/hsmgated.log" | tail -3)"
fi

# ---- 4. a request refused before routing has its event -----------------------------------------
out=$(raw dup-reqid "" alice)
grep -q 'ERROR code=.* msg=request id already in flight' <<<"$out" &&
	pass "sinks: a duplicate request id in flight is refused" ||
	fail "sinks: a duplicate request id in flight is refused" "$out"
for i in $(seq 1 20); do events | grep -q 'request id already in flight -failure' && break; sleep 0.1; done
ev=$(events | grep 'request id already in flight -failure' | tail -1)
grep -q '"action":"hsmgate.slot.list","outcome":"failure"' <<<"$ev" && grep -q 'CKR_GENERAL_ERROR' <<<"$ev" &&
	grep -q '"initiator":{"id":"tenant/acme/user/alice"' <<<"$ev" &&
	pass "sinks: ... and its failure event names the caller" ||
	fail "sinks: ... and its failure event names the caller" "$ev"

# Graceful stop: the sinks get a moment to deliver the last events (gateway stop).
e2e_stop
next=$(cursor_next siem)
last_request=$(events_seq | grep 'request id already in flight' | tail -n 1 | cut -f1)
for i in $(seq 1 30); do siem_has_all_below "${next:-0}" && break; sleep 0.1; done
n_exp=$(wc -l <"$d/expected")
missing=$(LC_ALL=C comm -23 "$d/expected" "$d/received" | wc -l)
dups=$(($(received | wc -l) - $(wc -l <"$d/received")))
if [ -n "$next" ] && [ -n "$last_request" ] && [ "$next" -gt "$last_request" ] && [ "$missing" = 0 ]; then
	pass "sinks: rsyslog ends with every event ($n_exp events, $dups duplicates, none missing)"
else
	fail "sinks: rsyslog ends with every event" "cursor $next, last request at $last_request, missing $missing of $n_exp" \
		"$(LC_ALL=C comm -23 "$d/expected" "$d/received" | head -3 | cut -c1-160)"
fi
events | grep -q '"action":"hsmgate.gateway.stop"' && received | grep -q '"action":"hsmgate.gateway.stop"' &&
	pass "sinks: the stop event reached rsyslog at shutdown" ||
	fail "sinks: the stop event reached rsyslog at shutdown" "cursor $next, head $(events_head)"
if events | LC_ALL=C sort -u | LC_ALL=C comm -23 - <(LC_ALL=C sort -u "$d/events.jsonl") | grep -q .; then
	fail "sinks: the file ends with every event" "$(events | wc -l) events, $(wc -l <"$d/events.jsonl") lines"
else
	pass "sinks: the file ends with every event"
fi
expect_output "sinks: hsmgate-audit verify passes" '^OK ' "$AUDIT" verify --log "$d/audit" --pubkey "$d/audit-signing.pub"

# ---- 5. audit.enabled: false --------------------------------------------------------------------
cp "$d/hsmgated.yaml" "$d/hsmgated-audit.yaml"
sed -i '/^audit:$/,$d' "$d/hsmgated.yaml"
printf 'audit:\n  enabled: false\n  dir: audit-off\n' >>"$d/hsmgated.yaml"
e2e_start || { fail "sinks: audit off: start" "hsmgated did not start"; exit 1; }
check "sinks: audit off: calls are served" random_ok alice
grep -q 'level=warn component=audit msg="audit is OFF: ' "$d/hsmgated.log" &&
	pass "sinks: audit off: hsmgated says so loudly" ||
	fail "sinks: audit off: hsmgated says so loudly" "$(grep component=audit "$d/hsmgated.log" | tail -3)"
e2e_stop
[ ! -e "$d/audit-off" ] && pass "sinks: audit off: no log written" ||
	fail "sinks: audit off: no log written" "$(ls -la "$d/audit-off")"
cp "$d/hsmgated-audit.yaml" "$d/hsmgated.yaml"
exit 0
