#!/bin/sh
# Machine facts as KEY=VALUE lines for the host to grep.
echo "CPUS=$(nproc)"
echo "CPUS_ONLINE=$(cat /sys/devices/system/cpu/online)"
echo "MEMTOTAL_KB=$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo)"
if grep -qw svm /proc/cpuinfo; then echo SVM=yes; else echo SVM=no; fi
if grep -qw vmx /proc/cpuinfo; then echo VMX=yes; else echo VMX=no; fi
echo "KERNEL=$(uname -r)"
exit 0
