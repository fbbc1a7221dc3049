namespace Engine.Core;

public abstract partial class Device
{
    /// <summary>Throws unless t is a float32 tensor on this device.</summary>
    protected void CheckF32(Tensor t, string name)
    {
        CheckDevice(t, name);
        if (t.DType != DType.F32) throw new ArgumentException($"Tensor '{name}' {t} must be F32 for compute; convert it with Copy first.");
    }

    private void CheckVector(Tensor? v, int length, string what)
    {
        if (v is null) return;
        CheckCompute(v, what);
        if (v.Length != length) throw new ArgumentException($"{what} {v} should have {length} elements.");
    }

    private static void CheckSameShape(Tensor a, Tensor b, string op)
    {
        if (!a.Shape.SequenceEqual(b.Shape)) throw new ArgumentException($"{op}: shapes differ: {a} and {b}.");
    }

    private static void CheckSameLength(Tensor a, Tensor b, string op)
    {
        if (a.Length != b.Length) throw new ArgumentException($"{op}: lengths differ: {a} and {b}.");
    }

    private static void CheckRowVectors(Tensor x, Tensor v, string what)
    {
        if (x.Rank != 3 || v.Length != (long)x.Dim(0) * x.Dim(2))
            throw new ArgumentException($"{what} {v} should be [{x.Dim(0)}, {x.Dim(-1)}] for x {x} ([B, L, D]).");
    }

    /// <summary>NumPy broadcast of two shapes; throws when they are incompatible.</summary>
    public static int[] BroadcastShape(ReadOnlySpan<int> a, ReadOnlySpan<int> b)
    {
        int rank = Math.Max(a.Length, b.Length);
        var result = new int[rank];
        for (int i = 0; i < rank; i++)
        {
            int da = i < rank - a.Length ? 1 : a[i - (rank - a.Length)];
            int db = i < rank - b.Length ? 1 : b[i - (rank - b.Length)];
            if (da != db && da != 1 && db != 1)
                throw new ArgumentException($"Shapes {Tensor.ShapeString(a)} and {Tensor.ShapeString(b)} do not broadcast.");
            result[i] = da == 1 ? db : da;
        }
        return result;
    }

    /// <summary>Element strides of an operand of <paramref name="shape"/> over the broadcast <paramref name="outShape"/>, 0 along broadcast dimensions.</summary>
    protected static long[] BroadcastStrides(ReadOnlySpan<int> shape, int[] outShape)
    {
        int rank = outShape.Length;
        var strides = new long[rank];
        long stride = 1;
        for (int i = rank - 1; i >= 0; i--)
        {
            int src = i - (rank - shape.Length);
            int dim = src >= 0 ? shape[src] : 1;
            strides[i] = dim == 1 && outShape[i] != 1 ? 0 : stride;
            stride *= dim;
        }
        return strides;
    }
}
