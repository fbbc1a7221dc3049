using System.CommandLine;
using System.CommandLine.Parsing;
using Engine.Core;
using Engine.Gpu;

namespace Engine.Cli;

/// <summary>
/// Makes the typed System.CommandLine options of the <c>engine</c> commands. Each option parses and
/// checks its own value (through <see cref="OptionValues"/>) while the command line is parsed, so a bad
/// value is a usage error naming the option before any model is loaded. Options without a value on the
/// command line read as null (flags as false; options of array type as an empty array, so test those
/// with <see cref="Has"/>); the command supplies its default.
/// </summary>
public static class CliOptions
{
    /// <summary>A text option (a path or a name).</summary>
    public static Option<string?> Text(string name, string helpName, string description) =>
        Parsed<string?>(name, helpName, description, text => text);

    /// <summary>
    /// A path option (FILE, DIR, ...): an empty or blank value is a usage error naming the option, not the
    /// working folder or a default.
    /// </summary>
    public static Option<string?> PathText(string name, string helpName, string description) =>
        Parsed<string?>(name, helpName, description, text => string.IsNullOrWhiteSpace(text)
            ? throw new FormatException($"{name} is empty; give {PathKind(helpName)}.")
            : text);

    // "a folder path" for DIR, "a file path" for FILE, both for DIR|FILE.
    private static string PathKind(string helpName) => (helpName.Contains("DIR"), helpName.Contains("FILE")) switch
    {
        (true, true) => "a folder or file path",
        (true, false) => "a folder path",
        _ => $"a file path ({helpName})",
    };

    /// <summary>An integer option in [min, max].</summary>
    public static Option<int?> Int(string name, string helpName, string description, int min = int.MinValue, int max = int.MaxValue) =>
        Parsed<int?>(name, helpName, description, text => OptionValues.ParseInt(text, name, min, max));

    /// <summary>A finite number option in [min, max].</summary>
    public static Option<double?> Number(string name, string helpName, string description, double min, double max) =>
        Parsed<double?>(name, helpName, description, text => OptionValues.ParseNumber(text, name, min, max));

    /// <summary>A non-negative 64-bit integer option (a seed).</summary>
    public static Option<ulong?> Seed(string name, string helpName, string description) =>
        Parsed<ulong?>(name, helpName, description, text => OptionValues.ParseSeed(text, name));

    /// <summary><c>--rng NAME</c>: the generator a seed drives (philox or torch), or null for the default (philox).</summary>
    public static Option<Engine.Sampling.Rng.RngKind?> Rng(string? description = null)
    {
        var option = Parsed<Engine.Sampling.Rng.RngKind?>("--rng", "NAME",
            description ?? "generator the seed drives: philox (default; the engine's batch-invariant stream) or torch (PyTorch's CPU generator, diffusers' noise for that seed)",
            text => Engine.Sampling.Rng.RngKinds.TryParse(text) ?? throw new FormatException($"--rng '{text}' must be one of {Engine.Sampling.Rng.RngKinds.Names}."));
        option.CompletionSources.Clear();
        option.CompletionSources.Add("philox", "torch");
        return option;
    }

    /// <summary><c>--eta G</c>: diffusers' <c>step(eta=...)</c> (DDIM's eta, TCD's gamma).</summary>
    public static Option<double?> Eta() => Number("--eta", "G",
        "diffusers' step(eta=...): DDIM's eta, TCD's gamma (default: the step's own, DDIM 0, TCD 0.3); " +
        "for other samplers generate ignores it with a warning, as diffusers' pipelines do, and solver-bench refuses it", 0, 1e6);

    /// <summary><c>--timesteps T1,T2,...</c>: diffusers' <c>set_timesteps(timesteps=[...])</c> for the schedulers that accept custom timesteps.</summary>
    public static Option<int[]?> Timesteps() => Parsed<int[]?>("--timesteps", "T1,T2,...",
        "custom timesteps, descending (diffusers' set_timesteps(timesteps=...)); LCM, TCD and DDPM accept them; their count is the step count",
        text => OptionValues.IntList(text, "--timesteps", 0));

    /// <summary><c>--device KIND</c>: a known device kind, or null for the default (also for <c>auto</c>).</summary>
    public static Option<string?> Device(string description)
    {
        var option = Parsed<string?>("--device", "KIND", description, OptionValues.ParseDevice);
        option.CompletionSources.Add([.. DeviceFactory.Kinds, "auto"]);
        return option;
    }

    /// <summary><c>--compute MODE</c>: the input precision of GEMMs and convolutions (f32, bf16 or auto).</summary>
    public static Option<ComputeMode?> Compute() =>
        Parsed<ComputeMode?>("--compute", "MODE",
            "precision of GEMM and convolution inputs: f32 (default), bf16 (float32 accumulation, norms and softmax; CPUs with AVX512-BF16) or auto (bf16 where available and faster)",
            text => OptionValues.ParseComputeMode(text, "--compute"));

