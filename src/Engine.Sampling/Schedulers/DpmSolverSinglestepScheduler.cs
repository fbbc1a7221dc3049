using Engine.Core;

namespace Engine.Sampling.Schedulers;

/// <summary>
/// diffusers DPMSolverSinglestepScheduler: steps are grouped by an order list ([1, 2, 3, ...]); each
/// group starts from the sample at its first grid point and every step of the group re-integrates
/// from there with all outputs gathered so far. Beyond diffusers 0.31: a step of order 2 or 3 that
/// ends at sigma 0 (infinite h) uses the newest data prediction, the exact first-order limit,
/// instead of returning inf.
/// </summary>
public sealed class DpmSolverSinglestepScheduler : VpMultistepScheduler
{
    /// <summary>The diffusers class this scheduler implements.</summary>
    public const string DiffusersClass = "DPMSolverSinglestepScheduler";

    /// <summary>Registration in <see cref="SchedulerRegistry"/>: thresholding, no SDE variants; short name <c>dpmpp_2s</c>.</summary>
    public static SchedulerDescriptor Descriptor { get; } = new()
    {
        ClassNames = [DiffusersClass],
        Create = (c, steps) => new DpmSolverSinglestepScheduler(c, steps),
        ReadOptions = (r, k) => new Options(r, k),
        SupportsThresholding = true,
        Validate = c => c.OptionsAs<Options>().AlgorithmType.StartsWith("sde", StringComparison.Ordinal)
            ? $"algorithm_type '{c.OptionsAs<Options>().AlgorithmType}' is not supported by {DiffusersClass}; supported: dpmsolver, dpmsolver++." : null,
        ShortNames =
        [
            new("dpmpp_2s", "DPM-Solver++ 2S (second order singlestep, deterministic)",
                c => c.WithClass(DiffusersClass, ("algorithm_type", "dpmsolver++"), ("solver_order", 2), ("solver_type", "midpoint"))) { ListOrder = 140 },
        ],
    };

    /// <summary>
    /// The singlestep solver's own options: algorithm_type dpmsolver or dpmsolver++ (the SDE variants are rejected),
    /// solver_type midpoint or heun (the second-order form).
    /// </summary>
    public sealed record Options : TypedSolverOptions
    {
        /// <summary>Options with the diffusers defaults.</summary>
        public Options() : base("dpmsolver++", "midpoint") { }

        /// <summary>Reads the options; algorithm_type and solver_type take their allowed values from <paramref name="k"/>.</summary>
        public Options(SchedulerConfigReader r, SchedulerDefaults k) : base(r, k) { }
    }

    private Options Own => (Options)Solver;
    private readonly int[] _orders;
    private readonly bool _data;

    /// <summary>Creates the scheduler for <paramref name="steps"/> steps.</summary>
    public DpmSolverSinglestepScheduler(SchedulerConfig config, int steps) : base(config, Descriptor.OptionsOf<Options>(config), steps, linspaceOnly: true)
    {
        _data = Own.AlgorithmType == "dpmsolver++";
        bool lowerOrderFinal = Own.LowerOrderFinal || steps % Own.SolverOrder != 0 || config.FinalSigmasType == "zero";
        _orders = OrderList(steps, Own.SolverOrder, lowerOrderFinal);
    }

    /// <summary>The order of each step (diffusers get_order_list).</summary>
    public IReadOnlyList<int> Orders => _orders;

    private static int[] OrderList(int steps, int order, bool lowerOrderFinal)
    {
        static IEnumerable<int> Rep(int[] unit, int times) => Enumerable.Repeat(unit, Math.Max(times, 0)).SelectMany(u => u);
        if (order == 1) return Enumerable.Repeat(1, steps).ToArray();
        if (!lowerOrderFinal) return Rep(order == 3 ? [1, 2, 3] : [1, 2], steps / order).ToArray();
        if (order == 3)
            return (steps % 3) switch
            {
                0 => Rep([1, 2, 3], steps / 3 - 1).Concat([1, 2, 1]).ToArray(),
                1 => Rep([1, 2, 3], steps / 3).Append(1).ToArray(),
                _ => Rep([1, 2, 3], steps / 3).Concat([1, 2]).ToArray(),
            };
        return steps % 2 == 0 ? Rep([1, 2], steps / 2 - 1).Concat([1, 1]).ToArray() : Rep([1, 2], steps / 2).Append(1).ToArray();
    }

