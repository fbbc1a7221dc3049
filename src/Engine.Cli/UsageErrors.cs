using System.CommandLine;
using System.CommandLine.Parsing;

namespace Engine.Cli;

/// <summary>
/// Turns System.CommandLine's parse errors into the tool's one-line usage messages: an option's own
/// value error (as <see cref="CliOptions"/> words it), "option --x needs a value", "option --x is given
/// twice", "unknown option '--x'" or "unexpected argument 'x'", else the first error as reported.
/// </summary>
public static class UsageErrors
{
    /// <summary>The message for the first problem of <paramref name="parse"/>, which has errors.</summary>
    public static string Describe(ParseResult parse)
    {
        foreach (var error in parse.Errors)
        {
            if (error.SymbolResult is not OptionResult option) continue;
            bool repeatable = option.Option.ValueType != typeof(string) && option.Option.ValueType.IsAssignableTo(typeof(System.Collections.IEnumerable));
            if (option.Tokens.Count == 0 && option.Option.ValueType != typeof(bool)) return $"option {option.Option.Name} needs a value.";
            if (option.Tokens.Count > 1 && !repeatable) return $"option {option.Option.Name} is given twice.";
            return error.Message;
        }
        if (parse.UnmatchedTokens is [var word, ..])
            return CliOptions.LooksLikeOption(word) ? $"unknown option '{CliOptions.OptionName(word)}'." : $"unexpected argument '{word}'.";
        return parse.Errors[0].Message;
    }
}
