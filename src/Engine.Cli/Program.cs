namespace Engine.Cli;

/// <summary>Entry point: hands the arguments to the command dispatcher; Ctrl+C cancels the running command.</summary>
public static class Program
{
    /// <summary>Runs the command named by the first argument; returns its exit code.</summary>
    public static int Main(string[] args)
    {
        using var cancel = new CancellationTokenSource();
        ConsoleCancelEventHandler handler = (_, e) =>
        {
            // The first Ctrl+C asks the command to stop between steps and clean up; a second one ends the process.
            if (cancel.IsCancellationRequested) return;
            e.Cancel = true;
            cancel.Cancel();
        };
        Console.CancelKeyPress += handler;
        try
        {
            return CommandDispatcher.Run(args, Console.Out, Console.Error, cancel.Token, interactive: !Console.IsOutputRedirected);
        }
        finally
        {
            Console.CancelKeyPress -= handler;
        }
    }
}
