namespace Engine.Models;

/// <summary>
/// A model folder could not be loaded: an unknown class, an unsupported or malformed configuration
/// value, or weights that do not match the network. The message names the file and what is wrong.
/// </summary>
public sealed class ModelLoadException : Exception
{
    /// <summary>Creates the exception with a complete, user-facing message.</summary>
    public ModelLoadException(string message) : base(message) { }

    /// <summary>Creates the exception wrapping the error that caused it.</summary>
    public ModelLoadException(string message, Exception inner) : base(message, inner) { }
}
