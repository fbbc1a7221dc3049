using Engine.Core;
using Engine.Sampling.Rng;

namespace Engine.Generation;

/// <summary>
/// What to generate and how: the one request shape of the engine. The CLI options, the JSON sidecar
/// beside every image, a job-file line and the C <c>engine_request</c> each keep their own field names
/// on the wire and map onto this type in one place (<c>SamplingSettings</c> and <c>ImageSidecar</c> in
/// the CLI, <see cref="Jobs.GenerationJob.ToRequest"/>, <c>NativeRequest</c> in Engine.Native).
/// </summary>
/// <remarks>
/// <para><b>Seed rule.</b> An image's noise (the initial noise and whatever a stochastic sampler adds)
/// is fixed by a seed and a sample index. Image <c>i</c> of a request (i = 0 .. <see cref="Count"/> - 1)
/// uses sample index <c>i</c> of <see cref="Seed"/>, whatever <see cref="BatchSize"/>, so a request
/// gives the same images at any batch size. A list of seeds is one request per seed, each of one image
/// (sample index 0 of its seed; <see cref="ForSeed"/>), so an image of a seed list depends only on its
/// seed and class.</para>
/// <para><see cref="Rng"/> picks the stream: Philox (default) keyed by (seed, sample index, draw) as above, or
/// PyTorch's CPU generator as diffusers uses it: one <c>torch.Generator().manual_seed(Seed)</c> for the whole
/// request, x_T drawn first for all <see cref="Count"/> images at once, then every sampler draw for all of them
/// in order (so image <c>i</c> depends on <see cref="Count"/> but not on <see cref="BatchSize"/>). A seed list
/// is then diffusers' list of generators, one per image.</para>
/// <para>On the surfaces: <c>--seed S --count N</c> (CLI) and <c>seed</c> with <c>count</c> in
/// <c>engine_request</c> are one request; <c>--seeds LIST</c> and a job line's <c>seeds</c> are one
/// request per seed. A job line's single <c>seed</c> S with <c>count</c> N is read as the seed list
/// S, S+1, ..., S+N-1 (so existing job files give the same images). A sidecar records <c>seed</c>,
/// <c>sample_index</c> and the count, batch size and classes of the request that made its image.</para>
/// <para><see cref="Model"/>, <see cref="Teacher"/>, <see cref="Device"/> and <see cref="WeightStorage"/>
/// say what the front ends load and where; <see cref="Generator.Generate(LoadedDenoiser, GenerationRequest, Func{GenerationProgress, bool}?, CancellationToken)"/>
/// takes the loaded model and device instead and reads the rest.</para>
/// </remarks>
public sealed record GenerationRequest
{
    /// <summary>
    /// Default sampler when neither <see cref="Sampler"/> nor <see cref="SchedulerConfigJson"/> is given: ComfyUI's
    /// <c>dpmpp_2m</c> on its <c>normal</c> grid (the name means what ComfyUI means, so a sidecar recording it reruns alike).
    /// </summary>
    public const string DefaultSampler = "dpmpp_2m";

    /// <summary>Default number of inference steps.</summary>
    public const int DefaultSteps = 20;

    /// <summary>Default classifier-free guidance scale.</summary>
    public const double DefaultGuidanceScale = 3;

    /// <summary>Model folder to load (a full path once resolved), or null where the caller passes a loaded model.</summary>
    public string? Model { get; init; }

    /// <summary>Teacher model folder when <see cref="Model"/> is sampled as a distilled student with Distillation++, else null.</summary>
    public string? Teacher { get; init; }

    /// <summary>How <see cref="Model"/> is read when it is a single-file checkpoint (config folder, prediction type, VAE), or null.</summary>
    public Checkpoints.CheckpointOptions? Checkpoint { get; init; }

    /// <summary>Device kind (<c>cpu</c>, <c>cuda</c>, ...), or null for the default device.</summary>
    public string? Device { get; init; }

    /// <summary>Storage of Linear and Conv2d weights: F32 (default), F16 or BF16.</summary>
    public DType WeightStorage { get; init; } = DType.F32;

    /// <summary>
    /// Storage of the networks' activations: F32, F16 or BF16 (products and reductions accumulate in float32
    /// either way); null = the device's default, F16 on CUDA and F32 elsewhere (see <see cref="ActivationPrecision"/>).
    /// </summary>
    public DType? Precision { get; init; }

    /// <summary>Short sampler name (<c>dpmpp_2m</c>, <c>ddim</c>, <c>euler_a</c>, ...); null = <see cref="DefaultSampler"/>.</summary>
    public string? Sampler { get; init; }

    /// <summary>
    /// Input precision of the model's GEMMs and convolutions: <see cref="ComputeMode.F32"/> (default),
    /// <see cref="ComputeMode.Bf16"/> (an error on a device without it) or <see cref="ComputeMode.Auto"/>.
    /// Accumulation, norms and softmax stay float32; the device's setting is restored after the request.
    /// </summary>
    public ComputeMode Compute { get; init; }

