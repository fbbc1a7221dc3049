using BenchmarkDotNet.Attributes;
using Engine.Bench.Infrastructure;
using Engine.Core;
using Engine.Core.Cpu;

namespace Engine.Bench.Cpu;

/// <summary>GroupNorm + SiLU, 320 channels at 64x64, 32 groups; throughput counts bytes read + written.</summary>
public class CpuGroupNormBenchmarks : DeviceBenchmark
{
    private const int Channels = 320, Size = 64, Groups = 32;

    private Tensor _x = null!, _gamma = null!, _beta = null!, _y = null!;

    protected override Device CreateDevice() => new CpuDevice();

    protected override void Setup()
    {
        _x = Random(2f, 1, Channels, Size, Size);
        _gamma = Random(1f, Channels);
        _beta = Random(1f, Channels);
        _y = Output(1, Channels, Size, Size);
    }

    /// <summary>The input once and the output once (the statistics pass re-reads from cache).</summary>
    public override (double, string) WorkPerInvocation() => (2.0 * sizeof(float) * Channels * Size * Size, "B");

    [Benchmark]
    public void GroupNormSiLU() => Device.GroupNorm(_x, _gamma, _beta, _y, Groups, 1e-5f, silu: true);
}
