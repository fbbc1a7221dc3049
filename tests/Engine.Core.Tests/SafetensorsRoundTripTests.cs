using System.Runtime.InteropServices;
using System.Text;
using Engine.Core.Safetensors;
using static Engine.Core.Tests.SafetensorsTestFiles;

namespace Engine.Core.Tests;

/// <summary>
/// Writer to reader round trips (F32 exact, F16/BF16 within their rounding), metadata, zero-element
/// tensors, header alignment, raw F64/I64/I32 files read as floats, and Load for every storage/dtype pair.
/// </summary>
[TestFixture]
public sealed class SafetensorsRoundTripTests
{
    private SafetensorsTestFiles _files = null!;

    [OneTimeSetUp] public void SetUp() => _files = new SafetensorsTestFiles();
    [OneTimeTearDown] public void TearDown() => _files.Dispose();

    private static float[] Values(int n, int seed)
    {
        var rng = new Random(seed);
        var v = new float[n];
        for (int i = 0; i < n; i++) v[i] = (float)((rng.NextDouble() * 2 - 1) * Math.Pow(10, rng.Next(-6, 5)));
        return v;
    }

    private static readonly float[] Specials =
        [0f, -0f, 1f, -1f, float.Epsilon, float.MaxValue, float.MinValue, float.PositiveInfinity, float.NegativeInfinity, float.NaN, 1e-40f, 65504f, 3.14159265f];

    [Test]
    public void F32RoundTripIsBitExact()
    {
        var data = Values(988, 1).Concat(Specials).ToArray();
        var path = _files.NewPath();
        SafetensorsWriter.Write(path, [new("w", [data.Length / 13, 13], data)]);
        using var file = SafetensorsFile.Open(path);
        var info = file.Info("w");
        Assert.That(info.Type, Is.EqualTo(StorageType.F32));
        Assert.That(info.Shape, Is.EqualTo(new[] { data.Length / 13, 13 }));
        var back = file.ReadFloats("w");
        Assert.That(back.Select(BitConverter.SingleToInt32Bits), Is.EqualTo(data.Select(BitConverter.SingleToInt32Bits)));
        Assert.That(MemoryMarshal.Cast<byte, float>(file.GetBytes("w")).ToArray().Select(BitConverter.SingleToInt32Bits),
            Is.EqualTo(data.Select(BitConverter.SingleToInt32Bits)));
    }

    [Test]
    public void F16RoundTripIsWithinHalfRounding()
    {
        var data = Values(1000, 2).Select(v => Math.Clamp(v, -60000f, 60000f)).Concat([0f, -1f, 65504f, 1e-5f, float.PositiveInfinity]).ToArray();
        var path = _files.NewPath();
        SafetensorsWriter.Write(path, [new("h", [data.Length], data, DType.F16)]);
        using var file = SafetensorsFile.Open(path);
        Assert.That(file.Info("h").Type, Is.EqualTo(StorageType.F16));
        Assert.That(file.Info("h").ByteLength, Is.EqualTo(2L * data.Length));
        var back = file.ReadFloats("h");
        for (int i = 0; i < data.Length; i++)
        {
            Assert.That(back[i], Is.EqualTo((float)(Half)data[i]), $"element {i}: {data[i]}");
            // Round to nearest: half an ulp (2^-11 relative) for normals, half the subnormal step below.
            if (float.IsFinite(data[i]))
                Assert.That(Math.Abs(back[i] - data[i]), Is.LessThanOrEqualTo(Math.Max(Math.Abs(data[i]) * Math.Pow(2, -11), Math.Pow(2, -25))), $"element {i}");
        }
    }

    [Test]
    public void BF16RoundTripIsWithinBFloat16Rounding()
    {
        var data = Values(1000, 3).Concat(Specials).ToArray();
        var path = _files.NewPath();
        SafetensorsWriter.Write(path, [new("b", [data.Length], data, DType.BF16)]);
        using var file = SafetensorsFile.Open(path);
        Assert.That(file.Info("b").Type, Is.EqualTo(StorageType.BF16));
        var back = file.ReadFloats("b");
        for (int i = 0; i < data.Length; i++)
        {
            if (float.IsNaN(data[i])) { Assert.That(back[i], Is.NaN); continue; }
            Assert.That(back[i], Is.EqualTo(DTypeExtensions.BFloat16ToSingle(DTypeExtensions.SingleToBFloat16(data[i]))), $"element {i}");
            if (float.IsFinite(back[i]) && Math.Abs(data[i]) >= 1e-37f)
                Assert.That(Math.Abs(back[i] - data[i]), Is.LessThanOrEqualTo(Math.Abs(data[i]) * Math.Pow(2, -8)), $"element {i}: {data[i]}");
        }
    }

