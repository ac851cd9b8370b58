# shellcheck shell=bash
# minivmm e2e: virtio-balloon (scenario balloon): free page reporting gives memory the
# guest freed back to the host unasked (and does not with it off), a target set through
# the API is reached (event), statistics arrive. Sourced by tests/e2e/run.sh.
# SPDX-License-Identifier: GPL-2.0-or-later

# shellcheck disable=SC2034 # used by run.sh
BALLOON_CASES="balloon_report balloon_target balloon_oom balloon_snapshot balloon_policy"
# Too slow for every make check (a Linux guest three levels deep under the emulated L1:
# ~8 min): `make e2e-slow` runs them (not a *_CASES list, so run.sh does not take them).
SLOW_E2E="balloon_nested"

# vmm_rss: minivmm's resident memory in KiB (guest RAM included); $pid is its timeout.
vmm_rss() {
	local p
	p=$(cut -d' ' -f1 /proc/"$pid"/task/"$pid"/children 2>/dev/null)
	awk '/^VmRSS:/ { print $2 }' "/proc/${p:-$pid}/status" 2>/dev/null
}

# balloon_boot ARGS...: boot the balloon scenario in the background with an API socket
# $T/api$bn.sock; $pid is minivmm's, the console goes to $T/c$bn.log ($bn: "", or a
# suffix for one of several guests at once). $bargs: more kernel options for the
# scenario, $bmem: the guest's memory (256M).
bn=""
balloon_boot() {
	rm -f "$T/c$bn.log" "$T/api$bn.sock"
	timeout -k 5 "$LIMIT" "$MINIVMM" run "$CFG" \
		--set "boot.cmdline=$GUEST_BOOT minivmm.modules=1 minivmm.scenario=balloon${bargs:+ $bargs}" \
		--set "console.serial=file:$T/c$bn.log" --set "vm.memory=${bmem:-256M}" \
		--api-socket "$T/api$bn.sock" "$@" </dev/null >"$T/out$bn" 2>"$T/err$bn" &
	pid=$!
}

# wait_console LINE [LOG]: until the guest printed LINE (a whole line, a grep pattern) to
# LOG ($T/c.log) (false when minivmm $pid ended or at the limit).
wait_console() {
	local i log=${2:-$T/c$bn.log}
	for ((i = 0; i < LIMIT * 5; i++)); do
		# (No process substitution: the L1's /dev has no /dev/fd.)
		[ -e "$log" ] && tr -d '\r' <"$log" | grep -q -x "$1" && return 0
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.2
	done
	why="the guest never printed $1"
	return 1
}

balloon_end() {
	"$MINIVMM" ctl --socket "$T/api$bn.sock" stop >/dev/null 2>&1 || kill "$pid" 2>/dev/null
	wait "$pid"
	rc=$?
	tr -d '\r' <"$T/c$bn.log" >"$T/out$bn.txt"
}

# balloon_fill_free on|off (in a subshell, $bn set): with free page reporting on or off,
# minivmm's RSS when the guest filled 96 MiB and 8 s after it freed them (KiB), its
# balloon and its exit status -> $T/res$bn: "FILLED FREED RC", $T/state$bn.
balloon_fill_free() {
	local filled freed
	balloon_boot --set "balloon.free_page_reporting=$1"
	wait_console BALLOON_FILLED && filled=$(vmm_rss) &&
		wait_console BALLOON_FREED && sleep 8 && # Linux reports free pages 2 s after they gather
		freed=$(vmm_rss)
	"$MINIVMM" ctl --socket "$T/api$bn.sock" balloon >"$T/state$bn" 2>>"$T/err$bn"
	balloon_end
	echo "${filled:--} ${freed:--} $rc" >"$T/res$bn"
	echo "  balloon ($1): minivmm RSS ${filled:-?} KiB with 96 MiB filled, ${freed:-?} KiB 8 s after freeing; $(cat "$T/state$bn")"
}

