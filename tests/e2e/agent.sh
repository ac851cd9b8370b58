# shellcheck shell=bash
# minivmm e2e: the guest agent (docs/agent.md) driven with `minivmm exec` and `minivmm cp`
# through the VM's control socket and its vsock device. The test guest starts
# /sbin/minivmm-agent for minivmm.agent=PORT; scenario sleep keeps it running.
# Sourced by tests/e2e/run.sh.
# SPDX-License-Identifier: GPL-2.0-or-later
# shellcheck disable=SC2016 # the guest expands them

# shellcheck disable=SC2034 # used by run.sh
AGENT_CASES="agent_exec agent_cp agent_clones events_panic lib_example"

# agent_boot NAME [ARGS...]: a guest with the agent on port 1024, in the background:
# API socket $T/NAME.api, vsock socket $T/NAME.vsock, console $T/NAME.log; pid in $apid.
agent_boot() {
	local n=$1
	shift
	rm -f "$T/$n.api" "$T/$n.vsock"
	timeout -k 5 "$LIMIT" "$MINIVMM" run "$CFG" -v \
		--set "boot.cmdline=$GUEST_BOOT minivmm.scenario=sleep minivmm.agent=1024" \
		--set "console.serial=file:$T/$n.log" --set vsock.cid=3 \
		--set "vsock.socket=$T/$n.vsock" --api-socket "$T/$n.api" "$@" \
		</dev/null >"$T/$n.out" 2>"$T/$n.err" &
	apid=$!
}

