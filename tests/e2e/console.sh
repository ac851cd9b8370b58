# shellcheck shell=bash
# minivmm e2e: [console] serial = api, attached with `minivmm console` (scenario shell:
# READY, one line read from the console and run, DONE). Sourced by tests/e2e/run.sh.
# SPDX-License-Identifier: GPL-2.0-or-later

# shellcheck disable=SC2034 # used by run.sh
CONSOLE_CASES="console_api"

t_console_api() {
	local pid cpid i
	trap '' PIPE # a console client that ended early must fail the case, not kill its shell
	rm -f "$T/c.api" "$T/in"
	mkfifo "$T/in"
	timeout -k 5 "$LIMIT" "$MINIVMM" run "$CFG" -v \
		--set "boot.cmdline=$GUEST_BOOT minivmm.scenario=shell" \
		--set console.serial=api --api-socket "$T/c.api" </dev/null >"$T/out" 2>"$T/err" &
	pid=$!
	for ((i = 0; i < 600; i++)); do
		"$MINIVMM" ctl --socket "$T/c.api" status >/dev/null 2>&1 && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	"$MINIVMM" console --socket "$T/c.api" <"$T/in" >"$T/con.out" 2>"$T/con.err" &
	cpid=$!
	exec 7>"$T/in"
	# A second client is refused while this one is attached.
	sleep 1
	"$MINIVMM" console --socket "$T/c.api" </dev/null >/dev/null 2>"$T/con2.err" &&
		why="a second console client was let in"
	for ((i = 0; i < LIMIT * 5; i++)); do
		grep -q READY "$T/con.out" 2>/dev/null && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.2
	done
	# shellcheck disable=SC2016 # the guest's shell expands it
	echo 'echo hi-$((6*7))' >&7
	wait "$pid"
	rc=$?
	exec 7>&-
	wait "$cpid"
	local crc=$?
	tr -d '\r' <"$T/con.out" >"$T/out.txt"
	[ -z "$why" ] || return 1
	grep -q "another client is attached" "$T/con2.err" ||
		{ why="second client: $(head -c 200 "$T/con2.err")"; return 1; }
	[ "$crc" = 0 ] || { why="minivmm console exited $crc: $(head -c 200 "$T/con.err")"; return 1; }
	expect_rc 0 && expect_out READY && expect_out hi-42 && expect_out DONE
}
