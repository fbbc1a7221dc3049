#!/usr/bin/env python3
"""Same-run speed ratios of the engine against ONNX Runtime at full SD 1.5 size on the CPU.

The method of ../shared/tools/peers/sd15 (README there), automated and alternated: each round runs, for every
engine configuration, `engine forward` on the real input and on a tiny one (the difference is the pass itself:
process start, JIT and weight load cancel), then ONNX Runtime's `ortrun` harness (its session is created once per
process; its first timed run after a warm-up is the peer's time). Rounds alternate all configurations so load
changes hit every one alike. Each process's peak RSS and CPU time come from wait4's rusage.

Usage (one `flock /work/heavy.lock` hold; a quiet machine; the ONNX exports and inputs made by the shared tool):
  python3 bench/peers/sd15_ratio.py --onnx-dir /tmp/prof --unet /work/sd15-random/unet --vae /work/sd15-random/vae \\
      --ortrun /tmp/prof/harness/bin/Release/net10.0/ortrun.dll \\
      --engine before="dotnet /work/base/src/Engine.Cli/bin/Release/net10.0/engine.dll" \\
      --engine after="dotnet src/Engine.Cli/bin/Release/net10.0/engine.dll" \\
      --config before:f16 --config after:f16 --config after:f32 --config after:f16:bf16 --rounds 3 [--cpus 0]

A configuration is ENGINE_LABEL:WEIGHTS[:COMPUTE]. --cpus pins every process (engine and peer) to those CPUs with
taskset (.NET sizes its thread pool to them; ONNX Runtime keeps 2 intra-op threads on them). Tiny inputs are
written next to the real ones when missing (UNet 8x8 latent, VAE 4x4 latent). Prints one markdown table per
model: the pass time (median and range over rounds), the ratio ONNX Runtime / engine (> 1: the engine is faster;
median and range of the per-round ratios), CPU time of the pass and peak RSS; JSON of every run with --json.
"""
import argparse, json, os, random, shlex, statistics, struct, subprocess, sys, time

MODELS = {
    # model: (onnx file, real input, tiny input, tiny tensors)
    "unet": ("onnx_unet/model.onnx", "in_b2.safetensors", "in_tiny_8.safetensors",
             {"sample": [2, 4, 8, 8], "timestep": [2], "encoder_hidden_states": [2, 77, 768]}),
    "vae": ("onnx_vae/model.onnx", "vae_in_64.safetensors", "vae_in_tiny_4.safetensors", {"latent": [1, 4, 4, 4]}),
}


def write_safetensors(path, tensors):
    """F32 tensors of the given shapes with small pseudo-random values (timesteps 500)."""
    rng, header, blobs, offset = random.Random(0), {}, [], 0
    for name, shape in tensors.items():
        count = 1
        for d in shape: count *= d
        values = [500.0] * count if name == "timestep" else [rng.gauss(0, 1) for _ in range(count)]
        blob = struct.pack(f"<{count}f", *values)
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob); offset += len(blob)
    text = json.dumps(header)
    text += " " * (-(len(text) + 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text))); f.write(text.encode()); f.writelines(blobs)
    os.replace(tmp, path)


def run(cmd, cpus):
    """Runs cmd; returns wall s, CPU s (user + sys), peak RSS GiB, stdout."""
    if cpus: cmd = ["taskset", "-c", cpus] + cmd
    start = time.time()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = p.stdout.read()
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.time() - start
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        sys.exit(f"failed ({code}): {' '.join(cmd)}\n{out[-2000:]}")
    return wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 2**20, out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--onnx-dir", required=True)
    ap.add_argument("--unet"); ap.add_argument("--vae")
    ap.add_argument("--ortrun", required=True, help="ortrun.dll of ../shared/tools/peers/sd15/harness")
    ap.add_argument("--engine", action="append", required=True, help='LABEL="COMMAND" (e.g. after="dotnet engine.dll")')
    ap.add_argument("--config", action="append", required=True, help="LABEL:WEIGHTS[:COMPUTE]")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--cpus", default="")
    ap.add_argument("--json")
    a = ap.parse_args()
    engines = dict(e.split("=", 1) for e in a.engine)
    configs = [tuple(c.split(":")) for c in a.config]
    for c in configs:
        if c[0] not in engines: sys.exit(f"--config {':'.join(c)}: no --engine {c[0]}=...")
    models = {m: d for m, d in (("unet", a.unet), ("vae", a.vae)) if d}
    for m in models:
        tiny = os.path.join(a.onnx_dir, MODELS[m][2])
        if not os.path.exists(tiny): write_safetensors(tiny, MODELS[m][3])
    records = []
    scratch = os.path.join(a.onnx_dir, "ratio_out.safetensors")
    for r in range(a.rounds):
        for m, folder in models.items():
            onnx, real, tiny = (os.path.join(a.onnx_dir, f) for f in MODELS[m][:3])
            for c in configs:
                label, weights = c[0], c[1]
                base = shlex.split(engines[label]) + ["forward", "--model", folder, "--output", scratch, "--device", "cpu", "--weights", weights]
                if len(c) > 2: base += ["--compute", c[2]]
                big = run(base + ["--inputs", real], a.cpus)
                small = run(base + ["--inputs", tiny], a.cpus)
                rec = {"round": r, "model": m, "config": ":".join(c), "pass_s": big[0] - small[0], "cpu_s": big[1] - small[1],
                       "rss_gib": big[2], "wall_s": big[0], "tiny_wall_s": small[0], "load": os.getloadavg()[0]}
                records.append(rec); print(json.dumps(rec), flush=True)
            wall, cpu, rss, out = run(["dotnet", a.ortrun, onnx, real, scratch, "1"], a.cpus)
            fields = dict(line.split()[:2] for line in out.splitlines() if line.split() and line.split()[0].endswith("_s"))
            rec = {"round": r, "model": m, "config": "onnxruntime", "pass_s": float(fields["run0_s"]), "cpu_s": None,
                   "rss_gib": rss, "wall_s": wall, "session_s": float(fields["session_create_s"]), "load": os.getloadavg()[0]}
            records.append(rec); print(json.dumps(rec), flush=True)
    if os.path.exists(scratch): os.remove(scratch)
    if a.json:
        with open(a.json, "w") as f: json.dump(records, f, indent=1)
    fmt = lambda xs: f"{statistics.median(xs):.2f} [{min(xs):.2f}-{max(xs):.2f}]"
    for m in models:
        ort = {x["round"]: x["pass_s"] for x in records if x["model"] == m and x["config"] == "onnxruntime"}
        print(f"\n**{m}** ({a.rounds} rounds; ONNX Runtime pass {fmt(list(ort.values()))} s)\n")
        print("| engine config | pass s | ORT / engine | pass CPU s | peak RSS GiB |\n|---|---:|---:|---:|---:|")
        for c in configs:
            rows = [x for x in records if x["model"] == m and x["config"] == ":".join(c)]
            print(f"| {':'.join(c)} | {fmt([x['pass_s'] for x in rows])} | {fmt([ort[x['round']] / x['pass_s'] for x in rows])} | "
                  f"{fmt([x['cpu_s'] for x in rows])} | {statistics.median(x['rss_gib'] for x in rows):.2f} |")
        ort_rss = [x["rss_gib"] for x in records if x["model"] == m and x["config"] == "onnxruntime"]
        print(f"| onnxruntime | {fmt(list(ort.values()))} | 1 | | {statistics.median(ort_rss):.2f} |")


if __name__ == "__main__":
    main()
