using Engine.Core;
using Engine.Models.Binding;
using Engine.Models.Networks;

namespace Engine.Models.Adapters;

/// <summary>
/// LoRA adapters merged into the loaded weights of one pipeline (UNet and text encoders):
/// W' = W + sum over adapters of s * (alpha / r) * up @ down, computed in float32 on the device (the up and
/// down halves widened from F16/BF16 exactly; the product one GEMM over the adapters' ranks stacked, added to
/// W widened to float32, then stored back in W's storage type). The original weight tensors are kept aside
/// untouched, so removing or changing adapters gives back the base weights bit for bit and never re-reads the
/// model from disk; only the touched weights are held twice. Files stay open (mapped) while the model lives,
/// so changing a scale re-reads nothing.
/// </summary>
public sealed class AdapterWeights : IDisposable
{
    private readonly LoraTargets _targets;
    private readonly Dictionary<Parameter, Tensor> _originals = [];
    private readonly Dictionary<string, (DateTime Written, long Length, LoraFile File)> _files = new(StringComparer.Ordinal);
    private List<(string Path, double Scale)> _applied = [];
    private readonly Dictionary<Parameter, (Tensor Shared, Tensor Student)> _student = [];
    private List<(string Path, double Scale)> _studentApplied = [];
    private bool _studentSelected;

    /// <summary>Adapters for <paramref name="components"/> (see <see cref="LoraTargets"/>), which must be loaded on one device.</summary>
    public AdapterWeights(IReadOnlyList<(string Component, Network Network)> components)
    {
        _targets = new LoraTargets(components);
        Device = components.Select(c => c.Network.Device).FirstOrDefault(d => d is not null);
    }

    private Device? Device { get; }

    /// <summary>The adapters now merged, in order, with each file's SHA-256.</summary>
    public IReadOnlyList<LoraSpec> Active { get; private set; } = [];

    /// <summary>Weights currently replaced by merged ones.</summary>
    public int MergedWeights => _originals.Count;

    /// <summary>
    /// Makes <paramref name="adapters"/> the merged set: nothing happens when it equals the current set
    /// (same files and scales in the same order); otherwise the base weights are put back and the new set is
    /// merged. Every file is checked (layout, every module found with a matching shape, a recorded SHA-256)
    /// before any weight changes. Returns the specs with their files' SHA-256.
    /// </summary>
    public IReadOnlyList<LoraSpec> Apply(IReadOnlyList<LoraSpec> adapters)
    {
        ArgumentNullException.ThrowIfNull(adapters);
        var wanted = adapters.Select(a => (Path.GetFullPath(a.Path), a.Scale)).ToList();
        var files = adapters.Select(Open).ToList();
        if (wanted.SequenceEqual(_applied)) return Active;
        var plan = Plan(files, adapters);
        Restore();
        foreach (var (weight, parts) in plan)
        {
            _originals[weight] = weight.Tensor;
            weight.Value = Merged(weight, parts);
        }
        _applied = wanted;
        Active = adapters.Select((a, i) => a with { Path = files[i].Path, Sha256 = files[i].Sha256 }).ToList();
        return Active;
    }

    /// <summary>Puts every original weight back (bit-exact base model); the student adapters are dropped too.</summary>
    public void Restore()
    {
        ClearStudent();
        foreach (var (parameter, original) in _originals)
        {
            parameter.Value?.Dispose();
            parameter.Value = original;
        }
        _originals.Clear();
        _applied = [];
        Active = [];
    }

    /// <summary>The student adapters merged aside by <see cref="ApplyStudent"/>, in order, with each file's SHA-256.</summary>
    public IReadOnlyList<LoraSpec> StudentActive { get; private set; } = [];

    /// <summary>
    /// Merges <paramref name="adapters"/> on top of the current weights (the base and the <see cref="Apply"/> set) into a
    /// second copy of each weight they touch, kept aside: the student of Distillation++ (base + an LCM or TCD LoRA) then
    /// shares every other weight with its teacher, the model as it is. <see cref="StudentSelected"/> switches between them
    /// without arithmetic. Nothing happens when the set equals the current student set; checked like <see cref="Apply"/>.
    /// </summary>
    public IReadOnlyList<LoraSpec> ApplyStudent(IReadOnlyList<LoraSpec> adapters)
    {
        ArgumentNullException.ThrowIfNull(adapters);
        var wanted = adapters.Select(a => (Path.GetFullPath(a.Path), a.Scale)).ToList();
        var files = adapters.Select(Open).ToList();
        if (wanted.SequenceEqual(_studentApplied)) return StudentActive;
        var plan = Plan(files, adapters);
        ClearStudent();
        foreach (var (weight, parts) in plan) _student[weight] = (weight.Tensor, Merged(weight, parts));
        _studentApplied = wanted;
        StudentActive = adapters.Select((a, i) => a with { Path = files[i].Path, Sha256 = files[i].Sha256 }).ToList();
        return StudentActive;
    }

    /// <summary>Weights the student adapters hold a second copy of.</summary>
    public int StudentWeights => _student.Count;

    /// <summary>
    /// True: the networks run with the student's weights (see <see cref="ApplyStudent"/>); false (default): with the shared
    /// ones. Only pointers change.
    /// </summary>
    public bool StudentSelected
    {
        get => _studentSelected;
        set
        {
            if (value == _studentSelected) return;
            foreach (var (parameter, (shared, student)) in _student) parameter.Value = value ? student : shared;
            _studentSelected = value;
        }
    }

