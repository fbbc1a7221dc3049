#!/usr/bin/env python3
"""Full-size denoiser step peers for issue 16 (SD 1.5 UNet, DiT-XL-2-256), run on the GPU machine.

  model_step_peers.py build --manifest KEYS.json --folder DIR --inputs IN.safetensors --ref REF.safetensors
                            --json OUT.json [--batch 2] [--runs 20]
      Builds the model from the manifest's config with diffusers (random init on the GPU, seed 0), rounds
      its weights to fp16 and writes them with the manifest's config as a diffusers folder DIR for the
      engine; writes the step's inputs (batch 2: one CFG step) to IN; times diffusers' forward in fp16 and
      in fp32 (TF32 off) on those fp16-rounded weights (median of RUNS CUDA-event timings after 3 warm-ups)
      and writes both outputs to REF. Without diffusers it still writes DIR (random weights by key shape
      from the manifest) and IN, so the engine's step is timed alone.
  model_step_peers.py compare --ref REF.safetensors --engine OUT.safetensors --json OUT.json
      Adds to OUT.json the engine's error per activation precision: max |engine - diffusers fp32| / max
      |diffusers fp32|, and the same for diffusers' own fp16 output (the scale an fp16 result can reach).
"""
import argparse
import json
import os
import statistics
import sys
import time


def build(args):
    import torch
    from safetensors.torch import save_file

    manifest = json.load(open(args.manifest))
    cls_name = manifest["class"]
    config = {k: v for k, v in manifest["config"].items() if not k.startswith("_")}
    report = {"model": manifest.get("name", cls_name), "class": cls_name, "batch": args.batch,
              "torch": torch.__version__, "gpu": torch.cuda.get_device_name(0)}
    torch.manual_seed(0)
    t0 = time.time()
    model = None
    try:
        import diffusers
        report["diffusers"] = diffusers.__version__
        with torch.device("cuda"):
            model = getattr(diffusers, cls_name).from_config(config)
        model.eval().half()
        state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    except Exception as e:  # the engine is still timed on random weights of the manifest's shapes
        report["diffusers_error"] = f"{type(e).__name__}: {e}"
        print("diffusers unavailable:", report["diffusers_error"], flush=True)
        state = {}
        for entry in manifest["keys"]:
            shape = entry["shape"]
            if len(shape) >= 2:
                fan_in = 1
                for d in shape[1:]:
                    fan_in *= d
                t = torch.randn(shape, device="cuda") / fan_in ** 0.5
            elif entry["key"].endswith(".weight"):
                t = torch.ones(shape, device="cuda")
            else:
                t = torch.zeros(shape, device="cuda")
            state[entry["key"]] = t.half()
    wanted = {e["key"] for e in manifest["keys"]}
    report["keys_missing_from_model"] = sorted(wanted - set(state))[:20]
    report["keys_not_in_manifest"] = sorted(set(state) - wanted)[:20]
    os.makedirs(args.folder, exist_ok=True)
    save_file({k: v.cpu() for k, v in state.items()}, os.path.join(args.folder, "diffusion_pytorch_model.safetensors"))
    json.dump({"_class_name": cls_name, **config}, open(os.path.join(args.folder, "config.json"), "w"), indent=1)
    report["build_s"] = round(time.time() - t0, 1)
    print(f"{cls_name}: {sum(v.numel() for v in state.values()):,} parameters written in {report['build_s']} s", flush=True)

    g = torch.Generator(device="cpu").manual_seed(1)
    b = args.batch
    if cls_name == "UNet2DConditionModel":
        size, channels = config["sample_size"], config["in_channels"]
        inputs = {"sample": torch.randn(b, channels, size, size, generator=g),
                  "timestep": torch.full((b,), 500.0),
                  "encoder_hidden_states": torch.randn(b, 77, config["cross_attention_dim"], generator=g)}
    else:
        size, channels = config["sample_size"], config["in_channels"]
        inputs = {"hidden_states": torch.randn(b, channels, size, size, generator=g),
                  "timestep": torch.full((b,), 500.0),
                  "class_labels": torch.tensor([207.0, 360.0][:b] + [1.0] * max(0, b - 2))}
    save_file({k: v.contiguous() for k, v in inputs.items()}, args.inputs)
    report["inputs"] = {k: list(v.shape) for k, v in inputs.items()}

    if model is not None:
        refs = {}
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        for precision, dtype in (("f16", torch.float16), ("f32", torch.float32)):
            model.to(dtype)
            call = {k: (v.to("cuda", dtype) if k != "class_labels" else v.to("cuda").long()) for k, v in inputs.items()}
            if "timestep" in call:
                call["timestep"] = inputs["timestep"].to("cuda")
            sample_key = "sample" if "sample" in call else "hidden_states"
            x = call.pop(sample_key)

            def step():
                return model(x, return_dict=False, **call)[0]

            with torch.inference_mode():
                for _ in range(3):
                    out = step()
                torch.cuda.synchronize()
                times = []
                for _ in range(args.runs):
                    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                    start.record()
                    step()
                    end.record()
                    end.synchronize()
                    times.append(start.elapsed_time(end))
            refs[f"diffusers_{precision}"] = out.float().cpu().contiguous()
            report[f"diffusers_{precision}_ms"] = {"median": round(statistics.median(times), 3),
                                                  "min": round(min(times), 3), "max": round(max(times), 3)}
            print(f"diffusers {precision}: median {statistics.median(times):.3f} ms "
                  f"({min(times):.3f}-{max(times):.3f}) over {args.runs}", flush=True)
        save_file(refs, args.ref)
    json.dump(report, open(args.json, "w"), indent=1)


