using Engine.Core;
using Engine.Models.Loading;
using Engine.Models.Networks;
using Engine.Sampling;

namespace Engine.Generation;

/// <summary>
/// Generates images on one device: loads model folders, resolves a request's sampler onto the
/// model's training schedule, draws batch-invariant noise, runs the sampler with guidance, and hands
/// back the final samples. One generation at a time per instance.
/// </summary>
public sealed class Generator : IDisposable
{
    /// <summary>Largest batch chosen automatically when the request leaves <see cref="GenerationRequest.BatchSize"/> at 0.</summary>
    public const int AutomaticBatchSize = 16;

    private const int MaxCount = 1_000_000, MaxSide = 4096, MaxSteps = 1000;

    /// <summary>Creates a generator on <paramref name="device"/> (the caller keeps ownership of the device).</summary>
    public Generator(Device device) => Device = device ?? throw new ArgumentNullException(nameof(device));

    /// <summary>The device every model and sample lives on.</summary>
    public Device Device { get; }

    /// <summary>Loads a diffusers model folder (config.json + weights, optional scheduler_config.json).</summary>
    public LoadedModel LoadModel(string folder)
    {
        if (string.IsNullOrWhiteSpace(folder)) throw new ArgumentException("Model path is empty.", nameof(folder));
        string full = System.IO.Path.GetFullPath(folder);
        if (!Directory.Exists(full)) throw new DirectoryNotFoundException($"Model folder '{full}' does not exist.");
        var network = ModelLoader.LoadDenoiser(Device, full);
        try
        {
            if (network.NeedsEncoderHiddenStates || network.NeedsPooledProjections)
                throw new ArgumentException($"{network.Config.ClassName} in '{full}' needs text conditioning (encoder_hidden_states), which generation does not provide; use `engine forward` for such models.");
            string schedulerPath = System.IO.Path.Combine(full, "scheduler_config.json");
            bool fromFile = File.Exists(schedulerPath);
            var training = fromFile ? SchedulerConfig.Load(schedulerPath) : SchedulerConfig.ParseJson("{}", "DDPMScheduler");
            return new LoadedModel(full, network, training, fromFile);
        }
        catch
        {
            network.Dispose();
            throw;
        }
    }

