using Engine.Core;
using Engine.Sampling.Schedules;

namespace Engine.Sampling.Schedulers;

/// <summary>
/// diffusers FlowMatchEulerDiscreteScheduler (static shift): x_t = (1 - sigma) x0 + sigma eps, the
/// model predicts the velocity eps - x0, Euler in sigma: x += (sigma_next - sigma) v. Sigmas are
/// linear in t from sigma_max to sigma_min of the shifted training grid, then shifted, then 0.
/// </summary>
public sealed class FlowMatchEulerScheduler : Scheduler
{
    /// <summary>The diffusers class this scheduler implements.</summary>
    public const string DiffusersClass = "FlowMatchEulerDiscreteScheduler";

    /// <summary>Registration in <see cref="SchedulerRegistry"/>: flow prediction always, no training schedule bound on steps, no sigma grids; short name <c>flow_euler</c>.</summary>
    public static SchedulerDescriptor Descriptor { get; } = new()
    {
        ClassNames = [DiffusersClass],
        Create = (c, steps) => new FlowMatchEulerScheduler(c, steps),
        ReadOptions = (r, _) => new Options { Shift = r.Num("shift", 1.0) },
        Defaults = new() { FixedPredictionType = "flow" },
        IsFlowMatching = true,
        HasSigmaGrid = false,
        ShortNames =
        [
            new("flow_euler", "Flow-matching Euler (rectified-flow models, static shift)",
                c => c.WithClass(DiffusersClass) with { PredictionType = "flow" }) { ListOrder = 230 },
        ],
    };

    /// <summary>The flow-matching option: the static time shift.</summary>
    public sealed record Options : SchedulerOptions
    {
        /// <summary>Time shift s: sigma' = s sigma / (1 + (s - 1) sigma).</summary>
        public double Shift { get; init; } = 1.0;
    }

    private readonly double[] _sigmas;

    /// <summary>Creates the scheduler for <paramref name="steps"/> steps.</summary>
    public FlowMatchEulerScheduler(SchedulerConfig config, int steps) : base(config, steps)
    {
        int N = config.NumTrainTimesteps;
        double shift = Descriptor.OptionsOf<Options>(config).Shift;
        double Shifted(double s) => (double)(float)SigmaGrids.FlowShift(s, shift);
        double sMax = Shifted(1.0), sMin = Shifted(1.0 / N);
        var ts = SigmaGrids.Linspace(sMax * N, sMin * N, steps);
        var sig = ts.Select(t => SigmaGrids.FlowShift(t / N, shift)).ToArray();
        _sigmas = sig.Append(0).Select(s => (double)(float)s).ToArray();
        Timesteps = sig.Select(s => (double)(float)(s * N)).ToArray();
        Sigmas = _sigmas;
    }

    /// <inheritdoc />
    public override DenoiserCall Call(int i) => new(i, Timesteps[i], _sigmas[i], 1 - _sigmas[i], _sigmas[i]);

    /// <inheritdoc />
    public override (double Alpha, double Sigma) FinalCoordinates => (1 - _sigmas[^1], _sigmas[^1]);

    /// <inheritdoc />
    protected override void StepCore(Tensor modelOutput, int i, Tensor sample) =>
        Term(sample, 1).Term(modelOutput, _sigmas[i + 1] - _sigmas[i]).Into(sample);
}
