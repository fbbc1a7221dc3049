using System.Text.Json;

namespace Engine.Models.Text;

/// <summary>
/// What a transformers CLIP tokenizer folder says: the vocabulary (<c>vocab.json</c>), the merges
/// (<c>merges.txt</c>), the special tokens and maximum length (<c>special_tokens_map.json</c>, which
/// takes precedence as in transformers, and <c>tokenizer_config.json</c>) and the added tokens.
/// </summary>
internal sealed class ClipTokenizerFiles
{
    /// <summary>transformers' CLIPTokenizer reads only this many merges (49152 - 256 - 2), whatever the file holds.</summary>
    public const int MergeLimit = 49152 - 256 - 2;

    /// <summary>CLIP text models have 77 positions; used when the configuration names no maximum length.</summary>
    public const int DefaultMaxLength = 77;

    public required Dictionary<string, int> Vocabulary { get; init; }
    public required List<string> Merges { get; init; }
    public required string BosToken { get; init; }
    public required string EosToken { get; init; }
    public required string PadToken { get; init; }
    public required string UnknownToken { get; init; }
    public required int MaxLength { get; init; }

    /// <summary>Tokens split out of the raw text before cleaning, with their ids and whitespace stripping.</summary>
    public required List<AddedToken> AddedTokens { get; init; }

    public sealed record AddedToken(string Content, int Id, bool LeftStrip, bool RightStrip);

    /// <summary>
    /// The CLIP vocabulary and merges built into the engine (the same files as every SD / SDXL release), with
    /// <paramref name="padToken"/> as the pad token: "&lt;|endoftext|&gt;" (CLIP-L) or "!" (OpenCLIP's tokenizers).
    /// </summary>
    public static ClipTokenizerFiles Builtin(string padToken)
    {
        const string Description = "built-in CLIP tokenizer";
        var vocabulary = ParseVocabulary(Checkpoints.BuiltinClipTokenizer.VocabularyJson, Description + " vocab.json");
        var merges = ParseMerges(Checkpoints.BuiltinClipTokenizer.MergesText, Description + " merges.txt");
        const string Bos = "<|startoftext|>", Eos = "<|endoftext|>";
        var added = new List<AddedToken>();
        foreach (var special in new[] { padToken, Bos, Eos }.Distinct())
            added.Add(new AddedToken(special, vocabulary.TryGetValue(special, out int id) ? id : throw new ModelLoadException($"{Description}: no token \"{special}\"."), false, false));
        return new ClipTokenizerFiles
        {
            Vocabulary = vocabulary, Merges = merges, BosToken = Bos, EosToken = Eos, PadToken = padToken, UnknownToken = Eos,
            MaxLength = DefaultMaxLength, AddedTokens = added,
        };
    }

    public static ClipTokenizerFiles Load(string folder)
    {
        if (!Directory.Exists(folder)) throw new ModelLoadException($"{folder}: tokenizer folder not found.", ModelLoadFailure.NotFound);
        var vocabPath = Path.Combine(folder, "vocab.json");
        var mergesPath = Path.Combine(folder, "merges.txt");
        var configPath = Path.Combine(folder, "tokenizer_config.json");
        var mapPath = Path.Combine(folder, "special_tokens_map.json");

        var config = ReadJsonObject(configPath, required: false);
        var map = ReadJsonObject(mapPath, required: false);
        if (config is { } c && c.TryGetProperty("tokenizer_class", out var cls) && cls.ValueKind == JsonValueKind.String
            && cls.GetString() is not ("CLIPTokenizer" or "CLIPTokenizerFast"))
            throw new ModelLoadException($"{configPath}: tokenizer_class \"{cls.GetString()}\" is not a CLIP tokenizer (CLIPTokenizer).", ModelLoadFailure.UnsupportedClass);

        var vocabulary = ReadVocabulary(vocabPath);
        var merges = ReadMerges(mergesPath);

        string Token(string key, string fallback) => TokenContent(map, key) ?? TokenContent(config, key) ?? fallback;
        var bos = Token("bos_token", "<|startoftext|>");
        var eos = Token("eos_token", "<|endoftext|>");
        var unk = Token("unk_token", "<|endoftext|>");
        var pad = Token("pad_token", "<|endoftext|>");

        int maxLength = DefaultMaxLength;
        if (config is { } cfg && cfg.TryGetProperty("model_max_length", out var ml) && ml.ValueKind == JsonValueKind.Number)
        {
            // transformers writes a huge sentinel when no length is known; CLIP's 77 positions apply then.
            if (ml.TryGetInt32(out int v) && v is > 2 and < 100_000) maxLength = v;
        }

        var added = new List<AddedToken>();
        if (config is { } conf && conf.TryGetProperty("added_tokens_decoder", out var decoder) && decoder.ValueKind == JsonValueKind.Object)
            foreach (var entry in decoder.EnumerateObject())
            {
                if (!int.TryParse(entry.Name, out int id) || !entry.Value.TryGetProperty("content", out var content))
                    throw new ModelLoadException($"{configPath}: added_tokens_decoder entry \"{entry.Name}\" needs an integer id and a content.");
                added.Add(new AddedToken(content.GetString()!, id, Flag(entry.Value, "lstrip"), Flag(entry.Value, "rstrip")));
            }
        // transformers adds every special token to the added tokens, so each is split out of the text.
        foreach (var special in new[] { bos, eos, unk, pad })
        {
            if (added.Any(a => a.Content == special)) continue;
            if (!vocabulary.TryGetValue(special, out int id))
                throw new ModelLoadException($"{folder}: special token \"{special}\" is neither in vocab.json nor in tokenizer_config.json's added_tokens_decoder.");
            added.Add(new AddedToken(special, id, false, false));
        }

        return new ClipTokenizerFiles
        {
            Vocabulary = vocabulary, Merges = merges, BosToken = bos, EosToken = eos, PadToken = pad, UnknownToken = unk,
            MaxLength = maxLength, AddedTokens = added,
        };
    }

