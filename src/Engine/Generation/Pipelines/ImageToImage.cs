using Engine.Core;
using Engine.Imaging;
using Engine.Sampling;

namespace Engine.Generation.Pipelines;

/// <summary>
/// The start of an img2img run as diffusers' <c>StableDiffusionImg2ImgPipeline</c> and
/// <c>StableDiffusionXLImg2ImgPipeline</c> make it: the init image resized to the output size,
/// <c>x = 2 image - 1</c>, the VAE posterior sample <c>mean + std * eps</c> scaled to latents
/// (<c>scaling_factor * (z - shift_factor)</c>), and <c>scheduler.add_noise</c> at the first call the
/// strength keeps. One instance per request; each batch starts from its rows.
/// </summary>
internal sealed class ImageToImage
{
    /// <summary>Philox draw index of the posterior sample (x_T is draw 0, sampler steps 1, 2, ...).</summary>
    public const int EncodeNoiseDraw = int.MaxValue;

    private readonly LatentPipeline _pipeline;
    private readonly InitImage _image;
    private readonly float[] _pixels;
    private readonly int _height, _width, _latentLength;

    /// <summary>Prepares <paramref name="image"/> for outputs of <paramref name="height"/> x <paramref name="width"/> pixels.</summary>
    public ImageToImage(LatentPipeline pipeline, InitImage image, int height, int width)
    {
        _pipeline = pipeline;
        _image = image;
        _height = height;
        _width = width;
        _pixels = Resized(image, height, width);
        int f = pipeline.LatentScale;
        _latentLength = pipeline.Vae.LatentChannels * (height / f) * (width / f);
    }

    /// <summary>The pipeline classes img2img runs on (diffusers has Img2Img pipelines for both).</summary>
    public static readonly IReadOnlyList<string> Classes = ["StableDiffusionPipeline", "StableDiffusionXLPipeline"];

    /// <summary>
    /// Checks an img2img request before any work: an SD or SDXL pipeline, the strength, one image or one per
    /// output, and the recorded posterior draw's length (<paramref name="latentLength"/> values per image).
    /// </summary>
    public static void Check(LoadedDenoiser model, GenerationRequest request, InitImage image, long latentLength)
    {
        if (model.Pipeline is null || !Classes.Contains(model.Pipeline.Index.ClassName))
            throw new ArgumentException($"img2img (--init-image) runs on {string.Join(" and ", Classes)} folders; '{model.Path}' is {model.Pipeline?.Index.ClassName ?? "a single-model folder"}.");
        InitImage.CheckStrength(image.Strength);
        if (image.Count != 1 && image.Count != request.Count)
            throw new ArgumentException($"init image{(image.File is null ? "" : $" '{image.File}'")} holds {image.Count} images for {request.Count} outputs: give one image for all or one per output.");
        if ((long)image.Count * 3 * image.Height * image.Width != image.Pixels.LongLength)
            throw new ArgumentException($"init image holds {image.Pixels.LongLength} values, not {image.Count} images of [3, {image.Height}, {image.Width}].");
        if (image.EncodeNoise is { } draw && draw.LongLength != image.Count * latentLength)
            throw new ArgumentException($"encode_noise has {draw.LongLength} values; {image.Count} init image(s) need {image.Count * latentLength} (the latents' shape).");
        Sampler.StrengthStartStep(request.Steps, image.Strength);
    }

    /// <summary>Values of the posterior draw PyTorch's generator makes before x_T, or 0 when the draw is given.</summary>
    public int GeneratorEncodeValues => _image.EncodeNoise is null ? _image.Count * _latentLength : 0;

    /// <summary>The pixels as diffusers' VaeImageProcessor resizes them: nearest for tensors, PIL's Lanczos for PNGs.</summary>
    internal static float[] Resized(InitImage image, int height, int width)
    {
        if (image.Height == height && image.Width == width) return image.Pixels;
        int planes = image.Count * 3;
        if (!image.FromPng) return ImageResize.Nearest(image.Pixels, planes, image.Height, image.Width, height, width);
        var bytes = image.Pixels.Select(v => (byte)Math.Clamp((int)MathF.Round(v * 255f), 0, 255)).ToArray();
        return ImageResize.Lanczos(bytes, planes, image.Height, image.Width, height, width).Select(b => b / 255f).ToArray();
    }

    /// <summary>
    /// Starts <paramref name="scheduler"/> at the strength's first call and fills <paramref name="sample"/> (the
    /// batch of outputs from <paramref name="firstImage"/>) with add_noise(init latents, <paramref name="noise"/>).
    /// The posterior draw comes from the image's recorded <see cref="InitImage.EncodeNoise"/>, else
    /// <paramref name="generatorDraw"/> (PyTorch's generator), else Philox (seed, image index, <see cref="EncodeNoiseDraw"/>).
    /// </summary>
    public void Start(Scheduler scheduler, Tensor sample, Tensor noise, int firstImage, ulong seed, float[]? generatorDraw, VaeTiling tiling)
    {
        Sampler.StartAtStrength(scheduler, _image.Strength);
        var device = sample.Device;
        int n = sample.Dim(0);
        // One image serves every output: diffusers encodes it once and repeats the latents.
        bool shared = _image.Count == 1;
        int rows = shared ? 1 : n, firstRow = shared ? 0 : firstImage;
        int pixelLength = 3 * _height * _width;
        using var x = device.Upload(_pixels.AsSpan(firstRow * pixelLength, rows * pixelLength), rows, 3, _height, _width);
        device.Affine(x, x, 2f, -1f);
        using var dist = _pipeline.Encode(x, tiling);
        using var eps = device.Allocate(dist.Mean.ShapeArray());
        if ((_image.EncodeNoise ?? generatorDraw) is { } draw)
            device.CopyFromHost(System.Runtime.InteropServices.MemoryMarshal.AsBytes(draw.AsSpan(firstRow * _latentLength, rows * _latentLength)), eps);
        else
            device.RandomNormal(eps, seed, firstRow, EncodeNoiseDraw);
        // z = mean + std * eps, then latents = scaling_factor * (z - shift_factor), each rounded as diffusers does.
        device.Mul(dist.Std, eps, eps);
        device.Add(dist.Mean, eps, eps);
        float scale = _pipeline.Vae.ScalingFactor, shift = _pipeline.Vae.ShiftFactor ?? 0f;
        if (shift != 0) device.Affine(eps, eps, 1f, -shift);
        device.Affine(eps, eps, scale, 0f);
        if (shared && n > 1)
        {
            using var init = device.Allocate(sample.ShapeArray());
            for (int r = 0; r < n; r++) device.Copy(eps, init.Slice(r, 1));
            Sampler.AddNoise(scheduler, init, noise, sample);
        }
        else Sampler.AddNoise(scheduler, eps, noise, sample);
    }
}
