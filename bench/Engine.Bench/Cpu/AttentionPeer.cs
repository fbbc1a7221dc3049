using Engine.Bench.Peers;

namespace Engine.Bench.Cpu;

/// <summary>
/// The ORT attention graph (as PyTorch exports softmax(q k^T * scale) v): Transpose, MatMul, Mul,
/// Softmax, MatMul over q [1,h,Lq,d], k and v [1,h,Lk,d]; built in memory for shapes without a shared file.
/// </summary>
internal static class AttentionPeer
{
    public static byte[] Model(int heads, int queries, int keys, int headDim)
    {
        return new OnnxGraph()
            .Input("q", 1, heads, queries, headDim).Input("k", 1, heads, keys, headDim).Input("v", 1, heads, keys, headDim)
            .Output("o", 1, heads, queries, headDim)
            .Initializer("scale", [1f / MathF.Sqrt(headDim)])
            .Node("Transpose", ["k"], ["kt"], ("perm", new long[] { 0, 1, 3, 2 }))
            .Node("MatMul", ["q", "kt"], ["s"])
            .Node("Mul", ["s", "scale"], ["ss"])
            .Node("Softmax", ["ss"], ["p"], ("axis", -1L))
            .Node("MatMul", ["p", "v"], ["o"])
            .ToModel();
    }
}
