#!/usr/bin/env bash
# End-to-end: rotating the audit log's signing key (docs/AUDIT.md §2.4). hsmgated refuses to
# start with a key the log never announced; `hsmgate-audit rotate-key` refuses while the
# gateway holds the log and hands the log over from the old key to the new one; the gateway
# then starts with the new key only; verify, proofs and consistency work across the rotation
# with the old key as the trust anchor, or from after it with the new key; and a forger who
# re-signs checkpoints with the retired key, signs a rotation with a wrong key or re-signs
# everything is named at the right seq; SIGHUP with a new audit.signing_key rotates a running
# gateway online (a missing, world-readable or retired key fails the reload and writes nothing) — the forgeries made by an independent Python +
# openssl implementation of the format, which also checks the genuine rotation record.
. "$(dirname "$0")/../lib/e2e.sh"

d=$E2E_DIR
E2E_AUDIT='audit:
  dir: audit
  signing_key: audit-signing.key
  durability: sync'
AUDIT=$BIN/hsmgate-audit
ORIGIN=hsmgated-e2e

e2e_setup || { fail setup "e2e_setup failed"; exit 1; }
e2e_start || { fail start "hsmgated did not start"; exit 1; }

events() { cat "$d"/audit/seg-*.log | awk -F'\t' '$1 ~ / E$/ { print $2 }'; }
random_ok() { # CONF — 16 random bytes come back through slot 1
	local n
	n=$(p11 "$1" --slot 1 --generate-random 16 2>/dev/null | wc -c)
	[ "$n" = 16 ]
}
set_key() { sed -i "s|^  signing_key: .*|  signing_key: $1|" "$d/hsmgated.yaml"; }
log_size() { cat "$d"/audit/seg-*.log | wc -c; }
# start_refused NAME REGEX — hsmgated must not start, and say REGEX.
start_refused() {
	local before
	before=$(wc -l <"$d/hsmgated.log")
	if e2e_start >/dev/null 2>&1; then
		e2e_stop
		fail "$1" "hsmgated started"
		return
	fi
	tail -n +"$((before + 1))" "$d/hsmgated.log" | grep -Eq -- "$2" && pass "$1" ||
		fail "$1" "expected /$2/ in:" "$(tail -n +"$((before + 1))" "$d/hsmgated.log" | tail -n 5)"
}

check "rotate: calls work with the first key" random_ok alice
"$AUDIT" checkpoint --log "$d/audit" >"$d/cp-old" 2>&1 || fail "checkpoint before rotation" "$(cat "$d/cp-old")"
"$AUDIT" keygen --out "$d/audit-new" >/dev/null || fail "keygen" "new key"
"$AUDIT" keygen --out "$d/stranger" >/dev/null || fail "keygen" "stranger key"
"$AUDIT" keygen --out "$d/stranger2" >/dev/null || fail "keygen" "stranger2 key"

# --- rotate-key refuses while hsmgated holds the log (the writer's flock on LOCK) --------------
out=$("$AUDIT" rotate-key --log "$d/audit" --key "$d/audit-signing.key" --new-key "$d/audit-new.key" 2>&1)
rc=$?
[ $rc = 2 ] && grep -q 'is open in another process: stop hsmgated first' <<<"$out" &&
	pass "rotate-key: refused while hsmgated runs" || fail "rotate-key: refused while hsmgated runs" "rc=$rc $out"
check "rotate-key: the gateway still serves" random_ok alice
e2e_stop
expect_output "rotate-key: the log verifies after the refused attempt" '^OK ' \
	"$AUDIT" verify --log "$d/audit" --pubkey "$d/audit-signing.pub"
! grep -q 'audit-key.rotate' "$d"/audit/seg-*.log && pass "rotate-key: the refused attempt wrote no rotation" ||
	fail "rotate-key: the refused attempt wrote no rotation"

