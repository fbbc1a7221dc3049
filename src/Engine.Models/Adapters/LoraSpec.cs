using System.Globalization;

namespace Engine.Models.Adapters;

/// <summary>
/// One LoRA adapter of a request: its file, the scale s of its effect W + s * (alpha / rank) * up @ down
/// (the same scale on the UNet and the text encoders, as diffusers applies it) and, when the request was
/// recorded (a sidecar), the SHA-256 the file must still have.
/// </summary>
/// <param name="Path">The safetensors file.</param>
/// <param name="Scale">The scale (default 1).</param>
/// <param name="Sha256">Lower-case hex SHA-256 the file must have, or null to take the file as it is.</param>
public sealed record LoraSpec(string Path, double Scale = 1.0, string? Sha256 = null)
{
    /// <summary>
    /// Reads <c>FILE[:SCALE]</c>: the scale is the text after the last ':' only when it parses as a finite
    /// number (invariant culture), so Windows paths such as <c>C:\loras\a.safetensors</c> keep their drive.
    /// </summary>
    public static LoraSpec Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        int colon = text.LastIndexOf(':');
        if (colon > 0 && double.TryParse(text.AsSpan(colon + 1), NumberStyles.Float, CultureInfo.InvariantCulture, out double scale))
        {
            if (!double.IsFinite(scale)) throw new FormatException($"LoRA scale in '{text}' must be a finite number.");
            return new LoraSpec(text[..colon], scale);
        }
        if (text.Length == 0) throw new FormatException("LoRA file name is empty.");
        return new LoraSpec(text);
    }

    /// <summary>The spec as <c>FILE:SCALE</c>.</summary>
    public override string ToString() => $"{Path}:{Scale.ToString("R", CultureInfo.InvariantCulture)}";
}
