namespace Engine.Core.Tests;

/// <summary><see cref="Device.MarkNonFinite"/>: per-row first marks of NaN and infinity, on every device, against naive code.</summary>
public class NonFiniteMarkTests
{
    [Test]
    public void MarksEachRowAtItsFirstNonFiniteCall([ValueSource(typeof(TestDevices), nameof(TestDevices.Kinds))] string kind, [Values(5, 37, 1000)] int rowLength)
    {
        var device = TestDevices.Get(kind);
        var rng = new Random(rowLength);
        var x = Reference.Random(rng, 4 * rowLength);
        using var tx = device.Upload(x, [4, rowLength]);
        using var marker = device.Allocate(4);
        device.Fill(marker, 0f);

        device.MarkNonFinite(tx, marker, 1f);
        Assert.That(device.Download(marker), Is.EqualTo(new float[4]), "finite values mark nothing");

        // Row 1 gets a NaN at its last element, row 3 an infinity in the middle.
        x[2 * rowLength - 1] = float.NaN;
        x[3 * rowLength + rowLength / 2] = float.NegativeInfinity;
        device.CopyFromHost(System.Runtime.InteropServices.MemoryMarshal.AsBytes(x.AsSpan()), tx);
        device.MarkNonFinite(tx, marker, 2f);
        Assert.That(device.Download(marker), Is.EqualTo(new[] { 0f, 2f, 0f, 2f }));

        // Later marks leave the first ones; a row newly gone non-finite takes the later mark.
        x[0] = float.PositiveInfinity;
        device.CopyFromHost(System.Runtime.InteropServices.MemoryMarshal.AsBytes(x.AsSpan()), tx);
        device.MarkNonFinite(tx, marker, 7f);
        Assert.That(device.Download(marker), Is.EqualTo(new[] { 7f, 2f, 0f, 2f }));
    }

    [Test]
    public void RejectsRowsThatDoNotSplitAndAZeroMark()
    {
        var device = TestDevices.Get("cpu");
        using var x = device.Allocate(2, 5);
        using var three = device.Allocate(3);
        using var one = device.Allocate(1);
        Assert.That(() => device.MarkNonFinite(x, three, 1f), Throws.ArgumentException.With.Message.Contains("3 equal rows"));
        Assert.That(() => device.MarkNonFinite(x, one, 0f), Throws.ArgumentException.With.Message.Contains("non-zero"));
    }
}
