#!/usr/bin/env bash
# Tensor-core session on the GPU machine (issue 16), from the repository root, after
#   bash bench/gpu/prepare.sh FOLDER FIXTURES DIFFUSERS   (here, on the machine without a GPU)
# then on the device:  bash bench/gpu/tensor_cores.sh FOLDER
# The whole script keeps to BUDGET seconds (default 540): each step's timeout is its own bound or what is
# left before the budget, whichever is less, and a step with under 15 s left is skipped. Steps, in order
# of what matters most:
#   1. the CUDA tests (Engine.TestHost --where cuda, the tensor-core and half-norm tests among them, with the
#      fixtures prepare.sh packed; the ControlNet model tests, whose fixtures it cannot pack, left out) -> tests.log;
#   2. the kernels (Engine.Bench --tensor-cores: attention L4096 h8 b2 at d 64/80/160/40/128/72 (and d 64/160 on
#      the any-width kernel, d 40/72 without their launch bounds), GEMM 4096^3 and 1024^3 (both tiles, the large one also with two stages) with cuBLAS
#      Hgemm in-process, conv 3x3 320ch@64 b2 stride 1/2
#      channels-last and NCHW (tap-major, and the (ci, ky, kx) walk), 1x1 NCHW, the bf16 forms, registers and local
#      memory per kernel) -> tc-engine.md, tc-bench.log;
#   3. the half norms against HBM bandwidth (Engine.Bench --half-norms) -> tc-norms.md;
#   4. the PyTorch fp16 / bf16 peers and the ratio table -> tensor-cores.md, torch-tc.json;
#   5. one step of the full-size SD 1.5 UNet and of DiT-XL-2-256 at batch 2 (random weights from the
#      manifests): diffusers fp16 / fp32 (model_step_peers.py, diffusers from FOLDER/diffusers.tar.xz) and
#      the engine on CUDA with f16 weights, f16 and f32 activations (Engine.Bench --model-step), with the
#      engine's error against diffusers fp32, and one profiled pass per precision -> model-steps.md, step-*.json,
#      step-profile-*.md.
# Logs and tables go to /tmp/gpu-out (steps.log has each step's time and exit code); at the end, or when the
# script is stopped, they are packed into $OUT/session.tgz (default ./gpu-out), with the tables beside it:
# the device returns at most 8 files.
set -u
dir=$(cd "${1:?folder made by prepare.sh}" && pwd)
DEST=${OUT:-$PWD/gpu-out}
OUT=/tmp/gpu-out
BUDGET=${BUDGET:-540}
mkdir -p "$OUT" "$DEST"
pack() { tar -czf "$DEST/session.tgz" -C "$OUT" . 2>/dev/null; cp "$OUT"/{tensor-cores,tc-norms,model-steps}.md "$DEST/" 2>/dev/null; }
trap pack EXIT
here=$(cd "$(dirname "$0")" && pwd)
t0=$(date +%s)
stamp() { echo "[$(( $(date +%s) - t0 ))s] $*" | tee -a "$OUT/steps.log"; }
# cap N: N, or the seconds left before the budget (less a 10 s reserve) when fewer.
cap() { local left=$(( BUDGET - 10 - ($(date +%s) - t0) )); (( left < $1 )) && echo $left || echo "$1"; }
run() { # run NAME BOUND LOG COMMAND...: bounded, skipped when under 15 s are left
  local name=$1 bound; bound=$(cap "$2"); local log=$3; shift 3
  if (( bound < 15 )); then stamp "$name skipped (budget)"; return 1; fi
  timeout "$bound" "$@" > "$log" 2>&1; local rc=$?
  stamp "$name rc=$rc (bound ${bound}s)"; return $rc
}
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv > "$OUT/gpu.txt" 2>&1
mkdir -p /tmp/dn /tmp/apps /tmp/fx /tmp/dfs
[[ -x /tmp/dn/dotnet ]] || tar -xJf "$dir/dotnet.tar.xz" -C /tmp/dn &
[[ -d /tmp/apps/Engine.Bench ]] || tar -xJf "$dir/apps.tar.xz" -C /tmp/apps &
[[ -f $dir/fx.tar.xz ]] && tar -xJf "$dir/fx.tar.xz" -C /tmp/fx &
[[ -f $dir/diffusers.tar.xz ]] && tar -xJf "$dir/diffusers.tar.xz" -C /tmp/dfs &
wait
export DOTNET_ROOT=/tmp/dn PATH=/tmp/dn:$PATH DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 PYTHONUNBUFFERED=1
stamp "unpacked"
bench=/tmp/apps/Engine.Bench/Engine.Bench.dll
# ILGPU.Algorithms' cuBLAS binding opens libcublas.so.12; the machine's PyTorch carries CUDA 13's cuBLAS, whose
# v2 entry points (cublasCreate_v2, cublasHgemm, ...) are the same: offered under the old name for the in-process peer.
# (On 2026-12-04 the library was not under nvidia/cublas/lib: any libcublas.so.N below the nvidia packages is taken.)
so=$(python3 -c "import nvidia, os, glob; print((sorted(glob.glob(os.path.join(list(nvidia.__path__)[0], '**', 'libcublas.so.*'), recursive=True)) or [''])[0])" 2>/dev/null)
if [[ -n $so ]]; then
  mkdir -p /tmp/cublas && ln -sf "$so" /tmp/cublas/libcublas.so.12
  export LD_LIBRARY_PATH=/tmp/cublas:$(dirname "$so")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
