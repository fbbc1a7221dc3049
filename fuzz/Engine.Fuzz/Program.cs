using Engine.Fuzz;
using SharpFuzz;

// AFL++ entry: `engine-fuzz TARGET` reads inputs from AFL's shared memory (see README.md, Tests);
// `engine-fuzz TARGET FILE...` runs files once, to reproduce a finding outside AFL (use the uninstrumented
// build in fuzz/Engine.Fuzz/bin: instrumented assemblies need AFL's shared memory).
if (args.Length == 0 || !FuzzTargets.Names.Contains(args[0]))
{
    Console.Error.WriteLine($"usage: engine-fuzz {{{string.Join("|", FuzzTargets.Names)}}} [FILE...]");
    return 2;
}
string target = args[0];
if (args.Length > 1)
{
    foreach (var file in args.Skip(1)) FuzzTargets.Run(target, File.ReadAllBytes(file));
    return 0;
}
Fuzzer.OutOfProcess.Run(stream =>
{
    using var buffer = new MemoryStream();
    stream.CopyTo(buffer);
    FuzzTargets.Run(target, buffer.ToArray());
});
return 0;
