using Engine.Imaging;

namespace Engine.Tests;

/// <summary>
/// The init-image resizes: torch's nearest (F.interpolate default) and PIL's 8-bit Lanczos. The Lanczos rows were
/// computed from PIL's algorithm (precompute_coeffs, 22-bit coefficients, clip8) written out separately.
/// </summary>
public class ImageResizeTests
{
    [Test]
    public void NearestTakesFloorOfTheScaledIndex()
    {
        float[] row = [0, 1, 2, 3];
        Assert.That(ImageResize.Nearest(row, 1, 1, 4, 1, 3), Is.EqualTo(new float[] { 0, 1, 2 }));
        Assert.That(ImageResize.Nearest([5, 6, 7], 1, 1, 3, 1, 5), Is.EqualTo(new float[] { 5, 5, 6, 6, 7 }));
        // Rows and columns both, per plane.
        float[] planes = [1, 2, 3, 4, 10, 20, 30, 40];
        Assert.That(ImageResize.Nearest(planes, 2, 2, 2, 1, 1), Is.EqualTo(new float[] { 1, 10 }));
    }

    [Test]
    public void LanczosMatchesPilsFixedPointRows()
    {
        Assert.That(ImageResize.Lanczos([0, 255], 1, 1, 2, 1, 4), Is.EqualTo(new byte[] { 0, 59, 196, 255 }));
        Assert.That(ImageResize.Lanczos([10, 200, 30, 90, 250, 0, 128], 1, 1, 7, 1, 3), Is.EqualTo(new byte[] { 84, 123, 104 }));
        Assert.That(ImageResize.Lanczos([10, 200, 30], 1, 1, 3, 1, 5), Is.EqualTo(new byte[] { 0, 90, 200, 105, 5 }));
        // The vertical pass is the same filter on columns.
        Assert.That(ImageResize.Lanczos([10, 200, 30], 1, 3, 1, 5, 1), Is.EqualTo(new byte[] { 0, 90, 200, 105, 5 }));
        var flat = Enumerable.Repeat((byte)77, 3 * 9 * 7).ToArray();
        Assert.That(ImageResize.Lanczos(flat, 3, 9, 7, 4, 5), Is.All.EqualTo(77), "a flat image stays flat");
    }

    [Test]
    public void EmptyOrMismatchedSizesAreRefused()
    {
        Assert.That(() => ImageResize.Nearest([1, 2, 3], 1, 2, 2, 1, 1), Throws.ArgumentException);
        Assert.That(() => ImageResize.Lanczos([1, 2, 3, 4], 1, 2, 2, 0, 1), Throws.ArgumentException);
    }
}