    /// <summary>Schedule name (<c>karras</c>, <c>exponential</c>, ...) applied on top of the sampler, or null.</summary>
    public string? Schedule { get; init; }

    /// <summary>diffusers scheduler_config JSON text; when set it replaces <see cref="Sampler"/> and <see cref="Schedule"/>.</summary>
    public string? SchedulerConfigJson { get; init; }

    /// <summary>The file <see cref="SchedulerConfigJson"/> is (to be) read from, kept for the record; null when given as text.</summary>
    public string? SchedulerConfigPath { get; init; }

    /// <summary>Number of inference steps.</summary>
    public int Steps { get; init; } = DefaultSteps;

    /// <summary>diffusers' <c>step(eta=...)</c>: DDIM's eta, TCD's gamma; null = the step's own default. Samplers without it refuse a value.</summary>
    public double? Eta { get; init; }

    /// <summary>
    /// Custom timesteps, descending, one per step (diffusers' <c>set_timesteps(timesteps=...)</c>; LCM, TCD, DDPM);
    /// null = the sampler's own grid for <see cref="Steps"/>.
    /// </summary>
    public int[]? Timesteps { get; init; }

    /// <summary>Classifier-free guidance scale; 1 runs the conditional model only. Sampling uses it as a float.</summary>
    public double GuidanceScale { get; init; } = DefaultGuidanceScale;

    /// <summary>
    /// Guidance and plug-in options as <c>key=value</c> strings (<c>pag_scale=3</c>, <c>eps_scale=1.005</c>,
    /// ...; see <c>Engine.Sampling.Guidance.SamplingOptionCatalog</c>). Empty = plain classifier-free guidance.
    /// </summary>
    public IReadOnlyList<string> Options { get; init; } = [];

    /// <summary>Images per model batch; 0 = automatic (up to <see cref="Generator.AutomaticBatchSize"/>).</summary>
    public int BatchSize { get; init; }

    /// <summary>Noise seed: image <c>i</c> uses its sample index <c>i</c> (see the seed rule above).</summary>
    public ulong Seed { get; init; }

    /// <summary>Number of images.</summary>
    public int Count { get; init; } = 1;

    /// <summary>The generator <see cref="Seed"/> drives (see the seed rule above); Philox by default.</summary>
    public RngKind Rng { get; init; }

    /// <summary>
    /// Class labels: one for every image, or one per image. Null on a class-conditional model cycles
    /// through the classes (image i gets class i mod classes).
    /// </summary>
    public int[]? ClassLabels { get; init; }

    /// <summary>
    /// Image height in pixels; 0 = the model's default (its sample size, times the VAE's factor for a
    /// pipeline folder, whose height must be a multiple of that factor).
    /// </summary>
    public int Height { get; init; }

    /// <summary>Image width in pixels; 0 = the model's default (see <see cref="Height"/>).</summary>
    public int Width { get; init; }

    /// <summary>
    /// Prompts of a text-to-image pipeline: one for every image or one per image (image i gets prompt i).
    /// Null or empty for models without text conditioning, which refuse prompts.
    /// </summary>
    public IReadOnlyList<string>? Prompts { get; init; }

    /// <summary>
    /// Negative prompts (the unconditional branch of classifier-free guidance): none (the empty prompt),
    /// one for every image or one per image. Used only when the guidance scale is above 1, as in diffusers.
    /// </summary>
    public IReadOnlyList<string>? NegativePrompts { get; init; }

    /// <summary>
    /// CLIP skip n (diffusers' <c>clip_skip</c>): the positive prompts' embeddings are the final layer norm
    /// of the text encoder's hidden state n layers before the last; null = the last hidden state.
    /// </summary>
    public int? ClipSkip { get; init; }

    /// <summary>SDXL micro-conditioning <c>original_size</c> as [height, width]; null = the image size.</summary>
    public int[]? OriginalSize { get; init; }

    /// <summary>SDXL micro-conditioning <c>crops_coords_top_left</c> as [top, left]; null = [0, 0].</summary>
    public int[]? CropTopLeft { get; init; }

    /// <summary>SDXL micro-conditioning <c>target_size</c> as [height, width]; null = the image size.</summary>
    public int[]? TargetSize { get; init; }

    /// <summary>
    /// SDXL <c>negative_original_size</c> [height, width] for the unconditional branch of classifier-free guidance;
    /// given together with <see cref="NegativeTargetSize"/>. Null (both null) = the positive time ids, as in diffusers.
    /// </summary>
    public int[]? NegativeOriginalSize { get; init; }

