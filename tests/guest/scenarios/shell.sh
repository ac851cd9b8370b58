#!/bin/sh
# Serial input test: read one line from the console and run it.
echo READY
IFS= read -r line
eval "$line"
echo DONE
exit 0
