# shellcheck shell=bash
# minivmm e2e: virtio-blk disks ([disk.N]).
# Sourced by tests/e2e/run.sh, which provides the helpers (vm, guest, expect_*, mkdisk,
# mkshare, ...) and $MINIVMM, $CFG, $GUEST, $T, $LIMIT, $why, $rc.
# SPDX-License-Identifier: GPL-2.0-or-later

# shellcheck disable=SC2034 # used by run.sh
BLK_CASES="blk_rw blk_queues blk_readonly blk_two_disks blk_discard blk_qcow2 blk_backing
	blk_cache_none blk_bad_disk blk_iops"

# --- virtio-blk ---------------------------------------------------------------------------
# blk OPS ARGS...: the blk scenario with minivmm.blk=OPS, -v for the disk summary.
blk() {
	local ops=$1
	shift
	guest blk "minivmm.blk=$ops" -v "$@"
}
t_blk_rw() { # 2 vCPUs: 2 queues; read a host pattern, write one back, FLUSH reaches us
	mkdisk "$T/d.img" 64M
	blk read,write --set vm.vcpus=2 --set "disk.0.path=$T/d.img" \
		--set disk.0.serial=minivmm-e2e && expect_rc 0 &&
		expect_out "DISK_vda=sectors:131072 queues:2 ro:0 serial:minivmm-e2e discard:.*" &&
		expect_out "IRQ_virtio[0-9]*-req.0=0" && expect_out "IRQ_virtio[0-9]*-req.1=1" &&
		expect_out "READ_SHA256=$(read_sha)" && expect_out WRITE=done &&
		expect_written "$T/d.img" || return 1
	grep -q "disk.0: .* [1-9][0-9]* flushes" "$T/err" || { why="no FLUSH reached the host"; return 1; }
}
t_blk_queues() { # queues = 1 on 2 vCPUs; 4 queues on 4 vCPUs with 1 I/O thread; pin = on
	mkdisk "$T/d.img" 16M
	blk "" --set vm.vcpus=2 --set "disk.0.path=$T/d.img" --set disk.0.queues=1 &&
		expect_rc 0 && expect_out "DISK_vda=sectors:32768 queues:1 ro:0 .*" || return 1
	blk read --set vm.vcpus=4 --set "disk.0.path=$T/d.img" --set disk.0.iothreads=1 &&
		expect_rc 0 && expect_out "DISK_vda=sectors:32768 queues:4 ro:0 .*" &&
		expect_out "READ_SHA256=$(read_sha)" || return 1
	blk read --set vm.vcpus=2 --set "disk.0.path=$T/d.img" --set vm.pin=on && expect_rc 0 &&
		expect_out "READ_SHA256=$(read_sha)" && expect_err "2 I/O threads, pinned"
}
t_blk_readonly() {
	mkdisk "$T/d.img" 16M
	local before
	before=$(sha256sum <"$T/d.img")
	blk rowrite,read --set "disk.0.path=$T/d.img" --set disk.0.readonly=on && expect_rc 0 &&
		expect_out "DISK_vda=sectors:32768 queues:1 ro:1 .*" && expect_out ROWRITE=refused &&
		expect_out "READ_SHA256=$(read_sha)" || return 1
	[ "$(sha256sum <"$T/d.img")" = "$before" ] || { why="the read-only image changed"; return 1; }
}
t_blk_two_disks() {
	mkdisk "$T/a.img" 16M
	mkdisk "$T/b.img" 32M
	blk write --set "disk.0.path=$T/a.img" --set "disk.1.path=$T/b.img" \
		--set disk.1.serial=second && expect_rc 0 &&
		expect_out "DISK_vda=sectors:32768 .*" &&
		expect_out "DISK_vdb=sectors:65536 queues:1 ro:0 serial:second .*" &&
		expect_written "$T/a.img" || return 1
	cmp -s -n 1048576 -i 0:1048576 "$T/pattern" "$T/b.img" &&
		{ why="the write went to both disks"; return 1; }
	return 0
}
t_blk_discard() { # punches a hole in the host file (tmpfs in the L1 supports it)
	local before after
	dd if=/dev/urandom of="$T/d.img" bs=1M count=16 2>/dev/null
	before=$(stat -c %b "$T/d.img")
	blk discard --set "disk.0.path=$T/d.img" && expect_rc 0 && expect_out DISCARD=done || return 1
	after=$(stat -c %b "$T/d.img")
	# 4 MiB less allocated (in 512-byte blocks), and zeros there.
	[ $((before - after)) -ge 8192 ] ||
		{ why="blocks allocated: $before before, $after after the discard"; return 1; }
	cmp -s -n 4194304 -i 1048576:0 "$T/d.img" /dev/zero ||
		{ why="the discarded range does not read as zeros"; return 1; }
}
t_blk_qcow2() { # format = qcow2: the guest's write lands in a valid image
	"$MINIVMM" img create "$T/d.qcow2" 64M >/dev/null || { why="img create failed"; return 1; }
	blk write,read --set "disk.0.path=$T/d.qcow2" --set disk.0.format=qcow2 && expect_rc 0 &&
		expect_out "DISK_vda=sectors:131072 .*" || return 1
	"$MINIVMM" img check "$T/d.qcow2" >"$T/check" 2>&1 || { why="img check: $(cat "$T/check")"; return 1; }
	qemu-img convert -f qcow2 -O raw "$T/d.qcow2" "$T/d.raw" || { why="qemu-img convert failed"; return 1; }
	expect_written "$T/d.raw"
}
t_blk_backing() { # an image naming a host file as its backing file: refused unless allowed
	mkdisk "$T/secret.raw" 16M # stands for any host file (the guest would read it)
	mkdir -p "$T/imgs"
	rm -f "$T/imgs/top.qcow2"
	"$MINIVMM" img create -b "$T/secret.raw" -F raw "$T/imgs/top.qcow2" 16M >/dev/null ||
		{ why="img create failed"; return 1; }
	local d=(--set "disk.0.path=$T/imgs/top.qcow2" --set disk.0.format=qcow2)
	blk read "${d[@]}" && expect_rc 1 &&
		expect_err "backing files are not allowed.*backing = on and backing_dir" || return 1
	! grep -q READ_SHA256 "$T/out.txt" || { why="the guest read the backing file"; return 1; }
	blk read "${d[@]}" --set disk.0.backing=on && expect_rc 2 && expect_err "backing_dir" ||
		return 1
	blk read "${d[@]}" --set disk.0.backing=on --set "disk.0.backing_dir=$T/imgs" &&
		expect_rc 1 && expect_err "outside backing_dir" || return 1
	blk read "${d[@]}" --set disk.0.backing=on --set "disk.0.backing_dir=$T" && expect_rc 0 &&
		expect_out "READ_SHA256=$(read_sha)"
}
t_blk_cache_none() { # O_DIRECT needs a filesystem that has it: the build share
	local img=${MINIVMM_BUILD:-$repo/build}/e2e-direct.img
	mkdisk "$img" 16M
	blk write,read --set "disk.0.path=$img" --set disk.0.cache=none && expect_rc 0 &&
		expect_out "READ_SHA256=$(read_sha)" && expect_written "$img"
	local r=$?
	rm -f "$img"
	return $r
}
t_blk_bad_disk() {
	vm "$CFG" --set disk.0.path=/nonexistent.img && expect_rc 2 &&
		expect_err "disk.0.*path.*nonexistent" || return 1
	mkdisk "$T/d.img" 1M
	printf 'x' >>"$T/d.img" # not a whole number of sectors
	vm "$CFG" --set "disk.0.path=$T/d.img" && expect_rc 1 && expect_err "512"
}
# fio_blk IMG [ARGS...]: 5 s of fio 4k random reads on IMG in the guest; its terse v3
# result (field 6: KiB read, 9: runtime in ms) -> $kib, $ms.
fio_blk() {
	local img=$1 line f
	shift
	f="minivmm.fio.rw=randread minivmm.fio.bs=4k minivmm.fio.iodepth=8 minivmm.fio.jobs=1"
	f="$f minivmm.fio.engine=libaio minivmm.fio.direct=1 minivmm.fio.runtime=5"
	vm "$CFG" -v --set vm.memory=512M --set "boot.initrd=$GUEST/initramfs-fio.cpio.gz" \
		--set "boot.cmdline=$GUEST_BOOT minivmm.scenario=fio $f minivmm.fio.format=terse" \
		--set "disk.0.path=$img" "$@" && expect_rc 0 || return 1
	line=$(awk -F';' '$1 == "3" && NF > 50 { print $6, $9 }' "$T/out.txt" | tail -n 1)
	read -r kib ms <<<"$line"
	case $kib$ms in '' | *[!0-9]*) why="no fio result: '$line'"; return 1 ;; esac
}
# shellcheck disable=SC2154 # $took: the wall time of the last vm(), set by run.sh
t_blk_iops() { # [disk.0] iops: every request completes, none sooner than the limit lets it
	local rate=20 burst=2 n need ios
	# The blk scenario's reads and writes, all through, data intact.
	mkdisk "$T/d.img" 16M
	blk read,write --set "disk.0.path=$T/d.img" --set disk.0.iops=$rate \
		--set disk.0.iops_burst=$burst && expect_rc 0 &&
		expect_err "at most $rate requests/s (burst $burst)" &&
		expect_out "READ_SHA256=$(read_sha)" && expect_out WRITE=done &&
		expect_written "$T/d.img" || return 1
	n=$(sed -n 's/.*disk\.0: \([0-9]*\) requests.*/\1/p' "$T/err" | tail -n 1)
	[ -n "$n" ] || { why="no request count on stderr"; return 1; }
	# After the burst one request per 1/rate s: 80% of that at least (whole seconds).
	need=$(((n - burst) * 8 / (rate * 10)))
	echo "  blk_iops: blk scenario, $n requests at $rate/s (burst $burst): ${took} s" \
		"(boot included), the limit implies $(((n - burst) / rate)) s"
	[ "$took" -ge "$need" ] ||
		{ why="$n requests at $rate/s took ${took} s, under ${need} s"; return 1; }
	# fio in the guest, timed by the guest: boot time cannot hide a missing limit there.
	rate=50 burst=5
	fio_blk "$T/d.img" --set disk.0.iops=$rate --set disk.0.iops_burst=$burst &&
		expect_err "at most $rate requests/s (burst $burst)" || return 1
	ios=$((kib / 4))
	need=$(((ios - burst) * 1000 * 8 / (rate * 10)))
	echo "  blk_iops: fio randread 4k, iodepth 8: $ios reads in $ms ms at $rate/s" \
		"(burst $burst); the limit implies $(((ios - burst) * 1000 / rate)) ms"
	[ "$ios" -gt "$burst" ] || { why="fio read only $ios blocks"; return 1; }
	[ "$ms" -ge "$need" ] || { why="fio: $ios reads in $ms ms at $rate/s, under $need ms"; return 1; }
}
