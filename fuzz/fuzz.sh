#!/usr/bin/env bash
# Fuzzes one reader of user files with AFL++ and SharpFuzz (see README.md "Fuzzing").
#   fuzz/fuzz.sh build                 publish the harness and instrument the engine assemblies
#   fuzz/fuzz.sh TARGET [SECONDS]      fuzz TARGET (safetensors, config, scheduler, jobline, sidecar)
# Work goes to $FUZZ_WORK (default /tmp/engine-fuzz; the harness in $FUZZ_BIN, default $FUZZ_WORK/bin); findings land in $FUZZ_WORK/out/TARGET/default/crashes and hangs.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="${FUZZ_WORK:-/tmp/engine-fuzz}"
bin="${FUZZ_BIN:-$work/bin}"
if [[ "${1:-}" == build ]]; then
    rm -rf "$bin"
    dotnet publish "$here/Engine.Fuzz/Engine.Fuzz.csproj" -c Release -o "$bin" --nologo
    # Instrument only the engine's own assemblies; the BCL and packages stay as they are.
    for dll in Engine.Core Engine.Models Engine.Sampling Engine.Pipeline engine; do
        sharpfuzz "$bin/$dll.dll"
    done
    exit 0
fi
target="${1:?usage: fuzz.sh build | TARGET [SECONDS]}"
seconds="${2:-1800}"
[[ -f "$bin/engine-fuzz.dll" ]] || { echo "run 'fuzz/fuzz.sh build' first" >&2; exit 2; }
mkdir -p "$work/out"
# The runtime is not AFL-instrumented itself (SharpFuzz instruments the IL), hence the skips;
# AFL_NO_AFFINITY because the fuzzers share the machine's cores with everything else.
export AFL_SKIP_BIN_CHECK=1 AFL_NO_AFFINITY=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_AUTORESUME=1 AFL_NO_UI=1
exec afl-fuzz -V "$seconds" -t 10000 -m none -i "$here/corpus/$target" -o "$work/out/$target" \
    -- dotnet "$bin/engine-fuzz.dll" "$target"
