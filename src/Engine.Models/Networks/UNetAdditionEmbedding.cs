using Engine.Core;
using Engine.Models.Binding;
using Engine.Models.Modules;

namespace Engine.Models.Networks;

/// <summary>
/// SDXL's added conditioning (<c>addition_embed_type: "text_time"</c>): the pooled text embedding and the
/// six micro-conditioning numbers (original size, crop top-left, target size), each number embedded
/// sinusoidally to <c>addition_time_embed_dim</c>, concatenated (text first) and mapped by
/// <c>add_embedding</c> (linear, SiLU, linear) onto the time embedding, to which it is added.
/// </summary>
public sealed class UNetAdditionEmbedding
{
    /// <summary>Number of micro-conditioning values per sample (SDXL's add_time_ids).</summary>
    public const int TimeIdCount = 6;

    private readonly Timesteps _timeProj;
    private readonly TimestepEmbedding _embedding;

    private UNetAdditionEmbedding(Timesteps timeProj, TimestepEmbedding embedding, int textDim)
    {
        _timeProj = timeProj;
        _embedding = embedding;
        TextEmbedDim = textDim;
    }

    /// <summary>Width of the pooled text embedding (<c>text_embeds</c>).</summary>
    public int TextEmbedDim { get; }

    /// <summary>Width of the input this embedding expects per sample: text_embeds then the six time ids.</summary>
    public int InputWidth => TextEmbedDim + TimeIdCount;

    /// <summary>The embedding the configuration asks for, or null when <c>addition_embed_type</c> is absent.</summary>
    public static UNetAdditionEmbedding? Create(ModelConfig config, ParameterScope root, int timeEmbedDim)
    {
        var type = config.String("addition_embed_type", null);
        if (type is null) return null;
        if (type != "text_time") throw config.Unsupported("addition_embed_type", $"\"{type}\"", "null, \"text_time\"");
        int timeDim = config.IntOrNull("addition_time_embed_dim", null) ?? throw config.Bad("addition_time_embed_dim", "null", "an integer with text_time");
        int input = config.IntOrNull("projection_class_embeddings_input_dim", null) ?? throw config.Bad("projection_class_embeddings_input_dim", "null", "an integer with text_time");
        int textDim = input - TimeIdCount * timeDim;
        if (textDim < 1) throw config.Bad("projection_class_embeddings_input_dim", input.ToString(), $"more than 6 x addition_time_embed_dim ({TimeIdCount * timeDim})");
        var proj = new Timesteps(timeDim, config.Bool("flip_sin_to_cos", true), (float)config.Number("freq_shift", 0));
        return new UNetAdditionEmbedding(proj, new TimestepEmbedding(root.Sub("add_embedding"), input, timeEmbedDim), textDim);
    }

    /// <summary>Adds the embedding of <paramref name="added"/> [B, text_embeds + 6 time ids] to emb [B, D] in place.</summary>
    public void AddTo(Tensor emb, Tensor added)
    {
        var device = emb.Device;
        int b = emb.Dim(0);
        if (added.Rank != 2 || added.Dim(0) != b || added.Dim(1) != InputWidth)
            throw new ArgumentException($"added conditioning {added} should be [{b}, {InputWidth}] (text_embeds {TextEmbedDim}, then {TimeIdCount} time_ids).");
        using var text = device.Allocate(b, TextEmbedDim);
        device.SliceChannels(added, 0, text);
        using var ids = device.Allocate(b, TimeIdCount);
        device.SliceChannels(added, TextEmbedDim, ids);
        using var timeEmbeds = _timeProj.Forward(ids.Reshape(b * TimeIdCount));
        using var joined = device.Allocate(b, TextEmbedDim + TimeIdCount * _timeProj.Channels);
        device.ConcatChannels(text, timeEmbeds.Reshape(b, TimeIdCount * _timeProj.Channels), joined);
        using var aug = _embedding.Forward(joined);
        device.Add(emb, aug, emb);
    }
}
