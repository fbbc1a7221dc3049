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
/// last encoder's projected pooled output (<c>text_embeds</c>). StableDiffusion3Pipeline without T5: the
/// same joined states zero-padded to <c>joint_attention_dim</c> channels and followed by as many zero
/// tokens (the absent T5 part), and every encoder's <c>text_embeds</c> joined as the pooled embedding.
/// </summary>
public sealed class PromptEncoder : IDisposable
{
    private readonly (ClipTokenizer Tokenizer, ClipTextModel Encoder, string Folder)[] _parts;
    private readonly bool _penultimate;
    private readonly int? _jointWidth;

    /// <summary>
    /// The encoders in order; <paramref name="penultimate"/> for SDXL and SD3 (hidden_states[-2], pooled
    /// text_embeds); <paramref name="jointWidth"/> for SD3 (pad to it, append zero T5 tokens, pool every encoder).
    /// </summary>
    internal PromptEncoder(IReadOnlyList<(ClipTokenizer, ClipTextModel, string)> parts, bool penultimate, int? jointWidth = null)
    {
        _parts = [.. parts];
        _penultimate = penultimate;
        _jointWidth = jointWidth;
    }

    /// <summary>The first tokenizer.</summary>
    public ClipTokenizer Tokenizer => _parts[0].Tokenizer;

    /// <summary>The first text encoder.</summary>
    public ClipTextModel Encoder => _parts[0].Encoder;

    /// <summary>Every text encoder in order (text_encoder, text_encoder_2, ...).</summary>
    public IReadOnlyList<ClipTextModel> Encoders => _parts.Select(p => p.Encoder).ToList();

    /// <summary>Width of the embeddings (the encoders' widths added, or SD3's joint width).</summary>
    public int Width => _jointWidth ?? ClipWidth;

    private int ClipWidth => _parts.Sum(p => p.Encoder.HiddenSize);

    /// <summary>Width of the pooled text embedding (SDXL: the last encoder's projection; SD3: all of them), else null.</summary>
    public int? PooledWidth => !_penultimate ? null : _jointWidth is null ? _parts[^1].Encoder.ProjectionDim : _parts.Sum(p => p.Encoder.ProjectionDim ?? 0);

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
                if (_penultimate && (e == _parts.Length - 1 || _jointWidth is not null))
                {
                    var embeds = Expand(device, output.TextEmbeds ?? throw new InvalidOperationException($"{_parts[e].Folder}: this text encoder has no projection."), rowOf);
                    pooled = pooled is null ? embeds : JoinColumns(device, pooled, embeds);
                }
            }
            // Joining disposes the pieces, so the list is cleared first (nothing to free twice on failure).
            var all = pieces.ToArray();
            pieces.Clear();
            var joined = all[0];
            for (int e = 1; e < all.Length; e++) joined = JoinColumns(device, joined, all[e]);
            if (_jointWidth is { } joint) joined = WithoutT5(device, joined, joint);
            return (joined, pooled);
        }
        catch
        {
            foreach (var p in pieces) p.Dispose();
            pooled?.Dispose();
            throw;
        }
    }

    /// <summary>A new tensor [..., Da + Db] of a [..., Da] then b [..., Db] (same leading shape); disposes both.</summary>
    private static Tensor JoinColumns(Device device, Tensor a, Tensor b)
    {
        var shape = a.ShapeArray();
        int da = shape[^1], db = b.Dim(b.Rank - 1), rows = (int)(a.Length / da);
        shape[^1] = da + db;
        var result = device.Allocate(shape);
        device.ConcatChannels(a.Reshape(rows, da), b.Reshape(rows, db), result.Reshape(rows, da + db));
        a.Dispose();
        b.Dispose();
        return result;
    }

    /// <summary>
    /// SD3 without T5: the CLIP states [N, L, W] zero-padded to [N, L, joint] channels, then L zero tokens
    /// (the absent T5 part) appended: a new [N, 2L, joint]; disposes <paramref name="clip"/>.
    /// </summary>
    private Tensor WithoutT5(Device device, Tensor clip, int joint)
    {
        int n = clip.Dim(0), l = clip.Dim(1);
        var padded = joint > ClipWidth ? JoinColumns(device, clip, device.Zeros(n, l, joint - ClipWidth)) : clip;
        using (padded)
        {
            using var zeros = device.Zeros(n, l * joint);
            var tokens = device.Allocate(n, 2 * l, joint);
            device.ConcatChannels(padded.Reshape(n, l * joint), zeros, tokens.Reshape(n, 2 * l * joint));
            return tokens;
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
