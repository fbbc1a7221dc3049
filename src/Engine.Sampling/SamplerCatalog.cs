using Engine.Sampling.Schedulers;

namespace Engine.Sampling;

/// <summary>A sampler or schedule as users name it (k-diffusion / ComfyUI style), with a one-line description.</summary>
/// <remarks>
/// <see cref="EngineSampler"/> names an engine sampler without a diffusers class (built by
/// <see cref="SamplerCatalog.Create"/>); the config then only carries the training schedule and grid.
/// </remarks>
public sealed record CatalogEntry(string Name, string Description, Func<SchedulerConfig, SchedulerConfig> Apply, string? EngineSampler = null);

/// <summary>
/// Short sampler names (euler, dpmpp_2m, ...) and schedule names (karras, exponential, ...) mapped onto
/// the training schedule of a model's scheduler_config.json: the model keeps its betas, prediction type
/// and timestep count; the entry picks the diffusers scheduler class and options.
/// </summary>
public static class SamplerCatalog
{
    private static SchedulerConfig As(SchedulerConfig c, string cls) => c with { ClassName = cls };

    /// <summary>Samplers, in the order <c>engine samplers</c> lists them.</summary>
    public static IReadOnlyList<CatalogEntry> Samplers { get; } =
    [
        new("euler", "Euler (first order ODE, Karras et al. Algorithm 2)", c => As(c, "EulerDiscreteScheduler")),
        new("euler_a", "Euler ancestral (first order, fresh noise every step)", c => As(c, "EulerAncestralDiscreteScheduler")),
        new("heun", "Heun (second order, 2 model calls per step, EDM)", c => As(c, "HeunDiscreteScheduler")),
        new("dpm_2", "DPM-Solver-2 / KDPM2 (second order midpoint in log sigma, 2 calls per step)", c => As(c, "KDPM2DiscreteScheduler")),
        new("lms", "Linear multistep in sigma (order 4)", c => As(c, "LMSDiscreteScheduler")),
        new("ddim", "DDIM (deterministic, eta 0)", c => As(c, "DDIMScheduler") with { ClipSample = false }),
        new("ddpm", "DDPM ancestral sampling (posterior variance)", c => As(c, "DDPMScheduler") with { ClipSample = false, VarianceType = c.VarianceType == "none" ? "fixed_small" : c.VarianceType }),
        new("pndm", "PNDM / PLMS (pseudo linear multistep, order 4)", c => As(c, "PNDMScheduler") with { SkipPrkSteps = true }),
        new("dpmpp_2m", "DPM-Solver++ 2M (second order multistep, data prediction)", c => As(c, "DPMSolverMultistepScheduler") with { AlgorithmType = "dpmsolver++", SolverOrder = 2, SolverType = "midpoint" }),
        new("dpmpp_3m", "DPM-Solver++ 3M (third order multistep)", c => As(c, "DPMSolverMultistepScheduler") with { AlgorithmType = "dpmsolver++", SolverOrder = 3, SolverType = "midpoint" }),
        new("dpmpp_3m_exact", "DPM-Solver++ 3M with the Taylor-exact D2 weight: third order, where diffusers' 3M is second order (beyond diffusers)", c => As(c, "DPMSolverMultistepScheduler") with { AlgorithmType = "dpmsolver++", SolverOrder = 3, SolverType = "midpoint" }, EngineSampler: "dpmpp_3m_exact"),
        new("dpmpp_2m_sde", "SDE-DPM-Solver++ 2M (stochastic, second order)", c => As(c, "DPMSolverMultistepScheduler") with { AlgorithmType = "sde-dpmsolver++", SolverOrder = 2, SolverType = "midpoint" }),
        new("dpmpp_3m_sde", "SDE-DPM-Solver++ 3M (stochastic, third order; beyond diffusers 0.31)", c => As(c, "DPMSolverMultistepScheduler") with { AlgorithmType = "sde-dpmsolver++", SolverOrder = 3, SolverType = "midpoint" }),
        new("dpmpp_2s", "DPM-Solver++ 2S (second order singlestep, deterministic)", c => As(c, "DPMSolverSinglestepScheduler") with { AlgorithmType = "dpmsolver++", SolverOrder = 2, SolverType = "midpoint" }),
        new("dpmpp_2s_a", "DPM-Solver++ 2S ancestral (k-diffusion; 2 calls per step, fresh noise)", c => As(c, "EulerAncestralDiscreteScheduler"), EngineSampler: "dpmpp_2s_a"),
        new("deis", "DEIS (exponential integrator, log-rho multistep, order 3)", c => As(c, "DEISMultistepScheduler") with { AlgorithmType = "deis", SolverType = "logrho", SolverOrder = 3 }),
        new("unipc", "UniPC (bh2 predictor-corrector, order 2)", c => As(c, "UniPCMultistepScheduler") with { SolverType = "bh2", SolverOrder = 2 }),
        new("unipc_bh1", "UniPC with B(h) = h (bh1), order 3", c => As(c, "UniPCMultistepScheduler") with { SolverType = "bh1", SolverOrder = 3 }),
        new("deis_tab", "DEIS tAB (Lagrange basis in t, quadrature coefficients; beyond diffusers), order 3", c => As(c, "DEISMultistepScheduler") with { AlgorithmType = "deis", SolverType = "logrho", SolverOrder = 3 }, EngineSampler: "deis_tab"),
        new("dpmpp_2m_hb", "DPM-Solver++ 2M with heavy-ball momentum, beta 0.8 (Wizadwongsa and Suwajanakorn; beyond diffusers)", c => As(c, "DPMSolverMultistepScheduler") with { AlgorithmType = "dpmsolver++", SolverOrder = 2, SolverType = "midpoint" }, EngineSampler: "dpmpp_2m_hb"),
        new("dpmpp_2m_ghvb", "DPM-Solver++ 2M with generalized heavy-ball momentum (GHVB), beta 0.8 (beyond diffusers)", c => As(c, "DPMSolverMultistepScheduler") with { AlgorithmType = "dpmsolver++", SolverOrder = 2, SolverType = "midpoint" }, EngineSampler: "dpmpp_2m_ghvb"),
        new("restart", "Restart sampling on Heun (Xu et al.): 2 restarts of 3 steps between sigma 0.06 and 0.30", c => As(c, "HeunDiscreteScheduler"), EngineSampler: "restart"),
        new("flow_euler", "Flow-matching Euler (rectified-flow models, static shift)", c => As(c, "FlowMatchEulerDiscreteScheduler") with { PredictionType = "flow" }),
    ];