fi
echo "cuBLAS for the in-process peer: ${so:-not found}" >> "$OUT/steps.log"

# The ControlNet model tests are left out: their fixtures (controlnet/, pipelines/) do not fit the 64 MiB transfer.
run "CUDA tests" 150 "$OUT/tests.log" env ENGINE_FIXTURES=/tmp/fx ENGINE_TEST_CUDA=1 ENGINE_TEST_ILGPU=0 \
  dotnet /tmp/apps/Engine.TestHost/Engine.TestHost.dll --where '^(?!.*ControlNetModelTests).*cuda'

stamp "CUDA tests: $(tail -1 "$OUT/tests.log")"
run "engine kernel timings" 200 "$OUT/tc-bench.log" dotnet $bench --tensor-cores --out "$OUT/tc-engine.md"
run "half norm timings" 60 "$OUT/tc-norms.log" dotnet $bench --half-norms --out "$OUT/tc-norms.md"
run "torch kernel peers" 120 "$OUT/torch-tc.log" \
  python3 "$here/tensor_core_peers.py" --engine "$OUT/tc-engine.md" --json "$OUT/torch-tc.json" --out "$OUT/tensor-cores.md"

export PYTHONPATH=/tmp/dfs${PYTHONPATH:+:$PYTHONPATH}
for m in sd15_unet dit_xl_2_256; do
  manifest=/tmp/fx/manifests/${m}_keys.json
  run "$m diffusers" 150 "$OUT/step-$m-torch.log" python3 "$here/model_step_peers.py" build --manifest "$manifest" \
    --folder /tmp/$m --inputs /tmp/$m-in.safetensors --ref /tmp/$m-ref.safetensors --json "$OUT/step-$m.json" --runs 20 \
    || { [[ -f /tmp/$m/config.json ]] || continue; }
  run "$m engine" 150 "$OUT/step-$m-engine.log" dotnet $bench --model-step /tmp/$m --inputs /tmp/$m-in.safetensors \
    --output /tmp/$m-engine.safetensors --device cuda --precision f16,f32 --weights f16 --runs 10 --out "$OUT/model-steps.md" --profile "$OUT/step-profile-$m.md" || continue
  run "$m compare" 40 "$OUT/step-$m-compare.log" python3 "$here/model_step_peers.py" compare \
    --ref /tmp/$m-ref.safetensors --engine /tmp/$m-engine.safetensors --json "$OUT/step-$m.json"
done

grep -E "^FAILED" "$OUT/tests.log" | cut -c1-400 | head -30
for f in tc-engine.md tensor-cores.md tc-norms.md model-steps.md; do [[ -f $OUT/$f ]] && cat "$OUT/$f"; done
for m in sd15_unet dit_xl_2_256; do [[ -f $OUT/step-$m.json ]] && tr -d '\n ' < "$OUT/step-$m.json" && echo; done
tail -4 "$OUT"/tc-bench.log "$OUT"/torch-tc.log "$OUT"/step-*-engine.log 2>/dev/null | cut -c1-300
