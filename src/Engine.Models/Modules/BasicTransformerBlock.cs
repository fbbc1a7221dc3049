using Engine.Core;
using Engine.Models.Binding;

namespace Engine.Models.Modules;

/// <summary>
/// diffusers <c>BasicTransformerBlock</c> in its two supported forms. <c>layer_norm</c> (SD UNets):
/// x += attn1(norm1 x); x += attn2(norm2 x, context) when there is a cross-attention dim;
/// x += ff(norm3 x). <c>ada_norm_zero</c> (DiT): norm1 is <see cref="AdaLayerNormZero"/>, the attention
/// and feed-forward outputs are gated per sample, and norm3 (no affine) is modulated by the MLP
/// shift/scale.
/// </summary>
public sealed class BasicTransformerBlock
{
    private readonly LayerNorm? _norm1, _norm2;
    private readonly AdaLayerNormZero? _adaNorm;
    private readonly Attention? _attn2;
    private readonly LayerNorm _norm3;
    private readonly FeedForward _ff;

    /// <summary>The norm types this block supports.</summary>
    public static readonly string[] SupportedNormTypes = ["layer_norm", "ada_norm_zero"];

    /// <summary>Declares the parameters in <paramref name="scope"/>.</summary>
    public BasicTransformerBlock(ParameterScope scope, int dim, int heads, int headDim, int? crossAttentionDim = null,
        string activation = "geglu", int? numEmbedsAdaNorm = null, bool attentionBias = false, bool onlyCrossAttention = false,
        string normType = "layer_norm", bool normElementwiseAffine = true, float normEps = 1e-5f)
    {
        if (!SupportedNormTypes.Contains(normType))
            throw new ArgumentException($"BasicTransformerBlock '{scope.Path}': norm_type '{normType}' is not supported; supported: {string.Join(", ", SupportedNormTypes)}.");
        if (normType == "ada_norm_zero")
        {
            if (numEmbedsAdaNorm is not int classes) throw new ArgumentException($"BasicTransformerBlock '{scope.Path}': ada_norm_zero needs num_embeds_ada_norm.");
            _adaNorm = new AdaLayerNormZero(scope.Sub("norm1"), dim, classes);
        }
        else _norm1 = new LayerNorm(scope, "norm1", dim, normEps, normElementwiseAffine);
        Attn1 = new Attention(scope.Sub("attn1"), dim, heads, headDim, onlyCrossAttention ? crossAttentionDim : null, attentionBias);
        if (crossAttentionDim is not null)
        {
            _norm2 = new LayerNorm(scope, "norm2", dim, normEps, normElementwiseAffine);
            _attn2 = new Attention(scope.Sub("attn2"), dim, heads, headDim, crossAttentionDim, attentionBias);
        }
        _norm3 = new LayerNorm(scope, "norm3", dim, normEps, normElementwiseAffine);
        _ff = new FeedForward(scope.Sub("ff"), dim, activation);
    }

    /// <summary>The first attention layer (self-attention unless only_cross_attention).</summary>
    public Attention Attn1 { get; }

    /// <summary>The adaLN-Zero norm (DiT form) or null.</summary>
    public AdaLayerNormZero? AdaNorm => _adaNorm;

    /// <summary>
    /// Applies the block in place to x [B, L, D]. context: encoder hidden states for cross-attention;
    /// timesteps and labels: the adaLN-Zero conditioning (DiT form).
    /// </summary>
    public void Forward(Tensor x, Tensor? context = null, Tensor? timesteps = null, Tensor? labels = null)
    {
        var device = x.Device;
        if (_adaNorm is not null)
        {
            if (timesteps is null || labels is null) throw new ArgumentException("An ada_norm_zero transformer block needs timesteps and class labels.");
            using var ada = _adaNorm.Forward(x, timesteps, labels);
            using (var a = Attn1.Forward(ada.Normed)) device.GatedAdd(x, a, ada.GateMsa, x);
            using var n3 = _norm3.Forward(x);
            device.Modulate(n3, ada.ShiftMlp, ada.ScaleMlp, n3);
            using var f = _ff.Forward(n3);
            device.GatedAdd(x, f, ada.GateMlp, x);
            return;
        }
        using (var n1 = _norm1!.Forward(x))
        using (var a = Attn1.Forward(n1, Attn1.IsCrossAttention ? context : null))
            device.Add(x, a, x);
        if (_attn2 is not null)
        {
            using var n2 = _norm2!.Forward(x);
            using var a2 = _attn2.Forward(n2, context);
            device.Add(x, a2, x);
        }
        using (var n3 = _norm3.Forward(x))
        using (var f = _ff.Forward(n3))
            device.Add(x, f, x);
    }
}