    /// <summary>Noise schedules (time grids).</summary>
    public static IReadOnlyList<CatalogEntry> Schedules { get; } =
    [
        new("normal", "the scheduler's own spacing (diffusers default for its class)", c => NoGrid(c)),
        new("karras", "Karras et al. sigmas (rho 7) between sigma_max and sigma_min", c => NoGrid(c) with { UseKarrasSigmas = true }),
        new("exponential", "log-linear sigmas from sigma_max to sigma_min", c => NoGrid(c) with { UseExponentialSigmas = true }),
        new("beta", "Beta(0.6, 0.6) sampling of sigmas (Lee et al. 2024)", c => NoGrid(c) with { UseBetaSigmas = true }),
        new("simple", "evenly spaced training timesteps from the top (trailing)", c => NoGrid(c) with { TimestepSpacing = "trailing" }),
        new("sgm_uniform", "evenly spaced timesteps from t_max to t_min (linspace)", c => NoGrid(c) with { TimestepSpacing = "linspace" }),
    ];

    private static SchedulerConfig NoGrid(SchedulerConfig c) =>
        c with { UseKarrasSigmas = false, UseExponentialSigmas = false, UseBetaSigmas = false, UseLuLambdas = false };

    /// <summary>
    /// The scheduler config for a short sampler name and optional schedule name on top of a model's
    /// scheduler config. Throws <see cref="SchedulerConfigException"/> naming the unknown name and listing the known ones.
    /// </summary>
    public static SchedulerConfig Resolve(SchedulerConfig model, string sampler, string? schedule = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        var s = Samplers.FirstOrDefault(e => e.Name == sampler?.Trim().ToLowerInvariant())
            ?? throw new SchedulerConfigException($"Unknown sampler '{sampler}'; known: {string.Join(", ", Samplers.Select(e => e.Name))}.");
        var c = s.Apply(model);
        if (!string.IsNullOrWhiteSpace(schedule))
        {
            var g = Schedules.FirstOrDefault(e => e.Name == schedule.Trim().ToLowerInvariant())
                ?? throw new SchedulerConfigException($"Unknown schedule '{schedule}'; known: {string.Join(", ", Schedules.Select(e => e.Name))}.");
            c = g.Apply(c);
            if (c.ClassName is "DDIMScheduler" or "DDPMScheduler" or "PNDMScheduler" or "FlowMatchEulerDiscreteScheduler"
                && (c.UseKarrasSigmas || c.UseExponentialSigmas || c.UseBetaSigmas))
                throw new SchedulerConfigException($"Sampler '{s.Name}' ({c.ClassName}) has no sigma grid; schedule '{schedule}' is not supported with it; use normal, simple or sgm_uniform.");
        }
        if (c.ClassName == "DPMSolverMultistepScheduler" && c.AlgorithmType is "dpmsolver" or "sde-dpmsolver" && c.FinalSigmasType == "zero")
            c = c with { FinalSigmasType = "sigma_min" };
        return c;
    }

