#!/usr/bin/env python3
"""PyTorch peers for the CUDA benchmark suites (bench/Engine.Bench/Gpu): the same shapes, timed with
CUDA events after warm-up, in fp32 (TF32 off, the engine's precision) and fp16.

    python3 bench/peers/torch_peers.py [--json results.json] [--iters 20]

Prints one table row per op, shape and precision: median milliseconds and GFLOP/s or GB/s, counted
as the C# suites count them (2MNK for GEMM, 2 N Cin Cout 9 H W for conv, 4 B h L^2 d for attention,
bytes read + written for GroupNorm+SiLU)."""
import argparse
import json
import statistics

import torch
import torch.nn.functional as F


def time_ms(fn, iters, warmup=5):
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


def cases(dtype):
    dev = "cuda"
    for n in (1024, 2048, 4096):
        a, b = torch.randn(n, n, device=dev, dtype=dtype), torch.randn(n, n, device=dev, dtype=dtype)
        yield "gemm", f"{n}", lambda a=a, b=b: torch.matmul(a, b), 2.0 * n ** 3, "FLOP"
    x = torch.randn(2, 320, 64, 64, device=dev, dtype=dtype)
    w = torch.randn(320, 320, 3, 3, device=dev, dtype=dtype) * 0.05
    bias = torch.randn(320, device=dev, dtype=dtype) * 0.1
    yield "conv3x3", "320ch@64 b2", lambda: F.conv2d(x, w, bias, padding=1), 2.0 * 2 * 320 * 320 * 9 * 64 * 64, "FLOP"
    gamma, beta = torch.randn(320, device=dev, dtype=dtype), torch.randn(320, device=dev, dtype=dtype)
    yield ("groupnorm_silu", "320@64 b2", lambda: F.silu(F.group_norm(x, 32, gamma, beta, 1e-5)),
           2.0 * x.element_size() * x.numel(), "B")
    for head in (40, 64, 80):
        for length in (1024, 4096):
            for batch in (1, 2):
                q, k, v = (torch.randn(batch, 8, length, head, device=dev, dtype=dtype) for _ in range(3))
                yield ("attention", f"L{length} d{head} h8 b{batch}", lambda q=q, k=k, v=v: F.scaled_dot_product_attention(q, k, v),
                       4.0 * batch * 8 * length * length * head, "FLOP")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="also write the rows to this file")
    parser.add_argument("--iters", type=int, default=20)
    args = parser.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = True
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name(0)}, TF32 off")
    rows = []
    print(f"{'op':<16}{'shape':<20}{'dtype':<9}{'median ms':>11}{'throughput':>18}")
    for dtype, label in ((torch.float32, "fp32"), (torch.float16, "fp16")):
        with torch.no_grad():
            for op, shape, fn, work, unit in cases(dtype):
                ms = time_ms(fn, args.iters)
                rate = work / (ms * 1e-3) / 1e9
                text = f"{rate:,.1f} GFLOP/s" if unit == "FLOP" else f"{rate:,.1f} GB/s"
                print(f"{op:<16}{shape:<20}{label:<9}{ms:>11.4f}{text:>18}", flush=True)
                rows.append({"op": op, "shape": shape, "dtype": label, "ms": ms, "rate": rate, "unit": unit})
        torch.cuda.empty_cache()
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
