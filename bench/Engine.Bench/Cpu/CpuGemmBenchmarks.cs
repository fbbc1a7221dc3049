using BenchmarkDotNet.Attributes;
using Engine.Bench.Infrastructure;
using Engine.Core;
using Engine.Core.Cpu;

namespace Engine.Bench.Cpu;

/// <summary>Square single-precision GEMM on <see cref="CpuDevice"/>; throughput counts 2 M N K flops.</summary>
public class CpuGemmBenchmarks : DeviceBenchmark
{
    [Params(512, 1024, 2048)]
    public int Size { get; set; }

    private Tensor _a = null!, _b = null!, _c = null!;

    protected override Device CreateDevice() => new CpuDevice();

    protected override void Setup()
    {
        _a = Random(1f, Size, Size);
        _b = Random(1f, Size, Size);
        _c = Output(Size, Size);
    }

    public override (double, string) WorkPerInvocation() => (2.0 * Size * Size * Size, "FLOP");

    [Benchmark]
    public void MatMul() => Device.MatMul(_a, _b, _c);

    /// <summary>The Linear layout (weight [out, in], B transposed).</summary>
    [Benchmark]
    public void MatMulTransposedB() => Device.MatMul(_a, _b, _c, transposeB: true);
}
