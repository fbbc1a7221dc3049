using Engine.Core;

namespace Engine.Sampling.Schedulers;

/// <summary>
/// diffusers DPMSolverMultistepScheduler: DPM-Solver (noise prediction) and DPM-Solver++ (data
/// prediction), ODE and SDE variants, orders 1-3, midpoint or heun second-order forms, with
/// lower_order_final / euler_at_final. Beyond diffusers 0.31: a zero-length last step (Karras or
/// uniform-lambda grids ending at sigma_min) leaves the sample unchanged instead of producing NaN,
/// and sde-dpmsolver++ supports order 3 (k-diffusion's DPM++ 3M SDE with eta = 1), and
/// <see cref="ExactThirdOrder"/> gives a third-order 3M (diffusers' 3M is second order).
/// </summary>
public sealed class DpmSolverMultistepScheduler : VpMultistepScheduler
{
    /// <summary>The diffusers class this scheduler implements.</summary>
    public const string DiffusersClass = "DPMSolverMultistepScheduler";

    /// <summary>Momentum of <c>dpmpp_2m_hb</c> and <c>dpmpp_2m_ghvb</c> (the paper's recommended range is 0.7-0.9).</summary>
    public const double HeavyBallBeta = 0.8;

    /// <summary>Registration in <see cref="SchedulerRegistry"/>: thresholding, use_lu_lambdas; the 2M/3M/SDE and momentum short names.</summary>
    public static SchedulerDescriptor Descriptor { get; } = new()
    {
        ClassNames = [DiffusersClass],
        Create = (c, steps) => new DpmSolverMultistepScheduler(c, steps),
        ReadOptions = (r, k) => new Options(r, k),
        SupportsThresholding = true,
        SupportsLuLambdas = true,
        // The noise-prediction algorithms reject final_sigmas_type zero (see the constructor): picked by a short name they end at sigma_min.
        AdjustShortName = c => c.OptionsAs<Options>().AlgorithmType is "dpmsolver" or "sde-dpmsolver" && c.FinalSigmasType == "zero" ? c with { FinalSigmasType = "sigma_min" } : c,
        ShortNames =
        [
            new("dpmpp_3m", "DPM-Solver++ 3M (third order multistep)",
                Pick("dpmsolver++", 3)) { ListOrder = 100 },
            new("dpmpp_3m_exact", "DPM-Solver++ 3M with the Taylor-exact D2 weight: third order, where diffusers' 3M is second order (beyond diffusers)",
                Pick("dpmsolver++", 3)) { Build = (c, steps) => new DpmSolverMultistepScheduler(c, steps) { ExactThirdOrder = true }, ListOrder = 110, Convention = NameConvention.Engine },
            new("dpmpp_2m_hb", "DPM-Solver++ 2M with heavy-ball momentum, beta 0.8 (Wizadwongsa and Suwajanakorn; beyond diffusers)",
                Pick("dpmsolver++", 2)) { Build = (c, steps) => new DpmSolverMultistepScheduler(c, steps) { Momentum = HeavyBallBeta }, ListOrder = 200, Convention = NameConvention.Engine },
            new("dpmpp_2m_ghvb", "DPM-Solver++ 2M with generalized heavy-ball momentum (GHVB), beta 0.8 (beyond diffusers)",
                Pick("dpmsolver++", 2)) { Build = (c, steps) => new DpmSolverMultistepScheduler(c, steps) { GeneralizedMomentum = HeavyBallBeta }, ListOrder = 210, Convention = NameConvention.Engine },
        ],
    };

    // A short name: this class with the algorithm and order, midpoint form, on the model's other keys.
    private static Func<SchedulerConfig, SchedulerConfig> Pick(string algorithm, int order) =>
        c => c.WithClass(DiffusersClass, ("algorithm_type", algorithm), ("solver_order", order), ("solver_type", "midpoint"));

    /// <summary>
    /// DPM-Solver's own options: algorithm_type dpmsolver, dpmsolver++, sde-dpmsolver or sde-dpmsolver++; solver_type
    /// midpoint or heun (the second-order form); euler_at_final.
    /// </summary>
    public sealed record Options : TypedSolverOptions
    {
        /// <summary>Options with the diffusers defaults.</summary>
        public Options() : base("dpmsolver++", "midpoint") { }

        /// <summary>Reads the options; algorithm_type and solver_type take their allowed values from <paramref name="k"/>.</summary>
        public Options(SchedulerConfigReader r, SchedulerDefaults k) : base(r, k) => EulerAtFinal = r.Bool("euler_at_final", false);

        /// <summary>Take a first-order last step.</summary>
        public bool EulerAtFinal { get; init; }
    }

    private Options Own => (Options)Solver;
    private readonly bool _data, _sde;
    private int _lowerOrderNums;

