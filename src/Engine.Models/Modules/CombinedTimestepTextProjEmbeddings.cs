using Engine.Core;
using Engine.Models.Binding;

namespace Engine.Models.Modules;

/// <summary>
/// diffusers <c>CombinedTimestepTextProjEmbeddings</c> (SD3 conditioning): a 256-wide sinusoidal
/// timestep embedding (flip_sin_to_cos, shift 0) through <c>timestep_embedder</c>, plus the pooled
/// text embedding through <c>text_embedder</c> (a SiLU <see cref="PixArtAlphaTextProjection"/>).
/// </summary>
public sealed class CombinedTimestepTextProjEmbeddings
{
    private readonly Timesteps _timeProj = new(256, flipSinToCos: true, downscaleFreqShift: 0f);
    private readonly TimestepEmbedding _timestepEmbedder;
    private readonly PixArtAlphaTextProjection _textEmbedder;

    /// <summary>Declares <c>timestep_embedder.*</c> and <c>text_embedder.*</c> in <paramref name="scope"/>.</summary>
    public CombinedTimestepTextProjEmbeddings(ParameterScope scope, int embeddingDim, int pooledProjectionDim)
    {
        _timestepEmbedder = new TimestepEmbedding(scope.Sub("timestep_embedder"), 256, embeddingDim);
        _textEmbedder = new PixArtAlphaTextProjection(scope.Sub("text_embedder"), pooledProjectionDim, embeddingDim, activation: "silu");
    }

    /// <summary>Width of the pooled projections.</summary>
    public int PooledProjectionDim => _textEmbedder.InFeatures;

    /// <summary>The conditioning [B, D] for timesteps [B] and pooled projections [B, pooled].</summary>
    public Tensor Forward(Tensor timesteps, Tensor pooledProjections)
    {
        using var proj = _timeProj.Forward(timesteps);
        var t = _timestepEmbedder.Forward(proj);
        using var p = _textEmbedder.Forward(pooledProjections);
        t.Device.Add(t, p, t);
        return t;
    }
}
