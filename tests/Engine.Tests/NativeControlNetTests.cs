using System.Text;
using Engine.Native;
using NUnit.Framework;

namespace Engine.Tests;

/// <summary>
/// <c>engine_request.controlnets</c> (interface 0.6.0) read into <see cref="Engine.Generation.GenerationRequest.ControlNets"/>:
/// the host buffer (RGB8 or float32, padded rows) copied channels first, path, scale and window as given, bad entries named.
/// </summary>
public unsafe class NativeControlNetTests
{
    [Test]
    public void ControlNetsMapOntoTheRequestWithTheirHostImages()
    {
        // 2x3 RGB8 image with rows padded to 8 bytes.
        byte[] rgb8 = [0, 51, 102, 153, 204, 255, 9, 9, 255, 0, 51, 102, 153, 204, 9, 9, 10, 20, 30, 40, 50, 60, 9, 9];
        float[] f32 = [0.5f, 0.25f, 1f];
        fixed (byte* pixels = rgb8)
        fixed (float* floats = f32)
        fixed (byte* a = Encoding.UTF8.GetBytes("nets/depth\0"))
        fixed (byte* b = Encoding.UTF8.GetBytes("/x/canny\0"))
        {
            var images = stackalloc NativeImage[2];
            images[0] = new NativeImage { Data = pixels, Format = NativeImage.Rgb8, Width = 2, Height = 3, Stride = 8 };
            images[1] = new NativeImage { Data = floats, Format = NativeImage.RgbF32, Width = 1, Height = 1 };
            var nets = stackalloc NativeControlNet[2];
            nets[0] = new NativeControlNet { Path = a, Image = &images[0], Scale = 0.75f, Start = 0.2f, End = 1f };
            nets[1] = new NativeControlNet { Path = b, Image = &images[1], Scale = 1.5f, Start = 0f, End = 0.5f };
            var native = new NativeRequest { StructSize = (nuint)sizeof(NativeRequest), Steps = 2, GuidanceScale = 3, Count = 1, ControlNets = nets, ControlNetCount = 2, GuessMode = 1 };
            var request = NativeRequest.ToRequest(&native);
            Assert.That(request.GuessMode, Is.True);
            Assert.That(request.ControlNets.Select(c => (c.Path, c.Scale, c.Start, c.End)), Is.EqualTo(new[]
            {
                (Path.GetFullPath("nets/depth"), 0.75, 0.2, 1.0),
                ("/x/canny", 1.5, 0.0, 0.5),
            }));
            var first = request.ControlNets[0].Image;
            Assert.That((first.Count, first.Channels, first.Height, first.Width, first.FromPng), Is.EqualTo((1, 3, 3, 2, true)));
            // Channel planes: R of pixel (0,0), (1,0), (0,1), ... then G, then B.
            Assert.That(first.Pixels.Take(6).Select(v => (int)MathF.Round(v * 255)), Is.EqualTo(new[] { 0, 153, 255, 102, 10, 40 }));
            Assert.That(request.ControlNets[1].Image.Pixels, Is.EqualTo(f32));
            native.ControlNetCount = 0;
            native.GuessMode = 0;
            Assert.That(NativeRequest.ToRequest(&native).ControlNets, Is.Empty, "controlnet_count 0 = none");
        }
    }

    [Test]
    public void BadControlNetsAreNamed()
    {
        float[] outside = [0.5f, 1.5f, 0f];
        fixed (float* floats = outside)
        fixed (byte* a = Encoding.UTF8.GetBytes("net\0"))
        {
            var image = new NativeImage { Data = floats, Format = NativeImage.RgbF32, Width = 1, Height = 1 };
            var nets = stackalloc NativeControlNet[1];
            var native = new NativeRequest { StructSize = (nuint)sizeof(NativeRequest), Steps = 2, GuidanceScale = 3, Count = 1, ControlNets = null, ControlNetCount = 1 };
            Assert.That(Refusal(native), Does.Contain("request.controlnets is NULL"));
            native.ControlNets = nets;
            nets[0] = new NativeControlNet { Path = null, Image = &image, Scale = 1, End = 1 };
            Assert.That(Refusal(native), Does.Contain("request.controlnets[0].path is NULL"));
            nets[0] = new NativeControlNet { Path = a, Image = null, Scale = 1, End = 1 };
            Assert.That(Refusal(native), Does.Contain("request.controlnets[0].image is NULL"));
            nets[0] = new NativeControlNet { Path = a, Image = &image, Scale = float.NaN, End = 1 };
            Assert.That(Refusal(native), Does.Contain("request.controlnets[0].scale"));
            nets[0] = new NativeControlNet { Path = a, Image = &image, Scale = 1, Start = 0.6f, End = 0.4f };
            Assert.That(Refusal(native), Does.Contain("request.controlnets[0] window"));
            nets[0] = new NativeControlNet { Path = a, Image = &image, Scale = 1, End = 1 };
            Assert.That(Refusal(native), Does.Contain("request.controlnets[0].image holds 1.5"));
        }
    }

    private static string Refusal(NativeRequest native)
    {
        var e = Assert.Throws<ArgumentException>(() => Read(native));
        return e!.Message;
    }

    private static void Read(NativeRequest native) => NativeRequest.ToRequest(&native);
}