# Free page reporting on (the default): at least 80% of the 96 MiB the guest freed leave
# the host; and off (the control, a second guest at the same time): they stay.
t_balloon_report() {
	local on off
	(bn=1 && balloon_fill_free on) &
	(bn=2 && balloon_fill_free off) &
	wait
	cat "$T/out1.txt" "$T/out2.txt" >"$T/out.txt" 2>/dev/null
	cat "$T/err1" "$T/err2" >"$T/err" 2>/dev/null
	if ! read -r -a on <"$T/res1" || ! read -r -a off <"$T/res2"; then
		why="no result"
		return 1
	fi
	rc=${on[2]}
	expect_rc 0 || { why="$why (reporting on)"; return 1; }
	rc=${off[2]}
	expect_rc 0 || { why="$why (reporting off)"; return 1; }
	if ! grep -q -x BALLOON_DRIVER=bound "$T/out1.txt" || ! grep -q -x BALLOON_DRIVER=bound "$T/out2.txt"; then
		why="the driver did not bind"
		return 1
	fi
	if [ "${on[0]}" = - ] || [ "${on[1]}" = - ] || [ $((on[0] - on[1])) -lt 78644 ]; then
		why="reporting on: RSS went from ${on[0]} to ${on[1]} KiB: not 80% of 96 MiB given back"
		return 1
	fi
	grep -q '"reported_bytes":[1-9]' "$T/state1" || { why="no reported bytes: $(cat "$T/state1")"; return 1; }
	if [ "${off[0]}" = - ] || [ "${off[1]}" = - ] || [ $((off[0] - off[1])) -ge 16384 ]; then
		why="reporting off: RSS went from ${off[0]} to ${off[1]} KiB"
		return 1
	fi
	grep -q '"reported_bytes":0,' "$T/state2" || { why="reported bytes with reporting off: $(cat "$T/state2")"; return 1; }
}

# stat_free JSON: the guest's free-memory statistic in MiB (empty when it sent none).
stat_free() {
	local b
	b=$(sed -n 's/.*"free-memory":\([0-9]*\).*/\1/p' <<<"$1")
	[ -n "$b" ] && echo $((b >> 20))
}

# A target through the API: the guest inflates to it (event: its free memory and
# minivmm's RSS go down), statistics arrive, a deflate.
t_balloon_target() {
	local ev i s s0 rss0 rss1 free0 free1
	balloon_boot --set balloon.free_page_reporting=off || return 1
	wait_console BALLOON_FREED || { balloon_end; return 1; }
	"$MINIVMM" ctl --socket "$T/api.sock" balloon >/dev/null 2>>"$T/err"
	sleep 1 # the statistics asked for just now
	s0=$("$MINIVMM" ctl --socket "$T/api.sock" balloon 2>>"$T/err")
	rss0=$(vmm_rss)
	"$MINIVMM" ctl --socket "$T/api.sock" events >"$T/events" 2>/dev/null &
	ev=$!
	sleep 0.5
	"$MINIVMM" ctl --socket "$T/api.sock" balloon 160M >"$T/state" 2>>"$T/err" ||
		{ why="ctl balloon 160M failed: $(tail -n 2 "$T/err")"; kill "$ev"; balloon_end; return 1; }
	for ((i = 0; i < LIMIT * 2; i++)); do
		grep -q '"event":"balloon-target-reached"' "$T/events" && break
		sleep 0.5
	done
	"$MINIVMM" ctl --socket "$T/api.sock" balloon >"$T/state" 2>>"$T/err"
	sleep 1 # the statistics asked for just now
	"$MINIVMM" ctl --socket "$T/api.sock" balloon >"$T/state2" 2>>"$T/err"
	rss1=$(vmm_rss)
	"$MINIVMM" ctl --socket "$T/api.sock" balloon 256M >/dev/null 2>>"$T/err"
	for ((i = 0; i < LIMIT * 2; i++)); do
		s=$("$MINIVMM" ctl --socket "$T/api.sock" balloon 2>/dev/null)
		case $s in *'"actual_pages":0,'*) break ;; esac
		sleep 0.5
	done
	kill "$ev" 2>/dev/null
	wait "$ev" 2>/dev/null
	balloon_end
	free0=$(stat_free "$s0")
	free1=$(stat_free "$(cat "$T/state2")")
	echo "  balloon_target: guest free memory ${free0:-?} -> ${free1:-?} MiB, minivmm RSS" \
		"$((${rss0:-0} >> 10)) -> $((${rss1:-0} >> 10)) MiB; after 'balloon 160M': $(cat "$T/state2")"
	expect_rc 0 || return 1
	if [ -z "$free0" ] || [ -z "$free1" ] || [ $((free0 - free1)) -lt 80 ]; then
		why="the guest's free memory went from ${free0:-?} to ${free1:-?} MiB, not 80 MiB less"
		return 1
	fi
	if [ -z "$rss0" ] || [ -z "$rss1" ] || [ $((rss0 - rss1)) -lt 32768 ]; then
		why="minivmm's RSS went from ${rss0:-?} to ${rss1:-?} KiB, not 32 MiB less"
		return 1
	fi
	grep -q '"event":"balloon-target-reached","ts_ms":[0-9]*,"data":{"size":167772160,"actual_pages":24576}' "$T/events" ||
		{ why="no balloon-target-reached event for 160 MiB: $(grep balloon "$T/events" | head -n 3)"; return 1; }
	grep -q '"actual_pages":24576,"inflated_pages":2[4-9][0-9][0-9][0-9]' "$T/state" ||
		{ why="the balloon does not hold 24576 pages: $(cat "$T/state")"; return 1; }
	grep -q '"stats":{.*"free-memory":[1-9]' "$T/state2" ||
		{ why="no guest statistics: $(cat "$T/state2")"; return 1; }
	case $s in *'"actual_pages":0,'*) ;; *) why="not deflated: $s"; return 1 ;; esac
}

