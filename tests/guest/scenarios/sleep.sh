#!/bin/sh
# Never finishes on its own (for --timeout).
echo "sleeping forever"
while :; do sleep 3600; done
