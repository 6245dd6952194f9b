#!/usr/bin/env bash
# End-to-end test of "sealed at rest" (issue 3): objects created through the gateway persist
# across a restart, yet the bytes of a private CKA_VALUE appear nowhere under the state
# directory; a partition whose master key was replaced refuses to serve, says why on stderr,
# and the other partitions keep working.
. "$(dirname "$0")/../lib/e2e.sh"

e2e_setup || { fail setup "e2e_setup failed"; exit 1; }
e2e_start || { fail start "hsmgated did not start"; exit 1; }
d=$E2E_DIR
pin=(--slot 1 --login --pin 1234-user)

# found FILE DIR — how many files under DIR contain FILE's bytes (binary-safe).
found() {
	python3 - "$1" "$2" <<'EOF'
import os, sys
needle = open(sys.argv[1], 'rb').read()
hits = 0
for root, dirs, files in os.walk(sys.argv[2]):
    for f in files:
        p = os.path.join(root, f)
        try:
            if needle in open(p, 'rb').read():
                hits += 1
                print(p, file=sys.stderr)
        except OSError:
            pass
print(hits)
EOF
}

# A private data object with a known random value (key objects: see below).
head -c 48 /dev/urandom >"$d/secret.bin"
check "write a private data object" p11 alice "${pin[@]}" --write-object "$d/secret.bin" \
	--type data --label sealed-data --private
# An AES key with a known CKA_VALUE, when the token has key objects (the soft token's key
# classes land with the rest of issue 3; until then only the data object is checked).
head -c 32 /dev/urandom >"$d/aes.bin"
have_aes=0
if p11 alice "${pin[@]}" --write-object "$d/aes.bin" --type secrkey --key-type AES:32 \
	--label sealed-aes >/dev/null 2>&1; then
	have_aes=1
fi
e2e_stop

for f in master.key data.mdb; do
	[ -s "$d/state/a1/$f" ] && pass "state/a1/$f exists" || fail "state/a1/$f exists" "$(ls -la "$d/state/a1")"
done
mode=$(stat -c %a "$d/state/a1/master.key")
[ "$mode" = 600 ] && pass "master.key is mode 0600" || fail "master.key is mode 0600" "mode $mode"
n=$(found "$d/secret.bin" "$d/state")
[ "$n" = 0 ] && pass "the data object's CKA_VALUE is nowhere under the state dir" ||
	fail "the data object's CKA_VALUE is nowhere under the state dir" "found in $n files"
n=$(found "$d/secret.bin" "$d/state/a1")
[ "$n" = 0 ] && pass "nor in the partition's LMDB files" || fail "nor in the partition's LMDB files" "found in $n files"
if [ "$have_aes" = 1 ]; then
	n=$(found "$d/aes.bin" "$d/state")
	[ "$n" = 0 ] && pass "the AES key's CKA_VALUE is nowhere under the state dir" ||
		fail "the AES key's CKA_VALUE is nowhere under the state dir" "found in $n files"
fi

# --- persisted: the object is back after a restart, with its value -----------------------------
e2e_start || { fail restart "hsmgated did not restart"; exit 1; }
p11 alice "${pin[@]}" --read-object --type data --label sealed-data -o "$d/back.bin" >/dev/null 2>&1
cmp -s "$d/secret.bin" "$d/back.bin" && pass "the sealed object reads back after a restart" ||
	fail "the sealed object reads back after a restart" "value differs or missing"
e2e_stop

# --- a replaced master key: refused, reported, never used -----------------------------------
head -c 32 /dev/urandom >"$d/state/a1/master.key"
e2e_start || { fail restart "hsmgated did not restart"; exit 1; }
expect_output "partition a1 with another master key does not serve its objects" \
	'CKR_(DEVICE_ERROR|TOKEN_NOT_PRESENT|SLOT_ID_INVALID|GENERAL_ERROR|FUNCTION_FAILED)|[Ss]lot.*(not found|invalid)|error' \
	p11 alice "${pin[@]}" -O
sleep 0.3
expect_output "the worker says why on stderr" \
	'seal: partition a1: the sealed index does not open: wrong master key' cat "$d/hsmgated.log"
out=$(p11 alice --slot 2 --generate-random 16 2>/dev/null | wc -c)
[ "$out" = 16 ] && pass "partition a2 keeps serving" || fail "partition a2 keeps serving" "got $out bytes"
