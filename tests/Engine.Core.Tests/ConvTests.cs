namespace Engine.Core.Tests;

/// <summary>Conv2d against naive loops on odd shapes for kernel 1/3/5, stride 1/2, padding 0/1/2.</summary>
public class ConvTests
{
    [Test]
    public void Conv2dMatchesNaive([ValueSource(typeof(TestDevices), nameof(TestDevices.Kinds))] string kind,
        [Values(1, 3, 5)] int kernel, [Values(1, 2)] int stride, [Values(0, 1, 2)] int padding)
    {
        var device = TestDevices.Get(kind);
        var rng = new Random(kernel * 100 + stride * 10 + padding);
        int batch = 2, cin = 5, h = 9, w = 11, cout = 7;
        var x = Reference.Random(rng, batch * cin * h * w);
        var wt = Reference.Random(rng, cout * cin * kernel * kernel);
        var bias = Reference.Random(rng, cout);
        int ho = (h + 2 * padding - kernel) / stride + 1, wo = (w + 2 * padding - kernel) / stride + 1;
        using var tx = device.Upload(x, batch, cin, h, w);
        using var tw = device.Upload(wt, cout, cin, kernel, kernel);
        using var tb = device.Upload(bias, cout);
        using var y = device.Allocate(batch, cout, ho, wo);
        device.Conv2d(tx, tw, tb, y, stride, padding);
        var expected = Reference.Conv2d(x, wt, bias, batch, cin, h, w, cout, kernel, kernel, stride, padding);
        Assert.That(Reference.Compare(y.ToArray(), expected), Is.LessThanOrEqualTo(1e-4));
    }

    [Test]
    public void Conv2dWithoutBiasWideChannels([ValueSource(typeof(TestDevices), nameof(TestDevices.Kinds))] string kind, [Values(1, 3)] int kernel)
    {
        var device = TestDevices.Get(kind);
        var rng = new Random(kernel);
        int batch = 1, cin = 37, h = 6, w = 5, cout = 41, pad = kernel / 2;
        var x = Reference.Random(rng, batch * cin * h * w);
        var wt = Reference.Random(rng, cout * cin * kernel * kernel);
        using var tx = device.Upload(x, batch, cin, h, w);
        using var tw = device.Upload(wt, cout, cin, kernel, kernel);
        using var y = device.Allocate(batch, cout, h, w);
        device.Conv2d(tx, tw, null, y, 1, pad);
        var expected = Reference.Conv2d(x, wt, null, batch, cin, h, w, cout, kernel, kernel, 1, pad);
        Assert.That(Reference.Compare(y.ToArray(), expected), Is.LessThanOrEqualTo(1e-4));
    }
}