    private static bool Flag(JsonElement e, string name) => e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.True;

    // A special token is written either as a string or as an AddedToken object with "content".
    private static string? TokenContent(JsonElement? root, string key)
    {
        if (root is not { } r || !r.TryGetProperty(key, out var v)) return null;
        return v.ValueKind switch
        {
            JsonValueKind.String => v.GetString(),
            JsonValueKind.Object when v.TryGetProperty("content", out var c) && c.ValueKind == JsonValueKind.String => c.GetString(),
            _ => null,
        };
    }

    private static JsonElement? ReadJsonObject(string path, bool required)
    {
        if (!File.Exists(path))
        {
            if (required) throw new ModelLoadException($"{path}: file not found.", ModelLoadFailure.NotFound);
            return null;
        }
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(path));
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new ModelLoadException($"{path}: expected a JSON object.");
            return doc.RootElement.Clone();
        }
        catch (JsonException e) { throw new ModelLoadException($"{path}: not valid JSON: {e.Message}", e); }
    }

    private static Dictionary<string, int> ReadVocabulary(string path)
    {
        if (!File.Exists(path)) throw new ModelLoadException($"{path}: file not found.");
        return ParseVocabulary(File.ReadAllText(path), path);
    }

    private static Dictionary<string, int> ParseVocabulary(string text, string path)
    {
        JsonElement root;
        try
        {
            using var doc = JsonDocument.Parse(text);
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new ModelLoadException($"{path}: expected a JSON object.");
            root = doc.RootElement.Clone();
        }
        catch (JsonException e) { throw new ModelLoadException($"{path}: not valid JSON: {e.Message}", e); }
        var vocabulary = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var entry in root.EnumerateObject())
        {
            if (entry.Value.ValueKind != JsonValueKind.Number || !entry.Value.TryGetInt32(out int id) || id < 0)
                throw new ModelLoadException($"{path}: the id of \"{entry.Name}\" is not a non-negative integer.");
            vocabulary[entry.Name] = id;
        }
        return vocabulary;
    }

    // As transformers: strip the file, split on newlines, skip the "#version" header line, keep at most MergeLimit.
    private static List<string> ReadMerges(string path)
    {
        if (!File.Exists(path)) throw new ModelLoadException($"{path}: file not found.", ModelLoadFailure.NotFound);
        return ParseMerges(File.ReadAllText(path), path);
    }

    private static List<string> ParseMerges(string text, string path)
    {
        var lines = text.Trim().Split('\n');
        var merges = new List<string>(Math.Min(lines.Length, MergeLimit));
        for (int i = 1; i < lines.Length && merges.Count < MergeLimit; i++)
        {
            var line = lines[i].TrimEnd('\r');
            if (line.Split(' ').Length != 2)
                throw new ModelLoadException($"{path}: line {i + 1} is not a merge of two symbols separated by one space: \"{line}\".");
            merges.Add(line);
        }
        return merges;
    }
}
