using Engine.Core.Profiling;

namespace Engine.Core;

public abstract partial class Device
{
    /// <summary>Nearest-neighbour 2x upsampling: x [N, C, H, W] to output [N, C, 2H, 2W].</summary>
    public void UpsampleNearest2x(Tensor x, Tensor output)
    {
        CheckCompute(x, nameof(x)); CheckCompute(output, nameof(output));
        if (x.Rank != 4 || output.Rank != 4 || output.Dim(0) != x.Dim(0) || output.Dim(1) != x.Dim(1) || output.Dim(2) != 2 * x.Dim(2) || output.Dim(3) != 2 * x.Dim(3))
            throw new ArgumentException($"UpsampleNearest2x: output {output} should be twice the spatial size of {x}.");
        using var profile = Profiler is null ? default : BeginOp(OpKeys.Upsample(x));
        if (AnyHalf(x, output) && !HandlesHalfActivations("UpsampleNearest2x", x, output))
        {
            using var s = Stage();
            UpsampleNearest2xCore(s.In(x), s.Out(output));
            s.Commit();
        }
        else UpsampleNearest2xCore(x, output);
    }

    /// <summary>Implements <see cref="UpsampleNearest2x"/>.</summary>
    protected abstract void UpsampleNearest2xCore(Tensor x, Tensor output);

    /// <summary>
    /// Embedding lookup (torch.nn.Embedding): output[b, :] = table[indices[b], :] for table [rows, dim] (stored F32, F16
    /// or BF16, like a weight), indices [B] (float32 holding integers, read on the device) and output [B, dim]. An index
    /// that is not an integer in [0, rows) gives a zero row; callers that take indices from users validate them first.
    /// </summary>
    public void GatherRows(Tensor table, Tensor indices, Tensor output)
    {
        CheckDevice(table, nameof(table)); CheckF32(indices, nameof(indices)); CheckCompute(output, nameof(output));
        if (table.Rank != 2 || indices.Rank != 1 || output.Rank != 2 || output.Dim(0) != indices.Dim(0) || output.Dim(1) != table.Dim(1))
            throw new ArgumentException($"GatherRows: output {output} should be [{(indices.Rank == 1 ? indices.Dim(0) : "B")}, {(table.Rank == 2 ? table.Dim(1) : "dim")}] rows of table {table} picked by indices {indices} [B].");
        using var profile = Profiler is null ? default : BeginOp(OpKeys.Layout("GatherRows", output));
        if (AnyHalf(output) && !HandlesHalfActivations("GatherRows", output))
        {
            using var s = Stage();
            GatherRowsCore(table, indices, s.Out(output));
            s.Commit();
        }
        else GatherRowsCore(table, indices, output);
    }

    /// <summary>Implements <see cref="GatherRows"/>.</summary>
    protected abstract void GatherRowsCore(Tensor table, Tensor indices, Tensor output);

    /// <summary>Channel concatenation: a [N, Ca, ...] and b [N, Cb, ...] to output [N, Ca + Cb, ...].</summary>
    public void ConcatChannels(Tensor a, Tensor b, Tensor output)
    {
        CheckCompute(a, nameof(a)); CheckCompute(b, nameof(b)); CheckCompute(output, nameof(output));
        if (a.Rank < 2 || a.Rank != b.Rank || a.Rank != output.Rank || a.Dim(0) != b.Dim(0) || output.Dim(0) != a.Dim(0) || output.Dim(1) != a.Dim(1) + b.Dim(1)
            || a.Length / a.Dim(1) != b.Length / Math.Max(1, b.Dim(1)) || output.Length != a.Length + b.Length)
            throw new ArgumentException($"ConcatChannels: cannot join {a} and {b} into {output}.");
        using var profile = Profiler is null ? default : BeginOp(OpKeys.Layout("ConcatChannels", output));
        if (AnyHalf(a, b, output) && !HandlesHalfActivations("ConcatChannels", a, b, output))
        {
            using var s = Stage();
            ConcatChannelsCore(s.In(a), s.In(b), s.Out(output));
            s.Commit();
        }
        else ConcatChannelsCore(a, b, output);
    }

