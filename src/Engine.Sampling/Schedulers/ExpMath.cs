namespace Engine.Sampling.Schedulers;

/// <summary>Accurate small-argument exponentials for exponential-integrator coefficients.</summary>
internal static class ExpMath
{
    /// <summary>exp(x) - 1 without cancellation for small |x|.</summary>
    public static double Expm1(double x)
    {
        if (double.IsPositiveInfinity(x)) return double.PositiveInfinity;
        if (double.IsNegativeInfinity(x)) return -1;
        if (Math.Abs(x) < 1e-5) return x + x * x / 2 + x * x * x / 6;
        if (Math.Abs(x) < 0.5)
        {
            // exp(x) - 1 = 2 tanh(x/2) / (1 - tanh(x/2)), exact in form and free of cancellation.
            double t = Math.Tanh(x / 2);
            return 2 * t / (1 - t);
        }
        return Math.Exp(x) - 1;
    }
}
