using System.Text.Json;
using Engine.Core;

namespace Engine.Sampling.Plugins;

/// <summary>
/// DC-Solver dynamic compensation: before the solver uses call i's output, the data prediction is
/// replaced by the Lagrange interpolation of the last (order + 1) data predictions, taken at their
/// timesteps, evaluated at t' = t_{i-1} + ratio_i (t_i - t_{i-1}). Ratio 1 reproduces the model
/// output; calls with fewer than order + 1 predictions so far are left unchanged. The weights are
/// computed on the host; the output is one linear combination of the input and the history.
/// </summary>
public sealed class DcCompensation : DenoiserPlugin
{
    private readonly double[] _ratios;
    private readonly double[] _nodeT = new double[4];
    private readonly Tensor[] _terms = new Tensor[5];
    private readonly float[] _coeffs = new float[5];
    private int _count;

    /// <summary>Wraps <paramref name="inner"/> with one ratio per model call and interpolation order 1 to 3.</summary>
    public DcCompensation(IDenoiser inner, Scheduler scheduler, IReadOnlyList<double> ratios, int order = 2, string source = "DC-Solver ratios") : base(inner, scheduler)
    {
        ArgumentNullException.ThrowIfNull(ratios);
        if (order < 1 || order > 3) throw new ArgumentOutOfRangeException(nameof(order), order, $"{source}: dc_order must be 1, 2 or 3.");
        if (ratios.Count < Calls) throw new ArgumentException($"{source}: {ratios.Count} ratios for {Calls} model calls; one ratio per call is needed.");
        for (int i = 0; i < ratios.Count; i++)
            if (!double.IsFinite(ratios[i]) || ratios[i] <= 0)
                throw new ArgumentOutOfRangeException(nameof(ratios), ratios[i], $"{source}: ratio {i} must be finite and > 0.");
        _ratios = ratios.ToArray();
        Order = order;
    }

    /// <summary>
    /// Reads ratios from a JSON file: an array of numbers, or an object with "ratios" (array) and an
    /// optional "order".
    /// </summary>
    public static DcCompensation FromJson(IDenoiser inner, Scheduler scheduler, string path, int? order = null)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"DC-Solver ratio file '{path}' does not exist.", path);
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(path));
            var root = doc.RootElement;
            int fileOrder = 2;
            JsonElement arr = root;
            if (root.ValueKind == JsonValueKind.Object)
            {
                if (!root.TryGetProperty("ratios", out arr)) throw new ArgumentException($"DC-Solver ratio file '{path}' has no \"ratios\" array.");
                if (root.TryGetProperty("order", out var o)) fileOrder = o.GetInt32();
            }
            if (arr.ValueKind != JsonValueKind.Array) throw new ArgumentException($"DC-Solver ratio file '{path}': \"ratios\" must be an array of numbers.");
            var ratios = arr.EnumerateArray().Select(e => e.GetDouble()).ToArray();
            return new DcCompensation(inner, scheduler, ratios, order ?? fileOrder, $"DC-Solver ratio file '{path}'");
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException)
        {
            throw new ArgumentException($"DC-Solver ratio file '{path}' is not valid: {e.Message}", e);
        }
    }

    /// <summary>Interpolation order (order + 1 nodes).</summary>
    public int Order { get; }

    /// <summary>The ratio of every call.</summary>
    public IReadOnlyList<double> Ratios => _ratios;

    /// <inheritdoc />
    public override Tensor Predict(Tensor modelInput, in DenoiserCall call)
    {
        var m = Inner.Predict(modelInput, call);
        if (call.Index == 0) _count = 0;
        var d = m.Device;
        var x = modelInput.Reshape(m.ShapeArray());
        int nodes = Order + 1;
        // Ring of data predictions: slot (k mod nodes) holds the k-th call's.
        var (dx, dm) = PredictionSpace.DataFromOutput(PredictionType, call.InputAlpha, call.InputSigma);
        CheckFinite(dx + dm, call, "the data prediction");
        int slot = _count % nodes;
        d.LinearCombination(Buffer(slot, m), [x, m], [(float)dx, (float)dm]);
        _nodeT[slot] = call.Timestep;
        _count++;
        double ratio = _ratios[call.Index];
        if (_count < nodes || ratio == 1) return m;

        double tCur = call.Timestep, tPrev = _nodeT[(_count - 2) % nodes];
        double target = tPrev + ratio * (tCur - tPrev);
        var (ox, od) = PredictionSpace.OutputFromData(PredictionType, call.InputAlpha, call.InputSigma);
        CheckFinite(ox + od, call, "the output conversion");
        int n = 0;
        if (ox != 0) { _terms[n] = x; _coeffs[n++] = (float)ox; }
        for (int j = 0; j < nodes; j++)
        {
            double w = 1;
            for (int k = 0; k < nodes; k++)
                if (k != j) w *= (target - _nodeT[k]) / (_nodeT[j] - _nodeT[k]);
            CheckFinite(w, call, "the Lagrange weight (repeated timesteps)");
            _terms[n] = Buffer(j, m); _coeffs[n++] = (float)(od * w);
        }
        var output = Buffer(4, m);
        d.LinearCombination(output, _terms.AsSpan(0, n), _coeffs.AsSpan(0, n));
        Array.Clear(_terms);
        return output;
    }
}
