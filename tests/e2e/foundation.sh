#!/usr/bin/env bash
# End-to-end acceptance of the foundation (issue 2): a real hsmgated with a throw-away PKI on
# a free loopback port, driven through the real client module by pkcs11-tool and by our own
# raw TLS client and stress program.
. "$(dirname "$0")/../lib/e2e.sh"

e2e_setup || { fail setup "e2e_setup failed"; exit 1; }
e2e_start || { fail start "hsmgated did not start"; exit 1; }
d=$E2E_DIR

# --- pkcs11-tool through the gateway, with both credential kinds -------------------------
for conf in alice acme-key; do
	expect_output "$conf: -L lists the tenant's tokens" 'token label +: a1' p11 $conf -L
	expect_output "$conf: -I shows the module" 'hsmgate' p11 $conf -I
	expect_output "$conf: -M lists SHA-256" 'SHA256' p11 $conf --slot 1 -M
	out=$(p11 $conf --slot 1 --generate-random 32 2>/dev/null | wc -c)
	[ "$out" = 32 ] && pass "$conf: --generate-random 32" || fail "$conf: --generate-random 32" "got $out bytes"
	head -c 5000 /dev/urandom >"$d/data.bin"
	want=$(openssl dgst -sha256 -binary "$d/data.bin" | od -An -tx1 | tr -d ' \n')
	got=$(p11 $conf --slot 1 --hash -m SHA256 -i "$d/data.bin" 2>/dev/null | od -An -tx1 | tr -d ' \n')
	[ -n "$got" ] && [ "$got" = "$want" ] && pass "$conf: --hash SHA256 matches openssl" ||
		fail "$conf: --hash SHA256 matches openssl" "want $want" "got  $got"
	printf 'object of %s' "$conf" >"$d/obj-$conf.bin"
	check "$conf: --write-object --type data" p11 $conf --slot 1 --login --pin 1234-user \
		--write-object "$d/obj-$conf.bin" --type data --label "obj-$conf"
	expect_output "$conf: -O lists the data object" "obj-$conf" p11 $conf --slot 1 --login --pin 1234-user -O
	expect_output "$conf: read back the data object" "object of $conf" \
		p11 $conf --slot 1 --login --pin 1234-user --read-object --type data --label "obj-$conf"
done
expect_output "wrong PIN is refused" 'CKR_PIN_INCORRECT' p11 alice --slot 1 --login --pin 0000 -O

# --- tenants see only their own slots ------------------------------------------------------
out=$(p11 bob -L 2>&1)
if grep -q 'token label *: g1' <<<"$out" && ! grep -Eq 'token label *: a[12]' <<<"$out"; then
	pass "globex sees only its own slot"
else
	fail "globex sees only its own slot" "$out"
fi
expect_output "globex cannot open acme's slot 1" 'CKR_SLOT_ID_INVALID|invalid slot|[Ss]lot.*(not found|invalid)' \
	p11 bob --slot 1 --generate-random 8
expect_output "raw client sees 2 slots as acme" 'REPLY rv=0x0 count=2' raw slotlist "" alice

# --- refused callers get a clear CK_RV and stderr line; others keep working ------------------
expect_output "bad API key: C_Initialize fails" 'CKR_FUNCTION_FAILED' p11 wrong-key -L
expect_output "bad API key: readable stderr line" 'hsmgate: .*(refused|authentication)' p11 wrong-key -L
expect_output "raw: bad API key refused" 'ERROR code=1 ' raw hello-apikey "$(cat "$d/wrong.api-key")"
expect_output "raw: no client certificate refused" 'ERROR code=1 |CLOSED' raw hello-cert
expect_output "raw: certificate of another CA refused" 'TLS-FAILED|ERROR code=1 |CLOSED' \
	"$RAW" --connect "$E2E_ADDR" --ca "$d/ca.crt" --cert "$d/other/client-alice.crt" \
	--key "$d/other/client-alice.key" hello-cert
expect_output "raw: unmapped certificate (mallory) refused" 'ERROR code=1 ' raw hello-cert "" mallory
e2e_client other-ca cert alice
sed -i "s#client-alice#other/client-alice#" "$d/other-ca.yaml"
expect_output "client with another CA's certificate fails cleanly" 'CKR_(DEVICE_ERROR|FUNCTION_FAILED)' p11 other-ca -L
expect_output "gateway keeps serving after refusals" 'token label +: a1' p11 alice -L

# --- malformed input closes only that connection ---------------------------------------------
expect_output "raw: garbage closes the connection" 'CLOSED' raw garbage
expect_output "raw: bad magic closes the connection" 'CLOSED' raw bad-magic
expect_output "raw: oversized frame refused from its header" 'ERROR code=4 ' raw oversized "" alice
expect_output "raw: truncated frame closes the connection" 'CLOSED' raw truncated "" alice
expect_output "raw: request before hello refused" 'ERROR code=3 |CLOSED' raw request-before-hello "" alice
expect_output "gateway serves after malformed frames" 'token label +: a1' p11 acme-key -L
kill -0 "$E2E_PID" 2>/dev/null && pass "hsmgated still running" || fail "hsmgated still running"

