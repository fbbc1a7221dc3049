using ILGPU;
using ILGPU.Runtime.Cuda;

namespace Engine.Kernels;

/// <summary>
/// The tensor-core instructions as inline PTX (CUDA, SM 8.0+). Multi-register results go through
/// <c>CudaAsm.EmitRef</c>; shared addresses are ILGPU's dynamic shared-memory symbol plus the byte offset.
/// </summary>
public struct PtxTensorCore : ITensorCore
{
    /// <summary>The name ILGPU's PTX backend gives the dynamic shared-memory allocation.</summary>
    public const string DynamicSharedSymbol = "__dyn_shared_alloca";

    private static uint Shared(int offset)
    {
        CudaAsm.Emit("mov.u32 %0, " + DynamicSharedSymbol + ";", out uint b);
        return b + 2u * (uint)offset;
    }

    private static ulong Global(GlobalHalf src, long offset) => src.Address + 2ul * (ulong)offset;

    /// <inheritdoc />
    public readonly void MmaF16(ref MmaAcc c, FragA a, FragB b)
    {
        Ref<float> d0 = c.C0, d1 = c.C1, d2 = c.C2, d3 = c.C3;
        Input<uint> a0 = a.R0, a1 = a.R1, a2 = a.R2, a3 = a.R3, b0 = b.R0, b1 = b.R1;
        CudaAsm.EmitRef("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};",
            ref d0, ref d1, ref d2, ref d3, ref a0, ref a1, ref a2, ref a3, ref b0, ref b1);
        c.C0 = d0.Value; c.C1 = d1.Value; c.C2 = d2.Value; c.C3 = d3.Value;
    }

    /// <inheritdoc />
    public readonly void MmaBF16(ref MmaAcc c, FragA a, FragB b)
    {
        Ref<float> d0 = c.C0, d1 = c.C1, d2 = c.C2, d3 = c.C3;
        Input<uint> a0 = a.R0, a1 = a.R1, a2 = a.R2, a3 = a.R3, b0 = b.R0, b1 = b.R1;
        CudaAsm.EmitRef("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};",
            ref d0, ref d1, ref d2, ref d3, ref a0, ref a1, ref a2, ref a3, ref b0, ref b1);
        c.C0 = d0.Value; c.C1 = d1.Value; c.C2 = d2.Value; c.C3 = d3.Value;
    }

    /// <inheritdoc />
    public readonly uint PackF16(float lo, float hi)
    {
        CudaAsm.Emit("cvt.rn.f16x2.f32 %0, %1, %2;", out uint r, hi, lo);
        return r;
    }

    /// <inheritdoc />
    public readonly uint PackBF16(float lo, float hi)
    {
        CudaAsm.Emit("cvt.rn.bf16x2.f32 %0, %1, %2;", out uint r, hi, lo);
        return r;
    }

    /// <inheritdoc />
    public readonly float Exp2(float x)
    {
        CudaAsm.Emit("ex2.approx.ftz.f32 %0, %1;", out float r, x);
        return r;
    }

    /// <inheritdoc />
    public readonly uint LdMatrixX1(ArrayView<ushort> shared, int rowOffset)
    {
        CudaAsm.Emit("ldmatrix.sync.aligned.m8n8.x1.shared.b16 {%0}, [%1];", out uint r, Shared(rowOffset));
        return r;
    }

    /// <inheritdoc />
    public readonly uint LdMatrixX1Trans(ArrayView<ushort> shared, int rowOffset)
    {
        CudaAsm.Emit("ldmatrix.sync.aligned.m8n8.x1.trans.shared.b16 {%0}, [%1];", out uint r, Shared(rowOffset));
        return r;
    }

    /// <inheritdoc />
    public readonly void LdMatrixX2(ArrayView<ushort> shared, int rowOffset, out uint r0, out uint r1)
    {
        Output<uint> o0 = default, o1 = default;
        Input<uint> address = Shared(rowOffset);
        CudaAsm.EmitRef("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0,%1}, [%2];", ref o0, ref o1, ref address);
        r0 = o0.Value; r1 = o1.Value;
    }

    /// <inheritdoc />
    public readonly void LdMatrixX2Trans(ArrayView<ushort> shared, int rowOffset, out uint r0, out uint r1)
    {
        Output<uint> o0 = default, o1 = default;
        Input<uint> address = Shared(rowOffset);
        CudaAsm.EmitRef("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0,%1}, [%2];", ref o0, ref o1, ref address);
        r0 = o0.Value; r1 = o1.Value;
    }

    /// <inheritdoc />
    public readonly FragA LdMatrixX4(ArrayView<ushort> shared, int rowOffset)
    {
        Output<uint> o0 = default, o1 = default, o2 = default, o3 = default;
        Input<uint> address = Shared(rowOffset);
        CudaAsm.EmitRef("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];", ref o0, ref o1, ref o2, ref o3, ref address);
        return new FragA { R0 = o0.Value, R1 = o1.Value, R2 = o2.Value, R3 = o3.Value };
    }

    /// <inheritdoc />
    public readonly FragA LdMatrixX4Trans(ArrayView<ushort> shared, int rowOffset)
    {
        Output<uint> o0 = default, o1 = default, o2 = default, o3 = default;
        Input<uint> address = Shared(rowOffset);
        CudaAsm.EmitRef("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];", ref o0, ref o1, ref o2, ref o3, ref address);
        return new FragA { R0 = o0.Value, R1 = o1.Value, R2 = o2.Value, R3 = o3.Value };
    }

    /// <inheritdoc />
    /// <remarks>
    /// The choice of source and size is two selp on the predicate inside the asm: written as C# conditionals it became a
    /// branch around each copy in the SASS (a predicated and a zero-filling LDGSTS, some 12 instructions each).
    /// </remarks>
    public readonly void CpAsync16(ArrayView<ushort> shared, int dstOffset, GlobalHalf src, long srcOffset, bool valid) =>
        CudaAsm.Emit("{ .reg .b64 a; .reg .b32 n; selp.b64 a, %2, 0, %3; shl.b64 a, a, 1; add.s64 a, a, %1; selp.b32 n, 16, 0, %3; " +
            "cp.async.cg.shared.global [%0], [a], 16, n; }", Shared(dstOffset), src.Address, srcOffset, valid);

    /// <inheritdoc />
    public readonly void CpAsyncCommit() => CudaAsm.Emit("cp.async.commit_group;");

    /// <inheritdoc />
    public readonly void CpAsyncWaitAll() => CudaAsm.Emit("cp.async.wait_group 0;");

    /// <inheritdoc />
    public readonly void CpAsyncWaitPrior() => CudaAsm.Emit("cp.async.wait_group 1;");

    /// <inheritdoc />
    public readonly FragA Load128(GlobalHalf src, long offset)
    {
        Output<uint> o0 = default, o1 = default, o2 = default, o3 = default;
        Input<ulong> address = Global(src, offset);
        CudaAsm.EmitRef("ld.global.nc.v4.u32 {%0,%1,%2,%3}, [%4];", ref o0, ref o1, ref o2, ref o3, ref address);
        return new FragA { R0 = o0.Value, R1 = o1.Value, R2 = o2.Value, R3 = o3.Value };
    }
}
