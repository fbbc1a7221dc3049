namespace Engine.Cli.Tests;

/// <summary>Help, usage errors (exit 2) and failures (exit 1) with clear messages.</summary>
public class CommandLineTests
{
    [Test]
    public void HelpListsEveryCommandAndEachCommandHasHelp()
    {
        var r = Cli.Run("--help");
        Assert.That(r.Code, Is.EqualTo(ExitCodes.Success));
        foreach (var c in CommandDispatcher.Commands)
        {
            Assert.That(r.Out, Does.Contain($"  {c.Name} "), c.Name);
            var help = Cli.Run(c.Name, "--help");
            Assert.That(help.Code, Is.EqualTo(ExitCodes.Success));
            Assert.That(help.Out, Does.StartWith($"usage: engine {c.Name}"));
            // Every option a command accepts is documented in its help.
            foreach (var option in c.Options.Concat(c.Flags)) Assert.That(help.Out, Does.Contain(option), $"{c.Name} help mentions {option}");
        }
        Assert.That(Cli.Run().Code, Is.EqualTo(ExitCodes.Usage));
        Assert.That(Cli.Run("frobnicate").Code, Is.EqualTo(ExitCodes.Usage));
    }

    [TestCase(new[] { "generate", "--colour", "red" }, ExitCodes.Usage, "unknown option '--colour'")]
    [TestCase(new[] { "generate", "--steps", "ten" }, ExitCodes.Usage, "--steps 'ten' is not an integer")]
    [TestCase(new[] { "generate", "--steps", "0" }, ExitCodes.Usage, "--steps 0 must be between 1 and 1000")]
    [TestCase(new[] { "generate", "--cfg", "nan" }, ExitCodes.Usage, "--cfg 'nan' is not a number")]
    [TestCase(new[] { "generate", "--seeds", "5-2" }, ExitCodes.Usage, "ends before it starts")]
    [TestCase(new[] { "generate", "--seeds", "1", "--count", "3" }, ExitCodes.Usage, "either --seeds or --seed/--count")]
    [TestCase(new[] { "generate", "--steps" }, ExitCodes.Usage, "--steps needs a value")]
    [TestCase(new[] { "generate", "--model", "/nonexistent/model-folder" }, ExitCodes.Failure, "'/nonexistent/model-folder' does not exist")]
    [TestCase(new[] { "generate", "--model", "no-such-model" }, ExitCodes.Failure, "neither an existing folder nor a built-in model")]
    [TestCase(new[] { "generate", "--sampler", "warp_drive" }, ExitCodes.Usage, "unknown sampler 'warp_drive'; known: euler")]
    [TestCase(new[] { "generate", "--schedule", "wavy" }, ExitCodes.Usage, "unknown schedule 'wavy'")]
    [TestCase(new[] { "generate", "--device", "tpu" }, ExitCodes.Usage, "unknown device 'tpu'; supported: cpu")]
    [TestCase(new[] { "generate", "--weights", "int8" }, ExitCodes.Usage, "--weights: unknown weight storage 'int8'; supported: f32, f16, bf16")]
    [TestCase(new[] { "forward", "--model", "m", "--inputs", "i", "--output", "o", "--weights", "f8" }, ExitCodes.Usage, "unknown weight storage 'f8'")]
    [TestCase(new[] { "generate", "--precision", "fp8" }, ExitCodes.Usage, "--precision: unknown precision 'fp8'; supported: f32, f16, bf16")]
    [TestCase(new[] { "forward", "--model", "m", "--inputs", "i", "--output", "o", "--precision", "half" }, ExitCodes.Usage, "unknown precision 'half'")]
    [TestCase(new[] { "generate", "--option", "warp=9" }, ExitCodes.Usage, "Unknown option 'warp'")]
    [TestCase(new[] { "generate", "--scheduler-config", "/nonexistent/cfg.json" }, ExitCodes.Failure, "/nonexistent/cfg.json")]
    [TestCase(new[] { "generate", "--class", "12", "--steps", "1", "--count", "1", "--device", "cpu" }, ExitCodes.Failure, "class label 12 is out of range")]
    [TestCase(new[] { "generate", "--from-sidecar", "x.json", "--steps", "3" }, ExitCodes.Usage, "only --out and --device")]
    [TestCase(new[] { "eval", "--steps", "2" }, ExitCodes.Usage, "--count is required")]
    [TestCase(new[] { "eval", "--count", "1", "--compare", "ddim" }, ExitCodes.Usage, "must be SAMPLER:STEPS")]
    [TestCase(new[] { "inspect" }, ExitCodes.Usage, "give one safetensors file")]
    [TestCase(new[] { "inspect", "a", "b" }, ExitCodes.Usage, "unexpected argument 'b'")]
    [TestCase(new[] { "solver-bench", "--steps", "5" }, ExitCodes.Usage, "--gaussian is required")]
    public void BadCommandLinesGiveClearMessages(string[] args, int code, string message)
    {
        var r = Cli.Run(args);
        Assert.That(r.Code, Is.EqualTo(code), r.ToString());
        Assert.That(r.Err, Does.Contain(message));
        Assert.That(r.Err, Does.StartWith($"engine {args[0]}"));
    }
}
