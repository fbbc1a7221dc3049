using System.Text.Json;
using Engine.Core;
using Engine.Generation;
using Engine.Sampling.Rng;

namespace Engine.Cli;

/// <summary>The sidecar's mapping to and from <see cref="GenerationRequest"/>: the one place its fields meet the request's.</summary>
public sealed partial record ImageSidecar
{
    /// <summary>
    /// The sidecar of one image of <paramref name="request"/>: <paramref name="image"/> says which (sample
    /// index, file, class); the request resolved to <paramref name="schedulerClass"/> and made images of
    /// <paramref name="height"/> x <paramref name="width"/> pixels on the device named <paramref name="deviceName"/>;
    /// <paramref name="requestClasses"/> is the class cycle the request's labels came from (image i took
    /// requestClasses[i mod length]; null for unconditional); <paramref name="decoded"/> is true when a pipeline's VAE decoded
    /// the images; <paramref name="loras"/> are the adapters merged for it. The PNG's size and checksum are added when it is written.
    /// </summary>
    public static ImageSidecar Describe(GenerationRequest request, IReadOnlyList<int>? requestClasses, PlannedImage image, string schedulerClass, int height, int width, string deviceName, bool decoded, IReadOnlyList<Engine.Models.Adapters.LoraSpec> loras) => new()
    {
        EngineVersion = Cli.EngineVersion.Text,
        File = image.FileName,
        Model = request.Model ?? "",
        Teacher = request.Teacher,
        Config = request.Checkpoint?.ConfigFolder,
        Vae = request.Checkpoint?.Vae,
        PredictionType = request.Checkpoint?.PredictionType,
        Device = request.Device,
        DeviceName = deviceName,
        Weights = WeightsName(request.WeightStorage),
        Precision = request.Precision?.StorageName(),
        Compute = request.Compute == ComputeMode.F32 ? null : request.Compute.ToString().ToLowerInvariant(),
        Sampler = request.SamplerName,
        Schedule = request.Schedule,
        SchedulerConfig = request.SchedulerConfigJson is { } json ? JsonDocument.Parse(Engine.Sampling.SchedulerConfig.SanitizeJson(json)).RootElement.Clone() : null,
        SchedulerConfigFile = request.SchedulerConfigPath is { } configPath ? Path.GetFullPath(configPath) : null,
        SchedulerClass = schedulerClass,
        Steps = request.Steps,
        Cfg = request.GuidanceScale,
        Class = image.Class,
        Seed = request.Seed,
        SampleIndex = image.Index,
        RequestCount = request.Count,
        RequestBatch = request.BatchSize,
        RequestClasses = requestClasses?.ToArray(),
        Options = [.. request.Options],
        Height = height,
        Width = width,
        RequestPrompts = request.Prompts is { Count: > 0 } prompts ? [.. prompts] : null,
        RequestNegativePrompts = request.NegativePrompts is { Count: > 0 } negatives ? [.. negatives] : null,
        InitNoise = request.InitialNoiseFile,
        Rng = request.Rng == RngKind.Philox ? null : request.Rng.Name(),
        InitImage = request.InitImage?.File,
        InitImageSha256 = request.InitImage?.Sha256,
        Strength = request.InitImage?.Strength,
        VaeTiling = TilingName(request.VaeTiling, decoded),
        Loras = loras.Count == 0 ? null : [.. loras.Select(l => new SidecarLora(l.Path, l.Scale, l.Sha256))],
        StudentLoras = request.StudentLoras.Count == 0 ? null : [.. request.StudentLoras.Select(l => new SidecarLora(l.Path, l.Scale, l.Sha256))],
        ControlNets = DescribeControlNets(request),
        GuessMode = request.GuessMode ? true : null,
        Shared = RequestFields.Copy(request, new GenerationRequest()),
    };