# Deflate on OOM: with 160 of its 256 MiB in the balloon the guest fills 128 MiB of tmpfs,
# more than it has left: it takes pages back from the balloon instead of an OOM kill.
t_balloon_oom() {
	local s
	bargs=minivmm.balloon_oom=128 balloon_boot --set balloon.deflate_on_oom=on
	wait_console BALLOON_OOM_WAITING || { balloon_end; return 1; }
	"$MINIVMM" ctl --socket "$T/api.sock" balloon 96M >/dev/null 2>>"$T/err"
	wait_console 'BALLOON_OOM_FILLED.*' || { balloon_end; return 1; }
	wait_console 'BALLOON_ALIVE 2' || { balloon_end; return 1; }
	s=$("$MINIVMM" ctl --socket "$T/api.sock" balloon 2>/dev/null)
	balloon_end
	echo "  balloon_oom: $(grep -m 2 -e BALLOON_OOM_FILL "$T/out.txt" | tr '\n' ' ')balloon: $s"
	expect_rc 0 && expect_out 'BALLOON_OOM_FILLED 128' || return 1
	grep -q -i -e 'oom-killer' -e 'Out of memory' "$T/out.txt" &&
		{ why="an OOM kill: $(grep -i -m 2 -e oom -e 'out of memory' "$T/out.txt")"; return 1; }
	# the guest gave back pages of the 40960 the host asked for
	if ! [[ $s =~ \"target_pages\":40960,\"actual_pages\":([0-9]+), ]] || [ "${BASH_REMATCH[1]}" -ge 40960 ]; then
		why="the balloon did not deflate: $s"
		return 1
	fi
}

# balloon_wait_pages SOCKET N: until the balloon holds N pages ($s: the last state).
balloon_wait_pages() {
	local i
	for ((i = 0; i < LIMIT * 2; i++)); do
		s=$("$MINIVMM" ctl --socket "$1" balloon 2>/dev/null)
		case $s in *"\"actual_pages\":$2,"*) return 0 ;; esac
		sleep 0.5
	done
	why="the balloon never held $2 pages: $s"
	return 1
}

# balloon_restore [--lazy]: restore $T/b.snap; once the balloon holds its 14336 pages
# again and statistics came back, deflate it all (lazily restored memory included) and
# stop. $s: the balloon after the restore, $d: after the deflate.
balloon_restore() {
	local i
	rm -f "$T/api2.sock"
	timeout -k 5 "$LIMIT" "$MINIVMM" restore "$T/b.snap" "$@" --set "console.serial=file:$T/c2.log" \
		--api-socket "$T/api2.sock" </dev/null >"$T/out2" 2>"$T/err2" &
	pid=$!
	balloon_wait_pages "$T/api2.sock" 14336 || { balloon_end; return 1; }
	# A statistics request after the restore comes back: the lent buffer survived.
	for ((i = 0; i < 40; i++)); do
		s=$("$MINIVMM" ctl --socket "$T/api2.sock" balloon 2>/dev/null)
		case $s in *'"stats_updates":0,'* | '') sleep 0.5 ;; *) break ;; esac
	done
	d=$s
	"$MINIVMM" ctl --socket "$T/api2.sock" balloon 256M >/dev/null 2>>"$T/err"
	balloon_wait_pages "$T/api2.sock" 0
	i=$d d=$s s=$i
	"$MINIVMM" ctl --socket "$T/api2.sock" stop >/dev/null 2>&1 || kill "$pid" 2>/dev/null
	wait "$pid"
	rc=$?
	tr -d '\r' <"$T/c.log" >"$T/out.txt"
	echo "  balloon_snapshot: restored ${1:-eagerly}: $s"
	expect_rc 0 || { why="$why (restore $*: $(tail -n 2 "$T/err2"))"; return 1; }
	case $s in *'"target_pages":14336,"actual_pages":14336,'*) ;; *) why="restored balloon: $s"; return 1 ;; esac
	case $s in *'"stats_updates":0,'*) why="no statistics after the restore: $s"; return 1 ;; esac
	grep -q '"stats":{.*"free-memory":[1-9]' <<<"$s" || { why="no free-memory statistic: $s"; return 1; }
	case $d in *'"target_pages":0,"actual_pages":0,'*) ;; *) why="not deflated after the restore: $d"; return 1 ;; esac
}

