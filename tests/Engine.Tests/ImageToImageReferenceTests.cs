using System.Text.Json;
using System.Text.Json.Nodes;
using Engine.Core;
using Engine.Core.Safetensors;
using Engine.Generation;
using Engine.Generation.Pipelines;
using Engine.Models.Networks;
using Engine.Sampling;

namespace Engine.Tests;

/// <summary>
/// img2img against diffusers' StableDiffusionImg2ImgPipeline (fixture <c>pipelines/sd_tiny/reference_2</c>: Euler,
/// 8 steps, strength 0.6, CFG 5, recorded posterior and add_noise draws), intermediate by intermediate on the CPU
/// device: the VAE posterior, the init latents, the timesteps the strength keeps, add_noise, each call's model
/// input, output and scheduler step (teacher-forced from the recorded values), the decode, and the whole run.
/// Tolerances are relative to the largest reference value; the recorded run kept its latents channels-last,
/// which moves PyTorch's convolutions by ~1e-6 (fixture README), so whole-run checks allow 2e-5.
/// </summary>
public class ImageToImageReferenceTests
{
    private const string Folder = "pipelines/sd_tiny";
    private const string Reference = "reference_2";

    private JsonElement _json;
    private SafetensorsFile? _tensors;
    private Generator? _generator;
    private LoadedDenoiser? _model;

    private SafetensorsFile T => _tensors!;

    private LatentPipeline Pipeline => _model!.Pipeline!;

    [OneTimeSetUp]
    public void Load()
    {
        if (Fixtures.Root is null) Assert.Ignore("fixtures not found (ENGINE_FIXTURES)");
        _json = Fixtures.Json($"{Folder}/{Reference}.json", SchedulerConfig.SanitizeJson);
        _tensors = Fixtures.Tensors($"{Folder}/{Reference}.safetensors");
        _generator = new Generator(TestDevices.Get("cpu"));
        _model = _generator.LoadModel(Path.Combine(Fixtures.RequireRoot(), Folder, "pipeline"));
    }

    [OneTimeTearDown]
    public void Release()
    {
        _model?.Dispose();
        _generator?.Dispose();
        _tensors?.Dispose();
    }

    private static Device Cpu => TestDevices.Get("cpu");

    private Tensor Upload(string name) => Cpu.Upload(T.ReadFloats(name), T.Info(name).Shape);

    private Scheduler CreateScheduler()
    {
        var config = JsonNode.Parse(_json.GetProperty("scheduler").GetProperty("config").GetRawText())!.AsObject();
        config["_class_name"] = _json.GetProperty("scheduler").GetProperty("class").GetString();
        return SchedulerFactory.Create(SchedulerConfig.ParseJson(config.ToJsonString()), _json.GetProperty("num_inference_steps").GetInt32());
    }

    private double Strength => _json.GetProperty("strength").GetDouble();

    private InitImage Image() => new()
    {
        Pixels = T.ReadFloats("init_image"), Count = 2, Height = 24, Width = 16, Strength = Strength,
        EncodeNoise = T.ReadFloats("random_draw_0"),
    };

    private static void Near(ReadOnlySpan<float> actual, ReadOnlySpan<float> expected, double tolerance, string what)
    {
        double error = Fixtures.RelativeError(actual, expected);
        TestContext.Out.WriteLine($"{what}: {error:E2}");
        Assert.That(error, Is.LessThanOrEqualTo(tolerance), what);
    }

    [Test]
    public void PosteriorOfTheInitImageMatches()
    {
        var pixels = T.ReadFloats("init_image");
        var x = pixels.Select(v => 2 * v - 1).ToArray();
        Near(x, T.ReadFloats("vae_encode_input"), 0, "vae_encode_input = 2 image - 1");
        using var input = Cpu.Upload(x, 2, 3, 24, 16);
        using var dist = Pipeline.Encode(input);
        Near(Cpu.Download(dist.Mean), T.ReadFloats("latent_dist_mean"), 1e-5, "latent_dist.mean");
        Near(Cpu.Download(dist.Std), T.ReadFloats("latent_dist_std"), 1e-5, "latent_dist.std");
    }

