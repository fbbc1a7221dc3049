using Engine.Core;
using Engine.Generation.Checkpoints;
using Engine.Generation.Pipelines;
using Engine.Models.Loading;
using Engine.Sampling;
using Engine.Sampling.Distillation;
using Engine.Sampling.Guidance;
using Engine.Sampling.Rng;
using Engine.Sampling.Schedules;

namespace Engine.Generation;

/// <summary>
/// Generates images on one device: loads model folders, resolves a request's sampler onto the
/// model's training schedule, draws batch-invariant noise, runs the sampler with guidance and
/// plug-ins (one batched forward for all guidance branches), and hands back the final samples.
/// One generation at a time per instance.
/// </summary>
public sealed partial class Generator : IDisposable
{
    /// <summary>Largest batch chosen automatically when the request leaves <see cref="GenerationRequest.BatchSize"/> at 0.</summary>
    public const int AutomaticBatchSize = 16;

    /// <summary>Timestep a one-step student is evaluated at.</summary>
    public const double OneStepStudentTimestep = DistilledRun.OneStepStudentTimestep;

    private const int MaxCount = 1_000_000, MaxSide = 4096, MaxSteps = 1000;

    /// <summary>Creates a generator on <paramref name="device"/> (the caller keeps ownership of the device).</summary>
    public Generator(Device device) => Device = device ?? throw new ArgumentNullException(nameof(device));

    /// <summary>The device every model and sample lives on.</summary>
    public Device Device { get; }

    /// <summary>
    /// Storage of Linear and Conv2d weights for models loaded from now on: F32 (default), F16 or BF16.
    /// Half storage halves their memory; every product still accumulates in float32.
    /// </summary>
    public DType WeightStorage { get; set; } = DType.F32;

    /// <summary>Receives warnings (a prompt truncated to the text encoder's length); null drops them.</summary>
    public Action<string>? Warning { get; set; }

    /// <summary>
    /// Receives the wall time of each phase of a request, the device synchronised first: <c>text encoding</c>,
    /// <c>denoising</c> (per batch, with its step count) and <c>VAE decode</c> (per batch); null skips the synchronisation.
    /// </summary>
    public Action<GenerationTiming>? Timing { get; set; }

    /// <summary>
    /// Loads a diffusers model folder (config.json + weights, optional scheduler_config.json), or a
    /// pipeline folder (model_index.json; see <see cref="PipelineLoader"/>).
    /// </summary>
    public LoadedDenoiser LoadModel(string folder) => LoadModel(folder, null);

