using Engine.Core;
using Engine.Models.Networks;

namespace Engine.Cli.Commands;

/// <summary>
/// <c>engine forward</c> on a ControlNetModel folder: reads <c>sample</c>, <c>timestep</c>,
/// <c>encoder_hidden_states</c>, <c>controlnet_cond</c> (pixel resolution, [0, 1]), optional
/// <c>conditioning_scale</c> (one value, default 1) and <c>guess_mode</c> (one value, non-zero = on), and for SDXL
/// ControlNets <c>added_text_embeds</c> and <c>added_time_ids</c>; writes <c>down_block_res_samples.0..n-1</c> and
/// <c>mid_block_res_sample</c>, as diffusers returns them.
/// </summary>
internal static class ControlNetForward
{
    /// <summary>Runs <paramref name="model"/> on the inputs <paramref name="input"/> reads, handing every residual to <paramref name="keep"/>.</summary>
    public static void Run(ControlNetModel model, string inputsPath, Func<string, Tensor?> input, Action<string, Tensor> keep)
    {
        Tensor Required(string name) => input(name) ?? throw new InvalidDataException($"{inputsPath}: a ControlNet needs input '{name}'.");
        var sample = Required("sample");
        var timestep = Required("timestep");
        var context = Required("encoder_hidden_states");
        var cond = Required("controlnet_cond");
        float scale = Scalar(input("conditioning_scale"), "conditioning_scale", inputsPath) ?? 1f;
        bool guess = (Scalar(input("guess_mode"), "guess_mode", inputsPath) ?? 0f) != 0f;
        Tensor? added = null;
        if (model.AdditionEmbedding is { } addition)
        {
            var text = Required("added_text_embeds");
            var ids = Required("added_time_ids");
            int b = sample.Dim(0);
            if (text.Rank != 2 || text.Dim(0) != b || text.Dim(1) != addition.TextEmbedDim)
                throw new InvalidDataException($"{inputsPath}: added_text_embeds {text} should be [{b}, {addition.TextEmbedDim}].");
            if (ids.Rank != 2 || ids.Dim(0) != b || ids.Dim(1) != UNetAdditionEmbedding.TimeIdCount)
                throw new InvalidDataException($"{inputsPath}: added_time_ids {ids} should be [{b}, {UNetAdditionEmbedding.TimeIdCount}].");
            added = sample.Device.Allocate(b, addition.InputWidth);
            sample.Device.ConcatChannels(text, ids, added);
        }
        try
        {
            using var residuals = model.Forward(new ControlNetInputs(sample, timestep, context, cond) { Added = added, Scale = scale, GuessMode = guess });
            // keep takes ownership: hand over copies so the record can free its own.
            for (int j = 0; j < residuals.Down.Count; j++) keep($"down_block_res_samples.{j}", Copy(residuals.Down[j]));
            keep("mid_block_res_sample", Copy(residuals.Mid));
        }
        finally { added?.Dispose(); }
    }

    private static Tensor Copy(Tensor t)
    {
        var copy = t.Device.Allocate(t.ShapeArray());
        t.Device.Copy(t, copy);
        return copy;
    }

    private static float? Scalar(Tensor? t, string name, string inputsPath)
    {
        if (t is null) return null;
        if (t.Length != 1) throw new InvalidDataException($"{inputsPath}: '{name}' {t} must hold one value.");
        return t.ToArray()[0];
    }
}
