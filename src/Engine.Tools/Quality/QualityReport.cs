namespace Engine.Tools.Quality;

/// <summary>Quality of a set of generated samples.</summary>
/// <param name="Count">Number of samples scored.</param>
/// <param name="Accuracy">Fraction classified as their intended label, or null when no labels were given.</param>
/// <param name="FrechetDistance">Frechet distance of the samples' features to the reference statistics.</param>
/// <param name="Predicted">The classifier's prediction for each sample.</param>
public sealed record QualityReport(int Count, double? Accuracy, double FrechetDistance, int[] Predicted);
