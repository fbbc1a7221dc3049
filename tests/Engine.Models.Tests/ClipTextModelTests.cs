using Engine.Core;
using Engine.Core.Safetensors;
using Engine.Models.Loading;
using Engine.Models.Networks;
using Engine.Models.Text;

namespace Engine.Models.Tests;

/// <summary>
/// CLIPTextModel and CLIPTextModelWithProjection against transformers (<c>fixtures/text_encoders</c>):
/// every hidden state, the final layer norm, clip skip's penultimate state, the pooled row by both
/// pooling rules and the text projection, within 1e-4 relative, on every test device.
/// </summary>
[TestFixture]
public sealed class ClipTextModelTests
{
    private const double Tolerance = 1e-4;

    public static IEnumerable<TestCaseData> Cases() =>
        from name in Fixtures.Folders("text_encoders")
        from kind in TestDevices.Kinds
        select new TestCaseData(name, kind).SetName($"Text encoder {name} on {kind}");

    // fixture.json names the model folder relative to itself, followed by a remark in parentheses.
    private static string ModelFolder(string name)
    {
        var entry = Fixtures.Json($"text_encoders/{name}/fixture.json").GetProperty("model_folder").GetString()!;
        var relative = entry.Split("  (")[0].Trim();
        return Path.GetFullPath(Path.Combine(Fixtures.RequireRoot(), "text_encoders", name, relative));
    }

    private static int[] ReadIds(SafetensorsFile io, string key) => io.ReadFloats(key).Select(v => (int)v).ToArray();

    // The rows of a [B, ...] array that the test runs.
    private static T[] Rows<T>(T[] data, int batch, int[] rows)
    {
        int per = data.Length / batch;
        return rows.SelectMany(r => data.Skip(r * per).Take(per)).ToArray();
    }

    private static void Compare(Device device, Tensor actual, SafetensorsFile io, string key, int[] rows, string what)
    {
        var shape = io.Info(key).Shape.ToArray();
        var expected = Rows(io.ReadFloats(key), shape[0], rows);
        shape[0] = rows.Length;
        Assert.That(actual.Shape.ToArray(), Is.EqualTo(shape), $"{what}/{key} shape");
        double err = Fixtures.RelativeError(device.Download(actual), expected);
        TestContext.Out.WriteLine($"{what}/{key}: max|err|/max|ref| = {err:E2}");
        Assert.That(err, Is.LessThanOrEqualTo(Tolerance), $"{what}/{key}");
    }

    [Test]
    public void TextEncoderFixturesAreDiscovered()
    {
        Fixtures.RequireRoot();
        Assert.That(Fixtures.Folders("text_encoders").Count(), Is.GreaterThanOrEqualTo(2));
    }

    [TestCaseSource(nameof(Cases))]
    public void MatchesTransformers(string name, string kind)
    {
        var device = TestDevices.Get(kind);
        using var io = Fixtures.Tensors($"text_encoders/{name}/io.safetensors");
        using var model = ClipTextModel.Load(device, ModelFolder(name));
        int batch = io.Info("input_ids").Shape[0];
        // ILGPU's CPU accelerator runs the row-reduction kernels (softmax, layer norm) slowly, about 40 s
        // a prompt here: it takes only the synthetic last row (the one that separates the pooling rules).
        int[] rows = kind == "ilgpu-cpu" ? [batch - 1] : [.. Enumerable.Range(0, batch)];
        var ids = Rows(ReadIds(io, "input_ids"), batch, rows);
        using var output = model.Forward(ids, rows.Length);
        string what = $"{name} on {kind}";

        Assert.That(output.HiddenStates, Has.Count.EqualTo(model.LayerCount + 1));
        for (int i = 0; i < output.HiddenStates.Count; i++) Compare(device, output.HiddenStates[i], io, $"hidden_states.{i}", rows, what);
        Compare(device, output.LastHiddenState, io, "last_hidden_state", rows, what);
        using (var penultimate = model.FinalLayerNorm(output.HiddenStates[^2])) Compare(device, penultimate, io, "penultimate_final_ln", rows, what);
        Compare(device, output.PooledOutput, io, "pooler_output", rows, what);
        Assert.That(output.PooledIndex, Is.EqualTo(Rows(ReadIds(io, "pooled_index"), batch, rows)), $"{what}: pooled_index");
        if (io.Contains("text_embeds")) Compare(device, output.TextEmbeds!, io, "text_embeds", rows, what);
        else Assert.That(output.TextEmbeds, Is.Null);
    }

    [TestCaseSource(nameof(TokenizerCases))]
    public void TokenizerGivesTheFixtureInputIds(string name)
    {
        var fixture = Fixtures.Json($"text_encoders/{name}/fixture.json");
        var tokenizerEntry = fixture.GetProperty("tokenizer_folder").GetString()!.Split("  (")[0].Trim();
        var tokenizer = ClipTokenizer.Load(Path.GetFullPath(Path.Combine(Fixtures.RequireRoot(), "text_encoders", name, tokenizerEntry)));
        using var io = Fixtures.Tensors($"text_encoders/{name}/io.safetensors");
        var ids = ReadIds(io, "input_ids");
        var prompts = fixture.GetProperty("prompts").EnumerateArray().Select(p => p.GetString()!).ToArray();
        for (int r = 0; r < prompts.Length; r++)
            Assert.That(tokenizer.Encode(prompts[r]).InputIds, Is.EqualTo(ids[(r * 77)..((r + 1) * 77)]), $"{name}: prompt {r}");
    }

    public static IEnumerable<TestCaseData> TokenizerCases() =>
        Fixtures.Folders("text_encoders").Select(n => new TestCaseData(n).SetName($"Text encoder {n} input ids from the tokenizer"));

    [Test]
    public void HalfPrecisionWeightsStayClose()
    {
        var device = TestDevices.Get("cpu");
        using var io = Fixtures.Tensors("text_encoders/clip_text_proj_tiny/io.safetensors");
        using var model = ClipTextModel.Load(device, ModelFolder("clip_text_proj_tiny"), DType.F16);
        using var output = model.Forward(ReadIds(io, "input_ids"), io.Info("input_ids").Shape[0]);
        // The tolerance the weight binder documents for F16 storage.
        Assert.That(Fixtures.RelativeError(device.Download(output.LastHiddenState), io.ReadFloats("last_hidden_state")), Is.LessThanOrEqualTo(5e-3));
        Assert.That(Fixtures.RelativeError(device.Download(output.TextEmbeds!), io.ReadFloats("text_embeds")), Is.LessThanOrEqualTo(5e-3));
    }

    [Test]
    public void BadInputsAreNamed()
    {
        var device = TestDevices.Get("cpu");
        using var model = ClipTextModel.Load(device, ModelFolder("clip_text_tiny"));
        Assert.Multiple(() =>
        {
            Assert.Throws<ArgumentException>(() => model.Forward(new int[78], 1).Dispose(), "longer than the positions");
            Assert.Throws<ArgumentException>(() => model.Forward(Enumerable.Repeat(49408, 77).ToArray(), 1).Dispose(), "id outside the vocabulary");
            Assert.Throws<ArgumentException>(() => model.Forward(new int[77], 2).Dispose(), "rows of unequal length");
        });
        var ex = Assert.Throws<ModelLoadException>(() => ClipTextModel.Load(device, Path.Combine(Fixtures.RequireRoot(), "pipelines", "sd_tiny", "pipeline", "unet")));
        Assert.That(ex!.Message, Does.Contain("architectures"));
    }
}
