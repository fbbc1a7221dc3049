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

    /// <summary>
    /// SD3's joint attention with identity rows: the perturbed row of each stream is its value projection through the
    /// output projection, built here on the host from the checkpoint's weights; the other row attends as usual.
    /// </summary>
    [Test]
    public void JointAttentionIdentityRowsAreTheValueProjectionBuiltByHand()
    {
        var device = TestDevices.Get("cpu");
        var folder = Path.Combine(Fixtures.RequireRoot(), "models", "sd3_tiny", "model");
        using var model = ModelLoader.LoadDenoiser(device, folder);
        using var weights = SafetensorsFile.Open(Path.Combine(folder, "diffusion_pytorch_model.safetensors"));
        Assert.That(model.FindSelfAttention().Select(a => a.Name), Is.EqualTo(new[] { "transformer_blocks.1.attn" }), "default: the middle block");
        var attention = (Engine.Models.Modules.JointAttention)model.FindSelfAttention(["transformer_blocks.0"]).Single();
        int dim = 32, lx = 6, lc = 5;
        var rng = new Random(3);
        float[] Random(int n) => Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        float[] xs = Random(2 * lx * dim), cs = Random(2 * lc * dim);
        using var x = device.Upload(xs, 2, lx, dim);
        using var c = device.Upload(cs, 2, lc, dim);
        var (plainX, plainC) = attention.Forward(x, c);
        attention.IdentityRows = (1, 1);
        var (mixedX, mixedC) = attention.Forward(x, c);
        attention.IdentityRows = null;
        using (plainX) using (plainC) using (mixedX) using (mixedC)
        {
            float[] px = device.Download(plainX), pc = device.Download(plainC!), mx = device.Download(mixedX), mc = device.Download(mixedC!);
            Assert.That(Fixtures.RelativeError(mx.AsSpan(0, lx * dim), px.AsSpan(0, lx * dim)), Is.LessThanOrEqualTo(1e-6), "row 0 attends as usual");
            Assert.That(Fixtures.RelativeError(mc.AsSpan(0, lc * dim), pc.AsSpan(0, lc * dim)), Is.LessThanOrEqualTo(1e-6), "row 0 context attends as usual");
            string p = "transformer_blocks.0.attn.";
            var expectX = Affine(Affine(xs.AsSpan(lx * dim).ToArray(), weights, p + "to_v"), weights, p + "to_out.0");
            var expectC = Affine(Affine(cs.AsSpan(lc * dim).ToArray(), weights, p + "add_v_proj"), weights, p + "to_add_out");
            Assert.That(Fixtures.RelativeError(mx.AsSpan(lx * dim), expectX), Is.LessThanOrEqualTo(1e-5), "image tokens: to_out(to_v(x))");
            Assert.That(Fixtures.RelativeError(mc.AsSpan(lc * dim), expectC), Is.LessThanOrEqualTo(1e-5), "context tokens: to_add_out(add_v_proj(c))");
            Assert.That(Fixtures.RelativeError(mx.AsSpan(lx * dim), px.AsSpan(lx * dim)), Is.GreaterThan(1e-3), "identity attention should change row 1");
        }
    }

    /// <summary>y = x W^T + b per token, in float64, with the checkpoint's <paramref name="name"/>.weight [out, in] and .bias.</summary>
    private static float[] Affine(float[] x, SafetensorsFile weights, string name)
    {
        var w = weights.ReadFloats(name + ".weight");
        var b = weights.ReadFloats(name + ".bias");
        int outs = b.Length, ins = w.Length / outs, tokens = x.Length / ins;
        var y = new float[tokens * outs];
        for (int t = 0; t < tokens; t++)
            for (int o = 0; o < outs; o++)
            {
                double sum = b[o];
                for (int i = 0; i < ins; i++) sum += (double)x[t * ins + i] * w[o * ins + i];
                y[t * outs + o] = (float)sum;
            }
        return y;
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
