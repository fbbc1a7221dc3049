using Engine.Core.Safetensors;

namespace Engine.Core.Tests;

/// <summary>
/// Lifetime of an open file: concurrent opens and reads, double Dispose, reads after Dispose, missing
/// tensor names, and rewriting a file that is still mapped.
/// </summary>
[TestFixture]
public sealed class SafetensorsLifetimeTests
{
    private SafetensorsTestFiles _files = null!;
    private string _path = null!;
    private static readonly float[] Data = Enumerable.Range(0, 64).Select(i => i * 0.5f - 3f).ToArray();

    [OneTimeSetUp]
    public void SetUp()
    {
        _files = new SafetensorsTestFiles();
        _path = _files.NewPath("shared");
        SafetensorsWriter.Write(_path, [new("w", [8, 8], Data), new("e", [0], [])]);
    }

    [OneTimeTearDown] public void TearDown() => _files.Dispose();

    [Test]
    public void SameFileOpenedTwiceReadsIndependently()
    {
        using var first = SafetensorsFile.Open(_path);
        var second = SafetensorsFile.Open(_path);
        Assert.That(first.ReadFloats("w"), Is.EqualTo(Data));
        Assert.That(second.ReadFloats("w"), Is.EqualTo(Data));
        second.Dispose();
        Assert.That(first.ReadFloats("w"), Is.EqualTo(Data), "disposing one handle leaves the other mapped");
    }

    [Test]
    public void ConcurrentOpensAndReadsAgree()
    {
        using var shared = SafetensorsFile.Open(_path);
        var results = new float[16][];
        Parallel.For(0, results.Length, new ParallelOptions { MaxDegreeOfParallelism = 4 }, i =>
        {
            if (i % 2 == 0)
            {
                using var own = SafetensorsFile.Open(_path);
                results[i] = own.ReadFloats("w");
            }
            else results[i] = shared.ReadFloats("w");
        });
        foreach (var r in results) Assert.That(r, Is.EqualTo(Data));
    }

    [Test]
    public void DisposeTwiceIsHarmless()
    {
        var file = SafetensorsFile.Open(_path);
        file.Dispose();
        Assert.DoesNotThrow(file.Dispose);
    }

    [Test]
    public void ReadsAfterDisposeThrowObjectDisposedNamingFileAndTensor()
    {
        var file = SafetensorsFile.Open(_path);
        file.Dispose();
        var device = TestDevices.Get("cpu");
        foreach (var name in new[] { "w", "e" })
        {
            var bytes = Assert.Throws<ObjectDisposedException>(() => file.GetBytes(name))!;
            Assert.That(bytes.Message, Does.Contain(_path).And.Contain($"'{name}'").And.Contain("disposed"));
            Assert.Throws<ObjectDisposedException>(() => file.ReadFloats(name));
            Assert.Throws<ObjectDisposedException>(() => file.Load(device, name).Dispose());
        }
        Assert.That(file.Info("w").Shape, Is.EqualTo(new[] { 8, 8 }), "the parsed header stays readable");
    }

    [Test]
    public void ReadsAfterDisposeThrowEvenWithoutADataSection()
    {
        var path = _files.NewPath("nodata");
        SafetensorsWriter.Write(path, [new("e", [0, 3], [])]);
        var file = SafetensorsFile.Open(path);
        Assert.That(file.GetBytes("e").Length, Is.Zero);
        file.Dispose();
        Assert.Throws<ObjectDisposedException>(() => file.GetBytes("e"));
    }

    [Test]
    public void MissingTensorNamesFileAndTensor()
    {
        using var file = SafetensorsFile.Open(_path);
        var device = TestDevices.Get("cpu");
        foreach (var call in new Action[] { () => file.Info("nope"), () => file.GetBytes("nope"), () => file.ReadFloats("nope"), () => file.Load(device, "nope") })
        {
            var ex = Assert.Throws<KeyNotFoundException>(() => call())!;
            Assert.That(ex.Message, Does.Contain(_path).And.Contain("'nope'"));
        }
    }

    [Test]
    public void RewritingAMappedFileLeavesTheOpenViewIntact()
    {
        // The writer renames a new file into place, so an open mapping keeps the old contents
        // instead of seeing a truncated file (which would fault on access).
        Assume.That(OperatingSystem.IsWindows(), Is.False, "Windows refuses to replace a mapped file");
        var path = _files.NewPath("rewrite");
        SafetensorsWriter.Write(path, [new("w", [64], Data)]);
        using var old = SafetensorsFile.Open(path);
        SafetensorsWriter.Write(path, [new("v", [1], [9f])]);
        Assert.That(old.ReadFloats("w"), Is.EqualTo(Data));
        using var fresh = SafetensorsFile.Open(path);
        Assert.That(fresh.ReadFloats("v"), Is.EqualTo(new[] { 9f }));
    }
}
