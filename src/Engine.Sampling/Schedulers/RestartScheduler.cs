using Engine.Core;
using Engine.Sampling.Schedules;

namespace Engine.Sampling.Schedulers;

/// <summary>One restart interval (Xu et al. 2023): on reaching the grid point nearest <paramref name="TMin"/>,
/// <paramref name="Repeats"/> times add noise back up to <paramref name="TMax"/> and re-integrate with
/// <paramref name="Steps"/> Heun steps on a Karras grid.</summary>
public sealed record RestartInterval(int Steps, int Repeats, double TMin, double TMax, double SNoise = 1.003);

/// <summary>
/// Restart sampling on the Heun (EDM second order) solver: the main pass is exactly
/// <see cref="HeunScheduler"/>'s; at a restart point the sample gets x += sqrt(t_max^2 - t_min^2) S_noise z
/// (added in the same linear combination that finishes the step) and the interval is integrated again.
/// With no repeats it is the plain Heun sampler.
/// </summary>
public sealed class RestartScheduler : KarrasFormScheduler
{
    /// <summary>The restart interval of <c>restart</c>: Xu et al.'s VP setting [N = 3, K = 2, t_min 0.06, t_max 0.30].</summary>
    public static RestartInterval DefaultInterval { get; } = new(3, 2, 0.06, 0.30);

    /// <summary>Registration in <see cref="SchedulerRegistry"/>: no diffusers class; short name <c>restart</c> on the Heun config with <see cref="DefaultInterval"/>.</summary>
    public static SchedulerDescriptor Descriptor { get; } = new()
    {
        ShortNames =
        [
            new("restart", "Restart sampling on Heun (Xu et al.): 2 restarts of 3 steps between sigma 0.06 and 0.30",
                c => c.WithClass(HeunScheduler.DiffusersClass)) { Build = (c, steps) => new RestartScheduler(c, steps, [DefaultInterval]), ListOrder = 220, Convention = NameConvention.Engine },
        ],
    };

    private readonly List<(double From, double To, double TFrom, double TTo, double NoiseAfter)> _steps = [];
    private readonly List<(int Step, int Stage)> _calls = [];
    private readonly List<int> _mainSteps = [];
    private int _draws;

    /// <summary>Creates the sampler for <paramref name="steps"/> main steps and the given restart intervals.</summary>
    public RestartScheduler(SchedulerConfig config, int steps, IReadOnlyList<RestartInterval> intervals, bool endAtSigmaMin = false)
        : base(config, steps, roundKarrasTimesteps: false, allowFinalSigmaMin: false, endAtSigmaMin)
    {
        ArgumentNullException.ThrowIfNull(intervals);
        if (config.PredictionType == "sample") throw new SchedulerConfigException("Restart sampling: prediction_type 'sample' is not supported; supported: epsilon, v_prediction.");
        var restartAt = new Dictionary<int, RestartInterval>();
        foreach (var r in intervals)
        {
            if (r.Steps < 1 || r.Repeats < 0 || !(r.TMin > 0) || !(r.TMax > r.TMin) || !(r.SNoise > 0))
                throw new ArgumentException($"Restart interval {r}: needs Steps >= 1, Repeats >= 0, 0 < TMin < TMax, SNoise > 0.");
            if (r.Repeats == 0) continue;
            // The main-grid point closest to t_min (skipping the first and the final one).
            int best = 1;
            for (int k = 1; k < steps; k++)
                if (Math.Abs(StepSigmas[k] - r.TMin) < Math.Abs(StepSigmas[best] - r.TMin)) best = k;
            restartAt[best] = r;
        }
        for (int k = 0; k < steps; k++)
        {
            _mainSteps.Add(_steps.Count);
            _steps.Add((StepSigmas[k], StepSigmas[k + 1], StepTimesteps[k], T(k + 1), 0));
            if (!restartAt.TryGetValue(k + 1, out var r)) continue;
            double tmin = StepSigmas[k + 1];
            var grid = SigmaGrids.Karras(tmin, r.TMax, r.Steps + 1).Select(s => (double)(float)s).ToArray();
            for (int rep = 0; rep < r.Repeats; rep++)
            {
                // Noise is added at the end of the step that lands on t_min.
                var last = _steps[^1];
                _steps[^1] = last with { NoiseAfter = Math.Sqrt(r.TMax * r.TMax - tmin * tmin) * r.SNoise };
                for (int j = 0; j < r.Steps; j++)
                    _steps.Add((grid[j], grid[j + 1], (float)Training.SigmaToT(grid[j]), (float)Training.SigmaToT(grid[j + 1]), 0));
            }
        }
        for (int j = 0; j < _steps.Count; j++)
        {
            _calls.Add((j, 0));
            if (_steps[j].To > 0) _calls.Add((j, 1));
        }
        Timesteps = _calls.Select(c => c.Stage == 0 ? _steps[c.Step].TFrom : _steps[c.Step].TTo).ToArray();
        Sigmas = StepSigmas;
    }

    private double T(int k) => k < StepTimesteps.Length ? StepTimesteps[k] : (float)Training.SigmaToT(StepSigmas[k]);

    /// <inheritdoc />
    public override bool IsStochastic => _steps.Any(s => s.NoiseAfter > 0);

    /// <inheritdoc />
    public override int FirstCallOfStep(int step) => _calls.IndexOf((_mainSteps[base.FirstCallOfStep(step)], 0));

    /// <inheritdoc />
    public override int NoiseDraws => _steps.Count(s => s.NoiseAfter > 0);

    /// <inheritdoc />
    protected override double CallSigma(int i) { var (j, st) = _calls[i]; return st == 0 ? _steps[j].From : _steps[j].To; }

    /// <inheritdoc />
    protected override void Reset() => _draws = 0;

    /// <inheritdoc />
    protected override void StepCore(Tensor modelOutput, int i, Tensor sample)
    {
        var (j, stage) = _calls[i];
        var (s, sn, _, _, noiseAfter) = _steps[j];
        double dt = sn - s;
        var saved = Scratch(0, sample);
        var d1 = Scratch(1, sample);
        bool finishes = stage == 1 || sn == 0;
        Tensor? z = finishes && noiseAfter > 0 ? DrawNoise(2, sample, _draws++) : null;
        if (stage == 0)
        {
            var (dx, dm) = Derivative(s);
            if (sn > 0)
            {
                Term(sample, dx).Term(modelOutput, dm).Into(d1);
                sample.Device.Copy(sample, saved);
            }
            Term(sample, 1 + dt * dx).Term(modelOutput, dt * dm);
        }
        else
        {
            var (dx, dm) = Derivative(sn);
            Term(saved, 1).Term(d1, dt / 2).Term(sample, dt / 2 * dx).Term(modelOutput, dt / 2 * dm);
        }
        if (z is not null) Term(z, noiseAfter);
        Into(sample);
    }
}
