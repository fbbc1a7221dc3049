using System.Text;

namespace Engine.Bench.Peers;

/// <summary>
/// Writes a small ONNX model (a single graph of standard opset-17 nodes, float inputs and float
/// initializers) as protobuf bytes that ONNX Runtime loads from memory. It exists so suites without a
/// shared peer file (conv 1x1, LayerNorm, attention sweeps, the transposed GEMM) still get an ORT peer
/// built from the same shapes; only the protobuf fields those graphs need are written.
/// </summary>
public sealed class OnnxGraph
{
    private readonly List<byte[]> _nodes = [], _initializers = [], _inputs = [], _outputs = [];

    /// <summary>A float graph input of fixed shape.</summary>
    public OnnxGraph Input(string name, params long[] shape) { _inputs.Add(ValueInfo(name, shape)); return this; }

    /// <summary>A float graph output of fixed shape.</summary>
    public OnnxGraph Output(string name, params long[] shape) { _outputs.Add(ValueInfo(name, shape)); return this; }

    /// <summary>A float constant (weights) stored as raw little-endian data.</summary>
    public OnnxGraph Initializer(string name, float[] data, params long[] shape)
    {
        var t = new Proto();
        foreach (var d in shape) t.Varint(1, (ulong)d);
        t.Varint(2, 1); // FLOAT
        t.String(8, name);
        var raw = new byte[data.Length * sizeof(float)];
        Buffer.BlockCopy(data, 0, raw, 0, raw.Length);
        t.Bytes(9, raw);
        _initializers.Add(t.ToArray());
        return this;
    }

    /// <summary>A 64-bit integer constant (e.g. a Reshape target).</summary>
    public OnnxGraph Initializer(string name, long[] data)
    {
        var t = new Proto();
        t.Varint(1, (ulong)data.Length);
        t.Varint(2, 7); // INT64
        t.String(8, name);
        var raw = new byte[data.Length * sizeof(long)];
        Buffer.BlockCopy(data, 0, raw, 0, raw.Length);
        t.Bytes(9, raw);
        _initializers.Add(t.ToArray());
        return this;
    }

    /// <summary>A node; attributes are ints (long), int lists (long[]) or floats.</summary>
    public OnnxGraph Node(string op, string[] inputs, string[] outputs, params (string Name, object Value)[] attributes)
    {
        var n = new Proto();
        foreach (var i in inputs) n.String(1, i);
        foreach (var o in outputs) n.String(2, o);
        n.String(3, $"{op}_{_nodes.Count}");
        n.String(4, op);
        foreach (var (name, value) in attributes)
        {
            var a = new Proto();
            a.String(1, name);
            switch (value)
            {
                case float f: a.Float(2, f); a.Varint(20, 1); break;
                case long l: a.Varint(3, (ulong)l); a.Varint(20, 2); break;
                case int i: a.Varint(3, (ulong)i); a.Varint(20, 2); break;
                case long[] ls: foreach (var l in ls) a.Varint(8, (ulong)l); a.Varint(20, 7); break;
                default: throw new ArgumentException($"Attribute '{name}' of {op}: unsupported type {value.GetType().Name}.");
            }
            n.Message(5, a.ToArray());
        }
        _nodes.Add(n.ToArray());
        return this;
    }

    /// <summary>The serialised ModelProto (IR version 8, default domain opset 17).</summary>
    public byte[] ToModel()
    {
        var g = new Proto();
        foreach (var n in _nodes) g.Message(1, n);
        g.String(2, "peer");
        foreach (var t in _initializers) g.Message(5, t);
        foreach (var i in _inputs) g.Message(11, i);
        foreach (var o in _outputs) g.Message(12, o);
        var opset = new Proto();
        opset.String(1, "");
        opset.Varint(2, 17);
        var m = new Proto();
        m.Varint(1, 8);
        m.String(2, "Engine.Bench");
        m.Message(7, g.ToArray());
        m.Message(8, opset.ToArray());
        return m.ToArray();
    }

    private static byte[] ValueInfo(string name, long[] shape)
    {
        var dims = new Proto();
        foreach (var d in shape)
        {
            var dim = new Proto();
            dim.Varint(1, (ulong)d);
            dims.Message(1, dim.ToArray());
        }
        var tensor = new Proto();
        tensor.Varint(1, 1); // FLOAT
        tensor.Message(2, dims.ToArray());
        var type = new Proto();
        type.Message(1, tensor.ToArray());
        var v = new Proto();
        v.String(1, name);
        v.Message(2, type.ToArray());
        return v.ToArray();
    }

    /// <summary>Protobuf wire encoding: varints, 32-bit floats and length-delimited fields.</summary>
    private sealed class Proto
    {
        private readonly MemoryStream _s = new();

        public void Varint(int field, ulong value) { Raw((ulong)field << 3); Raw(value); }

        public void Float(int field, float value)
        {
            Raw(((ulong)field << 3) | 5);
            Span<byte> b = stackalloc byte[4];
            BitConverter.TryWriteBytes(b, value);
            _s.Write(b);
        }

        public void String(int field, string value) => Bytes(field, Encoding.UTF8.GetBytes(value));

        public void Message(int field, byte[] value) => Bytes(field, value);

        public void Bytes(int field, byte[] value)
        {
            Raw(((ulong)field << 3) | 2);
            Raw((ulong)value.Length);
            _s.Write(value);
        }

        public byte[] ToArray() => _s.ToArray();

        private void Raw(ulong v)
        {
            while (v >= 0x80) { _s.WriteByte((byte)(v | 0x80)); v >>= 7; }
            _s.WriteByte((byte)v);
        }
    }
}
