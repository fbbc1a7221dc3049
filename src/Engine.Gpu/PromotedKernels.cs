using System.Reflection;
using ILGPU;
using ILGPU.Backends;
using ILGPU.Backends.EntryPoints;
using ILGPU.Backends.PTX;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;
using Engine.Kernels;

namespace Engine.Gpu;

/// <summary>
/// Loads explicitly grouped kernels whose PTX is rewritten by <see cref="PtxLocalPromotion"/> before the driver
/// compiles it: the tensor-core kernels, whose inline-PTX results ILGPU keeps in local memory. On CUDA the
/// kernel is compiled by the accelerator's PTX backend, its PTX rewritten, and loaded (ILGPU's kernel cache is
/// not involved, so callers keep the launcher); on other accelerators this is ILGPU's
/// <c>LoadStreamKernel</c>. The launchers use the default stream, as ILGPU's, and
/// ILGPU's <c>GetKernel</c> still finds their kernel (<see cref="CudaLaunchLimits"/> needs it).
/// </summary>
public static class PromotedKernels
{
    // ILGPU 1.5 makes PTXCompiledKernel's assembly read-only and its constructor internal; the compiled kernel
    // is otherwise exactly what LoadKernel needs, so its PTX is replaced in place. PromotedKernelsTests checks
    // that this field exists in the referenced ILGPU.
    private static readonly FieldInfo? AssemblyField =
        typeof(PTXCompiledKernel).GetField($"<{nameof(PTXCompiledKernel.PTXAssembly)}>k__BackingField", BindingFlags.Instance | BindingFlags.NonPublic);

    /// <summary>
    /// Compiles <paramref name="kernel"/> on <paramref name="backend"/> (a CUDA accelerator's, or one of the tests' own for
    /// SM 8.0 / 9.0 without a GPU) and returns it with its PTX's local slots promoted and <paramref name="bounds"/> added to
    /// the entry where given: the text the loader hands to the driver.
    /// </summary>
    public static PTXCompiledKernel Compile(PTXBackend backend, MethodInfo kernel, LaunchBounds? bounds = null)
    {
        var compiled = (PTXCompiledKernel)backend.Compile(EntryPointDescription.FromExplicitlyGroupedKernel(kernel), KernelSpecialization.Empty);
        var ptx = PtxLocalPromotion.Promote(compiled.PTXAssembly, out _, out _);
        if (bounds is { } b) ptx = b.Apply(ptx);
        (AssemblyField ?? throw new InvalidOperationException(
            $"PromotedKernels: this ILGPU's {nameof(PTXCompiledKernel)} has no assembly field to rewrite; update PromotedKernels for it."))
            .SetValue(compiled, ptx);
        return compiled;
    }

    private static TLauncher Launcher<TLauncher>(CudaAccelerator accelerator, Delegate kernel, LaunchBounds? bounds = null) where TLauncher : Delegate =>
        accelerator.LoadKernel(Compile(accelerator.Backend, kernel.Method, bounds)).CreateLauncherDelegate<TLauncher>();

    /// <summary>The stream launcher of a two-parameter kernel, with its PTX promoted on CUDA.</summary>
    public static Action<KernelConfig, T1, T2> LoadStreamKernel<T1, T2>(Accelerator accelerator, Action<T1, T2> kernel)
        where T1 : struct where T2 : struct
    {
        if (accelerator is not CudaAccelerator cuda) return accelerator.LoadStreamKernel(kernel);
        var launch = Launcher<Action<AcceleratorStream, KernelConfig, T1, T2>>(cuda, kernel);
        var stream = accelerator.DefaultStream;
        return (config, a, b) => launch(stream, config, a, b);
    }

    /// <summary>The stream launcher of a three-parameter kernel, with its PTX promoted on CUDA.</summary>
    public static Action<KernelConfig, T1, T2, T3> LoadStreamKernel<T1, T2, T3>(Accelerator accelerator, Action<T1, T2, T3> kernel)
        where T1 : struct where T2 : struct where T3 : struct
    {
        if (accelerator is not CudaAccelerator cuda) return accelerator.LoadStreamKernel(kernel);
        var launch = Launcher<Action<AcceleratorStream, KernelConfig, T1, T2, T3>>(cuda, kernel);
        var stream = accelerator.DefaultStream;
        return (config, a, b, c) => launch(stream, config, a, b, c);
    }

