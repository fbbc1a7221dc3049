using Engine.Core;
using Engine.Models.Binding;

namespace Engine.Models.Modules;

/// <summary>
/// diffusers <c>CombinedTimestepLabelEmbeddings</c> (DiT conditioning): a 256-wide sinusoidal
/// timestep embedding (flip_sin_to_cos, shift 1) through <c>timestep_embedder</c>, plus the row of
/// <c>class_embedder.embedding_table</c> (num_classes + 1 rows; the last is the null class).
/// </summary>
public sealed class CombinedTimestepLabelEmbeddings
{
    private readonly Timesteps _timeProj = new(256, flipSinToCos: true, downscaleFreqShift: 1f);
    private readonly TimestepEmbedding _timestepEmbedder;
    private readonly LabelEmbedding _classEmbedder;

    /// <summary>Declares the parameters in <paramref name="scope"/>.</summary>
    public CombinedTimestepLabelEmbeddings(ParameterScope scope, int numClasses, int embeddingDim)
    {
        _timestepEmbedder = new TimestepEmbedding(scope.Sub("timestep_embedder"), 256, embeddingDim);
        _classEmbedder = new LabelEmbedding(scope.Sub("class_embedder"), "embedding_table.weight", numClasses + 1, embeddingDim);
    }

    /// <summary>Table rows (valid labels 0 .. rows-1; the last row is the null class).</summary>
    public int LabelRows => _classEmbedder.Rows;

    /// <summary>conditioning [B, D] for timesteps [B] and labels [B].</summary>
    public Tensor Forward(Tensor timesteps, Tensor labels)
    {
        using var proj = _timeProj.Forward(timesteps);
        var t = _timestepEmbedder.Forward(proj);
        using var c = _classEmbedder.Forward(labels);
        t.Device.Add(t, c, t);
        return t;
    }
}
