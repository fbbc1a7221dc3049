using BenchmarkDotNet.Attributes;
using Engine.Core;

namespace Engine.Bench.Gpu;

/// <summary>
/// Square GEMM on CUDA with float32 accumulation; B (the weight operand) stored as F32 or F16 (the
/// kernel widens it while staging tiles). Throughput counts 2 M N K flops.
/// </summary>
public class GpuGemmBenchmarks : GpuBenchmark
{
    [Params(1024, 2048, 4096)]
    public int Size { get; set; } = 1024;

    [Params(DType.F32, DType.F16)]
    public DType Weights { get; set; } = DType.F32;

    private Tensor _a = null!, _b = null!, _c = null!;

    protected override void Setup()
    {
        _a = Random(1f, Size, Size);
        var b = Random(1f, Size, Size);
        _b = Keep(Device.Allocate(Weights, Size, Size));
        Device.Copy(b, _b);
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
