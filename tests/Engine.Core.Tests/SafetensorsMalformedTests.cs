using System.Text;
using Engine.Core.Safetensors;
using static Engine.Core.Tests.SafetensorsTestFiles;

namespace Engine.Core.Tests;

/// <summary>
/// Every rule of the safetensors format, broken one at a time in a file made on disk: each must be
/// rejected at Open with a <see cref="SafetensorsException"/> whose message names the file, the
/// tensor when one is at fault, and the rule broken. Also shows that lying lengths and shapes do not
/// make the reader allocate more than the file holds.
/// </summary>
[TestFixture]
public sealed class SafetensorsMalformedTests
{
    private SafetensorsTestFiles _files = null!;

    [OneTimeSetUp] public void SetUp() => _files = new SafetensorsTestFiles();
    [OneTimeTearDown] public void TearDown() => _files.Dispose();

    private const string A8 = "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}";

    /// <summary>(case name, file bytes, tensor expected in the message or null, fragment of the rule).</summary>
    public static IEnumerable<TestCaseData> Cases()
    {
        TestCaseData Case(string name, byte[] bytes, string? tensor, string rule) =>
            new TestCaseData(bytes, tensor, rule).SetName($"Malformed_{name}");

        yield return Case("EmptyFile", [], null, "file is empty (0 bytes)");
        yield return Case("ShorterThan8Bytes", [1, 0, 0, 0, 0], null, "file is 5 bytes, shorter than the 8-byte header length");
        yield return Case("HeaderLengthZero", Raw([], [], 0), null, "header length is 0");
        yield return Case("HeaderBeyondFile", Raw("{}"u8.ToArray(), new byte[6], 100), null, "header length 100 runs past the end of the 16-byte file (truncated?)");
        yield return Case("HeaderOverLimit", Raw("{}"u8.ToArray(), [], 200_000_000), null, "header length 200000000 exceeds the limit of 100000000 bytes");
        yield return Case("HeaderLengthMaxU64", Raw("{}"u8.ToArray(), [], ulong.MaxValue), null, $"header length {ulong.MaxValue} exceeds the limit");
        yield return Case("HeaderNotUtf8", Raw([(byte)'{', 0xFF, 0xFE, (byte)'}'], []), null, "header is not valid UTF-8");
        yield return Case("HeaderNotJson", Json("{\"a\": nope}", 0), null, "header is not valid JSON");
        yield return Case("HeaderTrailingComma", Json("{" + A8 + ",}", 8), null, "header is not valid JSON");
        yield return Case("HeaderTooDeep", Json("{\"__metadata__\":{\"k\":[[[[[[[[[[]]]]]]]]]]}}", 0), null, "header is not valid JSON");
        yield return Case("HeaderNotObject", Json("[1, 2]  ", 0), null, "header must start with '{' (a JSON object)");
        yield return Case("HeaderWithBom", Raw([0xEF, 0xBB, 0xBF, (byte)'{', (byte)'}'], []), null, "header must start with '{'");
        yield return Case("EntryNotObject", Json("{\"a\": 5}", 0), "a", "entry must be an object with dtype, shape and data_offsets");
        yield return Case("UnknownDtype", Json("{\"a\":{\"dtype\":\"F8_E4M3\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2), "a", "dtype 'F8_E4M3' is not supported");
        yield return Case("DtypeNotString", Json("{\"a\":{\"dtype\":4,\"shape\":[1],\"data_offsets\":[0,4]}}", 4), "a", "missing string field 'dtype'");
        yield return Case("MissingDtype", Json("{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8), "a", "missing string field 'dtype'");
        yield return Case("MissingShape", Json("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", 8), "a", "missing array field 'shape'");
        yield return Case("MissingDataOffsets", Json("{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8), "a", "missing field 'data_offsets' of two integers [begin, end]");
        yield return Case("DataOffsetsThreeValues", Json("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4,8]}}", 8), "a", "missing field 'data_offsets' of two integers");
        yield return Case("DataOffsetsNotNumbers", Json("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[\"0\",8]}}", 8), "a", "must be two integers [begin, end]");
        yield return Case("DataOffsetsFractional", Json("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8.5]}}", 8), "a", "must be two integers [begin, end]");
        yield return Case("NegativeShape", Json("{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8), "a", "shape entry -2 is not a non-negative 32-bit integer");
        yield return Case("FractionalShape", Json("{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,8]}}", 8), "a", "shape entry 1.5 is not a non-negative 32-bit integer");
        yield return Case("StringShape", Json("{\"a\":{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]}}", 8), "a", "shape entry 2 is not a non-negative 32-bit integer");
        yield return Case("StringShapeIsNamedAsAString", Json("{\"a\":{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]}}", 8), "a", "it is the string \"2\"; shape entries are numbers from 0 to 2147483647");
        yield return Case("NullShapeIsNamedAsNull", Json("{\"a\":{\"dtype\":\"F32\",\"shape\":[null],\"data_offsets\":[0,8]}}", 8), "a", "it is null; shape entries are numbers");
        yield return Case("ShapeBeyondInt32", Json("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296],\"data_offsets\":[0,8]}}", 8), "a", "shape entry 4294967296 is not a non-negative 32-bit integer");
        yield return Case("BeginAfterEnd", Json("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", 8), "a", "data_offsets [8,4] must satisfy 0 <= begin <= end");
        yield return Case("NegativeBegin", Json("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 8), "a", "must satisfy 0 <= begin <= end");
        yield return Case("DataTruncated", Json("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8), "a", "data_offsets end 16 is beyond the 8-byte data section (truncated?)");
        yield return Case("ShapeSizeMismatch", Json("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,16]}}", 16), "a", "shape [3] of F32 needs 12 bytes but data_offsets span 16");
        yield return Case("DtypeSizeMismatch", Json("{\"a\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[0,16]}}", 16), "a", "shape [4] of F16 needs 8 bytes but data_offsets span 16");
        yield return Case("HugeShape", Json("{\"a\":{\"dtype\":\"F32\",\"shape\":[2147483647,2147483647,2147483647,2147483647],\"data_offsets\":[0,4]}}", 4), "a", "needs more than 4 bytes but data_offsets span 4");
        yield return Case("OverlappingTensors", Json("{" + A8 + ",\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12), "b", "data [4, 12) overlaps tensor 'a'");
        yield return Case("SameRangeTwice", Json("{" + A8 + ",\"b\":{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8), "b", "overlaps tensor 'a'");
        yield return Case("GapBetweenTensors", Json("{" + A8 + ",\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]}}", 20), "b", "gap of 4 bytes before this tensor: data must be contiguous");
        yield return Case("GapAtStart", Json("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12), "a", "gap of 4 bytes before this tensor");
        yield return Case("TrailingBytes", Json("{" + A8 + "}", 12), null, "tensors cover 8 bytes but the data section has 12: trailing bytes are not allowed");
        yield return Case("DataWithoutTensors", Json("{}      ", 4), null, "tensors cover 0 bytes but the data section has 4");
        yield return Case("DuplicateTensorName", Json("{" + A8 + "," + A8 + "}", 8), "a", "duplicate tensor name");
        yield return Case("MetadataNotObject", Json("{\"__metadata__\":[\"x\"]}", 0), null, "'__metadata__' must be an object of strings");
        yield return Case("MetadataValueNotString", Json("{\"__metadata__\":{\"format\":1}}", 0), null, "'__metadata__' value 'format' is not a string");
        yield return Case("MetadataTwice", Json("{\"__metadata__\":{},\"__metadata__\":{}}", 0), null, "duplicate '__metadata__' entry");
        yield return Case("MetadataDuplicateKey", Json("{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", 0), null, "duplicate '__metadata__' key 'k'");
        yield return Case("UnknownEntryField", Json("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"strides\":[1]}}", 8), "a", "unknown field 'strides'");
    }

    [TestCaseSource(nameof(Cases))]
    public void OpenRejectsWithClearMessage(byte[] bytes, string? tensor, string rule)
    {
        var path = _files.WriteBytes(bytes, "bad");
        var ex = Assert.Throws<SafetensorsException>(() => SafetensorsFile.Open(path).Dispose())!;
        Assert.Multiple(() =>
        {
            Assert.That(ex.FilePath, Is.EqualTo(path));
            Assert.That(ex.Message, Does.StartWith(path + ": "), "message names the file");
            Assert.That(ex.TensorName, Is.EqualTo(tensor));
            if (tensor is not null) Assert.That(ex.Message, Does.Contain($"tensor '{tensor}'"), "message names the tensor");
            Assert.That(ex.Message, Does.Contain(rule), "message states the rule");
            Assert.That(ex.Rule, Does.Contain(rule));
        });
    }

    [Test]
    public void EveryCaseHasItsOwnMessage()
    {
        var messages = new List<string>();
        foreach (var c in Cases())
        {
            var path = _files.WriteBytes((byte[])c.Arguments[0]!, "bad");
            var ex = Assert.Throws<SafetensorsException>(() => SafetensorsFile.Open(path).Dispose())!;
            messages.Add(ex.Rule + " @ " + ex.TensorName);
        }
        // A few cases deliberately hit the same rule through different inputs; the rest must differ.
        Assert.That(messages.Distinct().Count(), Is.GreaterThanOrEqualTo(30), string.Join("\n", messages));
    }

    [Test]
    public void MissingFileIsFileNotFoundNamingThePath()
    {
        var path = _files.NewPath("absent");
        var ex = Assert.Throws<FileNotFoundException>(() => SafetensorsFile.Open(path));
        Assert.That(ex!.Message, Does.Contain(path));
    }

    [Test]
    public void FolderIsNamedAsAFolder()
    {
        var path = _files.NewPath("folder");
        Directory.CreateDirectory(path);
        var ex = Assert.Throws<SafetensorsException>(() => SafetensorsFile.Open(path))!;
        Assert.That(ex.Message, Does.Contain(path).And.Contain("is a folder; expected a safetensors file"));
    }

    [Test]
    public void NullOrEmptyPathIsArgumentError()
    {
        Assert.Throws<ArgumentNullException>(() => SafetensorsFile.Open(null!));
        Assert.Throws<ArgumentException>(() => SafetensorsFile.Open(""));
    }

    /// <summary>Files whose lengths or shapes claim far more than they hold.</summary>
    public static IEnumerable<TestCaseData> Liars()
    {
        yield return new TestCaseData(Raw("{}"u8.ToArray(), new byte[8], 99_999_999)).SetName("NoHugeAllocation_HeaderJustUnderLimit");
        yield return new TestCaseData(Raw("{}"u8.ToArray(), [], 1UL << 62)).SetName("NoHugeAllocation_HeaderLength2Pow62");
        yield return new TestCaseData(Json("{\"a\":{\"dtype\":\"F64\",\"shape\":[2147483647,2147483647],\"data_offsets\":[0,8]}}", 8)).SetName("NoHugeAllocation_HugeShape");
        yield return new TestCaseData(Json("{\"a\":{\"dtype\":\"F32\",\"shape\":[1073741824],\"data_offsets\":[0,4294967296]}}", 8)).SetName("NoHugeAllocation_HugeDataOffsets");
    }

    [TestCaseSource(nameof(Liars))]
    public void LyingFileDoesNotAllocateBeyondItsSize(byte[] bytes)
    {
        var path = _files.WriteBytes(bytes, "liar");
        Assert.Throws<SafetensorsException>(() => SafetensorsFile.Open(path).Dispose()); // warm up type loading
        long before = GC.GetAllocatedBytesForCurrentThread();
        Assert.Throws<SafetensorsException>(() => SafetensorsFile.Open(path).Dispose());
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        // Fixed cost of a FileStream buffer, the JSON parse and the exception, plus a small multiple of the file.
        long bound = 64 * 1024 + 64L * bytes.Length;
        Assert.That(allocated, Is.LessThan(bound), $"Open of a {bytes.Length}-byte file allocated {allocated} bytes");
    }

    [Test]
    public void ZeroElementTensorWithHugeDimensionsIsValidAndCheap()
    {
        var bytes = Json("{\"a\":{\"dtype\":\"F32\",\"shape\":[2147483647,2147483647,2147483647,0],\"data_offsets\":[0,0]}}", 0);
        var path = _files.WriteBytes(bytes, "zero");
        SafetensorsFile.Open(path).Dispose();
        long before = GC.GetAllocatedBytesForCurrentThread();
        using (var file = SafetensorsFile.Open(path))
        {
            Assert.That(file.Info("a").Length, Is.Zero);
            Assert.That(file.ReadFloats("a"), Is.Empty);
        }
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.That(allocated, Is.LessThan(64 * 1024 + 64L * bytes.Length));
    }

    [Test]
    public void RandomCorruptionNeverCrashes()
    {
        // Flip bytes of a valid header at fixed seeds: every outcome is a clean open or a SafetensorsException.
        var good = Json("{\"__metadata__\":{\"k\":\"v\"},\"a\":{\"dtype\":\"F32\",\"shape\":[2,1],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[8,12]}}", 12);
        var rng = new Random(1234);
        int rejected = 0;
        for (int trial = 0; trial < 300; trial++)
        {
            var bytes = (byte[])good.Clone();
            int flips = 1 + rng.Next(3);
            for (int f = 0; f < flips; f++) bytes[rng.Next(bytes.Length)] = (byte)rng.Next(256);
            var path = _files.WriteBytes(bytes, "fuzz");
            try
            {
                using var file = SafetensorsFile.Open(path);
                foreach (var name in file.Tensors.Keys) Assert.That(file.ReadFloats(name), Has.Length.EqualTo(file.Info(name).Length));
            }
            catch (SafetensorsException ex)
            {
                Assert.That(ex.Message, Does.StartWith(path));
                rejected++;
            }
            File.Delete(path);
        }
        Assert.That(rejected, Is.GreaterThan(0));
    }
}
