#!/bin/sh
# The overcommit benchmark's workload (bench/overcommit): loads virtio_balloon, runs
# `memchase MIB MSTEPS` (mcf-like pointer chasing, tools/memchase.c) with
# minivmm.chase_mib (default 200) and minivmm.chase_msteps (default 5), prints its
# MEMCHASE line, frees its memory (it exits) and, after minivmm.chase_idle seconds
# (default 0) for the host to look at its RSS, exits with memchase's status.
# SPDX-License-Identifier: GPL-2.0-or-later
# shellcheck source=lib.sh disable=SC1091
. /scenarios/lib.sh
modprobe -q virtio_balloon
mib=$(cmdline_arg minivmm.chase_mib)
msteps=$(cmdline_arg minivmm.chase_msteps)
idle=$(cmdline_arg minivmm.chase_idle)
/bin/memchase "${mib:-200}" "${msteps:-5}"
rc=$?
echo "MEMCHASE_DONE $rc"
sleep "${idle:-0}"
exit_port "$rc"
