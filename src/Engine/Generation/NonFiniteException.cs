namespace Engine.Generation;

/// <summary>
/// Samples of a request became NaN or infinite. The message names the images, the step at which each
/// first went non-finite and the likely causes; images of the request that stayed finite and were
/// already handed out (see <see cref="GeneratedBatch"/>) are valid.
/// </summary>
public sealed class NonFiniteException : Exception
{
    /// <summary>Creates the exception for the images of <paramref name="firstSteps"/> (request image index, first non-finite step; step 0 is the initial noise).</summary>
    public NonFiniteException(string model, IReadOnlyList<(int Image, int Step)> firstSteps, int totalSteps)
        : base(Describe(model, firstSteps, totalSteps))
    {
        Images = firstSteps.Select(f => f.Image).ToArray();
        FirstStep = firstSteps.Min(f => f.Step);
    }

    /// <summary>Request image indices whose samples went non-finite.</summary>
    public IReadOnlyList<int> Images { get; }

    /// <summary>The earliest step (1-based; 0 = the initial noise) at which any of them went non-finite.</summary>
    public int FirstStep { get; }

    private static string Describe(string model, IReadOnlyList<(int Image, int Step)> firstSteps, int totalSteps)
    {
        int step = firstSteps.Min(f => f.Step);
        string images = firstSteps.Count == 1 ? $"image {firstSteps[0].Image}"
            : $"{firstSteps.Count} images ({string.Join(", ", firstSteps.Take(8).Select(f => f.Image))}{(firstSteps.Count > 8 ? ", ..." : "")})";
        string where = step == 0 ? "in the initial noise (check --init-noise)" : $"at step {step} of {totalSteps}";
        return $"the samples of {images} became NaN or infinite {where} with model '{model}'. Likely causes: weights or a config.json " +
               "value so large that the activations overflow float32, an extreme guidance scale or option, or half-precision weights " +
               "(--weights f16) that overflow; weights holding NaN or infinity are refused when the model loads.";
    }
}
