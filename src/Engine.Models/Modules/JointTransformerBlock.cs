using Engine.Core;
using Engine.Models.Binding;

namespace Engine.Models.Modules;

/// <summary>
/// diffusers <c>JointTransformerBlock</c> (SD3 MM-DiT block). Both streams get an
/// <see cref="AdaLayerNormZero"/> (<c>norm1</c>, <c>norm1_context</c>) from the shared conditioning,
/// attend jointly (<see cref="JointAttention"/>), and each adds its gated attention output, then a
/// gated GELU-tanh feed-forward on LayerNorm (no affine, eps 1e-6) modulated by its MLP shift/scale.
/// In the last block (<c>context_pre_only</c>) the context only supplies keys and values: its norm is
/// an <see cref="AdaLayerNormContinuous"/> and the context stream ends there.
/// </summary>
public sealed class JointTransformerBlock
{
    private readonly AdaLayerNormZero _norm1;
    private readonly AdaLayerNormZero? _norm1Context;
    private readonly AdaLayerNormContinuous? _norm1ContextFinal;
    private readonly JointAttention _attn;
    private readonly FeedForward _ff;
    private readonly FeedForward? _ffContext;

    /// <summary>Declares the parameters in <paramref name="scope"/>.</summary>
    public JointTransformerBlock(ParameterScope scope, int dim, int heads, int headDim, bool contextPreOnly, string? qkNorm)
    {
        ContextPreOnly = contextPreOnly;
        _norm1 = new AdaLayerNormZero(scope.Sub("norm1"), dim, numEmbeddings: null);
        if (contextPreOnly) _norm1ContextFinal = new AdaLayerNormContinuous(scope.Sub("norm1_context"), dim, dim, 1e-6f);
        else _norm1Context = new AdaLayerNormZero(scope.Sub("norm1_context"), dim, numEmbeddings: null);
        _attn = new JointAttention(scope.Sub("attn"), dim, heads, headDim, contextPreOnly, qkNorm);
        _ff = new FeedForward(scope.Sub("ff"), dim, "gelu-approximate", dimOut: dim);
        if (!contextPreOnly) _ffContext = new FeedForward(scope.Sub("ff_context"), dim, "gelu-approximate", dimOut: dim);
    }

    /// <summary>The block's joint attention (its identity switches serve perturbed-attention guidance).</summary>
    public JointAttention Attention => _attn;

    /// <summary>Whether this is the last block, after which the context stream is dropped.</summary>
    public bool ContextPreOnly { get; }

    /// <summary>
    /// Updates x [B, Lx, D] and (unless <see cref="ContextPreOnly"/>) context [B, Lc, D] in place, given
    /// silu(conditioning) [B, D].
    /// </summary>
    public void Forward(Tensor x, Tensor context, Tensor activatedConditioning)
    {
        var device = x.Device;
        using var ada = _norm1.ForwardActivated(x, activatedConditioning);
        AdaLayerNormZero.Result? adaContext = null;
        Tensor? normedContextFinal = null;
        try
        {
            if (_norm1Context is not null) adaContext = _norm1Context.ForwardActivated(context, activatedConditioning);
            else normedContextFinal = _norm1ContextFinal!.ForwardActivated(context, activatedConditioning);
            var (attnX, attnContext) = _attn.Forward(ada.Normed, adaContext?.Normed ?? normedContextFinal!);
            using (attnX) device.GatedAdd(x, attnX, ada.GateMsa, x);
            using (attnContext)
                if (attnContext is not null) device.GatedAdd(context, attnContext, adaContext!.GateMsa, context);
            GatedFeedForward(_ff, x, ada.ShiftMlp, ada.ScaleMlp, ada.GateMlp);
            if (adaContext is not null) GatedFeedForward(_ffContext!, context, adaContext.ShiftMlp, adaContext.ScaleMlp, adaContext.GateMlp);
        }
        finally
        {
            adaContext?.Dispose();
            normedContextFinal?.Dispose();
        }
    }

    /// <summary>h += gate * ff(LayerNorm(h) * (1 + scale) + shift).</summary>
    private static void GatedFeedForward(FeedForward ff, Tensor h, Tensor shift, Tensor scale, Tensor gate)
    {
        var device = h.Device;
        using var normed = device.Allocate(h.DType, h.ShapeArray());
        device.LayerNorm(h, null, null, normed, 1e-6f);
        device.Modulate(normed, shift, scale, normed);
        using var f = ff.Forward(normed);
        device.GatedAdd(h, f, gate, h);
    }
}
