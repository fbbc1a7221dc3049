namespace Engine.Jobs;

/// <summary>A job line that could not be read: where it is and why.</summary>
/// <param name="Source">The job file (or other source name).</param>
/// <param name="Line">1-based line number.</param>
/// <param name="Message">What is wrong, naming the field where there is one.</param>
public sealed record JobError(string Source, int Line, string Message)
{
    /// <inheritdoc />
    public override string ToString() => $"{Source}:{Line}: {Message}";
}
