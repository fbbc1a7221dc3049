using System.Runtime.InteropServices;
using Engine.Generation;

namespace Engine.Native;

/// <summary>Mirror of <c>engine_image</c> (engine.h): an interleaved RGB image in the caller's memory.</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct NativeImage
{
    /// <summary><c>ENGINE_PIXELS_RGB8</c>: 3 bytes per pixel, 0..255.</summary>
    public const int Rgb8 = 1;

    /// <summary><c>ENGINE_PIXELS_RGB_F32</c>: 3 floats per pixel in [0, 1].</summary>
    public const int RgbF32 = 2;

    public void* Data;
    public int Format;
    public int Width;
    public int Height;
    public nuint Stride;

    /// <summary>
    /// Copies the caller's image into an <see cref="InitImage"/> [1, 3, H, W] in [0, 1] (channels first), checking
    /// the pointer, format, size and stride first; every error names the <c>request.init_image</c> field at fault.
    /// </summary>
    public static InitImage ToInitImage(NativeImage* image)
    {
        var (pixels, width, height, eightBit) = Read(image, "request.init_image");
        // 8-bit pixels are resized as PIL images are (Lanczos), float ones as torch tensors (nearest).
        return new InitImage { Pixels = pixels, Count = 1, Height = height, Width = width, FromPng = eightBit };
    }

    /// <summary>
    /// Copies a ControlNet's control image (a depth, normal or edge buffer) into a <see cref="ControlImage"/>
    /// [1, 3, H, W]; values must lie in [0, 1]; errors name <paramref name="field"/>.
    /// </summary>
    public static ControlImage ToControlImage(NativeImage* image, string field)
    {
        var (pixels, width, height, eightBit) = Read(image, field);
        foreach (float v in pixels)
            if (!(v >= 0 && v <= 1)) throw new ArgumentException($"{field} holds {v}; control image values must be in [0, 1]");
        return new ControlImage { Pixels = pixels, Count = 1, Channels = 3, Height = height, Width = width, FromPng = eightBit };
    }

    /// <summary>The image as channels-first values (8-bit ones / 255), after checking pointer, format, size and stride.</summary>
    private static (float[] Pixels, int Width, int Height, bool EightBit) Read(NativeImage* image, string field)
    {
        if (image->Data == null) throw new ArgumentException($"{field}->data is NULL");
        int channelBytes = image->Format switch
        {
            Rgb8 => 1,
            RgbF32 => 4,
            _ => throw new ArgumentException($"{field}->format {image->Format} is not ENGINE_PIXELS_RGB8 ({Rgb8}) or ENGINE_PIXELS_RGB_F32 ({RgbF32})"),
        };
        int width = image->Width, height = image->Height;
        if (width < 1 || height < 1 || (long)width * height > int.MaxValue / 3)
            throw new ArgumentException($"{field} size {width}x{height} must be at least 1x1 and at most {int.MaxValue / 3} pixels");
        nuint row = (nuint)width * 3 * (nuint)channelBytes;
        nuint stride = image->Stride == 0 ? row : image->Stride;
        if (stride < row) throw new ArgumentException($"{field}->stride {stride} is shorter than a row of {row} bytes");
        var pixels = new float[3L * width * height];
        int plane = width * height;
        for (int y = 0; y < height; y++)
        {
            byte* line = (byte*)image->Data + (nuint)y * stride;
            for (int x = 0; x < width; x++)
                for (int c = 0; c < 3; c++)
                {
                    float v = image->Format == Rgb8 ? line[x * 3 + c] / 255f : ((float*)line)[x * 3 + c];
                    if (!float.IsFinite(v)) throw new ArgumentException($"{field} holds a non-finite value at ({x}, {y})");
                    pixels[c * plane + y * width + x] = v;
                }
        }
        return (pixels, width, height, image->Format == Rgb8);
    }
}
