using Engine.Core;

namespace Engine.Sampling.KDiffusion;

/// <summary>
/// ComfyUI's <c>ddpm</c>: the DDPM posterior step between the grid's noise levels, taken in VP
/// coordinates (x / sqrt(1 + sigma^2)) and carried back; a draw on every step but the last.
/// </summary>
public sealed class KDdpm : KSampler
{
    /// <summary>Creates the sampler on a ComfyUI grid.</summary>
    public KDdpm(SchedulerConfig config, double[] grid) : base(config, grid, "ddpm") => Plan(OneCallPerStep());

    /// <inheritdoc />
    public override bool IsStochastic => true;

    /// <inheritdoc />
    protected override int DrawsAt(KCall call) => EndsAboveZero(call) ? 1 : 0;

    /// <inheritdoc />
    protected override void StepCore(Tensor modelOutput, int i, Tensor sample)
    {
        double s = Grid[i], sn = Grid[i + 1];
        double ac = 1 / (s * s + 1), acPrev = 1 / (sn * sn + 1), alpha = ac / acPrev;
        // mu = sqrt(1/alpha) (x_vp - (1 - alpha) eps / sqrt(1 - ac)), eps = (x - D) / s, x_vp = x sqrt(ac).
        double k = Math.Sqrt(1 / alpha), q = (1 - alpha) / Math.Sqrt(1 - ac) / s;
        double back = sn > 0 ? Math.Sqrt(1 + sn * sn) : 1;
        var d = Denoise(0, modelOutput, sample, s);
        Term(sample, back * k * (Math.Sqrt(ac) - q)).Term(d, back * k * q);
        if (sn > 0) Term(Draw(1, sample), back * Math.Sqrt((1 - alpha) * (1 - acPrev) / (1 - ac)));
        Into(sample);
    }
}

/// <summary>
/// ComfyUI's <c>lcm</c> (latent consistency sampling): x = D, then fresh noise of std sigma_next added
/// for every step but the last.
/// </summary>
public sealed class KLcm : KSampler
{
    /// <summary>Creates the sampler on a ComfyUI grid.</summary>
    public KLcm(SchedulerConfig config, double[] grid) : base(config, grid, "lcm") => Plan(OneCallPerStep());

    /// <inheritdoc />
    public override bool IsStochastic => true;

    /// <inheritdoc />
    protected override int DrawsAt(KCall call) => EndsAboveZero(call) ? 1 : 0;

    /// <inheritdoc />
    protected override void StepCore(Tensor modelOutput, int i, Tensor sample)
    {
        double s = Grid[i], sn = Grid[i + 1];
        var d = Denoise(0, modelOutput, sample, s);
        Term(d, 1);
        if (sn > 0) Term(Draw(1, sample), sn);
        Into(sample);
    }
}
