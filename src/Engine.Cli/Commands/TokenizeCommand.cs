using System.CommandLine;
using Engine.Models.Text;

namespace Engine.Cli.Commands;

/// <summary>
/// <c>engine tokenize --model DIR [--tokenizer tokenizer_2] [--json] PROMPT...</c>: how a pipeline's CLIP
/// tokenizer splits each prompt and where the model's length cuts it.
/// </summary>
public sealed class TokenizeCommand : EngineCommand
{
    private readonly Option<string?> _model = CliOptions.PathText("--model", "DIR", "pipeline folder (model_index.json), or a tokenizer folder itself");
    private readonly Option<string?> _tokenizer = CliOptions.Text("--tokenizer", "NAME", "tokenizer subfolder of the pipeline (default: tokenizer; SDXL and SD3 also have tokenizer_2)");
    private readonly Option<bool> _json = CliOptions.Flag("--json", "per prompt one line: a JSON array of all its ids, start and end included, neither padded nor truncated");
    private readonly Argument<string[]> _prompts = new("PROMPT") { Description = "the prompts", Arity = ArgumentArity.ZeroOrMore };

    /// <inheritdoc />
    public override string Name => "tokenize";

    /// <inheritdoc />
    public override string Summary => "show how a pipeline's CLIP tokenizer splits prompts";

    /// <inheritdoc />
    public override string Usage => "usage: engine tokenize --model DIR [--tokenizer NAME] [--json] PROMPT...";

    /// <inheritdoc />
    public override string Details => """
        For each prompt prints its tokens with their ids (start and end tokens included) and, when the prompt
        has more tokens than the text encoder takes, the text that is cut off (as diffusers warns). With --json
        it prints instead, per prompt, one line holding a JSON array of all its ids.
        """;

    /// <inheritdoc />
    protected override IEnumerable<Symbol> Symbols => [_model, _tokenizer, _json, _prompts];

    /// <inheritdoc />
    public override int Run(ParseResult parse, CommandContext context)
    {
        var model = parse.GetValue(_model) ?? throw new UsageException($"{Name}: give the pipeline folder with --model.");
        var prompts = parse.GetValue(_prompts) ?? [];
        if (prompts.Length == 0) throw new UsageException($"{Name}: give at least one prompt (see 'engine {Name} --help').");
        if (!Directory.Exists(model)) throw new DirectoryNotFoundException($"model folder '{model}' does not exist.");
        string name = parse.GetValue(_tokenizer) ?? "tokenizer";
        string folder = File.Exists(Path.Combine(model, "vocab.json")) && !parse.Has(_tokenizer) ? model : Path.Combine(model, name);
        if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"{folder}: tokenizer folder '{name}' (--tokenizer) does not exist.");
        var tokenizer = ClipTokenizer.Load(folder);
        var o = context.Output;
        foreach (var prompt in prompts)
        {
            var encoding = tokenizer.Encode(prompt);
            if (parse.GetValue(_json))
            {
                o.WriteLine("[" + string.Join(",", encoding.Ids) + "]");
                continue;
            }
            o.WriteLine($"\"{prompt}\": {encoding.Ids.Length} ids ({encoding.Tokens.Length} tokens between start and end; the model takes {tokenizer.MaxLength - 2})");
            o.WriteLine($"  {tokenizer.BosId} <start>");
            for (int i = 0; i < encoding.Tokens.Length; i++)
            {
                if (i == tokenizer.MaxLength - 2) o.WriteLine($"  --- cut here: what follows is dropped ---");
                o.WriteLine($"  {encoding.Ids[i + 1]} {encoding.Tokens[i]} = \"{tokenizer.Decode([encoding.Ids[i + 1]])}\"");
            }
            o.WriteLine($"  {tokenizer.EosId} <end>");
            if (encoding.IsTruncated)
                context.Error.WriteLine($"The following part of your input was truncated because CLIP can only handle sequences up to {tokenizer.MaxLength} tokens: {encoding.TruncatedText}");
        }
        return ExitCodes.Success;
    }
}
