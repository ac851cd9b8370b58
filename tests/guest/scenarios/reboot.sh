#!/bin/sh
echo "rebooting"
sync
reboot -f
sleep 30
