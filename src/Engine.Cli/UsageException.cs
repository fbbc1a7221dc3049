namespace Engine.Cli;

/// <summary>The command line is wrong (unknown command or option, missing value); exit code 2.</summary>
public sealed class UsageException(string message) : Exception(message);