    [Test]
    public void MixedTensorsMetadataAndOrderRoundTrip()
    {
        var meta = new Dictionary<string, string> { ["format"] = "pt", ["note"] = "ünïcødé \"quoted\" \\ slash", [""] = "" };
        var a = Values(6, 4); var b = Values(5, 5); var c = Values(4, 6);
        var path = _files.NewPath();
        SafetensorsWriter.Write(path, [new("z.last", [2, 3], a), new("a.first", [5], b, DType.F16), new("m.mid", [2, 2], c, DType.BF16)], meta);
        using var file = SafetensorsFile.Open(path);
        Assert.That(file.Metadata, Is.EquivalentTo(meta));
        Assert.That(file.Tensors.Keys, Is.EquivalentTo(new[] { "z.last", "a.first", "m.mid" }));
        Assert.That(file.Contains("a.first"), Is.True);
        Assert.That(file.Contains("nope"), Is.False);
        Assert.That(file.ReadFloats("z.last"), Is.EqualTo(a));
        Assert.That(file.ReadFloats("a.first"), Is.EqualTo(b.Select(v => (float)(Half)v)));
        Assert.That(file.ReadFloats("m.mid"), Is.EqualTo(c.Select(v => DTypeExtensions.BFloat16ToSingle(DTypeExtensions.SingleToBFloat16(v)))));
    }

    [Test]
    public void ZeroElementAndScalarTensorsRoundTrip()
    {
        var path = _files.NewPath();
        SafetensorsWriter.Write(path,
        [
            new("empty1d", [0], []), new("x", [2], [1f, 2f]), new("empty3d", [3, 0, 2], [], DType.F16),
            new("scalar", [], [42f], DType.BF16), new("emptyLast", [0, 5], []),
        ]);
        using var file = SafetensorsFile.Open(path);
        Assert.That(file.Info("empty1d").ByteLength, Is.Zero);
        Assert.That(file.Info("empty3d").Shape, Is.EqualTo(new[] { 3, 0, 2 }));
        Assert.That(file.ReadFloats("empty1d"), Is.Empty);
        Assert.That(file.ReadFloats("empty3d"), Is.Empty);
        Assert.That(file.ReadFloats("emptyLast"), Is.Empty);
        Assert.That(file.GetBytes("emptyLast").Length, Is.Zero);
        Assert.That(file.Info("scalar").Shape, Is.Empty);
        Assert.That(file.ReadFloats("scalar"), Is.EqualTo(new[] { 42f }));
        Assert.That(file.ReadFloats("x"), Is.EqualTo(new[] { 1f, 2f }));
        var device = TestDevices.Get("cpu");
        using var loaded = file.Load(device, "empty3d");
        Assert.That(loaded.Shape.ToArray(), Is.EqualTo(new[] { 3, 0, 2 }));
        Assert.That(loaded.ToArray(), Is.Empty);
    }

    [Test]
    public void OnlyZeroElementTensorsMakeAnEmptyDataSection()
    {
        var path = _files.NewPath();
        SafetensorsWriter.Write(path, [new("e", [0, 4], [])]);
        Assert.That(new FileInfo(path).Length, Is.EqualTo(8 + HeaderLength(path)));
        using var file = SafetensorsFile.Open(path);
        Assert.That(file.ReadFloats("e"), Is.Empty);
    }

    [Test]
    public void FileWithOnlyMetadataRoundTrips()
    {
        var path = _files.NewPath();
        SafetensorsWriter.Write(path, [], new Dictionary<string, string> { ["k"] = "v" });
        using var file = SafetensorsFile.Open(path);
        Assert.That(file.Tensors, Is.Empty);
        Assert.That(file.Metadata, Is.EquivalentTo(new Dictionary<string, string> { ["k"] = "v" }));
        Assert.That(new FileInfo(path).Length, Is.EqualTo(8 + HeaderLength(path)));
    }

