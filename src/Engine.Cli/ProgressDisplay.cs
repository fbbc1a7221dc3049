using Spectre.Console;

namespace Engine.Cli;

/// <summary>
/// Shows generation progress: a live Spectre.Console bar (step, images, it/s, ETA) when the output
/// is a terminal, else one plain line per finished batch, so logs stay readable.
/// </summary>
public static class ProgressDisplay
{
    /// <summary>Runs <paramref name="work"/> with a meter for <paramref name="totalImages"/> images and shows its progress.</summary>
    public static T Run<T>(CommandContext context, string title, int totalImages, int stepsPerImage, Func<ProgressMeter, T> work)
    {
        if (!context.Interactive)
        {
            var meter = new ProgressMeter(totalImages, stepsPerImage, (m, batchDone) =>
            {
                if (batchDone) context.Output.WriteLine($"{title}: {m.Describe()}");
            });
            return work(meter);
        }
        T result = default!;
        AnsiConsole.Progress()
            .AutoClear(false)
            .HideCompleted(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new SpinnerColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask(Markup.Escape(title), maxValue: Math.Max(1, (double)totalImages * stepsPerImage));
                var meter = new ProgressMeter(totalImages, stepsPerImage, (m, _) =>
                {
                    task.MaxValue = Math.Max(1, m.UnitsTotal);
                    task.Value = m.UnitsDone;
                    task.Description = Markup.Escape($"{title}: {m.Describe()}");
                });
                result = work(meter);
                task.Value = task.MaxValue;
            });
        return result;
    }
}
