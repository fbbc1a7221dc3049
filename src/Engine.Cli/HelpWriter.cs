using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Invocation;
using System.Text;

namespace Engine.Cli;

/// <summary>
/// Writes <c>--help</c>: a command's synopsis and explanatory paragraphs, then its arguments and options
/// listed from their System.CommandLine declarations (name, value name, description); for the tool
/// itself, the command list. Installed as the action of the root's <c>--help</c> option.
/// </summary>
public sealed class HelpWriter(IReadOnlyList<EngineCommand> commands) : SynchronousCommandLineAction
{
    /// <summary>Width the second column wraps at.</summary>
    public const int Width = 118;

    /// <summary>The closing lines of the tool's help.</summary>
    public const string Epilogue =
        "Run 'engine <command> --help' for the options of a command; 'engine --version' prints the version.\n" +
        "Shell completion: see the Command line section of README.md.";

    /// <inheritdoc />
    public override bool ClearsParseErrors => true;

    /// <summary>Writes the help of the command the parse ended on.</summary>
    public override int Invoke(ParseResult parseResult)
    {
        Write(parseResult.CommandResult.Command, parseResult.InvocationConfiguration.Output);
        return ExitCodes.Success;
    }

    /// <summary>Writes the help of <paramref name="command"/> (for the root command, the tool's help).</summary>
    public void Write(Command command, TextWriter output)
    {
        var text = new StringBuilder();
        var help = new[] { ("-h, --help", "show this help") };
        if (commands.FirstOrDefault(c => ReferenceEquals(c.Definition, command)) is { } own)
        {
            text.Append(own.Usage.TrimEnd()).Append('\n');
            if (own.Details.Trim().Length > 0) text.Append('\n').Append(own.Details.TrimEnd()).Append('\n');
            Section(text, "Arguments:", command.Arguments.Select(a => ($"<{a.Name}>", a.Description ?? "")));
            Section(text, "Options:", command.Options.Select(o => (Label(o), o.Description ?? "")).Concat(help));
        }
        else
        {
            text.Append("usage: engine <command> [options]\n");
            Section(text, "Commands:", commands.Select(c => (c.Name, c.Summary)));
            Section(text, "Options:", help.Append(("--version", "print the version")));
            text.Append('\n').Append(Epilogue).Append('\n');
        }
        output.Write(text.ToString().ReplaceLineEndings(output.NewLine));
    }

    private static string Label(Option option) =>
        option.ValueType == typeof(bool) ? option.Name : $"{option.Name} <{option.HelpName ?? "VALUE"}>";

    // Two columns: the names, padded to the longest, then the description wrapped at Width.
    private static void Section(StringBuilder text, string title, IEnumerable<(string Name, string Description)> rows)
    {
        var list = rows.ToList();
        if (list.Count == 0) return;
        text.Append('\n').Append(title).Append('\n');
        int column = list.Max(r => r.Name.Length) + 4;
        foreach (var (name, description) in list)
        {
            var line = new StringBuilder("  ").Append(name.PadRight(column - 2));
            foreach (var word in description.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            {
                if (line.Length + 1 + word.Length > Width && line.Length > column)
                {
                    text.Append(line.ToString().TrimEnd()).Append('\n');
                    line.Clear().Append(' ', column);
                }
                else if (line.Length > column) line.Append(' ');
                line.Append(word);
            }
            text.Append(line.ToString().TrimEnd()).Append('\n');
        }
    }
}
