namespace Engine.Tools.Quality;

/// <summary>Host results of classifying N images.</summary>
/// <param name="Count">Number of images N.</param>
/// <param name="Logits">[N, ClassCount] row-major.</param>
/// <param name="Features">[N, FeatureSize] row-major: the feature layer's output (for the Frechet distance).</param>
/// <param name="ClassCount">Number of classes.</param>
/// <param name="FeatureSize">Length of one feature vector.</param>
public sealed record ClassifierOutput(int Count, float[] Logits, float[] Features, int ClassCount, int FeatureSize)
{
    /// <summary>The arg-max class of each image (the lowest index on ties).</summary>
    public int[] Predicted()
    {
        var result = new int[Count];
        for (int i = 0; i < Count; i++)
        {
            int best = 0;
            for (int j = 1; j < ClassCount; j++)
                if (Logits[i * ClassCount + j] > Logits[i * ClassCount + best]) best = j;
            result[i] = best;
        }
        return result;
    }

    /// <summary>Fraction of images whose predicted class equals <paramref name="labels"/>[i].</summary>
    public double Accuracy(ReadOnlySpan<int> labels)
    {
        if (labels.Length != Count) throw new ArgumentException($"{labels.Length} labels for {Count} images.", nameof(labels));
        if (Count == 0) throw new ArgumentException("Accuracy of zero images is undefined.", nameof(labels));
        var predicted = Predicted();
        int correct = 0;
        for (int i = 0; i < Count; i++) if (predicted[i] == labels[i]) correct++;
        return (double)correct / Count;
    }
}
