using Engine.Core;
using Engine.Sampling.Guidance;
using Engine.Sampling.Schedules;

namespace Engine.Sampling.Tests;

/// <summary>
/// A class-conditional analytic Gaussian for guidance tests: data of class c is N(mu_c, s^2) per
/// element, so the optimal noise prediction at x = a x0 + b eps is eps = (b x - a b mu) / V with
/// V = a^2 s^2 + b^2 (and x0, v from it). The "class embedding" is mu itself: labels look up rows of
/// a table (the last row is the null class), embedding conditioning passes mu directly, the CADS hook
/// transforms the looked-up rows, and perturbed (PAG) rows use a degraded mean 0.5 mu. As a test
/// double it reads labels and timesteps back to the host; the code under test never does.
/// </summary>
public sealed class FakeConditionalModel : IConditionalModel, IDisposable
{
    private readonly Device _device;
    private readonly Tensor _table;
    private readonly TrainingSchedule _training;
    private readonly double _s;
    private Tensor? _emb, _out;

    public FakeConditionalModel(Device device, float[][] classMeans, double dataStd, SchedulerConfig config)
    {
        _device = device;
        Features = classMeans[0].Length;
        _table = device.Upload(classMeans.SelectMany(r => r).ToArray(), classMeans.Length, Features);
        _s = dataStd;
        _training = new TrainingSchedule(config);
        PredictionType = config.PredictionType;
    }

    public int Features { get; }
    public string PredictionType { get; }
    public int Forwards { get; private set; }
    public List<int> RowsPerForward { get; } = [];
    public ConditioningBatch? LastBatch { get; private set; }
    public float[]? LastTimesteps { get; private set; }

    public Tensor Forward(Tensor sample, Tensor timesteps, ConditioningBatch conditioning)
    {
        int rows = sample.Dim(0);
        Assert.That(conditioning.Rows, Is.EqualTo(rows), "conditioning rows");
        Assert.That(timesteps.Length, Is.EqualTo(rows), "timestep rows");
        Forwards++; RowsPerForward.Add(rows); LastBatch = conditioning;
        var ts = timesteps.ToArray();
        LastTimesteps = ts;
        if (_emb is null || _emb.Dim(0) != rows) { _emb?.Dispose(); _emb = _device.Allocate(rows, Features); }
        if (conditioning.ClassLabels is { } labels)
        {
            var l = labels.ToArray();
            for (int r = 0; r < rows; r++) _device.Copy(_table.Slice((int)l[r], 1), _emb.Slice(r, 1));
            conditioning.ClassEmbeddingTransform?.Apply(_emb);
        }
        else _device.Copy(conditioning.Embeddings!, _emb);
        if (_out is null || _out.Length != sample.Length) { _out?.Dispose(); _out = _device.Allocate(sample.ShapeArray()); }
        var output = _out.Reshape(sample.ShapeArray());
        var x = sample.Reshape(rows, Features);
        var o = output.Reshape(rows, Features);
        for (int r = 0; r < rows; r++)
        {
            double sigma = _training.SigmaAt(ts[r]);
            double a = 1 / Math.Sqrt(1 + sigma * sigma), b = sigma * a;
            double v = a * a * _s * _s + b * b;
            double mScale = conditioning.IsPerturbed(r) ? 0.5 : 1;
            double ex = b / v, em = -a * b / v * mScale; // eps = ex x + em mu
            double dx = a * _s * _s / v, dm = b * b / v * mScale; // x0 = dx x + dm mu
            var (cx, cm) = PredictionType switch
            {
                "epsilon" => (ex, em),
                "sample" => (dx, dm),
                "v_prediction" => (a * ex - b * dx, a * em - b * dm),
                _ => throw new ArgumentException(PredictionType),
            };
            _device.LinearCombination(o.Slice(r, 1), [x.Slice(r, 1), _emb.Slice(r, 1)], [(float)cx, (float)cm]);
        }
        return output;
    }

    public void Dispose() { _table.Dispose(); _emb?.Dispose(); _out?.Dispose(); }
}
