using Engine.Core;

namespace Engine.Sampling;

/// <summary>Fresh Gaussian noise for stochastic sampler steps.</summary>
public interface INoiseSource
{
    /// <summary>Fills <paramref name="output"/> (the sample's shape) with standard normal noise for the given step.</summary>
    void Fill(Tensor output, int step);
}

/// <summary>
/// Counter-based device noise: Philox keyed by (seed, sample index, step), so a sample's noise is the
/// same whatever batch it is drawn in. <paramref name="firstSampleIndex"/> is the global index of row 0.
/// </summary>
public sealed class PhiloxNoise(ulong seed, int firstSampleIndex = 0) : INoiseSource
{
    /// <summary>The seed.</summary>
    public ulong Seed { get; } = seed;

    /// <inheritdoc />
    public void Fill(Tensor output, int step) => output.Device.RandomNormal(output, Seed, firstSampleIndex, step + 1);
}

/// <summary>
/// Noise recorded elsewhere (for example by diffusers), replayed per step: for teacher-forced tests
/// of stochastic schedulers. Uploads one step's noise per call.
/// </summary>
public sealed class RecordedNoise : INoiseSource
{
    private readonly float[][] _steps;

    /// <summary>One host array per noise draw, in the order the sampler draws them.</summary>
    public RecordedNoise(IEnumerable<float[]> steps) => _steps = steps.ToArray();

    /// <inheritdoc />
    public void Fill(Tensor output, int step)
    {
        if ((uint)step >= (uint)_steps.Length) throw new InvalidOperationException($"Recorded noise has {_steps.Length} steps; step {step} was requested.");
        var data = _steps[step];
        if (data.Length != output.Length) throw new ArgumentException($"Recorded noise for step {step} has {data.Length} values; the sample {output} needs {output.Length}.");
        output.Device.CopyFromHost(System.Runtime.InteropServices.MemoryMarshal.AsBytes(data.AsSpan()), output);
    }
}
