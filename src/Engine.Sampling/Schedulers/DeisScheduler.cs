using Engine.Core;

namespace Engine.Sampling.Schedulers;

/// <summary>
/// diffusers DEISMultistepScheduler (Zhang and Chen 2023, rhoAB with log-rho Lagrange polynomials):
/// x_t = alpha_t (x_s / alpha_s + sum_k c_k eps_k), with c_k the closed-form integrals of the Lagrange
/// basis in log rho (rho = sigma / alpha) against d rho, orders 1-3, lower_order_final.
/// </summary>
public sealed class DeisScheduler : VpMultistepScheduler
{
    /// <summary>The diffusers class this scheduler implements.</summary>
    public const string DiffusersClass = "DEISMultistepScheduler";

    /// <summary>Registration in <see cref="SchedulerRegistry"/>: algorithm_type deis and solver_type logrho only, thresholding; short names <c>deis</c> and <c>deis_tab</c>.</summary>
    public static SchedulerDescriptor Descriptor { get; } = new()
    {
        ClassNames = [DiffusersClass],
        Create = (c, steps) => new DeisScheduler(c, steps),
        ReadOptions = (r, k) => new Options(r, k),
        Defaults = new() { AlgorithmType = new("deis", "deis"), SolverType = new("logrho", "logrho") },
        SupportsThresholding = true,
        ShortNames =
        [
            new("deis", "DEIS (exponential integrator, log-rho multistep, order 3)",
                c => c.WithClass(DiffusersClass, ("algorithm_type", "deis"), ("solver_type", "logrho"), ("solver_order", 3))) { ListOrder = 160 },
            new("deis_tab", "DEIS tAB (Lagrange basis in t, quadrature coefficients; beyond diffusers), order 3",
                c => c.WithClass(DiffusersClass, ("algorithm_type", "deis"), ("solver_type", "logrho"), ("solver_order", 3))) { Build = (c, steps) => new DeisScheduler(c, steps, timeAB: true), ListOrder = 190, Convention = NameConvention.Engine },
        ],
    };

    /// <summary>DEIS's own options (diffusers keeps algorithm_type and solver_type with one value each: deis and logrho).</summary>
    public sealed record Options : TypedSolverOptions
    {
        /// <summary>Options with the diffusers defaults.</summary>
        public Options() : base("deis", "logrho") { }

        /// <summary>Reads the options; algorithm_type and solver_type take their allowed values from <paramref name="k"/>.</summary>
        public Options(SchedulerConfigReader r, SchedulerDefaults k) : base(r, k) { }
    }

    private Options Own => (Options)Solver;
    private int _lowerOrderNums;

    /// <summary>
    /// Creates the scheduler for <paramref name="steps"/> steps. <paramref name="timeAB"/> (beyond
    /// diffusers) selects DEIS tAB: the noise predictions are interpolated by Lagrange polynomials in the
    /// timestep t instead of log rho, and the coefficients integral of l_j(t(rho)) d rho are computed
    /// by Gauss-Legendre quadrature on the host.
    /// </summary>
    public DeisScheduler(SchedulerConfig config, int steps, bool timeAB = false) : base(config, Descriptor.OptionsOf<Options>(config), steps, finalSigmaMinAlways: true) => TimeAB = timeAB;

    /// <summary>True for the tAB variant (Lagrange basis in t), false for diffusers' rhoAB (log rho).</summary>
    public bool TimeAB { get; }

    /// <summary>integral over rho in [r0, rt] of the Lagrange basis polynomial j in t(rho) over nodes t_k = t(rho_k).</summary>
    private double TabCoefficient(double rt, double r0, ReadOnlySpan<double> nodes, int j)
    {
        var t = new double[nodes.Length];
        for (int k = 0; k < nodes.Length; k++) t[k] = Training.SigmaToT(nodes[k]);
        // Substitute u = log rho (rho spans decades) and use 8-point Gauss-Legendre on 8 panels.
        ReadOnlySpan<double> gx = [-0.9602898564975363, -0.7966664774136267, -0.5255324099163290, -0.1834346424956498, 0.1834346424956498, 0.5255324099163290, 0.7966664774136267, 0.9602898564975363];
        ReadOnlySpan<double> gw = [0.1012285362903763, 0.2223810344533745, 0.3137066458778873, 0.3626837833783620, 0.3626837833783620, 0.3137066458778873, 0.2223810344533745, 0.1012285362903763];
        double ua = Math.Log(r0), ub = Math.Log(rt), sum = 0;
        const int panels = 8;
        double width = (ub - ua) / panels;
        for (int p = 0; p < panels; p++)
        {
            double mid = ua + (p + 0.5) * width, half = width / 2;
            for (int q = 0; q < 8; q++)
            {
                double u = mid + half * gx[q], rho = Math.Exp(u), tau = Training.SigmaToT(rho), l = 1;
                for (int k = 0; k < t.Length; k++) if (k != j) l *= (tau - t[k]) / (t[j] - t[k]);
                sum += gw[q] * half * l * rho;
            }
        }
        return sum;
    }

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
        int n = CallCount, order = Own.SolverOrder;
        bool lof = i == n - 1 && Own.LowerOrderFinal && n < 15;
        bool los = i == n - 2 && Own.LowerOrderFinal && n < 15;
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
        if (TimeAB)
        {
            var nodes = use == 2 ? new[] { r0, r1 } : [r0, r1, History(2).Sigma];
            Term(sample, at / as0);
            for (int j = 0; j < use; j++) Term(History(j).T, at * TabCoefficient(rt, r0, nodes, j));
            Into(sample);
            return;
        }
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
