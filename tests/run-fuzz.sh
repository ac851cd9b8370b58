#!/bin/sh
# Bounded libFuzzer runs: each target for N seconds over its seed corpus in
# tests/fuzz/corpus/<name>/ (new inputs go to a scratch copy, not the repo).
# Ends with `fuzz: N targets passed, M failed (S s each)`.
secs=$1
shift
out=${FUZZ_O:-build/fuzz}
pass=0
fail=0
for f in "$@"; do
	name=$(basename "$f")
	seeds="tests/fuzz/corpus/$name"
	work="$out/corpus-$name"
	mkdir -p "$work"
	[ -d "$seeds" ] && cp -r "$seeds"/. "$work"/ 2>/dev/null
	echo "== fuzz $name for ${secs}s"
	if ! "$f" -max_total_time="$secs" -print_final_stats=1 -artifact_prefix="$out/" \
		"$work" >"$out/$name.log" 2>&1; then
		tail -n 40 "$out/$name.log"
		echo "fuzz $name: FAILED (log $out/$name.log)"
		fail=$((fail + 1))
	else
		grep -E 'stat::number_of_executed_units' "$out/$name.log" || true
		pass=$((pass + 1))
	fi
done
echo "fuzz: $pass targets passed, $fail failed (${secs} s each)"
[ "$fail" = 0 ]
