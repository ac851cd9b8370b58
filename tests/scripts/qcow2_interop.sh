#!/bin/sh
# qcow2 interoperability with QEMU's tools as the oracle, both directions.
. "$(dirname "$0")/../qcow2/lib.sh"
if [ $HAVE_QEMU = 0 ]; then
	# make deps installs qemu-utils: without the oracle this test cannot pass.
	echo "FAIL: qemu-img/qemu-io not installed (apt-get install qemu-utils); run make deps"
	exit 1
fi
SIZE=$((8 * 1024 * 1024))
# same_json OURS QEMU'S: the same JSON object (the order of fields aside); says what differs.
same_json() {
	python3 -c 'import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:])
d = {k: (a.get(k), b.get(k)) for k in set(a) | set(b) if a.get(k) != b.get(k)}
sys.exit("fields differ (ours, qemu-img'"'"'s): %s" % d if d else 0)' "$1" "$2"
}

# 1. Images made and written by QEMU are read correctly by the engine.
n=0
for spec in "512 0.10 16" "4k 1.1 16" "64k 1.1 1" "64k 0.10 16" "2M 1.1 64" "4k 1.1 8" "64k 1.1 32"; do
	set -- $spec
	f="$T/q-$1-$2-$3.qcow2"
	if [ "$2" = 0.10 ]; then opt="cluster_size=$1,compat=0.10"; else opt="cluster_size=$1,compat=1.1,refcount_bits=$3"; fi
	qemu-img create -q -f qcow2 -o "$opt" "$f" $SIZE
	ops $((n + 11)) 60 $SIZE 300 qemu >"$T/ops"
	run_qemu_ops "$f" "$T/ops"
	same_view "$f"
	n=$((n + 1))
done
ok "engine reads $n QEMU-written images (cluster 512 B..2 MiB, v2/v3, refcount 1..64 bits)"

# 2. Compressed clusters: deflate and zstd.
# Compressible, non-trivial data:
awk 'BEGIN { for (i = 0; i < 131072; i++) printf "line %08d of some compressible text\n", i * 7 }' | head -c $SIZE >"$T/src.raw"
truncate -s $SIZE "$T/src.raw"
for ct in zlib zstd; do
	for cs in 4k 64k; do
		qemu-img convert -q -c -O qcow2 -o compression_type=$ct,cluster_size=$cs "$T/src.raw" "$T/c.qcow2"
		same_view "$T/c.qcow2"
		cmp -s "$T/e.raw" "$T/src.raw" || fail "compressed $ct/$cs content"
		# Overwrite part of a compressed image with the engine: qemu must agree and check clean.
		$IMG io "$T/c.qcow2" "write -P 7 4096 1536" "discard 1048576 1048576" flush
		qcheck "$T/c.qcow2"
		same_view "$T/c.qcow2"
	done
done
ok "compressed clusters (deflate, zstd) read, overwritten and freed"

# 3. Backing files: qcow2 and raw, chains.
qemu-img create -q -f qcow2 "$T/base.qcow2" $SIZE
qemu-io -c "write -P 0x61 0 3M" -c "write -P 0x62 5M 1M" "$T/base.qcow2" >/dev/null
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 "$T/mid.qcow2" $SIZE
qemu-io -c "write -P 0x63 1M 100k" -c "write -z 2M 64k" "$T/mid.qcow2" >/dev/null
qemu-img create -q -f qcow2 -b mid.qcow2 -F qcow2 "$T/top.qcow2" $SIZE
qemu-io -c "write -P 0x64 4097k 3k" -c "discard 5M 64k" "$T/top.qcow2" >/dev/null
same_view "$T/top.qcow2" --backing-dir "$T"
# Header extensions (backing format, feature names) survive engine writes byte for byte.
dd if="$T/top.qcow2" bs=1 skip=104 count=3992 2>/dev/null >"$T/ext.before"
$IMG convert -O raw "$T/top.qcow2" "$T/x.raw" 2>"$T/err" && fail "backing opened without permission"
grep -q "not allowed" "$T/err" || fail "no clear error for a denied backing file"
$IMG io --backing-dir "$T" "$T/top.qcow2" "write -P 0x65 1500k 7k" "write -P 0x66 5M 2k" "zero 0 128k" flush
dd if="$T/top.qcow2" bs=1 skip=104 count=3992 2>/dev/null >"$T/ext.after"
cmp -s "$T/ext.before" "$T/ext.after" || fail "header extensions changed"
qcheck "$T/top.qcow2"
same_view "$T/top.qcow2" --backing-dir "$T"
qemu-img create -q -f qcow2 -b src.raw -F raw "$T/over-raw.qcow2" $SIZE
$IMG io --backing-dir "$T" "$T/over-raw.qcow2" "write -P 0x67 33k 1k" "discard 64k 64k" flush
qcheck "$T/over-raw.qcow2"
same_view "$T/over-raw.qcow2" --backing-dir "$T"
qemu-img create -q -f qcow2 -o compat=0.10 -b base.qcow2 -F qcow2 "$T/v2over.qcow2" $SIZE
$IMG io --backing-dir "$T" "$T/v2over.qcow2" "write -P 0x68 2047k 2k" "zero 5M 128k" "discard 0 64k" flush
qcheck "$T/v2over.qcow2"
same_view "$T/v2over.qcow2" --backing-dir "$T"
ok "backing chains (qcow2, raw, v2 and v3) read and copy-on-write"