    [Test]
    public void StrengthKeepsTheLastTimestepsAndAddNoiseStartsThere()
    {
        using var scheduler = CreateScheduler();
        Assert.That(scheduler.Timesteps, Is.EqualTo(T.ReadFloats("scheduler_timesteps").Select(v => (double)v)).Within(1e-4));
        Assert.That(scheduler.Sigmas, Is.EqualTo(T.ReadFloats("scheduler_sigmas").Select(v => (double)v)).Within(1e-5));
        int start = Sampler.StartAtStrength(scheduler, Strength);
        var kept = _json.GetProperty("step_timesteps").EnumerateArray().Select(e => e.GetDouble()).ToArray();
        Assert.That(start, Is.EqualTo(scheduler.CallCount - kept.Length));
        Assert.That(scheduler.Timesteps[start..], Is.EqualTo(kept));
        Assert.That(scheduler.Timesteps[start], Is.EqualTo(T.ReadFloats("add_noise_timesteps")[0]));

        // The engine's own posterior sample and add_noise, from the recorded draws.
        using var sample = Cpu.Allocate(2, 4, 12, 8);
        using var noise = Upload("random_draw_1");
        using var fresh = CreateScheduler();
        new ImageToImage(Pipeline, Image(), 24, 16).Start(fresh, sample, noise, 0, 0, null, VaeTiling.Off);
        Assert.That(fresh.StartCall, Is.EqualTo(start));
        Near(Cpu.Download(sample), T.ReadFloats("latents_start"), 1e-5, "latents_start (posterior, scaling, add_noise)");

        // add_noise alone on the recorded init latents.
        using var init = Upload("init_latents");
        using var noised = Cpu.Allocate(2, 4, 12, 8);
        Sampler.AddNoise(fresh, init, noise, noised);
        Near(Cpu.Download(noised), T.ReadFloats("latents_start"), 1e-6, "add_noise(init_latents)");
    }

    [Test]
    public void EveryCallMatchesTeacherForced()
    {
        using var scheduler = CreateScheduler();
        int start = Sampler.StartAtStrength(scheduler, Strength);
        int calls = _json.GetProperty("n_denoiser_calls").GetInt32();
        Assert.That(scheduler.RemainingCalls, Is.EqualTo(calls));
        var inputs = T.ReadFloats("step_model_input");
        var outputs = T.ReadFloats("step_model_output");
        var guided = T.ReadFloats("step_scheduler_model_output");
        var latentsAfter = T.ReadFloats("step_latents");
        var timesteps = T.ReadFloats("step_model_timestep");
        int length = 2 * 4 * 12 * 8;
        float g = (float)_json.GetProperty("guidance_scale").GetDouble();
        using var embeddings = Cpu.Upload([.. T.ReadFloats("negative_prompt_embeds"), .. T.ReadFloats("prompt_embeds")], 4, 77, 32);
        using var latents = Upload("latents_start");
        for (int k = 0; k < calls; k++)
        {
            int call = start + k;
            Assert.That(scheduler.Call(call).Timestep, Is.EqualTo(timesteps[k]), $"timestep of call {k}");
            // scale_model_input of the current latents, batch doubled for CFG.
            var scaled = Cpu.Download(latents).Select(v => (float)(v * scheduler.InputScale(call))).ToArray();
            Near([.. scaled, .. scaled], inputs.AsSpan(k * 2 * length, 2 * length), 1e-6, $"step_model_input[{k}]");

            using var modelInput = Cpu.Upload(inputs.AsSpan(k * 2 * length, 2 * length), 4, 4, 12, 8);
            using var t = Cpu.Upload([timesteps[k], timesteps[k], timesteps[k], timesteps[k]], 4);
            using var output = _model!.Network.Forward(new DenoiserInputs(modelInput, t) { EncoderHiddenStates = embeddings });
            Near(Cpu.Download(output), outputs.AsSpan(k * 2 * length, 2 * length), 2e-5, $"step_model_output[{k}]");

            var u = outputs.AsSpan(k * 2 * length, length);
            var c = outputs.AsSpan(k * 2 * length + length, length);
            var cfg = new float[length];
            for (int i = 0; i < length; i++) cfg[i] = u[i] + g * (c[i] - u[i]);
            Near(cfg, guided.AsSpan(k * length, length), 1e-6, $"guidance[{k}]");

            using var modelOutput = Cpu.Upload(guided.AsSpan(k * length, length), 2, 4, 12, 8);
            scheduler.Step(modelOutput, call, latents);
            Near(Cpu.Download(latents), latentsAfter.AsSpan(k * length, length), 1e-6, $"step_latents[{k}]");
            Cpu.CopyFromHost(System.Runtime.InteropServices.MemoryMarshal.AsBytes(latentsAfter.AsSpan(k * length, length)), latents);
        }
        Near(latentsAfter.AsSpan((calls - 1) * length, length), T.ReadFloats("latents_final"), 0, "latents_final == last step");
    }

