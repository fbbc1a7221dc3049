using Engine.Imaging;

namespace Engine.Tests;

public class ImagingTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp()
    {
        _dir = Path.Combine(Path.GetTempPath(), "engine-imaging-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_dir);
    }

    [TearDown]
    public void TearDown()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    private static PixelImage RandomImage(int w, int h, int c, int seed)
    {
        var rng = new Random(seed);
        var pixels = new byte[w * h * c];
        rng.NextBytes(pixels);
        return new PixelImage(w, h, c, pixels);
    }

    [TestCase(-1f, 0)]
    [TestCase(1f, 255)]
    [TestCase(-2f, 0)]
    [TestCase(3f, 255)]
    [TestCase(0f, 128)] // 127.5 rounds half to even
    [TestCase(float.NaN, 0)]
    public void ToByte_FollowsDiffusersPostprocessing(float x, int expected) =>
        Assert.That(SamplePixels.ToByte(x), Is.EqualTo((byte)expected));

    [Test]
    public void ToByte_MatchesFloat32Formula_OverRange()
    {
        for (int i = -1200; i <= 1200; i++)
        {
            float x = i / 1000f;
            float v = Math.Clamp(x / 2f + 0.5f, 0f, 1f) * 255f;
            Assert.That(SamplePixels.ToByte(x), Is.EqualTo((byte)MathF.Round(v, MidpointRounding.ToEven)), $"x = {x}");
        }
    }

    [Test]
    public void ToImages_InterleavesChannels()
    {
        // [1, 3, 1, 2]: channel planes R = (-1, 1), G = (1, -1), B = (0, 0)
        float[] samples = [-1f, 1f, 1f, -1f, 0f, 0f];
        var images = SamplePixels.ToImages(samples, [1, 3, 1, 2]);
        Assert.That(images, Has.Length.EqualTo(1));
        Assert.That(images[0].Pixels, Is.EqualTo(new byte[] { 0, 255, 128, 255, 0, 128 }));
    }

    [Test]
    public void ToImages_RejectsBadShapes()
    {
        Assert.Throws<ArgumentException>(() => SamplePixels.ToImages(new float[8], [2, 2, 2]));
        Assert.Throws<ArgumentException>(() => SamplePixels.ToImages(new float[8], [1, 2, 2, 2]));
        Assert.Throws<ArgumentException>(() => SamplePixels.ToImages(new float[7], [2, 1, 2, 2]));
    }

    [Test]
    public void PixelsToSamples_RoundTrips()
    {
        var images = new[] { RandomImage(5, 4, 3, 1), RandomImage(5, 4, 3, 2) };
        var samples = SamplePixels.ToSamples(images);
        var back = SamplePixels.ToImages(samples, [2, 3, 4, 5]);
        for (int i = 0; i < 2; i++) Assert.That(back[i].Pixels, Is.EqualTo(images[i].Pixels));
    }

    [TestCase(1)]
    [TestCase(3)]
    public void Png_RoundTripIsExact(int channels)
    {
        var image = RandomImage(29, 17, channels, 42 + channels);
        var decoded = PngCodec.Decode(PngCodec.Encode(image));
        Assert.That(decoded.Width, Is.EqualTo(29));
        Assert.That(decoded.Height, Is.EqualTo(17));
        Assert.That(decoded.Channels, Is.EqualTo(channels));
        Assert.That(decoded.Pixels, Is.EqualTo(image.Pixels));
    }

    [Test]
    public void Png_GrayscaleIsWrittenAsGrayscale()
    {
        var bytes = PngCodec.Encode(RandomImage(8, 8, 1, 3));
        Assert.That(bytes.AsSpan(0, 8).ToArray(), Is.EqualTo(new byte[] { 137, 80, 78, 71, 13, 10, 26, 10 }), "PNG signature");
        // IHDR: width(4) height(4) bit depth(1) colour type(1) at offset 16; colour type 0 is grayscale.
        Assert.That(bytes[24], Is.EqualTo(8), "bit depth");
        Assert.That(bytes[25], Is.EqualTo(0), "colour type");
    }

    [Test]
    public void Png_DecodeOfGarbageNamesTheSource() =>
        Assert.That(() => PngCodec.Decode(new byte[] { 1, 2, 3, 4 }, "garbage.png"),
            Throws.TypeOf<InvalidDataException>().With.Message.Contains("garbage.png"));

    [Test]
    public void Grid_HasPaddedDimensionsAndPlacesImages()
    {
        var images = Enumerable.Range(0, 5).Select(i => RandomImage(4, 3, 1, i)).ToArray();
        var grid = ImageGrid.Create(images, rows: 2, columns: 3, padding: 2, fill: 7);
        Assert.That(grid.Width, Is.EqualTo(3 * (4 + 2) + 2));
        Assert.That(grid.Height, Is.EqualTo(2 * (3 + 2) + 2));
        // Image 4 sits at row 1, column 1.
        int x0 = 2 + 1 * 6, y0 = 2 + 1 * 5;
        for (int y = 0; y < 3; y++)
            for (int x = 0; x < 4; x++)
                Assert.That(grid.Pixels[(y0 + y) * grid.Width + x0 + x], Is.EqualTo(images[4].Pixels[y * 4 + x]));
        Assert.That(grid.Pixels[0], Is.EqualTo(7), "padding");
        Assert.That(grid.Pixels[(y0 + 1) * grid.Width + 2 + 2 * 6 + 1], Is.EqualTo(7), "empty cell");
    }

    [Test]
    public void Grid_DefaultsToSquareLayout()
    {
        var images = Enumerable.Range(0, 10).Select(i => RandomImage(28, 28, 3, i)).ToArray();
        var grid = ImageGrid.Create(images, padding: 0);
        Assert.That((grid.Width, grid.Height, grid.Channels), Is.EqualTo((4 * 28, 3 * 28, 3)));
    }

    [Test]
    public void Grid_RejectsMixedSizesAndTooSmallLayouts()
    {
        Assert.Throws<ArgumentException>(() => ImageGrid.Create([RandomImage(4, 4, 1, 0), RandomImage(4, 5, 1, 0)]));
        Assert.Throws<ArgumentException>(() => ImageGrid.Create([RandomImage(4, 4, 1, 0), RandomImage(4, 4, 1, 0), RandomImage(4, 4, 1, 0)], rows: 1, columns: 2));
    }

    [Test]
    public void Write_IsAtomicAndLeavesNoTemporaryFiles()
    {
        string path = Path.Combine(_dir, "sub", "a.png");
        var first = RandomImage(6, 6, 1, 1);
        PngCodec.Write(path, first);
        var second = RandomImage(6, 6, 1, 2);
        PngCodec.Write(path, second);
        Assert.That(PngCodec.Read(path).Pixels, Is.EqualTo(second.Pixels));
        Assert.That(Directory.GetFiles(Path.Combine(_dir, "sub")).Select(Path.GetFileName), Is.EqualTo(new[] { "a.png" }));
    }

    [Test]
    public void Write_FailureLeavesNoTemporaryFileAndKeepsTheOldFile()
    {
        string path = Path.Combine(_dir, "b.png");
        var original = RandomImage(6, 6, 1, 1);
        PngCodec.Write(path, original);
        // A directory in the way of the rename makes the move fail after the temporary file was written.
        string blocked = Path.Combine(_dir, "blocked.png");
        Directory.CreateDirectory(blocked);
        Assert.Throws<IOException>(() => PngCodec.Write(blocked, original));
        Assert.That(Directory.GetFiles(_dir).Select(Path.GetFileName), Is.EqualTo(new[] { "b.png" }));
        Assert.That(PngCodec.Read(path).Pixels, Is.EqualTo(original.Pixels));
    }
}
