namespace Engine.Jobs;

/// <summary>The jobs read from a job file and the lines that could not be read.</summary>
/// <param name="Jobs">Valid jobs, in file order.</param>
/// <param name="Errors">One entry per bad line, in file order.</param>
public sealed record JobFileResult(IReadOnlyList<GenerationJob> Jobs, IReadOnlyList<JobError> Errors);
