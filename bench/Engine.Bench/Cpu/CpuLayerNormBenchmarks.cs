using BenchmarkDotNet.Attributes;
using Engine.Bench.Infrastructure;
using Engine.Bench.Peers;
using Engine.Core;

namespace Engine.Bench.Cpu;

/// <summary>
/// LayerNorm over the last dimension of transformer tokens (with affine), against an in-memory ONNX
/// LayerNormalization node; throughput counts bytes read + written.
/// </summary>
public class CpuLayerNormBenchmarks : PeerBenchmark
{
    /// <summary>"tokens x width".</summary>
    [Params("4096x320", "1024x640")]
    public string Shape { get; set; } = "4096x320";

    private int Tokens => int.Parse(Shape.Split('x')[0]);
    private int Width => int.Parse(Shape.Split('x')[1]);

    private Tensor _x = null!, _gamma = null!, _beta = null!, _y = null!;

    protected override void SetupEngine()
    {
        _x = Random(2f, 1, Tokens, Width);
        _gamma = Random(1f, Width);
        _beta = Random(1f, Width);
        _y = Output(1, Tokens, Width);
    }

    protected override OrtPeer CreatePeer()
    {
        var graph = new OnnxGraph().Input("x", 1, Tokens, Width).Output("y", 1, Tokens, Width)
            .Initializer("gamma", RandomArray(1f, Width), Width)
            .Initializer("beta", RandomArray(1f, Width), Width)
            .Node("LayerNormalization", ["x", "gamma", "beta"], ["y"], ("axis", -1L), ("epsilon", 1e-5f));
        return OrtPeer.FromBytes(graph.ToModel(),
            new Dictionary<string, (Array, long[])> { ["x"] = PeerInput(RandomArray(2f, 1, Tokens, Width), 1, Tokens, Width) });
    }

    public override (double, string) WorkPerInvocation() => (2.0 * sizeof(float) * Tokens * Width, "B");

    [Benchmark]
    public void LayerNorm()
    {
        if (Peer is { } peer) peer.Run();
        else Device.LayerNorm(_x, _gamma, _beta, _y, 1e-5f);
    }
}
