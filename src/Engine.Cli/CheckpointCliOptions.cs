using System.CommandLine;
using Engine.Generation.Checkpoints;

namespace Engine.Cli;

/// <summary>
/// The options that say how a single-file checkpoint given as <c>--model</c> is read: <c>--config DIR</c>,
/// <c>--prediction-type</c> and <c>--vae DIR|FILE</c>, mapped onto <see cref="CheckpointOptions"/>.
/// </summary>
public sealed class CheckpointCliOptions
{
    /// <summary><c>--config DIR</c>.</summary>
    public Option<string?> Config { get; } = CliOptions.PathText("--config", "DIR",
        "single-file --model: take configs, tokenizers and the scheduler from this diffusers pipeline folder instead of the inferred stock ones");

    /// <summary><c>--prediction-type TYPE</c>.</summary>
    public Option<string?> PredictionType { get; } = WithValues(CliOptions.Text("--prediction-type", "TYPE",
        "single-file --model: epsilon, v_prediction or sample, instead of the inferred one (SD 2.x files default to v_prediction)"));

    /// <summary><c>--vae DIR|FILE</c>.</summary>
    public Option<string?> Vae { get; } = CliOptions.PathText("--vae", "DIR|FILE",
        "single-file --model: replace its VAE with a diffusers VAE folder or a VAE safetensors file");

    /// <summary>The options in help order.</summary>
    public IEnumerable<Option> All => [Config, PredictionType, Vae];

    /// <summary>The checkpoint options given, with full paths; null when none is given. Errors name the option.</summary>
    public CheckpointOptions? Read(ParseResult parse, string command)
    {
        var options = new CheckpointOptions
        {
            ConfigFolder = parse.GetValue(Config) is { } c ? Path.GetFullPath(c) : null,
            PredictionType = parse.GetValue(PredictionType),
            Vae = parse.GetValue(Vae) is { } v ? Path.GetFullPath(v) : null,
        };
        if (options.IsEmpty) return null;
        try { options.Validate(); }
        catch (ArgumentException e) { throw new UsageException($"{command}: {e.Message}"); }
        return options;
    }

    private static Option<string?> WithValues(Option<string?> option)
    {
        option.CompletionSources.Add([.. CheckpointOptions.PredictionTypes]);
        return option;
    }
}
