namespace Engine.Models.Binding;

/// <summary>
/// Collects the parameters of a network while it is built; a scope adds a key prefix, so modules
/// declare their parameters by their local names (<c>weight</c>, <c>to_q.weight</c>) and nested
/// modules get <c>parent.child.</c> prefixes exactly as PyTorch's state_dict does.
/// </summary>
public sealed class ParameterScope
{
    // What every scope of one network shares: declaration order, the key set (duplicate checks in O(1),
    // so a deep network declares in linear time) and the most parameters the network may declare.
    private sealed class Shared(int limit)
    {
        public readonly List<Parameter> All = [];
        public readonly HashSet<string> Keys = new(StringComparer.Ordinal);
        public readonly List<IDisposable> Caches = [];
        public readonly List<object> Modules = [];
        public readonly int Limit = limit;
    }

    private readonly Shared _shared;
    private readonly string _prefix;

    /// <summary>A root scope with an empty prefix and no limit on the number of parameters.</summary>
    public ParameterScope() : this(int.MaxValue) { }

    /// <summary>
    /// A root scope that refuses more than <paramref name="maxParameters"/> parameters with a
    /// <see cref="ParameterLimitException"/>: strict binding needs one stored tensor per parameter, so a
    /// network bound to a file of N tensors can stop building at N + 1 instead of declaring millions.
    /// </summary>
    public ParameterScope(int maxParameters) : this(new Shared(maxParameters), "")
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxParameters);
    }

    private ParameterScope(Shared shared, string prefix)
    {
        _shared = shared;
        _prefix = prefix;
    }

    /// <summary>The most parameters this network may declare (<see cref="int.MaxValue"/> when unbounded).</summary>
    public int Limit => _shared.Limit;

    /// <summary>Modules that registered themselves so the network can reach them for run-time switches (guidance hooks).</summary>
    public IReadOnlyList<object> Modules => _shared.Modules;

    /// <summary>Registers a module that exposes a run-time switch.</summary>
    public void Register(object module) => _shared.Modules.Add(module);

    /// <summary>Device-side caches (tables computed on first use) owned by the network; disposed with it.</summary>
    public IReadOnlyList<IDisposable> Caches => _shared.Caches;

    /// <summary>Registers a module-owned cache to be disposed with the network.</summary>
    public void Own(IDisposable cache) => _shared.Caches.Add(cache);

    /// <summary>The dotted path of this scope without the trailing dot ("" at the root).</summary>
    public string Path => _prefix.TrimEnd('.');

    /// <summary>Every parameter declared so far, in declaration order.</summary>
    public IReadOnlyList<Parameter> All => _shared.All;

    /// <summary>A child scope <c>prefix + name + "."</c>.</summary>
    public ParameterScope Sub(string name) => new(_shared, _prefix + name + ".");

    /// <summary>A child scope for element <paramref name="index"/> of a module list.</summary>
    public ParameterScope Sub(string name, int index) => Sub($"{name}.{index}");

    /// <summary>Declares a parameter <paramref name="name"/> of this scope; aliases are also relative to this scope.</summary>
    public Parameter Add(string name, int[] shape, params string[] aliases)
    {
        var key = _prefix + name;
        if (_shared.All.Count >= _shared.Limit) throw new ParameterLimitException(_shared.Limit, key);
        if (!_shared.Keys.Add(key)) throw new InvalidOperationException($"Parameter '{key}' is declared twice.");
        var p = new Parameter(key, shape, aliases.Select(a => _prefix + a).ToArray());
        _shared.All.Add(p);
        return p;
    }
}
