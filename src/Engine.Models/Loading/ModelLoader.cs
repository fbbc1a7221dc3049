using Engine.Core;
using Engine.Models.Binding;
using Engine.Models.Networks;

namespace Engine.Models.Loading;

/// <summary>
/// Loads a diffusers model folder (<c>config.json</c> + <c>diffusion_pytorch_model.safetensors</c>):
/// picks the network by <c>_class_name</c>, builds it from the configuration with diffusers' defaults
/// and binds the weights strictly onto a device.
/// </summary>
public static class ModelLoader
{
    private static readonly Dictionary<string, Func<ModelConfig, Network>> Builders = new(StringComparer.Ordinal)
    {
        ["UNet2DModel"] = c => new UNet2DModel(c),
        ["UNet2DConditionModel"] = c => new UNet2DConditionModel(c),
        ["DiTTransformer2DModel"] = c => new DiTTransformer2DModel(c),
        ["Transformer2DModel"] = c => new DiTTransformer2DModel(c),
        ["SD3Transformer2DModel"] = c => new SD3Transformer2DModel(c),
        ["AutoencoderKL"] = c => new AutoencoderKL(c),
    };

    /// <summary>The <c>_class_name</c> values this engine can load.</summary>
    public static IReadOnlyCollection<string> SupportedClasses => Builders.Keys;

    /// <summary>Builds the network a configuration describes, without weights.</summary>
    public static Network Build(ModelConfig config)
    {
        if (string.IsNullOrEmpty(config.ClassName))
            throw new ModelLoadException($"{config.Path}: no '_class_name'; supported classes: {string.Join(", ", SupportedClasses)}.");
        if (!Builders.TryGetValue(config.ClassName, out var build))
            throw new ModelLoadException($"{config.Path}: model class '{config.ClassName}' is not supported; supported classes: {string.Join(", ", SupportedClasses)}.");
        try { return build(config); }
        catch (ArgumentException e) { throw new ModelLoadException($"{config.Path}: {e.Message}", e); }
    }

    /// <summary>
    /// Loads the model in <paramref name="folder"/> onto <paramref name="device"/>, keeping Linear and
    /// Conv2d weights in <paramref name="weightStorage"/> (F32, F16 or BF16; see <see cref="WeightBinder.Bind"/>).
    /// </summary>
    public static Network Load(Device device, string folder, DType weightStorage = DType.F32)
    {
        if (!Directory.Exists(folder)) throw new ModelLoadException($"{folder}: model folder not found.");
        var model = Build(ModelConfig.Load(Path.Combine(folder, ModelConfig.FileName)));
        try
        {
            using var source = SafetensorsWeightSource.OpenFolder(folder);
            model.Bind(device, source, weightStorage);
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>Loads a denoiser (UNet or transformer); throws naming the class when the folder holds another kind of model.</summary>
    public static DiffusionModel LoadDenoiser(Device device, string folder, DType weightStorage = DType.F32)
    {
        var model = Load(device, folder, weightStorage);
        if (model is DiffusionModel d) return d;
        model.Dispose();
        throw new ModelLoadException($"{folder}: '{model.Config.ClassName}' is not a denoising network.");
    }
}
