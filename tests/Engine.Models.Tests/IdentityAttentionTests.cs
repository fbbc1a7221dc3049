using Engine.Core.Safetensors;
using Engine.Models.Loading;
using Engine.Models.Networks;

namespace Engine.Models.Tests;

/// <summary>The per-layer identity-attention switch (perturbed-attention guidance) on a loaded model.</summary>
[TestFixture]
public sealed class IdentityAttentionTests
{
    [TestCase("unet2d_tiny", "mid_block.attentions.0")]
    [TestCase("unet2d_cond_tiny", "mid_block.attentions.0.transformer_blocks.0.attn1")]
    [TestCase("dit_tiny", "transformer_blocks.1.attn1")]
    public void DefaultLayersSwitchAndRestore(string fixture, string expectedLayer)
    {
        var device = TestDevices.Get("cpu");
        var folder = Path.Combine(Fixtures.RequireRoot(), "models", fixture);
        using var model = ModelLoader.LoadDenoiser(device, Path.Combine(folder, "model"));
        using var io = SafetensorsFile.Open(Path.Combine(folder, "io.safetensors"));
        var sample = io.Load(device, io.Contains("sample") ? "sample" : "hidden_states");
        var t = io.Load(device, "timestep");
        var labels = io.Contains("class_labels") ? io.Load(device, "class_labels") : null;
        var context = io.Contains("encoder_hidden_states") ? io.Load(device, "encoder_hidden_states") : null;
        float[] Run() { using var y = model.Forward(sample, t, labels, context); return y.ToArray(); }

        Assert.That(model.SetIdentityAttention(true), Is.EqualTo(new[] { expectedLayer }));
        var perturbed = Run();
        Assert.That(Fixtures.RelativeError(perturbed, io.ReadFloats("output")), Is.GreaterThan(1e-3), "identity attention should change the output");
        model.SetIdentityAttention(false);
        Assert.That(Fixtures.RelativeError(Run(), io.ReadFloats("output")), Is.LessThanOrEqualTo(1e-5), "switching off restores the model");
        Assert.That(model.SelfAttentionLayers.Any(a => a.IdentityAttention), Is.False);
    }

    [Test]
    public void UnknownLayerNameIsReported()
    {
        var folder = Path.Combine(Fixtures.RequireRoot(), "models", "unet2d_tiny", "model");
        using var model = ModelLoader.LoadDenoiser(TestDevices.Get("cpu"), folder);
        var e = Assert.Throws<ArgumentException>(() => model.SetIdentityAttention(true, ["up_blocks.7"]))!;
        Assert.That(e.Message, Does.Contain("'up_blocks.7'").And.Contain("mid_block.attentions.0"));
    }
}
