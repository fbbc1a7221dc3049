using BenchmarkDotNet.Attributes;
using Engine.Bench.Infrastructure;
using Engine.Bench.Peers;
using Engine.Core;

namespace Engine.Bench.Cpu;

/// <summary>
/// Self-attention, 8 heads, batch 1, at the shapes of the shared attention_h8_L{L}_d{d}.onnx peers;
/// throughput counts 4 h L^2 d flops (QK^T and PV).
/// </summary>
public class CpuAttentionBenchmarks : PeerBenchmark
{
    private const int Heads = 8;

    /// <summary>"length x head dim".</summary>
    [Params("1024x64", "1024x40", "4096x64")]
    public string Shape { get; set; } = "1024x64";

    private int Length => int.Parse(Shape.Split('x')[0]);
    private int HeadDim => int.Parse(Shape.Split('x')[1]);

    private Tensor _q = null!, _k = null!, _v = null!, _o = null!;

    protected override string? SharedPeerFile => $"attention_h8_L{Length}_d{HeadDim}.onnx";

    protected override void SetupEngine()
    {
        _q = Random(1f, 1, Length, Heads * HeadDim);
        _k = Random(1f, 1, Length, Heads * HeadDim);
        _v = Random(1f, 1, Length, Heads * HeadDim);
        _o = Output(1, Length, Heads * HeadDim);
    }

    protected override OrtPeer CreatePeer()
    {
        var inputs = new Dictionary<string, (Array, long[])>();
        foreach (var name in new[] { "q", "k", "v" })
            inputs[name] = PeerInput(RandomArray(1f, 1, Heads, Length, HeadDim), 1, Heads, Length, HeadDim);
        return OrtPeer.FromFile(SharedFile(SharedPeerFile!), inputs);
    }

    public override (double, string) WorkPerInvocation() => (4.0 * Heads * Length * Length * HeadDim, "FLOP");

    [Benchmark]
    public void Attention()
    {
        if (Peer is { } peer) peer.Run();
        else Device.Attention(_q, _k, _v, _o, Heads, 1f / MathF.Sqrt(HeadDim));
    }
}
