namespace Engine.Generation;

/// <summary>
/// What to generate. Image <c>i</c> of a request draws its noise from sample index <c>i</c> of
/// <see cref="Seed"/>, so the same request gives the same pixels at any batch size.
/// </summary>
public sealed class GenerationRequest
{
    /// <summary>Default sampler when neither <see cref="Sampler"/> nor <see cref="SchedulerConfigJson"/> is given.</summary>
    public const string DefaultSampler = "dpmpp_2m";

    /// <summary>Short sampler name (<c>dpmpp_2m</c>, <c>ddim</c>, <c>euler_a</c>, ...); null = <see cref="DefaultSampler"/>.</summary>
    public string? Sampler { get; init; }

    /// <summary>Schedule name (<c>karras</c>, <c>exponential</c>, ...) applied on top of the sampler, or null.</summary>
    public string? Schedule { get; init; }

    /// <summary>diffusers scheduler_config JSON text; when set it replaces <see cref="Sampler"/> and <see cref="Schedule"/>.</summary>
    public string? SchedulerConfigJson { get; init; }

    /// <summary>Number of inference steps.</summary>
    public int Steps { get; init; } = 20;

    /// <summary>Classifier-free guidance scale; 1 runs the conditional model only.</summary>
    public float GuidanceScale { get; init; } = 3f;

    /// <summary>Noise seed.</summary>
    public ulong Seed { get; init; }

    /// <summary>Number of images.</summary>
    public int Count { get; init; } = 1;

    /// <summary>
    /// Class labels: one for every image, or one per image. Null on a class-conditional model cycles
    /// through the classes (image i gets class i mod classes).
    /// </summary>
    public int[]? ClassLabels { get; init; }

    /// <summary>Image height; 0 = the model's sample size.</summary>
    public int Height { get; init; }

    /// <summary>Image width; 0 = the model's sample size.</summary>
    public int Width { get; init; }

    /// <summary>Images per model batch; 0 = automatic.</summary>
    public int BatchSize { get; init; }

    /// <summary>
    /// Guidance and plug-in options as <c>key=value</c> strings (<c>pag_scale=3</c>, <c>eps_scale=1.005</c>,
    /// ...; see <c>Engine.Sampling.Guidance.SamplingOptionCatalog</c>). Empty = plain classifier-free guidance.
    /// </summary>
    public IReadOnlyList<string> Options { get; init; } = [];

    /// <summary>
    /// Optional initial noise x_T for all <see cref="Count"/> images ([Count, C, H, W] floats, before
    /// init_noise_sigma scaling), to reproduce runs made elsewhere; null draws it from <see cref="Seed"/>.
    /// </summary>
    public float[]? InitialNoise { get; init; }
}
