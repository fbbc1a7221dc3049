namespace Engine.Models.Text;

/// <summary>
/// GPT-2/CLIP byte-level alphabet: each byte is spelled as one printable character (printable
/// Latin-1 bytes as themselves, the others as U+0100 onwards in byte order). Microsoft.ML.Tokenizers
/// applies it when encoding; decoding needs the way back.
/// </summary>
internal static class ByteLevel
{
    private static readonly Dictionary<char, byte> Decoder = Build();

    public static bool TryDecode(char c, out byte value) => Decoder.TryGetValue(c, out value);

    private static Dictionary<char, byte> Build()
    {
        var map = new Dictionary<char, byte>(256);
        int next = 0;
        for (int b = 0; b < 256; b++)
        {
            bool printable = b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
            map[printable ? (char)b : (char)(256 + next++)] = (byte)b;
        }
        return map;
    }
}