    /// <summary>Implements <see cref="ConcatChannels"/>.</summary>
    protected abstract void ConcatChannelsCore(Tensor a, Tensor b, Tensor output);

    /// <summary>
    /// Channel slice: output [N, Co, ...] = x[:, start : start + Co, ...] for x [N, C, ...] (e.g. the
    /// prediction half of a learned-sigma DiT output).
    /// </summary>
    public void SliceChannels(Tensor x, int start, Tensor output)
    {
        CheckCompute(x, nameof(x)); CheckCompute(output, nameof(output));
        if (x.Rank < 2 || output.Rank != x.Rank || output.Dim(0) != x.Dim(0) || start < 0 || start + output.Dim(1) > x.Dim(1)
            || x.Length / Math.Max(1, (long)x.Dim(0) * x.Dim(1)) != output.Length / Math.Max(1, (long)output.Dim(0) * output.Dim(1)))
            throw new ArgumentException($"SliceChannels: cannot take channels [{start}, {start + (output.Rank > 1 ? output.Dim(1) : 0)}) of {x} into {output}.");
        using var profile = Profiler is null ? default : BeginOp(OpKeys.Layout("SliceChannels", output));
        if (AnyHalf(x, output) && !HandlesHalfActivations("SliceChannels", x, output))
        {
            using var s = Stage();
            SliceChannelsCore(s.In(x), start, s.Out(output));
            s.Commit();
        }
        else SliceChannelsCore(x, start, output);
    }

    /// <summary>Implements <see cref="SliceChannels"/>.</summary>
    protected abstract void SliceChannelsCore(Tensor x, int start, Tensor output);

    /// <summary>
    /// Copies a spatial window between NCHW tensors of the same N*C planes: output[p, dstY + y, dstX + x] =
    /// x[p, srcY + y, srcX + x] for y &lt; <paramref name="height"/>, x &lt; <paramref name="width"/>; the rest of
    /// output is untouched (a tile cut from a large image, or pasted into it).
    /// </summary>
    public void CopyWindow(Tensor x, int srcY, int srcX, Tensor output, int dstY, int dstX, int height, int width)
    {
        CheckCompute(x, nameof(x)); CheckCompute(output, nameof(output));
        if (x.Rank != 4 || output.Rank != 4 || (long)x.Dim(0) * x.Dim(1) != (long)output.Dim(0) * output.Dim(1) || height < 0 || width < 0
            || srcY < 0 || srcX < 0 || dstY < 0 || dstX < 0 || srcY + height > x.Dim(2) || srcX + width > x.Dim(3) || dstY + height > output.Dim(2) || dstX + width > output.Dim(3))
            throw new ArgumentException($"CopyWindow: cannot copy the {height}x{width} window at ({srcY}, {srcX}) of {x} to ({dstY}, {dstX}) of {output}.");
        if (height == 0 || width == 0) return;
        using var profile = Profiler is null ? default : BeginOp(OpKeys.Layout("CopyWindow", output));
        if (AnyHalf(x, output) && !HandlesHalfActivations("CopyWindow", x, output))
        {
            using var s = Stage();
            CopyWindowCore(s.In(x), srcY, srcX, s.Out(output, keepContents: true), dstY, dstX, height, width);
            s.Commit();
        }
        else CopyWindowCore(x, srcY, srcX, output, dstY, dstX, height, width);
    }

    /// <summary>Implements <see cref="CopyWindow"/>.</summary>
    protected abstract void CopyWindowCore(Tensor x, int srcY, int srcX, Tensor output, int dstY, int dstX, int height, int width);

