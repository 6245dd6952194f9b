#!/usr/bin/env bash
# End-to-end acceptance of the soft token (issue 3, "The token"): keys generated, imported
# and used through the real client module by pkcs11-tool, the OpenSSL engine (libp11) and
# p11tool, every result checked against OpenSSL's own.
. "$(dirname "$0")/../lib/e2e.sh"

e2e_setup || { fail setup "e2e_setup failed"; exit 1; }
e2e_start || { fail start "hsmgated did not start"; exit 1; }
d=$E2E_DIR
U=(--slot 1 --login --pin 1234-user)
u() { p11 alice "${U[@]}" "$@"; }
hex() { od -An -tx1 -v "$1" | tr -d ' \n'; }
# same NAME FILE1 FILE2 — PASS when both files exist, are not empty and are equal.
same() {
	if [ -s "$2" ] && cmp -s "$2" "$3"; then
		pass "$1"
	else
		fail "$1" "$(ls -l "$2" "$3" 2>&1)"
	fi
}

head -c 1000 /dev/urandom >"$d/data"

# --- key generation ------------------------------------------------------------------------
check "keypairgen RSA 2048" u --keypairgen --key-type rsa:2048 --id 01 --label rsa1
for c in prime256v1:02 secp384r1:03 secp521r1:04; do
	check "keypairgen EC ${c%:*}" u --keypairgen --key-type "EC:${c%:*}" --id "${c#*:}" \
		--label "ec${c#*:}" --usage-sign --usage-derive
done
check "keypairgen Ed25519" u --keypairgen --key-type EC:edwards25519 --id 05 --label ed1
check "keygen AES-256" u --keygen --key-type AES:32 --id 06 --label aes1
check "keygen GENERIC:32 (HMAC)" u --keygen --key-type GENERIC:32 --id 07 --label gen1
expect_output "private key: sensitive, always sensitive, never extractable, local" \
	'Access: +sensitive, always sensitive, never extractable, local' u -O --type privkey --id 01
expect_output "a sensitive key's value is not readable" 'CKR_ATTRIBUTE_SENSITIVE' \
	u --read-object --type secrkey --id 06

# --- pkcs11-tool --test (its exit code is 0 even on errors: gate on the last line) ---------
out=$(u --test --allow-sw 2>&1)
if [ "$(tail -n 1 <<<"$out")" = "No errors" ]; then
	pass "pkcs11-tool --test --login --allow-sw: No errors"
else
	fail "pkcs11-tool --test --login --allow-sw: No errors" "$(tail -n 25 <<<"$out")"
fi
printf '%s\n' "$out" >"$d/pkcs11-tool-test.out"

# --- RSA: signatures and decryption against OpenSSL ----------------------------------------
check "export the RSA public key" u --read-object --type pubkey --id 01 -o "$d/rsa.pub"
for m in SHA256-RSA-PKCS:sha256 SHA384-RSA-PKCS:sha384 SHA512-RSA-PKCS:sha512 SHA1-RSA-PKCS:sha1; do
	rm -f "$d/sig"
	u --sign -m "${m%:*}" --id 01 -i "$d/data" -o "$d/sig" >/dev/null 2>&1
	check "RSA ${m%:*}: openssl verifies" openssl dgst "-${m#*:}" -keyform DER -verify "$d/rsa.pub" \
		-signature "$d/sig" "$d/data"
done
rm -f "$d/sig"
u --sign -m SHA256-RSA-PKCS-PSS --id 01 -i "$d/data" -o "$d/sig" >/dev/null 2>&1
check "RSA SHA256-RSA-PKCS-PSS: openssl verifies" openssl dgst -sha256 -keyform DER \
	-verify "$d/rsa.pub" -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:32 \
	-signature "$d/sig" "$d/data"
openssl dgst -sha256 -keyform DER -verify "$d/rsa.pub" -signature "$d/sig" "$d/data" >/dev/null 2>&1 &&
	fail "a PSS signature is not a PKCS #1 v1.5 one" || pass "a PSS signature is not a PKCS #1 v1.5 one"
check "pkcs11-tool verifies its RSA signature" u --verify -m SHA256-RSA-PKCS-PSS --id 01 \
	-i "$d/data" --signature-file "$d/sig"
