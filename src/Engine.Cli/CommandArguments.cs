namespace Engine.Cli;

/// <summary>
/// Parsed <c>--name value</c> options, <c>--flag</c> switches and positional arguments of one
/// command. Every option must be known to the command; unknown, value-less or (unless repeatable)
/// repeated options are usage errors, as are more positional arguments than the command takes.
/// </summary>
public sealed class CommandArguments
{
    private readonly Dictionary<string, List<string?>> _values = new(StringComparer.Ordinal);
    private readonly List<string> _positionals = [];

    private CommandArguments() { }

    /// <summary>Parses <paramref name="args"/> given the options that take a value and the flags.</summary>
    public static CommandArguments Parse(IReadOnlyList<string> args, IReadOnlyCollection<string> valueOptions, IReadOnlyCollection<string> flags, string command) =>
        Parse(args, valueOptions, flags, command, [], 0);

    /// <summary>
    /// Parses <paramref name="args"/>; options in <paramref name="repeatable"/> may appear several
    /// times and up to <paramref name="maxPositionals"/> arguments may stand without an option name.
    /// </summary>
    public static CommandArguments Parse(IReadOnlyList<string> args, IReadOnlyCollection<string> valueOptions, IReadOnlyCollection<string> flags, string command,
        IReadOnlyCollection<string> repeatable, int maxPositionals)
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
                if (result._values.ContainsKey(name)) throw new UsageException($"{command}: option {name} is given twice.");
                result._values[name] = [null];
                continue;
            }
            if (!valueOptions.Contains(name))
            {
                if (!a.StartsWith('-') || a == "-" || IsNumber(a))
                {
                    if (result._positionals.Count >= maxPositionals) throw new UsageException($"{command}: unexpected argument '{a}'.");
                    result._positionals.Add(a);
                    continue;
                }
                throw new UsageException($"{command}: unknown option '{name}'.");
            }
            if (result._values.ContainsKey(name) && !repeatable.Contains(name)) throw new UsageException($"{command}: option {name} is given twice.");
            if (!hasInline)
            {
                if (i + 1 >= args.Count || args[i + 1].StartsWith("--", StringComparison.Ordinal)) throw new UsageException($"{command}: option {name} needs a value.");
                inlineValue = args[++i];
            }
            if (!result._values.TryGetValue(name, out var list)) result._values[name] = list = [];
            list.Add(inlineValue);
        }
        return result;
    }

    private static bool IsNumber(string s) => double.TryParse(s, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out _);

    /// <summary>Whether a flag or option was given.</summary>
    public bool Has(string name) => _values.ContainsKey(name);

    /// <summary>The value of an option (the last one of a repeatable option), or null.</summary>
    public string? Get(string name) => _values.TryGetValue(name, out var v) ? v[^1] : null;

    /// <summary>Every value of a repeatable option, in command-line order (empty when absent).</summary>
    public IReadOnlyList<string> GetAll(string name) => _values.TryGetValue(name, out var v) ? v.Where(x => x is not null).Select(x => x!).ToList() : [];

    /// <summary>The positional arguments, in order.</summary>
    public IReadOnlyList<string> Positionals => _positionals;

    /// <summary>Names of the options and flags that were given.</summary>
    public IEnumerable<string> Given => _values.Keys;

    /// <summary>The value of a required option.</summary>
    public string Require(string name, string command) =>
        Get(name) is { Length: > 0 } v ? v : throw new UsageException($"{command}: option {name} is required (see 'engine {command} --help').");
}
