namespace Engine.Tools.Quality;

/// <summary>
/// Frechet distance between two Gaussians fitted to features (the FID formula):
/// ||mu1 - mu2||^2 + Tr(S1) + Tr(S2) - 2 Tr(sqrt(S1^1/2 S2 S1^1/2)).
/// </summary>
/// <remarks>
/// Tr(sqrt(S1 S2)) is computed through the symmetric form S1^1/2 S2 S1^1/2, which has the same
/// eigenvalues as S1 S2 but is symmetric positive semi-definite, so both square roots come from a
/// symmetric eigen-decomposition (<see cref="SymmetricEigen"/>) without complex arithmetic.
/// </remarks>
public static class FrechetDistance
{
    /// <summary>The distance between <paramref name="a"/> and <paramref name="b"/> (same dimension).</summary>
    public static double Compute(GaussianStats a, GaussianStats b)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        int d = a.Dimension;
        if (b.Dimension != d) throw new ArgumentException($"Feature dimensions differ: {d} vs {b.Dimension}.");
        double meanTerm = 0, traceA = 0, traceB = 0;
        for (int i = 0; i < d; i++)
        {
            double diff = a.Mean[i] - b.Mean[i];
            meanTerm += diff * diff;
            traceA += a.Covariance[i * d + i];
            traceB += b.Covariance[i * d + i];
        }
        var rootA = SymmetricEigen.SquareRoot(a.Covariance, d);
        var inner = Multiply(Multiply(rootA, b.Covariance, d), rootA, d);
        // Remove the round-off asymmetry of the product before the symmetric decomposition.
        for (int i = 0; i < d; i++)
            for (int j = i + 1; j < d; j++)
            {
                double m = 0.5 * (inner[i * d + j] + inner[j * d + i]);
                inner[i * d + j] = inner[j * d + i] = m;
            }
        var (values, _) = SymmetricEigen.Decompose(inner, d);
        double traceRoot = 0;
        foreach (double v in values) traceRoot += Math.Sqrt(Math.Max(v, 0));
        return meanTerm + traceA + traceB - 2 * traceRoot;
    }

    private static double[] Multiply(double[] x, double[] y, int n)
    {
        var r = new double[n * n];
        for (int i = 0; i < n; i++)
            for (int k = 0; k < n; k++)
            {
                double xik = x[i * n + k];
                if (xik == 0) continue;
                for (int j = 0; j < n; j++) r[i * n + j] += xik * y[k * n + j];
            }
        return r;
    }
}
