using System.Text.Json;
using Engine.Generation;

namespace Engine.Jobs;

/// <summary>
/// One ControlNet of a job line (field <c>controlnet</c>: an object or an array of objects with <c>folder</c>,
/// <c>image</c> (a PNG or safetensors file), and optional <c>scale</c> (default 1), <c>start</c> (0) and <c>end</c> (1));
/// paths as written on the line, relative to the job file.
/// </summary>
/// <param name="Folder">The ControlNetModel folder.</param>
/// <param name="Image">Its control image file.</param>
public sealed record JobControlNet(string Folder, string Image)
{
    /// <summary>Conditioning scale.</summary>
    public double Scale { get; init; } = 1;

    /// <summary>control_guidance_start.</summary>
    public double Start { get; init; }

    /// <summary>control_guidance_end.</summary>
    public double End { get; init; } = 1;

    /// <summary>Parses the field's value; null with <paramref name="problem"/> set when it is malformed.</summary>
    public static List<JobControlNet>? Parse(JsonElement value, out string? problem)
    {
        problem = null;
        var items = value.ValueKind == JsonValueKind.Array ? value.EnumerateArray().ToList() : [value];
        var result = new List<JobControlNet>();
        foreach (var item in items)
        {
            if (item.ValueKind != JsonValueKind.Object) { problem = $"field 'controlnet' must hold objects with 'folder' and 'image'; got {item.GetRawText()}"; return null; }
            string? folder = null, image = null;
            double scale = 1, start = 0, end = 1;
            foreach (var p in item.EnumerateObject())
            {
                switch (p.Name)
                {
                    case "folder" or "image":
                        if (p.Value.ValueKind != JsonValueKind.String || p.Value.GetString()!.Trim().Length == 0) { problem = $"field 'controlnet': '{p.Name}' must be a non-empty string"; return null; }
                        if (p.Name == "folder") folder = p.Value.GetString(); else image = p.Value.GetString();
                        break;
                    case "scale" or "start" or "end":
                        if (p.Value.ValueKind != JsonValueKind.Number || !p.Value.TryGetDouble(out double v) || !double.IsFinite(v)
                            || (p.Name != "scale" && !(v >= 0 && v <= 1)))
                        {
                            problem = $"field 'controlnet': '{p.Name}' must be a {(p.Name == "scale" ? "finite number" : "number in [0, 1]")}; got {p.Value.GetRawText()}";
                            return null;
                        }
                        if (p.Name == "scale") scale = v; else if (p.Name == "start") start = v; else end = v;
                        break;
                    default:
                        problem = $"field 'controlnet': unknown key '{p.Name}' (known: folder, image, scale, start, end)";
                        return null;
                }
            }
            if (folder is null || image is null) { problem = $"field 'controlnet': every entry needs 'folder' and 'image'"; return null; }
            if (start >= end) { problem = $"field 'controlnet': start {start} must be below end {end}"; return null; }
            result.Add(new JobControlNet(folder, image) { Scale = scale, Start = start, End = end });
        }
        if (result.Count == 0) problem = "field 'controlnet' is an empty array";
        return result.Count == 0 ? null : result;
    }

    /// <summary>The request's ControlNets, with <paramref name="folder"/> and <paramref name="file"/> resolving the line's paths and the images read.</summary>
    public static IReadOnlyList<ControlNetSpec> Resolve(IReadOnlyList<JobControlNet> nets, Func<string, string> folder, Func<string, string> file) =>
        [.. nets.Select(n => new ControlNetSpec(Path.GetFullPath(folder(n.Folder)), ControlImage.Load(file(n.Image))) { Scale = n.Scale, Start = n.Start, End = n.End })];
}
