#!/bin/sh
# virtio-vsock (minivmm.vsock=out|in):
#   out  the guest connects to the host (CID 2) port 5000, sends `seq 1 20000` and expects
#        it back (the host side echoes): VSOCK_OUT=ok|FAIL
#   in   the guest echoes one connection on port 1024 (the host connects through the
#        VM's Unix socket): VSOCK_LISTENING=1024, then VSOCK_IN=ok|FAIL
# shellcheck source=lib.sh disable=SC1091
. /scenarios/lib.sh
modprobe -q vmw_vsock_virtio_transport || { echo "VSOCK=no driver"; exit 1; }
case $(cmdline_arg minivmm.vsock) in
out)
	seq 1 20000 >/tmp/p
	if vsockcat connect 2 5000 </tmp/p >/tmp/back && cmp -s /tmp/p /tmp/back; then
		echo "VSOCK_OUT=ok"
	else
		echo "VSOCK_OUT=FAIL ($(wc -c </tmp/back) of $(wc -c </tmp/p) bytes back)"
		exit 1
	fi
	;;
in)
	if vsockcat listen 1024; then
		echo "VSOCK_IN=ok"
	else
		echo "VSOCK_IN=FAIL"
		exit 1
	fi
	;;
*)
	echo "vsock: minivmm.vsock=out|in" >&2
	exit 2
	;;
esac
