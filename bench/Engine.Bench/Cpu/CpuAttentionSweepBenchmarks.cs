using BenchmarkDotNet.Attributes;
using Engine.Bench.Infrastructure;
using Engine.Bench.Peers;
using Engine.Core;

namespace Engine.Bench.Cpu;

/// <summary>
/// Attention over the Stable Diffusion range, 8 heads, batch 1: self-attention at L 256 / 1024 / 4096
/// and cross-attention of 4096 queries over 77 text tokens, each at head dims 40 / 64 / 80, against an
/// in-memory ORT graph (<see cref="AttentionPeer"/>); throughput counts 4 h Lq Lk d flops. Long: runs only
/// with <c>--long</c> (or an explicit <c>--filter</c> naming it).
/// </summary>
[BenchmarkCategory(BenchCategories.Long)]
public class CpuAttentionSweepBenchmarks : PeerBenchmark
{
    private const int Heads = 8;

    /// <summary>"queries x keys".</summary>
    [Params("256x256", "1024x1024", "4096x4096", "4096x77")]
    public string Lengths { get; set; } = "256x256";

    [Params(40, 64, 80)]
    public int HeadDim { get; set; } = 40;

    private int Queries => int.Parse(Lengths.Split('x')[0]);
    private int Keys => int.Parse(Lengths.Split('x')[1]);

    private Tensor _q = null!, _k = null!, _v = null!, _o = null!;

    protected override void SetupEngine()
    {
        _q = Random(1f, 1, Queries, Heads * HeadDim);
        _k = Random(0.5f, 1, Keys, Heads * HeadDim);
        _v = Random(1f, 1, Keys, Heads * HeadDim);
        _o = Output(1, Queries, Heads * HeadDim);
    }

    protected override OrtPeer CreatePeer()
    {
        var inputs = new Dictionary<string, (Array, long[])>
        {
            ["q"] = PeerInput(RandomArray(1f, 1, Heads, Queries, HeadDim), 1, Heads, Queries, HeadDim),
            ["k"] = PeerInput(RandomArray(0.5f, 1, Heads, Keys, HeadDim), 1, Heads, Keys, HeadDim),
            ["v"] = PeerInput(RandomArray(1f, 1, Heads, Keys, HeadDim), 1, Heads, Keys, HeadDim),
        };
        return OrtPeer.FromBytes(AttentionPeer.Model(Heads, Queries, Keys, HeadDim), inputs);
    }

    public override (double, string) WorkPerInvocation() => (4.0 * Heads * Queries * Keys * HeadDim, "FLOP");

    [Benchmark]
    public void Attention()
    {
        if (Peer is { } peer) peer.Run();
        else Device.Attention(_q, _k, _v, _o, Heads, 1f / MathF.Sqrt(HeadDim));
    }
}
