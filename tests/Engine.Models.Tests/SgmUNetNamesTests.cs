using System.Text.Json.Nodes;
using Engine.Models.Adapters;
using Engine.Models.Loading;

namespace Engine.Models.Tests;

/// <summary>
/// The SGM / LDM names kohya's SDXL LoRA files use, at full size: for the UNets of the SD 1.5 and SDXL base
/// manifests (fixtures <c>single_file/manifest_*.json</c>: the original checkpoints' keys and the diffusers
/// configs they convert to), every Linear and Conv2d weight of the diffusers UNet maps to a weight of the
/// original checkpoint with the same shape, and no two map to the same one.
/// </summary>
public class SgmUNetNamesTests
{
    [TestCase("manifest_sd15.json")]
    [TestCase("manifest_sdxl_base_1_0.json")]
    public void EveryUNetWeightMapsToTheOriginalCheckpoint(string manifestName)
    {
        var manifest = JsonNode.Parse(File.ReadAllText(Path.Combine(Fixtures.RequireRoot(), "single_file", manifestName)))!;
        var config = manifest["diffusers_configs"]!["unet"]!.AsObject().DeepClone().AsObject();
        config["_class_name"] = "UNet2DConditionModel";
        string path = Path.Combine(Path.GetTempPath(), $"sgm-{Guid.NewGuid():N}.json");
        File.WriteAllText(path, config.ToJsonString());
        Networks.Network unet;
        try { unet = ModelLoader.Build(ModelConfig.Load(path)); }
        finally { File.Delete(path); }
        var tensors = manifest["tensors"]!.AsObject();
        var weights = unet.Parameters.Where(p => p.AllowsHalfStorage && p.Key.EndsWith(".weight", StringComparison.Ordinal)).ToList();
        var names = new SgmUNetNames(weights.Select(p => p.Key[..^".weight".Length]));
        var seen = new HashSet<string>();
        foreach (var p in weights)
        {
            string? sgm = names.ToSgm(p.Key[..^".weight".Length]);
            Assert.That(sgm, Is.Not.Null, p.Key);
            string key = $"model.diffusion_model.{sgm}.weight";
            Assert.That(tensors.ContainsKey(key), Is.True, $"{p.Key} -> {key}");
            Assert.That(tensors[key]!["shape"]!.AsArray().Select(d => d!.GetValue<int>()), Is.EqualTo(p.Shape), key);
            Assert.That(seen.Add(key), Is.True, $"{key} named twice");
        }
        TestContext.Out.WriteLine($"{manifestName}: {weights.Count} weights mapped");
    }

    [Test]
    public void BlocksOfDifferentLengths_AreNumberedOn()
    {
        string[] paths =
        [
            "down_blocks.0.resnets.0.conv1", "down_blocks.0.downsamplers.0.conv", "down_blocks.1.resnets.0.conv1", "down_blocks.1.resnets.1.conv1",
            "down_blocks.1.attentions.1.proj_in", "up_blocks.0.resnets.0.conv1", "up_blocks.0.resnets.1.conv1", "up_blocks.0.resnets.2.conv1",
            "up_blocks.0.upsamplers.0.conv", "up_blocks.1.resnets.0.conv1", "up_blocks.1.resnets.1.conv1", "up_blocks.1.attentions.1.proj_out",
        ];
        var names = new SgmUNetNames(paths);
        Assert.That(new[]
        {
            "down_blocks.0.resnets.0.conv1", "down_blocks.0.downsamplers.0.conv", "down_blocks.1.resnets.1.conv1", "down_blocks.1.attentions.1.proj_in",
            "up_blocks.0.resnets.2.conv1", "up_blocks.0.upsamplers.0.conv", "up_blocks.1.resnets.0.conv1", "up_blocks.1.attentions.1.proj_out",
            "down_blocks.0.resnets.1.conv1", "mid_block.resnets.1.conv2",
        }.Select(names.ToSgm), Is.EqualTo(new[]
        {
            "input_blocks.1.0.in_layers.2", "input_blocks.2.0.op", "input_blocks.4.0.in_layers.2", "input_blocks.4.1.proj_in",
            "output_blocks.2.0.in_layers.2", "output_blocks.2.1.conv", "output_blocks.3.0.in_layers.2", "output_blocks.4.1.proj_out",
            null, "middle_block.2.out_layers.3",
        }));
    }
}
