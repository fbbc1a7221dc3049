using Engine.Core;
using Engine.Core.Safetensors;
using Engine.Models;
using Engine.Models.Networks;

namespace Engine.Cli.Commands;

/// <summary>
/// The text-encoder half of <c>engine forward</c>: a transformers CLIP text encoder folder
/// (<c>config.json</c> with <c>architectures</c> + <c>model.safetensors</c>) run on <c>input_ids</c>.
/// </summary>
internal static class TextEncoderForward
{
    /// <summary>
    /// Whether <paramref name="folder"/> holds a transformers text encoder: its config.json has no diffusers
    /// <c>_class_name</c> but <c>architectures</c> naming a supported CLIP class.
    /// </summary>
    public static bool IsTextEncoderFolder(string folder)
    {
        var path = Path.Combine(folder, ModelConfig.FileName);
        if (!File.Exists(path)) return false;
        var config = ModelConfig.Load(path);
        return config.ClassName.Length == 0 && config.StringList("architectures", []).Any(ClipTextModel.SupportedArchitectures.Contains);
    }

    /// <summary>
    /// Runs the encoder on <c>input_ids</c> [B, L] (or [L], one row) and returns <c>last_hidden_state</c>,
    /// <c>pooler_output</c>, <c>text_embeds</c> (projection models) and, with <paramref name="hiddenStates"/>,
    /// <c>hidden_states.0</c> .. <c>hidden_states.N</c> (0 = embeddings, i = output of layer i - 1); the layers run
    /// with <paramref name="activations"/>, the outputs are float32.
    /// </summary>
    public static List<SafetensorsWriter.Entry> Execute(Device device, string folder, string inputsPath, DType weights, bool hiddenStates, DType activations = DType.F32)
    {
        using var model = ClipTextModel.Load(device, folder, weights);
        model.Activations = activations;
        int[] ids;
        int batch;
        using (var file = SafetensorsFile.Open(inputsPath))
        {
            if (!file.Contains("input_ids")) throw new InvalidDataException($"{inputsPath}: no input 'input_ids' (the text encoder's token ids).");
            var shape = file.Info("input_ids").Shape;
            if (shape.Length is not (1 or 2) || shape[^1] == 0)
                throw new InvalidDataException($"{inputsPath}: tensor 'input_ids' has shape {Tensor.ShapeString(shape)}; expected [batch, length] or [length].");
            batch = shape.Length == 2 ? (int)shape[0] : 1;
            var values = file.ReadFloats("input_ids");
            ids = new int[values.Length];
            for (int i = 0; i < values.Length; i++)
            {
                // Ids are integers below 2^24, so the float32 read is exact; anything else is a wrong tensor.
                if (values[i] != MathF.Floor(values[i]) || values[i] < 0 || values[i] >= model.VocabSize)
                    throw new InvalidDataException($"{inputsPath}: tensor 'input_ids' holds {values[i]} at element {i}; token ids are integers in [0, {model.VocabSize - 1}].");
                ids[i] = (int)values[i];
            }
        }
        ClipTextOutput output;
        try { output = model.Forward(ids, batch); }
        catch (ArgumentException e) { throw new InvalidDataException($"{inputsPath}: {e.Message}", e); }
        using (output)
        {
            static SafetensorsWriter.Entry Entry(string name, Tensor t) => new(name, t.ShapeArray(), t.ToArray());
            var results = new List<SafetensorsWriter.Entry>
            {
                Entry("last_hidden_state", output.LastHiddenState),
                Entry("pooler_output", output.PooledOutput),
            };
            if (output.TextEmbeds is { } embeds) results.Add(Entry("text_embeds", embeds));
            if (hiddenStates)
                for (int i = 0; i < output.HiddenStates.Count; i++) results.Add(Entry($"hidden_states.{i}", output.HiddenStates[i]));
            return results;
        }
    }
}
