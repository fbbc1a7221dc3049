using System.Text.Json;
using Engine.Models.Loading;
using Engine.Models.Text;

namespace Engine.Models.Tests;

/// <summary>
/// The CLIP tokenizer against transformers' ids for the 41 prompts of <c>fixtures/tokenizer</c>, with
/// both pad tokens: <c>&lt;|endoftext|&gt;</c> (SD 1.x <c>tokenizer/</c>) and "!" (SDXL's <c>tokenizer_2/</c>).
/// </summary>
[TestFixture]
public sealed class ClipTokenizerTests
{
    private const string FixtureFile = "tokenizer/clip_tokenizer.json";
    private static readonly Dictionary<string, ClipTokenizer> Loaded = new();

    private static ClipTokenizer Tokenizer(string relativeFolder)
    {
        lock (Loaded)
        {
            if (!Loaded.TryGetValue(relativeFolder, out var t))
                Loaded[relativeFolder] = t = ClipTokenizer.Load(Path.Combine(Fixtures.RequireRoot(), relativeFolder));
            return t;
        }
    }

    private static ClipTokenizer EndOfTextPad => Tokenizer("pipelines/sd_tiny/pipeline/tokenizer");
    private static ClipTokenizer BangPad => Tokenizer("pipelines/sdxl_tiny/pipeline/tokenizer_2");

    public static IEnumerable<TestCaseData> Prompts()
    {
        if (Fixtures.Root is null || !File.Exists(Path.Combine(Fixtures.Root, FixtureFile))) yield break;
        int count = Fixtures.Json(FixtureFile).GetProperty("prompts").GetArrayLength();
        for (int i = 0; i < count; i++) yield return new TestCaseData(i).SetName($"CLIP tokenizer prompt {i:D2}");
    }

    private static JsonElement Prompt(int index) => Fixtures.Json(FixtureFile).GetProperty("prompts")[index];

    private static int[] Ints(JsonElement e) => e.EnumerateArray().Select(x => x.GetInt32()).ToArray();
    private static string[] Strings(JsonElement e) => e.EnumerateArray().Select(x => x.GetString()!).ToArray();

    [Test]
    public void PromptsAreDiscovered()
    {
        Fixtures.RequireRoot();
        Assert.That(Prompts().Count(), Is.EqualTo(41));
    }

    [TestCaseSource(nameof(Prompts))]
    public void MatchesTransformersWithEndOfTextPad(int index)
    {
        var p = Prompt(index);
        var encoding = EndOfTextPad.Encode(p.GetProperty("prompt").GetString()!);
        Assert.Multiple(() =>
        {
            Assert.That(encoding.Ids, Is.EqualTo(Ints(p.GetProperty("ids"))), "ids");
            Assert.That(encoding.InputIds, Is.EqualTo(Ints(p.GetProperty("input_ids"))), "input_ids");
            Assert.That(encoding.Tokens, Is.EqualTo(Strings(p.GetProperty("tokens"))), "tokens");
            Assert.That(encoding.IsTruncated, Is.EqualTo(p.GetProperty("truncated").GetBoolean()), "truncated");
        });
    }

    [TestCaseSource(nameof(Prompts))]
    public void MatchesTransformersWithBangPad(int index)
    {
        var p = Prompt(index);
        var encoding = BangPad.Encode(p.GetProperty("prompt").GetString()!);
        var ids = p.TryGetProperty("ids_pad_bang", out var b) ? b : p.GetProperty("ids");
        var tokens = p.TryGetProperty("tokens_pad_bang", out var t) ? t : p.GetProperty("tokens");
        Assert.Multiple(() =>
        {
            Assert.That(encoding.Ids, Is.EqualTo(Ints(ids)), "ids");
            Assert.That(encoding.InputIds, Is.EqualTo(Ints(p.GetProperty("input_ids_pad_bang"))), "input_ids_pad_bang");
            Assert.That(encoding.Tokens, Is.EqualTo(Strings(tokens)), "tokens");
        });
    }

