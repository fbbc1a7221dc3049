using Engine.Generation;
using Engine.Imaging;

namespace Engine.Cli;

/// <summary>
/// A generation request and the images of it to write: image <c>Index</c> of the request goes to
/// <c>FileName</c> with its sidecar. Images not listed are generated (they share a batch) but not written.
/// <paramref name="RequestClasses"/> is the class cycle the request's labels came from, as the sidecars record it.
/// </summary>
public sealed record PlannedRequest(GenerationRequest Request, IReadOnlyList<PlannedImage> Images, IReadOnlyList<int>? RequestClasses)
{
    /// <summary>
    /// Generates the request (sampled as a distilled student refined by <paramref name="teacher"/> when one is given)
    /// with progress on <paramref name="meter"/>, writing the listed images and their sidecars into <paramref name="folder"/>
    /// as soon as their batch finishes, so a later cancellation or failure loses none of them; each written image is
    /// also passed to <paramref name="written"/>. Images whose samples went NaN or infinite are not written (the request
    /// then throws <see cref="NonFiniteException"/>). Returns the result and the written images in list order.
    /// </summary>
    public (GenerationResult Result, PixelImage[] Images) Run(Generator generator, LoadedDenoiser model, LoadedDenoiser? teacher, ProgressMeter meter, string folder,
        CancellationToken cancellation, Action<PixelImage>? written = null)
    {
        var planned = Images.ToLookup(i => i.Index);
        var images = new PixelImage?[Images.Count];
        var slot = Images.Select((image, k) => (image, k)).ToDictionary(p => p.image, p => p.k);
        var result = generator.Generate(model, Request, teacher, meter.For(Request.Count, Request.EffectiveBatchSize), cancellation, (in GeneratedBatch batch) =>
        {
            // A finished batch is written whole even when a stop was asked meanwhile: finished work is never dropped.
            PixelImage[]? pixels = null;
            for (int k = 0; k < batch.Count; k++)
            {
                if (!batch.Finite[k] || !planned.Contains(batch.Start + k)) continue;
                pixels ??= ToImages(batch);
                foreach (var image in planned[batch.Start + k])
                {
                    ImageOutput.Write(folder, pixels[k], ImageSidecar.Describe(Request, RequestClasses, image, batch.SchedulerClass, batch.ImageHeight, batch.ImageWidth, generator.Device.Name, !batch.Image.IsEmpty, batch.Loras));
                    images[slot[image]] = pixels[k];
                    written?.Invoke(pixels[k]);
                }
            }
        });
        meter.RequestDone(Request.Count);
        return (result, images.Select(i => i!).ToArray());
    }

    private static PixelImage[] ToImages(in GeneratedBatch batch)
    {
        if (!batch.Image.IsEmpty)
            return SamplePixels.ToImages(batch.Image, [batch.Count, batch.Image.Length / (batch.Count * batch.ImageHeight * batch.ImageWidth), batch.ImageHeight, batch.ImageWidth], unitRange: true);
        int channels = batch.Samples.Length / (batch.Count * batch.ImageHeight * batch.ImageWidth);
        return SamplePixels.ToImages(batch.Samples, [batch.Count, channels, batch.ImageHeight, batch.ImageWidth]);
    }
}

/// <summary>One image of a <see cref="PlannedRequest"/> to write.</summary>
/// <param name="Index">Image index within the request (its noise sample index).</param>
/// <param name="FileName">PNG file name.</param>
/// <param name="Class">Class label, or null.</param>
public sealed record PlannedImage(int Index, string FileName, int? Class);
