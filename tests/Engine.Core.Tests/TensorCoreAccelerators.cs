using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;

namespace Engine.Core.Tests;

/// <summary>
/// Raw ILGPU accelerators for the tensor-core tests: the CPU accelerator with 32-lane warps and up to
/// 8 warps per group (the instructions' emulation), unless ENGINE_TEST_ILGPU=0, and CUDA where
/// ENGINE_TEST_CUDA=1 (the PTX bodies). Created once per kind.
/// </summary>
internal static class TensorCoreAccelerators
{
    private static readonly Dictionary<string, (Context Context, Accelerator Accelerator)> Cache = new();

    public static IEnumerable<string> Kinds
    {
        get
        {
            if (Environment.GetEnvironmentVariable("ENGINE_TEST_ILGPU") != "0") yield return "ilgpu-cpu";
            if (Environment.GetEnvironmentVariable("ENGINE_TEST_CUDA") == "1") yield return "cuda";
        }
    }

    public static Accelerator Get(string kind)
    {
        lock (Cache)
        {
            if (Cache.TryGetValue(kind, out var entry)) return entry.Accelerator;
            Context context = kind == "cuda"
                ? Context.Create(b => b.Cuda().EnableAlgorithms().Optimize(OptimizationLevel.O2))
                : Context.Create(b => b.CPU(new CPUDevice(32, 8, 1)).EnableAlgorithms().Optimize(OptimizationLevel.O2));
            if (kind == "cuda" && context.GetCudaDevices().Count == 0)
            {
                context.Dispose();
                Assert.Ignore("no CUDA device");
            }
            Accelerator acc = kind == "cuda" ? context.CreateCudaAccelerator(0) : context.CreateCPUAccelerator(0);
            Cache[kind] = (context, acc);
            return acc;
        }
    }

    public static ushort[] HalfBits(float[] values) => values.Select(v => BitConverter.HalfToUInt16Bits((System.Half)v)).ToArray();

    public static float[] RoundToHalf(float[] values) => values.Select(v => (float)(System.Half)v).ToArray();

    public static float[] Random(int count, int seed, float scale = 1f)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, count).Select(_ => scale * (float)(rng.NextDouble() * 2 - 1)).ToArray();
    }
}
