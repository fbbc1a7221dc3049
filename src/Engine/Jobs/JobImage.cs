namespace Engine.Jobs;

/// <summary>One image a job produces: its position, seed, class label and file name.</summary>
/// <param name="Index">Position within the job (0-based).</param>
/// <param name="Seed">Noise seed.</param>
/// <param name="Class">Class label, or null for an unconditional image.</param>
/// <param name="FileName">File name inside the job's output folder.</param>
public sealed record JobImage(int Index, ulong Seed, int? Class, string FileName)
{
    /// <summary>
    /// The file name of an image: <c>seed000042.png</c>, or <c>seed000042_class3.png</c> with a class.
    /// It depends only on seed and class, so a re-run finds what an interrupted run wrote.
    /// </summary>
    public static string NameFor(ulong seed, int? label) =>
        label is { } c ? $"seed{seed:D6}_class{c}.png" : $"seed{seed:D6}.png";
}
