#!/bin/sh
# rootbind.sh DIR CMD...: run CMD in a mount namespace of its own in which DIR holds a bind
# mount of / (a share of / itself would stop at the first mount point below it: the FUSE
# server does not cross mounts; a bind mount of / has the root filesystem's files only).
# Needs root (CAP_SYS_ADMIN). Used by the e2e cases and benchmarks that share the host's /.
# SPDX-License-Identifier: GPL-2.0-or-later
[ $# -ge 2 ] || { echo "usage: rootbind.sh DIR CMD..." >&2; exit 2; }
# shellcheck disable=SC2016 # expanded by that sh
exec unshare -m --propagation private sh -c 'mount --bind / "$1" && shift && exec "$@"' sh "$@"
