using Engine.Core;
using Engine.Core.Profiling;
using Engine.Core.Safetensors;
using Engine.Models.Loading;

namespace Engine.Models.Tests;

/// <summary>
/// The per-op profile of a whole forward pass accounts for the model's ops: in the tiny conditional UNet every
/// convolution and Linear weight is used once per call, so the profile's conv and linear calls equal the weights of
/// each kind in the file, and there is one self and one cross attention per transformer block.
/// </summary>
public sealed class OpProfileModelTests
{
    [Test]
    public void ConditionalUNetProfileCountsItsLayers()
    {
        var device = TestDevices.Get("cpu");
        var folder = Path.Combine(Fixtures.RequireRoot(), "models", "unet2d_cond_tiny");
        using var model = ModelLoader.LoadDenoiser(device, Path.Combine(folder, "model"));
        using var io = SafetensorsFile.Open(Path.Combine(folder, "io.safetensors"));
        using var sample = io.Load(device, "sample");
        using var t = io.Load(device, "timestep");
        using var context = io.Load(device, "encoder_hidden_states");
        using var weights = SafetensorsFile.Open(Path.Combine(folder, "model", "diffusion_pytorch_model.safetensors"));
        var shapes = weights.Tensors.Keys.Where(k => k.EndsWith(".weight", StringComparison.Ordinal)).Select(k => (Name: k, Shape: weights.Info(k).Shape.ToArray())).ToList();

        var profiler = new OpProfiler();
        device.Profiler = profiler;
        float[] output;
        try { using var y = model.Forward(sample, t, null, context); output = y.ToArray(); }
        finally { device.Profiler = null; }
        Assert.That(Fixtures.RelativeError(output, io.ReadFloats("output")), Is.LessThanOrEqualTo(1e-5), "profiling changes no result");

        var p = profiler.Snapshot();
        long Calls(string family) => p.Families.SingleOrDefault(r => r.Family == family)?.Calls ?? 0;
        int Count(Func<(string Name, int[] Shape), bool> where) => shapes.Count(where);
        Assert.That(Calls("conv3x3"), Is.EqualTo(Count(w => w.Shape.Length == 4 && w.Shape[2] == 3 && w.Shape[3] == 3)));
        Assert.That(Calls("conv1x1"), Is.EqualTo(Count(w => w.Shape.Length == 4 && w.Shape[2] == 1 && w.Shape[3] == 1)));
        Assert.That(Calls("linear"), Is.EqualTo(Count(w => w.Shape.Length == 2)));
        Assert.That(Calls("attention self"), Is.EqualTo(Count(w => w.Name.EndsWith(".attn1.to_q.weight", StringComparison.Ordinal))));
        Assert.That(Calls("attention cross"), Is.EqualTo(Count(w => w.Name.EndsWith(".attn2.to_q.weight", StringComparison.Ordinal))));
        Assert.That(Calls("layernorm"), Is.EqualTo(Count(w => w.Shape.Length == 1 && w.Name.Contains(".transformer_blocks.") && w.Name.Contains(".norm"))));
        Assert.That(Calls("groupnorm"), Is.EqualTo(Count(w => w.Shape.Length == 1 && w.Name.Contains("norm") && !w.Name.Contains(".transformer_blocks."))));
        Assert.That(Calls("upsample"), Is.EqualTo(Count(w => w.Name.Contains(".upsamplers.") && w.Name.EndsWith(".conv.weight", StringComparison.Ordinal))));
        Assert.That(Calls("convert"), Is.Zero, "float32 weights are not widened");
        Assert.That(p.Shapes.All(r => r.WallSeconds > 0));
        Assert.That(p.Families.Sum(r => p.Share(r)), Is.EqualTo(100).Within(1e-9));
    }
}
