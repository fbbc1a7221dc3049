using Engine.Core;

namespace Engine.Sampling.KDiffusion;

/// <summary>
/// k-diffusion <c>sample_dpmpp_2m</c>: DPM-Solver++ 2M in lambda = -log sigma, the first step and the
/// step to sigma 0 first order (x = (sigma_next / sigma) x + (1 - sigma_next / sigma) D').
/// </summary>
public sealed class KDpmPp2M : KSampler
{
    private Tensor? _old;

    /// <summary>Creates the sampler on a ComfyUI grid.</summary>
    public KDpmPp2M(SchedulerConfig config, double[] grid) : base(config, grid, "dpmpp_2m") => Plan(OneCallPerStep());

    /// <inheritdoc />
    protected override void ResetHistory() => _old = null;

    /// <inheritdoc />
    protected override void StepCore(Tensor modelOutput, int i, Tensor sample)
    {
        double s = Grid[i], sn = Grid[i + 1];
        var d = Denoise(i % 2, modelOutput, sample, s);
        double ratio = sn / s, w = -Expm1(sn == 0 ? double.NegativeInfinity : Math.Log(sn / s));
        Term(sample, ratio);
        if (_old is null || sn == 0) Term(d, w);
        else
        {
            double h = Math.Log(s / sn), r = Math.Log(Grid[i - 1] / s) / h;
            Term(d, w * (1 + 1 / (2 * r))).Term(_old, -w / (2 * r));
        }
        Into(sample);
        _old = d;
    }
}

/// <summary>
/// k-diffusion <c>sample_dpmpp_2s_ancestral</c> (eta 1, s_noise 1): a DPM-Solver++ 2S step to sigma_down
/// with its second call at the log-midpoint, then a draw of std sigma_up; the last step is Euler to 0.
/// </summary>
public sealed class KDpmPp2SAncestral : KSampler
{
    /// <summary>Creates the sampler on a ComfyUI grid.</summary>
    public KDpmPp2SAncestral(SchedulerConfig config, double[] grid) : base(config, grid, "dpmpp_2s_a")
    {
        var calls = new List<KCall>();
        for (int i = 0; i < StepCount; i++)
        {
            calls.Add(new KCall(i, 0, Grid[i]));
            double down = Ancestral(Grid[i], Grid[i + 1]).Down;
            if (down > 0) calls.Add(new KCall(i, 1, Math.Sqrt(Grid[i] * down)));
        }
        Plan(calls);
    }

    /// <inheritdoc />
    public override bool IsStochastic => true;

    /// <inheritdoc />
    protected override int DrawsAt(KCall call) => call.Stage == 1 && EndsAboveZero(call) ? 1 : 0;

    /// <inheritdoc />
    protected override void StepCore(Tensor modelOutput, int i, Tensor sample)
    {
        var call = PlanOf(i);
        double s = Grid[call.Step], sn = Grid[call.Step + 1];
        var (down, up) = Ancestral(s, sn);
        if (call.Stage == 0)
        {
            var d1 = Denoise(1, modelOutput, sample, s);
            if (down == 0) { Term(d1, 1).Into(sample); return; }
            Save(0, sample);
            double mid = Math.Sqrt(s * down); // sigma at lambda + h / 2, where the next call evaluates
            Term(sample, mid / s).Term(d1, 1 - mid / s).Into(sample);
            return;
        }
        var d2 = Denoise(1, modelOutput, sample, call.Sigma);
        var x0 = Scratch(0, sample);
        var z = sn > 0 ? Draw(2, sample) : null;
        Term(x0, down / s).Term(d2, 1 - down / s);
        if (z is not null) Term(z, up);
        Into(sample);
    }
}

/// <summary>
/// k-diffusion <c>sample_dpmpp_sde</c> (eta 1, s_noise 1, r 1/2) with independent draws from the
/// sampler's noise source: ComfyUI's default Brownian-tree noise (correlated across a step's two draws)
/// is not reproduced, so for a given seed the pictures differ from ComfyUI's.
/// </summary>
public sealed class KDpmPpSde : KSampler
{
    /// <summary>Creates the sampler on a ComfyUI grid.</summary>
    public KDpmPpSde(SchedulerConfig config, double[] grid) : base(config, grid, "dpmpp_sde")
    {
        var calls = new List<KCall>();
        for (int i = 0; i < StepCount; i++)
        {
            calls.Add(new KCall(i, 0, Grid[i]));
            if (Grid[i + 1] > 0) calls.Add(new KCall(i, 1, Math.Sqrt(Grid[i] * Grid[i + 1])));
        }
        Plan(calls);
    }

    /// <inheritdoc />
    public override bool IsStochastic => true;

    /// <inheritdoc />
    protected override int DrawsAt(KCall call) => EndsAboveZero(call) ? 1 : 0;   // one draw in each of the step's two calls

    /// <inheritdoc />
    protected override void StepCore(Tensor modelOutput, int i, Tensor sample)
    {
        var call = PlanOf(i);
        double s = Grid[call.Step], sn = Grid[call.Step + 1];
        if (call.Stage == 0)
        {
            var d1 = Denoise(1, modelOutput, sample, s);
            if (sn == 0) { Term(d1, 1).Into(sample); return; }
            Save(0, sample);
            var (down, up) = Ancestral(s, Math.Sqrt(s * sn)); // to the log-midpoint, where the next call evaluates
            var z = Draw(2, sample);
            Term(sample, down / s).Term(d1, 1 - down / s).Term(z, up).Into(sample);
            return;
        }
        // With r = 1/2 the combined denoised value (1 - 1/(2r)) D1 + 1/(2r) D2 is D2 alone.
        var d2 = Denoise(1, modelOutput, sample, call.Sigma);
        var (down2, up2) = Ancestral(s, sn);
        var z2 = Draw(2, sample);
        Term(Scratch(0, sample), down2 / s).Term(d2, 1 - down2 / s).Term(z2, up2).Into(sample);
    }
}
