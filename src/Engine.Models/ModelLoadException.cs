namespace Engine.Models;

/// <summary>
/// A model folder could not be loaded: an unknown class, an unsupported or malformed configuration
/// value, or weights that do not match the network. The message names the file and what is wrong;
/// <see cref="Failure"/> says which kind of problem it is, so front ends can report a status for it.
/// </summary>
public sealed class ModelLoadException : Exception
{
    /// <summary>Creates the exception with a complete, user-facing message (a malformed file unless <paramref name="failure"/> says otherwise).</summary>
    public ModelLoadException(string message, ModelLoadFailure failure = ModelLoadFailure.InvalidData) : base(message) => Failure = failure;

    /// <summary>Creates the exception wrapping the error that caused it (a malformed file).</summary>
    public ModelLoadException(string message, Exception inner) : base(message, inner) { }

    /// <summary>What kind of problem stopped the load.</summary>
    public ModelLoadFailure Failure { get; }
}

/// <summary>The kinds of <see cref="ModelLoadException"/>, matching the C ABI's status codes.</summary>
public enum ModelLoadFailure
{
    /// <summary>A file exists but its contents are malformed or do not match the network (bad JSON, truncated or mismatched weights, non-finite weights).</summary>
    InvalidData,

    /// <summary>The folder or a file it must hold (config.json, the weights, a tokenizer file) does not exist.</summary>
    NotFound,

    /// <summary>The folder holds a model class (or architecture) this engine does not know, or another kind of model than the one asked for.</summary>
    UnsupportedClass,
}