    /// <summary>Creates the scheduler for <paramref name="steps"/> steps.</summary>
    public DpmSolverMultistepScheduler(SchedulerConfig config, int steps) : base(config, Descriptor.OptionsOf<Options>(config), steps)
    {
        _data = Own.AlgorithmType is "dpmsolver++" or "sde-dpmsolver++";
        _sde = Own.AlgorithmType.StartsWith("sde", StringComparison.Ordinal);
        if (!_data && config.FinalSigmasType == "zero")
            throw new SchedulerConfigException($"DPMSolverMultistepScheduler: final_sigmas_type 'zero' is not supported with algorithm_type '{Own.AlgorithmType}'; use final_sigmas_type 'sigma_min' or algorithm_type dpmsolver++ / sde-dpmsolver++.");
        if (Own.AlgorithmType == "sde-dpmsolver" && Own.SolverOrder == 3)
            throw new SchedulerConfigException("DPMSolverMultistepScheduler: solver_order 3 is not supported with algorithm_type 'sde-dpmsolver'; supported: 1, 2.");
    }

    /// <inheritdoc />
    public override bool IsStochastic => _sde;

    /// <inheritdoc />
    public override int NoiseDraws => _sde ? CallCount : 0;

    private double _momentum = 1;
    private bool _haveVelocity;

    /// <summary>
    /// Heavy-ball momentum (Wizadwongsa and Suwajanakorn 2023) on the multistep combination:
    /// v = (1 - beta) v + beta D', where D' is the solver's combined prediction, and the update uses v.
    /// beta = 1 (default) is the plain solver; smaller values damp divergence at low step counts.
    /// </summary>
    public double Momentum
    {
        get => _momentum;
        set
        {
            if (!(value > 0 && value <= 1)) throw new ArgumentOutOfRangeException(nameof(value), value, "Momentum beta must lie in (0, 1].");
            if (value < 1 && _generalizedMomentum < 1) throw new InvalidOperationException("Heavy-ball and generalized heavy-ball momentum cannot be combined.");
            _momentum = value;
        }
    }

    private double _generalizedMomentum = 1;

    /// <summary>
    /// Generalized heavy-ball momentum (GHVB, Wizadwongsa and Suwajanakorn 2023): the momentum acts on
    /// the converted model outputs before the multistep combination, v_i = (1 - beta) v_(i-1) + beta D_i,
    /// and the solver combines the v history. beta = 1 (default) is the plain solver. Exclusive with
    /// <see cref="Momentum"/>.
    /// </summary>
    public double GeneralizedMomentum
    {
        get => _generalizedMomentum;
        set
        {
            if (!(value > 0 && value <= 1)) throw new ArgumentOutOfRangeException(nameof(value), value, "Generalized momentum beta must lie in (0, 1].");
            if (value < 1 && _momentum < 1) throw new InvalidOperationException("Heavy-ball and generalized heavy-ball momentum cannot be combined.");
            _generalizedMomentum = value;
        }
    }

    /// <summary>
    /// Weights the second divided difference D2 of the order-3 update by 2 phi_3 instead of phi_3.
    /// With D2 = (D1_0 - D1_1) / (r0 + r1) ~ h^2 m''/2, the Taylor expansion of the exponential
    /// integral needs 2 phi_3 (phi_3 = phi_2 / h - 1/2); diffusers 0.31, the DPM-Solver reference code and
    /// k-diffusion's 3M SDE all use phi_3, so their h^3 term is off by half and the method is second order
    /// (measured: error ratio ~4 per doubling of steps beyond 40 steps). false (default) keeps diffusers'
    /// update, and its trajectories, exactly; true is the third-order method (ratio ~8). Affects only
    /// order-3 steps.
    /// </summary>
    public bool ExactThirdOrder { get; init; }

    /// <inheritdoc />
    protected override void Reset() { base.Reset(); _lowerOrderNums = 0; _haveVelocity = false; }

    /// <summary>Adds cx x and the prediction terms; with momentum the velocity is combined first, so pending terms are not mixed.</summary>
    private void PredictionTermsFirst(Tensor sample, double cx, ReadOnlySpan<Tensor> m, ReadOnlySpan<double> c, double p1)
    {
        if (_momentum == 1 || p1 == 0) { Term(sample, cx); PredictionTerms(sample, m, c, p1); return; }
        PredictionTerms(sample, m, c, p1);
        Term(sample, cx);
    }

    /// <summary>Adds the combined-prediction terms sum c_k m_k, through the momentum buffer when beta &lt; 1.</summary>
    private void PredictionTerms(Tensor sample, ReadOnlySpan<Tensor> m, ReadOnlySpan<double> c, double p1)
    {
        if (_momentum == 1 || p1 == 0)
        {
            for (int k = 0; k < m.Length; k++) Term(m[k], c[k]);
            return;
        }
        var v = Scratch(1, sample);
        double keep = _haveVelocity ? 1 - _momentum : 0, take = _haveVelocity ? _momentum : 1;
        if (keep != 0) Term(v, keep);
        for (int k = 0; k < m.Length; k++) Term(m[k], take * c[k] / p1);
        Into(v);
        _haveVelocity = true;
        Term(v, p1);
    }