# --- key files must be 0600 ------------------------------------------------------------------------
chmod 0644 "$d/audit-new.key"
expect_output "rotate-key: a new key readable by others is refused" 'must be a regular file.*mode 0600; it is 0644' \
	"$AUDIT" rotate-key --log "$d/audit" --key "$d/audit-signing.key" --new-key "$d/audit-new.key"
chmod 0600 "$d/audit-new.key"
[ "$(stat -c %a "$d/audit-new.key")" = 600 ] && [ "$(stat -c %a "$d/audit-signing.key")" = 600 ] &&
	pass "keys: private key files are 0600" || fail "keys: private key files are 0600" "$(ls -l "$d"/*.key)"

# --- hsmgated refuses a key the log never announced, and a missing key ---------------------------
size=$(log_size)
set_key audit-new.key
start_refused "gateway: refuses an unannounced key, says to run rotate-key" \
	'audit.signing_key .*audit-new.key is not the key in force .*hsmgate-audit rotate-key'
set_key missing.key
start_refused "gateway: a missing key for a signed log is not generated anew" \
	'missing.key does not exist, but the audit log .* is signed with a key already'
[ ! -e "$d/missing.key" ] && [ "$(log_size)" = "$size" ] &&
	pass "gateway: the refusals wrote no key and no record" ||
	fail "gateway: the refusals wrote no key and no record" "$(ls "$d")"

# --- rotate ------------------------------------------------------------------------------------------
out=$("$AUDIT" rotate-key --log "$d/audit" --key "$d/audit-signing.key" --new-key "$d/audit-new.key" 2>&1)
rc=$?
rot=$(sed -nE 's/^rotated the signing key of .* at seq ([0-9]+)$/\1/p' <<<"$out")
[ $rc = 0 ] && [ -n "$rot" ] && pass "rotate-key: rotated at seq $rot" || fail "rotate-key: rotated" "rc=$rc $out"
grep -q "^  new $ORIGIN+[0-9a-f]\{8\}+" <<<"$out" && ! grep -q PRIVATE <<<"$out" &&
	pass "rotate-key: names the new key (public only)" || fail "rotate-key: names the new key" "$out"
ev=$(events | grep '"action":"hsmgate.audit-key.rotate"')
grep -q '"severity":"warning"' <<<"$ev" && grep -q "\"rotationSeq\":$rot" <<<"$ev" &&
	pass "rotate-key: the hsmgate.audit-key.rotate event is in the log" ||
	fail "rotate-key: the hsmgate.audit-key.rotate event is in the log" "$ev"
expect_output "rotate-key: a second rotation to the same key is refused" 'is the key in force or a key this log retired' \
	"$AUDIT" rotate-key --log "$d/audit" --key "$d/audit-new.key" --new-key "$d/audit-new.key"

# --- the gateway: the old key is now refused, the new one starts -----------------------------------
set_key audit-signing.key
start_refused "gateway: the retired key is refused after the rotation" 'is not the key in force'
set_key audit-new.key
e2e_start || { fail "gateway: starts with the new key" "hsmgated did not start"; exit 1; }
pass "gateway: starts with the new key"
check "gateway: serves with the new key" random_ok alice
e2e_stop

# --- verify across the rotation ------------------------------------------------------------------
verify() { "$AUDIT" verify --log "${LOGDIR:-$d/audit}" "$@"; }
expect_output "verify: OK across the rotation with the old key as anchor" '^OK ' verify --pubkey "$d/audit-signing.pub"
expect_output "verify: reports the rotation and the key in force" "^keys: 1 rotation; the key in force is $ORIGIN\\+" \
	verify --pubkey "$d/audit-signing.pub"
expect_output "verify: from after the rotation with the new key" '^OK ' verify --pubkey "$d/audit-new.pub" --from $((rot + 1))
expect_output "verify: from the start, the new key alone is not enough" '^FAIL seq=[0-9]+ kind=bad signature' \
	verify --pubkey "$d/audit-new.pub"
