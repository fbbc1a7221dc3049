using System.Text.Json;
using Engine.Generation;
using Engine.Sampling.Rng;

namespace Engine.Jobs;

/// <summary>
/// Reads job files in JSON-lines form: one JSON object per line; blank lines and lines starting with
/// <c>#</c> are skipped. A bad line becomes a <see cref="JobError"/> with its line number and the
/// other lines are still read.
/// </summary>
/// <remarks>
/// Fields: <c>model</c> (required string), <c>sampler</c>, <c>scheduler_config</c>, <c>device</c>,
/// <c>out</c> (strings), <c>steps</c>, <c>batch</c>, <c>count</c> (positive integers), <c>cfg</c>
/// (number >= 0), <c>class</c> (integer >= 0) or <c>classes</c> (array of them, or a range string
/// like <c>"0-9"</c>), <c>seed</c> (integer, or a range string) or <c>seeds</c> (range string such as
/// <c>"0-63"</c>, <c>"0-3,10"</c>, or an array of integers and range strings), and <c>options</c>
/// (an object passed through to plug-ins and guidance), <c>rng</c> (<c>philox</c> or <c>torch</c>, the generator
/// the seeds drive), <c>lora</c> (LoRA adapters: a <c>"FILE[:SCALE]"</c> string, or an array of such strings and
/// <c>{"file": ..., "scale": ...}</c> objects); for a pipeline folder <c>prompt</c> and <c>negative_prompt</c> (strings, every image of
/// the line), <c>height</c>, <c>width</c> (positive integers, pixels), <c>clip_skip</c> (integer >= 0) and SDXL's
/// micro-conditioning <c>original_size</c> and <c>target_size</c> ([height, width], positive) and <c>crop_top_left</c>
/// ([top, left], >= 0), and for the unconditional branch <c>negative_original_size</c>, <c>negative_target_size</c> (both or
/// neither) and <c>negative_crop_top_left</c>, as in the sidecar; <c>eta</c> (number >= 0, diffusers' step eta: DDIM's eta, TCD's gamma) and
/// <c>timesteps</c> (custom timesteps, an array of integers; <c>steps</c>, if given, must be their count);
/// img2img: <c>init_image</c> (a PNG or safetensors file, relative to the job file), <c>strength</c> (number in
/// (0, 1], with init_image) and <c>vae_tiling</c> (<c>auto</c>, <c>on</c> or <c>off</c>); <c>precision</c> (<c>f16</c>,
/// <c>bf16</c> or <c>f32</c>: the networks' activations, see <see cref="Generation.ActivationPrecision"/>); ControlNet:
/// <c>controlnet</c> (see <see cref="JobControlNet"/>) and <c>guess_mode</c> (true or false).
/// With a single <c>seed</c>, <c>count</c>
/// images take the seeds seed, seed + 1, ...; with a seed list, <c>count</c> (if given) must equal
/// its length. Without seeds: seed 0 and <c>count</c> (default 1) images.
/// </remarks>
public static class JobFile
{
    // The documented order of the names; a request field added to RequestFields alone is appended.
    private static readonly string[] Listed =
        ["model", "sampler", "scheduler_config", "steps", "cfg", "class", "classes", "seed", "seeds", "count", "batch", "device", "out", "options", "rng",
         "prompt", "negative_prompt", "height", "width", "clip_skip", "init_image", "strength", "vae_tiling", "config", "vae", "prediction_type", "lora",
         "original_size", "crop_top_left", "target_size", "negative_original_size", "negative_crop_top_left", "negative_target_size", "eta", "timesteps", "precision", "controlnet", "guess_mode"];

    /// <summary>The field names a job line may use.</summary>
    public static IReadOnlyList<string> Fields { get; } = [.. Listed, .. RequestFields.All.Select(f => f.Name).Except(Listed)];

