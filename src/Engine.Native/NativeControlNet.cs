using Engine.Generation;

namespace Engine.Native;

/// <summary>
/// Mirror of <c>engine_controlnet</c> (engine.h, since interface 0.6.0): a ControlNetModel folder, its control image
/// in the caller's memory (an <c>engine_image</c>: RGB8 or float32 with width, height and stride), its conditioning
/// scale and its window.
/// </summary>
[System.Runtime.InteropServices.StructLayout(System.Runtime.InteropServices.LayoutKind.Sequential)]
public unsafe struct NativeControlNet
{
    public byte* Path;
    public NativeImage* Image;
    public float Scale;
    public float Start;
    public float End;

    /// <summary>The caller's ControlNet array (NULL/0 = none) as <see cref="ControlNetSpec"/>s; each bad entry is named.</summary>
    public static IReadOnlyList<ControlNetSpec> ToSpecs(NativeControlNet* nets, nuint count)
    {
        if (count == 0) return [];
        if (nets == null) throw new ArgumentException($"request.controlnets is NULL but controlnet_count is {count}");
        if (count > 64) throw new ArgumentException($"request.controlnet_count {count} is too large (at most 64)");
        var specs = new ControlNetSpec[(int)count];
        for (int i = 0; i < specs.Length; i++)
        {
            string field = $"request.controlnets[{i}]";
            string path = NativeErrors.Utf8(nets[i].Path) ?? throw new ArgumentException($"{field}.path is NULL");
            if (nets[i].Image == null) throw new ArgumentException($"{field}.image is NULL");
            float scale = nets[i].Scale, start = nets[i].Start, end = nets[i].End;
            if (!float.IsFinite(scale)) throw new ArgumentException($"{field}.scale {scale} must be a finite number");
            if (!(start >= 0 && start <= 1 && end >= 0 && end <= 1) || start >= end)
                throw new ArgumentException($"{field} window start {start}, end {end} must satisfy 0 <= start < end <= 1");
            var image = NativeImage.ToControlImage(nets[i].Image, $"{field}.image");
            // The window is compared with i / N in double: 0.2f means 0.2 (its shortest decimal), not 0.200000003.
            specs[i] = new ControlNetSpec(System.IO.Path.GetFullPath(path), image) { Scale = scale, Start = Decimal(start), End = Decimal(end) };
        }
        return specs;
    }

    private static double Decimal(float value) => double.Parse(value.ToString("R", System.Globalization.CultureInfo.InvariantCulture), System.Globalization.CultureInfo.InvariantCulture);
}
