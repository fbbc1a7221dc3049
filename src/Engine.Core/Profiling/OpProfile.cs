using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Engine.Core.Profiling;

/// <summary>
/// A recorded per-op profile (<see cref="OpProfiler.Snapshot"/>): one <see cref="Row"/> per op family and shape, the
/// totals per family, a text table and JSON. Shares are of the total exclusive wall time.
/// </summary>
public sealed class OpProfile
{
    /// <summary>One family and shape: calls, exclusive wall and CPU seconds, floating-point operations.</summary>
    /// <param name="Family">Op family (see <see cref="OpKey.Family"/>).</param>
    /// <param name="Shape">Shape within the family; empty on family totals.</param>
    /// <param name="Calls">Number of calls.</param>
    /// <param name="WallSeconds">Exclusive wall time.</param>
    /// <param name="CpuSeconds">Exclusive CPU time of the process (all threads).</param>
    /// <param name="Flops">Floating-point operations (0 where the family has no rate).</param>
    public sealed record Row(string Family, string Shape, long Calls, double WallSeconds, double CpuSeconds, double Flops)
    {
        /// <summary>GFLOP/s over the wall time, or null where the op has no flop count or took no measurable time.</summary>
        public double? GflopsPerSecond => Flops > 0 && WallSeconds > 0 ? Flops / WallSeconds / 1e9 : null;
    }

    /// <summary>Builds a profile from rows (sorted by time, largest first).</summary>
    public OpProfile(IEnumerable<Row> rows)
    {
        Shapes = rows.OrderByDescending(r => r.WallSeconds).ThenBy(r => r.Family, StringComparer.Ordinal).ThenBy(r => r.Shape, StringComparer.Ordinal).ToList();
        Families = Shapes.GroupBy(r => r.Family)
            .Select(g => new Row(g.Key, "", g.Sum(r => r.Calls), g.Sum(r => r.WallSeconds), g.Sum(r => r.CpuSeconds), g.Sum(r => r.Flops)))
            .OrderByDescending(r => r.WallSeconds).ThenBy(r => r.Family, StringComparer.Ordinal).ToList();
        TotalWallSeconds = Shapes.Sum(r => r.WallSeconds);
        TotalCpuSeconds = Shapes.Sum(r => r.CpuSeconds);
    }

    /// <summary>One row per family and shape, largest wall time first.</summary>
    public IReadOnlyList<Row> Shapes { get; }

    /// <summary>One row per family (its shapes summed), largest wall time first.</summary>
    public IReadOnlyList<Row> Families { get; }

    /// <summary>Wall time of all recorded ops.</summary>
    public double TotalWallSeconds { get; }

    /// <summary>CPU time of all recorded ops.</summary>
    public double TotalCpuSeconds { get; }

    /// <summary>Share of the total wall time, in percent.</summary>
    public double Share(Row row) => TotalWallSeconds > 0 ? 100 * row.WallSeconds / TotalWallSeconds : 0;

    /// <summary>
    /// The table: families, then the <paramref name="topShapes"/> largest shapes (all when null), each with wall time,
    /// share, CPU time, calls and GFLOP/s.
    /// </summary>
    public string Format(int? topShapes = null)
    {
        var sb = new StringBuilder();
        sb.AppendLine(Invariant($"op profile: {TotalWallSeconds:F3} s wall, {TotalCpuSeconds:F3} s CPU in {Shapes.Sum(r => r.Calls)} ops"));
        AppendTable(sb, "family", Families, withShape: false);
        var shown = topShapes is int n ? Shapes.Take(n).ToList() : Shapes.ToList();
        sb.AppendLine();
        AppendTable(sb, shown.Count < Shapes.Count ? $"family / shape (top {shown.Count} of {Shapes.Count})" : "family / shape", shown, withShape: true);
        return sb.ToString();
    }

    private void AppendTable(StringBuilder sb, string title, IReadOnlyList<Row> rows, bool withShape)
    {
        static string Name(Row r, bool withShape) => withShape ? $"{r.Family}  {r.Shape}" : r.Family;
        int width = Math.Max(title.Length, rows.Count == 0 ? 0 : rows.Max(r => Name(r, withShape).Length));
        sb.AppendLine(Invariant($"{title.PadRight(width)}  {"wall s",9}  {"share",6}  {"cpu s",9}  {"calls",7}  {"GFLOP/s",8}"));
        foreach (var r in rows)
        {
            string rate = r.GflopsPerSecond is double g ? g.ToString("F1", CultureInfo.InvariantCulture) : "-";
            sb.AppendLine(Invariant($"{Name(r, withShape).PadRight(width)}  {r.WallSeconds,9:F4}  {Share(r),5:F1}%  {r.CpuSeconds,9:F4}  {r.Calls,7}  {rate,8}"));
        }
    }

    /// <summary>The profile as JSON: totals, families and shapes with seconds, shares, calls, flops and GFLOP/s.</summary>
    public string ToJson(IReadOnlyDictionary<string, string>? context = null)
    {
        object Item(Row r) => new
        {
            family = r.Family,
            shape = r.Shape,
            calls = r.Calls,
            wall_s = r.WallSeconds,
            cpu_s = r.CpuSeconds,
            share_percent = Share(r),
            flops = r.Flops,
            gflops_per_s = r.GflopsPerSecond,
        };
        var doc = new
        {
            context = context ?? new Dictionary<string, string>(),
            total_wall_s = TotalWallSeconds,
            total_cpu_s = TotalCpuSeconds,
            families = Families.Select(Item).ToList(),
            shapes = Shapes.Select(Item).ToList(),
        };
        return JsonSerializer.Serialize(doc, new JsonSerializerOptions { WriteIndented = true });
    }

    private static string Invariant(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}
