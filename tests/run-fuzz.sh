#!/bin/bash
# Bounded libFuzzer runs: each target for N seconds over its seed corpus in
# tests/fuzz/corpus/<name>/ (new inputs go to a scratch copy, not the repo), FUZZ_JOBS
# (default: the number of CPUs) targets at a time; results are printed in target order.
# Ends with `fuzz: N targets passed, M failed (S s each)`.
secs=$1
shift
out=${FUZZ_O:-build/fuzz}
jobs=${FUZZ_JOBS:-$(nproc)}
pass=0
fail=0

# one TARGET: fuzz it; its exit status is the fuzzer's.
one() {
	local f=$1 name seeds work
	name=$(basename "$f")
	seeds="tests/fuzz/corpus/$name"
	work="$out/corpus-$name"
	mkdir -p "$work"
	[ -d "$seeds" ] && cp -r "$seeds"/. "$work"/ 2>/dev/null
	"$f" -max_total_time="$secs" -print_final_stats=1 -artifact_prefix="$out/$name-" \
		"$work" >"$out/$name.log" 2>&1
}

declare -A pid
for f in "$@"; do
	while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do
		wait -n
	done
	one "$f" &
	pid[$f]=$!
done
for f in "$@"; do
	name=$(basename "$f")
	echo "== fuzz $name for ${secs}s"
	if ! wait "${pid[$f]}"; then
		tail -n 40 "$out/$name.log"
		echo "fuzz $name: FAILED (log $out/$name.log)"
		fail=$((fail + 1))
	else
		grep -E 'stat::number_of_executed_units' "$out/$name.log" || true
		pass=$((pass + 1))
	fi
done
echo "fuzz: $pass targets passed, $fail failed (${secs} s each, $jobs at a time)"
[ "$fail" = 0 ]