    /// <inheritdoc />
    protected override void StepCore(Tensor modelOutput, int i, Tensor sample)
    {
        PushConverted(modelOutput, i, sample, _data);
        int order = Math.Min(_orders[i], HistoryCount);
        var start = Scratch(0, sample);
        if (order == 1) sample.Device.Copy(sample, start);
        if (SigmaAt(i + 1) == 0 && order > 1) order = 1; // exact limit at sigma 0 (see class remarks)
        int s = i - (order - 1); // group start grid point
        var x = order == 1 ? sample : start;
        var (at, st) = AlphaSigmaAt(i + 1);
        var (asS, ssS) = AlphaSigmaAt(order == 1 ? i : s);
        double lt = LambdaAt(i + 1);
        if (order == 1)
        {
            double h1 = lt - LambdaAt(i);
            if (!(h1 != 0)) return;
            if (_data) Term(x, st / ssS).Term(History(0).T, -at * ExpMath.Expm1(-h1)).Into(sample);
            else Term(x, at / asS).Term(History(0).T, -st * ExpMath.Expm1(h1)).Into(sample);
            return;
        }
        bool mid = Own.SolverType == "midpoint";
        double h = lt - LambdaAt(s);
        double em = _data ? ExpMath.Expm1(-h) : ExpMath.Expm1(h);
        double cx = _data ? st / ssS : at / asS;
        double lead = _data ? at : st;
        // Weights of D0, D1, D2 in the data (++) or noise form.
        double p1 = -lead * em;
        double p2Heun = _data ? lead * (em / h + 1) : -lead * (em / h - 1);
        double p3 = _data ? -lead * ((em + h) / (h * h) - 0.5) : -lead * ((em - h) / (h * h) - 0.5);
        if (order == 2)
        {
            var m0 = History(0); var m1 = History(1);
            double r0 = (m0.Lambda - m1.Lambda) / h;
            double p2 = mid ? -0.5 * lead * em : p2Heun;
            // D0 = m1, D1 = (m0 - m1) / r0.
            Term(x, cx).Term(m1.T, p1 - p2 / r0).Term(m0.T, p2 / r0).Into(sample);
            return;
        }
        {
            var m0 = History(0); var m1 = History(1); var m2 = History(2);
            double r0 = (m0.Lambda - m2.Lambda) / h, r1 = (m1.Lambda - m2.Lambda) / h;
            // D0 = m2; D1_0 = (m1 - m2) / r1; D1_1 = (m0 - m2) / r0;
            // D1 = (r0 D1_0 - r1 D1_1) / (r0 - r1); D2 = 2 (D1_1 - D1_0) / (r0 - r1). Coefficients on (m0, m1, m2):
            double[] d10 = [0, 1 / r1, -1 / r1], d11 = [1 / r0, 0, -1 / r0];
            var c = new double[3];
            for (int k = 0; k < 3; k++)
            {
                if (mid) c[k] = p2Heun * d11[k];
                else
                {
                    double d1 = (r0 * d10[k] - r1 * d11[k]) / (r0 - r1);
                    double d2 = 2 * (d11[k] - d10[k]) / (r0 - r1);
                    c[k] = p2Heun * d1 + p3 * d2;
                }
            }
            c[2] += p1;
            Term(x, cx).Term(m0.T, c[0]).Term(m1.T, c[1]).Term(m2.T, c[2]).Into(sample);
        }
    }
}
