using System.CommandLine;
using Engine.Core;
using Engine.Core.Safetensors;
using Engine.Generation;
using Engine.Gpu;
using Engine.Imaging;
using Engine.Jobs;
using Engine.Sampling.Rng;

namespace Engine.Cli.Commands;

/// <summary>
/// <c>engine generate</c>: samples images from a model folder and writes one PNG and one JSON
/// sidecar per image plus a grid; optionally reads the initial noise from, and writes the final
/// samples to, safetensors files; or regenerates one image from its sidecar.
/// </summary>
public sealed partial class GenerateCommand : EngineCommand
{
    /// <summary>Most images put in the grid.</summary>
    public const int MaxGridImages = 256;

    /// <summary>File name of the grid inside the output folder.</summary>
    public const string GridFileName = "grid.png";

    private readonly Option<string?> _model = CliOptions.Text("--model", "DIR|FILE", "model folder, single-file SD 1.x/2.x/SDXL checkpoint (.safetensors), or the name of a built-in model (fmnist-unet, fmnist-dit)");
    private readonly CheckpointCliOptions _checkpoint = new();
    private readonly SamplingOptions _sampling = new();
    private readonly ImageToImageOptions _img2img = new();
    private readonly Option<string?> _class = CliOptions.Parsed<string?>("--class", "N", "class label of every image (see above); a DiT pipeline also takes a label name (\"golden retriever\")",
        text => int.TryParse(text, out _) || text.TrimStart().StartsWith('-') ? OptionValues.ParseInt(text, "--class", 0).ToString(System.Globalization.CultureInfo.InvariantCulture) : text);
    private readonly Option<int[]?> _classes = CliOptions.Parsed<int[]?>("--classes", "A,B,...", "class labels cycled over the images (see above)",
        text => OptionValues.IntList(text, "--classes", 0));
    private readonly Option<ulong[]?> _seed = CliOptions.Parsed<ulong[]?>("--seed", "S[,S2...]",
        "seed of the request (see above; default 0); a comma list S1,S2,... is a seed list, as --seeds", ParseSeedList);
    private readonly Option<RngKind?> _rng = CliOptions.Rng();
    private readonly Option<int?> _count = CliOptions.Int("--count", "N", "number of images (see above; default 20)", 1, SeedRange.MaxSeeds);
    private readonly Option<ulong[]?> _seeds = CliOptions.Parsed<ulong[]?>("--seeds", "LIST", "seed list, one image per seed (see above)", ParseSeeds);
    private readonly Option<List<string>> _prompt = CliOptions.Repeatable("--prompt", "TEXT",
        "prompt of a pipeline folder (model_index.json), repeatable: one image per prompt, in order (or one prompt for every image of --count)", t => t);
    private readonly Option<List<string>> _negativePrompt = CliOptions.Repeatable("--negative-prompt", "TEXT",
        "negative prompt (used when --cfg is above 1), repeatable: one for every image or one per prompt", t => t);
    private readonly Option<int?> _height = CliOptions.Int("--height", "H", "image height in pixels (pipelines: a multiple of the VAE factor; default: the model's)", 1, 4096);
    private readonly Option<int?> _width = CliOptions.Int("--width", "W", "image width in pixels (default: the model's)", 1, 4096);
    private readonly Option<int?> _clipSkip = CliOptions.Int("--clip-skip", "N", "use the text encoder's hidden state N layers before the last (diffusers' clip_skip)", 0, 1000);
    private readonly Option<int[]?> _originalSize = Pair("--original-size", "H,W", "SDXL micro-conditioning original_size (default: the image size)");
    private readonly Option<int[]?> _cropTopLeft = Pair("--crop-top-left", "Y,X", "SDXL micro-conditioning crops_coords_top_left (default 0,0)");
    private readonly Option<int[]?> _targetSize = Pair("--target-size", "H,W", "SDXL micro-conditioning target_size (default: the image size)");
    private readonly Option<int[]?> _negativeOriginalSize = Pair("--negative-original-size", "H,W", "SDXL negative_original_size of the unconditional branch, with --negative-target-size (default: the positive time ids)");
    private readonly Option<int[]?> _negativeCropTopLeft = Pair("--negative-crop-top-left", "Y,X", "SDXL negative_crops_coords_top_left, with the negative sizes (default 0,0)");
    private readonly Option<int[]?> _negativeTargetSize = Pair("--negative-target-size", "H,W", "SDXL negative_target_size, with --negative-original-size");
    private readonly Option<List<Engine.Models.Adapters.LoraSpec>> _lora = CliOptions.Repeatable("--lora", "FILE[:SCALE]",
        "LoRA adapter (kohya or diffusers layout) merged into the UNet and text encoders at SCALE (default 1), repeatable; " +
        "SCALE is the text after the last ':' when it is a number, so C:\\x.safetensors keeps its drive", ParseLora);
    private readonly ControlNetOptions _control = new();
    private readonly Option<string?> _out = CliOptions.PathText("--out", "DIR", "output folder (default: out)");
    private readonly Option<string?> _initNoise = CliOptions.PathText("--init-noise", "FILE",
        "safetensors file with tensor x_T [N, C, H, W] (latents for a pipeline): the initial noise (before init_noise_sigma scaling) instead of the seed's, " +
        "to compare with diffusers; N images (with --seed/--count only). An optional step_noise [K, N, C, H, W] holds the sampler's draws, " +
        "consumed in order (diffusers' draws, those multiplied by zero too; K may be 0; too few is an error before sampling)");
    private readonly Option<string?> _outputTensor = CliOptions.PathText("--output-tensor", "FILE",
        "also write the final samples before pixel conversion (model space or latents, not clamped) as tensor 'samples' [N, C, H, W] " +
        "to a safetensors file; for a pipeline also the decoded 'image' [N, 3, H, W] in [0, 1]");
    private readonly Option<string?> _teacher = CliOptions.Text("--teacher", "DIR",
        "sample --model as a distilled student refined by this teacher (Distillation++; options distill_lambda, distill_guide_steps, distill_renoise, teacher_cfg)");
    private readonly Option<List<Engine.Models.Adapters.LoraSpec>> _studentLora = CliOptions.Repeatable("--student-lora", "FILE[:SCALE]",
        "sample --model plus this LoRA (an LCM or TCD LoRA), repeatable, as a distilled student refined by --model itself " +
        "(Distillation++, as --teacher); the two share the weights the LoRA does not touch", ParseLora);
    private readonly Option<bool> _timings = CliOptions.Flag("--timings",
        "print to stderr the wall time of each phase (model load, text encoding, denoising and per step, VAE decode) and the process's CPU time in it, the weights' " +
        "device memory (the pipeline's, and the ControlNets') and each phase's peak of activations, alone and with the buffers pooled for reuse");
    private readonly Option<string?> _fromSidecar = CliOptions.PathText("--from-sidecar", "FILE", "regenerate the image a sidecar describes (same pixels), into --out");

