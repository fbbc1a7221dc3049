using BenchmarkDotNet.Attributes;
using Engine.Core;

namespace Engine.Bench.Gpu;

/// <summary>
/// Self-attention, 8 heads, on CUDA; throughput counts 4 B h L^2 d flops. Head widths 40 and 64 run
/// the register-tiled kernel, 80 (SD 1.5's middle blocks) the one-dot-per-thread kernel.
/// </summary>
public class GpuAttentionBenchmarks : GpuBenchmark
{
    private const int Heads = 8;

    [Params(40, 64, 80)]
    public int HeadDim { get; set; } = 64;

    [Params(1024, 4096)]
    public int Length { get; set; } = 1024;

    [Params(1, 2)]
    public int Batch { get; set; } = 1;

    private Tensor _q = null!, _k = null!, _v = null!, _o = null!;

    protected override void Setup()
    {
        _q = Random(1f, Batch, Length, Heads * HeadDim);
        _k = Random(0.5f, Batch, Length, Heads * HeadDim);
        _v = Random(1f, Batch, Length, Heads * HeadDim);
        _o = Output(Batch, Length, Heads * HeadDim);
    }

    public override (double, string) WorkPerInvocation() => (4.0 * Batch * Heads * Length * Length * HeadDim, "FLOP");

    [Benchmark]
    public void Attention()
    {
        Device.Attention(_q, _k, _v, _o, Heads, 1f / MathF.Sqrt(HeadDim));
        Device.Synchronize();
    }
}