# 3b. Hostile backing names: the format is never probed, the chain stays in --backing-dir.
# QEMU no longer makes an image without a backing format: end its extensions early.
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 "$T/nofmt.qcow2" $SIZE
hl=$(od -An -tx1 -j100 -N4 "$T/nofmt.qcow2" | tr -d ' \n')
printf '\0\0\0\0' | dd of="$T/nofmt.qcow2" bs=1 seek=$((0x$hl)) conv=notrunc 2>/dev/null
qemu-img info "$T/nofmt.qcow2" | grep -q "backing file format" && fail "could not drop the format"
$IMG convert --backing-dir "$T" -O raw "$T/nofmt.qcow2" "$T/x.raw" 2>"$T/err" &&
	fail "a backing file without a format was probed as qcow2"
grep -q "looks like qcow2" "$T/err" || fail "no clear error for an unnamed qcow2 backing file"
mkdir -p "$T/jail"
ln -sf /etc/passwd "$T/jail/passwd.raw"
qemu-img create -q -f qcow2 -u -b passwd.raw -F raw "$T/jail/evil.qcow2" $SIZE
$IMG convert --backing-dir "$T/jail" -O raw "$T/jail/evil.qcow2" "$T/x.raw" 2>"$T/err" &&
	fail "a symlink out of --backing-dir was followed"
grep -q "outside backing_dir" "$T/err" || fail "no clear error for a backing file outside"
$IMG create -b base.qcow2 "$T/nofmt2.qcow2" 1M 2>"$T/err" && fail "img create -b without -F"
grep -q -- "-F" "$T/err" || fail "img create -b without -F: no hint"
ok "backing files: no format probing, symlinks cannot leave --backing-dir, -b needs -F"

# 4. Images made and written by the engine pass qemu-img check and read back in QEMU.
n=0
for spec in "512 0.10 16" "4k 1.1 16" "64k 1.1 1" "64k 0.10 16" "2M 1.1 64" "4k 1.1 2" "16k 1.1 32"; do
	set -- $spec
	f="$T/e-$1-$2-$3.qcow2"
	if [ "$2" = 0.10 ]; then opt="cluster_size=$1,compat=0.10"; else opt="cluster_size=$1,compat=1.1,refcount_bits=$3"; fi
	$IMG create -o "$opt" "$f" $SIZE >/dev/null
	qcheck "$f"
	ops $((n + 101)) 80 $SIZE 300 img >"$T/ops"
	run_img_ops "$f" "$T/ops"
	qcheck "$f"
	same_view "$f"
	# QEMU continues where the engine stopped, and the other way round.
	ops $((n + 201)) 30 $SIZE 300 qemu >"$T/ops"
	run_qemu_ops "$f" "$T/ops"
	ops $((n + 301)) 30 $SIZE 300 img >"$T/ops"
	run_img_ops "$f" "$T/ops"
	qcheck "$f"
	same_view "$f"
	n=$((n + 1))
done
ok "$n engine-written images pass qemu-img check and match QEMU's view"

# 5. Explicit pattern read-back with qemu-io.
$IMG create "$T/p.qcow2" 64M >/dev/null
$IMG io "$T/p.qcow2" "write -P 0xab 0 64k" "write -P 0xcd 10M 4k" "write -P 0xef 33M 1M" flush
qemu-io -c "read -P 0xab 0 64k" -c "read -P 0xcd 10M 4k" -c "read -P 0xef 33M 1M" -c "read -P 0 1M 1M" \
	"$T/p.qcow2" | grep -q "Pattern verification failed" && fail "qemu-io pattern read-back"
