using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using Engine.Core;
using Engine.Generation;
using Engine.Imaging;

namespace Engine.Cli;

/// <summary>
/// The JSON written beside every generated image: everything needed to make the same pixels again
/// with <c>engine generate --from-sidecar</c>. Image <see cref="SampleIndex"/> of a request draws its
/// noise from sample index <see cref="SampleIndex"/> of <see cref="Seed"/> (the seed rule of
/// <see cref="Engine.Generation.GenerationRequest"/>); the request's count, batch size and class cycle
/// are kept so the image is regenerated in the same batch. The field names are the sidecar's own (kept
/// for old files); <see cref="Describe"/> and <see cref="ToRequest"/> map them to and from the request.
/// </summary>
public sealed partial record ImageSidecar
{
    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        TypeInfoResolver = new DefaultJsonTypeInfoResolver { Modifiers = { WithRequestFields } },
    };

    /// <summary>
    /// The request's values of the fields the sidecar shares with the job line (<see cref="RequestFields.All"/>: eta,
    /// timesteps, clip skip, SDXL micro-conditioning), held on an otherwise default request. They are written as
    /// top-level fields, each after its <see cref="RequestField.SidecarAfter"/> field.
    /// </summary>
    [JsonIgnore]
    private GenerationRequest Shared { get; set; } = new();

    private static void WithRequestFields(JsonTypeInfo info)
    {
        if (info.Type != typeof(ImageSidecar)) return;
        foreach (var field in RequestFields.All)
        {
            var property = info.CreateJsonPropertyInfo(field.ValueType, field.Name);
            property.Get = sidecar => field.Get(((ImageSidecar)sidecar).Shared);
            property.Set = (sidecar, value) => ((ImageSidecar)sidecar).Shared = field.Set(((ImageSidecar)sidecar).Shared, value);
            int after = info.Properties.ToList().FindIndex(p => p.Name == field.SidecarAfter);
            if (after < 0) throw new InvalidOperationException($"request field '{field.Name}' follows '{field.SidecarAfter}', which the sidecar does not have.");
            info.Properties.Insert(after + 1, property);
        }
    }

    /// <summary>Engine version that made the image.</summary>
    public string EngineVersion { get; init; } = "";

    /// <summary>PNG file name (inside the output folder).</summary>
    public string File { get; init; } = "";

    /// <summary>Full path of the model folder.</summary>
    public string Model { get; init; } = "";

    /// <summary>Full path of the teacher model folder when the model was sampled as a distilled student with Distillation++, else null.</summary>
    public string? Teacher { get; init; }

    /// <summary>Single-file checkpoint <see cref="Model"/>: the pipeline folder its configs came from (<c>--config</c>), or null for the inferred ones.</summary>
    public string? Config { get; init; }

    /// <summary>Single-file checkpoint: the VAE that replaced its own (<c>--vae</c>), or null.</summary>
    public string? Vae { get; init; }

    /// <summary>Single-file checkpoint: the prediction type given with <c>--prediction-type</c>, or null.</summary>
    public string? PredictionType { get; init; }

    /// <summary>Device kind requested (null = default) and the device that ran.</summary>
    public string? Device { get; init; }

    /// <summary>Name of the device that ran, for information.</summary>
    public string? DeviceName { get; init; }

    /// <summary>Storage of the Linear/Conv2d weights (f16 or bf16) when not float32; null for float32.</summary>
    public string? Weights { get; init; }

    /// <summary>Activation precision requested (f32, f16 or bf16); null when left to the device's default.</summary>
    public string? Precision { get; init; }

    /// <summary>The <see cref="Weights"/> value for <paramref name="storage"/>: its name, or null for float32.</summary>
    public static string? WeightsName(DType storage) => storage == DType.F32 ? null : storage.StorageName();

    /// <summary>Compute precision asked for (bf16 or auto) when not float32; null for float32.</summary>
    public string? Compute { get; init; }

    /// <summary>Sampler name (null when a scheduler config was given).</summary>
    public string? Sampler { get; init; }

    /// <summary>Schedule name, or null.</summary>
    public string? Schedule { get; init; }

    /// <summary>Contents of the scheduler config file, when one was given.</summary>
    public JsonElement? SchedulerConfig { get; init; }

    /// <summary>Path of the scheduler config file, for information.</summary>
    public string? SchedulerConfigFile { get; init; }

    /// <summary>The diffusers scheduler class the sampler resolved to.</summary>
    public string? SchedulerClass { get; init; }

    /// <summary>Inference steps.</summary>
    public int Steps { get; init; }

    /// <summary>Classifier-free guidance scale.</summary>
    public double Cfg { get; init; }

    /// <summary>Class label of this image, or null for an unconditional model.</summary>
    public int? Class { get; init; }

    /// <summary>Noise seed.</summary>
    public ulong Seed { get; init; }

    /// <summary>Sample index of this image within its seed.</summary>
    public int SampleIndex { get; init; }

    /// <summary>Images in the request that made this image.</summary>
    public int RequestCount { get; init; } = 1;

    /// <summary>Batch size of that request (0 = automatic).</summary>
    public int RequestBatch { get; init; }

    /// <summary>Class labels of the request's images in turn (image i took RequestClasses[i mod length]); null for unconditional.</summary>
    public int[]? RequestClasses { get; init; }

    /// <summary>Guidance and plug-in options (<c>key=value</c>).</summary>
    public string[] Options { get; init; } = [];

    /// <summary>Image height and width in pixels.</summary>
    public int Height { get; init; }

    /// <summary>Image width in pixels.</summary>
    public int Width { get; init; }

    /// <summary>The prompts of the request (one for all images or one per image), for a pipeline; null otherwise.</summary>
    public string[]? RequestPrompts { get; init; }

    /// <summary>The negative prompts of the request, when given.</summary>
    public string[]? RequestNegativePrompts { get; init; }

    /// <summary>Safetensors file whose <c>x_T</c> was the initial noise, or null when the noise came from the seed.</summary>
    public string? InitNoise { get; init; }

    /// <summary>
    /// The generator the seed drove: <c>torch</c> (PyTorch's CPU generator, one for the whole request), or
    /// null for the engine's Philox stream (not written, so older sidecars read as Philox).
    /// </summary>
    public string? Rng { get; init; }

    /// <summary>LoRA adapters merged into the model (full path, scale, SHA-256 of the file), or null when none.</summary>
    public SidecarLora[]? Loras { get; init; }

    /// <summary>LoRA adapters that made the model a Distillation++ student of itself (full path, scale), or null when none.</summary>
    public SidecarLora[]? StudentLoras { get; init; }

    /// <summary>Size in bytes of the PNG written beside this sidecar (null in sidecars older than the field); a resumed batch checks it.</summary>
    public long? PngSize { get; init; }

    /// <summary>SHA-256 of that PNG as lowercase hex (null in older sidecars); a resumed batch checks it.</summary>
    public string? PngSha256 { get; init; }

    /// <summary>The sidecar as indented JSON.</summary>
    public string ToJson() => JsonSerializer.Serialize(this, Json);

    /// <summary>Writes the sidecar atomically.</summary>
    public void Write(string path) => AtomicFile.WriteAllBytes(path, System.Text.Encoding.UTF8.GetBytes(ToJson() + "\n"));

    /// <summary>Reads a sidecar; throws <see cref="InvalidDataException"/> naming the file when it is not one.</summary>
    public static ImageSidecar Read(string path)
    {
        if (Directory.Exists(path)) throw new InvalidDataException($"{path}: is a folder; expected an image sidecar (.json).");
        string text;
        try { text = System.IO.File.ReadAllText(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new IOException($"{path}: cannot read sidecar: {e.Message}", e);
        }
        ImageSidecar? sidecar;
        try { sidecar = JsonSerializer.Deserialize<ImageSidecar>(text, Json); }
        catch (JsonException e) { throw new InvalidDataException($"{path}: {SidecarJson.Describe(e, text)}", e); }
        if (sidecar is null || !HasField(text, "model") && !HasField(text, "file") && !HasField(text, "steps"))
            throw new InvalidDataException($"{path}: not an image sidecar (needs 'model', 'file' and 'steps').");
        if (string.IsNullOrWhiteSpace(sidecar.Model)) throw new InvalidDataException($"{path}: 'model' is missing or empty; a sidecar records the model folder or file of its image.");
        if (string.IsNullOrWhiteSpace(sidecar.File)) throw new InvalidDataException($"{path}: 'file' is missing or empty; a sidecar records its PNG's file name.");
        if (sidecar.Steps is < 1 or > SidecarJson.MaxSteps) throw new InvalidDataException($"{path}: steps {sidecar.Steps} must be from 1 to {SidecarJson.MaxSteps}.");
        // The seed decides every pixel; a sidecar without one must not silently mean seed 0.
        if (!HasField(text, "seed")) throw new InvalidDataException($"{path}: no 'seed'; a sidecar records the seed (an integer from 0 to {ulong.MaxValue}) its image was drawn from.");
        // Nor may a missing guidance scale mean 0, or a missing sampler the default one.
        if (!HasField(text, "cfg")) throw new InvalidDataException($"{path}: no 'cfg'; a sidecar records the guidance scale (a number >= 0) its image was made with.");
        if (!HasField(text, "sampler") && !HasField(text, "scheduler_config"))
            throw new InvalidDataException($"{path}: neither 'sampler' nor 'scheduler_config'; a sidecar records the sampler its image was made with.");
        if (sidecar.Shared.Eta is { } eta && !(eta >= 0 && double.IsFinite(eta))) throw new InvalidDataException($"{path}: eta {eta} must be a finite number >= 0.");
        if (sidecar.SampleIndex < 0 || sidecar.RequestCount < 1 || sidecar.SampleIndex >= sidecar.RequestCount)
            throw new InvalidDataException($"{path}: sample_index {sidecar.SampleIndex} must be in [0, request_count {sidecar.RequestCount}).");
        if (sidecar.File.IndexOfAny(['/', '\\']) >= 0 || sidecar.File is "." or "..")
            throw new InvalidDataException($"{path}: 'file' must be a plain file name; got '{sidecar.File}'.");
        return sidecar;
    }

    private static bool HasField(string json, string name)
    {
        using var doc = JsonDocument.Parse(json);
        return doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null;
    }

    /// <summary>The sidecar path of an image path: the same name with <c>.json</c>.</summary>
    public static string PathFor(string imagePath) => Path.ChangeExtension(imagePath, ".json");
}

/// <summary>One LoRA adapter as a sidecar records it: the file, its scale and the file's SHA-256 (checked when the image is made again).</summary>
/// <param name="File">Full path of the LoRA file.</param>
/// <param name="Scale">Its scale.</param>
/// <param name="Sha256">Lower-case hex SHA-256 of the file.</param>
public sealed record SidecarLora(string File, double Scale, string? Sha256);
