namespace Engine.Core.Tests;

public class LinearFixtureTests
{
    [TestCaseSource(typeof(TestDevices), nameof(TestDevices.Kinds))]
    public void LinearMatchesFixture(string kind)
    {
        var device = TestDevices.Get(kind);
        using var file = Fixtures.Tensors("ops/linear.safetensors");
        var names = file.Tensors.Keys.ToList();
        using var x = file.Load(device, "x");
        using var w = file.Load(device, "w.weight");
        using var b = file.Load(device, "w.bias");
        var expected = file.ReadFloats("y");
        using var y = device.Allocate(file.Info("y").Shape);
        device.Linear(x, w, b, y);
        Assert.That(Fixtures.RelativeError(y.ToArray(), expected), Is.LessThanOrEqualTo(1e-4), string.Join(",", names));
    }
}
