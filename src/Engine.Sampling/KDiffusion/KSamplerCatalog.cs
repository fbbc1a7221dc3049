using Engine.Sampling.Schedules;

namespace Engine.Sampling.KDiffusion;

/// <summary>A ComfyUI sampler name the engine runs with k-diffusion's update rule.</summary>
/// <param name="Name">The name (as the fixtures and <c>--sampler</c> spell it).</param>
/// <param name="ComfyName">ComfyUI's own spelling, accepted as an alias when it differs.</param>
/// <param name="Description">One line for <c>engine samplers</c>.</param>
/// <param name="Create">Builds the sampler on a grid.</param>
/// <param name="DropsPenultimate">ComfyUI builds the grid for one step more and drops its penultimate sigma.</param>
public sealed record KSamplerEntry(string Name, string ComfyName, string Description, Func<SchedulerConfig, double[], KSampler> Create, bool DropsPenultimate = false)
{
    /// <summary>Position in <c>engine samplers</c> among all sampler names (see <see cref="ShortName.ListOrder"/>).</summary>
    public int ListOrder { get; init; }
}

/// <summary>
/// ComfyUI's KSampler names: the samplers the engine runs as ComfyUI does (k-diffusion update rules on
/// ComfyUI's grids and model wrapping) and the ComfyUI names it does not run, each with the nearest one it does.
/// </summary>
public static class KSamplerCatalog
{
    /// <summary>The schedule a ComfyUI sampler name uses when none is given (ComfyUI's KSampler default).</summary>
    public const string DefaultSchedule = "normal";

    /// <summary>The ComfyUI samplers, in the order <c>engine samplers</c> lists them.</summary>
    public static IReadOnlyList<KSamplerEntry> Entries { get; } =
    [
        new("euler", "euler", "Euler (k-diffusion sample_euler)", (c, g) => new KEuler(c, g)) { ListOrder = 10 },
        new("euler_a", "euler_ancestral", "Euler ancestral (sample_euler_ancestral, eta 1: a draw every step but the last)", (c, g) => new KEulerAncestral(c, g)) { ListOrder = 20 },
        new("heun", "heun", "Heun (sample_heun: 2 calls per step, the last step Euler)", (c, g) => new KTwoStage(c, g, KTwoStage.Method.Heun)) { ListOrder = 30 },
        new("dpm_2", "dpm_2", "DPM-Solver-2 (sample_dpm_2: log-midpoint, 2 calls per step; penultimate sigma dropped)", (c, g) => new KTwoStage(c, g, KTwoStage.Method.Dpm2), DropsPenultimate: true) { ListOrder = 40 },
        new("dpm_2_a", "dpm_2_ancestral", "DPM-Solver-2 ancestral (sample_dpm_2_ancestral; penultimate sigma dropped)", (c, g) => new KTwoStage(c, g, KTwoStage.Method.Dpm2Ancestral), DropsPenultimate: true) { ListOrder = 45 },
        new("lms", "lms", "linear multistep in sigma, order 4 (sample_lms)", (c, g) => new KLms(c, g)) { ListOrder = 50 },
        new("dpmpp_2s_a", "dpmpp_2s_ancestral", "DPM-Solver++ 2S ancestral (sample_dpmpp_2s_ancestral, eta 1)", (c, g) => new KDpmPp2SAncestral(c, g)) { ListOrder = 150 },
        new("dpmpp_sde", "dpmpp_sde", "DPM-Solver++ SDE (sample_dpmpp_sde, r 1/2) with independent draws, not ComfyUI's Brownian tree", (c, g) => new KDpmPpSde(c, g)) { ListOrder = 125 },
        new("dpmpp_2m", "dpmpp_2m", "DPM-Solver++ 2M (sample_dpmpp_2m)", (c, g) => new KDpmPp2M(c, g)) { ListOrder = 90 },
        new("dpmpp_2m_sde", "dpmpp_2m_sde", "DPM-Solver++ 2M SDE (sample_dpmpp_2m_sde, midpoint, eta 1) with independent draws", (c, g) => new KDpmPpMultistepSde(c, g, 2)) { ListOrder = 120 },
        new("dpmpp_3m_sde", "dpmpp_3m_sde", "DPM-Solver++ 3M SDE (sample_dpmpp_3m_sde, eta 1) with independent draws", (c, g) => new KDpmPpMultistepSde(c, g, 3)) { ListOrder = 130 },
        new("ddpm", "ddpm", "DDPM posterior steps on the sigma grid (ComfyUI's ddpm)", (c, g) => new KDdpm(c, g)) { ListOrder = 70 },
        new("lcm", "lcm", "latent consistency sampling: x = D plus fresh noise of std sigma_next (ComfyUI's lcm)", (c, g) => new KLcm(c, g)) { ListOrder = 75 },
    ];

