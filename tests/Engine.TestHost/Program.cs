using System.Reflection;
using NUnit.Framework.Api;
using NUnit.Framework.Interfaces;
using NUnit.Framework.Internal;

// Minimal NUnit host: loads the referenced test assemblies with NUnit's own runner and prints one
// line per finished test plus the totals line "N passed, N failed, N skipped".
// Usage: Engine.TestHost [--where REGEX] [Assembly.Name ...]
//   --where REGEX  runs only tests whose full name matches REGEX (e.g. "cuda")
string? pattern = null;
var names = new List<string>();
for (int i = 0; i < args.Length; i++)
{
    if (args[i] == "--where" && i + 1 < args.Length) pattern = args[++i];
    else names.Add(args[i]);
}
if (names.Count == 0) names.AddRange(TestAssemblies.Default);

int passed = 0, failed = 0, skipped = 0;
var listener = new Listener();
foreach (var name in names)
{
    var assembly = Assembly.Load(name);
    var runner = new NUnitTestAssemblyRunner(new DefaultTestAssemblyBuilder());
    runner.Load(assembly, new Dictionary<string, object>());
    ITestFilter filter = pattern is null
        ? TestFilter.Empty
        : TestFilter.FromXml($"<filter><test re=\"1\">{System.Security.SecurityElement.Escape(pattern)}</test></filter>");
    var result = runner.Run(listener, filter);
    passed += result.PassCount;
    failed += result.FailCount;
    skipped += result.SkipCount + result.InconclusiveCount;
}
Console.WriteLine($"{passed} passed, {failed} failed, {skipped} skipped");
return failed == 0 && passed > 0 ? 0 : 1;

internal static class TestAssemblies
{
    public static readonly string[] Default = ["Engine.Core.Tests"];
}

internal sealed class Listener : ITestListener
{
    public void TestStarted(ITest test) { }

    public void TestFinished(ITestResult result)
    {
        if (result.Test.IsSuite) return;
        string status = result.ResultState.Status.ToString().ToUpperInvariant();
        string message = result.ResultState.Status == TestStatus.Passed ? "" : " " + result.Message?.Split('\n')[0];
        Console.WriteLine($"{status} {result.FullName} ({result.Duration * 1000:F0} ms){message}");
    }

    public void TestOutput(TestOutput output) { }

    public void SendMessage(TestMessage message) { }
}
