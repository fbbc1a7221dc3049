using Engine.Core;
using Engine.Sampling.Plugins;

namespace Engine.Sampling.Guidance;

/// <summary>Settings of <see cref="PredictorCorrectorGuidance"/>.</summary>
public sealed record PredictorCorrectorOptions
{
    /// <summary>Power gamma of the corrector's target p(x|c)^gamma p(x)^(1-gamma) (the CFG scale it corresponds to).</summary>
    public double Gamma { get; init; } = 1;

    /// <summary>Langevin corrector steps after every predictor step (0: plain conditional sampling).</summary>
    public int CorrectorSteps { get; init; } = 1;

    /// <summary>Langevin step size relative to the noise variance: delta = StepSize s_t^2.</summary>
    public double StepSize { get; init; } = 0.1;

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the first impossible option.</summary>
    public void Validate()
    {
        if (!double.IsFinite(Gamma)) throw new ArgumentOutOfRangeException(nameof(Gamma), Gamma, "Predictor-corrector gamma (pc_gamma) must be finite.");
        if (CorrectorSteps < 0) throw new ArgumentOutOfRangeException(nameof(CorrectorSteps), CorrectorSteps, "Predictor-corrector steps (pc_steps) must be >= 0.");
        if (!(StepSize > 0 && StepSize <= 1)) throw new ArgumentOutOfRangeException(nameof(StepSize), StepSize, "Predictor-corrector step size (pc_step_size) must be in (0, 1].");
    }
}

/// <summary>
/// The predictor-corrector view of CFG (Bradley and Nakkiran), for study: each scheduler step is the
/// predictor on the conditional model alone (CFG scale 1), followed at the new noise level by Langevin
/// corrector steps on the gamma-powered distribution, whose score is -eps_gamma / s with
/// eps_gamma = eps_u + gamma (eps_c - eps_u): x &lt;- x - (delta / s) eps_gamma + sqrt(2 delta) z,
/// delta = StepSize s^2. Needs a VP-form scheduler (no input scaling; DDIM is the reference predictor).
/// </summary>
public static class PredictorCorrectorGuidance
{
    /// <summary>
    /// Runs the whole loop in place on <paramref name="sample"/>; corrector noise comes from
    /// <paramref name="noise"/> (draws 1000 + call). <paramref name="onStep"/> is called after each
    /// predictor step and its corrector steps, with the step index.
    /// </summary>
    public static void Run(Scheduler scheduler, GuidedDenoiser model, Tensor sample, PredictorCorrectorOptions options, INoiseSource? noise, Action<int>? onStep = null)
    {
        ArgumentNullException.ThrowIfNull(scheduler);
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        for (int i = 0; i < scheduler.CallCount; i++)
            if (scheduler.InputScale(i) != 1)
                throw new ArgumentException($"Predictor-corrector guidance needs a VP-form scheduler without input scaling; {scheduler.Config.ClassName} scales the input at call {i}.");
        if (options.CorrectorSteps > 0 && noise is null) throw new ArgumentException("Predictor-corrector guidance needs a noise source for the Langevin steps.", nameof(noise));
        var d = sample.Device;
        Tensor? z = null;
        try
        {
            for (int i = scheduler.StartCall; i < scheduler.CallCount; i++)
            {
                var m = model.Predict(sample, scheduler.Call(i), 1.0);
                scheduler.Step(m, i, sample);
                if (i + 1 >= scheduler.CallCount) { onStep?.Invoke(i); break; }
                var call = scheduler.Call(i + 1);
                double s = call.InputSigma, delta = options.StepSize * s * s;
                var (nx, nm) = PredictionSpace.NoiseFromOutput(model.PredictionType, call.InputAlpha, s);
                for (int k = 0; k < options.CorrectorSteps; k++)
                {
                    z ??= d.Allocate(sample.ShapeArray());
                    noise!.Fill(z, 1000 + i * options.CorrectorSteps + k);
                    var mg = model.Predict(sample, call, options.Gamma);
                    d.LinearCombination(sample, [sample, mg.Reshape(sample.ShapeArray()), z],
                        [(float)(1 - delta / s * nx), (float)(-delta / s * nm), (float)Math.Sqrt(2 * delta)]);
                }
                onStep?.Invoke(i);
            }
        }
        finally { z?.Dispose(); }
    }
}
