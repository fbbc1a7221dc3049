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
/// AutoencoderKL, scheduler). Every component folder and the text width against the UNet's
/// cross-attention width are checked from the configs before any weight is read.
/// </summary>
public static class PipelineLoader
{
    /// <summary>The pipeline classes that load.</summary>
    public static readonly IReadOnlyList<string> SupportedClasses = ["StableDiffusionPipeline"];

    /// <summary>Loads the pipeline in <paramref name="folder"/>; errors name model_index.json or the component file at fault.</summary>
    public static LoadedDenoiser Load(Device device, string folder, DType weightStorage)
    {
        var index = PipelineIndex.Load(folder);
        if (!SupportedClasses.Contains(index.ClassName))
            throw new InvalidDataException($"{index.FilePath}: pipeline class '{index.ClassName}' is not supported; supported: {string.Join(", ", SupportedClasses)}.");
        string unetDir = index.RequireComponent("unet", "UNet2DConditionModel");
        string vaeDir = index.RequireComponent("vae", "AutoencoderKL");
        string textDir = index.RequireComponent("text_encoder", "CLIPTextModel");
        string tokenizerDir = index.RequireComponent("tokenizer", "CLIPTokenizer", "CLIPTokenizerFast");
        string schedulerDir = index.RequireComponent("scheduler");
        string schedulerPath = Path.Combine(schedulerDir, "scheduler_config.json");
        var training = SchedulerConfig.Load(schedulerPath);

        var unetConfig = ModelConfig.Load(Path.Combine(unetDir, ModelConfig.FileName));
        var textConfig = ModelConfig.Load(Path.Combine(textDir, ModelConfig.FileName));
        int cross = unetConfig.Int("cross_attention_dim", 1280), width = textConfig.Int("hidden_size", 512);
        if (cross != width)
            throw new InvalidDataException($"{textConfig.Path}: hidden_size {width} does not match the UNet's cross_attention_dim {cross} ({unetConfig.Path}).");
        var tokenizer = ClipTokenizer.Load(tokenizerDir);

        DiffusionModel? unet = null;
        ClipTextModel? text = null;
        AutoencoderKL? vae = null;
        try
        {
            unet = ModelLoader.LoadDenoiser(device, unetDir, weightStorage);
            text = ClipTextModel.Load(device, textDir, weightStorage);
            vae = ModelLoader.Load(device, vaeDir, weightStorage) as AutoencoderKL
                ?? throw new InvalidDataException($"{vaeDir}: not an AutoencoderKL.");
            if (vae.LatentChannels != unet.InChannels)
                throw new InvalidDataException($"{vaeDir}: latent_channels {vae.LatentChannels} does not match the UNet's in_channels {unet.InChannels}.");
            var pipeline = new TextToImagePipeline(index, new PromptEncoder(tokenizer, text, textDir), vae);
            return new LoadedDenoiser(index.Folder, unet, training, trainingFromFile: true, oneStepStudent: false, pipeline);
        }
        catch
        {
            unet?.Dispose();
            text?.Dispose();
            vae?.Dispose();
            throw;
        }
    }
}
