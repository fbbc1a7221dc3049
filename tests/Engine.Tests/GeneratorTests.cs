using System.Text.Json;
using Engine.Core.Safetensors;
using Engine.Generation;

namespace Engine.Tests;

/// <summary>
/// The generation pipeline against diffusers' reference samples of the shipped models (DDIM 50 and
/// DPM-Solver++ 2M 20 at CFG 3 from the recorded x_T), plus progress, cancellation, batch invariance
/// and request validation.
/// </summary>
public class GeneratorTests
{
    private static readonly Dictionary<string, LoadedDenoiser> Loaded = new();

    private static (Generator Generator, LoadedDenoiser Model) Load(string kind, string name)
    {
        var device = TestDevices.Get(kind);
        lock (Loaded)
        {
            var generator = new Generator(device);
            if (!Loaded.TryGetValue(kind + "/" + name, out var model))
                Loaded[kind + "/" + name] = model = generator.LoadModel(Path.Combine(TestPaths.Models, name));
            return (generator, model);
        }
    }

    public static IEnumerable<TestCaseData> ReferenceCases()
    {
        foreach (var kind in TestDevices.FastKinds)
            foreach (var model in new[] { "fmnist-unet", "fmnist-dit" })
                foreach (var setting in new[] { "ddim50_cfg3", "dpmpp2m20_cfg3" })
                    yield return new TestCaseData(kind, model, setting).SetName($"Reference({kind},{model},{setting})");
    }

    [TestCaseSource(nameof(ReferenceCases))]
    public void ReproducesDiffusersReferenceSamples(string kind, string modelName, string setting)
    {
        string json = TestPaths.RequireShared($"models/{modelName}/reference/reference.json");
        using var doc = JsonDocument.Parse(File.ReadAllText(json));
        var settings = doc.RootElement.GetProperty("settings").GetProperty(setting);
        using var tensors = SafetensorsFile.Open(Path.ChangeExtension(json, ".safetensors"));
        var labels = tensors.ReadFloats("labels").Select(v => (int)v).ToArray();
        var (generator, model) = Load(kind, modelName);
        var request = new GenerationRequest
        {
            SchedulerConfigJson = settings.GetProperty("scheduler_config").GetRawText(),
            Steps = settings.GetProperty("num_inference_steps").GetInt32(),
            GuidanceScale = (float)settings.GetProperty("cfg_scale").GetDouble(),
            Count = labels.Length,
            ClassLabels = labels,
            InitialNoise = tensors.ReadFloats("x_T"),
            // The references are float32 and so is the 1e-3 bound; cuda's default activations are f16.
            Precision = Engine.Core.DType.F32,
        };
        var result = generator.Generate(model, request);
        double error = RelativeError(result.Samples, tensors.ReadFloats(setting));
        TestContext.Out.WriteLine($"{modelName} {setting} on {kind}: max|err|/max|ref| = {error:E2}");
        Assert.That(error, Is.LessThanOrEqualTo(1e-3));
        Assert.That(result.ModelCalls, Is.EqualTo(request.Steps));
    }

    [Test]
    public void SameSeedGivesSameImagesAtAnyBatchSize()
    {
        var (generator, model) = Load("cpu", "fmnist-unet");
        var request = new GenerationRequest { Sampler = "euler_a", Steps = 4, Count = 3, Seed = 42, BatchSize = 3 };
        var together = generator.Generate(model, request);
        var alone = generator.Generate(model, new GenerationRequest { Sampler = "euler_a", Steps = 4, Count = 3, Seed = 42, BatchSize = 1 });
        Assert.That(RelativeError(alone.Samples, together.Samples), Is.LessThanOrEqualTo(1e-5));
        Assert.That(together.Samples.Distinct().Count(), Is.GreaterThan(100), "samples are not constant");
    }

