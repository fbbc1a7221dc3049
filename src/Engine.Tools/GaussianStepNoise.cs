using Engine.Core.Safetensors;
using Engine.Sampling;

namespace Engine.Tools;

/// <summary>
/// The recorded sampler draws of a Gaussian spec: tensor <c>step_noise</c> [K, ...sample shape], draw k
/// for the k-th noise request of a stochastic sampler. Kept apart from the bench so that a general
/// step-noise source can replace it.
/// </summary>
public static class GaussianStepNoise
{
    /// <summary>Tensor name in the Gaussian spec.</summary>
    public const string TensorName = "step_noise";

    /// <summary>
    /// The draws of <paramref name="file"/> as a noise source, or null when it has no <c>step_noise</c> or
    /// holds zero draws. Throws naming the file when the draws are not whole samples of <paramref name="sampleLength"/> values.
    /// </summary>
    public static INoiseSource? Read(SafetensorsFile file, string path, int sampleLength)
    {
        ArgumentNullException.ThrowIfNull(file);
        if (!file.Contains(TensorName)) return null;
        var shape = file.Info(TensorName).Shape;
        long count = shape.Length == 0 ? 0 : shape[0];
        if (count == 0) return null;
        var all = file.ReadFloats(TensorName);
        if (all.Length != count * sampleLength)
            throw new ArgumentException($"Gaussian spec '{path}': '{TensorName}' [{string.Join(", ", shape)}] is not K draws of the sample's {sampleLength} values.");
        return new RecordedNoise(Enumerable.Range(0, (int)count).Select(k => all.AsSpan(k * sampleLength, sampleLength).ToArray()));
    }
}
