using Engine.Core;
using Engine.Models.Modules;

namespace Engine.Models.Networks;

/// <summary>
/// The forward pass UNet2DModel and UNet2DConditionModel share: the <see cref="UNetEncoder"/>, then the
/// up blocks consuming the skips, GroupNorm + SiLU and conv_out. <c>context</c> is the cross-attention
/// input of the conditional UNet, null for UNet2DModel.
/// </summary>
internal sealed record UNetTrunk(UNetEncoder Encoder, UNetUpBlock[] Up, GroupNorm NormOut, Conv2d ConvOut)
{
    /// <summary>
    /// Runs the network on <paramref name="sample"/> [B, C, H, W] with timesteps t [B]; <paramref name="added"/>
    /// is SDXL's added conditioning when the encoder has an addition embedding. <paramref name="residuals"/> (a
    /// ControlNet's output) are added to the skips after the down path and to the mid block's output. The blocks
    /// run with activations stored as <paramref name="activations"/> (the time embedding stays float32). Returns a
    /// new float32 tensor.
    /// </summary>
    public Tensor Forward(Tensor sample, Tensor t, Tensor? classLabels, Tensor? context, Tensor? added = null, UNetResiduals? residuals = null, DType activations = DType.F32)
    {
        var device = sample.Device;
        var skips = new List<Tensor>();
        Tensor? emb = null, current = null, halfContext = null;
        try
        {
            emb = Encoder.Embed(t, classLabels, added);
            if (context is not null && context.DType != activations) context = halfContext = device.Convert(context, activations);
            current = Encoder.Encode(sample, emb, context, skips, activations: activations);
            residuals?.AddTo(skips, current);
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
            halfContext?.Dispose();
        }
    }
}
