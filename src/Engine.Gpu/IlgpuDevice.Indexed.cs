using ILGPU;
using ILGPU.Runtime.Cuda;
using ILGPU.Runtime.OpenCL;

namespace Engine.Gpu;

public sealed partial class IlgpuDevice
{
    /// <summary>How many devices of <paramref name="kind"/> (<c>cuda</c> or <c>opencl</c>) ILGPU finds; 0 when the backend cannot start.</summary>
    public static int Count(string kind)
    {
        try
        {
            switch (kind)
            {
                case "cuda":
                    using (var context = Context.Create(b => b.Cuda())) return context.GetCudaDevices().Count;
                case "opencl":
                    using (var context = Context.Create(b => b.OpenCL())) return context.GetCLDevices().Count;
                default:
                    throw new ArgumentException($"Only cuda and opencl devices are counted; got '{kind}'.", nameof(kind));
            }
        }
        catch (Exception e) when (e is DllNotFoundException or TypeInitializationException or InvalidOperationException or NotSupportedException)
        {
            return 0;
        }
    }

    private static string IndexMissing(string kind, int index, int count, string label) => count == 0
        ? $"{kind} requested but no {label} device{(kind == "opencl" ? " that ILGPU supports" : "")} was found."
        : $"{kind}:{index} requested but {count} {label} device{(count == 1 ? " was" : "s were")} found ({kind}:0{(count > 1 ? $" to {kind}:{count - 1}" : "")}).";
}
