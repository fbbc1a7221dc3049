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
    // Since interface 0.4.0 (the C side copies an older caller's struct over the defaults).
    public byte** Prompts;
    public nuint PromptCount;
    public byte** NegativePrompts;
    public nuint NegativePromptCount;
    public int ClipSkip;
    public fixed int OriginalSize[2];
    public fixed int CropTopLeft[2];
    public fixed int TargetSize[2];
    public float Strength;
    public NativeImage* InitImage;
    // Since interface 0.5.0.
    public NativeLora* Loras;
    public nuint LoraCount;
    // Since interface 0.6.0.
    public NativeControlNet* ControlNets;
    public nuint ControlNetCount;
    public int GuessMode;
    // Since interface 0.7.0 (the C side never hands over a 0.6.0 caller's tail padding as `precision`).
    public int Precision;
    public int Compute;
    public fixed int NegativeOriginalSize[2];
    public fixed int NegativeCropTopLeft[2];
    public fixed int NegativeTargetSize[2];

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
        var (negativeOriginal, negativeCrop, negativeTarget) = NegativeSizes(request);
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
            Prompts = Strings(request->Prompts, request->PromptCount, "prompts"),
            NegativePrompts = Strings(request->NegativePrompts, request->NegativePromptCount, "negative_prompts"),
            ClipSkip = request->ClipSkip switch
            {
                0 => null,
                > 0 and var n => n,
                var n => throw new ArgumentException($"request.clip_skip {n} must be >= 0 (0 = the last hidden state)"),
            },
            OriginalSize = Pair(request->OriginalSize, "original_size", allowZero: false),
            CropTopLeft = Pair(request->CropTopLeft, "crop_top_left", allowZero: true),
            TargetSize = Pair(request->TargetSize, "target_size", allowZero: false),
            InitImage = request->InitImage == null ? null : NativeImage.ToInitImage(request->InitImage) with { Strength = CheckedStrength(request->Strength) },
            Loras = NativeLora.ToSpecs(request->Loras, request->LoraCount),
            ControlNets = NativeControlNet.ToSpecs(request->ControlNets, request->ControlNetCount),
            GuessMode = request->GuessMode != 0,
            Precision = NativePrecision.Activations(request->Precision),
            Compute = NativePrecision.Compute(request->Compute),
            NegativeOriginalSize = negativeOriginal,
            NegativeCropTopLeft = negativeCrop,
            NegativeTargetSize = negativeTarget,
        };
    }

    /// <summary>SDXL's negative sizes: each a pair as <see cref="Pair"/> reads it; the two sizes go together and the crop needs them.</summary>
    private static (int[]? Original, int[]? Crop, int[]? Target) NegativeSizes(NativeRequest* request)
    {
        var original = Pair(request->NegativeOriginalSize, "negative_original_size", allowZero: false);
        var crop = Pair(request->NegativeCropTopLeft, "negative_crop_top_left", allowZero: true);
        var target = Pair(request->NegativeTargetSize, "negative_target_size", allowZero: false);
        if ((original is null) != (target is null))
            throw new ArgumentException("request.negative_original_size and request.negative_target_size go together: set both or neither ({0, 0})");
        if (crop is not null && original is null)
            throw new ArgumentException("request.negative_crop_top_left needs request.negative_original_size and request.negative_target_size");
        return (original, crop, target);
    }

    /// <summary>request.strength, checked to be in (0, 1].</summary>
    private static double CheckedStrength(float strength) =>
        strength > 0 && strength <= 1 ? strength : throw new ArgumentException($"request.strength {strength} must be in (0, 1]");

    /// <summary>A caller's string array (NULL/0 = none); a NULL entry is an error naming it.</summary>
    private static string[]? Strings(byte** items, nuint count, string field)
    {
        if (count == 0) return null;
        if (items == null) throw new ArgumentException($"request.{field} is NULL but its count is {count}");
        if (count > int.MaxValue) throw new ArgumentException($"request.{field} count {count} is too large");
        var list = new string[(int)count];
        for (int i = 0; i < list.Length; i++)
            list[i] = NativeErrors.Utf8(items[i]) ?? throw new ArgumentException($"request.{field}[{i}] is NULL");
        return list;
    }

    /// <summary>An SDXL size pair: {0, 0} is the default (null); otherwise both parts must be positive (or, for a crop, non-negative).</summary>
    private static int[]? Pair(int* pair, string field, bool allowZero)
    {
        if (pair[0] == 0 && pair[1] == 0) return null;
        if (pair[0] < 0 || pair[1] < 0 || (!allowZero && (pair[0] == 0 || pair[1] == 0)))
            throw new ArgumentException($"request.{field} {{{pair[0]}, {pair[1]}}} must be {(allowZero ? "non-negative" : "positive")} ({{0, 0}} = the default)");
        return [pair[0], pair[1]];
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