    /// <summary>Momentum of <c>dpmpp_2m_hb</c> and <c>dpmpp_2m_ghvb</c> (the paper's recommended range is 0.7-0.9).</summary>
    public const double HeavyBallBeta = 0.8;

    /// <summary>The restart interval of <c>restart</c>: Xu et al.'s VP setting [N = 3, K = 2, t_min 0.06, t_max 0.30].</summary>
    public static RestartInterval DefaultRestart { get; } = new(3, 2, 0.06, 0.30);

    /// <summary>Creates the scheduler for a short sampler name and optional schedule on a model's config.</summary>
    public static Scheduler Create(SchedulerConfig model, string sampler, string? schedule, int steps)
    {
        var config = Resolve(model, sampler, schedule);
        var entry = Samplers.First(e => e.Name == sampler.Trim().ToLowerInvariant());
        return entry.EngineSampler switch
        {
            "dpmpp_2s_a" => new Schedulers.DpmPp2sAncestralScheduler(config, steps),
            "deis_tab" => new Schedulers.DeisScheduler(config, steps, timeAB: true),
            "dpmpp_3m_exact" => new Schedulers.DpmSolverMultistepScheduler(config, steps) { ExactThirdOrder = true },
            "dpmpp_2m_hb" => new Schedulers.DpmSolverMultistepScheduler(config, steps) { Momentum = HeavyBallBeta },
            "dpmpp_2m_ghvb" => new Schedulers.DpmSolverMultistepScheduler(config, steps) { GeneralizedMomentum = HeavyBallBeta },
            "restart" => new Schedulers.RestartScheduler(config, steps, [DefaultRestart]),
            _ => SchedulerFactory.Create(config, steps),
        };
    }

    /// <summary>A text listing of samplers and schedules, one per line with its description.</summary>
    public static string Describe()
    {
        var sb = new System.Text.StringBuilder();
        sb.AppendLine("Samplers:");
        foreach (var e in Samplers) sb.AppendLine($"  {e.Name,-14} {e.Description}");
        sb.AppendLine("Schedules:");
        foreach (var e in Schedules) sb.AppendLine($"  {e.Name,-14} {e.Description}");
        return sb.ToString();
    }
}
