// Runs one generation request through Engine.Generation.Generator and writes the samples as the
// tensor "samples" (NCHW, F32) of a safetensors file.
//   Engine.Native.Reference MODEL_DIR OUT.safetensors [--sampler S] [--steps N] [--seed N]
//       [--count N] [--labels a,b,...] [--guidance G] [--device KIND]
using System.Globalization;
using Engine.Core;
using Engine.Core.Safetensors;
using Engine.Generation;

if (args.Length < 2 || args.Length % 2 != 0)
{
    Console.Error.WriteLine("usage: Engine.Native.Reference MODEL_DIR OUT.safetensors [--sampler S] [--steps N] [--seed N] [--count N] [--labels a,b] [--guidance G] [--device KIND]");
    return 2;
}
var options = new Dictionary<string, string>();
for (int i = 2; i < args.Length; i += 2) options[args[i]] = args[i + 1];
string? Option(string name) => options.TryGetValue(name, out var v) ? v : null;
var inv = CultureInfo.InvariantCulture;

var request = new GenerationRequest
{
    Sampler = Option("--sampler"),
    Steps = int.Parse(Option("--steps") ?? "20", inv),
    Seed = ulong.Parse(Option("--seed") ?? "0", inv),
    Count = int.Parse(Option("--count") ?? "1", inv),
    GuidanceScale = float.Parse(Option("--guidance") ?? "3", inv),
    ClassLabels = Option("--labels")?.Split(',').Select(s => int.Parse(s, inv)).ToArray(),
};
using var device = DeviceFactory.Create(Option("--device"));
using var generator = new Generator(device);
using var model = generator.LoadModel(args[0]);
var result = generator.Generate(model, request);
SafetensorsWriter.Write(args[1],
    [new SafetensorsWriter.Entry("samples", [result.Count, result.Channels, result.Height, result.Width], result.Samples)]);
Console.WriteLine($"wrote {args[1]}: samples [{result.Count}, {result.Channels}, {result.Height}, {result.Width}]");
return 0;
