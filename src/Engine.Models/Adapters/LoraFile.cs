using System.Security.Cryptography;
using Engine.Core.Safetensors;

namespace Engine.Models.Adapters;

/// <summary>
/// A LoRA file, memory-mapped: its modules in the kohya layout (<c>NAME.lora_down.weight</c>,
/// <c>NAME.lora_up.weight</c>, <c>NAME.alpha</c>) or the diffusers / PEFT layout (<c>NAME.lora_A.weight</c>,
/// <c>NAME.lora_B.weight</c>, alpha = rank), and the file's SHA-256. Every key must belong to a module;
/// layouts this engine does not read (LoHa, LoKr, DoRA, ...) are refused by their key names.
/// </summary>
public sealed class LoraFile : IDisposable
{
    private static readonly (string Suffix, bool Up)[] Kohya = [(".lora_down.weight", false), (".lora_up.weight", true)];
    private static readonly (string Suffix, bool Up)[] Peft = [(".lora_A.weight", false), (".lora_B.weight", true)];
    private const string AlphaSuffix = ".alpha";

    private readonly SafetensorsFile _file;

    private LoraFile(string path, SafetensorsFile file, string layout, IReadOnlyList<LoraModule> modules, string sha256)
    {
        Path = path;
        _file = file;
        Layout = layout;
        Modules = modules;
        Sha256 = sha256;
    }

    /// <summary>The file's full path.</summary>
    public string Path { get; }

    /// <summary><c>kohya</c> or <c>diffusers</c>.</summary>
    public string Layout { get; }

    /// <summary>The modules, in key order.</summary>
    public IReadOnlyList<LoraModule> Modules { get; }

    /// <summary>Lower-case hex SHA-256 of the whole file.</summary>
    public string Sha256 { get; }

    /// <summary>Opens and checks <paramref name="path"/>; throws <see cref="InvalidDataException"/> naming the file on anything it cannot read.</summary>
    public static LoraFile Open(string path)
    {
        string full = System.IO.Path.GetFullPath(path);
        if (Directory.Exists(full)) throw new FileNotFoundException($"LoRA file '{full}' is a folder; expected a safetensors file.", full);
        if (!File.Exists(full)) throw new FileNotFoundException($"LoRA file '{full}' does not exist.", full);
        SafetensorsFile file;
        try { file = SafetensorsFile.Open(full); }
        catch (SafetensorsException e) { throw new InvalidDataException($"{full}: not a safetensors LoRA file: {e.Message}", e); }
        try
        {
            var (layout, modules) = ReadModules(full, file);
            return new LoraFile(full, file, layout, modules, Hash(full));
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>Reads a tensor of the file as float32 (F16 and BF16 widened exactly).</summary>
    public float[] Read(string key) => _file.ReadFloats(key);

    /// <summary>Lower-case hex SHA-256 of the file at <paramref name="path"/>.</summary>
    public static string Hash(string path)
    {
        using var stream = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }

    private static (string Layout, List<LoraModule> Modules) ReadModules(string path, SafetensorsFile file)
    {
        var keys = file.Tensors.Keys.Order(StringComparer.Ordinal).ToList();
        if (keys.Count == 0) throw new InvalidDataException($"{path}: holds no tensors; not a LoRA file.");
        if (UnsupportedLayouts.Find(keys) is { } unsupported)
            throw new NotSupportedException($"{path}: {unsupported.Layout} adapters are not supported (key '{unsupported.Key}'); only LoRA (kohya lora_down/lora_up, diffusers lora_A/lora_B) is read.");
        bool kohya = keys.Any(k => k.EndsWith(Kohya[0].Suffix, StringComparison.Ordinal) || k.EndsWith(Kohya[1].Suffix, StringComparison.Ordinal));
        bool peft = keys.Any(k => k.EndsWith(Peft[0].Suffix, StringComparison.Ordinal) || k.EndsWith(Peft[1].Suffix, StringComparison.Ordinal));
        if (kohya && peft) throw new InvalidDataException($"{path}: mixes the kohya (lora_down/lora_up) and diffusers (lora_A/lora_B) layouts.");
        if (!kohya && !peft)
            throw new InvalidDataException($"{path}: no LoRA tensors (NAME.lora_down.weight / NAME.lora_up.weight or NAME.lora_A.weight / NAME.lora_B.weight); first key '{keys[0]}'.");
        var suffixes = kohya ? Kohya : Peft;
        var down = new Dictionary<string, string>(StringComparer.Ordinal);
        var up = new Dictionary<string, string>(StringComparer.Ordinal);
        var alpha = new Dictionary<string, string>(StringComparer.Ordinal);
        var stray = new List<string>();
        foreach (var key in keys)
        {
            var match = suffixes.FirstOrDefault(s => key.EndsWith(s.Suffix, StringComparison.Ordinal));
            if (match.Suffix is not null) (match.Up ? up : down)[key[..^match.Suffix.Length]] = key;
            else if (key.EndsWith(AlphaSuffix, StringComparison.Ordinal)) alpha[key[..^AlphaSuffix.Length]] = key;
            else stray.Add(key);
        }
        var names = down.Keys.Union(up.Keys).Union(alpha.Keys).Order(StringComparer.Ordinal).ToList();
        var halves = names.Where(n => !down.ContainsKey(n) || !up.ContainsKey(n)).ToList();
        if (stray.Count > 0 || halves.Count > 0)
        {
            var listed = stray.Concat(halves.Select(n => $"{n} (without its {(down.ContainsKey(n) ? "up" : "down")} half)")).Take(5);
            throw new InvalidDataException($"{path}: {stray.Count + halves.Count} keys belong to no LoRA module, e.g. {string.Join(", ", listed)}.");
        }
        var modules = new List<LoraModule>(names.Count);
        foreach (var name in names)
        {
            var downShape = file.Info(down[name]).Shape.ToArray();
            var upShape = file.Info(up[name]).Shape.ToArray();
            if (downShape.Length is not (2 or 4) || upShape.Length != downShape.Length || upShape[1] != downShape[0]
                || (upShape.Length == 4 && (upShape[2] != 1 || upShape[3] != 1)))
                throw new InvalidDataException($"{path}: module '{name}': down {ShapeText(downShape)} and up {ShapeText(upShape)} are not a LoRA pair ([r, in(, kh, kw)] and [out, r(, 1, 1)]).");
            float a = downShape[0];
            if (alpha.TryGetValue(name, out var alphaKey))
            {
                var values = file.ReadFloats(alphaKey);
                if (values.Length != 1 || !float.IsFinite(values[0]))
                    throw new InvalidDataException($"{path}: '{alphaKey}' must be one finite number; it holds {values.Length} values.");
                a = values[0];
            }
            modules.Add(new LoraModule(name, down[name], up[name], downShape, upShape, a));
        }
        return (kohya ? "kohya" : "diffusers", modules);
    }

    private static string ShapeText(int[] shape) => "[" + string.Join(", ", shape) + "]";

    /// <summary>Unmaps the file.</summary>
    public void Dispose() => _file.Dispose();
}
