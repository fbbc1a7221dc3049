using Engine.Gpu;

namespace Engine.Cli.Sharding;

/// <summary>Runs a shard's workers, one thread per device, each over its share of the images (<see cref="ShardPlan.Mine"/>).</summary>
public static class BatchWorkers
{
    /// <summary>
    /// Runs <paramref name="work"/> once per device in parallel, each with its own progress meter (a line per finished
    /// image, named by the device) and writers shared under a lock. Waits for all; the first exception is rethrown.
    /// </summary>
    public static void Run(IReadOnlyList<string> devices, ShardPlan plan, int steps, CommandContext context, Action<int, string, ProgressMeter, CommandContext> work)
    {
        var shared = context with { Output = TextWriter.Synchronized(context.Output), Error = TextWriter.Synchronized(context.Error), Interactive = false };
        var threads = devices.Select((device, w) => Task.Factory.StartNew(() =>
        {
            var meter = new ProgressMeter(plan.ImagesOf(w), steps, (m, batchDone) =>
            {
                if (batchDone) shared.Output.WriteLine($"batch [{device}]: {m.Describe()}");
            });
            work(w, device, meter, shared);
        }, context.Cancellation, TaskCreationOptions.LongRunning, TaskScheduler.Default)).ToArray();
        try { Task.WaitAll(threads); }
        catch (AggregateException e) when (e.InnerExceptions.Count > 0)
        {
            var first = e.InnerExceptions.FirstOrDefault(x => x is not OperationCanceledException) ?? e.InnerExceptions[0];
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(first).Throw();
        }
    }

    /// <summary>
    /// The device a job line runs on: with a device list (<paramref name="pooled"/>) the worker's device, which a
    /// line's own 'device' may only confirm (same kind); otherwise the line's device, else the default.
    /// </summary>
    public static string? DeviceOf(string? lineDevice, string? defaultDevice, bool pooled)
    {
        string? line = lineDevice?.Trim().ToLowerInvariant();
        if (line == "auto") line = null;
        if (line is not null && !DeviceList.IsKnown(line))
            throw new ArgumentException($"unknown device '{lineDevice}'; supported: {string.Join(", ", DeviceFactory.Kinds)}, cuda:N or opencl:N.");
        if (!pooled) return line ?? defaultDevice;
        if (line is not null && line != defaultDevice && line != DeviceList.KindOf(defaultDevice!))
            throw new ArgumentException($"field 'device' is '{lineDevice}' but --device lists {defaultDevice} for this worker; leave 'device' out of the line or list its devices.");
        return defaultDevice;
    }
}
