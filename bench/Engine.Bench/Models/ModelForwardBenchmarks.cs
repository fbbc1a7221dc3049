using BenchmarkDotNet.Attributes;
using Engine.Bench.Infrastructure;
using Engine.Core;
using Engine.Core.Cpu;
using Engine.Models.Loading;
using Engine.Models.Networks;

namespace Engine.Bench.Models;

/// <summary>
/// One denoiser forward pass of the shipped Fashion-MNIST models (the repository's <c>models/</c>,
/// else <c>../shared/models</c>) on the CPU device, at batch 1 and 16, with class labels; throughput
/// is images per second.
/// </summary>
public class ModelForwardBenchmarks : DeviceBenchmark
{
    private DiffusionModel _model = null!;
    private Tensor _sample = null!, _timestep = null!, _labels = null!;

    /// <summary>Model folder name under <c>models/</c>.</summary>
    [Params("fmnist-unet", "fmnist-dit")]
    public string Model { get; set; } = "fmnist-unet";

    /// <summary>Images per forward pass.</summary>
    [Params(1, 16)]
    public int Batch { get; set; } = 1;

    protected override Device CreateDevice() => new CpuDevice();

    public override (double, string) WorkPerInvocation() => (Batch, "images");

    protected override void Setup()
    {
        _model = ModelLoader.LoadDenoiser(Device, ModelFolders.Find(Model));
        int size = _model.SampleSize;
        _sample = Random(1f, Batch, _model.InChannels, size, size);
        _timestep = Upload(Enumerable.Repeat(500f, Batch).ToArray(), Batch);
        // Labels cycle through the real classes; the last row of the table is the null class.
        int classes = _model.ClassCount ?? throw new InvalidOperationException($"{Model} is expected to be class-conditional.");
        _labels = Upload(Enumerable.Range(0, Batch).Select(i => (float)(i % (classes - 1))).ToArray(), Batch);
    }

    protected override void Cleanup() => _model.Dispose();

    [Benchmark]
    public void Forward()
    {
        using var y = _model.Forward(_sample, _timestep, _labels);
    }
}
