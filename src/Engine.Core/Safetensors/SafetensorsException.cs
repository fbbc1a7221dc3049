namespace Engine.Core.Safetensors;

/// <summary>A safetensors file broke a rule of the format; the message names the file, the tensor (if any) and the rule.</summary>
public sealed class SafetensorsException : Exception
{
    /// <summary>Creates the exception.</summary>
    public SafetensorsException(string path, string? tensor, string rule)
        : base(tensor is null ? $"{path}: {rule}" : $"{path}: tensor '{tensor}': {rule}")
    {
        FilePath = path;
        TensorName = tensor;
        Rule = rule;
    }

    /// <summary>The file that was read.</summary>
    public string FilePath { get; }

    /// <summary>The offending tensor, or null for a file-level problem.</summary>
    public string? TensorName { get; }

    /// <summary>The rule that was broken.</summary>
    public string Rule { get; }
}
