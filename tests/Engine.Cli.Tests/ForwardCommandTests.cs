using Engine.Core.Safetensors;
using Engine.Models.Tests;

namespace Engine.Cli.Tests;

/// <summary>
/// <c>engine forward</c> run in-process on every model fixture's io.safetensors: exit code 0 and every
/// output it writes matches the stored diffusers output at 1e-3. Also the usage and failure exits.
/// </summary>
[TestFixture]
public sealed class ForwardCommandTests
{
    public static IEnumerable<TestCaseData> Cases() =>
        Fixtures.Folders("models").Select(n => new TestCaseData(n).SetName($"engine forward {n}"));

    private static (int Code, string Out, string Err) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = CommandDispatcher.Run(args, output, error);
        return (code, output.ToString(), error.ToString());
    }

    [TestCaseSource(nameof(Cases))]
    public void MatchesDiffusers(string name)
    {
        SupportedFixtures.RequireSupported(name);
        var folder = Path.Combine(Fixtures.RequireRoot(), "models", name);
        var io = Path.Combine(folder, "io.safetensors");
        var result = Path.Combine(Path.GetTempPath(), $"engine-forward-{Guid.NewGuid():N}.safetensors");
        try
        {
            var (code, _, err) = Run("forward", "--model", Path.Combine(folder, "model"), "--inputs", io, "--output", result, "--device", "cpu");
            Assert.That(code, Is.EqualTo(ExitCodes.Success), err);
            using var written = SafetensorsFile.Open(result);
            using var expected = SafetensorsFile.Open(io);
            var fixture = Fixtures.Json(Path.Combine("models", name, "fixture.json"));
            var outputs = fixture.GetProperty("outputs").EnumerateArray().Select(e => e.GetString()!).Where(written.Contains).ToList();
            Assert.That(outputs, Is.Not.Empty, "the command wrote none of the fixture's outputs");
            Assert.That(written.Tensors.Keys, Is.SubsetOf(fixture.GetProperty("outputs").EnumerateArray().Select(e => e.GetString())));
            foreach (var o in outputs)
            {
                Assert.That(written.Info(o).Shape, Is.EqualTo(expected.Info(o).Shape), o);
                Assert.That(Fixtures.RelativeError(written.ReadFloats(o), expected.ReadFloats(o)), Is.LessThanOrEqualTo(1e-3), o);
            }
        }
        finally { File.Delete(result); }
    }

    [Test]
    public void NoArgumentsIsAUsageError() => Assert.That(Run().Code, Is.EqualTo(ExitCodes.Usage));

    [Test]
    public void UnknownCommandIsAUsageError()
    {
        var (code, _, err) = Run("fly");
        Assert.That(code, Is.EqualTo(ExitCodes.Usage));
        Assert.That(err, Does.Contain("unknown command 'fly'"));
    }

    [Test]
    public void UnknownOptionAndMissingValueAreUsageErrors()
    {
        var (code, _, err) = Run("forward", "--model", "m", "--speed", "3");
        Assert.That(code, Is.EqualTo(ExitCodes.Usage));
        Assert.That(err, Does.Contain("unknown option '--speed'"));
        (code, _, err) = Run("forward", "--model");
        Assert.That(code, Is.EqualTo(ExitCodes.Usage));
        Assert.That(err, Does.Contain("--model needs a value"));
        (code, _, err) = Run("forward", "--model", "m", "--inputs", "i");
        Assert.That(code, Is.EqualTo(ExitCodes.Usage));
        Assert.That(err, Does.Contain("--output is required"));
        (code, _, err) = Run("forward", "--model", "m", "--inputs", "i", "--output", "o", "--device", "tpu");
        Assert.That(code, Is.EqualTo(ExitCodes.Usage));
        Assert.That(err, Does.Contain("unknown device 'tpu'"));
    }

    [Test]
    public void HelpListsTheOptions()
    {
        var (code, output, _) = Run("forward", "--help");
        Assert.That(code, Is.EqualTo(ExitCodes.Success));
        Assert.That(output, Does.Contain("--model").And.Contain("--inputs").And.Contain("--output").And.Contain("--device"));
    }

    [Test]
    public void MissingModelFolderIsAFailureNamingIt()
    {
        var missing = Path.Combine(Path.GetTempPath(), "engine-no-such-model");
        var (code, _, err) = Run("forward", "--model", missing, "--inputs", "in.safetensors", "--output", "out.safetensors", "--device", "cpu");
        Assert.That(code, Is.EqualTo(ExitCodes.Failure));
        Assert.That(err, Does.Contain(missing));
    }

    [Test]
    public void OutOfRangeClassLabelIsAFailureNamingTheTensor()
    {
        var folder = Path.Combine(Fixtures.RequireRoot(), "models", "unet2d_tiny_class");
        var inputs = Path.Combine(Path.GetTempPath(), $"engine-bad-labels-{Guid.NewGuid():N}.safetensors");
        try
        {
            using (var io = SafetensorsFile.Open(Path.Combine(folder, "io.safetensors")))
                SafetensorsWriter.Write(inputs, io.Tensors.Values.Select(t => new SafetensorsWriter.Entry(t.Name, t.Shape.ToArray(),
                    t.Name == "class_labels" ? io.ReadFloats(t.Name).Select(_ => 10f).ToArray() : io.ReadFloats(t.Name))));
            var (code, _, err) = Run("forward", "--model", Path.Combine(folder, "model"), "--inputs", inputs, "--output", inputs + ".out", "--device", "cpu");
            Assert.That(code, Is.EqualTo(ExitCodes.Failure));
            Assert.That(err, Does.Contain("'class_labels'").And.Contain("[0, 9]"));
        }
        finally { File.Delete(inputs); }
    }
}
