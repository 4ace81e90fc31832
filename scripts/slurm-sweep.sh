#!/usr/bin/env bash
# One shard of a study per Slurm array task (see docs/SCALING.md):
#
#   mkdir -p runs/slurm
#   sbatch --array=0-$((N-1)) scripts/slurm-sweep.sh studies/X.yaml N
#   # when every task has finished (or chain it: --dependency=afterok:<array job id>):
#   deno task merge runs/studies/<name>/store.sqlite runs/studies/<name>/store-*-of-N.sqlite
#
# Task i runs `deno task sweep X.yaml --shard i/N`: cells k with k mod N = i, its own store
# runs/studies/<name>/store-i-of-N.sqlite, run dirs runs/studies/<name>/cells/<cellId> on the
# shared file system. A task that is killed (time limit, preemption) is simply resubmitted:
# finished cells are skipped and the interrupted cell resumes from its last epoch checkpoint.
# Arguments after N go to `deno task sweep` (e.g. `--runs DIR --quiet`).
#
# The #SBATCH requests below are defaults for a GPU node; options on the sbatch command line
# override them. On a CPU-only node (no GRES configured, where `--gres=gpu:1` is rejected at
# submit), e.g.:
#   sbatch --gres=none --cpus-per-task=1 --mem=2G --array=0-3 scripts/slurm-sweep.sh X.yaml 4
# (or export SBATCH_GRES=none). Verified on a single-node Slurm 22.05 by scripts/test-slurm.sh.
#
#SBATCH --job-name=filigree-sweep
#SBATCH --gres=gpu:1
#SBATCH --cpus-per-task=4
#SBATCH --mem=32G
#SBATCH --time=24:00:00
#SBATCH --requeue
#SBATCH --output=runs/slurm/%x-%A_%a.out
set -euo pipefail

if [ $# -lt 2 ]; then
  echo "usage: sbatch --array=0-\$((N-1)) $0 STUDY.yaml N [sweep options]" >&2
  exit 2
fi
study=$1
n=$2
shift 2
if ! [[ "$n" =~ ^[1-9][0-9]*$ ]]; then
  echo "N must be a positive integer, got '$n'" >&2
  exit 2
fi
i=${SLURM_ARRAY_TASK_ID:?"not an array task: submit with sbatch --array=0-$((n - 1))"}
if [ "$i" -ge "$n" ]; then
  echo "array index $i is not below N=$n; use --array=0-$((n - 1))" >&2
  exit 2
fi

# Slurm runs a copy of this script from its spool directory: work from the submit directory
# (the repository root).
cd "${SLURM_SUBMIT_DIR:?}"
export PATH="$PWD/tools/deno/node_modules/.bin:$PATH"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"

echo "$(date -Is) $(hostname) shard $i/$n of $study (GPU ${CUDA_VISIBLE_DEVICES:-?})"
deno task sweep "$study" --shard "$i/$n" "$@"
echo "$(date -Is) shard $i/$n done"
