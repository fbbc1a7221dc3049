using System.CommandLine;

namespace Engine.Cli;

/// <summary>
/// One <c>engine</c> sub-command: its name, help text and System.CommandLine options, and what it does
/// with a parsed command line. The options parse and check their own values; <see cref="Run"/> runs
/// only on a command line without parse errors.
/// </summary>
public abstract class EngineCommand
{
    private Command? _definition;

    /// <summary>The word that selects it, e.g. <c>forward</c>.</summary>
    public abstract string Name { get; }

    /// <summary>One line for the command list.</summary>
    public abstract string Summary { get; }

    /// <summary>The synopsis that opens its help: one or more lines starting <c>usage: engine NAME</c>.</summary>
    public abstract string Usage { get; }

    /// <summary>The paragraphs of its help between the synopsis and the option list (empty when none).</summary>
    public virtual string Details => "";

    /// <summary>Its options and positional arguments, in help order.</summary>
    protected abstract IEnumerable<Symbol> Symbols { get; }

    /// <summary>Options that must be given; a command line without one is a usage error naming it.</summary>
    protected virtual IEnumerable<Option> RequiredOptions => [];

    /// <summary>The System.CommandLine command (built once).</summary>
    public Command Definition => _definition ??= Build();

    /// <summary>Names of the options that take a value, e.g. <c>--model</c>.</summary>
    public IReadOnlyCollection<string> Options => Definition.Options.Where(o => o.ValueType != typeof(bool)).Select(o => o.Name).ToList();

    /// <summary>Names of the switches without a value (<c>--help</c>, accepted everywhere, is not listed).</summary>
    public IReadOnlyCollection<string> Flags => Definition.Options.Where(o => o.ValueType == typeof(bool)).Select(o => o.Name).ToList();

    /// <summary>
    /// The usage error for the first required option missing from <paramref name="parse"/>, or null.
    /// Checked after parsing rather than as a command validator, whose error would hide the option's own
    /// ("option --model needs a value").
    /// </summary>
    public string? MissingOption(ParseResult parse) =>
        RequiredOptions.FirstOrDefault(o => !parse.Has(o)) is { } missing ? $"option {missing.Name} is required (see 'engine {Name} --help')." : null;

    /// <summary>Runs on a parsed command line without errors; throws <see cref="UsageException"/> for a wrong combination of options.</summary>
    public abstract int Run(ParseResult parse, CommandContext context);

    private Command Build()
    {
        var command = new Command(Name, Summary);
        foreach (var symbol in Symbols)
        {
            switch (symbol)
            {
                case Option option: command.Options.Add(option); break;
                case Argument argument: command.Arguments.Add(argument); break;
                default: throw new InvalidOperationException($"{Name}: {symbol.GetType().Name} is neither an option nor an argument.");
            }
        }
        return command;
    }
}
