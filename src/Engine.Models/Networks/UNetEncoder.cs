using Engine.Core;
using Engine.Models.Modules;

namespace Engine.Models.Networks;

/// <summary>
/// The encoder half every UNet shares and a ControlNet copies: timestep (+ class, + SDXL added) embedding,
/// conv_in, the down blocks collecting the skip list and the mid block (or a pass-through when the config
/// has none).
/// </summary>
internal sealed record UNetEncoder(
    Timesteps TimeProj, TimestepEmbedding TimeEmbedding, UNetClassEmbedding? ClassEmbedding, bool CenterInput,
    Conv2d ConvIn, UNetDownBlock[] Down, UNetMidBlock? Mid, UNetAdditionEmbedding? Addition = null)
{
    /// <summary>The time embedding [B, D] of timesteps t [B] (+ class labels, + SDXL's added conditioning); a new tensor.</summary>
    public Tensor Embed(Tensor t, Tensor? classLabels, Tensor? added)
    {
        Tensor emb;
        using (var proj = TimeProj.Forward(t)) emb = TimeEmbedding.Forward(proj);
        try
        {
            if (ClassEmbedding is not null) ClassEmbedding.AddTo(emb, classLabels!);
            if (Addition is not null) Addition.AddTo(emb, added!);
            return emb;
        }
        catch
        {
            emb.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Runs conv_in (plus <paramref name="inputAddend"/>, a ControlNet's conditioning embedding, when given), the
    /// down blocks and the mid block. Every skip is appended to <paramref name="skips"/>, which owns them;
    /// returns the mid block's output, a new tensor owned by the caller. The blocks run with activations stored as
    /// <paramref name="activations"/> (the input is converted once after centering).
    /// </summary>
    public Tensor Encode(Tensor sample, Tensor emb, Tensor? context, List<Tensor> skips, Tensor? inputAddend = null, DType activations = DType.F32)
    {
        var device = sample.Device;
        Tensor? centered = null, converted = null;
        try
        {
            var x = sample;
            if (CenterInput)
            {
                centered = device.Allocate(sample.DType, sample.ShapeArray());
                device.Affine(sample, centered, 2f, -1f);
                x = centered;
            }
            if (x.DType != activations) x = converted = device.Convert(x, activations);
            var h = ConvIn.Forward(x);
            skips.Add(h);
            if (inputAddend is not null) device.Add(h, inputAddend, h);
            foreach (var block in Down) h = block.Forward(h, emb, context, skips);
            if (Mid is not null) return Mid.Forward(h, emb, context);
            var copy = device.Allocate(h.DType, h.ShapeArray());
            device.Copy(h, copy);
            return copy;
        }
        finally
        {
            centered?.Dispose();
            converted?.Dispose();
        }
    }
}
