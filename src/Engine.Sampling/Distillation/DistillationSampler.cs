using Engine.Core;
using Engine.Sampling.Plugins;
using Engine.Sampling.Schedules;

namespace Engine.Sampling.Distillation;

/// <summary>
/// Distillation++ (Park et al.): a few-step student sampled on explicit timesteps, refined by its
/// teacher during the first <see cref="DistillationOptions.GuideSteps"/> steps. Per step t -&gt; t_next
/// (VP coordinates x = a x0 + s eps, a = sqrt(alphabar_t)):
/// 1. the student's output becomes x0 (Tweedie through its prediction type; optional consistency
///    boundary x0 = c_skip x + c_out x0_pred and clamp), eps = (x - a x0) / s;
/// 2. on guided steps, x0 is re-noised to t_next (to t itself when t_next is the clean end, where the
///    teacher would see no noise) with random, deterministic (eps) or hybrid noise, the teacher (with
///    its own CFG, e.g. a <see cref="Guidance.GuidedDenoiser"/>) predicts x0_T there and
///    x0 &lt;- x0 + lambda (x0_T - x0); eps is recomputed;
/// 3. the sample moves by DDIM (= sigma-space Euler), Euler ancestral or the consistency re-noise.
/// Every update is one linear combination on the device; model evaluations are counted per model.
/// </summary>
public sealed class DistillationSampler : IDisposable
{
    private readonly TrainingSchedule _training;
    private readonly double[] _timesteps;
    private readonly string _studentType, _teacherType;
    private Tensor? _x0, _z, _tmp;

    /// <summary>
    /// Sets up sampling on <paramref name="studentTimesteps"/> (descending training timesteps, e.g.
    /// [999] for a one-step student or [999, 759, 499, 259]) of <paramref name="training"/>.
    /// </summary>
    public DistillationSampler(TrainingSchedule training, IReadOnlyList<double> studentTimesteps, string studentPredictionType, string teacherPredictionType, DistillationOptions options)
    {
        ArgumentNullException.ThrowIfNull(training);
        ArgumentNullException.ThrowIfNull(studentTimesteps);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (studentTimesteps.Count == 0) throw new ArgumentException("Distillation++: at least one student timestep is needed.", nameof(studentTimesteps));
        for (int i = 0; i < studentTimesteps.Count; i++)
        {
            double t = studentTimesteps[i];
            if (!(t >= 0 && t <= training.Count - 1)) throw new ArgumentOutOfRangeException(nameof(studentTimesteps), t, $"Distillation++: student timestep {i} must be in [0, {training.Count - 1}].");
            if (i > 0 && !(t < studentTimesteps[i - 1])) throw new ArgumentException($"Distillation++: student timesteps must be strictly decreasing; {t} follows {studentTimesteps[i - 1]}.", nameof(studentTimesteps));
        }
        foreach (var (type, who) in new[] { (studentPredictionType, "student"), (teacherPredictionType, "teacher") })
            if (type is not ("epsilon" or "sample" or "v_prediction"))
                throw new ArgumentException($"Distillation++: {who} prediction type '{type}' is not supported; supported: epsilon, sample, v_prediction.");
        _training = training;
        _timesteps = studentTimesteps.ToArray();
        _studentType = studentPredictionType; _teacherType = teacherPredictionType;
        Options = options;
    }

    /// <summary>The settings.</summary>
    public DistillationOptions Options { get; }

    /// <summary>Student timesteps.</summary>
    public IReadOnlyList<double> Timesteps => _timesteps;

    /// <summary>Student evaluations in the last run.</summary>
    public int StudentCalls { get; private set; }

    /// <summary>Teacher evaluations in the last run (each may be a cond + uncond batch: see the teacher's own counters).</summary>
    public int TeacherCalls { get; private set; }

    /// <summary>VP coordinates (a, s) of a training timestep.</summary>
    public (double A, double S) Coordinates(double t)
    {
        double sigma = _training.SigmaAt(t);
        return TrainingSchedule.AlphaSigma(sigma);
    }

    /// <summary>The consistency boundary coefficients (c_skip, c_out) at timestep <paramref name="t"/>.</summary>
    public (double Skip, double Out) Boundary(double t)
    {
        double sd2 = Options.SigmaData * Options.SigmaData, ts = t * Options.TimestepScaling;
        return (sd2 / (ts * ts + sd2), ts / Math.Sqrt(ts * ts + sd2));
    }

