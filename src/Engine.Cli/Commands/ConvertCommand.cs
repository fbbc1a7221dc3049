using System.CommandLine;
using Engine.Core;
using Engine.Generation.Checkpoints;

namespace Engine.Cli.Commands;

/// <summary>
/// <c>engine convert FILE --out DIR</c>: writes a single-file checkpoint as a diffusers pipeline folder.
/// </summary>
public sealed class ConvertCommand : EngineCommand
{
    private readonly Argument<string?> _file = CliOptions.Positional("CHECKPOINT.safetensors", "a single-file SD 1.x / 2.x / SDXL checkpoint in the original layout");
    private readonly Option<string?> _out = CliOptions.PathText("--out", "DIR", "the pipeline folder to write (new or empty)");
    private readonly Option<DType?> _weights = CliOptions.Weights("storage of every written tensor: f32 (default), f16 or bf16");
    private readonly CheckpointCliOptions _checkpoint = new();

    /// <inheritdoc />
    public override string Name => "convert";

    /// <inheritdoc />
    public override string Summary => "write a single-file checkpoint as a diffusers pipeline folder";

    /// <inheritdoc />
    public override string Usage => "usage: engine convert CHECKPOINT.safetensors --out DIR [--weights f16] [--config DIR] [--prediction-type TYPE] [--vae DIR|FILE]";

    /// <inheritdoc />
    public override string Details => """
        Writes model_index.json, unet/, vae/, text_encoder/ (and text_encoder_2/ for SDXL), tokenizer/ (tokenizer_2/),
        and scheduler/ with the configs 'engine inspect --json' shows (or those of --config DIR), the way diffusers
        saves a pipeline, so diffusers' from_pretrained and 'engine generate --model DIR' load it. Tensors are read
        from the memory-mapped file and written one at a time.
        """;

    /// <inheritdoc />
    protected override IEnumerable<Symbol> Symbols => [_file, _out, _weights, .. _checkpoint.All];

    /// <inheritdoc />
    protected override IEnumerable<Option> RequiredOptions => [_out];

    /// <inheritdoc />
    public override int Run(ParseResult parse, CommandContext context)
    {
        if (parse.GetValue(_file) is not { } path) throw new UsageException($"{Name}: give a checkpoint file (see 'engine {Name} --help').");
        OutputPaths.RequireFile(path, "checkpoint");
        string outDir = parse.GetValue(_out)!;
        CheckpointConverter.Convert(path, _checkpoint.Read(parse, Name), outDir, parse.GetValue(_weights) ?? DType.F32);
        context.Output.WriteLine($"wrote {Path.GetFullPath(outDir)}");
        return ExitCodes.Success;
    }
}
