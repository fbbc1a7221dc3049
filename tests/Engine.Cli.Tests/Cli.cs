namespace Engine.Cli.Tests;

/// <summary>Runs the <c>engine</c> tool in-process with captured output, and makes scratch folders.</summary>
public static class Cli
{
    /// <summary>Exit code and captured stdout/stderr of one run.</summary>
    public sealed record Result(int Code, string Out, string Err)
    {
        public override string ToString() => $"exit {Code}\nstdout:\n{Out}\nstderr:\n{Err}";
    }

    public static Result Run(params string[] args) => Run(CancellationToken.None, null, args);

    public static Result Run(CancellationToken cancellation, TextWriter? output, params string[] args)
    {
        var o = output ?? new StringWriter();
        var e = new StringWriter();
        int code = CommandDispatcher.Run(args, o, e, cancellation);
        return new Result(code, o.ToString() ?? "", e.ToString());
    }

    /// <summary>A new empty folder under the temp folder, removed by <see cref="Scratch.Dispose"/>.</summary>
    public sealed class Scratch : IDisposable
    {
        public Scratch() => Directory.CreateDirectory(Path);

        public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"engine-cli-{Guid.NewGuid():N}");

        public string this[string name] => System.IO.Path.Combine(Path, name);

        public void Dispose()
        {
            try { Directory.Delete(Path, recursive: true); } catch (IOException) { }
        }
    }
}
