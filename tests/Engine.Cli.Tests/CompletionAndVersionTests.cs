namespace Engine.Cli.Tests;

/// <summary>Shell completion through the [suggest] directive, --version, and parse errors System.CommandLine reports in its own way.</summary>
public class CompletionAndVersionTests
{
    [Test]
    public void SuggestCompletesCommandsOptionsAndValues()
    {
        var command = Cli.Run("[suggest:10]", "engine gen");
        Assert.That(command.Code, Is.EqualTo(ExitCodes.Success), command.ToString());
        Assert.That(command.Out.Split('\n', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries), Is.EqualTo(new[] { "generate" }));

        var option = Cli.Run("[suggest:21]", "engine generate --wei");
        Assert.That(option.Out.Trim(), Is.EqualTo("--weights"), option.ToString());

        var device = Cli.Run("[suggest:25]", "engine generate --device ");
        Assert.That(device.Out, Does.Contain("cpu").And.Contain("auto"), device.ToString());

        var sampler = Cli.Run("[suggest:27]", "engine generate --sampler u");
        Assert.That(sampler.Out, Does.Contain("unipc").And.Not.Contain("ddim"), sampler.ToString());
    }

    [Test]
    public void VersionPrintsTheEngineVersion()
    {
        var r = Cli.Run("--version");
        Assert.That(r.Code, Is.EqualTo(ExitCodes.Success));
        Assert.That(r.Out.Trim(), Is.EqualTo($"engine {EngineVersion.Text}"));
    }

    [TestCase(new[] { "generate", "--out", "a", "--out", "b" }, "option --out is given twice")]
    [TestCase(new[] { "generate", "--out", "--steps", "3" }, "option --out needs a value")]
    [TestCase(new[] { "eval", "--count", "1", "--run", "ddim:2", "--run" }, "option --run needs a value")]
    [TestCase(new[] { "inspect", "--colour" }, "unknown option '--colour'")]
    [TestCase(new[] { "generate", "--steps=0" }, "--steps 0 must be between 1 and 1000")]
    public void ParseErrorsNameTheCommandAndOption(string[] args, string message)
    {
        var r = Cli.Run(args);
        Assert.That(r.Code, Is.EqualTo(ExitCodes.Usage), r.ToString());
        Assert.That(r.Err, Does.StartWith($"engine {args[0]}: ").And.Contain(message));
    }
}
