# shellcheck shell=sh
# minivmm - helpers to assemble a busybox initramfs from the host's files.
# Sourced by tests/guest/build-guest.sh and tests/harness/in-vm.sh.
# SPDX-License-Identifier: GPL-2.0-or-later

# newest_kernel: print the path of the newest /boot/vmlinuz-*-amd64 (or any vmlinuz-*).
newest_kernel() {
	# shellcheck disable=SC2012 # kernel file names are tame
	k=$(ls /boot/vmlinuz-*-amd64 2>/dev/null | sort -V | tail -n 1)
	# shellcheck disable=SC2012
	[ -n "$k" ] || k=$(ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n 1)
	[ -n "$k" ] || { echo "initramfs: no kernel in /boot (apt-get install linux-image-amd64)" >&2; return 1; }
	echo "$k"
}

# kernel_version PATH: /boot/vmlinuz-6.1.0-56-amd64 -> 6.1.0-56-amd64
kernel_version() {
	basename "$1" | sed 's/^vmlinuz-//'
}

# stage_busybox ROOT: busybox-static as /bin/busybox plus one symlink per applet.
stage_busybox() {
	bb=""
	for c in /bin/busybox /usr/bin/busybox; do
		if [ -x "$c" ] && file_is_static "$c"; then bb=$c; break; fi
	done
	[ -n "$bb" ] || { echo "initramfs: static busybox not found (apt-get install busybox-static)" >&2; return 1; }
	mkdir -p "$1/bin" "$1/sbin" "$1/usr/bin" "$1/usr/sbin" "$1/proc" "$1/sys" "$1/dev" \
		"$1/tmp" "$1/run" "$1/etc" "$1/root" "$1/mnt" "$1/var"
	cp "$bb" "$1/bin/busybox"
	"$bb" --list-full | while read -r applet; do
		[ -e "$1/$applet" ] || [ -L "$1/$applet" ] || ln -s /bin/busybox "$1/$applet"
	done
	# The kernel needs /dev/console in the archive to give /init a console.
	[ -e "$1/dev/console" ] || mknod -m 600 "$1/dev/console" c 5 1 2>/dev/null || true
	[ -e "$1/dev/null" ] || mknod -m 666 "$1/dev/null" c 1 3 2>/dev/null || true
}

# file_is_static PATH: true when PATH is a statically linked executable.
file_is_static() {
	! ldd "$1" >/dev/null 2>&1
}

# stage_modules ROOT KVER MODULE...: copy the named modules (names with - or _, missing
# ones are skipped) and every dependency listed in modules.dep, then write a modules.dep
# for just those (busybox modprobe reads the text format).
stage_modules() {
	root=$1 kver=$2
	shift 2
	mdir=/lib/modules/$kver
	[ -f "$mdir/modules.dep" ] || { echo "initramfs: $mdir/modules.dep missing" >&2; return 1; }
	mkdir -p "$root/lib/modules/$kver"
	# modules.dep already lists the full transitive closure for each module.
	awk -v want="$*" '
		function norm(p,  b) { b = p; sub(/.*\//, "", b); sub(/\.ko(\.[a-z]+)?$/, "", b); gsub(/-/, "_", b); return b }
		BEGIN { n = split(want, w, " "); for (i = 1; i <= n; i++) { x = w[i]; gsub(/-/, "_", x); wanted[x] = 1 } }
		{
			m = $1; sub(/:$/, "", m)
			if (!(norm(m) in wanted)) next
			print m
			for (i = 2; i <= NF; i++) print $i
		}' "$mdir/modules.dep" | sort -u >"$root/.modlist"
	while read -r rel; do
		mkdir -p "$root/lib/modules/$kver/$(dirname "$rel")"
		case $rel in
		*.ko.xz) xz -dc "$mdir/$rel" >"$root/lib/modules/$kver/${rel%.xz}" ;;
		*.ko.zst) zstd -qdc "$mdir/$rel" >"$root/lib/modules/$kver/${rel%.zst}" ;;
		*.ko.gz) gzip -dc "$mdir/$rel" >"$root/lib/modules/$kver/${rel%.gz}" ;;
		*) cp "$mdir/$rel" "$root/lib/modules/$kver/$rel" ;;
		esac
	done <"$root/.modlist"
	# modules.dep restricted to what we copied, compressed suffixes dropped.
	awk 'NR == FNR { have[$1] = 1; next }
		{ m = $1; sub(/:$/, "", m); if (m in have) print }' \
		"$root/.modlist" "$mdir/modules.dep" |
		sed -e 's/\.ko\.\(xz\|zst\|gz\)/.ko/g' >"$root/lib/modules/$kver/modules.dep"
	for f in modules.builtin modules.builtin.modinfo modules.order modules.softdep; do
		[ -f "$mdir/$f" ] && cp "$mdir/$f" "$root/lib/modules/$kver/"
	done
	# modules.alias for the copied modules only (lets modprobe resolve aliases).
	if [ -f "$mdir/modules.alias" ]; then
		sed 's/.*\///; s/\.ko.*//; s/-/_/g' "$root/.modlist" >"$root/.modnames"
		awk 'NR == FNR { have[$1] = 1; next } /^alias/ { m = $3; gsub(/-/, "_", m); if (m in have) print }' \
			"$root/.modnames" "$mdir/modules.alias" >"$root/lib/modules/$kver/modules.alias"
		rm -f "$root/.modnames"
	fi
	rm -f "$root/.modlist"
}

# stage_binary ROOT PATH: copy a dynamically linked program and its libraries (ldd).
stage_binary() {
	root=$1 bin=$2
	mkdir -p "$root$(dirname "$bin")"
	cp "$bin" "$root$bin"
	ldd "$bin" 2>/dev/null | awk '/=> \// { print $3 } /^[ \t]*\// { print $1 }' | while read -r lib; do
		[ -e "$root$lib" ] && continue
		mkdir -p "$root$(dirname "$lib")"
		cp -L "$lib" "$root$lib"
	done
}

# pack_cpio ROOT OUT: newc archive of ROOT, gzip-compressed, written atomically.
pack_cpio() {
	(cd "$1" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0) |
		gzip -6 >"$2.tmp.$$"
	mv -f "$2.tmp.$$" "$2"
}

# inputs_hash FILE...: a content hash of the given files (and the lib itself).
inputs_hash() {
	cat "$@" | sha256sum | cut -d' ' -f1
}
