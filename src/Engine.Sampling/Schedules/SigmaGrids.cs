namespace Engine.Sampling.Schedules;

/// <summary>
/// Sampling grids of noise levels (Karras sigma, descending, without the final 0), as diffusers builds
/// them from sigma_max and sigma_min of the training schedule.
/// </summary>
public static class SigmaGrids
{
    /// <summary>numpy.linspace(start, end, n) in double.</summary>
    public static double[] Linspace(double start, double end, int n)
    {
        var r = new double[n];
        if (n == 1) { r[0] = start; return r; }
        double step = (end - start) / (n - 1);
        for (int i = 0; i < n; i++) r[i] = start + i * step;
        r[n - 1] = end;
        return r;
    }

    /// <summary>Karras et al. (2022): interpolate sigma^(1/rho) linearly, rho = 7.</summary>
    public static double[] Karras(double sigmaMin, double sigmaMax, int n, double rho = 7.0)
    {
        double lo = Math.Pow(sigmaMin, 1 / rho), hi = Math.Pow(sigmaMax, 1 / rho);
        return Linspace(0, 1, n).Select(r => Math.Pow(hi + r * (lo - hi), rho)).ToArray();
    }

    /// <summary>Log-linear (exponential) sigmas from sigma_max to sigma_min.</summary>
    public static double[] Exponential(double sigmaMin, double sigmaMax, int n) =>
        Linspace(Math.Log(sigmaMax), Math.Log(sigmaMin), n).Select(v => Math.Exp(v)).ToArray();

    /// <summary>Beta sampling (Lee et al. 2024): sigma_min + BetaInv(1 - linspace(0, 1, n); a, b) (sigma_max - sigma_min).</summary>
    public static double[] Beta(double sigmaMin, double sigmaMax, int n, double alpha = 0.6, double beta = 0.6) =>
        Linspace(0, 1, n).Select(u => sigmaMin + BetaDistribution.InverseCdf(1 - u, alpha, beta) * (sigmaMax - sigmaMin)).ToArray();

    /// <summary>Uniform in lambda = -log sigma (Lu et al., DPM-Solver): returns sigmas.</summary>
    public static double[] UniformLambda(double sigmaMin, double sigmaMax, int n) =>
        Linspace(Math.Log(sigmaMax), Math.Log(sigmaMin), n).Select(v => Math.Exp(v)).ToArray();

    /// <summary>Flow-matching time shift: shift t / (1 + (shift - 1) t).</summary>
    public static double FlowShift(double t, double shift) => shift * t / (1 + (shift - 1) * t);
}

/// <summary>The regularized incomplete beta function and its inverse (for Beta sampling grids).</summary>
public static class BetaDistribution
{
    /// <summary>I_x(a, b), by the Lentz continued fraction on the side where it converges fast.</summary>
    public static double Cdf(double x, double a, double b)
    {
        if (x <= 0) return 0;
        if (x >= 1) return 1;
        double lnFront = LogGamma(a + b) - LogGamma(a) - LogGamma(b) + a * Math.Log(x) + b * Math.Log(1 - x);
        if (x < (a + 1) / (a + b + 2)) return Math.Exp(lnFront) * ContinuedFraction(x, a, b) / a;
        return 1 - Math.Exp(lnFront) * ContinuedFraction(1 - x, b, a) / b;
    }

    /// <summary>The x with I_x(a, b) = p, by bisection to double precision (monotone, robust).</summary>
    public static double InverseCdf(double p, double a, double b)
    {
        if (p <= 0) return 0;
        if (p >= 1) return 1;
        double lo = 0, hi = 1;
        for (int i = 0; i < 200 && hi - lo > 1e-17; i++)
        {
            double mid = 0.5 * (lo + hi);
            if (Cdf(mid, a, b) < p) lo = mid; else hi = mid;
        }
        return 0.5 * (lo + hi);
    }

    private static double ContinuedFraction(double x, double a, double b)
    {
        const double tiny = 1e-300;
        double c = 1, d = 1 - (a + b) * x / (a + 1);
        if (Math.Abs(d) < tiny) d = tiny;
        d = 1 / d;
        double f = d;
        for (int m = 1; m <= 500; m++)
        {
            int m2 = 2 * m;
            double num = m * (b - m) * x / ((a + m2 - 1) * (a + m2));
            d = 1 + num * d; if (Math.Abs(d) < tiny) d = tiny; d = 1 / d;
            c = 1 + num / c; if (Math.Abs(c) < tiny) c = tiny;
            f *= d * c;
            num = -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1));
            d = 1 + num * d; if (Math.Abs(d) < tiny) d = tiny; d = 1 / d;
            c = 1 + num / c; if (Math.Abs(c) < tiny) c = tiny;
            double delta = d * c;
            f *= delta;
            if (Math.Abs(delta - 1) < 1e-16) break;
        }
        return f;
    }

    /// <summary>log Gamma(x) by the Lanczos approximation (g = 7, 9 terms), accurate to ~1e-15.</summary>
    public static double LogGamma(double x)
    {
        ReadOnlySpan<double> g =
        [
            0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313,
            -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6,
            1.5056327351493116e-7,
        ];
        if (x < 0.5) return Math.Log(Math.PI / Math.Abs(Math.Sin(Math.PI * x))) - LogGamma(1 - x);
        x -= 1;
        double s = g[0];
        for (int i = 1; i < 9; i++) s += g[i] / (x + i);
        double t = x + 7.5;
        return 0.5 * Math.Log(2 * Math.PI) + (x + 0.5) * Math.Log(t) - t + Math.Log(s);
    }
}