    /// <summary>
    /// Loads a model folder as <see cref="LoadModel(string)"/> does, or a single-file checkpoint
    /// (<c>.safetensors</c> in the original LDM / SGM layout; see <see cref="SingleFileLoader"/>) read as
    /// <paramref name="checkpoint"/> says.
    /// </summary>
    public LoadedDenoiser LoadModel(string folder, CheckpointOptions? checkpoint)
    {
        if (string.IsNullOrWhiteSpace(folder)) throw new ArgumentException("Model path is empty; give a model folder, a pipeline folder or a single-file checkpoint.");
        string full = Path.GetFullPath(folder);
        if (SingleFileLoader.IsCheckpointFile(full)) return SingleFileLoader.Load(Device, full, checkpoint, WeightStorage);
        if (checkpoint is { IsEmpty: false })
            throw new ArgumentException($"'{full}' is a folder; --config, --vae and --prediction-type apply to single-file checkpoints only.");
        if (File.Exists(full))
            throw new ArgumentException($"'{full}' is a file, not a model: give a model folder (config.json and weights), a pipeline folder or a single-file checkpoint (.safetensors).");
        if (!Directory.Exists(full)) throw new DirectoryNotFoundException($"Model folder '{full}' does not exist.");
        if (PipelineIndex.IsPipelineFolder(full)) return PipelineLoader.Load(Device, full, WeightStorage);
        var network = ModelLoader.LoadDenoiser(Device, full, WeightStorage);
        try
        {
            if (network.NeedsEncoderHiddenStates || network.NeedsPooledProjections)
                throw new ArgumentException($"{network.Config.ClassName} in '{full}' needs text conditioning (encoder_hidden_states), which generation does not provide; use `engine forward` for such models.");
            string schedulerPath = Path.Combine(full, "scheduler_config.json");
            bool fromFile = File.Exists(schedulerPath);
            // Without a scheduler config, diffusers' DDPMScheduler defaults (linear betas 1e-4..0.02 over 1000 steps) stand in.
            SchedulerConfig training;
            // A malformed file in the model folder is bad data, not a bad argument of the caller.
            try { training = fromFile ? SchedulerConfig.Load(schedulerPath) : SchedulerConfig.ParseJson("{}", Engine.Sampling.Schedulers.DdpmScheduler.DiffusersClass); }
            catch (SchedulerConfigException e) { throw new InvalidDataException(e.Message, e); }
            return new LoadedDenoiser(full, network, training, fromFile, File.Exists(Path.Combine(full, LoadedDenoiser.OneStepStudentFile)));
        }
        catch
        {
            network.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The shape of the samples <paramref name="request"/> produces, after validating the whole
    /// request (sizes, steps, guidance, labels, options, sampler, and its memory: see <see cref="MemoryBudget"/>)
    /// so errors surface before any work.
    /// </summary>
    public (int Count, int Channels, int Height, int Width) OutputShape(LoadedDenoiser model, GenerationRequest request)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(request);
        if (request.Count < 1 || request.Count > MaxCount) throw new ArgumentException($"count {request.Count} must be between 1 and {MaxCount}.");
        int scale = model.PixelScale;
        // img2img: without a size the output takes the init image's, rounded down to the VAE factor (diffusers).
        var init = request.InitImage;
        int height = request.Height != 0 ? request.Height : init is not null ? init.Height / scale * scale : model.Network.SampleSize * scale;
        int width = request.Width != 0 ? request.Width : init is not null ? init.Width / scale * scale : model.Network.SampleSize * scale;
        if ((request.Height == 0 || request.Width == 0) && init is null && model.Network.SampleSize * (long)scale > MaxSide)
            throw new ArgumentException($"the model's sample_size {model.Network.SampleSize} (config.json of '{model.Path}') makes {model.Network.SampleSize * (long)scale}-pixel images, above {MaxSide}; give --height and --width from 1 to {MaxSide}.");
        if (height < 1 || width < 1 || height > MaxSide || width > MaxSide)
            throw new ArgumentException($"image size {request.Height}x{request.Width} must be between 1 and {MaxSide} (0 = the model's {model.Network.SampleSize * scale}).");
        if (height % scale != 0 || width % scale != 0)
            throw new ArgumentException($"image size {height}x{width} (--height/--width) must be a multiple of {scale}, the VAE's factor of '{model.Path}'.");
        height /= scale;
        width /= scale;
        // The network's own multiple (UNet downsampling, patch size), checked here rather than at the first step.
        int multiple = model.Network.SizeMultiple;
        if (height % multiple != 0 || width % multiple != 0)
        {
            string which = request.Height == 0 && request.Width == 0 && init is null ? $"the model's sample_size {model.Network.SampleSize} (config.json)" : "--height/--width";
            throw new ArgumentException($"image size {height * scale}x{width * scale} ({which}) must be a multiple of {multiple * scale} for {model.Network.Config.ClassName} '{model.Path}' ({(scale > 1 ? $"VAE factor {scale} times " : "")}{multiple}, its {(model.Network is Engine.Models.Networks.UNet2DModel or Engine.Models.Networks.UNet2DConditionModel ? "downsampling" : "patch size")}).");
        }
        CheckPrompts(model, request);
        ActivationPrecision.Resolve(Device, request.Precision);
        if (request.Steps < 1 || request.Steps > MaxSteps) throw new ArgumentException($"steps {request.Steps} must be between 1 and {MaxSteps}.");
        if (!float.IsFinite((float)request.GuidanceScale) || request.GuidanceScale < 0) throw new ArgumentException($"guidance scale {request.GuidanceScale} must be a finite number >= 0.");
        if (request.BatchSize < 0) throw new ArgumentException($"batch size {request.BatchSize} must be >= 0 (0 = automatic).");
        int imageLength = model.Network.InChannels * height * width;
        if (request.InitialNoise is { } noise && noise.Length != (long)request.Count * imageLength)
            throw new ArgumentException($"initial noise has {noise.Length} values; {request.Count} images of [{model.Network.InChannels}, {height}, {width}] need {(long)request.Count * imageLength}.");
        if (request.StepNoise is { } steps && steps.Length % ((long)request.Count * imageLength) != 0)
            throw new ArgumentException($"step noise has {steps.Length} values; it must be [K, {request.Count}, {model.Network.InChannels}, {height}, {width}] (K draws of all images).");
        if (init is not null) ImageToImage.Check(model, request, init, (long)imageLength);
        ResolveLabels(model, request, request.Count);
        ResolveOptions(model, request);
        if (!model.IsOneStepStudent)
        {
            var config = ResolveScheduler(model, request);
            if (request.Eta is not null && config.Eta is null)
                Warning?.Invoke($"eta {request.Eta} is ignored: {SchedulerLabel(model, request)} takes no eta (as in diffusers' pipelines).");
            // Built once here so eta, custom timesteps and the recorded draws are checked before any work.
            using var scheduler = CreateScheduler(model, request);
            RecordedDraws(request, imageLength)?.Require(scheduler.NoiseDraws, "step_noise", $"{scheduler.Config.ClassName} ({scheduler.CallCount} model calls)");
        }
        ControlNetRun.Create(model, request, height * scale, width * scale, WeightStorage);
        MemoryBudget.Check(Device, model, request, request.Count, model.Network.InChannels, height, width);
        return (request.Count, model.Network.InChannels, height, width);
    }

    /// <summary>
    /// Runs <paramref name="request"/>. <paramref name="progress"/> is called after every step and
    /// returns false to cancel; cancellation (either way) throws <see cref="OperationCanceledException"/>
    /// between steps.
    /// </summary>
    public GenerationResult Generate(LoadedDenoiser model, GenerationRequest request,
        Func<GenerationProgress, bool>? progress = null, CancellationToken cancellation = default) =>
        Generate(model, request, null, progress, cancellation);

    /// <summary>
    /// Runs <paramref name="request"/> on <paramref name="model"/>; with a <paramref name="teacher"/>
    /// (or when the model is a one-step student) the model is sampled as a distilled student with
    /// Distillation++ refinement by the teacher (options <c>distill_lambda</c>, <c>distill_guide_steps</c>,
    /// <c>distill_renoise</c>, <c>teacher_cfg</c>); a multi-step student uses <see cref="GenerationRequest.Steps"/>
    /// trailing timesteps.
    /// </summary>
    /// <remarks>
    /// Each batch is handed to <paramref name="batchFinished"/> as soon as it is sampled (and decoded), so a caller
    /// can keep finished images when a later batch is cancelled or fails. Samples are checked for NaN and
    /// infinity on the device after every step; a batch with non-finite images still hands out its finite ones,
    /// then the request fails with <see cref="NonFiniteException"/> naming the images and the step.
    /// </remarks>
    public GenerationResult Generate(LoadedDenoiser model, GenerationRequest request, LoadedDenoiser? teacher,
        Func<GenerationProgress, bool>? progress = null, CancellationToken cancellation = default, BatchFinished? batchFinished = null)
    {
        var previous = Device.Compute;
        try { Device.Compute = Device.Resolve(request.Compute); }
        catch (NotSupportedException e) { throw new ArgumentException($"compute {request.Compute.ToString().ToLowerInvariant()}: {e.Message}", nameof(request), e); }
        try { return GenerateCore(model, request, teacher, progress, cancellation, batchFinished); }
        finally { Device.Compute = previous; }
    }

    private GenerationResult GenerateCore(LoadedDenoiser model, GenerationRequest request, LoadedDenoiser? teacher,
        Func<GenerationProgress, bool>? progress, CancellationToken cancellation, BatchFinished? batchFinished)
    {
        var (count, channels, height, width) = OutputShape(model, request);
        bool sharedTeacher = request.StudentLoras.Count > 0;
        bool distilled = teacher is not null || model.IsOneStepStudent || sharedTeacher;
        DistilledRun.Check(model, teacher, request, channels, distilled);
        int imageLength = channels * height * width;
        var labels = ResolveLabels(model, request, count);
        var options = ResolveOptions(model, request);
        var activations = ActivationPrecision.Resolve(Device, request.Precision);
        ActivationPrecision.Apply(model, activations);
        if (teacher is not null) ActivationPrecision.Apply(teacher, activations);
        string schedulerClass = distilled ? "Distillation++" : SchedulerLabel(model, request);

        // Before the prompts are encoded: adapters change the text encoders too.
        var loras = model.Adapters.Apply(request.Loras);
        model.Adapters.ApplyStudent(request.StudentLoras);
        int batch = request.EffectiveBatchSize;
        var samples = new float[(long)count * imageLength];
        var pipeline = model.Pipeline;
        float[]? image = pipeline is null ? null : new float[(long)count * 3 * imageLength / channels * pipeline.LatentScale * pipeline.LatentScale];
        // Prompts are encoded once per request; each batch reads its rows of the embeddings.
        var clock = new PhaseClock();
        Device.Transfers.ResetPeaks();
        _allocationsReported = Device.Transfers.Allocations;
        // A teacher encodes the prompts with its own text encoders (the shared ones when the student is the model plus LoRAs).
        using var teacherText = !distilled || pipeline?.Prompts is null ? null
            : PromptEmbeddings.Encode((teacher ?? model).Pipeline!, request, count, height * pipeline.LatentScale, width * pipeline.LatentScale, options.TeacherScale > 1, Warning);
        model.Adapters.StudentSelected = sharedTeacher;
        PromptEmbeddings? text;
        try { text = pipeline?.Prompts is null ? null : PromptEmbeddings.Encode(pipeline, request, count, height * pipeline.LatentScale, width * pipeline.LatentScale, options.Guidance.Scale != 1, Warning); }
        finally { model.Adapters.StudentSelected = false; }
        using var studentText = text;
        if (text is not null) Report("text encoding", clock, 0);
        // A pipeline's phases (text encoder, denoiser, VAE) use buffers of different sizes: pooled ones of the
        // phase before would only add to the next phase's peak, so the pool is emptied between phases.
        if (pipeline is not null) ReleasePool();
        int modelCalls = 0;
        // PyTorch's generator: one stream for the whole request, each batch reading its rows (diffusers' order).
        var img2img = request.InitImage is { } initImage ? new ImageToImage(pipeline!, initImage, height * pipeline!.LatentScale, width * pipeline.LatentScale) : null;
        var torch = request.Rng == RngKind.Torch ? new TorchNoiseStream(request.Seed, count, imageLength, leadingValues: img2img?.GeneratorEncodeValues ?? 0) : null;
        var recorded = RecordedDraws(request, imageLength);
        var control = ControlNetRun.Create(model, request, height * model.PixelScale, width * model.PixelScale, WeightStorage);
        for (int start = 0; start < count; start += batch)
        {
            cancellation.ThrowIfCancellationRequested();
            int n = Math.Min(batch, count - start);
            clock.Restart();
            using var sample = Device.Allocate(n, channels, height, width);
            using var conditioning = text is null
                ? Conditioning.ClassLabels(Device, labels.AsSpan(start, n), model.NullClass)
                : text.Slice(start, n);
            using var network = new ConditionalNetwork(model.Network, model.TrainingSchedule.PredictionType);
            INoiseSource noiseSource = recorded is not null ? recorded.ForRows(start)
                : torch is null ? new PhiloxNoise(request.Seed, start) : new TorchNoise(torch, start, request.InitialNoise is null);
            int total = 0, first = 0;
            using var watch = new NonFiniteWatch(Device, sample);
            Action<int> onStep = i =>
            {
                // A batch gone wholly NaN/Inf is not worth its remaining steps.
                if (watch.AfterStep(i - first)) throw NonFinite(model, watch.FirstSteps(total), start, total);
                if (progress is not null && !progress(new GenerationProgress(i - first + 1, total, start, count)))
                    throw new OperationCanceledException("Generation was cancelled by the progress callback.");
                cancellation.ThrowIfCancellationRequested();
            };
            if (distilled)
            {
                LoadInitialNoise(request, sample, start, imageLength, 1.0, noiseSource);
                watch.Start();
                using var teacherConditioning = teacherText?.Slice(start, n);
                modelCalls += DistilledRun.Run(model, teacher, request, ForBatch(options, start), conditioning, teacherConditioning ?? conditioning, sample, noiseSource, out total, onStep);
            }
            else
            {
                using var scheduler = CreateScheduler(model, request);
                scheduler.Noise = noiseSource;
                if (img2img is not null)
                {
                    // x_T is the noise add_noise mixes in at the strength's first call (no init_noise_sigma).
                    using var noise = Device.Allocate(sample.ShapeArray());
                    LoadInitialNoise(request, noise, start, imageLength, 1.0, noiseSource);
                    img2img.Start(scheduler, sample, noise, start, request.Seed, torch?.Leading, request.VaeTiling);
                }
                else LoadInitialNoise(request, sample, start, imageLength, scheduler.InitNoiseSigma, noiseSource);
                first = scheduler.StartCall;
                total = scheduler.RemainingCalls;
                using var controlBatch = control?.ForRows(Device, start, n, total);
                network.Control = controlBatch;
                watch.Start();
                using var stack = ForBatch(options, start).Build(network, conditioning, scheduler, Device);
                if (options.PredictorCorrector is { } pc)
                    PredictorCorrectorGuidance.Run(scheduler, stack.Guided, sample, pc, noiseSource, onStep);
                else
                    Sampler.Run(scheduler, stack, sample, onStep);
                modelCalls += stack.Guided.Forwards;
            }
            int[] firstSteps = watch.FirstSteps(total);
            Device.Download(sample, samples.AsSpan(start * imageLength, n * imageLength));
            Report("denoising", clock, total);
            var decodedSpan = Span<float>.Empty;
            if (pipeline is not null)
            {
                ReleasePool();
                var decoded = pipeline.Decode(sample, request.VaeTiling);
                decodedSpan = image.AsSpan(start * decoded.Length / n, decoded.Length);
                decoded.CopyTo(decodedSpan);
                Report("VAE decode", clock, 0);
                // The decoded pixels are on the host already: a VAE that overflows counts as the last step.
                int pixels = decoded.Length / n;
                for (int k = 0; k < n; k++)
                    if (firstSteps[k] < 0 && !AllFinite(decodedSpan.Slice(k * pixels, pixels))) firstSteps[k] = total;
                ReleasePool();
            }
            var finite = firstSteps.Select(f => f < 0).ToArray();
            batchFinished?.Invoke(new GeneratedBatch(start, n, samples.AsSpan(start * imageLength, n * imageLength), decodedSpan, finite, schedulerClass,
                height * model.PixelScale, width * model.PixelScale) { Loras = loras });
            if (Array.IndexOf(finite, false) >= 0) throw NonFinite(model, firstSteps, start, total);
        }
        return new GenerationResult(samples, count, channels, height, width, modelCalls, schedulerClass, image, model.PixelScale) { Loras = loras };
    }

    /// <summary>The options of the batch starting at image <paramref name="start"/>: CADS keys its noise by the global image index.</summary>
    private static SamplingOptions ForBatch(SamplingOptions options, int start) => options.Guidance.Cads is { } cads
        ? options with { Guidance = options.Guidance with { Cads = cads with { FirstSampleIndex = start } } }
        : options;

    private static bool AllFinite(ReadOnlySpan<float> values)
    {
        foreach (float v in values)
            if (!float.IsFinite(v)) return false;
        return true;
    }

    private static NonFiniteException NonFinite(LoadedDenoiser model, int[] firstSteps, int start, int total) =>
        new(model.Path, firstSteps.Select((step, k) => (Image: start + k, Step: step)).Where(f => f.Step >= 0).ToList(), total);

    /// <summary>
    /// Empties the device pool between a pipeline's phases (see <see cref="Device.TrimPool"/>; the CPU device's
    /// native buffers go back to the system at once).
    /// </summary>
    private void ReleasePool() => Device.TrimPool();

    // Fresh device buffers counted up to the last phase reported.
    private long _allocationsReported;

    /// <summary>Reports the phase that ran since <paramref name="clock"/> last restarted (after the device's queued work), then restarts it.</summary>
    private void Report(string phase, PhaseClock clock, int steps)
    {
        if (Timing is null) return;
        Device.Synchronize();
        var stats = Device.Transfers;
        Timing(new GenerationTiming(phase, clock.Elapsed, steps, stats.PeakLiveBytes, stats.PeakHeldBytes) { FreshBuffers = stats.Allocations - _allocationsReported, Cpu = clock.Cpu });
        _allocationsReported = stats.Allocations;
        stats.ResetPeaks();
        clock.Restart();
    }

    private void LoadInitialNoise(GenerationRequest request, Tensor sample, int start, int imageLength, double initSigma, INoiseSource noise)
    {
        int n = sample.Dim(0);
        if (request.InitialNoise is { } x)
            Device.CopyFromHost(System.Runtime.InteropServices.MemoryMarshal.AsBytes(x.AsSpan(start * imageLength, n * imageLength)), sample);
        else if (noise is TorchNoise torch)
            torch.FillInitial(sample);
        else
            Device.RandomNormal(sample, request.Seed, start, 0);
        if (initSigma != 1) Device.Affine(sample, sample, (float)initSigma, 0f);
    }

    /// <summary>Nothing to release: the device belongs to the caller and models are disposed by theirs.</summary>
    public void Dispose() { }
}
