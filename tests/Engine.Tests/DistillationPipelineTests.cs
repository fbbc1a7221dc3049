using Engine.Core;
using Engine.Generation;
using Engine.Generation.Pipelines;
using Engine.Models.Adapters;

namespace Engine.Tests;

/// <summary>
/// Distillation++ on a text pipeline (sd_tiny): the student is the pipeline plus a LoRA, the teacher the pipeline itself.
/// Sharing the base weights (<see cref="GenerationRequest.StudentLoras"/>) gives the samples of two separately loaded
/// models, and both equal the update of docs/SAMPLERS.md section 5 computed in float64 on the host from outputs of
/// separately loaded student and teacher networks, each branch in a forward of its own.
/// </summary>
public class DistillationPipelineTests
{
    private const int Steps = 4;
    private static readonly string[] Prompts = ["a photo of a cat", "a red car"];

    private static string Pipeline => Path.Combine(Fixtures.RequireRoot(), "pipelines", "sd_tiny", "pipeline");

    private static string Lora => Path.Combine(Fixtures.RequireRoot(), "lora", "sd_tiny_peft_r4.safetensors");

    [TestCase(1.0, 5.0, 0.3, 1)]
    [TestCase(2.0, 3.0, 0.5, 2)]
    public void LoraStudentSharingItsBaseEqualsTheUpdateOnSeparateOutputs(double cfg, double teacherCfg, double lambda, int guideSteps)
    {
        var device = TestDevices.Get("cpu");
        var generator = new Generator(device);
        using var shared = generator.LoadModel(Pipeline);
        int c = shared.Network.InChannels, h = 24 / shared.PixelScale, w = 16 / shared.PixelScale;
        var xT = new float[Prompts.Length * c * h * w];
        var rng = new Random(11);
        for (int i = 0; i < xT.Length; i++) xT[i] = (float)(rng.NextDouble() * 2 - 1);
        var request = new GenerationRequest
        {
            Count = Prompts.Length, Prompts = Prompts, NegativePrompts = ["blurry"], GuidanceScale = cfg, Steps = Steps, Height = 24, Width = 16,
            InitialNoise = xT, Options = [$"distill_lambda={lambda}", $"distill_guide_steps={guideSteps}", $"teacher_cfg={teacherCfg}"],
            StudentLoras = [new LoraSpec(Lora)],
        };
        var result = generator.Generate(shared, request);
        Assert.That(result.SchedulerClass, Is.EqualTo("Distillation++"));
        Assert.That(shared.Adapters.StudentWeights, Is.GreaterThan(0));
        Assert.That(shared.Adapters.StudentSelected, Is.False, "the shared weights are selected after the run");
        int branches = (cfg > 1 ? 2 : 1) * Steps + (teacherCfg > 1 ? 2 : 1) * guideSteps;
        Assert.That(result.ModelCalls, Is.EqualTo(Steps + guideSteps), $"batched forwards ({branches} branch evaluations)");

        // Two separately loaded models: the student with the LoRA merged, the teacher plain.
        using var student = generator.LoadModel(Pipeline);
        using var teacher = generator.LoadModel(Pipeline);
        var separate = generator.Generate(student, request with { StudentLoras = [], Loras = [new LoraSpec(Lora)] }, teacher);
        Assert.That(Fixtures.RelativeError(result.Samples, separate.Samples), Is.LessThanOrEqualTo(1e-6), "shared base weights against two loaded models");
        Assert.That(Fixtures.RelativeError(result.Image!, separate.Image!), Is.LessThanOrEqualTo(1e-6), "decoded image");

        var expected = HostUpdate(device, student, teacher, request, xT, [request.Count, c, h, w], cfg, teacherCfg, lambda, guideSteps);
        double error = Fixtures.RelativeError(result.Samples, expected);
        TestContext.Out.WriteLine($"cfg {cfg}, teacher {teacherCfg}, lambda {lambda}, guide {guideSteps}: {error:E2}");
        Assert.That(error, Is.LessThanOrEqualTo(1e-5), "against the host update");
        var studentAlone = generator.Generate(shared, request with { Options = ["distill_lambda=0"] });
        Assert.That(Fixtures.RelativeError(result.Samples, studentAlone.Samples), Is.GreaterThan(1e-3), "the teacher should move the samples");
    }

