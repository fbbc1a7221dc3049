using Engine.Kernels;
using Engine.Gpu;

namespace Engine.Core.Tests;

/// <summary>
/// <see cref="PtxLocalPromotion"/> on hand-written PTX in ILGPU's shape: which local slots become registers, and
/// that the others (offset accesses, an address that escapes, narrower accesses) stay in memory untouched.
/// The tensor-core kernels themselves are checked in <see cref="PtxCompileTests"/>.
/// </summary>
public class PtxLocalPromotionTests
{
    private const string Kernel = """
        .visible .entry Kernel_Test(
        	.param .u64 out
        )
        {
        	.local .align 4 .b8 __local_depot0[4];
        	.local .align 4 .b8 __local_depot1[4];
        	.local .align 8 .b8 __local_depot2[8];
        	.local .align 4 .b8 __local_depot3[4];
        	.local .align 4 .b8 __local_depot4[4];
        	.reg .b32 %r<4>;
        	.reg .f32 %f<4>;
        	.reg .b64 %rd<8>;
        	mov.b64	%rd0, __local_depot0;
        	mov.b64	%rd1, __local_depot1;
        	mov.b64	%rd2, __local_depot2;
        	mov.b64	%rd3, __local_depot3;
        	mov.b64	%rd4, __local_depot4;
        	st.local.f32	[%rd0], 0f3F800000;
        	st.local.b32	[%rd1], %r1;
        	st.local.u64	[%rd2], %rd7;
        	st.local.b32	[%rd3], 7;
        	add.u64	%rd5, %rd3, 0;
        	st.local.u16	[%rd4], %r2;
        	ld.local.f32	%f1, [%rd0];
        	ld.local.b32	%r3, [%rd1];
        	ld.local.u64	%rd6, [%rd2];
        	ld.local.b32	%r0, [%rd4];
        	mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%f1,%f2,%f3,%f0}, {%r0,%r1,%r2,%r3}, {%r0,%r1}, {%f1,%f2,%f3,%f0};
        	ret;
        }
        """;

    [Test]
    public void WholeSlotLoadsAndStoresBecomeRegisters()
    {
        var ptx = PtxLocalPromotion.Promote(Kernel, out int promoted, out int kept);
        Assert.That((promoted, kept), Is.EqualTo((3, 2)));
        Assert.That(ptx, Does.Contain(".reg .b32 %lp<2>;"));
        Assert.That(ptx, Does.Contain(".reg .b64 %lq<1>;"));
        Assert.That(ptx, Does.Contain("mov.b32\t%lp0, 0x3F800000;"), "a float literal is stored as its bits");
        Assert.That(ptx, Does.Contain("mov.b32\t%lp1, %r1;"));
        Assert.That(ptx, Does.Contain("mov.b64\t%lq0, %rd7;"));
        Assert.That(ptx, Does.Contain("mov.b32\t%f1, %lp0;"));
        Assert.That(ptx, Does.Contain("mov.b64\t%rd6, %lq0;"));
        foreach (var slot in new[] { "__local_depot0", "__local_depot1", "__local_depot2" })
            Assert.That(ptx, Does.Not.Contain(slot));
    }

    [Test]
    public void SlotsUsedOtherwiseStayInMemory()
    {
        var ptx = PtxLocalPromotion.Promote(Kernel, out _, out _);
        // depot3's address escapes into arithmetic; depot4 is stored as 16 bits and loaded as 32.
        foreach (var line in new[] { ".local .align 4 .b8 __local_depot3[4];", "mov.b64\t%rd3, __local_depot3;", "st.local.b32\t[%rd3], 7;", "add.u64\t%rd5, %rd3, 0;",
                     ".local .align 4 .b8 __local_depot4[4];", "st.local.u16\t[%rd4], %r2;", "ld.local.b32\t%r0, [%rd4];" })
            Assert.That(ptx, Does.Contain(line));
    }

    [Test]
    public void FunctionsAreRewrittenApart()
    {
        // The same register name in two functions is two registers: each function's slots are counted on their own.
        var second = Kernel.Replace("Kernel_Test", "Kernel_Other");
        var ptx = PtxLocalPromotion.Promote(Kernel + "\n" + second, out int promoted, out int kept);
        Assert.That((promoted, kept), Is.EqualTo((6, 4)));
        Assert.That(ptx.Split(".reg .b32 %lp<2>;").Length - 1, Is.EqualTo(2));
    }

    [Test]
    public void PtxWithoutLocalSlotsIsUnchanged()
    {
        const string plain = ".visible .entry K()\n{\n\tret;\n}\n";
        Assert.That(PtxLocalPromotion.Promote(plain, out int promoted, out int kept), Is.EqualTo(plain));
        Assert.That((promoted, kept), Is.EqualTo((0, 0)));
    }

    [Test]
    public void LaunchBoundsGoAfterTheEntryParameters()
    {
        var ptx = new LaunchBounds(128, 5).Apply(Kernel);
        int close = Kernel.IndexOf("\n)", StringComparison.Ordinal) + 2;
        Assert.That(ptx, Is.EqualTo(Kernel.Insert(close, "\n.maxntid 128, 1, 1\n.minnctapersm 5")));
        Assert.That(ptx.IndexOf(".minnctapersm 5\n{", StringComparison.Ordinal), Is.GreaterThan(ptx.IndexOf("out", StringComparison.Ordinal)));
    }

    [Test]
    public void LaunchBoundsRejectWhatTheyCannotPlace()
    {
        Assert.That(() => new LaunchBounds(128, 4).Apply(".version 8.0\n.target sm_80\n"),
            Throws.InvalidOperationException.With.Message.Contains("no kernel entry"));
        Assert.That(() => new LaunchBounds(128, 4).Apply(Kernel + "\n" + Kernel.Replace("Kernel_Test", "Kernel_Other")),
            Throws.InvalidOperationException.With.Message.Contains("more than one kernel entry"));
        Assert.That(() => new LaunchBounds(128, 0).Apply(Kernel), Throws.InstanceOf<ArgumentOutOfRangeException>());
    }

    [Test]
    public void AttentionBoundsComeFromTheHeadWidth()
    {
        Assert.That(LaunchBounds.ForAttention(default(HeadDim64)), Is.EqualTo(new LaunchBounds(TensorCoreAttentionKernels.Threads, 5)));
        Assert.That(LaunchBounds.ForAttention(default(AnyHeadDim)), Is.Null);
    }
}