    /// <summary>Sets <paramref name="device"/>'s compute precision for <paramref name="mode"/>; a precision it lacks is a usage error naming the option.</summary>
    public static void ApplyCompute(Device device, ComputeMode mode, string command)
    {
        try { device.Compute = device.Resolve(mode); }
        catch (NotSupportedException e) { throw new UsageException($"{command}: --compute {mode.ToString().ToLowerInvariant()}: {e.Message}"); }
    }

    /// <summary><c>--weights TYPE</c>: the storage of Linear/Conv2d weights (f32, f16 or bf16).</summary>
    public static Option<DType?> Weights(string description)
    {
        var option = Parsed<DType?>("--weights", "TYPE", description, text => OptionValues.ParseWeightStorage(text, "--weights"));
        option.CompletionSources.Clear(); // not every DType member, only the storage names
        option.CompletionSources.Add(DTypeExtensions.StorageNames.Split(',', StringSplitOptions.TrimEntries));
        return option;
    }

    /// <summary><c>--precision TYPE</c>: the storage of the networks' activations (f32, f16 or bf16).</summary>
    public static Option<DType?> Precision(string description)
    {
        var option = Parsed<DType?>("--precision", "TYPE", description, text => OptionValues.ParsePrecision(text, "--precision"));
        option.CompletionSources.Clear();
        option.CompletionSources.Add(DTypeExtensions.StorageNames.Split(',', StringSplitOptions.TrimEntries));
        return option;
    }

    /// <summary>An option whose single value <paramref name="parse"/> turns into a <typeparamref name="T"/>; it throws <see cref="FormatException"/> for a bad value.</summary>
    public static Option<T> Parsed<T>(string name, string helpName, string description, Func<string, T> parse) => new(name)
    {
        HelpName = helpName,
        Description = description,
        CustomParser = result => result.Tokens.Count switch
        {
            1 => ParseToken(result, name, result.Tokens[0].Value, parse),
            0 => NoValue<T>(result, name),
            _ => default!, // given twice: the parser reports it
        },
    };

    /// <summary>An option that may be given several times, one value each time; the values in command-line order (empty when absent).</summary>
    public static Option<List<T>> Repeatable<T>(string name, string helpName, string description, Func<string, T> parse) => new(name)
    {
        HelpName = helpName,
        Description = description,
        Arity = ArgumentArity.OneOrMore,
        DefaultValueFactory = _ => [],
        // Fewer values than times given: one of them ("--run a:1 --run") has none.
        CustomParser = result => result.Tokens.Count == 0 || result.Parent is OptionResult { IdentifierTokenCount: var given } && given > result.Tokens.Count
            ? NoValue<List<T>>(result, name)
            : result.Tokens.Select(t => ParseToken(result, name, t.Value, parse)).ToList(),
    };

    /// <summary>A switch without a value.</summary>
    public static Option<bool> Flag(string name, string description) => new(name) { Description = description };

    /// <summary>
    /// An optional positional argument (a file name). A word that looks like an option is reported as
    /// an unknown option rather than taken as the file name.
    /// </summary>
    public static Argument<string?> Positional(string helpName, string description)
    {
        var argument = new Argument<string?>(helpName) { Description = description, Arity = ArgumentArity.ZeroOrOne };
        argument.Validators.Add(result =>
        {
            if (result.Tokens is [var token] && LooksLikeOption(token.Value)) result.AddError($"unknown option '{OptionName(token.Value)}'.");
            else if (result.Tokens is [var blank] && string.IsNullOrWhiteSpace(blank.Value)) result.AddError($"the {helpName} argument is empty; give a path.");
        });
        return argument;
    }

    /// <summary>Whether <paramref name="option"/> was given on the command line.</summary>
    public static bool Has(this ParseResult parse, Option option) => parse.GetResult(option) is { Implicit: false };

    /// <summary>The names of the options given on the command line, in order.</summary>
    public static IReadOnlyList<string> GivenOptions(this ParseResult parse) =>
        parse.CommandResult.Children.OfType<OptionResult>().Where(r => !r.Implicit).Select(r => r.Option.Name).ToList();

    /// <summary>Whether a word is meant as an option name: it starts with '-' and is neither "-" nor a number.</summary>
    public static bool LooksLikeOption(string word) =>
        word.StartsWith('-') && word != "-" && !double.TryParse(word, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out _);

    /// <summary>The option name of a word such as <c>--steps=5</c>.</summary>
    public static string OptionName(string word) => word.IndexOf('=') is > 2 and var eq && word.StartsWith("--", StringComparison.Ordinal) ? word[..eq] : word;

    private static T NoValue<T>(ArgumentResult result, string name)
    {
        result.AddError($"option {name} needs a value.");
        return default!;
    }

    private static T ParseToken<T>(ArgumentResult result, string name, string text, Func<string, T> parse)
    {
        // "--out --steps 3": the next word is another option, so --out has no value (it is not the folder "--steps").
        if (text.StartsWith("--", StringComparison.Ordinal)) return NoValue<T>(result, name);
        try { return parse(text); }
        catch (FormatException e)
        {
            result.AddError(e.Message);
            return default!;
        }
    }
}
