using Engine.Core;

namespace Engine.Sampling.Plugins;

/// <summary>When FSampler replaces model calls by extrapolation.</summary>
public enum FSamplerMode
{
    /// <summary>Never: every call runs the model.</summary>
    Off,
    /// <summary>A fixed pattern: every <see cref="FSamplerOptions.SkipEvery"/>-th eligible call and the listed calls.</summary>
    Fixed,
    /// <summary>Every eligible call where the h3 and h2 extrapolations agree within <see cref="FSamplerOptions.AgreementTolerance"/>.</summary>
    Adaptive,
}

/// <summary>FSampler settings (defaults as described for the method; mode Off leaves the solver unchanged).</summary>
public sealed record FSamplerOptions
{
    /// <summary>Skip policy.</summary>
    public FSamplerMode Mode { get; init; } = FSamplerMode.Off;

    /// <summary>Extrapolation order: 2 (h2, linear), 3 (h3, quadratic) or 4 (h4, cubic).</summary>
    public int Order { get; init; } = 2;

    /// <summary>Fixed mode: skip call i when (i - ProtectFirst) mod SkipEvery = SkipEvery - 1 (0: only <see cref="SkipCalls"/>).</summary>
    public int SkipEvery { get; init; }

    /// <summary>Fixed mode: call indices to skip (guards still apply).</summary>
    public IReadOnlyCollection<int> SkipCalls { get; init; } = [];

    /// <summary>The first calls that always run the model.</summary>
    public int ProtectFirst { get; init; } = 2;

    /// <summary>The last calls that always run the model.</summary>
    public int ProtectLast { get; init; } = 4;

    /// <summary>Most skipped calls in a row.</summary>
    public int MaxConsecutiveSkips { get; init; } = 2;

    /// <summary>A real call at least every this many calls.</summary>
    public int RealCallEvery { get; init; } = 4;

    /// <summary>Adaptive mode: skip when |h3 - h2| &lt;= tolerance |h3|.</summary>
    public double AgreementTolerance { get; init; } = 0.1;

    /// <summary>EMA factor of the stabilizer's |prediction| / |real| ratio (0: stabilizer off).</summary>
    public double StabilizerDecay { get; init; } = 0.9;

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the first impossible option.</summary>
    public void Validate()
    {
        if (Order is < 2 or > 4) throw new ArgumentOutOfRangeException(nameof(Order), Order, "FSampler order (fsampler_order) must be 2, 3 or 4 (h2, h3, h4).");
        if (SkipEvery < 0 || SkipEvery == 1) throw new ArgumentOutOfRangeException(nameof(SkipEvery), SkipEvery, "FSampler skip period (fsampler_skip_every) must be 0 (off) or >= 2.");
        if (ProtectFirst < 0) throw new ArgumentOutOfRangeException(nameof(ProtectFirst), ProtectFirst, "FSampler protect_first must be >= 0.");
        if (ProtectLast < 0) throw new ArgumentOutOfRangeException(nameof(ProtectLast), ProtectLast, "FSampler protect_last must be >= 0.");
        if (MaxConsecutiveSkips < 1) throw new ArgumentOutOfRangeException(nameof(MaxConsecutiveSkips), MaxConsecutiveSkips, "FSampler max consecutive skips must be >= 1.");
        if (RealCallEvery < 2) throw new ArgumentOutOfRangeException(nameof(RealCallEvery), RealCallEvery, "FSampler real-call period must be >= 2.");
        if (!(AgreementTolerance > 0)) throw new ArgumentOutOfRangeException(nameof(AgreementTolerance), AgreementTolerance, "FSampler adaptive tolerance must be > 0.");
        if (!(StabilizerDecay >= 0 && StabilizerDecay < 1)) throw new ArgumentOutOfRangeException(nameof(StabilizerDecay), StabilizerDecay, "FSampler stabilizer decay must be in [0, 1).");
        foreach (var i in SkipCalls) if (i < 0) throw new ArgumentOutOfRangeException(nameof(SkipCalls), i, "FSampler skip calls must be >= 0.");
    }
}

