using Engine.Core;

namespace Engine.Generation.Pipelines;

/// <summary>
/// The text conditioning of one request on the device: the prompt embeddings [Count, L, D] and, when
/// classifier-free guidance is on, the negative prompt embeddings of the same shape (the empty prompt
/// where none is given; clip skip applies to the positive prompts only, as in diffusers).
/// </summary>
internal sealed class PromptEmbeddings : IDisposable
{
    private PromptEmbeddings(Tensor positive, Tensor? negative)
    {
        Positive = positive;
        Negative = negative;
    }

    /// <summary>Conditional embeddings, row i for image i.</summary>
    public Tensor Positive { get; }

    /// <summary>Unconditional embeddings, or null without guidance.</summary>
    public Tensor? Negative { get; }

    /// <summary>Encodes the prompts of <paramref name="request"/> for <paramref name="count"/> images.</summary>
    public static PromptEmbeddings Encode(PromptEncoder encoder, GenerationRequest request, int count, bool guided, Action<string>? warn)
    {
        var positive = encoder.Encode(PerImage(request.Prompts, count, ""), request.ClipSkip, warn);
        try
        {
            var negative = guided ? encoder.Encode(PerImage(request.NegativePrompts, count, ""), null, warn) : null;
            return new PromptEmbeddings(positive, negative);
        }
        catch
        {
            positive.Dispose();
            throw;
        }
    }

    /// <summary>One text per image: the list itself, its single entry repeated, or <paramref name="empty"/> when none.</summary>
    private static string[] PerImage(IReadOnlyList<string>? texts, int count, string empty) =>
        Enumerable.Range(0, count).Select(i => texts is null || texts.Count == 0 ? empty : texts.Count == 1 ? texts[0] : texts[i]).ToArray();

    public void Dispose()
    {
        Positive.Dispose();
        Negative?.Dispose();
    }
}
