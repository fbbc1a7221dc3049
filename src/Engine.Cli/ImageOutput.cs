using Engine.Imaging;

namespace Engine.Cli;

/// <summary>Writes a generated image and its sidecar, each atomically, the sidecar first so every PNG on disk has one.</summary>
public static class ImageOutput
{
    /// <summary>Writes <c>folder/sidecar.File</c> and its <c>.json</c>; returns the PNG path.</summary>
    public static string Write(string folder, PixelImage image, ImageSidecar sidecar)
    {
        string png = Path.Combine(folder, sidecar.File);
        sidecar.Write(ImageSidecar.PathFor(png));
        PngCodec.Write(png, image);
        return png;
    }

    /// <summary>
    /// Grid columns: one column per class when the images cycle through all classes of a
    /// conditional model (so each column shows one class), else about square.
    /// </summary>
    public static int? GridColumns(int images, int classCycle) =>
        classCycle > 1 && images >= classCycle && classCycle <= 16 ? classCycle : null;
}
