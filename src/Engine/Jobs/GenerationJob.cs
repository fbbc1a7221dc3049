using System.Text.Json;
using Engine.Generation;
using Engine.Sampling.Rng;

namespace Engine.Jobs;

/// <summary>
/// One generation job, as one line of a job file holds it (the job line's wire form). Optional settings
/// are null when the line leaves them to the defaults of whoever runs the job. <see cref="ToRequest"/>
/// maps the settings onto a <see cref="GenerationRequest"/> and <see cref="Images"/> lists the images;
/// each image is one request of its own seed (<see cref="GenerationRequest.ForSeed"/>).
/// </summary>
public sealed class GenerationJob
{
    /// <summary>Creates a job; <see cref="JobFile"/> validates lines before building one.</summary>
    public GenerationJob(int line, string model, IReadOnlyList<ulong> seeds, IReadOnlyList<int>? classes)
    {
        ArgumentException.ThrowIfNullOrEmpty(model);
        ArgumentNullException.ThrowIfNull(seeds);
        if (seeds.Count == 0) throw new ArgumentException("A job needs at least one seed.", nameof(seeds));
        if (classes is { Count: 0 }) throw new ArgumentException("An explicit class list must not be empty.", nameof(classes));
        Line = line; Model = model; Seeds = seeds; Classes = classes;
    }

    /// <summary>1-based line of the job file this job came from.</summary>
    public int Line { get; }

    /// <summary>Model folder or built-in model name (<c>model</c>).</summary>
    public string Model { get; }

    /// <summary>Sampler name (<c>sampler</c>).</summary>
    public string? Sampler { get; init; }

    /// <summary>Single-file checkpoint model: the pipeline folder describing it (<c>config</c>), or null.</summary>
    public string? Config { get; init; }

    /// <summary>Single-file checkpoint model: a VAE folder or file replacing its own (<c>vae</c>), or null.</summary>
    public string? Vae { get; init; }

    /// <summary>Single-file checkpoint model: the prediction type (<c>prediction_type</c>), or null.</summary>
    public string? PredictionType { get; init; }

    /// <summary>Scheduler configuration file overriding the model's (<c>scheduler_config</c>).</summary>
    public string? SchedulerConfig { get; init; }

    /// <summary>Number of sampling steps (<c>steps</c>).</summary>
    public int? Steps { get; init; }

    /// <summary>Classifier-free guidance scale (<c>cfg</c>).</summary>
    public double? Cfg { get; init; }

    /// <summary>Class labels (<c>class</c> or <c>classes</c>), assigned to the images in turn; null for unconditional.</summary>
    public IReadOnlyList<int>? Classes { get; }

    /// <summary>
    /// One seed per image, each image sample index 0 of its seed: <c>seeds</c>, or a single <c>seed</c> S
    /// with <c>count</c> N read as the seeds S, S+1, ..., S+N-1 (see the seed rule of <see cref="GenerationRequest"/>).
    /// </summary>
    public IReadOnlyList<ulong> Seeds { get; }

    /// <summary>Number of images.</summary>
    public int Count => Seeds.Count;

    /// <summary>Images per model batch (<c>batch</c>); accepted for compatibility and not used, since every image is a request of its own.</summary>
    public int? Batch { get; init; }

    /// <summary>Device kind (<c>device</c>).</summary>
    public string? Device { get; init; }

    /// <summary>Output folder (<c>out</c>).</summary>
    public string? Out { get; init; }

    /// <summary>The generator the seeds drive (<c>rng</c>), or null for the runner's default.</summary>
    public RngKind? Rng { get; init; }

    /// <summary>Free-form options for plug-ins and guidance (<c>options</c>), passed through unread.</summary>
    public IReadOnlyDictionary<string, JsonElement> Options { get; init; } = new Dictionary<string, JsonElement>();

    /// <summary>Prompt of every image, for a pipeline folder (<c>prompt</c>).</summary>
    public string? Prompt { get; init; }

    /// <summary>Negative prompt of every image (<c>negative_prompt</c>).</summary>
    public string? NegativePrompt { get; init; }

    /// <summary>Image height in pixels (<c>height</c>).</summary>
    public int? Height { get; init; }

    /// <summary>Image width in pixels (<c>width</c>).</summary>
    public int? Width { get; init; }

    /// <summary>img2img init image file (<c>init_image</c>, as written on the line: relative to the job file), or null.</summary>
    public string? InitImage { get; init; }

    /// <summary>img2img strength (<c>strength</c>), or null for the default.</summary>
    public double? Strength { get; init; }

    /// <summary>VAE tiling (<c>vae_tiling</c>), or null for the default (auto).</summary>
    public Generation.Pipelines.VaeTiling? VaeTiling { get; init; }

    /// <summary>LoRA adapters with their scales (<c>lora</c>); paths as written in the line.</summary>
    public IReadOnlyList<Engine.Models.Adapters.LoraSpec> Loras { get; init; } = [];

    /// <summary>ControlNets with their images and windows (<c>controlnet</c>); paths as written in the line.</summary>
    public IReadOnlyList<JobControlNet> ControlNets { get; init; } = [];

    /// <summary>ControlNet guess mode (<c>guess_mode</c>).</summary>
    public bool GuessMode { get; init; }

    /// <summary>
    /// The line's values of the request fields it shares with the image sidecar (<see cref="RequestFields.All"/>: eta,
    /// timesteps, clip skip, SDXL micro-conditioning), held on an otherwise default request; fields the line leaves out are null.
    /// </summary>
    public GenerationRequest SharedFields { get; init; } = new();

    /// <summary>Activation precision (<c>precision</c>: f16, bf16 or f32), or null for the runner's default.</summary>
    public Engine.Core.DType? Precision { get; init; }

    /// <summary>
    /// The job's settings as a request (model, sampler, scheduler config file, steps, guidance scale,
    /// options as <c>key=value</c>, device, prompts, size, clip skip, SDXL micro-conditioning); what the line leaves out takes the request's defaults. The
    /// caller resolves the paths and device and reads the scheduler config; seeds and classes come per
    /// image from <see cref="Images"/>.
    /// </summary>
    public GenerationRequest ToRequest() => RequestFields.Copy(SharedFields, new()
    {
        Model = Model,
        Sampler = Sampler,
        SchedulerConfigPath = SchedulerConfig,
        Steps = Steps ?? GenerationRequest.DefaultSteps,
        GuidanceScale = Cfg ?? GenerationRequest.DefaultGuidanceScale,
        Options = Options.Select(kv => $"{kv.Key}={(kv.Value.ValueKind == JsonValueKind.String ? kv.Value.GetString() : kv.Value.GetRawText())}").ToList(),
        Device = Device,
        Rng = Rng ?? RngKind.Philox,
        Prompts = Prompt is null ? null : [Prompt],
        NegativePrompts = NegativePrompt is null ? null : [NegativePrompt],
        Height = Height ?? 0,
        Width = Width ?? 0,
        VaeTiling = VaeTiling ?? Generation.Pipelines.VaeTiling.Auto,
        Loras = Loras,
        Precision = Precision,
    });

    /// <summary>The images this job produces, in order; image i takes class Classes[i % Classes.Count].</summary>
    public IReadOnlyList<JobImage> Images()
    {
        var images = new JobImage[Seeds.Count];
        for (int i = 0; i < images.Length; i++)
        {
            int? label = Classes is null ? null : Classes[i % Classes.Count];
            images[i] = new JobImage(i, Seeds[i], label, JobImage.NameFor(Seeds[i], label));
        }
        return images;
    }
}
