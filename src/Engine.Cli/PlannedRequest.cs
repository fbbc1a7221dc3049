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
    /// with progress on <paramref name="meter"/>, then writes the listed images and their sidecars into <paramref name="folder"/>.
    /// Returns the result and the written images in list order.
    /// </summary>
    public (GenerationResult Result, PixelImage[] Images) Run(Generator generator, LoadedDenoiser model, LoadedDenoiser? teacher, ProgressMeter meter, string folder, CancellationToken cancellation)
    {
        var result = generator.Generate(model, Request, teacher, meter.For(Request.Count, Request.EffectiveBatchSize), cancellation);
        meter.RequestDone(Request.Count);
        var all = result.Image is { } decoded
            ? SamplePixels.ToImages(decoded, [result.Count, decoded.Length / (result.Count * result.ImageHeight * result.ImageWidth), result.ImageHeight, result.ImageWidth], unitRange: true)
            : SamplePixels.ToImages(result.Samples, [result.Count, result.Channels, result.Height, result.Width]);
        var written = new PixelImage[Images.Count];
        for (int k = 0; k < Images.Count; k++)
        {
            // Stop between images too: what is on disk stays whole, the rest is not started.
            cancellation.ThrowIfCancellationRequested();
            var image = Images[k];
            ImageOutput.Write(folder, all[image.Index], ImageSidecar.Describe(Request, RequestClasses, image, result, generator.Device.Name));
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
