namespace Engine.Sampling.Distillation;

/// <summary>How the student's data estimate is re-noised before the teacher sees it.</summary>
public enum RenoiseMode
{
    /// <summary>Fresh Gaussian noise.</summary>
    Random,
    /// <summary>The student's own noise estimate (the current direction), as DDIM does.</summary>
    Deterministic,
    /// <summary>sqrt(1 - h) eps_student + sqrt(h) z with h = <see cref="DistillationOptions.HybridMix"/>.</summary>
    Hybrid,
}

/// <summary>How the sample moves from one student timestep to the next.</summary>
public enum StudentUpdate
{
    /// <summary>z_next = a_next x0 + s_next eps (DDIM; the same as Euler on x~ = x / a in sigma space).</summary>
    Ddim,
    /// <summary>Euler ancestral in sigma space: x~_next = x0 + sigma_down eps + sigma_up z.</summary>
    EulerAncestral,
    /// <summary>Consistency / LCM multistep: z_next = a_next x0 + s_next z with fresh noise.</summary>
    Consistency,
}

/// <summary>Distillation++ settings; Lambda 0 samples the student alone.</summary>
public sealed record DistillationOptions
{
    /// <summary>Teacher weight lambda: x0 &lt;- x0 + lambda (x0_teacher - x0) (typically 0.01 to 0.1).</summary>
    public double Lambda { get; init; }

    /// <summary>The teacher refines the first GuideSteps student steps.</summary>
    public int GuideSteps { get; init; } = 1;

    /// <summary>Re-noise mode for the teacher's input.</summary>
    public RenoiseMode Renoise { get; init; } = RenoiseMode.Deterministic;

    /// <summary>Noise fraction h of <see cref="RenoiseMode.Hybrid"/>, in [0, 1].</summary>
    public double HybridMix { get; init; } = 0.5;

    /// <summary>Student update between timesteps.</summary>
    public StudentUpdate Update { get; init; } = StudentUpdate.Ddim;

    /// <summary>Apply the consistency-model boundary condition x0 = c_skip x + c_out x0_pred (LCM).</summary>
    public bool ConsistencyBoundary { get; init; }

    /// <summary>sigma_data of the boundary condition.</summary>
    public double SigmaData { get; init; } = 0.5;

    /// <summary>Timestep scaling of the boundary condition (diffusers LCMScheduler: 10).</summary>
    public double TimestepScaling { get; init; } = 10;

    /// <summary>Clamp the student's data estimate to [-ClampX0, ClampX0] (0: off; 1 for image students).</summary>
    public double ClampX0 { get; init; }

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the first impossible option.</summary>
    public void Validate()
    {
        if (!double.IsFinite(Lambda) || Lambda < 0 || Lambda > 1) throw new ArgumentOutOfRangeException(nameof(Lambda), Lambda, "Distillation++ lambda (distill_lambda) must be in [0, 1].");
        if (GuideSteps < 0) throw new ArgumentOutOfRangeException(nameof(GuideSteps), GuideSteps, "Distillation++ guide steps (distill_guide_steps) must be >= 0.");
        if (!(HybridMix >= 0 && HybridMix <= 1)) throw new ArgumentOutOfRangeException(nameof(HybridMix), HybridMix, "Distillation++ hybrid mix (distill_hybrid_mix) must be in [0, 1].");
        if (!(SigmaData > 0) || !double.IsFinite(SigmaData)) throw new ArgumentOutOfRangeException(nameof(SigmaData), SigmaData, "Consistency sigma_data must be > 0.");
        if (!(TimestepScaling > 0) || !double.IsFinite(TimestepScaling)) throw new ArgumentOutOfRangeException(nameof(TimestepScaling), TimestepScaling, "Consistency timestep scaling must be > 0.");
        if (!(ClampX0 >= 0) || !double.IsFinite(ClampX0)) throw new ArgumentOutOfRangeException(nameof(ClampX0), ClampX0, "x0 clamp must be finite and >= 0.");
    }
}
