using System.Text.Json;
using System.Text.Json.Nodes;
using Engine.Core.Safetensors;
using Engine.Tools.Quality;

namespace Engine.Tests;

public class ClassifierTests
{
    private static string ClassifierFolder => Path.Combine(TestPaths.Models, "fmnist-classifier");

    private static IEnumerable<string> Kinds => TestDevices.FastKinds;

    private static double RelativeError(ReadOnlySpan<float> actual, ReadOnlySpan<double> expected)
    {
        Assert.That(actual.Length, Is.EqualTo(expected.Length), "element count");
        double maxErr = 0, maxRef = 0;
        for (int i = 0; i < actual.Length; i++)
        {
            double err = Math.Abs(actual[i] - expected[i]);
            if (double.IsNaN(err)) return double.PositiveInfinity;
            maxErr = Math.Max(maxErr, err);
            maxRef = Math.Max(maxRef, Math.Abs(expected[i]));
        }
        return maxRef == 0 ? maxErr : maxErr / maxRef;
    }

    [TestCaseSource(nameof(Kinds))]
    public void Forward_MatchesNaiveHostImplementation(string kind)
    {
        const int n = 3;
        var rng = new Random(1234);
        var input = new float[n * 28 * 28];
        for (int i = 0; i < input.Length; i++) input[i] = (float)(rng.NextDouble() * 2 - 1);

        using var classifier = ImageClassifier.Load(TestDevices.Get(kind), ClassifierFolder);
        var output = classifier.Classify(input, n, batchSize: 2); // two batches: 2 + 1
        using var weights = SafetensorsFile.Open(Path.Combine(ClassifierFolder, "model.safetensors"));
        var (logits, features) = NaiveClassifier.Forward(weights, input, n);

        Assert.That((output.ClassCount, output.FeatureSize), Is.EqualTo((10, 128)));
        Assert.That(RelativeError(output.Logits, logits), Is.LessThanOrEqualTo(1e-4), "logits");
        Assert.That(RelativeError(output.Features, features), Is.LessThanOrEqualTo(1e-4), "features");
        var predicted = output.Predicted();
        for (int b = 0; b < n; b++)
        {
            int best = 0;
            for (int j = 1; j < 10; j++) if (logits[b * 10 + j] > logits[b * 10 + best]) best = j;
            Assert.That(predicted[b], Is.EqualTo(best), $"prediction of image {b}");
        }
    }

    [TestCaseSource(nameof(Kinds))]
    public void DeviceMaxPool_MatchesNaive(string kind)
    {
        var device = TestDevices.Get(kind);
        foreach (var (n, c, h, w, k) in new[] { (2, 3, 6, 4, 2), (1, 5, 9, 6, 3), (3, 2, 4, 4, 1) })
        {
            var rng = new Random(n * 100 + k);
            var x = new float[n * c * h * w];
            for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() * 4 - 2);
            using var input = device.Upload(x, n, c, h, w);
            using var output = device.Allocate(n, c, h / k, w / k);
            DeviceMaxPool.Apply(device, input, output, k);
            var expected = NaiveClassifier.MaxPool(x.Select(v => (double)v).ToArray(), n, c, h, w, k);
            Assert.That(RelativeError(output.ToArray(), expected), Is.LessThanOrEqualTo(1e-6), $"[{n}, {c}, {h}, {w}] k={k}");
        }
    }

    [Test]
    public void Architecture_IsReadFromJson()
    {
        var a = ClassifierArchitecture.Load(Path.Combine(ClassifierFolder, ImageClassifier.ArchitectureFileName));
        Assert.That(a.InputShape, Is.EqualTo(new[] { 1, 28, 28 }));
        Assert.That(a.Classes, Has.Count.EqualTo(10));
        Assert.That(a.Classes[9], Is.EqualTo("Ankle boot"));
        Assert.That(a.Layers.Count(l => l.IsFeatures), Is.EqualTo(1));
    }

    /// <summary>Copies the classifier to a temp folder with an edited architecture.json.</summary>
    private static string EditedCopy(Action<JsonNode> edit)
    {
        string dir = Path.Combine(Path.GetTempPath(), "engine-classifier-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        File.Copy(Path.Combine(ClassifierFolder, "model.safetensors"), Path.Combine(dir, "model.safetensors"));
        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(ClassifierFolder, ImageClassifier.ArchitectureFileName)))!;
        edit(json);
        File.WriteAllText(Path.Combine(dir, ImageClassifier.ArchitectureFileName), json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        return dir;
    }

    [Test]
    public void Load_RejectsAWrongDeclaredShape()
    {
        string dir = EditedCopy(j => j["layers"]![2]!["out"] = new JsonArray(32, 13, 13));
        try
        {
            Assert.That(() => ImageClassifier.Load(TestDevices.Get("cpu"), dir),
                Throws.TypeOf<InvalidDataException>().With.Message.Contains("layers[2]").And.Message.Contains("[32, 14, 14]"));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Test]
    public void Load_RejectsAWeightShapeThatDiffersFromTheFile()
    {
        string dir = EditedCopy(j =>
        {
            j["layers"]![7]!["weight"] = new JsonArray(127, 3136);
            j["layers"]![7]!["bias"] = new JsonArray(127);
            j["layers"]![7]!["out"] = new JsonArray(127);
            j["layers"]![10]!["weight"] = new JsonArray(10, 127);
        });
        try
        {
            Assert.That(() => ImageClassifier.Load(TestDevices.Get("cpu"), dir),
                Throws.TypeOf<InvalidDataException>().With.Message.Contains("fc1.weight"));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Test]
    public void Load_RejectsAnUnknownOp()
    {
        string dir = EditedCopy(j => j["layers"]![1]!["op"] = "gelu");
        try
        {
            Assert.That(() => ImageClassifier.Load(TestDevices.Get("cpu"), dir),
                Throws.TypeOf<InvalidDataException>().With.Message.Contains("'gelu'"));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Test]
    public void Classify_RejectsAWrongSampleCount()
    {
        using var classifier = ImageClassifier.Load(TestDevices.Get("cpu"), ClassifierFolder);
        Assert.Throws<ArgumentException>(() => classifier.Classify(new float[28 * 28 + 1], 1));
    }

    [Test]
    public void ReferenceUnetSamples_AreClassifiedAsTheirLabels()
    {
        string path = TestPaths.RequireShared(Path.Combine("models", "fmnist-unet", "reference", "reference.safetensors"));
        using var file = SafetensorsFile.Open(path);
        var labels = file.ReadFloats("labels").Select(v => (int)v).ToArray();
        using var evaluator = QualityEvaluator.Load(TestDevices.Get("cpu"), ClassifierFolder);
        foreach (var name in new[] { "ddim50_cfg3", "dpmpp2m20_cfg3" })
        {
            var shape = file.Info(name).Shape;
            var report = evaluator.Evaluate(file.ReadFloats(name), shape, labels);
            TestContext.Out.WriteLine($"{name}: accuracy {report.Accuracy:F3}, FD {report.FrechetDistance:F1} (8 samples), predicted [{string.Join(", ", report.Predicted)}]");
            Assert.That(report.Accuracy, Is.GreaterThanOrEqualTo(0.75), name);
            Assert.That(report.FrechetDistance, Is.GreaterThan(0).And.LessThan(double.PositiveInfinity), name);
        }
    }
}
