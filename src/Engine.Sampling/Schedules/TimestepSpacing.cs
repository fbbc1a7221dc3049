namespace Engine.Sampling.Schedules;

/// <summary>
/// The timestep grids diffusers builds for each scheduler family (leading, trailing, linspace), with
/// numpy's rounding (half to even) and float32 casts reproduced.
/// </summary>
public static class TimestepSpacing
{
    /// <summary>numpy.arange(start, stop, step) for a negative float step.</summary>
    private static IEnumerable<double> ArangeDown(double start, double stop, double step)
    {
        int n = (int)Math.Ceiling((stop - start) / step);
        for (int k = 0; k < n; k++) yield return start + k * step;
    }

    /// <summary>DDIM / DDPM / PNDM: n integer timesteps, descending.</summary>
    public static double[] Discrete(SchedulerConfig c, int n)
    {
        int N = c.NumTrainTimesteps;
        return c.TimestepSpacing switch
        {
            "leading" => Enumerable.Range(0, n).Select(i => (double)(i * (N / n) + c.StepsOffset)).Reverse().ToArray(),
            "trailing" => ArangeDown(N, 0, -(double)N / n).Select(v => Math.Round(v) - 1).ToArray(),
            _ => SigmaGrids.Linspace(0, N - 1, n).Select(v => Math.Round(v)).Reverse().ToArray(),
        };
    }

    /// <summary>Euler / Heun / LMS / KDPM2: n (possibly fractional, float32) timesteps, descending.</summary>
    public static double[] Karras(SchedulerConfig c, int n)
    {
        int N = c.NumTrainTimesteps;
        var t = c.TimestepSpacing switch
        {
            "leading" => Enumerable.Range(0, n).Select(i => (double)(i * (N / n))).Reverse().Select(v => v + c.StepsOffset),
            "trailing" => ArangeDown(N, 0, -(double)N / n).Select(v => Math.Round(v) - 1),
            _ => SigmaGrids.Linspace(0, N - 1, n).Reverse(),
        };
        return t.Select(v => (double)(float)v).ToArray();
    }

    /// <summary>DPM-Solver / UniPC / DEIS: n integer timesteps from n + 1 grid points, descending.</summary>
    public static double[] Multistep(SchedulerConfig c, int n, int lastTimestep)
    {
        int N = c.NumTrainTimesteps;
        return c.TimestepSpacing switch
        {
            "leading" => Enumerable.Range(0, n + 1).Select(i => (double)(i * (lastTimestep / (n + 1)))).Reverse().Take(n).Select(v => v + c.StepsOffset).ToArray(),
            "trailing" => ArangeDown(lastTimestep, 0, -(double)N / n).Select(v => Math.Round(v) - 1).ToArray(),
            _ => SigmaGrids.Linspace(0, lastTimestep - 1, n + 1).Select(v => Math.Round(v)).Reverse().Take(n).ToArray(),
        };
    }
}
