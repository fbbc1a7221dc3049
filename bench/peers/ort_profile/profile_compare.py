#!/usr/bin/env python3
"""Side-by-side op-family profile: `engine forward --profile-json` against ONNX Runtime's own profile (ortprofile).

usage: profile_compare.py ENGINE.json ORT_PROFILE.json [--ort-cpu S --ort-wall S] [--title TEXT] [--ort-json OUT.json]

ONNX Runtime's nodes of the last model_run are grouped into the engine's families:
  Conv (and FusedConv) by kernel size -> conv3x3 / conv1x1 / convKxK; MatMul, Gemm, FusedMatMul with a constant
  (unlisted) or rank-2 weight -> linear; a MatMul of two activations (rank >= 3 each) and Softmax -> attention self (Lq = Lk) or attention cross;
  any other node whose output has the shape of a Softmax input (the attention scores: their scaling, baddbmm's zeros
  and add) -> attention as well; InstanceNormalization (the exported GroupNorm; its affine Mul/Add stay pointwise) -> groupnorm;
  LayerNormalization -> layernorm; Resize, Upsample -> upsample; Reshape, Transpose, Concat, Slice, Split, Gather, Shape,
  Unsqueeze, Squeeze, Expand and the NCHWc reorders -> layout; Cast -> convert; every other node -> pointwise.
Prints a markdown table: family, engine wall s and share, ORT s and share, ratio engine/ORT (> 1: the engine is slower).
With --ort-cpu and --ort-wall (ortprofile's run_cpu_s and run_s) it adds CPU-time columns: the engine's own per-op CPU
time against ORT's node times scaled by its run's CPU/wall ratio, the better comparison on a loaded machine.
"""
import json, sys, collections

LAYOUT = {"Reshape", "Transpose", "Concat", "Slice", "Split", "Gather", "Shape", "Unsqueeze", "Squeeze", "Expand",
          "Identity", "Flatten", "ConstantOfShape", "Range", "Tile", "ReorderInput", "ReorderOutput"}


def shapes(arg):
    out = []
    for item in arg or []:
        for _, dims in item.items():
            out.append(dims)
    return out


def ort_family(op, args, scores=frozenset()):
    ins = shapes(args.get("input_type_shape"))
    outs = shapes(args.get("output_type_shape"))
    # Element-wise work on an attention score matrix (the scale, baddbmm's zero input and its add) belongs to attention.
    if op not in ("MatMul", "FusedMatMul", "Gemm", "Softmax") and outs and tuple(outs[0]) in scores:
        return "attention self" if outs[0][-1] == outs[0][-2] else "attention cross"
    if op in ("Conv", "FusedConv", "NhwcFusedConv"):
        k = ins[1][2:] if len(ins) > 1 and len(ins[1]) == 4 else []
        return f"conv{k[0]}x{k[1]}" if k else "conv"
    if op in ("MatMul", "Gemm", "FusedMatMul", "MatMulIntegerToFloat", "FusedGemm"):
        # Gemm, or a constant weight operand that is not listed (or is rank 2): a Linear.
        if op in ("Gemm", "FusedGemm") or len(ins) < 2 or len(ins[1]) <= 2:
            return "linear"
        a, b = ins[0], ins[1]
        # q k^T is [.., Lq, d] x [.., d, Lk] (or x [.., Lk, d] with the transpose fused) and p v is
        # [.., Lq, Lk] x [.., Lk, d]: self attention when Lq = Lk.
        return "attention self" if a[-2] == b[-1] or a[-2] == b[-2] or a[-1] == a[-2] else "attention cross"
    if op == "Softmax":
        s = ins[0]
        return "attention self" if s[-1] == s[-2] else "attention cross"
    if op == "InstanceNormalization":
        return "groupnorm"
    if op == "LayerNormalization":
        return "layernorm"
    if op in ("Resize", "Upsample"):
        return "upsample"
    if op in LAYOUT:
        return "layout"
    if op == "Cast":
        return "convert"
    return "pointwise"


