using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using BenchmarkDotNet.Attributes;

namespace Engine.Bench.Infrastructure;

/// <summary>
/// <c>--interleaved</c>: a ratio-only mode for shared, noisy machines. For every case of the
/// <see cref="PeerBenchmark"/> suites it sets up both providers in this process, then alternates
/// engine and ORT invocations (order flipped each round) and compares their medians, so load that
/// drifts during the run hits both sides alike. BenchmarkDotNet measures each side on its own, minutes
/// apart; use this mode for the ratio and BenchmarkDotNet for absolute numbers.
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

    /// <summary>Medians (ns) of alternating timed calls after two warm-ups each; rounds fill the time budget (5 to 200).</summary>
    private static (double Engine, double Ort) Alternate(Action engine, Action ort, double seconds)
    {
        engine(); ort(); engine(); ort();
        var sw = Stopwatch.StartNew();
        engine(); ort();
        double pair = sw.Elapsed.TotalSeconds;
        int rounds = (int)Math.Clamp(seconds / Math.Max(pair, 1e-6), 5, 200);
        var e = new double[rounds];
        var o = new double[rounds];
        for (int i = 0; i < rounds; i++)
        {
            if (i % 2 == 0) { e[i] = Time(engine); o[i] = Time(ort); }
            else { o[i] = Time(ort); e[i] = Time(engine); }
        }
        return (Median(e), Median(o));
    }

    private static double Time(Action a)
    {
        long t0 = Stopwatch.GetTimestamp();
        a();
        return (Stopwatch.GetTimestamp() - t0) * 1e9 / Stopwatch.Frequency;
    }

    private static double Median(double[] v)
    {
        Array.Sort(v);
        return v.Length % 2 == 1 ? v[v.Length / 2] : 0.5 * (v[v.Length / 2 - 1] + v[v.Length / 2]);
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