head -c 100 /dev/urandom >"$d/secret"
openssl pkeyutl -encrypt -pubin -keyform DER -inkey "$d/rsa.pub" -in "$d/secret" -out "$d/ct" \
	-pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256
rm -f "$d/pt"
u --decrypt -m RSA-PKCS-OAEP --hash-algorithm SHA256 --mgf MGF1-SHA256 --id 01 -i "$d/ct" \
	-o "$d/pt" >/dev/null 2>&1
same "RSA-PKCS-OAEP: decrypts what openssl encrypted" "$d/pt" "$d/secret"
openssl pkeyutl -encrypt -pubin -keyform DER -inkey "$d/rsa.pub" -in "$d/secret" -out "$d/ct"
rm -f "$d/pt"
u --decrypt -m RSA-PKCS --id 01 -i "$d/ct" -o "$d/pt" >/dev/null 2>&1
same "RSA-PKCS: decrypts what openssl encrypted" "$d/pt" "$d/secret"

# --- ECDSA on three curves, Ed25519 ----------------------------------------------------------
# The EC public keys as SubjectPublicKeyInfo, built from CKA_EC_POINT: pkcs11-tool 0.23's
# --read-object --type pubkey of an EC key uses freed memory (the curve name, in
# EVP_PKEY_fromdata: ASan reports it under SANITIZE=1) and fails outright for P-384.
# (-O lists every public key whatever --id says: pick the one whose ID is $1.)
ec_point() {
	u -O --type pubkey 2>/dev/null | awk -v id="$1" '
		/^Public Key Object/ { pt = "" }
		/^ *EC_POINT:/ { pt = $2 }
		/^ *ID:/ && $2 == id { print pt }' | tr -cd '0-9a-f'
}
for c in 02:3059301306072a8648ce3d020106082a8648ce3d030107034200:130 \
	03:3076301006072a8648ce3d020106052b81040022036200:194 \
	04:30819b301006072a8648ce3d020106052b8104002303818600:266; do
	IFS=: read -r id prefix n <<<"$c"
	pt=$(ec_point "$id")
	printf '%s%s' "$prefix" "${pt: -$n}" | xxd -r -p >"$d/ec$id.pub"
	check "EC public key $id from CKA_EC_POINT" openssl pkey -pubin -inform DER -in "$d/ec$id.pub" -noout
done
for c in 02:sha256:ECDSA-SHA256 03:sha384:ECDSA-SHA384 04:sha512:ECDSA-SHA512 02:sha256:ECDSA; do
	IFS=: read -r id md mech <<<"$c"
	if [ "$mech" = ECDSA ]; then
		openssl dgst "-$md" -binary "$d/data" >"$d/in"
	else
		cp "$d/data" "$d/in"
	fi
	rm -f "$d/sig"
	u --sign -m "$mech" --id "$id" --signature-format openssl -i "$d/in" -o "$d/sig" >/dev/null 2>&1
	check "EC $id $mech: openssl verifies" openssl dgst "-$md" -keyform DER -verify "$d/ec$id.pub" \
		-signature "$d/sig" "$d/data"
done
rm -f "$d/sig"
u --sign -m EDDSA --id 05 -i "$d/data" -o "$d/sig" >/dev/null 2>&1
check "Ed25519 signature: pkcs11-tool verifies" u --verify -m EDDSA --id 05 -i "$d/data" \
	--signature-file "$d/sig"
# pkcs11-tool 0.23 cannot export an Ed25519 key as SubjectPublicKeyInfo: build it from
# CKA_EC_POINT (the DER OCTET STRING of the 32-byte key).
pt=$(ec_point 05)
if [ -n "$pt" ]; then
	printf '302a300506032b6570032100%s' "${pt: -64}" | xxd -r -p >"$d/ed.pub"
	check "Ed25519 signature: openssl verifies" openssl pkeyutl -verify -pubin -keyform DER \
		-inkey "$d/ed.pub" -rawin -in "$d/data" -sigfile "$d/sig"
else
	fail "Ed25519 signature: openssl verifies" "no EC_POINT in the listing"
fi
# libp11 0.4.12 (the OpenSSL engine below) stops enumerating private keys at the first one
# of a type it does not know, CKK_EC_EDWARDS included: the Ed25519 pair goes (C_DestroyObject).
check "destroy the Ed25519 private key" u --delete-object --type privkey --id 05
check "destroy the Ed25519 public key" u --delete-object --type pubkey --id 05

