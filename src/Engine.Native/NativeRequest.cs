using System.Runtime.InteropServices;

namespace Engine.Native;

/// <summary>
/// Mirror of <c>engine_request</c> (engine.h), read in place from the caller's memory. Field order
/// and types must match the C struct; <see cref="NativeExports.Initialize"/> compares sizes with
/// the C side at start-up so a mismatch fails loudly instead of reading garbage.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct NativeRequest
{
    public nuint StructSize;
    public byte* Sampler;
    public byte* SchedulerConfigJson;
    public byte* Schedule;
    public int Steps;
    public float GuidanceScale;
    public ulong Seed;
    public int Count;
    public int* ClassLabels;
    public nuint ClassLabelCount;
    public int Height;
    public int Width;
    public int BatchSize;
}

/// <summary>Mirror of <c>engine_options</c> (engine.h); only its size is used here (the C side
/// reads the hosting fields and passes the device and weight storage names).</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct NativeOptions
{
    public nuint StructSize;
    public byte* Device;
    public byte* ManagedDir;
    public byte* DotnetRoot;
    public byte* Weights;
}
