using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Engine.Core;

namespace Engine.Cpu;

/// <summary>
/// A Linear or convolution weight converted once into the bf16 layout the kernels read, held beside
/// the weight tensor for as long as that tensor lives (<see cref="Bf16WeightCache"/>). Pinned arrays,
/// so the kernels get stable pointers without per-call pinning.
/// </summary>
internal sealed class Bf16PackedWeight
{
    private Bf16PackedWeight(int rows, int k, uint[]? panels, ushort[]? bf16Rows)
    {
        Rows = rows;
        K = k;
        Panels = panels;
        Bf16Rows = bf16Rows;
    }

    /// <summary>Output features (Linear) or output channels (convolution).</summary>
    public int Rows { get; }

    /// <summary>Reduction length: input features, or Cin*kh*kw.</summary>
    public int K { get; }

    /// <summary>Pairs of k (K rounded up to even, halved).</summary>
    public int Pairs => (K + 1) / 2;

    /// <summary>Linear: B = W^T in panels of <see cref="Bf16Kernels.PanelCols"/> output features.</summary>
    public uint[]? Panels { get; }

    /// <summary>Convolution: the weight as bf16 rows of 2 * <see cref="Pairs"/> (the A operand).</summary>
    public ushort[]? Bf16Rows { get; }

    /// <summary>Packs a Linear weight [out, in] (F32, F16 or BF16).</summary>
    public static unsafe Bf16PackedWeight ForLinear(Bf16Kernels kernels, Tensor weight)
    {
        int n = weight.Dim(0), k = weight.Dim(1), pairs = (k + 1) / 2;
        int panels = (n + Bf16Kernels.PanelCols - 1) / Bf16Kernels.PanelCols;
        var packed = GC.AllocateUninitializedArray<uint>(checked(panels * pairs * Bf16Kernels.PanelCols), pinned: true);
        var (src, dtype) = Source(weight);
        fixed (uint* dst = packed) kernels.PackBFromRows((void*)src, dtype, n, k, k, dst);
        GC.KeepAlive(weight.Buffer);
        return new Bf16PackedWeight(n, k, packed, null);
    }

    /// <summary>Packs a convolution weight [out, in, kh, kw] (F32, F16 or BF16) as bf16 rows.</summary>
    public static unsafe Bf16PackedWeight ForConv(Bf16Kernels kernels, Tensor weight)
    {
        int rows = weight.Dim(0), k = (int)(weight.Length / rows), ld = 2 * ((k + 1) / 2);
        var packed = GC.AllocateUninitializedArray<ushort>(checked(rows * ld), pinned: true);
        var (src, dtype) = Source(weight);
        fixed (ushort* dst = packed) kernels.RowsToBf16((void*)src, dtype, rows, k, k, dst, ld);
        GC.KeepAlive(weight.Buffer);
        return new Bf16PackedWeight(rows, k, null, packed);
    }

    /// <summary>The tensor's first element's address (native storage: nothing to pin) and dtype code (0 f32, 1 f16, 2 bf16).</summary>
    private static unsafe (nint Pointer, int DType) Source(Tensor t)
    {
        var buffer = (CpuBuffer)t.Buffer;
        return t.DType switch
        {
            DType.F32 => ((nint)(buffer.F32!.Pointer + t.Offset), 0),
            DType.F16 => ((nint)(buffer.F16!.Pointer + t.Offset), 1),
            _ => ((nint)(buffer.BF16!.Pointer + t.Offset), 2),
        };
    }
}

/// <summary>
/// Packed bf16 copies of weight tensors, keyed by the tensor object and dropped with it. A weight is
/// packed on its first bf16 use and assumed constant afterwards: models never write a bound weight in
/// place (LoRA merges and restores bind new tensors), so a cached copy cannot go stale.
/// </summary>
internal sealed class Bf16WeightCache
{
    private readonly ConditionalWeakTable<Tensor, Bf16PackedWeight> _linear = new();
    private readonly ConditionalWeakTable<Tensor, Bf16PackedWeight> _conv = new();

    /// <summary>The packed Linear weight, packing it on first use.</summary>
    public Bf16PackedWeight Linear(Bf16Kernels kernels, Tensor weight) => _linear.GetValue(weight, w => Bf16PackedWeight.ForLinear(kernels, w));

    /// <summary>The packed convolution weight, packing it on first use.</summary>
    public Bf16PackedWeight Conv(Bf16Kernels kernels, Tensor weight) => _conv.GetValue(weight, w => Bf16PackedWeight.ForConv(kernels, w));
}