    [Test]
    public void FileWithNothingRoundTrips()
    {
        var path = _files.NewPath();
        SafetensorsWriter.Write(path, []);
        Assert.That(File.ReadAllBytes(path), Has.Length.EqualTo(16), "8-byte length + \"{}\" padded to 8");
        using var file = SafetensorsFile.Open(path);
        Assert.That(file.Tensors, Is.Empty);
        Assert.That(file.Metadata, Is.Empty);
    }

    private static long HeaderLength(string path)
    {
        using var s = File.OpenRead(path);
        Span<byte> b = stackalloc byte[8];
        s.ReadExactly(b);
        return (long)BitConverter.ToUInt64(b);
    }

    [Test]
    public void HeaderIsPaddedTo8BytesForEveryNameLength()
    {
        for (int len = 1; len <= 17; len++)
        {
            var path = _files.NewPath("align");
            SafetensorsWriter.Write(path, [new(new string('n', len), [3], [1f, 2f, 3f])]);
            long header = HeaderLength(path);
            Assert.That(header % 8, Is.Zero, $"name length {len}: header {header}");
            var headerText = Encoding.UTF8.GetString(File.ReadAllBytes(path), 8, (int)header);
            Assert.That(headerText.TrimEnd(' '), Does.EndWith("}"), "padding is trailing spaces only");
            using var file = SafetensorsFile.Open(path);
            Assert.That(file.ReadFloats(new string('n', len)), Is.EqualTo(new[] { 1f, 2f, 3f }));
            file.Dispose();
            File.Delete(path);
        }
    }

    [Test]
    public void UnalignedDataFromOtherWritersReadsCorrectly()
    {
        // A 3-byte-padded header puts the data at an odd offset: the reader must not assume alignment.
        var f = new[] { 1.5f, -2.25f, 1e30f };
        var path = _files.WriteBytes(Json("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]}}   ", MemoryMarshal.AsBytes(f.AsSpan()).ToArray()));
        using var file = SafetensorsFile.Open(path);
        Assert.That(file.ReadFloats("a"), Is.EqualTo(f));
    }

    /// <summary>A raw file holding one tensor "t" of <paramref name="dtype"/> with the given little-endian bytes.</summary>
    private string RawTensorFile(string dtype, int count, byte[] data) =>
        _files.WriteBytes(Json($"{{\"t\":{{\"dtype\":\"{dtype}\",\"shape\":[{count}],\"data_offsets\":[0,{data.Length}]}}}}", data), dtype);

    private static readonly double[] Doubles = [0, -1, 1.5, 1e-3, 123456.789, -2.5e10, 1e300, double.NegativeInfinity];
    private static readonly long[] Longs = [0, -1, 7, 1 << 24, (1L << 24) + 1, long.MaxValue, long.MinValue, -123456789012];
    private static readonly int[] Ints = [0, -1, 7, 1 << 24, (1 << 24) + 1, int.MaxValue, int.MinValue, 65504];

    [Test]
    public void F64FileReadsAsFloats()
    {
        using var file = SafetensorsFile.Open(RawTensorFile("F64", Doubles.Length, MemoryMarshal.AsBytes(Doubles.AsSpan()).ToArray()));
        Assert.That(file.Info("t").Type, Is.EqualTo(StorageType.F64));
        Assert.That(file.ReadFloats("t"), Is.EqualTo(Doubles.Select(d => (float)d)));
    }

    [Test]
    public void I64FileReadsAsFloats()
    {
        using var file = SafetensorsFile.Open(RawTensorFile("I64", Longs.Length, MemoryMarshal.AsBytes(Longs.AsSpan()).ToArray()));
        Assert.That(file.Info("t").Type, Is.EqualTo(StorageType.I64));
        Assert.That(file.ReadFloats("t"), Is.EqualTo(Longs.Select(l => (float)l)));
    }

    [Test]
    public void I32FileReadsAsFloats()
    {
        using var file = SafetensorsFile.Open(RawTensorFile("I32", Ints.Length, MemoryMarshal.AsBytes(Ints.AsSpan()).ToArray()));
        Assert.That(file.Info("t").Type, Is.EqualTo(StorageType.I32));
        Assert.That(file.ReadFloats("t"), Is.EqualTo(Ints.Select(i => (float)i)));
    }

    /// <summary>Values exact in every storage type (small integers, and halves for the float ones).</summary>
    private static readonly int[] Exact = [-100, -3, -1, 0, 1, 2, 7, 64, 100, 255];