    /// <summary>
    /// The request that makes this sidecar's image again with the same pixels: the settings it records
    /// and the first images of its request up to the end of the image's batch (so even batch-dependent
    /// rounding is the same), with their classes. The initial noise and recorded step noise, if any, are left
    /// to be read from <see cref="GenerationRequest.InitialNoiseFile"/>. Throws <see cref="InvalidDataException"/>
    /// naming <paramref name="path"/> (the sidecar's file) when the sidecar contradicts itself.
    /// </summary>
    public GenerationRequest ToRequest(string path)
    {
        var request = RequestFields.Copy(Shared, new GenerationRequest
        {
            Model = Model,
            Teacher = Teacher,
            Checkpoint = Config is null && Vae is null && PredictionType is null ? null
                : new Engine.Generation.Checkpoints.CheckpointOptions { ConfigFolder = Config, Vae = Vae, PredictionType = PredictionType },
            Device = Device,
            WeightStorage = Weights is { } w ? ParseWeights(w, path) : DType.F32,
            Precision = Precision is { } p ? ParsePrecision(p, path) : null,
            Compute = Compute is { } c ? ParseCompute(c, path) : ComputeMode.F32,
            Sampler = SchedulerConfig is null ? Sampler : null,
            Schedule = SchedulerConfig is null ? Schedule : null,
            SchedulerConfigJson = SchedulerConfig?.GetRawText(),
            SchedulerConfigPath = SchedulerConfig is null ? null : SchedulerConfigFile,
            Steps = Steps,
            GuidanceScale = Cfg,
            Options = Options,
            BatchSize = RequestBatch,
            Seed = Seed,
            Count = RequestCount,
            Height = Height,
            Width = Width,
            Prompts = RequestPrompts,
            NegativePrompts = RequestNegativePrompts,
            InitialNoiseFile = InitNoise,
            Rng = Rng is null ? RngKind.Philox : RngKinds.TryParse(Rng) ?? throw new InvalidDataException($"{path}: rng '{Rng}' must be one of {RngKinds.Names}."),
            Loras = Loras is null ? [] : [.. Loras.Select(l => new Engine.Models.Adapters.LoraSpec(
                string.IsNullOrEmpty(l.File) ? throw new InvalidDataException($"{path}: a 'loras' entry has no 'file'.") : l.File,
                double.IsFinite(l.Scale) ? l.Scale : throw new InvalidDataException($"{path}: LoRA '{l.File}' has scale {l.Scale}."), l.Sha256))],
            StudentLoras = StudentLoras is null ? [] : [.. StudentLoras.Select(l => new Engine.Models.Adapters.LoraSpec(
                string.IsNullOrEmpty(l.File) ? throw new InvalidDataException($"{path}: a 'student_loras' entry has no 'file'.") : l.File,
                double.IsFinite(l.Scale) ? l.Scale : throw new InvalidDataException($"{path}: student LoRA '{l.File}' has scale {l.Scale}."), l.Sha256))],
        });
        int batch = request.EffectiveBatchSize;
        // PyTorch's generator draws for the whole request at once, so its images need the full count.
        if (request.Rng == RngKind.Philox) request = request with { Count = Math.Min(RequestCount, (SampleIndex / batch + 1) * batch) };
        // Per-image prompt lists shrink with the request to the images it regenerates.
        request = request with { Prompts = FirstOf(RequestPrompts, request.Count, path), NegativePrompts = FirstOf(RequestNegativePrompts, request.Count, path) };
        request = WithImageToImage(request, path);
        request = WithControlNets(request, path);
        // A one-image request (a seed-list image) took its own class, whatever cycle older versions recorded beside it.
        int[]? cycle = RequestCount == 1 && Class is { } alone ? [alone]
            : RequestClasses is { Length: > 0 } classes ? classes
            : Class is { } every ? [every] : null;
        request = request.WithClassCycle(cycle);
        if (request.ClassLabels is { } labels && Class is { } own && labels[SampleIndex] != own)
            throw new InvalidDataException($"{path}: class {own} does not match request_classes at sample_index {SampleIndex}.");
        return request;
    }

    private string[]? FirstOf(string[]? perImage, int count, string path)
    {
        if (perImage is null || perImage.Length <= 1) return perImage;
        if (perImage.Length != RequestCount) throw new InvalidDataException($"{path}: {perImage.Length} prompts recorded for a request of {RequestCount} images.");
        return perImage[..count];
    }

    private static DType ParsePrecision(string text, string path)
    {
        try { return OptionValues.ParsePrecision(text, "precision"); }
        catch (FormatException e) { throw new InvalidDataException($"{path}: {e.Message}", e); }
    }

    private static ComputeMode ParseCompute(string text, string path)
    {
        try { return OptionValues.ParseComputeMode(text, "compute"); }
        catch (FormatException e) { throw new InvalidDataException($"{path}: {e.Message}", e); }
    }

    private static DType ParseWeights(string text, string path)
    {
        try { return OptionValues.ParseWeightStorage(text, "weights"); }
        catch (FormatException e) { throw new InvalidDataException($"{path}: {e.Message}", e); }
    }
}
