namespace Engine.Sampling.Schedulers;

/// <summary>
/// The linear multistep (LMS) coefficients shared by diffusers' LMSDiscreteScheduler and ComfyUI's lms sampler: the
/// integral over [sigma_i, sigma_{i+1}] of the Lagrange basis polynomial of node i - j among the nodes
/// i, i - 1, ..., i - order + 1 of a sigma grid.
/// </summary>
internal static class LmsCoefficients
{
    // 4-point Gauss-Legendre integrates the basis polynomials (degree <= 3 for order <= 4) exactly;
    // diffusers' and k-diffusion's adaptive quadratures agree with it to rounding.
    private static ReadOnlySpan<double> Nodes => [-0.8611363115940526, -0.3399810435848563, 0.3399810435848563, 0.8611363115940526];
    private static ReadOnlySpan<double> Weights => [0.3478548451374538, 0.6521451548625461, 0.6521451548625461, 0.3478548451374538];

    /// <summary>The coefficient of the derivative held at node i - <paramref name="j"/> for the step from sigma_i to sigma_{i+1}.</summary>
    public static double Integral(double[] sigmas, int order, int i, int j)
    {
        double Basis(double tau)
        {
            double p = 1;
            for (int k = 0; k < order; k++)
                if (k != j) p *= (tau - sigmas[i - k]) / (sigmas[i - j] - sigmas[i - k]);
            return p;
        }
        double a = sigmas[i], b = sigmas[i + 1], half = (b - a) / 2, mid = (a + b) / 2, sum = 0;
        for (int q = 0; q < 4; q++) sum += Weights[q] * Basis(mid + half * Nodes[q]);
        return sum * half;
    }
}
