using BenchmarkDotNet.Attributes;
using Engine.Bench.Infrastructure;
using Engine.Bench.Peers;
using Engine.Core;
using Engine.Cpu;

namespace Engine.Bench.Cpu;

/// <summary>
/// Square single-precision GEMM on <see cref="CpuDevice"/> and ONNX Runtime; throughput counts 2 M N K
/// flops. The plain product's peer is the shared gemm{Size}.onnx (MatMul); the transposed-B one's is an
/// in-memory Gemm node with transB = 1.
/// </summary>
public class CpuGemmBenchmarks : PeerBenchmark
{
    [Params(512, 1024, 2048)]
    public int Size { get; set; } = 512;

    private Tensor _a = null!, _b = null!, _c = null!;
    private OrtPeer? _transposedPeer;

    protected override string? SharedPeerFile => $"gemm{Size}.onnx";

    protected override void SetupEngine()
    {
        _a = Random(1f, Size, Size);
        _b = Random(1f, Size, Size);
        _c = Output(Size, Size);
    }

    protected override OrtPeer CreatePeer()
    {
        var inputs = new Dictionary<string, (Array, long[])>
        {
            ["a"] = PeerInput(RandomArray(1f, Size, Size), Size, Size),
            ["b"] = PeerInput(RandomArray(1f, Size, Size), Size, Size),
        };
        var gemm = new OnnxGraph().Input("a", Size, Size).Input("b", Size, Size).Output("c", Size, Size)
            .Node("Gemm", ["a", "b"], ["c"], ("transB", 1L));
        _transposedPeer = OrtPeer.FromBytes(gemm.ToModel(), inputs);
        return OrtPeer.FromFile(SharedFile($"gemm{Size}.onnx"), inputs);
    }

    public override (double, string) WorkPerInvocation() => (2.0 * Size * Size * Size, "FLOP");

    [Benchmark]
    public void MatMul()
    {
        if (Peer is { } peer) peer.Run();
        else Device.MatMul(_a, _b, _c);
    }

    /// <summary>The Linear layout (weight [out, in], B transposed).</summary>
    [Benchmark]
    public void MatMulTransposedB()
    {
        if (_transposedPeer is { } peer) peer.Run();
        else Device.MatMul(_a, _b, _c, transposeB: true);
    }

    protected override void Cleanup()
    {
        _transposedPeer?.Dispose();
        _transposedPeer = null;
        base.Cleanup();
    }
}
