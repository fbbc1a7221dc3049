using Engine.Core;

namespace Engine.Models.Modules;

/// <summary>
/// A layer that mixes positions of a feature map [B, C, H, W] and keeps its shape: the spatial
/// <see cref="Attention"/> of UNet2DModel/VAE blocks or the <see cref="SpatialTransformer"/> of
/// conditional UNets. Blocks hold them uniformly.
/// </summary>
public interface ISpatialMixer
{
    /// <summary>Returns a new tensor shaped like x; context is the encoder hidden states (if any).</summary>
    Tensor Mix(Tensor x, Tensor? context);

    /// <summary>The self-attention layers inside (for identity-attention switches).</summary>
    IEnumerable<Attention> SelfAttentions { get; }
}
