// ortprofile MODEL.onnx INPUTS.safetensors PROFILE_PREFIX [threads=2] [runs=2]
// ONNX Runtime's own per-node profile: a session with profiling on (fp32, ORT_ENABLE_ALL), `runs` runs (the first one
// warms up), then the profile file ONNX Runtime wrote (its path is printed). profile_compare.py takes the nodes of the
// last run; runs=1 profiles the first run, as `engine forward --profile` does. Inputs are the F32 tensors of INPUTS named like the model's inputs.
using System.Diagnostics;
using System.Text.Json;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

var (modelPath, inPath, prefix) = (args[0], args[1], args[2]);
int threads = args.Length > 3 ? int.Parse(args[3]) : 2;
using var so = new SessionOptions
{
    IntraOpNumThreads = threads, InterOpNumThreads = 1, GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
    EnableProfiling = true, ProfileOutputPathPrefix = prefix,
};
var sw = Stopwatch.StartNew();
using var session = new InferenceSession(modelPath, so);
Console.WriteLine($"session_create_s {sw.Elapsed.TotalSeconds:F2}");

var bytes = File.ReadAllBytes(inPath);
long headerLength = BitConverter.ToInt64(bytes, 0);
using var header = JsonDocument.Parse(new ReadOnlyMemory<byte>(bytes, 8, (int)headerLength));
var inputs = new List<NamedOnnxValue>();
foreach (var p in header.RootElement.EnumerateObject())
{
    if (p.Name == "__metadata__" || !session.InputMetadata.ContainsKey(p.Name)) continue;
    if (p.Value.GetProperty("dtype").GetString() != "F32") throw new InvalidDataException($"{inPath}: {p.Name} is not F32");
    var shape = p.Value.GetProperty("shape").EnumerateArray().Select(e => e.GetInt32()).ToArray();
    var off = p.Value.GetProperty("data_offsets").EnumerateArray().Select(e => e.GetInt64()).ToArray();
    var data = new float[(off[1] - off[0]) / 4];
    Buffer.BlockCopy(bytes, (int)(8 + headerLength + off[0]), data, 0, (int)(off[1] - off[0]));
    inputs.Add(NamedOnnxValue.CreateFromTensor(p.Name, new DenseTensor<float>(data, shape)));
}
int runs = args.Length > 4 ? int.Parse(args[4]) : 2;
for (int i = 0; i < runs; i++)
{
    var cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
    sw.Restart();
    using (session.Run(inputs)) { }
    var cpu1 = Process.GetCurrentProcess().TotalProcessorTime;
    Console.WriteLine($"run{i}_s {sw.Elapsed.TotalSeconds:F3} run{i}_cpu_s {(cpu1 - cpu0).TotalSeconds:F3}");
}
Console.WriteLine($"profile {session.EndProfiling()}");