# Saved with the balloon inflated and the statistics buffer lent to the device, restored
# eagerly and lazily: the balloon still holds its pages, the guest still answers for
# statistics and deflates.
t_balloon_snapshot() {
	local s d r
	balloon_boot --set balloon.free_page_reporting=off || return 1
	wait_console BALLOON_FREED || { balloon_end; return 1; }
	"$MINIVMM" ctl --socket "$T/api.sock" balloon 200M >/dev/null 2>>"$T/err"
	balloon_wait_pages "$T/api.sock" 14336 || { balloon_end; return 1; }
	"$MINIVMM" save --socket "$T/api.sock" "$T/b.snap" --stop 2>"$T/save.err" ||
		{ why="save failed: $(cat "$T/save.err")"; balloon_end; return 1; }
	wait "$pid"
	r=$?
	[ "$r" = 0 ] || { why="the saved VM exited $r"; return 1; }
	balloon_restore || return 1
	balloon_restore --lazy
}

# policy_end: stop the policy's two guests ($pids), their consoles to $T/out.txt.
policy_end() {
	local a
	for a in 1 2; do
		"$MINIVMM" ctl --socket "$T/api$a.sock" stop >/dev/null 2>&1 || kill "${pids[a - 1]}" 2>/dev/null
	done
	wait "${pids[0]}"
	rc=$?
	wait "${pids[1]}" || rc=$?
	cat "$T/c1.log" "$T/c2.log" 2>/dev/null | tr -d '\r' >"$T/out.txt"
}

# policy_state: each guest's balloon -> $s1, $s2 (JSON), and what each keeps -> $k1, $k2 (MiB).
# (A guest that answers nothing keeps 0 here: the checks below then say so, the shell
# goes on; CI once lost the whole case to an arithmetic error on an empty answer.)
policy_state() {
	local v
	s1=$("$MINIVMM" ctl --socket "$T/api1.sock" balloon 2>"$T/ctl1.err")
	s2=$("$MINIVMM" ctl --socket "$T/api2.sock" balloon 2>"$T/ctl2.err")
	v=$(sed -n 's/.*"actual":\([0-9]*\).*/\1/p' <<<"$s1")
	k1=$((${v:-0} >> 20))
	v=$(sed -n 's/.*"actual":\([0-9]*\).*/\1/p' <<<"$s2")
	k2=$((${v:-0} >> 20))
}

# settled JSON: the balloon holds what it was asked to.
settled() {
	local ta
	ta=$(sed -n 's/.*"target_pages":\([0-9]*\),"actual_pages":\([0-9]*\),.*/\1 \2/p' <<<"$1")
	[ -n "$ta" ] && [ "${ta% *}" = "${ta#* }" ]
}

