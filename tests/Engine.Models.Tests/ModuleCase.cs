using System.Text.Json;
using Engine.Core;
using Engine.Core.Safetensors;
using Engine.Models.Binding;

namespace Engine.Models.Tests;

/// <summary>One op fixture opened on one device: its JSON, its tensors, a parameter scope to build the module in, and comparisons.</summary>
public sealed class ModuleCase : IDisposable
{
    private readonly SafetensorsFile _file;
    private readonly List<Tensor> _owned = [];

    public ModuleCase(string name, Device device)
    {
        Name = name;
        Device = device;
        Json = Fixtures.Json(Path.Combine("ops", name + ".json"));
        Path_ = Path.Combine(Fixtures.RequireRoot(), "ops", Json.GetProperty("file").GetString()!);
        _file = SafetensorsFile.Open(Path_);
    }

    public string Name { get; }
    public Device Device { get; }
    public JsonElement Json { get; }
    private string Path_ { get; }
    public ParameterScope Scope { get; } = new();

    public JsonElement Params => Json.GetProperty("params");
    public string Call => Json.GetProperty("call").GetString()!;

    /// <summary>Binds every declared parameter to the fixture's <c>w.*</c> tensors (strictly: all consumed).</summary>
    public void Bind()
    {
        using var source = SafetensorsWeightSource.OpenFile(Path_);
        WeightBinder.Bind(Device, Scope.All, new PrefixedWeightSource(source, "w."));
    }

    public bool Has(string tensor) => _file.Contains(tensor);

    public Tensor Input(string tensor)
    {
        var t = _file.Load(Device, tensor);
        _owned.Add(t);
        return t;
    }

    public float[] Expected(string tensor) => _file.ReadFloats(tensor);

    /// <summary>Asserts max|err|/max|ref| within the tolerance and that the shape matches; disposes <paramref name="actual"/>.</summary>
    public void Check(string tensor, Tensor actual, double tolerance)
    {
        using (actual)
        {
            Assert.That(actual.ShapeArray(), Is.EqualTo(_file.Info(tensor).Shape), $"{Name}/{tensor} shape");
            double err = Fixtures.RelativeError(actual.ToArray(), Expected(tensor));
            TestContext.Out.WriteLine($"{Name}/{tensor} on {Device.Kind}: max|err|/max|ref| = {err:E2}");
            Assert.That(err, Is.LessThanOrEqualTo(tolerance), $"{Name}/{tensor} on {Device.Kind}");
        }
    }

    public void Dispose()
    {
        WeightBinder.Release(Scope.All);
        foreach (var c in Scope.Caches) c.Dispose();
        foreach (var t in _owned) t.Dispose();
        _file.Dispose();
    }
}
