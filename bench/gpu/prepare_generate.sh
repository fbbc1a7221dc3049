#!/usr/bin/env bash
# Prepares an ignored folder for bench/gpu/generate_session.sh (end-to-end generation on CUDA):
#   bash bench/gpu/prepare_generate.sh FOLDER [SHARED]
# FOLDER receives the .NET runtime (xz), the published CLI (linux-x64, framework-dependent), the
# diffusers reference samples of the shipped UNet and DiT and their scheduler configs.
set -euo pipefail
root=$(git rev-parse --show-toplevel)
dest=$(mkdir -p "$1" && cd "$1" && pwd)
shared=${2:-$root/../shared}
dn=$(dirname "$(readlink -f "$(command -v dotnet)")")
rt=$(ls -d "$dn"/shared/Microsoft.NETCore.App/* | sort -V | tail -1)
tar -cf - -C "$dn" dotnet host "shared/Microsoft.NETCore.App/$(basename "$rt")" | xz -6 -T0 > "$dest/dotnet.tar.xz"
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
dotnet publish "$root/src/Engine.Cli" -c Release -r linux-x64 --self-contained false -o "$work/cli" --nologo -v quiet
find "$work/cli" \( -name '*.pdb' -o -name '*.xml' \) -delete
tar -cf - -C "$work/cli" . | xz -6 -T0 > "$dest/cli.tar.xz"
for m in fmnist-unet fmnist-dit; do
  mkdir -p "$dest/ref/$m"
  cp "$shared/models/$m/reference/reference.safetensors" "$dest/ref/$m/"
  python3 - "$shared/models/$m/reference/reference.json" "$dest/ref/$m" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for k, v in d['settings'].items():
    json.dump(v['scheduler_config'], open(f'{sys.argv[2]}/{k}.json', 'w'))
    open(f'{sys.argv[2]}/{k}.steps', 'w').write(str(v['num_inference_steps']))
PY
done
cp "$root/bench/gpu/generate_session.sh" "$dest/session.sh"
du -sh "$dest"
