using Engine.Core.Safetensors;
using Engine.Generation;
using Engine.Generation.Checkpoints;
using Engine.Models.Checkpoints;

namespace Engine.Tests.Checkpoints;

/// <summary>
/// The SD 2.x layout, made from the tiny SD 1.x file: its CLIP text encoder rewritten under
/// <c>cond_stage_model.model.</c> with OpenCLIP names (q/k/v fused into <c>in_proj_weight</c> / <c>in_proj_bias</c>,
/// <c>positional_embedding</c>, <c>ln_final</c>), one extra last block (SD 2 conditions on the penultimate layer, so
/// the loader must drop it), a <c>text_projection</c> and a <c>logit_scale</c>. Recognised as SD 2.x (v-prediction,
/// one layer fewer than the file), and with <c>config=</c> the tiny folder it reproduces the folder's references.
/// </summary>
public class OpenClipCheckpointTests
{
    private const string Hf = "cond_stage_model.transformer.text_model.";
    private const string Open = "cond_stage_model.model.";

    [TestCase("reference_0")]
    [TestCase("reference_1")]
    public void Sd2LayoutLoadsAndReproducesTheFolderReference(string reference)
    {
        string root = Fixtures.RequireRoot();
        string path = Path.Combine(Path.GetTempPath(), $"engine-sd2-{Guid.NewGuid():N}.safetensors");
        try
        {
            int layers = WriteSd2Layout(Path.Combine(root, "single_file/sd_tiny_f32.safetensors"), path);
            using (var file = SafetensorsFile.Open(path))
            {
                var configs = CheckpointInspector.Inspect(file);
                Assert.That(configs.Kind, Is.EqualTo(CheckpointKind.StableDiffusion2));
                Assert.That(configs.PredictionType, Is.EqualTo("v_prediction"));
                Assert.That(configs.TextEncoder["num_hidden_layers"]!.GetValue<int>(), Is.EqualTo(layers));
            }
            var generator = new Generator(TestDevices.Get("cpu"));
            using var model = generator.LoadModel(path, new CheckpointOptions { ConfigFolder = Path.Combine(root, "pipelines/sd_tiny/pipeline") });
            Assert.That(model.Pipeline!.Prompts!.Encoder.LayerCount, Is.EqualTo(layers));
            SingleFileReferenceTests.Reproduce(generator, model, Path.Combine(root, "pipelines/sd_tiny", reference));
        }
        finally { File.Delete(path); }
    }

    /// <summary>Writes the SD 2 layout of an SD 1 file; returns the text encoder's layer count (the file then holds one more).</summary>
    private static int WriteSd2Layout(string sd1, string output)
    {
        using var file = SafetensorsFile.Open(sd1);
        var entries = new List<SafetensorsWriter.Entry>();
        SafetensorsWriter.Entry Copy(string from, string to) => new(to, [.. file.Info(from).Shape], file.ReadFloats(from));
        foreach (var key in file.Tensors.Keys.Where(k => !k.StartsWith("cond_stage_model.", StringComparison.Ordinal)))
            entries.Add(Copy(key, key));
        int layers = file.Tensors.Keys.Where(k => k.StartsWith(Hf + "encoder.layers.", StringComparison.Ordinal)).Select(k => k.Split('.')[5]).Distinct().Count();
        entries.Add(Copy(Hf + "embeddings.token_embedding.weight", Open + "token_embedding.weight"));
        entries.Add(Copy(Hf + "embeddings.position_embedding.weight", Open + "positional_embedding"));
        entries.Add(Copy(Hf + "final_layer_norm.weight", Open + "ln_final.weight"));
        entries.Add(Copy(Hf + "final_layer_norm.bias", Open + "ln_final.bias"));
        // Block `layers` repeats block 0: present in the file, dropped by the loader.
        for (int i = 0; i <= layers; i++)
        {
            string from = $"{Hf}encoder.layers.{(i == layers ? 0 : i)}.", to = $"{Open}transformer.resblocks.{i}.";
            foreach (var suffix in new[] { "weight", "bias" })
            {
                var parts = new[] { "q", "k", "v" }.Select(p => file.ReadFloats($"{from}self_attn.{p}_proj.{suffix}")).ToArray();
                var shape = file.Info($"{from}self_attn.q_proj.{suffix}").Shape;
                entries.Add(new($"{to}attn.in_proj_{suffix}", [3 * shape[0], .. shape.Skip(1)], [.. parts.SelectMany(p => p)]));
                foreach (var (hf, open) in new[] { ("self_attn.out_proj", "attn.out_proj"), ("layer_norm1", "ln_1"), ("layer_norm2", "ln_2"), ("mlp.fc1", "mlp.c_fc"), ("mlp.fc2", "mlp.c_proj") })
                    entries.Add(Copy($"{from}{hf}.{suffix}", $"{to}{open}.{suffix}"));
            }
        }
        int width = file.Info(Hf + "embeddings.token_embedding.weight").Shape[1];
        entries.Add(new(Open + "text_projection", [width, width], new float[width * width]));
        entries.Add(new(Open + "logit_scale", [], [4.6f]));
        SafetensorsWriter.Write(output, entries);
        return layers;
    }
}
