using Engine.Core;
using Engine.Sampling.Schedules;

namespace Engine.Sampling.Schedulers;

/// <summary>
/// diffusers TCDScheduler (trajectory consistency distillation, strategic stochastic sampling): from t the step
/// predicts x0 and eps, jumps to the earlier noise level s = floor((1 - gamma) t_next) (the predicted noised
/// sample x_s = sqrt(abar_s) x0 + sqrt(1 - abar_s) eps), and, when gamma > 0 and this is not the last step,
/// re-noises forward to t_next: x_next = sqrt(abar_next / abar_s) x_s + sqrt(1 - abar_next / abar_s) z.
/// gamma is diffusers' <c>step(eta=...)</c> (<see cref="SchedulerConfig.Eta"/>, default 0.3); gamma 0 is deterministic.
/// </summary>
public sealed class TcdScheduler : Scheduler
{
    /// <summary>The diffusers class this scheduler implements.</summary>
    public const string DiffusersClass = "TCDScheduler";

    /// <summary>gamma when none is given: the default of diffusers' <c>TCDScheduler.step</c>.</summary>
    public const double DefaultGamma = 0.3;

    /// <summary>Registration in <see cref="SchedulerRegistry"/>: VP form, its own grid, eta (gamma), custom timesteps; short name <c>tcd</c>.</summary>
    public static SchedulerDescriptor Descriptor { get; } = new()
    {
        ClassNames = [DiffusersClass],
        Create = (c, steps) => new TcdScheduler(c, steps),
        ReadOptions = (r, _) => new Options { OriginalInferenceSteps = r.Int("original_inference_steps", 50) },
        Defaults = new() { TimestepSpacing = "leading" },
        HasSigmaGrid = false,
        TakesEta = true,
        TakesCustomTimesteps = true,
        ShortNames =
        [
            new("tcd", "TCD strategic stochastic sampling for TCD students (2-8 steps; --eta is gamma, default 0.3)",
                c => c.WithClass(DiffusersClass) with { ClipSample = false }) { ListOrder = 76 },
        ],
    };

    /// <summary>TCD's own options.</summary>
    public sealed record Options : SchedulerOptions
    {
        /// <summary>Steps of the distillation grid the timesteps are taken from (diffusers' default 50).</summary>
        public int OriginalInferenceSteps { get; init; } = 50;
    }

    private readonly double _finalAlphaCumprod;

    /// <summary>Creates the scheduler for <paramref name="steps"/> steps with gamma from <see cref="SchedulerConfig.Eta"/>.</summary>
    public TcdScheduler(SchedulerConfig config, int steps) : base(config, steps)
    {
        Gamma = config.Eta ?? DefaultGamma;
        if (!(Gamma >= 0 && Gamma <= 1)) throw new SchedulerConfigException($"{DiffusersClass}: eta (gamma) {Gamma} must lie in [0, 1].");
        Timesteps = DistillationGrid.Timesteps(config, steps, Descriptor.OptionsOf<Options>(config).OriginalInferenceSteps);
        _finalAlphaCumprod = config.SetAlphaToOne ? 1.0 : Training.AlphasCumprod[0];
    }

    /// <summary>The stochasticity gamma (diffusers' eta): 0 deterministic, 1 fully stochastic.</summary>
    public double Gamma { get; }

    /// <inheritdoc />
    public override bool IsStochastic => Gamma > 0 && CallCount > 1;

    /// <inheritdoc />
    public override int NoiseDraws => Gamma > 0 ? CallCount - 1 : 0;

    /// <inheritdoc />
    public override (double Alpha, double Sigma) FinalCoordinates { get { double a = Training.AlphasCumprod[StepTarget(CallCount - 1)]; return (Math.Sqrt(a), Math.Sqrt(1 - a)); } }

    /// <summary>t_next of step <paramref name="i"/> (0 after the last step).</summary>
    private int NextTimestep(int i) => i + 1 < CallCount ? (int)Timesteps[i + 1] : 0;

    /// <summary>s = floor((1 - gamma) t_next), evaluated in float32 as diffusers does (an int tensor times a float).</summary>
    public int StepTarget(int i) => (int)MathF.Floor((float)(1 - Gamma) * NextTimestep(i));

    /// <inheritdoc />
    public override DenoiserCall Call(int i)
    {
        double abar = Training.AlphasCumprod[(int)Timesteps[i]];
        return new DenoiserCall(i, Timesteps[i], Math.Sqrt((1 - abar) / abar), Math.Sqrt(abar), Math.Sqrt(1 - abar));
    }

    /// <inheritdoc />
    protected override void StepCore(Tensor modelOutput, int i, Tensor sample)
    {
        double abar = Training.AlphasCumprod[(int)Timesteps[i]];
        int next = NextTimestep(i);
        double abarNext = next >= 0 ? Training.AlphasCumprod[next] : _finalAlphaCumprod;
        double abarS = Training.AlphasCumprod[StepTarget(i)];
        double a = Math.Sqrt(abar), s = Math.Sqrt(1 - abar);
        var (x0x, x0m) = DataPrediction(a, s);
        var (ex, em) = NoisePrediction(a, s);
        // x_s = sqrt(abar_s) x0 + sqrt(1 - abar_s) eps, then (not on the last step) forward to t_next.
        double cs = Math.Sqrt(abarS), ce = Math.Sqrt(1 - abarS), scale = 1, noise = 0;
        Tensor? z = null;
        if (Gamma > 0 && i != CallCount - 1)
        {
            z = DrawNoise(1, sample, i);
            scale = Math.Sqrt(abarNext / abarS);
            noise = Math.Sqrt(1 - abarNext / abarS);
        }
        Term(sample, scale * (cs * x0x + ce * ex)).Term(modelOutput, scale * (cs * x0m + ce * em));
        if (z is not null) Term(z, noise);
        Into(sample);
    }
}
