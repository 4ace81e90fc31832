#!/usr/bin/env bash
# Scale-out test on a real Slurm (docs/SCALING.md, "What is verified"): starts a private
# single-node Slurm on localhost (munged, slurmctld, slurmd; generated slurm.conf, key, state,
# spool, logs and pid files all in a temp dir, non-default ports), submits the smoke study as an
# `sbatch --array` of shards through the shipped scripts/slurm-sweep.sh (its GPU, CPU and memory
# requests overridden on the sbatch command line for this CPU-only node), waits, merges the shard
# stores, runs the same study unsharded, and checks that the merged store equals the unsharded one
# (scripts/compare-stores.ts: every cell's results, epochs and analysis, not timings). Stops the
# daemons it started, whatever happens.
#
# Needs root (or passwordless sudo) for the daemons, and installs `slurmctld slurmd slurm-client
# munge` from apt when they are missing (~10 s). Opt-in: runs only with FILIGREE_TEST_SLURM=1
# (.ci/run sets it); otherwise it says so and exits 0. Takes ~3-4 min on 2 cores (two smoke runs).
# Usage: FILIGREE_TEST_SLURM=1 bash scripts/test-slurm.sh [N shards, default 2]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
N=${1:-2}

if [ "${FILIGREE_TEST_SLURM:-}" != 1 ]; then
  echo "test-slurm: SKIPPED (opt-in: FILIGREE_TEST_SLURM=1 bash scripts/test-slurm.sh; needs root" \
    "or sudo; CI runs it)" >&2
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
    echo "test-slurm: FAILED: needs root or passwordless sudo to start slurmd/slurmctld/munged" >&2
    exit 1
  fi
fi

PKGS=(slurmctld slurmd slurm-client munge)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "test-slurm: installing ${missing[*]}" >&2
  $SUDO apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

export PATH="$ROOT/tools/deno/node_modules/.bin:$PATH"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
NAME=filigree-slurm-test
T=$(mktemp -d /tmp/filigree-slurm.XXXXXX)
chmod 755 "$T"
export SLURM_CONF="$T/slurm.conf"
t0=$(date +%s)