    /// <summary>The stream launcher of a five-parameter kernel, with its PTX promoted on CUDA (and <paramref name="bounds"/> added there where given).</summary>
    public static Action<KernelConfig, T1, T2, T3, T4, T5> LoadStreamKernel<T1, T2, T3, T4, T5>(Accelerator accelerator, Action<T1, T2, T3, T4, T5> kernel,
        LaunchBounds? bounds = null)
        where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct
    {
        if (accelerator is not CudaAccelerator cuda) return accelerator.LoadStreamKernel(kernel);
        var launch = Launcher<Action<AcceleratorStream, KernelConfig, T1, T2, T3, T4, T5>>(cuda, kernel, bounds);
        var stream = accelerator.DefaultStream;
        return (config, a, b, c, d, e) => launch(stream, config, a, b, c, d, e);
    }

    /// <summary>The stream launcher of a six-parameter kernel, with its PTX promoted on CUDA.</summary>
    public static Action<KernelConfig, T1, T2, T3, T4, T5, T6> LoadStreamKernel<T1, T2, T3, T4, T5, T6>(Accelerator accelerator, Action<T1, T2, T3, T4, T5, T6> kernel)
        where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct
    {
        if (accelerator is not CudaAccelerator cuda) return accelerator.LoadStreamKernel(kernel);
        var launch = Launcher<Action<AcceleratorStream, KernelConfig, T1, T2, T3, T4, T5, T6>>(cuda, kernel);
        var stream = accelerator.DefaultStream;
        return (config, a, b, c, d, e, f) => launch(stream, config, a, b, c, d, e, f);
    }

    /// <summary>The stream launcher of a seven-parameter kernel, with its PTX promoted on CUDA.</summary>
    public static Action<KernelConfig, T1, T2, T3, T4, T5, T6, T7> LoadStreamKernel<T1, T2, T3, T4, T5, T6, T7>(Accelerator accelerator, Action<T1, T2, T3, T4, T5, T6, T7> kernel)
        where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct where T7 : struct
    {
        if (accelerator is not CudaAccelerator cuda) return accelerator.LoadStreamKernel(kernel);
        var launch = Launcher<Action<AcceleratorStream, KernelConfig, T1, T2, T3, T4, T5, T6, T7>>(cuda, kernel);
        var stream = accelerator.DefaultStream;
        return (config, a, b, c, d, e, f, g) => launch(stream, config, a, b, c, d, e, f, g);
    }
}

/// <summary>
/// ptxas launch bounds for a kernel: at most <see cref="MaxThreads"/> threads per block (<c>.maxntid</c>) and at least
/// <see cref="MinBlocks"/> blocks resident on one multiprocessor (<c>.minnctapersm</c>). ptxas then keeps the registers
/// where that many blocks fit (65536 / (MaxThreads MinBlocks) per thread), where it might otherwise take a register or
/// two more and lose a block; it spills rather than exceed them, which <c>PtxCompileTests</c> checks with ptxas.
/// </summary>
public readonly record struct LaunchBounds(int MaxThreads, int MinBlocks)
{
    /// <summary>The flash attention's bounds for head-width type <paramref name="dim"/>, or null where it sets none.</summary>
    public static LaunchBounds? ForAttention(IHeadDim dim) =>
        dim.MinBlocksPerMultiprocessor > 0 ? new LaunchBounds(TensorCoreAttentionKernels.Threads, dim.MinBlocksPerMultiprocessor) : null;

    /// <summary>
    /// <paramref name="ptx"/> (one kernel entry) with the bounds after the entry's parameter list, where PTX puts the
    /// performance-tuning directives.
    /// </summary>
    public string Apply(string ptx)
    {
        ArgumentNullException.ThrowIfNull(ptx);
        if (MaxThreads <= 0 || MinBlocks <= 0) throw new ArgumentOutOfRangeException(nameof(MinBlocks), $"launch bounds ({MaxThreads} threads, {MinBlocks} blocks) must be positive");
        int entry = ptx.IndexOf(".entry ", StringComparison.Ordinal);
        int close = entry < 0 ? -1 : ptx.IndexOf("\n)", entry, StringComparison.Ordinal);
        if (close < 0) throw new InvalidOperationException("LaunchBounds: no kernel entry with a parameter list in the PTX");
        if (ptx.IndexOf(".entry ", entry + 1, StringComparison.Ordinal) >= 0) throw new InvalidOperationException("LaunchBounds: the PTX has more than one kernel entry");
        return ptx.Insert(close + 2, $"\n.maxntid {MaxThreads}, 1, 1\n.minnctapersm {MinBlocks}");
    }
}
