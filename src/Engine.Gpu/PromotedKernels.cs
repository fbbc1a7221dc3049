using System.Reflection;
using ILGPU;
using ILGPU.Backends;
using ILGPU.Backends.EntryPoints;
using ILGPU.Backends.PTX;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;

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

    /// <summary>Compiles <paramref name="kernel"/> for <paramref name="accelerator"/> and returns its PTX with the local slots promoted (the text the loader hands to the driver).</summary>
    public static PTXCompiledKernel Compile(CudaAccelerator accelerator, MethodInfo kernel) => Compile(accelerator.Backend, kernel);

    /// <summary>As <see cref="Compile(CudaAccelerator, MethodInfo)"/> on a PTX backend of one's own (tests compile for SM 8.0 / 9.0 without a GPU).</summary>
    public static PTXCompiledKernel Compile(PTXBackend backend, MethodInfo kernel)
    {
        var compiled = (PTXCompiledKernel)backend.Compile(EntryPointDescription.FromExplicitlyGroupedKernel(kernel), KernelSpecialization.Empty);
        var ptx = PtxLocalPromotion.Promote(compiled.PTXAssembly, out _, out _);
        (AssemblyField ?? throw new InvalidOperationException(
            $"PromotedKernels: this ILGPU's {nameof(PTXCompiledKernel)} has no assembly field to rewrite; update PromotedKernels for it."))
            .SetValue(compiled, ptx);
        return compiled;
    }

    private static TLauncher Launcher<TLauncher>(CudaAccelerator accelerator, Delegate kernel) where TLauncher : Delegate =>
        accelerator.LoadKernel(Compile(accelerator, kernel.Method)).CreateLauncherDelegate<TLauncher>();

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

    /// <summary>The stream launcher of a five-parameter kernel, with its PTX promoted on CUDA.</summary>
    public static Action<KernelConfig, T1, T2, T3, T4, T5> LoadStreamKernel<T1, T2, T3, T4, T5>(Accelerator accelerator, Action<T1, T2, T3, T4, T5> kernel)
        where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct
    {
        if (accelerator is not CudaAccelerator cuda) return accelerator.LoadStreamKernel(kernel);
        var launch = Launcher<Action<AcceleratorStream, KernelConfig, T1, T2, T3, T4, T5>>(cuda, kernel);
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
