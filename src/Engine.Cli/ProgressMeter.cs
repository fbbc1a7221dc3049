using System.Diagnostics;
using Engine.Generation;

namespace Engine.Cli;

/// <summary>
/// Counts sampler steps and images across the requests of one command and derives speed and time
/// left. Work is measured in image-steps (a step of a batch of n images is n units), so the estimate
/// holds across batch sizes.
/// </summary>
public sealed class ProgressMeter
{
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly Action<ProgressMeter, bool> _changed;
    private long _unitsBefore;
    private int _imagesBefore;

    /// <summary>Starts measuring <paramref name="totalImages"/> images; <paramref name="changed"/> is told of every step (true when a batch finished).</summary>
    public ProgressMeter(int totalImages, int stepsPerImage, Action<ProgressMeter, bool> changed)
    {
        TotalImages = totalImages;
        TotalSteps = Math.Max(1, stepsPerImage);
        _changed = changed;
    }

    /// <summary>Images to make.</summary>
    public int TotalImages { get; private set; }

    /// <summary>Images whose sampling has finished.</summary>
    public int ImagesSampled { get; private set; }

    /// <summary>Step just finished within the current batch.</summary>
    public int Step { get; private set; }

    /// <summary>Model calls per batch (sampler steps).</summary>
    public int TotalSteps { get; private set; }

    /// <summary>Batch steps finished (all batches).</summary>
    public long StepsDone { get; private set; }

    /// <summary>Image-steps finished.</summary>
    public long UnitsDone { get; private set; }

    /// <summary>Image-steps of the whole run: finished requests as they were, the rest at the current steps per image.</summary>
    public long UnitsTotal => _unitsBefore + (long)Math.Max(0, TotalImages - _imagesBefore) * TotalSteps;

    /// <summary>Time since the meter started.</summary>
    public TimeSpan Elapsed => _clock.Elapsed;

    /// <summary>Batch steps per second (what diffusion tools call it/s).</summary>
    public double StepsPerSecond => Elapsed.TotalSeconds > 0 ? StepsDone / Elapsed.TotalSeconds : 0;

    /// <summary>Estimated time left, or null before the first step.</summary>
    public TimeSpan? Eta => UnitsDone == 0 ? null : TimeSpan.FromSeconds(Elapsed.TotalSeconds * (UnitsTotal - UnitsDone) / UnitsDone);

    /// <summary>Removes images that will not be made (already on disk, or a failed job) from the total.</summary>
    public void Drop(int images) => TotalImages = Math.Max(_imagesBefore, TotalImages - images);

    /// <summary>
    /// The progress callback for one request of <paramref name="requestImages"/> images in batches of
    /// <paramref name="batch"/>; call <see cref="RequestDone"/> after the request.
    /// </summary>
    public Func<GenerationProgress, bool> For(int requestImages, int batch)
    {
        long before = _unitsBefore;
        int imagesBefore = _imagesBefore;
        return p =>
        {
            int n = Math.Min(batch, p.ImageCount - p.ImageIndex);
            TotalSteps = p.TotalSteps;
            Step = p.Step;
            StepsDone++;
            UnitsDone = before + (long)p.ImageIndex * p.TotalSteps + (long)p.Step * n;
            bool batchDone = p.Step == p.TotalSteps;
            if (batchDone) ImagesSampled = imagesBefore + p.ImageIndex + n;
            _changed(this, batchDone);
            return true;
        };
    }

    /// <summary>Closes a request of <paramref name="images"/> images started with <see cref="For"/>.</summary>
    public void RequestDone(int images)
    {
        _unitsBefore += (long)images * TotalSteps;
        _imagesBefore += images;
        ImagesSampled = Math.Max(ImagesSampled, _imagesBefore);
        UnitsDone = _unitsBefore;
    }

    /// <summary>A time as m:ss (or h:mm:ss).</summary>
    public static string Format(TimeSpan? t) =>
        t is not { } v ? "?" : v.TotalHours >= 1 ? $"{(int)v.TotalHours}:{v.Minutes:D2}:{v.Seconds:D2}" : $"{v.Minutes}:{v.Seconds:D2}";

    /// <summary>One status line: images, step, speed and time left.</summary>
    public string Describe() =>
        $"{ImagesSampled}/{TotalImages} images, step {Step}/{TotalSteps}, {StepsPerSecond:F2} it/s, ETA {Format(Eta)}";
}
