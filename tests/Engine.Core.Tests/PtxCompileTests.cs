using System.Reflection;
using Engine.Gpu;
using Engine.Kernels;
using ILGPU;
using ILGPU.Backends.EntryPoints;
using ILGPU.Backends.PTX;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;

namespace Engine.Core.Tests;

/// <summary>
/// Every kernel compiled by ILGPU's PTX backend for the GPUs the engine targets, on machines without
/// one: the CUDA path cannot run in CI, but a construct that the PTX backend rejects, or a per-thread
/// register block that falls back to local memory (a struct ILGPU did not scalarise), shows here.
/// </summary>
public class PtxCompileTests
{
    private static readonly (CudaArchitecture Arch, CudaInstructionSet Isa)[] Targets =
    [
        (CudaArchitecture.SM_80, CudaInstructionSet.ISA_80),
        (CudaArchitecture.SM_90, CudaInstructionSet.ISA_80),
    ];

    /// <summary>The explicitly grouped kernels, with every generic instantiation the CUDA device loads.</summary>
    private static IEnumerable<(string Name, MethodInfo Method)> GroupedKernels()
    {
        Type[] weights = [typeof(F32Weights), typeof(F16Weights), typeof(BF16Weights)];
        Type[] tiles = [typeof(MicroTile), typeof(MicroTile8)];
        // Activations and output share a storage (the models allocate outputs like their inputs).
        (Type In, Type Out)[] activations = [(typeof(F32Weights), typeof(F32Output)), (typeof(F16Weights), typeof(F16Output)), (typeof(BF16Weights), typeof(BF16Output))];
        foreach (var (a, o) in activations)
            foreach (var w in weights)
                foreach (var t in tiles)
                {
                    yield return ($"Gemm<{a.Name}, {w.Name}, {o.Name}, {t.Name}>", typeof(GemmKernels).GetMethod(nameof(GemmKernels.Gemm))!.MakeGenericMethod(a, w, o, t));
                    yield return ($"Conv2d<{a.Name}, {w.Name}, {o.Name}, {t.Name}>", typeof(ConvKernels).GetMethod(nameof(ConvKernels.Conv2d))!.MakeGenericMethod(a, w, o, t));
                }
        foreach (var (a, o) in activations)
            foreach (var w in weights)
                yield return ($"GemmSmallRows<{a.Name}, {w.Name}, {o.Name}>", typeof(GemmSmallRowsKernels).GetMethod(nameof(GemmSmallRowsKernels.SmallRows))!.MakeGenericMethod(a, w, o));
        yield return ("FlashAttention", typeof(AttentionKernels).GetMethod(nameof(AttentionKernels.FlashAttention))!);
        yield return ("FlashAttentionTiled", typeof(AttentionTiledKernels).GetMethod(nameof(AttentionTiledKernels.FlashAttentionTiled))!);
        foreach (var name in new[] { nameof(NormKernels.GroupNorm), nameof(NormKernels.GroupNormPartial), nameof(NormKernels.GroupNormApply), nameof(NormKernels.LayerNorm), nameof(NormKernels.Softmax) })
            yield return (name, typeof(NormKernels).GetMethod(name)!);
        foreach (var format in new[] { typeof(F16Format), typeof(BF16Format) })
            foreach (var name in new[] { nameof(HalfNormKernels.GroupNorm), nameof(HalfNormKernels.GroupNormPartial), nameof(HalfNormKernels.GroupNormApply), nameof(HalfNormKernels.LayerNorm), nameof(HalfNormKernels.LayerNormRows) })
                yield return ($"Half{name}<{format.Name}>", typeof(HalfNormKernels).GetMethod(name)!.MakeGenericMethod(format));
        foreach (var format in new[] { typeof(F16Format), typeof(BF16Format) })
            yield return ($"HalfSoftmax<{format.Name}>", typeof(HalfSoftmaxKernels).GetMethod(nameof(HalfSoftmaxKernels.Softmax))!.MakeGenericMethod(format));
    }

    /// <summary>
    /// The implicitly grouped (element-wise) kernels: public static methods whose first parameter is an Index1D, generic
    /// ones with the element types the device loads them with.
    /// </summary>
    private static IEnumerable<(string Name, MethodInfo Method)> ElementwiseKernels() =>
        typeof(GemmKernels).Assembly.GetTypes()
            .SelectMany(t => t.GetMethods(BindingFlags.Public | BindingFlags.Static))
            .Where(m => m.ReturnType == typeof(void) && m.GetParameters() is [{ ParameterType: var p }, ..] && p == typeof(Index1D))
            .SelectMany(m => m.IsGenericMethodDefinition
                ? new[] { 0, 1 }.Select(v => m.MakeGenericMethod([.. m.GetGenericArguments().Select(t => HalfArgument(t, v))]))
                    .Select(g => ($"{m.DeclaringType!.Name}.{m.Name}<{string.Join(", ", g.GetGenericArguments().Select(t => t.Name))}>", g))
                : [($"{m.DeclaringType!.Name}.{m.Name}", m)]);