    private string StoredFile(StorageType stored)
    {
        var asFloat = Exact.Select(v => (float)v).ToArray();
        byte[] data = stored switch
        {
            StorageType.F32 => MemoryMarshal.AsBytes(asFloat.AsSpan()).ToArray(),
            StorageType.F16 => MemoryMarshal.AsBytes(asFloat.Select(v => (Half)v).ToArray().AsSpan()).ToArray(),
            StorageType.BF16 => MemoryMarshal.AsBytes(asFloat.Select(DTypeExtensions.SingleToBFloat16).ToArray().AsSpan()).ToArray(),
            StorageType.F64 => MemoryMarshal.AsBytes(Exact.Select(v => (double)v).ToArray().AsSpan()).ToArray(),
            StorageType.I64 => MemoryMarshal.AsBytes(Exact.Select(v => (long)v).ToArray().AsSpan()).ToArray(),
            _ => MemoryMarshal.AsBytes(Exact.AsSpan()).ToArray(),
        };
        return _files.WriteBytes(Json($"{{\"t\":{{\"dtype\":\"{stored}\",\"shape\":[2,{Exact.Length / 2}],\"data_offsets\":[0,{data.Length}]}}}}", data), stored.ToString());
    }

    public static IEnumerable<TestCaseData> LoadPairs() =>
        from stored in Enum.GetValues<StorageType>()
        from target in Enum.GetValues<DType>()
        select new TestCaseData(stored, target).SetName($"Load_{stored}_As_{target}");

    [TestCaseSource(nameof(LoadPairs))]
    public void LoadConvertsEveryStorageTypeToEveryDType(StorageType stored, DType target)
    {
        var device = TestDevices.Get("cpu");
        using var file = SafetensorsFile.Open(StoredFile(stored));
        using var t = file.Load(device, "t", target);
        Assert.That(t.DType, Is.EqualTo(target));
        Assert.That(t.Shape.ToArray(), Is.EqualTo(new[] { 2, Exact.Length / 2 }));
        Assert.That(t.ToArray(), Is.EqualTo(Exact.Select(v => (float)v)));
    }

    [Test]
    public void LoadDefaultsToF32()
    {
        using var file = SafetensorsFile.Open(StoredFile(StorageType.BF16));
        using var t = file.Load(TestDevices.Get("cpu"), "t");
        Assert.That(t.DType, Is.EqualTo(DType.F32));
        Assert.That(t.ToArray(), Is.EqualTo(Exact.Select(v => (float)v)));
    }

    [Test]
    public void LoadNarrowingRoundsLikeTheWriter()
    {
        var data = Values(257, 7);
        var path = _files.NewPath();
        SafetensorsWriter.Write(path, [new("f", [data.Length], data)]);
        var device = TestDevices.Get("cpu");
        using var file = SafetensorsFile.Open(path);
        using (var h = file.Load(device, "f", DType.F16))
            Assert.That(h.ToArray(), Is.EqualTo(data.Select(v => (float)(Half)v)));
        using (var b = file.Load(device, "f", DType.BF16))
            Assert.That(b.ToArray(), Is.EqualTo(data.Select(v => DTypeExtensions.BFloat16ToSingle(DTypeExtensions.SingleToBFloat16(v)))));
    }

    [Test]
    public void RealFixtureReadsWithTheShapesItsJsonDeclares()
    {
        var json = Fixtures.Json("ops/linear.json");
        using var file = Fixtures.Tensors("ops/linear.safetensors");
        var device = TestDevices.Get("cpu");
        int seen = 0;
        foreach (var entry in json.GetProperty("tensors").EnumerateObject())
        {
            var shape = entry.Value.GetProperty("shape").EnumerateArray().Select(d => d.GetInt32()).ToArray();
            var info = file.Info(entry.Name);
            Assert.That(info.Shape, Is.EqualTo(shape), entry.Name);
            Assert.That(info.Type.ToString(), Is.EqualTo(entry.Value.GetProperty("dtype").GetString()), entry.Name);
            var values = file.ReadFloats(entry.Name);
            Assert.That(values, Has.Length.EqualTo(Tensor.ShapeLength(shape)));
            Assert.That(values.All(float.IsFinite), Is.True, entry.Name);
            using var t = file.Load(device, entry.Name);
            Assert.That(t.ToArray(), Is.EqualTo(values), entry.Name);
            seen++;
        }
        Assert.That(seen, Is.EqualTo(file.Tensors.Count), "the JSON lists every tensor in the file");
    }
}
