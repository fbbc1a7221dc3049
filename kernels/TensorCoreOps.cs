using ILGPU;
using ILGPU.Runtime;
using Half = ILGPU.Half;

namespace Engine.Kernels;

/// <summary>
/// fp32 accumulator fragment of one 16 x 8 mma tile. With g = lane / 4 and t = lane % 4 (PTX ISA,
/// "Matrix Fragments for mma.m16n8k16"), lane holds C0, C1 at row g, columns 2t, 2t + 1 and C2, C3 at
/// row g + 8, the same columns.
/// </summary>
public struct MmaAcc
{
    /// <summary>Row g, column 2t.</summary>
    public float C0;
    /// <summary>Row g, column 2t + 1.</summary>
    public float C1;
    /// <summary>Row g + 8, column 2t.</summary>
    public float C2;
    /// <summary>Row g + 8, column 2t + 1.</summary>
    public float C3;
}

/// <summary>
/// A operand of m16n8k16 (16 x 16, row-major), four registers of two 16-bit values (lower index in the
/// lower half): R0 row g, k = 2t, 2t + 1; R1 row g + 8, same k; R2 row g, k = 2t + 8, 2t + 9; R3 row g + 8, same k.
/// Also the result of ldmatrix .x4 and of a 128-bit load.
/// </summary>
public struct FragA
{
    /// <summary>Registers 0-3 in PTX order.</summary>
    public uint R0, R1, R2, R3;
}

/// <summary>B operand of m16n8k16 (16 x 8, column-major): R0 column g, k = 2t, 2t + 1; R1 column g, k = 2t + 8, 2t + 9.</summary>
public struct FragB
{
    /// <summary>Registers 0-1 in PTX order.</summary>
    public uint R0, R1;
}

/// <summary>
/// A global array of 16-bit elements (f16, or bf16 bits carried in Half slots) with its device address (taken on the host: ILGPU kernels cannot take an
/// address), which the PTX bodies of cp.async and the 128-bit load need; the emulation reads <see cref="View"/>.
/// </summary>
public struct GlobalHalf
{
    /// <summary>The elements.</summary>
    public ArrayView<Half> View;
    /// <summary>Device address of element 0 of <see cref="View"/>.</summary>
    public ulong Address;

    /// <summary>Wraps a view (host side).</summary>
    public static GlobalHalf Of(ArrayView<Half> view) => new() { View = view, Address = view.Length == 0 ? 0 : (ulong)view.LoadEffectiveAddressAsPtr().ToInt64() };
}

/// <summary>
/// One method per tensor-core instruction. <see cref="PtxTensorCore"/> is the PTX instruction (inline
/// assembly, CUDA); <see cref="EmulatedTensorCore"/> emulates its documented per-lane semantics with
/// warp shuffles on ILGPU's CPU accelerator (32-lane warps). Kernels are generic over it, so the very
/// kernel code runs in tests without a GPU and a wrong fragment index fails there. Every method must be
/// reached by all 32 lanes of the warp. Shared-memory operands are 16-bit element offsets into the
/// kernel's dynamic shared memory (obtained once with SharedMemory.GetDynamic&lt;ushort&gt;()).
/// </summary>
public interface ITensorCore
{
    /// <summary>c += a b, f16 inputs, fp32 accumulation (<c>mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32</c>).</summary>
    void MmaF16(ref MmaAcc c, FragA a, FragB b);

    /// <summary>c += a b, bf16 inputs, fp32 accumulation (<c>mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32</c>).</summary>
    void MmaBF16(ref MmaAcc c, FragA a, FragB b);

    /// <summary>Two floats as f16x2 (round to nearest even), <paramref name="lo"/> in the lower half (<c>cvt.rn.f16x2.f32</c>).</summary>
    uint PackF16(float lo, float hi);

    /// <summary>Two floats as bf16x2 (round to nearest even), <paramref name="lo"/> in the lower half (<c>cvt.rn.bf16x2.f32</c>).</summary>
    uint PackBF16(float lo, float hi);

    /// <summary>
    /// 2^<paramref name="x"/> (<c>ex2.approx.ftz.f32</c>, one MUFU instruction): results below 2^-126 flush to zero, as
    /// they do for the probabilities of an online softmax. ILGPU's own exp2 is the non-ftz form, which costs a compare
    /// and two multiplies around the MUFU to keep subnormal results.
    /// </summary>
    float Exp2(float x);

    /// <summary>
    /// <c>ldmatrix.sync.aligned.m8n8.x1.shared.b16</c>: lanes 0-7 give the offsets of the 8 rows (8
    /// contiguous 16-bit values, 16-byte aligned); lane l receives row l / 4, columns 2 (l % 4), +1.
    /// </summary>
    uint LdMatrixX1(ArrayView<ushort> shared, int rowOffset);

    /// <summary><c>ldmatrix ... .x1.trans</c>: lane l receives rows 2 (l % 4) and 2 (l % 4) + 1 of column l / 4.</summary>
    uint LdMatrixX1Trans(ArrayView<ushort> shared, int rowOffset);

    /// <summary><c>ldmatrix ... .x2</c>: two matrices, rows given by lanes 0-7 and 8-15.</summary>
    void LdMatrixX2(ArrayView<ushort> shared, int rowOffset, out uint r0, out uint r1);

    /// <summary><c>ldmatrix ... .x2.trans</c>.</summary>
    void LdMatrixX2Trans(ArrayView<ushort> shared, int rowOffset, out uint r0, out uint r1);

    /// <summary><c>ldmatrix ... .x4</c>: four matrices, rows of matrix i given by lanes 8i to 8i + 7.</summary>
    FragA LdMatrixX4(ArrayView<ushort> shared, int rowOffset);

    /// <summary><c>ldmatrix ... .x4.trans</c>.</summary>
    FragA LdMatrixX4Trans(ArrayView<ushort> shared, int rowOffset);

    /// <summary>
    /// <c>cp.async.cg.shared.global</c> of 16 bytes (8 halves) from src[<paramref name="srcOffset"/>] to
    /// shared[<paramref name="dstOffset"/>], both 16-byte aligned; when <paramref name="valid"/> is false the
    /// destination is zero-filled (source size 0), nothing is read and <paramref name="srcOffset"/> may be anything. Complete after a wait; the
    /// emulation copies at once, which those semantics allow.
    /// </summary>
    void CpAsync16(ArrayView<ushort> shared, int dstOffset, GlobalHalf src, long srcOffset, bool valid);

    /// <summary><c>cp.async.commit_group</c>.</summary>
    void CpAsyncCommit();

    /// <summary><c>cp.async.wait_group 0</c>: every committed group of this thread is complete.</summary>
    void CpAsyncWaitAll();

    /// <summary><c>cp.async.wait_group 1</c>: all but the most recent group are complete (double buffering).</summary>
    void CpAsyncWaitPrior();

    /// <summary>128-bit load (<c>ld.global.nc.v4.u32</c>) of 8 halves at src[<paramref name="offset"/>] (16-byte aligned).</summary>
    FragA Load128(GlobalHalf src, long offset);
}
