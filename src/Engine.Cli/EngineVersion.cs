using System.Reflection;

namespace Engine.Cli;

/// <summary>The engine's version as recorded in image sidecars and printed by <c>engine info</c>.</summary>
public static class EngineVersion
{
    /// <summary>Informational version of the engine library (version and, when built from git, the commit).</summary>
    public static string Text { get; } =
        typeof(Engine.Generation.Generator).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
        ?? typeof(Engine.Generation.Generator).Assembly.GetName().Version?.ToString()
        ?? "unknown";
}
