namespace Engine.Models.Modules;

/// <summary>
/// An attention layer whose tokens attend among themselves (UNet and DiT self-attention, SD3's joint
/// attention), with the switches perturbed-attention guidance uses: the attention map replaced by the
/// identity, so each token's output is its own value projection (through the output projection as usual).
/// </summary>
public interface ISelfAttention
{
    /// <summary>The module path, e.g. <c>mid_block.attentions.0.transformer_blocks.0.attn1</c> or <c>transformer_blocks.1.attn</c>.</summary>
    string Name { get; }

    /// <summary>When set, every row of the batch runs with identity attention. Off by default.</summary>
    bool IdentityAttention { get; set; }

    /// <summary>
    /// Batch rows [Start, Start + Count) that run with identity attention while the other rows attend
    /// normally (the perturbed branch inside one batched forward). Null: every row follows <see cref="IdentityAttention"/>.
    /// </summary>
    (int Start, int Count)? IdentityRows { get; set; }
}
