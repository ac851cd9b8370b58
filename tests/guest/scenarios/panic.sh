#!/bin/sh
# Crash the kernel; with pvpanic-pci loaded (by /init) the VMM is told about it.
if [ -d /sys/bus/pci/drivers/pvpanic-pci ]; then echo "pvpanic-pci: loaded"; else echo "pvpanic-pci: not loaded"; fi
echo "triggering a kernel panic"
echo 1 >/proc/sys/kernel/sysrq
echo c >/proc/sysrq-trigger
sleep 30
