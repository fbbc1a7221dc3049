namespace Engine.Models.Binding;

/// <summary>
/// A network declared more parameters than its scope allows (see <see cref="ParameterScope(int)"/>);
/// thrown while building, before the rest of an oversized configuration is declared.
/// </summary>
public sealed class ParameterLimitException(int limit, string key)
    : Exception($"the configuration declares more than {limit} parameters (stopped at '{key}')")
{
    /// <summary>The most parameters the scope allowed.</summary>
    public int Limit { get; } = limit;
}
