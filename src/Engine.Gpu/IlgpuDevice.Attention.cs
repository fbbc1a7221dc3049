using Engine.Core;
using Engine.Kernels;
using ILGPU;

namespace Engine.Gpu;

public sealed partial class IlgpuDevice
{
    /// <inheritdoc />
    protected override void AttentionCore(Tensor q, Tensor k, Tensor v, Tensor output, int heads, float scale)
    {
        int batch = q.Dim(0), lq = q.Dim(1), lk = k.Dim(1), width = q.Dim(2), d = width / heads;
        if (q.Length == 0) return;
        if (TryTensorCoreAttention(q, k, v, output, heads, scale)) return;
        if (q.DType != DType.F32 || k.DType != DType.F32 || v.DType != DType.F32 || output.DType != DType.F32)
        {
            // The general kernels read float32; other half operands go through float32 stand-ins.
            using var s = Stage();
            AttentionCore(s.In(q), s.In(k), s.In(v), s.Out(output), heads, scale);
            s.Commit();
            return;
        }
        if (lk == 0) { FillCore(output, 0f); return; }
        if (_tiledAttention && d <= AttentionTiledKernels.MaxHeadDim)
        {
            var tp = new AttentionParams { Lq = lq, Lk = lk, Heads = heads, HeadDim = d, Width = width, Scale = scale };
            var tiledGrid = GridOf((lq + AttentionTiledKernels.Rows - 1) / AttentionTiledKernels.Rows, (long)batch * heads, 1, "Attention");
            var threads = new Index3D(AttentionTiledKernels.Threads, AttentionTiledKernels.Threads, 1);
            _kernels.AttentionTiled(new KernelConfig(tiledGrid, threads, SharedMemoryConfig.RequestDynamic<float>(AttentionTiledKernels.SharedFloats(d))),
                View(q), View(k), View(v), View(output), tp);
            return;
        }
        int group = _attentionGroup;
        int tile = 64;
        while (tile > 1 && (tile > group || AttentionSharedFloats(tile, d) * sizeof(float) > _sharedBytes)) tile /= 2;
        if (tile < 1 || AttentionSharedFloats(tile, d) * sizeof(float) > _sharedBytes)
            throw new ArgumentException($"Attention: head width {d} needs more shared memory than {Name} offers per group.");
        var p = new AttentionParams { Lq = lq, Lk = lk, Heads = heads, HeadDim = d, Width = width, Scale = scale, Tile = tile };
        var grid = GridOf((lq + tile - 1) / tile, (long)batch * heads, 1, "Attention");
        var config = new KernelConfig(grid, new Index3D(group, 1, 1), SharedMemoryConfig.RequestDynamic<float>(AttentionSharedFloats(tile, d)));
        _kernels.Attention(config, View(q), View(k), View(v), View(output), p);
    }

    private static int AttentionSharedFloats(int tile, int d) => AttentionKernels.SharedFloats(tile, d);
}
