using Engine.Core;
using Engine.Sampling.Schedules;

namespace Engine.Sampling.Schedulers;

/// <summary>
/// diffusers PNDMScheduler (Liu et al. 2022): three pseudo Runge-Kutta steps (12 model calls) to warm
/// up, then pseudo linear multistep (PLMS) with up to 4 noise estimates; with skip_prk_steps the warm-up
/// is one Heun-like redo of the first step. Each update is the DDIM-form transfer
/// x_prev = sqrt(abar_prev / abar) x - (abar_prev - abar) eps / (abar sqrt(1 - abar_prev) + sqrt(abar (1 - abar) abar_prev)).
/// </summary>
public sealed class PndmScheduler : Scheduler
{
    /// <summary>The diffusers class this scheduler implements.</summary>
    public const string DiffusersClass = "PNDMScheduler";

    /// <summary>Registration in <see cref="SchedulerRegistry"/>: VP form with its own (leading) spacing, epsilon or v prediction; short name <c>pndm</c> (PLMS).</summary>
    public static SchedulerDescriptor Descriptor { get; } = new()
    {
        ClassNames = [DiffusersClass],
        Create = (c, steps) => new PndmScheduler(c, steps),
        ReadOptions = (r, _) => new Options { SkipPrkSteps = r.Bool("skip_prk_steps", false) },
        Defaults = new() { TimestepSpacing = "leading" },
        HasSigmaGrid = false,
        Validate = c => c.PredictionType == "sample" ? $"prediction_type 'sample' is not supported by {DiffusersClass}; supported: epsilon, v_prediction." : null,
        ShortNames =
        [
            new("pndm", "PNDM / PLMS (pseudo linear multistep, order 4)",
                c => c.WithClass(DiffusersClass, ("skip_prk_steps", true))) { ListOrder = 80 },
        ],
    };

    /// <summary>PNDM's own option.</summary>
    public sealed record Options : SchedulerOptions
    {
        /// <summary>Replace the Runge-Kutta warm-up by one Heun-like redo of the first step (PLMS only).</summary>
        public bool SkipPrkSteps { get; init; }
    }

    private readonly int _prkCount, _ratio;
    private readonly double[] _prkTimesteps;
    private readonly double _finalAlphaCumprod;
    private readonly Tensor?[] _ets = new Tensor?[4];
    private int _etsCount, _etsNext;
    private Tensor? _rk1, _rk2;
    private bool _haveCurSample;

    /// <summary>Creates the scheduler for <paramref name="steps"/> steps.</summary>
    public PndmScheduler(SchedulerConfig config, int steps) : base(config, steps)
    {
        var asc = TimestepSpacing.Discrete(config, steps).Reverse().ToArray();
        foreach (var t in asc)
            if (t < 0 || t > config.NumTrainTimesteps - 1) throw new SchedulerConfigException($"PNDMScheduler: timestep {t} from timestep_spacing '{config.TimestepSpacing}' and steps_offset {config.StepsOffset} is outside [0, {config.NumTrainTimesteps - 1}].");
        _ratio = config.NumTrainTimesteps / steps;
        var options = Descriptor.OptionsOf<Options>(config);
        _finalAlphaCumprod = config.SetAlphaToOne ? 1.0 : Training.AlphasCumprod[0];
        double[] plms;
        if (options.SkipPrkSteps)
        {
            _prkTimesteps = [];
            plms = asc.Take(asc.Length - 1).Concat(asc.Skip(Math.Max(asc.Length - 2, 0)).Take(1)).Concat(asc.Skip(asc.Length - 1)).Reverse().ToArray();
        }
        else
        {
            if (steps < 4) throw new ArgumentOutOfRangeException(nameof(steps), steps, "PNDMScheduler with Runge-Kutta warm-up (skip_prk_steps false) needs at least 4 steps.");
            // The last 4 timesteps, each with its half step, reversed and spread over 12 calls.
            var last = asc.Skip(asc.Length - 4).ToArray();
            var pairs = last.SelectMany(t => new[] { t, t + _ratio / 2 }).ToArray();
            var rep = pairs.Take(pairs.Length - 1).SelectMany(t => new[] { t, t }).ToArray();
            _prkTimesteps = rep.Skip(1).Take(rep.Length - 2).Reverse().ToArray();
            plms = asc.Take(asc.Length - 3).Reverse().ToArray();
        }
        _prkCount = _prkTimesteps.Length;
        Timesteps = _prkTimesteps.Concat(plms).ToArray();
    }

    /// <inheritdoc />
    public override DenoiserCall Call(int i)
    {
        double abar = Training.AlphasCumprod[(int)Timesteps[i]];
        return new DenoiserCall(i, Timesteps[i], Math.Sqrt((1 - abar) / abar), Math.Sqrt(abar), Math.Sqrt(1 - abar));
    }

