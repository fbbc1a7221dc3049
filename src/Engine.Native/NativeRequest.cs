using System.Runtime.InteropServices;
using Engine.Generation;
using Engine.Sampling.Rng;

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
    public byte* Rng;

    /// <summary>Maps the caller's <c>engine_request</c> onto a <see cref="GenerationRequest"/> (the one place the C fields are read); <c>seed</c> and <c>count</c> follow its seed rule (image i is sample index i of the seed), <c>rng</c> picks the generator.</summary>
    public static GenerationRequest ToRequest(NativeRequest* request)
    {
        if (request == null) throw new ArgumentException("request is NULL");
        if (request->StructSize != (nuint)sizeof(NativeRequest))
            throw new ArgumentException($"engine_request.struct_size is {request->StructSize}; expected {sizeof(NativeRequest)}");
        if (request->ClassLabelCount > int.MaxValue)
            throw new ArgumentException($"request.class_label_count {request->ClassLabelCount} is too large");
        int[]? labels = null;
        if (request->ClassLabelCount > 0)
        {
            if (request->ClassLabels == null) throw new ArgumentException("request.class_labels is NULL but class_label_count is not 0");
            labels = new ReadOnlySpan<int>(request->ClassLabels, (int)request->ClassLabelCount).ToArray();
        }
        return new GenerationRequest
        {
            Sampler = NativeErrors.Utf8(request->Sampler),
            SchedulerConfigJson = NativeErrors.Utf8(request->SchedulerConfigJson),
            Schedule = NativeErrors.Utf8(request->Schedule),
            Steps = request->Steps,
            GuidanceScale = request->GuidanceScale,
            Seed = request->Seed,
            Count = request->Count,
            ClassLabels = labels,
            Height = request->Height,
            Width = request->Width,
            BatchSize = request->BatchSize,
            Rng = NativeErrors.Utf8(request->Rng) is { Length: > 0 } rng
                ? RngKinds.TryParse(rng) ?? throw new ArgumentException($"request.rng '{rng}' must be one of {RngKinds.Names}")
                : RngKind.Philox,
        };
    }
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
