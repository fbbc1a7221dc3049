using Engine.Core;

namespace Engine.Sampling.Guidance;

/// <summary>
/// The conditioning of one batched forward, row by row. Exactly one of <see cref="ClassLabels"/> and
/// <see cref="Embeddings"/> is set. Rows [<see cref="PerturbedStart"/>, PerturbedStart +
/// <see cref="PerturbedCount"/>) must run with identity self-attention (the attention output is the
/// value projection) in the layers named by <see cref="PerturbedLayers"/>; all other rows run the
/// model unchanged.
/// </summary>
public sealed class ConditioningBatch
{
    /// <summary>Per-row class labels as float32 on the device, [R] (the null class for unconditional rows).</summary>
    public Tensor? ClassLabels { get; init; }

    /// <summary>Per-row conditioning embeddings on the device, [R, ...] (e.g. text encoder states).</summary>
    public Tensor? Embeddings { get; init; }

    /// <summary>Per-row pooled conditioning [R, P] beside <see cref="Embeddings"/> (SDXL's text_embeds and time ids), or null.</summary>
    public Tensor? Pooled { get; init; }

    /// <summary>First row that runs with perturbed (identity) self-attention.</summary>
    public int PerturbedStart { get; init; }

    /// <summary>Number of perturbed rows (0: none).</summary>
    public int PerturbedCount { get; init; }

    /// <summary>
    /// Attention layers to perturb, by diffusers module path prefix (e.g. "mid_block" or
    /// "transformer_blocks.3"); used only when <see cref="PerturbedCount"/> is positive.
    /// </summary>
    public IReadOnlyList<string> PerturbedLayers { get; init; } = [];

    /// <summary>
    /// Optional transform of the class embedding (CADS noise for class-label models). A class-label
    /// model calls <see cref="IEmbeddingTransform.Apply"/> on its class-embedding tensor [R, E] right
    /// after the label lookup, before it is used. Null: no transform.
    /// </summary>
    public IEmbeddingTransform? ClassEmbeddingTransform { get; init; }

    /// <summary>Number of rows.</summary>
    public int Rows => (int)(ClassLabels?.Length ?? Embeddings?.Dim(0) ?? 0);

    /// <summary>True when row <paramref name="row"/> runs with perturbed attention.</summary>
    public bool IsPerturbed(int row) => PerturbedCount > 0 && row >= PerturbedStart && row < PerturbedStart + PerturbedCount;
}

/// <summary>An in-place transform of a per-row embedding tensor [R, ...] on the device.</summary>
public interface IEmbeddingTransform
{
    /// <summary>Transforms <paramref name="embedding"/> ([R, ...], R the rows of the batch) in place.</summary>
    void Apply(Tensor embedding);
}