def ort_profile(path):
    events = json.load(open(path))
    runs = [e for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"]
    last = max(runs, key=lambda e: e["ts"])
    t0, t1 = last["ts"], last["ts"] + last["dur"]
    nodes = [e for e in events if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time") and t0 <= e["ts"] <= t1]
    scores = frozenset(tuple(shapes(e["args"].get("input_type_shape"))[0]) for e in nodes if e["args"].get("op_name") == "Softmax")
    fam = collections.defaultdict(lambda: [0.0, 0])
    ops = collections.defaultdict(lambda: [0.0, 0])
    convs = collections.defaultdict(lambda: [0.0, 0])
    for e in nodes:
        args = e.get("args", {})
        op = args.get("op_name", "?")
        f = ort_family(op, args, scores)
        fam[f][0] += e["dur"] / 1e6; fam[f][1] += 1
        ops[(f, op)][0] += e["dur"] / 1e6; ops[(f, op)][1] += 1
        if f.startswith("conv"):
            ins = shapes(args.get("input_type_shape"))
            key = (f, "x".join(map(str, ins[0][2:])), ins[1][1] if len(ins) > 1 else 0, ins[1][0] if len(ins) > 1 else 0, ins[0][0])
            convs[key][0] += e["dur"] / 1e6; convs[key][1] += 1
    return {"run_wall_s": last["dur"] / 1e6, "families": {k: {"s": v[0], "nodes": v[1]} for k, v in fam.items()},
            "ops": [{"family": f, "op": o, "s": v[0], "nodes": v[1]} for (f, o), v in sorted(ops.items(), key=lambda kv: -kv[1][0])],
            # Same shape strings as the engine's ("HxW Cin->Cout nN"; ORT's NCHWc channel padding kept as it reports it).
            "conv_shapes": [{"family": k[0], "shape": f"{k[1]} {k[2]}->{k[3]} n{k[4]}", "s": v[0], "nodes": v[1]}
                            for k, v in sorted(convs.items(), key=lambda kv: -kv[1][0])]}


def main():
    argv = sys.argv[1:]
    title = None; ort_out = None
    if "--title" in argv:
        i = argv.index("--title"); title = argv[i + 1]; del argv[i:i + 2]
    cpu_scale = None
    if "--ort-cpu" in argv:
        i = argv.index("--ort-cpu"); j = argv.index("--ort-wall")
        cpu_scale = float(argv[i + 1]) / float(argv[j + 1])
        for k in sorted([i, j], reverse=True): del argv[k:k + 2]
    if "--ort-json" in argv:
        i = argv.index("--ort-json"); ort_out = argv[i + 1]; del argv[i:i + 2]
    engine = json.load(open(argv[0]))
    ort = ort_profile(argv[1])
    if ort_out:
        json.dump(ort, open(ort_out, "w"), indent=1)
    e_fam = {f["family"]: f for f in engine["families"]}
    e_total = engine["total_wall_s"]
    o_total = sum(v["s"] for v in ort["families"].values())
    names = sorted(set(e_fam) | set(ort["families"]), key=lambda n: -max(e_fam.get(n, {}).get("wall_s", 0), ort["families"].get(n, {}).get("s", 0)))
    if title:
        print(f"**{title}**\n")
    cpu_head = " engine CPU s | ORT CPU s (est.) | CPU engine / ORT |" if cpu_scale else ""
    print("| family | engine s | engine share | engine calls | ORT s | ORT share | ORT nodes | engine / ORT |" + cpu_head)
    print("|---|---:|---:|---:|---:|---:|---:|---:|" + ("---:|---:|---:|" if cpu_scale else ""))
    for n in names:
        e = e_fam.get(n); o = ort["families"].get(n)
        es = e["wall_s"] if e else 0.0
        os_ = o["s"] if o else 0.0
        ratio = f"{es / os_:.2f}" if e and o and os_ > 0 else "-"
        cpu = ""
        if cpu_scale:
            ec = e["cpu_s"] if e else 0.0
            oc = os_ * cpu_scale
            cpu = f" {ec:.3f} | {oc:.3f} | {ec / oc:.2f} |" if e and o and oc > 0 else f" {ec:.3f} | {oc:.3f} | - |"
        print(f"| {n} | {es:.3f} | {100 * es / e_total:.1f}% | {e['calls'] if e else 0} | {os_:.3f} | {100 * os_ / o_total:.1f}% | {o['nodes'] if o else 0} | {ratio} |" + cpu)
    e_cpu = engine["total_cpu_s"]
    cpu = f" {e_cpu:.3f} | {o_total * cpu_scale:.3f} | {e_cpu / (o_total * cpu_scale):.2f} |" if cpu_scale else ""
    print(f"| **total** | {e_total:.3f} | | | {o_total:.3f} | | | {e_total / o_total:.2f} |" + cpu)
    e_shapes = {(r["family"], r["shape"].replace(" wf16", "").replace(" wbf16", "")): r for r in engine["shapes"] if r["family"].startswith("conv")}
    print("\n| convolution | engine s | calls | ORT s | nodes | engine / ORT |")
    print("|---|---:|---:|---:|---:|---:|")
    for c in ort["conv_shapes"]:
        e = e_shapes.get((c["family"], c["shape"]))
        if e is None or c["s"] < 0.01 * o_total:
            continue
        print(f"| {c['family']} {c['shape']} | {e['wall_s']:.3f} | {e['calls']} | {c['s']:.3f} | {c['nodes']} | {e['wall_s'] / c['s']:.2f} |")
    print(f"\nengine CPU time of its ops {engine['total_cpu_s']:.2f} s; ONNX Runtime's run {ort['run_wall_s']:.2f} s wall "
          f"(node times sum {o_total:.2f} s); context {json.dumps(engine.get('context', {}))}")


if __name__ == "__main__":
    main()
