#!/usr/bin/env bash
# A real single-node Slurm cluster on this machine: munged with a fresh key, slurmctld and slurmd on localhost
# (no cgroup plugins), all state, spool, pid and log files in a temporary folder. Submits the example array job
# examples/slurm/generate.sbatch with 4 tasks over a 40-image job file on the built-in model, waits for it and its
# dependent status step, checks that the union of the shards is byte-identical, file for file, to one unsharded run
# and that 'engine batch status' reports 40 of 40, then stops the daemons and removes the folder.
#
#   tests/cluster/slurm-test.sh [ENGINE_DLL]     (default: the Release build of src/Engine.Cli)
#
# Exit codes: 0 passed, 1 failed, 77 skipped because the cluster cannot run here (the reason is printed:
# packages missing, not root, a daemon that did not start, with its log). Needs root (SlurmUser=root).
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
dll=${1:-$root/src/Engine.Cli/bin/Release/net10.0/engine.dll}
say() { echo "slurm test: $*"; }
skip() { say "SKIPPED: $*"; exit 77; }
fail() { say "FAILED: $*"; exit 1; }

[[ -f $dll ]] || fail "no engine build at $dll (build src/Engine.Cli -c Release first)"
for tool in munged munge slurmctld slurmd sbatch squeue sinfo scancel; do
    command -v "$tool" >/dev/null || skip "'$tool' is not installed (Debian: apt-get install slurm-wlm munge)"
done
[[ $(id -u) == 0 ]] || skip "needs root: the cluster runs with SlurmUser=root and munged as root (running as uid $(id -u))"

work=$(mktemp -d /tmp/engine-slurm.XXXXXX)
chmod 700 "$work"
pids=()
cleanup() {
    [[ -f $work/slurm.conf ]] && SLURM_CONF=$work/slurm.conf scancel --quiet --user=root >/dev/null 2>&1
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
    for pid in "${pids[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null
    done
    [[ -f $work/munge/munged.pid ]] && kill "$(cat "$work/munge/munged.pid")" 2>/dev/null
    sleep 0.2
    rm -rf "$work"
}
trap cleanup EXIT
# A daemon that did not come up: skip, saying which and showing the end of its log.
daemon_down() { say "$1 did not start; last lines of $2:"; tail -n 15 "$2" 2>/dev/null | sed 's/^/    /'; skip "$1 could not start on this machine (see its log above)"; }

# A free TCP port on localhost (nothing answers on it).
free_port() {
    local p
    for _ in $(seq 50); do
        p=$((20000 + RANDOM % 20000))
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
    done
    echo 0
}

# ---- munge: a fresh key and a private socket -------------------------------------------------------------------
mkdir -p "$work/munge" && chmod 700 "$work/munge"
dd if=/dev/urandom of="$work/munge/munge.key" bs=1024 count=1 status=none && chmod 400 "$work/munge/munge.key"
socket=$work/munge/munge.socket
munged --force --key-file="$work/munge/munge.key" --socket="$socket" --pid-file="$work/munge/munged.pid" \
    --log-file="$work/munge/munged.log" --seed-file="$work/munge/munged.seed" >"$work/munge/start.log" 2>&1 \
    || { cat "$work/munge/start.log" >>"$work/munge/munged.log"; daemon_down munged "$work/munge/munged.log"; }
munge -n --socket="$socket" | unmunge --socket="$socket" >/dev/null 2>&1 || daemon_down "munged (credential round trip)" "$work/munge/munged.log"

# ---- slurm.conf: the settings known to work as root without cgroups ------------------------------------------
mkdir -p "$work/state" "$work/spool" "$work/submit"
cpus=$(nproc)
cat >"$work/slurm.conf" <<CONF
ClusterName=enginetest
SlurmctldHost=localhost
SlurmctldPort=$(free_port)
SlurmdPort=$(free_port)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$socket
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmctldLogFile=$work/slurmctld.log
SlurmdLogFile=$work/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus State=UNKNOWN
PartitionName=test Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF=$work/slurm.conf

