using Engine.Core;
using Engine.Models.Networks;
using Engine.Models.Text;

namespace Engine.Generation.Pipelines;

/// <summary>
/// A pipeline's CLIP tokenizer and text encoder, turning prompts into the UNet's
/// <c>encoder_hidden_states</c> as diffusers' StableDiffusionPipeline does: ids padded to 77 with
/// truncation, the last hidden state (final layer norm applied), or with clip skip n the final layer
/// norm of <c>hidden_states[-(n + 1)]</c>.
/// </summary>
public sealed class PromptEncoder : IDisposable
{
    private readonly string _folder;

    internal PromptEncoder(ClipTokenizer tokenizer, ClipTextModel encoder, string encoderFolder)
    {
        Tokenizer = tokenizer;
        Encoder = encoder;
        _folder = encoderFolder;
    }

    /// <summary>The tokenizer.</summary>
    public ClipTokenizer Tokenizer { get; }

    /// <summary>The text encoder on the generator's device.</summary>
    public ClipTextModel Encoder { get; }

    /// <summary>Width of the embeddings.</summary>
    public int Width => Encoder.HiddenSize;

    /// <summary>Throws naming <c>--clip-skip</c> unless <paramref name="clipSkip"/> is null or within the encoder's layers.</summary>
    public void CheckClipSkip(int? clipSkip)
    {
        if (clipSkip is { } n && (n < 0 || n > Encoder.LayerCount))
            throw new ArgumentException($"clip skip {n} (--clip-skip) is outside 0-{Encoder.LayerCount}: the text encoder in {_folder} has {Encoder.LayerCount} layers.");
    }

    /// <summary>
    /// Encodes <paramref name="prompts"/> into a new tensor [N, 77, Width] owned by the caller (row i is
    /// prompt i); each distinct prompt runs through the encoder once. Prompts longer than the tokenizer's
    /// length are truncated and <paramref name="warn"/> gets the cut-off text, as diffusers logs it.
    /// </summary>
    public Tensor Encode(IReadOnlyList<string> prompts, int? clipSkip, Action<string>? warn)
    {
        CheckClipSkip(clipSkip);
        if (prompts.Count == 0) throw new ArgumentException("At least one prompt is needed.", nameof(prompts));
        var distinct = prompts.Distinct(StringComparer.Ordinal).ToList();
        int length = Tokenizer.MaxLength;
        var ids = new int[distinct.Count * length];
        for (int i = 0; i < distinct.Count; i++)
        {
            var encoding = Tokenizer.Encode(distinct[i]);
            if (encoding.IsTruncated)
                warn?.Invoke($"The following part of your input was truncated because CLIP can only handle sequences up to {length} tokens: {encoding.TruncatedText}");
            encoding.InputIds.CopyTo(ids, i * length);
        }
        var device = Encoder.Device!;
        using var output = Encoder.Forward(ids, distinct.Count);
        using var skipped = clipSkip is { } n ? Encoder.FinalLayerNorm(output.HiddenStates[^(n + 1)]) : null;
        var states = skipped ?? output.LastHiddenState;
        var result = device.Allocate(prompts.Count, length, Width);
        try
        {
            for (int i = 0; i < prompts.Count; i++) device.Copy(states.Slice(distinct.IndexOf(prompts[i]), 1), result.Slice(i, 1));
            return result;
        }
        catch
        {
            result.Dispose();
            throw;
        }
    }

    /// <summary>Frees the encoder's weights.</summary>
    public void Dispose() => Encoder.Dispose();
}
