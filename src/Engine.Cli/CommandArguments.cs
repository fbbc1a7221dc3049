namespace Engine.Cli;

/// <summary>
/// Parsed <c>--name value</c> options and <c>--flag</c> switches of one command. Every option must be
/// known to the command; unknown, repeated or value-less options are usage errors.
/// </summary>
public sealed class CommandArguments
{
    private readonly Dictionary<string, string?> _values = new(StringComparer.Ordinal);

    private CommandArguments() { }

    /// <summary>Parses <paramref name="args"/> given the options that take a value and the flags.</summary>
    public static CommandArguments Parse(IReadOnlyList<string> args, IReadOnlyCollection<string> valueOptions, IReadOnlyCollection<string> flags, string command)
    {
        var result = new CommandArguments();
        for (int i = 0; i < args.Count; i++)
        {
            string a = args[i];
            string name = a, inlineValue = "";
            bool hasInline = false;
            int eq = a.IndexOf('=');
            if (a.StartsWith("--", StringComparison.Ordinal) && eq > 2) { name = a[..eq]; inlineValue = a[(eq + 1)..]; hasInline = true; }
            if (name is "-h") name = "--help";
            if (flags.Contains(name))
            {
                if (hasInline) throw new UsageException($"{command}: option {name} takes no value.");
                result._values[name] = null;
                continue;
            }
            if (!valueOptions.Contains(name))
                throw new UsageException(a.StartsWith('-') ? $"{command}: unknown option '{name}'." : $"{command}: unexpected argument '{a}'.");
            if (result._values.ContainsKey(name)) throw new UsageException($"{command}: option {name} is given twice.");
            if (!hasInline)
            {
                if (i + 1 >= args.Count || args[i + 1].StartsWith("--", StringComparison.Ordinal)) throw new UsageException($"{command}: option {name} needs a value.");
                inlineValue = args[++i];
            }
            result._values[name] = inlineValue;
        }
        return result;
    }

    /// <summary>Whether a flag or option was given.</summary>
    public bool Has(string name) => _values.ContainsKey(name);

    /// <summary>The value of an option, or null.</summary>
    public string? Get(string name) => _values.TryGetValue(name, out var v) ? v : null;

    /// <summary>The value of a required option.</summary>
    public string Require(string name, string command) =>
        Get(name) is { Length: > 0 } v ? v : throw new UsageException($"{command}: option {name} is required (see 'engine {command} --help').");
}
