using Engine.Core;

namespace Engine.Sampling.Schedulers;

/// <summary>
/// diffusers LMSDiscreteScheduler: linear multistep on dx/dsigma = (x - D) / sigma with up to
/// <see cref="Order"/> past derivatives; coefficients are integrals of Lagrange basis polynomials in
/// sigma over [sigma_i, sigma_{i+1}], computed exactly by Gauss-Legendre quadrature on the host.
/// </summary>
public sealed class LmsScheduler : KarrasFormScheduler
{
    /// <summary>The diffusers class this scheduler implements.</summary>
    public const string DiffusersClass = "LMSDiscreteScheduler";

    /// <summary>Registration in <see cref="SchedulerRegistry"/>: Karras form, solver_order up to 4 (the short name <c>lms</c> is ComfyUI's sampler, see KDiffusion).</summary>
    public static SchedulerDescriptor Descriptor { get; } = new()
    {
        ClassNames = [DiffusersClass],
        Create = (c, steps) => new LmsScheduler(c, steps),
        ReadOptions = KarrasFormScheduler.Options.Read,
        IsKarrasForm = true,
        MaxSolverOrder = 4,
    };

    private readonly Tensor?[] _ring = new Tensor?[4];

    /// <summary>Creates the scheduler; <paramref name="order"/> is diffusers' step argument (default 4); <paramref name="endAtSigmaMin"/> (beyond diffusers) stops at sigma_min instead of 0.</summary>
    public LmsScheduler(SchedulerConfig config, int steps, int order = 4, bool endAtSigmaMin = false) : base(config, steps, roundKarrasTimesteps: false, allowFinalSigmaMin: false, endAtSigmaMin)
    {
        if (order < 1 || order > 4) throw new ArgumentOutOfRangeException(nameof(order), order, "LMS order must be 1..4.");
        Order = order;
        Timesteps = StepTimesteps;
        Sigmas = StepSigmas;
    }

    /// <summary>Maximum number of derivatives combined per step.</summary>
    public int Order { get; }

    /// <inheritdoc />
    protected override double CallSigma(int i) => StepSigmas[i];

    /// <summary>Integral over [sigma_i, sigma_{i+1}] of the Lagrange basis polynomial of node i - j among nodes i..i-order+1.</summary>
    internal double Coefficient(int order, int i, int j) => LmsCoefficients.Integral(StepSigmas, order, i, j);

    /// <inheritdoc />
    protected override void StepCore(Tensor modelOutput, int i, Tensor sample)
    {
        var slot = Scratch(i % 4, sample);
        _ring[i % 4] = slot;
        var (dx, dm) = Derivative(StepSigmas[i]);
        Term(sample, dx).Term(modelOutput, dm).Into(slot);
        int order = Math.Min(i + 1, Order);
        // diffusers picks the order from the step index but combines only the derivatives it holds, which
        // are fewer than the order when a run starts part-way (img2img).
        int held = Math.Min(order, i - StartCall + 1);
        Term(sample, 1);
        for (int j = 0; j < held; j++) Term(_ring[(i - j) % 4]!, Coefficient(order, i, j));
        Into(sample);
    }
}