    /// <summary>Drops the student adapters: the shared weights are selected and the student copies freed.</summary>
    public void ClearStudent()
    {
        StudentSelected = false;
        foreach (var (_, student) in _student.Values) student.Dispose();
        _student.Clear();
        _studentApplied = [];
        StudentActive = [];
    }

    private LoraFile Open(LoraSpec spec)
    {
        if (!double.IsFinite(spec.Scale)) throw new ArgumentException($"LoRA '{spec.Path}': scale {spec.Scale} must be a finite number.");
        string full = Path.GetFullPath(spec.Path);
        var info = new FileInfo(full);
        if (Directory.Exists(full)) throw new FileNotFoundException($"LoRA file '{full}' is a folder; expected a safetensors file.", full);
        if (!info.Exists) throw new FileNotFoundException($"LoRA file '{full}' does not exist.", full);
        if (!_files.TryGetValue(full, out var cached) || cached.Written != info.LastWriteTimeUtc || cached.Length != info.Length)
        {
            if (cached.File is not null)
            {
                // Merged weights made from the old contents go.
                if (_applied.Any(a => a.Path == full)) Restore();
                else if (_studentApplied.Any(a => a.Path == full)) ClearStudent();
                cached.File.Dispose();
            }
            cached = (info.LastWriteTimeUtc, info.Length, LoraFile.Open(full));
            _files[full] = cached;
        }
        if (spec.Sha256 is { } expected && !string.Equals(expected, cached.File.Sha256, StringComparison.OrdinalIgnoreCase))
            throw new InvalidDataException($"{full}: SHA-256 {cached.File.Sha256} differs from the recorded {expected}: the LoRA file changed since the image was made.");
        return cached.File;
    }

    /// <summary>Each touched weight with its (file, module, factor s * alpha / r) parts; throws before any change.</summary>
    private List<(Parameter Weight, List<(LoraFile File, LoraModule Module, float Factor)> Parts)> Plan(List<LoraFile> files, IReadOnlyList<LoraSpec> specs)
    {
        var byWeight = new Dictionary<Parameter, List<(LoraFile, LoraModule, float)>>();
        var order = new List<Parameter>();
        for (int f = 0; f < files.Count; f++)
        {
            var file = files[f];
            var unmatched = new List<string>();
            foreach (var module in file.Modules)
            {
                if (!_targets.TryFind(module.Name, out string target, out var weight)) { unmatched.Add(module.Name); continue; }
                long columns = Tensor.ShapeLength(weight.Shape) / weight.Shape[0];
                if (module.Out != weight.Shape[0] || module.InElements != columns)
                    throw new InvalidDataException($"{file.Path}: module '{module.Name}' (down {Core.Tensor.ShapeString(module.DownShape)}, up {Core.Tensor.ShapeString(module.UpShape)}) does not fit {target}.weight {Core.Tensor.ShapeString(weight.Shape)}.");
                if (!byWeight.TryGetValue(weight, out var parts)) { byWeight[weight] = parts = []; order.Add(weight); }
                // Factor in double, rounded once: s * alpha / r.
                parts.Add((file, module, (float)(specs[f].Scale * module.Alpha / module.Rank)));
            }
            if (unmatched.Count > 0)
                throw new InvalidDataException($"{file.Path}: {unmatched.Count} of {file.Modules.Count} LoRA modules match no module of the model, first: {string.Join(", ", unmatched.Take(5))}.");
        }
        return order.Select(w => (w, byWeight[w])).ToList();
    }

    /// <summary>A new tensor: the weight's current value plus the parts' deltas, in its storage type.</summary>
    private Tensor Merged(Parameter weight, List<(LoraFile File, LoraModule Module, float Factor)> parts)
    {
        var device = Device ?? throw new InvalidOperationException("The model has no weights loaded.");
        int rows = weight.Shape[0];
        int columns = (int)(Tensor.ShapeLength(weight.Shape) / rows);
        int rank = parts.Sum(p => p.Module.Rank);
        // Stack the adapters along the rank: [f1 up1 | f2 up2 | ...] @ [down1; down2; ...] is the sum of their deltas.
        var up = new float[(long)rows * rank];
        var down = new float[(long)rank * columns];
        int offset = 0;
        foreach (var (file, module, factor) in parts)
        {
            var u = file.Read(module.UpKey);
            var d = file.Read(module.DownKey);
            int r = module.Rank;
            for (int o = 0; o < rows; o++)
                for (int k = 0; k < r; k++)
                    up[(long)o * rank + offset + k] = factor * u[o * r + k];
            d.CopyTo(down, (long)offset * columns);
            offset += r;
        }
        var original = weight.Tensor;
        using var upT = device.Upload(up, rows, rank);
        using var downT = device.Upload(down, rank, columns);
        using var delta = device.Allocate(rows, columns);
        device.MatMul(upT, downT, delta);
        using var wide = original.DType == DType.F32 ? null : device.Convert(original, DType.F32);
        var merged = device.Allocate(weight.Shape);
        try
        {
            device.Add((wide ?? original).Reshape(rows, columns), delta, merged.Reshape(rows, columns));
            if (original.DType != DType.F32)
            {
                var stored = device.Convert(merged, original.DType);
                merged.Dispose();
                merged = stored;
            }
        }
        catch
        {
            merged.Dispose();
            throw;
        }
        return merged;
    }

    /// <summary>Puts the original weights back and closes the files (call before the networks are disposed).</summary>
    public void Dispose()
    {
        Restore();
        foreach (var (_, _, file) in _files.Values) file.Dispose();
        _files.Clear();
    }
}
