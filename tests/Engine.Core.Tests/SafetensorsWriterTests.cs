using Engine.Core.Safetensors;

namespace Engine.Core.Tests;

/// <summary>
/// The writer validates everything before touching the disk and replaces the target atomically: a
/// failed write creates no file, leaves an existing target byte-for-byte intact and leaves no temporary
/// file behind.
/// </summary>
[TestFixture]
public sealed class SafetensorsWriterTests
{
    private SafetensorsTestFiles _files = null!;

    [OneTimeSetUp] public void SetUp() => _files = new SafetensorsTestFiles();
    [OneTimeTearDown] public void TearDown() => _files.Dispose();

    /// <summary>(case name, entries, metadata, fragment of the message).</summary>
    public static IEnumerable<TestCaseData> BadWrites()
    {
        TestCaseData Case(string name, SafetensorsWriter.Entry[] entries, string fragment, Dictionary<string, string>? meta = null) =>
            new TestCaseData(entries, meta, fragment).SetName($"WriterRejects_{name}");

        yield return Case("ShapeDataMismatch", [new("ok", [1], [1f]), new("w", [2, 3], new float[5])], "tensor 'w' has 5 values for shape [2, 3]");
        yield return Case("DuplicateName", [new("w", [1], [1f]), new("w", [1], [2f])], "duplicate tensor name 'w'");
        yield return Case("ReservedName", [new("__metadata__", [1], [1f])], "'__metadata__' is reserved");
        yield return Case("NullName", [new(null!, [1], [1f])], "a tensor has no name");
        yield return Case("NullData", [new("w", [1], null!)], "tensor 'w' needs both a shape and data");
        yield return Case("NullShape", [new("w", null!, [1f])], "tensor 'w' needs both a shape and data");
        yield return Case("NegativeDimension", [new("w", [-1, -1], [1f])], "tensor 'w' has a negative dimension in shape [-1, -1]");
        yield return Case("OverflowingShape", [new("w", [int.MaxValue, int.MaxValue, int.MaxValue], [1f])], "tensor 'w' has 1 values for shape");
        yield return Case("UnknownDType", [new("w", [1], [1f], (DType)7)], "tensor 'w' has unknown storage type 7");
        yield return Case("NullMetadataValue", [new("w", [1], [1f])], "metadata key 'k' needs a non-null string value", new() { ["k"] = null! });
    }

    private string[] Leftovers() => Directory.GetFiles(_files.Folder, "*.tmp");

    [TestCaseSource(nameof(BadWrites))]
    public void FailedWriteCreatesNoFile(SafetensorsWriter.Entry[] entries, Dictionary<string, string>? meta, string fragment)
    {
        var path = _files.NewPath("new");
        var ex = Assert.Throws<ArgumentException>(() => SafetensorsWriter.Write(path, entries, meta))!;
        Assert.That(ex.Message, Does.StartWith(path + ": "));
        Assert.That(ex.Message, Does.Contain(fragment));
        Assert.That(File.Exists(path), Is.False, "no target file");
        Assert.That(Leftovers(), Is.Empty, "no temporary file");
    }

    [TestCaseSource(nameof(BadWrites))]
    public void FailedWriteLeavesExistingTargetIntact(SafetensorsWriter.Entry[] entries, Dictionary<string, string>? meta, string fragment)
    {
        var path = _files.NewPath("existing");
        SafetensorsWriter.Write(path, [new("keep", [2], [1f, 2f])]);
        var before = File.ReadAllBytes(path);
        Assert.Throws<ArgumentException>(() => SafetensorsWriter.Write(path, entries, meta));
        Assert.That(File.ReadAllBytes(path), Is.EqualTo(before));
        Assert.That(Leftovers(), Is.Empty);
        using var file = SafetensorsFile.Open(path);
        Assert.That(file.ReadFloats("keep"), Is.EqualTo(new[] { 1f, 2f }));
    }

    [Test]
    public void FailureAfterTheDataIsWrittenLeavesNoTemporaryFile()
    {
        // The target is a non-empty directory: the data goes to the temporary file, then the rename fails.
        var target = Path.Combine(_files.Folder, "a-directory.safetensors");
        Directory.CreateDirectory(target);
        File.WriteAllText(Path.Combine(target, "inside.txt"), "x");
        Assert.That(() => SafetensorsWriter.Write(target, [new("w", [3], [1f, 2f, 3f])]), Throws.InstanceOf<IOException>().Or.InstanceOf<UnauthorizedAccessException>());
        Assert.That(Directory.Exists(target), Is.True);
        Assert.That(File.ReadAllText(Path.Combine(target, "inside.txt")), Is.EqualTo("x"));
        Assert.That(Leftovers(), Is.Empty, "the temporary file is removed");
    }

    [Test]
    public void MissingFolderFailsWithoutCreatingAnything()
    {
        var path = Path.Combine(_files.Folder, "no-such-folder", "x.safetensors");
        Assert.Throws<DirectoryNotFoundException>(() => SafetensorsWriter.Write(path, [new("w", [1], [1f])]));
        Assert.That(Directory.Exists(Path.GetDirectoryName(path)), Is.False);
    }

    [Test]
    public void EntriesAreEnumeratedOnce()
    {
        int enumerations = 0;
        IEnumerable<SafetensorsWriter.Entry> Lazy()
        {
            enumerations++;
            yield return new("a", [1], [1f]);
            yield return new("b", [2], [2f, 3f]);
        }
        var path = _files.NewPath();
        SafetensorsWriter.Write(path, Lazy());
        Assert.That(enumerations, Is.EqualTo(1));
        using var file = SafetensorsFile.Open(path);
        Assert.That(file.ReadFloats("b"), Is.EqualTo(new[] { 2f, 3f }));
    }

    [Test]
    public void OverwriteReplacesTheWholeFile()
    {
        var path = _files.NewPath();
        SafetensorsWriter.Write(path, [new("big", [1000], new float[1000])], new Dictionary<string, string> { ["v"] = "1" });
        SafetensorsWriter.Write(path, [new("small", [1], [5f])]);
        using var file = SafetensorsFile.Open(path);
        Assert.That(file.Tensors.Keys, Is.EqualTo(new[] { "small" }));
        Assert.That(file.Metadata, Is.Empty);
        Assert.That(file.ReadFloats("small"), Is.EqualTo(new[] { 5f }));
    }

    [Test]
    public void NullArgumentsAreRejected()
    {
        Assert.Throws<ArgumentNullException>(() => SafetensorsWriter.Write(null!, []));
        Assert.Throws<ArgumentException>(() => SafetensorsWriter.Write("", []));
        Assert.Throws<ArgumentNullException>(() => SafetensorsWriter.Write(_files.NewPath(), null!));
    }
}
