namespace Engine.Models.Adapters;

/// <summary>
/// One module's low-rank pair in a LoRA file: <c>down</c> [r, in] or [r, in, kh, kw] and <c>up</c> [out, r]
/// or [out, r, 1, 1], with the module's alpha (r where the file stores none).
/// </summary>
/// <param name="Name">The module's key prefix in the file (<c>lora_unet_..._to_k</c>, <c>unet.down_blocks.0....to_k</c>).</param>
/// <param name="DownKey">Tensor key of <c>down</c> (kohya <c>lora_down.weight</c>, PEFT <c>lora_A.weight</c>).</param>
/// <param name="UpKey">Tensor key of <c>up</c> (kohya <c>lora_up.weight</c>, PEFT <c>lora_B.weight</c>).</param>
/// <param name="DownShape">Stored shape of <c>down</c>.</param>
/// <param name="UpShape">Stored shape of <c>up</c>.</param>
/// <param name="Alpha">The module's alpha as float32 (the file's <c>.alpha</c>, else the rank).</param>
public sealed record LoraModule(string Name, string DownKey, string UpKey, int[] DownShape, int[] UpShape, float Alpha)
{
    /// <summary>The rank r (rows of <c>down</c>).</summary>
    public int Rank => DownShape[0];

    /// <summary>Output features (rows of <c>up</c>).</summary>
    public int Out => UpShape[0];

    /// <summary>Input elements per output row (<c>down</c>'s elements per rank row: in, or in * kh * kw).</summary>
    public long InElements => DownShape.Skip(1).Aggregate(1L, (a, d) => a * d);
}
