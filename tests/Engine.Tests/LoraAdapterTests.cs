using Engine.Core;
using Engine.Core.Safetensors;
using Engine.Generation;
using Engine.Models.Adapters;

namespace Engine.Tests;

/// <summary>
/// Adapters on a loaded pipeline beyond the references: half-precision weight storage (merged in float32,
/// stored back as F16, base back bit for bit), a module the model lacks (an error naming the file and the
/// first unmatched keys, with no weight changed), and switching scales without touching the disk copy.
/// </summary>
public class LoraAdapterTests
{
    private static string Lora(string name) => Path.Combine(Fixtures.RequireRoot(), "lora", name);

    private static string SdTiny => Path.Combine(Fixtures.RequireRoot(), "pipelines/sd_tiny/pipeline");

    [Test]
    public void HalfStorageMergesInFloat32AndRestoresExactly()
    {
        var device = TestDevices.Get("cpu");
        using var model = new Generator(device) { WeightStorage = DType.F16 }.LoadModel(SdTiny);
        using var reference = Fixtures.Tensors("lora/reference_2.safetensors");
        const string key = "down_blocks.0.resnets.0.conv1.weight";
        var weight = model.Network.Parameters.Single(p => p.Key == key);
        var before = device.Download(weight.Tensor);

        model.Adapters.Apply([new LoraSpec(Lora("sd_tiny_kohya_locon_r4.safetensors"))]);
        Assert.That(weight.Tensor.DType, Is.EqualTo(DType.F16));
        var merged = device.Download(weight.Tensor);
        var expected = reference.ReadFloats($"merged.unet.{key}");
        using var unet = SafetensorsFile.Open(Path.Combine(SdTiny, "unet", "diffusion_pytorch_model.safetensors"));
        var base32 = unet.ReadFloats(key);
        // The F16 base plus the reference's delta, rounded once to F16: within half an F16 ulp of each value.
        for (int i = 0; i < merged.Length; i++)
        {
            double sum = before[i] + ((double)expected[i] - base32[i]);
            Assert.That(merged[i], Is.EqualTo(sum).Within(Math.Abs(sum) * 4.9e-4 + 6e-8), $"element {i}");
        }

        model.Adapters.Apply([]);
        Assert.That(device.Download(weight.Tensor), Is.EqualTo(before));
    }

    [Test]
    public void UnmatchedModulesAreNamedAndChangeNothing()
    {
        var device = TestDevices.Get("cpu");
        using var model = new Generator(device).LoadModel(SdTiny);
        string path = Path.Combine(Path.GetTempPath(), $"lora-unmatched-{Guid.NewGuid():N}.safetensors");
        try
        {
            using (var source = SafetensorsFile.Open(Lora("sd_tiny_kohya_r8.safetensors")))
            {
                var entries = source.Tensors.Keys.Select(k => new SafetensorsWriter.Entry(k, [.. source.Info(k).Shape], source.ReadFloats(k))).ToList();
                entries.Add(new("lora_unet_down_blocks_7_attentions_0_proj_in.lora_down.weight", [8, 16], new float[128]));
                entries.Add(new("lora_unet_down_blocks_7_attentions_0_proj_in.lora_up.weight", [16, 8], new float[128]));
                SafetensorsWriter.Write(path, entries);
            }
            var weight = model.Network.Parameters.Single(p => p.Key == "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight");
            var original = weight.Tensor;
            Assert.That(() => model.Adapters.Apply([new LoraSpec(path)]), Throws.TypeOf<InvalidDataException>()
                .With.Message.Contains(path).And.Message.Contains("1 of 67 LoRA modules match no module").And.Message.Contains("lora_unet_down_blocks_7_attentions_0_proj_in"));
            Assert.That(weight.Tensor, Is.SameAs(original));
            Assert.That(model.Adapters.MergedWeights, Is.Zero);
        }
        finally
        {
            model.Adapters.Dispose();
            File.Delete(path);
        }
    }

    [Test]
    public void SwitchingScalesRemergesFromTheKeptBase()
    {
        var device = TestDevices.Get("cpu");
        using var model = new Generator(device).LoadModel(SdTiny);
        var weight = model.Network.Parameters.Single(p => p.Key == "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight");
        var base0 = device.Download(weight.Tensor);
        string file = Lora("sd_tiny_kohya_r8.safetensors");
        model.Adapters.Apply([new LoraSpec(file, 1.0)]);
        var atOne = device.Download(weight.Tensor);
        var sameSet = weight.Tensor;
        model.Adapters.Apply([new LoraSpec(file, 1.0)]);
        Assert.That(weight.Tensor, Is.SameAs(sameSet), "the same set is not merged again");
        model.Adapters.Apply([new LoraSpec(file, 0.5)]);
        var atHalf = device.Download(weight.Tensor);
        Assert.That(model.Adapters.MergedWeights, Is.EqualTo(66));
        for (int i = 0; i < base0.Length; i++)
            Assert.That(atHalf[i] - base0[i], Is.EqualTo((atOne[i] - base0[i]) / 2).Within(1e-6 * (1 + Math.Abs(base0[i]))), $"element {i}");
        Assert.That(() => model.Adapters.Apply([new LoraSpec(file, 1.0, new string('0', 64))]), Throws.TypeOf<InvalidDataException>().With.Message.Contains("SHA-256"));
    }
}
