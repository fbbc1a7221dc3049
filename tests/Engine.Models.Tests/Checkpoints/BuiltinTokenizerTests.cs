using Engine.Models.Text;

namespace Engine.Models.Tests.Checkpoints;

/// <summary>
/// The tokenizer built in for single-file checkpoints gives the ids of the pipelines' own tokenizer folders
/// (CLIP-L's pad "&lt;|endoftext|&gt;" and OpenCLIP's pad "!"), padding and truncation included.
/// </summary>
[TestFixture]
public sealed class BuiltinTokenizerTests
{
    private static readonly string[] Prompts =
    [
        "a photo of a cat", "portrait of an old fisherman, dramatic light!", "", "Hello!! naïve café — 東京 🙂 <|endoftext|>",
        string.Join(' ', Enumerable.Repeat("a very long prompt", 40)),
    ];

    [TestCase("pipelines/sd_tiny/pipeline/tokenizer", false)]
    [TestCase("pipelines/sdxl_tiny/pipeline/tokenizer_2", true)]
    public void BuiltinMatchesTheFolderTokenizer(string folder, bool exclamation)
    {
        var expected = ClipTokenizer.Load(Path.Combine(Fixtures.RequireRoot(), folder));
        var builtin = ClipTokenizer.Builtin(exclamation);
        Assert.That((builtin.PadId, builtin.BosId, builtin.EosId, builtin.MaxLength), Is.EqualTo((expected.PadId, expected.BosId, expected.EosId, expected.MaxLength)));
        foreach (var p in Prompts)
            Assert.That(builtin.Encode(p).InputIds, Is.EqualTo(expected.Encode(p).InputIds), p);
    }
}
