using System.Runtime.InteropServices;
using Engine.Core;
using Engine.Kernels;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;
using ILGPU.Runtime.OpenCL;
using Device = Engine.Core.Device;

namespace Engine.Gpu;

/// <summary>
/// A device backed by an ILGPU accelerator: CUDA, OpenCL, or ILGPU's CPU accelerator (the last one
/// simulates a GPU on the host and exists to test the kernels without a GPU; it is slow). Every op
/// runs hand-written kernels from Engine.Kernels on the accelerator's default stream, so work is
/// queued in order and tensors stay on the device until <see cref="Device.Download(Tensor)"/>.
/// Launch configurations (group sizes, tiles, shared memory) derive from the accelerator's limits.
/// </summary>
public sealed partial class IlgpuDevice : Device
{
    /// <summary>Shared memory a group may use: CUDA's static limit, which ILGPU does not raise.</summary>
    private const int SharedMemoryCap = 48 * 1024;

    private readonly Context _context;
    private readonly Accelerator _accelerator;
    private readonly KernelCache _kernels;
    private readonly string _kind;
    private bool _closed;
    private readonly int _reductionGroup, _gemmTile, _attentionGroup, _sharedBytes;
    private readonly bool _tiledAttention;

    private IlgpuDevice(string kind, Context context, Accelerator accelerator)
    {
        _kind = kind;
        _context = context;
        _accelerator = accelerator;
        _kernels = new KernelCache(accelerator);
        int maxGroup = accelerator.MaxNumThreadsPerGroup;
        _sharedBytes = (int)Math.Min(SharedMemoryCap, accelerator.MaxSharedMemoryPerGroup);
        _reductionGroup = FloorPow2(Math.Min(256, maxGroup));
        _attentionGroup = FloorPow2(Math.Min(128, maxGroup));
        int tile = 16;
        while (tile > 1 && (tile * tile > maxGroup || TileLayout.SharedFloats(MicroTile.Size, tile) * sizeof(float) > _sharedBytes)) tile /= 2;
        _gemmTile = tile;
        // The register-tiled attention needs 256-thread groups, 32-lane warps for its half-warp
        // shuffles (CUDA; the CPU accelerator emulates them) and its shared tiles at d = 64.
        _tiledAttention = maxGroup >= AttentionTiledKernels.Threads * AttentionTiledKernels.Threads && accelerator.WarpSize == 32
            && accelerator.AcceleratorType is AcceleratorType.Cuda or AcceleratorType.CPU
            && AttentionTiledKernels.SharedFloats(AttentionTiledKernels.MaxHeadDim) * sizeof(float) <= _sharedBytes;
    }

