using Engine.Tools;

namespace Engine.Sampling.Tests;

/// <summary>
/// Where a fixture misses the tolerance (teacher-forced 1e-5, closed loop 1e-4 x scale + 20 x
/// sensitivity) by a margin that input rounding does not explain, the cause is diffusers' own float32
/// arithmetic: the engine computes step coefficients in double and applies each update as one fused
/// kernel. These tests replay diffusers' update in float32, operation by operation, and show that this
/// replay matches the recorded samples far more closely than the engine's update can.
/// </summary>
[TestFixture]
public class DiffusersRoundingTests
{
    /// <summary>
    /// DEIS order 3 (deis_o3_lin_eps_n20): diffusers takes differences of the antiderivatives of the
    /// log-rho Lagrange basis in float32, which cancel to about 1e-5 relative; the engine's double
    /// coefficients land 1.2e-5 away from the recorded samples, a float32 replay within 1e-6.
    /// </summary>
    [Test]
    public void DeisThirdOrderGapIsFloat32Coefficients()
    {
        using var f = new SchedulerFixture("deis_o3_lin_eps_n20");
        Assert.That(f.Config.OptionsAs<Schedulers.DeisScheduler.Options>().SolverOrder, Is.EqualTo(3));
        Assert.That(f.Steps, Is.GreaterThanOrEqualTo(15), "no lower-order final steps below 15 steps");
        var sigmas = f.Tensors.ReadFloats("sigmas");
        int calls = f.Json.GetProperty("num_model_calls").GetInt32();

        // Model outputs converted the way diffusers' DEIS does (eps -> x0 -> eps, in float32).
        var converted = new float[calls][];
        for (int i = 0; i < calls; i++)
        {
            var (a, s) = AlphaSigma(sigmas[i]);
            var x = Input(f, i);
            var eps = f.Row("model_outputs", i);
            converted[i] = new float[eps.Length];
            for (int k = 0; k < eps.Length; k++)
            {
                float x0 = (x[k] - s * eps[k]) / a;
                converted[i][k] = (x[k] - a * x0) / s;
            }
        }

        using var scheduler = SchedulerFactory.Create(f.Config, f.Steps);
        var device = TestDevices.Get("cpu");
        double worstReplay = 0, worstEngine = 0;
        for (int i = 2; i < calls; i++)
        {
            var (at, st) = AlphaSigma(sigmas[i + 1]);
            var (a0, s0) = AlphaSigma(sigmas[i]);
            var (a1, s1) = AlphaSigma(sigmas[i - 1]);
            var (a2, s2) = AlphaSigma(sigmas[i - 2]);
            float rt = st / at, r0 = s0 / a0, r1 = s1 / a1, r2 = s2 / a2;
            float c1 = Ind(rt, r0, r1, r2) - Ind(r0, r0, r1, r2);
            float c2 = Ind(rt, r1, r2, r0) - Ind(r0, r1, r2, r0);
            float c3 = Ind(rt, r2, r0, r1) - Ind(r0, r2, r0, r1);
            var x = Input(f, i);
            var replay = new float[x.Length];
            for (int k = 0; k < x.Length; k++)
                replay[k] = at * (x[k] / a0 + c1 * converted[i][k] + c2 * converted[i - 1][k] + c3 * converted[i - 2][k]);
            var expected = f.Row("samples", i);
            worstReplay = Math.Max(worstReplay, FixtureTests.StepError(replay, expected, x));
        }

        // The engine's own teacher-forced pass, for the comparison.
        using var xt = device.Upload(f.Tensors.ReadFloats("x_T"), f.SampleShape);
        for (int i = 0; i < calls; i++)
        {
            if (i > 0) device.CopyFromHost(System.Runtime.InteropServices.MemoryMarshal.AsBytes(f.Row("samples", i - 1).AsSpan()), xt);
            using var output = device.Upload(f.Row("model_outputs", i), f.SampleShape);
            var input = Input(f, i);
            scheduler.Step(output, i, xt);
            if (i >= 2) worstEngine = Math.Max(worstEngine, FixtureTests.StepError(xt.ToArray(), f.Row("samples", i), input));
        }
        TestContext.Out.WriteLine($"third-order steps: float32 replay {worstReplay:E2}, engine (double coefficients) {worstEngine:E2}");
        Assert.That(worstReplay, Is.LessThanOrEqualTo(1e-6), "diffusers' update replayed in float32");
        Assert.That(worstReplay, Is.LessThan(worstEngine / 4), "the replay explains the engine's gap");
    }

    /// <summary>
    /// DPM-Solver order 3 on the cosine schedule, v prediction (dpm_dpmo3_cos_v_smin_n20), step 0: it
    /// leaves sigma 20291, where alpha_t / alpha_s ~ 1600 multiplies the sample and the noise term
    /// cancels it to O(1), so each float32 rounding of diffusers' scalars and products is amplified about
    /// 1600 times. A float32 replay of diffusers' first-order update lands within 1e-5; the engine's
    /// double scalars 1.7e-4 away.
    /// </summary>
    [Test]
    public void CosineFirstStepGapIsFloat32Arithmetic()
    {
        using var f = new SchedulerFixture("dpm_dpmo3_cos_v_smin_n20");
        var sigmas = f.Tensors.ReadFloats("sigmas");
        var x = f.Tensors.ReadFloats("x_T");
        var v = f.Row("model_outputs", 0);
        var (at, st) = AlphaSigma(sigmas[1]);
        var (a0, s0) = AlphaSigma(sigmas[0]);
        float lt = MathF.Log(at) - MathF.Log(st), l0 = MathF.Log(a0) - MathF.Log(s0);
        float h = lt - l0;
        float cx = at / a0, ce = st * (MathF.Exp(h) - 1f);
        var replay = new float[x.Length];
        for (int k = 0; k < x.Length; k++)
        {
            float eps = a0 * v[k] + s0 * x[k];
            replay[k] = cx * x[k] - ce * eps;
        }
        double err = FixtureTests.StepError(replay, f.Row("samples", 0), x);
        TestContext.Out.WriteLine($"step 0 (sigma {sigmas[0]} -> {sigmas[1]}): float32 replay {err:E2}, amplification alpha_t/alpha_s {cx:F0}");
        Assert.That(err, Is.LessThanOrEqualTo(1e-5));
    }