    // The f16 (variant 0) or bf16 (1) type argument the device uses for a generic kernel parameter, by its constraint.
    private static Type HalfArgument(Type parameter, int variant)
    {
        var constraints = parameter.GetGenericParameterConstraints();
        if (constraints.Contains(typeof(IMmaElement))) return variant == 0 ? typeof(F16Element) : typeof(BF16Element);
        if (constraints.Contains(typeof(IWeightView))) return variant == 0 ? typeof(F16Weights) : typeof(BF16Weights);
        if (constraints.Contains(typeof(IOutputView))) return variant == 0 ? typeof(F16Output) : typeof(BF16Output);
        return typeof(ILGPU.Half); // element moves: both half types travel as 16-bit values
    }

    private static IEnumerable<TestCaseData> Cases() =>
        GroupedKernels().Select(k => new TestCaseData(k.Name, k.Method, true).SetName($"{{m}}({k.Name})"))
            .Concat(ElementwiseKernels().Select(k => new TestCaseData(k.Name, k.Method, false).SetName($"{{m}}({k.Name})")));

    private static readonly Lazy<Context> Ilgpu = new(() => Context.Create(b => b.EnableAlgorithms().Optimize(OptimizationLevel.O2)));

    [Test]
    public void EveryKernelFamilyIsCovered()
    {
        Assert.That(GroupedKernels().Count(), Is.EqualTo(64));
        Assert.That(ElementwiseKernels().Count(), Is.GreaterThanOrEqualTo(20), "element-wise kernels found by reflection");
    }

    [TestCaseSource(nameof(Cases))]
    public void CompilesToPtxWithoutLocalMemory(string name, MethodInfo method, bool grouped)
    {
        foreach (var (arch, isa) in Targets)
        {
            var backend = new PTXBackend(Ilgpu.Value, new CudaCapabilityContext(arch), arch, isa, null);
            var entry = grouped ? EntryPointDescription.FromExplicitlyGroupedKernel(method) : EntryPointDescription.FromImplicitlyGroupedKernel(method);
            var ptx = ((PTXCompiledKernel)backend.Compile(entry, KernelSpecialization.Empty)).PTXAssembly;
            Assert.That(ptx, Does.Contain(".entry"), $"{name} for {arch}");
            Assert.That(ptx, Does.Not.Contain(".local"), $"{name} for {arch}: local memory (a register block or array that was not kept in registers)");
            if (Environment.GetEnvironmentVariable("ENGINE_PTX_DUMP") is { Length: > 0 } dump)
                File.WriteAllText(Path.Combine(dump, $"{name}.{arch}.ptx"), ptx);
            if (Environment.GetEnvironmentVariable("ENGINE_PTXAS") is { Length: > 0 } ptxas)
                AssertNoStackFrame(ptxas, ptx, arch, name);
            if (method.DeclaringType == typeof(HalfNormKernels) || method.DeclaringType == typeof(HalfSoftmaxKernels))
                Assert.That(ptx, Does.Contain("ld.global.b64"), $"{name} for {arch}: four halves per load");
            if ((method.DeclaringType == typeof(HalfNormKernels) && method.Name != nameof(HalfNormKernels.GroupNormPartial)) || method.DeclaringType == typeof(HalfSoftmaxKernels))
                Assert.That(ptx, Does.Contain("st.global.b64"), $"{name} for {arch}: four halves per store");
            if (method.Name == nameof(AttentionTiledKernels.FlashAttentionTiled))
                Assert.That(ptx, Does.Contain("shfl.sync.bfly"), "row statistics by warp shuffles");
        }
    }

