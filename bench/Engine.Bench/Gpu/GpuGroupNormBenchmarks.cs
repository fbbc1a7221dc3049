using BenchmarkDotNet.Attributes;
using Engine.Core;

namespace Engine.Bench.Gpu;

/// <summary>GroupNorm(32) + SiLU, 320 channels at 64x64, batch 2, on CUDA; bytes read + written, and their share of HBM bandwidth.</summary>
public class GpuGroupNormBenchmarks : GpuBenchmark
{
    private const int Batch = 2, Channels = 320, Size = 64, Groups = 32;

    private Tensor _x = null!, _gamma = null!, _beta = null!, _y = null!;

    protected override void Setup()
    {
        _x = Random(2f, Batch, Channels, Size, Size);
        _gamma = Random(1f, Channels);
        _beta = Random(1f, Channels);
        _y = Output(Batch, Channels, Size, Size);
    }

    /// <summary>The input once and the output once: the minimum traffic of a fused kernel.</summary>
    public override (double, string) WorkPerInvocation() => (2.0 * sizeof(float) * Batch * Channels * Size * Size, "B");

    [Benchmark]
    public void GroupNormSiLU()
    {
        Device.GroupNorm(_x, _gamma, _beta, _y, Groups, 1e-5f, silu: true);
        Device.Synchronize();
    }
}
