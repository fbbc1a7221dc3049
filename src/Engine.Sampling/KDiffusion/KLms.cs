using Engine.Core;
using Engine.Sampling.Schedulers;

namespace Engine.Sampling.KDiffusion;

/// <summary>
/// k-diffusion <c>sample_lms</c> (order 4): x += sum_j c_j d_{i-j}, with d = (x - D) / sigma and c_j the
/// integral over [sigma_i, sigma_{i+1}] of the Lagrange basis polynomial through the last sigmas.
/// </summary>
public sealed class KLms : KSampler
{
    private const int Order = 4;
    private readonly Tensor?[] _ring = new Tensor?[Order];

    /// <summary>Creates the sampler on a ComfyUI grid.</summary>
    public KLms(SchedulerConfig config, double[] grid) : base(config, grid, "lms") => Plan(OneCallPerStep());

    /// <inheritdoc />
    protected override void ResetHistory() => Array.Clear(_ring);

    /// <summary>Integral over [sigma_i, sigma_{i+1}] of the basis polynomial of node i - j among nodes i, ..., i - order + 1.</summary>
    internal double Coefficient(int order, int i, int j) => LmsCoefficients.Integral(Grid, order, i, j);

    /// <inheritdoc />
    protected override void StepCore(Tensor modelOutput, int i, Tensor sample)
    {
        double s = Grid[i];
        var (cx, cm) = DenoisedCoefficients(s);
        var slot = Scratch(i % Order, sample);
        _ring[i % Order] = slot;
        Term(sample, (1 - cx) / s).Term(modelOutput, -cm / s).Into(slot);
        int order = Math.Min(i + 1, Order);
        Term(sample, 1);
        for (int j = 0; j < order; j++) Term(_ring[(i - j) % Order]!, Coefficient(order, i, j));
        Into(sample);
    }
}
