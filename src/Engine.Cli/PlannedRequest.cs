using Engine.Generation;
using Engine.Imaging;

namespace Engine.Cli;

/// <summary>
/// A generation request and the images of it to write: image <c>Index</c> of the request goes to
/// <c>FileName</c> with its sidecar. Images not listed are generated (they share a batch) but not written.
/// </summary>
public sealed record PlannedRequest(GenerationRequest Request, IReadOnlyList<PlannedImage> Images)
{
    /// <summary>The batch size the generator will use for this request.</summary>
    public int EffectiveBatch => Math.Min(Request.Count, Request.BatchSize > 0 ? Request.BatchSize : Generator.AutomaticBatchSize);

    /// <summary>
    /// Generates the request (sampled as a distilled student refined by <paramref name="teacher"/> when one is given)
    /// with progress on <paramref name="meter"/>, then writes the listed images
    /// and their sidecars (made from <paramref name="template"/>) into <paramref name="folder"/>.
    /// Returns the result and the written images in list order.
    /// </summary>
    public (GenerationResult Result, PixelImage[] Images) Run(Generator generator, LoadedDenoiser model, LoadedDenoiser? teacher, ProgressMeter meter, string folder, ImageSidecar template, CancellationToken cancellation)
    {
        var result = generator.Generate(model, Request, teacher, meter.For(Request.Count, EffectiveBatch), cancellation);
        meter.RequestDone(Request.Count);
        var all = SamplePixels.ToImages(result.Samples, [result.Count, result.Channels, result.Height, result.Width]);
        var written = new PixelImage[Images.Count];
        for (int k = 0; k < Images.Count; k++)
        {
            // Stop between images too: what is on disk stays whole, the rest is not started.
            cancellation.ThrowIfCancellationRequested();
            var image = Images[k];
            var sidecar = template with
            {
                File = image.FileName,
                Class = image.Class,
                Seed = Request.Seed,
                SampleIndex = image.Index,
                RequestCount = Request.Count,
                RequestBatch = Request.BatchSize,
                SchedulerClass = result.SchedulerClass,
                Height = result.Height,
                Width = result.Width,
            };
            ImageOutput.Write(folder, all[image.Index], sidecar);
            written[k] = all[image.Index];
        }
        return (result, written);
    }
}

/// <summary>One image of a <see cref="PlannedRequest"/> to write.</summary>
/// <param name="Index">Image index within the request (its noise sample index).</param>
/// <param name="FileName">PNG file name.</param>
/// <param name="Class">Class label, or null.</param>
public sealed record PlannedImage(int Index, string FileName, int? Class);