    /// <summary>
    /// The tensor-core kernels with the PTX instruction bodies, and the instruction test kernels: each
    /// must compile for SM 8.0 and 9.0 and carry its instructions. Their multi-register results pass
    /// through <c>CudaAsm.EmitRef</c>, which ILGPU binds to per-call stack slots (<c>.local</c>); ptxas
    /// (not in CI) is expected to promote those, which the GPU session checks with <c>-v</c>.
    /// </summary>
    private static IEnumerable<TestCaseData> TensorCoreCases()
    {
        var t = typeof(PtxTensorCore);
        var ops = typeof(TensorCoreOpsTests);
        (string, MethodInfo, string[])[] kernels =
        [
            ("MmaTest", ops.GetMethod(nameof(TensorCoreOpsTests.MmaKernel), BindingFlags.NonPublic | BindingFlags.Static)!.MakeGenericMethod(t),
                ["mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32", "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32"]),
            ("LdMatrixTest", ops.GetMethod(nameof(TensorCoreOpsTests.LdMatrixKernel), BindingFlags.NonPublic | BindingFlags.Static)!.MakeGenericMethod(t),
                ["ldmatrix.sync.aligned.m8n8.x1.shared.b16", "x1.trans", "x2.shared", "x2.trans", "x4.shared", "x4.trans", PtxTensorCore.DynamicSharedSymbol]),
            ("CopyTest", ops.GetMethod(nameof(TensorCoreOpsTests.CopyKernel), BindingFlags.NonPublic | BindingFlags.Static)!.MakeGenericMethod(t),
                ["cp.async.cg.shared.global", "cp.async.commit_group", "cp.async.wait_group 0", "ld.global.nc.v4.u32"]),
            ("PackTest", ops.GetMethod(nameof(TensorCoreOpsTests.PackKernel), BindingFlags.NonPublic | BindingFlags.Static)!.MakeGenericMethod(t),
                ["cvt.rn.f16x2.f32", "cvt.rn.bf16x2.f32"]),
            ("Exp2Test", ops.GetMethod(nameof(TensorCoreOpsTests.Exp2Kernel), BindingFlags.NonPublic | BindingFlags.Static)!.MakeGenericMethod(t),
                ["ex2.approx.ftz.f32"]),
        ];
        foreach (var (name, method, needles) in kernels.Concat(TensorCoreKernels()))
            yield return new TestCaseData(name, method, needles).SetName($"{{m}}({name})");
    }

    /// <summary>The product kernels on the PTX instructions: GEMM (dense and convolution operand), the NCHW convolution and flash attention, each in f16 and bf16.</summary>
    private static IEnumerable<(string, MethodInfo, string[])> TensorCoreKernels()
    {
        var t = typeof(PtxTensorCore);
        const string mmaF16 = "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32", mmaBF16 = "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32";
        // The GEMM's three stages wait for all but the newest group; the convolution's and the attention's two wait for all.
        string[] staged = ["ldmatrix.sync.aligned.m8n8.x4.shared.b16", "cp.async.cg.shared.global"];
        var g = typeof(TensorCoreGemmKernels).GetMethod(nameof(TensorCoreGemmKernels.Gemm))!;
        var conv = typeof(TensorCoreConvKernels).GetMethod(nameof(TensorCoreConvKernels.Conv2d))!;
        var attention = typeof(TensorCoreAttentionKernels).GetMethod(nameof(TensorCoreAttentionKernels.FlashAttention))!;
        foreach (var (element, mma, pack) in new[] { (typeof(F16Element), mmaF16, "cvt.rn.f16x2.f32"), (typeof(BF16Element), mmaBF16, "cvt.rn.bf16x2.f32") })
        {
            string[] gemm = [.. staged, mma, "cp.async.wait_group 1"];
            foreach (var tile in new[] { typeof(GemmBlock64), typeof(GemmBlock128) })
            {
                yield return ($"TensorCoreGemm<{tile.Name}, DenseA>.{element.Name}", g.MakeGenericMethod(t, tile, typeof(DenseA), element), gemm);
                yield return ($"TensorCoreGemm<{tile.Name}, ConvA>.{element.Name}", g.MakeGenericMethod(t, tile, typeof(ConvA), element), gemm);
            }
            foreach (var tile in new[] { typeof(GemmBlock64), typeof(GemmBlock128) })
                yield return ($"TensorCoreConv2d<{tile.Name}, {element.Name}>", conv.MakeGenericMethod(t, tile, element), [.. staged, mma, "cp.async.wait_group 0", "ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16"]);
            // Every head-width kernel: the registers (and spills) differ with the width. Odd tile counts (40, 72) use ldmatrix .x2.
            foreach (var dim in new[] { typeof(AnyHeadDim), typeof(HeadDim40), typeof(HeadDim64), typeof(HeadDim72), typeof(HeadDim80), typeof(HeadDim128), typeof(HeadDim160) })
            {
                int d = ((IHeadDim)Activator.CreateInstance(dim)!).Dim;
                string[] pv = d % 16 == 8 || d == 0 ? ["ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16", "ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16"] : ["ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16"];
                yield return ($"TensorCoreFlashAttention<{element.Name}, {dim.Name}>", attention.MakeGenericMethod(t, element, dim),
                    [.. staged, mma, "cp.async.wait_group 0", .. pv, pack, "ex2.approx", "shfl.sync.bfly"]);
            }
        }
    }

