namespace Engine.Cli.Tests;

/// <summary>
/// Requests that cannot fit in memory are refused before any work with what they need and what is
/// available, and an allocation that fails anyway ends the command with exit 1, never an abort.
/// </summary>
[TestFixture]
public sealed class MemoryLimitTests
{
    [Test]
    public void HugeRequestIsRefusedBeforeWorkWithTheNumbers()
    {
        using var scratch = new Cli.Scratch();
        // 16 images of 4096 x 4096 on the built-in model: hundreds of GiB of activations in one batch.
        var r = Cli.Run("generate", "--height", "4096", "--width", "4096", "--count", "16", "--steps", "1", "--out", scratch["o"]);
        Assert.That(r.Code, Is.EqualTo(ExitCodes.Failure), r.ToString);
        Assert.That(r.Err, Does.Match(@"out of memory before starting: the request needs [0-9.]+ GiB \(weights [0-9.]+, activations of a batch of 16: [0-9.]+, results [0-9.]+\), -?[0-9.]+ GiB available \(limit [0-9.]+ GiB\)"), r.ToString);
        Assert.That(r.Out + r.Err, Does.Not.Contain("step 1").And.Not.Contain("wrote"));
        Assert.That(Directory.Exists(scratch["o"]), Is.False, "nothing is written");
    }

    [Test]
    public void AllocationFailureIsExitOneWithAMessage()
    {
        var error = new StringWriter();
        int code = CommandDispatcher.Fail("generate", new OutOfMemoryException("Insufficient memory to continue the execution of the program."), error);
        Assert.That(code, Is.EqualTo(ExitCodes.Failure));
        Assert.That(error.ToString(), Does.StartWith("engine generate: out of memory: Insufficient memory").And.Contain("Lower --batch"));
    }
}
