using System.Text.Json;
using Engine.Core.Safetensors;
using Engine.Models.Checkpoints;

namespace Engine.Models.Tests.Checkpoints;

/// <summary>
/// The LDM/SGM ↔ diffusers UNet names, both ways, against the tiny one-file checkpoints (each folder key must
/// map to exactly the file's key set) and the full-size SD 1.5 / SDXL header manifests (every file UNet key
/// must map to a distinct diffusers name that maps back).
/// </summary>
[TestFixture]
public sealed class UNetBlockNamesTests
{
    private const string Prefix = "model.diffusion_model.";

    [TestCase("sd_tiny_f32", "sd_tiny")]
    [TestCase("sdxl_tiny_f16", "sdxl_tiny")]
    public void TinyFolderKeysMapOntoTheFileKeys(string file, string pipeline)
    {
        string root = Fixtures.RequireRoot();
        using var single = SafetensorsFile.Open(Path.Combine(root, "single_file", file + ".safetensors"));
        using var folder = SafetensorsFile.Open(Path.Combine(root, "pipelines", pipeline, "pipeline", "unet", "diffusion_pytorch_model.safetensors"));
        var config = Fixtures.Json(Path.Combine("pipelines", pipeline, "pipeline", "unet", "config.json"));
        int layers = config.GetProperty("layers_per_block").GetInt32();
        var upTypes = config.GetProperty("up_block_types").EnumerateArray().Select(t => t.GetString()!).ToArray();
        var fileKeys = single.Tensors.Keys.Where(k => k.StartsWith(Prefix, StringComparison.Ordinal)).Select(k => k[Prefix.Length..]).ToHashSet();

        var mapped = folder.Tensors.Keys.ToDictionary(k => k, k => UNetBlockNames.ToOriginal(k, layers, b => upTypes[b].Contains("CrossAttn")));
        Assert.That(mapped.Where(p => p.Value is null).Select(p => p.Key), Is.Empty, "diffusers keys without an original name");
        Assert.That(mapped.Values.ToHashSet(), Is.EquivalentTo(fileKeys));
        Assert.That(UNetBlockNames.LayersPerBlock(fileKeys), Is.EqualTo(layers));
        foreach (var (d, o) in mapped)
            Assert.That(UNetBlockNames.ToDiffusers(o!, layers), Is.EqualTo(d), o);
    }

    [TestCase("manifest_sd15")]
    [TestCase("manifest_sdxl_base_1_0")]
    public void FullSizeManifestKeysRoundTrip(string manifest)
    {
        var m = Fixtures.Json(Path.Combine("single_file", manifest + ".json"));
        var unet = m.GetProperty("diffusers_configs").GetProperty("unet");
        int layers = unet.GetProperty("layers_per_block").GetInt32();
        var upTypes = unet.GetProperty("up_block_types").EnumerateArray().Select(t => t.GetString()!).ToArray();
        var keys = m.GetProperty("tensors").EnumerateObject().Select(p => p.Name)
            .Where(k => k.StartsWith(Prefix, StringComparison.Ordinal)).Select(k => k[Prefix.Length..]).ToList();
        Assert.That(UNetBlockNames.LayersPerBlock(keys), Is.EqualTo(layers));
        var diffusers = new HashSet<string>();
        foreach (var k in keys)
        {
            var d = UNetBlockNames.ToDiffusers(k, layers);
            Assert.That(d, Is.Not.Null, k);
            Assert.That(diffusers.Add(d!), Is.True, $"{k} maps onto {d} twice");
            Assert.That(UNetBlockNames.ToOriginal(d!, layers, b => upTypes[b].Contains("CrossAttn")), Is.EqualTo(k));
        }
        Assert.That(diffusers, Has.Member("up_blocks.0.upsamplers.0.conv.weight"));
        Assert.That(diffusers, Has.Member("down_blocks.1.downsamplers.0.conv.bias"));
    }

    [Test]
    public void NamesOutsideTheUNetMapToNull()
    {
        Assert.That(UNetBlockNames.ToDiffusers("input_blocks.1.3.weight", 2), Is.Null);
        Assert.That(UNetBlockNames.ToDiffusers("output_blocks.1.1.conv.weight", 2), Is.Null, "an upsampler only ends a block");
        Assert.That(UNetBlockNames.ToDiffusers("middle_block.0.in_layers.1.weight", 2), Is.Null);
        Assert.That(UNetBlockNames.ToOriginal("down_blocks.0.resnets.2.conv1.weight", 2, _ => true), Is.Null);
        Assert.That(UNetBlockNames.ToDiffusers("input_blocks.4.1.transformer_blocks.0.attn1.to_q", 2), Is.EqualTo("down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q"));
    }
}
