using Engine.Core;

namespace Engine.Sampling.Guidance;

/// <summary>
/// A conditional network as the guidance layer sees it: one batched forward over rows that may carry
/// different conditioning. Implementations adapt a real network (UNet, DiT with class labels or text
/// embeddings) to this contract.
/// </summary>
public interface IConditionalModel
{
    /// <summary>
    /// The prediction type of the output (epsilon, v_prediction, sample or flow), as in the model's
    /// scheduler config.
    /// </summary>
    string PredictionType { get; }

    /// <summary>
    /// Evaluates the model. <paramref name="sample"/> is [R, ...], <paramref name="timesteps"/> is [R]
    /// (training-time units, one per row). The returned tensor has the sample's shape, stays owned by the
    /// model and is only read until the next call. The model must honour every field of
    /// <paramref name="conditioning"/>: per-row labels or embeddings, the perturbed-attention rows and
    /// the class-embedding transform.
    /// </summary>
    Tensor Forward(Tensor sample, Tensor timesteps, ConditioningBatch conditioning);
}
