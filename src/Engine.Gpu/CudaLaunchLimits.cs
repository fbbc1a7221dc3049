using System.Runtime.InteropServices;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;

namespace Engine.Gpu;

/// <summary>
/// Per-kernel CUDA function attributes that ILGPU's API does not expose: the opt-in for more than
/// 48 KB of dynamic shared memory (cuFuncSetAttribute on the kernel's function handle, required on
/// SM 7.0+ before such a launch) and the driver's view of a compiled kernel (registers, local memory),
/// which shows whether ptxas kept the EmitRef stack slots.
/// </summary>
public static class CudaLaunchLimits
{
    private const int MaxDynamicSharedSizeBytes = 8, NumRegs = 4, LocalSizeBytes = 3;

    [DllImport("libcuda.so.1", EntryPoint = "cuFuncSetAttribute")]
    private static extern int FuncSetAttribute(IntPtr function, int attribute, int value);

    [DllImport("libcuda.so.1", EntryPoint = "cuFuncGetAttribute")]
    private static extern int FuncGetAttribute(out int value, int attribute, IntPtr function);

    private static IntPtr Handle<TDelegate>(TDelegate launcher) where TDelegate : Delegate =>
        launcher.GetKernel() is CudaKernel cuda ? cuda.FunctionPtr
            : throw new ArgumentException("CudaLaunchLimits: the launcher is not a CUDA kernel.", nameof(launcher));

    /// <summary>
    /// Lets the CUDA kernel behind <paramref name="launcher"/> use <paramref name="bytes"/> of dynamic
    /// shared memory (a no-op at 48 KB or less). Throws naming the CUDA error when the device refuses.
    /// </summary>
    public static void AllowSharedBytes<TDelegate>(TDelegate launcher, int bytes) where TDelegate : Delegate
    {
        if (bytes <= 48 * 1024) return;
        int rc = FuncSetAttribute(Handle(launcher), MaxDynamicSharedSizeBytes, bytes);
        if (rc != 0) throw new InvalidOperationException($"cuFuncSetAttribute(MAX_DYNAMIC_SHARED_SIZE_BYTES, {bytes}) failed with CUDA error {rc}.");
    }

    /// <summary>Registers per thread and local memory per thread in bytes of the CUDA kernel behind <paramref name="launcher"/>.</summary>
    public static (int Registers, int LocalBytes) Describe<TDelegate>(TDelegate launcher) where TDelegate : Delegate
    {
        var f = Handle(launcher);
        FuncGetAttribute(out int regs, NumRegs, f);
        FuncGetAttribute(out int local, LocalSizeBytes, f);
        return (regs, local);
    }
}
