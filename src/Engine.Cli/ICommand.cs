namespace Engine.Cli;

/// <summary>One <c>engine</c> sub-command.</summary>
public interface ICommand
{
    /// <summary>The word that selects it, e.g. <c>forward</c>.</summary>
    string Name { get; }

    /// <summary>One line for the command list.</summary>
    string Summary { get; }

    /// <summary>Full help text (usage and options).</summary>
    string Help { get; }

    /// <summary>The options that take a value, e.g. <c>--model</c>.</summary>
    IReadOnlyCollection<string> Options { get; }

    /// <summary>Options among <see cref="Options"/> that may be given more than once (their values are collected in order).</summary>
    IReadOnlyCollection<string> RepeatableOptions => [];

    /// <summary>Switches without a value (<c>--help</c> is always accepted).</summary>
    IReadOnlyCollection<string> Flags => [];

    /// <summary>How many positional arguments (such as a file name) the command takes.</summary>
    int MaxPositionals => 0;

    /// <summary>Runs with the arguments after the command name; throws <see cref="UsageException"/> for a wrong command line.</summary>
    int Run(CommandArguments args, CommandContext context);
}
