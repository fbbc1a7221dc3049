namespace Engine.Cli;

/// <summary>Entry point: hands the arguments to the command dispatcher.</summary>
public static class Program
{
    /// <summary>Runs the command named by the first argument; returns its exit code.</summary>
    public static int Main(string[] args) => CommandDispatcher.Run(args, Console.Out, Console.Error);
}