qcheck "$T/p.qcow2"
ok "qemu-io read -P of engine-written data"

# 6. check agrees with qemu-img on leaks, and repairs them.
$IMG create "$T/l.qcow2" 16M >/dev/null
qemu-io -c "write -P 1 0 1M" "$T/l.qcow2" >/dev/null
# Leak clusters by clearing one L2 entry behind QEMU's back.
l1=$(od -An -tx8 --endian=big -j40 -N8 "$T/l.qcow2" | tr -d ' ')
l2=$(od -An -tx8 --endian=big -j$((0x$l1)) -N8 "$T/l.qcow2" | tr -d ' ' | cut -c3-16)
l2=$((0x$l2 & 0xfffffffffffe00))
printf '\0\0\0\0\0\0\0\0' | dd of="$T/l.qcow2" bs=1 seek=$l2 conv=notrunc 2>/dev/null
rc=0; qemu-img check "$T/l.qcow2" >/dev/null 2>&1 || rc=$?
[ $rc = 3 ] || fail "qemu-img check should report a leak (got $rc)"
rc=0; $IMG check "$T/l.qcow2" >"$T/c.out" || rc=$?
[ $rc = 3 ] || fail "img check should report a leak (got $rc)"
grep -q "1 leaked clusters" "$T/c.out" || fail "img check leak count"
# The JSON form (qemu-img's fields) of the leak and of its repair.
qemu-img check --output=json "$T/l.qcow2" >"$T/l.qc" 2>/dev/null || true
$IMG check --output=json "$T/l.qcow2" >"$T/l.c" 2>/dev/null || true
same_json "$T/l.c" "$T/l.qc" || fail "img check --output=json of a leak differs from qemu-img's"
cp "$T/l.qcow2" "$T/lr.qcow2"
qemu-img check -r leaks --output=json "$T/lr.qcow2" >"$T/lr.qc" 2>/dev/null || true
cp "$T/l.qcow2" "$T/lr.qcow2"
$IMG check -r leaks --output=json "$T/lr.qcow2" >"$T/lr.c" 2>/dev/null || fail "img check -r leaks --output=json"
same_json "$T/lr.c" "$T/lr.qc" || fail "img check -r leaks --output=json differs from qemu-img's"
$IMG check -r leaks "$T/l.qcow2" >/dev/null || fail "img check -r leaks"
qcheck "$T/l.qcow2"
ok "img check reports and repairs leaks like qemu-img"

# 7. A lazy_refcounts image left dirty by a crash is repaired when opened.
qemu-img create -q -f qcow2 -o lazy_refcounts=on "$T/lazy.qcow2" $SIZE
qemu-io -c "write -P 9 0 3M" -c abort "$T/lazy.qcow2" >/dev/null 2>&1 || true
$IMG info "$T/lazy.qcow2" | grep -q "dirty: true" || fail "lazy image should be dirty"
$IMG io "$T/lazy.qcow2" "read -P 9 0 3M" "write -P 8 4M 64k" flush
$IMG info "$T/lazy.qcow2" | grep -q "dirty: true" && fail "dirty bit not cleared"
qcheck "$T/lazy.qcow2"
qemu-io -c "read -P 9 0 3M" -c "read -P 8 4M 64k" "$T/lazy.qcow2" | grep -q failed && fail "lazy data"
ok "dirty lazy_refcounts image repaired on open"

# 8. Unknown incompatible feature, corrupt bit.
cp "$T/p.qcow2" "$T/inc.qcow2"
printf '\0\0\1\0\0\0\0\0' | dd of="$T/inc.qcow2" bs=1 seek=72 conv=notrunc 2>/dev/null
$IMG info "$T/inc.qcow2" 2>"$T/err" && fail "unknown feature accepted"
grep -q "unsupported incompatible" "$T/err" || fail "unclear error for an unknown feature"
cp "$T/p.qcow2" "$T/cor.qcow2"
printf '\0\0\0\0\0\0\0\2' | dd of="$T/cor.qcow2" bs=1 seek=72 conv=notrunc 2>/dev/null
$IMG io "$T/cor.qcow2" flush 2>"$T/err" && fail "corrupt image opened writable"
grep -q "marked corrupt" "$T/err" || fail "unclear error for a corrupt image"
$IMG convert -O raw "$T/cor.qcow2" "$T/cor.raw" || fail "corrupt image should open read-only"
ok "unknown features refused, corrupt bit honoured"

