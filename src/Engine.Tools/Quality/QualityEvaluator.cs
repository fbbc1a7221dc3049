using Engine.Core;
using Engine.Imaging;

namespace Engine.Tools.Quality;

/// <summary>
/// Scores generated samples with a classifier folder (such as <c>models/fmnist-classifier</c>):
/// classifier accuracy against the intended labels and the Frechet distance between the samples'
/// features and the folder's reference feature statistics.
/// </summary>
public sealed class QualityEvaluator : IDisposable
{
    /// <summary>File of reference feature statistics inside a classifier folder.</summary>
    public const string FeatureStatsFileName = "test_feature_stats.safetensors";

    private QualityEvaluator(ImageClassifier classifier, GaussianStats reference)
    {
        Classifier = classifier; Reference = reference;
    }

    /// <summary>The classifier.</summary>
    public ImageClassifier Classifier { get; }

    /// <summary>Statistics of the real data the samples are compared with.</summary>
    public GaussianStats Reference { get; }

    /// <summary>Loads the classifier and its reference statistics from <paramref name="folder"/>.</summary>
    public static QualityEvaluator Load(Device device, string folder)
    {
        var classifier = ImageClassifier.Load(device, folder);
        try
        {
            var reference = GaussianStats.Load(Path.Combine(folder, FeatureStatsFileName));
            if (reference.Dimension != classifier.FeatureSize)
                throw new InvalidDataException($"{Path.Combine(folder, FeatureStatsFileName)}: statistics of {reference.Dimension} features; the classifier gives {classifier.FeatureSize}.");
            return new QualityEvaluator(classifier, reference);
        }
        catch
        {
            classifier.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Scores model-space samples [N, C, H, W] (host floats). Samples are first quantised to 8-bit
    /// pixels and scaled back (p / 127.5 - 1), exactly what a saved PNG holds and the classifier's
    /// input scaling expects. <paramref name="labels"/> (length N) gives the intended classes; empty
    /// skips accuracy. N must be at least 2 for the covariance.
    /// </summary>
    public QualityReport Evaluate(ReadOnlySpan<float> samples, ReadOnlySpan<int> shape, ReadOnlySpan<int> labels = default)
    {
        var images = SamplePixels.ToImages(samples, shape);
        var input = SamplePixels.ToSamples(images);
        var output = Classifier.Classify(input, images.Length);
        double? accuracy = null;
        if (!labels.IsEmpty)
        {
            if (labels.Length != images.Length) throw new ArgumentException($"{labels.Length} labels for {images.Length} samples.", nameof(labels));
            foreach (int l in labels)
                if (l < 0 || l >= Classifier.ClassCount) throw new ArgumentException($"Label {l} is outside the classifier's classes 0..{Classifier.ClassCount - 1}.", nameof(labels));
            accuracy = output.Accuracy(labels);
        }
        var stats = GaussianStats.FromFeatures(output.Features, output.Count, output.FeatureSize);
        return new QualityReport(output.Count, accuracy, FrechetDistance.Compute(stats, Reference), output.Predicted());
    }

    /// <summary>Releases the classifier's device weights.</summary>
    public void Dispose() => Classifier.Dispose();
}
