using Engine.Core;
using Engine.Models.Binding;

namespace Engine.Models.Modules;

/// <summary>
/// transformers' <c>CLIPEncoderLayer</c>: pre-LN residual blocks, x + attn(layer_norm1 x) with a
/// causal mask, then x + mlp(layer_norm2 x) where mlp is fc1, the activation, fc2.
/// </summary>
public sealed class ClipEncoderLayer
{
    /// <summary>quick_gelu(x) = x sigmoid(1.702 x) = silu(1.702 x) / 1.702.</summary>
    private const float QuickGeluScale = 1.702f;

    private readonly LayerNorm _norm1, _norm2;
    private readonly CausalSelfAttention _attention;
    private readonly Linear _fc1, _fc2;
    private readonly string _activation;

    /// <summary>The activations <c>hidden_act</c> may name.</summary>
    public static readonly IReadOnlyList<string> SupportedActivations = ["quick_gelu", "gelu", "gelu_new", "gelu_pytorch_tanh"];

    /// <summary>Declares the layer's parameters in <paramref name="scope"/> (<c>encoder.layers.i</c>).</summary>
    public ClipEncoderLayer(ParameterScope scope, int dim, int heads, int intermediate, string activation, float eps)
    {
        if (!SupportedActivations.Contains(activation))
            throw new ArgumentException($"hidden_act \"{activation}\" is not supported; supported: {string.Join(", ", SupportedActivations)}.");
        _activation = activation;
        _norm1 = new LayerNorm(scope, "layer_norm1", dim, eps);
        _attention = new CausalSelfAttention(scope.Sub("self_attn"), dim, heads);
        _norm2 = new LayerNorm(scope, "layer_norm2", dim, eps);
        var mlp = scope.Sub("mlp");
        _fc1 = new Linear(mlp, "fc1", dim, intermediate);
        _fc2 = new Linear(mlp, "fc2", intermediate, dim);
    }

    /// <summary>Applies the layer to x [B, L, D]; returns a new tensor (x is left as it is).</summary>
    public Tensor Forward(Tensor x)
    {
        var device = x.Device;
        Tensor h;
        using (var n1 = _norm1.Forward(x))
        {
            h = _attention.Forward(n1);
            device.Add(h, x, h);
        }
        try
        {
            using var n2 = _norm2.Forward(h);
            using var inner = Mlp1(n2);
            using var m = _fc2.Forward(inner);
            device.Add(h, m, h);
            return h;
        }
        catch
        {
            h.Dispose();
            throw;
        }
    }

    private Tensor Mlp1(Tensor x)
    {
        switch (_activation)
        {
            case "gelu": return _fc1.Forward(x, Activation.GeluErf);
            case "gelu_new" or "gelu_pytorch_tanh": return _fc1.Forward(x, Activation.GeluTanh);
            default:
                // The device has no quick_gelu; SiLU of the scaled input, scaled back, is the same function.
                var y = _fc1.Forward(x);
                x.Device.Affine(y, y, QuickGeluScale, 0f);
                x.Device.Activate(y, y, Activation.SiLU);
                x.Device.Affine(y, y, 1f / QuickGeluScale, 0f);
                return y;
        }
    }
}
