namespace Engine.Generation;

/// <summary>Reported after every sampler step of a batch.</summary>
/// <param name="Step">1-based step just finished within the batch.</param>
/// <param name="TotalSteps">Steps per batch (model calls of the scheduler).</param>
/// <param name="ImageIndex">Index of the first image of the batch.</param>
/// <param name="ImageCount">Images in the whole request.</param>
public readonly record struct GenerationProgress(int Step, int TotalSteps, int ImageIndex, int ImageCount);
