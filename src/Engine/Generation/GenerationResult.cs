namespace Engine.Generation;

/// <summary>
/// Final samples of a request: NCHW floats in model space (pixels about [-1, 1], or latents for a
/// pipeline), not clamped; for a pipeline also the decoded <see cref="Image"/>.
/// </summary>
public sealed class GenerationResult
{
    internal GenerationResult(float[] samples, int count, int channels, int height, int width, int modelCalls, string schedulerClass, float[]? image = null, int imageScale = 1)
    {
        Image = image;
        ImageHeight = height * imageScale;
        ImageWidth = width * imageScale;
        Samples = samples;
        Count = count;
        Channels = channels;
        Height = height;
        Width = width;
        ModelCalls = modelCalls;
        SchedulerClass = schedulerClass;
    }

    /// <summary>The samples, [Count, Channels, Height, Width] row-major.</summary>
    public float[] Samples { get; }

    /// <summary>Number of images.</summary>
    public int Count { get; }

    /// <summary>Channels per image.</summary>
    public int Channels { get; }

    /// <summary>Height in pixels.</summary>
    public int Height { get; }

    /// <summary>Width in pixels.</summary>
    public int Width { get; }

    /// <summary>Batched network evaluations performed (all batches together).</summary>
    public int ModelCalls { get; }

    /// <summary>The diffusers scheduler class the request resolved to.</summary>
    public string SchedulerClass { get; }

    /// <summary>
    /// For a pipeline: the VAE-decoded images [Count, 3, <see cref="ImageHeight"/>, <see cref="ImageWidth"/>]
    /// in [0, 1] (diffusers' <c>output_type="np"</c>, channels first); null when the samples are the pixels.
    /// </summary>
    public float[]? Image { get; }

    /// <summary>Height of the images in pixels (of <see cref="Image"/> when set, else of the samples).</summary>
    public int ImageHeight { get; }

    /// <summary>Width of the images in pixels.</summary>
    public int ImageWidth { get; }

    /// <summary>Elements per image.</summary>
    public int ImageLength => Channels * Height * Width;

    /// <summary>The LoRA adapters merged while the request ran, with each file's full path and SHA-256.</summary>
    public IReadOnlyList<Engine.Models.Adapters.LoraSpec> Loras { get; init; } = [];
}
