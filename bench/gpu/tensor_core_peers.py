#!/usr/bin/env python3
"""PyTorch fp16 and bf16 peers of the tensor-core kernels at the shapes of issue 16, and the ratio table.

    python3 tensor_core_peers.py --engine tc.md --json torch-tc.json --out tensor-cores.md

Times SDPA (flash backend where available), torch.matmul (cuBLAS) and conv2d (cuDNN: channels-last
against the channels-last kernel, NCHW against the engine's NCHW route) in fp16, and the rows named
"... bf16" (attention d 64, GEMM, NCHW convolution) in bf16, with CUDA events after warm-up, reads the engine's table written by
`Engine.Bench --tensor-cores`, and writes both with engine / PyTorch throughput ratios."""
import argparse
import json
import re
import statistics

import torch
import torch.nn.functional as F


def time_ms(fn, iters=20, warmup=5):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(iters):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def cases():
    dev, dt = "cuda", torch.float16
    for d, suffix in ((64, ""), (80, ""), (160, ""), (40, ""), (128, ""), (72, ""), (64, " bf16")):
        t = torch.bfloat16 if suffix else dt
        q, k, v = (torch.randn(2, 8, 4096, d, device=dev, dtype=t) for _ in range(3))
        def sdpa(q=q, k=k, v=v):
            try:
                with torch.nn.attention.sdpa_kernel(torch.nn.attention.SDPBackend.FLASH_ATTENTION):
                    return F.scaled_dot_product_attention(q, k, v)
            except RuntimeError:
                return F.scaled_dot_product_attention(q, k, v)
        yield "attention" + suffix, f"L4096 d{d} h8 b2", sdpa, 4.0 * 2 * 8 * 4096 * 4096 * d
    for n, suffix in ((4096, ""), (1024, ""), (4096, " bf16"), (1024, " bf16")):
        t = torch.bfloat16 if suffix else dt
        a, b = torch.randn(n, n, device=dev, dtype=t), torch.randn(n, n, device=dev, dtype=t)
        yield "gemm" + suffix, f"{n}", lambda a=a, b=b: torch.matmul(a, b), 2.0 * n ** 3
    for stride in (1, 2):
        o = (64 + 2 - 3) // stride + 1
        x = torch.randn(2, 320, 64, 64, device=dev, dtype=dt).to(memory_format=torch.channels_last)
        w = (torch.randn(320, 320, 3, 3, device=dev, dtype=dt) * 0.05).to(memory_format=torch.channels_last)
        bias = torch.randn(320, device=dev, dtype=dt)
        yield "conv3x3 NHWC", f"320ch@64 b2 s{stride}", lambda x=x, w=w, bias=bias, s=stride: F.conv2d(x, w, bias, stride=s, padding=1), 2.0 * 2 * 320 * 320 * 9 * o * o
    # The engine's route keeps NCHW activations: its peer is cuDNN on NCHW (contiguous) tensors.
    for suffix, kernel, stride in ((s, k, st) for s in ("", " bf16") for k, st in ((3, 1), (3, 2), (1, 1))):
        t = torch.bfloat16 if suffix else dt
        pad = kernel // 2
        o = (64 + 2 * pad - kernel) // stride + 1
        x = torch.randn(2, 320, 64, 64, device=dev, dtype=t)
        w = torch.randn(320, 320, kernel, kernel, device=dev, dtype=t) * 0.05
        bias = torch.randn(320, device=dev, dtype=t)
        yield (f"conv{kernel}x{kernel} NCHW{suffix}", f"320ch@64 b2 s{stride}",
               lambda x=x, w=w, bias=bias, s=stride, p=pad: F.conv2d(x, w, bias, stride=s, padding=p), 2.0 * 2 * 320 * 320 * kernel * kernel * o * o)


def engine_rows(path):
    rows = {}
    try:
        for line in open(path):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) >= 4 and re.match(r"^[\d.]+$", cells[3] or ""):
                rows[(cells[0], cells[1])] = float(cells[3])
    except OSError:
        pass
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", help="the engine's table (Engine.Bench --tensor-cores --out)")
    parser.add_argument("--json")
    parser.add_argument("--out")
    args = parser.parse_args()
    torch.backends.cudnn.benchmark = True
    engine = engine_rows(args.engine) if args.engine else {}
    lines = [f"torch {torch.__version__}, {torch.cuda.get_device_name(0)}, fp16 (rows named bf16: bf16)", "",
             "| op | shape | torch ms | torch TFLOP/s | engine TFLOP/s | engine / torch |", "|---|---|---:|---:|---:|---:|"]
    rows = []
    with torch.no_grad():
        for op, shape, fn, flop in cases():
            ms = time_ms(fn)
            tflops = flop / (ms * 1e-3) / 1e12
            mine = engine.get((op, shape))
            ratio = f"{mine / tflops:.3f}" if mine else "untimed"
            lines.append(f"| {op} | {shape} | {ms:.4f} | {tflops:.1f} | {mine if mine else '-'} | {ratio} |")
            print(lines[-1], flush=True)
            rows.append({"op": op, "shape": shape, "ms": ms, "tflops": tflops, "engine_tflops": mine})
            torch.cuda.empty_cache()
    if args.json:
        json.dump({"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "rows": rows}, open(args.json, "w"), indent=1)
    if args.out:
        open(args.out, "w").write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
