#!/usr/bin/env bash
# `deno task test`: runs the whole test suite on whatever WebGPU adapter the machine has (the software adapter
# on a machine without a GPU) and ends with the plain line "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/tools/deno/node_modules/.bin:$PATH"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
# JSDoc examples assert (node:assert) instead of printing. Every example in src/, cli/ and mod.ts
# (but `ts ignore` ones) is type-checked (`deno check --doc-only`, one test in the count); those below
# (the user-facing API, CPU only, ~64 blocks) also run as doc tests (`deno test --doc`). Each
# example is its own module (~1 s apiece on 2 busy cores: the list below adds ~80 s at load 3-4),
# so FILIGREE_DOC_TESTS=all runs every file's examples (311, GPU ones on the adapter; 9 min at
# load ~10; CI runs the default list). `ts ignore` marks examples that need a trained run or a
# study store.
DOC_TEST_FILES=(
  cli/args.ts src/analysis/options.ts src/train/config.ts src/train/progress.ts
  src/train/rundir.ts src/io/atomic.ts src/io/safetensors.ts src/study/spec.ts
  src/study/failures.ts src/study/shard.ts src/study/rules.ts src/study/hypotheses.ts
  src/study/findings.ts
  src/report/plot.ts
)
if [ "${FILIGREE_DOC_TESTS:-}" = all ]; then
  mapfile -t DOC_TEST_FILES < <(grep -rl --include='*.ts' '@example' src cli mod.ts | sort)
fi
log="$(mktemp)"
counts() { # log -> "passed failed" of deno test's last summary line, or nothing
  grep -E '^(ok|FAILED) \|' "$1" | tail -1 |
    sed -E 's/^(ok|FAILED) \| ([0-9]+) passed[^|]*\| ([0-9]+) failed.*/\2 \3/'
}
# A deno process that printed its final summary with nothing failed and then died of SIGABRT or
# SIGSEGV crashed in native code at exit, after every test had run and passed: Mesa/wgpu teardown
# ("corrupted double-linked list", 1 of 4 suite runs on the GL backend on 2026-12-07; once before
# in a benchmark, bench/RESULTS.md). Say so on stderr and do not count it as a failure; any
# other status stands.
settle() { # status log -> the status to keep
  if { [ "$1" -eq 134 ] || [ "$1" -eq 139 ]; } &&
    grep -E '^(ok|FAILED) \|' "$2" | tail -1 | grep -qE '^ok \| [0-9]+ passed \| 0 failed'; then
    echo "test.sh: deno died of signal $(($1 - 128)) at exit after reporting every test passed" \
      "(a native crash in the WebGPU teardown, not a test failure)" >&2
    echo 0
  else
    echo "$1"
  fi
}
if [ $# -gt 0 ]; then
  NO_COLOR=1 deno task test:deno "$@" 2>&1 | tee "$log"
  status=$(settle "${PIPESTATUS[0]}" "$log")
  main=$(counts "$log")
else
  # `deno test --parallel` runs test files in worker threads of one process (one per core): their
  # modules are separate, their environment is shared. Files that change process-wide state
  # (environment variables, the working directory) run alone afterwards; the rest in parallel
  # (4.0 -> 2.4 min warm on 2 cores: shader compilation and the CPU work of one file overlap the
  # other's waits).
  mapfile -t serial < <(grep -rlE 'Deno\.(env\.(set|delete)|chdir)\(' tests --include='*_test.ts' | sort)
  mapfile -t parallel < <(find tests -name '*_test.ts' | sort | grep -vxF -f <(printf '%s\n' "${serial[@]}"))
  run=(deno test --v8-flags=--expose-gc --allow-read --allow-write --allow-env --allow-sys
    --allow-ffi --allow-run) # deno.json's test:deno, by file
  NO_COLOR=1 DENO_JOBS="${DENO_JOBS:-2}" "${run[@]}" --parallel "${parallel[@]}" 2>&1 | tee "$log"
  status=$(settle "${PIPESTATUS[0]}" "$log")
  main=$(counts "$log")
  if [ ${#serial[@]} -gt 0 ]; then
    NO_COLOR=1 "${run[@]}" "${serial[@]}" 2>&1 | tee "$log"
    sstatus=$(settle "${PIPESTATUS[0]}" "$log")
    more=$(counts "$log")
    [ "$sstatus" -ne 0 ] && [ "$status" -eq 0 ] && status=$sstatus
    if [ -z "$more" ]; then
      main=""
    elif [ -n "$main" ]; then
      main="$(( ${main% *} + ${more% *} )) $(( ${main#* } + ${more#* } ))"
    fi
  fi
fi
doc=""
if [ $# -eq 0 ]; then
  NO_COLOR=1 deno test --doc --allow-read --allow-write --allow-env --allow-sys --allow-ffi \
    "${DOC_TEST_FILES[@]}" 2>&1 | tee "$log"
  dstatus=$(settle "${PIPESTATUS[0]}" "$log")
  doc=$(counts "$log")
  [ -z "$doc" ] && doc="0 1"  # the doc tests did not even run
  [ "$dstatus" -ne 0 ] && [ "$status" -eq 0 ] && status=$dstatus
  # Type-check every JSDoc example (but `ts ignore` ones): one more passed or failed test.
  if NO_COLOR=1 deno check --doc-only mod.ts cli/ src/; then
    doc="$(( ${doc% *} + 1 )) ${doc#* }"
  else
    echo "JSDoc examples: type check failed"
    doc="${doc% *} $(( ${doc#* } + 1 ))"
    [ "$status" -eq 0 ] && status=1
  fi
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
