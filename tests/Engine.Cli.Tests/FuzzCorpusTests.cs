using Engine.Fuzz;

namespace Engine.Cli.Tests;

/// <summary>
/// Replays the committed fuzzing corpus and every finding (fuzz/corpus, fuzz/findings) through the same
/// targets AFL++ ran: each input must end in the reader's documented error or in success, never in
/// another exception. The harness itself lives in fuzz/Engine.Fuzz; its targets are compiled in here.
/// </summary>
[TestFixture]
public sealed class FuzzCorpusTests
{
    private static string FuzzRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (Directory.Exists(Path.Combine(dir.FullName, "fuzz", "corpus"))) return Path.Combine(dir.FullName, "fuzz");
        throw new DirectoryNotFoundException($"no fuzz/corpus folder above {AppContext.BaseDirectory}.");
    }

    private static IEnumerable<TestCaseData> Inputs()
    {
        string root = FuzzRoot();
        foreach (var kind in new[] { "corpus", "findings" })
            foreach (var target in FuzzTargets.Names)
            {
                string folder = Path.Combine(root, kind, target);
                if (!Directory.Exists(folder)) continue;
                var files = Directory.GetFiles(folder).Order(StringComparer.Ordinal).ToArray();
                if (files.Length > 0) yield return new TestCaseData(target, files).SetName($"{kind}/{target} ({files.Length} inputs)");
            }
    }

    [TestCaseSource(nameof(Inputs))]
    public void ReplaysWithoutAFinding(string target, string[] files)
    {
        foreach (var file in files)
            Assert.DoesNotThrow(() => FuzzTargets.Run(target, File.ReadAllBytes(file)), Path.GetFileName(file));
    }

    [Test]
    public void EveryTargetHasACorpus()
    {
        foreach (var target in FuzzTargets.Names)
            Assert.That(Directory.GetFiles(Path.Combine(FuzzRoot(), "corpus", target)), Is.Not.Empty, target);
    }
}