    /// <inheritdoc />
    public override string Name => "generate";

    /// <inheritdoc />
    public override string Summary => "sample images from a model: PNGs with JSON sidecars and a grid";

    /// <inheritdoc />
    protected override IEnumerable<Symbol> Symbols =>
        [_model, .. _checkpoint.All, _lora, _prompt, _negativePrompt, _height, _width, _clipSkip, _originalSize, _cropTopLeft, _targetSize, _negativeOriginalSize, _negativeCropTopLeft, _negativeTargetSize, .. _img2img.All, .. _control.All, .. _sampling.All, _class, _classes, _seed, _count, _seeds, _rng, _out, _initNoise, _outputTensor, _teacher, _studentLora, _timings, _fromSidecar];

    /// <inheritdoc />
    public override string Usage => """
        usage: engine generate [--model DIR|FILE [--config DIR] [--prediction-type TYPE] [--vae DIR|FILE]] [--lora FILE[:SCALE] ...] [--prompt TEXT ... [--negative-prompt TEXT ...]] [--height H --width W] [--clip-skip N]
                               [--original-size H,W --crop-top-left Y,X --target-size H,W]
                               [--negative-original-size H,W --negative-crop-top-left Y,X --negative-target-size H,W]
                               [--init-image FILE [--strength S]] [--vae-tiling auto|on|off]
                               [--controlnet DIR[:SCALE] --control-image FILE ... [--control-start F --control-end F ...] [--guess-mode]]
                               [sampling options] [--seed S --count N | --seeds LIST] [--rng philox|torch]
                               [--class N | --classes A,B,...] [--out DIR] [--init-noise FILE] [--output-tensor FILE]
                               [--teacher DIR | --student-lora FILE[:SCALE] ...]
               engine generate --from-sidecar IMAGE.json [--out DIR] [--device KIND]
        """;

