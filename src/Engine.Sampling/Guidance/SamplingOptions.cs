using Engine.Core;
using Engine.Sampling.Plugins;

namespace Engine.Sampling.Guidance;

/// <summary>
/// Everything the catalog parses: guidance, plug-ins and Distillation++ settings, all off by default.
/// <see cref="Build"/> composes the model side of a run for any scheduler.
/// </summary>
public sealed record SamplingOptions
{
    /// <summary>CFG, rescale, interval, PAG, CADS.</summary>
    public GuidanceOptions Guidance { get; init; } = new();

    /// <summary>Predictor-corrector guidance (null: off; run with <see cref="PredictorCorrectorGuidance.Run"/>).</summary>
    public PredictorCorrectorOptions? PredictorCorrector { get; init; }

    /// <summary>Epsilon scaling constant b (1: off).</summary>
    public double EpsilonScale { get; init; } = 1;

    /// <summary>Epsilon scaling slope k per training timestep.</summary>
    public double EpsilonScaleSlope { get; init; }

    /// <summary>Time-shift half-window in training steps (0: off).</summary>
    public int TimeShiftWindow { get; init; }

    /// <summary>Time-shift applies while the timestep is above this.</summary>
    public double TimeShiftCutoff { get; init; }

    /// <summary>HiGS weight (0: off).</summary>
    public double HigsWeight { get; init; }

    /// <summary>HiGS EMA factor.</summary>
    public double HigsAlpha { get; init; } = 0.75;

    /// <summary>HiGS window in trajectory time.</summary>
    public (double Lo, double Hi) HigsWindow { get; init; } = (0.4, 0.95);

    /// <summary>FSampler settings (mode Off: off).</summary>
    public FSamplerOptions FSampler { get; init; } = new();

    /// <summary>DC-Solver ratio file (null: off).</summary>
    public string? DcRatiosPath { get; init; }

    /// <summary>DC-Solver interpolation order.</summary>
    public int DcOrder { get; init; } = 2;

    /// <summary>Distillation++ settings (used by <see cref="Distillation.DistillationSampler"/>).</summary>
    public Distillation.DistillationOptions Distillation { get; init; } = new();

    /// <summary>The teacher's CFG scale for Distillation++.</summary>
    public double TeacherScale { get; init; } = 1;

    /// <summary>
    /// The denoiser for <paramref name="scheduler"/>: the guided model (with time-shift as its
    /// timestep provider), then epsilon scaling, HiGS, DC compensation and, outermost, FSampler, so a
    /// skipped call skips every branch. Dispose the result after the run.
    /// </summary>
    public SamplingStack Build(IConditionalModel model, Conditioning conditioning, Scheduler scheduler, Device device)
    {
        var owned = new List<IDisposable>();
        try
        {
            var guidance = Guidance;
            if (TimeShiftWindow > 0)
            {
                var ts = new TimeShift(device, scheduler, TimeShiftWindow, TimeShiftCutoff);
                owned.Add(ts);
                guidance = guidance with { Timesteps = ts };
            }
            var guided = new GuidedDenoiser(model, conditioning, guidance, scheduler);
            owned.Add(guided);
            IDenoiser top = guided;
            if (EpsilonScale != 1 || EpsilonScaleSlope != 0) top = Add(new EpsilonScaling(top, scheduler, EpsilonScale, EpsilonScaleSlope));
            if (HigsWeight != 0) top = Add(new HistoryGuidance(top, scheduler, HigsWeight, HigsAlpha, HigsWindow.Lo, HigsWindow.Hi));
            if (DcRatiosPath is not null) top = Add(DcCompensation.FromJson(top, scheduler, DcRatiosPath, DcOrder));
            FSampler? fs = null;
            if (FSampler.Mode != FSamplerMode.Off) top = Add(fs = new FSampler(top, scheduler, FSampler));
            return new SamplingStack(top, guided, fs, owned);
        }
        catch
        {
            foreach (var o in owned) o.Dispose();
            throw;
        }

        IDenoiser Add(DenoiserPlugin p) { owned.Add(p); return p; }
    }
}

/// <summary>A composed model side: the outermost denoiser, the guided model and the FSampler (if any) for their counters.</summary>
public sealed class SamplingStack(IDenoiser denoiser, GuidedDenoiser guided, FSampler? fsampler, IReadOnlyList<IDisposable> owned) : IDenoiser, IDisposable
{
    /// <summary>The outermost denoiser.</summary>
    public IDenoiser Denoiser { get; } = denoiser;

    /// <summary>The guided model (forward and branch counters).</summary>
    public GuidedDenoiser Guided { get; } = guided;

    /// <summary>The FSampler plug-in, when enabled (model calls saved).</summary>
    public FSampler? FSampler { get; } = fsampler;

    /// <inheritdoc />
    public Tensor Predict(Tensor modelInput, in DenoiserCall call) => Denoiser.Predict(modelInput, call);

    /// <summary>Releases every component the stack created.</summary>
    public void Dispose() { for (int i = owned.Count - 1; i >= 0; i--) owned[i].Dispose(); }
}