# The overcommit policy: two 400 MiB guests (twice the 400 MiB budget), the first holding
# 128 MiB of tmpfs, the second idle. balloon-policy brings what they keep within the
# budget, the busy one keeping more, and both go on running without an OOM kill.
t_balloon_policy() {
	local a pids=() s1 s2 k1 k2 r i n1 n2 rss1=0 rss2=0 hold
	for a in 1 2; do
		hold=$((a == 1 ? 128 : 0))
		bn=$a bargs=minivmm.balloon_hold=$hold bmem=400M balloon_boot \
			--set balloon.free_page_reporting=on
		pids+=("$pid")
	done
	for a in 1 2; do
		pid=${pids[a - 1]}
		wait_console 'BALLOON_HELD.*' "$T/c$a.log" || { policy_end; return 1; }
		rss1=$((rss1 + $(vmm_rss)))
	done
	"$MINIVMM" balloon-policy --budget 400M --interval 1 --rounds 12 -v \
		"$T/api1.sock" "$T/api2.sock" >"$T/policy.log" 2>&1
	r=$?
	# The guests inflate at their own pace: until both hold their targets.
	for ((i = 0; i < 60; i++)); do
		policy_state
		settled "$s1" && settled "$s2" && break
		sleep 0.5
	done
	n1=$(grep -c BALLOON_ALIVE "$T/c1.log")
	n2=$(grep -c BALLOON_ALIVE "$T/c2.log")
	sleep 4 # both still running: new heartbeats
	for a in 1 2; do
		pid=${pids[a - 1]}
		rss2=$((rss2 + $(vmm_rss)))
	done
	for a in 1 2; do
		pid=${pids[a - 1]}
		kill -0 "$pid" 2>/dev/null && continue
		policy_end
		why="guest $a's minivmm ended during the policy (status $rc): $(tail -n 4 "$T/err$a" | tr '\n' ' ') ctl: $(tail -n 2 "$T/ctl$a.err" | tr '\n' ' ') console: $(tail -n 4 "$T/c$a.log" | tr -d '\r' | tr '\n' ' ' | cut -c1-300)"
		return 1
	done
	policy_end
	echo "  balloon_policy: 2 x 400 MiB guests, budget 400 MiB: they keep $k1 + $k2 MiB;" \
		"minivmm RSS $((rss1 >> 10)) MiB before, $((rss2 >> 10)) MiB after; the policy's last round:"
	grep 'api[12].sock:' "$T/policy.log" | tail -n 2 | sed "s|$T/||; s/^/    /"
	[ "$r" = 0 ] || { why="balloon-policy exited $r: $(tail -n 3 "$T/policy.log")"; return 1; }
	grep -q -i -e 'oom-killer' -e 'Out of memory' "$T/out.txt" &&
		{ why="a guest ran out of memory: $(grep -i -m 2 -e oom -e 'out of memory' "$T/out.txt")"; return 1; }
	[ $((k1 + k2)) -le 408 ] || { why="the guests keep $k1 + $k2 MiB, budget 400: $(tail -n 4 "$T/policy.log")"; return 1; }
	[ "$k1" -ge $((k2 + 64)) ] || { why="the busy guest keeps $k1 MiB, the idle one $k2"; return 1; }
	if [ "$(grep -c BALLOON_ALIVE "$T/c1.log")" -le "$n1" ] || [ "$(grep -c BALLOON_ALIVE "$T/c2.log")" -le "$n2" ]; then
		why="a guest stopped running after the policy (heartbeats $n1, $n2)"
		return 1
	fi
}

# job_wait LINE: until the inner guest printed LINE ($J/l3.log) within $lim s.
job_wait() {
	local i
	for ((i = 0; i < lim * 2; i++)); do
		[ -e "$J/l3.log" ] && tr -d '\r' <"$J/l3.log" | grep -q -x "$1" && return 0
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.5
	done
	why="the inner guest never printed $1 (inner minivmm: $(tail -n 3 "$J/l3.err" 2>/dev/null | tr '\n' ' '); its console: $(tr -d '\r' <"$J/l3.log" 2>/dev/null | tail -n 4 | tr '\n' ' ' | cut -c1-400))"
	return 1
}

