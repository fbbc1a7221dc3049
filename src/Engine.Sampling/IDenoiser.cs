using Engine.Core;

namespace Engine.Sampling;

/// <summary>
/// What a scheduler tells the model about one evaluation: the timestep the model is conditioned on
/// (as diffusers passes it), and the noise level of the model input in the sampler's own view, so
/// analytic or sigma-conditioned models can use either.
/// </summary>
/// <param name="Index">Model-call index in the run (0-based).</param>
/// <param name="Timestep">The timestep passed to the model (training-time units; fractional for some grids).</param>
/// <param name="Sigma">The Karras noise level sigma the sampler assumes for this call (flow matching: t in [0, 1]).</param>
/// <param name="InputAlpha">Coefficient of x0 in the model input: input = InputAlpha x0 + InputSigma eps.</param>
/// <param name="InputSigma">Coefficient of the noise in the model input.</param>
public readonly record struct DenoiserCall(int Index, double Timestep, double Sigma, double InputAlpha, double InputSigma);

/// <summary>
/// A model evaluated by a sampler. The returned tensor has the model input's shape, stays owned by the
/// denoiser and is only read until the next call, so a model can reuse one output buffer.
/// </summary>
public interface IDenoiser
{
    /// <summary>Evaluates the model on <paramref name="modelInput"/> (already scaled by scale_model_input).</summary>
    Tensor Predict(Tensor modelInput, in DenoiserCall call);
}

/// <summary>Adapts a delegate to <see cref="IDenoiser"/>.</summary>
public sealed class DelegateDenoiser(Func<Tensor, DenoiserCall, Tensor> predict) : IDenoiser
{
    /// <inheritdoc />
    public Tensor Predict(Tensor modelInput, in DenoiserCall call) => predict(modelInput, call);
}
