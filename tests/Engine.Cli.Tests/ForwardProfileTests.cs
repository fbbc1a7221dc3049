using System.Text.Json;
using Engine.Core.Safetensors;

namespace Engine.Cli.Tests;

/// <summary><c>engine forward --profile / --profile-json</c>: the table and JSON of one pass, the same result as without, and the refusals.</summary>
[TestFixture]
public sealed class ForwardProfileTests
{
    private static (int Code, string Out, string Err) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = CommandDispatcher.Run(args, output, error);
        return (code, output.ToString(), error.ToString());
    }

    [Test]
    public void ProfileJsonAccountsForTheVaeDecode()
    {
        var folder = Path.Combine(Fixtures.RequireRoot(), "models", "vae_tiny");
        var io = Path.Combine(folder, "io.safetensors");
        string dir = Path.Combine(Path.GetTempPath(), $"engine-profile-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        try
        {
            string plain = Path.Combine(dir, "plain.safetensors"), profiled = Path.Combine(dir, "profiled.safetensors"), json = Path.Combine(dir, "profile.json");
            var model = Path.Combine(folder, "model");
            Assert.That(Run("forward", "--model", model, "--inputs", io, "--output", plain, "--device", "cpu").Code, Is.EqualTo(ExitCodes.Success));
            var (code, output, err) = Run("forward", "--model", model, "--inputs", io, "--output", profiled, "--device", "cpu", "--profile-json", json);
            Assert.That(code, Is.EqualTo(ExitCodes.Success), err);
            Assert.That(output, Does.Contain("op profile:").And.Contain("conv3x3").And.Contain("wrote the op profile to"));
            // The pass's memory follows the tables: the weights as loaded, and the CPU kernels' scratch.
            var weightsLine = System.Text.RegularExpressions.Regex.Match(output, @"memory: weights (\d+) MiB, peak live activations (\d+) MiB");
            Assert.That(weightsLine.Success, output);
            Assert.That(output, Does.Contain("kernel scratch: shared peak held").And.Contain("engine memory above the weights: peak"));
            using (var a = SafetensorsFile.Open(plain))
            using (var b = SafetensorsFile.Open(profiled))
                foreach (var name in a.Tensors.Keys)
                    Assert.That(b.ReadFloats(name), Is.EqualTo(a.ReadFloats(name)), $"{name}: profiling changes no result");
            using var doc = JsonDocument.Parse(File.ReadAllText(json));
            var root = doc.RootElement;
            Assert.That(root.GetProperty("context").GetProperty("device").GetString(), Does.StartWith("cpu"));
            var families = root.GetProperty("families").EnumerateArray().ToDictionary(f => f.GetProperty("family").GetString()!, f => f.GetProperty("calls").GetInt64());
            // The fixture's VAE runs encode and decode; each convolution weight of the file is used once.
            using var weights = SafetensorsFile.Open(Path.Combine(model, "diffusion_pytorch_model.safetensors"));
            int convs3 = weights.Tensors.Values.Count(t => t.Shape.Length == 4 && t.Shape[2] == 3);
            Assert.That(families["conv3x3"], Is.EqualTo(convs3));
            Assert.That(root.GetProperty("families").EnumerateArray().Sum(f => f.GetProperty("share_percent").GetDouble()), Is.EqualTo(100).Within(1e-6));
            Assert.That(root.GetProperty("shapes").EnumerateArray().All(s => s.GetProperty("wall_s").GetDouble() > 0));
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [Test]
    public void ProfileOfATextEncoderIsRefused()
    {
        var encoder = TextEncoderForwardTests.ModelFolder("clip_text_tiny");
        var (code, _, err) = Run("forward", "--model", encoder, "--inputs", "unused.safetensors", "--output", Path.Combine(Path.GetTempPath(), "unused.safetensors"), "--device", "cpu", "--profile");
        Assert.That(code, Is.EqualTo(ExitCodes.Usage), err);
        Assert.That(err, Does.Contain("--profile"));
    }
}