    /// <summary>The shape of the samples <paramref name="request"/> produces, after validating it.</summary>
    public (int Count, int Channels, int Height, int Width) OutputShape(LoadedModel model, GenerationRequest request)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(request);
        if (request.Count < 1 || request.Count > MaxCount) throw new ArgumentException($"count {request.Count} must be between 1 and {MaxCount}.");
        int height = request.Height == 0 ? model.Network.SampleSize : request.Height;
        int width = request.Width == 0 ? model.Network.SampleSize : request.Width;
        if (height < 1 || width < 1 || height > MaxSide || width > MaxSide)
            throw new ArgumentException($"image size {request.Height}x{request.Width} must be between 1 and {MaxSide} (0 = the model's {model.Network.SampleSize}).");
        return (request.Count, model.Network.InChannels, height, width);
    }

    /// <summary>
    /// Runs <paramref name="request"/>. <paramref name="progress"/> is called after every step and
    /// returns false to cancel; cancellation (either way) throws <see cref="OperationCanceledException"/>
    /// between steps.
    /// </summary>
    public GenerationResult Generate(LoadedModel model, GenerationRequest request,
        Func<GenerationProgress, bool>? progress = null, CancellationToken cancellation = default)
    {
        var (count, channels, height, width) = OutputShape(model, request);
        if (request.Steps < 1 || request.Steps > MaxSteps) throw new ArgumentException($"steps {request.Steps} must be between 1 and {MaxSteps}.");
        if (!float.IsFinite(request.GuidanceScale) || request.GuidanceScale < 0) throw new ArgumentException($"guidance scale {request.GuidanceScale} must be a finite number >= 0.");
        if (request.BatchSize < 0) throw new ArgumentException($"batch size {request.BatchSize} must be >= 0 (0 = automatic).");
        int imageLength = channels * height * width;
        if (request.InitialNoise is { } noise && noise.Length != (long)count * imageLength)
            throw new ArgumentException($"initial noise has {noise.Length} values; {count} images of [{channels}, {height}, {width}] need {(long)count * imageLength}.");
        var labels = ResolveLabels(model, request, count);
        // Resolve once up front so a bad sampler or config fails before any work.
        var config = ResolveScheduler(model, request);

        int batch = Math.Min(count, request.BatchSize > 0 ? request.BatchSize : AutomaticBatchSize);
        var samples = new float[(long)count * imageLength];
        int modelCalls = 0;
        for (int start = 0; start < count; start += batch)
        {
            cancellation.ThrowIfCancellationRequested();
            int n = Math.Min(batch, count - start);
            int[] shape = [n, channels, height, width];
            using var scheduler = CreateScheduler(model, request);
            scheduler.Noise = new PhiloxNoise(request.Seed, start);
            using var sample = Device.Allocate(shape);
            if (request.InitialNoise is { } x0)
            {
                Device.CopyFromHost(System.Runtime.InteropServices.MemoryMarshal.AsBytes(x0.AsSpan(start * imageLength, n * imageLength)), sample);
                double sigma = scheduler.InitNoiseSigma;
                if (sigma != 1) Device.Affine(sample, sample, (float)sigma, 0f);
            }
            else
            {
                Sampler.InitialNoise(scheduler, sample, request.Seed, start);
            }
            int[]? batchLabels = labels?[start..(start + n)];
            using var denoiser = new ClassifierFreeDenoiser(model.Network, Device, shape, batchLabels, model.NullClass, request.GuidanceScale);
            int total = scheduler.CallCount;
            Sampler.Run(scheduler, denoiser, sample, i =>
            {
                if (progress is not null && !progress(new GenerationProgress(i + 1, total, start, count)))
                    throw new OperationCanceledException("Generation was cancelled by the progress callback.");
                cancellation.ThrowIfCancellationRequested();
            });
            Device.Download(sample, samples.AsSpan(start * imageLength, n * imageLength));
            modelCalls += denoiser.ModelCalls;
        }
        return new GenerationResult(samples, count, channels, height, width, modelCalls, config.ClassName);
    }

    private static int[]? ResolveLabels(LoadedModel model, GenerationRequest request, int count)
    {
        int classes = model.ClassCount;
        if (classes == 0)
        {
            if (request.ClassLabels is { Length: > 0 })
                throw new ArgumentException($"model '{model.Path}' is unconditional; class labels cannot be given.");
            return null;
        }
        var given = request.ClassLabels;
        if (given is null || given.Length == 0) return Enumerable.Range(0, count).Select(i => i % classes).ToArray();
        if (given.Length != 1 && given.Length != count)
            throw new ArgumentException($"{given.Length} class labels given for {count} images: give one label for all or one per image.");
        foreach (int label in given)
            if (label < 0 || label > model.NullClass)
                throw new ArgumentException($"class label {label} is out of range: model '{model.Path}' has classes 0-{classes - 1} (and {model.NullClass}, the null class).");
        return given.Length == 1 ? Enumerable.Repeat(given[0], count).ToArray() : (int[])given.Clone();
    }

    private static SchedulerConfig ResolveScheduler(LoadedModel model, GenerationRequest request)
    {
        if (!string.IsNullOrWhiteSpace(request.SchedulerConfigJson)) return SchedulerConfig.ParseJson(request.SchedulerConfigJson);
        return SamplerCatalog.Resolve(model.TrainingSchedule, request.Sampler ?? GenerationRequest.DefaultSampler, request.Schedule);
    }

    private static Scheduler CreateScheduler(LoadedModel model, GenerationRequest request) =>
        string.IsNullOrWhiteSpace(request.SchedulerConfigJson)
            ? SamplerCatalog.Create(model.TrainingSchedule, request.Sampler ?? GenerationRequest.DefaultSampler, request.Schedule, request.Steps)
            : SchedulerFactory.Create(SchedulerConfig.ParseJson(request.SchedulerConfigJson), request.Steps);

    /// <summary>Nothing to release: the device belongs to the caller and models are disposed by theirs.</summary>
    public void Dispose() { }
}
