using Engine.Jobs.Sharding;

namespace Engine.Cli.Sharding;

/// <summary><c>engine batch status OUT</c>: prints <see cref="BatchStatus.Check"/> of a folder, one line per job line.</summary>
public static class BatchStatusReport
{
    private const int Listed = 10;

    /// <summary>Prints the report; exit code 0 when every image is done, 1 otherwise.</summary>
    public static int Run(string folder, CommandContext context)
    {
        var report = BatchStatus.Check(folder, ImageOutput.Problem);
        var o = context.Output;
        o.WriteLine($"batch status {folder}: job file {report.Record.JobFile} (SHA-256 {report.Record.JobSha256[..12]}...), " +
            $"{report.Manifests.Count} manifest{(report.Manifests.Count == 1 ? "" : "s")}: {string.Join(", ", report.Manifests.Select(Path.GetFileName))}");
        foreach (var line in report.Lines)
        {
            if (line.Error is not null)
            {
                o.WriteLine($"  line {line.Line}: failed, the line does not read: {line.Error}");
                continue;
            }
            o.WriteLine($"  line {line.Line}: {line.Done} of {line.Images} done, {line.Failed.Count} failed, {line.Missing.Count} missing");
            foreach (var item in line.Failed.Take(Listed)) o.WriteLine($"    failed: {item}");
            foreach (var item in line.Missing.Take(Listed)) o.WriteLine($"    missing: {item}");
            int more = Math.Max(0, line.Failed.Count - Listed) + Math.Max(0, line.Missing.Count - Listed);
            if (more > 0) o.WriteLine($"    ... and {more} more");
        }
        foreach (var note in report.Notes) context.Error.WriteLine($"engine batch status: {note}");
        int failed = report.Lines.Sum(l => l.Failed.Count), missing = report.Lines.Sum(l => l.Missing.Count), bad = report.Lines.Count(l => l.Error is not null);
        o.WriteLine($"batch status: {report.Done} of {report.Expected} images done, {failed} failed, {missing} missing" +
            (bad > 0 ? $", {bad} bad line{(bad == 1 ? "" : "s")}" : "") + (report.Complete ? "; complete" : ""));
        return report.Complete ? ExitCodes.Success : ExitCodes.Failure;
    }
}
