using Engine.Core;
using Engine.Models.Modules;

namespace Engine.Models.Networks;

/// <summary>
/// A denoising network (UNet or diffusion transformer): one forward pass maps a noisy sample, its
/// timesteps and optional conditioning to the model output, exactly as diffusers' <c>forward(...).sample</c>.
/// Batch size is taken from the sample on every call.
/// </summary>
public abstract class DiffusionModel : Network
{
    /// <summary>Creates the network for <paramref name="config"/>.</summary>
    protected DiffusionModel(ModelConfig config) : base(config) { }

    /// <summary>Channels of the input sample.</summary>
    public abstract int InChannels { get; }

    /// <summary>Channels of the output (twice the sample's for learned-sigma DiTs).</summary>
    public abstract int OutChannels { get; }

    /// <summary>The configured spatial size of the sample.</summary>
    public abstract int SampleSize { get; }

    /// <summary>What the sample's height and width must be multiples of (the UNet's downsampling or the patch size).</summary>
    public virtual int SizeMultiple => 1;

    /// <summary>Number of class-label rows when the model is class-conditional (labels 0 .. n-1), else null.</summary>
    public abstract int? ClassCount { get; }

    /// <summary>Whether the forward pass needs encoder hidden states.</summary>
    public virtual bool NeedsEncoderHiddenStates => false;

    /// <summary>Whether the forward pass needs pooled projections.</summary>
    public virtual bool NeedsPooledProjections => false;

    /// <summary>Every self-attention layer (SD3: joint attention), by module path.</summary>
    public abstract IReadOnlyList<ISelfAttention> SelfAttentionLayers { get; }

    /// <summary>Path prefixes of the layers perturbed by default (perturbed-attention guidance).</summary>
    public abstract IReadOnlyList<string> DefaultPerturbedLayerPrefixes { get; }

    /// <summary>Runs the network; returns a new tensor [B, OutChannels, H, W] owned by the caller.</summary>
    public abstract Tensor Forward(DenoiserInputs inputs);

    /// <summary>Convenience overload of <see cref="Forward(DenoiserInputs)"/>.</summary>
    public Tensor Forward(Tensor sample, Tensor timestep, Tensor? classLabels = null, Tensor? encoderHiddenStates = null, Tensor? pooledProjections = null) =>
        Forward(new DenoiserInputs(sample, timestep) { ClassLabels = classLabels, EncoderHiddenStates = encoderHiddenStates, PooledProjections = pooledProjections });

    /// <summary>
    /// The self-attention layers whose names equal or start with one of <paramref name="prefixes"/>
    /// (default <see cref="DefaultPerturbedLayerPrefixes"/>); throws listing the layers when none match.
    /// </summary>
    public IReadOnlyList<ISelfAttention> FindSelfAttention(IEnumerable<string>? prefixes = null)
    {
        var list = (prefixes ?? DefaultPerturbedLayerPrefixes).ToList();
        var chosen = SelfAttentionLayers.Where(a => list.Any(p => a.Name == p || a.Name.StartsWith(p.EndsWith('.') ? p : p + ".", StringComparison.Ordinal))).ToList();
        if (chosen.Count == 0)
            throw new ArgumentException($"No self-attention layer of {Config.ClassName} matches {string.Join(", ", list.Select(p => $"'{p}'"))}; layers: {string.Join(", ", SelfAttentionLayers.Take(8).Select(a => a.Name))}{(SelfAttentionLayers.Count > 8 ? ", ..." : "")}.");
        return chosen;
    }

    /// <summary>
    /// Switches identity attention (the layer outputs its value projection) on or off for the chosen
    /// self-attention layers, in place; returns the names of the layers switched.
    /// </summary>
    public IReadOnlyList<string> SetIdentityAttention(bool enabled, IEnumerable<string>? prefixes = null)
    {
        var chosen = FindSelfAttention(prefixes);
        foreach (var a in chosen) a.IdentityAttention = enabled;
        return chosen.Select(a => a.Name).ToList();
    }

    /// <summary>Every class-label embedding table of the network (for run-time embedding transforms).</summary>
    public IReadOnlyList<LabelEmbedding> LabelEmbeddings => Root.Modules.OfType<LabelEmbedding>().ToList();

    /// <summary>
    /// Checks the inputs of an image network: the sample (named <paramref name="sampleName"/> as in
    /// diffusers: <c>sample</c> for UNets, <c>hidden_states</c> for transformers) [B,
    /// <paramref name="channels"/>, H, W] with H and W multiples of <paramref name="downFactor"/> (the
    /// UNet's downsampling or the patch size), a timestep on the model's device, and class labels [B]
    /// exactly when <paramref name="classConditional"/>. Returns B.
    /// </summary>
    protected int CheckImageInputs(DenoiserInputs inputs, int channels, int downFactor, bool classConditional, string sampleName = "sample")
    {
        var sample = inputs.Sample;
        RequireDevice(sample, sampleName);
        if (sample.Rank != 4 || sample.Dim(1) != channels)
            throw new ArgumentException($"{sampleName} {sample} should be [B, {channels}, H, W].");
        if (sample.Dim(2) % downFactor != 0 || sample.Dim(3) % downFactor != 0)
            throw new ArgumentException($"{sampleName} {sample}: height and width must be multiples of {downFactor} for this {Config.ClassName}.");
        int b = sample.Dim(0);
        RequireDevice(inputs.Timestep, "timestep");
        if (classConditional && inputs.ClassLabels is null)
            throw new ArgumentException($"{Config.ClassName} from {Config.Path} is class-conditional: class_labels are required.");
        if (!classConditional && inputs.ClassLabels is not null)
            throw new ArgumentException($"{Config.ClassName} from {Config.Path} has no class embedding; do not pass class_labels.");
        if (inputs.ClassLabels is { } labels)
        {
            RequireDevice(labels, "class_labels");
            if (labels.Length != b) throw new ArgumentException($"class_labels {labels} should have {b} entries.");
        }
        return b;
    }

    /// <summary>Timesteps as [B]: the tensor itself when it has B entries, a broadcast copy when it has one.</summary>
    protected internal static Tensor ExpandTimesteps(Tensor timestep, int batch, out bool owned)
    {
        owned = false;
        if (timestep.Length == batch) return timestep.Reshape(batch);
        if (timestep.Length != 1) throw new ArgumentException($"timestep {timestep} must have 1 or {batch} (batch) entries.");
        var device = timestep.Device;
        var t = device.Zeros(batch);
        device.Add(t, timestep.Reshape(1), t);
        owned = true;
        return t;
    }

    /// <summary>Throws unless <paramref name="t"/> has the given rank and leading batch.</summary>
    protected static void CheckBatch(Tensor? t, string name, int batch, int rank)
    {
        if (t is null) return;
        if (t.Rank != rank || t.Dim(0) != batch) throw new ArgumentException($"Input '{name}' {t} should have rank {rank} and batch {batch}.");
    }
}
