using System.IO.MemoryMappedFiles;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;

namespace Engine.Core.Safetensors;

/// <summary>
/// A memory-mapped safetensors file: an 8-byte little-endian header length, a JSON header mapping
/// names to {dtype, shape, data_offsets}, then the data section. Opening validates every rule of the
/// format before any tensor is touched, and reports the first broken rule with the file and tensor
/// named. Tensor bytes are served straight from the mapping (no copy on the host).
/// </summary>
public sealed unsafe class SafetensorsFile : IDisposable
{
    /// <summary>Largest header accepted (the format's own limit is 100 MB).</summary>
    public const long MaxHeaderBytes = 100_000_000;

    private readonly MemoryMappedFile? _map;
    private readonly MemoryMappedViewAccessor? _view;
    private readonly byte* _base;
    private readonly long _dataStart;
    private readonly Dictionary<string, TensorInfo> _tensors;
    private bool _pointerAcquired;
    private bool _disposed;

    private SafetensorsFile(string path, MemoryMappedFile? map, MemoryMappedViewAccessor? view, byte* basePtr, long dataStart,
        Dictionary<string, TensorInfo> tensors, IReadOnlyDictionary<string, string> metadata)
    {
        Path = path;
        _map = map;
        _view = view;
        _base = basePtr;
        _pointerAcquired = basePtr != null;
        _dataStart = dataStart;
        _tensors = tensors;
        Metadata = metadata;
    }

    /// <summary>The file's path.</summary>
    public string Path { get; }

    /// <summary>Every tensor in the file, by name.</summary>
    public IReadOnlyDictionary<string, TensorInfo> Tensors => _tensors;

    /// <summary>The optional <c>__metadata__</c> string map.</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Whether the file holds a tensor called <paramref name="name"/>.</summary>
    public bool Contains(string name) => _tensors.ContainsKey(name);

    /// <summary>Opens and validates a file; throws <see cref="SafetensorsException"/> on any violation.</summary>
    public static SafetensorsFile Open(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (Directory.Exists(path)) throw new SafetensorsException(path, null, "is a folder; expected a safetensors file");
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: safetensors file not found.", path);
        long fileLength = new FileInfo(path).Length;
        if (fileLength == 0) throw new SafetensorsException(path, null, "file is empty (0 bytes); a safetensors file starts with an 8-byte header length");
        if (fileLength < 8) throw new SafetensorsException(path, null, $"file is {fileLength} bytes, shorter than the 8-byte header length");
        byte[] headerBytes;
        using (var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read))
        {
            Span<byte> lengthBytes = stackalloc byte[8];
            stream.ReadExactly(lengthBytes);
            ulong headerLength = BitConverter.ToUInt64(lengthBytes);
            if (headerLength == 0) throw new SafetensorsException(path, null, "header length is 0; the header must be a JSON object");
            if (headerLength > MaxHeaderBytes) throw new SafetensorsException(path, null, $"header length {headerLength} exceeds the limit of {MaxHeaderBytes} bytes");
            if ((long)headerLength > fileLength - 8) throw new SafetensorsException(path, null, $"header length {headerLength} runs past the end of the {fileLength}-byte file (truncated?)");
            headerBytes = new byte[headerLength];
            stream.ReadExactly(headerBytes);
        }
        long dataStart = 8 + headerBytes.Length, dataLength = fileLength - dataStart;
        var (tensors, metadata) = ParseHeader(path, headerBytes, dataLength);

