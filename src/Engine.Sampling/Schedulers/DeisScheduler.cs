using Engine.Core;

namespace Engine.Sampling.Schedulers;

/// <summary>
/// diffusers DEISMultistepScheduler (Zhang and Chen 2023, rhoAB with log-rho Lagrange polynomials):
/// x_t = alpha_t (x_s / alpha_s + sum_k c_k eps_k), with c_k the closed-form integrals of the Lagrange
/// basis in log rho (rho = sigma / alpha) against d rho, orders 1-3, lower_order_final.
/// </summary>
public sealed class DeisScheduler : VpMultistepScheduler
{
    private int _lowerOrderNums;

    /// <summary>Creates the scheduler for <paramref name="steps"/> steps.</summary>
    public DeisScheduler(SchedulerConfig config, int steps) : base(config, steps, finalSigmaMinAlways: true) { }

    /// <inheritdoc />
    protected override void Reset() { base.Reset(); _lowerOrderNums = 0; }

    // Antiderivatives (in rho) of the Lagrange basis polynomials in log rho, as in the DEIS paper.
    private static double Ind2(double t, double b, double c) => t * (-Math.Log(c) + Math.Log(t) - 1) / (Math.Log(b) - Math.Log(c));

    private static double Ind3(double t, double b, double c, double d)
    {
        double lt = Math.Log(t), lb = Math.Log(b), lc = Math.Log(c), ld = Math.Log(d);
        double num = t * (lc * (ld - lt + 1) - ld * lt + ld + lt * lt - 2 * lt + 2);
        return num / ((lb - lc) * (lb - ld));
    }

    /// <inheritdoc />
    protected override void StepCore(Tensor modelOutput, int i, Tensor sample)
    {
        int n = CallCount, order = Config.SolverOrder;
        bool lof = i == n - 1 && Config.LowerOrderFinal && n < 15;
        bool los = i == n - 2 && Config.LowerOrderFinal && n < 15;
        PushConverted(modelOutput, i, sample, data: false);
        int use = order == 1 || _lowerOrderNums < 1 || lof ? 1 : order == 2 || _lowerOrderNums < 2 || los ? 2 : 3;
        if (_lowerOrderNums < order) _lowerOrderNums++;
        use = UsableOrder(use);
        var (at, st) = AlphaSigmaAt(i + 1);
        var (as0, _) = AlphaSigmaAt(i);
        if (SigmaAt(i + 1) == SigmaAt(i)) return; // zero-length step: identity
        var m0 = History(0);
        if (use == 1)
        {
            double h = LambdaAt(i + 1) - LambdaAt(i);
            Term(sample, at / as0).Term(m0.T, -st * ExpMath.Expm1(h)).Into(sample);
            return;
        }
        double rt = SigmaAt(i + 1), r0 = m0.Sigma;
        var m1 = History(1);
        double r1 = m1.Sigma;
        if (use == 2)
        {
            double c1 = Ind2(rt, r0, r1) - Ind2(r0, r0, r1);
            double c2 = Ind2(rt, r1, r0) - Ind2(r0, r1, r0);
            Term(sample, at / as0).Term(m0.T, at * c1).Term(m1.T, at * c2).Into(sample);
            return;
        }
        var m2 = History(2);
        double r2 = m2.Sigma;
        double k1 = Ind3(rt, r0, r1, r2) - Ind3(r0, r0, r1, r2);
        double k2 = Ind3(rt, r1, r2, r0) - Ind3(r0, r1, r2, r0);
        double k3 = Ind3(rt, r2, r0, r1) - Ind3(r0, r2, r0, r1);
        Term(sample, at / as0).Term(m0.T, at * k1).Term(m1.T, at * k2).Term(m2.T, at * k3).Into(sample);
    }
}
