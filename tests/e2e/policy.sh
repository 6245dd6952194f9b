#!/usr/bin/env bash
# End-to-end: the gateway enforces the policy file of its config (docs/POLICY.md,
# "Enforcement") on calls made through the real client module by pkcs11-tool — a deny for one
# principal while another keeps working, a source-address condition, shadow statements that
# are recorded and not enforced, and SIGHUP reloads (a broken file leaves the old policy in
# force, a good one takes effect without dropping an open connection).
. "$(dirname "$0")/../lib/e2e.sh"

d=$E2E_DIR
E2E_POLICY=policy.yaml

# Everyone may do everything in their own tenant, except: bob (globex) may not generate
# random bytes; alice may not digest from loopback with her certificate (the conditions
# decide: with her API key, or from elsewhere, she may); a shadow deny on C_GetTokenInfo
# that is only recorded.
write_policy() { # $1: "deny-bob" or "no-deny-bob"
	cat >"$d/policy.yaml" <<YAML
version: 1
name: e2e
statements:
  - sid: TenantsUseTheirOwn
    effect: allow
    principals: ["tenant/acme/*"]
    actions: ["hsm.*"]
    resources: ["crn:hsmgate:acme", "crn:hsmgate:acme:*"]
  - sid: GlobexUsesItsOwn
    effect: allow
    principals: ["tenant/globex/*"]
    actions: ["hsm.*"]
    resources: ["crn:hsmgate:globex", "crn:hsmgate:globex:*"]
  - sid: NoDigestFromLoopback
    effect: deny
    principals: tenant/acme/user/alice
    actions: hsm.crypto.digest
    resources: "*"
    conditions:
      IpAddress: { "gw:SourceIp": 127.0.0.0/8 }
      StringEquals: { "gw:CredentialType": certificate }
  - sid: NoDigestFromTheLab
    effect: deny
    principals: tenant/globex/user/bob
    actions: hsm.crypto.digest
    resources: "*"
    conditions:
      IpAddress: { "gw:SourceIp": 10.99.0.0/16 }
  - sid: TrialNoTokenInfo
    effect: deny
    mode: shadow
    principals: "*"
    actions: hsm.token.read
    resources: "*"
YAML
	if [ "$1" = deny-bob ]; then
		cat >>"$d/policy.yaml" <<YAML
  - sid: BobGetsNoRandom
    effect: deny
    principals: tenant/globex/user/bob
    actions: hsm.random.generate
    resources: "*"
YAML
	fi
}
write_policy deny-bob

e2e_setup || { fail setup "e2e_setup failed"; exit 1; }
e2e_start || { fail start "hsmgated did not start"; exit 1; }

# pkcs11-tool through OpenSC's pkcs11-spy, which prints every call's CK_RV: pkcs11-tool itself
# says only "Could not generate random bytes" for a failed C_GenerateRandom. This OpenSC
# (0.23) predates the name CKR_ACTION_PROHIBITED (0x1b = 27): it prints "27 (null)" or
# "unknown PKCS11 error (0x1b)", so the number is matched, and the name when a newer one knows.
PROHIBITED='Returned: +27 |CKR_ACTION_PROHIBITED|\(0x1b\)'
SPY=/usr/lib/x86_64-linux-gnu/pkcs11/pkcs11-spy.so
p11spy() {
	local conf=$1
	shift
	HSMGATE_CONF=$E2E_DIR/$conf.yaml PKCS11SPY=$MODULE ext pkcs11-tool --module "$SPY" "$@"
}

random_ok() { # CONF SLOT — 16 random bytes come back
	local n
	n=$(p11 "$1" --slot "$2" --generate-random 16 2>/dev/null | wc -c)
	[ "$n" = 16 ]
}

# --- a deny statement for one principal; another keeps working ---------------------------
expect_output "bob: --generate-random is CKR_ACTION_PROHIBITED" "$PROHIBITED" \
	p11spy bob --slot 3 --generate-random 16
check "alice: --generate-random works" random_ok alice 1
check "alice by API key: --generate-random works" random_ok acme-key 1
expect_output "bob: other calls keep working (-L)" 'token label +: g1' p11 bob -L
grep -q 'msg="denied".*principal=tenant/globex/user/bob action=hsm.random.generate.*sid=BobGetsNoRandom' \
	"$d/hsmgated.log" && pass "the denial is logged with its statement" ||
	fail "the denial is logged with its statement" "$(grep policy "$d/hsmgated.log" | tail -5)"

# --- a source-address condition ---------------------------------------------------------------
head -c 1000 /dev/urandom >"$d/data.bin"
expect_output "alice from 127.0.0.1: --hash is CKR_ACTION_PROHIBITED (IpAddress 127.0.0.0/8)" \
	"$PROHIBITED" p11spy alice --slot 1 --hash -m SHA256 -i "$d/data.bin"
