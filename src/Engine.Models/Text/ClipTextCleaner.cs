using System.Globalization;
using System.Text;

namespace Engine.Models.Text;

/// <summary>
/// The text cleaning of transformers' <c>CLIPTokenizer</c> when ftfy is not installed (the usual
/// setup, and what the fixtures were made with): its <c>BasicTokenizer</c> with lower-casing, accents
/// kept and no punctuation split. Control and format characters are dropped, whitespace becomes a
/// space, CJK ideographs are spaced apart, the text is NFC-normalised, split on whitespace, each piece
/// lower-cased as Python's <c>str.lower</c> does, and the pieces are joined with single spaces.
/// No HTML unescaping: "&amp;amp;" stays as written.
/// </summary>
internal static class ClipTextCleaner
{
    public static string Clean(string text)
    {
        var sb = new StringBuilder(text.Length + 8);
        foreach (var rune in text.EnumerateRunes())
        {
            int cp = rune.Value;
            // Unpaired surrogates enumerate as U+FFFD, which Python's cleaning drops as well (category Cs).
            if (cp == 0 || cp == 0xFFFD) continue;
            if (IsWhitespace(rune)) { sb.Append(' '); continue; }
            if (IsControl(rune)) continue;
            if (IsCjkIdeograph(cp)) sb.Append(' ').Append(rune.ToString()).Append(' ');
            else sb.Append(rune.ToString());
        }

        var normalized = UnicodeNfc.Normalize(sb.ToString());
        var pieces = normalized.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
        for (int i = 0; i < pieces.Length; i++) pieces[i] = PythonLower(pieces[i]);
        return string.Join(' ', pieces);
    }

    private static bool IsWhitespace(Rune r) =>
        r.Value is ' ' or '\t' or '\n' or '\r' || Rune.GetUnicodeCategory(r) == UnicodeCategory.SpaceSeparator;

    // Category C* (Cc, Cf, Cs, Co, Cn); tab, newline and carriage return were taken as whitespace above.
    private static bool IsControl(Rune r) => Rune.GetUnicodeCategory(r) is
        UnicodeCategory.Control or UnicodeCategory.Format or UnicodeCategory.Surrogate
        or UnicodeCategory.PrivateUse or UnicodeCategory.OtherNotAssigned;

    // The blocks BERT's BasicTokenizer treats as CJK ideographs (not Hiragana, Katakana or Hangul).
    private static bool IsCjkIdeograph(int cp) =>
        cp is >= 0x4E00 and <= 0x9FFF or >= 0x3400 and <= 0x4DBF or >= 0x20000 and <= 0x2A6DF
            or >= 0x2A700 and <= 0x2B73F or >= 0x2B740 and <= 0x2B81F or >= 0x2B820 and <= 0x2CEAF
            or >= 0xF900 and <= 0xFAFF or >= 0x2F800 and <= 0x2FA1F;

    /// <summary>
    /// Python's <c>str.lower</c>: full lower-case mapping. Beyond the simple per-character mapping that
    /// is U+0130 (dotted capital I, "i" + combining dot; .NET's invariant casing leaves it unchanged)
    /// and the final-sigma rule (a capital sigma ending a word becomes "ς").
    /// </summary>
    public static string PythonLower(string piece)
    {
        var runes = piece.EnumerateRunes().ToArray();
        var sb = new StringBuilder(piece.Length);
        for (int i = 0; i < runes.Length; i++)
        {
            var r = runes[i];
            if (r.Value == 0x130) sb.Append("i\u0307");
            else if (r.Value == 0x3A3) sb.Append(IsFinalSigma(runes, i) ? 'ς' : 'σ');
            else sb.Append(Rune.ToLowerInvariant(r).ToString());
        }
        return sb.ToString();
    }

    // Unicode's Final_Sigma condition: a cased letter before (skipping case-ignorable characters) and none after.
    private static bool IsFinalSigma(Rune[] runes, int index)
    {
        int j = index - 1;
        while (j >= 0 && IsCaseIgnorable(runes[j])) j--;
        if (j < 0 || !IsCased(runes[j])) return false;
        j = index + 1;
        while (j < runes.Length && IsCaseIgnorable(runes[j])) j++;
        return j == runes.Length || !IsCased(runes[j]);
    }

    private static bool IsCased(Rune r) => Rune.GetUnicodeCategory(r) is
        UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter;

    private static bool IsCaseIgnorable(Rune r) =>
        r.Value is '\'' or '.' or ':' or '^' or '`' or 0xB7 or 0x2018 or 0x2019 or 0x2024 or 0xFE52 or 0xFF07 or 0xFF0E
        || Rune.GetUnicodeCategory(r) is UnicodeCategory.NonSpacingMark or UnicodeCategory.EnclosingMark
            or UnicodeCategory.Format or UnicodeCategory.ModifierLetter or UnicodeCategory.ModifierSymbol;
}