    /// <inheritdoc />
    protected override void Reset() { _etsCount = 0; _etsNext = 0; _haveCurSample = false; }

    /// <inheritdoc />
    public override (double Alpha, double Sigma) FinalCoordinates
    {
        get
        {
            int prev = (int)Timesteps[^1] - _ratio;
            double p = prev >= 0 ? Training.AlphasCumprod[prev] : _finalAlphaCumprod;
            return (Math.Sqrt(p), Math.Sqrt(1 - p));
        }
    }

    private Tensor PushEt(Tensor modelOutput, Tensor like)
    {
        var slot = Scratch(_etsNext, like);
        like.Device.Copy(modelOutput, slot);
        _ets[_etsNext] = slot;
        _etsNext = (_etsNext + 1) % 4;
        _etsCount = Math.Min(_etsCount + 1, 4);
        return slot;
    }

    private Tensor Et(int k) => _ets[((_etsNext - 1 - k) % 4 + 4) % 4]!;

    /// <summary>Adds the terms of the transfer from t to prev with x = <paramref name="x"/> and eps = sum w_k outputs_k.</summary>
    private void Transfer(Tensor x, int t, int prev, ReadOnlySpan<(Tensor T, double W)> outputs)
    {
        double abar = Training.AlphasCumprod[t];
        double abarPrev = prev >= 0 ? Training.AlphasCumprod[prev] : _finalAlphaCumprod;
        double sc = Math.Sqrt(abarPrev / abar);
        double denom = abar * Math.Sqrt(1 - abarPrev) + Math.Sqrt(abar * (1 - abar) * abarPrev);
        double k = (abarPrev - abar) / denom;
        double cx = sc, cm = -k;
        if (Config.PredictionType == "v_prediction") { cx -= k * Math.Sqrt(1 - abar); cm = -k * Math.Sqrt(abar); }
        Term(x, cx);
        foreach (var (tensor, w) in outputs) Term(tensor, cm * w);
    }

    /// <inheritdoc />
    protected override void StepCore(Tensor modelOutput, int i, Tensor sample)
    {
        var cur = Scratch(6, sample);
        int t = (int)Timesteps[i];
        // diffusers' counter counts the calls of this run, which start part-way for img2img.
        int counter = i - StartCall;
        if (counter < _prkCount)
        {
            int phase = counter % 4;
            int prev = t - (counter % 2 == 1 ? 0 : _ratio / 2);
            int tBase = (int)_prkTimesteps[counter / 4 * 4];
            switch (phase)
            {
                case 0:
                    var e = PushEt(modelOutput, sample);
                    sample.Device.Copy(sample, cur);
                    Transfer(cur, tBase, prev, [(e, 1.0)]);
                    break;
                case 1:
                    _rk1 = Scratch(4, sample); sample.Device.Copy(modelOutput, _rk1);
                    Transfer(cur, tBase, prev, [(modelOutput, 1.0)]);
                    break;
                case 2:
                    _rk2 = Scratch(5, sample); sample.Device.Copy(modelOutput, _rk2);
                    Transfer(cur, tBase, prev, [(modelOutput, 1.0)]);
                    break;
                default:
                    Transfer(cur, tBase, prev, [(Et(0), 1.0 / 6), (_rk1!, 1.0 / 3), (_rk2!, 1.0 / 3), (modelOutput, 1.0 / 6)]);
                    break;
            }
            Into(sample);
            return;
        }
        int prevT = t - _ratio;
        if (counter == 1) { prevT = t; t += _ratio; }
        else PushEt(modelOutput, sample);
        if (_etsCount == 1 && counter == 0)
        {
            sample.Device.Copy(sample, cur);
            _haveCurSample = true;
            Transfer(sample, t, prevT, [(Et(0), 1.0)]);
        }
        else if (_etsCount == 1 && counter == 1)
        {
            if (!_haveCurSample) throw new InvalidOperationException("PNDMScheduler: the PLMS warm-up step needs the previous sample.");
            Transfer(cur, t, prevT, [(modelOutput, 0.5), (Et(0), 0.5)]);
        }
        else if (_etsCount == 2) Transfer(sample, t, prevT, [(Et(0), 1.5), (Et(1), -0.5)]);
        else if (_etsCount == 3) Transfer(sample, t, prevT, [(Et(0), 23.0 / 12), (Et(1), -16.0 / 12), (Et(2), 5.0 / 12)]);
        else Transfer(sample, t, prevT, [(Et(0), 55.0 / 24), (Et(1), -59.0 / 24), (Et(2), 37.0 / 24), (Et(3), -9.0 / 24)]);
        Into(sample);
    }
}