    /// <summary>
    /// The CPU device's guarantee behind <see cref="SameSeedGivesSameImagesAtAnyBatchSize"/>: every op computes a
    /// sample alone and in a batch bit for bit alike, on any number of threads (CpuBatchInvarianceTests checks each op),
    /// so a seed's images are the same bits in batches of 1 and 3 and on 1 or 3 threads, for both shipped networks.
    /// </summary>
    [TestCase("fmnist-unet"), TestCase("fmnist-dit")]
    public void CpuSamplesAreBitwiseTheSameAtAnyBatchSizeAndThreadCount(string name)
    {
        int[] Run(int threads, int batch)
        {
            using var device = new Engine.Cpu.CpuDevice(threads);
            var generator = new Generator(device);
            using var model = generator.LoadModel(Path.Combine(TestPaths.Models, name));
            var samples = generator.Generate(model, new GenerationRequest { Sampler = "euler_a", Steps = 4, Count = 3, Seed = 42, BatchSize = batch }).Samples;
            return samples.Select(BitConverter.SingleToInt32Bits).ToArray();
        }
        var together = Run(2, 3);
        Assert.That(together.Distinct().Count(), Is.GreaterThan(100), "samples are not constant");
        Assert.That(Run(2, 1), Is.EqualTo(together).AsCollection, "batches of 1");
        Assert.That(Run(1, 3), Is.EqualTo(together).AsCollection, "one thread");
        Assert.That(Run(3, 1), Is.EqualTo(together).AsCollection, "three threads, batches of 1");
    }

    [Test]
    public void ProgressIsReportedOncePerStepAndCanCancel()
    {
        var (generator, model) = Load("cpu", "fmnist-unet");
        var seen = new List<GenerationProgress>();
        generator.Generate(model, new GenerationRequest { Sampler = "ddim", Steps = 5, Count = 2, BatchSize = 1 }, p => { seen.Add(p); return true; });
        Assert.That(seen.Select(p => (p.Step, p.ImageIndex)), Is.EqualTo(new[] { (1, 0), (2, 0), (3, 0), (4, 0), (5, 0), (1, 1), (2, 1), (3, 1), (4, 1), (5, 1) }));
        Assert.That(seen.All(p => p.TotalSteps == 5 && p.ImageCount == 2));

        int calls = 0;
        Assert.That(() => generator.Generate(model, new GenerationRequest { Steps = 5 }, _ => ++calls < 2), Throws.InstanceOf<OperationCanceledException>());
        Assert.That(calls, Is.EqualTo(2));
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        Assert.That(() => generator.Generate(model, new GenerationRequest { Steps = 5 }, null, cts.Token), Throws.InstanceOf<OperationCanceledException>());
    }

    [Test]
    public void BadRequestsAreRejectedWithClearMessages()
    {
        var (generator, model) = Load("cpu", "fmnist-unet");
        Assert.That(() => generator.Generate(model, new GenerationRequest { Sampler = "nope" }), Throws.Exception.With.Message.Contains("Unknown sampler 'nope'"));
        Assert.That(() => generator.Generate(model, new GenerationRequest { Steps = 0 }), Throws.ArgumentException.With.Message.Contains("steps 0"));
        Assert.That(() => generator.Generate(model, new GenerationRequest { Count = 0 }), Throws.ArgumentException.With.Message.Contains("count 0"));
        Assert.That(() => generator.Generate(model, new GenerationRequest { ClassLabels = [11] }), Throws.ArgumentException.With.Message.Contains("class label 11"));
        Assert.That(() => generator.Generate(model, new GenerationRequest { Count = 3, ClassLabels = [1, 2] }), Throws.ArgumentException.With.Message.Contains("2 class labels given for 3 images"));
        Assert.That(() => generator.Generate(model, new GenerationRequest { GuidanceScale = float.NaN }), Throws.ArgumentException.With.Message.Contains("guidance"));
        Assert.That(() => generator.Generate(model, new GenerationRequest { InitialNoise = new float[5] }), Throws.ArgumentException.With.Message.Contains("initial noise has 5 values"));
        Assert.That(() => generator.LoadModel("/nonexistent/model"), Throws.InstanceOf<DirectoryNotFoundException>().With.Message.Contains("/nonexistent/model"));
    }

