using System.Text.Json;

namespace Engine.Generation;

/// <summary>
/// A request setting that the image sidecar and the job line both carry under one JSON name with one meaning:
/// its name, the type of its value, the <see cref="GenerationRequest"/> property it maps to, and how a job line's
/// value is checked. <see cref="RequestFields.All"/> lists them, so such a setting is added in one place.
/// </summary>
public abstract class RequestField
{
    private protected RequestField(string name, string sidecarAfter)
    {
        Name = name;
        SidecarAfter = sidecarAfter;
    }

    /// <summary>The JSON name (<c>original_size</c>, ...), the same in a sidecar and a job line.</summary>
    public string Name { get; }

    /// <summary>The sidecar field this one is written after, which keeps the field order of sidecars already written.</summary>
    public string SidecarAfter { get; }

    /// <summary>The type of the value as it is serialized (a nullable type; null = not set, left out of a sidecar).</summary>
    public abstract Type ValueType { get; }

    /// <summary>The value of this field in <paramref name="request"/>.</summary>
    public abstract object? Get(GenerationRequest request);

    /// <summary><paramref name="request"/> with this field set to <paramref name="value"/> (of <see cref="ValueType"/>).</summary>
    public abstract GenerationRequest Set(GenerationRequest request, object? value);

    /// <summary>
    /// <paramref name="request"/> with this field read from a job line's <paramref name="value"/>; throws
    /// <see cref="FormatException"/> naming the field when the value is not allowed.
    /// </summary>
    public abstract GenerationRequest Read(GenerationRequest request, JsonElement value);
}

/// <summary>A <see cref="RequestField"/> whose value has type <typeparamref name="T"/>.</summary>
internal sealed class RequestField<T>(
    string name, string sidecarAfter, Func<GenerationRequest, T> get, Func<GenerationRequest, T, GenerationRequest> set, Func<string, JsonElement, T> parse)
    : RequestField(name, sidecarAfter)
{
    public override Type ValueType => typeof(T);

    public override object? Get(GenerationRequest request) => get(request);

    public override GenerationRequest Set(GenerationRequest request, object? value) => set(request, (T)value!);

    public override GenerationRequest Read(GenerationRequest request, JsonElement value) => set(request, parse(Name, value));
}

/// <summary>The request settings that the sidecar and the job line map alike (see <see cref="RequestField"/>).</summary>
public static class RequestFields
{
    /// <summary>The fields, in the order a sidecar writes them after their <see cref="RequestField.SidecarAfter"/> fields.</summary>
    public static IReadOnlyList<RequestField> All { get; } =
    [
        new RequestField<double?>("eta", "cfg", r => r.Eta, (r, v) => r with { Eta = v }, NonNegativeNumber),
        new RequestField<int[]?>("timesteps", "eta", r => r.Timesteps, (r, v) => r with { Timesteps = v }, Timesteps),
        new RequestField<int?>("clip_skip", "request_negative_prompts", r => r.ClipSkip, (r, v) => r with { ClipSkip = v }, (n, v) => NonNegativeInteger(n, v)),
        new RequestField<int[]?>("original_size", "clip_skip", r => r.OriginalSize, (r, v) => r with { OriginalSize = v }, (n, v) => Pair(n, v, 1)),
        new RequestField<int[]?>("crop_top_left", "original_size", r => r.CropTopLeft, (r, v) => r with { CropTopLeft = v }, (n, v) => Pair(n, v, 0)),
        new RequestField<int[]?>("target_size", "crop_top_left", r => r.TargetSize, (r, v) => r with { TargetSize = v }, (n, v) => Pair(n, v, 1)),
        new RequestField<int[]?>("negative_original_size", "target_size", r => r.NegativeOriginalSize, (r, v) => r with { NegativeOriginalSize = v }, (n, v) => Pair(n, v, 1)),
        new RequestField<int[]?>("negative_crop_top_left", "negative_original_size", r => r.NegativeCropTopLeft, (r, v) => r with { NegativeCropTopLeft = v }, (n, v) => Pair(n, v, 0)),
        new RequestField<int[]?>("negative_target_size", "negative_crop_top_left", r => r.NegativeTargetSize, (r, v) => r with { NegativeTargetSize = v }, (n, v) => Pair(n, v, 1)),
    ];

    private static readonly Dictionary<string, RequestField> ByName = All.ToDictionary(f => f.Name, StringComparer.Ordinal);

    /// <summary>The field named <paramref name="name"/>, or null when it is not one of <see cref="All"/>.</summary>
    public static RequestField? Find(string name) => ByName.GetValueOrDefault(name);

    /// <summary><paramref name="to"/> with every field of <see cref="All"/> taken from <paramref name="from"/>.</summary>
    public static GenerationRequest Copy(GenerationRequest from, GenerationRequest to)
    {
        foreach (var field in All) to = field.Set(to, field.Get(from));
        return to;
    }

    private static double? NonNegativeNumber(string name, JsonElement v) =>
        v.ValueKind == JsonValueKind.Number && v.TryGetDouble(out double x) && double.IsFinite(x) && x >= 0 ? x
            : throw new FormatException($"field '{name}' must be a number >= 0; got {v.GetRawText()}");

    private static int NonNegativeInteger(string name, JsonElement v) =>
        v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int n) && n >= 0 ? n
            : throw new FormatException($"field '{name}' must hold integers >= 0; got {v.GetRawText()}");

    private static int[] Timesteps(string name, JsonElement v)
    {
        if (v.ValueKind != JsonValueKind.Array) throw new FormatException($"field '{name}' must be an array of integers; got {v.ValueKind}");
        int[] timesteps = [.. v.EnumerateArray().Select(e => NonNegativeInteger(name, e))];
        return timesteps.Length > 0 ? timesteps : throw new FormatException($"field '{name}' is empty");
    }

    /// <summary>An SDXL size or offset: an array of two integers, each at least <paramref name="min"/>.</summary>
    private static int[] Pair(string name, JsonElement v, int min)
    {
        if (v.ValueKind == JsonValueKind.Array && v.GetArrayLength() == 2
            && v.EnumerateArray().All(e => e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out int n) && n >= min))
            return [.. v.EnumerateArray().Select(e => e.GetInt32())];
        throw new FormatException($"field '{name}' must be an array of two integers >= {min}; got {v.GetRawText()}");
    }
}
