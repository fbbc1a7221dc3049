#!/usr/bin/env bash
# Tensor-core session on the GPU machine (issue 16), from the repository root, after
#   bash bench/gpu/prepare.sh FOLDER   (here, on the machine without a GPU)
# then on the device:  bash bench/gpu/tensor_cores.sh FOLDER
# Steps, each bounded (about 8 minutes in all): unpack the carried .NET runtime and apps; the
# tensor-core CUDA tests (PTX bodies of every instruction, GEMM, convolution, attention against the
# fp64 references); the engine's timings (Engine.Bench --tensor-cores: attention L4096 h8 b2 at
# d 64/80/160/40/128, GEMM 4096^3 and 1024^3 with cuBLAS Hgemm in-process, conv 3x3 320ch@64 b2
# stride 1/2 on the channels-last kernel and, as the engine routes F16 convolutions, on the NCHW kernel
# (3x3 stride 1/2 and 1x1), and the bf16 forms of attention d 64, the GEMM and the NCHW convolution,
# registers and local memory per kernel); the PyTorch fp16 / bf16 peers (cuDNN
# channels-last and NCHW) and the ratio table.
# Writes $OUT (default ./gpu-out): tc-tests.log, tc-engine.md, tc-bench.log, tensor-cores.md, torch-tc.json, steps.log.
# Also the half norms (their CUDA tests run with the tensor-core ones) against HBM bandwidth: Engine.Bench
# --half-norms, GroupNorm(32)+SiLU 128ch@512 b1 and LayerNorm 2x4096x320 in f16 / bf16 / f32 (issue 16's
# target: GroupNorm+SiLU f16 >= 60% of HBM), into tc-norms.md and tc-norms.log.
set -u
dir=$(cd "${1:?folder made by prepare.sh}" && pwd)
OUT=${OUT:-$PWD/gpu-out}
mkdir -p "$OUT"
here=$(cd "$(dirname "$0")" && pwd)
t0=$(date +%s)
stamp() { echo "[$(( $(date +%s) - t0 ))s] $*" | tee -a "$OUT/steps.log"; }
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv > "$OUT/gpu.txt" 2>&1
mkdir -p /tmp/dn /tmp/apps
[[ -x /tmp/dn/dotnet ]] || tar -xJf "$dir/dotnet.tar.xz" -C /tmp/dn
[[ -d /tmp/apps/Engine.Bench ]] || tar -xJf "$dir/apps.tar.xz" -C /tmp/apps
export DOTNET_ROOT=/tmp/dn PATH=/tmp/dn:$PATH DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
stamp "unpacked"
ENGINE_TEST_CUDA=1 ENGINE_TEST_ILGPU=0 timeout 150 dotnet /tmp/apps/Engine.TestHost/Engine.TestHost.dll --where '(TensorCore|HalfNorm).*cuda' Engine.Core.Tests > "$OUT/tc-tests.log" 2>&1
stamp "tensor-core CUDA tests rc=$? ($(tail -1 "$OUT/tc-tests.log"))"
timeout 200 dotnet /tmp/apps/Engine.Bench/Engine.Bench.dll --tensor-cores --out "$OUT/tc-engine.md" > "$OUT/tc-bench.log" 2>&1
stamp "engine timings rc=$?"
timeout 60 dotnet /tmp/apps/Engine.Bench/Engine.Bench.dll --half-norms --out "$OUT/tc-norms.md" > "$OUT/tc-norms.log" 2>&1
stamp "half norm timings rc=$?"
PYTHONUNBUFFERED=1 timeout 120 python3 "$here/tensor_core_peers.py" --engine "$OUT/tc-engine.md" --json "$OUT/torch-tc.json" --out "$OUT/tensor-cores.md" > "$OUT/torch-tc.log" 2>&1
stamp "torch peers rc=$?"
grep -E "^(FAILED|SKIPPED)" "$OUT/tc-tests.log" | head -30
cat "$OUT/tc-engine.md" "$OUT/tensor-cores.md" 2>/dev/null || tail -20 "$OUT/tc-bench.log" "$OUT/torch-tc.log"
cat "$OUT/tc-norms.md" 2>/dev/null || tail -20 "$OUT/tc-norms.log"