        if (dataLength == 0) return new SafetensorsFile(path, null, null, null, dataStart, tensors, metadata);
        MemoryMappedFile? map = null;
        MemoryMappedViewAccessor? view = null;
        try
        {
            map = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
            view = map.CreateViewAccessor(0, fileLength, MemoryMappedFileAccess.Read);
            byte* ptr = null;
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref ptr);
            return new SafetensorsFile(path, map, view, ptr + view.PointerOffset, dataStart, tensors, metadata);
        }
        catch
        {
            // The file changed between validation and mapping (or could not be mapped): release what was opened.
            view?.Dispose();
            map?.Dispose();
            throw;
        }
    }

    private static (Dictionary<string, TensorInfo>, Dictionary<string, string>) ParseHeader(string path, byte[] header, long dataLength)
    {
        string text;
        try { text = new UTF8Encoding(false, true).GetString(header); }
        catch (DecoderFallbackException) { throw new SafetensorsException(path, null, "header is not valid UTF-8"); }
        if (!text.StartsWith('{')) throw new SafetensorsException(path, null, "header must start with '{' (a JSON object)");
        JsonDocument doc;
        try { doc = JsonDocument.Parse(text, new JsonDocumentOptions { MaxDepth = 8 }); }
        catch (JsonException e) { throw new SafetensorsException(path, null, $"header is not valid JSON: {e.Message}"); }
        var tensors = new Dictionary<string, TensorInfo>(StringComparer.Ordinal);
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new SafetensorsException(path, null, "header must be a JSON object");
            bool sawMetadata = false;
            foreach (var entry in doc.RootElement.EnumerateObject())
            {
                if (entry.Name == "__metadata__")
                {
                    if (sawMetadata) throw new SafetensorsException(path, null, "duplicate '__metadata__' entry");
                    sawMetadata = true;
                    if (entry.Value.ValueKind != JsonValueKind.Object) throw new SafetensorsException(path, null, "'__metadata__' must be an object of strings");
                    foreach (var m in entry.Value.EnumerateObject())
                    {
                        if (m.Value.ValueKind != JsonValueKind.String) throw new SafetensorsException(path, null, $"'__metadata__' value '{m.Name}' is not a string");
                        if (!metadata.TryAdd(m.Name, m.Value.GetString()!)) throw new SafetensorsException(path, null, $"duplicate '__metadata__' key '{m.Name}'");
                    }
                    continue;
                }
                if (tensors.ContainsKey(entry.Name)) throw new SafetensorsException(path, entry.Name, "duplicate tensor name");
                tensors[entry.Name] = ParseEntry(path, entry.Name, entry.Value, dataLength);
            }
        }
        CheckLayout(path, tensors.Values, dataLength);
        return (tensors, metadata);
    }

    private static TensorInfo ParseEntry(string path, string name, JsonElement e, long dataLength)
    {
        if (e.ValueKind != JsonValueKind.Object) throw new SafetensorsException(path, name, "entry must be an object with dtype, shape and data_offsets");
        if (!e.TryGetProperty("dtype", out var dtypeEl) || dtypeEl.ValueKind != JsonValueKind.String) throw new SafetensorsException(path, name, "missing string field 'dtype'");
        string dtypeName = dtypeEl.GetString()!;
        StorageType type = dtypeName switch
        {
            "F32" => StorageType.F32, "F16" => StorageType.F16, "BF16" => StorageType.BF16,
            "F64" => StorageType.F64, "I64" => StorageType.I64, "I32" => StorageType.I32,
            _ => throw new SafetensorsException(path, name, $"dtype '{dtypeName}' is not supported (F32, F16, BF16, F64, I64, I32)"),
        };
        if (!e.TryGetProperty("shape", out var shapeEl) || shapeEl.ValueKind != JsonValueKind.Array) throw new SafetensorsException(path, name, "missing array field 'shape'");
        var shape = new int[shapeEl.GetArrayLength()];
        int i = 0;
        long elements = 1;
        foreach (var d in shapeEl.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt32(out int dim) || dim < 0)
                throw new SafetensorsException(path, name, $"shape entry {d} is not a non-negative 32-bit integer"
                    + (d.ValueKind == JsonValueKind.Number ? "" : $": it is {Describe(d)}; shape entries are numbers from 0 to {int.MaxValue}"));
            shape[i++] = dim;
            // Saturate at dataLength + 1 before multiplying so the product never overflows; a saturated
            // count can never match the byte span and is reported below (a zero dimension still gives 0).
            elements = dim == 0 ? 0 : elements > (dataLength + 1) / dim ? dataLength + 1 : elements * dim;
        }
        if (!e.TryGetProperty("data_offsets", out var offEl) || offEl.ValueKind != JsonValueKind.Array || offEl.GetArrayLength() != 2)
            throw new SafetensorsException(path, name, "missing field 'data_offsets' of two integers [begin, end]");
        if (offEl[0].ValueKind != JsonValueKind.Number || offEl[1].ValueKind != JsonValueKind.Number
            || !offEl[0].TryGetInt64(out long begin) || !offEl[1].TryGetInt64(out long end))
            throw new SafetensorsException(path, name, $"data_offsets {offEl} must be two integers [begin, end]");
        if (begin < 0 || end < begin)
            throw new SafetensorsException(path, name, $"data_offsets {offEl} must satisfy 0 <= begin <= end");
        if (end > dataLength) throw new SafetensorsException(path, name, $"data_offsets end {end} is beyond the {dataLength}-byte data section (truncated?)");
        var info = new TensorInfo(name, type, shape, begin, end);
        if (elements * info.ElementSize != end - begin)
            throw new SafetensorsException(path, name, $"shape {Tensor.ShapeString(shape)} of {dtypeName} needs {(elements > dataLength ? "more than " + dataLength : (elements * info.ElementSize).ToString())} bytes but data_offsets span {end - begin}");
        foreach (var p in e.EnumerateObject())
            if (p.Name is not ("dtype" or "shape" or "data_offsets")) throw new SafetensorsException(path, name, $"unknown field '{p.Name}'");
        return info;
    }

    // A JSON value as a message names it: the string "2", null, the array [2].
    private static string Describe(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.String => $"the string {e.GetRawText()}",
        JsonValueKind.Null => "null",
        _ => $"the {e.ValueKind.ToString().ToLowerInvariant()} {e.GetRawText()}",
    };

    private static void CheckLayout(string path, IEnumerable<TensorInfo> infos, long dataLength)
    {
        long cursor = 0;
        string? previous = null;
        foreach (var t in infos.OrderBy(t => t.Begin).ThenBy(t => t.End))
        {
            if (t.Begin < cursor) throw new SafetensorsException(path, t.Name, $"data [{t.Begin}, {t.End}) overlaps tensor '{previous}'");
            if (t.Begin > cursor) throw new SafetensorsException(path, t.Name, $"gap of {t.Begin - cursor} bytes before this tensor: data must be contiguous");
            cursor = t.End;
            previous = t.Name;
        }
        if (cursor != dataLength) throw new SafetensorsException(path, null, $"tensors cover {cursor} bytes but the data section has {dataLength}: trailing bytes are not allowed");
    }

    /// <summary>Header entry of tensor <paramref name="name"/>; throws naming the file if absent.</summary>
    public TensorInfo Info(string name) =>
        _tensors.TryGetValue(name, out var info) ? info : throw new KeyNotFoundException($"{Path}: no tensor named '{name}'.");

    /// <summary>The raw little-endian bytes of a tensor, straight from the mapping (valid until disposed).</summary>
    public ReadOnlySpan<byte> GetBytes(string name)
    {
        if (_disposed) throw new ObjectDisposedException(nameof(SafetensorsFile), $"{Path}: the file was disposed; tensor '{name}' can no longer be read.");
        var info = Info(name);
        if (info.ByteLength == 0) return ReadOnlySpan<byte>.Empty;
        if (info.ByteLength > int.MaxValue) throw new SafetensorsException(Path, name, "tensor larger than 2 GiB cannot be read as one span");
        return new ReadOnlySpan<byte>(_base + _dataStart + info.Begin, (int)info.ByteLength);
    }

    /// <summary>Reads a tensor as float32 on the host, converting from any supported storage type.</summary>
    public float[] ReadFloats(string name)
    {
        var info = Info(name);
        var bytes = GetBytes(name);
        var result = new float[info.Length];
        switch (info.Type)
        {
            case StorageType.F32: MemoryMarshal.Cast<byte, float>(bytes).CopyTo(result); break;
            case StorageType.F16: System.Numerics.Tensors.TensorPrimitives.ConvertToSingle(MemoryMarshal.Cast<byte, Half>(bytes), result); break;
            case StorageType.BF16:
                var bits = MemoryMarshal.Cast<byte, ushort>(bytes);
                for (int i = 0; i < result.Length; i++) result[i] = DTypeExtensions.BFloat16ToSingle(bits[i]);
                break;
            case StorageType.F64:
                var d = MemoryMarshal.Cast<byte, double>(bytes);
                for (int i = 0; i < result.Length; i++) result[i] = (float)d[i];
                break;
            case StorageType.I64:
                var l = MemoryMarshal.Cast<byte, long>(bytes);
                for (int i = 0; i < result.Length; i++) result[i] = l[i];
                break;
            default:
                var n = MemoryMarshal.Cast<byte, int>(bytes);
                for (int i = 0; i < result.Length; i++) result[i] = n[i];
                break;
        }
        return result;
    }

    /// <summary>
    /// Loads a tensor onto <paramref name="device"/>. F32/F16/BF16 storage is copied from the mapping
    /// straight to the device and then converted to <paramref name="dtype"/> (default F32) there;
    /// other types go through a float32 host array.
    /// </summary>
    public Tensor Load(Device device, string name, DType dtype = DType.F32)
    {
        var info = Info(name);
        var shape = (int[])info.Shape.Clone();
        var staged = info.DeviceType is { } stored
            ? device.UploadRaw(GetBytes(name), stored, shape)
            : device.Upload(ReadFloats(name), shape);
        if (staged.DType == dtype) return staged;
        try { return device.Convert(staged, dtype); }
        finally { staged.Dispose(); }
    }

    /// <summary>Unmaps the file; later reads of tensor data throw <see cref="ObjectDisposedException"/>. Safe to call twice.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        if (_pointerAcquired)
        {
            _view!.SafeMemoryMappedViewHandle.ReleasePointer();
            _pointerAcquired = false;
        }
        _view?.Dispose();
        _map?.Dispose();
    }
}