# --- AES and HMAC with imported keys: the same bytes as OpenSSL -----------------------------
head -c 32 /dev/urandom >"$d/aes.key"
K=$(hex "$d/aes.key")
IV=000102030405060708090a0b0c0d0e0f
check "import an AES key (C_CreateObject)" u --write-object "$d/aes.key" --type secrkey \
	--key-type AES:32 --id 08 --label aesimp --extractable
# (pkcs11-tool 0.23 cannot pass AES-CTR or AES-GCM parameters: those are CUnit-tested.)
for m in AES-CBC-PAD:aes-256-cbc: AES-CBC:aes-256-cbc:-nopad AES-ECB:aes-256-ecb:-nopad; do
	IFS=: read -r mech ossl opt <<<"$m"
	head -c 64 /dev/urandom >"$d/pt"
	ivarg=(--iv "$IV")
	oiv=(-iv "$IV")
	[ "$mech" = AES-ECB ] && ivarg=() && oiv=()
	rm -f "$d/ct" "$d/pt2"
	u --encrypt -m "$mech" --id 08 "${ivarg[@]}" -i "$d/pt" -o "$d/ct" >/dev/null 2>&1
	openssl enc "-$ossl" $opt -K "$K" "${oiv[@]}" -in "$d/pt" -out "$d/ct.ossl"
	same "$mech: ciphertext equals openssl's" "$d/ct" "$d/ct.ossl"
	u --decrypt -m "$mech" --id 08 "${ivarg[@]}" -i "$d/ct.ossl" -o "$d/pt2" >/dev/null 2>&1
	same "$mech: decrypts openssl's ciphertext" "$d/pt2" "$d/pt"
done
# pkcs11-tool 0.23 cannot import a generic secret: generate an extractable, non-sensitive
# one and read its value.
check "keygen an extractable GENERIC:32" u --keygen --key-type GENERIC:32 --id 09 --label hmac2 \
	--extractable
check "read the value of a non-sensitive, extractable key" u --read-object --type secrkey --id 09 \
	-o "$d/hmac.key"
for m in SHA256-HMAC:sha256 SHA384-HMAC:sha384 SHA512-HMAC:sha512 SHA-1-HMAC:sha1; do
	rm -f "$d/mac"
	u --sign -m "${m%:*}" --id 09 -i "$d/data" -o "$d/mac" >/dev/null 2>&1
	openssl dgst "-${m#*:}" -mac HMAC -macopt "hexkey:$(hex "$d/hmac.key")" -binary "$d/data" >"$d/mac.ossl"
	same "${m%:*}: equals openssl's" "$d/mac" "$d/mac.ossl"
done
# (pkcs11-tool 0.23 signs with secret keys for the HMAC mechanisms only: AES-CMAC is
# CUnit-tested.)

# --- wrap and unwrap -------------------------------------------------------------------------
head -c 32 /dev/urandom >"$d/kek.key"
check "import a KEK" u --write-object "$d/kek.key" --type secrkey --key-type AES:32 --id 0a --label kek
rm -f "$d/wrapped"
u --wrap -m AES-KEY-WRAP --id 0a --application-id 08 -o "$d/wrapped" >/dev/null 2>&1
openssl enc -id-aes256-wrap -K "$(hex "$d/kek.key")" -iv A6A6A6A6A6A6A6A6 -in "$d/aes.key" \
	-out "$d/wrapped.ossl" 2>/dev/null
same "AES-KEY-WRAP: equals openssl's id-aes256-wrap" "$d/wrapped" "$d/wrapped.ossl"
rm -f "$d/wrapped"
u --wrap -m 0x210a --id 0a --application-id 08 -o "$d/wrapped" >/dev/null 2>&1
openssl enc -id-aes256-wrap-pad -K "$(hex "$d/kek.key")" -iv A65959A6 -in "$d/aes.key" \
	-out "$d/wrapped.ossl" 2>/dev/null
same "AES-KEY-WRAP-PAD: equals openssl's id-aes256-wrap-pad" "$d/wrapped" "$d/wrapped.ossl"
check "unwrap (AES-KEY-WRAP-PAD)" u --unwrap -m 0x210a --id 0a -i "$d/wrapped" \
	--key-type AES:32 --application-id 0b --application-label unwrapped --extractable
