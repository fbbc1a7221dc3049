using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using Engine.Core;
using Engine.Generation;
using Engine.Gpu;
using Engine.Cli.Sharding;
using Engine.Jobs;

namespace Engine.Cli.Commands;

/// <summary>
/// <c>engine batch JOBS.jsonl</c>: runs the jobs of a job file in order. Each model folder is loaded
/// once per device; images go to disk (PNG + sidecar) as soon as they are made; images already on
/// disk are skipped, so re-running an interrupted file continues it; a bad line or a failing job is
/// reported with its line number and the other jobs still run.
/// </summary>
public sealed class BatchCommand : EngineCommand
{
    private readonly Argument<string?> _jobs = CliOptions.Positional("JOBS.jsonl", "the job file");
    private readonly Option<string?> _out = CliOptions.PathText("--out", "DIR", "output folder of jobs without 'out' (default: out)");
    private readonly Argument<string?> _statusOut = CliOptions.Positional("OUT", "with 'status': the output folder to check");
    private readonly Option<string?> _device = BatchOptions.Devices();
    private readonly Option<string?> _shard = BatchOptions.Shard();
    private readonly Option<int?> _shardCount = BatchOptions.ShardCount();
    private readonly Option<Engine.Sampling.Rng.RngKind?> _rng = CliOptions.Rng("generator of jobs without 'rng': philox (default) or torch (PyTorch's CPU generator: diffusers' noise for each seed)");
    private readonly Option<DType?> _weights = CliOptions.Weights("storage of every model's Linear/Conv2d weights: f32 (default), f16 or bf16");

    /// <inheritdoc />
    public override string Name => "batch";

    /// <inheritdoc />
    public override string Summary => "run a JSON-lines job file (resumable; one model load per model)";

    /// <inheritdoc />
    protected override IEnumerable<Symbol> Symbols => [_jobs, _statusOut, _out, _device, _weights, _rng, _shard, _shardCount];

    /// <inheritdoc />
    public override string Usage => """
        usage: engine batch JOBS.jsonl [--out DIR] [--device KIND[,KIND...]] [--weights f32|f16|bf16] [--rng philox|torch] [--shard K/N] [--shard-count N]
               engine batch status OUT
        """;

    /// <inheritdoc />
    public override string Details => """
        Runs the jobs of a JSON-lines file in order: one JSON object per line; blank lines and lines
        starting with # are skipped. Fields:
          model             model folder or built-in model name (required)
          sampler           sampler name (default dpmpp_2m)     scheduler_config  diffusers scheduler config file
          steps             inference steps (default 20)         cfg               guidance scale (default 3)
          seed / seeds      a seed, or a list/range such as "0-63" or [1, "5-9"]; with one seed, count
                            images take seed, seed+1, ... (default: seed 0, count 1)
          count             number of images                     class / classes   label, or list/range cycled over the images
          device            device kind                          out               output folder (default: --out, else out)
          options           object of guidance and plug-in options, e.g. {"cfg_rescale": 0.7}
          rng               philox (default: --rng, else philox) or torch: PyTorch's CPU generator, each image
                            drawing from torch.Generator().manual_seed(seed) as diffusers does
          batch             accepted for compatibility: every image is generated on its own (one seed each)
          lora              LoRA adapters: "FILE[:SCALE]", or a list of such strings and {"file": F, "scale": S}
                            objects (scale default 1); merged into the loaded model, so jobs that differ only in
                            their LoRAs or scales share one model load
        Relative paths in 'model', 'scheduler_config' and 'lora' are looked up from the working folder, then from
        the job file's folder. --weights sets the storage of every model's Linear/Conv2d weights (default
        f32; f16 and bf16 halve their memory).

        Each image is sample index 0 of its seed (the same pixels as 'engine generate --seeds S'), written
        as seedSSSSSS_classC.png with a JSON sidecar as soon as it is made. Without class/classes a
        class-conditional model cycles through its classes. Images already on disk are skipped, so running the
        same file again resumes it: a PNG counts as done when its sidecar exists and records the PNG's size and
        SHA-256 and they match, and the PNG decodes whole (sidecars from before these fields: decoding alone);
        a damaged image (truncated, altered, its sidecar deleted) is reported and made again. A bad line or failing job is reported (with its line number)
        and the other jobs still run. Prints a summary at the end; exit code 1 when any line or job failed,
        130 on Ctrl+C (images written so far are complete).
        """ + "\n\n" + BatchOptions.Details;

