using Engine.Core.Safetensors;
using Engine.Models.Loading;

namespace Engine.Models.Tests;

/// <summary>Bad model folders fail with one clear message naming the file and what is wrong.</summary>
[TestFixture]
public sealed class LoadErrorTests
{
    private static Exception LoadFails(FixtureModelFiles files) =>
        Assert.Catch(() => ModelLoader.Load(TestDevices.Get("cpu"), files.Folder).Dispose())!;

    [Test]
    public void MissingKeyIsNamed()
    {
        using var files = new FixtureModelFiles("unet2d_tiny");
        files.WriteWeights(files.ReadEntries().Where(e => e.Name != "mid_block.resnets.1.conv2.bias"));
        var e = LoadFails(files);
        Assert.That(e, Is.TypeOf<ModelLoadException>());
        Assert.That(e.Message, Does.Contain(files.WeightsPath).And.Contain("1 missing: 'mid_block.resnets.1.conv2.bias'").And.Not.Contain("unexpected"));
    }

    [Test]
    public void ExtraKeyIsNamed()
    {
        using var files = new FixtureModelFiles("unet2d_tiny");
        var entries = files.ReadEntries();
        entries.Add(new SafetensorsWriter.Entry("down_blocks.9.extra.weight", [2], [1f, 2f]));
        files.WriteWeights(entries);
        var e = LoadFails(files);
        Assert.That(e, Is.TypeOf<ModelLoadException>());
        Assert.That(e.Message, Does.Contain(files.WeightsPath).And.Contain("1 unexpected: 'down_blocks.9.extra.weight'").And.Not.Contain("missing"));
    }

    [Test]
    public void WrongShapeNamesKeyAndShapes()
    {
        using var files = new FixtureModelFiles("unet2d_tiny");
        files.WriteWeights(files.ReadEntries().Select(e => e.Name == "conv_in.bias" ? e with { Shape = [2, 16], Data = e.Data } : e));
        var e = LoadFails(files);
        Assert.That(e, Is.TypeOf<ModelLoadException>());
        Assert.That(e.Message, Does.Contain(files.WeightsPath).And.Contain("'conv_in.bias' expected [32], found [2, 16]"));
    }

    [Test]
    public void UnknownClassIsNamed()
    {
        using var files = new FixtureModelFiles("unet2d_tiny");
        files.CopyWeights();
        File.WriteAllText(files.ConfigPath, File.ReadAllText(files.ConfigPath).Replace("\"UNet2DModel\"", "\"UNet3DConditionModel\""));
        var e = LoadFails(files);
        Assert.That(e, Is.TypeOf<ModelLoadException>());
        Assert.That(e.Message, Does.Contain(files.ConfigPath).And.Contain("'UNet3DConditionModel'").And.Contain("UNet2DModel"));
    }

    [TestCase("\"act_fn\": \"silu\"", "\"act_fn\": \"mish\"", "'act_fn' = \"mish\"")]
    [TestCase("\"downsample_type\": \"conv\"", "\"downsample_type\": \"resnet\"", "'downsample_type' = \"resnet\"")]
    [TestCase("\"AttnDownBlock2D\"", "\"SkipDownBlock2D\"", "'down_block_types' = \"SkipDownBlock2D\"")]
    [TestCase("\"layers_per_block\": 1", "\"layers_per_block\": \"one\"", "'layers_per_block' = \"one\" is invalid")]
    public void BadConfigValueIsNamed(string original, string replacement, string expected)
    {
        using var files = new FixtureModelFiles("unet2d_tiny");
        files.CopyWeights();
        var text = File.ReadAllText(files.ConfigPath);
        Assert.That(text, Does.Contain(original), "fixture config changed");
        File.WriteAllText(files.ConfigPath, text.Replace(original, replacement));
        var e = LoadFails(files);
        Assert.That(e, Is.TypeOf<ModelLoadException>());
        Assert.That(e.Message, Does.Contain(files.ConfigPath).And.Contain(expected));
    }

    [Test]
    public void AttentionHeadsThatDoNotDivideChannelsAreNamed()
    {
        using var files = new FixtureModelFiles("unet2d_cond_tiny");
        files.CopyWeights();
        File.WriteAllText(files.ConfigPath, File.ReadAllText(files.ConfigPath).Replace("\"attention_head_dim\": 8", "\"attention_head_dim\": 7"));
        var e = LoadFails(files);
        Assert.That(e, Is.TypeOf<ModelLoadException>());
        Assert.That(e.Message, Does.Contain(files.ConfigPath).And.Contain("not divisible into 7 heads"));
    }

    [Test]
    public void TruncatedWeightFileIsNamed()
    {
        using var files = new FixtureModelFiles("unet2d_tiny");
        files.CopyWeights();
        using (var stream = new FileStream(files.WeightsPath, FileMode.Open, FileAccess.Write)) stream.SetLength(stream.Length - 100);
        var e = LoadFails(files);
        Assert.That(e, Is.TypeOf<SafetensorsException>());
        Assert.That(e.Message, Does.Contain(files.WeightsPath).And.Contain("truncated"));
    }

    [Test]
    public void MissingFolderAndWeightsAreNamed()
    {
        using var files = new FixtureModelFiles("unet2d_tiny");
        var e = LoadFails(files);
        Assert.That(e.Message, Does.Contain(files.Folder).And.Contain("diffusion_pytorch_model.safetensors"));
        var missing = Path.Combine(files.Folder, "nope");
        Assert.That(Assert.Catch(() => ModelLoader.Load(TestDevices.Get("cpu"), missing))!.Message, Does.Contain(missing));
    }
}
