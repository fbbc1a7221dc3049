using BenchmarkDotNet.Attributes;
using Engine.Core;

namespace Engine.Bench.Infrastructure;

/// <summary>
/// Base of the op suites: creates the device under test once per case and uploads seeded random
/// tensors. A suite for another device overrides <see cref="CreateDevice"/>.
/// </summary>
public abstract class DeviceBenchmark : IThroughputBenchmark
{
    private readonly List<Tensor> _tensors = [];

    protected Device Device { get; private set; } = null!;

    protected abstract Device CreateDevice();

    public abstract (double Amount, string Unit) WorkPerInvocation();

    /// <summary>Allocates the case's tensors; called after the device exists.</summary>
    protected abstract void Setup();

    [GlobalSetup]
    public void GlobalSetup()
    {
        Device = CreateDevice();
        Setup();
    }

    /// <summary>Frees what <see cref="Setup"/> made beyond tensors (a loaded model, peer sessions); runs before the tensors are freed.</summary>
    protected virtual void Cleanup() { }

    [GlobalCleanup]
    public void GlobalCleanup()
    {
        Cleanup();
        foreach (var t in _tensors) t.Dispose();
        _tensors.Clear();
        Device.Dispose();
    }

    /// <summary>A tensor of uniform values in [-scale, scale) from a fixed seed.</summary>
    protected Tensor Random(float scale, params int[] shape) => Keep(Device.Upload(RandomArray(scale, shape), shape));

    /// <summary>Uniform values in [-scale, scale) from a seed derived from the shape (same data for a peer).</summary>
    protected static float[] RandomArray(float scale, params int[] shape)
    {
        var rng = new Random(shape.Aggregate(17, (h, d) => h * 31 + d));
        var data = new float[Tensor.ShapeLength(shape)];
        for (int i = 0; i < data.Length; i++) data[i] = (float)(rng.NextDouble() * 2 - 1) * scale;
        return data;
    }

    /// <summary>A tensor holding <paramref name="data"/>, released with the suite.</summary>
    protected Tensor Upload(float[] data, params int[] shape) => Keep(Device.Upload(data, shape));

    /// <summary>An uninitialised output tensor.</summary>
    protected Tensor Output(params int[] shape) => Keep(Device.Allocate(shape));

    /// <summary>Registers a tensor made by a suite to be disposed at cleanup.</summary>
    protected Tensor Keep(Tensor t) { _tensors.Add(t); return t; }
}
