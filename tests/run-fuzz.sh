#!/bin/sh
# Bounded libFuzzer runs: each target for N seconds over its seed corpus in
# tests/fuzz/corpus/<name>/ (new inputs go to a scratch copy, not the repo).
secs=$1
shift
fail=0
for f in "$@"; do
	name=$(basename "$f")
	seeds="tests/fuzz/corpus/$name"
	work="build/fuzz/corpus-$name"
	mkdir -p "$work"
	[ -d "$seeds" ] && cp -r "$seeds"/. "$work"/ 2>/dev/null
	echo "== fuzz $name for ${secs}s"
	if ! "$f" -max_total_time="$secs" -print_final_stats=1 -artifact_prefix=build/fuzz/ \
		"$work" >"build/fuzz/$name.log" 2>&1; then
		tail -n 40 "build/fuzz/$name.log"
		echo "fuzz $name: FAILED (log build/fuzz/$name.log)"
		fail=1
	else
		grep -E 'stat::number_of_executed_units' "build/fuzz/$name.log" || true
	fi
done
exit $fail
