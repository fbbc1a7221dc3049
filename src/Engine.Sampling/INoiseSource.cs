using Engine.Core;

namespace Engine.Sampling;

/// <summary>
/// The standard-normal draws a stochastic sampler makes inside its loop, written on the device. Every
/// sampler draws through this one interface (<see cref="Scheduler.Noise"/>, <c>Scheduler.DrawNoise</c>), and
/// makes exactly the draws diffusers makes, in diffusers' order, including a draw that the step then
/// multiplies by zero, so that sequential sources stay aligned with diffusers' generator.
/// </summary>
/// <remarks>
/// Implementations: <see cref="PhiloxNoise"/> (the engine's seeded, batch-invariant stream, keyed by the
/// draw index), <see cref="RecordedNoise"/> (draws recorded elsewhere, e.g. a file's <c>step_noise</c>,
/// consumed in order) and <c>Rng.TorchNoise</c> (PyTorch's CPU generator, in order).
/// </remarks>
public interface INoiseSource
{
    /// <summary>
    /// Writes the next draw into <paramref name="output"/> (the sample's shape). <paramref name="draw"/> is the
    /// sampler's key for the draw (the model call that makes it, for most samplers): counter-based generators
    /// key their stream by it, sequential sources ignore it and hand out their draws in call order.
    /// </summary>
    void Fill(Tensor output, int draw);
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
    public void Fill(Tensor output, int draw) => output.Device.RandomNormal(output, Seed, firstSampleIndex, draw + 1);
}
