using BenchmarkDotNet.Attributes;
using Engine.Bench.Infrastructure;
using Engine.Bench.Peers;
using Engine.Core;

namespace Engine.Bench.Cpu;

/// <summary>
/// 1x1 convolutions with bias (UNet shortcuts and projections), batch 1, against an in-memory ONNX
/// Conv node with the same weights; throughput counts 2 Cin Cout H W flops.
/// </summary>
public class CpuConv1x1Benchmarks : PeerBenchmark
{
    /// <summary>"in channels x out channels x size" (square images).</summary>
    [Params("320x320x64", "640x640x32", "320x640x32")]
    public string Shape { get; set; } = "320x320x64";

    private int In => int.Parse(Shape.Split('x')[0]);
    private int Out => int.Parse(Shape.Split('x')[1]);
    private int Size => int.Parse(Shape.Split('x')[2]);

    private Tensor _x = null!, _w = null!, _bias = null!, _y = null!;

    protected override void SetupEngine()
    {
        _x = Random(1f, 1, In, Size, Size);
        _w = Random(0.05f, Out, In, 1, 1);
        _bias = Random(0.1f, Out);
        _y = Output(1, Out, Size, Size);
    }

    protected override OrtPeer CreatePeer()
    {
        var graph = new OnnxGraph().Input("x", 1, In, Size, Size).Output("y", 1, Out, Size, Size)
            .Initializer("w", RandomArray(0.05f, Out, In, 1, 1), Out, In, 1, 1)
            .Initializer("bias", RandomArray(0.1f, Out), Out)
            .Node("Conv", ["x", "w", "bias"], ["y"], ("kernel_shape", new long[] { 1, 1 }));
        return OrtPeer.FromBytes(graph.ToModel(),
            new Dictionary<string, (Array, long[])> { ["x"] = PeerInput(RandomArray(1f, 1, In, Size, Size), 1, In, Size, Size) });
    }

    public override (double, string) WorkPerInvocation() => (2.0 * In * Out * Size * Size, "FLOP");

    [Benchmark]
    public void Conv1x1()
    {
        if (Peer is { } peer) peer.Run();
        else Device.Conv2d(_x, _w, _bias, _y, stride: 1, padding: 0);
    }
}
