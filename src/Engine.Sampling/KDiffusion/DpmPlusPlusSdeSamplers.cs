using Engine.Core;

namespace Engine.Sampling.KDiffusion;

/// <summary>
/// k-diffusion's multistep SDE samplers (eta 1, s_noise 1): <c>sample_dpmpp_2m_sde</c> (midpoint form)
/// and <c>sample_dpmpp_3m_sde</c>. With h = log(sigma / sigma_next) each step is
/// x = e^{-2h} x + (1 - e^{-2h}) D + (history correction) + sigma_next sqrt(1 - e^{-2h}) z; the step to
/// sigma 0 returns D and draws nothing. Draws come from the sampler's noise source, one per step.
/// </summary>
public sealed class KDpmPpMultistepSde : KSampler
{
    private readonly int _order;
    private readonly Tensor?[] _d = new Tensor?[3];
    private readonly double[] _h = new double[2];

    /// <summary>Creates the order-2 (dpmpp_2m_sde) or order-3 (dpmpp_3m_sde) sampler on a ComfyUI grid.</summary>
    public KDpmPpMultistepSde(SchedulerConfig config, double[] grid, int order) : base(config, grid, order == 2 ? "dpmpp_2m_sde" : "dpmpp_3m_sde")
    {
        if (order is not (2 or 3)) throw new ArgumentOutOfRangeException(nameof(order), order, "The order must be 2 or 3.");
        _order = order;
        Plan(OneCallPerStep());
    }

    /// <inheritdoc />
    public override bool IsStochastic => true;

    /// <inheritdoc />
    protected override int DrawsAt(KCall call) => EndsAboveZero(call) ? 1 : 0;

    /// <inheritdoc />
    protected override void ResetHistory() { Array.Clear(_d); Array.Clear(_h); }

    /// <inheritdoc />
    protected override void StepCore(Tensor modelOutput, int i, Tensor sample)
    {
        double s = Grid[i], sn = Grid[i + 1];
        var d = Denoise(i % 3, modelOutput, sample, s);
        if (sn == 0) { Term(d, 1).Into(sample); return; }
        double h = Math.Log(s / sn), a = -Expm1(-2 * h);
        var z = Draw(3, sample);
        // Weights of D, D_{-1}, D_{-2}, summed in double so each tensor enters the float32 kernel once.
        var w = new double[3];
        w[0] = a;
        if (_order == 2)
        {
            if (_d[0] is not null)
            {
                double r = _h[0] / h;
                w[0] += 0.5 * a / r; w[1] -= 0.5 * a / r;
            }
        }
        else if (_d[1] is not null && _d[0] is not null)
        {
            // Third order: divided differences of D over the last three steps.
            double r0 = _h[0] / h, r1 = _h[1] / h, he = 2 * h;
            double phi2 = Expm1(-he) / he + 1, phi3 = phi2 / he - 0.5;
            // d1_0 = (D - D1)/r0, d1_1 = (D1 - D2)/r1; dd1 = d1_0 + (d1_0 - d1_1) r0/(r0 + r1); dd2 = (d1_0 - d1_1)/(r0 + r1).
            double k = r0 / (r0 + r1), q = 1 / (r0 + r1);
            double[] d10 = [1 / r0, -1 / r0, 0], d11 = [0, 1 / r1, -1 / r1];
            for (int j = 0; j < 3; j++) w[j] += phi2 * (d10[j] + (d10[j] - d11[j]) * k) - phi3 * (d10[j] - d11[j]) * q;
        }
        else if (_d[0] is not null)
        {
            double r = _h[0] / h, he = 2 * h, phi2 = Expm1(-he) / he + 1;
            w[0] += phi2 / r; w[1] -= phi2 / r;
        }
        Term(sample, (sn / s) * Math.Exp(-h)).Term(d, w[0]);
        if (_d[0] is { } d1) Term(d1, w[1]);
        if (_d[1] is { } d2) Term(d2, w[2]);
        Term(z, sn * Math.Sqrt(a));
        Into(sample);
        _d[1] = _d[0]; _d[0] = d;
        _h[1] = _h[0]; _h[0] = h;
    }
}
