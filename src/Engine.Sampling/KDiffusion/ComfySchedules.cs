using Engine.Sampling.Schedules;

namespace Engine.Sampling.KDiffusion;

/// <summary>
/// ComfyUI's sigma grids (its <c>--schedule</c> names) on a model's discrete training schedule, each
/// descending and ending in a final 0. Training sigmas are sqrt((1 - alphabar) / alphabar); sigma_max and
/// sigma_min are the last and first of them. Grids are rounded to float32 as ComfyUI holds them.
/// </summary>
public static class ComfySchedules
{
    /// <summary>The schedule names, in the order <c>engine samplers</c> lists them, with one line each.</summary>
    public static IReadOnlyList<(string Name, string Description)> All { get; } =
    [
        ("normal", "evenly spaced fractional timesteps from t_max to 0 (linspace), log-sigma interpolated; ends at sigma_min"),
        ("karras", "Karras et al. sigmas (rho 7) from sigma_max to sigma_min"),
        ("exponential", "log-linear sigmas from sigma_max to sigma_min"),
        ("sgm_uniform", "linspace(t_max, 0, N + 1) without its last point: stops at sigma(t_max / N), not sigma_min"),
        ("simple", "every (T / N)-th training sigma from the top, index truncated"),
        ("ddim_uniform", "training sigmas at 1, 1 + T // N, 1 + 2 (T // N), ... (may give more than N steps)"),
        ("beta", "Beta(0.6, 0.6) quantiles of the timestep range, rounded; repeated timesteps dropped"),
    ];

    /// <summary>True when <paramref name="name"/> is one of ComfyUI's schedules.</summary>
    public static bool IsKnown(string name) => All.Any(s => s.Name == name);

    /// <summary>
    /// The grid of <paramref name="name"/> for <paramref name="steps"/> steps: the sigmas of the step
    /// boundaries, final 0 included. Throws <see cref="SchedulerConfigException"/> for an unknown name.
    /// </summary>
    public static double[] Build(TrainingSchedule training, string name, int steps)
    {
        ArgumentNullException.ThrowIfNull(training);
        if (steps < 1) throw new ArgumentOutOfRangeException(nameof(steps), steps, "The number of steps must be at least 1.");
        double[] sig = training.Sigmas;
        double sMin = sig[0], sMax = sig[^1];
        int tMax = sig.Length - 1;
        double[] grid = name switch
        {
            "normal" => LinspaceF32(tMax, 0, steps).Select(t => SigmaAt(training, t)).ToArray(),
            "sgm_uniform" => LinspaceF32(tMax, 0, steps + 1).Take(steps).Select(t => SigmaAt(training, t)).ToArray(),
            "karras" => Karras(sMin, sMax, steps),
            "exponential" => LinspaceF32((float)Math.Log(sMax), (float)Math.Log(sMin), steps).Select(v => (double)MathF.Exp((float)v)).ToArray(),
            "simple" => Enumerable.Range(0, steps).Select(x => sig[sig.Length - 1 - (int)(x * ((double)sig.Length / steps))]).ToArray(),
            "ddim_uniform" => DdimUniform(sig, steps),
            "beta" => Beta(sig, steps, 0.6, 0.6),
            _ => throw new SchedulerConfigException($"Unknown schedule '{name}'; ComfyUI's schedules: {string.Join(", ", All.Select(s => s.Name))}."),
        };
        return grid.Select(s => (double)(float)s).Append(0.0).ToArray();
    }

    /// <summary>
    /// Drops the penultimate sigma of a grid built for one step more (ComfyUI does so for dpm_2,
    /// dpm_2_ancestral and its UniPC samplers, whose last real step would otherwise be tiny).
    /// </summary>
    public static double[] DropPenultimate(double[] grid) =>
        grid.Length < 3 ? grid : [.. grid.AsSpan(0, grid.Length - 2), grid[^1]];

    /// <summary>
    /// The integer training timestep nearest in log sigma (ComfyUI's model timestep for a sigma). A sigma
    /// halfway in log sigma between two training sigmas (the normal grid's t = k + 0.5) goes to the lower
    /// timestep, as an argmin over equal distances does; float32 rounding would otherwise decide it.
    /// </summary>
    public static int NearestTimestep(TrainingSchedule training, double sigma)
    {
        ArgumentNullException.ThrowIfNull(training);
        const double tie = 1e-6; // in log sigma: far above float32 rounding (~1e-7), far below half a timestep's spacing (> 1e-3)
        double ls = Math.Log(sigma);
        int best = 0;
        double bestDist = double.PositiveInfinity;
        for (int i = 0; i < training.LogSigmas.Length; i++)
        {
            double d = Math.Abs(ls - training.LogSigmas[i]);
            if (d < bestDist - tie) { bestDist = d; best = i; }
        }
        return best;
    }

    // sigma(t) at a fractional timestep: log sigma interpolated between the neighbouring integers (float32, as ComfyUI).
    private static double SigmaAt(TrainingSchedule training, double t)
    {
        var s = training.Sigmas;
        t = Math.Clamp(t, 0, s.Length - 1);
        int lo = (int)Math.Floor(t), hi = (int)Math.Ceiling(t);
        float w = (float)(t - lo);
        float log = (1 - w) * MathF.Log((float)s[lo]) + w * MathF.Log((float)s[hi]);
        return MathF.Exp(log);
    }

    // torch.linspace in float32 (start + i step for the first half, end - (n - 1 - i) step for the rest).
    private static double[] LinspaceF32(float start, float end, int n) =>
        TrainingSchedule.LinspaceF32(start, end, n).Select(v => (double)v).ToArray();

    private static double[] Karras(double sigmaMin, double sigmaMax, int n, float rho = 7f)
    {
        var ramp = TrainingSchedule.LinspaceF32(0f, 1f, n);
        // k-diffusion takes the 1/rho powers of the Python floats, then works on a float32 ramp.
        float lo = (float)Math.Pow(sigmaMin, 1.0 / rho), hi = (float)Math.Pow(sigmaMax, 1.0 / rho);
        return ramp.Select(r => (double)MathF.Pow(hi + r * (lo - hi), rho)).ToArray();
    }

    private static double[] DdimUniform(double[] sig, int steps)
    {
        int stride = Math.Max(sig.Length / steps, 1);
        var r = new List<double>();
        for (int x = 1; x < sig.Length; x += stride) r.Add(sig[x]);
        r.Reverse();
        return [.. r];
    }

    private static double[] Beta(double[] sig, int steps, double alpha, double beta)
    {
        int total = sig.Length - 1;
        var r = new List<double>();
        double last = -1;
        for (int i = 0; i < steps; i++)
        {
            double u = 1 - (double)i / steps; // 1 - linspace(0, 1, steps, endpoint=False)
            double t = Math.Round(BetaDistribution.InverseCdf(u, alpha, beta) * total, MidpointRounding.ToEven);
            if (t != last) r.Add(sig[(int)t]);
            last = t;
        }
        return [.. r];
    }
}