expect_output "verify: both keys (repeated --pubkey)" '^OK ' verify --pubkey "$d/audit-new.pub" --pubkey "$d/audit-signing.pub"
cat "$d/audit-signing.pub" "$d/audit-new.pub" >"$d/keyring.pub"
expect_output "verify: a keyring file" '^OK ' verify --pubkey "$d/keyring.pub"
expect_output "verify: a private key is no --pubkey" 'must hold Ed25519 public keys' verify --pubkey "$d/audit-new.key"
"$AUDIT" checkpoint --log "$d/audit" >"$d/cp-new"
expect_output "verify: an external checkpoint from before the rotation" '^OK ' \
	verify --pubkey "$d/audit-signing.pub" --checkpoint "$d/cp-old"
expect_output "verify: an external checkpoint by the new key, anchor the old key" '^OK ' \
	verify --pubkey "$d/audit-signing.pub" --checkpoint "$d/cp-new"

# --- proofs across the rotation --------------------------------------------------------------------
"$AUDIT" prove --log "$d/audit" --seq 1 --out "$d/proof-old" &&
	"$AUDIT" prove --log "$d/audit" --seq $((rot + 1)) --out "$d/proof-new" ||
	fail "prove: across the rotation" "prove failed"
expect_output "verify-proof: before the rotation, old key" '^OK record 1 ' \
	"$AUDIT" verify-proof --proof "$d/proof-old" --pubkey "$d/audit-signing.pub"
expect_output "verify-proof: after the rotation, new key" "^OK record $((rot + 1)) " \
	"$AUDIT" verify-proof --proof "$d/proof-new" --pubkey "$d/audit-new.pub"
expect_output "verify-proof: after the rotation, the old key does not do" '^FAIL: signature does not verify' \
	"$AUDIT" verify-proof --proof "$d/proof-new" --pubkey "$d/audit-signing.pub"
expect_output "consistency: old checkpoint (old key) to the latest (new key), old key given" '^OK consistent' \
	"$AUDIT" consistency --log "$d/audit" --pubkey "$d/audit-signing.pub" --old "$d/cp-old"
expect_output "consistency: with the new key only, the old checkpoint cannot be checked" '^FAIL' \
	"$AUDIT" consistency --log "$d/audit" --pubkey "$d/audit-new.pub" --old "$d/cp-old"

# --- an independent implementation: check the rotation record, and forge -------------------------
cat >"$d/rotation.py" <<'PY'
# check DIR ORIGIN OLDPUB NEWPUB | forge DIR ORIGIN MODE KEYS... — docs/AUDIT.md §2.4 with only
# hashlib, base64 and the openssl command line for Ed25519.
import base64, glob, hashlib, os, subprocess, sys, tempfile
H = lambda b: hashlib.sha256(b).digest()
B = lambda b: base64.b64encode(b)
DASH = '\u2014 '.encode()

def mth(l):
    if not l: return H(b'')
    if len(l) == 1: return l[0]
    k = 1
    while 2 * k < len(l): k *= 2
    return H(b'\x01' + mth(l[:k]) + mth(l[k:]))

def raw_pub(path):  # a PEM public or private key file -> its 32-byte public key
    pub = ['-pubin'] if b'PUBLIC KEY' in open(path, 'rb').read() else []
    der = subprocess.run(['openssl', 'pkey'] + pub + ['-in', path, '-pubout', '-outform', 'DER'],
                         capture_output=True, check=True).stdout
    return der[-32:]

def key_id(origin, raw): return H(origin + b'\n\x01' + raw)[:4]
def vkey(origin, raw): return origin + b'+' + key_id(origin, raw).hex().encode() + b'+' + B(b'\x01' + raw)

def openssl(args, data):
    with tempfile.NamedTemporaryFile() as f:
        f.write(data); f.flush()
        return subprocess.run(['openssl', 'pkeyutl'] + args + ['-rawin', '-in', f.name],
                              capture_output=True)

