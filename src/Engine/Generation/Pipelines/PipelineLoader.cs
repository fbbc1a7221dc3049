using Engine.Core;
using Engine.Models;
using Engine.Models.Loading;
using Engine.Models.Networks;
using Engine.Models.Text;
using Engine.Sampling;

namespace Engine.Generation.Pipelines;

/// <summary>
/// Loads a diffusers pipeline folder (<c>model_index.json</c> beside one folder per component) onto a
/// device. Supported: StableDiffusionPipeline (SD 1.x/2.x: tokenizer, CLIPTextModel, UNet2DConditionModel,
/// AutoencoderKL, scheduler), StableDiffusionXLPipeline (tokenizer and tokenizer_2, CLIPTextModel and
/// CLIPTextModelWithProjection, a text_time UNet) and DiTPipeline (a class-conditional transformer, no
/// text encoder) and StableDiffusion3Pipeline without T5 (two CLIPTextModelWithProjection, SD3Transformer2DModel).
/// Component folders, the text width against the UNet's
/// cross-attention width and SDXL's pooled width are checked from the configs before any weight is read.
/// </summary>
public static class PipelineLoader
{
    /// <summary>The pipeline classes that load.</summary>
    public static readonly IReadOnlyList<string> SupportedClasses = ["StableDiffusionPipeline", "StableDiffusionXLPipeline", "StableDiffusion3Pipeline", "DiTPipeline"];

    /// <summary>Loads the pipeline in <paramref name="folder"/>; errors name model_index.json or the component file at fault.</summary>
    public static LoadedDenoiser Load(Device device, string folder, DType weightStorage)
    {
        var index = PipelineIndex.Load(folder);
        if (!SupportedClasses.Contains(index.ClassName))
            throw new ModelLoadException($"{index.FilePath}: pipeline class '{index.ClassName}' is not supported; supported: {string.Join(", ", SupportedClasses)}.", ModelLoadFailure.UnsupportedClass);
        if (index.ClassName == "DiTPipeline") return LoadDiT(device, index, weightStorage);
        if (index.ClassName == "StableDiffusion3Pipeline") return LoadSD3(device, index, weightStorage);
        bool xl = index.ClassName == "StableDiffusionXLPipeline";
        string unetDir = index.RequireComponent("unet", "UNet2DConditionModel");
        string vaeDir = index.RequireComponent("vae", "AutoencoderKL");
        var textDirs = new List<(string Text, string Tokenizer)> { (index.RequireComponent("text_encoder", "CLIPTextModel"), index.RequireComponent("tokenizer", "CLIPTokenizer", "CLIPTokenizerFast")) };
        if (xl) textDirs.Add((index.RequireComponent("text_encoder_2", "CLIPTextModelWithProjection"), index.RequireComponent("tokenizer_2", "CLIPTokenizer", "CLIPTokenizerFast")));
        string schedulerPath = Path.Combine(index.RequireComponent("scheduler"), "scheduler_config.json");
        var training = SchedulerConfig.Load(schedulerPath);

        var unetConfig = ModelConfig.Load(Path.Combine(unetDir, ModelConfig.FileName));
        var textConfigs = textDirs.Select(d => ModelConfig.Load(Path.Combine(d.Text, ModelConfig.FileName))).ToList();
        int cross = unetConfig.Int("cross_attention_dim", 1280), width = textConfigs.Sum(c => c.Int("hidden_size", 512));
        if (cross != width)
            throw new InvalidDataException($"{string.Join(" + ", textConfigs.Select(c => c.Path))}: hidden_size {width} does not match the UNet's cross_attention_dim {cross} ({unetConfig.Path}).");
        if (xl != (unetConfig.String("addition_embed_type", null) == "text_time"))
            throw new InvalidDataException($"{unetConfig.Path}: {index.ClassName} needs {(xl ? "" : "no ")}addition_embed_type \"text_time\".");
        var tokenizers = textDirs.Select(d => ClipTokenizer.Load(d.Tokenizer)).ToList();

        DiffusionModel? unet = null;
        var texts = new List<ClipTextModel>();
        AutoencoderKL? vae = null;
        try
        {
            unet = ModelLoader.LoadDenoiser(device, unetDir, weightStorage);
            foreach (var d in textDirs) texts.Add(ClipTextModel.Load(device, d.Text, weightStorage));
            if (xl && unet is UNet2DConditionModel { AdditionEmbedding: { } added } && added.TextEmbedDim != texts[^1].ProjectionDim)
                throw new InvalidDataException($"{textConfigs[^1].Path}: projection_dim {texts[^1].ProjectionDim} does not match the UNet's text_embeds width {added.TextEmbedDim} ({unetConfig.Path}).");
            vae = ModelLoader.Load(device, vaeDir, weightStorage) as AutoencoderKL
                ?? throw new InvalidDataException($"{vaeDir}: not an AutoencoderKL.");
            if (vae.LatentChannels != unet.InChannels)
                throw new InvalidDataException($"{vaeDir}: latent_channels {vae.LatentChannels} does not match the UNet's in_channels {unet.InChannels}.");
            var prompts = new PromptEncoder(textDirs.Select((d, i) => (tokenizers[i], texts[i], d.Text)).ToList(), penultimate: xl);
            var pipeline = new LatentPipeline(index, prompts, vae, micro: xl);
            return new LoadedDenoiser(index.Folder, unet, training, trainingFromFile: true, oneStepStudent: false, pipeline);
        }
        catch
        {
            unet?.Dispose();
            foreach (var t in texts) t.Dispose();
            vae?.Dispose();
            throw;
        }
    }

