using Engine.Core;

namespace Engine.Sampling.Guidance;

/// <summary>
/// Turns an <see cref="IConditionalModel"/> into the <see cref="IDenoiser"/> a scheduler drives,
/// applying CFG, CFG rescale, the guidance interval, PAG and CADS. Each call runs ONE batched forward
/// over the active branches, in the order [cond; uncond; perturbed] (inactive ones left out), splits
/// the output with slice views and combines it with one <see cref="Device.LinearCombination"/>:
/// out = (w + s) out_c + (1 - w) out_u - s out_ptb. The coefficients sum to 1, so combining model
/// outputs equals combining noise (or data) predictions for every prediction type. With only the
/// conditional branch active the model's own output is returned unchanged.
/// Buffers (batched input, timesteps, per-layout conditioning, output) are allocated on first use and
/// reused; nothing is copied to the host.
/// </summary>
public sealed class GuidedDenoiser : IDenoiser, IDisposable
{
    private readonly IConditionalModel _model;
    private readonly Conditioning _cond;
    private readonly int _calls;
    private readonly CadsNoise? _cads;
    private readonly RowStatistics _stats = new();
    private readonly (Tensor Rows, ConditioningBatch Batch)?[] _layouts = new (Tensor, ConditioningBatch)?[4];
    private readonly Tensor[] _terms = new Tensor[3];
    private readonly float[] _coeffs = new float[3];
    private readonly int[] _condBlocks = new int[2];
    private Tensor? _input, _timesteps, _output, _stdC, _stdG;

    /// <summary>
    /// Creates the guided denoiser for a run of <paramref name="scheduler"/> (its call count drives the
    /// CADS schedule; its prediction type must be the model's).
    /// </summary>
    public GuidedDenoiser(IConditionalModel model, Conditioning conditioning, GuidanceOptions options, Scheduler scheduler)
        : this(model, conditioning, options, scheduler?.CallCount ?? throw new ArgumentNullException(nameof(scheduler)))
    {
        if (scheduler.Config.PredictionType != model.PredictionType)
            throw new ArgumentException($"The model predicts '{model.PredictionType}' but the scheduler is configured for prediction_type '{scheduler.Config.PredictionType}'.");
    }