    /// <inheritdoc />
    public override int Run(ParseResult parse, CommandContext context)
    {
        if (parse.GetValue(_jobs) is not { } jobPath) throw new UsageException($"{Name}: give one job file (see 'engine {Name} --help').");
        if (BatchOptions.IsStatus(jobPath, parse.GetValue(_statusOut), Name) is { } statusFolder) return BatchStatusReport.Run(statusFolder, context);
        string defaultOut = parse.GetValue(_out) ?? "out";
        var (shard, workerDevices) = BatchOptions.Read(parse.GetValue(_shard), parse.GetValue(_shardCount), parse.GetValue(_device), Name);
        string? defaultDevice = workerDevices.Count == 1 ? workerDevices[0] : null;
        var defaultRng = parse.GetValue(_rng) ?? Engine.Sampling.Rng.RngKind.Philox;
        var weights = parse.GetValue(_weights) ?? DType.F32;
        OutputPaths.RequireFile(jobPath, "job file");
        var file = JobFile.Read(jobPath);
        string jobDir = Path.GetDirectoryName(Path.GetFullPath(jobPath))!;
        // Before any work: the shard's images and the claim on every output folder (another job file's is refused).
        var plan = ShardPlan.Create(file, jobPath, defaultOut, shard, Math.Max(1, workerDevices.Count));
        var clock = Stopwatch.StartNew();
        int failed = 0, written = 0, skipped = 0;
        foreach (var error in file.Errors)
        {
            context.Error.WriteLine($"engine batch: {error}");
            failed++;
        }
        if (shard.Count > 1 || plan.Workers > 1)
            context.Output.WriteLine($"shard {shard} ({shard.ManifestName}): {plan.ImageCount} of {file.Jobs.Sum(j => j.Count)} images" +
                (plan.Workers > 1 ? $", {plan.Workers} workers on {string.Join(", ", workerDevices)}" : ""));

        // One worker per listed device, each with its own devices and models, over its share of the shard's images.
        void Work(int worker, string? workerDevice, ProgressMeter meter, CommandContext output)
        {
            var devices = new Dictionary<string, (Device Device, Generator Generator)>(StringComparer.Ordinal);
            var models = new Dictionary<(string Device, string Path), LoadedDenoiser>();
            try
            {
                foreach (var job in file.Jobs)
                {
                    output.Cancellation.ThrowIfCancellationRequested();
                    int mine = job.Images().Count(i => plan.Mine(job, i.Index, worker));
                    if (mine == 0) continue;
                    try
                    {
                        var (w, s) = RunJob(job, jobPath, jobDir, defaultOut, workerDevice ?? defaultDevice, defaultRng, weights, devices, models, meter, output,
                            plan, worker, workerDevice is not null);
                        Interlocked.Add(ref written, w);
                        Interlocked.Add(ref skipped, s);
                    }
                    catch (Exception e) when (e is not OperationCanceledException && (e is not OutOfMemoryException || e is InsufficientMemoryException))
                    {
                        output.Error.WriteLine($"engine batch: {jobPath}:{job.Line}: job failed: {e.Message}");
                        plan.RecordFailure(job, worker, e.Message);
                        meter.Drop(mine);
                        Interlocked.Increment(ref failed);
                    }
                }
            }
            finally
            {
                foreach (var m in models.Values) m.Dispose();
                foreach (var (device, generator) in devices.Values) { generator.Dispose(); device.Dispose(); }
            }
        }
        int steps = file.Jobs.FirstOrDefault()?.Steps ?? 20;
        if (plan.Workers == 1)
            ProgressDisplay.Run(context, Name, plan.ImageCount, steps, meter => { Work(0, null, meter, context); return 0; });
        else
            BatchWorkers.Run(workerDevices, plan, steps, context, Work);
        int lines = file.Jobs.Count + file.Errors.Count;
        context.Output.WriteLine($"batch summary: {lines} job{(lines == 1 ? "" : "s")} ({lines - failed} ok, {failed} failed), " +
            $"{written} image{(written == 1 ? "" : "s")} written, {skipped} skipped (already on disk), {clock.Elapsed.TotalSeconds:F1} s");
        return failed > 0 ? ExitCodes.Failure : ExitCodes.Success;
    }

