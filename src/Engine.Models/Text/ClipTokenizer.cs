using System.Text;
using Microsoft.ML.Tokenizers;

namespace Engine.Models.Text;

/// <summary>
/// The CLIP tokenizer of Stable Diffusion pipelines, loaded from a transformers tokenizer folder
/// (<c>vocab.json</c>, <c>merges.txt</c>, <c>tokenizer_config.json</c>, <c>special_tokens_map.json</c>)
/// and giving the ids transformers' <c>CLIPTokenizer</c> gives. Special and added tokens (the start and
/// end tokens, and the pad token: with pad "!", as in SDXL's and SD3's <c>tokenizer_2</c>, every "!" of a
/// prompt is such a token and becomes the pad id) are split out of the raw text first; each remaining
/// piece is cleaned as transformers does without ftfy, split by CLIP's word pattern and byte-level
/// BPE-encoded with Microsoft.ML.Tokenizers.
/// </summary>
public sealed class ClipTokenizer
{
    private readonly ClipTokenizerFiles _files;
    private readonly BpeTokenizer _bpe;
    private readonly Dictionary<string, int> _specialLiteralIds = new(StringComparer.Ordinal);
    private readonly string[] _tokenById;

    private ClipTokenizer(ClipTokenizerFiles files)
    {
        _files = files;
        _bpe = BpeTokenizer.Create(new BpeOptions(files.Vocabulary)
        {
            Merges = files.Merges,
            ByteLevel = true,
            EndOfWordSuffix = "</w>",
            UnknownToken = files.UnknownToken,
        });
        foreach (var literal in ClipPreTokenizer.SpecialLiterals)
            if (files.Vocabulary.TryGetValue(literal, out int id)) _specialLiteralIds[literal] = id;

        _tokenById = new string[Math.Max(files.Vocabulary.Values.Max(), files.AddedTokens.Max(a => a.Id)) + 1];
        foreach (var (token, id) in files.Vocabulary) _tokenById[id] = token;
        foreach (var added in files.AddedTokens) _tokenById[added.Id] = added.Content;

        BosId = IdOf(files.BosToken);
        EosId = IdOf(files.EosToken);
        PadId = IdOf(files.PadToken);
    }

    /// <summary>Loads a tokenizer folder (a pipeline's <c>tokenizer/</c> or <c>tokenizer_2/</c>).</summary>
    /// <exception cref="ModelLoadException">A file is missing or malformed; the message names it.</exception>
    public static ClipTokenizer Load(string folder) => new(ClipTokenizerFiles.Load(folder));

    /// <summary>
    /// The tokenizer built into the engine for single-file checkpoints, which carry none: CLIP's vocabulary and
    /// merges, length 77, pad "&lt;|endoftext|&gt;" (SD 1.x, SDXL's first) or, with <paramref name="padWithExclamation"/>,
    /// "!" (the OpenCLIP encoders of SD 2.x and SDXL's second).
    /// </summary>
    public static ClipTokenizer Builtin(bool padWithExclamation) => new(ClipTokenizerFiles.Builtin(padWithExclamation ? "!" : "<|endoftext|>"));

    /// <summary>The padded length, <c>model_max_length</c> (77 for every CLIP text model).</summary>
    public int MaxLength => _files.MaxLength;

    /// <summary>The start token's id (49406 for CLIP).</summary>
    public int BosId { get; }

    /// <summary>The end token's id (49407 for CLIP).</summary>
    public int EosId { get; }

    /// <summary>The pad token's id: 49407 when the pad token is <c>&lt;|endoftext|&gt;</c>, 0 when it is "!".</summary>
    public int PadId { get; }

    /// <summary>The pad token's text.</summary>
    public string PadToken => _files.PadToken;

