using System.Text.Json;
using System.Text.Json.Nodes;
using Engine.Core;
using Engine.Core.Safetensors;
using Engine.Generation;
using Engine.Models.Adapters;
using Engine.Models.Networks;

namespace Engine.Tests;

/// <summary>
/// LoRA adapters against the fixtures of <c>lora/</c> (diffusers 0.31): every file's module names map to the
/// diffusers modules its JSON lists; the merged weights of every reference within 1e-6 of max|W|; the base
/// weights back bit for bit after removal; every pipeline reference (scales, two adapters, SDXL) within 1e-3 of
/// the largest final latent and image value, on the CPU device from the recorded x_T.
/// </summary>
public class LoraReferenceTests
{
    private const string Folder = "lora";

    public static IEnumerable<TestCaseData> References()
    {
        if (Fixtures.Root is null) yield break;
        foreach (var name in Fixtures.Names(Folder, "reference_*.json"))
            yield return new TestCaseData(name).SetName($"Lora({name})");
    }

    public static IEnumerable<TestCaseData> Files()
    {
        if (Fixtures.Root is null) yield break;
        foreach (var name in Fixtures.Names(Folder, "*_r?.json"))
            yield return new TestCaseData(name).SetName($"LoraNames({name})");
    }

    [TestCaseSource(nameof(Files))]
    public void MapsEveryModuleAsDiffusersDoes(string name)
    {
        var json = Fixtures.Json($"{Folder}/{name}.json");
        var device = TestDevices.Get("cpu");
        using var model = new Generator(device).LoadModel(Path.Combine(Fixtures.RequireRoot(), Folder, json.GetProperty("base_pipeline").GetString()!));
        var targets = Targets(model);
        using var file = LoraFile.Open(Path.Combine(Fixtures.RequireRoot(), Folder, name + ".safetensors"));
        var modules = json.GetProperty("modules").EnumerateArray().ToList();
        Assert.That(file.Modules, Has.Count.EqualTo(modules.Count));
        var byName = file.Modules.ToDictionary(m => m.Name);
        foreach (var m in modules)
        {
            string prefix = m.GetProperty("file_key_prefix").GetString()!;
            Assert.That(targets.TryFind(prefix, out string module, out _), Is.True, prefix);
            Assert.That(module, Is.EqualTo(m.GetProperty("diffusers_module").GetString()), prefix);
            Assert.That(byName[prefix].Rank, Is.EqualTo(m.GetProperty("rank").GetInt32()), prefix);
            Assert.That(byName[prefix].Alpha, Is.EqualTo(m.GetProperty("alpha").GetDouble()).Within(1e-3), prefix);
        }
    }

    [TestCaseSource(nameof(References))]
    public void MergesWeightsAndRestoresThemExactly(string reference)
    {
        var json = Fixtures.Json($"{Folder}/{reference}.json", Engine.Sampling.SchedulerConfig.SanitizeJson);
        using var tensors = Fixtures.Tensors($"{Folder}/{reference}.safetensors");
        var device = TestDevices.Get("cpu");
        using var model = new Generator(device).LoadModel(PipelineFolder(json));
        var merged = tensors.Tensors.Keys.Where(k => k.StartsWith("merged.", StringComparison.Ordinal)).ToList();
        Assert.That(merged, Is.Not.Empty);
        var weights = merged.Select(k => Weight(model, k["merged.".Length..])).ToList();
        var before = weights.Select(w => device.Download(w.Tensor)).ToList();

        var active = model.Adapters.Apply(Loras(json));
        Assert.That(active.All(a => a.Sha256 is { Length: 64 }), Is.True, "SHA-256 recorded");
        for (int i = 0; i < merged.Count; i++)
        {
            var expected = tensors.ReadFloats(merged[i]);
            var got = device.Download(weights[i].Tensor);
            double err = 0, scale = before[i].Max(Math.Abs);
            for (int j = 0; j < got.Length; j++) err = Math.Max(err, Math.Abs((double)got[j] - expected[j]));
            TestContext.Out.WriteLine($"{merged[i]}: {err / scale:E2} of max|W|");
            Assert.That(err / scale, Is.LessThanOrEqualTo(1e-6), merged[i]);
        }

        model.Adapters.Apply([]);
        Assert.That(model.Adapters.MergedWeights, Is.Zero);
        for (int i = 0; i < merged.Count; i++)
            Assert.That(device.Download(weights[i].Tensor), Is.EqualTo(before[i]), $"{merged[i]} restored bit for bit");
    }

    [TestCaseSource(nameof(References))]
    public void ReproducesDiffusersPipelineWithLora(string reference)
    {
        var json = Fixtures.Json($"{Folder}/{reference}.json", Engine.Sampling.SchedulerConfig.SanitizeJson);
        using var tensors = Fixtures.Tensors($"{Folder}/{reference}.safetensors");
        var request = PipelineReference.Request(json, tensors) with { Loras = Loras(json) };
        var device = TestDevices.Get("cpu");
        var generator = new Generator(device);
        using var model = generator.LoadModel(PipelineFolder(json));

        var result = generator.Generate(model, request);
        PipelineReference.AssertReproduced(result, tensors, reference);
        Assert.That(result.Loras.Select(l => Path.GetFileName(l.Path)), Is.EqualTo(request.Loras.Select(l => Path.GetFileName(l.Path))));

        // The next request without adapters runs on the base weights again (no reload): the base reference.
        var baseline = generator.Generate(model, request with { Loras = [] });
        double baseError = Fixtures.RelativeError(baseline.Samples, tensors.ReadFloats("latents_final_base"));
        TestContext.Out.WriteLine($"{reference} without LoRA: latents {baseError:E2}");
        Assert.That(baseError, Is.LessThanOrEqualTo(1e-3), "latents_final_base");
    }

    internal static LoraTargets Targets(LoadedDenoiser model)
    {
        var components = new List<(string, Network)> { ("unet", model.Network) };
        components.AddRange(model.Pipeline!.Prompts!.Encoders.Select((e, i) => (i == 0 ? "text_encoder" : $"text_encoder_{i + 1}", (Network)e)));
        return new LoraTargets(components);
    }

    private static Engine.Models.Binding.Parameter Weight(LoadedDenoiser model, string key)
    {
        int dot = key.IndexOf('.');
        string component = key[..dot], path = key[(dot + 1)..];
        Network network = component switch
        {
            "unet" => model.Network,
            "text_encoder" => model.Pipeline!.Prompts!.Encoders[0],
            "text_encoder_2" => model.Pipeline!.Prompts!.Encoders[1],
            _ => throw new ArgumentException(key),
        };
        return network.Parameters.Single(p => p.Key == path);
    }

    private static string PipelineFolder(JsonElement json) =>
        Path.GetFullPath(Path.Combine(Fixtures.RequireRoot(), Folder, json.GetProperty("pipeline_folder").GetString()!));

    internal static IReadOnlyList<LoraSpec> Loras(JsonElement json) =>
        json.GetProperty("lora").GetProperty("files").EnumerateArray()
            .Select(f => new LoraSpec(Path.Combine(Fixtures.RequireRoot(), Folder, f.GetProperty("file").GetString()!), f.GetProperty("scale").GetDouble()))
            .ToList();
}
