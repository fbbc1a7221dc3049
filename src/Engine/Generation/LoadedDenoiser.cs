using Engine.Generation.Pipelines;
using Engine.Models.Adapters;
using Engine.Models.Networks;
using Engine.Sampling;

namespace Engine.Generation;

/// <summary>
/// A denoiser loaded onto a generator's device, with the training schedule it was trained with
/// (<c>scheduler_config.json</c> beside the weights, or diffusers' DDPMScheduler defaults when the
/// folder has none).
/// </summary>
public sealed class LoadedDenoiser : IDisposable
{
    /// <summary>File whose presence marks a one-step x0 student (its config.json is the teacher architecture's).</summary>
    public const string OneStepStudentFile = "student_sampling.json";

    internal LoadedDenoiser(string path, DiffusionModel network, SchedulerConfig training, bool trainingFromFile, bool oneStepStudent, LatentPipeline? pipeline = null)
    {
        Pipeline = pipeline;
        Path = path;
        Network = network;
        TrainingSchedule = training;
        TrainingScheduleFromFile = trainingFromFile;
        IsOneStepStudent = oneStepStudent;
    }

    /// <summary>
    /// True for a distilled one-step student (a <see cref="OneStepStudentFile"/> beside the weights):
    /// x0 = model(x_T, t = 999, label), guidance baked in, clamped to [-1, 1]; it is sampled with the
    /// distillation sampler, never with a scheduler.
    /// </summary>
    public bool IsOneStepStudent { get; }

    /// <summary>
    /// The prompt encoder and VAE when the model was loaded from a pipeline folder (model_index.json):
    /// the network then denoises latents and needs prompts. Null for a single-model folder.
    /// </summary>
    public LatentPipeline? Pipeline { get; }

    /// <summary>Pixels per sample element along each side: the VAE's factor for a pipeline, else 1.</summary>
    public int PixelScale => Pipeline?.LatentScale ?? 1;

    /// <summary>The model folder.</summary>
    public string Path { get; }

    /// <summary>The network.</summary>
    public DiffusionModel Network { get; }

    /// <summary>The training schedule that sampler names are mapped onto.</summary>
    public SchedulerConfig TrainingSchedule { get; }

    /// <summary>Whether <see cref="TrainingSchedule"/> came from the folder's scheduler_config.json.</summary>
    public bool TrainingScheduleFromFile { get; }

    /// <summary>Number of real classes (without the null class used for guidance); 0 for unconditional models.</summary>
    public int ClassCount => Network.ClassCount is int rows && rows > 1 ? rows - 1 : 0;

    /// <summary>The class index used for the unconditional branch of classifier-free guidance (the table's last row).</summary>
    public int NullClass => ClassCount;

    private AdapterWeights? _adapters;
    private ControlNetCache? _controlNets;

    /// <summary>The ControlNets loaded for this model's requests, by folder (loaded on first use, freed with the model).</summary>
    internal ControlNetCache ControlNets => _controlNets ??= new ControlNetCache(Network.Device!);

    /// <summary>Device bytes of the ControlNet weights loaded for this model's requests so far (0 when none).</summary>
    public long ControlNetWeightBytes => _controlNets?.WeightBytes ?? 0;

    /// <summary>
    /// LoRA adapters merged into this model's weights (the denoiser as <c>unet</c> or <c>transformer</c>, and a
    /// pipeline's <c>text_encoder</c> and <c>text_encoder_2</c>); created on first use.
    /// </summary>
    public AdapterWeights Adapters => _adapters ??= new AdapterWeights(AdapterComponents());

    private List<(string, Network)> AdapterComponents()
    {
        var components = new List<(string, Network)> { (Network is UNet2DConditionModel or UNet2DModel ? "unet" : "transformer", Network) };
        if (Pipeline?.Prompts is { } prompts)
            components.AddRange(prompts.Encoders.Select((e, i) => (i == 0 ? "text_encoder" : $"text_encoder_{i + 1}", (Network)e)));
        return components;
    }

    /// <summary>Frees the weights (of every pipeline component too), the base weights again when adapters were merged.</summary>
    public void Dispose()
    {
        _adapters?.Dispose();
        _controlNets?.Dispose();
        Network.Dispose();
        Pipeline?.Dispose();
    }
}