    [TestCaseSource(nameof(Prompts))]
    public void CleansTextAsTransformers(int index)
    {
        var p = Prompt(index);
        Assert.That(ClipTextCleaner.Clean(p.GetProperty("prompt").GetString()!), Is.EqualTo(p.GetProperty("cleaned_text").GetString()));
    }

    [Test]
    public void ReadsSpecialTokensAndLength()
    {
        Assert.Multiple(() =>
        {
            Assert.That((EndOfTextPad.BosId, EndOfTextPad.EosId, EndOfTextPad.PadId, EndOfTextPad.MaxLength), Is.EqualTo((49406, 49407, 49407, 77)));
            Assert.That((BangPad.BosId, BangPad.EosId, BangPad.PadId, BangPad.PadToken), Is.EqualTo((49406, 49407, 0, "!")));
        });
    }

    [Test]
    public void TruncationKeepsTheFirstContentTokensAndNamesTheRest()
    {
        var words = string.Join(' ', Enumerable.Range(0, 80).Select(i => i % 2 == 0 ? "cat" : "dog")) + " zebra";
        var encoding = EndOfTextPad.Encode(words);
        Assert.Multiple(() =>
        {
            Assert.That(encoding.IsTruncated, Is.True);
            Assert.That(encoding.Ids, Has.Length.EqualTo(83));
            Assert.That(encoding.InputIds[..76], Is.EqualTo(encoding.Ids[..76]));
            Assert.That(encoding.InputIds[76], Is.EqualTo(49407));
            Assert.That(encoding.TruncatedText, Is.EqualTo("dog cat dog cat dog zebra"));
            Assert.That(EndOfTextPad.Encode("a photo of a cat").TruncatedText, Is.Null);
        });
    }

    [Test]
    public void DecodesBytesBackToText()
    {
        var text = "café 東京 🐱 <|endoftext|>";
        var encoding = EndOfTextPad.Encode(text);
        Assert.That(EndOfTextPad.Decode(encoding.Ids[1..^1]), Is.EqualTo("café 東 京 🐱 <|endoftext|>"));
    }

    [Test]
    public void NormalizesToNfcWithoutIcu()
    {
        Assert.Multiple(() =>
        {
            Assert.That(UnicodeNfc.Normalize("cafe\u0301"), Is.EqualTo("caf\u00E9"));
            Assert.That(UnicodeNfc.Normalize("\u1112\u1161\u11AB"), Is.EqualTo("\uD55C"), "Hangul jamo compose");
            Assert.That(UnicodeNfc.Normalize("a\u0323\u0302"), Is.EqualTo("\u1EAD"), "ordered marks compose in turn");
            Assert.That(UnicodeNfc.Normalize("a\u0302\u0323"), Is.EqualTo("\u1EAD"), "marks are reordered first");
            Assert.That(UnicodeNfc.Normalize("\u212B"), Is.EqualTo("\u00C5"), "singleton decomposition");
            Assert.That(UnicodeNfc.Normalize("\u0958"), Is.EqualTo("\u0915\u093C"), "composition exclusion");
        });
    }

    [Test]
    public void LowerCasesAsPython()
    {
        Assert.Multiple(() =>
        {
            Assert.That(ClipTextCleaner.PythonLower("ΟΔΟΣ"), Is.EqualTo("οδος"));
            Assert.That(ClipTextCleaner.PythonLower("Σ"), Is.EqualTo("σ"));
            Assert.That(ClipTextCleaner.PythonLower("\u0130STANBUL"), Is.EqualTo("i\u0307stanbul"));
        });
    }

    [Test]
    public void MissingFilesAreNamed()
    {
        var dir = Directory.CreateTempSubdirectory("clip-tokenizer-");
        try
        {
            var ex = Assert.Throws<ModelLoadException>(() => ClipTokenizer.Load(dir.FullName));
            Assert.That(ex!.Message, Does.Contain("vocab.json"));
            Assert.Throws<ModelLoadException>(() => ClipTokenizer.Load(Path.Combine(dir.FullName, "absent")));
        }
        finally { dir.Delete(true); }
    }
}
