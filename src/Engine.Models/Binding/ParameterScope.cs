namespace Engine.Models.Binding;

/// <summary>
/// Collects the parameters of a network while it is built; a scope adds a key prefix, so modules
/// declare their parameters by their local names (<c>weight</c>, <c>to_q.weight</c>) and nested
/// modules get <c>parent.child.</c> prefixes exactly as PyTorch's state_dict does.
/// </summary>
public sealed class ParameterScope
{
    private readonly List<Parameter> _all;
    private readonly List<IDisposable> _caches;
    private readonly List<object> _modules;
    private readonly string _prefix;

    /// <summary>A root scope with an empty prefix.</summary>
    public ParameterScope() : this([], [], [], "") { }

    private ParameterScope(List<Parameter> all, List<IDisposable> caches, List<object> modules, string prefix)
    {
        _all = all;
        _caches = caches;
        _modules = modules;
        _prefix = prefix;
    }

    /// <summary>Modules that registered themselves so the network can reach them for run-time switches (guidance hooks).</summary>
    public IReadOnlyList<object> Modules => _modules;

    /// <summary>Registers a module that exposes a run-time switch.</summary>
    public void Register(object module) => _modules.Add(module);

    /// <summary>Device-side caches (tables computed on first use) owned by the network; disposed with it.</summary>
    public IReadOnlyList<IDisposable> Caches => _caches;

    /// <summary>Registers a module-owned cache to be disposed with the network.</summary>
    public void Own(IDisposable cache) => _caches.Add(cache);

    /// <summary>The dotted path of this scope without the trailing dot ("" at the root).</summary>
    public string Path => _prefix.TrimEnd('.');

    /// <summary>Every parameter declared so far, in declaration order.</summary>
    public IReadOnlyList<Parameter> All => _all;

    /// <summary>A child scope <c>prefix + name + "."</c>.</summary>
    public ParameterScope Sub(string name) => new(_all, _caches, _modules, _prefix + name + ".");

    /// <summary>A child scope for element <paramref name="index"/> of a module list.</summary>
    public ParameterScope Sub(string name, int index) => Sub($"{name}.{index}");

    /// <summary>Declares a parameter <paramref name="name"/> of this scope; aliases are also relative to this scope.</summary>
    public Parameter Add(string name, int[] shape, params string[] aliases)
    {
        var key = _prefix + name;
        if (_all.Any(p => p.Key == key)) throw new InvalidOperationException($"Parameter '{key}' is declared twice.");
        var p = new Parameter(key, shape, aliases.Select(a => _prefix + a).ToArray());
        _all.Add(p);
        return p;
    }
}
