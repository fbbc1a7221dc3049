using System.CommandLine;
using Engine.Core;
using Engine.Core.Safetensors;
using Engine.Generation.Pipelines;
using Engine.Models.Checkpoints;
using System.Text.Json;

namespace Engine.Cli.Commands;

/// <summary>
/// <c>engine inspect FILE</c>: the tensors (name, dtype, shape, bytes) and metadata of a safetensors file;
/// <c>engine inspect PIPELINE_DIR</c>: a diffusers pipeline folder's components (see <see cref="PipelineInspection"/>).
/// </summary>
public sealed class InspectCommand : EngineCommand
{
    private readonly Argument<string?> _file = CliOptions.Positional("FILE.safetensors|PIPELINE_DIR", "a safetensors file, or a pipeline folder holding model_index.json");
    private readonly Option<bool> _json = CliOptions.Flag("--json",
        "for a single-file checkpoint: print one JSON object with pipeline_class and the inferred diffusers configs (unet, vae, text_encoder, text_encoder_2, scheduler)");

    /// <inheritdoc />
    public override string Name => "inspect";

    /// <inheritdoc />
    public override string Summary => "list the tensors and metadata of a safetensors file, or a pipeline folder's components";

    /// <inheritdoc />
    public override string Usage => "usage: engine inspect FILE.safetensors | PIPELINE_DIR\n       engine inspect --json CHECKPOINT.safetensors";

    /// <inheritdoc />
    public override string Details => """
        Prints one line per tensor (name, dtype, shape, bytes), sorted by name, the totals, and the
        file's __metadata__ entries. A malformed file is reported with the reason and exit code 1.
        Given a diffusers pipeline folder (model_index.json), prints the pipeline class, whether
        engine generate runs it, and per component its library, class, folder and contents: tensor and
        parameter counts of model weights, the file names of others (scheduler, tokenizer); components
        saved as None, missing folders and classes the engine does not implement are marked.
        A single-file checkpoint (SD 1.x, SD 2.x, SDXL in the original layout) is recognised from its header: the plain
        listing names its kind, and --json prints the diffusers pipeline class and the configs inferred from the header
        (stock SD 1.5 / SD 2.1 768-v / SDXL base values, every size read from the tensor shapes). Only the header is read.
        """;

    /// <inheritdoc />
    protected override IEnumerable<Symbol> Symbols => [_file, _json];

    /// <inheritdoc />
    public override int Run(ParseResult parse, CommandContext context)
    {
        if (parse.GetValue(_file) is not { } path) throw new UsageException($"{Name}: give one safetensors file or pipeline folder (see 'engine {Name} --help').");
        if (Directory.Exists(path))
        {
            if (!PipelineIndex.IsPipelineFolder(path)) throw new FileNotFoundException($"{path}: a folder without {PipelineIndex.FileName}; give a safetensors file or a pipeline folder.");
            PipelineInspection.Write(path, context.Output);
            return ExitCodes.Success;
        }
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: file does not exist.");
        using var file = SafetensorsFile.Open(path);
        var o = context.Output;
        if (parse.GetValue(_json))
        {
            if (!CheckpointInspector.IsCheckpoint(file))
                throw new InvalidDataException($"{path}: --json describes single-file checkpoints; this file has no '{CheckpointComponents.UNetPrefix}' tensors.");
            o.WriteLine(CheckpointInspector.Inspect(file).ToJson().ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            return ExitCodes.Success;
        }
        var tensors = file.Tensors.Values.OrderBy(t => t.Name, StringComparer.Ordinal).ToList();
        int width = Math.Max(4, tensors.Count == 0 ? 0 : tensors.Max(t => t.Name.Length));
        o.WriteLine($"{"name".PadRight(width)}  {"dtype",-5}  {"shape",-20}  {"bytes",12}");
        foreach (var t in tensors)
            o.WriteLine($"{t.Name.PadRight(width)}  {t.Type,-5}  {Tensor.ShapeString(t.Shape),-20}  {t.End - t.Begin,12}");
        o.WriteLine($"{tensors.Count} tensor{(tensors.Count == 1 ? "" : "s")}, {tensors.Sum(t => t.Length)} elements, {tensors.Sum(t => t.End - t.Begin)} bytes of data, file {new FileInfo(path).Length} bytes");
        if (CheckpointInspector.IsCheckpoint(file))
        {
            try { var kind = CheckpointInspector.Kind(file); o.WriteLine($"single-file checkpoint: {StockConfigs.Name(kind)} ({StockConfigs.PipelineClass(kind)}); 'engine inspect --json' prints its configs"); }
            catch (Engine.Models.ModelLoadException e) { o.WriteLine($"single-file checkpoint not recognised: {e.Message}"); }
        }
        if (file.Metadata.Count == 0) o.WriteLine("metadata: none");
        else
        {
            o.WriteLine("metadata:");
            foreach (var (k, v) in file.Metadata.OrderBy(kv => kv.Key, StringComparer.Ordinal)) o.WriteLine($"  {k} = {v}");
        }
        return ExitCodes.Success;
    }
}