/// <summary>
/// FSampler: on chosen calls the model is not evaluated; its noise prediction is extrapolated from
/// the history of the previous calls (h2 = 2e_n - e_{n-1}, h3 = 3e_n - 3e_{n-1} + e_{n-2},
/// h4 = 4e_n - 6e_{n-1} + 4e_{n-2} - e_{n-3}), converted to the model's prediction type and handed to
/// the solver, whatever it is. The history holds real model outputs only, at their call indices, and
/// the weights are the Lagrange extrapolation weights over those indices: exactly h2/h3/h4 when the
/// calls are consecutive, and still exact for polynomials of the order's degree across earlier skips.
/// (Feeding extrapolated values back into the history would compound their rounding: with h4 and
/// alternate skips the error grows about six-fold per skip.) Guards: the first and last calls are protected, a limited number of
/// skips in a row, a real call at least every few calls, a history long enough for the order;
/// extrapolations with NaN/Inf or a vanishing norm are rejected (the model runs instead); a
/// stabilizer divides predictions by the EMA of |prediction| / |real| measured on real calls,
/// clamped to [0.5, 2].
/// Deciding to skip a model call is control flow on the host, so a considered skip downloads the
/// squared norms it needs (at most three floats, computed on the device); with the mode Off the
/// model output passes through untouched and nothing is downloaded.
/// </summary>
public sealed class FSampler : DenoiserPlugin
{
    private const int OutputSlot = 4, PredSlot = 5, AltSlot = 6;
    private readonly int[] _index = new int[4];
    private readonly FSamplerOptions _o;
    private readonly HashSet<int> _skipCalls;
    private readonly Tensor[] _terms = new Tensor[4];
    private readonly float[] _coeffs = new float[4];
    private readonly float[] _norms = new float[3];
    private Tensor? _normBuf;
    private int _count, _lastReal, _consecutive;
    private double _ratioEma = 1;

