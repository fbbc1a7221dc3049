using Engine.Core;
using Engine.Models.Binding;

namespace Engine.Models.Modules;

/// <summary>diffusers <c>TimestepEmbedding</c>: <c>linear_2(silu(linear_1(x)))</c>, the SiLU fused into the first GEMM.</summary>
public sealed class TimestepEmbedding
{
    private readonly Linear _linear1, _linear2;

    /// <summary>Declares <c>linear_1</c> and <c>linear_2</c> in <paramref name="scope"/>.</summary>
    public TimestepEmbedding(ParameterScope scope, int inChannels, int timeEmbedDim, int? outDim = null)
    {
        _linear1 = new Linear(scope, "linear_1", inChannels, timeEmbedDim);
        _linear2 = new Linear(scope, "linear_2", timeEmbedDim, outDim ?? timeEmbedDim);
    }

    /// <summary>Output width.</summary>
    public int OutChannels => _linear2.Out;

    /// <summary>Maps x [B, in] to a new tensor [B, out].</summary>
    public Tensor Forward(Tensor x)
    {
        using var h = _linear1.Forward(x, Activation.SiLU);
        return _linear2.Forward(h);
    }
}
