namespace Engine.Sampling.Guidance;

/// <summary>
/// Guidance settings; the defaults turn everything off (the model is evaluated on the conditional
/// branch only). All terms combine in one batched forward:
/// out = out_u + w (out_c - out_u) + s_pag (out_c - out_ptb).
/// </summary>
public sealed record GuidanceOptions
{
    /// <summary>Classifier-free guidance scale w (1: conditional model only, no unconditional branch).</summary>
    public double Scale { get; init; } = 1;

    /// <summary>CFG rescale phi in [0, 1] (Lin et al.): mixes in the guided output rescaled to the conditional output's per-sample std.</summary>
    public double RescalePhi { get; init; }

    /// <summary>Guidance interval: CFG and PAG apply only for sigma in (IntervalSigmaMin, IntervalSigmaMax]; elsewhere the conditional branch alone is evaluated.</summary>
    public double IntervalSigmaMin { get; init; }

    /// <summary>Upper end of the guidance interval (Karras sigma; flow models: t).</summary>
    public double IntervalSigmaMax { get; init; } = double.PositiveInfinity;

    /// <summary>Perturbed-attention guidance scale s (Ahn et al.; 0: off; 3 is the paper's default).</summary>
    public double PagScale { get; init; }

    /// <summary>Layers whose self-attention is replaced by the identity map in the perturbed branch.</summary>
    public IReadOnlyList<string> PagLayers { get; init; } = ["mid_block"];

    /// <summary>Condition-annealed sampling (CADS); null: off.</summary>
    public CadsOptions? Cads { get; init; }

    /// <summary>Chooses the per-row model timesteps (e.g. <see cref="Plugins.TimeShift"/>); null: the scheduler's timestep.</summary>
    public ITimestepProvider? Timesteps { get; init; }

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the first impossible option.</summary>
    public void Validate()
    {
        if (!double.IsFinite(Scale)) throw new ArgumentOutOfRangeException(nameof(Scale), Scale, "Guidance scale must be finite.");
        if (!(RescalePhi >= 0 && RescalePhi <= 1)) throw new ArgumentOutOfRangeException(nameof(RescalePhi), RescalePhi, "CFG rescale phi must be in [0, 1].");
        if (!(IntervalSigmaMin >= 0) || !(IntervalSigmaMax > IntervalSigmaMin))
            throw new ArgumentOutOfRangeException(nameof(IntervalSigmaMin), $"Guidance interval ({IntervalSigmaMin}, {IntervalSigmaMax}] must satisfy 0 <= min < max.");
        if (!double.IsFinite(PagScale) || PagScale < 0) throw new ArgumentOutOfRangeException(nameof(PagScale), PagScale, "PAG scale must be finite and >= 0.");
        if (PagScale != 0 && PagLayers.Count == 0) throw new ArgumentOutOfRangeException(nameof(PagLayers), "PAG needs at least one layer to perturb.");
        Cads?.Validate();
    }
}

/// <summary>
/// CADS (Sadat et al.): the conditioning y is corrupted as y' = sqrt(gamma) y + s sqrt(1 - gamma) n
/// with gamma(t) = 1 for t &lt;= tau1, 0 for t &gt;= tau2 and linear between (t = 1 - call / calls), then
/// rescaled to y's per-sample mean and std and mixed by psi: psi y_rescaled + (1 - psi) y'.
/// </summary>
public sealed record CadsOptions
{
    /// <summary>Below tau1 the condition is clean.</summary>
    public double Tau1 { get; init; } = 0.6;

    /// <summary>Above tau2 the condition is pure (scaled) noise.</summary>
    public double Tau2 { get; init; } = 0.9;

    /// <summary>Noise scale s (0: no noise is added and the condition is left untouched).</summary>
    public double NoiseScale { get; init; } = 0.25;

    /// <summary>Mixing factor of the rescaled condition (0: no rescale).</summary>
    public double Psi { get; init; } = 1;

    /// <summary>Seed of the condition noise (mixed with a constant so it differs from the sampler's noise of the same seed).</summary>
    public ulong Seed { get; init; }

    /// <summary>Global index of the batch's first sample (keeps the noise batch-invariant).</summary>
    public int FirstSampleIndex { get; init; }

    /// <summary>gamma(t) of the schedule.</summary>
    public double Gamma(double t) => t <= Tau1 ? 1 : t >= Tau2 ? 0 : (Tau2 - t) / (Tau2 - Tau1);

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the first impossible option.</summary>
    public void Validate()
    {
        if (!(Tau1 >= 0 && Tau1 <= 1)) throw new ArgumentOutOfRangeException(nameof(Tau1), Tau1, "CADS tau1 must be in [0, 1].");
        if (!(Tau2 > Tau1 && Tau2 <= 1)) throw new ArgumentOutOfRangeException(nameof(Tau2), Tau2, $"CADS tau2 must be in (tau1 = {Tau1}, 1].");
        if (!(NoiseScale >= 0) || !double.IsFinite(NoiseScale)) throw new ArgumentOutOfRangeException(nameof(NoiseScale), NoiseScale, "CADS noise scale must be finite and >= 0.");
        if (!(Psi >= 0 && Psi <= 1)) throw new ArgumentOutOfRangeException(nameof(Psi), Psi, "CADS psi must be in [0, 1].");
        if (FirstSampleIndex < 0) throw new ArgumentOutOfRangeException(nameof(FirstSampleIndex), FirstSampleIndex, "CADS first sample index must be >= 0.");
    }
}
