using Engine.Sampling.KDiffusion;
using Engine.Sampling.Schedules;
using Engine.Tools;

namespace Engine.Sampling.Tests;

/// <summary>
/// ComfyUI samplers without a ComfyUI trajectory in the fixtures (lcm, ddpm, dpm_2_a), against their
/// update written out per element in double on the host, with the analytic model's denoiser and the same draws.
/// </summary>
[TestFixture]
public class KDiffusionStochasticTests
{
    private const string Spec = "kdiffusion/comfy_euler_a_karras_n10.safetensors";

    private static SchedulerConfig Sd15 => SchedulerConfig.ParseJson(
        """{"_class_name":"EulerDiscreteScheduler","beta_schedule":"scaled_linear","beta_start":0.00085,"beta_end":0.012}""");

    // The analytic denoiser as ComfyUI calls it: input x / sqrt(sigma^2 + 1), model at the nearest integer timestep.
    private static double[] Denoise(double[] x, double sigma, float[] mu, float[] s, TrainingSchedule training)
    {
        double sm = training.Sigmas[ComfySchedules.NearestTimestep(training, sigma)];
        double a = 1 / Math.Sqrt(1 + sm * sm), b = sm * a, cin = 1 / Math.Sqrt(sigma * sigma + 1);
        var d = new double[x.Length];
        for (int k = 0; k < x.Length; k++)
        {
            double m = mu[k % mu.Length], v = s[k % s.Length];
            d[k] = x[k] - sigma * b * (cin * x[k] - a * m) / (a * a * v * v + b * b);
        }
        return d;
    }

    [TestCase("lcm", 6)]
    [TestCase("ddpm", 6)]
    [TestCase("dpm_2_a", 5)]
    public void MatchesTheUpdateWrittenOutInDouble(string name, int steps)
    {
        using var f = Fixtures.Tensors(Spec);
        float[] mu = f.ReadFloats("mu"), s = f.ReadFloats("s"), noise = f.ReadFloats("noise"), draws = f.ReadFloats("draws");
        int n = noise.Length;
        using var scheduler = SamplerNames.Create(Sd15, name, "karras", steps);
        var g = scheduler.Sigmas!;
        var train = scheduler.Training;
        double[] x = noise.Select(v => v * Math.Sqrt(1 + g[0] * g[0])).ToArray();
        int draw = 0;
        double[] Z() { var z = draws.AsSpan(draw * n, n).ToArray().Select(v => (double)v).ToArray(); draw++; return z; }
        for (int i = 0; i + 1 < g.Length; i++)
        {
            double sc = g[i], sn = g[i + 1];
            var d = Denoise(x, sc, mu, s, train);
            if (name == "lcm")
            {
                var z = sn > 0 ? Z() : null;
                for (int k = 0; k < n; k++) x[k] = d[k] + (z is null ? 0 : sn * z[k]);
            }
            else if (name == "ddpm")
            {
                double ac = 1 / (sc * sc + 1), acp = 1 / (sn * sn + 1), al = ac / acp;
                var z = sn > 0 ? Z() : null;
                for (int k = 0; k < n; k++)
                {
                    double eps = (x[k] - d[k]) / sc;
                    double m = Math.Sqrt(1 / al) * (x[k] / Math.Sqrt(1 + sc * sc) - (1 - al) * eps / Math.Sqrt(1 - ac));
                    if (z is not null) m += Math.Sqrt((1 - al) * (1 - acp) / (1 - ac)) * z[k];
                    x[k] = sn > 0 ? m * Math.Sqrt(1 + sn * sn) : m;
                }
            }
            else
            {
                double up = sn == 0 ? 0 : Math.Min(sn, Math.Sqrt(sn * sn * (sc * sc - sn * sn) / (sc * sc)));
                double down = Math.Sqrt(sn * sn - up * up);
                if (down == 0) { x = d; continue; }
                double mid = Math.Exp(0.5 * (Math.Log(sc) + Math.Log(down)));
                var x2 = x.Select((v, k) => v + (v - d[k]) / sc * (mid - sc)).ToArray();
                var d2 = Denoise(x2, mid, mu, s, train);
                var z = Z();
                for (int k = 0; k < n; k++) x[k] = x[k] + (x2[k] - d2[k]) / mid * (down - sc) + up * z[k];
            }
        }
        string spec = Path.Combine(Path.GetTempPath(), $"kdiffusion-{name}-{Environment.ProcessId}.safetensors");
        try
        {
            Engine.Core.Safetensors.SafetensorsWriter.Write(spec,
            [
                new("mu", f.Info("mu").Shape, mu), new("s", f.Info("s").Shape, s), new("noise", f.Info("noise").Shape, noise),
                new(GaussianStepNoise.TensorName, f.Info("draws").Shape, draws),
            ]);
            var r = SolverBench.Run(scheduler, name, spec, TestDevices.Get("cpu"));
            Assert.That(Fixtures.RelativeError(r.Final, x.Select(v => (float)v).ToArray()), Is.LessThanOrEqualTo(1e-5), $"{draw} draws");
        }
        finally { File.Delete(spec); }
    }
}