    /// <summary>Tokenizes one prompt: the full ids and tokens, and the padded, truncated model input.</summary>
    public ClipEncoding Encode(string prompt)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        var ids = new List<int>();
        var tokens = new List<string>();
        foreach (var (piece, added) in SplitAddedTokens(prompt))
        {
            if (added is not null) { ids.Add(added.Id); tokens.Add(added.Content); continue; }
            foreach (var word in ClipPreTokenizer.Split(ClipTextCleaner.Clean(piece)))
            {
                if (_specialLiteralIds.TryGetValue(word, out int special)) { ids.Add(special); tokens.Add(word); continue; }
                foreach (var t in _bpe.EncodeToTokens(word, out _, considerPreTokenization: false, considerNormalization: false))
                {
                    ids.Add(t.Id);
                    tokens.Add(t.Value);
                }
            }
        }

        int room = MaxLength - 2;
        bool truncated = ids.Count > room;
        var inputIds = new int[MaxLength];
        Array.Fill(inputIds, PadId);
        inputIds[0] = BosId;
        int kept = Math.Min(ids.Count, room);
        ids.CopyTo(0, inputIds, 1, kept);
        inputIds[kept + 1] = EosId;

        var all = new int[ids.Count + 2];
        all[0] = BosId;
        ids.CopyTo(all, 1);
        all[^1] = EosId;
        return new ClipEncoding(inputIds, all, [.. tokens], truncated, truncated ? Decode(ids.Skip(room)) : null);
    }

    /// <summary>
    /// Text of ids: tokens joined, byte-level characters turned back into UTF-8, each word end
    /// (<c>&lt;/w&gt;</c>) a space. Special tokens appear as written.
    /// </summary>
    public string Decode(IEnumerable<int> ids)
    {
        var bytes = new List<byte>();
        foreach (int id in ids)
        {
            var token = id >= 0 && id < _tokenById.Length ? _tokenById[id] : null;
            if (token is null) throw new ArgumentOutOfRangeException(nameof(ids), $"Token id {id} is not in the vocabulary.");
            foreach (char c in token.Replace("</w>", " "))
                if (ByteLevel.TryDecode(c, out byte b)) bytes.Add(b);
                else bytes.AddRange(Encoding.UTF8.GetBytes(c.ToString()));
        }
        return Encoding.UTF8.GetString([.. bytes]).Trim();
    }

    private int IdOf(string token) =>
        _files.AddedTokens.FirstOrDefault(a => a.Content == token)?.Id
        ?? (_files.Vocabulary.TryGetValue(token, out int id) ? id
            : throw new ModelLoadException($"Special token \"{token}\" has no id in the tokenizer folder."));

    // transformers' added-token split: leftmost, longest match; the text between is tokenized normally.
    private IEnumerable<(string Piece, ClipTokenizerFiles.AddedToken? Added)> SplitAddedTokens(string text)
    {
        var pieces = new List<(string, ClipTokenizerFiles.AddedToken?)>();
        int start = 0, i = 0;
        while (i < text.Length)
        {
            ClipTokenizerFiles.AddedToken? match = null;
            foreach (var a in _files.AddedTokens)
                if (text.AsSpan(i).StartsWith(a.Content, StringComparison.Ordinal) && (match is null || a.Content.Length > match.Content.Length))
                    match = a;
            if (match is null) { i++; continue; }
            pieces.Add((text[start..i], null));
            pieces.Add((match.Content, match));
            i += match.Content.Length;
            start = i;
        }
        pieces.Add((text[start..], null));

        // lstrip / rstrip on an added token eat the whitespace beside it.
        for (int k = 0; k < pieces.Count; k++)
        {
            if (pieces[k].Item2 is not { } a) continue;
            if (a.LeftStrip && k > 0) pieces[k - 1] = (pieces[k - 1].Item1.TrimEnd(), null);
            if (a.RightStrip && k + 1 < pieces.Count) pieces[k + 1] = (pieces[k + 1].Item1.TrimStart(), null);
        }
        return pieces.Where(p => p.Item1.Length > 0);
    }
}