    /// <summary>SDXL <c>negative_crops_coords_top_left</c> [top, left]; only with the negative sizes; null = [0, 0], as in diffusers.</summary>
    public int[]? NegativeCropTopLeft { get; init; }

    /// <summary>SDXL <c>negative_target_size</c> [height, width]; given together with <see cref="NegativeOriginalSize"/>.</summary>
    public int[]? NegativeTargetSize { get; init; }

    /// <summary>
    /// Optional initial noise x_T for all <see cref="Count"/> images ([Count, C, H, W] floats, before
    /// init_noise_sigma scaling; latents [Count, C, H / f, W / f] for a pipeline with VAE factor f), to reproduce runs made elsewhere; null draws it from <see cref="Seed"/>.
    /// </summary>
    public float[]? InitialNoise { get; init; }

    /// <summary>The safetensors file <see cref="InitialNoise"/> is (to be) read from (tensor <c>x_T</c>), kept for the record; null when none.</summary>
    public string? InitialNoiseFile { get; init; }

    /// <summary>
    /// img2img: the image the run starts from and its strength (diffusers' Img2Img pipelines on SD and SDXL
    /// folders); null for text-to-image. Without <see cref="Height"/>/<see cref="Width"/> the output has the
    /// image's size rounded down to the VAE factor; an image of another size is resized to the output size.
    /// </summary>
    public InitImage? InitImage { get; init; }

    /// <summary>Whether a pipeline's VAE decodes and encodes in overlapping tiles (<see cref="Pipelines.VaeTiling"/>).</summary>
    public Pipelines.VaeTiling VaeTiling { get; init; }

    /// <summary>
    /// LoRA adapters merged into the model for this request, each with its scale (the same on the denoiser and
    /// the text encoders); empty = the base model. Changing them between requests re-merges from the base
    /// weights kept in memory (see <see cref="LoadedDenoiser.Adapters"/>); a recorded SHA-256 must match the file.
    /// </summary>
    public IReadOnlyList<Engine.Models.Adapters.LoraSpec> Loras { get; init; } = [];

    /// <summary>ControlNets with their images, scales and windows (diffusers' ControlNet pipelines); residuals sum in order.</summary>
    public IReadOnlyList<ControlNetSpec> ControlNets { get; init; } = [];

    /// <summary>diffusers' guess_mode: the ControlNets run on the conditional rows only, residuals scaled from 0.1 to 1.</summary>
    public bool GuessMode { get; init; }

    /// <summary>
    /// LoRA adapters that make the model a distilled student (an LCM or TCD LoRA) for Distillation++: the student is
    /// the model with <see cref="Loras"/> and these, its teacher the model with <see cref="Loras"/> alone, and the two
    /// share every weight these adapters do not touch (see <see cref="Engine.Models.Adapters.AdapterWeights.ApplyStudent"/>).
    /// Empty: no student adapters. Not with <see cref="Teacher"/>.
    /// </summary>
    public IReadOnlyList<Engine.Models.Adapters.LoraSpec> StudentLoras { get; init; } = [];

    /// <summary>
    /// Optional recorded sampler draws for all <see cref="Count"/> images: <c>step_noise</c> [K, Count, C, H, W]
    /// flattened (K may be 0), the standard-normal draws diffusers' sampler made in its loop, consumed in order
    /// instead of the seed's; K must cover every draw of the run (checked before sampling).
    /// </summary>
    public float[]? StepNoise { get; init; }

    /// <summary>The batch size the generator uses: <see cref="BatchSize"/>, or the automatic size, at most <see cref="Count"/>.</summary>
    public int EffectiveBatchSize => Math.Min(Count, BatchSize > 0 ? BatchSize : Generator.AutomaticBatchSize);

    /// <summary>The sampler name to record: the given or default sampler, or null when a scheduler config replaces it.</summary>
    public string? SamplerName => SchedulerConfigJson is null ? Sampler ?? DefaultSampler : null;

    /// <summary>
    /// This request for one image of a seed list: sample index 0 of <paramref name="seed"/>, with
    /// <paramref name="classLabel"/> (null: unconditional, or the model's first class), its noise drawn from the seed.
    /// </summary>
    public GenerationRequest ForSeed(ulong seed, int? classLabel) =>
        this with { Seed = seed, Count = 1, ClassLabels = classLabel is { } c ? [c] : null, InitialNoise = null, InitialNoiseFile = null, StepNoise = null };

    /// <summary>
    /// This request with image <c>i</c> of <see cref="Count"/> given class <c>cycle[i mod length]</c>;
    /// a null or empty cycle leaves the labels to the model (see <see cref="ClassLabels"/>).
    /// </summary>
    public GenerationRequest WithClassCycle(IReadOnlyList<int>? cycle) =>
        this with { ClassLabels = cycle is { Count: > 0 } ? Enumerable.Range(0, Count).Select(i => cycle[i % cycle.Count]).ToArray() : null };
}
