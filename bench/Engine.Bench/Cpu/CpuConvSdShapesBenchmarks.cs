using BenchmarkDotNet.Attributes;
using Engine.Bench.Infrastructure;
using Engine.Bench.Peers;
using Engine.Core;
using Engine.Cpu;

namespace Engine.Bench.Cpu;

/// <summary>
/// 3x3 stride-1 padded convolutions with bias at the full-size SD 1.5 shapes the per-op profile ranks first (UNet at
/// batch 2: 320 channels at 64x64 down to 1280 at 8x8; the VAE decoder at batch 1: 512 channels at 64x64 and 128x128,
/// 256 at 256x256), against an in-memory ONNX Conv node with the same weights. The engine runs each shape with the
/// algorithm <see cref="CpuDevice"/> picks (auto) and with the GEMM path, the direct kernel and Winograd forced, so a change of
/// the choice can be read off one run. Throughput counts 2 N Cin Cout 9 H W flops.
/// </summary>
public class CpuConvSdShapesBenchmarks : PeerBenchmark
{
    /// <summary>"channels x size x batch" (square images, Cin = Cout).</summary>
    [Params("320x64x2", "640x32x2", "1280x16x2", "1280x8x2", "512x64x1", "512x128x1", "256x256x1")]
    public string Shape { get; set; } = "1280x16x2";

    /// <summary>The engine's convolution algorithm: auto (its own choice), gemm, direct or winograd (ignored by the ORT cases).</summary>
    [Params("auto", "gemm", "direct", "winograd")]
    public string Algorithm { get; set; } = "auto";

    private int Channels => int.Parse(Shape.Split('x')[0]);
    private int Size => int.Parse(Shape.Split('x')[1]);
    private int Batch => int.Parse(Shape.Split('x')[2]);

    private Tensor _x = null!, _w = null!, _bias = null!, _y = null!;

    protected override void SetupEngine()
    {
        ((CpuDevice)Device).ConvAlgorithm = Algorithm switch
        {
            "gemm" => ConvAlgorithm.Gemm,
            "direct" => DirectConv.Supports512 ? ConvAlgorithm.Direct512 : ConvAlgorithm.Direct256,
            "winograd" => ConvAlgorithm.Winograd,
            _ => ConvAlgorithm.Auto,
        };
        _x = Random(1f, Batch, Channels, Size, Size);
        _w = Random(0.05f, Channels, Channels, 3, 3);
        _bias = Random(0.1f, Channels);
        _y = Output(Batch, Channels, Size, Size);
    }

    protected override OrtPeer CreatePeer()
    {
        var graph = new OnnxGraph().Input("x", Batch, Channels, Size, Size).Output("y", Batch, Channels, Size, Size)
            .Initializer("w", RandomArray(0.05f, Channels, Channels, 3, 3), Channels, Channels, 3, 3)
            .Initializer("bias", RandomArray(0.1f, Channels), Channels)
            .Node("Conv", ["x", "w", "bias"], ["y"], ("kernel_shape", new long[] { 3, 3 }), ("pads", new long[] { 1, 1, 1, 1 }));
        return OrtPeer.FromBytes(graph.ToModel(),
            new Dictionary<string, (Array, long[])> { ["x"] = PeerInput(RandomArray(1f, Batch, Channels, Size, Size), Batch, Channels, Size, Size) });
    }

    public override (double, string) WorkPerInvocation() => (2.0 * Batch * Channels * Channels * 9 * Size * Size, "FLOP");

    [Benchmark]
    public void Conv3x3()
    {
        if (Peer is { } peer) peer.Run();
        else Device.Conv2d(_x, _w, _bias, _y, stride: 1, padding: 1);
    }
}