    /// <summary>Reads the job file at <paramref name="path"/>.</summary>
    public static JobFileResult Read(string path)
    {
        try
        {
            using var reader = new StreamReader(path);
            return Read(reader, path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new IOException($"{path}: cannot read job file: {e.Message}", e);
        }
    }

    /// <summary>Reads jobs from <paramref name="reader"/>; <paramref name="source"/> names it in errors.</summary>
    public static JobFileResult Read(TextReader reader, string source)
    {
        var jobs = new List<GenerationJob>();
        var errors = new List<JobError>();
        int lineNumber = 0;
        for (string? line = reader.ReadLine(); line is not null; line = reader.ReadLine())
        {
            lineNumber++;
            string trimmed = line.Trim();
            if (trimmed.Length == 0 || trimmed.StartsWith('#')) continue;
            try
            {
                jobs.Add(ParseLine(trimmed, lineNumber));
            }
            catch (JobLineException e)
            {
                errors.Add(new JobError(source, lineNumber, e.Message));
            }
        }
        return new JobFileResult(jobs, errors);
    }

    /// <summary>Parses one job line; throws <see cref="FormatException"/> with the reason.</summary>
    public static GenerationJob Parse(string line, int lineNumber = 1)
    {
        try { return ParseLine(line, lineNumber); }
        catch (JobLineException e) { throw new FormatException($"line {lineNumber}: {e.Message}", e); }
    }

    private sealed class JobLineException(string message) : Exception(message);

    private static GenerationJob ParseLine(string line, int lineNumber)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(line); }
        catch (JsonException e) { throw new JobLineException($"invalid JSON: {e.Message}"); }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw new JobLineException($"a job must be a JSON object; got {root.ValueKind}");
            var seen = new HashSet<string>(StringComparer.Ordinal);
            string? model = null, sampler = null, schedulerConfig = null, device = null, output = null, prompt = null, negative = null;
            string? initImage = null, vaeTiling = null;
            Engine.Core.DType? precision = null;
            double? strength = null;
            string? config = null, vae = null, predictionType = null;
            int? steps = null, batch = null, count = null, height = null, width = null;
            double? cfg = null;
            List<int>? classes = null;
            var shared = new GenerationRequest();
            List<ulong>? seeds = null;
            bool singleSeed = false;
            RngKind? rng = null;
            List<Engine.Models.Adapters.LoraSpec> loras = [];
            List<JobControlNet> controlNets = [];
            bool guessMode = false;
            Dictionary<string, JsonElement> options = new(StringComparer.Ordinal);
            foreach (var p in root.EnumerateObject())
            {
                if (!seen.Add(p.Name)) throw new JobLineException($"field '{p.Name}' appears twice");
                var v = p.Value;
                switch (p.Name)
                {
                    case "model": model = String(p); break;
                    case "sampler": sampler = String(p); break;
                    case "scheduler_config": schedulerConfig = String(p); break;
                    case "device": device = String(p); break;
                    case "config": config = String(p); break;
                    case "vae": vae = String(p); break;
                    case "prediction_type": predictionType = String(p); break;
                    case "out": output = String(p); break;
                    case "steps": steps = Positive(p); break;
                    case "batch": batch = Positive(p); break;
                    case "count": count = Positive(p); break;
                    case "height": height = Positive(p); break;
                    case "width": width = Positive(p); break;
                    case "prompt": prompt = Text(p); break;
                    case "negative_prompt": negative = Text(p); break;
                    case "init_image": initImage = String(p); break;
                    case "strength":
                        if (v.ValueKind != JsonValueKind.Number || !v.TryGetDouble(out double st) || !(st > 0 && st <= 1))
                            throw new JobLineException($"field 'strength' must be a number in (0, 1]; got {v.GetRawText()}");
                        strength = st;
                        break;
                    case "vae_tiling":
                        vaeTiling = String(p).Trim().ToLowerInvariant();
                        if (vaeTiling is not ("auto" or "on" or "off")) throw new JobLineException($"field 'vae_tiling' must be auto, on or off; got {v.GetRawText()}");
                        break;
                    case "precision":
                        precision = Engine.Core.DTypeExtensions.TryParseStorage(String(p), out var dtype) ? dtype
                            : throw new JobLineException($"field 'precision' must be one of {Engine.Core.DTypeExtensions.StorageNames}; got {v.GetRawText()}");
                        break;
                    case "cfg":
                        if (v.ValueKind != JsonValueKind.Number || !v.TryGetDouble(out double g) || !double.IsFinite(g) || g < 0)
                            throw new JobLineException($"field 'cfg' must be a number >= 0; got {v.GetRawText()}");
                        cfg = g;
                        break;
                    case "class":
                        if (seen.Contains("classes")) throw new JobLineException("give either 'class' or 'classes', not both");
                        classes = [Label(p, v)];
                        break;
                    case "classes":
                        if (seen.Contains("class")) throw new JobLineException("give either 'class' or 'classes', not both");
                        classes = Labels(p);
                        break;
                    case "seed":
                        if (seen.Contains("seeds")) throw new JobLineException("give either 'seed' or 'seeds', not both");
                        seeds = Seeds(p);
                        singleSeed = v.ValueKind == JsonValueKind.Number;
                        break;
                    case "seeds":
                        if (seen.Contains("seed")) throw new JobLineException("give either 'seed' or 'seeds', not both");
                        seeds = Seeds(p);
                        break;
                    case "rng":
                        rng = RngKinds.TryParse(String(p)) ?? throw new JobLineException($"field 'rng' must be one of {RngKinds.Names}; got {v.GetRawText()}");
                        break;
                    case "lora": loras = Loras(p); break;
                    case "controlnet": controlNets = JobControlNet.Parse(v, out var problem) ?? throw new JobLineException(problem!); break;
                    case "guess_mode":
                        guessMode = v.ValueKind is JsonValueKind.True or JsonValueKind.False ? v.GetBoolean() : throw new JobLineException($"field 'guess_mode' must be true or false; got {v.GetRawText()}");
                        break;
                    case "options":
                        if (v.ValueKind != JsonValueKind.Object) throw new JobLineException($"field 'options' must be an object; got {v.ValueKind}");
                        foreach (var o in v.EnumerateObject()) options[o.Name] = o.Value.Clone();
                        break;
                    default:
                        var field = RequestFields.Find(p.Name) ?? throw new JobLineException($"unknown field '{p.Name}' (known: {string.Join(", ", Fields)})");
                        try { shared = field.Read(shared, v); }
                        catch (FormatException e) { throw new JobLineException(e.Message); }
                        break;
                }
            }
            if (model is null) throw new JobLineException("missing required field 'model'");
            if (strength is not null && initImage is null) throw new JobLineException("field 'strength' needs 'init_image'");
            if (guessMode && controlNets.Count == 0) throw new JobLineException("field 'guess_mode' needs 'controlnet'");
            if (shared.Timesteps is { } timesteps && steps is { } stepCount && stepCount != timesteps.Length)
                throw new JobLineException($"field 'steps' is {stepCount} but 'timesteps' lists {timesteps.Length}");

