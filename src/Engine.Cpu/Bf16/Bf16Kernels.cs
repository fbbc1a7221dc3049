using System.Runtime.InteropServices;

namespace Engine.Cpu;

/// <summary>
/// The native bf16 kernel library (<c>libengine_bf16.so</c>, source in native/bf16): .NET 10 has no
/// intrinsics for AVX512-BF16 or AMX, so the bf16 GEMM micro-kernel is C, loaded at run time. Found
/// beside the application, beside Engine.Cpu.dll, or at <c>ENGINE_BF16_LIBRARY</c> (a path; <c>none</c>
/// disables it). When the library or the CPU features are missing, <see cref="UnavailableReason"/> says
/// why and the CPU backend keeps its managed float32 path.
/// </summary>
internal sealed unsafe class Bf16Kernels
{
    private const int InterfaceVersion = 1;
    private const string FileName = "libengine_bf16.so";

    // eb_features bits (native/bf16/engine_bf16.c).
    private const int Avx512F = 1, Avx512Bf16 = 2, AmxTile = 4, AmxBf16 = 8, OsZmm = 16, OsAmx = 32;

    private static readonly Lazy<Bf16Kernels> Shared = new(() => Load(Environment.GetEnvironmentVariable("ENGINE_BF16_LIBRARY")));

    private readonly delegate* unmanaged<void*, int, int, int, long, ushort*, long, void> _rowsToBf16;
    private readonly delegate* unmanaged<void*, int, int, int, long, uint*, void> _packBFromRows;
    private readonly delegate* unmanaged<float*, int*, int, int, int, uint*, void> _packColumns;
    private readonly delegate* unmanaged<int, int, int, ushort*, long, uint*, long, float*, long, float*, float*, void> _gemm;

    private Bf16Kernels(string? path, string? unavailable) { LibraryPath = path; UnavailableReason = unavailable; }

    private Bf16Kernels(string path, nint handle, int features, bool amxPermitted, bool runtimeAvx512)
    {
        LibraryPath = path;
        Features = features;
        AmxPermitted = amxPermitted;
        _rowsToBf16 = (delegate* unmanaged<void*, int, int, int, long, ushort*, long, void>)NativeLibrary.GetExport(handle, "eb_rows_to_bf16");
        _packBFromRows = (delegate* unmanaged<void*, int, int, int, long, uint*, void>)NativeLibrary.GetExport(handle, "eb_pack_b_from_rows");
        _packColumns = (delegate* unmanaged<float*, int*, int, int, int, uint*, void>)NativeLibrary.GetExport(handle, "eb_pack_columns");
        _gemm = (delegate* unmanaged<int, int, int, ushort*, long, uint*, long, float*, long, float*, float*, void>)NativeLibrary.GetExport(handle, "eb_gemm");
        bool cpu = (features & (Avx512F | Avx512Bf16 | OsZmm)) == (Avx512F | Avx512Bf16 | OsZmm);
        // The kernels are AVX-512 code: where the runtime keeps AVX-512 off (DOTNET_EnableAVX512=0, or a CPU whose
        // AVX-512 it does not take as complete) the process runs without it, native kernels included.
        UnavailableReason = !cpu ? "this CPU (or the OS) does not offer AVX-512F with AVX512-BF16"
            : !runtimeAvx512 ? "the .NET runtime keeps AVX-512 off in this process: a DOTNET_EnableAVX512=0 or DOTNET_EnableAVX2=0 switch, or AVX-512 it does not use"
            : null;
    }

    /// <summary>The library the process uses (ENGINE_BF16_LIBRARY or the default search).</summary>
    public static Bf16Kernels Default => Shared.Value;

    /// <summary>Columns per packed B panel (eb_panel_cols).</summary>
    public const int PanelCols = 32;

    /// <summary>The library file loaded, or null.</summary>
    public string? LibraryPath { get; }

    /// <summary>Null when the kernels can run; else why not.</summary>
    public string? UnavailableReason { get; }

    /// <summary>eb_features bits; 0 when the library is not loaded.</summary>
    public int Features { get; }

    /// <summary>Whether Linux granted this process the AMX tile state (requested at load when the CPU has AMX).</summary>
    public bool AmxPermitted { get; }

    /// <summary>Whether the CPU reports AMX-BF16 tiles (the kernels use AVX512-BF16 either way).</summary>
    public bool HasAmx => (Features & (AmxTile | AmxBf16 | OsAmx)) == (AmxTile | AmxBf16 | OsAmx);

