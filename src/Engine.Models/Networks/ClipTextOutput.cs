using Engine.Core;

namespace Engine.Models.Networks;

/// <summary>
/// What <see cref="ClipTextModel.Forward"/> returns, named as transformers names it. Owns its tensors
/// (on the model's device); dispose it when done.
/// </summary>
public sealed class ClipTextOutput : IDisposable
{
    internal ClipTextOutput(Tensor[] hiddenStates, Tensor lastHiddenState, Tensor pooledOutput, Tensor? textEmbeds, int[] pooledIndex)
    {
        HiddenStates = hiddenStates;
        LastHiddenState = lastHiddenState;
        PooledOutput = pooledOutput;
        TextEmbeds = textEmbeds;
        PooledIndex = pooledIndex;
    }

    /// <summary>
    /// num_hidden_layers + 1 tensors [B, L, D]: 0 is the token plus position embedding, i the output of
    /// layer i - 1, none with the final layer norm. SDXL and SD3 use <c>HiddenStates[^2]</c>; clip skip n
    /// in SD takes <see cref="ClipTextModel.FinalLayerNorm"/> of <c>HiddenStates[^(n + 1)]</c>.
    /// </summary>
    public IReadOnlyList<Tensor> HiddenStates { get; }

    /// <summary>final_layer_norm(HiddenStates[^1]) [B, L, D]: SD 1.x/2.x's prompt embeddings.</summary>
    public Tensor LastHiddenState { get; }

    /// <summary>[B, D]: the row of <see cref="LastHiddenState"/> at the pooled (end-of-text) position.</summary>
    public Tensor PooledOutput { get; }

    /// <summary>[B, projection_dim]: text_projection(PooledOutput) for CLIPTextModelWithProjection, else null.</summary>
    public Tensor? TextEmbeds { get; }

    /// <summary>The pooled position of each row (see <see cref="ClipTextModel.PooledPosition"/>).</summary>
    public IReadOnlyList<int> PooledIndex { get; }

    /// <summary>Frees every tensor.</summary>
    public void Dispose()
    {
        foreach (var h in HiddenStates) h.Dispose();
        LastHiddenState.Dispose();
        PooledOutput.Dispose();
        TextEmbeds?.Dispose();
    }
}