            if (seeds is null)
            {
                seeds = [];
                for (int i = 0; i < (count ?? 1); i++) seeds.Add((ulong)i);
            }
            else if (singleSeed && count is { } n && n > 1)
            {
                ulong first = seeds[0];
                if (ulong.MaxValue - first < (ulong)(n - 1)) throw new JobLineException($"field 'count' {n} runs seed {first} past the largest seed");
                seeds = [];
                for (int i = 0; i < n; i++) seeds.Add(first + (ulong)i);
            }
            else if (count is { } c && c != seeds.Count)
                throw new JobLineException($"field 'count' is {c} but the seed list has {seeds.Count} seeds");
            if (seeds.Count > SeedRange.MaxSeeds) throw new JobLineException($"more than {SeedRange.MaxSeeds} images in one job");
            var distinct = new HashSet<ulong>();
            foreach (ulong s in seeds)
                if (!distinct.Add(s)) throw new JobLineException($"seed {s} appears twice (each image needs its own seed)");

            return new GenerationJob(lineNumber, model, seeds, classes)
            {
                Sampler = sampler, SchedulerConfig = schedulerConfig, Cfg = cfg, Batch = batch,
                Device = device, Out = output, Options = options, Rng = rng,
                Prompt = prompt, NegativePrompt = negative, Height = height, Width = width, Loras = loras,
                InitImage = initImage, Strength = strength, ControlNets = controlNets, GuessMode = guessMode,
                VaeTiling = vaeTiling switch { "on" => Generation.Pipelines.VaeTiling.On, "off" => Generation.Pipelines.VaeTiling.Off, "auto" => Generation.Pipelines.VaeTiling.Auto, _ => null },
                Config = config, Vae = vae, PredictionType = predictionType,
                SharedFields = shared, Steps = shared.Timesteps?.Length ?? steps,
                Precision = precision,
            };
        }
    }

    private static List<Engine.Models.Adapters.LoraSpec> Loras(JsonProperty p)
    {
        var items = p.Value.ValueKind == JsonValueKind.Array ? p.Value.EnumerateArray().ToList() : [p.Value];
        var result = new List<Engine.Models.Adapters.LoraSpec>();
        foreach (var item in items)
        {
            if (item.ValueKind == JsonValueKind.String && item.GetString()!.Trim().Length > 0)
            {
                try { result.Add(Engine.Models.Adapters.LoraSpec.Parse(item.GetString()!)); }
                catch (FormatException e) { throw new JobLineException($"field 'lora': {e.Message}"); }
            }
            else if (item.ValueKind == JsonValueKind.Object && item.TryGetProperty("file", out var file) && file.ValueKind == JsonValueKind.String && file.GetString()!.Trim().Length > 0)
            {
                double scale = 1;
                foreach (var field in item.EnumerateObject())
                {
                    if (field.Name == "scale")
                    {
                        if (field.Value.ValueKind != JsonValueKind.Number || !double.IsFinite(scale = field.Value.GetDouble()))
                            throw new JobLineException($"field 'lora': 'scale' must be a number; got {field.Value.GetRawText()}");
                    }
                    else if (field.Name != "file") throw new JobLineException($"field 'lora': unknown key '{field.Name}' (known: file, scale)");
                }
                result.Add(new Engine.Models.Adapters.LoraSpec(file.GetString()!, scale));
            }
            else throw new JobLineException($"field 'lora' must hold \"FILE[:SCALE]\" strings or {{\"file\": ..., \"scale\": ...}} objects; got {item.GetRawText()}");
        }
        return result;
    }

    private static string String(JsonProperty p)
    {
        if (p.Value.ValueKind != JsonValueKind.String) throw new JobLineException($"field '{p.Name}' must be a string; got {p.Value.ValueKind}");
        string s = p.Value.GetString()!;
        if (s.Trim().Length == 0) throw new JobLineException($"field '{p.Name}' is empty");
        return s;
    }

    /// <summary>A string field that may be empty (a prompt).</summary>
    private static string Text(JsonProperty p) =>
        p.Value.ValueKind == JsonValueKind.String ? p.Value.GetString()! : throw new JobLineException($"field '{p.Name}' must be a string; got {p.Value.ValueKind}");

    private static int Positive(JsonProperty p)
    {
        if (p.Value.ValueKind != JsonValueKind.Number || !p.Value.TryGetInt32(out int n) || n < 1)
            throw new JobLineException($"field '{p.Name}' must be a positive integer; got {p.Value.GetRawText()}");
        return n;
    }

    private static int Label(JsonProperty p, JsonElement v)
    {
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt32(out int c) || c < 0)
            throw new JobLineException($"field '{p.Name}' must hold integers >= 0; got {v.GetRawText()}");
        return c;
    }

    private static List<int> Labels(JsonProperty p)
    {
        var v = p.Value;
        var result = new List<int>();
        if (v.ValueKind == JsonValueKind.Array)
        {
            foreach (var e in v.EnumerateArray()) result.Add(Label(p, e));
        }
        else if (v.ValueKind == JsonValueKind.String)
        {
            foreach (ulong s in ParseSeeds(p, v.GetString()!))
            {
                if (s > int.MaxValue) throw new JobLineException($"field '{p.Name}': class {s} is too large");
                result.Add((int)s);
            }
        }
        else throw new JobLineException($"field '{p.Name}' must be an array of integers or a range string like \"0-9\"; got {v.ValueKind}");
        if (result.Count == 0) throw new JobLineException($"field '{p.Name}' is empty");
        return result;
    }

    private static List<ulong> Seeds(JsonProperty p)
    {
        var v = p.Value;
        var result = new List<ulong>();
        switch (v.ValueKind)
        {
            case JsonValueKind.Number:
                if (!v.TryGetUInt64(out ulong s)) throw new JobLineException($"field '{p.Name}' must be a non-negative integer; got {v.GetRawText()}");
                result.Add(s);
                break;
            case JsonValueKind.String:
                result.AddRange(ParseSeeds(p, v.GetString()!));
                break;
            case JsonValueKind.Array:
                foreach (var e in v.EnumerateArray())
                {
                    if (e.ValueKind == JsonValueKind.Number && e.TryGetUInt64(out ulong one)) result.Add(one);
                    else if (e.ValueKind == JsonValueKind.String) result.AddRange(ParseSeeds(p, e.GetString()!));
                    else throw new JobLineException($"field '{p.Name}' must hold non-negative integers or range strings; got {e.GetRawText()}");
                    if (result.Count > SeedRange.MaxSeeds) throw new JobLineException($"field '{p.Name}' has more than {SeedRange.MaxSeeds} seeds");
                }
                if (result.Count == 0) throw new JobLineException($"field '{p.Name}' is empty");
                break;
            default:
                throw new JobLineException($"field '{p.Name}' must be an integer, a range string like \"0-63\" or an array; got {v.ValueKind}");
        }
        return result;
    }

    private static ulong[] ParseSeeds(JsonProperty p, string text)
    {
        try { return SeedRange.Parse(text); }
        catch (FormatException e) { throw new JobLineException($"field '{p.Name}': {e.Message}"); }
    }
}