    /// <inheritdoc />
    public override string Details => $$"""
        Samples images from a diffusers model folder (default: the built-in {{ModelLocator.DefaultModel}}, found in the
        models/ folder above the executable or in ${{ModelLocator.EnvironmentVariable}}) and writes, into the output folder,
        one PNG per image, a JSON sidecar beside each PNG with every setting needed to make it again, and {{GridFileName}}
        (the first {{MaxGridImages}} images; one column per class when the images cycle through all classes).

        Seeds:
          --seed S --count N   one request: image i uses noise sample index i of seed S (i = 0..N-1), whatever the
                               batch size. Files: seedSSSSSS_iIIII_classC.png. Defaults: --seed 0 --count 20.
          --seeds LIST         one request of one image per seed (sample index 0 of each seed), e.g. 0-63 or 1,5,9;
                               the same image as a batch job line with that seed. Files: seedSSSSSS_classC.png.
          --seed S1,S2,...     the same as --seeds S1,S2,... (--count, if given, must be the list's length).
        Generators (--rng):
          philox (default)     the engine's counter-based stream: the seed rule above, batch-invariant.
          torch                PyTorch's CPU generator, as diffusers uses it: --seed S --count N is one
                               torch.Generator().manual_seed(S) for the request, x_T drawn for all N images at once,
                               then every sampler draw (so image i depends on N); a seed list is diffusers' list of
                               generators, one per image. The same pictures diffusers makes from those seeds.
        LoRA: --lora FILE[:SCALE] merges an adapter (kohya lora_down/lora_up with alpha, LoCon, SDXL's SGM block
        names, or diffusers lora_A/lora_B) into the UNet and the text encoders: W + SCALE * alpha / rank * up @ down
        in float32. Give it several times for several adapters; the sidecar records each file's SHA-256.
        Pipelines: a folder with model_index.json (StableDiffusion, StableDiffusionXL, StableDiffusion3 without T5, DiT) samples
        latents conditioned on --prompt (DiT: on --class) and
        decodes them with its VAE; without --count there is one image per --prompt. --init-image runs img2img
        (SD, SDXL): the image is encoded by the VAE, noised to the step --strength gives and denoised from there;
        --init-noise may then also hold encode_noise [N, C, h, w], the posterior's standard-normal draw.
        ControlNet (SD, SDXL, also with --init-image): --controlnet DIR[:SCALE] with --control-image FILE, both repeated
        and matched in order; the nets run between --control-start and --control-end (fractions of the steps).
        Single files: a .safetensors checkpoint in the original layout (SD 1.x, SD 2.x, SDXL base) runs as its pipeline,
        with configs inferred from the file (stock SD 1.5 / SD 2.1 768-v / SDXL base values) or taken from --config.
        Classes: --class N gives every image class N (a DiT pipeline also takes a name from its labels,
        --class "golden retriever"); --classes A,B,... gives image i class list[i mod length];
        without either a class-conditional model cycles through all its classes.

        Each image is written with its sidecar (atomically) as soon as its batch finishes. Ctrl+C stops between
        sampler steps with exit code 130: every finished image is on disk, complete (the grid is written only
        when the run ends).
        Samples that turn NaN or infinite fail the run (exit code 1) naming the step; finite images are kept.
        """;

