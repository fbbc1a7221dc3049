using BenchmarkDotNet.Attributes;
using Engine.Bench.Infrastructure;
using Engine.Bench.Peers;
using Engine.Core;

namespace Engine.Bench.Cpu;

/// <summary>
/// GroupNorm + SiLU, 320 channels at 64x64, 32 groups, against the shared groupnorm_silu_c320_64.onnx;
/// throughput counts bytes read + written.
/// </summary>
public class CpuGroupNormBenchmarks : PeerBenchmark
{
    private const int Channels = 320, Size = 64, Groups = 32;

    private Tensor _x = null!, _gamma = null!, _beta = null!, _y = null!;

    protected override string? SharedPeerFile => "groupnorm_silu_c320_64.onnx";

    protected override void SetupEngine()
    {
        _x = Random(2f, 1, Channels, Size, Size);
        _gamma = Random(1f, Channels);
        _beta = Random(1f, Channels);
        _y = Output(1, Channels, Size, Size);
    }

    protected override OrtPeer CreatePeer() => OrtPeer.FromFile(SharedFile(SharedPeerFile!),
        new Dictionary<string, (Array, long[])> { ["x"] = PeerInput(RandomArray(2f, 1, Channels, Size, Size), 1, Channels, Size, Size) });

    /// <summary>The input once and the output once (the statistics pass re-reads from cache).</summary>
    public override (double, string) WorkPerInvocation() => (2.0 * sizeof(float) * Channels * Size * Size, "B");

    [Benchmark]
    public void GroupNormSiLU()
    {
        if (Peer is { } peer) peer.Run();
        else Device.GroupNorm(_x, _gamma, _beta, _y, Groups, 1e-5f, silu: true);
    }
}
