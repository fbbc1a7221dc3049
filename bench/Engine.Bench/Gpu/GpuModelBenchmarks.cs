using BenchmarkDotNet.Attributes;
using Engine.Bench.Models;
using Engine.Core;
using Engine.Models.Loading;
using Engine.Models.Networks;

namespace Engine.Bench.Gpu;

/// <summary>One class-conditional forward of the shipped fmnist-unet at batch 16 on CUDA; images per second.</summary>
public class GpuModelBenchmarks : GpuBenchmark
{
    private const int Batch = 16;

    private DiffusionModel _model = null!;
    private Tensor _sample = null!, _timestep = null!, _labels = null!;

    protected override void Setup()
    {
        _model = ModelLoader.LoadDenoiser(Device, ModelFolders.Find("fmnist-unet"));
        _sample = Random(1f, Batch, 1, 28, 28);
        _timestep = Upload(Enumerable.Range(0, Batch).Select(i => 999f - 37 * i).ToArray(), Batch);
        _labels = Upload(Enumerable.Range(0, Batch).Select(i => (float)(i % 10)).ToArray(), Batch);
    }

    public override (double, string) WorkPerInvocation() => (Batch, "images");

    [Benchmark]
    public void UNetForward()
    {
        _model.Forward(_sample, _timestep, _labels).Dispose();
        Device.Synchronize();
    }

    protected override void Cleanup() => _model?.Dispose();
}
