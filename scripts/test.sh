#!/usr/bin/env bash
# `deno task test`: runs the whole test suite on whatever WebGPU adapter the machine has (the software adapter
# on a machine without a GPU) and ends with the plain line "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/tools/deno/node_modules/.bin:$PATH"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
# JSDoc examples that assert run as doc tests too (`deno test --doc`); a file joins this list
# once its examples assert instead of printing and run in seconds.
DOC_TEST_FILES=(src/report/plot.ts)
log="$(mktemp)"
NO_COLOR=1 deno task test:deno "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
counts() { # log -> "passed failed" of deno test's last summary line, or nothing
  grep -E '^(ok|FAILED) \|' "$1" | tail -1 |
    sed -E 's/^(ok|FAILED) \| ([0-9]+) passed[^|]*\| ([0-9]+) failed.*/\2 \3/'
}
main=$(counts "$log")
doc=""
if [ $# -eq 0 ]; then
  NO_COLOR=1 deno test --doc --allow-read --allow-write --allow-env --allow-sys --allow-ffi \
    "${DOC_TEST_FILES[@]}" 2>&1 | tee "$log"
  dstatus=${PIPESTATUS[0]}
  doc=$(counts "$log")
  [ -z "$doc" ] && doc="0 1"  # the doc tests did not even run
  [ "$dstatus" -ne 0 ] && [ "$status" -eq 0 ] && status=$dstatus
fi
rm -f "$log"
if [ -z "$main" ]; then
  echo "0 passed, 1 failed"   # the suite did not even run (type error, missing adapter, ...)
  exit 1
fi
read -r p f <<<"$main"
if [ -n "$doc" ]; then
  read -r dp df <<<"$doc"
  p=$((p + dp)) f=$((f + df))
fi
echo "$p passed, $f failed"
exit "$status"
