using Engine.Core;
using Engine.Gpu;
using Engine.Sampling.Rng;

namespace Engine.Sampling.Tests;

/// <summary><see cref="TorchNoiseStream"/>: batches of a request read their rows of one generator's successive whole-request draws.</summary>
[TestFixture]
public class TorchNoiseStreamTests
{
    private const int Images = 3, Length = 40;

    private static float[][] Expected(int draws)
    {
        var g = new TorchCpuGenerator(77);
        var result = new float[draws][];
        for (int k = 0; k < draws; k++) g.Randn(result[k] = new float[Images * Length]);
        return result;
    }

    [Test]
    public void BatchesReadTheirRowsOfEachDraw()
    {
        using var device = DeviceFactory.Create("cpu");
        var stream = new TorchNoiseStream(77, Images, Length);
        var want = Expected(3);
        // Batch of images 0-1 runs all its steps before the batch of image 2, as the generator does.
        foreach (var (first, rows) in new[] { (0, 2), (2, 1) })
        {
            var noise = new TorchNoise(stream, first);
            using var t = device.Allocate(rows, Length);
            noise.FillInitial(t);
            Assert.That(device.Download(t), Is.EqualTo(want[0].AsSpan(first * Length, rows * Length).ToArray()), $"x_T rows {first}+{rows}");
            for (int k = 1; k <= 2; k++)
            {
                noise.Fill(t, 100 + k); // the index a sampler passes does not pick the draw
                Assert.That(device.Download(t), Is.EqualTo(want[k].AsSpan(first * Length, rows * Length).ToArray()), $"draw {k} rows {first}+{rows}");
            }
        }
    }

    [Test]
    public void WithoutInitialDrawTheSamplerStartsAtTheFirstDraw()
    {
        using var device = DeviceFactory.Create("cpu");
        var noise = new TorchNoise(new TorchNoiseStream(77, Images, Length), 0, drawsInitial: false);
        using var t = device.Allocate(Images, Length);
        noise.Fill(t, 0);
        Assert.That(device.Download(t), Is.EqualTo(Expected(1)[0]));
    }

    [Test]
    public void RowsOutsideTheRequestAreRejected()
    {
        using var device = DeviceFactory.Create("cpu");
        using var t = device.Allocate(2, Length);
        Assert.That(() => new TorchNoiseStream(77, Images, Length).Read(0, 2, t), Throws.ArgumentException);
    }
}
