using Engine.Core;

namespace Engine.Sampling.Schedulers;

/// <summary>
/// DPM-Solver++(2S) ancestral (k-diffusion sample_dpmpp_2s_ancestral; no diffusers class): per step a
/// data-prediction midpoint step in lambda = -log sigma to sigma_down, then fresh noise of std sigma_up,
/// with (sigma_down, sigma_up) the ancestral split controlled by <see cref="Eta"/> (0: deterministic
/// DPM-Solver++ 2S). Two model calls per step; the step to sigma 0 is one Euler step.
/// </summary>
public sealed class DpmPp2sAncestralScheduler : KarrasFormScheduler
{
    /// <summary>Registration in <see cref="SchedulerRegistry"/>: no diffusers class and no short name (<c>dpmpp_2s_a</c> is ComfyUI's sampler, see KDiffusion); built directly, on an Euler ancestral config.</summary>
    public static SchedulerDescriptor Descriptor { get; } = new()
    {
    };

    private readonly double[] _down, _up, _mid;
    private readonly List<(int Step, int Stage)> _calls = [];

    /// <summary>Creates the sampler for <paramref name="steps"/> steps with ancestral strength <paramref name="eta"/>.</summary>
    public DpmPp2sAncestralScheduler(SchedulerConfig config, int steps, double eta = 1.0, bool endAtSigmaMin = false)
        : base(config, steps, roundKarrasTimesteps: false, allowFinalSigmaMin: false, endAtSigmaMin)
    {
        if (!(eta >= 0)) throw new ArgumentOutOfRangeException(nameof(eta), eta, "eta must be >= 0.");
        Eta = eta;
        _down = new double[steps]; _up = new double[steps]; _mid = new double[steps];
        var ts = new List<double>();
        for (int k = 0; k < steps; k++)
        {
            double s = StepSigmas[k], sn = StepSigmas[k + 1];
            _up[k] = Math.Min(sn, eta * Math.Sqrt(Math.Max(sn * sn * (s * s - sn * sn) / (s * s), 0)));
            _down[k] = Math.Sqrt(Math.Max(sn * sn - _up[k] * _up[k], 0));
            _mid[k] = Math.Sqrt(s * _down[k]);
            _calls.Add((k, 0)); ts.Add(StepTimesteps[k]);
            if (_down[k] > 0) { _calls.Add((k, 1)); ts.Add((float)Training.SigmaToT(_mid[k])); }
        }
        Timesteps = [.. ts];
        Sigmas = StepSigmas;
    }

    /// <summary>Ancestral noise strength (1 = full ancestral sampling, 0 = deterministic).</summary>
    public double Eta { get; }

    /// <inheritdoc />
    public override bool IsStochastic => Eta > 0;

    /// <inheritdoc />
    public override int FirstCallOfStep(int step) => _calls.IndexOf((base.FirstCallOfStep(step), 0));

    /// <inheritdoc />
    public override int NoiseDraws => _up.Count(u => u > 0);

    /// <inheritdoc />
    protected override double CallSigma(int i) { var (k, st) = _calls[i]; return st == 0 ? StepSigmas[k] : _mid[k]; }

    /// <inheritdoc />
    protected override void StepCore(Tensor modelOutput, int i, Tensor sample)
    {
        var (k, stage) = _calls[i];
        double s = StepSigmas[k], down = _down[k], mid = _mid[k];
        var saved = Scratch(0, sample);
        Tensor? z = _up[k] > 0 && (stage == 1 || down == 0) ? DrawNoise(1, sample, k) : null;
        if (stage == 0)
        {
            var (dx, dm) = Denoised(s);
            if (down == 0) Term(sample, dx).Term(modelOutput, dm); // Euler to sigma 0 lands on the denoised estimate
            else
            {
                sample.Device.Copy(sample, saved);
                double h = Math.Log(s) - Math.Log(down), e = ExpMath.Expm1(-0.5 * h);
                Term(sample, mid / s - e * dx).Term(modelOutput, -e * dm);
            }
        }
        else
        {
            var (dx, dm) = Denoised(mid);
            double h = Math.Log(s) - Math.Log(down), e = ExpMath.Expm1(-h);
            Term(saved, down / s).Term(sample, -e * dx).Term(modelOutput, -e * dm);
        }
        if (z is not null) Term(z, _up[k]);
        Into(sample);
    }
}
