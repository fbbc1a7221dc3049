using Engine.Core;

namespace Engine.Sampling.KDiffusion;

/// <summary>
/// Two-stage samplers of k-diffusion whose last step to sigma 0 is one Euler step: <c>sample_heun</c>
/// (second call at sigma_next, trapezoid), <c>sample_dpm_2</c> (second call at the log-midpoint) and
/// <c>sample_dpm_2_ancestral</c> (DPM-Solver-2 to sigma_down, then a draw of std sigma_up).
/// </summary>
public sealed class KTwoStage : KSampler
{
    /// <summary>Which of the three methods.</summary>
    public enum Method
    {
        /// <summary>Heun's method (Karras et al. Algorithm 1).</summary>
        Heun,
        /// <summary>DPM-Solver-2 (midpoint in log sigma).</summary>
        Dpm2,
        /// <summary>DPM-Solver-2 ancestral.</summary>
        Dpm2Ancestral,
    }

    private readonly Method _method;

    /// <summary>Creates the sampler on a ComfyUI grid (for dpm_2 and dpm_2_a, the grid without its penultimate sigma).</summary>
    public KTwoStage(SchedulerConfig config, double[] grid, Method method)
        : base(config, grid, method switch { Method.Heun => "heun", Method.Dpm2 => "dpm_2", _ => "dpm_2_a" })
    {
        _method = method;
        var calls = new List<KCall>();
        for (int i = 0; i < StepCount; i++)
        {
            calls.Add(new KCall(i, 0, Grid[i]));
            if (Target(i) > 0) calls.Add(new KCall(i, 1, SecondSigma(i)));
        }
        Plan(calls);
    }

    /// <inheritdoc />
    public override bool IsStochastic => _method == Method.Dpm2Ancestral;

    /// <inheritdoc />
    protected override int DrawsAt(KCall call) => _method == Method.Dpm2Ancestral && call.Stage == 1 ? 1 : 0;

    // The sigma the step's ODE part ends at: sigma_next, or sigma_down for the ancestral form.
    private double Target(int i) => _method == Method.Dpm2Ancestral ? Ancestral(Grid[i], Grid[i + 1]).Down : Grid[i + 1];

    private double SecondSigma(int i) => _method == Method.Heun ? Grid[i + 1] : Math.Exp(0.5 * (Math.Log(Grid[i]) + Math.Log(Target(i))));

    /// <inheritdoc />
    protected override void StepCore(Tensor modelOutput, int i, Tensor sample)
    {
        var call = PlanOf(i);
        double s = Grid[call.Step], target = Target(call.Step);
        if (call.Stage == 0)
        {
            var d1 = Denoise(1, modelOutput, sample, s);
            if (target == 0) { Term(d1, 1).Into(sample); return; } // Euler step to 0: x + (x - D)(0 - s)/s = D
            Save(0, sample);
            double sm = SecondSigma(call.Step), dt = sm - s;
            Term(sample, 1 + dt / s).Term(d1, -dt / s).Into(sample);
            return;
        }
        // Stage 1: sample holds x2 at the second sigma; slot 0 the step's start, slot 1 its denoised value.
        double s2 = call.Sigma, dt2 = target - s;
        var (cx, cm) = DenoisedCoefficients(s2);
        var x0 = Scratch(0, sample);
        if (_method == Method.Heun)
        {
            // x0 + dt/2 ((x0 - D1)/s + (x2 - D2)/s2) with D2 = cx x2 + cm out.
            var d1 = Scratch(1, sample);
            Term(x0, 1 + dt2 / (2 * s)).Term(d1, -dt2 / (2 * s)).Term(sample, dt2 * (1 - cx) / (2 * s2)).Term(modelOutput, -dt2 * cm / (2 * s2)).Into(sample);
            return;
        }
        // x0 + dt2 (x2 - D2) / s2.
        var z = _method == Method.Dpm2Ancestral ? Draw(2, sample) : null;
        Term(x0, 1).Term(sample, dt2 * (1 - cx) / s2).Term(modelOutput, -dt2 * cm / s2);
        if (z is not null) Term(z, Ancestral(s, Grid[call.Step + 1]).Up);
        Into(sample);
    }
}
