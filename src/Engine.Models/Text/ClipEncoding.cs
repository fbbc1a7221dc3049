namespace Engine.Models.Text;

/// <summary>One prompt tokenized by <see cref="ClipTokenizer.Encode"/>.</summary>
public sealed class ClipEncoding
{
    internal ClipEncoding(int[] inputIds, int[] ids, string[] tokens, bool isTruncated, string? truncatedText)
    {
        InputIds = inputIds;
        Ids = ids;
        Tokens = tokens;
        IsTruncated = isTruncated;
        TruncatedText = truncatedText;
    }

    /// <summary>
    /// What the text encoder gets: start token, the first <see cref="ClipTokenizer.MaxLength"/> - 2 content
    /// ids, end token, then pad ids up to <see cref="ClipTokenizer.MaxLength"/> (transformers'
    /// <c>padding="max_length", truncation=True</c>).
    /// </summary>
    public int[] InputIds { get; }

    /// <summary>Every id of the prompt, start and end tokens included, neither padded nor truncated.</summary>
    public int[] Ids { get; }

    /// <summary>The BPE tokens of the prompt (no start or end token), in the vocabulary's byte-level spelling.</summary>
    public string[] Tokens { get; }

    /// <summary>Whether the prompt has more content tokens than fit, so <see cref="InputIds"/> drops some.</summary>
    public bool IsTruncated { get; }

    /// <summary>The text of the tokens that were cut off (what diffusers' truncation warning shows), or null.</summary>
    public string? TruncatedText { get; }
}
