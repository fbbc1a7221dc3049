using Engine.Core;

namespace Engine.Sampling.Guidance;

/// <summary>
/// What a batch of B samples is conditioned on, and what its unconditional branch uses: class labels
/// with a null label, or conditioning embeddings with unconditional (negative) embeddings. Guidance
/// builds the batched rows ([cond; uncond; perturbed] in any active combination) from it once per
/// layout, with device copies.
/// </summary>
public sealed class Conditioning : IDisposable
{
    private readonly Tensor? _labels;
    private readonly Tensor? _embeddings, _uncondEmbeddings;
    private Tensor? _pooled, _uncondPooled;
    private readonly bool _ownsEmbeddings;

    private Conditioning(int batch, Tensor? labels, float nullLabel, Tensor? embeddings, Tensor? uncond, bool owns)
    {
        Batch = batch; _labels = labels; NullLabel = nullLabel; _embeddings = embeddings; _uncondEmbeddings = uncond; _ownsEmbeddings = owns;
    }

    /// <summary>Number of samples B.</summary>
    public int Batch { get; }

    /// <summary>The label of unconditional rows (class-label models).</summary>
    public float NullLabel { get; }

    /// <summary>True for class-label conditioning, false for embeddings.</summary>
    public bool IsClassLabels => _labels is not null;

    /// <summary>The per-sample conditional labels [B] (class-label conditioning), else null.</summary>
    public Tensor? Labels => _labels;

    /// <summary>The per-sample conditional embeddings [B, ...] (embedding conditioning), else null.</summary>
    public Tensor? Embeddings => _embeddings;

    /// <summary>
    /// Per-sample pooled conditioning [B, P] beside the embeddings (SDXL's text_embeds and time ids), or null;
    /// guidance gives the model its rows as <see cref="ConditioningBatch.Pooled"/>.
    /// </summary>
    public Tensor? Pooled => _pooled;

    /// <summary>Class labels for each sample; <paramref name="nullLabel"/> is the unconditional class (e.g. num_classes).</summary>
    public static Conditioning ClassLabels(Device device, ReadOnlySpan<int> labels, int nullLabel)
    {
        ArgumentNullException.ThrowIfNull(device);
        if (labels.Length == 0) throw new ArgumentException("Conditioning: at least one class label is needed.", nameof(labels));
        if (nullLabel < 0) throw new ArgumentOutOfRangeException(nameof(nullLabel), nullLabel, "Conditioning: the null class label must be >= 0.");
        var f = new float[labels.Length];
        for (int i = 0; i < f.Length; i++)
        {
            if (labels[i] < 0) throw new ArgumentOutOfRangeException(nameof(labels), labels[i], $"Conditioning: class label {i} is negative.");
            f[i] = labels[i];
        }
        return new Conditioning(f.Length, device.Upload(f, f.Length), nullLabel, null, null, false);
    }

    /// <summary>
    /// Conditioning embeddings [B, ...] and unconditional embeddings of the same shape or [1, ...]
    /// (one negative embedding for every sample); null when no unconditional branch is ever needed.
    /// The tensors stay owned by the caller.
    /// </summary>
    public static Conditioning FromEmbeddings(Tensor embeddings, Tensor? unconditional)
    {
        ArgumentNullException.ThrowIfNull(embeddings);
        if (embeddings.Rank < 2) throw new ArgumentException($"Conditioning embeddings {embeddings} must be [B, ...].", nameof(embeddings));
        if (unconditional is not null)
        {
            long per = embeddings.Length / embeddings.Dim(0);
            if (unconditional.Rank < 2 || unconditional.Length / unconditional.Dim(0) != per || (unconditional.Dim(0) != 1 && unconditional.Dim(0) != embeddings.Dim(0)))
                throw new ArgumentException($"Unconditional embeddings {unconditional} must be [1, ...] or [B, ...] with the per-sample size of {embeddings}.", nameof(unconditional));
        }
        return new Conditioning(embeddings.Dim(0), null, 0, embeddings, unconditional, false);
    }

    /// <summary>
    /// As <see cref="FromEmbeddings(Tensor, Tensor?)"/>, with pooled conditioning [B, P] and its unconditional
    /// counterpart ([1, P] or [B, P]; null when no unconditional branch is needed). The tensors stay owned by the caller.
    /// </summary>
    public static Conditioning FromEmbeddings(Tensor embeddings, Tensor? unconditional, Tensor pooled, Tensor? unconditionalPooled)
    {
        ArgumentNullException.ThrowIfNull(pooled);
        var c = FromEmbeddings(embeddings, unconditional);
        if (pooled.Rank != 2 || pooled.Dim(0) != c.Batch)
            throw new ArgumentException($"Pooled conditioning {pooled} must be [{c.Batch}, P].", nameof(pooled));
        if (unconditionalPooled is not null && (unconditionalPooled.Rank != 2 || unconditionalPooled.Dim(1) != pooled.Dim(1) || (unconditionalPooled.Dim(0) != 1 && unconditionalPooled.Dim(0) != c.Batch)))
            throw new ArgumentException($"Unconditional pooled conditioning {unconditionalPooled} must be [1 or {c.Batch}, {pooled.Dim(1)}].", nameof(unconditionalPooled));
        c._pooled = pooled;
        c._uncondPooled = unconditionalPooled;
        return c;
    }

    /// <summary>
    /// Writes the rows of a branch layout: <paramref name="unconditionalBlocks"/> lists, for each block of B rows,
    /// whether it is unconditional. Labels go to a [n B] tensor, embeddings to [n B, ...].
    /// </summary>
    internal Tensor BuildRows(Device device, ReadOnlySpan<bool> unconditionalBlocks)
    {
        int n = unconditionalBlocks.Length, b = Batch;
        if (_labels is not null)
        {
            var t = device.Allocate(n * b);
            for (int k = 0; k < n; k++)
            {
                var dst = t.Slice(k * b, b);
                if (unconditionalBlocks[k]) device.Fill(dst, NullLabel); else device.Copy(_labels, dst);
            }
            return t;
        }
        return StackRows(device, unconditionalBlocks, _embeddings!, _uncondEmbeddings);
    }

    /// <summary>The pooled rows of a branch layout (see <see cref="BuildRows"/>), or null without pooled conditioning.</summary>
    internal Tensor? BuildPooledRows(Device device, ReadOnlySpan<bool> unconditionalBlocks) =>
        _pooled is null ? null : StackRows(device, unconditionalBlocks, _pooled, _uncondPooled);

    private Tensor StackRows(Device device, ReadOnlySpan<bool> unconditionalBlocks, Tensor conditional, Tensor? unconditional)
    {
        int n = unconditionalBlocks.Length, b = Batch;
        var shape = conditional.ShapeArray();
        shape[0] = n * b;
        var e = device.Allocate(shape);
        for (int k = 0; k < n; k++)
        {
            var dst = e.Slice(k * b, b);
            if (!unconditionalBlocks[k]) { device.Copy(conditional, dst); continue; }
            var u = unconditional ?? throw new InvalidOperationException("Guidance needs an unconditional branch, but the conditioning has no unconditional embeddings: pass them to Conditioning.FromEmbeddings.");
            if (u.Dim(0) == b) device.Copy(u, dst);
            else for (int r = 0; r < b; r++) device.Copy(u, dst.Slice(r, 1));
        }
        return e;
    }

    /// <summary>Releases the uploaded labels (embeddings stay owned by the caller).</summary>
    public void Dispose()
    {
        _labels?.Dispose();
        if (_ownsEmbeddings) { _embeddings?.Dispose(); _uncondEmbeddings?.Dispose(); }
    }
}
