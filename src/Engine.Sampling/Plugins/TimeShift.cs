using Engine.Core;

namespace Engine.Sampling.Plugins;

/// <summary>
/// Time-shift sampler (Li et al., exposure bias): before each model call with timestep t &gt; cutoff,
/// the per-sample variance v of the model input is measured and, among the training timesteps within
/// +-<see cref="Window"/> of t, the one whose noise variance 1 - alphabar is closest to v is passed to
/// the model instead of t. The solver keeps its own grid; only the model's conditioning timestep moves.
/// Everything runs on the device: v comes from <see cref="RowStatistics"/>, and because 1 - alphabar
/// increases with t, the closest candidate is lo + #(midpoints between neighbouring candidates below
/// v), counted with saturated ramps (relu(1 - relu(1 - K d)) with a huge K is the step function) and a
/// MatMul against ones. The midpoints of every call are uploaded once, at construction.
/// Use it as the guidance options' timestep provider (<c>GuidanceOptions.Timesteps</c>).
/// </summary>
public sealed class TimeShift : ITimestepProvider, IDisposable
{
    // Steepness of the step function: differences above 1e-20 count as a full step; values up to
    // ~1e18 stay finite in float32.
    private const float Steep = 1e20f;
    private readonly Tensor? _mids;
    private readonly int[] _lo;
    private readonly int _width;
    private readonly RowStatistics _stats = new();
    private Tensor? _std, _diff, _ramp, _ones;

    /// <summary>Precomputes the candidate midpoints of every call of <paramref name="scheduler"/> on <paramref name="device"/>.</summary>
    public TimeShift(Device device, Scheduler scheduler, int window, double cutoff = 0)
    {
        ArgumentNullException.ThrowIfNull(device);
        ArgumentNullException.ThrowIfNull(scheduler);
        if (window < 0) throw new ArgumentOutOfRangeException(nameof(window), window, "Time-shift window (ts_window) must be >= 0 training steps.");
        if (!double.IsFinite(cutoff) || cutoff < 0) throw new ArgumentOutOfRangeException(nameof(cutoff), cutoff, "Time-shift cutoff (ts_cutoff) must be a finite timestep >= 0.");
        if (window > 0 && scheduler.Config.PredictionType == "flow")
            throw new ArgumentException("Time-shift needs a VP training schedule (alphas_cumprod); flow-matching models have none.");
        Window = window; Cutoff = cutoff;
        int calls = scheduler.CallCount;
        _lo = new int[calls];
        _width = Math.Max(1, 2 * window);
        if (window == 0) return;
        var abar = scheduler.Training.AlphasCumprod;
        int tMax = abar.Length - 1;
        var mids = new float[calls * _width];
        Array.Fill(mids, float.MaxValue);
        for (int i = 0; i < calls; i++)
        {
            int t = (int)Math.Round(scheduler.Timesteps[i]);
            int lo = Math.Clamp(t - window, 0, tMax), hi = Math.Clamp(t + window, 0, tMax);
            _lo[i] = lo;
            for (int k = lo; k < hi; k++)
                mids[i * _width + (k - lo)] = (float)(1 - 0.5 * (abar[k] + abar[k + 1]));
        }
        _mids = device.Upload(mids, calls, _width);
    }

    /// <summary>Half-width of the search in training timesteps.</summary>
    public int Window { get; }

    /// <summary>The shift applies only while the nominal timestep is above this.</summary>
    public double Cutoff { get; }

    /// <inheritdoc />
    public void Fill(Tensor modelInput, in DenoiserCall call, Tensor timesteps)
    {
        var d = modelInput.Device;
        if (Window == 0 || call.Timestep <= Cutoff || _mids is null) { d.Fill(timesteps, (float)call.Timestep); return; }
        if ((uint)call.Index >= (uint)_lo.Length) throw new ArgumentOutOfRangeException(nameof(call), call.Index, $"Time-shift was set up for {_lo.Length} calls.");
        int b = modelInput.Dim(0);
        var x = modelInput.Reshape(b, -1);
        if (_std is null || _std.Dim(0) != b || !ReferenceEquals(_std.Device, d))
        {
            _std?.Dispose(); _diff?.Dispose(); _ramp?.Dispose(); _ones?.Dispose();
            _std = d.Allocate(b, 1); _diff = d.Allocate(b, _width); _ramp = d.Allocate(b, _width); _ones = d.Allocate(_width, 1);
            d.Fill(_ones, 1f);
        }
        _stats.Std(x, _std);
        d.Mul(_std, _std, _std);
        d.Binary(BinaryOp.Sub, _std, _mids.Slice(call.Index, 1), _diff!);
        // step(d) = clamp(K d, 0, 1) = relu(1 - relu(1 - K d)): no cancellation of large values.
        d.Affine(_diff!, _diff!, -Steep, 1f);
        d.Activate(_diff!, _diff!, Activation.Relu);
        d.Affine(_diff!, _diff!, -1f, 1f);
        d.Activate(_diff!, _ramp!, Activation.Relu);
        var count = timesteps.Reshape(b, 1);
        d.MatMul(_ramp!, _ones!, count);
        d.Affine(count, count, 1f, _lo[call.Index]);
    }

    /// <summary>Releases the device tensors.</summary>
    public void Dispose()
    {
        _mids?.Dispose(); _std?.Dispose(); _diff?.Dispose(); _ramp?.Dispose(); _ones?.Dispose(); _stats.Dispose();
        _std = _diff = _ramp = _ones = null;
    }
}