    /// <inheritdoc />
    protected override void StepCore(Tensor modelOutput, int i, Tensor sample)
    {
        int n = CallCount, order = Own.SolverOrder;
        bool lof = i == n - 1 && (Own.EulerAtFinal || (Own.LowerOrderFinal && n < 15) || Config.FinalSigmasType == "zero");
        bool los = i == n - 2 && Own.LowerOrderFinal && n < 15;
        var converted = PushConverted(modelOutput, i, sample, _data);
        if (_generalizedMomentum < 1 && HistoryCount > 1)
            Term(History(1).T, 1 - _generalizedMomentum).Term(converted, _generalizedMomentum).Into(converted);
        int use = order == 1 || _lowerOrderNums < 1 || lof ? 1 : order == 2 || _lowerOrderNums < 2 || los ? 2 : 3;
        if (_lowerOrderNums < order) _lowerOrderNums++;
        Update(i, sample, UsableOrder(use));
    }

    private void Update(int i, Tensor sample, int order)
    {
        var (at, st) = AlphaSigmaAt(i + 1);
        var (as0, ss0) = AlphaSigmaAt(i);
        double lt = LambdaAt(i + 1), ls0 = LambdaAt(i), h = lt - ls0;
        // The SDE variants draw on every step, the last too (where the noise is multiplied by sigma 0).
        Tensor? z = _sde ? DrawNoise(0, sample, i) : null;
        if (!(h != 0)) return; // zero-length step: the exact update is the identity
        // Coefficients on the history entries m0 (newest), m1, m2 of the generic form
        // x_t = cx x + sum c_k m_k (+ cz z).
        double cx, cz = 0;
        double p1, p2, p3; // weights of D0, D1, D2
        if (_data && !_sde)
        {
            double em = ExpMath.Expm1(-h);
            cx = st / ss0;
            p1 = -at * em;
            p2 = Own.SolverType == "midpoint" ? -0.5 * at * em : at * (em / h + 1);
            if (order == 3) p2 = at * (em / h + 1);
            p3 = -at * ((em + h) / (h * h) - 0.5);
        }
        else if (_data)
        {
            double em2 = ExpMath.Expm1(-2 * h);
            cx = st / ss0 * Math.Exp(-h);
            p1 = -at * em2;
            p2 = Own.SolverType == "midpoint" ? -0.5 * at * em2 : at * (em2 / (2 * h) + 1);
            double phi2 = em2 / (2 * h) + 1;
            if (order == 3) p2 = at * phi2;
            p3 = -at * (phi2 / (2 * h) - 0.5);
            cz = st * Math.Sqrt(-em2);
        }
        else if (!_sde)
        {
            double ep = ExpMath.Expm1(h);
            cx = at / as0;
            p1 = -st * ep;
            p2 = Own.SolverType == "midpoint" ? -0.5 * st * ep : -st * (ep / h - 1);
            if (order == 3) p2 = -st * (ep / h - 1);
            p3 = -st * ((ep - h) / (h * h) - 0.5);
        }
        else
        {
            double ep = ExpMath.Expm1(h);
            cx = at / as0;
            p1 = -2 * st * ep;
            p2 = Own.SolverType == "midpoint" ? -st * ep : -2 * st * (ep / h - 1);
            p3 = 0;
            cz = st * Math.Sqrt(ExpMath.Expm1(2 * h));
        }
        if (ExactThirdOrder) p3 *= 2;

        var m0 = History(0);
        if (order == 1)
        {
            PredictionTermsFirst(sample, cx, [m0.T], [p1], p1);
        }
        else if (order == 2)
        {
            var m1 = History(1);
            double r0 = (m0.Lambda - m1.Lambda) / h;
            PredictionTermsFirst(sample, cx, [m0.T, m1.T], [p1 + p2 / r0, -p2 / r0], p1);
        }
        else
        {
            var m1 = History(1);
            var m2 = History(2);
            double r0 = (m0.Lambda - m1.Lambda) / h, r1 = (m1.Lambda - m2.Lambda) / h;
            // D1_0 = (m0 - m1) / r0, D1_1 = (m1 - m2) / r1, D1 = D1_0 + r0 / (r0 + r1) (D1_0 - D1_1), D2 = (D1_0 - D1_1) / (r0 + r1).
            double[] d10 = [1 / r0, -1 / r0, 0], d11 = [0, 1 / r1, -1 / r1];
            double w = r0 / (r0 + r1), v = 1 / (r0 + r1);
            var c = new double[3];
            for (int k = 0; k < 3; k++)
            {
                double diff = d10[k] - d11[k];
                c[k] = p2 * (d10[k] + w * diff) + p3 * v * diff;
            }
            c[0] += p1;
            PredictionTermsFirst(sample, cx, [m0.T, m1.T, m2.T], c, p1);
        }
        if (z is not null) Term(z, cz);
        Into(sample);
    }
}
