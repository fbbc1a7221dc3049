using Engine.Core;

namespace Engine.Sampling.Plugins;

/// <summary>
/// HiGS (history-guided sampling): keeps an exponential moving average of past data predictions,
/// ema &lt;- alpha ema + (1 - alpha) x0, and inside the trajectory window t in [WindowLow, WindowHigh]
/// (t = 1 - call / calls) pushes the current prediction away from it: x0' = x0 + w (x0 - ema_prev).
/// Works in the data (x0) space through the prediction type, for any solver; weight 0 is the plain
/// model. Two linear combinations per call, buffers reused.
/// </summary>
public sealed class HistoryGuidance : DenoiserPlugin
{
    private bool _hasEma;

    /// <summary>Wraps <paramref name="inner"/> with weight <paramref name="weight"/>, EMA factor <paramref name="alpha"/> and the window.</summary>
    public HistoryGuidance(IDenoiser inner, Scheduler scheduler, double weight, double alpha = 0.75, double windowLow = 0.4, double windowHigh = 0.95) : base(inner, scheduler)
    {
        if (!double.IsFinite(weight)) throw new ArgumentOutOfRangeException(nameof(weight), weight, "HiGS weight (higs_weight) must be finite.");
        if (!(alpha >= 0 && alpha < 1)) throw new ArgumentOutOfRangeException(nameof(alpha), alpha, "HiGS EMA factor (higs_alpha) must be in [0, 1).");
        if (!(windowLow >= 0 && windowHigh <= 1 && windowLow <= windowHigh))
            throw new ArgumentOutOfRangeException(nameof(windowLow), $"HiGS window [{windowLow}, {windowHigh}] must satisfy 0 <= low <= high <= 1.");
        Weight = weight; Alpha = alpha; WindowLow = windowLow; WindowHigh = windowHigh;
    }

    /// <summary>Guidance weight w_h.</summary>
    public double Weight { get; }

    /// <summary>EMA factor alpha.</summary>
    public double Alpha { get; }

    /// <summary>Lower end of the window in trajectory time.</summary>
    public double WindowLow { get; }

    /// <summary>Upper end of the window in trajectory time.</summary>
    public double WindowHigh { get; }

    /// <inheritdoc />
    public override Tensor Predict(Tensor modelInput, in DenoiserCall call)
    {
        var m = Inner.Predict(modelInput, call);
        if (Weight == 0) return m;
        if (call.Index == 0) _hasEma = false;
        var d = m.Device;
        var x = modelInput.Reshape(m.ShapeArray());
        var (dx, dm) = PredictionSpace.DataFromOutput(PredictionType, call.InputAlpha, call.InputSigma);
        CheckFinite(dx + dm, call, "the data prediction");
        var x0 = Buffer(0, m);
        var ema = Buffer(1, m);
        d.LinearCombination(x0, [x, m], [(float)dx, (float)dm]);
        Tensor result = m;
        double t = TrajectoryTime(call.Index);
        if (_hasEma && t >= WindowLow && t <= WindowHigh)
        {
            var (ox, od) = PredictionSpace.OutputFromData(PredictionType, call.InputAlpha, call.InputSigma);
            CheckFinite(ox + od, call, "the output conversion");
            result = Buffer(2, m);
            d.LinearCombination(result, [x, x0, ema], [(float)ox, (float)(od * (1 + Weight)), (float)(-od * Weight)]);
        }
        if (_hasEma) d.LinearCombination(ema, [ema, x0], [(float)Alpha, (float)(1 - Alpha)]);
        else { d.Copy(x0, ema); _hasEma = true; }
        return result;
    }
}
