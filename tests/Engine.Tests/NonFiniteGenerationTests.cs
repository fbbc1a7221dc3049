using Engine.Generation;

namespace Engine.Tests;

/// <summary>
/// Samples gone NaN or infinite are caught on the device and fail the request naming the images and the
/// step, while the finite images of the batch are still handed out.
/// </summary>
public class NonFiniteGenerationTests
{
    [Test]
    public void NaNInOneImageFailsThatImageAtStepZeroAndHandsOutTheOthers([ValueSource(typeof(TestDevices), nameof(TestDevices.FastKinds))] string kind)
    {
        using var generator = new Generator(TestDevices.Get(kind));
        using var model = generator.LoadModel(Path.Combine(TestPaths.Models, "fmnist-unet"));
        var noise = new float[3 * 28 * 28];
        for (int i = 0; i < noise.Length; i++) noise[i] = (float)Math.Sin(i * 0.37);
        noise[28 * 28 + 100] = float.NaN; // image 1
        var request = new GenerationRequest { Sampler = "ddim", Steps = 3, Count = 3, BatchSize = 3, ClassLabels = [4], InitialNoise = noise };
        bool[]? finite = null;
        float[]? handed = null;
        var e = Assert.Throws<NonFiniteException>(() => generator.Generate(model, request, null, null, default, (in GeneratedBatch b) =>
        {
            finite = b.Finite.ToArray();
            handed = b.Samples.ToArray();
        }));
        Assert.That(e!.Images, Is.EqualTo(new[] { 1 }));
        Assert.That(e.FirstStep, Is.EqualTo(0));
        Assert.That(e.Message, Does.Contain("image 1").And.Contain("initial noise"));
        Assert.That(finite, Is.EqualTo(new[] { true, false, true }));

        // The finite images are those of a request without the bad one.
        var clean = (float[])noise.Clone();
        clean[28 * 28 + 100] = 0;
        var reference = generator.Generate(model, request with { InitialNoise = clean }).Samples;
        foreach (int image in new[] { 0, 2 })
            Assert.That(handed.AsSpan(image * 784, 784).ToArray(), Is.EqualTo(reference.AsSpan(image * 784, 784).ToArray()), $"image {image}");
    }

    [Test]
    public void OverflowingWeightsFailAtTheFirstStepAndStopEarly()
    {
        using var scratch = new TempFolder();
        using var generator = new Generator(TestDevices.Get("cpu"));
        using var model = generator.LoadModel(BrokenModels.Overflowing(scratch.Path));
        int steps = 0, batches = 0;
        var e = Assert.Throws<NonFiniteException>(() => generator.Generate(model, new GenerationRequest { Sampler = "euler", Steps = 40, Count = 2 },
            null, p => { steps = p.Step; return true; }, default, (in GeneratedBatch _) => batches++));
        Assert.That(e!.FirstStep, Is.EqualTo(1));
        Assert.That(e.Images, Is.EqualTo(new[] { 0, 1 }));
        Assert.That(e.Message, Does.Contain("at step 1 of 40").And.Contain("overflow"));
        Assert.That(steps, Is.LessThan(40), "a batch wholly NaN stops at the next read-back, not after every step");
        Assert.That(batches, Is.EqualTo(0), "nothing finite to hand out");
    }

    private sealed class TempFolder : IDisposable
    {
        public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"engine-nonfinite-{Guid.NewGuid():N}");

        public void Dispose()
        {
            if (Directory.Exists(Path)) Directory.Delete(Path, recursive: true);
        }
    }
}