    private (int Written, int Skipped) RunJob(GenerationJob job, string jobPath, string jobDir, string defaultOut, string? defaultDevice, Engine.Sampling.Rng.RngKind defaultRng, DType weights,
        Dictionary<string, (Device Device, Generator Generator)> devices, Dictionary<(string, string), LoadedDenoiser> models, ProgressMeter meter, CommandContext context,
        ShardPlan plan, int worker, bool pooled)
    {
        string where = $"{jobPath}:{job.Line}";
        string? kind = BatchWorkers.DeviceOf(job.Device, defaultDevice, pooled);
        GenerationRequest request;
        var fromLine = job.ToRequest() with
        {
            Rng = job.Rng ?? defaultRng, SchedulerConfigPath = job.SchedulerConfig is { } sc ? LocalPath(sc, jobDir) : null, Device = pooled && kind is not null ? DeviceList.KindOf(kind) : kind, WeightStorage = weights,
            Loras = job.Loras.Select(l => l with { Path = Path.GetFullPath(LocalPath(l.Path, jobDir)) }).ToList(),
        };
        try { request = SamplingSettings.Validated(fromLine, Name); }
        catch (UsageException e) { throw new ArgumentException(e.Message[(Name.Length + 2)..], e); }
        // Before the model loads: a job whose images cannot be written fails without sampling.
        string outDir = job.Out ?? defaultOut;
        OutputPaths.RequireWritableFolder(outDir, job.Out is null ? "--out" : "field 'out'");
        string modelPath = ModelLocator.Resolve((Directory.Exists(Path.Combine(jobDir, job.Model)) || File.Exists(Path.Combine(jobDir, job.Model))) && !Directory.Exists(job.Model) && !File.Exists(job.Model) ? Path.Combine(jobDir, job.Model) : job.Model);
        var checkpoint = job.Config is null && job.Vae is null && job.PredictionType is null ? null : new Engine.Generation.Checkpoints.CheckpointOptions
        {
            ConfigFolder = job.Config is { } cfg ? Path.GetFullPath(LocalEntry(cfg, jobDir)) : null,
            Vae = job.Vae is { } vae ? Path.GetFullPath(LocalEntry(vae, jobDir)) : null,
            PredictionType = job.PredictionType,
        };
        checkpoint?.Validate();
        request = request with { Model = modelPath, Checkpoint = checkpoint };
        if (job.InitImage is { } init)
            request = request with { InitImage = InitImage.Load(LocalPath(init, jobDir), job.Strength ?? InitImage.DefaultStrength) };
        if (job.ControlNets.Count > 0)
            request = request with { ControlNets = JobControlNet.Resolve(job.ControlNets, f => LocalEntry(f, jobDir), f => LocalPath(f, jobDir)), GuessMode = job.GuessMode };
        // A checkpoint read with other options is another model.
        if (checkpoint is not null) modelPath += "|" + checkpoint;

        string deviceKey = kind ?? "";
        if (!devices.TryGetValue(deviceKey, out var dev))
        {
            var device = DeviceFactory.Create(kind);
            devices[deviceKey] = dev = (device, new Generator(device) { WeightStorage = weights });
        }
        if (!models.TryGetValue((deviceKey, modelPath), out var model))
            models[(deviceKey, modelPath)] = model = dev.Generator.LoadModel(request.Model!, checkpoint);

        // A conditional model without explicit classes cycles through its classes, and the names say so.
        var classes = job.Classes ?? (model.ClassCount > 0 ? Enumerable.Range(0, model.ClassCount).ToArray() : null);
        var planned = new GenerationJob(job.Line, job.Model, job.Seeds, classes);
        // An image counts as done only when its PNG matches its sidecar's size and checksum and decodes whole.
        var (done, pending, damaged) = JobResume.Check(planned, outDir, ImageOutput.Problem, image => plan.Mine(job, image.Index, worker));
        meter.Drop(done.Count);
        foreach (var image in done) plan.RecordExisting(job, image);
        if (done.Count > 0) context.Output.WriteLine($"{where}: {done.Count} of {done.Count + pending.Count} images already in {outDir}, skipped");
        foreach (var (image, reason) in damaged) context.Error.WriteLine($"engine batch: {where}: {Path.Combine(outDir, image.FileName)} is damaged ({reason}); making it again");

        int written = 0;
        foreach (var image in pending)
        {
            context.Cancellation.ThrowIfCancellationRequested();
            // One request per seed (the seed rule of GenerationRequest): the image is sample index 0 of its seed.
            new PlannedRequest(request.ForSeed(image.Seed, image.Class), [new PlannedImage(0, image.FileName, image.Class)], image.Class is { } l ? [l] : null)
                .Run(dev.Generator, model, null, meter, outDir, context.Cancellation);
            plan.RecordWritten(job, image);
            written++;
        }
        return (written, done.Count);
    }

    // A file or folder named relative to the job file when it is not there relative to the working folder.
    private static string LocalEntry(string path, string jobDir) =>
        Path.IsPathRooted(path) || File.Exists(path) || Directory.Exists(path) ? path : Path.Combine(jobDir, path);

    private static string LocalPath(string path, string jobDir) =>
        File.Exists(path) || Path.IsPathRooted(path) || !File.Exists(Path.Combine(jobDir, path)) ? path : Path.Combine(jobDir, path);
}