# nested_why: what the hypervisor VM said last, and how it ended.
nested_why() {
	why="$why; the hypervisor VM exited $rc: $(tail -n 3 "$T/err" | tr '\n' ' '); its console: $(tail -n 3 "$T/out.txt" | tr '\n' ' ' | cut -c1-300)"
}

# Nested overcommit (make e2e-slow): a hypervisor VM (768 MiB, nested = on, free page reporting) runs
# minivmm (scenario nested: the host's / shared read-only, chrooted into) with a 256 MiB
# guest of its own that fills 96 MiB and frees them (scenario balloon). The inner guest's
# reporting hands them to the inner minivmm, which gives them back to the hypervisor VM's
# kernel, whose own reporting hands them to this minivmm: its RSS drops too.
t_balloon_nested() {
	local share=$T/root J=$T/job lim=$((LIMIT * 2)) r0 r1 i0 i1 m cfg
	m=$(readlink -f "$MINIVMM")
	cfg=$(readlink -f "$CFG")
	mkdir -p "$share" "$J"
	# The FUSE server does not cross mount points: share a plain bind mount of / (fs_rootfs).
	unshare -m --propagation private true 2>/dev/null ||
		{ why="cannot run here: needs a mount namespace of its own (root)"; return 1; }
	cat >"$J/job.sh" <<JOB
# Run in the hypervisor VM (scenario nested): the inner guest, its minivmm's RSS each second.
$m run $cfg --set vm.memory=256M --set balloon.free_page_reporting=on \\
	--set "boot.cmdline=$GUEST_BOOT minivmm.scenario=balloon minivmm.balloon_src=zero" \\
	--set console.serial=file:/tmp/job/l3.log </dev/null >/tmp/job/l3.out 2>/tmp/job/l3.err &
p=\$!
while kill -0 \$p 2>/dev/null; do
	awk '/^VmRSS:/ { print \$2 }' /proc/\$p/status >/tmp/job/rss.tmp 2>/dev/null && mv /tmp/job/rss.tmp /tmp/job/rss
	sleep 1
done
wait \$p
JOB
	rm -f "$T/c.log" "$T/api.sock"
	timeout -k 5 $((lim + 60)) "$repo/tests/harness/rootbind.sh" "$share" \
		"$MINIVMM" run "$CFG" --set vm.memory=768M --set vm.nested=on \
		--set "share.0.path=$share" --set share.0.tag=root --set share.0.readonly=on \
		--set "share.1.path=$J" --set share.1.tag=job --set balloon.free_page_reporting=on \
		--set "boot.cmdline=$GUEST_BOOT minivmm.modules=1 minivmm.scenario=nested" \
		--set "console.serial=file:$T/c.log" --api-socket "$T/api.sock" </dev/null >"$T/out" 2>"$T/err" &
	pid=$!
	wait_console NESTED_READY || { balloon_end; return 1; }
	job_wait BALLOON_FILLED || { balloon_end; nested_why; return 1; }
	r0=$(vmm_rss)
	i0=$(cat "$J/rss" 2>/dev/null)
	job_wait BALLOON_FREED || { balloon_end; nested_why; return 1; }
	sleep 12 # each level reports free pages 2 s after they gather
	r1=$(vmm_rss)
	i1=$(cat "$J/rss" 2>/dev/null)
	balloon_end
	tr -d '\r' <"$J/l3.log" >>"$T/out.txt"
	echo "  balloon_nested: with 96 MiB filled in the inner guest / 12 s after it freed them:" \
		"inner minivmm RSS ${i0:-?} / ${i1:-?} KiB, outer minivmm RSS ${r0:-?} / ${r1:-?} KiB"
	grep -q '^NESTED_FAIL' "$T/out.txt" && { why=$(grep -m 1 '^NESTED_FAIL' "$T/out.txt"); return 1; }
	expect_rc 0 || return 1
	if [ -z "$r0" ] || [ -z "$r1" ] || [ $((r0 - r1)) -lt 49152 ]; then
		why="the outer minivmm's RSS went from ${r0:-?} to ${r1:-?} KiB: not 48 MiB given back"
		return 1
	fi
}
