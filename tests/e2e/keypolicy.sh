#!/usr/bin/env bash
# End-to-end: key-level policy (issue 4), decided in the worker with the policy text the
# gateway pushes at start and on every reload.
#
# alice by certificate may do everything in acme; alice by API key may only sign, and only
# with keys labelled payments-* using CKM_ECDSA_SHA256, from loopback; nobody may generate an
# extractable key. pkcs11-tool (OpenSC 0.23) has no name for CKR_ACTION_PROHIBITED, so it
# prints "unknown PKCS11 error (0x1b)"; the checks accept either form.
. "$(dirname "$0")/../lib/e2e.sh"

DENIED='CKR_ACTION_PROHIBITED|\(0x1b\)|rv=0x1b'

write_policy() { # $1: the CIDR the API-key signer may come from
	cat >"$E2E_DIR/policy.yaml" <<YAML
version: 1
name: keypolicy
tenant: acme
principals:
  alice: tenant/acme/user/alice
statements:
  - sid: AliceByCertificate
    effect: allow
    principals: [principal:alice]
    actions: ["hsm.*"]
    resources: ["crn:hsmgate:acme", "crn:hsmgate:acme:*"]
    conditions:
      StringEquals: { "gw:CredentialType": certificate }
  - sid: AppSessions
    effect: allow
    principals: [principal:alice]
    actions: [hsm.session.*, hsm.token.read, hsm.mechanism.read, hsm.keys.list,
              hsm.keys.readattributes]
    resources: ["crn:hsmgate:acme", "crn:hsmgate:acme:partition:a1",
                "crn:hsmgate:acme:partition:a1:key:*"]
    conditions:
      StringEquals: { "gw:CredentialType": apikey }
  - sid: SignWithPaymentKeys
    effect: allow
    principals: [principal:alice]
    actions: [hsm.crypto.sign]
    resources: ["crn:hsmgate:acme:partition:a1:key:*"]
    conditions:
      StringEquals: { "gw:CredentialType": apikey, "hsm:Mechanism": CKM_ECDSA_SHA256 }
      StringLike: { "hsm:KeyLabel": "payments-*" }
      IpAddress: { "gw:SourceIp": "$1" }
  - sid: NoExtractableKeys
    effect: deny
    principals: "*"
    actions: [hsm.keys.generate, hsm.keys.generatepair]
    resources: "crn:hsmgate:acme:*"
    conditions:
      Bool: { "hsm:Template/CKA_EXTRACTABLE": "true" }
YAML
}

write_policy 127.0.0.0/8
E2E_POLICY=$E2E_DIR/policy.yaml
export E2E_POLICY
e2e_setup || { fail setup "e2e_setup failed"; exit 1; }
e2e_start || { fail start "hsmgated did not start"; exit 1; }
d=$E2E_DIR
pin=(--login --pin 1234-user)
echo "payment 42" >"$d/msg"

check "admin generates payments-1" p11 alice --slot 1 "${pin[@]}" --keypairgen --key-type EC:prime256v1 \
	--label payments-1 --id 01
check "admin generates hr-1" p11 alice --slot 1 "${pin[@]}" --keypairgen --key-type EC:prime256v1 \
	--label hr-1 --id 02

check "signer: ECDSA-SHA256 with a payments-* key" p11 acme-key --slot 1 "${pin[@]}" --sign \
	-m ECDSA-SHA256 --id 01 -i "$d/msg" -o "$d/sig"
[ -s "$d/sig" ] && pass "signer: the signature was written" || fail "signer: the signature was written"
expect_output "signer: another key is prohibited" "$DENIED" p11 acme-key --slot 1 "${pin[@]}" --sign \
	-m ECDSA-SHA256 --id 02 -i "$d/msg" -o "$d/sig2"
expect_output "signer: another mechanism is prohibited" "$DENIED" p11 acme-key --slot 1 "${pin[@]}" \
	--sign -m ECDSA-SHA1 --id 01 -i "$d/msg" -o "$d/sig3"
check "signer: the allowed call next to them still works" p11 acme-key --slot 1 "${pin[@]}" --sign \
	-m ECDSA-SHA256 --id 01 -i "$d/msg" -o "$d/sig4"
expect_output "signer: key generation is prohibited" "$DENIED" p11 acme-key --slot 1 "${pin[@]}" \
	--keypairgen --key-type EC:prime256v1 --label payments-9

GEN=$BUILD/tests/e2e/p11_genpair
expect_output "extractable key pair generation is prohibited" 'rv=0x1b' env HSMGATE_CONF="$d/alice.yaml" \
	"$GEN" --module "$MODULE" --token a1 --pin-file "$d/user-pin" --label x1 --extractable
expect_output "non-extractable key pair generation is allowed" 'rv=0x0$' env HSMGATE_CONF="$d/alice.yaml" \
	"$GEN" --module "$MODULE" --token a1 --pin-file "$d/user-pin" --label x2

# A reload that moves the signer's network elsewhere reaches the worker: the same call is
# now prohibited, without a restart.
write_policy 10.64.0.0/12
kill -HUP "$E2E_PID"
sleep 1
expect_output "after reload: the signer's source address is no longer allowed" "$DENIED" \
	p11 acme-key --slot 1 "${pin[@]}" --sign -m ECDSA-SHA256 --id 01 -i "$d/msg" -o "$d/sig5"
check "after reload: the admin is unaffected" p11 alice --slot 1 "${pin[@]}" --sign -m ECDSA-SHA256 \
	--id 02 -i "$d/msg" -o "$d/sig6"
# The worker's decisions reach the gateway's audit events: the allowing statement, the
# explicit deny, and the key the decision was about.
events=$("$BIN/hsmgate-audit" export --format cadf --log "$d/state/audit" 2>&1)
grep -q '"policy":{"result":"allow","sids":\["SignWithPaymentKeys"\]}' <<<"$events" &&
	pass "audit: an allowed key-level decision names its statement" ||
	fail "audit: an allowed key-level decision names its statement" "$(tail -n 3 <<<"$events")"
grep '"action":"hsmgate.crypto.sign"' <<<"$events" | grep '"reasonCode":403' |
	grep -q '"keyId":"[0-9a-f]\{32\}".*"policy":{"result":"default-deny"' &&
	pass "audit: a denied sign records the key and the default deny" ||
	fail "audit: a denied sign records the key and the default deny"
grep -q '"sids":\["NoExtractableKeys"\]' <<<"$events" &&
	pass "audit: the extractable key refusal names the deny statement" ||
	fail "audit: the extractable key refusal names the deny statement"
check "audit: the log verifies" "$BIN/hsmgate-audit" verify --log "$d/state/audit" \
	--pubkey "$d/state/audit-signing.pub"
exit 0
