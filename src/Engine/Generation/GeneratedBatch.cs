namespace Engine.Generation;

/// <summary>
/// One finished batch of a request, handed out as soon as it is sampled (and decoded, for a pipeline), so
/// callers can write its images before the rest of the request runs. Spans are valid during the call only.
/// </summary>
public readonly ref struct GeneratedBatch
{
    internal GeneratedBatch(int start, int count, ReadOnlySpan<float> samples, ReadOnlySpan<float> image, ReadOnlySpan<bool> finite, string schedulerClass, int imageHeight, int imageWidth)
    {
        Start = start;
        Count = count;
        Samples = samples;
        Image = image;
        Finite = finite;
        SchedulerClass = schedulerClass;
        ImageHeight = imageHeight;
        ImageWidth = imageWidth;
        Loras = [];
    }

    /// <summary>Request index of the batch's first image.</summary>
    public int Start { get; }

    /// <summary>Images in the batch.</summary>
    public int Count { get; }

    /// <summary>The batch's samples, [Count, C, H, W] in model space (see <see cref="GenerationResult.Samples"/>).</summary>
    public ReadOnlySpan<float> Samples { get; }

    /// <summary>For a pipeline the decoded images [Count, 3, ImageHeight, ImageWidth] in [0, 1]; empty otherwise.</summary>
    public ReadOnlySpan<float> Image { get; }

    /// <summary>Per image of the batch: false when its samples went NaN or infinite (the request then fails with <see cref="NonFiniteException"/> after this call).</summary>
    public ReadOnlySpan<bool> Finite { get; }

    /// <summary>The diffusers scheduler class the request resolved to.</summary>
    public string SchedulerClass { get; }

    /// <summary>Height of the images in pixels.</summary>
    public int ImageHeight { get; }

    /// <summary>Width of the images in pixels.</summary>
    public int ImageWidth { get; }

    /// <summary>The LoRA adapters merged for the request, with their files' SHA-256 (empty when none).</summary>
    public IReadOnlyList<Engine.Models.Adapters.LoraSpec> Loras { get; init; }
}

/// <summary>Receives each finished batch of a request (see <see cref="GeneratedBatch"/>).</summary>
public delegate void BatchFinished(in GeneratedBatch batch);