head -c 64 /dev/urandom >"$d/pt"
rm -f "$d/ct"
u --encrypt -m AES-CBC --id 0b --iv "$IV" -i "$d/pt" -o "$d/ct" >/dev/null 2>&1
openssl enc -aes-256-cbc -nopad -K "$K" -iv "$IV" -in "$d/pt" -out "$d/ct.ossl"
same "the unwrapped key is the wrapped one" "$d/ct" "$d/ct.ossl"
expect_output "an unextractable key is not wrapped" 'CKR_KEY_UNEXTRACTABLE' \
	u --wrap -m AES-KEY-WRAP --id 0a --application-id 06 -o "$d/nowrap"
# RSA-PKCS: openssl wraps for our public key, the token unwraps. (pkcs11-tool 0.23 passes
# no CK_RSA_PKCS_OAEP_PARAMS to C_UnwrapKey, so RSA-OAEP unwrapping is CUnit-tested.)
head -c 32 /dev/urandom >"$d/k2.key"
openssl pkeyutl -encrypt -pubin -keyform DER -inkey "$d/rsa.pub" -in "$d/k2.key" -out "$d/k2.wrapped"
check "unwrap (RSA-PKCS) a key openssl wrapped" u --unwrap -m RSA-PKCS --id 01 \
	-i "$d/k2.wrapped" --key-type AES:32 --application-id 0c --application-label rsa-unwrapped
rm -f "$d/ct"
u --encrypt -m AES-ECB --id 0c -i "$d/pt" -o "$d/ct" >/dev/null 2>&1
openssl enc -aes-256-ecb -nopad -K "$(hex "$d/k2.key")" -in "$d/pt" -out "$d/ct.ossl"
same "the RSA-PKCS unwrapped key is openssl's" "$d/ct" "$d/ct.ossl"

# --- ECDH ------------------------------------------------------------------------------------
for c in 02:P-256 03:P-384 04:P-521; do
	id=${c%:*}
	openssl genpkey -algorithm EC -pkeyopt "ec_paramgen_curve:${c#*:}" -out "$d/peer.pem" 2>/dev/null
	openssl pkey -in "$d/peer.pem" -pubout -outform DER -out "$d/peer.der"
	rm -f "$d/z"
	u --derive -m ECDH1-DERIVE --id "$id" -i "$d/peer.der" -o "$d/z" >/dev/null 2>&1
	openssl pkeyutl -derive -inkey "$d/peer.pem" -peerkey "$d/ec$id.pub" -peerform DER -out "$d/z.ossl"
	same "ECDH1-DERIVE ${c#*:}: equals openssl's shared secret" "$d/z" "$d/z.ossl"
done

# --- fork and threads ------------------------------------------------------------------------
# --test-fork: C_Initialize, fork(), C_Initialize again in the child, which then runs the
# whole of --test: the child's module must not use the parent's connection.
out=$(u --test-fork --test --allow-sw 2>&1)
if grep -q 'Calling C_Initialize in forked child' <<<"$out" && [ "$(tail -n 1 <<<"$out")" = "No errors" ]; then
	pass "--test-fork --test: No errors in the forked child"
else
	fail "--test-fork --test: No errors in the forked child" "$(tail -n 20 <<<"$out")"
fi
# Three threads call C_Initialize (IL: CKF_OS_LOCKING_OK, IN: NULL) while the main thread
# calls its own, then C_GetInfo, C_GetSlotList and C_GetTokenInfo, next to the main thread's
# -L. PKCS #11 v2.40 §5.1: exactly one C_Initialize returns CKR_OK and the three others
# CKR_CRYPTOKI_ALREADY_INITIALIZED, and a thread told so can use the module at once (the
# client waits for the first C_Initialize's outcome; tests/client/test_initrace.c holds that
# race open deterministically). The check reads only what pkcs11-tool prints from return
# values: pkcs11-tool 0.23 formats every slot description and token string through one
# static buffer (p11_utf8_to_local) shared by its threads, so -L next to the threads'
# show_token may print another thread's string as slot 0's description. That, not the
# module, is what failed the old check ('hsmgate partition a1') now and then, and why the
# threads used to pause a second (P1) first.
out=$(p11 alice --use-locking --test-threads ILGISLT0 --test-threads ILGISLT0 \
	--test-threads INGISLT0 -L 2>&1)
