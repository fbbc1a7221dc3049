using Engine.Core;
using Engine.Models.Modules;

namespace Engine.Models.Networks;

/// <summary>
/// The forward pass UNet2DModel and UNet2DConditionModel share: timestep (+ class) embedding,
/// conv_in, down blocks collecting skips, mid block (or a pass-through when the config has none),
/// up blocks consuming the skips, GroupNorm + SiLU and conv_out. <c>context</c> is the cross-attention
/// input of the conditional UNet, null for UNet2DModel.
/// </summary>
internal sealed record UNetTrunk(
    Timesteps TimeProj, TimestepEmbedding TimeEmbedding, UNetClassEmbedding? ClassEmbedding, bool CenterInput,
    Conv2d ConvIn, UNetDownBlock[] Down, UNetMidBlock? Mid, UNetUpBlock[] Up, GroupNorm NormOut, Conv2d ConvOut,
    UNetAdditionEmbedding? Addition = null)
{
    /// <summary>
    /// Runs the network on <paramref name="sample"/> [B, C, H, W] with timesteps t [B]; <paramref name="added"/>
    /// is SDXL's added conditioning when <see cref="Addition"/> is set. The blocks run with activations
    /// stored as <paramref name="activations"/> (the time embedding stays float32). Returns a new float32 tensor.
    /// </summary>
    public Tensor Forward(Tensor sample, Tensor t, Tensor? classLabels, Tensor? context, Tensor? added = null, DType activations = DType.F32)
    {
        var device = sample.Device;
        var skips = new List<Tensor>();
        Tensor? centered = null, emb = null, current = null, halfSample = null, halfContext = null;
        try
        {
            using (var proj = TimeProj.Forward(t)) emb = TimeEmbedding.Forward(proj);
            if (ClassEmbedding is not null) ClassEmbedding.AddTo(emb, classLabels!);
            if (Addition is not null) Addition.AddTo(emb, added!);
            var x = sample;
            if (CenterInput)
            {
                centered = device.Allocate(sample.DType, sample.ShapeArray());
                device.Affine(sample, centered, 2f, -1f);
                x = centered;
            }
            if (x.DType != activations) x = halfSample = device.Convert(x, activations);
            if (context is not null && context.DType != activations) context = halfContext = device.Convert(context, activations);
            var h = ConvIn.Forward(x);
            skips.Add(h);
            foreach (var block in Down) h = block.Forward(h, emb, context, skips);
            if (Mid is not null) current = Mid.Forward(h, emb, context);
            else
            {
                current = device.Allocate(h.DType, h.ShapeArray());
                device.Copy(h, current);
            }
            foreach (var block in Up)
            {
                var next = block.Forward(current, emb, context, skips);
                current.Dispose();
                current = next;
            }
            using var normed = NormOut.Forward(current, silu: true);
            var output = ConvOut.Forward(normed);
            if (output.DType == DType.F32) return output;
            using (output) return device.Convert(output, DType.F32);
        }
        finally
        {
            foreach (var s in skips) s.Dispose();
            current?.Dispose();
            emb?.Dispose();
            centered?.Dispose();
            halfSample?.Dispose();
            halfContext?.Dispose();
        }
    }
}
