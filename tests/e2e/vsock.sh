# shellcheck shell=bash
# minivmm e2e: virtio-vsock, both ways through the VM's Unix socket (scenario vsock,
# host side $GUEST/vsockcat). Sourced by tests/e2e/run.sh.
# SPDX-License-Identifier: GPL-2.0-or-later

# shellcheck disable=SC2034 # used by run.sh
VSOCK_CASES="vsock_out vsock_in"

# The guest connects to host port 5000 ("$T/v.sock_5000", an echo server here).
t_vsock_out() {
	local srv
	rm -f "$T/v.sock" "$T/v.sock_5000"
	"$GUEST/vsockcat" uds-echo "$T/v.sock_5000" &
	srv=$!
	guest vsock minivmm.vsock=out --set vsock.cid=3 --set "vsock.socket=$T/v.sock"
	kill "$srv" 2>/dev/null
	wait "$srv" 2>/dev/null
	expect_rc 0 && expect_out VSOCK_OUT=ok
}

# The host connects to the guest's port 1024 (CONNECT 1024) and gets its 1 MiB back.
t_vsock_in() {
	local pid i
	rm -f "$T/v.sock" "$T/c.log"
	head -c 1048576 /dev/urandom >"$T/data"
	timeout -k 5 "$LIMIT" "$MINIVMM" run "$CFG" \
		--set "boot.cmdline=$GUEST_BOOT minivmm.scenario=vsock minivmm.vsock=in" \
		--set "console.serial=file:$T/c.log" --set vsock.cid=3 --set "vsock.socket=$T/v.sock" \
		</dev/null >"$T/out" 2>"$T/err" &
	pid=$!
	for ((i = 0; i < LIMIT * 5; i++)); do
		grep -q VSOCK_LISTENING "$T/c.log" 2>/dev/null && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.2
	done
	timeout 60 "$GUEST/vsockcat" uds-connect "$T/v.sock" 1024 <"$T/data" >"$T/back" 2>"$T/client.err" ||
		why="host side: $(head -c 300 "$T/client.err")"
	wait "$pid"
	rc=$?
	tr -d '\r' <"$T/c.log" >"$T/out.txt"
	[ -z "$why" ] || return 1
	cmp -s "$T/data" "$T/back" || { why="$(wc -c <"$T/back") bytes back, not the 1 MiB sent"; return 1; }
	expect_rc 0 && expect_out VSOCK_IN=ok
}