init_ok=$(grep -cE 'C_Initialize +returned CKR_OK$|^Main C_Initialize\(.*\) rv:CKR_OK$' <<<"$out")
init_already=$(grep -cE 'C_Initialize +returned CKR_CRYPTOKI_ALREADY_INITIALIZED$|^Main C_Initialize\(.*\) rv:CKR_CRYPTOKI_ALREADY_INITIALIZED$' <<<"$out")
if [ "$init_ok" = 1 ] && [ "$init_already" = 3 ] &&
	grep -q 'all threads have ended with CKR_OK' <<<"$out" &&
	[ "$(grep -c 'C_GetTokenInfo from slot_index 0' <<<"$out")" = 3 ] &&
	grep -qF 'Slot 0 (0x1):' <<<"$out" && grep -qF 'Slot 1 (0x2):' <<<"$out" &&
	! grep -q 'failed' <<<"$out"; then
	pass "--use-locking --test-threads (four C_Initialize, one CKR_OK)"
else
	fail "--use-locking --test-threads (four C_Initialize, one CKR_OK)" \
		"C_Initialize: $init_ok CKR_OK, $init_already ALREADY_INITIALIZED (want 1 and 3)" \
		"$(grep -E 'C_Initialize|failed|ended' <<<"$out" | tail -n 20)"
fi

# --- certificates, the OpenSSL engine, p11tool -----------------------------------------------
cat >"$d/openssl.cnf" <<EOF
openssl_conf = openssl_init
[openssl_init]
engines = engine_section
[engine_section]
pkcs11 = pkcs11_section
[pkcs11_section]
engine_id = pkcs11
dynamic_path = /usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so
MODULE_PATH = $MODULE
init = 0
[req]
distinguished_name = dn
[dn]
EOF
for k in rsa1:01 ec02:02; do
	rm -f "$d/csr.pem"
	HSMGATE_CONF=$d/alice.yaml OPENSSL_CONF=$d/openssl.cnf ext openssl req -engine pkcs11 \
		-keyform engine -key "pkcs11:token=a1;object=${k%:*};type=private;pin-value=1234-user" \
		-new -subj "/CN=${k%:*}" -sha256 -out "$d/csr.pem" >"$d/req.log" 2>&1
	check "OpenSSL engine: CSR signed by ${k%:*}; openssl req -verify accepts it" \
		openssl req -verify -noout -in "$d/csr.pem"
done
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$d/ca.key" -subj /CN=token-cert -days 2 \
	-outform DER -out "$d/cert.der" 2>/dev/null
check "store an X.509 certificate (C_CreateObject)" u --write-object "$d/cert.der" --type cert \
	--id 01 --label cert1
expect_output "pkcs11-tool lists the certificate" 'Certificate Object; type = X.509 cert' u -O --type cert
# (timeout: under SANITIZE=1, p11tool with ASan preloaded can hang at exit in libp11-kit's
# destructor, in glibc's locale lock — after it has printed what we check.)
out=$(HSMGATE_CONF=$d/alice.yaml GNUTLS_PIN=1234-user ext timeout -s KILL 60 p11tool \
	--provider "$MODULE" --login --list-all "pkcs11:token=a1" 2>&1)
if grep -q 'Type: Private key' <<<"$out" && grep -q 'Type: X.509 Certificate' <<<"$out" &&
	grep -q 'Label: rsa1' <<<"$out" && grep -q 'Label: aes1' <<<"$out"; then
	pass "p11tool --list-all lists the objects"
else
	fail "p11tool --list-all lists the objects" "$(tail -n 25 <<<"$out")"
fi

# --- persistence: keys survive a restart and still work --------------------------------------
e2e_stop
e2e_start || { fail restart "hsmgated did not restart"; exit 1; }
rm -f "$d/sig"
u --sign -m SHA256-RSA-PKCS --id 01 -i "$d/data" -o "$d/sig" >/dev/null 2>&1
check "after a restart the RSA key still signs" openssl dgst -sha256 -keyform DER \
	-verify "$d/rsa.pub" -signature "$d/sig" "$d/data"
exit 0
