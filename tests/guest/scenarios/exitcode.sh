#!/bin/sh
# Exit with the status given by minivmm.code=N (default 0).
# shellcheck source=lib.sh disable=SC1091
. /scenarios/lib.sh
echo hello-from-guest
code=$(cmdline_arg minivmm.code)
exit "${code:-0}"
