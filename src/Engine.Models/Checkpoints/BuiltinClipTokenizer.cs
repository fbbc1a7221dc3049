using System.Text.Json.Nodes;

namespace Engine.Models.Checkpoints;

/// <summary>
/// The CLIP tokenizer files built into the engine (vocab.json and merges.txt, as every SD / SDXL release ships
/// them), for single-file checkpoints, which carry none; and writing them as a transformers tokenizer folder.
/// </summary>
public static class BuiltinClipTokenizer
{
    /// <summary>vocab.json's text.</summary>
    public static string VocabularyJson => Read("clip_vocab.json");

    /// <summary>merges.txt's text.</summary>
    public static string MergesText => Read("clip_merges.txt");

    /// <summary>
    /// Writes a CLIPTokenizer folder: the built-in vocabulary and merges, length 77, pad "&lt;|endoftext|&gt;" or,
    /// with <paramref name="padWithExclamation"/>, "!" (the OpenCLIP tokenizers of SD 2.x and SDXL's second).
    /// </summary>
    public static void Write(string folder, bool padWithExclamation)
    {
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "vocab.json"), VocabularyJson);
        File.WriteAllText(Path.Combine(folder, "merges.txt"), MergesText);
        string pad = padWithExclamation ? "!" : "<|endoftext|>";
        var special = new JsonObject { ["bos_token"] = "<|startoftext|>", ["eos_token"] = "<|endoftext|>", ["pad_token"] = pad, ["unk_token"] = "<|endoftext|>" };
        File.WriteAllText(Path.Combine(folder, "special_tokens_map.json"), special.ToJsonString());
        var config = special.DeepClone().AsObject();
        config["model_max_length"] = 77;
        config["tokenizer_class"] = "CLIPTokenizer";
        config["clean_up_tokenization_spaces"] = true;
        config["errors"] = "replace";
        File.WriteAllText(Path.Combine(folder, "tokenizer_config.json"), config.ToJsonString());
    }

    private static string Read(string name)
    {
        using var stream = typeof(BuiltinClipTokenizer).Assembly.GetManifestResourceStream("Engine.Models.Checkpoints.Tokenizer." + name)
            ?? throw new InvalidOperationException($"resource {name} is missing from Engine.Models.");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }
}