# Stop only what this script started, by the pid files in $T, checking the process name first.
stop_daemon() { # pidfile expected-comm
  local pid
  [ -f "$1" ] || return 0
  pid=$(cat "$1" 2>/dev/null || true)
  [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null || true)" = "$2" ] || return 0
  $SUDO kill "$pid" 2>/dev/null || true
  for _ in $(seq 50); do [ -d "/proc/$pid" ] || return 0; sleep 0.1; done
  $SUDO kill -9 "$pid" 2>/dev/null || true
}
cleanup() {
  local rc=$?
  [ -n "${jid:-}" ] && scancel "$jid" 2>/dev/null || true
  stop_daemon "$T/slurmd.pid" slurmd
  stop_daemon "$T/slurmctld.pid" slurmctld
  stop_daemon "$T/munge/munged.pid" munged
  if [ "$rc" -ne 0 ]; then
    echo "test-slurm: FAILED (exit $rc); logs:" >&2
    for f in "$T"/*.log "$T"/munge/*.log "$T"/out/*; do
      [ -f "$f" ] && { echo "--- $f" >&2; tail -n 30 "$f" >&2; }
    done
  fi
  $SUDO rm -rf "$T" "$ROOT/runs/studies/$NAME"
  exit "$rc"
}
trap cleanup EXIT

# --- munged: private key, socket, pid and log in $T, run as the munge user.
mkdir -p "$T/munge"
$SUDO chown munge:munge "$T/munge"
$SUDO chmod 755 "$T/munge" # clients (slurm, sbatch) must reach the socket; the key is 0600
$SUDO runuser -u munge -- mungekey --create --keyfile="$T/munge/munge.key"
$SUDO runuser -u munge -- munged --socket="$T/munge/munge.socket" \
  --key-file="$T/munge/munge.key" --pid-file="$T/munge/munged.pid" \
  --log-file="$T/munge/munged.log" --seed-file="$T/munge/munged.seed"

# --- slurm.conf: one node (this machine's CPUs), one partition, free ports.
CPUS=$(nproc)
port() { deno eval 'const l = Deno.listen({ port: 0 }); console.log(l.addr.port); l.close();'; }
mkdir -p "$T/state" "$T/spool" "$T/out"
cat >"$SLURM_CONF" <<EOF
ClusterName=filigreetest
SlurmctldHost=localhost
SlurmctldPort=$(port)
SlurmdPort=$(port)
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$T/munge/munge.socket
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
SlurmdParameters=config_overrides
StateSaveLocation=$T/state
SlurmdSpoolDir=$T/spool
SlurmctldPidFile=$T/slurmctld.pid
SlurmdPidFile=$T/slurmd.pid
SlurmctldLogFile=$T/slurmctld.log
SlurmdLogFile=$T/slurmd.log
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MailProg=/bin/true
NodeName=localhost CPUs=$CPUS RealMemory=4000 State=UNKNOWN
PartitionName=test Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
$SUDO env SLURM_CONF="$SLURM_CONF" slurmctld -f "$SLURM_CONF"
$SUDO env SLURM_CONF="$SLURM_CONF" slurmd -f "$SLURM_CONF" -N localhost
state=""
for _ in $(seq 150); do
  state=$(sinfo -h -n localhost -o %T 2>/dev/null || true)
  [ "$state" = idle ] && break
  sleep 0.2
done
if [ "$state" != idle ]; then
  echo "test-slurm: the node did not become idle (state: '${state:-none}')" >&2
  exit 1
fi
echo "test-slurm: single-node Slurm $(sinfo -V | cut -d' ' -f2) up in $(($(date +%s) - t0)) s" \
  "($CPUS CPUs, conf $SLURM_CONF)" >&2

# --- the study: studies/smoke.yaml under a name of its own (stores in runs/studies/$NAME).
sed -E "s/^name: .*/name: $NAME/" studies/smoke.yaml >"$T/smoke.yaml"
rm -rf "runs/studies/$NAME"

# Shards through the shipped script; command-line options override its #SBATCH GPU, CPU and
# memory requests (this node has no GPU, $CPUS CPUs and 4000 MB).
t1=$(date +%s)
jid=$(sbatch --parsable --array=0-$((N - 1)) --gres=none --cpus-per-task=1 --mem=1000 \
  --time=30 --output="$T/out/%x-%A_%a.out" \
  scripts/slurm-sweep.sh "$T/smoke.yaml" "$N" --runs "$T/cells" --quiet)
echo "test-slurm: submitted array job $jid (N=$N)" >&2
deadline=$(($(date +%s) + 1200))
while [ -n "$(squeue -h -j "$jid" -o %i 2>/dev/null)" ]; do
  if [ "$(date +%s)" -gt "$deadline" ]; then
    echo "test-slurm: array job $jid still queued/running after 20 min" >&2
    squeue -j "$jid" >&2 || true
    exit 1
  fi
  sleep 2
done
bad=$(scontrol show job -o "$jid" | grep -v 'JobState=COMPLETED .*ExitCode=0:0' || true)
if [ -n "$bad" ]; then
  echo "test-slurm: some array tasks did not complete cleanly:" >&2
  echo "$bad" | grep -oE '(JobId|ArrayTaskId|JobState|ExitCode)=[^ ]+' | paste -sd' ' >&2
  exit 1
fi
echo "test-slurm: $N array tasks completed in $(($(date +%s) - t1)) s" >&2
for i in $(seq 0 $((N - 1))); do
  grep -q "shard $i/$N done" "$T"/out/*_"$i".out || {
    echo "test-slurm: shard $i's log does not say it finished" >&2
    exit 1
  }
done

deno task -q merge "$T/merged.sqlite" runs/studies/$NAME/store-*-of-"$N".sqlite
t2=$(date +%s)
deno task -q sweep "$T/smoke.yaml" --store "$T/unsharded.sqlite" --runs "$T/unsharded-cells" \
  --quiet
echo "test-slurm: unsharded run in $(($(date +%s) - t2)) s" >&2
deno run --allow-read --allow-env scripts/compare-stores.ts "$T/merged.sqlite" \
  "$T/unsharded.sqlite"
echo "test-slurm: PASSED: sbatch --array of $N shards + merge equals the unsharded store" \
  "($(($(date +%s) - t0)) s in all)"