# 9. img map and info --output=json: qemu-img's output, byte for byte (map) or field for
# field (info), over a chain with data, zero, compressed and unallocated clusters.
qemu-img create -q -f qcow2 "$T/mb.qcow2" 4M
qemu-io -c "write -P 1 0 64k" -c "write -z 128k 64k" -c "write -P 4 2M 192k" "$T/mb.qcow2" >/dev/null
qemu-img create -q -f qcow2 -b "$T/mb.qcow2" -F qcow2 "$T/mt.qcow2"
qemu-io -c "write -P 2 64k 64k" -c "write -c -P 3 1M 64k" -c "write -z 2M 64k" "$T/mt.qcow2" >/dev/null
qemu-img create -q -f qcow2 -o compat=0.10,cluster_size=4k "$T/v2.qcow2" 1M
qemu-io -c "write -P 5 8k 12k" "$T/v2.qcow2" >/dev/null
for f in mb mt v2; do
	qemu-img map --output=json "$T/$f.qcow2" >"$T/$f.qmap"
	$IMG map --output=json --backing-dir "$T" "$T/$f.qcow2" >"$T/$f.map" || fail "img map $f"
	cmp -s "$T/$f.qmap" "$T/$f.map" || { diff "$T/$f.qmap" "$T/$f.map"; fail "img map --output=json of $f differs from qemu-img's"; }
	qemu-img info --output=json "$T/$f.qcow2" >"$T/$f.qinfo"
	$IMG info --output=json "$T/$f.qcow2" >"$T/$f.info" || fail "img info $f"
	same_json "$T/$f.info" "$T/$f.qinfo" || fail "img info --output=json of $f differs from qemu-img's"
	qemu-img check --output=json "$T/$f.qcow2" >"$T/$f.qcheck"
	$IMG check --output=json "$T/$f.qcow2" >"$T/$f.check" || fail "img check $f"
	same_json "$T/$f.check" "$T/$f.qcheck" || fail "img check --output=json of $f differs from qemu-img's"
done
# The human map: plain data runs only, as qemu-img prints them; compressed clusters refused.
qemu-img map "$T/mb.qcow2" >"$T/mb.qh"
$IMG map "$T/mb.qcow2" >"$T/mb.h" || fail "img map (human)"
cmp -s "$T/mb.qh" "$T/mb.h" || { diff "$T/mb.qh" "$T/mb.h"; fail "img map (human) differs from qemu-img's"; }
$IMG map --backing-dir "$T" "$T/mt.qcow2" >/dev/null 2>"$T/err" && fail "human map of compressed clusters"
grep -q "use --output=json" "$T/err" || fail "unclear error for compressed clusters in a human map"
$IMG map "$T/mt.qcow2" >/dev/null 2>"$T/err" && fail "map opened a chain without --backing-dir"
grep -q -- "--backing-dir" "$T/err" || fail "map's refusal of a backing file does not name --backing-dir"
ok "img map, info and check --output=json match qemu-img"

