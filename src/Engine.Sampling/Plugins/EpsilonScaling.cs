using Engine.Core;

namespace Engine.Sampling.Plugins;

/// <summary>
/// Epsilon scaling (Ning et al., exposure bias): the predicted noise is divided by
/// s(t) = <see cref="Slope"/> t + <see cref="Constant"/> (t the model timestep) before the solver
/// uses it. The output is converted through the noise estimate, so for a Karras-form solver the
/// denoised estimate becomes D' = x~ - sigma eps / s, and every prediction type and solver is covered:
/// m' = X x + M m with host coefficients, one linear combination per call.
/// </summary>
public sealed class EpsilonScaling : DenoiserPlugin
{
    /// <summary>Wraps <paramref name="inner"/>; s(t) = slope t + constant must be positive at every call.</summary>
    public EpsilonScaling(IDenoiser inner, Scheduler scheduler, double constant, double slope = 0) : base(inner, scheduler)
    {
        if (!double.IsFinite(constant) || !double.IsFinite(slope)) throw new ArgumentOutOfRangeException(nameof(constant), "Epsilon scaling: eps_scale and eps_scale_slope must be finite.");
        Constant = constant; Slope = slope;
        foreach (var t in Timesteps)
            if (!(ScaleAt(t) > 0))
                throw new ArgumentOutOfRangeException(nameof(constant), $"Epsilon scaling: s(t) = {slope} t + {constant} is {ScaleAt(t)} at timestep {t}; it must be > 0 at every step.");
    }

    /// <summary>b of s(t) = k t + b.</summary>
    public double Constant { get; }

    /// <summary>k of s(t) = k t + b (per training timestep).</summary>
    public double Slope { get; }

    /// <summary>The divisor at timestep <paramref name="timestep"/>.</summary>
    public double ScaleAt(double timestep) => Slope * timestep + Constant;

    /// <inheritdoc />
    public override Tensor Predict(Tensor modelInput, in DenoiserCall call)
    {
        var m = Inner.Predict(modelInput, call);
        double k = ScaleAt(call.Timestep);
        if (k == 1) return m;
        var (x1, m1) = PredictionSpace.NoiseFromOutput(PredictionType, call.InputAlpha, call.InputSigma);
        var (x2, e2) = PredictionSpace.OutputFromNoise(PredictionType, call.InputAlpha, call.InputSigma);
        double cx = x2 + e2 * x1 / k, cm = e2 * m1 / k;
        CheckFinite(cx + cm, call, "the scaled noise prediction");
        var output = Buffer(0, m);
        if (cx == 0) modelInput.Device.Affine(m, output, (float)cm, 0f);
        else modelInput.Device.LinearCombination(output, [modelInput.Reshape(m.ShapeArray()), m], [(float)cx, (float)cm]);
        return output;
    }
}
