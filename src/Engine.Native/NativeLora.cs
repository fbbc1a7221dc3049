using Engine.Models.Adapters;

namespace Engine.Native;

/// <summary>Mirror of <c>engine_lora</c> (engine.h, since interface 0.5.0): one LoRA file and its scale.</summary>
[System.Runtime.InteropServices.StructLayout(System.Runtime.InteropServices.LayoutKind.Sequential)]
public unsafe struct NativeLora
{
    public byte* Path;
    public float Scale;

    /// <summary>The caller's adapter array (NULL/0 = none) as <see cref="LoraSpec"/>s; a NULL array or path, or a non-finite scale, is an error naming the entry.</summary>
    public static IReadOnlyList<LoraSpec> ToSpecs(NativeLora* loras, nuint count)
    {
        if (count == 0) return [];
        if (loras == null) throw new ArgumentException($"request.loras is NULL but lora_count is {count}");
        if (count > int.MaxValue) throw new ArgumentException($"request.lora_count {count} is too large");
        var specs = new LoraSpec[(int)count];
        for (int i = 0; i < specs.Length; i++)
        {
            string path = NativeErrors.Utf8(loras[i].Path) ?? throw new ArgumentException($"request.loras[{i}].path is NULL");
            float scale = loras[i].Scale;
            if (!float.IsFinite(scale)) throw new ArgumentException($"request.loras[{i}].scale {scale} must be a finite number");
            specs[i] = new LoraSpec(System.IO.Path.GetFullPath(path), scale);
        }
        return specs;
    }
}