    /// <summary>ComfyUI sampler names the engine does not run with ComfyUI's meaning, each with the nearest name it has.</summary>
    public static IReadOnlyDictionary<string, string> Unavailable { get; } = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["euler_cfg_pp"] = "euler",
        ["euler_ancestral_cfg_pp"] = "euler_a",
        ["heunpp2"] = "heun",
        ["dpm_fast"] = "dpmpp_2m",
        ["dpm_adaptive"] = "dpmpp_2m",
        ["dpmpp_2s_ancestral_cfg_pp"] = "dpmpp_2s_a",
        ["dpmpp_sde_gpu"] = "dpmpp_sde",
        ["dpmpp_2m_cfg_pp"] = "dpmpp_2m",
        ["dpmpp_2m_sde_gpu"] = "dpmpp_2m_sde",
        ["dpmpp_3m_sde_gpu"] = "dpmpp_3m_sde",
        ["ipndm"] = "lms",
        ["ipndm_v"] = "lms",
        ["res_multistep"] = "dpmpp_2m",
        ["uni_pc"] = "unipc_bh1",
        ["uni_pc_bh2"] = "unipc",
    };

    /// <summary>The entry a name or ComfyUI spelling denotes, or null.</summary>
    public static KSamplerEntry? Find(string name) => Entries.FirstOrDefault(e => e.Name == name || e.ComfyName == name);

    /// <summary>Builds the sampler <paramref name="entry"/> on ComfyUI's <paramref name="schedule"/> grid of the config's training schedule.</summary>
    public static KSampler Create(KSamplerEntry entry, SchedulerConfig training, string? schedule, int steps)
    {
        ArgumentNullException.ThrowIfNull(entry);
        ArgumentNullException.ThrowIfNull(training);
        string name = string.IsNullOrWhiteSpace(schedule) ? DefaultSchedule : schedule.Trim().ToLowerInvariant();
        if (!ComfySchedules.IsKnown(name))
            throw new SchedulerConfigException($"Schedule '{schedule}' is not one of ComfyUI's ({string.Join(", ", ComfySchedules.All.Select(s => s.Name))}); sampler '{entry.Name}' follows ComfyUI.");
        if (steps < 1) throw new ArgumentOutOfRangeException(nameof(steps), steps, "The number of inference steps must be at least 1.");
        if (training.Kind?.IsFlowMatching == true)
            throw new SchedulerConfigException($"Sampler '{entry.Name}' follows ComfyUI's discrete (DDPM-type) model sampling; {training.ClassName} is flow matching: use flow_euler or --scheduler-config.");
        var train = new TrainingSchedule(training);
        if (!double.IsFinite(train.Sigmas[^1]))
            throw new SchedulerConfigException($"Sampler '{entry.Name}': the training schedule's sigma_max is infinite (zero terminal SNR); ComfyUI's grids need a finite one.");
        var grid = entry.DropsPenultimate
            ? ComfySchedules.DropPenultimate(ComfySchedules.Build(train, name, steps + 1))
            : ComfySchedules.Build(train, name, steps);
        return entry.Create(training, grid);
    }
}
