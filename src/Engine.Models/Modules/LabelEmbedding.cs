using Engine.Core;
using Engine.Models.Binding;

namespace Engine.Models.Modules;

/// <summary>
/// An embedding table lookup (torch.nn.Embedding) for integer-valued float labels [B], done on the
/// device without reading the labels back (<see cref="Device.GatherRows"/>). A label that is not an
/// integer in [0, rows) yields a zero row; callers that take labels from users validate them first.
/// </summary>
public sealed class LabelEmbedding
{
    private readonly Parameter _table;

    /// <summary>Declares <paramref name="key"/> [rows, dim] in <paramref name="parent"/>.</summary>
    public LabelEmbedding(ParameterScope parent, string key, int rows, int dim)
    {
        Rows = rows;
        Dim = dim;
        _table = parent.Add(key, [rows, dim]);
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
        var y = labels.Device.Allocate((int)labels.Length, Dim);
        try
        {
            labels.Device.GatherRows(_table.Tensor, labels.Reshape((int)labels.Length), y);
            Transform?.Invoke(y);
            return y;
        }
        catch
        {
            y.Dispose();
            throw;
        }
    }
}
