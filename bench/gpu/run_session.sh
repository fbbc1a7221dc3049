#!/usr/bin/env bash
# One GPU session, run on the GPU machine from the repository root (made by bench/gpu/prepare.sh):
#   bash <folder>/run_session.sh
# Unpacks the carried .NET runtime, apps and fixtures, then runs the CUDA bench suites (one short
# in-process job), the PyTorch peers and the CUDA tests, each bounded by a timeout. Logs go to $OUT
# (default ./gpu-out): gpu.txt, steps.log, bench.log, bench-results.md, torch.log, torch.json, tests.log.
set -u
OUT=${OUT:-$PWD/gpu-out}
mkdir -p "$OUT"
here=$(cd "$(dirname "$0")" && pwd)
t0=$(date +%s)
stamp() { echo "[$(( $(date +%s) - t0 ))s] $*" | tee -a "$OUT/steps.log"; }
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv > "$OUT/gpu.txt" 2>&1
mkdir -p /tmp/dn /tmp/apps /tmp/fx
tar -xJf "$here/dotnet.tar.xz" -C /tmp/dn & tar -xJf "$here/apps.tar.xz" -C /tmp/apps & tar -xJf "$here/fx.tar.xz" -C /tmp/fx & wait
export DOTNET_ROOT=/tmp/dn PATH=/tmp/dn:$PATH DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
stamp "unpacked"
timeout 130 dotnet /tmp/apps/Engine.Bench/Engine.Bench.dll --filter '*Gpu*' --inProcess --job short --iterationTime 100 --artifacts /tmp/bda > "$OUT/bench.log" 2>&1
stamp "bench rc=$?"
cat /tmp/bda/results/*-github.md > "$OUT/bench-results.md" 2>/dev/null
PYTHONUNBUFFERED=1 timeout 80 python3 "$here/torch_peers.py" --json "$OUT/torch.json" > "$OUT/torch.log" 2>&1
stamp "torch rc=$?"
ENGINE_FIXTURES=/tmp/fx ENGINE_TEST_CUDA=1 ENGINE_TEST_ILGPU=0 timeout 190 dotnet /tmp/apps/Engine.TestHost/Engine.TestHost.dll --where cuda > "$OUT/tests.log" 2>&1
stamp "tests rc=$?"
grep -E "^(FAILED|SKIPPED)" "$OUT/tests.log" | head -60
tail -1 "$OUT/tests.log"
cat "$OUT/torch.log"
grep -E "^\|" "$OUT/bench-results.md"