def sign(key, msg): return openssl(['-sign', '-inkey', key], msg).stdout

def verify(raw, msg, sig):
    pem = b'-----BEGIN PUBLIC KEY-----\n' + B(bytes.fromhex('302a300506032b6570032100') + raw) + \
          b'\n-----END PUBLIC KEY-----\n'
    with tempfile.NamedTemporaryFile() as k, tempfile.NamedTemporaryFile() as s:
        k.write(pem); k.flush(); s.write(sig); s.flush()
        return openssl(['-verify', '-pubin', '-inkey', k.name, '-sigfile', s.name], msg).returncode == 0

def records(d):
    for seg in sorted(glob.glob(d + '/seg-*.log')):
        for line in open(seg, 'rb').read().split(b'\n')[:-1]:
            entry, _ = line.rsplit(b'\t', 1)
            head, payload = entry.split(b'\t', 1)
            _, seq, t, typ = head.split(b' ')
            yield seg, head, int(seq), int(t), typ, payload, line

def sig_line(origin, key, raw, body):
    return DASH + origin + b' ' + B(key_id(origin, raw) + sign(key, body)) + b'\n'

def check(d, origin, oldpub, newpub):
    chain = bytes(32)
    for _, _, seq, t, typ, payload, line in records(d):
        if typ == b'K':
            note = base64.b64decode(payload)
            body, sigs = note.split(b'\n\n', 1)
            body += b'\n'
            old, new = raw_pub(oldpub), raw_pub(newpub)
            want = (origin + b'\nhsmgate-audit key rotation v1\nseq %d\ntime %d\nchain ' % (seq, t) +
                    B(chain) + b'\nold ' + vkey(origin, old) + b'\nnew ' + vkey(origin, new) + b'\n')
            assert body == want, (body, want)
            s = [base64.b64decode(l.split(b' ')[2]) for l in sigs.split(b'\n')[:-1]]
            assert len(s) == 2 and s[0][:4] == key_id(origin, old) and s[1][:4] == key_id(origin, new)
            assert verify(old, body, s[0][4:]) and verify(new, body, s[1][4:])
            print('rotation at seq %d verified' % seq)
            return
        chain = bytes.fromhex(line.rsplit(b' ', 1)[1].decode())
    sys.exit('no rotation record')

def forge(d, origin, mode, keys):
    # old-after OLD NEW: checkpoints after the rotation signed by the retired key.
    # rot-wrong OLD NEW STRANGER: the rotation signed by a stranger (and the new key).
    # resign S1 S2: everything re-signed by a forger with keys of his own, rotation included.
    out, chain, prev, leaves, rot, first = {}, bytes(32), bytes(32), [], None, None
    for seg, head, seq, t, typ, payload, _ in records(d):
        if typ == b'K':
            rot = seq
        key = None
        if typ == b'C' and mode == 'old-after' and rot is not None:
            key = keys[0]
        elif typ == b'C' and mode == 'rot-wrong' and rot is not None:
            key = keys[1]  # the new key, honestly: only the rotation is wrong
        elif typ == b'C' and mode == 'resign':
            key = keys[0] if rot is None else keys[1]
        if key is not None:
            body = (origin + b'\n%d\n' % seq + B(mth(leaves)) + b'\nchain ' + B(chain) +
                    b'\ntime %d\nprev ' % t + B(prev) + b'\n')
            payload = B(body + b'\n' + sig_line(origin, key, raw_pub(key), body))
            first = seq if first is None else first
        if typ == b'K' and mode in ('rot-wrong', 'resign'):
            old, new = (keys[2], keys[1]) if mode == 'rot-wrong' else (keys[0], keys[1])
            ro, rn = raw_pub(old), raw_pub(new)
            body = (origin + b'\nhsmgate-audit key rotation v1\nseq %d\ntime %d\nchain ' % (seq, t) +
                    B(chain) + b'\nold ' + vkey(origin, ro) + b'\nnew ' + vkey(origin, rn) + b'\n')
            payload = B(body + b'\n' + sig_line(origin, old, ro, body) + sig_line(origin, new, rn, body))
            first = seq if first is None else first
        if typ == b'C':
            prev = H(base64.b64decode(payload))
        entry = head + b'\t' + payload
        leaf = H(b'\x00' + entry)
        chain = H(b'\x02' + chain + leaf)
        leaves.append(leaf)
        out.setdefault(seg, []).append(entry + b'\t' + leaf.hex().encode() + b' ' + chain.hex().encode() + b'\n')
    for seg, lines in out.items():
        open(seg, 'wb').write(b''.join(lines))
    print(first)

