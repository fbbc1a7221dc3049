using Engine.Core.Safetensors;

namespace Engine.Cli.Tests;

/// <summary>
/// <c>engine forward</c> on transformers CLIP text encoder folders: each text_encoders fixture's
/// <c>input_ids</c> reproduce its recorded last_hidden_state, pooler_output, text_embeds and (with
/// --hidden-states) every hidden state within 1e-4; bad inputs fail naming the file and tensor.
/// </summary>
public sealed class TextEncoderForwardTests
{
    public static IEnumerable<TestCaseData> Cases() =>
        Fixtures.Folders("text_encoders").Select(n => new TestCaseData(n).SetName($"engine forward text encoder {n}"));

    /// <summary>The model folder a fixture.json names (its "model_folder" starts with the path, relative to the fixture).</summary>
    internal static string ModelFolder(string name)
    {
        var fixture = Fixtures.Json(Path.Combine("text_encoders", name, "fixture.json"));
        var relative = fixture.GetProperty("model_folder").GetString()!.Split(' ', 2)[0];
        return Path.GetFullPath(Path.Combine(Fixtures.RequireRoot(), "text_encoders", name, relative));
    }

    [TestCaseSource(nameof(Cases))]
    public void ReproducesTransformersOutputs(string name)
    {
        var io = Path.Combine(Fixtures.RequireRoot(), "text_encoders", name, "io.safetensors");
        using var scratch = new Cli.Scratch();
        var r = Cli.Run("forward", "--model", ModelFolder(name), "--inputs", io, "--output", scratch["out.safetensors"], "--device", "cpu", "--hidden-states");
        Assert.That(r.Code, Is.EqualTo(ExitCodes.Success), r.ToString());
        using var written = SafetensorsFile.Open(scratch["out.safetensors"]);
        using var expected = SafetensorsFile.Open(io);
        var outputs = new[] { "last_hidden_state", "pooler_output", "text_embeds" }.Where(expected.Contains)
            .Concat(expected.Tensors.Keys.Where(k => k.StartsWith("hidden_states.", StringComparison.Ordinal))).ToList();
        Assert.That(outputs, Has.Member("last_hidden_state").And.Member("hidden_states.0"));
        Assert.That(written.Tensors.Keys, Is.EquivalentTo(outputs), "exactly the recorded outputs are written");
        foreach (var o in outputs)
        {
            Assert.That(written.Info(o).Shape, Is.EqualTo(expected.Info(o).Shape), o);
            Assert.That(Fixtures.RelativeError(written.ReadFloats(o), expected.ReadFloats(o)), Is.LessThanOrEqualTo(1e-4), o);
        }
    }

    [Test]
    public void WithoutHiddenStatesWritesTheFinalOutputsOnly()
    {
        var io = Path.Combine(Fixtures.RequireRoot(), "text_encoders", "clip_text_tiny", "io.safetensors");
        using var scratch = new Cli.Scratch();
        var r = Cli.Run("forward", "--model", ModelFolder("clip_text_tiny"), "--inputs", io, "--output", scratch["out.safetensors"], "--device", "cpu");
        Assert.That(r.Code, Is.EqualTo(ExitCodes.Success), r.ToString());
        using var written = SafetensorsFile.Open(scratch["out.safetensors"]);
        Assert.That(written.Tensors.Keys, Is.EquivalentTo(new[] { "last_hidden_state", "pooler_output" }));
    }

    [Test]
    public void MissingOrBadInputIdsFailNamingTheFile()
    {
        using var scratch = new Cli.Scratch();
        var inputs = scratch["in.safetensors"];
        SafetensorsWriter.Write(inputs, [new SafetensorsWriter.Entry("ids", [1, 3], [49406, 320, 49407])]);
        var r = Cli.Run("forward", "--model", ModelFolder("clip_text_tiny"), "--inputs", inputs, "--output", scratch["out.safetensors"], "--device", "cpu");
        Assert.That(r.Code, Is.EqualTo(ExitCodes.Failure));
        Assert.That(r.Err, Does.Contain(inputs).And.Contain("'input_ids'"));
        SafetensorsWriter.Write(inputs, [new SafetensorsWriter.Entry("input_ids", [1, 3], [49406, 60000, 49407])]);
        r = Cli.Run("forward", "--model", ModelFolder("clip_text_tiny"), "--inputs", inputs, "--output", scratch["out.safetensors"], "--device", "cpu");
        Assert.That(r.Code, Is.EqualTo(ExitCodes.Failure));
        Assert.That(r.Err, Does.Contain(inputs).And.Contain("60000"));
    }

    [Test]
    public void HiddenStatesOnADiffusersModelIsAUsageError()
    {
        var folder = Path.Combine(Fixtures.RequireRoot(), "pipelines/sd_tiny/pipeline/unet");
        using var scratch = new Cli.Scratch();
        var r = Cli.Run("forward", "--model", folder, "--inputs", scratch["in.safetensors"], "--output", scratch["out.safetensors"], "--device", "cpu", "--hidden-states");
        Assert.That(r.Code, Is.EqualTo(ExitCodes.Usage));
        Assert.That(r.Err, Does.Contain("--hidden-states"));
    }
}