    /// <summary>
    /// Opens the ILGPU device of the given kind: <c>cuda</c>, <c>opencl</c> or <c>ilgpu-cpu</c>.
    /// Throws <see cref="PlatformNotSupportedException"/> naming the kind when no such device exists.
    /// <paramref name="index"/> picks one of several CUDA or OpenCL devices (<c>cuda:1</c>), in ILGPU's order.
    /// </summary>
    public static IlgpuDevice Create(string kind, int index = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        kind = kind.Trim().ToLowerInvariant();
        Context? context = null;
        try
        {
            switch (kind)
            {
                case "cuda":
                    context = Context.Create(b => Configure(b.Cuda()));
                    if (context.GetCudaDevices().Count <= index) throw new PlatformNotSupportedException(IndexMissing("cuda", index, context.GetCudaDevices().Count, "CUDA"));
                    return new IlgpuDevice(kind, context, context.CreateCudaAccelerator(index));
                case "opencl":
                    context = Context.Create(b => Configure(b.OpenCL()));
                    if (context.GetCLDevices().Count <= index) throw new PlatformNotSupportedException(IndexMissing("opencl", index, context.GetCLDevices().Count, "OpenCL"));
                    return new IlgpuDevice(kind, context, context.CreateCLAccelerator(index));
                case "ilgpu-cpu":
                    if (index > 0) throw new ArgumentException($"ilgpu-cpu has one device; got index {index}.");
                    context = Context.Create(b => Configure(b.CPU(SimulatedGpu)));
                    return new IlgpuDevice(kind, context, context.CreateCPUAccelerator(0));
                default:
                    throw new ArgumentException($"Unknown ILGPU device kind '{kind}'; supported: cuda, opencl, ilgpu-cpu.");
            }
        }
        catch (Exception e) when (e is not PlatformNotSupportedException and not ArgumentException)
        {
            context?.Dispose();
            throw new PlatformNotSupportedException($"{kind} requested but the ILGPU {kind} backend could not start: {e.Message}", e);
        }
        catch
        {
            context?.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The CPU accelerator's simulated GPU: NVIDIA-like 32-wide warps, two warps per group (64
    /// threads), one multiprocessor. Small groups keep barrier rounds cheap on the host, and the
    /// 32-wide warps exercise the same code paths as CUDA.
    /// </summary>
    private static CPUDevice SimulatedGpu => new(numThreadsPerWarp: 32, numWarpsPerMultiprocessor: 2, numMultiprocessors: 1);

    /// <summary>
    /// An <c>ilgpu-cpu</c> device whose simulated GPU allows <paramref name="warpsPerGroup"/> 32-wide
    /// warps per group, so tests can run the launch configurations a real GPU gets (8 warps: 256
    /// threads, 16 x 16 GEMM thread tiles, 128-thread attention groups with 64-row tiles).
    /// </summary>
    internal static IlgpuDevice CreateSimulated(int warpsPerGroup)
    {
        var context = Context.Create(b => Configure(b.CPU(new CPUDevice(32, warpsPerGroup, 1))));
        try { return new IlgpuDevice("ilgpu-cpu", context, context.CreateCPUAccelerator(0)); }
        catch { context.Dispose(); throw; }
    }

    /// <summary>Launch parameters derived from the accelerator: (GEMM thread tile, reduction group, attention group).</summary>
    internal (int GemmTile, int ReductionGroup, int AttentionGroup) LaunchShape => (_gemmTile, _reductionGroup, _attentionGroup);

    private static Context.Builder Configure(Context.Builder builder)
    {
        builder.EnableAlgorithms();
#if DEBUG
        return builder.Optimize(OptimizationLevel.Debug);
#else
        return builder.Optimize(OptimizationLevel.O2);
#endif
    }

    /// <summary>Lines describing the ILGPU accelerators present (CUDA and OpenCL), for <c>engine info</c>.</summary>
    public static IEnumerable<string> DescribeAccelerators()
    {
        var lines = new List<string>();
        try
        {
            using var context = Context.Create(b => b.Cuda().OpenCL());
            var seen = new Dictionary<string, int>();
            foreach (var d in context.Devices)
            {
                string kind = d.AcceleratorType switch { AcceleratorType.Cuda => "cuda", AcceleratorType.OpenCL => "opencl", _ => "ilgpu-cpu" };
                // The index is what --device cuda:N selects (devices of one kind in ILGPU's order).
                int index = seen[kind] = seen.GetValueOrDefault(kind, -1) + 1;
                string id = kind == "ilgpu-cpu" ? kind : $"{kind}:{index}";
                lines.Add($"{id}: {d.Name} ({d.MemorySize / (1024 * 1024)} MiB, {d.NumMultiprocessors} multiprocessors, warp {d.WarpSize}, max group {d.MaxNumThreadsPerGroup})");
            }
        }
        catch (Exception e) when (e is DllNotFoundException or TypeInitializationException or InvalidOperationException or NotSupportedException)
        {
            lines.Add($"ilgpu: accelerator discovery failed: {e.Message}");
        }
        return lines;
    }

    /// <summary>Whether at least one CUDA device is present.</summary>
    public static bool HasCuda()
    {
        try
        {
            using var context = Context.Create(b => b.Cuda());
            return context.GetCudaDevices().Count > 0;
        }
        catch (Exception e) when (e is DllNotFoundException or TypeInitializationException or InvalidOperationException or NotSupportedException)
        {
            return false;
        }
    }

    /// <inheritdoc />
    public override string Name => $"{_kind}: {_accelerator.Name}";

    /// <inheritdoc />
    public override string Kind => _kind;

    /// <summary>The underlying accelerator (for diagnostics and benchmarks).</summary>
    internal Accelerator Accelerator => _accelerator;

    /// <inheritdoc />
    public override long? DedicatedMemoryBytes => _accelerator.AcceleratorType == AcceleratorType.CPU ? null : _accelerator.MemorySize;

    private AcceleratorStream Stream => _accelerator.DefaultStream;

    private static int FloorPow2(int v)
    {
        int p = 1;
        while (p * 2 <= v) p *= 2;
        return p;
    }

    /// <inheritdoc />
    public override void Synchronize() => _accelerator.Synchronize();

    /// <inheritdoc />
    protected override DeviceBuffer CreateBuffer(DType dtype, long length) => new IlgpuBuffer(_accelerator, dtype, length);

    /// <summary>The float32 elements of a tensor as a view of its storage.</summary>
    private static ArrayView<float> View(Tensor t) => ((IlgpuBuffer)t.Buffer).F32!.View.SubView(t.Offset, t.Length);

    private static ArrayView<ILGPU.Half> ViewF16(Tensor t) => ((IlgpuBuffer)t.Buffer).F16!.View.SubView(t.Offset, t.Length);

    private static ArrayView<ushort> ViewBF16(Tensor t) => ((IlgpuBuffer)t.Buffer).BF16!.View.SubView(t.Offset, t.Length);

    /// <summary>Element count as a 1-D launch extent; throws for tensors beyond one launch.</summary>
    private static int Extent(long length, string op)
    {
        if (length > int.MaxValue) throw new ArgumentException($"{op}: {length} elements exceed one kernel launch ({int.MaxValue}).");
        return (int)length;
    }

    /// <summary>A launch grid, checked against the accelerator's grid limits.</summary>
    private Index3D GridOf(long x, long y, long z, string op)
    {
        var max = _accelerator.MaxGridSize;
        if (x > max.X || y > max.Y || z > max.Z)
            throw new ArgumentException($"{op}: launch grid ({x}, {y}, {z}) exceeds {Name}'s limits ({max.X}, {max.Y}, {max.Z}).");
        return new Index3D((int)x, (int)y, (int)z);
    }

    /// <inheritdoc />
    protected override void CopyFromHostCore(ReadOnlySpan<byte> bytes, Tensor dst)
    {
        if (dst.Length == 0) return;
        switch (dst.DType)
        {
            case DType.F32: View(dst).CopyFromCPU(Stream, MemoryMarshal.Cast<byte, float>(bytes)); break;
            case DType.F16: ViewF16(dst).CopyFromCPU(Stream, MemoryMarshal.Cast<byte, ILGPU.Half>(bytes)); break;
            default: ViewBF16(dst).CopyFromCPU(Stream, MemoryMarshal.Cast<byte, ushort>(bytes)); break;
        }
        // The host span may be freed once we return.
        Stream.Synchronize();
    }

    /// <inheritdoc />
    protected override void CopyToHostCore(Tensor src, Span<float> dst)
    {
        if (src.Length == 0) return;
        switch (src.DType)
        {
            case DType.F32:
                View(src).CopyToCPU(Stream, dst);
                Stream.Synchronize();
                break;
            case DType.F16:
            {
                var raw = new ILGPU.Half[src.Length];
                ViewF16(src).CopyToCPU(Stream, raw.AsSpan());
                Stream.Synchronize();
                System.Numerics.Tensors.TensorPrimitives.ConvertToSingle(MemoryMarshal.Cast<ILGPU.Half, System.Half>(raw), dst);
                break;
            }
            default:
            {
                var raw = new ushort[src.Length];
                ViewBF16(src).CopyToCPU(Stream, raw.AsSpan());
                Stream.Synchronize();
                for (int i = 0; i < raw.Length; i++) dst[i] = DTypeExtensions.BFloat16ToSingle(raw[i]);
                break;
            }
        }
    }

    private MemoryBuffer1D<float, Stride1D.Dense>? _scratch;

    /// <summary>
    /// A device scratch view of at least <paramref name="length"/> floats for one op's intermediate
    /// values (GroupNorm's partial statistics), grown on demand and kept: launches run in order on one
    /// stream, so consecutive ops can share it.
    /// </summary>
    private ArrayView<float> Scratch(long length)
    {
        if (_scratch is null || _scratch.Length < length)
        {
            _scratch?.Dispose();
            _scratch = _accelerator.Allocate1D<float>(Math.Max(length, 4096));
        }
        return _scratch.View.SubView(0, length);
    }

    /// <inheritdoc />
    public override void Dispose()
    {
        if (_closed) return;
        _closed = true;
        _scratch?.Dispose();
        _absentBias?.Dispose();
        _tcConvPartials?.Dispose();
        _parameterCopies.Dispose();
        base.Dispose();
        _accelerator.Dispose();
        _context.Dispose();
    }
}
