using System.Reflection;
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
        foreach (var w in weights)
            foreach (var t in tiles)
            {
                yield return ($"Gemm<{w.Name}, {t.Name}>", typeof(GemmKernels).GetMethod(nameof(GemmKernels.Gemm))!.MakeGenericMethod(w, t));
                yield return ($"Conv2d<{w.Name}, {t.Name}>", typeof(ConvKernels).GetMethod(nameof(ConvKernels.Conv2d))!.MakeGenericMethod(w, t));
            }
        yield return ("FlashAttention", typeof(AttentionKernels).GetMethod(nameof(AttentionKernels.FlashAttention))!);
        yield return ("FlashAttentionTiled", typeof(AttentionTiledKernels).GetMethod(nameof(AttentionTiledKernels.FlashAttentionTiled))!);
        foreach (var name in new[] { nameof(NormKernels.GroupNorm), nameof(NormKernels.GroupNormPartial), nameof(NormKernels.GroupNormApply), nameof(NormKernels.LayerNorm), nameof(NormKernels.Softmax) })
            yield return (name, typeof(NormKernels).GetMethod(name)!);
    }

    /// <summary>The implicitly grouped (element-wise) kernels: public static methods whose first parameter is an Index1D.</summary>
    private static IEnumerable<(string Name, MethodInfo Method)> ElementwiseKernels() =>
        typeof(GemmKernels).Assembly.GetTypes()
            .SelectMany(t => t.GetMethods(BindingFlags.Public | BindingFlags.Static))
            .Where(m => m.ReturnType == typeof(void) && m.GetParameters() is [{ ParameterType: var p }, ..] && p == typeof(Index1D))
            .Select(m => ($"{m.DeclaringType!.Name}.{m.Name}", m));

    private static IEnumerable<TestCaseData> Cases() =>
        GroupedKernels().Select(k => new TestCaseData(k.Name, k.Method, true).SetName($"{{m}}({k.Name})"))
            .Concat(ElementwiseKernels().Select(k => new TestCaseData(k.Name, k.Method, false).SetName($"{{m}}({k.Name})")));

    private static readonly Lazy<Context> Ilgpu = new(() => Context.Create(b => b.EnableAlgorithms().Optimize(OptimizationLevel.O2)));

    [Test]
    public void EveryKernelFamilyIsCovered()
    {
        Assert.That(GroupedKernels().Count(), Is.EqualTo(19));
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
            if (method.Name == nameof(AttentionTiledKernels.FlashAttentionTiled))
                Assert.That(ptx, Does.Contain("shfl.sync.bfly"), "row statistics by warp shuffles");
        }
    }
}
