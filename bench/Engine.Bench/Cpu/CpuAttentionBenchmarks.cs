using BenchmarkDotNet.Attributes;
using Engine.Bench.Infrastructure;
using Engine.Core;
using Engine.Core.Cpu;

namespace Engine.Bench.Cpu;

/// <summary>Self-attention, L 1024, 8 heads of 64, batch 1; throughput counts 4 h L^2 d flops (QK^T and PV).</summary>
public class CpuAttentionBenchmarks : DeviceBenchmark
{
    private const int Length = 1024, Heads = 8, HeadDim = 64;

    private Tensor _q = null!, _k = null!, _v = null!, _o = null!;

    protected override Device CreateDevice() => new CpuDevice();

    protected override void Setup()
    {
        _q = Random(1f, 1, Length, Heads * HeadDim);
        _k = Random(1f, 1, Length, Heads * HeadDim);
        _v = Random(1f, 1, Length, Heads * HeadDim);
        _o = Output(1, Length, Heads * HeadDim);
    }

    public override (double, string) WorkPerInvocation() => (4.0 * Heads * Length * Length * HeadDim, "FLOP");

    [Benchmark]
    public void Attention() => Device.Attention(_q, _k, _v, _o, Heads, 1f / MathF.Sqrt(HeadDim));
}
