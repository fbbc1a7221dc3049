using Engine.Core;
using Engine.Models.Networks;
using Engine.Models.Text;

namespace Engine.Generation.Pipelines;

/// <summary>
/// A pipeline's CLIP tokenizers and text encoders, turning prompts into the UNet's conditioning as
/// diffusers does. One encoder (StableDiffusionPipeline): ids padded to 77 with truncation, the last
/// hidden state (final layer norm applied), or with clip skip n the final layer norm of
/// <c>hidden_states[-(n + 1)]</c>. Two encoders (StableDiffusionXLPipeline): each encoder's
/// <c>hidden_states[-(n + 2)]</c> without the final layer norm, joined on the channel axis, and the
/// last encoder's projected pooled output (<c>text_embeds</c>).
/// </summary>
public sealed class PromptEncoder : IDisposable
{
    private readonly (ClipTokenizer Tokenizer, ClipTextModel Encoder, string Folder)[] _parts;
    private readonly bool _penultimate;

    internal PromptEncoder(IReadOnlyList<(ClipTokenizer, ClipTextModel, string)> parts, bool penultimate)
    {
        _parts = [.. parts];
        _penultimate = penultimate;
    }

    /// <summary>The first tokenizer.</summary>
    public ClipTokenizer Tokenizer => _parts[0].Tokenizer;

    /// <summary>The first text encoder.</summary>
    public ClipTextModel Encoder => _parts[0].Encoder;

    /// <summary>Width of the embeddings (the encoders' widths added).</summary>
    public int Width => _parts.Sum(p => p.Encoder.HiddenSize);

    /// <summary>Width of the pooled text embedding (two encoders), else null.</summary>
    public int? PooledWidth => _penultimate ? _parts[^1].Encoder.ProjectionDim : null;

    /// <summary>Throws naming <c>--clip-skip</c> unless <paramref name="clipSkip"/> is null or within every encoder's layers.</summary>
    public void CheckClipSkip(int? clipSkip)
    {
        if (clipSkip is not { } n) return;
        foreach (var (_, encoder, folder) in _parts)
        {
            // hidden_states has LayerCount + 1 entries; SDXL starts one layer earlier.
            int most = _penultimate ? encoder.LayerCount - 1 : encoder.LayerCount;
            if (n < 0 || n > most)
                throw new ArgumentException($"clip skip {n} (--clip-skip) is outside 0-{most}: the text encoder in {folder} has {encoder.LayerCount} layers.");
        }
    }

    /// <summary>Encodes <paramref name="prompts"/> into a new tensor [N, 77, Width] owned by the caller (see <see cref="EncodeWithPooled"/>).</summary>
    public Tensor Encode(IReadOnlyList<string> prompts, int? clipSkip, Action<string>? warn)
    {
        var (embeddings, pooled) = EncodeWithPooled(prompts, clipSkip, warn);
        pooled?.Dispose();
        return embeddings;
    }

    /// <summary>
    /// Encodes <paramref name="prompts"/>: the embeddings [N, 77, Width] (row i is prompt i) and, with two
    /// encoders, the pooled text embeddings [N, <see cref="PooledWidth"/>]; both owned by the caller. Each
    /// distinct prompt runs through each encoder once. Prompts longer than the tokenizer's length are
    /// truncated and <paramref name="warn"/> gets the cut-off text, as diffusers logs it.
    /// </summary>
    public (Tensor Embeddings, Tensor? Pooled) EncodeWithPooled(IReadOnlyList<string> prompts, int? clipSkip, Action<string>? warn)
    {
        CheckClipSkip(clipSkip);
        if (prompts.Count == 0) throw new ArgumentException("At least one prompt is needed.", nameof(prompts));
        var distinct = prompts.Distinct(StringComparer.Ordinal).ToList();
        var rowOf = prompts.Select(p => distinct.IndexOf(p)).ToArray();
        var device = Encoder.Device!;
        var pieces = new List<Tensor>();
        Tensor? pooled = null;
        try
        {
            for (int e = 0; e < _parts.Length; e++)
            {
                var (tokenizer, encoder, _) = _parts[e];
                int length = tokenizer.MaxLength;
                var ids = new int[distinct.Count * length];
                for (int i = 0; i < distinct.Count; i++)
                {
                    var encoding = tokenizer.Encode(distinct[i]);
                    if (encoding.IsTruncated && e == 0)
                        warn?.Invoke($"The following part of your input was truncated because CLIP can only handle sequences up to {length} tokens: {encoding.TruncatedText}");
                    encoding.InputIds.CopyTo(ids, i * length);
                }
                using var output = encoder.Forward(ids, distinct.Count);
                using var normed = !_penultimate && clipSkip is { } n ? encoder.FinalLayerNorm(output.HiddenStates[^(n + 1)]) : null;
                var states = _penultimate ? output.HiddenStates[^((clipSkip ?? 0) + 2)] : normed ?? output.LastHiddenState;
                pieces.Add(Expand(device, states, rowOf));
                if (_penultimate && e == _parts.Length - 1)
                    pooled = Expand(device, output.TextEmbeds ?? throw new InvalidOperationException($"{_parts[e].Folder}: the last SDXL text encoder has no projection."), rowOf);
            }
            if (pieces.Count == 1) return (pieces[0], pooled);
            int l = pieces[0].Dim(1), rows = prompts.Count * l;
            var joined = device.Allocate(prompts.Count, l, Width);
            device.ConcatChannels(pieces[0].Reshape(rows, pieces[0].Dim(2)), pieces[1].Reshape(rows, pieces[1].Dim(2)), joined.Reshape(rows, Width));
            foreach (var p in pieces) p.Dispose();
            return (joined, pooled);
        }
        catch
        {
            foreach (var p in pieces) p.Dispose();
            pooled?.Dispose();
            throw;
        }
    }

    /// <summary>Row i of a new tensor is row <paramref name="rowOf"/>[i] of <paramref name="states"/>.</summary>
    private static Tensor Expand(Device device, Tensor states, int[] rowOf)
    {
        var shape = states.ShapeArray();
        shape[0] = rowOf.Length;
        var result = device.Allocate(shape);
        for (int i = 0; i < rowOf.Length; i++) device.Copy(states.Slice(rowOf[i], 1), result.Slice(i, 1));
        return result;
    }

    /// <summary>Frees the encoders' weights.</summary>
    public void Dispose()
    {
        foreach (var part in _parts) part.Encoder.Dispose();
    }
}