    [TestCaseSource(nameof(TensorCoreCases))]
    public void TensorCoreKernelCompilesToPtx(string name, MethodInfo method, string[] instructions)
    {
        foreach (var (arch, isa) in Targets)
        {
            var backend = new PTXBackend(Ilgpu.Value, new CudaCapabilityContext(arch), arch, isa, null);
            var entry = EntryPointDescription.FromExplicitlyGroupedKernel(method);
            var ptx = ((PTXCompiledKernel)backend.Compile(entry, KernelSpecialization.Empty)).PTXAssembly;
            Assert.That(ptx, Does.Contain(".entry"), $"{name} for {arch}");
            foreach (var instruction in instructions)
                Assert.That(ptx, Does.Contain(instruction), $"{name} for {arch}");
            Assert.That(ptx, Does.Not.Contain("cvta.to.shared"), $"{name}: shared addresses come from the shared symbol");

            // What the CUDA device loads: the same kernel with ILGPU's inline-PTX result slots promoted to registers.
            var bounds = AttentionBounds(method);
            var promoted = PromotedKernels.Compile(backend, method, bounds).PTXAssembly;
            if (bounds is { } b)
                Assert.That(promoted, Does.Contain($".maxntid {b.MaxThreads}, 1, 1\n.minnctapersm {b.MinBlocks}"), $"{name}: launch bounds after the entry's parameters");
            PtxLocalPromotion.Promote(ptx, out int slots, out int kept);
            Assert.That((slots, kept), Is.Not.EqualTo((0, 0)), $"{name}: ILGPU keeps inline-PTX results in local slots (the rewrite's premise)");
            Assert.That(kept, Is.Zero, $"{name} for {arch}: local slots the rewrite could not promote");
            Assert.That(promoted, Does.Not.Contain(".local"), $"{name} for {arch}: no local memory after promotion");
            foreach (var instruction in instructions)
                Assert.That(promoted, Does.Contain(instruction), $"{name} for {arch}, promoted");
            if (Environment.GetEnvironmentVariable("ENGINE_PTX_DUMP") is { Length: > 0 } dump)
            {
                File.WriteAllText(Path.Combine(dump, $"{name}.{arch}.ptx"), ptx);
                File.WriteAllText(Path.Combine(dump, $"{name}.{arch}.promoted.ptx"), promoted);
            }
            if (Environment.GetEnvironmentVariable("ENGINE_PTXAS") is { Length: > 0 } ptxas)
                AssertNoStackFrame(ptxas, promoted, arch, name);
        }
    }

    /// <summary>The launch bounds the CUDA loader gives a flash-attention kernel (its head-width type's), null for other kernels.</summary>
    private static LaunchBounds? AttentionBounds(MethodInfo method) =>
        method.IsGenericMethod && method.GetGenericMethodDefinition() == typeof(TensorCoreAttentionKernels).GetMethod(nameof(TensorCoreAttentionKernels.FlashAttention))
            ? LaunchBounds.ForAttention((IHeadDim)Activator.CreateInstance(method.GetGenericArguments()[2])!)
            : null;

    /// <summary>
    /// Runs ptxas -v (ENGINE_PTXAS names it; not in CI) on <paramref name="ptx"/> and requires that it compiles (the
    /// driver's JIT rejects what ptxas rejects) to a kernel without stack frame or spills. A ptxas older than the module's PTX ISA reads it as ISA 7.8 (CUDA 11.8): the kernels
    /// use no instruction newer than that, and the check is about register allocation, not the header.
    /// </summary>
    private static void AssertNoStackFrame(string ptxas, string ptx, CudaArchitecture arch, string name)
    {
        var file = Path.GetTempFileName();
        try
        {
            string sm = arch == CudaArchitecture.SM_90 ? "sm_90" : "sm_80";
            string Run(string text)
            {
                File.WriteAllText(file, text);
                using var process = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo(ptxas, ["-v", $"-arch={sm}", file, "-o", file + ".cubin"])
                    { RedirectStandardError = true, RedirectStandardOutput = true })!;
                string log = process.StandardError.ReadToEnd() + process.StandardOutput.ReadToEnd();
                process.WaitForExit();
                return process.ExitCode == 0 ? log : $"ptxas exit code {process.ExitCode}: {log}";
            }
            var log = Run(ptx);
            if (log.Contains("Unsupported .version", StringComparison.Ordinal))
                log = Run(System.Text.RegularExpressions.Regex.Replace(ptx, @"^\.version \d+\.\d+", ".version 7.8", System.Text.RegularExpressions.RegexOptions.Multiline));
            TestContext.Out.WriteLine($"{name} {sm}: {log.Trim()}");
            Assert.That(log, Does.Contain("0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads"), $"{name} for {sm}: {log}");
        }
        finally
        {
            File.Delete(file);
            File.Delete(file + ".cubin");
        }
    }
}