if sys.argv[1] == 'check':
    check(sys.argv[2], sys.argv[3].encode(), sys.argv[4], sys.argv[5])
else:
    forge(sys.argv[2], sys.argv[3].encode(), sys.argv[4], sys.argv[5:])
PY
expect_output "independent check: the rotation record verifies (Python + openssl)" "^rotation at seq $rot verified" \
	python3 "$d/rotation.py" check "$d/audit" "$ORIGIN" "$d/audit-signing.pub" "$d/audit-new.pub"

forged() { # NAME MODE KEYS... — a copy of the log forged by rotation.py; echoes the first forged seq
	local name=$1
	shift
	rm -rf "$d/forged-$name"
	cp -r "$d/audit" "$d/forged-$name"
	python3 "$d/rotation.py" forge "$d/forged-$name" "$ORIGIN" "$@"
}
seq=$(forged old-after old-after "$d/audit-signing.key" "$d/audit-new.key")
[ "$seq" -gt "$rot" ] 2>/dev/null || fail "forge: old-after" "seq=$seq"
LOGDIR=$d/forged-old-after expect_output "forged: a checkpoint after the rotation signed by the old key → key window at seq $seq" \
	"^FAIL seq=$seq kind=key window" verify --pubkey "$d/audit-signing.pub"
LOGDIR=$d/forged-old-after expect_output "forged: the same, verified from after the rotation with the new key" \
	"^FAIL seq=$seq kind=bad signature" verify --pubkey "$d/audit-new.pub" --from $((rot + 1))
seq=$(forged rot-wrong rot-wrong "$d/audit-signing.key" "$d/audit-new.key" "$d/stranger.key")
LOGDIR=$d/forged-rot-wrong expect_output "forged: a rotation signed by a wrong key → bad signature at seq $rot" \
	"^FAIL seq=$rot kind=bad signature: rotation is signed by key [0-9a-f]{8}, not by the key in force" \
	verify --pubkey "$d/audit-signing.pub"
seq=$(forged resign resign "$d/stranger.key" "$d/stranger2.key")
first_c=$(awk -F'\t' '$1 ~ / C$/ { split($1, h, " "); print h[2]; exit }' "$d"/audit/seg-*.log)
LOGDIR=$d/forged-resign expect_output "forged: the whole log re-signed with other keys → bad signature at seq $first_c" \
	"^FAIL seq=$first_c kind=bad signature" verify --pubkey "$d/audit-signing.pub"
LOGDIR=$d/forged-resign expect_output "forged: ... and self-consistent under the forger's key (why the anchor matters)" \
	'^OK ' verify --pubkey "$d/stranger.pub"
# The writer refuses to continue a forged log, whatever key it is given.
cp "$d/hsmgated.yaml" "$d/hsmgated.yaml.orig"
sed -i "s|^  dir: audit$|  dir: forged-old-after|" "$d/hsmgated.yaml"
start_refused "gateway: refuses to continue a log whose key window was forged" 'damaged beyond a torn final line'
cp "$d/hsmgated.yaml.orig" "$d/hsmgated.yaml"

