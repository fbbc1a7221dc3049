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
        ["ControlNetModel"] = c => new ControlNetModel(c),
    };

    /// <summary>The <c>_class_name</c> values this engine can load.</summary>
    public static IReadOnlyCollection<string> SupportedClasses => Builders.Keys;

    /// <summary>Builds the network a configuration describes, without weights.</summary>
    public static Network Build(ModelConfig config) => Build(config, null);

    /// <summary>
    /// Builds the network a configuration describes for the weights <paramref name="weights"/> will bind
    /// (null: no weights yet). With weights, a configuration that cannot match them is refused before
    /// the network is built: depth fields beyond the blocks the file holds are named (see
    /// <see cref="DepthCheck"/>), and building stops once the network declares far more parameters
    /// (twice and more) than the file holds tensors, so an absurd size costs time in proportion to the
    /// file, not to the number.
    /// </summary>
    public static Network Build(ModelConfig config, IWeightSource? weights)
    {
        var build = Builder(config);
        if (weights is not null)
        {
            DepthCheck.Check(config, weights);
            config = config.WithParameterLimit(ParameterLimit(weights.Keys.Count));
        }
        try { return build(config); }
        catch (ArgumentException e) { throw new ModelLoadException($"{config.Path}: {e.Message}", e); }
        catch (ParameterLimitException e)
        {
            throw new ModelLoadException($"{config.Path}: {config.ClassName} cannot match {weights!.Description}: {e.Message} but the weights hold {weights.Keys.Count} tensors; check the size fields of the configuration.", e);
        }
    }

    // Strict binding needs one tensor per parameter. Building stops well past that count, so that a
    // network a few tensors off still builds and the binder names exactly which are missing.
    private static int ParameterLimit(int tensors) => (int)Math.Min(int.MaxValue, 2L * tensors + 256);

    private static Func<ModelConfig, Network> Builder(ModelConfig config)
    {
        if (string.IsNullOrEmpty(config.ClassName))
            throw new ModelLoadException($"{config.Path}: no '_class_name'; supported classes: {string.Join(", ", SupportedClasses)}.", ModelLoadFailure.UnsupportedClass);
        if (!Builders.TryGetValue(config.ClassName, out var build))
            throw new ModelLoadException($"{config.Path}: model class '{config.ClassName}' is not supported; supported classes: {string.Join(", ", SupportedClasses)}.", ModelLoadFailure.UnsupportedClass);
        return build;
    }

    /// <summary>
    /// Loads the model in <paramref name="folder"/> onto <paramref name="device"/>, keeping Linear and
    /// Conv2d weights in <paramref name="weightStorage"/> (F32, F16 or BF16; see <see cref="WeightBinder.Bind"/>).
    /// </summary>
    public static Network Load(Device device, string folder, DType weightStorage = DType.F32)
    {
        if (!Directory.Exists(folder)) throw new ModelLoadException($"{folder}: model folder not found.", ModelLoadFailure.NotFound);
        var config = ModelConfig.Load(Path.Combine(folder, ModelConfig.FileName));
        Builder(config);
        using var source = SafetensorsWeightSource.OpenFolder(folder);
        var model = Build(config, source);
        try
        {
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
        throw new ModelLoadException($"{folder}: '{model.Config.ClassName}' is not a denoising network.", ModelLoadFailure.UnsupportedClass);
    }
}
