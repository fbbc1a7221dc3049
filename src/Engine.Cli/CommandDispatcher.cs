using Engine.Cli.Commands;

namespace Engine.Cli;

/// <summary>
/// Chooses the command from the first argument and runs it: <c>--help</c> anywhere shows help, usage
/// errors print to stderr and return 2, failures print a one-line message to stderr and return 1,
/// cancellation returns 130.
/// </summary>
public static class CommandDispatcher
{
    /// <summary>Every command, by name.</summary>
    public static IReadOnlyList<ICommand> Commands { get; } =
    [
        new GenerateCommand(), new BatchCommand(), new EvalCommand(), new SamplersCommand(), new InfoCommand(),
        new InspectCommand(), new SolverBenchCommand(), new ForwardCommand(),
    ];

    /// <summary>Runs the command line; returns the exit code.</summary>
    public static int Run(IReadOnlyList<string> args, TextWriter output, TextWriter error) =>
        Run(args, output, error, CancellationToken.None);

    /// <summary>
    /// Runs the command line with a cancellation token; <paramref name="interactive"/> allows a live
    /// progress bar on the console (only when <paramref name="output"/> is the console).
    /// </summary>
    public static int Run(IReadOnlyList<string> args, TextWriter output, TextWriter error, CancellationToken cancellation, bool interactive = false)
    {
        if (args.Count == 0 || args[0] is "--help" or "-h" or "help")
        {
            output.WriteLine(GeneralHelp());
            return args.Count == 0 ? ExitCodes.Usage : ExitCodes.Success;
        }
        if (args[0] is "--version")
        {
            output.WriteLine($"engine {EngineVersion.Text}");
            return ExitCodes.Success;
        }
        var command = Commands.FirstOrDefault(c => c.Name == args[0]);
        if (command is null)
        {
            error.WriteLine($"engine: unknown command '{args[0]}'.");
            error.WriteLine(GeneralHelp());
            return ExitCodes.Usage;
        }
        var rest = args.Skip(1).ToList();
        if (rest.Contains("--help") || rest.Contains("-h"))
        {
            output.WriteLine(command.Help);
            return ExitCodes.Success;
        }
        var context = new CommandContext(output, error, cancellation, interactive && ReferenceEquals(output, Console.Out));
        try
        {
            var parsed = CommandArguments.Parse(rest, command.Options, ["--help", .. command.Flags], command.Name, command.RepeatableOptions, command.MaxPositionals);
            return command.Run(parsed, context);
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
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            error.WriteLine($"engine {command.Name}: {e.Message}");
            return ExitCodes.Failure;
        }
    }

    private static string GeneralHelp() =>
        "usage: engine <command> [options]\n\ncommands:\n" +
        string.Join("\n", Commands.Select(c => $"  {c.Name,-13} {c.Summary}")) +
        "\n\nRun 'engine <command> --help' for the options of a command; 'engine --version' prints the version.";
}
