namespace Engine.Generation;

/// <summary>Final samples of a request: NCHW floats in model space (about [-1, 1]), not clamped.</summary>
public sealed class GenerationResult
{
    internal GenerationResult(float[] samples, int count, int channels, int height, int width, int modelCalls, string schedulerClass)
    {
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

    /// <summary>Elements per image.</summary>
    public int ImageLength => Channels * Height * Width;
}