# 10. img convert -O qcow2 (a chain flattened, a raw file) and img compare, with qemu-img as
# the judge: same content, clean, no cluster allocated that qemu-img convert would not.
$IMG convert -O qcow2 --backing-dir "$T" "$T/mt.qcow2" "$T/flat.qcow2" || fail "img convert -O qcow2"
qemu-img compare -q "$T/mt.qcow2" "$T/flat.qcow2" || fail "convert -O qcow2: content differs"
qcheck "$T/flat.qcow2"
qemu-img info --output=json "$T/flat.qcow2" | grep -q backing && fail "convert -O qcow2 kept a backing file"
qemu-img convert -O qcow2 "$T/mt.qcow2" "$T/qflat.qcow2"
a=$(qemu-img check --output=json "$T/flat.qcow2" | sed -n 's/.*"allocated-clusters": \([0-9]*\).*/\1/p')
b=$(qemu-img check --output=json "$T/qflat.qcow2" | sed -n 's/.*"allocated-clusters": \([0-9]*\).*/\1/p')
[ "$a" = "$b" ] || fail "convert -O qcow2 allocated $a clusters, qemu-img convert $b"
$IMG convert -O qcow2 --backing-dir "$T" "$T/mt.qcow2" "$T/flat.qcow2" 2>"$T/err" && fail "convert overwrote a file"
grep -q "exists" "$T/err" || fail "unclear error for an existing destination"
qemu-img convert -O raw "$T/mt.qcow2" "$T/mt.raw"
$IMG convert -f raw -O qcow2 -o cluster_size=4k -p "$T/mt.raw" "$T/fromraw.qcow2" 2>/dev/null || fail "convert -f raw"
qemu-img compare -q -F raw "$T/fromraw.qcow2" "$T/mt.raw" || fail "convert -f raw -O qcow2: content differs"
qcheck "$T/fromraw.qcow2"
# compare: exit status and message as qemu-img's (identical, mismatch offset, sizes).
cmp_both() { # EXPECTED-STATUS ARGS...: img compare and qemu-img compare agree
	want=$1
	shift
	rc=0; $IMG compare --backing-dir "$T" "$@" >"$T/c.out" 2>&1 || rc=$?
	qrc=0; qemu-img compare "$@" >"$T/qc.out" 2>&1 || qrc=$?
	[ $rc = "$want" ] && [ $qrc = "$want" ] || fail "compare $*: img $rc, qemu-img $qrc, want $want"
	cmp -s "$T/c.out" "$T/qc.out" || { diff "$T/qc.out" "$T/c.out"; fail "compare $*: output differs"; }
}
cmp_both 0 "$T/mt.qcow2" "$T/flat.qcow2"
cmp_both 0 -F raw "$T/flat.qcow2" "$T/mt.raw"
qemu-io -c "write -P 9 3M 4k" "$T/fromraw.qcow2" >/dev/null
cmp_both 1 "$T/flat.qcow2" "$T/fromraw.qcow2"
qemu-img create -q -f qcow2 "$T/big.qcow2" 8M
qemu-img convert -n -O qcow2 "$T/mt.qcow2" "$T/big.qcow2" || fail "qemu-img convert -n"
cmp_both 0 "$T/flat.qcow2" "$T/big.qcow2"
cmp_both 1 -s "$T/flat.qcow2" "$T/big.qcow2"
ok "img convert -O qcow2 (chains flattened, raw sources) and img compare agree with qemu-img"

# 11. img commit: into a qcow2 and a raw base, FILE emptied (or kept with -d); the result
# as qemu-img commit's.
for keep in "" -d; do
	mkdir -p "$T/cm$keep" "$T/qm$keep"
	for d in cm qm; do
		qemu-img create -q -f qcow2 "$T/$d$keep/b.qcow2" 4M
		qemu-io -c "write -P 1 0 128k" -c "write -P 4 2M 192k" "$T/$d$keep/b.qcow2" >/dev/null
		qemu-img create -q -f qcow2 -b b.qcow2 -F qcow2 "$T/$d$keep/t.qcow2"
		qemu-io -c "write -P 2 64k 64k" -c "write -c -P 3 1M 64k" -c "write -z 2M 64k" \
			"$T/$d$keep/t.qcow2" >/dev/null
	done
	qemu-img convert -O raw "$T/cm$keep/t.qcow2" "$T/view.raw"
	$IMG commit $keep "$T/cm$keep/t.qcow2" 2>"$T/err" && fail "commit without --backing-dir"
	grep -q -- "--backing-dir" "$T/err" || fail "commit's refusal does not name --backing-dir"
	$IMG commit $keep --backing-dir "$T/cm$keep" "$T/cm$keep/t.qcow2" >/dev/null || fail "img commit $keep"
	(cd "$T/qm$keep" && qemu-img commit -q $keep t.qcow2) || fail "qemu-img commit $keep"
	qcheck "$T/cm$keep/b.qcow2"
	qcheck "$T/cm$keep/t.qcow2"
	qemu-img compare -q -F raw "$T/cm$keep/b.qcow2" "$T/view.raw" || fail "commit $keep: base content"
	qemu-img compare -q -F raw "$T/cm$keep/t.qcow2" "$T/view.raw" || fail "commit $keep: image content"
	# The image's own clusters (depth 0): none after a commit, untouched with -d. (The
	# base's layout may differ from qemu-img's: its content is what is compared above.)
	qemu-img map --output=json "$T/cm$keep/t.qcow2" | grep '"depth": 0' >"$T/m1" || true
	qemu-img map --output=json "$T/qm$keep/t.qcow2" | grep '"depth": 0' >"$T/m2" || true
	cmp -s "$T/m1" "$T/m2" || { diff "$T/m2" "$T/m1"; fail "commit $keep: the image's own clusters differ from qemu-img's"; }
	[ -n "$keep" ] || [ ! -s "$T/m1" ] || fail "commit did not empty the image"
	[ -z "$keep" ] || [ -s "$T/m1" ] || fail "commit -d emptied the image"