    /// <summary>Batched transpose of the last two dimensions: x [B, M, N] to output [B, N, M] (e.g. NCHW to N(HW)C).</summary>
    public void Transpose(Tensor x, Tensor output)
    {
        CheckCompute(x, nameof(x)); CheckCompute(output, nameof(output));
        if (x.Rank != 3 || output.Rank != 3 || output.Dim(0) != x.Dim(0) || output.Dim(1) != x.Dim(2) || output.Dim(2) != x.Dim(1))
            throw new ArgumentException($"Transpose: output {output} should be x {x} with the last two dimensions swapped.");
        using var profile = Profiler is null ? default : BeginOp(OpKeys.Layout("Transpose", output));
        if (AnyHalf(x, output) && !HandlesHalfActivations("Transpose", x, output))
        {
            using var s = Stage();
            TransposeCore(s.In(x), s.Out(output));
            s.Commit();
        }
        else TransposeCore(x, output);
    }

    /// <summary>Implements <see cref="Transpose"/>.</summary>
    protected abstract void TransposeCore(Tensor x, Tensor output);

    /// <summary>
    /// Patchify: x [N, C, H, W] to tokens [N, (H/p)(W/p), p*p*C], each token laid out (row in patch,
    /// column in patch, channel), the layout DiT's unpatchify expects.
    /// </summary>
    public void Patchify(Tensor x, Tensor output, int patch)
    {
        CheckCompute(x, nameof(x)); CheckCompute(output, nameof(output));
        if (x.Rank != 4 || patch < 1 || x.Dim(2) % patch != 0 || x.Dim(3) % patch != 0) throw new ArgumentException($"Patchify: {x} is not divisible into {patch}x{patch} patches.");
        int tokens = (x.Dim(2) / patch) * (x.Dim(3) / patch);
        if (output.Rank != 3 || output.Dim(0) != x.Dim(0) || output.Dim(1) != tokens || output.Dim(2) != patch * patch * x.Dim(1))
            throw new ArgumentException($"Patchify: output {output} should be [{x.Dim(0)}, {tokens}, {patch * patch * x.Dim(1)}].");
        using var profile = Profiler is null ? default : BeginOp(OpKeys.Layout("Patchify", output));
        if (AnyHalf(x, output) && !HandlesHalfActivations("Patchify", x, output))
        {
            using var s = Stage();
            PatchifyCore(s.In(x), s.Out(output), patch, unpatchify: false);
            s.Commit();
        }
        else PatchifyCore(x, output, patch, unpatchify: false);
    }

    /// <summary>Inverse of <see cref="Patchify"/>: tokens [N, h*w, p*p*C] to output [N, C, h*p, w*p].</summary>
    public void Unpatchify(Tensor tokens, Tensor output, int patch)
    {
        CheckCompute(tokens, nameof(tokens)); CheckCompute(output, nameof(output));
        if (output.Rank != 4 || patch < 1 || output.Dim(2) % patch != 0 || output.Dim(3) % patch != 0) throw new ArgumentException($"Unpatchify: {output} is not divisible into {patch}x{patch} patches.");
        int count = (output.Dim(2) / patch) * (output.Dim(3) / patch);
        if (tokens.Rank != 3 || tokens.Dim(0) != output.Dim(0) || tokens.Dim(1) != count || tokens.Dim(2) != patch * patch * output.Dim(1))
            throw new ArgumentException($"Unpatchify: tokens {tokens} should be [{output.Dim(0)}, {count}, {patch * patch * output.Dim(1)}].");
        using var profile = Profiler is null ? default : BeginOp(OpKeys.Layout("Unpatchify", output));
        if (AnyHalf(tokens, output) && !HandlesHalfActivations("Unpatchify", tokens, output))
        {
            using var s = Stage();
            PatchifyCore(s.Out(output), s.In(tokens), patch, unpatchify: true);
            s.Commit();
        }
        else PatchifyCore(output, tokens, patch, unpatchify: true);
    }

    /// <summary>Implements <see cref="Patchify"/> (image to tokens) and, when <paramref name="unpatchify"/>, the inverse (tokens to image).</summary>
    protected abstract void PatchifyCore(Tensor image, Tensor tokens, int patch, bool unpatchify);
}