# --- online rotation: SIGHUP with a new audit.signing_key ------------------------------------------
# hup_log REGEX — SIGHUP hsmgated and wait for REGEX in what it logs from then on.
hup_log() {
	local before i
	before=$(wc -l <"$d/hsmgated.log")
	kill -HUP "$E2E_PID"
	for i in $(seq 1 100); do
		tail -n +"$((before + 1))" "$d/hsmgated.log" | grep -Eq -- "$1" && return 0
		sleep 0.1
	done
	echo "expected /$1/ in:"
	tail -n +"$((before + 1))" "$d/hsmgated.log" | tail -n 5
	return 1
}
rotations() { cat "$d"/audit/seg-*.log | grep -c 'hsmgate.audit-key.rotate'; }
"$AUDIT" keygen --out "$d/audit-third" >/dev/null || fail "keygen" "third key"
e2e_start || { fail "online: hsmgated starts with the second key" "did not start"; exit 1; }
before_rot=$(rotations)
set_key missing.key
check "online: a missing new key fails the reload, says to use keygen" \
	hup_log 'reload failed; keeping the running configuration.*missing.key.*hsmgate-audit keygen'
chmod 0644 "$d/audit-third.key"
set_key audit-third.key
check "online: a new key readable by others fails the reload" hup_log 'reload failed.*mode 0600; it is 0644'
chmod 0600 "$d/audit-third.key"
set_key audit-signing.key
check "online: a retired key fails the reload" \
	hup_log 'reload failed.*cannot rotate.*the key in force or a key this log retired'
[ "$(rotations)" = "$before_rot" ] && pass "online: the refused reloads wrote no rotation" ||
	fail "online: the refused reloads wrote no rotation" "$(rotations) rotation events, $before_rot before"
check "online: serves after the refused reloads" random_ok alice
set_key audit-third.key
check "online: SIGHUP rotates the running log to the new key" \
	hup_log 'audit signing key rotated online.*new_key=[^ ]*audit-third.key rotation_seq=[0-9]+'
[ "$(rotations)" = "$((before_rot + 1))" ] && pass "online: one hsmgate.audit-key.rotate event" ||
	fail "online: one hsmgate.audit-key.rotate event" "$(rotations) rotation events, $before_rot before"
check "online: serves with the new key, no restart" random_ok alice
check "online: a second SIGHUP with the same key changes nothing" hup_log 'configuration reloaded'
[ "$(rotations)" = "$((before_rot + 1))" ] && pass "online: still one rotation more" ||
	fail "online: still one rotation more" "$(rotations) rotation events"
e2e_stop
expect_output "online: verify from the first key: OK, 2 rotations, the third key in force" \
	"^keys: 2 rotations; the key in force is $ORIGIN\\+" verify --pubkey "$d/audit-signing.pub"
expect_output "online: verify with the three keys" '^OK ' \
	verify --pubkey "$d/audit-signing.pub" --pubkey "$d/audit-new.pub" --pubkey "$d/audit-third.pub"
set_key audit-new.key
start_refused "online: the key retired online is refused at the next start" 'is not the key in force'
set_key audit-third.key
e2e_start && pass "online: the next start takes the new key" ||
	{ fail "online: the next start takes the new key" "did not start"; exit 1; }
e2e_stop

# --- nothing secret in the log ----------------------------------------------------------------------
leak=
for k in audit-signing audit-new audit-third; do
	secret=$(openssl pkey -in "$d/$k.key" -outform DER 2>/dev/null | tail -c 32 | base64)
	[ -n "$secret" ] && grep -rqF -- "$secret" "$d/audit" && leak="$leak $k"
done
grep -rq 'PRIVATE' "$d/audit" && leak="$leak PEM"
[ -z "$leak" ] && pass "keys: no private key material in the log" || fail "keys: no private key material in the log" "$leak"
exit 0