    /// <summary>Wraps <paramref name="inner"/> with the given options.</summary>
    public FSampler(IDenoiser inner, Scheduler scheduler, FSamplerOptions options) : base(inner, scheduler)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _o = options;
        _skipCalls = [.. options.SkipCalls];
    }

    /// <summary>Model calls run in the current (or last) run.</summary>
    public int RealCalls { get; private set; }

    /// <summary>Model calls saved (replaced by extrapolation) in the current (or last) run.</summary>
    public int SkippedCalls { get; private set; }

    /// <summary>Calls of the current run where a skip was considered but a guard rejected the extrapolation.</summary>
    public int RejectedSkips { get; private set; }

    /// <summary>The stabilizer's current |prediction| / |real| ratio (clamped).</summary>
    public double StabilizerRatio => Math.Clamp(_ratioEma, 0.5, 2);

    /// <summary>Indices of the calls that were extrapolated in the current (or last) run.</summary>
    public List<int> SkippedIndices { get; } = [];

    /// <inheritdoc />
    public override Tensor Predict(Tensor modelInput, in DenoiserCall call)
    {
        if (_o.Mode == FSamplerMode.Off) { RealCallsOnly(call.Index); return Inner.Predict(modelInput, call); }
        int i = call.Index;
        if (i == 0) { _count = 0; _lastReal = -1; _consecutive = 0; _ratioEma = 1; RealCalls = SkippedCalls = RejectedSkips = 0; SkippedIndices.Clear(); }
        var x = modelInput;
        if (Eligible(i))
        {
            var like = modelInput;
            var pred = Buffer(PredSlot, like);
            Extrapolate(_o.Order, i, pred);
            var d = like.Device;
            var nb = NormBuffer(d);
            SquaredNorm(pred, nb.Slice(0, 1));
            bool adaptive = _o.Mode == FSamplerMode.Adaptive;
            if (adaptive)
            {
                var h2 = Buffer(AltSlot, like);
                var h3 = _o.Order == 3 ? pred : Buffer(OutputSlot, like);
                if (_o.Order != 3) Extrapolate(3, i, h3);
                Extrapolate(2, i, h2);
                SquaredNorm(h3, nb.Slice(1, 1));
                d.LinearCombination(h2, [h3, h2], [1f, -1f]);
                SquaredNorm(h2, nb.Slice(2, 1));
            }
            d.Download(nb, _norms);
            double norm = Math.Sqrt(_norms[0]);
            bool ok = double.IsFinite(norm) && norm > 1e-12 * Math.Sqrt(pred.Length);
            if (ok && adaptive) ok = double.IsFinite(_norms[1]) && Math.Sqrt(_norms[2]) <= _o.AgreementTolerance * Math.Sqrt(_norms[1]);
            if (ok)
            {
                // The stabilized extrapolation, converted to the model's prediction type.
                _consecutive++; SkippedCalls++; SkippedIndices.Add(i);
                var (ox, oe) = PredictionSpace.OutputFromNoise(PredictionType, call.InputAlpha, call.InputSigma);
                CheckFinite(ox + oe, call, "the output conversion");
                double scale = 1 / StabilizerRatio;
                var output = Buffer(OutputSlot, like);
                if (ox == 0) d.Affine(pred, output, (float)(oe * scale), 0f);
                else d.LinearCombination(output, [x, pred], [(float)ox, (float)(oe * scale)]);
                return output;
            }
            RejectedSkips++;
        }
        var m = Inner.Predict(modelInput, call);
        RecordReal(x.Reshape(m.ShapeArray()), m, call);
        return m;
    }

    private void RealCallsOnly(int i) { if (i == 0) RealCalls = 0; RealCalls++; }

    private bool Eligible(int i)
    {
        if (i < _o.ProtectFirst || i >= Calls - _o.ProtectLast) return false;
        if (_count < Math.Max(_o.Order, _o.Mode == FSamplerMode.Adaptive ? 3 : 0)) return false;
        if (_consecutive >= _o.MaxConsecutiveSkips || i - _lastReal >= _o.RealCallEvery) return false;
        if (_o.Mode == FSamplerMode.Adaptive) return true;
        return _skipCalls.Contains(i) || (_o.SkipEvery > 0 && (i - _o.ProtectFirst) % _o.SkipEvery == _o.SkipEvery - 1);
    }

    private void RecordReal(Tensor x, Tensor m, in DenoiserCall call)
    {
        var d = m.Device;
        var (nx, nm) = PredictionSpace.NoiseFromOutput(PredictionType, call.InputAlpha, call.InputSigma);
        CheckFinite(nx + nm, call, "the noise prediction");
        bool measure = _o.StabilizerDecay > 0 && _count >= _o.Order;
        if (measure)
        {
            // What the extrapolation would have predicted here, against the real value.
            var pred = Buffer(PredSlot, m);
            Extrapolate(_o.Order, call.Index, pred);
            var nb = NormBuffer(d);
            SquaredNorm(pred, nb.Slice(0, 1));
        }
        var slot = Buffer(_count % 4, m);
        _index[_count % 4] = call.Index;
        if (nx == 0) d.Affine(m, slot, (float)nm, 0f);
        else d.LinearCombination(slot, [x, m], [(float)nx, (float)nm]);
        if (measure)
        {
            var nb = NormBuffer(d);
            SquaredNorm(slot, nb.Slice(1, 1));
            d.Download(nb, _norms);
            double ratio = Math.Sqrt(_norms[0] / _norms[1]);
            if (double.IsFinite(ratio) && ratio > 0) _ratioEma = _o.StabilizerDecay * _ratioEma + (1 - _o.StabilizerDecay) * ratio;
        }
        _count++; _consecutive = 0; _lastReal = call.Index; RealCalls++;
    }

    /// <summary>The order-k extrapolation of the newest k history entries to call <paramref name="target"/> into <paramref name="output"/>.</summary>
    private void Extrapolate(int order, int target, Tensor output)
    {
        for (int j = 0; j < order; j++)
        {
            int sj = (_count - 1 - j) % 4;
            double w = 1;
            for (int k = 0; k < order; k++)
            {
                if (k == j) continue;
                int sk = (_count - 1 - k) % 4;
                w *= (double)(target - _index[sk]) / (_index[sj] - _index[sk]);
            }
            _terms[j] = Buffer(sj, output); _coeffs[j] = (float)w;
        }
        output.Device.LinearCombination(output, _terms.AsSpan(0, order), _coeffs.AsSpan(0, order));
        Array.Clear(_terms);
    }

    private static void SquaredNorm(Tensor v, Tensor into)
    {
        int n = (int)v.Length;
        v.Device.MatMul(v.Reshape(1, n), v.Reshape(n, 1), into.Reshape(1, 1));
    }

    private Tensor NormBuffer(Device d)
    {
        if (_normBuf is null || !ReferenceEquals(_normBuf.Device, d)) { _normBuf?.Dispose(); _normBuf = d.Allocate(3); d.Fill(_normBuf, 0f); }
        return _normBuf;
    }

    /// <inheritdoc />
    public override void Dispose() { _normBuf?.Dispose(); _normBuf = null; base.Dispose(); }
}
