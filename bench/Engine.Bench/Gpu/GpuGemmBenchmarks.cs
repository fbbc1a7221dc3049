using BenchmarkDotNet.Attributes;
using Engine.Core;

namespace Engine.Bench.Gpu;

/// <summary>Square fp32 GEMM on CUDA; throughput counts 2 M N K flops.</summary>
public class GpuGemmBenchmarks : GpuBenchmark
{
    [Params(1024, 2048, 4096)]
    public int Size { get; set; } = 1024;

    private Tensor _a = null!, _b = null!, _c = null!;

    protected override void Setup()
    {
        _a = Random(1f, Size, Size);
        _b = Random(1f, Size, Size);
        _c = Output(Size, Size);
    }

    public override (double, string) WorkPerInvocation() => (2.0 * Size * Size * Size, "FLOP");

    [Benchmark]
    public void MatMul()
    {
        Device.MatMul(_a, _b, _c);
        Device.Synchronize();
    }
}