    /// <summary>One line for <c>engine info</c>.</summary>
    public string Describe()
    {
        if (LibraryPath is null || Features == 0)
            return $"bf16 compute: unavailable ({UnavailableReason})";
        string amx = HasAmx ? $"AMX-BF16 present, tile permission {(AmxPermitted ? "granted" : "refused")} (kernels use AVX512-BF16)" : "no AMX-BF16";
        string cpu = $"AVX512-BF16 {((Features & Avx512Bf16) != 0 ? "yes" : "no")}, {amx}";
        return UnavailableReason is null ? $"bf16 compute: available via {LibraryPath} ({cpu})" : $"bf16 compute: unavailable ({UnavailableReason}; {cpu})";
    }

    /// <summary>
    /// Loads the library at <paramref name="path"/> (null: beside the application or Engine.Cpu.dll; "none":
    /// not at all) and requests AMX permission where the CPU has AMX. Never throws: a failure is the reason.
    /// </summary>
    public static Bf16Kernels Load(string? path) => Load(path, System.Runtime.Intrinsics.X86.Avx512F.IsSupported);

    /// <summary>
    /// As <see cref="Load(string?)"/>, with whether the .NET runtime uses AVX-512F in this process
    /// (<see cref="System.Runtime.Intrinsics.X86.Avx512F.IsSupported"/>; false under <c>DOTNET_EnableAVX512=0</c>) given, so tests can take it away.
    /// </summary>
    internal static Bf16Kernels Load(string? path, bool runtimeAvx512)
    {
        if (string.Equals(path, "none", StringComparison.OrdinalIgnoreCase)) return new(null, "disabled by ENGINE_BF16_LIBRARY=none");
        if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture != Architecture.X64)
            return new(null, "the bf16 kernel library is built for Linux x64 only");
        var candidates = path is not null ? [path] : new[]
        {
            Path.Combine(AppContext.BaseDirectory, FileName),
            Path.Combine(Path.GetDirectoryName(typeof(Bf16Kernels).Assembly.Location) ?? "", FileName),
        };
        foreach (var candidate in candidates)
        {
            if (!File.Exists(candidate) || !NativeLibrary.TryLoad(candidate, out var handle)) continue;
            if (!NativeLibrary.TryGetExport(handle, "eb_version", out var versionExport) ||
                ((delegate* unmanaged<int>)versionExport)() != InterfaceVersion)
                return new(candidate, $"{candidate} is not version {InterfaceVersion} of the bf16 kernel library");
            int features = ((delegate* unmanaged<int>)NativeLibrary.GetExport(handle, "eb_features"))();
            bool amx = (features & (AmxTile | AmxBf16 | OsAmx)) == (AmxTile | AmxBf16 | OsAmx) &&
                ((delegate* unmanaged<int>)NativeLibrary.GetExport(handle, "eb_request_amx"))() != 0;
            return new Bf16Kernels(candidate, handle, features, amx, runtimeAvx512);
        }
        return new(null, $"{FileName} not found ({string.Join(", ", candidates)}); build it with CMake or a C compiler");
    }

    /// <summary>Rows of src (dtype 0 f32, 1 f16, 2 bf16) as bf16 rows of stride ldd (even), zero-padded.</summary>
    public void RowsToBf16(void* src, int dtype, int rows, int cols, long lds, ushort* dst, long ldd) => _rowsToBf16(src, dtype, rows, cols, lds, dst, ldd);

    /// <summary>Packs B = W^T (W: n rows of k) into panels of <see cref="PanelCols"/> columns, ceil(k/2) pairs each.</summary>
    public void PackBFromRows(void* w, int dtype, int n, int k, long ldw, uint* dst) => _packBFromRows(w, dtype, n, k, ldw, dst);

    /// <summary>One B panel of a convolution's column matrix from a float32 image (geometry: cin, h, w, kh, kw, stride, pad, wo).</summary>
    public void PackColumns(float* x, int* geometry, int j0, int count, int pairs, uint* dst) => _packColumns(x, geometry, j0, count, pairs, dst);

    /// <summary>C[m, n] = A B + row bias + column bias (bf16 inputs, float32 accumulation).</summary>
    public void Gemm(int m, int n, int pairs, ushort* a, long lda, uint* b, long panelStride, float* c, long ldc, float* rowBias, float* colBias) =>
        _gemm(m, n, pairs, a, lda, b, panelStride, c, ldc, rowBias, colBias);
}
