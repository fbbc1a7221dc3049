using System.CommandLine;
using Engine.Core.Safetensors;
using Engine.Generation;
using Engine.Generation.Pipelines;

namespace Engine.Cli;

/// <summary>
/// The img2img and VAE options of <c>engine generate</c> (<c>--init-image</c>, <c>--strength</c>,
/// <c>--vae-tiling</c>) and how they map onto a <see cref="GenerationRequest"/>, including the recorded
/// posterior draw <c>encode_noise</c> of an <c>--init-noise</c> file.
/// </summary>
public sealed class ImageToImageOptions
{
    /// <summary>The tensor of an <c>--init-noise</c> file holding the VAE posterior draw.</summary>
    public const string EncodeNoiseTensor = "encode_noise";

    /// <summary><c>--init-image FILE</c>.</summary>
    public Option<string?> InitImage { get; } = CliOptions.PathText("--init-image", "FILE",
        "img2img on an SD or SDXL pipeline: start from this PNG, or safetensors tensor 'image' [N, 3, H, W] in [0, 1] (one image for all or one per image); " +
        "without --height/--width the output has its size rounded down to the VAE factor, another size is resized (PNG: PIL's Lanczos, tensor: nearest, as diffusers)");

    /// <summary><c>--strength S</c>.</summary>
    public Option<double?> Strength { get; } = CliOptions.Parsed<double?>("--strength", "S",
        $"img2img strength in (0, 1] (default {Engine.Generation.InitImage.DefaultStrength}): noise the image to step steps - int(steps * S) and run the rest (diffusers' Img2Img)",
        text =>
        {
            double v = OptionValues.ParseNumber(text, "--strength", 0, 1);
            return v > 0 ? v : throw new FormatException($"--strength must be in (0, 1]; got '{text}'.");
        });

    /// <summary><c>--vae-tiling MODE</c>.</summary>
    public Option<VaeTiling?> Tiling { get; } = CliOptions.Parsed<VaeTiling?>("--vae-tiling", "MODE",
        $"VAE decode and encode in overlapping tiles (diffusers' enable_tiling): auto (default; above {LatentPipeline.AutoTilingPixels / 1024 / 1024} megapixel), on or off",
        text => text.Trim().ToLowerInvariant() switch
        {
            "auto" => VaeTiling.Auto,
            "on" => VaeTiling.On,
            "off" => VaeTiling.Off,
            _ => throw new FormatException($"--vae-tiling '{text}' must be one of auto, on, off."),
        });

    /// <summary>The options in help order.</summary>
    public IEnumerable<Option> All => [InitImage, Strength, Tiling];

    /// <summary>
    /// <paramref name="request"/> with the init image read (PNG or tensor, its SHA-256 recorded), the strength,
    /// the tiling mode, and <see cref="EncodeNoiseTensor"/> from <paramref name="initNoiseFile"/> when it has one.
    /// </summary>
    public GenerationRequest Apply(ParseResult parse, GenerationRequest request, string command, string? initNoiseFile)
    {
        request = request with { VaeTiling = parse.GetValue(Tiling) ?? VaeTiling.Auto };
        string? path = parse.GetValue(InitImage);
        if (path is null)
        {
            if (parse.Has(Strength)) throw new UsageException($"{command}: --strength needs --init-image.");
            return request;
        }
        var image = Engine.Generation.InitImage.Load(path, parse.GetValue(Strength) ?? Engine.Generation.InitImage.DefaultStrength);
        return request with { InitImage = initNoiseFile is null ? image : image with { EncodeNoise = ReadEncodeNoise(initNoiseFile, image.Count) } };
    }

    /// <summary>The <see cref="EncodeNoiseTensor"/> of <paramref name="path"/> for <paramref name="images"/> init images, or null when the file has none.</summary>
    public static float[]? ReadEncodeNoise(string path, int images)
    {
        using var file = SafetensorsFile.Open(path);
        if (!file.Contains(EncodeNoiseTensor)) return null;
        var shape = file.Info(EncodeNoiseTensor).Shape;
        if (shape.Length != 4 || shape[0] != images)
            throw new InvalidDataException($"{path}: {EncodeNoiseTensor} must be [{images}, C, h, w] (one draw per init image); got {Engine.Core.Tensor.ShapeString(shape)}.");
        var values = file.ReadFloats(EncodeNoiseTensor);
        if (values.Any(v => !float.IsFinite(v))) throw new InvalidDataException($"{path}: {EncodeNoiseTensor} holds a non-finite value.");
        return values;
    }
}
