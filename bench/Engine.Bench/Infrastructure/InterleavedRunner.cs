using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using BenchmarkDotNet.Attributes;

namespace Engine.Bench.Infrastructure;

/// <summary>
/// <c>--interleaved</c>: a ratio-only mode for shared, noisy machines. For every case of the
/// <see cref="PeerBenchmark"/> suites it sets up both providers in this process, then alternates
/// short blocks of engine and ORT invocations and compares their medians, so load that
/// drifts during the run hits both sides alike. BenchmarkDotNet measures each side on its own, minutes
/// apart. A cross-check, not the reference: on two cores it reads up to 2x low for the engine on short
/// operations while ORT's times match BenchmarkDotNet's (docs/PERFORMANCE.md).
/// </summary>
public static class InterleavedRunner
{
    /// <summary>Runs the suites (optionally only those whose name contains <paramref name="filter"/>); returns the rows.</summary>
    public static List<PeerRatios.Row> Run(IEnumerable<Type> suites, string? filter, double secondsPerCase)
    {
        var rows = new List<PeerRatios.Row>();
        foreach (var type in suites.Where(t => typeof(PeerBenchmark).IsAssignableFrom(t)))
        {
            if (filter is not null && !type.Name.Contains(filter, StringComparison.OrdinalIgnoreCase)) continue;
            var methods = type.GetMethods().Where(m => m.GetCustomAttribute<BenchmarkAttribute>() is not null).ToList();
            foreach (var assignment in Cases(type))
            {
                var engine = Create(type, assignment, PeerBenchmark.EngineProvider);
                var ort = Create(type, assignment, PeerBenchmark.OrtProvider);
                if (!ort.Providers().Contains(PeerBenchmark.OrtProvider)) { Console.WriteLine($"{type.Name}: no ORT peer here, skipped."); continue; }
                engine.GlobalSetup();
                ort.GlobalSetup();
                try
                {
                    foreach (var method in methods)
                    {
                        var (e, o) = Alternate(() => method.Invoke(engine, null), () => method.Invoke(ort, null), secondsPerCase);
                        string name = string.Join(", ", assignment.Select(a => $"{a.Key}={a.Value}"));
                        var row = new PeerRatios.Row(type.Name, method.Name, name, e, o);
                        rows.Add(row);
                        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                            $"{type.Name}.{method.Name} [{name}]: engine {e / 1e6:F3} ms, ORT {o / 1e6:F3} ms, engine/ORT speed {row.Ratio:F2}x"));
                    }
                }
                finally
                {
                    engine.GlobalCleanup();
                    ort.GlobalCleanup();
                }
            }
        }
        return rows;
    }

    /// <summary>
    /// Medians (ns) of alternating blocks of calls after two warm-ups each: per round, three engine
    /// calls then three ORT calls (order flipped each round), the first call of each block not
    /// counted: ORT's worker threads spin for a while after a run, and so do .NET's, which would
    /// otherwise slow whichever side runs right after the other. Rounds fill the time budget (3 to 60).
    /// </summary>
    private static (double Engine, double Ort) Alternate(Action engine, Action ort, double seconds)
    {
        const int Block = 3;
        engine(); ort(); engine(); ort();
        var sw = Stopwatch.StartNew();
        engine(); ort();
        double pair = sw.Elapsed.TotalSeconds;
        int rounds = (int)Math.Clamp(seconds / Math.Max(pair * Block, 1e-6), 3, 60);
        var e = new List<double>();
        var o = new List<double>();
        void Run(Action a, List<double> into)
        {
            a();
            for (int i = 1; i < Block; i++) into.Add(Time(a));
        }
        for (int r = 0; r < rounds; r++)
        {
            if (r % 2 == 0) { Run(engine, e); Run(ort, o); }
            else { Run(ort, o); Run(engine, e); }
        }
        return (Median(e), Median(o));
    }

    private static double Time(Action a)
    {
        long t0 = Stopwatch.GetTimestamp();
        a();
        return (Stopwatch.GetTimestamp() - t0) * 1e9 / Stopwatch.Frequency;
    }

    private static double Median(List<double> v)
    {
        v.Sort();
        return v.Count % 2 == 1 ? v[v.Count / 2] : 0.5 * (v[v.Count / 2 - 1] + v[v.Count / 2]);
    }

    private static PeerBenchmark Create(Type type, IReadOnlyList<KeyValuePair<string, object>> assignment, string provider)
    {
        var instance = (PeerBenchmark)Activator.CreateInstance(type)!;
        foreach (var (name, value) in assignment) type.GetProperty(name)!.SetValue(instance, value);
        instance.Provider = provider;
        return instance;
    }

    /// <summary>Every combination of the suite's [Params] properties (the Provider parameter excluded).</summary>
    private static IEnumerable<IReadOnlyList<KeyValuePair<string, object>>> Cases(Type type)
    {
        IEnumerable<IReadOnlyList<KeyValuePair<string, object>>> cases = [[]];
        foreach (var prop in type.GetProperties())
        {
            if (prop.GetCustomAttribute<ParamsAttribute>() is not { } attr) continue;
            var values = attr.Values.Where(v => v is not null).Cast<object>().ToList();
            cases = cases.SelectMany(c => values.Select(v => (IReadOnlyList<KeyValuePair<string, object>>)[.. c, new(prop.Name, v)])).ToList();
        }
        return cases;
    }
}
