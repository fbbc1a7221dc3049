using System.Security.Cryptography;
using Engine.Imaging;

namespace Engine.Cli;

/// <summary>
/// Writes a generated image and its sidecar, each atomically, the sidecar first so every PNG on disk has one;
/// the sidecar records the PNG's size and SHA-256, so a resumed batch can tell a whole image from a damaged one.
/// </summary>
public static class ImageOutput
{
    /// <summary>Writes <c>folder/sidecar.File</c> and its <c>.json</c>; returns the PNG path.</summary>
    public static string Write(string folder, PixelImage image, ImageSidecar sidecar)
    {
        string png = Path.Combine(folder, sidecar.File);
        byte[] bytes = PngCodec.Encode(image);
        (sidecar with { PngSize = bytes.Length, PngSha256 = Sha256(bytes) }).Write(ImageSidecar.PathFor(png));
        AtomicFile.WriteAllBytes(png, bytes);
        return png;
    }

    /// <summary>
    /// Why the image at <paramref name="png"/> cannot count as done, or null when it is whole: its sidecar must
    /// exist and read, name the file, and (when it records them: sidecars of this version on) match the PNG's
    /// size and SHA-256; the PNG must decode completely. Sidecars written before the size and checksum
    /// existed are checked by decoding alone.
    /// </summary>
    public static string? Problem(string png)
    {
        var file = new FileInfo(png);
        if (!file.Exists || file.Length == 0) return "missing or empty";
        string sidecarPath = ImageSidecar.PathFor(png);
        if (!File.Exists(sidecarPath)) return $"its sidecar {Path.GetFileName(sidecarPath)} is missing";
        ImageSidecar sidecar;
        try { sidecar = ImageSidecar.Read(sidecarPath); }
        catch (Exception e) when (e is IOException or InvalidDataException) { return $"its sidecar is unreadable ({e.Message})"; }
        if (!string.Equals(sidecar.File, file.Name, StringComparison.Ordinal)) return $"its sidecar describes '{sidecar.File}'";
        byte[] bytes;
        try { bytes = File.ReadAllBytes(png); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return $"unreadable ({e.Message})"; }
        if (sidecar.PngSize is { } size && size != bytes.Length) return $"{bytes.Length} bytes where its sidecar records {size} (truncated?)";
        if (sidecar.PngSha256 is { } sha && !string.Equals(sha, Sha256(bytes), StringComparison.OrdinalIgnoreCase)) return "its SHA-256 does not match its sidecar";
        try { PngCodec.Decode(bytes, png); }
        catch (InvalidDataException e) { return $"it does not decode ({e.Message})"; }
        return null;
    }

    private static string Sha256(ReadOnlySpan<byte> bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));

    /// <summary>
    /// Grid columns: one column per class when the images cycle through all classes of a
    /// conditional model (so each column shows one class), else about square.
    /// </summary>
    public static int? GridColumns(int images, int classCycle) =>
        classCycle > 1 && images >= classCycle && classCycle <= 16 ? classCycle : null;
}
