using Engine.Core;
using Engine.Models.Binding;
using Engine.Models.Modules;

namespace Engine.Models.Networks;

/// <summary>
/// The class conditioning of diffusers UNets: <c>class_embed_type</c> None with
/// <c>num_class_embeds</c> (an embedding table <c>class_embedding.weight</c>), or <c>"timestep"</c>
/// (labels embedded like timesteps, then a <c>TimestepEmbedding</c>). Its output is added to the
/// time embedding.
/// </summary>
public sealed class UNetClassEmbedding
{
    private readonly LabelEmbedding? _table;
    private readonly TimestepEmbedding? _timestepMlp;
    private readonly Timesteps _timeProj;

    private UNetClassEmbedding(LabelEmbedding? table, TimestepEmbedding? mlp, Timesteps timeProj)
    {
        _table = table;
        _timestepMlp = mlp;
        _timeProj = timeProj;
    }

    /// <summary>Number of table rows, or null for timestep-style class embeddings.</summary>
    public int? Rows => _table?.Rows;

    /// <summary>Builds the embedding the configuration asks for, or returns null when there is none.</summary>
    public static UNetClassEmbedding? Create(ModelConfig config, ParameterScope root, Timesteps timeProj, int timestepInputDim, int timeEmbedDim)
    {
        var type = config.String("class_embed_type", null);
        int? count = config.IntOrNull("num_class_embeds", null);
        switch (type)
        {
            case null when count is int n:
                if (n < 1) throw config.Bad("num_class_embeds", n.ToString(), "a positive integer");
                return new UNetClassEmbedding(new LabelEmbedding(root, "class_embedding.weight", n, timeEmbedDim), null, timeProj);
            case null:
                return null;
            case "timestep":
                return new UNetClassEmbedding(null, new TimestepEmbedding(root.Sub("class_embedding"), timestepInputDim, timeEmbedDim), timeProj);
            default:
                throw config.Unsupported("class_embed_type", $"\"{type}\"", "null (with num_class_embeds), \"timestep\"");
        }
    }

    /// <summary>Adds the class embedding of labels [B] to emb [B, D] in place.</summary>
    public void AddTo(Tensor emb, Tensor labels)
    {
        Tensor c;
        if (_table is not null) c = _table.Forward(labels);
        else
        {
            using var proj = _timeProj.Forward(labels);
            c = _timestepMlp!.Forward(proj);
        }
        using (c) emb.Device.Add(emb, c, emb);
    }
}
