using Engine.Core;
using Engine.Generation.Pipelines;
using Engine.Models;
using Engine.Models.Loading;
using Engine.Models.Networks;
using Engine.Models.Text;
using Engine.Sampling;

namespace Engine.Generation.Checkpoints;

/// <summary>
/// Loads a single-file SD 1.x / 2.x / SDXL checkpoint as the pipeline its <see cref="CheckpointPlan"/>
/// describes. The file stays memory-mapped while each component binds; every tensor is copied from the
/// mapping to the device once, converted there (F16/BF16 to the weight storage), and the file is unmapped
/// when loading ends. Checks that need no weights (text widths against the UNet, latent channels) come first.
/// </summary>
public static class SingleFileLoader
{
    /// <summary>Whether <paramref name="path"/> is a file the engine should read as a single-file checkpoint.</summary>
    public static bool IsCheckpointFile(string path) =>
        File.Exists(path) && path.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase);

    /// <summary>Loads the checkpoint at <paramref name="path"/>; errors name the file, the config folder or the option at fault.</summary>
    public static LoadedDenoiser Load(Device device, string path, CheckpointOptions? options, DType weightStorage)
    {
        using var plan = CheckpointPlan.Open(path, options);
        bool xl = plan.Kind == Engine.Models.Checkpoints.CheckpointKind.StableDiffusionXL;
        var unetConfig = ModelConfig.Parse(plan.UNet.Config.ToJsonString(), $"{plan.Path} (unet config)");
        var textConfigs = plan.TextEncoders.Select(t => ModelConfig.Parse(t.Config.ToJsonString(), $"{plan.Path} ({t.Name} config)")).ToList();
        int cross = unetConfig.Int("cross_attention_dim", 1280), width = textConfigs.Sum(c => c.Int("hidden_size", 512));
        if (cross != width)
            throw new InvalidDataException($"{plan.Path}: the text encoders' hidden_size {width} does not match the UNet's cross_attention_dim {cross}.");
        var training = SchedulerConfig.ParseJson(plan.Scheduler.ToJsonString());
        var tokenizers = plan.TextEncoders.Select(t => t.Tokenizer()).ToList();

        DiffusionModel? unet = null;
        var texts = new List<ClipTextModel>();
        AutoencoderKL? vae = null;
        try
        {
            unet = ModelLoader.Build(unetConfig) as DiffusionModel ?? throw new InvalidDataException($"{plan.Path}: the UNet config does not build a denoiser.");
            unet.Bind(device, plan.UNet.Source, weightStorage);
            for (int i = 0; i < plan.TextEncoders.Count; i++)
            {
                var text = new ClipTextModel(textConfigs[i]);
                texts.Add(text);
                text.Bind(device, plan.TextEncoders[i].Source, weightStorage);
            }
            if (xl && unet is UNet2DConditionModel { AdditionEmbedding: { } added } && added.TextEmbedDim != texts[^1].ProjectionDim)
                throw new InvalidDataException($"{plan.Path}: text_encoder_2's projection_dim {texts[^1].ProjectionDim} does not match the UNet's text_embeds width {added.TextEmbedDim}.");
            if (plan.VaeFolder is { } vaeFolder)
                vae = ModelLoader.Load(device, vaeFolder, weightStorage) as AutoencoderKL ?? throw new InvalidDataException($"{vaeFolder}: not an AutoencoderKL (--vae).");
            else
            {
                vae = new AutoencoderKL(ModelConfig.Parse(plan.Vae.Config.ToJsonString(), $"{plan.Path} (vae config)"));
                vae.Bind(device, plan.Vae.Source!, weightStorage);
            }
            if (vae.LatentChannels != unet.InChannels)
                throw new InvalidDataException($"{plan.Vae.Source?.Description ?? plan.VaeFolder}: latent_channels {vae.LatentChannels} does not match the UNet's in_channels {unet.InChannels}.");
            var prompts = new PromptEncoder(plan.TextEncoders.Select((t, i) => (tokenizers[i], texts[i], $"{plan.Path} ({t.Name})")).ToList(), penultimate: xl);
            var pipeline = new LatentPipeline(plan.Index, prompts, vae, micro: xl);
            return new LoadedDenoiser(plan.Path, unet, training, trainingFromFile: true, oneStepStudent: false, pipeline);
        }
        catch
        {
            unet?.Dispose();
            foreach (var t in texts) t.Dispose();
            vae?.Dispose();
            throw;
        }
    }
}
