using Engine.Core;
using Engine.Sampling.Schedules;

namespace Engine.Sampling.Schedulers;

/// <summary>
/// diffusers LCMScheduler (latent consistency models): at each timestep t the consistency function
/// denoised = c_out x0 + c_skip x with c_skip = 0.25 / ((s t)^2 + 0.25), c_out = s t / sqrt((s t)^2 + 0.25)
/// (s = timestep_scaling), then, except at the last step, re-noising to the next timestep with a fresh draw:
/// x_next = sqrt(abar_next) denoised + sqrt(1 - abar_next) z. The last step returns denoised itself.
/// Timesteps come from the distillation grid (<see cref="DistillationGrid"/>) or are given (custom).
/// </summary>
public sealed class LcmScheduler : Scheduler
{
    /// <summary>The diffusers class this scheduler implements.</summary>
    public const string DiffusersClass = "LCMScheduler";

    /// <summary>Registration in <see cref="SchedulerRegistry"/>: VP form, its own grid, custom timesteps, thresholding; short name <c>lcm</c>.</summary>
    public static SchedulerDescriptor Descriptor { get; } = new()
    {
        ClassNames = [DiffusersClass],
        Create = (c, steps) => new LcmScheduler(c, steps),
        ReadOptions = (r, _) => new Options
        {
            OriginalInferenceSteps = r.Int("original_inference_steps", 50),
            TimestepScaling = r.Num("timestep_scaling", 10.0),
        },
        Defaults = new() { TimestepSpacing = "leading" },
        // s <= 0 would make c_skip 1 and c_out 0 (or negative): the student's prediction would be ignored or inverted.
        Validate = c => c.OptionsAs<Options>().TimestepScaling is var s && !(s > 0 && double.IsFinite(s))
            ? $"timestep_scaling {s} must be a finite number > 0 (c_skip and c_out scale t by it)." : null,
        HasSigmaGrid = false,
        SupportsThresholding = true,
        TakesCustomTimesteps = true,
        ShortNames =
        [
            new("lcm_diffusers", "diffusers' LCMScheduler for LCM students (1-8 steps, cfg 1-2; fresh noise between steps; lcm is ComfyUI's)",
                c => c.WithClass(DiffusersClass) with { ClipSample = false }) { ListOrder = 77 },
        ],
    };

    /// <summary>LCM's own options.</summary>
    public sealed record Options : SchedulerOptions
    {
        /// <summary>Steps of the distillation grid the timesteps are taken from (diffusers' default 50).</summary>
        public int OriginalInferenceSteps { get; init; } = 50;

        /// <summary>Factor on t in the boundary-condition scalings c_skip and c_out (default 10).</summary>
        public double TimestepScaling { get; init; } = 10.0;
    }

    private readonly double _finalAlphaCumprod;
    private readonly double _scaling;

    /// <summary>Creates the scheduler for <paramref name="steps"/> steps.</summary>
    public LcmScheduler(SchedulerConfig config, int steps) : base(config, steps)
    {
        var o = Descriptor.OptionsOf<Options>(config);
        _scaling = o.TimestepScaling;
        Timesteps = DistillationGrid.Timesteps(config, steps, o.OriginalInferenceSteps);
        _finalAlphaCumprod = config.SetAlphaToOne ? 1.0 : Training.AlphasCumprod[0];
    }

    /// <inheritdoc />
    public override bool IsStochastic => CallCount > 1;

    /// <inheritdoc />
    public override int NoiseDraws => CallCount - 1;

    /// <inheritdoc />
    public override (double Alpha, double Sigma) FinalCoordinates => (1, 0);

    /// <inheritdoc />
    public override DenoiserCall Call(int i)
    {
        double abar = Training.AlphasCumprod[(int)Timesteps[i]];
        return new DenoiserCall(i, Timesteps[i], Math.Sqrt((1 - abar) / abar), Math.Sqrt(abar), Math.Sqrt(1 - abar));
    }

    /// <summary>c_skip and c_out at timestep <paramref name="t"/>, in float32 as diffusers computes them (t is a tensor there).</summary>
    public (double Skip, double Out) BoundaryScalings(double t)
    {
        float st = (float)t * (float)_scaling, d = st * st + 0.25f;
        return (0.25f / d, st / MathF.Sqrt(d));
    }

    /// <inheritdoc />
    protected override void StepCore(Tensor modelOutput, int i, Tensor sample)
    {
        int t = (int)Timesteps[i];
        double abar = Training.AlphasCumprod[t];
        var (cSkip, cOut) = BoundaryScalings(t);
        var (x0x, x0m) = DataPrediction(Math.Sqrt(abar), Math.Sqrt(1 - abar));
        bool last = i == CallCount - 1;
        Tensor? z = last ? null : DrawNoise(1, sample, i);
        // Re-noised to the next timestep, except after the last step.
        double abarNext = last ? 1 : Timesteps[i + 1] >= 0 ? Training.AlphasCumprod[(int)Timesteps[i + 1]] : _finalAlphaCumprod;
        double a = Math.Sqrt(abarNext);
        if (Config.ClipSample || Config.Thresholding)
        {
            var x0 = Scratch(0, sample);
            Term(sample, x0x).Term(modelOutput, x0m).Into(x0);
            LimitX0(x0, 2);
            Term(x0, a * cOut).Term(sample, a * cSkip);
        }
        else Term(sample, a * (cOut * x0x + cSkip)).Term(modelOutput, a * cOut * x0m);
        if (z is not null) Term(z, Math.Sqrt(1 - abarNext));
        Into(sample);
    }
}
