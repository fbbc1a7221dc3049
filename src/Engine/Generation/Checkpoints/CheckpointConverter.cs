using System.Text.Json;
using System.Text.Json.Nodes;
using Engine.Core;
using Engine.Core.Safetensors;
using Engine.Models.Checkpoints;

namespace Engine.Generation.Checkpoints;

/// <summary>
/// Writes a single-file checkpoint as a diffusers pipeline folder (model_index.json, unet/, vae/, text_encoder/,
/// text_encoder_2/ for SDXL, tokenizer/, tokenizer_2/, scheduler/) with the configs of its
/// <see cref="CheckpointPlan"/>. Tensors stream one at a time from the mapping to the output files, in F32 or F16.
/// </summary>
public static class CheckpointConverter
{
    /// <summary>Converts <paramref name="checkpoint"/> into <paramref name="outFolder"/> (created; must not hold a model_index.json).</summary>
    public static void Convert(string checkpoint, CheckpointOptions? options, string outFolder, DType storage)
    {
        if (storage is not (DType.F32 or DType.F16 or DType.BF16)) throw new ArgumentException($"weights {storage} (--weights): write f32, f16 or bf16.");
        if (File.Exists(Path.Combine(outFolder, Pipelines.PipelineIndex.FileName)))
            throw new IOException($"{outFolder}: already holds a pipeline ({Pipelines.PipelineIndex.FileName}); give an empty folder.");
        using var plan = CheckpointPlan.Open(checkpoint, options);
        bool xl = plan.Kind == CheckpointKind.StableDiffusionXL;
        Directory.CreateDirectory(outFolder);

        var index = new JsonObject { ["_class_name"] = plan.PipelineClass, ["_diffusers_version"] = "0.31.0" };
        WriteModel(outFolder, "unet", plan.UNet.Config, plan.UNet.Source, "diffusion_pytorch_model.safetensors", storage);
        index["unet"] = Pair("diffusers", "UNet2DConditionModel");
        if (plan.VaeFolder is { } vaeFolder) CopyFolder(vaeFolder, Path.Combine(outFolder, "vae"));
        else WriteModel(outFolder, "vae", plan.Vae.Config, plan.Vae.Source!, "diffusion_pytorch_model.safetensors", storage);
        index["vae"] = Pair("diffusers", "AutoencoderKL");
        for (int i = 0; i < plan.TextEncoders.Count; i++)
        {
            var t = plan.TextEncoders[i];
            WriteModel(outFolder, t.Name, t.Config, t.Source, Engine.Models.Networks.ClipTextModel.WeightsFileName, storage);
            index[t.Name] = Pair("transformers", CheckpointPlan.Architecture(t.Config) ?? "CLIPTextModel");
            string tokenizer = i == 0 ? "tokenizer" : "tokenizer_2";
            WriteTokenizer(Path.Combine(outFolder, tokenizer), t);
            index[tokenizer] = Pair("transformers", "CLIPTokenizer");
        }
        Directory.CreateDirectory(Path.Combine(outFolder, "scheduler"));
        WriteJson(Path.Combine(outFolder, "scheduler", "scheduler_config.json"), plan.Scheduler);
        index["scheduler"] = Pair("diffusers", plan.Scheduler["_class_name"]?.GetValue<string>() ?? "PNDMScheduler");
        if (xl) index["force_zeros_for_empty_prompt"] = true;
        else
        {
            index["safety_checker"] = new JsonArray(null, null);
            index["feature_extractor"] = new JsonArray(null, null);
            index["requires_safety_checker"] = false;
        }
        WriteJson(Path.Combine(outFolder, Pipelines.PipelineIndex.FileName), index);
    }

    private static JsonArray Pair(string library, string cls) => new(library, cls);

    private static void WriteModel(string root, string name, JsonObject config, Engine.Models.Binding.IWeightSource source, string weightsName, DType storage)
    {
        string folder = Path.Combine(root, name);
        Directory.CreateDirectory(folder);
        WriteJson(Path.Combine(folder, "config.json"), config);
        var checkpoint = source as CheckpointWeightSource
            ?? throw new NotSupportedException($"{source.Description}: a VAE file with diffusers names is copied, not converted; give a VAE folder with --vae.");
        // One tensor at a time from the mapped file: converting a multi-gigabyte checkpoint holds one tensor, not the model.
        var layouts = checkpoint.Keys.Order(StringComparer.Ordinal).Select(k => new SafetensorsWriter.Layout(k, checkpoint.Shape(k), storage)).ToList();
        SafetensorsWriter.Write(Path.Combine(folder, weightsName), layouts, t => checkpoint.ReadFloats(t.Name), new Dictionary<string, string> { ["format"] = "pt" });
    }

    private static void WriteTokenizer(string folder, CheckpointPlan.TextPart part)
    {
        if (part.TokenizerFolder is { } from) { CopyFolder(from, folder); return; }
        Directory.CreateDirectory(folder);
        BuiltinClipTokenizer.Write(folder, part.PadWithExclamation);
    }

    private static void CopyFolder(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var f in Directory.GetFiles(from)) File.Copy(f, Path.Combine(to, Path.GetFileName(f)), overwrite: true);
    }

    private static void WriteJson(string path, JsonNode node) =>
        File.WriteAllText(path, node.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
}