slurmctld -D -i -f "$SLURM_CONF" >>"$work/slurmctld.log" 2>&1 &
pids+=($!)
slurmd -D -f "$SLURM_CONF" -N localhost >>"$work/slurmd.log" 2>&1 &
pids+=($!)
ready=0
for _ in $(seq 60); do
    kill -0 "${pids[0]}" 2>/dev/null || daemon_down slurmctld "$work/slurmctld.log"
    kill -0 "${pids[1]}" 2>/dev/null || daemon_down slurmd "$work/slurmd.log"
    state=$(sinfo -h -n localhost -o %T 2>/dev/null | head -n 1)
    [[ $state == idle* ]] && { ready=1; break; }
    sleep 0.5
done
[[ $ready == 1 ]] || { say "node state: '${state:-none}'"; daemon_down "the localhost node (slurmd never reported idle)" "$work/slurmd.log"; }
say "cluster up: slurmctld + slurmd on localhost, $cpus CPUs, $(sinfo -V)"

# ---- the job file: 40 images of the built-in model over four lines ---------------------------------------------
cat >"$work/jobs.jsonl" <<'JOBS'
{"model": "fmnist-unet", "seeds": "0-11", "steps": 2}
{"model": "fmnist-unet", "seed": 100, "count": 10, "class": 7, "steps": 2, "sampler": "ddim"}
{"model": "fmnist-unet", "seeds": "20-27", "class": 3, "steps": 1, "sampler": "euler"}
{"model": "fmnist-unet", "seeds": [50, "61-69"], "steps": 2, "cfg": 1.5}
JOBS
export ENGINE="$(command -v dotnet) $dll" ENGINE_DEVICE=cpu DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

# ---- submit the example as written, wait for the array and its status step ------------------------------------
cd "$work/submit" || fail "no submit folder"
array=$(sbatch --parsable --array=0-3 "$root/examples/slurm/generate.sbatch" "$work/jobs.jsonl" "$work/union") \
    || fail "sbatch refused the example array job"
array=${array%%;*}
say "submitted array job $array (4 tasks) from examples/slurm/generate.sbatch"
deadline=$((SECONDS + 300))
while [[ -n $(squeue -h -o %i 2>/dev/null) ]]; do
    (( SECONDS < deadline )) || { squeue; fail "jobs still queued after 300 s"; }
    sleep 2
done
say "array and status step finished after $SECONDS s"
for k in 0 1 2 3; do
    log=$work/submit/engine-batch-${array}_$k.log
    [[ -f $log ]] || fail "task $k wrote no log ($log)"
    summary=$(grep -E '^batch summary:' "$log" || true)
    [[ -n $summary ]] || { cat "$log"; fail "task $k did not finish its shard"; }
    say "  task $k: $(grep -E '^shard ' "$log" | head -n 1) -- ${summary#batch summary: }"
done

# ---- the union against one unsharded run ------------------------------------------------------------------------
$ENGINE batch "$work/jobs.jsonl" --out "$work/whole" >"$work/whole.log" 2>&1 || { cat "$work/whole.log"; fail "the unsharded run failed"; }
pngs=$(find "$work/union" -name '*.png' | wc -l)
[[ $pngs == 40 ]] || fail "the shards wrote $pngs PNGs, expected 40"
compared=0
for f in "$work/whole"/*; do
    name=$(basename "$f")
    [[ $name == shard-*-of-*.jsonl ]] && continue
    cmp -s "$f" "$work/union/$name" || fail "union check: $name differs from the unsharded run (or is missing)"
    compared=$((compared + 1))
done
extra=$(cd "$work/union" && ls | grep -v -E '^shard-[0-9]+-of-4\.jsonl$' | while read -r n; do [[ -e $work/whole/$n ]] || echo "$n"; done)
[[ -z $extra ]] || fail "union check: files only the shards wrote: $extra"
say "union check: $compared files (40 PNGs, 40 sidecars, batch-jobs.jsonl) byte-identical to the unsharded run; manifests: $(cd "$work/union" && ls shard-*.jsonl | tr '\n' ' ')"

# ---- the dependent status step's report ---------------------------------------------------------------------------
status=$work/submit/engine-batch-status-$array.log
[[ -f $status ]] || fail "the status step wrote no report ($status)"
sed 's/^/    /' "$status"
grep -q 'batch status: 40 of 40 images done, 0 failed, 0 missing; complete' "$status" || fail "batch status does not report 40 of 40 done"
say "PASSED: 4 shards on Slurm made the unsharded run's 40 images bit for bit; batch status reports 40 of 40"
