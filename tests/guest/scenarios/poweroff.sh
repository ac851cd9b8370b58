#!/bin/sh
echo "powering off"
sync
poweroff -f
sleep 30
