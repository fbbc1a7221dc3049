using Engine.Core;

namespace Engine.Sampling.KDiffusion;

/// <summary>k-diffusion <c>sample_euler</c> (s_churn 0): x += (sigma_next - sigma) (x - D) / sigma.</summary>
public sealed class KEuler : KSampler
{
    /// <summary>Creates the sampler on a ComfyUI grid.</summary>
    public KEuler(SchedulerConfig config, double[] grid) : base(config, grid, "euler") => Plan(OneCallPerStep());

    /// <inheritdoc />
    protected override void StepCore(Tensor modelOutput, int i, Tensor sample)
    {
        double s = Grid[i], sn = Grid[i + 1];
        var d = Denoise(0, modelOutput, sample, s);
        Term(sample, sn / s).Term(d, 1 - sn / s).Into(sample);
    }
}

/// <summary>
/// k-diffusion <c>sample_euler_ancestral</c> (eta 1, s_noise 1): an Euler step to sigma_down, then a
/// draw of std sigma_up; no draw on the last step.
/// </summary>
public sealed class KEulerAncestral : KSampler
{
    /// <summary>Creates the sampler on a ComfyUI grid.</summary>
    public KEulerAncestral(SchedulerConfig config, double[] grid) : base(config, grid, "euler_a") => Plan(OneCallPerStep());

    /// <inheritdoc />
    public override bool IsStochastic => true;

    /// <inheritdoc />
    protected override int DrawsAt(KCall call) => EndsAboveZero(call) ? 1 : 0;

    /// <inheritdoc />
    protected override void StepCore(Tensor modelOutput, int i, Tensor sample)
    {
        double s = Grid[i], sn = Grid[i + 1];
        var (down, up) = Ancestral(s, sn);
        var d = Denoise(0, modelOutput, sample, s);
        var z = sn > 0 ? Draw(1, sample) : null;
        Term(sample, down / s).Term(d, 1 - down / s);
        if (z is not null) Term(z, up);
        Into(sample);
    }
}