    /// <inheritdoc />
    public override int Run(ParseResult parse, CommandContext context)
    {
        if (parse.GetValue(_fromSidecar) is { } sidecarPath)
        {
            var extra = parse.GivenOptions().Where(g => g is not ("--from-sidecar" or "--out" or "--device")).ToList();
            if (extra.Count > 0) throw new UsageException($"{Name}: --from-sidecar takes its settings from the sidecar; only --out and --device may be given with it (got {string.Join(", ", extra)}).");
            return FromSidecar(sidecarPath, parse.GetValue(_out) ?? "out", parse.GetValue(_sampling.Device), context);
        }
        var request = _sampling.Read(parse, Name);
        if (parse.Has(_class) && parse.Has(_classes)) throw new UsageException($"{Name}: give either --class or --classes, not both.");
        string? className = parse.GetValue(_class);
        int[]? classList = className is not null && int.TryParse(className, out int one) ? [one] : parse.Has(_classes) ? parse.GetValue(_classes) : null;
        // Array-typed options read as empty, not null, when absent.
        ulong[] seedList = parse.Has(_seed) ? parse.GetValue(_seed)! : [0];
        if (parse.Has(_seeds) && (parse.Has(_seed) || parse.Has(_count)))
            throw new UsageException($"{Name}: give either --seeds or --seed/--count, not both.");
        if (seedList.Length > 1 && parse.GetValue(_count) is { } listCount && listCount != seedList.Length)
            throw new UsageException($"{Name}: --count {listCount} but --seed lists {seedList.Length} seeds.");
        bool seedsMode = parse.Has(_seeds) || seedList.Length > 1;
        if (seedsMode && parse.Has(_initNoise))
            throw new UsageException($"{Name}: --init-noise goes with --seed/--count (one request), not --seeds.");
        ulong[] seeds = parse.Has(_seeds) ? parse.GetValue(_seeds)! : seedList;
        ulong seed = seedList[0];
        int? count = parse.GetValue(_count);
        string outDir = parse.GetValue(_out) ?? "out";
        string? outputTensor = parse.GetValue(_outputTensor);

        string modelPath = ModelLocator.Resolve(parse.GetValue(_model));
        OutputPaths.RequireWritableFolder(outDir, "--out");
        if (outputTensor is not null) OutputPaths.RequireWritableFile(outputTensor, "--output-tensor");
        var prompts = parse.GetValue(_prompt) ?? [];
        var negatives = parse.GetValue(_negativePrompt) ?? [];
        if (prompts.Count > 1 && count is { } given && given != prompts.Count)
            throw new UsageException($"{Name}: {prompts.Count} prompts but --count {given}: give one prompt per image or one prompt for all.");
        if (negatives.Count > 1 && negatives.Count != Math.Max(prompts.Count, count ?? 1))
            throw new UsageException($"{Name}: {negatives.Count} negative prompts: give one for every image or one per prompt.");
        if (prompts.Count > 0 && count is null && !parse.Has(_initNoise)) count = prompts.Count;
        request = request with
        {
            Prompts = prompts.Count > 0 ? prompts : null,
            NegativePrompts = negatives.Count > 0 ? negatives : null,
            ClipSkip = parse.GetValue(_clipSkip),
            OriginalSize = parse.Has(_originalSize) ? parse.GetValue(_originalSize) : null,
            CropTopLeft = parse.Has(_cropTopLeft) ? parse.GetValue(_cropTopLeft) : null,
            TargetSize = parse.Has(_targetSize) ? parse.GetValue(_targetSize) : null,
            NegativeOriginalSize = parse.Has(_negativeOriginalSize) ? parse.GetValue(_negativeOriginalSize) : null,
            NegativeCropTopLeft = parse.Has(_negativeCropTopLeft) ? parse.GetValue(_negativeCropTopLeft) : null,
            NegativeTargetSize = parse.Has(_negativeTargetSize) ? parse.GetValue(_negativeTargetSize) : null,
            Height = parse.GetValue(_height) ?? 0,
            Width = parse.GetValue(_width) ?? 0,
            Model = modelPath,
            Checkpoint = _checkpoint.Read(parse, Name),
            Teacher = parse.GetValue(_teacher) is { } t ? ModelLocator.Resolve(t, option: "--teacher") : null,
            InitialNoiseFile = parse.GetValue(_initNoise) is { } n ? Path.GetFullPath(n) : null,
            Rng = parse.GetValue(_rng) ?? RngKind.Philox,
            Loras = [.. (parse.GetValue(_lora) ?? []).Select(l => l with { Path = Path.GetFullPath(l.Path) })],
            StudentLoras = [.. (parse.GetValue(_studentLora) ?? []).Select(l => l with { Path = Path.GetFullPath(l.Path) })],
        };
        if (request.StudentLoras.Count > 0 && request.Teacher is not null)
            throw new UsageException($"{Name}: --student-lora makes --model its own teacher; --teacher cannot be given too.");
        request = _img2img.Apply(parse, request, Name, request.InitialNoiseFile);
        request = _control.Apply(parse, request, Name);
        foreach (var (lora, option) in request.Loras.Select(l => (l, "--lora")).Concat(request.StudentLoras.Select(l => (l, "--student-lora"))))
            OutputPaths.RequireFile(lora.Path, $"{option} file");
        int[]? noiseShape = null;
        if (request.InitialNoiseFile is { } noisePath)
        {
            var (noise, shape, stepNoise) = ReadInitNoise(noisePath);
            if (count is { } c && c != shape[0]) throw new UsageException($"{Name}: --count {c} but {noisePath} holds x_T for {shape[0]} images.");
            count = shape[0];
            noiseShape = shape;
            request = request with { InitialNoise = noise, StepNoise = stepNoise };
        }

        // One image per init image when it holds several and nothing else gives the count.
        if (!parse.Has(_count) && !parse.Has(_initNoise) && prompts.Count <= 1 && request.InitImage is { Count: > 1 } several) count = several.Count;
        using var device = DeviceFactory.Create(request.Device);
        CliOptions.ApplyCompute(device, request.Compute, Name); // a precision the device lacks fails before the model loads
        using var generator = new Generator(device) { WeightStorage = request.WeightStorage, Warning = context.Error.WriteLine };
        var loadClock = System.Diagnostics.Stopwatch.StartNew();
        using var model = generator.LoadModel(modelPath, request.Checkpoint);
        if (parse.GetValue(_timings))
        {
            static string Gib(long bytes) => bytes >= 1L << 30 ? $"{bytes / (double)(1L << 30):F2} GiB" : $"{bytes / (double)(1L << 20):F1} MiB";
            long weights = device.Transfers.LiveBytes;
            context.Error.WriteLine($"timing: load {loadClock.Elapsed.TotalSeconds:F2} s, weights {Gib(weights)} on the device");
            // ControlNets load with the first request, after the line above: their weights are weights, not activations.
            generator.Timing = t => context.Error.WriteLine($"timing: {t.Phase} {t.Elapsed.TotalSeconds:F2} s, CPU {t.Cpu.TotalSeconds:F2} s" +
                (t.Steps > 0 ? $" ({t.Steps} steps, {t.Elapsed.TotalSeconds / t.Steps:F2} s per step)" : "") +
                $"; activations peak {Gib(t.PeakLiveBytes - weights - model.ControlNetWeightBytes)}, held with the pool {Gib(t.PeakHeldBytes - weights - model.ControlNetWeightBytes)}, " +
                $"{t.FreshBuffers} fresh buffers" + (model.ControlNetWeightBytes > 0 ? $"; ControlNet weights {Gib(model.ControlNetWeightBytes)}" : ""));
        }
        // x_T gives the sample size where --height/--width do not: latents times the VAE factor for a pipeline.
        if (noiseShape is not null)
            request = request with
            {
                Height = request.Height == 0 ? noiseShape[2] * model.PixelScale : request.Height,
                Width = request.Width == 0 ? noiseShape[3] * model.PixelScale : request.Width,
            };
        using var teacher = request.Teacher is null ? null : generator.LoadModel(request.Teacher);
        if (className is not null && classList is null)
            classList = [model.Pipeline?.Index.LabelId(className) ?? throw new UsageException($"{Name}: --class '{className}' is not a number; class names need a pipeline folder with id2label (DiTPipeline).")];
        int[]? cycle = classList ?? (model.ClassCount > 0 ? Enumerable.Range(0, model.ClassCount).ToArray() : null);

        var requests = new List<PlannedRequest>();
        if (seedsMode)
        {
            // One request per seed (the seed rule of GenerationRequest): image k is sample index 0 of seeds[k].
            for (int i = 0; i < seeds.Length; i++)
            {
                int? label = cycle?[i % cycle.Length];
                var single = request.ForSeed(seeds[i], label) with { Prompts = PromptOf(prompts, i), NegativePrompts = PromptOf(negatives, i) };
                requests.Add(new PlannedRequest(single, [new PlannedImage(0, JobImage.NameFor(seeds[i], label), label)], label is { } l ? [l] : null));
            }
        }
        else
        {
            // One request (the seed rule of GenerationRequest): image i is sample index i of the seed.
            var all = (request with { Seed = seed, Count = count ?? 20 }).WithClassCycle(cycle);
            int?[] labels = Enumerable.Range(0, all.Count).Select(i => (int?)all.ClassLabels?[i]).ToArray();
            requests.Add(new PlannedRequest(all, Enumerable.Range(0, all.Count).Select(i => new PlannedImage(i, CountModeName(seed, i, labels[i]), labels[i])).ToList(), cycle));
        }
        return Execute(generator, model, teacher, requests, outDir, outputTensor, ImageOutput.GridColumns(requests.Sum(r => r.Images.Count), cycle?.Length ?? 0), context);
    }

