using System.Globalization;

namespace Engine.Generation;

/// <summary>
/// The peak memory a request is expected to need, by part (see <see cref="MemoryBudget.Estimate"/>). The phases of a
/// pipeline run one after the other and the pool is emptied between them, so the activations counted are those of
/// the largest phase, plus <see cref="PoolSlack"/> of them for the pool's free buffers and the runtime.
/// </summary>
/// <param name="Weights">Bytes of every loaded component's weights: denoiser, VAE, text encoders.</param>
/// <param name="TextEncoding">Activations of the text encoders over all prompts of the request (0 without).</param>
/// <param name="Denoising">Activations of one batch of the denoiser, every guidance branch included.</param>
/// <param name="VaeDecode">Activations of decoding one batch (in tiles when the request tiles; 0 without a VAE).</param>
/// <param name="Held">Bytes held across the phases: the prompt embeddings and the host arrays of the results.</param>
/// <param name="Batch">The batch size the denoising and decode figures are for.</param>
public sealed record MemoryEstimate(long Weights, long TextEncoding, long Denoising, long VaeDecode, long Held, int Batch)
{
    /// <summary>
    /// Share of the largest phase's activations added for buffers the pool keeps free and the runtime's own use:
    /// the bound the full-size measurements are held to (docs/PERFORMANCE.md).
    /// </summary>
    public const double PoolSlack = 0.3;

    private const double GiB = 1024.0 * 1024 * 1024;

    /// <summary>Activations of the largest phase.</summary>
    public long LargestPhase => Math.Max(TextEncoding, Math.Max(Denoising, VaeDecode));

    /// <summary>The largest phase's activations with the pool slack.</summary>
    public long Activations => (long)(LargestPhase * (1 + PoolSlack));

    /// <summary>Expected peak: weights, the largest phase with slack, and what is held across phases.</summary>
    public long Peak => Weights + Activations + Held;

    /// <summary>The parts in words, for messages: "denoiser 0.21, VAE decode 0.75, text encoders 0.01 GiB (+30% pool slack)".</summary>
    public string Phases =>
        $"denoiser {Gib(Denoising)}, VAE decode {Gib(VaeDecode)}, text encoders {Gib(TextEncoding)} GiB (+{PoolSlack * 100:0}% pool slack)";

    /// <summary>Bytes as GiB with two decimals, invariant culture.</summary>
    public static string Gib(long bytes) => (bytes / GiB).ToString("0.##", CultureInfo.InvariantCulture);
}
