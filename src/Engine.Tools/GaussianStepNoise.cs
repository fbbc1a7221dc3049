using Engine.Core;
using Engine.Core.Safetensors;
using Engine.Sampling;

namespace Engine.Tools;

/// <summary>
/// The recorded sampler draws of a Gaussian spec: tensor <c>step_noise</c> [K, ...sample shape], the k-th
/// draw for the k-th noise request of a stochastic sampler (K may be 0).
/// </summary>
public static class GaussianStepNoise
{
    /// <summary>Tensor name in the Gaussian spec.</summary>
    public const string TensorName = "step_noise";

    /// <summary>
    /// The draws of <paramref name="file"/> as a noise source consumed in order, checked before the run against
    /// the draws <paramref name="scheduler"/> makes; null when the spec has no <c>step_noise</c>. Throws naming
    /// <paramref name="path"/> when the draws are not whole samples of <paramref name="sampleShape"/> or too few.
    /// </summary>
    public static RecordedNoise? Read(SafetensorsFile file, string path, int[] sampleShape, Scheduler scheduler)
    {
        ArgumentNullException.ThrowIfNull(file);
        if (!file.Contains(TensorName)) return null;
        var shape = file.Info(TensorName).Shape;
        if (shape.Length != sampleShape.Length + 1 || !shape.AsSpan(1).SequenceEqual(sampleShape))
            throw new ArgumentException($"Gaussian spec '{path}': {TensorName} {Tensor.ShapeString(shape)} must be [K, {string.Join(", ", sampleShape)}] (K draws of the noise's shape).");
        var noise = new RecordedNoise(file.ReadFloats(TensorName), shape[0], (int)Tensor.ShapeLength(sampleShape));
        noise.Require(scheduler.NoiseDraws, $"Gaussian spec '{path}'", $"{scheduler.Config.ClassName} ({scheduler.InferenceSteps} steps)");
        return noise;
    }
}
