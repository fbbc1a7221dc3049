#!/usr/bin/env bash
# Prepares a folder that a GPU machine without .NET can run (see docs/PERFORMANCE.md):
#   bash bench/gpu/prepare.sh FOLDER [FIXTURES] [DIFFUSERS]
# FOLDER (inside the checkout that travels, ignored by git) receives the .NET runtime (xz; the debugger,
# tracing and alternative-GC libraries and a few assemblies no GPU suite loads are left out to fit the
# transfer), the published TestHost and Engine.Bench (xz; ONNX Runtime's native libraries and Windows-only
# files dropped: the GPU suites do not use them), a subset of the golden fixtures (ops, manifests and the
# model fixtures that fit a 64 MiB transfer), the source of diffusers when DIFFUSERS names a checkout of it
# (the peer of bench/gpu/model_step_peers.py; the GPU machine has PyTorch but not diffusers) and the session
# scripts. FIXTURES defaults to ../shared/fixtures (or ../../shared/fixtures from a worktree).
set -euo pipefail
root=$(git rev-parse --show-toplevel)
dest=$(mkdir -p "$1" && cd "$1" && pwd)
fixtures=${2:-}
if [[ -z $fixtures ]]; then
  for c in "$root/../shared/fixtures" "$root/../../shared/fixtures"; do [[ -d $c ]] && fixtures=$c && break; done
fi
[[ -d ${fixtures:-} ]] || { echo "fixtures folder not found; pass it as the second argument" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
dn=$(dirname "$(readlink -f "$(command -v dotnet)")")
rt=$(ls -d "$dn"/shared/Microsoft.NETCore.App/* | sort -V | tail -1)
app="shared/Microsoft.NETCore.App/$(basename "$rt")"
tar -cf - -C "$dn" --exclude="$app/"{libmscordaccore.so,libmscordbi.so,libclrgc.so,libclrgcexp.so,libcoreclrtraceptprovider.so,createdump} \
  --exclude="$app/"{Microsoft.VisualBasic.Core.dll,System.Data.Common.dll,System.Private.DataContractSerialization.dll} \
  dotnet host "$app" | xz -9e -T0 > "$dest/dotnet.tar.xz"
dotnet publish "$root/tests/Engine.TestHost/Engine.TestHost.csproj" -c Release -o "$work/apps/Engine.TestHost" --nologo -v quiet
dotnet publish "$root/bench/Engine.Bench/Engine.Bench.csproj" -c Release -o "$work/apps/Engine.Bench" --nologo -v quiet
rm -rf "$work/apps/Engine.Bench/runtimes" "$work/apps/Engine.Bench/"{x86,arm64,amd64}
# The test host reaches SkiaSharp (PNG writing) through the CLI project, but the suites it runs never
# write images: its natives (11 MB per platform) stay behind to keep the transfer under 64 MiB.
rm -rf "$work/apps/Engine.TestHost/runtimes"
find "$work/apps" \( -name '*.pdb' -o -name '*.xml' \) -delete
# Only the custom modes run there (--tensor-cores, --half-norms, --model-step, and the host's NUnit runner):
# BenchmarkDotNet's compiler, tracing and disassembler and the VSTest / Microsoft.Testing adapters stay behind.
rm -f "$work/apps/Engine.Bench/"{Microsoft.CodeAnalysis*.dll,Microsoft.Diagnostics.*.dll,Iced.dll} \
  "$work/apps/Engine.TestHost/"{Microsoft.Testing.*.dll,Microsoft.TestPlatform.*.dll,Microsoft.VisualStudio.TestPlatform.*.dll,Microsoft.ApplicationInsights.dll,NUnit3.TestAdapter.dll}
tar -cf - -C "$work/apps" . | xz -9 -T0 > "$dest/apps.tar.xz"
(cd "$fixtures" && tar -cf - ops manifests models/dit_tiny models/unet2d_cond_tiny) | xz -9 -T0 > "$dest/fx.tar.xz"
diffusers=${3:-}
if [[ -n $diffusers ]]; then
  # A checkout or a bare mirror (its HEAD): the package folder src/diffusers, unpacked as diffusers/.
  if [[ -d $diffusers/src/diffusers ]]; then tar -cf - -C "$diffusers/src" diffusers | xz -9 -T0 > "$dest/diffusers.tar.xz"
  else git -C "$diffusers" archive --format=tar HEAD:src diffusers | xz -9 -T0 > "$dest/diffusers.tar.xz"; fi
fi
cp "$root/bench/peers/torch_peers.py" "$root/bench/gpu/run_session.sh" "$dest/"
du -sh "$dest"
# What travels to the device machine is the whole working tree (tracked files included) plus this folder.
total=$(( $(git -C "$root" ls-files -z | (cd "$root" && xargs -0 du -cb) | tail -1 | cut -f1) + $(du -sb "$dest" | cut -f1) ))
echo "working tree + $(basename "$dest"): $((total / 1048576)) MiB (the device transfer takes at most 64 MiB)"
(( total <= 64 * 1048576 )) || { echo "too large for one transfer: leave fixtures out" >&2; exit 1; }