    /// <summary>The file name of image <paramref name="index"/> of a --seed/--count request.</summary>
    public static string CountModeName(ulong seed, int index, int? label) =>
        label is { } c ? $"seed{seed:D6}_i{index:D4}_class{c}.png" : $"seed{seed:D6}_i{index:D4}.png";

    private static Option<int[]?> Pair(string name, string helpName, string description) => CliOptions.Parsed<int[]?>(name, helpName, description, text =>
    {
        var values = OptionValues.IntList(text, name, 0);
        return values.Length == 2 ? values : throw new FormatException($"{name} takes two integers {helpName}; got '{text}'.");
    });

    /// <summary>The prompt of image <paramref name="i"/> of a seed list (prompts cycle over the seeds); null when none.</summary>
    private static string[]? PromptOf(List<string> prompts, int i) => prompts.Count == 0 ? null : [prompts[i % prompts.Count]];

    private static Engine.Models.Adapters.LoraSpec ParseLora(string text)
    {
        try { return Engine.Models.Adapters.LoraSpec.Parse(text); }
        catch (FormatException e) { throw new FormatException($"--lora: {e.Message}", e); }
    }

    private static ulong[] ParseSeedList(string text)
    {
        var seeds = text.Split(',').Select(part => OptionValues.ParseSeed(part, "--seed")).ToArray();
        if (seeds.Distinct().Count() != seeds.Length) throw new FormatException("--seed lists a seed twice (each image needs its own seed).");
        return seeds;
    }

    private static ulong[] ParseSeeds(string text)
    {
        ulong[] seeds;
        try { seeds = SeedRange.Parse(text); }
        catch (FormatException e) { throw new FormatException($"--seeds: {e.Message}.", e); }
        if (seeds.Distinct().Count() != seeds.Length) throw new FormatException("--seeds lists a seed twice (each image needs its own seed).");
        return seeds;
    }
}