    /// <summary>Creates the guided denoiser for a run of <paramref name="calls"/> model calls.</summary>
    public GuidedDenoiser(IConditionalModel model, Conditioning conditioning, GuidanceOptions options, int calls)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(conditioning);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (calls < 1) throw new ArgumentOutOfRangeException(nameof(calls), calls, "A run needs at least one model call.");
        _model = model; _cond = conditioning; Options = options; _calls = calls;
        if (options.Cads is not null) _cads = new CadsNoise(options.Cads, conditioning.Batch);
    }

    /// <summary>The guidance settings.</summary>
    public GuidanceOptions Options { get; }

    /// <summary>The model's prediction type.</summary>
    public string PredictionType => _model.PredictionType;

    /// <summary>Batched forwards run so far.</summary>
    public int Forwards { get; private set; }

    /// <summary>Branch evaluations so far (rows evaluated / batch): 1 per forward without guidance, 2 with CFG, 3 with CFG and PAG.</summary>
    public int BranchEvaluations { get; private set; }

    /// <summary>Branches of the most recent forward (1 to 3).</summary>
    public int LastBranches { get; private set; }

    /// <inheritdoc />
    public Tensor Predict(Tensor modelInput, in DenoiserCall call) => Predict(modelInput, call, Options.Scale);

    /// <summary>Evaluates with CFG scale <paramref name="scale"/> instead of the configured one (other options unchanged).</summary>
    public Tensor Predict(Tensor modelInput, in DenoiserCall call, double scale)
    {
        int b = _cond.Batch;
        if (modelInput.Rank < 1 || modelInput.Dim(0) != b)
            throw new ArgumentException($"Guidance: the sample {modelInput} does not have the conditioning's batch of {b}.");
        if (!double.IsFinite(scale)) throw new ArgumentOutOfRangeException(nameof(scale), scale, "Guidance scale must be finite.");
        var d = modelInput.Device;
        bool inside = call.Sigma > Options.IntervalSigmaMin && call.Sigma <= Options.IntervalSigmaMax;
        bool useU = inside && scale != 1;
        bool useP = inside && Options.PagScale != 0;
        int n = 1 + (useU ? 1 : 0) + (useP ? 1 : 0);
        var (rows, batch) = Layout(d, useU, useP);

        Tensor input = modelInput;
        if (n > 1)
        {
            var shape = modelInput.ShapeArray();
            shape[0] = 3 * b;
            if (_input is null || _input.Length != Tensor.ShapeLength(shape) || !ReferenceEquals(_input.Device, d)) { _input?.Dispose(); _input = d.Allocate(shape); }
            input = _input.Slice(0, n * b);
            for (int k = 0; k < n; k++) d.Copy(modelInput, input.Slice(k * b, b));
        }
        if (_timesteps is null || !ReferenceEquals(_timesteps.Device, d)) { _timesteps?.Dispose(); _timesteps = d.Allocate(3 * b); }
        var ts = _timesteps.Slice(0, n * b);
        if (Options.Timesteps is { } provider)
        {
            var first = ts.Slice(0, b);
            provider.Fill(modelInput, call, first);
            for (int k = 1; k < n; k++) d.Copy(first, ts.Slice(k * b, b));
        }
        else d.Fill(ts, (float)call.Timestep);

        if (_cads is not null)
        {
            int blocks = 0;
            _condBlocks[blocks++] = 0;
            if (useP) _condBlocks[blocks++] = (n - 1) * b;
            _cads.Configure(call.Index, _calls, _condBlocks.AsSpan(0, blocks));
            if (!_cond.IsClassLabels)
            {
                // Embedding conditioning: the conditional blocks are rewritten from the clean embeddings.
                var clean = _cond.Embeddings!.Reshape(b, -1);
                var condRows = rows.Slice(0, b).Reshape(b, -1);
                _cads.Corrupt(clean, condRows);
                if (useP) d.Copy(condRows, rows.Slice((n - 1) * b, b));
            }
        }

        var output = _model.Forward(input, ts, batch);
        if (output.Length != input.Length)
            throw new InvalidOperationException($"The model returned {output} for the input {input}.");
        Forwards++; BranchEvaluations += n; LastBranches = n;
        output = output.Reshape(input.ShapeArray());
        var c = output.Slice(0, b);
        if (n == 1) return c;

        double w = useU ? scale : 1, s = useP ? Options.PagScale : 0;
        int m = 0;
        _terms[m] = c; _coeffs[m++] = (float)(w + s);
        if (useU) { _terms[m] = output.Slice(b, b); _coeffs[m++] = (float)(1 - w); }
        if (useP) { _terms[m] = output.Slice((n - 1) * b, b); _coeffs[m++] = (float)-s; }
        if (_output is null || _output.Length != modelInput.Length || !ReferenceEquals(_output.Device, d)) { _output?.Dispose(); _output = d.Allocate(modelInput.ShapeArray()); }
        var guided = _output.Reshape(modelInput.ShapeArray());
        d.LinearCombination(guided, _terms.AsSpan(0, m), _coeffs.AsSpan(0, m));
        Array.Clear(_terms);
        if (useU && Options.RescalePhi > 0) Rescale(guided.Reshape(b, -1), c.Reshape(b, -1), Options.RescalePhi);
        return guided;
    }

    /// <summary>
    /// CFG rescale (as diffusers' rescale_noise_cfg): g &lt;- phi g std(c)/std(g) + (1 - phi) g, per
    /// sample; the ratio of population and unbiased standard deviations is the same.
    /// </summary>
    private void Rescale(Tensor g, Tensor c, double phi)
    {
        var d = g.Device;
        int b = g.Dim(0);
        if (_stdC is null || _stdC.Dim(0) != b || !ReferenceEquals(_stdC.Device, d)) { _stdC?.Dispose(); _stdG?.Dispose(); _stdC = d.Allocate(b, 1); _stdG = d.Allocate(b, 1); }
        _stats.Std(c, _stdC);
        _stats.Std(g, _stdG!);
        d.Binary(BinaryOp.Div, _stdC, _stdG!, _stdC);
        d.Affine(_stdC, _stdC, (float)phi, (float)(1 - phi));
        d.Mul(g, _stdC, g);
    }

    private (Tensor Rows, ConditioningBatch Batch) Layout(Device d, bool useU, bool useP)
    {
        int key = (useU ? 1 : 0) | (useP ? 2 : 0);
        if (_layouts[key] is { } cached) return cached;
        var blocks = new List<bool> { false };
        if (useU) blocks.Add(true);
        if (useP) blocks.Add(false);
        var rows = _cond.BuildRows(d, blocks.ToArray());
        int b = _cond.Batch;
        var batch = new ConditioningBatch
        {
            ClassLabels = _cond.IsClassLabels ? rows : null,
            Embeddings = _cond.IsClassLabels ? null : rows,
            Pooled = _cond.BuildPooledRows(d, blocks.ToArray()),
            PerturbedStart = useP ? (blocks.Count - 1) * b : 0,
            PerturbedCount = useP ? b : 0,
            PerturbedLayers = Options.PagLayers,
            ClassEmbeddingTransform = _cond.IsClassLabels ? _cads : null,
        };
        _layouts[key] = (rows, batch);
        return (rows, batch);
    }

    /// <summary>Releases the buffers (the model and conditioning stay owned by the caller).</summary>
    public void Dispose()
    {
        for (int i = 0; i < _layouts.Length; i++) { _layouts[i]?.Rows.Dispose(); _layouts[i]?.Batch.Pooled?.Dispose(); _layouts[i] = null; }
        _input?.Dispose(); _timesteps?.Dispose(); _output?.Dispose(); _stdC?.Dispose(); _stdG?.Dispose();
        _input = _timesteps = _output = _stdC = _stdG = null;
        _cads?.Dispose(); _stats.Dispose();
    }
}