def read_safetensors(path):
    import array
    import struct
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        out = {}
        for name, e in header.items():
            if name == "__metadata__":
                continue
            if e["dtype"] != "F32":
                raise ValueError(f"{path}: {name} is {e['dtype']}, expected F32")
            f.seek(8 + n + e["data_offsets"][0])
            a = array.array("f")
            a.frombytes(f.read(e["data_offsets"][1] - e["data_offsets"][0]))
            out[name] = (e["shape"], a)
        return out


def compare(args):
    report = json.load(open(args.json)) if os.path.exists(args.json) else {}
    if not os.path.exists(args.ref):
        report["compare"] = "no diffusers reference"
    else:
        ref = read_safetensors(args.ref)
        eng = read_safetensors(args.engine)
        shape, r = ref["diffusers_f32"]
        scale = max(abs(v) for v in r) or 1.0

        def err(values):
            # A DiT's engine output may hold the noise channels only (the first half of diffusers').
            n = min(len(values), len(r))
            return max(abs(a - b) for a, b in zip(values[:n], r[:n])) / scale

        errors = {"diffusers_f16": err(ref["diffusers_f16"][1])}
        for name, (_, values) in eng.items():
            bad = sum(1 for v in values if v != v or v in (float("inf"), float("-inf")))
            errors[f"engine_{name.removeprefix('output_')}"] = err(values) if bad == 0 else f"{bad} non-finite values"
        report["max_abs_err_over_max_ref"] = errors
        print(json.dumps(errors), flush=True)
    json.dump(report, open(args.json, "w"), indent=1)


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build")
    b.add_argument("--manifest", required=True)
    b.add_argument("--folder", required=True)
    b.add_argument("--inputs", required=True)
    b.add_argument("--ref", required=True)
    b.add_argument("--json", required=True)
    b.add_argument("--batch", type=int, default=2)
    b.add_argument("--runs", type=int, default=20)
    c = sub.add_parser("compare")
    c.add_argument("--ref", required=True)
    c.add_argument("--engine", required=True)
    c.add_argument("--json", required=True)
    args = p.parse_args()
    build(args) if args.cmd == "build" else compare(args)


if __name__ == "__main__":
    sys.exit(main())