    [Test]
    public void StudentLorasWithATeacherOrOnAFlowModelAreRefused()
    {
        var generator = new Generator(TestDevices.Get("cpu"));
        using var model = generator.LoadModel(Pipeline);
        var request = new GenerationRequest { Count = 1, Prompts = ["a cat"], Steps = 2, Height = 24, Width = 16, StudentLoras = [new LoraSpec(Lora)] };
        var e = Assert.Throws<ArgumentException>(() => generator.Generate(model, request, model))!;
        Assert.That(e.Message, Does.Contain("--student-lora").And.Contain("--teacher"));
        using var sd3 = generator.LoadModel(Path.Combine(Fixtures.RequireRoot(), "pipelines", "sd3_tiny_pipe", "pipeline"));
        var flow = Assert.Throws<ArgumentException>(() => generator.Generate(sd3, request with { StudentLoras = [], Sampler = "flow_euler", Options = ["distill_lambda=0.1"] }, sd3))!;
        Assert.That(flow.Message, Does.Contain("flow"));
    }

    /// <summary>
    /// docs/SAMPLERS.md section 5 with the deterministic re-noise and DDIM update, on trailing timesteps 999, 749, 499, 249:
    /// x0 = (x - s eps_s) / a; on guided steps z = a' x0 + s' (x - a x0) / s, x0 += lambda ((z - s' eps_t) / a' - x0);
    /// x_next = a' x0 + s' (x - a x0) / s; the last step returns x0. CFG: eps = eps_u + g (eps_c - eps_u).
    /// </summary>
    private static float[] HostUpdate(Device device, LoadedDenoiser student, LoadedDenoiser teacher, GenerationRequest request, float[] xT, int[] shape,
        double cfg, double teacherCfg, double lambda, int guideSteps)
    {
        using var studentText = PromptEmbeddings.Encode(student.Pipeline!, request, request.Count, 24, 16, cfg > 1, null);
        using var teacherText = PromptEmbeddings.Encode(teacher.Pipeline!, request, request.Count, 24, 16, teacherCfg > 1, null);
        // scaled_linear betas of the pipeline's scheduler config.
        var alphaBar = new double[1000];
        double product = 1;
        for (int i = 0; i < 1000; i++)
        {
            double beta = Math.Pow(Math.Sqrt(0.00085) + i * (Math.Sqrt(0.012) - Math.Sqrt(0.00085)) / 999, 2);
            alphaBar[i] = product *= 1 - beta;
        }
        var x = xT.Select(v => (double)v).ToArray();
        for (int i = 0; i < Steps; i++)
        {
            int t = 1000 - i * 1000 / Steps - 1;
            bool last = i == Steps - 1;
            double a = Math.Sqrt(alphaBar[t]), s = Math.Sqrt(1 - alphaBar[t]);
            double an = last ? 1 : Math.Sqrt(alphaBar[t - 1000 / Steps]), sn = last ? 0 : Math.Sqrt(1 - alphaBar[t - 1000 / Steps]);
            var eps = Epsilon(device, student, studentText, x, shape, t, cfg);
            var x0 = x.Select((v, k) => (v - s * eps[k]) / a).ToArray();
            if (i < guideSteps)
            {
                var (ta, ts, tt) = last ? (a, s, t) : (an, sn, t - 1000 / Steps);
                var z = x0.Select((v, k) => ta * v + ts * (x[k] - a * v) / s).ToArray();
                var epsT = Epsilon(device, teacher, teacherText, z, shape, tt, teacherCfg);
                x0 = x0.Select((v, k) => v + lambda * ((z[k] - ts * epsT[k]) / ta - v)).ToArray();
            }
            x = last ? x0 : x0.Select((v, k) => an * v + sn * (x[k] - a * v) / s).ToArray();
        }
        return x.Select(v => (float)v).ToArray();
    }

    private static double[] Epsilon(Device device, LoadedDenoiser model, PromptEmbeddings text, double[] x, int[] shape, int t, double scale)
    {
        using var input = device.Upload(x.Select(v => (float)v).ToArray(), shape);
        using var timestep = device.Upload([(float)t], 1);
        double[] Forward(Tensor embeddings)
        {
            using var y = model.Network.Forward(input, timestep, null, embeddings);
            return device.Download(y).Select(v => (double)v).ToArray();
        }
        var cond = Forward(text.Tensors.Positive);
        if (scale <= 1) return cond;
        var uncond = Forward(text.Tensors.Negative!);
        return cond.Select((v, k) => uncond[k] + scale * (v - uncond[k])).ToArray();
    }
}
