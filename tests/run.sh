#!/usr/bin/env bash
# tests/run.sh — runs every unit-test binary and every end-to-end test, and ends with the
# line "N passed, N failed". Each unit binary prints "RESULT <name> tests=N passed=P failed=F";
# each end-to-end script prints "PASS <name>" / "FAIL <name>" per case. A binary or script
# that dies without its summary counts as one failure.
set -u
BUILD=${BUILD:-build}
export BUILD
cd "$(dirname "$0")/.."
log_dir=$BUILD/test-logs
mkdir -p "$log_dir"
passed=0
failed=0
failures=()

run_unit() {
	local bin=$1 name out rc line
	name=${bin#"$BUILD"/tests/}
	out=$log_dir/$(echo "$name" | tr / _).log
	timeout 300 "$bin" >"$out" 2>&1
	rc=$?
	line=$(grep -E '^RESULT ' "$out" | tail -n 1)
	if [ -z "$line" ]; then
		failed=$((failed + 1))
		failures+=("$name (exit $rc, no summary; see $out)")
		return
	fi
	local p f
	p=$(sed -E 's/.*passed=([0-9]+).*/\1/' <<<"$line")
	f=$(sed -E 's/.*failed=([0-9]+).*/\1/' <<<"$line")
	passed=$((passed + p))
	failed=$((failed + f))
	if [ "$f" -gt 0 ] || [ "$rc" -ne 0 ]; then
		[ "$f" -eq 0 ] && failed=$((failed + 1))
		failures+=("$name: $f failed (see $out)")
		grep -E -A3 'Suite .* Test .* had failures|^ +[0-9]+\. ' "$out" | head -40
	fi
	printf '%-50s %s\n' "$name" "${line#RESULT * }"
}

run_e2e() {
	local script=$1 name out rc p f
	name=$(basename "$script" .sh)
	out=$log_dir/e2e_$name.log
	timeout 900 bash "$script" >"$out" 2>&1
	rc=$?
	p=$(grep -c '^PASS ' "$out")
	f=$(grep -c '^FAIL ' "$out")
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1
		echo "FAIL $name: exited $rc without a FAIL line" >>"$out"
	fi
	passed=$((passed + p))
	failed=$((failed + f))
	printf '%-50s passed=%s failed=%s\n' "e2e/$name" "$p" "$f"
	if [ "$f" -gt 0 ]; then
		failures+=("e2e/$name: $f failed (see $out)")
		grep -E '^(FAIL|  )' "$out" | head -40
	fi
}

filter=${TEST_FILTER:-}
for bin in $(find "$BUILD/tests" -type f -perm -u+x -path "$BUILD/tests/*/test_*" 2>/dev/null | sort); do
	[ -n "$filter" ] && [[ $bin != *$filter* ]] && continue
	run_unit "$bin"
done
for script in tests/e2e/*.sh; do
	[ -e "$script" ] || continue
	[ -n "$filter" ] && [[ $script != *$filter* ]] && continue
	run_e2e "$script"
done

# Each fuzz target replays its corpus plus FUZZ_RUNS new inputs: one test each.
fuzz_build=${FUZZ_BUILD:-build-fuzz}
for bin in $(find "$fuzz_build/fuzz" -type f -perm -u+x -name '*_fuzz' 2>/dev/null | sort); do
	name=$(basename "$bin" _fuzz)
	[ -n "$filter" ] && [[ fuzz/$name != *$filter* ]] && continue
	out=$log_dir/fuzz_$name.log
	corpus=tests/fuzz/corpus/$name
	work=$(mktemp -d)
	[ -d "$corpus" ] && cp -r "$corpus"/. "$work"/ 2>/dev/null
	if timeout 300 "$bin" -runs="${FUZZ_RUNS:-20000}" -max_len=65536 -rss_limit_mb=2048 \
		-artifact_prefix="$log_dir/fuzz_${name}_" "$work" >"$out" 2>&1; then
		passed=$((passed + 1))
		printf '%-50s %s\n' "fuzz/$name" "ok ($(grep -Eo 'Done [0-9]+ runs' "$out" | tail -n 1))"
	else
		failed=$((failed + 1))
		failures+=("fuzz/$name: crashed (see $out)")
		grep -E 'ERROR|SUMMARY' "$out" | head -5
	fi
	rm -rf "$work"
done

if [ ${#failures[@]} -gt 0 ]; then
	echo
	echo "failures:"
	printf '  %s\n' "${failures[@]}"
fi
echo
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
