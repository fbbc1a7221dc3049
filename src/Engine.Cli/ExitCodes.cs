namespace Engine.Cli;

/// <summary>Process exit codes of the <c>engine</c> tool.</summary>
public static class ExitCodes
{
    /// <summary>Success.</summary>
    public const int Success = 0;

    /// <summary>The command ran and failed (bad model, bad input data, I/O error, a failed job).</summary>
    public const int Failure = 1;

    /// <summary>The command line was wrong.</summary>
    public const int Usage = 2;

    /// <summary>The run was cancelled (Ctrl+C): 128 + SIGINT, as shells report it.</summary>
    public const int Cancelled = 130;
}
