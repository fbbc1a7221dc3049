using Engine.Core;
using Engine.Core.Safetensors;
using Engine.Sampling;

namespace Engine.Tools;

/// <summary>One solver run on the analytic Gaussian model: final sample, exact ODE solution and error.</summary>
public sealed record SolverBenchResult(string Solver, int Steps, int ModelCalls, int[] Shape, float[] Final, float[] Exact, double RmsError, double MaxAbsError)
{
    /// <summary>Writes <c>final</c>, <c>exact</c> and <c>error</c> (final - exact) to a safetensors file.</summary>
    public void WriteOutput(string path)
    {
        var error = new float[Final.Length];
        for (int k = 0; k < error.Length; k++) error[k] = Final[k] - Exact[k];
        SafetensorsWriter.Write(path,
            [new("final", Shape, Final), new("exact", Shape, Exact), new("error", Shape, error)],
            new Dictionary<string, string> { ["solver"] = Solver, ["steps"] = Steps.ToString(System.Globalization.CultureInfo.InvariantCulture), ["rms_error"] = RmsError.ToString("R", System.Globalization.CultureInfo.InvariantCulture) });
    }
}

/// <summary>A row of an error-vs-steps table.</summary>
public sealed record ConvergenceRow(string Solver, int[] Steps, double[] RmsErrors, int[] ModelCalls)
{
    /// <summary>Slope of log error against log steps between the first and last entries (the empirical order).</summary>
    public double Order => -Math.Log(RmsErrors[^1] / RmsErrors[0]) / Math.Log((double)Steps[^1] / Steps[0]);

    /// <summary>
    /// Least-squares slope of log error against log steps through every entry: the empirical order
    /// read from all step counts, less sensitive than <see cref="Order"/> to one end point that sits
    /// off the line (with three step counts in geometric progression the two agree).
    /// </summary>
    public double FittedOrder
    {
        get
        {
            int n = Steps.Length;
            double mx = 0, my = 0;
            for (int i = 0; i < n; i++) { mx += Math.Log(Steps[i]); my += Math.Log(RmsErrors[i]); }
            mx /= n; my /= n;
            double sxy = 0, sxx = 0;
            for (int i = 0; i < n; i++)
            {
                double dx = Math.Log(Steps[i]) - mx;
                sxy += dx * (Math.Log(RmsErrors[i]) - my);
                sxx += dx * dx;
            }
            return -sxy / sxx;
        }
    }
}

/// <summary>
/// Measures solvers on the analytic Gaussian model (fixtures' <c>analytic_model</c>), where the exact
/// probability-flow ODE solution is known in closed form: final sample, exact answer, error, and
/// error-vs-steps tables with empirical orders.
/// </summary>
public static class SolverBench
{
    /// <summary>Runs a scheduler config from a scheduler_config.json path.</summary>
    public static SolverBenchResult Run(string configJsonPath, int steps, string gaussianFile, Device device, bool exactSigma = false) =>
        Run(SchedulerConfig.Load(configJsonPath), steps, gaussianFile, device, exactSigma);

    /// <summary>
    /// Runs <paramref name="config"/> for <paramref name="steps"/> steps on the Gaussian spec in
    /// <paramref name="gaussianFile"/> (tensors <c>mu</c>, <c>s</c>, and <c>noise</c> [B, ...] unit
    /// initial noise, or <c>x_T</c> used as unit noise when <c>noise</c> is absent). With
    /// <paramref name="exactSigma"/> the model uses the sampler's own noise level instead of the timestep.
    /// </summary>
    public static SolverBenchResult Run(SchedulerConfig config, int steps, string gaussianFile, Device device, bool exactSigma = false)
    {
        using var sch = SchedulerFactory.Create(config, steps);
        return Run(sch, config.ClassName, gaussianFile, device, exactSigma);
    }

