using BenchmarkDotNet.Attributes;
using Engine.Bench.Infrastructure;
using Engine.Core;
using Engine.Core.Cpu;

namespace Engine.Bench.Cpu;

/// <summary>3x3 stride-1 padded convolutions at UNet sizes, batch 1; throughput counts 2 Cin Cout 9 H W flops.</summary>
public class CpuConvBenchmarks : DeviceBenchmark
{
    /// <summary>"channels x size" (square images, Cin = Cout).</summary>
    [Params("64x64", "320x32")]
    public string Shape { get; set; } = "64x64";

    private int Channels => int.Parse(Shape.Split('x')[0]);
    private int Size => int.Parse(Shape.Split('x')[1]);

    private Tensor _x = null!, _w = null!, _bias = null!, _y = null!;

    protected override Device CreateDevice() => new CpuDevice();

    protected override void Setup()
    {
        _x = Random(1f, 1, Channels, Size, Size);
        _w = Random(0.05f, Channels, Channels, 3, 3);
        _bias = Random(0.1f, Channels);
        _y = Output(1, Channels, Size, Size);
    }

    public override (double, string) WorkPerInvocation() => (2.0 * Channels * Channels * 9 * Size * Size, "FLOP");

    [Benchmark]
    public void Conv3x3() => Device.Conv2d(_x, _w, _bias, _y, stride: 1, padding: 1);
}