    [Test]
    public void GuidanceOptionsRunOnTheRealNetworks([Values("fmnist-unet", "fmnist-dit")] string name)
    {
        var (generator, model) = Load("cpu", name);
        GenerationRequest Request(params string[] options) => new() { Sampler = "ddim", Steps = 3, Count = 2, Seed = 7, Options = options };
        var plain = generator.Generate(model, Request());
        // Identities on the real networks: PAG scale 0 and CADS noise 0 are plain CFG.
        Assert.That(RelativeError(generator.Generate(model, Request("pag_scale=0")).Samples, plain.Samples), Is.LessThanOrEqualTo(1e-6));
        Assert.That(RelativeError(generator.Generate(model, Request("cads_scale=0")).Samples, plain.Samples), Is.LessThanOrEqualTo(1e-6));
        // PAG runs a third branch with identity self-attention in the default layers: it changes the samples.
        var pag = generator.Generate(model, Request("pag_scale=3"));
        Assert.That(RelativeError(pag.Samples, plain.Samples), Is.GreaterThan(1e-3));
        Assert.That(pag.Samples.All(float.IsFinite));
        // The identity rows are switched off again after every forward.
        Assert.That(model.Network.SelfAttentionLayers.All(a => a.IdentityRows is null && !a.IdentityAttention));
        var cads = generator.Generate(model, Request("cads_scale=0.25"));
        Assert.That(RelativeError(cads.Samples, plain.Samples), Is.GreaterThan(1e-4));
        Assert.That(model.Network.LabelEmbeddings.All(t => t.Transform is null));
        foreach (var option in new[] { "eps_scale=1.005", "higs_weight=1.5", "ts_window=5", "fsampler=h2", "cfg_rescale=0.7", "pc_gamma=3" })
            Assert.That(generator.Generate(model, Request(option)).Samples.All(float.IsFinite), option);
        Assert.That(() => generator.Generate(model, Request("bogus=1")), Throws.ArgumentException.With.Message.Contains("Unknown option 'bogus'"));
        Assert.That(() => generator.Generate(model, Request("cfg_scale=2")), Throws.ArgumentException.With.Message.Contains("--cfg"));
    }

    [Test]
    public void OneStepStudentAndDistillationPlusPlus()
    {
        var (generator, student) = Load("cpu", "fmnist-dit-student");
        var (_, teacher) = Load("cpu", "fmnist-unet");
        Assert.That(student.IsOneStepStudent, Is.True);
        var request = new GenerationRequest { Count = 3, Seed = 3 };
        var plain = generator.Generate(student, request);
        Assert.That(plain.ModelCalls, Is.EqualTo(1), "one student forward per batch");
        Assert.That(plain.Samples.All(v => v >= -1f && v <= 1f), "x0 is clamped to [-1, 1]");
        // Distillation++ with lambda 0 equals the student alone.
        var lambda0 = generator.Generate(student, new GenerationRequest { Count = 3, Seed = 3, Options = ["distill_lambda=0"] }, teacher);
        Assert.That(RelativeError(lambda0.Samples, plain.Samples), Is.EqualTo(0));
        var guided = generator.Generate(student, new GenerationRequest { Count = 3, Seed = 3, Options = ["distill_lambda=0.3", "teacher_cfg=3"] }, teacher);
        Assert.That(guided.ModelCalls, Is.EqualTo(2), "one student and one teacher forward");
        Assert.That(RelativeError(guided.Samples, plain.Samples), Is.GreaterThan(1e-3));
    }

    private static double RelativeError(float[] actual, float[] expected)
    {
        Assert.That(actual, Has.Length.EqualTo(expected.Length));
        double err = 0, max = 0;
        for (int i = 0; i < actual.Length; i++)
        {
            err = Math.Max(err, Math.Abs((double)actual[i] - expected[i]));
            max = Math.Max(max, Math.Abs(expected[i]));
        }
        return double.IsNaN(err) ? double.PositiveInfinity : err / max;
    }
}