done
qemu-img create -q -f raw "$T/rb.raw" 4M
qemu-img create -q -f qcow2 -b rb.raw -F raw "$T/rt.qcow2"
qemu-io -c "write -P 6 0 64k" -c "write -z 64k 64k" "$T/rt.qcow2" >/dev/null
printf '\377%.0s' $(seq 512) | dd of="$T/rb.raw" bs=1 seek=65536 conv=notrunc 2>/dev/null
qemu-img convert -O raw "$T/rt.qcow2" "$T/rview.raw"
$IMG commit --backing-dir "$T" "$T/rt.qcow2" >/dev/null || fail "img commit into a raw base"
cmp -s "$T/rb.raw" "$T/rview.raw" || fail "commit into a raw base: content"
ok "img commit (qcow2 and raw bases, -d) as qemu-img commit"

# 12. img rebase: safe (the view kept, data copied in as needed), -u (the name only) and
# -b "" (no backing file), checked by qemu-img.
mkdir -p "$T/rb"
qemu-img create -q -f qcow2 "$T/rb/b1.qcow2" 4M
qemu-io -c "write -P 1 0 1M" -c "write -P 7 3M 64k" "$T/rb/b1.qcow2" >/dev/null
qemu-img create -q -f qcow2 "$T/rb/b2.qcow2" 4M
qemu-io -c "write -P 1 0 512k" -c "write -P 8 2M 64k" "$T/rb/b2.qcow2" >/dev/null
for how in safe unsafe none; do
	qemu-img create -q -f qcow2 -b b1.qcow2 -F qcow2 "$T/rb/t.qcow2"
	qemu-io -c "write -P 2 64k 64k" "$T/rb/t.qcow2" >/dev/null
	qemu-img convert -O raw "$T/rb/t.qcow2" "$T/rb/before.raw"
	case $how in
	safe) $IMG rebase -b b2.qcow2 -F qcow2 --backing-dir "$T/rb" "$T/rb/t.qcow2" || fail "img rebase" ;;
	unsafe) $IMG rebase -u -b b2.qcow2 -F qcow2 "$T/rb/t.qcow2" || fail "img rebase -u" ;;
	none) $IMG rebase -b "" --backing-dir "$T/rb" "$T/rb/t.qcow2" || fail "img rebase -b ''" ;;
	esac
	qcheck "$T/rb/t.qcow2"
	info=$(qemu-img info "$T/rb/t.qcow2")
	if [ $how = none ]; then
		echo "$info" | grep -q "backing file" && fail "rebase -b '': a backing file is left"
	else
		echo "$info" | grep -q "^backing file: b2.qcow2" || fail "rebase $how: backing name: $info"
		echo "$info" | grep -q "^backing file format: qcow2" || fail "rebase $how: backing format"
	fi
	if [ $how = unsafe ]; then
		# Only the name changed: the image's own data is as it was, the rest is b2's.
		qemu-io -c "read -P 2 64k 64k" -c "read -P 8 2M 64k" "$T/rb/t.qcow2" | grep -q failed &&
			fail "rebase -u changed data"
	else
		qemu-img compare -q -F raw "$T/rb/t.qcow2" "$T/rb/before.raw" ||
			fail "rebase $how: the image reads differently"
	fi
done
$IMG rebase -b b2.qcow2 -F qcow2 "$T/rb/t.qcow2" 2>"$T/err" && fail "safe rebase without --backing-dir"
grep -q -- "--backing-dir" "$T/err" || fail "rebase's refusal does not name --backing-dir"
$IMG rebase -b b2.qcow2 "$T/rb/t.qcow2" 2>"$T/err" && fail "rebase without -F"
qemu-img create -q -f qcow2 -o compat=0.10,cluster_size=512 "$T/rb/small.qcow2" 1M
long=$(printf 'x%.0s' $(seq 500))
$IMG rebase -u -b "$long" -F raw "$T/rb/small.qcow2" 2>"$T/err" && fail "a name past cluster 0 accepted"
grep -q "does not fit" "$T/err" || fail "unclear error for a name that does not fit"
qcheck "$T/rb/small.qcow2"
$IMG rebase -u -b b1.qcow2 -F qcow2 "$T/rb/small.qcow2" || fail "rebase -u of a v2 image"
qemu-img info "$T/rb/small.qcow2" | grep -q "^backing file: b1.qcow2" || fail "v2 rebase -u: name"
ok "img rebase (safe, -u, to no backing file) keeps what qemu-img sees"