# ax NAME ARGS...: minivmm exec on NAME's VM (output in $T/x.out, $T/x.err; status $xrc).
ax() {
	local n=$1
	shift
	timeout -k 5 120 "$MINIVMM" exec --socket "$T/$n.api" "$@" >"$T/x.out" 2>"$T/x.err"
	xrc=$?
}
expect_x() { # STATUS STDOUT [STDERR]: the last ax
	[ "$xrc" = "$1" ] && [ "$(cat "$T/x.out")" = "$2" ] &&
		{ [ $# -lt 3 ] || [ "$(cat "$T/x.err")" = "$3" ]; } && return 0
	why="exec: status $xrc (want $1), stdout '$(head -c 200 "$T/x.out")' (want '$2'), stderr '$(
		head -c 300 "$T/x.err")'"
	return 1
}

# agent_stop NAME: ctl stop, the VM's status in $rc, its console in $T/out.txt.
agent_stop() {
	"$MINIVMM" ctl --socket "$T/$1.api" stop >/dev/null 2>&1
	wait "$apid"
	rc=$?
	cp "$T/$1.err" "$T/err"
	tr -d '\r' <"$T/$1.log" >"$T/out.txt"
}

# The first exec waits for the agent to listen (--wait), then: stdout/stderr apart, the
# exit status, a signal, stdin, env, cwd, a timeout, a missing program, a killed client.
agent_exec_checks() {
	ax a --wait 90 -- sh -c 'echo out; echo err >&2; exit 7'
	expect_x 7 out err || return 1
	ax a -- sh -c 'kill -9 $$'
	expect_x 137 "" || return 1
	seq 1 100000 >"$T/in"
	timeout 120 "$MINIVMM" exec --socket "$T/a.api" -- sha256sum <"$T/in" >"$T/x.out" 2>"$T/x.err"
	xrc=$?
	expect_x 0 "$(sha256sum <"$T/in")" || return 1
	ax a --no-stdin -- cat
	expect_x 0 "" || return 1
	ax a --env A=b --env 'C=d e' --cwd /tmp -- sh -c 'echo "$A|$C|$(pwd)"'
	expect_x 0 "b|d e|/tmp" || return 1
	ax a --timeout 1 -- sleep 100
	[ "$xrc" = 124 ] && grep -q "timed out" "$T/x.err" ||
		{ why="exec --timeout 1 sleep 100: status $xrc, $(head -c 200 "$T/x.err")"; return 1; }
	ax a -- /no/such/program
	[ "$xrc" = 255 ] && grep -qi "no such file" "$T/x.err" ||
		{ why="a missing program: status $xrc, $(head -c 200 "$T/x.err")"; return 1; }
	# A client killed mid-command: the agent ends the command and serves the next one.
	"$MINIVMM" exec --socket "$T/a.api" -- sh -c 'echo started; exec sleep 1000' \
		>"$T/k.out" 2>&1 </dev/null &
	local k=$! i
	for ((i = 0; i < 300; i++)); do grep -q started "$T/k.out" && break; sleep 0.1; done
	kill -9 "$k"
	wait "$k" 2>/dev/null
	for ((i = 0; i < 50; i++)); do
		ax a -- sh -c 'ps | grep -c "[s]leep 1000" || true'
		[ "$(cat "$T/x.out")" = 0 ] && break
		sleep 0.2
	done
	expect_x 0 0 || { why="after a killed client: $why"; return 1; }
	# No agent on that port: a clear error, status 255.
	ax a --port 999 -- true
	[ "$xrc" = 255 ] && grep -q "nothing listens on vsock port 999" "$T/x.err" ||
		{ why="port 999: status $xrc, $(head -c 200 "$T/x.err")"; return 1; }
}

# ev_start NAME: `minivmm ctl events` on NAME's VM into $T/ev.log (pid $evp), once the
# control socket exists (it does before the guest starts).
ev_start() {
	local i
	for ((i = 0; i < 300; i++)); do [ -S "$T/$1.api" ] && break; sleep 0.1; done
	"$MINIVMM" ctl --socket "$T/$1.api" events >"$T/ev.log" 2>"$T/ev.err" &
	evp=$!
	sleep 0.5
}
# expect_event REGEX: a line of $T/ev.log matches.
expect_event() {
	grep -q -e "$1" "$T/ev.log" && return 0
	why="no event matching '$1' in: $(tr '\n' ' ' <"$T/ev.log" | head -c 600)"
	return 1
}

# After the exec checks, on the same VM: pause, resume and a save, each seen as events,
# then the guest leaves through the exit port: guest-exited and stopped, status 42.
agent_events_checks() {
	"$MINIVMM" ctl --socket "$T/a.api" pause >/dev/null &&
		"$MINIVMM" ctl --socket "$T/a.api" resume >/dev/null &&
		"$MINIVMM" save --socket "$T/a.api" "$T/e.snap" 2>"$T/save.err" ||
		{ why="pause/resume/save: $(head -c 200 "$T/save.err")"; return 1; }
	ax a -- sh -c '. /scenarios/lib.sh; exit_port 42'
	wait "$apid"
	rc=$?
	wait "$evp"
	cp "$T/a.err" "$T/err"
	tr -d '\r' <"$T/a.log" >"$T/out.txt"
	expect_rc 42 &&
		expect_event '^{"event":"started","ts_ms":[0-9]*,"data":{"vcpus":1,"memory":268435456,"restored":false}}$' &&
		expect_event '"event":"paused".*"reason":"api"' &&
		expect_event '"event":"resumed".*"reason":"api"' &&
		expect_event '"event":"paused".*"reason":"save"' &&
		expect_event '"event":"save-progress".*"percent":100}' &&
		expect_event '"event":"resumed".*"reason":"save"' &&
		expect_event '"event":"guest-exited".*"data":{"status":42}' &&
		expect_event '"event":"stopped".*"data":{"reason":"exit-port","exit_status":42}' || return 1
	# In that order.
	[ "$(sed -n 's/.*"event":"\([a-z-]*\)".*/\1/p' "$T/ev.log" | grep -v save-progress | tr '\n' ' ')" = \
		"started paused resumed paused resumed guest-exited stopped " ] ||
		{ why="events out of order: $(tr '\n' ' ' <"$T/ev.log" | head -c 600)"; return 1; }
}

t_agent_exec() {
	agent_boot a
	ev_start a
	if ! agent_exec_checks; then
		local saved=$why
		agent_stop a
		kill "$evp" 2>/dev/null
		why=$saved
		return 1
	fi
	agent_events_checks
}

# A guest that panics: guest-panicked, then stopped (reason panic, exit status 3).
t_events_panic() {
	rm -f "$T/p.api"
	timeout -k 5 "$LIMIT" "$MINIVMM" run "$CFG" \
		--set "boot.cmdline=$GUEST_BOOT minivmm.scenario=panic" \
		--api-socket "$T/p.api" </dev/null >"$T/out" 2>"$T/err" &
	apid=$!
	ev_start p
	wait "$apid"
	rc=$?
	wait "$evp"
	tr -d '\r' <"$T/out" >"$T/out.txt"
	expect_rc 3 && expect_event '"event":"guest-panicked"' &&
		expect_event '"event":"stopped".*"data":{"reason":"panic","exit_status":3}'
}

# 64 MiB both ways, checked by hash; a directory as the destination; --mode.
t_agent_cp() {
	local sum r=0
	head -c 67108864 /dev/urandom >"$T/big"
	sum=$(sha256sum <"$T/big" | cut -d' ' -f1)
	agent_boot a --set vm.memory=512M
	if ! timeout 300 "$MINIVMM" cp --wait 90 --socket "$T/a.api" "$T/big" guest:/tmp/ 2>"$T/x.err"; then
		why="cp to the guest: $(head -c 300 "$T/x.err")"
		r=1
	fi
	if [ $r = 0 ]; then
		ax a -- sha256sum /tmp/big
		expect_x 0 "$sum  /tmp/big" || r=1
	fi
	if [ $r = 0 ]; then
		mkdir -p "$T/back"
		timeout 300 "$MINIVMM" cp --socket "$T/a.api" --mode 600 guest:/tmp/big "$T/back" 2>"$T/x.err" ||
			{ why="cp from the guest: $(head -c 300 "$T/x.err")"; r=1; }
	fi
	if [ $r = 0 ]; then
		[ "$(sha256sum <"$T/back/big" | cut -d' ' -f1)" = "$sum" ] ||
			{ why="the copy back differs"; r=1; }
		[ "$(stat -c %a "$T/back/big")" = 600 ] ||
			{ why="the copy back has mode $(stat -c %a "$T/back/big"), not 600"; r=1; }
	fi
	if [ $r = 0 ]; then
		timeout 60 "$MINIVMM" cp --socket "$T/a.api" guest:/no/such "$T/x" 2>"$T/x.err" &&
			{ why="copying a missing guest file succeeded"; r=1; }
	fi
	local saved=$why
	agent_stop a
	why=$saved
	[ $r = 0 ] || return 1
	expect_rc 0
}

# One snapshot of a guest with a live agent connection, two clones at once (each its own
# CID, vsock and API socket): the open connection was reset by the restore, and exec and
# cp work in both clones side by side, each seeing only its own files.
t_agent_clones() {
	local p c e r=0 pids=() workers=()
	agent_boot a --set vm.rng=on
	ax a --wait 90 -- sh -c 'echo base >/tmp/who'
	expect_x 0 "" || { agent_stop a; return 1; }
	# [vm] rng = on: the guest's hardware RNG is our virtio-rng.
	ax a -- sh -c 'modprobe virtio-rng; cat /sys/class/misc/hw_random/rng_current;
		head -c 32 /dev/hwrng | od -An -tx1 | tr -d " \n" | wc -c'
	expect_x 0 "virtio_rng.0
64" || { why="virtio-rng: $why"; agent_stop a; return 1; }
	# A command still running (its connection open) when the snapshot is taken.
	"$MINIVMM" exec --socket "$T/a.api" -- sleep 1000 >/dev/null 2>"$T/held.err" </dev/null &
	p=$!
	sleep 2
	"$MINIVMM" save --socket "$T/a.api" "$T/s.snap" --stop 2>"$T/save.err" ||
		{ why="save: $(head -c 300 "$T/save.err")"; kill "$p"; wait "$apid"; return 1; }
	wait "$apid"
	wait "$p"
	for c in c1 c2; do
		mkdir -p "$T/$c"
		rm -f "$T/$c.api" "$T/$c.vsock"
		timeout -k 5 "$LIMIT" "$MINIVMM" restore "$T/s.snap" --clone "$T/$c" -v \
			--set "console.serial=file:$T/$c.log" --set "vsock.cid=$([ $c = c1 ] && echo 5 || echo 6)" \
			--set "vsock.socket=$T/$c.vsock" --api-socket "$T/$c.api" \
			</dev/null >"$T/$c.out" 2>"$T/$c.err" &
		pids+=($!)
	done
	for c in c1 c2; do
		echo "$c" >"$T/$c.name"
		(
			timeout 120 "$MINIVMM" cp --wait 60 --socket "$T/$c.api" "$T/$c.name" guest:/tmp/who ||
				exit 1
			# The agent ends the held command once the guest's vsock reset reaches it.
			for ((i = 0; i < 50; i++)); do
				n=$(timeout 60 "$MINIVMM" exec --socket "$T/$c.api" -- sh -c 'ps | grep -c "[s]leep 1000" || true')
				[ "$n" = 0 ] && break
				sleep 0.2
			done
			timeout 60 "$MINIVMM" exec --socket "$T/$c.api" -- cat /tmp/who
			echo "$n"
			# The guest's first random bytes after the restore, and whether its kernel
			# reseeded on the new generation ID ([vm] vmgenid).
			timeout 60 "$MINIVMM" exec --socket "$T/$c.api" -- \
				sh -c 'head -c 16 /dev/urandom | od -An -tx1 | tr -d " \n"' >"$T/$c.rnd"
			timeout 60 "$MINIVMM" exec --socket "$T/$c.api" -- \
				sh -c 'dmesg | grep -c "crng reseeded due to virtual machine fork"' >"$T/$c.fork"
			# The restored virtio-rng still answers.
			timeout 60 "$MINIVMM" exec --socket "$T/$c.api" -- \
				sh -c 'head -c 16 /dev/hwrng | wc -c' >"$T/$c.hw"
		) >"$T/$c.x" 2>&1 &
		workers+=($!)
	done
	wait "${workers[@]}"
	for c in c1 c2; do
		[ "$(cat "$T/$c.x")" = "$c
0" ] || { why="$c: '$(head -c 300 "$T/$c.x" | tr '\n' ' ')' (want its name, then 0: the held command gone)"; r=1; }
	done
	# Clones of one snapshot share its RNG state: the new generation ID must reseed each.
	[ "$(wc -c <"$T/c1.rnd")" = 32 ] && [ "$(wc -c <"$T/c2.rnd")" = 32 ] ||
		{ why="random bytes: '$(cat "$T/c1.rnd")' '$(cat "$T/c2.rnd")'"; r=1; }
	[ "$(cat "$T/c1.rnd")" != "$(cat "$T/c2.rnd")" ] ||
		{ why="both clones read the same bytes from /dev/urandom: $(cat "$T/c1.rnd")"; r=1; }
	echo "  agent_clones: /dev/urandom in the clones: $(cat "$T/c1.rnd") $(cat "$T/c2.rnd")"
	for c in c1 c2; do
		[ "$(cat "$T/$c.hw")" = 16 ] || { why="$c: /dev/hwrng after the restore: '$(cat "$T/$c.hw")'"; r=1; }
		[ "$(cat "$T/$c.fork")" = 1 ] ||
			{ why="$c: the guest kernel did not reseed on the new VM generation ID (dmesg: '$(cat "$T/$c.fork")' times)"; r=1; }
	done
	for c in c1 c2; do
		"$MINIVMM" ctl --socket "$T/$c.api" stop >/dev/null 2>&1
	done
	for p in "${pids[@]}"; do
		wait "$p" || { e=$?; [ $r = 0 ] && why="a clone exited $e"; r=1; }
	done
	cat "$T/c1.err" "$T/c2.err" >"$T/err"
	return $r
}

# examples/sandbox-loop through libminivmm: one cold boot, an uncompressed snapshot, three
# clones mapping it, each running a command; every clone prints what the first run printed.
t_lib_example() {
	local ex=${MINIVMM_BUILD:-$repo/build}/examples/sandbox-loop
	[ -x "$ex" ] || { why="$ex not built (make)"; return 1; }
	MINIVMM=$MINIVMM TMPDIR=$T timeout -k 5 "$LIMIT" "$ex" -n 3 --map \
		--set "boot.cmdline=$GUEST_BOOT minivmm.scenario=sleep minivmm.agent=1024" \
		--set vsock.cid=3 "$CFG" -- sh -c 'echo hello from $(uname -s)' >"$T/out" 2>"$T/err"
	rc=$?
	tr -d '\r' <"$T/out" >"$T/out.txt"
	sed 's/^/  lib_example: /' "$T/out.txt"
	expect_rc 0 && expect_out "output: hello from Linux" && expect_out "3 of 3 clones ran the command"
}
