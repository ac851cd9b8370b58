#!/bin/sh
# Demo: a banner and a few facts about the VM.
echo "========================================"
echo " Hello from a minivmm guest!"
echo "========================================"
uname -a
echo "online CPUs: $(cat /sys/devices/system/cpu/online) ($(grep -c ^processor /proc/cpuinfo) total)"
grep MemTotal /proc/meminfo
exit 0
