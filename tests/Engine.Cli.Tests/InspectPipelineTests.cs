namespace Engine.Cli.Tests;

/// <summary>
/// <c>engine inspect PIPELINE_DIR</c>: the pipeline class, whether generate runs it, and each component's
/// class, folder and weights; unsupported classes and missing folders are marked, a plain folder is an error.
/// </summary>
public sealed class InspectPipelineTests
{
    [Test]
    public void InspectShowsAPipelineFoldersComponents()
    {
        var folder = Path.Combine(Fixtures.RequireRoot(), "pipelines/sd_tiny/pipeline");
        var r = Cli.Run("inspect", folder);
        Assert.That(r.Code, Is.EqualTo(ExitCodes.Success), r.ToString());
        var lines = r.Out.Split('\n', StringSplitOptions.TrimEntries);
        Assert.That(lines[0], Does.StartWith("pipeline: StableDiffusionPipeline"));
        Assert.That(lines[1], Does.StartWith("supported: yes"));
        string Row(string component) => lines.Single(l => l.StartsWith(component + " ", StringComparison.Ordinal));
        Assert.That(Row("unet"), Does.Contain("UNet2DConditionModel").And.Contain("unet/").And.Contain("208 tensors").And.Contain("203,204 parameters"));
        Assert.That(Row("vae"), Does.Contain("AutoencoderKL").And.Contain("vae/").And.Match(@"\d+ tensors, [\d,]+ parameters"));
        Assert.That(Row("text_encoder"), Does.Contain("CLIPTextModel").And.Contain("text_encoder/").And.Contain("model.safetensors"));
        Assert.That(Row("scheduler"), Does.Contain("DDIMScheduler").And.Contain("scheduler_config.json"));
        Assert.That(Row("tokenizer"), Does.Contain("CLIPTokenizer").And.Contain("vocab.json"));
        Assert.That(Row("safety_checker"), Does.Contain("saved as None"));
        Assert.That(r.Out, Does.Contain("8 components"));
    }

    [Test]
    public void InspectNamesUnsupportedPipelinesAndMissingFolders()
    {
        using var scratch = new Cli.Scratch();
        Directory.CreateDirectory(scratch["pipe"]);
        File.WriteAllText(scratch["pipe/model_index.json"], """{"_class_name": "KandinskyPipeline", "unet": ["diffusers", "UNet2DConditionModel"], "movq": ["diffusers", "VQModel"]}""");
        Directory.CreateDirectory(scratch["pipe/movq"]);
        var r = Cli.Run("inspect", scratch["pipe"]);
        Assert.That(r.Code, Is.EqualTo(ExitCodes.Success), r.ToString());
        Assert.That(r.Out, Does.Contain("supported: no").And.Contain("StableDiffusionPipeline"));
        Assert.That(r.Out, Does.Contain("MISSING folder").And.Contain("VQModel").And.Contain("not implemented"));
        var plain = scratch["plain"];
        Directory.CreateDirectory(plain);
        r = Cli.Run("inspect", plain);
        Assert.That(r.Code, Is.EqualTo(ExitCodes.Failure));
        Assert.That(r.Err, Does.Contain(plain).And.Contain("model_index.json"));
    }

    [Test]
    public void InfoWithModelDescribesPipelineAndModelFolders()
    {
        var folder = Path.Combine(Fixtures.RequireRoot(), "pipelines/sd_tiny/pipeline");
        var r = Cli.Run("info", "--model", folder);
        Assert.That(r.Code, Is.EqualTo(ExitCodes.Success), r.ToString());
        Assert.That(r.Out, Does.Contain("devices:").And.Contain("pipeline: StableDiffusionPipeline").And.Contain("203,204 parameters").And.Contain("8 components"));
        r = Cli.Run("info", "--model", Path.Combine(folder, "unet"));
        Assert.That(r.Code, Is.EqualTo(ExitCodes.Success), r.ToString());
        Assert.That(r.Out, Does.Contain("model: UNet2DConditionModel").And.Contain("weights: 208 tensors, 203,204 parameters"));
        using var scratch = new Cli.Scratch();
        Directory.CreateDirectory(scratch["plain"]);
        r = Cli.Run("info", "--model", scratch["plain"]);
        Assert.That(r.Code, Is.EqualTo(ExitCodes.Failure));
        Assert.That(r.Err, Does.Contain(scratch["plain"]).And.Contain("model_index.json").And.Contain("config.json"));
    }
}
