using System.Security.Cryptography;
using Engine.Core.Safetensors;

namespace Engine.Generation;

/// <summary>
/// Reading the image files a request names (<see cref="InitImage"/>, <see cref="ControlImage"/>): a PNG, or a
/// safetensors file holding tensor <c>image</c> [N, C, H, W] (or [C, H, W]) with values in [0, 1].
/// </summary>
internal static class ImageFiles
{
    /// <summary>The bytes of the file at <paramref name="path"/>, their lower-case hex SHA-256, and whether they are a PNG.</summary>
    public static (byte[] Bytes, string Sha256, bool Png) Read(string path)
    {
        byte[] bytes = File.ReadAllBytes(path);
        bool png = bytes.Length >= 8 && bytes[0] == 0x89 && bytes[1] == (byte)'P' && bytes[2] == (byte)'N' && bytes[3] == (byte)'G';
        return (bytes, Convert.ToHexStringLower(SHA256.HashData(bytes)), png);
    }

    /// <summary>
    /// Tensor <c>image</c> of the safetensors file at <paramref name="path"/>: its values, all in [0, 1], and its shape as
    /// [N, C, H, W] (with C = <paramref name="channels"/> when given). Errors start with <paramref name="opening"/> when the
    /// file is no safetensors file and with <paramref name="prefix"/> when the tensor is missing or wrong.
    /// </summary>
    public static (float[] Values, int[] Shape) ReadTensor(string path, string opening, string prefix, int? channels)
    {
        SafetensorsFile file;
        try { file = SafetensorsFile.Open(path); }
        catch (Exception e) when (e is InvalidDataException or IOException or FormatException or System.Text.Json.JsonException)
        {
            throw new InvalidDataException($"{opening} is neither a PNG nor a safetensors file: {e.Message}", e);
        }
        using (file)
        {
            if (!file.Contains("image")) throw new InvalidDataException($"{prefix}: no tensor 'image' (has {string.Join(", ", file.Tensors.Keys)}).");
            var shape = file.Info("image").Shape;
            if (shape.Length == 3) shape = [1, .. shape];
            if (shape.Length != 4 || channels is { } c && shape[1] != c || shape.Any(d => d < 1))
                throw new InvalidDataException($"{prefix}: tensor 'image' must be [N, {channels?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "C"}, H, W]; got {Engine.Core.Tensor.ShapeString(file.Info("image").Shape)}.");
            var values = file.ReadFloats("image");
            foreach (float v in values)
                if (!(v >= 0 && v <= 1)) throw new InvalidDataException($"{prefix}: tensor 'image' holds {v}; values must be in [0, 1].");
            return (values, shape);
        }
    }
}
