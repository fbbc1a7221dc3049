using Engine.Core;

namespace Engine.Sampling.Schedulers;

/// <summary>
/// diffusers UniPCMultistepScheduler (Zhao et al. 2023): UniP predictor and UniC corrector (which
/// reuses the model output at the new point), B(h) = h (bh1) or expm1(h) (bh2), orders 1-3, data or
/// noise prediction (predict_x0), disable_corrector. Beyond diffusers 0.31: a bh1 step that ends at
/// sigma 0 (where B(h) is infinite) uses the first-order update, which is exact there.
/// </summary>
public sealed class UniPcScheduler : VpMultistepScheduler
{
    /// <summary>The diffusers class this scheduler implements.</summary>
    public const string DiffusersClass = "UniPCMultistepScheduler";

    /// <summary>Registration in <see cref="SchedulerRegistry"/>: solver_type bh1 or bh2 (default bh2), thresholding; short names <c>unipc</c> and <c>unipc_bh1</c>.</summary>
    public static SchedulerDescriptor Descriptor { get; } = new()
    {
        ClassNames = [DiffusersClass],
        Create = (c, steps) => new UniPcScheduler(c, steps),
        ReadOptions = (r, k) => new Options(r, k),
        Defaults = new() { SolverType = new("bh2", "bh1", "bh2") },
        SupportsThresholding = true,
        Validate = c => c.OptionsAs<Options>().DisableCorrector.FirstOrDefault(i => i < 0, 0) is var bad && bad < 0
            ? $"disable_corrector holds {bad}; its entries are step indices, >= 0." : null,
        ShortNames =
        [
            new("unipc", "UniPC (bh2 predictor-corrector, order 2)",
                c => c.WithClass(DiffusersClass, ("solver_type", "bh2"), ("solver_order", 2))) { ListOrder = 170 },
            new("unipc_bh1", "UniPC with B(h) = h (bh1), order 3",
                c => c.WithClass(DiffusersClass, ("solver_type", "bh1"), ("solver_order", 3))) { ListOrder = 180 },
        ],
    };

    /// <summary>UniPC's own options.</summary>
    public sealed record Options : SolverOptions
    {
        /// <summary>Options with the diffusers defaults.</summary>
        public Options() { }

        /// <summary>Reads the options; solver_type takes its allowed values from <paramref name="k"/>.</summary>
        public Options(SchedulerConfigReader r, SchedulerDefaults k) : base(r)
        {
            ArgumentNullException.ThrowIfNull(k);
            SolverType = r.Choice("solver_type", k.SolverType);
            PredictX0 = r.Bool("predict_x0", true);
            DisableCorrector = r.IntArray("disable_corrector") ?? [];
        }

        /// <summary>bh1 (B(h) = h) or bh2 (B(h) = expm1(h)).</summary>
        public string SolverType { get; init; } = "bh2";

        /// <summary>Work on data predictions (else noise predictions).</summary>
        public bool PredictX0 { get; init; } = true;

        /// <summary>Steps whose corrector is skipped.</summary>
        public int[] DisableCorrector { get; init; } = [];
    }

    private Options Own => (Options)Solver;
    private int _lowerOrderNums, _thisOrder;
    private bool _haveLast;

    /// <summary>Creates the scheduler for <paramref name="steps"/> steps.</summary>
    public UniPcScheduler(SchedulerConfig config, int steps) : base(config, Descriptor.OptionsOf<Options>(config), steps) { }

    /// <inheritdoc />
    protected override void Reset() { base.Reset(); _lowerOrderNums = 0; _thisOrder = 0; _haveLast = false; }

    private bool X0 => Own.PredictX0;

    /// <summary>(hh, expm1(hh), B(h)) for the step between grid points s and t.</summary>
    private (double Hh, double HPhi1, double B) Phi(double h)
    {
        double hh = X0 ? -h : h;
        double hphi1 = ExpMath.Expm1(hh);
        return (hh, hphi1, Own.SolverType == "bh1" ? hh : hphi1);
    }

    /// <summary>The right-hand side b_k = h phi_{k+1}(hh) k! / B(h), k = 1..order.</summary>
    private static double[] Rhs(int order, double hh, double hphi1, double bh)
    {
        var b = new double[order];
        double hphik = hphi1 / hh - 1, fact = 1;
        for (int k = 1; k <= order; k++)
        {
            b[k - 1] = hphik * fact / bh;
            fact *= k + 1;
            hphik = hphik / hh - 1 / fact;
        }
        return b;
    }

