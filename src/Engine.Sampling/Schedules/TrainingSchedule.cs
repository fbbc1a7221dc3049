namespace Engine.Sampling.Schedules;

/// <summary>
/// The training noise schedule of a diffusers scheduler: betas and alphas_cumprod, computed with the
/// float32 rounding diffusers uses (torch.linspace and cumprod in float32), held as doubles. All
/// derived quantities (sigmas, lambdas, interpolation) are then computed in double precision.
/// </summary>
public sealed class TrainingSchedule
{
    /// <summary>Per-timestep betas (float32 values).</summary>
    public double[] Betas { get; }

    /// <summary>Cumulative products of (1 - beta) (float32 values as diffusers holds them).</summary>
    public double[] AlphasCumprod { get; }

    /// <summary>Karras sigmas of the training timesteps: sqrt((1 - alphabar) / alphabar).</summary>
    public double[] Sigmas { get; }

    /// <summary>log of <see cref="Sigmas"/>, the table timesteps are interpolated in.</summary>
    public double[] LogSigmas { get; }

    /// <summary>Number of training timesteps.</summary>
    public int Count => Betas.Length;

    /// <summary>Builds the schedule from a config (betas, optional zero-terminal-SNR rescale).</summary>
    public TrainingSchedule(SchedulerConfig config)
    {
        int n = config.NumTrainTimesteps;
        float[] betas;
        if (config.TrainedBetas is { } tb) betas = tb.Select(b => (float)b).ToArray();
        else betas = config.BetaSchedule switch
        {
            "linear" => LinspaceF32((float)config.BetaStart, (float)config.BetaEnd, n),
            "scaled_linear" => LinspaceF32((float)Math.Sqrt(config.BetaStart), (float)Math.Sqrt(config.BetaEnd), n).Select(b => b * b).ToArray(),
            "squaredcos_cap_v2" => CosineBetas(n),
            _ => throw new SchedulerConfigException($"beta_schedule '{config.BetaSchedule}' is not supported; supported: linear, scaled_linear, squaredcos_cap_v2."),
        };
        if (config.RescaleBetasZeroSnr) betas = RescaleZeroTerminalSnr(betas);
        var ac = CumprodF32(betas);
        // diffusers nudges the last alphabar of a zero-terminal-SNR schedule off zero so sigma_max is finite.
        if (config.RescaleBetasZeroSnr && config.IsKarrasForm) ac[^1] = MathF.Pow(2, -24);
        Betas = betas.Select(b => (double)b).ToArray();
        AlphasCumprod = ac.Select(a => (double)a).ToArray();
        Sigmas = ac.Select(a => (double)MathF.Sqrt((1f - a) / a)).ToArray();
        LogSigmas = Sigmas.Select(v => Math.Log(v)).ToArray();
    }

    /// <summary>torch.linspace in float32: start + step i on the first half, end - step (n - 1 - i) on the second.</summary>
    internal static float[] LinspaceF32(float start, float end, int n)
    {
        var r = new float[n];
        if (n == 1) { r[0] = start; return r; }
        float step = (end - start) / (n - 1);
        int half = n / 2;
        for (int i = 0; i < n; i++) r[i] = i < half ? start + step * i : end - step * (n - i - 1);
        return r;
    }

    private static float[] CosineBetas(int n)
    {
        static double AlphaBar(double t) { double c = Math.Cos((t + 0.008) / 1.008 * Math.PI / 2); return c * c; }
        var b = new float[n];
        for (int i = 0; i < n; i++) b[i] = (float)Math.Min(1 - AlphaBar((i + 1.0) / n) / AlphaBar((double)i / n), 0.999);
        return b;
    }

    private static float[] CumprodF32(float[] betas)
    {
        var ac = new float[betas.Length];
        float p = 1f;
        for (int i = 0; i < betas.Length; i++) { p *= 1f - betas[i]; ac[i] = p; }
        return ac;
    }

    /// <summary>Zero terminal SNR (Lin et al. 2023, Algorithm 1): shift and scale sqrt(alphabar) so the last is 0.</summary>
    private static float[] RescaleZeroTerminalSnr(float[] betas)
    {
        var sq = CumprodF32(betas).Select(MathF.Sqrt).ToArray();
        float s0 = sq[0], sT = sq[^1];
        for (int i = 0; i < sq.Length; i++) { sq[i] -= sT; sq[i] *= s0 / (s0 - sT); }
        var bar = sq.Select(v => v * v).ToArray();
        var r = new float[betas.Length];
        r[0] = 1f - bar[0];
        for (int i = 1; i < r.Length; i++) r[i] = 1f - bar[i] / bar[i - 1];
        return r;
    }

    /// <summary>alphabar at a (possibly fractional) timestep, interpolating sigma log-linearly between integers.</summary>
    public double SigmaAt(double t) => Math.Exp(Interp(t, LogSigmas));

    /// <summary>numpy.interp over the index grid 0..N-1 (clamped at the ends).</summary>
    public static double Interp(double t, double[] table)
    {
        if (t <= 0) return table[0];
        if (t >= table.Length - 1) return table[^1];
        int lo = (int)Math.Floor(t);
        double w = t - lo;
        return w == 0 ? table[lo] : table[lo] + w * (table[lo + 1] - table[lo]);
    }

    /// <summary>
    /// diffusers _sigma_to_t: the fractional timestep whose log sigma matches, by linear interpolation
    /// in log sigma between the bracketing training timesteps.
    /// </summary>
    public double SigmaToT(double sigma)
    {
        double ls = Math.Log(Math.Max(sigma, 1e-10));
        var table = LogSigmas;
        // low = last index with log_sigmas[idx] <= ls (table is increasing), clipped to N - 2.
        int count = 0;
        for (int i = 0; i < table.Length; i++) if (ls - table[i] >= 0) count++;
        int low = Math.Clamp(count - 1, 0, table.Length - 2);
        if (count == 0) low = 0;
        double lo = table[low], hi = table[low + 1];
        double w = Math.Clamp((lo - ls) / (lo - hi), 0, 1);
        return (1 - w) * low + w * (low + 1);
    }

    /// <summary>VP coefficients of a Karras sigma: alpha = 1 / sqrt(1 + sigma^2), sigma_vp = sigma alpha.</summary>
    public static (double Alpha, double SigmaVp) AlphaSigma(double sigma)
    {
        double a = 1 / Math.Sqrt(sigma * sigma + 1);
        return (a, sigma * a);
    }
}