# --- 8 threads x 1000 mixed calls over one module instance ----------------------------------
# (--rsa: RSA signatures and decryptions, which the worker's crypto threads take, among
# session and object calls that must wait for them)
check "8 threads x 1000 mixed calls (cert)" env HSMGATE_CONF="$d/alice.yaml" \
	"$STRESS" --module "$MODULE" --token a1 --pin-file "$d/user-pin" --threads 8 --calls 1000 --rsa

# --- an RSA key pair made on a crypto thread while other sessions sign ------------------------
# (pkcs11-tool's C_GenerateKeyPair goes to the worker's crypto threads; the stress tool's
# calls, on another connection, go on meanwhile or wait for it, and all must be right)
p11 alice --slot 1 --login --pin 1234-user --keypairgen --key-type rsa:3072 --id 0a \
	--label during-stress >"$d/keygen-stress.log" 2>&1 &
kpid=$!
check "4 threads x 300 mixed calls during an RSA-3072 key pair generation" env \
	HSMGATE_CONF="$d/alice.yaml" "$STRESS" --module "$MODULE" --token a1 --pin-file "$d/user-pin" \
	--threads 4 --calls 300 --rsa
wait $kpid && pass "the RSA-3072 key pair was made alongside" ||
	fail "the RSA-3072 key pair was made alongside" "$(tail -n 5 "$d/keygen-stress.log")"
printf 'made on a crypto thread' >"$d/kg.txt"
if p11 alice --slot 1 --login --pin 1234-user --sign -m SHA256-RSA-PKCS --id 0a -i "$d/kg.txt" \
	-o "$d/kg.sig" >/dev/null 2>&1 &&
	p11 alice --slot 1 --read-object --type pubkey --id 0a -o "$d/kg.pub.der" >/dev/null 2>&1 &&
	openssl pkey -pubin -inform DER -in "$d/kg.pub.der" -out "$d/kg.pub.pem" 2>/dev/null; then
	expect_output "its signature verifies with OpenSSL" 'Verified OK' \
		openssl dgst -sha256 -verify "$d/kg.pub.pem" -signature "$d/kg.sig" "$d/kg.txt"
else
	fail "sign with the new key and read its public key" "$(tail -n 3 "$d/keygen-stress.log")"
fi

# --- a worker killed with SIGKILL: its partition recovers, the other tenant notices nothing ---
env HSMGATE_CONF="$d/bob.yaml" "$STRESS" --module "$MODULE" --token g1 --pin-file "$d/user-pin" \
	--threads 2 --calls 1500 >"$d/globex-stress.log" 2>&1 &
gpid=$!
sleep 0.5
wpid=$(worker_pid a1)
if [ -n "$wpid" ]; then
	# a call in flight while the worker dies must fail cleanly, not hang
	HSMGATE_CONF=$d/alice.yaml timeout 60 "$STRESS" --module "$MODULE" --token a1 --threads 2 --calls 300 \
		>"$d/acme-during-kill.log" 2>&1 &
	apid=$!
	sleep 0.2
	kill -KILL "$wpid"
	wait $apid
	rc=$?
	[ $rc -ne 124 ] && pass "calls in flight during a worker crash return (no hang)" ||
		fail "calls in flight during a worker crash return (no hang)" "$(tail -n 5 "$d/acme-during-kill.log")"
	for i in $(seq 1 100); do
		n=$(worker_pid a1)
		[ -n "$n" ] && [ "$n" != "$wpid" ] && break
		sleep 0.1
	done
	[ -n "$n" ] && [ "$n" != "$wpid" ] && pass "supervisor restarted the worker" || fail "supervisor restarted the worker"
	expect_output "next C_OpenSession on the restarted partition succeeds" 'object of alice' \
		p11 alice --slot 1 --login --pin 1234-user --read-object --type data --label obj-alice
else
	fail "find the worker of a1" "$(ps ax | grep hsmgate-worker)"
fi
wait $gpid
rc=$?
[ $rc -eq 0 ] && pass "the other tenant's loop saw no error during the crash" ||
	fail "the other tenant's loop saw no error during the crash" "$(tail -n 10 "$d/globex-stress.log")"

# --- token objects survive a gateway restart -------------------------------------------------
e2e_stop
grep -q 'level=info' "$d/hsmgated.log" && pass "structured log lines" || fail "structured log lines" "$(head -5 "$d/hsmgated.log")"
if grep -q -e "$(cat "$d/acme.api-key")" -e 1234-user -e 5678-so-pin "$d/hsmgated.log"; then
	fail "no secret in the gateway log"
else
	pass "no secret in the gateway log"
fi
e2e_start || { fail restart "hsmgated did not restart"; exit 1; }
expect_output "token objects survive a gateway restart" 'obj-alice' p11 alice --slot 1 --login --pin 1234-user -O
exit 0
