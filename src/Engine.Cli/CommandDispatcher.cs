using System.CommandLine;
using System.CommandLine.Completions;
using System.CommandLine.Invocation;
using System.CommandLine.Help;
using Engine.Cli.Commands;

namespace Engine.Cli;

/// <summary>
/// Parses the command line with System.CommandLine and runs the chosen command: <c>--help</c> (or
/// <c>-h</c>) anywhere shows help, <c>--version</c> the version, the <c>[suggest]</c> directive lists
/// completions; usage errors print one line naming the command to stderr and return 2, failures print a
/// one-line message to stderr and return 1, cancellation returns 130.
/// </summary>
public static class CommandDispatcher
{
    /// <summary>Every command, in help order.</summary>
    public static IReadOnlyList<EngineCommand> Commands { get; } =
    [
        new GenerateCommand(), new BatchCommand(), new EvalCommand(), new SamplersCommand(), new InfoCommand(),
        new InspectCommand(), new ConvertCommand(), new SolverBenchCommand(), new ForwardCommand(), new NoiseCommand(), new TokenizeCommand(),
    ];

    private static HelpWriter Help { get; } = new(Commands);

    /// <summary>The tool's root command: every command, <c>--help</c>, <c>--version</c> and the <c>[suggest]</c> directive.</summary>
    public static RootCommand Root { get; } = BuildRoot();

    /// <summary>Runs the command line; returns the exit code.</summary>
    public static int Run(IReadOnlyList<string> args, TextWriter output, TextWriter error) =>
        Run(args, output, error, CancellationToken.None);

    /// <summary>
    /// Runs the command line with a cancellation token; <paramref name="interactive"/> allows a live
    /// progress bar on the console (only when <paramref name="output"/> is the console).
    /// </summary>
    public static int Run(IReadOnlyList<string> args, TextWriter output, TextWriter error, CancellationToken cancellation, bool interactive = false)
    {
        if (args.Count == 0 || args is ["help"])
        {
            Help.Write(Root, output);
            return args.Count == 0 ? ExitCodes.Usage : ExitCodes.Success;
        }
        var parse = Root.Parse(args);
        // The [suggest] directive (shell completion) takes the rest of the line as the text to complete.
        if (parse.GetResult(Root.Directives.OfType<SuggestDirective>().Single()) is not null) return Invoke(parse, output, error);
        var command = Commands.FirstOrDefault(c => ReferenceEquals(c.Definition, parse.CommandResult.Command));
        if (command is null && parse.UnmatchedTokens is [var word, ..])
        {
            error.WriteLine($"engine: unknown command '{word}'.");
            Help.Write(Root, error);
            return ExitCodes.Usage;
        }
        if (parse.Errors.Count > 0)
        {
            error.WriteLine($"engine{(command is null ? "" : " " + command.Name)}: {UsageErrors.Describe(parse)}");
            if (command is null) Help.Write(Root, error);
            return ExitCodes.Usage;
        }
        // --help and --version.
        if (parse.Action is not null) return Invoke(parse, output, error);
        if (command is null)
        {
            Help.Write(Root, error);
            return ExitCodes.Usage;
        }
        if (command.MissingOption(parse) is { } missing)
        {
            error.WriteLine($"engine {command.Name}: {missing}");
            return ExitCodes.Usage;
        }
        var context = new CommandContext(output, error, cancellation, interactive && ReferenceEquals(output, Console.Out));
        try
        {
            return command.Run(parse, context);
        }
        catch (UsageException e)
        {
            error.WriteLine($"engine {e.Message}");
            return ExitCodes.Usage;
        }
        catch (OperationCanceledException) when (cancellation.IsCancellationRequested)
        {
            error.WriteLine($"engine {command.Name}: cancelled; files written so far are complete.");
            return ExitCodes.Cancelled;
        }
        catch (Exception e)
        {
            return Fail(command.Name, e, error);
        }
    }

    // Any failure of a command is one line and exit 1. An allocation that failed mid-run (never left to
    // abort the process) says what ran out; a refusal made before any work (MemoryBudget) says so itself.
    internal static int Fail(string command, Exception e, TextWriter error)
    {
        string message = e is OutOfMemoryException && !e.Message.StartsWith("out of memory", StringComparison.Ordinal)
            ? $"out of memory: {e.Message} Lower --batch, the image size or the count."
            : e is ArgumentException a ? WithoutParameterSuffix(a) : e.Message;
        error.WriteLine($"engine {command}: {message}");
        return ExitCodes.Failure;
    }

    // ArgumentException appends " (Parameter 'x')" and, out of range, "Actual value was v.": C# names, not the user's.
    private static string WithoutParameterSuffix(ArgumentException e)
    {
        string text = e.Message;
        if (e is ArgumentOutOfRangeException { ActualValue: not null } && text.LastIndexOf(Environment.NewLine + "Actual value was ", StringComparison.Ordinal) is > 0 and var at) text = text[..at];
        if (e.ParamName is { } name && text.EndsWith($" (Parameter '{name}')", StringComparison.Ordinal)) text = text[..^$" (Parameter '{name}')".Length];
        return text;
    }

    // Runs a System.CommandLine action with the caller's writers; Program handles Ctrl+C itself.
    private static int Invoke(ParseResult parse, TextWriter output, TextWriter error) =>
        parse.Invoke(new InvocationConfiguration { Output = output, Error = error, EnableDefaultExceptionHandler = false, ProcessTerminationTimeout = null });

    private static RootCommand BuildRoot()
    {
        var root = new RootCommand("diffusion inference from the command line");
        foreach (var command in Commands) root.Subcommands.Add(command.Definition);
        foreach (var option in root.Options)
        {
            if (option is HelpOption) option.Action = Help;
            if (option is VersionOption) option.Action = new VersionWriter();
        }
        return root;
    }

    private sealed class VersionWriter : SynchronousCommandLineAction
    {
        public override int Invoke(ParseResult parseResult)
        {
            parseResult.InvocationConfiguration.Output.WriteLine($"engine {EngineVersion.Text}");
            return ExitCodes.Success;
        }
    }
}
