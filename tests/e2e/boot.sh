# shellcheck shell=bash
# minivmm e2e: boots, exits, the console, vCPU and memory shapes.
# Sourced by tests/e2e/run.sh, which provides the helpers (vm, guest, expect_*, mkdisk,
# mkshare, ...) and $MINIVMM, $CFG, $GUEST, $T, $LIMIT, $why, $rc.
# SPDX-License-Identifier: GPL-2.0-or-later

# shellcheck disable=SC2034 # used by run.sh
BOOT_CASES="boot_1cpu boot_2cpu boot_4cpu memory_512m memory_4g boot_pvh decompress_guest exitport
	serial_input poweroff reboot reboot_restart panic timeout sigterm nested_on nested_off
	serial_file demo_cfg"

# --- boots ------------------------------------------------------------------------------
t_boot_1cpu() {
	guest info "" && expect_rc 0 && expect_out CPUS=1 && expect_range MEMTOTAL_KB 180000 262144
}
t_boot_2cpu() {
	guest info "" --set vm.vcpus=2 && expect_rc 0 && expect_out CPUS=2
}
t_memory_512m() {
	guest info "" --set vm.memory=512M && expect_rc 0 && expect_range MEMTOTAL_KB 440000 524288
}
t_exitport() {
	guest exitcode minivmm.code=5 && expect_rc 5 && expect_out hello-from-guest || return 1
	guest exitcode minivmm.code=0 && expect_rc 0 && expect_out hello-from-guest
}
t_demo_cfg() { # examples/demo.cfg, as `make demo` runs it
	vm "$repo/examples/demo.cfg" && expect_rc 0 || return 1
	grep -q "Hello from a minivmm guest" "$T/out.txt" || { why="no demo banner"; return 1; }
	grep -q "online CPUs: 0-1" "$T/out.txt" || { why="demo guest does not have 2 online CPUs"; return 1; }
}
t_poweroff() { guest poweroff "" && expect_rc 0 && expect_out "powering off"; }
t_reboot() { guest reboot "" && expect_rc 0 && expect_out rebooting; }
t_panic() { guest panic "" && expect_rc 3 && expect_err panic; }
t_timeout() {
	guest sleep "" --timeout 5 && expect_rc 124 || return 1
	[ "$took" -le 20 ] || { why="--timeout 5 took ${took}s"; return 1; }
}
t_nested_on() {
	guest info "" --set vm.nested=on && expect_rc 0 || return 1
	grep -q -x -E 'SVM=yes|VMX=yes' "$T/out.txt" || { why="neither SVM=yes nor VMX=yes"; return 1; }
}
t_nested_off() {
	guest info "" --set vm.nested=off && expect_rc 0 && expect_out SVM=no && expect_out VMX=no
}
t_serial_file() {
	local log=$T/serial.log
	rm -f "$log"
	guest info "" --set "console.serial=file:$log" && expect_rc 0 || return 1
	[ -f "$log" ] || { why="$log was not created"; return 1; }
	grep -q '^CPUS=1' "$log" || { why="no CPUS=1 in $log"; return 1; }
	! grep -q 'CPUS=' "$T/out.txt" || { why="guest output also went to stdout"; return 1; }
}

# Boot paths: the ELF vmlinux through PVH, and the kernel decompressing itself.
t_boot_pvh() {
	guest info "" --set "boot.kernel=$GUEST/vmlinux" --set vm.vcpus=2 && expect_rc 0 &&
		expect_out CPUS=2
}
t_decompress_guest() {
	guest info "" --set boot.decompress=guest && expect_rc 0 && expect_out CPUS=1
}
# More vCPUs than the host has cores, and RAM split around the 3-4 GiB hole.
t_boot_4cpu() {
	guest info "" --set vm.vcpus=4 && expect_rc 0 && expect_out CPUS=4 &&
		expect_out CPUS_ONLINE=0-3
}
t_memory_4g() {
	guest info "" --set vm.memory=4G && expect_rc 0 &&
		expect_range MEMTOTAL_KB 3900000 4194304
}
# on_reboot = restart: the guest reboots, comes back, reboots again... until --timeout.
t_reboot_restart() {
	# Each boot of the reboot scenario takes 5-10 s here (nested); 30 s holds several.
	guest reboot "" --set vm.on_reboot=restart --timeout 30 && expect_rc 124 || return 1
	local n
	n=$(grep -c -x rebooting "$T/out.txt")
	[ "$n" -ge 2 ] || { why="guest booted $n time(s), expected a restart"; return 1; }
}
# signal_sleeper SIG LOG ARGS...: boot the sleep scenario with its serial console in LOG,
# send SIG once it sleeps, and wait: exit status in $rc.
signal_sleeper() {
	local sig=$1 log=$2 i pid
	shift 2
	rm -f "$log"
	"$MINIVMM" run "$CFG" --set "boot.cmdline=$GUEST_BOOT minivmm.scenario=sleep" \
		--set "console.serial=file:$log" "$@" </dev/null >"$T/out" 2>"$T/err" &
	pid=$!
	for ((i = 0; i < LIMIT * 2; i++)); do
		grep -q "sleeping forever" "$log" 2>/dev/null && break
		sleep 0.5
	done
	kill "-$sig" "$pid"
	wait "$pid"
	rc=$?
}
# SIGTERM stops the VM cleanly: status 128+15, the serial file flushed. SIGUSR2 stops it too
# (140) and prints each vCPU's registers (where a hung guest was).
t_sigterm() {
	local log=$T/term.log
	signal_sleeper TERM "$log"
	grep -q "sleeping forever" "$log" || { why="guest output missing from $log"; return 1; }
	expect_rc 143 && expect_err "signal" || return 1
	signal_sleeper USR2 "$log" --set vm.vcpus=2
	expect_rc 140 && expect_err "vcpu0: rip 0xffffffff" && expect_err "vcpu1: rip 0xffffffff"
}

# serial_input: wait for READY, type a command line on minivmm's stdin, expect its output.
t_serial_input() {
	local fifo=$T/in token="serial-ok-$$" i pid
	rm -f "$fifo" "$T/rc"
	mkfifo "$fifo"
	: >"$T/out"
	(
		timeout -k 5 "$LIMIT" "$MINIVMM" run "$CFG" \
			--set "boot.cmdline=$GUEST_BOOT minivmm.scenario=shell" <"$fifo" >"$T/out" 2>"$T/err"
		echo $? >"$T/rc"
	) &
	pid=$!
	exec 3>"$fifo"
	for ((i = 0; i < LIMIT * 2; i++)); do
		grep -q READY "$T/out" 2>/dev/null && break
		[ -f "$T/rc" ] && break
		sleep 0.5
	done
	if grep -q READY "$T/out"; then
		echo "echo $token" >&3
	fi
	wait "$pid"
	exec 3>&-
	rc=$(cat "$T/rc" 2>/dev/null || echo "?")
	tr -d '\r' <"$T/out" >"$T/out.txt"
	grep -q READY "$T/out.txt" || { why="guest never printed READY (exit status $rc)"; return 1; }
	expect_rc 0 && expect_out "$token" && expect_out DONE
}