    [Test]
    public void DecodeMatches()
    {
        using var input = Upload("vae_decode_input");
        using var decoded = Pipeline.Vae.Decode(input);
        Near(Cpu.Download(decoded), T.ReadFloats("vae_decode_output"), 1e-5, "vae_decode_output");
        using var latents = Upload("latents_final");
        Near(Pipeline.Decode(latents), NhwcToNchw(T.ReadFloats("image"), 2, 24, 16, 3), 1e-5, "image");
    }

    [Test]
    public void WholeRunMatches()
    {
        var kwargs = _json.GetProperty("call_kwargs");
        var config = JsonNode.Parse(_json.GetProperty("scheduler").GetProperty("config").GetRawText())!.AsObject();
        config["_class_name"] = _json.GetProperty("scheduler").GetProperty("class").GetString();
        var request = new GenerationRequest
        {
            SchedulerConfigJson = config.ToJsonString(),
            Steps = kwargs.GetProperty("num_inference_steps").GetInt32(),
            GuidanceScale = kwargs.GetProperty("guidance_scale").GetDouble(),
            Prompts = kwargs.GetProperty("prompt").EnumerateArray().Select(e => e.GetString()!).ToArray(),
            NegativePrompts = kwargs.GetProperty("negative_prompt").EnumerateArray().Select(e => e.GetString()!).ToArray(),
            Count = 2,
            InitImage = Image(),
            InitialNoise = T.ReadFloats("random_draw_1"),
        };
        var steps = new List<(int Step, int Total)>();
        var result = _generator!.Generate(_model!, request, p => { steps.Add((p.Step, p.TotalSteps)); return true; });
        Assert.That((result.Height, result.Width, result.ImageHeight, result.ImageWidth), Is.EqualTo((12, 8, 24, 16)), "size from the init image");
        Near(result.Samples, T.ReadFloats("latents_final"), 2e-5, "latents_final");
        Near(result.Image!, NhwcToNchw(T.ReadFloats("image"), 2, 24, 16, 3), 2e-5, "image");
        Assert.That(result.ModelCalls, Is.EqualTo(4));
        Assert.That(steps, Is.EqualTo(new[] { (1, 4), (2, 4), (3, 4), (4, 4) }), "progress counts the calls that run");
    }

    private static float[] NhwcToNchw(float[] values, int n, int h, int w, int c)
    {
        var result = new float[values.Length];
        for (int i = 0; i < n; i++)
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                    for (int ch = 0; ch < c; ch++)
                        result[((i * c + ch) * h + y) * w + x] = values[((i * h + y) * w + x) * c + ch];
        return result;
    }
}
