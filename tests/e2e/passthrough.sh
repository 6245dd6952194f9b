#!/usr/bin/env bash
# End-to-end test of the passthrough backend (issue 3): a `backend: pkcs11` partition in front
# of a SoftHSMv2 token that this test initialises in its own directory, driven through the
# real client module by pkcs11-tool, with signatures checked by OpenSSL.
. "$(dirname "$0")/../lib/e2e.sh"

SOFTHSM_MODULE=${SOFTHSM_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
if [ ! -e "$SOFTHSM_MODULE" ] || ! command -v softhsm2-util >/dev/null; then
	fail "softhsm2 is installed" "no $SOFTHSM_MODULE or softhsm2-util (Debian package softhsm2)"
	exit 1
fi
d=$E2E_DIR

# --- the vendor token: SoftHSMv2 with its token directory under the test directory ---------
mkdir -p "$d/softhsm/tokens"
cat >"$d/softhsm/softhsm2.conf" <<EOF
directories.tokendir = $d/softhsm/tokens
objectstore.backend = file
log.level = ERROR
EOF
# hsmgated's supervisor execs the worker with hsmgated's environment: the worker's SoftHSMv2
# finds its token through this variable.
export SOFTHSM2_CONF=$d/softhsm/softhsm2.conf
check "softhsm2-util initialises the vendor token" softhsm2-util --init-token --free \
	--label vendor --pin 1234-user --so-pin 5678-so-pin

# A second token, for partition p2: the latch module (tests/e2e/latch_module.c) in front of
# SoftHSMv2, which holds a C_DigestUpdate in the vendor while $latch/hold exists. The worker
# reads both variables from hsmgated's environment.
check "softhsm2-util initialises the latch token" softhsm2-util --init-token --free \
	--label latch --pin 1234-user --so-pin 5678-so-pin
latch=$d/latch
mkdir -p "$latch"
export HSMGATE_LATCH_MODULE=$SOFTHSM_MODULE HSMGATE_LATCH_DIR=$latch

E2E_EXTRA_PARTITIONS="  - name: p1
    tenant: acme
    slot: 4
    backend: pkcs11
    module: $SOFTHSM_MODULE
    token: vendor
    crypto_threads: 4
  - name: p2
    tenant: acme
    slot: 5
    backend: pkcs11
    module: $BUILD/tests/e2e/liblatch-pkcs11.so
    token: latch
    crypto_threads: 4"
export E2E_EXTRA_PARTITIONS
e2e_setup || { fail setup "e2e_setup failed"; exit 1; }
e2e_start || { fail start "hsmgated did not start"; exit 1; }

pin=(--slot 4 --login --pin 1234-user)

# --- the token, through the gateway -----------------------------------------------------------
expect_output "-L shows the vendor token in slot 4" 'Slot 4 .*|token label +: vendor' p11 alice -L
expect_output "-L: token label vendor" 'token label +: vendor' p11 alice -L
expect_output "soft partitions still listed next to it" 'token label +: a1' p11 alice -L
expect_output "-T shows the vendor's manufacturer" 'SoftHSM' p11 alice --slot 4 -T
expect_output "-M lists the vendor's mechanisms" 'ECDSA' p11 alice --slot 4 -M
out=$(p11 alice --slot 4 --generate-random 32 2>/dev/null | wc -c)
[ "$out" = 32 ] && pass "--generate-random 32" || fail "--generate-random 32" "got $out bytes"
expect_output "--login -O on an empty token" '^$|No objects|Using slot' p11 alice "${pin[@]}" -O
expect_output "wrong PIN is the vendor's CKR_PIN_INCORRECT" 'CKR_PIN_INCORRECT' \
	p11 alice --slot 4 --login --pin 0000-bad -O

# --- keys: generate in the vendor token, sign, verify with OpenSSL ---------------------------
check "--keypairgen EC:prime256v1 k1" p11 alice "${pin[@]}" --keypairgen --key-type EC:prime256v1 \
	--label k1 --id 01
expect_output "--login -O lists k1" "label: +k1" p11 alice "${pin[@]}" -O
head -c 3000 /dev/urandom >"$d/data.bin"
# SoftHSMv2 2.6 has raw CKM_ECDSA only: sign the SHA-256 digest, which is what OpenSSL's
# ECDSA-with-SHA256 verification checks.
openssl dgst -sha256 -binary "$d/data.bin" >"$d/data.sha256"
check "sign ECDSA (SHA-256 digest) with k1" p11 alice "${pin[@]}" --sign -m ECDSA --id 01 \
	--signature-format openssl -i "$d/data.sha256" -o "$d/sig.der"
# The public key from SoftHSMv2 directly (the same key, generated through the gateway).
# Not through our module: pkcs11-tool 0.23's --read-object of an EC public key frees the
# curve name before it uses it, which ASan reports when our sanitized module is preloaded.
check "read k1's public key from the vendor token" pkcs11-tool --module "$SOFTHSM_MODULE" \
	--token-label vendor --read-object --type pubkey --id 01 -o "$d/k1.pub.der"
if openssl pkey -pubin -inform DER -in "$d/k1.pub.der" -out "$d/k1.pub.pem" 2>/dev/null; then
	expect_output "OpenSSL verifies k1's signature" 'Verified OK' \
		openssl dgst -sha256 -verify "$d/k1.pub.pem" -signature "$d/sig.der" "$d/data.bin"
else
	fail "OpenSSL verifies k1's signature" "the public key does not parse"
fi
printf 'tampered' >>"$d/data.bin"
expect_output "OpenSSL refuses it over other data" 'Verification failure' \
	openssl dgst -sha256 -verify "$d/k1.pub.pem" -signature "$d/sig.der" "$d/data.bin"

# --- sessions belong to the gateway's connections; restart keeps the vendor's objects --------
expect_output "a second connection (API key) sees k1" "label: +k1" p11 acme-key "${pin[@]}" -O
expect_output "the vendor's objects are SoftHSMv2's" "label: +k1" \
	pkcs11-tool --module "$SOFTHSM_MODULE" --token-label vendor --login --pin 1234-user -O

# --- pkcs11-tool's own test, through the gateway ---------------------------------------------
# Its exit code is 0 even on errors: gate on its last line.
expect_output "pkcs11-tool --test ends with No errors" '^No errors' \
	p11 alice "${pin[@]}" --test

# --- many application threads: one-shot calls go to the worker's vendor-calling threads -------
# (crypto_threads: 4 above). RSA signatures checked by OpenSSL and decryptions of OpenSSL's
# ciphertexts, among session and object calls that must wait for them.
printf '%s' 1234-user >"$d/vendor-pin"
check "8 threads x 400 mixed calls on the vendor token, RSA among them" \
	env HSMGATE_CONF="$d/alice.yaml" "$STRESS" --module "$MODULE" --token vendor \
	--pin-file "$d/vendor-pin" --threads 8 --calls 400 --rsa
wpid=$(worker_pid p1)
[ -n "$wpid" ] && [ "$(ls /proc/"$wpid"/task | wc -l)" -ge 4 ] &&
	pass "the passthrough worker runs its vendor-calling threads" ||
	fail "the passthrough worker runs its vendor-calling threads" \
		"threads: $(ls /proc/"${wpid:-0}"/task 2>/dev/null | wc -l)"

# --- the other tenant does not see the partition ---------------------------------------------
out=$(p11 bob -L 2>&1)
if ! grep -q 'token label *: vendor' <<<"$out"; then
	pass "globex does not see acme's passthrough slot"
else
	fail "globex does not see acme's passthrough slot" "$out"
fi

# --- a vendor call that takes its time holds up no other session ------------------------------
# p11_latch holds a C_DigestUpdate in p2's vendor (the latch) and, while it is held, calls
# C_GenerateRandom and C_DigestInit + C_Digest on other sessions: of the same connection (its
# own process) and, with --no-block, of another connection. No timing: a call that overlapped
# returned while the latch was still closed; one that did not is reported BLOCKED after a
# bound. The first run keeps the latch closed until "release", so that the second runs inside.
LATCH=$BUILD/tests/e2e/p11_latch
rm -f "$latch"/*
HSMGATE_CONF="$d/alice.yaml" timeout 300 "$LATCH" --module "$MODULE" --slot 5 \
	--latch-dir "$latch" --pin-file "$d/vendor-pin" --wait-release >"$d/latch.out" 2>&1 &
lpid=$!
for _ in $(seq 1 600); do
	[ -e "$latch/entered" ] || ! kill -0 "$lpid" 2>/dev/null && break
	sleep 0.05
done
expect_output "another connection is served while a C_DigestUpdate waits in the vendor" \
	'^overlap: ok' env HSMGATE_CONF="$d/alice.yaml" timeout 60 "$LATCH" --module "$MODULE" \
	--slot 5 --latch-dir "$latch" --no-block
: >"$latch/release"
wait "$lpid"
lrc=$?
rm -f "$latch/hold" # whatever happened above: no worker stays held
mapfile -t out <"$d/latch.out"
grep -q '^overlap: ok' "$d/latch.out" &&
	pass "other sessions of the connection are served while its C_DigestUpdate waits" ||
	fail "other sessions of the connection are served while its C_DigestUpdate waits" \
		"exit $lrc" "${out[@]}"
grep -q '^digest: ok' "$d/latch.out" &&
	pass "the held C_DigestUpdate ends with OpenSSL's SHA-256" ||
	fail "the held C_DigestUpdate ends with OpenSSL's SHA-256" "exit $lrc" "${out[@]}"

# The same with the first call held elsewhere (held_run MODE CALL LAST "WHAT LAST SAYS"): a
# network HSM answers an init (--hold-init: C_DigestInit) or a search (--hold-find:
# C_FindObjectsInit) after a round trip too. The probes' own C_DigestInit + C_Digest go
# through the vendor-calling threads meanwhile, each call queued behind its init.
held_run() {
	local mode=$1 call=$2 last=$3 what=$4 lrc
	rm -f "$latch"/*
	HSMGATE_CONF="$d/alice.yaml" timeout 300 "$LATCH" --module "$MODULE" --slot 5 \
		--latch-dir "$latch" --pin-file "$d/vendor-pin" "--hold-$mode" >"$d/latch-$mode.out" 2>&1
	lrc=$?
	rm -f "$latch/hold-$mode" "$latch/held-$mode"
	mapfile -t out <"$d/latch-$mode.out"
	grep -q '^overlap: ok' "$d/latch-$mode.out" &&
		pass "other sessions are served while a $call waits in the vendor" ||
		fail "other sessions are served while a $call waits in the vendor" "exit $lrc" "${out[@]}"
	grep -q "^$last: ok" "$d/latch-$mode.out" &&
		pass "$what" || fail "$what" "exit $lrc" "${out[@]}"
}
held_run init C_DigestInit digest "the held C_DigestInit's digest ends with OpenSSL's SHA-256"
held_run find C_FindObjectsInit find "the held search ends with C_FindObjects and C_FindObjectsFinal"