    /// <summary>Solves the small Vandermonde system R rho = b with R[k][j] = r_j^k (Gaussian elimination, n &lt;= 3).</summary>
    private static double[] Solve(double[] rks, double[] b, int n)
    {
        var a = new double[n, n + 1];
        for (int k = 0; k < n; k++)
        {
            for (int j = 0; j < n; j++) a[k, j] = Math.Pow(rks[j], k);
            a[k, n] = b[k];
        }
        for (int c = 0; c < n; c++)
        {
            int p = c;
            for (int r = c + 1; r < n; r++) if (Math.Abs(a[r, c]) > Math.Abs(a[p, c])) p = r;
            for (int j = 0; j <= n; j++) (a[c, j], a[p, j]) = (a[p, j], a[c, j]);
            for (int r = 0; r < n; r++)
            {
                if (r == c) continue;
                double f = a[r, c] / a[c, c];
                for (int j = c; j <= n; j++) a[r, j] -= f * a[c, j];
            }
        }
        var x = new double[n];
        for (int k = 0; k < n; k++) x[k] = a[k, n] / a[k, k];
        return x;
    }

    /// <summary>
    /// Adds the terms of the exponential-integrator update from grid point s (sample <paramref name="x"/>,
    /// history entries 0..order-1) to grid point t, with rho weights on D_k = (m_k - m0) / r_k, plus
    /// an optional corrector term on (mNew - m0).
    /// </summary>
    private void Terms(int s, int t, Tensor x, int order, bool corrector, Tensor? mNew)
    {
        var (at, st) = AlphaSigmaAt(t);
        var (as0, ss0) = AlphaSigmaAt(s);
        double h = LambdaAt(t) - LambdaAt(s);
        var (hh, hphi1, bh) = Phi(h);
        double lead = X0 ? at : st;
        Term(x, X0 ? st / ss0 : at / as0);
        var m0 = History(0);
        double c0 = -lead * hphi1;
        var rks = new double[order];
        for (int k = 1; k < order; k++) rks[k - 1] = (History(k).Lambda - m0.Lambda) / h;
        rks[order - 1] = 1;
        double[] rho = [];
        if (corrector) rho = order == 1 ? [0.5] : Solve(rks, Rhs(order, hh, hphi1, bh), order);
        else if (order == 2) rho = [0.5];
        else if (order == 3) rho = Solve(rks, Rhs(order, hh, hphi1, bh), 2);
        double scale = -lead * bh;
        for (int k = 1; k < order; k++)
        {
            double w = scale * rho[k - 1] / rks[k - 1];
            Term(History(k).T, w);
            c0 -= w;
        }
        if (corrector)
        {
            double w = scale * rho[order - 1];
            Term(mNew!, w);
            c0 -= w;
        }
        Term(m0.T, c0);
    }

    /// <inheritdoc />
    protected override void StepCore(Tensor modelOutput, int i, Tensor sample)
    {
        var last = Scratch(0, sample);
        var converted = ConvertIntoNextSlot(modelOutput, i, sample, X0);
        bool useCorrector = i > 0 && !Own.DisableCorrector.Contains(i - 1) && _haveLast;
        if (useCorrector && LambdaAt(i) != LambdaAt(i - 1))
        {
            // UniC: re-do the previous step from last_sample with the new output; result is this step's sample.
            Terms(i - 1, i, last, _thisOrder, corrector: true, converted);
            Into(last);
        }
        else sample.Device.Copy(sample, last);
        CommitNextSlot(i);
        int order = Own.LowerOrderFinal ? Math.Min(Own.SolverOrder, CallCount - i) : Own.SolverOrder;
        _thisOrder = Math.Min(order, _lowerOrderNums + 1);
        _haveLast = true;
        int use = UsableOrder(_thisOrder);
        if (Own.SolverType == "bh1" && SigmaAt(i + 1) == 0) use = 1;
        if (LambdaAt(i + 1) != LambdaAt(i)) { Terms(i, i + 1, last, use, corrector: false, null); Into(sample); }
        else sample.Device.Copy(last, sample);
        if (_lowerOrderNums < Own.SolverOrder) _lowerOrderNums++;
    }
}
