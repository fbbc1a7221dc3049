using BenchmarkDotNet.Attributes;
using Engine.Core;

namespace Engine.Bench.Gpu;

/// <summary>3x3 padded convolution with bias, 320 -> 320 channels at 64x64, batch 2, on CUDA; 2 N Cin Cout 9 H W flops.</summary>
public class GpuConvBenchmarks : GpuBenchmark
{
    private const int Batch = 2, Channels = 320, Size = 64;

    private Tensor _x = null!, _w = null!, _bias = null!, _y = null!;

    protected override void Setup()
    {
        _x = Random(1f, Batch, Channels, Size, Size);
        _w = Random(0.05f, Channels, Channels, 3, 3);
        _bias = Random(0.1f, Channels);
        _y = Output(Batch, Channels, Size, Size);
    }

    public override (double, string) WorkPerInvocation() => (2.0 * Batch * Channels * Channels * 9 * Size * Size, "FLOP");

    [Benchmark]
    public void Conv3x3()
    {
        Device.Conv2d(_x, _w, _bias, _y, stride: 1, padding: 1);
        Device.Synchronize();
    }
}
