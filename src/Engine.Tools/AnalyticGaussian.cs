using Engine.Core;
using Engine.Core.Safetensors;
using Engine.Sampling;

namespace Engine.Tools;

/// <summary>
/// The analytic test model of the scheduler fixtures: data x0 ~ N(mu, diag(s^2)) per element. For a
/// sample x = a x0 + b eps with V = a^2 s^2 + b^2, the optimal predictions are E[eps|x] = b (x - a mu) / V,
/// E[x0|x] = (a s^2 x + b^2 mu) / V, v = a E[eps] - b E[x0] and the flow velocity E[eps] - E[x0]. Every
/// prediction is P x + Q with per-element P, Q, evaluated with a few device ops (no host traffic).
/// The probability-flow ODE keeps the standardised coordinate, which gives the exact solution.
/// </summary>
public sealed class AnalyticGaussian : IDenoiser, IDisposable
{
    private readonly Tensor _mu, _s2, _v, _p, _q;
    private Tensor? _out;

    /// <summary>Uploads mu and s (each the shape of one sample, e.g. [C, H, W]).</summary>
    public AnalyticGaussian(Device device, float[] mu, float[] s, int[] shape, SchedulerConfig config)
    {
        if (mu.Length != s.Length || mu.Length != Tensor.ShapeLength(shape))
            throw new ArgumentException($"AnalyticGaussian: mu ({mu.Length}) and s ({s.Length}) must both match shape {Tensor.ShapeString(shape)}.");
        Config = config;
        Training = config.Kind?.IsFlowMatching == true ? null : new Engine.Sampling.Schedules.TrainingSchedule(config);
        Mu = mu; S = s; Shape = shape;
        _mu = device.Upload(mu, shape);
        _s2 = device.Upload(s.Select(v => v * v).ToArray(), shape);
        _v = device.Allocate(shape); _p = device.Allocate(shape); _q = device.Allocate(shape);
    }

    /// <summary>Loads mu and s from a safetensors file (tensors named <c>mu</c> and <c>s</c>).</summary>
    public static AnalyticGaussian Load(Device device, string path, SchedulerConfig config)
    {
        using var f = SafetensorsFile.Open(path);
        foreach (var name in new[] { "mu", "s" })
            if (!f.Contains(name)) throw new ArgumentException($"Gaussian spec '{path}' has no tensor '{name}'; it needs mu, s (and x_T for a bench run).");
        return new AnalyticGaussian(device, f.ReadFloats("mu"), f.ReadFloats("s"), f.Info("mu").Shape, config);
    }

    /// <summary>The config whose training schedule maps timesteps to noise levels.</summary>
    public SchedulerConfig Config { get; }

    private Engine.Sampling.Schedules.TrainingSchedule? Training { get; }

    /// <summary>Per-element mean of the data.</summary>
    public float[] Mu { get; }

    /// <summary>Per-element standard deviation of the data.</summary>
    public float[] S { get; }

    /// <summary>Shape of one sample.</summary>
    public int[] Shape { get; }

    /// <summary>
    /// When true (default) the model takes its noise level from the timestep as the fixtures do
    /// (log-linear interpolation of training sigmas; flow: t / 1000); when false, from the sampler's own
    /// sigma (<see cref="DenoiserCall.InputAlpha"/>, <see cref="DenoiserCall.InputSigma"/>), which
    /// removes timestep rounding from convergence studies.
    /// </summary>
    public bool UseTimestep { get; set; } = true;

    /// <summary>Number of evaluations so far.</summary>
    public int Calls { get; private set; }

    /// <summary>(a, b) of the model input for a call.</summary>
    public (double A, double B) Coordinates(in DenoiserCall call)
    {
        if (!UseTimestep) return (call.InputAlpha, call.InputSigma);
        if (Training is null) { double sg = call.Timestep / Config.NumTrainTimesteps; return (1 - sg, sg); }
        double sigma = Training.SigmaAt(call.Timestep);
        double a = 1 / Math.Sqrt(1 + sigma * sigma);
        return (a, sigma * a);
    }

    /// <inheritdoc />
    public Tensor Predict(Tensor modelInput, in DenoiserCall call)
    {
        var d = modelInput.Device;
        var (a, b) = Coordinates(call);
        // P = (p1 + p2 s^2) / V and Q = q mu / V for the configured prediction type.
        double p1, p2, q;
        switch (Config.PredictionType)
        {
            case "epsilon": p1 = b; p2 = 0; q = -a * b; break;
            case "sample": p1 = 0; p2 = a; q = b * b; break;
            case "v_prediction": p1 = a * b; p2 = -a * b; q = -b * (a * a + b * b); break;
            case "flow": p1 = b; p2 = -a; q = -b * (a + b); break;
            default: throw new SchedulerConfigException($"AnalyticGaussian: prediction_type '{Config.PredictionType}' is not supported.");
        }
        d.Affine(_s2, _v, (float)(a * a), (float)(b * b));
        d.Affine(_s2, _p, (float)p2, (float)p1);
        d.Binary(BinaryOp.Div, _p, _v, _p);
        d.Binary(BinaryOp.Div, _mu, _v, _q);
        if (_out is null || _out.Length != modelInput.Length) { _out?.Dispose(); _out = d.Allocate(modelInput.ShapeArray()); }
        var outView = _out.Reshape(modelInput.ShapeArray());
        d.Mul(modelInput, _p, outView);
        d.Affine(_q, _q, (float)q, 0f);
        d.Add(outView, _q, outView);
        Calls++;
        return outView;
    }

    /// <summary>
    /// The exact probability-flow ODE solution, in double: x1 = a1 mu + sqrt(a1^2 s^2 + b1^2) (x0 - a0 mu) / sqrt(a0^2 s^2 + b0^2)
    /// for a batch <paramref name="xStart"/> at coordinates (a0, b0) carried to (a1, b1).
    /// </summary>
    public float[] Exact(ReadOnlySpan<float> xStart, (double A, double B) from, (double A, double B) to)
    {
        int m = Mu.Length;
        if (xStart.Length % m != 0) throw new ArgumentException($"AnalyticGaussian.Exact: {xStart.Length} values are not a whole batch of {m}.");
        var r = new float[xStart.Length];
        for (int k = 0; k < xStart.Length; k++)
        {
            double mu = Mu[k % m], s = S[k % m];
            double z = (xStart[k] - from.A * mu) / Math.Sqrt(from.A * from.A * s * s + from.B * from.B);
            r[k] = (float)(to.A * mu + Math.Sqrt(to.A * to.A * s * s + to.B * to.B) * z);
        }
        return r;
    }

    /// <summary>Releases the device tensors.</summary>
    public void Dispose()
    {
        _mu.Dispose(); _s2.Dispose(); _v.Dispose(); _p.Dispose(); _q.Dispose(); _out?.Dispose();
    }
}
