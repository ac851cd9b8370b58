#!/bin/sh
# Install the Debian packages that the build and the tests need, only when one is missing.
set -e
PKGS="build-essential pkg-config clang liblzo2-dev liburing-dev libfdt-dev libinih-dev check
      libsubunit-dev zlib1g-dev liblzma-dev libzstd-dev
      qemu-system-x86 qemu-utils linux-image-amd64 busybox-static cpio xz-utils zstd fio
      acpica-tools"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "deps: installing$missing"
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
