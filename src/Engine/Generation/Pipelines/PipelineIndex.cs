using System.Text.Json;

namespace Engine.Generation.Pipelines;

/// <summary>
/// A diffusers pipeline folder's <c>model_index.json</c>: the pipeline class and, for each component
/// (<c>unet</c>, <c>vae</c>, <c>text_encoder</c>, <c>tokenizer</c>, <c>scheduler</c>, ...), the library
/// and class it was saved from, or null for a component saved as None (a removed safety checker).
/// </summary>
public sealed class PipelineIndex
{
    /// <summary>The file name diffusers writes at a pipeline folder's root.</summary>
    public const string FileName = "model_index.json";

    private readonly Dictionary<string, (string Library, string ClassName)?> _components;
    private readonly Dictionary<string, bool> _flags;
    private readonly Dictionary<string, int> _labelIds = new(StringComparer.Ordinal);

    private PipelineIndex(string folder, string className, Dictionary<string, (string, string)?> components, Dictionary<string, bool> flags)
    {
        _flags = flags;
        Folder = folder;
        ClassName = className;
        _components = components;
    }

    /// <summary>
    /// The index a single-file checkpoint stands for (no model_index.json): <paramref name="className"/> with the
    /// class's defaults; <see cref="Folder"/> and <see cref="FilePath"/> name the checkpoint.
    /// </summary>
    internal static PipelineIndex ForCheckpoint(string checkpoint, string className) => new(checkpoint, className, [], []);

    /// <summary>The pipeline folder (full path).</summary>
    public string Folder { get; }

    /// <summary>The file this index was read from.</summary>
    public string FilePath => Path.Combine(Folder, FileName);

    /// <summary>The pipeline's <c>_class_name</c> (e.g. StableDiffusionPipeline).</summary>
    public string ClassName { get; }

    /// <summary>Whether <paramref name="folder"/> holds a <c>model_index.json</c>.</summary>
    public static bool IsPipelineFolder(string folder) => File.Exists(Path.Combine(folder, FileName));

    /// <summary>Reads <c>model_index.json</c> in <paramref name="folder"/>; a malformed file is an <see cref="InvalidDataException"/> naming it.</summary>
    public static PipelineIndex Load(string folder)
    {
        string path = Path.Combine(folder, FileName);
        JsonDocument doc;
        try { doc = JsonDocument.Parse(File.ReadAllText(path)); }
        catch (JsonException e) { throw new InvalidDataException($"{path}: not valid JSON: {e.Message}", e); }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"{path}: expected a JSON object.");
            if (!root.TryGetProperty("_class_name", out var cls) || cls.ValueKind != JsonValueKind.String || string.IsNullOrEmpty(cls.GetString()))
                throw new InvalidDataException($"{path}: no '_class_name' naming the pipeline class.");
            var components = new Dictionary<string, (string, string)?>(StringComparer.Ordinal);
            var flags = new Dictionary<string, bool>(StringComparer.Ordinal);
            var labels = new List<(int, string)>();
            foreach (var p in root.EnumerateObject())
            {
                if (p.Value.ValueKind is JsonValueKind.True or JsonValueKind.False) flags[p.Name] = p.Value.GetBoolean();
                if (p.Name == "id2label" && p.Value.ValueKind == JsonValueKind.Object)
                    foreach (var l in p.Value.EnumerateObject())
                        if (int.TryParse(l.Name, out int id) && l.Value.ValueKind == JsonValueKind.String) labels.Add((id, l.Value.GetString()!));
                // Components are ["library", "Class"] pairs; other keys are pipeline settings (requires_safety_checker, ...).
                if (p.Name.StartsWith('_') || p.Value.ValueKind != JsonValueKind.Array || p.Value.GetArrayLength() != 2) continue;
                var lib = p.Value[0];
                var name = p.Value[1];
                components[p.Name] = lib.ValueKind == JsonValueKind.String && name.ValueKind == JsonValueKind.String
                    ? (lib.GetString()!, name.GetString()!)
                    : null;
            }
            var index = new PipelineIndex(Path.GetFullPath(folder), cls.GetString()!, components, flags);
            // As DiTPipeline: every comma-separated synonym of a label names its id (a later id wins a shared name).
            foreach (var (id, label) in labels)
                foreach (var name in label.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)) index._labelIds[name] = id;
            return index;
        }
    }

    /// <summary>
    /// The class id of <paramref name="name"/> in the index's <c>id2label</c> (DiTPipeline; each comma-separated
    /// synonym counts, as diffusers' <c>get_label_ids</c>); throws naming model_index.json when it is not there.
    /// </summary>
    public int LabelId(string name)
    {
        if (_labelIds.TryGetValue(name.Trim(), out int id)) return id;
        if (_labelIds.Count == 0) throw new ArgumentException($"class '{name}' (--class): {FilePath} has no id2label to name classes by; give the class number.");
        var close = _labelIds.Keys.Where(k => k.Contains(name.Trim(), StringComparison.OrdinalIgnoreCase)).Take(5).ToList();
        throw new ArgumentException($"class '{name}' (--class) is not a label in {FilePath}{(close.Count > 0 ? $"; similar: {string.Join(", ", close.Select(c => $"'{c}'"))}" : "")}.");
    }

    /// <summary>A boolean pipeline setting (e.g. <c>force_zeros_for_empty_prompt</c>), or <paramref name="fallback"/> when absent.</summary>
    public bool Flag(string name, bool fallback) => _flags.TryGetValue(name, out var v) ? v : fallback;

    /// <summary>
    /// Every component the index lists, sorted by name, with its library and class (both null for one saved as None).
    /// </summary>
    public IReadOnlyList<(string Name, string? Library, string? ClassName)> Components =>
        _components.OrderBy(c => c.Key, StringComparer.Ordinal).Select(c => (c.Key, c.Value?.Library, c.Value?.ClassName)).ToList();

    /// <summary>The class of component <paramref name="name"/>, or null when the index lists it as None or not at all.</summary>
    public string? ComponentClass(string name) => _components.TryGetValue(name, out var c) && c is { } v ? v.ClassName : null;

    /// <summary>
    /// The folder of component <paramref name="name"/>, checked: the index must list it with one of
    /// <paramref name="classes"/> (any class when none are given) and the folder must exist. Errors name model_index.json or the folder.
    /// </summary>
    public string RequireComponent(string name, params string[] classes)
    {
        var cls = ComponentClass(name) ?? throw new InvalidDataException($"{FilePath}: {ClassName} needs component '{name}', which the index does not list.");
        if (classes.Length > 0 && !classes.Contains(cls))
            throw new InvalidDataException($"{FilePath}: component '{name}' is {cls}; supported: {string.Join(", ", classes)}.");
        string dir = Path.Combine(Folder, name);
        if (!Directory.Exists(dir)) throw new DirectoryNotFoundException($"{dir}: component folder '{name}' ({cls}) listed in {FileName} is missing.");
        return dir;
    }
}