    /// <summary>
    /// Runs an already built scheduler (for engine-only options such as ending at sigma_min). A stochastic
    /// scheduler without a noise source takes the spec's <c>step_noise</c> draws, else Philox noise of seed 0.
    /// </summary>
    public static SolverBenchResult Run(Scheduler scheduler, string solverName, string gaussianFile, Device device, bool exactSigma = false)
    {
        ArgumentNullException.ThrowIfNull(scheduler);
        if (!File.Exists(gaussianFile)) throw new FileNotFoundException($"Gaussian spec '{gaussianFile}' does not exist.", gaussianFile);
        using var file = SafetensorsFile.Open(gaussianFile);
        string noiseName = file.Contains("noise") ? "noise" : file.Contains("x_T") ? "x_T" : throw new ArgumentException($"Gaussian spec '{gaussianFile}' has neither 'noise' nor 'x_T'.");
        var noise = file.ReadFloats(noiseName);
        var shape = file.Info(noiseName).Shape;
        using var model = AnalyticGaussian.Load(device, gaussianFile, scheduler.Config);
        model.UseTimestep = !exactSigma;
        if (noise.Length % model.Mu.Length != 0) throw new ArgumentException($"Gaussian spec '{gaussianFile}': '{noiseName}' {Tensor.ShapeString(shape)} is not a batch of mu's shape {Tensor.ShapeString(model.Shape)}.");
        // Recorded draws when the spec has them (checked against the run's draws), else the engine's generator (seed 0).
        scheduler.Noise = GaussianStepNoise.Read(file, gaussianFile, shape, scheduler) ?? scheduler.Noise ?? new PhiloxNoise(0);
        using var x = device.Upload(noise, shape);
        double init = scheduler.InitNoiseSigma;
        if (init != 1) device.Affine(x, x, (float)init, 0f);
        var start = x.ToArray();
        Sampler.Run(scheduler, model, x);
        var final = x.ToArray();
        var exact = model.Exact(start, scheduler.InitialCoordinates, scheduler.FinalCoordinates);
        double sq = 0, max = 0;
        for (int k = 0; k < final.Length; k++)
        {
            double e = (double)final[k] - exact[k];
            sq += e * e;
            max = Math.Max(max, Math.Abs(e));
        }
        return new SolverBenchResult(solverName, scheduler.InferenceSteps, model.Calls, shape, final, exact, Math.Sqrt(sq / final.Length), double.IsNaN(sq) ? double.NaN : max);
    }

    /// <summary>Error-vs-steps table for named scheduler factories (steps -> scheduler).</summary>
    public static IReadOnlyList<ConvergenceRow> Table(IEnumerable<(string Name, Func<int, Scheduler> Create)> solvers, IReadOnlyList<int> steps, string gaussianFile, Device device, bool exactSigma = true)
    {
        var rows = new List<ConvergenceRow>();
        foreach (var (name, create) in solvers)
        {
            var errs = new double[steps.Count];
            var calls = new int[steps.Count];
            for (int k = 0; k < steps.Count; k++)
            {
                using var sch = create(steps[k]);
                var r = Run(sch, name, gaussianFile, device, exactSigma);
                errs[k] = r.RmsError;
                calls[k] = r.ModelCalls;
            }
            rows.Add(new ConvergenceRow(name, [.. steps], errs, calls));
        }
        return rows;
    }

    /// <summary>
    /// Formats a table as aligned text: solver, rms error per step count, and the empirical order
    /// between the first and last step counts ("order") and fitted through all of them ("fitted").
    /// </summary>
    public static string Format(IReadOnlyList<ConvergenceRow> rows)
    {
        if (rows.Count == 0) return "";
        var sb = new System.Text.StringBuilder();
        sb.Append($"{"solver",-34}");
        foreach (var s in rows[0].Steps) sb.Append($"{"n=" + s,12}");
        sb.AppendLine($"{"order",8}{"fitted",8}");
        foreach (var r in rows)
        {
            sb.Append($"{r.Solver,-34}");
            foreach (var e in r.RmsErrors) sb.Append($"{e,12:E3}");
            sb.AppendLine($"{r.Order,8:F2}{r.FittedOrder,8:F2}");
        }
        return sb.ToString();
    }
}