    private static LoadedDenoiser LoadDiT(Device device, PipelineIndex index, DType weightStorage)
    {
        string transformerDir = index.RequireComponent("transformer", "DiTTransformer2DModel", "Transformer2DModel");
        string vaeDir = index.RequireComponent("vae", "AutoencoderKL");
        var training = SchedulerConfig.Load(Path.Combine(index.RequireComponent("scheduler"), "scheduler_config.json"));
        DiffusionModel? transformer = null;
        AutoencoderKL? vae = null;
        try
        {
            transformer = ModelLoader.LoadDenoiser(device, transformerDir, weightStorage);
            vae = ModelLoader.Load(device, vaeDir, weightStorage) as AutoencoderKL ?? throw new InvalidDataException($"{vaeDir}: not an AutoencoderKL.");
            if (vae.LatentChannels != transformer.InChannels)
                throw new InvalidDataException($"{vaeDir}: latent_channels {vae.LatentChannels} does not match the transformer's in_channels {transformer.InChannels}.");
            return new LoadedDenoiser(index.Folder, transformer, training, trainingFromFile: true, oneStepStudent: false, new LatentPipeline(index, null, vae, micro: false));
        }
        catch
        {
            transformer?.Dispose();
            vae?.Dispose();
            throw;
        }
    }

    private static LoadedDenoiser LoadSD3(Device device, PipelineIndex index, DType weightStorage)
    {
        if (index.ComponentClass("text_encoder_3") is { } t5)
            throw new NotSupportedException($"{index.FilePath}: text_encoder_3 ({t5}) is not supported yet; a folder without it (saved with text_encoder_3=None) runs with the T5 part as zeros, as diffusers does.");
        string transformerDir = index.RequireComponent("transformer", "SD3Transformer2DModel");
        string vaeDir = index.RequireComponent("vae", "AutoencoderKL");
        var textDirs = new[] { ("text_encoder", "tokenizer"), ("text_encoder_2", "tokenizer_2") }
            .Select(p => (Text: index.RequireComponent(p.Item1, "CLIPTextModelWithProjection"), Tokenizer: index.RequireComponent(p.Item2, "CLIPTokenizer", "CLIPTokenizerFast"))).ToList();
        var training = SchedulerConfig.Load(Path.Combine(index.RequireComponent("scheduler"), "scheduler_config.json"));
        var config = ModelConfig.Load(Path.Combine(transformerDir, ModelConfig.FileName));
        var textConfigs = textDirs.Select(d => ModelConfig.Load(Path.Combine(d.Text, ModelConfig.FileName))).ToList();
        int joint = config.Int("joint_attention_dim", 4096), width = textConfigs.Sum(c => c.Int("hidden_size", 512));
        int pooledDim = config.Int("pooled_projection_dim", 2048), projections = textConfigs.Sum(c => c.Int("projection_dim", 512));
        if (width > joint)
            throw new InvalidDataException($"{string.Join(" + ", textConfigs.Select(c => c.Path))}: hidden_size {width} is wider than the transformer's joint_attention_dim {joint} ({config.Path}).");
        if (pooledDim != projections)
            throw new InvalidDataException($"{string.Join(" + ", textConfigs.Select(c => c.Path))}: projection_dim {projections} does not match the transformer's pooled_projection_dim {pooledDim} ({config.Path}).");
        var tokenizers = textDirs.Select(d => ClipTokenizer.Load(d.Tokenizer)).ToList();
        DiffusionModel? transformer = null;
        var texts = new List<ClipTextModel>();
        AutoencoderKL? vae = null;
        try
        {
            transformer = ModelLoader.LoadDenoiser(device, transformerDir, weightStorage);
            foreach (var d in textDirs) texts.Add(ClipTextModel.Load(device, d.Text, weightStorage));
            vae = ModelLoader.Load(device, vaeDir, weightStorage) as AutoencoderKL ?? throw new InvalidDataException($"{vaeDir}: not an AutoencoderKL.");
            if (vae.LatentChannels != transformer.InChannels)
                throw new InvalidDataException($"{vaeDir}: latent_channels {vae.LatentChannels} does not match the transformer's in_channels {transformer.InChannels}.");
            var prompts = new PromptEncoder(textDirs.Select((d, i) => (tokenizers[i], texts[i], d.Text)).ToList(), penultimate: true, jointWidth: joint);
            return new LoadedDenoiser(index.Folder, transformer, training, trainingFromFile: true, oneStepStudent: false, new LatentPipeline(index, prompts, vae, micro: false));
        }
        catch
        {
            transformer?.Dispose();
            foreach (var t in texts) t.Dispose();
            vae?.Dispose();
            throw;
        }
    }
}