    /// <summary>
    /// Closed loop, Euler on the cosine schedule (euler_cos_v_n5): the sample starts at sigma 20291, so
    /// every float32 operation of diffusers' step (x + (x - x0) / sigma * dt, on values ~2e4) rounds by
    /// ~1e-3, and the five steps carry that to the end. Replaying diffusers' scale_model_input and step
    /// operation by operation in float32, with the analytic model evaluated in double and rounded as the
    /// fixture's was, reproduces diffusers' final sample exactly; the engine's fused update, whose
    /// rounding differs, lands about 1e-3 away, as much as one float32 rounding per step moves it.
    /// </summary>
    [Test]
    public void EulerClosedLoopGapIsFloat32Arithmetic()
    {
        using var f = new SchedulerFixture("euler_cos_v_n5");
        var sigmas = f.Tensors.ReadFloats("sigmas");
        var timesteps = f.Tensors.ReadFloats("timesteps");
        var mu = f.Tensors.ReadFloats("mu");
        var s = f.Tensors.ReadFloats("s");
        var logSigmas = f.Tensors.ReadFloats("alphas_cumprod").Select(a => Math.Log(Math.Sqrt((1.0 - a) / a))).ToArray();
        var x = f.Tensors.ReadFloats("x_T");
        int calls = f.Json.GetProperty("num_model_calls").GetInt32();
        for (int i = 0; i < calls; i++)
        {
            float sigma = sigmas[i];
            float sigma2p1 = sigma * sigma + 1f, root = MathF.Sqrt(sigma2p1), outScale = -sigma / root, dt = sigmas[i + 1] - sigma;
            // The fixture's model: noise level interpolated in log sigma at the timestep, in double.
            double t = timesteps[i];
            int lo = Math.Min((int)Math.Floor(t), logSigmas.Length - 2);
            double w = t - lo, modelSigma = Math.Exp(logSigmas[lo] * (1 - w) + logSigmas[lo + 1] * w);
            double a = 1 / Math.Sqrt(1 + modelSigma * modelSigma), b = modelSigma * a;
            var next = new float[x.Length];
            for (int k = 0; k < x.Length; k++)
            {
                float input = x[k] / root;
                double m = mu[k % mu.Length], sv = s[k % s.Length], variance = a * a * sv * sv + b * b;
                double eps = b * (input - a * m) / variance, x0 = (a * sv * sv * input + b * b * m) / variance;
                float v = (float)(a * eps - b * x0);
                float predOriginal = v * outScale + x[k] / sigma2p1;
                float derivative = (x[k] - predOriginal) / sigma;
                next[k] = x[k] + derivative * dt;
            }
            x = next;
        }
        var final = f.Tensors.ReadFloats("final");
        double scale = final.Max(MathF.Abs), replay = 0;
        for (int k = 0; k < final.Length; k++) replay = Math.Max(replay, Math.Abs(x[k] - final[k]));

        var device = TestDevices.Get("cpu");
        using var scheduler = SchedulerFactory.Create(f.Config, f.Steps);
        using var model = new AnalyticGaussian(device, mu, s, f.Tensors.Info("mu").Shape, f.Config);
        using var sample = device.Upload(f.Tensors.ReadFloats("x_T"), f.SampleShape);
        Sampler.Run(scheduler, model, sample);
        var engine = sample.ToArray();
        double engineErr = 0;
        for (int k = 0; k < final.Length; k++) engineErr = Math.Max(engineErr, Math.Abs(engine[k] - final[k]));
        TestContext.Out.WriteLine($"max |final - diffusers|: float32 replay {replay:E2}, engine {engineErr:E2} (scale {scale:F2})");
        Assert.That(replay, Is.LessThanOrEqualTo(1e-6 * scale), "diffusers' closed loop replayed in float32");
        Assert.That(replay, Is.LessThan(engineErr / 100), "the replay explains the engine's gap");
    }

    private static float[] Input(SchedulerFixture f, int i) => i > 0 ? f.Row("samples", i - 1) : f.Tensors.ReadFloats("x_T");

    /// <summary>diffusers' _sigma_to_alpha_sigma_t in float32.</summary>
    private static (float Alpha, float Sigma) AlphaSigma(float sigma)
    {
        float alpha = 1f / MathF.Sqrt(sigma * sigma + 1f);
        return (alpha, sigma * alpha);
    }

    /// <summary>diffusers' DEIS ind_fn (antiderivative of a log-rho Lagrange basis polynomial) in float32, same operation order.</summary>
    private static float Ind(float t, float start, float end1, float end2)
    {
        float ls = MathF.Log(start), l1 = MathF.Log(end1), l2 = MathF.Log(end2), lt = MathF.Log(t);
        float numerator = t * (l1 * (l2 - lt + 1f) - l2 * lt + l2 + lt * lt - 2f * lt + 2f);
        float denominator = (ls - l1) * (ls - l2);
        return numerator / denominator;
    }
}