want=$(openssl dgst -sha256 -binary "$d/data.bin" | od -An -tx1 | tr -d ' \n')
got=$(p11 acme-key --slot 1 --hash -m SHA256 -i "$d/data.bin" 2>/dev/null | od -An -tx1 | tr -d ' \n')
[ "$got" = "$want" ] && pass "alice by API key: --hash works (gw:CredentialType condition)" ||
	fail "alice by API key: --hash works (gw:CredentialType condition)" "got '$got'"
got=$(p11 bob --slot 3 --hash -m SHA256 -i "$d/data.bin" 2>/dev/null | od -An -tx1 | tr -d ' \n')
[ "$got" = "$want" ] && pass "bob from 127.0.0.1: --hash works (IpAddress 10.99.0.0/16 does not match)" ||
	fail "bob from 127.0.0.1: --hash works (IpAddress 10.99.0.0/16 does not match)" "got '$got'"

# --- shadow statements are recorded, not enforced --------------------------------------------
expect_output "shadow deny on hsm.token.read is not enforced" 'token label +: a1' p11 alice -L
grep -q 'shadow decision differs.*action=hsm.token.read.*shadow_result=explicit_deny shadow_sid=TrialNoTokenInfo' \
	"$d/hsmgated.log" && pass "the shadow decision is logged" ||
	fail "the shadow decision is logged" "$(grep shadow "$d/hsmgated.log" | tail -3)"

# --- reload: an open connection lives through two SIGHUPs ------------------------------------
env HSMGATE_CONF="$d/acme-key.yaml" "$STRESS" --module "$MODULE" --token a1 --pin-file "$d/user-pin" \
	--threads 2 --calls 1500 >"$d/stress-reload.log" 2>&1 &
spid=$!
sleep 0.5

# A broken policy: the old one stays in force, and the log says where the file is wrong.
cp "$d/policy.yaml" "$d/policy.good"
printf '  - sid: Broken\n    effect: allow\n    principals: "*"\n    actions: hsm.no.such.action\n    resources: "*"\n' \
	>>"$d/policy.yaml"
kill -HUP "$E2E_PID"
for i in $(seq 1 50); do grep -q 'reload failed: policy' "$d/hsmgated.log" && break; sleep 0.1; done
line=$(grep 'reload failed: policy' "$d/hsmgated.log" | tail -1)
grep -Eq 'policy\.yaml:[0-9]+:[0-9]+: ' <<<"$line" && pass "broken policy: the log names file:line:column" ||
	fail "broken policy: the log names file:line:column" "$line"
expect_output "broken policy: the old one is still enforced" "$PROHIBITED" \
	p11spy bob --slot 3 --generate-random 16

# A good one takes effect for new requests.
write_policy no-deny-bob
kill -HUP "$E2E_PID"
for i in $(seq 1 50); do
	[ "$(grep -c 'msg="policy in force"' "$d/hsmgated.log")" -ge 2 ] && break
	sleep 0.1
done
check "good policy: bob may now generate random" random_ok bob 3
expect_output "good policy: alice's digest deny still holds" "$PROHIBITED" \
	p11spy alice --slot 1 --hash -m SHA256 -i "$d/data.bin"

wait $spid
rc=$?
[ $rc -eq 0 ] && pass "a connection open across both reloads kept working" ||
	fail "a connection open across both reloads kept working" "$(tail -n 5 "$d/stress-reload.log")"
kill -0 "$E2E_PID" 2>/dev/null && pass "hsmgated still running" || fail "hsmgated still running"

# --- connecting is an action too: hsm.session.connect on crn:hsmgate:<tenant> ------------------
sed -i 's#resources: \["crn:hsmgate:globex", "crn:hsmgate:globex:\*"\]#resources: ["crn:hsmgate:globex:*"]#' \
	"$d/policy.yaml"
n=$(grep -c 'msg="policy in force"' "$d/hsmgated.log")
kill -HUP "$E2E_PID"
for i in $(seq 1 50); do
	[ "$(grep -c 'msg="policy in force"' "$d/hsmgated.log")" -gt "$n" ] && break
	sleep 0.1
done
expect_output "without hsm.session.connect on its tenant, bob cannot connect" \
	'refused authentication: denied by policy \(hsm.session.connect\)' p11 bob -L
expect_output "alice still can" 'token label +: a1' p11 alice -L

# --- a policy that does not load stops the start, naming file:line:column ---------------------
e2e_stop
cp "$d/policy.good" "$d/policy.yaml"
printf 'statements:\n  - sid: Dup\n' >>"$d/policy.yaml"
out=$(timeout 10 "$BIN/hsmgated" --config "$d/hsmgated.yaml" 2>&1)
rc=$?
[ $rc -ne 0 ] && grep -Eq 'policy\.yaml:[0-9]+:[0-9]+: ' <<<"$out" &&
	pass "a broken policy stops the start with file:line:column" ||
	fail "a broken policy stops the start with file:line:column" "rc=$rc" "$out"
expect_output "hsmgated --check reports it too" 'policy\.yaml:[0-9]+:[0-9]+: ' \
	"$BIN/hsmgated" --config "$d/hsmgated.yaml" --check
exit 0
