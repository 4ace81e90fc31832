#!/usr/bin/env bash
# `deno task test`: runs the whole test suite on whatever WebGPU adapter the machine has (the software adapter
# on a machine without a GPU) and ends with the plain line "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/tools/deno/node_modules/.bin:$PATH"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
log="$(mktemp)"
NO_COLOR=1 deno task test:deno "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
summary=$(grep -E '^(ok|FAILED) \|' "$log" | tail -1 |
  sed -E 's/^(ok|FAILED) \| ([0-9]+) passed[^|]*\| ([0-9]+) failed.*/\2 passed, \3 failed/')
rm -f "$log"
if [ -z "$summary" ]; then
  echo "0 passed, 1 failed"   # the suite did not even run (type error, missing adapter, ...)
  exit 1
fi
echo "$summary"
exit "$status"
