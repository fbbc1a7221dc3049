using BenchmarkDotNet.Attributes;
using Engine.Bench.Infrastructure;
using Engine.Bench.Models;
using Engine.Bench.Peers;
using Engine.Core;
using Engine.Models.Loading;
using Engine.Models.Networks;

namespace Engine.Bench.Cpu;

/// <summary>
/// One denoiser forward (a sampler step) of the shipped Fashion-MNIST models, class-conditional, at
/// batch 1 and 16, against the shared fmnist-*.onnx exports of the same weights (model folders found by
/// <see cref="ModelFolders"/>); the throughput column counts images per second.
/// </summary>
public class CpuModelBenchmarks : PeerBenchmark
{
    [Params("fmnist-unet", "fmnist-dit")]
    public string Model { get; set; } = "fmnist-unet";

    [Params(1, 16)]
    public int Batch { get; set; } = 1;

    private DiffusionModel _model = null!;
    private Tensor _sample = null!, _timestep = null!, _labels = null!;

    protected override string? SharedPeerFile => $"{Model}.onnx";

    protected override void SetupEngine()
    {
        _model = ModelLoader.LoadDenoiser(Device, ModelFolders.Find(Model));
        _sample = Random(1f, Batch, 1, 28, 28);
        _timestep = Upload(Timesteps().Select(t => (float)t).ToArray(), Batch);
        _labels = Upload(Labels().Select(l => (float)l).ToArray(), Batch);
    }

    protected override OrtPeer CreatePeer() => OrtPeer.FromFile(SharedFile(SharedPeerFile!), new Dictionary<string, (Array, long[])>
    {
        ["sample"] = PeerInput(RandomArray(1f, Batch, 1, 28, 28), Batch, 1, 28, 28),
        ["timestep"] = (Timesteps(), [Batch]),
        ["class_labels"] = (Labels(), [Batch]),
    });

    private long[] Timesteps() => Enumerable.Range(0, Batch).Select(i => 999L - 37 * i).ToArray();

    private long[] Labels() => Enumerable.Range(0, Batch).Select(i => (long)(i % 10)).ToArray();

    /// <summary>Images per invocation; no FLOP convention exists for whole models.</summary>
    public override (double, string) WorkPerInvocation() => (Batch, "images");

    [Benchmark]
    public void Forward()
    {
        if (Peer is { } peer) peer.Run();
        else _model.Forward(_sample, _timestep, _labels).Dispose();
    }

    protected override void Cleanup()
    {
        _model?.Dispose();
        base.Cleanup();
    }
}
