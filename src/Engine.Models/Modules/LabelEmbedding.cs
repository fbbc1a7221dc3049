using Engine.Core;
using Engine.Models.Binding;

namespace Engine.Models.Modules;

/// <summary>
/// An embedding table lookup (torch.nn.Embedding) for integer-valued float labels [B], done on the
/// device without reading the labels back: a one-hot matrix relu(1 - |label - row|) times the table.
/// Each product has one non-zero term, so the rows come out exactly. A label outside [0, rows)
/// yields a zero row; callers that take labels from users validate them first.
/// </summary>
public sealed class LabelEmbedding
{
    private readonly Parameter _table;
    private readonly DeviceTableCache<int> _rowIndex = new();

    /// <summary>Declares <paramref name="key"/> [rows, dim] in <paramref name="parent"/>.</summary>
    public LabelEmbedding(ParameterScope parent, string key, int rows, int dim)
    {
        Rows = rows;
        Dim = dim;
        _table = parent.Add(key, [rows, dim]);
        parent.Own(_rowIndex);
        parent.Register(this);
    }

    /// <summary>
    /// Optional in-place transform of the looked-up embeddings [B, Dim] (condition-annealed sampling
    /// perturbs class embeddings through it). Null by default.
    /// </summary>
    public Action<Tensor>? Transform { get; set; }

    /// <summary>Number of table rows (valid labels are 0 .. rows-1).</summary>
    public int Rows { get; }

    /// <summary>Embedding width.</summary>
    public int Dim { get; }

    /// <summary>Looks up labels [B] (float, integer-valued) into a new tensor [B, dim].</summary>
    public Tensor Forward(Tensor labels)
    {
        var device = labels.Device;
        int b = (int)labels.Length;
        var rowIndex = _rowIndex.Get(device, Rows, () => (Enumerable.Range(0, Rows).Select(i => (float)i).ToArray(), [1, Rows]));
        using var diff = device.Allocate(b, Rows);
        device.Binary(BinaryOp.Sub, labels.Reshape(b, 1), rowIndex, diff);
        using var negative = device.Allocate(b, Rows);
        device.Affine(diff, negative, -1f, 0f);
        device.Activate(negative, negative, Activation.Relu);
        device.Activate(diff, diff, Activation.Relu);
        device.Add(diff, negative, diff);                       // |label - row|
        device.Affine(diff, diff, -1f, 1f);
        device.Activate(diff, diff, Activation.Relu);           // one-hot
        var y = device.Allocate(b, Dim);
        device.MatMul(diff, _table.Tensor, y);
        Transform?.Invoke(y);
        return y;
    }
}
