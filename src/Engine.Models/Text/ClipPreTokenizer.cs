using System.Globalization;
using System.Text;

namespace Engine.Models.Text;

/// <summary>
/// Splits cleaned text into the words CLIP's BPE runs on, as its regex
/// <c>&lt;\|startoftext\|&gt;|&lt;\|endoftext\|&gt;|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+</c>
/// (case-insensitive) matches left to right. Scanning code points rather than using .NET's
/// <see cref="System.Text.RegularExpressions.Regex"/> keeps letters and digits outside the BMP
/// (CJK Extension B, mathematical alphanumerics) in their classes: .NET's <c>\p{L}</c> sees two surrogates.
/// </summary>
internal static class ClipPreTokenizer
{
    /// <summary>The literal special tokens the regex keeps whole.</summary>
    public static readonly string[] SpecialLiterals = ["<|startoftext|>", "<|endoftext|>"];

    private static readonly string[] Contractions = ["s", "t", "re", "ve", "m", "ll", "d"];

    public static List<string> Split(string text)
    {
        var words = new List<string>();
        int i = 0;
        while (i < text.Length)
        {
            int length = MatchAt(text, i);
            if (length == 0) { i += Rune.GetRuneAt(text, i).Utf16SequenceLength; continue; }
            words.Add(text.Substring(i, length));
            i += length;
        }
        return words;
    }

    // Length (UTF-16 units) of the first alternative that matches at i; 0 for whitespace, which no alternative matches.
    private static int MatchAt(string text, int i)
    {
        foreach (var literal in SpecialLiterals)
            if (text.AsSpan(i).StartsWith(literal, StringComparison.Ordinal))
                return literal.Length;

        if (text[i] == '\'')
            foreach (var suffix in Contractions)
                if (MatchesIgnoreCase(text, i + 1, suffix)) return 1 + suffix.Length;

        var first = Rune.GetRuneAt(text, i);
        var kind = Classify(first);
        if (kind == CharClass.Space) return 0;
        if (kind == CharClass.Number) return first.Utf16SequenceLength;

        // A run of letters, or a run of "anything but whitespace, letters and digits".
        int j = i;
        while (j < text.Length)
        {
            var r = Rune.GetRuneAt(text, j);
            if (Classify(r) != kind) break;
            j += r.Utf16SequenceLength;
        }
        return j - i;
    }

    // Case-insensitive as the regex is: the only non-ASCII character that folds onto these suffixes is U+017F (long s).
    private static bool MatchesIgnoreCase(string text, int start, string suffix)
    {
        if (start + suffix.Length > text.Length) return false;
        for (int k = 0; k < suffix.Length; k++)
        {
            char c = text[start + k];
            char lower = char.ToLowerInvariant(c);
            if (lower != suffix[k] && !(suffix[k] == 's' && c == '\u017F')) return false;
        }
        return true;
    }

    private enum CharClass { Space, Letter, Number, Other }

    private static CharClass Classify(Rune r)
    {
        if (Rune.IsWhiteSpace(r)) return CharClass.Space;
        switch (Rune.GetUnicodeCategory(r))
        {
            case UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter
                or UnicodeCategory.ModifierLetter or UnicodeCategory.OtherLetter:
                return CharClass.Letter;
            case UnicodeCategory.DecimalDigitNumber or UnicodeCategory.LetterNumber or UnicodeCategory.OtherNumber:
                return CharClass.Number;
            default:
                return CharClass.Other;
        }
    }
}