    /// <summary>
    /// Samples in place: <paramref name="sample"/> holds x_T (standard normal, the VP sample at the
    /// first timestep) and receives the final x0. <paramref name="teacher"/> may be null when lambda
    /// is 0 or no step is guided; <paramref name="noise"/> is needed by random / hybrid re-noising and
    /// by stochastic updates. <paramref name="onStep"/> is called after every student step with its index.
    /// </summary>
    public void Run(IDenoiser student, IDenoiser? teacher, Tensor sample, INoiseSource? noise = null, Action<int>? onStep = null)
    {
        ArgumentNullException.ThrowIfNull(student);
        bool guided = Options.Lambda != 0 && Options.GuideSteps > 0;
        if (guided && teacher is null) throw new ArgumentException("Distillation++: lambda > 0 needs a teacher denoiser.", nameof(teacher));
        bool needsNoise = (guided && Options.Renoise != RenoiseMode.Deterministic) || (Options.Update != StudentUpdate.Ddim && _timesteps.Length > 1);
        if (needsNoise && noise is null) throw new ArgumentException("Distillation++: random or hybrid re-noising and stochastic updates need a noise source.", nameof(noise));
        var d = sample.Device;
        var x0 = Buf(ref _x0, sample); var z = Buf(ref _z, sample); var tmp = Buf(ref _tmp, sample);
        StudentCalls = TeacherCalls = 0;
        int n = _timesteps.Length;
        for (int i = 0; i < n; i++)
        {
            double t = _timesteps[i];
            var (a, s) = Coordinates(t);
            bool last = i == n - 1;
            double tn = last ? 0 : _timesteps[i + 1];
            var (an, sn) = last ? (1.0, 0.0) : Coordinates(tn);

            // 1. Student x0.
            var m = student.Predict(sample, new DenoiserCall(i, t, s / a, a, s));
            StudentCalls++;
            var (dx, dm) = PredictionSpace.DataFromOutput(_studentType, a, s);
            if (Options.ConsistencyBoundary)
            {
                var (cs, co) = Boundary(t);
                (dx, dm) = (cs + co * dx, co * dm);
            }
            d.LinearCombination(x0, [sample, m.Reshape(sample.ShapeArray())], [(float)dx, (float)dm]);
            if (Options.ClampX0 > 0) Clamp(x0, Options.ClampX0, tmp);

            // 2. Teacher refinement of x0.
            if (guided && i < Options.GuideSteps)
            {
                var (tt, ta, tsg) = sn > 0 ? (tn, an, sn) : (t, a, s);
                // The student's noise estimate (x - a x0) / s, or fresh noise, or both.
                double ce = Options.Renoise switch { RenoiseMode.Random => 0, RenoiseMode.Deterministic => 1, _ => Math.Sqrt(1 - Options.HybridMix) };
                double cz = Options.Renoise switch { RenoiseMode.Random => 1, RenoiseMode.Deterministic => 0, _ => Math.Sqrt(Options.HybridMix) };
                if (cz != 0) noise!.Fill(z, 2 * i);
                // z' = ta x0 + tsg (ce eps + cz z), eps = (x - a x0) / s.
                if (cz != 0) d.LinearCombination(tmp, [x0, sample, z], [(float)(ta - tsg * ce * a / s), (float)(tsg * ce / s), (float)(tsg * cz)]);
                else d.LinearCombination(tmp, [x0, sample], [(float)(ta - tsg * ce * a / s), (float)(tsg * ce / s)]);
                var mt = teacher!.Predict(tmp, new DenoiserCall(i, tt, tsg / ta, ta, tsg));
                TeacherCalls++;
                var (tx, tm) = PredictionSpace.DataFromOutput(_teacherType, ta, tsg);
                double l = Options.Lambda;
                d.LinearCombination(x0, [x0, tmp, mt.Reshape(sample.ShapeArray())], [(float)(1 - l), (float)(l * tx), (float)(l * tm)]);
            }

            // 3. Move to t_next: x_next = c0 x0 + ce eps + cz z with eps = (x - a x0) / s.
            if (last) { d.Copy(x0, sample); onStep?.Invoke(i); break; }
            double c0, ceps, cz2 = 0;
            switch (Options.Update)
            {
                case StudentUpdate.Ddim: c0 = an; ceps = sn; break;
                case StudentUpdate.Consistency: c0 = an; ceps = 0; cz2 = sn; break;
                default:
                {
                    double sig = s / a, sigN = sn / an;
                    double up = Math.Sqrt(sigN * sigN * (sig * sig - sigN * sigN) / (sig * sig));
                    double down = Math.Sqrt(sigN * sigN - up * up);
                    c0 = an; ceps = an * down; cz2 = an * up;
                    break;
                }
            }
            if (cz2 != 0)
            {
                noise!.Fill(z, 2 * i + 1);
                d.LinearCombination(sample, [x0, sample, z], [(float)(c0 - ceps * a / s), (float)(ceps / s), (float)cz2]);
            }
            else d.LinearCombination(sample, [x0, sample], [(float)(c0 - ceps * a / s), (float)(ceps / s)]);
            onStep?.Invoke(i);
        }
    }

    private static void Clamp(Tensor x, double r, Tensor scratch)
    {
        var d = x.Device;
        d.Affine(x, scratch, 1f, (float)-r);
        d.Activate(scratch, scratch, Activation.Relu);
        d.Affine(x, x, 1f, (float)r);
        d.Activate(x, x, Activation.Relu);
        d.LinearCombination(x, [x, scratch], [1f, -1f]);
        d.Affine(x, x, 1f, (float)-r);
    }

    private static Tensor Buf(ref Tensor? t, Tensor like)
    {
        if (t is null || t.Length != like.Length || !ReferenceEquals(t.Device, like.Device)) { t?.Dispose(); t = like.Device.Allocate(like.ShapeArray()); }
        return t.Reshape(like.ShapeArray());
    }

    /// <summary>Releases the buffers.</summary>
    public void Dispose() { _x0?.Dispose(); _z?.Dispose(); _tmp?.Dispose(); _x0 = _z = _tmp = null; }
}
